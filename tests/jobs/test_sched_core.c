/*
 * test_sched_core.c — the scheduling core (jobs/sched.h) alone: no actor,
 * no log, no process, no sleep.  The clock is a number the test moves, so
 * back-off, aging, deadlines and timeouts are checked to the millisecond.
 * Each test drives inputs and reads the actions the core asks for.
 */
#include "jobs/sched.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* ---- building jobs ---- */

typedef struct tdef {
    const char *name, *target, *after;
    int kind; /* 0 = echo */
} tdef_t;

/* Submits job `id` of n tasks; returns its seq (fails the test on error
 * unless want_rc says which error to expect, then returns 0). */
static uint64_t submit_rc(jobs_sched_t *s, const char *id, const char *tenant, int prio, uint64_t deadline,
                          const tdef_t *td, size_t n, uint64_t now, int want_rc, llmos_error_t *err_out) {
    Llmos__Task tasks[8], *tp[8];
    char *after[8];
    for (size_t i = 0; i < n; i++) {
        Llmos__Task t = LLMOS__TASK__INIT;
        t.name = (char *)(td[i].name ? td[i].name : "");
        t.kind = td[i].kind ? td[i].kind : LLMOS__TASK_KIND__TASK_ECHO;
        t.text = "x";
        t.target = (char *)(td[i].target ? td[i].target : "");
        if (td[i].after) {
            after[i] = (char *)td[i].after;
            t.n_after = 1;
            t.after = &after[i];
        }
        tasks[i] = t;
        tp[i] = &tasks[i];
    }
    Llmos__Job job = LLMOS__JOB__INIT;
    job.id = (char *)id;
    job.priority = prio;
    job.deadline_ms = deadline;
    job.n_tasks = n;
    job.tasks = tp;
    uint8_t buf[1024];
    size_t len = llmos__job__pack(&job, buf);
    uint64_t seq = 0;
    llmos_error_t err;
    int rc = jobs_sched_submit(s, &job, buf, len, tenant ? tenant : "default", now, NULL, NULL, &seq, &err);
    if (err_out) *err_out = err;
    if (rc != want_rc) fail_msg("submit %s: rc %d (%s), want %d", id, rc, rc ? err.msg : "", want_rc);
    if (!rc) jobs_sched_release(s, seq, now);
    return seq;
}

static uint64_t submit(jobs_sched_t *s, const char *id, const char *target, uint64_t now) {
    tdef_t t = {.target = target};
    return submit_rc(s, id, NULL, 0, 0, &t, 1, now, 0, NULL);
}

/* ---- reading actions ---- */

typedef struct acts {
    jobs_action_t v[256];
    size_t n;
} acts_t;

static void drain(jobs_sched_t *s, acts_t *a) {
    a->n = 0;
    const jobs_action_t *x;
    while ((x = jobs_sched_next_action(s))) {
        assert_true(a->n < 256);
        a->v[a->n++] = *x;
    }
}

/* tick, then the actions */
static void tick(jobs_sched_t *s, uint64_t now, acts_t *a) {
    jobs_sched_tick(s, now);
    drain(s, a);
}

static size_t count(const acts_t *a, jobs_action_kind_t k) {
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++) n += a->v[i].kind == k;
    return n;
}

static const jobs_action_t *find(const acts_t *a, jobs_action_kind_t k, size_t nth) {
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].kind == k && nth-- == 0) return &a->v[i];
    return NULL;
}

static const char *job_id(jobs_sched_t *s, uint64_t seq) {
    static char id[64];
    jobs_job_view_t v;
    if (jobs_sched_job(s, seq, &v) != 0) return "?";
    snprintf(id, sizeof id, "%s", v.id);
    return id;
}

static jobs_sched_t *mk(jobs_policy_t policy, const char *limits) {
    jobs_sched_config_t cfg;
    jobs_sched_config_init(&cfg);
    cfg.policy = policy;
    llmos_error_t err;
    if (limits) assert_int_equal(jobs_limits_parse(&cfg, limits, &err), 0);
    jobs_sched_t *s;
    assert_int_equal(jobs_sched_new(&cfg, &s, &err), 0);
    return s;
}

