/*
 * sparql_write.c — result writers: SPARQL 1.1 Query Results TSV and JSON.
 *
 * A writer is a sink (sparql.h) that appends to one buffer: terms are
 * decoded straight from the store's zero-copy views into it (TSV through
 * graph_term_format, JSON escaped here), so a row costs no allocation once
 * the buffer has grown to its working size.  With an output FILE the buffer
 * is flushed every 64 KiB; without one the whole result stays in memory for
 * the caller (the graph actor puts it in a reply).  A writer with max_bytes
 * counts what it wrote (flushed or not) after every row and refuses the row
 * that passes the cap, so a result too large for its caller is never built
 * whole.
 *
 * TSV: a header line "?x\t?y", then one line per row with each term in
 * N-Triples syntax (unbound = empty field); ASK writes "?_askResult" and
 * true/false like other engines do (TSV has no boolean form).  A query
 * with no variable (`SELECT * {}`) writes an empty header line and one empty
 * line per row; JSON writes "vars":[] and one {} binding per row.
 * JSON: {"head":{"vars":[...]},"results":{"bindings":[{"x":{"type":"uri",
 * "value":...}}, ...]}}, literals with "xml:lang" or "datatype"; ASK:
 * {"head":{},"boolean":true}.
 */
#include "graph/sparql.h"
#include "graph/sparql_internal.h"

#include <stdlib.h>
#include <string.h>

#define FLUSH_AT (64u * 1024u)

static int w_nomem(sparql_writer_t *w) {
    return llmos_error_set(w->err, LLMOS_ENOMEM, "out of memory writing results");
}

static int w_put(sparql_writer_t *w, const char *s, size_t n) {
    return llmos_buf_append(&w->buf, s, n) ? w_nomem(w) : 0;
}

static int w_puts(sparql_writer_t *w, const char *s) { return w_put(w, s, strlen(s)); }

static int w_flush(sparql_writer_t *w, int force) {
    if (!w->out || (!force && w->buf.len < FLUSH_AT)) return 0;
    if (w->buf.len && fwrite(w->buf.data, 1, w->buf.len, w->out) != w->buf.len)
        return llmos_error_set(w->err, LLMOS_EIO, "writing results failed");
    w->flushed += w->buf.len;
    w->buf.len = 0;
    if (force && fflush(w->out) != 0) return llmos_error_set(w->err, LLMOS_EIO, "writing results failed");
    return 0;
}

/* The cap is checked as the result grows, row by row: a result over it is
 * never built whole (the graph actor would otherwise hold it in memory). */
static int w_check_cap(sparql_writer_t *w) {
    if (!w->max_bytes || w->flushed + w->buf.len <= w->max_bytes) return 0;
    if (w->cap_name)
        return llmos_error_set(
            w->err, LLMOS_ETOOBIG,
            "the result is over the %llu-byte cap (%s) after %llu rows: add a LIMIT, narrow the "
            "query or raise %s",
            (unsigned long long)w->max_bytes, w->cap_name, (unsigned long long)w->nrows, w->cap_name);
    return llmos_error_set(
        w->err, LLMOS_ETOOBIG,
        "the result is over the %llu-byte cap after %llu rows: add a LIMIT or narrow the query",
        (unsigned long long)w->max_bytes, (unsigned long long)w->nrows);
}

/* A JSON string, through the shared escaper. */
static int w_json_str(sparql_writer_t *w, const char *s, size_t n) {
    return sparql_json_put_str(&w->buf, s, n) ? w_nomem(w) : 0;
}

