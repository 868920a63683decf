/*
 * test_client_jobs.c — the job half of libllmos-client without a node:
 * building jobs (validation names the field), the JSON form (both shapes,
 * every kind, syntax and field errors with their place), what is packed on
 * the wire (decoded back from the SubmitRequest), results as JSON, and a
 * call to an endpoint where nothing listens (ETIMEDOUT, no crash), and the
 * async calls' own rules there: argument errors, the in-flight bound, every
 * request timing out exactly once, a poll with nothing in flight.
 */
#include "client/jobs_internal.h"
#include "llmos/job.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text; returns the decoded SubmitRequest (caller frees) or NULL with err set. */
static Llmos__SubmitRequest *parse(const char *text, llmos_client_error_t *err) {
    llmos_job_t *j = NULL;
    if (llmos_job_from_json(text, strlen(text), "dflt", &j, err) != 0) {
        assert_null(j);
        return NULL;
    }
    uint8_t *buf;
    size_t len;
    assert_int_equal(jobs_pack_submit(j, 0, 0, 0, &buf, &len, err), 0);
    llmos_job_destroy(&j);
    assert_null(j);
    Llmos__SubmitRequest *r = llmos__submit_request__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(r);
    return r;
}

static void expect_error(const char *text, int code, const char *needle) {
    llmos_client_error_t err = {0};
    Llmos__SubmitRequest *r = parse(text, &err);
    if (r) {
        llmos__submit_request__free_unpacked(r, NULL);
        fail_msg("accepted: %s", text);
    }
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, needle)) fail_msg("error for %s is '%s', expected it to mention '%s'", text, err.msg, needle);
}

static void test_short_forms(void **state) {
    (void)state;
    llmos_client_error_t err;
    Llmos__SubmitRequest *r = parse("{\"id\":\"g1\",\"kind\":\"generate\",\"prompt\":\"Once\",\"max_tokens\":32,"
                                    "\"temperature\":0.5,\"seed\":42,\"stop\":\".\"}",
                                    &err);
    assert_non_null(r);
    assert_string_equal(r->job->id, "g1");
    assert_int_equal(r->job->n_tasks, 1);
    Llmos__Task *t = r->job->tasks[0];
    assert_int_equal(t->kind, LLMOS__TASK_KIND__TASK_GENERATE);
    assert_string_equal(t->text, "Once");
    assert_string_equal(t->name, "t0");
    assert_int_equal(t->max_tokens, 32);
    assert_non_null(t->sampling);
    assert_true(t->sampling->temperature == 0.5f);
    assert_int_equal(t->sampling->seed, 42);
    assert_int_equal(t->n_stop, 1);
    assert_string_equal(t->stop[0], ".");
    llmos__submit_request__free_unpacked(r, NULL);

    /* knowledge-augmented: a link task feeding the generation */
    r = parse("{\"id\":7,\"kind\":\"generate\",\"prompt\":\"virus\",\"graph\":true,\"hops\":1,\"max_facts\":5}", &err);
    assert_non_null(r);
    assert_string_equal(r->job->id, "7");
    assert_int_equal(r->job->n_tasks, 2);
    assert_int_equal(r->job->tasks[0]->kind, LLMOS__TASK_KIND__TASK_LINK);
    assert_string_equal(r->job->tasks[0]->name, "facts");
    assert_int_equal(r->job->tasks[0]->hops, 1);
    assert_int_equal(r->job->tasks[0]->max_facts, 5);
    assert_int_equal(r->job->tasks[1]->kind, LLMOS__TASK_KIND__TASK_GENERATE);
    assert_int_equal(r->job->tasks[1]->n_input_from, 1);
    assert_string_equal(r->job->tasks[1]->input_from[0], "facts");
    assert_int_equal(r->job->tasks[1]->hops, 0);
    llmos__submit_request__free_unpacked(r, NULL);

    /* every other kind, and the default id */
    const char *lines[] = {
        "{\"kind\":\"echo\",\"text\":\"hi\"}",
        "{\"kind\":\"classify\",\"text\":\"my card\",\"labels\":[\"card\",\"loan\"]}",
        "{\"kind\":\"embed\",\"text\":\"x\"}",
        "{\"kind\":\"graph_query\",\"query\":\"SELECT * WHERE { ?s ?p ?o }\",\"format\":\"json\"}",
        "{\"kind\":\"query\",\"sparql\":\"ASK { ?s ?p ?o }\"}",
        "{\"kind\":\"link\",\"text\":\"virus\",\"hops\":2}",
    };
    const int kinds[] = {1, 3, 4, 5, 5, 6};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        r = parse(lines[i], &err);
        if (!r) fail_msg("%s: %s", lines[i], err.msg);
        assert_string_equal(r->job->id, "dflt");
        assert_int_equal(r->job->tasks[0]->kind, kinds[i]);
        assert_null(r->job->tasks[0]->sampling);
        llmos__submit_request__free_unpacked(r, NULL);
    }
}

