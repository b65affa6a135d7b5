#!/usr/bin/env bash
# Builds the local cluster's Go binaries from their pinned modules, once per set of
# build inputs: each module's output lands in $CACHE/bin/<module>-<key>/, where the key
# hashes the module's go.mod, go.sum, sources, the Go version and this script. A second
# run with the same inputs rebuilds nothing.
#
# The monitoring stack (Prometheus, its operator, kube-state-metrics, prometheus-adapter)
# is built the same way; kube-state-metrics and prometheus-adapter are not served by the
# module proxy, so their release archives (../shared/third_party/, checked against its
# SHA256SUMS; without it, a clone of the pinned tag checked against its commit) are
# extracted into $CACHE/src/<module>-<key>/upstream next to a copy of the wrapper's go.mod
# and go.sum, whose replace directive points there, and built in that directory. The
# archive's digest (or the commit) is part of the key. Never into this repository.
#
# The Cluster Autoscaler (`cluster-autoscaler`, 1.36.1, also not served by the proxy) comes
# the same way, but builds inside the extracted `cluster-autoscaler/` directory with
# upstream's own go.mod and go.sum (k8s.io/* v0.36.2: its code does not compile against
# the cluster's v0.37), with `-tags kwok`: the kwok cloud provider alone
# (ci/localcluster/cluster-autoscaler/README.md).
#
# The images students' test scripts run in (script-runner, busybox; see cluster.sh's
# images()) take three more: `kubectl` (only k8s.io/kubernetes/cmd/kubectl, from the k8s
# module's go.mod with the same flags, so it shares Go's build cache; the k8s build's own
# directory when that exists), `hey` (github.com/rakyll/hey) and `debian-static`: bash and
# busybox from Debian's bash-static and busybox-static packages, pinned by version and
# SHA256 (debian_package below), fetched into $CACHE/debs/ (apt-get download; where apt
# does not serve that version, as on GitHub's Ubuntu runners or once Debian has replaced
# it, straight from the Debian mirror's pool, $AUTOSCALE_DEBIAN_MIRROR, by default
# https://deb.debian.org/debian), checked against the digest, extracted with dpkg-deb.
#
# Usage: ci/localcluster/build.sh [k8s|metrics-server|coredns|kwok|prometheus|
#          prometheus-operator|kube-state-metrics|prometheus-adapter|vpa|keda|
#          cluster-autoscaler|kubectl|hey|debian-static ...]   (default: all but kubectl, which k8s holds)
# Prints one line per module: the directory holding its binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
k8s_version=v1.37.2

# Version stamps: without them the binaries report v0.0.0 and kubelet/apiserver skew checks misbehave.
k8s_ldflags() {
  local minor=${k8s_version#v1.}; minor=${minor%%.*}
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

inputs_key() {
  local dir=$1 extra=${2:-}
  # debian-static has no Go sources: its key is this script (which pins the packages).
  if [ -z "$dir" ]; then { sha256sum <"$0"; echo "$extra"; } | sha256sum | cut -c1-16; return; fi
  { go version; sha256sum <"$0"; echo "$extra"; cd "$dir" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
      | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16
}

# Upstream sources the module proxy does not serve: name -> archive, tag, commit, repository.
third_party_dir=${AUTOSCALE_THIRD_PARTY:-$here/../../../shared/third_party}
[ -d "$third_party_dir" ] || third_party_dir=/work/shared/third_party
third_party() {
  case $1 in
    kube-state-metrics) echo "kube-state-metrics-v2.20.0.tar.gz v2.20.0 4ffeda2ef866b0fef372849825a803296483b336 https://github.com/kubernetes/kube-state-metrics" ;;
    prometheus-adapter) echo "prometheus-adapter-v0.12.0.tar.gz v0.12.0 17cef511b1854441490bceeca7a710a04ce091ad https://github.com/kubernetes-sigs/prometheus-adapter" ;;
    cluster-autoscaler) echo "cluster-autoscaler-1.36.1.tar.gz cluster-autoscaler-1.36.1 35e8a280425c76a4040f57ae0fa232a952c02024 https://github.com/kubernetes/autoscaler" ;;
    *) return 1 ;;
  esac
}

