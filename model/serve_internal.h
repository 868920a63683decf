/*
 * serve_internal.h — what the files of the serving core share: the core's
 * and a request's structs, and the request functions of serve_req.c
 * (validating, tokenizing, bounding, freeing) that serve.c calls.  Private
 * to model/serve*.c.
 */
#ifndef LLMOS_MODEL_SERVE_INTERNAL_H
#define LLMOS_MODEL_SERVE_INTERNAL_H

#include "model/serve.h"

typedef struct serve_req {
    struct serve_req *next; /* queue link */
    serve_kind_t kind;
    void *tag;
    uint64_t corr, origin, deadline_ms;
    char *request_id;
    bool stream, echo, mean;
    int *toks; /* prompt then generated ids; cap entries */
    int n_prompt, n_toks, cap;
    int max_gen, generated;
    int n_fed;  /* tokens in the KV cache */
    int seq;    /* slot; -1 while queued */
    int blocks; /* reserved KV blocks */
    model_sampler_t *smp;
    char *stops[SERVE_MAX_STOPS];
    int n_stops;
    char *text; /* echo prefix + generated text */
    size_t text_len, text_cap, gen_off, sent;
    uint32_t chunk_index;
    int chunk_tok; /* first generated token not yet streamed */
    float *vec;    /* embed, classify: pooled hidden (dim); score: log p of the
                      token after the shared prefix (vocab) */
    int pooled;    /* embed, classify: rows summed */
    int top_k;     /* classify: classes answered (0 = all) */
    /* score: each label's whole tokenization (prompt + label); toks holds
     * the prefix all labels share (n_prompt tokens), computed once.
     * classify: lab_lp holds the class probabilities. */
    char **labels;
    int **lab_toks, *lab_n, n_labels, cur, lab_pos;
    double *lab_lp;
    uint64_t t_arrive_ns, t_admit_ns, t_first_ns;
    int ctx_kept, ctx_dropped, ctx_tokens; /* generate: context lines fitted */
} serve_req_t;

struct serve {
    const model_t *m;
    model_t *own_m;       /* serve_open's */
    serve_cls_t *own_cls; /* serve_open's */
    char *name;
    const serve_cls_t *cls;
    model_ctx_t *ctx;
    const model_tokenizer_t *tok;
    int vocab, dim, seq_len, bos, eos, kv_total;
    int max_seqs, budget, queue_limit;
    bool plan_on; /* log sequence operations for followers */
    serve_sink_fn sink;
    void *sink_arg;
    float *logits; /* vocab scratch for sampling */
    /* the plan of the current iteration (a follower decodes into it too) */
    model_batch_entry_t *ents;
    uint8_t *want;
    serve_req_t **ereq;
    serve_plan_t plan;
    int32_t *ops;       /* sequence operations since the last wire form, 3 words each */
    int n_ops, ops_cap; /* words */
    int32_t *wire;
    size_t wire_cap;
    /* requests */
    serve_req_t **running;
    int n_running;
    serve_req_t *q_head, *q_tail;
    int n_queued;
    int reserved; /* KV blocks promised to running requests */
    uint64_t requests_done, tokens_generated, iterations, rejected, prompt_tokens;
    double avg_req_ms;
};

/* Fills r (zeroed, kind and tag set by the caller) from rq: validation,
 * tokenization, the bounds of what it may ask.  Messages name the field,
 * without the "model: " the caller puts in front. */
int serve_req_parse(serve_t *s, serve_req_t *r, const serve_request_t *rq, llmos_error_t *err);
void serve_req_free(serve_req_t *r);
/* Appends the bytes of a piece to r's text (single control bytes other
 * than whitespace are dropped, as llmos-generate drops them). */
int serve_req_text_append(serve_req_t *r, const char *p, size_t n);
/* Blocks r can ever hold: every position it will run. */
int serve_req_blocks(const serve_req_t *r);

#endif
