#!/usr/bin/env bash
# Builds actionlint from this folder's Go module (pinned in go.mod/go.sum, fetched
# through the Go module proxy) into $CACHE/bin/actionlint-<key>/, keyed by the Go
# version and this folder's inputs, and prints the binary's path. Cached: the first
# build takes about a minute on 2 cores, later ones nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
key=$({ go version; cd "$here" && sha256sum build.sh go.mod go.sum; } | sha256sum | cut -c1-16)
out=$cache/bin/actionlint-$key
if [ ! -x "$out/actionlint" ]; then
  echo "building actionlint (go build, about a minute the first time)..." >&2
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/actionlint" github.com/rhysd/actionlint/cmd/actionlint)
  rm -rf "$out"; mv "$out.tmp" "$out"
fi
echo "$out/actionlint"
