#!/usr/bin/env bash
# Applies the in-cluster addons, in order, to any cluster (the local one or kind) and
# waits until each serves. Usage: ci/addons/apply.sh [kubectl] [kubeconfig]
# Later addons (Prometheus, prometheus-adapter, VPA, KEDA) go into the list below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kubectl_bin=${1:-kubectl}
kc=(--kubeconfig "${2:-${KUBECONFIG:-$HOME/.kube/config}}")
k() { "$kubectl_bin" "${kc[@]}" "$@"; }

addons=(coredns metrics-server)
for addon in "${addons[@]}"; do
  k apply --server-side --force-conflicts --field-manager=autoscale-conformance -f "$here/$addon.yaml" >/dev/null
done
k -n kube-system rollout status deployment/coredns --timeout=180s
k -n kube-system rollout status deployment/metrics-server --timeout=180s
k wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=180s
# The metrics API answers only after metrics-server's first scrape (one resolution period).
deadline=$((SECONDS + 120))
until k top nodes >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || { echo "metrics API not serving node metrics within 120s" >&2; exit 1; }
  sleep 2
done
echo "addons ready: ${addons[*]}" >&2