static int w_head(void *ctx, const char *const *names, int n) {
    sparql_writer_t *w = ctx;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(names[i]) + 1;
    w->names = calloc((size_t)n + 1, sizeof *w->names);
    w->names_mem = malloc(total + 1);
    if (!w->names || !w->names_mem) return llmos_error_set(w->err, LLMOS_ENOMEM, "out of memory writing results");
    char *p = w->names_mem;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        memcpy(p, names[i], l + 1);
        w->names[i] = p;
        p += l + 1;
    }
    w->ncols = n;
    /* the term cache, once per writer; without it rows are still written */
    if (!w->cache) w->cache = calloc((size_t)1 << SPARQL_TERM_CACHE_BITS, sizeof *w->cache);
    int rc = 0;
    if (w->format == SPARQL_FORMAT_TSV) {
        for (int i = 0; i < n && !rc; i++) {
            if (i) rc = w_put(w, "\t", 1);
            if (!rc) rc = w_put(w, "?", 1);
            if (!rc) rc = w_puts(w, names[i]);
        }
        if (!rc) rc = w_put(w, "\n", 1);
        return rc ? rc : w_check_cap(w);
    }
    rc = w_puts(w, "{\"head\":{\"vars\":[");
    for (int i = 0; i < n && !rc; i++) {
        if (i) rc = w_put(w, ",", 1);
        if (!rc) rc = w_json_str(w, names[i], strlen(names[i]));
    }
    if (!rc) rc = w_puts(w, "]},\"results\":{\"bindings\":[");
    return rc ? rc : w_check_cap(w);
}

static int w_tsv_term(sparql_writer_t *w, graph_reader_t *r, graph_id_t id) {
    return graph_term_append_id(r, id, &w->buf, w->err);
}

static int w_json_term(sparql_writer_t *w, graph_reader_t *r, graph_id_t id) {
    graph_term_t t;
    int rc = graph_term_get(r, id, &t, w->err);
    if (rc) return rc;
    rc = w_puts(w, t.kind == GRAPH_TERM_IRI     ? "{\"type\":\"uri\",\"value\":"
                   : t.kind == GRAPH_TERM_BLANK ? "{\"type\":\"bnode\",\"value\":"
                                                : "{\"type\":\"literal\",\"value\":");
    if (!rc) rc = w_json_str(w, t.value, t.len);
    if (!rc && t.kind == GRAPH_TERM_LITERAL && t.lang) {
        rc = w_puts(w, ",\"xml:lang\":");
        if (!rc) rc = w_json_str(w, t.lang, t.lang_len);
    }
    if (!rc && t.kind == GRAPH_TERM_LITERAL && t.datatype) {
        rc = w_puts(w, ",\"datatype\":");
        if (!rc) rc = w_json_str(w, t.datatype, t.datatype_len);
    }
    return rc ? rc : w_put(w, "}", 1);
}

/* Appends term id as the format writes it.  Term ids never change meaning
 * (the dictionary only grows), so rendered text may be cached by id across
 * snapshots: a direct-mapped cache of short renderings spares the store
 * look-up and the escaping for terms that repeat (predicates, hubs). */
static int w_term(sparql_writer_t *w, graph_reader_t *r, graph_id_t id) {
    sparql_term_cache_t *slot = NULL;
    if (w->cache) {
        slot = &w->cache[(id * 0x9E3779B97F4A7C15ull) >> (64 - SPARQL_TERM_CACHE_BITS)];
        if (slot->id == id) return w_put(w, slot->text, slot->len);
    }
    size_t start = w->buf.len;
    int rc = w->format == SPARQL_FORMAT_TSV ? w_tsv_term(w, r, id) : w_json_term(w, r, id);
    if (!rc && slot && w->buf.len - start <= sizeof slot->text) {
        slot->id = id;
        slot->len = (uint32_t)(w->buf.len - start);
        memcpy(slot->text, w->buf.data + start, slot->len);
    }
    return rc;
}

