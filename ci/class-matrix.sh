#!/usr/bin/env bash
# The class workflow's list of repositories as a job matrix: prints `matrix=<JSON list>`
# for $GITHUB_OUTPUT. Each entry must be owner/name (letters, digits, `.`, `_`, `-`):
# anything else is refused, so nothing a list holds reaches a later step as code.
#
#   ci/class-matrix.sh "org/alice org/bob,org/carol"
set -euo pipefail
set -f # the list is split on blanks, never globbed
list=${1:-}
entries=()
for entry in $(printf '%s' "$list" | tr ',;' '  '); do
  if ! [[ $entry =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]; then
    echo "ci/class-matrix.sh: '$entry' is not owner/name" >&2
    exit 2
  fi
  entries+=("\"$entry\"")
done
[ ${#entries[@]} -gt 0 ] || { echo "ci/class-matrix.sh: no repositories given" >&2; exit 2; }
[ ${#entries[@]} -le 256 ] || { echo "ci/class-matrix.sh: at most 256 repositories per run (GitHub's matrix limit)" >&2; exit 2; }
(IFS=,; echo "matrix=[${entries[*]}]")
