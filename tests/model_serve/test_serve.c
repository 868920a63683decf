/*
 * test_serve.c — the serving core (model/serve.h) in-process on the real
 * stories260K model, with a fake clock: no actor, no socket, no MPI, no
 * sleep.  Events are collected per request tag and checked against the
 * llama2.c reference text, against the engine run directly (embeddings,
 * label scores, a classifier head) and against the same requests run
 * alone.  Also: the iteration plan (decode rows first, prefill chunks under
 * the token budget), admission (queue limit, KV reservation), deadlines,
 * cancel, times, every request field's edge values, the plan's wire form
 * (round trip and every malformation) and a follower replaying a leader's
 * plans bit for bit.
 */
#include "model/serve.h"
#include "runtime/base/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the includes above
#include <cmocka.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static model_t *M;
static char model_path[PATH_MAX], tok_path[PATH_MAX];

/* ---------------------------------------------------------------- events */

#define MAX_TAGS 64

typedef struct rec {
    int done, failed, status, chunks;
    serve_kind_t kind;
    char msg[LLMOS_ERRMSG_MAX];
    char text[8192], stream[8192];
    size_t slen;
    int tokens[1024], n_tokens, stream_tokens, prompt_tokens;
    char finish[16];
    uint64_t ttft, total, queued;
    float vec[1024];
    int dim, vtokens;
    int n_labels, best;
    float lp[SERVE_MAX_LABELS], pr[SERVE_MAX_LABELS];
    double probs[64];
    int n_classes, top_k;
} rec_t;

static rec_t recs[MAX_TAGS];

#define TAG(i) ((void *)(intptr_t)((i) + 1))

static void sink(void *arg, const serve_event_t *ev) {
    (void)arg;
    intptr_t id = (intptr_t)ev->tag - 1;
    assert_true(id >= 0 && id < MAX_TAGS);
    rec_t *r = &recs[id];
    assert_false(r->done || r->failed); /* nothing after the last event */
    r->kind = ev->kind;
    switch (ev->type) {
    case SERVE_EV_CHUNK:
        assert_int_equal(ev->u.chunk.index, (uint32_t)r->chunks);
        assert_int_equal(strlen(ev->u.chunk.text), ev->u.chunk.len);
        assert_true(r->slen + ev->u.chunk.len < sizeof r->stream);
        memcpy(r->stream + r->slen, ev->u.chunk.text, ev->u.chunk.len + 1);
        r->slen += ev->u.chunk.len;
        r->stream_tokens += ev->u.chunk.n_tokens;
        r->chunks++;
        return;
    case SERVE_EV_FAILED:
        r->failed = 1;
        r->status = ev->u.failed.status;
        snprintf(r->msg, sizeof r->msg, "%s", ev->u.failed.message);
        return;
    case SERVE_EV_DONE: r->done = 1; break;
    }
    if (ev->kind == SERVE_GENERATE) {
        assert_true(ev->u.generated.len < sizeof r->text);
        memcpy(r->text, ev->u.generated.text, ev->u.generated.len + 1);
        assert_int_equal(strlen(r->text), ev->u.generated.len);
        r->n_tokens = ev->u.generated.n_tokens;
        memcpy(r->tokens, ev->u.generated.tokens, sizeof(int) * (size_t)r->n_tokens);
        r->prompt_tokens = ev->u.generated.prompt_tokens;
        snprintf(r->finish, sizeof r->finish, "%s", ev->u.generated.finish_reason);
        r->ttft = ev->u.generated.ttft_us;
        r->total = ev->u.generated.total_us;
        r->queued = ev->u.generated.queued_us;
    } else if (ev->kind == SERVE_EMBED) {
        r->dim = ev->u.embedded.dim;
        r->vtokens = ev->u.embedded.tokens;
        memcpy(r->vec, ev->u.embedded.vector, sizeof(float) * (size_t)r->dim);
    } else if (ev->kind == SERVE_SCORE) {
        r->n_labels = ev->u.scored.n;
        r->best = ev->u.scored.best;
        memcpy(r->lp, ev->u.scored.log_probs, sizeof(float) * (size_t)r->n_labels);
        memcpy(r->pr, ev->u.scored.probs, sizeof(float) * (size_t)r->n_labels);
    } else {
        r->n_classes = ev->u.classified.n_classes;
        r->top_k = ev->u.classified.top_k;
        memcpy(r->probs, ev->u.classified.probs, sizeof(double) * (size_t)r->n_classes);
    }
}

