/*
 * store.h — llmos's RDF triple store on LMDB.
 *
 * One graph = one LMDB environment (a directory holding data.mdb/lock.mdb).
 * Inside it:
 *   term dictionary  every term (IRI, blank node, literal with language tag
 *                    or datatype) gets a 64-bit id > 0, both ways:
 *                    id → term ("id2term") and term → id ("term2id", keyed by
 *                    a 64-bit hash of the encoded term, collisions resolved by
 *                    comparing the stored term, so any term length works);
 *   three orderings  each triple is stored once in SPO, POS and OSP as a
 *                    24-byte big-endian key with an empty value, so each of
 *                    the 8 triple patterns (any of s, p, o bound, 0 = free)
 *                    is ONE range scan over one ordering:
 *                      s p o / s p ? / s ? ? / ? ? ?   → SPO
 *                      ? p o / ? p ?                   → POS
 *                      ? ? o / s ? o                   → OSP (o, s prefix)
 *   statistics       triples per predicate, total triples and terms, kept
 *                    exact by every add/delete and load (for query planning
 *                    and `llmos-graph stats`).
 * Duplicate triples are stored once (adding one again is a no-op).
 *
 * Terms are normalised when interned and looked up: a literal typed
 * xsd:string is the plain literal; language tags are lower-cased.
 *
 * Threads and transactions (LMDB's model):
 *   - graph_store_t is thread-safe: any thread may begin readers/writers.
 *   - A reader (graph_reader_t) is one MDB read transaction: a consistent
 *     snapshot.  Use a reader from one thread at a time (it may move between
 *     threads: the environment is opened MDB_NOTLS); many readers on many
 *     threads run concurrently and never block the writer.  Keep one reader
 *     per thread; end or reset it when done so old pages can be reused.
 *   - One writer at a time (graph_writer_begin blocks while another writer
 *     is open).  A writer is bound to the thread that began it.  Its reader
 *     view (graph_writer_reader) sees its own uncommitted writes.
 *   - Nothing is visible to other readers until graph_writer_commit; a
 *     crash or kill before the commit leaves the store as it was.
 *
 * Zero-copy: graph_term_get fills a graph_term_t whose strings point into
 * the LMDB map; they stay valid until the reader ends or is reset (for a
 * writer's reader: until the writer's next write, commit or abort).
 *
 * Hot paths: graph_store_match / graph_iter_next / graph_term_get allocate
 * nothing in steady state (iterators take cursors from a per-reader pool).
 *
 * Errors: every function returns 0 or a negative llmos_err and fills *err
 * (may be NULL) with what and where.  LMDB codes are translated here:
 * MDB_MAP_FULL → LLMOS_ETOOBIG, I/O → LLMOS_EIO, a corrupt or foreign
 * environment → LLMOS_EFORMAT.
 *
 * Bulk loading from files lives in graph/load.h; neighbourhoods and paths in
 * graph/walk.h.
 */
#ifndef LLMOS_GRAPH_STORE_H
#define LLMOS_GRAPH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/base/buf.h"
#include "runtime/base/err.h"

/* ------------------------------------------------------------ terms --- */

/* A term id.  0 is never a term: in patterns it means "free variable". */
typedef uint64_t graph_id_t;
#define GRAPH_ID_NONE ((graph_id_t)0)

typedef enum graph_term_kind {
    GRAPH_TERM_IRI = 1,     /* value = the IRI without <> */
    GRAPH_TERM_BLANK = 2,   /* value = the label without _: */
    GRAPH_TERM_LITERAL = 3, /* value = the lexical form (unescaped) */
} graph_term_kind;

/* A term as a view: nothing here is owned by the struct.  Strings are
 * `len` bytes; when filled by graph_term_get / graph_term_parse they are
 * also NUL-terminated (a literal may contain NUL bytes: trust len).
 * For a plain literal lang == NULL and datatype == NULL; a literal has at
 * most one of lang and datatype. */
typedef struct graph_term {
    graph_term_kind kind;
    const char *value;
    size_t len;
    const char *lang;       /* language tag (no '@'), or NULL */
    size_t lang_len;
    const char *datatype;   /* datatype IRI (no <>), or NULL */
    size_t datatype_len;
} graph_term_t;

