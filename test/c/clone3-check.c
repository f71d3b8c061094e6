/* Checks runtimes/zygote/clone3.c's clone_into_cgroup on this machine's
 * architecture (test/clone3.test.ts): a child born in a cgroup v2 directory,
 * on the stack given, sharing our memory while we wait, its answer its exit
 * code; and a refused clone is -1 with errno. Prints "clone3-check: ok" or
 * what failed.
 *   clone3-check CGROUP_DIR    in a cgroup v2 directory made by the caller
 *   as pid 1 (an emulated guest's /init): mounts /dev, /proc and cgroup2,
 *   makes a cgroup, checks, powers the guest off. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../../runtimes/zygote/clone3.h"

#define STACK (64 * 1024)

struct seen {
  int ran;
  char *local; /* an address on the child's stack */
  char cgroup[256];
};

static int child (void *arg) {
  struct seen *s = arg;
  char here;
  s->local = &here;
  int fd = open("/proc/self/cgroup", O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, s->cgroup, sizeof s->cgroup - 1);
    s->cgroup[n > 0 ? n : 0] = 0;
    close(fd);
  }
  s->ran = 1;
  return 42;
}

static int failures;
static void expect (int ok, const char *what) {
  if (!ok) {
    printf("clone3-check: FAIL %s\n", what);
    failures++;
  }
}

static int check (const char *dir) {
  int cgroup = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cgroup < 0) { printf("clone3-check: FAIL open %s: %s\n", dir, strerror(errno)); return 1; }
  char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) { printf("clone3-check: FAIL mmap\n"); return 1; }
  struct seen s = { 0, NULL, "" };
  pid_t pid = clone_into_cgroup(child, &s, stack, STACK, cgroup);
  if (pid < 0) { printf("clone3-check: FAIL clone_into_cgroup: %s\n", strerror(errno)); return 1; }
  expect(s.ran == 1, "the child ran before we went on (CLONE_VFORK), writing our memory (CLONE_VM)");
  expect(s.local >= stack && s.local < stack + STACK, "the child ran on the stack given");
  const char *name = strrchr(dir, '/');
  char want[300];
  snprintf(want, sizeof want, "%s\n", name == NULL ? dir : name);
  /* its cgroup v2 line (a host with v1 hierarchies lists those first) */
  char *v2 = strncmp(s.cgroup, "0::/", 4) == 0 ? s.cgroup : strstr(s.cgroup, "\n0::/");
  if (v2 != NULL && *v2 == '\n') v2++;
  size_t len = v2 == NULL ? 0 : strcspn(v2, "\n") + 1, wlen = strlen(want);
  expect(v2 != NULL && len >= wlen && strncmp(v2 + len - wlen, want, wlen) == 0, "the child was born in the cgroup given");
  int status = 0;
  expect(waitpid(pid, &status, 0) == pid, "the child is ours, with SIGCHLD");
  expect(WIFEXITED(status) && WEXITSTATUS(status) == 42, "the child's answer is its exit code");
  int notcgroup = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  errno = 0;
  expect(clone_into_cgroup(child, &s, stack, STACK, notcgroup) == -1 && errno == EBADF, "a directory not of cgroup v2 is refused: -1, EBADF");
  if (failures == 0) printf("clone3-check: ok (child born in %.*s)\n", (int)(len - 1), v2);
  return failures == 0 ? 0 : 1;
}

int main (int argc, char **argv) {
  if (getpid() != 1) {
    if (argc != 2) { fprintf(stderr, "usage: clone3-check CGROUP_DIR\n"); return 2; }
    return check(argv[1]);
  }
  mkdir("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  int console = open("/dev/console", O_RDWR);
  if (console >= 0) { dup2(console, 1); dup2(console, 2); }
  setvbuf(stdout, NULL, _IONBF, 0);
  mkdir("/proc", 0755);
  mkdir("/sys", 0755);
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  int rc = mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
  if (rc != 0) printf("clone3-check: FAIL mount cgroup2: %s\n", strerror(errno));
  mkdir("/sys/fs/cgroup/hearth-check", 0755);
  if (rc == 0) check("/sys/fs/cgroup/hearth-check");
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
