/*
 * test_train.c — unit tests of model/train: every tensor's gradient against
 * central finite differences of the fp64 net (LM, classification with mean
 * and last pooling and dropout, LoRA, head only), the fp32 net against the
 * fp64 one, the training forward against the inference engine on
 * stories260K, LoRA merged vs applied at run time, AdamW, clipping and the
 * schedule.
 */
#include "model/train/train.h"
#include "model/train/train_internal.h"
#include "model/train/data.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static model_config_t tiny_cfg(void) {
    model_config_t c = {.arch = MODEL_ARCH_LLAMA, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4,
                        .n_kv_heads = 2, .vocab_size = 11, .seq_len = 8, .rope_theta = 10000.0f,
                        .norm_eps = 1e-5f, .shared_classifier = 0};
    return c;
}

enum { TB = 3, TT = 6 };
static const int tokens[TB * TT] = {1, 5, 3, 7, 2, 9, 4, 4, 10, 0, 6, 6, 8, 2, 1, 3, 3, 3};
static const int lens[TB] = {6, 4, 3};
static const int labels[TB] = {2, 0, 3};

static train_batch_t tiny_batch(void) {
    train_batch_t b = {.B = TB, .T = TT, .tokens = tokens, .lens = lens, .labels = labels, .drop_seed = 77, .first = 5};
    return b;
}

static train_net_opts_t opts_for(train_task_t task, train_mode_t mode, train_pool_t pool, float dropout) {
    train_net_opts_t o = {.task = task, .mode = mode, .n_classes = 4, .pool = pool, .dropout = dropout,
                          .lora_rank = 3, .lora_alpha = 6, .batch = TB, .seq = TT, .threads = 1};
    return o;
}

/* Random parameters for every group; LoRA B nonzero so the A gradients are
 * not trivially zero. */
static void randomize64(train_net64_t *n) {
    train64_net_init_random(n, 1234, 0.3f, 7u);
    const train_layout_t *l = train64_net_layout(n);
    double *p = train64_net_params(n);
    uint64_t s = 99;
    for (int i = 0; i < l->n_tensors; i++) {
        const train_tensor_t *t = &l->t[i];
        size_t cnt = (size_t)t->rows * t->cols;
        int perturb = t->rows == 1 || (t->group == TRAIN_GROUP_LORA && t->name[strlen(t->name) - 1] == 'B');
        if (perturb)
            for (size_t k = 0; k < cnt; k++) p[t->off + k] += 0.3 * train_rng_normal(&s);
    }
}

static double loss64(train_net64_t *n, const train_batch_t *b, float scale) {
    double ls;
    int64_t cnt;
    llmos_error_t err = {0};
    assert_int_equal(train64_net_forward(n, b, 1, &ls, &cnt, &err), 0);
    return ls * (double)scale;
}

/* Central differences on a sample of each trainable tensor's elements
 * (always including the element with the largest analytic gradient). */
