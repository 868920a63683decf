/*
 * serve_bench.c — serving through llmosd over ZeroMQ: aggregate generated
 * tokens/s with 1, 8 and 32 concurrent clients (one handle and thread
 * each) and the time to first token, on a random-weight model with the
 * shape of a 110M Llama (tests/lib/model_gen.h).
 *
 *   serve_bench [--tp N] [--tokens N] [--model-threads N]
 *
 * A real llmosd is started, with T = 1 and then T = 2 under `mpirun -np 2`
 * (only the given T with --tp); every
 * client streams its generation and notes when its first text arrives.
 * Baseline: the 1-client rate measured in the same run, the better of two
 * (the target: 32 clients >= 6 x 1 client).  Limit of the 1-client rate: memory
 * bandwidth / the bytes of weights a decode step reads (measured here).
 */
#include "bench/common/bench.h"
#include "model_gen.h"
#include "node_fixture.h"
#include "llmos/client.h"
#include "llmos/model.pb-c.h"
#include "runtime/base/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tp = 1, gen_tokens = 48, model_threads = 1;
static char model_path[256], tok_path[256];
static llmos_test_node_t node;
static int tp_given;

static void run_one(const model_config_t *cfgp);

static void cleanup(void) {
    llmos_test_node_stop(&node, 0, NULL, NULL);
    unlink(model_path);
    unlink(tok_path);
}

static void die(const char *fmt, const char *what) {
    fprintf(stderr, "serve_bench: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    cleanup();
    exit(1);
}

typedef struct client_job {
    int idx, reqs;
    uint64_t start_ns, first_ns;
    double ttft_ms[8];
    int n_ttft;
    size_t tokens;
    int rc;
    char err[LLMOS_CLIENT_ERRMSG_MAX];
} client_job_t;

static int on_text(void *user, const char *text, size_t len, const int32_t *tokens, size_t n_tokens) {
    (void)text;
    (void)len;
    (void)tokens;
    (void)n_tokens;
    client_job_t *j = user;
    if (!j->first_ns) j->first_ns = llmos_now_ns();
    return 0;
}

static void *client_main(void *p) {
    client_job_t *j = p;
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t co = {.timeout_ms = 600000};
    if ((j->rc = llmos_client_connect(node.endpoint, &co, &c, &err)) != 0) goto out;
    for (int r = 0; r < j->reqs; r++) {
        char prompt[160];
        snprintf(prompt, sizeof prompt, "t%dt%dt%d", 3 + j->idx, 40 + r, 7 + j->idx);
        llmos_client_gen_opts_t o = {.max_tokens = (uint32_t)gen_tokens, .temperature = 0.8f,
                                     .seed = 100 + (uint64_t)j->idx};
        llmos_client_gen_result_t *res = NULL;
        j->first_ns = 0;
        j->start_ns = llmos_now_ns();
        if ((j->rc = llmos_client_generate(c, prompt, &o, on_text, j, &res, &err)) != 0) goto out;
        j->tokens += res->n_tokens;
        if (j->first_ns && j->n_ttft < 8) j->ttft_ms[j->n_ttft++] = (double)(j->first_ns - j->start_ns) / 1e6;
        llmos_client_gen_result_free(&res);
    }
out:
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", err.msg);
    llmos_client_destroy(&c);
    return NULL;
}

/* Runs n clients with reqs requests each; returns tokens/s; ttft in *t (n*reqs). */
static double run_clients(int n, int reqs, double *ttft, int *n_ttft) {
    client_job_t *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!jobs || !th) die("%s", "no memory");
    uint64_t t0 = llmos_now_ns();
    for (int i = 0; i < n; i++) {
        jobs[i] = (client_job_t){.idx = i, .reqs = reqs};
        pthread_create(&th[i], NULL, client_main, &jobs[i]);
    }
    size_t tokens = 0;
    *n_ttft = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc) die("a client failed: %s", jobs[i].err);
        tokens += jobs[i].tokens;
        for (int k = 0; k < jobs[i].n_ttft; k++) ttft[(*n_ttft)++] = jobs[i].ttft_ms[k];
    }
    double s = (double)(llmos_now_ns() - t0) / 1e9;
    free(jobs);
    free(th);
    return (double)tokens / s;
}

static double percentile(double *v, int n, double q) {
    if (n <= 0) return 0;
    bench_median(v, n); /* sorts */
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tp") && i + 1 < argc) {
            tp = atoi(argv[++i]);
            tp_given = 1;
        }
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) gen_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model-threads") && i + 1 < argc) model_threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: serve_bench [--tp N] [--tokens N] [--model-threads N]\n");
            return 2;
        }
    }
    if (tp < 1 || gen_tokens < 1 || model_threads < 1) {
        fprintf(stderr, "serve_bench: bad option value\n");
        return 2;
    }
    snprintf(model_path, sizeof model_path, "/tmp/serve_bench_%d.bin", (int)getpid());
    snprintf(tok_path, sizeof tok_path, "/tmp/serve_bench_%d.tok", (int)getpid());
    model_config_t cfg = {.arch = MODEL_ARCH_LLAMA, .dim = 768, .hidden_dim = 2048, .n_layers = 12, .n_heads = 12,
                          .n_kv_heads = 12, .vocab_size = 32000, .seq_len = 1024, .rope_theta = 10000,
                          .norm_eps = 1e-5f, .shared_classifier = 1};
    llmos_error_t e = {0};
    if (llmos_test_model_write(&cfg, 0x853c49e6748fea9bull, 0.04f, model_path, tok_path, &e)) die("writing the model: %s", e.msg);
    int tps_list[2] = {tp, 0};
    if (!tp_given) tps_list[1] = 2; /* T = 1, then T = 2 under mpirun */
    for (int ti = 0; ti < 2 && tps_list[ti]; ti++) {
        tp = tps_list[ti];
        run_one(&cfg);
    }
    cleanup();
    return 0;
}

