/*
 * q8_avx512.c — the AVX-512 q8_0 kernels: one with VNNI (vpdpbusd), one for
 * AVX-512BW without it (vpmaddubsw + vpmaddwd).  Compiled with function-level
 * target attributes; q8.c calls them only when the CPU has the features.
 *
 * One zmm holds two 32-byte blocks (two unaligned 256-bit loads, since
 * blocks are 34 bytes apart).  The int8 x int8 products need an unsigned
 * operand:
 *   - VNNI: u = w + 128 (w ^ 0x80, exact for w = -128 too) times the signed
 *     activation, then minus 128 * sum(x) per lane; that correction depends
 *     on the activation only, so it starts the accumulator (one vpdpbusd per
 *     weight/activation pair).
 *   - BW: u = |w| (128 for -128 fits u8) times x negated where w < 0 (x is
 *     never -128); pairs of products reach at most 2*128*127 < 32767, so
 *     vpmaddubsw never saturates.
 * Both give the exact int32 sum of each 4-byte lane; the lanes are turned to
 * float and multiplied by d_w * d_x of their block.
 *
 * Tiling (q8_avx512_tile.h, instantiated once per kernel): 4 weight rows x
 * 4 activation rows per micro-tile, so each loaded block is used up to 4
 * times from a register; activations are walked in chunks of 64 rows so
 * the chunk stays in L2 while a thread's rows stream.
 */
#include <immintrin.h>

#include "model/q8_internal.h"

#define ALWAYS __attribute__((always_inline)) static inline

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")

/* qs of blocks b[0] and b[1] in one zmm */
ALWAYS __m512i load2(const q8_block_t *b) {
    __m256i lo = _mm256_loadu_si256((const __m256i_u *)(const void *)b[0].qs);
    __m256i hi = _mm256_loadu_si256((const __m256i_u *)(const void *)b[1].qs);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* qs of b[0] in the low half, zeros above (a trailing odd block) */
ALWAYS __m512i load1(const q8_block_t *b) {
    return _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i_u *)(const void *)b[0].qs));
}

/* [d0 x 8, d1 x 8] as floats; two = 0 gives [d0 x 8, 0 x 8] */
ALWAYS __m512 scales(const q8_block_t *b, int two) {
    uint32_t h = q8_block_d(&b[0]);
    if (two) h |= (uint32_t)q8_block_d(&b[1]) << 16;
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)h));
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* Software prefetch of the two cache lines `ahead` blocks past b.  Rows are
 * only 12-136 lines long, too short for the hardware stream prefetcher to
 * get ahead of a matvec, so each row step fetches the same spot of the
 * next row tile (contiguous in memory).  Address arithmetic in integers:
 * the target may lie past the matrix, which a prefetch tolerates. */
ALWAYS void prefetch_ahead(const q8_block_t *b, int ahead) {
    uintptr_t p = (uintptr_t)b + (uintptr_t)ahead * sizeof(q8_block_t);
    _mm_prefetch((const char *)p, _MM_HINT_T0);
    _mm_prefetch((const char *)(p + 64), _MM_HINT_T0);
}

/* Quantizes 16 values with inverse scale id exactly as q8.c's quant_one:
 * round(v * id) ties away from zero, clamped to [-127, 127], NaN -> 0. */
ALWAYS __m128i quant16(__m512 v, __m512 id) {
    __m512 a = _mm512_abs_ps(_mm512_mul_ps(v, id));
    __m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(a, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
    t = _mm512_min_ps(t, _mm512_set1_ps(127.0f));               /* inf -> 127; NaN -> 127 ... */
    t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), t); /* ... then NaN -> 0 */
    __m512i q = _mm512_cvttps_epi32(t);
    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    q = _mm512_mask_sub_epi32(q, neg, _mm512_setzero_si512(), q);
    return _mm512_cvtepi32_epi8(q);
}

void q8_quant_avx512(const float *x, q8_block_t *out, int nb) {
    for (int b = 0; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + (size_t)b * Q8_BLOCK), v1 = _mm512_loadu_ps(x + (size_t)b * Q8_BLOCK + 16);
        /* maxps returns its second operand when either is NaN: with the
         * running maximum second, NaN inputs are skipped as in fmaxf */
        __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(v1), m);
        float id;
        uint16_t dh = q8_block_scale(_mm512_reduce_max_ps(m), &id);
        __m512 idv = _mm512_set1_ps(id);
        char *p = (char *)(void *)&out[b];
        memcpy(p, &dh, sizeof dh);
        _mm_storeu_si128((__m128i_u *)(void *)(p + 2), quant16(v0, idv));
        _mm_storeu_si128((__m128i_u *)(void *)(p + 18), quant16(v1, idv));
    }
}

#pragma GCC pop_options

/* ---- VNNI ---------------------------------------------------------------------- */

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma,avx512vnni")

/* The three vectors of activation row x at step k: computed from the q8
 * blocks (prepped = 0) or loaded from a prepared row (prepped = 1). */
