/* The core as a Node-API addon, for the node zygote (../../node/zygote.mjs).
 *
 *   serve(ctl, reaperFd, rendezvousDir, tmpOptions, bpf) -> number
 *     hz_serve() in this process: returns 0 in a forked program, once its
 *     event loop is its own (uv_loop_fork) and OpenSSL reseeded; 3 (IS_PROBE)
 *     in the probe child (probe.h), which rehearses, then calls probeDone();
 *     in the zygote, hz_serve()'s other answers when it ends (serve.c).
 *   socketPair() -> [fd, fd]
 *     a connected pair of unix stream sockets, for the zygote's rehearsal of
 *     a sandbox (its channel is such a socket, on fd 3).
 *   pipe() -> [readFd, writeFd]
 *     a pipe, both ends close-on-exec: the daemon gives a spawned sandbox
 *     pipes for its fds 1 and 2 (daemon/sandbox/pipes.ts), as node's spawn
 *     makes sockets, which /dev/stdout cannot be opened on.
 *   probeDone()
 *     hz_probe_done(): reports the pages the probe copied, and ends it.
 *   exit(code)
 *     _exit(2): how a forked program ends. Node's own exit joins the worker
 *     threads of its platform, which a fork does not copy: measured, it then
 *     hangs or faults.
 *
 * Node-API and libuv are the node executable's own exports; their few
 * declarations are written out here, so no headers are needed to build. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../interp.h"
#include "../probe.h"

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* 0: napi_ok */
typedef napi_value (*napi_callback) (napi_env, napi_callback_info);
extern napi_status napi_create_function (napi_env, const char *, size_t, napi_callback, void *, napi_value *);
extern napi_status napi_set_named_property (napi_env, napi_value, const char *, napi_value);
extern napi_status napi_get_cb_info (napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
extern napi_status napi_get_value_int32 (napi_env, napi_value, int32_t *);
extern napi_status napi_get_value_string_utf8 (napi_env, napi_value, char *, size_t, size_t *);
extern napi_status napi_get_buffer_info (napi_env, napi_value, void **, size_t *);
extern napi_status napi_create_int32 (napi_env, int32_t, napi_value *);
extern napi_status napi_create_array_with_length (napi_env, size_t, napi_value *);
extern napi_status napi_set_element (napi_env, napi_value, uint32_t, napi_value);
extern napi_status napi_throw_error (napi_env, const char *, const char *);

struct uv_loop_s;
extern struct uv_loop_s *uv_default_loop (void);
extern int uv_loop_fork (struct uv_loop_s *);
extern const char *uv_strerror (int);

extern int hz_serve (int ctl, int reaper, const char *rendezvous_dir, const char *tmp_options, const uint8_t *bpf, size_t bpf_len, char *const *node_argv);

/*
 * V8 marks the pages of its heap MADV_DONTFORK (seen as `dc` in
 * /proc/self/smaps): a plain fork of node leaves the child without its heap,
 * and it faults at its first JavaScript. Every mapping is made copyable again
 * before each fork (a no-op on the others). Once would do while the zygote
 * waits in C; each time (one read of /proc/self/maps) holds if V8 maps a page
 * meanwhile.
 */
static void keep_heap_in_forks (void) {
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return;
  char line[512];
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx", &start, &end) == 2) madvise((void *)start, end - start, MADV_DOFORK);
    if (strchr(line, '\n') == NULL) { /* a path longer than the buffer: skip the rest */
      int c;
      while ((c = fgetc(maps)) != EOF && c != '\n') {}
    }
  }
  fclose(maps);
}

static void nothing (void) {}

/* Without a probe's pages, a program's pages are copied as it writes them:
 * node's writable pages are tens of MB. */
/* napi_create_function: in the node executable (or its libnode) */
static const struct interp node_interp = { "node", keep_heap_in_forks, nothing, 0, (void (*) (void))napi_create_function };

/*
 * OpenSSL's generators (node's crypto.randomBytes, getRandomValues,
 * randomUUID) are seeded in the zygote, and notice a fork by a change of pid:
 * every program is pid 2 in its own pid namespace, as the zygote is in
 * bwrap's, so none would. Measured: two programs drew the same randomUUID().
 * Reseeding the primary generator with the kernel's randomness makes each
 * generator below it reseed before its next output. NULL: not found (the
 * zygote then refuses to start).
 */
typedef void rand_seed_fn (const void *, int);

static rand_seed_fn *rand_seed (void) {
  return (rand_seed_fn *)dlsym(RTLD_DEFAULT, "RAND_seed");
}

static int reseed_openssl (void) {
  unsigned char entropy[48];
  rand_seed_fn *seed = rand_seed();
  if (seed == NULL || getrandom(entropy, sizeof entropy, 0) != (ssize_t)sizeof entropy) return -1;
  seed(entropy, sizeof entropy);
  return 0;
}

/*
 * The wakeup eventfds of node's other event loops (the platform's delayed-task
 * thread runs one): a program has none of those threads, and init closed every
 * fd it did not need, yet V8 may still post a delayed task, and node then
 * writes to that loop's eventfd. Measured: a write to the closed fd aborted
 * the program (libuv's uv_async_send), in undici's WebAssembly set-up under
 * fetch(); to a reused number it would have written into a user's file. So
 * the zygote notes its eventfds, and each program puts a fresh one of its own
 * at each number before anything else can take it: the writes land there,
 * and the tasks stay unrun. (The main loop's are replaced by uv_loop_fork.)
 */
#define MAX_WAKEUPS 16
static int wakeups[MAX_WAKEUPS];
static size_t nwakeups;

