#!/usr/bin/env bash
# The kind path (for machines with Docker; it cannot run on these machines): the same
# cluster definition as the local cluster. The same CoreDNS build and Corefile, the same
# metrics-server and workload images from the same archives, the same kwok with the same
# GPU-pool manifest (ci/addons/), no image pulls and the same egress rule for pods.
#
#   ci/kind/up.sh [up]   build what kind loads, create the cluster if needed, isolate its
#                        nodes, load the images, start kwok, apply ci/addons/; prints the
#                        kubeconfig path on its last line
#   ci/kind/up.sh down   stop kwok, delete the cluster
#
# Prebuilt inputs (the tests, a CI step that built them before): AUTOSCALE_KWOK_DIR (kwok
# and its stages/, as `build.sh kwok` prints), AUTOSCALE_OPERATOR_DIR (the Prometheus
# Operator's build, for its crds/, as `build.sh prometheus-operator` prints), AUTOSCALE_VPA_DIR
# (the VPA's build, for its deploy/, as `build.sh vpa` prints),
# AUTOSCALE_KEDA_DIR (KEDA's build, for its crds/, as `build.sh keda` prints) and
# AUTOSCALE_IMAGES (a directory of the *.oci.tar archives `ci/cluster images kind` lists,
# the monitoring stack's, KEDA's and the test scripts' among them). Without them all are built here.
#
# kwok runs as a host process, as on the local cluster, with the same flags and stages
# (keep them in step with kwok_up in ci/localcluster/cluster.sh): it manages only nodes
# annotated kwok.x-k8s.io/node=fake: the GPU pool and the nodes the live tests create.
# It stops with `down`, and by itself once the cluster is deleted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
state=${AUTOSCALE_KIND_STATE:-$cache/kind}
name=autoscale-conformance
kubeconfig=$state/kubeconfig
kwok_pid=$state/kwok.pid
kwok_log=$state/kwok.log
# The ranges pods may reach, as on the local cluster (ci/localcluster/cluster.sh).
pod_cidr=10.244.0.0/16
service_cidr=10.96.0.0/16

