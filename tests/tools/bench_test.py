#!/usr/bin/env python3
"""build/bin/coworker-bench against a 3-participant cluster of real processes (label `process`).

Started through tools/cluster on random ports, stopped in `finally`. Checks:
  1. closed loop, single appends routed to leaders, --json: the DESIGN §8
     fields, sane figures, nothing stopped or indeterminate;
  2. open loop (--rate) of windows of 8, zipf, spread over the participants
     (hopping), with --plot: every due window acknowledged or counted as
     unsent, never more than the schedule, and an SVG plot;
  3. the log: reading every bucket back finds exactly the messages each run
     counted as acknowledged, and no (connection, series) twice;
  4. usage: a bad flag exits 2 with one line, --help exits 0.
COWORKER_BIN and COWORKER_BENCH name the binaries (default build/bin/).
"""
import json
import os
import subprocess
import urllib.request

from harness import ROOT, check, own_cluster

BENCH = os.environ.get("COWORKER_BENCH", os.path.join(ROOT, "build", "bin", "coworker-bench"))
FIELDS = ["messages_per_s", "windows_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
          "errors", "acknowledged_messages", "indeterminate_messages", "unsent_windows"]


def bench(*args, timeout=120):
    done = subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def bench_json(*args):
    code, out, err = bench(*args, "--json")
    if code != 0:
        print(f"coworker-bench {' '.join(args)} -> {code}\n{out}{err}")
    check(code == 0, "coworker-bench exits 0")
    report = json.loads(out)
    for field in FIELDS:
        check(field in report, f"--json has {field}: {report}")
    check(report["stopped_early"] is None, f"not stopped early: {report}")
    check(report["indeterminate_messages"] == 0, f"nothing indeterminate: {report}")
    check(report["messages_per_s"] > 0, f"messages were measured: {report}")
    check(0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"], f"percentiles: {report}")
    return report


def entries_of(server, buckets):
    """Every entry of every bucket, read from the leaders (hopped)."""
    entries = []
    for bucket in range(buckets):
        position = 0
        while True:
            url = f"http://{server}/v1/buckets/{bucket}/entries?from={position}&limit=1000"
            with urllib.request.urlopen(url, timeout=10) as reply:
                page = json.load(reply)
            entries += page["entries"]
            if not page["entries"]:
                break
            position = page["next"]
    return entries


def check_log(server, buckets, runs):
    entries = entries_of(server, buckets)
    seen = set()
    for entry in entries:
        key = (entry["connection"], entry["series"])
        check(key not in seen, f"(connection, series) {key} logged once")
        seen.add(key)
    for prefix, report in runs.items():
        found = sum(1 for entry in entries if entry["identifier"].startswith(prefix))
        check(found == report["acknowledged_messages"],
              f"{prefix}: {found} entries in the log, the bench acknowledged "
              f"{report['acknowledged_messages']}")
        print(f"  {prefix}: {found} entries = acknowledged")
    check(len(entries) == sum(r["acknowledged_messages"] for r in runs.values()),
          "nothing else in the log")


def check_usage(servers):
    code, out, err = bench("--server", servers, "--window", "0")
    check(code == 2 and len(err.strip().splitlines()) == 1 and "--window" in err,
          f"a bad flag: exit 2, one line naming it: {code} {err!r}")
    code, out, err = bench("--duration", "1")
    check(code == 2 and "--server" in err, f"--server is required: {code} {err!r}")
    code, out, _ = bench("--help")
    check(code == 0 and "--rate" in out and "--plot" in out, "--help")


def main():
    with own_cluster("coworker-bench-") as (directory, cluster):
        cluster.run("start", "3", "--base-port", str(cluster.base_port))
        servers = ",".join(cluster.http(i) for i in (1, 2, 3))
        with urllib.request.urlopen(f"http://{cluster.http(1)}/v1/cluster", timeout=5) as reply:
            buckets = json.load(reply)["buckets_total"]

        closed = bench_json("--server", servers, "--duration", "2", "--warmup", "500ms",
                            "--connections", "8", "--prefix", "closed-")
        check(closed["mode"] == "closed" and closed["window"] == 1, f"closed loop: {closed}")
        print(f"ok 1: closed loop, {closed['messages_per_s']:.0f} messages/s, "
              f"p99 {closed['p99_ms']} ms")

        plot = os.path.join(directory, "latency.svg")
        rate, seconds = 100, 2.5
        opened = bench_json("--server", servers, "--duration", "2", "--warmup", "500ms",
                            "--rate", str(rate), "--window", "8", "--connections", "8",
                            "--distribution", "zipf", "--route", "spread", "--prefix", "open-",
                            "--plot", plot)
        due = int(rate * seconds)
        check(opened["mode"] == "open", f"open loop: {opened}")
        check(opened["acknowledged_windows"] + opened["unsent_windows"] == due,
              f"{due} windows due: acknowledged + unsent: {opened}")
        check(opened["acknowledged_messages"] == 8 * opened["acknowledged_windows"], "windows of 8")
        with open(plot) as f:
            svg = f.read()
        check(svg.startswith("<svg") and "<polyline" in svg and svg.rstrip().endswith("</svg>"),
              "--plot writes an SVG with a curve")
        print(f"ok 2: open loop, {opened['acknowledged_windows']} of {due} windows acknowledged, "
              f"p99 {opened['p99_ms']} ms, plot written")

        check_log(cluster.http(2), buckets, {"closed-": closed, "open-": opened})
        print("ok 3: the log holds exactly what the bench acknowledged")
        check_usage(servers)
        print("ok 4: usage errors and --help")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
