/*
 * trainer.c — the training loop (train_run), validation, checkpoint
 * meta records, and rebuilding a trained net from a checkpoint store.
 * See trainer.h for the contract.  Every buffer of the loop is allocated
 * before the first step.
 */
#include "model/train/trainer.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "runtime/base/paths.h"
#include "runtime/base/progress.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void train_run_opts_default(train_run_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->text_col = "text";
    o->mode = TRAIN_MODE_FULL;
    o->pool = TRAIN_POOL_MEAN;
    o->dropout = 0.1f;
    o->lora_rank = 8;
    o->lora_alpha = 16;
    o->batch = 16;
    o->micro = 16;
    o->seq = 64;
    o->bucket = 1;
    o->epochs = 1;
    o->lr = 1e-3f;
    o->min_lr = 0;
    o->weight_decay = 0.01f;
    o->clip = 1.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->warmup = 0;
    o->seed = 1;
    o->split_seed = 1;
    o->val_frac = 0.1f;
    o->eval_every = 100;
    o->patience = 0;
    o->save_every = 100;
    o->keep = 2;
    o->threads = 1;
    o->world = 1;
}

static const char *mode_name(train_mode_t m) {
    return m == TRAIN_MODE_HEAD ? "head" : m == TRAIN_MODE_LORA ? "lora" : m == TRAIN_MODE_FULL ? "full" : "pretrain";
}

static train_mode_t mode_parse(const char *s) {
    return !strcmp(s, "head") ? TRAIN_MODE_HEAD : !strcmp(s, "lora") ? TRAIN_MODE_LORA
           : !strcmp(s, "full") ? TRAIN_MODE_FULL : !strcmp(s, "pretrain") ? TRAIN_MODE_PRETRAIN : 0;
}

/* ---------------------------------------------------------------- data order */

typedef struct order {
    int n;
    uint64_t seed;
    int64_t epoch; /* epoch whose permutation is in perm, -1 none */
    int *perm;
} order_t;

static void order_perm(int *perm, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) perm[i] = i;
    uint64_t s = seed;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(train_rng_next(&s) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int train_split(int n, float val_frac, uint64_t split_seed, int *perm) {
    order_perm(perm, n, split_seed);
    int n_val = (int)(val_frac * (float)n);
    return n_val >= n ? n - 1 : n_val < 0 ? 0 : n_val;
}

/* Example at position k of the endless stream of epochs. */
static int order_at(order_t *o, int64_t k) {
    int64_t e = k / o->n;
    if (e != o->epoch) {
        order_perm(o->perm, o->n, o->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(e + 1)));
        o->epoch = e;
    }
    return o->perm[k % o->n];
}

/* Length buckets: window w holds global positions [w*W, (w+1)*W), W =
 * bucket * G.  Its examples (in epoch order) are sorted by length, ties by
 * position, cut into `bucket` batches of G, and those batches are put in an
 * order seeded by (seed, w).  A function of (seed, step) only, like the
 * epoch order, so resuming and data parallelism see the same batches. */
typedef struct bucketer {
    int bucket, G;
    int64_t window; /* whose batches are in win, -1 none */
    int *win;       /* [bucket * G] example indices */
    int *chunk;     /* [bucket] batch order */
    int64_t *key;   /* [bucket * G] (length << 32 | position) for sorting */
} bucketer_t;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Fills idx[0..G) with the examples of global batch `step`. */
static void batch_indices(order_t *o, bucketer_t *bk, const int *len, int64_t step, int G, int *idx) {
    if (bk->bucket <= 1) {
        for (int i = 0; i < G; i++) idx[i] = order_at(o, step * (int64_t)G + i);
        return;
    }
    int64_t w = step / bk->bucket, W = (int64_t)bk->bucket * G;
    if (w != bk->window) {
        for (int64_t j = 0; j < W; j++) {
            int ex = order_at(o, w * W + j);
            bk->win[j] = ex;
            bk->key[j] = (int64_t)len[ex] << 32 | j;
        }
        qsort(bk->key, (size_t)W, sizeof *bk->key, cmp_i64);
        order_perm(bk->chunk, bk->bucket, o->seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(w + 1)));
        /* key keeps the sorted positions; rebuild win through it */
        for (int64_t j = 0; j < W; j++) bk->key[j] = bk->win[bk->key[j] & 0xffffffff];
        for (int c = 0; c < bk->bucket; c++)
            for (int i = 0; i < G; i++) bk->win[(int64_t)c * G + i] = (int)bk->key[(int64_t)bk->chunk[c] * G + i];
        bk->window = w;
    }
    memcpy(idx, bk->win + (step % bk->bucket) * G, sizeof(int) * (size_t)G);
}

