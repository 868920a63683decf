/*
 * jobs_internal.h — what jobs.c shares beyond the public header: the wire
 * form of a submission, for its tests (tests/client_jobs).  Not installed;
 * programs, the `llmos` CLI included, use include/llmos/client.h only.
 */
#ifndef LLMOS_CLIENT_JOBS_INTERNAL_H
#define LLMOS_CLIENT_JOBS_INTERNAL_H

#include "llmos/client.h"

#include <stdint.h>

/* Packs a SubmitRequest (protos/llmos/job.proto) for j into *buf (caller
 * frees): what llmos_client_submit sends.  0 or ENOMEM. */
int jobs_pack_submit(const llmos_job_t *j, int wait, int stream, uint32_t wait_ms, uint8_t **buf, size_t *len,
                     llmos_client_error_t *err);

#endif
