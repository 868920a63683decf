/*
 * graph_actor.c — the `graph` actor (see graph_actor.h): a front actor
 * registered as "graph" that only forwards, GRAPH_READERS pinned readers
 * that answer reads, and the writer (graph_writer.c) that runs loads.  The
 * front hands each read to an idle reader (one that has emptied its
 * mailbox), so a long query ties up one reader, not the graph.  Each
 * reader holds its own entity linker (built on its first link request, then
 * reused while the store's triple and term counts stay the same: a built
 * linker is immutable).
 * Each request runs on its own read snapshot, so a load (LMDB's single
 * writer: the writer actor of graph_writer.c, or an outside `llmos-graph
 * load`) never blocks it and is seen by the next request.  Requests are
 * forwarded unchanged (same sender and correlation id): the reader or
 * writer answers the client itself.  The text of a reply is what `llmos-graph
 * query|link` prints, so the two can be compared.
 */
#include "actors/graph_actor.h"
#include "actors/graph_internal.h"

#include "graph/link.h"
#include "graph/sparql.h"
#include "graph/store.h"
#include "graph/walk.h"
#include "llmos/graph.pb-c.h"
#include "runtime/base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reader's state. */
typedef struct graph_actor {
    graph_shared_t *sh;      /* one reference */
    rt_system_t *sys;        /* borrowed: polled for shutdown during long requests */
    int index;               /* in sh->readers */
    graph_store_t *store;    /* borrowed: sh->store */
    graph_linker_t *linker;  /* owned; NULL until the first link request */
    graph_stats_t linker_at; /* the snapshot's counts when the linker was built */
} graph_actor_t;

void graph_shared_release(graph_shared_t *sh) {
    if (!sh || atomic_fetch_sub(&sh->refs, 1) != 1) return;
    graph_store_close(&sh->store);
    free(sh);
}

static int graph_actor_init(rt_ctx_t *ctx, void *arg, void **state) {
    const graph_reader_slot_t *slot = arg;
    graph_actor_t *g = calloc(1, sizeof *g);
    if (!g) {
        graph_shared_release(slot->sh);
        return LLMOS_ENOMEM;
    }
    g->sh = slot->sh;
    g->index = slot->index;
    g->store = g->sh->store;
    g->sys = rt_ctx_system(ctx);
    *state = g;
    return 0;
}

/* The mailbox is empty: the front may hand this reader the next request. */
static bool graph_actor_idle(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    graph_actor_t *g = state;
    atomic_store(&g->sh->busy[g->index], 0);
    return false;
}

static void graph_actor_deinit(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    graph_actor_t *g = state;
    graph_linker_destroy(&g->linker);
    graph_shared_release(g->sh);
    free(g);
}

/* The monotonic instant to stop at: the earlier of the envelope's wall-clock
 * deadline and now + timeout_ms; 0 = none. */
static uint64_t request_deadline_ns(const rt_msg_t *msg, uint32_t timeout_ms) {
    uint64_t now = llmos_now_ns(), d = 0;
    if (msg->deadline_ms) {
        uint64_t wall = llmos_wall_ms();
        d = now + (msg->deadline_ms > wall ? (msg->deadline_ms - wall) * 1000000u : 1);
    }
    if (timeout_ms) {
        uint64_t t = now + (uint64_t)timeout_ms * 1000000u;
        if (!d || t < d) d = t;
    }
    return d;
}

void graph_reply_packed(rt_ctx_t *ctx, const rt_msg_t *msg, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "graph: no memory for a %zu-byte reply", n);
        return;
    }
    protobuf_c_message_pack(m, buf);
    rt_reply(ctx, msg, msg->type, buf, n);
    free(buf);
}

static void reply_result(rt_ctx_t *ctx, const rt_msg_t *msg, const char *text, uint64_t facts) {
    Llmos__GraphResult res = LLMOS__GRAPH_RESULT__INIT;
    res.text = (char *)text;
    res.facts = facts;
    graph_reply_packed(ctx, msg, &res.base);
}

