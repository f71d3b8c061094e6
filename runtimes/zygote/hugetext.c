/* The runtime's machine code moved onto transparent huge pages, in place,
 * once, in the zygote before it forks (hugetext.h).
 *
 * A forked child finds the zygote's anonymous pages in its page tables (fork
 * copies them) but a file's pages not (it maps those at its first touch of
 * each, as the probe's `premap` says); and every page a new address space
 * touches first costs a TLB fill, or on a shadow-paged virtual machine an
 * exit to the hypervisor (measured on one: ~5 µs per 4 KB page, ~0.02 µs per
 * page of a 2 MB one). The interpreter's code is the largest thing every
 * child reads and never writes: on 2 MB pages fork copies one entry for each,
 * and a child's first touch costs one fill per 2 MB instead of one per 4 KB.
 *
 * Node's --use-largepages does the same for node's text (it reads
 * /sys/kernel/mm/transparent_hugepage/enabled, which a sandbox does not
 * have); this does it for either runtime, given an address in its code. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "hugetext.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

#define HUGE_PAGE (2UL << 20) /* a PMD's reach with 4 KB pages */

/* One line of /proc/self/maps. */
struct vma {
  uintptr_t start, end, offset;
  char perms[5];
  unsigned long major, minor, inode;
};

static int next_vma (FILE *maps, struct vma *v) {
  char line[4096 + 128];
  if (fgets(line, sizeof line, maps) == NULL) return 0;
  if (sscanf(line, "%lx-%lx %4s %lx %lx:%lx %lu", &v->start, &v->end, v->perms, &v->offset, &v->major, &v->minor, &v->inode) != 7) return -1;
  return 1;
}

static int same_file (const struct vma *a, const struct vma *b) {
  return a->inode != 0 && a->inode == b->inode && a->major == b->major && a->minor == b->minor;
}

/*
 * Finds, around `inside`, the span to move: the executable mapping holding
 * it (with the executable mappings of the same file right beside it),
 * widened to whole 2 MB pages as far as the file's unwritable mappings
 * reach on each side, else narrowed to them. 0 when no whole 2 MB page fits.
 */
static int find_span (uintptr_t inside, uintptr_t *from, uintptr_t *to, char *why, size_t size) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) { snprintf(why, size, "/proc/self/maps: %s", strerror(errno)); return -1; }
  struct vma v, prev = { 0 }, text = { 0 };
  uintptr_t lo = 0, hi = 0; /* the file's unwritable mappings, contiguous */
  int found = 0, rc;
  while ((rc = next_vma(maps, &v)) == 1) {
    /* readable and unwritable: not the PROT_NONE gaps ld.so leaves between a
     * library's segments aligned wider than a page (the copy reads them) */
    int joins = prev.end == v.start && same_file(&prev, &v) && v.perms[1] != 'w' && v.perms[0] == 'r' && prev.perms[0] == 'r';
    if (found) {
      if (!joins) break;
      hi = v.end;
      if (v.perms[2] == 'x' && text.end == v.start) text.end = v.end;
    } else {
      if (!joins || prev.perms[1] == 'w') lo = v.start;
      if (v.start <= inside && inside < v.end) {
        if (v.perms[2] != 'x' || v.perms[1] == 'w' || v.inode == 0) {
          snprintf(why, size, "the runtime's code is not in an executable file mapping (%s)", v.perms);
          fclose(maps);
          return -1;
        }
        found = 1;
        text = v;
        hi = v.end;
      }
    }
    prev = v;
  }
  fclose(maps);
  if (rc < 0) { snprintf(why, size, "/proc/self/maps: a line not understood"); return -1; }
  if (!found) { snprintf(why, size, "the runtime's code is not mapped"); return -1; }
  uintptr_t start = text.start & ~(HUGE_PAGE - 1), end = (text.end + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  if (start < lo) start += HUGE_PAGE;
  if (end > hi) end -= HUGE_PAGE;
  if (end <= start) { snprintf(why, size, "no whole 2 MB page in the runtime's code (%#lx-%#lx)", text.start, text.end); return -1; }
  *from = start;
  *to = end;
  return 0;
}

size_t huge_text (uintptr_t inside, char *why, size_t size) {
  why[0] = 0;
  if (sysconf(_SC_PAGESIZE) != 4096) { snprintf(why, size, "pages of %ld bytes", sysconf(_SC_PAGESIZE)); return 0; }
  uintptr_t start, end;
  if (find_span(inside, &start, &end, why, size) != 0) return 0;
  size_t len = end - start;
  /* The copy is made apart, on huge pages, then moved over the code in one
   * mremap: no moment without code there, and on a failure before it the
   * file's pages stay as they were. */
  char *area = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) { snprintf(why, size, "mmap: %s", strerror(errno)); return 0; }
  char *copy = (char *)(((uintptr_t)area + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
  if (copy > area) munmap(area, (size_t)(copy - area));
  if (copy + len < area + len + HUGE_PAGE) munmap(copy + len, (size_t)(area + len + HUGE_PAGE - (copy + len)));
  (void)madvise(copy, len, MADV_HUGEPAGE); /* allocated huge at its first touch where THP is on */
  memcpy(copy, (const void *)start, len);
  /* whatever the sysfs THP settings: an error when the 2 MB pages cannot be had */
  if (madvise(copy, len, MADV_COLLAPSE) != 0) {
    snprintf(why, size, "madvise(MADV_COLLAPSE): %s", strerror(errno));
    munmap(copy, len);
    return 0;
  }
  if (mprotect(copy, len, PROT_READ | PROT_EXEC) != 0) {
    snprintf(why, size, "mprotect: %s", strerror(errno));
    munmap(copy, len);
    return 0;
  }
  if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)start) == MAP_FAILED) {
    int err = errno;
    /* MREMAP_FIXED unmaps the destination first: a move that fails after
     * that (ENOMEM) leaves no code there, and the next instruction run
     * in it would fault. Said, and the process ends (the daemon spawns). */
    if (msync((void *)start, 4096, MS_ASYNC) != 0 && errno == ENOMEM) {
      static const char gone[] = "hearth: huge text: mremap failed after unmapping the runtime's code; exiting\n";
      (void)!write(2, gone, sizeof gone - 1);
      _exit(70);
    }
    snprintf(why, size, "mremap: %s", strerror(err));
    munmap(copy, len);
    return 0;
  }
  return len / HUGE_PAGE;
}
