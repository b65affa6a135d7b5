#!/usr/bin/env bash
# Flakiness: runs the live suite N times against the running cluster, with no retries and
# without stopping at the first failure, and prints how often each test passed. A test
# that passes only sometimes is a flake to fix, not to retry away. Each run's JUnit report
# is kept under $OUT (default target/soak/run-<i>.xml).
#
#   ci/soak.sh N [nextest filter expression]     e.g. ci/soak.sh 5 'test(/^live_grade_reference/)'
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: ci/soak.sh N [filter]}
filter=${2:-}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "ci/soak.sh: N must be a positive count, not '$runs'" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/autoscale-conformance/cargo-target}
out=${OUT:-$CARGO_TARGET_DIR/soak}
mkdir -p "$out"
rm -f "$out"/run-*.xml
KUBECONFIG=${KUBECONFIG:-$(ci/cluster kubeconfig)}
export KUBECONFIG
# nextest's store is the workspace's target/nextest/, whatever CARGO_TARGET_DIR says.
junit=target/nextest/e2e/junit.xml
for i in $(seq 1 "$runs"); do
  echo "soak: run $i of $runs" >&2
  rm -f "$junit"
  args=(--workspace --profile e2e --retries 0 --no-fail-fast)
  [ -z "$filter" ] || args+=(-E "$filter")
  cargo nextest run "${args[@]}" || true
  # No report: the run itself broke (no cluster, a build error): say so, not "0 passed".
  [ -s "$junit" ] || { echo "soak: run $i wrote no JUnit report ($junit)" >&2; exit 1; }
  cp "$junit" "$out/run-$i.xml"
done
python3 - "$runs" "$out" <<'PY'
import sys, glob, collections
import xml.etree.ElementTree as ET
runs, out = int(sys.argv[1]), sys.argv[2]
passed = collections.Counter()
seen = collections.Counter()
for path in sorted(glob.glob(f"{out}/run-*.xml")):
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')} {case.get('name')}"
        seen[name] += 1
        if case.find("failure") is None and case.find("error") is None and case.find("skipped") is None:
            passed[name] += 1
flaky = 0
for name in sorted(seen):
    mark = "" if passed[name] == seen[name] else "  <- FLAKY" if passed[name] else "  <- FAILS"
    flaky += bool(mark)
    print(f"{passed[name]}/{seen[name]}  {name}{mark}")
print(f"soak: {runs} runs, {len(seen)} tests, {flaky} not passing every time")
sys.exit(1 if flaky else 0)
PY