/* ---------------------------------------------------------------- batches */

typedef struct batcher {
    int B, T;
    int *tok, *len, *lab;
} batcher_t;

/* Fills a batch from examples idx[0..cnt) of tk, padded to their longest. */
static void batch_fill(batcher_t *bt, const train_tokens_t *tk, const int *idx, int cnt, train_batch_t *b) {
    int T = 1;
    for (int i = 0; i < cnt; i++) T = tk->len[idx[i]] > T ? tk->len[idx[i]] : T;
    for (int i = 0; i < cnt; i++) {
        const int *src = tk->ids + (size_t)idx[i] * tk->T;
        memcpy(bt->tok + (size_t)i * T, src, sizeof(int) * (size_t)T);
        bt->len[i] = tk->len[idx[i]] > 0 ? tk->len[idx[i]] : 1;
        bt->lab[i] = tk->label[idx[i]] < 0 ? 0 : tk->label[idx[i]];
    }
    memset(b, 0, sizeof *b);
    b->B = cnt;
    b->T = T;
    b->tokens = bt->tok;
    b->lens = bt->len;
    b->labels = bt->lab;
}

/* ---------------------------------------------------------------- meta */

static char *meta_build(const train_run_opts_t *o, const train_net_t *n, const train_labels_t *labels, int64_t step,
                        double best, int since_best, double last_loss, double val_metric) {
    const train_layout_t *l = train_net_layout(n);
    cJSON *m = cJSON_CreateObject();
    char s[32];
    cJSON_AddNumberToObject(m, "format", 1);
    /* Absolute paths: the checkpoint is evaluated and served from other
     * working directories (train_loaded_open also looks a missing file up
     * by name in the models folder). */
    char abs_model[PATH_MAX], abs_tok[PATH_MAX];
    cJSON_AddStringToObject(m, "model", realpath(o->model_path, abs_model) ? abs_model : o->model_path);
    if (o->tokenizer_path)
        cJSON_AddStringToObject(m, "tokenizer", realpath(o->tokenizer_path, abs_tok) ? abs_tok : o->tokenizer_path);
    cJSON_AddStringToObject(m, "task", l->opts.task == TRAIN_TASK_CLS ? "cls" : "lm");
    cJSON_AddStringToObject(m, "mode", mode_name(l->opts.mode));
    cJSON_AddNumberToObject(m, "n_classes", l->opts.n_classes);
    cJSON_AddStringToObject(m, "pool", l->opts.pool == TRAIN_POOL_LAST ? "last" : "mean");
    cJSON_AddNumberToObject(m, "dropout", l->opts.dropout);
    cJSON_AddNumberToObject(m, "label_smoothing", l->opts.label_smoothing);
    cJSON_AddNumberToObject(m, "lora_rank", l->opts.lora_rank);
    cJSON_AddNumberToObject(m, "lora_alpha", l->opts.lora_alpha);
    cJSON_AddNumberToObject(m, "seq", o->seq);
    cJSON_AddNumberToObject(m, "bucket", o->bucket);
    cJSON_AddNumberToObject(m, "step", (double)step);
    snprintf(s, sizeof s, "%" PRIu64, o->seed);
    cJSON_AddStringToObject(m, "seed", s);
    cJSON_AddNumberToObject(m, "examples_seen", (double)step * o->batch);
    cJSON_AddNumberToObject(m, "best_metric", best);
    cJSON_AddNumberToObject(m, "since_best", since_best);
    cJSON_AddNumberToObject(m, "train_loss", last_loss);
    if (!isnan(val_metric)) cJSON_AddNumberToObject(m, "val_metric", val_metric);
    cJSON_AddNumberToObject(m, "time", (double)llmos_wall_ms() / 1e3);
    if (labels && labels->n) {
        cJSON *a = cJSON_AddArrayToObject(m, "labels");
        for (int i = 0; i < labels->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(labels->name[i]));
    }
    char *out = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return out;
}

