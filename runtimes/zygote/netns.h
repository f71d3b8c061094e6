/* Network namespaces used again, one sandbox at a time. */
#ifndef HEARTH_NETNS_H
#define HEARTH_NETNS_H

#include <stddef.h>

/* The zygote's network namespaces not in use: each was a sandbox's, which
 * has ended; at most NETNS_SPARES are kept (~120 KB of kernel memory each,
 * measured on Linux 6.18). */
#define NETNS_SPARES 64

struct netns_pool {
  int own;      /* the zygote's own network namespace, or -1: no pool (each child makes its own) */
  int spare[NETNS_SPARES];
  size_t n;
};

/* What a sandbox's init is lent: `fd` (-1: none), and whether it entered it. */
struct netns_lease {
  int fd;
  int entered; /* written by init, which shares the zygote's memory */
};

/* In the zygote: the pool, empty. */
void netns_pool_open (struct netns_pool *p);

/* In the zygote: a spare namespace, or a new one; -1 when none can be made. */
int netns_take (struct netns_pool *p);

/* In the zygote: `fd` back once its sandbox has ended, for the next one. */
void netns_give (struct netns_pool *p, int fd);

/*
 * In a sandbox's init: enters the lent namespace if no socket is left in it
 * (a socket can outlive the sandbox that made it: in flight in a unix
 * socket's queue, it lasts until the receiver reads it or the kernel's unix
 * garbage collector runs). Sets lease->entered; 0 means init must unshare a
 * network namespace of its own, as with no lease.
 */
int netns_enter (struct netns_lease *lease);

#endif
