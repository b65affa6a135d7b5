#!/usr/bin/env bash
# Applies what both clusters share, in order, to any cluster (the local one or kind) and
# waits until each serves: the kwok GPU pool (kwok must be running), the Cluster
# Autoscaler (cluster-autoscaler.yaml, at rest: 0 replicas, only checked), then the
# in-cluster addons, then the monitoring stack (monitoring/: Prometheus Operator and its
# CRDs, Prometheus, kube-state-metrics, prometheus-adapter). Usage: ci/addons/apply.sh [kubectl] [kubeconfig]
# The operator's CRDs come from its build (build.sh prometheus-operator: crds/), never
# from this repository: AUTOSCALE_OPERATOR_DIR names that build's directory (the callers
# pass it); without it build.sh is asked for it. Then the VPA (vpa/), whose CRDs and RBAC
# come from its build the same way (build.sh vpa: deploy/, AUTOSCALE_VPA_DIR). Then KEDA
# (keda/, its CRDs from AUTOSCALE_KEDA_DIR or build.sh keda).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kubectl_bin=${1:-kubectl}
kc=(--kubeconfig "${2:-${KUBECONFIG:-$HOME/.kube/config}}")
k() { "$kubectl_bin" "${kc[@]}" "$@"; }
die() { echo "ci/addons/apply.sh: error: $*" >&2; exit 1; }
apply() { k apply --server-side --force-conflicts --field-manager=autoscale-conformance -f "$1" >/dev/null; }
# Waits up to $1 seconds, trying every 2 s, for an admission webhook to answer: a
# server-side dry run of the manifest $2, which only that webhook refuses (nothing is
# stored), must get an answer matching $3. On timeout calls $4 with the last answer (it
# dies naming what it saw). Further arguments go to `kubectl create` (an output format).
await_webhook_refusal() {
  local seconds=$1 manifest=$2 refusal=$3 on_timeout=$4 answer deadline
  shift 4
  deadline=$((SECONDS + seconds))
  until answer=$(k create --dry-run=server "$@" -f - <<<"$manifest" 2>&1; true) && grep -q "$refusal" <<<"$answer"; do
    [ $SECONDS -lt $deadline ] || "$on_timeout" "$answer"
    sleep 2
  done
}

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

# The Cluster Autoscaler (kwok provider; cluster-autoscaler.yaml): applied at rest, with no
# replica (a grader probe scales it to 1 under a cluster-wide lock), so nothing to wait
# for but the Deployment itself: it exists and asks for 0 replicas (a re-apply resets a
# left-over scale to 0).
apply "$here/cluster-autoscaler.yaml"
k -n kube-system wait --for=jsonpath='{.spec.replicas}'=0 deployment/cluster-autoscaler --timeout=30s >/dev/null \
  || die "deployment kube-system/cluster-autoscaler is not there with 0 replicas: $(k -n kube-system get deployment cluster-autoscaler -o jsonpath='{.spec.replicas}' 2>&1)"
echo "cluster autoscaler applied (0 replicas at rest)" >&2

addons=(coredns metrics-server image-pull-policy)
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

# ---------------------------------------------------------------- the monitoring stack
# Each wait is bounded (AUTOSCALE_MONITORING_WAIT seconds, default 300, per step) and
# names what is not ready when it fails.
monitoring_wait=${AUTOSCALE_MONITORING_WAIT:-300}
stack_started=$SECONDS
operator_dir=${AUTOSCALE_OPERATOR_DIR:-}
if [ -z "$operator_dir" ]; then
  operator_dir=$("$here/../localcluster/build.sh" prometheus-operator) || die "building the Prometheus Operator (for its CRDs) failed"
fi
crds=("$operator_dir"/crds/monitoring.coreos.com_*.yaml)
[ -f "${crds[0]}" ] || die "no Prometheus Operator CRDs in $operator_dir/crds"
for crd in "${crds[@]}"; do apply "$crd"; done
crd_names=()
for crd in "${crds[@]}"; do
  crd_names+=("crd/$(awk '/^  name: / {print $2; exit}' "$crd")")
done
k wait --for=condition=Established "${crd_names[@]}" --timeout="${monitoring_wait}s" >/dev/null \
  || die "the Prometheus Operator CRDs are not Established within ${monitoring_wait}s: ${crd_names[*]}"
