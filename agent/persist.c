/* SPDX-License-Identifier: MIT */
/*
 * persist_dir/last-address: read at start, written through atomic-file when a controller's k0s
 * starts with an address or the operator accepts a new one. Deciding whether the address may
 * change is reconcile's; asking the running agent to reload is the CLI's.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "atomic-file.h"
#include "facts.h"
#include "persist.h"

int persist_read_last_address(const char *persist_dir, char **ret) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", persist_dir, PERSIST_LAST_ADDRESS);
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (!path)
                return -ENOMEM;
        int r = read_file_full(path, 256, &text, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        text[strcspn(text, "\n")] = 0;
        if (!address_is_tailnet_ipv4(text))
                return -EBADMSG;
        *ret = TAKE_PTR(text);
        return 0;
}

int persist_write_last_address(const char *persist_dir, const char *address) {
        if (!address_is_tailnet_ipv4(address))
                return -EINVAL;
        _cleanup_free_ char *path = strdup_printf("%s/%s", persist_dir, PERSIST_LAST_ADDRESS);
        _cleanup_free_ char *text = strdup_printf("%s\n", address);
        if (!path || !text)
                return -ENOMEM;
        return atomic_file_write(path, text, strlen(text), 0644);
}
