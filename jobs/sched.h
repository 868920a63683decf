/*
 * sched.h — the scheduling core: which task runs next, where, when it is
 * retried, when a job expires or is quarantined.  A plain library.
 *
 * Pure: state + an input + the time (`now`, Unix ms, passed in) -> a new
 * state and a list of actions.  It does no I/O, reads no clock, sends no
 * message and touches no log; the scheduler actor (actors/scheduler.c) feeds
 * it messages and the time, then carries the actions out in order
 * (jobs_sched_next_action): dispatch a task, log a task's state, end a job,
 * answer a waiter, cancel a running generation, ask a model its capacity.
 * So every policy and failure path is unit-tested with a fake clock, with
 * no process and no sleep (tests/jobs/test_sched_core.c).
 *
 * What it holds per unfinished job: one allocation (the job, its id, 16
 * bytes per task and the packed llmos.Job as submitted).  Results never
 * live here: the actor writes them to the log.  Everything that points at
 * a job from elsewhere (queue entries, timer events, asks in flight) names
 * it by its sequence number, so a job is freed as soon as the actions
 * that name it have been taken; stale entries are skipped.
 *
 * Queues: one per target, bounded in flight per target; the order inside
 * a queue is the policy's:
 *   fifo         submission order;
 *   priority     submitted_ms - priority * aging_ms (every aging_ms waited
 *                counts as one priority level, so nothing starves);
 *   round_robin  start-time fair queuing across tenants: each tenant's next
 *                task is tagged max(virtual time, its last tag) + 1.
 * Target and tenant entries are reused once no unfinished job names them.
 *
 * Crash counting: a task found RUNNING in the log at start-up was in
 * flight when the node died; its count goes up (a LOG_TASK action, which
 * the actor commits before anything is dispatched) and at
 * quarantine_after the job ends JOB_QUARANTINED instead of running again.
 *
 * Thread-safety: none; one actor owns it.
 */
#ifndef LLMOS_JOBS_SCHED_H
#define LLMOS_JOBS_SCHED_H

#include "llmos/job.pb-c.h"
#include "runtime/base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOBS_TARGETS_MAX 64   /* targets with unfinished tasks at once */
#define JOBS_TENANTS_MAX 4096 /* tenants with unfinished jobs at once */
#define JOBS_WAITERS_PER_JOB 256
#define JOBS_RETRY_CAP_MS 30000
#define JOBS_WAIT_DEFAULT_MS 3600000u /* a wait with no timeout and no deadline */
#define JOBS_TIMEOUT_GRACE_MS 1000    /* a target's own timeout answer comes first */

typedef enum jobs_policy { JOBS_FIFO = 0, JOBS_PRIORITY, JOBS_ROUND_ROBIN } jobs_policy_t;

typedef struct jobs_target_limit {
    char name[64];
    uint32_t inflight; /* asks in flight at most; 0 = the target runs nothing */
} jobs_target_limit_t;

typedef struct jobs_sched_config {
    jobs_policy_t policy;
    uint32_t queue_limit;         /* unfinished jobs at most; past it EOVERLOADED (default 100000) */
    uint32_t max_retries_default; /* when a job says 0 (default 2) */
    uint32_t aging_ms;            /* priority policy: ms of waiting worth one level (default 1000) */
    uint32_t retry_base_ms;       /* back-off: base * 2^(attempt-1), capped at 30 s (default 100) */
    uint32_t task_timeout_ms;     /* a task's ask without a job deadline (default 600000) */
    uint32_t inflight_default;    /* per target (default 256) */
    uint32_t quarantine_after;    /* consecutive crashes a task may be in flight during (default 3; 0 = never) */
    jobs_target_limit_t limits[JOBS_TARGETS_MAX]; /* per-target overrides */
    uint32_t nlimits;
} jobs_sched_config_t;

/* Fills the defaults. */
void jobs_sched_config_init(jobs_sched_config_t *cfg);
/* "fifo" | "priority" | "round_robin".  LLMOS_EINVAL naming the value. */
int jobs_policy_parse(const char *s, jobs_policy_t *out, llmos_error_t *err);
const char *jobs_policy_name(jobs_policy_t p);
/* "echo=0,model=8": per-target in-flight limits.  LLMOS_EINVAL naming the entry. */
int jobs_limits_parse(jobs_sched_config_t *cfg, const char *list, llmos_error_t *err);

/* The target a task's asks go to: its own, else its kind's default
 * ("echo", "graph" for queries and links, "model").  Borrowed from t. */
const char *jobs_task_target(const Llmos__Task *t);
/* A task's name: its own, else "t<index>" written into buf. */
const char *jobs_task_name(const Llmos__Task *t, uint32_t i, char *buf, size_t cap);
/* The index of the task named `name` in job, or -1. */
int jobs_task_index(const Llmos__Job *job, const char *name);

typedef struct jobs_sched jobs_sched_t;

/* Makes an empty core.  LLMOS_ENOMEM.  *out freed with jobs_sched_destroy. */
int jobs_sched_new(const jobs_sched_config_t *cfg, jobs_sched_t **out, llmos_error_t *err);
void jobs_sched_destroy(jobs_sched_t **s);

