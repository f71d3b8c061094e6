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
 * *nruns of them); every child then prefaults those (python: ~410 of ~1,850
 * writable pages, measured).
 * Returns 1 in the probe (which closed `ctl` and `pidns`, the zygote's); 0 in
 * the zygote, learned or not (*nruns 0: a python child prefaults everything,
 * a node one nothing: interp.h).
 */
int learn_pages (int ctl, int pidns, struct page_run *runs, size_t max, size_t *nruns);

/* Called by the probe once rehearsed: reports its dirty runs, and ends it. */
void hz_probe_done (void);

#endif
