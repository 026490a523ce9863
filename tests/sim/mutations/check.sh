#!/usr/bin/env bash
# Proves that the simulator's checks bite (issue 3, point 8).
#
# For each mutation (*.patch here, or the ones named on the command line):
# apply it to a scratch copy of the tree, build coworker-sim there, run the
# CI seed range of the families it concerns, and expect a violation. Prints
# each mutation's failing seeds. A patch names its families and CI seed count
# on a line "Sim: --family GROUP* --seeds N" before its diff (issue 3's
# Paxos mutations: paxos-*, 8000; issue 4's membership ones: member-*, 7000).
# Run by hand, not in CI (one -O2 build of the simulator, then one rebuild of
# a few files per mutation):
#
#   tests/sim/mutations/check.sh                       # all, each on its CI seeds
#   SEEDS=500 tests/sim/mutations/check.sh 3-promise-without-accepted.patch
#
# Exit status 0 only when every mutation was caught.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
first=${FIRST:-1}
jobs=${JOBS:-2}

patches=()
if [ $# -eq 0 ]; then
  for patch in "$here"/*.patch; do patches+=("$patch"); done
else
  for name in "$@"; do patches+=("$here/$(basename "$name")"); done
fi

scratch=$(mktemp -d /tmp/coworker-mutations.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# The scratch copy: every file git knows of or would add, as in the worktree.
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf -) |
  tar -xf - -C "$scratch"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$scratch" -B "$scratch/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=g++ >/dev/null

status=0
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  (cd "$scratch" && git apply "$patch")
  cmake --build "$scratch/build" --target coworker-sim -j "$jobs" >/dev/null
  # The patch's "Sim:" line: --family GROUP* --seeds N (the CI range).
  family=$(sed -n 's/^Sim: .*--family \([^ ]*\).*/\1/p' "$patch" | head -1)
  seeds=${SEEDS:-$(sed -n 's/^Sim: .*--seeds \([0-9]*\).*/\1/p' "$patch" | head -1)}
  seeds=${seeds:-8000}
  # An assertion stops the simulator (it prints "seed=S" last): go on from
  # the next seed, so a mutation caught by assertions is counted as the
  # checkers' are, over the whole range.
  rc=0
  output=""
  next=$first
  end=$((first + seeds))
  while [ "$next" -lt "$end" ]; do
    args=(--seed "$next" --seeds "$((end - next))")
    [ -n "$family" ] && args+=(--family "$family")
    part_rc=0
    part=$("$scratch/build/bin/coworker-sim" "${args[@]}" 2>&1) || part_rc=$?
    output+="$part"$'\n'
    [ "$part_rc" -ne 0 ] && rc=$part_rc
    stopped=$(tail -n1 <<<"$part" | sed -n 's/^seed=\([0-9]*\)$/\1/p')
    [ -z "$stopped" ] && break
    next=$((stopped + 1))
  done
  failing=$(grep -o '^seed=[0-9]*' <<<"$output" | sed 's/seed=//' | tr '\n' ' ' || true)
  count=$(wc -w <<<"$failing")
  if [ "$rc" -ne 0 ] && [ "$count" -gt 0 ]; then
    asserts=$(grep -c '^assertion failed' <<<"$output" || true)
    how="checker"
    [ "$asserts" -gt 0 ] && how="$asserts by assertion"
    first_line=$(grep -m1 -E '^(seed=[0-9]+ family|assertion failed)' <<<"$output" || true)
    echo "caught  $name: $count of $seeds seeds of ${family:-all families} fail ($how); seeds: $(cut -d' ' -f1-12 <<<"$failing")"
    echo "        first: $first_line"
  else
    echo "MISSED  $name: no violation in seeds $first..$((first + seeds - 1)) of ${family:-all families}"
    status=1
  fi
  (cd "$scratch" && git apply -R "$patch")
done
exit $status
