/* The zygote's state, shared by its loop (serve.c) and the start of each
 * sandbox (spawn.c). */
#ifndef HEARTH_ZYGOTE_H
#define HEARTH_ZYGOTE_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "frames.h"
#include "isolate.h"
#include "netns.h"
#include "probe.h"

#define NONCE_LEN 32
#define INIT_STACK (256 * 1024)

/* A sandbox's init, watched through a pidfd. Not SIGCHLD: the kernel gives
 * it to any thread that does not block it, and in node the platform's
 * threads took it (ignored) before a signalfd saw it (measured: exits went
 * unreported, and a retired zygote waited for its children forever). */
struct child { pid_t pid; int pidfd; int netns; char nonce[NONCE_LEN + 1]; };

struct zygote {
  int ctl, own_pidns;
  int cgroups;     /* CGROUPS_DIR (cgroup v2: the sandboxes' parent; v1: theirs in each hierarchy), or -1 */
  int cloned;      /* v2: children are cloned into their cgroup; 0 once that failed: they join it then */
  int joins;       /* children join their cgroups (v1; v2 without clone3); 0 once one could not be joined: the daemon places them then */
  int reaper;      /* memfd of the reaper (reaper/reaper.c) that each init executes */
  char *init_stack; /* where init runs (one at a time) */
  char *const *node_argv; /* NULL: no node children */
  sigset_t old_mask;
  struct isolation iso;
  struct netns_pool nets;
  struct netns_lease net; /* what the next sandbox's init is lent (netns.h) */
  struct child *children;
  struct pollfd *polls; /* the channel, then each child's pidfd */
  size_t nchildren, cap;
  struct page_run runs[MAX_RUNS]; /* what a probe child copied: each child prefaults these */
  size_t nruns;
  uint8_t in[2 * FRAME_MAX];
  size_t inlen;
};

#define CGROUP_NAME_MAX 64

/* cgroups.c: whether `v` is a sandbox cgroup's name (one path component);
 * whether a child may join `name` itself in every hierarchy (0 also ends
 * joining: the daemon places children then); the hierarchies in
 * CGROUPS_DIR, returning whether it is cgroup v2's. */
int valid_cgroup (struct value v);
int joinable_cgroup (struct zygote *z, const char *name);
int find_hierarchies (struct zygote *z);

/* One frame on the control channel; 0, or -1 when it cannot be written. */
int send_frame (struct zygote *z, struct out *o);

/* The `forked` frame: `pid` is init's in the zygote's namespace; `placed`:
 * born in its cgroup (clone3) or joining it itself (v1; v2 without clone3), else `program` says
 * whom the daemon places there: init's only child (a forked program, which
 * waits for that on its own), or init itself. */
int tell_forked (struct zygote *z, const char *nonce, pid_t pid, int program, int placed);

/*
 * A sandbox: init is pid 1 of a new pid namespace, sharing our memory while
 * it sets the sandbox up, forks the program and executes the reaper (we
 * wait). With `cgroup_fd` (>= 0), init is born in that cgroup (clone3), and
 * so is everything after it; *placed says whether it was. With `join` (v1; v2 without clone3),
 * the program joins that cgroup itself (isolate.h). `err_fd` (>= 0):
 * init's stderr (the self-test's pipe); `node`: the program executes node.
 * Returns init's pid, or -1 with errno; returns 0 in the program.
 */
pid_t spawn_sandbox (struct zygote *z, const char *nonce, const struct rlimits *lim, int err_fd, int node, int cgroup_fd, const char *join, int *placed);

#endif
