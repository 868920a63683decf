/*
 * scheduler.c — the `scheduler` actor (see scheduler.h for the contract):
 * an adapter between messages and the scheduling core.
 *
 * Messages in -> jobs/sched.h (the decisions, with the time passed in) ->
 * actions out, carried out here in order: log, send, answer.  The log's
 * records as protobuf are jobs/records.h; a task's request and result are
 * jobs/tasks.h.  What stays here is I/O: the job log's group commit and
 * the outbox of replies held until it, the asks, and recovery's reading.
 *
 * This file must never block: no waiting on other actors, no network; the
 * only slow thing it does is an LMDB commit, once per batch.
 */
#include "actors/scheduler.h"

#include "actors/scheduler_internal.h"

#include "jobs/joblog.h"
#include "jobs/records.h"
#include "jobs/sched.h"
#include "jobs/tasks.h"
#include "llmos/job.pb-c.h"
#include "llmos/model.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 10
#define COMMIT_AGE_MS 5
#define COMMIT_WRITES 4096
#define PURGE_EVERY_MS 1000


/* ---- config ---- */

void sched_config_init(sched_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    jobs_sched_config_init(&cfg->core);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "./llmos-data");
    cfg->retention_s = 86400;
    cfg->sync = true;
    cfg->task_input_max = 16u << 20;
    cfg->status_max_bytes = 16u << 20;
}

/* ---- output: replies and asks, held back until the log commits ---- */

void sched_out_send(sched_t *s, rt_msg_t *m) {
    if (!m) {
        LLMOS_WARN("scheduler: no memory for a message; it is dropped");
        return;
    }
    if (joblog_pending(s->log) == 0 && s->nout == 0) {
        rt_send_msg(s->sys, m);
        return;
    }
    if (s->nout == s->capout) {
        size_t cap = s->capout ? s->capout * 2 : 256;
        rt_msg_t **p = realloc(s->outbox, cap * sizeof *p);
        if (!p) {
            rt_send_msg(s->sys, m); /* better early than never */
            return;
        }
        s->outbox = p;
        s->capout = cap;
    }
    s->outbox[s->nout++] = m;
}

rt_msg_t *sched_msg(sched_t *s, uint64_t node, uint64_t actor, uint64_t corr, uint32_t type, bool reply,
                        int status, const char *error, const void *data, size_t len) {
    return rt_msg_new(&(rt_msg_init_t){
        .to = {node, actor, NULL},
        .from = s->self,
        .type = status ? (len ? type : RT_MSG_ERROR) : type,
        .flags = reply ? RT_MSG_REPLY : 0,
        .corr = corr,
        .status = status,
        .error = status ? error : NULL,
        .data = data,
        .len = len,
    });
}

void sched_reply(sched_t *s, const rt_msg_t *req, uint32_t type, const void *data, size_t len) {
    sched_out_send(s, sched_msg(s, req->from.node, req->from.id, req->corr, type, true, 0, NULL, data, len));
}

void sched_reply_err(sched_t *s, const rt_msg_t *req, int status, const char *fmt, ...) {
    char text[LLMOS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!req->corr) return;
    sched_out_send(s, sched_msg(s, req->from.node, req->from.id, req->corr, req->type, true, status, text, NULL, 0));
}

/* Commits the log, then releases what waited for it.  A failed commit
 * lost the batch's writes: every held reply becomes an EIO error. */
static void commit(sched_t *s) {
    llmos_error_t err;
    int rc = joblog_commit(s->log, &err);
    if (rc) LLMOS_ERROR("scheduler: %s", err.msg);
    for (size_t i = 0; i < s->nout; i++) {
        rt_msg_t *m = s->outbox[i];
        if (rc && (m->flags & RT_MSG_REPLY)) {
            rt_msg_t *e = sched_msg(s, m->to.node, m->to.id, m->corr, m->type, true, LLMOS_EIO,
                                 "the job log could not commit; the request was not recorded", NULL, 0);
            rt_msg_free(m);
            m = e;
        }
        if (m) rt_send_msg(s->sys, m);
    }
    s->nout = 0;
}

/* ---- jobs ---- */

/* The unpacked spec of job seq (one is cached: the tasks of one job tend
 * to come one after the other); borrowed until the next job_spec call or
 * the job's end.  NULL when it does not decode or is not in memory. */