log() { printf '[kind %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

kwok_running() { [ -f "$kwok_pid" ] && kill -0 "$(cat "$kwok_pid")" 2>/dev/null; }

# TERM to kwok's process group (its watchdog and kwok), up to 10 s, then KILL.
kwok_stop() {
  if ! kwok_running; then rm -f "$kwok_pid"; return 0; fi
  local pid
  pid=$(cat "$kwok_pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$kwok_pid"
  log "kwok stopped"
}

kwok_up() {
  local kwok_dir=$1 stage
  [ -x "$kwok_dir/kwok" ] || die "no kwok binary in $kwok_dir"
  # A kwok left from an earlier cluster would watch a dead API server.
  kwok_stop
  local -a args=(--kubeconfig="$kubeconfig")
  for stage in "$kwok_dir"/stages/*.yaml; do args+=("--config=$stage"); done
  # Fake node and pod addresses stay on loopback: nothing ever tries to reach them.
  args+=(--manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
    --node-ip=127.0.0.2 --cidr=127.1.0.0/16 --node-port=0 --server-address=127.0.0.1:10247)
  # setsid: a process group of its own, so that `down` ends kwok and its watchdog together.
  # The watchdog ends kwok once the cluster is gone (`kind delete cluster` run by hand),
  # checking every 10 s. Output goes to a log, never to our stdout: a caller reading the
  # kubeconfig path through a pipe must not wait for kwok to exit.
  # shellcheck disable=SC2016 # expanded by the watchdog's shell, not here
  setsid bash -c '
    cluster=$1; shift
    "$@" &
    kwok=$!
    trap "kill \$kwok 2>/dev/null" TERM INT
    while kill -0 "$kwok" 2>/dev/null && kind get clusters 2>/dev/null | grep -qx "$cluster"; do
      sleep 10 & wait $!
    done
    kill "$kwok" 2>/dev/null
    wait "$kwok"
  ' kwok-watchdog "$name" "$kwok_dir/kwok" "${args[@]}" >>"$kwok_log" 2>&1 </dev/null &
  echo $! >"$kwok_pid"
  sleep 2
  kwok_running || die "kwok exited at once; see $kwok_log: $(tail -n 5 "$kwok_log")"
  log "kwok running (pid $(cat "$kwok_pid"), log $kwok_log)"
}

# The local cluster's isolation, on every kind node: pods reach only the pod and service
# ranges and the cluster's own nodes (kind's Docker network), and so does the node itself
# (its containerd cannot pull; the kubelet reaches the API server); anything else is
# rejected at once, as a pod on the local cluster finds no route. containerd's registry
# hosts all point at a dead address on loopback (config_path is set in cluster.yaml).
isolate_nodes() {
  local subnets v4 v6 node
  subnets=$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}') \
    || die "cannot read the subnets of Docker network kind"
  v4=$(tr ' ' '\n' <<<"$subnets" | grep -m1 -E '^[0-9]+\.' || true)
  v6=$(tr ' ' '\n' <<<"$subnets" | grep -m1 ':' || true)
  [ -n "$v4" ] || die "Docker network kind has no IPv4 subnet ($subnets)"
  for node in $(kind get nodes --name "$name"); do
    # shellcheck disable=SC2016 # expanded by the node's shell
    docker exec -i "$node" sh -euc '
      v4=$1 v6=$2 pods=$3 services=$4
      iptables -N ASC-ISOLATION 2>/dev/null || iptables -F ASC-ISOLATION
      for dst in 127.0.0.0/8 "$pods" "$services" "$v4"; do
        iptables -A ASC-ISOLATION -d "$dst" -j RETURN
      done
      iptables -A ASC-ISOLATION -p tcp -j REJECT --reject-with tcp-reset
      iptables -A ASC-ISOLATION -j REJECT
      for chain in FORWARD OUTPUT; do
        iptables -C "$chain" -j ASC-ISOLATION 2>/dev/null || iptables -I "$chain" 1 -j ASC-ISOLATION
      done
      ip6tables -N ASC-ISOLATION 2>/dev/null || ip6tables -F ASC-ISOLATION
      for dst in ::1/128 fe80::/10 ff00::/8 ${v6:+"$v6"}; do
        ip6tables -A ASC-ISOLATION -d "$dst" -j RETURN
      done
      ip6tables -A ASC-ISOLATION -j REJECT
      for chain in FORWARD OUTPUT; do
        ip6tables -C "$chain" -j ASC-ISOLATION 2>/dev/null || ip6tables -I "$chain" 1 -j ASC-ISOLATION
      done
      mkdir -p /etc/containerd/certs.d/_default
      printf "%s\n" "server = \"http://127.0.0.1:9\"" "[host.\"http://127.0.0.1:9\"]" \
        "  capabilities = [\"pull\", \"resolve\"]" >/etc/containerd/certs.d/_default/hosts.toml
    ' isolate "$v4" "$v6" "$pod_cidr" "$service_cidr" || die "isolating node $node failed"
    log "node $node: egress only to $pod_cidr $service_cidr $v4${v6:+ $v6}; pulls go to 127.0.0.1:9"
  done
}

cmd_up() {
  mkdir -p "$state"
  # What kind loads, built (or found in the cache) before any cluster exists: a failed
  # build leaves no cluster behind. No Kubernetes build: kind's node image has the rest.
  local kwok_dir=${AUTOSCALE_KWOK_DIR:-} images_dir=${AUTOSCALE_IMAGES:-} archive listed
  local operator_dir=${AUTOSCALE_OPERATOR_DIR:-} vpa_dir=${AUTOSCALE_VPA_DIR:-} keda_dir=${AUTOSCALE_KEDA_DIR:-}
  local -a archives=()
  if [ -z "$kwok_dir" ]; then
    kwok_dir=$("$repo/ci/localcluster/build.sh" kwok) || die "building kwok failed"
  fi
  if [ -z "$operator_dir" ]; then
    operator_dir=$("$repo/ci/localcluster/build.sh" prometheus-operator) || die "building the Prometheus Operator failed"
  fi
  if [ -z "$vpa_dir" ]; then
    vpa_dir=$("$repo/ci/localcluster/build.sh" vpa) || die "building the VPA failed"
  fi
  if [ -z "$keda_dir" ]; then
    keda_dir=$("$repo/ci/localcluster/build.sh" keda) || die "building KEDA failed"
  fi
  if [ -n "$images_dir" ]; then
    for archive in "$images_dir"/*.oci.tar; do [ -f "$archive" ] && archives+=("$archive"); done
  else
    listed=$("$repo/ci/cluster" images kind) || die "building the image archives failed"
    mapfile -t archives <<<"$listed"
  fi
  [ ${#archives[@]} -gt 0 ] || die "no image archives to load"

  kind get clusters | grep -qx "$name" || kind create cluster --config "$here/cluster.yaml" --wait 120s
  kind get kubeconfig --name "$name" >"$kubeconfig"
  isolate_nodes
  for archive in "${archives[@]}"; do
    kind load image-archive --name "$name" "$archive"
  done
  kwok_up "$kwok_dir"
  AUTOSCALE_OPERATOR_DIR=$operator_dir AUTOSCALE_VPA_DIR=$vpa_dir AUTOSCALE_KEDA_DIR=$keda_dir "$repo/ci/addons/apply.sh" kubectl "$kubeconfig"
  echo "$kubeconfig"
}

cmd_down() {
  kwok_stop
  if kind get clusters | grep -qx "$name"; then kind delete cluster --name "$name"; fi
  rm -f "$kubeconfig"
}

case "${1:-up}" in
  up) cmd_up ;;
  down) cmd_down ;;
  *) echo "usage: ci/kind/up.sh [up|down]" >&2; exit 2 ;;
esac
