/*
 * prompt.c — the knowledge-augmented prompt of prompt.h: link, fit the
 * facts into the caller's budget, lay them out in front of the prompt.
 *
 * Fitting searches the largest number k of leading facts whose prefix fits
 * (binary search: the prefix only grows with k), measuring whole candidate
 * texts, because a tokenizer's cost of a text is not the sum of its parts.
 * This room never writes to the store.
 */
#include "graph/prompt.h"

#include <stdlib.h>
#include <string.h>

int graph_prompt_layout(const char *const *sentences, size_t n, const char *prompt, size_t len, char **out,
                        size_t *out_len, size_t *prefix_len, llmos_error_t *err) {
    size_t pre = 0;
    for (size_t i = 0; i < n; i++)
        pre += strlen(sentences[i]) + 1;
    if (n) pre++; /* the empty line between the facts and the prompt */
    char *s = malloc(pre + len + 1);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for a %zu-byte prompt", pre + len);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(sentences[i]);
        memcpy(s + at, sentences[i], k);
        at += k;
        s[at++] = '\n';
    }
    if (n) s[at++] = '\n';
    if (len) memcpy(s + at, prompt, len);
    s[at + len] = 0;
    *out = s;
    if (out_len) *out_len = at + len;
    if (prefix_len) *prefix_len = at;
    return 0;
}

/* The layout with the first k facts of p->link. */
static int layout_k(graph_prompt_t *p, const char **sent, size_t k, const char *text, size_t len,
                    llmos_error_t *err) {
    free(p->text);
    p->text = NULL;
    return graph_prompt_layout(sent, k, text, len, &p->text, &p->len, &p->prefix_len, err);
}

static int measure(const graph_prompt_opts_t *o, const char *s, size_t n, size_t *cost, llmos_error_t *err) {
    if (!o->measure) {
        *cost = n;
        return 0;
    }
    return o->measure(o->measure_ctx, s, n, cost, err);
}

int graph_link_prompt(const graph_linker_t *l, graph_reader_t *r, const char *text, size_t len,
                      const graph_prompt_opts_t *opts, graph_prompt_t *out, llmos_error_t *err) {
    memset(out, 0, sizeof *out);
    graph_prompt_opts_t def = {.link = {.hops = 1, .max_facts = 20}, .max_prefix = GRAPH_PROMPT_NO_LIMIT};
    const graph_prompt_opts_t *o = opts ? opts : &def;
    int rc = graph_link_text(l, r, text, len, &o->link, &out->link, err);
    if (rc) return rc;
    size_t n = out->link.nfacts;
    const char **sent = malloc((n ? n : 1) * sizeof *sent);
    if (!sent) {
        graph_prompt_deinit(out);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for %zu facts", n);
    }
    for (size_t i = 0; i < n; i++)
        sent[i] = out->link.facts[i].sentence;
    size_t k = n;
    if (o->max_prefix != GRAPH_PROMPT_NO_LIMIT && n) {
        size_t base = 0, cost = 0;
        rc = measure(o, text, len, &base, err);
        /* Largest k in [0, n] whose prefix fits; k = 0 always does. */
        size_t lo = 0, hi = n;
        while (!rc && lo < hi) {
            size_t mid = lo + (hi - lo + 1) / 2;
            rc = layout_k(out, sent, mid, text, len, err);
            if (!rc) rc = measure(o, out->text, out->len, &cost, err);
            if (rc) break;
            if (cost <= base || cost - base <= o->max_prefix)
                lo = mid;
            else
                hi = mid - 1;
        }
        k = lo;
    }
    if (!rc) rc = layout_k(out, sent, k, text, len, err);
    free(sent);
    if (rc) {
        graph_prompt_deinit(out);
        return rc;
    }
    out->facts = out->link.facts;
    out->nfacts = k;
    return 0;
}

void graph_prompt_deinit(graph_prompt_t *p) {
    if (!p) return;
    free(p->text);
    graph_link_result_deinit(&p->link);
    memset(p, 0, sizeof *p);
}
