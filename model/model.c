/*
 * model.c — the facade of the engine (the top layer of model/, see
 * builder.h): model_load maps a file and hands it to the loader its magic
 * names (loaders.h), then quantizes when asked (q8_bridge.h); model_new
 * makes an empty writable model; saving as llama2.c; the accessors of
 * model.h.  Everything it builds goes through builder.c, which frees it.
 */
#include "model/builder.h"
#include "model/loaders.h"
#include "model/q8_bridge.h"
#include "runtime/base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int model_load(const char *path, const model_load_opts_t *opts, model_t **out, llmos_error_t *err) {
    *out = NULL;
    model_load_opts_t def = {0};
    if (!opts) opts = &def;
    if (opts->quantize != MODEL_DTYPE_F32 && opts->quantize != MODEL_DTYPE_Q8_0)
        return llmos_error_set(err, LLMOS_EINVAL, "quantize: only f32 (none) or q8_0");
    model_blis_init();
    model_t *m;
    int rc = model_build_new(path, &m, err);
    if (rc) return rc;
    rc = model_build_map(m, path, err);
    if (rc == 0) {
        if (m->map_len >= 4 && memcmp(m->map, "GGUF", 4) == 0)
            rc = model_load_gguf(m, opts, err);
        else
            rc = model_load_llama2c(m, opts, err);
    }
    if (rc == 0 && opts->quantize == MODEL_DTYPE_Q8_0) rc = model_quantize_q8(m, err);
    if (rc != 0) {
        model_destroy(&m);
        return rc;
    }
    LLMOS_INFO("model: loaded %s: dim %d, hidden %d, layers %d, heads %d/%d kv, vocab %d, seq %d%s",
               path, m->cfg.dim, m->cfg.hidden_dim, m->cfg.n_layers, m->cfg.n_heads,
               m->cfg.n_kv_heads, m->cfg.vocab_size, m->cfg.seq_len,
               opts->quantize == MODEL_DTYPE_Q8_0 ? ", weights q8_0" : "");
    if (m->shard.size > 1)
        LLMOS_INFO("model: tp rank %d of %d: %d query heads, %d kv heads, hidden %d, vocab rows %d..%d; "
                   "%.1f MiB of weights on this rank",
                   m->shard.rank, m->shard.size, m->shard.n_heads, m->shard.n_kv_heads, m->shard.hidden_dim,
                   m->shard.vocab0, m->shard.vocab0 + m->shard.n_vocab, (double)model_weight_bytes(m) / 1048576.0);
    *out = m;
    return 0;
}

static void tensor_init(model_tensor_t *t, model_t *m, int rows, int cols, int *ok) {
    t->dtype = MODEL_DTYPE_F32;
    t->rows = rows;
    t->cols = cols;
    t->data = model_build_alloc(m, sizeof(float) * (size_t)rows * (size_t)cols);
    if (!t->data) *ok = 0;
}

int model_new(const model_config_t *cfg, model_t **out, llmos_error_t *err) {
    *out = NULL;
    model_config_t c = *cfg;
    int rc = model_config_check(&c, err);
    if (rc) return rc;
    model_blis_init();
    model_t *m;
    if ((rc = model_build_new("(new)", &m, err))) return rc;
    m->cfg = c;
    m->shard = (model_shard_t){.rank = 0, .size = 1, .n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                               .hidden_dim = c.hidden_dim, .n_vocab = c.vocab_size};
    rc = model_build_finish(m, err);
    int ok = 1, kv = c.n_kv_heads * c.head_dim;
    if (rc == 0) {
        tensor_init(&m->w.tok_embd, m, c.vocab_size, c.dim, &ok);
        for (int l = 0; l < c.n_layers && ok; l++) {
            model_layer_t *L = &m->w.layers[l];
            tensor_init(&L->attn_norm, m, 1, c.dim, &ok);
            tensor_init(&L->wq, m, c.dim, c.dim, &ok);
            tensor_init(&L->wk, m, kv, c.dim, &ok);
            tensor_init(&L->wv, m, kv, c.dim, &ok);
            tensor_init(&L->wo, m, c.dim, c.dim, &ok);
            tensor_init(&L->ffn_norm, m, 1, c.dim, &ok);
            tensor_init(&L->w1, m, c.hidden_dim, c.dim, &ok);
            tensor_init(&L->w2, m, c.dim, c.hidden_dim, &ok);
            tensor_init(&L->w3, m, c.hidden_dim, c.dim, &ok);
        }
        tensor_init(&m->w.final_norm, m, 1, c.dim, &ok);
        if (c.shared_classifier)
            m->w.classifier = m->w.tok_embd;
        else
            tensor_init(&m->w.classifier, m, c.vocab_size, c.dim, &ok);
        if (!ok) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the weights");
    }
    if (rc) {
        model_destroy(&m);
        return rc;
    }
    *out = m;
    return 0;
}

