#!/usr/bin/env bash
# PID 1 of a test node (crates/testenv/src/node/mod.rs), started as
#   unshare --pid --fork --kill-child --mount-proc --net -- bash node-init.sh RUN
# Everything the node starts lives in these fresh pid, mount and network
# namespaces: killing this one process (or unshare, which the test process's
# death kills) makes the kernel kill every daemon, shim and container, drop
# every mount and free every network namespace. Only the cgroups (and RUN)
# outlive it; the harness removes those.
set -uo pipefail
RUN="$1"
# shellcheck disable=SC1091
source "$RUN/env"
L="$RUN/logs"
mkdir -p "$L" "$RUN/pids"
stamp() { printf '%s %s\n' "$EPOCHREALTIME" "$*" >> "$L/init.log"; }
stamp "init pid $$"

# PID 1 of a pid namespace ignores signals it has no handler for: trap first.
shutdown() {
  # An ordered stop so that the logs end cleanly; after ~1 s this PID 1
  # exits and the kernel SIGKILLs whatever is left in the namespace.
  stamp "shutdown requested"
  local n alive i
  for n in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver containerd etcd; do
    [[ -f "$RUN/pids/$n" ]] && kill -TERM "$(cat "$RUN/pids/$n")" 2>/dev/null
  done
  for i in $(seq 10); do
    alive=""
    for n in "$RUN"/pids/*; do kill -0 "$(cat "$n")" 2>/dev/null && alive="$alive ${n##*/}"; done
    [[ -z "$alive" ]] && break
    sleep 0.1
  done
  stamp "exiting (still running:${alive:- none})"
  exit 0
}
trap shutdown TERM INT

# --- mounts (private to this mount namespace; unshare made / rprivate) ---
# containerd 1.6 hard-codes /run/containerd/s (shim sockets), the CNI cache
# is /var/lib/cni, the kubelet writes /var/log/{containers,pods}: over-mounted
# with folders of RUN, none of it touches the host.
mount --bind "$RUN/run" /run
mount --bind "$RUN/varlib" /var/lib
mount --bind "$RUN/varlog" /var/log
mkdir -p /run/containerd /var/log/pods /var/log/containers
# The kubelet sets these host-global sysctls when they differ (kernel.panic,
# vm.overcommit_memory, ...). It is shown the values it wants, in this mount
# namespace only: the host keeps its own.
mkdir -p "$RUN/sysctl"
while read -r key val; do
  f="$RUN/sysctl/${key//\//.}"
  echo "$val" > "$f"
  mount --bind -o ro "$f" "/proc/sys/$key"
done <<'SYSCTLS'
vm/overcommit_memory 1
vm/panic_on_oom 0
kernel/panic 10
kernel/panic_on_oops 1
kernel/keys/root_maxkeys 1000000
kernel/keys/root_maxbytes 25000000
SYSCTLS

# --- network: lo and the node address; no route leaves this namespace ---
# The node address sits on lo: this kernel has no dummy interfaces, and the
# CNI bridge only appears with the first Pod. 198.18.0.0/15 is the range set
# aside for network tests (RFC 2544), never a real network's.
ip link set lo up
ip addr add "$NODE_IP/32" dev lo
# Connections from the node itself (the harness's forwards) to a ClusterIP
# need a route before kube-proxy's OUTPUT rules rewrite them to a Pod; Pods
# have theirs (the bridge is their default gateway). No Service, no rule:
# the packet goes nowhere, as on any node.
ip route add "$SERVICE_CIDR" dev lo src "$NODE_IP"
# Pods' resolver is $NODE_IP:53: the test's DNS responder if it runs one,
# else nothing, and the ICMP refusal must not be rate-limited away (a lookup
# would then wait for the resolver's 5 s timeout). Per-namespace sysctls.
echo 0 > /proc/sys/net/ipv4/icmp_ratelimit
echo 0 > /proc/sys/net/ipv6/icmp/ratelimit

# --- cgroups: the kubelet's cgroupRoot must exist in every v1 hierarchy ---
for h in /sys/fs/cgroup/*; do
  [[ "$(stat -f -c %T "$h")" == cgroupfs ]] || continue
  mkdir -p "$h/$CGROOT"
  if [[ -f "$h/cpuset.cpus" ]]; then
    cat "$h/cpuset.cpus" > "$h/$CGROOT/cpuset.cpus"
    cat "$h/cpuset.mems" > "$h/$CGROOT/cpuset.mems"
  fi
done
stamp "namespaces ready"

start() { # start NAME CMD... : in the background, logged, pid recorded
  local name="$1"; shift
  "$@" >> "$L/$name.log" 2>&1 &
  echo $! > "$RUN/pids/$name"
  stamp "started $name pid $!"
}
B="$BIN"; C="$RUN/certs"; E="$RUN/etc"
export PATH="$RUNTIME:$PATH"

start etcd "$B/etcd" --data-dir="$RUN/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=default=http://127.0.0.1:2380 \
  --unsafe-no-fsync=true --log-level=warn

start containerd containerd --config "$E/containerd.toml"

start kube-apiserver "$B/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
  --cert-dir="$RUN/apiserver-certs" \
  --tls-cert-file="$C/apiserver.crt" --tls-private-key-file="$C/apiserver.key" \
  --client-ca-file="$C/ca.crt" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allow-privileged=true \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$C/sa.pub" --service-account-signing-key-file="$C/sa.key" \
  --kubelet-client-certificate="$C/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$C/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$C/ca.crt" \
  --kubelet-preferred-address-types=InternalIP \
  --enable-priority-and-fairness=false \
  --audit-policy-file="$E/audit-policy.yaml" --audit-log-path="$RUN/audit.log" \
  --audit-log-format=json --audit-log-mode=blocking \
  --profiling=false --v=1

# Images: imported before any Pod can be scheduled; nothing is ever pulled.
for i in $(seq 200); do [[ -S /run/containerd/containerd.sock ]] && break; sleep 0.05; done
while read -r img; do
  [[ -n "$img" ]] || continue
  if ctr -a /run/containerd/containerd.sock -n k8s.io images import "$img" >> "$L/images.log" 2>&1; then
    stamp "imported $img"
  else
    stamp "import of $img FAILED"
    echo "$img" >> "$RUN/images.failed"
  fi
done < "$RUN/images.list"
touch "$RUN/images.done"

# The kubelet's registration backoff costs seconds if it starts before the
# apiserver answers: the harness says when /readyz is ok.
until [[ -e "$RUN/apiserver.ready" ]]; do sleep 0.05; done
stamp "apiserver ready"

start kube-controller-manager "$B/kube-controller-manager" \
  --kubeconfig="$C/kube-controller-manager.kubeconfig" \
  --controllers='*' \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257 \
  --cert-dir="$RUN/kcm-certs" \
  --service-account-private-key-file="$C/sa.key" --root-ca-file="$C/ca.crt" \
  --use-service-account-credentials=false \
  --flex-volume-plugin-dir="$RUN/kcm-flex" \
  --concurrent-gc-syncs=5 --v=1

start kube-scheduler "$B/kube-scheduler" \
  --kubeconfig="$C/kube-scheduler.kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259 --v=1

start kubelet "$B/kubelet" --config="$E/kubelet.yaml" \
  --kubeconfig="$C/kubelet.kubeconfig" --root-dir="$RUN/kubelet" \
  --hostname-override="$NODE" --node-ip="$NODE_IP" --v=1

start kube-proxy "$B/kube-proxy" --config="$E/kube-proxy.yaml" --v=1

stamp "all started"
# PID 1: wait forever (bash also reaps re-parented shims and orphans).
while true; do wait; sleep 1; done
