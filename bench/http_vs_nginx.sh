#!/usr/bin/env bash
# Question: how many requests/s does the HTTP layer serve compared with nginx,
# for the same fixed answers, the same number of workers as cores, the same
# load generator, measured side by side in one run?
#
#   bench/http_vs_nginx.sh [--runs 5] [--duration 5] [--cores N] [--recv multishot|single]
#
# Two workloads, each with `wrk -t2 -c64 --latency`:
#   health  GET /v1/health            → 200 {"state": "serving"}
#   echo    POST /v1/echo, 100 bytes  → 200 with the 100 bytes back
# nginx (Debian's) answers the same bytes: `return 200` of the fixed JSON, and
# for the POST the same 100-byte body as a fixed answer (nginx cannot echo
# without extra modules; it reads and drops the request body).
# Runs alternate (coworker, nginx, nginx, coworker, ...) so drift on this
# shared machine hits both; the medians of requests/s and of p99 are printed
# with their ratio. It installs nothing: a missing tool is named, with
# `tools/install-deps --bench` to get it.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
duration=5
cores=$(nproc)
recv=multishot
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --cores) cores=$2; shift 2 ;;
    --recv) recv=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--duration S] [--cores N] [--recv multishot|single]" >&2; exit 2 ;;
  esac
done

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
nginx_bin=$(command -v nginx || true)
[[ -z "$nginx_bin" && -x /usr/sbin/nginx ]] && nginx_bin=/usr/sbin/nginx
[[ -z "$nginx_bin" ]] && missing+=(nginx)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "http_vs_nginx: missing ${missing[*]}: run tools/install-deps --bench" >&2
  exit 1
fi
demo=build/bin/coworker-http-demo
[[ -x $demo ]] || { echo "http_vs_nginx: $demo missing: run tools/build" >&2; exit 1; }

name=http_vs_nginx
source bench/http_common.sh

body100=$(head -c 100 /dev/zero | tr '\0' 'x')
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = string.rep("x", 100)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA

cw_port=$(free_port)
"$demo" --listen 127.0.0.1:$cw_port --cores "$cores" --recv "$recv" >"$work/demo.log" 2>&1 &
pids+=($!)

ng_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes $cores;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$ng_port reuseport;
    location = /v1/health { default_type application/json; return 200 '{"state": "serving"}\n'; }
    location = /v1/echo { default_type application/octet-stream; return 200 '$body100'; }
  }
}
NGINX
"$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx" >"$work/nginx/stdout" 2>&1 &
pids+=($!)

wait_ready "http://127.0.0.1:$cw_port/v1/health"
wait_ready "http://127.0.0.1:$ng_port/v1/health"
# Same answer bytes for the POST from both (checked once, not timed).
[[ "$(curl -s -X POST --data-binary "$body100" http://127.0.0.1:$cw_port/v1/echo)" == "$body100" ]]
[[ "$(curl -s -X POST --data-binary "$body100" http://127.0.0.1:$ng_port/v1/echo)" == "$body100" ]]

echo "http_vs_nginx: wrk -t2 -c64 -d${duration}s, $runs alternating runs, $cores cores/workers," \
     "recv=$recv, $(nproc) CPUs shared with wrk (and with whatever else runs on this machine)"
for workload in health echo; do
  if [[ $workload == health ]]; then path=/v1/health; script=""; else path=/v1/echo; script="$work/post.lua"; fi
  : > "$work/cw"; : > "$work/ng"
  for run in $(seq 1 "$runs"); do
    if (( run % 2 )); then order="cw ng"; else order="ng cw"; fi
    for who in $order; do
      port=$cw_port; [[ $who == ng ]] && port=$ng_port
      result=$(measure "http://127.0.0.1:$port$path" 64 "$duration" "$script")
      echo "$result" >> "$work/$who"
      printf '  %-6s run %d %-8s %12s req/s  p99 %s ms\n' "$workload" "$run" \
        "$([[ $who == cw ]] && echo coworker || echo nginx)" $result
    done
  done
  cw_rps=$(cut -d' ' -f1 "$work/cw" | median); ng_rps=$(cut -d' ' -f1 "$work/ng" | median)
  cw_p99=$(cut -d' ' -f2 "$work/cw" | median); ng_p99=$(cut -d' ' -f2 "$work/ng" | median)
  ratio=$(awk -v a="$cw_rps" -v b="$ng_rps" 'BEGIN {printf "%.2f", a/b}')
  printf '%s: coworker %.0f req/s (p99 %s ms), nginx %.0f req/s (p99 %s ms), ratio %sx\n' \
    "$workload" "$cw_rps" "$cw_p99" "$ng_rps" "$ng_p99" "$ratio"
done
