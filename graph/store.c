/*
 * store.c — the triple store on LMDB: environment and sub-databases,
 * readers with cursor pools, the term dictionary, range-scan iterators over
 * SPO/POS/OSP, counts and statistics, and the single writer (add, delete,
 * intern).  See store.h for the model; bulk loading is load.c.
 *
 * Sub-databases of the environment:
 *   meta     "version", "next_id", "triples", "terms" (8-byte BE), "base"
 *   id2term  id (native uint64, MDB_INTEGERKEY: the fastest compare for
 *            the hottest look-up, decoding results) → encoded term (term.c)
 *   term2id  hash of the encoded term (native uint64, MDB_INTEGERKEY) →
 *            8-byte BE id
 *            (MDB_DUPSORT|MDB_DUPFIXED: colliding hashes keep all ids)
 *   spo, pos, osp   24-byte BE keys, empty values
 *   pstat    8-byte BE predicate id → 8-byte BE triple count (absent = 0)
 *
 * Never: write outside a writer; leave a pooled cursor open across a
 * reader reset; keep a pointer into the map past its transaction.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "graph/store_internal.h"

#define GRAPH_VERSION "llmos-graph 2"
#define DEFAULT_MAP_SIZE (64ULL << 30)

static const unsigned char EMPTY_VAL[1] = {0};

int graph_mdb_error(llmos_error_t *err, int rc, const char *what) {
    int code;
    switch (rc) {
    case MDB_NOTFOUND: code = LLMOS_ENOTFOUND; break;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL: code = LLMOS_ETOOBIG; break;
    case MDB_READERS_FULL: code = LLMOS_EOVERLOADED; break;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE: code = LLMOS_EFORMAT; break;
    case ENOMEM: code = LLMOS_ENOMEM; break;
    case EACCES:
    case EROFS: code = LLMOS_EPERM; break;
    case ENOENT: code = LLMOS_ENOTFOUND; break;
    default: code = LLMOS_EIO; break;
    }
    return llmos_error_set(err, code, "%s: %s", what, mdb_strerror(rc));
}

void graph_key_make(int order, graph_id_t s, graph_id_t p, graph_id_t o, unsigned char key[24]) {
    graph_id_t a = s, b = p, c = o;
    if (order == GRAPH_POS) {
        a = p;
        b = o;
        c = s;
    } else if (order == GRAPH_OSP) {
        a = o;
        b = s;
        c = p;
    }
    graph_be64_put(key, a);
    graph_be64_put(key + 8, b);
    graph_be64_put(key + 16, c);
}

void graph_key_split(int order, const unsigned char key[24], graph_triple_t *t) {
    graph_id_t a = graph_be64_get(key), b = graph_be64_get(key + 8), c = graph_be64_get(key + 16);
    if (order == GRAPH_SPO) {
        t->s = a;
        t->p = b;
        t->o = c;
    } else if (order == GRAPH_POS) {
        t->p = a;
        t->o = b;
        t->s = c;
    } else {
        t->o = a;
        t->s = b;
        t->p = c;
    }
}

/* The orderings' key compare: three big-endian words, the same order as
 * memcmp (so the file format is LMDB's default) but without a call per
 * byte run in the hottest loop of every scan. */
static int cmp_key24(const MDB_val *a, const MDB_val *b) {
    /* Range scans compare 8- or 16-byte prefixes with 24-byte keys too. */
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size, i = 0;
    const unsigned char *x = a->mv_data, *y = b->mv_data;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        if (u != v) return __builtin_bswap64(u) < __builtin_bswap64(v) ? -1 : 1;
    }
    if (i < n) {
        int c = memcmp(x + i, y + i, n - i);
        if (c) return c;
    }
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* ---------------------------------------------------------- meta u64 --- */

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v) {
    MDB_val k = {strlen(name), (void *)name}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc == MDB_NOTFOUND) {
        *v = 0;
        return 0;
    }
    if (rc) return rc;
    if (d.mv_size != 8) return MDB_CORRUPTED;
    *v = graph_be64_get(d.mv_data);
    return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v) {
    unsigned char b[8];
    graph_be64_put(b, v);
    MDB_val k = {strlen(name), (void *)name}, d = {8, b};
    return mdb_put(txn, dbi, &k, &d, 0);
}

/* ------------------------------------------------------------- open --- */