/* Convenience constructors (views over the caller's strings; NUL-terminated
 * inputs; lang/datatype may be NULL). */
graph_term_t graph_term_iri(const char *iri);
graph_term_t graph_term_blank(const char *label);
graph_term_t graph_term_literal(const char *lex, const char *lang, const char *datatype);

/* Writes the term in N-Triples syntax (also valid SPARQL): <iri>, _:label,
 * "lex" / "lex"@lang / "lex"^^<dt>, with \-escapes where N-Triples needs
 * them.  Writes at most cap bytes including a NUL; *out_len (may be NULL)
 * gets the full length needed without the NUL.  Returns 0, or LLMOS_ETOOBIG
 * when cap was too small (buf then holds a truncated, NUL-terminated prefix;
 * call again with *out_len + 1). */
int graph_term_format(const graph_term_t *t, char *buf, size_t cap, size_t *out_len,
                      llmos_error_t *err);

/* Parses one term in N-Triples/SPARQL syntax at the start of `text` (leading
 * blanks skipped): <iri>, _:label, "lex" with optional @lang or ^^<dt>
 * (\-escapes, \u and \U undone, UTF-8 checked).  The unescaped strings are
 * written to `buf` (cap bytes, caller-owned; 2 * len + 16 is always
 * enough) and *out points into it.  *consumed (may be NULL) gets the bytes
 * of text used.  Errors: LLMOS_EFORMAT ("column C: ..." 1-based, within
 * text), LLMOS_ETOOBIG (buf too small). */
int graph_term_parse(const char *text, size_t len, char *buf, size_t cap, graph_term_t *out,
                     size_t *consumed, llmos_error_t *err);

/* 1 when a and b are the same term (after normalisation), else 0. */
int graph_term_equal(const graph_term_t *a, const graph_term_t *b);

/* ------------------------------------------------------------ store --- */

typedef struct graph_store graph_store_t;
typedef struct graph_reader graph_reader_t;
typedef struct graph_writer graph_writer_t;

typedef struct graph_store_options {
    uint64_t map_size;     /* LMDB map size in bytes; 0 = default (64 GiB, sparse) */
    int read_only;         /* open MDB_RDONLY: no writers allowed */
    int create;            /* create the directory if missing (ignored read-only) */
    int no_sync;           /* MDB_NOSYNC: faster commits, not durable (tests/bench) */
    unsigned max_readers;  /* 0 = default (126) */
    int write_map;         /* MDB_WRITEMAP, for bulk loads: a write transaction's
                              pages live in the file mapping, not the heap, so a
                              load's memory stays bounded (the data file becomes
                              a sparse file of map_size bytes) */
} graph_store_options_t;

/* Opens (or, with opt->create, creates) the graph in directory `dir`.
 * opt may be NULL: read-write, create, durable.  *out is caller-owned, freed
 * with graph_store_close.  Errors: LLMOS_ENOTFOUND (no such directory and
 * not create), LLMOS_EFORMAT (not an llmos graph / wrong version),
 * LLMOS_EIO, LLMOS_EPERM, LLMOS_ENOMEM. */
int graph_store_open(const char *dir, const graph_store_options_t *opt, graph_store_t **out,
                     llmos_error_t *err);

/* Closes the store and sets *s to NULL.  Every reader and writer must have
 * ended before.  NULL and *s == NULL are fine. */
void graph_store_close(graph_store_t **s);

/* The directory the store was opened from (borrowed, lives with the store). */
const char *graph_store_path(const graph_store_t *s);

/* ---------------------------------------------------------- readers --- */

/* Begins a read transaction (a snapshot).  *out is caller-owned, ended with
 * graph_reader_end.  Errors: LLMOS_EOVERLOADED (too many readers), LLMOS_EIO. */
int graph_reader_begin(graph_store_t *s, graph_reader_t **out, llmos_error_t *err);

/* Ends the transaction, frees the reader, sets *r to NULL.  Any open
 * iterator on it must be closed first.  NULL is fine. */
void graph_reader_end(graph_reader_t **r);

/* Releases the snapshot but keeps the reader's memory (cheap); renew takes a
 * fresh snapshot of the latest commit.  Views and iterators from before the
 * reset are invalid. */
void graph_reader_reset(graph_reader_t *r);
int graph_reader_renew(graph_reader_t *r, llmos_error_t *err);

