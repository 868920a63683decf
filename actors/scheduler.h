/*
 * scheduler.h — the `scheduler` actor: runs jobs (protos/llmos/job.proto).
 *
 * An adapter: messages in, the scheduling core (jobs/sched.h: queues,
 * policies, retries, deadlines, admission, crash counting — decisions with
 * the time passed in) in the middle, its actions out.  It owns the durable
 * job log (jobs/joblog.h, DIR/jobs.lmdb) and is the only writer of it.
 * Messages (asks; the gateway forwards clients' asks here unchanged, so
 * replies go straight back to the client):
 *   JOB_MSG_SUBMIT       SubmitRequest -> SubmitResult (or JobStatus with wait)
 *   JOB_MSG_STATUS       JobRef        -> JobStatus (JobRef.task/offset: one task's text from offset)
 *   JOB_MSG_WAIT         WaitRequest   -> JobStatus (+ JOB_MSG_EVENT messages with stream)
 *   JOB_MSG_CANCEL       JobRef        -> JobStatus
 *   JOB_MSG_LIST         ListRequest   -> JobList
 *   JOB_MSG_SCHED_STATS  (empty)       -> SchedulerStats
 *
 * Tasks go out as asks (jobs/tasks.h) whose correlation ids name job, task
 * and attempt (jobs_corr), so a reply to an old attempt is recognised and
 * dropped: TASK_ECHO -> JOB_MSG_ECHO to "echo"; GENERATE/CLASSIFY/EMBED ->
 * MODEL_MSG_GENERATE/SCORE/EMBED to "model" (or the task's target);
 * GRAPH_QUERY/LINK -> GRAPH_MSG_QUERY/LINK to "graph".
 *
 * Group commit: the actor is pinned (an LMDB write transaction stays on one
 * thread).  Writes of many messages share one transaction, committed when
 * the mailbox runs dry (idle), or after 5 ms / 4096 writes under load;
 * replies that reveal logged state, and the asks of tasks whose RUNNING
 * state was just logged, wait in an outbox until that commit: an
 * acknowledged job is always on disk, and a crash inside a task is always
 * counted (see jobs/sched.h, quarantine).
 *
 * Bounds: a task's input (text + input_from outputs) is capped
 * (task_input_max); targets must be served by this node at submission; a
 * status whose texts exceed status_max_bytes carries parts and the client
 * fetches the rest by task and offset.
 */
#ifndef LLMOS_ACTORS_SCHEDULER_H
#define LLMOS_ACTORS_SCHEDULER_H

#include "jobs/sched.h"
#include "runtime/actor.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sched_config {
    jobs_sched_config_t core;     /* the decisions: policy, limits, retries, timeouts, quarantine */
    char data_dir[1024];          /* jobs.lmdb lives here (created if missing) */
    uint32_t retention_s;         /* finished jobs are purged after this (default 86400) */
    bool sync;                    /* fsync each commit (default true) */
    uint64_t task_input_max;      /* bytes of a task's input: its text plus the outputs of its
                                     input_from tasks; past it the task fails ETOOBIG (default 16 MiB) */
    uint64_t status_max_bytes;    /* task texts in one status reply or event; longer ones are sent
                                     in parts (JobRef.task/offset) (default 16 MiB) */
} sched_config_t;

/* Fills the defaults (data_dir "./llmos-data"). */
void sched_config_init(sched_config_t *cfg);

/* Spawns the pinned actor `scheduler`.  The log is opened (and recovered)
 * here, synchronously, so an unusable data directory is an error now, not
 * a dead actor later.  cfg is copied.  Errors: those of joblog_open, of
 * recovery (LLMOS_EFORMAT: a damaged log), of rt_spawn. */
int sched_start(rt_system_t *sys, const sched_config_t *cfg, llmos_error_t *err);

#endif
