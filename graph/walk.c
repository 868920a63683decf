/*
 * walk.c — k-hop neighbourhoods and shortest paths (see walk.h), over the
 * store's range scans: (node, ?, ?) for out-edges, (?, ?, node) for
 * in-edges.  A node table (a hash map: id → level, parent edge) holds
 * what a walk has reached; frontiers are id arrays.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/store_internal.h"
#include "graph/walk.h"
#include "runtime/base/map.h"

/* The node table: the shared map (runtime/base/map.h), graph id ->
 * node_ent_t.  Entry pointers last until the next tab_add on the table. */
typedef struct node_ent {
    unsigned level;
    graph_id_t parent;  /* the node this one was reached from */
    graph_triple_t via; /* the edge it was reached by */
} node_ent_t;

typedef llmos_map_t node_tab_t;

/* Room for 128 nodes up front: most walks stay under that, and growing
 * from nothing costs a walk several reallocations.  A failure to reserve
 * shows at the first tab_add. */
static void tab_init(node_tab_t *t) {
    llmos_map_init(t, LLMOS_MAP_U64, sizeof(node_ent_t));
    (void)llmos_map_reserve(t, 128);
}

static node_ent_t *tab_find(node_tab_t *t, graph_id_t id) { return llmos_map_u64_get(t, id); }

/* Inserts id (absent); returns the entry (zeroed) or NULL on ENOMEM. */
static node_ent_t *tab_add(node_tab_t *t, graph_id_t id) {
    node_ent_t *e;
    return llmos_map_u64_put(t, id, (void **)&e, NULL) ? NULL : e;
}

typedef struct idvec {
    graph_id_t *v;
    size_t n, cap;
} idvec_t;

static int vec_push(idvec_t *v, graph_id_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        graph_id_t *nv = realloc(v->v, nc * sizeof *nv);
        if (!nv) return LLMOS_ENOMEM;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = id;
    return 0;
}

/* ------------------------------------------------------- neighbours --- */

int graph_neighbors(graph_reader_t *r, graph_id_t node, const graph_walk_options_t *opt,
                    graph_edge_fn fn, void *ctx, graph_walk_result_t *res, llmos_error_t *err) {
    graph_walk_options_t def = {0};
    if (!opt) opt = &def;
    unsigned hops = opt->hops ? opt->hops : 2;
    int dir = opt->dir ? (int)opt->dir : GRAPH_DIR_BOTH;
    uint64_t max_nodes = opt->max_nodes ? opt->max_nodes : 100000;
    uint64_t max_edges = opt->max_edges ? opt->max_edges : 10000;
    graph_walk_result_t rr = {0};
    node_tab_t tab;
    tab_init(&tab);
    idvec_t cur = {0}, next = {0};
    int rc = 0, stop = 0;
    node_ent_t *e0 = tab_add(&tab, node);
    if (!e0 || vec_push(&cur, node)) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "neighbours");
        goto out;
    }
    e0->level = 0;
    rr.nodes = 1;
    for (unsigned d = 0; d < hops && cur.n && !rc && !rr.truncated; d++) {
        next.n = 0;
        for (size_t i = 0; i < cur.n && !rc && !rr.truncated; i++) {
            graph_id_t u = cur.v[i];
            for (int side = 0; side < 2 && !rc && !rr.truncated; side++) {
                int out_side = side == 0;
                if (out_side && !(dir & GRAPH_DIR_OUT)) continue;
                if (!out_side && !(dir & GRAPH_DIR_IN)) continue;
                graph_iter_t it;
                graph_triple_t t;
                rc = out_side ? graph_store_match(r, u, 0, 0, &it, err) : graph_store_match(r, 0, 0, u, &it, err);
                if (rc) break;
                while ((rc = graph_iter_next(&it, &t, err)) == 1) {
                    graph_id_t v = out_side ? t.o : t.s;
                    node_ent_t *ev = tab_find(&tab, v);
                    /* Each edge once.  One direction: an edge is found by
                     * one scan only.  Both: it is found from both ends, so
                     * it belongs to the end scanned first — the earlier
                     * level, or within a level the subject's out-scan. */
                    if (dir == GRAPH_DIR_BOTH && ev && (ev->level < d || (!out_side && ev->level == d)))
                        continue;
                    if (rr.edges >= max_edges) {
                        rr.truncated = 1;
                        break;
                    }
                    rr.edges++;
                    if (fn && (stop = fn(ctx, &t, d + 1))) break;
                    if (!ev) {
                        if (rr.nodes >= max_nodes) {
                            rr.truncated = 1;
                            break;
                        }
                        ev = tab_add(&tab, v);
                        if (!ev || vec_push(&next, v)) {
                            rc = llmos_error_set(err, LLMOS_ENOMEM, "neighbours");
                            break;
                        }
                        ev->level = d + 1;
                        rr.nodes++;
                    }
                }
                graph_iter_close(&it);
                if (rc == 1) rc = 0; /* left the scan early (a cap) */
                if (stop) rc = stop;
            }
        }
        idvec_t t = cur;
        cur = next;
        next = t;
    }
out:
    llmos_map_deinit(&tab);
    free(cur.v);
    free(next.v);
    if (res) *res = rr;
    return rc;
}

