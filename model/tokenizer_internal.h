/*
 * tokenizer_internal.h — the tokenizer's struct and its builder, shared by
 * tokenizer.c (which owns them), the format loaders that build one from a
 * file's vocabulary (gguf.c) and the engine's tests.  Private to model/;
 * the bottom layer of the engine (it calls nothing else in model/).
 */
#ifndef LLMOS_MODEL_TOKENIZER_INTERNAL_H
#define LLMOS_MODEL_TOKENIZER_INTERNAL_H

#include "model/model.h"

#include <stdint.h>

struct model_tokenizer {
    int vocab_size;
    char **piece;  /* [vocab] bytes (not NUL-terminated in general) */
    int *len;      /* [vocab] piece lengths */
    float *score;  /* [vocab] merge scores */
    uint8_t *type; /* [vocab] MODEL_TOK_* */
    int bos, eos;
    int byte_id[256]; /* token that stands for each raw byte, -1 if none */
    int max_len;      /* longest piece */
    uint32_t ht_cap;  /* open-addressing table of mergeable pieces */
    int *ht;          /* [ht_cap] token id or -1 */
    char *arena;      /* all pieces */
};

enum { MODEL_TOK_NORMAL = 1, MODEL_TOK_UNKNOWN = 2, MODEL_TOK_CONTROL = 3, MODEL_TOK_BYTE = 6 };

/* Builds a tokenizer from pieces (copied; "\xe2\x96\x81" is turned into a
 * space), scores (NULL = 0) and types (NULL = inferred: ids < 3 control,
 * "<0xHH>" byte, else normal).  Caller owns *out (model_tokenizer_destroy). */
int model_tokenizer_build(int vocab, const char *const *pieces, const int *lens, const float *scores,
                          const int32_t *types, int bos, int eos, model_tokenizer_t **out,
                          llmos_error_t *err);

#endif
