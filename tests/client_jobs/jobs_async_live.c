/*
 * jobs_async_live.c — asynchronous, pipelined submission of libllmos-client
 * (llmos_client_submit_async / llmos_client_poll) against a real llmosd
 * started by test_jobs_async.sh with a fresh --data-dir:
 *   - 10 000 one-task echo jobs from one thread, 256 in flight: each
 *     completes exactly once, with its own text;
 *   - async and sync calls mixed on one handle (replies to async requests
 *     that arrive during a sync call are kept for poll);
 *   - the in-flight bound (EOVERLOADED, then room again after a poll) and
 *     the submit ack (existing = 1 on a known id), a gateway error as a
 *     result, the generic llmos_client_call_async (ping; unknown actor);
 *   - the node killed (SIGKILL) with requests outstanding: every one
 *     completes with an error within its timeout, none hangs.  Last.
 *
 *   jobs_async_live ENDPOINT NODE_PID
 */
#include "llmos/client.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static const char *endpoint;
static pid_t node_pid;
static char run[32]; /* makes ids unique per run of this program */

static llmos_client_t *connect_with(uint32_t max_inflight) {
    llmos_client_t *c;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = 10000, .max_inflight = max_inflight};
    if (llmos_client_connect(endpoint, &o, &c, &err) != 0) fail_msg("connect: %s", err.msg);
    return c;
}

static llmos_job_t *echo_job(const char *id, const char *text) {
    llmos_job_t *j;
    llmos_client_error_t err;
    if (llmos_job_new(id, &j, &err) != 0) fail_msg("job_new: %s", err.msg);
    llmos_task_spec_t t = {.kind = LLMOS_TASK_ECHO, .text = text};
    if (llmos_job_add_task(j, &t, &err) != 0) fail_msg("add_task: %s", err.msg);
    return j;
}

/* Sets job j's id and text to the i-th of series `tag`. */
static void echo_set(llmos_job_t **j, const char *tag, size_t i) {
    char id[96], text[64];
    snprintf(id, sizeof id, "%s-%s-%zu", run, tag, i);
    snprintf(text, sizeof text, "echo %s %zu", tag, i);
    llmos_job_destroy(j);
    *j = echo_job(id, text);
}

/* Checks one SUBMIT_WAIT result of series tag against its index (user). */
static void check_echo(const llmos_async_result_t *r, const char *tag, unsigned char *seen, size_t n) {
    size_t i = (size_t)(uintptr_t)r->user;
    assert_true(i < n);
    if (r->rc) fail_msg("job %zu: %s", i, r->err.msg);
    assert_int_equal(r->kind, LLMOS_ASYNC_SUBMIT_WAIT);
    assert_non_null(r->status);
    assert_int_equal(r->status->state, LLMOS_JOB_DONE);
    char want[64], id[96];
    snprintf(want, sizeof want, "echo %s %zu", tag, i);
    snprintf(id, sizeof id, "%s-%s-%zu", run, tag, i);
    assert_string_equal(llmos_job_status_text(r->status), want);
    assert_string_equal(r->status->id, id);
    assert_int_equal(seen[i], 0);
    seen[i] = 1;
}

