/* Per-child hardening of a forked sandbox (isolate.h). Plain system calls in
 * the forked process: no interpreter code runs here, so the child copies
 * almost none of the zygote's memory (a copy-on-write fault is the dominant
 * cost of a fork on a paravirtualized host, where each one flushes TLBs). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "isolate.h"
#include "netns.h"

/* Mount, UTS, IPC and network namespaces of its own (its pid namespace
 * comes from the zygote's fork; the network namespace may be one an ended
 * sandbox left, lent by the zygote: netns.c): no view of a sibling's files,
 * SysV IPC, processes or abstract sockets, no network at all. The user namespace stays
 * the zygote's, whose only uid is the sandbox uid. A cgroup namespace too,
 * entered once in the sandbox's cgroup (by init when it was born there, else
 * by the program once the daemon has placed it), so that cgroup is the root
 * of what it sees. */
#define NAMESPACES (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET)

static __attribute__((noreturn)) void fail (const char *step) {
  int e = errno;
  char line[256];
  int n = snprintf(line, sizeof line, "hearth zygote child: %s: %s\n", step, strerror(e));
  if (n > 0) (void)!write(2, line, (size_t)n);
  _exit(EXIT_SETUP_FAILED);
}

static void check (int rc, const char *step) {
  if (rc != 0) fail(step);
}

static int connect_hello (const struct isolation *iso, const char *nonce) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  char hello[64];
  int n = snprintf(hello, sizeof hello, "HEARTH %s proto\n", nonce);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  memcpy(addr.sun_path, iso->rendezvous_sock, strlen(iso->rendezvous_sock) + 1);
  check(connect(fd, (struct sockaddr *)&addr, sizeof addr), "connect");
  if (n <= 0 || write(fd, hello, (size_t)n) != n) fail("hello");
  return fd;
}

/* Raw stdout (`which` 1) or stderr (2): the write end of a named pipe,
 * <rendezvous>/pipes/<nonce>-<which>, that the daemon opens for reading when
 * our hello arrives, and unlinks. A pipe, not a socket, so that code can
 * open /dev/stdout and /dev/stderr (a socket's /proc/self/fd link cannot be
 * opened: ENXIO); and the daemon reads it as it reads a socket: a write is
 * queued at its end at once. Opened for writing while a reader of our own
 * holds it open (an open for writing alone waits for a reader), which then
 * goes: the program's fds 1 and 2 are write ends only, as a pipe's are. */
static int make_pipe (const struct isolation *iso, const char *nonce, int which) {
  char path[192];
  snprintf(path, sizeof path, "%s/pipes/%s-%d", iso->rendezvous_dir, nonce, which);
  check(mkfifo(path, 0600), "mkfifo");
  int reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (reader < 0) fail("open a pipe");
  int fd = open(path, O_WRONLY);
  if (fd < 0) fail("open a pipe");
  close(reader);
  return fd;
}

static void set_rlimit (int resource, int64_t value, const char *step) {
  if (value < 0) return;
  struct rlimit r = { (rlim_t)value, (rlim_t)value };
  check(setrlimit(resource, &r), step);
}

