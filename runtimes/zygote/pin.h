/* The pages every child writes, copied by fork itself (pin.c). */
#ifndef HEARTH_PIN_H
#define HEARTH_PIN_H

#include <stddef.h>
#include "isolate.h"

/* Pins the pages of `runs` a child copies at its fork (written, not
 * RUN_COMPILE's) for the zygote's life, and marks them RUN_PINNED: fork
 * copies them into each child itself, and prefault_runs skips them. The
 * number of pages pinned; 0 with the reason in `why` when none was (the
 * runs are then prefaulted as before). */
size_t pin_runs (struct page_run *runs, size_t n, char *why, size_t size);

#endif
