#!/usr/bin/env bash
# Installs mdbook from crates.io (`cargo install --locked` at MDBOOK_VERSION
# in hack/versions.env) into a cache folder outside the clone keyed by
# version, and prints the binary's path. `make docs` and the book's test
# (tests/docs.rs) run it.
#
#   hack/mdbook.sh          install if missing, print the binary's path
#   hack/mdbook.sh path     print the binary's path (no install)
#
# If MDBOOK_BIN names an executable, it is used as is. Progress goes to
# stderr; stdout is only the path, so callers can do
# `export MDBOOK_BIN=$(hack/mdbook.sh)`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
dest="$cache_root/mdbook-$MDBOOK_VERSION"

say() { printf '[mdbook] %s\n' "$*" >&2; }
now() { date +%s; }

build() {
  if [[ -n "${MDBOOK_BIN:-}" && -x "${MDBOOK_BIN}" ]]; then
    say "using MDBOOK_BIN=$MDBOOK_BIN"
    echo "$MDBOOK_BIN"
    return
  fi
  if [[ -x "$dest/bin/mdbook" ]]; then
    say "cached: $dest/bin/mdbook"
    echo "$dest/bin/mdbook"
    return
  fi
  command -v cargo >/dev/null || { say "cargo is not installed"; exit 1; }
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.mdbook.lock"
  flock 9
  if [[ -x "$dest/bin/mdbook" ]]; then echo "$dest/bin/mdbook"; return; fi
  # Installed into a temporary root and moved into place, so an interrupted
  # install never leaves a half-written cache entry that looks complete.
  local tmp; tmp="$(mktemp -d "$cache_root/.mdbook-build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  local t0; t0=$(now)
  say "installing mdbook $MDBOOK_VERSION from crates.io (a few minutes on a cold cache)"
  # Only `mdbook build` is used: without the default `serve` and `watch`
  # features there is no web server or file watcher to compile (tokio,
  # axum, notify), which roughly halves the build. `search` stays, so the
  # built book has its search box.
  cargo install mdbook --locked --version "$MDBOOK_VERSION" \
    --no-default-features --features search \
    --root "$tmp" --target-dir "$tmp/target" >&2
  rm -rf "$tmp/target"
  "$tmp/bin/mdbook" --version >&2
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
  say "installed in $(( $(now) - t0 ))s"
  echo "$dest/bin/mdbook"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$dest/bin/mdbook" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
