#!/usr/bin/env bash
# Question: does multishot recv into a provided buffer ring pay for the HTTP
# server, against one plain recv per read into a per-connection buffer?
#
#   bench/http_recv_modes.sh [--runs 5] [--duration 5] [--connections 64]
#
# Two coworker-http-demo processes (same cores), one per mode, measured with
# `wrk -t2 -c<connections> --latency` on GET /v1/health in alternating runs;
# medians of requests/s and p99 and the server RSS are printed with the ratio.
# It also reports RSS after holding 2000 idle keep-alive connections, where
# provided buffers are meant to save memory. Installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5; duration=5; connections=64; cores=$(nproc)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--duration S] [--connections C]" >&2; exit 2 ;;
  esac
done
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "http_recv_modes: missing $tool: run tools/install-deps --bench" >&2; exit 1; }
done
demo=build/bin/coworker-http-demo
[[ -x $demo ]] || { echo "http_recv_modes: $demo missing: run tools/build" >&2; exit 1; }
name=http_recv_modes
source bench/http_common.sh

declare -A port pid
for mode in single multishot; do
  port[$mode]=$(free_port)
  "$demo" --listen 127.0.0.1:${port[$mode]} --cores "$cores" --recv $mode >/dev/null 2>&1 &
  pid[$mode]=$!; pids+=($!)
  wait_ready "http://127.0.0.1:${port[$mode]}/v1/health"
done
echo "http_recv_modes: wrk -t2 -c$connections -d${duration}s GET /v1/health, $runs alternating runs," \
     "$cores cores, $(nproc) CPUs shared with wrk and anything else running here"
: > "$work/single"; : > "$work/multishot"
for run in $(seq 1 "$runs"); do
  if (( run % 2 )); then order="single multishot"; else order="multishot single"; fi
  for mode in $order; do
    result=$(measure "http://127.0.0.1:${port[$mode]}/v1/health" "$connections" "$duration")
    echo "$result" >> "$work/$mode"
    printf '  run %d %-9s %12s req/s  p99 %s ms\n' "$run" "$mode" $result
  done
done
for mode in single multishot; do
  r=$(cut -d' ' -f1 "$work/$mode" | median); p=$(cut -d' ' -f2 "$work/$mode" | median)
  printf '%-9s median %.0f req/s, p99 %s ms, RSS %s KiB\n' "$mode" "$r" "$p" "$(rss_kib ${pid[$mode]})"
  eval "rps_$mode=$r"
done
awk -v a="$rps_multishot" -v b="$rps_single" 'BEGIN {printf "multishot/single: %.2fx requests/s\n", a/b}'
# Memory with many idle keep-alive connections (each sent one request).
for mode in single multishot; do
  before=$(rss_kib ${pid[$mode]})
  held=$(python3 - "${port[$mode]}" "$work/hold.$mode" <<'PY'
import socket, sys, os
port = int(sys.argv[1]); socks = []
for _ in range(2000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"); socks.append(s)
for s in socks:
    data = b""
    while not data.endswith(b"}\n"): data += s.recv(4096)
open(sys.argv[2], "w").write("held")
print(len(socks))
import time
# Hold them until our parent has read the server's RSS (a file appears).
while not os.path.exists(sys.argv[2] + ".done"): time.sleep(0.05)
PY
  ) &
  holder=$!
  while [[ ! -f "$work/hold.$mode" ]]; do sleep 0.05; done
  during=$(rss_kib ${pid[$mode]})
  touch "$work/hold.$mode.done"; wait $holder
  printf '%-9s RSS %s KiB idle → %s KiB holding 2000 idle keep-alive connections (+%s KiB)\n' \
    "$mode" "$before" "$during" "$((during - before))"
done
