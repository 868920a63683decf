/*
 * q8.c — the int8 kernels' public entry points (q8.h): checked q8_0
 * quantization of rows and matrices, run-time kernel choice and the
 * threaded matmul driver.  It sits above the kernels it dispatches to: the
 * portable ones (fp16 conversion, the scalar quantizer and reference kernel:
 * q8_scalar.c) and the SIMD ones (q8_avx2.c, q8_avx512.c, function-level
 * target attributes, so no global -march), which call only q8_scalar.c.
 *
 * Threading is OpenMP (the engine links it already): one parallel region per
 * matmul gives each thread a contiguous range of W's rows (a multiple of 4,
 * the kernels' row tile); with 16 or more activation rows the threads first
 * quantize a slice of them each and meet at a barrier, with fewer the
 * calling thread quantizes them before the region.  libgomp keeps its threads between regions,
 * so a call allocates nothing.
 *
 * Quantization has a scalar and an AVX-512 version that give bit-identical
 * blocks (tested), so every kernel sees the same activations, which is what
 * lets the tests demand identical int32 sums.
 */
#include "model/q8.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#include "model/q8_internal.h"
#include "runtime/base/log.h"

/* ---- quantize ---------------------------------------------------------------- */

static q8_quant_fn quantizer(void); /* the selected kernel's (below) */

static int check_cols(int cols, const char *what, llmos_error_t *err) {
    if (cols <= 0 || cols % Q8_BLOCK != 0)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: row length %d is not a positive multiple of %d", what, cols,
                               Q8_BLOCK);
    return 0;
}

int q8_quantize_row(const float *x, q8_block_t *out, int cols, llmos_error_t *err) {
    if (!x || !out) return llmos_error_set(err, LLMOS_EINVAL, "q8_quantize_row: NULL pointer");
    if (check_cols(cols, "q8_quantize_row", err)) return LLMOS_EINVAL;
    quantizer()(x, out, cols / Q8_BLOCK);
    return 0;
}

int q8_dequantize_row(const q8_block_t *in, float *y, int cols, llmos_error_t *err) {
    if (!in || !y) return llmos_error_set(err, LLMOS_EINVAL, "q8_dequantize_row: NULL pointer");
    if (check_cols(cols, "q8_dequantize_row", err)) return LLMOS_EINVAL;
    for (int b = 0; b < cols / Q8_BLOCK; b++) {
        float d = q8_fp16_to_fp32(q8_block_d(&in[b]));
        for (int i = 0; i < Q8_BLOCK; i++) y[(size_t)b * Q8_BLOCK + i] = d * (float)in[b].qs[i];
    }
    return 0;
}

int q8_quantize_matrix(const float *x, q8_block_t *out, int rows, int cols, int threads, llmos_error_t *err) {
    if (!x || !out) return llmos_error_set(err, LLMOS_EINVAL, "q8_quantize_matrix: NULL pointer");
    if (rows < 0) return llmos_error_set(err, LLMOS_EINVAL, "q8_quantize_matrix: %d rows", rows);
    if (check_cols(cols, "q8_quantize_matrix", err)) return LLMOS_EINVAL;
    int nb = cols / Q8_BLOCK;
    q8_quant_fn quant = quantizer();
#pragma omp parallel for schedule(static) num_threads(threads > 1 ? threads : 1) if (threads > 1 && rows > 1)
    for (int r = 0; r < rows; r++) quant(x + (size_t)r * cols, out + (size_t)r * nb, nb);
    return 0;
}

/* ---- scratch ------------------------------------------------------------------- */

int q8_scratch_init(q8_scratch_t *s, int max_batch, int max_cols, llmos_error_t *err) {
    *s = (q8_scratch_t){0};
    if (max_batch <= 0) return llmos_error_set(err, LLMOS_EINVAL, "q8_scratch_init: max_batch %d", max_batch);
    if (check_cols(max_cols, "q8_scratch_init", err)) return LLMOS_EINVAL;
    size_t n = (size_t)max_batch * q8_row_bytes(max_cols);
    size_t np = (size_t)max_batch * q8_prep_row_bytes(max_cols / Q8_BLOCK); /* a multiple of 64 */
    s->xq = aligned_alloc(64, (n + 63) / 64 * 64);
    s->xprep = aligned_alloc(64, np);
    if (!s->xq || !s->xprep) {
        q8_scratch_deinit(s);
        return llmos_error_set(err, LLMOS_ENOMEM, "q8_scratch_init: %zu bytes", n + np);
    }
    s->max_batch = max_batch;
    s->max_cols = max_cols;
    return 0;
}

