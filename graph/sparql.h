/*
 * sparql.h — the SPARQL subset llmos answers over a graph store.
 *
 * Three steps, each its own room:
 *   parse    text → sparql_query_t (an AST in one arena; sparql_parse.c)
 *   execute  plan the basic graph pattern by selectivity and run it as index
 *            nested-loop joins over the store's range scans (sparql_exec.c),
 *            handing every solution row to a sink
 *   write    sinks that print rows as SPARQL 1.1 TSV or JSON results
 *            (sparql_write.c)
 *
 * The subset: PREFIX and BASE; SELECT (variables or *, DISTINCT, REDUCED read
 * as DISTINCT) and ASK; WHERE with one group of triple patterns (`;` and `,`
 * lists, `a` for rdf:type; IRIs, prefixed names, literals with language tags
 * or datatypes, numbers, true/false; no blank nodes) and FILTERs over `=`,
 * `!=`, `&&`, `||`, `!` and parentheses; LIMIT and OFFSET.  Anything else
 * (OPTIONAL, UNION, ORDER BY, CONSTRUCT, ...) is refused with LLMOS_EUNSUPPORTED
 * and its line and column; a query that does not parse is LLMOS_EFORMAT with
 * line, column and what was expected.
 *
 * Thread-safety: a parsed query is immutable and may be executed by several
 * threads at once, each with its own store read transaction and sink.
 */
#ifndef LLMOS_GRAPH_SPARQL_H
#define LLMOS_GRAPH_SPARQL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "graph/store.h"
#include "runtime/base/buf.h"
#include "runtime/base/err.h"

/* ---------------------------------------------------------------- AST --- */

typedef enum sparql_term_kind {
    SPARQL_TERM_VAR = 0,
    SPARQL_TERM_IRI = 1,
    SPARQL_TERM_LITERAL = 2,
} sparql_term_kind;

/* A term as written in the query, with prefixes expanded and escapes undone.
 * Strings are NUL-terminated and live in the query's arena. */
typedef struct sparql_term {
    sparql_term_kind kind;
    const char *value;    /* variable name (no '?'), full IRI, or lexical form */
    size_t len;           /* bytes in value (a literal may hold NULs via \u0000) */
    const char *lang;     /* literal language tag (lower case as written), or NULL */
    const char *datatype; /* literal datatype IRI, or NULL (plain / lang literal) */
    int var;              /* variable index into sparql_query_t.vars, or -1 */
    uint32_t line, col;   /* where it was written (1-based) */
} sparql_term_t;

typedef struct sparql_pattern {
    sparql_term_t s, p, o;
} sparql_pattern_t;

typedef enum sparql_expr_op {
    SPARQL_EXPR_TERM = 0, /* a variable or a constant */
    SPARQL_EXPR_EQ,       /* a = b */
    SPARQL_EXPR_NE,       /* a != b */
    SPARQL_EXPR_AND,      /* a && b */
    SPARQL_EXPR_OR,       /* a || b */
    SPARQL_EXPR_NOT,      /* !a */
} sparql_expr_op;

typedef struct sparql_expr {
    sparql_expr_op op;
    const struct sparql_expr *a, *b; /* operands (b NULL for NOT and TERM) */
    sparql_term_t term;              /* for SPARQL_EXPR_TERM */
} sparql_expr_t;

typedef enum sparql_form {
    SPARQL_SELECT = 0,
    SPARQL_ASK = 1,
} sparql_form;

/* The whole parsed query.  Every pointer inside is owned by the query and
 * lives until sparql_query_destroy. */
typedef struct sparql_query {
    sparql_form form;
    int distinct;                       /* SELECT DISTINCT (or REDUCED) */
    int star;                           /* SELECT * */
    const char *const *vars;            /* every variable named anywhere, by index */
    int nvars;
    const int *project;                 /* projected variable indexes, in order */
    int nproject;
    const sparql_pattern_t *patterns;   /* the basic graph pattern */
    int npatterns;
    const sparql_expr_t *const *filters;/* FILTERs of the group (all must hold) */
    int nfilters;
    uint64_t limit;                     /* UINT64_MAX when absent */
    uint64_t offset;                    /* 0 when absent */
} sparql_query_t;

