/* SPDX-License-Identifier: MIT */
/*
 * Applies a Plan's files (daemon and `render`): atomic writes, registry directories below
 * certs_dir handled through directory fds with O_NOFOLLOW, created with their marker by rename,
 * and the cleanup of registry directories the agent created. Deciding the content is reconcile's;
 * status.json is status.c's.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event-util.h"
#include "util.h"
#include "atomic-file.h"
#include "files.h"
#include "log.h"
#include "render-containerd.h"

struct Files {
        char *root;
        FileRecord *records;
        size_t n_records;
        char **cleaned; /* the registry set the cleanup last ran for */
        bool cleanup_done;
        char *error;
};

static const char marker_text[] = "This directory was created by k0s-tsagent, which removes it "
                                  "when its registry leaves /etc/k0s-tsagent.conf.\n";

int files_new(const char *root, Files **ret) {
        Files *f = calloc(1, sizeof(Files));
        if (!f)
                return -ENOMEM;
        if (root && !(f->root = strdup(root))) {
                free(f);
                return -ENOMEM;
        }
        *ret = f;
        return 0;
}

static void record_clear(FileRecord *r) {
        free(r->path);
        free(r->error);
}

Files *files_free(Files *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_records; i++)
                record_clear(&f->records[i]);
        free(f->records);
        strv_free(f->cleaned);
        free(f->error);
        free(f->root);
        free(f);
        return NULL;
}

size_t files_get_count(const Files *f) {
        return f ? f->n_records : 0;
}

const FileRecord *files_get(const Files *f, size_t i) {
        return f && i < f->n_records ? &f->records[i] : NULL;
}

const char *files_get_error(const Files *f) {
        return f ? f->error : NULL;
}

void files_invalidate_cleanup(Files *f) {
        f->cleanup_done = false;
}

static FileRecord *files_record(Files *f, const char *path) {
        for (size_t i = 0; i < f->n_records; i++)
                if (streq(f->records[i].path, path))
                        return &f->records[i];
        FileRecord *n = realloc(f->records, sizeof(FileRecord) * (f->n_records + 1));
        if (!n)
                return NULL;
        f->records = n;
        char *p = strdup(path);
        if (!p)
                return NULL;
        f->records[f->n_records] = (FileRecord){ .path = p };
        return &f->records[f->n_records++];
}

/* The directory below certs_dir, opened without following a symlink. A missing one is created
 * under a temporary name, given its marker and renamed into place, so a directory with the
 * registry's name exists only with its marker (ENOSPC on the marker leaves nothing behind). */
