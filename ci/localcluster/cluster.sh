#!/usr/bin/env bash
# The Docker-free local cluster: genuine Kubernetes binaries (built by build.sh from their
# Go modules), containerd and runc from Debian, run as host processes the way Kubernetes'
# hack/local-up-cluster.sh does. One real node (real pods, cgroups, kubelet metrics) and a
# simulated GPU pool of kwok nodes.
#
#   ci/cluster up | down | status | logs [component] | kubeconfig | env | images [local|kind]
#
# Isolation: pods sit on bridge asc0 (10.244.0.0/24) with routes only to the pod and
# service ranges, no default route and no masquerade; a FORWARD rule drops anything from
# the bridge that would leave by another interface. containerd's registry traffic goes
# to a dead proxy on loopback, every image is imported from archives the project builds,
# and CoreDNS answers only for cluster.local.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
state=${AUTOSCALE_CLUSTER_STATE:-/var/lib/autoscale-conformance/cluster}
run=${AUTOSCALE_CLUSTER_RUN:-/run/autoscale-conformance}
pki=$state/pki
logs=$state/logs
pids=$run/pids

node_name=localcluster-node
bridge=asc0
node_ip=10.244.0.1
pod_subnet=10.244.0.0/24
cluster_cidr=10.244.0.0/16
service_cidr=10.96.0.0/16
kubernetes_service_ip=10.96.0.1
dns_ip=10.96.0.10
apiserver_port=6443
containerd_sock=$run/containerd/containerd.sock
kubeconfig=$state/admin.kubeconfig
iptables_chain=ASC-ISOLATION