# The identity of a third-party source: the archive's verified digest, or the pinned commit
# when the archive is absent (then cloned from upstream at build time).
third_party_id() {
  local archive tag commit url sum
  read -r archive tag commit url <<<"$(third_party "$1")"
  if [ -f "$third_party_dir/$archive" ]; then
    sum=$(grep " $archive\$" "$third_party_dir/SHA256SUMS" | cut -d' ' -f1) \
      || { echo "no digest for $archive in $third_party_dir/SHA256SUMS" >&2; return 1; }
    [ "$(sha256sum <"$third_party_dir/$archive" | cut -d' ' -f1)" = "$sum" ] \
      || { echo "$third_party_dir/$archive does not match its SHA256SUMS digest" >&2; return 1; }
    echo "archive $archive sha256:$sum"
  else
    echo "git $url $tag $commit"
  fi
}

# Prepares $1 (a directory in the cache): the wrapper's go.mod and go.sum (where the
# module has a wrapper; the Cluster Autoscaler builds with upstream's own), and upstream/.
third_party_src() {
  local name=$1 src=$2 archive tag commit url
  read -r archive tag commit url <<<"$(third_party "$name")"
  rm -rf "$src"; mkdir -p "$src/upstream"
  if [ -f "$here/$name/go.mod" ]; then cp "$here/$name/go.mod" "$here/$name/go.sum" "$src/"; fi
  if [ -f "$third_party_dir/$archive" ]; then
    tar -xzf "$third_party_dir/$archive" -C "$src/upstream" --strip-components=1
  else
    echo "$archive not in $third_party_dir: cloning $url at $tag" >&2
    git clone -q --depth 1 --branch "$tag" "$url" "$src/clone"
    [ "$(git -C "$src/clone" rev-parse HEAD)" = "$commit" ] \
      || { echo "$url $tag is not commit $commit" >&2; return 1; }
    git -C "$src/clone" archive HEAD | tar -x -C "$src/upstream"
    rm -rf "$src/clone"
  fi
}

# Debian packages (amd64, bookworm): name -> version, SHA256 of the .deb, its path in the
# archive's pool. `apt-get download --print-uris NAME` prints all three for the version apt
# serves; change them together.
debian_package() {
  case $1 in
    bash-static) echo "5.2.15-2+b13 f62e37fc6c2c14417f270323066b4c621db5dc151a26f7a1f58e3fc24111d1c8 pool/main/b/bash/bash-static_5.2.15-2+b13_amd64.deb" ;;
    busybox-static) echo "1:1.35.0-4+deb12u1+b1 3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744 pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb" ;;
    *) return 1 ;;
  esac
}

# Prints the path of the package's .deb in $cache/debs, fetched once and checked against
# its pinned digest. apt-get download first (Debian bookworm: its configured mirror or
# proxy); where apt has no such version (another distribution, e.g. GitHub's Ubuntu
# runners, or Debian has since replaced it), the Debian mirror's pool by URL. Either way
# nothing but a file with the pinned digest is used.
fetch_deb() {
  local name=$1 version sha pool file tmp got
  read -r version sha pool <<<"$(debian_package "$name")"
  file="$cache/debs/${pool##*/}"
  if [ -f "$file" ] && [ "$(sha256sum <"$file" | cut -d' ' -f1)" = "$sha" ]; then echo "$file"; return; fi
  mkdir -p "$cache/debs"
  tmp=$(mktemp -d "$cache/debs/.fetch.XXXXXX")
  if ! (cd "$tmp" && apt-get download -q "$name=$version" >/dev/null 2>"$tmp/apt.log"); then
    local url="${AUTOSCALE_DEBIAN_MIRROR:-https://deb.debian.org/debian}/$pool"
    echo "apt-get download $name=$version failed ($(tail -1 "$tmp/apt.log")): fetching $url" >&2
    rm -f "$tmp"/*.deb
    curl -fsSL --retry 3 -o "$tmp/${pool##*/}" "$url" || { rm -rf "$tmp"; echo "fetching $url failed" >&2; return 1; }
  fi
  got=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -1)
  if [ -z "$got" ] || [ "$(sha256sum <"$got" | cut -d' ' -f1)" != "$sha" ]; then
    echo "$name $version: the .deb does not have the pinned SHA256 $sha" >&2
    rm -rf "$tmp"; return 1
  fi
  mv "$got" "$file"; rm -rf "$tmp"
  echo "$file"
}

