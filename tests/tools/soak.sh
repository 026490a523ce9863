#!/usr/bin/env bash
# The multi-process soak of issue 16: the life, faults, failover,
# unreachable and membership damage tests (tests/tools/*_test.py, each a
# cluster of real processes, most under load with DESIGN §7 read back from
# every replica at the end), run in turn ROUNDS times. Run by hand on a quiet
# machine, not in CI (each round takes about 105 s); it needs build/bin from
# tools/build.
#
#   tests/tools/soak.sh [ROUNDS]        # default 5
#
# Prints each test's summary lines per round (times to resume, acknowledged
# and indeterminate counts), then the rounds and failures; exit status 0 only
# when every run passed. A failing run's cluster directory is kept (its
# participants' logs are there) and named.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${1:-5}
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: tests/tools/soak.sh [ROUNDS]   (ROUNDS a positive integer)" >&2
  exit 2
fi
export COWORKER_BIN="$root/build/bin/coworker"
[ -x "$COWORKER_BIN" ] || { echo "no $COWORKER_BIN: run tools/build" >&2; exit 2; }

tests=(life_test.py faults_test.py failover_test.py unreachable_test.py membership_damage_test.py)
failures=0
for round in $(seq 1 "$rounds"); do
  for test in "${tests[@]}"; do
    started=$(date +%s)
    log=$(mktemp /tmp/coworker-soak.XXXXXX)
    if COWORKER_TEST_KEEP=1 python3 "$here/$test" >"$log" 2>&1; then
      status=ok
    else
      status=FAILED
      failures=$((failures + 1))
    fi
    echo "round $round $test: $status in $(($(date +%s) - started)) s"
    grep -E "^(ok 4: [0-9]|ok 6|ok: every case|ok: participant .* returned|ok 1: a membership|ok 2: [0-9]|FAIL)" "$log" | sed 's/^/  /' || true
    kept=$(sed -n 's/^kept \([^ ]*\).*/\1/p' "$log")
    if [ "$status" = ok ]; then
      [ -n "$kept" ] && rm -rf "$kept"
      rm -f "$log"
    else
      echo "  output: $log; cluster kept: ${kept:-none}"
    fi
  done
done
echo "soak: $rounds rounds of ${#tests[@]} tests, $failures failed"
[ "$failures" -eq 0 ]
