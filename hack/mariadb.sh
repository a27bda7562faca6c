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

say() { printf '[mariadb] %s\n' "$*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

case "${1:-build}" in
  build) provide MARIADB_BIN_DIR "$dest" "mariadb-server mariadb-client" mariadbd mariadb-install-db mariadb ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
