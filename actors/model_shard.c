/*
 * model_shard.c — the model-shard actors (see model_shard.h): a pinned
 * actor per rank that owns a model context; the group leader schedules.
 *
 * Leader loop.  receive() only parses, validates and queues (or answers at
 * once: stats, cancel, errors).  idle() — called whenever the mailbox is
 * empty — runs one iteration: expire deadlines, admit queued requests while
 * a slot and their worst-case KV blocks are free, build one batch (every
 * decoding sequence's next token first, then prefill chunks in admission
 * order until the token budget is spent), send the plan to the followers,
 * forward, and consume each entry's last-row logits: sample (the request's
 * own seeded sampler, so its text does not depend on its neighbours),
 * detokenize, check stop strings, stream, finish.  It returns true while
 * sequences run, so new messages are taken between iterations.
 *
 * Pooling.  A mean-pooled Embed or Classify prefills in chunks under the
 * token budget like a generation prompt; its entries are flagged for
 * model_ctx_forward_rows, so every row's final-norm hidden state of the
 * chunk comes back and is added to the request's sum (a 100-token text is
 * one iteration, not 100).  Last pooling needs only the last row.
 *
 * Plans (T > 1).  An int32 array sent with MPI_Isend to every follower of
 * the group's communicator: [kind, n_ops, n_entries, n_tokens, ops (op, a,
 * b)..., entries (seq, n, want_rows)..., tokens...].  Ops are the sequence operations
 * the leader did since the last plan, in order (open: a = the slot it got;
 * close a; truncate a to b), so followers reproduce the same slot ids.
 * Point-to-point with polling on both sides (not a blocking broadcast):
 * a follower that waits for a plan can still stop at shutdown (its receive
 * is cancellable), and a leader whose follower died does not wait forever.
 *
 * Memory: every buffer of the iteration (plan, batch) is sized at start;
 * a model's context and logits scratch when it is loaded; a request's own
 * buffers (tokens, text, sampler) are allocated once when it is parsed and
 * freed when it leaves.  What a request may ask is bounded before anything
 * is allocated for it: texts longer in bytes than seq_len tokens can hold
 * are refused untokenized, context lines past that are dropped unread.
 *
 * LOAD (handle_load): the new model is staged next to the served one
 * (stage_load: load, check, build its context) and swapped in only when
 * every rank staged it; otherwise it is dropped and nothing changed.
 *
 * Context (GenerateRequest.context): droppable lines in front of the
 * prompt, fitted by model_prompt_fit — the rule llmos-generate --graph
 * follows too.
 */
#include "actors/model_shard.h"

#include "actors/model_cls.h"
#include "actors/cls_result.h"

#include "llmos/model.pb-c.h"
#include "model/model.h"
#include "model/tp.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "runtime/base/paths.h"

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_MAX_STOPS 16
#define MS_MAX_STOP_LEN 256
#define MS_MAX_PROMPT_BYTES (1u << 20)
#define MS_MAX_REQUEST_ID 1024
#define MS_PLAN_TAG 4242
#define MS_PLAN_FORWARD 1
#define MS_PLAN_STOP 2
#define MS_ACK_TAG 4243
#define MS_PLAN_WAIT_MS 10000 /* a follower that acknowledges no plan for this long is gone */
#define MS_GROUP_CHECK_NS 100000000ull

enum { OP_OPEN = 1, OP_CLOSE = 2, OP_TRUNC = 3 };
typedef enum { REQ_GENERATE = 1, REQ_EMBED = 2, REQ_SCORE = 3, REQ_CLASSIFY = 4 } req_kind_t;
#define MS_MAX_LABELS 64

typedef struct ms_req {
    struct ms_req *next;      /* queue link */
    req_kind_t kind;
    rt_ref_t asker;           /* asker.name points into asker_name */
    char *asker_name;
    uint64_t corr, deadline_ms;
    char *request_id;
    bool stream, echo, mean;
    int *toks;                /* prompt then generated ids; cap entries */
    int n_prompt, n_toks, cap;
    int max_gen, generated;
    int n_fed;                /* tokens in the KV cache */
    int seq;                  /* slot; -1 while queued */
    int blocks;               /* reserved KV blocks */
    model_sampler_t *smp;
    char *stops[MS_MAX_STOPS];
    int n_stops;
    char *text;               /* echo prefix + generated text */
    size_t text_len, text_cap, gen_off, sent;
    uint32_t chunk_index;
    int chunk_tok;            /* first generated token not yet streamed */
    float *vec;               /* embed: pooled hidden (dim); score: log p of the first label
                                 token after the shared prefix (vocab) */
    int pooled;               /* embed, classify: rows summed */
    int top_k;                /* classify: classes answered (0 = all) */
    /* score: each label's whole tokenization (prompt + label); toks holds
     * the prefix all labels share (n_prompt tokens), computed once */
    char **labels;
    int **lab_toks, *lab_n, n_labels, cur, lab_pos;
    double *lab_lp;
    uint64_t t_arrive_ns, t_admit_ns, t_first_ns;
    int ctx_kept, ctx_dropped, ctx_tokens; /* generate: GenerateRequest.context lines fitted */
} ms_req_t;

/* A model made ready to serve next to the one served (a LOAD): this rank's
 * slice, its classifier and its inference context, all owned. */
typedef struct ms_stage {
    model_t *m;
    actors_cls_t *cls;
    char *path; /* what stats call it */
    model_ctx_t *ctx;
    float *logits; /* vocab scratch */
    int kv_blocks;
} ms_stage_t;

typedef struct ms {
    /* set up by actors_model_start */
    rt_system_t *sys;
    cl_transport_t *tr;
    char *path;
    model_t *m;
    int replica, grank, tp;
    MPI_Comm comm;            /* the group, for plans (MPI_COMM_NULL when tp == 1) */
    model_tp_t *tpg;          /* the group's collectives (NULL when tp == 1) */
    char (*endpoints)[CL_ENDPOINT_MAX]; /* tp endpoints of the group's nodes */
    int max_seqs, kv_blocks, budget, queue_limit, threads;
    int kv_opt;               /* --kv-blocks (0 = default from the model) */
    bool loaded;              /* a model and its context are in place */
    actors_cls_t *cls;        /* the fine-tuned classifier served with it, or NULL */
    /* LOAD: the new model is staged (followers: until the leader's COMMIT or
     * ABORT; the leader of a group: until every follower answered) */
    ms_stage_t staged;
    rt_msg_t *load_req;       /* the leader's LOAD ask being served (owned) */
    uint64_t *load_corr;      /* tp - 1 */
    int load_pending, load_failed;
    char load_err[LLMOS_ERRMSG_MAX];
    /* built by init */
    model_ctx_t *ctx;
    const model_tokenizer_t *tok;
    int vocab, dim, seq_len, bos, eos, kv_total;
    float *logits;            /* vocab scratch for sampling */
    model_batch_entry_t *ents;
    uint8_t *want;            /* [max_seqs] per entry: every row's hidden state (mean pooling) */
    ms_req_t **ereq;
    int32_t *plan;
    int plan_cap;
    int32_t *ops;
    int n_ops, ops_cap;
    MPI_Request *sreqs;       /* tp - 1 plan sends, then tp - 1 acknowledgement receives */
    int32_t *acks;
    cl_peer_info_t *peers;
    int peers_cap;
    uint64_t next_check_ns;
    /* leader state */
    ms_req_t **running;
    int n_running;
    ms_req_t *q_head, *q_tail;
    int n_queued;
    int reserved;             /* KV blocks promised to running requests */
    bool available, shut;
    char down_why[160];
    uint64_t requests_done, tokens_generated, iterations, rejected, prompt_tokens;
    double avg_req_ms;
    /* follower state */
    MPI_Request rreq;
    bool posted, stopped;
    uint32_t quiet_us;
} ms_t;

/* ---------------------------------------------------------------- flags */

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out, llmos_error_t *err) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < lo || x > hi)
        return llmos_error_set(err, LLMOS_EINVAL, "%s needs a whole number in [%d, %d], got '%s'", flag, lo, hi,
                               v ? v : "");
    *out = (int)x;
    return 0;
}

int actors_model_parse_flag(actors_model_opts_t *o, int argc, char **argv, int *i, llmos_error_t *err) {
    const char *a = argv[*i];
    if (strcmp(a, "--q8") == 0) {
        o->q8 = true;
        return 1;
    }
    static const char *const flags[] = {"--model", "--tokenizer", "--tp", "--max-seqs", "--kv-blocks",
                                        "--token-budget", "--queue-limit", "--model-threads", "--classifier"};
    size_t k = 0;
    while (k < sizeof flags / sizeof flags[0] && strcmp(a, flags[k]) != 0) k++;
    if (k == sizeof flags / sizeof flags[0]) return 0;
    if (*i + 1 >= argc) return llmos_error_set(err, LLMOS_EINVAL, "%s needs a value", a);
    const char *v = argv[++*i];
    int rc = 0;
    switch (k) {
    case 0: o->model = v; break;
    case 1: o->tokenizer = v; break;
    case 2: rc = parse_int(a, v, 1, 64, &o->tp, err); break;
    case 3: rc = parse_int(a, v, 1, 4096, &o->max_seqs, err); break;
    case 4: rc = parse_int(a, v, 1, 1 << 24, &o->kv_blocks, err); break;
    case 5: rc = parse_int(a, v, 1, 1 << 20, &o->token_budget, err); break;
    case 6: rc = parse_int(a, v, 1, 1 << 24, &o->queue_limit, err); break;
    case 8: o->classifier = v; break;
    default: rc = parse_int(a, v, 1, 256, &o->threads, err); break;
    }
    return rc ? rc : 1;
}

const char *actors_model_usage(void) {
    return "  --model FILE              serve this model (llama2.c .bin or GGUF) as actor `model`; FILE, "
           "DIR\n"
           "                            and --ensemble folders are found as given, else in $LLMOS_MODELS\n"
           "  --tokenizer FILE          tokenizer.bin for a llama2.c model\n"
           "  --classifier DIR          serve the fine-tuned classifier in DIR/ckpt.lmdb (Score without "
           "labels);\n"
           "                            its base model unless --model/--tokenizer replace it\n"
           "  --tp N                    ranks per tensor-parallel replica (mpirun -np a multiple of N)\n"
           "  --q8                      quantize the weights to int8 at load\n"
           "  --max-seqs N              sequences batched at once (default 32)\n"
           "  --kv-blocks N             KV-cache blocks of 16 tokens (default: max-seqs full sequences, <= "
           "512 MiB)\n"
           "  --token-budget N          rows per iteration (default 256)\n"
           "  --queue-limit N           waiting requests before `overloaded` (default 1024)\n"
           "  --model-threads N         threads per rank for the model (default 1)\n";
}

