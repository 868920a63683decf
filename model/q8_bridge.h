/*
 * q8_bridge.h — how the forward pass uses the int8 kernels of q8.h:
 * per-context scratch for activations quantized per row, the matmul on a
 * q8_0 weight, and quantizing a loaded model.  Private to model/.
 */
#ifndef LLMOS_MODEL_Q8_BRIDGE_H
#define LLMOS_MODEL_Q8_BRIDGE_H

#include "model/model_internal.h"

typedef struct model_q8_scratch {
    void *act;      /* quantized activation rows, sized for max_tokens rows */
    size_t act_bytes;
} model_q8_scratch_t;

/* Sizes the scratch for the widest input of m's q8_0 matrices (nothing when
 * the model has none). */
int model_q8_scratch_init(model_q8_scratch_t *s, const model_t *m, int max_rows, llmos_error_t *err);
void model_q8_scratch_deinit(model_q8_scratch_t *s);
/* Y[T, W.rows] = X[T, W.cols] · Wᵀ for a q8_0 W. */
void model_q8_matmul(model_q8_scratch_t *s, const model_tensor_t *W, const float *X, int T, float *Y, int threads);

#endif