/* ---- what the actor tells the core ---- */

/* A waiter: who to answer when the job ends (opaque to the core: the
 * actor's node, actor and correlation id). */
typedef struct jobs_waiter {
    uint64_t node, actor, corr;
    bool stream; /* also sent the job's events while waiting */
} jobs_waiter_t;

/* A new job (spec validated by the gateway; checked again here for what
 * memory safety needs).  packed: spec as bytes, copied.  `served`, when
 * not NULL, says whether this node serves a target; a task whose target
 * it does not serve is refused LLMOS_ENOTFOUND (naming it and what would
 * serve it).  Errors: EINVAL (id, task count), EOVERLOADED (queue_limit,
 * or the target/tenant tables are full of unfinished work: retry later),
 * ENOMEM.  *seq_out = the job's sequence number.  Nothing is logged here:
 * the actor logs the job, then calls jobs_sched_release. */
int jobs_sched_submit(jobs_sched_t *s, const Llmos__Job *spec, const void *packed, size_t plen, const char *tenant,
                      uint64_t now, bool (*served)(void *user, const char *target), void *user, uint64_t *seq_out,
                      llmos_error_t *err);

/* A job's task as the log had it at start-up (see jobs_sched_restore). */
typedef struct jobs_task_log {
    bool present;     /* the log has a record of the task */
    uint8_t state;    /* Llmos__TaskState */
    uint32_t attempts, crashes;
} jobs_task_log_t;

/* A job recovered from the log: done tasks stay done, tasks found RUNNING
 * count a crash (LOG_TASK), the job is quarantined at quarantine_after
 * (JOB_END) or ended when every task was done, else its ready tasks queue.
 * tasks[i] for each of spec's tasks.  Errors as jobs_sched_submit. */
int jobs_sched_restore(jobs_sched_t *s, const Llmos__Job *spec, const void *packed, size_t plen, const char *tenant,
                       uint64_t seq, uint64_t submitted_ms, uint64_t started_ms, uint32_t state,
                       const jobs_task_log_t *tasks, uint64_t now, llmos_error_t *err);
/* The next sequence number to give (after a recovery: one past the log's largest). */
void jobs_sched_set_next_seq(jobs_sched_t *s, uint64_t next);

/* Queues the ready tasks of a job just submitted (after it was logged). */
void jobs_sched_release(jobs_sched_t *s, uint64_t seq, uint64_t now);
/* Forgets a job just submitted whose logging failed. */
void jobs_sched_abort(jobs_sched_t *s, uint64_t seq);

/* Adds a waiter to an unfinished job (timeout 0 = the request's deadline
 * `deadline_ms`, or an hour).  EOVERLOADED past JOBS_WAITERS_PER_JOB,
 * ENOTFOUND when the job is not in memory, ENOMEM. */
int jobs_sched_wait(jobs_sched_t *s, uint64_t seq, const jobs_waiter_t *w, uint32_t timeout_ms, uint64_t deadline_ms,
                    uint64_t now);

/* A task's ask was answered: done (status 0) or failed.  attempt is the
 * one the ask carried; a stale answer (another attempt, or the task is no
 * longer running) returns LLMOS_ESTATE and changes nothing.  Done: the
 * dependents queue, the job ends when it was the last (JOB_END).  Failed:
 * retryable codes wait retry_base_ms * 2^(attempts-1) (RETRY_WAIT, a
 * LOG_TASK) while attempts <= max_retries, else the task fails and the job
 * ends FAILED (JOB_END with "task 'x' failed after N attempts: CODE: why").
 * The actor logs the task's result (done) or its error (failed) after the
 * call returns 0, before taking the actions. */
int jobs_sched_task_done(jobs_sched_t *s, uint64_t seq, uint32_t task, uint8_t attempt, uint64_t now);
int jobs_sched_task_failed(jobs_sched_t *s, uint64_t seq, uint32_t task, uint8_t attempt, int code, const char *why,
                           uint64_t now);

/* Cancels an unfinished job on request (JOB_END CANCELLED, and CANCEL_TASK
 * for running generations).  0, or ENOTFOUND when it is not in memory. */
int jobs_sched_cancel(jobs_sched_t *s, uint64_t seq, uint64_t now);

/* A model target told its capacity: at most `limit` tasks in flight. */
void jobs_sched_set_limit(jobs_sched_t *s, uint32_t target, uint32_t limit);

/* Time passes: retries come due, deadlines pass (JOB_END EXPIRED), running
 * tasks whose target did not answer by their deadline fail ETIMEDOUT,
 * waits past their deadline are answered ETIMEDOUT.  Then dispatches what
 * the targets have room for.  Call it after every input and on a timer. */
void jobs_sched_tick(jobs_sched_t *s, uint64_t now);

/* A clean stop: running tasks go back to READY (LOG_TASK each), so the
 * next start does not count this stop as a crash. */
void jobs_sched_stopping(jobs_sched_t *s);

/* ---- what the core tells the actor ---- */

