/*
 * test_client_jobs.c — the job half of libllmos-client without a node:
 * building jobs (validation names the field), the JSON form (both shapes,
 * every kind, syntax and field errors with their place), what is packed on
 * the wire (decoded back from the SubmitRequest), results as JSON, and a
 * call to an endpoint where nothing listens (ETIMEDOUT within the timeout,
 * no crash), and the async calls' own rules there: argument errors, the
 * in-flight bound, every request timing out exactly once, a poll with
 * nothing in flight.  Also: the task limit (LLMOS_JOB_TASKS_MAX, the
 * gateway's), ids and texts holding a NUL refused in JSON and in the
 * length-taking setters, syntax errors shown with their place and the text
 * around it, endpoints checked and their host looked up at connect.
 */
#include "jobs_internal.h" /* white-box: the wire form of a submission */
#include "llmos/job.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/utf8.h"

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
    assert_int_equal(llmos_utf8_check(json, strlen(json)), strlen(json));
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

/* One task's result alone: the same object as in a status's "tasks";
 * every kind's members; a failed task's error; NULLs refused. */
static void test_task_result_json(void **state) {
    (void)state;
    char *names[] = {"yes", "n\xffo"};
    float probs[] = {0.875f, 0.125f}, vec[] = {0.5f, -1.25f, 1e-7f};
    llmos_task_result_t c = {.name = "c", .kind = LLMOS_TASK_CLASSIFY, .state = LLMOS_TASK_DONE, .text = "",
                             .labels = names, .probs = probs, .n_labels = 2, .best = "yes", .error = "",
                             .finish_reason = "", .attempts = 1, .started_ms = 5, .finished_ms = 7};
    char *json = NULL;
    llmos_client_error_t err;
    assert_int_equal(llmos_task_result_to_json(&c, &json, &err), 0);
    assert_string_equal(json, "{\"task\":\"c\",\"kind\":\"classify\",\"state\":\"done\",\"labels\":[\"yes\","
                              "\"n\xef\xbf\xbdo\"],\"probs\":[0.875,0.125],\"best\":\"yes\",\"attempts\":1,"
                              "\"started_ms\":5,\"finished_ms\":7}");
    free(json);
    /* the same object as the status's */
    llmos_job_status_t s = {.id = "j", .tenant = "t", .state = LLMOS_JOB_DONE, .error = "", .tasks = &c, .n_tasks = 1};
    char *status = NULL;
    assert_int_equal(llmos_job_status_to_json(&s, &status, &err), 0);
    assert_int_equal(llmos_task_result_to_json(&c, &json, &err), 0);
    assert_non_null(strstr(status, json));
    free(status);
    free(json);
    llmos_task_result_t e = {.name = "e", .kind = LLMOS_TASK_EMBED, .state = LLMOS_TASK_DONE, .text = "",
                             .vector = vec, .n_vector = 3, .best = "", .error = "", .finish_reason = ""};
    assert_int_equal(llmos_task_result_to_json(&e, &json, &err), 0);
    assert_non_null(strstr(json, "\"vector\":[0.5,-1.25,1e-07]"));
    assert_null(strstr(json, "\"text\""));
    free(json);
    llmos_task_result_t f = {.name = "l", .kind = LLMOS_TASK_LINK, .state = LLMOS_TASK_FAILED, .text = "",
                             .facts = 0, .best = "", .error = "", .error_code = LLMOS_CLIENT_ETIMEDOUT,
                             .finish_reason = ""};
    assert_int_equal(llmos_task_result_to_json(&f, &json, &err), 0);
    assert_non_null(strstr(json, "\"facts\":0"));
    assert_non_null(strstr(json, "\"error\":\"ETIMEDOUT\",\"error_code\":\"ETIMEDOUT\""));
    free(json);
    json = (char *)&err;
    assert_int_equal(llmos_task_result_to_json(NULL, &json, &err), LLMOS_CLIENT_EINVAL);
    assert_null(json);
    assert_int_equal(llmos_task_result_to_json(&f, NULL, &err), LLMOS_CLIENT_EINVAL);
}

/* The id of a job's JSON without the rest: strings, integers, and the
 * texts that have none usable. */
