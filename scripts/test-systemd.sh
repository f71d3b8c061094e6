#!/usr/bin/env bash
# Integration test with a real systemd: boots a minimal Debian in systemd-nspawn,
# runs hearth there as hearth.service (Delegate=yes, hearth.slice), sends a memory
# bomb and a fork bomb over HTTP, and checks systemd still reports the service active.
#
# The rootfs is made once with debootstrap and cached (HEARTH_ROOTFS). This host's
# PID 1 is not systemd, so nspawn runs with --keep-unit --register=no, and the
# container's first process remounts the cgroup v1 controllers read-write
# (nspawn mounts them read-only) before it execs systemd.
#   scripts/test-systemd.sh [prepare]   prepare: only install and cache the rootfs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CACHE=${HEARTH_ROOTFS_CACHE:-/var/cache/hearth-systemd}
RFS=$CACHE/rootfs
PORT=${HEARTH_TEST_PORT:-18777}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
pass=0; fail=0
ok () { echo "ok - $*"; pass=$((pass + 1)); }
bad () { echo "not ok - $*"; fail=$((fail + 1)); }

[ "$(id -u)" -eq 0 ] || { echo "test-systemd: needs root" >&2; exit 1; }
[ -f dist/daemon/main.js ] || { echo "test-systemd: build first (make build)" >&2; exit 1; }
scripts/lib/need.sh debootstrap:debootstrap systemd-nspawn:systemd-container

started=$(date +%s)
if [ ! -x "$RFS/lib/systemd/systemd" ]; then
  echo "# debootstrap (once, cached in $RFS)"
  rm -rf "$RFS.tmp"; mkdir -p "$CACHE"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,bubblewrap,redis-server,python3,python3-msgpack,python3-seccomp,util-linux,curl,procps \
    bookworm "$RFS.tmp" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1
  mv "$RFS.tmp" "$RFS"
fi
echo "# rootfs ready after $(( $(date +%s) - started )) s"
[ "${1:-}" = prepare ] && exit 0

cat >"$RFS/hearth-init" <<'INIT'
#!/bin/sh
# nspawn mounts the host's cgroup v1 controllers read-only: make them writable
# (a bind remount) so systemd can delegate them, then become systemd.
for d in /sys/fs/cgroup/*; do
  mountpoint -q "$d" && mount -o remount,bind,rw "$d" 2>/dev/null
done
exec /lib/systemd/systemd
INIT
chmod +x "$RFS/hearth-init"
mkdir -p "$RFS/etc/hearth" "$RFS/opt/hearth"
install -m 0644 systemd/hearth.service systemd/hearth.slice "$RFS/etc/systemd/system/"
printf 'HTTP_HOST=127.0.0.1\nHTTP_PORT=%s\nMAX_MEMORY=64M\nMAX_PIDS=32\nPOOL_MIN=1\nTIMEOUT_SCRIPT=5\n' "$PORT" >"$RFS/etc/hearth/hearth.env"
systemctl --root="$RFS" enable hearth.service >/dev/null 2>&1
systemctl --root="$RFS" mask redis-server.service getty@tty1.service console-getty.service >/dev/null 2>&1 || true

LOG=$CACHE/nspawn.log
timeout $((BOOT_TIMEOUT + 120)) systemd-nspawn -D "$RFS" --keep-unit --register=no --quiet \
  --bind-ro="$ROOT:/opt/hearth" --bind-ro="$(command -v node):/usr/bin/node" /hearth-init >"$LOG" 2>&1 </dev/null &
NSPAWN=$!
cleanup () {
  if [ -n "${PID1:-}" ]; then nsenter -t "$PID1" -a systemctl poweroff >/dev/null 2>&1 || true; fi
  for _ in $(seq 50); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
  kill "$NSPAWN" 2>/dev/null || true
  wait "$NSPAWN" 2>/dev/null || true
}
trap cleanup EXIT

PID1=
for _ in $(seq $((BOOT_TIMEOUT * 5))); do
  PID1=$(pgrep -P "$(pgrep -P "$NSPAWN" -f systemd-nspawn || echo 0)" -x systemd || true)
  [ -n "$PID1" ] && break
  sleep 0.2
done
[ -n "$PID1" ] && ok "systemd boots in the container (pid $PID1)" || { bad "systemd did not boot"; cat "$LOG"; exit 1; }
in_container () { nsenter -t "$PID1" -a "$@"; }

ready=
for _ in $(seq $((BOOT_TIMEOUT * 5))); do
  ready=$(curl -s "http://127.0.0.1:$PORT/readyz" || true)
  echo "$ready" | grep -q '"ready":true' && break
  sleep 0.2
done
echo "# readyz: $ready"
if echo "$ready" | grep -q '"ready":true'; then ok "hearth.service is ready"; else
  bad "hearth.service never became ready"; in_container journalctl -u hearth.service --no-pager -n 30 || true; fi
state=$(in_container systemctl is-active hearth.service || true)
[ "$state" = active ] && ok "systemd reports hearth.service $state" || bad "hearth.service is $state"
echo "$ready" | grep -q '"python":{"mode":"zygote"' && ok "python sandboxes are forked from a zygote under the unit's hardening" || bad "no python zygote under systemd"
echo "$ready" | grep -Eq '"prefaultPages":[1-9][0-9]*' && ok "and its probe learned the pages a child writes" || bad "no pages learned by the zygote's probe under systemd"
echo "$ready" | grep -q '"backend":"cgroup1"' && ok "sandboxes get per-sandbox cgroups under the delegated service cgroup" || bad "no cgroup backend under systemd"
# cgroup v1: each forked program joins its cgroups itself (limits/join-v1.ts),
# through directories the unit's UMask=0077 would make 0700
forks=$(echo "$ready" | sed -n 's/.*"python":{[^}]*"forks":\([0-9]*\).*/\1/p')
born=$(echo "$ready" | sed -n 's/.*"python":{[^}]*"bornInCgroup":\([0-9]*\).*/\1/p')
[ -n "$forks" ] && [ "$forks" -gt 0 ] && [ "$born" = "$forks" ] && ok "python programs joined their cgroups themselves ($born of $forks)" || { bad "python programs placed by the daemon: bornInCgroup $born of $forks forks"; in_container journalctl -u hearth.service --no-pager | grep -i zygote | tail -5 || true; }
cg=$(in_container sh -c 'cat /proc/$(systemctl show -p MainPID --value hearth.service)/cgroup' || true)
echo "$cg" | grep -q 'hearth.slice/hearth.service' && ok "the daemon runs in hearth.slice/hearth.service" || bad "daemon cgroup: $cg"