static Llmos__Job *job_spec(sched_t *s, uint64_t seq) {
    if (s->spec_cache && s->spec_cache_seq == seq) return s->spec_cache;
    if (s->spec_cache) llmos__job__free_unpacked(s->spec_cache, NULL);
    s->spec_cache = NULL;
    jobs_job_view_t v;
    if (jobs_sched_job(s->core, seq, &v) != 0) return NULL;
    s->spec_cache = llmos__job__unpack(NULL, v.spec_len, v.spec);
    s->spec_cache_seq = seq;
    return s->spec_cache;
}

/* Writes task i's record (with r's result or error when given). */
static void log_task(sched_t *s, uint64_t seq, uint32_t i, Llmos__TaskResult *r) {
    jobs_job_view_t v;
    jobs_task_view_t tv;
    Llmos__Job *spec = job_spec(s, seq);
    llmos_error_t err;
    if (!spec || jobs_sched_job(s->core, seq, &v) != 0 || jobs_sched_task(s->core, seq, i, &tv) != 0) return;
    if (jobs_record_task(s->log, v.id, i, spec->tasks[i], &tv, r, &err) != 0)
        LLMOS_ERROR("scheduler: job %s task %u: %s", v.id, i, err.msg);
}

/* Answers an ask with job id's status (its live states while it runs).
 * status: 0, or ETIMEDOUT for a wait that timed out. */
void sched_status_answer(sched_t *s, uint64_t node, uint64_t actor, uint64_t corr, uint32_t type, const char *id,
                          const char *only_task, uint64_t offset, int status) {
    uint8_t *buf;
    size_t len;
    llmos_error_t err;
    if (jobs_status_pack(s->log, s->core, id, true, only_task, offset, s->cfg.status_max_bytes, &buf, &len, &err) != 0) {
        sched_out_send(s, sched_msg(s, node, actor, corr, type, true, err.code, err.msg, NULL, 0));
        return;
    }
    sched_out_send(s, sched_msg(s, node, actor, corr, type, true, status,
                       status ? "wait timed out; the job has not finished" : NULL, buf, len));
    free(buf);
}

/* Sends a JobEvent to the job's streaming waiters. */
typedef struct stream_ctx {
    sched_t *s;
    const uint8_t *buf;
    size_t len;
} stream_ctx_t;

static void stream_one(void *user, const jobs_waiter_t *w) {
    stream_ctx_t *c = user;
    sched_out_send(c->s, sched_msg(c->s, w->node, w->actor, w->corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_EVENT, false, 0, NULL, c->buf,
                          c->len));
}

static void stream_event(sched_t *s, uint64_t seq, Llmos__JobEvent *ev) {
    jobs_job_view_t v;
    if (jobs_sched_job(s->core, seq, &v) != 0 || !v.has_streams) return;
    ev->id = (char *)v.id;
    if (ev->result) {
        uint64_t room = s->cfg.status_max_bytes; /* an event carries a part of a longer text */
        (void)jobs_text_part(ev->result, 0, &room, NULL);
    }
    size_t len = llmos__job_event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    llmos__job_event__pack(ev, buf);
    stream_ctx_t c = {s, buf, len};
    jobs_sched_streams(s->core, seq, stream_one, &c);
    free(buf);
}

/* ---- actions ---- */

static void task_failed(sched_t *s, uint64_t seq, uint32_t i, uint8_t attempt, int code, const char *why);

/* DISPATCH: the task's input from the log, its RUNNING state logged, its
 * ask held until that commit (a crash inside it is then counted). */
static void dispatch(sched_t *s, const jobs_action_t *a) {
    Llmos__Job *spec = job_spec(s, a->seq);
    jobs_job_view_t v;
    jobs_task_view_t tv;
    if (!spec || jobs_sched_job(s->core, a->seq, &v) != 0 || jobs_sched_task(s->core, a->seq, a->task, &tv) != 0) {
        task_failed(s, a->seq, a->task, a->attempt, LLMOS_EFORMAT, "the job's logged spec does not decode");
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t type = 0;
    llmos_error_t err;
    int rc = jobs_task_ask(s->log, v.id, spec, a->task, s->cfg.task_input_max, &type, &buf, &len, &err);
    if (rc) {
        task_failed(s, a->seq, a->task, a->attempt, rc, err.msg);
        return;
    }
    if (a->job_started) (void)joblog_job_update(s->log, v.id, LLMOS__JOB_STATE__JOB_RUNNING, v.started_ms, 0, NULL, NULL);
    log_task(s, a->seq, a->task, NULL);
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, tv.target),
                                              .from = s->self,
                                              .type = type,
                                              .corr = jobs_corr(a->seq, a->attempt, a->task),
                                              .deadline_ms = a->deadline_ms,
                                              .tenant = v.tenant,
                                              .data = buf,
                                              .len = len});
    free(buf);
    /* Undeliverable asks come back as error replies (bounced by the
     * runtime); only a message that could not be built fails here. */
    if (!m) task_failed(s, a->seq, a->task, a->attempt, LLMOS_ENOMEM, "no memory for the task's message");
    else sched_out_send(s, m);
}