static int reset(void **state) {
    (void)state;
    memset(recs, 0, sizeof recs);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static serve_t *core(const serve_opts_t *o_in) {
    serve_opts_t o = o_in ? *o_in : (serve_opts_t){0};
    o.sink = sink;
    serve_t *s = NULL;
    llmos_error_t err = {0};
    int rc = serve_new(M, &o, &s, &err);
    if (rc) fprintf(stderr, "serve_new: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return s;
}

static serve_time_t T(uint64_t ms) {
    return (serve_time_t){.ns = ms * 1000000ull, .wall_ms = 1000000 + ms};
}

/* Runs iterations until nothing is left (at most `max`), one fake ms each
 * from *clock_ms; returns the iterations run. */
static int drain(serve_t *s, uint64_t *clock_ms, int max) {
    llmos_error_t err = {0};
    int it = 0;
    while (serve_busy(s) && it < max) {
        if (serve_step_begin(s, T(*clock_ms)) == 0) {
            (*clock_ms)++;
            continue;
        }
        assert_int_equal(serve_step_forward(s, &err), 0);
        (*clock_ms)++;
        serve_step_end(s, T(*clock_ms));
        it++;
    }
    assert_false(serve_busy(s));
    return it;
}

static int submit(serve_t *s, const serve_request_t *rq, int tag, uint64_t ms, llmos_error_t *err) {
    memset(err, 0, sizeof *err);
    return serve_submit(s, rq, TAG(tag), T(ms), err);
}

static void submit_ok(serve_t *s, const serve_request_t *rq, int tag, uint64_t ms) {
    llmos_error_t err;
    int rc = submit(s, rq, tag, ms, &err);
    if (rc) fprintf(stderr, "submit %d: %s\n", tag, err.msg);
    assert_int_equal(rc, 0);
}

/* The request must be refused with code, the message holding what. */
static void refused(serve_t *s, const serve_request_t *rq, int code, const char *what) {
    llmos_error_t err;
    int rc = submit(s, rq, MAX_TAGS - 1, 0, &err);
    if (rc != code || !strstr(err.msg, what))
        fprintf(stderr, "wanted %d '%s', got %d '%s'\n", code, what, rc, err.msg);
    assert_int_equal(rc, code);
    assert_non_null(strstr(err.msg, what));
    assert_true(strncmp(err.msg, "model: ", 7) == 0 || code == LLMOS_EOVERLOADED);
    assert_false(recs[MAX_TAGS - 1].done || recs[MAX_TAGS - 1].failed); /* no event for a refused request */
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static int tokens_of(const char *text, int *out, int cap) {
    int n = 0;
    llmos_error_t err;
    assert_int_equal(model_tokenize(model_tokenizer(M), text, strlen(text), 1, 0, out, cap, &n, &err), 0);
    return n;
}

/* ---------------------------------------------------------------- generation */

/* Greedy text equals llama2.c's reference, streamed chunks concatenate to
 * it, and the counters say what ran. */
static void test_greedy_reference(void **state) {
    (void)state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/stories260K.greedy.txt", getenv("LLMOS_MODELS"));
    char *want = slurp(path);
    size_t wl = strlen(want);
    assert_true(wl > 0 && want[wl - 1] == '\n');
    want[wl - 1] = 0; /* llmos-generate ends with a newline after the text */
    serve_t *s = core(NULL);
    serve_request_t rq = {.kind = SERVE_GENERATE, .max_positions = 200, .echo = true, .stream = true};
    submit_ok(s, &rq, 0, 0);
    uint64_t clock = 0;
    int it = drain(s, &clock, 1000);
    assert_true(recs[0].done);
    assert_string_equal(recs[0].text, want);
    assert_string_equal(recs[0].stream, want);
    assert_int_equal(recs[0].stream_tokens, recs[0].n_tokens);
    assert_string_equal(recs[0].finish, "length");
    assert_int_equal(recs[0].prompt_tokens, 1);
    assert_int_equal(recs[0].n_tokens, 200);
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.requests_done, 1);
    assert_int_equal(st.tokens_generated, 200);
    assert_int_equal(st.iterations, (uint64_t)it);
    assert_int_equal(st.prompt_tokens, 1);
    assert_int_equal(st.kv_used, 0);
    assert_int_equal(st.kv_reserved, 0);
    serve_destroy(&s);
    assert_null(s);
}

/* Several requests batched together each get exactly what they get alone:
 * different prompts, lengths, temperatures, top-k/top-p, penalties, seeds. */
static void test_batch_equals_solo(void **state) {
    (void)state;
    static const char *prompts[] = {"Once upon a time", "", "Lily and Tom", "The cat sat", "A big red ball",
                                    "One day, a little"};
    serve_sampling_t sp[6] = {
        {.temperature = 0},
        {.temperature = 0.9f, .top_p = 0.9f, .repetition_penalty = 1, .seed = 7},
        {.temperature = 1.0f, .top_k = 20, .top_p = 1, .repetition_penalty = 1.2f, .seed = 3},
        {.temperature = 0.5f, .top_k = 5, .top_p = 0.5f, .repetition_penalty = 1, .seed = 11},
        {.temperature = 0},
        {.temperature = 1.2f, .top_p = 0.95f, .repetition_penalty = 1, .seed = 99}};
    uint32_t max_tokens[6] = {40, 60, 25, 80, 1, 33};
    serve_opts_t o = {.max_seqs = 4, .token_budget = 16};
    serve_t *s = core(&o);
    for (int i = 0; i < 6; i++) {
        serve_request_t rq = {.kind = SERVE_GENERATE,
                              .text = prompts[i],
                              .sampling = &sp[i],
                              .max_tokens = max_tokens[i],
                              .echo = i % 2,
                              .stream = i % 3 == 0};
        submit_ok(s, &rq, i, 0);
    }
    uint64_t clock = 0;
    drain(s, &clock, 5000);
    rec_t together[6];
    memcpy(together, recs, sizeof together);
    serve_destroy(&s);
    for (int i = 0; i < 6; i++) {
        memset(recs, 0, sizeof recs);
        s = core(NULL);
        serve_request_t rq = {.kind = SERVE_GENERATE,
                              .text = prompts[i],
                              .sampling = &sp[i],
                              .max_tokens = max_tokens[i],
                              .echo = i % 2};
        submit_ok(s, &rq, 0, 0);
        drain(s, &clock, 5000);
        assert_true(together[i].done && recs[0].done);
        assert_string_equal(together[i].text, recs[0].text);
        assert_int_equal(together[i].n_tokens, recs[0].n_tokens);
        assert_memory_equal(together[i].tokens, recs[0].tokens, sizeof(int) * (size_t)recs[0].n_tokens);
        if (i % 3 == 0) assert_string_equal(together[i].stream, together[i].text);
        serve_destroy(&s);
    }
}

/* Stop strings end the text before them; EOS and length are reported. */
static void test_stop_and_finish(void **state) {
    (void)state;
    serve_t *s = core(NULL);
    const char *stops[] = {"Lily", "zzz"};
    serve_request_t rq = {
        .kind = SERVE_GENERATE, .max_positions = 200, .stops = stops, .n_stops = 2, .stream = true};
    submit_ok(s, &rq, 0, 0);
    uint64_t clock = 0;
    drain(s, &clock, 1000);
    assert_true(recs[0].done);
    assert_string_equal(recs[0].finish, "stop");
    assert_null(strstr(recs[0].text, "Lily"));
    assert_string_equal(recs[0].stream, recs[0].text); /* held-back bytes never streamed */
    serve_destroy(&s);
}

/* ---------------------------------------------------------------- the plan */

/* Decode rows first, then prefill chunks in admission order, within the
 * token budget; a long prompt takes several iterations. */
static void test_plan_budget(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 4, .token_budget = 16};
    serve_t *s = core(&o);
    int32_t a[40], b[5];
    for (int i = 0; i < 40; i++)
        a[i] = 1 + i % 300;
    for (int i = 0; i < 5; i++)
        b[i] = 7 + i;
    serve_request_t ra = {.kind = SERVE_GENERATE, .prompt_tokens = a, .n_prompt_tokens = 40, .max_tokens = 3};
    serve_request_t rb = {.kind = SERVE_GENERATE, .prompt_tokens = b, .n_prompt_tokens = 5, .max_tokens = 3};
    submit_ok(s, &ra, 0, 0);
    submit_ok(s, &rb, 1, 0);
    llmos_error_t err;
    struct {
        int n;
        int tag[4], rows[4];
    } want[] = {
        {1, {0}, {16}}, {1, {0}, {16}}, {2, {0, 1}, {8, 5}}, {2, {0, 1}, {1, 1}}, {2, {0, 1}, {1, 1}}};
    for (size_t it = 0; it < sizeof want / sizeof want[0]; it++) {
        int n = serve_step_begin(s, T(it));
        assert_int_equal(n, want[it].n);
        const serve_plan_t *p = serve_step_plan(s);
        int sum = 0;
        for (int i = 0; i < n; i++) {
            assert_ptr_equal(serve_step_tag(s, i), TAG(want[it].tag[i]));
            assert_int_equal(p->entries[i].n_tokens, want[it].rows[i]);
            assert_int_equal(p->want[i], 0);
            sum += p->entries[i].n_tokens;
        }
        assert_int_equal(p->n_tokens, sum);
        assert_true(sum <= 16);
        assert_null(serve_step_tag(s, n));
        assert_int_equal(serve_step_forward(s, &err), 0);
        serve_step_end(s, T(it));
    }
    uint64_t clock = 10;
    drain(s, &clock, 100);
    assert_true(recs[0].done && recs[1].done);
    assert_int_equal(recs[0].n_tokens, 3);
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.prompt_tokens, 45);
    serve_destroy(&s);
}

