/* SPDX-License-Identifier: MIT */
/*
 * Replay driver for fuzz targets in builds without libFuzzer: feeds every file named on the
 * command line (directories: every regular file in them, sorted) to LLVMFuzzerTestOneInput().
 * It finds nothing new; it keeps the seed corpora and past crashers passing under ASan/valgrind.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads into a buffer of exactly the file's size, so a sanitizer sees any read past the end,
 * as it would under libFuzzer. */
static int read_full_file(const char *path, uint8_t **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;

        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO; /* shrank under us */
                n += (size_t) k;
        }

        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static int replay_file(const char *path) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, &data, &size);
        if (r < 0) {
                fprintf(stderr, "Failed to read '%s': %s\n", path, strerror(-r));
                return r;
        }
        (void) LLVMFuzzerTestOneInput(data, size);
        return 0;
}

static int replay_dir(const char *path, unsigned *n_inputs) {
        struct dirent **entries = NULL;
        int n, r = 0;

        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0) {
                r = -errno;
                fprintf(stderr, "Failed to list '%s': %s\n", path, strerror(-r));
                return r;
        }

        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (r >= 0) {
                        p = strdup_printf("%s/%s", path, entries[i]->d_name);
                        if (!p)
                                r = -ENOMEM;
                        else if (stat(p, &st) < 0) {
                                r = -errno;
                                fprintf(stderr, "Failed to stat '%s': %s\n", p, strerror(-r));
                        } else if (S_ISREG(st.st_mode)) {
                                r = replay_file(p);
                                if (r >= 0)
                                        (*n_inputs)++;
                        }
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char **argv) {
        unsigned n_inputs = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIR...\n", argv[0]);
                return 1;
        }

        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                /* A missing corpus is a build/test bug, not a reason to skip. */
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "Failed to stat '%s': %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (S_ISDIR(st.st_mode))
                        r = replay_dir(argv[i], &n_inputs);
                else {
                        r = replay_file(argv[i]);
                        if (r >= 0)
                                n_inputs++;
                }
                if (r < 0)
                        return 1;
        }

        printf("%u inputs replayed\n", n_inputs);
        return 0;
}