/* ---------------------------------------------------------------- messages out */

/* Sends type/payload to r's asker with r's correlation id: a reply when
 * is_reply, else a stream message. */
static void send_to_asker(ms_t *s, const ms_req_t *r, uint32_t type, bool is_reply, int status, const char *error,
                          const void *data, size_t len) {
    if (rt_answer(s->sys, r->asker, r->corr, type, is_reply, status, error, data, len) == LLMOS_ENOMEM)
        LLMOS_ERROR("model: no memory for a %zu-byte message to a caller", len);
}

static void reply_packed(rt_ctx_t *ctx, const rt_msg_t *msg, uint32_t type, const ProtobufCMessage *pm) {
    size_t n = protobuf_c_message_get_packed_size(pm);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "model: no memory for a %zu-byte reply", n);
        return;
    }
    protobuf_c_message_pack(pm, buf);
    rt_reply(ctx, msg, type, buf, n);
    free(buf);
}

/* ---------------------------------------------------------------- requests */

static void req_free(ms_req_t *r) {
    if (!r) return;
    model_sampler_destroy(&r->smp);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    free(r->asker_name);
    free(r->request_id);
    free(r->toks);
    free(r->text);
    free(r->vec);
    for (int i = 0; i < r->n_labels; i++) {
        free(r->labels[i]);
        free(r->lab_toks[i]);
    }
    free(r->labels);
    free(r->lab_toks);
    free(r->lab_n);
    free(r->lab_lp);
    free(r);
}

static void op_log(ms_t *s, int op, int a, int b) {
    if (s->tp <= 1) return;
    LLMOS_ASSERT(s->n_ops + 3 <= s->ops_cap);
    s->ops[s->n_ops++] = op;
    s->ops[s->n_ops++] = a;
    s->ops[s->n_ops++] = b;
}

/* Takes r out of the running set: closes its sequence, returns its blocks. */
static void req_leave(ms_t *s, ms_req_t *r) {
    if (r->seq >= 0) {
        model_seq_close(s->ctx, r->seq);
        op_log(s, OP_CLOSE, r->seq, 0);
        r->seq = -1;
        s->reserved -= r->blocks;
        int k = 0;
        while (k < s->n_running && s->running[k] != r) k++;
        LLMOS_ASSERT(k < s->n_running);
        memmove(&s->running[k], &s->running[k + 1], sizeof s->running[0] * (size_t)(s->n_running - k - 1));
        s->n_running--;
    }
}

static uint32_t req_msg_type(const ms_req_t *r) {
    return r->kind == REQ_EMBED                               ? LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED
           : r->kind == REQ_SCORE || r->kind == REQ_CLASSIFY ? LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE
                                  : LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE;
}

/* Answers r with an error and frees it (r already out of the queue). */
static void req_fail(ms_t *s, ms_req_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void req_fail(ms_t *s, ms_req_t *r, int status, const char *fmt, ...) {
    char msg[LLMOS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    req_leave(s, r);
    send_to_asker(s, r, req_msg_type(r), true, status, msg, NULL, 0);
    req_free(r);
}

static void queue_remove(ms_t *s, ms_req_t *r) {
    ms_req_t **pp = &s->q_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = r->next;
    if (s->q_tail == r) s->q_tail = prev;
    r->next = NULL;
    s->n_queued--;
}

/* The bytes a piece adds to the text: llmos-generate drops single control
 * bytes other than whitespace, and so does the served text. */
static int text_append(ms_req_t *r, const char *p, size_t n) {
    if (n == 1 && iscntrl((unsigned char)p[0]) && !isspace((unsigned char)p[0])) return 0;
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = (r->text_cap + n + 1) * 2;
        char *t = realloc(r->text, cap);
        if (!t) return LLMOS_ENOMEM;
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, p, n);
    r->text_len += n;
    r->text[r->text_len] = 0;
    return 0;
}

static void stream_chunk(ms_t *s, ms_req_t *r, size_t upto) {
    if (!r->stream || (upto <= r->sent && r->chunk_tok >= r->generated)) return;
    Llmos__GenerateChunk ch = LLMOS__GENERATE_CHUNK__INIT;
    char save = r->text[upto];
    r->text[upto] = 0;
    ch.text = r->text + r->sent;
    ch.n_tokens = (size_t)(r->generated - r->chunk_tok);
    ch.tokens = r->toks + r->n_prompt + r->chunk_tok;
    ch.index = r->chunk_index++;
    size_t n = llmos__generate_chunk__get_packed_size(&ch);
    uint8_t stackbuf[2048], *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (buf) {
        llmos__generate_chunk__pack(&ch, buf);
        send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE_CHUNK, false, 0, NULL, buf, n);
        if (buf != stackbuf) free(buf);
    }
    r->text[upto] = save;
    r->sent = upto;
    r->chunk_tok = r->generated;
}

/* Classify: the head on the pooled hidden state; the classes by falling
 * probability (top_k of them, or all). */
static void classify_reply(ms_t *s, ms_req_t *r) {
    const actors_cls_t *c = s->cls;
    int C = c->n_classes, k = r->top_k > 0 && r->top_k < C ? r->top_k : C;
    for (int i = 0; i < s->dim && r->pooled > 1; i++) r->vec[i] /= (float)r->pooled;
    double *p = (double *)r->lab_lp; /* C doubles, from parsing */
    actors_cls_apply(c, r->vec, p);
    uint8_t *buf;
    size_t n;
    if (actors_cls_result_pack((const char *const *)c->labels, p, C, k, &buf, &n) == 0)
        send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, true, 0, NULL, buf, n);
    else
        send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, true, LLMOS_ENOMEM, "model: no memory", NULL, 0);
    free(buf);
}

static void req_finish(ms_t *s, ms_req_t *r, const char *reason) {
    uint64_t now = llmos_now_ns();
    req_leave(s, r);
    if (r->kind == REQ_CLASSIFY) {
        classify_reply(s, r);
    } else if (r->kind == REQ_SCORE) {
        Llmos__ScoreResult sr = LLMOS__SCORE_RESULT__INIT;
        float lp[MS_MAX_LABELS], pr[MS_MAX_LABELS];
        double mx = -1e300, sum = 0;
        int best = 0;
        for (int i = 0; i < r->n_labels; i++) {
            lp[i] = (float)r->lab_lp[i];
            if (r->lab_lp[i] > mx) mx = r->lab_lp[best = i];
        }
        for (int i = 0; i < r->n_labels; i++) sum += exp(r->lab_lp[i] - mx);
        for (int i = 0; i < r->n_labels; i++) pr[i] = (float)(exp(r->lab_lp[i] - mx) / sum);
        sr.n_labels = sr.n_log_probs = sr.n_probs = (size_t)r->n_labels;
        sr.labels = r->labels;
        sr.log_probs = lp;
        sr.probs = pr;
        sr.best = r->labels[best];
        size_t n = llmos__score_result__get_packed_size(&sr);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf) {
            llmos__score_result__pack(&sr, buf);
            send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, true, 0, NULL, buf, n);
        } else {
            send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, true, LLMOS_ENOMEM, "model: no memory", NULL,
                          0);
        }
        free(buf);
    } else if (r->kind == REQ_EMBED) {
        Llmos__EmbedResult er = LLMOS__EMBED_RESULT__INIT;
        for (int i = 0; i < s->dim && r->pooled > 1; i++) r->vec[i] /= (float)r->pooled;
        er.n_vector = (size_t)s->dim;
        er.vector = r->vec;
        er.tokens = (uint32_t)r->n_prompt;
        size_t n = llmos__embed_result__get_packed_size(&er);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf) {
            llmos__embed_result__pack(&er, buf);
            send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED, true, 0, NULL, buf, n);
        } else {
            send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED, true, LLMOS_ENOMEM, "model: no memory", NULL,
                          0);
        }
        free(buf);
    } else {
        stream_chunk(s, r, r->text_len);
        Llmos__GenerateResult gr = LLMOS__GENERATE_RESULT__INIT;
        gr.text = r->text;
        gr.n_tokens = (size_t)r->generated;
        gr.tokens = r->toks + r->n_prompt;
        gr.prompt_tokens = (uint32_t)r->n_prompt;
        gr.context_lines_kept = (uint32_t)r->ctx_kept;
        gr.context_lines_dropped = (uint32_t)r->ctx_dropped;
        gr.context_tokens = (uint32_t)r->ctx_tokens;
        gr.finish_reason = (char *)reason;
        gr.time_to_first_token_us = r->t_first_ns ? (r->t_first_ns - r->t_arrive_ns) / 1000 : 0;
        gr.total_us = (now - r->t_arrive_ns) / 1000;
        gr.queued_us = (r->t_admit_ns - r->t_arrive_ns) / 1000;
        size_t n = llmos__generate_result__get_packed_size(&gr);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf) {
            llmos__generate_result__pack(&gr, buf);
            send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, true, 0, NULL, buf, n);
        } else {
            send_to_asker(s, r, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, true, LLMOS_ENOMEM, "model: no memory",
                          NULL, 0);
        }
        free(buf);
    }
    double ms = (double)(now - r->t_arrive_ns) / 1e6;
    s->avg_req_ms = s->requests_done ? 0.9 * s->avg_req_ms + 0.1 * ms : ms;
    s->requests_done++;
    req_free(r);
}

/* Everything waiting or running gets status. */
static void fail_all(ms_t *s, int status, const char *why) {
    while (s->n_running) req_fail(s, s->running[0], status, "%s", why);
    while (s->q_head) {
        ms_req_t *r = s->q_head;
        queue_remove(s, r);
        req_fail(s, r, status, "%s", why);
    }
}

/* ---------------------------------------------------------------- parsing requests */

static ms_req_t *req_new(const rt_msg_t *msg, req_kind_t kind) {
    ms_req_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    r->seq = -1;
    r->asker = msg->from;
    r->asker.name = NULL;
    if (msg->from.name && msg->from.name[0]) {
        if (!(r->asker_name = strdup(msg->from.name))) {
            free(r);
            return NULL;
        }
        r->asker.name = r->asker_name;
    }
    r->corr = msg->corr;
    r->deadline_ms = msg->deadline_ms;
    r->t_arrive_ns = llmos_now_ns();
    return r;
}

/* A string field of a message: its number and the name errors give it. */
typedef struct wire_field {
    uint32_t num;
    const char *name;
    bool repeated;
} wire_field_t;