static void cancel_task(sched_t *s, const jobs_action_t *a) {
    Llmos__Job *spec = job_spec(s, a->seq);
    jobs_job_view_t v;
    jobs_task_view_t tv;
    if (!spec || jobs_sched_job(s->core, a->seq, &v) != 0 || jobs_sched_task(s->core, a->seq, a->task, &tv) != 0) return;
    Llmos__CancelRequest c = LLMOS__CANCEL_REQUEST__INIT;
    char rid[JOBLOG_ID_MAX + 32], nb[16];
    snprintf(rid, sizeof rid, "%s/%s", v.id, jobs_task_name(spec->tasks[a->task], a->task, nb, sizeof nb));
    c.request_id = rid;
    c.correlation_id = jobs_corr(a->seq, a->attempt, a->task);
    uint8_t buf[256];
    size_t len = llmos__cancel_request__get_packed_size(&c);
    if (len > sizeof buf) return;
    llmos__cancel_request__pack(&c, buf);
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, tv.target),
                                              .from = s->self,
                                              .type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL,
                                              .data = buf,
                                              .len = len});
    if (m) rt_send_msg(s->sys, m);
}

/* Takes the core's actions, in order (each may add more). */
void sched_take_actions(sched_t *s) {
    const jobs_action_t *p;
    while ((p = jobs_sched_next_action(s->core))) {
        jobs_action_t a = *p; /* (the list may grow while this one is taken) */
        jobs_job_view_t v;
        switch (a.kind) {
        case JOBS_ACT_DISPATCH: dispatch(s, &a); break;
        case JOBS_ACT_LOG_TASK: {
            Llmos__TaskResult r = LLMOS__TASK_RESULT__INIT;
            r.error_code = a.code;
            r.error = a.why;
            r.finished_ms = a.code ? llmos_wall_ms() : 0;
            log_task(s, a.seq, a.task, &r);
            break;
        }
        case JOBS_ACT_JOB_END: {
            llmos_error_t err;
            if (jobs_sched_job(s->core, a.seq, &v) == 0 &&
                joblog_job_update(s->log, v.id, a.state, v.started_ms, llmos_wall_ms(), a.why[0] ? a.why : NULL, &err) != 0)
                LLMOS_ERROR("scheduler: job %s: %s", v.id, err.msg);
            if (a.state == LLMOS__JOB_STATE__JOB_QUARANTINED) LLMOS_WARN("scheduler: job %s %s", v.id, a.why);
            break;
        }
        case JOBS_ACT_ANSWER:
            if (jobs_sched_job(s->core, a.seq, &v) == 0)
                sched_status_answer(s, a.waiter.node, a.waiter.actor, a.waiter.corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, v.id,
                              NULL, 0, a.code);
            break;
        case JOBS_ACT_CANCEL_TASK: cancel_task(s, &a); break;
        case JOBS_ACT_ASK_LIMIT: {
            if (!s->self.id) break;
            rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, jobs_sched_target_name(s->core, a.target)),
                                                      .from = s->self,
                                                      .type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS,
                                                      .corr = jobs_corr(0, 1, a.target),
                                                      .deadline_ms = llmos_wall_ms() + 10000});
            if (m) rt_send_msg(s->sys, m);
            break;
        }
        }
    }
    /* the jobs that ended are freed now: forget their cached spec */
    if (s->spec_cache && jobs_sched_job(s->core, s->spec_cache_seq, &(jobs_job_view_t){0}) != 0) {
        llmos__job__free_unpacked(s->spec_cache, NULL);
        s->spec_cache = NULL;
    }
}

/* A task failed (answered with an error, or its ask could not be built):
 * the core decides retry or failure, the error is logged, and a final
 * failure is streamed. */