/* sparql_exec_opts_t.interrupted: the node is shutting down (rt_system_destroy
 * waits for this reader's current request, so the request must end). */
static int node_stopping(void *ctx) {
    return rt_system_stopping(ctx) ? 1 : 0;
}

#define CAP_NAME "graph_max_result_bytes"

static int handle_query(graph_actor_t *g, rt_ctx_t *ctx, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__GraphQueryRequest *q = llmos__graph_query_request__unpack(NULL, msg->len, msg->data);
    if (!q) return llmos_error_set(err, LLMOS_EFORMAT, "query: the payload (%zu bytes) is not a GraphQueryRequest", msg->len);
    sparql_format fmt = SPARQL_FORMAT_TSV;
    int rc = 0;
    if (q->format && q->format[0]) rc = sparql_format_parse(q->format, &fmt, err);
    graph_reader_t *r = NULL;
    char *out = NULL;
    size_t len = 0;
    sparql_exec_opts_t o = {.deadline_ns = request_deadline_ns(msg, q->timeout_ms),
                            .interrupted = node_stopping,
                            .interrupt_ctx = g->sys,
                            .max_result_bytes = g->sh->max_result_bytes,
                            .cap_name = CAP_NAME};
    if (!rc) rc = graph_reader_begin(g->store, &r, err);
    if (!rc) rc = sparql_query_run(r, q->sparql, strlen(q->sparql), fmt, &o, &out, &len, err);
    graph_reader_end(&r);
    if (rc == LLMOS_ECANCELED && rt_system_stopping(g->sys))
        llmos_error_prefix(err, "the node is shutting down: ");
    if (!rc) reply_result(ctx, msg, out, 0);
    free(out);
    llmos__graph_query_request__free_unpacked(q, NULL);
    return rc;
}

/* The mentions and facts as `llmos-graph link` prints them (text format). */
static int link_text(const graph_link_result_t *res, const char *text, char **out, size_t *len, llmos_error_t *err) {
    FILE *f = open_memstream(out, len);
    if (!f) return llmos_error_set(err, LLMOS_ENOMEM, "graph link: no memory for the reply");
    for (size_t i = 0; i < res->nmentions; i++) {
        const graph_link_mention_t *m = &res->mentions[i];
        fprintf(f, "mention\t%zu\t%zu\t%.*s\t<%s>%s\n", m->start, m->end, (int)(m->end - m->start), text + m->start,
                m->iri, m->candidates > 1 ? "\t(ambiguous)" : "");
    }
    for (size_t i = 0; i < res->nfacts; i++)
        fprintf(f, "fact\t%d\t%s %s %s .\n", res->facts[i].hop, res->facts[i].s, res->facts[i].p, res->facts[i].o);
    for (size_t i = 0; i < res->nfacts; i++) fprintf(f, "%s\n", res->facts[i].sentence);
    if (fclose(f) != 0) {
        free(*out);
        *out = NULL;
        return llmos_error_set(err, LLMOS_ENOMEM, "graph link: no memory for the reply");
    }
    return 0;
}