/* Parses `len` bytes of `text` (need not be NUL-terminated).  On success
 * *out is a new query the caller destroys.  Errors: LLMOS_EFORMAT (syntax:
 * the message reads "line L, column C: expected X, found Y"),
 * LLMOS_EUNSUPPORTED (valid SPARQL outside the subset, with line and column),
 * LLMOS_ETOOBIG (over SPARQL_QUERY_MAX bytes, SPARQL_PATTERNS_MAX patterns,
 * 1024 operators in one FILTER or parentheses 128 deep), LLMOS_ENOMEM. */
#define SPARQL_QUERY_MAX (1u << 20)
#define SPARQL_PATTERNS_MAX 256
int sparql_query_parse(const char *text, size_t len, sparql_query_t **out, llmos_error_t *err);

/* Frees the query and sets *q to NULL; NULL and *q == NULL are fine. */
void sparql_query_destroy(sparql_query_t **q);

/* ------------------------------------------------------------ execute --- */

/* Where solutions go.  The executor calls head once, then row per solution
 * (SELECT) or boolean once (ASK), then finish.  A non-zero return from a
 * callback stops execution and is returned by sparql_query_execute.
 * Callbacks run on the executing thread; ids and names are borrowed for the
 * call only; decode ids with the reader passed in (zero-copy views valid
 * until the reader ends). */
typedef struct sparql_sink {
    int (*head)(void *ctx, const char *const *names, int ncols); /* SELECT: the projected names */
    int (*row)(void *ctx, graph_reader_t *r, const graph_id_t *ids, int ncols); /* 0 id = unbound */
    int (*boolean)(void *ctx, int value);                                          /* ASK */
    int (*finish)(void *ctx);
    void *ctx;
} sparql_sink_t;

/* Limits of one execution.  The deadline, the cancel flag and the interrupt
 * callback are polled every 256 scanned triples, so a query that scans
 * without producing rows stops too. */
typedef struct sparql_exec_opts {
    uint64_t deadline_ns;       /* llmos_now_ns() value to stop at (LLMOS_ETIMEDOUT); 0 = none */
    const volatile int *cancel; /* when non-NULL and set non-zero: stop with LLMOS_ECANCELED */
    int (*interrupted)(void *ctx); /* when non-NULL and it returns non-zero: stop with LLMOS_ECANCELED
                                      (the graph actor: the process is shutting down) */
    void *interrupt_ctx;           /* passed to interrupted (borrowed) */
    uint64_t count_cap;         /* planner's range-count cap per pattern; 0 = 1 M */
    uint64_t max_result_bytes;  /* cap on the result: the bytes sparql_query_run's writer writes
                                   and the bytes the DISTINCT table holds; 0 = none.  Past it the
                                   query stops at once with LLMOS_ETOOBIG naming the cap and the
                                   rows produced so far (a writer of your own: set its max_bytes) */
    const char *cap_name;       /* how users set that cap, named in the message (e.g.
                                   "--max-result-bytes"); NULL = not named (borrowed) */
} sparql_exec_opts_t;

typedef struct sparql_exec_stats {
    uint64_t rows;              /* solutions handed to the sink */
    uint64_t scanned;           /* triples read from range scans */
    uint64_t scans;             /* range scans started */
    int order[64];              /* the plan: pattern indexes in join order (first 64) */
    uint64_t estimate[64];      /* the planner's estimate per planned step */
} sparql_exec_stats_t;

