/* Per-child hardening of a forked sandbox, in one place. */
#ifndef HEARTH_ISOLATE_H
#define HEARTH_ISOLATE_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#define EXIT_SETUP_FAILED 70
/* Where the daemon binds the sandboxes' parent cgroup into a zygote: v2's
 * itself; on v1, each hierarchy's, in a directory named after it. */
#define CGROUPS_DIR "/run/hearth-cgroup"
#define MAX_HIERARCHIES 8

struct isolation {
  const char *rendezvous_dir;   /* bound read-only into the zygote (its pipes/ read-write); covered by each child */
  const char *cgroups_dir;      /* CGROUPS_DIR when the zygote has it, else NULL; covered by each child */
  const char *hierarchies[MAX_HIERARCHIES]; /* the hierarchies' directories in it for a child to join: v1's, or v2's "." */
  size_t nhierarchies;
  char rendezvous_sock[128];
  const char *tmp_options;      /* tmpfs options of /tmp and /dev/shm */
  const uint8_t *bpf;           /* seccomp program (raw sock_filter array), or NULL */
  size_t bpf_len;
  int last_cap;
};

struct rlimits {
  int64_t data, nproc, core; /* < 0: not set */
};

/* A child's frame connection and the write ends of its stdout and stderr pipes; -1 in the zygote's self-test (no daemon). */
struct channels {
  int proto, out, err;
};

/*
 * In a sandbox's init, pid 1 of a new pid namespace, still sharing the
 * zygote's memory (spawn.c, spawn_sandbox):
 *   make its stdout and stderr pipes and connect to the daemon (unless
 *   `nonce` is NULL: the self-test), set the
 *   rlimits, enter new mount, UTS and IPC namespaces and the network
 *   namespace lent in `net` (netns.h; a new one when there is none, or when
 *   a socket is left in it), mount our own
 *   /tmp, /dev/shm, /proc and /dev/pts, cover the rendezvous directory, make
 *   fds 0-3 and *reaper (moved, close-on-exec) the only open ones, setsid,
 *   then start the program (pid 2) and drop every capability, set
 *   no_new_privs:
 *   - forked, with a copy of the zygote's memory as it was when init was
 *     made: the program waits for the daemon's go byte (the daemon has put
 *     it in the sandbox's cgroup), enters a new cgroup namespace, drops every
 *     capability, sets no_new_privs and loads seccomp; the zygote forks the
 *     next sandbox meanwhile;
 *   - or vforked to execute prog->argv at once: then init waits for the go
 *     byte (the daemon places init) before anything else, and enters the
 *     cgroup namespace with the others and loads seccomp for the program.
 * `placed`: init was born in the sandbox's cgroup (clone3), and so was the
 * program: init enters the cgroup namespace with the others, and the go
 * byte comes at once.
 * `join` (a forked program, on cgroup v1, or v2 where clone3 cannot be
 * used): the name of the sandbox's cgroup in each of iso->hierarchies, which
 * the program joins itself (writing its own pid into their cgroup.procs,
 * made writable by our uid) before it covers them and waits for the go
 * byte, which comes at once.
 * Returns the program's pid in init, 0 in a forked program (without *reaper).
 * Any failure: a line on fd 2, exit 70.
 */
/* What the program is: a copy of the zygote (argv NULL: it returns into
 * Python), or a program it executes with argv (node), its signal mask `mask`. */
struct program {
  char *const *argv;
  const sigset_t *mask;
};

struct netns_lease;
pid_t become_sandbox (const struct isolation *iso, const char *nonce, const struct rlimits *lim, int *reaper, const struct program *prog, int placed, const char *join, struct netns_lease *net);

/*
 * In init, once the program is forked: executes the reaper (reaper/reaper.c,
 * from the memfd `image`), which reaps orphans until the program ends and
 * exits as it did. Init's own copy of nothing: it leaves the zygote's memory
 * here. Does not return (exit 70 when the exec fails).
 */
void become_reaper (int image, pid_t program);

#define PAGE 4096UL

/* Pages [start, start + pages * PAGE): to copy (a private writable
 * mapping's), or, RUN_MAP set in `map`, to map (a read-only one's: a file's
 * pages); at the fork, or, RUN_COMPILE set, before the program's first
 * compile of user code (prefault_runs). */
struct page_run {
  uintptr_t start;
  uint32_t pages;
  uint32_t map;
};
#define RUN_MAP 1u
#define RUN_COMPILE 2u
#define RUN_PINNED 4u /* copied by fork itself (pin.h): not prefaulted */

/*
 * In a forked Python program, before any Python runs: copies the zygote's
 * private pages it is going to write anyway, at once (madvise
 * MADV_POPULATE_WRITE, Linux 5.14+; a no-op before). The program would
 * otherwise take a copy-on-write fault per page it writes (reference counts
 * make reads writes), each ~12-25 us on a paravirtualized host against a few
 * us per page copied in one call here (measured). The cost: those pages are
 * the child's own, charged to its cgroup. prefault_runs() copies the pages a
 * probe child was seen to write (dirty_runs), and maps (MADV_POPULATE_READ)
 * the code its call was seen to run (mapped_runs): shared, only the page
 * tables are the child's. prefault_writable(), every private writable page,
 * when there was no probe (4x as many, measured).
 */
void prefault_writable (void);
/* The runs of `runs` whose RUN_COMPILE bit is `phase` (0: at the fork; RUN_COMPILE: before a first compile). */
void prefault_runs (const struct page_run *runs, size_t n, uint32_t phase);
/* Reads a byte of each page of those runs still mapped, before the first call does (touch.c). */
void touch_runs (const struct page_run *runs, size_t n, uint32_t phase);
/* For each run whose `map` bits in `mask` are `want`, in address order, the
 * mapping of /proc/self/maps holding it whole: visit(i, perms, inode, arg);
 * a run no mapping holds whole is not visited (runmaps.c). */
void each_run_mapping (const struct page_run *runs, size_t n, uint32_t mask, uint32_t want,
                       void (*visit) (size_t i, const char *perms, unsigned long inode, void *arg), void *arg);

/* The pages this process has copied from the zygote so far: present, private,
 * writable and mapped by it alone (/proc/self/pagemap), as at most `max` runs,
 * but those in `except` (address order). */
size_t dirty_runs (struct page_run *out, size_t max, const struct page_run *except, size_t nexcept);

/* The pages of its private read-only mappings (libraries' code and constants)
 * this process has mapped so far, but those in `except` (address order): fork
 * does not copy these, each child maps them at its own faults. At most `max`
 * runs, each with `map` set. */
size_t mapped_runs (struct page_run *out, size_t max, const struct page_run *except, size_t nexcept);

#endif
