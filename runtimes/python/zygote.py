"""hearth's Python zygote: forks ready Python sandboxes (see ../PROTOCOL.md, "Zygote").

It runs in a bwrap sandbox of its own that keeps capabilities inside its user
namespace, loads the interpreter and the bootstrap once, and never runs user
code. For each `fork` frame on fd 3 it forks a child straight into a new pid
namespace, which

  init  (pid 1) connects to the daemon's rendezvous socket (protocol, stdout,
        stderr), waits for the daemon's go byte (the daemon has put it in the
        sandbox's cgroup by then), enters new mount, network, IPC and UTS
        namespaces, mounts its own /tmp, /dev/shm, /proc and /dev/pts,
        unmounts the rendezvous directory, drops every privilege, forks the
        program, then reaps orphans until the program ends and exits as it did;
  program (pid 2) serves calls: bootstrap.main() on fd 3, like a spawned sandbox.

That is the tree bwrap builds for a spawned sandbox (init, program), so user
code is never pid 1 and orphans are reaped. Killing init ends the namespace.
"""
import gc
import os
import select
import signal
import socket
import sys

sys.path.insert(0, '/hearth')  # -I leaves the script's directory off sys.path

import bootstrap  # noqa: E402  the runtime and every bootstrap import, loaded once
import isolate  # noqa: E402

RENDEZVOUS_DIR = '/run/hearth'
RENDEZVOUS = RENDEZVOUS_DIR + '/sock'
CONTROL_FD = 3
SECCOMP_FD = 4
EXIT_SETUP_FAILED = 70


def _exit_like(status):
    """Exit as a waited-for child did: its exit code, or 128 + its signal
    (pid 1 cannot kill itself with a signal from inside its namespace)."""
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xff)


def _fail(step, exc):
    try:
        os.write(2, ('hearth zygote child: %s: %s\n' % (step, exc)).encode())
    finally:
        os._exit(EXIT_SETUP_FAILED)


def _connect(nonce, kind):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(RENDEZVOUS)
    sock.sendall(('HEARTH %s %s\n' % (nonce, kind)).encode())
    return sock.detach()  # a raw fd: no socket object left to close it behind our back


def become_sandbox(fs, privileges, rlimits, fds):
    """In init (pid 1 of a new pid namespace): isolate, fork the program, reap.
    Returns only in the program, with `fds` (target fd -> open fd) in place and
    nothing else open but fd 0 (/dev/null)."""
    isolate.set_rlimits(rlimits)
    isolate.enter_namespaces()
    isolate.setup_filesystem(fs)
    null = os.open('/dev/null', os.O_RDWR)
    # dup2 onto 1-3 without clobbering a source that already sits there.
    moved = {target: os.dup(fd) for target, fd in fds.items()}
    os.dup2(null, 0)
    for target, fd in moved.items():
        os.dup2(fd, target)
    os.closerange(max(fds, default=2) + 1, os.sysconf('SC_OPEN_MAX'))
    isolate.drop_privileges(privileges)
    program = os.fork()
    if program != 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:  # init's duty: reap everything, end with the program
            try:
                pid, status = os.wait()
            except InterruptedError:
                continue
            except ChildProcessError:
                os._exit(EXIT_SETUP_FAILED)
            if pid == program:
                _exit_like(status)
    signal.signal(signal.SIGINT, signal.default_int_handler)