static void task_failed(sched_t *s, uint64_t seq, uint32_t i, uint8_t attempt, int code, const char *why) {
    if (jobs_sched_task_failed(s->core, seq, i, attempt, code, why, llmos_wall_ms()) != 0) return; /* stale */
    Llmos__TaskResult r = LLMOS__TASK_RESULT__INIT;
    r.error_code = code;
    r.error = (char *)(why ? why : llmos_strerror(code));
    r.finished_ms = llmos_wall_ms();
    log_task(s, seq, i, &r);
    jobs_task_view_t tv;
    if (jobs_sched_task(s->core, seq, i, &tv) == 0 && tv.state == LLMOS__TASK_STATE__TASK_FAILED) {
        Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
        r.state = LLMOS__TASK_STATE__TASK_FAILED;
        ev.task = r.name;
        ev.result = &r;
        stream_event(s, seq, &ev);
    }
}

/* ---- messages ---- */

/* A model's stats set the target's cap in flight to what it can run at
 * once: the full-length sequences its KV cache holds, so what waits beyond
 * that waits here, in the policy's order, not in the model's own FIFO
 * queue.  Without KV figures: its queue limit. */
static void on_model_stats(sched_t *s, const rt_msg_t *m) {
    uint32_t t = jobs_corr_task(m->corr);
    if (m->status || m->type != LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS) return;
    Llmos__ModelStats *st = llmos__model_stats__unpack(NULL, m->len, m->data);
    if (!st) return;
    uint32_t block = st->kv_block_tokens ? st->kv_block_tokens : 16;
    uint64_t cap = st->seq_len && st->kv_blocks_total ? (uint64_t)st->kv_blocks_total * block / st->seq_len
                                                      : st->queue_limit;
    if (cap) {
        jobs_sched_set_limit(s->core, t, (uint32_t)(cap > 1000000 ? 1000000 : cap));
        LLMOS_INFO("scheduler: target %s: at most %" PRIu64 " tasks in flight (learned from its stats)",
                   jobs_sched_target_name(s->core, t), cap > 1000000 ? 1000000 : cap);
    }
    llmos__model_stats__free_unpacked(st, NULL);
}

static void on_task_reply(sched_t *s, const rt_msg_t *m) {
    uint64_t seq = jobs_corr_seq(m->corr);
    uint32_t i = jobs_corr_task(m->corr);
    uint8_t attempt = jobs_corr_attempt(m->corr);
    if (seq == 0) {
        on_model_stats(s, m);
        return;
    }
    jobs_task_view_t tv;
    if (jobs_sched_task(s->core, seq, i, &tv) != 0) return;
    if (m->status) {
        task_failed(s, seq, i, attempt, m->status, m->error ? m->error : llmos_strerror(m->status));
        return;
    }
    Llmos__TaskResult r = LLMOS__TASK_RESULT__INIT;
    ProtobufCMessage *hold;
    if (jobs_task_result(tv.kind, m->data, m->len, &r, &hold) != 0) {
        task_failed(s, seq, i, attempt, LLMOS_EFORMAT, "the target's reply does not decode as the task kind's result");
        return;
    }
    if (jobs_sched_task_done(s->core, seq, i, attempt, llmos_wall_ms()) == 0) {
        r.finished_ms = llmos_wall_ms();
        log_task(s, seq, i, &r);
        Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
        ev.task = r.name;
        ev.result = &r;
        stream_event(s, seq, &ev);
    }
    if (hold) protobuf_c_message_free_unpacked(hold, NULL);
}

/* MODEL_MSG_GENERATE_CHUNK for one of our generations: relay to streamers. */
static void on_chunk(sched_t *s, const rt_msg_t *m) {
    uint64_t seq = jobs_corr_seq(m->corr);
    uint32_t i = jobs_corr_task(m->corr);
    jobs_job_view_t v;
    if (jobs_sched_job(s->core, seq, &v) != 0 || !v.has_streams || i >= v.ntasks) return;
    Llmos__GenerateChunk *c = llmos__generate_chunk__unpack(NULL, m->len, m->data);
    if (!c) return;
    Llmos__Job *spec = job_spec(s, seq);
    char nb[16];
    Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
    ev.task = (char *)(spec ? jobs_task_name(spec->tasks[i], i, nb, sizeof nb) : "");
    ev.chunk = c;
    stream_event(s, seq, &ev);
    llmos__generate_chunk__free_unpacked(c, NULL);
}










/* ---- the actor ---- */

