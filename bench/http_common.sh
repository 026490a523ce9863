# Shared by the bench/ shell scripts (sourced, not run): a scratch folder
# and child processes cleaned up on exit, free ports, readiness polling, one
# wrk measurement, medians, a local cluster. Expects `name` (for messages) to
# be set, and the repository root as the working directory.

work=$(mktemp -d "/tmp/coworker-$name.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() {  # polls until the URL answers 200, or gives up after 10 s
  for _ in $(seq 1 200); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]] && return 0
    sleep 0.05
  done
  echo "$name: $1 never became ready" >&2; exit 1
}

# measure URL CONNECTIONS DURATION [LUA_SCRIPT] → "requests_per_s p99_ms"
measure() {
  local url=$1 connections=$2 duration=$3 script=${4:-} out
  if [[ -n $script ]]; then
    out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$script" "$url")
  else
    out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency "$url")
  fi
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000}
        else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000};
        print v}' <<<"$out")
  echo "$rps $p99"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start_cluster CORES SYNC [FLAG ...]: 3 participants by tools/cluster in $work/cluster,
# on random ports below the ephemeral range (participant I answers clients on
# 127.0.0.1:$((base + I))), stopped on exit. Returns once every bucket's
# government is at its target of three, so no migration runs under the load.
start_cluster() {
  export COWORKER_CLUSTER_DIR=$work/cluster
  base=$(( 10000 + RANDOM % 20000 ))
  trap stop_cluster EXIT
  tools/cluster start 3 --base-port "$base" --cores "$1" --sync "$2" -- "${@:3}" >/dev/null
  python3 - "127.0.0.1:$((base + 1))" <<'PY'
import json, sys, time, urllib.request
for _ in range(400):
    view = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}/v1/cluster"))
    if all(b["replicas"] == b["target"] for b in view["buckets"]):
        sys.exit(0)
    time.sleep(0.05)
sys.exit("governments still migrating after 20 s")
PY
}
stop_cluster() { tools/cluster stop >/dev/null 2>&1 || true; cleanup; }