/* Answers every dispatched task of the list as done, in order, collecting
 * the ids; returns how many. */
static size_t complete_all(jobs_sched_t *s, acts_t *a, uint64_t now, char order[][16], size_t *norder) {
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].kind != JOBS_ACT_DISPATCH) continue;
        if (order) snprintf(order[(*norder)++], 16, "%.15s", job_id(s, a->v[i].seq));
        assert_int_equal(jobs_sched_task_done(s, a->v[i].seq, a->v[i].task, a->v[i].attempt, now), 0);
        n++;
    }
    return n;
}

/* Runs everything to the end on a target of limit 1, returning the order. */
static size_t run_order(jobs_sched_t *s, uint64_t now, char order[][16]) {
    size_t n = 0;
    acts_t a;
    for (int guard = 0; guard < 100; guard++) {
        tick(s, now, &a);
        if (!complete_all(s, &a, now, order, &n)) break;
    }
    return n;
}

/* ---- tests ---- */

static void test_fifo(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, "one=1");
    submit(s, "a", "one", 0);
    submit(s, "b", "one", 1);
    submit(s, "c", "one", 2);
    char order[8][16];
    assert_int_equal(run_order(s, 10, order), 3);
    assert_string_equal(order[0], "a");
    assert_string_equal(order[1], "b");
    assert_string_equal(order[2], "c");
    jobs_sched_stats_t stats;
    jobs_sched_get_stats(s, &stats);
    assert_int_equal(stats.done, 3);
    assert_int_equal(stats.jobs, 0);
    jobs_sched_destroy(&s);
    assert_null(s);
}

/* key = submitted - priority * aging (1000 ms): waiting ages a job up. */
static void test_priority_aging(void **st) {
    jobs_sched_t *s = mk(JOBS_PRIORITY, "one=1");
    tdef_t t = {.target = "one"};
    acts_t a;
    submit_rc(s, "blocker", NULL, 0, 0, &t, 1, 0, 0, NULL);
    tick(s, 0, &a); /* blocker runs; the rest queue behind it */
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 1);
    submit_rc(s, "low-early", NULL, 0, 0, &t, 1, 0, 0, NULL);      /* key 0 */
    submit_rc(s, "high-late", NULL, 5, 0, &t, 1, 4500, 0, NULL);   /* key -500 */
    submit_rc(s, "mid-later", NULL, 1, 0, &t, 1, 2000, 0, NULL);   /* key 1000 */
    submit_rc(s, "high-too-late", NULL, 5, 0, &t, 1, 6000, 0, NULL); /* key 1000, later seq */
    char order[8][16];
    size_t n = 0;
    complete_all(s, &a, 6000, NULL, NULL);
    for (int g = 0; g < 10; g++) {
        tick(s, 6000, &a);
        if (!complete_all(s, &a, 6000, order, &n)) break;
    }
    assert_int_equal(n, 4);
    assert_string_equal(order[0], "high-late");
    assert_string_equal(order[1], "low-early");
    assert_string_equal(order[2], "mid-later");
    assert_string_equal(order[3], "high-too-late");
    jobs_sched_destroy(&s);
}

static void test_round_robin(void **st) {
    jobs_sched_t *s = mk(JOBS_ROUND_ROBIN, "one=1");
    tdef_t t = {.target = "one"};
    submit_rc(s, "x1", "x", 0, 0, &t, 1, 0, 0, NULL);
    submit_rc(s, "x2", "x", 0, 0, &t, 1, 0, 0, NULL);
    submit_rc(s, "x3", "x", 0, 0, &t, 1, 0, 0, NULL);
    submit_rc(s, "y1", "y", 0, 0, &t, 1, 1, 0, NULL);
    submit_rc(s, "z1", "z", 0, 0, &t, 1, 2, 0, NULL);
    char order[8][16];
    assert_int_equal(run_order(s, 10, order), 5);
    const char *want[] = {"x1", "y1", "z1", "x2", "x3"};
    for (int i = 0; i < 5; i++) assert_string_equal(order[i], want[i]);
    jobs_sched_destroy(&s);
}

/* Retryable failures wait 100, then 200 ms (retry_base_ms doubling); past
 * max_retries the job fails with the reason. */
