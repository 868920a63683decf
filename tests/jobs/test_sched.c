/*
 * test_sched.c — the scheduler and gateway in-process: a real runtime, a
 * real job log in a temp dir, and small target actors defined here:
 *   echo   answers JOB_MSG_ECHO at once (counts what it ran)
 *   slow   pinned; 15 ms per task; records the order it ran texts in
 *   flaky  fails the first two attempts of each text with EUNAVAILABLE,
 *          records when each attempt came (back-off timing)
 *   bad    answers EINVAL (not retried)
 *   hole   never answers (deadlines, cancel, admission control)
 * Every request goes through `gateway` with rt_call, as a client's would.
 */
#include "actors/gateway.h"
#include "jobs/joblog.h"
#include "actors/scheduler.h"
#include "llmos/graph.pb-c.h"
#include "llmos/job.pb-c.h"
#include "llmos/model.pb-c.h"
#include "runtime/actor.h"
#include "runtime/base/clock.h"

#include "runtime/base/tmpdir.h"
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* ---- target actors ---- */

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static char order[256][32];
static int norder;
static int echo_count;
static uint64_t flaky_ms[16];
static int nflaky;

static char *echo_text(const rt_msg_t *m) {
    Llmos__EchoTask *e = llmos__echo_task__unpack(NULL, m->len, m->data);
    char *t = strdup(e ? e->text : "?");
    if (e) llmos__echo_task__free_unpacked(e, NULL);
    return t;
}

static int echo_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) {
    if (m->flags & RT_MSG_REPLY) return 0;
    pthread_mutex_lock(&rec_mu);
    echo_count++;
    pthread_mutex_unlock(&rec_mu);
    rt_reply(ctx, m, m->type, m->data, m->len);
    return 0;
}

/* The "blocker" task holds `slow` until the test opens the gate (at most 5 s),
 * so the order of what queues behind it does not depend on timing. */
static atomic_int gate_open;

static int slow_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) {
    if (m->flags & RT_MSG_REPLY) return 0;
    char *t = echo_text(m);
    for (int i = 0; i < 1000 && strcmp(t, "blocker") == 0 && !atomic_load(&gate_open); i++) usleep(5000);
    pthread_mutex_lock(&rec_mu);
    if (norder < 256) snprintf(order[norder++], 32, "%s", t);
    pthread_mutex_unlock(&rec_mu);
    free(t);
    usleep(15000);
    rt_reply(ctx, m, m->type, m->data, m->len);
    return 0;
}

static int flaky_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) {
    if (m->flags & RT_MSG_REPLY) return 0;
    pthread_mutex_lock(&rec_mu);
    int n = nflaky;
    if (nflaky < 16) flaky_ms[nflaky++] = llmos_wall_ms();
    pthread_mutex_unlock(&rec_mu);
    if (n < 2) rt_reply_error(ctx, m, LLMOS_EUNAVAILABLE, "flaky: attempt %d fails", n + 1);
    else rt_reply(ctx, m, m->type, m->data, m->len);
    return 0;
}

static int bad_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) {
    if (m->flags & RT_MSG_REPLY) return 0;
    pthread_mutex_lock(&rec_mu);
    echo_count++;
    pthread_mutex_unlock(&rec_mu);
    rt_reply_error(ctx, m, LLMOS_EINVAL, "bad: text is not acceptable");
    return 0;
}

static int hole_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) { return 0; }

/* A graph that finds nothing: link and query answers with an empty text
 * (protobuf-c unpacks it as its shared read-only "", which the scheduler
 * once wrote into: a one-line link job crashed the node for good). */
static int nograph_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) {
    if (m->flags & RT_MSG_REPLY) return 0;
    Llmos__GraphResult g = LLMOS__GRAPH_RESULT__INIT;
    uint8_t buf[64];
    size_t len = llmos__graph_result__pack(&g, buf);
    rt_reply(ctx, m, m->type, buf, len);
    return 0;
}

/* A model that never finishes a generation and records cancels. */
static char cancelled_rid[128];
static int fakemodel_rx(rt_ctx_t *ctx, void *st, rt_msg_t *m) {
    if (m->flags & RT_MSG_REPLY) return 0;
    if (m->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL) {
        Llmos__CancelRequest *c = llmos__cancel_request__unpack(NULL, m->len, m->data);
        pthread_mutex_lock(&rec_mu);
        snprintf(cancelled_rid, sizeof cancelled_rid, "%s", c ? c->request_id : "?");
        pthread_mutex_unlock(&rec_mu);
        if (c) llmos__cancel_request__free_unpacked(c, NULL);
    }
    return 0;
}

/* ---- fixture ---- */

typedef struct fx {
    char dir[256];
    rt_system_t *sys;
    sched_config_t cfg;
} fx_t;