/* A mean-pooled embed keeps every row of its chunks (want), a decode row
 * never; the budget is at least max_seqs. */
static void test_plan_want_rows(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 8, .token_budget = 3};
    serve_opts_resolve(&o);
    assert_int_equal(o.token_budget, 8);
    serve_t *s = core(&(serve_opts_t){.max_seqs = 2, .token_budget = 64});
    serve_request_t e = {.kind = SERVE_EMBED, .text = "a long enough text to pool"};
    serve_request_t l = {.kind = SERVE_EMBED, .text = "the last row only", .pooling = "last"};
    submit_ok(s, &e, 0, 0);
    submit_ok(s, &l, 1, 0);
    assert_int_equal(serve_step_begin(s, T(0)), 2);
    assert_int_equal(serve_step_plan(s)->want[0], 1);
    assert_int_equal(serve_step_plan(s)->want[1], 0);
    llmos_error_t err;
    assert_int_equal(serve_step_forward(s, &err), 0);
    serve_step_end(s, T(1));
    assert_true(recs[0].done && recs[1].done);
    serve_destroy(&s);
}

/* ---------------------------------------------------------------- admission */

/* Past queue_limit requests that would really wait are refused with the
 * retry hint; those free slots will start do not count. */
static void test_queue_limit(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 1, .queue_limit = 2};
    serve_t *s = core(&o);
    serve_request_t rq = {.kind = SERVE_GENERATE, .text = "x", .max_tokens = 2};
    for (int i = 0; i < 3; i++)
        submit_ok(s, &rq, i, 0);
    refused(s, &rq, LLMOS_EOVERLOADED,
            "overloaded: queue full (3 waiting, limit 2, 0 running), retry after 401 ms");
    llmos_error_t err;
    assert_int_equal(serve_check_admission(s, &err), LLMOS_EOVERLOADED);
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.rejected_overloaded, 2);
    assert_int_equal(st.queued, 3);
    uint64_t clock = 0;
    drain(s, &clock, 100);
    for (int i = 0; i < 3; i++)
        assert_true(recs[i].done);
    assert_int_equal(serve_check_admission(s, &err), 0);
    serve_destroy(&s);
}

/* A request's worst-case blocks are reserved at admission: the second
 * waits until the first is done; one larger than the pool is refused. */
static void test_kv_reservation(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 4, .kv_blocks = 4};
    serve_t *s = core(&o);
    serve_request_t big = {.kind = SERVE_GENERATE, .text = "x", .max_tokens = 100};
    refused(s, &big, LLMOS_ETOOBIG, "the request needs 7 KV blocks, the pool has 4");
    serve_request_t rq = {
        .kind = SERVE_GENERATE, .text = "x", .max_tokens = 40}; /* 3 tokens + 40: 3 blocks */
    submit_ok(s, &rq, 0, 0);
    submit_ok(s, &rq, 1, 0);
    assert_int_equal(serve_step_begin(s, T(0)), 1);
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.kv_reserved, 3);
    assert_int_equal(st.kv_total, 4);
    llmos_error_t err;
    assert_int_equal(serve_step_forward(s, &err), 0);
    serve_step_end(s, T(1));
    uint64_t clock = 2;
    drain(s, &clock, 200);
    assert_true(recs[0].done && recs[1].done);
    assert_string_equal(recs[0].text, recs[1].text);
    assert_true(recs[1].queued > 0); /* it waited for the first one's blocks */
    serve_stats(s, &st);
    assert_int_equal(st.kv_used, 0);
    assert_int_equal(st.kv_reserved, 0);
    serve_destroy(&s);
}

/* ---------------------------------------------------------------- time */

/* Times come from the clock passed in: queued from arrival to admission,
 * the first token from the end of its forward. */
static void test_fake_clock_times(void **state) {
    (void)state;
    serve_t *s = core(NULL);
    serve_request_t rq = {.kind = SERVE_GENERATE, .text = "Once", .max_tokens = 2};
    submit_ok(s, &rq, 0, 1);
    llmos_error_t err;
    assert_true(serve_step_begin(s, T(4)) > 0); /* admitted at 4 ms */
    assert_int_equal(serve_step_forward(s, &err), 0);
    serve_step_end(s, T(9)); /* first token at 9 ms */
    assert_true(serve_step_begin(s, T(10)) > 0);
    assert_int_equal(serve_step_forward(s, &err), 0);
    serve_step_end(s, T(21)); /* done at 21 ms */
    assert_true(recs[0].done);
    assert_int_equal(recs[0].queued, 3000);
    assert_int_equal(recs[0].ttft, 8000);
    assert_int_equal(recs[0].total, 20000);
    serve_stats_t st;
    serve_stats(s, &st);
    assert_true(fabs(st.avg_request_ms - 20.0) < 1e-9);
    serve_destroy(&s);
}

