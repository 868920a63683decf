/*
 * serve_req.c — a request made ready to serve (serve_internal.h): every
 * field checked and bounded before anything is allocated for it, the text
 * tokenized once (a text longer in bytes than seq_len tokens can hold is
 * refused untokenized; context lines past that are dropped unread), the
 * sampler made, the buffers of its whole life allocated.
 *
 * Generate: the prompt (text with BOS, or token ids) with the context lines
 * that fit in front (model_prompt_fit: the rule llmos-generate --graph
 * follows), its longest generation (positions up to seq_len or
 * max_positions, the last sampled token never run, as llmos-generate),
 * the echoed prompt.  Embed: the text with BOS.  Score: each label's text
 * is scored as the continuation of the prompt: the tokens of prompt +
 * label after the longest prefix they share with the prompt's own tokens
 * (so a BPE merge across the boundary is scored as the model sees it); all
 * labels share toks[0..n_prompt), the shortest such prefix, which runs
 * once.  Classify (a score without labels): the text with BOS, cut at the
 * classifier's training length as llmos-eval cuts it.
 */
#include "model/serve_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void serve_req_free(serve_req_t *r) {
    if (!r) return;
    model_sampler_destroy(&r->smp);
    for (int i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
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

int serve_req_text_append(serve_req_t *r, const char *p, size_t n) {
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

int serve_req_blocks(const serve_req_t *r) {
    int positions = r->kind == SERVE_GENERATE ? r->n_prompt + r->max_gen - 1 : r->n_prompt;
    for (int i = 0; r->kind == SERVE_SCORE && i < r->n_labels; i++)
        if (r->lab_n[i] - 1 > positions) positions = r->lab_n[i] - 1;
    return (positions + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK;
}

/* Tokenizes text (with BOS) into r->toks, leaving room for extra tokens;
 * limit > 0: a text too long in bytes for limit tokens is refused before it
 * is tokenized (`what` names it in the error). */
static int tokenize(serve_t *s, serve_req_t *r, const char *what, const char *text, int limit, int extra,
                    llmos_error_t *err) {
    size_t len = strlen(text);
    if (len > SERVE_MAX_TEXT_BYTES)
        return llmos_error_set(err, LLMOS_ETOOBIG, "%s: %zu bytes, more than %u", what, len,
                               SERVE_MAX_TEXT_BYTES);
    if (limit > 0 && len + 1 > (size_t)(limit - 1) * (size_t)model_tokenizer_max_piece(s->tok))
        return llmos_error_set(err, LLMOS_ETOOBIG, "%s: %zu bytes, more than seq_len %d tokens can hold",
                               what, len, limit);
    int cap = (int)len + 3 + extra;
    if (!(r->toks = malloc(sizeof(int) * (size_t)cap)))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    r->cap = cap;
    return model_tokenize(s->tok, text, len, 1, 0, r->toks, cap, &r->n_prompt, err);
}

static int parse_sampling(serve_t *s, const serve_sampling_t *in, model_sample_opts_t *so,
                          llmos_error_t *err) {
    *so = (model_sample_opts_t){.temperature = 0, .top_k = 0, .top_p = 1, .repetition_penalty = 1, .seed = 0};
    if (in) {
        so->temperature = in->temperature;
        so->top_k = (int)(in->top_k > (uint32_t)s->vocab ? (uint32_t)s->vocab : in->top_k);
        so->top_p = in->top_p;
        so->repetition_penalty = in->repetition_penalty;
        so->seed = in->seed;
    }
    if (!(so->temperature >= 0 && so->temperature <= 100))
        return llmos_error_set(err, LLMOS_EINVAL, "sampling.temperature: %g is not in [0, 100]",
                               so->temperature);
    if (!(so->top_p >= 0 && so->top_p <= 1))
        return llmos_error_set(err, LLMOS_EINVAL, "sampling.top_p: %g is not in [0, 1]", so->top_p);
    if (so->top_p == 0) so->top_p = 1;
    if (!(so->repetition_penalty >= 0 && so->repetition_penalty <= 100))
        return llmos_error_set(err, LLMOS_EINVAL, "sampling.repetition_penalty: %g is not in [0, 100]",
                               so->repetition_penalty);
    if (so->repetition_penalty == 0) so->repetition_penalty = 1;
    return 0;
}

/* The prompt as token ids (no context allowed): *limit becomes the
 * positions it may run to. */
static int prompt_ids(serve_t *s, serve_req_t *r, const serve_request_t *g, int extra, int *limit,
                      llmos_error_t *err) {
    if (g->context && g->context[0])
        return llmos_error_set(err, LLMOS_EINVAL,
                               "context: not allowed with prompt_tokens (send the prompt as text)");
    if (g->n_prompt_tokens > (size_t)s->seq_len)
        return llmos_error_set(err, LLMOS_ETOOBIG, "prompt_tokens: %zu tokens, more than seq_len %d",
                               g->n_prompt_tokens, s->seq_len);
    r->cap = (int)g->n_prompt_tokens + extra;
    if (!(r->toks = malloc(sizeof(int) * (size_t)r->cap)))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    for (size_t i = 0; i < g->n_prompt_tokens; i++) {
        if (g->prompt_tokens[i] < 0 || g->prompt_tokens[i] >= s->vocab)
            return llmos_error_set(err, LLMOS_EINVAL, "prompt_tokens[%zu]: %d is not a token id (vocab %d)",
                                   i, (int)g->prompt_tokens[i], s->vocab);
        r->toks[i] = g->prompt_tokens[i];
    }
    r->n_prompt = (int)g->n_prompt_tokens;
    if (g->max_positions && g->max_positions < (uint32_t)*limit) *limit = (int)g->max_positions;
    if (r->n_prompt > *limit)
        return llmos_error_set(err, LLMOS_ETOOBIG, "the prompt is %d tokens, more than max_positions %d",
                               r->n_prompt, *limit);
    return 0;
}

/* The prompt as text with the context lines that fit in front. */
static int prompt_text(serve_t *s, serve_req_t *r, const serve_request_t *g, int extra, int *limit,
                       llmos_error_t *err) {
    bool has_ctx = g->context && g->context[0];
    const char *prompt = g->text ? g->text : "";
    model_prompt_fit_opts_t fo = {
        .seq_len = s->seq_len,
        .positions = g->max_positions > (uint32_t)s->seq_len ? s->seq_len : (int)g->max_positions,
        .max_new = g->max_tokens > (uint32_t)s->seq_len ? s->seq_len : (int)g->max_tokens,
        .extra = extra,
        .positions_name = "max_positions"};
    model_prompt_fit_t fit;
    int rc = model_prompt_fit(s->tok, has_ctx ? g->context : NULL, has_ctx ? strlen(g->context) : 0, prompt,
                              strlen(prompt), &fo, &fit, err);
    if (rc) {
        model_prompt_fit_deinit(&fit);
        return rc;
    }
    r->toks = fit.tokens;
    r->cap = fit.cap;
    r->n_prompt = fit.n_tokens;
    r->ctx_kept = fit.lines_kept;
    r->ctx_dropped = fit.lines_dropped;
    r->ctx_tokens = fit.context_tokens;
    *limit = fit.limit;
    fit.tokens = NULL;
    model_prompt_fit_deinit(&fit);
    /* With context in front, echo the user's prompt only, as llmos-generate --graph does. */
    if (r->echo && r->ctx_kept && serve_req_text_append(r, prompt, strlen(prompt)))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    return 0;
}

static int parse_generate(serve_t *s, serve_req_t *r, const serve_request_t *g, llmos_error_t *err) {
    model_sample_opts_t so;
    int rc = parse_sampling(s, g->sampling, &so, err);
    if (rc) return rc;
    if (g->n_stops > SERVE_MAX_STOPS)
        return llmos_error_set(err, LLMOS_EINVAL, "stop: %zu strings, at most %d", g->n_stops,
                               SERVE_MAX_STOPS);
    for (size_t i = 0; i < g->n_stops; i++) {
        size_t n = g->stops[i] ? strlen(g->stops[i]) : 0;
        if (n == 0 || n > SERVE_MAX_STOP_LEN)
            return llmos_error_set(err, LLMOS_EINVAL, "stop[%zu]: %zu bytes (1..%d allowed)", i, n,
                                   SERVE_MAX_STOP_LEN);
        if (!(r->stops[r->n_stops] = strdup(g->stops[i])))
            return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        r->n_stops++;
    }
    if (g->request_id && strlen(g->request_id) > SERVE_MAX_REQUEST_ID)
        return llmos_error_set(err, LLMOS_EINVAL, "request_id: %zu bytes, at most %d", strlen(g->request_id),
                               SERVE_MAX_REQUEST_ID);
    if (g->request_id && g->request_id[0] && !(r->request_id = strdup(g->request_id)))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    r->stream = g->stream;
    r->echo = g->echo;
    /* The longest generation possible: positions up to seq_len, the last
     * sampled token never run (as llmos-generate).  max_tokens and
     * max_positions are unsigned on the wire: compared as such. */
    int extra = s->seq_len + 1, limit = s->seq_len;
    rc = g->n_prompt_tokens ? prompt_ids(s, r, g, extra, &limit, err)
                            : prompt_text(s, r, g, extra, &limit, err);
    if (rc) return rc;
    r->n_toks = r->n_prompt;
    r->max_gen = limit - r->n_prompt + 1;
    if (g->max_tokens && g->max_tokens < (uint32_t)r->max_gen) r->max_gen = (int)g->max_tokens;
    if ((rc = model_sampler_new(s->vocab, &so, &r->smp, err))) return rc;
    if (!r->text) {
        r->text_cap = (size_t)r->max_gen * 8 + 64;
        if (!(r->text = malloc(r->text_cap))) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        r->text[0] = 0;
    }
    if (r->echo && r->text_len == 0 && r->ctx_kept == 0) {
        int i0 = r->toks[0] == s->bos ? 1 : 0;
        for (int i = i0; i < r->n_prompt && rc == 0; i++) {
            size_t pl;
            const char *p = model_token_piece(s->tok, i ? r->toks[i - 1] : s->bos, r->toks[i], &pl);
            if (p) rc = serve_req_text_append(r, p, pl);
        }
        if (rc) return llmos_error_set(err, rc, "no memory");
    }
    r->gen_off = r->text_len;
    return 0;
}

static int parse_embed(serve_t *s, serve_req_t *r, const serve_request_t *e, llmos_error_t *err) {
    const char *pool = e->pooling && e->pooling[0] ? e->pooling : "mean";
    if (strcmp(pool, "mean") != 0 && strcmp(pool, "last") != 0)
        return llmos_error_set(err, LLMOS_EINVAL, "pooling: '%s' is not mean or last", pool);
    r->mean = pool[0] == 'm';
    int rc = tokenize(s, r, "text", e->text ? e->text : "", s->seq_len, 0, err);
    if (rc) return rc;
    if (r->n_prompt > s->seq_len)
        return llmos_error_set(err, LLMOS_ETOOBIG, "text: %d tokens, more than seq_len %d", r->n_prompt,
                               s->seq_len);
    r->n_toks = r->n_prompt;
    if (!(r->vec = calloc((size_t)s->dim, sizeof(float))))
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    return 0;
}

static int parse_classify(serve_t *s, serve_req_t *r, const char *text, uint32_t top_k, llmos_error_t *err) {
    if (!s->cls)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "labels: none given and no classifier is loaded (give 1..%d labels, "
                               "or start llmosd with --classifier DIR)",
                               SERVE_MAX_LABELS);
    if (!text[0]) return llmos_error_set(err, LLMOS_EINVAL, "classify: the text is empty");
    r->kind = SERVE_CLASSIFY;
    r->mean = !s->cls->pool_last;
    r->top_k = (int)(top_k > (uint32_t)s->cls->n_classes ? (uint32_t)s->cls->n_classes : top_k);
    int rc = tokenize(s, r, "prompt", text, 0, 0, err); /* cut below, as llmos-eval cuts it */
    if (rc) return rc;
    int limit = s->cls->seq < s->seq_len ? s->cls->seq : s->seq_len;
    if (r->n_prompt > limit) r->n_prompt = limit;
    r->n_toks = r->n_prompt;
    r->vec = calloc((size_t)s->dim, sizeof(float));
    r->lab_lp = calloc((size_t)s->cls->n_classes, sizeof(double));
    if (!r->vec || !r->lab_lp) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    return 0;
}

static int parse_score(serve_t *s, serve_req_t *r, const serve_request_t *q, llmos_error_t *err) {
    const char *prompt = q->text ? q->text : "";
    size_t plen = strlen(prompt);
    if (q->n_labels == 0) return parse_classify(s, r, prompt, q->top_k, err);
    if (q->n_labels > SERVE_MAX_LABELS)
        return llmos_error_set(err, LLMOS_EINVAL, "labels: %zu given, 1..%d allowed", q->n_labels,
                               SERVE_MAX_LABELS);
    int rc = tokenize(s, r, "prompt", prompt, s->seq_len, 0, err);
    if (rc) return rc;
    if (r->n_prompt >= s->seq_len) /* a label adds at least one token */
        return llmos_error_set(err, LLMOS_ETOOBIG, "prompt: %d tokens, no room for a label in seq_len %d",
                               r->n_prompt, s->seq_len);
    const size_t room = (size_t)(s->seq_len - 1) * (size_t)model_tokenizer_max_piece(s->tok);
    int n = (int)q->n_labels;
    r->labels = calloc((size_t)n, sizeof *r->labels);
    r->lab_toks = calloc((size_t)n, sizeof *r->lab_toks);
    r->lab_n = calloc((size_t)n, sizeof *r->lab_n);
    r->lab_lp = calloc((size_t)n, sizeof *r->lab_lp);
    r->vec = malloc(sizeof(float) * (size_t)s->vocab);
    if (!r->labels || !r->lab_toks || !r->lab_n || !r->lab_lp || !r->vec)
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    int shared = r->n_prompt;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *label = q->labels[i] ? q->labels[i] : "";
        size_t ll = strlen(label);
        if (ll == 0 || ll > SERVE_MAX_TEXT_BYTES) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "labels[%d]: %zu bytes (1..%u allowed)", i, ll,
                                 SERVE_MAX_TEXT_BYTES);
            break;
        }
        if (plen + ll + 1 > room) { /* cannot fit: refused before it is tokenized */
            rc = llmos_error_set(err, LLMOS_ETOOBIG,
                                 "labels[%d]: prompt + label are %zu bytes, more than seq_len %d "
                                 "tokens can hold",
                                 i, plen + ll, s->seq_len);
            break;
        }
        r->n_labels = i + 1; /* label i's buffers are serve_req_free's from here */
        char *full = malloc(plen + ll + 1);
        r->labels[i] = strdup(label);
        int cap = (int)(plen + ll) + 3;
        r->lab_toks[i] = malloc(sizeof(int) * (size_t)cap);
        if (!full || !r->labels[i] || !r->lab_toks[i]) {
            free(full);
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            break;
        }
        memcpy(full, prompt, plen);
        memcpy(full + plen, label, ll + 1);
        rc = model_tokenize(s->tok, full, plen + ll, 1, 0, r->lab_toks[i], cap, &r->lab_n[i], err);
        free(full);
        if (rc) break;
        int k = 0;
        while (k < r->n_prompt && k < r->lab_n[i] && r->lab_toks[i][k] == r->toks[k])
            k++;
        if (k >= r->lab_n[i]) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "labels[%d]: '%s' adds no token to the prompt", i, label);
            break;
        }
        if (r->lab_n[i] > s->seq_len) {
            rc = llmos_error_set(err, LLMOS_ETOOBIG,
                                 "labels[%d]: prompt + label are %d tokens, more than seq_len %d", i,
                                 r->lab_n[i], s->seq_len);
            break;
        }
        if (k < shared) shared = k;
    }
    if (rc == 0 && shared < 1) shared = 1; /* BOS is always shared */
    r->n_prompt = r->n_toks = shared;
    return rc;
}

int serve_req_parse(serve_t *s, serve_req_t *r, const serve_request_t *rq, llmos_error_t *err) {
    switch (rq->kind) {
    case SERVE_GENERATE: return parse_generate(s, r, rq, err);
    case SERVE_EMBED: return parse_embed(s, r, rq, err);
    case SERVE_SCORE: return parse_score(s, r, rq, err);
    default:
        return llmos_error_set(err, LLMOS_EINVAL, "request kind %d is not generate, embed or score",
                               (int)rq->kind);
    }
}