int graph_store_open(const char *dir, const graph_store_options_t *opt, graph_store_t **out,
                     llmos_error_t *err) {
    graph_store_options_t def = {.create = 1};
    if (!opt) opt = &def;
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || !opt->create || opt->read_only)
            return llmos_error_set(err, llmos_err_from_errno(errno), "graph %s: %s", dir, strerror(errno));
        if (mkdir(dir, 0775) != 0 && errno != EEXIST)
            return llmos_error_set(err, llmos_err_from_errno(errno), "graph %s: mkdir: %s", dir,
                                   strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return llmos_error_set(err, LLMOS_EINVAL, "graph %s: not a directory", dir);
    }
    graph_store_t *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(dir))) {
        free(s);
        return llmos_error_set(err, LLMOS_ENOMEM, "graph %s: out of memory", dir);
    }
    s->read_only = opt->read_only;
    s->no_sync = opt->no_sync;
    s->write_map = opt->write_map && !opt->read_only;
    int rc = mdb_env_create(&s->env);
    if (!rc) rc = mdb_env_set_maxdbs(s->env, 8);
    if (!rc) rc = mdb_env_set_mapsize(s->env, opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE);
    if (!rc && opt->max_readers) rc = mdb_env_set_maxreaders(s->env, opt->max_readers);
    unsigned flags = MDB_NOTLS | (opt->read_only ? MDB_RDONLY : 0) | (opt->no_sync ? MDB_NOSYNC : 0) |
                     (opt->write_map && !opt->read_only ? MDB_WRITEMAP : 0);
    if (!rc) rc = mdb_env_open(s->env, dir, flags, 0664);
    if (rc) {
        graph_mdb_error(err, rc, "opening LMDB environment");
        llmos_error_prefix(err, "graph %s: ", dir);
        graph_store_close(&s);
        return err ? err->code : LLMOS_EIO;
    }
    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, opt->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) {
        graph_mdb_error(err, rc, "begin");
        llmos_error_prefix(err, "graph %s: ", dir);
        graph_store_close(&s);
        return err ? err->code : LLMOS_EIO;
    }
    unsigned cf = opt->read_only ? 0 : MDB_CREATE;
    static const char *names[GRAPH_NORDERS] = {"spo", "pos", "osp"};
    rc = mdb_dbi_open(txn, "meta", cf, &s->meta);
    /* A foreign environment: refuse before creating anything in it. */
    if (!rc) {
        MDB_val k = {7, "version"}, d;
        int g = mdb_get(txn, s->meta, &k, &d);
        if (g == MDB_NOTFOUND) {
            MDB_stat ms;
            mdb_stat(txn, s->meta, &ms);
            if (ms.ms_entries > 0 || opt->read_only) rc = MDB_INCOMPATIBLE;
        } else if (g) {
            rc = g;
        } else if (d.mv_size != sizeof GRAPH_VERSION - 1 || memcmp(d.mv_data, GRAPH_VERSION, d.mv_size)) {
            rc = MDB_VERSION_MISMATCH;
        }
    }
    if (!rc) rc = mdb_dbi_open(txn, "id2term", cf | MDB_INTEGERKEY, &s->id2term);
    if (!rc) rc = mdb_dbi_open(txn, "term2id", cf | MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED, &s->term2id);
    if (!rc) rc = mdb_dbi_open(txn, "pstat", cf, &s->pstat);
    for (int i = 0; i < GRAPH_NORDERS && !rc; i++) {
        rc = mdb_dbi_open(txn, names[i], cf, &s->order[i]);
        if (!rc) rc = mdb_set_compare(txn, s->order[i], cmp_key24);
    }
    if (!rc && !opt->read_only) {
        MDB_val k = {7, "version"}, d = {sizeof GRAPH_VERSION - 1, GRAPH_VERSION};
        rc = mdb_put(txn, s->meta, &k, &d, 0);
    }
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc) {
        if (rc == MDB_INCOMPATIBLE || rc == MDB_VERSION_MISMATCH || rc == MDB_NOTFOUND)
            llmos_error_set(err, LLMOS_EFORMAT, "graph %s: not an llmos graph (or another version)", dir);
        else {
            graph_mdb_error(err, rc, "opening sub-databases");
            llmos_error_prefix(err, "graph %s: ", dir);
        }
        int code = err ? err->code : LLMOS_EFORMAT;
        graph_store_close(&s);
        return code;
    }
    *out = s;
    return 0;
}

void graph_store_close(graph_store_t **sp) {
    if (!sp || !*sp) return;
    graph_store_t *s = *sp;
    if (s->env) mdb_env_close(s->env);
    free(s->path);
    free(s);
    *sp = NULL;
}

const char *graph_store_path(const graph_store_t *s) { return s->path; }

/* Finds the data file's mapping in /proc/self/maps (LMDB does not expose
 * the map address unless MDB_FIXEDMAP). */
static void find_map(graph_store_t *s) {
    s->map_looked = 1;
    char want[4200], real[4096];
    if (!realpath(s->path, real)) return;
    snprintf(want, sizeof want, "%s/data.mdb", real);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[4600];
    size_t best = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char *path = strchr(line, '/');
        if (!path || sscanf(line, "%lx-%lx", &a, &b) != 2) continue;
        path[strcspn(path, "\n")] = 0;
        if (strcmp(path, want) == 0 && b - a > best) {
            best = b - a;
            s->map_addr = (void *)a;
            s->map_len = best;
        }
    }
    fclose(f);
}

void graph_store_release_pages(graph_store_t *s) {
    if (!s->map_looked) find_map(s);
    /* The map is MAP_SHARED: dropping our page-table entries keeps the data
     * (dirty pages stay in the page cache until written back). */
    if (s->map_addr) madvise(s->map_addr, s->map_len, MADV_DONTNEED);
}

/* ---------------------------------------------------------- readers --- */

static void reader_drop_cursors(graph_reader_t *r) {
    for (int o = 0; o < GRAPH_NORDERS; o++) {
        for (int i = 0; i < r->npool[o]; i++) mdb_cursor_close(r->pool[o][i]);
        r->npool[o] = 0;
    }
    if (r->t2i) mdb_cursor_close(r->t2i);
    r->t2i = NULL;
}

int graph_reader_begin(graph_store_t *s, graph_reader_t **out, llmos_error_t *err) {
    *out = NULL;
    graph_reader_t *r = calloc(1, sizeof *r);
    if (!r) return llmos_error_set(err, LLMOS_ENOMEM, "reader: out of memory");
    r->s = s;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc) {
        free(r);
        return graph_mdb_error(err, rc, "graph read transaction");
    }
    r->live = 1;
    r->gen = 1; /* 0 marks never-filled cache entries */
    *out = r;
    return 0;
}

