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
 * /proc/self/maps once (a check per run, by mincore, cost 3-4 % of run-now
 * throughput there: a system call each). */
#define _GNU_SOURCE
#include <stdio.h>
#include "isolate.h"

void touch_runs (const struct page_run *runs, size_t n, uint32_t phase) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return;
  char line[256];
  unsigned long lo = 0, hi = 0; /* the mapping read last; runs and mappings both in address order */
  char perms[5] = "";
  for (size_t i = 0; i < n; i++) {
    if ((runs[i].map & (RUN_COMPILE | RUN_MAP)) != phase) continue;
    uintptr_t start = runs[i].start, end = start + (uintptr_t)runs[i].pages * PAGE;
    while (hi < end && fgets(line, sizeof line, maps) != NULL) {
      unsigned long a, b;
      char p[5];
      /* the rest of a long line (a path) is no mapping's */
      if (sscanf(line, "%lx-%lx %4s", &a, &b, p) == 3 && b > a) { lo = a; hi = b; snprintf(perms, sizeof perms, "%s", p); }
    }
    if (lo <= start && end <= hi && perms[0] == 'r') {
      for (const volatile char *page = (const volatile char *)start; (uintptr_t)page < end; page += PAGE) (void)*page;
    }
  }
  fclose(maps);
}