static void on_time(sched_t *s) {
    uint64_t now = llmos_wall_ms();
    jobs_sched_tick(s->core, now);
    sched_take_actions(s);
    if (now - s->last_purge_ms >= PURGE_EVERY_MS) {
        s->last_purge_ms = now;
        uint32_t n;
        llmos_error_t err;
        if (joblog_purge(s->log, now, (uint64_t)s->cfg.retention_s * 1000u, 1000, &n, &err) != 0)
            LLMOS_ERROR("scheduler: retention: %s", err.msg);
    }
}

static int sched_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    sched_t *s = state;
    if (msg->flags & RT_MSG_REPLY) {
        if (msg->corr && !(msg->corr >> 63)) on_task_reply(s, msg);
    } else {
        switch (msg->type) {
        case RT_MSG_TIMER: break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT: sched_on_submit(s, msg); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS: sched_on_status_or_cancel(s, msg, false); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL: sched_on_status_or_cancel(s, msg, true); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT: sched_on_wait(s, msg); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST: sched_on_list(s, msg); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_SCHED_STATS: sched_on_stats(s, msg); break;
        case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE_CHUNK: on_chunk(s, msg); break;
        default:
            if (msg->corr) sched_reply_err(s, msg, LLMOS_EUNKNOWNTYPE, "scheduler: unknown message type %u", msg->type);
            break;
        }
    }
    on_time(s);
    if (joblog_pending(s->log) >= COMMIT_WRITES || joblog_pending_age_ms(s->log) >= COMMIT_AGE_MS) commit(s);
    return 0;
}

static bool sched_idle(rt_ctx_t *ctx, void *state) {
    sched_t *s = state;
    on_time(s);
    if (joblog_pending(s->log) || s->nout) commit(s);
    return false;
}

static void sched_free(sched_t *s) {
    if (!s) return;
    jobs_sched_destroy(&s->core);
    for (size_t i = 0; i < s->nout; i++) rt_msg_free(s->outbox[i]);
    free(s->outbox);
    if (s->spec_cache) llmos__job__free_unpacked(s->spec_cache, NULL);
    joblog_close(&s->log);
    free(s);
}

static int sched_init(rt_ctx_t *ctx, void *arg, void **state) {
    sched_t *s = arg;
    s->self = rt_ctx_self(ctx);
    s->sys = rt_ctx_system(ctx);
    int rc = rt_timer_start(s->sys, s->self, TICK_MS, TICK_MS, RT_MSG_TIMER, 1, NULL);
    if (rc == LLMOS_ESTATE) rc = 0; /* the system is already stopping: no ticks needed, deinit will run */
    if (rc) {
        /* deinit will not run (the runtime only calls it after a good init) */
        sched_free(s);
        return rc;
    }
    *state = s;
    return 0;
}

/* A clean stop: tasks in flight are logged back as READY, so the next
 * start does not count this stop as a crash they were in flight during. */
static void sched_deinit(rt_ctx_t *ctx, void *state) {
    sched_t *s = state;
    jobs_sched_stopping(s->core);
    sched_take_actions(s);
    commit(s);
    sched_free(s);
}

static const rt_actor_def_t sched_def = {"scheduler", sched_init, sched_receive, sched_deinit, sched_idle};

int sched_start(rt_system_t *sys, const sched_config_t *cfg, llmos_error_t *err) {
    sched_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the scheduler");
    s->cfg = *cfg;
    s->sys = sys;
    int rc = jobs_sched_new(&cfg->core, &s->core, err);
    if (!rc) rc = joblog_open(cfg->data_dir, &(joblog_opts_t){.nosync = !cfg->sync}, &s->log, err);
    if (!rc) rc = jobs_recover(s->log, s->core, llmos_wall_ms(), err);
    if (!rc) {
        sched_take_actions(s); /* crash counts and quarantines, logged ... */
        rc = joblog_commit(s->log, err); /* ... before anything runs */
    }
    if (rc) {
        sched_free(s);
        return rc;
    }
    jobs_sched_stats_t st;
    jobs_sched_get_stats(s->core, &st);
    if (st.recovered) LLMOS_INFO("scheduler: %" PRIu64 " unfinished jobs recovered from the log", st.recovered);
    rt_spawn_opts_t o = {.name = "scheduler", .pinned = true, .batch = 1024};
    rt_ref_t ref;
    rc = rt_spawn(sys, &sched_def, s, &o, &ref, err);
    if (rc) {
        sched_free(s);
        return llmos_error_prefix(err, "starting the scheduler: ");
    }
    return 0;
}
