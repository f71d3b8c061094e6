/* A child's first touch of the pages its first call uses, made before its
 * `ready` (isolate.h, touch_runs).
 *
 * The first touch of each page by a new address space costs a TLB fill, and
 * on a shadow-paged virtual machine an exit to the hypervisor (measured on
 * one: ~5 µs for each 4 KB page, whether fork copied its entry, a prefault
 * made it or neither). Read here, the pages the probe saw a call use cost a
 * child that before `ready`, off the request's path, instead of in its first
 * call: paced run-now Python calls there, p50 ~5 ms against ~6 without. A
 * run no longer mapped (mincore fails) is left alone rather than faulted on. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include "isolate.h"

#define CHUNK 256 /* pages asked of mincore at once */

void touch_runs (const struct page_run *runs, size_t n, uint32_t phase) {
  unsigned char resident[CHUNK];
  for (size_t i = 0; i < n; i++) {
    if ((runs[i].map & RUN_COMPILE) != phase) continue;
    for (size_t at = 0; at < runs[i].pages; at += CHUNK) {
      size_t pages = runs[i].pages - at < CHUNK ? runs[i].pages - at : CHUNK;
      const volatile char *first = (const volatile char *)(runs[i].start + at * PAGE);
      if (mincore((void *)first, pages * PAGE, resident) != 0) break;
      for (size_t p = 0; p < pages; p++) (void)first[p * PAGE];
    }
  }
}
