/*
 * optim.c — AdamW with decoupled weight decay (Loshchilov & Hutter),
 * gradient clipping by global norm, and the warm-up + cosine schedule.
 *
 * The optimiser covers the layout's trainable range only; its moments are
 * fp32 arrays of that length (what a checkpoint stores).  Weight decay is
 * applied per tensor, only where the layout's decay flag is set (matrices,
 * not norms or biases).  Sums of squares are taken in double so the clip
 * factor does not depend on the summation order more than necessary.
 */
#include "model/train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int train_adamw_init(train_adamw_t *a, const train_layout_t *lay, const train_adamw_opts_t *o, llmos_error_t *err) {
    memset(a, 0, sizeof *a);
    if (!(o->lr >= 0) || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0) ||
        !(o->weight_decay >= 0))
        return llmos_error_set(err, LLMOS_EINVAL,
                               "adamw: lr %g, beta1 %g, beta2 %g, eps %g, weight_decay %g: need lr>=0, betas in "
                               "[0,1), eps>0, wd>=0",
                               o->lr, o->beta1, o->beta2, o->eps, o->weight_decay);
    a->o = *o;
    a->off = lay->train_off;
    a->len = lay->train_len;
    a->m = calloc(a->len ? a->len : 1, sizeof(float));
    a->v = calloc(a->len ? a->len : 1, sizeof(float));
    if (!a->m || !a->v) {
        train_adamw_deinit(a);
        return llmos_error_set(err, LLMOS_ENOMEM, "adamw: no memory for %zu moments", a->len);
    }
    return 0;
}

void train_adamw_deinit(train_adamw_t *a) {
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
}

void train_adamw_step(train_adamw_t *a, const train_layout_t *lay, float *params, const float *grads, float lr) {
    a->t++;
    float b1 = a->o.beta1, b2 = a->o.beta2, eps = a->o.eps;
    float c1 = 1.0f / (1.0f - powf(b1, (float)a->t)), c2 = 1.0f / (1.0f - powf(b2, (float)a->t));
    for (int ti = 0; ti < lay->n_tensors; ti++) {
        const train_tensor_t *t = &lay->t[ti];
        if (t->off < a->off || t->off >= a->off + a->len) continue;
        size_t cnt = (size_t)t->rows * (size_t)t->cols, base = t->off - a->off;
        float wd = t->decay ? a->o.weight_decay : 0.0f;
        float *p = params + t->off, *m = a->m + base, *v = a->v + base;
        const float *g = grads + t->off;
        for (size_t i = 0; i < cnt; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            float mh = m[i] * c1, vh = v[i] * c2;
            p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
        }
    }
}

double train_grad_norm(const float *g, size_t off, size_t len) {
    double s = 0;
    for (size_t i = off; i < off + len; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double train_grad_clip(float *g, size_t off, size_t len, double max_norm) {
    double norm = train_grad_norm(g, off, len);
    if (max_norm > 0 && norm > max_norm) {
        float f = (float)(max_norm / (norm + 1e-6));
        for (size_t i = off; i < off + len; i++) g[i] *= f;
    }
    return norm;
}

float train_lr_at(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr) {
    if (warmup > 0 && step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup) return lr;
    double p = (double)(step - warmup) / (double)(total - warmup);
    if (p > 1) p = 1;
    return min_lr + (float)(0.5 * (1 + cos(M_PI * p))) * (lr - min_lr);
}
