"""The load generators of bench/compare/run, one function each. Every one runs
a closed loop for `duration` seconds and returns a dict: rate (acknowledged
operations per second), p50_ms, p99_ms, acked (every operation acknowledged
while it ran, warm-up included: what the server's CPU time is divided by),
errors, and raw (the tool's own figures)."""
import json
import os
import subprocess

from servers import SetupError

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(command, timeout, env=None, cwd=None):
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)
    if done.returncode != 0 and not done.stdout.strip():
        raise SetupError(f"{command[0]} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return done.stdout


def coworker_bench(binary, addresses, connections, window, duration):
    """build/bin/coworker-bench --json, closed loop, each request routed to its
    bucket's leader; 100-byte messages over 100000 identifiers (in Coworker
    every append is a new entry whatever its identifier)."""
    out = _run([binary, "--server", ",".join(addresses), "--json", "--duration", str(duration),
                "--connections", str(connections), "--window", str(window),
                "--message-bytes", "100", "--identifiers", "100000"], timeout=duration + 120)
    raw = json.loads(out)
    return {"rate": raw["messages_per_s"], "p50_ms": raw["p50_ms"], "p99_ms": raw["p99_ms"],
            "acked": raw["acknowledged_messages"], "errors": raw["errors"], "raw": raw}


def wrk(url, threads, connections, duration, workload):
    """wrk with bench/compare/wrk.lua (workload etcd_put or get)."""
    env = dict(os.environ, COMPARE_WORKLOAD=workload)
    out = _run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
                "--latency", "-s", os.path.join(HERE, "wrk.lua"), url], timeout=duration + 60,
               env=env)
    line = next((l for l in out.splitlines() if l.startswith("compare: ")), None)
    if line is None:
        raise SetupError(f"wrk printed no summary: {out[-400:]}")
    raw = json.loads(line[len("compare: "):])
    acked = raw["requests"] - raw["not_2xx"]
    return {"rate": acked / raw["duration_s"], "p50_ms": raw["p50_ms"], "p99_ms": raw["p99_ms"],
            "acked": acked, "errors": raw["not_2xx"] + raw["socket_errors"], "raw": raw}


def redis_benchmark(port, clients, count):
    """redis-benchmark SET of 100 bytes under random keys (-r 10^9: a repeat
    is rare), `count` requests, at `clients` connections, no pipelining."""
    out = _run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
                "-n", str(count), "-r", "1000000000", "-d", "100", "-t", "set", "-P", "1",
                "--csv"], timeout=600)
    rows = [line.replace('"', "").split(",") for line in out.splitlines() if line.strip()]
    header = rows[0]
    row = next(r for r in rows[1:] if r[0] == "SET")
    raw = {name: (float(value) if i else value) for i, (name, value) in enumerate(zip(header, row))}
    return {"rate": raw["rps"], "p50_ms": raw["p50_latency_ms"], "p99_ms": raw["p99_latency_ms"],
            "acked": count, "errors": 0, "raw": raw}


def nats_publish(addresses, clients, duration):
    """bench/compare/nats/publish.mjs: publish and await the JetStream ack."""
    out = _run(["node", os.path.join(HERE, "nats", "publish.mjs"), "--servers", ",".join(addresses),
                "--clients", str(clients), "--duration", str(duration)], timeout=duration + 120,
               cwd=os.path.join(HERE, "nats"))
    raw = json.loads(out.strip().splitlines()[-1])
    return {"rate": raw["messages_per_s"], "p50_ms": raw["p50_ms"], "p99_ms": raw["p99_ms"],
            "acked": raw["acked"], "errors": raw["errors"], "raw": raw}


def floors(binary, folder, seconds):
    """build/bin/coworker-bench-floors: 4 KiB write+fdatasync in `folder`, and
    a 64-byte loopback round trip; p50 of each."""
    raw = json.loads(_run([binary, "--dir", folder, "--seconds", str(seconds), "--json"],
                          timeout=2 * seconds + 60))
    return raw
