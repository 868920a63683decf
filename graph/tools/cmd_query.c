/*
 * cmd_query.c — `llmos-graph query DB 'SPARQL' [--format tsv|json]
 * [--file Q.rq] [--timeout MS] [--max-result-bytes SIZE] [--explain]`
 * (`--file -` reads stdin).
 *
 * Parses the query (from the argument or a file), opens the store read-only,
 * runs the query on one snapshot and streams the results to stdout (so
 * memory does not grow with the result), up to --max-result-bytes when given
 * (default: no cap, 0 too): past it the query stops with ETOOBIG (what was
 * printed stays printed, the exit status is 1), and DISTINCT's table is
 * held under it too.  Errors
 * go to stderr as "llmos-graph query: <what and where>"; the exit status is
 * 0 on success, 1 on an error, 2 on a usage error.  With --explain the plan
 * (pattern order and estimates) and scan counts go to stderr.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/sparql.h"
#include "graph/store.h"
#include "runtime/base/clock.h"
#include "runtime/base/parse.h"

int graph_cmd_query(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: llmos-graph query DB 'SPARQL' [--format tsv|json] [--timeout MS] [--max-result-bytes SIZE]\n"
        "                          [--explain]\n"
        "       llmos-graph query DB --file Q.rq|- [options as above]\n"
        "  --format tsv|json         SPARQL 1.1 results format (default tsv)\n"
        "  --timeout MS              stop with ETIMEDOUT after MS milliseconds (default: none)\n"
        "  --max-result-bytes SIZE   stop with ETOOBIG once the result passes SIZE bytes (K/M/G\n"
        "                            suffixes; default and 0: no cap, the result streams)\n"
        "  --explain                 the plan and scan counts on stderr\n");
}

/* Reads a whole file into a malloc'd buffer (caller frees). */
static int read_file(const char *path, char **out, size_t *len, llmos_error_t *err) {
    int from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f) return llmos_error_set(err, LLMOS_ENOTFOUND, "cannot open query file %s", path);
    llmos_buf_t b = LLMOS_BUF_INIT;
    int rc = llmos_buf_read_file(&b, f, SPARQL_QUERY_MAX);
    if (!from_stdin) fclose(f);
    if (rc == 0 && !(*out = llmos_buf_take(&b, len))) rc = LLMOS_ENOMEM;
    llmos_buf_deinit(&b);
    if (rc == LLMOS_ETOOBIG)
        return llmos_error_set(err, rc, "%s: query over %u bytes", path, SPARQL_QUERY_MAX);
    if (rc == LLMOS_ENOMEM) return llmos_error_set(err, rc, "out of memory reading %s", path);
    if (rc) return llmos_error_set(err, rc, "error reading %s", path);
    return 0;
}

int graph_cmd_query(int argc, char **argv) {
    const char *db = NULL, *text = NULL, *file = NULL, *format = "tsv";
    uint64_t timeout_ms = 0;
    uint64_t max_result = 0;
    int explain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--format") == 0 && i + 1 < argc) format = argv[++i];
        else if (strncmp(a, "--format=", 9) == 0) format = a + 9;
        else if (strcmp(a, "--file") == 0 && i + 1 < argc) file = argv[++i];
        else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (llmos_parse_u64("--timeout", v, 0, UINT64_MAX / 1000000u, 0, &timeout_ms, NULL)) {
                fprintf(stderr, "llmos-graph query: --timeout wants milliseconds (0 = none), not '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--max-result-bytes") == 0 && i + 1 < argc) {
            if (llmos_parse_u64("--max-result-bytes", argv[++i], 0, UINT64_MAX, LLMOS_PARSE_SIZE, &max_result,
                                NULL)) {
                fprintf(
                    stderr,
                    "llmos-graph query: --max-result-bytes wants a size (e.g. 16M; 0 = no cap), not '%s'\n",
                    argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--explain") == 0)
            explain = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "llmos-graph query: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!db) db = a;
        else if (!text) text = a;
        else {
            fprintf(stderr, "llmos-graph query: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!db || (!text && !file) || (text && file)) {
        usage(stderr);
        return 2;
    }
    llmos_error_t err = {0};
    sparql_format fmt;
    if (sparql_format_parse(format, &fmt, &err)) {
        fprintf(stderr, "llmos-graph query: %s\n", err.msg);
        return 2;
    }
    char *buf = NULL;
    size_t len = text ? strlen(text) : 0;
    if (file && read_file(file, &buf, &len, &err)) {
        fprintf(stderr, "llmos-graph query: %s\n", err.msg);
        return 1;
    }
    sparql_query_t *q = NULL;
    graph_store_t *store = NULL;
    graph_reader_t *r = NULL;
    sparql_writer_t w;
    sparql_writer_init(&w, fmt, stdout, &err);
    w.max_bytes = max_result;
    w.cap_name = "--max-result-bytes";
    int rc = sparql_query_parse(file ? buf : text, len, &q, &err);
    if (rc) {
        if (file) llmos_error_prefix(&err, "%s: ", file);
        goto out;
    }
    graph_store_options_t opt = {0};
    opt.read_only = 1;
    if ((rc = graph_store_open(db, &opt, &store, &err)) || (rc = graph_reader_begin(store, &r, &err))) goto out;
    sparql_exec_opts_t xo = {.max_result_bytes = max_result, .cap_name = "--max-result-bytes"};
    if (timeout_ms > 0) xo.deadline_ns = llmos_now_ns() + timeout_ms * 1000000u;
    sparql_exec_stats_t st;
    sparql_sink_t sink = sparql_writer_sink(&w);
    uint64_t t0 = llmos_now_ns();
    rc = sparql_query_execute(r, q, &xo, &sink, &st, &err);
    if (explain) {
        fprintf(stderr, "plan:");
        for (int i = 0; i < q->npatterns && i < 64; i++)
            fprintf(stderr, " #%d(est %llu)", st.order[i] + 1, (unsigned long long)st.estimate[i]);
        fprintf(stderr, "\nrows %llu, scans %llu, triples scanned %llu, %.3f ms\n", (unsigned long long)st.rows,
                (unsigned long long)st.scans, (unsigned long long)st.scanned, (double)(llmos_now_ns() - t0) / 1e6);
    }
out:
    if (rc) fprintf(stderr, "llmos-graph query: %s (%s)\n", err.msg, llmos_errname(rc));
    sparql_writer_deinit(&w);
    graph_reader_end(&r);
    graph_store_close(&store);
    sparql_query_destroy(&q);
    free(buf);
    return rc ? 1 : 0;
}
