/*
 * graph.c — the knowledge graph through a node's `graph` actor
 * (include/llmos/client.h, "The knowledge graph"): queries, entity links,
 * neighbourhoods and paths, statistics, and loads sent over the wire.
 *
 * Each call is one ask (protos/llmos/graph.proto) over llmos_client_call;
 * the reply's GraphResult (GraphLoadResult for loads) is copied into plain
 * C values, so no protobuf type crosses the public header.  A load is a
 * series of GraphLoadRequests under one random load id: chunks of each
 * file (or a path on the node), then a commit that loads them all in one
 * transaction.
 *
 * Thread-safety: like every call, through llmos_client_call; a load handle
 * has one owner.  Never links the graph store itself.
 */
#include "client_internal.h"
#include "llmos/client.h"

#include "llmos/graph.pb-c.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define GRAPH "graph"

/* Packs request m into a new buffer and asks the graph actor; *r is the
 * reply on 0.  what names the call in messages. */
static int ask(llmos_client_t *c, uint32_t type, const ProtobufCMessage *m, uint32_t timeout_ms,
               const char *what, llmos_client_reply_t **r, llmos_client_error_t *err) {
    *r = NULL;
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "graph %s: no client", what);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return client_err(err, LLMOS_CLIENT_ENOMEM, "graph %s: no memory for a %zu-byte request", what, len);
    protobuf_c_message_pack(m, buf);
    int rc = llmos_client_call(c, GRAPH, type, buf, len, timeout_ms, r, err);
    free(buf);
    if (rc) llmos_client_reply_free(r);
    return rc;
}

/* The text of a GraphResult reply into *out (caller frees); *facts (may be
 * NULL) gets its fact count. */
static int result_text(llmos_client_reply_t **r, const char *what, char **out, uint64_t *facts,
                       llmos_client_error_t *err) {
    Llmos__GraphResult *res = llmos__graph_result__unpack(NULL, (*r)->len, (*r)->data);
    int rc = 0;
    if (!res) {
        rc = client_err(err, LLMOS_CLIENT_EFORMAT,
                        "graph %s: the node's reply (%zu bytes) is not a GraphResult", what, (*r)->len);
    } else {
        *out = strdup(res->text ? res->text : "");
        if (!*out) rc = client_err(err, LLMOS_CLIENT_ENOMEM, "graph %s: no memory for the answer", what);
        if (facts) *facts = res->facts;
        llmos__graph_result__free_unpacked(res, NULL);
    }
    llmos_client_reply_free(r);
    return rc;
}

int llmos_client_graph_query(llmos_client_t *c, const char *sparql, const char *format,
                             uint32_t query_timeout_ms, uint32_t timeout_ms, char **out,
                             llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "graph query: no place for the answer");
    *out = NULL;
    if (!sparql) return client_err(err, LLMOS_CLIENT_EINVAL, "graph query: no query");
    Llmos__GraphQueryRequest q = LLMOS__GRAPH_QUERY_REQUEST__INIT;
    q.sparql = (char *)sparql;
    q.format = (char *)(format ? format : "");
    q.timeout_ms = query_timeout_ms;
    llmos_client_reply_t *r;
    int rc = ask(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY, &q.base, timeout_ms, "query", &r, err);
    return rc ? rc : result_text(&r, "query", out, NULL, err);
}

int llmos_client_graph_link(llmos_client_t *c, const char *text, const llmos_client_link_opts_t *opts,
                            uint32_t timeout_ms, char **out, uint64_t *facts, llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "graph link: no place for the answer");
    *out = NULL;
    if (facts) *facts = 0;
    if (!text) return client_err(err, LLMOS_CLIENT_EINVAL, "graph link: no text");
    static const llmos_client_link_opts_t none = {0};
    if (!opts) opts = &none;
    Llmos__GraphLinkRequest q = LLMOS__GRAPH_LINK_REQUEST__INIT;
    q.text = (char *)text;
    q.hops = opts->hops;
    q.hops_set = opts->hops_set != 0; /* hops 0 is sent only with hops_set (proto3 drops zeros) */
    q.max_facts = opts->max_facts;
    q.format = (char *)(opts->format ? opts->format : "");
    llmos_client_reply_t *r;
    int rc = ask(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK, &q.base, timeout_ms, "link", &r, err);
    return rc ? rc : result_text(&r, "link", out, facts, err);
}

