/* The zygote's loop: `fork` and `kill` frames on the control channel,
 * `forked` and `exited` back (runtimes/PROTOCOL.md, "Zygote"). It runs in C,
 * called once from a zygote with its interpreter loaded (python/zygote.py,
 * node/zygote.mjs through node/addon.c here): between two forks the zygote
 * touches a few pages of its own instead of the interpreter's, and each of
 * those pages is one copy-on-write fault after every fork.
 *
 * A child's program is a copy of the zygote that returns into its
 * interpreter; a node child of the python zygote (where the node zygote
 * cannot run), just as isolated, executes node instead (`node_argv`), vforked
 * by its init.
 *
 * hz_serve() returns 0 in a forked program (which then runs the bootstrap),
 * 1 in the zygote when the daemon closes the channel, 2 when the self-test
 * failed (reported as `unavailable`), 3 in the probe child (probe.c), -1 on
 * any other error (on fd 2). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hugetext.h"
#include "interp.h"
#include "pin.h"
#include "zygote.h"

#define IS_PROGRAM 0x70726f67 /* returned up the zygote's call stack in a forked program */

int send_frame (struct zygote *z, struct out *o) {
  size_t n = out_finish(o), done = 0;
  if (n == 0) return -1;
  while (done < n) {
    ssize_t w = write(z->ctl, o->buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    done += (size_t)w;
  }
  return 0;
}

int tell_forked (struct zygote *z, const char *nonce, pid_t pid, int program, int placed) {
  struct out o;
  out_map(&o, 5);
  out_cstr(&o, "t"); out_cstr(&o, "forked");
  out_cstr(&o, "nonce"); out_cstr(&o, nonce);
  out_cstr(&o, "pid"); out_int(&o, pid);
  out_cstr(&o, "program"); out_bool(&o, program);
  out_cstr(&o, "placed"); out_bool(&o, placed);
  return send_frame(z, &o);
}

/* The zygote this process serves, or, in a program, the copy it was forked from. */
static struct zygote *serving;
/* In a program: the pages of a first compile are copied (hz_prefault_compile). */
static int compile_prefaulted;

static int valid_nonce (struct value v) {
  if (v.kind != K_STR || v.len != NONCE_LEN) return 0;
  for (size_t i = 0; i < v.len; i++) {
    if (!((v.str[i] >= '0' && v.str[i] <= '9') || (v.str[i] >= 'a' && v.str[i] <= 'f'))) return 0;
  }
  return 1;
}

static int64_t limit_of (struct value rl, const char *key) {
  if (rl.kind != K_MAP) return -1;
  struct value v = map_get(rl.map, rl.map_len, key);
  return v.kind == K_INT && v.i >= 0 ? v.i : -1;
}

static int send_exited (struct zygote *z, const char *nonce, int status) {
  struct out o;
  out_map(&o, 4);
  out_cstr(&o, "t"); out_cstr(&o, "exited");
  out_cstr(&o, "nonce"); out_cstr(&o, nonce);
  out_cstr(&o, "code");
  if (WIFEXITED(status)) out_int(&o, WEXITSTATUS(status)); else out_nil(&o);
  out_cstr(&o, "signal");
  if (WIFSIGNALED(status)) out_int(&o, WTERMSIG(status)); else out_nil(&o);
  return send_frame(z, &o);
}

/* A fork frame's switch: present as 1 (protocol.ts, ForkCommand). */
static int flag_set (const uint8_t *msg, size_t len, const char *key) {
  struct value v = map_get(msg, len, key);
  return v.kind == K_INT && v.i == 1;
}

static int on_fork (struct zygote *z, const uint8_t *msg, size_t len) {
  struct value nonce = map_get(msg, len, "nonce");
  if (!valid_nonce(nonce)) return -1;
  struct value rl = map_get(msg, len, "rlimits");
  /* A program of the zygote's own runtime is a copy of it; node, asked of a
   * python zygote, is executed. */
  struct value runtime = map_get(msg, len, "runtime");
  int node = runtime.kind == K_STR && !value_is(runtime, hz_interp->runtime);
  if (node && (!value_is(runtime, "node") || z->node_argv == NULL)) return -1;
  struct rlimits lim = { limit_of(rl, "data"), limit_of(rl, "nproc"), limit_of(rl, "core") };
  char id[NONCE_LEN + 1];
  memcpy(id, nonce.str, NONCE_LEN);
  id[NONCE_LEN] = 0;
  if (z->nchildren == z->cap) {
    size_t cap = z->cap == 0 ? 64 : 2 * z->cap;
    struct child *grown = realloc(z->children, cap * sizeof *grown);
    if (grown == NULL) return -1;
    z->children = grown;
    struct pollfd *polls = realloc(z->polls, (cap + 1) * sizeof *polls);
    if (polls == NULL) return -1;
    z->polls = polls;
    z->cap = cap;
  }
  int cgroup_fd = -1, placed = 0;
  struct value cgroup = map_get(msg, len, "cgroup");
  char name[CGROUP_NAME_MAX + 1] = "";
  if (z->cgroups >= 0 && valid_cgroup(cgroup)) {
    memcpy(name, cgroup.str, cgroup.len);
    name[cgroup.len] = 0;
  }
  const char *join = z->joins && !node && name[0] != 0 && joinable_cgroup(z, name) ? name : NULL;
  if (z->cloned && name[0] != 0) {
    cgroup_fd = openat(z->cgroups, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) {
      fprintf(stderr, "hearth zygote: open the sandbox cgroup %s: %s; the daemon places each child instead\n", name, strerror(errno));
      z->cloned = 0;
    }
  }
  /* the daemon expects a compile (most fresh sandboxes' first calls compiled lately): its pages at the fork too */
  int precompile = flag_set(msg, len, "precompile");
  /* a spare, no call waiting for it: it reads the pages its first call will
   * write before its `ready` (touch.c), off that call's path */
  int touch = flag_set(msg, len, "touch");
  z->net = (struct netns_lease){ netns_take(&z->nets), 0 };
  pid_t pid = spawn_sandbox(z, id, &lim, -1, node, cgroup_fd, join, &placed);
  int err = errno;
  if (cgroup_fd >= 0) close(cgroup_fd);
  errno = err;
  struct out o;
  if (pid < 0) {
    netns_give(&z->nets, z->net.fd);
    z->net.fd = -1;
    out_map(&o, 3);
    out_cstr(&o, "t"); out_cstr(&o, "failed");
    out_cstr(&o, "nonce"); out_cstr(&o, id);
    out_cstr(&o, "message"); out_cstr(&o, strerror(errno));
    return send_frame(z, &o);
  }
  if (pid == 0) { /* a copy of the zygote (an executed program went from init) */
    sigprocmask(SIG_SETMASK, &z->old_mask, NULL);
    if (z->nruns > 0) {
      prefault_runs(z->runs, z->nruns, 0);
      if (touch) touch_runs(z->runs, z->nruns, 0);
      if (precompile) {
        prefault_runs(z->runs, z->nruns, RUN_COMPILE);
        if (touch) touch_runs(z->runs, z->nruns, RUN_COMPILE);
        compile_prefaulted = 1;
      }
    } else if (hz_interp->prefault_all) prefault_writable();
    return IS_PROGRAM;
  }
  /* init, which shares our memory, says whether it entered the lent
   * namespace; one it found a socket in, or could not enter, is not lent again */
  int netns = z->net.entered ? z->net.fd : -1;
  if (netns < 0 && z->net.fd >= 0) close(z->net.fd);
  z->net.fd = -1;
  /* The init of an executed program told the daemon itself; a forked one's
   * program waits for its go byte while we go on. */
  if (!node && tell_forked(z, id, pid, 1, placed || join != NULL) != 0) return -1;
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) { /* it could not be watched: it ends now */
    int status;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    netns_give(&z->nets, netns);
    return send_exited(z, id, status);
  }
  z->children[z->nchildren].pid = pid;
  z->children[z->nchildren].pidfd = pidfd;
  z->children[z->nchildren].netns = netns;
  memcpy(z->children[z->nchildren].nonce, id, sizeof id);
  z->nchildren++;
  return 0;
}

