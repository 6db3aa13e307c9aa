/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `k0s-tsagent import-unit [UNIT_FILE]`: a k0s-tsagent.conf from the systemd unit that
 * `k0s install` (or k0sctl) wrote. The parsing and the rendering are pure and exported for the
 * unit tests; import_unit_main() is the command.
 */

#include <stdbool.h>

#include "config.h"

#define IMPORT_UNIT_CONTROLLER "/etc/systemd/system/k0scontroller.service"
#define IMPORT_UNIT_WORKER "/etc/systemd/system/k0sworker.service"

/* Split one ExecStart=/Environment= value into words with systemd's rules: whitespace
 * separates, "..." and '...' quote (also inside a word), C escapes (\n \t \\ \" \' \s \xNN
 * \NNN \uNNNN ...) are decoded in and outside quotes. -EINVAL with a message on an unterminated
 * quote, a trailing or unknown backslash escape, or \x00. */
int unit_split_words(const char *s, char ***ret, char **ret_error);

typedef struct ImportedUnit {
        K0sRole role;
        char *binary;
        char *token_file; /* NULL: not in the unit */
        char *base_config; /* NULL: not in the unit */
        char **args; /* every other argument, as spelled */
        char **env; /* NAME=value, in order, later entries win */
        char **notes; /* what could not be carried: comments in the output, lines on stderr */
        char *exec_start; /* the last ExecStart= value, while feeding */
} ImportedUnit;

void imported_unit_done(ImportedUnit *u);

/* Feed one unit file's text (the unit, then its drop-ins in order). root prefixes the paths of
 * EnvironmentFile= (NULL: none). -EINVAL with a message for what cannot be parsed. */
int import_unit_feed(ImportedUnit *u, const char *text, const char *filename, const char *root,
                     char **ret_error);
/* After the last feed: ExecStart= -> role, binary, flags. */
int import_unit_finish(ImportedUnit *u, const char *filename, char **ret_error);
/* The config text. */
int import_unit_render(const ImportedUnit *u, const char *source, char **ret);

/* The command: argv[0] is "import-unit". Exit code. */
int import_unit_main(int argc, char **argv);
