/* clone3(2) with CLONE_INTO_CGROUP, for a sandbox's init (spawn.c). */
#ifndef HEARTH_CLONE3_H
#define HEARTH_CLONE3_H

#include <stddef.h>
#include <sys/types.h>

/*
 * fn(arg) in a child that shares our memory (CLONE_VM) on `stack` (`size`
 * bytes), while we wait (CLONE_VFORK), and that is born in the cgroup v2
 * directory `cgroup_fd` (CLONE_INTO_CGROUP, Linux 5.7+): no write to
 * cgroup.procs afterwards, so no migration, which on cgroup v2 takes a lock
 * that every fork on the host waits for. The child's exit signal is SIGCHLD.
 * Returns the child's pid, or -1 with errno (ENOSYS where this is not built:
 * x86-64 and arm64 have the trampoline; the caller falls back to clone(2):
 * the daemon places that child, and the later ones join their cgroup).
 */
pid_t clone_into_cgroup (int (*fn) (void *), void *arg, char *stack, size_t size, int cgroup_fd);

#endif
