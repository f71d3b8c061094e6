/* The zygote's probe: which of its pages a sandbox's program writes. */
#ifndef HEARTH_PROBE_H
#define HEARTH_PROBE_H

#include <stddef.h>
#include "isolate.h"

#define MAX_RUNS 4096
#define IS_PROBE 3 /* hz_serve's answer in the probe child (zygote.py, zygote.mjs: PROBE) */

/*
 * Which of the zygote's pages does a child write before its first call? A
 * probe child, forked like a program but without isolation (it runs no user
 * code: zygote.py or zygote.mjs rehearses the bootstrap's calls in it and calls
 * hz_probe_done), reports the pages it copied into `runs` (at most `max`,
 * *nruns of them); every child then prefaults those (python: ~280 of ~2,450
 * writable pages, measured).
 * Returns 1 in the probe (which closed `ctl` and `pidns`, the zygote's); 0 in
 * the zygote, learned or not (*nruns 0: a python child prefaults everything,
 * a node one nothing: interp.h).
 */
int learn_pages (int ctl, int pidns, struct page_run *runs, size_t max, size_t *nruns);

/*
 * Called by the probe between its start and its call (python; node does not
 * yet): the read-only pages (code, constants) it maps after this are those a
 * child's first call would fault in one by one (fork copies none of them),
 * and hz_probe_done reports them too, for each child to map at once before
 * its `ready` (prefault_runs). Only the call's (~215 pages): the start's own
 * faults come before `ready`, off any call's path. Measured: a python
 * child's first call took 19-20 page faults, 4-5 with these mapped.
 */
void hz_probe_started (void);

/*
 * Called by the probe after its first call (python: one that came with its
 * bytecode, as a fresh sandbox's first call of code the daemon has seen
 * does), before a second one that compiles: what the first copied (and its
 * call mapped) every child copies (maps) at the fork; what the second added,
 * only before its first compile of user code (hz_prefault_compile, called by
 * the bootstrap). Without it, every child copies what the whole rehearsal
 * did. Measured: ~280 pages at the fork instead of ~350.
 */
void hz_probe_answered (void);

/* Called by the probe once rehearsed: reports its dirty runs (and the
 * call's mapped ones, hz_probe_started; split, hz_probe_answered), and ends it. */
void hz_probe_done (void);

/* In a forked program, before its first compile of user code: the pages the
 * probe's compile added (RUN_COMPILE), copied and mapped at once, unless the
 * fork frame asked for them with the others (`precompile`: the daemon expects
 * a compile; copying them in the call cost a first call of new code ~0.3-1 ms
 * more, measured). */
void hz_prefault_compile (void);

#endif
