/*
 * link.h — entity linking: which graph entities a text mentions, and the
 * facts around them, as triples and as short sentences a prompt can carry.
 *
 * A linker holds a label index built once from a store snapshot (in memory,
 * per store open; nothing is written to the store).  An entity is any IRI
 * that is the subject or object of a triple; its labels are its rdfs:label
 * values when it has any, else its IRI's local name (after the last '#', '/'
 * or ':'), percent-decoded, with '_' and '-' read as spaces and camelCase
 * split ("cell_function", "cellFunction" → "cell function").
 *
 * Matching reads labels and text the same way: words are runs of ASCII
 * letters and digits (and any non-ASCII UTF-8 bytes), compared with ASCII
 * case folded; a label matches a run of whole words of the text.  At each
 * word, the longest label starting there wins; matches never overlap and
 * the scan continues after a match (leftmost-longest).
 *
 * Facts, up to max_facts, in this order: triples between two mentioned
 * entities (hop 0, at every hops setting); then, with hops >= 1, each
 * mentioned entity's own triples (outgoing, then incoming; a fair share per
 * entity first, then whatever room is left); then, with hops = 2, the
 * triples of the neighbours found in hop 1 (hop 1 leaves them a third of
 * the room left after the facts between mentions).  Each
 * fact comes with its terms in N-Triples syntax and a sentence
 * "<subject label> <predicate label> <object label>." ("abnormality affects
 * cell function.").
 *
 * Thread-safety: a built linker is immutable; graph_link_text may run on
 * many threads at once, each with its own reader and result.
 */
#ifndef LLMOS_GRAPH_LINK_H
#define LLMOS_GRAPH_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "graph/store.h"
#include "runtime/base/err.h"

typedef struct graph_linker graph_linker_t;

/* Builds the label index from reader r's snapshot (one scan of the store).
 * *out is caller-owned (graph_linker_destroy).  Errors: LLMOS_ENOMEM, store
 * errors. */
int graph_linker_new(graph_reader_t *r, graph_linker_t **out, llmos_error_t *err);

/* Frees the linker and sets *l to NULL; NULL is fine. */
void graph_linker_destroy(graph_linker_t **l);

/* Number of entities and of distinct labels indexed. */
void graph_linker_size(const graph_linker_t *l, size_t *entities, size_t *labels);

/* hops when opts is NULL, and the graph actor's when a request gives none */
#define GRAPH_LINK_DEFAULT_HOPS 1
#define GRAPH_LINK_DEFAULT_FACTS 20  /* max_facts 0 */
#define GRAPH_LINK_FACTS_MAX 100000  /* a larger max_facts is this ("as many as allowed") */
#define GRAPH_LINK_MENTIONS_MAX 4096 /* a larger max_mentions is this */

typedef struct graph_link_opts {
    int hops;            /* 0: the mentions and the facts between them; 1: also each mention's own
                            triples; 2: also its neighbours' (GRAPH_LINK_DEFAULT_HOPS when opts is NULL) */
    size_t max_facts;    /* cap on facts; 0 = GRAPH_LINK_DEFAULT_FACTS, over GRAPH_LINK_FACTS_MAX = that */
    size_t max_mentions; /* cap on mentions reported; 0 = 256, over GRAPH_LINK_MENTIONS_MAX = that */
} graph_link_opts_t;

typedef struct graph_link_mention {
    size_t start, end;  /* byte offsets of the match in the text: [start, end) */
    graph_id_t entity;  /* the entity (the first, when several share the label) */
    const char *label;  /* the label matched, as indexed (lower case, single spaces) */
    const char *iri;    /* the entity's IRI */
    int candidates;     /* how many entities carry this label (1 = unambiguous) */
} graph_link_mention_t;

typedef struct graph_link_fact {
    graph_triple_t t;
    int hop;              /* 0: between two mentions; 1: around a mention; 2: one further */
    const char *s, *p, *o;/* the terms in N-Triples syntax */
    const char *sentence; /* "abnormality affects cell function." */
} graph_link_fact_t;

/* The answer of graph_link_text.  Every pointer inside is owned by the
 * result and lives until graph_link_result_deinit. */
typedef struct graph_link_result {
    graph_link_mention_t *mentions;
    size_t nmentions;
    graph_link_fact_t *facts;
    size_t nfacts;
    void *mem; /* private: the arena everything lives in */
} graph_link_result_t;

/* Finds the entities `text` (len bytes, UTF-8) mentions and the facts around
 * them, reading the store through r (the same store the linker was built
 * from; a newer snapshot is fine).  opts may be NULL.  *out is filled on
 * success and must be released with graph_link_result_deinit (also after an
 * error: it is then empty).  A text that mentions nothing ("Lily saw") is no
 * error: no mentions, no facts (mentions and facts may then be NULL).
 * Memory grows with the facts found, not with max_facts.  Errors:
 * LLMOS_EINVAL (hops outside 0..2), LLMOS_ENOMEM, store errors. */
int graph_link_text(const graph_linker_t *l, graph_reader_t *r, const char *text, size_t len,
                    const graph_link_opts_t *opts, graph_link_result_t *out, llmos_error_t *err);

void graph_link_result_deinit(graph_link_result_t *res);

/* The result as one JSON object {"mentions":[{"start","end","text","label",
 * "entity","candidates"}],"facts":[{"s","p","o","hop","sentence"}]} in a
 * malloc'd NUL-terminated string (*out, caller frees; *len may be NULL). */
int graph_link_to_json(const graph_link_result_t *res, const char *text, size_t text_len, char **out,
                       size_t *len, llmos_error_t *err);

#endif
