/*
 * model_bench — the transformer engine against the machine's limits.
 *
 * Writes a random-weight model with the shape of a 110M Llama (dim 768,
 * 12 layers, 12 heads, hidden 2048, vocab 32000) as a llama2.c checkpoint
 * in /tmp (removed at the end), loads it like any model (mmapped), and
 * measures in the same run:
 *   limits    peak sgemm GFLOP/s of the BLIS kernel selected at start-up,
 *             memory read bandwidth (bench_mem_read_bw);
 *   prefill   one 512-token prompt in one forward: tok/s vs peak GEMM
 *             (FLOPs per token / peak);
 *   decode    one sequence, one token per forward, fp32: tok/s vs the
 *             bandwidth limit (weight bytes per token / bandwidth);
 *   batch16   16 sequences decoding together: aggregate tok/s vs single;
 *   int8      single-sequence decode with --quantize q8 weights vs fp32;
 * each with 1 and 2 threads; and, in a fresh child process (so nothing of
 * the set-up counts), peak RSS while serving 16 sequences of 512 tokens vs
 * weight bytes + KV bytes in use.
 * Decode figures are the median step time of the run (prefill: the best of
 * its repetitions), so other people's work on the shared machine does not
 * decide them; every note carries the load average.
 * Usage: model_bench [--quick]   (--quick: fewer repetitions)
 */
#include "bench/common/bench.h"
#include "model_gen.h"
#include "model/model.h"
#include "model/q8.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIM 768
#define LAYERS 12
#define HEADS 12
#define HIDDEN 2048
#define VOCAB 32000
#define SEQ 1024
#define PROMPT 512

static char model_path[256], tok_path[256];

static void die(const char *what, const llmos_error_t *e) {
    fprintf(stderr, "model_bench: %s: %s\n", what, e ? e->msg : "");
    unlink(model_path);
    unlink(tok_path);
    exit(1);
}

static uint64_t rng = 0x853c49e6748fea9bull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((float)(rng >> 40) / 16777216.0f - 0.5f) * 0.04f;
}

static void write_model(void) {
    model_config_t c = {.arch = MODEL_ARCH_LLAMA, .dim = DIM, .hidden_dim = HIDDEN, .n_layers = LAYERS,
                        .n_heads = HEADS, .n_kv_heads = HEADS, .vocab_size = VOCAB, .seq_len = SEQ,
                        .rope_theta = 10000, .norm_eps = 1e-5f, .shared_classifier = 1};
    llmos_error_t e = {0};
    if (llmos_test_model_write(&c, 0x853c49e6748fea9bull, 0.04f, model_path, tok_path, &e)) die("writing the model", &e);
}

static double peak_gflops(int threads) {
    int M = 512, N = 2048, K = 768;
    float *a = aligned_alloc(64, sizeof(float) * M * K), *b = aligned_alloc(64, sizeof(float) * N * K),
          *c = aligned_alloc(64, sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = frand();
    for (int i = 0; i < N * K; i++) b[i] = frand();
    float one = 1, zero = 0;
    rntm_t r = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(threads, &r);
    rntm_t r1 = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &r1);
    /* The best of BLIS's own threading and of one single-threaded BLIS call
     * per thread on a slice of the columns (what the engine does): the
     * higher of the two is the limit. */
    double best = 0;
    for (int rep = 0; rep < 12; rep++) {
        uint64_t t0 = llmos_now_ns();
        if (rep % 2 == 0) {
            bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, M, N, K, &one, a, K, 1, b, K, 1, &zero, c, N, 1, NULL, &r);
        } else {
            int per = N / threads;
#pragma omp parallel for num_threads(threads)
            for (int t = 0; t < threads; t++)
                bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, M, per, K, &one, a, K, 1, b + (size_t)t * per * K, K, 1,
                             &zero, c + (size_t)t * per, N, 1, NULL, &r1);
        }
        double s = (double)(llmos_now_ns() - t0) / 1e9, g = 2.0 * M * N * K / s / 1e9;
        if (g > best) best = g;
    }
    free(a), free(b), free(c);
    return best;
}

static model_t *load(int q8) {
    model_load_opts_t o = {.tokenizer_path = tok_path, .quantize = q8 ? MODEL_DTYPE_Q8_0 : MODEL_DTYPE_F32};
    llmos_error_t e = {0};
    model_t *m = NULL;
    if (model_load(model_path, &o, &m, &e)) {
        if (q8) {
            fprintf(stderr, "model_bench: int8 skipped: %s\n", e.msg);
            return NULL;
        }
        die("load", &e);
    }
    return m;
}

static int prompt_tok(int i) { return 3 + (i * 7919) % (VOCAB - 3); }

/* A decoder: nseq sequences with short prompts of different lengths, each
 * step one new token for every sequence in one forward call. */
typedef struct dec {
    model_ctx_t *c;
    int nseq, step, seq[16], next[16];
} dec_t;

