/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for render_k0s_config(): any bytes as the base k0s.yaml must give either a
 * rendered config or one "fuzz.yaml:..." error, never a crash, a leak or a hang. A rendered
 * config, fed back as the base with the same facts, must render to the same bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "render-k0s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int render(const char *base, size_t len, K0sRole role, char **ret_yaml, char **ret_warning,
                  char **ret_error) {
        AgentConfig cfg = {
                .interface = (char *) "tailscale0",
                .role = role,
                .calico_mtu = 1230,
                .calico_mark_mask = (char *) "0xff00ff00",
                .calico_nftables_mark_mask = (char *) "0xff00ff00",
        };
        /* The failover profile for 60s, so the extraArgs paths get fuzzed too. */
        FailoverProfile fp = { .monitor_period_sec = 5, .grace_sec = 41, .toleration_sec = 9 };
        K0sFacts facts = { .ipv4 = "100.64.1.2",
                           .ipv6 = "fd7a:115c:a1e0::1",
                           .dns_name = "node1.tail1234.ts.net",
                           .failover = &fp };
        K0sRenderNotes notes = {};
        int r;

        r = render_k0s_config(base, len, "fuzz.yaml", &cfg, &facts, ret_yaml, &notes, ret_error);
        if (r >= 0 && notes.warnings) {
                for (char **w = notes.warnings; *w; w++)
                        if (strchr(*w, '\n'))
                                abort();
                *ret_warning = strv_join(notes.warnings, "|");
                if (!*ret_warning) {
                        *ret_yaml = mfree(*ret_yaml);
                        r = -ENOMEM;
                }
        }
        k0s_render_notes_done(&notes);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *yaml = NULL, *warning = NULL, *error = NULL;
        _cleanup_free_ char *again = NULL, *warning2 = NULL, *error2 = NULL;
        /* The first byte picks the role, so kine and etcd paths both get fuzzed. */
        K0sRole role = size > 0 && (data[0] & 1) ? K0S_ROLE_SINGLE : K0S_ROLE_CONTROLLER;
        int r;

        r = render((const char *) data, size, role, &yaml, &warning, &error);
        if (r < 0) {
                if (yaml || warning)
                        abort();
                if (r == -ENOMEM)
                        return 0;
                if (!error || !startswith(error, "fuzz.yaml:") || strchr(error, '\n'))
                        abort();
                return 0;
        }
        if (!yaml || error || (warning && strchr(warning, '\n')))
                abort();

        r = render(yaml, strlen(yaml), role, &again, &warning2, &error2);
        if (r == -ENOMEM)
                return 0;
        if (r < 0 || !streq(yaml, again) || !streq_ptr(warning, warning2))
                abort();
        return 0;
}
