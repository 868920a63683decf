/*
 * q8_bench — the int8 (q8_0) matmul kernels against memory bandwidth and
 * against the engine's own fp32 kernel, measured in the same run.
 *
 * Shapes: 2048x768 (an MLP matrix of a 110M Llama) and 32000x768 (its
 * classifier).  Decode streams every weight once per token and no layer's
 * weights are still in cache when they come round again, so each shape is
 * benchmarked over enough distinct copies (rotated round-robin, like the
 * layers of a model) to exceed the last-level cache: >= 48 MiB of q8.
 * The fp32 baseline rotates the same number of fp32 copies through
 * model_sgemm_xwt (the forward pass's register-blocked small-batch GEMM).
 *
 * Figures (threads 1 and 2):
 *   matvec_<shape>_gbs_t<n>   q8 weight bytes read per second, batch 1;
 *                             limit: bench_mem_read_bw(n)
 *   matvec_<shape>_t<n>       matvecs/s, q8 vs fp32 (ratio: decode speed-up)
 *   batch16_<shape>_t<n>      GOP/s with 16 activation rows, q8 vs fp32
 *   kernel_<name>_2048x768_t1 matvec GB/s of each kernel this CPU runs
 * Usage: q8_bench [--quick]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/common/bench.h"
#include "model/kernels.h"
#include "model/q8.h"
#include "runtime/base/clock.h"

#define COLS 768
#define MIN_BYTES ((size_t)48 << 20)

static int g_quick;

static uint64_t g_rng = 88172645463325252ull;
static float rndf(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)(g_rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

typedef struct shape {
    int rows, cols, copies;
    float **wf;         /* [copies] fp32 matrices */
    q8_block_t **wq;    /* [copies] q8 matrices */
} shape_t;

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "q8_bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void shape_build(shape_t *s, int rows, int cols) {
    s->rows = rows, s->cols = cols;
    size_t qbytes = q8_matrix_bytes(rows, cols), fbytes = sizeof(float) * (size_t)rows * cols;
    s->copies = (int)((MIN_BYTES + qbytes - 1) / qbytes);
    if (s->copies < 2) s->copies = 2;
    s->wf = xmalloc(sizeof(float *) * s->copies);
    s->wq = xmalloc(sizeof(q8_block_t *) * s->copies);
    s->wf[0] = xmalloc(fbytes);
    for (size_t i = 0; i < (size_t)rows * cols; i++) s->wf[0][i] = rndf() * 0.05f;
    s->wq[0] = xmalloc(qbytes);
    llmos_error_t err = {0};
    if (q8_quantize_matrix(s->wf[0], s->wq[0], rows, cols, 2, &err) != 0) {
        fprintf(stderr, "q8_bench: %s\n", err.msg);
        exit(1);
    }
    for (int c = 1; c < s->copies; c++) {
        s->wf[c] = xmalloc(fbytes);
        s->wq[c] = xmalloc(qbytes);
        memcpy(s->wf[c], s->wf[0], fbytes);
        memcpy(s->wq[c], s->wq[0], qbytes);
    }
}

static void shape_free(shape_t *s) {
    for (int c = 0; c < s->copies; c++) free(s->wf[c]), free(s->wq[c]);
    free(s->wf), free(s->wq);
}

typedef struct run {
    const shape_t *s;
    int q8, batch, threads;
    const float *x;
    float *y;
    q8_scratch_t *scratch;
} run_t;

static void run_once(const run_t *r, int copy) {
    const shape_t *s = r->s;
    if (r->q8) {
        llmos_error_t err = {0};
        if (q8_matmul(r->y, s->wq[copy], s->rows, s->cols, r->x, r->batch, r->scratch, r->threads, &err) != 0) {
            fprintf(stderr, "q8_bench: %s\n", err.msg);
            exit(1);
        }
    } else {
        model_sgemm_xwt(s->wf[copy], s->rows, s->cols, r->x, r->batch, r->y, r->threads, NULL);
    }
}

/* Seconds per matmul: the best of 5 rounds (the machine is shared, so the
 * fastest round is the one least disturbed), each over every copy at least
 * once and ~60 ms long. */
static double time_per_call(const run_t *r) {
    int copies = r->s->copies;
    for (int c = 0; c < copies; c++) run_once(r, c); /* warm-up: pages, threads */
    uint64_t t0 = llmos_now_ns();
    for (int c = 0; c < copies; c++) run_once(r, c);
    double one = (double)(llmos_now_ns() - t0) / 1e9 / copies;
    int n = (int)((g_quick ? 0.02 : 0.06) / one);
    if (n < copies) n = copies;
    double best = 1e30;
    for (int k = 0; k < 5; k++) {
        uint64_t a = llmos_now_ns();
        for (int i = 0; i < n; i++) run_once(r, i % copies);
        double t = (double)(llmos_now_ns() - a) / 1e9 / n;
        if (t < best) best = t;
    }
    return best;
}

