#!/usr/bin/env bash
# The grading step of the reusable workflow (.github/workflows/grade-submission.yml) and
# of the class workflow, runnable as it is on any machine:
#
#   ci/grade-submission.sh SUBMISSION...     one submission, several, or a class folder
#
# It grades (live on the cluster of $KUBECONFIG, or with OFFLINE=1 statically), writes
# every report into $GRADE_OUT (default out/; a class: out/<name>/ each and the class
# table out/class.{md,csv,json}), and then, for GitHub:
#   - prints each report's findings as workflow commands (annotations.txt), which GitHub
#     turns into annotations on the student's lines;
#   - appends the Markdown summary (with its replica charts) to $GITHUB_STEP_SUMMARY;
#   - writes the outputs `score`, `report` (the Markdown summary) and `name` (the
#     submission's safe name, for artifact names) to $GITHUB_OUTPUT.
# Both variables unset (a terminal), it prints the summary and writes no outputs.
#
# MIN_SCORE     the grade's --min-score (exit 2 below it)
# PLOT_TIMELINES  a folder of saved timelines (e.g. target/e2e-timelines) to chart too
# GRADER        the grader's binary (default: cargo run --release)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: ci/grade-submission.sh SUBMISSION..." >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${GRADE_OUT:-out}
if [ -n "${GRADER:-}" ]; then
  grader=("$GRADER")
else
  grader=(cargo run --release -q --manifest-path "$repo/Cargo.toml" --)
fi
args=(grade "$@" --out "$out" --format markdown)
[ "${OFFLINE:-}" != 1 ] || args+=(--offline)
[ -z "${MIN_SCORE:-}" ] || args+=(--min-score "$MIN_SCORE")
mkdir -p "$out"
status=0
"${grader[@]}" "${args[@]}" >"$out/stdout.md" || status=$?

# One report folder (one submission) or one per submission (a class).
if [ -f "$out/report.json" ]; then
  dirs=("$out")
  summary=$out/summary.md
else
  dirs=()
  for dir in "$out"/*/; do [ -f "$dir/report.json" ] && dirs+=("${dir%/}"); done
  summary=$out/class.md
fi

# Annotations: GitHub reads workflow commands from the step's output. Each line was
# escaped by the grader; nothing else the student wrote is printed before them.
for dir in "${dirs[@]}"; do
  [ ! -s "$dir/annotations.txt" ] || cat "$dir/annotations.txt"
done

# The step summary: the class table first, then each submission's report.
full=$out/step-summary.md
{
  if [ "$summary" = "$out/class.md" ]; then cat "$out/class.md"; fi
  for dir in "${dirs[@]}"; do
    if [ "${#dirs[@]}" -gt 1 ]; then printf '\n---\n\n'; fi
    cat "$dir/summary.md"
  done
  if [ -n "${PLOT_TIMELINES:-}" ] && compgen -G "$PLOT_TIMELINES/*.json" >/dev/null; then
    "${grader[@]}" plot "$PLOT_TIMELINES"/*.json --out "$out/plots"
  fi
} >"$full"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$full" >>"$GITHUB_STEP_SUMMARY"
else
  cat "$full"
fi

# Outputs. The score: the one submission's, or the class's mean.
if [ "${#dirs[@]}" -eq 1 ]; then
  score=$(sed -n 's/^    "earned": \([0-9.]*\),*$/\1/p' "${dirs[0]}/report.json" | head -n 1)
  name=$(basename "$(cd "$1" && pwd)" | tr -c 'A-Za-z0-9._\n-' '_')
else
  score=$(sed -n 's/.*"mean": \([0-9.]*\).*/\1/p' "$out/class.json" | head -n 1)
  name=class
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  # A multi-line value ends at its delimiter: a random one the report does not hold.
  delimiter="report_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  ! grep -qF "$delimiter" "$full" || { echo "ci/grade-submission.sh: delimiter collision" >&2; exit 1; }
  {
    echo "score=${score:-0}"
    echo "name=${name}"
    echo "report<<$delimiter"
    head -c 60000 "$full"
    echo
    echo "$delimiter"
  } >>"$GITHUB_OUTPUT"
fi
echo "ci/grade-submission.sh: score ${score:-?}; reports in $out/ (exit $status)" >&2
exit "$status"