static void dec_open(dec_t *d, model_t *m, int threads, int nseq) {
    llmos_error_t e = {0};
    model_ctx_opts_t o = {.threads = threads, .max_seqs = nseq, .max_tokens = 16 * nseq, .kv_blocks = 8 * nseq};
    *d = (dec_t){.nseq = nseq};
    if (model_ctx_new(m, &o, &d->c, &e)) die("ctx", &e);
    int toks[16][16];
    model_batch_entry_t be[16];
    for (int s = 0; s < nseq; s++) {
        model_seq_open(d->c, &d->seq[s], &e);
        for (int i = 0; i < 16; i++) toks[s][i] = prompt_tok(s * 16 + i);
        be[s] = (model_batch_entry_t){d->seq[s], toks[s], 4 + s % 12};
    }
    if (model_ctx_forward(d->c, be, nseq, &e)) die("prefill", &e);
}

/* Seconds for one decode step of all the decoder's sequences. */
static double dec_step(dec_t *d) {
    llmos_error_t e = {0};
    model_batch_entry_t be[16];
    for (int s = 0; s < d->nseq; s++) {
        d->next[s] = prompt_tok(1000 + d->step * d->nseq + s);
        be[s] = (model_batch_entry_t){d->seq[s], &d->next[s], 1};
    }
    d->step++;
    uint64_t t0 = llmos_now_ns();
    if (model_ctx_forward(d->c, be, d->nseq, &e)) die("decode", &e);
    return (double)(llmos_now_ns() - t0) / 1e9;
}

/* Single fp32, 16-sequence fp32 and single int8 decode, their steps
 * interleaved so that the machine's other work weighs on all three alike;
 * tok/s from the median step of each. */
static void decode_all(model_t *m, model_t *mq, int threads, int steps, double *single, double *batch, double *q8) {
    dec_t d1, d16, dq;
    dec_open(&d1, m, threads, 1);
    dec_open(&d16, m, threads, 16);
    if (mq) dec_open(&dq, mq, threads, 1);
    double t1[256], t16[256], tq[256];
    for (int i = 0; i < steps + 2; i++) {
        double a = dec_step(&d1), b = dec_step(&d16), q = mq ? dec_step(&dq) : 0;
        if (i < 2) continue; /* warm-up */
        t1[i - 2] = a, t16[i - 2] = b, tq[i - 2] = q;
    }
    *single = 1.0 / bench_median(t1, steps);
    *batch = 16.0 / bench_median(t16, steps);
    *q8 = mq ? 1.0 / bench_median(tq, steps) : 0;
    model_ctx_destroy(&d1.c);
    model_ctx_destroy(&d16.c);
    if (mq) model_ctx_destroy(&dq.c);
}

static double prefill(model_t *m, int threads, int reps) {
    llmos_error_t e = {0};
    model_ctx_t *c = NULL;
    model_ctx_opts_t o = {.threads = threads, .max_seqs = 1, .max_tokens = PROMPT};
    if (model_ctx_new(m, &o, &c, &e)) die("ctx", &e);
    int toks[PROMPT];
    for (int i = 0; i < PROMPT; i++) toks[i] = prompt_tok(i);
    double best = 0;
    for (int r = 0; r < reps; r++) {
        int seq;
        model_seq_open(c, &seq, &e);
        model_batch_entry_t be = {seq, toks, PROMPT};
        uint64_t t0 = llmos_now_ns();
        if (model_ctx_forward(c, &be, 1, &e)) die("prefill", &e);
        double tps = PROMPT / ((double)(llmos_now_ns() - t0) / 1e9);
        if (tps > best) best = tps;
        model_seq_close(c, seq);
    }
    model_ctx_destroy(&c);
    return best;
}

