/*
 * serve.c — the serving core (serve.h): the queue and admission, the
 * iteration's plan, consuming a forward's outputs, the events, KV block
 * accounting, and a follower's side of the plan.  Requests are parsed in
 * serve_req.c; the plan's wire form is serve_plan.c.
 *
 * KV accounting.  A request's worst case (serve_req_blocks) is reserved
 * when it is admitted and returned when it leaves; the context's pool
 * (model_ctx_new) holds kv_total blocks, so reserved <= kv_total always
 * and model_ctx_forward never runs out of blocks for an admitted request.
 *
 * Followers.  With a plan kept (a tensor-parallel group), every sequence
 * operation of the leader's context (open, close, truncate) is logged in
 * order; serve_step_wire sends the log since the last plan with the batch,
 * so a follower's context goes through the same operations and gets the
 * same slot ids.  Between two plans a slot is opened at most once and
 * closed at most once per request that held it, plus one truncation per
 * scoring request: serve_plan_max_ops(max_seqs) bounds the log.
 *
 * Time: every function that needs it takes a serve_time_t; nothing here
 * reads a clock.
 */
#include "model/serve_internal.h"

#include "runtime/base/log.h"
#include "runtime/base/paths.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- set-up */

void serve_opts_resolve(serve_opts_t *o) {
    if (o->threads <= 0) o->threads = 1;
    if (o->max_seqs <= 0) o->max_seqs = 32;
    if (o->token_budget <= 0) o->token_budget = 256;
    if (o->token_budget < o->max_seqs) o->token_budget = o->max_seqs;
    if (o->queue_limit <= 0) o->queue_limit = 1024;
    if (o->kv_blocks < 0) o->kv_blocks = 0;
}

/* Makes s serve m with o (s->name set by the caller). */
static int core_init(serve_t *s, const model_t *m, const serve_opts_t *o_in, llmos_error_t *err) {
    serve_opts_t o = *o_in;
    serve_opts_resolve(&o);
    const model_config_t *cfg = model_config(m);
    int tp_size = 1;
    model_tp_part(m, NULL, &tp_size);
    if (o.cls && cfg->dim != o.cls->dim)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "classifier %s: its head takes %d values, the model's dim is %d", o.cls->dir,
                               o.cls->dim, cfg->dim);
    if (!model_tokenizer(m))
        return llmos_error_set(err, LLMOS_EINVAL, "model %s has no tokenizer (give --tokenizer)",
                               s->name && s->name[0] ? s->name : "(unnamed)");
    s->m = m;
    s->cls = o.cls;
    s->max_seqs = o.max_seqs;
    s->budget = o.token_budget;
    s->queue_limit = o.queue_limit;
    s->plan_on = o.plan || tp_size > 1;
    s->sink = o.sink;
    s->sink_arg = o.sink_arg;
    /* Default pool: max_seqs full-length sequences, but at most 512 MiB. */
    size_t block_bytes = (size_t)cfg->n_layers * 2 * MODEL_KV_BLOCK *
                         (size_t)(cfg->n_kv_heads * cfg->head_dim) * sizeof(float) / (size_t)tp_size;
    int per_seq = (cfg->seq_len + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK, kv_blocks = o.kv_blocks;
    if (!kv_blocks) {
        size_t want = (size_t)o.max_seqs * (size_t)per_seq,
               cap = ((size_t)512 << 20) / (block_bytes ? block_bytes : 1);
        kv_blocks = (int)(want < cap ? want : cap);
        if (kv_blocks < per_seq) kv_blocks = per_seq;
    }
    model_ctx_opts_t co = {.threads = o.threads,
                           .max_seqs = o.max_seqs,
                           .max_tokens = o.token_budget,
                           .kv_blocks = kv_blocks,
                           .tp = o.tp};
    int rc = model_ctx_new(m, &co, &s->ctx, err);
    if (rc) return rc;
    if (!(s->logits = malloc(sizeof(float) * (size_t)cfg->vocab_size)))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for %d logits", cfg->vocab_size);
    s->tok = model_tokenizer(m);
    s->vocab = cfg->vocab_size;
    s->dim = cfg->dim;
    s->seq_len = cfg->seq_len;
    s->bos = model_tokenizer_bos(s->tok);
    s->eos = model_tokenizer_eos(s->tok);
    int used;
    size_t bb;
    model_ctx_kv_usage(s->ctx, &used, &s->kv_total, &bb);
    s->ops_cap = 3 * serve_plan_max_ops(s->max_seqs);
    s->wire_cap = s->plan_on ? serve_plan_max_words(s->max_seqs, s->budget) : 0;
    s->ents = calloc((size_t)s->max_seqs, sizeof *s->ents);
    s->want = calloc((size_t)s->max_seqs, sizeof *s->want);
    s->ereq = calloc((size_t)s->max_seqs, sizeof *s->ereq);
    s->running = calloc((size_t)s->max_seqs, sizeof *s->running);
    s->ops = malloc(sizeof(int32_t) * (size_t)s->ops_cap);
    s->wire = s->plan_on ? malloc(sizeof(int32_t) * s->wire_cap) : NULL;
    if (!s->ents || !s->want || !s->ereq || !s->running || !s->ops || (s->plan_on && !s->wire))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the serving core's buffers");
    s->plan = (serve_plan_t){.kind = SERVE_PLAN_FORWARD, .entries = s->ents, .want = s->want};
    return 0;
}

