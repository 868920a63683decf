/*
 * test_model_shard.c — the model-shard actors through real processes: an
 * llmosd --model stories260K (plain, or `mpirun -np 2 llmosd --tp 2` with
 * --tp 2) asked over ZeroMQ by libllmos-client.
 *
 *   test_model_shard [--tp N] [--only PATTERN] [--skip PATTERN]
 *
 * Greedy text equals the llama2.c reference; stream chunks concatenate to
 * the final text; 32 concurrent clients (one handle per thread) each get
 * exactly what the same request gets alone; cancel frees the KV blocks;
 * deadlines; bad payloads get EINVAL and the node keeps serving; a small
 * queue limit gives EOVERLOADED, never a crash; embeddings; with --tp, a
 * killed follower makes the leader answer EUNAVAILABLE (no hang).
 */
#include "node_fixture.h"
#include "llmos/client.h"
#include "llmos/model.pb-c.h"
#include "runtime/base/clock.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static int tp = 1;

typedef llmos_test_node_t server_t;

/* tp > 1: under mpirun with --enable-recovery (a rank may be killed). */
static int fixture_start(server_t *s, int ranks, const char *const *argv, const char *actor) {
    llmos_test_node_opts_t o = {.args = argv, .ranks = ranks, .mpi_recovery = 1, .actor = actor,
                                .probe_type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS};
    llmos_error_t err;
    int rc = llmos_test_node_start(s, &o, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    return rc;
}

static server_t main_srv;
static server_t *leftover; /* a test's own server, until it stops it */

static const char *env_or(const char *k, const char *d) {
    const char *v = getenv(k);
    return v && *v ? v : d;
}

/* Starts llmosd --model stories260K (under mpirun when tp > 1) with extra args. */
static int server_start(server_t *s, const char *const *extra) {
    static char model[PATH_MAX], tok[PATH_MAX], tps[16];
    snprintf(model, sizeof model, "%s/stories260K.bin", env_or("LLMOS_MODELS", "."));
    snprintf(tok, sizeof tok, "%s/tok512.bin", env_or("LLMOS_MODELS", "."));
    snprintf(tps, sizeof tps, "%d", tp);
    const char *argv[32] = {"--workers", "2", "--log-level", "warn", "--model", model, "--tokenizer", tok, "--tp", tps};
    int n = 10;
    for (int i = 0; extra && extra[i] && n < 31; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    if (s != &main_srv) leftover = s;
    return fixture_start(s, tp, argv, "model");
}

/* A plain llmosd must exit 0 on SIGTERM (and, under ASan, without leaks);
 * mpirun's own status after a signal says nothing about the ranks. */
static int server_stop(server_t *s) {
    if (s == leftover) leftover = NULL;
    int st = -1;
    llmos_error_t err;
    if (llmos_test_node_stop(s, 0, &st, &err) == LLMOS_ETIMEDOUT) {
        fprintf(stderr, "%s\n", err.msg);
        st = -1;
    }
    if (tp == 1 && st != 0) fprintf(stderr, "llmosd exited with status %d\n", st);
    return tp == 1 ? st : 0;
}

static llmos_client_t *client(const server_t *s) {
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = 60000};
    assert_int_equal(llmos_client_connect(s->endpoint, &o, &c, &err), 0);
    return c;
}

static Llmos__ModelStats *stats(llmos_client_t *c) {
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, NULL, 0, 10000, &r, &err);
    if (rc) fprintf(stderr, "stats: %s\n", err.msg);
    assert_int_equal(rc, 0);
    Llmos__ModelStats *st = llmos__model_stats__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    assert_non_null(st);
    return st;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

/* ---------------------------------------------------------------- greedy */

static void test_greedy_reference(void **state) {
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/stories260K.greedy.txt", env_or("LLMOS_MODELS", "."));
    char *want = read_file(path);
    assert_non_null(want);
    llmos_client_t *c = client(&main_srv);
    llmos_client_gen_opts_t o = {.max_positions = 200, .echo_prompt = 1};
    llmos_client_gen_result_t *res = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_generate(c, "", &o, NULL, NULL, &res, &err);
    if (rc) fprintf(stderr, "generate: %s\n", err.msg);
    assert_int_equal(rc, 0);
    size_t wl = strlen(want);
    assert_true(wl > 0 && want[wl - 1] == '\n');
    want[wl - 1] = 0; /* llmos-generate ends with a newline after the text */
    assert_string_equal(res->text, want);
    assert_string_equal(res->finish_reason, "length");
    assert_int_equal(res->prompt_tokens, 1);
    llmos_client_gen_result_free(&res);
    llmos_client_destroy(&c);
    free(want);
}

/* ---------------------------------------------------------------- streaming */

typedef struct collect {
    char buf[1 << 15];
    size_t len;
    size_t chunks, tokens;
    int stop_after; /* > 0: ask to stop after this many chunks */
} collect_t;

static int on_text(void *user, const char *text, size_t len, const int32_t *tokens, size_t n_tokens) {
    (void)tokens;
    collect_t *c = user;
    if (c->len + len < sizeof c->buf) {
        memcpy(c->buf + c->len, text, len);
        c->len += len;
        c->buf[c->len] = 0;
    }
    c->chunks++;
    c->tokens += n_tokens;
    return c->stop_after && (int)c->chunks >= c->stop_after;
}

static void test_stream_concatenates(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    const char *stops[] = {"park"};
    for (int k = 0; k < 2; k++) {
        collect_t *col = calloc(1, sizeof *col);
        llmos_client_gen_opts_t o = {.max_tokens = 120, .temperature = 0.8f, .top_p = 0.9f, .seed = 7,
                                     .stop = k ? stops : NULL, .n_stop = k ? 1 : 0, .echo_prompt = k};
        llmos_client_gen_result_t *res = NULL;
        llmos_client_error_t err;
        assert_int_equal(llmos_client_generate(c, "Once upon a time", &o, on_text, col, &res, &err), 0);
        assert_true(col->chunks > 1);
        assert_string_equal(col->buf, res->text);
        assert_int_equal(col->tokens, res->n_tokens);
        llmos_client_gen_result_t *plain = NULL;
        assert_int_equal(llmos_client_generate(c, "Once upon a time", &o, NULL, NULL, &plain, &err), 0);
        assert_string_equal(plain->text, res->text);
        if (k) assert_null(strstr(res->text, "park"));
        llmos_client_gen_result_free(&plain);
        llmos_client_gen_result_free(&res);
        free(col);
    }
    llmos_client_destroy(&c);
}

/* The primitive under llmos_client_generate: every chunk of the ask, in
 * order (index 0, 1, ...), then the reply; a callback that stops abandons
 * the call, and the late chunks and reply of that ask are dropped by the
 * next call on the handle. */
typedef struct events {
    uint32_t next_index;
    int chunks, out_of_order, stop_at;
} events_t;

static int on_event(void *user, uint32_t type, const void *data, size_t len) {
    events_t *e = user;
    if (type != LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE_CHUNK) return 0;
    Llmos__GenerateChunk *ch = llmos__generate_chunk__unpack(NULL, len, data);
    if (!ch || ch->index != e->next_index) e->out_of_order++;
    if (ch) e->next_index = ch->index + 1;
    if (ch) llmos__generate_chunk__free_unpacked(ch, NULL);
    e->chunks++;
    return e->stop_at && e->chunks >= e->stop_at;
}

static void test_call_stream(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    Llmos__GenerateRequest q = LLMOS__GENERATE_REQUEST__INIT;
    q.prompt = "Once upon a time";
    q.max_tokens = 60;
    q.stream = 1;
    uint8_t buf[256];
    size_t len = llmos__generate_request__pack(&q, buf);
    events_t e = {0};
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    assert_int_equal(llmos_client_call_stream(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, len, 20000,
                                              on_event, &e, &r, &err),
                     0);
    assert_int_equal(r->type, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE);
    Llmos__GenerateResult *res = llmos__generate_result__unpack(NULL, r->len, r->data);
    assert_non_null(res);
    assert_int_equal(e.out_of_order, 0);
    assert_int_equal(e.chunks, (int)res->n_tokens); /* one chunk per token without stop strings */
    llmos__generate_result__free_unpacked(res, NULL);
    llmos_client_reply_free(&r);
    /* Abandon after 3 chunks; the next call on the handle still gets its own reply. */
    events_t e2 = {.stop_at = 3};
    q.max_tokens = 200;
    q.request_id = "abandoned-1";
    len = llmos__generate_request__pack(&q, buf);
    assert_int_equal(llmos_client_call_stream(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, len, 20000,
                                              on_event, &e2, &r, &err),
                     LLMOS_CLIENT_ECANCELED);
    assert_null(r);
    int found = 0;
    assert_int_equal(llmos_client_generate_cancel(c, NULL, "abandoned-1", 5000, &found, &err), 0);
    events_t e3 = {0};
    q.max_tokens = 10;
    q.request_id = NULL;
    len = llmos__generate_request__pack(&q, buf);
    assert_int_equal(llmos_client_call_stream(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, len, 20000,
                                              on_event, &e3, &r, &err),
                     0);
    assert_int_equal(e3.out_of_order, 0);
    assert_int_equal(e3.chunks, 10);
    llmos_client_reply_free(&r);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- concurrency */

#define N_CLIENTS 32

typedef struct job {
    char prompt[64];
    llmos_client_gen_opts_t o;
    llmos_client_gen_result_t *solo, *conc;
    int rc;
    char err[512];
} job_t;

static const char *const prompts[] = {"Once upon a time", "The cat", "Lily and Tom", "One day, a big dog",
                                      "The sun was", "In the park", "Sam had a red ball", ""};

static void *job_main(void *p) {
    job_t *j = p;
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t co = {.timeout_ms = 120000};
    j->rc = llmos_client_connect(main_srv.endpoint, &co, &c, &err);
    if (j->rc == 0) j->rc = llmos_client_generate(c, j->prompt, &j->o, NULL, NULL, &j->conc, &err);
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", err.msg);
    llmos_client_destroy(&c);
    return NULL;
}

static void test_concurrent_equals_solo(void **state) {
    (void)state;
    job_t *jobs = calloc(N_CLIENTS, sizeof *jobs);
    llmos_client_t *c = client(&main_srv);
    llmos_client_error_t err;
    for (int i = 0; i < N_CLIENTS; i++) {
        job_t *j = &jobs[i];
        snprintf(j->prompt, sizeof j->prompt, "%s", prompts[i % 8]);
        j->o.max_tokens = (uint32_t)(20 + (i * 37) % 160);
        j->o.temperature = i % 4 == 0 ? 0.0f : 0.5f + 0.1f * (float)(i % 6);
        j->o.top_p = i % 3 == 0 ? 0.9f : 0.0f;
        j->o.top_k = i % 5 == 0 ? 40 : 0;
        j->o.seed = 1000 + (uint64_t)i;
        assert_int_equal(llmos_client_generate(c, j->prompt, &j->o, NULL, NULL, &j->solo, &err), 0);
    }
    Llmos__ModelStats *st0 = stats(c);
    uint64_t it0 = st0->iterations, tok0 = st0->tokens_generated;
    llmos__model_stats__free_unpacked(st0, NULL);
    pthread_t th[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) pthread_create(&th[i], NULL, job_main, &jobs[i]);
    for (int i = 0; i < N_CLIENTS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_CLIENTS; i++) {
        job_t *j = &jobs[i];
        if (j->rc) fprintf(stderr, "client %d: %s\n", i, j->err);
        assert_int_equal(j->rc, 0);
        assert_string_equal(j->conc->text, j->solo->text);
        assert_int_equal(j->conc->n_tokens, j->solo->n_tokens);
        assert_memory_equal(j->conc->tokens, j->solo->tokens, sizeof(int32_t) * j->solo->n_tokens);
        llmos_client_gen_result_free(&j->solo);
        llmos_client_gen_result_free(&j->conc);
    }
    /* The batch really was shared: far fewer iterations than tokens. */
    Llmos__ModelStats *st = stats(c);
    assert_true(st->running == 0 && st->queued == 0);
    assert_true(st->tokens_generated - tok0 > 2 * (st->iterations - it0));
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
    free(jobs);
}

/* ---------------------------------------------------------------- cancel */

typedef struct cancel_job {
    collect_t col;
    int rc;
} cancel_job_t;

static void *cancel_victim(void *p) {
    cancel_job_t *j = p;
    llmos_client_t *c = client(&main_srv);
    llmos_client_gen_opts_t o = {.temperature = 1.0f, .seed = 3, .request_id = "victim-1"};
    llmos_client_error_t err;
    llmos_client_gen_result_t *res = NULL;
    j->rc = llmos_client_generate(c, "Once upon a time", &o, on_text, &j->col, &res, &err);
    llmos_client_gen_result_free(&res);
    llmos_client_destroy(&c);
    return NULL;
}

static void test_cancel_frees_kv(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    Llmos__ModelStats *before = stats(c);
    uint32_t used0 = before->kv_blocks_used;
    llmos__model_stats__free_unpacked(before, NULL);
    cancel_job_t *j = calloc(1, sizeof *j);
    pthread_t th;
    pthread_create(&th, NULL, cancel_victim, j);
    /* Wait until it is generating (chunks arrived), then cancel by id. */
    int found = 0, mid_used = 0;
    llmos_client_error_t err;
    for (int i = 0; i < 2000 && !found; i++) {
        if (__atomic_load_n(&j->col.chunks, __ATOMIC_ACQUIRE) >= 3) {
            Llmos__ModelStats *mid = stats(c);
            mid_used = (int)mid->kv_blocks_used;
            llmos__model_stats__free_unpacked(mid, NULL);
            assert_int_equal(llmos_client_generate_cancel(c, NULL, "victim-1", 5000, &found, &err), 0);
            break;
        }
        usleep(1000);
    }
    pthread_join(th, NULL);
    assert_true(found);
    assert_true(mid_used > (int)used0);
    assert_int_equal(j->rc, LLMOS_CLIENT_ECANCELED);
    Llmos__ModelStats *after = stats(c);
    assert_int_equal(after->kv_blocks_used, used0);
    assert_int_equal(after->running, 0);
    llmos__model_stats__free_unpacked(after, NULL);
    /* Cancelling what is gone finds nothing. */
    assert_int_equal(llmos_client_generate_cancel(c, NULL, "victim-1", 5000, &found, &err), 0);
    assert_false(found);
    /* A callback that stops also cancels on the node. */
    collect_t *col = calloc(1, sizeof *col);
    col->stop_after = 2;
    llmos_client_gen_opts_t o = {.temperature = 1.0f, .seed = 4};
    assert_int_equal(llmos_client_generate(c, "The cat", &o, on_text, col, NULL, &err), LLMOS_CLIENT_ECANCELED);
    free(col);
    for (int i = 0; i < 100; i++) {
        after = stats(c);
        int back = after->kv_blocks_used == used0 && after->running == 0;
        llmos__model_stats__free_unpacked(after, NULL);
        if (back) break;
        assert_true(i < 99);
        usleep(20000);
    }
    free(j);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- deadline */

static void test_deadline(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    llmos_client_gen_opts_t o = {.temperature = 1.0f, .seed = 9, .timeout_ms = 5};
    llmos_client_error_t err;
    int rc = llmos_client_generate(c, "Once upon a time", &o, NULL, NULL, NULL, &err);
    assert_int_equal(rc, LLMOS_CLIENT_ETIMEDOUT);
    for (int i = 0; i < 200; i++) { /* the node drops it at its deadline */
        Llmos__ModelStats *st = stats(c);
        int idle = st->running == 0 && st->queued == 0;
        llmos__model_stats__free_unpacked(st, NULL);
        if (idle) break;
        assert_true(i < 199);
        usleep(10000);
    }
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- bad input */

static int call_status(llmos_client_t *c, uint32_t type, const void *data, size_t len, char *msg, size_t cap) {
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_call(c, "model", type, data, len, 10000, &r, &err);
    if (msg) snprintf(msg, cap, "%s", rc ? err.msg : "");
    llmos_client_reply_free(&r);
    return rc;
}

static void test_bad_payloads(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    char msg[512];
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(0xff - i * 7);
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, junk, sizeof junk, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "GenerateRequest"));
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED, junk, sizeof junk, NULL, 0),
                     LLMOS_CLIENT_EINVAL);
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL, junk, sizeof junk, NULL, 0),
                     LLMOS_CLIENT_EINVAL);
    assert_int_equal(call_status(c, 0x1ff, junk, 4, NULL, 0), LLMOS_CLIENT_EUNKNOWNTYPE);
    /* Well-formed but wrong fields are named. */
    llmos_client_gen_opts_t o = {.temperature = -1};
    llmos_client_error_t err;
    assert_int_equal(llmos_client_generate(c, "x", &o, NULL, NULL, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "temperature"));
    o = (llmos_client_gen_opts_t){.top_p = 2};
    assert_int_equal(llmos_client_generate(c, "x", &o, NULL, NULL, NULL, &err), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(err.msg, "top_p"));
    Llmos__GenerateRequest q = LLMOS__GENERATE_REQUEST__INIT;
    int32_t toks[] = {1, 99999};
    q.n_prompt_tokens = 2;
    q.prompt_tokens = toks;
    uint8_t buf[256];
    size_t n = llmos__generate_request__pack(&q, buf);
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "prompt_tokens[1]"));
    /* A prompt longer than seq_len. */
    size_t big = 40000;
    char *longp = malloc(big + 1);
    for (size_t i = 0; i < big; i++) longp[i] = "ab cd "[i % 6];
    longp[big] = 0;
    o = (llmos_client_gen_opts_t){0};
    assert_int_equal(llmos_client_generate(c, longp, &o, NULL, NULL, NULL, &err), LLMOS_CLIENT_ETOOBIG);
    free(longp);
    /* The node still serves. */
    o = (llmos_client_gen_opts_t){.max_tokens = 5};
    llmos_client_gen_result_t *res = NULL;
    assert_int_equal(llmos_client_generate(c, "Hello", &o, NULL, NULL, &res, &err), 0);
    assert_int_equal(res->n_tokens, 5);
    llmos_client_gen_result_free(&res);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- embed */

