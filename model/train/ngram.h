/*
 * ngram.h — a bag-of-n-grams linear text classifier (TF-IDF features, a
 * liblinear model): the second model family of a BANKING77 ensemble, whose
 * errors differ from the transformer members'.
 *
 * Features (the same as scikit-learn's TfidfVectorizer with
 * sublinear_tf=True, one vectorizer per block, blocks concatenated):
 *   text     lowercased byte-wise (ASCII A-Z; other bytes kept as they are,
 *            so UTF-8 passes through; any input is accepted).
 *   words    runs of word bytes (ASCII letters, digits, '_', and every byte
 *            >= 0x80, i.e. the bytes of non-ASCII letters) of at least
 *            min_word_len bytes; word n-grams for n = word_lo..word_hi are
 *            the tokens joined by one space.
 *   chars    "char_wb": every whitespace-separated piece, padded with one
 *            space on each side, gives its n-grams for n = char_lo..char_hi
 *            (a piece shorter than n gives itself once, like scikit-learn).
 *   values   per block: (1 + ln tf) · idf, idf = ln((1 + N) / (1 + df)) + 1
 *            over the N training texts, then the block scaled to unit L2
 *            norm.  The vocabulary is the training texts' n-grams with
 *            df >= min_df; unknown n-grams are ignored.
 * Model: liblinear, one weight per (feature, class) plus a bias per class.
 *   lr       L2-regularised logistic regression, one-vs-rest (a binary
 *            liblinear problem per class present, primal trust region
 *            Newton); probabilities as liblinear's: the classes' sigmoids
 *            normalised to sum 1.
 *   lr-dual  the same model by the dual coordinate-descent solver.
 *   svm      Crammer-Singer multi-class SVM; probabilities are a softmax of
 *            the decision values divided by `temperature`.
 * A class absent from the training data gets probability 0.  A text with
 * no known n-gram gets the bias-only probabilities.
 *
 * Checkpoints (ckpt.h's store, DIR/ckpt.lmdb, one write transaction):
 *   v00000001/meta    JSON: "task":"ngram", "mode":"ngram", the options,
 *                     "labels", "n_features", "n_word_features",
 *                     "train_acc", "val_metric" (validation accuracy or
 *                     absent), "train_s"
 *   v00000001/vocab   the n-grams, feature order, each NUL-terminated and
 *                     led by 'w' (word block) or 'c' (char block)
 *   v00000001/idf     float64[n_features]
 *   v00000001/w       float32[(n_features + 1) x n_classes], row f is
 *                     feature f's weights, the last row the biases
 *   latest, best      pointers, as for transformer checkpoints
 *
 * Thread-safety: a model is used by one thread at a time (prediction uses
 * the model's scratch buffers).  liblinear's print hook is process-wide:
 * train on one thread at a time.
 */
#ifndef LLMOS_MODEL_TRAIN_NGRAM_H
#define LLMOS_MODEL_TRAIN_NGRAM_H

#include "model/train/data.h"
#include "runtime/base/err.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ngram_solver {
    NGRAM_SOLVER_LR = 0,  /* liblinear L2R_LR */
    NGRAM_SOLVER_LR_DUAL, /* liblinear L2R_LR_DUAL */
    NGRAM_SOLVER_SVM,     /* liblinear MCSVM_CS, softmax(decision / T) */
} ngram_solver_t;

typedef struct ngram_opts {
    int word_lo, word_hi; /* word n-gram lengths; word_hi 0 = no word block (1, 2) */
    int char_lo, char_hi; /* char n-gram lengths; char_hi 0 = no char block (2, 5) */
    int min_word_len;     /* shorter word tokens are dropped (2, as scikit-learn) */
    int min_df;           /* n-grams in fewer training texts are dropped (1) */
    double C;             /* liblinear's cost: larger = less regularised */
    ngram_solver_t solver;
    double eps;         /* liblinear stopping tolerance, 0 = the solver's default */
    double temperature; /* svm only: softmax temperature */
} ngram_opts_t;