static int walk(llmos_client_t *c, uint32_t type, const char *what, const char *from, const char *to,
                const llmos_client_walk_opts_t *opts, uint32_t timeout_ms, char **out,
                llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "graph %s: no place for the answer", what);
    *out = NULL;
    if (!from || (type == LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_PATH && !to))
        return client_err(err, LLMOS_CLIENT_EINVAL, "graph %s: no node given", what);
    static const llmos_client_walk_opts_t none = {0};
    if (!opts) opts = &none;
    Llmos__GraphWalkRequest q = LLMOS__GRAPH_WALK_REQUEST__INIT;
    q.node = (char *)from;
    q.to = (char *)(to ? to : "");
    q.hops = opts->hops;
    q.dir = (char *)(opts->dir ? opts->dir : "");
    q.max_edges = opts->max_edges;
    llmos_client_reply_t *r;
    int rc = ask(c, type, &q.base, timeout_ms, what, &r, err);
    return rc ? rc : result_text(&r, what, out, NULL, err);
}

int llmos_client_graph_neighbors(llmos_client_t *c, const char *node, const llmos_client_walk_opts_t *opts,
                                 uint32_t timeout_ms, char **out, llmos_client_error_t *err) {
    return walk(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_NEIGHBORS, "neighbors", node, NULL, opts, timeout_ms, out,
                err);
}

int llmos_client_graph_path(llmos_client_t *c, const char *from, const char *to,
                            const llmos_client_walk_opts_t *opts, uint32_t timeout_ms, char **out,
                            llmos_client_error_t *err) {
    return walk(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_PATH, "path", from, to, opts, timeout_ms, out, err);
}

int llmos_client_graph_stats(llmos_client_t *c, int distinct, uint32_t timeout_ms, char **out,
                             llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "graph stats: no place for the answer");
    *out = NULL;
    Llmos__GraphStatsRequest q = LLMOS__GRAPH_STATS_REQUEST__INIT;
    q.distinct = distinct != 0;
    llmos_client_reply_t *r;
    int rc = ask(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_STATS, &q.base, timeout_ms, "stats", &r, err);
    return rc ? rc : result_text(&r, "stats", out, NULL, err);
}

/* ---- loads ---- */

struct llmos_client_graph_load {
    llmos_client_t *c;       /* borrowed */
    char id[33];             /* the load id: 128 random bits in hex */
    char *format, *base_iri; /* owned copies ("" = none) */
    int strict;
};

int llmos_client_graph_load_new(llmos_client_t *c, const llmos_client_load_opts_t *opts,
                                llmos_client_graph_load_t **out, llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "graph load: no place for the load");
    *out = NULL;
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "graph load: no client");
    llmos_client_graph_load_t *l = calloc(1, sizeof *l);
    if (l) {
        l->format = strdup(opts && opts->format ? opts->format : "");
        l->base_iri = strdup(opts && opts->base_iri ? opts->base_iri : "");
    }
    if (!l || !l->format || !l->base_iri) {
        llmos_client_graph_load_destroy(&l);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "graph load: no memory");
    }
    l->c = c;
    l->strict = opts && opts->strict;
    uint64_t rnd[2] = {0, 0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* only to tell loads apart, never to decide */
        rnd[0] = (uint64_t)getpid() ^ (uint64_t)ts.tv_nsec;
        rnd[1] = (uint64_t)ts.tv_sec;
    }
    snprintf(l->id, sizeof l->id, "%016" PRIx64 "%016" PRIx64, rnd[0], rnd[1]);
    *out = l;
    return 0;
}

void llmos_client_graph_load_destroy(llmos_client_graph_load_t **lp) {
    if (!lp || !*lp) return;
    free((*lp)->format);
    free((*lp)->base_iri);
    free(*lp);
    *lp = NULL;
}