/* The 1-minute load average: the machine is shared, and figures taken under
 * load are worth less. */
static double loadavg(void) {
    double l[1] = {0};
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

int main(int argc, char **argv) {
    g_quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    double bw[3] = {0, bench_mem_read_bw(1), bench_mem_read_bw(2)};

    enum { MAXB = 16 };
    float *x = xmalloc(sizeof(float) * MAXB * COLS), *y = xmalloc(sizeof(float) * MAXB * 32000);
    for (int i = 0; i < MAXB * COLS; i++) x[i] = rndf();
    q8_scratch_t scratch;
    llmos_error_t err = {0};
    if (q8_scratch_init(&scratch, MAXB, COLS, &err) != 0) {
        fprintf(stderr, "q8_bench: %s\n", err.msg);
        return 1;
    }
    const char *best = q8_kernel_name();
    const int shapes[2] = {2048, 32000};
    char metric[96], note[160];
    for (int si = 0; si < 2; si++) {
        shape_t s;
        shape_build(&s, shapes[si], COLS);
        double qbytes = (double)q8_matrix_bytes(s.rows, s.cols);
        double ops = 2.0 * s.rows * s.cols;
        for (int th = 1; th <= 2; th++) {
            run_t q = {&s, 1, 1, th, x, y, &scratch}, f = {&s, 0, 1, th, x, y, &scratch};
            double tq = time_per_call(&q), tf = time_per_call(&f);
            snprintf(note, sizeof note, "kernel=%s threads=%d copies=%d q8_bytes=%.0f fp32_gbs=%.2f loadavg=%.1f", best,
                     th, s.copies, qbytes, (double)sizeof(float) * s.rows * s.cols / tf / 1e9, loadavg());
            snprintf(metric, sizeof metric, "matvec_%dx%d_gbs_t%d", s.rows, s.cols, th);
            bench_emit(&(bench_figure_t){"q8", metric, qbytes / tq / 1e9, "GB/s", NULL, 0,
                                         "mem_read_bw", bw[th] / 1e9, note});
            snprintf(metric, sizeof metric, "matvec_%dx%d_t%d", s.rows, s.cols, th);
            bench_emit(&(bench_figure_t){"q8", metric, 1.0 / tq, "matvec/s", "fp32 model_sgemm_xwt", 1.0 / tf, NULL, 0,
                                         note});
            q.batch = f.batch = 16;
            tq = time_per_call(&q), tf = time_per_call(&f);
            snprintf(metric, sizeof metric, "batch16_%dx%d_t%d", s.rows, s.cols, th);
            snprintf(note, sizeof note, "kernel=%s threads=%d q8_weight_gbs=%.2f loadavg=%.1f", best, th,
                     qbytes / tq / 1e9, loadavg());
            bench_emit(&(bench_figure_t){"q8", metric, 16 * ops / tq / 1e9, "GOP/s", "fp32 model_sgemm_xwt",
                                         16 * ops / tf / 1e9, NULL, 0, note});
        }
        if (si == 0) {
            /* every kernel this CPU runs, on the same streaming matvec */
            const char *names[] = {"avx512vnni", "avx512bw", "avx2", "scalar"};
            double t_scalar = 0;
            double tk[4] = {0};
            for (int k = 3; k >= 0; k--) {
                if (q8_kernel_select(names[k], NULL) != 0) continue;
                run_t q = {&s, 1, 1, 1, x, y, &scratch};
                tk[k] = time_per_call(&q);
                if (k == 3) t_scalar = tk[k];
            }
            for (int k = 0; k < 4; k++) {
                if (tk[k] == 0) continue;
                snprintf(metric, sizeof metric, "kernel_%s_%dx%d_t1", names[k], s.rows, s.cols);
                bench_emit(&(bench_figure_t){"q8", metric, qbytes / tk[k] / 1e9, "GB/s", "scalar kernel",
                                             qbytes / t_scalar / 1e9, "mem_read_bw", bw[1] / 1e9, NULL});
            }
            q8_kernel_select(best, NULL);
        }
        shape_free(&s);
    }
    q8_scratch_deinit(&scratch);
    free(x), free(y);
    return 0;
}
