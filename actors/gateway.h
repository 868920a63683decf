/*
 * gateway.h — the `gateway` actor: the one actor clients talk to for jobs.
 *
 * It checks every request (JOB_MSG_SUBMIT / STATUS / WAIT / CANCEL / LIST /
 * SCHED_STATS) before anything reaches the scheduler: the payload decodes,
 * sizes and field lengths are within bounds, the job id is present, task
 * kinds are known, task names are unique, `after` and `input_from` name
 * earlier tasks (so the DAG is acyclic by construction), kind-specific
 * fields make sense.  A bad request is answered EINVAL (or EFORMAT / ETOOBIG)
 * with the field and the task named ("job.tasks[2] 'gen': after 'x' names no
 * earlier task").  A good one is forwarded to `scheduler` unchanged, with
 * the client as sender and its correlation id, so the scheduler's reply and
 * streamed events go straight back to the client.
 */
#ifndef LLMOS_ACTORS_GATEWAY_H
#define LLMOS_ACTORS_GATEWAY_H

#include "include/llmos/client.h" /* LLMOS_JOB_TASKS_MAX: the client's limit is the gateway's */
#include "runtime/actor.h"

#include <stddef.h>
#include <stdint.h>

#define GATEWAY_MAX_PAYLOAD (8u << 20)  /* bytes of one request */
#define GATEWAY_MAX_TASKS LLMOS_JOB_TASKS_MAX
#define GATEWAY_MAX_TEXT (4u << 20)     /* bytes of one task's text */
#define GATEWAY_MAX_NAME 64
#define GATEWAY_MAX_LABELS 64           /* job labels and classify labels */
#define GATEWAY_MAX_RETRIES 100         /* job.max_retries */

/* Checks one request payload of `type`.  0, or LLMOS_EINVAL / EFORMAT /
 * ETOOBIG / EUNKNOWNTYPE with the field named in err.  Used by the actor and
 * by tests. */
int gateway_check(uint32_t type, const void *data, size_t len, llmos_error_t *err);

/* Spawns `gateway`.  Errors: those of rt_spawn. */
int gateway_start(rt_system_t *sys, llmos_error_t *err);

#endif
