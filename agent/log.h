/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging: journald (sd_journal_send with structured fields) when stderr is connected to the
 * journal (JOURNAL_STREAM matches) or K0S_TSAGENT_LOG=journal, otherwise "<level> message" lines
 * on stderr. "%m" in formats expands to strerror(error) of the errno given.
 */

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Well-known MESSAGE_IDs (128-bit, as sd-id128 strings). */
#define MESSAGE_ID_GATE_OPEN "7d0ad7d1b1c04e5fa1d0f7a3c2b90101"
#define MESSAGE_ID_GATE_CLOSED "7d0ad7d1b1c04e5fa1d0f7a3c2b90102"
#define MESSAGE_ID_ADDRESS "7d0ad7d1b1c04e5fa1d0f7a3c2b90103"
#define MESSAGE_ID_K0S_STARTED "7d0ad7d1b1c04e5fa1d0f7a3c2b90104"
#define MESSAGE_ID_K0S_EXITED "7d0ad7d1b1c04e5fa1d0f7a3c2b90105"
#define MESSAGE_ID_K0S_STOPPING "7d0ad7d1b1c04e5fa1d0f7a3c2b90106"
#define MESSAGE_ID_K0S_ADOPTED "7d0ad7d1b1c04e5fa1d0f7a3c2b90107"
#define MESSAGE_ID_FILE_WRITTEN "7d0ad7d1b1c04e5fa1d0f7a3c2b90108"
#define MESSAGE_ID_CONFIG_ERROR "7d0ad7d1b1c04e5fa1d0f7a3c2b90109"
#define MESSAGE_ID_RELOADED "7d0ad7d1b1c04e5fa1d0f7a3c2b9010a"

void log_open(void);
void log_set_max_level(int level);
int log_get_max_level(void);
/* true when messages go to journald (after log_open() chose it); for tests and status. */
bool log_is_journal(void);

/* Returns -abs(error) (0 if error == 0), so callers can `return log_error_errno(r, ...)`. */
int log_full_errno(int level, int error, const char *fmt, ...) _printf_(3, 4);

/* Same, plus journald fields: message_id may be NULL; fields is a NULL-terminated array of
 * "KEY=value" strings (may be NULL). On stderr the fields are appended as " [KEY=value ...]". */
int log_struct_errno(int level, int error, const char *message_id, const char *const *fields,
                     const char *fmt, ...) _printf_(5, 6);

/* De-duplication of standing conditions (plan warnings, errors): logs at level every line of now
 * that is not in *logged, then remembers now (a line logged again only after it went away). */
void log_new_lines(int level, char ***logged, char *const *now);

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")