/* --------------------------------------------------------- look-ups --- */

/* The id of a term.  LLMOS_ENOTFOUND when the term is not in the store
 * (*id is then 0).  Normalises like interning. */
int graph_term_lookup(graph_reader_t *r, const graph_term_t *t, graph_id_t *id,
                      llmos_error_t *err);

/* The term of an id as a zero-copy view (see "Zero-copy" above).
 * LLMOS_ENOTFOUND for an unknown id. */
int graph_term_get(graph_reader_t *r, graph_id_t id, graph_term_t *out, llmos_error_t *err);

/* Shorthand: graph_term_get + graph_term_format. */
int graph_term_format_id(graph_reader_t *r, graph_id_t id, char *buf, size_t cap,
                         size_t *out_len, llmos_error_t *err);

/* The same, appended to b (grown as needed; NUL-terminated after).  Errors
 * as graph_term_format_id, and LLMOS_ENOMEM; b keeps what it held before on
 * error. */
int graph_term_append_id(graph_reader_t *r, graph_id_t id, llmos_buf_t *b, llmos_error_t *err);

/* ------------------------------------------------------- patterns --- */

typedef struct graph_triple {
    graph_id_t s, p, o;
} graph_triple_t;

/* A range-scan iterator.  Lives wherever the caller puts it (stack is fine);
 * the fields are private.  Must be closed with graph_iter_close before its
 * reader ends or resets. */
typedef struct graph_iter {
    graph_reader_t *r;     /* private */
    void *cursor;          /* private: MDB_cursor * from the reader's pool */
    int order;             /* private: 0 SPO, 1 POS, 2 OSP */
    int state;             /* private: 0 fresh, 1 running, 2 done */
    unsigned prefix_len;   /* private: bound key bytes (0, 8, 16, 24) */
    unsigned char prefix[24]; /* private: the bound prefix, big-endian */
} graph_iter_t;

/* Starts a scan for the pattern (s, p, o); 0 in a position = free.  Any
 * bound id that is not in the store simply yields nothing.  The iterator
 * yields triples in the key order of the chosen ordering.  Errors:
 * LLMOS_EIO, LLMOS_ENOMEM (only when the cursor pool must grow). */
int graph_store_match(graph_reader_t *r, graph_id_t s, graph_id_t p, graph_id_t o,
                      graph_iter_t *it, llmos_error_t *err);

/* Next matching triple: returns 1 and fills *t, 0 at the end, or a negative
 * llmos_err. */
int graph_iter_next(graph_iter_t *it, graph_triple_t *t, llmos_error_t *err);

/* Returns the cursor to the reader's pool.  Idempotent; a zeroed iterator
 * is fine. */
void graph_iter_close(graph_iter_t *it);

/* Number of triples matching (s, p, o).  Exact: ??? and ?p? come from the
 * statistics in O(1); other patterns count the range (stopping at `limit`
 * when limit > 0, so *n = min(count, limit) — cheap cardinality estimates
 * for a planner).  1-or-0 for fully bound patterns. */
int graph_store_count(graph_reader_t *r, graph_id_t s, graph_id_t p, graph_id_t o, uint64_t limit,
                      uint64_t *n, llmos_error_t *err);

/* 1 when the triple is stored, 0 when not, or a negative llmos_err. */
int graph_store_contains(graph_reader_t *r, graph_id_t s, graph_id_t p, graph_id_t o,
                         llmos_error_t *err);

/* ------------------------------------------------------ statistics --- */

typedef struct graph_stats {
    uint64_t triples;      /* distinct triples stored */
    uint64_t terms;        /* terms in the dictionary */
    uint64_t predicates;   /* distinct predicates with at least one triple */
} graph_stats_t;

int graph_store_stats(graph_reader_t *r, graph_stats_t *out, llmos_error_t *err);

/* Calls fn for every predicate with at least one triple, in id order, with
 * its exact triple count.  A non-zero return from fn stops the walk and is
 * returned. */
typedef int (*graph_predicate_fn)(void *ctx, graph_id_t p, uint64_t count);
int graph_store_predicates(graph_reader_t *r, graph_predicate_fn fn, void *ctx,
                           llmos_error_t *err);

