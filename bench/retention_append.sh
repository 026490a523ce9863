#!/usr/bin/env bash
# One question (issue 12 point 7): do appends slow down while retention
# runs? Side by side in one run: a 3-participant cluster on loopback without
# retention, then the same with --retention-bytes, alternating, N rounds.
#
#   bench/retention_append.sh [--runs N] [--duration S] [--segment-bytes SIZE]
#                             [--retention-bytes SIZE] [--message-bytes B]
#                             [--prepare fallocate|recycle|zero_fill|none]
#
# Each run starts its own cluster with tools/cluster (--cores 1, its own
# directory and ports), drives it with coworker-bench (64 connections,
# closed loop, single appends routed to their leaders) and stops it. Prints
# each run (appends/s, p50, p99, segments left in participant 1's log) and
# the median of the per-round ratios with/without. Small segments make
# rounds frequent: the worst case for the ratio. --prepare applies to the
# runs with retention (recycle: retired segments become the next ones); the
# runs without keep the default, fallocate.
set -euo pipefail
cd "$(dirname "$0")/.."
name=retention-append
runs=3 duration=8 segment=4MiB retention=16MiB message=1000 prepare=fallocate
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --segment-bytes) segment=$2; shift 2 ;;
    --retention-bytes) retention=$2; shift 2 ;;
    --message-bytes) message=$2; shift 2 ;;
    --prepare) prepare=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "$name: unknown argument $1" >&2; exit 2 ;;
  esac
done
for binary in build/bin/coworker build/bin/coworker-bench; do
  [[ -x $binary ]] || { echo "$name: $binary missing: build first (tools/build)" >&2; exit 1; }
done
export COWORKER_CLUSTER_DIR
COWORKER_CLUSTER_DIR=$(mktemp -d "/tmp/coworker-$name-XXXXXX")
trap 'tools/cluster stop >/dev/null 2>&1 || true; rm -rf "$COWORKER_CLUSTER_DIR"' EXIT
base=$((20000 + RANDOM % 20000))
servers="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
results=()
for round in $(seq "$runs"); do
  for mode in without with; do
    extra=(--segment-bytes "$segment")
    [[ $mode == with ]] && extra+=(--retention-bytes "$retention" --prepare "$prepare")
    tools/cluster start 3 --base-port "$base" --cores 1 -- "${extra[@]}" >/dev/null
    json=$(build/bin/coworker-bench --server "$servers" --duration "$duration" --warmup 1 \
             --connections 64 --message-bytes "$message" --json)
    tools/cluster stop >/dev/null  # first: retention deletes segments while it runs
    segments=$(find "$COWORKER_CLUSTER_DIR/p1/log/core-000" -name '*.seg' | wc -l)
    line=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["messages_per_s"]), d["p50_ms"], d["p99_ms"])' "$json")
    echo "round $round $mode retention: appends/s p50_ms p99_ms = $line, segments left $segments"
    results+=("$round $mode $line")
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
by = {}
for r in rows:
    by.setdefault(r[0], {})[r[1]] = float(r[2])
ratios = [v["with"] / v["without"] for v in by.values() if v.get("without")]
print("ratios with/without per round:", " ".join(f"{x:.2f}" for x in ratios))
print(f"median ratio: {statistics.median(ratios):.2f} (aim: >= 0.95)")'
