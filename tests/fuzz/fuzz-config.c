/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for config_parse(): any bytes must give either a config or one error
 * string, never a crash, a leak or a hang. A config that parsed must hold what validation
 * promises (bounds, limits, endpoint shape); config_lint() must not crash on it. Also
 * round-trips the durations it parsed.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "util.h"

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
                if (c->restart_backoff_min_usec > c->restart_backoff_max_usec ||
                    c->restart_backoff_max_usec > 24 * 3600 * USEC_PER_SEC ||
                    c->stop_timeout_usec < USEC_PER_SEC ||
                    c->stop_timeout_usec > 3600 * USEC_PER_SEC || c->health_timeout_usec == 0 ||
                    (c->health_interval_usec > 0 &&
                     c->health_timeout_usec >= c->health_interval_usec))
                        abort();
                if (c->n_registries > CONFIG_MAX_REGISTRIES)
                        abort();
                for (size_t i = 0; i < c->n_registries; i++) {
                        const Registry *reg = &c->registries[i];

                        if (!registry_name_is_valid(reg->name) || reg->n_endpoints == 0 ||
                            reg->n_endpoints > CONFIG_MAX_ENDPOINTS)
                                abort();
                        for (size_t j = 0; j < reg->n_endpoints; j++) {
                                const RegistryEndpoint *e = &reg->endpoints[j];

                                if (!e->url == !e->peer)
                                        abort();
                                if (e->peer && (e->port < 1 || e->port > 65535 || !e->scheme))
                                        abort();
                        }
                }
                if (strlen(c->tailscale_socket) >= 108 || strlen(c->k0s_status_socket) >= 108)
                        abort();
                /* Lint reads files the config names; in the fuzzer they rarely exist. */
                char **warnings = NULL;
                if (config_lint(c, &warnings) < 0 && warnings)
                        abort();
                strv_free(warnings);
                /* format_duration() output must parse back to the same value. */
                format_duration(buf, sizeof(buf), c->settle_usec);
                if (parse_duration(buf, &usec) < 0 || usec != c->settle_usec)
                        abort();
        } else if (r == -EINVAL && (!error || !startswith(error, "fuzz.yaml:")))
                abort();
        return 0;
}