/* Deadlines (wall clock) expire queued and running requests. */
static void test_deadlines(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 1};
    serve_t *s = core(&o);
    uint64_t wall0 = T(0).wall_ms;
    serve_request_t run = {
        .kind = SERVE_GENERATE, .text = "Once upon a time", .max_tokens = 50, .deadline_ms = wall0 + 5};
    serve_request_t wait = {.kind = SERVE_GENERATE, .text = "y", .max_tokens = 50, .deadline_ms = wall0 + 3};
    serve_request_t none = {.kind = SERVE_GENERATE, .text = "z", .max_tokens = 2};
    submit_ok(s, &run, 0, 0);
    submit_ok(s, &wait, 1, 0);
    submit_ok(s, &none, 2, 0);
    llmos_error_t err;
    for (uint64_t ms = 0; ms <= 5; ms++) { /* deadline_ms itself is not past */
        assert_true(serve_step_begin(s, T(ms)) > 0);
        assert_int_equal(serve_step_forward(s, &err), 0);
        serve_step_end(s, T(ms));
    }
    assert_true(recs[1].failed);
    assert_int_equal(recs[1].status, LLMOS_ETIMEDOUT);
    assert_non_null(strstr(recs[1].msg, "model: deadline passed while queued"));
    assert_false(recs[0].failed || recs[0].done);
    serve_step_begin(s, T(6));
    assert_true(recs[0].failed);
    assert_int_equal(recs[0].status, LLMOS_ETIMEDOUT);
    assert_non_null(strstr(recs[0].msg, "model: deadline passed after 6 generated tokens"));
    uint64_t clock = 7;
    serve_step_forward(s, &err);
    serve_step_end(s, T(7));
    drain(s, &clock, 100);
    assert_true(recs[2].done);
    serve_destroy(&s);
}

/* ---------------------------------------------------------------- cancel, fail */

static void test_cancel(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 1};
    serve_t *s = core(&o);
    serve_request_t a = {.kind = SERVE_GENERATE, .text = "x", .max_tokens = 100, .corr = 7, .origin = 1};
    serve_request_t b = {.kind = SERVE_GENERATE, .text = "y", .max_tokens = 100, .request_id = "job-é"};
    submit_ok(s, &a, 0, 0);
    submit_ok(s, &b, 1, 0);
    llmos_error_t err;
    assert_true(serve_step_begin(s, T(0)) > 0);
    assert_int_equal(serve_step_forward(s, &err), 0);
    serve_step_end(s, T(0));
    assert_false(serve_cancel(s, 7, 2, NULL)); /* another node's 7 */
    assert_false(serve_cancel(s, 0, 1, ""));   /* nothing to match */
    assert_false(serve_cancel(s, 0, 0, "job-e"));
    assert_true(serve_cancel(s, 7, 1, NULL)); /* running */
    assert_true(recs[0].failed);
    assert_int_equal(recs[0].status, LLMOS_ECANCELED);
    assert_string_equal(recs[0].msg, "model: cancelled after 1 generated tokens");
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.kv_used, 0);
    assert_int_equal(st.kv_reserved, 0);
    assert_true(serve_cancel(s, 0, 0, "job-é")); /* queued */
    assert_true(recs[1].failed);
    assert_false(serve_busy(s));
    assert_false(serve_cancel(s, 7, 1, NULL));
    serve_destroy(&s);
}

/* fail_all answers everything; destroy drops what is left (no leak). */
static void test_fail_all_and_destroy(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 2};
    serve_t *s = core(&o);
    serve_request_t rq = {.kind = SERVE_GENERATE, .text = "x", .max_tokens = 100};
    for (int i = 0; i < 4; i++)
        submit_ok(s, &rq, i, 0);
    llmos_error_t err;
    assert_true(serve_step_begin(s, T(0)) > 0);
    assert_int_equal(serve_step_forward(s, &err), 0);
    serve_step_end(s, T(0));
    serve_fail_all(s, LLMOS_EUNAVAILABLE, "model: the node is shutting down");
    for (int i = 0; i < 4; i++) {
        assert_true(recs[i].failed);
        assert_int_equal(recs[i].status, LLMOS_EUNAVAILABLE);
        assert_string_equal(recs[i].msg, "model: the node is shutting down");
    }
    assert_false(serve_busy(s));
    for (int i = 4; i < 8; i++)
        submit_ok(s, &rq, i, 0);
    assert_true(serve_step_begin(s, T(1)) > 0);
    serve_destroy(&s); /* two running, two queued: freed without events */
    for (int i = 4; i < 8; i++)
        assert_false(recs[i].done || recs[i].failed);
}

/* ---------------------------------------------------------------- embed, score, classify */

/* The final-norm hidden states of text's rows, in one forward. */
static int hidden_rows(const char *text, float *rows, int cap_rows) {
    int toks[512], n = tokens_of(text, toks, 512);
    assert_true(n <= cap_rows);
    model_ctx_t *c;
    llmos_error_t err;
    assert_int_equal(
        model_ctx_new(M, &(model_ctx_opts_t){.threads = 1, .max_seqs = 1, .max_tokens = n}, &c, &err), 0);
    int seq;
    assert_int_equal(model_seq_open(c, &seq, &err), 0);
    model_batch_entry_t e = {seq, toks, n};
    uint8_t want = 1;
    assert_int_equal(model_ctx_forward_rows(c, &e, 1, &want, &err), 0);
    int D = model_config(M)->dim;
    for (int j = 0; j < n; j++)
        memcpy(rows + (size_t)j * D, model_ctx_hidden_row(c, 0, j), sizeof(float) * (size_t)D);
    model_ctx_destroy(&c);
    return n;
}

/* Mean pooling over chunks of the budget equals the mean of the rows of
 * one forward; last pooling is the last row. */
