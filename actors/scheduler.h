/*
 * scheduler.h — the `scheduler` actor: runs jobs (protos/llmos/job.proto).
 *
 * It owns the durable job log (actors/joblog.h, DIR/jobs.lmdb) and is the
 * only writer of it.  Messages (asks; the gateway forwards clients' asks
 * here unchanged, so replies go straight back to the client):
 *   JOB_MSG_SUBMIT       SubmitRequest -> SubmitResult (or JobStatus with wait)
 *   JOB_MSG_STATUS       JobRef        -> JobStatus
 *   JOB_MSG_WAIT         WaitRequest   -> JobStatus (+ JOB_MSG_EVENT messages with stream)
 *   JOB_MSG_CANCEL       JobRef        -> JobStatus
 *   JOB_MSG_LIST         ListRequest   -> JobList
 *   JOB_MSG_SCHED_STATS  (empty)       -> SchedulerStats
 *
 * Tasks go out as asks built by hand (correlation ids below 2^63 that
 * encode job, task and attempt, so a reply to an old attempt is recognised
 * and dropped): TASK_ECHO -> JOB_MSG_ECHO to the task's target (default
 * "echo"); GENERATE/CLASSIFY/EMBED -> MODEL_MSG_GENERATE/SCORE/EMBED to
 * "model" (or the task's target "model/<replica>"); GRAPH_QUERY/LINK ->
 * GRAPH_MSG_QUERY/LINK to "graph".
 *
 * Group commit: the actor is pinned (an LMDB write transaction stays on one
 * thread).  Writes of many messages share one transaction, committed when
 * the mailbox runs dry (idle), or after 5 ms / 4096 writes under load;
 * replies that reveal logged state wait in an outbox until that commit, so
 * an acknowledged job is always on disk.
 *
 * Crash safety: a task's RUNNING state (with how many crashes of the node
 * it was in flight during) is committed to the log before its ask goes
 * out.  At start-up a task found RUNNING was in flight when the node died:
 * its count goes up and is committed before anything runs; at
 * quarantine_after the job ends JOB_QUARANTINED instead of crashing the
 * node again.  A clean shutdown logs running tasks back as READY, so only
 * crashes count.
 *
 * Bounds: a task's input (text + input_from outputs) is capped
 * (task_input_max); targets must be served by this node at submission;
 * target and tenant entries are reused once no unfinished job names them;
 * a status whose texts exceed status_max_bytes carries parts and the
 * client fetches the rest by task and offset.
 *
 * Queues: one per target (bounded in flight per target); the order inside a
 * queue is the policy's:
 *   fifo         submission order;
 *   priority     submitted_ms - priority * aging_ms (every aging_ms waited
 *                counts as one priority level, so nothing starves);
 *   round_robin  start-time fair queuing across tenants: each tenant's next
 *                task is tagged max(virtual time, its last tag) + 1.
 */
#ifndef LLMOS_ACTORS_SCHEDULER_H
#define LLMOS_ACTORS_SCHEDULER_H

#include "runtime/actor.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum sched_policy { SCHED_FIFO = 0, SCHED_PRIORITY, SCHED_ROUND_ROBIN } sched_policy_t;

#define SCHED_TARGETS_MAX 64  /* targets with unfinished tasks at once (a free entry is reused) */

typedef struct sched_target_limit {
    char name[64];
    uint32_t inflight;   /* asks in flight at most; 0 = the target runs nothing */
} sched_target_limit_t;

typedef struct sched_config {
    char data_dir[1024];          /* jobs.lmdb lives here (created if missing) */
    sched_policy_t policy;
    uint32_t queue_limit;         /* unfinished jobs at most; past it EOVERLOADED (default 100000) */
    uint32_t retention_s;         /* finished jobs are purged after this (default 86400) */
    uint32_t max_retries_default; /* when a job says 0 (default 2) */
    bool sync;                    /* fsync each commit (default true) */
    uint32_t aging_ms;            /* priority policy: ms of waiting worth one level (default 1000) */
    uint32_t retry_base_ms;       /* back-off: base * 2^(attempt-1), capped at 30 s (default 100) */
    uint32_t task_timeout_ms;     /* a task's ask without a job deadline (default 600000) */
    uint32_t inflight_default;    /* per target (default 256) */
    sched_target_limit_t limits[SCHED_TARGETS_MAX]; /* per-target overrides */
    uint32_t nlimits;
    uint64_t task_input_max;      /* bytes of a task's input: its text plus the outputs of its
                                     input_from tasks; past it the task fails ETOOBIG (default 16 MiB) */
    uint32_t quarantine_after;    /* a job whose task was in flight during this many consecutive
                                     crashes of the node is quarantined, not run again (default 3;
                                     0 = never) */
    uint64_t status_max_bytes;    /* task texts in one status reply or event; longer ones are sent
                                     in parts (JobRef.task/offset) (default 16 MiB) */
} sched_config_t;

/* Fills the defaults (data_dir "./llmos-data"). */
void sched_config_init(sched_config_t *cfg);
/* "fifo" | "priority" | "round_robin".  LLMOS_EINVAL naming the value. */
int sched_policy_parse(const char *s, sched_policy_t *out, llmos_error_t *err);
const char *sched_policy_name(sched_policy_t p);
/* "echo=0,model=8": per-target in-flight limits.  LLMOS_EINVAL. */
int sched_limits_parse(sched_config_t *cfg, const char *list, llmos_error_t *err);

/* Spawns the pinned actor `scheduler`.  The log is opened (and recovered)
 * here, synchronously, so an unusable data directory is an error now, not
 * a dead actor later.  cfg is copied.  Errors: those of joblog_open, of
 * recovery (LLMOS_EFORMAT: a damaged log), of rt_spawn. */
int sched_start(rt_system_t *sys, const sched_config_t *cfg, llmos_error_t *err);

#endif
