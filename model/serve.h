/*
 * serve.h — the serving core: one model context served to many requests
 * with continuous batching.  A plain library (llmos_serve): no actors, no
 * sockets, no MPI, no clock of its own — the caller passes the time in, so
 * tests drive it with a fake clock, in-process, on a real model.  The
 * model-shard actor (actors/model_shard.c) is its adapter: it decodes
 * messages into serve_request_t, calls these functions and encodes the
 * events it gets back.
 *
 * Requests (serve_submit): generate (text or token ids, droppable context
 * lines, sampling, stop strings, streaming, echo), embed (mean or last
 * final-norm hidden state), score (each label's log-probability as the
 * prompt's continuation) and classify (a score without labels, through the
 * classifier head served with the model, serve_cls.h).  A request is
 * validated, tokenized and bounded when it is submitted; what it asks can
 * never exceed the model's window or the KV pool.
 *
 * Admission: past queue_limit requests that would really wait (those the
 * next iteration can start on free slots do not count) a request is
 * refused with LLMOS_EOVERLOADED, "overloaded: queue full (N waiting, limit
 * L, R running), retry after M ms" (M from the recent request times).  A
 * queued request starts when a slot is free and its worst-case KV blocks
 * (every position it can ever run: prompt + max tokens; a score's longest
 * label) fit beside those promised to the running ones, so a running
 * request never runs out of cache; finishing, failing and cancelling give
 * the blocks back at once.
 *
 * One iteration (serve_step_begin / _forward / _end):
 *   begin   deadlines expire (queued and running: LLMOS_ETIMEDOUT), queued
 *           requests are admitted (in arrival order), and the plan is built:
 *           every decoding sequence's next token first (one row each), then
 *           prefill chunks in admission order until the token budget is
 *           spent (a long prompt takes several iterations; a mean-pooled
 *           embed or classify chunk keeps every row's hidden state);
 *   forward the batch as one model_ctx_forward_rows — a tensor-parallel
 *           leader first sends the plan to its followers (serve_step_wire,
 *           serve_follow; serve_plan.h says why that rides MPI);
 *   end     each entry's output is consumed: a generation samples (its own
 *           seeded sampler: its text does not depend on its neighbours),
 *           detokenizes, holds back bytes that may start a stop string,
 *           streams, finishes on EOS, a stop string or its length; an embed
 *           or classify adds the chunk's rows to its pool; a score adds a
 *           label token's log-probability and cuts its sequence back to the
 *           shared prefix between labels.
 *
 * Events.  Everything a request produces goes to the sink given in
 * serve_opts_t, synchronously, from inside the call that produced it:
 * chunks, then exactly one DONE or FAILED per submitted request, after
 * which its tag is never used again.  Pointers in an event are borrowed
 * for the call.  The sink must not call back into the core.
 *
 * Memory: the context, the plan and every per-iteration buffer are sized
 * in serve_new; a request's own buffers (tokens, text, sampler) are
 * allocated once in serve_submit and freed when it leaves.
 *
 * Thread-safety: none; one owner (the shard's pinned actor thread).
 */
#ifndef LLMOS_MODEL_SERVE_H
#define LLMOS_MODEL_SERVE_H

#include "model/model.h"
#include "model/serve_cls.h"
#include "model/serve_plan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct serve serve_t;

#define SERVE_MAX_STOPS 16
#define SERVE_MAX_STOP_LEN 256
#define SERVE_MAX_TEXT_BYTES (1u << 20) /* prompts, texts and labels */
#define SERVE_MAX_REQUEST_ID 1024
#define SERVE_MAX_LABELS 64

typedef enum serve_kind {
    SERVE_GENERATE = 1,
    SERVE_EMBED = 2,
    SERVE_SCORE = 3,
    SERVE_CLASSIFY = 4, /* a SERVE_SCORE request without labels becomes this */
} serve_kind_t;

/* The time, as the caller reads it: a monotonic clock for durations and the
 * wall clock that deadlines are written in. */
typedef struct serve_time {
    uint64_t ns;      /* monotonic nanoseconds (llmos_now_ns) */
    uint64_t wall_ms; /* wall-clock milliseconds (llmos_wall_ms) */
} serve_time_t;

typedef struct serve_sampling {
    float temperature;        /* 0..100; 0 = greedy */
    uint32_t top_k;           /* 0 = off; more than the vocabulary = all */
    float top_p;              /* 0..1; 0 or 1 = off */
    float repetition_penalty; /* 0..100; 0 or 1 = off */
    uint64_t seed;
} serve_sampling_t;

/* One request, as decoded from the wire; everything borrowed for the
 * serve_submit call (the core copies what it keeps). */
