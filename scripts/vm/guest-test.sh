#!/bin/bash
# Runs inside a guest of scripts/test-vm.sh (systemd, cgroup v2): installs
# hearth from the read-only checkout with scripts/install-systemd.sh, as a
# user would, then checks the production path over HTTP on the guest's
# loopback. Checks read cgroup files and counters, never timings (the guest
# may run under emulation).
set -u
# The host may boot this guest ahead of its checks (make test boots the guests
# at the lowest priority while its tap suite runs): they begin at its go. The
# wait is a read that times out on a pipe nobody writes, not `sleep 1`: a fork
# and exec each second cost an emulated guest 7-9 % of a host core (1.2-1.7 %
# with the read), taken from the tap suite for the ~6 minutes it waits.
exec 9<> <(:)
until [ -e /mnt/share/go ]; do read -rt 1 -u 9 || true; done
pass=0; fail=0
T0=$(date +%s)
ok () { echo "ok - $* [$(( $(date +%s) - T0 )) s]"; pass=$((pass + 1)); }
bad () { echo "not ok - $* [$(( $(date +%s) - T0 )) s]"; fail=$((fail + 1)); }
check () { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
CG=/sys/fs/cgroup
SERVICE=$CG/hearth.slice/hearth.service
SANDBOXES=$SERVICE/hearth
run () { curl -s -m 300 http://127.0.0.1:8080/run-now -H 'content-type: application/json' -d "$1"; }
readyz () { curl -s -m 30 http://127.0.0.1:8080/readyz; }
wait_ready () {
  for _ in $(seq 360); do readyz | grep -q '"ready":true' && return 0; sleep 0.5; done
  return 1
}
# Everything after the backend check is about cgroup v2: without it, say why and stop.
stop_here () {
  echo "# hearth's warnings (pino level 40+ on its stdout):"
  journalctl -u hearth --no-pager -o cat | grep -E '"level":(40|50|60)' | tail -n 5 | sed 's/^/#   /'
  echo "# and what it wrote that is not a log line (a failed start: 'hearth: cannot start: ...'):"
  journalctl -u hearth --no-pager -o cat | grep -v '"level":' | tail -n 8 | sed 's/^/#   /'
  echo "$pass passed, $fail failed (stopped early: $1)"
  exit 1
}
sandbox_cgroups () { find "$SANDBOXES" -mindepth 1 -maxdepth 1 -type d -name "$1" 2>/dev/null | wc -l; }

install -m 0755 /mnt/share/node /usr/bin/node
. /etc/os-release
echo "# node $(node --version), $PRETTY_NAME, kernel $(uname -r), $(getconf GNU_LIBC_VERSION)"
echo "# $CG: $(stat -fc %T $CG), controllers: $(cat $CG/cgroup.controllers)"
mkdir -p /etc/hearth
# Packages: the guest reaches no index, so pip finds a wheel made here (PIP_FIND_LINKS).
WHEELS=/var/lib/hearth-wheels
install -d -m 0755 $WHEELS
python3 - $WHEELS <<'PY'
import sys, zipfile
dist = 'hearth_vm_probe-1.0.0'
files = {'hearth_vm_probe/__init__.py': 'ANSWER = 42\n',
         dist + '.dist-info/METADATA': 'Metadata-Version: 2.1\nName: hearth-vm-probe\nVersion: 1.0.0\n',
         dist + '.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: hearth-vm\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}
files[dist + '.dist-info/RECORD'] = ''.join(name + ',,\n' for name in [*files, dist + '.dist-info/RECORD'])
with zipfile.ZipFile('%s/%s-py3-none-any.whl' % (sys.argv[1], dist), 'w') as whl:
    for name, text in files.items():
        whl.writestr(name, text)
PY
printf 'HTTP_HOST=127.0.0.1\nHTTP_PORT=8080\nMAX_MEMORY=64M\nMAX_PIDS=32\nMAX_CPUS=0.5\nPOOL_MIN=1\nPOOL_MAX=4\nTIMEOUT_SCRIPT=120\nSPAWN_TIMEOUT=120\nACQUIRE_TIMEOUT=120\nPIP_NO_INDEX=1\nPIP_FIND_LINKS=%s\n' $WHEELS >/etc/hearth/hearth.env
if (cd /mnt/checkout && scripts/install-systemd.sh) >/tmp/install.log 2>&1; then ok "scripts/install-systemd.sh installs and starts hearth.service"
else bad "scripts/install-systemd.sh: $(tail -3 /tmp/install.log)"; fi

# The backend first, from the first answer of /readyz: without cgroup v2 the
# daemon may never be ready (Node cannot start under RLIMIT_DATA=64M).
for _ in $(seq 240); do ready=$(readyz); [ -n "$ready" ] && break; sleep 0.5; done
if grep -q '"backend":"cgroup2"' <<<"$ready"; then ok "the cgroup v2 backend"
else
  bad "the cgroup v2 backend: readyz says $(grep -o '"backend":"[a-z0-9]*"' <<<"$ready")"
  stop_here "no cgroup v2 subtree for the sandboxes: is the service Delegate=yes?"
fi
if wait_ready; then ok "hearth.service is ready"; else bad "hearth.service never became ready"; fi
ready=$(readyz)
echo "# readyz: $ready"
journalctl -u hearth --no-pager -o cat | grep -E '"level":(40|50|60)' | tail -n 5 | sed 's/^/# hearth warned: /'
check "sandbox cgroups under the service's delegated subtree ($SANDBOXES)" grep -q "\"detail\":\"$SANDBOXES\"" <<<"$ready"
pid=$(systemctl show -p MainPID --value hearth)
check "the daemon moved itself into a leaf (no internal processes)" grep -qx '0::/hearth.slice/hearth.service/daemon' "/proc/$pid/cgroup"
check "fresh python sandboxes come from the zygote" grep -q '"python":{"mode":"zygote","start":"fork"' <<<"$ready"
check "its probe learned the pages a python child writes (prefaultPages > 0)" grep -Eq '"python":\{"mode":"zygote","start":"fork",[^}]*"prefaultPages":[1-9]' <<<"$ready"
check "fresh node sandboxes are forked from the node zygote, whose probe learned the pages a node child writes" \
  grep -Eq '"node":\{"mode":"zygote","start":"fork",[^}]*"prefaultPages":[1-9]' <<<"$ready"
# As a systemd service the daemon has CAP_SYS_RESOURCE: it raises its zygotes'
# RLIMIT_MEMLOCK, and each pins the pages a child writes; each moved its code onto 2 MB pages.
for runtime in python node; do
  check "the $runtime zygote pinned the pages a child writes (pinnedPages > 0)" grep -Eq "\"$runtime\":\\{[^}]*\"pinnedPages\":[1-9]" <<<"$ready"
  check "the $runtime zygote's code is on 2 MB pages (hugeTextPages > 0)" grep -Eq "\"$runtime\":\\{[^}]*\"hugeTextPages\":[1-9]" <<<"$ready"
done
# Forked sandboxes are born in their cgroups (clone3 CLONE_INTO_CGROUP): the
# zygotes live under the sandboxes' parent, and a sandbox's pid 1 (the
# reaper), which the daemon never moves, is in the sandbox's cgroup.
cmdlines () { for p in $(cat "$@" 2>/dev/null); do tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null; echo; done; }
check "the zygotes live in $SANDBOXES/zygotes" test "$(cmdlines "$SANDBOXES/zygotes/cgroup.procs" | grep -c '/hearth/zygote\.')" -ge 2
zygote=$(for p in $(cat "$SANDBOXES/zygotes/cgroup.procs"); do tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q '^/usr/bin/python3 .*/hearth/zygote\.py' && echo "$p"; done | head -1)
check "the python zygote (pid $zygote) may pin 64 MB (RLIMIT_MEMLOCK raised by the daemon)" \
  grep -Eq '^Max locked memory +67108864 +67108864 ' "/proc/$zygote/limits"
check "a forked sandbox's pid 1 (the reaper) is in the sandbox's cgroup: born there" \
  grep -q '^hearth-reaper ' <(cmdlines "$SANDBOXES"/python-*/cgroup.procs)
first=$(find "$SANDBOXES" -mindepth 1 -maxdepth 1 -type d -name 'python-*' | head -1)
if [ -n "$first" ]; then
  check "a sandbox cgroup has memory.max, pids.max and cpu.max from MAX_MEMORY, MAX_PIDS, MAX_CPUS" \
    test "$(cat "$first/memory.max") $(cat "$first/pids.max") $(cat "$first/cpu.max")" = "67108864 32 50000 100000"
  check "and no swap" test "$(cat "$first/memory.swap.max")" = 0
else bad "no python sandbox cgroup under $SANDBOXES"; fi
check "hearth.slice bounds every sandbox together (MemoryMax=4G, CPUQuota=150%, TasksMax=4096)" \
  test "$(cat $CG/hearth.slice/memory.max) $(cat $CG/hearth.slice/cpu.max) $(cat $CG/hearth.slice/pids.max)" = "4294967296 150000 100000 4096"

# A function with packages: pip in a build sandbox under the service's
# delegated cgroup, the layer in the unit's StateDirectory, bound into the
# function's sandbox (the sandbox uid must reach it: StateDirectoryMode=0711).
out=$(curl -s -m 600 http://127.0.0.1:8080/upload -H 'content-type: application/json' \
  -d '{"path":"vm/pkg","language":"python","code":"import hearth_vm_probe\nreturn hearth_vm_probe.ANSWER","dependencies":["hearth-vm-probe==1.0.0"]}')
check "an upload with pip dependencies builds its layer: $out" grep -q '"resolved":{"hearth-vm-probe":"1.0.0"}' <<<"$out"
out=$(curl -s -m 300 -X POST http://127.0.0.1:8080/run/vm/pkg -H 'content-type: application/json' -d '{}')
check "and the function imports the package: $out" test "$out" = '{"data":42,"type":"number"}'

# fds 1 and 2 are pipes, which open by name: a forked sandbox's are made in
# its zygote's own tmpfs and opened by the daemon through /proc/<zygote>/root.
out=$(run '{"language":"python","code":"import subprocess\nsubprocess.run([\"/bin/sh\", \"-c\", \"echo to-dev-stderr >/dev/stderr\"], check=True)\nreturn 1","stream":true}')
check "a shell in a python sandbox writes to /dev/stderr, into the call's log" grep -q '"data":"to-dev-stderr","type":"text","stream":"stderr"' <<<"$out"
out=$(run '{"language":"javascript","code":"require(\"fs\").writeFileSync(\"/dev/stdout\", \"to-dev-stdout\\n\")\nreturn 1","stream":true}')
check "a javascript sandbox writes to /dev/stdout, into the call's log" grep -q '"data":"to-dev-stdout","type":"text"}' <<<"$out"

out=$(run '{"language":"python","code":"x = []\nwhile True:\n    x.append(bytearray(1 << 20))"}')
echo "# python memory bomb: $out"
check "a python memory bomb answers memory_limit (memory.events oom_kill)" grep -q '"code":"memory_limit"' <<<"$out"
out=$(run '{"language":"javascript","code":"const a = []\nwhile (true) a.push(Buffer.alloc(1 << 20, 1))"}')
echo "# javascript memory bomb: $out"
check "a javascript memory bomb answers memory_limit" grep -q '"code":"memory_limit"' <<<"$out"
out=$(run '{"language":"python","code":"import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)","timeout":3}')
echo "# fork bomb: $out"
check "a fork bomb answers pids_limit (pids.events max)" grep -q '"code":"pids_limit"' <<<"$out"

ready=$(readyz)
check "python sandboxes were born in their cgroups, none moved there (bornInCgroup = forks)" \
  grep -Eq '"python":\{[^}]*"forks":([0-9]+),[^}]*"bornInCgroup":\1[,}]' <<<"$ready"
check "node ones too" grep -Eq '"node":\{[^}]*"forks":([0-9]+),[^}]*"bornInCgroup":\1[,}]' <<<"$ready"
# After the bombs above: their cgroups, and the one-shot calls', went on to new sandboxes.
check "ended sandboxes' empty cgroups were handed on (limits.cgroups.reused > 0)" grep -Eq '"cgroups":\{"made":[0-9]+,"reused":[1-9]' <<<"$ready"

# A spin, and while it runs: the sandbox's cgroup throttles it to MAX_CPUS.
run '{"language":"python","code":"import time\nend = time.monotonic() + 6\nwhile time.monotonic() < end:\n    pass\nreturn 1"}' >/tmp/spin.out &
spin=$!
throttled=0
for _ in $(seq 200); do
  for f in "$SANDBOXES"/*/cpu.stat; do
    n=$(awk '$1 == "nr_throttled" {print $2}' "$f" 2>/dev/null || echo 0)
    [ "${n:-0}" -gt 0 ] && throttled=1
  done
  [ $throttled = 1 ] && break
  sleep 0.2
done
wait $spin
check "a busy loop is throttled to its cpu.max (cpu.stat nr_throttled > 0)" test $throttled = 1
check "and still answers" grep -q '"data":1' /tmp/spin.out

before=$(sandbox_cgroups '*')
for i in $(seq 10); do run "{\"language\":\"python\",\"code\":\"return $i\"}" >/dev/null; done
gone=0
for _ in $(seq 120); do [ "$(sandbox_cgroups '*')" -le "$before" ] && gone=1 && break; sleep 0.5; done
check "the cgroups of ten run-now sandboxes are gone after their calls ($before before, $(sandbox_cgroups '*') after)" test $gone = 1

old=$pid
systemctl kill -s KILL hearth.service
restarted=0
for _ in $(seq 240); do
  now=$(systemctl show -p MainPID --value hearth)
  [ "$now" != 0 ] && [ "$now" != "$old" ] && [ "$(systemctl is-active hearth)" = active ] && restarted=1 && break
  sleep 0.5
done
check "after SIGKILL systemd restarts hearth.service" test $restarted = 1
wait_ready >/dev/null
check "no cgroup of the killed daemon's sandboxes remains" test "$(sandbox_cgroups "*-$old-*")" = 0
check "no process of the killed daemon survives" test -z "$(pgrep -f "/run/hearth/$old-" || true)"
out=$(run '{"language":"typescript","code":"const n: number = 41\nreturn n + 1"}')
check "the restarted daemon serves: $out" test "$out" = '{"data":42,"type":"number"}'

timeout=$(systemctl show -p TimeoutStopUSec --value hearth)
systemctl stop hearth.service
check "systemctl stop ends it cleanly within TimeoutStopSec=$timeout (Result=$(systemctl show -p Result --value hearth))" \
  test "$(systemctl show -p Result --value hearth)" = success
check "nothing of hearth runs after the stop" test -z "$(pgrep -f '/opt/hearth|zygote.py|/hearth/bootstrap' || true)"
check "its cgroup subtree is gone" test ! -d "$SANDBOXES"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