static void gradcheck(train_net_opts_t o) {
    model_config_t cfg = tiny_cfg();
    train_net64_t *n = NULL;
    llmos_error_t err = {0};
    assert_int_equal(train64_net_new(&cfg, &o, &n, &err), 0);
    randomize64(n);
    train_batch_t b = tiny_batch();
    double ls;
    int64_t cnt;
    assert_int_equal(train64_net_forward(n, &b, 1, &ls, &cnt, &err), 0);
    assert_true(cnt > 0);
    float scale = 1.0f / (float)cnt;
    train64_net_zero_grad(n);
    train64_net_backward(n, scale);
    const train_layout_t *l = train64_net_layout(n);
    double *p = train64_net_params(n), *g = train64_net_grads(n);
    int checked = 0;
    uint64_t s = 7;
    for (int ti = 0; ti < l->n_tensors; ti++) {
        const train_tensor_t *t = &l->t[ti];
        size_t cnt_t = (size_t)t->rows * t->cols;
        int trainable = t->off >= l->train_off;
        size_t imax = 0;
        double gmax = 0;
        for (size_t k = 0; k < cnt_t; k++)
            if (fabs(g[t->off + k]) > gmax) gmax = fabs(g[t->off + k]), imax = k;
        if (!trainable || (o.task == TRAIN_TASK_CLS && ti == l->classifier && !cfg.shared_classifier)) {
            assert_true(gmax == 0); /* frozen or unused tensors get no gradient */
            continue;
        }
        assert_true(gmax > 0);
        for (int rep = 0; rep < 6; rep++) {
            size_t k = rep == 0 ? imax : (size_t)(train_rng_next(&s) % cnt_t);
            double *x = &p[t->off + k], x0 = *x, h = 1e-5;
            *x = x0 + h;
            double lp = loss64(n, &b, scale);
            *x = x0 - h;
            double lm = loss64(n, &b, scale);
            *x = x0;
            double fd = (lp - lm) / (2 * h), an = g[t->off + k];
            double tol = 1e-3 * fabs(fd) + 1e-3 * 1e-3 * gmax;
            if (fabs(fd - an) > tol)
                fail_msg("%s[%zu]: analytic %.9g vs finite difference %.9g", t->name, k, an, fd);
            checked++;
        }
    }
    assert_true(checked > 0);
    train64_net_destroy(&n);
}

static void test_grad_lm_full(void **st) {
    (void)st;
    gradcheck(opts_for(TRAIN_TASK_LM, TRAIN_MODE_PRETRAIN, TRAIN_POOL_MEAN, 0));
}
static void test_grad_cls_mean_dropout(void **st) {
    (void)st;
    gradcheck(opts_for(TRAIN_TASK_CLS, TRAIN_MODE_FULL, TRAIN_POOL_MEAN, 0.3f));
}
static void test_grad_cls_last_lora(void **st) {
    (void)st;
    gradcheck(opts_for(TRAIN_TASK_CLS, TRAIN_MODE_LORA, TRAIN_POOL_LAST, 0.1f));
}
static void test_grad_lm_lora(void **st) {
    (void)st;
    gradcheck(opts_for(TRAIN_TASK_LM, TRAIN_MODE_LORA, TRAIN_POOL_MEAN, 0));
}
static void test_grad_head_only(void **st) {
    (void)st;
    gradcheck(opts_for(TRAIN_TASK_CLS, TRAIN_MODE_HEAD, TRAIN_POOL_MEAN, 0.2f));
}
static void test_grad_cls_label_smoothing(void **st) {
    (void)st;
    train_net_opts_t o = opts_for(TRAIN_TASK_CLS, TRAIN_MODE_FULL, TRAIN_POOL_MEAN, 0.3f);
    o.label_smoothing = 0.2f;
    gradcheck(o);
    o = opts_for(TRAIN_TASK_CLS, TRAIN_MODE_LORA, TRAIN_POOL_LAST, 0);
    o.label_smoothing = 0.5f;
    gradcheck(o);
}

/* The smoothed loss is (1-e)·CE(label) + e·mean over classes of -log p,
 * from the probabilities the same forward reports; e = 0 is plain CE. */
static void test_label_smoothing_loss(void **st) {
    (void)st;
    model_config_t cfg = tiny_cfg();
    for (int k = 0; k < 2; k++) {
        train_net_opts_t o = opts_for(TRAIN_TASK_CLS, TRAIN_MODE_FULL, TRAIN_POOL_MEAN, 0);
        o.label_smoothing = k ? 0.3f : 0;
        train_net64_t *n = NULL;
        llmos_error_t err = {0};
        assert_int_equal(train64_net_new(&cfg, &o, &n, &err), 0);
        randomize64(n);
        train_batch_t b = tiny_batch();
        double ls, want = 0;
        int64_t cnt;
        assert_int_equal(train64_net_forward(n, &b, 0, &ls, &cnt, &err), 0);
        for (int i = 0; i < TB; i++) {
            const double *p = train64_net_class_probs(n, i);
            double mean = 0;
            for (int j = 0; j < 4; j++) mean -= log(p[j]) / 4;
            want += (1 - o.label_smoothing) * -log(p[labels[i]]) + o.label_smoothing * mean;
        }
        assert_true(fabs(ls - want) <= 1e-9 * fabs(want));
        train64_net_destroy(&n);
    }
}