for manifest in "$here"/monitoring/*.yaml; do apply "$manifest"; done
for deployment in prometheus-operator kube-state-metrics prometheus-adapter; do
  k -n monitoring rollout status "deployment/$deployment" --timeout="${monitoring_wait}s" >/dev/null \
    || die "deployment monitoring/$deployment is not rolled out within ${monitoring_wait}s: $(k -n monitoring get pods -l "app.kubernetes.io/name=$deployment" --no-headers 2>&1 | tr '\n' ';')"
done
# The operator creates Prometheus's StatefulSet: wait for its pod to exist, then for Ready.
deadline=$((SECONDS + monitoring_wait))
until [ -n "$(k -n monitoring get pods -l app=prometheus -o name 2>/dev/null)" ]; do
  [ $SECONDS -lt $deadline ] || die "the operator made no Prometheus pod (label app=prometheus in monitoring) within ${monitoring_wait}s: $(k -n monitoring get prometheus prometheus -o jsonpath='{.status.conditions}' 2>&1)"
  sleep 2
done
k -n monitoring wait --for=condition=Ready pod -l app=prometheus --timeout="${monitoring_wait}s" >/dev/null \
  || die "the Prometheus pod is not Ready within ${monitoring_wait}s: $(k -n monitoring get pods -l app=prometheus --no-headers 2>&1 | tr '\n' ';')"
# Its targets, through the API server's service proxy: the annotation jobs and
# kube-state-metrics (scraped by kubernetes-service-endpoints) up, i.e. scraped at least once.
prom=/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1
deadline=$((SECONDS + monitoring_wait))
while :; do
  # One line per target: scrape pool, service (for the endpoints job), health.
  targets=$(k get --raw "$prom/targets?state=active" 2>/dev/null \
    | jq -r '.data.activeTargets[] | "\(.scrapePool) \(.labels.service // "-") \(.health)"' 2>/dev/null || true)
  missing=()
  grep -q '^kubernetes-pods .* up$' <<<"$targets" || missing+=(kubernetes-pods)
  grep -q '^kubernetes-service-endpoints .* up$' <<<"$targets" || missing+=(kubernetes-service-endpoints)
  grep -q '^kubernetes-service-endpoints kube-state-metrics up$' <<<"$targets" || missing+=(kube-state-metrics)
  [ ${#missing[@]} -gt 0 ] || break
  [ $SECONDS -lt $deadline ] || die "Prometheus targets not up within ${monitoring_wait}s: ${missing[*]} (targets: $(tr '\n' ';' <<<"$targets"))"
  sleep 2
done
k wait --for=condition=Available apiservice/v1beta1.custom.metrics.k8s.io --timeout="${monitoring_wait}s" >/dev/null \
  || die "APIService v1beta1.custom.metrics.k8s.io is not Available within ${monitoring_wait}s: $(k get apiservice v1beta1.custom.metrics.k8s.io -o jsonpath='{.status.conditions}' 2>&1)"
echo "monitoring stack ready in $((SECONDS - stack_started)) s: Prometheus targets up, custom.metrics.k8s.io available" >&2

# ---------------------------------------------------------------- the VPA
# Upstream's CRDs and RBAC from the module (the build's deploy/), the webhook's certificate
# made here (vpa/certs.sh), then the three components. Each wait is bounded
# (AUTOSCALE_VPA_WAIT seconds, default 300, per step) and names what is not ready.
vpa_wait=${AUTOSCALE_VPA_WAIT:-300}
vpa_started=$SECONDS
vpa_dir=${AUTOSCALE_VPA_DIR:-}
if [ -z "$vpa_dir" ]; then
  vpa_dir=$("$here/../localcluster/build.sh" vpa) || die "building the VPA (for its CRDs and RBAC) failed"
fi
for f in vpa-v1-crd-gen.yaml vpa-rbac.yaml; do
  [ -f "$vpa_dir/deploy/$f" ] || die "no $f in $vpa_dir/deploy"
done
apply "$vpa_dir/deploy/vpa-v1-crd-gen.yaml"
k wait --for=condition=Established crd/verticalpodautoscalers.autoscaling.k8s.io \
  crd/verticalpodautoscalercheckpoints.autoscaling.k8s.io --timeout="${vpa_wait}s" >/dev/null \
  || die "the VPA CRDs are not Established within ${vpa_wait}s"
apply "$vpa_dir/deploy/vpa-rbac.yaml"
"$here/vpa/certs.sh" "$kubectl_bin" "${kc[1]}" || die "the VPA webhook's certificate could not be made"
for manifest in "$here"/vpa/*.yaml; do apply "$manifest"; done
for deployment in vpa-admission-controller vpa-recommender vpa-updater; do
  k -n kube-system rollout status "deployment/$deployment" --timeout="${vpa_wait}s" >/dev/null \
    || die "deployment kube-system/$deployment is not rolled out within ${vpa_wait}s: $(k -n kube-system get pods -l "app=$deployment" --no-headers 2>&1 | tr '\n' ';')"
done
# The admission controller registers its webhook at start; it answers once a VPA whose
# minAllowed exceeds its maxAllowed is refused by it (the CRD's schema allows that VPA,
# so only the webhook refuses it; a server-side dry run, nothing is stored).
probe_vpa='{"apiVersion":"autoscaling.k8s.io/v1","kind":"VerticalPodAutoscaler","metadata":{"name":"webhook-probe","namespace":"default"},"spec":{"targetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"none"},"resourcePolicy":{"containerPolicies":[{"containerName":"*","minAllowed":{"cpu":"2"},"maxAllowed":{"cpu":"1"}}]}}}'
vpa_webhook_silent() {
  die "the VPA admission webhook does not answer within ${vpa_wait}s (webhook: $(k get mutatingwebhookconfiguration vpa-webhook-config -o name 2>&1); a VPA with min > max got: $1)"
}
await_webhook_refusal "$vpa_wait" "$probe_vpa" "lower than min" vpa_webhook_silent
echo "vpa ready in $((SECONDS - vpa_started)) s: CRDs Established, recommender, updater, admission controller rolled out, webhook answering" >&2
# ---------------------------------------------------------------- KEDA
# Its CRDs come from its build (build.sh keda: crds/), never from this repository:
# AUTOSCALE_KEDA_DIR names that build's directory; without it build.sh is asked (cached).
# Bounded waits (AUTOSCALE_KEDA_WAIT seconds, default 300, per step), each naming what is
# not ready: the CRDs Established, the three deployments rolled out (the metrics server and
# the webhooks start once the operator has written their certificates), APIService
# v1beta1.external.metrics.k8s.io Available, and the admission webhook answering: a
# server-side dry run of a ScaledObject only KEDA's webhook refuses (two triggers of one
# name; the CRD's own rules do not look at names) must come back denied by it (its
# failurePolicy is Ignore, as upstream's: an unreachable webhook would let it through).
keda_wait=${AUTOSCALE_KEDA_WAIT:-300}
keda_started=$SECONDS
keda_dir=${AUTOSCALE_KEDA_DIR:-}
if [ -z "$keda_dir" ]; then
  keda_dir=$("$here/../localcluster/build.sh" keda) || die "building KEDA (for its CRDs) failed"
fi
keda_crds=("$keda_dir"/crds/*.yaml)
[ -f "${keda_crds[0]}" ] || die "no KEDA CRDs in $keda_dir/crds"
apply "$here/keda/00-namespace.yaml"
keda_crd_names=()
for crd in "${keda_crds[@]}"; do
  apply "$crd"
  keda_crd_names+=("crd/$(awk '/^  name: / {print $2; exit}' "$crd")")
done
k wait --for=condition=Established "${keda_crd_names[@]}" --timeout="${keda_wait}s" >/dev/null \
  || die "the KEDA CRDs are not Established within ${keda_wait}s: ${keda_crd_names[*]}"
for manifest in "$here"/keda/*.yaml; do apply "$manifest"; done
for deployment in keda-operator keda-metrics-apiserver keda-admission; do
  k -n keda rollout status "deployment/$deployment" --timeout="${keda_wait}s" >/dev/null \
    || die "deployment keda/$deployment is not rolled out within ${keda_wait}s: $(k -n keda get pods --no-headers 2>&1 | tr '\n' ';') secret kedaorg-certs: $(k -n keda get secret kedaorg-certs -o name 2>&1)"
done
k wait --for=condition=Available apiservice/v1beta1.external.metrics.k8s.io --timeout="${keda_wait}s" >/dev/null \
  || die "APIService v1beta1.external.metrics.k8s.io is not Available within ${keda_wait}s: $(k get apiservice v1beta1.external.metrics.k8s.io -o jsonpath='{.status.conditions}' 2>&1)"
refused='apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: autoscale-conformance-webhook-probe, namespace: keda}
spec:
  scaleTargetRef: {name: autoscale-conformance-webhook-probe}
  triggers:
  - {type: cron, name: twice, metadata: {timezone: Etc/UTC, start: 0 1 * * *, end: 0 2 * * *, desiredReplicas: "1"}}
  - {type: cron, name: twice, metadata: {timezone: Etc/UTC, start: 0 3 * * *, end: 0 4 * * *, desiredReplicas: "1"}}'
keda_webhook_silent() {
  die "KEDA's admission webhook does not answer within ${keda_wait}s: a ScaledObject with two triggers of one name got: $1"
}
await_webhook_refusal "$keda_wait" "$refused" 'admission webhook "vscaledobject.kb.io" denied the request' keda_webhook_silent -o name
echo "keda ready in $((SECONDS - keda_started)) s: operator, external.metrics.k8s.io available, admission webhook answering" >&2