static void test_retry_backoff(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    uint64_t seq = submit(s, "r", "flaky", 1000);
    acts_t a;
    tick(s, 1000, &a);
    const jobs_action_t *d = find(&a, JOBS_ACT_DISPATCH, 0);
    assert_non_null(d);
    assert_int_equal(d->attempt, 1);
    assert_int_equal(d->deadline_ms, 1000 + 600000);
    assert_int_equal(jobs_sched_task_failed(s, seq, 0, 1, LLMOS_EUNAVAILABLE, "down", 1010), 0);
    jobs_task_view_t tv;
    assert_int_equal(jobs_sched_task(s, seq, 0, &tv), 0);
    assert_int_equal(tv.state, LLMOS__TASK_STATE__TASK_RETRY_WAIT);
    tick(s, 1109, &a);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 0);
    tick(s, 1110, &a);
    d = find(&a, JOBS_ACT_DISPATCH, 0);
    assert_non_null(d);
    assert_int_equal(d->attempt, 2);
    /* a late answer to attempt 1 is stale */
    assert_int_equal(jobs_sched_task_done(s, seq, 0, 1, 1111), LLMOS_ESTATE);
    assert_int_equal(jobs_sched_task_failed(s, seq, 0, 2, LLMOS_ETIMEDOUT, "slow", 1120), 0);
    tick(s, 1319, &a);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 0);
    tick(s, 1320, &a);
    d = find(&a, JOBS_ACT_DISPATCH, 0);
    assert_int_equal(d->attempt, 3);
    assert_int_equal(jobs_sched_task_failed(s, seq, 0, 3, LLMOS_EUNAVAILABLE, "still down", 1330), 0);
    drain(s, &a);
    const jobs_action_t *e = find(&a, JOBS_ACT_JOB_END, 0);
    assert_non_null(e);
    assert_int_equal(e->state, LLMOS__JOB_STATE__JOB_FAILED);
    assert_string_equal(e->why, "task 't0' failed after 3 attempts: EUNAVAILABLE: still down");
    jobs_sched_stats_t stats;
    jobs_sched_get_stats(s, &stats);
    assert_int_equal(stats.retried, 2);
    assert_int_equal(stats.failed, 1);
    /* the retry cap: 2^20 * base would be hours; it is 30 s */
    jobs_sched_destroy(&s);
}

/* A non-retryable error fails at once; the job ends FAILED and its waiter
 * is answered. */
static void test_fail_fast_and_waiters(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    uint64_t seq = submit(s, "bad", "t", 0);
    jobs_waiter_t w = {.node = 1, .actor = 2, .corr = 3};
    assert_int_equal(jobs_sched_wait(s, seq, &w, 0, 0, 0), 0);
    acts_t a;
    tick(s, 0, &a);
    assert_int_equal(jobs_sched_task_failed(s, seq, 0, 1, LLMOS_EINVAL, "not acceptable", 5), 0);
    drain(s, &a);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.v[0].kind, JOBS_ACT_JOB_END);
    assert_string_equal(a.v[0].why, "task 't0' failed after 1 attempt: EINVAL: not acceptable");
    assert_int_equal(a.v[1].kind, JOBS_ACT_ANSWER);
    assert_int_equal(a.v[1].code, 0);
    assert_int_equal(a.v[1].waiter.corr, 3);
    /* freed once the actions were taken */
    jobs_job_view_t v;
    assert_int_equal(jobs_sched_job(s, seq, &v), LLMOS_ENOTFOUND);
    assert_int_equal(jobs_sched_wait(s, seq, &w, 0, 0, 10), LLMOS_ENOTFOUND);
    jobs_sched_destroy(&s);
}

/* Deadlines: a job whose deadline passes ends EXPIRED to the millisecond,
 * its running generation is cancelled and logged; a wait times out on its
 * own; a running task whose target never answers fails ETIMEDOUT after its
 * timeout plus the grace. */
