/*
 * scheduler_requests.c — the scheduler actor's answers to clients' requests
 * (see scheduler.h): decode, ask the core or the log, encode.  Nothing here
 * decides; jobs/sched.h does.
 */
#include "actors/scheduler_internal.h"

#include "jobs/records.h"
#include "runtime/base/clock.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LIST_LIMIT_MAX 1000
#define LIST_SCAN_MAX 200000

static void submit_reply(sched_t *s, const rt_msg_t *req, const char *id, bool existing, uint32_t state,
                         uint64_t pos) {
    Llmos__SubmitResult r = LLMOS__SUBMIT_RESULT__INIT;
    r.id = (char *)id;
    r.existing = existing;
    r.state = (Llmos__JobState)state;
    r.queue_position = pos;
    uint8_t buf[JOBLOG_ID_MAX + 64];
    size_t len = llmos__submit_result__get_packed_size(&r);
    if (len > sizeof buf) return;
    llmos__submit_result__pack(&r, buf);
    sched_reply(s, req, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len);
}

/* A stream that starts late first gets the results of the tasks already
 * done, so every task's event is seen exactly once per stream. */
static void replay_done(sched_t *s, uint64_t seq, const rt_msg_t *req) {
    jobs_job_view_t v;
    if (jobs_sched_job(s->core, seq, &v) != 0) return;
    for (uint32_t i = 0; i < v.ntasks; i++) {
        jobs_task_view_t tv;
        uint8_t *buf;
        size_t len;
        if (jobs_sched_task(s->core, seq, i, &tv) != 0 || tv.state != LLMOS__TASK_STATE__TASK_DONE ||
            jobs_event_pack(s->log, v.id, i, s->cfg.status_max_bytes, &buf, &len, NULL) != 0)
            continue;
        sched_out_send(s, sched_msg(s, req->from.node, req->from.id, req->corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_EVENT, false, 0,
                           NULL, buf, len));
        free(buf);
    }
}

static int waiter_add(sched_t *s, uint64_t seq, const rt_msg_t *req, uint32_t timeout_ms, bool stream) {
    jobs_waiter_t w = {req->from.node, req->from.id, req->corr, stream};
    int rc = jobs_sched_wait(s->core, seq, &w, timeout_ms, req->deadline_ms, llmos_wall_ms());
    if (!rc && stream) replay_done(s, seq, req);
    return rc;
}

static bool served(void *user, const char *target) {
    rt_ref_t ref;
    return rt_lookup(((sched_t *)user)->sys, target, &ref) == 0;
}

void sched_on_submit(sched_t *s, const rt_msg_t *req) {
    Llmos__SubmitRequest *sr = llmos__submit_request__unpack(NULL, req->len, req->data);
    if (!sr || !sr->job) {
        sched_reply_err(s, req, LLMOS_EFORMAT, "submit: the payload (%zu bytes) is not a SubmitRequest with a job", req->len);
        if (sr) llmos__submit_request__free_unpacked(sr, NULL);
        return;
    }
    Llmos__Job *spec = sr->job;
    const char *id = spec->id;
    jobs_job_view_t v;
    llmos_error_t err;
    jobs_sched_stats_t st;
    jobs_sched_get_stats(s->core, &st);
    if (jobs_sched_job_by_id(s->core, id, &v) == 0) { /* idempotent: the first job */
        if (!sr->wait) submit_reply(s, req, id, true, v.state, st.jobs);
        else if (waiter_add(s, v.seq, req, sr->wait_timeout_ms, sr->stream) != 0)
            sched_reply_err(s, req, LLMOS_EOVERLOADED, "job '%s': too many waiters", id);
        goto out;
    }
    joblog_job_t rec;
    if (id[0] && strlen(id) <= JOBLOG_ID_MAX && joblog_job_get(s->log, id, false, &rec, NULL) == 0) {
        if (sr->wait) sched_status_answer(s, req->from.node, req->from.id, req->corr, req->type, id, NULL, 0, 0);
        else submit_reply(s, req, id, true, rec.state, 0);
        goto out;
    }
    const char *tenant = spec->tenant && spec->tenant[0] ? spec->tenant
                         : req->tenant && req->tenant[0] ? req->tenant
                                                          : "default";
    size_t plen = llmos__job__get_packed_size(spec);
    uint8_t *packed = malloc(plen ? plen : 1);
    if (!packed) {
        sched_reply_err(s, req, LLMOS_ENOMEM, "submit: no memory");
        goto out;
    }
    llmos__job__pack(spec, packed);
    uint64_t now = llmos_wall_ms(), seq;
    int rc = jobs_sched_submit(s->core, spec, packed, plen, tenant, now, served, s, &seq, &err);
    if (rc) {
        free(packed);
        sched_reply_err(s, req, rc, "submit: %s", err.msg);
        goto out;
    }
    joblog_job_t nrec = {.seq = seq,
                         .submitted_ms = now,
                         .priority = spec->priority,
                         .state = LLMOS__JOB_STATE__JOB_QUEUED,
                         .ntasks = (uint32_t)spec->n_tasks,
                         .tenant = tenant,
                         .tenant_len = strlen(tenant),
                         .spec = packed,
                         .spec_len = plen};
    rc = joblog_job_add(s->log, id, &nrec, &err);
    free(packed);
    if (rc) {
        jobs_sched_abort(s->core, seq);
        sched_reply_err(s, req, rc, "submit: %s", err.msg);
        goto out;
    }
    if (!sr->wait) submit_reply(s, req, id, false, LLMOS__JOB_STATE__JOB_QUEUED, st.jobs + 1);
    else if ((rc = waiter_add(s, seq, req, sr->wait_timeout_ms, sr->stream)) != 0)
        sched_reply_err(s, req, rc, "job '%s': no memory for the waiter", id);
    jobs_sched_release(s->core, seq, now);
out:
    llmos__submit_request__free_unpacked(sr, NULL);
}

