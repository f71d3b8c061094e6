/* The start of each sandbox (zygote.h, spawn_sandbox): its init, on a stack
 * of its own in the zygote's memory, sets the sandbox up (isolate.c), forks
 * the program, which resumes where the zygote called spawn_sandbox, and
 * becomes the reaper. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clone3.h"
#include "interp.h"
#include "zygote.h"

/* In a child: nothing of the zygote's loop stays open. */
static void leave_zygote (struct zygote *z) {
  close(z->ctl);
  close(z->own_pidns);
  if (z->cgroups >= 0) close(z->cgroups);
}

/* In the init of an executed program, which waits for its placement while
 * the zygote waits for it (CLONE_VFORK): its pid as the zygote sees it (its
 * /proc is the zygote's still). */
static int tell_forked_init (struct zygote *z, const char *nonce, int placed) {
  char self[32];
  ssize_t n = readlink("/proc/self", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = 0;
  return tell_forked(z, nonce, atoi(self), 0, placed);
}

/* How a sandbox's init starts: what it is for, and where its stderr goes. */
struct birth {
  struct zygote *z;
  const char *nonce; /* NULL: the self-test */
  const struct rlimits *lim;
  int err_fd;        /* the self-test's pipe, or -1 */
  int node;          /* the program executes node */
  int placed;        /* init is born in the sandbox's cgroup */
  const char *join;  /* the cgroup the program joins itself (v1; v2 without clone3), or NULL */
};

/* Where a program resumes in its own copy of the zygote: spawn_sandbox's
 * frame, frozen there while init ran (a __builtin_setjmp buffer). The
 * builtins, not setjmp(3): glibc's fortified longjmp refuses a jump from
 * init's stack to the zygote's. A function holding a __builtin_setjmp
 * receiver saves every callee-saved register in its prologue (checked in the
 * disassembly), so its callers' registers come back from the copied stack.
 * The program is made by glibc's fork() in init, which sets the tid glibc
 * keeps for the thread (a raw clone would leave the zygote's there). */
static void *resume_point[5];

/* Init, on its own stack in the zygote's memory: sets the sandbox up, forks
 * the program (which resumes at resume_point), and becomes the reaper. */
static int init_main (void *arg) {
  struct birth *b = arg;
  struct zygote *z = b->z;
  if (b->node && b->nonce != NULL && tell_forked_init(z, b->nonce, b->placed) != 0) _exit(EXIT_SETUP_FAILED);
  int reaper = z->reaper;
  leave_zygote(z);
  if (b->err_fd >= 0) dup2(b->err_fd, 2);
  struct program prog = { b->node ? z->node_argv : NULL, &z->old_mask };
  pid_t program = become_sandbox(&z->iso, b->nonce, b->lim, &reaper, &prog, b->placed, b->join, &z->net);
  if (program == 0) __builtin_longjmp(resume_point, 1);
  become_reaper(reaper, program);
  return EXIT_SETUP_FAILED;
}

/*
 * A sandbox: init is pid 1 of a new pid namespace (unshare(CLONE_NEWPID)
 * applies to our next child only; setns() back lets the one after get a fresh
 * namespace too). Init shares our memory (CLONE_VM) instead of copying it, and
 * we wait (CLONE_VFORK) until it has forked the program and executed the
 * reaper: a sandbox costs one copy of the zygote's page tables, not two.
 * With `cgroup_fd` (>= 0), init is born in that cgroup (clone3), and so is
 * everything after it; *placed says whether it was. With `join` (v1; v2 without clone3),
 * the program joins that cgroup itself (isolate.h).
 * Returns init's pid, or -1 with errno; returns 0 in the program.
 */
pid_t spawn_sandbox (struct zygote *z, const char *nonce, const struct rlimits *lim, int err_fd, int node, int cgroup_fd, const char *join, int *placed) {
  *placed = 0;
  if (unshare(CLONE_NEWPID) != 0) return -1;
  struct birth b = { z, nonce, lim, err_fd, node, cgroup_fd >= 0, join };
  hz_interp->before_fork(); /* a python program calls PyOS_AfterFork_Child() */
  if (__builtin_setjmp(resume_point) != 0) return 0;
  pid_t pid = -1;
  if (b.placed) {
    pid = clone_into_cgroup(init_main, &b, z->init_stack, INIT_STACK, cgroup_fd);
    if (pid < 0) { /* the daemon places this child; the next ones join their cgroup */
      fprintf(stderr, "hearth zygote: clone3 into a sandbox cgroup: %s; the next children join their cgroups instead\n", strerror(errno));
      z->cloned = 0;
      z->joins = z->iso.nhierarchies > 0;
      b.placed = 0;
    }
  }
  if (pid < 0) pid = clone(init_main, z->init_stack + INIT_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &b);
  *placed = pid > 0 && b.placed;
  int err = errno;
  hz_interp->after_fork_parent();
  if (setns(z->own_pidns, CLONE_NEWPID) != 0) {
    perror("hearth zygote: setns own pid namespace");
    exit(EXIT_SETUP_FAILED);
  }
  errno = err;
  return pid;
}

