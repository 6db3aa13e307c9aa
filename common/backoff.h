/* SPDX-License-Identifier: MIT */
#pragma once

/* Exponential backoff: min, 2*min, 4*min, ... capped at max. Pure arithmetic, no clock. */

#include <stdint.h>

typedef struct Backoff {
        uint64_t min_usec, max_usec;
        uint64_t next_usec; /* what backoff_next() returns next */
} Backoff;

void backoff_init(Backoff *b, uint64_t min_usec, uint64_t max_usec);
/* Like backoff_init(), but whatever min and max say, the first delay is at least floor_min_usec
 * and the delay grows to at least floor_max_usec: a min of 0 still grows, a max of 0 is not a
 * tight loop. */
void backoff_init_floor(Backoff *b, uint64_t min_usec, uint64_t max_usec, uint64_t floor_min_usec,
                        uint64_t floor_max_usec);
/* Returns the delay to wait now, and doubles the next one (saturating at max). */
uint64_t backoff_next(Backoff *b);
/* Back to min. */
void backoff_reset(Backoff *b);