static void test_embed(void **state) {
    (void)state;
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
    static float rows[512 * 64];
    int D = model_config(M)->dim, n = hidden_rows(text, rows, 512);
    assert_true(n > 16);
    serve_t *s = core(&(serve_opts_t){.max_seqs = 2, .token_budget = 8});
    submit_ok(s, &(serve_request_t){.kind = SERVE_EMBED, .text = text}, 0, 0);
    submit_ok(s, &(serve_request_t){.kind = SERVE_EMBED, .text = text, .pooling = "last"}, 1, 0);
    uint64_t clock = 0;
    int it = drain(s, &clock, 100);
    assert_true(it >= (2 * n + 7) / 8);
    assert_true(recs[0].done && recs[1].done);
    assert_int_equal(recs[0].dim, D);
    assert_int_equal(recs[0].vtokens, n);
    for (int d = 0; d < D; d++) {
        double mean = 0;
        for (int j = 0; j < n; j++)
            mean += rows[(size_t)j * D + d];
        mean /= n;
        assert_true(fabs(recs[0].vec[d] - mean) < 1e-4);
        assert_true(fabs(recs[1].vec[d] - rows[(size_t)(n - 1) * D + d]) < 1e-4);
    }
    serve_destroy(&s);
}

/* log p(tokens of prompt + label from position k on), the engine run over
 * them in one forward with every row's logits. */
static double label_logprob(const char *prompt, const char *label, int k) {
    char full[1024];
    snprintf(full, sizeof full, "%s%s", prompt, label);
    int ft[512], nf = tokens_of(full, ft, 512);
    model_ctx_t *c;
    llmos_error_t err;
    assert_int_equal(
        model_ctx_new(M, &(model_ctx_opts_t){.threads = 1, .max_seqs = 1, .max_tokens = nf, .all_logits = 1},
                      &c, &err),
        0);
    int seq;
    assert_int_equal(model_seq_open(c, &seq, &err), 0);
    model_batch_entry_t e = {seq, ft, nf};
    assert_int_equal(model_ctx_forward(c, &e, 1, &err), 0);
    int V = model_config(M)->vocab_size;
    double lp = 0;
    for (int t = k; t < nf; t++) {
        const float *lg = model_ctx_logits(c, t - 1);
        double mx = lg[0], sum = 0;
        for (int v = 1; v < V; v++)
            mx = lg[v] > mx ? lg[v] : mx;
        for (int v = 0; v < V; v++)
            sum += exp(lg[v] - mx);
        lp += lg[ft[t]] - mx - log(sum);
    }
    model_ctx_destroy(&c);
    return lp;
}

static void test_score(void **state) {
    (void)state;
    const char *prompt = "Once upon a", *labels[] = {" time", " day, a cat", "\xc3\xa9t\xc3\xa9", "x"};
    serve_t *s = core(&(serve_opts_t){.max_seqs = 2});
    submit_ok(s, &(serve_request_t){.kind = SERVE_SCORE, .text = prompt, .labels = labels, .n_labels = 4}, 0,
              0);
    uint64_t clock = 0;
    drain(s, &clock, 200);
    assert_true(recs[0].done);
    assert_int_equal(recs[0].n_labels, 4);
    /* Every label is scored from the prefix all of them share with the
     * prompt's tokens (a label may merge with the prompt's last token). */
    int pt[512], np = tokens_of(prompt, pt, 512), shared = np;
    for (int i = 0; i < 4; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s%s", prompt, labels[i]);
        int ft[512], nf = tokens_of(full, ft, 512), k = 0;
        while (k < np && k < nf && pt[k] == ft[k])
            k++;
        shared = k < shared ? k : shared;
    }
    double psum = 0;
    for (int i = 0; i < 4; i++) {
        double want = label_logprob(prompt, labels[i], shared);
        assert_true(fabs(recs[0].lp[i] - want) < 1e-3 * (1 + fabs(want)));
        assert_true(recs[0].lp[i] <= recs[0].lp[recs[0].best]);
        psum += recs[0].pr[i];
    }
    assert_true(fabs(psum - 1) < 1e-5);
    assert_int_equal(recs[0].best, 0); /* " time" */
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.kv_used, 0);
    serve_destroy(&s);
}

/* A hand-made head: the probabilities are its softmax over the mean (or
 * last) hidden state of the text cut at its training length. */
static void test_classify(void **state) {
    (void)state;
    int D = model_config(M)->dim, C = 3;
    float w[3 * 64], b[3] = {0.1f, -0.2f, 0.05f};
    assert_int_equal(D, 64);
    for (int i = 0; i < C * D; i++)
        w[i] = (float)sin(0.37 * i) * 0.5f;
    char *labels[3] = {"greeting", "question", "\xe2\x9c\x93"};
    serve_cls_t head = {.dir = "hand-made",
                        .n_classes = C,
                        .dim = D,
                        .labels = labels,
                        .w = w,
                        .b = b,
                        .pool_last = false,
                        .seq = 6,
                        .mode = "head"};
    const char *text = "Once upon a time there was a dog";
    serve_t *s = core(&(serve_opts_t){.cls = &head});
    assert_ptr_equal(serve_cls(s), &head);
    submit_ok(s, &(serve_request_t){.kind = SERVE_SCORE, .text = text, .top_k = 2}, 0, 0);
    submit_ok(s, &(serve_request_t){.kind = SERVE_SCORE, .text = text, .top_k = 99}, 1, 0);
    refused(s, &(serve_request_t){.kind = SERVE_SCORE, .text = ""}, LLMOS_EINVAL,
            "classify: the text is empty");
    uint64_t clock = 0;
    drain(s, &clock, 100);
    assert_true(recs[0].done);
    assert_int_equal(recs[0].kind, SERVE_CLASSIFY);
    assert_int_equal(recs[0].top_k, 2);
    assert_int_equal(recs[1].top_k, 3);
    static float rows[512 * 64];
    hidden_rows(text, rows, 512);
    double z[3], mx = -1e300, sum = 0;
    for (int k = 0; k < C; k++) {
        z[k] = b[k];
        for (int d = 0; d < D; d++) {
            double mean = 0;
            for (int j = 0; j < 6; j++)
                mean += rows[(size_t)j * D + d]; /* cut at seq 6 */
            z[k] += (double)w[k * D + d] * (mean / 6);
        }
        mx = z[k] > mx ? z[k] : mx;
    }
    for (int k = 0; k < C; k++)
        sum += exp(z[k] - mx);
    for (int k = 0; k < C; k++)
        assert_true(fabs(recs[0].probs[k] - exp(z[k] - mx) / sum) < 1e-4);
    serve_destroy(&s);
    /* A head of another width is refused. */
    head.dim = 32;
    serve_t *bad = NULL;
    llmos_error_t err;
    assert_int_equal(serve_new(M, &(serve_opts_t){.cls = &head, .sink = sink}, &bad, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "classifier hand-made: its head takes 32 values, the model's dim is 64"));
    assert_null(bad);
}