int serve_new(const model_t *m, const serve_opts_t *o, serve_t **out, llmos_error_t *err) {
    *out = NULL;
    serve_t *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(""))) {
        free(s);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for a serving core");
    }
    int rc = core_init(s, m, o, err);
    if (rc) {
        serve_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Finds a name (as given, else in the models folder) into buf; "" and
 * NULL stay NULL.  role names it in errors. */
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

int serve_open(const serve_load_t *l, const serve_opts_t *o, serve_t **out, llmos_error_t *err) {
    *out = NULL;
    char pbuf[4096], tbuf[4096], cbuf[4096];
    const char *path, *tokenizer, *classifier;
    int rc = find_file("model", l->model, pbuf, sizeof pbuf, &path, err);
    if (!rc) rc = find_file("tokenizer", l->tokenizer, tbuf, sizeof tbuf, &tokenizer, err);
    if (!rc) rc = find_file("classifier", l->classifier, cbuf, sizeof cbuf, &classifier, err);
    if (rc) return rc;
    if (!path && !classifier)
        return llmos_error_set(err, LLMOS_EINVAL, "no model file and no classifier given");
    serve_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for a serving core");
    if (classifier) {
        if ((rc = serve_cls_open(classifier, path, tokenizer, &s->own_cls, err))) goto fail;
        path = s->own_cls->load_path;
        tokenizer = s->own_cls->tokenizer;
    }
    /* a temporary file's name means nothing */
    if (!(s->name = strdup(s->own_cls && s->own_cls->temp ? classifier : path))) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        goto fail;
    }
    model_load_opts_t lo = {.tokenizer_path = tokenizer,
                            .quantize = l->q8 ? MODEL_DTYPE_Q8_0 : MODEL_DTYPE_F32,
                            .tp_rank = l->tp_rank,
                            .tp_size = l->tp_size};
    rc = model_load(path, &lo, &s->own_m, err);
    serve_cls_drop_temp(s->own_cls); /* mapped (or read) by now; nothing stays on disk */
    if (rc) goto fail;
    serve_opts_t o2 = *o;
    o2.cls = s->own_cls;
    if ((rc = core_init(s, s->own_m, &o2, err))) goto fail;
    *out = s;
    return 0;
fail:
    serve_destroy(&s);
    return rc;
}

static void queue_remove(serve_t *s, serve_req_t *r);

void serve_destroy(serve_t **sp) {
    if (!sp || !*sp) return;
    serve_t *s = *sp;
    for (int i = 0; i < s->n_running; i++)
        serve_req_free(s->running[i]);
    while (s->q_head) {
        serve_req_t *r = s->q_head;
        queue_remove(s, r);
        serve_req_free(r);
    }
    model_ctx_destroy(&s->ctx);
    model_destroy(&s->own_m);
    serve_cls_destroy(&s->own_cls);
    free(s->name);
    free(s->logits);
    free(s->ents);
    free(s->want);
    free(s->ereq);
    free(s->running);
    free(s->ops);
    free(s->wire);
    free(s);
    *sp = NULL;
}