static void embed(llmos_client_t *c, const char *text, const char *pooling, float **v, size_t *n) {
    Llmos__EmbedRequest q = LLMOS__EMBED_REQUEST__INIT;
    q.text = (char *)text;
    q.pooling = (char *)pooling;
    uint8_t buf[512];
    size_t len = llmos__embed_request__pack(&q, buf);
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    assert_int_equal(llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED, buf, len, 10000, &r, &err), 0);
    Llmos__EmbedResult *e = llmos__embed_result__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    assert_non_null(e);
    *n = e->n_vector;
    *v = malloc(sizeof(float) * e->n_vector);
    memcpy(*v, e->vector, sizeof(float) * e->n_vector);
    llmos__embed_result__free_unpacked(e, NULL);
}

static void test_embed(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    Llmos__ModelStats *st = stats(c);
    size_t dim = st->dim;
    llmos__model_stats__free_unpacked(st, NULL);
    float *a, *b, *l;
    size_t na, nb, nl;
    embed(c, "The cat sat on the mat", "mean", &a, &na);
    embed(c, "The cat sat on the mat", "", &b, &nb);
    embed(c, "The cat sat on the mat", "last", &l, &nl);
    assert_int_equal(na, dim);
    assert_int_equal(nb, dim);
    assert_int_equal(nl, dim);
    assert_memory_equal(a, b, sizeof(float) * dim); /* mean is the default, and deterministic */
    /* The mean over [BOS, Lily, was] (three tokens in tok512) is the mean of
     * the last-token states of "", "Lily" and "Lily was" (a causal model:
     * each row sees only its prefix). */
    float *p0, *p1, *p2;
    size_t n0, n1, n2;
    embed(c, "", "last", &p0, &n0);
    embed(c, "Lily", "last", &p1, &n1);
    embed(c, "Lily was", "last", &p2, &n2);
    float *m;
    size_t nm;
    embed(c, "Lily was", "mean", &m, &nm);
    double maxdiff = 0, spread = 0;
    for (size_t i = 0; i < dim; i++) {
        double want = ((double)p0[i] + p1[i] + p2[i]) / 3, d = fabs(want - m[i]);
        if (d > maxdiff) maxdiff = d;
        if (fabs((double)m[i] - p2[i]) > spread) spread = fabs((double)m[i] - p2[i]);
    }
    if (maxdiff >= 1e-4) fprintf(stderr, "mean vs prefixes: max diff %g, spread %g\n", maxdiff, spread);
    assert_true(maxdiff < 1e-4);
    assert_true(spread > 1e-2); /* and it is not the last state */
    free(a);
    free(b);
    free(l);
    free(p0);
    free(p1);
    free(p2);
    free(m);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- score */

static Llmos__ScoreResult *score(llmos_client_t *c, const char *prompt, const char **labels, size_t n) {
    Llmos__ScoreRequest q = LLMOS__SCORE_REQUEST__INIT;
    q.prompt = (char *)prompt;
    q.n_labels = n;
    q.labels = (char **)labels;
    uint8_t buf[1024];
    size_t len = llmos__score_request__pack(&q, buf);
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, len, 20000, &r, &err);
    if (rc) fprintf(stderr, "score: %s\n", err.msg);
    assert_int_equal(rc, 0);
    Llmos__ScoreResult *res = llmos__score_result__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    assert_non_null(res);
    assert_int_equal(res->n_log_probs, n);
    return res;
}

