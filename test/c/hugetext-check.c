/* Checks runtimes/zygote/hugetext.c's huge_text on a program of its own
 * (test/hugetext.test.ts): its code, made larger than 4 MB by a block of
 * bytes in .text, is moved onto 2 MB pages at the same addresses, every byte
 * kept, still executable (a function in it is called after the move), and
 * no file backs it then; code that cannot move (libc's: less than a whole
 * 2 MB page; the moved code again: no file mapping) stays, with a reason.
 * Prints "hugetext-check: ok N" (N: the 2 MB pages moved) or what failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../../runtimes/zygote/hugetext.h"

/* ~5 MB of the program's text (in .text: the linker gathers .text.*) */
#define PAD (5 << 20)
__attribute__((section(".text.hugetext_pad"), used)) static const unsigned char pad[PAD] = { 1, 2, 3 };

/* in .text too, beside pad: called after the move */
__attribute__((noinline)) static int answer (int x) {
  return x * 2 + 2;
}

static uint64_t sum (const unsigned char *p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
  return s;
}

/* The mapping holding `address`: whether a file backs it, and its AnonHugePages (kB). */
static int mapping (uintptr_t address, int *file, long *huge_kb) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return -1;
  char line[4096];
  int holds = 0, found = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi, inode;
    if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &inode) == 3 && strchr(line, '-') < strchr(line, ' ')) {
      holds = lo <= address && address < hi;
      if (holds) { found = 1; *file = inode != 0; *huge_kb = 0; }
    } else if (holds && sscanf(line, "AnonHugePages: %ld kB", huge_kb) == 1) {
      holds = 0;
    }
  }
  fclose(f);
  return found ? 0 : -1;
}

#define FAIL(...) do { printf("hugetext-check: "); printf(__VA_ARGS__); printf("\n"); return 1; } while (0)

int main (void) {
  char why[256];
  uint64_t before = sum(pad, PAD);
  int file;
  long huge_kb;
  if (mapping((uintptr_t)pad, &file, &huge_kb) != 0 || !file) FAIL("pad is not in a file mapping before the move");

  size_t pages = huge_text((uintptr_t)answer, why, sizeof why);
  if (pages == 0) FAIL("nothing moved: %s", why);
  if (mapping((uintptr_t)pad + PAD / 2, &file, &huge_kb) != 0) FAIL("pad's middle is not mapped after the move");
  if (file) FAIL("a file still backs pad's middle");
  if (huge_kb < 2048) FAIL("pad's middle has %ld kB on 2 MB pages", huge_kb);
  if (sum(pad, PAD) != before) FAIL("pad's bytes changed");
  if (answer(20) != 42) FAIL("answer() is wrong after the move");

  if (huge_text((uintptr_t)pad + PAD / 2, why, sizeof why) != 0) FAIL("moved twice");
  if (strstr(why, "not in an executable file mapping") == NULL) FAIL("moved code again: %s", why);

  uintptr_t libc = (uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
  if (libc == 0) FAIL("no getpid");
  if (huge_text(libc, why, sizeof why) != 0) FAIL("libc's code moved");
  if (why[0] == 0) FAIL("no reason given for libc's code");
  if (mapping(libc, &file, &huge_kb) != 0 || !file) FAIL("libc's code is no longer its file's");
  if (getpid() <= 0) FAIL("getpid()");
  printf("hugetext-check: ok %zu (libc: %s)\n", pages, why);
  return 0;
}