static void start(fx_t *f) {
    llmos_error_t err;
    rt_system_opts_t so = {.workers = 2};
    assert_int_equal(rt_system_new(&so, &f->sys, &err), 0);
    static const rt_actor_def_t defs[] = {
        {"echo", NULL, echo_rx, NULL, NULL}, {"slow", NULL, slow_rx, NULL, NULL},
        {"flaky", NULL, flaky_rx, NULL, NULL}, {"bad", NULL, bad_rx, NULL, NULL},
        {"hole", NULL, hole_rx, NULL, NULL}, {"fakemodel", NULL, fakemodel_rx, NULL, NULL},
        {"graph", NULL, nograph_rx, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        rt_spawn_opts_t o = {.name = defs[i].kind, .pinned = strcmp(defs[i].kind, "slow") == 0};
        rt_ref_t ref;
        assert_int_equal(rt_spawn(f->sys, &defs[i], NULL, &o, &ref, &err), 0);
    }
    if (sched_start(f->sys, &f->cfg, &err) != 0) fail_msg("sched_start: %s", err.msg);
    assert_int_equal(gateway_start(f->sys, &err), 0);
}

static void stop(fx_t *f) { rt_system_destroy(&f->sys); }

static int setup(void **st) {
    fx_t *f = calloc(1, sizeof *f);
    llmos_error_t terr;
    if (llmos_tmpdir_make("llmos-sched", f->dir, sizeof f->dir, &terr) != 0) return -1;
    sched_config_init(&f->cfg);
    snprintf(f->cfg.data_dir, sizeof f->cfg.data_dir, "%s", f->dir);
    f->cfg.sync = false;
    f->cfg.core.retry_base_ms = 50;
    llmos_error_t err;
    if (jobs_limits_parse(&f->cfg.core, "slow=1,hole=1000", &err) != 0) return -1;
    atomic_store(&gate_open, 0);
    cancelled_rid[0] = 0;
    pthread_mutex_lock(&rec_mu);
    norder = 0;
    echo_count = 0;
    nflaky = 0;
    pthread_mutex_unlock(&rec_mu);
    *st = f;
    return 0;
}

static int teardown(void **st) {
    fx_t *f = *st;
    stop(f);
    if (llmos_tmpdir_remove(f->dir, NULL) != 0) return -1;
    free(f);
    return 0;
}

/* ---- requests ---- */

typedef struct tspec {
    const char *name, *text, *target;
    int kind;
    const char *after, *input_from;
} tspec_t;

static rt_msg_t *call(fx_t *f, uint32_t type, const void *buf, size_t len, uint32_t timeout_ms) {
    rt_msg_t *r = NULL;
    llmos_error_t err;
    int rc = rt_call(f->sys, rt_ref_name(0, "gateway"), type, buf, len, timeout_ms, &r, &err);
    if (rc) fail_msg("rt_call: %s", err.msg);
    return r;
}

/* Submits a job of n tasks; returns the reply (caller frees). */
static rt_msg_t *submit_job(fx_t *f, const char *id, const char *tenant, int prio, uint64_t deadline_ms,
                            const tspec_t *ts, size_t n, bool wait) {
    Llmos__Task tasks[8], *tp[8];
    char *after[8], *inp[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        Llmos__Task t = LLMOS__TASK__INIT;
        t.name = (char *)(ts[i].name ? ts[i].name : "");
        t.kind = ts[i].kind ? ts[i].kind : LLMOS__TASK_KIND__TASK_ECHO;
        t.text = (char *)(ts[i].text ? ts[i].text : "");
        t.target = (char *)(ts[i].target ? ts[i].target : "");
        if (ts[i].after) {
            after[i] = (char *)ts[i].after;
            t.n_after = 1;
            t.after = &after[i];
        }
        if (ts[i].input_from) {
            inp[i] = (char *)ts[i].input_from;
            t.n_input_from = 1;
            t.input_from = &inp[i];
        }
        tasks[i] = t;
        tp[i] = &tasks[i];
    }
    Llmos__Job job = LLMOS__JOB__INIT;
    job.id = (char *)id;
    job.tenant = (char *)(tenant ? tenant : "");
    job.priority = prio;
    job.deadline_ms = deadline_ms;
    job.n_tasks = n;
    job.tasks = tp;
    Llmos__SubmitRequest sr = LLMOS__SUBMIT_REQUEST__INIT;
    sr.job = &job;
    sr.wait = wait;
    uint8_t buf[4096];
    size_t len = llmos__submit_request__pack(&sr, buf);
    return call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, 10000);
}

static rt_msg_t *submit1(fx_t *f, const char *id, const char *tenant, int prio, const char *target, const char *text,
                         bool wait) {
    tspec_t t = {.text = text, .target = target};
    return submit_job(f, id, tenant, prio, 0, &t, 1, wait);
}

static void submit_ok(fx_t *f, const char *id, const char *tenant, int prio, const char *target, const char *text) {
    rt_msg_t *r = submit1(f, id, tenant, prio, target, text, false);
    if (r->status) fail_msg("submit %s: %s", id, r->error);
    rt_msg_free(r);
}

static Llmos__JobStatus *ref_call(fx_t *f, uint32_t type, const char *id, uint32_t timeout_ms, int *status) {
    uint8_t buf[256];
    size_t len;
    if (type == LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT) {
        Llmos__WaitRequest w = LLMOS__WAIT_REQUEST__INIT;
        w.id = (char *)id;
        w.timeout_ms = timeout_ms;
        len = llmos__wait_request__pack(&w, buf);
    } else {
        Llmos__JobRef r = LLMOS__JOB_REF__INIT;
        r.id = (char *)id;
        len = llmos__job_ref__pack(&r, buf);
    }
    rt_msg_t *m = call(f, type, buf, len, timeout_ms + 5000);
    *status = m->status;
    Llmos__JobStatus *s = m->len ? llmos__job_status__unpack(NULL, m->len, m->data) : NULL;
    rt_msg_free(m);
    return s;
}

static Llmos__JobStatus *wait_job(fx_t *f, const char *id, uint32_t timeout_ms) {
    int st;
    Llmos__JobStatus *s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, id, timeout_ms, &st);
    assert_non_null(s);
    return s;
}

/* ---- tests ---- */

static void test_echo_idempotent_status(void **st) {
    fx_t *f = *st;
    start(f);
    rt_msg_t *r = submit1(f, "job-a", "acme", 0, NULL, "hello", true);
    assert_int_equal(r->status, 0);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_non_null(s);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tenant, "acme");
    assert_int_equal(s->n_tasks, 1);
    assert_string_equal(s->tasks[0]->name, "t0");
    assert_string_equal(s->tasks[0]->text, "hello");
    assert_int_equal(s->tasks[0]->state, LLMOS__TASK_STATE__TASK_DONE);
    assert_int_equal(s->tasks[0]->attempts, 1);
    llmos__job_status__free_unpacked(s, NULL);
    /* The same id again: the first job, not a new one. */
    r = submit1(f, "job-a", "other", 0, NULL, "something else", false);
    assert_int_equal(r->status, 0);
    Llmos__SubmitResult *sr = llmos__submit_result__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_true(sr->existing);
    assert_int_equal(sr->state, LLMOS__JOB_STATE__JOB_DONE);
    llmos__submit_result__free_unpacked(sr, NULL);
    assert_int_equal(echo_count, 1);
    int code;
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "job-a", 1000, &code);
    assert_int_equal(code, 0);
    assert_string_equal(s->tasks[0]->text, "hello");
    llmos__job_status__free_unpacked(s, NULL);
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "no-such-job", 1000, &code);
    assert_int_equal(code, LLMOS_ENOTFOUND);
    assert_null(s);
}

