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
now() { date +%s; }

has_all() {
  local dir="$1"
  for p in "${programs[@]}"; do [[ -x "$dir/$p" ]] || return 1; done
}

# Where the package put a program: PATH, else the sbin folders that a
# non-root PATH lacks.
locate() {
  local p="$1"
  command -v "$p" 2>/dev/null && return
  for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
    [[ -x "$d/$p" ]] && { echo "$d/$p"; return; }
  done
  return 1
}

installed() {
  for p in "${programs[@]}"; do locate "$p" >/dev/null || return 1; done
}

install_packages() {
  [[ "$(id -u)" == 0 ]] || { say "mariadb-server is not installed and this is not root; install it (apt-get install mariadb-server mariadb-client) or set MARIADB_BIN_DIR"; exit 1; }
  command -v apt-get >/dev/null || { say "no apt-get here; install MariaDB by hand and set MARIADB_BIN_DIR"; exit 1; }
  local t0; t0=$(now)
  # The package's postinst would start a system mariadb on port 3306 that
  # nothing here uses; policy-rc.d answering 101 ("action forbidden") keeps
  # it stopped. An existing policy-rc.d is put back afterwards.
  local policy=/usr/sbin/policy-rc.d backup=""
  if [[ -e "$policy" ]]; then
    backup="$(mktemp)"
    cp -p "$policy" "$backup"
  fi
  restore_policy() {
    if [[ -n "$backup" ]]; then mv "$backup" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  # A fresh machine may never have fetched the package lists.
  if ! apt-cache show mariadb-server >/dev/null 2>&1; then
    say "apt-get update"
    apt-get update -qq >&2
  fi
  say "installing mariadb-server mariadb-client (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    mariadb-server mariadb-client >&2
  restore_policy
  trap - EXIT
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
