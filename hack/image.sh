#!/usr/bin/env bash
# Builds the two images from the shipped Dockerfiles, offline, into OCI
# archives that `podman load`, `ctr images import` and `skopeo` read:
#
#   target/image/shopify-operator.tar   (Dockerfile)
#   target/image/shopify-sim.tar        (crates/shopify-sim/Dockerfile)
#   target/image/pause.tar              (hack/pause: the test node's sandbox)
#
# Each is a statically linked release binary (`-C target-feature=+crt-static`,
# the gnu target) on `FROM scratch`, built with Debian's buildah (installed
# once, as MariaDB is). The static build's target folder lives in the cache
# (~/.cache/shopify-operator/image-target), so later runs are incremental;
# archives whose inputs (the sources Cargo builds them from, Cargo.lock, the
# Dockerfiles) are unchanged are reused from the cache as they are.
#
#   hack/image.sh           build if needed, print target/image
#   hack/image.sh path      print target/image (no build)
#
# Progress goes to stderr; stdout is only the folder.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
out="$root/target/image"
triple=x86_64-unknown-linux-gnu
# The package version, as the image's tag and OCI version label.
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"

say() { printf '[image] %s\n' "$*" >&2; }
now() { date +%s; }
# shellcheck source=lib/apt.sh
source "$root/hack/lib/apt.sh"

# The inputs of both images: what Cargo compiles them from and how.
inputs_key() {
  (cd "$root" && git ls-files -s -- Cargo.toml Cargo.lock src crates/shopify-admin crates/shopify-sim \
      Dockerfile crates/shopify-sim/Dockerfile .dockerignore hack/image.sh hack/pause 2>/dev/null \
    | sha256sum | cut -c1-16)
}

build() {
  local buildah
  buildah="$(locate buildah)" || { apt_install_quiet buildah; buildah="$(locate buildah)"; }
  local key; key="$(inputs_key)"
  local cached="$cache_root/image/$key"
  mkdir -p "$out"
  if [[ -f "$cached/shopify-operator.tar" && -f "$cached/shopify-sim.tar" && -f "$cached/pause.tar" ]] \
      && git -C "$root" diff --quiet -- src crates Cargo.toml Cargo.lock Dockerfile .dockerignore hack/image.sh hack/pause 2>/dev/null; then
    say "cached: $cached (inputs $key)"
    cp "$cached"/*.tar "$out/"
    echo "$out"
    return
  fi
  local t0; t0=$(now)
  # A target folder of its own, outside the clone: RUSTFLAGS differ from the
  # tests' build (which they would otherwise rebuild), and the cache makes
  # every later build incremental. --target keeps crt-static off the build
  # scripts and proc macros, which must stay dynamic.
  local target_dir="$cache_root/image-target"
  say "building static release binaries (the first time: several minutes)"
  (cd "$root" && CARGO_TARGET_DIR="$target_dir" RUSTFLAGS="-C target-feature=+crt-static" \
    "${CARGO:-cargo}" build --release --locked --target "$triple" \
      -p shopify-operator --bin shopify-operator -p shopify-sim --bin shopify-sim >&2)
  say "binaries built in $(( $(now) - t0 ))s"

  # The Dockerfiles COPY from target/<triple>/release: a context of exactly
  # those two files (as .dockerignore would make the repository).
  local ctx; ctx="$(mktemp -d)"
  local store; store="$(mktemp -d)"
  trap 'rm -rf "$ctx" "$store"' RETURN
  mkdir -p "$ctx/target/$triple/release" "$ctx/crates/shopify-sim"
  cp "$target_dir/$triple/release/shopify-operator" "$target_dir/$triple/release/shopify-sim" \
    "$ctx/target/$triple/release/"
  cp "$root/Dockerfile" "$root/.dockerignore" "$ctx/"
  cp "$root/crates/shopify-sim/Dockerfile" "$ctx/crates/shopify-sim/"
  # The sandbox image of the test node: a static C program (glibc, gcc).
  mkdir -p "$ctx/pause"
  gcc -static -O2 -s -o "$ctx/pause/pause" "$root/hack/pause/pause.c"
  cp "$root/hack/pause/Dockerfile" "$ctx/pause/"

  # A throwaway storage, and nothing written outside it: buildah takes a
  # lock in the CNI config folder (pointed into the store) and keeps a blob
  # cache in /var/lib/containers (a private mount namespace lays a folder of
  # the store over /var/lib).
  mkdir -p "$store/cni" "$store/varlib"
  local b=(unshare --mount --propagation private sh -c 'mount --bind "$0" /var/lib && shift && exec "$@"'
    "$store/varlib" x "$buildah" --root "$store/root" --runroot "$store/run" --storage-driver vfs)
  # name  Dockerfile  context  reference in the archive (what a Pod names)
  local images=(
    "shopify-operator $ctx/Dockerfile $ctx docker.io/library/shopify-operator:$version"
    "shopify-sim $ctx/crates/shopify-sim/Dockerfile $ctx docker.io/library/shopify-sim:$version"
    "pause $ctx/pause/Dockerfile $ctx/pause localhost/testenv/pause:1.0"
  )
  local line image file context ref
  for line in "${images[@]}"; do
    read -r image file context ref <<<"$line"
    t0=$(now)
    "${b[@]}" build --quiet --layers=false --pull=never --network none --cni-config-dir "$store/cni" \
      --timestamp 0 --build-arg "VERSION=$version" -f "$file" -t "localhost/$image:build" "$context" >&2
    rm -f "$out/$image.tar"
    # `image: shopify-operator:0.1.0` in a Pod is Docker Hub's
    # docker.io/library/shopify-operator:0.1.0 to a kubelet: the archive
    # carries that name, so importing it is all a node needs.
    "${b[@]}" push --quiet "localhost/$image:build" "oci-archive:$out/$image.tar:$ref" >&2
    say "$ref: $(du -h "$out/$image.tar" | cut -f1) archive, $(gzip -c "$out/$image.tar" | wc -c | numfmt --to=iec) gzipped, in $(( $(now) - t0 ))s"
  done
  mkdir -p "$cached"
  cp "$out/shopify-operator.tar" "$out/shopify-sim.tar" "$out/pause.tar" "$cached/"
  echo "$out"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$out" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
