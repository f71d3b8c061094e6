/* Per-child hardening of a forked sandbox, in one place. */
#ifndef HEARTH_ISOLATE_H
#define HEARTH_ISOLATE_H

#include <stddef.h>
#include <stdint.h>

#define EXIT_SETUP_FAILED 70

struct isolation {
  const char *rendezvous_dir;   /* bound read-only into the zygote; unmounted by each child */
  char rendezvous_sock[128];
  const char *tmp_options;      /* tmpfs options of /tmp and /dev/shm */
  const uint8_t *bpf;           /* seccomp program (raw sock_filter array), or NULL */
  size_t bpf_len;
  int last_cap;
};

struct rlimits {
  int64_t data, nproc, core; /* < 0: not set */
};

/* Where a child's three connections go; -1 in the zygote's self-test (no daemon). */
struct channels {
  int proto, out, err;
};

/*
 * In a child the zygote just forked, pid 1 of a new pid namespace:
 *   connect to the daemon (unless `nonce` is NULL: the self-test), wait for its
 *   go byte (it has put us in the sandbox's cgroup), set the rlimits, enter new
 *   mount, UTS, IPC, network and cgroup namespaces, mount our own /tmp, /dev/shm,
 *   /proc and /dev/pts, unmount the rendezvous directory, make fds 0-3 the only
 *   open ones, setsid, drop every capability, set no_new_privs, load seccomp,
 *   then fork the program (pid 2).
 * Returns only in the program. This process (init) reaps orphans until the
 * program ends and exits as it did. Any failure: a line on fd 2, exit 70.
 */
void become_sandbox (const struct isolation *iso, const char *nonce, const struct rlimits *lim);

/*
 * In a forked Python program, before any Python runs: copies every private
 * writable page of the zygote at once (madvise MADV_POPULATE_WRITE, Linux
 * 5.14+; a no-op before). The program would otherwise take a copy-on-write
 * fault per page it writes (reference counts make reads writes), each ~12 us on
 * a paravirtualized host against ~0.4 us per page copied in one call here
 * (measured). The cost: those pages are the child's own, charged to its cgroup.
 */
void prefault_writable (void);

#endif
