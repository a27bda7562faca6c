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

say() { printf '[prometheus] %s\n' "$*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

case "${1:-build}" in
  build) provide PROMETHEUS_BIN_DIR "$dest" prometheus prometheus promtool ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