static void test_score(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    /* The greedy next token is the most likely of all labels (any other
     * label's probability is at most its first token's). */
    llmos_client_gen_opts_t o = {.max_tokens = 1};
    llmos_client_gen_result_t *g = NULL;
    llmos_client_error_t err;
    const char *prompt = "Once upon a time, there was a little";
    assert_int_equal(llmos_client_generate(c, prompt, &o, NULL, NULL, &g, &err), 0);
    const char *labels[] = {g->text, " dog who liked to fly", " xq zz", " boy"};
    Llmos__ScoreResult *a = score(c, prompt, labels, 4);
    assert_string_equal(a->best, g->text);
    double sum = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_true(a->log_probs[i] < 0);
        sum += a->probs[i];
    }
    assert_true(sum > 0.999 && sum < 1.001);
    /* Order does not matter: each label is scored from the same prefix. */
    const char *rev[] = {labels[3], labels[2], labels[1], labels[0]};
    Llmos__ScoreResult *b = score(c, prompt, rev, 4);
    for (size_t i = 0; i < 4; i++) assert_float_equal(a->log_probs[i], b->log_probs[3 - i], 1e-4);
    /* A label alone scores the same as among others. */
    Llmos__ScoreResult *one = score(c, prompt, &labels[1], 1);
    assert_float_equal(one->log_probs[0], a->log_probs[1], 1e-4);
    llmos__score_result__free_unpacked(a, NULL);
    llmos__score_result__free_unpacked(b, NULL);
    llmos__score_result__free_unpacked(one, NULL);
    llmos_client_gen_result_free(&g);
    /* No labels, an empty label: EINVAL. */
    Llmos__ScoreRequest q = LLMOS__SCORE_REQUEST__INIT;
    q.prompt = "x";
    uint8_t buf[64];
    size_t len = llmos__score_request__pack(&q, buf);
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, len, NULL, 0), LLMOS_CLIENT_EINVAL);
    char *empty[] = {""};
    q.n_labels = 1;
    q.labels = empty;
    len = llmos__score_request__pack(&q, buf);
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, len, NULL, 0), LLMOS_CLIENT_EINVAL);
    Llmos__ModelStats *st = stats(c);
    assert_int_equal(st->kv_blocks_used, 0);
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- load / unload */