build_module() {
  local name=$1 dir="$here/$1" key out started extra=""
  case $name in
    kubectl) dir="$here/k8s" ;;  # the k8s module's go.mod: the same key as k8s
    debian-static) dir=""; extra="debian-static" ;;
  esac
  if third_party "$name" >/dev/null; then extra=$(third_party_id "$name") || return 1; fi
  key=$(inputs_key "$dir" "$extra")
  # kubectl: the k8s build of the same inputs holds it already.
  if [ "$name" = kubectl ] && [ -f "$cache/bin/k8s-$key/.complete" ]; then echo "$cache/bin/k8s-$key"; return; fi
  out="$cache/bin/$name-$key"
  if [ -f "$out/.complete" ]; then echo "$out"; return; fi
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  started=$(date +%s)
  echo "building $name (cold build, several minutes on 2 cores)..." >&2
  case $name in
    k8s)
      (cd "$dir" && go build -ldflags "$(k8s_ldflags)" -o "$out.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl ./cmd/etcd ./cmd/pause) ;;
    kubectl)
      # Only kubectl (the kind path, which has no k8s build), with k8s's flags.
      (cd "$dir" && go build -ldflags "$(k8s_ldflags)" -o "$out.tmp/" k8s.io/kubernetes/cmd/kubectl) ;;
    hey)
      (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp/hey" github.com/rakyll/hey) ;;
    debian-static)
      # /bin/bash-static and /bin/busybox (both static), busybox's applet list with each
      # applet's usual path (`busybox --list-full`: bin/sh, usr/bin/wget, ...), and the
      # images' /etc/passwd and /etc/group (root, nobody and distroless' nonroot 65532).
      local package deb x="$out.tmp/extract"
      for package in bash-static busybox-static; do
        deb=$(fetch_deb "$package") || return 1
        dpkg-deb -x "$deb" "$x"
      done
      cp "$x/bin/bash-static" "$out.tmp/bash"; cp "$x/bin/busybox" "$out.tmp/busybox"
      chmod 0755 "$out.tmp/bash" "$out.tmp/busybox"
      rm -rf "$x"
      "$out.tmp/busybox" --list-full | LC_ALL=C sort >"$out.tmp/busybox.applets"
      if ! grep -qx bin/sh "$out.tmp/busybox.applets" || ! grep -qx usr/bin/wget "$out.tmp/busybox.applets"; then
        echo "busybox --list-full names no bin/sh or usr/bin/wget" >&2; return 1
      fi
      printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' \
        'nonroot:x:65532:65532:nonroot:/tmp:/bin/false' >"$out.tmp/passwd"
      printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'nonroot:x:65532:' >"$out.tmp/group"
      chmod 0644 "$out.tmp/busybox.applets" "$out.tmp/passwd" "$out.tmp/group" ;;
    metrics-server)
      (cd "$dir" && go build -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v0.8.0" \
        -o "$out.tmp/" sigs.k8s.io/metrics-server/cmd/metrics-server) ;;
    coredns)
      (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp/coredns" .) ;;
    kwok)
      (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp/" sigs.k8s.io/kwok/cmd/kwok)
      # kwok needs Stage configs; use the ones its module ships, at the pinned version.
      local src
      src=$(cd "$dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
      mkdir -p "$out.tmp/stages"
      cp "$src"/node/fast/node-initialize.yaml "$src"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        "$src"/pod/fast/pod-*.yaml "$out.tmp/stages/" ;;
    prometheus)
      # Only the Kubernetes service discovery (plugins/: remove_all_sd, enable_kubernetes_sd;
      # file and http SD are always in), no built-in UI assets (builtinassets is not set).
      local v=github.com/prometheus/common/version
      (cd "$dir" && go build -tags remove_all_sd,enable_kubernetes_sd \
        -ldflags "-s -w -X $v.Version=3.16.0 -X $v.Revision=v0.316.0 -X $v.Branch=HEAD -X $v.BuildUser=autoscale-conformance -X $v.BuildDate=19700101-00:00:00" \
        -o "$out.tmp/" github.com/prometheus/prometheus/cmd/prometheus) ;;
    prometheus-operator)
      local v=github.com/prometheus/common/version mod
      (cd "$dir" && go build \
        -ldflags "-s -w -X $v.Version=0.85.0 -X $v.Revision=v0.85.0 -X $v.Branch=HEAD -X $v.BuildUser=autoscale-conformance -X $v.BuildDate=19700101-00:00:00" \
        -o "$out.tmp/" github.com/prometheus-operator/prometheus-operator/cmd/operator \
        github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader)
      # The CRDs of the same module, at the pinned version (applied by ci/addons/apply.sh).
      mod=$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/prometheus-operator/prometheus-operator)
      mkdir -p "$out.tmp/crds"
      cp "$mod"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$out.tmp/crds/"
      chmod 0644 "$out.tmp/crds/"*.yaml ;;
    kube-state-metrics)
      local src="$cache/src/$name-$key" v=github.com/prometheus/common/version
      third_party_src "$name" "$src"
      (cd "$src" && go build \
        -ldflags "-s -w -X $v.Version=v2.20.0 -X $v.Revision=4ffeda2ef866b0fef372849825a803296483b336 -X $v.Branch=HEAD -X $v.BuildUser=autoscale-conformance -X $v.BuildDate=1970-01-01T00:00:00Z -X k8s.io/kube-state-metrics/v2/pkg/app.ClientGoVersion=v0.37.2" \
        -o "$out.tmp/kube-state-metrics" k8s.io/kube-state-metrics/v2) ;;
    prometheus-adapter)
      local src="$cache/src/$name-$key"
      third_party_src "$name" "$src"
      (cd "$src" && go build -ldflags "-s -w" -o "$out.tmp/" sigs.k8s.io/prometheus-adapter/cmd/adapter) ;;
    cluster-autoscaler)
      # Upstream's module as it is (its go.mod and go.sum), built in cluster-autoscaler/
      # (the archive holds that folder, a clone the whole repository), with only the kwok
      # cloud provider (cloudprovider/router/router_kwok.go, `-tags kwok`). The version
      # variable already says 1.36.1 at this tag; -X states it all the same.
      local src="$cache/src/$name-$key" ca
      third_party_src "$name" "$src"
      ca="$src/upstream/cluster-autoscaler"
      [ -f "$ca/go.mod" ] || { echo "no cluster-autoscaler/go.mod in $src/upstream" >&2; return 1; }
      (cd "$ca" && go build -tags kwok \
        -ldflags "-s -w -X k8s.io/autoscaler/cluster-autoscaler/version.ClusterAutoscalerVersion=1.36.1" \
        -o "$out.tmp/cluster-autoscaler" .)
      # Only the binary is kept: the sources go (the key holds the archive's digest).
      rm -rf "$src" ;;
    vpa)
      # Named as upstream's images name them (/recommender, /updater, /admission-controller).
      local p=k8s.io/autoscaler/vertical-pod-autoscaler/pkg mod
      (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp/recommender" $p/recommender \
        && go build -ldflags "-s -w" -o "$out.tmp/updater" $p/updater \
        && go build -ldflags "-s -w" -o "$out.tmp/admission-controller" $p/admission-controller)
      # Upstream's CRDs and RBAC (with the ServiceAccounts) from the same module, at the
      # pinned version (applied by ci/addons/apply.sh).
      mod=$(cd "$dir" && go list -m -f '{{.Dir}}' k8s.io/autoscaler/vertical-pod-autoscaler)
      mkdir -p "$out.tmp/deploy"
      cp "$mod"/deploy/vpa-v1-crd-gen.yaml "$mod"/deploy/vpa-rbac.yaml "$out.tmp/deploy/"
      chmod 0644 "$out.tmp/deploy/"*.yaml ;;
    keda)
      # Binary names as upstream's Makefile and images: keda, keda-adapter, keda-admission-webhooks.
      local v=github.com/kedacore/keda/v2 mod
      local ld="-s -w -X $v/version.Version=2.21.0 -X $v/version.GitCommit=v2.21.0"
      (cd "$dir" && go build -ldflags "$ld" -o "$out.tmp/keda" $v/cmd/operator \
        && go build -ldflags "$ld" -o "$out.tmp/keda-adapter" $v/cmd/adapter \
        && go build -ldflags "$ld" -o "$out.tmp/keda-admission-webhooks" $v/cmd/webhooks)
      # The CRDs of the same module, at the pinned version (applied by ci/addons/apply.sh).
      mod=$(cd "$dir" && go list -m -f '{{.Dir}}' $v)
      mkdir -p "$out.tmp/crds"
      cp "$mod"/config/crd/bases/*.yaml "$out.tmp/crds/"
      chmod 0644 "$out.tmp/crds/"*.yaml ;;
    *) echo "unknown module: $name" >&2; return 2 ;;
  esac
  touch "$out.tmp/.complete"
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "built $name in $(( $(date +%s) - started )) s" >&2
  echo "$out"
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(k8s metrics-server coredns kwok prometheus prometheus-operator kube-state-metrics prometheus-adapter vpa keda cluster-autoscaler hey debian-static)
for m in "${modules[@]}"; do build_module "$m"; done
