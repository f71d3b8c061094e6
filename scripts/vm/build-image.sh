#!/usr/bin/env bash
# Builds a Debian guest for scripts/test-vm.sh, once per release (cached):
# debootstrap with what hearth needs, its kernel, a small initrd (virtio and
# ext4 only), and an ext4 root image. Usage: build-image.sh RELEASE CACHE_DIR
set -euo pipefail
release=$1
dir=$2
root=$dir/rootfs
[ -s "$dir/root.ext4" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ] && exit 0
mkdir -p "$dir"
if [ ! -x "$root/lib/systemd/systemd" ]; then
  rm -rf "$root.tmp"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,udev,dbus,kmod,initramfs-tools,bubblewrap,python3,python3-msgpack,python3-seccomp,python3-pip,redis-server,util-linux,procps,curl,libstdc++6 \
    "$release" "$root.tmp" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1 \
    || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
  # The kernel after the rest, with initramfs-tools set to put in its initrd
  # only what mounting the root needs: its default initrd holds every module,
  # and making it took minutes of the first build.
  printf 'virtio_pci\nvirtio_blk\next4\n' >"$root.tmp/etc/initramfs-tools/modules"
  sed -i 's/^MODULES=.*/MODULES=list/' "$root.tmp/etc/initramfs-tools/initramfs.conf"
  cp /etc/resolv.conf "$root.tmp/etc/resolv.conf"
  mount -t proc proc "$root.tmp/proc"
  trap 'umount "$root.tmp/proc" 2>/dev/null || true' EXIT
  { chroot "$root.tmp" apt-get update -qq && DEBIAN_FRONTEND=noninteractive chroot "$root.tmp" apt-get install -y -qq --no-install-recommends linux-image-amd64; } \
    >>"$dir/debootstrap.log" 2>&1 || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
  chroot "$root.tmp" apt-get clean
  umount "$root.tmp/proc"
  trap - EXIT
  mv "$root.tmp" "$root"
fi

# The guest: root on /dev/vda, the test unit started at boot, nothing else.
echo hearth-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$root/etc/fstab"
install -m 0644 "$(dirname "$0")/hearth-vm-test.service" "$root/etc/systemd/system/"
chroot "$root" systemctl enable hearth-vm-test.service >/dev/null 2>&1
chroot "$root" systemctl mask redis-server.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer getty@tty1.service serial-getty@ttyS0.service >/dev/null 2>&1 || true

kver=$(basename "$(ls -d "$root"/lib/modules/* | tail -1)")
cp "$root/boot/vmlinuz-$kver" "$dir/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$dir/initrd.img"

rm -f "$dir/root.ext4.tmp"
mkfs.ext4 -q -L root -d "$root" "$dir/root.ext4.tmp" 3G
mv "$dir/root.ext4.tmp" "$dir/root.ext4"
rm -rf "$root" # the image holds it all