static int control(llmos_client_t *c, uint32_t type, const char *path, const char *tok, char *msg, size_t cap) {
    Llmos__ModelLoadRequest q = LLMOS__MODEL_LOAD_REQUEST__INIT;
    q.path = (char *)path;
    q.tokenizer = (char *)tok;
    uint8_t buf[2048];
    size_t len = type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD ? llmos__model_load_request__pack(&q, buf) : 0;
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_call(c, "model", type, buf, len, 60000, &r, &err);
    if (msg) snprintf(msg, cap, "%s", rc ? err.msg : "");
    llmos_client_reply_free(&r);
    return rc;
}

static void greedy_check(llmos_client_t *c) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/stories260K.greedy.txt", env_or("LLMOS_MODELS", "."));
    char *want = read_file(path);
    assert_non_null(want);
    want[strlen(want) - 1] = 0;
    llmos_client_gen_opts_t o = {.max_positions = 200, .echo_prompt = 1};
    llmos_client_gen_result_t *res = NULL;
    llmos_client_error_t err;
    assert_int_equal(llmos_client_generate(c, "", &o, NULL, NULL, &res, &err), 0);
    assert_string_equal(res->text, want);
    llmos_client_gen_result_free(&res);
    free(want);
}

/* Control over messages: unload frees the model (requests get
 * EUNAVAILABLE), a bad path is an error and (with no model before) leaves
 * nothing loaded, a load
 * (of the GGUF, then the llama2.c file again) serves the same text — on
 * every rank of the group. */
