#!/usr/bin/env bash
# Fetches the third-party CRDs the tests apply to the test apiserver, each
# from its project's Go module (`go mod download`, the module proxy; nothing
# else), into ONE cache folder keyed by both versions, and prints that folder:
#   - the Prometheus Operator's PrometheusRule and ServiceMonitor
#     (github.com/prometheus-operator/prometheus-operator, example/prometheus-operator-crd/)
#   - cert-manager's Certificate
#     (github.com/cert-manager/cert-manager, deploy/crds/: controller-gen's
#     plain CRD, the source of the Helm chart's templated copy)
#
#   hack/crds.sh          fetch if missing, print the folder
#   hack/crds.sh path     print the folder (no fetch)
#
# THIRD_PARTY_CRDS naming a folder that already holds all the files is used
# as is. Progress goes to stderr; stdout is only the folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
dest="$cache_root/crds/prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}_cert-manager-${CERT_MANAGER_VERSION}"

# module@version|folder in the module|files taken from it
sources=(
  "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION|example/prometheus-operator-crd|monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_servicemonitors.yaml"
  "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION|deploy/crds|cert-manager.io_certificates.yaml"
)
files=()
for s in "${sources[@]}"; do
  IFS='|' read -r _ _ fs <<<"$s"
  read -ra fs <<<"$fs"
  files+=("${fs[@]}")
done

say() { printf '[crds] %s\n' "$*" >&2; }

has_all() {
  local dir="$1"
  for f in "${files[@]}"; do [[ -s "$dir/$f" ]] || return 1; done
}

# The file must be one plain CRD (no Helm template markers), else the
# upstream layout changed and this script needs a look.
check_crd() {
  local file="$1" name
  name="$(basename "$file" .yaml)"                 # group_plural
  name="${name#*_}.${name%%_*}"                    # plural.group
  if grep -q '{{' "$file" \
    || ! grep -q '^apiVersion: apiextensions.k8s.io/v1$' "$file" \
    || ! grep -q '^kind: CustomResourceDefinition$' "$file" \
    || ! grep -q "^  name: $name\$" "$file" \
    || [[ "$(grep -c '^kind: ' "$file")" != 1 ]]; then
    say "$file is not one plain CustomResourceDefinition $name"
    exit 1
  fi
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
  mkdir -p "$cache_root/crds"
  # Staged next to the destination and renamed into place, so a concurrent
  # run never sees a half-written folder.
  stage="$(mktemp -d "$cache_root/crds/.stage.XXXXXX")"
  work="$(mktemp -d)"
  trap 'rm -rf "$stage" "$work"' EXIT
  for s in "${sources[@]}"; do
    local module sub fs json dir
    IFS='|' read -r module sub fs <<<"$s"
    say "downloading $module (Go module)"
    json="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module")" || {
      say "go mod download $module failed: $json"
      exit 1
    }
    dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
    [[ -d "$dir" ]] || { say "module download of $module gave no folder: $json"; exit 1; }
    for f in $fs; do
      [[ -s "$dir/$sub/$f" ]] || { say "$module has no $sub/$f"; exit 1; }
      install -m 0644 "$dir/$sub/$f" "$stage/$f"
      check_crd "$stage/$f"
    done
  done
  chmod 0755 "$stage"
  # A folder left without all the files (by an older version of this
  # script) is replaced.
  has_all "$dest" || rm -rf "$dest"
  if ! mv -T "$stage" "$dest" 2>/dev/null; then
    has_all "$dest" || { say "could not create $dest"; exit 1; }
  fi
  say "CRDs in $dest"
  echo "$dest"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
