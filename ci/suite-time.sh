#!/usr/bin/env bash
# The live suite's wall time against its longest test, from nextest's JUnit report
# (default target/nextest/e2e/junit.xml: nextest's store is the workspace's target/,
# whatever CARGO_TARGET_DIR says): the test groups and
# the order tests start in decide how close the run comes to its longest test (goal: at
# most 1.25x). Prints one line; exits 0 whatever the ratio (a number, not a gate).
#
#   ci/suite-time.sh [JUNIT]
set -euo pipefail
junit=${1:-target/nextest/e2e/junit.xml}
[ -s "$junit" ] || { echo "ci/suite-time.sh: no JUnit report at $junit" >&2; exit 1; }
# One tag per match, attributes in any order: the run's time and every test case's.
wall=$(grep -o '<testsuites [^>]*>' "$junit" | head -n 1 | grep -o ' time="[0-9.]*"' | grep -o '[0-9.]*' || true)
longest=$(grep -o '<testcase [^>]*>' "$junit" | while read -r tag; do
  time=$(grep -o ' time="[0-9.]*"' <<<"$tag" | grep -o '[0-9.]*' || true)
  name=$(grep -o ' name="[^"]*"' <<<"$tag" | sed 's/^ name="//; s/"$//' || true)
  [ -z "$time" ] || echo "$time $name"
done | sort -rn | head -n 1)
[ -n "$wall" ] && [ -n "$longest" ] || { echo "ci/suite-time.sh: no run time or test case in $junit" >&2; exit 1; }
awk -v wall="$wall" -v longest="${longest%% *}" -v name="${longest#* }" 'BEGIN {
  printf "e2e: wall %.0f s, longest test %.0f s (%s): %.2fx (goal <= 1.25x)\n", wall, longest, name, wall / longest
}'