static bool wire_varint(const uint8_t *d, size_t len, size_t *at, uint64_t *v) {
    *v = 0;
    for (int shift = 0; *at < len && shift < 64; shift += 7) {
        uint8_t b = d[(*at)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* protobuf-c hands strings over as C strings, so "a\0b" would silently be
 * "a": the top-level string fields of a message (one protobuf-c already
 * decoded) that hold a NUL byte are refused, with their name (and index,
 * for a repeated one). */
static int wire_nul(const rt_msg_t *msg, const wire_field_t *f, size_t nf, llmos_error_t *err) {
    const uint8_t *d = msg->data;
    size_t at = 0, len = msg->len, seen[8] = {0};
    char name[64];
    while (at < len) {
        uint64_t tag, n;
        if (!wire_varint(d, len, &at, &tag)) return 0;
        switch (tag & 7) {
        case 0:
            if (!wire_varint(d, len, &at, &n)) return 0;
            break;
        case 1: at += 8; break;
        case 5: at += 4; break;
        case 2:
            if (!wire_varint(d, len, &at, &n) || n > len - at) return 0;
            for (size_t k = 0; k < nf && k < 8; k++) {
                if (f[k].num != tag >> 3) continue;
                const uint8_t *z = memchr(d + at, 0, (size_t)n);
                if (f[k].repeated)
                    snprintf(name, sizeof name, "%s[%zu]", f[k].name, seen[k]++);
                else
                    snprintf(name, sizeof name, "%s", f[k].name);
                if (z)
                    return llmos_error_set(err, LLMOS_EINVAL,
                                           "%s: a NUL byte at offset %zu (text may not hold NUL)", name,
                                           (size_t)(z - (d + at)));
            }
            at += (size_t)n;
            break;
        default: return 0;
        }
    }
    return 0;
}

static int load_check(const rt_msg_t *msg, llmos_error_t *err) {
    static const wire_field_t f[] = {{1, "path", false}, {2, "tokenizer", false}, {4, "classifier", false}};
    return wire_nul(msg, f, 3, err);
}

/* Tokenizes text (with BOS) into r->toks, leaving room for extra tokens;
 * limit > 0: a text too long in bytes for limit tokens is refused before it
 * is tokenized (what names it in the error). */
static int req_tokenize(ms_t *s, ms_req_t *r, const char *what, const char *text, int limit, int extra,
                        llmos_error_t *err) {
    size_t len = strlen(text);
    if (len > MS_MAX_PROMPT_BYTES)
        return llmos_error_set(err, LLMOS_ETOOBIG, "%s: %zu bytes, more than %u", what, len,
                               MS_MAX_PROMPT_BYTES);
    if (limit > 0 && len + 1 > (size_t)(limit - 1) * (size_t)model_tokenizer_max_piece(s->tok))
        return llmos_error_set(err, LLMOS_ETOOBIG, "%s: %zu bytes, more than seq_len %d tokens can hold",
                               what, len, limit);
    int cap = (int)len + 3 + extra;
    if (!(r->toks = malloc(sizeof(int) * (size_t)cap))) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    r->cap = cap;
    return model_tokenize(s->tok, text, len, 1, 0, r->toks, cap, &r->n_prompt, err);
}

static int req_parse_generate(ms_t *s, ms_req_t *r, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__GenerateRequest *g = llmos__generate_request__unpack(NULL, msg->len, msg->data);
    if (!g) return llmos_error_set(err, LLMOS_EINVAL, "generate: the payload (%zu bytes) is not a GenerateRequest", msg->len);
    static const wire_field_t strs[] = {
        {1, "prompt", false}, {5, "stop", true}, {7, "request_id", false}, {10, "context", false}};
    int rc = wire_nul(msg, strs, 4, err);
    if (rc) goto out;
    model_sample_opts_t so = {.temperature = 0, .top_k = 0, .top_p = 1, .repetition_penalty = 1, .seed = 0};
    if (g->sampling) {
        so.temperature = g->sampling->temperature;
        so.top_k = (int)(g->sampling->top_k > (uint32_t)s->vocab ? (uint32_t)s->vocab : g->sampling->top_k);
        so.top_p = g->sampling->top_p;
        so.repetition_penalty = g->sampling->repetition_penalty;
        so.seed = g->sampling->seed;
    }
    if (!(so.temperature >= 0 && so.temperature <= 100)) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "sampling.temperature: %g is not in [0, 100]", so.temperature);
        goto out;
    }
    if (!(so.top_p >= 0 && so.top_p <= 1)) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "sampling.top_p: %g is not in [0, 1]", so.top_p);
        goto out;
    }
    if (so.top_p == 0) so.top_p = 1;
    if (!(so.repetition_penalty >= 0 && so.repetition_penalty <= 100)) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "sampling.repetition_penalty: %g is not in [0, 100]",
                             so.repetition_penalty);
        goto out;
    }
    if (so.repetition_penalty == 0) so.repetition_penalty = 1;
    if (g->n_stop > MS_MAX_STOPS) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "stop: %zu strings, at most %d", g->n_stop, MS_MAX_STOPS);
        goto out;
    }
    for (size_t i = 0; i < g->n_stop; i++) {
        size_t n = strlen(g->stop[i]);
        if (n == 0 || n > MS_MAX_STOP_LEN) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "stop[%zu]: %zu bytes (1..%d allowed)", i, n, MS_MAX_STOP_LEN);
            goto out;
        }
        if (!(r->stops[r->n_stops] = strdup(g->stop[i]))) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            goto out;
        }
        r->n_stops++;
    }
    if (g->request_id && strlen(g->request_id) > MS_MAX_REQUEST_ID) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "request_id: %zu bytes, at most %d", strlen(g->request_id),
                             MS_MAX_REQUEST_ID);
        goto out;
    }
    if (g->request_id && g->request_id[0] && !(r->request_id = strdup(g->request_id))) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        goto out;
    }
    r->stream = g->stream;
    r->echo = g->echo_prompt;
    /* The longest generation possible: positions up to seq_len, the last
     * sampled token never run (as llmos-generate).  max_tokens and
     * max_positions are unsigned on the wire: compared as such. */
    int extra = s->seq_len + 1, limit = s->seq_len;
    bool has_ctx = g->context && g->context[0];
    if (g->n_prompt_tokens) {
        if (has_ctx) {
            rc = llmos_error_set(err, LLMOS_EINVAL,
                                 "context: not allowed with prompt_tokens (send the prompt as text)");
            goto out;
        }
        if (g->n_prompt_tokens > (size_t)s->seq_len) {
            rc = llmos_error_set(err, LLMOS_ETOOBIG, "prompt_tokens: %zu tokens, more than seq_len %d",
                                 g->n_prompt_tokens, s->seq_len);
            goto out;
        }
        r->cap = (int)g->n_prompt_tokens + extra;
        if (!(r->toks = malloc(sizeof(int) * (size_t)r->cap))) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            goto out;
        }
        for (size_t i = 0; i < g->n_prompt_tokens; i++) {
            if (g->prompt_tokens[i] < 0 || g->prompt_tokens[i] >= s->vocab) {
                rc = llmos_error_set(err, LLMOS_EINVAL, "prompt_tokens[%zu]: %d is not a token id (vocab %d)", i,
                                     (int)g->prompt_tokens[i], s->vocab);
                goto out;
            }
            r->toks[i] = g->prompt_tokens[i];
        }
        r->n_prompt = (int)g->n_prompt_tokens;
        if (g->max_positions && g->max_positions < (uint32_t)limit) limit = (int)g->max_positions;
        if (r->n_prompt > limit) {
            rc = llmos_error_set(err, LLMOS_ETOOBIG, "the prompt is %d tokens, more than max_positions %d",
                                 r->n_prompt, limit);
            goto out;
        }
    } else {
        /* The prompt with the context lines that fit (model_prompt_fit: the
         * rule llmos-generate --graph follows). */
        const char *prompt = g->prompt ? g->prompt : "";
        model_prompt_fit_opts_t fo = {
            .seq_len = s->seq_len,
            .positions = g->max_positions > (uint32_t)s->seq_len ? s->seq_len : (int)g->max_positions,
            .max_new = g->max_tokens > (uint32_t)s->seq_len ? s->seq_len : (int)g->max_tokens,
            .extra = extra,
            .positions_name = "max_positions"};
        model_prompt_fit_t fit;
        rc = model_prompt_fit(s->tok, has_ctx ? g->context : NULL, has_ctx ? strlen(g->context) : 0, prompt,
                              strlen(prompt), &fo, &fit, err);
        if (rc) goto out;
        r->toks = fit.tokens;
        r->cap = fit.cap;
        r->n_prompt = fit.n_tokens;
        r->ctx_kept = fit.lines_kept;
        r->ctx_dropped = fit.lines_dropped;
        r->ctx_tokens = fit.context_tokens;
        limit = fit.limit;
        fit.tokens = NULL;
        model_prompt_fit_deinit(&fit);
        /* With context in front, echo the user's prompt only, as llmos-generate --graph does. */
        if (r->echo && r->ctx_kept && text_append(r, prompt, strlen(prompt))) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            goto out;
        }
    }
    r->n_toks = r->n_prompt;
    r->max_gen = limit - r->n_prompt + 1;
    if (g->max_tokens && g->max_tokens < (uint32_t)r->max_gen) r->max_gen = (int)g->max_tokens;
    if ((rc = model_sampler_new(s->vocab, &so, &r->smp, err))) goto out;
    if (!r->text) {
        r->text_cap = (size_t)r->max_gen * 8 + 64;
        if (!(r->text = malloc(r->text_cap))) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            goto out;
        }
        r->text[0] = 0;
    }

    if (r->echo && r->text_len == 0 && r->ctx_kept == 0) {
        int i0 = r->toks[0] == s->bos ? 1 : 0;
        for (int i = i0; i < r->n_prompt && rc == 0; i++) {
            size_t pl;
            const char *p = model_token_piece(s->tok, i ? r->toks[i - 1] : s->bos, r->toks[i], &pl);
            if (p) rc = text_append(r, p, pl);
        }
        if (rc) {
            llmos_error_set(err, rc, "no memory");
            goto out;
        }
    }
    r->gen_off = r->text_len;
out:
    llmos__generate_request__free_unpacked(g, NULL);
    return rc;
}

