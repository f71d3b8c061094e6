/* The pages every child writes, copied by fork itself (pin.h).
 *
 * A child copies the zygote's pages it will write at once, before `ready`
 * (prefault_runs: MADV_POPULATE_WRITE over the runs the probe learned). Each
 * is a copy-on-write fault: the page was shared read-only, so the kernel
 * flushes its TLB entry as it replaces it (on a shadow-paged virtual machine
 * an exit to the hypervisor each), and the zygote itself takes another when
 * it next writes one of them. Fork copies a page at once instead, neither
 * side write-protected, when the page may be pinned for DMA (Linux 5.9+: a
 * pinned page cannot be shared copy-on-write). io_uring's fixed buffers are
 * such pins, taken by any process: the zygote registers the learned runs
 * as buffers of a ring it keeps and never uses. The pins count against
 * RLIMIT_MEMLOCK (the daemon raises it for zygotes where it may);
 * where io_uring is refused (kernel.io_uring_disabled, a seccomp profile) or
 * the limit is short, nothing is pinned and the runs are prefaulted. The
 * ring's fd is close-on-exec, and no child keeps it (isolate.c closes every
 * fd but its own). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "pin.h"

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_register 427
#endif

static int pinnable (const struct page_run *r) {
  return (r->map & (RUN_MAP | RUN_COMPILE | RUN_PINNED)) == 0;
}

/* Whether `r` lies in an anonymous mapping: before Linux 6.x (measured: 6.1
 * refuses, 6.12 takes them), io_uring refuses buffers in a file's mapping
 * (EOPNOTSUPP), even a private one's copied pages (python3's data). */
static int anonymous (const struct page_run *r) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return 0;
  char line[4096 + 128];
  int found = 0;
  uintptr_t end = r->start + (uintptr_t)r->pages * PAGE;
  while (!found && fgets(line, sizeof line, maps) != NULL) {
    unsigned long lo, hi, inode;
    if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &inode) == 3 && lo <= r->start && end <= hi) found = inode == 0 ? 1 : -1;
  }
  fclose(maps);
  return found == 1;
}

/* Registers the runs `want` accepts as the ring's buffers; 0, or -1 with errno. */
static int register_runs (int ring, const struct page_run *runs, size_t n, int (*want) (const struct page_run *), struct iovec *iov, size_t *k) {
  *k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!pinnable(&runs[i]) || (want != NULL && !want(&runs[i]))) continue;
    iov[*k].iov_base = (void *)runs[i].start;
    iov[(*k)++].iov_len = (size_t)runs[i].pages * PAGE;
  }
  if (*k == 0) { errno = EOPNOTSUPP; return -1; }
  return syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, iov, (unsigned)*k) == 0 ? 0 : -1;
}

size_t pin_runs (struct page_run *runs, size_t n, char *why, size_t size) {
  why[0] = 0;
  size_t count = 0, pages = 0;
  for (size_t i = 0; i < n; i++) count += pinnable(&runs[i]);
  if (count == 0) { snprintf(why, size, "no pages learned"); return 0; }
  struct iovec *iov = calloc(count, sizeof *iov);
  if (iov == NULL) { snprintf(why, size, "calloc: %s", strerror(errno)); return 0; }
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  int ring = (int)syscall(__NR_io_uring_setup, 1, &params);
  size_t k = 0;
  int (*want) (const struct page_run *) = NULL;
  if (ring < 0) {
    snprintf(why, size, "io_uring_setup: %s", strerror(errno));
  } else if (register_runs(ring, runs, n, NULL, iov, &k) != 0 && (errno != EOPNOTSUPP || register_runs(ring, runs, n, want = anonymous, iov, &k) != 0)) {
    snprintf(why, size, "io_uring_register: %s", strerror(errno));
    close(ring);
  } else {
    for (size_t i = 0; i < n; i++) {
      if (!pinnable(&runs[i]) || (want != NULL && !want(&runs[i]))) continue;
      runs[i].map |= RUN_PINNED;
      pages += runs[i].pages;
    }
  }
  free(iov);
  return pages; /* the ring stays open: its buffers are the pins */
}
