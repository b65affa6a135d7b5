#!/usr/bin/env bash
# Applies what both clusters share, in order, to any cluster (the local one or kind) and
# waits until each serves: the kwok GPU pool (kwok must be running), then the in-cluster
# addons. Usage: ci/addons/apply.sh [kubectl] [kubeconfig]
# Later addons (Prometheus, prometheus-adapter, VPA, KEDA) go into the list below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kubectl_bin=${1:-kubectl}
kc=(--kubeconfig "${2:-${KUBECONFIG:-$HOME/.kube/config}}")
k() { "$kubectl_bin" "${kc[@]}" "$@"; }
die() { echo "ci/addons/apply.sh: error: $*" >&2; exit 1; }
apply() { k apply --server-side --force-conflicts --field-manager=autoscale-conformance -f "$1" >/dev/null; }

# The GPU pool: exactly the nodes of gpu-pool.yaml carry node-pool=gpu, each Ready with
# one nvidia.com/gpu allocatable, within 60 s (AUTOSCALE_GPU_POOL_WAIT); anything else
# stops the bring-up here, not later as a GPU probe's puzzling failure.
apply "$here/gpu-pool.yaml"
wait_seconds=${AUTOSCALE_GPU_POOL_WAIT:-60}
expected=$(awk '/^kind: Node$/ {node=1} node && /^  name: / {print $2; node=0}' "$here/gpu-pool.yaml" | sort | tr '\n' ' ')
[ -n "$expected" ] || die "no Node in $here/gpu-pool.yaml"
deadline=$((SECONDS + wait_seconds))
while :; do
  # name, Ready status, allocatable GPUs; one line per node labelled node-pool=gpu
  seen=$(k get nodes -l node-pool=gpu -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.status.allocatable.nvidia\.com/gpu}{"\n"}{end}' || true)
  ready=$(awk '$2 == "True" && $3 == "1" {print $1}' <<<"$seen" | sort | tr '\n' ' ')
  all=$(awk 'NF {print $1}' <<<"$seen" | sort | tr '\n' ' ')
  [ "$ready" = "$expected" ] && [ "$all" = "$expected" ] && break
  [ $SECONDS -lt $deadline ] || die "the GPU pool is not what gpu-pool.yaml says within $wait_seconds s: expected Ready nodes with 1 GPU each: ${expected}; nodes labelled node-pool=gpu (name, Ready, GPUs): $(tr '\n' ';' <<<"$seen")"
  sleep 1
done
echo "GPU pool ready: $expected" >&2

addons=(coredns metrics-server)
for addon in "${addons[@]}"; do apply "$here/$addon.yaml"; done
k -n kube-system rollout status deployment/coredns --timeout=180s
k -n kube-system rollout status deployment/metrics-server --timeout=180s
k wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=180s
# The metrics API answers only after metrics-server's first scrape (one resolution period).
deadline=$((SECONDS + 120))
until k top nodes >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || die "metrics API not serving node metrics within 120s"
  sleep 2
done
echo "addons ready: ${addons[*]}" >&2