/* SIGKILL for a child we hold unreaped: its pid cannot have been reused. */
static void on_kill (struct zygote *z, const uint8_t *msg, size_t len) {
  struct value nonce = map_get(msg, len, "nonce");
  if (!valid_nonce(nonce)) return;
  for (size_t i = 0; i < z->nchildren; i++) {
    if (memcmp(z->children[i].nonce, nonce.str, NONCE_LEN) == 0) kill(z->children[i].pid, SIGKILL);
  }
}

/* A child has exited (its pidfd is readable): reaped, and reported. */
static int reap (struct zygote *z, size_t i) {
  int status;
  pid_t pid = waitpid(z->children[i].pid, &status, WNOHANG);
  if (pid == 0) return 0;
  if (pid < 0) status = SIGKILL; /* cannot happen: we hold it unreaped */
  struct child gone = z->children[i];
  close(gone.pidfd);
  netns_give(&z->nets, gone.netns); /* its processes are gone: init was their pid 1 */
  z->children[i] = z->children[--z->nchildren];
  return send_exited(z, gone.nonce, status);
}

/* The daemon asks whether we still answer (forker.ts): a pong with its id. */
static int on_ping (struct zygote *z, const uint8_t *msg, size_t len) {
  struct value id = map_get(msg, len, "id");
  struct out o;
  out_map(&o, 2);
  out_cstr(&o, "t"); out_cstr(&o, "pong");
  out_cstr(&o, "id"); out_int(&o, id.kind == K_INT ? id.i : 0);
  return send_frame(z, &o);
}