/* Distinct subjects (which = 0) or objects (which = 2) by skipping through
 * SPO / OSP: O(distinct × log n), for `stats`, not for hot paths. */
int graph_store_distinct(graph_reader_t *r, int which, uint64_t *n, llmos_error_t *err);

/* Verifies the store's invariants: the three orderings hold the same
 * triples (entry counts equal, every SPO key found in POS and OSP), the
 * triple count and per-predicate counts match the keys, every id in a
 * triple is in the dictionary, and the dictionary's two directions agree in
 * size.  O(n log n): for tests, `llmos-graph check` and after a crash.
 * Returns 0 when consistent, LLMOS_EFORMAT with the first problem
 * otherwise.  *orders (may be NULL) gets the entry counts of SPO, POS, OSP. */
int graph_store_check(graph_reader_t *r, uint64_t orders[3], llmos_error_t *err);

/* ---------------------------------------------------------- writers --- */

/* Begins the single write transaction (blocks while another is open).
 * Errors: LLMOS_EPERM (read-only store), LLMOS_EIO. */
int graph_writer_begin(graph_store_t *s, graph_writer_t **out, llmos_error_t *err);

/* Commits durably (unless no_sync) and frees the writer; *w = NULL.  On
 * error the transaction is aborted, nothing is written, *w = NULL too. */
int graph_writer_commit(graph_writer_t **w, llmos_error_t *err);

/* Aborts: nothing of this writer is kept.  *w = NULL.  NULL is fine. */
void graph_writer_abort(graph_writer_t **w);

/* A reader view of the writer's transaction (sees its own writes, counts
 * included; graph_store_stats' `predicates` there is as of the last commit
 * and graph_store_predicates / graph_store_check see committed counts only).  Borrowed:
 * valid until the writer commits or aborts; never graph_reader_end it. */
graph_reader_t *graph_writer_reader(graph_writer_t *w);

/* Id of a term, adding it to the dictionary if new.  Errors: LLMOS_EINVAL
 * (empty IRI, both lang and datatype, bad lang tag), LLMOS_ETOOBIG
 * (store full). */
int graph_writer_intern(graph_writer_t *w, const graph_term_t *t, graph_id_t *id,
                        llmos_error_t *err);

/* Adds a triple of existing ids.  *added (may be NULL) = 1 if new, 0 if it
 * was already stored.  LLMOS_EINVAL for an id 0 or an id not in the
 * dictionary. */
int graph_writer_add(graph_writer_t *w, graph_id_t s, graph_id_t p, graph_id_t o, int *added,
                     llmos_error_t *err);

/* Interns the three terms and adds the triple. */
int graph_writer_add_terms(graph_writer_t *w, const graph_term_t *s, const graph_term_t *p,
                           const graph_term_t *o, int *added, llmos_error_t *err);

/* Deletes a triple from all three orderings.  *deleted (may be NULL) = 1 if
 * it was stored, 0 if not.  Terms stay in the dictionary. */
int graph_writer_delete(graph_writer_t *w, graph_id_t s, graph_id_t p, graph_id_t o,
                        int *deleted, llmos_error_t *err);

/* ------------------------------------------------------------ names --- */

/* The default base under which TSV names become IRIs. */
#define GRAPH_DEFAULT_BASE "http://llmos.local/kg/"

/* The base recorded by the last TSV load (borrowed, valid for the reader's
 * snapshot), or GRAPH_DEFAULT_BASE when none was recorded. */
const char *graph_store_base(graph_reader_t *r);

/* Resolves a node name as a user writes it on a command line: a full term
 * in N-Triples syntax (<iri>, _:b, "lit"...) or a bare local name, which is
 * percent-encoded like the TSV loader does and put under `base` (NULL =
 * graph_store_base(r)).  LLMOS_ENOTFOUND (message names the IRI tried)
 * when the term is not in the store. */
int graph_node_resolve(graph_reader_t *r, const char *name, const char *base, graph_id_t *id,
                       llmos_error_t *err);

/* Writes base + percent-encoded local name (the TSV loader's IRI) into buf
 * (cap bytes incl. NUL).  LLMOS_ETOOBIG when it does not fit. */
int graph_name_to_iri(const char *base, const char *name, size_t name_len, char *buf, size_t cap,
                      size_t *out_len, llmos_error_t *err);

#endif
