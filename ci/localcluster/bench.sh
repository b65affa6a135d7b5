#!/usr/bin/env bash
# Prints the local cluster's numbers (a benchmark, not a test):
#   warm `up` time to node Ready + metrics API serving, RSS of the whole cluster at idle,
#   `down` time. The cold build time is printed by build.sh on a machine without caches.
# It takes the cluster down and up again; it leaves it up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/../cluster

"$cluster" down >/dev/null 2>&1 || true
"$here/build.sh" >/dev/null                 # builds are not part of the warm figure
"$cluster" images >/dev/null

t0=$(date +%s.%N); "$cluster" up >/dev/null 2>/tmp/bench-cluster-up.log; t1=$(date +%s.%N)
echo "warm up (node Ready + metrics API serving): $(echo "$t1 - $t0" | bc) s"

sleep "${IDLE_SECONDS:-30}"
# Every process of the cluster: the host components' process groups, and containerd's
# shims with the pods under them.
rss_kib=0
state_pids=${AUTOSCALE_CLUSTER_RUN:-/run/autoscale-conformance}/pids
pids=$(for f in "$state_pids"/*.pid; do pgrep -g "$(cat "$f")" || true; done
       pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -address ${AUTOSCALE_CLUSTER_RUN:-/run/autoscale-conformance}" \
         | while read -r shim; do echo "$shim"; pgrep -P "$shim" || true; done)
for p in $(echo "$pids" | sort -u); do
  children=$(ps -o pid= --ppid "$p" 2>/dev/null || true)
  for q in $p $children; do
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$q/status" 2>/dev/null || echo 0)
    rss_kib=$((rss_kib + ${r:-0}))
  done
done
echo "idle RSS of the whole cluster: $((rss_kib / 1024)) MiB (goal <= 3072 MiB)"

t0=$(date +%s.%N); "$cluster" down >/dev/null 2>&1; t1=$(date +%s.%N)
echo "down: $(echo "$t1 - $t0" | bc) s"
"$cluster" up >/dev/null 2>&1
