#!/usr/bin/env bash
# `make bench-class`: offline grading of a class, batch against one process per
# submission (release build). Prints numbers; asserts nothing.
#
#   1. the reference and five broken fixtures: the sum of six single `grade --offline`
#      runs (each a whole process, as a workflow step runs it) against one
#      `grade --offline CLASS --out` over all six (goal: at most 0.5x);
#   2. a synthetic class of 100 submissions (those six, copied) in one batch (goal: at
#      most 10 s on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
# GRADER=<binary> measures that build instead (e.g. a debug one: slower, same shape).
if [ -n "${GRADER:-}" ]; then
  bin=$GRADER
else
  cargo build --release -q --bin autoscale-conformance
  bin=${CARGO_TARGET_DIR:-target}/release/autoscale-conformance
fi
echo "grader: $bin; load average $(cut -d' ' -f1-3 /proc/loadavg) (other builds on the machine slow every number)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

ci/class-fixture.sh "$scratch/six"
# Warm the page cache and the tools' binaries once.
"$bin" grade --offline --quiet "$scratch/six/reference" >/dev/null
single=0
for dir in "$scratch"/six/*; do
  start=$(date +%s%N)
  "$bin" grade --offline --quiet "$dir" --out "$scratch/single/$(basename "$dir")" >/dev/null
  took=$(ms "$start")
  printf '  single %-32s %5d ms\n' "$(basename "$dir")" "$took"
  single=$((single + took))
done
start=$(date +%s%N)
"$bin" grade --offline --quiet "$scratch/six" --out "$scratch/batch" >/dev/null 2>&1
batch=$(ms "$start")
echo "class of 6 (reference + 5 broken), offline, $(nproc) cores:"
echo "  sum of 6 single runs: ${single} ms"
echo "  one batch run:        ${batch} ms"
awk -v b="$batch" -v s="$single" 'BEGIN { printf "  batch / single sum:   %.2fx (goal <= 0.5x)\n", b / s }'

# 100 submissions: the six fixtures, copied 17 times (102), trimmed to 100.
ci/class-fixture.sh "$scratch/hundred" 17 >/dev/null
ls -d "$scratch"/hundred/* | tail -n +101 | xargs -r rm -rf
count=$(ls "$scratch/hundred" | wc -l)
start=$(date +%s%N)
"$bin" grade --offline --quiet "$scratch/hundred" --out "$scratch/hundred-out" >/dev/null 2>&1
took=$(ms "$start")
rows=$(($(wc -l <"$scratch/hundred-out/class.csv") - 1))
echo "class of ${count} (synthetic: the six, copied), offline, one batch: ${took} ms (goal <= 10000 ms); ${rows} rows in class.csv"