/* The fp32 net (BLIS sgemm, float math) against the fp64 one: per tensor,
 * |g32 - g64| / |g64| (L2 norms) <= 1e-3. */
static void f32_vs_f64(train_net_opts_t o) {
    model_config_t cfg = tiny_cfg();
    o.threads = 2; /* the parallel loops must not change the result */
    train_net64_t *n64 = NULL;
    train_net_t *n32 = NULL;
    llmos_error_t err = {0};
    assert_int_equal(train64_net_new(&cfg, &o, &n64, &err), 0);
    assert_int_equal(train_net_new(&cfg, &o, &n32, &err), 0);
    randomize64(n64);
    const train_layout_t *l = train64_net_layout(n64);
    double *p64 = train64_net_params(n64);
    float *p32 = train_net_params(n32);
    for (size_t i = 0; i < l->n_params; i++) p64[i] = p32[i] = (float)p64[i];
    train_batch_t b = tiny_batch();
    double l32, l64;
    int64_t c32, c64;
    assert_int_equal(train64_net_forward(n64, &b, 1, &l64, &c64, &err), 0);
    assert_int_equal(train_net_forward(n32, &b, 1, &l32, &c32, &err), 0);
    assert_int_equal(c32, c64);
    assert_true(fabs(l32 - l64) <= 1e-5 * fabs(l64));
    train64_net_zero_grad(n64);
    train_net_zero_grad(n32);
    train64_net_backward(n64, 1.0f / (float)c64);
    train_net_backward(n32, 1.0f / (float)c32);
    const double *g64 = train64_net_grads(n64);
    const float *g32 = train_net_grads(n32);
    for (int ti = 0; ti < l->n_tensors; ti++) {
        const train_tensor_t *t = &l->t[ti];
        double d = 0, r = 0;
        for (size_t k = 0; k < (size_t)t->rows * t->cols; k++) {
            d += (g32[t->off + k] - g64[t->off + k]) * (g32[t->off + k] - g64[t->off + k]);
            r += g64[t->off + k] * g64[t->off + k];
        }
        if (r == 0) {
            assert_true(d == 0);
            continue;
        }
        if (sqrt(d / r) > 1e-3) fail_msg("%s: fp32 vs fp64 relative error %g", t->name, sqrt(d / r));
    }
    train64_net_destroy(&n64);
    train_net_destroy(&n32);
}

static void test_f32_vs_f64(void **st) {
    (void)st;
    f32_vs_f64(opts_for(TRAIN_TASK_LM, TRAIN_MODE_PRETRAIN, TRAIN_POOL_MEAN, 0));
    f32_vs_f64(opts_for(TRAIN_TASK_CLS, TRAIN_MODE_FULL, TRAIN_POOL_MEAN, 0.3f));
    f32_vs_f64(opts_for(TRAIN_TASK_CLS, TRAIN_MODE_LORA, TRAIN_POOL_LAST, 0));
}

static char *model_path(const char *name) {
    static char buf[4][1024];
    static int k;
    const char *dir = getenv("LLMOS_MODELS");
    char *b = buf[k++ % 4];
    snprintf(b, 1024, "%s/%s", dir ? dir : LLMOS_SOURCE_DIR "/../shared/models", name);
    return b;
}

/* Next-token probabilities of the training forward equal the inference
 * engine's softmax(logits) on stories260K for every row. */
