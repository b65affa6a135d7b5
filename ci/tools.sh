#!/usr/bin/env bash
# Installs what the tests need when it is missing, from the registries these machines
# reach: cargo-nextest from crates.io (built from source: no prebuilt downloads here),
# and from Debian promtool and shellcheck (the offline checks call them) and, with
# `ci/tools.sh cluster`, containerd, runc, the CNI plugins and iptables for the local cluster.
set -euo pipefail
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