void graph_reader_end(graph_reader_t **rp) {
    if (!rp || !*rp) return;
    graph_reader_t *r = *rp;
    LLMOS_ASSERT(!r->is_writer);
    reader_drop_cursors(r);
    mdb_txn_abort(r->txn);
    free(r->tc);
    free(r);
    *rp = NULL;
}

void graph_reader_reset(graph_reader_t *r) {
    LLMOS_ASSERT(!r->is_writer);
    if (!r->live) return;
    reader_drop_cursors(r);
    mdb_txn_reset(r->txn);
    r->live = 0;
    if (++r->gen == 0) r->gen = 1; /* cached map pointers are stale now */
}

int graph_reader_renew(graph_reader_t *r, llmos_error_t *err) {
    LLMOS_ASSERT(!r->is_writer);
    if (r->live) graph_reader_reset(r);
    int rc = mdb_txn_renew(r->txn);
    if (rc) return graph_mdb_error(err, rc, "graph read transaction renew");
    r->live = 1;
    return 0;
}

static int cursor_take(graph_reader_t *r, int order, MDB_cursor **c, llmos_error_t *err) {
    if (r->npool[order] > 0) {
        *c = r->pool[order][--r->npool[order]];
        return 0;
    }
    int rc = mdb_cursor_open(r->txn, r->s->order[order], c);
    return rc ? graph_mdb_error(err, rc, "cursor") : 0;
}

static void cursor_give(graph_reader_t *r, int order, MDB_cursor *c) {
    if (r->npool[order] < GRAPH_POOL_MAX)
        r->pool[order][r->npool[order]++] = c;
    else
        mdb_cursor_close(c);
}

/* ------------------------------------------------------- dictionary --- */

int graph_term_lookup_encoded(graph_reader_t *r, const unsigned char *enc, size_t n, uint64_t h,
                              graph_id_t *id, llmos_error_t *err) {
    uint64_t hk = h;
    MDB_val k = {8, &hk}, d;
    *id = 0;
    int rc = mdb_get(r->txn, r->s->term2id, &k, &d);
    if (rc == MDB_NOTFOUND) return LLMOS_ENOTFOUND;
    if (rc) return graph_mdb_error(err, rc, "term look-up");
    /* Usually one id per hash: check it without a cursor. */
    for (int walk = 0;; walk = 1) {
        if (d.mv_size != 8) return llmos_error_set(err, LLMOS_EFORMAT, "term2id: corrupt entry");
        uint64_t ik = graph_be64_get(d.mv_data);
        MDB_val kk = {8, &ik}, t;
        rc = mdb_get(r->txn, r->s->id2term, &kk, &t);
        if (rc) return graph_mdb_error(err, rc, "term look-up (id2term)");
        if (t.mv_size == n && memcmp(t.mv_data, enc, n) == 0) {
            *id = ik;
            return 0;
        }
        /* A hash collision: walk the other ids of this hash. */
        if (!walk) {
            if (!r->t2i && (rc = mdb_cursor_open(r->txn, r->s->term2id, &r->t2i)))
                return graph_mdb_error(err, rc, "cursor");
            MDB_val d2;
            rc = mdb_cursor_get(r->t2i, &k, &d2, MDB_SET_KEY);
            if (rc) return graph_mdb_error(err, rc, "term look-up");
            /* The first dup was checked above: step past it. */
        }
        rc = mdb_cursor_get(r->t2i, &k, &d, MDB_NEXT_DUP);
        if (rc == MDB_NOTFOUND) return LLMOS_ENOTFOUND;
        if (rc) return graph_mdb_error(err, rc, "term look-up");
    }
}

int graph_term_lookup(graph_reader_t *r, const graph_term_t *t, graph_id_t *id, llmos_error_t *err) {
    unsigned char buf[1024], *enc, *heap;
    size_t n;
    *id = 0;
    int rc = graph_term_encode(t, buf, sizeof buf, &enc, &n, &heap, err);
    if (rc) return rc;
    rc = graph_term_lookup_encoded(r, enc, n, graph_hash64(enc, n), id, err);
    free(heap);
    return rc;
}

int graph_term_get(graph_reader_t *r, graph_id_t id, graph_term_t *out, llmos_error_t *err) {
    /* Results repeat terms (hubs, shared objects): a small per-snapshot
     * cache of map pointers skips the B-tree descent.  Read-only readers
     * only: a writer's pages move as it writes. */
    struct graph_tcache *c = NULL;
    if (!r->is_writer) {
        if (!r->tc || (r->tc_miss > (4u << r->tc_bits) && r->tc_bits < GRAPH_TCACHE_MAX_BITS)) {
            /* Grow (or create): rare, amortised over 4x its size in misses. */
            unsigned bits = r->tc ? r->tc_bits + 2 : GRAPH_TCACHE_MIN_BITS;
            struct graph_tcache *nc = calloc((size_t)1 << bits, sizeof *nc);
            if (nc) {
                free(r->tc);
                r->tc = nc;
                r->tc_bits = bits;
            }
            r->tc_miss = 0;
        }
        if (r->tc) {
            c = &r->tc[(id * 0x9e3779b97f4a7c15ULL) >> (64 - r->tc_bits)];
            if (c->id == id && c->gen == r->gen) {
                if (graph_term_decode(c->p, c->n, out))
                    return llmos_error_set(err, LLMOS_EFORMAT, "term %llu: corrupt dictionary entry",
                                           (unsigned long long)id);
                return 0;
            }
        }
    }
    uint64_t ik = id;
    MDB_val k = {8, &ik}, d;
    int rc = mdb_get(r->txn, r->s->id2term, &k, &d);
    if (rc == MDB_NOTFOUND)
        return llmos_error_set(err, LLMOS_ENOTFOUND, "no term with id %llu", (unsigned long long)id);
    if (rc) return graph_mdb_error(err, rc, "term get");
    if (c && d.mv_size <= UINT32_MAX) {
        r->tc_miss++;
        c->id = id;
        c->p = d.mv_data;
        c->n = (uint32_t)d.mv_size;
        c->gen = r->gen;
    }
    if (graph_term_decode(d.mv_data, d.mv_size, out))
        return llmos_error_set(err, LLMOS_EFORMAT, "term %llu: corrupt dictionary entry", (unsigned long long)id);
    return 0;
}

