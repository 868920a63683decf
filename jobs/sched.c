/*
 * sched.c — the scheduling core (see sched.h for the contract).
 *
 * The life of a job (its tables are sched_tables.c).  Ready tasks wait in one heap per
 * target, keyed by the policy; retries and deadlines in one timer heap.  A
 * job that ends stays in the tables (terminal, invisible to look-ups by id)
 * until the actor has taken the actions that name it, then it is freed.
 */
#include "jobs/sched_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 50

/* ---- actions ---- */

static jobs_action_t *act_push(jobs_sched_t *s, jobs_action_kind_t kind, uint64_t seq) {
    if (s->nacts == s->capacts) {
        size_t cap = s->capacts ? s->capacts * 2 : 64;
        jobs_action_t *p = realloc(s->acts, cap * sizeof *p);
        if (!p) {
            /* Nothing is lost for good: a dispatch that is not taken leaves
             * its task RUNNING until its timeout retries it. */
            s->act_oom = true;
            return NULL;
        }
        s->acts = p;
        s->capacts = cap;
    }
    jobs_action_t *a = &s->acts[s->nacts++];
    /* (field by field: why[] is large and mostly unused) */
    a->kind = kind;
    a->seq = seq;
    a->task = a->target = a->state = 0;
    a->attempt = 0;
    a->job_started = false;
    a->deadline_ms = 0;
    a->code = 0;
    a->why[0] = 0;
    a->waiter = (jobs_waiter_t){0};
    return a;
}

static void log_task_act(jobs_sched_t *s, const sjob_t *j, uint32_t i, int code, const char *why) {
    jobs_action_t *a = act_push(s, JOBS_ACT_LOG_TASK, j->seq);
    if (!a) return;
    a->task = i;
    a->code = code;
    if (why) snprintf(a->why, sizeof a->why, "%s", why);
}

/* ---- life and death ---- */

int jobs_sched_new(const jobs_sched_config_t *cfg, jobs_sched_t **out, llmos_error_t *err) {
    jobs_sched_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the scheduler");
    s->cfg = *cfg;
    s->next_seq = 1;
    *out = s;
    return 0;
}

void jobs_sched_destroy(jobs_sched_t **sp) {
    if (!sp || !*sp) return;
    jobs_sched_t *s = *sp;
    for (size_t b = 0; b < s->nbuckets; b++)
        for (sjob_t *j = s->by_id[b], *n; j; j = n) {
            n = j->next_id;
            sj_free(s, j);
        }
    free(s->by_id);
    free(s->by_seq);
    for (uint32_t t = 0; t < s->ntargets; t++) free(s->targets[t].q.v);
    for (uint32_t t = 0; t < s->ntenants; t++) free(s->tenants[t].name);
    free(s->tenants);
    free(s->events.v);
    free(s->acts);
    free(s);
    *sp = NULL;
}

static void watch(jobs_sched_t *s, sjob_t *j) {
    if (j->watched) return;
    j->watched = true;
    j->wprev = NULL;
    j->wnext = s->watch_head;
    if (s->watch_head) s->watch_head->wprev = j;
    s->watch_head = j;
}

static void unwatch(jobs_sched_t *s, sjob_t *j) {
    if (!j->watched) return;
    if (j->wprev) j->wprev->wnext = j->wnext;
    else s->watch_head = j->wnext;
    if (j->wnext) j->wnext->wprev = j->wprev;
    j->watched = false;
}

static void evt_add(jobs_sched_t *s, uint64_t due, uint64_t seq, uint32_t task, uint8_t attempt, uint8_t kind) {
    /* Out of memory: a lost retry leaves the task waiting until the job's
     * deadline or a cancel; nothing else depends on the heap. */
    (void)eheap_push(&s->events, (evt_t){due, seq, task, attempt, kind});
}

/* Builds the in-memory job (not yet queued).  check: refuse tasks whose
 * target this node does not serve. */
/* ---- queues ---- */

