/*
 * scheduler_internal.h — what the scheduler actor's two files share:
 * scheduler.c (the actor: outbox and group commit, the core's actions,
 * task answers, life cycle) and scheduler_requests.c (clients' requests:
 * submit, status, cancel, wait, list, stats).  Private to actors/.
 */
#ifndef LLMOS_ACTORS_SCHEDULER_INTERNAL_H
#define LLMOS_ACTORS_SCHEDULER_INTERNAL_H

#include "actors/scheduler.h"
#include "jobs/joblog.h"
#include "jobs/sched.h"
#include "llmos/job.pb-c.h"

typedef struct sched {
    sched_config_t cfg;
    jobs_sched_t *core;
    joblog_t *log;
    rt_system_t *sys;
    rt_ref_t self;
    rt_msg_t **outbox; /* replies and asks waiting for the commit */
    size_t nout, capout;
    uint64_t last_purge_ms;
    Llmos__Job *spec_cache; /* see job_spec */
    uint64_t spec_cache_seq;
} sched_t;

/* Sends m now, or after the next commit when writes are pending (replies
 * that reveal logged state, asks of tasks whose RUNNING state was logged).
 * Takes m (NULL: logged and dropped). */
void sched_out_send(sched_t *s, rt_msg_t *m);
/* A message from the scheduler (a reply when `reply`); error replies carry
 * status and error.  NULL without memory. */
rt_msg_t *sched_msg(sched_t *s, uint64_t node, uint64_t actor, uint64_t corr, uint32_t type, bool reply, int status,
                    const char *error, const void *data, size_t len);
void sched_reply(sched_t *s, const rt_msg_t *req, uint32_t type, const void *data, size_t len);
void sched_reply_err(sched_t *s, const rt_msg_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers an ask with job id's status (its live states while it runs);
 * status 0, or ETIMEDOUT for a wait that timed out. */
void sched_status_answer(sched_t *s, uint64_t node, uint64_t actor, uint64_t corr, uint32_t type, const char *id,
                         const char *only_task, uint64_t offset, int status);
/* Takes the core's actions, in order. */
void sched_take_actions(sched_t *s);

/* scheduler_requests.c */
void sched_on_submit(sched_t *s, const rt_msg_t *req);
void sched_on_status_or_cancel(sched_t *s, const rt_msg_t *req, bool cancel);
void sched_on_wait(sched_t *s, const rt_msg_t *req);
void sched_on_list(sched_t *s, const rt_msg_t *req);
void sched_on_stats(sched_t *s, const rt_msg_t *req);

#endif
