/* SPDX-License-Identifier: MIT */
/* import-unit: systemd's word splitting, the units `k0s install` writes (worker,
 * controller+worker, single; tests/data/units/), what is not carried, and that every printed
 * config parses with the agent's own config parser (what check-config runs). */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic-file.h"
#include "import-unit.h"
#include "util.h"

static char **split_ok(const char *s) {
        char **w = NULL, *err = NULL;
        ck_assert_msg(unit_split_words(s, &w, &err) == 0, "%s: %s", s, err ?: "");
        return w;
}

static void split_fails(const char *s, const char *msg) {
        char **w = NULL, *err = NULL;
        ck_assert_int_eq(unit_split_words(s, &w, &err), -EINVAL);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, msg), "%s: '%s' lacks '%s'", s, err, msg);
        free(err);
}

START_TEST(test_split) {
        _cleanup_strv_free_ char **a = split_ok("  /bin/k0s  worker\t--x=1 ");
        ck_assert_int_eq(strv_length(a), 3);
        ck_assert_str_eq(a[2], "--x=1");
        _cleanup_strv_free_ char **b = split_ok("\"a b\" 'c \"d\"' e\"f g\"h \"\"");
        ck_assert_int_eq(strv_length(b), 4);
        ck_assert_str_eq(b[0], "a b");
        ck_assert_str_eq(b[1], "c \"d\"");
        ck_assert_str_eq(b[2], "ef gh");
        ck_assert_str_eq(b[3], "");
        _cleanup_strv_free_ char **c = split_ok("--a=x\\x20y \\\"q\\\" \\s \\101\\u00e9 \"t\\tu\"");
        ck_assert_str_eq(c[0], "--a=x y");
        ck_assert_str_eq(c[1], "\"q\"");
        ck_assert_str_eq(c[2], " ");
        ck_assert_str_eq(c[3], "A\xc3\xa9");
        ck_assert_str_eq(c[4], "t\tu");
        split_fails("\"open", "unterminated");
        split_fails("a\\", "end of the line");
        split_fails("a\\q", "unsupported escape");
        split_fails("a\\x00", "unsupported escape");
}
END_TEST

static char *data_path(const char *name) {
        return strdup_printf("%s/units/%s", getenv("TEST_DATA_DIR"), name);
}

/* Import a unit text; returns the printed config and parses it with config_parse(). */
static char *import_text(const char *text, ImportedUnit *u, AgentConfig **ret_cfg) {
        char *err = NULL, *out = NULL;
        ck_assert_msg(import_unit_feed(u, text, "test.service", NULL, &err) == 0, "%s", err ?: "");
        ck_assert_msg(import_unit_finish(u, "test.service", &err) == 0, "%s", err ?: "");
        ck_assert_int_eq(import_unit_render(u, "/etc/systemd/system/test.service", &out), 0);
        FILE *f = fmemopen(out, strlen(out), "r");
        ck_assert_ptr_nonnull(f);
        int r = config_parse(f, "imported.conf", ret_cfg, &err);
        fclose(f);
        ck_assert_msg(r == 0, "printed config does not parse: %s\n%s", err ?: "", out);
        return out;
}

static char *import_file(const char *name, ImportedUnit *u, AgentConfig **ret_cfg) {
        _cleanup_free_ char *p = data_path(name), *text = NULL;
        size_t len;
        ck_assert_int_eq(read_file_full(p, 1 << 20, &text, &len), 0);
        return import_text(text, u, ret_cfg);
}

START_TEST(test_worker_as_k0s_install_writes_it) {
        /* k0s install worker --data-dir=/var/lib/k0s-custom --labels=site=manila
         *   --token-file=/etc/k0s/k0stoken -e HTTP_PROXY=http://proxy:3128 */
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *out = import_file("k0sworker.service", &u, &c);

        ck_assert_int_eq(c->role, K0S_ROLE_WORKER);
        ck_assert_str_eq(c->k0s_binary, "/usr/local/bin/k0s");
        ck_assert_str_eq(c->k0s_token_file, "/etc/k0s/k0stoken");
        ck_assert_int_eq(strv_length(c->k0s_args), 2);
        ck_assert_str_eq(c->k0s_args[0], "--data-dir=/var/lib/k0s-custom");
        ck_assert_str_eq(c->k0s_args[1], "--labels=site=manila");
        ck_assert(strv_contains(c->k0s_env, "HTTP_PROXY=http://proxy:3128"));
        ck_assert_int_eq(strv_length(u.notes), 0);
        ck_assert_ptr_null(strstr(out, "interface:")); /* the site's, not the unit's */
}
END_TEST

START_TEST(test_controller_worker) {
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *out = import_file("k0scontroller-worker.service", &u, &c);
        ck_assert_ptr_nonnull(out);

        ck_assert_int_eq(c->role, K0S_ROLE_CONTROLLER_WORKER);
        ck_assert_str_eq(c->k0s_base_config, "/etc/k0s/k0s.yaml");
        ck_assert_str_eq(c->k0s_token_file, "/etc/k0s/k0stoken");
        ck_assert_int_eq(strv_length(c->k0s_args), 3);
        ck_assert_str_eq(c->k0s_args[0], "--data-dir=/var/lib/k0s");
        /* kardianos' cmdEscape wrote the space as \x20; it is one argument again. */
        ck_assert_str_eq(c->k0s_args[1], "--kubelet-extra-args=--max-pods=200 --v=2");
        ck_assert_str_eq(c->k0s_args[2], "--labels=site=cebu,tier=edge");
        ck_assert(strv_contains(c->k0s_env, "HTTP_PROXY=http://proxy:3128"));
        ck_assert(strv_contains(c->k0s_env, "NO_PROXY=10.0.0.0/8,.svc"));
}
END_TEST

