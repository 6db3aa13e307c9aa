/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The only way the agent writes a file: write-if-changed through a temp file in the same
 * directory (name not ending in .toml/.yaml), fsync, fchmod, renameat, fsync of the directory.
 * On any error the temp file is unlinked and the old file is left as it was.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Returns 0 if the file already had exactly this content and mode (not touched: same inode,
 * same mtime), 1 if it was (re)written, -errno on failure. Creates missing parent directories
 * (0755). */
int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode);
/* The same below an open directory: base is one name (no '/'); a symlink named base is replaced,
 * never followed. For callers that must not follow symlinks on the way to the file. */
int atomic_file_write_at(int dirfd, const char *base, const void *data, size_t len, mode_t mode);

/* Read a whole regular file of at most max bytes (-EFBIG if larger). *ret is NUL-terminated. */
int read_file_full(const char *path, size_t max, char **ret, size_t *ret_len);

/* mkdir -p with mode; 0 if it exists already. */
int mkdir_parents(const char *path, mode_t mode);

/* Join root and an absolute path: ("/tmp/x", "/etc/a") -> "/tmp/x/etc/a"; root NULL or "" or "/"
 * returns a copy of path. NULL on OOM. */
char *path_join_root(const char *root, const char *path);