static void test_full_form(void **state) {
    (void)state;
    llmos_client_error_t err;
    Llmos__SubmitRequest *r = parse(
        "{\"id\":\"j\",\"tenant\":\"acme\",\"priority\":-3,\"deadline_ms\":1700000000000,\"max_retries\":2,"
        "\"labels\":{\"team\":\"x\",\"run\":\"9\"},\"tasks\":["
        "{\"name\":\"facts\",\"kind\":\"link\",\"text\":\"virus\"},"
        "{\"name\":\"q\",\"kind\":\"query\",\"text\":\"ASK {?s ?p ?o}\"},"
        "{\"name\":\"gen\",\"kind\":\"generate\",\"after\":[\"q\"],\"input_from\":[\"facts\"],\"max_tokens\":8}]}",
        &err);
    if (!r) fail_msg("%s", err.msg);
    assert_string_equal(r->job->tenant, "acme");
    assert_int_equal(r->job->priority, -3);
    assert_int_equal(r->job->deadline_ms, 1700000000000ULL);
    assert_int_equal(r->job->max_retries, 2);
    assert_int_equal(r->job->n_labels, 2);
    assert_int_equal(r->job->n_tasks, 3);
    assert_string_equal(r->job->tasks[2]->after[0], "q");
    assert_string_equal(r->job->tasks[2]->text, "");
    llmos__submit_request__free_unpacked(r, NULL);
}