static void test_deadlines_and_timeouts(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    tdef_t g = {.target = "hole", .kind = LLMOS__TASK_KIND__TASK_GENERATE};
    uint64_t seq = submit_rc(s, "dl", NULL, 0, 200, &g, 1, 0, 0, NULL);
    jobs_waiter_t w = {.corr = 9};
    assert_int_equal(jobs_sched_wait(s, seq, &w, 50, 0, 0), 0);
    acts_t a;
    tick(s, 0, &a);
    const jobs_action_t *d = find(&a, JOBS_ACT_DISPATCH, 0);
    assert_int_equal(d->deadline_ms, 200); /* the job's deadline bounds the ask */
    tick(s, 49, &a);
    assert_int_equal(count(&a, JOBS_ACT_ANSWER), 0);
    tick(s, 100, &a); /* the wait's own timeout (sweeps run every 50 ms) */
    assert_int_equal(count(&a, JOBS_ACT_ANSWER), 1);
    assert_int_equal(find(&a, JOBS_ACT_ANSWER, 0)->code, LLMOS_ETIMEDOUT);
    tick(s, 199, &a);
    assert_int_equal(count(&a, JOBS_ACT_JOB_END), 0);
    tick(s, 200, &a);
    assert_int_equal(count(&a, JOBS_ACT_CANCEL_TASK), 1);
    assert_int_equal(count(&a, JOBS_ACT_LOG_TASK), 1);
    const jobs_action_t *e = find(&a, JOBS_ACT_JOB_END, 0);
    assert_int_equal(e->state, LLMOS__JOB_STATE__JOB_EXPIRED);
    assert_string_equal(e->why, "deadline passed");
    /* no deadline: task_timeout_ms + 1 s grace, then ETIMEDOUT (retried) */
    jobs_sched_destroy(&s);
    jobs_sched_config_t cfg;
    jobs_sched_config_init(&cfg);
    cfg.task_timeout_ms = 100;
    llmos_error_t err;
    assert_int_equal(jobs_sched_new(&cfg, &s, &err), 0);
    seq = submit(s, "to", "hole", 0);
    tick(s, 0, &a);
    tick(s, 1100, &a);
    assert_int_equal(count(&a, JOBS_ACT_LOG_TASK), 0);
    tick(s, 1150, &a);
    const jobs_action_t *l = find(&a, JOBS_ACT_LOG_TASK, 0);
    assert_non_null(l);
    assert_int_equal(l->code, LLMOS_ETIMEDOUT);
    jobs_task_view_t tv;
    jobs_sched_task(s, seq, 0, &tv);
    assert_int_equal(tv.state, LLMOS__TASK_STATE__TASK_RETRY_WAIT);
    jobs_sched_destroy(&s);
}

/* A deadline that passed while the task queued (or the node was down)
 * ends the job when its turn comes, without dispatching it. */
static void test_deadline_in_queue(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, "one=0");
    tdef_t t = {.target = "one"};
    submit_rc(s, "late", NULL, 0, 100, &t, 1, 0, 0, NULL);
    acts_t a;
    tick(s, 50, &a);
    assert_int_equal(a.n, 0);
    tick(s, 100, &a);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 0);
    assert_int_equal(find(&a, JOBS_ACT_JOB_END, 0)->state, LLMOS__JOB_STATE__JOB_EXPIRED);
    jobs_sched_destroy(&s);
}

static void test_cancel(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    tdef_t g = {.target = "m", .kind = LLMOS__TASK_KIND__TASK_GENERATE};
    uint64_t seq = submit_rc(s, "c", NULL, 0, 0, &g, 1, 0, 0, NULL);
    acts_t a;
    tick(s, 0, &a);
    assert_int_equal(jobs_sched_cancel(s, seq, 10), 0);
    drain(s, &a);
    assert_int_equal(a.v[0].kind, JOBS_ACT_CANCEL_TASK);
    assert_int_equal(a.v[0].attempt, 1);
    const jobs_action_t *e = find(&a, JOBS_ACT_JOB_END, 0);
    assert_int_equal(e->state, LLMOS__JOB_STATE__JOB_CANCELLED);
    assert_string_equal(e->why, "cancelled on request");
    assert_int_equal(jobs_sched_cancel(s, seq, 20), LLMOS_ENOTFOUND);
    /* the late answer of the cancelled task changes nothing */
    assert_int_equal(jobs_sched_task_done(s, seq, 0, 1, 30), LLMOS_ESTATE);
    jobs_sched_destroy(&s);
}

