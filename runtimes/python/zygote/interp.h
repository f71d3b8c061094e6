/* The interpreter's own fork protocol (what os.fork() does around fork(2)),
 * resolved in the python3 executable when zygote.py loads this library: the
 * program, a descendant, calls PyOS_AfterFork_Child() before running Python
 * again, and from Python 3.12 that releases the import lock PyOS_BeforeFork()
 * took (measured: without it, Python 3.13 aborts there). */
#ifndef HEARTH_INTERP_H
#define HEARTH_INTERP_H

extern void PyOS_BeforeFork (void);
extern void PyOS_AfterFork_Parent (void);

#endif
