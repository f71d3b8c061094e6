"""Per-child hardening of a forked sandbox, in one place (issue: pre-forked sandboxes).

The zygote is a bwrap sandbox that keeps every capability inside its own user
namespace. A child forked from it becomes a sandbox of its own by the steps
below, which repeat for one process what bwrap does for a fresh one. They run
in the forked Python process itself, so they are ctypes calls into libc rather
than a helper program (a helper would have to exec, and the point of the
zygote is that the interpreter is already loaded).

    enter_namespaces()        in the child, once the daemon has put it in its cgroup
    fork()                    the first process of the new pid namespace
    setup_filesystem(...)     own /tmp, /dev/shm, /proc, /dev/pts; socket dir unmounted
    drop_privileges(p)        setsid, no capabilities, no_new_privs, seccomp

Everything raises OSError naming the step that failed.
"""
import ctypes
import errno
import os
import resource

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
# Mount, UTS, IPC, network and cgroup namespaces of its own (and a pid
# namespace, made by the zygote's fork): no view of a sibling's files, SysV
# IPC, processes or abstract sockets, no network at all, and its own cgroup
# (entered after the daemon placed it there) as the root of what it sees. The
# user namespace stays the zygote's, whose only uid is the sandbox uid.
NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MNT_DETACH = 0x2

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32), ('permitted', ctypes.c_uint32), ('inheritable', ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]


libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]


def _check(rc, step):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (step, os.strerror(err)))


def _prctl(option, arg2=0, arg3=0, step='prctl'):
    _check(libc.prctl(option, arg2, arg3, 0, 0), step)


def _mount(source, target, fstype, flags, data, step):
    _check(libc.mount(source, target, fstype, flags, data), step)


def set_rlimits(limits):
    """The rlimit backend's limits, set by the child on itself (no prlimit(1) per fork)."""
    for name, value in (limits or {}).items():
        which = {'data': resource.RLIMIT_DATA, 'nproc': resource.RLIMIT_NPROC, 'core': resource.RLIMIT_CORE}[name]
        resource.setrlimit(which, (value, value))


class PidNamespaces:
    """unshare(CLONE_NEWPID) makes the zygote's next child pid 1 of a new pid
    namespace; setns() back to its own afterwards, so that the one after gets a
    fresh one too (the kernel refuses a second unshare until then). One fork
    per sandbox instead of fork, unshare, fork."""

    def __init__(self):
        self.own = os.open('/proc/self/ns/pid', os.O_RDONLY | os.O_CLOEXEC)

    def next_child_in_new(self):
        _check(libc.unshare(CLONE_NEWPID), 'unshare pid namespace')

    def restore(self):
        _check(libc.setns(self.own, CLONE_NEWPID), 'setns own pid namespace')


def enter_namespaces():
    """New mount, UTS, IPC, network and cgroup namespaces for the calling process."""
    _check(libc.unshare(NAMESPACES), 'unshare')


class Filesystem:
    """What a child mounts over the zygote's read-only tree (encoded once, in the zygote)."""

    def __init__(self, tmp_bytes, rendezvous_dir):
        self.tmp_options = ('size=%d,mode=1777,nr_inodes=%d' % (tmp_bytes, max(1024, tmp_bytes // 4096))).encode()
        self.rendezvous_dir = rendezvous_dir.encode()


def setup_filesystem(fs):
    """Own /tmp and /dev/shm (size-capped), /proc of the new pid namespace, a new
    devpts instance, and no way back to the daemon's socket directory."""
    _mount(b'tmpfs', b'/tmp', b'tmpfs', MS_NOSUID | MS_NODEV, fs.tmp_options, 'mount /tmp')
    # POSIX shm and semaphores (multiprocessing) live in /dev/shm: private to the
    # child, so siblings share no shm objects; /dev itself stays read-only.
    _mount(b'tmpfs', b'/dev/shm', b'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, fs.tmp_options, 'mount /dev/shm')
    _mount(b'proc', b'/proc', b'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, None, 'mount /proc')
    # The zygote's devpts would let siblings open each other's terminals.
    _mount(b'devpts', b'/dev/pts', b'devpts', MS_NOSUID | MS_NOEXEC, b'newinstance,ptmxmode=0666,mode=620', 'mount /dev/pts')
    # The socket the child connected through: gone from its mount namespace, so
    # nothing it runs can open another connection to the daemon.
    _check(libc.umount2(fs.rendezvous_dir, MNT_DETACH), 'umount rendezvous')
    os.chdir('/tmp')


def _last_cap():
    try:
        with open('/proc/sys/kernel/cap_last_cap') as fh:
            return int(fh.read())
    except OSError:
        return 40


class Privileges:
    """What drop_privileges() needs, made once in the zygote: a forked child
    then only makes system calls (every Python object it touches costs it a
    copy-on-write page fault)."""

    def __init__(self, bpf):
        self.caps = list(range(_last_cap() + 1))
        self.header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        self.data = (_CapData * 2)()
        self.filter = ctypes.create_string_buffer(bpf, len(bpf)) if bpf else None
        self.prog = _SockFprog(len(bpf) // 8, ctypes.cast(self.filter, ctypes.c_void_p)) if bpf else None
        self.prog_addr = ctypes.addressof(self.prog) if bpf else 0


def drop_privileges(p):
    """setsid, every capability gone for good, no_new_privs, then the seccomp filter."""
    os.setsid()  # no controlling terminal to push input into (TIOCSTI)
    for cap in p.caps:
        rc = libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        if rc != 0 and ctypes.get_errno() != errno.EINVAL:
            _check(rc, 'PR_CAPBSET_DROP %d' % cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, step='PR_CAP_AMBIENT_CLEAR_ALL')
    _check(libc.capset(ctypes.byref(p.header), p.data), 'capset')
    # bwrap set no_new_privs on the zygote, so children inherit it; set it here
    # anyway: the seccomp filter below depends on it.
    _prctl(PR_SET_NO_NEW_PRIVS, 1, step='PR_SET_NO_NEW_PRIVS')
    if p.prog is not None:
        _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p.prog_addr, step='seccomp')
