/*
 * load.c — bulk loading (see load.h): parse (serd for N-Triples and Turtle,
 * a small splitter for TSV) → intern terms through a bounded cache → buffer
 * id triples → sort (spilling sorted runs to unlinked temp files when the
 * buffer is full) → merge → write each ordering in key order, all inside
 * one write transaction committed at the very end.
 *
 * Malformed N-Triples lines are staged-then-dropped: a line's statements
 * are kept as encoded terms in a line arena and interned only when serd
 * finished the line without an error, so a bad line adds nothing (not even
 * dictionary entries).
 *
 * Never: commit before every file was read; hold more than the budget's
 * share of triples in memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <serd/serd.h>

#include "graph/load.h"
#include "graph/store_internal.h"
#include "runtime/base/clock.h"
#include "runtime/base/map.h"
#include "runtime/base/progress.h"
#include "runtime/base/utf8.h"

#define MIN_BUDGET (16ULL << 20)
#define STAGE_BATCH 1024 /* statements interned together */
#define RUN_READ_BUF (24u * 10240) /* whole keys per read */
/* Triples read / keys written between drops of the store's mapped pages
 * (graph_store_release_pages): what a load touches in the map in between
 * (a few tens of MiB) is all the file-backed memory it holds. */
#define RELEASE_EVERY (1u << 18)

typedef struct tcache_entry {
    uint64_t h1, h2; /* 128 bits of hash: a cache hit is trusted without a check */
    graph_id_t id;
} tcache_entry_t;

typedef struct run_set {
    FILE **f;        /* one file per run, per ordering */
    size_t n, cap;
} run_set_t;

typedef struct staged {
    size_t off[3], len[3]; /* encoded s, p, o in the line arena */
} staged_t;

typedef struct loader {
    graph_writer_t *w;
    const graph_load_options_t *opt;
    graph_load_report_t rep;
    FILE *diag;
    unsigned max_diag, shown;
    const char *base;
    const char *tmp_dir;
    int fatal;                 /* an llmos_err that stops the load */
    llmos_error_t *err;

    tcache_entry_t *tc;        /* tc_cap entries, open addressing */
    size_t tc_cap, tc_max;     /* size now, size the budget allows */
    size_t tc_n;               /* entries held */
    int tc_complete;           /* every term of the dictionary is in the cache */
    tcache_entry_t l1[1024];   /* direct-mapped front cache: hot terms (predicates) */
    uint64_t *hs;              /* flush_stage: two hashes per staged term */
    size_t hs_cap;

    graph_triple_t *buf;       /* buf_cap triples, then buf_cap of radix scratch */
    size_t buf_cap, buf_n, buf_max;
    size_t *radix_cnt;         /* 65536 digit counters */
    run_set_t runs[GRAPH_NORDERS];

    /* current file / line */
    const char *file;
    uint64_t line;
    int line_bad;
    unsigned bad_col;
    char bad_msg[256];
    unsigned char *arena;
    size_t an, acap;
    staged_t *stage;
    size_t nstage, stage_cap;
    SerdEnv *env;              /* Turtle only */
    int syntax;                /* GRAPH_FORMAT_NT or TTL while serd runs */

    llmos_progress_t prog;
    uint64_t bytes_total, bytes_done;
    int used_tsv;
} loader_t;

/* ------------------------------------------------------- diagnostics --- */