typedef enum jobs_action_kind {
    JOBS_ACT_DISPATCH = 1, /* send task's ask (attempt, deadline_ms); log its RUNNING state first */
    JOBS_ACT_LOG_TASK,     /* log the task's state (with code/why when failed) */
    JOBS_ACT_JOB_END,      /* log the job's final state (why); its waiters are answered next */
    JOBS_ACT_ANSWER,       /* answer waiter with the job's status (status 0, or ETIMEDOUT) */
    JOBS_ACT_CANCEL_TASK,  /* tell task's target to stop (request id job/task) */
    JOBS_ACT_ASK_LIMIT,    /* ask target (a model) its capacity; answer with jobs_sched_set_limit */
} jobs_action_kind_t;

typedef struct jobs_action {
    jobs_action_kind_t kind;
    uint64_t seq;          /* the job (all but ASK_LIMIT) */
    uint32_t task;         /* DISPATCH, LOG_TASK, CANCEL_TASK */
    uint32_t target;       /* ASK_LIMIT: the target's index */
    uint8_t attempt;       /* DISPATCH, CANCEL_TASK */
    bool job_started;      /* DISPATCH: the job's first task: log the job RUNNING too */
    uint64_t deadline_ms;  /* DISPATCH */
    uint32_t state;        /* JOB_END: Llmos__JobState */
    int code;              /* LOG_TASK of a failure, ANSWER: its status */
    char why[LLMOS_ERRMSG_MAX]; /* JOB_END, LOG_TASK of a failure */
    jobs_waiter_t waiter;  /* ANSWER */
} jobs_action_t;

/* The next action to take, in the order the core decided them, or NULL
 * when there is none.  Borrowed until the next call on s.  When the list
 * runs dry, jobs that ended are freed. */
const jobs_action_t *jobs_sched_next_action(jobs_sched_t *s);

/* ---- what the actor reads ---- */

/* A task as the core sees it. */
typedef struct jobs_task_view {
    uint8_t state; /* Llmos__TaskState */
    uint8_t attempts, crashes, kind;
    uint64_t started_ms;
    const char *target; /* its target's name, borrowed */
} jobs_task_view_t;

/* A job as the core sees it; the views are borrowed until the job is
 * freed (after the actions of its end were taken). */
typedef struct jobs_job_view {
    const char *id, *tenant;
    uint64_t seq, submitted_ms, started_ms, deadline_ms;
    int32_t priority;
    uint32_t state; /* Llmos__JobState */
    uint32_t ntasks;
    const uint8_t *spec; /* the packed llmos.Job */
    size_t spec_len;
    bool has_streams; /* a waiter wants events */
} jobs_job_view_t;

/* 0, or ENOTFOUND when the job is not in memory (finished, or unknown). */
int jobs_sched_job(const jobs_sched_t *s, uint64_t seq, jobs_job_view_t *out);
int jobs_sched_job_by_id(const jobs_sched_t *s, const char *id, jobs_job_view_t *out);
int jobs_sched_task(const jobs_sched_t *s, uint64_t seq, uint32_t task, jobs_task_view_t *out);
/* Calls fn for each streaming waiter of job seq (also of a job that just
 * ended, until its actions have been taken: its last events go out before
 * the answers). */
void jobs_sched_streams(const jobs_sched_t *s, uint64_t seq, void (*fn)(void *user, const jobs_waiter_t *w),
                        void *user);
/* A task's ask carries job, attempt and task in its correlation id, so a
 * reply to an old attempt is recognised: seq << 24 | attempt << 16 | task.
 * Below 2^63 (the runtime's own asks use the top bit); seq 0 is never a
 * job's: corr (0, 1, t) asks target t's capacity. */
static inline uint64_t jobs_corr(uint64_t seq, uint8_t attempt, uint32_t task) {
    return seq << 24 | (uint64_t)attempt << 16 | (task & 0xFFFFu);
}
static inline uint64_t jobs_corr_seq(uint64_t corr) { return corr >> 24; }
static inline uint8_t jobs_corr_attempt(uint64_t corr) { return (uint8_t)(corr >> 16); }
static inline uint32_t jobs_corr_task(uint64_t corr) { return (uint32_t)(corr & 0xFFFFu); }

/* 1 for a job state no change follows (done, failed, cancelled, expired,
 * quarantined). */
static inline bool jobs_state_final(uint32_t st) { return st >= LLMOS__JOB_STATE__JOB_DONE; }

/* The name of target index t ("" when out of range). */
const char *jobs_sched_target_name(const jobs_sched_t *s, uint32_t t);

typedef struct jobs_sched_stats {
    uint64_t jobs, queued_tasks, running_tasks, waiters;
    uint64_t done, failed, retried, rejected, expired, cancelled, recovered, quarantined;
    double done_rate; /* jobs finished per second, smoothed */
} jobs_sched_stats_t;
void jobs_sched_get_stats(const jobs_sched_t *s, jobs_sched_stats_t *out);
/* How long an overloaded client should wait, from the finishing rate. */
uint64_t jobs_sched_retry_after_ms(const jobs_sched_t *s);

#endif