static void enqueue(jobs_sched_t *s, sjob_t *j, uint32_t i) {
    stask_t *t = &j->tasks[i];
    target_t *tg = &s->targets[t->target];
    int64_t k1 = 0;
    if (s->cfg.policy == JOBS_PRIORITY)
        k1 = (int64_t)j->submitted_ms - (int64_t)j->priority * (int64_t)s->cfg.aging_ms;
    else if (s->cfg.policy == JOBS_ROUND_ROBIN) {
        uint64_t *last = &s->tenants[j->tenant].last[t->target];
        uint64_t tag = (*last > tg->vt ? *last : tg->vt) + 1;
        *last = tag;
        k1 = (int64_t)tag;
    }
    t->state = LLMOS__TASK_STATE__TASK_READY;
    if (qheap_push(&tg->q, (qent_t){k1, j->seq, i}) != 0) {
        /* Out of memory: the task stays READY without an entry; the job
         * ends by its deadline or a cancel.  Never a crash. */
        return;
    }
    s->queued_tasks++;
}

/* Moves PENDING tasks whose dependencies are all done to their queues. */
static void release_ready(jobs_sched_t *s, sjob_t *j) {
    for (uint32_t i = 0; i < j->ntasks; i++) {
        if (j->tasks[i].state != LLMOS__TASK_STATE__TASK_PENDING) continue;
        bool ok = true;
        for (uint32_t k = j->dep_off[i]; ok && k < j->dep_off[i + 1]; k++)
            ok = j->tasks[j->deps[k]].state == LLMOS__TASK_STATE__TASK_DONE;
        if (ok) enqueue(s, j, i);
    }
}

/* Ends a job: its running generations are cancelled, its unfinished tasks
 * logged CANCELLED (those that were logged running), then JOB_END and an
 * ANSWER per waiter.  Freed when the actions have been taken. */
static void job_end(jobs_sched_t *s, sjob_t *j, uint32_t state, const char *why) {
    for (uint32_t i = 0; i < j->ntasks; i++) {
        stask_t *t = &j->tasks[i];
        if (t->state == LLMOS__TASK_STATE__TASK_RUNNING) {
            s->targets[t->target].inflight--;
            s->running_tasks--;
            if (t->kind == LLMOS__TASK_KIND__TASK_GENERATE) {
                jobs_action_t *a = act_push(s, JOBS_ACT_CANCEL_TASK, j->seq);
                if (a) a->task = i, a->attempt = t->attempts;
            }
        } else if (t->state == LLMOS__TASK_STATE__TASK_READY) {
            s->queued_tasks--; /* its queue entry goes stale */
        }
        if (t->state != LLMOS__TASK_STATE__TASK_DONE && t->state != LLMOS__TASK_STATE__TASK_FAILED &&
            state != LLMOS__JOB_STATE__JOB_DONE) {
            bool logged = t->state == LLMOS__TASK_STATE__TASK_RUNNING || t->state == LLMOS__TASK_STATE__TASK_RETRY_WAIT;
            t->state = LLMOS__TASK_STATE__TASK_CANCELLED;
            if (logged) log_task_act(s, j, i, 0, NULL);
        }
    }
    j->nrunning = 0;
    j->state = (uint8_t)state;
    jobs_action_t *a = act_push(s, JOBS_ACT_JOB_END, j->seq);
    if (a) {
        a->state = state;
        if (why) snprintf(a->why, sizeof a->why, "%s", why);
    }
    switch (state) {
    case LLMOS__JOB_STATE__JOB_DONE: s->st_done++; break;
    case LLMOS__JOB_STATE__JOB_FAILED: s->st_failed++; break;
    case LLMOS__JOB_STATE__JOB_CANCELLED: s->st_cancelled++; break;
    case LLMOS__JOB_STATE__JOB_EXPIRED: s->st_expired++; break;
    case LLMOS__JOB_STATE__JOB_QUARANTINED: s->st_quarantined++; break;
    }
    s->rate_count++;
    /* The waiters stay with the job until it is freed, so the last task's
     * result can still be streamed to them before their answers go. */
    for (waiter_t *w = j->waiters; w; w = w->next) {
        jobs_action_t *an = act_push(s, JOBS_ACT_ANSWER, j->seq);
        if (an) an->waiter = w->w;
        s->nwaiters--;
    }
    unwatch(s, j);
    j->next_ended = s->ended;
    s->ended = j;
}

