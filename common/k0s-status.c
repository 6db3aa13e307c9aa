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

#include "k0s-status.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);
DEFINE_TRIVIAL_CLEANUP_FUNC(K0sStatus *, k0s_status_free);

/* JSON's own whitespace, not isspace(): NUL, \v and \f are not allowed between values. */
static bool json_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copy of a string member; absent, null, wrong-typed and empty all mean "not set" (NULL). */
static int json_dup_string(const cJSON *obj, const char *key, char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        char *s = NULL;

        if (cJSON_IsString(v) && !isempty(v->valuestring)) {
                s = strdup(v->valuestring);
                if (!s)
                        return -ENOMEM;
        }
        *ret = s;
        return 0;
}

int k0s_status_parse(const char *json, size_t len, K0sStatus **ret) {
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        _cleanup_(k0s_status_freep) K0sStatus *s = NULL;
        const cJSON *pid, *api;
        const char *end = NULL;
        int r;

        if (!json || len == 0)
                return -EINVAL;
        if (len > K0S_STATUS_MAX_SIZE)
                return -EFBIG;

        root = cJSON_ParseWithLengthOpts(json, len, &end, false);
        if (!root)
                return -EINVAL;
        /* cJSON stops after the first value: trailing bytes mean this is not one document. */
        for (const char *p = end; p && p < json + len; p++)
                if (!json_is_space(*p))
                        return -EINVAL;
        if (!cJSON_IsObject(root))
                return -EINVAL;

        s = calloc(1, sizeof(K0sStatus));
        if (!s)
                return -ENOMEM;

        r = json_dup_string(root, "Version", &s->version);
        if (r < 0)
                return r;
        r = json_dup_string(root, "Role", &s->role);
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

        s->workloads = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "Workloads"));
        s->single_node = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "SingleNode"));

        api = cJSON_GetObjectItemCaseSensitive(root, "WorkerToAPIConnectionStatus");
        if (cJSON_IsObject(api)) {
                s->api_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(api, "Success"));
                r = json_dup_string(api, "Message", &s->api_message);
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