static void report_bad(loader_t *l, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_bad(loader_t *l, unsigned col, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    l->rep.errors++;
    char where[64];
    if (col)
        snprintf(where, sizeof where, "%llu:%u", (unsigned long long)l->line, col);
    else
        snprintf(where, sizeof where, "%llu", (unsigned long long)l->line);
    if (l->opt->strict && !l->fatal) {
        l->fatal = llmos_error_set(l->err, LLMOS_EFORMAT, "%s:%s: %s (--strict: nothing loaded)", l->file,
                                   where, msg);
    }
    if (l->shown < l->max_diag) {
        if (l->prog.tty && !l->opt->quiet) fputs("\r\033[K", l->diag);
        fprintf(l->diag, "%s:%s: %s%s\n", l->file, where, msg,
                l->opt->strict || l->syntax == GRAPH_FORMAT_TTL ? "" : " (line skipped)");
    }
    l->shown++;
}

/* ------------------------------------------------------------ terms --- */

/* The term cache: open addressing with linear probing over (h1, h2, id),
 * doubled while it is at most half full, up to tc_max entries (the
 * budget's share); after that it stops taking new terms (memory stays
 * bounded; lookups still work).  tc_complete: the dictionary was empty
 * when the load began and the cache has kept every term since — then a
 * miss means a new term and the dictionary look-up is skipped.
 * It is not the shared map (runtime/base/map.h) on purpose: an entry is 24
 * bytes with no key copy (two 64-bit hashes stand in for the term), the
 * table sits in huge pages and is prefetched a batch ahead, and the memory
 * budget counts its bytes — the bulk load's throughput and resident size
 * rest on that layout. */

/* Zeroed cache memory, 2 MiB-aligned and advised to use huge pages: the
 * cache is probed at random, and TLB misses dominate a probe otherwise. */
static tcache_entry_t *tc_alloc(size_t n) {
    size_t bytes = n * sizeof(tcache_entry_t), align = 2u << 20;
    bytes = (bytes + align - 1) / align * align;
    tcache_entry_t *t = aligned_alloc(align, bytes);
    if (!t) return NULL;
    madvise(t, bytes, MADV_HUGEPAGE);
    memset(t, 0, bytes);
    return t;
}

static inline size_t tc_slot(const loader_t *l, uint64_t h1) {
    return (size_t)(h1 ^ (h1 >> 29)) & (l->tc_cap - 1);
}

static void tc_insert(loader_t *l, uint64_t h1, uint64_t h2, graph_id_t id) {
    if ((l->tc_n + 1) * 2 > l->tc_cap) {
        size_t nc = l->tc_cap * 2;
        tcache_entry_t *nt = l->tc_cap < l->tc_max ? tc_alloc(nc) : NULL;
        if (!nt) {
            if ((l->tc_n + 1) * 10 > l->tc_cap * 7) { /* full: keep what is there */
                l->tc_complete = 0;
                return;
            }
        } else {
            for (size_t i = 0; i < l->tc_cap; i++) {
                if (!l->tc[i].id) continue;
                size_t j = (size_t)(l->tc[i].h1 ^ (l->tc[i].h1 >> 29)) & (nc - 1);
                while (nt[j].id) j = (j + 1) & (nc - 1);
                nt[j] = l->tc[i];
            }
            free(l->tc);
            l->tc = nt;
            l->tc_cap = nc;
        }
    }
    size_t j = tc_slot(l, h1);
    while (l->tc[j].id) j = (j + 1) & (l->tc_cap - 1);
    l->tc[j].h1 = h1;
    l->tc[j].h2 = h2;
    l->tc[j].id = id;
    l->tc_n++;
}

/* The id of an encoded term whose two hashes are known: front cache, then
 * the cache, then the dictionary (adding the term if new). */
static int intern_hashed(loader_t *l, const unsigned char *enc, size_t n, uint64_t h1, uint64_t h2,
                         graph_id_t *id) {
    tcache_entry_t *f = &l->l1[h2 & 1023];
    if (f->id && f->h1 == h1 && f->h2 == h2) {
        *id = f->id;
        return 0;
    }
    for (size_t j = tc_slot(l, h1); l->tc[j].id; j = (j + 1) & (l->tc_cap - 1)) {
        if (l->tc[j].h1 == h1 && l->tc[j].h2 == h2) {
            *id = l->tc[j].id;
            *f = l->tc[j];
            return 0;
        }
    }
    int rc = l->tc_complete ? LLMOS_ENOTFOUND : graph_term_lookup_encoded(&l->w->r, enc, n, h1, id, l->err);
    if (rc == LLMOS_ENOTFOUND) {
        rc = graph_writer_add_encoded(l->w, enc, n, h1, id, l->err);
        if (!rc) l->rep.terms_added++;
    }
    if (rc) return rc;
    tc_insert(l, h1, h2, *id);
    f->h1 = h1;
    f->h2 = h2;
    f->id = *id;
    return 0;
}

/* Reserves room in the line arena; returns 0 or LLMOS_ENOMEM. */
static int arena_reserve(loader_t *l, size_t need) {
    if (l->an + need <= l->acap) return 0;
    size_t nc = l->acap ? l->acap : 4096;
    while (nc < l->an + need) nc *= 2;
    unsigned char *na = realloc(l->arena, nc);
    if (!na) return LLMOS_ENOMEM;
    l->arena = na;
    l->acap = nc;
    return 0;
}

/* Encodes t into the arena; off and len locate it. */
static int arena_encode(loader_t *l, const graph_term_t *t, size_t *off, size_t *len, llmos_error_t *e) {
    size_t need = t->len + t->lang_len + t->datatype_len + 8;
    if (arena_reserve(l, need)) return llmos_error_set(e, LLMOS_ENOMEM, "line arena");
    unsigned char *out, *heap;
    int rc = graph_term_encode(t, l->arena + l->an, l->acap - l->an, &out, len, &heap, e);
    if (rc) return rc;
    LLMOS_ASSERT(heap == NULL);
    *off = l->an;
    l->an += *len;
    return 0;
}

/* ----------------------------------------------------- sort and runs --- */

static int order_of_cmp; /* set before qsort: the ordering being sorted */

static inline void triple_key3(const graph_triple_t *t, int order, uint64_t k[3]) {
    if (order == GRAPH_SPO) {
        k[0] = t->s;
        k[1] = t->p;
        k[2] = t->o;
    } else if (order == GRAPH_POS) {
        k[0] = t->p;
        k[1] = t->o;
        k[2] = t->s;
    } else {
        k[0] = t->o;
        k[1] = t->s;
        k[2] = t->p;
    }
}

static int cmp_triples(const void *a, const void *b) {
    uint64_t x[3], y[3];
    triple_key3(a, order_of_cmp, x);
    triple_key3(b, order_of_cmp, y);
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* LSD radix sort on the three 64-bit key words of an ordering, 16 bits per
 * pass, skipping passes whose digit is constant (ids are small, so most
 * are).  Falls back to qsort when no scratch memory is available. */
static void sort_triples(graph_triple_t *a, size_t n, int order, graph_triple_t *tmp, size_t *cnt) {
    if (n < 2) return;
    if (!tmp || !cnt || n < 256) {
        order_of_cmp = order;
        qsort(a, n, sizeof *a, cmp_triples);
        return;
    }
    uint64_t maxw[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        uint64_t k[3];
        triple_key3(&a[i], order, k);
        for (int w = 0; w < 3; w++) maxw[w] |= k[w];
    }
    graph_triple_t *src = a, *dst = tmp;
    for (int w = 2; w >= 0; w--) {
        for (int shift = 0; shift < 64; shift += 16) {
            if (!(maxw[w] >> shift)) break;
            memset(cnt, 0, (1 << 16) * sizeof *cnt);
            for (size_t i = 0; i < n; i++) {
                uint64_t k[3];
                triple_key3(&src[i], order, k);
                cnt[(k[w] >> shift) & 0xffff]++;
            }
            size_t sum = 0;
            for (size_t d = 0; d < (1 << 16); d++) {
                size_t c = cnt[d];
                cnt[d] = sum;
                sum += c;
            }
            for (size_t i = 0; i < n; i++) {
                uint64_t k[3];
                triple_key3(&src[i], order, k);
                dst[cnt[(k[w] >> shift) & 0xffff]++] = src[i];
            }
            graph_triple_t *t = src;
            src = dst;
            dst = t;
        }
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

static int run_add(run_set_t *rs, FILE *f) {
    if (rs->n == rs->cap) {
        size_t nc = rs->cap ? rs->cap * 2 : 8;
        FILE **nf = realloc(rs->f, nc * sizeof *nf);
        if (!nf) return LLMOS_ENOMEM;
        rs->f = nf;
        rs->cap = nc;
    }
    rs->f[rs->n++] = f;
    return 0;
}

static FILE *tmp_open(loader_t *l) {
    char path[4096];
    snprintf(path, sizeof path, "%s/.graph-run-XXXXXX", l->tmp_dir);
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    unlink(path); /* gone from the directory: a killed load leaves nothing */
    FILE *f = fdopen(fd, "w+");
    if (!f) close(fd);
    return f;
}

/* Sorts the buffer three ways and writes each as a run of 24-byte keys. */
static int spill(loader_t *l, graph_triple_t *scratch) {
    for (int ord = 0; ord < GRAPH_NORDERS; ord++) {
        sort_triples(l->buf, l->buf_n, ord, scratch, l->radix_cnt);
        FILE *f = tmp_open(l);
        if (!f)
            return llmos_error_set(l->err, llmos_err_from_errno(errno), "sort run in %s: %s", l->tmp_dir,
                                   strerror(errno));
        if (run_add(&l->runs[ord], f)) {
            fclose(f);
            return llmos_error_set(l->err, LLMOS_ENOMEM, "sort runs");
        }
        unsigned char key[24], prev[24];
        int have = 0;
        for (size_t i = 0; i < l->buf_n; i++) {
            const graph_triple_t *t = &l->buf[i];
            graph_key_make(ord, t->s, t->p, t->o, key);
            if (have && memcmp(key, prev, 24) == 0) continue;
            if (fwrite(key, 24, 1, f) != 1)
                return llmos_error_set(l->err, LLMOS_EIO, "writing a sort run in %s: %s", l->tmp_dir,
                                       strerror(errno));
            memcpy(prev, key, 24);
            have = 1;
        }
        if (fflush(f) || fseek(f, 0, SEEK_SET))
            return llmos_error_set(l->err, LLMOS_EIO, "writing a sort run in %s: %s", l->tmp_dir,
                                   strerror(errno));
    }
    l->rep.runs++;
    l->buf_n = 0;
    return 0;
}

static int add_triple(loader_t *l, graph_id_t s, graph_id_t p, graph_id_t o) {
    if (l->buf_n == l->buf_cap && l->buf_cap < l->buf_max) {
        /* Grow toward the budget share: small loads stay small. */
        size_t nc = l->buf_cap * 2 < l->buf_max ? l->buf_cap * 2 : l->buf_max;
        graph_triple_t *nb = realloc(l->buf, 2 * nc * sizeof *nb);
        if (!nb) return llmos_error_set(l->err, LLMOS_ENOMEM, "triple buffer of %zu", nc);
        l->buf = nb;
        l->buf_cap = nc;
    }
    if (l->buf_n == l->buf_cap) {
        /* The second half of the budget share is the radix scratch. */
        int rc = spill(l, l->buf + l->buf_cap);
        if (rc) return rc;
    }
    l->buf[l->buf_n].s = s;
    l->buf[l->buf_n].p = p;
    l->buf[l->buf_n].o = o;
    l->buf_n++;
    l->rep.read++;
    if ((l->rep.read & (RELEASE_EVERY - 1)) == 0) graph_store_release_pages(l->w->r.s);
    return 0;
}

/* --------------------------------------------------- writing orders --- */

typedef struct key_src {
    /* in memory */
    const graph_triple_t *mem;
    size_t mem_n, mem_i;
    /* or merged runs */
    FILE **f;
    size_t nf;
    unsigned char **rbuf;
    size_t *rlen, *rpos;
    int *heap; /* indices of runs, min-heap by current key */
    size_t nheap;
    int order;
} key_src_t;

static const unsigned char *run_cur(key_src_t *ks, int r) { return ks->rbuf[r] + ks->rpos[r]; }

static int run_fill(key_src_t *ks, int r) {
    ks->rlen[r] = fread(ks->rbuf[r], 1, RUN_READ_BUF, ks->f[r]);
    ks->rpos[r] = 0;
    if (ks->rlen[r] % 24) return LLMOS_EIO;
    return 0;
}

static void heap_down(key_src_t *ks, size_t i) {
    for (;;) {
        size_t m = i, a = 2 * i + 1, b = a + 1;
        if (a < ks->nheap && memcmp(run_cur(ks, ks->heap[a]), run_cur(ks, ks->heap[m]), 24) < 0) m = a;
        if (b < ks->nheap && memcmp(run_cur(ks, ks->heap[b]), run_cur(ks, ks->heap[m]), 24) < 0) m = b;
        if (m == i) return;
        int t = ks->heap[i];
        ks->heap[i] = ks->heap[m];
        ks->heap[m] = t;
        i = m;
    }
}

/* Next key in order into key[24]: 1, 0 at the end, <0 on an I/O error. */
static int key_next(key_src_t *ks, unsigned char key[24]) {
    if (ks->mem) {
        if (ks->mem_i >= ks->mem_n) return 0;
        const graph_triple_t *t = &ks->mem[ks->mem_i++];
        graph_key_make(ks->order, t->s, t->p, t->o, key);
        return 1;
    }
    if (ks->nheap == 0) return 0;
    int r = ks->heap[0];
    memcpy(key, run_cur(ks, r), 24);
    ks->rpos[r] += 24;
    if (ks->rpos[r] >= ks->rlen[r]) {
        if (run_fill(ks, r)) return LLMOS_EIO;
        if (ks->rlen[r] == 0) ks->heap[0] = ks->heap[--ks->nheap];
    }
    heap_down(ks, 0);
    return 1;
}

static void key_src_free(key_src_t *ks) {
    if (ks->rbuf)
        for (size_t i = 0; i < ks->nf; i++) free(ks->rbuf[i]);
    free(ks->rbuf);
    free(ks->rlen);
    free(ks->rpos);
    free(ks->heap);
}

static int key_src_runs(key_src_t *ks, run_set_t *rs, int order) {
    memset(ks, 0, sizeof *ks);
    ks->order = order;
    ks->f = rs->f;
    ks->nf = rs->n;
    ks->rbuf = calloc(rs->n, sizeof *ks->rbuf);
    ks->rlen = calloc(rs->n, sizeof *ks->rlen);
    ks->rpos = calloc(rs->n, sizeof *ks->rpos);
    ks->heap = calloc(rs->n, sizeof *ks->heap);
    if (!ks->rbuf || !ks->rlen || !ks->rpos || !ks->heap) return LLMOS_ENOMEM;
    for (size_t i = 0; i < rs->n; i++) {
        if (!(ks->rbuf[i] = malloc(RUN_READ_BUF))) return LLMOS_ENOMEM;
        if (run_fill(ks, (int)i)) return LLMOS_EIO;
        if (ks->rlen[i]) ks->heap[ks->nheap++] = (int)i;
    }
    for (size_t i = ks->nheap; i-- > 0;) heap_down(ks, i);
    return 0;
}

static int write_order(loader_t *l, int order, key_src_t *ks, uint64_t total) {
    graph_store_t *s = l->w->r.s;
    MDB_cursor *c;
    int rc = mdb_cursor_open(l->w->r.txn, s->order[order], &c);
    if (rc) return graph_mdb_error(l->err, rc, "index cursor");
    MDB_val k, d;
    unsigned char last[24];
    int append = 0;
    rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        append = 1;
    } else if (rc) {
        mdb_cursor_close(c);
        return graph_mdb_error(l->err, rc, "index cursor");
    } else {
        memcpy(last, k.mv_data, 24);
    }
    static const char *names[] = {"SPO", "POS", "OSP"};
    char label[64];
    snprintf(label, sizeof label, "index %s", names[order]);
    llmos_progress_t pr;
    if (!l->opt->quiet) llmos_progress_init(&pr, label, "keys", total);
    unsigned char key[24], prev[24];
    int have = 0;
    uint64_t n = 0;
    static const unsigned char empty[1] = {0};
    for (;;) {
        int got = key_next(ks, key);
        if (got < 0) {
            rc = -1;
            llmos_error_set(l->err, LLMOS_EIO, "reading a sort run back");
            break;
        }
        if (got == 0) break;
        if (have && memcmp(key, prev, 24) == 0) continue;
        memcpy(prev, key, 24);
        have = 1;
        if (!append && memcmp(key, last, 24) > 0) append = 1;
        k.mv_size = 24;
        k.mv_data = key;
        d.mv_size = 0;
        d.mv_data = (void *)empty;
        rc = mdb_cursor_put(c, &k, &d, append ? MDB_APPEND : MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            rc = 0;
            continue;
        }
        if (rc) {
            graph_mdb_error(l->err, rc, "writing the index");
            break;
        }
        if (order == GRAPH_SPO) {
            graph_triple_t t;
            graph_key_split(order, key, &t);
            if (graph_pdelta_add(&l->w->pd, t.p, 1)) {
                rc = -1;
                llmos_error_set(l->err, LLMOS_ENOMEM, "predicate counts");
                break;
            }
            l->w->dtriples++;
            l->rep.added++;
        }
        if ((++n & 0xffff) == 0) {
            if (!l->opt->quiet) llmos_progress_update(&pr, n, 0);
            if ((n & (RELEASE_EVERY - 1)) == 0) graph_store_release_pages(s);
        }
    }
    mdb_cursor_close(c);
    if (!l->opt->quiet) {
        llmos_progress_update(&pr, n, 0);
        if (l->prog.tty || l->prog.force) fputs("\r\033[K", stderr);
    }
    return rc ? (l->err ? l->err->code : LLMOS_EIO) : 0;
}

static int write_all(loader_t *l) {
    if (l->rep.runs > 0 && l->buf_n > 0) {
        int rc = spill(l, l->buf + l->buf_cap);
        if (rc) return rc;
    }
    for (int ord = 0; ord < GRAPH_NORDERS; ord++) {
        key_src_t ks;
        int rc;
        if (l->rep.runs == 0) {
            memset(&ks, 0, sizeof ks);
            sort_triples(l->buf, l->buf_n, ord, l->buf + l->buf_cap, l->radix_cnt);
            ks.mem = l->buf;
            ks.mem_n = l->buf_n;
            ks.order = ord;
            rc = 0;
        } else {
            rc = key_src_runs(&ks, &l->runs[ord], ord);
            if (rc) llmos_error_set(l->err, rc, "opening sort runs");
        }
        if (!rc) rc = write_order(l, ord, &ks, l->rep.read);
        key_src_free(&ks);
        if (rc) return rc;
    }
    return 0;
}

/* ------------------------------------------------------------- serd --- */

static int iri_absolute(const unsigned char *s, size_t n) {
    if (n == 0 || !((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')) return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = s[i];
        if (c == ':') return 1;
        if (!(((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 0;
}

static SerdStatus on_error(void *h, const SerdError *e) {
    loader_t *l = h;
    if (l->line_bad) return SERD_SUCCESS; /* the first error of a line says it */
    l->line_bad = 1;
    l->bad_col = e->col;
    va_list ap;
    va_copy(ap, *e->args);
    vsnprintf(l->bad_msg, sizeof l->bad_msg, e->fmt, ap);
    va_end(ap);
    size_t n = strlen(l->bad_msg);
    while (n && (l->bad_msg[n - 1] == '\n' || l->bad_msg[n - 1] == ' ')) l->bad_msg[--n] = 0;
    if (l->syntax == GRAPH_FORMAT_TTL) l->line = e->line;
    return SERD_SUCCESS;
}

static SerdStatus on_base(void *h, const SerdNode *uri) {
    loader_t *l = h;
    return l->env ? serd_env_set_base_uri(l->env, uri) : SERD_SUCCESS;
}

static SerdStatus on_prefix(void *h, const SerdNode *name, const SerdNode *uri) {
    loader_t *l = h;
    return l->env ? serd_env_set_prefix(l->env, name, uri) : SERD_SUCCESS;
}

/* serd node → term view; Turtle nodes are expanded through the env
 * (*tofree gets the expanded node to free). */
static int node_term(loader_t *l, const SerdNode *n, graph_term_t *t, SerdNode *tofree, const char *pos) {
    memset(t, 0, sizeof *t);
    *tofree = SERD_NODE_NULL;
    const SerdNode *use = n;
    if (n->type == SERD_URI || n->type == SERD_CURIE) {
        if (l->env && (n->type == SERD_CURIE || !iri_absolute(n->buf, n->n_bytes))) {
            *tofree = serd_env_expand_node(l->env, n);
            if (!tofree->buf) {
                snprintf(l->bad_msg, sizeof l->bad_msg, "%s: cannot expand '%s' (unknown prefix or no base)", pos,
                         (const char *)n->buf);
                return -1;
            }
            use = tofree;
        }
        if (!iri_absolute(use->buf, use->n_bytes)) {
            snprintf(l->bad_msg, sizeof l->bad_msg, "%s: relative IRI <%.200s>", pos, (const char *)use->buf);
            return -1;
        }
        t->kind = GRAPH_TERM_IRI;
    } else if (n->type == SERD_BLANK) {
        t->kind = GRAPH_TERM_BLANK;
    } else if (n->type == SERD_LITERAL) {
        t->kind = GRAPH_TERM_LITERAL;
    } else {
        snprintf(l->bad_msg, sizeof l->bad_msg, "%s: unsupported node type", pos);
        return -1;
    }
    t->value = (const char *)use->buf;
    t->len = use->n_bytes;
    if (llmos_utf8_check(use->buf, use->n_bytes) != use->n_bytes) {
        snprintf(l->bad_msg, sizeof l->bad_msg, "%s: not valid UTF-8", pos);
        return -1;
    }
    return 0;
}

static int flush_stage(loader_t *l);
static int stage_push(loader_t *l, const staged_t *st);

static SerdStatus on_statement(void *h, SerdStatementFlags flags, const SerdNode *graph,
                               const SerdNode *subject, const SerdNode *predicate, const SerdNode *object,
                               const SerdNode *datatype, const SerdNode *lang) {
    loader_t *l = h;
    if (l->fatal || l->line_bad) return SERD_SUCCESS;
    graph_term_t t[3];
    SerdNode fr[4] = {SERD_NODE_NULL, SERD_NODE_NULL, SERD_NODE_NULL, SERD_NODE_NULL};
    static const char *pos[3] = {"subject", "predicate", "object"};
    const SerdNode *nodes[3] = {subject, predicate, object};
    int bad = 0;
    for (int i = 0; i < 3 && !bad; i++) bad = node_term(l, nodes[i], &t[i], &fr[i], pos[i]);
    if (!bad && object->type == SERD_LITERAL) {
        if (lang && lang->buf) {
            t[2].lang = (const char *)lang->buf;
            t[2].lang_len = lang->n_bytes;
        } else if (datatype && datatype->buf) {
            graph_term_t dt;
            bad = node_term(l, datatype, &dt, &fr[3], "datatype");
            if (!bad) {
                t[2].datatype = dt.value;
                t[2].datatype_len = dt.len;
            }
        }
    }
    staged_t st;
    llmos_error_t e;
    for (int i = 0; i < 3 && !bad; i++) {
        if (arena_encode(l, &t[i], &st.off[i], &st.len[i], &e)) {
            snprintf(l->bad_msg, sizeof l->bad_msg, "%s: %.200s", pos[i], e.msg);
            bad = 1;
        }
    }
    for (int i = 0; i < 4; i++) serd_node_free(&fr[i]);
    if (bad) {
        l->line_bad = 1;
        l->bad_col = 0;
        return SERD_SUCCESS;
    }
    int rc = stage_push(l, &st);
    /* Turtle keeps what precedes an error, so it can intern as it goes. */
    if (!rc && l->syntax == GRAPH_FORMAT_TTL && l->nstage >= STAGE_BATCH) rc = flush_stage(l);
    if (rc) {
        l->fatal = rc;
        return SERD_ERR_UNKNOWN;
    }
    return SERD_SUCCESS;
}

/* Interns and buffers the staged statements, then clears the stage.  Two
 * passes: hash every term and prefetch its cache set, then intern — the
 * cache misses of a batch overlap instead of queueing. */
static int flush_stage(loader_t *l) {
    size_t nt = l->nstage * 3;
    if (2 * nt > l->hs_cap) {
        size_t nc = 2 * nt + 64;
        uint64_t *nh = realloc(l->hs, nc * sizeof *nh);
        if (!nh) return llmos_error_set(l->err, LLMOS_ENOMEM, "staging hashes");
        l->hs = nh;
        l->hs_cap = nc;
    }
    for (size_t i = 0; i < l->nstage; i++)
        for (int j = 0; j < 3; j++) {
            const unsigned char *enc = l->arena + l->stage[i].off[j];
            size_t n = l->stage[i].len[j];
            uint64_t h1 = graph_hash64(enc, n), h2 = llmos_hash_fnv1a(enc, n);
            l->hs[2 * (3 * i + (size_t)j)] = h1;
            l->hs[2 * (3 * i + (size_t)j) + 1] = h2;
            __builtin_prefetch(&l->tc[tc_slot(l, h1)]);
        }
    for (size_t i = 0; i < l->nstage; i++) {
        graph_id_t id[3];
        for (int j = 0; j < 3; j++) {
            size_t k = 2 * (3 * i + (size_t)j);
            int rc = intern_hashed(l, l->arena + l->stage[i].off[j], l->stage[i].len[j], l->hs[k], l->hs[k + 1],
                                   &id[j]);
            if (rc) return rc;
        }
        int rc = add_triple(l, id[0], id[1], id[2]);
        if (rc) return rc;
    }
    l->nstage = 0;
    l->an = 0;
    return 0;
}

/* Appends one statement (encoded terms already in the arena) to the stage. */
static int stage_push(loader_t *l, const staged_t *st) {
    if (l->nstage == l->stage_cap) {
        size_t nc = l->stage_cap ? l->stage_cap * 2 : 16;
        staged_t *ns = realloc(l->stage, nc * sizeof *ns);
        if (!ns) return llmos_error_set(l->err, LLMOS_ENOMEM, "staging statements");
        l->stage = ns;
        l->stage_cap = nc;
    }
    l->stage[l->nstage++] = *st;
    return 0;
}

static void progress_tick(loader_t *l) {
    if (l->opt->quiet || (l->rep.lines & 0x3fff)) return;
    if (l->bytes_done && l->bytes_total)
        l->prog.total = (uint64_t)((double)l->rep.read * (double)l->bytes_total / (double)l->bytes_done);
    llmos_progress_update(&l->prog, l->rep.read, l->rep.errors);
}

static int load_nt(loader_t *l, FILE *f) {
    SerdReader *rd = serd_reader_new(SERD_NTRIPLES, l, NULL, on_base, on_prefix, on_statement, NULL);
    if (!rd) return llmos_error_set(l->err, LLMOS_ENOMEM, "serd reader");
    serd_reader_set_strict(rd, true);
    serd_reader_set_error_sink(rd, on_error, l);
    l->syntax = GRAPH_FORMAT_NT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!l->fatal && (n = getline(&line, &cap, f)) >= 0) {
        l->line++;
        l->rep.lines++;
        l->bytes_done += (uint64_t)n;
        size_t i = 0;
        while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == (size_t)n || line[i] == '\n' || line[i] == '\r' || line[i] == '#') continue;
        if (memchr(line, 0, (size_t)n)) {
            report_bad(l, 0, "NUL byte in line");
            continue;
        }
        l->line_bad = 0;
        if (llmos_utf8_check(line, (size_t)n) != (size_t)n) {
            report_bad(l, 0, "not valid UTF-8");
            continue;
        }
        if (line[n - 1] != '\n' && feof(f)) {
            /* The last line of a truncated file: serd would accept a cut
             * term silently in some places; N-Triples needs the final '.'. */
            size_t e = (size_t)n;
            while (e && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r')) e--;
            if (!e || line[e - 1] != '.') {
                report_bad(l, (unsigned)e + 1, "truncated statement at end of file (no final '.')");
                continue;
            }
        }
        /* The stage holds earlier good lines: a bad one is cut back off. */
        size_t mark_n = l->nstage, mark_an = l->an;
        SerdStatus st = serd_reader_read_string(rd, (const uint8_t *)line);
        if (l->fatal) break;
        if (st > SERD_FAILURE && !l->line_bad) {
            l->line_bad = 1;
            snprintf(l->bad_msg, sizeof l->bad_msg, "%s", serd_strerror(st));
        }
        if (!l->line_bad && l->nstage == mark_n) {
            l->line_bad = 1;
            l->bad_col = 0;
            snprintf(l->bad_msg, sizeof l->bad_msg, "no statement on the line");
        }
        if (l->line_bad) {
            l->nstage = mark_n;
            l->an = mark_an;
            report_bad(l, l->bad_col, "%s", l->bad_msg);
            continue;
        }
        if (l->nstage >= STAGE_BATCH && (rc = flush_stage(l))) break;
        progress_tick(l);
    }
    if (!rc && !l->fatal) rc = flush_stage(l);
    if (!rc && !l->fatal && ferror(f))
        rc = llmos_error_set(l->err, LLMOS_EIO, "%s: read error: %s", l->file, strerror(errno));
    free(line);
    serd_reader_free(rd);
    return rc ? rc : l->fatal;
}

static int load_ttl(loader_t *l, FILE *f) {
    SerdNode base = serd_node_from_string(SERD_URI, (const uint8_t *)l->base);
    l->env = serd_env_new(&base);
    SerdReader *rd = serd_reader_new(SERD_TURTLE, l, NULL, on_base, on_prefix, on_statement, NULL);
    if (!rd || !l->env) {
        if (rd) serd_reader_free(rd);
        serd_env_free(l->env);
        l->env = NULL;
        return llmos_error_set(l->err, LLMOS_ENOMEM, "serd reader");
    }
    serd_reader_set_strict(rd, true);
    serd_reader_set_error_sink(rd, on_error, l);
    l->syntax = GRAPH_FORMAT_TTL;
    l->line_bad = 0;
    l->nstage = 0;
    l->an = 0;
    SerdStatus st = serd_reader_read_file_handle(rd, f, (const uint8_t *)l->file);
    int rc = l->fatal;
    if (!rc && st > SERD_FAILURE && !l->line_bad) {
        l->line_bad = 1;
        snprintf(l->bad_msg, sizeof l->bad_msg, "%s", serd_strerror(st));
    }
    if (!rc && l->line_bad) {
        report_bad(l, l->bad_col, "%s (rest of the Turtle file skipped)", l->bad_msg);
        rc = l->fatal;
    }
    /* Statements before a Turtle error are kept (without --strict). */
    if (!rc) rc = flush_stage(l);
    serd_reader_free(rd);
    serd_env_free(l->env);
    l->env = NULL;
    return rc;
}

/* -------------------------------------------------------------- TSV --- */

static int load_tsv(loader_t *l, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    l->used_tsv = 1;
    l->syntax = GRAPH_FORMAT_TSV;
    size_t bl = strlen(l->base);
    char *iri = NULL;
    size_t iricap = 0;
    while (!l->fatal && (n = getline(&line, &cap, f)) >= 0) {
        l->line++;
        l->rep.lines++;
        l->bytes_done += (uint64_t)n;
        size_t e = (size_t)n;
        int had_nl = e && line[e - 1] == '\n';
        while (e && (line[e - 1] == '\n' || line[e - 1] == '\r')) e--;
        if (e == 0) continue;
        if (memchr(line, 0, e)) {
            report_bad(l, 0, "NUL byte in line");
            continue;
        }
        if (llmos_utf8_check(line, e) != e) {
            report_bad(l, 0, "not valid UTF-8");
            continue;
        }
        const char *fld[3];
        size_t fl[3];
        int nf = 0;
        size_t st = 0;
        for (size_t i = 0; i <= e; i++) {
            if (i == e || line[i] == '\t') {
                if (nf < 3) {
                    fld[nf] = line + st;
                    fl[nf] = i - st;
                }
                nf++;
                st = i + 1;
            }
        }
        if (nf != 3) {
            report_bad(l, 0, "expected 3 tab-separated fields (head, relation, tail), found %d%s", nf,
                       !had_nl && feof(f) ? " (truncated last line?)" : "");
            continue;
        }
        int empty = -1;
        for (int i = 0; i < 3; i++)
            if (fl[i] == 0) empty = i;
        if (empty >= 0) {
            static const char *nm[3] = {"head", "relation", "tail"};
            report_bad(l, 0, "empty %s field", nm[empty]);
            continue;
        }
        staged_t sg;
        for (int i = 0; i < 3 && !rc; i++) {
            size_t need = bl + 3 * fl[i] + 1;
            if (need > iricap) {
                char *ni = realloc(iri, need);
                if (!ni) {
                    rc = llmos_error_set(l->err, LLMOS_ENOMEM, "TSV name");
                    break;
                }
                iri = ni;
                iricap = need;
            }
            rc = graph_name_to_iri(l->base, fld[i], fl[i], iri, iricap, NULL, l->err);
            graph_term_t t = graph_term_iri(iri);
            if (!rc) rc = arena_encode(l, &t, &sg.off[i], &sg.len[i], l->err);
        }
        if (!rc) rc = stage_push(l, &sg);
        if (!rc && l->nstage >= STAGE_BATCH) rc = flush_stage(l);
        if (rc) break;
        progress_tick(l);
    }
    if (!rc && !l->fatal) rc = flush_stage(l);
    if (!rc && !l->fatal && ferror(f))
        rc = llmos_error_set(l->err, LLMOS_EIO, "%s: read error: %s", l->file, strerror(errno));
    free(line);
    free(iri);
    return rc ? rc : l->fatal;
}

/* -------------------------------------------------------------- API --- */

int graph_format_parse(const char *name, graph_format *out, llmos_error_t *err) {
    if (!strcmp(name, "nt") || !strcmp(name, "ntriples") || !strcmp(name, "n-triples"))
        *out = GRAPH_FORMAT_NT;
    else if (!strcmp(name, "ttl") || !strcmp(name, "turtle"))
        *out = GRAPH_FORMAT_TTL;
    else if (!strcmp(name, "tsv"))
        *out = GRAPH_FORMAT_TSV;
    else
        return llmos_error_set(err, LLMOS_EINVAL, "unknown format '%s' (nt, ttl or tsv)", name);
    return 0;
}

static graph_format guess_format(const char *file) {
    const char *dot = strrchr(file, '.');
    if (dot && (!strcmp(dot, ".ttl") || !strcmp(dot, ".turtle"))) return GRAPH_FORMAT_TTL;
    if (dot && (!strcmp(dot, ".tsv") || !strcmp(dot, ".txt"))) return GRAPH_FORMAT_TSV;
    return GRAPH_FORMAT_NT;
}

static void loader_free(loader_t *l) {
    for (int o = 0; o < GRAPH_NORDERS; o++) {
        for (size_t i = 0; i < l->runs[o].n; i++) fclose(l->runs[o].f[i]);
        free(l->runs[o].f);
    }
    free(l->tc);
    free(l->hs);
    free(l->buf);
    free(l->radix_cnt);
    free(l->arena);
    free(l->stage);
}

int graph_load_streams(graph_store_t *s, const graph_load_source_t *src, int nfiles,
                       const graph_load_options_t *opt, graph_load_report_t *report, llmos_error_t *err) {
    graph_load_options_t def = {0};
    if (!opt) opt = &def;
    loader_t L;
    memset(&L, 0, sizeof L);
    loader_t *l = &L;
    l->opt = opt;
    l->err = err;
    l->diag = opt->diag ? opt->diag : stderr;
    l->max_diag = opt->max_diag ? opt->max_diag : 20;
    l->base = opt->base ? opt->base : GRAPH_DEFAULT_BASE;
    l->tmp_dir = opt->tmp_dir ? opt->tmp_dir : graph_store_path(s);
    uint64_t t0 = llmos_now_ns();
    if (report) memset(report, 0, sizeof *report);

    for (int i = 0; i < nfiles; i++) l->bytes_total += src[i].size;

    uint64_t budget = opt->mem_budget ? opt->mem_budget : (1ULL << 30);
    if (budget < MIN_BUDGET) budget = MIN_BUDGET;
    /* A third of the budget: triple buffer + the same again as radix
     * scratch; an eighth: term cache (old + new table while it doubles);
     * the rest: LMDB's own lists, the parser, stage and merge buffers, and
     * the allocator's slack (measured: bench/graph load_mem). */
    l->buf_cap = (size_t)(budget / 6 / sizeof(graph_triple_t));
    size_t tcap = 1024;
    while (tcap * 2 * sizeof(tcache_entry_t) <= budget / 8) tcap *= 2;
    l->tc_max = tcap;
    l->tc_cap = tcap < (1u << 16) ? tcap : (1u << 16);
    l->tc = tc_alloc(l->tc_cap);
    /* The buffer grows on demand up to buf_cap (small loads stay small). */
    size_t want = 1 << 16;
    if (want > l->buf_cap) want = l->buf_cap;
    int rc = 0;
    if (!l->tc) rc = llmos_error_set(err, LLMOS_ENOMEM, "term cache of %zu entries", l->tc_cap);
    if (!rc) rc = graph_writer_begin(s, &l->w, err);
    if (!rc) {
        MDB_stat ms;
        l->tc_complete = mdb_stat(l->w->r.txn, s->term2id, &ms) == 0 && ms.ms_entries == 0;
    }
    if (rc) {
        loader_free(l);
        return rc;
    }
    l->buf_max = l->buf_cap;
    l->buf_cap = want;
    l->buf = malloc(2 * l->buf_cap * sizeof *l->buf);
    l->radix_cnt = malloc((1 << 16) * sizeof *l->radix_cnt);
    if (!l->buf || !l->radix_cnt) rc = llmos_error_set(err, LLMOS_ENOMEM, "triple buffer");

    char label[96];
    snprintf(label, sizeof label, "load %s%s", nfiles ? src[0].name : "", nfiles > 1 ? " ..." : "");
    if (!opt->quiet) llmos_progress_init(&l->prog, label, "triples", 0);

    for (int i = 0; i < nfiles && !rc; i++) {
        graph_format fmt = src[i].format ? src[i].format : opt->format ? opt->format : guess_format(src[i].name);
        l->file = src[i].name;
        l->line = 0;
        if (fmt == GRAPH_FORMAT_TSV)
            rc = load_tsv(l, src[i].f);
        else if (fmt == GRAPH_FORMAT_TTL)
            rc = load_ttl(l, src[i].f);
        else
            rc = load_nt(l, src[i].f);
    }
    if (!rc && l->fatal) rc = l->fatal;
    if (!opt->quiet && (l->prog.tty || l->prog.force)) fputs("\r\033[K", stderr);
    if (!rc && l->shown > l->max_diag)
        fprintf(l->diag, "... and %u more malformed lines\n", l->shown - l->max_diag);
    if (!rc) rc = write_all(l);
    if (!rc && l->used_tsv) rc = graph_writer_set_base(l->w, l->base, err);
    if (!rc) {
        rc = graph_writer_commit(&l->w, err);
    } else {
        graph_writer_abort(&l->w);
    }
    l->rep.seconds = (double)(llmos_now_ns() - t0) / 1e9;
    if (!opt->quiet && !rc) {
        char extra[160];
        snprintf(extra, sizeof extra, "%llu new triples, %llu new terms, %llu sort runs",
                 (unsigned long long)l->rep.added, (unsigned long long)l->rep.terms_added,
                 (unsigned long long)l->rep.runs);
        l->prog.done = l->rep.read;
        l->prog.errors = l->rep.errors;
        llmos_progress_finish(&l->prog, extra);
    }
    if (report) *report = l->rep;
    loader_free(l);
    return rc;
}

int graph_load_files(graph_store_t *s, const char *const *files, int nfiles,
                     const graph_load_options_t *opt, graph_load_report_t *report, llmos_error_t *err) {
    if (nfiles < 0) return llmos_error_set(err, LLMOS_EINVAL, "%d files", nfiles);
    graph_load_source_t *src = calloc((size_t)nfiles + 1, sizeof *src);
    char *bufs = malloc(((size_t)nfiles + 1) << 16);
    int rc = 0, opened = 0;
    if (!src || !bufs) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory to open %d files", nfiles);
    /* Every file must be readable before anything is parsed. */
    for (int i = 0; i < nfiles && !rc; i++) {
        struct stat st;
        if (stat(files[i], &st) != 0) {
            rc = llmos_error_set(err, llmos_err_from_errno(errno), "%s: %s", files[i], strerror(errno));
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "%s: is a directory", files[i]);
            break;
        }
        if (!(src[i].f = fopen(files[i], "rb"))) {
            rc = llmos_error_set(err, llmos_err_from_errno(errno), "%s: %s", files[i], strerror(errno));
            break;
        }
        opened++;
        setvbuf(src[i].f, bufs + ((size_t)i << 16), _IOFBF, 1 << 16);
        src[i].name = files[i];
        src[i].size = (uint64_t)st.st_size;
    }
    if (!rc) rc = graph_load_streams(s, src, nfiles, opt, report, err);
    for (int i = 0; i < opened; i++) fclose(src[i].f);
    free(src);
    free(bufs);
    return rc;
}