const char *serve_name(const serve_t *s) {
    return s->name;
}
const serve_cls_t *serve_cls(const serve_t *s) {
    return s->cls;
}
const model_t *serve_model(const serve_t *s) {
    return s->m;
}
model_ctx_t *serve_ctx(serve_t *s) {
    return s->ctx;
}
bool serve_busy(const serve_t *s) {
    return s->n_running > 0 || s->q_head;
}

void serve_stats(const serve_t *s, serve_stats_t *st) {
    size_t bb;
    *st = (serve_stats_t){.running = s->n_running,
                          .queued = s->n_queued,
                          .kv_reserved = s->reserved,
                          .max_seqs = s->max_seqs,
                          .token_budget = s->budget,
                          .queue_limit = s->queue_limit,
                          .vocab_size = s->vocab,
                          .seq_len = s->seq_len,
                          .dim = s->dim,
                          .requests_done = s->requests_done,
                          .tokens_generated = s->tokens_generated,
                          .iterations = s->iterations,
                          .prompt_tokens = s->prompt_tokens,
                          .rejected_overloaded = s->rejected,
                          .avg_request_ms = s->avg_req_ms};
    model_ctx_kv_usage(s->ctx, &st->kv_used, &st->kv_total, &bb);
}

void serve_stats_carry(serve_t *s, const serve_stats_t *from) {
    s->requests_done = from->requests_done;
    s->tokens_generated = from->tokens_generated;
    s->iterations = from->iterations;
    s->prompt_tokens = from->prompt_tokens;
    s->rejected = from->rejected_overloaded;
    s->avg_req_ms = from->avg_request_ms;
}

/* ---------------------------------------------------------------- events */

static void emit(serve_t *s, serve_event_t *ev) {
    if (s->sink) s->sink(s->sink_arg, ev);
}

static void op_log(serve_t *s, int op, int a, int b) {
    if (!s->plan_on) return;
    LLMOS_ASSERT(s->n_ops + 3 <= s->ops_cap); /* bounded per plan, see the top of the file */
    s->ops[s->n_ops++] = op;
    s->ops[s->n_ops++] = a;
    s->ops[s->n_ops++] = b;
}

/* Takes r out of the running set: closes its sequence, returns its blocks. */
static void req_leave(serve_t *s, serve_req_t *r) {
    if (r->seq < 0) return;
    model_seq_close(s->ctx, r->seq);
    op_log(s, SERVE_OP_CLOSE, r->seq, 0);
    r->seq = -1;
    s->reserved -= r->blocks;
    int k = 0;
    while (k < s->n_running && s->running[k] != r)
        k++;
    LLMOS_ASSERT(k < s->n_running);
    memmove(&s->running[k], &s->running[k + 1], sizeof s->running[0] * (size_t)(s->n_running - k - 1));
    s->n_running--;
}