static int w_row(void *ctx, graph_reader_t *r, const graph_id_t *ids, int n) {
    sparql_writer_t *w = ctx;
    int rc = 0;
    if (w->format == SPARQL_FORMAT_TSV) {
        for (int i = 0; i < n && !rc; i++) {
            if (i) rc = w_put(w, "\t", 1);
            if (!rc && ids[i]) rc = w_term(w, r, ids[i]);
        }
        if (!rc) rc = w_put(w, "\n", 1);
    } else {
        rc = w_puts(w, w->nrows ? ",{" : "{");
        int first = 1;
        for (int i = 0; i < n && !rc; i++) {
            if (!ids[i]) continue;
            if (!first) rc = w_put(w, ",", 1);
            first = 0;
            if (!rc) rc = w_json_str(w, w->names[i], strlen(w->names[i]));
            if (!rc) rc = w_put(w, ":", 1);
            if (!rc) rc = w_term(w, r, ids[i]);
        }
        if (!rc) rc = w_put(w, "}", 1);
    }
    if (!rc) rc = w_check_cap(w);
    if (rc) return rc;
    w->nrows++;
    return w_flush(w, 0);
}

static int w_boolean(void *ctx, int value) {
    sparql_writer_t *w = ctx;
    if (w->format == SPARQL_FORMAT_TSV) return w_puts(w, value ? "?_askResult\ntrue\n" : "?_askResult\nfalse\n");
    return w_puts(w, value ? "{\"head\":{},\"boolean\":true}\n" : "{\"head\":{},\"boolean\":false}\n");
}

static int w_finish(void *ctx) {
    sparql_writer_t *w = ctx;
    int rc = 0;
    if (w->format == SPARQL_FORMAT_JSON && w->names) rc = w_puts(w, "]}}\n");
    return rc ? rc : w_flush(w, 1);
}

int sparql_format_parse(const char *name, sparql_format *out, llmos_error_t *err) {
    if (name && strcmp(name, "tsv") == 0) *out = SPARQL_FORMAT_TSV;
    else if (name && strcmp(name, "json") == 0) *out = SPARQL_FORMAT_JSON;
    else return llmos_error_set(err, LLMOS_EINVAL, "unknown result format '%s' (tsv or json)", name ? name : "");
    return 0;
}

void sparql_writer_init(sparql_writer_t *w, sparql_format format, FILE *out, llmos_error_t *err) {
    memset(w, 0, sizeof *w);
    w->format = format;
    w->out = out;
    w->err = err;
}

void sparql_writer_deinit(sparql_writer_t *w) {
    llmos_buf_deinit(&w->buf);
    free(w->names);
    free(w->names_mem);
    free(w->cache);
    memset(w, 0, sizeof *w);
}

sparql_sink_t sparql_writer_sink(sparql_writer_t *w) {
    sparql_sink_t s = {w_head, w_row, w_boolean, w_finish, w};
    return s;
}

const char *sparql_writer_text(const sparql_writer_t *w, size_t *len) {
    if (len) *len = w->buf.len;
    return w->buf.data ? w->buf.data : "";
}

int sparql_query_run(graph_reader_t *r, const char *text, size_t len, sparql_format format,
                     const sparql_exec_opts_t *opts, char **out, size_t *out_len, llmos_error_t *err) {
    *out = NULL;
    sparql_query_t *q = NULL;
    int rc = sparql_query_parse(text, len, &q, err);
    if (rc) return rc;
    sparql_writer_t w;
    sparql_writer_init(&w, format, NULL, err);
    if (opts) {
        w.max_bytes = opts->max_result_bytes;
        w.cap_name = opts->cap_name;
    }
    sparql_sink_t sink = sparql_writer_sink(&w);
    rc = sparql_query_execute(r, q, opts, &sink, NULL, err);
    sparql_query_destroy(&q);
    if (rc) {
        sparql_writer_deinit(&w);
        return rc;
    }
    size_t n = 0;
    *out = llmos_buf_take(&w.buf, &n); /* an empty result still gets a string */
    sparql_writer_deinit(&w);
    if (!*out) return llmos_error_set(err, LLMOS_ENOMEM, "out of memory writing results");
    if (out_len) *out_len = n;
    return 0;
}