/* The defaults chosen on BANKING77's validation split (docs/train.md). */
void ngram_opts_default(ngram_opts_t *o);
/* "lr", "lr-dual", "svm"; -1 for any other name. */
int ngram_solver_parse(const char *name);
const char *ngram_solver_name(ngram_solver_t s);

typedef struct ngram_model ngram_model_t;

/* Builds the vocabulary and idf from examples idx[0..n) of ds (all of ds
 * when idx is NULL) and trains the classifier over labels (copied; ds's
 * class ids index it).  LLMOS_EINVAL (bad options, fewer than 2 classes
 * present, no n-gram at all), LLMOS_ENOMEM.  Caller owns *out
 * (ngram_model_destroy). */
int ngram_model_train(const ngram_opts_t *o, const train_dataset_t *ds, const int *idx, int n,
                      const train_labels_t *labels, ngram_model_t **out, llmos_error_t *err);
void ngram_model_destroy(ngram_model_t **m);

/* Class probabilities of n texts (NUL-terminated, any bytes): probs gets
 * n x n_classes floats (caller provides), each row summing to 1.  Grows
 * the model's scratch only for a text longer than any before.
 * LLMOS_ENOMEM. */
int ngram_predict(ngram_model_t *m, const char *const *texts, int n, float *probs, llmos_error_t *err);

/* The TF-IDF vector of one text: up to cap (index, value) pairs, indices
 * ascending; returns their count (> cap: the arrays were too small) or a
 * negative llmos_err.  For tests and feature studies. */
int ngram_features(ngram_model_t *m, const char *text, int *index, double *value, int cap,
                   llmos_error_t *err);
/* Feature f's n-gram (borrowed, valid while m lives) and its block
 * (*is_char 0 word, 1 char); NULL when f is out of range. */
const char *ngram_feature_name(const ngram_model_t *m, int f, int *is_char);
int ngram_model_n_features(const ngram_model_t *m);
/* The label set (borrowed, valid while m lives). */
const train_labels_t *ngram_model_labels(const ngram_model_t *m);
const ngram_opts_t *ngram_model_opts(const ngram_model_t *m);

/* Writes m as a new version of DIR/ckpt.lmdb (created when missing),
 * pointed at by latest and best; train_acc/val_acc go into the meta
 * (val_acc < 0: none).  *version (may be NULL) gets its number. */
int ngram_model_save(const ngram_model_t *m, const char *dir, double train_acc, double val_acc,
                     double train_s, int *version, llmos_error_t *err);
/* Loads version best (which = 1, falling back to latest) or latest
 * (which = 0).  LLMOS_ENOTFOUND (no store, no version), LLMOS_EFORMAT (not
 * an n-gram checkpoint, or records of the wrong size).  Caller owns *out;
 * *version (may be NULL) gets the version read. */
int ngram_model_load(const char *dir, int which, ngram_model_t **out, int *version, llmos_error_t *err);
/* *is_ngram = 1 when that version's meta says "task":"ngram".  Errors as
 * for ngram_model_load. */
int ngram_ckpt_probe(const char *dir, int which, int *is_ngram, llmos_error_t *err);

/* llmos-train --mode ngram: load, split (train_split, the same split as the
 * transformer modes), train, report, save. */
typedef struct ngram_run_opts {
    const char *train_path, *val_path; /* val_path NULL: split from train */
    const char *text_col, *label_col;
    const char *labels_path;  /* JSON array, or NULL: from the data */
    const char *out_dir;      /* checkpoints (ckpt.lmdb) */
    const char *metrics_path; /* JSONL, or NULL for OUT/metrics.jsonl */
    float val_frac;           /* 0: train on the whole file */
    uint64_t split_seed;
    int quiet;
    ngram_opts_t model;
} ngram_run_opts_t;

typedef struct ngram_run_result {
    int n_train, n_val, n_features, version;
    double train_s;   /* features + liblinear, seconds */
    double train_acc; /* on the training examples */
    double val_acc;   /* -1 without a validation set */
} ngram_run_result_t;

int ngram_run(const ngram_run_opts_t *o, ngram_run_result_t *res, llmos_error_t *err);

#endif