/* An empty read-only tmpfs over `dir`. */
static int cover (const char *dir) {
  return mount("none", dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=2,mode=0555");
}

/* `cover_cgroups` 0: the program covers them once it has joined its own (join_cgroups). */
static void setup_filesystem (const struct isolation *iso, int cover_cgroups) {
  check(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, iso->tmp_options), "mount /tmp");
  /* POSIX shm and semaphores (multiprocessing): private, so siblings share
   * no shm objects; /dev itself stays read-only. */
  check(mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, iso->tmp_options), "mount /dev/shm");
  check(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount /proc");
  /* The zygote's devpts would let siblings open each other's terminals. */
  check(mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"), "mount /dev/pts");
  /* The socket we came through: covered by an empty read-only mount, so
   * nothing we run can open another connection to the daemon (nor, without
   * capabilities and with seccomp, remove the cover). Not unmounted: an
   * unmount waits for an expedited RCU grace period, queued behind every
   * sandbox's exit, while the zygote waits for us (measured under run-now
   * load: 14 stack samples of init in that wait per 131 of the zygote
   * waiting for init). */
  check(cover(iso->rendezvous_dir), "cover rendezvous");
  if (iso->cgroups_dir != NULL && cover_cgroups) check(cover(iso->cgroups_dir), "cover the sandbox cgroups");
  check(chdir("/tmp"), "chdir /tmp");
}

/* The program moves itself into the sandbox's cgroup `name` in each
 * hierarchy ("0" is the writer), then covers them all. cgroup v1 lets a
 * process whose uid is the task's move it there once it may write the
 * cgroup.procs file; the daemon gave those of each sandbox to our uid
 * (limits/join-v1.ts). v2 (where clone3 cannot be used) checks the write as
 * it checks a clone into the cgroup (limits/fork-into.ts). */
static void join_cgroups (const struct isolation *iso, const char *name) {
  for (size_t i = 0; i < iso->nhierarchies; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s/cgroup.procs", iso->cgroups_dir, iso->hierarchies[i], name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("open a sandbox cgroup's cgroup.procs");
    if (write(fd, "0", 1) != 1) fail("join the sandbox cgroup");
    close(fd);
  }
  check(cover(iso->cgroups_dir), "cover the sandbox cgroups");
}

/* Closes fds [first, last]: close_range(2), or one by one where it is missing (before Linux 5.9). */
static void close_from (unsigned first, unsigned last) {
  if (first > last || syscall(SYS_close_range, first, last, 0) == 0) return;
  for (unsigned fd = first; fd <= last && fd < 1024; fd++) close((int)fd);
}

/* fds 1, 2, 3 = stdout, stderr, frames (when connected); 0 = /dev/null; and
 * *keep (the reaper's image), moved above them, close-on-exec; nothing else. */
static void arrange_fds (const struct channels *ch, int *keep) {
  int null = open("/dev/null", O_RDWR);
  if (null < 0) fail("open /dev/null");
  /* Above 3 first, so that no dup2 overwrites a source still to be moved. */
  int want[4] = { null, ch->out, ch->err, ch->proto };
  for (int i = 0; i < 4; i++) {
    if (want[i] < 0) continue;
    want[i] = fcntl(want[i], F_DUPFD, 10);
    if (want[i] < 0) fail("dup");
  }
  for (int i = 0; i < 4; i++) {
    if (want[i] >= 0 && dup2(want[i], i) != i) fail("dup2");
  }
  int first = ch->proto < 0 ? 3 : 4;
  int kept = fcntl(*keep, F_DUPFD_CLOEXEC, first);
  if (kept < 0) fail("dup reaper");
  close_from((unsigned)first, (unsigned)kept - 1);
  close_from((unsigned)kept + 1, ~0U);
  *keep = kept;
}

/* Every capability gone, no_new_privs; and, with `filter`, the seccomp
 * filter (a forked program loads it, not the init that only executes the
 * reaper: each load compiles the filter anew; two loads per sandbox were
 * ~2 % of the machine's CPU under a run-now load, by perf). */
static void drop_privileges (const struct isolation *iso, int filter) {
  for (int cap = 0; cap <= iso->last_cap; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) fail("PR_CAPBSET_DROP");
  }
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "PR_CAP_AMBIENT_CLEAR_ALL");
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  check((int)syscall(SYS_capset, &header, data), "capset");
  /* bwrap set no_new_privs on the zygote already, so we inherit it; set it
   * here anyway: the seccomp filter below depends on it. */
  check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
  if (filter && iso->bpf != NULL && iso->bpf_len > 0) {
    struct sock_fprog prog = { (unsigned short)(iso->bpf_len / sizeof(struct sock_filter)), (struct sock_filter *)iso->bpf };
    check(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0), "seccomp");
  }
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

/* Each private mapping of ours, writable or (`writable` 0) not: `visit(start, end, arg)`. */
static void each_private (int writable, void (*visit) (uintptr_t, uintptr_t, void *), void *arg) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return;
  char line[512];
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long start, end;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3) continue;
    if ((perms[1] == 'w') != writable || perms[3] != 'p') continue;
    visit(start, end, arg);
  }
  fclose(maps);
}

/* Copies (`map` 0) or maps `bytes` of our pages at `start` at once. Errors
 * change nothing: an older kernel (EINVAL), a memory limit (ENOMEM) mean the
 * pages are faulted in when used, after all. */
static void populate (uintptr_t start, size_t bytes, uint32_t map) {
  (void)madvise((void *)start, bytes, map ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
}

static void copy_all (uintptr_t start, uintptr_t end, void *arg) {
  (void)arg;
  populate(start, end - start, 0);
}

void prefault_writable (void) {
  each_private(1, copy_all, NULL);
}

void prefault_runs (const struct page_run *runs, size_t n, uint32_t phase) {
  for (size_t i = 0; i < n; i++) {
    if ((runs[i].map & RUN_PINNED) == 0 && (runs[i].map & RUN_COMPILE) == phase) populate(runs[i].start, runs[i].pages * PAGE, runs[i].map & RUN_MAP);
  }
}

struct learning {
  int pagemap;
  struct page_run *out;
  size_t n, max;
  uint64_t want;      /* the pagemap bits a page must have */
  uint32_t map;       /* what its runs are (struct page_run) */
  const struct page_run *except; /* pages not to collect, in address order */
  size_t nexcept;
};

#define PM_PRESENT (1ULL << 63)
#define PM_EXCLUSIVE (1ULL << 56) /* mapped by this process alone: copied, not shared with the zygote */

static void collect (uintptr_t start, uintptr_t end, void *arg) {
  struct learning *l = arg;
  uint64_t entries[512];
  for (uintptr_t at = start; at < end && l->n < l->max;) {
    size_t want = (end - at) / PAGE < 512 ? (end - at) / PAGE : 512;
    ssize_t got = pread(l->pagemap, entries, want * sizeof *entries, (off_t)(at / PAGE * sizeof *entries));
    if (got <= 0) return;
    for (size_t i = 0; i < (size_t)got / sizeof *entries; i++, at += PAGE) {
      if ((entries[i] & l->want) != l->want) continue;
      while (l->nexcept > 0 && l->except->start + l->except->pages * PAGE <= at) { l->except++; l->nexcept--; }
      if (l->nexcept > 0 && l->except->start <= at) continue;
      struct page_run *last = l->n > 0 ? &l->out[l->n - 1] : NULL;
      if (last != NULL && last->map == l->map && last->start + last->pages * PAGE == at) last->pages++;
      else if (l->n < l->max) l->out[l->n++] = (struct page_run){ at, 1, l->map };
    }
  }
}

/* The pages present in our private mappings, writable (and, then, mapped by
 * us alone: copied) or not, as runs to copy or to map. */
static size_t learn (int writable, struct page_run *out, size_t max, const struct page_run *except, size_t nexcept) {
  uint64_t want = writable ? PM_PRESENT | PM_EXCLUSIVE : PM_PRESENT;
  struct learning l = { open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), out, 0, max, want, !writable, except, nexcept };
  if (l.pagemap < 0) return 0;
  each_private(writable, collect, &l);
  close(l.pagemap);
  return l.n;
}

