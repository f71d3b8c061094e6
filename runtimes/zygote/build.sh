#!/bin/sh
# Builds the zygotes' C core into OUTDIR, where it is missing or older than its
# sources (make setup into build/; the daemon into STATE_DIR when build/'s is
# stale: daemon/zygote/library.ts):
#   libhearth-zygote.so  the core, loaded by the python zygote (ctypes)
#   hearth-zygote.node   the core with its Node-API glue (node/addon.c), loaded
#                        by the node zygote
#   hearth-reaper        what each sandbox's pid 1 executes (reaper/), static:
#                        it runs from a memfd; on x86-64 without libc (reaper.c
#                        says why)
# usage: build.sh OUTDIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
flags="-O2 -Wall -Wextra -Werror"

stale() { # TARGET DIR...: missing, or older than a .c/.h in a DIR
  target=$1; shift
  [ ! -s "$target" ] && return 0
  [ -n "$(find "$@" -maxdepth 1 -newer "$target" -name '*.[ch]')" ]
}

if stale "$out/libhearth-zygote.so" "$here"; then
  # shellcheck disable=SC2086 # $flags is a list of flags
  cc $flags -fPIC -shared -o "$out/libhearth-zygote.so" "$here"/*.c
fi
if stale "$out/hearth-zygote.node" "$here" "$here/node"; then
  # shellcheck disable=SC2086
  cc $flags -fPIC -shared -o "$out/hearth-zygote.node" "$here"/*.c "$here"/node/*.c
fi
if stale "$out/hearth-reaper" "$here/reaper"; then
  nolibc=""; [ "$(uname -m)" = x86_64 ] && nolibc="-nostdlib -ffreestanding -fno-stack-protector"
  # shellcheck disable=SC2086
  cc $flags -static $nolibc -o "$out/hearth-reaper" "$here"/reaper/*.c
fi
