#!/usr/bin/env bash
# Materialises a class of submissions from the fixtures: the reference and broken
# overlays (fixtures/submissions/broken/<name>/: the reference with the overlay's files
# replacing or adding, its expected.toml's `remove` deleted), each a folder with the
# reference's README, so the class folder is recognised as one.
#
#   ci/class-fixture.sh DIR [COPIES] [FIXTURE...]
#
# FIXTURE is `reference` or a broken overlay's name (default: the reference and five
# broken ones). COPIES (default 1) repeats the list under numbered names, for a large class.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: ci/class-fixture.sh DIR [COPIES] [FIXTURE...]}
copies=${2:-1}
shift $(( $# >= 2 ? 2 : 1 ))
fixtures=("$@")
if [ ${#fixtures[@]} -eq 0 ]; then
  fixtures=(reference scripts-shellcheck-error scripts-syntax-missing-fi hpa-cpu-missing monitoring-rules-bad-promql pdb-missing)
fi
mkdir -p "$dir"
materialise() { # fixture target
  local fixture=$1 target=$2 overlay
  rm -rf "$target"
  cp -r "$repo/fixtures/submissions/reference" "$target"
  [ "$fixture" = reference ] && return
  overlay=$repo/fixtures/submissions/broken/$fixture
  [ -f "$overlay/expected.toml" ] || { echo "ci/class-fixture.sh: no fixture $fixture" >&2; exit 2; }
  # `remove = ["a", "b"]` (one line) lists the reference's files the overlay deletes.
  sed -n 's/^remove *= *\[\(.*\)\]/\1/p' "$overlay/expected.toml" | tr ',' '\n' | tr -d ' "' \
    | while read -r removed; do [ -z "$removed" ] || rm -f "$target/$removed"; done
  cp -r "$overlay/." "$target/"
  rm -f "$target/expected.toml"
}
for copy in $(seq 1 "$copies"); do
  for fixture in "${fixtures[@]}"; do
    name=$fixture
    [ "$copies" -eq 1 ] || name=$(printf '%03d-%s' "$copy" "$fixture")
    materialise "$fixture" "$dir/$name"
  done
done
