#!/usr/bin/env bash
# The CI steps, one command each. .ci/run runs them on these machines and the GitHub
# workflow runs the same ones, one workflow step each, so what GitHub runs is what is
# tested here. Each step fails loudly, with its own exit status, where it fails.
#
#   ci/steps.sh tools      what the steps need (Debian packages, cargo-nextest; kind)
#   ci/steps.sh test       the offline suite (make test)
#   ci/steps.sh cluster    bring the cluster up ($CLUSTER: local, the default, or kind)
#   ci/steps.sh e2e        the live suite against it, one retry (a pass on retry is FLAKY;
#                          none for a live grade, which probes again what ended in "error")
#   ci/steps.sh grade      grade $SUBMISSION live; the report in out/ ($GRADE_OUT) and the job summary
#   ci/steps.sh down       tear the cluster down
#   ci/steps.sh handback   (GitHub) give the caches root wrote back to the runner's user
#
# The local cluster runs kubelet and containerd, so the steps run as root: where they are
# started as another user (GitHub's runner, which has passwordless sudo) they re-run
# themselves under sudo, keeping the environment, PATH and HOME (so root uses the same
# toolchains and caches).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
fi
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/autoscale-conformance/cargo-target}
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
cluster=${CLUSTER:-local}
case $cluster in local | kind) ;; *) echo "ci/steps.sh: CLUSTER is local or kind, not '$cluster'" >&2; exit 2 ;; esac

step=${1:-}
log() { printf '[ci %s %(%H:%M:%S)T] %s\n' "$step" -1 "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

kubeconfig() {
  case $cluster in
    local) ci/cluster kubeconfig ;;
    kind) echo "${AUTOSCALE_KIND_STATE:-$cache/kind}/kubeconfig" ;;
  esac
}

case $step in
  tools)
    ci/tools.sh cluster || fail "installing the tools failed"
    if [ "$cluster" = kind ]; then ci/tools.sh kind || fail "installing kind failed"; fi
    if ! cargo nextest --version >/dev/null 2>&1; then fail "cargo-nextest is missing after ci/tools.sh"; fi ;;
  test)
    make test || fail "the offline suite failed (make test)" ;;
  cluster)
    status=0
    case $cluster in
      local) ci/tools.sh cluster && ci/cluster up >/dev/null || status=$? ;;
      kind) ci/kind/up.sh >/dev/null || status=$? ;;
    esac
    [ "$status" -eq 0 ] || fail "bringing up the $cluster cluster failed (exit $status); its log is above"
    [ -s "$(kubeconfig)" ] || fail "the $cluster cluster is up but has no kubeconfig at $(kubeconfig)"
    log "the $cluster cluster is up; KUBECONFIG=$(kubeconfig)" ;;
  e2e)
    [ -s "$(kubeconfig)" ] || fail "no $cluster cluster (no kubeconfig at $(kubeconfig)): run ci/steps.sh cluster first"
    # Retries are the profiles' (.config/nextest.toml): one, none for a live grade.
    KUBECONFIG=$(kubeconfig) cargo nextest run --workspace --profile e2e \
      || fail "the live suite failed against the $cluster cluster"
    # Then the faults, alone: each breaks what every other test needs. They stop and
    # resume the local cluster's host processes, so they run on that cluster only.
    if [ "$cluster" = local ]; then
      KUBECONFIG=$(kubeconfig) cargo nextest run --workspace --profile e2e-alone \
        || fail "the fault-injection tests failed against the $cluster cluster"
    fi ;;
  grade)
    [ -s "$(kubeconfig)" ] || fail "no $cluster cluster (no kubeconfig at $(kubeconfig)): run ci/steps.sh cluster first"
    submission=${2:-${SUBMISSION:-fixtures/submissions/reference}}
    out=${GRADE_OUT:-out}
    mkdir -p "$out"
    status=0
    KUBECONFIG=$(kubeconfig) cargo run --release -q -- grade "$submission" --format markdown --out "$out/" \
      >"$out/report.md" || status=$?
    cat "$out/report.md"
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$out/report.md" >>"$GITHUB_STEP_SUMMARY"; fi
    # 0 graded, 2 below --min-score, 3 the environment was broken (points "error", not lost).
    [ "$status" -eq 0 ] || fail "grading $submission exited $status (3: the environment was broken)" ;;
  down)
    case $cluster in
      local) ci/cluster down ;;
      kind) ci/kind/up.sh down ;;
    esac ;;
  handback)
    # Steps ran as root through sudo: the runner's user saves the caches after the job.
    [ -n "${SUDO_UID:-}" ] || { log "not run through sudo: nothing to hand back"; exit 0; }
    # Only the newest build of each module is kept in the cache (build.sh keys them).
    for module in k8s metrics-server coredns kwok kubectl hey debian-static; do
      find "$cache/bin" -maxdepth 1 -name "$module-*" ! -name '*.tmp' -printf '%T@ %p\n' 2>/dev/null \
        | sort -rn | tail -n +2 | cut -d' ' -f2- | xargs -r rm -rf
    done
    for dir in "$cache" "$CARGO_TARGET_DIR" "${CARGO_HOME:-$HOME/.cargo}" $(go env GOMODCACHE GOCACHE) "$PWD"; do
      if [ -e "$dir" ]; then chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$dir"; fi
    done ;;
  *)
    echo "usage: ci/steps.sh tools|test|cluster|e2e|grade [submission]|down|handback" >&2
    exit 2 ;;
esac