static void test_load_unload(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    char msg[512], bin[PATH_MAX], gguf[PATH_MAX], tok[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/stories260K.bin", env_or("LLMOS_MODELS", "."));
    snprintf(gguf, sizeof gguf, "%s/stories260K.gguf", env_or("LLMOS_MODELS", "."));
    snprintf(tok, sizeof tok, "%s/tok512.bin", env_or("LLMOS_MODELS", "."));
    assert_int_equal(control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD, NULL, NULL, msg, sizeof msg), 0);
    Llmos__ModelStats *st = stats(c);
    assert_false(st->available);
    assert_int_equal(st->kv_blocks_total, 0);
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_gen_opts_t o = {.max_tokens = 3};
    llmos_client_error_t err;
    assert_int_equal(llmos_client_generate(c, "x", &o, NULL, NULL, NULL, &err), LLMOS_CLIENT_EUNAVAILABLE);
    assert_non_null(strstr(err.msg, "no model"));
    assert_int_equal(control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, "/nonexistent/m.bin", NULL, msg, sizeof msg),
                     LLMOS_CLIENT_ENOTFOUND);
    assert_non_null(strstr(msg, "/nonexistent/m.bin"));
    assert_int_equal(call_status(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, "\xff\xff", 2, NULL, 0), LLMOS_CLIENT_EINVAL);
    assert_int_equal(control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, gguf, NULL, msg, sizeof msg), 0);
    greedy_check(c);
    assert_int_equal(control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, bin, tok, msg, sizeof msg), 0);
    greedy_check(c);
    st = stats(c);
    assert_true(st->available);
    assert_non_null(strstr(st->model, "stories260K.bin"));
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- a failed load keeps the model */

/* A greedy generation running while loads fail (its own handle). */
typedef struct inflight {
    int rc;
    char *text;
} inflight_t;

