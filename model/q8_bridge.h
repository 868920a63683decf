/*
 * q8_bridge.h — how the engine uses the int8 kernels of q8.h: per-context
 * scratch for activations quantized per row, the matmul on a q8_0 weight,
 * and quantizing a loaded model's matrices.  Private to model/; layer 4
 * (builder.h): it calls the builder and q8.c, forward.c and model.c call it.
 */
#ifndef LLMOS_MODEL_Q8_BRIDGE_H
#define LLMOS_MODEL_Q8_BRIDGE_H

#include "model/builder.h"
#include "model/q8.h"

typedef struct model_q8_scratch {
    q8_scratch_t q; /* zeroed when the model has no q8_0 matrix */
} model_q8_scratch_t;

/* Sizes the scratch for max_rows rows of the widest input of m's q8_0
 * matrices (nothing when it has none). */
int model_q8_scratch_init(model_q8_scratch_t *s, const model_t *m, int max_rows, llmos_error_t *err);
void model_q8_scratch_deinit(model_q8_scratch_t *s);
/* Y[T, W.rows] = X[T, W.cols] · Wᵀ for a q8_0 W (T <= max_rows). */
void model_q8_matmul(model_q8_scratch_t *s, const model_tensor_t *W, const float *X, int T, float *Y, int threads);

/* Converts every 2-D weight matrix of a built model whose row length is a
 * multiple of 32 (not the embedding) to q8_0 (model_load's quantize).
 * LLMOS_ENOMEM. */
int model_quantize_q8(model_t *m, llmos_error_t *err);

#endif