static void compare_with_engine(train_net_t *n, model_t *m, const int *toks, int T) {
    llmos_error_t err = {0};
    model_ctx_opts_t co = {.threads = 1, .max_seqs = 1, .max_tokens = T, .all_logits = 1};
    model_ctx_t *ctx = NULL;
    assert_int_equal(model_ctx_new(m, &co, &ctx, &err), 0);
    int seq;
    assert_int_equal(model_seq_open(ctx, &seq, &err), 0);
    model_batch_entry_t e = {.seq = seq, .tokens = toks, .n_tokens = T};
    assert_int_equal(model_ctx_forward(ctx, &e, 1, &err), 0);
    int V = model_config(m)->vocab_size;
    double worst = 0;
    for (int t = 0; t < T; t++) {
        const float *lg = model_ctx_logits(ctx, t), *pr = train_net_token_probs(n, 0, t);
        assert_non_null(pr);
        float mx = lg[0];
        for (int j = 1; j < V; j++) mx = lg[j] > mx ? lg[j] : mx;
        double s = 0;
        for (int j = 0; j < V; j++) s += exp((double)lg[j] - mx);
        for (int j = 0; j < V; j++) {
            double ref = exp((double)lg[j] - mx) / s, d = fabs(ref - pr[j]);
            if (d > worst) worst = d;
        }
    }
    model_ctx_destroy(&ctx);
    if (worst > 1e-4) fail_msg("training forward vs engine: max probability difference %g", worst);
}

static void test_forward_matches_engine(void **st) {
    (void)st;
    llmos_error_t err = {0};
    model_t *m = NULL;
    model_load_opts_t lo = {.tokenizer_path = model_path("tok512.bin")};
    assert_int_equal(model_load(model_path("stories260K.bin"), &lo, &m, &err), 0);
    const char *text = "Once upon a time, a little girl named Lily found a big red ball in the park.";
    int T = 0, toks[128];
    assert_int_equal(model_tokenize(model_tokenizer(m), text, strlen(text), 1, 0, toks, 128, &T, &err), 0);
    if (T > 40) T = 40;
    assert_true(T >= 10);
    train_net_opts_t o = {.task = TRAIN_TASK_LM, .mode = TRAIN_MODE_PRETRAIN, .batch = 2, .seq = T, .threads = 2};
    train_net_t *n = NULL;
    assert_int_equal(train_net_new(model_config(m), &o, &n, &err), 0);
    assert_int_equal(train_net_load_model(n, m, &err), 0);
    int bt[80], bl[2] = {T, 5};
    memcpy(bt, toks, sizeof(int) * T);
    memcpy(bt + T, toks, sizeof(int) * T);
    train_batch_t b = {.B = 2, .T = T, .tokens = bt, .lens = bl};
    double ls;
    int64_t cnt;
    assert_int_equal(train_net_forward(n, &b, 0, &ls, &cnt, &err), 0);
    assert_int_equal(cnt, T - 1 + 4);
    compare_with_engine(n, m, toks, T);
    train_net_destroy(&n);
    model_destroy(&m);
}

/* LoRA applied at run time vs merged into the weights: the same logits,
 * through the training forward and through the inference engine. */
