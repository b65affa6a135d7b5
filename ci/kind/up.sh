#!/usr/bin/env bash
# The kind path (GitHub Actions; it cannot run on machines without Docker): the same image
# archives and the same ci/addons/ as the local cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
name=autoscale-conformance

kind get clusters | grep -qx "$name" || kind create cluster --config "$here/cluster.yaml" --wait 120s
kubeconfig=$(mktemp); kind get kubeconfig --name "$name" >"$kubeconfig"

# kind's node image carries pause and CoreDNS; the project's own images and
# metrics-server come from the archives the local cluster imports too.
"$repo/ci/cluster" images >&2
for archive in "$cache"/images/*.oci.tar; do
  case $(basename "$archive") in pause.oci.tar|coredns.oci.tar) continue ;; esac
  kind load image-archive --name "$name" "$archive"
done

# Advertise the simulated GPU on the GPU-pool worker (an extended resource, as the docs describe).
for node in $(kubectl --kubeconfig "$kubeconfig" get nodes -l node-pool=gpu -o name); do
  kubectl --kubeconfig "$kubeconfig" patch "$node" --subresource=status --type=json \
    -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]'
done
"$repo/ci/addons/apply.sh" kubectl "$kubeconfig"
echo "$kubeconfig"