class Zygote:
    def __init__(self, tmp_bytes):
        self.fs = isolate.Filesystem(tmp_bytes, RENDEZVOUS_DIR)
        self.privileges = isolate.Privileges(self._read_seccomp())
        self.ctl = socket.socket(fileno=CONTROL_FD)
        self.buf = bytearray()
        self.children = {}  # pid -> nonce
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pidns = isolate.PidNamespaces()

    @staticmethod
    def _read_seccomp():
        try:
            chunks = []
            while True:
                chunk = os.read(SECCOMP_FD, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(SECCOMP_FD)
            return b''.join(chunks)
        except OSError:
            return b''  # SECCOMP=off: no fd 4

    def send(self, msg):
        body = bootstrap.msgpack.packb(msg, use_bin_type=True)
        self.ctl.sendall(bootstrap.HEADER.pack(len(body)) + body)

    def frames(self):
        chunk = self.ctl.recv(1 << 16)
        if not chunk:
            sys.exit(0)  # the daemon closed the control channel: retire
        self.buf += chunk
        while len(self.buf) >= 4:
            (size,) = bootstrap.HEADER.unpack_from(self.buf)
            if len(self.buf) < 4 + size:
                break
            body = bytes(self.buf[4:4 + size])
            del self.buf[:4 + size]
            yield bootstrap.msgpack.unpackb(body, raw=False)

    def _in_child(self):
        """First thing in a forked child: nothing of the zygote's loop survives."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.ctl.detach()
        for fd in (CONTROL_FD, self.wake_r, self.wake_w, self.pidns.own):
            os.close(fd)

    def fork_init(self):
        """fork() whose child is pid 1 of a new pid namespace."""
        self.pidns.next_child_in_new()
        try:
            pid = os.fork()
        except OSError:
            self.pidns.restore()
            raise
        if pid != 0:
            self.pidns.restore()  # the zygote's later forks: a fresh namespace each
        return pid

    def fork(self, msg):
        nonce = msg['nonce']
        try:
            pid = self.fork_init()
        except OSError as exc:
            self.send({'t': 'failed', 'nonce': nonce, 'message': str(exc)})
            return
        if pid == 0:
            step = 'start'
            try:
                self._in_child()
                step = 'connect'
                fds = {3: _connect(nonce, 'proto'), 1: _connect(nonce, 'stdout'), 2: _connect(nonce, 'stderr')}
                step = 'wait for go'
                if os.read(fds[3], 1) != b'g':
                    os._exit(EXIT_SETUP_FAILED)  # the daemon gave up on this child
                step = 'isolate'
                become_sandbox(self.fs, self.privileges, msg.get('rlimits'), fds)
            except BaseException as exc:  # noqa: B902  never back into the zygote's loop
                _fail(step, exc)
            try:
                bootstrap.main()
            finally:
                os._exit(0)
        self.children[pid] = nonce
        self.send({'t': 'forked', 'nonce': nonce, 'pid': pid})

    def kill(self, nonce):
        """For a child the daemon cannot kill by host pid (it never connected)."""
        for pid, owner in self.children.items():
            if owner == nonce:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            nonce = self.children.pop(pid, None)
            if nonce is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            self.send({'t': 'exited', 'nonce': nonce,
                       'code': code if code >= 0 else None, 'signal': -code if code < 0 else None})

    def self_test(self):
        """One child through every isolation step before the zygote says ready:
        where the host forbids them (no capabilities in user namespaces), the
        daemon hears `unavailable` with the reason and spawns sandboxes instead."""
        r, w = os.pipe()
        try:
            pid = self.fork_init()
        except OSError as exc:
            return 'cannot fork into a new pid namespace: %s' % exc
        if pid == 0:
            try:
                os.close(r)
                os.dup2(w, 2)  # what fails is written here
                become_sandbox(self.fs, self.privileges, None, {2: w})
            except BaseException as exc:  # noqa: B902
                _fail('self-test', exc)
            os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        reason = os.read(r, 4096).decode(errors='replace').strip()
        os.close(r)
        if status != 0:
            return reason or 'self-test child exited with status %d' % status
        return None

    def serve(self):
        reason = self.self_test()
        if reason is not None:
            self.send({'t': 'unavailable', 'message': reason})
            return
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # Objects made so far are never collected: a child's GC then leaves the
        # zygote's pages shared instead of touching every object header.
        gc.collect()
        gc.freeze()
        self.send({'t': 'ready', 'runtime': 'python', 'pid': os.getpid()})
        while True:
            try:
                readable, _, _ = select.select([self.ctl, self.wake_r], [], [])
            except InterruptedError:
                continue
            if self.wake_r in readable:
                try:
                    os.read(self.wake_r, 4096)
                except BlockingIOError:
                    pass
                self.reap()
            if self.ctl in readable:
                for msg in self.frames():
                    if msg.get('t') == 'fork':
                        self.fork(msg)
                    elif msg.get('t') == 'kill':
                        self.kill(msg['nonce'])


def main():
    # Nested user namespaces: none for anything forked from here (the seccomp
    # filter denies them too; /proc/sys is read-only under nspawn).
    try:
        with open('/proc/sys/user/max_user_namespaces', 'w') as fh:
            fh.write('0')
    except OSError:
        pass
    tmp_bytes = int(sys.argv[1]) if len(sys.argv) > 1 else 16 << 20
    Zygote(tmp_bytes).serve()


if __name__ == '__main__':
    main()