static void test_dag_input_from(void **st) {
    fx_t *f = *st;
    start(f);
    tspec_t ts[3] = {
        {.name = "facts", .text = "the sky is blue"},
        {.name = "other", .text = "unrelated"},
        {.name = "ask", .text = "what colour is the sky?", .input_from = "facts", .after = "other"},
    };
    rt_msg_t *r = submit_job(f, "dag", NULL, 0, 0, ts, 3, true);
    assert_int_equal(r->status, 0);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tenant, "default");
    assert_string_equal(s->tasks[2]->text, "the sky is blue\nwhat colour is the sky?");
    assert_true(s->tasks[2]->started_ms >= s->tasks[0]->finished_ms);
    llmos__job_status__free_unpacked(s, NULL);
}

static void expect_invalid(fx_t *f, const char *id, const tspec_t *ts, size_t n, const char *needle) {
    rt_msg_t *r = submit_job(f, id, NULL, 0, 0, ts, n, false);
    assert_int_equal(r->status, LLMOS_EINVAL);
    if (!strstr(r->error, needle)) fail_msg("error '%s' does not contain '%s'", r->error, needle);
    rt_msg_free(r);
}

static void test_gateway_validation(void **st) {
    fx_t *f = *st;
    start(f);
    tspec_t one = {.text = "x"};
    expect_invalid(f, "", &one, 1, "job.id is required");
    expect_invalid(f, "j", &one, 0, "job.tasks is empty");
    tspec_t badkind = {.text = "x", .kind = 42};
    expect_invalid(f, "j", &badkind, 1, "job.tasks[0] 't0': kind 42");
    tspec_t dup[2] = {{.name = "a", .text = "x"}, {.name = "a", .text = "y"}};
    expect_invalid(f, "j", dup, 2, "job.tasks[1]: name 'a'");
    tspec_t cyc[2] = {{.name = "a", .text = "x", .after = "b"}, {.name = "b", .text = "y", .after = "a"}};
    expect_invalid(f, "j", cyc, 2, "after 'b' is not an earlier task");
    tspec_t nosuch[1] = {{.name = "a", .text = "x", .input_from = "zz"}};
    expect_invalid(f, "j", nosuch, 1, "input_from 'zz' names no task");
    /* (A classify task without labels is valid: the model's classifier labels it.) */
    /* max_retries over the cap */
    {
        Llmos__Task t = LLMOS__TASK__INIT, *tp = &t;
        t.kind = LLMOS__TASK_KIND__TASK_ECHO;
        Llmos__Job job = LLMOS__JOB__INIT;
        job.id = "mr";
        job.max_retries = 1000;
        job.n_tasks = 1;
        job.tasks = &tp;
        Llmos__SubmitRequest sr = LLMOS__SUBMIT_REQUEST__INIT;
        sr.job = &job;
        uint8_t buf[256];
        size_t len = llmos__submit_request__pack(&sr, buf);
        rt_msg_t *r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, 2000);
        assert_int_equal(r->status, LLMOS_EINVAL);
        assert_non_null(strstr(r->error, "job.max_retries 1000 is over 100"));
        rt_msg_free(r);
    }
    /* Garbage payloads. */
    rt_msg_t *r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, "\xff\xff\xff", 3, 2000);
    assert_int_equal(r->status, LLMOS_EFORMAT);
    rt_msg_free(r);
    r = call(f, 0x3FF, "", 0, 2000);
    assert_int_equal(r->status, LLMOS_EUNKNOWNTYPE);
    rt_msg_free(r);
    assert_int_equal(echo_count, 0); /* nothing reached a target */
}

/* Blocks `slow` with one job, queues the others, then waits for all. */
static void run_ordered(fx_t *f, const char *const *ids, const char *const *tenants, const int *prios, size_t n) {
    submit_ok(f, "blocker", "z", 0, "slow", "blocker");
    usleep(3000);
    for (size_t i = 0; i < n; i++) submit_ok(f, ids[i], tenants ? tenants[i] : NULL, prios ? prios[i] : 0, "slow", ids[i]);
    atomic_store(&gate_open, 1);
    for (size_t i = 0; i < n; i++) {
        Llmos__JobStatus *s = wait_job(f, ids[i], 10000);
        assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
        llmos__job_status__free_unpacked(s, NULL);
    }
    assert_int_equal(norder, (int)n + 1);
    assert_string_equal(order[0], "blocker");
}

static void test_fifo_order(void **st) {
    fx_t *f = *st;
    start(f);
    const char *ids[] = {"f1", "f2", "f3", "f4", "f5"};
    int prios[] = {0, 9, 1, 7, 3};
    run_ordered(f, ids, NULL, prios, 5);
    for (int i = 0; i < 5; i++) assert_string_equal(order[i + 1], ids[i]);
}

static void test_priority_order(void **st) {
    fx_t *f = *st;
    f->cfg.core.policy = JOBS_PRIORITY;
    f->cfg.core.aging_ms = 60000; /* no aging within the test: pure priority */
    start(f);
    const char *ids[] = {"p0", "p9", "p1", "p7", "p3"};
    int prios[] = {0, 9, 1, 7, 3};
    run_ordered(f, ids, NULL, prios, 5);
    const char *want[] = {"p9", "p7", "p3", "p1", "p0"};
    for (int i = 0; i < 5; i++) assert_string_equal(order[i + 1], want[i]);
}

