#!/usr/bin/env bash
# Installs the test runner from crates.io when it is missing (no prebuilt downloads here).
set -euo pipefail
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is missing: building it from crates.io (a few minutes, once)" >&2
  cargo install cargo-nextest --locked
fi
