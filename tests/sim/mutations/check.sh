#!/usr/bin/env bash
# Proves that the simulator's checks bite (issue 3, point 8).
#
# For each mutation (*.patch here, or the ones named on the command line):
# apply it to a scratch copy of the tree, build coworker-sim there, run the
# CI seed range, and expect a violation. Prints each mutation's failing seeds.
# Run by hand, not in CI (one -O2 build of the simulator, then one rebuild of
# a file per mutation):
#
#   tests/sim/mutations/check.sh                       # all, the CI seeds 1..8000
#   SEEDS=500 tests/sim/mutations/check.sh 3-promise-without-accepted.patch
#
# Exit status 0 only when every mutation was caught.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
first=${FIRST:-1}
seeds=${SEEDS:-8000}  # the CI range (tests/sim/CMakeLists.txt)
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
  rc=0
  # A patch runs the seeds of its protocol's families (named in the patch's
  # file name: "phaser" patches run the phaser- families, others paxos-).
  families=paxos-
  case "$name" in *phaser*) families=phaser- ;; esac
  output=$("$scratch/build/bin/coworker-sim" --seed "$first" --seeds "$seeds" \
    --families "$families" 2>&1) || rc=$?
  failing=$(grep -o '^seed=[0-9]*' <<<"$output" | sed 's/seed=//' | tr '\n' ' ' || true)
  count=$(wc -w <<<"$failing")
  if [ "$rc" -ne 0 ] && [ "$count" -gt 0 ]; then
    how="checker"
    grep -q '^assertion failed' <<<"$output" && how="assertion"
    first_line=$(grep -m1 -E '^(seed=[0-9]+ family|assertion failed)' <<<"$output" || true)
    echo "caught  $name: $count of $seeds seeds fail ($how); seeds: $(cut -d' ' -f1-12 <<<"$failing")"
    echo "        first: $first_line"
  else
    echo "MISSED  $name: no violation in seeds $first..$((first + seeds - 1)) of $families"
    status=1
  fi
  (cd "$scratch" && git apply -R "$patch")
done
exit $status
