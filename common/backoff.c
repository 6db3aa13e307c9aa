/* SPDX-License-Identifier: MIT */
/*
 * Exponential backoff arithmetic: min, 2*min, 4*min, ... capped at max. No clock and no timer:
 * the caller arms its own sd-event timer with the value and decides when to reset.
 */

#include "backoff.h"
#include "macro.h"

void backoff_init(Backoff *b, uint64_t min_usec, uint64_t max_usec) {
        /* A max below min would make the first delay longer than the cap; the cap wins. A min of
         * 0 stays 0 (doubling 0 is 0): that is "retry at once", which is what 0 asks for. */
        *b = (Backoff){
                .min_usec = min_usec,
                .max_usec = max_usec,
        };
        backoff_reset(b);
}

void backoff_init_floor(Backoff *b, uint64_t min_usec, uint64_t max_usec, uint64_t floor_min_usec,
                        uint64_t floor_max_usec) {
        backoff_init(b, MAX(min_usec, floor_min_usec),
                     MAX(max_usec, MAX(floor_min_usec, floor_max_usec)));
}

uint64_t backoff_next(Backoff *b) {
        uint64_t d = b->next_usec;

        /* Saturating: no overflow however often it is called. */
        if (b->next_usec > b->max_usec / 2)
                b->next_usec = b->max_usec;
        else
                b->next_usec *= 2;
        return d;
}

void backoff_reset(Backoff *b) {
        b->next_usec = MIN(b->min_usec, b->max_usec);
}
