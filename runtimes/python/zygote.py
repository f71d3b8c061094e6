"""hearth's Python zygote: forks ready Python sandboxes (see ../PROTOCOL.md, "Zygote").

It runs in a bwrap sandbox of its own that keeps capabilities inside its user
namespace, loads the interpreter and the bootstrap once, and never runs user
code. Then it hands over to the zygotes' C core (../zygote/serve.c, built at
set-up as libhearth-zygote.so, given on fd 5): the fork loop and each child's
isolation (../zygote/isolate.c) run there, touching almost none of the
interpreter's memory. Each child's pid 1 executes the reaper
(../zygote/reaper/, given on fd 6).
hz_serve() returns in a forked python program only, which runs the bootstrap;
a node child (where the node zygote, ../node/zygote.mjs, cannot run) executes
the command given after the tmpfs size instead.

usage: zygote.py TMP_BYTES [NODE_ARGV...]
"""
import ctypes
import gc
import os
import sys

sys.path.insert(0, '/hearth')  # -I leaves the script's directory off sys.path

import bootstrap  # noqa: E402  the runtime and every bootstrap import, loaded once

CONTROL_FD = 3
SECCOMP_FD = 4
LIBRARY_FD = 5
REAPER_FD = 6
PROBE = 3  # hz_serve's answer in the probe child
RENDEZVOUS_DIR = b'/run/hearth'


def read_fd(fd):
    """All of an inherited fd's bytes; b'' when it was not given."""
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(fd)
        return b''.join(chunks)
    except OSError:
        return b''  # SECCOMP=off: no fd 4


def as_memfd(name, fd):
    """An inherited file's bytes in a memfd (close-on-exec): where the daemon
    keeps its files may be mounted noexec (systemd mounts /run so), and an
    executable mapping or an exec of a file there would be refused."""
    image = read_fd(fd)
    if not image:
        raise SystemExit('hearth zygote: no %s on fd %d' % (name, fd))
    memfd = os.memfd_create(name)
    os.write(memfd, image)
    return memfd


def load_core():
    """The C core, loaded from its memfd."""
    fd = as_memfd('libhearth-zygote.so', LIBRARY_FD)
    # PyDLL: the call keeps the GIL, as os.fork() does around fork(2).
    return ctypes.PyDLL('/proc/self/fd/%d' % fd)


def main():
    # Nested user namespaces: none for anything forked from here (the seccomp
    # filter denies them too; /proc/sys is read-only under nspawn).
    try:
        with open('/proc/sys/user/max_user_namespaces', 'w') as fh:
            fh.write('0')
    except OSError:
        pass
    tmp_bytes = int(sys.argv[1]) if len(sys.argv) > 1 else 16 << 20
    tmp_options = ('size=%d,mode=1777,nr_inodes=%d' % (tmp_bytes, max(1024, tmp_bytes // 4096))).encode()
    bpf = read_fd(SECCOMP_FD)
    core = load_core()
    reaper = as_memfd('hearth-reaper', REAPER_FD)
    core.hz_serve.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                              ctypes.POINTER(ctypes.c_char_p)]
    core.hz_serve.restype = ctypes.c_int
    node = [arg.encode() for arg in sys.argv[2:]]
    node_argv = (ctypes.c_char_p * (len(node) + 1))(*node, None)
    # One call's code path of hearth's own, run once here instead of in every
    # child before its `ready`: what it leaves behind is shared, and the pages
    # a call writes are copied by each child's prefault (learned by the probe)
    # all the same. Alternated A/B, run-now at 8 connections: 1.06x, paced
    # latency unchanged.
    bootstrap.warm_up()
    bootstrap.hide_hearth()  # nothing is imported from here on
    # Its children's channel, caps and captured streams, made once here (bootstrap.Prepared).
    bootstrap.prepare(CONTROL_FD)
    # Looked up here: ctypes makes a function's object at its first use, which
    # would be in each child (and in the probe, mapping code no child runs).
    after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child
    probe_started, probe_answered, probe_done = core.hz_probe_started, core.hz_probe_answered, core.hz_probe_done
    bootstrap.PREPARED.before_compile = core.hz_prefault_compile
    rehearsal = bootstrap.rehearsal()
    # Objects made so far are never collected: a child's GC then leaves the
    # zygote's pages shared instead of touching every object header.
    gc.collect()
    gc.freeze()
    rc = core.hz_serve(CONTROL_FD, reaper, RENDEZVOUS_DIR, tmp_options, bpf, len(bpf), node_argv)
    if rc == PROBE:
        # The probe (../zygote/probe.c): a program's start and first call
        # rehearsed with hearth's own code, then the pages it copied (and
        # those of code its call mapped) are reported and it exits.
        after_fork_child()
        bootstrap.rehearse(rehearsal, probe_started, probe_answered)
        probe_done()
    if rc != 0:
        os._exit(0 if rc in (1, 2) else 70)
    # A forked program: the fork happened in C, so Python's own after-fork
    # work (thread state, locks, os.register_at_fork hooks such as random's
    # reseeding) runs now.
    after_fork_child()
    try:
        bootstrap.main()
    finally:
        os._exit(0)


if __name__ == '__main__':
    main()