static void test_ten_thousand(void **state) {
    (void)state;
    enum { N = 10000, WINDOW = 256 };
    llmos_client_t *c = connect_with(WINDOW);
    llmos_client_error_t err;
    unsigned char *seen = calloc(N, 1);
    uint64_t *tokens = calloc(N, sizeof *tokens);
    llmos_async_result_t res[64];
    llmos_job_t *j = NULL;
    size_t sent = 0, got = 0;
    time_t t0 = time(NULL);
    while (got < N) {
        while (sent < N) {
            echo_set(&j, "ten", sent);
            int rc = llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT_WAIT, 20000, (void *)(uintptr_t)sent,
                                               &tokens[sent], &err);
            if (rc == LLMOS_CLIENT_EOVERLOADED) break;
            if (rc) fail_msg("submit_async %zu: %s", sent, err.msg);
            sent++;
        }
        assert_true(llmos_client_inflight(c) <= WINDOW);
        size_t n;
        assert_int_equal(llmos_client_poll(c, 5000, res, 64, &n, &err), 0);
        for (size_t k = 0; k < n; k++) {
            check_echo(&res[k], "ten", seen, N);
            assert_int_equal(res[k].token, tokens[(uintptr_t)res[k].user]);
        }
        llmos_async_results_free(res, n);
        got += n;
        if (time(NULL) - t0 > 100) fail_msg("only %zu of %d jobs back after 100 s", got, N);
    }
    for (size_t i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    /* nothing left: poll returns at once with none */
    assert_int_equal(llmos_client_inflight(c), 0);
    size_t n = 99;
    time_t t1 = time(NULL);
    assert_int_equal(llmos_client_poll(c, 3000, res, 64, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_true(time(NULL) - t1 < 2);
    llmos_job_destroy(&j);
    free(seen);
    free(tokens);
    llmos_client_destroy(&c);
}

/* Sync calls between async submissions on the same handle. */
static void test_mixed_sync(void **state) {
    (void)state;
    enum { N = 300 };
    llmos_client_t *c = connect_with(0);
    llmos_client_error_t err;
    unsigned char seen[N] = {0};
    llmos_job_t *j = NULL, *sj = NULL;
    for (size_t i = 0; i < N; i++) {
        echo_set(&j, "mix", i);
        uint64_t tok;
        if (llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT_WAIT, 20000, (void *)(uintptr_t)i, &tok, &err))
            fail_msg("submit_async: %s", err.msg);
        if (i % 50 == 25) { /* a sync submit-and-wait and a ping while async replies stream in */
            echo_set(&sj, "mixsync", i);
            llmos_job_status_t *st;
            if (llmos_client_submit_wait(c, sj, 10000, &st, &err)) fail_msg("submit_wait: %s", err.msg);
            char want[64];
            snprintf(want, sizeof want, "echo mixsync %zu", i);
            assert_string_equal(llmos_job_status_text(st), want);
            llmos_job_status_free(&st);
            assert_int_equal(llmos_client_ping(c, 5000, NULL, &err), 0);
        }
    }
    /* the sync calls above consumed the socket: the async replies they saw must still be there */
    size_t got = 0;
    llmos_async_result_t res[32];
    while (got < N) {
        size_t n;
        assert_int_equal(llmos_client_poll(c, 10000, res, 32, &n, &err), 0);
        if (n == 0) fail_msg("poll: nothing within 10 s, %zu of %d back", got, N);
        for (size_t k = 0; k < n; k++) check_echo(&res[k], "mix", seen, N);
        llmos_async_results_free(res, n);
        got += n;
    }
    assert_int_equal(llmos_client_inflight(c), 0);
    llmos_job_destroy(&j);
    llmos_job_destroy(&sj);
    llmos_client_destroy(&c);
}

/* max_inflight: the 9th request of 8 is refused; a poll makes room. */
static void test_bound_and_ack(void **state) {
    (void)state;
    llmos_client_t *c = connect_with(8);
    llmos_client_error_t err;
    llmos_job_t *j = NULL;
    uint64_t tok;
    for (size_t i = 0; i < 8; i++) {
        echo_set(&j, "bound", i);
        assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, NULL, &tok, &err), 0);
    }
    echo_set(&j, "bound", 8);
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, NULL, &tok, &err),
                     LLMOS_CLIENT_EOVERLOADED);
    assert_non_null(strstr(err.msg, "in flight"));
    assert_int_equal(llmos_client_inflight(c), 8);
    /* replies that arrived still hold their slots until collected */
    usleep(200000);
    assert_int_equal(llmos_client_inflight(c), 8);
    llmos_async_result_t res[4];
    size_t n;
    assert_int_equal(llmos_client_poll(c, 5000, res, 4, &n, &err), 0);
    assert_true(n >= 1 && n <= 4);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(res[k].rc, 0);
        assert_int_equal(res[k].kind, LLMOS_ASYNC_SUBMIT);
        assert_null(res[k].status);
        assert_false(res[k].submit.existing);
        assert_memory_equal(res[k].submit.id, run, strlen(run));
    }
    assert_int_equal(llmos_client_inflight(c), 8 - n);
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, NULL, &tok, &err), 0);
    /* drain; then the same id again is acknowledged as existing */
    while (llmos_client_inflight(c)) {
        assert_int_equal(llmos_client_poll(c, 5000, res, 4, &n, &err), 0);
        for (size_t k = 0; k < n; k++) assert_int_equal(res[k].rc, 0);
    }
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, (void *)j, &tok, &err), 0);
    assert_int_equal(llmos_client_poll(c, 5000, res, 4, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(res[0].token, tok);
    assert_ptr_equal(res[0].user, j);
    assert_true(res[0].submit.existing);
    assert_string_equal(res[0].submit.id, llmos_job_id(j));
    /* a bad job: the gateway's error comes back as the result's rc */
    char badid[96];
    snprintf(badid, sizeof badid, "%s-bad", run);
    llmos_job_t *bad = echo_job(badid, "y");
    llmos_job_set_max_retries(bad, 1000000);
    assert_int_equal(llmos_client_submit_async(c, bad, LLMOS_ASYNC_SUBMIT_WAIT, 5000, NULL, &tok, &err), 0);
    assert_int_equal(llmos_client_poll(c, 5000, res, 4, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(res[0].rc, LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(res[0].err.msg, "max_retries"));
    llmos_async_results_free(res, n);
    /* the generic form: a ping (type 2) answered by a pong (3); an unknown actor */
    uint64_t tping, tnone;
    assert_int_equal(llmos_client_call_async(c, "node", 2, NULL, 0, 5000, NULL, &tping, &err), 0);
    assert_int_equal(llmos_client_call_async(c, "no-such-actor", 2, NULL, 0, 5000, NULL, &tnone, &err), 0);
    size_t calls = 0;
    while (calls < 2) {
        assert_int_equal(llmos_client_poll(c, 5000, res, 4, &n, &err), 0);
        assert_true(n > 0);
        for (size_t k = 0; k < n; k++, calls++) {
            assert_int_equal(res[k].kind, LLMOS_ASYNC_CALL);
            assert_non_null(res[k].reply);
            if (res[k].token == tping) {
                assert_int_equal(res[k].rc, 0);
                assert_int_equal(res[k].reply->type, 3);
            } else {
                assert_int_equal(res[k].token, tnone);
                assert_int_equal(res[k].rc, LLMOS_CLIENT_ENOTFOUND);
                assert_int_equal(res[k].reply->status, LLMOS_CLIENT_ENOTFOUND);
            }
        }
        llmos_async_results_free(res, n);
    }
    llmos_job_destroy(&bad);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

/* SIGKILL the node with requests outstanding: all complete with an error. */
static void test_node_killed(void **state) {
    (void)state;
    enum { N = 2000, LATE = 100 };
    llmos_client_t *c = connect_with(N + LATE);
    llmos_client_error_t err;
    llmos_job_t *j = NULL;
    uint64_t tok;
    unsigned char *seen = calloc(N + LATE, 1);
    for (size_t i = 0; i < N; i++) {
        echo_set(&j, "kill", i);
        if (llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT_WAIT, 1500, (void *)(uintptr_t)i, &tok, &err))
            fail_msg("submit_async %zu: %s", i, err.msg);
    }
    llmos_async_result_t res[64];
    size_t n, got = 0, ok = 0, failed = 0;
    assert_int_equal(llmos_client_poll(c, 5000, res, 64, &n, &err), 0);
    assert_true(n > 0);
    assert_int_equal(kill(node_pid, SIGKILL), 0);
    for (size_t i = N; i < N + LATE; i++) { /* sent to a dead node: these cannot be answered */
        echo_set(&j, "kill", i);
        if (llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT_WAIT, 1500, (void *)(uintptr_t)i, &tok, &err))
            fail_msg("submit_async %zu: %s", i, err.msg);
    }
    time_t t0 = time(NULL);
    for (;;) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (size_t)(uintptr_t)res[k].user;
            assert_true(i < N + LATE);
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
            if (res[k].rc == 0) ok++;
            else failed++;
            if (res[k].rc) assert_int_equal(res[k].rc, LLMOS_CLIENT_ETIMEDOUT);
        }
        llmos_async_results_free(res, n);
        got += n;
        if (got == N + LATE) break;
        assert_true(time(NULL) - t0 < 30);
        assert_int_equal(llmos_client_poll(c, 1000, res, 64, &n, &err), 0);
    }
    print_message("node killed: %zu done before, %zu failed\n", ok, failed);
    assert_int_equal(llmos_client_inflight(c), 0);
    assert_true(failed >= LATE);
    /* sync calls on the same handle fail cleanly too */
    assert_int_equal(llmos_client_ping(c, 300, NULL, &err), LLMOS_CLIENT_ETIMEDOUT);
    free(seen);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: jobs_async_live ENDPOINT NODE_PID\n");
        return 2;
    }
    endpoint = argv[1];
    node_pid = (pid_t)atoi(argv[2]);
    snprintf(run, sizeof run, "a%ld-%d", (long)time(NULL), (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_thousand),
        cmocka_unit_test(test_mixed_sync),
        cmocka_unit_test(test_bound_and_ack),
        cmocka_unit_test(test_node_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
