/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libcurl's multi-socket API on sd-event: one CURLM per CurlGlue, fds and the timer become
 * sd-event sources; finished transfers are handed to a per-handle callback.
 */

#include <curl/curl.h>
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