/* ------------------------------------------------------------- path --- */

/* Expands one whole level of one side.  fwd: walking from a (edges in
 * `dir`), else from b (edges reversed).  Sets *meet to the meeting node
 * with the smallest total length found in this level, if any. */
static int expand(graph_reader_t *r, int dir, int fwd, node_tab_t *mine, node_tab_t *other, idvec_t *front,
                  idvec_t *next, unsigned level, uint64_t max_nodes, graph_id_t *meet, unsigned *best,
                  llmos_error_t *err) {
    next->n = 0;
    for (size_t i = 0; i < front->n; i++) {
        graph_id_t u = front->v[i];
        for (int side = 0; side < 2; side++) {
            /* Forward, an out-edge is (u ? v); backward we walk edges into
             * u's predecessors, i.e. (v ? u) — the same scans swapped. */
            int follow_out = side == 0;
            int want = fwd ? (follow_out ? GRAPH_DIR_OUT : GRAPH_DIR_IN) : (follow_out ? GRAPH_DIR_IN : GRAPH_DIR_OUT);
            if (!(dir & want)) continue;
            graph_iter_t it;
            graph_triple_t t;
            int rc = follow_out ? graph_store_match(r, u, 0, 0, &it, err) : graph_store_match(r, 0, 0, u, &it, err);
            if (rc) return rc;
            while ((rc = graph_iter_next(&it, &t, err)) == 1) {
                graph_id_t v = follow_out ? t.o : t.s;
                if (tab_find(mine, v)) continue;
                if (llmos_map_count(mine) >= max_nodes) {
                    graph_iter_close(&it);
                    return llmos_error_set(err, LLMOS_ETOOBIG, "path search visited %llu nodes (the cap) without an answer",
                                           (unsigned long long)max_nodes);
                }
                node_ent_t *ev = tab_add(mine, v);
                if (!ev || vec_push(next, v)) {
                    graph_iter_close(&it);
                    return llmos_error_set(err, LLMOS_ENOMEM, "path search");
                }
                ev->level = level + 1;
                ev->parent = u;
                ev->via = t;
                node_ent_t *eo = tab_find(other, v);
                if (eo && level + 1 + eo->level < *best) {
                    *best = level + 1 + eo->level;
                    *meet = v;
                }
            }
            graph_iter_close(&it);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

int graph_path(graph_reader_t *r, graph_id_t a, graph_id_t b, const graph_walk_options_t *opt,
               graph_triple_t *path, size_t cap, size_t *len, llmos_error_t *err) {
    graph_walk_options_t def = {0};
    if (!opt) opt = &def;
    unsigned max_hops = opt->hops ? opt->hops : 6;
    int dir = opt->dir ? (int)opt->dir : GRAPH_DIR_BOTH;
    uint64_t max_nodes = opt->max_nodes ? opt->max_nodes : 1000000;
    *len = 0;
    if (a == b) return 0;
    node_tab_t fa, fb;
    tab_init(&fa);
    tab_init(&fb);
    idvec_t qa = {0}, qb = {0}, na = {0}, nb = {0};
    int rc = 0;
    node_ent_t *ea = tab_add(&fa, a), *eb = tab_add(&fb, b);
    if (!ea || !eb || vec_push(&qa, a) || vec_push(&qb, b)) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "path search");
        goto out;
    }
    ea->level = 0;
    eb->level = 0;
    unsigned la = 0, lb = 0, best = ~0u;
    graph_id_t meet = 0;
    while (la + lb < max_hops && qa.n && qb.n) {
        /* Expand the smaller frontier: the search stays narrow. */
        if (qa.n <= qb.n) {
            rc = expand(r, dir, 1, &fa, &fb, &qa, &na, la, max_nodes, &meet, &best, err);
            idvec_t t = qa;
            qa = na;
            na = t;
            la++;
        } else {
            rc = expand(r, dir, 0, &fb, &fa, &qb, &nb, lb, max_nodes, &meet, &best, err);
            idvec_t t = qb;
            qb = nb;
            nb = t;
            lb++;
        }
        if (rc || meet) break;
    }
    if (rc) goto out;
    if (!meet || best > max_hops) {
        rc = llmos_error_set(err, LLMOS_ENOTFOUND, "no path of at most %u hops", max_hops);
        goto out;
    }
    if (best > cap) {
        rc = llmos_error_set(err, LLMOS_ETOOBIG, "path of %u edges does not fit in %zu", best, cap);
        goto out;
    }
    /* a … meet: parents on a's side, reversed into place. */
    size_t k = 0;
    node_ent_t *e = tab_find(&fa, meet);
    unsigned na_len = e->level;
    for (graph_id_t x = meet; x != a;) {
        e = tab_find(&fa, x);
        path[na_len - 1 - k++] = e->via;
        x = e->parent;
    }
    /* meet … b: parents on b's side, already in walk order. */
    for (graph_id_t x = meet; x != b;) {
        e = tab_find(&fb, x);
        path[k++] = e->via;
        x = e->parent;
    }
    *len = k;
out:
    llmos_map_deinit(&fa);
    llmos_map_deinit(&fb);
    free(qa.v);
    free(qb.v);
    free(na.v);
    free(nb.v);
    return rc;
}