int graph_term_format_id(graph_reader_t *r, graph_id_t id, char *buf, size_t cap, size_t *out_len,
                         llmos_error_t *err) {
    graph_term_t t;
    int rc = graph_term_get(r, id, &t, err);
    return rc ? rc : graph_term_format(&t, buf, cap, out_len, err);
}

int graph_term_append_id(graph_reader_t *r, graph_id_t id, llmos_buf_t *b, llmos_error_t *err) {
    graph_term_t t;
    int rc = graph_term_get(r, id, &t, err);
    if (rc) return rc;
    size_t need = 0;
    if (llmos_buf_reserve(b, 64))
        return llmos_error_set(err, LLMOS_ENOMEM, "out of memory formatting a term");
    rc = graph_term_format(&t, b->data + b->len, b->cap - b->len, &need, err);
    if (rc == LLMOS_ETOOBIG) { /* once more with the room it needs */
        llmos_error_clear(err);
        if (llmos_buf_reserve(b, need)) {
            b->data[b->len] = '\0';
            return llmos_error_set(err, LLMOS_ENOMEM, "out of memory formatting a term");
        }
        rc = graph_term_format(&t, b->data + b->len, b->cap - b->len, &need, err);
    }
    if (rc) {
        b->data[b->len] = '\0';
        return rc;
    }
    b->len += need;
    return 0;
}

/* --------------------------------------------------------- patterns --- */

int graph_store_match(graph_reader_t *r, graph_id_t s, graph_id_t p, graph_id_t o, graph_iter_t *it,
                      llmos_error_t *err) {
    /* Which ordering answers each pattern, and how many key bytes it binds;
     * indexed by (s bound) << 2 | (p bound) << 1 | (o bound). */
    static const struct {
        int order;
        unsigned prefix;
    } plan[8] = {
        {GRAPH_SPO, 0},  /* ? ? ? */
        {GRAPH_OSP, 8},  /* ? ? o */
        {GRAPH_POS, 8},  /* ? p ? */
        {GRAPH_POS, 16}, /* ? p o */
        {GRAPH_SPO, 8},  /* s ? ? */
        {GRAPH_OSP, 16}, /* s ? o */
        {GRAPH_SPO, 16}, /* s p ? */
        {GRAPH_SPO, 24}, /* s p o */
    };
    memset(it, 0, sizeof *it);
    int m = (s != 0) << 2 | (p != 0) << 1 | (o != 0);
    int order = plan[m].order;
    unsigned n = plan[m].prefix;
    graph_key_make(order, s, p, o, it->prefix);
    MDB_cursor *c;
    int rc = cursor_take(r, order, &c, err);
    if (rc) return rc;
    it->r = r;
    it->cursor = c;
    it->order = order;
    it->prefix_len = n;
    return 0;
}

