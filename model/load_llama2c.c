/*
 * load_llama2c.c — llama2.c checkpoints, legacy fp32 format.
 *
 * Layout: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
 * classifier is stored separately at the end), then fp32 arrays: embedding
 * [vocab][dim], rms_att [L][dim], wq [L][dim][dim], wk [L][kv][dim],
 * wv [L][kv][dim], wo [L][dim][dim], rms_ffn [L][dim], w1 [L][hid][dim],
 * w2 [L][dim][hid], w3 [L][hid][dim], rms_final [dim], two unused RoPE
 * tables of seq_len*head_dim/2 floats each, and the classifier [vocab][dim]
 * when separate.  The file size must be exactly that: anything else means a
 * truncated, foreign or inconsistent file.  Tensors point into the mapping
 * (on a tensor-parallel rank: its row slices do; column slices are copies).
 */
#include "model/loaders.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *hdr_names[7] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                   "n_kv_heads", "vocab_size", "seq_len"};

int model_load_llama2c(model_t *m, const model_load_opts_t *opts, llmos_error_t *err) {
    const char *path = m->path;
    if (m->map_len < 28)
        return llmos_error_set(err, LLMOS_EFORMAT,
                               "%s: truncated llama2.c header: %zu bytes, need 28 (offset %zu)", path,
                               m->map_len, m->map_len);
    int32_t h[7];
    memcpy(h, m->map, sizeof h);
    for (int i = 0; i < 7; i++) {
        int32_t v = h[i];
        if (i == 5 && v < 0 && v != INT32_MIN) v = -v;
        if (v <= 0 || v > (1 << 20))
            return llmos_error_set(err, LLMOS_EFORMAT,
                                   "%s: header field %s at offset %d is %d (not a llama2.c checkpoint?)",
                                   path, hdr_names[i], i * 4, h[i]);
    }
    model_config_t c = {.arch = MODEL_ARCH_LLAMA,
                        .dim = h[0],
                        .hidden_dim = h[1],
                        .n_layers = h[2],
                        .n_heads = h[3],
                        .n_kv_heads = h[4],
                        .vocab_size = h[5] < 0 ? -h[5] : h[5],
                        .seq_len = h[6],
                        .rope_theta = 10000.0f,
                        .norm_eps = 1e-5f,
                        .shared_classifier = h[5] > 0};
    int rc = model_config_check(&c, err);
    if (rc) {
        llmos_error_prefix(err, "%s: header (offsets 0..27): ", path);
        if (err) err->code = LLMOS_EFORMAT;
        return LLMOS_EFORMAT;
    }
    m->cfg = c;
    if ((rc = model_build_shard(m, opts, err))) return rc;

    uint64_t D = (uint64_t)c.dim, H = (uint64_t)c.hidden_dim, L = (uint64_t)c.n_layers,
             V = (uint64_t)c.vocab_size, KV = (uint64_t)c.n_kv_heads * (uint64_t)c.head_dim;
    uint64_t floats = V * D + L * (D + D * D + 2 * KV * D + D * D + D + 3 * H * D) + D +
                      (uint64_t)c.seq_len * (uint64_t)c.head_dim + (c.shared_classifier ? 0 : V * D);
    uint64_t want = 28 + floats * 4;
    if ((uint64_t)m->map_len != want)
        return llmos_error_set(err, LLMOS_EFORMAT,
                               "%s: file is %zu bytes but its header (dim %d, hidden_dim %d, n_layers %d, "
                               "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) needs %llu: %s",
                               path, m->map_len, h[0], h[1], h[2], h[3], h[4], h[5], h[6],
                               (unsigned long long)want,
                               (uint64_t)m->map_len < want ? "truncated" : "trailing bytes or wrong header");
    if (!opts->tokenizer_path)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "%s: a llama2.c checkpoint needs a tokenizer file (--tokenizer)", path);
    rc = model_build_finish(m, err);
    if (rc) return rc;

    /* Each tensor in file order; this rank's part is bound (row slices and
     * whole tensors point into the mapping, column slices are copied). */
    float *p = (float *)((char *)m->map + 28);
    model_weights_t *w = &m->w;
    struct {
        const char *name;
        size_t off; /* in model_layer_t */
        uint64_t rows, cols;
        model_part_t part;
    } per[9] = {{"attn_norm", offsetof(model_layer_t, attn_norm), 1, D, MODEL_PART_WHOLE},
                {"wq", offsetof(model_layer_t, wq), D, D, MODEL_PART_Q_ROWS},
                {"wk", offsetof(model_layer_t, wk), KV, D, MODEL_PART_KV_ROWS},
                {"wv", offsetof(model_layer_t, wv), KV, D, MODEL_PART_KV_ROWS},
                {"wo", offsetof(model_layer_t, wo), D, D, MODEL_PART_Q_COLS},
                {"ffn_norm", offsetof(model_layer_t, ffn_norm), 1, D, MODEL_PART_WHOLE},
                {"w1", offsetof(model_layer_t, w1), H, D, MODEL_PART_H_ROWS},
                {"w2", offsetof(model_layer_t, w2), D, H, MODEL_PART_H_COLS},
                {"w3", offsetof(model_layer_t, w3), H, D, MODEL_PART_H_ROWS}};
    rc = model_build_take(m, &w->tok_embd, "token_embedding", p, MODEL_DTYPE_F32, (int)V, (int)D, MODEL_PART_WHOLE,
                           0, err);
    p += V * D;
    for (int k = 0; k < 9 && !rc; k++)
        for (int l = 0; l < c.n_layers && !rc; l++) {
            char name[64];
            snprintf(name, sizeof name, "layer %d %s", l, per[k].name);
            model_tensor_t *t = (model_tensor_t *)((char *)&w->layers[l] + per[k].off);
            rc = model_build_take(m, t, name, p, MODEL_DTYPE_F32, (int)per[k].rows, (int)per[k].cols, per[k].part,
                                   0, err);
            p += (size_t)(per[k].rows * per[k].cols);
        }
    if (rc) return rc;
    rc = model_build_take(m, &w->final_norm, "rms_final", p, MODEL_DTYPE_F32, 1, (int)D, MODEL_PART_WHOLE, 0, err);
    p += D;
    p += (size_t)c.seq_len * (size_t)c.head_dim; /* freq_cis_real + freq_cis_imag */
    /* A shared classifier is the embedding's rows of this rank's vocabulary. */
    const float *cls = c.shared_classifier ? (const float *)((char *)m->map + 28) : p;
    if (!rc) rc = model_build_take(m, &w->classifier, "classifier", cls, MODEL_DTYPE_F32, (int)V, (int)D,
                                    MODEL_PART_V_ROWS, 0, err);
    if (rc) return rc;
    if (!c.shared_classifier) p += V * D;
    LLMOS_ASSERT((char *)p == (char *)m->map + m->map_len);
    return model_tokenizer_load(opts->tokenizer_path, c.vocab_size, &m->tok, err);
}