/* Runs q on the snapshot of reader r, handing solutions to sink.  opts and
 * stats may be NULL.  Allocates per query (plan, bindings, DISTINCT table),
 * never per row except when the DISTINCT table grows.  A basic graph pattern
 * with no triple pattern (`SELECT * {}`) has exactly one solution, the empty
 * one (a row of unbound columns).  Errors: the first non-zero sink return
 * (a writer's LLMOS_ETOOBIG past its cap), LLMOS_ETIMEDOUT (deadline passed;
 * rows already handed out stay handed out), LLMOS_ECANCELED (cancel flag or
 * interrupt), LLMOS_ETOOBIG (the DISTINCT table past opts->max_result_bytes),
 * LLMOS_ENOMEM, store errors (LLMOS_EIO). */
int sparql_query_execute(graph_reader_t *r, const sparql_query_t *q, const sparql_exec_opts_t *opts,
                         const sparql_sink_t *sink, sparql_exec_stats_t *stats, llmos_error_t *err);

/* ------------------------------------------------------------- write --- */

typedef enum sparql_format {
    SPARQL_FORMAT_TSV = 0,  /* SPARQL 1.1 Query Results TSV */
    SPARQL_FORMAT_JSON = 1, /* SPARQL 1.1 Query Results JSON */
} sparql_format;

/* Parses "tsv" / "json"; LLMOS_EINVAL otherwise. */
int sparql_format_parse(const char *name, sparql_format *out, llmos_error_t *err);

/* private: one rendered term of a writer's cache */
#define SPARQL_TERM_CACHE_BITS 12
typedef struct sparql_term_cache {
    graph_id_t id;  /* 0 = empty */
    uint32_t len;
    char text[116];
} sparql_term_cache_t;

/* A result writer: a sink that prints TSV or JSON into a buffer, flushed to
 * `out` every 64 KiB and at finish when out is not NULL, or kept whole in
 * memory when out is NULL (take it with sparql_writer_text).  Caller-owned
 * struct; not thread-safe.  A writer serves one store: it caches rendered
 * terms by id. */
typedef struct sparql_writer {
    sparql_format format;
    FILE *out;       /* borrowed; NULL = keep in memory */
    uint64_t max_bytes;   /* cap on the bytes written in all (flushed ones included); 0 = none.
                             The row that would pass it fails with LLMOS_ETOOBIG ("over the N-byte
                             cap after R rows"), so a capped writer never holds more than about
                             max_bytes.  Set after sparql_writer_init. */
    const char *cap_name; /* how users set max_bytes, for the message; NULL = not named (borrowed) */
    llmos_buf_t buf;      /* private: the text not yet flushed */
    uint64_t flushed; /* private: bytes already written to out */
    uint64_t nrows;   /* private: rows written (JSON commas) */
    int ncols;       /* private */
    const char **names; /* private: column names (copied) */
    char *names_mem; /* private */
    sparql_term_cache_t *cache; /* private: rendered terms by id (512 KiB) */
    llmos_error_t *err; /* private: where write errors go (borrowed) */
} sparql_writer_t;

void sparql_writer_init(sparql_writer_t *w, sparql_format format, FILE *out, llmos_error_t *err);
void sparql_writer_deinit(sparql_writer_t *w);
/* The sink that writes into w (w must outlive the execution). */
sparql_sink_t sparql_writer_sink(sparql_writer_t *w);
/* The text written so far when out == NULL (borrowed from w, NUL-terminated). */
const char *sparql_writer_text(const sparql_writer_t *w, size_t *len);

/* ------------------------------------------------------- one call --- */

/* Parses `len` bytes of `text`, runs the query on reader r's snapshot and
 * returns the whole result in `format` as a malloc'd NUL-terminated string
 * (*out, caller frees; *out_len may be NULL).  opts may be NULL (deadline,
 * cancel, interrupt, result cap: opts->max_result_bytes caps the string).
 * For callers that answer over a wire (the graph actor).  Errors: those of
 * sparql_query_parse and sparql_query_execute; *out is NULL then. */
int sparql_query_run(graph_reader_t *r, const char *text, size_t len, sparql_format format,
                     const sparql_exec_opts_t *opts, char **out, size_t *out_len, llmos_error_t *err);

#endif
