#!/usr/bin/env bash
# Builds hack/health (a small Go program that answers "what would Flux's
# kstatus and Argo CD's health.lua say about this object", from their pinned
# Go modules: sigs.k8s.io/cli-utils and github.com/yuin/gopher-lua, see
# hack/health/go.mod) into a cache folder outside the clone, and prints the
# binary's path.
#
#   hack/health.sh          build if missing, print the binary's path
#   hack/health.sh path     print the binary's path (no build)
#
# The cache key hashes go.mod, go.sum and the program's own *.go files, so a
# change to either the pinned versions or the source builds afresh once.
# If HEALTH_BIN names an executable, it is used as is. Progress goes to stderr;
# stdout is only the path, so callers can do `export HEALTH_BIN=$(hack/health.sh)`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module_dir="$here/health"
cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"

say() { printf '[health] %s\n' "$*" >&2; }
now() { date +%s; }

# Names go into the hash too, so moving code between files is a new key.
key() {
  (
    cd "$module_dir"
    { echo go.mod; echo go.sum; find . -name '*.go' -not -path './testdata/*' | LC_ALL=C sort; } \
      | while read -r f; do printf '%s\n' "$f"; cat "$f"; done
  ) | sha256sum | cut -c1-16
}
dest="$cache_root/health/$(key)"

build() {
  if [[ -n "${HEALTH_BIN:-}" && -x "${HEALTH_BIN}" ]]; then
    say "using HEALTH_BIN=$HEALTH_BIN"
    echo "$HEALTH_BIN"
    return
  fi
  if [[ -x "$dest/health" ]]; then
    say "cached: $dest/health"
    echo "$dest/health"
    return
  fi
  command -v go >/dev/null || { say "go is not installed"; exit 1; }
  mkdir -p "$cache_root/health"
  exec 9>"$cache_root/health/.lock"
  flock 9
  if [[ -x "$dest/health" ]]; then echo "$dest/health"; return; fi
  local tmp; tmp="$(mktemp -d "$cache_root/health/.build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  local t0; t0=$(now)
  # No `go mod download`: go build fetches only the modules this one package
  # imports, a fraction of cli-utils' module graph.
  say "building $module_dir (downloads its Go modules into $(go env GOMODCACHE) the first time)"
  (cd "$module_dir" && CGO_ENABLED=0 GOWORK=off go build -mod=readonly -trimpath -buildvcs=false \
    -ldflags "-s -w" -o "$tmp/health" .)
  say "built in $(( $(now) - t0 ))s"
  printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"smoke"}}' \
    | "$tmp/health" kstatus >&2
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
  echo "$dest/health"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$dest/health" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