static int req_parse_embed(ms_t *s, ms_req_t *r, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__EmbedRequest *e = llmos__embed_request__unpack(NULL, msg->len, msg->data);
    if (!e) return llmos_error_set(err, LLMOS_EINVAL, "embed: the payload (%zu bytes) is not an EmbedRequest", msg->len);
    static const wire_field_t strs[] = {{1, "text", false}, {2, "pooling", false}};
    int rc = wire_nul(msg, strs, 2, err);
    if (rc) goto out;
    const char *pool = e->pooling && e->pooling[0] ? e->pooling : "mean";
    if (strcmp(pool, "mean") != 0 && strcmp(pool, "last") != 0) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "pooling: '%s' is not mean or last", pool);
        goto out;
    }
    r->mean = pool[0] == 'm';
    if ((rc = req_tokenize(s, r, "text", e->text ? e->text : "", s->seq_len, 0, err))) goto out;
    if (r->n_prompt > s->seq_len) {
        rc = llmos_error_set(err, LLMOS_ETOOBIG, "text: %d tokens, more than seq_len %d", r->n_prompt, s->seq_len);
        goto out;
    }
    r->n_toks = r->n_prompt;
    if (!(r->vec = calloc((size_t)s->dim, sizeof(float)))) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
out:
    llmos__embed_request__free_unpacked(e, NULL);
    return rc;
}

/* Classify (a ScoreRequest without labels): the text with BOS, cut at the
 * classifier's training length as llmos-eval cuts it; pooled like an
 * embedding (mean: every row of each prefill chunk; last: the last row). */
static int req_parse_classify(ms_t *s, ms_req_t *r, const char *text, uint32_t top_k, llmos_error_t *err) {
    if (!s->cls)
        return llmos_error_set(err, LLMOS_EINVAL, "labels: none given and no classifier is loaded (give 1..%d labels, "
                               "or start llmosd with --classifier DIR)", MS_MAX_LABELS);
    if (!text[0]) return llmos_error_set(err, LLMOS_EINVAL, "classify: the text is empty");
    r->kind = REQ_CLASSIFY;
    r->mean = !s->cls->pool_last;
    r->top_k = (int)(top_k > (uint32_t)s->cls->n_classes ? (uint32_t)s->cls->n_classes : top_k);
    int rc = req_tokenize(s, r, "prompt", text, 0, 0, err); /* cut below, as llmos-eval cuts it */
    if (rc) return rc;
    int limit = s->cls->seq < s->seq_len ? s->cls->seq : s->seq_len;
    if (r->n_prompt > limit) r->n_prompt = limit;
    r->n_toks = r->n_prompt;
    r->vec = calloc((size_t)s->dim, sizeof(float));
    r->lab_lp = calloc((size_t)s->cls->n_classes, sizeof(double));
    if (!r->vec || !r->lab_lp) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    return 0;
}

/* Each label's text is scored as the continuation of the prompt: the
 * tokens of prompt + label after the longest prefix they share with the
 * prompt's own tokens (so a BPE merge across the boundary is scored as the
 * model sees it).  All labels share toks[0..n_prompt), the shortest such
 * prefix, which runs once. */
static int req_parse_score(ms_t *s, ms_req_t *r, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__ScoreRequest *q = llmos__score_request__unpack(NULL, msg->len, msg->data);
    if (!q) return llmos_error_set(err, LLMOS_EINVAL, "score: the payload (%zu bytes) is not a ScoreRequest", msg->len);
    static const wire_field_t strs[] = {{1, "prompt", false}, {2, "labels", true}};
    int rc = wire_nul(msg, strs, 2, err);
    if (rc) goto out;
    const char *prompt = q->prompt ? q->prompt : "";
    size_t plen = strlen(prompt);
    if (q->n_labels == 0) {
        rc = req_parse_classify(s, r, prompt, q->top_k, err);
        goto out;
    }
    if (q->n_labels > MS_MAX_LABELS) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "labels: %zu given, 1..%d allowed", q->n_labels, MS_MAX_LABELS);
        goto out;
    }
    if ((rc = req_tokenize(s, r, "prompt", prompt, s->seq_len, 0, err))) goto out;
    if (r->n_prompt >= s->seq_len) { /* a label adds at least one token */
        rc = llmos_error_set(err, LLMOS_ETOOBIG, "prompt: %d tokens, no room for a label in seq_len %d",
                             r->n_prompt, s->seq_len);
        goto out;
    }
    const size_t room = (size_t)(s->seq_len - 1) * (size_t)model_tokenizer_max_piece(s->tok);
    int n = (int)q->n_labels;
    r->labels = calloc((size_t)n, sizeof *r->labels);
    r->lab_toks = calloc((size_t)n, sizeof *r->lab_toks);
    r->lab_n = calloc((size_t)n, sizeof *r->lab_n);
    r->lab_lp = calloc((size_t)n, sizeof *r->lab_lp);
    r->vec = malloc(sizeof(float) * (size_t)s->vocab);
    if (!r->labels || !r->lab_toks || !r->lab_n || !r->lab_lp || !r->vec) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        goto out;
    }
    int shared = r->n_prompt;
    for (int i = 0; i < n && rc == 0; i++, r->n_labels++) {
        size_t ll = strlen(q->labels[i]);
        if (ll == 0 || ll > MS_MAX_PROMPT_BYTES) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "labels[%d]: %zu bytes (1..%u allowed)", i, ll, MS_MAX_PROMPT_BYTES);
            break;
        }
        if (plen + ll + 1 > room) { /* cannot fit: refused before it is tokenized */
            rc = llmos_error_set(err, LLMOS_ETOOBIG,
                                 "labels[%d]: prompt + label are %zu bytes, more than seq_len %d "
                                 "tokens can hold",
                                 i, plen + ll, s->seq_len);
            break;
        }
        char *full = malloc(plen + ll + 1);
        r->labels[i] = strdup(q->labels[i]);
        int cap = (int)(plen + ll) + 3;
        r->lab_toks[i] = malloc(sizeof(int) * (size_t)cap);
        if (!full || !r->labels[i] || !r->lab_toks[i]) {
            free(full);
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            break;
        }
        memcpy(full, prompt, plen);
        memcpy(full + plen, q->labels[i], ll + 1);
        rc = model_tokenize(s->tok, full, plen + ll, 1, 0, r->lab_toks[i], cap, &r->lab_n[i], err);
        free(full);
        if (rc) break;
        int k = 0;
        while (k < r->n_prompt && k < r->lab_n[i] && r->lab_toks[i][k] == r->toks[k]) k++;
        if (k >= r->lab_n[i]) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "labels[%d]: '%s' adds no token to the prompt", i, q->labels[i]);
            break;
        }
        if (r->lab_n[i] > s->seq_len) {
            rc = llmos_error_set(err, LLMOS_ETOOBIG, "labels[%d]: prompt + label are %d tokens, more than seq_len %d",
                                 i, r->lab_n[i], s->seq_len);
            break;
        }
        if (k < shared) shared = k;
    }
    if (rc == 0 && shared < 1) shared = 1; /* BOS is always shared */
    r->n_prompt = r->n_toks = shared;
out:
    llmos__score_request__free_unpacked(q, NULL);
    return rc;
}

/* log p(t) under logits (vocab floats). */
static double log_prob(const float *logits, int vocab, int t) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(logits[i] - mx));
    return (double)(logits[t] - mx) - log(sum);
}

/* Blocks a request can ever hold: every position it will run. */
static int req_blocks(const ms_req_t *r) {
    int positions = r->kind == REQ_GENERATE ? r->n_prompt + r->max_gen - 1 : r->n_prompt;
    for (int i = 0; r->kind == REQ_SCORE && i < r->n_labels; i++)
        if (r->lab_n[i] - 1 > positions) positions = r->lab_n[i] - 1;
    return (positions + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK;
}

/* ---------------------------------------------------------------- the group */

static void group_check(ms_t *s);
static void load_answer(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg);

/* Sends the plan (ops since the last one + the batch) to every follower and
 * waits until each send completed.  LLMOS_EUNAVAILABLE when a follower is
 * gone or takes no plan for MS_PLAN_WAIT_MS. */
static int plan_send(ms_t *s, int kind, int ne, llmos_error_t *err) {
    int32_t *p = s->plan;
    int n_tok = 0;
    for (int i = 0; i < ne; i++) n_tok += s->ents[i].n_tokens;
    p[0] = kind;
    p[1] = s->n_ops / 3;
    p[2] = ne;
    p[3] = n_tok;
    int k = 4;
    memcpy(p + k, s->ops, sizeof(int32_t) * (size_t)s->n_ops);
    k += s->n_ops;
    for (int i = 0; i < ne; i++) {
        p[k++] = s->ents[i].seq;
        p[k++] = s->ents[i].n_tokens;
        p[k++] = s->want[i];
    }
    for (int i = 0; i < ne; i++) {
        memcpy(p + k, s->ents[i].tokens, sizeof(int32_t) * (size_t)s->ents[i].n_tokens);
        k += s->ents[i].n_tokens;
    }
    LLMOS_ASSERT(k <= s->plan_cap);
    s->n_ops = 0;
    /* Every follower acknowledges the plan before it runs it, so the leader
     * enters the forward's collectives only with followers that are alive
     * (a dead peer on shared memory would leave it waiting there forever). */
    int nf = s->tp - 1;
    for (int f = 1; f < s->tp; f++) {
        if (MPI_Irecv(&s->acks[f], 1, MPI_INT32_T, f, MS_ACK_TAG, s->comm, &s->sreqs[nf + f - 1]) != MPI_SUCCESS ||
            MPI_Isend(p, k, MPI_INT32_T, f, MS_PLAN_TAG, s->comm, &s->sreqs[f - 1]) != MPI_SUCCESS)
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "sending the plan to rank %d of the group failed", f);
    }
    uint64_t until = llmos_now_ns() + (uint64_t)MS_PLAN_WAIT_MS * 1000000u;
    for (uint32_t spins = 0;; spins++) {
        int done = 0;
        if (MPI_Testall(2 * nf, s->sreqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "sending the plan to the group failed");
        if (done) return 0;
        if ((spins & 255) == 255) group_check(s);
        if (!s->available || llmos_now_ns() > until) {
            for (int i = 0; i < 2 * nf; i++)
                if (s->sreqs[i] != MPI_REQUEST_NULL) {
                    MPI_Cancel(&s->sreqs[i]);
                    MPI_Request_free(&s->sreqs[i]);
                }
            if (!s->available) return llmos_error_set(err, LLMOS_EUNAVAILABLE, "%s", s->down_why);
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "a follower acknowledged no plan for %d ms",
                                   MS_PLAN_WAIT_MS);
        }
        struct timespec ts = {0, spins < 200 ? 5000 : 100000};
        nanosleep(&ts, NULL);
    }
}

/* Marks the group unavailable when the transport says a follower's node is
 * dead (it was seen alive once and is no more). */
