/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for config_parse(): any bytes must give either a config or one error
 * string, never a crash, a leak or a hang. Also round-trips the durations it parsed.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        char buf[64];
        FILE *f;
        int r;

        /* fmemopen() refuses a zero-length buffer on some libcs: feed one harmless byte. */
        f = size > 0 ? fmemopen((void *) data, size, "r") : fmemopen((void *) "\n", 1, "r");
        if (!f)
                return 0;
        r = config_parse(f, "fuzz.yaml", &c, &error);
        fclose(f);

        if (r >= 0) {
                uint64_t usec = 0;

                /* A parsed config must hold what validation promises. */
                if (!c || error || !c->k0s_args || !c->k0s_env || !c->interface)
                        abort();
                if (c->restart_backoff_min_usec > c->restart_backoff_max_usec)
                        abort();
                for (size_t i = 0; i < c->n_registries; i++) {
                        Registry copy;

                        if (!registry_name_is_valid(c->registries[i].name) ||
                            c->registries[i].n_endpoints == 0)
                                abort();
                        if (registry_copy(&c->registries[i], &copy) >= 0)
                                registry_done(&copy);
                }
                /* format_duration() output must parse back to the same value. */
                format_duration(buf, sizeof(buf), c->settle_usec);
                if (parse_duration(buf, &usec) < 0 || usec != c->settle_usec)
                        abort();
        } else if (r == -EINVAL && (!error || !startswith(error, "fuzz.yaml:")))
                abort();
        return 0;
}