static void test_priority_aging(void **st) {
    fx_t *f = *st;
    f->cfg.core.policy = JOBS_PRIORITY;
    f->cfg.core.aging_ms = 10; /* 10 ms of waiting = one level */
    start(f);
    submit_ok(f, "blocker", "z", 0, "slow", "blocker");
    submit_ok(f, "old-low", NULL, 0, "slow", "old-low");
    usleep(100000); /* old-low has aged ~10 levels by now */
    submit_ok(f, "new-high", NULL, 5, "slow", "new-high");
    atomic_store(&gate_open, 1);
    Llmos__JobStatus *s = wait_job(f, "new-high", 10000);
    llmos__job_status__free_unpacked(s, NULL);
    s = wait_job(f, "old-low", 10000);
    llmos__job_status__free_unpacked(s, NULL);
    /* The blocker ran first; old-low then, though new-high has priority 5. */
    assert_string_equal(order[1], "old-low");
    assert_string_equal(order[2], "new-high");
}

static void test_round_robin(void **st) {
    fx_t *f = *st;
    f->cfg.core.policy = JOBS_ROUND_ROBIN;
    start(f);
    const char *ids[] = {"a1", "a2", "a3", "a4", "b1", "b2", "c1"};
    const char *tenants[] = {"A", "A", "A", "A", "B", "B", "C"};
    run_ordered(f, ids, tenants, NULL, 7);
    const char *want[] = {"a1", "b1", "c1", "a2", "b2", "a3", "a4"};
    for (int i = 0; i < 7; i++) {
        if (strcmp(order[i + 1], want[i]) != 0) fail_msg("position %d: %s, want %s", i, order[i + 1], want[i]);
    }
}

static void test_retry_backoff(void **st) {
    fx_t *f = *st;
    start(f);
    uint64_t t0 = llmos_wall_ms();
    rt_msg_t *r = submit1(f, "flaky-1", NULL, 0, "flaky", "again", true);
    assert_int_equal(r->status, 0);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_int_equal(s->tasks[0]->attempts, 3);
    llmos__job_status__free_unpacked(s, NULL);
    assert_int_equal(nflaky, 3);
    /* back-off 50 ms then 100 ms (base 50, doubling) */
    assert_true(flaky_ms[1] - flaky_ms[0] >= 50);
    assert_true(flaky_ms[2] - flaky_ms[1] >= 100);
    assert_true(flaky_ms[2] - t0 < 2000);
    /* A bad-input error is not retried: one attempt, job failed, named. */
    r = submit1(f, "bad-1", NULL, 0, "bad", "x", true);
    assert_int_equal(r->status, 0);
    s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_FAILED);
    assert_int_equal(s->tasks[0]->attempts, 1);
    assert_int_equal(s->tasks[0]->error_code, LLMOS_EINVAL);
    assert_non_null(strstr(s->error, "task 't0' failed after 1 attempt"));
    llmos__job_status__free_unpacked(s, NULL);
    assert_int_equal(echo_count, 1);
}

static void test_deadline_and_cancel(void **st) {
    fx_t *f = *st;
    start(f);
    tspec_t t = {.text = "never", .target = "hole"};
    uint64_t t0 = llmos_wall_ms();
    rt_msg_t *r = submit_job(f, "dl", NULL, 0, t0 + 200, &t, 1, true);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_EXPIRED);
    assert_int_equal(s->tasks[0]->state, LLMOS__TASK_STATE__TASK_CANCELLED);
    uint64_t took = llmos_wall_ms() - t0;
    assert_true(took >= 190 && took < 2000);
    llmos__job_status__free_unpacked(s, NULL);
    /* Cancel a running job; a waiter gets the final state. */
    submit_ok(f, "cx", NULL, 0, "hole", "never");
    int code;
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "cx", 1000, &code);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_RUNNING);
    llmos__job_status__free_unpacked(s, NULL);
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL, "cx", 1000, &code);
    assert_int_equal(code, 0);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_CANCELLED);
    assert_string_equal(s->error, "cancelled on request");
    llmos__job_status__free_unpacked(s, NULL);
    /* Cancelling a running generation tells the model (request_id job/task). */
    tspec_t g = {.name = "gen", .text = "Once", .target = "fakemodel", .kind = LLMOS__TASK_KIND__TASK_GENERATE};
    r = submit_job(f, "gx", NULL, 0, 0, &g, 1, false);
    rt_msg_free(r);
    usleep(20000);
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL, "gx", 1000, &code);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_CANCELLED);
    llmos__job_status__free_unpacked(s, NULL);
    for (int i = 0; i < 100 && !cancelled_rid[0]; i++) usleep(5000);
    assert_string_equal(cancelled_rid, "gx/gen");
    /* A wait that times out: ETIMEDOUT with the status as payload. */
    submit_ok(f, "slowpoke", NULL, 0, "hole", "never");
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, "slowpoke", 100, &code);
    assert_int_equal(code, LLMOS_ETIMEDOUT);
    assert_non_null(s);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_RUNNING);
    llmos__job_status__free_unpacked(s, NULL);
}

/* A target that never answers: the task fails ETIMEDOUT after its timeout
 * (+1 s grace), found by the scheduler's sweep; no retries left -> FAILED. */
static void test_task_timeout(void **st) {
    fx_t *f = *st;
    f->cfg.core.task_timeout_ms = 100;
    f->cfg.core.max_retries_default = 0;
    start(f);
    uint64_t t0 = llmos_wall_ms();
    rt_msg_t *r = submit1(f, "to", NULL, 0, "hole", "never", true);
    assert_int_equal(r->status, 0);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_FAILED);
    assert_int_equal(s->tasks[0]->error_code, LLMOS_ETIMEDOUT);
    assert_non_null(strstr(s->error, "did not answer in time"));
    uint64_t took = llmos_wall_ms() - t0;
    assert_true(took >= 1000 && took < 5000);
    llmos__job_status__free_unpacked(s, NULL);
}