static void test_json_id(void **state) {
    (void)state;
    char id[LLMOS_JOB_ID_MAX + 1], long_id[LLMOS_JOB_ID_MAX + 16], text[LLMOS_JOB_ID_MAX + 64];
    int num = -1;
    llmos_client_error_t err;
#define ID(json) llmos_job_json_id(json, strlen(json), id, sizeof id, &num, &err)
    assert_int_equal(ID("{\"id\":\"a-1\",\"kind\":\"nope\",\"tasks\":7}"), 0); /* the rest is not checked */
    assert_string_equal(id, "a-1");
    assert_int_equal(num, 0);
    assert_int_equal(ID("{\"id\":42}"), 0);
    assert_string_equal(id, "42");
    assert_int_equal(num, 1);
    assert_int_equal(ID("{\"id\":-9007199254740992}"), 0);
    assert_string_equal(id, "-9007199254740992");
    assert_int_equal(ID("{\"id\":\"\u00e9t\u00e9\"}"), 0); /* non-ASCII */
    assert_string_equal(id, "\xc3\xa9t\xc3\xa9");
    memset(long_id, 'x', LLMOS_JOB_ID_MAX);
    long_id[LLMOS_JOB_ID_MAX] = 0;
    snprintf(text, sizeof text, "{\"id\":\"%s\"}", long_id);
    assert_int_equal(ID(text), 0); /* exactly the limit */
    assert_int_equal(strlen(id), LLMOS_JOB_ID_MAX);
    snprintf(text, sizeof text, "{\"id\":\"%sy\"}", long_id);
    assert_int_equal(ID(text), LLMOS_CLIENT_EINVAL);
    assert_string_equal(id, "");
    const struct {
        const char *json;
        int rc;
        const char *msg;
    } bad[] = {
        {"{\"kind\":\"echo\"}", LLMOS_CLIENT_ENOTFOUND, "id: missing"},
        {"{\"id\":\"\"}", LLMOS_CLIENT_EINVAL, "expected a string"},
        {"{\"id\":1.5}", LLMOS_CLIENT_EINVAL, "or an integer"},
        {"{\"id\":9007199254740994}", LLMOS_CLIENT_EINVAL, "or an integer"}, /* past 2^53 */
        {"{\"id\":null}", LLMOS_CLIENT_EINVAL, "or an integer"},
        {"{\"id\":[\"a\"]}", LLMOS_CLIENT_EINVAL, "or an integer"},
        {"{\"id\":\"a\\u0000b\"}", LLMOS_CLIENT_EFORMAT, "NUL"},     /* would pass for "a" */
        {"{\"id\":\"a\",\"x\":\"\\u0000\"}", LLMOS_CLIENT_EFORMAT, "x: contains a NUL"},
        {"[\"id\"]", LLMOS_CLIENT_EFORMAT, "not a JSON object"},
        {"{\"id\":\"a\"", LLMOS_CLIENT_EFORMAT, "not a JSON object"},
        {"", LLMOS_CLIENT_EFORMAT, "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ID(bad[i].json);
        if (rc != bad[i].rc || !strstr(err.msg, bad[i].msg) || id[0])
            fail_msg("%s: rc %d '%s' (id '%s')", bad[i].json, rc, err.msg, id);
    }
#undef ID
    /* a text that is not NUL-terminated: only len bytes are read */
    assert_int_equal(llmos_job_json_id("{\"id\":7}garbage", 8, id, sizeof id, NULL, &err), 0);
    assert_string_equal(id, "7");
    assert_int_equal(llmos_job_json_id("{\"id\":7}", 8, id, LLMOS_JOB_ID_MAX, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_job_json_id(NULL, 0, id, sizeof id, NULL, &err), LLMOS_CLIENT_EINVAL);
}

/* The graph and model-actor calls without a node: bad arguments are
 * refused at once, and a node that never answers times out in time with
 * nothing returned.  (tests/graph_actor and tests/model_shard run them
 * against real nodes through the CLI.) */
static void test_graph_model_no_node(void **state) {
    (void)state;
    llmos_client_t *c;
    llmos_client_error_t err;
    assert_int_equal(llmos_client_connect("tcp://127.0.0.1:9", NULL, &c, &err), 0);
    char *out = (char *)&err;
    assert_int_equal(llmos_client_graph_query(c, NULL, NULL, 0, 200, &out, &err), LLMOS_CLIENT_EINVAL);
    assert_null(out);
    assert_int_equal(llmos_client_graph_query(c, "SELECT", NULL, 0, 200, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_query(NULL, "SELECT", NULL, 0, 200, &out, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_link(c, NULL, NULL, 200, &out, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_path(c, "a", NULL, NULL, 200, &out, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_neighbors(c, NULL, NULL, 200, &out, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_stats(c, 0, 200, NULL, &err), LLMOS_CLIENT_EINVAL);
    uint64_t facts = 7;
    uint64_t t0 = llmos_now_ns();
    assert_int_equal(llmos_client_graph_link(c, "virus", NULL, 200, &out, &facts, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_true((llmos_now_ns() - t0) / 1000000u < 2000);
    assert_null(out);
    assert_int_equal(facts, 0);
    llmos_client_walk_opts_t wo = {.dir = "out", .hops = 2};
    assert_int_equal(llmos_client_graph_neighbors(c, "x", &wo, 200, &out, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_null(out);

    llmos_client_graph_load_t *l = (llmos_client_graph_load_t *)&err;
    assert_int_equal(llmos_client_graph_load_new(NULL, NULL, &l, &err), LLMOS_CLIENT_EINVAL);
    assert_null(l);
    assert_int_equal(llmos_client_graph_load_new(c, NULL, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_load_new(c, NULL, &l, &err), 0);
    assert_int_equal(llmos_client_graph_load_send(l, 0, NULL, 0, "x", 1, 200, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_load_send(l, 0, "a.nt", 0, NULL, 1, 200, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_graph_load_path(l, 0, "", 200, &err), LLMOS_CLIENT_EINVAL);
    uint64_t got = 9;
    assert_int_equal(llmos_client_graph_load_send(l, 0, "a.nt", 0, "", 0, 200, &got, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_int_equal(got, 0);
    llmos_client_load_result_t *res = (llmos_client_load_result_t *)&err;
    assert_int_equal(llmos_client_graph_load_commit(l, 1, 200, &res, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_null(res);
    assert_int_equal(llmos_client_graph_load_commit(NULL, 1, 200, &res, &err), LLMOS_CLIENT_EINVAL);
    llmos_client_graph_load_destroy(&l);
    assert_null(l);
    llmos_client_graph_load_destroy(&l); /* NULL-safe */
    llmos_client_load_result_free(&res);
    llmos_client_load_result_free(NULL);

    llmos_client_model_stats_t *st = (llmos_client_model_stats_t *)&err;
    assert_int_equal(llmos_client_model_load(c, NULL, NULL, 200, &st, &err), LLMOS_CLIENT_EINVAL);
    assert_null(st);
    llmos_client_model_load_opts_t lo = {.tokenizer = "t.bin"};
    assert_int_equal(llmos_client_model_load(c, NULL, &lo, 200, &st, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_model_stats(c, NULL, 200, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_model_stats(NULL, NULL, 200, &st, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_client_model_unload(c, "model/1", 200, &st, &err), LLMOS_CLIENT_ETIMEDOUT);
    assert_null(st);
    llmos_client_model_stats_free(&st);
    llmos_client_model_stats_free(NULL);
    llmos_client_destroy(&c);
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
    /* each times out once, with its kind and user, at its own timeout (no
     * margin added: the SUBMIT_WAIT one at 100 ms comes first) */
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
            assert_int_equal(u == 2, got == 0);
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

/* A JSON job of n echo tasks (caller frees). */
static char *tasks_json(size_t n, int graph_last) {
    size_t cap = 64 + n * 48;
    char *s = malloc(cap), *w = s;
    assert_non_null(s);
    w += sprintf(w, "{\"id\":\"many\",\"tasks\":[");
    for (size_t i = 0; i < n; i++) {
        if (graph_last && i + 1 == n)
            w += sprintf(w, "%s{\"kind\":\"generate\",\"prompt\":\"p\",\"graph\":true}", i ? "," : "");
        else
            w += sprintf(w, "%s{\"kind\":\"echo\",\"text\":\"%zu\"}", i ? "," : "", i);
    }
    sprintf(w, "]}");
    return s;
}

/* The client takes as many tasks as the gateway (LLMOS_JOB_TASKS_MAX, which
 * actors/gateway.h uses) and says which one is too many, by its place. */
static void test_task_limit(void **state) {
    (void)state;
    assert_int_equal(LLMOS_JOB_TASKS_MAX, 1024);
    llmos_client_error_t err = {0};
    char *text = tasks_json(LLMOS_JOB_TASKS_MAX, 0);
    Llmos__SubmitRequest *r = parse(text, &err);
    if (!r) fail_msg("%d tasks refused: %s", LLMOS_JOB_TASKS_MAX, err.msg);
    assert_int_equal(r->job->n_tasks, LLMOS_JOB_TASKS_MAX);
    assert_string_equal(r->job->tasks[LLMOS_JOB_TASKS_MAX - 1]->text, "1023");
    llmos__submit_request__free_unpacked(r, NULL);
    free(text);
    text = tasks_json(LLMOS_JOB_TASKS_MAX + 1, 0);
    expect_error(text, LLMOS_CLIENT_EINVAL, "tasks[1024]: a job holds at most 1024 tasks");
    free(text);
    /* graph: true adds a link task: one too many at 1024 */
    text = tasks_json(LLMOS_JOB_TASKS_MAX, 1);
    expect_error(text, LLMOS_CLIENT_EINVAL, "tasks[1023]: a job holds at most 1024 tasks (graph: true adds");
    free(text);
    text = tasks_json(LLMOS_JOB_TASKS_MAX - 1, 1);
    r = parse(text, &err);
    if (!r) fail_msg("1022 + graph: %s", err.msg);
    assert_int_equal(r->job->n_tasks, LLMOS_JOB_TASKS_MAX);
    llmos__submit_request__free_unpacked(r, NULL);
    free(text);
    /* the builder's own message has no made-up path */
    llmos_job_t *j;
    assert_int_equal(llmos_job_new("lim", &j, &err), 0);
    llmos_task_spec_t e = {.kind = LLMOS_TASK_ECHO, .text = "x"};
    for (int i = 0; i < LLMOS_JOB_TASKS_MAX; i++)
        assert_int_equal(llmos_job_add_task(j, &e, &err), 0);
    assert_int_equal(llmos_job_add_task(j, &e, &err), LLMOS_CLIENT_EINVAL);
    assert_string_equal(err.msg, "tasks: a job holds at most 1024 tasks");
    llmos_job_destroy(&j);
}

/* A NUL (\u0000) would cut a C string: "a\u0000b" would be job "a". */
static void test_nul(void **state) {
    (void)state;
    expect_error("{\"id\":\"a\\u0000b\",\"kind\":\"echo\",\"text\":\"x\"}", LLMOS_CLIENT_EINVAL,
                 "id: contains a NUL character");
    expect_error("{\"id\":\"a\",\"tenant\":\"t\\u0000u\",\"kind\":\"echo\",\"text\":\"x\"}",
                 LLMOS_CLIENT_EINVAL, "tenant: contains a NUL");
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"\\u0000\"}", LLMOS_CLIENT_EINVAL,
                 "text: contains a NUL");
    expect_error("{\"id\":\"a\",\"tasks\":[{\"kind\":\"echo\",\"text\":\"x\"},{\"name\":\"n\\u0000\","
                 "\"kind\":\"echo\","
                 "\"text\":\"y\"}]}",
                 LLMOS_CLIENT_EINVAL, "tasks[1].name: contains a NUL");
    expect_error("{\"id\":\"a\",\"kind\":\"generate\",\"prompt\":\"x\",\"stop\":[\".\",\"\\u0000\"]}",
                 LLMOS_CLIENT_EINVAL, "stop[1]: contains a NUL");
    expect_error("{\"id\":\"a\",\"labels\":{\"k\\u0000\":\"v\"},\"kind\":\"echo\",\"text\":\"x\"}",
                 LLMOS_CLIENT_EINVAL, "labels: the name 'k': contains a NUL");
    expect_error("{\"id\\u0000\":\"a\",\"kind\":\"echo\",\"text\":\"x\"}", LLMOS_CLIENT_EINVAL,
                 "the name 'id': contains a NUL");
    /* what only looks like one: an escaped backslash, then "u0000"; and escaped quotes before */
    llmos_client_error_t err;
    Llmos__SubmitRequest *r =
        parse("{\"id\":\"a\\\\u0000b\",\"kind\":\"echo\",\"text\":\"q\\\"\\\\\"}", &err);
    if (!r) fail_msg("%s", err.msg);
    assert_string_equal(r->job->id, "a\\u0000b");
    assert_string_equal(r->job->tasks[0]->text, "q\"\\");
    llmos__submit_request__free_unpacked(r, NULL);
    /* the setters that take a length see the NUL too */
    llmos_job_t *j = NULL;
    assert_int_equal(llmos_job_new_len("a\0b", 3, &j, &err), LLMOS_CLIENT_EINVAL);
    assert_null(j);
    assert_non_null(strstr(err.msg, "job id: a NUL byte at byte 1"));
    assert_int_equal(llmos_job_new_len("abcdef", 3, &j, &err), 0); /* not NUL-terminated at len */
    assert_string_equal(llmos_job_id(j), "abc");
    assert_int_equal(llmos_job_set_id_len(j, "x\0", 2, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "job id: a NUL byte at byte 1"));
    assert_string_equal(llmos_job_id(j), "abc");
    assert_int_equal(llmos_job_set_id_len(j, "xyz", 0, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_job_set_id_len(j, "xyz", 2, &err), 0);
    assert_string_equal(llmos_job_id(j), "xy");
    assert_int_equal(llmos_job_set_tenant_len(j, "t\0u", 3, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "tenant: a NUL byte at byte 1"));
    assert_int_equal(llmos_job_set_tenant_len(j, "tu", 2, &err), 0);
    assert_int_equal(llmos_job_set_tenant(j, NULL, &err), 0);
    char big[LLMOS_JOB_ID_MAX + 1];
    memset(big, 'z', sizeof big);
    assert_int_equal(llmos_job_set_id_len(j, big, sizeof big, &err), LLMOS_CLIENT_EINVAL);
    assert_int_equal(llmos_job_set_id_len(j, big, sizeof big - 1, &err), 0);
    llmos_job_destroy(&j);
}

/* Syntax errors say where (offset, line, column) and show the text on both
 * sides; a comma before a closer is named. */
static void test_syntax_messages(void **state) {
    (void)state;
    expect_error(
        "{\"id\":\"a\",}", LLMOS_CLIENT_EFORMAT,
        "at offset 10 (line 1, column 11), after '{\"id\":\"a\",' and before '}' (JSON allows no comma "
        "before '}')");
    expect_error(
        "{\"id\":\"a\",\n}\n", LLMOS_CLIENT_EFORMAT,
        "at offset 11 (line 2, column 1), after '{\"id\":\"a\",\\n' and before '}\\n' (JSON allows no comma");
    expect_error("{\"id\":\"a\",\"kind\":\"classify\",\"text\":\"x\",\"labels\":[\"p\",\"q\",]}",
                 LLMOS_CLIENT_EFORMAT, "before ']}' (JSON allows no comma before ']')");
    /* a long line: the excerpt is cut on both sides, at whole characters */
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":"
                 "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"  \"extra\":1, \"more\":\"zzzzzzzzzzzzzzzzzzzzzzzzz\"}",
                 LLMOS_CLIENT_EFORMAT,
                 "at offset 59 (line 1, column 48), after "
                 "'...\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "\xc3\xa9\xc3\xa9\"  ' and before '\"extra\":1, \"more...'");
    expect_error("{\"id\":\"a\"", LLMOS_CLIENT_EFORMAT,
                 "at the end of the text (line 1, column 10), after '{\"id\":\"a\"'");
    expect_error("", LLMOS_CLIENT_EFORMAT, "at the end of the text (line 1, column 1)");
    expect_error("{\"id\":\"a\",\t!}", LLMOS_CLIENT_EFORMAT,
                 "(line 1, column 13), after '{\"id\":\"a\",\\t!' and before '}'");
    /* a text that ends early is not blamed on its last character; one that is wrong there is */
    expect_error("{\"id\":\"a\",\"kind\":\"echo\",\"text\":\"x\"", LLMOS_CLIENT_EFORMAT,
                 "not valid JSON at the end of the text");
    expect_error("{\"id\":\"a\"x", LLMOS_CLIENT_EFORMAT,
                 "at offset 9 (line 1, column 10), after '{\"id\":\"a\"' and before 'x'");
}

/* Endpoints: checked and their host looked up at connect, at once. */
static void test_endpoints(void **state) {
    (void)state;
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    const struct {
        const char *ep, *needle;
    } bad[] = {
        {"127.0.0.1:7070", "is not tcp://HOST:PORT"},
        {"tcp://127.0.0.1", "is not tcp://HOST:PORT"},
        {"tcp://:7070", "is not tcp://HOST:PORT"},
        {"tcp://127.0.0.1:0", "port '0' is not a number from 1 to 65535"},
        {"tcp://127.0.0.1:65536", "port '65536'"},
        {"tcp://127.0.0.1:-1", "port '-1'"},
        {"tcp://127.0.0.1:", "port ''"},
        {"tcp://127.0.0.1:70x", "port '70x'"},
        {"tcp://*:7070", "'*' is for listening"},
        {"tcp://[]:7070", "names no host"},
        /* glibc refuses this name without asking DNS: no traffic leaves the machine */
        {"tcp://no-such-host!invalid:7070", "no host named 'no-such-host!invalid'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t t0 = llmos_now_ns();
        int rc = llmos_client_connect(bad[i].ep, NULL, &c, &err);
        uint64_t ms = (llmos_now_ns() - t0) / 1000000;
        if (rc != LLMOS_CLIENT_EINVAL || !strstr(err.msg, bad[i].needle))
            fail_msg("%s: rc %d '%s', expected EINVAL and '%s'", bad[i].ep, rc, err.msg, bad[i].needle);
        assert_null(c);
        assert_true(ms < 1000);
    }
    assert_int_equal(llmos_client_connect(NULL, NULL, &c, &err), LLMOS_CLIENT_EINVAL);
    const char *good[] = {"tcp://127.0.0.1:9", "tcp://localhost:9", "tcp://[::1]:9",
                          "tcp://127.0.0.1;127.0.0.1:9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (llmos_client_connect(good[i], NULL, &c, &err) != 0) fail_msg("%s: %s", good[i], err.msg);
        llmos_client_destroy(&c);
    }
}

/* A node that never answers: the waiting calls return ETIMEDOUT, with no
 * status and a message naming the endpoint, within their timeout (the
 * node-side wait is shorter; nothing is added on top). */
static void test_timeouts_respected(void **state) {
    (void)state;
    llmos_client_t *c;
    llmos_client_error_t err;
    assert_int_equal(llmos_client_connect("tcp://127.0.0.1:9", NULL, &c, &err), 0);
    llmos_job_t *j;
    assert_int_equal(
        llmos_job_from_json("{\"id\":\"x\",\"kind\":\"echo\",\"text\":\"x\"}", 35, NULL, &j, &err), 0);
    for (int call = 0; call < 4; call++) {
        llmos_job_status_t *st = (llmos_job_status_t *)&err;
        uint64_t t0 = llmos_now_ns();
        int rc = call == 0   ? llmos_client_submit_wait(c, j, 400, &st, &err)
                 : call == 1 ? llmos_client_submit_stream(c, j, 400, NULL, NULL, &st, &err)
                 : call == 2 ? llmos_client_wait(c, "x", 400, &st, &err)
                             : llmos_client_stream(c, "x", 400, NULL, NULL, &st, &err);
        uint64_t ms = (llmos_now_ns() - t0) / 1000000;
        assert_int_equal(rc, LLMOS_CLIENT_ETIMEDOUT);
        assert_null(st);
        assert_non_null(strstr(err.msg, "tcp://127.0.0.1:9"));
        if (ms < 390 || ms > 900)
            fail_msg("call %d: ETIMEDOUT after %llu ms for a 400 ms timeout", call, (unsigned long long)ms);
    }
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_forms),
        cmocka_unit_test(test_full_form),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_task_result_json),
        cmocka_unit_test(test_json_id),
        cmocka_unit_test(test_graph_model_no_node),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_no_node),
        cmocka_unit_test(test_async_no_node),
        cmocka_unit_test(test_task_limit),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_syntax_messages),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_timeouts_respected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
