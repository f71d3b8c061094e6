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

#define UNPINNED (RUN_MAP | RUN_COMPILE | RUN_PINNED) /* runs with none of these bits are pinned */

/* Before Linux 6.x (measured: 6.1 refuses, 6.12 takes them), io_uring
 * refuses buffers in a file's mapping (EOPNOTSUPP), even a private one's
 * copied pages (python3's data): then only runs in anonymous mappings are. */
static void anonymous (size_t i, const char *perms, unsigned long inode, void *chosen) {
  (void)perms;
  ((unsigned char *)chosen)[i] = inode == 0;
}

/* Registers the `chosen` runs as the ring's buffers; 0, or -1 with errno. */
static int register_runs (int ring, const struct page_run *runs, size_t n, const unsigned char *chosen, struct iovec *iov) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!chosen[i]) continue;
    iov[k].iov_base = (void *)runs[i].start;
    iov[k++].iov_len = (size_t)runs[i].pages * PAGE;
  }
  if (k == 0) { errno = EOPNOTSUPP; return -1; }
  return syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, iov, (unsigned)k) == 0 ? 0 : -1;
}

size_t pin_runs (struct page_run *runs, size_t n, char *why, size_t size) {
  why[0] = 0;
  unsigned char *chosen = calloc(n > 0 ? n : 1, 1);
  struct iovec *iov = calloc(n > 0 ? n : 1, sizeof *iov);
  size_t count = 0, pages = 0;
  if (chosen == NULL || iov == NULL) {
    snprintf(why, size, "calloc: %s", strerror(errno));
    n = 0;
  }
  for (size_t i = 0; i < n; i++) count += chosen[i] = (runs[i].map & UNPINNED) == 0;
  if (count == 0 && why[0] == 0) snprintf(why, size, "no pages learned");
  int ring = count == 0 ? -1 : (int)syscall(__NR_io_uring_setup, 1, &(struct io_uring_params){ 0 });
  if (count > 0 && ring < 0) snprintf(why, size, "io_uring_setup: %s", strerror(errno));
  int rc = ring < 0 ? -1 : register_runs(ring, runs, n, chosen, iov);
  if (ring >= 0 && rc != 0 && errno == EOPNOTSUPP) {
    memset(chosen, 0, n);
    each_run_mapping(runs, n, UNPINNED, 0, anonymous, chosen);
    rc = register_runs(ring, runs, n, chosen, iov);
  }
  if (ring >= 0 && rc != 0) {
    snprintf(why, size, "io_uring_register: %s", strerror(errno));
    close(ring);
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!chosen[i]) continue;
    runs[i].map |= RUN_PINNED;
    pages += runs[i].pages;
  }
  free(iov);
  free(chosen);
  return pages; /* the ring stays open: its buffers are the pins */
}
