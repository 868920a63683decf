/*
 * train_bench.c — training throughput of a ~15M-parameter Llama-shaped
 * model (stories15M's shape: dim 288, hidden 768, 6 layers, 6 heads, vocab
 * 32000) at batch 8 x 128 tokens: one step = forward + backward + clip +
 * AdamW, next-token loss, full training.
 *
 * Figures (JSON lines via bench_emit):
 *   train_tok_s_tN   llmos tokens/s with N threads; baseline: PyTorch
 *                    (/usr/bin/python3 torch_step.py, same shape, batch,
 *                    threads and BLIS kernel: it inherits BLIS_ARCH_TYPE that
 *                    model_blis_init set); limit: peak sgemm FLOP/s of this
 *                    run / (6 x parameters) FLOP per token.
 *   dp2_tok_s        the same global batch on 2 MPI ranks (1 thread each,
 *                    mpirun re-running this program with --dp), baseline the
 *                    1-thread single-rank figure: the data-parallel speed-up.
 * Rates come from the median step time of TRAIN_BENCH_STEPS (default 3)
 * steps after one warm-up step (torch_step.py does the same); the note
 * carries the load average, since other processes skew any figure here;
 * TRAIN_BENCH_QUICK=1 measures llmos with 1 thread only (for profiling).
 */
#include "bench/common/bench.h"
#include "model/train/train.h"
#include "runtime/base/clock.h"

#include <blis.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const model_config_t CFG = {.arch = MODEL_ARCH_LLAMA, .dim = 288, .hidden_dim = 768, .n_layers = 6,
                                   .n_heads = 6, .n_kv_heads = 6, .vocab_size = 32000, .seq_len = 256,
                                   .rope_theta = 10000.0f, .norm_eps = 1e-5f, .shared_classifier = 1};
enum { B = 8, T = 128 };

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median resists the stalls other processes cause on a shared machine. */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* tok/s (median step) of `steps` training steps on this rank's share of the batch. */
static double run(int threads, int steps, int rank, int world, size_t *n_params) {
    int share = B / world;
    train_net_opts_t o = {.task = TRAIN_TASK_LM, .mode = TRAIN_MODE_PRETRAIN, .batch = share, .seq = T, .threads = threads};
    train_net_t *n = NULL;
    llmos_error_t err = {0};
    if (train_net_new(&CFG, &o, &n, &err)) {
        fprintf(stderr, "train_bench: %s\n", err.msg);
        exit(1);
    }
    train_net_init_random(n, 1, 0.02f, 7u);
    const train_layout_t *l = train_net_layout(n);
    *n_params = l->n_params;
    train_adamw_t a;
    train_adamw_opts_t ao = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    if (train_adamw_init(&a, l, &ao, &err)) exit(1);
    int *tok = malloc(sizeof(int) * B * T), lens[B];
    uint64_t s = 7;
    for (int i = 0; i < B * T; i++) tok[i] = (int)(train_rng_next(&s) % (uint64_t)CFG.vocab_size);
    for (int b = 0; b < B; b++) lens[b] = T;
    train_batch_t bt = {.B = share, .T = T, .tokens = tok + (size_t)rank * share * T, .lens = lens};
    double times[64];
    if (steps > 64) steps = 64;
    for (int i = 0; i <= steps; i++) {
        uint64_t t0 = llmos_now_ns();
        double ls;
        int64_t cnt;
        train_net_zero_grad(n);
        if (train_net_forward(n, &bt, 1, &ls, &cnt, &err)) exit(1);
        train_net_backward(n, 1.0f / (float)(B * (T - 1)));
        if (world > 1)
            MPI_Allreduce(MPI_IN_PLACE, train_net_grads(n) + l->train_off, (int)l->train_len, MPI_FLOAT, MPI_SUM,
                          MPI_COMM_WORLD);
        train_grad_clip(train_net_grads(n), l->train_off, l->train_len, 1.0);
        train_adamw_step(&a, l, train_net_params(n), train_net_grads(n), 1e-4f);
        if (i > 0) times[i - 1] = (double)(llmos_now_ns() - t0) / 1e9; /* step 0 warms up */
    }
    double el = median(times, steps);
    train_adamw_deinit(&a);
    train_net_destroy(&n);
    free(tok);
    return (double)B * T / el;
}