int graph_iter_next(graph_iter_t *it, graph_triple_t *t, llmos_error_t *err) {
    if (it->state == 2 || !it->cursor) return 0;
    MDB_val k, d;
    int rc;
    if (it->state == 0) {
        it->state = 1;
        if (it->prefix_len == 0) {
            rc = mdb_cursor_get(it->cursor, &k, &d, MDB_FIRST);
        } else {
            k.mv_size = it->prefix_len;
            k.mv_data = it->prefix;
            rc = mdb_cursor_get(it->cursor, &k, &d, MDB_SET_RANGE);
        }
    } else {
        rc = mdb_cursor_get(it->cursor, &k, &d, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) {
        it->state = 2;
        return 0;
    }
    if (rc) return graph_mdb_error(err, rc, "triple scan");
    if (k.mv_size != 24) return llmos_error_set(err, LLMOS_EFORMAT, "triple index: key of %zu bytes", k.mv_size);
    if (it->prefix_len && memcmp(k.mv_data, it->prefix, it->prefix_len) != 0) {
        it->state = 2;
        return 0;
    }
    graph_key_split(it->order, k.mv_data, t);
    return 1;
}

void graph_iter_close(graph_iter_t *it) {
    if (it->cursor) cursor_give(it->r, it->order, it->cursor);
    it->cursor = NULL;
    it->state = 2;
}

int graph_store_contains(graph_reader_t *r, graph_id_t s, graph_id_t p, graph_id_t o, llmos_error_t *err) {
    unsigned char key[24];
    graph_key_make(GRAPH_SPO, s, p, o, key);
    MDB_val k = {24, key}, d;
    int rc = mdb_get(r->txn, r->s->order[GRAPH_SPO], &k, &d);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return graph_mdb_error(err, rc, "triple look-up");
    return 1;
}

static int pstat_get(graph_reader_t *r, graph_id_t p, uint64_t *n, llmos_error_t *err) {
    unsigned char pk[8];
    graph_be64_put(pk, p);
    MDB_val k = {8, pk}, d;
    int rc = mdb_get(r->txn, r->s->pstat, &k, &d);
    *n = 0;
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return graph_mdb_error(err, rc, "predicate count");
    if (d.mv_size != 8) return llmos_error_set(err, LLMOS_EFORMAT, "pstat: corrupt entry");
    *n = graph_be64_get(d.mv_data);
    return 0;
}

/* A writer's pending count change for predicate p (counts are flushed at
 * commit; its reader view adds them so it sees its own writes). */
static int64_t pdelta_get(const graph_pdelta_t *pd, uint64_t p) {
    if (!pd->cap) return 0;
    size_t j = (size_t)(graph_hash64(&p, 8) & (pd->cap - 1));
    while (pd->keys[j]) {
        if (pd->keys[j] == p) return pd->vals[j];
        j = (j + 1) & (pd->cap - 1);
    }
    return 0;
}

int graph_store_count(graph_reader_t *r, graph_id_t s, graph_id_t p, graph_id_t o, uint64_t limit,
                      uint64_t *n, llmos_error_t *err) {
    *n = 0;
    int rc;
    if (!s && !p && !o) {
        rc = meta_get_u64(r->txn, r->s->meta, "triples", n);
        if (rc) return graph_mdb_error(err, rc, "triple count");
        if (r->is_writer) *n = (uint64_t)((int64_t)*n + ((graph_writer_t *)r)->dtriples);
    } else if (p && !s && !o) {
        if ((rc = pstat_get(r, p, n, err))) return rc;
        if (r->is_writer) *n = (uint64_t)((int64_t)*n + pdelta_get(&((graph_writer_t *)r)->pd, p));
    } else if (s && p && o) {
        rc = graph_store_contains(r, s, p, o, err);
        if (rc < 0) return rc;
        *n = (uint64_t)rc;
        return 0;
    } else {
        graph_iter_t it;
        graph_triple_t t;
        if ((rc = graph_store_match(r, s, p, o, &it, err))) return rc;
        while ((rc = graph_iter_next(&it, &t, err)) == 1)
            if (++*n == limit) break;
        graph_iter_close(&it);
        if (rc < 0) return rc;
    }
    if (limit && *n > limit) *n = limit;
    return 0;
}

/* ------------------------------------------------------ statistics --- */

int graph_store_stats(graph_reader_t *r, graph_stats_t *out, llmos_error_t *err) {
    memset(out, 0, sizeof *out);
    int rc = meta_get_u64(r->txn, r->s->meta, "triples", &out->triples);
    if (!rc) rc = meta_get_u64(r->txn, r->s->meta, "terms", &out->terms);
    MDB_stat ms;
    if (!rc) rc = mdb_stat(r->txn, r->s->pstat, &ms);
    if (rc) return graph_mdb_error(err, rc, "stats");
    out->predicates = ms.ms_entries;
    if (r->is_writer) { /* its own pending writes (predicates: as of the last commit) */
        const graph_writer_t *w = (const graph_writer_t *)r;
        out->triples = (uint64_t)((int64_t)out->triples + w->dtriples);
        out->terms += w->dterms;
    }
    return 0;
}

int graph_store_predicates(graph_reader_t *r, graph_predicate_fn fn, void *ctx, llmos_error_t *err) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->s->pstat, &c);
    if (rc) return graph_mdb_error(err, rc, "cursor");
    MDB_val k, d;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 8 || d.mv_size != 8) {
            ret = llmos_error_set(err, LLMOS_EFORMAT, "pstat: corrupt entry");
            break;
        }
        if ((ret = fn(ctx, graph_be64_get(k.mv_data), graph_be64_get(d.mv_data)))) break;
    }
    if (!ret && rc && rc != MDB_NOTFOUND) ret = graph_mdb_error(err, rc, "predicate walk");
    mdb_cursor_close(c);
    return ret;
}

int graph_store_distinct(graph_reader_t *r, int which, uint64_t *n, llmos_error_t *err) {
    *n = 0;
    if (which == 1) {
        graph_stats_t st;
        int rc = graph_store_stats(r, &st, err);
        *n = st.predicates;
        return rc;
    }
    int order = which == 0 ? GRAPH_SPO : GRAPH_OSP;
    MDB_cursor *c;
    int rc = cursor_take(r, order, &c, err);
    if (rc) return rc;
    unsigned char key[8];
    MDB_val k, d;
    rc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    while (rc == 0) {
        ++*n;
        uint64_t first = graph_be64_get(k.mv_data);
        if (first == UINT64_MAX) break;
        graph_be64_put(key, first + 1);
        k.mv_size = 8;
        k.mv_data = key;
        rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
    }
    cursor_give(r, order, c);
    if (rc && rc != MDB_NOTFOUND) return graph_mdb_error(err, rc, "distinct walk");
    return 0;
}

/* ---------------------------------------------------------- writers --- */

int graph_pdelta_add(graph_pdelta_t *pd, uint64_t p, int64_t delta) {
    if ((pd->n + 1) * 2 > pd->cap) {
        size_t ncap = pd->cap ? pd->cap * 2 : 64;
        uint64_t *nk = calloc(ncap, sizeof *nk);
        int64_t *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return LLMOS_ENOMEM;
        }
        for (size_t i = 0; i < pd->cap; i++) {
            if (!pd->keys[i]) continue;
            size_t j = (size_t)(graph_hash64(&pd->keys[i], 8) & (ncap - 1));
            while (nk[j]) j = (j + 1) & (ncap - 1);
            nk[j] = pd->keys[i];
            nv[j] = pd->vals[i];
        }
        free(pd->keys);
        free(pd->vals);
        pd->keys = nk;
        pd->vals = nv;
        pd->cap = ncap;
    }
    size_t j = (size_t)(graph_hash64(&p, 8) & (pd->cap - 1));
    while (pd->keys[j] && pd->keys[j] != p) j = (j + 1) & (pd->cap - 1);
    if (!pd->keys[j]) {
        pd->keys[j] = p;
        pd->n++;
    }
    pd->vals[j] += delta;
    return 0;
}