static void test_admission_control(void **st) {
    fx_t *f = *st;
    f->cfg.core.queue_limit = 5;
    start(f);
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "q%d", i);
        submit_ok(f, id, NULL, 0, "hole", "x");
    }
    rt_msg_t *r = submit1(f, "q5", NULL, 0, "hole", "x", false);
    assert_int_equal(r->status, LLMOS_EOVERLOADED);
    assert_non_null(strstr(r->error, "overloaded: 5 jobs queued, retry after "));
    assert_non_null(strstr(r->error, " ms"));
    rt_msg_free(r);
    /* A known id is still answered (idempotency beats admission). */
    r = submit1(f, "q0", NULL, 0, "hole", "x", false);
    assert_int_equal(r->status, 0);
    rt_msg_free(r);
    /* Room again after a cancel. */
    int code;
    Llmos__JobStatus *s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL, "q1", 1000, &code);
    llmos__job_status__free_unpacked(s, NULL);
    submit_ok(f, "q5", NULL, 0, "hole", "x");
}

/* Jobs that cannot run (hole=0) survive a restart; finished ones keep
 * their results and are not run again. */
static void test_recovery(void **st) {
    fx_t *f = *st;
    f->cfg.core.nlimits = 0;
    llmos_error_t err;
    assert_int_equal(jobs_limits_parse(&f->cfg.core, "slow=0", &err), 0);
    start(f);
    rt_msg_t *r = submit1(f, "done-before", NULL, 0, NULL, "early", true);
    rt_msg_free(r);
    submit_ok(f, "pending-1", "t", 0, "slow", "p1");
    tspec_t ts[2] = {{.name = "first", .text = "kept"}, {.name = "second", .text = "later", .target = "slow", .input_from = "first"}};
    r = submit_job(f, "half", NULL, 0, 0, ts, 2, false);
    rt_msg_free(r);
    /* its deadline passes while the node is down: expired after the restart */
    tspec_t late = {.text = "late", .target = "slow"};
    r = submit_job(f, "late-dl", NULL, 0, llmos_wall_ms() + 200, &late, 1, false);
    rt_msg_free(r);
    for (int i = 0; i < 1000 && echo_count < 2; i++) usleep(5000);
    usleep(20000);
    assert_int_equal(echo_count, 2); /* done-before, half/first */
    stop(f);
    usleep(250000); /* late-dl's deadline passes while the node is down */
    /* A new runtime on the same directory, with room on slow. */
    f->cfg.core.nlimits = 0;
    assert_int_equal(jobs_limits_parse(&f->cfg.core, "slow=4", &err), 0);
    echo_count = 0;
    norder = 0;
    start(f);
    Llmos__JobStatus *s = wait_job(f, "pending-1", 5000);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tasks[0]->text, "p1");
    llmos__job_status__free_unpacked(s, NULL);
    s = wait_job(f, "late-dl", 5000);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_EXPIRED);
    llmos__job_status__free_unpacked(s, NULL);
    s = wait_job(f, "half", 5000);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tasks[1]->text, "kept\nlater");
    llmos__job_status__free_unpacked(s, NULL);
    int code;
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "done-before", 1000, &code);
    assert_string_equal(s->tasks[0]->text, "early");
    llmos__job_status__free_unpacked(s, NULL);
    assert_int_equal(echo_count, 0); /* nothing done before ran again */
    assert_int_equal(norder, 2);
    /* stats count the recovered jobs */
    r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SCHED_STATS, "", 0, 2000);
    Llmos__SchedulerStats *ss = llmos__scheduler_stats__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(ss->recovered, 3);
    assert_string_equal(ss->policy, "fifo");
    llmos__scheduler_stats__free_unpacked(ss, NULL);
}

/* Finished jobs are purged retention_s after they finished. */
static void test_retention(void **st) {
    fx_t *f = *st;
    f->cfg.retention_s = 1;
    start(f);
    rt_msg_t *r = submit1(f, "short-lived", NULL, 0, NULL, "x", true);
    rt_msg_free(r);
    int code;
    Llmos__JobStatus *s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "short-lived", 1000, &code);
    assert_int_equal(code, 0);
    llmos__job_status__free_unpacked(s, NULL);
    for (int i = 0; i < 60; i++) { /* purge passes run every second */
        usleep(100000);
        s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "short-lived", 1000, &code);
        if (s) llmos__job_status__free_unpacked(s, NULL);
        if (code == LLMOS_ENOTFOUND) break;
    }
    assert_int_equal(code, LLMOS_ENOTFOUND);
    /* the id is free again: a new job, not the old one */
    r = submit1(f, "short-lived", NULL, 0, NULL, "y", false);
    Llmos__SubmitResult *sr = llmos__submit_result__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_false(sr->existing);
    llmos__submit_result__free_unpacked(sr, NULL);
}

