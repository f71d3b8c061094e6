/* The zygote's probe (probe.h): one child, forked once per zygote, that
 * rehearses a python sandbox's start and first call and reports the pages it
 * copied, read from /proc/self/pagemap (isolate.c, dirty_runs). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
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

void hz_probe_started (void) {
  nstarted = mapped_runs(started, MAX_RUNS, NULL, 0);
  marked = 1;
}

void hz_probe_done (void) {
  static struct page_run runs[MAX_RUNS];
  size_t n = dirty_runs(runs, MAX_RUNS);
  if (marked) n += mapped_runs(runs + n, MAX_RUNS - n, started, nstarted);
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
