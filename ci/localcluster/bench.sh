#!/usr/bin/env bash
# Prints the local cluster's numbers (a benchmark, not a test):
#   warm `up` time to node Ready + metrics API serving + the monitoring stack ready, the
#   monitoring stack's own share of it (CRDs applied to custom.metrics.k8s.io Available and
#   Prometheus's targets up), RSS of the whole cluster at idle (the stack included) and the
#   stack's pods' share, the VPA's up time and a fresh VPA's time to its first
#   recommendation, `down` time. The cold build time is printed by build.sh on a
#   machine without caches.
# It takes the cluster down and up again; it leaves it up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/../cluster

"$cluster" down >/dev/null 2>&1 || true
"$here/build.sh" >/dev/null                 # builds are not part of the warm figure
"$cluster" images >/dev/null

t0=$(date +%s.%N); "$cluster" up >/dev/null 2>/tmp/bench-cluster-up.log; t1=$(date +%s.%N)
echo "warm up (node Ready + metrics API serving + monitoring stack ready): $(echo "$t1 - $t0" | bc) s"
stack=$(grep -o 'monitoring stack ready in [0-9]* s' /tmp/bench-cluster-up.log | grep -o '[0-9]*' || true)
echo "monitoring stack up (CRDs to targets up and custom.metrics.k8s.io Available): ${stack:-?} s"
vpa=$(grep -o 'vpa ready in [0-9]* s' /tmp/bench-cluster-up.log | grep -o '[0-9]*' || true)
echo "VPA up (CRDs to the admission webhook answering): ${vpa:-?} s"
# Time to a fresh VPA's first recommendation: fixtures/vpa/fast's Off VPA and its target,
# created together in a namespace of their own.
bench_kubectl() { "$("$here/build.sh" k8s)/kubectl" --kubeconfig "$("$cluster" kubeconfig)" "$@"; }
bench_ns=bench-vpa-$$
bench_kubectl create namespace "$bench_ns" >/dev/null
t0=$(date +%s.%N)
sed "s/namespace: ml-platform/namespace: $bench_ns/" "$here/../../fixtures/vpa/fast/workloads.yaml" \
  | awk 'BEGIN {RS="---\n"; ORS="---\n"} /name: demo-off\n/' | bench_kubectl apply -f - >/dev/null
sed "s/namespace: ml-platform/namespace: $bench_ns/" "$here/../../fixtures/vpa/fast/vpas.yaml" \
  | awk 'BEGIN {RS="---\n"; ORS="---\n"} /name: demo-off-vpa\n/' | bench_kubectl apply -f - >/dev/null
recommended=?
for _ in $(seq 1 300); do
  if [ -n "$(bench_kubectl -n "$bench_ns" get vpa demo-off-vpa -o jsonpath='{.status.recommendation.containerRecommendations[0].target.cpu}' 2>/dev/null)" ]; then
    recommended=$(echo "$(date +%s.%N) - $t0" | bc); break
  fi
  sleep 0.5
done
bench_kubectl delete namespace "$bench_ns" --wait=false >/dev/null
echo "first VPA recommendation (target and VPA created together): $recommended s"

sleep "${IDLE_SECONDS:-30}"
# Every process of the cluster, counted once: the host components (their pids), and
# containerd's shims, with all their descendants (the pods' processes).
run_dir=${AUTOSCALE_CLUSTER_RUN:-/run/autoscale-conformance}
roots=$(cat "$run_dir"/pids/*.pid; pgrep -f "containerd-shim-runc-v2 -namespace k8s.io .*-address $run_dir/" || true)
all=$(ps -e -o pid=,ppid= | awk -v roots="${roots//$'\n'/ }" '
  BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
  { parent[$1] = $2 }
  END { changed = 1
        while (changed) { changed = 0
          for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
        for (p in keep) print p }')
rss_kib=0
for p in $all; do
  r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
  rss_kib=$((rss_kib + ${r:-0}))
done
echo "idle RSS of the whole cluster: $((rss_kib / 1024)) MiB (goal <= 4096 MiB with the monitoring stack)"
# The monitoring stack's share: the processes of its pods (found by their cgroup's pod UID).
kubectl_bin=$("$here/build.sh" k8s)/kubectl
uids=$("$kubectl_bin" --kubeconfig "$("$cluster" kubeconfig)" -n monitoring get pods -o jsonpath='{.items[*].metadata.uid}' 2>/dev/null || true)
stack_kib=0
for p in $all; do
  for uid in $uids; do
    if grep -q "pod${uid}\|pod${uid//-/_}" "/proc/$p/cgroup" 2>/dev/null; then
      r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
      stack_kib=$((stack_kib + ${r:-0}))
    fi
  done
done
echo "idle RSS of the monitoring stack's pods: $((stack_kib / 1024)) MiB"

t0=$(date +%s.%N); "$cluster" down >/dev/null 2>&1; t1=$(date +%s.%N)
echo "down: $(echo "$t1 - $t0" | bc) s"
"$cluster" up >/dev/null 2>&1