static void test_admission_and_dag(void **st) {
    jobs_sched_config_t cfg;
    jobs_sched_config_init(&cfg);
    cfg.queue_limit = 2;
    jobs_sched_t *s;
    llmos_error_t err;
    assert_int_equal(jobs_sched_new(&cfg, &s, &err), 0);
    tdef_t dag[3] = {{.name = "a"}, {.name = "b", .after = "a"}, {.name = "c", .after = "b"}};
    uint64_t seq = submit_rc(s, "dag", NULL, 0, 0, dag, 3, 0, 0, NULL);
    submit(s, "second", NULL, 0);
    submit_rc(s, "third", NULL, 0, 0, dag, 1, 0, LLMOS_EOVERLOADED, &err);
    assert_non_null(strstr(err.msg, "overloaded: 2 jobs queued, retry after"));
    acts_t a;
    tick(s, 0, &a);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 2); /* dag/a and second */
    complete_all(s, &a, 1, NULL, NULL);
    tick(s, 1, &a);
    const jobs_action_t *d = find(&a, JOBS_ACT_DISPATCH, 0);
    assert_int_equal(d->seq, seq);
    assert_int_equal(d->task, 1);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 1);
    complete_all(s, &a, 2, NULL, NULL);
    tick(s, 2, &a);
    assert_int_equal(find(&a, JOBS_ACT_DISPATCH, 0)->task, 2);
    complete_all(s, &a, 3, NULL, NULL);
    drain(s, &a);
    assert_int_equal(find(&a, JOBS_ACT_JOB_END, 0)->state, LLMOS__JOB_STATE__JOB_DONE);
    submit(s, "room-again", NULL, 4);
    jobs_sched_stats_t stats;
    jobs_sched_get_stats(s, &stats);
    assert_int_equal(stats.rejected, 1);
    jobs_sched_destroy(&s);
}

static bool served_only_echo(void *user, const char *target) { return strcmp(target, "echo") == 0; }

static void test_served_targets(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    Llmos__Task t = LLMOS__TASK__INIT, *tp = &t;
    t.kind = LLMOS__TASK_KIND__TASK_LINK;
    t.text = "x";
    Llmos__Job job = LLMOS__JOB__INIT;
    job.id = "j";
    job.n_tasks = 1;
    job.tasks = &tp;
    uint8_t buf[256];
    size_t len = llmos__job__pack(&job, buf);
    uint64_t seq;
    llmos_error_t err;
    assert_int_equal(jobs_sched_submit(s, &job, buf, len, "default", 0, served_only_echo, NULL, &seq, &err),
                     LLMOS_ENOTFOUND);
    assert_string_equal(err.msg, "job.tasks[0] 't0': target 'graph' is not served by this node "
                                 "(start llmosd with --graph DIR)");
    t.kind = LLMOS__TASK_KIND__TASK_ECHO;
    len = llmos__job__pack(&job, buf);
    assert_int_equal(jobs_sched_submit(s, &job, buf, len, "default", 0, served_only_echo, NULL, &seq, &err), 0);
    jobs_sched_destroy(&s);
}

/* More targets and tenants over time than the tables hold at once. */
static void test_tables_reuse(void **st) {
    jobs_sched_t *s = mk(JOBS_ROUND_ROBIN, NULL);
    char name[32], id[32];
    acts_t a;
    for (int i = 0; i < JOBS_TARGETS_MAX + 10; i++) {
        snprintf(name, sizeof name, "target-%d", i);
        snprintf(id, sizeof id, "t%d", i);
        submit(s, id, name, (uint64_t)i);
        tick(s, (uint64_t)i, &a);
        assert_int_equal(complete_all(s, &a, (uint64_t)i, NULL, NULL), 1);
        drain(s, &a);
    }
    /* while all JOBS_TARGETS_MAX entries have unfinished tasks: refused, retryable */
    for (int i = 0; i < JOBS_TARGETS_MAX; i++) {
        snprintf(name, sizeof name, "busy-%d", i);
        snprintf(id, sizeof id, "b%d", i);
        tdef_t t = {.target = name};
        submit_rc(s, id, NULL, 0, 0, &t, 1, 100, 0, NULL);
    }
    llmos_error_t err;
    tdef_t t = {.target = "one-too-many"};
    submit_rc(s, "x", NULL, 0, 0, &t, 1, 100, LLMOS_EOVERLOADED, &err);
    assert_non_null(strstr(err.msg, "other targets have unfinished tasks; retry later"));
    tick(s, 100, &a);
    complete_all(s, &a, 100, NULL, NULL);
    drain(s, &a);
    submit_rc(s, "x", NULL, 0, 0, &t, 1, 101, 0, NULL);
    for (int i = 0; i < JOBS_TENANTS_MAX + 10; i++) {
        snprintf(name, sizeof name, "tenant-%d", i);
        snprintf(id, sizeof id, "n%d", i);
        tdef_t e = {0};
        submit_rc(s, id, name, 0, 0, &e, 1, 200, 0, NULL);
        tick(s, 200, &a);
        complete_all(s, &a, 200, NULL, NULL);
        drain(s, &a);
    }
    jobs_sched_destroy(&s);
}

