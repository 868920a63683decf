/*
 * test_q8.c — unit tests of the int8 kernels (model/q8.h): fp16 conversion
 * against the CPU's own F16C instructions, quantization error bounds, every
 * kernel this CPU runs against an exact int64 reference (unit scales make
 * the float result an exact integer) and against a double reference with
 * real scales, unaligned blocks, threads, and the error paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the includes above
#include <cmocka.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/q8.h"

static const char *KERNEL_NAMES[] = {"scalar", "avx2", "avx512bw", "avx512vnni"};
enum { N_NAMES = 4 };

/* xorshift64*: deterministic data */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545f4914f6cdd1dull) >> 32);
}
static float rndf(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; } /* [-1, 1) */
static int rndi(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

static void select_kernel(const char *name) {
    llmos_error_t err = {0};
    assert_int_equal(q8_kernel_select(name, &err), 0);
    assert_string_equal(q8_kernel_name(), name);
}

/* ---- kernel choice (must run first: the env var is read at first use) ---- */

static void test_env_forces_kernel(void **state) {
    (void)state;
    setenv("LLMOS_Q8_KERNEL", "scalar", 1);
    assert_string_equal(q8_kernel_name(), "scalar");
    unsetenv("LLMOS_Q8_KERNEL");
    llmos_error_t err = {0};
    assert_int_equal(q8_kernel_select("nope", &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(q8_kernel_select(NULL, &err), LLMOS_EINVAL);
    assert_true(q8_kernel_supported("scalar"));
    assert_false(q8_kernel_supported("nope"));
    for (int i = 0; i < N_NAMES; i++) {
        int rc = q8_kernel_select(KERNEL_NAMES[i], &err);
        assert_int_equal(rc, q8_kernel_supported(KERNEL_NAMES[i]) ? 0 : LLMOS_EUNSUPPORTED);
    }
    /* this machine class (AVX-512 VNNI EPYC) must get the fast kernel */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni")) assert_true(q8_kernel_supported("avx512vnni"));
    if (__builtin_cpu_supports("avx2")) assert_true(q8_kernel_supported("avx2"));
}

/* ---- fp16 ------------------------------------------------------------------- */

static int is_nan16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

static void test_fp16_edges(void **state) {
    (void)state;
    assert_int_equal(q8_fp32_to_fp16(0.0f), 0x0000);
    assert_int_equal(q8_fp32_to_fp16(-0.0f), 0x8000);
    assert_int_equal(q8_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(q8_fp32_to_fp16(-2.0f), 0xc000);
    assert_int_equal(q8_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(q8_fp32_to_fp16(65519.99f), 0x7bff);
    assert_int_equal(q8_fp32_to_fp16(65520.0f), 0x7c00); /* tie to even: inf */
    assert_int_equal(q8_fp32_to_fp16(1e9f), 0x7c00);
    assert_int_equal(q8_fp32_to_fp16(INFINITY), 0x7c00);
    assert_int_equal(q8_fp32_to_fp16(-INFINITY), 0xfc00);
    assert_true(is_nan16(q8_fp32_to_fp16(NAN)));
    assert_int_equal(q8_fp32_to_fp16(ldexpf(1.0f, -24)), 0x0001);      /* smallest subnormal */
    assert_int_equal(q8_fp32_to_fp16(ldexpf(1.0f, -25)), 0x0000);      /* tie to even: 0 */
    assert_int_equal(q8_fp32_to_fp16(ldexpf(1.5f, -25)), 0x0001);      /* above the tie */
    assert_int_equal(q8_fp32_to_fp16(ldexpf(3.0f, -25)), 0x0002);      /* 1.5 ulp: tie to even 2 */
    assert_int_equal(q8_fp32_to_fp16(ldexpf(1023.0f, -24)), 0x03ff);   /* largest subnormal */
    assert_int_equal(q8_fp32_to_fp16(ldexpf(1023.5f, -24)), 0x0400);   /* rounds up to smallest normal */
    assert_int_equal(q8_fp32_to_fp16(ldexpf(1.0f, -14)), 0x0400);
    assert_int_equal(q8_fp32_to_fp16(-ldexpf(1.0f, -30)), 0x8000);     /* underflow keeps the sign */
    assert_int_equal(q8_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie to even down */
    assert_int_equal(q8_fp32_to_fp16(1.0f + ldexpf(3.0f, -11)), 0x3c02); /* tie to even up */
    assert_true(q8_fp16_to_fp32(0x0001) == ldexpf(1.0f, -24));
    assert_true(q8_fp16_to_fp32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(q8_fp16_to_fp32(0x7bff) == 65504.0f);
    assert_true(isinf(q8_fp16_to_fp32(0x7c00)) && q8_fp16_to_fp32(0x7c00) > 0);
    assert_true(isinf(q8_fp16_to_fp32(0xfc00)) && q8_fp16_to_fp32(0xfc00) < 0);
    assert_true(isnan(q8_fp16_to_fp32(0x7e00)));
    assert_true(signbit(q8_fp16_to_fp32(0x8000)));
    /* every half survives the round trip (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = q8_fp16_to_fp32((uint16_t)h);
        uint16_t back = q8_fp32_to_fp16(f);
        if (is_nan16((uint16_t)h))
            assert_true(isnan(f) && is_nan16(back));
        else
            assert_int_equal(back, h);
    }
}

__attribute__((target("f16c"))) static uint16_t hw_to16(float f) {
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}
__attribute__((target("f16c"))) static float hw_to32(uint16_t h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

static void test_fp16_matches_f16c(void **state) {
    (void)state;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("f16c")) skip();
    for (uint32_t h = 0; h < 65536; h++) {
        float a = q8_fp16_to_fp32((uint16_t)h), b = hw_to32((uint16_t)h);
        if (isnan(b))
            assert_true(isnan(a));
        else
            assert_memory_equal(&a, &b, sizeof a);
    }
    /* random bit patterns over the whole float range, and near the half range */
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = rnd();
        if (i & 1) bits = (bits & 0x80000000u) | (0x33000000u + bits % 0x14800000u); /* ~2^-25 .. 2^17 */
        float f;
        memcpy(&f, &bits, sizeof f);
        uint16_t a = q8_fp32_to_fp16(f), b = hw_to16(f);
        if (isnan(f))
            assert_true(is_nan16(a));
        else if (a != b)
            fail_msg("fp32 bits 0x%08x: got 0x%04x, F16C 0x%04x", bits, a, b);
    }
}

/* ---- quantize ------------------------------------------------------------------ */

static void test_quantize_error_bound(void **state) {
    (void)state;
    enum { COLS = 4096 };
    float *x = malloc(sizeof(float) * COLS), *y = malloc(sizeof(float) * COLS);
    q8_block_t *q = malloc(q8_row_bytes(COLS));
    llmos_error_t err = {0};
    for (int trial = 0; trial < 20; trial++) {
        float mag = ldexpf(1.0f, rndi(-18, 12)); /* down to subnormal fp16 scales */
        for (int i = 0; i < COLS; i++) x[i] = rndf() * mag;
        for (int i = 0; i < 32; i++) x[64 + i] = 0.0f;                      /* an all-zero block */
        x[200] = (trial & 1) ? 7.0f * mag : -7.0f * mag;                     /* an outlier */
        assert_int_equal(q8_quantize_row(x, q, COLS, &err), 0);
        assert_int_equal(q8_dequantize_row(q, y, COLS, &err), 0);
        for (int b = 0; b < COLS / 32; b++) {
            float amax = 0.0f;
            int qmax = 0;
            for (int i = 0; i < 32; i++) {
                amax = fmaxf(amax, fabsf(x[b * 32 + i]));
                int v = abs(q[b].qs[i]);
                qmax = v > qmax ? v : qmax;
                assert_true(q[b].qs[i] >= -127);
            }
            float d = q8_fp16_to_fp32(q[b].d);
            if (amax == 0.0f) {
                assert_true(d == 0.0f);
                assert_int_equal(qmax, 0);
                continue;
            }
            /* the scale is rounded up to fp16: at most one fp16 step above */
            assert_true(d >= amax / 127.0f * (1.0f - 0x1p-20f));
            assert_true(d - amax / 127.0f <= fmaxf(amax / 127.0f * 0x1p-10f, 0x1p-24f));
            if (d >= 0x1p-14f) assert_true(qmax >= 126); /* normal scale: the full range is used */
            for (int i = 0; i < 32; i++) {
                float e = fabsf(x[b * 32 + i] - y[b * 32 + i]);
                if (e > 0.5f * d + amax * 0x1p-20f)
                    fail_msg("block %d elem %d: x %g deq %g d %g", b, i, x[b * 32 + i], y[b * 32 + i], d);
            }
        }
    }
    /* the worst case of round to nearest: exactly half a step */
    for (int i = 0; i < 32; i++) x[i] = (i == 0) ? 127.0f : 0.5f;
    assert_int_equal(q8_quantize_row(x, q, 32, &err), 0);
    assert_int_equal(q[0].qs[0], 127);
    assert_int_equal(q[0].qs[1], 1); /* 0.5 rounds away from zero */
    free(x), free(y), free(q);
}

static void test_quantize_nonfinite_is_safe(void **state) {
    (void)state;
    float x[64];
    q8_block_t q[2];
    for (int i = 0; i < 64; i++) x[i] = (float)i;
    x[3] = NAN;
    x[40] = INFINITY;
    assert_int_equal(q8_quantize_row(x, q, 64, NULL), 0);
    for (int i = 0; i < 32; i++) assert_true(q[0].qs[i] >= -127);
}

/* Every kernel's quantizer gives the same bytes as the scalar one, on
 * random magnitudes, exact ties, NaN, inf, -0 and subnormal scales. */
static void test_quantizers_identical(void **state) {
    (void)state;
    enum { COLS = 32 * 257 };
    float *x = malloc(sizeof(float) * COLS);
    q8_block_t *ref = malloc(q8_row_bytes(COLS)), *got = malloc(q8_row_bytes(COLS));
    for (int trial = 0; trial < 40; trial++) {
        for (int b = 0; b < COLS / 32; b++) {
            float mag = ldexpf(1.0f, rndi(-30, 20));
            int kind = rndi(0, 9);
            for (int i = 0; i < 32; i++) {
                float *v = &x[b * 32 + i];
                *v = rndf() * mag;
                if (kind == 0) *v = (float)rndi(-254, 254) * 0.5f; /* ties with max 127: scale 1 */
                if (kind == 1 && i == 5) *v = NAN;
                if (kind == 2 && i == 7) *v = (i & 1) ? INFINITY : -INFINITY;
                if (kind == 3) *v = (i & 1) ? -0.0f : 0.0f;
            }
            if (kind == 0) x[b * 32] = 127.0f;
        }
        select_kernel("scalar");
        assert_int_equal(q8_quantize_row(x, ref, COLS, NULL), 0);
        for (int k = 1; k < N_NAMES; k++) {
            if (!q8_kernel_supported(KERNEL_NAMES[k])) continue;
            select_kernel(KERNEL_NAMES[k]);
            assert_int_equal(q8_quantize_row(x, got, COLS, NULL), 0);
            for (int b = 0; b < COLS / 32; b++)
                if (memcmp(&ref[b], &got[b], sizeof ref[b]) != 0)
                    fail_msg("%s quantizer differs from scalar at block %d (trial %d)", KERNEL_NAMES[k], b, trial);
        }
    }
    free(x), free(ref), free(got);
}

static void test_bad_cols(void **state) {
    (void)state;
    float x[96] = {0}, y[96];
    q8_block_t q[3];
    llmos_error_t err = {0};
    const int bad[] = {0, -32, 31, 33, 95};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(q8_quantize_row(x, q, bad[i], &err), LLMOS_EINVAL);
        assert_non_null(strstr(err.msg, "multiple of 32"));
        assert_int_equal(q8_dequantize_row(q, y, bad[i], &err), LLMOS_EINVAL);
        assert_int_equal(q8_quantize_matrix(x, q, 1, bad[i], 1, &err), LLMOS_EINVAL);
        assert_int_equal(q8_matmul_q8(y, q, 1, bad[i], q, 1, 1, &err), LLMOS_EINVAL);
    }
    q8_scratch_t s;
    assert_int_equal(q8_scratch_init(&s, 4, 33, &err), LLMOS_EINVAL);
    assert_null(s.xq);
    assert_int_equal(q8_scratch_init(&s, 0, 64, &err), LLMOS_EINVAL);
    assert_int_equal(q8_scratch_init(&s, 2, 64, &err), 0);
    assert_int_equal(q8_matmul(y, q, 1, 63, x, 1, &s, 1, &err), LLMOS_EINVAL);
    assert_int_equal(q8_matmul(y, q, 1, 96, x, 1, &s, 1, &err), LLMOS_EINVAL); /* wider than scratch */
    assert_non_null(strstr(err.msg, "scratch"));
    assert_int_equal(q8_matmul(y, q, 1, 64, x, 3, &s, 1, &err), LLMOS_EINVAL); /* more rows than scratch */
    assert_int_equal(q8_matmul(y, q, 0, 64, x, 1, &s, 1, &err), LLMOS_EINVAL);
    assert_int_equal(q8_matmul(NULL, q, 1, 64, x, 1, &s, 1, &err), LLMOS_EINVAL);
    assert_int_equal(q8_matmul(y, q, 1, 64, x, 1, NULL, 1, &err), LLMOS_EINVAL);
    q8_scratch_deinit(&s);
    q8_scratch_deinit(&s);
}

/* ---- kernels ---------------------------------------------------------------------- */

/* A buffer of n blocks starting at an odd address (misaligned for every
 * type wider than a byte); *base is what to free. */
static q8_block_t *odd_blocks(size_t n, void **base) {
    char *p = malloc(n * sizeof(q8_block_t) + 64);
    *base = p;
    return (q8_block_t *)(void *)(p + 1);
}

static void fill_blocks(q8_block_t *b, size_t n, int lo, int hi, int unit_scale) {
    for (size_t i = 0; i < n; i++) {
        q8_block_t t;
        t.d = unit_scale ? 0x3c00 : q8_fp32_to_fp16(ldexpf(1.0f + rndf() * 0.5f, rndi(-10, -4)));
        for (int k = 0; k < 32; k++) t.qs[k] = (int8_t)rndi(lo, hi);
        memcpy((void *)&b[i], &t, sizeof t);
    }
}

/* Every supported kernel on unit scales: each output must be exactly the
 * int64 dot product (all partial sums stay below 2^24, so float is exact).
 * Both entries are checked: q8_matmul_q8 on the blocks, and q8_matmul on
 * floats that quantize to exactly those blocks (every activation block
 * holds a 127, so its scale is 1). */
static void check_exact(int rows, int cols, int batch, int threads) {
    int nb = cols / 32;
    void *wbase, *xbase;
    q8_block_t *W = odd_blocks((size_t)rows * nb, &wbase), *X = odd_blocks((size_t)batch * nb, &xbase);
    int wmax = (int)(16777215 / ((long)cols * 127));
    if (wmax > 128) wmax = 128;
    fill_blocks(W, (size_t)rows * nb, -wmax, wmax - 1, 1);
    fill_blocks(X, (size_t)batch * nb, -127, 127, 1);
    for (size_t i = 0; i < (size_t)batch * nb; i++) X[i].qs[i % 32] = (i & 1) ? 127 : -127;
    if (rows > 1 && wmax == 128) memset(W[nb].qs, 0x80, 32); /* a block of -128 against anything */
    float *y = malloc(sizeof(float) * rows * batch), *xf = malloc(sizeof(float) * batch * cols);
    int64_t *ref = malloc(sizeof(int64_t) * rows * batch);
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < cols; c++) xf[(size_t)b * cols + c] = X[(size_t)b * nb + c / 32].qs[c % 32];
    for (int b = 0; b < batch; b++)
        for (int r = 0; r < rows; r++) {
            int64_t s = 0;
            for (int c = 0; c < cols; c++)
                s += (int64_t)W[(size_t)r * nb + c / 32].qs[c % 32] * X[(size_t)b * nb + c / 32].qs[c % 32];
            ref[(size_t)b * rows + r] = s;
        }
    q8_scratch_t sc;
    llmos_error_t err = {0};
    assert_int_equal(q8_scratch_init(&sc, batch, cols, &err), 0);
    for (int k = 0; k < N_NAMES; k++) {
        if (!q8_kernel_supported(KERNEL_NAMES[k])) continue;
        select_kernel(KERNEL_NAMES[k]);
        for (int entry = 0; entry < 2; entry++) {
            memset(y, 0xff, sizeof(float) * rows * batch);
            if (entry == 0)
                assert_int_equal(q8_matmul_q8(y, W, rows, cols, X, batch, threads, &err), 0);
            else
                assert_int_equal(q8_matmul(y, W, rows, cols, xf, batch, &sc, threads, &err), 0);
            for (int i = 0; i < rows * batch; i++)
                if (y[i] != (float)ref[i])
                    fail_msg("%s %s rows %d cols %d batch %d threads %d: out %d = %.1f, exact %lld", KERNEL_NAMES[k],
                             entry ? "q8_matmul" : "q8_matmul_q8", rows, cols, batch, threads, i, y[i],
                             (long long)ref[i]);
        }
    }
    q8_scratch_deinit(&sc);
    free(y), free(xf), free(ref), free(wbase), free(xbase);
}

static void test_kernels_exact_int_sums(void **state) {
    (void)state;
    for (int batch = 1; batch <= 17; batch++) check_exact(7, 96, batch, 1);
    const int colss[] = {32, 64, 160, 768, 2048, 4096};
    const int rowss[] = {1, 3, 5, 9, 33};
    for (size_t c = 0; c < sizeof colss / sizeof colss[0]; c++)
        for (size_t r = 0; r < sizeof rowss / sizeof rowss[0]; r++) {
            check_exact(rowss[r], colss[c], 1, 1);
            check_exact(rowss[r], colss[c], 5, 1);
            check_exact(rowss[r], colss[c], 17, 1);
        }
    check_exact(257, 256, 3, 2); /* threaded: ranges of 4-row tiles plus a tail */
    check_exact(131, 4096, 66, 2); /* more than one 64-row activation chunk */
}

/* Real scales: every kernel within 1e-5 of a double reference, relative to
 * the sum of the absolute terms (what float accumulation can promise). */
static void check_scaled(int rows, int cols, int batch, int threads) {
    int nb = cols / 32;
    void *wbase, *xbase;
    q8_block_t *W = odd_blocks((size_t)rows * nb, &wbase), *X = odd_blocks((size_t)batch * nb, &xbase);
    fill_blocks(W, (size_t)rows * nb, -128, 127, 0);
    fill_blocks(X, (size_t)batch * nb, -127, 127, 0);
    float *y = malloc(sizeof(float) * rows * batch);
    double *ref = malloc(sizeof(double) * rows * batch), *mag = malloc(sizeof(double) * rows * batch);
    for (int b = 0; b < batch; b++)
        for (int r = 0; r < rows; r++) {
            double s = 0, m = 0;
            for (int k = 0; k < nb; k++) {
                const q8_block_t *w = &W[(size_t)r * nb + k], *x = &X[(size_t)b * nb + k];
                double d = (double)q8_fp16_to_fp32(w->d) * q8_fp16_to_fp32(x->d);
                int64_t is = 0, ia = 0;
                for (int i = 0; i < 32; i++) is += w->qs[i] * x->qs[i], ia += abs(w->qs[i] * x->qs[i]);
                s += d * (double)is, m += fabs(d) * (double)ia;
            }
            ref[(size_t)b * rows + r] = s, mag[(size_t)b * rows + r] = m;
        }
    llmos_error_t err = {0};
    for (int k = 0; k < N_NAMES; k++) {
        if (!q8_kernel_supported(KERNEL_NAMES[k])) continue;
        select_kernel(KERNEL_NAMES[k]);
        assert_int_equal(q8_matmul_q8(y, W, rows, cols, X, batch, threads, &err), 0);
        for (int i = 0; i < rows * batch; i++)
            if (fabs(y[i] - ref[i]) > 1e-5 * mag[i] + 1e-30)
                fail_msg("%s rows %d cols %d batch %d: out %d = %.9g, reference %.9g (magnitude %.3g)",
                         KERNEL_NAMES[k], rows, cols, batch, i, y[i], ref[i], mag[i]);
    }
    free(y), free(ref), free(mag), free(wbase), free(xbase);
}

static void test_kernels_scaled(void **state) {
    (void)state;
    for (int batch = 1; batch <= 17; batch += 4) check_scaled(13, 4096, batch, 1);
    check_scaled(1, 32, 1, 1);
    check_scaled(35, 800, 9, 1);
    check_scaled(130, 2048, 2, 2);
}

/* The whole path from fp32: close to the fp32 product, identical across
 * thread counts, and the same whether activations come in as floats or
 * pre-quantized. */
static void check_from_float(const int BATCH) {
    enum { ROWS = 301, COLS = 768 };
    float *Wf = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * BATCH * COLS);
    for (int i = 0; i < ROWS * COLS; i++) Wf[i] = rndf() * 0.05f;
    for (int i = 0; i < BATCH * COLS; i++) x[i] = rndf() * 3.0f;
    q8_block_t *W = malloc(q8_matrix_bytes(ROWS, COLS)), *xq = malloc(q8_matrix_bytes(BATCH, COLS));
    llmos_error_t err = {0};
    assert_int_equal(q8_quantize_matrix(Wf, W, ROWS, COLS, 2, &err), 0);
    assert_int_equal(q8_quantize_matrix(x, xq, BATCH, COLS, 1, &err), 0);
    q8_scratch_t s;
    assert_int_equal(q8_scratch_init(&s, 24, 1024, &err), 0);
    float *y1 = malloc(sizeof(float) * ROWS * BATCH), *y2 = malloc(sizeof(float) * ROWS * BATCH),
          *y3 = malloc(sizeof(float) * ROWS * BATCH);
    for (int k = 0; k < N_NAMES; k++) {
        if (!q8_kernel_supported(KERNEL_NAMES[k])) continue;
        select_kernel(KERNEL_NAMES[k]);
        assert_int_equal(q8_matmul(y1, W, ROWS, COLS, x, BATCH, &s, 1, &err), 0);
        assert_int_equal(q8_matmul(y2, W, ROWS, COLS, x, BATCH, &s, 2, &err), 0);
        assert_int_equal(q8_matmul_q8(y3, W, ROWS, COLS, xq, BATCH, 2, &err), 0);
        assert_memory_equal(y1, y2, sizeof(float) * ROWS * BATCH);
        assert_memory_equal(y1, y3, sizeof(float) * ROWS * BATCH);
        double e2 = 0, r2 = 0;
        for (int b = 0; b < BATCH; b++)
            for (int r = 0; r < ROWS; r++) {
                double ref = 0;
                for (int c = 0; c < COLS; c++) ref += (double)Wf[(size_t)r * COLS + c] * x[(size_t)b * COLS + c];
                double e = y1[(size_t)b * ROWS + r] - ref;
                e2 += e * e, r2 += ref * ref;
            }
        /* two 8-bit quantizations: about 1% relative error on random data */
        assert_true(sqrt(e2 / r2) < 0.02);
    }
    q8_scratch_deinit(&s);
    free(Wf), free(x), free(W), free(xq), free(y1), free(y2), free(y3);
}

/* batch 6: the caller quantizes, batch 20: the threads do, then a barrier */
static void test_matmul_from_float(void **state) {
    (void)state;
    check_from_float(6);
    check_from_float(20);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_forces_kernel),
        cmocka_unit_test(test_fp16_edges),
        cmocka_unit_test(test_fp16_matches_f16c),
        cmocka_unit_test(test_quantize_error_bound),
        cmocka_unit_test(test_quantize_nonfinite_is_safe),
        cmocka_unit_test(test_quantizers_identical),
        cmocka_unit_test(test_bad_cols),
        cmocka_unit_test(test_kernels_exact_int_sums),
        cmocka_unit_test(test_kernels_scaled),
        cmocka_unit_test(test_matmul_from_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