run () { curl -s -m 30 "http://127.0.0.1:$PORT/run-now" -H 'content-type: application/json' -d "$1"; }
out=$(run '{"language":"python","code":"x = []\nwhile True:\n    x.append(bytearray(1 << 20))"}')
echo "# memory bomb: $out"
echo "$out" | grep -q '"code":"memory_limit"' && ok "a memory bomb answers memory_limit" || bad "memory bomb: $out"
out=$(run '{"language":"python","code":"import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)","timeout":2}')
echo "# fork bomb: $out"
echo "$out" | grep -q '"code":"pids_limit"' && ok "a fork bomb answers pids_limit" || bad "fork bomb: $out"
out=$(run '{"language":"javascript","code":"return event.a + 1","input":{"a":41}}')
[ "$out" = '{"data":42,"type":"number"}' ] && ok "the next call is served: $out" || bad "after the bombs: $out"
state=$(in_container systemctl is-active hearth.service || true)
[ "$state" = active ] && ok "systemd still reports hearth.service $state after the bombs" || bad "hearth.service is $state after the bombs"
restarts=$(in_container systemctl show -p NRestarts --value hearth.service || echo '?')
[ "$restarts" = 0 ] && ok "hearth.service never restarted" || bad "hearth.service restarted $restarts times"

# Here bwrap cannot apply --disable-userns (read-only /proc/sys): without the
# seccomp filter nothing would stop nested user namespaces, so the daemon refuses.
out=$(in_container env SECCOMP=off HTTP_PORT=0 STATE_DIR=/tmp/seccomp-off timeout 60 node /opt/hearth/dist/daemon/main.js 2>&1 || echo "exit code $?")
if grep -q 'but SECCOMP=off: refusing to run sandboxes that could create user namespaces' <<<"$out" && grep -q 'exit code 1' <<<"$out"; then
  ok "SECCOMP=off where --disable-userns cannot work: the daemon refuses to start"
else bad "SECCOMP=off in the container: $(tail -3 <<<"$out")"; fi
echo "# $(( $(date +%s) - started )) s in all"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