static void *inflight_main(void *p) {
    inflight_t *f = p;
    llmos_client_t *c = client(&main_srv);
    llmos_client_gen_opts_t o = {.max_positions = 200, .echo_prompt = 1};
    llmos_client_gen_result_t *res = NULL;
    llmos_client_error_t err;
    f->rc = llmos_client_generate(c, "", &o, NULL, NULL, &res, &err);
    if (f->rc == 0)
        f->text = strdup(res->text);
    else
        fprintf(stderr, "in-flight generation: %s\n", err.msg);
    llmos_client_gen_result_free(&res);
    llmos_client_destroy(&c);
    return NULL;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* LOAD of a missing, garbage or truncated model, of a model without a
 * tokenizer, or with a garbage tokenizer: an error naming the file and what
 * is wrong, and the model loaded before keeps serving the same greedy text
 * (on every rank of the group: with --tp each rank stages the new slice
 * and the group swaps only when all loaded) — also for a generation
 * running meanwhile. */
static void test_failed_load_keeps_model(void **state) {
    (void)state;
    char dir[] = "/tmp/llmos-shard-load-XXXXXX", garbage[PATH_MAX], trunc[PATH_MAX], badtok[PATH_MAX];
    char bin[PATH_MAX], tok[PATH_MAX];
    assert_non_null(mkdtemp(dir));
    snprintf(garbage, sizeof garbage, "%s/garbage.bin", dir);
    snprintf(trunc, sizeof trunc, "%s/trunc.bin", dir);
    snprintf(badtok, sizeof badtok, "%s/tok.bin", dir);
    snprintf(bin, sizeof bin, "%s/stories260K.bin", env_or("LLMOS_MODELS", "."));
    snprintf(tok, sizeof tok, "%s/tok512.bin", env_or("LLMOS_MODELS", "."));
    uint8_t junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 2654435761u >> 13);
    write_bytes(garbage, junk, sizeof junk);
    write_bytes(badtok, junk, 100);
    FILE *f = fopen(bin, "rb");
    assert_non_null(f);
    static uint8_t head[300000];
    size_t hn = fread(head, 1, sizeof head, f);
    fclose(f);
    assert_int_equal(hn, sizeof head);
    write_bytes(trunc, head, hn); /* the header and part of the weights */
    llmos_client_t *c = client(&main_srv);
    Llmos__ModelStats *st = stats(c);
    char *served = strdup(st->model);
    llmos__model_stats__free_unpacked(st, NULL);
    inflight_t fl = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, inflight_main, &fl), 0);
    const struct {
        const char *path, *tok, *says;
        int rc;
    } cases[] = {
        {"/nonexistent/m.bin", tok, "not found", LLMOS_CLIENT_ENOTFOUND},
        {garbage, tok, "not a llama2.c checkpoint", LLMOS_CLIENT_EFORMAT},
        {trunc, tok, "truncated", LLMOS_CLIENT_EFORMAT},
        {bin, NULL, "needs a tokenizer", LLMOS_CLIENT_EINVAL},
        {bin, badtok, "tokenizer", LLMOS_CLIENT_EFORMAT},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char msg[1024];
        int rc =
            control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, cases[k].path, cases[k].tok, msg, sizeof msg);
        if (rc != cases[k].rc || !strstr(msg, cases[k].says) || !strstr(msg, "still serving"))
            fprintf(stderr, "load %s: %d %s\n", cases[k].path, rc, msg);
        assert_int_equal(rc, cases[k].rc);
        assert_non_null(strstr(msg, cases[k].says));
        assert_non_null(strstr(msg, cases[k].tok == badtok ? badtok : cases[k].path));
        assert_non_null(strstr(msg, "still serving"));
        greedy_check(c);
        st = stats(c);
        assert_true(st->available);
        assert_string_equal(st->model, served);
        llmos__model_stats__free_unpacked(st, NULL);
    }
    pthread_join(th, NULL);
    assert_int_equal(fl.rc, 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/stories260K.greedy.txt", env_or("LLMOS_MODELS", "."));
    char *want = read_file(path);
    assert_non_null(want);
    want[strlen(want) - 1] = 0;
    assert_string_equal(fl.text, want);
    free(want);
    free(fl.text);
    /* A good load after them still swaps. */
    char gguf[PATH_MAX], msg[512];
    snprintf(gguf, sizeof gguf, "%s/stories260K.gguf", env_or("LLMOS_MODELS", "."));
    assert_int_equal(control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, gguf, NULL, msg, sizeof msg), 0);
    greedy_check(c);
    assert_int_equal(control(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, bin, tok, msg, sizeof msg), 0);
    st = stats(c);
    assert_string_equal(st->model, served);
    assert_int_equal(st->kv_blocks_used, 0);
    llmos__model_stats__free_unpacked(st, NULL);
    free(served);
    llmos_client_destroy(&c);
    unlink(garbage);
    unlink(trunc);
    unlink(badtok);
    rmdir(dir);
}

/* ---------------------------------------------------------------- request edges */