int graph_writer_begin(graph_store_t *s, graph_writer_t **out, llmos_error_t *err) {
    *out = NULL;
    if (s->read_only) return llmos_error_set(err, LLMOS_EPERM, "graph %s is open read-only", s->path);
    graph_writer_t *w = calloc(1, sizeof *w);
    if (!w) return llmos_error_set(err, LLMOS_ENOMEM, "writer: out of memory");
    w->r.s = s;
    w->r.is_writer = 1;
    w->r.live = 1;
    int rc = mdb_txn_begin(s->env, NULL, 0, &w->r.txn);
    if (rc) {
        free(w);
        return graph_mdb_error(err, rc, "graph write transaction");
    }
    rc = meta_get_u64(w->r.txn, s->meta, "next_id", &w->next_id);
    if (rc) {
        mdb_txn_abort(w->r.txn);
        free(w);
        return graph_mdb_error(err, rc, "graph write transaction");
    }
    if (w->next_id == 0) w->next_id = 1;
    *out = w;
    return 0;
}

static void writer_free(graph_writer_t *w) {
    free(w->pd.keys);
    free(w->pd.vals);
    free(w);
}

void graph_writer_abort(graph_writer_t **wp) {
    if (!wp || !*wp) return;
    graph_writer_t *w = *wp;
    reader_drop_cursors(&w->r);
    mdb_txn_abort(w->r.txn);
    writer_free(w);
    *wp = NULL;
}

static int writer_flush_counts(graph_writer_t *w) {
    MDB_txn *txn = w->r.txn;
    graph_store_t *s = w->r.s;
    int rc;
    for (size_t i = 0; i < w->pd.cap; i++) {
        if (!w->pd.keys[i] || !w->pd.vals[i]) continue;
        unsigned char pk[8], pv[8];
        graph_be64_put(pk, w->pd.keys[i]);
        MDB_val k = {8, pk}, d;
        uint64_t cur = 0;
        rc = mdb_get(txn, s->pstat, &k, &d);
        if (rc == 0 && d.mv_size == 8) cur = graph_be64_get(d.mv_data);
        else if (rc && rc != MDB_NOTFOUND) return rc;
        int64_t nv = (int64_t)cur + w->pd.vals[i];
        if (nv < 0) return MDB_CORRUPTED;
        if (nv == 0) {
            rc = mdb_del(txn, s->pstat, &k, NULL);
            if (rc && rc != MDB_NOTFOUND) return rc;
        } else {
            graph_be64_put(pv, (uint64_t)nv);
            d.mv_size = 8;
            d.mv_data = pv;
            if ((rc = mdb_put(txn, s->pstat, &k, &d, 0))) return rc;
        }
    }
    uint64_t tr, te;
    if ((rc = meta_get_u64(txn, s->meta, "triples", &tr))) return rc;
    if ((rc = meta_get_u64(txn, s->meta, "terms", &te))) return rc;
    if ((int64_t)tr + w->dtriples < 0) return MDB_CORRUPTED;
    if ((rc = meta_put_u64(txn, s->meta, "triples", (uint64_t)((int64_t)tr + w->dtriples)))) return rc;
    if ((rc = meta_put_u64(txn, s->meta, "terms", te + w->dterms))) return rc;
    return meta_put_u64(txn, s->meta, "next_id", w->next_id);
}

/* Under MDB_WRITEMAP, LMDB's commit clears the dirty flag of every page the
 * transaction wrote, in place: that maps the whole load back into this
 * process (measured: a 10 M-triple load went from ~230 MiB to 631 MiB
 * resident in its last second, all of it file pages).  While a commit runs,
 * this thread drops the map's page-table entries every few milliseconds;
 * the data stays in the page cache (the map is MAP_SHARED), so resident
 * memory stays bounded and nothing changes on disk. */
typedef struct page_releaser {
    graph_store_t *s;
    atomic_int stop;
} page_releaser_t;

static void *page_release_loop(void *arg) {
    page_releaser_t *pr = arg;
    const struct timespec nap = {0, 5 * 1000 * 1000};
    while (!atomic_load(&pr->stop)) {
        madvise(pr->s->map_addr, pr->s->map_len, MADV_DONTNEED);
        nanosleep(&nap, NULL);
    }
    return NULL;
}

int graph_writer_commit(graph_writer_t **wp, llmos_error_t *err) {
    graph_writer_t *w = *wp;
    *wp = NULL;
    reader_drop_cursors(&w->r);
    int rc = writer_flush_counts(w);
    if (rc) {
        mdb_txn_abort(w->r.txn);
        writer_free(w);
        return graph_mdb_error(err, rc, "graph commit (counts)");
    }
    graph_store_t *s = w->r.s;
    page_releaser_t pr = {.s = s};
    pthread_t th;
    int releasing = 0;
    if (s->write_map) {
        if (!s->map_looked) find_map(s);
        releasing = s->map_addr && pthread_create(&th, NULL, page_release_loop, &pr) == 0;
    }
    rc = mdb_txn_commit(w->r.txn);
    if (releasing) {
        atomic_store(&pr.stop, 1);
        pthread_join(th, NULL);
    }
    writer_free(w);
    return rc ? graph_mdb_error(err, rc, "graph commit") : 0;
}