typedef struct serve_request {
    serve_kind_t kind;     /* GENERATE, EMBED or SCORE */
    uint64_t corr, origin; /* the asker's correlation id and node: serve_cancel's keys */
    uint64_t deadline_ms;  /* wall clock; 0 = none */
    const char *text;      /* generate, score: the prompt; embed: the text; NULL = "" */
    /* generate */
    const int32_t *prompt_tokens; /* instead of text when n_prompt_tokens > 0 */
    size_t n_prompt_tokens;
    const char *context;              /* droppable lines in front of the prompt (model_prompt_fit) */
    uint32_t max_tokens;              /* 0 = as many as the positions allow */
    uint32_t max_positions;           /* llama2.c's -n, prompt included; 0 = seq_len */
    const serve_sampling_t *sampling; /* NULL = greedy */
    const char *const *stops;
    size_t n_stops;
    const char *request_id; /* the caller's name for it (serve_cancel); NULL or "" = none */
    bool stream, echo;
    /* embed */
    const char *pooling; /* "mean" (NULL, "") or "last" */
    /* score */
    const char *const *labels;
    size_t n_labels; /* 0: classify with the served head */
    uint32_t top_k;  /* classify: classes answered, 0 = all */
} serve_request_t;

typedef enum serve_event_type {
    SERVE_EV_CHUNK = 1,  /* a streaming generation's new text */
    SERVE_EV_DONE = 2,   /* the answer (u.generated / embedded / scored / classified by kind) */
    SERVE_EV_FAILED = 3, /* the request ended with an error */
} serve_event_type_t;

typedef struct serve_event {
    serve_event_type_t type;
    serve_kind_t kind; /* the request's (CLASSIFY for a score without labels) */
    void *tag;         /* serve_submit's */
    union {
        struct {
            int status;          /* negative llmos_err */
            const char *message; /* "model: ..." */
        } failed;
        struct {
            const char *text; /* NUL-terminated, len bytes */
            size_t len;
            const int *tokens;
            int n_tokens;
            uint32_t index; /* from 0 */
        } chunk;
        struct {
            const char *text; /* the whole text (echo included), NUL-terminated */
            size_t len;
            const int *tokens; /* generated ids */
            int n_tokens;
            int prompt_tokens;
            int context_lines_kept, context_lines_dropped, context_tokens;
            const char *finish_reason; /* "length", "stop", "eos" */
            uint64_t ttft_us, total_us, queued_us;
        } generated;
        struct {
            const float *vector; /* dim floats */
            int dim;
            int tokens;
        } embedded;
        struct {
            const char *const *labels;
            const float *log_probs, *probs; /* per label; probs: softmax over the labels */
            int n;
            int best;
        } scored;
        struct {
            const char *const *labels; /* the head's */
            const double *probs;       /* per class, in the head's order */
            int n_classes;
            int top_k; /* classes to answer (1..n_classes) */
        } classified;
    } u;
} serve_event_t;

typedef void (*serve_sink_fn)(void *arg, const serve_event_t *ev);

typedef struct serve_opts {
    int threads;            /* model threads; 0 = 1 */
    int max_seqs;           /* sequences batched at once; 0 = 32 */
    int kv_blocks;          /* KV pool blocks; 0 = max_seqs full-length sequences, at most 512 MiB */
    int token_budget;       /* rows per iteration; 0 = 256; at least max_seqs */
    int queue_limit;        /* requests waiting for admission; 0 = 1024 */
    const model_tp_t *tp;   /* the group when the model is a tensor-parallel slice (borrowed) */
    bool plan;              /* keep the plan for followers (implied by a group of more than one rank) */
    const serve_cls_t *cls; /* the classifier head served with the model (borrowed), or NULL */
    serve_sink_fn sink;     /* where events go (required for requests; followers may leave it NULL) */
    void *sink_arg;
} serve_opts_t;

/* Fills the defaults of o in (the values serve_new will use). */
void serve_opts_resolve(serve_opts_t *o);

/* A core on m (borrowed: must outlive it), with its own inference context.
 * Every rank of a tensor-parallel group makes its core with the same
 * options.  Errors: those of model_ctx_new; LLMOS_EINVAL when m has no
 * tokenizer ("model X has no tokenizer (give --tokenizer)") or the head's
 * width is not the model's; LLMOS_ENOMEM. */
int serve_new(const model_t *m, const serve_opts_t *o, serve_t **out, llmos_error_t *err);

/* What to load for serve_open. */
typedef struct serve_load {
    const char *model;      /* llama2.c .bin or GGUF; NULL when the classifier names it */
    const char *tokenizer;  /* tokenizer.bin for llama2.c files */
    const char *classifier; /* a fine-tuned classifier's checkpoint folder (serve_cls.h) */
    bool q8;                /* quantize to int8 at load */
    int tp_rank, tp_size;   /* this rank's slice */
} serve_load_t;

/* Loads a model (with its classifier: the body the checkpoint gives; model
 * and tokenizer then override its base model) and makes a core that owns
 * both.  Names are found as given, else in the models folder
 * (llmos_path_find).  o->cls is ignored (the opened classifier is served).
 * Errors: LLMOS_EINVAL (nothing to load), LLMOS_ENOTFOUND (a name found
 * nowhere, the message lists where it looked), those of serve_cls_open,
 * model_load and serve_new. */