/* ---- inputs ---- */

int jobs_sched_submit(jobs_sched_t *s, const Llmos__Job *spec, const void *packed, size_t plen, const char *tenant,
                      uint64_t now, bool (*served)(void *user, const char *target), void *user, uint64_t *seq_out,
                      llmos_error_t *err) {
    if (s->njobs >= s->cfg.queue_limit) {
        s->st_rejected++;
        return llmos_error_set(err, LLMOS_EOVERLOADED, "overloaded: %zu jobs queued, retry after %" PRIu64 " ms",
                               s->njobs, jobs_sched_retry_after_ms(s));
    }
    sjob_t *j;
    int rc = sj_make(s, spec, packed, plen, s->next_seq, tenant, now, served, user, &j, err);
    if (rc) return rc;
    s->next_seq++;
    if (j->deadline_ms) evt_add(s, j->deadline_ms, j->seq, 0, 0, EV_DEADLINE);
    *seq_out = j->seq;
    return 0;
}

void jobs_sched_release(jobs_sched_t *s, uint64_t seq, uint64_t now) {
    (void)now;
    sjob_t *j = sj_alive(s, seq);
    if (j) release_ready(s, j);
}

void jobs_sched_abort(jobs_sched_t *s, uint64_t seq) {
    sjob_t *j = sj_alive(s, seq);
    if (!j) return;
    sj_remove(s, j);
    sj_free(s, j);
}

void jobs_sched_set_next_seq(jobs_sched_t *s, uint64_t next) {
    if (next > s->next_seq) s->next_seq = next;
}

/* Ends a recovered job whose task `i` was in flight during quarantine_after
 * consecutive crashes: the task fails, the job ends QUARANTINED. */
static void quarantine(jobs_sched_t *s, sjob_t *j, uint32_t i) {
    char why[256];
    Llmos__Job *spec = llmos__job__unpack(NULL, j->spec_len, j->spec);
    char nb[16];
    snprintf(why, sizeof why,
             "quarantined: task '%.64s' was in flight during %u consecutive crashes of the node; it is not run again",
             spec ? jobs_task_name(spec->tasks[i], i, nb, sizeof nb) : "?", j->tasks[i].crashes);
    if (spec) llmos__job__free_unpacked(spec, NULL);
    j->tasks[i].state = LLMOS__TASK_STATE__TASK_FAILED;
    log_task_act(s, j, i, LLMOS_EINTERNAL, why);
    job_end(s, j, LLMOS__JOB_STATE__JOB_QUARANTINED, why);
}

int jobs_sched_restore(jobs_sched_t *s, const Llmos__Job *spec, const void *packed, size_t plen, const char *tenant,
                       uint64_t seq, uint64_t submitted_ms, uint64_t started_ms, uint32_t state,
                       const jobs_task_log_t *tasks, uint64_t now, llmos_error_t *err) {
    (void)now;
    sjob_t *j;
    int rc = sj_make(s, spec, packed, plen, seq, tenant, submitted_ms, NULL, NULL, &j, err);
    if (rc) return rc;
    if (seq >= s->next_seq) s->next_seq = seq + 1;
    j->started_ms = started_ms;
    j->state = (uint8_t)(state == LLMOS__JOB_STATE__JOB_RUNNING ? state : LLMOS__JOB_STATE__JOB_QUEUED);
    int culprit = -1;
    for (uint32_t i = 0; i < j->ntasks; i++) {
        const jobs_task_log_t *t = &tasks[i];
        if (!t->present) continue;
        j->tasks[i].attempts = (uint8_t)(t->attempts > 255 ? 255 : t->attempts);
        j->tasks[i].crashes = (uint8_t)(t->crashes > 255 ? 255 : t->crashes);
        if (t->state == LLMOS__TASK_STATE__TASK_DONE) {
            j->tasks[i].state = LLMOS__TASK_STATE__TASK_DONE;
            j->ndone++;
        } else if (t->state == LLMOS__TASK_STATE__TASK_RUNNING) {
            /* In flight when the node died: counted, in the log, before it
             * can run (and perhaps crash the node) again. */
            if (j->tasks[i].crashes < 255) j->tasks[i].crashes++;
            log_task_act(s, j, i, 0, NULL);
            if (s->cfg.quarantine_after && j->tasks[i].crashes >= s->cfg.quarantine_after && culprit < 0)
                culprit = (int)i;
        }
    }
    if (j->deadline_ms) evt_add(s, j->deadline_ms, j->seq, 0, 0, EV_DEADLINE);
    s->st_recovered++;
    if (culprit >= 0) quarantine(s, j, (uint32_t)culprit);
    else if (j->ndone == j->ntasks) job_end(s, j, LLMOS__JOB_STATE__JOB_DONE, NULL); /* its end was not logged */
    else release_ready(s, j);
    return 0;
}

