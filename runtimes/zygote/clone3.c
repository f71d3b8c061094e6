/* clone3(2) with CLONE_INTO_CGROUP (clone3.h). glibc 2.36 has no clone3
 * wrapper that runs a function on a new stack, so a few lines of assembly do
 * what its clone(2) wrapper does: the child, on its new stack, calls fn(arg)
 * and exits with its answer. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include "clone3.h"

/* struct clone_args of <linux/sched.h> (Linux 5.7+: the cgroup field), and
 * its flags, spelled out: that header and glibc's <sched.h> collide. */
struct hz_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define HZ_CLONE_VM 0x00000100ULL
#define HZ_CLONE_VFORK 0x00004000ULL
#define HZ_CLONE_INTO_CGROUP 0x200000000ULL

#if defined(__x86_64__)
/* long hz_clone3_run(args, size, fn, arg): the clone3 system call (435);
 * returns what it returns in the parent; in the child, calls fn(arg) and
 * exits (60). r8 and r9 carry fn and arg across it: a system call keeps every
 * register but rax, rcx and r11, and the child starts with ours. The kernel
 * points the child's rsp at stack + stack_size, 16-byte aligned here (a
 * page-aligned mapping), as a call needs. */
long hz_clone3_run (struct hz_clone_args *args, size_t size, int (*fn) (void *), void *arg);
__asm__(
  ".text\n"
  ".globl hz_clone3_run\n"
  ".hidden hz_clone3_run\n"
  ".type hz_clone3_run, @function\n"
  "hz_clone3_run:\n"
  "  mov %rdx, %r8\n"
  "  mov %rcx, %r9\n"
  "  mov $435, %eax\n"
  "  syscall\n"
  "  test %rax, %rax\n"
  "  jnz 1f\n"
  "  xor %ebp, %ebp\n"
  "  mov %r9, %rdi\n"
  "  call *%r8\n"
  "  mov %eax, %edi\n"
  "  mov $60, %eax\n"
  "  syscall\n"
  "  hlt\n"
  "1:\n"
  "  ret\n"
  ".size hz_clone3_run, .-hz_clone3_run\n");

#elif defined(__aarch64__)
/* The same on arm64: clone3 is 435 there too, exit 93, and a system call
 * keeps every register but x0, so x9 and x10 carry fn and arg; the kernel
 * points the child's sp at stack + stack_size, 16-byte aligned as sp must be.
 * `hint 34` is `bti c`: a landing pad where branch protection is on, a no-op
 * elsewhere. Run on an emulated arm64 kernel by test/clone3.test.ts. */
long hz_clone3_run (struct hz_clone_args *args, size_t size, int (*fn) (void *), void *arg);
__asm__(
  ".text\n"
  ".globl hz_clone3_run\n"
  ".hidden hz_clone3_run\n"
  ".type hz_clone3_run, %function\n"
  "hz_clone3_run:\n"
  "  hint 34\n"
  "  mov x9, x2\n"
  "  mov x10, x3\n"
  "  mov x8, #435\n"
  "  svc #0\n"
  "  cbnz x0, 1f\n"
  "  mov x29, #0\n"
  "  mov x30, #0\n"
  "  mov x0, x10\n"
  "  blr x9\n"
  "  mov x8, #93\n"
  "  svc #0\n"
  "  brk #0\n"
  "1:\n"
  "  ret\n"
  ".size hz_clone3_run, .-hz_clone3_run\n");
#endif

#if defined(__x86_64__) || defined(__aarch64__)
pid_t clone_into_cgroup (int (*fn) (void *), void *arg, char *stack, size_t size, int cgroup_fd) {
  struct hz_clone_args args = {
    .flags = HZ_CLONE_VM | HZ_CLONE_VFORK | HZ_CLONE_INTO_CGROUP,
    .exit_signal = SIGCHLD,
    .stack = (uint64_t)(uintptr_t)stack,
    .stack_size = size,
    .cgroup = (uint64_t)cgroup_fd,
  };
  long rc = hz_clone3_run(&args, sizeof args, fn, arg);
  if (rc < 0) {
    errno = (int)-rc;
    return -1;
  }
  return (pid_t)rc;
}
#else
pid_t clone_into_cgroup (int (*fn) (void *), void *arg, char *stack, size_t size, int cgroup_fd) {
  (void)fn; (void)arg; (void)stack; (void)size; (void)cgroup_fd;
  errno = ENOSYS;
  return -1;
}
#endif
