#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu host lacks to build, run and test hearth.
# Idempotent and quiet when everything is there; called by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# command → Debian package that provides it
declare -A NEED=(
  [bwrap]=bubblewrap
  [redis-server]=redis-server
  [setpriv]=util-linux
  [prlimit]=util-linux
  [systemd-analyze]=systemd
  [cc]=gcc
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
# The zygotes' C core needs libc's and the kernel's headers.
[ -f /usr/include/linux/seccomp.h ] && [ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -x /usr/bin/python3 ] || missing+=(python3)
# The sandboxes run Debian's /usr/bin/python3, so its own modules must be there
# (a pyenv or venv python on PATH does not count).
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 -c 'import msgpack' 2>/dev/null || missing+=(python3-msgpack)
  /usr/bin/python3 -c 'import seccomp' 2>/dev/null || missing+=(python3-seccomp)
  # pip builds the layers of Python functions' dependencies (daemon/packages).
  /usr/bin/python3 -c 'import pip' 2>/dev/null || missing+=(python3-pip)
else
  missing+=(python3-msgpack python3-seccomp python3-pip)
fi

if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing ${missing[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no apt-get here; install these packages with your package manager: ${missing[*]}" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: not root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 20.12: vm's main-context loader, which gives user code import() (runtimes/node/bootstrap.mjs).
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 12) ? 0 : 1)' 2>/dev/null; then
  echo "setup: hearth needs Node.js 20.12 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# node_modules is current when npm's own record of it is newer than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p build
if [ ! -s build/seccomp.bpf ] || [ runtimes/seccomp/generate.py -nt build/seccomp.bpf ]; then
  /usr/bin/python3 runtimes/seccomp/generate.py build/seccomp.bpf
fi

# The zygotes' C core (fork loop and per-child isolation), as a library for
# python and a Node-API addon for node, and the reaper each sandbox's pid 1
# executes.
sh runtimes/zygote/build.sh build
