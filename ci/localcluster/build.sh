#!/usr/bin/env bash
# Builds the local cluster's Go binaries from their pinned modules, once per set of
# build inputs: each module's output lands in $CACHE/bin/<module>-<key>/, where the key
# hashes the module's go.mod, go.sum, sources, the Go version and this script. A second
# run with the same inputs rebuilds nothing.
#
# Usage: ci/localcluster/build.sh [k8s|metrics-server|coredns|kwok ...]   (default: all)
# Prints one line per module: the directory holding its binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
k8s_version=v1.37.2

# Version stamps: without them the binaries report v0.0.0 and kubelet/apiserver skew checks misbehave.
k8s_ldflags() {
  local minor=${k8s_version#v1.}; minor=${minor%%.*}
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

inputs_key() {
  local dir=$1
  { go version; sha256sum <"$0"; cd "$dir" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
      | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16
}

build_module() {
  local name=$1 dir="$here/$1" key out started
  key=$(inputs_key "$dir")
  out="$cache/bin/$name-$key"
  if [ -f "$out/.complete" ]; then echo "$out"; return; fi
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  started=$(date +%s)
  echo "building $name (cold build, several minutes on 2 cores)..." >&2
  case $name in
    k8s)
      (cd "$dir" && go build -ldflags "$(k8s_ldflags)" -o "$out.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl ./cmd/etcd ./cmd/pause) ;;
    metrics-server)
      (cd "$dir" && go build -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v0.8.0" \
        -o "$out.tmp/" sigs.k8s.io/metrics-server/cmd/metrics-server) ;;
    coredns)
      (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp/coredns" .) ;;
    kwok)
      (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp/" sigs.k8s.io/kwok/cmd/kwok)
      # kwok needs Stage configs; use the ones its module ships, at the pinned version.
      local src
      src=$(cd "$dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
      mkdir -p "$out.tmp/stages"
      cp "$src"/node/fast/node-initialize.yaml "$src"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        "$src"/pod/fast/pod-*.yaml "$out.tmp/stages/" ;;
    *) echo "unknown module: $name" >&2; return 2 ;;
  esac
  touch "$out.tmp/.complete"
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "built $name in $(( $(date +%s) - started )) s" >&2
  echo "$out"
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(k8s metrics-server coredns kwok)
for m in "${modules[@]}"; do build_module "$m"; done
