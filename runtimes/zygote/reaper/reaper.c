/* pid 1 of a forked sandbox (isolate.h, become_reaper): reaps every process
 * of the sandbox until its program ends, then exits as the program did (pid 1
 * cannot kill itself with a signal: a program killed by one gives 128 + it).
 *
 * A program of its own, static and executed from a memfd, so that pid 1 holds
 * two pages instead of a copy of the zygote's interpreter: the sandbox's init
 * sets the sandbox up while sharing the zygote's memory, forks the program
 * from there and then executes this.
 *
 * On x86-64 it is built without libc (-nostdlib): libc's start-up asks the CPU
 * what it is (cpuid), and under a hypervisor each question traps. Measured on
 * the development VM: an exec of this program 0.34 ms of CPU, 1.15 ms linked
 * against static glibc. Elsewhere it uses libc.
 *
 * usage: hearth-reaper PROGRAM_PID */
#define EXIT_SETUP_FAILED 70 /* isolate.h */
#define EINTR_ 4

#if defined(__x86_64__) && !defined(HEARTH_REAPER_LIBC)
#include <asm/unistd.h>
#include <signal.h>

static long sys4 (long n, long a, long b, long c, long d) {
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

static __attribute__((noreturn)) void leave (int code) {
  for (;;) sys4(__NR_exit_group, code, 0, 0, 0);
}

/* the kernel's struct sigaction (no restorer needed: SIG_IGN never returns to us) */
struct ksigaction { void *handler; unsigned long flags; void *restorer; unsigned long mask; };

static void ignore_sigint (void) {
  struct ksigaction ign = { SIG_IGN, 0, 0, 0 };
  sys4(__NR_rt_sigaction, SIGINT, (long)&ign, 0, sizeof ign.mask);
}

/* a child's pid and status, or -errno */
static long wait_any (int *status) {
  return sys4(__NR_wait4, -1, (long)status, 0, 0);
}
#else
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static __attribute__((noreturn)) void leave (int code) {
  _exit(code);
}

static void ignore_sigint (void) {
  signal(SIGINT, SIG_IGN);
}

static long wait_any (int *status) {
  pid_t pid = waitpid(-1, status, 0);
  return pid < 0 ? -errno : pid;
}
#endif

static __attribute__((noreturn)) void reap (long argc, char **argv) {
  if (argc != 2 || argv[1][0] == 0) leave(EXIT_SETUP_FAILED);
  long program = 0;
  for (const char *p = argv[1]; *p; p++) {
    if (*p < '0' || *p > '9') leave(EXIT_SETUP_FAILED);
    program = program * 10 + (*p - '0');
  }
  ignore_sigint();
  for (;;) {
    int status = 0;
    long pid = wait_any(&status);
    if (pid == -EINTR_) continue;
    if (pid < 0) leave(EXIT_SETUP_FAILED);
    if (pid == program) leave((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f));
  }
}

#if defined(__x86_64__) && !defined(HEARTH_REAPER_LIBC)
__attribute__((used, noreturn)) void reap_entry (long argc, char **argv) {
  reap(argc, argv);
}

/* The kernel's entry: argc at the stack pointer, argv just above it. */
__attribute__((naked, noreturn)) void _start (void) {
  __asm__ ("mov (%rsp), %rdi\n\tlea 8(%rsp), %rsi\n\tand $-16, %rsp\n\tcall reap_entry\n\thlt");
}
#else
int main (int argc, char **argv) {
  reap(argc, argv);
}
#endif
