/*
 * q8.h — int8 inference kernels: q8_0 weights (GGUF/ggml layout) times
 * activations quantized per row to the same layout.
 *
 * A q8_0 block holds 32 consecutive values of one row as int8 plus one fp16
 * scale: value[i] = d * qs[i].  A matrix W[rows][cols] is rows * (cols/32)
 * blocks, row-major, exactly the bytes of a GGUF q8_0 tensor, so a tensor in
 * an mmapped file is used in place.  Blocks are 34 bytes and GGUF only aligns
 * tensors to 32, so the block type is packed (alignment 1): any address is a
 * valid q8_block_t pointer, and every kernel uses unaligned loads.
 *
 * The matmul quantizes each activation row to q8_0 (scale = max|x|/127,
 * round to nearest, values in [-127, 127]) into caller-provided scratch and
 * computes, per block, the exact int32 dot product of the two int8 vectors;
 * the float result is the sum over blocks of d_w * d_x * isum.  Every kernel
 * (scalar reference, AVX2, AVX-512BW, AVX-512 VNNI) computes the same int32
 * block sums; only the order of the float accumulation differs.
 *
 * Kernel choice: at first use, from the CPU's features (best available);
 * LLMOS_Q8_KERNEL=scalar|avx2|avx512bw|avx512vnni forces one (an unknown or
 * unsupported name falls back to the best one, with a warning in the log).
 *
 * Threads: the matmul splits W's rows across `threads` OpenMP threads
 * (threads <= 1: the calling thread only).  The functions allocate nothing
 * except q8_scratch_init; all are thread-safe on distinct outputs.
 *
 * Activations may also be quantized once (q8_quantize_matrix) and reused for
 * several matrices with the same input (q, k, v; w1, w3) via q8_matmul_q8.
 */
#ifndef LLMOS_MODEL_Q8_H
#define LLMOS_MODEL_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/base/err.h"

#define Q8_BLOCK 32 /* values per block */

typedef struct __attribute__((packed)) q8_block {
    uint16_t d;           /* fp16 scale (IEEE binary16 bits) */
    int8_t qs[Q8_BLOCK];  /* quantized values */
} q8_block_t;

_Static_assert(sizeof(q8_block_t) == 34, "q8_0 block is 34 bytes as in GGUF");

/* ---- sizes ---------------------------------------------------------------- */

/* Bytes of one q8_0 row of `cols` values (cols a multiple of 32). */
static inline size_t q8_row_bytes(int cols) { return (size_t)(cols / Q8_BLOCK) * sizeof(q8_block_t); }
/* Bytes of a rows x cols q8_0 matrix. */
static inline size_t q8_matrix_bytes(int rows, int cols) { return (size_t)rows * q8_row_bytes(cols); }

/* ---- fp16 ----------------------------------------------------------------- */

/* IEEE binary16 bits -> float (exact; subnormals, inf and NaN kept). */
float q8_fp16_to_fp32(uint16_t h);
/* float -> binary16 bits, round to nearest even; overflow -> inf, NaN kept
 * (quiet), tiny values -> subnormal or signed zero. */
uint16_t q8_fp32_to_fp16(float f);

/* ---- quantize / dequantize ------------------------------------------------- */

/* Quantizes x[cols] into cols/32 blocks at out.  Each block: d = max|x|/127
 * rounded up to the next fp16 (so |x - d*q| <= d/2 even for subnormal d),
 * q = round(x / d) (ties away from zero) in [-127, 127]; an all-zero block
 * gets d = 0.  Non-finite input gives an unspecified (but memory-safe) block.
 * Errors: LLMOS_EINVAL (cols <= 0 or not a multiple of 32, NULL pointer). */
int q8_quantize_row(const float *x, q8_block_t *out, int cols, llmos_error_t *err);

/* y[cols] = dequantized blocks.  Errors: as q8_quantize_row. */
int q8_dequantize_row(const q8_block_t *in, float *y, int cols, llmos_error_t *err);

/* Quantizes `rows` rows of x (row stride cols) into out (q8_matrix_bytes).
 * Used for activations and for converting fp32 weights at load; `threads`
 * OpenMP threads (<= 1: caller's thread).  Errors: as q8_quantize_row, and
 * rows < 0. */
int q8_quantize_matrix(const float *x, q8_block_t *out, int rows, int cols, int threads, llmos_error_t *err);

/* ---- matmul ---------------------------------------------------------------- */

/* Scratch for quantized activations: room for max_batch rows of max_cols
 * (about 4 bytes per value: the q8 rows plus a form prepared for the VNNI
 * kernel).  Caller-owned struct; the buffers are owned by it and freed by
 * _deinit. */
typedef struct q8_scratch {
    q8_block_t *xq;   /* [max_batch][max_cols/32] */
    void *xprep;      /* [max_batch] rows prepared for the VNNI kernel (3 bytes per value) */
    int max_batch;
    int max_cols;
} q8_scratch_t;

/* Errors: LLMOS_EINVAL (max_cols not a positive multiple of 32, max_batch
 * <= 0), LLMOS_ENOMEM. */
int q8_scratch_init(q8_scratch_t *s, int max_batch, int max_cols, llmos_error_t *err);
/* Frees the buffer; safe on a zeroed or already deinit'ed struct. */
void q8_scratch_deinit(q8_scratch_t *s);

/* y[b][r] = sum_c W[r][c] * x[b][c] for b < batch, r < rows:
 * y is [batch][rows] floats, x is [batch][cols] floats (row-major, dense),
 * W is rows x cols q8_0 (borrowed, any alignment).  x is quantized into
 * s->xq first (batch <= s->max_batch, cols <= s->max_cols).
 * Errors: LLMOS_EINVAL (cols not a multiple of 32, sizes <= 0 or over the
 * scratch, NULL pointers). Allocates nothing. */
int q8_matmul(float *y, const q8_block_t *W, int rows, int cols, const float *x, int batch, q8_scratch_t *s,
              int threads, llmos_error_t *err);

/* As q8_matmul on activations already quantized (xq: [batch][cols/32]
 * blocks, values in [-127, 127]; -128 in xq is not supported — the
 * quantizer never produces it. W may hold -128).  Same results as
 * q8_matmul; for batches on the VNNI kernel q8_matmul is faster (it
 * prepares the activations in its scratch once per call). */
int q8_matmul_q8(float *y, const q8_block_t *W, int rows, int cols, const q8_block_t *xq, int batch, int threads,
                 llmos_error_t *err);

/* ---- kernel selection -------------------------------------------------------- */

/* Name of the kernel in use: "scalar", "avx2", "avx512bw" or "avx512vnni".
 * Never NULL; the string is static. */
const char *q8_kernel_name(void);

/* Forces a kernel by name (tests, benchmarks).  Returns LLMOS_EUNSUPPORTED
 * if the CPU lacks it, LLMOS_EINVAL for an unknown name.  Not thread-safe
 * against concurrent matmuls. */
int q8_kernel_select(const char *name, llmos_error_t *err);

/* 1 if the named kernel runs on this CPU, else 0. */
int q8_kernel_supported(const char *name);

#endif
