/*
 * train.h — training for the Llama family: a parameter layout over one
 * contiguous fp32 buffer, a forward pass that keeps its activations, the
 * backward pass, AdamW with clipping and a warm-up + cosine schedule.
 *
 * Objects and lifecycles
 *   train_layout_t  the table of trainable tensors (name, offset, shape,
 *                   group, decay) of one model configuration plus the task's
 *                   extras (LoRA adapters, classification head).  Plain data,
 *                   filled by train_layout_init, no heap.
 *   train_net_t     parameters + gradients (same layout, one buffer each)
 *                   and every activation and scratch buffer for batches of
 *                   up to B sequences x T tokens, all sized once at
 *                   train_net_new.  Forward/backward allocate nothing.
 *   train_adamw_t   AdamW moments over the trainable range of a net.
 *
 * Buffer order: [body | LoRA | head].  The trainable part of every mode is
 * one contiguous range of it: head only = head, LoRA = LoRA + head, full =
 * body + head, pre-training = body.  Optimiser, clipping, checkpoints and the
 * gradient all-reduce work on that range.
 *
 * Batches are right-padded: sequence b holds lens[b] >= 1 real tokens at
 * positions 0..lens[b]-1 and anything (a valid id) after.  Attention is
 * causal, so real tokens never see padding; padded rows get no loss and no
 * gradient.
 *
 * Thread-safety: a train_net_t is used by one thread at a time; inside a
 * call it runs `threads` OpenMP workers and tells BLIS the same count
 * through its own rntm_t.
 */
#ifndef LLMOS_MODEL_TRAIN_TRAIN_H
#define LLMOS_MODEL_TRAIN_TRAIN_H

#include "model/model.h"
#include "runtime/base/err.h"

#include <stddef.h>
#include <stdint.h>

typedef enum train_task {
    TRAIN_TASK_LM = 1,  /* next-token cross-entropy over the vocabulary */
    TRAIN_TASK_CLS = 2, /* pooled hidden state -> dropout -> linear -> CE */
} train_task_t;

typedef enum train_pool {
    TRAIN_POOL_MEAN = 1, /* mean of the final-norm hidden states of real tokens */
    TRAIN_POOL_LAST = 2, /* the final-norm hidden state of the last real token */
} train_pool_t;

typedef enum train_mode {
    TRAIN_MODE_HEAD = 1,     /* classification head only, body frozen */
    TRAIN_MODE_LORA = 2,     /* LoRA adapters (+ head), body frozen */
    TRAIN_MODE_FULL = 3,     /* every body weight (+ head) */
    TRAIN_MODE_PRETRAIN = 4, /* every body weight, LM task */
} train_mode_t;

typedef enum train_group { TRAIN_GROUP_BODY = 0, TRAIN_GROUP_LORA = 1, TRAIN_GROUP_HEAD = 2 } train_group_t;

/* Projections that carry LoRA adapters, in layout order. */
enum { TRAIN_PROJ_Q, TRAIN_PROJ_K, TRAIN_PROJ_V, TRAIN_PROJ_O, TRAIN_PROJ_W1, TRAIN_PROJ_W2,
       TRAIN_PROJ_W3, TRAIN_N_PROJ };

typedef struct train_net_opts {
    train_task_t task;
    train_mode_t mode;
    int n_classes;     /* TRAIN_TASK_CLS: head outputs */
    train_pool_t pool; /* TRAIN_TASK_CLS */
    float dropout;     /* on the pooled vector, [0,1) */
    float label_smoothing; /* TRAIN_TASK_CLS, [0,1): the target is (1-e)·one-hot + e/C
                              (the loss is cross-entropy against it); 0 = off */
    int lora_rank;     /* TRAIN_MODE_LORA: r >= 1 */
    float lora_alpha;  /* adapter scale is alpha / r */
    int batch;         /* B: sequences per forward */
    int seq;           /* T: tokens per sequence (<= cfg.seq_len) */
    int threads;       /* 0 = 1 */
} train_net_opts_t;

#define TRAIN_NAME_MAX 32
#define TRAIN_MAX_TENSORS 4096

typedef struct train_tensor {
    char name[TRAIN_NAME_MAX]; /* "layers.3.wq", "lora.3.wq.A", "head.w" */
    size_t off;                /* float offset into the buffer */
    int rows, cols;            /* 1-D tensors: rows = 1 */
    train_group_t group;
    int decay; /* 1: AdamW weight decay applies (matrices), 0: norms, biases */
} train_tensor_t;

typedef struct train_layout {
    model_config_t cfg;
    train_net_opts_t opts;
    int n_tensors;
    train_tensor_t *t; /* [n_tensors], owned by the layout (train_layout_deinit) */
    size_t n_params;   /* whole buffer */
    size_t group_off[3], group_len[3];
    size_t train_off, train_len; /* the trainable range of opts.mode */
    /* Indices into t[] for the forward pass. */
    int tok_embd, final_norm, classifier, head_w, head_b;
    int *layer; /* [n_layers * 9]: attn_norm wq wk wv wo ffn_norm w1 w2 w3 */
    int *lora;  /* [n_layers * TRAIN_N_PROJ * 2]: A, B; -1 without LoRA */
} train_layout_t;

