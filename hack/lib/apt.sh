# Sourced by hack/*.sh: installs Debian packages without leaving a system
# service running. Needs `say` defined by the caller.

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
    apt-get update -qq >&2
  fi
  say "installing $* (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
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
