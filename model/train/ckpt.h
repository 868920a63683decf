/*
 * ckpt.h — training checkpoints in LMDB (DIR/ckpt.lmdb, one file plus its
 * lock file).
 *
 * A checkpoint is a version (1, 2, ...) holding: a JSON meta record (what
 * the trainer needs to rebuild the net and resume: model, task, mode,
 * labels, step, data position, seed, metrics), every tensor of the net's
 * trainable range (head; LoRA + head; or body + head) by name, and the AdamW
 * moments and step count.  Keys:
 *   v00000007/meta        JSON
 *   v00000007/t/<name>    float32[rows*cols] of tensor <name>
 *   v00000007/opt/m|v     float32[train_len]
 *   latest, best          the version number as decimal text
 * A save is one LMDB write transaction (it also drops versions beyond the
 * `keep` newest, except the best), so a crash at any moment leaves the
 * checkpoint either complete or absent.
 *
 * Thread-safety: one train_ckpt_t per thread; LMDB allows one writer per
 * file at a time across processes.
 */
#ifndef LLMOS_MODEL_TRAIN_CKPT_H
#define LLMOS_MODEL_TRAIN_CKPT_H

#include "model/train/train.h"
#include "runtime/base/err.h"

typedef struct train_ckpt train_ckpt_t;

/* Opens (write = 1: creates DIR and DIR/ckpt.lmdb when missing) the store.
 * LLMOS_ENOTFOUND (read-only and missing), LLMOS_EIO, LLMOS_EFORMAT (not an
 * LMDB file).  Caller owns *out. */
int train_ckpt_open(const char *dir, int write, train_ckpt_t **out, llmos_error_t *err);
void train_ckpt_close(train_ckpt_t **c);

/* Writes a new version: meta (JSON text), the tensors of n's trainable
 * range, the moments of a (may be NULL).  best = 1 also points "best" at
 * it.  keep >= 1: versions older than the keep newest are deleted (the best
 * one stays).  *version_out (may be NULL) gets the new number. */
int train_ckpt_save(train_ckpt_t *c, const char *meta_json, const train_net_t *n, const train_adamw_t *a, int best,
                    int keep, int *version_out, llmos_error_t *err);

/* A named record of a checkpoint version (key v%08d/<name>). */
typedef struct train_ckpt_blob {
    const char *name; /* borrowed; "meta" is reserved */
    const void *data; /* borrowed for the call */
    size_t bytes;
} train_ckpt_blob_t;

/* Writes a new version made of meta and the given records, in one write
 * transaction, like train_ckpt_save (which uses it for tensors t/<name> and
 * moments opt/m|v).  Other checkpoint kinds (ngram.h) store their own
 * records this way. */
int train_ckpt_save_blobs(train_ckpt_t *c, const char *meta_json, const train_ckpt_blob_t *blobs, int n_blobs, int best,
                          int keep, int *version_out, llmos_error_t *err);

/* Copies record `name` of version into *data (caller frees; a NUL byte
 * follows the *bytes bytes).  LLMOS_ENOTFOUND, LLMOS_EIO. */
int train_ckpt_blob(train_ckpt_t *c, int version, const char *name, void **data, size_t *bytes, llmos_error_t *err);

/* The version "latest" (which = 0) or "best" (which = 1) points to.
 * LLMOS_ENOTFOUND when there is none. */
int train_ckpt_pointer(train_ckpt_t *c, int which, int *version, llmos_error_t *err);

/* The meta JSON of a version; caller frees *json.  LLMOS_ENOTFOUND. */
int train_ckpt_meta(train_ckpt_t *c, int version, char **json, llmos_error_t *err);

/* Copies the stored tensors of version into n (each must exist in n's
 * layout with the same shape: LLMOS_EFORMAT otherwise) and, when a is not
 * NULL, the moments (LLMOS_EFORMAT if their length differs). */
int train_ckpt_load(train_ckpt_t *c, int version, train_net_t *n, train_adamw_t *a, llmos_error_t *err);

/* Calls fn for every version, oldest first, with its meta JSON and its size
 * in bytes; a nonzero return from fn stops the walk and is returned. */
int train_ckpt_list(train_ckpt_t *c, int (*fn)(int version, const char *meta, size_t bytes, void *ctx), void *ctx,
                    llmos_error_t *err);

#endif
