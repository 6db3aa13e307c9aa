/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes as a k0s status-socket body -> k0s_status_parse(). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k0s-status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where string lengths go, so the compiler cannot drop the reads ASan should see. */
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        K0sStatus *s = NULL;

        if (k0s_status_parse((const char *) data, size, &s) < 0)
                return 0;

        if (!s->version && !s->role)
                abort(); /* the parser promised one of them */
        if (s->pid < 0)
                abort();
        sink += s->version ? strlen(s->version) : 0;
        sink += s->role ? strlen(s->role) : 0;
        sink += s->api_message ? strlen(s->api_message) : 0;

        k0s_status_free(s);
        return 0;
}