/* Child: serve 16 x 512 tokens, print "rss_bytes weight_bytes kv_bytes". */
static int rss_child(void) {
    llmos_log_set_level(LLMOS_LOG_WARN);
    model_t *m = load(0);
    llmos_error_t e = {0};
    model_ctx_t *c = NULL;
    model_ctx_opts_t o = {.threads = 2, .max_seqs = 16, .max_tokens = PROMPT, .kv_blocks = 16 * SEQ / MODEL_KV_BLOCK};
    if (model_ctx_new(m, &o, &c, &e)) die("ctx", &e);
    int toks[PROMPT];
    for (int i = 0; i < PROMPT; i++) toks[i] = prompt_tok(i);
    int seq[16];
    for (int s = 0; s < 16; s++) { /* prefill each sequence, then decode all together */
        model_seq_open(c, &seq[s], &e);
        model_batch_entry_t be = {seq[s], toks, PROMPT - 8};
        if (model_ctx_forward(c, &be, 1, &e)) die("prefill", &e);
    }
    for (int step = 0; step < 8; step++) {
        model_batch_entry_t be[16];
        for (int s = 0; s < 16; s++) be[s] = (model_batch_entry_t){seq[s], &toks[step], 1};
        if (model_ctx_forward(c, be, 16, &e)) die("decode", &e);
    }
    int used;
    size_t bb;
    model_ctx_kv_usage(c, &used, NULL, &bb);
    printf("%ld %zu %zu\n", bench_self_status_kb("VmHWM:") * 1024, model_weight_bytes(m), (size_t)used * bb);
    model_ctx_destroy(&c);
    model_destroy(&m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--rss-child")) {
        model_omp_passive(argv);
        snprintf(model_path, sizeof model_path, "%s", argv[2]);
        snprintf(tok_path, sizeof tok_path, "%s", argv[3]);
        return rss_child();
    }
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    model_omp_passive(argv);
    llmos_log_set_level(LLMOS_LOG_WARN);
    const char *kernel = model_blis_init();
    snprintf(model_path, sizeof model_path, "/tmp/llmos_bench_model_%d.bin", (int)getpid());
    snprintf(tok_path, sizeof tok_path, "/tmp/llmos_bench_tok_%d.bin", (int)getpid());
    write_model();
    model_t *m = load(0), *mq = load(1);
    size_t wbytes = model_weight_bytes(m);
    /* Per prompt token: 2 FLOPs per weight of the 12 layers (the classifier
     * runs for the last token only) plus the causal attention's QK and PV. */
    double flops_tok = 2.0 * LAYERS * (4.0 * DIM * DIM + 3.0 * DIM * HIDDEN) + 2.0 * LAYERS * DIM * PROMPT;
    char note[160];
    double single[3] = {0};
    for (int th = 1; th <= 2; th++) {
        double peak = peak_gflops(th), bw = bench_mem_read_bw(th);
        snprintf(note, sizeof note, "threads=%d kernel=%s loadavg=%.1f", th, kernel, bench_loadavg());
        char metric[64];
        snprintf(metric, sizeof metric, "sgemm_peak_gflops_t%d", th);
        bench_emit(&(bench_figure_t){"model", metric, peak, "GFLOP/s", NULL, 0, NULL, 0, note});

        double agg, q;
        decode_all(m, mq, th, quick ? 12 : 24, &single[th], &agg, &q);
        /* Bandwidth again after the decode: the better of two samples, so a
         * burst of other work during one of them does not set the limit. */
        double bw2 = bench_mem_read_bw(th);
        if (bw2 > bw) bw = bw2;
        snprintf(metric, sizeof metric, "mem_read_bw_t%d", th);
        bench_emit(&(bench_figure_t){"model", metric, bw / 1e9, "GB/s", NULL, 0, NULL, 0, note});
        double pf = prefill(m, th, quick ? 1 : 2);
        snprintf(metric, sizeof metric, "prefill512_tok_s_t%d", th);
        bench_emit(&(bench_figure_t){"model", metric, pf, "tok/s", "one-token-at-a-time decode", single[th],
                                     "peak sgemm / FLOPs per token", peak * 1e9 / flops_tok, note});
        snprintf(metric, sizeof metric, "decode_fp32_tok_s_t%d", th);
        bench_emit(&(bench_figure_t){"model", metric, single[th], "tok/s", NULL, 0,
                                     "memory bandwidth / weight bytes per token", bw / (double)wbytes, note});
        snprintf(metric, sizeof metric, "decode16_agg_tok_s_t%d", th);
        bench_emit(&(bench_figure_t){"model", metric, agg, "tok/s", "single-sequence decode", single[th], NULL, 0,
                                     note});
        if (mq) {
            char qnote[200];
            snprintf(qnote, sizeof qnote, "%s q8_kernel=%s", note, q8_kernel_name());
            snprintf(metric, sizeof metric, "decode_int8_tok_s_t%d", th);
            bench_emit(&(bench_figure_t){"model", metric, q, "tok/s", "fp32 single-sequence decode", single[th],
                                         "memory bandwidth / q8 weight bytes per token",
                                         bw / (double)model_weight_bytes(mq), qnote});
        }
    }
    model_destroy(&m);
    model_destroy(&mq);

    /* Peak RSS in a fresh process. */
    int pfd[2];
    if (pipe(pfd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            execl("/proc/self/exe", argv[0], "--rss-child", model_path, tok_path, (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        char buf[256] = {0};
        ssize_t n = read(pfd[0], buf, sizeof buf - 1);
        close(pfd[0]);
        int st;
        waitpid(pid, &st, 0);
        long rss;
        size_t wb, kvb;
        if (n > 0 && sscanf(buf, "%ld %zu %zu", &rss, &wb, &kvb) == 3)
            bench_emit(&(bench_figure_t){"model", "serve16x512_peak_rss", (double)rss / 1048576.0, "MiB", NULL, 0,
                                         "weight bytes + KV bytes used", (double)(wb + kvb) / 1048576.0,
                                         "16 sequences of 512 tokens, threads=2; target of_limit <= 1.1"});
        else
            fprintf(stderr, "model_bench: the RSS child failed\n");
    }
    unlink(model_path);
    unlink(tok_path);
    return 0;
}