int serve_open(const serve_load_t *l, const serve_opts_t *o, serve_t **out, llmos_error_t *err);

/* Frees the core (and what serve_open loaded).  Requests still queued or
 * running are dropped without events: call serve_fail_all first to answer
 * them.  NULL-safe; sets *s to NULL. */
void serve_destroy(serve_t **s);

/* What stats call the model (the path loaded, or the classifier folder
 * for a merged temporary body; "" for serve_new).  Borrowed. */
const char *serve_name(const serve_t *s);
/* The served classifier, or NULL (borrowed). */
const serve_cls_t *serve_cls(const serve_t *s);
/* The model and the inference context (borrowed until serve_destroy). */
const model_t *serve_model(const serve_t *s);
model_ctx_t *serve_ctx(serve_t *s);

typedef struct serve_stats {
    int running, queued;
    int kv_used, kv_total, kv_reserved; /* blocks in use, in the pool, promised to running requests */
    int max_seqs, token_budget, queue_limit;
    int vocab_size, seq_len, dim;
    uint64_t requests_done, tokens_generated, iterations, prompt_tokens, rejected_overloaded;
    double avg_request_ms; /* recent requests' mean time, arrival to answer (the retry hint's base) */
} serve_stats_t;
void serve_stats(const serve_t *s, serve_stats_t *out);

/* Continues the counters (requests_done .. rejected_overloaded) and the
 * mean request time of a snapshot: a core that replaces another (a LOAD)
 * counts on from where that one stopped. */
void serve_stats_carry(serve_t *s, const serve_stats_t *from);

/* ---------------------------------------------------------------- requests */

/* 0 when a new request may wait for admission; LLMOS_EOVERLOADED (counted
 * in rejected_overloaded, message as above) when the queue is full.
 * serve_submit checks it first; a caller that has work to do before it
 * (decoding) may check first. */
int serve_check_admission(serve_t *s, llmos_error_t *err);

/* Validates and queues a request; tag is handed back with its events.
 * Nothing is sent to the sink on error.  Errors (err->msg is what the
 * asker should read): LLMOS_EOVERLOADED (above), LLMOS_EINVAL (a field out
 * of range, named: "model: sampling.top_p: 2 is not in [0, 1]", "model:
 * labels: none given and no classifier is loaded ..."), LLMOS_ETOOBIG
 * (the prompt, context or labels do not fit the model's window; the
 * request needs more KV blocks than the pool has), LLMOS_ENOMEM. */
int serve_submit(serve_t *s, const serve_request_t *rq, void *tag, serve_time_t now, llmos_error_t *err);

/* Cancels the first live request (running first, then queued) whose
 * correlation id and origin are corr and origin (corr != 0), or whose
 * request_id is request_id (not NULL or ""): it FAILs with LLMOS_ECANCELED
 * and its blocks are free at once.  Returns whether one was found. */
bool serve_cancel(serve_t *s, uint64_t corr, uint64_t origin, const char *request_id);

/* Every request, running and queued, FAILs with status and why. */
void serve_fail_all(serve_t *s, int status, const char *why);

/* Whether requests are running or queued (more iterations to run). */
bool serve_busy(const serve_t *s);

/* ---------------------------------------------------------------- the iteration */

/* Expires, admits and plans the next forward (see above); returns the
 * number of batch entries (0: nothing to run now). */
int serve_step_begin(serve_t *s, serve_time_t now);

/* The plan serve_step_begin made (borrowed until the next begin), and the
 * tag of the request behind entry i. */
const serve_plan_t *serve_step_plan(const serve_t *s);
void *serve_step_tag(const serve_t *s, int i);

/* The plan in its wire form for the followers (serve_plan.h): the
 * sequence operations since the last plan and the batch; after this call
 * the operations count as sent.  *buf is borrowed until the next call.
 * stop: a STOP plan instead (the followers leave their plan loop).
 * LLMOS_ESTATE when the core keeps no plan (opts.plan, tp). */
int serve_step_wire(serve_t *s, bool stop, const int32_t **buf, size_t *n, llmos_error_t *err);

/* Runs the planned forward.  0; LLMOS_EUNAVAILABLE when the group's
 * collectives failed (the batch's sequences are then undefined: fail
 * everything, serve_fail_all); any other error refused the batch before
 * anything changed, and its requests have FAILed ("model: ..."). */
int serve_step_forward(serve_t *s, llmos_error_t *err);

/* Consumes the forward's outputs; now is when it ended (times to first
 * token count from it). */
void serve_step_end(serve_t *s, serve_time_t now);

/* ---------------------------------------------------------------- followers */

/* A follower runs the leader's plan (its wire form): 0 when it ran,
 * 1 for a STOP plan (nothing is applied), or an error: LLMOS_EFORMAT (the
 * plan is malformed or does not reproduce here), LLMOS_EUNAVAILABLE (the
 * collectives failed).  After an error the follower must leave the group. */
int serve_follow(serve_t *s, const int32_t *buf, size_t n, llmos_error_t *err);

#endif
