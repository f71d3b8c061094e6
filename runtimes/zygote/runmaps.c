/* The mapping holding each run (isolate.h, each_run_mapping): one read of
 * /proc/self/maps, merged with runs in address order (the probe learns them
 * so). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "isolate.h"

void each_run_mapping (const struct page_run *runs, size_t n, uint32_t mask, uint32_t want,
                       void (*visit) (size_t i, const char *perms, unsigned long inode, void *arg), void *arg) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return;
  char line[256];
  unsigned long lo = 0, hi = 0, inode = 0; /* the mapping read last */
  char perms[5] = "";
  int whole = 1; /* the next read starts a line */
  for (size_t i = 0; i < n; i++) {
    if ((runs[i].map & mask) != want) continue;
    uintptr_t start = runs[i].start, end = start + (uintptr_t)runs[i].pages * PAGE;
    while (hi < end && fgets(line, sizeof line, maps) != NULL) {
      unsigned long a, b, node;
      char p[5];
      /* the rest of a long line (a path) is no mapping's, whatever it reads like */
      int starts = whole;
      whole = strchr(line, '\n') != NULL;
      if (starts && sscanf(line, "%lx-%lx %4s %*s %*s %lu", &a, &b, p, &node) == 4 && b > a) {
        lo = a; hi = b; inode = node;
        snprintf(perms, sizeof perms, "%s", p);
      }
    }
    if (lo <= start && end <= hi) visit(i, perms, inode, arg);
  }
  fclose(maps);
}
