/* Checks huge_text (runtimes/zygote/hugetext.c) on code in a shared library
 * whose segments are aligned to 2 MB (-z max-page-size=0x200000): ld.so
 * leaves PROT_NONE mappings of the file between them, which the span to copy
 * must not take in (reading them faulted). Built twice by
 * test/hugetext.test.ts: with -DLIBRARY as the library (~5 MB of text and a
 * function), then as the program that loads it (argv[1]), moves the
 * library's code and calls the function. Prints "hugetext-gap-check: ok N
 * (gap: yes|no)" or what failed. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>

#ifdef LIBRARY
#define PAD (5 << 20)
__attribute__((section(".text.hugetext_pad"), used)) static const unsigned char pad[PAD] = { 1, 2, 3 };
__attribute__((noinline)) int gap_answer (int x) { return x * 2 + (int)pad[1]; }
#else
#include <dlfcn.h>
#include <string.h>
#include "../../runtimes/zygote/hugetext.h"

/* Whether a PROT_NONE mapping of the file holding `inside` follows its executable one. */
static int gap_after (uintptr_t inside) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096 + 128];
  unsigned long lo, hi, inode, text_end = 0, text_inode = 0;
  char perms[5];
  int gap = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "%lx-%lx %4s %*s %*s %lu", &lo, &hi, perms, &inode) != 4) continue;
    if (lo <= inside && inside < hi) { text_end = hi; text_inode = inode; }
    else if (text_end != 0 && lo == text_end && inode == text_inode && strcmp(perms, "---p") == 0) gap = 1;
  }
  if (f != NULL) fclose(f);
  return gap;
}

#define FAIL(...) do { printf("hugetext-gap-check: "); printf(__VA_ARGS__); printf("\n"); return 1; } while (0)

int main (int argc, char **argv) {
  if (argc != 2) FAIL("usage: hugetext-gap-check LIBRARY");
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (lib == NULL) FAIL("dlopen: %s", dlerror());
  int (*answer) (int) = (int (*) (int))dlsym(lib, "gap_answer");
  if (answer == NULL) FAIL("no gap_answer");
  int before = answer(20);
  int gap = gap_after((uintptr_t)answer);
  char why[256];
  size_t pages = huge_text((uintptr_t)answer, why, sizeof why);
  if (pages == 0 && why[0] == 0) FAIL("nothing moved and no reason");
  if (answer(20) != before) FAIL("gap_answer() is wrong after the move");
  printf("hugetext-gap-check: ok %zu (gap: %s)%s%s\n", pages, gap ? "yes" : "no", pages == 0 ? " " : "", pages == 0 ? why : "");
  return 0;
}
#endif