static void test_list(void **st) {
    fx_t *f = *st;
    start(f);
    char id[16];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "L%02d", i);
        rt_msg_t *r = submit1(f, id, i % 3 == 0 ? "x" : "y", 0, i < 10 ? "echo" : "hole", "t", i < 10);
        rt_msg_free(r);
    }
    Llmos__ListRequest q = LLMOS__LIST_REQUEST__INIT;
    q.tenant = "y";
    q.state = LLMOS__JOB_STATE__JOB_DONE;
    q.limit = 4;
    uint8_t buf[256];
    size_t len = llmos__list_request__pack(&q, buf);
    rt_msg_t *r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST, buf, len, 2000);
    Llmos__JobList *l = llmos__job_list__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    /* y and done: L01 L02 L04 L05 | L07 L08 */
    assert_int_equal(l->n_jobs, 4);
    assert_string_equal(l->jobs[0]->id, "L01");
    assert_string_equal(l->jobs[3]->id, "L05");
    assert_string_equal(l->next, "L05");
    /* tasks: state only, no results */
    assert_int_equal(l->jobs[0]->n_tasks, 1);
    assert_int_equal(l->jobs[0]->tasks[0]->state, LLMOS__TASK_STATE__TASK_DONE);
    assert_string_equal(l->jobs[0]->tasks[0]->text, "");
    assert_string_equal(l->jobs[0]->tenant, "y");
    q.after = l->next;
    len = llmos__list_request__pack(&q, buf);
    r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST, buf, len, 2000);
    Llmos__JobList *l2 = llmos__job_list__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(l2->n_jobs, 2);
    assert_string_equal(l2->jobs[1]->id, "L08");
    assert_string_equal(l2->next, "");
    llmos__job_list__free_unpacked(l, NULL);
    llmos__job_list__free_unpacked(l2, NULL);
    /* running ones, any tenant */
    q = (Llmos__ListRequest)LLMOS__LIST_REQUEST__INIT;
    q.state = LLMOS__JOB_STATE__JOB_RUNNING;
    len = llmos__list_request__pack(&q, buf);
    r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST, buf, len, 2000);
    l = llmos__job_list__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(l->n_jobs, 2);
    assert_string_equal(l->jobs[0]->id, "L10");
    llmos__job_list__free_unpacked(l, NULL);
}

/* ---- issue 21: poison pills, bounds, tables that never fill for good ---- */

/* A link task whose text mentions nothing: done with 0 facts, and the node
 * goes on serving. */
static void test_link_no_mention(void **st) {
    fx_t *f = *st;
    start(f);
    tspec_t ts[2] = {{.name = "facts", .text = "Lily saw", .kind = LLMOS__TASK_KIND__TASK_LINK},
                     {.name = "after", .text = "still here", .input_from = "facts"}};
    rt_msg_t *r = submit_job(f, "g3", NULL, 0, 0, ts, 2, true);
    assert_int_equal(r->status, 0);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tasks[0]->text, "");
    assert_int_equal(s->tasks[0]->facts, 0);
    assert_string_equal(s->tasks[1]->text, "still here");
    llmos__job_status__free_unpacked(s, NULL);
    r = submit1(f, "after-g3", NULL, 0, NULL, "alive", true);
    assert_int_equal(r->status, 0);
    rt_msg_free(r);
}

/* Packs a SubmitRequest with one echo task whose input_from lists `refs`. */
static size_t pack_refs(uint8_t *buf, const char *id, char **refs, size_t n) {
    Llmos__Task a = LLMOS__TASK__INIT, b = LLMOS__TASK__INIT, *tp[2] = {&a, &b};
    a.name = "a";
    a.kind = b.kind = LLMOS__TASK_KIND__TASK_ECHO;
    a.text = "x";
    b.name = "b";
    b.text = "y";
    b.input_from = refs;
    b.n_input_from = n;
    Llmos__Job job = LLMOS__JOB__INIT;
    job.id = (char *)id;
    job.n_tasks = 2;
    job.tasks = tp;
    Llmos__SubmitRequest sr = LLMOS__SUBMIT_REQUEST__INIT;
    sr.job = &job;
    return llmos__submit_request__pack(&sr, buf);
}

static void test_bad_refs_targets_and_strings(void **st) {
    fx_t *f = *st;
    start(f);
    uint8_t buf[4096];
    /* input_from naming the same task twice */
    char *dup[3] = {"a", "a", "a"};
    size_t len = pack_refs(buf, "dups", dup, 3);
    rt_msg_t *r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, 2000);
    assert_int_equal(r->status, LLMOS_EINVAL);
    assert_non_null(strstr(r->error, "input_from[1] 'a' is also input_from[0]"));
    rt_msg_free(r);
    /* a target nobody serves: refused at submission, naming it */
    r = submit1(f, "nowhere", NULL, 0, "no-such-actor", "x", false);
    assert_int_equal(r->status, LLMOS_ENOTFOUND);
    assert_non_null(strstr(r->error, "target 'no-such-actor' is not served by this node"));
    rt_msg_free(r);
    /* a default target this node lacks: the refusal says what would serve it */
    tspec_t gen = {.text = "Once", .kind = LLMOS__TASK_KIND__TASK_GENERATE};
    r = submit_job(f, "nomodel", NULL, 0, 0, &gen, 1, false);
    assert_int_equal(r->status, LLMOS_ENOTFOUND);
    assert_non_null(strstr(r->error, "target 'model' is not served by this node (start llmosd with --model"));
    rt_msg_free(r);
    /* nothing of the refused jobs was logged */
    int code;
    Llmos__JobStatus *s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "nowhere", 1000, &code);
    assert_int_equal(code, LLMOS_ENOTFOUND);
    assert_null(s);
    /* an id, tenant or text with a NUL byte, or not UTF-8: refused, naming the field */
    const struct {
        const char *id, *tenant, *text;
        size_t idlen, tenlen, textlen;
        const char *needle;
    } bad[] = {
        {"a\0b", "", "x", 3, 0, 1, "job.id contains a NUL byte (at byte 1)"},
        {"t1", "ac\0me", "x", 2, 5, 1, "job.tenant contains a NUL byte (at byte 2)"},
        {"t2", "", "hi\0there", 2, 0, 8, "job.tasks[0].text contains a NUL byte (at byte 2)"},
        {"t3", "", "caf\xc3", 2, 0, 4, "job.tasks[0].text is not valid UTF-8 (at byte 3)"},
        {"\xff", "", "x", 1, 0, 1, "job.id is not valid UTF-8 (at byte 0)"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        /* hand-made wire bytes: protobuf-c would stop at the NUL when packing */
        uint8_t task[64], job[160], *p = task;
        *p++ = 0x10, *p++ = 1;                                   /* kind = echo */
        *p++ = 0x22, *p++ = (uint8_t)bad[k].textlen;             /* text */
        memcpy(p, bad[k].text, bad[k].textlen), p += bad[k].textlen;
        size_t tl = (size_t)(p - task);
        p = job;
        *p++ = 0x0A, *p++ = (uint8_t)bad[k].idlen;               /* id */
        memcpy(p, bad[k].id, bad[k].idlen), p += bad[k].idlen;
        if (bad[k].tenlen) {
            *p++ = 0x12, *p++ = (uint8_t)bad[k].tenlen;          /* tenant */
            memcpy(p, bad[k].tenant, bad[k].tenlen), p += bad[k].tenlen;
        }
        *p++ = 0x3A, *p++ = (uint8_t)tl;                         /* tasks */
        memcpy(p, task, tl), p += tl;
        size_t jl = (size_t)(p - job);
        buf[0] = 0x0A, buf[1] = (uint8_t)jl;                     /* SubmitRequest.job */
        memcpy(buf + 2, job, jl);
        r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, jl + 2, 2000);
        assert_int_equal(r->status, LLMOS_EINVAL);
        if (!strstr(r->error, bad[k].needle)) fail_msg("case %zu: '%s' lacks '%s'", k, r->error, bad[k].needle);
        rt_msg_free(r);
    }
    /* job "a" was never made: the NUL id did not collide with it */
    s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "a", 1000, &code);
    assert_int_equal(code, LLMOS_ENOTFOUND);
    /* non-ASCII that is valid UTF-8 is fine */
    r = submit1(f, "caf\xc3\xa9-\xe4\xbd\xa0\xe5\xa5\xbd", "t\xc3\xa9nant", 0, NULL, "\xf0\x9f\x99\x82", true);
    assert_int_equal(r->status, 0);
    s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_string_equal(s->tasks[0]->text, "\xf0\x9f\x99\x82");
    llmos__job_status__free_unpacked(s, NULL);
}

