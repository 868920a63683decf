/*
 * serve_cls.c — a fine-tuned classifier checkpoint made ready for serving
 * (see serve_cls.h): the head, labels, pooling and token limit copied out
 * of the rebuilt training net, and the body the shards load — the base
 * file for a head-only checkpoint, else a private temporary llama2.c file
 * of the merged fine-tuned body.
 */
#include "model/serve_cls.h"

#include "model/train/trainer.h"
#include "runtime/base/log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *meta_str(const char *meta, const char *key) {
    cJSON *m = cJSON_Parse(meta);
    const cJSON *v = m ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
    char *s = cJSON_IsString(v) && v->valuestring[0] ? strdup(v->valuestring) : NULL;
    cJSON_Delete(m);
    return s;
}

/* Writes the merged body of ld to a new temporary file; c->load_path. */
static int write_merged(serve_cls_t *c, const train_loaded_t *ld, llmos_error_t *err) {
    const char *tmp = getenv("TMPDIR");
    char path[1024];
    if (snprintf(path, sizeof path, "%s/llmos-cls-XXXXXX", tmp && tmp[0] ? tmp : "/tmp") >= (int)sizeof path)
        return llmos_error_set(err, LLMOS_EINVAL, "TMPDIR is too long");
    int fd = mkstemp(path);
    if (fd < 0) return llmos_error_set(err, LLMOS_EIO, "%s: cannot create a temporary file", path);
    close(fd);
    if (!(c->load_path = strdup(path))) {
        unlink(path);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    c->temp = true;
    model_t *m = NULL;
    int rc = model_new(model_config(ld->model), &m, err);
    if (!rc) rc = train_net_store_model(ld->net, m, err);
    if (!rc) rc = model_save_llama2c(m, path, err);
    model_destroy(&m);
    if (rc) llmos_error_prefix(err, "classifier %s: writing the merged body: ", c->dir);
    return rc;
}

int serve_cls_open(const char *dir, const char *model, const char *tokenizer, serve_cls_t **out,
                   llmos_error_t *err) {
    *out = NULL;
    char b1[1100], b2[1100];
    model = train_path_resolve(model, 1, b1, sizeof b1);
    tokenizer = train_path_resolve(tokenizer, 1, b2, sizeof b2);
    train_loaded_t ld;
    int rc = train_loaded_open(&ld, dir, 1, model, tokenizer, 1, 1, err);
    if (rc) {
        llmos_error_prefix(err, "classifier %s: ", dir);
        return rc;
    }
    serve_cls_t *c = calloc(1, sizeof *c);
    const train_layout_t *lay = train_net_layout(ld.net);
    if (!c) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        goto out;
    }
    if (lay->opts.task != TRAIN_TASK_CLS || lay->head_w < 0 || lay->head_b < 0) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "classifier %s: version %d is not a classifier checkpoint",
                             dir, ld.version);
        goto out;
    }
    int C = lay->opts.n_classes, D = model_config(ld.model)->dim;
    if (ld.labels.n != C) {
        rc = llmos_error_set(err, LLMOS_EFORMAT, "classifier %s: %d labels for a head of %d classes", dir,
                             ld.labels.n, C);
        goto out;
    }
    c->n_classes = C;
    c->dim = D;
    c->version = ld.version;
    c->pool_last = lay->opts.pool == TRAIN_POOL_LAST;
    c->seq = ld.seq;
    c->mode = lay->opts.mode == TRAIN_MODE_HEAD   ? "head"
              : lay->opts.mode == TRAIN_MODE_LORA ? "lora"
                                                  : "full";
    c->dir = strdup(dir);
    c->labels = calloc((size_t)C, sizeof *c->labels);
    c->w = malloc(sizeof(float) * (size_t)C * (size_t)D);
    c->b = malloc(sizeof(float) * (size_t)C);
    if (!c->dir || !c->labels || !c->w || !c->b) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        goto out;
    }
    for (int k = 0; k < C; k++)
        if (!(c->labels[k] = strdup(ld.labels.name[k]))) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            goto out;
        }
    const float *p = train_net_params(ld.net);
    const train_tensor_t *tw = &lay->t[lay->head_w], *tb = &lay->t[lay->head_b];
    LLMOS_ASSERT((size_t)tw->rows * (size_t)tw->cols == (size_t)C * (size_t)D && tb->rows * tb->cols == C);
    memcpy(c->w, p + tw->off, sizeof(float) * (size_t)C * (size_t)D);
    memcpy(c->b, p + tb->off, sizeof(float) * (size_t)C);
    char *meta_tok = meta_str(ld.meta, "tokenizer");
    c->tokenizer = tokenizer ? strdup(tokenizer) : meta_tok;
    if (tokenizer) free(meta_tok);
    if (lay->opts.mode == TRAIN_MODE_HEAD) {
        /* The body is the base model itself. */
        c->load_path = model ? strdup(model) : meta_str(ld.meta, "model");
        if (!c->load_path)
            rc = llmos_error_set(err, LLMOS_EFORMAT, "classifier %s: meta names no model", dir);
    } else {
        rc = write_merged(c, &ld, err);
    }
    if (!rc)
        LLMOS_INFO("classifier %s: version %d, %s, %d classes, %s pooling, %d tokens; body from %s", dir,
                   c->version, c->mode, C, c->pool_last ? "last" : "mean", c->seq, c->load_path);
out:
    train_loaded_deinit(&ld);
    if (rc)
        serve_cls_destroy(&c);
    else
        *out = c;
    return rc;
}

void serve_cls_drop_temp(serve_cls_t *c) {
    if (c && c->temp && c->load_path) unlink(c->load_path);
    if (c) c->temp = false;
}

void serve_cls_destroy(serve_cls_t **cp) {
    if (!cp || !*cp) return;
    serve_cls_t *c = *cp;
    serve_cls_drop_temp(c);
    for (int k = 0; c->labels && k < c->n_classes; k++)
        free(c->labels[k]);
    free(c->labels);
    free(c->w);
    free(c->b);
    free(c->dir);
    free(c->load_path);
    free(c->tokenizer);
    free(c);
    *cp = NULL;
}

void serve_cls_apply(const serve_cls_t *c, const float *h, double *probs) {
    double mx = -INFINITY, sum = 0;
    for (int k = 0; k < c->n_classes; k++) {
        const float *w = c->w + (size_t)k * (size_t)c->dim;
        double z = c->b[k];
        for (int j = 0; j < c->dim; j++)
            z += (double)w[j] * (double)h[j];
        probs[k] = z;
        if (z > mx) mx = z;
    }
    for (int k = 0; k < c->n_classes; k++)
        sum += (probs[k] = exp(probs[k] - mx));
    for (int k = 0; k < c->n_classes; k++)
        probs[k] /= sum;
}
