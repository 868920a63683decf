/*
 * logits_dump — test helper: loads a model, runs the given token ids through
 * it and writes every position's logits (float32, vocab per row) to stdout.
 *   model_logits_dump MODEL TOKENIZER|- prefill|decode THREADS [q8] -- ID...
 * prefill: one batched forward over all ids (GEMM path); decode: one id per
 * forward (GEMV path).  Used by torch_ref.py and the q8 test.
 */
#include "model/model.h"
#include "runtime/base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER|- prefill|decode THREADS [q8] -- ID...\n", argv[0]);
        return 2;
    }
    llmos_log_set_level(LLMOS_LOG_WARN);
    int a = 5, q8 = 0;
    if (!strcmp(argv[a], "q8")) q8 = 1, a++;
    if (strcmp(argv[a], "--")) return 2;
    a++;
    int n = argc - a, decode = !strcmp(argv[3], "decode");
    int *ids = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) ids[i] = atoi(argv[a + i]);
    model_load_opts_t o = {.tokenizer_path = strcmp(argv[2], "-") ? argv[2] : NULL,
                           .quantize = q8 ? MODEL_DTYPE_Q8_0 : MODEL_DTYPE_F32};
    llmos_error_t e = {0};
    model_t *m = NULL;
    model_ctx_t *c = NULL;
    int rc = model_load(argv[1], &o, &m, &e), seq;
    model_ctx_opts_t co = {.threads = atoi(argv[4]), .max_seqs = 1, .max_tokens = n, .all_logits = 1};
    if (!rc) rc = model_ctx_new(m, &co, &c, &e);
    if (!rc) rc = model_seq_open(c, &seq, &e);
    int V = rc ? 0 : model_config(m)->vocab_size;
    if (!rc && !decode) {
        model_batch_entry_t be = {seq, ids, n};
        rc = model_ctx_forward(c, &be, 1, &e);
        for (int i = 0; !rc && i < n; i++) fwrite(model_ctx_logits(c, i), sizeof(float), (size_t)V, stdout);
    }
    for (int i = 0; !rc && decode && i < n; i++) {
        model_batch_entry_t be = {seq, &ids[i], 1};
        rc = model_ctx_forward(c, &be, 1, &e);
        if (!rc) fwrite(model_ctx_logits(c, 0), sizeof(float), (size_t)V, stdout);
    }
    if (rc) fprintf(stderr, "logits_dump: %s\n", e.msg);
    model_ctx_destroy(&c);
    model_destroy(&m);
    free(ids);
    return rc ? 1 : 0;
}