/* One llmosd with tensor parallelism tp: the three client counts. */
static void run_one(const model_config_t *cfgp) {
    const model_config_t cfg = *cfgp;
    char tps[16], thr[16];
    snprintf(tps, sizeof tps, "%d", tp);
    snprintf(thr, sizeof thr, "%d", model_threads);
    const char *args[] = {"--log-level", "warn", "--model", model_path, "--tokenizer", tok_path, "--tp", tps,
                          "--model-threads", thr, "--max-seqs", "32", "--token-budget", "512", NULL};
    llmos_test_node_opts_t o = {.args = args, .ranks = tp, .mpi_recovery = 1, .actor = "model",
                                .probe_type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, .timeout_ms = 120000};
    llmos_error_t err;
    if (llmos_test_node_start(&node, &o, &err) != 0) {
        fprintf(stderr, "serve_bench: llmosd with --tp %d did not start (%s); skipped\n", tp, err.msg);
        return;
    }
    double ttft[256];
    int nt = 0;
    run_clients(1, 1, ttft, &nt); /* warm-up: page the weights in */
    /* The 1-client rate is the baseline: the better of two runs, so a burst
     * of the machine's other work does not inflate the ratios. */
    double c1 = run_clients(1, 2, ttft, &nt), t1_p50 = percentile(ttft, nt, 0.5);
    double c1b = run_clients(1, 2, ttft, &nt), t1b_p50 = percentile(ttft, nt, 0.5);
    if (c1b > c1) c1 = c1b;
    if (t1b_p50 < t1_p50) t1_p50 = t1b_p50;
    double c8 = run_clients(8, 1, ttft, &nt);
    double c32 = run_clients(32, 1, ttft, &nt);
    double p50 = percentile(ttft, nt, 0.5), p99 = percentile(ttft, nt, 0.99);
    /* Weights one decode step reads: the whole model but the embedding look-up table, per rank. */
    double wbytes = ((double)cfg.n_layers * (4.0 * cfg.dim * cfg.dim + 3.0 * cfg.dim * cfg.hidden_dim) +
                     (double)cfg.vocab_size * cfg.dim) * 4.0 / tp;
    double bw = bench_mem_read_bw(1);
    char note[160];
    snprintf(note, sizeof note, "tp=%d model_threads=%d tokens=%d loadavg=%.1f", tp, model_threads, gen_tokens,
             bench_loadavg());
    char m1[48], m8[48], m32[48], mt1[48], mp50[48], mp99[48];
    snprintf(m1, sizeof m1, "tok_s_c1_tp%d", tp);
    snprintf(m8, sizeof m8, "tok_s_c8_tp%d", tp);
    snprintf(m32, sizeof m32, "tok_s_c32_tp%d", tp);
    snprintf(mt1, sizeof mt1, "ttft_p50_ms_c1_tp%d", tp);
    snprintf(mp50, sizeof mp50, "ttft_p50_ms_c32_tp%d", tp);
    snprintf(mp99, sizeof mp99, "ttft_p99_ms_c32_tp%d", tp);
    bench_emit(&(bench_figure_t){.bench = "serve", .metric = m1, .value = c1, .unit = "tok/s",
                                 .limit = "mem bandwidth / weight bytes per step", .limit_value = bw / wbytes,
                                 .note = note});
    bench_emit(&(bench_figure_t){.bench = "serve", .metric = m8, .value = c8, .unit = "tok/s",
                                 .baseline = "1 client", .baseline_value = c1, .note = note});
    bench_emit(&(bench_figure_t){.bench = "serve", .metric = m32, .value = c32, .unit = "tok/s",
                                 .baseline = "1 client (target ratio >= 6)", .baseline_value = c1, .note = note});
    bench_emit(&(bench_figure_t){.bench = "serve", .metric = mt1, .value = t1_p50, .unit = "ms", .note = note});
    bench_emit(&(bench_figure_t){.bench = "serve", .metric = mp50, .value = p50, .unit = "ms",
                                 .baseline = "1 client p50", .baseline_value = t1_p50, .note = note});
    bench_emit(&(bench_figure_t){.bench = "serve", .metric = mp99, .value = p99, .unit = "ms",
                                 .baseline = "1 client p50", .baseline_value = t1_p50, .note = note});
    fflush(stdout);
    llmos_test_node_stop(&node, 0, NULL, NULL);
}
