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

struct model {
    model_config_t cfg;
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

int model_load_llama2c(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);
int model_load_gguf(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);


#endif