static double jnum(const cJSON *m, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *jstr(const cJSON *m, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---------------------------------------------------------------- validation */

typedef struct val_result {
    double loss, count, correct, n;
} val_result_t;

static int validate(train_net_t *net, const train_tokens_t *val, batcher_t *bt, int micro, const train_run_opts_t *o,
                    val_result_t *vr, llmos_error_t *err) {
    memset(vr, 0, sizeof *vr);
    int cls = train_net_layout(net)->opts.task == TRAIN_TASK_CLS;
    int C = train_net_layout(net)->opts.n_classes;
    /* Each rank takes a contiguous share; the sums are all-reduced. */
    int lo = (int)((int64_t)val->n * o->rank / o->world), hi = (int)((int64_t)val->n * (o->rank + 1) / o->world);
    int idx[4096];
    for (int i = lo; i < hi; i += micro) {
        int cnt = hi - i < micro ? hi - i : micro;
        for (int k = 0; k < cnt; k++) idx[k] = i + k;
        train_batch_t b;
        batch_fill(bt, val, idx, cnt, &b);
        double ls;
        int64_t c;
        int rc = train_net_forward(net, &b, 0, &ls, &c, err);
        if (rc) return rc;
        vr->loss += ls;
        vr->count += (double)c;
        if (cls)
            for (int k = 0; k < cnt; k++) {
                const float *p = train_net_class_probs(net, k);
                int best = 0;
                for (int j = 1; j < C; j++) best = p[j] > p[best] ? j : best;
                vr->correct += best == b.labels[k];
                vr->n += 1;
            }
    }
    if (o->world > 1 && o->allreduce) {
        double s[4] = {vr->loss, vr->count, vr->correct, vr->n};
        int rc = o->allreduce(s, 4, 1, o->allreduce_ctx);
        if (rc) return llmos_error_set(err, rc, "all-reduce of validation sums failed");
        vr->loss = s[0], vr->count = s[1], vr->correct = s[2], vr->n = s[3];
    }
    return 0;
}

/* ---------------------------------------------------------------- run */

int train_run(const train_run_opts_t *o, train_run_result_t *res, llmos_error_t *err) {
    memset(res, 0, sizeof *res);
    int rc = 0;
    if (!o->model_path || !o->train_path || !o->out_dir)
        return llmos_error_set(err, LLMOS_EINVAL, "train: need a model, a training file and an output folder");
    if (o->batch < 1 || o->micro < 1 || o->micro > 4096 || o->seq < 2 || o->bucket < 1 || o->bucket > 4096 ||
        o->world < 1 || o->rank < 0 || o->rank >= o->world || o->batch < o->world)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "train: batch %d (>= ranks %d), micro %d (1..4096), seq %d (>= 2), bucket %d (1..4096) out of range",
                               o->batch, o->world, o->micro, o->seq, o->bucket);
    int cls = o->mode != TRAIN_MODE_PRETRAIN;
    if (cls && !o->label_col)
        return llmos_error_set(err, LLMOS_EINVAL, "train: mode %s needs a label column", mode_name(o->mode));
    model_t *model = NULL;
    train_labels_t labels = {0};
    train_dataset_t all = {0}, vds = {0};
    train_tokens_t tk_all = {0}, tk_val = {0}, tr = {0}, va = {0};
    train_net_t *net = NULL;
    train_adamw_t adam = {0};
    train_ckpt_t *ck = NULL;
    batcher_t bt = {0};
    order_t ord = {0};
    bucketer_t bk = {.bucket = o->bucket, .G = o->batch, .window = -1};
    FILE *metrics = NULL;
    int *idx = NULL;
    char *meta = NULL;
    cJSON *rmeta = NULL;

    model_load_opts_t lo = {.tokenizer_path = o->tokenizer_path};
    rc = model_load(o->model_path, &lo, &model, err);
    if (!rc && o->labels_path && cls) rc = train_labels_load(&labels, o->labels_path, err);
    if (!rc) rc = train_dataset_load(&all, o->train_path, o->text_col, cls ? o->label_col : NULL, &labels, err);
    if (!rc && o->val_path) rc = train_dataset_load(&vds, o->val_path, o->text_col, cls ? o->label_col : NULL, &labels, err);
    if (!rc) rc = train_tokens_build(&tk_all, &all, model_tokenizer(model), o->seq, err);
    if (!rc && o->val_path) rc = train_tokens_build(&tk_val, &vds, model_tokenizer(model), o->seq, err);
    if (rc) goto done;

    /* Validation split from the training file (seeded), unless a file is given. */
    {
        int *perm = malloc(sizeof(int) * (size_t)all.n);
        int n_val = perm ? train_split(all.n, o->val_path ? 0 : o->val_frac, o->split_seed, perm) : 0;
        tr.T = va.T = o->seq;
        tr.n = all.n - n_val;
        va.n = o->val_path ? tk_val.n : n_val;
        tr.ids = malloc(sizeof(int) * (size_t)tr.n * o->seq);
        tr.len = malloc(sizeof(int) * (size_t)tr.n);
        tr.label = malloc(sizeof(int) * (size_t)tr.n);
        va.ids = malloc(sizeof(int) * ((size_t)va.n + 1) * o->seq);
        va.len = malloc(sizeof(int) * ((size_t)va.n + 1));
        va.label = malloc(sizeof(int) * ((size_t)va.n + 1));
        if (!perm || !tr.ids || !tr.len || !tr.label || !va.ids || !va.len || !va.label) {
            free(perm);
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the data split");
            goto done;
        }
        for (int i = 0; i < all.n; i++) {
            train_tokens_t *dst = i < n_val ? &va : &tr;
            int j = i < n_val ? i : i - n_val, s = perm[i];
            memcpy(dst->ids + (size_t)j * o->seq, tk_all.ids + (size_t)s * o->seq, sizeof(int) * (size_t)o->seq);
            dst->len[j] = tk_all.len[s];
            dst->label[j] = tk_all.label[s];
        }
        if (o->val_path) {
            memcpy(va.ids, tk_val.ids, sizeof(int) * (size_t)va.n * o->seq);
            memcpy(va.len, tk_val.len, sizeof(int) * (size_t)va.n);
            memcpy(va.label, tk_val.label, sizeof(int) * (size_t)va.n);
        }
        free(perm);
    }
    if (!cls)
        for (int i = 0; i < tr.n; i++)
            if (tr.len[i] < 2) tr.len[i] = 2, tr.ids[(size_t)i * o->seq + 1] = model_tokenizer_eos(model_tokenizer(model));

    train_net_opts_t no = {.task = cls ? TRAIN_TASK_CLS : TRAIN_TASK_LM, .mode = o->mode, .n_classes = labels.n,
                           .pool = o->pool, .dropout = o->dropout,
                           .label_smoothing = cls ? o->label_smoothing : 0, .lora_rank = o->lora_rank,
                           .lora_alpha = o->lora_alpha, .batch = o->micro, .seq = o->seq, .threads = o->threads};
    rc = train_net_new(model_config(model), &no, &net, err);
    if (!rc) rc = train_net_load_model(net, model, err);
    if (rc) goto done;
    train_net_init_random(net, o->seed, 0.02f, (1u << TRAIN_GROUP_LORA) | (1u << TRAIN_GROUP_HEAD));
    const train_layout_t *lay = train_net_layout(net);
    train_adamw_opts_t ao = {.lr = o->lr, .beta1 = o->beta1, .beta2 = o->beta2, .eps = 1e-8f,
                             .weight_decay = o->weight_decay};
    rc = train_adamw_init(&adam, lay, &ao, err);
    if (!rc) rc = train_ckpt_open(o->out_dir, o->rank == 0, &ck, err);
    if (rc && o->rank != 0 && !o->resume) rc = 0, llmos_error_clear(err); /* only rank 0 writes */
    if (rc) goto done;

    int64_t steps_per_epoch = (tr.n + o->batch - 1) / o->batch;
    int64_t total = o->steps > 0 ? o->steps : (int64_t)o->epochs * steps_per_epoch;
    int64_t step = 0;
    double best = -INFINITY;
    int since_best = 0;
    if (o->resume) {
        int ver;
        rc = ck ? train_ckpt_pointer(ck, 0, &ver, err) : LLMOS_ENOTFOUND;
        if (rc == LLMOS_ENOTFOUND) {
            rc = 0; /* nothing to resume: a fresh start */
            llmos_error_clear(err);
        } else if (!rc) {
            rc = train_ckpt_meta(ck, ver, &meta, err);
            if (!rc) rc = train_ckpt_load(ck, ver, net, &adam, err);
            if (rc) goto done;
            rmeta = cJSON_Parse(meta);
            const char *mm = rmeta ? jstr(rmeta, "mode") : NULL;
            if (!mm || mode_parse(mm) != o->mode) {
                rc = llmos_error_set(err, LLMOS_EINVAL, "resume: checkpoint %s has mode %s, this run %s", o->out_dir,
                                     mm ? mm : "?", mode_name(o->mode));
                goto done;
            }
            step = (int64_t)jnum(rmeta, "step", 0);
            best = jnum(rmeta, "best_metric", -INFINITY);
            since_best = (int)jnum(rmeta, "since_best", 0);
            adam.t = step;
            if (o->rank == 0 && !o->quiet) LLMOS_INFO("train: resuming from %s version %d at step %" PRId64, o->out_dir, ver, step);
        }
        if (rc) goto done;
    }
    if (o->rank == 0) {
        char mp[1200];
        snprintf(mp, sizeof mp, "%s/metrics.jsonl", o->out_dir);
        metrics = fopen(o->metrics_path ? o->metrics_path : mp, o->resume ? "a" : "w");
        if (!metrics) {
            rc = llmos_error_set(err, llmos_err_from_errno(errno), "cannot write %s: %s", o->metrics_path ? o->metrics_path : mp,
                                 strerror(errno));
            goto done;
        }
    }
    bt.tok = malloc(sizeof(int) * (size_t)o->micro * o->seq);
    bt.len = malloc(sizeof(int) * (size_t)o->micro);
    bt.lab = malloc(sizeof(int) * (size_t)o->micro);
    idx = malloc(sizeof(int) * (size_t)o->batch);
    ord.n = tr.n;
    ord.seed = o->seed;
    ord.epoch = -1;
    ord.perm = malloc(sizeof(int) * (size_t)tr.n);
    if (o->bucket > 1) {
        bk.win = malloc(sizeof(int) * (size_t)o->bucket * o->batch);
        bk.chunk = malloc(sizeof(int) * (size_t)o->bucket);
        bk.key = malloc(sizeof(int64_t) * (size_t)o->bucket * o->batch);
    }
    if (!bt.tok || !bt.len || !bt.lab || !idx || !ord.perm || (o->bucket > 1 && (!bk.win || !bk.chunk || !bk.key))) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for batches");
        goto done;
    }
    if (o->rank == 0 && !o->quiet)
        LLMOS_INFO("train: %s, %d train / %d validation examples, %zu trainable parameters, %" PRId64
                   " steps of %d (micro %d, %d rank%s)",
                   mode_name(o->mode), tr.n, va.n, lay->train_len, total, o->batch, o->micro, o->world,
                   o->world > 1 ? "s" : "");

    llmos_progress_t prog;
    llmos_progress_init(&prog, "train", "tok", 0);
    uint64_t t0 = llmos_now_ns(), tokens_done = 0;
    int64_t start_step = step;
    double last_loss = NAN, val_metric = NAN;
    float *g = train_net_grads(net), *p = train_net_params(net);
    while (step < total) {
        float lr = train_lr_at(step, o->warmup, total, o->lr, o->min_lr);
        train_net_zero_grad(net);
        int G = o->batch;
        double count = 0;
        int64_t tok_step = 0;
        batch_indices(&ord, &bk, tr.len, step, G, idx);
        for (int i = 0; i < G; i++) {
            count += cls ? 1 : tr.len[idx[i]] - 1;
            tok_step += tr.len[idx[i]];
        }
        float scale = (float)(1.0 / count);
        int lo_i = (int)((int64_t)G * o->rank / o->world), hi_i = (int)((int64_t)G * (o->rank + 1) / o->world);
        double loss[1] = {0};
        for (int i = lo_i; i < hi_i; i += o->micro) {
            int cnt = hi_i - i < o->micro ? hi_i - i : o->micro;
            train_batch_t b;
            batch_fill(&bt, &tr, idx + i, cnt, &b);
            b.drop_seed = o->seed * 0x2545f4914f6cdd1dull ^ (uint64_t)(step + 1) * 0x9e3779b97f4a7c15ull;
            b.first = i;
            double ls;
            int64_t c;
            rc = train_net_forward(net, &b, 1, &ls, &c, err);
            if (rc) goto done;
            train_net_backward(net, scale);
            loss[0] += ls;
        }
        if (o->world > 1 && o->allreduce) {
            rc = o->allreduce(g + lay->train_off, lay->train_len, 0, o->allreduce_ctx);
            if (!rc) rc = o->allreduce(loss, 1, 1, o->allreduce_ctx);
            if (rc) {
                rc = llmos_error_set(err, rc, "gradient all-reduce failed at step %" PRId64, step);
                goto done;
            }
        }
        double gnorm = train_grad_clip(g, lay->train_off, lay->train_len, o->clip);
        train_adamw_step(&adam, lay, p, g, lr);
        step++;
        last_loss = loss[0] / count;
        if (!isfinite(last_loss)) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "train: loss is %g at step %" PRId64 " (learning rate too high?)",
                                 last_loss, step);
            goto done;
        }
        tokens_done += (uint64_t)tok_step;
        double el = (double)(llmos_now_ns() - t0) / 1e9, tps = el > 0 ? (double)tokens_done / el : 0;
        if (o->rank == 0) {
            fprintf(metrics, "{\"step\":%" PRId64 ",\"loss\":%.9g,\"lr\":%.6g,\"grad_norm\":%.6g,\"tok_s\":%.1f,\"time_s\":%.3f}\n",
                    step, last_loss, lr, gnorm, tps, el);
            fflush(metrics);
            if (!o->quiet) {
                snprintf(prog.label, sizeof prog.label, "train step %" PRId64 "/%" PRId64 " loss %.4f", step, total,
                         last_loss);
                prog.total = (uint64_t)((double)tokens_done / (double)(step - start_step) * (double)(total - start_step));
                llmos_progress_update(&prog, tokens_done, 0);
            }
        }
        int is_last = step == total, stop = 0, improved = 0;
        if (va.n > 0 && o->eval_every > 0 && (step % o->eval_every == 0 || is_last)) {
            val_result_t vr;
            rc = validate(net, &va, &bt, o->micro, o, &vr, err);
            if (rc) goto done;
            double vloss = vr.count > 0 ? vr.loss / vr.count : NAN, acc = vr.n > 0 ? vr.correct / vr.n : NAN;
            val_metric = cls ? acc : -vloss;
            improved = val_metric > best;
            if (improved) best = val_metric, since_best = 0;
            else since_best++;
            if (o->patience > 0 && since_best >= o->patience) stop = 1;
            if (o->rank == 0) {
                fprintf(metrics, "{\"step\":%" PRId64 ",\"val_loss\":%.9g%s%.6g,\"best\":%s}\n", step, vloss,
                        cls ? ",\"val_acc\":" : ",\"val_ppl\":", cls ? acc : exp(vloss), improved ? "true" : "false");
                fflush(metrics);
            }
        }
        if (o->rank == 0 && (improved || is_last || stop || (o->save_every > 0 && step % o->save_every == 0))) {
            free(meta);
            meta = meta_build(o, net, &labels, step, best, since_best, last_loss, val_metric);
            int ver;
            rc = meta ? train_ckpt_save(ck, meta, net, &adam, improved, o->keep, &ver, err)
                      : llmos_error_set(err, LLMOS_ENOMEM, "no memory for the checkpoint meta");
            if (rc) goto done;
        }
        if (stop) {
            res->stopped_early = 1;
            if (o->rank == 0 && !o->quiet)
                LLMOS_INFO("train: early stop at step %" PRId64 ": no validation improvement in %d evaluations", step,
                           o->patience);
            break;
        }
    }
    if (o->rank == 0 && !o->quiet) {
        char extra[160];
        snprintf(extra, sizeof extra, "%" PRId64 " steps, last loss %.4f, best validation %.4f", step, last_loss, best);
        llmos_progress_finish(&prog, extra);
    }
    res->steps = step;
    res->last_loss = last_loss;
    res->best_metric = best;
