#!/usr/bin/env bash
# make test: lint, the tap suite, the console in a real browser (chromium),
# then hearth.service under a real systemd,
# in nspawn (scripts/test-systemd.sh) and in virtual machines with cgroup v2
# (scripts/test-vm.sh). What those two need the first time (packages, a
# rootfs, guest images: network and disk, little CPU) is prepared in the
# background while lint and tap run, and the guests boot meanwhile too, at the
# lowest priority (CPU tap leaves idle): their checks begin once the other
# suites are done (begun right after tap instead, beside the browser and
# nspawn suites, they took 203 s against 131-149, in a run where tap too was
# slower than usual: nothing measured for it). Every suite runs;
# the exit code says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
logs=$(mktemp -d)
# The background suites run in process groups of their own (set -m), all of
# which an interrupted run ends: the guests (QEMU under timeout, under
# test-vm.sh) would run on for up to 30 minutes. Not sessions of their own:
# nice applies only within a session (the kernel's autogroups).
trap 'for j in $(jobs -p); do kill -- "-$j" 2>/dev/null; done; rm -rf "$logs"' EXIT
# ^C reaches the suite that runs, which may exit as if it failed: stop here
# rather than go on to the next. (SIGTERM, untrapped, ends the script at once.)
trap 'exit 130' INT
set -m
nice -n 19 scripts/test-systemd.sh prepare >"$logs/systemd" 2>&1 & systemd=$!
{ nice -n 19 scripts/test-vm.sh prepare && HEARTH_VM_GO=$logs/go scripts/test-vm.sh run; } >"$logs/vm" 2>&1 & vm=$!
# The console's browser test: Debian's chromium (network, little CPU), meanwhile.
nice -n 19 scripts/lib/need.sh chromium:chromium >"$logs/chromium" 2>&1 & browser=$!
set +m

failed=()
# The metrics test reads /metrics with Prometheus's own parser (its Python client's).
scripts/lib/need.sh python3:prometheus_client:python3-prometheus-client || failed+=(setup)
# The cluster tests make their three-master Redis Cluster with redis-cli.
scripts/lib/need.sh redis-cli:redis-tools || failed+=(setup)
# clone3.test.ts runs the zygotes' arm64 trampoline in an emulated arm64 guest.
HEARTH_ARM64_KERNEL=$(scripts/arm64-kernel.sh) && export HEARTH_ARM64_KERNEL || failed+=(setup)
npm run --silent lint || failed+=(lint)
npm test || failed+=(tap)
if wait $browser; then npm run --silent test:browser || failed+=(browser)
else cat "$logs/chromium"; failed+=(browser); fi
if wait $systemd; then scripts/test-systemd.sh || failed+=(test-systemd)
else cat "$logs/systemd"; failed+=(test-systemd); fi
touch "$logs/go"
wait $vm || failed+=(test-vm)
cat "$logs/vm"

if [ ${#failed[@]} -eq 0 ]; then echo "# make test: every suite passed in $(( $(date +%s) - started )) s"
else echo "# make test: FAILED: ${failed[*]} ($(( $(date +%s) - started )) s)"; exit 1; fi
