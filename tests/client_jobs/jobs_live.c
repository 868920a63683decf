/*
 * jobs_live.c — the job calls of libllmos-client against a real llmosd
 * (started by test_jobs_live.sh with a fresh --data-dir, a config with a
 * small queue_limit, and echo / sink targets): submit (idempotent by id),
 * submit-and-wait, wait, status, stream, cancel (queued and running), list
 * with filters and pages, admission control (EOVERLOADED with the node's
 * "retry after"), gateway validation and undecodable payloads.
 *
 *   jobs_live ENDPOINT [MODEL]    MODEL=1: the node serves a model too
 *                                 (streamed generation, mid-stream disconnect)
 */
#include "jobs_internal.h" /* white-box: the wire form of a submission */
#include "llmos/model.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *endpoint;
static int have_model;
static char run[32]; /* makes ids unique per run of this program */

static llmos_client_t *connect_as(const char *tenant) {
    llmos_client_t *c;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = 10000, .tenant = tenant};
    if (llmos_client_connect(endpoint, &o, &c, &err) != 0) fail_msg("connect: %s", err.msg);
    return c;
}

static llmos_job_t *job_json(const char *fmt, ...) {
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    llmos_job_t *j;
    llmos_client_error_t err;
    if (llmos_job_from_json(text, strlen(text), NULL, &j, &err) != 0) fail_msg("%s: %s", text, err.msg);
    return j;
}

static void test_submit_wait_status(void **state) {
    (void)state;
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_job_t *j = job_json("{\"id\":\"%s-e1\",\"kind\":\"echo\",\"text\":\"hello jobs\"}", run);
    llmos_submit_result_t r1, r2;
    assert_int_equal(llmos_client_submit(c, j, 0, &r1, &err), 0);
    assert_string_equal(r1.id, llmos_job_id(j));
    assert_false(r1.existing);
    llmos_job_status_t *st;
    int rc = llmos_client_wait(c, r1.id, 10000, &st, &err);
    if (rc) fail_msg("wait: %s", err.msg);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    assert_int_equal(st->n_tasks, 1);
    assert_string_equal(llmos_job_status_text(st), "hello jobs");
    assert_int_equal(st->tasks[0].attempts, 1);
    assert_true(st->finished_ms >= st->submitted_ms && st->submitted_ms > 0);
    llmos_job_status_free(&st);
    /* the same id again: the first job, nothing new runs */
    assert_int_equal(llmos_client_submit(c, j, 0, &r2, &err), 0);
    assert_true(r2.existing);
    assert_int_equal(r2.state, LLMOS_JOB_DONE);
    llmos_job_destroy(&j);
    /* same id, different content: still the first job */
    j = job_json("{\"id\":\"%s-e1\",\"kind\":\"echo\",\"text\":\"other text\"}", run);
    assert_int_equal(llmos_client_submit_wait(c, j, 5000, &st, &err), 0);
    assert_string_equal(llmos_job_status_text(st), "hello jobs");
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);
    assert_int_equal(llmos_client_job_status(c, r1.id, 0, &st, &err), 0);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    llmos_job_status_free(&st);
    /* unknown job */
    rc = llmos_client_job_status(c, "no-such-job-anywhere", 0, &st, &err);
    assert_int_equal(rc, LLMOS_CLIENT_ENOTFOUND);
    assert_null(st);
    llmos_client_destroy(&c);
}

