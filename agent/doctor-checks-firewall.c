/* SPDX-License-Identifier: MIT */
/*
 * doctor's NW08: the live netfilter rules of this network namespace, from `iptables-save` and
 * `nft -j list ruleset` run at the same time (execve, 3 s deadline), scanned for MARK/CONNMARK/
 * mark operands touching tailscale's 0xff0000 outside its own ts-* chains.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define AREA "cni"
#define TOOL_TIMEOUT_USEC (3 * USEC_PER_SEC)
#define TOOL_OUTPUT_MAX (16u * 1024u * 1024u)

static const char *find_tool(const char *const *candidates) {
        for (size_t i = 0; candidates[i]; i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

void doctor_checks_firewall(Doctor *d) {
        static const char *const ipt_paths[] = { "/usr/sbin/iptables-save", "/sbin/iptables-save",
                                                 "/usr/bin/iptables-save", NULL };
        static const char *const nft_paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft",
                                                 NULL };
        if (!doctor_wants(d, "NW08"))
                return;
        if (!d->is_root) {
                doctor_report(d, "NW08", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: reading netfilter rules needs root");
                return;
        }
        const char *ipt = find_tool(ipt_paths), *nft = find_tool(nft_paths);
        char *ipt_argv[] = { (char *) ipt, NULL };
        char *nft_argv[] = { (char *) nft, (char *) "-j", (char *) "list", (char *) "ruleset",
                             NULL };
        char *const *argvs[2];
        const char *names[2];
        size_t n = 0;
        if (ipt) {
                names[n] = "iptables-save";
                argvs[n++] = ipt_argv;
        }
        if (nft) {
                names[n] = "nft -j list ruleset";
                argvs[n++] = nft_argv;
        }
        if (n == 0) {
                doctor_report(d, "NW08", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: neither iptables-save nor nft is installed");
                return;
        }
        char *out[2] = {};
        int st[2];
        doctor_run_many(argvs, n, TOOL_TIMEOUT_USEC, TOOL_OUTPUT_MAX, out, st);
        _cleanup_strv_free_ char **found = calloc(1, sizeof(char *));
        _cleanup_free_ char *ran = NULL;
        StrBuf tools = {};
        for (size_t i = 0; i < n; i++) {
                char **f = NULL;
                int r = !out[i] || st[i] != 0  ? -EIO
                        : argvs[i] == ipt_argv ? doctor_scan_iptables_save(out[i], &f)
                                               : doctor_scan_nft_json(out[i], strlen(out[i]), &f);
                (void) strbuf_append(&tools, tools.s ? ", " : "");
                (void) strbuf_append(&tools, names[i]);
                (void) strbuf_append(&tools, r < 0 ? " (failed)" : "");
                for (size_t k = 0; f && f[k]; k++)
                        (void) strv_extend(&found, f[k]);
                strv_free(f);
                free(out[i]);
        }
        ran = tools.s;
        if (!found || !found[0]) {
                doctor_report(d, "NW08", AREA, DOCTOR_OK, ran, NULL,
                              "no live rule outside ts-* chains touches mark bits 0xff0000");
                return;
        }
        _cleanup_free_ char *list = strv_join(found, "; ");
        doctor_report(d, "NW08", AREA, DOCTOR_WARNING, list,
                      "find the owner by its chain (cali-*: FELIX_IPTABLESMARKMASK/"
                      "FELIX_NFTABLESMARKMASK=0xff000000; KUBE-ROUTER-*: kube-router's "
                      "0x10000/0x20000 marks; else the tool that made the chain) and move its "
                      "marks out of 0xff0000",
                      "%zu live rule%s set or match mark bits in tailscale's 0xff0000 (%s)",
                      strv_length(found), strv_length(found) == 1 ? "" : "s", found[0]);
}