/* Appends field `num` (length-delimited) with n bytes of data to a raw protobuf message. */
static void pb_bytes(uint8_t *buf, size_t *at, uint32_t num, const void *data, size_t n) {
    uint64_t v = (uint64_t)num << 3 | 2;
    for (int k = 0; k < 2; k++, v = n) {
        do {
            buf[(*at)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
    }
    memcpy(buf + *at, data, n);
    *at += n;
}

/* Sends a raw payload; the status, the message in msg. */
static int raw_call(llmos_client_t *c, uint32_t type, const uint8_t *buf, size_t n, char *msg, size_t cap) {
    return call_status(c, type, buf, n, msg, cap);
}

static int gen_packed(llmos_client_t *c, const Llmos__GenerateRequest *q, Llmos__GenerateResult **out,
                      char *msg, size_t cap) {
    size_t n = llmos__generate_request__get_packed_size(q);
    uint8_t *buf = malloc(n ? n : 1);
    llmos__generate_request__pack(q, buf);
    llmos_client_reply_t *r = NULL;
    llmos_client_error_t err;
    int rc =
        llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, 30000, &r, &err);
    free(buf);
    snprintf(msg, cap, "%s", rc ? err.msg : "");
    if (out) *out = rc ? NULL : llmos__generate_result__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    return rc;
}

/* What a client can put in a request and what it gets: unsigned fields at
 * their largest are limits, not wrapped negatives; NUL inside a string is
 * refused with the field named (protobuf-c would cut the string there);
 * oversized texts are refused before they are tokenized (fast); the node
 * serves on with no KV block held. */
static void test_request_edges(void **state) {
    (void)state;
    llmos_client_t *c = client(&main_srv);
    char msg[1024];
    Llmos__GenerateResult *res = NULL;
    /* max_tokens 2^32-1: "as many as seq_len allows", not one token. */
    Llmos__GenerateRequest q = LLMOS__GENERATE_REQUEST__INIT;
    q.prompt = "Once upon a time";
    q.max_tokens = UINT32_MAX;
    assert_int_equal(gen_packed(c, &q, &res, msg, sizeof msg), 0);
    assert_non_null(res);
    assert_true(res->n_tokens > 20);
    llmos__generate_result__free_unpacked(res, NULL);
    q.max_tokens = 5;
    q.max_positions = UINT32_MAX;
    assert_int_equal(gen_packed(c, &q, &res, msg, sizeof msg), 0);
    assert_int_equal(res->n_tokens, 5);
    llmos__generate_result__free_unpacked(res, NULL);
    /* An empty prompt: BOS alone. */
    q = (Llmos__GenerateRequest)LLMOS__GENERATE_REQUEST__INIT;
    q.max_tokens = 3;
    assert_int_equal(gen_packed(c, &q, &res, msg, sizeof msg), 0);
    assert_int_equal(res->n_tokens, 3);
    assert_int_equal(res->prompt_tokens, 1);
    llmos__generate_result__free_unpacked(res, NULL);
    /* NUL in a string field: refused, the field named. */
    static uint8_t buf[4 << 20];
    size_t n = 0;
    pb_bytes(buf, &n, 1, "a\0b", 3);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "prompt: a NUL byte at offset 1"));
    n = 0;
    pb_bytes(buf, &n, 1, "x", 1);
    pb_bytes(buf, &n, 5, "ab", 2);
    pb_bytes(buf, &n, 5, "c\0", 2);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "stop[1]: a NUL byte"));
    n = 0;
    pb_bytes(buf, &n, 10, "fact one.\n\0fact two.\n", 21);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "context: a NUL byte at offset 10"));
    n = 0;
    pb_bytes(buf, &n, 7, "id\0x", 4);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "request_id: a NUL byte"));
    n = 0;
    pb_bytes(buf, &n, 1, "\xc3\xa9t\xc3\xa9\0", 6);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "text: a NUL byte at offset 5"));
    n = 0;
    pb_bytes(buf, &n, 1, "Once", 4);
    pb_bytes(buf, &n, 2, " upon", 5);
    pb_bytes(buf, &n, 2, " a\0", 3);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "labels[1]: a NUL byte"));
    n = 0;
    pb_bytes(buf, &n, 2, "a\0", 2);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "request_id: a NUL byte"));
    n = 0;
    pb_bytes(buf, &n, 1, "/tmp/x\0.bin", 11);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "path: a NUL byte at offset 6"));
    assert_non_null(strstr(msg, "still serving"));
    /* A long request_id; context with prompt_tokens. */
    char rid[2000];
    memset(rid, 'r', sizeof rid - 1);
    rid[sizeof rid - 1] = 0;
    q = (Llmos__GenerateRequest)LLMOS__GENERATE_REQUEST__INIT;
    q.request_id = rid;
    assert_int_equal(gen_packed(c, &q, NULL, msg, sizeof msg), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "request_id: 1999 bytes"));
    int32_t toks[] = {1, 400};
    q = (Llmos__GenerateRequest)LLMOS__GENERATE_REQUEST__INIT;
    q.n_prompt_tokens = 2;
    q.prompt_tokens = toks;
    q.context = "a fact.";
    assert_int_equal(gen_packed(c, &q, NULL, msg, sizeof msg), LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "context"));
    /* 1 MiB texts: refused before tokenizing, in well under a second each. */
    size_t big = (size_t)1 << 20;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        text[i] = "Lily and Tom went to the park. "[i % 31];
    text[big] = 0;
    uint64_t t0 = llmos_now_ns();
    q = (Llmos__GenerateRequest)LLMOS__GENERATE_REQUEST__INIT;
    q.prompt = text;
    assert_int_equal(gen_packed(c, &q, NULL, msg, sizeof msg), LLMOS_CLIENT_ETOOBIG);
    assert_non_null(strstr(msg, "1048576 bytes"));
    q.prompt = "Once";
    q.context = text; /* a huge context is dropped, not refused */
    q.max_tokens = 4;
    assert_int_equal(gen_packed(c, &q, &res, msg, sizeof msg), 0);
    assert_int_equal(res->n_tokens, 4);
    assert_true(res->context_lines_kept == 0 &&
                res->context_lines_dropped == 1); /* one line, too long: dropped whole */
    llmos__generate_result__free_unpacked(res, NULL);
    Llmos__EmbedRequest eq = LLMOS__EMBED_REQUEST__INIT;
    eq.text = text;
    n = llmos__embed_request__pack(&eq, buf);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_ETOOBIG);
    Llmos__ScoreRequest sq = LLMOS__SCORE_REQUEST__INIT;
    char *labels[3] = {" a", text + big / 2, " b"};
    sq.prompt = "Once";
    sq.n_labels = 3;
    sq.labels = labels;
    n = llmos__score_request__pack(&sq, buf);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_ETOOBIG);
    assert_non_null(strstr(msg, "labels[1]"));
    double secs = (double)(llmos_now_ns() - t0) / 1e9;
    if (secs > 5) fprintf(stderr, "the 1 MiB requests took %.1f s\n", secs);
    assert_true(secs < 5);
    /* 65 labels. */
    char *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = " x";
    sq.n_labels = 65;
    sq.labels = many;
    n = llmos__score_request__pack(&sq, buf);
    assert_int_equal(raw_call(c, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, n, msg, sizeof msg),
                     LLMOS_CLIENT_EINVAL);
    assert_non_null(strstr(msg, "65 given"));
    free(text);
    greedy_check(c);
    Llmos__ModelStats *st = stats(c);
    assert_int_equal(st->kv_blocks_used, 0);
    assert_int_equal(st->running + st->queued, 0);
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
}

/* ---------------------------------------------------------------- overload */

typedef struct ov_job {
    const server_t *srv;
    int rc;
    char err[512];
} ov_job_t;

static void *ov_main(void *p) {
    ov_job_t *j = p;
    llmos_client_t *c = client(j->srv);
    llmos_client_gen_opts_t o = {.max_tokens = 150, .temperature = 0.7f, .seed = 5};
    llmos_client_error_t err;
    j->rc = llmos_client_generate(c, "Once upon a time", &o, NULL, NULL, NULL, &err);
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", err.msg);
    llmos_client_destroy(&c);
    return NULL;
}