int jobs_sched_wait(jobs_sched_t *s, uint64_t seq, const jobs_waiter_t *w, uint32_t timeout_ms, uint64_t deadline_ms,
                    uint64_t now) {
    sjob_t *j = sj_alive(s, seq);
    if (!j) return LLMOS_ENOTFOUND;
    uint32_t n = 0;
    for (waiter_t *x = j->waiters; x; x = x->next) n++;
    if (n >= JOBS_WAITERS_PER_JOB) return LLMOS_EOVERLOADED;
    waiter_t *x = calloc(1, sizeof *x);
    if (!x) return LLMOS_ENOMEM;
    uint64_t dl = now + (timeout_ms ? timeout_ms : JOBS_WAIT_DEFAULT_MS);
    if (!timeout_ms && deadline_ms && deadline_ms < dl) dl = deadline_ms;
    x->w = *w;
    x->deadline_ms = dl;
    x->next = j->waiters;
    j->waiters = x;
    watch(s, j);
    s->nwaiters++;
    return 0;
}

/* Sends task i on its way: RUNNING, one attempt more, a DISPATCH. */
static void task_start(jobs_sched_t *s, sjob_t *j, uint32_t i, uint64_t now) {
    stask_t *st = &j->tasks[i];
    st->attempts++;
    st->state = LLMOS__TASK_STATE__TASK_RUNNING;
    st->started_ms = now;
    uint64_t deadline = now + s->cfg.task_timeout_ms;
    if (j->deadline_ms && j->deadline_ms < deadline) deadline = j->deadline_ms;
    s->targets[st->target].inflight++;
    j->nrunning++;
    s->running_tasks++;
    bool first = j->state == LLMOS__JOB_STATE__JOB_QUEUED;
    if (first) {
        j->state = LLMOS__JOB_STATE__JOB_RUNNING;
        j->started_ms = now;
    }
    watch(s, j);
    jobs_action_t *a = act_push(s, JOBS_ACT_DISPATCH, j->seq);
    if (a) {
        a->job_started = first;
        a->task = i;
        a->attempt = st->attempts;
        a->deadline_ms = deadline;
    }
}

static int task_running(jobs_sched_t *s, uint64_t seq, uint32_t task, uint8_t attempt, sjob_t **out) {
    sjob_t *j = sj_alive(s, seq);
    if (!j || task >= j->ntasks) return LLMOS_ESTATE;
    stask_t *st = &j->tasks[task];
    if (st->state != LLMOS__TASK_STATE__TASK_RUNNING || st->attempts != attempt) return LLMOS_ESTATE; /* stale */
    *out = j;
    return 0;
}