/* Frames read so far: handles every complete one. */
static int on_input (struct zygote *z) {
  ssize_t n = read(z->ctl, z->in + z->inlen, sizeof z->in - z->inlen);
  if (n < 0 && errno == EINTR) return 0;
  if (n <= 0) return 1; /* the daemon closed the channel: retire */
  z->inlen += (size_t)n;
  size_t at = 0;
  while (z->inlen - at >= 4) {
    const uint8_t *p = z->in + at;
    size_t size = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (size > FRAME_MAX) { fprintf(stderr, "hearth zygote: frame of %zu bytes\n", size); return -1; }
    if (z->inlen - at < 4 + size) break;
    struct value t = map_get(p + 4, size, "t");
    int rc = 0;
    if (value_is(t, "fork")) rc = on_fork(z, p + 4, size);
    else if (value_is(t, "kill")) on_kill(z, p + 4, size);
    else if (value_is(t, "ping")) rc = on_ping(z, p + 4, size);
    if (rc != 0) return rc;
    at += 4 + size;
  }
  memmove(z->in, z->in + at, z->inlen - at);
  z->inlen -= at;
  return 0;
}

/* One child through every isolation step before we say ready: where the host
 * forbids them (no capabilities in user namespaces), the daemon hears
 * `unavailable` with the reason and spawns sandboxes instead. */
static int self_test (struct zygote *z, char *reason, size_t size) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  int placed;
  pid_t pid = spawn_sandbox(z, NULL, NULL, pipefd[1], 0, -1, NULL, &placed);
  if (pid == 0) _exit(0); /* the program: everything held */
  close(pipefd[1]);
  if (pid < 0) {
    snprintf(reason, size, "cannot fork into a new pid namespace: %s", strerror(errno));
    close(pipefd[0]);
    return 1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  ssize_t n = read(pipefd[0], reason, size - 1);
  close(pipefd[0]);
  reason[n > 0 ? n : 0] = 0;
  if (n > 0 && reason[n - 1] == '\n') reason[n - 1] = 0;
  if (status == 0) return 0;
  if (reason[0] == 0) snprintf(reason, size, "self-test child ended with status %d", status);
  return 1;
}

static int last_cap (void) {
  int cap = 40;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  if (f != NULL) {
    if (fscanf(f, "%d", &cap) != 1) cap = 40;
    fclose(f);
  }
  return cap;
}

/* A setting the daemon passes in the zygote's environment: on unless "0". */
static int turned_on (const char *name) {
  const char *value = getenv(name);
  return value == NULL || strcmp(value, "0") != 0;
}

void hz_prefault_compile (void) {
  if (serving != NULL && !compile_prefaulted) prefault_runs(serving->runs, serving->nruns, RUN_COMPILE);
  compile_prefaulted = 1;
}

