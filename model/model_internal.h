/*
 * model_internal.h — what the files of model/ share and nobody else sees:
 * the model and tokenizer structs, the loaders' entry points and the
 * matrix kernels the forward pass calls.
 */
#ifndef LLMOS_MODEL_INTERNAL_H
#define LLMOS_MODEL_INTERNAL_H

#include "model/model.h"

#include <stddef.h>
#include <stdint.h>

struct model_tokenizer {
    int vocab_size;
    char **piece;        /* [vocab] bytes (not NUL-terminated in general) */
    int *len;            /* [vocab] piece lengths */
    float *score;        /* [vocab] merge scores */
    uint8_t *type;       /* [vocab] MODEL_TOK_* */
    int bos, eos;
    int byte_id[256];    /* token that stands for each raw byte, -1 if none */
    int max_len;         /* longest piece */
    uint32_t ht_cap;     /* open-addressing table of mergeable pieces */
    int *ht;             /* [ht_cap] token id or -1 */
    char *arena;         /* all pieces */
};

enum { MODEL_TOK_NORMAL = 1, MODEL_TOK_UNKNOWN = 2, MODEL_TOK_CONTROL = 3, MODEL_TOK_BYTE = 6 };

/* Builds a tokenizer from pieces (copied; "\xe2\x96\x81" is turned into a
 * space), scores (NULL = 0) and types (NULL = inferred: ids < 3 control,
 * "<0xHH>" byte, else normal). */
int model_tokenizer_build(int vocab, const char *const *pieces, const int *lens,
                          const float *scores, const int32_t *types, int bos, int eos,
                          model_tokenizer_t **out, llmos_error_t *err);

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
    model_shard_t shard;     /* this rank's part (whole: rank 0 of 1) */
    model_weights_t w;
    model_tokenizer_t *tok;  /* owned, may be NULL */
    void *map;               /* mmapped file, or NULL */
    size_t map_len;
    void **owned;            /* buffers freed at destroy */
    int n_owned, cap_owned;
    float *rope_cos;         /* [seq_len][head_dim/2] */
    float *rope_sin;
    char path[1024];
};

/* Allocates n bytes (64-aligned, zeroed) that the model frees at destroy. */
void *model_alloc_owned(model_t *m, size_t n);
/* Allocates the layers array and the RoPE tables after cfg is known. */
int model_finish_setup(model_t *m, llmos_error_t *err);
/* Converts every 2-D weight matrix (not the embedding) to q8_0. */
int model_quantize_q8(model_t *m, llmos_error_t *err);
/* mmaps path read/write copy-on-write; sets m->map/map_len. */
int model_map_file(model_t *m, const char *path, llmos_error_t *err);

/* Sets m->shard from cfg and the options' tp_rank/tp_size.  LLMOS_EINVAL
 * naming the numbers when the size does not divide n_heads, n_kv_heads or
 * hidden_dim, or the rank is out of range. */
int model_shard_setup(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);

/* Binds the rank's part of a full rows x cols matrix stored at src in the
 * file's element type `type` (F32, F16 or Q8_0) to out.  Row slices of F32
 * and Q8_0 point into the mapping; column slices are copied (Q8_0 column
 * slices must start and end on 32-value blocks: LLMOS_EUNSUPPORTED
 * otherwise, naming the tensor); F16 is widened (only the slice); Q8_0 is
 * dequantized when force_f32.  `name` is for messages. */
int model_tensor_take(model_t *m, model_tensor_t *out, const char *name, const void *src, model_dtype_t type,
                      int rows, int cols, model_part_t part, int force_f32, llmos_error_t *err);

/* Drops the whole pages of [p, p + n) from memory when they lie in the
 * model's clean file mapping (a copied or quantized slice no longer needs
 * its source); no-op otherwise. */
void model_release_mapped(model_t *m, const void *p, size_t n);

int model_load_llama2c(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);
int model_load_gguf(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);

/* ---------------------------------------------------------------- tensor parallelism */

/* The collectives a context calls (model/tp.c implements them over MPI).
 * Each returns 0 or a negative llmos_err with the message in err. */
struct model_tp {
    int rank, size;
    /* buf[0..n) = the sum of every rank's buf (same result on all ranks). */
    int (*allreduce_sum)(const struct model_tp *tp, float *buf, size_t n, llmos_error_t *err);
    /* recv = every rank's send, rank r's counts[r] floats at displs[r]. */
    int (*allgatherv)(const struct model_tp *tp, const float *send, int n_send, float *recv, const int *counts,
                      const int *displs, llmos_error_t *err);
};

#endif