log() { printf '[cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- binaries and images
# The Go builds (cached by build.sh); one function, so that a test can stand in for it.
build() { "$here/build.sh" "$@"; }

# The monitoring stack's builds (images only; the operator's build also holds its CRDs).
monitoring_modules=(prometheus prometheus-operator kube-state-metrics prometheus-adapter)
monitoring_dirs() {
  prometheus_bin=$1; prometheus_operator_bin=$2; kube_state_metrics_bin=$3; prometheus_adapter_bin=$4
}

binaries() {
  local dirs built
  built=$(build k8s metrics-server coredns kwok "${monitoring_modules[@]}" vpa) || die "building the cluster's binaries failed"
  mapfile -t dirs <<<"$built"
  [ ${#dirs[@]} -eq 9 ] || die "build.sh did not print the nine module directories"
  k8s_bin=${dirs[0]}; metrics_server_bin=${dirs[1]}; coredns_bin=${dirs[2]}; kwok_bin=${dirs[3]}
  monitoring_dirs "${dirs[@]:4:4}"; vpa_bin=${dirs[8]}
  kubectl_bin=$k8s_bin/kubectl
}

kubectl() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }

# Image archives: the cluster's own images (sandbox, metrics-server, CoreDNS) from the Go
# builds, and the project's workloads. All under their upstream names, so ci/addons/ is
# the same for kind and for this cluster. `images kind` builds only what kind loads: its
# node image has its own sandbox (pause) image, so no Kubernetes build is needed.
images() {
  local for=${1:-local} out=$cache/images
  case $for in
    local) [ -n "${k8s_bin:-}" ] || binaries ;;
    kind)
      local dirs built
      built=$(build metrics-server coredns "${monitoring_modules[@]}" vpa) || die "building metrics-server, CoreDNS, the monitoring stack and the VPA failed"
      mapfile -t dirs <<<"$built"
      [ ${#dirs[@]} -eq 7 ] || die "build.sh did not print the seven module directories"
      metrics_server_bin=${dirs[0]}; coredns_bin=${dirs[1]}
      monitoring_dirs "${dirs[@]:2:4}"; vpa_bin=${dirs[6]} ;;
    *) die "images: unknown target $for (local or kind)" ;;
  esac
  mkdir -p "$out"
  "$repo/workloads/image/build.sh" >&2
  oci_image=${CARGO_TARGET_DIR:-$repo/target}/release/oci-image
  [ -x "$oci_image" ] || cargo build -q --release -p oci-image --manifest-path "$repo/Cargo.toml"
  if [ "$for" = local ]; then
    image_archive registry.k8s.io/pause:3.10.2 "$out/pause.oci.tar" "$k8s_bin" \
      --file "$k8s_bin/pause:/pause:0755" --entrypoint /pause --user 65535
  fi
  image_archive registry.k8s.io/metrics-server/metrics-server:v0.8.0 "$out/metrics-server.oci.tar" "$metrics_server_bin" \
    --file "$metrics_server_bin/metrics-server:/metrics-server:0755" --entrypoint /metrics-server --user 65534
  image_archive registry.k8s.io/coredns/coredns:v1.14.6 "$out/coredns.oci.tar" "$coredns_bin" \
    --file "$coredns_bin/coredns:/coredns:0755" --entrypoint /coredns --user 0
  # (root: upstream's image runs as nonroot with a file capability to bind :53, which an
  # archive built here does not carry; the Deployment still adds only NET_BIND_SERVICE.)
  # The monitoring stack, with upstream's paths and users (the operator runs
  # /bin/prometheus-config-reloader by that path).
  image_archive quay.io/prometheus/prometheus:v3.16.0 "$out/prometheus.oci.tar" "$prometheus_bin" \
    --file "$prometheus_bin/prometheus:/bin/prometheus:0755" --entrypoint /bin/prometheus \
    --dir /prometheus:1777 --workdir /prometheus --user 65534 --expose 9090/tcp
  image_archive quay.io/prometheus-operator/prometheus-operator:v0.85.0 "$out/prometheus-operator.oci.tar" "$prometheus_operator_bin" \
    --file "$prometheus_operator_bin/operator:/bin/operator:0755" --entrypoint /bin/operator --user 65534 --expose 8080/tcp
  image_archive quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0 "$out/prometheus-config-reloader.oci.tar" "$prometheus_operator_bin" \
    --file "$prometheus_operator_bin/prometheus-config-reloader:/bin/prometheus-config-reloader:0755" \
    --entrypoint /bin/prometheus-config-reloader --user 65534
  image_archive registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0 "$out/kube-state-metrics.oci.tar" "$kube_state_metrics_bin" \
    --file "$kube_state_metrics_bin/kube-state-metrics:/kube-state-metrics:0755" --entrypoint /kube-state-metrics \
    --arg --port=8080 --arg --telemetry-port=8081 --user 65534 --expose 8080/tcp --expose 8081/tcp
  image_archive registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0 "$out/prometheus-adapter.oci.tar" "$prometheus_adapter_bin" \
    --file "$prometheus_adapter_bin/adapter:/adapter:0755" --entrypoint /adapter --user 65534 --dir /tmp:1777
  # The VPA, with upstream's paths (distroless static:nonroot, one binary at /).
  local vpa_component
  for vpa_component in recommender updater admission-controller; do
    image_archive "registry.k8s.io/autoscaling/vpa-$vpa_component:1.8.1" "$out/vpa-$vpa_component.oci.tar" "$vpa_bin" \
      --file "$vpa_bin/$vpa_component:/$vpa_component:0755" --entrypoint "/$vpa_component" --user 65532
  done
  # KEDA: upstream's names, paths and user (distroless nonroot, 65532); the
  # manifests (ci/addons/keda/) give each its command. Its own build call, so that this
  # block is the whole of KEDA here. The cron scaler loads time zones at run time
  # (time.LoadLocation; upstream's distroless base has /usr/share/zoneinfo): the operator
  # and the metrics server get the Go toolchain's zoneinfo.zip that built them (the
  # build's key holds the Go version) and ZONEINFO pointing at it.
  local keda_bin zoneinfo
  keda_bin=$(build keda) || die "building KEDA failed"
  zoneinfo="$(go env GOROOT)/lib/time/zoneinfo.zip:/zoneinfo.zip:0644"
  image_archive ghcr.io/kedacore/keda:2.21.0 "$out/keda.oci.tar" "$keda_bin" \
    --file "$keda_bin/keda:/keda:0755" --file "$zoneinfo" --env ZONEINFO=/zoneinfo.zip \
    --entrypoint /keda --user 65532 --expose 8080/tcp
  image_archive ghcr.io/kedacore/keda-metrics-apiserver:2.21.0 "$out/keda-metrics-apiserver.oci.tar" "$keda_bin" \
    --file "$keda_bin/keda-adapter:/keda-adapter:0755" --file "$zoneinfo" --env ZONEINFO=/zoneinfo.zip \
    --entrypoint /keda-adapter --user 65532 --dir /tmp:1777 --expose 6443/tcp --expose 8080/tcp
  image_archive ghcr.io/kedacore/keda-admission-webhooks:2.21.0 "$out/keda-admission-webhooks.oci.tar" "$keda_bin" \
    --file "$keda_bin/keda-admission-webhooks:/keda-admission-webhooks:0755" --entrypoint /keda-admission-webhooks \
    --user 65532 --expose 9443/tcp --expose 8080/tcp
  # The Cluster Autoscaler 1.36.1 with the kwok cloud provider only (build.sh
  # cluster-autoscaler), under upstream's name and layout: distroless static:nonroot
  # (65532), the binary at /cluster-autoscaler, workdir / (upstream's chart runs
  # ./cluster-autoscaler). ci/addons/cluster-autoscaler.yaml gives it its command. Its own
  # build call, so that this block is the whole of it.
  local ca_bin
  ca_bin=$(build cluster-autoscaler) || die "building the Cluster Autoscaler failed"
  image_archive registry.k8s.io/autoscaling/cluster-autoscaler:v1.36.1 "$out/cluster-autoscaler.oci.tar" "$ca_bin" \
    --file "$ca_bin/cluster-autoscaler:/cluster-autoscaler:0755" --entrypoint /cluster-autoscaler --workdir / \
    --user 65532 --expose 8085/tcp
  script_images "$out"
}

# The images students' test scripts run in, on both paths (ci/README.md, "The test
# scripts' images"). script-runner runs the script itself: bash (Debian's bash-static),
# busybox (busybox-static) with a link for every applet at its usual path (`busybox
# --list-full`: /bin/sleep, /usr/bin/wget, ...), kubectl and hey. /bin/sh is busybox's
# ash, as in the busybox image the same scripts start pods from (and in Alpine), not
# bash: a `#!/bin/sh` script then behaves in the runner as in those pods, and bash is
# always /bin/bash. docker.io/library/busybox (latest and 1.36, which students write)
# is upstream's layout: busybox and every applet in /bin, /usr/bin/env, no entrypoint,
# `sh` as the command, root. Its own build call, so that this block is the whole of it.
script_images() {
  local out=$1 built static_bin hey_bin kubectl_bin_dir applet link
  local -a dirs applets runner_links=() busybox_links=()
  built=$(build debian-static hey kubectl) || die "building the test scripts' tools (bash, busybox, hey, kubectl) failed"
  mapfile -t dirs <<<"$built"
  [ ${#dirs[@]} -eq 3 ] || die "build.sh did not print the three module directories"
  static_bin=${dirs[0]}; hey_bin=${dirs[1]}; kubectl_bin_dir=${dirs[2]}
  [ -s "$static_bin/busybox.applets" ] || die "$static_bin has no busybox.applets"
  mapfile -t applets <"$static_bin/busybox.applets"
  for applet in "${applets[@]}"; do
    case $applet in bin/busybox | bin/bash | linuxrc | "") continue ;; esac
    # Relative links (/usr/bin/wget -> ../../bin/busybox), so an extracted rootfs works too.
    link=bin/busybox
    case $applet in bin/*) link=busybox ;; */*/*) link=../../$link ;; */*) link=../$link ;; esac
    runner_links+=(--symlink "/$applet:$link")
    busybox_links+=(--symlink "/bin/${applet##*/}:busybox")
  done
  local etc=(--file "$static_bin/passwd:/etc/passwd:0644" --file "$static_bin/group:/etc/group:0644")
  image_archive localhost/autoscale-conformance/script-runner:0.1.0 "$out/script-runner.oci.tar" \
    "$static_bin $hey_bin $kubectl_bin_dir" \
    --file "$static_bin/bash:/bin/bash:0755" --file "$static_bin/busybox:/bin/busybox:0755" "${runner_links[@]}" \
    --file "$kubectl_bin_dir/kubectl:/usr/local/bin/kubectl:0755" --file "$hey_bin/hey:/usr/local/bin/hey:0755" \
    "${etc[@]}" --dir /tmp:1777 --dir /work:1777 --workdir /work --user 65532:65532 \
    --env HOME=/tmp --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --entrypoint /bin/bash
  local tag
  for tag in latest 1.36; do
    image_archive "docker.io/library/busybox:$tag" "$out/busybox-$tag.oci.tar" "$static_bin" \
      --file "$static_bin/busybox:/bin/busybox:0755" "${busybox_links[@]}" --symlink /usr/bin/env:../../bin/env \
      "${etc[@]}" --dir /tmp:1777 --dir /root:0700 --arg sh
  done
  # williamyeh/hey, the hey image load scripts start (`kubectl run --image=williamyeh/hey
  # -- -z 2m http://...`): upstream's is the binary alone, entrypoint /hey, root.
  image_archive docker.io/williamyeh/hey:latest "$out/hey.oci.tar" "$hey_bin" \
    --file "$hey_bin/hey:/hey:0755" --entrypoint /hey
}

# Builds an archive unless the one there was built from the same build directory (whose
# name carries build.sh's key of its inputs; or several, space-separated) by the same
# oci-image with the same arguments. Timestamps would not do: a build directory made
# earlier than the archive (another checkout's build, a restored CI cache) would leave
# the archive of an older binary in place.
image_archive() {
  local name=$1 archive=$2 input=$3 stamp; shift 3
  # The arguments too: a changed path, user or link list is a changed image.
  stamp="$name $input $(sha256sum <"$oci_image" | cut -c1-16) $(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
  if [ -f "$archive" ] && [ "$(cat "$archive.inputs" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  rm -f "$archive.inputs"
  "$oci_image" build --name "$name" "$@" --out "$archive" >&2
  echo "$stamp" >"$archive.inputs"
}

import_images() {
  local a
  for a in "$cache"/images/*.oci.tar; do
    ctr --address "$containerd_sock" -n k8s.io images import --no-unpack=false "$a" >/dev/null \
      || die "importing $a into containerd failed"
  done
  log "images: $(ctr --address "$containerd_sock" -n k8s.io images ls -q | grep -vc '^sha256' || true) imported"
}

# ---------------------------------------------------------------- PKI and kubeconfigs
pki() {
  [ -f "$pki/.complete" ] && return
  rm -rf "$pki"; mkdir -p "$pki"; cd "$pki"
  openssl_ca ca "localcluster-ca"
  openssl_ca front-proxy-ca "localcluster-front-proxy-ca"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cert ca apiserver kube-apiserver "" server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$node_ip,IP:$kubernetes_service_ip"
  cert ca apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client
  cert front-proxy-ca front-proxy-client front-proxy-client "" client
  cert ca admin kubernetes-admin system:masters client
  cert ca controller-manager system:kube-controller-manager "" client
  cert ca scheduler system:kube-scheduler "" client
  cert ca kube-proxy system:kube-proxy "" client
  cert ca kwok kwok-controller system:masters client
  cert ca kubelet "system:node:$node_name" system:nodes client
  cert ca kubelet-serving "$node_name" "" server "DNS:$node_name,DNS:localhost,IP:$node_ip,IP:127.0.0.1"
  chmod 600 ./*.key
  touch .complete
  cd - >/dev/null
}

openssl_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.crt" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

cert() {
  local ca=$1 name=$2 cn=$3 org=$4 usage=$5 san=${6:-} subj ext
  subj="/CN=$cn"
  [ -z "$org" ] || subj="/O=$org/CN=$cn"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$([ "$usage" = server ] && echo serverAuth || echo clientAuth)"
  [ -z "$san" ] || ext+=$'\n'"subjectAltName=$san"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 3650 \
    -extfile <(echo "$ext") -out "$name.crt" 2>/dev/null
  rm -f "$name.csr"
}

# Writes stdin to $1 only when its content differs: a running component may watch its
# files. kube-proxy exits as soon as its --config file is rewritten ("content of the proxy
# server's configuration file was updated"), and `up` on a running cluster skips starting
# it again, so rewriting it unchanged left the cluster without a kube-proxy: new Services
# got no rules and pods' connections to them failed.
write_if_changed() {
  local file=$1 new
  new=$(cat)
  if [ -f "$file" ] && [ "$(cat "$file")" = "$new" ]; then return; fi
  printf '%s\n' "$new" >"$file.tmp" && mv "$file.tmp" "$file"
}

write_kubeconfig() {
  local file=$1 user=$2 server=${3:-https://127.0.0.1:$apiserver_port}
  write_if_changed "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: localcluster
  cluster:
    certificate-authority: $pki/ca.crt
    server: $server
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: localcluster
  context: {cluster: localcluster, user: $user}
current-context: localcluster
EOF
}

# ---------------------------------------------------------------- processes
start() {
  local name=$1; shift
  if running "$name"; then return; fi
  mkdir -p "$logs" "$pids"
  # setsid: its own session, so `down` can end the whole process group.
  setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name.pid"
}

running() { [ -f "$pids/$1.pid" ] && kill -0 "$(cat "$pids/$1.pid")" 2>/dev/null; }

# Stops the named components together: TERM to each process group, up to 10 s for all
# of them to exit, then KILL. (One after another, the slow ones' waits would add up.)
stop() {
  local name pid alive
  local -a stopping=()
  for name in "$@"; do
    [ -f "$pids/$name.pid" ] || continue
    pid=$(cat "$pids/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    stopping+=("$pid")
  done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${stopping[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 1 ] || break
    sleep 0.2
  done
  for pid in "${stopping[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for name in "$@"; do rm -f "$pids/$name.pid"; done
}

wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what: not ready within ${seconds}s (see $logs)"
    sleep 0.5
  done
  log "$what: ready"
}

# ---------------------------------------------------------------- network
network_up() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$node_ip/24" dev "$bridge"
  fi
  ip link set "$bridge" up
  mkdir -p "$state"
  [ -f "$state/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$state/ip_forward.orig"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  # Nothing from the pod bridge may leave by another interface.
  iptables -N "$iptables_chain" 2>/dev/null || true
  iptables -F "$iptables_chain"
  iptables -A "$iptables_chain" -i "$bridge" ! -o "$bridge" -j DROP
  iptables -C FORWARD -j "$iptables_chain" 2>/dev/null || iptables -I FORWARD 1 -j "$iptables_chain"
  # Traffic between pods on the bridge is accepted at the end of FORWARD, after every other
  # rule: on a host whose FORWARD policy is DROP (Docker sets it, as on GitHub's runners)
  # it would be dropped otherwise. Where the policy is ACCEPT this changes nothing.
  iptables -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null \
    || iptables -A FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
  mkdir -p "$state/cni"
  cat >"$state/cni/10-localcluster.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "localcluster",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$pod_subnet", "gateway": "$node_ip"}]],
        "routes": [{"dst": "$cluster_cidr"}, {"dst": "$service_cidr"}],
        "dataDir": "$state/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

network_down() {
  if iptables -C FORWARD -j "$iptables_chain" 2>/dev/null; then iptables -D FORWARD -j "$iptables_chain"; fi
  while iptables -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; do
    iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
  done
  iptables -F "$iptables_chain" 2>/dev/null || true
  iptables -X "$iptables_chain" 2>/dev/null || true
  # The kubelet's and kube-proxy's chains (all named KUBE-*) and every rule that jumps to
  # them: each table is saved, filtered and restored whole, so nothing of this cluster is left.
  local tool table
  for tool in iptables ip6tables; do
    for table in filter nat mangle; do
      # -w: a component that is still exiting may hold the xtables lock for a moment.
      local attempt
      for attempt in 1 2 3; do
        "$tool-save" -t "$table" 2>/dev/null | grep -q -- 'KUBE-' || break
        "$tool-save" -t "$table" | grep -v -- 'KUBE-' | "$tool-restore" -w 5 -T "$table" && continue
        log "cleaning $tool $table failed (attempt $attempt)"; sleep 1
      done
    done
  done
  local veth
  for veth in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  if [ -f "$state/ip_forward.orig" ]; then cat "$state/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward; fi
}

# ---------------------------------------------------------------- components
containerd_up() {
  mkdir -p "$run/containerd" "$state/containerd"
  cat >"$state/containerd.toml" <<EOF
version = 2
root = "$state/containerd"
state = "$run/containerd"
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.2"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$here/runc-oom-clamp"
        Root = "$run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni"
  # Any pull would go to loopback and fail at once: every image is imported beforehand.
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."*"]
    endpoint = ["http://127.0.0.1:9"]
EOF
  start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    containerd --config "$state/containerd.toml"
  wait_for containerd 30 ctr --address "$containerd_sock" version
}

etcd_up() {
  start etcd "$k8s_bin/etcd" -data-dir "$state/etcd"
  wait_for etcd 30 curl -fsS http://127.0.0.1:2379/health
}

apiserver_up() {
  start kube-apiserver "$k8s_bin/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=$apiserver_port --advertise-address=$node_ip \
    --service-cluster-ip-range=$service_cidr \
    --client-ca-file="$pki/ca.crt" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --requestheader-group-headers=X-Remote-Group --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --profiling=false --v=1
  wait_for kube-apiserver 90 kubectl get --raw /readyz
}

controllers_up() {
  write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$state/scheduler.kubeconfig" scheduler
  start kube-controller-manager "$k8s_bin/kube-controller-manager" \
    --kubeconfig="$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --use-service-account-credentials=true --controllers='*' \
    --service-cluster-ip-range=$service_cidr --allocate-node-cidrs=false \
    --profiling=false --v=1
  start kube-scheduler "$k8s_bin/kube-scheduler" \
    --kubeconfig="$state/scheduler.kubeconfig" \
    --authentication-kubeconfig="$state/scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
}

kubelet_up() {
  write_kubeconfig "$state/kubelet.kubeconfig" kubelet
  # Pods get no host resolvers: CoreDNS is their only DNS and it answers for cluster.local only.
  echo "# local cluster: no upstream resolvers" >"$state/resolv.conf"
  write_if_changed "$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet-serving.crt"
tlsPrivateKeyFile: "$pki/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$containerd_sock"
cgroupDriver: cgroupfs
# This machine runs cgroup v1; kubelet 1.35+ refuses it unless told otherwise.
failCgroupV1: false
failSwapOn: false
clusterDNS: ["$dns_ip"]
clusterDomain: cluster.local
resolvConf: "$state/resolv.conf"
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
rotateCertificates: false
serverTLSBootstrap: false
# Images are imported, never pulled: image garbage collection must never delete them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 8760h
# Absolute disk thresholds: the node shares a disk with the builds, whose nominal size
# (and so any percentage of it) says nothing of what is free; a percentage once tainted
# the node with disk-pressure while gigabytes were still free.
evictionHard: {memory.available: "200Mi", nodefs.available: "1Gi", imagefs.available: "1Gi"}
maxPods: 110
podPidsLimit: 4096
EOF
  start kubelet "$k8s_bin/kubelet" --config="$state/kubelet.yaml" --kubeconfig="$state/kubelet.kubeconfig" \
    --hostname-override=$node_name --node-ip=$node_ip --root-dir="$state/kubelet" \
    --node-labels=autoscale-conformance/node-role=worker --v=1
  wait_for "node $node_name Ready" 120 \
    bash -c "'$kubectl_bin' --kubeconfig '$kubeconfig' get node $node_name -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

proxy_up() {
  write_kubeconfig "$state/kube-proxy.kubeconfig" kube-proxy
  write_if_changed "$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$state/kube-proxy.kubeconfig"}
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $cluster_cidr
nodePortAddresses: ["$node_ip/32"]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
  start kube-proxy "$k8s_bin/kube-proxy" --config="$state/kube-proxy.yaml" --v=1
}

kwok_up() {
  write_kubeconfig "$state/kwok.kubeconfig" kwok
  # Fake node and pod addresses stay on loopback: nothing ever tries to reach them.
  local stages
  stages=$(printf -- '--config=%s ' "$kwok_bin"/stages/*.yaml)
  # shellcheck disable=SC2086 # one --config flag per stage file
  start kwok "$kwok_bin/kwok" --kubeconfig="$state/kwok.kubeconfig" $stages \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.2 --cidr=127.1.0.0/16 --node-port=0 --server-address=127.0.0.1:10247
  # The GPU pool's nodes (ci/addons/gpu-pool.yaml) are applied, and checked, by
  # ci/addons/apply.sh: the same manifest and the same check as on kind.
}

addons_up() {
  AUTOSCALE_OPERATOR_DIR=$prometheus_operator_bin AUTOSCALE_VPA_DIR=$vpa_bin "$repo/ci/addons/apply.sh" "$kubectl_bin" "$kubeconfig"
}

# ---------------------------------------------------------------- commands
cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "the local cluster runs kubelet and containerd: run as root"
  local started=$SECONDS
  # A machine that was stopped with the cluster up keeps its state but not its
  # processes: start from a clean slate then, not from a half-dead cluster.
  if ! running kube-apiserver && ! running containerd; then cmd_down >/dev/null 2>&1 || true; fi
  binaries
  images
  pki
  write_kubeconfig "$kubeconfig" admin
  network_up
  containerd_up
  import_images
  etcd_up
  apiserver_up
  controllers_up
  kubelet_up
  proxy_up
  kwok_up
  addons_up
  log "up in $((SECONDS - started)) s; KUBECONFIG=$kubeconfig"
  echo "$kubeconfig"
}

cmd_down() {
  local started=$SECONDS
  stop kwok kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd
  if running containerd; then
    local ctr_="ctr --address $containerd_sock"
    for t in $($ctr_ -n k8s.io tasks ls -q 2>/dev/null); do $ctr_ -n k8s.io tasks kill -s KILL "$t" 2>/dev/null || true; done
    sleep 1
    for t in $($ctr_ -n k8s.io tasks ls -q 2>/dev/null); do $ctr_ -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true; done
  fi
  # The sandboxes' network namespaces and veths go with CNI's DEL, which needs containerd:
  # what is left after it stops is removed below.
  stop containerd
  # Leftover shims and containers of this cluster (their cgroups name the containerd state dir).
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io .*-address $containerd_sock" 2>/dev/null || true
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk '{print $2}' /proc/mounts | grep -E "^($state|$run)/" | sort -r)
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk '{print $2}' /proc/mounts | grep -E '^/run/netns/cni-' | sort -r)
  rm -f /run/netns/cni-* 2>/dev/null || true
  network_down
  rm -rf "$run" "$state/etcd" "$state/kubelet" "$state/containerd" "$state/cni"
  log "down in $((SECONDS - started)) s"
}

cmd_status() {
  local c
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kwok; do
    if running "$c"; then echo "$c: running (pid $(cat "$pids/$c.pid"))"; else echo "$c: stopped"; fi
  done
  if running kube-apiserver; then binaries >/dev/null 2>&1 && kubectl get nodes -o wide; fi
}

# Sourcing the file (for debugging one step at a time) defines the functions only.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0
case "${1:-}" in
  up) cmd_up ;;
  images)
    images "${2:-local}"
    # The archives of this target, one path a line.
    for archive in "$cache"/images/*.oci.tar; do
      [ "${2:-local}:$(basename "$archive")" = kind:pause.oci.tar ] || echo "$archive"
    done ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) shift; if [ -n "${1:-}" ]; then tail -n 200 "$logs/$1.log"; else tail -n 20 "$logs"/*.log; fi ;;
  kubeconfig) echo "$kubeconfig" ;;
  env) echo "export KUBECONFIG=$kubeconfig" ;;
  *) echo "usage: ci/cluster up|down|status|logs [component]|kubeconfig|env|images [local|kind]" >&2; exit 2 ;;
esac
