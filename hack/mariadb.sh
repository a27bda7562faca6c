#!/usr/bin/env bash
# Installs MariaDB (Debian's mariadb-server + mariadb-client) if it is not on
# the machine yet, and prints the folder that holds `mariadbd` and
# `mariadb-install-db`. The import tests (tests/import.rs) start their own
# throwaway mariadbd from there; no system service is left running.
#
#   hack/mariadb.sh          install if missing, print the folder
#   hack/mariadb.sh path     print the folder (no install)
#
# If MARIADB_BIN_DIR names a folder that already holds both programs, that
# folder is used as is. Progress goes to stderr; stdout is only the folder,
# so callers can do `export MARIADB_BIN_DIR=$(hack/mariadb.sh)`.
set -euo pipefail

cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
# Debian splits the two programs: mariadbd is in /usr/sbin, mariadb-install-db
# in /usr/bin. The tests want one folder, so this one holds links to both.
dest="$cache_root/mariadb/bin"
programs=(mariadbd mariadb-install-db mariadb)

say() { printf '[mariadb] %s\n' "$*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
now() { date +%s; }

has_all() {
  local dir="$1"
  for p in "${programs[@]}"; do [[ -x "$dir/$p" ]] || return 1; done
}

installed() {
  for p in "${programs[@]}"; do locate "$p" >/dev/null || return 1; done
}

install_packages() {
  local t0; t0=$(now)
  apt_install_quiet mariadb-server mariadb-client
  say "installed in $(( $(now) - t0 ))s"
}

build() {
  if [[ -n "${MARIADB_BIN_DIR:-}" ]] && has_all "$MARIADB_BIN_DIR"; then
    say "using MARIADB_BIN_DIR=$MARIADB_BIN_DIR"
    echo "$MARIADB_BIN_DIR"
    return
  fi
  installed || install_packages
  mkdir -p "$dest"
  for p in "${programs[@]}"; do
    local target; target="$(locate "$p")"
    [[ "$(readlink "$dest/$p" 2>/dev/null)" == "$target" ]] || ln -sfn "$target" "$dest/$p"
  done
  has_all "$dest" || { say "mariadb programs missing after install: ${programs[*]}"; exit 1; }
  echo "$dest"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
