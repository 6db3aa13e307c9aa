/* SPDX-License-Identifier: MIT */
#pragma once

/* Exponential backoff: min, 2*min, 4*min, ... capped at max. Pure arithmetic, no clock. */

#include <stdint.h>

typedef struct Backoff {
        uint64_t min_usec, max_usec;
        uint64_t next_usec; /* what backoff_next() returns next */
        unsigned attempts; /* backoff_next() calls since the last reset */
} Backoff;

void backoff_init(Backoff *b, uint64_t min_usec, uint64_t max_usec);
/* Returns the delay to wait now, and doubles the next one (saturating at max). */
uint64_t backoff_next(Backoff *b);
/* Back to min. */
void backoff_reset(Backoff *b);
/* The delay backoff_next() would return, without advancing. */
uint64_t backoff_peek(const Backoff *b);