static void group_check(ms_t *s) {
    if (s->tp <= 1 || !s->tr || !s->available) return;
    uint64_t now = llmos_now_ns();
    if (now < s->next_check_ns) return;
    s->next_check_ns = now + MS_GROUP_CHECK_NS;
    size_t n = cl_transport_peers(s->tr, s->peers, (size_t)s->peers_cap);
    if (n > (size_t)s->peers_cap) n = (size_t)s->peers_cap;
    for (int f = 1; f < s->tp; f++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(s->peers[i].endpoint, s->endpoints[f]) == 0 && s->peers[i].node_id && !s->peers[i].alive) {
                s->available = false;
                snprintf(s->down_why, sizeof s->down_why, "model group %d is unavailable: rank %d (%s) is down",
                         s->replica, f, s->endpoints[f]);
                LLMOS_ERROR("%s", s->down_why);
                return;
            }
}

static void group_down(ms_t *s, const char *why) {
    if (s->available) LLMOS_ERROR("model group %d is unavailable: %s", s->replica, why);
    s->available = false;
    snprintf(s->down_why, sizeof s->down_why, "model group %d is unavailable: %s", s->replica, why);
    fail_all(s, LLMOS_EUNAVAILABLE, s->down_why);
}

/* ---------------------------------------------------------------- the iteration */

static void expire(ms_t *s) {
    uint64_t wall = llmos_wall_ms();
    for (int i = 0; i < s->n_running;) {
        ms_req_t *r = s->running[i];
        if (r->deadline_ms && wall > r->deadline_ms)
            req_fail(s, r, LLMOS_ETIMEDOUT, "model: deadline passed after %d generated tokens", r->generated);
        else
            i++;
    }
    for (ms_req_t *r = s->q_head, *next; r; r = next) {
        next = r->next;
        if (r->deadline_ms && wall > r->deadline_ms) {
            queue_remove(s, r);
            req_fail(s, r, LLMOS_ETIMEDOUT, "model: deadline passed while queued (%d waiting)", s->n_queued);
        }
    }
}

static int admit(ms_t *s, llmos_error_t *err) {
    while (s->q_head && s->n_running < s->max_seqs && s->reserved + req_blocks(s->q_head) <= s->kv_total) {
        ms_req_t *r = s->q_head;
        queue_remove(s, r);
        int rc = model_seq_open(s->ctx, &r->seq, err);
        if (rc) { /* cannot happen while n_running < max_seqs; answer and go on */
            r->seq = -1;
            req_fail(s, r, rc, "model: %s", err->msg);
            continue;
        }
        op_log(s, OP_OPEN, r->seq, 0);
        r->blocks = req_blocks(r);
        s->reserved += r->blocks;
        r->t_admit_ns = llmos_now_ns();
        s->running[s->n_running++] = r;
    }
    return 0;
}

/* Score: label cur starts at the shared prefix; the prefix's own logits
 * (kept in r->vec) score its first token.  Labels of one token end at once. */
static bool score_label_start(ms_t *s, ms_req_t *r) {
    (void)s;
    for (; r->cur < r->n_labels; r->cur++) {
        const int *t = r->lab_toks[r->cur];
        r->lab_lp[r->cur] = r->vec[t[r->n_prompt]];
        r->lab_pos = r->n_prompt + 1;
        if (r->lab_pos < r->lab_n[r->cur]) return true;
    }
    return false;
}

/* Score: the logits after the last fed token. */
static void on_score(ms_t *s, ms_req_t *r, int i) {
    const float *lg = model_ctx_logits(s->ctx, i);
    llmos_error_t err;
    if (r->n_fed == r->n_prompt && r->cur == 0 && r->lab_pos == 0) { /* the shared prefix ran */
        float mx = lg[0];
        for (int v = 1; v < s->vocab; v++)
            if (lg[v] > mx) mx = lg[v];
        double sum = 0;
        for (int v = 0; v < s->vocab; v++) sum += exp((double)(lg[v] - mx));
        for (int v = 0; v < s->vocab; v++) r->vec[v] = (float)((double)(lg[v] - mx) - log(sum));
        if (!score_label_start(s, r)) req_finish(s, r, "done");
        return;
    }
    const int *t = r->lab_toks[r->cur];
    r->lab_lp[r->cur] += log_prob(lg, s->vocab, t[r->lab_pos]);
    if (++r->lab_pos < r->lab_n[r->cur]) return;
    /* Label done: back to the shared prefix for the next one. */
    model_seq_truncate(s->ctx, r->seq, r->n_prompt, &err);
    op_log(s, OP_TRUNC, r->seq, r->n_prompt);
    r->n_fed = r->n_prompt;
    r->cur++;
    if (!score_label_start(s, r)) req_finish(s, r, "done");
}

/* Consumes entry i's output for r (all its tokens are in the cache now). */
static void on_output(ms_t *s, ms_req_t *r, int i) {
    if (r->kind == REQ_SCORE) {
        on_score(s, r, i);
        return;
    }
    if (r->kind == REQ_EMBED || r->kind == REQ_CLASSIFY) {
        /* mean: after every chunk, each of its rows (want_rows); last: once, the last row. */
        int n = r->mean ? s->ents[i].n_tokens : 1;
        for (int j = 0; j < n; j++) {
            const float *h = r->mean ? model_ctx_hidden_row(s->ctx, i, j) : model_ctx_hidden(s->ctx, i);
            LLMOS_ASSERT(h);
            for (int d = 0; d < s->dim; d++) r->vec[d] += h[d];
        }
        r->pooled += n;
        if (r->n_fed == r->n_prompt) req_finish(s, r, "done");
        return;
    }
    memcpy(s->logits, model_ctx_logits(s->ctx, i), sizeof(float) * (size_t)s->vocab);
    int next = model_sampler_sample(r->smp, s->logits, r->toks, r->n_toks);
    if (!r->t_first_ns) r->t_first_ns = llmos_now_ns();
    if (next == s->bos || next == s->eos) {
        req_finish(s, r, "eos");
        return;
    }
    size_t pl = 0;
    const char *p = model_token_piece(s->tok, r->toks[r->n_toks - 1], next, &pl);
    LLMOS_ASSERT(r->n_toks < r->cap);
    r->toks[r->n_toks++] = next;
    r->generated++;
    s->tokens_generated++;
    if (p && text_append(r, p, pl) != 0) {
        req_fail(s, r, LLMOS_ENOMEM, "model: no memory for the text");
        return;
    }
    int hit = 0;
    size_t at = 0, hold = 0;
    if (r->n_stops)
        hold = model_stop_check((const char *const *)r->stops, r->n_stops, r->text + r->gen_off,
                                r->text_len - r->gen_off, &hit, &at);
    if (hit) {
        r->text_len = r->gen_off + at;
        r->text[r->text_len] = 0;
        req_finish(s, r, "stop");
        return;
    }
    if (r->generated >= r->max_gen) {
        req_finish(s, r, "length");
        return;
    }
    stream_chunk(s, r, r->text_len - hold);
}

/* One iteration; true while there is more to do. */
static bool leader_step(ms_t *s) {
    llmos_error_t err = {0};
    group_check(s);
    if (!s->available) {
        fail_all(s, LLMOS_EUNAVAILABLE, s->down_why);
        return false;
    }
    expire(s);
    admit(s, &err);
    if (s->n_running == 0) return false;
    int ne = 0, left = s->budget;
    for (int k = 0; k < s->n_running && left > 0; k++) { /* decode steps first: one row each */
        ms_req_t *r = s->running[k];
        if (r->n_fed < r->n_prompt) continue;
        const int *t = r->kind == REQ_SCORE ? &r->lab_toks[r->cur][r->lab_pos - 1] : r->toks + r->n_fed;
        s->ents[ne] = (model_batch_entry_t){r->seq, t, 1};
        s->want[ne] = 0;
        s->ereq[ne++] = r;
        left--;
    }
    for (int k = 0; k < s->n_running && left > 0; k++) { /* then prefill chunks */
        ms_req_t *r = s->running[k];
        if (r->n_fed >= r->n_prompt) continue;
        int n = r->n_prompt - r->n_fed;
        if (n > left) n = left;
        s->ents[ne] = (model_batch_entry_t){r->seq, r->toks + r->n_fed, n};
        s->want[ne] = (r->kind == REQ_EMBED || r->kind == REQ_CLASSIFY) && r->mean; /* every row's state is pooled */
        s->ereq[ne++] = r;
        left -= n;
    }
    if (ne == 0) return false;
    if (s->tp > 1 && plan_send(s, MS_PLAN_FORWARD, ne, &err) != 0) {
        group_down(s, err.msg);
        return false;
    }
    int rc = model_ctx_forward_rows(s->ctx, s->ents, ne, s->want, &err);
    if (rc == LLMOS_EUNAVAILABLE) {
        group_down(s, err.msg);
        return false;
    }
    if (rc) { /* refused before anything changed (checks are the same on every rank) */
        LLMOS_ERROR("model: forward of %d entries failed: %s", ne, err.msg);
        for (int i = 0; i < ne; i++) req_fail(s, s->ereq[i], rc, "model: %s", err.msg);
        return s->n_running > 0 || s->q_head;
    }
    s->iterations++;
    for (int i = 0; i < ne; i++) {
        ms_req_t *r = s->ereq[i];
        if (r->n_fed < r->n_prompt) s->prompt_tokens += (uint64_t)s->ents[i].n_tokens;
        r->n_fed += s->ents[i].n_tokens;
        /* Outputs wanted: the last row of the tokens so far; for a score
         * every label step; for a mean embedding every chunk's rows. */
        if (r->n_fed == r->n_toks || (r->kind == REQ_SCORE && r->n_fed > r->n_prompt) ||
            ((r->kind == REQ_EMBED || r->kind == REQ_CLASSIFY) && r->mean))
            on_output(s, r, i);
    }
    return s->n_running > 0 || s->q_head;
}

/* ---------------------------------------------------------------- followers */