static void note_wakeups (void) {
  DIR *fds = opendir("/proc/self/fd");
  if (fds == NULL) return;
  struct dirent *e;
  while ((e = readdir(fds)) != NULL && nwakeups < MAX_WAKEUPS) {
    char path[64], target[64];
    int fd = atoi(e->d_name);
    if (fd <= 3 || fd == dirfd(fds)) continue;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0 && (size_t)n == strlen("anon_inode:[eventfd]") && memcmp(target, "anon_inode:[eventfd]", (size_t)n) == 0) wakeups[nwakeups++] = fd;
  }
  closedir(fds);
}

static int keep_wakeups (void) {
  for (size_t i = 0; i < nwakeups; i++) {
    if (fcntl(wakeups[i], F_GETFD) >= 0) return -1; /* taken already: nothing may be written there */
    int fresh = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fresh < 0) return -1;
    if (fresh != wakeups[i]) {
      if (dup3(fresh, wakeups[i], O_CLOEXEC) < 0) return -1;
      close(fresh);
    }
  }
  return 0;
}

/* An inherited file's bytes in a memfd (close-on-exec), for init to execute
 * whatever the mount it came from (zygote.py's as_memfd). -1 on failure. */
static int as_memfd (int fd, const char *name) {
  int memfd = memfd_create(name, MFD_CLOEXEC);
  if (memfd < 0) return -1;
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    if (write(memfd, buf, (size_t)n) != n) { close(memfd); return -1; }
  }
  if (n < 0) { close(memfd); return -1; }
  close(fd);
  return memfd;
}

/* A string argument, kept for the zygote's life; NULL when it is not one. */
static char *string_arg (napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != 0) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL || napi_get_value_string_utf8(env, v, s, len + 1, &len) != 0) return NULL;
  return s;
}

static napi_value serve (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t ctl = -1, reaper_fd = -1;
  void *bpf = NULL;
  size_t bpf_len = 0;
  char *rendezvous_dir = NULL, *tmp_options = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 5 ||
      napi_get_value_int32(env, argv[0], &ctl) != 0 || napi_get_value_int32(env, argv[1], &reaper_fd) != 0 ||
      (rendezvous_dir = string_arg(env, argv[2])) == NULL || (tmp_options = string_arg(env, argv[3])) == NULL ||
      napi_get_buffer_info(env, argv[4], &bpf, &bpf_len) != 0) {
    napi_throw_error(env, NULL, "serve(ctl, reaperFd, rendezvousDir, tmpOptions, bpf)");
    return NULL;
  }
  if (rand_seed() == NULL) {
    napi_throw_error(env, NULL, "hearth zygote: node has no RAND_seed to reseed OpenSSL in each program");
    return NULL;
  }
  int reaper = as_memfd(reaper_fd, "hearth-reaper");
  if (reaper < 0) {
    napi_throw_error(env, NULL, "hearth zygote: no reaper");
    return NULL;
  }
  /* hz_serve keeps these for the zygote's life: the bpf bytes too */
  uint8_t *filter = malloc(bpf_len > 0 ? bpf_len : 1);
  if (filter == NULL) abort();
  memcpy(filter, bpf, bpf_len);
  note_wakeups();
  hz_interp = &node_interp;
  int rc = hz_serve(ctl, reaper, rendezvous_dir, tmp_options, bpf_len > 0 ? filter : NULL, bpf_len, NULL);
  /* a program only: the probe, forked by the zygote itself, still holds the zygote's */
  if (rc == 0 && keep_wakeups() != 0) {
    fputs("hearth zygote child: cannot keep node's wakeup fds\n", stderr);
    _exit(70);
  }
  if (rc == 0 || rc == IS_PROBE) {
    /* A program or the probe: libuv's epoll instance, signal pipe and
     * async wakeups are still the zygote's until the loop makes its own. */
    int err = uv_loop_fork(uv_default_loop());
    if (err != 0) {
      fprintf(stderr, "hearth zygote child: uv_loop_fork: %s\n", uv_strerror(err));
      _exit(70);
    }
    if (rc == 0 && reseed_openssl() != 0) {
      fputs("hearth zygote child: cannot reseed OpenSSL\n", stderr);
      _exit(70);
    }
  }
  napi_value result;
  napi_create_int32(env, rc, &result);
  return result;
}

static napi_value fd_pair (napi_env env, const int fds[2]) {
  napi_value pair, fd;
  napi_create_array_with_length(env, 2, &pair);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &fd);
    napi_set_element(env, pair, i, fd);
  }
  return pair;
}

static napi_value socket_pair (napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    napi_throw_error(env, NULL, "socketpair failed");
    return NULL;
  }
  return fd_pair(env, fds);
}

static napi_value make_pipe (napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    napi_throw_error(env, NULL, "pipe2 failed");
    return NULL;
  }
  return fd_pair(env, fds);
}

static napi_value probe_done (napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  hz_probe_done();
  return NULL;
}

static napi_value do_exit (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  int32_t code = 0;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != 0 || argc < 1 || napi_get_value_int32(env, arg, &code) != 0) code = 1;
  _exit(code & 0xff);
}

napi_value napi_register_module_v1 (napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = { { "serve", serve }, { "socketPair", socket_pair }, { "pipe", make_pipe }, { "probeDone", probe_done }, { "exit", do_exit } };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, strlen(fns[i].name), fns[i].fn, NULL, &f) != 0 ||
        napi_set_named_property(env, exports, fns[i].name, f) != 0) return NULL;
  }
  return exports;
}
