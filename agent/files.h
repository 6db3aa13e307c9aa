/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Applying a Plan's files: the one path used by the daemon and by `render` (with a root prefix).
 * Keeps a record per planned file (last write, last error) for status.json and the render report.
 */

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "macro.h"
#include "reconcile.h"

/* Prefix of the directories a registry directory is created under before it is renamed into
 * place with its marker; a crash in between leaves one of these, which the cleanup removes. */
#define REGISTRY_DIR_TEMP_PREFIX ".k0s-tsagent-new."

typedef struct FileRecord {
        char *path; /* as written (root-prefixed for render) */
        uint64_t written_usec; /* CLOCK_REALTIME of the last write that changed it, 0 = never */
        char *error; /* last write error, NULL when the file is as planned */
        int result; /* of the last pass: 1 written, 0 unchanged, -errno */
} FileRecord;

typedef struct Files Files;

/* root: prefix for every path (render --root), NULL for the daemon. */
int files_new(const char *root, Files **ret);
Files *files_free(Files *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Files *, files_free);

/* Write every planned file. A registry's hosts.toml is written only into a directory below
 * certs_dir that is a real directory (never through a symlink), created together with its
 * marker. Returns the number of files that failed (0: all as planned); *ret_k0s_yaml_ok is false
 * when cfg->k0s_config failed. Failures are logged and kept in the records. */
int files_apply(Files *f, const AgentConfig *cfg, const Plan *p, bool *ret_k0s_yaml_ok);

/* Remove the directories of registries that left the config, only if they carry our marker and
 * are real directories (symlinks are left alone), leftovers of an interrupted creation, and our
 * drop-in when no registry is left. Does the work only when the registry set changed since the
 * last call (or after files_invalidate_cleanup()). */
void files_cleanup(Files *f, const AgentConfig *cfg, const Plan *p);
void files_invalidate_cleanup(Files *f);

size_t files_get_count(const Files *f);
const FileRecord *files_get(const Files *f, size_t i);
/* "Failed to write PATH: REASON" of the last failure of the last files_apply(), or NULL. */
const char *files_get_error(const Files *f);
