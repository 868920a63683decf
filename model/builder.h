/*
 * builder.h — the bottom of the engine: the model struct and the functions
 * that put one together (allocation the model owns, the file mapping, the
 * tensor-parallel slicing of each matrix, binding a tensor to its bytes,
 * the RoPE tables) and take it apart (model_destroy).  Private to model/.
 *
 * Layers of model/ (a file calls only files of lower layers; the test
 * tests/model/layers.sh checks it on the built library):
 *   0  kernels.c, blis_select.c, omp_env.c, sample.c, tokenizer.c,
 *      q8_scalar.c                     — pure kernels and the tokenizer
 *   1  q8_avx2.c, q8_avx512.c         — per-ISA int8 kernels
 *   2  q8.c                            — int8 dispatch, threading
 *   3  builder.c                       — this header
 *   4  load_llama2c.c, gguf.c (format loaders, loaders.h), q8_bridge.c
 *      (quantizing a built model, the int8 matmul of a context), prompt.c
 *   5  forward.c                       — the inference context
 *   6  model.c                         — the facade: model_load picks a
 *                                        loader, model_new, saving
 * tp.c (llmos_model_tp) and the serving core (serve*.c, llmos_serve) sit
 * above, on the public headers and, for tp.c, tp_internal.h.
 */
#ifndef LLMOS_MODEL_BUILDER_H
#define LLMOS_MODEL_BUILDER_H

#include "model/model.h"

#include <stddef.h>
#include <stdint.h>

/* The part of the model one tensor-parallel rank holds (whole model: rank 0
 * of 1, every count equal to the config's).  Query/KV heads and the MLP
 * hidden width are split evenly (the size must divide them); the
 * classifier's vocabulary rows are split as evenly as possible (the first
 * vocab % size ranks get one more row). */
typedef struct model_shard {
    int rank, size;
    int n_heads, head0;       /* query heads [head0, head0 + n_heads) */
    int n_kv_heads, kv_head0; /* key/value heads */
    int hidden_dim, hidden0;  /* MLP inner columns */
    int n_vocab, vocab0;      /* classifier rows */
} model_shard_t;

/* Rank r's vocabulary rows when V rows are split over `size` ranks. */
static inline void model_shard_vocab(int V, int size, int r, int *v0, int *n) {
    int base = V / size, extra = V % size;
    *v0 = r * base + (r < extra ? r : extra);
    *n = base + (r < extra);
}

/* How a full [rows x cols] matrix is cut for a rank. */
typedef enum model_part {
    MODEL_PART_WHOLE = 0, /* norms, the embedding table */
    MODEL_PART_Q_ROWS,    /* wq: this rank's query heads (column-parallel) */
    MODEL_PART_KV_ROWS,   /* wk, wv: this rank's KV heads */
    MODEL_PART_Q_COLS,    /* wo: the input columns of this rank's heads (row-parallel) */
    MODEL_PART_H_ROWS,    /* w1, w3: this rank's hidden slice */
    MODEL_PART_H_COLS,    /* w2: the input columns of this rank's hidden slice */
    MODEL_PART_V_ROWS,    /* classifier: this rank's vocabulary rows */
} model_part_t;

struct model {
    model_config_t cfg;
    model_shard_t shard; /* this rank's part (whole: rank 0 of 1) */
    model_weights_t w;
    model_tokenizer_t *tok; /* owned, may be NULL */
    void *map;              /* mmapped file, or NULL */
    size_t map_len;
    void **owned; /* buffers freed at destroy */
    int n_owned, cap_owned;
    float *rope_cos; /* [seq_len][head_dim/2] */
    float *rope_sin;
    char path[1024];
};

/* An empty model named `name` (a path, or "(new)"): whole (rank 0 of 1),
 * nothing mapped or owned yet.  Caller owns *out (model_destroy).
 * LLMOS_ENOMEM. */
int model_build_new(const char *name, model_t **out, llmos_error_t *err);

/* Allocates n bytes (64-aligned, zeroed) that the model frees at destroy;
 * NULL when out of memory. */
void *model_build_alloc(model_t *m, size_t n);

/* mmaps path read/write copy-on-write; sets m->map/map_len.  Errors:
 * LLMOS_ENOTFOUND and the like from open (naming the file), LLMOS_EINVAL
 * (not a regular file), LLMOS_EFORMAT (empty), LLMOS_EIO (mmap). */
int model_build_map(model_t *m, const char *path, llmos_error_t *err);

/* Sets m->shard from m->cfg and the options' tp_rank/tp_size.  LLMOS_EINVAL
 * naming the numbers when the size does not divide n_heads, n_kv_heads or
 * hidden_dim, or the rank is out of range. */
int model_build_shard(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);

/* Allocates the layers array and the RoPE tables once m->cfg is known.
 * LLMOS_ENOMEM. */
int model_build_finish(model_t *m, llmos_error_t *err);

/* Binds the rank's part of a full rows x cols matrix stored at src in the
 * file's element type `type` (F32, F16 or Q8_0) to out.  Row slices of F32
 * and Q8_0 point into the mapping; column slices are copied (Q8_0 column
 * slices must start and end on 32-value blocks: LLMOS_EUNSUPPORTED
 * otherwise, naming the tensor); F16 is widened (only the slice); Q8_0 is
 * dequantized when force_f32.  `name` is for messages.  LLMOS_ENOMEM. */
int model_build_take(model_t *m, model_tensor_t *out, const char *name, const void *src, model_dtype_t type,
                     int rows, int cols, model_part_t part, int force_f32, llmos_error_t *err);

/* Drops the whole pages of [p, p + n) from memory when they lie in the
 * model's clean file mapping (a copied or quantized slice no longer needs
 * its source); no-op otherwise. */
void model_build_release(model_t *m, const void *p, size_t n);

#endif
