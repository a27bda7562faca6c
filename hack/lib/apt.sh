# Sourced by hack/mariadb.sh and hack/prometheus.sh: installs Debian
# packages without leaving a system service running, and gathers their
# programs in one cache folder. Needs `say` defined by the caller.

# apt_install_quiet PACKAGE... — as root, with apt-get; a package's postinst
# would start its system service (mariadb on 3306, prometheus on 9090) that
# nothing here uses: policy-rc.d answering 101 ("action forbidden") keeps it
# stopped. An existing policy-rc.d is put back afterwards.
apt_install_quiet() {
  [[ "$(id -u)" == 0 ]] || { say "$* not installed and this is not root: install them with apt-get"; exit 1; }
  command -v apt-get >/dev/null || { say "no apt-get here: install $* by hand"; exit 1; }
  local policy=/usr/sbin/policy-rc.d backup=""
  if [[ -e "$policy" ]]; then
    backup="$(mktemp)"
    cp -p "$policy" "$backup"
  fi
  # shellcheck disable=SC2317  # called by the trap
  restore_policy() {
    if [[ -n "$backup" ]]; then mv "$backup" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  # A fresh machine may never have fetched the package lists.
  if ! apt-cache show "$1" >/dev/null 2>&1; then
    say "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  fi
  say "installing $* (Debian packages)"
  # Another apt-get on the machine (a second run's install) holds dpkg's
  # lock for a while: wait for it instead of failing.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >&2
  restore_policy
  trap - EXIT
}

# locate PROGRAM — its path: PATH, else the sbin folders a non-root PATH lacks.
locate() {
  local p="$1"
  command -v "$p" 2>/dev/null && return
  for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
    [[ -x "$d/$p" ]] && { echo "$d/$p"; return; }
  done
  return 1
}

# provide OVERRIDE DEST "PACKAGE..." PROGRAM... — prints a folder holding
# every PROGRAM: the folder named by the variable OVERRIDE if it has them,
# else DEST with links to them, installing the packages first if a program
# is missing.
provide() {
  local override="$1" dest="$2" packages="$3"; shift 3
  local p dir="${!override:-}"
  has_all() {
    for p in "$@"; do [[ -x "$dir/$p" ]] || return 1; done
  }
  if [[ -n "$dir" ]] && has_all "$@"; then
    say "using $override=$dir"
    echo "$dir"
    return
  fi
  local missing=""
  for p in "$@"; do locate "$p" >/dev/null || missing=1; done
  if [[ -n "$missing" ]]; then
    local t0; t0=$(date +%s)
    # shellcheck disable=SC2086  # a list of package names
    apt_install_quiet $packages
    say "installed in $(( $(date +%s) - t0 ))s"
  fi
  mkdir -p "$dest"
  for p in "$@"; do
    local target; target="$(locate "$p")" || { say "$p missing after installing $packages"; exit 1; }
    [[ "$(readlink "$dest/$p" 2>/dev/null)" == "$target" ]] || ln -sfn "$target" "$dest/$p"
  done
  echo "$dest"
}