/* A task's input past task_input_max fails ETOOBIG before anything is
 * copied; the node goes on. */
static void test_input_cap(void **st) {
    fx_t *f = *st;
    f->cfg.task_input_max = 3000;
    start(f);
    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = 0;
    tspec_t ts[2] = {{.name = "a", .text = big}, {.name = "b", .text = big, .input_from = "a"}};
    rt_msg_t *r = submit_job(f, "toobig", NULL, 0, 0, ts, 2, true);
    assert_int_equal(r->status, 0);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_FAILED);
    assert_int_equal(s->tasks[1]->error_code, LLMOS_ETOOBIG);
    assert_non_null(strstr(s->tasks[1]->error, "is 4001 bytes; at most 3000 (config task_input_max)"));
    assert_int_equal(s->tasks[1]->attempts, 1); /* counted, though never sent */
    llmos__job_status__free_unpacked(s, NULL);
    ts[1].text = "small";
    r = submit_job(f, "fits", NULL, 0, 0, ts, 2, true);
    s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_int_equal(strlen(s->tasks[1]->text), 2006);
    llmos__job_status__free_unpacked(s, NULL);
}

static Llmos__JobStatus *status_part(fx_t *f, const char *id, const char *task, uint64_t offset, int *code,
                                     char *error, size_t cap) {
    Llmos__JobRef ref = LLMOS__JOB_REF__INIT;
    ref.id = (char *)id;
    ref.task = (char *)task;
    ref.offset = offset;
    uint8_t buf[256];
    size_t len = llmos__job_ref__pack(&ref, buf);
    rt_msg_t *m = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, buf, len, 2000);
    *code = m->status;
    if (error) snprintf(error, cap, "%s", m->error ? m->error : "");
    Llmos__JobStatus *s = m->len ? llmos__job_status__unpack(NULL, m->len, m->data) : NULL;
    rt_msg_free(m);
    return s;
}

/* Texts over status_max_bytes travel in parts: the status carries the first
 * bytes and the whole length, JobRef.task/offset fetch the rest. */
static void test_status_parts(void **st) {
    fx_t *f = *st;
    f->cfg.status_max_bytes = 1000;
    start(f);
    char text[2501];
    for (int i = 0; i < 2500; i++) text[i] = (char)('a' + i % 26);
    text[2500] = 0;
    tspec_t ts[2] = {{.name = "small", .text = "tiny"}, {.name = "long", .text = text}};
    rt_msg_t *r = submit_job(f, "parts", NULL, 0, 0, ts, 2, true);
    Llmos__JobStatus *s = llmos__job_status__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tasks[0]->text, "tiny");
    assert_int_equal(s->tasks[0]->text_total, 0);
    assert_int_equal(strlen(s->tasks[1]->text), 996); /* 1000 minus "tiny" */
    assert_int_equal(s->tasks[1]->text_total, 2500);
    llmos__job_status__free_unpacked(s, NULL);
    char whole[2501] = "", err[512];
    size_t have = 0;
    int code;
    while (have < 2500) {
        s = status_part(f, "parts", "long", have, &code, NULL, 0);
        assert_int_equal(code, 0);
        assert_int_equal(s->n_tasks, 1);
        assert_int_equal(s->tasks[0]->text_offset, have);
        size_t n = strlen(s->tasks[0]->text);
        assert_true(n > 0 && n <= 1000);
        memcpy(whole + have, s->tasks[0]->text, n);
        have += n;
        llmos__job_status__free_unpacked(s, NULL);
    }
    whole[have] = 0;
    assert_string_equal(whole, text);
    /* the end itself: an empty part; past it, or no such task: errors */
    s = status_part(f, "parts", "long", 2500, &code, NULL, 0);
    assert_int_equal(code, 0);
    assert_string_equal(s->tasks[0]->text, "");
    llmos__job_status__free_unpacked(s, NULL);
    s = status_part(f, "parts", "long", 2501, &code, err, sizeof err);
    assert_int_equal(code, LLMOS_EINVAL);
    assert_non_null(strstr(err, "offset 2501 is past the end"));
    s = status_part(f, "parts", "nope", 0, &code, err, sizeof err);
    assert_int_equal(code, LLMOS_ENOTFOUND);
    assert_non_null(strstr(err, "has no task 'nope'"));
}