/* Start-up: done tasks stay done, a task found running counts a crash
 * (logged before anything runs), and at quarantine_after the job is
 * quarantined instead of dispatched. */
static void test_restore_and_quarantine(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    Llmos__Task t1 = LLMOS__TASK__INIT, t2 = LLMOS__TASK__INIT, *tp[2] = {&t1, &t2};
    t1.name = "first";
    t2.name = "second";
    t1.kind = t2.kind = LLMOS__TASK_KIND__TASK_ECHO;
    t1.text = t2.text = "x";
    Llmos__Job job = LLMOS__JOB__INIT;
    job.id = "again";
    job.n_tasks = 2;
    job.tasks = tp;
    uint8_t buf[256];
    size_t len = llmos__job__pack(&job, buf);
    llmos_error_t err;
    jobs_task_log_t tl[2] = {{.present = true, .state = LLMOS__TASK_STATE__TASK_DONE, .attempts = 1},
                             {.present = true, .state = LLMOS__TASK_STATE__TASK_RUNNING, .attempts = 1, .crashes = 1}};
    assert_int_equal(jobs_sched_restore(s, &job, buf, len, "default", 7, 0, 5, LLMOS__JOB_STATE__JOB_RUNNING, tl, 100,
                                        &err),
                     0);
    acts_t a;
    tick(s, 100, &a);
    assert_int_equal(a.v[0].kind, JOBS_ACT_LOG_TASK); /* the count, before the dispatch */
    assert_int_equal(a.v[0].task, 1);
    const jobs_action_t *d = find(&a, JOBS_ACT_DISPATCH, 0);
    assert_non_null(d);
    assert_int_equal(d->task, 1);
    assert_int_equal(d->attempt, 2);
    jobs_task_view_t tv;
    jobs_sched_task(s, 7, 1, &tv);
    assert_int_equal(tv.crashes, 2);
    jobs_sched_destroy(&s);
    /* at the third crash: quarantined */
    s = mk(JOBS_FIFO, NULL);
    job.id = "poison";
    len = llmos__job__pack(&job, buf);
    tl[1].crashes = 2;
    assert_int_equal(jobs_sched_restore(s, &job, buf, len, "default", 8, 0, 5, LLMOS__JOB_STATE__JOB_RUNNING, tl, 100,
                                        &err),
                     0);
    drain(s, &a);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 0);
    const jobs_action_t *e = find(&a, JOBS_ACT_JOB_END, 0);
    assert_int_equal(e->state, LLMOS__JOB_STATE__JOB_QUARANTINED);
    assert_string_equal(e->why, "quarantined: task 'second' was in flight during 3 consecutive crashes of the node; "
                                "it is not run again");
    const jobs_action_t *l = find(&a, JOBS_ACT_LOG_TASK, 1);
    assert_int_equal(l->code, LLMOS_EINTERNAL);
    jobs_sched_stats_t stats;
    jobs_sched_get_stats(s, &stats);
    assert_int_equal(stats.quarantined, 1);
    assert_int_equal(stats.recovered, 1);
    /* every task done but the end never logged: ended DONE at once */
    job.id = "all-done";
    len = llmos__job__pack(&job, buf);
    tl[1] = tl[0];
    assert_int_equal(jobs_sched_restore(s, &job, buf, len, "default", 9, 0, 5, LLMOS__JOB_STATE__JOB_RUNNING, tl, 100,
                                        &err),
                     0);
    drain(s, &a);
    assert_int_equal(find(&a, JOBS_ACT_JOB_END, 0)->state, LLMOS__JOB_STATE__JOB_DONE);
    /* the next seq continues after the log's */
    uint64_t seq = submit(s, "new", NULL, 200);
    assert_int_equal(seq, 10);
    /* quarantine_after 0: never quarantined */
    jobs_sched_destroy(&s);
    jobs_sched_config_t cfg;
    jobs_sched_config_init(&cfg);
    cfg.quarantine_after = 0;
    assert_int_equal(jobs_sched_new(&cfg, &s, &err), 0);
    tl[1] = (jobs_task_log_t){.present = true, .state = LLMOS__TASK_STATE__TASK_RUNNING, .attempts = 9, .crashes = 200};
    assert_int_equal(jobs_sched_restore(s, &job, buf, len, "default", 9, 0, 5, LLMOS__JOB_STATE__JOB_RUNNING, tl, 100,
                                        &err),
                     0);
    tick(s, 100, &a);
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 1);
    jobs_sched_destroy(&s);
}

