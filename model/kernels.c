/*
 * kernels.c — the fp32 building blocks of the forward pass: Y = X·Wᵀ for a
 * batch of rows (BLIS sgemm for prefill-sized batches, a small-batch kernel
 * of our own for decode batches), dot/axpy for attention, RMSNorm, SwiGLU,
 * RoPE (and its tables).
 *
 * Why a kernel of our own: decode is bound by reading each weight once, and
 * Debian's BLIS 0.9 has no small-m ("sup") kernels for skx — measured here,
 * 2048x768 weights: m=1 3.6 GB/s, m=16 24 GFLOP/s, against 17-21 GB/s and
 * 90 GFLOP/s (m=16, 135 with W in cache) for the register-blocked kernel
 * below (4 weight rows x 4 activation rows of accumulators, each weight
 * loaded once per 4 rows, the next 4 rows prefetched meanwhile: +30% at
 * m=16).
 * Vector code is compiled for AVX-512 and AVX2+FMA with a scalar fallback
 * and picked at run time from the CPU; no allocation happens here.
 */
#include "model/kernels.h"

#include <blis.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))

CLONES float model_dot(const float *a, const float *b, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

CLONES void model_axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* Small-batch GEMM: 4 weight rows x NX activation rows per call, NX
 * accumulators per weight row in registers, so each weight is loaded once
 * per group of 4 activation rows and streamed from memory once per call.
 * Rows past `rows` are clamped (computed twice, stored once). */
#define SMALL_KERNEL(NAME, ATTR, VEC, LANES, ZERO, LOAD, FMA, REDUCE, TAIL)                      \
    ATTR static void NAME(const float *W, int rows, int cols, int j0, const float *X, int t0, int nx, \
                          float *Y, int ldy) {                                                    \
        const float *w[4];                                                                        \
        for (int a = 0; a < 4; a++) w[a] = W + (size_t)(j0 + a < rows ? j0 + a : rows - 1) * (size_t)cols; \
        const float *x[4];                                                                        \
        for (int b = 0; b < 4; b++) x[b] = X + (size_t)(t0 + (b < nx ? b : 0)) * (size_t)cols;   \
        VEC acc[4][4];                                                                            \
        for (int a = 0; a < 4; a++)                                                               \
            for (int b = 0; b < 4; b++) acc[a][b] = ZERO;                                         \
        int k = 0;                                                                                \
        /* The next 4 rows of W are fetched while these are used: the      \
         * hardware prefetcher alone leaves the loop waiting on memory. */  \
        const char *pf = (const char *)(w[3] + cols);                                            \
        size_t pfn = (size_t)4 * (size_t)cols * sizeof(float) / (size_t)(cols / LANES + 1);      \
        if (nx == 1) {                                                                            \
            for (; k + LANES <= cols; k += LANES, pf += pfn) {                                    \
                for (int q = 0; q < LANES / 4; q++) _mm_prefetch(pf + 64 * q, _MM_HINT_T0);      \
                VEC xv = LOAD(x[0] + k);                                                          \
                for (int a = 0; a < 4; a++) acc[a][0] = FMA(LOAD(w[a] + k), xv, acc[a][0]);     \
            }                                                                                     \
        } else {                                                                                  \
            for (; k + LANES <= cols; k += LANES, pf += pfn) {                                    \
                for (int q = 0; q < LANES / 4; q++) _mm_prefetch(pf + 64 * q, _MM_HINT_T0);      \
                VEC wv[4], xv[4];                                                                 \
                for (int a = 0; a < 4; a++) wv[a] = LOAD(w[a] + k);                               \
                for (int b = 0; b < 4; b++) xv[b] = LOAD(x[b] + k);                               \
                for (int a = 0; a < 4; a++)                                                       \
                    for (int b = 0; b < 4; b++) acc[a][b] = FMA(wv[a], xv[b], acc[a][b]);        \
            }                                                                                     \
        }                                                                                         \
        for (int a = 0; a < 4 && j0 + a < rows; a++)                                              \
            for (int b = 0; b < nx; b++) {                                                        \
                float s = REDUCE(acc[a][b]);                                                      \
                for (int i = k; i < cols; i++) s += w[a][i] * x[b][i];                            \
                Y[(size_t)(t0 + b) * (size_t)ldy + j0 + a] = s;                                   \
            }                                                                                     \
    }

#define A512 __attribute__((target("avx512f")))
#define A256 __attribute__((target("avx2,fma")))
SMALL_KERNEL(small_avx512, A512, __m512, 16, _mm512_setzero_ps(), _mm512_loadu_ps, _mm512_fmadd_ps,
             _mm512_reduce_add_ps, )

/* One activation row: W is read as one sequential stream (row after row,
 * 4 accumulators per row) — the access pattern the hardware prefetcher
 * follows best; measured 1.3-1.6x the GB/s of the 4-row kernel at m=1. */
A512 static void gemv1_avx512(const float *W, int cols, int j0, int j1, const float *x, float *y) {
    for (int j = j0; j < j1; j++) {
        const float *w = W + (size_t)j * (size_t)cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 64 <= cols; k += 64) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 32), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 48), _mm512_loadu_ps(x + k + 48), a3);
        }
        for (; k + 16 <= cols; k += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), a0);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; k < cols; k++) s += w[k] * x[k];
        y[j] = s;
    }
}