static void test_lora_merge(void **st) {
    (void)st;
    llmos_error_t err = {0};
    model_t *m = NULL;
    model_load_opts_t lo = {.tokenizer_path = model_path("tok512.bin")};
    assert_int_equal(model_load(model_path("stories260K.bin"), &lo, &m, &err), 0);
    const model_config_t *cfg = model_config(m);
    int T = 24, toks[24];
    for (int i = 0; i < T; i++) toks[i] = (i * 37 + 11) % cfg->vocab_size;
    train_net_opts_t o = {.task = TRAIN_TASK_LM, .mode = TRAIN_MODE_LORA, .lora_rank = 4, .lora_alpha = 8,
                          .batch = 1, .seq = T, .threads = 1};
    train_net_t *n = NULL;
    assert_int_equal(train_net_new(cfg, &o, &n, &err), 0);
    assert_int_equal(train_net_load_model(n, m, &err), 0);
    train_net_init_random(n, 5, 0.02f, 1u << TRAIN_GROUP_LORA);
    const train_layout_t *l = train_net_layout(n);
    float *p = train_net_params(n);
    uint64_t s = 3;
    for (int i = 0; i < l->n_tensors; i++)
        if (l->t[i].group == TRAIN_GROUP_LORA && l->t[i].name[strlen(l->t[i].name) - 1] == 'B')
            for (size_t k = 0; k < (size_t)l->t[i].rows * l->t[i].cols; k++)
                p[l->t[i].off + k] = (float)(0.05 * train_rng_normal(&s));
    int lens1[1] = {T};
    train_batch_t b = {.B = 1, .T = T, .tokens = toks, .lens = lens1};
    double ls_lora, ls_merged;
    int64_t cnt;
    assert_int_equal(train_net_forward(n, &b, 0, &ls_lora, &cnt, &err), 0);

    model_t *merged = NULL;
    assert_int_equal(model_new(cfg, &merged, &err), 0);
    assert_int_equal(train_net_store_model(n, merged, &err), 0);
    /* The adapters change the output noticeably, or this test proves nothing. */
    train_net_t *base = NULL;
    train_net_opts_t ob = o;
    ob.mode = TRAIN_MODE_FULL;
    assert_int_equal(train_net_new(cfg, &ob, &base, &err), 0);
    assert_int_equal(train_net_load_model(base, m, &err), 0);
    double ls_base;
    assert_int_equal(train_net_forward(base, &b, 0, &ls_base, &cnt, &err), 0);
    assert_true(fabs(ls_base - ls_lora) > 1e-2 * fabs(ls_base));
    assert_int_equal(train_net_load_model(base, merged, &err), 0);
    assert_int_equal(train_net_forward(base, &b, 0, &ls_merged, &cnt, &err), 0);
    assert_true(fabs(ls_merged - ls_lora) <= 1e-5 * fabs(ls_lora));
    double worst = 0;
    for (int t = 0; t < T; t++) {
        const float *a = train_net_token_probs(n, 0, t), *c = train_net_token_probs(base, 0, t);
        for (int j = 0; j < cfg->vocab_size; j++) worst = fmax(worst, fabs((double)a[j] - c[j]));
    }
    if (worst > 1e-5) fail_msg("LoRA merged vs run time: max probability difference %g", worst);
    compare_with_engine(n, merged, toks, T);
    train_net_destroy(&base);
    train_net_destroy(&n);
    model_destroy(&merged);
    model_destroy(&m);
}

static void test_adamw_and_schedule(void **st) {
    (void)st;
    model_config_t cfg = tiny_cfg();
    train_net_opts_t o = opts_for(TRAIN_TASK_CLS, TRAIN_MODE_HEAD, TRAIN_POOL_MEAN, 0);
    train_layout_t lay;
    llmos_error_t err = {0};
    assert_int_equal(train_layout_init(&lay, &cfg, &o, &err), 0);
    assert_int_equal(lay.train_off, lay.group_off[TRAIN_GROUP_HEAD]);
    float *p = calloc(lay.n_params, sizeof(float)), *g = calloc(lay.n_params, sizeof(float));
    int hw = lay.head_w, hb = lay.head_b;
    p[lay.t[hw].off] = 2.0f;
    g[lay.t[hw].off] = 0.5f;
    p[lay.t[hb].off] = 2.0f;
    g[lay.t[hb].off] = -0.25f;
    p[0] = 5.0f; /* frozen body: never touched */
    g[0] = 1.0f;
    train_adamw_t a;
    train_adamw_opts_t ao = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f};
    assert_int_equal(train_adamw_init(&a, &lay, &ao, &err), 0);
    train_adamw_step(&a, &lay, p, g, 0.1f);
    /* Step 1: m̂ = g, v̂ = g², so the update is lr·(sign(g) + wd·θ) (decay on matrices only). */
    assert_float_equal(p[lay.t[hw].off], 2.0f - 0.1f * (1.0f + 0.1f * 2.0f), 1e-6);
    assert_float_equal(p[lay.t[hb].off], 2.0f + 0.1f, 1e-6);
    assert_float_equal(p[0], 5.0f, 0);
    train_adamw_step(&a, &lay, p, g, 0.1f);
    assert_int_equal(a.t, 2);
    train_adamw_deinit(&a);
    /* Clipping by global norm. */
    float v[4] = {3, 4, 0, 0};
    assert_float_equal(train_grad_clip(v, 0, 4, 1.0), 5.0, 1e-9);
    assert_float_equal(sqrt(v[0] * v[0] + v[1] * v[1]), 1.0, 1e-5);
    /* Warm-up then cosine. */
    assert_float_equal(train_lr_at(0, 10, 110, 1.0f, 0.0f), 0.1f, 1e-7);
    assert_float_equal(train_lr_at(9, 10, 110, 1.0f, 0.0f), 1.0f, 1e-7);
    assert_float_equal(train_lr_at(60, 10, 110, 1.0f, 0.0f), 0.5f, 1e-6);
    assert_float_equal(train_lr_at(110, 10, 110, 1.0f, 0.1f), 0.1f, 1e-6);
    free(p);
    free(g);
    train_layout_deinit(&lay);
}