static int registry_dir_open(int certs_fd, const char *name, int *ret_fd) {
        int fd = openat(certs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        if (errno != ENOENT) {
                struct stat st;
                if (errno == ENOTDIR || errno == ELOOP)
                        return fstatat(certs_fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                                        S_ISLNK(st.st_mode)
                                ? -ELOOP
                                : -ENOTDIR;
                return -errno;
        }

        _cleanup_free_ char *tmp =
                strdup_printf(REGISTRY_DIR_TEMP_PREFIX "%.64s.%d", name, (int) getpid());
        if (!tmp)
                return -ENOMEM;
        if (mkdirat(certs_fd, tmp, 0755) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int tfd =
                openat(certs_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tfd < 0)
                return -errno;
        int r = atomic_file_write_at(tfd, CERTS_DIR_MARKER_FILE, marker_text,
                                     sizeof(marker_text) - 1, 0644);
        if (r >= 0 && renameat(certs_fd, tmp, certs_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(tfd, CERTS_DIR_MARKER_FILE, 0);
                (void) unlinkat(certs_fd, tmp, AT_REMOVEDIR);
                return r;
        }
        (void) fsync(certs_fd);
        *ret_fd = TAKE_FD(tfd);
        return 0;
}

static void log_file_result(const char *path, int r) {
        _cleanup_free_ char *clean = str_sanitize(path, 4096);
        _cleanup_free_ char *ff = strdup_printf("FILE=%s", clean ?: "?");
        const char *fields[] = { ff, NULL };

        if (r < 0)
                log_struct_errno(LOG_ERR, r, MESSAGE_ID_FILE_WRITTEN, ff ? fields : NULL,
                                 "Failed to write '%s', keeping the old file: %m", clean ?: "?");
        else if (r > 0)
                log_struct_errno(LOG_INFO, 0, MESSAGE_ID_FILE_WRITTEN, ff ? fields : NULL,
                                 "Wrote %s.", clean ?: "?");
}

/* Record the outcome r of writing path; reason overrides strerror (e.g. for a symlink). */
static int files_note(Files *f, const char *path, int r, const char *reason) {
        FileRecord *rec = files_record(f, path);
        if (!rec)
                return log_oom();
        free(rec->error);
        rec->error = NULL;
        rec->result = r;
        if (r < 0) {
                rec->error = strdup(reason ?: strerror(-r));
                free(f->error);
                f->error = strdup_printf("Failed to write %s: %s", path, reason ?: strerror(-r));
        } else if (r > 0)
                rec->written_usec = now_usec(CLOCK_REALTIME);
        if (!reason)
                log_file_result(path, r);
        return r;
}

/* The registry name of a planned hosts.toml (certs_dir/NAME/hosts.toml), or NULL. */
static const char *registry_of(const AgentConfig *cfg, const Plan *p, const char *path) {
        size_t n = strlen(cfg->containerd_certs_dir);
        for (char **d = p->registry_dirs; d && *d; d++)
                if (startswith(*d, cfg->containerd_certs_dir) && (*d)[n] == '/' &&
                    startswith(path, *d) && streq(path + strlen(*d), "/hosts.toml"))
                        return *d + n + 1;
        return NULL;
}

static int open_certs_dir(Files *f, const AgentConfig *cfg, bool create, int *ret_fd) {
        _cleanup_free_ char *dir = path_join_root(f->root, cfg->containerd_certs_dir);
        if (!dir)
                return -ENOMEM;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
                int r = mkdir_parents(dir, 0755);
                if (r < 0)
                        return r;
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int write_hosts_toml(Files *f, int certs_fd, const char *name, const char *path,
                            const PlanFile *pf) {
        _cleanup_close_ int dfd = -1;
        int r = registry_dir_open(certs_fd, name, &dfd);
        if (r == -ELOOP || r == -ENOTDIR) {
                _cleanup_free_ char *clean = str_sanitize(name, 512);
                _cleanup_free_ char *reason = strdup_printf(
                        "%s/%s is %s, not a directory: nothing is written through it", "certs_dir",
                        clean ?: "?", r == -ELOOP ? "a symlink" : "something else");
                log_error("Not writing %s: %s.", path, reason ?: "not a directory");
                return files_note(f, path, r, reason ?: "not a directory");
        }
        if (r >= 0)
                r = atomic_file_write_at(dfd, "hosts.toml", pf->contents, strlen(pf->contents),
                                         pf->mode);
        return files_note(f, path, r, NULL);
}

int files_apply(Files *f, const AgentConfig *cfg, const Plan *p, bool *ret_k0s_yaml_ok) {
        _cleanup_close_ int certs_fd = -1;
        bool certs_opened = false;
        int certs_r = 0, failed = 0;

        *ret_k0s_yaml_ok = true;
        free(f->error);
        f->error = NULL;
        for (size_t i = 0; i < p->n_files; i++) {
                const PlanFile *pf = &p->files[i];
                const char *name = registry_of(cfg, p, pf->path);
                _cleanup_free_ char *path = path_join_root(f->root, pf->path);
                int r;

                if (!path)
                        return log_oom();
                if (name) {
                        if (!certs_opened) {
                                certs_r = open_certs_dir(f, cfg, true, &certs_fd);
                                certs_opened = true;
                        }
                        r = certs_r < 0 ? files_note(f, path, certs_r, NULL)
                                        : write_hosts_toml(f, certs_fd, name, path, pf);
                } else
                        r = files_note(f, path,
                                       atomic_file_write(path, pf->contents, strlen(pf->contents),
                                                         pf->mode),
                                       NULL);
                if (r < 0) {
                        failed++;
                        if (streq(pf->path, cfg->k0s_config))
                                *ret_k0s_yaml_ok = false;
                }
        }

        /* Forget records of files no longer planned (a registry left). */
        for (size_t i = 0; i < f->n_records;) {
                bool planned = false;
                for (size_t j = 0; !planned && j < p->n_files; j++) {
                        _cleanup_free_ char *path = path_join_root(f->root, p->files[j].path);
                        planned = path && streq(path, f->records[i].path);
                }
                if (planned) {
                        i++;
                        continue;
                }
                record_clear(&f->records[i]);
                memmove(f->records + i, f->records + i + 1,
                        sizeof(FileRecord) * (f->n_records - i - 1));
                f->n_records--;
        }
        return failed;
}

/* Remove certs_dir/name if it is a real directory carrying our marker. */
static void remove_marked_dir(int certs_fd, const char *name, const char *shown) {
        _cleanup_close_ int dfd =
                openat(certs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return; /* a symlink (ELOOP), a file, or gone: not ours to touch */
        if (faccessat(dfd, CERTS_DIR_MARKER_FILE, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        if (unlinkat(dfd, "hosts.toml", 0) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove '%s/hosts.toml', ignoring: %m", shown);
        (void) unlinkat(dfd, CERTS_DIR_MARKER_FILE, 0);
        if (unlinkat(certs_fd, name, AT_REMOVEDIR) < 0)
                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m", shown);
        else if (!startswith(name, REGISTRY_DIR_TEMP_PREFIX))
                log_info("Removed %s: its registry left the config.", shown);
}

static void cleanup_registry_dirs(Files *f, const AgentConfig *cfg, const Plan *p) {
        _cleanup_close_ int certs_fd = -1;
        if (open_certs_dir(f, cfg, false, &certs_fd) < 0)
                return;
        int dfd = dup(certs_fd);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *dir =
                        strdup_printf("%s/%s", cfg->containerd_certs_dir, de->d_name);
                _cleanup_free_ char *shown = dir ? str_sanitize(dir, 4096) : NULL;
                if (!shown)
                        break;
                if (!startswith(de->d_name, REGISTRY_DIR_TEMP_PREFIX) &&
                    strv_contains(p->registry_dirs, dir))
                        continue;
                remove_marked_dir(certs_fd, de->d_name, shown);
        }
        closedir(d);
}

void files_cleanup(Files *f, const AgentConfig *cfg, const Plan *p) {
        if (f->cleanup_done && strv_equal(f->cleaned, p->registry_dirs))
                return;

        cleanup_registry_dirs(f, cfg, p);

        if (cfg->n_registries == 0) {
                /* Only a drop-in we wrote: its first line is our marker. */
                _cleanup_free_ char *dropin = path_join_root(f->root, cfg->containerd_dropin);
                _cleanup_free_ char *text = NULL;
                size_t len;
                if (dropin && read_file_full(dropin, 64 * 1024, &text, &len) >= 0 &&
                    startswith(text, RENDER_CONTAINERD_MARKER)) {
                        if (unlink(dropin) < 0)
                                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m",
                                                  dropin);
                        else
                                log_info("Removed %s: no registry is configured.", dropin);
                }
        }

        strv_free(f->cleaned);
        f->cleaned = strv_copy(p->registry_dirs);
        f->cleanup_done = f->cleaned != NULL;
}