static void test_json_errors(void **state) {
    (void)state;
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"x\"", LLMOS_CLIENT_EFORMAT, "not valid JSON");
    expect_error("{\"id\":\"a\",\n \"kind\" \"echo\"}", LLMOS_CLIENT_EFORMAT, "line 2");
    expect_error("{\"kind\":\"echo\",\"text\":\"x\"} trailing", LLMOS_CLIENT_EFORMAT, "offset 27 (line 1, column 28)");
    expect_error("[1,2]", LLMOS_CLIENT_EINVAL, "object");
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"caf\xc3\"}", LLMOS_CLIENT_EFORMAT,
                 "not valid UTF-8 at offset 35");
    expect_error("{\"id\":\"a\xed\xa0\x80\",\"kind\":\"echo\",\"text\":\"x\"}", LLMOS_CLIENT_EFORMAT, "UTF-8");
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"txt\":\"x\"}", LLMOS_CLIENT_EINVAL, "txt: unknown field");
    expect_error("{\"id\":\"a\",\"kind\":\"dance\",\"text\":\"x\"}", LLMOS_CLIENT_EINVAL, "kind: 'dance'");
    expect_error("{\"id\":\"a\",\"text\":\"x\"}", LLMOS_CLIENT_EINVAL, "kind: missing");
    expect_error("{\"id\":\"a\",\"kind\":\"generate\",\"prompt\":\"x\",\"max_tokens\":-1}", LLMOS_CLIENT_EINVAL,
                 "max_tokens: expected an integer");
    expect_error("{\"id\":\"a\",\"kind\":\"generate\",\"prompt\":\"x\",\"max_tokens\":\"9\"}", LLMOS_CLIENT_EINVAL,
                 "max_tokens");
    expect_error("{\"id\":\"a\",\"kind\":\"generate\",\"prompt\":\"x\",\"top_p\":1.5}", LLMOS_CLIENT_EINVAL, "top_p");
    expect_error("{\"id\":\"a\",\"kind\":\"generate\",\"prompt\":\"x\",\"prompt\":\"y\"}", LLMOS_CLIENT_EINVAL,
                 "given twice");
    expect_error("{\"id\":\"a\",\"kind\":\"generate\"}", LLMOS_CLIENT_EINVAL, "text: a generate task needs a text");
    expect_error("{\"id\":\"a\",\"kind\":\"classify\",\"text\":\"x\",\"labels\":[\"one\"]}", LLMOS_CLIENT_EINVAL,
                 "labels: a classify task needs at least 2");
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"x\",\"graph\":true}", LLMOS_CLIENT_EINVAL, "graph: only");
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"x\",\"hops\":1}", LLMOS_CLIENT_EINVAL, "hops");
    expect_error("{\"id\":{},\"kind\":\"echo\",\"text\":\"x\"}", LLMOS_CLIENT_EINVAL, "id: expected");
    expect_error("{\"id\":\"a\\u0001\",\"kind\":\"echo\",\"text\":\"x\"}", LLMOS_CLIENT_EINVAL, "control character");
    expect_error("{\"id\":\"a\",\"tasks\":[]}", LLMOS_CLIENT_EINVAL, "tasks: expected a non-empty array");
    expect_error("{\"id\":\"a\",\"tasks\":[{\"kind\":\"echo\",\"text\":\"x\"},{\"kind\":\"generate\",\"text\":\"y\","
                 "\"max_tokens\":1.5}]}",
                 LLMOS_CLIENT_EINVAL, "tasks[1].max_tokens");
    expect_error("{\"id\":\"a\",\"tasks\":[{\"name\":\"b\",\"kind\":\"echo\",\"text\":\"x\",\"after\":[\"c\"]},"
                 "{\"name\":\"c\",\"kind\":\"echo\",\"text\":\"y\"}]}",
                 LLMOS_CLIENT_EINVAL, "tasks[0].after[0]: no earlier task named 'c'");
    expect_error("{\"id\":\"a\",\"tasks\":[{\"name\":\"b\",\"kind\":\"echo\",\"text\":\"x\"},"
                 "{\"name\":\"b\",\"kind\":\"echo\",\"text\":\"y\"}]}",
                 LLMOS_CLIENT_EINVAL, "tasks[1].name: a task 'b' exists");
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"x\",\"tasks\":[]}", LLMOS_CLIENT_EINVAL, "kind: unknown");
    char big[400];
    snprintf(big, sizeof big, "{\"id\":\"%0200d\",\"kind\":\"echo\",\"text\":\"x\"}", 1);
    expect_error(big, LLMOS_CLIENT_EINVAL, "over the 128-byte limit");
    llmos_client_error_t err;
    llmos_job_t *j = (llmos_job_t *)&err;
    const char *noid = "{\"kind\":\"echo\",\"text\":\"x\"}";
    assert_int_equal(llmos_job_from_json(noid, strlen(noid), NULL, &j, &err), LLMOS_CLIENT_EINVAL);
    assert_null(j);
    assert_non_null(strstr(err.msg, "id: missing"));
    /* a NUL inside the text is an error, not the end of it */
    assert_int_equal(llmos_job_from_json(noid, strlen(noid) + 1, NULL, &j, &err), LLMOS_CLIENT_EFORMAT);
    assert_non_null(strstr(err.msg, "NUL byte at offset 26"));
    /* not NUL-terminated: only len bytes are read */
    const char text[] = "{\"id\":\"z\",\"kind\":\"echo\",\"text\":\"x\"}GARBAGE";
    assert_int_equal(llmos_job_from_json(text, sizeof text - 1 - 7, NULL, &j, &err), 0);
    assert_string_equal(llmos_job_id(j), "z");
    llmos_job_destroy(&j);
}