static double peak_gflops(int threads) {
    int m = 1536;
    float *a = calloc((size_t)m * m, 4), *b = calloc((size_t)m * m, 4), *c = calloc((size_t)m * m, 4), one = 1, zero = 0;
    rntm_t r = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(threads, &r);
    double best = 0;
    for (int rep = 0; rep < 8; rep++) {
        uint64_t t0 = llmos_now_ns();
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, m, m, &one, a, m, 1, b, m, 1, &zero, c, m, 1, NULL, &r);
        double g = 2.0 * m * m * m / ((double)(llmos_now_ns() - t0));
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best * 1e9;
}

static double torch_tok_s(int threads, int steps) {
    char cmd[1024];
    /* BLIS reads its thread count from the environment, not from torch. */
    snprintf(cmd, sizeof cmd,
             "BLIS_NUM_THREADS=%d OMP_NUM_THREADS=%d /usr/bin/python3 %s %d %d %d %d %d %d %d %d %d %d 2>/dev/null",
             threads, threads, TRAIN_BENCH_TORCH, CFG.dim, CFG.hidden_dim, CFG.n_layers, CFG.n_heads, CFG.n_kv_heads,
             CFG.vocab_size, B, T, steps, threads);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[512] = {0};
    double v = 0;
    if (fgets(line, sizeof line, p)) {
        const char *k = strstr(line, "\"tok_s\":");
        if (k) v = atof(k + 8);
    }
    pclose(p);
    return v;
}

int main(int argc, char **argv) {
    model_omp_passive(argv); /* spinning OpenMP barriers collapse on a shared machine */
    const char *se = getenv("TRAIN_BENCH_STEPS");
    int steps = se && atoi(se) > 0 ? atoi(se) : 3;
    model_blis_init(); /* sets BLIS_ARCH_TYPE, which the torch child inherits */
    size_t np = 0;
    if (argc > 1 && !strcmp(argv[1], "--dp")) {
        int rank, world;
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        double v = run(1, steps, rank, world, &np);
        if (rank == 0) printf("dp %.3f\n", v);
        MPI_Finalize();
        return 0;
    }
    char note[160];
    double t1 = 0;
    int quick = getenv("TRAIN_BENCH_QUICK") && atoi(getenv("TRAIN_BENCH_QUICK"));
    if (quick) {
        printf("llmos 1 thread: %.1f tok/s\n", run(1, steps, 0, 1, &np));
        return 0;
    }
    for (int threads = 1; threads <= 2; threads++) {
        double v = run(threads, steps, 0, 1, &np);
        if (threads == 1) t1 = v;
        double tv = torch_tok_s(threads, steps), peak = peak_gflops(threads);
        double load[1] = {0};
        getloadavg(load, 1);
        snprintf(note, sizeof note, "%.1fM params, batch %dx%d, fwd+bwd+AdamW, BLIS %s, threads=%d, load %.1f",
                 (double)np / 1e6, B, T, model_blis_init(), threads, load[0]);
        char metric[32];
        snprintf(metric, sizeof metric, "train_tok_s_t%d", threads);
        bench_figure_t f = {.bench = "train", .metric = metric, .value = v, .unit = "tok/s",
                            .baseline = tv > 0 ? "pytorch (same model, batch, threads, BLIS kernel)" : NULL,
                            .baseline_value = tv, .limit = "peak sgemm / (6 x params) FLOP per token",
                            .limit_value = peak / (6.0 * (double)np), .note = note};
        bench_emit(&f);
    }
    /* Data parallel: 2 ranks x 1 thread on the same global batch. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 %s --dp 2>/dev/null", argv[0]);
    FILE *p = popen(cmd, "r");
    double dp = 0;
    char line[256];
    while (p && fgets(line, sizeof line, p))
        if (!strncmp(line, "dp ", 3)) dp = atof(line + 3);
    if (p) pclose(p);
    if (dp > 0) {
        bench_figure_t f = {.bench = "train", .metric = "dp2_tok_s", .value = dp, .unit = "tok/s",
                            .baseline = "1 rank, 1 thread", .baseline_value = t1,
                            .note = "2 MPI ranks x 1 thread, gradient all-reduce each step"};
        bench_emit(&f);
    }
    return 0;
}