done:
    if (metrics) fclose(metrics);
    cJSON_Delete(rmeta);
    free(meta);
    free(idx);
    free(ord.perm);
    free(bk.win);
    free(bk.chunk);
    free(bk.key);
    free(bt.tok);
    free(bt.len);
    free(bt.lab);
    train_ckpt_close(&ck);
    train_adamw_deinit(&adam);
    train_net_destroy(&net);
    train_tokens_deinit(&tr);
    train_tokens_deinit(&va);
    train_tokens_deinit(&tk_all);
    train_tokens_deinit(&tk_val);
    train_dataset_deinit(&all);
    train_dataset_deinit(&vds);
    train_labels_deinit(&labels);
    model_destroy(&model);
    return rc;
}

/* ---------------------------------------------------------------- loading */

/* A model or tokenizer path from a checkpoint's meta: as stored when it
 * exists, else its file name in the models folder ($LLMOS_MODELS) when
 * there (a checkpoint moved to another machine, or one that stored a path
 * relative to another working directory), else as stored (the load error
 * names it). */
static const char *stored_path(const char *p, char *buf, size_t n) {
    if (!p || access(p, F_OK) == 0) return p;
    const char *base = strrchr(p, '/');
    const char *r = train_path_resolve(base ? base + 1 : p, 1, buf, n);
    return r == buf ? r : p;
}

