#!/usr/bin/env bash
# Builds the two workload images as OCI archives, without Docker:
#   1. static release binaries (glibc, +crt-static: the image holds nothing but the binary),
#   2. oci-image packs each one into a reproducible archive (same inputs, same digest),
#   3. oci-image verify checks every digest.
# Output: ${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}/images/<name>.oci.tar
# Import: ctr -n k8s.io images import <archive>   or   kind load image-archive <archive>
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

tag=${IMAGE_TAG:-0.1.0}
registry=localhost/autoscale-conformance
target=x86_64-unknown-linux-gnu
out_dir=${AUTOSCALE_CACHE:-$HOME/.cache/autoscale-conformance}/images
mkdir -p "$out_dir"

# Remapped source paths keep the build directory and $HOME out of the binaries, so another
# checkout of the same commit gives the same bytes.
export RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
# --target keeps these flags off build scripts and away from the normal target/release.
# Symbols stripped: smaller images; panics still name their source line.
CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release --locked --target "$target" -p workloads --bins
unset RUSTFLAGS
cargo build --release --locked -p oci-image
target_dir=${CARGO_TARGET_DIR:-$root/target}
oci_image=$target_dir/release/oci-image
bin_dir=$target_dir/$target/release

for name in inference-server loadgen; do
  binary=$bin_dir/$name
  if ! LC_ALL=C ldd "$binary" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "error: $binary is dynamically linked; the image (the binary alone) would not run" >&2
    exit 1
  fi
  expose=()
  if [[ $name == inference-server ]]; then expose=(--expose 8080/tcp); fi
  "$oci_image" build \
    --name "$registry/$name:$tag" \
    --file "$binary:/$name:0755" \
    --entrypoint "/$name" \
    --user 65532:65532 \
    --workdir / \
    "${expose[@]}" \
    --label org.opencontainers.image.title="$name" \
    --label org.opencontainers.image.version="$tag" \
    --out "$out_dir/$name.oci.tar" >/dev/null
  verified=$("$oci_image" verify "$out_dir/$name.oci.tar")
  # archive path, image reference, manifest digest
  printf '%s\t%s\n' "$out_dir/$name.oci.tar" "$(head -1 <<<"$verified" | cut -f2,3)"
done
