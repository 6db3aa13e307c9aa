/* SPDX-License-Identifier: MIT */
/*
 * Owns `import-unit`: reading k0s's own systemd unit (ExecStart=, Environment=,
 * EnvironmentFile=, drop-ins) with systemd's quoting rules and printing the k0s-tsagent.conf
 * that runs the same k0s. It writes no file and touches no unit: the operator reviews the
 * output, then switches (README). Validation of the result is check-config's.
 *
 * The unit it reads is k0s's template (k0s pkg/install/systemd_linux.go: `ExecStart={{.Path|
 * cmdEscape}}{{range .Arguments}} {{.|cmdEscape}}{{end}}` and `Environment="{{.}}"` per
 * `--env`; cmdEscape, from kardianos/service, turns " " into \x20) with the arguments of k0s
 * cmd/install/util.go cmdFlagsToArgs(): every flag as `--name=value`, paths made absolute.
 */

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic-file.h"
#include "import-unit.h"
#include "util.h"

#define UNIT_MAX_SIZE (1024 * 1024)

void imported_unit_done(ImportedUnit *u) {
        free(u->binary);
        free(u->token_file);
        free(u->base_config);
        strv_free(u->args);
        strv_free(u->env);
        strv_free(u->notes);
        free(u->exec_start);
        *u = (ImportedUnit){};
}

static void utf8_put(StrBuf *b, uint32_t c, int *r) {
        char o[4];
        size_t n;
        if (c < 0x80)
                o[0] = (char) c, n = 1;
        else if (c < 0x800)
                o[0] = (char) (0xc0 | (c >> 6)), o[1] = (char) (0x80 | (c & 0x3f)), n = 2;
        else if (c < 0x10000)
                o[0] = (char) (0xe0 | (c >> 12)), o[1] = (char) (0x80 | ((c >> 6) & 0x3f)),
                o[2] = (char) (0x80 | (c & 0x3f)), n = 3;
        else
                o[0] = (char) (0xf0 | (c >> 18)), o[1] = (char) (0x80 | ((c >> 12) & 0x3f)),
                o[2] = (char) (0x80 | ((c >> 6) & 0x3f)), o[3] = (char) (0x80 | (c & 0x3f)), n = 4;
        if (*r >= 0)
                *r = strbuf_append_n(b, o, n);
}

/* One C escape after the backslash at *p (systemd's cunescape_one()); advances *p. Returns the
 * code point, or -1 for what systemd refuses too. */
static int64_t unescape_one(const char **p) {
        const char *s = *p;
        static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"''s ";
        for (size_t i = 0; simple[i]; i += 2)
                if (*s == simple[i]) {
                        *p = s + 1;
                        return (unsigned char) simple[i + 1];
                }
        if (*s == 'x') {
                int a = unhexchar(s[1]), b = a < 0 ? -1 : unhexchar(s[2]);
                if (b < 0 || (a == 0 && b == 0))
                        return -1;
                *p = s + 3;
                return a * 16 + b;
        }
        if (*s == 'u' || *s == 'U') {
                int n = *s == 'u' ? 4 : 8;
                uint32_t c = 0;
                for (int i = 1; i <= n; i++) {
                        int h = unhexchar(s[i]);
                        if (h < 0)
                                return -1;
                        c = c * 16 + (uint32_t) h;
                }
                if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                        return -1;
                *p = s + 1 + n;
                return c;
        }
        if (s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
            s[2] <= '7') {
                int c = (s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0');
                if (c == 0)
                        return -1;
                *p = s + 3;
                return c;
        }
        return -1;
}

static int word_end(char ***ret, StrBuf *b, bool *in_word) {
        int r = strv_push(ret, b->s ?: strdup(""));
        if (r < 0)
                return r;
        *b = (StrBuf){};
        *in_word = false;
        return 0;
}

int unit_split_words(const char *s, char ***ret, char **ret_error) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        StrBuf b = {};
        bool in_word = false;
        char quote = 0;
        int r = 0;

        if (!l)
                return -ENOMEM;
        for (const char *p = s; *p && r >= 0;) {
                if (!quote && strchr(" \t\n\r", *p)) {
                        if (in_word)
                                r = word_end(&l, &b, &in_word);
                        p++;
                        continue;
                }
                in_word = true;
                if (!quote && (*p == '"' || *p == '\'')) {
                        quote = *p++;
                        if (!b.s)
                                r = strbuf_append(&b, "");
                        continue;
                }
                if (quote && *p == quote) {
                        quote = 0;
                        p++;
                        continue;
                }
                if (*p == '\\') {
                        p++;
                        int64_t c = *p ? unescape_one(&p) : -1;
                        if (c < 0) {
                                strbuf_done(&b);
                                if (ret_error)
                                        *ret_error = strdup_printf(
                                                *p ? "unsupported escape '\\%c'"
                                                   : "backslash at the end of the line",
                                                *p);
                                return -EINVAL;
                        }
                        utf8_put(&b, (uint32_t) c, &r);
                        continue;
                }
                r = strbuf_append_n(&b, p++, 1);
        }
        if (r >= 0 && quote) {
                strbuf_done(&b);
                if (ret_error)
                        *ret_error = strdup_printf("unterminated %c quote", quote);
                return -EINVAL;
        }
        if (r >= 0 && in_word)
                r = word_end(&l, &b, &in_word);
        strbuf_done(&b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static bool env_name_ok(const char *s, size_t n) {
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                      (s[i] >= '0' && s[i] <= '9')))
                        return false;
        return true;
}

