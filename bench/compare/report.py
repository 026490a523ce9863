"""The table of bench/compare/run: medians over the rounds with their spread
(min–max), and the ratios of issue 18 each against its target, met or not.
A missed target is reported, never an error."""
import statistics

LABELS = {
    "append_c64": "append, 64 clients",
    "append_c1": "append, 1 client",
    "window64_c16": "windows of 64, 16 clients",
    "health_c64": "GET health, 64 clients",
    "fdatasync_4k": "4 KiB write+fdatasync",
    "rtt_64b": "64 B loopback round trip",
}
NOTES = {
    "nats": "nats-server 2.9 acks before fsync: an upper bound",
    "redis": "one node, appendfsync always: durable, not replicated",
    "nginx": "fixed 200, 1 worker: the HTTP ceiling",
}
FIELDS = ("rate", "p50_ms", "p99_ms", "cpu_us_per_op")


def summarize(results):
    """{(system, workload): {field: (median, min, max) or None, errors, runs}}."""
    groups = {}
    for r in results:
        groups.setdefault((r["system"], r["workload"]), []).append(r)
    summary = {}
    for key, rows in groups.items():
        entry = {"runs": len(rows), "errors": sum(r.get("errors") or 0 for r in rows)}
        for field in FIELDS:
            values = [r[field] for r in rows if r.get(field) is not None]
            entry[field] = ((statistics.median(values), min(values), max(values))
                            if values else None)
        summary[key] = entry
    return summary


def _number(value):
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _cell(triple):
    if triple is None:
        return "-"
    median, low, high = triple
    return f"{_number(median)} ({_number(low)}–{_number(high)})"


def table(summary, order):
    lines = [f"{'system':<9} {'workload':<26} {'ops/s':<26} {'p50 ms':<22} {'p99 ms':<22} "
             f"{'CPU µs/op':<22} errors"]
    for system in order:
        for workload in LABELS:
            entry = summary.get((system, workload))
            if entry is None:
                continue
            lines.append(f"{system:<9} {LABELS[workload]:<26} {_cell(entry['rate']):<26} "
                         f"{_cell(entry['p50_ms']):<22} {_cell(entry['p99_ms']):<22} "
                         f"{_cell(entry['cpu_us_per_op']):<22} {entry['errors']}")
    notes = [f"  {system}: {NOTES[system]}" for system in order
             if system in NOTES and any(k[0] == system for k in summary)]
    return "\n".join(lines + notes)


def _median(summary, system, workload, field):
    entry = summary.get((system, workload))
    return entry[field][0] if entry and entry[field] else None


def ratios(summary):
    """[{name, value, target, met}]: met is None where there is no target or
    a figure is missing."""
    def m(system, workload, field):
        return _median(summary, system, workload, field)

    def ratio(a, b):
        return a / b if a is not None and b else None

    rtt, disk = m("floors", "rtt_64b", "p50_ms"), m("floors", "fdatasync_4k", "p50_ms")
    floor = 2 * rtt + disk if rtt is not None and disk is not None else None
    etcd_rate = m("etcd", "append_c64", "rate")
    rows = [
        ("append c64 ops/s, coworker / etcd", ratio(m("coworker", "append_c64", "rate"),
                                                     etcd_rate), ">=", 10),
        ("append c64 ops/s, coworker / redis", ratio(m("coworker", "append_c64", "rate"),
                                                      m("redis", "append_c64", "rate")), ">=", 1),
        ("append c64 p99, coworker / etcd", ratio(m("coworker", "append_c64", "p99_ms"),
                                                  m("etcd", "append_c64", "p99_ms")), "<=", 1 / 3),
        (f"append c1 p50, coworker / (2 rtt + fdatasync = "
         f"{'-' if floor is None else f'{floor:.3f}'} ms)",
         ratio(m("coworker", "append_c1", "p50_ms"), floor), "<=", 1.5),
        ("append c1 p50, coworker / etcd", ratio(m("coworker", "append_c1", "p50_ms"),
                                                 m("etcd", "append_c1", "p50_ms")), "<=", 0.5),
        ("windows msg/s, coworker / etcd c64 puts/s",
         ratio(m("coworker", "window64_c16", "rate"), etcd_rate), ">=", 100),
        ("CPU per append c64, coworker / etcd",
         ratio(m("coworker", "append_c64", "cpu_us_per_op"),
               m("etcd", "append_c64", "cpu_us_per_op")), "<=", 1 / 25),
        ("CPU per message in windows, coworker / etcd c64",
         ratio(m("coworker", "window64_c16", "cpu_us_per_op"),
               m("etcd", "append_c64", "cpu_us_per_op")), None, None),
        ("health c64 req/s, coworker / nginx", ratio(m("coworker", "health_c64", "rate"),
                                                     m("nginx", "health_c64", "rate")), ">=", 1),
        ("append c64 ops/s, coworker / nats (upper bound)",
         ratio(m("coworker", "append_c64", "rate"), m("nats", "append_c64", "rate")), None, None),
        ("CPU per append c64, coworker / nats",
         ratio(m("coworker", "append_c64", "cpu_us_per_op"),
               m("nats", "append_c64", "cpu_us_per_op")), None, None),
        ("CPU per append c64, coworker / redis",
         ratio(m("coworker", "append_c64", "cpu_us_per_op"),
               m("redis", "append_c64", "cpu_us_per_op")), None, None),
    ]
    out = []
    for name, value, sense, target in rows:
        met = None
        if value is not None and target is not None:
            met = value >= target if sense == ">=" else value <= target
        out.append({"name": name, "value": value, "target": None if target is None
                    else f"{sense} {target:.3g}", "met": met})
    return out


def ratio_lines(rows):
    lines = []
    for row in rows:
        value = "n/a" if row["value"] is None else f"{row['value']:.3g}"
        verdict = ("(report)" if row["target"] is None else
                   "n/a" if row["met"] is None else "met" if row["met"] else "NOT met")
        target = row["target"] or ""
        lines.append(f"  {row['name']:<62} {value:>9}  {target:<9} {verdict}")
    return "\n".join(lines)
