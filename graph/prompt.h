/*
 * prompt.h — knowledge-augmented prompts: the facts a text mentions, put in
 * front of it as short sentences, in the one layout every llmos generator
 * uses (llmos-generate --graph today; the model shards and the scheduler
 * later, with sentences that may have come over the wire).
 *
 * The layout (GRAPH_PROMPT_LAYOUT):
 *
 *     <fact sentence 1>\n
 *     <fact sentence 2>\n
 *     ...
 *     \n
 *     <the prompt, unchanged>
 *
 * one sentence per line ("abnormality affects cell function."), in the
 * linker's priority order (facts between two mentions, then hop 1, then
 * hop 2), then one empty line, then the user's prompt byte for byte.  With
 * no facts there is no prefix at all: the text is the prompt itself, so a
 * prompt that mentions nothing generates exactly what it would without a
 * graph.
 *
 * Fitting: a model has a fixed context, so the caller may give a budget in
 * its own units (tokens) and a function that measures a text in them; the
 * lowest-priority facts are dropped until the prefix fits (never an error:
 * a prompt that does not fit even alone gets no facts).  Without a measure
 * function the budget is in bytes.
 *
 * Thread-safety: as graph_link_text (one reader per thread).
 */
#ifndef LLMOS_GRAPH_PROMPT_H
#define LLMOS_GRAPH_PROMPT_H

#include <stddef.h>

#include "graph/link.h"

/* Writes the layout above for n sentences (each NUL-terminated, borrowed)
 * and the prompt (len bytes) into a malloc'd NUL-terminated string: *out,
 * caller frees; *out_len (may be NULL) gets its length, *prefix_len (may
 * be NULL) the bytes before the prompt.  Errors: LLMOS_ENOMEM. */
int graph_prompt_layout(const char *const *sentences, size_t n, const char *prompt, size_t len, char **out,
                        size_t *out_len, size_t *prefix_len, llmos_error_t *err);

/* Measures text (len bytes) in the caller's units (e.g. tokens with BOS):
 * 0 and *cost, or a negative llmos_err (which the caller's call returns). */
typedef int (*graph_prompt_measure_fn)(void *ctx, const char *text, size_t len, size_t *cost,
                                       llmos_error_t *err);

#define GRAPH_PROMPT_NO_LIMIT ((size_t)-1)

typedef struct graph_prompt_opts {
    graph_link_opts_t link;          /* hops, max_facts (as graph_link_text) */
    size_t max_prefix;               /* budget of the prefix: cost(text) - cost(prompt) <= this
                                        (0 = no fact fits); GRAPH_PROMPT_NO_LIMIT = none */
    graph_prompt_measure_fn measure; /* NULL = bytes */
    void *measure_ctx;
} graph_prompt_opts_t;

/* The answer of graph_link_prompt.  Everything is owned by the struct until
 * graph_prompt_deinit. */
typedef struct graph_prompt {
    char *text;                     /* the full prompt in the layout above (NUL-terminated) */
    size_t len, prefix_len;         /* its length; the bytes before the user's prompt */
    const graph_link_fact_t *facts; /* the facts in the prefix, in order (points into link) */
    size_t nfacts;                  /* facts used */
    graph_link_result_t link;       /* everything linked (link.nfacts >= nfacts: the rest were dropped) */
} graph_prompt_t;

/* Links `text` (graph_link_text), keeps as many of the facts as the budget
 * allows (dropping from the end of the priority order) and lays them out in
 * front of it.  opts may be NULL (hops 1, 20 facts, GRAPH_PROMPT_NO_LIMIT).  *out must
 * be released with graph_prompt_deinit (also after an error: it is then
 * empty).  Errors: those of graph_link_text and of measure, LLMOS_ENOMEM. */
int graph_link_prompt(const graph_linker_t *l, graph_reader_t *r, const char *text, size_t len,
                      const graph_prompt_opts_t *opts, graph_prompt_t *out, llmos_error_t *err);

void graph_prompt_deinit(graph_prompt_t *p);

#endif
