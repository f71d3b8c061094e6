/* The zygote's probe (probe.h): one child, forked once per zygote, that
 * rehearses a python sandbox's start and first call and reports the pages it
 * copied, read from /proc/self/pagemap (isolate.c, dirty_runs). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "interp.h"
#include "probe.h"

/* In the probe child: where its dirty runs go (hz_probe_done). */
static int probe_fd = -1;

int learn_pages (int ctl, int pidns, struct page_run *runs, size_t max, size_t *nruns) {
  *nruns = 0;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return 0;
  hz_interp->before_fork();
  pid_t pid = fork();
  if (pid == 0) {
    close(ctl);
    close(pidns);
    close(p[0]);
    probe_fd = p[1];
    return 1;
  }
  hz_interp->after_fork_parent();
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return 0;
  }
  size_t got = 0, size = max * sizeof runs[0];
  uint8_t *buf = (uint8_t *)runs;
  while (got < size) {
    ssize_t n = read(p[0], buf + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(p[0]);
  int status = -1;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  *nruns = status == 0 ? got / sizeof runs[0] : 0;
  return 0;
}

/* The read-only pages the probe had mapped when its start was over (hz_probe_started). */
static struct page_run started[MAX_RUNS];
static size_t nstarted;
static int marked;

/* What it had copied, and mapped, when its first call (with bytecode) was
 * over (hz_probe_answered); what its second call (compiling) adds to those is
 * what each child copies and maps before its first compile. */
static struct page_run answered[2][MAX_RUNS];
static size_t nanswered[2];
static int compiled_apart;

void hz_probe_started (void) {
  nstarted = mapped_runs(started, MAX_RUNS, NULL, 0);
  marked = 1;
}

void hz_probe_answered (void) {
  nanswered[0] = dirty_runs(answered[0], MAX_RUNS, NULL, 0);
  nanswered[1] = mapped_runs(answered[1], MAX_RUNS, NULL, 0);
  compiled_apart = 1;
}

/* The pages of `a` not in `b` (both in address order), as at most `max` runs. */
static size_t subtract_runs (struct page_run *out, size_t max, const struct page_run *a, size_t na, const struct page_run *b, size_t nb) {
  size_t n = 0;
  for (size_t i = 0; i < na; i++) {
    for (uintptr_t at = a[i].start; at < a[i].start + a[i].pages * PAGE; at += PAGE) {
      while (nb > 0 && b->start + b->pages * PAGE <= at) { b++; nb--; }
      if (nb > 0 && b->start <= at) continue;
      if (n > 0 && out[n - 1].map == a[i].map && out[n - 1].start + out[n - 1].pages * PAGE == at) out[n - 1].pages++;
      else if (n < max) out[n++] = (struct page_run){ at, 1, a[i].map };
      else return n;
    }
  }
  return n;
}

static size_t with_phase (struct page_run *runs, size_t n, uint32_t phase) {
  for (size_t i = 0; i < n; i++) runs[i].map |= phase;
  return n;
}

void hz_probe_done (void) {
  static struct page_run runs[MAX_RUNS];
  size_t n;
  if (compiled_apart) {
    /* at the fork: what the first call copied, and the code it mapped after the start */
    memcpy(runs, answered[0], nanswered[0] * sizeof runs[0]);
    n = nanswered[0];
    if (marked) n += subtract_runs(runs + n, MAX_RUNS - n, answered[1], nanswered[1], started, nstarted);
    /* before a first compile: what the second call added */
    n += with_phase(runs + n, dirty_runs(runs + n, MAX_RUNS - n, answered[0], nanswered[0]), RUN_COMPILE);
    n += with_phase(runs + n, mapped_runs(runs + n, MAX_RUNS - n, answered[1], nanswered[1]), RUN_COMPILE);
  } else {
    n = dirty_runs(runs, MAX_RUNS, NULL, 0);
    if (marked) n += mapped_runs(runs + n, MAX_RUNS - n, started, nstarted);
  }
  const uint8_t *p = (const uint8_t *)runs;
  for (size_t left = n * sizeof runs[0]; left > 0;) {
    ssize_t w = write(probe_fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(1);
    p += w;
    left -= (size_t)w;
  }
  _exit(0);
}
