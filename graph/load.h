/*
 * load.h — bulk loading of files into a graph store.
 *
 * Formats:
 *   nt   N-Triples, parsed by serd line by line: a malformed line (syntax,
 *        bad UTF-8, an IRI with spaces, a relative IRI...) is reported as
 *        FILE:LINE:COL and skipped, the other lines load;
 *   ttl  Turtle, parsed by serd (prefixes, base, relative IRIs expanded): a
 *        syntax error is reported as FILE:LINE:COL and ends that file (a
 *        Turtle statement may span lines, so there is no next line to resume
 *        from); the triples serd emitted before the error load (serd emits a
 *        triple once its object is read, so the first triples of the broken
 *        statement itself may be among them);
 *   tsv  `head<TAB>relation<TAB>tail` per line (the KG benchmark format);
 *        each name becomes the IRI base + percent-encoded name
 *        (graph_name_to_iri), base default GRAPH_DEFAULT_BASE, recorded in
 *        the store so CLI names resolve under it later.
 * With strict, any error refuses the whole load (nothing is written).
 *
 * Atomicity: everything one call loads is ONE LMDB write transaction,
 * committed at the end; a crash, SIGKILL or error before the commit leaves
 * the store exactly as it was.
 *
 * Memory: id triples are buffered in about a third of mem_budget (half of
 * it radix-sort scratch), sorted and, when the buffer fills, spilled as sorted runs (one per ordering) to
 * unlinked temporary files, then k-way merged and written in key order
 * (MDB_APPEND where the keys lie past the store's last key).  A term cache
 * (128-bit hashes → ids, no strings) takes at most an eighth.
 *
 * Thread-safety: a load is one writer; it blocks other writers while it runs.
 */
#ifndef LLMOS_GRAPH_LOAD_H
#define LLMOS_GRAPH_LOAD_H

#include <stdint.h>
#include <stdio.h>

#include "graph/store.h"

typedef enum graph_format {
    GRAPH_FORMAT_AUTO = 0, /* from the file name: .nt, .ttl, .tsv/.txt */
    GRAPH_FORMAT_NT = 1,
    GRAPH_FORMAT_TTL = 2,
    GRAPH_FORMAT_TSV = 3,
} graph_format;

typedef struct graph_load_options {
    graph_format format;   /* AUTO: guessed per file */
    const char *base;      /* TSV names base IRI and Turtle base; NULL = GRAPH_DEFAULT_BASE */
    int strict;            /* any malformed line refuses the whole load */
    uint64_t mem_budget;   /* bytes; 0 = 1 GiB; at least 16 MiB is used */
    const char *tmp_dir;   /* sort runs; NULL = the store's directory */
    int quiet;             /* no progress line and no summary */
    FILE *diag;            /* where FILE:LINE errors go; NULL = stderr */
    unsigned max_diag;     /* errors printed before "... more"; 0 = 20 */
} graph_load_options_t;

typedef struct graph_load_report {
    uint64_t lines;        /* input lines seen (all files) */
    uint64_t read;         /* triples parsed */
    uint64_t added;        /* new distinct triples stored */
    uint64_t errors;       /* malformed lines / statements */
    uint64_t terms_added;  /* new dictionary entries */
    uint64_t runs;         /* sorted runs spilled to disk (0 = all in memory) */
    double seconds;
} graph_load_report_t;

/* Parses a --format name ("nt", "ntriples", "ttl", "turtle", "tsv").
 * LLMOS_EINVAL for others. */
int graph_format_parse(const char *name, graph_format *out, llmos_error_t *err);

/* One input of graph_load_streams. */
typedef struct graph_load_source {
    FILE *f;              /* borrowed: read from its position to EOF, not closed */
    const char *name;     /* borrowed: names it in FILE:LINE errors; guesses the format */
    graph_format format;  /* AUTO: opt->format, else guessed from name */
    uint64_t size;        /* bytes to expect (progress ETA only); 0 = unknown */
} graph_load_source_t;

/* Loads n open streams into the store in one transaction (see above):
 * what graph_load_files does once its files are open, for inputs that are
 * not named files (spooled uploads, memory).  Errors as graph_load_files. */
int graph_load_streams(graph_store_t *s, const graph_load_source_t *src, int n,
                       const graph_load_options_t *opt, graph_load_report_t *report, llmos_error_t *err);

/* Loads n files into the store in one transaction (see above).  report may
 * be NULL.  Errors: LLMOS_ENOTFOUND / LLMOS_EIO (a file cannot be read:
 * nothing is written), LLMOS_EFORMAT (strict and a malformed line; the
 * message holds the first FILE:LINE), LLMOS_ETOOBIG (store full),
 * LLMOS_ENOMEM.  Malformed lines without strict are not errors of the call:
 * they are counted in report->errors and printed to diag. */
int graph_load_files(graph_store_t *s, const char *const *files, int n,
                     const graph_load_options_t *opt, graph_load_report_t *report,
                     llmos_error_t *err);

#endif