A256 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
SMALL_KERNEL(small_avx2, A256, __m256, 8, _mm256_setzero_ps(), _mm256_loadu_ps, _mm256_fmadd_ps, hsum256, )

static void small_scalar(const float *W, int rows, int cols, int j0, const float *X, int t0, int nx, float *Y,
                         int ldy) {
    for (int a = 0; a < 4 && j0 + a < rows; a++)
        for (int b = 0; b < nx; b++) {
            const float *w = W + (size_t)(j0 + a) * cols, *x = X + (size_t)(t0 + b) * cols;
            float s = 0;
            for (int i = 0; i < cols; i++) s += w[i] * x[i];
            Y[(size_t)(t0 + b) * ldy + j0 + a] = s;
        }
}

typedef void (*small_fn)(const float *, int, int, int, const float *, int, int, float *, int);

static small_fn pick_small(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return small_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return small_avx2;
    return small_scalar;
}

void model_sgemm_xwt(const float *W, int rows, int cols, const float *X, int T, float *Y, int threads,
                     const void *rntm1) {
    static small_fn small; /* benign race: every thread computes the same pointer */
    if (!small) small = pick_small();
    if (T == 1 && small == small_avx512) {
        int nblk = (rows + 63) / 64;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
        for (int blk = 0; blk < nblk; blk++)
            gemv1_avx512(W, cols, blk * 64, blk * 64 + 64 < rows ? blk * 64 + 64 : rows, X, Y);
        return;
    }
    if (T <= MODEL_SMALL_ROWS) {
        /* 16 weight rows per block: a block of W stays in L1/L2 while all
         * activation rows pass over it; blocks are handed out dynamically
         * (64 rows at a time) so a preempted thread holds back little. */
        int nblk = (rows + 15) / 16;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) if (threads > 1)
        for (int blk = 0; blk < nblk; blk++)
            for (int j0 = blk * 16; j0 < blk * 16 + 16 && j0 < rows; j0 += 4)
                for (int t0 = 0; t0 < T; t0 += 4) small(W, rows, cols, j0, X, t0, T - t0 < 4 ? T - t0 : 4, Y, rows);
        return;
    }
    /* Y[T,rows] = X[T,cols] · W[rows,cols]ᵀ, all row-major.  With several
     * threads each takes a slice of W's rows and runs single-threaded BLIS
     * on it: the only barrier is our (passive) OpenMP join, where BLIS's own
     * threading spins in its barriers, which stalls on a busy machine. */
    /* Four slices per thread, handed out dynamically: a thread that the
     * machine's other work preempts delays the join by one slice, not by
     * half of the matrix. */
    int slices = threads > 1 ? threads * 4 : 1;
    int per = ((rows + slices - 1) / slices + 15) & ~15;
    if (per < 64 && rows > 64) per = 64;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (int j0 = 0; j0 < rows; j0 += per) {
        float one = 1.0f, zero = 0.0f;
        int n = rows - j0 < per ? rows - j0 : per;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, T, n, cols, &one, (float *)X, cols, 1,
                     (float *)W + (size_t)j0 * cols, cols, 1, &zero, Y + j0, rows, 1, NULL, (rntm_t *)rntm1);
    }
}

float model_rmsnorm_rinv(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) o[i] = w[i] * (ss * x[i]);
    return ss;
}

void model_rmsnorm(float *o, const float *x, const float *w, int n, float eps) { model_rmsnorm_rinv(o, x, w, n, eps); }

void model_rope_table(float *cos_t, float *sin_t, int positions, int head_dim, float theta) {
    int half = head_dim / 2;
    for (int pos = 0; pos < positions; pos++)
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float val = (float)pos * freq;
            cos_t[(size_t)pos * half + i] = cosf(val);
            sin_t[(size_t)pos * half + i] = sinf(val);
        }
}

void model_swiglu(float *h, const float *g, int n) {
    for (int i = 0; i < n; i++) {
        float v = h[i];
        v *= 1.0f / (1.0f + expf(-v));
        h[i] = v * g[i];
    }
}

void model_rope(float *v, int n_heads, int head_dim, const float *cos_t, const float *sin_t) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i++) {
            float a = p[2 * i], b = p[2 * i + 1], c = cos_t[i], s = sin_t[i];
            p[2 * i] = a * c - b * s;
            p[2 * i + 1] = a * s + b * c;
        }
    }
}

void model_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}
