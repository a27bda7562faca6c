#!/usr/bin/env bash
# Fetches the third-party CRDs the chart tests apply to the test apiserver —
# the Prometheus Operator's PrometheusRule and ServiceMonitor, from its Go
# module (`go mod download`, the module proxy; nothing else) — into a cache
# folder keyed by version, and prints that folder.
#
#   hack/crds.sh          fetch if missing, print the folder
#   hack/crds.sh path     print the folder (no fetch)
#
# THIRD_PARTY_CRDS naming a folder that already holds the files is used as is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
dest="$cache_root/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
files=(monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_servicemonitors.yaml)

say() { printf '[crds] %s\n' "$*" >&2; }

has_all() {
  local dir="$1"
  for f in "${files[@]}"; do [[ -s "$dir/$f" ]] || return 1; done
}

build() {
  if [[ -n "${THIRD_PARTY_CRDS:-}" ]] && has_all "$THIRD_PARTY_CRDS"; then
    echo "$THIRD_PARTY_CRDS"
    return
  fi
  if has_all "$dest"; then
    echo "$dest"
    return
  fi
  command -v go >/dev/null || { say "go is not installed"; exit 1; }
  local module=github.com/prometheus-operator/prometheus-operator
  say "downloading $module@$PROMETHEUS_OPERATOR_VERSION (Go module)"
  local dir
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$module@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || { say "module download gave no folder"; exit 1; }
  mkdir -p "$dest"
  for f in "${files[@]}"; do
    install -m 0644 "$dir/example/prometheus-operator-crd/$f" "$dest/$f"
  done
  echo "$dest"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
