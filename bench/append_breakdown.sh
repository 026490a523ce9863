#!/usr/bin/env bash
# Where a single append's time and CPU go in a 3-participant cluster on
# loopback (docs/PERFORMANCE.md, "Where an append's time goes now"):
#
#   bench/append_breakdown.sh [--runs N] [--duration S] [--connections C]
#                             [--window N] [--sync always|none] [-- COWORKER FLAGS]
#
# Starts the cluster (`--cores 1` each, its own folder and ports), waits until
# every government is at its target, then N times runs coworker-bench (single
# 100-byte appends to each bucket's leader, closed loop) while reading every
# participant's /metrics and /proc/PID/stat before and after, and vmstat
# during. Prints per run: appends/s and latency, then per participant its
# phaser writes, group commits and their mean time, records per commit, peer
# frames per append and CPU per append (utime + stime, io_uring workers
# included; in brackets utime alone, the user-space share); and the CPUs'
# split (user, system, idle, I/O wait). `--window N` sends windows of N
# messages instead of single appends (figures then per message). Extra flags
# after -- go to every participant (`-- --prepare zero_fill`).
set -euo pipefail
cd "$(dirname "$0")/.."
name=append-breakdown
runs=1 duration=5 connections=64 window=1 sync=always extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --sync) sync=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "$name: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in build/bin/coworker build/bin/coworker-bench; do
  [[ -x $tool ]] || { echo "$name: $tool is missing: run tools/build first" >&2; exit 1; }
done
command -v vmstat >/dev/null || { echo "$name: vmstat is missing (apt install procps)" >&2; exit 1; }
source bench/http_common.sh
start_cluster 1 "$sync" "${extra[@]}"
servers=$(seq -s, -f "127.0.0.1:%.0f" $((base + 1)) $((base + 3)))
echo "3 participants, --cores 1, --sync $sync ${extra[*]}; coworker-bench $connections connections, windows of $window, ${duration}s"

snapshot() {  # FILE: the counters of every participant, then its CPU ticks
  python3 - "$COWORKER_CLUSTER_DIR/cluster.json" > "$1" <<'PY'
import json, sys, urllib.request
wanted = ("coworker_appended_total", "coworker_writes_total", "coworker_fdatasync_seconds_sum",
          "coworker_fdatasync_seconds_count", "coworker_peer_frames_sent_total")
for i, p in enumerate(json.load(open(sys.argv[1]))["participants"], 1):
    text = urllib.request.urlopen(f"http://{p['http']}/metrics").read().decode()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] in wanted:
            print(i, fields[0], fields[1])
    stat = open(f"/proc/{p['pid']}/stat").read().rsplit(")", 1)[1].split()
    print(i, "cpu_ticks", int(stat[11]) + int(stat[12]))
    print(i, "user_ticks", int(stat[11]))
PY
}

for run in $(seq 1 "$runs"); do
  snapshot "$work/before"
  vmstat 1 "$((duration + 1))" > "$work/vmstat" &
  vm=$!
  build/bin/coworker-bench --server "$servers" --duration "${duration}s" --warmup 0 \
    --connections "$connections" --window "$window" > "$work/bench" 2>&1
  wait "$vm"
  snapshot "$work/after"
  echo "run $run:"
  grep -E "messages/s|latency" "$work/bench" | sed 's/^ */  /'
  python3 - "$work/before" "$work/after" "$(getconf CLK_TCK)" <<'PY'
import sys
def read(path):
    values = {}
    for line in open(path):
        i, key, value = line.split()
        values[(int(i), key)] = float(value)
    return values
before, after, hz = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
delta = lambda i, key: after[(i, key)] - before[(i, key)]
appended = sum(delta(i, "coworker_appended_total") for i in (1, 2, 3))
if appended == 0:
    sys.exit("no append was acknowledged")
for i in (1, 2, 3):
    syncs = delta(i, "coworker_fdatasync_seconds_count")
    writes = delta(i, "coworker_writes_total")
    print(f"  participant {i}: {writes:.0f} writes led, {syncs:.0f} group commits of "
          f"{1e3 * delta(i, 'coworker_fdatasync_seconds_sum') / max(syncs, 1):.3f} ms, "
          f"{delta(i, 'coworker_peer_frames_sent_total') / appended:.2f} peer frames sent and "
          f"{1e6 * delta(i, 'cpu_ticks') / hz / appended:.2f} us CPU per append "
          f"({1e6 * delta(i, 'user_ticks') / hz / appended:.2f} user)")
print(f"  messages per write: {appended / sum(delta(i, 'coworker_writes_total') for i in (1, 2, 3)):.2f}")
PY
  # vmstat's first line is the average since boot: skip it.
  awk 'NR > 3 {us += $13; sy += $14; id += $15; wa += $16; n++}
       END {if (n) printf "  CPUs: %.0f%% user, %.0f%% system, %.0f%% idle, %.0f%% I/O wait\n",
            us / n, sy / n, id / n, wa / n}' "$work/vmstat"
done
