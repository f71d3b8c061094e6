#!/usr/bin/env bash
# Installs with apt the packages whose command is missing, one install at a
# time on this host (flock): make test prepares the VM images and the nspawn
# rootfs at once, and two apt-get runs cannot share apt's locks.
#   scripts/lib/need.sh COMMAND:PACKAGE... python3:MODULE:PACKAGE... /FILE:PACKAGE...
set -euo pipefail
missing=()
for pair in "$@"; do
  case "$pair" in
    python3:*:*) # a module of Debian's /usr/bin/python3
      module=${pair#python3:}
      /usr/bin/python3 -c "import ${module%%:*}" 2>/dev/null || missing+=("${module#*:}") ;;
    /*) [ -e "${pair%%:*}" ] || missing+=("${pair#*:}") ;;
    *) command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || { echo "need: install ${missing[*]} (as root, with apt)" >&2; exit 1; }
echo "# installing ${missing[*]}"
exec 9>/var/lock/hearth-apt.lock
flock 9
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