int train_loaded_open(train_loaded_t *ld, const char *dir, int which, const char *model_path, const char *tokenizer_path,
                      int batch, int threads, llmos_error_t *err) {
    memset(ld, 0, sizeof *ld);
    train_ckpt_t *ck = NULL;
    cJSON *m = NULL;
    int rc = train_ckpt_open(dir, 0, &ck, err);
    if (!rc) {
        rc = train_ckpt_pointer(ck, which, &ld->version, err);
        if (rc == LLMOS_ENOTFOUND && which == 1) rc = train_ckpt_pointer(ck, 0, &ld->version, err);
    }
    if (!rc) rc = train_ckpt_meta(ck, ld->version, &ld->meta, err);
    if (!rc && !(m = cJSON_Parse(ld->meta)))
        rc = llmos_error_set(err, LLMOS_EFORMAT, "%s/ckpt.lmdb version %d: meta is not JSON", dir, ld->version);
    if (!rc) {
        char b1[PATH_MAX], b2[PATH_MAX];
        const char *mp = model_path ? model_path : stored_path(jstr(m, "model"), b1, sizeof b1);
        const char *tp = tokenizer_path ? tokenizer_path : stored_path(jstr(m, "tokenizer"), b2, sizeof b2);
        if (!mp) rc = llmos_error_set(err, LLMOS_EFORMAT, "%s: meta names no model", dir);
        model_load_opts_t lo = {.tokenizer_path = tp};
        if (!rc) rc = model_load(mp, &lo, &ld->model, err);
    }
    if (!rc) {
        const char *task = jstr(m, "task"), *mode = jstr(m, "mode"), *pool = jstr(m, "pool");
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(m, "labels");
        if (lab) {
            char *s = cJSON_PrintUnformatted(lab);
            rc = s ? train_labels_from_json(&ld->labels, s, strlen(s), err) : LLMOS_ENOMEM;
            free(s);
        }
        ld->seq = (int)jnum(m, "seq", 64);
        train_net_opts_t no = {.task = task && !strcmp(task, "cls") ? TRAIN_TASK_CLS : TRAIN_TASK_LM,
                               .mode = mode ? mode_parse(mode) : 0, .n_classes = (int)jnum(m, "n_classes", 0),
                               .pool = pool && !strcmp(pool, "last") ? TRAIN_POOL_LAST : TRAIN_POOL_MEAN,
                               .dropout = (float)jnum(m, "dropout", 0),
                               .label_smoothing = (float)jnum(m, "label_smoothing", 0),
                               .lora_rank = (int)jnum(m, "lora_rank", 0),
                               .lora_alpha = (float)jnum(m, "lora_alpha", 0), .batch = batch, .seq = ld->seq,
                               .threads = threads};
        if (!rc) rc = train_net_new(model_config(ld->model), &no, &ld->net, err);
        if (!rc) rc = train_net_load_model(ld->net, ld->model, err);
        if (!rc) rc = train_ckpt_load(ck, ld->version, ld->net, NULL, err);
    }
    cJSON_Delete(m);
    train_ckpt_close(&ck);
    if (rc) train_loaded_deinit(ld);
    return rc;
}