START_TEST(test_single) {
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *out = import_file("k0scontroller-single.service", &u, &c);

        ck_assert_int_eq(c->role, K0S_ROLE_SINGLE);
        ck_assert_int_eq(strv_length(c->k0s_args), 0);
        ck_assert_int_eq(strv_length(c->k0s_env), 0);
        ck_assert_ptr_nonnull(strstr(out, "# token_file: not in the unit"));
}
END_TEST

START_TEST(test_not_carried) {
        static const char unit[] = "[Unit]\nExecStart=/ignored\n"
                                   "[Service]\n"
                                   "# a comment\n"
                                   "ExecStart=/usr/bin/k0s \\\n"
                                   "   controller --enable-worker --token-file /var/lib/tok \\\n"
                                   "; comment inside a continuation\n"
                                   "   --profile=edge --debug K10abcdefghijklmnop\n"
                                   "Environment=K0S_TOKEN=secret FOO=1\n"
                                   "Environment=FOO=2 'BAR=with space' %%LIT=1 BAD=%H\n"
                                   "EnvironmentFile=-/nonexistent/env\n"
                                   "EnvironmentFile=/nonexistent/required\n";
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *out = import_text(unit, &u, &c);

        ck_assert_int_eq(c->role, K0S_ROLE_CONTROLLER_WORKER);
        ck_assert_str_eq(c->k0s_binary, "/usr/bin/k0s");
        ck_assert_str_eq(c->k0s_token_file, "/var/lib/tok");
        ck_assert_int_eq(strv_length(c->k0s_args), 2);
        ck_assert_str_eq(c->k0s_args[0], "--profile=edge");
        ck_assert_str_eq(c->k0s_args[1], "--debug");
        ck_assert(strv_contains(c->k0s_env, "FOO=2"));
        ck_assert(strv_contains(c->k0s_env, "BAR=with space"));
        ck_assert_int_eq(strv_length(c->k0s_env), 2);
        /* K0S_TOKEN, the inline token, %LIT (not a name), %H, the unreadable file. */
        ck_assert_int_eq(strv_length(u.notes), 5);
        ck_assert_ptr_nonnull(strstr(out, "# Not carried over"));
        ck_assert_ptr_nonnull(strstr(out, "K0S_TOKEN is not carried"));
        ck_assert_ptr_null(strstr(out, "secret"));
        ck_assert_ptr_null(strstr(out, "K10abcdefghijklmnop"));
}
END_TEST

static void finish_fails(const char *unit, const char *msg) {
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_free_ char *err = NULL;
        ck_assert_int_eq(import_unit_feed(&u, unit, "t.service", NULL, &err), 0);
        ck_assert_int_eq(import_unit_finish(&u, "t.service", &err), -EINVAL);
        ck_assert_msg(err && strstr(err, msg), "'%s' lacks '%s'", err ?: "", msg);
}

START_TEST(test_refused) {
        finish_fails("[Service]\nType=simple\n", "no ExecStart=");
        finish_fails("[Service]\nExecStart=/k0s worker \"--x=1\n", "unterminated");
        finish_fails("[Service]\nExecStart=/k0s worker --x=%i\n", "specifier");
        finish_fails("[Service]\nExecStart=/k0s worker $OPTS\n", "$VARIABLE");
        finish_fails("[Service]\nExecStart=/k0s worker ; /bin/true\n", "more than one command");
        finish_fails("[Service]\nExecStart=/k0s kubectl get nodes\n", "not k0s controller");
        finish_fails("[Service]\nExecStart=k0s worker\n", "absolute");
        finish_fails("[Service]\nExecStart=@/k0s k0s worker\n", "@");
        finish_fails("[Service]\nExecStart=/k0s controller --single=maybe\n", "boolean");
        /* An empty ExecStart= resets (a drop-in replacing the command). */
        finish_fails("[Service]\nExecStart=/k0s worker\nExecStart=\n", "no ExecStart=");
}
END_TEST

START_TEST(test_dollar_and_percent_doubled) {
        static const char unit[] = "[Service]\nExecStart=-/k0s worker --labels=a=100%% "
                                   "--x=$$HOME\n";
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *out = import_text(unit, &u, &c);
        ck_assert_ptr_nonnull(out);
        ck_assert_str_eq(c->k0s_args[0], "--labels=a=100%");
        ck_assert_str_eq(c->k0s_args[1], "--x=$HOME");
}
END_TEST

static Suite *import_unit_suite(void) {
        Suite *s = suite_create("import-unit");
        TCase *tc = tcase_create("import-unit");
        tcase_add_test(tc, test_split);
        tcase_add_test(tc, test_worker_as_k0s_install_writes_it);
        tcase_add_test(tc, test_controller_worker);
        tcase_add_test(tc, test_single);
        tcase_add_test(tc, test_not_carried);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_dollar_and_percent_doubled);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(import_unit_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