static void fail_task(jobs_sched_t *s, sjob_t *j, uint32_t i, int code, const char *why, uint64_t now, bool log) {
    stask_t *st = &j->tasks[i];
    if (st->state == LLMOS__TASK_STATE__TASK_RUNNING) {
        s->targets[st->target].inflight--;
        j->nrunning--;
        s->running_tasks--;
    }
    if (llmos_err_is_retryable(code) && st->attempts <= j->max_retries) {
        st->state = LLMOS__TASK_STATE__TASK_RETRY_WAIT;
        if (log) log_task_act(s, j, i, code, why);
        uint64_t backoff = (uint64_t)s->cfg.retry_base_ms << (st->attempts ? st->attempts - 1 : 0);
        if (st->attempts > 20 || backoff > JOBS_RETRY_CAP_MS) backoff = JOBS_RETRY_CAP_MS;
        evt_add(s, now + backoff, j->seq, i, st->attempts, EV_RETRY);
        s->st_retried++;
        return;
    }
    st->state = LLMOS__TASK_STATE__TASK_FAILED;
    if (log) log_task_act(s, j, i, code, why);
    char text[LLMOS_ERRMSG_MAX], nb[16];
    Llmos__Job *spec = llmos__job__unpack(NULL, j->spec_len, j->spec);
    snprintf(text, sizeof text, "task '%s' failed after %u attempt%s: %s: %s",
             spec ? jobs_task_name(spec->tasks[i], i, nb, sizeof nb) : "?", st->attempts, st->attempts == 1 ? "" : "s",
             llmos_errname(code), why ? why : llmos_strerror(code));
    if (spec) llmos__job__free_unpacked(spec, NULL);
    job_end(s, j, LLMOS__JOB_STATE__JOB_FAILED, text);
}

int jobs_sched_task_done(jobs_sched_t *s, uint64_t seq, uint32_t task, uint8_t attempt, uint64_t now) {
    (void)now;
    sjob_t *j;
    int rc = task_running(s, seq, task, attempt, &j);
    if (rc) return rc;
    j->tasks[task].state = LLMOS__TASK_STATE__TASK_DONE;
    s->targets[j->tasks[task].target].inflight--;
    j->nrunning--;
    j->ndone++;
    s->running_tasks--;
    if (j->ndone == j->ntasks) job_end(s, j, LLMOS__JOB_STATE__JOB_DONE, NULL);
    else release_ready(s, j);
    return 0;
}

int jobs_sched_task_failed(jobs_sched_t *s, uint64_t seq, uint32_t task, uint8_t attempt, int code, const char *why,
                           uint64_t now) {
    sjob_t *j;
    int rc = task_running(s, seq, task, attempt, &j);
    if (rc) {
        /* A task that failed before it was sent (its input could not be
         * built) is RUNNING with this attempt too; anything else is stale. */
        return rc;
    }
    fail_task(s, j, task, code, why, now, false);
    return 0;
}

int jobs_sched_cancel(jobs_sched_t *s, uint64_t seq, uint64_t now) {
    (void)now;
    sjob_t *j = sj_alive(s, seq);
    if (!j) return LLMOS_ENOTFOUND;
    job_end(s, j, LLMOS__JOB_STATE__JOB_CANCELLED, "cancelled on request");
    return 0;
}

void jobs_sched_set_limit(jobs_sched_t *s, uint32_t target, uint32_t limit) {
    if (target < s->ntargets) s->targets[target].limit = limit > 1000000 ? 1000000 : limit;
}

/* Every SWEEP_MS: waits past their deadline are answered ETIMEDOUT and
 * dropped; running tasks whose target did not answer by their deadline
 * (+ a grace for the target's own timeout to arrive first) fail ETIMEDOUT.
 * Only jobs with waiters or running tasks are on the list. */