/* Runs one plan from the leader; false when the group stops. */
static bool follower_run(ms_t *s, int count) {
    llmos_error_t err = {0};
    int32_t *p = s->plan;
    if (count < 4 || p[0] == MS_PLAN_STOP) return false;
    int n_ops = p[1], ne = p[2], n_tok = p[3];
    if (p[0] != MS_PLAN_FORWARD || n_ops < 0 || ne < 0 || ne > s->max_seqs || n_tok < 0 ||
        4 + 3 * n_ops + 3 * ne + n_tok != count) {
        LLMOS_ERROR("model follower: a malformed plan (%d ints)", count);
        return false;
    }
    const int32_t *op = p + 4;
    for (int i = 0; i < n_ops; i++, op += 3) {
        if (op[0] == OP_OPEN) {
            int seq;
            if (model_seq_open(s->ctx, &seq, &err) != 0 || seq != op[1]) {
                LLMOS_ERROR("model follower: slot %d opened where the leader has %d", seq, op[1]);
                return false;
            }
        } else if (op[0] == OP_CLOSE) {
            model_seq_close(s->ctx, op[1]);
        } else if (op[0] == OP_TRUNC) {
            model_seq_truncate(s->ctx, op[1], op[2], &err);
        }
    }
    const int32_t *e = op, *tok = op + 3 * ne;
    for (int i = 0; i < ne; i++) {
        s->ents[i] = (model_batch_entry_t){e[3 * i], tok, e[3 * i + 1]};
        s->want[i] = e[3 * i + 2] != 0;
        tok += e[3 * i + 1];
    }
    if (ne && model_ctx_forward_rows(s->ctx, s->ents, ne, s->want, &err) == LLMOS_EUNAVAILABLE) {
        LLMOS_ERROR("model follower: %s", err.msg);
        return false;
    }
    return true;
}

/* Polls for the next plan; sleeps a little longer each time nothing came. */
static bool follower_poll(ms_t *s) {
    if (s->stopped) return false;
    if (!s->posted) {
        if (MPI_Irecv(s->plan, s->plan_cap, MPI_INT32_T, 0, MS_PLAN_TAG, s->comm, &s->rreq) != MPI_SUCCESS) {
            s->stopped = true;
            return false;
        }
        s->posted = true;
    }
    int flag = 0;
    MPI_Status st;
    if (MPI_Test(&s->rreq, &flag, &st) != MPI_SUCCESS) {
        s->posted = false;
        s->stopped = true;
        return false;
    }
    if (!flag) {
        s->quiet_us = s->quiet_us ? (s->quiet_us < 1000 ? s->quiet_us * 2 : 1000) : 5;
        struct timespec ts = {0, (long)s->quiet_us * 1000};
        nanosleep(&ts, NULL);
        return true;
    }
    s->posted = false;
    s->quiet_us = 0;
    int count = 0, one = 1;
    MPI_Get_count(&st, MPI_INT32_T, &count);
    if (MPI_Send(&one, 1, MPI_INT32_T, 0, MS_ACK_TAG, s->comm) != MPI_SUCCESS) {
        s->stopped = true;
        return false;
    }
    if (!follower_run(s, count)) {
        s->stopped = true;
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- the actor */

/* The buffers of the iteration: sized by max_seqs, the budget and tp only,
 * so they are made once at start-up and outlive every model load. */
static int ms_buffers_new(ms_t *s, llmos_error_t *err) {
    s->ops_cap = 3 * 4 * s->max_seqs + 12;
    s->plan_cap = 4 + s->ops_cap + 3 * s->max_seqs + s->budget;
    s->peers_cap = 256;
    s->ents = calloc((size_t)s->max_seqs, sizeof *s->ents);
    s->want = calloc((size_t)s->max_seqs, sizeof *s->want);
    s->ereq = calloc((size_t)s->max_seqs, sizeof *s->ereq);
    s->running = calloc((size_t)s->max_seqs, sizeof *s->running);
    s->plan = malloc(sizeof(int32_t) * (size_t)s->plan_cap);
    s->ops = malloc(sizeof(int32_t) * (size_t)s->ops_cap);
    s->sreqs = calloc((size_t)s->tp * 2, sizeof *s->sreqs);
    s->acks = calloc((size_t)s->tp, sizeof *s->acks);
    s->peers = calloc((size_t)s->peers_cap, sizeof *s->peers);
    if (!s->ents || !s->want || !s->ereq || !s->running || !s->plan || !s->ops || !s->sreqs || !s->acks ||
        !s->peers)
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the model actor's buffers");
    return 0;
}

/* Drops the served model's context (the model itself: see unload). */
static void ms_unbuild(ms_t *s) {
    model_ctx_destroy(&s->ctx);
    free(s->logits);
    s->logits = NULL;
    s->tok = NULL;
    s->n_ops = 0;
    s->loaded = false;
}

static void stage_drop(ms_stage_t *st) {
    model_ctx_destroy(&st->ctx);
    model_destroy(&st->m);
    actors_cls_destroy(&st->cls);
    free(st->path);
    free(st->logits);
    memset(st, 0, sizeof *st);
}

/* Finds a name given to llmosd or LOAD (as given, else in the models
 * folder) into buf; "" and NULL stay NULL.  role names it in errors. */
static int find_file(const char *role, const char *name, char *buf, size_t n, const char **out,
                     llmos_error_t *err) {
    *out = NULL;
    if (!name || !name[0]) return 0;
    int rc = llmos_path_find(name, LLMOS_PATH_MODELS, buf, n, err);
    if (rc) {
        llmos_error_prefix(err, "%s ", role);
        return rc;
    }
    *out = buf;
    return 0;
}

/* Loads this rank's slice of a model (path; with a classifier: the body its
 * checkpoint gives, path and tokenizer then override the checkpoint's base
 * model), checks it can be served (a tokenizer, the classifier's width)
 * and builds its inference context — everything the served model does not
 * need, so a failure leaves the node serving what it served.  Names are
 * found as llmos_path_find finds them.  st is filled (stage_drop). */
static int stage_load(ms_t *s, const char *path, const char *tokenizer, bool q8, const char *classifier,
                      ms_stage_t *st, llmos_error_t *err) {
    memset(st, 0, sizeof *st);
    char pbuf[4096], tbuf[4096], cbuf[4096];
    int rc = find_file("model", path, pbuf, sizeof pbuf, &path, err);
    if (!rc) rc = find_file("tokenizer", tokenizer, tbuf, sizeof tbuf, &tokenizer, err);
    if (!rc) rc = find_file("classifier", classifier, cbuf, sizeof cbuf, &classifier, err);
    if (rc) return rc;
    if (!path && !classifier)
        return llmos_error_set(err, LLMOS_EINVAL, "no model file and no classifier given");
    if (classifier) {
        if ((rc = actors_cls_open(classifier, path, tokenizer, &st->cls, err))) return rc;
        path = st->cls->load_path;
        tokenizer = st->cls->tokenizer;
    }
    /* a temporary file's name means nothing */
    if (!(st->path = strdup(st->cls && st->cls->temp ? classifier : path))) {
        stage_drop(st);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    model_load_opts_t lo = {.tokenizer_path = tokenizer,
                            .quantize = q8 ? MODEL_DTYPE_Q8_0 : MODEL_DTYPE_F32,
                            .tp_rank = s->grank,
                            .tp_size = s->tp};
    rc = model_load(path, &lo, &st->m, err);
    actors_cls_drop_temp(st->cls); /* mapped (or read) by now; nothing stays on disk */
    const model_config_t *cfg = rc ? NULL : model_config(st->m);
    if (!rc && st->cls && cfg->dim != st->cls->dim)
        rc = llmos_error_set(err, LLMOS_EINVAL,
                             "classifier %s: its head takes %d values, the model's dim is %d", classifier,
                             st->cls->dim, cfg->dim);
    if (!rc && !model_tokenizer(st->m))
        rc = llmos_error_set(err, LLMOS_EINVAL, "model %s has no tokenizer (give --tokenizer)", st->path);
    if (!rc) {
        /* Default pool: max_seqs full-length sequences, but at most 512 MiB. */
        size_t block_bytes = (size_t)cfg->n_layers * 2 * MODEL_KV_BLOCK *
                             (size_t)(cfg->n_kv_heads * cfg->head_dim) * sizeof(float) / (size_t)s->tp;
        int per_seq = (cfg->seq_len + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK;
        st->kv_blocks = s->kv_opt;
        if (!st->kv_blocks) {
            size_t want = (size_t)s->max_seqs * (size_t)per_seq,
                   cap = ((size_t)512 << 20) / (block_bytes ? block_bytes : 1);
            st->kv_blocks = (int)(want < cap ? want : cap);
            if (st->kv_blocks < per_seq) st->kv_blocks = per_seq;
        }
        model_ctx_opts_t co = {.threads = s->threads,
                               .max_seqs = s->max_seqs,
                               .max_tokens = s->budget,
                               .kv_blocks = st->kv_blocks,
                               .tp = s->tpg};
        rc = model_ctx_new(st->m, &co, &st->ctx, err);
    }
    if (!rc && !(st->logits = malloc(sizeof(float) * (size_t)cfg->vocab_size)))
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for %d logits", cfg->vocab_size);
    if (rc) stage_drop(st);
    return rc;
}

/* Serves the staged model (the rank holds none now: unload first); st is
 * emptied.  Cannot fail: everything was made by stage_load. */
static void stage_commit(ms_t *s, ms_stage_t *st) {
    LLMOS_ASSERT(!s->loaded && !s->m && st->m);
    const model_config_t *cfg = model_config(st->m);
    s->m = st->m;
    s->cls = st->cls;
    free(s->path);
    s->path = st->path;
    s->ctx = st->ctx;
    s->logits = st->logits;
    s->kv_blocks = st->kv_blocks;
    memset(st, 0, sizeof *st);
    s->tok = model_tokenizer(s->m);
    s->vocab = cfg->vocab_size;
    s->dim = cfg->dim;
    s->seq_len = cfg->seq_len;
    s->bos = model_tokenizer_bos(s->tok);
    s->eos = model_tokenizer_eos(s->tok);
    int used;
    size_t bb;
    model_ctx_kv_usage(s->ctx, &used, &s->kv_total, &bb);
    s->n_ops = 0;
    s->stopped = false;
    s->posted = false;
    s->quiet_us = 0;
    s->available = true;
    s->loaded = true;
    LLMOS_INFO("model %s: replica %d rank %d of %d, %d slots, %d KV blocks, budget %d rows", s->path,
               s->replica, s->grank, s->tp, s->max_seqs, s->kv_total, s->budget);
}

static int ms_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    *state = arg;
    return 0;
}

static void ms_free(ms_t *s) {
    ms_unbuild(s);
    stage_drop(&s->staged);
    model_destroy(&s->m);
    actors_cls_destroy(&s->cls);
    model_tp_destroy(&s->tpg);
    if (s->comm != MPI_COMM_NULL) MPI_Comm_free(&s->comm);
    rt_msg_free(s->load_req);
    free(s->ents);
    free(s->want);
    free(s->ereq);
    free(s->running);
    free(s->plan);
    free(s->ops);
    free(s->sreqs);
    free(s->acks);
    free(s->peers);
    free(s->load_corr);
    free(s->endpoints);
    free(s->path);
    free(s);
}

/* Stops the followers: the leader sends STOP; a follower keeps running the
 * plans that still come until STOP (bounded), so a leader in the middle of
 * an iteration is never left alone inside a collective. */
static void group_stop(ms_t *s) {
    llmos_error_t err;
    if (s->tp <= 1) return;
    if (s->grank == 0) {
        if (s->loaded && s->available && !s->shut) plan_send(s, MS_PLAN_STOP, 0, &err);
        return;
    }
    if (!s->loaded) return;
    uint64_t until = llmos_now_ns() + 10000000000ull;
    while (!s->stopped && llmos_now_ns() < until) follower_poll(s);
    if (s->posted) {
        MPI_Cancel(&s->rreq);
        MPI_Wait(&s->rreq, MPI_STATUS_IGNORE);
        s->posted = false;
    }
}

static void ms_deinit(rt_ctx_t *ctx, void *state) {
    ms_t *s = state;
    if (s->grank == 0) fail_all(s, LLMOS_EUNAVAILABLE, "model: the node is shutting down");
    if (s->load_req) {
        rt_reply_error(ctx, s->load_req, LLMOS_EUNAVAILABLE, "model: the node is shutting down");
        rt_msg_free(s->load_req);
        s->load_req = NULL;
    }
    group_stop(s);
    ms_free(s);
}

static void reply_stats(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    Llmos__ModelStats st = LLMOS__MODEL_STATS__INIT;
    int used = 0, total = 0;
    size_t bb;
    if (s->ctx) model_ctx_kv_usage(s->ctx, &used, &total, &bb);
    st.model = s->loaded ? s->path : "";
    st.replica = (uint32_t)s->replica;
    st.tp = (uint32_t)s->tp;
    st.available = s->loaded && s->available && !s->shut;
    st.running = (uint32_t)s->n_running;
    st.queued = (uint32_t)s->n_queued;
    st.kv_blocks_used = (uint32_t)used;
    st.kv_blocks_total = (uint32_t)total;
    st.requests_done = s->requests_done;
    st.tokens_generated = s->tokens_generated;
    st.iterations = s->iterations;
    st.prompt_tokens = s->prompt_tokens;
    st.rejected_overloaded = s->rejected;
    st.token_budget = (uint32_t)s->budget;
    st.queue_limit = (uint32_t)s->queue_limit;
    st.vocab_size = (uint32_t)s->vocab;
    st.seq_len = (uint32_t)s->seq_len;
    st.kv_block_tokens = MODEL_KV_BLOCK;
    st.dim = (uint32_t)s->dim;
    if (s->loaded && s->cls) {
        st.classifier = s->cls->dir;
        st.classes = (uint32_t)s->cls->n_classes;
        st.classifier_version = (uint32_t)s->cls->version;
    }
    reply_packed(ctx, msg, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, &st.base);
}

static void handle_cancel(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    Llmos__CancelRequest *c = llmos__cancel_request__unpack(NULL, msg->len, msg->data);
    if (!c) {
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "cancel: the payload (%zu bytes) is not a CancelRequest", msg->len);
        return;
    }
    static const wire_field_t strs[] = {{2, "request_id", false}};
    llmos_error_t err = {0};
    if (wire_nul(msg, strs, 1, &err)) {
        llmos__cancel_request__free_unpacked(c, NULL);
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "cancel: %s", err.msg);
        return;
    }
    if (!c->correlation_id && !(c->request_id && c->request_id[0])) {
        llmos__cancel_request__free_unpacked(c, NULL);
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "cancel: give correlation_id or request_id");
        return;
    }
    ms_req_t *hit = NULL;
#define MATCHES(r)                                                                                                    \
    ((c->correlation_id && (r)->corr == c->correlation_id && (r)->asker.node == msg->from.node) ||                    \
     (c->request_id && c->request_id[0] && (r)->request_id && strcmp((r)->request_id, c->request_id) == 0))
    for (int i = 0; i < s->n_running && !hit; i++)
        if (MATCHES(s->running[i])) hit = s->running[i];
    for (ms_req_t *r = s->q_head; r && !hit; r = r->next)
        if (MATCHES(r)) {
            hit = r;
            queue_remove(s, r);
        }
#undef MATCHES
    llmos__cancel_request__free_unpacked(c, NULL);
    if (hit) req_fail(s, hit, LLMOS_ECANCELED, "model: cancelled after %d generated tokens", hit->generated);
    Llmos__CancelResult cr = LLMOS__CANCEL_RESULT__INIT;
    cr.found = hit != NULL;
    reply_packed(ctx, msg, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL, &cr.base);
}

