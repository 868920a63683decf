/*
 * loaders.h — the format loaders (layer 4 of model/, see builder.h): each
 * fills a model that model_build_new made and model_build_map mapped, from
 * the bytes of its file, through the builder only.  model.c (the facade)
 * picks one by the file's magic.  Private to model/.
 *
 * Both check every header field, size and offset before use and refuse a
 * bad file with LLMOS_EFORMAT naming the file, field and byte offset;
 * LLMOS_EUNSUPPORTED for a valid file they do not handle; LLMOS_EINVAL for
 * tensor-parallel options the model's shape does not allow; LLMOS_ENOMEM.
 */
#ifndef LLMOS_MODEL_LOADERS_H
#define LLMOS_MODEL_LOADERS_H

#include "model/builder.h"

/* A llama2.c checkpoint (legacy fp32) and its tokenizer.bin
 * (opts->tokenizer_path, required: LLMOS_EINVAL without it). */
int model_load_llama2c(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);
/* A GGUF v3 file of the llama architecture, vocabulary included
 * (opts->tokenizer_path is ignored). */
int model_load_gguf(model_t *m, const model_load_opts_t *opts, llmos_error_t *err);

#endif