/* A clean stop logs running tasks READY; a model target is asked its
 * capacity, which then bounds it. */
static void test_stopping_and_limits(void **st) {
    jobs_sched_t *s = mk(JOBS_FIFO, NULL);
    tdef_t g = {.kind = LLMOS__TASK_KIND__TASK_GENERATE}; /* target "model" */
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "g%d", i);
        submit_rc(s, id, NULL, 0, 0, &g, 1, 0, 0, NULL);
    }
    acts_t a;
    jobs_sched_set_limit(s, 0, 2);
    tick(s, 0, &a);
    const jobs_action_t *q = find(&a, JOBS_ACT_ASK_LIMIT, 0);
    assert_non_null(q);
    assert_string_equal(jobs_sched_target_name(s, q->target), "model");
    assert_int_equal(count(&a, JOBS_ACT_DISPATCH), 2);
    jobs_sched_stopping(s);
    drain(s, &a);
    assert_int_equal(count(&a, JOBS_ACT_LOG_TASK), 2);
    jobs_task_view_t tv;
    jobs_sched_task(s, 1, 0, &tv);
    assert_int_equal(tv.state, LLMOS__TASK_STATE__TASK_READY);
    jobs_sched_destroy(&s);
}

static void test_config_parsing(void **st) {
    jobs_sched_config_t cfg;
    jobs_sched_config_init(&cfg);
    llmos_error_t err;
    assert_int_equal(jobs_limits_parse(&cfg, "echo=0, model=8", &err), 0);
    assert_int_equal(cfg.nlimits, 2);
    assert_int_equal(cfg.limits[1].inflight, 8);
    const char *bad[] = {"echo", "=3", "echo=", "echo=-1", "echo=x", "echo=1000001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(jobs_limits_parse(&cfg, bad[i], &err), LLMOS_EINVAL);
    jobs_policy_t p;
    assert_int_equal(jobs_policy_parse("round_robin", &p, &err), 0);
    assert_int_equal(p, JOBS_ROUND_ROBIN);
    assert_int_equal(jobs_policy_parse("lifo", &p, &err), LLMOS_EINVAL);
    assert_int_equal(jobs_corr_seq(jobs_corr(123456, 7, 1023)), 123456);
    assert_int_equal(jobs_corr_attempt(jobs_corr(123456, 7, 1023)), 7);
    assert_int_equal(jobs_corr_task(jobs_corr(123456, 7, 1023)), 1023);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_priority_aging),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_fail_fast_and_waiters),
        cmocka_unit_test(test_deadlines_and_timeouts),
        cmocka_unit_test(test_deadline_in_queue),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_admission_and_dag),
        cmocka_unit_test(test_served_targets),
        cmocka_unit_test(test_tables_reuse),
        cmocka_unit_test(test_restore_and_quarantine),
        cmocka_unit_test(test_stopping_and_limits),
        cmocka_unit_test(test_config_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
