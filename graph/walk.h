/*
 * walk.h — graph walks over a store snapshot: k-hop neighbourhoods (BFS)
 * and shortest paths (bidirectional BFS), each capped so a hub node cannot
 * make a walk unbounded.
 *
 * Edges are triples; a walk follows them out of a node (subject → object),
 * into it (object → subject) or both.  Literals are nodes like any other
 * (they simply have no out-edges).
 *
 * Thread-safety: a walk uses only the reader it is given (one thread).
 * Memory: visited-node tables grow with the walk, bounded by max_nodes.
 */
#ifndef LLMOS_GRAPH_WALK_H
#define LLMOS_GRAPH_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "graph/store.h"

typedef enum graph_dir {
    GRAPH_DIR_OUT = 1,  /* follow (node, p, x) */
    GRAPH_DIR_IN = 2,   /* follow (x, p, node) */
    GRAPH_DIR_BOTH = 3,
} graph_dir;

typedef struct graph_walk_options {
    unsigned hops;      /* neighbours: depth; path: max hops (0 = 2 / 6) */
    graph_dir dir;      /* 0 = GRAPH_DIR_BOTH */
    uint64_t max_nodes; /* visited-node cap; 0 = 100 000 (neighbours), 1 000 000 (path) */
    uint64_t max_edges; /* neighbours: edges reported cap; 0 = 10 000 */
} graph_walk_options_t;

/* Called for every edge of the neighbourhood once, with the hop (1-based)
 * at which it was reached.  A non-zero return stops the walk and is
 * returned by graph_neighbors. */
typedef int (*graph_edge_fn)(void *ctx, const graph_triple_t *t, unsigned hop);

typedef struct graph_walk_result {
    uint64_t nodes;     /* distinct nodes reached, the start included */
    uint64_t edges;     /* edges reported */
    int truncated;      /* a cap was hit: the neighbourhood is partial */
} graph_walk_result_t;

/* BFS from `node` up to opt->hops.  res may be NULL.  Errors: those of the
 * store's scans, LLMOS_ENOMEM. */
int graph_neighbors(graph_reader_t *r, graph_id_t node, const graph_walk_options_t *opt,
                    graph_edge_fn fn, void *ctx, graph_walk_result_t *res, llmos_error_t *err);

/* A shortest path from a to b of at most opt->hops edges.  On success
 * path[0..*len) are the edges in walk order (with GRAPH_DIR_BOTH an edge may
 * be walked against its direction: path[i] is still the stored triple);
 * *len = 0 when a == b.  Errors: LLMOS_ENOTFOUND (no path within the hops;
 * the message says so), LLMOS_ETOOBIG (cap cap too small for the path, or
 * the visited cap hit: message says which), LLMOS_ENOMEM. */
int graph_path(graph_reader_t *r, graph_id_t a, graph_id_t b, const graph_walk_options_t *opt,
               graph_triple_t *path, size_t cap, size_t *len, llmos_error_t *err);

#endif