static int handle_link(graph_actor_t *g, rt_ctx_t *ctx, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__GraphLinkRequest *q = llmos__graph_link_request__unpack(NULL, msg->len, msg->data);
    if (!q) return llmos_error_set(err, LLMOS_EFORMAT, "link: the payload (%zu bytes) is not a GraphLinkRequest", msg->len);
    int rc = 0, json = 0;
    if (q->format && q->format[0] && strcmp(q->format, "text") != 0) {
        if (strcmp(q->format, "json") == 0)
            json = 1;
        else
            rc = llmos_error_set(err, LLMOS_EINVAL, "link: format '%s' is not text or json", q->format);
    }
    if (!rc && q->hops > 2) rc = llmos_error_set(err, LLMOS_EINVAL, "link: hops %u is not 0, 1 or 2", q->hops);
    /* proto3 sends no 0: hops 0 without hops_set is a request that gave
     * none, and gets the default (a knowledge-augmented generation without
     * "hops" then carries each mention's own facts). */
    int hops = q->hops || q->hops_set ? (int)q->hops : GRAPH_LINK_DEFAULT_HOPS;
    graph_reader_t *r = NULL;
    graph_link_result_t res = {0};
    char *out = NULL;
    size_t len = 0;
    if (!rc) rc = graph_reader_begin(g->store, &r, err);
    /* A load since (ours, or an outside llmos-graph load) changes the counts:
     * the label index is rebuilt from this snapshot. */
    graph_stats_t now;
    if (!rc) rc = graph_store_stats(r, &now, err);
    if (!rc && g->linker && (now.triples != g->linker_at.triples || now.terms != g->linker_at.terms))
        graph_linker_destroy(&g->linker);
    if (!rc && !g->linker) {
        rc = graph_linker_new(r, &g->linker, err);
        g->linker_at = now;
    }
    graph_link_opts_t lo = {.hops = hops, .max_facts = q->max_facts}; /* 0 = the default; huge = the cap */
    size_t tlen = strlen(q->text);
    if (!rc) rc = graph_link_text(g->linker, r, q->text, tlen, &lo, &res, err);
    if (!rc && json) {
        rc = graph_link_to_json(&res, q->text, tlen, &out, &len, err);
        if (!rc) {
            /* llmos-graph prints the object and a newline */
            char *p = realloc(out, len + 2);
            if (!p) rc = llmos_error_set(err, LLMOS_ENOMEM, "graph link: no memory for the reply");
            else {
                out = p;
                out[len++] = '\n';
                out[len] = 0;
            }
        }
    } else if (!rc) {
        rc = link_text(&res, q->text, &out, &len, err);
    }
    if (!rc && len > g->sh->max_result_bytes)
        rc = llmos_error_set(err, LLMOS_ETOOBIG,
                             "link: the answer is %zu bytes, over the %llu-byte cap (" CAP_NAME
                             "): ask for fewer facts (max_facts %zu)",
                             len, (unsigned long long)g->sh->max_result_bytes, res.nfacts);
    if (!rc) reply_result(ctx, msg, out, res.nfacts);
    free(out);
    graph_link_result_deinit(&res);
    graph_reader_end(&r);
    llmos__graph_link_request__free_unpacked(q, NULL);
    return rc;
}

/* ---- neighbors and path: edges as N-Triples, as llmos-graph prints them ---- */

typedef struct edge_out {
    graph_reader_t *r;
    FILE *f;
    llmos_buf_t term[3]; /* the text of the triple's terms, grown as needed */
    llmos_error_t *err;
    uint64_t bytes, cap; /* written so far; the answer's cap */
    uint64_t lines;      /* lines written */
    rt_system_t *sys;    /* polled for shutdown */
} edge_out_t;

/* Term id in N-Triples syntax into e's slot i; *out borrowed until the next
 * call for slot i. */
static int edge_term(edge_out_t *e, int i, graph_id_t id, const char **out) {
    llmos_buf_clear(&e->term[i]);
    int rc = graph_term_append_id(e->r, id, &e->term[i], e->err);
    *out = e->term[i].data ? e->term[i].data : "";
    return rc;
}

static void edge_out_free(edge_out_t *e) {
    if (!e) return;
    for (int i = 0; i < 3; i++)
        llmos_buf_deinit(&e->term[i]);
    free(e);
}

/* Counts a line written to e->f against the cap (the answer is never built
 * past it) and stops at shutdown. */
static int edge_out_count(edge_out_t *e, int n) {
    if (n < 0) return llmos_error_set(e->err, LLMOS_ENOMEM, "no memory for the answer");
    e->bytes += (uint64_t)n;
    e->lines++;
    if (e->cap && e->bytes > e->cap)
        return llmos_error_set(e->err, LLMOS_ETOOBIG,
                               "the answer is over the %llu-byte cap (" CAP_NAME
                               ") after %llu lines: ask for less "
                               "(fewer hops, --max-edges)",
                               (unsigned long long)e->cap, (unsigned long long)(e->lines - 1));
    if (rt_system_stopping(e->sys))
        return llmos_error_set(e->err, LLMOS_ECANCELED, "the node is shutting down");
    return 0;
}