void sched_on_status_or_cancel(sched_t *s, const rt_msg_t *req, bool cancel) {
    Llmos__JobRef *r = llmos__job_ref__unpack(NULL, req->len, req->data);
    if (!r) {
        sched_reply_err(s, req, LLMOS_EFORMAT, "the payload (%zu bytes) is not a JobRef", req->len);
        return;
    }
    jobs_job_view_t v;
    uint64_t seq = r->id[0] && jobs_sched_job_by_id(s->core, r->id, &v) == 0 ? v.seq : 0;
    if (cancel && seq) {
        jobs_sched_cancel(s->core, seq, llmos_wall_ms());
        sched_take_actions(s); /* its end is logged before the status is read */
        seq = 0;
    }
    if (!r->id[0] || strlen(r->id) > JOBLOG_ID_MAX)
        sched_reply_err(s, req, LLMOS_EINVAL, "id: empty or over %d bytes", JOBLOG_ID_MAX);
    else
        sched_status_answer(s, req->from.node, req->from.id, req->corr, req->type, r->id, cancel ? NULL : r->task,
                      cancel ? 0 : r->offset, 0);
    llmos__job_ref__free_unpacked(r, NULL);
}

void sched_on_wait(sched_t *s, const rt_msg_t *req) {
    Llmos__WaitRequest *w = llmos__wait_request__unpack(NULL, req->len, req->data);
    if (!w) {
        sched_reply_err(s, req, LLMOS_EFORMAT, "wait: the payload (%zu bytes) is not a WaitRequest", req->len);
        return;
    }
    jobs_job_view_t v;
    if (!w->id[0] || strlen(w->id) > JOBLOG_ID_MAX) {
        sched_reply_err(s, req, LLMOS_EINVAL, "wait: id empty or over %d bytes", JOBLOG_ID_MAX);
    } else if (jobs_sched_job_by_id(s->core, w->id, &v) == 0) {
        int rc = waiter_add(s, v.seq, req, w->timeout_ms, w->stream);
        if (rc) sched_reply_err(s, req, rc, "wait: job '%s' has too many waiters", w->id);
    } else {
        sched_status_answer(s, req->from.node, req->from.id, req->corr, req->type, w->id, NULL, 0, 0); /* finished, or ENOTFOUND */
    }
    llmos__wait_request__free_unpacked(w, NULL);
}

void sched_on_list(sched_t *s, const rt_msg_t *req) {
    Llmos__ListRequest *q = llmos__list_request__unpack(NULL, req->len, req->data);
    if (!q) {
        sched_reply_err(s, req, LLMOS_EFORMAT, "list: the payload (%zu bytes) is not a ListRequest", req->len);
        return;
    }
    uint32_t limit = q->limit ? q->limit : 100;
    if (limit > LIST_LIMIT_MAX) limit = LIST_LIMIT_MAX;
    uint8_t *buf;
    size_t len;
    llmos_error_t err;
    if (jobs_list_pack(s->log, s->core, q->tenant, (uint32_t)q->state, q->after, limit, LIST_SCAN_MAX, &buf, &len,
                       &err) != 0) {
        sched_reply_err(s, req, err.code, "list: %s", err.msg);
    } else {
        sched_reply(s, req, req->type, buf, len);
        free(buf);
    }
    llmos__list_request__free_unpacked(q, NULL);
}

void sched_on_stats(sched_t *s, const rt_msg_t *req) {
    jobs_sched_stats_t c;
    jobs_sched_get_stats(s->core, &c);
    Llmos__SchedulerStats st = LLMOS__SCHEDULER_STATS__INIT;
    st.policy = (char *)jobs_policy_name(s->cfg.core.policy);
    st.queued = c.jobs; /* unfinished jobs (queued or running) */
    st.running = c.running_tasks;
    st.done = c.done;
    st.failed = c.failed;
    st.retried = c.retried;
    st.rejected_overloaded = c.rejected;
    st.expired = c.expired;
    st.cancelled = c.cancelled;
    st.recovered = c.recovered;
    st.queue_limit = s->cfg.core.queue_limit;
    st.waiters = c.waiters;
    st.quarantined = c.quarantined;
    uint8_t buf[256];
    size_t len = llmos__scheduler_stats__pack(&st, buf);
    sched_reply(s, req, req->type, buf, len);
}