static void handle_request(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg, req_kind_t kind) {
    if (!s->loaded || !s->available || s->shut) {
        rt_reply_error(ctx, msg, LLMOS_EUNAVAILABLE, "%s",
                       s->shut       ? "model: the group was shut down"
                       : s->load_req ? "model: a model is being loaded"
                       : !s->loaded  ? "model: no model is loaded (load one: llmos model load PATH)"
                                     : s->down_why);
        return;
    }
    /* The limit counts requests that will really wait: those the next
     * admission can start (free slots) do not, however many arrived before
     * the loop ran it. */
    int free_slots = s->max_seqs - s->n_running > 0 ? s->max_seqs - s->n_running : 0;
    if (s->n_queued - free_slots >= s->queue_limit) {
        s->rejected++;
        double per = s->avg_req_ms > 0 ? s->avg_req_ms : 100;
        unsigned after = (unsigned)(per * (double)(s->n_queued + 1) / (double)s->max_seqs) + 1;
        rt_reply_error(ctx, msg, LLMOS_EOVERLOADED,
                       "overloaded: queue full (%d waiting, limit %d, %d running), retry after %u ms", s->n_queued,
                       s->queue_limit, s->n_running, after);
        return;
    }
    llmos_error_t err = {0};
    ms_req_t *r = req_new(msg, kind);
    if (!r) {
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "model: no memory for a request");
        return;
    }
    int rc = kind == REQ_GENERATE ? req_parse_generate(s, r, msg, &err)
             : kind == REQ_SCORE  ? req_parse_score(s, r, msg, &err)
                                  : req_parse_embed(s, r, msg, &err);
    if (rc == 0 && req_blocks(r) > s->kv_total)
        rc = llmos_error_set(&err, LLMOS_ETOOBIG, "the request needs %d KV blocks, the pool has %d (start with more --kv-blocks)",
                             req_blocks(r), s->kv_total);
    if (rc) {
        rt_reply_error(ctx, msg, rc, "model: %s", err.msg);
        req_free(r);
        return;
    }
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
}

/* ---------------------------------------------------------------- control */

/* The ref of follower rank f's actor (on its node, named model/<r>/<f>). */
static int follower_ref(ms_t *s, int f, char *name, size_t cap, rt_ref_t *out) {
    cl_peer_info_t peers[64];
    size_t n = s->tr ? cl_transport_peers(s->tr, peers, 64) : 0;
    if (n > 64) n = 64;
    snprintf(name, cap, "model/%d/%d", s->replica, f);
    for (size_t i = 0; i < n; i++)
        if (strcmp(peers[i].endpoint, s->endpoints[f]) == 0 && peers[i].node_id && peers[i].alive) {
            *out = rt_ref_name(peers[i].node_id, name);
            return 0;
        }
    return LLMOS_EUNAVAILABLE;
}

/* Drops the model on this rank; the leader first answers every request,
 * stops the followers' plan loop and tells them (a message, not MPI). */
static void unload(ms_t *s, rt_ctx_t *ctx, const char *why) {
    if (s->grank == 0) {
        fail_all(s, LLMOS_EUNAVAILABLE, why);
        group_stop(s);
        for (int f = 1; f < s->tp && s->loaded; f++) {
            char name[32];
            rt_ref_t ref;
            if (follower_ref(s, f, name, sizeof name, &ref) == 0)
                rt_tell(ctx, ref, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD, NULL, 0);
        }
    } else if (s->posted) {
        MPI_Cancel(&s->rreq);
        MPI_Wait(&s->rreq, MPI_STATUS_IGNORE);
        s->posted = false;
    }
    ms_unbuild(s);
    model_destroy(&s->m);
    actors_cls_destroy(&s->cls);
}

/* Tells every follower of the group type (COMMIT, ABORT); a follower that
 * cannot be reached is skipped (the group finds it dead). */
static void tell_followers(ms_t *s, rt_ctx_t *ctx, uint32_t type) {
    for (int f = 1; f < s->tp; f++) {
        char name[32];
        rt_ref_t ref;
        if (follower_ref(s, f, name, sizeof name, &ref) == 0) rt_tell(ctx, ref, type, NULL, 0);
    }
}

/* Answers a LOAD that failed: the model served before (if any) still is. */
static void load_refused(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg, int rc, const char *why) {
    if (s->loaded)
        rt_reply_error(ctx, msg, rc, "load: %s (still serving %s)", why, s->path);
    else
        rt_reply_error(ctx, msg, rc, "load: %s", why);
}

/* The strings of a ModelLoadRequest may hold no NUL (see wire_nul). */
static int load_check(const rt_msg_t *msg, llmos_error_t *err);

/* LOAD: replaces the model, or changes nothing.  The new model is staged
 * next to the served one (stage_load) and swapped in only when it loaded
 * and validated on every rank: a single rank swaps at once; a follower
 * stages and answers, and swaps at its leader's COMMIT (drops it at ABORT);
 * the leader of a group asks every follower, stages its own slice, pauses
 * its iterations and decides when all have answered (load_answer).  Until
 * then the served model keeps its requests (they wait while a group loads);
 * a successful swap answers the requests of the old model with
 * LLMOS_EUNAVAILABLE. */