/* More targets and tenants over time than the tables hold at once: entries
 * no unfinished job names are reused. */
static void test_tables_reuse(void **st) {
    fx_t *f = *st;
    start(f);
    llmos_error_t err;
    static const rt_actor_def_t e = {"e", NULL, echo_rx, NULL, NULL};
    char name[32], id[48];
    for (int i = 0; i < JOBS_TARGETS_MAX + 20; i++) {
        snprintf(name, sizeof name, "echo-%d", i);
        rt_spawn_opts_t o = {.name = name};
        rt_ref_t ref;
        assert_int_equal(rt_spawn(f->sys, &e, NULL, &o, &ref, &err), 0);
        snprintf(id, sizeof id, "target-%d", i);
        rt_msg_t *r = submit1(f, id, NULL, 0, name, "x", true);
        if (r->status) fail_msg("%s: %s", id, r->error);
        rt_msg_free(r);
    }
    for (int i = 0; i < 4096 + 50; i++) {
        snprintf(name, sizeof name, "tenant-%d", i);
        snprintf(id, sizeof id, "tenant-job-%d", i);
        rt_msg_t *r = submit1(f, id, name, 0, NULL, "x", true);
        if (r->status) fail_msg("%s: %s", id, r->error);
        rt_msg_free(r);
    }
}

/* Writes task 0 of job `id` back as RUNNING in the log, as a crash of the
 * node while it was in flight leaves it (a clean stop logs it READY). */
static void fake_crash(fx_t *f, const char *id) {
    joblog_t *log;
    llmos_error_t err;
    assert_int_equal(joblog_open(f->dir, &(joblog_opts_t){.nosync = true}, &log, &err), 0);
    const void *d;
    size_t dl;
    assert_int_equal(joblog_task_get(log, id, 0, &d, &dl, &err), 0);
    Llmos__TaskResult *r = llmos__task_result__unpack(NULL, dl, d);
    assert_non_null(r);
    assert_int_equal(r->state, LLMOS__TASK_STATE__TASK_READY);
    r->state = LLMOS__TASK_STATE__TASK_RUNNING;
    uint8_t buf[512];
    size_t len = llmos__task_result__pack(r, buf);
    llmos__task_result__free_unpacked(r, NULL);
    assert_int_equal(joblog_task_put(log, id, 0, buf, len, &err), 0);
    assert_int_equal(joblog_commit(log, &err), 0);
    joblog_close(&log);
}

/* A task in flight during quarantine_after consecutive crashes: the job is
 * quarantined at the next start, the others run; a clean stop does not
 * count. */
static void test_quarantine(void **st) {
    fx_t *f = *st;
    f->cfg.core.quarantine_after = 3;
    start(f);
    submit_ok(f, "poison", NULL, 0, "hole", "never answered");
    rt_msg_t *r = submit1(f, "fine", NULL, 0, NULL, "done before", true);
    rt_msg_free(r);
    usleep(50000);
    for (int crash = 1; crash <= 3; crash++) {
        stop(f); /* clean: the task is logged READY ... */
        fake_crash(f, "poison"); /* ... which a crash would have left RUNNING */
        start(f);
        int code;
        Llmos__JobStatus *s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "poison", 1000, &code);
        assert_int_equal(s->tasks[0]->crashes, crash);
        if (crash < 3) {
            assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_RUNNING);
        } else {
            assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_QUARANTINED);
            assert_int_equal(s->tasks[0]->state, LLMOS__TASK_STATE__TASK_FAILED);
            assert_non_null(strstr(s->error, "was in flight during 3 consecutive crashes of the node"));
        }
        llmos__job_status__free_unpacked(s, NULL);
        if (crash == 1) { /* a clean stop and start in between counts nothing */
            usleep(50000);
            stop(f);
            start(f);
            s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "poison", 1000, &code);
            assert_int_equal(s->tasks[0]->crashes, 1);
            llmos__job_status__free_unpacked(s, NULL);
            usleep(50000);
        } else {
            usleep(50000);
        }
    }
    /* the others are intact and the node serves */
    int code;
    Llmos__JobStatus *s = ref_call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, "fine", 1000, &code);
    assert_int_equal(s->state, LLMOS__JOB_STATE__JOB_DONE);
    assert_string_equal(s->tasks[0]->text, "done before");
    llmos__job_status__free_unpacked(s, NULL);
    r = submit1(f, "after", NULL, 0, NULL, "x", true);
    assert_int_equal(r->status, 0);
    rt_msg_free(r);
    /* listed by state, counted in stats */
    Llmos__ListRequest q = LLMOS__LIST_REQUEST__INIT;
    q.state = LLMOS__JOB_STATE__JOB_QUARANTINED;
    uint8_t buf[64];
    size_t len = llmos__list_request__pack(&q, buf);
    r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST, buf, len, 2000);
    Llmos__JobList *l = llmos__job_list__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(l->n_jobs, 1);
    assert_string_equal(l->jobs[0]->id, "poison");
    llmos__job_list__free_unpacked(l, NULL);
    r = call(f, LLMOS__JOB_MSG_TYPE__JOB_MSG_SCHED_STATS, "", 0, 2000);
    Llmos__SchedulerStats *ss = llmos__scheduler_stats__unpack(NULL, r->len, r->data);
    rt_msg_free(r);
    assert_int_equal(ss->quarantined, 1);
    llmos__scheduler_stats__free_unpacked(ss, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_idempotent_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dag_input_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gateway_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_aging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_no_mention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_refs_targets_and_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