static void test_bad_input(void **st) {
    (void)st;
    model_config_t cfg = tiny_cfg();
    train_net_opts_t o = opts_for(TRAIN_TASK_CLS, TRAIN_MODE_FULL, TRAIN_POOL_MEAN, 0);
    train_net_t *n = NULL;
    llmos_error_t err = {0};
    assert_int_equal(train_net_new(&cfg, &o, &n, &err), 0);
    train_batch_t b = tiny_batch();
    double ls;
    int64_t cnt;
    int bad_lab[TB] = {0, 9, 1};
    b.labels = bad_lab;
    assert_int_equal(train_net_forward(n, &b, 1, &ls, &cnt, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "label"));
    b = tiny_batch();
    int bad_len[TB] = {6, 0, 1};
    b.lens = bad_len;
    assert_int_equal(train_net_forward(n, &b, 1, &ls, &cnt, &err), LLMOS_EINVAL);
    b = tiny_batch();
    b.T = TT + 1;
    assert_int_equal(train_net_forward(n, &b, 1, &ls, &cnt, &err), LLMOS_EINVAL);
    train_net_destroy(&n);
    train_net_opts_t bad = o;
    bad.mode = TRAIN_MODE_PRETRAIN;
    assert_int_equal(train_net_new(&cfg, &bad, &n, &err), LLMOS_EINVAL);
    bad = o;
    bad.dropout = 1.0f;
    assert_int_equal(train_net_new(&cfg, &bad, &n, &err), LLMOS_EINVAL);
    bad = o;
    bad.label_smoothing = -0.1f;
    assert_int_equal(train_net_new(&cfg, &bad, &n, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "label smoothing"));
    assert_null(n);
}

/* Gradient accumulation: one batch of 3 equals micro-batches of 2 + 1 (each
 * scaled by 1/total, dropout keyed by the global position `first`). */