void q8_scratch_deinit(q8_scratch_t *s) {
    free(s->xq);
    free(s->xprep);
    *s = (q8_scratch_t){0};
}

/* ---- kernel choice --------------------------------------------------------------- */

typedef struct q8_kernel {
    const char *name;
    q8_quant_fn quant;         /* bit-identical to q8_quant_scalar */
    q8_rows_fn rows;
    q8_prep_fn prep;           /* NULL: q8_matmul uses rows on the q8 activations */
    q8_rows_prep_fn rows_prep; /* with prep: the kernel on prepared activations */
} q8_kernel_t;

/* best first */
static const q8_kernel_t KERNELS[] = {
    {"avx512vnni", q8_quant_avx512, q8_rows_avx512vnni, q8_prep_avx512vnni, q8_rows_avx512vnni_prep},
    {"avx512bw", q8_quant_avx512, q8_rows_avx512bw, NULL, NULL},
    {"avx2", q8_quant_scalar, q8_rows_avx2, NULL, NULL},
    {"scalar", q8_quant_scalar, q8_rows_scalar, NULL, NULL},
};
enum { N_KERNELS = sizeof KERNELS / sizeof KERNELS[0] };

static const q8_kernel_t *g_kernel;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int supported(const q8_kernel_t *k) {
    __builtin_cpu_init();
    if (k->rows == q8_rows_avx512vnni)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("fma");
    if (k->rows == q8_rows_avx512bw)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
    if (k->rows == q8_rows_avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return 1;
}

static const q8_kernel_t *find(const char *name) {
    for (int i = 0; i < N_KERNELS; i++)
        if (strcasecmp(KERNELS[i].name, name) == 0) return &KERNELS[i];
    return NULL;
}

static void choose(void) {
    const q8_kernel_t *best = &KERNELS[N_KERNELS - 1];
    for (int i = 0; i < N_KERNELS; i++)
        if (supported(&KERNELS[i])) {
            best = &KERNELS[i];
            break;
        }
    const char *env = getenv("LLMOS_Q8_KERNEL");
    if (env && *env) {
        const q8_kernel_t *k = find(env);
        if (!k)
            LLMOS_WARN("LLMOS_Q8_KERNEL=%s: unknown kernel (scalar, avx2, avx512bw, avx512vnni); using %s", env,
                       best->name);
        else if (!supported(k))
            LLMOS_WARN("LLMOS_Q8_KERNEL=%s: this CPU lacks it; using %s", env, best->name);
        else
            best = k;
    }
    g_kernel = best;
    LLMOS_DEBUG("q8: kernel %s", best->name);
}

static const q8_kernel_t *kernel(void) {
    pthread_once(&g_once, choose);
    return g_kernel;
}

const char *q8_kernel_name(void) { return kernel()->name; }

static q8_quant_fn quantizer(void) { return kernel()->quant; }

int q8_kernel_supported(const char *name) {
    const q8_kernel_t *k = name ? find(name) : NULL;
    return k && supported(k);
}

int q8_kernel_select(const char *name, llmos_error_t *err) {
    kernel();
    const q8_kernel_t *k = name ? find(name) : NULL;
    if (!k) return llmos_error_set(err, LLMOS_EINVAL, "q8: unknown kernel '%s'", name ? name : "(null)");
    if (!supported(k)) return llmos_error_set(err, LLMOS_EUNSUPPORTED, "q8: this CPU cannot run kernel %s", k->name);
    g_kernel = k;
    return 0;
}

/* ---- matmul driver ------------------------------------------------------------------ */

#define ROW_TILE 4 /* the SIMD kernels' row tile: thread ranges are multiples */

/* Rows [lo, hi) of thread t of n: contiguous, multiples of ROW_TILE. */
static void row_range(int rows, int t, int n, int *lo, int *hi) {
    int tiles = (rows + ROW_TILE - 1) / ROW_TILE;
    *lo = (int)((long)tiles * t / n) * ROW_TILE;
    *hi = (int)((long)tiles * (t + 1) / n) * ROW_TILE;
    if (*hi > rows) *hi = rows;
}

static int check_mm(const void *y, const void *W, int rows, int cols, const void *x, int batch, llmos_error_t *err) {
    if (!y || !W || !x) return llmos_error_set(err, LLMOS_EINVAL, "q8_matmul: NULL pointer");
    if (rows <= 0 || batch <= 0)
        return llmos_error_set(err, LLMOS_EINVAL, "q8_matmul: %d rows, batch %d", rows, batch);
    return check_cols(cols, "q8_matmul", err);
}

/* Threads for a matmul of this size: one per 64 rows at most, since a
 * parallel region costs a few microseconds. */
static int n_threads(int threads, int rows) {
    int t = threads > 1 ? threads : 1;
    int cap = rows / 64 > 1 ? rows / 64 : 1;
    return t < cap ? t : cap;
}

int q8_matmul_q8(float *y, const q8_block_t *W, int rows, int cols, const q8_block_t *xq, int batch, int threads,
                 llmos_error_t *err) {
    if (check_mm(y, W, rows, cols, xq, batch, err)) return LLMOS_EINVAL;
    q8_rows_fn fn = kernel()->rows;
    int nb = cols / Q8_BLOCK, nt = n_threads(threads, rows);
    if (nt == 1) {
        fn(y, rows, W, 0, rows, nb, xq, batch);
        return 0;
    }
#pragma omp parallel num_threads(nt)
    {
        int lo, hi;
        row_range(rows, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (lo < hi) fn(y, rows, W, lo, hi, nb, xq, batch);
    }
    return 0;
}

/* Quantizes activation rows [b0, b1) into s (and prepares them for k). */
static void prepare_rows(const q8_kernel_t *k, const float *x, int cols, int b0, int b1, q8_scratch_t *s) {
    int nb = cols / Q8_BLOCK;
    for (int b = b0; b < b1; b++) {
        q8_block_t *xq = s->xq + (size_t)b * nb;
        k->quant(x + (size_t)b * cols, xq, nb);
        if (k->prep) k->prep(xq, nb, (char *)s->xprep + (size_t)b * q8_prep_row_bytes(nb));
    }
}

/* Rows [lo, hi) of the matmul on the activations prepared in s. */
static void run_rows(const q8_kernel_t *k, float *y, const q8_block_t *W, int rows, int lo, int hi, int nb,
                     const q8_scratch_t *s, int batch) {
    if (k->prep)
        k->rows_prep(y, rows, W, lo, hi, nb, s->xprep, batch);
    else
        k->rows(y, rows, W, lo, hi, nb, s->xq, batch);
}

int q8_matmul(float *y, const q8_block_t *W, int rows, int cols, const float *x, int batch, q8_scratch_t *s,
              int threads, llmos_error_t *err) {
    if (check_mm(y, W, rows, cols, x, batch, err)) return LLMOS_EINVAL;
    if (!s || !s->xq || !s->xprep || batch > s->max_batch || cols > s->max_cols)
        return llmos_error_set(err, LLMOS_EINVAL, "q8_matmul: batch %d x %d columns exceeds the scratch (%d x %d)",
                               batch, cols, s ? s->max_batch : 0, s ? s->max_cols : 0);
    const q8_kernel_t *k = kernel();
    int nb = cols / Q8_BLOCK, nt = n_threads(threads, rows);
    if (nt == 1 || batch < 16) {
        /* few rows (decode): preparing them costs less than a barrier, so
         * the threads meet only once, at the end of the matmul */
        prepare_rows(k, x, cols, 0, batch, s);
        if (nt == 1) {
            run_rows(k, y, W, rows, 0, rows, nb, s, batch);
            return 0;
        }
#pragma omp parallel num_threads(nt)
        {
            int lo, hi;
            row_range(rows, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
            if (lo < hi) run_rows(k, y, W, rows, lo, hi, nb, s, batch);
        }
        return 0;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        prepare_rows(k, x, cols, batch * t / n, batch * (t + 1) / n, s);
#pragma omp barrier
        int lo, hi;
        row_range(rows, t, n, &lo, &hi);
        if (lo < hi) run_rows(k, y, W, rows, lo, hi, nb, s, batch);
    }
    return 0;
}