/* ---------------------------------------------------------------- edges */

static void test_request_edges(void **state) {
    (void)state;
    serve_t *s = core(&(serve_opts_t){.max_seqs = 2});
    int V = model_config(M)->vocab_size, L = model_config(M)->seq_len;
    serve_sampling_t sp;
#define SAMPLING(...) (sp = (serve_sampling_t){__VA_ARGS__}, &sp)
    serve_request_t g = {.kind = SERVE_GENERATE, .text = "x"};
    g.sampling = SAMPLING(.temperature = -1);
    refused(s, &g, LLMOS_EINVAL, "sampling.temperature: -1 is not in [0, 100]");
    g.sampling = SAMPLING(.temperature = 101);
    refused(s, &g, LLMOS_EINVAL, "sampling.temperature");
    g.sampling = SAMPLING(.temperature = NAN);
    refused(s, &g, LLMOS_EINVAL, "sampling.temperature: nan");
    g.sampling = SAMPLING(.top_p = 2);
    refused(s, &g, LLMOS_EINVAL, "sampling.top_p: 2 is not in [0, 1]");
    g.sampling = SAMPLING(.top_p = -0.5f);
    refused(s, &g, LLMOS_EINVAL, "sampling.top_p");
    g.sampling = SAMPLING(.repetition_penalty = 1000);
    refused(s, &g, LLMOS_EINVAL, "sampling.repetition_penalty");
    g.sampling = SAMPLING(.top_k = UINT32_MAX, .seed = UINT64_MAX, .temperature = 1); /* clamped, fine */
    submit_ok(s, &g, 0, 0);
    g.sampling = NULL;
    const char *stops[17];
    for (int i = 0; i < 17; i++)
        stops[i] = "a";
    g.stops = stops;
    g.n_stops = 17;
    refused(s, &g, LLMOS_EINVAL, "stop: 17 strings, at most 16");
    stops[3] = "";
    g.n_stops = 5;
    refused(s, &g, LLMOS_EINVAL, "stop[3]: 0 bytes (1..256 allowed)");
    static char longs[SERVE_MAX_TEXT_BYTES + 2];
    memset(longs, 'a', 257);
    longs[257] = 0;
    stops[3] = longs;
    refused(s, &g, LLMOS_EINVAL, "stop[3]: 257 bytes");
    g.n_stops = 0;
    memset(longs, 'r', 1025);
    longs[1025] = 0;
    g.request_id = longs;
    refused(s, &g, LLMOS_EINVAL, "request_id: 1025 bytes, at most 1024");
    g.request_id = NULL;
    int32_t toks[600];
    for (int i = 0; i < 600; i++)
        toks[i] = 5;
    g.prompt_tokens = toks;
    g.n_prompt_tokens = 3;
    toks[1] = -1;
    refused(s, &g, LLMOS_EINVAL, "prompt_tokens[1]: -1 is not a token id (vocab 512)");
    toks[1] = V;
    refused(s, &g, LLMOS_EINVAL, "prompt_tokens[1]: 512 is not a token id");
    toks[1] = 5;
    g.n_prompt_tokens = (size_t)L + 1;
    refused(s, &g, LLMOS_ETOOBIG, "prompt_tokens: 513 tokens, more than seq_len 512");
    g.n_prompt_tokens = 10;
    g.max_positions = 5;
    refused(s, &g, LLMOS_ETOOBIG, "the prompt is 10 tokens, more than max_positions 5");
    g.max_positions = 0;
    g.context = "a fact";
    refused(s, &g, LLMOS_EINVAL, "context: not allowed with prompt_tokens");
    g.n_prompt_tokens = 0;
    g.prompt_tokens = NULL;
    memset(longs, 'a', SERVE_MAX_TEXT_BYTES + 1);
    longs[SERVE_MAX_TEXT_BYTES + 1] = 0;
    g.context = NULL;
    g.text = longs;
    refused(s, &g, LLMOS_ETOOBIG, "the prompt is 1048577 bytes, more than seq_len 512 tokens can hold");
    /* the edges that are fine: empty text, non-ASCII, huge limits, context lines that do not fit */
    serve_request_t ok = {
        .kind = SERVE_GENERATE, .text = "", .max_tokens = UINT32_MAX, .max_positions = UINT32_MAX};
    submit_ok(s, &ok, 1, 0);
    ok = (serve_request_t){.kind = SERVE_GENERATE,
                           .text = "h\xc3\xa9llo \xe2\x9c\x93",
                           .max_tokens = 3,
                           .context = "\xe2\x9c\x93 a line\n\nanother line\n",
                           .echo = true};
    submit_ok(s, &ok, 2, 0);
    serve_request_t e = {.kind = SERVE_EMBED, .text = "x", .pooling = "max"};
    refused(s, &e, LLMOS_EINVAL, "pooling: 'max' is not mean or last");
    e.pooling = NULL;
    e.text = longs;
    refused(s, &e, LLMOS_ETOOBIG, "text: 1048577 bytes, more than 1048576");
    e.text = NULL; /* empty text: BOS alone */
    submit_ok(s, &e, 3, 0);
    const char *labels[66];
    for (int i = 0; i < 66; i++)
        labels[i] = " a";
    serve_request_t q = {.kind = SERVE_SCORE, .text = "x", .labels = labels, .n_labels = 65};
    refused(s, &q, LLMOS_EINVAL, "labels: 65 given, 1..64 allowed");
    q.n_labels = 3;
    labels[2] = "";
    refused(s, &q, LLMOS_EINVAL, "labels[2]: 0 bytes");
    labels[2] = longs;
    refused(s, &q, LLMOS_EINVAL, "labels[2]: 1048577 bytes");
    memset(longs, 'b', 200000);
    longs[200000] = 0;
    refused(s, &q, LLMOS_ETOOBIG,
            "labels[2]: prompt + label are 200001 bytes, more than seq_len 512 tokens can hold");
    labels[2] = " a";
    q.n_labels = 0;
    refused(s, &q, LLMOS_EINVAL, "labels: none given and no classifier is loaded");
    serve_request_t bad = {.kind = (serve_kind_t)99};
    refused(s, &bad, LLMOS_EINVAL, "request kind 99");
    uint64_t clock = 0;
    drain(s, &clock, 2000);
    for (int i = 0; i < 4; i++)
        assert_true(recs[i].done);
    assert_non_null(
        strstr(recs[2].text, "h\xc3\xa9llo \xe2\x9c\x93")); /* echo: the prompt only, with context */
    serve_destroy(&s);
#undef SAMPLING
}