size_t dirty_runs (struct page_run *out, size_t max, const struct page_run *except, size_t nexcept) {
  return learn(1, out, max, except, nexcept);
}

size_t mapped_runs (struct page_run *out, size_t max, const struct page_run *except, size_t nexcept) {
  return learn(0, out, max, except, nexcept);
}

void become_reaper (int image, pid_t program) {
  for (int fd = 0; fd <= 3; fd++) close(fd); /* the program alone holds the channels */
  char pid[16];
  snprintf(pid, sizeof pid, "%d", (int)program);
  char *const argv[] = { "hearth-reaper", pid, NULL };
  char *const envp[] = { NULL };
  syscall(SYS_execveat, image, "", argv, envp, AT_EMPTY_PATH);
  fail("exec the reaper"); /* init's end takes the program with it (its pid namespace goes) */
}

/* A program that executes another one (node): vfork()ed, so that it never
 * copies the zygote's page tables only to drop them at its execve (the
 * reaper's fd is close-on-exec). */
static pid_t exec_program (char *const *argv, const sigset_t *mask) {
  pid_t pid = vfork();
  if (pid != 0) return pid;
  sigprocmask(SIG_SETMASK, mask, NULL);
  execve(argv[0], argv, environ);
  char step[128];
  snprintf(step, sizeof step, "exec %s", argv[0]);
  fail(step);
}

/* The daemon's go byte on `fd`: it has placed us in the sandbox's cgroup. */
static void await_placement (int fd) {
  char go = 0;
  if (read(fd, &go, 1) != 1 || go != 'g') _exit(EXIT_SETUP_FAILED); /* the daemon gave up on us */
}

pid_t become_sandbox (const struct isolation *iso, const char *nonce, const struct rlimits *lim, int *reaper, const struct program *prog, int placed, const char *join, struct netns_lease *net) {
  /* An executed program cannot wait for its placement before it runs: init
   * waits instead, holding the zygote (which waits for init) that long. */
  int executed = prog->argv != NULL;
  struct channels ch = { -1, -1, -1 };
  if (nonce != NULL) {
    ch.out = make_pipe(iso, nonce, 1);
    ch.err = make_pipe(iso, nonce, 2);
    ch.proto = connect_hello(iso, nonce);
    if (executed) await_placement(ch.proto);
  }
  if (lim != NULL) {
    set_rlimit(RLIMIT_DATA, lim->data, "RLIMIT_DATA");
    set_rlimit(RLIMIT_NPROC, lim->nproc, "RLIMIT_NPROC");
    set_rlimit(RLIMIT_CORE, lim->core, "RLIMIT_CORE");
  }
  int namespaces = executed || placed ? NAMESPACES | CLONE_NEWCGROUP : NAMESPACES;
  if (net != NULL && netns_enter(net)) namespaces &= ~CLONE_NEWNET;
  check(unshare(namespaces), "unshare");
  if (executed) join = NULL;
  setup_filesystem(iso, join == NULL);
  arrange_fds(&ch, reaper);
  check(setsid() < 0 ? -1 : 0, "setsid"); /* no controlling terminal to push input into (TIOCSTI) */
  if (executed) {
    drop_privileges(iso, 1);
    pid_t program = exec_program(prog->argv, prog->mask);
    if (program < 0) fail("vfork");
    return program;
  }
  pid_t program = fork();
  if (program < 0) fail("fork");
  if (program > 0) {
    drop_privileges(iso, 0);
    return program;
  }
  /* The program: unless born in its cgroup with init, it joins its cgroups
   * itself (v1; v2 without clone3), or the daemon places it (not init) there, while the zygote
   * forks the next sandbox; then the daemon lets it go. Nothing of it runs
   * before: its prefault and everything after is charged to the sandbox. */
  close(*reaper);
  if (join != NULL) join_cgroups(iso, join);
  if (nonce != NULL) await_placement(3);
  if (!placed) check(unshare(CLONE_NEWCGROUP), "unshare cgroup");
  drop_privileges(iso, 1);
  return 0;
}