ALWAYS void xvecs_vnni(int prepped, const void *x, int k, int two, __m512i *xs, __m512i *nc, __m512 *sx) {
    if (prepped) {
        const char *p = (const char *)x + (size_t)(k / 2) * Q8_PREP_STEP;
        *xs = _mm512_load_si512((const void *)p);
        *nc = _mm512_load_si512((const void *)(p + 64));
        *sx = _mm512_load_ps((const void *)(p + 128));
        return;
    }
    const q8_block_t *b = (const q8_block_t *)x + k;
    *xs = two ? load2(b) : load1(b);
    /* -128 * sum(x) per lane: the offset of u = w + 128 taken back */
    *nc = _mm512_sub_epi32(_mm512_setzero_si512(),
                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), *xs));
    *sx = scales(b, two);
}

void q8_prep_avx512vnni(const q8_block_t *xq, int nb, void *out) {
    for (int k = 0; k < nb; k += 2) {
        __m512i xs, nc;
        __m512 sx;
        xvecs_vnni(0, xq, k, k + 2 <= nb, &xs, &nc, &sx);
        char *p = (char *)out + (size_t)(k / 2) * Q8_PREP_STEP;
        _mm512_store_si512((void *)p, xs);
        _mm512_store_si512((void *)(p + 64), nc);
        _mm512_store_ps((void *)(p + 128), sx);
    }
}

/* One step over blocks k (and k+1 when two) for an R x B tile. */
ALWAYS void step_vnni(const int R, const int B, int two, __m512 acc[4][4], const q8_block_t *const *w,
                      const void *const *x, int k, int pf, const int prepped) {
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    __m512i u[4], xs[4], nc[4];
    __m512 sw[4], sx[4];
#pragma GCC unroll 4
    for (int j = 0; j < B; j++) xvecs_vnni(prepped, x[j], k, two, &xs[j], &nc[j], &sx[j]);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        if (pf) prefetch_ahead(w[i] + k, pf);
        __m512i wv = two ? load2(w[i] + k) : load1(w[i] + k);
        u[i] = _mm512_xor_si512(wv, c80);
        sw[i] = scales(w[i] + k, two);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < B; j++) {
            __m512i dp = _mm512_dpbusd_epi32(nc[j], u[i], xs[j]);
            acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_mul_ps(sw[i], sx[j]), acc[i][j]);
        }
}

#define Q8_STEP(R, B, two, acc, w, x, k, pf) step_vnni(R, B, two, acc, w, x, k, pf, 0)
#define Q8_NAME(x) x##_vnni
#define Q8_ROWS q8_rows_avx512vnni
#define Q8_XTYPE const q8_block_t *
#define Q8_XROW(xq, row, nb) ((const void *)((xq) + (size_t)(row) * (nb)))
#include "model/q8_avx512_tile.h"

#define Q8_STEP(R, B, two, acc, w, x, k, pf) step_vnni(R, B, two, acc, w, x, k, pf, 1)
#define Q8_NAME(x) x##_vnni_prep
#define Q8_ROWS q8_rows_avx512vnni_prep
#define Q8_XTYPE const void *
#define Q8_XROW(xp, row, nb) ((const void *)((const char *)(xp) + (size_t)(row) * q8_prep_row_bytes(nb)))
#include "model/q8_avx512_tile.h"

#pragma GCC pop_options

/* ---- AVX-512BW without VNNI ------------------------------------------------------ */

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")

ALWAYS void step_bw(const int R, const int B, int two, __m512 acc[4][4], const q8_block_t *const *w,
                    const void *const *x, int k, int pf) {
    const __m512i ones = _mm512_set1_epi16(1);
    __m512i u[4], xs[4];
    __mmask64 neg[4];
    __m512 sw[4], sx[4];
#pragma GCC unroll 4
    for (int j = 0; j < B; j++) {
        const q8_block_t *xb = (const q8_block_t *)x[j] + k;
        xs[j] = two ? load2(xb) : load1(xb);
        sx[j] = scales(xb, two);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        if (pf) prefetch_ahead(w[i] + k, pf);
        __m512i wv = two ? load2(w[i] + k) : load1(w[i] + k);
        u[i] = _mm512_abs_epi8(wv);
        neg[i] = _mm512_movepi8_mask(wv);
        sw[i] = scales(w[i] + k, two);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < B; j++) {
            __m512i s = _mm512_mask_sub_epi8(xs[j], neg[i], _mm512_setzero_si512(), xs[j]);
            __m512i dp = _mm512_madd_epi16(_mm512_maddubs_epi16(u[i], s), ones);
            acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_mul_ps(sw[i], sx[j]), acc[i][j]);
        }
}

#define Q8_STEP step_bw
#define Q8_NAME(x) x##_bw
#define Q8_ROWS q8_rows_avx512bw
#define Q8_XTYPE const q8_block_t *
#define Q8_XROW(xq, row, nb) ((const void *)((xq) + (size_t)(row) * (nb)))
#include "model/q8_avx512_tile.h"

#pragma GCC pop_options
