/* Network namespaces used again (netns.h). Making a sandbox's own network
 * namespace and tearing it down was ~11 % of the machine's CPU per run-now
 * Python call (perf, 2-core VM: 6.9 % set-up, a quarter of it registering
 * the namespace's sysctls; 4.3 % teardown in a kernel worker). A namespace
 * is lent to one sandbox at a time: siblings alive together never share
 * one. What a sandbox could leave in it for the next: no interface, address,
 * route, filter or sysctl (each needs CAP_NET_ADMIN, or uid 0 of the user
 * namespace that owns it; a child has neither), so sockets alone, and init
 * checks there are none before it enters (netns_enter). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "isolate.h"
#include "netns.h"

void netns_pool_open (struct netns_pool *p) {
  p->own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  p->n = 0;
}

int netns_take (struct netns_pool *p) {
  if (p->own < 0) return -1;
  if (p->n > 0) return p->spare[--p->n];
  if (unshare(CLONE_NEWNET) != 0) return -1;
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (setns(p->own, CLONE_NEWNET) != 0) {
    perror("hearth zygote: setns own network namespace");
    exit(EXIT_SETUP_FAILED);
  }
  return fd;
}

void netns_give (struct netns_pool *p, int fd) {
  if (fd < 0) return;
  if (p->own >= 0 && p->n < NETNS_SPARES) p->spare[p->n++] = fd;
  else close(fd);
}

/* Sockets made in our network namespace and not yet freed, of any family
 * (/proc/net/sockstat counts them per namespace since Linux 4.16); -1 when
 * that cannot be read. */
static long sockets_used (void) {
  int fd = open("/proc/thread-self/net/sockstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char head[64];
  ssize_t n = read(fd, head, sizeof head - 1);
  close(fd);
  if (n <= 0) return -1;
  head[n] = 0;
  long used;
  return sscanf(head, "sockets: used %ld", &used) == 1 ? used : -1;
}

int netns_enter (struct netns_lease *lease) {
  lease->entered = lease->fd >= 0 && setns(lease->fd, CLONE_NEWNET) == 0 && sockets_used() == 0;
  return lease->entered;
}
