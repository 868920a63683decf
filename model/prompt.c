/*
 * prompt.c — a prompt with droppable context lines, fitted to the model's
 * window (model.h, "a prompt with droppable context"): the one rule the
 * model shards (GenerateRequest.context) and llmos-generate --graph follow.
 *
 * The number of kept lines is searched (binary search: the text only grows
 * with more lines), tokenizing whole candidate texts.  Lines that could not
 * fit even in bytes (a token covers at most model_tokenizer_max_piece
 * bytes) are dropped without being tokenized, so a huge context costs one
 * scan, not a tokenization.  The layout is graph/prompt.h's
 * (graph_prompt_layout); tests/model checks the two agree.
 */
#include "model/model.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct line {
    const char *p;
    size_t n;
} line_t;

/* The layout of the first k lines and the prompt into f->text (sized for all lines). */
static void layout(model_prompt_fit_t *f, const line_t *lines, int k, const char *prompt, size_t plen) {
    size_t at = 0;
    for (int i = 0; i < k; i++) {
        memcpy(f->text + at, lines[i].p, lines[i].n);
        at += lines[i].n;
        f->text[at++] = '\n';
    }
    if (k) f->text[at++] = '\n';
    f->prefix_len = at;
    if (plen) memcpy(f->text + at, prompt, plen);
    f->len = at + plen;
    f->text[f->len] = 0;
}

static int tokenize(const model_tokenizer_t *t, model_prompt_fit_t *f, llmos_error_t *err) {
    return model_tokenize(t, f->text, f->len, 1, 0, f->tokens, f->cap, &f->n_tokens, err);
}

int model_prompt_fit(const model_tokenizer_t *t, const char *context, size_t clen, const char *prompt,
                     size_t plen, const model_prompt_fit_opts_t *o, model_prompt_fit_t *out,
                     llmos_error_t *err) {
    memset(out, 0, sizeof *out);
    if (!o || o->seq_len <= 0 || o->positions < 0 || o->max_new < 0 || o->extra < 0)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "prompt fit: seq_len must be positive, the rest not negative");
    if (!prompt) plen = 0;
    if (!context) clen = 0;
    const bool has_pos = o->positions > 0;
    const int P = has_pos && o->positions < o->seq_len ? o->positions : o->seq_len;
    const char *pname = P < o->seq_len ? (o->positions_name ? o->positions_name : "positions") : "seq_len";
    /* Tokens with BOS are at least 1 + (bytes + the dummy-prefix space) / longest piece. */
    const size_t piece = (size_t)model_tokenizer_max_piece(t), room_bytes = (size_t)(P - 1) * piece;
    if (plen && plen + 1 > room_bytes)
        return llmos_error_set(err, LLMOS_ETOOBIG, "the prompt is %zu bytes, more than %s %d tokens can hold",
                               plen, pname, P);
    /* The lines that might fit: their bytes with the prompt's stay under seq_len's. */
    const size_t max_bytes = (size_t)(o->seq_len - 1) * piece;
    int n_lines = 0, n_all = 0;
    size_t line_bytes = 0;
    line_t *lines = NULL;
    for (size_t i = 0, cap = 0; i < clen;) {
        const char *nl = memchr(context + i, '\n', clen - i);
        size_t n = nl ? (size_t)(nl - (context + i)) : clen - i;
        if (n > 0) {
            n_all++;
            if (n_lines == n_all - 1 && line_bytes + n + 1 + 1 + plen + 1 <= max_bytes) {
                if ((size_t)n_lines == cap) {
                    cap = cap ? cap * 2 : 16;
                    line_t *g = realloc(lines, cap * sizeof *g);
                    if (!g) {
                        free(lines);
                        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for %zu context lines", cap);
                    }
                    lines = g;
                }
                lines[n_lines++] = (line_t){context + i, n};
                line_bytes += n + 1;
            }
        }
        i += n + 1;
    }
    int rc = 0;
    size_t text_max = line_bytes + 1 + plen;
    if (text_max + 3 > (size_t)INT32_MAX - (size_t)o->extra) {
        free(lines);
        return llmos_error_set(err, LLMOS_ETOOBIG, "the prompt and context are %zu bytes", text_max);
    }
    out->cap = (int)text_max + 3 + o->extra;
    out->text = malloc(text_max + 1);
    out->tokens = malloc(sizeof(int) * (size_t)out->cap);
    if (!out->text || !out->tokens) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a %zu-byte prompt", text_max);
        goto out;
    }
    layout(out, lines, 0, prompt, plen);
    if ((rc = tokenize(t, out, err))) goto out;
    out->n_prompt = out->n_tokens;
    if (out->n_prompt > P) {
        rc = llmos_error_set(err, LLMOS_ETOOBIG, "the prompt is %d tokens, more than %s %d", out->n_prompt,
                             pname, P);
        goto out;
    }
    /* The generation to keep room for, and the largest text that leaves it. */
    int room = P - out->n_prompt + 1, want = room;
    if (o->max_new > 0 && o->max_new < want) want = o->max_new;
    if (o->max_new == 0 && !has_pos) want = 1;
    const int fit = o->seq_len - want + 1;
    int lo = 0, hi = n_lines;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        layout(out, lines, mid, prompt, plen);
        if ((rc = tokenize(t, out, err))) goto out;
        if (out->n_tokens <= fit)
            lo = mid;
        else
            hi = mid - 1;
    }
    layout(out, lines, lo, prompt, plen);
    if ((rc = tokenize(t, out, err))) goto out;
    out->lines_kept = lo;
    out->lines_dropped = n_all - lo;
    out->context_tokens = lo && out->n_tokens > out->n_prompt ? out->n_tokens - out->n_prompt : 0;
    out->limit = has_pos && P + out->context_tokens < o->seq_len ? P + out->context_tokens : o->seq_len;
out:
    free(lines);
    if (rc) model_prompt_fit_deinit(out);
    return rc;
}

void model_prompt_fit_deinit(model_prompt_fit_t *f) {
    if (!f) return;
    free(f->tokens);
    free(f->text);
    memset(f, 0, sizeof *f);
}
