/* Checks runtimes/zygote/touch.c's touch_runs (test/touch.test.ts): the pages
 * of the written runs of the phase asked are read (a file's pages, mapped by
 * no one before, are mapped then: /proc/self/smaps Rss), those of the other
 * phase and mapped runs (RUN_MAP) not, and a run no longer mapped is left
 * alone (no SIGSEGV). Prints "touch-check: ok" or what failed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../../runtimes/zygote/isolate.h"

#define PAGES 64

/* Rss (kB) of the mapping that starts at `start`. */
static long rss_kb (const void *start) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[4096];
  int holds = 0;
  long kb = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long lo;
    if (strchr(line, '-') < strchr(line, ' ') && sscanf(line, "%lx-", &lo) == 1) holds = lo == (unsigned long)start;
    else if (holds && sscanf(line, "Rss: %ld kB", &kb) == 1) holds = 0;
  }
  if (f != NULL) fclose(f);
  return kb;
}

static char *file_pages (const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, PAGES * PAGE) != 0) return NULL;
  char *m = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  return m == MAP_FAILED ? NULL : m;
}

#define FAIL(...) do { printf("touch-check: "); printf(__VA_ARGS__); printf("\n"); return 1; } while (0)

int main (int argc, char **argv) {
  if (argc != 2) FAIL("usage: touch-check DIR");
  char *now = file_pages(argv[1], "now"), *later = file_pages(argv[1], "later"), *mapped = file_pages(argv[1], "mapped");
  char *gone = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (now == NULL || later == NULL || mapped == NULL || gone == MAP_FAILED) FAIL("cannot map");
  munmap(gone, PAGES * PAGE);
  if (rss_kb(now) != 0 || rss_kb(later) != 0) FAIL("mapped before: %ld, %ld kB", rss_kb(now), rss_kb(later));
  struct page_run runs[] = { /* in address order, as the probe learns them */
    { (uintptr_t)now + 8 * PAGE, 8, 0 },       /* written, this phase: read */
    { (uintptr_t)later, PAGES, RUN_COMPILE },   /* the other phase: not */
    { (uintptr_t)mapped, PAGES, RUN_MAP },      /* mapped, not written: not */
    { (uintptr_t)gone, PAGES, 0 },              /* no longer mapped: skipped */
  };
  for (size_t i = 1; i < 4; i++) {
    for (size_t j = i; j > 0 && runs[j].start < runs[j - 1].start; j--) {
      struct page_run r = runs[j]; runs[j] = runs[j - 1]; runs[j - 1] = r;
    }
  }
  touch_runs(runs, 4, 0);
  if (rss_kb(now) < 8 * (long)PAGE / 1024) FAIL("the run of this phase was not read: %ld kB mapped", rss_kb(now));
  if (rss_kb(later) != 0) FAIL("the other phase's run was read: %ld kB mapped", rss_kb(later));
  if (rss_kb(mapped) != 0) FAIL("a mapped run was read: %ld kB mapped", rss_kb(mapped));
  touch_runs(runs, 4, RUN_COMPILE);
  if (rss_kb(later) != PAGES * (long)PAGE / 1024) FAIL("the compile phase's run: %ld kB mapped", rss_kb(later));
  printf("touch-check: ok\n");
  return 0;
}
