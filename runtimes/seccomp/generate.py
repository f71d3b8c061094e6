#!/usr/bin/python3
"""Write the sandbox's seccomp filter as raw BPF (the format `bwrap --seccomp FD` loads).

Run at set-up (make setup) and by the daemon when the file is missing. Needs
python3-seccomp (libseccomp's own bindings), so the filter is compiled by the
same library systemd and container runtimes use rather than hand-written BPF.

Policy: allow by default, deny what a short-lived function never needs and
what widens the kernel's attack surface.
"""
import errno
import os
import socket
import sys

import seccomp

# Namespace-creating clone flags: a sandbox must not make new namespaces
# (bwrap's --disable-userns covers user namespaces; this covers the rest too).
CLONE_NS_FLAGS = {
    'CLONE_NEWNS': 0x00020000,
    'CLONE_NEWCGROUP': 0x02000000,
    'CLONE_NEWUTS': 0x04000000,
    'CLONE_NEWIPC': 0x08000000,
    'CLONE_NEWUSER': 0x10000000,
    'CLONE_NEWPID': 0x20000000,
    'CLONE_NEWNET': 0x40000000,
}

DENIED = [
    # debugging other processes
    'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp',
    # file systems and namespaces
    'mount', 'umount2', 'pivot_root', 'chroot', 'unshare', 'setns',
    'fsopen', 'fsmount', 'fsconfig', 'fspick', 'move_mount', 'open_tree', 'mount_setattr',
    # kernel keyring
    'keyctl', 'add_key', 'request_key',
    # eBPF, io_uring, perf: large kernel attack surface, no use to a function
    'bpf', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'perf_event_open',
    'userfaultfd',
    # host administration
    'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
    'reboot', 'swapon', 'swapoff', 'acct', 'settimeofday', 'clock_settime', 'clock_adjtime',
    'adjtimex', 'syslog', 'quotactl', 'open_by_handle_at', 'name_to_handle_at',
    'lookup_dcookie', 'vhangup', 'iopl', 'ioperm', 'personality',
]


def build():
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    eperm = seccomp.ERRNO(errno.EPERM)
    for name in DENIED:
        try:
            f.add_rule(eperm, name)
        except (RuntimeError, ValueError):
            pass  # syscall unknown on this architecture
    # Only AF_UNIX sockets: the sandbox has no network namespace interfaces
    # anyway, but netlink, packet and vsock sockets reach the host kernel.
    nosupport = seccomp.ERRNO(errno.EAFNOSUPPORT)
    for name in ('socket', 'socketpair'):
        f.add_rule(nosupport, name, seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    for flag in CLONE_NS_FLAGS.values():
        f.add_rule(eperm, 'clone', seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory a filter cannot read: answer ENOSYS so
    # glibc falls back to clone(2), whose flags the rule above checks.
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), 'clone3')
    # TIOCSTI pushes input into a terminal; there is none, but close it anyway.
    f.add_rule(eperm, 'ioctl', seccomp.Arg(1, seccomp.EQ, 0x5412))
    return f


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: generate.py OUTPUT.bpf')
    out = sys.argv[1]
    tmp = out + '.tmp'
    with open(tmp, 'wb') as fh:
        build().export_bpf(fh)
    os.replace(tmp, out)


if __name__ == '__main__':
    main()