static void sweep(jobs_sched_t *s, uint64_t now) {
    for (sjob_t *j = s->watch_head, *next; j; j = next) {
        next = j->wnext;
        for (uint32_t i = 0; i < j->ntasks && j->nrunning && !jobs_state_final(j->state); i++) {
            stask_t *t = &j->tasks[i];
            if (t->state != LLMOS__TASK_STATE__TASK_RUNNING) continue;
            uint64_t dl = t->started_ms + s->cfg.task_timeout_ms;
            if (j->deadline_ms && j->deadline_ms < dl) dl = j->deadline_ms;
            if (now > dl + JOBS_TIMEOUT_GRACE_MS)
                fail_task(s, j, i, LLMOS_ETIMEDOUT, "the target did not answer in time", now, true);
        }
        if (jobs_state_final(j->state)) continue; /* ended (unwatched) */
        for (waiter_t **p = &j->waiters; *p;) {
            waiter_t *w = *p;
            if (w->deadline_ms <= now) {
                *p = w->next;
                jobs_action_t *a = act_push(s, JOBS_ACT_ANSWER, j->seq);
                if (a) {
                    a->waiter = w->w;
                    a->code = LLMOS_ETIMEDOUT;
                }
                free(w);
                s->nwaiters--;
            } else {
                p = &w->next;
            }
        }
        if (!j->waiters && !j->nrunning) unwatch(s, j);
    }
}

static void on_event(jobs_sched_t *s, const evt_t *e, uint64_t now) {
    sjob_t *j = sj_alive(s, e->seq);
    if (!j) return;
    switch (e->kind) {
    case EV_DEADLINE:
        if (j->deadline_ms && j->deadline_ms <= now) job_end(s, j, LLMOS__JOB_STATE__JOB_EXPIRED, "deadline passed");
        return;
    case EV_RETRY:
        if (e->task < j->ntasks && j->tasks[e->task].state == LLMOS__TASK_STATE__TASK_RETRY_WAIT &&
            j->tasks[e->task].attempts == e->attempt)
            enqueue(s, j, e->task);
        return;
    }
}

/* Starts what the targets have room for. */
static void pump(jobs_sched_t *s, uint64_t now) {
    for (uint32_t t = 0; t < s->ntargets; t++) {
        target_t *tg = &s->targets[t];
        if (tg->learn && tg->refs) {
            tg->learn = false;
            jobs_action_t *a = act_push(s, JOBS_ACT_ASK_LIMIT, 0);
            if (a) a->target = t;
        }
        while (tg->inflight < tg->limit && tg->q.n) {
            qent_t e = qheap_pop(&tg->q);
            sjob_t *j = sj_alive(s, e.seq);
            if (!j || e.task >= j->ntasks || j->tasks[e.task].state != LLMOS__TASK_STATE__TASK_READY)
                continue; /* stale: the job ended or the entry was superseded */
            s->queued_tasks--;
            if (s->cfg.policy == JOBS_ROUND_ROBIN) tg->vt = (uint64_t)e.k1;
            if (j->deadline_ms && j->deadline_ms <= now) {
                /* (it passed while queued, or while the node was down) */
                j->tasks[e.task].state = LLMOS__TASK_STATE__TASK_PENDING;
                job_end(s, j, LLMOS__JOB_STATE__JOB_EXPIRED, "deadline passed");
                continue;
            }
            task_start(s, j, e.task, now);
        }
    }
}

void jobs_sched_tick(jobs_sched_t *s, uint64_t now) {
    while (s->events.n && s->events.v[0].due_ms <= now) {
        evt_t e = eheap_pop(&s->events);
        on_event(s, &e, now);
    }
    if (now - s->last_sweep_ms >= SWEEP_MS || now < s->last_sweep_ms) {
        s->last_sweep_ms = now;
        sweep(s, now);
    }
    if (!s->rate_t0_ms) s->rate_t0_ms = now;
    if (now - s->rate_t0_ms >= 1000 && now > s->rate_t0_ms) {
        double r = (double)s->rate_count * 1000.0 / (double)(now - s->rate_t0_ms);
        s->done_rate = s->done_rate * 0.5 + r * 0.5;
        s->rate_count = 0;
        s->rate_t0_ms = now;
    }
    pump(s, now);
}

void jobs_sched_stopping(jobs_sched_t *s) {
    for (sjob_t *j = s->watch_head; j; j = j->wnext)
        for (uint32_t i = 0; i < j->ntasks && j->nrunning; i++)
            if (j->tasks[i].state == LLMOS__TASK_STATE__TASK_RUNNING) {
                j->tasks[i].state = LLMOS__TASK_STATE__TASK_READY;
                log_task_act(s, j, i, 0, NULL);
            }
}