graph_reader_t *graph_writer_reader(graph_writer_t *w) { return &w->r; }

int graph_writer_add_encoded(graph_writer_t *w, const unsigned char *enc, size_t n, uint64_t h,
                             graph_id_t *id, llmos_error_t *err) {
    uint64_t nid = w->next_id, hk = h;
    unsigned char ib[8];
    graph_be64_put(ib, nid);
    MDB_val k = {8, &nid}, d = {n, (void *)enc};
    int rc = mdb_put(w->r.txn, w->r.s->id2term, &k, &d, MDB_APPEND);
    if (rc) return graph_mdb_error(err, rc, "adding a term");
    MDB_val k2 = {8, &hk}, d2 = {8, ib};
    rc = mdb_put(w->r.txn, w->r.s->term2id, &k2, &d2, 0);
    if (rc) return graph_mdb_error(err, rc, "adding a term (index)");
    w->next_id++;
    w->dterms++;
    *id = nid;
    return 0;
}

int graph_writer_intern(graph_writer_t *w, const graph_term_t *t, graph_id_t *id, llmos_error_t *err) {
    unsigned char buf[1024], *enc, *heap;
    size_t n;
    int rc = graph_term_encode(t, buf, sizeof buf, &enc, &n, &heap, err);
    if (rc) return rc;
    uint64_t h = graph_hash64(enc, n);
    rc = graph_term_lookup_encoded(&w->r, enc, n, h, id, err);
    if (rc == LLMOS_ENOTFOUND) rc = graph_writer_add_encoded(w, enc, n, h, id, err);
    free(heap);
    return rc;
}

