/*
 * serve_cls.h — a fine-tuned classifier (model/train checkpoint) prepared
 * for serving (model/serve.h; llmosd --classifier DIR, LOAD's classifier).
 *
 * What a checkpoint changes and how a tensor-parallel group serves it:
 *   head only   the body is the base model: every rank loads its slices of
 *               the base file, as without a classifier;
 *   LoRA, full  every rank rebuilds the whole fine-tuned body on its own
 *               (base model + the checkpoint's tensors, LoRA merged into the
 *               weights: W += alpha/r · B·A — the same deterministic
 *               arithmetic on every rank), writes it as a private temporary
 *               llama2.c file, loads its slices of that file with the normal
 *               TP loader and deletes the file (the mapping stays valid).
 * So every rank's slices come from the same adapted weights.  The head
 * (C x dim weights + C biases), the label names, the pooling (mean / last
 * final-norm hidden state, as in training) and the token limit (the
 * training `seq`: longer texts are cut there, as llmos-eval does) stay in
 * the serve_cls_t; only the leader applies the head, to the pooled full
 * hidden rows every rank computes alike.
 *
 * Ownership: serve_cls_open's *out is the caller's (serve_cls_destroy).
 * Not thread-safe; one owner (the serving core that serves it).
 */
#ifndef LLMOS_MODEL_SERVE_CLS_H
#define LLMOS_MODEL_SERVE_CLS_H

#include "runtime/base/err.h"

#include <stdbool.h>

typedef struct serve_cls {
    char *dir;   /* the checkpoint folder */
    int version; /* the checkpoint version served (best, else latest) */
    int n_classes, dim;
    char **labels;    /* [n_classes] label names, in the checkpoint's order */
    float *w, *b;     /* head: [n_classes * dim] row-major, [n_classes] */
    bool pool_last;   /* last real token's hidden state; else the mean */
    int seq;          /* tokens per text (BOS included) the classifier saw */
    const char *mode; /* "head", "lora", "full" (static) */
    char *load_path;  /* the model file the shards load (base or temporary) */
    char *tokenizer;  /* its tokenizer.bin, or NULL (GGUF) */
    bool temp;        /* load_path is a temporary file to delete after loading */
} serve_cls_t;

/* Opens the checkpoint store DIR/ckpt.lmdb (its best version, else the
 * latest), checks it is a classifier, copies its head and labels and
 * prepares load_path (see above).  model / tokenizer (may be NULL) replace
 * the base model and tokenizer the checkpoint names.  Errors:
 * LLMOS_ENOTFOUND (no store, no version), LLMOS_EINVAL (not a classifier),
 * LLMOS_EFORMAT, LLMOS_EIO, those of model_load, LLMOS_ENOMEM. */
int serve_cls_open(const char *dir, const char *model, const char *tokenizer, serve_cls_t **out,
                   llmos_error_t *err);
/* Deletes the temporary file (if any) once the shards have loaded it. */
void serve_cls_drop_temp(serve_cls_t *c);
/* Frees everything (and deletes a temporary file still there); NULL-safe. */
void serve_cls_destroy(serve_cls_t **c);

/* The head on a pooled hidden state h (dim floats): class probabilities
 * (softmax, in double) into probs [n_classes]. */
void serve_cls_apply(const serve_cls_t *c, const float *h, double *probs);

#endif