static void handle_load(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    if (s->shut || s->load_req) {
        rt_reply_error(ctx, msg, LLMOS_ESTATE, "model: %s", s->shut ? "the group was shut down" : "a load is in progress");
        return;
    }
    llmos_error_t err = {0};
    Llmos__ModelLoadRequest *q = llmos__model_load_request__unpack(NULL, msg->len, msg->data);
    int rc = !q ? llmos_error_set(&err, LLMOS_EINVAL, "the payload (%zu bytes) is not a ModelLoadRequest",
                                  msg->len)
             : (!q->path || !q->path[0]) && (!q->classifier || !q->classifier[0])
                 ? llmos_error_set(&err, LLMOS_EINVAL, "path is empty (and no classifier given)")
                 : load_check(msg, &err);
    if (rc) {
        load_refused(s, ctx, msg, rc, err.msg);
        if (q) llmos__model_load_request__free_unpacked(q, NULL);
        return;
    }
    if (s->grank != 0) { /* a follower: stage, answer, wait for COMMIT / ABORT */
        stage_drop(&s->staged);
        rc = stage_load(s, q->path, q->tokenizer, q->q8, q->classifier, &s->staged, &err);
        llmos__model_load_request__free_unpacked(q, NULL);
        if (rc)
            rt_reply_error(ctx, msg, rc, "%s", err.msg);
        else
            rt_reply(ctx, msg, msg->type, NULL, 0);
        return;
    }
    if (s->tp == 1) {
        ms_stage_t st;
        rc = stage_load(s, q->path, q->tokenizer, q->q8, q->classifier, &st, &err);
        llmos__model_load_request__free_unpacked(q, NULL);
        if (rc) {
            load_refused(s, ctx, msg, rc, err.msg);
            return;
        }
        if (s->loaded) unload(s, ctx, "model: the model was replaced");
        stage_commit(s, &st);
        reply_stats(s, ctx, msg);
        return;
    }
    rt_msg_init_t in = {.to = msg->to,
                        .from = msg->from,
                        .type = msg->type,
                        .corr = msg->corr,
                        .deadline_ms = msg->deadline_ms,
                        .data = msg->data,
                        .len = msg->len};
    if (!(s->load_corr = calloc((size_t)s->tp, sizeof *s->load_corr)) || !(s->load_req = rt_msg_new(&in))) {
        free(s->load_corr);
        s->load_corr = NULL;
        llmos__model_load_request__free_unpacked(q, NULL);
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "load: no memory");
        return;
    }
    s->load_failed = 0;
    s->load_pending = 0;
    for (int f = 1; f < s->tp; f++) {
        char name[32];
        rt_ref_t ref;
        rc = follower_ref(s, f, name, sizeof name, &ref);
        if (rc == 0)
            rc = rt_ask(ctx, ref, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, msg->data, msg->len, 600000,
                        &s->load_corr[f]);
        if (rc) {
            s->load_failed = rc;
            snprintf(s->load_err, sizeof s->load_err, "rank %d (%s) cannot be asked: %s", f, s->endpoints[f],
                     llmos_strerror(rc));
        } else {
            s->load_pending++;
        }
    }
    /* The leader's own slice loads while the followers load theirs. */
    stage_drop(&s->staged);
    if (!s->load_failed &&
        (rc = stage_load(s, q->path, q->tokenizer, q->q8, q->classifier, &s->staged, &err))) {
        s->load_failed = rc;
        snprintf(s->load_err, sizeof s->load_err, "%s", err.msg);
    }
    llmos__model_load_request__free_unpacked(q, NULL);
    if (s->load_pending == 0) load_answer(s, ctx, NULL);
}

/* A follower's answer to LOAD (msg), or NULL when none is awaited any more.
 * When every follower answered: all staged -> the group swaps (COMMIT);
 * else every staged slice is dropped (ABORT) and the old model serves on. */
static void load_answer(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    if (!s->load_req || !s->load_corr) return;
    if (msg) {
        int f = 1;
        while (f < s->tp && s->load_corr[f] != msg->corr) f++;
        if (f == s->tp) return; /* not ours */
        s->load_corr[f] = 0;
        s->load_pending--;
        if (msg->status && !s->load_failed) {
            s->load_failed = msg->status;
            snprintf(s->load_err, sizeof s->load_err, "rank %d: %s", f,
                     msg->error ? msg->error : llmos_strerror(msg->status));
        }
        if (s->load_pending > 0) return;
    }
    rt_msg_t *req = s->load_req;
    s->load_req = NULL;
    free(s->load_corr);
    s->load_corr = NULL;
    if (s->load_failed) {
        stage_drop(&s->staged);
        tell_followers(s, ctx, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_ABORT);
        load_refused(s, ctx, req, s->load_failed, s->load_err);
    } else {
        if (s->loaded) unload(s, ctx, "model: the model was replaced");
        tell_followers(s, ctx, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_COMMIT);
        stage_commit(s, &s->staged);
        reply_stats(s, ctx, req);
    }
    rt_msg_free(req);
}

/* A follower: the leader's verdict on the staged slice. */
static void follower_load_end(ms_t *s, rt_ctx_t *ctx, bool commit) {
    if (!commit) {
        stage_drop(&s->staged);
        return;
    }
    if (!s->staged.m) {
        LLMOS_ERROR("model/%d/%d: COMMIT without a staged model (the group cannot serve)", s->replica,
                    s->grank);
        return;
    }
    if (s->loaded) unload(s, ctx, "model: the model was replaced");
    stage_commit(s, &s->staged);
}

static int ms_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    ms_t *s = state;
    if (msg->flags & RT_MSG_REPLY) {
        load_answer(s, ctx, msg);
        return 0;
    }
    switch (msg->type) {
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS:
        reply_stats(s, ctx, msg);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SHUTDOWN:
        if (!s->shut) {
            if (s->load_req) {
                rt_reply_error(ctx, s->load_req, LLMOS_EUNAVAILABLE, "model: the group was shut down");
                rt_msg_free(s->load_req);
                s->load_req = NULL;
            }
            unload(s, ctx, "model: the group was shut down");
            stage_drop(&s->staged);
            s->shut = true;
        }
        rt_reply(ctx, msg, msg->type, NULL, 0);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD:
        if (s->load_req) {
            rt_reply_error(ctx, msg, LLMOS_ESTATE, "model: a load is in progress");
            return 0;
        }
        unload(s, ctx, "model: the model was unloaded");
        reply_stats(s, ctx, msg);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD:
        handle_load(s, ctx, msg);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_COMMIT:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_ABORT:
        if (s->grank != 0 && !s->shut)
            follower_load_end(s, ctx, msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_COMMIT);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL:
        if (s->grank != 0) {
            rt_reply_error(ctx, msg, LLMOS_EINVAL, "model/%d/%d is a follower: send requests to model/%d", s->replica,
                           s->grank, s->replica);
            return 0;
        }
        if (msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL)
            handle_cancel(s, ctx, msg);
        else
            handle_request(s, ctx, msg,
                           msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE ? REQ_GENERATE
                           : msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE  ? REQ_SCORE
                                                                                  : REQ_EMBED);
        return 0;
    default:
        return LLMOS_EUNKNOWNTYPE;
    }
}

static bool ms_idle(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    ms_t *s = state;
    if (s->shut || !s->loaded) return false;
    if (s->grank == 0 && s->load_req) return false; /* the group loads: the followers take no plan */
    return s->grank == 0 ? leader_step(s) : follower_poll(s);
}

/* ---------------------------------------------------------------- start-up */

int actors_model_start(rt_system_t *sys, cl_transport_t *tr, const actors_model_opts_t *o, bool mpi_on,
                       llmos_error_t *err) {
    int tp = o->tp > 0 ? o->tp : 1, world = 1, wrank = 0;
    if (mpi_on) {
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    }
    if (tp > 1 && !mpi_on)
        return llmos_error_set(err, LLMOS_EINVAL, "--tp %d needs MPI: start with mpirun -np N (a multiple of %d)", tp, tp);
    if (world % tp != 0)
        return llmos_error_set(err, LLMOS_EINVAL, "--tp %d does not divide the %d MPI ranks (mpirun -np must be a multiple of %d)",
                               tp, world, tp);
    ms_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    s->sys = sys;
    s->tr = tr;
    s->comm = MPI_COMM_NULL;
    s->tp = tp;
    s->replica = wrank / tp;
    s->grank = wrank % tp;
    s->max_seqs = o->max_seqs > 0 ? o->max_seqs : 32;
    s->budget = o->token_budget > 0 ? o->token_budget : 256;
    if (s->budget < s->max_seqs) s->budget = s->max_seqs;
    s->queue_limit = o->queue_limit > 0 ? o->queue_limit : 1024;
    s->threads = o->threads > 0 ? o->threads : 1;
    int rc = 0;
    if (tp > 1) { /* the group: tp consecutive world ranks; their node endpoints, to watch them */
        if (MPI_Comm_split(MPI_COMM_WORLD, s->replica, s->grank, &s->comm) != MPI_SUCCESS) {
            rc = llmos_error_set(err, LLMOS_EUNAVAILABLE, "MPI_Comm_split into replicas of %d failed", tp);
            goto fail;
        }
        MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
        if (!(s->endpoints = calloc((size_t)tp, sizeof *s->endpoints))) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            goto fail;
        }
        char mine[CL_ENDPOINT_MAX] = {0};
        if (tr) snprintf(mine, sizeof mine, "%s", cl_transport_endpoint(tr));
        if (MPI_Allgather(mine, CL_ENDPOINT_MAX, MPI_CHAR, s->endpoints, CL_ENDPOINT_MAX, MPI_CHAR, s->comm) !=
            MPI_SUCCESS) {
            rc = llmos_error_set(err, LLMOS_EUNAVAILABLE, "MPI_Allgather of the group's endpoints failed");
            goto fail;
        }
        if ((rc = model_tp_new(s->comm, &s->tpg, err))) goto fail;
    }
    s->kv_opt = o->kv_blocks;
    if ((rc = ms_buffers_new(s, err))) goto fail;
    ms_stage_t st;
    if ((rc = stage_load(s, o->model, o->tokenizer, o->q8, o->classifier, &st, err))) goto fail;
    stage_commit(s, &st);
    char names[3][32];
    snprintf(names[0], sizeof names[0], "model/%d/%d", s->replica, s->grank);
    snprintf(names[1], sizeof names[1], "model/%d", s->replica);
    snprintf(names[2], sizeof names[2], "model");
    rt_actor_def_t def = {.kind = "model", .init = ms_init, .receive = ms_receive, .deinit = ms_deinit, .idle = ms_idle};
    rt_spawn_opts_t so = {.name = names[0], .pinned = true};
    rt_ref_t ref;
    if ((rc = rt_spawn(sys, &def, s, &so, &ref, err))) goto fail;
    /* From here the actor owns s (its deinit frees it). */
    if (s->grank == 0) {
        if ((rc = rt_register(sys, names[1], ref)) != 0)
            return llmos_error_set(err, rc, "registering %s: %s", names[1], llmos_strerror(rc));
        if (s->replica == 0 && (rc = rt_register(sys, names[2], ref)) != 0)
            return llmos_error_set(err, rc, "registering %s: %s", names[2], llmos_strerror(rc));
    }
    return 0;
fail:
    ms_free(s);
    return rc;
}
