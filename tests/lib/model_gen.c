/*
 * model_gen.c — random-weight llama2.c checkpoints and synthetic
 * tokenizers (model_gen.h).  Writes files only; nothing here is timed.
 */
#include "model_gen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct gen {
    uint64_t s;
    float amp;
} gen_t;

static float next(gen_t *g) {
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return ((float)(g->s >> 40) / 16777216.0f - 0.5f) * g->amp;
}

static void fill(gen_t *g, model_tensor_t *t, int ones) {
    float *p = t->data;
    size_t n = (size_t)t->rows * (size_t)t->cols;
    for (size_t i = 0; i < n; i++)
        p[i] = ones ? 1.0f + next(g) : next(g);
}

static int write_tokenizer(const char *path, int vocab, llmos_error_t *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return llmos_error_set(err, LLMOS_EIO, "cannot create %s: %s", path, strerror(errno));
    int32_t maxlen = 16;
    int ok = fwrite(&maxlen, 4, 1, f) == 1;
    for (int i = 0; i < vocab && ok; i++) {
        char s[16];
        int32_t n = i < 3 ? snprintf(s, sizeof s, "<c%d>", i) : snprintf(s, sizeof s, "t%d", i);
        float score = -(float)i;
        ok = fwrite(&score, 4, 1, f) == 1 && fwrite(&n, 4, 1, f) == 1 &&
             fwrite(s, 1, (size_t)n, f) == (size_t)n;
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : llmos_error_set(err, LLMOS_EIO, "writing %s failed", path);
}

int llmos_test_model_write(const model_config_t *cfg, uint64_t seed, float amp, const char *model_path,
                           const char *tok_path, llmos_error_t *err) {
    model_t *m = NULL;
    int rc = model_new(cfg, &m, err);
    if (rc) return rc;
    gen_t g = {.s = seed ? seed : 1, .amp = amp};
    model_weights_t *w = model_weights(m);
    fill(&g, &w->tok_embd, 0);
    fill(&g, &w->final_norm, 1);
    for (int l = 0; l < cfg->n_layers; l++) {
        model_layer_t *L = &w->layers[l];
        fill(&g, &L->attn_norm, 1);
        fill(&g, &L->ffn_norm, 1);
        fill(&g, &L->wq, 0), fill(&g, &L->wk, 0), fill(&g, &L->wv, 0), fill(&g, &L->wo, 0);
        fill(&g, &L->w1, 0), fill(&g, &L->w2, 0), fill(&g, &L->w3, 0);
    }
    if (!cfg->shared_classifier) fill(&g, &w->classifier, 0);
    rc = model_save_llama2c(m, model_path, err);
    model_destroy(&m);
    if (!rc && tok_path) rc = write_tokenizer(tok_path, cfg->vocab_size, err);
    return rc;
}