static int print_edge(void *ctx, const graph_triple_t *t, unsigned hop) {
    (void)hop;
    edge_out_t *e = ctx;
    graph_id_t ids[3] = {t->s, t->p, t->o};
    const char *txt[3];
    for (int i = 0; i < 3; i++) {
        int rc = edge_term(e, i, ids[i], &txt[i]);
        if (rc) return rc;
    }
    return edge_out_count(e, fprintf(e->f, "%s %s %s .\n", txt[0], txt[1], txt[2]));
}

static int parse_dir(const char *s, graph_dir *out, llmos_error_t *err) {
    if (!s || !*s || strcmp(s, "both") == 0) *out = GRAPH_DIR_BOTH;
    else if (strcmp(s, "out") == 0) *out = GRAPH_DIR_OUT;
    else if (strcmp(s, "in") == 0) *out = GRAPH_DIR_IN;
    else return llmos_error_set(err, LLMOS_EINVAL, "dir '%s' is not out, in or both", s);
    return 0;
}

static int handle_walk(graph_actor_t *g, rt_ctx_t *ctx, const rt_msg_t *msg, int is_path, llmos_error_t *err) {
    Llmos__GraphWalkRequest *q = llmos__graph_walk_request__unpack(NULL, msg->len, msg->data);
    if (!q) return llmos_error_set(err, LLMOS_EFORMAT, "walk: the payload (%zu bytes) is not a GraphWalkRequest", msg->len);
    graph_walk_options_t o = {.hops = q->hops ? q->hops : (is_path ? 6 : 1), .max_edges = q->max_edges};
    int rc = parse_dir(q->dir, &o.dir, err);
    if (!rc && o.hops > (is_path ? 64u : 16u))
        rc = llmos_error_set(err, LLMOS_EINVAL, "hops %u is over %u", o.hops, is_path ? 64u : 16u);
    graph_reader_t *r = NULL;
    graph_id_t a = 0, b = 0;
    char *out = NULL;
    size_t len = 0;
    edge_out_t *e = NULL;
    if (!rc && !(e = calloc(1, sizeof *e))) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a walk");
    if (!rc && !(e->f = open_memstream(&out, &len))) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a walk");
    if (!rc) rc = graph_reader_begin(g->store, &r, err);
    if (!rc) rc = graph_node_resolve(r, q->node, NULL, &a, err);
    if (!rc && is_path) rc = graph_node_resolve(r, q->to, NULL, &b, err);
    if (!rc) {
        e->r = r;
        e->err = err;
        e->cap = g->sh->max_result_bytes;
        e->sys = g->sys;
    }
    if (!rc && !is_path) rc = graph_neighbors(r, a, &o, print_edge, e, NULL, err);
    if (!rc && is_path) {
        graph_triple_t path[64];
        size_t n = 0;
        rc = graph_path(r, a, b, &o, path, 64, &n, err);
        for (size_t i = 0; !rc && i < n; i++) rc = print_edge(e, &path[i], 0);
    }
    if (e && e->f && fclose(e->f) != 0 && !rc) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a walk");
    if (!rc) reply_result(ctx, msg, out ? out : "", 0);
    free(out);
    edge_out_free(e);
    graph_reader_end(&r);
    llmos__graph_walk_request__free_unpacked(q, NULL);
    return rc;
}

/* ---- stats, as `llmos-graph stats` prints them ---- */

static int print_pred(void *ctx, graph_id_t p, uint64_t count) {
    edge_out_t *e = ctx;
    const char *txt;
    int rc = edge_term(e, 0, p, &txt);
    if (!rc) rc = edge_out_count(e, fprintf(e->f, "%s\t%llu\n", txt, (unsigned long long)count));
    return rc;
}

