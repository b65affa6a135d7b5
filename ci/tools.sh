#!/usr/bin/env bash
# Installs what the tests need when it is missing, from the registries these machines
# reach: cargo-nextest from crates.io (built from source: no prebuilt downloads here),
# and from Debian promtool and shellcheck (the offline checks call them) and, with
# `ci/tools.sh cluster`, containerd, runc, the CNI plugins, iptables and jq (the monitoring
# stack's target check) for the local cluster;
# `ci/tools.sh kind` builds kind, at the release ci/kind/node-images.txt names, with Go.
set -euo pipefail
if [ "${1:-}" = kind ]; then
  version=$(awk '$1 == "kind" {print $2}' "$(dirname "$0")/kind/node-images.txt")
  [ -n "$version" ] || { echo "ci/tools.sh: no kind version in ci/kind/node-images.txt" >&2; exit 1; }
  if ! kind version 2>/dev/null | grep -q "^kind $version "; then
    echo "installing kind $version (go install)" >&2
    go install "sigs.k8s.io/kind@$version"
  fi
  command -v docker >/dev/null || { echo "ci/tools.sh: the kind path needs Docker, which is missing" >&2; exit 1; }
  exit 0
fi
debs=()
command -v promtool >/dev/null || debs+=(prometheus)
command -v shellcheck >/dev/null || debs+=(shellcheck)
if [ "${1:-}" = cluster ]; then
  command -v containerd >/dev/null || debs+=(containerd)
  command -v runc >/dev/null || debs+=(runc)
  [ -x /usr/lib/cni/bridge ] || debs+=(containernetworking-plugins)
  command -v iptables >/dev/null || debs+=(iptables)
  command -v conntrack >/dev/null || debs+=(conntrack)
  command -v openssl >/dev/null || debs+=(openssl)
  command -v bc >/dev/null || debs+=(bc)
  command -v jq >/dev/null || debs+=(jq)
fi
if [ ${#debs[@]} -gt 0 ]; then
  echo "installing from Debian: ${debs[*]}" >&2
  sudo_=; [ "$(id -u)" -eq 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is missing: building it from crates.io (a few minutes, once)" >&2
  cargo install cargo-nextest --locked
fi