int hz_serve (int ctl, int reaper, const char *rendezvous_dir, const char *tmp_options, const uint8_t *bpf, size_t bpf_len, char *const *node_argv) {
  static struct zygote z;
  serving = &z;
  z.ctl = ctl;
  z.reaper = reaper;
  z.init_stack = mmap(NULL, INIT_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (z.init_stack == MAP_FAILED) { perror("hearth zygote: init stack"); return -1; }
  z.node_argv = node_argv != NULL && node_argv[0] != NULL ? node_argv : NULL;
  z.iso.rendezvous_dir = rendezvous_dir;
  snprintf(z.iso.rendezvous_sock, sizeof z.iso.rendezvous_sock, "%s/sock", rendezvous_dir);
  z.iso.tmp_options = tmp_options;
  z.iso.bpf = bpf;
  z.iso.bpf_len = bpf_len;
  z.iso.last_cap = last_cap();
  /* The sandboxes' cgroups, when the daemon bound them here: v2's parent (a
   * delegated subtree), each forked into its cgroup (clone3); or v1's parent
   * in each hierarchy, each program joining its own. */
  z.cgroups = open(CGROUPS_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
  /* v2: children are cloned into their cgroup (clone3), unless the daemon
   * said not to (HEARTH_CGROUP_CLONE=0: its tests, standing for hosts where
   * clone3 is refused) or it fails: then they join it, as on v1. */
  int v2 = 0;
  if (z.cgroups >= 0) v2 = find_hierarchies(&z);
  z.cloned = v2 && turned_on("HEARTH_CGROUP_CLONE");
  z.joins = z.iso.nhierarchies > 0 && !z.cloned;
  z.iso.cgroups_dir = z.cgroups >= 0 ? CGROUPS_DIR : NULL;
  z.net.fd = -1; /* the self-test's init makes its own */
  z.own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (z.own_pidns < 0) { perror("hearth zygote"); return -1; }
  if (!hz_interp_ready()) { fputs("hearth zygote: the interpreter has no PyOS_BeforeFork\n", stderr); return -1; }
  /* Before the probe, which then finds no code for children to map. Off
   * with HEARTH_HUGE_TEXT=0 (the daemon's ZYGOTE_HUGE_TEXT=off). */
  char huge_reason[192] = "off (ZYGOTE_HUGE_TEXT=off)";
  size_t huge_pages = 0;
  if (turned_on("HEARTH_HUGE_TEXT")) {
    if (hz_interp->code != NULL) huge_pages = huge_text((uintptr_t)hz_interp->code, huge_reason, sizeof huge_reason);
    else snprintf(huge_reason, sizeof huge_reason, "no function of the runtime known");
  }
  if (learn_pages(z.ctl, z.own_pidns, z.runs, MAX_RUNS, &z.nruns)) return IS_PROBE;
  /* Off with HEARTH_PIN_PAGES=0 (the daemon's ZYGOTE_PIN_PAGES=off). */
  char pin_reason[192] = "off (ZYGOTE_PIN_PAGES=off)";
  size_t pinned = 0;
  if (turned_on("HEARTH_PIN_PAGES")) pinned = pin_runs(z.runs, z.nruns, pin_reason, sizeof pin_reason);
  sigset_t chld; /* exits are seen through pidfds: SIGCHLD never interrupts the loop */
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, &z.old_mask) != 0) { perror("hearth zygote"); return -1; }
  z.polls = malloc(sizeof *z.polls);
  if (z.polls == NULL) { perror("hearth zygote"); return -1; }

  char reason[512];
  int tested = self_test(&z, reason, sizeof reason);
  struct out o;
  if (tested != 0) {
    out_map(&o, 2);
    out_cstr(&o, "t"); out_cstr(&o, "unavailable");
    out_cstr(&o, "message"); out_cstr(&o, tested < 0 ? strerror(errno) : reason);
    send_frame(&z, &o);
    return 2;
  }
  netns_pool_open(&z.nets);
  out_map(&o, 11);
  out_cstr(&o, "t"); out_cstr(&o, "ready");
  out_cstr(&o, "pinned"); out_int(&o, (int64_t)pinned);
  out_cstr(&o, "pinReason"); out_cstr(&o, pinned > 0 ? "" : pin_reason);
  out_cstr(&o, "hugeText"); out_int(&o, (int64_t)huge_pages);
  out_cstr(&o, "hugeTextReason"); out_cstr(&o, huge_pages > 0 ? "" : huge_reason);
  out_cstr(&o, "cgroups"); out_bool(&o, z.cgroups >= 0);
  out_cstr(&o, "runtime"); out_cstr(&o, hz_interp->runtime);
  out_cstr(&o, "pid"); out_int(&o, getpid());
  size_t pages[4] = { 0, 0, 0, 0 };
  for (size_t i = 0; i < z.nruns; i++) pages[z.runs[i].map & (RUN_MAP | RUN_COMPILE)] += z.runs[i].pages;
  out_cstr(&o, "prefault"); out_int(&o, (int64_t)pages[0]);
  out_cstr(&o, "premap"); out_int(&o, (int64_t)pages[RUN_MAP]);
  out_cstr(&o, "precompile"); out_int(&o, (int64_t)(pages[RUN_COMPILE] + pages[RUN_COMPILE | RUN_MAP]));
  if (send_frame(&z, &o) != 0) return -1;

  for (;;) {
    nfds_t n = z.nchildren + 1;
    z.polls[0] = (struct pollfd){ z.ctl, POLLIN, 0 };
    for (size_t i = 0; i < z.nchildren; i++) z.polls[i + 1] = (struct pollfd){ z.children[i].pidfd, POLLIN, 0 };
    if (poll(z.polls, n, -1) < 0) {
      if (errno == EINTR) continue;
      perror("hearth zygote: poll");
      return -1;
    }
    /* from the last: reap() moves the last child into the slot it empties */
    for (size_t i = n - 1; i > 0; i--) {
      if (z.polls[i].revents != 0 && reap(&z, i - 1) != 0) return -1;
    }
    if (z.polls[0].revents != 0) {
      int rc = on_input(&z);
      if (rc == IS_PROGRAM) return 0;
      if (rc != 0) return rc;
    }
  }
}
