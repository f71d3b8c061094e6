/* A child's first touch of the pages its first call writes, made before its
 * `ready` (isolate.h, touch_runs).
 *
 * The first touch of each page by a new address space costs a TLB fill, and
 * on a shadow-paged virtual machine an exit to the hypervisor (measured on
 * one: ~5 µs for each 4 KB page, whether fork copied its entry, a prefault
 * made it or neither). Read here, the pages the probe saw a call write cost a
 * child that before `ready`, off the request's path, instead of in its first
 * call: paced run-now Python calls there, p50 ~5 ms against ~6 without. Not
 * the pages it mapped (RUN_MAP): mapped around each fault, many are never
 * touched. Only runs inside a mapping still there are read, checked against
 * /proc/self/maps once (each_run_mapping; a check per run, by mincore, cost
 * 3-4 % of run-now throughput there: a system call each). Only in spares
 * (the fork frame's `touch`, ZYGOTE_PRETOUCH): a child forked for a call
 * already waiting would pay the same fills a moment later in that call, and
 * the touch's extra reads cost ~4 % of run-now throughput at 8 connections
 * there (12 pairs). */
#define _GNU_SOURCE
#include "isolate.h"

static void touch (size_t i, const char *perms, unsigned long inode, void *arg) {
  (void)inode;
  const struct page_run *run = (const struct page_run *)arg + i;
  if (perms[0] != 'r') return;
  uintptr_t end = run->start + (uintptr_t)run->pages * PAGE;
  for (const volatile char *page = (const volatile char *)run->start; (uintptr_t)page < end; page += PAGE) (void)*page;
}

void touch_runs (const struct page_run *runs, size_t n, uint32_t phase) {
  each_run_mapping(runs, n, RUN_COMPILE | RUN_MAP, phase, touch, (void *)runs);
}