static int write_tensor(FILE *f, const model_tensor_t *t, const char *path, llmos_error_t *err) {
    if (t->dtype != MODEL_DTYPE_F32)
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "saving %s: only fp32 weights can be saved",
                               path);
    size_t n = (size_t)t->rows * (size_t)t->cols;
    if (fwrite(t->data, sizeof(float), n, f) != n)
        return llmos_error_set(err, LLMOS_EIO, "writing %s: %s", path, strerror(errno));
    return 0;
}

int model_save_llama2c(const model_t *m, const char *path, llmos_error_t *err) {
    const model_config_t *c = &m->cfg;
    if (m->shard.size > 1)
        return llmos_error_set(err, LLMOS_EINVAL, "saving %s: the model is tp rank %d's slice of %d, not whole", path,
                               m->shard.rank, m->shard.size);
    FILE *f = fopen(path, "wb");
    if (!f) return llmos_error_set(err, llmos_err_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    int32_t hdr[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                      c->shared_classifier ? c->vocab_size : -c->vocab_size, c->seq_len};
    int rc = fwrite(hdr, sizeof hdr, 1, f) == 1 ? 0 : llmos_error_set(err, LLMOS_EIO, "writing %s", path);
    const model_weights_t *w = &m->w;
    /* llama2.c's order: all layers of one kind together. */
    if (!rc) rc = write_tensor(f, &w->tok_embd, path, err);
    size_t off[9] = {offsetof(model_layer_t, attn_norm), offsetof(model_layer_t, wq),
                     offsetof(model_layer_t, wk),        offsetof(model_layer_t, wv),
                     offsetof(model_layer_t, wo),        offsetof(model_layer_t, ffn_norm),
                     offsetof(model_layer_t, w1),        offsetof(model_layer_t, w2),
                     offsetof(model_layer_t, w3)};
    for (int k = 0; k < 9 && !rc; k++)
        for (int l = 0; l < c->n_layers && !rc; l++)
            rc = write_tensor(f, (const model_tensor_t *)((const char *)&w->layers[l] + off[k]), path, err);
    if (!rc) rc = write_tensor(f, &w->final_norm, path, err);
    /* The legacy freq_cis tables (unused by readers, but part of the layout). */
    size_t nfreq = (size_t)c->seq_len * (size_t)(c->head_dim / 2) * 2;
    for (size_t i = 0; i < nfreq && !rc; i++) {
        float z = 0;
        if (fwrite(&z, sizeof z, 1, f) != 1) rc = llmos_error_set(err, LLMOS_EIO, "writing %s", path);
    }
    if (!rc && !c->shared_classifier) rc = write_tensor(f, &w->classifier, path, err);
    if (fclose(f) != 0 && !rc) rc = llmos_error_set(err, LLMOS_EIO, "closing %s: %s", path, strerror(errno));
    return rc;
}


const model_config_t *model_config(const model_t *m) { return &m->cfg; }
void model_tp_part(const model_t *m, int *tp_rank, int *tp_size) {
    if (tp_rank) *tp_rank = m->shard.rank;
    if (tp_size) *tp_size = m->shard.size;
}
model_weights_t *model_weights(model_t *m) { return &m->w; }
const model_tokenizer_t *model_tokenizer(const model_t *m) { return m->tok; }

static size_t tensor_bytes(const model_tensor_t *t) {
    size_t n = (size_t)t->rows * (size_t)t->cols;
    return t->dtype == MODEL_DTYPE_Q8_0 ? n / 32 * 34 : n * 4;
}

size_t model_weight_bytes(const model_t *m) {
    const model_weights_t *w = &m->w;
    size_t b = (size_t)m->cfg.dim * 4; /* one embedding row */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const model_layer_t *L = &w->layers[l];
        b += tensor_bytes(&L->attn_norm) + tensor_bytes(&L->wq) + tensor_bytes(&L->wk) +
             tensor_bytes(&L->wv) + tensor_bytes(&L->wo) + tensor_bytes(&L->ffn_norm) +
             tensor_bytes(&L->w1) + tensor_bytes(&L->w2) + tensor_bytes(&L->w3);
    }
    return b + tensor_bytes(&w->final_norm) + tensor_bytes(&w->classifier);
}
