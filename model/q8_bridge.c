/*
 * q8_bridge.c — glue between the forward pass and the int8 kernels (q8.h).
 *
 * --quantize q8 converts every 2-D weight matrix whose row length is a
 * multiple of 32 (all of them in real models; stories260K's hidden width 172
 * leaves w2 in fp32) to q8_0 at load.  The embedding table stays fp32 (rows
 * are copied, not multiplied); a shared classifier gets its own q8_0 copy.
 * The fp32 source pages of a mapped file are released after conversion
 * (MADV_DONTNEED on a clean private mapping drops them from memory; they
 * would be re-read from the file only if touched again).
 */
#include "model/q8_bridge.h"
#include "runtime/base/log.h"

#include <stdlib.h>

static void widest_q8(const model_tensor_t *t, int *cols) {
    if (t->dtype == MODEL_DTYPE_Q8_0 && t->cols > *cols) *cols = t->cols;
}

int model_q8_scratch_init(model_q8_scratch_t *s, const model_t *m, int max_rows, llmos_error_t *err) {
    s->q = (q8_scratch_t){0};
    int cols = 0;
    const model_weights_t *w = &m->w;
    widest_q8(&w->classifier, &cols);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const model_layer_t *L = &w->layers[l];
        widest_q8(&L->wq, &cols), widest_q8(&L->wk, &cols), widest_q8(&L->wv, &cols), widest_q8(&L->wo, &cols);
        widest_q8(&L->w1, &cols), widest_q8(&L->w2, &cols), widest_q8(&L->w3, &cols);
    }
    if (cols == 0) return 0;
    return q8_scratch_init(&s->q, max_rows, cols, err);
}

void model_q8_scratch_deinit(model_q8_scratch_t *s) { q8_scratch_deinit(&s->q); }

void model_q8_matmul(model_q8_scratch_t *s, const model_tensor_t *W, const float *X, int T, float *Y, int threads) {
    int rc = q8_matmul(Y, W->data, W->rows, W->cols, X, T, &s->q, threads, NULL);
    LLMOS_ASSERT(rc == 0); /* shapes were checked at load and scratch sized at context creation */
}

static int quantize(model_t *m, model_tensor_t *t, int *kept, llmos_error_t *err) {
    if (t->dtype != MODEL_DTYPE_F32) return 0;
    if (t->cols % Q8_BLOCK) {
        (*kept)++;
        return 0;
    }
    q8_block_t *q = model_build_alloc(m, q8_matrix_bytes(t->rows, t->cols));
    if (!q) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for q8_0 weights");
    int rc = q8_quantize_matrix(t->data, q, t->rows, t->cols, 2, err);
    if (rc) return rc;
    /* The fp32 source can go unless it is (part of) the embedding table,
     * which look-ups still read. */
    const char *p = t->data, *e = m->w.tok_embd.data;
    size_t n = (size_t)t->rows * (size_t)t->cols * sizeof(float);
    size_t en = (size_t)m->w.tok_embd.rows * (size_t)m->w.tok_embd.cols * sizeof(float);
    if (p + n <= e || p >= e + en) model_build_release(m, t->data, n);
    t->dtype = MODEL_DTYPE_Q8_0;
    t->data = q;
    return 0;
}

int model_quantize_q8(model_t *m, llmos_error_t *err) {
    int rc = 0, kept = 0;
    model_weights_t *w = &m->w;
    for (int l = 0; l < m->cfg.n_layers && !rc; l++) {
        model_layer_t *L = &w->layers[l];
        model_tensor_t *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0] && !rc; i++) rc = quantize(m, ts[i], &kept, err);
    }
    if (!rc) rc = quantize(m, &w->classifier, &kept, err); /* a shared classifier gets a copy */
    if (!rc && kept)
        LLMOS_INFO("model: %d matrices kept in fp32 (row length not a multiple of %d)", kept, Q8_BLOCK);
    if (!rc) LLMOS_INFO("model: weights quantized to q8_0 (kernel %s)", q8_kernel_name());
    return rc;
}
