/*
 * layout.c — the parameter table of a trainable net: where every tensor
 * lives in the one contiguous buffer, which group it belongs to (body, LoRA,
 * head) and whether weight decay applies.  Also the seeded generator that
 * initialisation, dropout and shuffling draw from.
 *
 * The order is fixed ([body | LoRA | head], layers in order, llama2.c's
 * tensor order inside a layer) so a checkpoint written by one build reads in
 * another; names make it self-describing.
 */
#include "model/train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t train_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double train_rng_uniform(uint64_t *s) { return (double)(train_rng_next(s) >> 11) * 0x1.0p-53; }

double train_rng_normal(uint64_t *s) {
    double u1 = train_rng_uniform(s), u2 = train_rng_uniform(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static const char *layer_names[9] = {"attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"};
static const char *proj_names[TRAIN_N_PROJ] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
/* Layer-tensor index of each projection. */
static const int proj_tensor[TRAIN_N_PROJ] = {1, 2, 3, 4, 6, 7, 8};

static int add(train_layout_t *l, const char *name, int rows, int cols, train_group_t g, int decay) {
    train_tensor_t *t = &l->t[l->n_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->off = l->n_params;
    t->rows = rows;
    t->cols = cols;
    t->group = g;
    t->decay = decay;
    /* Every tensor starts on a 16-float (64-byte) boundary. */
    l->n_params += ((size_t)rows * (size_t)cols + 15) & ~(size_t)15;
    return l->n_tensors++;
}

int train_layout_init(train_layout_t *l, const model_config_t *cfg_in, const train_net_opts_t *o,
                      llmos_error_t *err) {
    memset(l, 0, sizeof *l);
    model_config_t cfg = *cfg_in;
    int rc = model_config_check(&cfg, err);
    if (rc) return rc;
    if (o->task != TRAIN_TASK_LM && o->task != TRAIN_TASK_CLS)
        return llmos_error_set(err, LLMOS_EINVAL, "train: task %d is not lm or cls", (int)o->task);
    if (o->mode < TRAIN_MODE_HEAD || o->mode > TRAIN_MODE_PRETRAIN)
        return llmos_error_set(err, LLMOS_EINVAL, "train: mode %d is not head|lora|full|pretrain", (int)o->mode);
    if (o->task == TRAIN_TASK_CLS) {
        if (o->n_classes < 2 || o->n_classes > 1000000)
            return llmos_error_set(err, LLMOS_EINVAL, "train: n_classes %d must be 2..1000000", o->n_classes);
        if (o->pool != TRAIN_POOL_MEAN && o->pool != TRAIN_POOL_LAST)
            return llmos_error_set(err, LLMOS_EINVAL, "train: pool %d is not mean or last", (int)o->pool);
        if (o->mode == TRAIN_MODE_PRETRAIN)
            return llmos_error_set(err, LLMOS_EINVAL, "train: mode pretrain needs the lm task");
    } else if (o->mode == TRAIN_MODE_HEAD) {
        return llmos_error_set(err, LLMOS_EINVAL, "train: mode head needs the cls task");
    }
    if (!(o->dropout >= 0 && o->dropout < 1))
        return llmos_error_set(err, LLMOS_EINVAL, "train: dropout %g is not in [0,1)", o->dropout);
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return llmos_error_set(err, LLMOS_EINVAL, "train: label smoothing %g is not in [0,1)", o->label_smoothing);
    if (o->mode == TRAIN_MODE_LORA && (o->lora_rank < 1 || o->lora_rank > cfg.dim || !(o->lora_alpha > 0)))
        return llmos_error_set(err, LLMOS_EINVAL, "train: LoRA needs rank 1..%d and alpha > 0 (got %d, %g)",
                               cfg.dim, o->lora_rank, o->lora_alpha);
    if (o->batch < 1 || o->seq < 1 || o->seq > cfg.seq_len || (int64_t)o->batch * o->seq > (1 << 22))
        return llmos_error_set(err, LLMOS_EINVAL, "train: batch %d x seq %d is out of range (seq_len %d)",
                               o->batch, o->seq, cfg.seq_len);
    l->cfg = cfg;
    l->opts = *o;
    int L = cfg.n_layers, D = cfg.dim, KV = cfg.n_kv_heads * cfg.head_dim, H = cfg.hidden_dim,
        V = cfg.vocab_size, r = o->lora_rank;
    int lora = o->mode == TRAIN_MODE_LORA;
    l->t = calloc((size_t)(L * (9 + 2 * TRAIN_N_PROJ) + 8), sizeof *l->t);
    l->layer = malloc(sizeof(int) * (size_t)L * 9);
    l->lora = malloc(sizeof(int) * (size_t)L * TRAIN_N_PROJ * 2);
    if (!l->t || !l->layer || !l->lora) {
        train_layout_deinit(l);
        return llmos_error_set(err, LLMOS_ENOMEM, "train: no memory for the layout");
    }
    char nm[TRAIN_NAME_MAX];
    l->tok_embd = add(l, "tok_embd", V, D, TRAIN_GROUP_BODY, 1);
    for (int i = 0; i < L; i++) {
        int shapes[9][2] = {{1, D}, {D, D}, {KV, D}, {KV, D}, {D, D}, {1, D}, {H, D}, {D, H}, {H, D}};
        for (int k = 0; k < 9; k++) {
            snprintf(nm, sizeof nm, "layers.%d.%s", i, layer_names[k]);
            l->layer[i * 9 + k] = add(l, nm, shapes[k][0], shapes[k][1], TRAIN_GROUP_BODY, shapes[k][0] > 1);
        }
    }
    l->final_norm = add(l, "final_norm", 1, D, TRAIN_GROUP_BODY, 0);
    /* The classification task never reads a separate LM classifier: no
     * decay for it, so AdamW leaves it exactly as loaded. */
    l->classifier = cfg.shared_classifier ? l->tok_embd
                                          : add(l, "classifier", V, D, TRAIN_GROUP_BODY, o->task == TRAIN_TASK_LM);
    l->group_len[TRAIN_GROUP_BODY] = l->n_params;
    l->group_off[TRAIN_GROUP_LORA] = l->n_params;
    for (int i = 0; i < L * TRAIN_N_PROJ * 2; i++) l->lora[i] = -1;
    if (lora)
        for (int i = 0; i < L; i++)
            for (int p = 0; p < TRAIN_N_PROJ; p++) {
                const train_tensor_t *w = &l->t[l->layer[i * 9 + proj_tensor[p]]];
                snprintf(nm, sizeof nm, "lora.%d.%s.A", i, proj_names[p]);
                l->lora[(i * TRAIN_N_PROJ + p) * 2] = add(l, nm, r, w->cols, TRAIN_GROUP_LORA, 1);
                snprintf(nm, sizeof nm, "lora.%d.%s.B", i, proj_names[p]);
                l->lora[(i * TRAIN_N_PROJ + p) * 2 + 1] = add(l, nm, w->rows, r, TRAIN_GROUP_LORA, 1);
            }
    l->group_len[TRAIN_GROUP_LORA] = l->n_params - l->group_off[TRAIN_GROUP_LORA];
    l->group_off[TRAIN_GROUP_HEAD] = l->n_params;
    l->head_w = l->head_b = -1;
    if (o->task == TRAIN_TASK_CLS) {
        l->head_w = add(l, "head.w", o->n_classes, D, TRAIN_GROUP_HEAD, 1);
        l->head_b = add(l, "head.b", 1, o->n_classes, TRAIN_GROUP_HEAD, 0);
    }
    l->group_len[TRAIN_GROUP_HEAD] = l->n_params - l->group_off[TRAIN_GROUP_HEAD];
    switch (o->mode) {
    case TRAIN_MODE_HEAD: l->train_off = l->group_off[TRAIN_GROUP_HEAD]; break;
    case TRAIN_MODE_LORA: l->train_off = l->group_off[TRAIN_GROUP_LORA]; break;
    default: l->train_off = 0; break;
    }
    l->train_len = l->n_params - l->train_off;
    return 0;
}

void train_layout_deinit(train_layout_t *l) {
    free(l->t);
    free(l->layer);
    free(l->lora);
    l->t = NULL;
    l->layer = l->lora = NULL;
    l->n_tensors = 0;
}

int train_layout_find(const train_layout_t *l, const char *name) {
    for (int i = 0; i < l->n_tensors; i++)
        if (strcmp(l->t[i].name, name) == 0) return i;
    return -1;
}
