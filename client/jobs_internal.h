/*
 * jobs_internal.h — what the job half of libllmos-client shares with the
 * `llmos` CLI (client/cmd_jobs.c, client/cmd_batch.c) beyond the public
 * header: the JSON form of results (cJSON objects).
 * Not installed; programs use include/llmos/client.h only.
 */
#ifndef LLMOS_CLIENT_JOBS_INTERNAL_H
#define LLMOS_CLIENT_JOBS_INTERNAL_H

#include "llmos/client.h"

#include <cjson/cJSON.h>

/* The string of root (parsed from the JSON text json[0..len)) that holds
 * an escaped NUL (\u0000) — which cJSON silently cuts there — or NULL.
 * path (cap bytes) gets where it is ("tasks[1].text"); *is_name (may be
 * NULL) is 1 when it is the item's member name rather than its value. */
const cJSON *jobs_json_find_nul(const char *json, size_t len, const cJSON *root, char *path, size_t cap,
                                int *is_name);

/* A cJSON string of s with every invalid UTF-8 byte replaced by U+FFFD, so
 * what llmos prints is always valid JSON.  NULL = no memory. */
cJSON *jobs_json_string(const char *s);
/* Adds jobs_json_string(s) to obj under key; 1 ok, 0 no memory. */
int jobs_json_add_string(cJSON *obj, const char *key, const char *s);

/* Packs a SubmitRequest (protos/llmos/job.proto) for j into *buf (caller
 * frees): what llmos_client_submit sends.  0 or ENOMEM. */
int jobs_pack_submit(const llmos_job_t *j, int wait, int stream, uint32_t wait_ms, uint8_t **buf, size_t *len,
                     llmos_client_error_t *err);

/* Adds one task's result to obj as members: "task", "kind", "state", and by
 * kind "text", "tokens" (a count), "finish_reason", "best", "labels",
 * "probs", "vector", "facts"; "attempts", "started_ms", "finished_ms";
 * "error" when failed.  0 or ENOMEM. */
int jobs_task_result_add_json(cJSON *obj, const llmos_task_result_t *t);

/* The whole status as a new cJSON object (caller deletes); NULL = no memory. */
cJSON *jobs_status_json(const llmos_job_status_t *s);

#endif
