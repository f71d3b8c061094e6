/* The interpreter the core runs in, and what it needs around a fork.
 *
 * Python (the default): its own fork protocol, what os.fork() does around
 * fork(2), resolved in the python3 executable when zygote.py loads the
 * library (weak here: the node addon runs without them). The program, a
 * descendant, calls PyOS_AfterFork_Child() before running Python again; from
 * Python 3.12 that releases the import lock PyOS_BeforeFork() took (measured:
 * without it, Python 3.13 aborts there).
 *
 * Node: set by node/addon.c before it calls hz_serve(). */
#ifndef HEARTH_INTERP_H
#define HEARTH_INTERP_H

struct interp {
  const char *runtime;            /* what a forked program runs: the `ready` frame says so */
  void (*before_fork) (void);     /* in the zygote, before a sandbox or the probe is forked */
  void (*after_fork_parent) (void);
  int prefault_all;               /* with no probe's pages learned, a program copies every writable page at once */
  void (*code) (void);            /* a function of the runtime itself: its machine code goes onto huge pages (hugetext.h); NULL: none */
};

/* Which interpreter loaded the core: &python_interp unless its glue says otherwise. */
extern const struct interp *hz_interp;

/* 0 when the python zygote's interpreter lacks its fork protocol (not a python3 executable). */
int hz_interp_ready (void);

#endif
