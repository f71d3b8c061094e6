/* The python interpreter's fork protocol (interp.h), the core's default. */
#include <stddef.h>
#include "interp.h"

extern void PyOS_BeforeFork (void) __attribute__((weak));
extern void PyOS_AfterFork_Parent (void) __attribute__((weak));

static void before_fork (void) {
  if (PyOS_BeforeFork != NULL) PyOS_BeforeFork();
}

static void after_fork_parent (void) {
  if (PyOS_AfterFork_Parent != NULL) PyOS_AfterFork_Parent();
}

/* PyOS_BeforeFork: in the python3 executable, or its libpython */
static const struct interp python_interp = { "python", before_fork, after_fork_parent, 1, PyOS_BeforeFork };

const struct interp *hz_interp = &python_interp;

int hz_interp_ready (void) {
  return hz_interp != &python_interp || (PyOS_BeforeFork != NULL && PyOS_AfterFork_Parent != NULL);
}
