/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes as one watch-ipn-bus line -> ipn_bus_line_parse(). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailnet-status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where string lengths go, so the compiler cannot drop the reads ASan should see. */
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        IpnBusNotify n = {};

        if (ipn_bus_line_parse((const char *) data, size, &n) < 0)
                return 0;

        if (n.has_state && !backend_state_to_string(n.state))
                abort(); /* a state we report must be one we can name */
        sink += n.err_message ? strlen(n.err_message) : 0;
        sink += n.version ? strlen(n.version) : 0;

        ipn_bus_notify_done(&n);
        return 0;
}