/* Builds the table for cfg (checked with model_config_check) and opts.
 * LLMOS_EINVAL naming the bad option.  Free with train_layout_deinit. */
int train_layout_init(train_layout_t *lay, const model_config_t *cfg, const train_net_opts_t *opts,
                      llmos_error_t *err);
void train_layout_deinit(train_layout_t *lay);
/* Index of the tensor called name, or -1. */
int train_layout_find(const train_layout_t *lay, const char *name);

/* One batch; every pointer is borrowed for the call. */
typedef struct train_batch {
    int B, T;           /* B <= opts.batch, T <= opts.seq */
    const int *tokens;  /* [B*T] token ids (padding: any valid id) */
    const int *lens;    /* [B] real tokens per sequence, 1..T */
    const int *labels;  /* [B] classes (TRAIN_TASK_CLS) */
    uint64_t drop_seed; /* dropout key; the mask of sequence b depends only on
                           (drop_seed, first + b), so it is the same whatever
                           the split of a batch across ranks or resumes */
    int64_t first;      /* global index of sequence 0 */
} train_batch_t;

typedef struct train_net train_net_t;

/* Allocates the net for cfg and opts (parameters zeroed).  Caller owns *out. */
int train_net_new(const model_config_t *cfg, const train_net_opts_t *opts, train_net_t **out,
                  llmos_error_t *err);
void train_net_destroy(train_net_t **n);

/* Borrowed until train_net_destroy. */
const train_layout_t *train_net_layout(const train_net_t *n);
float *train_net_params(train_net_t *n);
float *train_net_grads(train_net_t *n);

/* Random initialisation: matrices N(0, std) (output projections std /
 * sqrt(2 L)), norms 1, biases 0, LoRA A N(0, 1/sqrt(in)) and B = 0, head
 * N(0, 1/sqrt(dim)).  groups: bitmask of 1 << TRAIN_GROUP_*. */
void train_net_init_random(train_net_t *n, uint64_t seed, float std, unsigned groups);

/* Copies the body weights of m (fp32 tensors only; shape must match) into
 * the buffer.  LLMOS_EINVAL / LLMOS_EUNSUPPORTED (quantized) otherwise. */
int train_net_load_model(train_net_t *n, const model_t *m, llmos_error_t *err);
/* Writes the body (with the LoRA adapters merged: W += alpha/r · B·A) into
 * the fp32 model m of the same shape. */
int train_net_store_model(const train_net_t *n, model_t *m, llmos_error_t *err);

/* Forward pass with activations kept for backward.  train = 1 applies
 * dropout.  *loss_sum = sum of the per-target losses, *count = number of
 * targets (LM: real next tokens; CLS: sequences).  LLMOS_EINVAL for a bad
 * batch (token, length or label out of range). */
int train_net_forward(train_net_t *n, const train_batch_t *b, int train, double *loss_sum,
                      int64_t *count, llmos_error_t *err);
/* Adds d(scale · loss_sum)/dθ of the last forward to the gradient buffer
 * for the trainable range (scale = 1 / global target count). */
void train_net_backward(train_net_t *n, float scale);
void train_net_zero_grad(train_net_t *n);

/* After a forward: class probabilities [n_classes] of sequence b (CLS), or
 * next-token probabilities of row (b, t) (LM).  Borrowed until the next
 * forward. */
const float *train_net_class_probs(const train_net_t *n, int b);
const float *train_net_token_probs(const train_net_t *n, int b, int t);
/* After a forward: final-norm hidden state of row (b, t) [dim]. */
const float *train_net_hidden(const train_net_t *n, int b, int t);

/* ---------------------------------------------------------------- optimiser */

typedef struct train_adamw_opts {
    float lr, beta1, beta2, eps, weight_decay;
} train_adamw_opts_t;

typedef struct train_adamw {
    train_adamw_opts_t o;
    size_t off, len; /* range of the buffer it updates */
    float *m, *v;    /* [len] moments (owned) */
    int64_t t;       /* steps taken */
} train_adamw_t;

/* Moments for the trainable range of lay, zeroed.  Free with _deinit. */
int train_adamw_init(train_adamw_t *a, const train_layout_t *lay, const train_adamw_opts_t *o,
                     llmos_error_t *err);
void train_adamw_deinit(train_adamw_t *a);
/* One decoupled-weight-decay Adam step with learning rate lr:
 *   θ -= lr·(m̂/(√v̂+eps) + wd·θ)  (wd only where the tensor's decay flag is set). */
void train_adamw_step(train_adamw_t *a, const train_layout_t *lay, float *params, const float *grads,
                      float lr);

/* Global L2 norm of grads[off, off+len). */
double train_grad_norm(const float *grads, size_t off, size_t len);
/* Scales the range so its norm is at most max_norm (max_norm <= 0: off);
 * returns the norm before clipping. */
double train_grad_clip(float *grads, size_t off, size_t len, double max_norm);

/* Linear warm-up over `warmup` steps to lr, then cosine decay to min_lr at
 * `total` steps (step counts from 0). */
float train_lr_at(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr);

/* splitmix64: the seeded generator used for initialisation and shuffling. */
uint64_t train_rng_next(uint64_t *state);
/* Uniform in [0,1) and standard normal from the generator. */
double train_rng_uniform(uint64_t *state);
double train_rng_normal(uint64_t *state);

#endif
