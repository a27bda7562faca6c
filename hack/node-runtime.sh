#!/usr/bin/env bash
# Installs what the in-cluster tests' node runs besides the Kubernetes
# binaries (hack/control-plane.sh builds those): Debian's containerd 1.6 with
# runc, the CNI plugins (bridge, host-local, portmap, loopback), iptables for
# kube-proxy and iproute2 — once, no system service left running — and prints
# a folder with links to every program the node starts, and `cni/` linking
# the plugins' folder.
#
#   hack/node-runtime.sh          install if missing, print the folder
#   hack/node-runtime.sh path     print the folder (no install)
#
# Why Debian's containerd and not containerd v2 from its Go module: it is one
# apt-get away (seconds, not a multi-minute Go build per machine), it runs
# Pods through CRI here once `restrict_oom_score_adj` is set, and its shim and
# runc come matched. If NODE_RUNTIME_DIR names a folder that already holds
# every program, it is used as is. Progress goes to stderr; stdout is only the
# folder, so callers can do `export NODE_RUNTIME_DIR=$(hack/node-runtime.sh)`.
set -euo pipefail

cache_root="${SHOPIFY_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shopify-operator}"
dest="$cache_root/node-runtime/bin"
cni_dir=/usr/lib/cni

say() { printf '[node-runtime] %s\n' "$*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

programs=(containerd ctr containerd-shim-runc-v2 runc iptables iptables-save iptables-restore
  ip6tables ip6tables-save ip6tables-restore ip)
packages="containerd runc containernetworking-plugins iptables iproute2"

case "${1:-build}" in
  build)
    dir="$(provide NODE_RUNTIME_DIR "$dest" "$packages" "${programs[@]}")"
    if [[ ! -x "$cni_dir/bridge" ]]; then
      # shellcheck disable=SC2086  # a list of package names
      apt_install_quiet $packages
    fi
    for plugin in bridge host-local portmap loopback; do
      [[ -x "$cni_dir/$plugin" ]] || { say "CNI plugin $plugin missing from $cni_dir"; exit 1; }
    done
    [[ -e "$dir/cni" ]] || ln -sfn "$cni_dir" "$dir/cni"
    echo "$dir"
    ;;
  path) echo "$dest" ;;
  *) say "usage: $0 [build|path]"; exit 2 ;;
esac
