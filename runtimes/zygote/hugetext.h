/* The runtime's machine code on transparent huge pages (hugetext.c). */
#ifndef HEARTH_HUGETEXT_H
#define HEARTH_HUGETEXT_H

#include <stddef.h>
#include <stdint.h>

/* Moves the executable mapping holding `inside` (the runtime's code), widened
 * or narrowed to whole 2 MB pages within its file's unwritable mappings, onto
 * anonymous huge pages at the same addresses, read-only and executable. The
 * number of 2 MB pages moved; 0 with the reason in `why` when none was (the
 * file's pages then stay). */
size_t huge_text (uintptr_t inside, char *why, size_t size);

#endif
