/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libcurl's multi-socket API on sd-event: one CURLM per CurlGlue, fds and the timer become
 * sd-event sources; finished transfers are handed to a per-handle callback.
 */

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct CurlGlue CurlGlue;

/* Called once per finished easy handle (CURLMSG_DONE); the handle has been removed from the
 * multi handle and belongs to the callback (usually curl_easy_cleanup or reuse). */
typedef void (*CurlDoneHandler)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

int curl_glue_new(sd_event *e, CurlGlue **ret);
CurlGlue *curl_glue_free(CurlGlue *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlGlue *, curl_glue_free);

/* Add a configured easy handle; done is called when it finishes. */
int curl_glue_add(CurlGlue *g, CURL *easy, CurlDoneHandler done, void *userdata);
/* Remove a running handle without calling done (the caller then cleans it up). */
void curl_glue_remove(CurlGlue *g, CURL *easy);

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);

/* 0 if path can be a unix socket path for curl, -EINVAL (empty) or -ENAMETOOLONG otherwise. */
int curl_glue_check_socket_path(const char *path);

/* An easy handle for plain HTTP/1.1 over the unix socket at socket_path: no proxy (not even from
 * the environment), no connection reuse, no signals, connect timeout connect_timeout_ms and total
 * timeout timeout_ms (0: none, for streams). The caller sets URL and write/header callbacks. */
int curl_glue_easy_new(const char *socket_path, long connect_timeout_ms, long timeout_ms,
                       CURL **ret);

/* A response body collected by a write callback, capped at max bytes. */
typedef struct CurlBody {
        char *data; /* NUL-terminated when non-NULL */
        size_t size, allocated, max;
        bool overflow; /* curl_body_write() refused data because of max */
} CurlBody;

/* -EFBIG if size would exceed max, -ENOMEM. */
int curl_body_append(CurlBody *b, const void *p, size_t n);
/* Drop the first n bytes (a consumed line). */
void curl_body_consume(CurlBody *b, size_t n);
/* Free the data, keep max. */
void curl_body_reset(CurlBody *b);
/* CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA = CurlBody*; aborts the transfer over max. */
size_t curl_body_write(char *p, size_t size, size_t n, void *userdata);

/* Judge a finished transfer. 0: it succeeded with HTTP 200 (*ret = NULL). 1: it failed, *ret is a
 * human-readable line: "connect: No such file or directory", "timeout after 5s",
 * "HTTP 403: invalid localapi request", "response larger than 4194304 bytes", ... -ENOMEM. */
int curl_glue_result(CURL *easy, CURLcode result, uint64_t timeout_usec, const CurlBody *body,
                     char **ret);
