/* SPDX-License-Identifier: MIT */
/*
 * Decodes the body of k0s's status socket (GET /status): the Go struct K0sStatus has no json
 * tags, so keys are PascalCase field names. Owns only the decoding; the socket I/O and the
 * health judgement live in agent/health.c. Untrusted input: size-limited, tolerant, no crash.
 */

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "k0s-status.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(K0sStatus *, k0s_status_free);

/* Strings are sanitized: they reach status.json and STATUS=. */
#define TEXT_MAX_LEN 512u

int k0s_status_parse(const char *json, size_t len, K0sStatus **ret) {
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        _cleanup_(k0s_status_freep) K0sStatus *s = NULL;
        const cJSON *pid, *api;
        int r;

        r = json_parse_bounded(json, len, K0S_STATUS_MAX_SIZE, K0S_STATUS_MAX_VALUES, true, &root);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(K0sStatus));
        if (!s)
                return -ENOMEM;

        r = json_dup_string(root, "Version", TEXT_MAX_LEN, &s->version);
        if (r < 0)
                return r;
        r = json_dup_string(root, "Role", TEXT_MAX_LEN, &s->role);
        if (r < 0)
                return r;
        /* Any JSON object would pass the tolerant field rules; one of these says it is k0s. */
        if (!s->version && !s->role)
                return -EINVAL;

        /* Go's int: a JSON number. Anything not a positive integer that fits is "absent". */
        pid = cJSON_GetObjectItemCaseSensitive(root, "Pid");
        if (cJSON_IsNumber(pid) && pid->valuedouble >= 1 && pid->valuedouble <= INT_MAX &&
            pid->valuedouble == (double) (int) pid->valuedouble)
                s->pid = (int) pid->valuedouble;

        s->workloads = json_get_bool(root, "Workloads");
        s->single_node = json_get_bool(root, "SingleNode");

        api = cJSON_GetObjectItemCaseSensitive(root, "WorkerToAPIConnectionStatus");
        if (cJSON_IsObject(api)) {
                s->api_ok = json_get_bool(api, "Success");
                r = json_dup_string(api, "Message", TEXT_MAX_LEN, &s->api_message);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

K0sStatus *k0s_status_free(K0sStatus *s) {
        if (!s)
                return NULL;

        free(s->version);
        free(s->role);
        free(s->api_message);
        free(s);
        return NULL;
}