int graph_writer_add(graph_writer_t *w, graph_id_t s, graph_id_t p, graph_id_t o, int *added,
                     llmos_error_t *err) {
    if (added) *added = 0;
    if (!s || !p || !o || s >= w->next_id || p >= w->next_id || o >= w->next_id)
        return llmos_error_set(err, LLMOS_EINVAL, "add: id not in the dictionary (%llu %llu %llu)",
                               (unsigned long long)s, (unsigned long long)p, (unsigned long long)o);
    unsigned char key[24];
    MDB_val k = {24, key}, d = {0, (void *)EMPTY_VAL};
    graph_key_make(GRAPH_SPO, s, p, o, key);
    int rc = mdb_put(w->r.txn, w->r.s->order[GRAPH_SPO], &k, &d, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return 0;
    for (int ord = GRAPH_POS; !rc && ord < GRAPH_NORDERS; ord++) {
        graph_key_make(ord, s, p, o, key);
        rc = mdb_put(w->r.txn, w->r.s->order[ord], &k, &d, 0);
    }
    if (rc) return graph_mdb_error(err, rc, "adding a triple");
    if (graph_pdelta_add(&w->pd, p, 1)) return llmos_error_set(err, LLMOS_ENOMEM, "predicate counts");
    w->dtriples++;
    if (added) *added = 1;
    return 0;
}

int graph_writer_add_terms(graph_writer_t *w, const graph_term_t *s, const graph_term_t *p,
                           const graph_term_t *o, int *added, llmos_error_t *err) {
    graph_id_t a, b, c;
    int rc;
    if ((rc = graph_writer_intern(w, s, &a, err))) return llmos_error_prefix(err, "subject: ");
    if ((rc = graph_writer_intern(w, p, &b, err))) return llmos_error_prefix(err, "predicate: ");
    if ((rc = graph_writer_intern(w, o, &c, err))) return llmos_error_prefix(err, "object: ");
    return graph_writer_add(w, a, b, c, added, err);
}

int graph_writer_delete(graph_writer_t *w, graph_id_t s, graph_id_t p, graph_id_t o, int *deleted,
                        llmos_error_t *err) {
    if (deleted) *deleted = 0;
    unsigned char key[24];
    MDB_val k = {24, key};
    graph_key_make(GRAPH_SPO, s, p, o, key);
    int rc = mdb_del(w->r.txn, w->r.s->order[GRAPH_SPO], &k, NULL);
    if (rc == MDB_NOTFOUND) return 0;
    for (int ord = GRAPH_POS; !rc && ord < GRAPH_NORDERS; ord++) {
        graph_key_make(ord, s, p, o, key);
        rc = mdb_del(w->r.txn, w->r.s->order[ord], &k, NULL);
    }
    if (rc) return graph_mdb_error(err, rc, "deleting a triple");
    if (graph_pdelta_add(&w->pd, p, -1)) return llmos_error_set(err, LLMOS_ENOMEM, "predicate counts");
    w->dtriples--;
    if (deleted) *deleted = 1;
    return 0;
}

/* ------------------------------------------------------------ names --- */

const char *graph_store_base(graph_reader_t *r) {
    MDB_val k = {4, "base"}, d;
    if (mdb_get(r->txn, r->s->meta, &k, &d) == 0 && d.mv_size > 1 &&
        ((const char *)d.mv_data)[d.mv_size - 1] == 0)
        return d.mv_data;
    return GRAPH_DEFAULT_BASE;
}

int graph_writer_set_base(graph_writer_t *w, const char *base, llmos_error_t *err) {
    MDB_val k = {4, "base"}, d = {strlen(base) + 1, (void *)base};
    int rc = mdb_put(w->r.txn, w->r.s->meta, &k, &d, 0);
    return rc ? graph_mdb_error(err, rc, "recording the base IRI") : 0;
}

int graph_node_resolve(graph_reader_t *r, const char *name, const char *base, graph_id_t *id,
                       llmos_error_t *err) {
    size_t n = strlen(name);
    *id = 0;
    if (!base) base = graph_store_base(r);
    size_t cap = 3 * n + strlen(base) + 32;
    char *buf = malloc(cap);
    if (!buf) return llmos_error_set(err, LLMOS_ENOMEM, "resolving a node");
    graph_term_t t;
    int rc;
    if (name[0] == '<' || name[0] == '"' || (name[0] == '_' && name[1] == ':')) {
        size_t used;
        rc = graph_term_parse(name, n, buf, cap, &t, &used, err);
        if (!rc && used != n)
            rc = llmos_error_set(err, LLMOS_EFORMAT, "column %zu: text after the term", used + 1);
        if (rc) {
            llmos_error_prefix(err, "node '%s': ", name);
            free(buf);
            return rc;
        }
    } else {
        rc = graph_name_to_iri(base, name, n, buf, cap, NULL, err);
        if (rc) {
            free(buf);
            return rc;
        }
        t = graph_term_iri(buf);
    }
    rc = graph_term_lookup(r, &t, id, err);
    if (rc == LLMOS_ENOTFOUND) {
        char shown[600];
        graph_term_format(&t, shown, sizeof shown, NULL, NULL);
        rc = llmos_error_set(err, LLMOS_ENOTFOUND, "node %s is not in the graph", shown);
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ check --- */

int graph_store_check(graph_reader_t *r, uint64_t orders[3], llmos_error_t *err) {
    graph_store_t *s = r->s;
    MDB_stat ms[GRAPH_NORDERS], mi, mt;
    uint64_t n[3];
    int rc = 0;
    for (int o = 0; o < GRAPH_NORDERS && !rc; o++) rc = mdb_stat(r->txn, s->order[o], &ms[o]);
    if (!rc) rc = mdb_stat(r->txn, s->id2term, &mi);
    if (!rc) rc = mdb_stat(r->txn, s->term2id, &mt);
    if (rc) return graph_mdb_error(err, rc, "check");
    for (int o = 0; o < 3; o++) n[o] = ms[o].ms_entries;
    if (orders) memcpy(orders, n, sizeof n);
    graph_stats_t st;
    if ((rc = graph_store_stats(r, &st, err))) return rc;
    if (n[0] != n[1] || n[0] != n[2])
        return llmos_error_set(err, LLMOS_EFORMAT, "orderings disagree: SPO %llu, POS %llu, OSP %llu",
                               (unsigned long long)n[0], (unsigned long long)n[1], (unsigned long long)n[2]);
    if (n[0] != st.triples)
        return llmos_error_set(err, LLMOS_EFORMAT, "triple count %llu but %llu keys",
                               (unsigned long long)st.triples, (unsigned long long)n[0]);
    if (mi.ms_entries != mt.ms_entries || mi.ms_entries != st.terms)
        return llmos_error_set(err, LLMOS_EFORMAT, "dictionary: %llu ids, %llu hashes, count %llu",
                               (unsigned long long)mi.ms_entries, (unsigned long long)mt.ms_entries,
                               (unsigned long long)st.terms);
    uint64_t next_id;
    if ((rc = meta_get_u64(r->txn, s->meta, "next_id", &next_id))) return graph_mdb_error(err, rc, "check");
    graph_pdelta_t pd = {0};
    graph_iter_t it;
    graph_triple_t t;
    if ((rc = graph_store_match(r, 0, 0, 0, &it, err))) return rc;
    while ((rc = graph_iter_next(&it, &t, err)) == 1) {
        rc = 0;
        if (!t.s || !t.p || !t.o || t.s >= next_id || t.p >= next_id || t.o >= next_id) {
            rc = llmos_error_set(err, LLMOS_EFORMAT, "triple (%llu %llu %llu) names an id outside the dictionary",
                                 (unsigned long long)t.s, (unsigned long long)t.p, (unsigned long long)t.o);
            break;
        }
        for (int o = GRAPH_POS; o < GRAPH_NORDERS; o++) {
            unsigned char key[24];
            graph_key_make(o, t.s, t.p, t.o, key);
            MDB_val k = {24, key}, d;
            if (mdb_get(r->txn, s->order[o], &k, &d)) {
                rc = llmos_error_set(err, LLMOS_EFORMAT, "triple (%llu %llu %llu) missing from %s",
                                     (unsigned long long)t.s, (unsigned long long)t.p, (unsigned long long)t.o,
                                     o == GRAPH_POS ? "POS" : "OSP");
                break;
            }
        }
        if (rc) break;
        if (graph_pdelta_add(&pd, t.p, 1)) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "check");
            break;
        }
        rc = 1;
    }
    graph_iter_close(&it);
    if (rc == 0 && pd.n != st.predicates)
        rc = llmos_error_set(err, LLMOS_EFORMAT, "%zu predicates in SPO, %llu in the statistics", pd.n,
                             (unsigned long long)st.predicates);
    for (size_t i = 0; rc == 0 && i < pd.cap; i++) {
        if (!pd.keys[i]) continue;
        uint64_t c;
        if ((rc = pstat_get(r, pd.keys[i], &c, err))) break;
        if (c != (uint64_t)pd.vals[i])
            rc = llmos_error_set(err, LLMOS_EFORMAT, "predicate %llu: %llu triples, statistics say %llu",
                                 (unsigned long long)pd.keys[i], (unsigned long long)pd.vals[i],
                                 (unsigned long long)c);
    }
    free(pd.keys);
    free(pd.vals);
    return rc;
}