static void test_accumulation(void **st) {
    (void)st;
    model_config_t cfg = tiny_cfg();
    train_net_opts_t o = opts_for(TRAIN_TASK_CLS, TRAIN_MODE_FULL, TRAIN_POOL_MEAN, 0.3f);
    train_net64_t *n = NULL;
    llmos_error_t err = {0};
    assert_int_equal(train64_net_new(&cfg, &o, &n, &err), 0);
    randomize64(n);
    const train_layout_t *l = train64_net_layout(n);
    train_batch_t whole = tiny_batch();
    double ls, ls1, ls2;
    int64_t c;
    train64_net_zero_grad(n);
    assert_int_equal(train64_net_forward(n, &whole, 1, &ls, &c, &err), 0);
    train64_net_backward(n, 1.0f / 3);
    double *ref = malloc(sizeof(double) * l->n_params);
    memcpy(ref, train64_net_grads(n), sizeof(double) * l->n_params);
    train64_net_zero_grad(n);
    train_batch_t a = whole, b = whole;
    a.B = 2;
    b.B = 1;
    b.tokens = tokens + 2 * TT;
    b.lens = lens + 2;
    b.labels = labels + 2;
    b.first = whole.first + 2;
    assert_int_equal(train64_net_forward(n, &a, 1, &ls1, &c, &err), 0);
    train64_net_backward(n, 1.0f / 3);
    assert_int_equal(train64_net_forward(n, &b, 1, &ls2, &c, &err), 0);
    train64_net_backward(n, 1.0f / 3);
    assert_true(fabs(ls1 + ls2 - ls) <= 1e-12 * fabs(ls));
    const double *g = train64_net_grads(n);
    for (size_t i = 0; i < l->n_params; i++)
        if (fabs(g[i] - ref[i]) > 1e-12 + 1e-9 * fabs(ref[i])) fail_msg("gradient %zu: %g vs %g", i, g[i], ref[i]);
    free(ref);
    train64_net_destroy(&n);
}

static char *data_path(const char *name) {
    static char buf[4][1024];
    static int k;
    const char *dir = getenv("LLMOS_DATA");
    char *b = buf[k++ % 4];
    snprintf(b, 1024, "%s/%s", dir ? dir : LLMOS_SOURCE_DIR "/../shared/data", name);
    return b;
}

static void test_banking77_csv(void **st) {
    (void)st;
    llmos_error_t err = {0};
    train_labels_t lf = {0}, ld = {0};
    assert_int_equal(train_labels_load(&lf, data_path("banking77/categories.json"), &err), 0);
    assert_int_equal(lf.n, 77);
    train_dataset_t tr, te;
    assert_int_equal(train_dataset_load(&tr, data_path("banking77/train.csv"), "text", "category", &lf, &err), 0);
    assert_int_equal(tr.n, 10003);
    assert_int_equal(train_dataset_load(&te, data_path("banking77/test.csv"), "text", "category", &lf, &err), 0);
    assert_int_equal(te.n, 3080);
    /* Line 6 of train.csv is a quoted text with a comma. */
    assert_string_equal(tr.ex[4].text, "How do I know if I will get my card, or if it is lost?");
    assert_int_equal(tr.ex[4].line, 6);
    assert_string_equal(lf.name[tr.ex[4].label], "card_arrival");
    int multiline = 0, seen[77] = {0};
    for (int i = 0; i < tr.n; i++) {
        if (strchr(tr.ex[i].text, '\n')) multiline++;
        seen[tr.ex[i].label] = 1;
    }
    assert_true(multiline > 0); /* BANKING77 has texts with line breaks */
    for (int c = 0; c < 77; c++) assert_true(seen[c]);
    /* The label set from the data itself: the same 77 names, sorted. */
    train_dataset_t tr2;
    assert_int_equal(train_dataset_load(&tr2, data_path("banking77/train.csv"), "text", "category", &ld, &err), 0);
    assert_int_equal(ld.n, 77);
    for (int i = 1; i < ld.n; i++) assert_true(strcmp(ld.name[i - 1], ld.name[i]) < 0);
    train_dataset_deinit(&tr2);
    train_dataset_deinit(&tr);
    train_dataset_deinit(&te);
    train_labels_deinit(&lf);
    train_labels_deinit(&ld);
}

static const char *write_tmp(const char *name, const char *content) {
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "/tmp/llmos_train_test_%d_%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return p;
}

