#!/usr/bin/env bash
# The kind path (GitHub Actions; it cannot run on machines without Docker): the same image
# archives, the same ci/addons/ and the same kwok as the local cluster.
#
#   ci/kind/up.sh [up]   create the cluster if needed, load the images, start kwok, apply
#                        the addons; prints the kubeconfig path on its last line
#   ci/kind/up.sh down   stop kwok, delete the cluster
#
# kwok runs as a host process, as on the local cluster, with the same flags and stages
# (keep them in step with kwok_up in ci/localcluster/cluster.sh): it manages only nodes
# annotated kwok.x-k8s.io/node=fake, which the live tests create for themselves (the PDB
# probe's drain nodes). It stops with `down`, and by itself once the cluster is deleted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
state=${AUTOSCALE_KIND_STATE:-$cache/kind}
name=autoscale-conformance
kubeconfig=$state/kubeconfig
kwok_pid=$state/kwok.pid
kwok_log=$state/kwok.log

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
  local kwok_bin stage
  kwok_bin=$("$repo/ci/localcluster/build.sh" kwok)
  [ -x "$kwok_bin/kwok" ] || die "no kwok binary in $kwok_bin"
  # A kwok left from an earlier cluster would watch a dead API server.
  kwok_stop
  local -a args=(--kubeconfig="$kubeconfig")
  for stage in "$kwok_bin"/stages/*.yaml; do args+=("--config=$stage"); done
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
  ' kwok-watchdog "$name" "$kwok_bin/kwok" "${args[@]}" >>"$kwok_log" 2>&1 </dev/null &
  echo $! >"$kwok_pid"
  sleep 2
  kwok_running || die "kwok exited at once; see $kwok_log: $(tail -n 5 "$kwok_log")"
  log "kwok running (pid $(cat "$kwok_pid"), log $kwok_log)"
}

cmd_up() {
  mkdir -p "$state"
  kind get clusters | grep -qx "$name" || kind create cluster --config "$here/cluster.yaml" --wait 120s
  kind get kubeconfig --name "$name" >"$kubeconfig"

  # kind's node image carries pause and CoreDNS; the project's own images and
  # metrics-server come from the archives the local cluster imports too.
  "$repo/ci/cluster" images >&2
  local archive node
  for archive in "$cache"/images/*.oci.tar; do
    case $(basename "$archive") in pause.oci.tar|coredns.oci.tar) continue ;; esac
    kind load image-archive --name "$name" "$archive"
  done

  # Advertise the simulated GPU on the GPU-pool worker (an extended resource, as the docs describe).
  for node in $(kubectl --kubeconfig "$kubeconfig" get nodes -l node-pool=gpu -o name); do
    kubectl --kubeconfig "$kubeconfig" patch "$node" --subresource=status --type=json \
      -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]'
  done
  kwok_up
  "$repo/ci/addons/apply.sh" kubectl "$kubeconfig"
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