const jobs_action_t *jobs_sched_next_action(jobs_sched_t *s) {
    if (s->nextact < s->nacts) return &s->acts[s->nextact++];
    s->nacts = s->nextact = 0;
    s->act_oom = false;
    for (sjob_t *j = s->ended, *n; j; j = n) {
        n = j->next_ended;
        sj_remove(s, j);
        sj_free(s, j);
    }
    s->ended = NULL;
    return NULL;
}

/* ---- views ---- */

static void job_view(const jobs_sched_t *s, const sjob_t *j, jobs_job_view_t *out) {
    out->id = j->id;
    out->tenant = s->tenants[j->tenant].name;
    out->seq = j->seq;
    out->submitted_ms = j->submitted_ms;
    out->started_ms = j->started_ms;
    out->deadline_ms = j->deadline_ms;
    out->priority = j->priority;
    out->state = j->state;
    out->ntasks = j->ntasks;
    out->spec = j->spec;
    out->spec_len = j->spec_len;
    out->has_streams = false;
    for (const waiter_t *w = j->waiters; w; w = w->next) out->has_streams |= w->w.stream;
}

int jobs_sched_job(const jobs_sched_t *s, uint64_t seq, jobs_job_view_t *out) {
    const sjob_t *j = sj_by_seq_any(s, seq);
    if (!j) return LLMOS_ENOTFOUND;
    job_view(s, j, out);
    return 0;
}

int jobs_sched_job_by_id(const jobs_sched_t *s, const char *id, jobs_job_view_t *out) {
    const sjob_t *j = sj_by_id(s, id);
    if (!j) return LLMOS_ENOTFOUND;
    job_view(s, j, out);
    return 0;
}

int jobs_sched_task(const jobs_sched_t *s, uint64_t seq, uint32_t task, jobs_task_view_t *out) {
    const sjob_t *j = sj_by_seq_any(s, seq);
    if (!j || task >= j->ntasks) return LLMOS_ENOTFOUND;
    const stask_t *t = &j->tasks[task];
    out->state = t->state;
    out->attempts = t->attempts;
    out->crashes = t->crashes;
    out->kind = t->kind;
    out->started_ms = t->started_ms;
    out->target = s->targets[t->target].name;
    return 0;
}

void jobs_sched_streams(const jobs_sched_t *s, uint64_t seq, void (*fn)(void *user, const jobs_waiter_t *w),
                        void *user) {
    const sjob_t *j = sj_by_seq_any(s, seq);
    for (const waiter_t *w = j ? j->waiters : NULL; w; w = w->next)
        if (w->w.stream) fn(user, &w->w);
}

const char *jobs_sched_target_name(const jobs_sched_t *s, uint32_t t) {
    return t < s->ntargets ? s->targets[t].name : "";
}

void jobs_sched_get_stats(const jobs_sched_t *s, jobs_sched_stats_t *out) {
    size_t ended = 0;
    for (const sjob_t *j = s->ended; j; j = j->next_ended) ended++;
    *out = (jobs_sched_stats_t){.jobs = s->njobs - ended,
                                .queued_tasks = s->queued_tasks,
                                .running_tasks = s->running_tasks,
                                .waiters = s->nwaiters,
                                .done = s->st_done,
                                .failed = s->st_failed,
                                .retried = s->st_retried,
                                .rejected = s->st_rejected,
                                .expired = s->st_expired,
                                .cancelled = s->st_cancelled,
                                .recovered = s->st_recovered,
                                .quarantined = s->st_quarantined,
                                .done_rate = s->done_rate};
}

uint64_t jobs_sched_retry_after_ms(const jobs_sched_t *s) {
    double rate = s->done_rate;
    uint64_t ms = rate > 0.5 ? (uint64_t)((double)s->njobs / rate * 1000.0 / 10.0) : 1000;
    if (ms < 100) ms = 100;
    if (ms > 60000) ms = 60000;
    return ms;
}

