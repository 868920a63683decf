/*
 * q8_avx2.c — the AVX2 q8_0 kernel (for CPUs without AVX-512), compiled with
 * a function-level target attribute; q8.c calls it only when the CPU has
 * AVX2 and FMA.
 *
 * One ymm holds one 32-byte block.  vpmaddubsw needs an unsigned operand:
 * u = |w| (128 for -128 fits u8) times x negated where w < 0 (vpsignb; x is
 * never -128, and where w = 0 the product is 0 anyway).  A pair of products
 * is at most 2*128*127 < 32767, so the 16-bit sums never saturate, and
 * vpmaddwd with ones gives exact int32 lane sums.
 *
 * Tiling: 2 weight rows x 2 activation rows per micro-tile (16 ymm
 * registers leave no room for more).
 */
#include <immintrin.h>

#include "model/q8_internal.h"

#define ALWAYS __attribute__((always_inline)) static inline

#pragma GCC push_options
#pragma GCC target("avx2,f16c,fma")

ALWAYS __m256i load_qs(const q8_block_t *b) { return _mm256_loadu_si256((const __m256i_u *)(const void *)b->qs); }

ALWAYS float scale_of(const q8_block_t *b) { return _cvtsh_ss(q8_block_d(b)); }

ALWAYS float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One software prefetch `ahead` blocks past b (the same spot of the next
 * row tile): rows are too short for the hardware stream prefetcher.  A
 * target past the matrix is harmless for a prefetch. */
ALWAYS void prefetch_ahead(const q8_block_t *b, int ahead) {
    _mm_prefetch((const char *)((uintptr_t)b + (uintptr_t)ahead * sizeof(q8_block_t)), _MM_HINT_T0);
}

ALWAYS void tile_avx2(const int R, const int B, float *y, int ldy, const q8_block_t *W, int r, int nb,
                      const q8_block_t *xq, int b, int pf) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2][2];
    const q8_block_t *w[2], *x[2];
    for (int i = 0; i < R; i++) w[i] = W + (size_t)(r + i) * nb;
    for (int j = 0; j < B; j++) x[j] = xq + (size_t)(b + j) * nb;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < B; j++) acc[i][j] = _mm256_setzero_ps();
    for (int k = 0; k < nb; k++) {
        __m256i xs[2];
        float dx[2];
        for (int j = 0; j < B; j++) {
            xs[j] = load_qs(x[j] + k);
            dx[j] = scale_of(x[j] + k);
        }
        for (int i = 0; i < R; i++) {
            if (pf) prefetch_ahead(w[i] + k, pf);
            __m256i wv = load_qs(w[i] + k);
            __m256i u = _mm256_abs_epi8(wv);
            float dw = scale_of(w[i] + k);
            for (int j = 0; j < B; j++) {
                __m256i s = _mm256_sign_epi8(xs[j], wv);
                __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones);
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(dw * dx[j]), acc[i][j]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < B; j++) y[(size_t)(b + j) * ldy + r + i] = hsum(acc[i][j]);
}

ALWAYS void rowtile_avx2(const int R, float *y, int ldy, const q8_block_t *W, int r, int nb, const q8_block_t *xq,
                         int batch) {
    int b = 0, pf = R * nb; /* only the first batch tile prefetches */
    for (; b + 2 <= batch; b += 2, pf = 0) tile_avx2(R, 2, y, ldy, W, r, nb, xq, b, pf);
    if (b < batch) tile_avx2(R, 1, y, ldy, W, r, nb, xq, b, pf);
}

void q8_rows_avx2(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq, int batch) {
    int r = r0;
    for (; r + 2 <= r1; r += 2) rowtile_avx2(2, y, ldy, W, r, nb, xq, batch);
    if (r < r1) rowtile_avx2(1, y, ldy, W, r, nb, xq, batch);
}

#pragma GCC pop_options