static void test_overloaded(void **state) {
    (void)state;
    static server_t s; /* static: stop_leftover may stop it after the test left early */
    memset(&s, 0, sizeof s);
    const char *extra[] = {"--max-seqs", "1", "--queue-limit", "2", NULL};
    assert_int_equal(server_start(&s, extra), 0);
    enum { N = 12 };
    ov_job_t jobs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (ov_job_t){.srv = &s};
        pthread_create(&th[i], NULL, ov_main, &jobs[i]);
    }
    int ok = 0, over = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc == 0) ok++;
        if (jobs[i].rc == LLMOS_CLIENT_EOVERLOADED) {
            over++;
            assert_non_null(strstr(jobs[i].err, "overloaded"));
            assert_non_null(strstr(jobs[i].err, "retry after"));
        }
        if (jobs[i].rc && jobs[i].rc != LLMOS_CLIENT_EOVERLOADED) fprintf(stderr, "unexpected: %s\n", jobs[i].err);
    }
    assert_int_equal(ok + over, N);
    assert_true(ok >= 3);
    assert_true(over >= 1);
    llmos_client_t *c = client(&s);
    Llmos__ModelStats *st = stats(c);
    assert_int_equal(st->rejected_overloaded, (uint64_t)over);
    assert_int_equal(st->kv_blocks_used, 0);
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
    assert_int_equal(server_stop(&s), 0);
}

/* ---------------------------------------------------------------- a follower dies */

static void test_follower_dies(void **state) {
    (void)state;
    if (tp < 2) skip();
    static server_t s; /* static: stop_leftover may stop it after the test left early */
    memset(&s, 0, sizeof s);
    assert_int_equal(server_start(&s, NULL), 0);
    /* The follower is the rank whose endpoint is not the leader's: find its pid via its port. */
    const char *follower = NULL;
    for (int i = 0; i < s.n; i++)
        if (strcmp(s.endpoints[i], s.endpoint) != 0) follower = s.endpoints[i];
    assert_non_null(follower);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "fuser -k -KILL -n tcp %s >/dev/null 2>&1", strrchr(follower, ':') + 1);
    assert_int_equal(system(cmd), 0);
    llmos_client_t *c = client(&s);
    llmos_client_error_t err;
    llmos_client_gen_opts_t o = {.max_tokens = 50};
    int rc = 0;
    for (int i = 0; i < 100; i++) { /* the transport declares the peer dead after its timeout */
        rc = llmos_client_generate(c, "Once", &o, NULL, NULL, NULL, &err);
        if (rc == LLMOS_CLIENT_EUNAVAILABLE) break;
        usleep(100000);
    }
    assert_int_equal(rc, LLMOS_CLIENT_EUNAVAILABLE);
    Llmos__ModelStats *st = stats(c);
    assert_false(st->available);
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
    server_stop(&s);
}

/* ---------------------------------------------------------------- replicas */

/* 2 x tp ranks = two replicas: "model/0" and "model/1" answer on their
 * leaders' nodes, each with the reference text. */
static void test_two_replicas(void **state) {
    (void)state;
    if (tp < 2) skip();
    static char model[PATH_MAX], tok[PATH_MAX], tps[16];
    snprintf(model, sizeof model, "%s/stories260K.bin", env_or("LLMOS_MODELS", "."));
    snprintf(tok, sizeof tok, "%s/tok512.bin", env_or("LLMOS_MODELS", "."));
    snprintf(tps, sizeof tps, "%d", tp);
    const char *argv[] = {"--workers", "1", "--log-level", "warn", "--model", model, "--tokenizer", tok,
                          "--tp", tps, "--max-seqs", "4", NULL};
    static server_t s; /* static: stop_leftover may stop it after the test left early */
    memset(&s, 0, sizeof s);
    assert_int_equal(fixture_start(&s, 2 * tp, argv, "model/1"), 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/stories260K.greedy.txt", env_or("LLMOS_MODELS", "."));
    char *want = read_file(path);
    assert_non_null(want);
    want[strlen(want) - 1] = 0;
    int found[2] = {0, 0};
    for (int i = 0; i < s.n; i++) {
        for (int rep = 0; rep < 2; rep++) {
            char name[16];
            snprintf(name, sizeof name, "model/%d", rep);
            llmos_client_t *c = NULL;
            llmos_client_error_t err;
            assert_int_equal(llmos_client_connect(s.endpoints[i], NULL, &c, &err), 0);
            llmos_client_gen_opts_t o = {.actor = name, .max_positions = 200, .echo_prompt = 1, .timeout_ms = 60000};
            llmos_client_gen_result_t *res = NULL;
            int rc = llmos_client_generate(c, "", &o, NULL, NULL, &res, &err);
            if (rc == 0) {
                assert_string_equal(res->text, want);
                found[rep]++;
            } else {
                assert_int_equal(rc, LLMOS_CLIENT_ENOTFOUND); /* not this node's replica */
            }
            llmos_client_gen_result_free(&res);
            llmos_client_destroy(&c);
        }
    }
    assert_int_equal(found[0], 1);
    assert_int_equal(found[1], 1);
    free(want);
    server_stop(&s);
}

/* After every test: a server the test started and did not stop (a failed
 * assertion left the test early) is stopped, so it cannot hold its data
 * directory or keep the run waiting for its ranks. */
static int stop_leftover(void **state) {
    (void)state;
    if (leftover) server_stop(leftover);
    return 0;
}

static int group_setup(void **state) {
    (void)state;
    return server_start(&main_srv, NULL);
}

static int group_teardown(void **state) {
    (void)state;
    return server_stop(&main_srv);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--tp") == 0 && i + 1 < argc)
            tp = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            cmocka_set_test_filter(argv[++i]);
        else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc)
            cmocka_set_skip_filter(argv[++i]);
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_teardown(f, stop_leftover)
    const struct CMUnitTest tests[] = {
        T(test_greedy_reference),
        T(test_stream_concatenates),
        T(test_call_stream),
        T(test_concurrent_equals_solo),
        T(test_cancel_frees_kv),
        T(test_deadline),
        T(test_bad_payloads),
        T(test_embed),
        T(test_score),
        T(test_load_unload),
        T(test_failed_load_keeps_model),
        T(test_request_edges),
        T(test_overloaded),
        T(test_follower_dies),
        T(test_two_replicas),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
