#!/usr/bin/env bash
# Installs Prometheus (Debian's `prometheus` package: the server and
# promtool) if it is not on the machine yet, and prints a folder holding
# `prometheus` and `promtool`. The alert tests (tests/alerts.rs) run
# `promtool check rules`, `promtool test rules` and their own throwaway
# Prometheus server from there; no system service is left running.
#
#   hack/prometheus.sh          install if missing, print the folder
#   hack/prometheus.sh path     print the folder (no install)
#
# If PROMETHEUS_BIN_DIR names a folder that already holds both programs,
# that folder is used as is. Progress goes to stderr; stdout is only the
# folder.
set -euo pipefail

cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
dest="$cache_root/prometheus/bin"
programs=(prometheus promtool)

say() { printf '[prometheus] %s\n' "$*" >&2; }
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

build() {
  if [[ -n "${PROMETHEUS_BIN_DIR:-}" ]] && has_all "$PROMETHEUS_BIN_DIR"; then
    say "using PROMETHEUS_BIN_DIR=$PROMETHEUS_BIN_DIR"
    echo "$PROMETHEUS_BIN_DIR"
    return
  fi
  if ! installed; then
    local t0; t0=$(now)
    apt_install_quiet prometheus
    say "installed in $(( $(now) - t0 ))s"
  fi
  mkdir -p "$dest"
  for p in "${programs[@]}"; do
    local target; target="$(locate "$p")"
    [[ "$(readlink "$dest/$p" 2>/dev/null)" == "$target" ]] || ln -sfn "$target" "$dest/$p"
  done
  has_all "$dest" || { say "programs missing after install: ${programs[*]}"; exit 1; }
  echo "$dest"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
