#!/usr/bin/env bash
# What test/clone3.test.ts needs to run the zygotes' clone3 trampoline on
# arm64, for which this project has no host: the cross compiler, QEMU's arm64
# system emulator, and a Debian arm64 kernel (the cloud flavour: virtio and the
# PL011 console built in), fetched once from the Debian archive apt uses into
# HEARTH_VM_CACHE/arm64/vmlinuz. Prints that path.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${HEARTH_VM_CACHE:-/var/cache/hearth-vm}/arm64
MIRROR=${HEARTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
scripts/lib/need.sh aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu /usr/aarch64-linux-gnu/include/stdio.h:libc6-dev-arm64-cross \
  qemu-system-aarch64:qemu-system-arm cpio:cpio curl:curl xz:xz-utils >&2
if [ ! -s "$CACHE/vmlinuz" ]; then
  mkdir -p "$CACHE"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  file=$(curl -fsS "$MIRROR/dists/bookworm/main/binary-arm64/Packages.xz" | xz -dc |
    awk '/^Package: linux-image-[0-9.]+-[0-9]+-cloud-arm64$/ { p = 1 } p && /^Filename:/ { print $2 } /^$/ { p = 0 }' | sort -V | tail -1)
  [ -n "$file" ] || { echo "arm64-kernel: no linux-image-*-cloud-arm64 in $MIRROR bookworm" >&2; exit 1; }
  curl -fsS -o "$tmp/kernel.deb" "$MIRROR/$file"
  dpkg-deb --fsys-tarfile "$tmp/kernel.deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
  mv "$tmp"/boot/vmlinuz-* "$CACHE/vmlinuz.tmp"
  mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
fi
echo "$CACHE/vmlinuz"