static void test_builder(void **state) {
    (void)state;
    llmos_client_error_t err;
    llmos_job_t *j;
    assert_int_equal(llmos_job_new("", &j, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_job_new("b1", &j, &err), 0);
    llmos_task_spec_t link = {.name = "facts", .kind = LLMOS_TASK_LINK, .text = "virus", .max_facts = 4};
    assert_int_equal(llmos_job_add_task(j, &link, &err), 0);
    assert_int_equal(llmos_job_add_task(j, &link, &err), LLMOS_CLIENT_EINVAL); /* same name */
    const char *from[] = {"facts"}, *bad[] = {"nope"};
    llmos_task_spec_t gen = {.kind = LLMOS_TASK_GENERATE, .input_from = from, .n_input_from = 1, .max_tokens = 5};
    gen.input_from = bad;
    assert_int_equal(llmos_job_add_task(j, &gen, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "input_from[0]"));
    gen.input_from = from;
    assert_int_equal(llmos_job_add_task(j, &gen, &err), 0);
    llmos_task_spec_t none = {.kind = (llmos_task_kind_t)42, .text = "x"};
    assert_int_equal(llmos_job_add_task(j, &none, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_job_set_label(j, "k", "v1", &err), 0);
    assert_int_equal(llmos_job_set_label(j, "k", "v2", &err), 0);
    assert_int_equal(llmos_job_set_tenant(j, "t", &err), 0);
    llmos_job_set_priority(j, 5);
    assert_int_equal(llmos_job_task_count(j), 2);
    uint8_t *buf;
    size_t len;
    assert_int_equal(jobs_pack_submit(j, 1, 1, 1234, &buf, &len, &err), 0);
    Llmos__SubmitRequest *r = llmos__submit_request__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(r);
    assert_true(r->wait);
    assert_true(r->stream);
    assert_int_equal(r->wait_timeout_ms, 1234);
    assert_int_equal(r->job->n_labels, 1);
    assert_string_equal(r->job->labels[0]->value, "v2");
    assert_string_equal(r->job->tasks[1]->name, "t1");
    assert_int_equal(r->job->priority, 5);
    llmos__submit_request__free_unpacked(r, NULL);
    for (int i = 2; i < LLMOS_JOB_TASKS_MAX; i++) {
        llmos_task_spec_t e = {.kind = LLMOS_TASK_ECHO, .text = "x"};
        assert_int_equal(llmos_job_add_task(j, &e, &err), 0);
    }
    llmos_task_spec_t e = {.kind = LLMOS_TASK_ECHO, .text = "x"};
    assert_int_equal(llmos_job_add_task(j, &e, &err), LLMOS_CLIENT_EINVAL);
    llmos_job_destroy(&j);
    llmos_job_destroy(&j); /* NULL-safe */
}

static void test_status_json(void **state) {
    (void)state;
    char *names[] = {"best", "other"};
    float probs[] = {0.75f, 0.25f};
    int32_t toks[] = {5, 6, 7};
    llmos_task_result_t tasks[2] = {
        {.name = "c", .kind = LLMOS_TASK_CLASSIFY, .state = LLMOS_TASK_DONE, .text = "", .labels = names,
         .probs = probs, .n_labels = 2, .best = "best", .error = "", .finish_reason = "", .attempts = 1},
        {.name = "g", .kind = LLMOS_TASK_GENERATE, .state = LLMOS_TASK_DONE, .text = "he said \"hi\"\n",
         .tokens = toks, .n_tokens = 3, .best = "", .error = "", .finish_reason = "length", .attempts = 2},
    };
    llmos_job_status_t s = {.id = "j1", .tenant = "default", .state = LLMOS_JOB_DONE, .error = "", .tasks = tasks,
                            .n_tasks = 2};
    char *json;
    llmos_client_error_t err;
    assert_int_equal(llmos_job_status_to_json(&s, &json, &err), 0);
    assert_non_null(strstr(json, "\"id\":\"j1\""));
    assert_non_null(strstr(json, "\"state\":\"done\""));
    assert_non_null(strstr(json, "\"probs\":[0.75,0.25]"));
    assert_non_null(strstr(json, "\"text\":\"he said \\\"hi\\\"\\n\""));
    assert_non_null(strstr(json, "\"tokens\":3"));
    assert_non_null(strstr(json, "\"finish_reason\":\"length\""));
    assert_string_equal(llmos_job_status_text(&s), "he said \"hi\"\n");
    free(json);
    /* bytes that are not UTF-8 (a model may emit half a character) print as U+FFFD */
    tasks[1].text = "ok \xe2\x82 \xff \xe2\x82\xac";
    assert_int_equal(llmos_job_status_to_json(&s, &json, &err), 0);
    assert_non_null(strstr(json, "\"text\":\"ok \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd \xe2\x82\xac\""));
    assert_int_equal(jobs_utf8_check(json, strlen(json)), strlen(json));
    /* the builder refuses such text */
    llmos_job_t *j;
    assert_int_equal(llmos_job_new("u", &j, &err), 0);
    llmos_task_spec_t e = {.kind = LLMOS_TASK_ECHO, .text = "a\xc0\xaf" "b"};
    assert_int_equal(llmos_job_add_task(j, &e, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "text: not valid UTF-8 at byte 1"));
    llmos_job_destroy(&j);
    assert_ptr_equal(llmos_job_status_task(&s, "c"), &tasks[0]);
    assert_null(llmos_job_status_task(&s, "zz"));
    free(json);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(llmos_task_kind_name(LLMOS_TASK_GRAPH_QUERY), "graph_query");
    assert_int_equal(llmos_task_kind_parse("query"), LLMOS_TASK_GRAPH_QUERY);
    assert_int_equal(llmos_task_kind_parse("bogus"), 0);
    assert_string_equal(llmos_task_kind_name((llmos_task_kind_t)99), "?");
    assert_int_equal(llmos_job_state_parse("expired"), LLMOS_JOB_EXPIRED);
    assert_true(llmos_job_state_final(LLMOS_JOB_CANCELLED));
    assert_false(llmos_job_state_final(LLMOS_JOB_RUNNING));
}

/* Nothing listens: the calls time out with a message, *out stays NULL. */
static void test_no_node(void **state) {
    (void)state;
    llmos_client_t *c;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = 200};
    assert_int_equal(llmos_client_connect("tcp://127.0.0.1:9", &o, &c, &err), 0);
    llmos_job_t *j;
    assert_int_equal(llmos_job_from_json("{\"id\":\"x\",\"kind\":\"echo\",\"text\":\"x\"}", 35, NULL, &j, &err), 0);
    llmos_submit_result_t res;
    assert_int_equal(llmos_client_submit(c, j, 200, &res, &err), LLMOS_CLIENT_ETIMEDOUT);
    llmos_job_status_t *st = (llmos_job_status_t *)&err;
    assert_int_equal(llmos_client_job_status(c, "x", 200, &st, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_null(st);
    assert_int_equal(llmos_client_wait(c, "", 200, &st, &err), LLMOS_CLIENT_EINVAL);
    llmos_job_list_t *l = (llmos_job_list_t *)&err;
    assert_int_equal(llmos_client_list(c, NULL, 200, &l, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_null(l);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

static void test_async_no_node(void **state) {
    (void)state;
    llmos_client_t *c;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = 200, .max_inflight = 3};
    llmos_client_opts_t huge = {.max_inflight = (1u << 20) + 1};
    assert_int_equal(llmos_client_connect("tcp://127.0.0.1:9", &huge, &c, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "max_inflight"));
    assert_int_equal(llmos_client_connect("tcp://127.0.0.1:9", &o, &c, &err), 0);
    llmos_job_t *j;
    assert_int_equal(llmos_job_from_json("{\"id\":\"x\",\"kind\":\"echo\",\"text\":\"x\"}", 35, NULL, &j, &err), 0);
    uint64_t tok[4] = {0};
    llmos_async_result_t res[8];
    size_t n = 7;
    /* nothing in flight: poll returns at once */
    assert_int_equal(llmos_client_poll(c, 5000, res, 8, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(llmos_client_poll(c, 0, res, 0, &n, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_submit_async(c, j, (llmos_async_kind_t)7, 0, NULL, &tok[0], &err),
                     LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, NULL, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_inflight(c), 0);
    /* three fit, the fourth is refused */
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 150, (void *)1, &tok[0], &err), 0);
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT_WAIT, 100, (void *)2, &tok[1], &err), 0);
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, (void *)3, &tok[2], &err), 0);
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 0, (void *)4, &tok[3], &err),
                     LLMOS_CLIENT_EOVERLOADED);
    assert_int_equal(llmos_client_inflight(c), 3);
    assert_true(tok[0] != tok[1] && tok[1] != tok[2] && tok[0] != tok[2]);
    /* a sync call meanwhile times out on its own */
    assert_int_equal(llmos_client_ping(c, 50, NULL, &err), LLMOS_CLIENT_ETIMEDOUT);
    /* each times out once, with its kind and user; the SUBMIT_WAIT one at
     * 100 + the 2 s margin, so it comes last */
    int seen[4] = {0};
    size_t got = 0;
    for (int round = 0; round < 100 && got < 3; round++) {
        assert_int_equal(llmos_client_poll(c, 1000, res, 8, &n, &err), 0);
        for (size_t k = 0; k < n; k++) {
            uintptr_t u = (uintptr_t)res[k].user;
            assert_true(u >= 1 && u <= 3);
            assert_int_equal(res[k].token, tok[u - 1]);
            assert_int_equal(res[k].rc, LLMOS_CLIENT_ETIMEDOUT);
            assert_int_equal(res[k].kind, u == 2 ? LLMOS_ASYNC_SUBMIT_WAIT : LLMOS_ASYNC_SUBMIT);
            assert_null(res[k].status);
            assert_int_equal(u == 2, got == 2);
            seen[u]++;
            got++;
        }
        llmos_async_results_free(res, n);
    }
    assert_int_equal(got, 3);
    assert_true(seen[1] == 1 && seen[2] == 1 && seen[3] == 1);
    assert_int_equal(llmos_client_inflight(c), 0);
    /* room again */
    assert_int_equal(llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT, 50, NULL, &tok[0], &err), 0);
    llmos_job_destroy(&j);
    llmos_client_destroy(&c); /* with one request outstanding: freed, no leak */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_forms), cmocka_unit_test(test_full_form), cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_builder),     cmocka_unit_test(test_status_json), cmocka_unit_test(test_names),
        cmocka_unit_test(test_no_node),     cmocka_unit_test(test_async_no_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
