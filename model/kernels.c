/*
 * kernels.c — the fp32 building blocks of the forward pass: Y = X·Wᵀ for a
 * batch of rows (BLIS sgemm for prefill-sized batches, a bandwidth-bound
 * multi-row GEMV of our own for a handful of rows), dot/axpy for attention,
 * RMSNorm, SwiGLU, RoPE.
 *
 * Why a GEMV of our own: BLIS's level-2 sgemv is single-threaded and its
 * sup path for m ≤ 4 packs the weights first; for decode the cost is reading
 * each weight once, so we stream every row of W once and dot it with all
 * (≤ MODEL_GEMV_ROWS) activation rows while it is in L1.  The vector code is
 * compiled for AVX-512, AVX2 and plain x86-64 (target_clones: the loader
 * picks the version for this CPU); no allocation happens here.
 */
#include "model/kernels.h"

#include <blis.h>
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

CLONES static void gemv_rows(const float *W, int cols, int j0, int j1, const float *X, int T, float *Y,
                             int ldy) {
    for (int j = j0; j < j1; j++) {
        const float *w = W + (size_t)j * (size_t)cols;
        for (int t = 0; t < T; t++) {
            const float *x = X + (size_t)t * (size_t)cols;
            float s0 = 0;
#pragma omp simd reduction(+ : s0)
            for (int i = 0; i < cols; i++) s0 += w[i] * x[i];
            Y[(size_t)t * (size_t)ldy + j] = s0;
        }
    }
}

void model_sgemm_xwt(const float *W, int rows, int cols, const float *X, int T, float *Y, int threads,
                     const void *rntm) {
    if (T <= MODEL_GEMV_ROWS) {
        int chunk = 16;
        int nchunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int ch = 0; ch < nchunks; ch++) {
            int j0 = ch * chunk, j1 = j0 + chunk < rows ? j0 + chunk : rows;
            gemv_rows(W, cols, j0, j1, X, T, Y, rows);
        }
        return;
    }
    float one = 1.0f, zero = 0.0f;
    /* Y[T,rows] = X[T,cols] · W[rows,cols]ᵀ, all row-major. */
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, T, rows, cols, &one, (float *)X, cols, 1, (float *)W,
                 cols, 1, &zero, Y, rows, 1, NULL, (rntm_t *)rntm);
}

void model_rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) o[i] = w[i] * (ss * x[i]);
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