/* NAME=value into u->env; a later NAME replaces an earlier one, as in systemd. */
static int env_set(ImportedUnit *u, const char *a, const char *where) {
        const char *eq = strchr(a, '=');
        if (!eq || !env_name_ok(a, (size_t) (eq - a)))
                return strv_extendf(&u->notes, "%s: '%s' is not NAME=value, left out", where, a);
        size_t n = (size_t) (eq - a) + 1;
        if (strncmp(a, "K0S_TOKEN=", 10) == 0)
                return strv_extendf(&u->notes,
                                    "%s: K0S_TOKEN is not carried: put the token in the token_file "
                                    "instead (k0s.env must not hold it)",
                                    where);
        for (size_t i = 0; u->env && u->env[i]; i++)
                if (strncmp(u->env[i], a, n) == 0) {
                        char *c = strdup(a);
                        if (!c)
                                return -ENOMEM;
                        free(u->env[i]);
                        u->env[i] = c;
                        return 0;
                }
        return strv_extend(&u->env, a);
}

/* systemd expands %-specifiers in these values (and $VARIABLES in ExecStart=); "%%" ("$$")
 * is a literal '%' ('$'). Anything else would need the unit's context, so it is not carried. */
static int unescape_doubled(char *w, char c) {
        char *o = w;
        for (char *p = w; *p; p++) {
                if (*p == c) {
                        if (p[1] != c)
                                return -EINVAL;
                        p++;
                }
                *o++ = *p;
        }
        *o = 0;
        return 0;
}

static int unspecify(char *w) {
        return unescape_doubled(w, '%');
}