void llmos_client_load_result_free(llmos_client_load_result_t **rp) {
    if (!rp || !*rp) return;
    free((*rp)->diagnostics);
    free(*rp);
    *rp = NULL;
}

/* Sends one GraphLoadRequest of the load; *res (may be NULL) gets the
 * node's answer (caller frees). */
static int load_ask(llmos_client_graph_load_t *l, Llmos__GraphLoadRequest *q, uint32_t timeout_ms,
                    Llmos__GraphLoadResult **res, llmos_client_error_t *err) {
    q->load_id = l->id;
    q->format = l->format;
    q->base_iri = l->base_iri;
    q->strict = l->strict;
    llmos_client_reply_t *r;
    int rc = ask(l->c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LOAD, &q->base, timeout_ms, "load", &r, err);
    if (rc) return rc;
    Llmos__GraphLoadResult *m = llmos__graph_load_result__unpack(NULL, r->len, r->data);
    if (!m)
        rc = client_err(err, LLMOS_CLIENT_EFORMAT,
                        "graph load: the node's reply (%zu bytes) is not a GraphLoadResult", r->len);
    llmos_client_reply_free(&r);
    if (m && res)
        *res = m;
    else if (m)
        llmos__graph_load_result__free_unpacked(m, NULL);
    return rc;
}

int llmos_client_graph_load_send(llmos_client_graph_load_t *l, uint32_t file, const char *name,
                                 uint64_t offset, const void *data, size_t len, uint32_t timeout_ms,
                                 uint64_t *received, llmos_client_error_t *err) {
    if (received) *received = 0;
    if (!l || !name || (len && !data))
        return client_err(err, LLMOS_CLIENT_EINVAL, "graph load: no load, name or data");
    Llmos__GraphLoadRequest q = LLMOS__GRAPH_LOAD_REQUEST__INIT;
    q.file = file;
    q.name = (char *)name;
    q.offset = offset;
    q.data.data = (uint8_t *)data;
    q.data.len = len;
    Llmos__GraphLoadResult *res = NULL;
    int rc = load_ask(l, &q, timeout_ms, &res, err);
    if (res) {
        if (received) *received = res->received;
        llmos__graph_load_result__free_unpacked(res, NULL);
    }
    return rc;
}

int llmos_client_graph_load_path(llmos_client_graph_load_t *l, uint32_t file, const char *path,
                                 uint32_t timeout_ms, llmos_client_error_t *err) {
    if (!l || !path || !path[0])
        return client_err(err, LLMOS_CLIENT_EINVAL, "graph load: no load or no path");
    Llmos__GraphLoadRequest q = LLMOS__GRAPH_LOAD_REQUEST__INIT;
    q.file = file;
    q.name = (char *)path;
    q.path = (char *)path;
    return load_ask(l, &q, timeout_ms, NULL, err);
}

int llmos_client_graph_load_commit(llmos_client_graph_load_t *l, uint32_t files, uint32_t timeout_ms,
                                   llmos_client_load_result_t **out, llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "graph load: no place for the result");
    *out = NULL;
    if (!l) return client_err(err, LLMOS_CLIENT_EINVAL, "graph load: no load");
    Llmos__GraphLoadRequest q = LLMOS__GRAPH_LOAD_REQUEST__INIT;
    q.commit = 1;
    q.file = files;
    Llmos__GraphLoadResult *res = NULL;
    int rc = load_ask(l, &q, timeout_ms, &res, err);
    if (rc) return rc;
    llmos_client_load_result_t *o = calloc(1, sizeof *o);
    if (o) o->diagnostics = strdup(res->diagnostics ? res->diagnostics : "");
    if (!o || !o->diagnostics) {
        llmos_client_load_result_free(&o);
        llmos__graph_load_result__free_unpacked(res, NULL);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "graph load: no memory for the result");
    }
    o->received = res->received;
    o->lines = res->lines;
    o->read = res->read;
    o->added = res->added;
    o->terms_added = res->terms_added;
    o->errors = res->errors;
    o->seconds = res->seconds;
    llmos__graph_load_result__free_unpacked(res, NULL);
    *out = o;
    return 0;
}
