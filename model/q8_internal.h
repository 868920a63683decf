/*
 * q8_internal.h — the contract between q8.c (quantizing, threading, kernel
 * choice), the portable kernels (q8_scalar.c) and the per-ISA kernel files
 * (q8_avx2.c, q8_avx512.c).  Private to the q8 files.
 *
 * A kernel computes a slab of output rows for the whole batch; it must give
 * the exact int32 dot product of each pair of blocks (activations are in
 * [-127, 127], weights in [-128, 127]) and may only reorder the float sum of
 * d_w * d_x * isum over blocks.  Kernels allocate nothing and are
 * thread-safe on disjoint row ranges.
 */
#ifndef LLMOS_MODEL_Q8_INTERNAL_H
#define LLMOS_MODEL_Q8_INTERNAL_H

#include <string.h>

#include "model/q8.h"

/* Quantizes nb blocks of x into out (q8_quantize_row without checks). */
typedef void (*q8_quant_fn)(const float *x, q8_block_t *out, int nb);
void q8_quant_scalar(const float *x, q8_block_t *out, int nb);
void q8_quant_avx512(const float *x, q8_block_t *out, int nb);
/* The fp16 scale of a block whose largest |value| is amax, and the inverse
 * (*id) that quantizing multiplies by; shared so both quantizers agree. */
uint16_t q8_block_scale(float amax, float *id);

/* y[b * ldy + r] = sum over nb blocks of W row r times xq row b,
 * for r in [r0, r1) and b in [0, batch).  W row r starts at W + r * nb. */
typedef void (*q8_rows_fn)(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq,
                           int batch);

void q8_rows_scalar(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq, int batch);
void q8_rows_avx2(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq, int batch);
void q8_rows_avx512bw(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq,
                      int batch);
void q8_rows_avx512vnni(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq,
                        int batch);

/* Activation rows prepared for the VNNI kernel (q8_prep_avx512vnni): per
 * step of two blocks, 192 bytes (64-aligned) = the two blocks' values,
 * -128 * sum(x) per int32 lane, and each lane's scale as float; a batched
 * tile then only loads what it would otherwise recompute per weight tile. */
#define Q8_PREP_STEP 192
static inline size_t q8_prep_row_bytes(int nb) { return (size_t)((nb + 1) / 2) * Q8_PREP_STEP; }

/* Prepares one activation row of nb blocks into out (q8_prep_row_bytes). */
typedef void (*q8_prep_fn)(const q8_block_t *xq, int nb, void *out);
/* As q8_rows_fn on prepared rows (row b at xp + b * q8_prep_row_bytes(nb)). */
typedef void (*q8_rows_prep_fn)(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const void *xp,
                                int batch);
void q8_prep_avx512vnni(const q8_block_t *xq, int nb, void *out);
void q8_rows_avx512vnni_prep(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const void *xp,
                             int batch);

/* The fp16 scale bits of a block at any address (no unaligned access). */
static inline uint16_t q8_block_d(const q8_block_t *b) {
    uint16_t h;
    memcpy(&h, (const void *)b, sizeof h);
    return h;
}

#endif