/* A DAG: b comes after a and takes a's output in front of its text. */
static void test_dag_submit_wait(void **state) {
    (void)state;
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_job_t *j = job_json("{\"id\":\"%s-dag\",\"labels\":{\"k\":\"v\"},\"tasks\":["
                              "{\"name\":\"a\",\"kind\":\"echo\",\"text\":\"first\"},"
                              "{\"name\":\"b\",\"kind\":\"echo\",\"text\":\"second\",\"input_from\":[\"a\"]}]}",
                              run);
    llmos_job_status_t *st;
    int rc = llmos_client_submit_wait(c, j, 10000, &st, &err);
    if (rc) fail_msg("submit_wait: %s", err.msg);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    assert_int_equal(st->n_tasks, 2);
    assert_string_equal(llmos_job_status_task(st, "a")->text, "first");
    assert_string_equal(llmos_job_status_task(st, "b")->text, "first\nsecond");
    assert_true(st->tasks[1].started_ms >= st->tasks[0].finished_ms);
    assert_int_equal(st->n_labels, 1);
    char *json;
    assert_int_equal(llmos_job_status_to_json(st, &json, &err), 0);
    assert_non_null(strstr(json, "\"labels\":{\"k\":\"v\"}"));
    free(json);
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

typedef struct seen {
    const char *task; /* chunks of this task only (NULL: all) */
    int results, chunks;
    char text[4096];
    int stop_after_chunks; /* >0: abandon the stream after that many chunks */
} seen_t;

static int on_event(const llmos_job_event_t *ev, void *user) {
    seen_t *s = user;
    if (ev->chunk && (!s->task || strcmp(ev->task, s->task) == 0)) {
        s->chunks++;
        strncat(s->text, ev->chunk, sizeof s->text - strlen(s->text) - 1);
        if (s->stop_after_chunks && s->chunks >= s->stop_after_chunks) return 1;
    }
    if (ev->result) s->results++;
    return 0;
}

static void test_stream_echo(void **state) {
    (void)state;
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_job_t *j = job_json("{\"id\":\"%s-st\",\"tasks\":[{\"name\":\"a\",\"kind\":\"echo\",\"text\":\"x\"},"
                              "{\"name\":\"b\",\"kind\":\"echo\",\"text\":\"y\",\"after\":[\"a\"]}]}",
                              run);
    llmos_submit_result_t r;
    assert_int_equal(llmos_client_submit(c, j, 0, &r, &err), 0);
    seen_t s = {0};
    llmos_job_status_t *st;
    int rc = llmos_client_stream(c, r.id, 10000, on_event, &s, &st, &err);
    if (rc) fail_msg("stream: %s", err.msg);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    /* a running job replays the results of tasks already done, so each comes
     * once; a job finished before the stream began answers at once with its
     * status (no events) */
    assert_true(s.results == 2 || s.results == 0);
    assert_string_equal(llmos_job_status_task(st, "b")->text, "y");
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

/* Tasks sent to `sink` never answer (it only counts): a job stays running
 * (or queued when sink's in-flight cap is full) until cancelled. */
static void test_cancel(void **state) {
    (void)state;
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_job_t *j = job_json("{\"id\":\"%s-c1\",\"kind\":\"echo\",\"text\":\"never\",\"target\":\"sink\"}", run);
    llmos_submit_result_t r;
    assert_int_equal(llmos_client_submit(c, j, 0, &r, &err), 0);
    llmos_job_status_t *st;
    assert_int_equal(llmos_client_wait(c, r.id, 300, &st, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_non_null(st); /* the node's timeout carries the status */
    assert_false(llmos_job_state_final(st->state));
    llmos_job_status_free(&st);
    int rc = llmos_client_cancel(c, r.id, 0, &st, &err);
    if (rc) fail_msg("cancel: %s", err.msg);
    llmos_job_status_free(&st);
    assert_int_equal(llmos_client_wait(c, r.id, 5000, &st, &err), 0);
    assert_int_equal(st->state, LLMOS_JOB_CANCELLED);
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);
    assert_int_equal(llmos_client_cancel(c, "no-such-job-anywhere", 0, NULL, &err), LLMOS_CLIENT_ENOTFOUND);
    llmos_client_destroy(&c);
}

static void test_list(void **state) {
    (void)state;
    llmos_client_t *a = connect_as("tenant-a"), *b = connect_as("tenant-b");
    llmos_client_error_t err;
    for (int i = 0; i < 5; i++) {
        llmos_client_t *c = i < 3 ? a : b;
        llmos_job_t *j = job_json("{\"id\":\"%s-l%d\",\"kind\":\"echo\",\"text\":\"%d\"}", run, i, i);
        llmos_job_status_t *st;
        assert_int_equal(llmos_client_submit_wait(c, j, 5000, &st, &err), 0);
        assert_string_equal(st->tenant, i < 3 ? "tenant-a" : "tenant-b");
        llmos_job_status_free(&st);
        llmos_job_destroy(&j);
    }
    llmos_job_list_t *l;
    llmos_job_list_opts_t o = {.tenant = "tenant-a", .state = LLMOS_JOB_DONE};
    int rc = llmos_client_list(a, &o, 0, &l, &err);
    if (rc) fail_msg("list: %s", err.msg);
    assert_int_equal(l->n_jobs, 3);
    for (size_t i = 0; i < l->n_jobs; i++) assert_string_equal(l->jobs[i]->tenant, "tenant-a");
    llmos_job_list_free(&l);
    /* pages of 2 over tenant-a's 3 */
    o.limit = 2;
    assert_int_equal(llmos_client_list(a, &o, 0, &l, &err), 0);
    assert_int_equal(l->n_jobs, 2);
    assert_true(l->next[0] != 0);
    char next[LLMOS_JOB_ID_MAX + 1];
    snprintf(next, sizeof next, "%s", l->next);
    llmos_job_list_free(&l);
    o.after = next;
    assert_int_equal(llmos_client_list(a, &o, 0, &l, &err), 0);
    assert_int_equal(l->n_jobs, 1);
    llmos_job_list_free(&l);
    llmos_client_destroy(&a);
    llmos_client_destroy(&b);
}

/* The gateway refuses what the library would not send, naming the field;
 * an undecodable payload is an error reply; the node keeps serving. */
static void test_gateway_checks(void **state) {
    (void)state;
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, "gateway", 768, "\xff\xff\xff garbage", 12, 0, &r, &err);
    assert_true(rc == LLMOS_CLIENT_EINVAL || rc == LLMOS_CLIENT_EFORMAT);
    llmos_client_reply_free(&r);
    /* a SubmitRequest whose task names a dependency that does not exist */
    llmos_job_t *j = job_json("{\"id\":\"%s-bad\",\"kind\":\"echo\",\"text\":\"x\"}", run);
    uint8_t *buf;
    size_t len;
    assert_int_equal(jobs_pack_submit(j, 0, 0, 0, &buf, &len, &err), 0);
    llmos_job_destroy(&j);
    uint8_t *bad = malloc(len + 16);
    memcpy(bad, buf, len);
    free(buf);
    rc = llmos_client_call(c, "gateway", 768, bad, len - 1, 0, &r, &err); /* truncated */
    assert_true(rc == LLMOS_CLIENT_EINVAL || rc == LLMOS_CLIENT_EFORMAT);
    llmos_client_reply_free(&r);
    free(bad);
    uint64_t rtt;
    assert_int_equal(llmos_client_ping(c, 2000, &rtt, &err), 0);
    llmos_client_destroy(&c);
}

/* Past queue_limit unfinished jobs, submissions are refused with the
 * node's "retry after"; cancelling makes room again. */
static void test_overload(void **state) {
    (void)state;
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    int n = 0, rc = 0;
    char ids[200][64];
    for (; n < 200; n++) {
        snprintf(ids[n], sizeof ids[n], "%s-o%d", run, n);
        llmos_job_t *j = job_json("{\"id\":\"%s\",\"kind\":\"echo\",\"text\":\"x\",\"target\":\"sink\"}", ids[n]);
        rc = llmos_client_submit(c, j, 0, NULL, &err);
        llmos_job_destroy(&j);
        if (rc) break;
    }
    assert_int_equal(rc, LLMOS_CLIENT_EOVERLOADED);
    assert_non_null(strstr(err.msg, "retry after"));
    assert_true(n > 0 && n < 200);
    for (int i = 0; i < n; i++) assert_int_equal(llmos_client_cancel(c, ids[i], 0, NULL, &err), 0);
    /* room again */
    llmos_job_t *j = job_json("{\"id\":\"%s-o-after\",\"kind\":\"echo\",\"text\":\"x\"}", run);
    llmos_job_status_t *st;
    rc = llmos_client_submit_wait(c, j, 5000, &st, &err);
    if (rc) fail_msg("after cancelling: %s", err.msg);
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

/* ---- with a model ---- */

/* Task "two" starts after "one" (400 tokens), so a stream begun right
 * after the submit sees all of two's chunks: together they are its text. */
static void test_stream_generate(void **state) {
    (void)state;
    if (!have_model) skip();
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_job_t *j = job_json("{\"id\":\"%s-g1\",\"tasks\":["
                              "{\"name\":\"one\",\"kind\":\"generate\",\"text\":\"Once upon a time\",\"max_tokens\":400},"
                              "{\"name\":\"two\",\"kind\":\"generate\",\"text\":\"Tom\",\"after\":[\"one\"],"
                              "\"max_tokens\":60,\"temperature\":0}]}",
                              run);
    llmos_submit_result_t r;
    assert_int_equal(llmos_client_submit(c, j, 0, &r, &err), 0);
    seen_t s = {.task = "two"};
    llmos_job_status_t *st;
    int rc = llmos_client_stream(c, r.id, 20000, on_event, &s, &st, &err);
    if (rc) fail_msg("stream: %s", err.msg);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    const llmos_task_result_t *t = llmos_job_status_task(st, "two");
    assert_true(t->n_tokens > 0 && t->n_tokens <= 60);
    assert_true(s.chunks > 0);
    assert_string_equal(s.text, t->text);
    assert_int_equal(s.results, 2); /* one (replayed or live) and two */
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);

    /* submit and stream in one round trip: every chunk from the start when
     * the node streams submits (SubmitRequest.stream); the result either way */
    j = job_json("{\"id\":\"%s-g3\",\"kind\":\"generate\",\"prompt\":\"Lily\",\"max_tokens\":40}", run);
    seen_t s2 = {.task = "t0"};
    rc = llmos_client_submit_stream(c, j, 20000, on_event, &s2, &st, &err);
    if (rc) fail_msg("submit_stream: %s", err.msg);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    if (s2.chunks) assert_string_equal(s2.text, st->tasks[0].text);
    llmos_job_status_free(&st);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

/* A client that goes away mid-stream: the job still finishes (or is
 * cancellable), the scheduler ends with nothing running. */
static void test_disconnect_mid_stream(void **state) {
    (void)state;
    if (!have_model) skip();
    llmos_client_t *c = connect_as(NULL);
    llmos_client_error_t err;
    llmos_job_t *j = job_json("{\"id\":\"%s-g2\",\"kind\":\"generate\",\"prompt\":\"Tom had a dog\","
                              "\"max_tokens\":400,\"temperature\":0.9,\"seed\":1}",
                              run);
    llmos_submit_result_t r;
    assert_int_equal(llmos_client_submit(c, j, 0, &r, &err), 0);
    seen_t s = {.stop_after_chunks = 2};
    llmos_job_status_t *st = NULL;
    int rc = llmos_client_stream(c, r.id, 20000, on_event, &s, &st, &err);
    assert_true(rc == LLMOS_CLIENT_ECANCELED || rc == 0); /* 0: it finished before two chunks came */
    llmos_job_status_free(&st);
    llmos_client_destroy(&c); /* gone, socket and all */
    llmos_job_destroy(&j);
    c = connect_as(NULL);
    rc = llmos_client_wait(c, r.id, 20000, &st, &err);
    if (rc) fail_msg("wait after disconnect: %s", err.msg);
    assert_int_equal(st->state, LLMOS_JOB_DONE);
    llmos_job_status_free(&st);
    llmos_scheduler_stats_t ss;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(llmos_client_scheduler_stats(c, 0, &ss, &err), 0);
        if (ss.running == 0) break;
        usleep(50000);
    }
    assert_int_equal(ss.running, 0);
    /* and the model holds no sequence and no KV block for it */
    Llmos__ModelStats *ms = NULL;
    for (int i = 0; i < 100; i++) {
        llmos_client_reply_t *r = NULL;
        assert_int_equal(llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, NULL, 0, 0, &r, &err), 0);
        if (ms) llmos__model_stats__free_unpacked(ms, NULL);
        ms = llmos__model_stats__unpack(NULL, r->len, r->data);
        llmos_client_reply_free(&r);
        assert_non_null(ms);
        if (ms->running == 0 && ms->kv_blocks_used == 0) break;
        usleep(50000);
    }
    assert_int_equal(ms->running, 0);
    assert_int_equal(ms->queued, 0);
    assert_int_equal(ms->kv_blocks_used, 0);
    assert_true(ms->requests_done > 0);
    llmos__model_stats__free_unpacked(ms, NULL);
    llmos_client_destroy(&c);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: jobs_live ENDPOINT [MODEL]\n");
        return 2;
    }
    endpoint = argv[1];
    have_model = argc > 2 && strcmp(argv[2], "1") == 0;
    snprintf(run, sizeof run, "r%ld-%d", (long)time(NULL), (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_wait_status), cmocka_unit_test(test_dag_submit_wait),
        cmocka_unit_test(test_stream_echo),        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_list),               cmocka_unit_test(test_gateway_checks),
        cmocka_unit_test(test_overload),           cmocka_unit_test(test_stream_generate),
        cmocka_unit_test(test_disconnect_mid_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