static int handle_stats(graph_actor_t *g, rt_ctx_t *ctx, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__GraphStatsRequest *q = llmos__graph_stats_request__unpack(NULL, msg->len, msg->data);
    if (!q) return llmos_error_set(err, LLMOS_EFORMAT, "stats: the payload (%zu bytes) is not a GraphStatsRequest", msg->len);
    graph_reader_t *r = NULL;
    char *out = NULL;
    size_t len = 0;
    graph_stats_t st;
    int rc = 0;
    edge_out_t *e = calloc(1, sizeof *e);
    if (!e) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for stats");
    if (!rc && !(e->f = open_memstream(&out, &len))) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for stats");
    if (!rc) rc = graph_reader_begin(g->store, &r, err);
    if (!rc) rc = graph_store_stats(r, &st, err);
    if (!rc)
        fprintf(e->f, "triples\t%llu\nterms\t%llu\npredicates\t%llu\n", (unsigned long long)st.triples,
                (unsigned long long)st.terms, (unsigned long long)st.predicates);
    if (!rc && q->distinct) {
        uint64_t ns = 0, no = 0;
        rc = graph_store_distinct(r, 0, &ns, err);
        if (!rc) rc = graph_store_distinct(r, 2, &no, err);
        if (!rc) fprintf(e->f, "subjects\t%llu\nobjects\t%llu\n", (unsigned long long)ns, (unsigned long long)no);
    }
    if (!rc) {
        fprintf(e->f, "# predicate\ttriples\n");
        e->r = r;
        e->err = err;
        e->cap = g->sh->max_result_bytes;
        e->sys = g->sys;
        rc = graph_store_predicates(r, print_pred, e, err);
    }
    if (e && e->f && fclose(e->f) != 0 && !rc) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for stats");
    if (!rc) reply_result(ctx, msg, out ? out : "", 0);
    free(out);
    edge_out_free(e);
    graph_reader_end(&r);
    llmos__graph_stats_request__free_unpacked(q, NULL);
    return rc;
}

static int graph_actor_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    graph_actor_t *g = state;
    if (msg->flags & RT_MSG_REPLY) return 0;
    llmos_error_t err = {0};
    int rc;
    switch (msg->type) {
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY:
        rc = handle_query(g, ctx, msg, &err);
        break;
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK:
        rc = handle_link(g, ctx, msg, &err);
        break;
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_NEIGHBORS:
        rc = handle_walk(g, ctx, msg, 0, &err);
        break;
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_PATH:
        rc = handle_walk(g, ctx, msg, 1, &err);
        break;
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_STATS:
        rc = handle_stats(g, ctx, msg, &err);
        break;
    default:
        return LLMOS_EUNKNOWNTYPE;
    }
    /* A bad request is the requester's problem: answer it, never fail. */
    if (rc) rt_reply_error(ctx, msg, rc, "%s", err.msg[0] ? err.msg : llmos_strerror(rc));
    return 0;
}

static const rt_actor_def_t graph_reader_def = {"graph-reader", graph_actor_init, graph_actor_receive,
                                                graph_actor_deinit, graph_actor_idle};

/* ---- the front: "graph" hands reads to an idle reader, loads to the writer ---- */

typedef struct graph_front {
    graph_shared_t *sh; /* one reference */
    int next;           /* round-robin start */
} graph_front_t;

static int graph_front_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    graph_front_t *f = calloc(1, sizeof *f);
    if (!f) {
        graph_shared_release(arg);
        return LLMOS_ENOMEM;
    }
    f->sh = arg;
    *state = f;
    return 0;
}

static void graph_front_deinit(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    graph_front_t *f = state;
    graph_shared_release(f->sh);
    free(f);
}

/* The first idle reader from the round-robin position; when all are busy,
 * the next in turn (it queues there).  Approximate by design: a reader that
 * just emptied its mailbox may look busy for a moment. */
static int pick_reader(graph_front_t *f) {
    int n = f->sh->nreaders;
    for (int k = 0; k < n; k++) {
        int i = (f->next + k) % n;
        int idle = 0;
        if (atomic_compare_exchange_strong(&f->sh->busy[i], &idle, 1)) {
            f->next = (i + 1) % n;
            return i;
        }
    }
    int i = f->next;
    f->next = (i + 1) % n;
    return i;
}

