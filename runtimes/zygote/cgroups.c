/* Which cgroup a zygote's child enters (zygote.h): the name the daemon gives
 * checked, whether the child may join it itself, and the hierarchies it
 * joins it in. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "zygote.h"

/* A sandbox cgroup's name (limits/: <language>-<daemon pid>-<n>): one path component. */
int valid_cgroup (struct value v) {
  if (v.kind != K_STR || v.len == 0 || v.len > CGROUP_NAME_MAX) return 0;
  for (size_t i = 0; i < v.len; i++) {
    char c = v.str[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return 0;
  }
  return 1;
}

/* Whether our uid may write `name`'s cgroup.procs in every
 * hierarchy, for the program to join them (isolate.c, join_cgroups). The
 * first that cannot be ends joining: the daemon places children then. */
int joinable_cgroup (struct zygote *z, const char *name) {
  for (size_t i = 0; i < z->iso.nhierarchies; i++) {
    char path[CGROUP_NAME_MAX + 64];
    snprintf(path, sizeof path, "%s/%s/cgroup.procs", z->iso.hierarchies[i], name);
    if (faccessat(z->cgroups, path, W_OK, AT_EACCESS) != 0) {
      fprintf(stderr, "hearth zygote: cannot write the sandbox cgroup's %s: %s; the daemon places each child instead\n", path, strerror(errno));
      z->joins = 0;
      return 0;
    }
  }
  return 1;
}

/* The hierarchies in CGROUPS_DIR, for children to join their cgroups in
 * each: with a cgroup.procs of its own, v2's sandboxes' parent, one ("."),
 * else v1's layout, a directory per hierarchy (the daemon's binds,
 * zygote/argv.ts). Returns whether it is v2's. */
int find_hierarchies (struct zygote *z) {
  if (faccessat(z->cgroups, "cgroup.procs", F_OK, 0) == 0) {
    z->iso.hierarchies[z->iso.nhierarchies++] = ".";
    return 1;
  }
  DIR *dir = opendir(CGROUPS_DIR);
  if (dir == NULL) return 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL && z->iso.nhierarchies < MAX_HIERARCHIES) {
    if (e->d_name[0] == '.' || e->d_type != DT_DIR) continue;
    char *copy = strdup(e->d_name);
    if (copy != NULL) z->iso.hierarchies[z->iso.nhierarchies++] = copy;
  }
  closedir(dir);
  return 0;
}
