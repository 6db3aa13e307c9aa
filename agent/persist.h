/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * persist_dir: what survives a reboot. Today one file, last-address: the tailnet IPv4 a
 * controller's k0s last ran with (an etcd member is registered under it).
 */

#define PERSIST_LAST_ADDRESS "last-address"

/* Read persist_dir/last-address into *ret (NULL when there is none: -ENOENT is 0). A file that
 * does not hold a tailnet IPv4 is -EBADMSG. */
int persist_read_last_address(const char *persist_dir, char **ret);

/* Write address (a tailnet IPv4) to persist_dir/last-address atomically; 0 unchanged,
 * 1 written, -errno. */
int persist_write_last_address(const char *persist_dir, const char *address);