static int graph_front_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    graph_front_t *f = state;
    if (msg->flags & RT_MSG_REPLY) return 0;
    int rc;
    switch (msg->type) {
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY:
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK:
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_NEIGHBORS:
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_PATH:
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_STATS:
        rc = rt_forward(ctx, f->sh->readers[pick_reader(f)], msg);
        break;
    case LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LOAD:
        rc = rt_forward(ctx, f->sh->writer, msg);
        break;
    default:
        return LLMOS_EUNKNOWNTYPE;
    }
    /* The reader or writer answers the asker; an undeliverable ask is
     * answered by the runtime, so only a failed copy is ours to report. */
    if (rc == LLMOS_ENOMEM && msg->corr)
        rt_reply_error(ctx, msg, rc, "graph: no memory to forward %zu bytes", msg->len);
    return 0;
}

static const rt_actor_def_t graph_front_def = {"graph", graph_front_init, graph_front_receive, graph_front_deinit,
                                               NULL};

int actors_graph_start(rt_system_t *sys, const char *db, const actors_graph_opts_t *opts,
                       llmos_error_t *err) {
    graph_shared_t *sh = calloc(1, sizeof *sh);
    if (!sh) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the graph actor");
    sh->max_result_bytes =
        opts && opts->max_result_bytes ? opts->max_result_bytes : ACTORS_GRAPH_MAX_RESULT_DEFAULT;
    /* Read-write for loads over messages, writing through the file mapping
     * (MDB_WRITEMAP, as llmos-graph load does): a load's pages then live in
     * the page cache, not in this process's heap (measured on a 1.5 M-triple
     * wire load: private peak 286 MiB with heap-held dirty pages).  A store
     * this process may not write is still served, read-only. */
    graph_store_options_t so = {.write_map = 1};
    int rc = graph_store_open(db, &so, &sh->store, err);
    if (rc == LLMOS_EPERM) {
        so.read_only = 1;
        so.write_map = 0;
        rc = graph_store_open(db, &so, &sh->store, err);
    } else if (!rc) {
        sh->writable = 1;
    }
    if (rc) {
        free(sh);
        return llmos_error_prefix(err, "opening the graph %s: ", db);
    }
    /* One reference per actor; each drops its own when it stops.  Ours
     * covers the actors not spawned yet. */
    atomic_init(&sh->refs, 1);
    rt_ref_t started[GRAPH_READERS + 1];
    int nstarted = 0;
    rt_spawn_opts_t po = {.name = NULL, .pinned = true};
    atomic_fetch_add(&sh->refs, 1);
    rc = rt_spawn(sys, &graph_writer_def, sh, &po, &sh->writer, err);
    if (rc) {
        atomic_fetch_sub(&sh->refs, 1);
        llmos_error_prefix(err, "starting the graph writer: ");
    } else {
        started[nstarted++] = sh->writer;
    }
    for (int i = 0; i < GRAPH_READERS && !rc; i++) {
        sh->slots[i] = (graph_reader_slot_t){sh, i};
        atomic_init(&sh->busy[i], 0);
        atomic_fetch_add(&sh->refs, 1);
        rc = rt_spawn(sys, &graph_reader_def, &sh->slots[i], &po, &sh->readers[i], err);
        if (rc) {
            atomic_fetch_sub(&sh->refs, 1);
            llmos_error_prefix(err, "starting graph reader %d: ", i);
        } else {
            started[nstarted++] = sh->readers[i];
            sh->nreaders++;
        }
    }
    if (!rc) {
        /* The front's reference is ours. */
        rt_spawn_opts_t o = {.name = "graph"};
        rt_ref_t ref;
        rc = rt_spawn(sys, &graph_front_def, sh, &o, &ref, err);
        if (!rc) return 0;
        llmos_error_prefix(err, "starting the graph actor: ");
    }
    for (int i = 0; i < nstarted; i++) (void)rt_stop(sys, started[i]);
    graph_shared_release(sh);
    return rc;
}
