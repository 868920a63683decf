/*
 * trainer.h — the training loop behind llmos-train and the checkpoint
 * loader behind llmos-eval.
 *
 * train_run: loads the base model, tokenizes the data, holds out a
 * validation split of the training file (seeded), and runs steps of a
 * global batch of `batch` examples: each rank takes its contiguous share,
 * in micro-batches of at most `micro` (gradient accumulation), scaled by
 * 1/(targets in the global batch); the optional all-reduce callback sums
 * gradients and losses across ranks; then clipping, AdamW at the
 * warm-up + cosine learning rate.  The data order (a seeded permutation per
 * epoch) and dropout masks depend only on the seed, the step and the
 * position in the global batch, so a resumed run or a run on more ranks
 * sees the same batches.  Checkpoints (ckpt.h) every save_every steps, at
 * every validation improvement ("best") and at the end; early stopping
 * after `patience` validations without improvement.  Rank 0 draws the
 * progress line and writes the metrics JSONL.
 */
#ifndef LLMOS_MODEL_TRAIN_TRAINER_H
#define LLMOS_MODEL_TRAIN_TRAINER_H

#include "model/train/ckpt.h"
#include "model/train/data.h"
#include "model/train/train.h"

typedef struct train_run_opts {
    const char *model_path;     /* llama2.c .bin or GGUF; NULL with init_dims */
    const char *tokenizer_path; /* llama2.c tokenizer.bin (NULL for GGUF) */
    const char *train_path, *val_path; /* val_path NULL: split from train */
    const char *text_col, *label_col;  /* label_col NULL for pretraining */
    const char *labels_path;           /* JSON array, or NULL: from the data */
    const char *out_dir;               /* checkpoints (ckpt.lmdb) */
    const char *metrics_path;          /* JSONL, or NULL for OUT/metrics.jsonl */
    train_mode_t mode;
    train_pool_t pool;
    float dropout;
    float label_smoothing; /* classification: 0 = plain cross-entropy */
    int lora_rank;
    float lora_alpha;
    int batch, micro, seq;
    /* Length bucketing: > 1 groups the examples of each window of `bucket`
     * global batches by length (sorted, cut into batches, the batches in a
     * seeded order), so batches carry little padding.  1 = off. */
    int bucket;
    int64_t steps; /* 0: epochs * ceil(n_train / batch) */
    int epochs;
    float lr, min_lr, weight_decay, clip, beta1, beta2;
    int64_t warmup;
    uint64_t seed, split_seed;
    float val_frac;
    int eval_every, patience, save_every, keep;
    int threads;
    int resume;
    int quiet;
    /* Data parallelism: rank/world and a sum over ranks (in place) of n
     * floats (dbl = 0) or doubles (dbl = 1); NULL when world == 1. */
    int rank, world;
    int (*allreduce)(void *buf, size_t n, int dbl, void *ctx);
    void *allreduce_ctx;
} train_run_opts_t;

/* Fills the defaults (batch 16, micro 16, seq 64, lr 1e-3, ...). */
void train_run_opts_default(train_run_opts_t *o);

/* What a finished run reports. */
typedef struct train_run_result {
    int64_t steps;       /* steps taken in total (including before a resume) */
    double last_loss;    /* mean loss of the last step */
    double best_metric;  /* best validation accuracy (cls) or -loss (lm) */
    int stopped_early;
} train_run_result_t;

int train_run(const train_run_opts_t *o, train_run_result_t *res, llmos_error_t *err);

/* A trained classifier or LM rebuilt from a checkpoint store: the base
 * model named in the meta record (or model_path when not NULL), the stored
 * tensors, the labels.  which: 0 latest, 1 best (falls back to latest).
 * Caller owns everything (train_loaded_deinit). */
typedef struct train_loaded {
    model_t *model;
    train_net_t *net;
    train_labels_t labels;
    char *meta;
    int version;
    int seq;
} train_loaded_t;

int train_loaded_open(train_loaded_t *ld, const char *dir, int which, const char *model_path,
                      const char *tokenizer_path, int batch, int threads, llmos_error_t *err);
void train_loaded_deinit(train_loaded_t *ld);

/* Class probabilities of every example of tk (n x n_classes, caller
 * provides out), in batches of the net's size. */
int train_predict(train_net_t *n, const train_tokens_t *tk, float *out, llmos_error_t *err);

/* The validation split of an n-example training file: perm (caller
 * provides n ints) becomes the seeded permutation whose first returned
 * count entries are the held-out examples (val_frac · n, at most n - 1) and
 * the rest the training examples.  train_run and llmos-eval --val-frac use
 * it, so both see the same split. */
int train_split(int n, float val_frac, uint64_t split_seed, int *perm);

/* name itself when it exists, else what llmos_path_find finds in the
 * models folder (models = 1) or the data folder, else name (so the error
 * that follows names it).  Returns name or buf (n bytes). */
const char *train_path_resolve(const char *name, int models, char *buf, size_t n);

#endif