static void test_data_errors(void **st) {
    (void)st;
    llmos_error_t err = {0};
    train_labels_t lb = {0};
    train_dataset_t ds;
    const char *good = write_tmp("good.csv", "id,text,label\n1,\"hello, \"\"world\"\"\nsecond line\",a\n2,plain,b\n3,x,a\n");
    assert_int_equal(train_dataset_load(&ds, good, "text", "label", &lb, &err), 0);
    assert_int_equal(ds.n, 3);
    assert_string_equal(ds.ex[0].text, "hello, \"world\"\nsecond line");
    assert_int_equal(ds.ex[1].line, 4);
    assert_int_equal(lb.n, 2);
    train_dataset_deinit(&ds);
    /* Unknown label against a fixed set: file:line and the name. */
    const char *unk = write_tmp("unk.csv", "text,label\nfine,a\n\"multi\nline\",b\nbad one,zzz\n");
    assert_int_equal(train_dataset_load(&ds, unk, "text", "label", &lb, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "unk.csv:5: unknown label 'zzz'"));
    const char *empty = write_tmp("empty.csv", "text,label\nfine,a\n\"  \",b\n");
    assert_int_equal(train_dataset_load(&ds, empty, "text", "label", &lb, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "empty.csv:3: empty text"));
    const char *quote = write_tmp("quote.csv", "text,label\n\"never closed,a\n");
    assert_int_equal(train_dataset_load(&ds, quote, "text", "label", &lb, &err), LLMOS_EFORMAT);
    const char *nocol = write_tmp("nocol.csv", "txt,label\nx,a\n");
    assert_int_equal(train_dataset_load(&ds, nocol, "text", "label", &lb, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "no column 'text'"));
    const char *jl = write_tmp("d.jsonl", "{\"q\":\"first\",\"y\":\"a\"}\n\n{\"q\":\"second\",\"y\":\"b\"}\n{\"q\":\"\",\"y\":\"a\"}\n");
    assert_int_equal(train_dataset_load(&ds, jl, "q", "y", &lb, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "d.jsonl:4: empty text"));
    const char *jl2 = write_tmp("e.jsonl", "{\"q\":\"first\",\"y\":\"b\"}\nnot json\n");
    assert_int_equal(train_dataset_load(&ds, jl2, "q", "y", &lb, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "e.jsonl:2:"));
    const char *jl3 = write_tmp("f.jsonl", "{\"q\":\"first\",\"y\":\"b\"}\n{\"q\":\"again\",\"y\":\"a\"}\n");
    assert_int_equal(train_dataset_load(&ds, jl3, "q", "y", &lb, &err), 0);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.ex[0].label, 1);
    train_dataset_deinit(&ds);
    const char *txt = write_tmp("t.txt", "first line\n\n  \nsecond line\n");
    train_labels_t none = {0};
    assert_int_equal(train_dataset_load(&ds, txt, NULL, "label", &none, &err), 0);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.ex[1].line, 4);
    assert_int_equal(ds.ex[1].label, -1);
    train_dataset_deinit(&ds);
    const char *labs = write_tmp("labels.json", "[\"x\", \"x\"]");
    train_labels_t l2;
    assert_int_equal(train_labels_load(&l2, labs, &err), LLMOS_EFORMAT);
    train_labels_deinit(&lb);
    const char *files[] = {"good.csv", "unk.csv", "empty.csv", "quote.csv", "nocol.csv", "d.jsonl", "e.jsonl", "f.jsonl", "labels.json", "t.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "/tmp/llmos_train_test_%d_%s", (int)getpid(), files[i]);
        unlink(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_lm_full),       cmocka_unit_test(test_grad_cls_mean_dropout),
        cmocka_unit_test(test_grad_cls_last_lora), cmocka_unit_test(test_grad_lm_lora),
        cmocka_unit_test(test_grad_head_only),     cmocka_unit_test(test_grad_cls_label_smoothing),
        cmocka_unit_test(test_label_smoothing_loss), cmocka_unit_test(test_f32_vs_f64),
        cmocka_unit_test(test_forward_matches_engine), cmocka_unit_test(test_lora_merge),
        cmocka_unit_test(test_adamw_and_schedule), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_banking77_csv),      cmocka_unit_test(test_data_errors),
        cmocka_unit_test(test_accumulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