static void queue_remove(serve_t *s, serve_req_t *r) {
    serve_req_t **pp = &s->q_head, *prev = NULL;
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

/* Answers r with an error and frees it (r already out of the queue). */
static void req_fail(serve_t *s, serve_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void req_fail(serve_t *s, serve_req_t *r, int status, const char *fmt, ...) {
    char msg[LLMOS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    req_leave(s, r);
    serve_event_t ev = {.type = SERVE_EV_FAILED, .kind = r->kind, .tag = r->tag};
    ev.u.failed.status = status;
    ev.u.failed.message = msg;
    emit(s, &ev);
    serve_req_free(r);
}

void serve_fail_all(serve_t *s, int status, const char *why) {
    while (s->n_running)
        req_fail(s, s->running[0], status, "%s", why);
    while (s->q_head) {
        serve_req_t *r = s->q_head;
        queue_remove(s, r);
        req_fail(s, r, status, "%s", why);
    }
}

/* Streams the generated text up to byte `upto` (and the tokens so far). */
static void stream_chunk(serve_t *s, serve_req_t *r, size_t upto) {
    if (!r->stream || (upto <= r->sent && r->chunk_tok >= r->generated)) return;
    char save = r->text[upto];
    r->text[upto] = 0;
    serve_event_t ev = {.type = SERVE_EV_CHUNK, .kind = r->kind, .tag = r->tag};
    ev.u.chunk.text = r->text + r->sent;
    ev.u.chunk.len = upto - r->sent;
    ev.u.chunk.tokens = r->toks + r->n_prompt + r->chunk_tok;
    ev.u.chunk.n_tokens = r->generated - r->chunk_tok;
    ev.u.chunk.index = r->chunk_index++;
    emit(s, &ev);
    r->text[upto] = save;
    r->sent = upto;
    r->chunk_tok = r->generated;
}

/* r's answer (it leaves the running set first). */
static void req_finish(serve_t *s, serve_req_t *r, const char *reason, uint64_t now_ns) {
    req_leave(s, r);
    serve_event_t ev = {.type = SERVE_EV_DONE, .kind = r->kind, .tag = r->tag};
    float lp[SERVE_MAX_LABELS], pr[SERVE_MAX_LABELS];
    if (r->kind == SERVE_CLASSIFY) {
        /* The head on the pooled hidden state; the classes by falling
         * probability (top_k of them, or all). */
        const serve_cls_t *c = s->cls;
        for (int i = 0; i < s->dim && r->pooled > 1; i++)
            r->vec[i] /= (float)r->pooled;
        serve_cls_apply(c, r->vec, r->lab_lp);
        ev.u.classified.labels = (const char *const *)c->labels;
        ev.u.classified.probs = r->lab_lp;
        ev.u.classified.n_classes = c->n_classes;
        ev.u.classified.top_k = r->top_k > 0 && r->top_k < c->n_classes ? r->top_k : c->n_classes;
    } else if (r->kind == SERVE_SCORE) {
        double mx = -1e300, sum = 0;
        int best = 0;
        for (int i = 0; i < r->n_labels; i++) {
            lp[i] = (float)r->lab_lp[i];
            if (r->lab_lp[i] > mx) mx = r->lab_lp[best = i];
        }
        for (int i = 0; i < r->n_labels; i++)
            sum += exp(r->lab_lp[i] - mx);
        for (int i = 0; i < r->n_labels; i++)
            pr[i] = (float)(exp(r->lab_lp[i] - mx) / sum);
        ev.u.scored.labels = (const char *const *)r->labels;
        ev.u.scored.log_probs = lp;
        ev.u.scored.probs = pr;
        ev.u.scored.n = r->n_labels;
        ev.u.scored.best = best;
    } else if (r->kind == SERVE_EMBED) {
        for (int i = 0; i < s->dim && r->pooled > 1; i++)
            r->vec[i] /= (float)r->pooled;
        ev.u.embedded.vector = r->vec;
        ev.u.embedded.dim = s->dim;
        ev.u.embedded.tokens = r->n_prompt;
    } else {
        stream_chunk(s, r, r->text_len);
        ev.u.generated.text = r->text;
        ev.u.generated.len = r->text_len;
        ev.u.generated.tokens = r->toks + r->n_prompt;
        ev.u.generated.n_tokens = r->generated;
        ev.u.generated.prompt_tokens = r->n_prompt;
        ev.u.generated.context_lines_kept = r->ctx_kept;
        ev.u.generated.context_lines_dropped = r->ctx_dropped;
        ev.u.generated.context_tokens = r->ctx_tokens;
        ev.u.generated.finish_reason = reason;
        ev.u.generated.ttft_us = r->t_first_ns ? (r->t_first_ns - r->t_arrive_ns) / 1000 : 0;
        ev.u.generated.total_us = (now_ns - r->t_arrive_ns) / 1000;
        ev.u.generated.queued_us = (r->t_admit_ns - r->t_arrive_ns) / 1000;
    }
    emit(s, &ev);
    double ms = (double)(now_ns - r->t_arrive_ns) / 1e6;
    s->avg_req_ms = s->requests_done ? 0.9 * s->avg_req_ms + 0.1 * ms : ms;
    s->requests_done++;
    serve_req_free(r);
}

/* ---------------------------------------------------------------- requests */

int serve_check_admission(serve_t *s, llmos_error_t *err) {
    /* The limit counts requests that will really wait: those the next
     * admission can start (free slots) do not, however many arrived before
     * the loop ran it. */
    int free_slots = s->max_seqs - s->n_running > 0 ? s->max_seqs - s->n_running : 0;
    if (s->n_queued - free_slots < s->queue_limit) return 0;
    s->rejected++;
    double per = s->avg_req_ms > 0 ? s->avg_req_ms : 100;
    unsigned after = (unsigned)(per * (double)(s->n_queued + 1) / (double)s->max_seqs) + 1;
    return llmos_error_set(err, LLMOS_EOVERLOADED,
                           "overloaded: queue full (%d waiting, limit %d, %d running), retry after %u ms",
                           s->n_queued, s->queue_limit, s->n_running, after);
}

int serve_submit(serve_t *s, const serve_request_t *rq, void *tag, serve_time_t now, llmos_error_t *err) {
    int rc = serve_check_admission(s, err);
    if (rc) return rc;
    serve_req_t *r = calloc(1, sizeof *r);
    if (!r) return llmos_error_set(err, LLMOS_ENOMEM, "model: no memory for a request");
    r->kind = rq->kind;
    r->tag = tag;
    r->seq = -1;
    r->corr = rq->corr;
    r->origin = rq->origin;
    r->deadline_ms = rq->deadline_ms;
    r->t_arrive_ns = now.ns;
    rc = serve_req_parse(s, r, rq, err);
    if (rc == 0 && serve_req_blocks(r) > s->kv_total)
        rc = llmos_error_set(err, LLMOS_ETOOBIG,
                             "the request needs %d KV blocks, the pool has %d (start with more --kv-blocks)",
                             serve_req_blocks(r), s->kv_total);
    if (rc) {
        llmos_error_prefix(err, "model: ");
        serve_req_free(r);
        return rc;
    }
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
    return 0;
}

bool serve_cancel(serve_t *s, uint64_t corr, uint64_t origin, const char *request_id) {
    bool by_id = request_id && request_id[0];
#define MATCHES(r)                                                                                           \
    ((corr && (r)->corr == corr && (r)->origin == origin) ||                                                 \
     (by_id && (r)->request_id && strcmp((r)->request_id, request_id) == 0))
    serve_req_t *hit = NULL;
    for (int i = 0; i < s->n_running && !hit; i++)
        if (MATCHES(s->running[i])) hit = s->running[i];
    for (serve_req_t *r = s->q_head; r && !hit; r = r->next)
        if (MATCHES(r)) {
            hit = r;
            queue_remove(s, r);
        }
#undef MATCHES
    if (hit) req_fail(s, hit, LLMOS_ECANCELED, "model: cancelled after %d generated tokens", hit->generated);
    return hit != NULL;
}

/* ---------------------------------------------------------------- the iteration */

static void expire(serve_t *s, uint64_t wall_ms) {
    for (int i = 0; i < s->n_running;) {
        serve_req_t *r = s->running[i];
        if (r->deadline_ms && wall_ms > r->deadline_ms)
            req_fail(s, r, LLMOS_ETIMEDOUT, "model: deadline passed after %d generated tokens", r->generated);
        else
            i++;
    }
    for (serve_req_t *r = s->q_head, *next; r; r = next) {
        next = r->next;
        if (r->deadline_ms && wall_ms > r->deadline_ms) {
            queue_remove(s, r);
            req_fail(s, r, LLMOS_ETIMEDOUT, "model: deadline passed while queued (%d waiting)", s->n_queued);
        }
    }
}

static void admit(serve_t *s, uint64_t now_ns) {
    while (s->q_head && s->n_running < s->max_seqs &&
           s->reserved + serve_req_blocks(s->q_head) <= s->kv_total) {
        serve_req_t *r = s->q_head;
        llmos_error_t err = {0};
        queue_remove(s, r);
        if (model_seq_open(s->ctx, &r->seq, &err) != 0) { /* cannot happen while n_running < max_seqs */
            r->seq = -1;
            req_fail(s, r, err.code, "model: %s", err.msg);
            continue;
        }
        op_log(s, SERVE_OP_OPEN, r->seq, 0);
        r->blocks = serve_req_blocks(r);
        s->reserved += r->blocks;
        r->t_admit_ns = now_ns;
        s->running[s->n_running++] = r;
    }
}

int serve_step_begin(serve_t *s, serve_time_t now) {
    s->plan.n_entries = 0;
    s->plan.n_tokens = 0;
    expire(s, now.wall_ms);
    admit(s, now.ns);
    int ne = 0, left = s->budget;
    for (int k = 0; k < s->n_running && left > 0; k++) { /* decode steps first: one row each */
        serve_req_t *r = s->running[k];
        if (r->n_fed < r->n_prompt) continue;
        const int *t = r->kind == SERVE_SCORE ? &r->lab_toks[r->cur][r->lab_pos - 1] : r->toks + r->n_fed;
        s->ents[ne] = (model_batch_entry_t){r->seq, t, 1};
        s->want[ne] = 0;
        s->ereq[ne++] = r;
        left--;
    }
    for (int k = 0; k < s->n_running && left > 0; k++) { /* then prefill chunks */
        serve_req_t *r = s->running[k];
        if (r->n_fed >= r->n_prompt) continue;
        int n = r->n_prompt - r->n_fed;
        if (n > left) n = left;
        s->ents[ne] = (model_batch_entry_t){r->seq, r->toks + r->n_fed, n};
        /* a mean-pooled embed or classify keeps every row's state */
        s->want[ne] = (r->kind == SERVE_EMBED || r->kind == SERVE_CLASSIFY) && r->mean;
        s->ereq[ne++] = r;
        left -= n;
    }
    s->plan.kind = SERVE_PLAN_FORWARD;
    s->plan.n_entries = ne;
    s->plan.n_tokens = s->budget - left;
    return ne;
}

const serve_plan_t *serve_step_plan(const serve_t *s) {
    return &s->plan;
}

void *serve_step_tag(const serve_t *s, int i) {
    return i >= 0 && i < s->plan.n_entries ? s->ereq[i]->tag : NULL;
}

int serve_step_wire(serve_t *s, bool stop, const int32_t **buf, size_t *n, llmos_error_t *err) {
    *buf = NULL;
    *n = 0;
    if (!s->plan_on)
        return llmos_error_set(err, LLMOS_ESTATE, "serve: this core keeps no plan for followers");
    serve_plan_t p = s->plan;
    p.kind = stop ? SERVE_PLAN_STOP : SERVE_PLAN_FORWARD;
    p.n_ops = s->n_ops / 3;
    p.ops = s->ops;
    if (stop) p.n_entries = p.n_tokens = 0;
    int rc = serve_plan_encode(&p, s->wire, s->wire_cap, n, err);
    LLMOS_ASSERT(rc == 0); /* the buffer is sized for the largest plan */
    s->n_ops = 0;
    *buf = s->wire;
    return 0;
}

int serve_step_forward(serve_t *s, llmos_error_t *err) {
    int ne = s->plan.n_entries;
    if (ne == 0) return 0;
    int rc = model_ctx_forward_rows(s->ctx, s->ents, ne, s->want, err);
    if (rc == 0 || rc == LLMOS_EUNAVAILABLE) return rc;
    /* refused before anything changed (the checks are the same on every rank) */
    LLMOS_ERROR("model: forward of %d entries failed: %s", ne, err->msg);
    s->plan.n_entries = s->plan.n_tokens = 0;
    for (int i = 0; i < ne; i++)
        req_fail(s, s->ereq[i], rc, "model: %s", err->msg);
    return rc;
}

/* Score: label cur starts at the shared prefix; the prefix's own logits
 * (kept in r->vec) score its first token.  Labels of one token end at once. */
static bool score_label_start(serve_req_t *r) {
    for (; r->cur < r->n_labels; r->cur++) {
        const int *t = r->lab_toks[r->cur];
        r->lab_lp[r->cur] = r->vec[t[r->n_prompt]];
        r->lab_pos = r->n_prompt + 1;
        if (r->lab_pos < r->lab_n[r->cur]) return true;
    }
    return false;
}

/* log p(t) under logits (vocab floats). */
static double log_prob(const float *logits, int vocab, int t) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < vocab; i++)
        sum += exp((double)(logits[i] - mx));
    return (double)(logits[t] - mx) - log(sum);
}

/* Score: the logits after the last fed token. */
static void on_score(serve_t *s, serve_req_t *r, int i, uint64_t now_ns) {
    const float *lg = model_ctx_logits(s->ctx, i);
    if (r->n_fed == r->n_prompt && r->cur == 0 && r->lab_pos == 0) { /* the shared prefix ran */
        float mx = lg[0];
        for (int v = 1; v < s->vocab; v++)
            if (lg[v] > mx) mx = lg[v];
        double sum = 0;
        for (int v = 0; v < s->vocab; v++)
            sum += exp((double)(lg[v] - mx));
        for (int v = 0; v < s->vocab; v++)
            r->vec[v] = (float)((double)(lg[v] - mx) - log(sum));
        if (!score_label_start(r)) req_finish(s, r, "done", now_ns);
        return;
    }
    const int *t = r->lab_toks[r->cur];
    r->lab_lp[r->cur] += log_prob(lg, s->vocab, t[r->lab_pos]);
    if (++r->lab_pos < r->lab_n[r->cur]) return;
    /* Label done: back to the shared prefix for the next one.  (It cannot
     * fail: the sequence is open and longer than the prefix.) */
    llmos_error_t err;
    model_seq_truncate(s->ctx, r->seq, r->n_prompt, &err);
    op_log(s, SERVE_OP_TRUNC, r->seq, r->n_prompt);
    r->n_fed = r->n_prompt;
    r->cur++;
    if (!score_label_start(r)) req_finish(s, r, "done", now_ns);
}

/* Consumes entry i's output for r (all its tokens are in the cache now). */
static void on_output(serve_t *s, serve_req_t *r, int i, uint64_t now_ns) {
    if (r->kind == SERVE_SCORE) {
        on_score(s, r, i, now_ns);
        return;
    }
    if (r->kind == SERVE_EMBED || r->kind == SERVE_CLASSIFY) {
        /* mean: after every chunk, each of its rows (want_rows); last: once, the last row. */
        int n = r->mean ? s->ents[i].n_tokens : 1;
        for (int j = 0; j < n; j++) {
            const float *h = r->mean ? model_ctx_hidden_row(s->ctx, i, j) : model_ctx_hidden(s->ctx, i);
            LLMOS_ASSERT(h);
            for (int d = 0; d < s->dim; d++)
                r->vec[d] += h[d];
        }
        r->pooled += n;
        if (r->n_fed == r->n_prompt) req_finish(s, r, "done", now_ns);
        return;
    }
    memcpy(s->logits, model_ctx_logits(s->ctx, i), sizeof(float) * (size_t)s->vocab);
    int next = model_sampler_sample(r->smp, s->logits, r->toks, r->n_toks);
    if (!r->t_first_ns) r->t_first_ns = now_ns;
    if (next == s->bos || next == s->eos) {
        req_finish(s, r, "eos", now_ns);
        return;
    }
    size_t pl = 0;
    const char *p = model_token_piece(s->tok, r->toks[r->n_toks - 1], next, &pl);
    LLMOS_ASSERT(r->n_toks < r->cap);
    r->toks[r->n_toks++] = next;
    r->generated++;
    s->tokens_generated++;
    if (p && serve_req_text_append(r, p, pl) != 0) {
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
        req_finish(s, r, "stop", now_ns);
        return;
    }
    if (r->generated >= r->max_gen) {
        req_finish(s, r, "length", now_ns);
        return;
    }
    stream_chunk(s, r, r->text_len - hold);
}

void serve_step_end(serve_t *s, serve_time_t now) {
    int ne = s->plan.n_entries;
    if (ne == 0) return;
    s->iterations++;
    for (int i = 0; i < ne; i++) {
        serve_req_t *r = s->ereq[i];
        if (r->n_fed < r->n_prompt) s->prompt_tokens += (uint64_t)s->ents[i].n_tokens;
        r->n_fed += s->ents[i].n_tokens;
        /* Outputs wanted: the last row of the tokens so far; for a score
         * every label step; for a mean embedding every chunk's rows. */
        if (r->n_fed == r->n_toks || (r->kind == SERVE_SCORE && r->n_fed > r->n_prompt) ||
            ((r->kind == SERVE_EMBED || r->kind == SERVE_CLASSIFY) && r->mean))
            on_output(s, r, i, now.ns);
    }
    s->plan.n_entries = s->plan.n_tokens = 0;
}

/* ---------------------------------------------------------------- followers */

int serve_follow(serve_t *s, const int32_t *buf, size_t n, llmos_error_t *err) {
    serve_plan_t p = {.entries = s->ents, .want = s->want};
    int rc = serve_plan_decode(buf, n, s->max_seqs, &p, err);
    if (rc) return rc;
    if (p.kind == SERVE_PLAN_STOP) return 1;
    return serve_plan_apply(s->ctx, &p, err);
}
