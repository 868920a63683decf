/*
 * store_internal.h — what graph/ sources share about the store's inside: the LMDB
 * handles, key and term encodings, and the writer's pending counters.  Not a
 * public header: only graph/ includes it.
 */
#ifndef LLMOS_GRAPH_STORE_INTERNAL_H
#define LLMOS_GRAPH_STORE_INTERNAL_H

#include <lmdb.h>

#include "graph/store.h"

enum { GRAPH_SPO = 0, GRAPH_POS = 1, GRAPH_OSP = 2, GRAPH_NORDERS = 3 };

#define GRAPH_POOL_MAX 16 /* pooled cursors per ordering per reader */

struct graph_store {
    MDB_env *env;
    MDB_dbi meta, id2term, term2id, pstat;
    MDB_dbi order[GRAPH_NORDERS];
    int read_only;
    int no_sync;
    int write_map;                            /* opened MDB_WRITEMAP: writes go through the map */
    char *path;
    int map_looked;                           /* map_addr searched for */
    void *map_addr;                           /* the data file's mapping, or NULL */
    size_t map_len;
};

struct graph_reader {
    graph_store_t *s;
    MDB_txn *txn;
    int is_writer;                            /* a writer's view: never ended by itself */
    int live;                                 /* txn holds a snapshot */
    MDB_cursor *pool[GRAPH_NORDERS][GRAPH_POOL_MAX];
    int npool[GRAPH_NORDERS];
    MDB_cursor *t2i;                          /* cursor on term2id for collision walks */
    struct graph_tcache *tc;                  /* id → term bytes seen in this snapshot
                                                 (tc_bits-sized, lazily allocated, grows
                                                 with use; read-only readers only) */
    unsigned tc_bits;                         /* log2 of the cache's entries */
    uint64_t tc_miss;                         /* misses since the last growth */
    uint32_t gen;                             /* snapshot generation: entries of older
                                                 snapshots are stale */
};

/* Direct-mapped decode cache per reader: starts at 2^10 entries (a short
 * query touches few pages), grows 4x after as many misses as four times its
 * size, up to 2^16 (1.5 MiB) for long-lived readers that decode a lot. */
#define GRAPH_TCACHE_MIN_BITS 10
#define GRAPH_TCACHE_MAX_BITS 16
struct graph_tcache {
    uint64_t id;
    const void *p;   /* into the map: valid while the snapshot lives */
    uint32_t n;
    uint32_t gen;
};

/* Open-addressing map predicate id → count delta, flushed at commit. */
typedef struct graph_pdelta {
    uint64_t *keys;
    int64_t *vals;
    size_t cap, n;
} graph_pdelta_t;

struct graph_writer {
    struct graph_reader r;                    /* first: r.txn is the write txn; a
                                                 writer's reader casts back to it */
    uint64_t next_id;                         /* next free term id */
    int64_t dtriples;                         /* triples added - deleted */
    uint64_t dterms;                          /* terms added */
    graph_pdelta_t pd;
};

/* Big-endian 64-bit helpers. */
static inline void graph_be64_put(unsigned char *b, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)v;
        v >>= 8;
    }
}
static inline uint64_t graph_be64_get(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | b[i];
    return v;
}

/* The 24-byte key of a triple in an ordering, and back. */
void graph_key_make(int order, graph_id_t s, graph_id_t p, graph_id_t o, unsigned char key[24]);
void graph_key_split(int order, const unsigned char key[24], graph_triple_t *t);

/* Translates an LMDB (or errno) code into an llmos_err with context. */
int graph_mdb_error(llmos_error_t *err, int rc, const char *what);

/* Encodes a term (normalised) for the dictionary.  Writes into buf when it
 * fits (cap bytes); else mallocs and sets *heap (caller frees).  *out and
 * *out_len give the encoding. */
int graph_term_encode(const graph_term_t *t, unsigned char *buf, size_t cap, unsigned char **out,
                      size_t *out_len, unsigned char **heap, llmos_error_t *err);
uint64_t graph_hash64(const void *p, size_t n);
/* Dictionary bytes → zero-copy view; 0 or LLMOS_EFORMAT. */
int graph_term_decode(const unsigned char *b, size_t n, graph_term_t *t);

/* Looks an encoded term up (hash + collision check) in txn. */
int graph_term_lookup_encoded(graph_reader_t *r, const unsigned char *enc, size_t n, uint64_t h,
                              graph_id_t *id, llmos_error_t *err);
/* Adds an encoded term known to be absent; returns its new id. */
int graph_writer_add_encoded(graph_writer_t *w, const unsigned char *enc, size_t n, uint64_t h,
                             graph_id_t *id, llmos_error_t *err);

/* Adds delta to predicate p's pending count. */
int graph_pdelta_add(graph_pdelta_t *pd, uint64_t p, int64_t delta);

/* Records the base IRI of a TSV load in the writer's transaction. */
int graph_writer_set_base(graph_writer_t *w, const char *base, llmos_error_t *err);

/* Drops this process's resident pages of the store's map (a shared file
 * mapping, so nothing is lost): keeps a bulk load's resident memory
 * bounded while it touches a store larger than its budget. */
void graph_store_release_pages(graph_store_t *s);

#endif
