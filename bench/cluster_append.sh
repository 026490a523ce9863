#!/usr/bin/env bash
# One question: how many single 100-byte appends per second does a bucket
# leader of a 3-participant cluster on loopback acknowledge (3-way
# replicated, fdatasync on every replica), at 64 concurrent connections?
#
#   bench/cluster_append.sh [--runs N] [--duration S] [--cores C] [--sync always|none]
#
# Starts the cluster with tools/cluster (its own directory and ports), waits
# until every government is at its target of three, picks identifiers whose
# buckets participant 1 leads, and runs `wrk -t2 -c64` against participant 1
# N times; prints each run and the median of requests/s and p99. A first
# figure for issue 14 (the performance issue sets targets and compares with
# etcd, NATS and Redis side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
name=cluster-append
runs=3 duration=10 cores=1 sync=always
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --cores) cores=$2; shift 2 ;;
    --sync) sync=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "$name: unknown argument $1" >&2; exit 2 ;;
  esac
done
source bench/http_common.sh
start_cluster "$cores" "$sync"
leader="127.0.0.1:$((base + 1))"
ids=$(python3 - "$leader" <<'PY'
import json, sys, urllib.request
view = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}/v1/cluster"))
mine = {b["bucket"] for b in view["buckets"] if b["leader"] == view["self"]}
ids, n = [], 0
while len(ids) < 4 * len(mine) and n < 100000:
    h = 14695981039346656037
    for byte in f"k{n}".encode():
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    if h % view["buckets_total"] in mine:
        ids.append(f"k{n}")
    n += 1
print(",".join(ids))
PY
)
export COWORKER_IDS=$ids
echo "3 participants, --cores $cores, --sync $sync; wrk -t2 -c64 -d${duration}s at participant 1"
echo "  ($(tr ',' '\n' <<<"$ids" | wc -l) identifiers in the buckets it leads)"
results=()
for run in $(seq 1 "$runs"); do
  result=$(measure "http://$leader" 64 "$duration" bench/wrk/append_at_leader.lua)
  echo "  run $run: $(awk '{printf "%.0f appends/s, p99 %.2f ms", $1, $2}' <<<"$result")"
  results+=("$result")
done
rps=$(printf '%s\n' "${results[@]}" | awk '{print $1}' | median)
p99=$(printf '%s\n' "${results[@]}" | awk '{print $2}' | median)
printf 'median of %d: %.0f appends/s, p99 %.2f ms\n' "$runs" "$rps" "$p99"