void train_loaded_deinit(train_loaded_t *ld) {
    train_net_destroy(&ld->net);
    model_destroy(&ld->model);
    train_labels_deinit(&ld->labels);
    free(ld->meta);
    memset(ld, 0, sizeof *ld);
}

int train_predict(train_net_t *n, const train_tokens_t *tk, float *out, llmos_error_t *err) {
    const train_layout_t *l = train_net_layout(n);
    int B = l->opts.batch, C = l->opts.n_classes;
    if (l->opts.task != TRAIN_TASK_CLS) return llmos_error_set(err, LLMOS_EINVAL, "predict: the net is not a classifier");
    batcher_t bt = {.tok = malloc(sizeof(int) * (size_t)B * tk->T), .len = malloc(sizeof(int) * (size_t)B),
                    .lab = malloc(sizeof(int) * (size_t)B)};
    int *idx = malloc(sizeof(int) * (size_t)B), rc = 0;
    if (!bt.tok || !bt.len || !bt.lab || !idx) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    for (int i = 0; !rc && i < tk->n; i += B) {
        int cnt = tk->n - i < B ? tk->n - i : B;
        for (int k = 0; k < cnt; k++) idx[k] = i + k;
        train_batch_t b;
        batch_fill(&bt, tk, idx, cnt, &b);
        for (int k = 0; k < cnt; k++) bt.lab[k] = 0; /* labels play no part in prediction */
        double ls;
        int64_t c;
        rc = train_net_forward(n, &b, 0, &ls, &c, err);
        for (int k = 0; !rc && k < cnt; k++) memcpy(out + (size_t)(i + k) * C, train_net_class_probs(n, k), sizeof(float) * (size_t)C);
    }
    free(bt.tok);
    free(bt.len);
    free(bt.lab);
    free(idx);
    return rc;
}

const char *train_path_resolve(const char *name, int models, char *buf, size_t n) {
    if (!name || access(name, F_OK) == 0) return name;
    return llmos_path_find(name, models ? LLMOS_PATH_MODELS : LLMOS_PATH_DATA, buf, n, NULL) == 0 ? buf
                                                                                                  : name;
}
