/*
 * q8_bridge.c — glue between the forward pass and the int8 kernels.
 * The kernels themselves (q8.h) are written separately; until they are in
 * the tree a q8_0 model is refused at load.
 */
#include "model/q8_bridge.h"

#include <stdlib.h>

static int has_q8(const model_t *m) {
    const model_weights_t *w = &m->w;
    if (w->classifier.dtype == MODEL_DTYPE_Q8_0) return 1;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (w->layers[l].wq.dtype == MODEL_DTYPE_Q8_0) return 1;
    return 0;
}

int model_q8_scratch_init(model_q8_scratch_t *s, const model_t *m, int max_rows, llmos_error_t *err) {
    s->act = NULL;
    s->act_bytes = 0;
    if (has_q8(m)) return llmos_error_set(err, LLMOS_EUNSUPPORTED, "q8_0 kernels are not built in yet");
    (void)max_rows;
    return 0;
}

void model_q8_scratch_deinit(model_q8_scratch_t *s) {
    free(s->act);
    s->act = NULL;
}

void model_q8_matmul(model_q8_scratch_t *s, const model_tensor_t *W, const float *X, int T, float *Y, int threads) {
    (void)s, (void)W, (void)X, (void)T, (void)Y, (void)threads;
    LLMOS_ASSERT(!"q8_0 matmul without q8 kernels");
}

int model_quantize_q8(model_t *m, llmos_error_t *err) {
    (void)m;
    return llmos_error_set(err, LLMOS_EUNSUPPORTED, "--quantize q8: the int8 kernels are not built in yet");
}