/* ---------------------------------------------------------------- the plan's wire form */

static void test_plan_wire(void **state) {
    (void)state;
    int32_t ops[6] = {SERVE_OP_OPEN, 3, 0, SERVE_OP_TRUNC, 3, 7};
    int t1[2] = {10, 11}, t2[1] = {12};
    model_batch_entry_t ents[2] = {{3, t1, 2}, {0, t2, 1}}, back[4];
    uint8_t want[2] = {1, 0}, wback[4];
    serve_plan_t p = {.kind = SERVE_PLAN_FORWARD,
                      .n_ops = 2,
                      .ops = ops,
                      .n_entries = 2,
                      .entries = ents,
                      .want = want,
                      .n_tokens = 3};
    int32_t buf[64];
    size_t n;
    llmos_error_t err;
    assert_int_equal(serve_plan_encode(&p, buf, 64, &n, &err), 0);
    assert_int_equal(n, SERVE_PLAN_HEADER + 6 + 6 + 3);
    assert_int_equal(buf[0], SERVE_PLAN_VERSION);
    serve_plan_t d = {.entries = back, .want = wback};
    assert_int_equal(serve_plan_decode(buf, n, 4, &d, &err), 0);
    assert_int_equal(d.kind, SERVE_PLAN_FORWARD);
    assert_int_equal(d.n_ops, 2);
    assert_memory_equal(d.ops, ops, sizeof ops);
    assert_int_equal(d.n_entries, 2);
    assert_int_equal(d.n_tokens, 3);
    assert_int_equal(back[0].seq, 3);
    assert_int_equal(back[0].n_tokens, 2);
    assert_int_equal(back[0].tokens[1], 11);
    assert_int_equal(back[1].tokens[0], 12);
    assert_int_equal(wback[0], 1);
    assert_int_equal(wback[1], 0);
    /* encode refuses what it cannot write */
    assert_int_equal(serve_plan_encode(&p, buf, n - 1, &n, &err), LLMOS_ETOOBIG);
    p.n_tokens = 4;
    assert_int_equal(serve_plan_encode(&p, buf, 64, &n, &err), LLMOS_EINVAL);
    p.n_tokens = 3;
    p.kind = 7;
    assert_int_equal(serve_plan_encode(&p, buf, 64, &n, &err), LLMOS_EINVAL);
    p.kind = SERVE_PLAN_FORWARD;
    assert_int_equal(serve_plan_encode(&p, buf, 64, &n, &err), 0);
    /* every malformation is refused, naming where */
    struct {
        int word;
        int32_t value;
        const char *what;
    } bad[] = {{0, 2, "version 2 at word 0"},
               {1, 9, "kind 9 at word 1"},
               {2, -1, "negative count"},
               {3, 5, "5 entries at word 3, this rank has room for 4"},
               {3, INT32_MAX, "entries at word 3"},
               {4, 4, "words, its header"},
               {5, 0, "op 0 at word 5 is 0"},
               {8, 4, "op 1 at word 8 is 4"},
               {12, 0, "entry 0 at word 11 has 0 tokens"},
               {13, 2, "want_rows 2"},
               {15, 3, "the entries hold 5 tokens, the header says 3"},
               {15, 4, "entry 1 at word 14 has 4 tokens (1..3)"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t m[64];
        memcpy(m, buf, sizeof(int32_t) * n);
        m[bad[i].word] = bad[i].value;
        memset(&err, 0, sizeof err);
        assert_int_equal(serve_plan_decode(m, n, 4, &d, &err), LLMOS_EFORMAT);
        if (!strstr(err.msg, bad[i].what)) fprintf(stderr, "case %zu: %s\n", i, err.msg);
        assert_non_null(strstr(err.msg, bad[i].what));
    }
    assert_int_equal(serve_plan_decode(buf, n - 1, 4, &d, &err), LLMOS_EFORMAT);
    assert_int_equal(serve_plan_decode(buf, 4, 4, &d, &err), LLMOS_EFORMAT);
    assert_int_equal(serve_plan_decode(buf, 0, 4, &d, &err), LLMOS_EFORMAT);
    int32_t m[64];
    memcpy(m, buf, sizeof(int32_t) * n);
    m[n] = 0; /* one word too many */
    assert_int_equal(serve_plan_decode(m, n + 1, 4, &d, &err), LLMOS_EFORMAT);
    assert_true(serve_plan_max_words(32, 256) >=
                SERVE_PLAN_HEADER + 3 * (size_t)serve_plan_max_ops(32) + 96 + 256);
}

/* A follower applying the leader's plans goes through the same sequence
 * operations and computes the same logits, bit for bit — generations,
 * label scores (truncations), a cancel in between; STOP ends it; a plan
 * that does not reproduce (another slot) is refused. */
static void test_follower_replays(void **state) {
    (void)state;
    serve_opts_t o = {.max_seqs = 3, .token_budget = 8, .plan = true};
    serve_t *lead = core(&o), *fol = core(&(serve_opts_t){.max_seqs = 3, .token_budget = 8});
    const char *labels[] = {" time", " day"};
    submit_ok(lead, &(serve_request_t){.kind = SERVE_GENERATE, .text = "Once upon", .max_tokens = 12}, 0, 0);
    submit_ok(lead,
              &(serve_request_t){.kind = SERVE_SCORE, .text = "Once upon a", .labels = labels, .n_labels = 2},
              1, 0);
    submit_ok(lead, &(serve_request_t){.kind = SERVE_GENERATE, .text = "Lily", .max_tokens = 30, .corr = 5},
              2, 0);
    submit_ok(lead, &(serve_request_t){.kind = SERVE_EMBED, .text = "a dog and a cat"}, 3, 0);
    llmos_error_t err;
    int V = model_config(M)->vocab_size, D = model_config(M)->dim;
    for (uint64_t it = 0; serve_busy(lead); it++) {
        assert_true(it < 500);
        if (it == 6) assert_true(serve_cancel(lead, 5, 0, NULL));
        int ne = serve_step_begin(lead, T(it));
        if (ne == 0) continue;
        const int32_t *w;
        size_t n;
        assert_int_equal(serve_step_wire(lead, false, &w, &n, &err), 0);
        assert_int_equal(serve_follow(fol, w, n, &err), 0);
        assert_int_equal(serve_step_forward(lead, &err), 0);
        for (int i = 0; i < ne; i++) {
            assert_memory_equal(model_ctx_logits(serve_ctx(lead), i), model_ctx_logits(serve_ctx(fol), i),
                                sizeof(float) * (size_t)V);
            assert_memory_equal(model_ctx_hidden(serve_ctx(lead), i), model_ctx_hidden(serve_ctx(fol), i),
                                sizeof(float) * (size_t)D);
        }
        int lu, lt, fu, ft;
        size_t bb;
        model_ctx_kv_usage(serve_ctx(lead), &lu, &lt, &bb);
        model_ctx_kv_usage(serve_ctx(fol), &fu, &ft, &bb);
        assert_int_equal(lu, fu);
        assert_true(lu > 0);
        serve_step_end(lead, T(it));
    }
    assert_true(recs[0].done && recs[1].done && recs[2].failed && recs[3].done);
    assert_int_equal(recs[2].status, LLMOS_ECANCELED);
    /* the closes of the last iteration travel with the next plan (here one
     * without a batch); STOP then ends the follower's loop */
    const int32_t *w;
    size_t n;
    int fu, ft, lu, lt;
    size_t bb;
    model_ctx_kv_usage(serve_ctx(fol), &fu, &ft, &bb);
    assert_true(fu > 0);
    assert_int_equal(serve_step_wire(lead, false, &w, &n, &err), 0);
    assert_int_equal(serve_follow(fol, w, n, &err), 0);
    model_ctx_kv_usage(serve_ctx(fol), &fu, &ft, &bb);
    assert_int_equal(fu, 0);
    model_ctx_kv_usage(serve_ctx(lead), &lu, &lt, &bb);
    assert_int_equal(lu, 0);
    assert_int_equal(serve_step_wire(lead, true, &w, &n, &err), 0);
    assert_int_equal(serve_follow(fol, w, n, &err), 1);
    /* a plan whose open does not give the leader's slot */
    int32_t m[16] = {SERVE_PLAN_VERSION, SERVE_PLAN_FORWARD, 1, 0, 0, SERVE_OP_OPEN, 2, 0};
    assert_int_equal(serve_follow(fol, m, 8, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "opened where the leader has 2"));
    assert_int_equal(serve_step_wire(fol, false, &w, &n, &err), LLMOS_ESTATE); /* it keeps no plan */
    serve_destroy(&lead);
    serve_destroy(&fol);
}

/* ---------------------------------------------------------------- serve_open */

static void test_open(void **state) {
    (void)state;
    serve_t *s = NULL;
    llmos_error_t err = {0};
    serve_opts_t o = {.sink = sink};
    /* bare names are found in $LLMOS_MODELS */
    assert_int_equal(
        serve_open(&(serve_load_t){.model = "stories260K.bin", .tokenizer = "tok512.bin"}, &o, &s, &err), 0);
    assert_non_null(strstr(serve_name(s), "stories260K.bin"));
    assert_null(serve_cls(s));
    serve_stats_t st;
    serve_stats(s, &st);
    assert_int_equal(st.max_seqs, 32);
    assert_int_equal(st.token_budget, 256);
    assert_int_equal(st.queue_limit, 1024);
    assert_int_equal(st.kv_total, 32 * 32); /* 32 full-length sequences of 512 positions */
    serve_stats_t carry = st;
    carry.requests_done = 41;
    carry.rejected_overloaded = 2;
    serve_stats_carry(s, &carry);
    serve_stats(s, &st);
    assert_int_equal(st.requests_done, 41);
    assert_int_equal(st.rejected_overloaded, 2);
    serve_destroy(&s);
    assert_int_equal(serve_open(&(serve_load_t){.model = "stories260K.gguf", .q8 = true}, &o, &s, &err), 0);
    serve_destroy(&s);
    assert_int_equal(serve_open(&(serve_load_t){0}, &o, &s, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "no model file and no classifier given"));
    assert_int_equal(serve_open(&(serve_load_t){.model = "no-such-model.bin"}, &o, &s, &err),
                     LLMOS_ENOTFOUND);
    assert_non_null(strstr(err.msg, "model "));
    assert_non_null(strstr(err.msg, "no-such-model.bin"));
    assert_int_equal(serve_open(&(serve_load_t){.model = model_path}, &o, &s, &err),
                     LLMOS_EINVAL); /* no tokenizer */
    assert_null(s);
    /* a model without a tokenizer cannot be served */
    model_t *bare = NULL;
    assert_int_equal(model_new(model_config(M), &bare, &err), 0);
    assert_int_equal(serve_new(bare, &o, &s, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "has no tokenizer"));
    model_destroy(&bare);
}

int main(void) {
    llmos_log_set_level(LLMOS_LOG_WARN);
    const char *dir = getenv("LLMOS_MODELS");
    if (!dir || !dir[0]) {
        fprintf(stderr, "test_serve: LLMOS_MODELS is not set\n");
        return 1;
    }
    snprintf(model_path, sizeof model_path, "%s/stories260K.bin", dir);
    snprintf(tok_path, sizeof tok_path, "%s/tok512.bin", dir);
    llmos_error_t err;
    if (model_load(model_path, &(model_load_opts_t){.tokenizer_path = tok_path}, &M, &err)) {
        fprintf(stderr, "test_serve: %s\n", err.msg);
        return 1;
    }
#define TEST(f) cmocka_unit_test_setup(f, reset)
    const struct CMUnitTest tests[] = {
        TEST(test_greedy_reference),
        TEST(test_batch_equals_solo),
        TEST(test_stop_and_finish),
        TEST(test_plan_budget),
        TEST(test_plan_want_rows),
        TEST(test_queue_limit),
        TEST(test_kv_reservation),
        TEST(test_fake_clock_times),
        TEST(test_deadlines),
        TEST(test_cancel),
        TEST(test_fail_all_and_destroy),
        TEST(test_embed),
        TEST(test_score),
        TEST(test_classify),
        TEST(test_request_edges),
        TEST(test_plan_wire),
        TEST(test_follower_replays),
        TEST(test_open),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    model_destroy(&M);
    return rc;
}