static int parse_environment(ImportedUnit *u, const char *value, const char *where,
                             char **ret_error) {
        _cleanup_strv_free_ char **words = NULL;
        if (isempty(value)) { /* "Environment=" resets the list */
                u->env = strv_free(u->env);
                return 0;
        }
        int r = unit_split_words(value, &words, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; words[i]; i++) {
                if (unspecify(words[i]) < 0) {
                        r = strv_extendf(&u->notes,
                                         "%s: '%s' uses a systemd %%-specifier, left out", where,
                                         words[i]);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = env_set(u, words[i], where);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One line of an environment file: KEY=VALUE, VALUE optionally in '' or "" (systemd's
 * load_env_file() also knows more shell syntax; what is not this simple form is noted). */
static int env_file_line(ImportedUnit *u, char *line, const char *where) {
        char *k = line + strspn(line, " \t");
        if (!*k || *k == '#' || *k == ';')
                return 0;
        char *eq = strchr(k, '=');
        if (!eq)
                return strv_extendf(&u->notes, "%s: '%s' is not KEY=VALUE, left out", where, k);
        char *v = eq + 1, *end = v + strlen(v);
        while (end > v && strchr(" \t\r", end[-1]))
                *--end = 0;
        v += strspn(v, " \t");
        for (char *e = eq; e > k && strchr(" \t", e[-1]); e--)
                e[-1] = 0;
        *eq = 0;
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
                v[n - 1] = 0;
                v++;
                if (v[-1] == '"' && strchr(v, '\\'))
                        return strv_extendf(&u->notes, "%s: %s has backslash escapes, left out",
                                            where, k);
        } else if (strpbrk(v, "\"'\\$`"))
                return strv_extendf(&u->notes, "%s: %s's value needs a shell to read, left out",
                                    where, k);
        _cleanup_free_ char *a = strdup_printf("%s=%s", k, v);
        return a ? env_set(u, a, where) : -ENOMEM;
}

static int parse_environment_file(ImportedUnit *u, const char *value, const char *root,
                                  const char *where) {
        bool optional = value[0] == '-';
        const char *path = value + (optional ? 1 : 0);
        _cleanup_free_ char *full = NULL, *text = NULL;
        size_t len;

        if (path[0] != '/')
                return strv_extendf(&u->notes, "%s: EnvironmentFile=%s is not absolute, left out",
                                    where, value);
        full = path_join_root(root, path);
        if (!full)
                return -ENOMEM;
        int r = read_file_full(full, UNIT_MAX_SIZE, &text, &len);
        if (r == -ENOENT && optional)
                return 0;
        if (r < 0)
                return strv_extendf(&u->notes,
                                    "%s: EnvironmentFile=%s cannot be read (%s): its variables are "
                                    "not carried",
                                    where, path, strerror(-r));
        _cleanup_free_ char *w = strdup_printf("%s (from %s)", path, where);
        if (!w)
                return -ENOMEM;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save)) {
                r = env_file_line(u, l, w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static char *strip(char *s) {
        s += strspn(s, " \t");
        for (size_t n = strlen(s); n > 0 && strchr(" \t\r", s[n - 1]); n--)
                s[n - 1] = 0;
        return s;
}

static int feed_line(ImportedUnit *u, char *line, const char *where, const char *root,
                     char **ret_error) {
        char *eq = strchr(line, '=');
        if (!eq)
                return 0; /* systemd ignores it with a warning; so do we */
        *eq = 0;
        char *key = strip(line), *value = strip(eq + 1);

        if (streq(key, "ExecStart")) {
                free(u->exec_start);
                u->exec_start = isempty(value) ? NULL : strdup(value);
                return isempty(value) || u->exec_start ? 0 : -ENOMEM;
        }
        if (streq(key, "Environment"))
                return parse_environment(u, value, where, ret_error);
        if (streq(key, "EnvironmentFile"))
                return isempty(value) ? 0 : parse_environment_file(u, value, root, where);
        return 0;
}

int import_unit_feed(ImportedUnit *u, const char *text, const char *filename, const char *root,
                     char **ret_error) {
        _cleanup_free_ char *copy = strdup(text), *cont = NULL;
        bool service = false;
        unsigned lineno = 0, start = 0;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (char *next = copy, *l; (l = next) && r >= 0;) {
                next = strchr(l, '\n');
                if (next)
                        *next++ = 0;
                lineno++;
                char *s = strip(l);
                if (*s == '#' || *s == ';')
                        continue; /* comments, also inside a continuation */
                size_t n = strlen(s);
                bool more = n > 0 && s[n - 1] == '\\';
                if (more)
                        s[n - 1] = ' '; /* systemd joins continued lines with a space */
                if (cont || more) {
                        char *j = strdup_printf("%s%s", cont ?: "", s);
                        if (!j)
                                return -ENOMEM;
                        free(cont);
                        cont = j;
                        if (!cont[0] || more) {
                                start = start ?: lineno;
                                continue;
                        }
                        s = cont;
                }
                if (*s == '[')
                        service = streq(s, "[Service]");
                else if (service && *s) {
                        _cleanup_free_ char *where =
                                strdup_printf("%s:%u", filename, start ?: lineno);
                        if (!where)
                                return -ENOMEM;
                        char *err = NULL;
                        r = feed_line(u, s, where, root, &err);
                        if (r < 0 && err && ret_error) {
                                *ret_error = strdup_printf("%s: %s", where, err);
                        }
                        free(err);
                }
                cont = mfree(cont);
                start = 0;
        }
        return r;
}

/* k0s's boolean flags (k0s pkg/config/cli.go): a word after one of these, spelled without
 * "=", is not its value. */
static const char *const bool_flags[] = {
        "--enable-worker",
        "--single",
        "--debug",
        "-d",
        "--verbose",
        "-v",
        "--no-taints",
        "--enable-cloud-provider",
        "--enable-dynamic-config",
        "--enable-k0s-cloud-provider",
        "--enable-metrics-scraper",
        "--ignore-pre-flight-checks",
        "--disable-iptables",
        NULL,
};

static bool flag_is(const char *w, const char *name, const char **ret_value) {
        size_t n = strlen(name);
        if (strncmp(w, name, n) != 0 || (w[n] != 0 && w[n] != '='))
                return false;
        *ret_value = w[n] == '=' ? w + n + 1 : NULL;
        return true;
}

static int bool_value(const char *v, bool *ret) {
        if (!v || streq(v, "true") || streq(v, "1"))
                *ret = true;
        else if (streq(v, "false") || streq(v, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* --config/--token-file/--enable-worker/--single become keys; the rest stays in args. */
static int take_flag(ImportedUnit *u, char **w, size_t *i, bool *worker, bool *single,
                     char **ret_error) {
        const char *v;
        char **target = NULL;

        if (flag_is(w[*i], "--config", &v) || flag_is(w[*i], "-c", &v))
                target = &u->base_config;
        else if (flag_is(w[*i], "--token-file", &v))
                target = &u->token_file;
        if (target) {
                if (!v && !(v = w[++*i])) {
                        *ret_error = strdup_printf("%s needs a value", w[*i - 1]);
                        return -EINVAL;
                }
                free(*target);
                *target = strdup(v);
                return *target ? 1 : -ENOMEM;
        }
        bool *b = flag_is(w[*i], "--enable-worker", &v) ? worker
                : flag_is(w[*i], "--single", &v)        ? single
                                                        : NULL;
        if (!b)
                return 0;
        if (bool_value(v, b) < 0) {
                *ret_error = strdup_printf("cannot read '%s' as a boolean", w[*i]);
                return -EINVAL;
        }
        return 1;
}

static int interpret_argv(ImportedUnit *u, char **w, char **ret_error) {
        bool worker = false, single = false;
        const char *v;
        int r;

        if (!w[0] || w[0][0] != '/') {
                *ret_error = strdup("ExecStart= does not start with an absolute path");
                return -EINVAL;
        }
        u->binary = strdup(w[0]);
        if (!u->binary)
                return -ENOMEM;
        if (!w[1] ||
            !(streq(w[1], "worker") || streq(w[1], "controller") || streq(w[1], "server"))) {
                *ret_error = strdup_printf("ExecStart= runs '%s %s', not k0s controller or worker",
                                           w[0], w[1] ?: "");
                return -EINVAL;
        }
        bool controller = !streq(w[1], "worker");
        for (size_t i = 2; w[i]; i++) {
                r = take_flag(u, w, &i, &worker, &single, ret_error);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (w[i][0] != '-') {
                        r = strv_extendf(
                                &u->notes,
                                "ExecStart=: the argument '%.12s...' looks like a join token: "
                                "not carried, put it in the token_file",
                                w[i]);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = strv_extend(&u->args, w[i]);
                if (r < 0)
                        return r;
                /* "--flag value": the value follows, unless the flag is a boolean. */
                bool is_bool = false;
                for (size_t k = 0; bool_flags[k]; k++)
                        is_bool = is_bool || flag_is(w[i], bool_flags[k], &v);
                if (!strchr(w[i], '=') && !is_bool && w[i + 1] && w[i + 1][0] != '-') {
                        r = strv_extend(&u->args, w[++i]);
                        if (r < 0)
                                return r;
                }
        }
        if (!controller && (worker || single))
                return strv_extendf(
                        &u->notes,
                        "ExecStart=: --enable-worker/--single on a worker mean nothing, "
                        "left out");
        u->role = !controller ? K0S_ROLE_WORKER
                : single      ? K0S_ROLE_SINGLE
                : worker      ? K0S_ROLE_CONTROLLER_WORKER
                              : K0S_ROLE_CONTROLLER;
        return 0;
}

int import_unit_finish(ImportedUnit *u, const char *filename, char **ret_error) {
        _cleanup_strv_free_ char **w = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (!u->exec_start) {
                *ret_error = strdup_printf("%s: no ExecStart= in [Service]", filename);
                return -EINVAL;
        }
        const char *s = u->exec_start;
        /* Prefixes (systemd.service(5)): "-", "+", "!", "!!" and ":" change how it runs, not
         * what; "@" changes argv[0], which k0s never uses. */
        for (; *s && strchr("-+!:@", *s); s++)
                if (*s == '@') {
                        *ret_error = strdup_printf("%s: ExecStart=@... is not supported", filename);
                        return -EINVAL;
                }
        r = unit_split_words(s, &w, &err);
        for (size_t i = 0; r >= 0 && w[i]; i++) {
                if (streq(w[i], ";"))
                        err = strdup("more than one command in ExecStart="), r = -EINVAL;
                else if (unspecify(w[i]) < 0)
                        err = strdup_printf("'%s' uses a systemd %%-specifier", w[i]), r = -EINVAL;
                else if (unescape_doubled(w[i], '$') < 0)
                        err = strdup_printf("'%s' uses a $VARIABLE that systemd substitutes", w[i]),
                        r = -EINVAL;
        }
        if (r >= 0)
                r = interpret_argv(u, w, &err);
        if (r == -EINVAL)
                *ret_error = strdup_printf("%s: ExecStart=: %s", filename, err ?: "cannot parse");
        return r;
}

/* A YAML double-quoted scalar. */
static void yaml_quoted(StrBuf *b, const char *s, int *r) {
        char x[8];
        if (*r >= 0)
                *r = strbuf_append(b, "\"");
        for (const char *p = s; *p && *r >= 0; p++) {
                if (*p == '"' || *p == '\\')
                        snprintf(x, sizeof(x), "\\%c", *p);
                else if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        snprintf(x, sizeof(x), "\\x%02x", (unsigned char) *p);
                else
                        x[0] = *p, x[1] = 0;
                *r = strbuf_append(b, x);
        }
        if (*r >= 0)
                *r = strbuf_append(b, "\"");
}

static void add(StrBuf *b, int *r, const char *fmt, ...) _printf_(3, 4);
static void add(StrBuf *b, int *r, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        if (*r < 0)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        *r = s ? strbuf_append(b, s) : -ENOMEM;
        free(s);
}

static void key_path(StrBuf *b, int *r, const char *key, const char *value, const char *why) {
        if (!value) {
                add(b, r, "  # %s: not in the unit, the default applies (%s)\n", key, why);
                return;
        }
        add(b, r, "  %s: ", key);
        yaml_quoted(b, value, r);
        add(b, r, "\n");
}

int import_unit_render(const ImportedUnit *u, const char *source, char **ret) {
        StrBuf b = {};
        int r = 0;

        add(&b, &r,
            "# k0s-tsagent.conf, imported by `k0s-tsagent import-unit` from\n#   %s\n"
            "# Review it, check it with `k0s-tsagent --config FILE check-config`, then switch:\n"
            "#   systemctl disable --now %s && systemctl enable --now k0s-tsagent\n"
            "# Only role: and k0s: come from the unit; add the site's keys (interface,\n"
            "# registries, ...) below, or keep their defaults: see k0s-tsagent.conf(5).\n\n"
            "role: %s\n\nk0s:\n  binary: ",
            source, strrchr(source, '/') ? strrchr(source, '/') + 1 : source,
            k0s_role_to_string(u->role));
        yaml_quoted(&b, u->binary, &r);
        add(&b, &r, "\n");
        key_path(&b, &r, "token_file", u->token_file, "/etc/k0s/k0stoken");
        key_path(&b, &r, "base_config", u->base_config, "/etc/k0s/k0s.yaml");
        add(&b, &r, "  # Every other argument of the unit's ExecStart=, as k0s spelled it.\n");
        add(&b, &r, "  args:%s\n", strv_length(u->args) ? "" : " []");
        for (size_t i = 0; u->args && u->args[i]; i++) {
                add(&b, &r, "    - ");
                yaml_quoted(&b, u->args[i], &r);
                add(&b, &r, "\n");
        }
        add(&b, &r, "  # The unit's Environment= and EnvironmentFile= variables.\n");
        add(&b, &r, "  env:%s\n", strv_length(u->env) ? "" : " {}");
        for (size_t i = 0; u->env && u->env[i]; i++) {
                const char *eq = strchr(u->env[i], '=');
                add(&b, &r, "    %.*s: ", (int) (eq - u->env[i]), u->env[i]);
                yaml_quoted(&b, eq + 1, &r);
                add(&b, &r, "\n");
        }
        if (strv_length(u->notes) > 0) {
                add(&b, &r, "\n# Not carried over (fix by hand):\n");
                for (size_t i = 0; u->notes[i]; i++) {
                        _cleanup_free_ char *clean = str_sanitize(u->notes[i], 400);
                        add(&b, &r, "#   %s\n", clean ?: "?");
                }
        }
        if (r < 0) {
                strbuf_done(&b);
                return r;
        }
        *ret = b.s;
        return 0;
}

static int read_unit(ImportedUnit *u, const char *path, const char *root, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_full(path, UNIT_MAX_SIZE, &text, &len);
        if (r < 0) {
                *ret_error = strdup_printf("%s: %s", path, strerror(-r));
                return r;
        }
        if (strlen(text) != len) {
                *ret_error = strdup_printf("%s: contains a NUL byte", path);
                return -EINVAL;
        }
        return import_unit_feed(u, text, path, root, ret_error);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The unit, then the *.conf files of UNIT.d/ in name order, as systemd reads them. */
static int read_unit_and_dropins(ImportedUnit *u, const char *path, const char *root,
                                 char **ret_error) {
        int r = read_unit(u, path, root, ret_error);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = strdup_printf("%s.d", path);
        DIR *d = dir ? opendir(dir) : NULL;
        if (!d)
                return dir ? 0 : -ENOMEM;
        _cleanup_strv_free_ char **names = NULL;
        for (struct dirent *de; (de = readdir(d));) {
                size_t n = strlen(de->d_name);
                if (n > 5 && streq(de->d_name + n - 5, ".conf") &&
                    strv_extend(&names, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        closedir(d);
        if (names)
                qsort(names, strv_length(names), sizeof(char *), cmp_str);
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, names[i]);
                r = p ? read_unit(u, p, root, ret_error) : -ENOMEM;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int find_default_unit(const char *root, char **ret) {
        _cleanup_free_ char *c = path_join_root(root, IMPORT_UNIT_CONTROLLER),
                            *w = path_join_root(root, IMPORT_UNIT_WORKER);
        if (!c || !w)
                return -ENOMEM;
        bool hc = access(c, F_OK) >= 0, hw = access(w, F_OK) >= 0;
        if (hc && hw) {
                fprintf(stderr, "k0s-tsagent: both %s and %s exist: name the one k0s runs from\n",
                        c, w);
                return -EEXIST;
        }
        if (!hc && !hw) {
                fprintf(stderr, "k0s-tsagent: neither %s nor %s exists: name the unit file\n", c,
                        w);
                return -ENOENT;
        }
        if (hc)
                *ret = TAKE_PTR(c);
        else
                *ret = TAKE_PTR(w);
        return 0;
}

int import_unit_main(int argc, char **argv) {
        static const struct option options[] = {
                { "root", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(imported_unit_done) ImportedUnit u = {};
        _cleanup_free_ char *path = NULL, *err = NULL, *text = NULL;
        const char *root = NULL;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'h':
                        printf("Usage: k0s-tsagent import-unit [--root DIR] [UNIT_FILE]\n"
                               "Print a k0s-tsagent.conf that runs k0s as its unit does "
                               "(default: %s or %s).\n",
                               IMPORT_UNIT_CONTROLLER, IMPORT_UNIT_WORKER);
                        return 0;
                default:
                        return 2;
                }
        if (argc - optind > 1) {
                fprintf(stderr, "k0s-tsagent: import-unit: unexpected argument '%s'\n",
                        argv[optind + 1]);
                return 2;
        }
        if (optind < argc)
                path = path_join_root(root, argv[optind]);
        else if (find_default_unit(root, &path) < 0)
                return 1;
        if (!path)
                return fprintf(stderr, "k0s-tsagent: out of memory\n"), 1;

        r = read_unit_and_dropins(&u, path, root, &err);
        if (r >= 0)
                r = import_unit_finish(&u, path, &err);
        if (r >= 0)
                r = import_unit_render(&u, path, &text);
        if (r < 0) {
                fprintf(stderr, "k0s-tsagent: import-unit: %s\n", err ?: strerror(-r));
                return 1;
        }
        fputs(text, stdout);
        for (size_t i = 0; u.notes && u.notes[i]; i++)
                fprintf(stderr, "k0s-tsagent: import-unit: not carried: %s\n", u.notes[i]);
        return fflush(stdout) == 0 ? 0 : 1;
}
