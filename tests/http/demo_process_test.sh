#!/usr/bin/env bash
# Process test: real curl, wrk and slowloris clients against the
# coworker-http-demo executable. Starts it on a free port, waits for
# readiness by polling /v1/health, stops it by PID (SIGTERM → exit 0).
#
#   demo_process_test.sh path/to/coworker-http-demo
set -euo pipefail
demo=${1:?usage: demo_process_test.sh DEMO_BINARY}
for tool in curl wrk python3; do
  command -v $tool >/dev/null || { echo "FAIL: $tool missing (tools/install-deps)"; exit 1; }
done
work=$(mktemp -d /tmp/coworker-http-process.XXXXXX)
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$demo" --listen 127.0.0.1:0 --cores 2 --recv multishot --request-timeout-ms 500 \
  >"$work/out" 2>"$work/err" &
pid=$!
# The port is in the first line of output ("listening on 127.0.0.1:PORT ...").
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/out")
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || fail "demo exited: $(cat "$work/err")"
  sleep 0.05
done
[[ -n $port ]] || fail "demo printed no port"
base=http://127.0.0.1:$port
ready=""
for _ in $(seq 1 200); do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' $base/v1/health || true)" == 200 ]]; then
    ready=yes; break
  fi
  sleep 0.05
done
[[ -n $ready ]] || fail "/v1/health never answered 200"

expect() {  # expect WHAT GOT WANT
  [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"
  echo "ok: $1"
}
expect "curl health" "$(curl -s $base/v1/health)" '{"state": "serving"}'
expect "curl echo" "$(curl -s -X POST --data-binary 'hello, coworker' $base/v1/echo)" "hello, coworker"
expect "curl chunked upload" \
  "$(curl -s -H 'Transfer-Encoding: chunked' --data-binary 'in chunks' $base/v1/echo)" "in chunks"
expect "curl HTTP/1.0" "$(curl -s -0 $base/v1/health)" '{"state": "serving"}'
expect "curl 404" "$(curl -s -o /dev/null -w '%{http_code}' $base/v1/none)" 404
expect "curl 405" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT $base/v1/health)" 405
expect "curl path parameter" "$(curl -s "$base/v1/buckets/a%20b/entries?from=3")" \
  '{"bucket": "a b", "from": 3, "limit": 100}'
head -c $((2 << 20)) /dev/zero > "$work/big"
expect "curl 413 (1 MiB route, Expect: 100-continue)" \
  "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$work/big" $base/v1/echo)" 413
expect "curl 16 MiB route takes 2 MiB" \
  "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$work/big" $base/v1/echo-json)" 400
expect "curl keep-alive reuse" \
  "$(curl -s -w '%{num_connects}\n' $base/v1/health $base/v1/health -o /dev/null -o /dev/null | paste -sd' ')" \
  "1 0"

# wrk, GET and POST: every answer 2xx, no socket errors.
check_wrk() {
  local name=$1; shift
  local out; out=$(wrk -t2 -c32 -d2s "$@")
  grep -q "Non-2xx" <<<"$out" && fail "$name: non-2xx answers: $out"
  grep -q "Socket errors" <<<"$out" && fail "$name: socket errors: $out"
  local n; n=$(awk '/requests in/ {print $1}' <<<"$out")
  (( n > 1000 )) || fail "$name: only $n requests"
  echo "ok: $name ($n requests)"
}
check_wrk "wrk GET /v1/health" $base/v1/health
printf 'wrk.method = "POST"\nwrk.body = string.rep("x", 100)\n' > "$work/post.lua"
check_wrk "wrk POST /v1/echo" -s "$work/post.lua" $base/v1/echo

# Slowloris: 200 connections that never finish their request are all closed
# by the server (request timeout 500 ms), and its memory comes back.
rss() { awk '/^VmRSS:/ {print $2}' /proc/$pid/status; }
slowloris() {
  python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for _ in range(200):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    socks.append(s)
# Keep trickling one byte per connection until the server closes it (EOF or
# reset), for 10 s at most.
deadline = time.time() + 10
closed = 0
for s in socks:
    s.settimeout(0.05)
    try:
        while time.time() < deadline:
            s.sendall(b"a")
            try:
                if s.recv(1) == b"":
                    closed += 1
                    break
            except socket.timeout:
                pass
    except (ConnectionResetError, BrokenPipeError):
        closed += 1
    s.close()
print(closed)
PY
}
first=$(slowloris)
expect "slowloris round 1 closed by the server" "$first" 200
baseline=$(rss)
second=$(slowloris)
expect "slowloris round 2 closed by the server" "$second" 200
after=$(rss)
(( after <= baseline + 2048 )) || fail "RSS grew from $baseline KiB to $after KiB"
echo "ok: RSS $baseline KiB → $after KiB"
expect "still serving" "$(curl -s $base/v1/health)" '{"state": "serving"}'

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
expect "SIGTERM exit status" "$status" 0
echo "demo process test: all passed"
