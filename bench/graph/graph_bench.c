/*
 * graph_bench.c — the graph store's figures, each against baselines
 * measured here in the same run:
 *   sord      Debian's in-memory RDF store in C (libsord) with its default
 *             indices (SPO, OPS: enough for every pattern used here), loading
 *             the same N-Triples file with serd and answering the same
 *             look-ups, joins and walks;
 *   raw LMDB  sorted MDB_APPEND of three 24-byte keys per triple (the same
 *             id triples our store holds) and mdb_get of 24-byte keys: what
 *             LMDB alone can do, our physical limit.
 * Figures (JSON lines via bench_emit), for a synthetic N-Triples file and
 * for WN18RR (converted to N-Triples under the TSV base IRI):
 *   load_tps        bulk load triples/s into a new durable store
 *   sp_lookup       (s, p, ?) look-ups/s with each object decoded to a string
 *   bgp3            3-pattern BGP queries/s through the SPARQL engine
 *                   (sparql_query_parse + sparql_query_execute)
 *   hop2            2-hop neighbourhoods/s (both directions)
 *   load_mem        peak private memory of a 10 M-triple load with a 256 MiB
 *                   budget (this binary re-executed as a fresh child process,
 *                   sampled from /proc)
 * Look-ups, joins and walks take the best of 3 rounds that alternate ours
 * and sord's (the machine is shared; the first round also warms pages).
 * Row counts of ours and sord's answers are compared and a mismatch is
 * printed in the note.  Options scale it down: --triples N, --mem-triples N,
 * --lookups N, --queries N, --tmp DIR, --skip-mem.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <sord/sord.h>

#include "bench/common/bench.h"
#include "graph/load.h"
#include "graph/sparql.h"
#include "graph/store.h"
#include "graph/walk.h"
#include "runtime/base/clock.h"
#include "runtime/base/parse.h"
#include "runtime/base/tmpdir.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define ROUNDS 3 /* look-ups, joins and walks: best of 3 alternating rounds */

static double secs(uint64_t t0) { return (double)(llmos_now_ns() - t0) / 1e9; }

static void die(const char *what, const llmos_error_t *e) {
    fprintf(stderr, "graph_bench: %s: %s\n", what, e ? e->msg : strerror(errno));
    exit(1);
}

/* --------------------------------------------------------- inputs --- */

/* N triples over ~N/5 entities, 50 predicates and ~N/10 literals: about
 * 0.3 N distinct terms. */
static void gen_synthetic_nt(const char *path, uint64_t n) {
    FILE *f = fopen(path, "w");
    if (!f) die(path, NULL);
    uint64_t ents = n / 5 ? n / 5 : 1, lits = n / 10 ? n / 10 : 1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t s = rnd() % ents, p = rnd() % 50;
        if (rnd() % 10 < 7)
            fprintf(f, "<http://bench.llmos/e/%llu> <http://bench.llmos/p/%llu> <http://bench.llmos/e/%llu> .\n",
                    (unsigned long long)s, (unsigned long long)p, (unsigned long long)(rnd() % ents));
        else
            fprintf(f, "<http://bench.llmos/e/%llu> <http://bench.llmos/p/%llu> \"value %llu\"@en .\n",
                    (unsigned long long)s, (unsigned long long)p, (unsigned long long)(rnd() % lits));
    }
    if (fclose(f)) die(path, NULL);
}

/* A TSV file of N triples over `ents` entities and 40 relations. */
static void gen_tsv(const char *path, uint64_t n, uint64_t ents) {
    FILE *f = fopen(path, "w");
    if (!f) die(path, NULL);
    for (uint64_t i = 0; i < n; i++)
        fprintf(f, "n%llu\tr%llu\tn%llu\n", (unsigned long long)(rnd() % ents), (unsigned long long)(rnd() % 40),
                (unsigned long long)(rnd() % ents));
    if (fclose(f)) die(path, NULL);
}

/* WN18RR's TSV as N-Triples with the loader's IRIs; returns the line count. */
static uint64_t tsv_to_nt(const char *in, const char *out) {
    FILE *f = fopen(in, "r"), *g = fopen(out, "w");
    if (!f || !g) die(in, NULL);
    char line[4096], iri[3][8192];
    uint64_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *fld[3], *save = NULL;
        fld[0] = strtok_r(line, "\t", &save);
        fld[1] = strtok_r(NULL, "\t", &save);
        fld[2] = strtok_r(NULL, "\t", &save);
        if (!fld[0] || !fld[1] || !fld[2]) continue;
        for (int i = 0; i < 3; i++)
            if (graph_name_to_iri(GRAPH_DEFAULT_BASE, fld[i], strlen(fld[i]), iri[i], sizeof iri[i], NULL, NULL))
                die("name too long", NULL);
        fprintf(g, "<%s> <%s> <%s> .\n", iri[0], iri[1], iri[2]);
        n++;
    }
    fclose(f);
    if (fclose(g)) die(out, NULL);
    return n;
}

/* --------------------------------------------------------- raw LMDB --- */

typedef struct key24 {
    unsigned char b[24];
} key24_t;

static int cmp_key(const void *a, const void *b) { return memcmp(a, b, 24); }

static void put_be(unsigned char *b, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (unsigned char)v;
}

static void make_key(int order, const graph_triple_t *t, unsigned char *k) {
    uint64_t a = t->s, b = t->p, c = t->o;
    if (order == 1) a = t->p, b = t->o, c = t->s;
    if (order == 2) a = t->o, b = t->s, c = t->p;
    put_be(k, a);
    put_be(k + 8, b);
    put_be(k + 16, c);
}

typedef struct raw {
    MDB_env *env;
    MDB_dbi dbi[3];
    double load_tps;   /* triples/s of sorted appends (3 keys each) + commit */
    double get_ps;     /* mdb_get/s of present 24-byte keys */
} raw_t;

static void raw_bench(const char *dir, const graph_triple_t *t, size_t n, size_t gets, raw_t *out) {
    mkdir(dir, 0775);
    key24_t *keys[3];
    for (int o = 0; o < 3; o++) {
        keys[o] = malloc(n * sizeof(key24_t));
        if (!keys[o]) die("raw keys", NULL);
        for (size_t i = 0; i < n; i++) make_key(o, &t[i], keys[o][i].b);
        qsort(keys[o], n, sizeof(key24_t), cmp_key);
    }
    MDB_txn *txn;
    if (mdb_env_create(&out->env) || mdb_env_set_maxdbs(out->env, 3) ||
        mdb_env_set_mapsize(out->env, 16ULL << 30) || mdb_env_open(out->env, dir, MDB_WRITEMAP, 0664))
        die("raw env", NULL);
    uint64_t t0 = llmos_now_ns();
    if (mdb_txn_begin(out->env, NULL, 0, &txn)) die("raw txn", NULL);
    static const char *names[3] = {"spo", "pos", "osp"};
    for (int o = 0; o < 3; o++) {
        MDB_cursor *c;
        if (mdb_dbi_open(txn, names[o], MDB_CREATE, &out->dbi[o]) || mdb_cursor_open(txn, out->dbi[o], &c))
            die("raw dbi", NULL);
        for (size_t i = 0; i < n; i++) {
            if (i && !memcmp(keys[o][i].b, keys[o][i - 1].b, 24)) continue;
            MDB_val k = {24, keys[o][i].b}, d = {0, ""};
            int rc = mdb_cursor_put(c, &k, &d, MDB_APPEND);
            if (rc) die(mdb_strerror(rc), NULL);
        }
        mdb_cursor_close(c);
    }
    if (mdb_txn_commit(txn)) die("raw commit", NULL);
    out->load_tps = (double)n / secs(t0);
    /* Gets of present keys, in random order. */
    if (mdb_txn_begin(out->env, NULL, MDB_RDONLY, &txn)) die("raw read", NULL);
    size_t found = 0;
    t0 = llmos_now_ns();
    for (size_t i = 0; i < gets; i++) {
        MDB_val k = {24, keys[0][rnd() % n].b}, d;
        found += mdb_get(txn, out->dbi[0], &k, &d) == 0;
    }
    out->get_ps = (double)gets / secs(t0);
    mdb_txn_abort(txn);
    if (found != gets) fprintf(stderr, "graph_bench: raw gets found %zu of %zu\n", found, gets);
    for (int o = 0; o < 3; o++) free(keys[o]);
}

/* ------------------------------------------------------------- sord --- */

static SordNode *sord_node_of(SordWorld *w, const graph_term_t *t) {
    if (t->kind == GRAPH_TERM_IRI) return sord_new_uri(w, (const uint8_t *)t->value);
    if (t->kind == GRAPH_TERM_BLANK) return sord_new_blank(w, (const uint8_t *)t->value);
    return NULL; /* look-ups start from subjects and predicates only */
}

/* Nodes reached within 2 hops of n in both directions, sord side: a BFS
 * with a small open-addressing set of node pointers. */
typedef struct pset {
    const SordNode **v;
    size_t cap, n;
} pset_t;

static int pset_add(pset_t *s, const SordNode *x) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        const SordNode **nv = calloc(nc, sizeof *nv);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->v[i]) continue;
            size_t j = ((uintptr_t)s->v[i] >> 4) * 0x9e3779b97f4a7c15ULL >> 20 & (nc - 1);
            while (nv[j]) j = (j + 1) & (nc - 1);
            nv[j] = s->v[i];
        }
        free(s->v);
        s->v = nv;
        s->cap = nc;
    }
    size_t j = ((uintptr_t)x >> 4) * 0x9e3779b97f4a7c15ULL >> 20 & (s->cap - 1);
    while (s->v[j]) {
        if (s->v[j] == x) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->v[j] = x;
    s->n++;
    return 1;
}

static uint64_t sord_hop2(SordModel *m, const SordNode *start, const SordNode **front, const SordNode **next,
                          size_t cap) {
    pset_t seen = {0};
    pset_add(&seen, start);
    size_t nf = 1, nn;
    front[0] = start;
    for (int d = 0; d < 2; d++) {
        nn = 0;
        for (size_t i = 0; i < nf; i++) {
            for (int side = 0; side < 2; side++) {
                SordIter *it = side == 0 ? sord_search(m, front[i], NULL, NULL, NULL)
                                         : sord_search(m, NULL, NULL, front[i], NULL);
                for (; it && !sord_iter_end(it); sord_iter_next(it)) {
                    const SordNode *v = sord_iter_get_node(it, side == 0 ? SORD_OBJECT : SORD_SUBJECT);
                    if (pset_add(&seen, v) && nn < cap) next[nn++] = v;
                }
                sord_iter_free(it);
            }
        }
        const SordNode **t = front;
        front = next;
        next = t;
        nf = nn;
    }
    uint64_t n = seen.n;
    free(seen.v);
    return n;
}

/* ------------------------------------------------------------- ours --- */

typedef struct count_sink {
    uint64_t rows;
} count_sink_t;

static int cs_head(void *ctx, const char *const *names, int n) { return 0; }
static int cs_row(void *ctx, graph_reader_t *r, const graph_id_t *ids, int n) {
    ((count_sink_t *)ctx)->rows++;
    return 0;
}
static int cs_bool(void *ctx, int v) { return 0; }
static int cs_finish(void *ctx) { return 0; }

static void emit(const char *metric, double v, const char *unit, const char *base, double bv, const char *lim,
                 double lv, const char *note) {
    bench_figure_t f = {"graph", metric, v, unit, base, bv, lim, lv, note};
    bench_emit(&f);
}

typedef struct opts {
    uint64_t triples, mem_triples, lookups, queries;
    const char *tmp;
    int skip_mem;
} opts_t;

static void bench_dataset(const char *name, const char *nt, uint64_t lines, const char *work, const opts_t *o) {
    char metric[64], note[256], dir[4200], rawdir[4200];
    llmos_error_t e;

    /* ---- sord load ---- */
    SordWorld *world = sord_world_new();
    SordModel *model = sord_new(world, SORD_SPO | SORD_OPS, false); /* sord's default; answers every pattern used here */
    SerdEnv *env = serd_env_new(NULL);
    SerdReader *rd = sord_new_reader(model, env, SERD_NTRIPLES, NULL);
    FILE *f = fopen(nt, "r");
    if (!f) die(nt, NULL);
    uint64_t t0 = llmos_now_ns();
    if (serd_reader_read_file_handle(rd, f, (const uint8_t *)nt) != SERD_SUCCESS) die("sord load", NULL);
    double sord_load = (double)lines / secs(t0);
    fclose(f);
    serd_reader_free(rd);
    serd_env_free(env);
    size_t sord_n = sord_num_quads(model);

    /* ---- our load: a new durable store ---- */
    snprintf(dir, sizeof dir, "%s/%s.graph", work, name);
    llmos_tmpdir_remove(dir, NULL);
    graph_store_t *s;
    graph_store_options_t so = {.create = 1, .write_map = 1};
    if (graph_store_open(dir, &so, &s, &e)) die("open", &e);
    graph_load_options_t lo = {.quiet = 1};
    graph_load_report_t rep;
    const char *files[1] = {nt};
    t0 = llmos_now_ns();
    if (graph_load_files(s, files, 1, &lo, &rep, &e)) die("load", &e);
    double our_load = (double)lines / secs(t0);

    /* The id triples, for the raw LMDB baseline and for sampling. */
    graph_reader_t *r;
    if (graph_reader_begin(s, &r, &e)) die("reader", &e);
    graph_stats_t st;
    graph_store_stats(r, &st, &e);
    graph_triple_t *tr = malloc(st.triples * sizeof *tr);
    size_t n = 0;
    graph_iter_t it;
    graph_triple_t t;
    graph_store_match(r, 0, 0, 0, &it, &e);
    while (n < st.triples && graph_iter_next(&it, &t, &e) == 1) tr[n++] = t;
    graph_iter_close(&it);
    raw_t raw = {0};
    snprintf(rawdir, sizeof rawdir, "%s/%s.raw", work, name);
    llmos_tmpdir_remove(rawdir, NULL);
    raw_bench(rawdir, tr, n, o->lookups, &raw);

    snprintf(metric, sizeof metric, "%s_load_tps", name);
    snprintf(note, sizeof note, "%llu lines, %llu distinct triples (sord %zu), %llu terms; sord indices SPO+OPS (its default); "
             "raw = 3 sorted 24-byte MDB_APPENDs/triple",
             (unsigned long long)lines, (unsigned long long)st.triples, sord_n, (unsigned long long)st.terms);
    emit(metric, our_load, "triples/s", "sord load (serd N-Triples)", sord_load, "raw LMDB sorted appends",
         raw.load_tps, note);

    /* ---- (s, p, ?) look-ups with objects decoded to strings ---- */
    size_t K = o->lookups;
    graph_id_t *qs = malloc(K * 2 * sizeof *qs);
    SordNode **sn = malloc(K * 2 * sizeof *sn);
    for (size_t i = 0; i < K; i++) {
        const graph_triple_t *x = &tr[rnd() % n];
        qs[2 * i] = x->s;
        qs[2 * i + 1] = x->p;
        graph_term_t ts, tp;
        graph_term_get(r, x->s, &ts, &e);
        graph_term_get(r, x->p, &tp, &e);
        sn[2 * i] = sord_node_of(world, &ts);
        sn[2 * i + 1] = sord_node_of(world, &tp);
    }
    /* Best of ROUNDS alternating rounds: this machine is shared and noisy,
     * and the first round also warms the map's pages. */
    uint64_t our_rows = 0, our_bytes = 0, sord_rows = 0, sord_bytes = 0;
    double our_lk = 0, sord_lk = 0;
    for (int round = 0; round < ROUNDS; round++) {
        our_rows = our_bytes = sord_rows = sord_bytes = 0;
        t0 = llmos_now_ns();
        for (size_t i = 0; i < K; i++) {
            graph_store_match(r, qs[2 * i], qs[2 * i + 1], 0, &it, &e);
            while (graph_iter_next(&it, &t, &e) == 1) {
                graph_term_t ot;
                graph_term_get(r, t.o, &ot, &e);
                our_bytes += ot.len;
                our_rows++;
            }
            graph_iter_close(&it);
        }
        double v = (double)K / secs(t0);
        if (v > our_lk) our_lk = v;
        t0 = llmos_now_ns();
        for (size_t i = 0; i < K; i++) {
            SordIter *si = sord_search(model, sn[2 * i], sn[2 * i + 1], NULL, NULL);
            for (; si && !sord_iter_end(si); sord_iter_next(si)) {
                size_t len;
                sord_node_get_string_counted(sord_iter_get_node(si, SORD_OBJECT), &len);
                sord_bytes += len;
                sord_rows++;
            }
            sord_iter_free(si);
        }
        v = (double)K / secs(t0);
        if (v > sord_lk) sord_lk = v;
    }
    snprintf(metric, sizeof metric, "%s_sp_lookup", name);
    snprintf(note, sizeof note, "%zu look-ups, %llu rows%s", K, (unsigned long long)our_rows,
             our_rows == sord_rows && our_bytes == sord_bytes ? ", same rows and bytes as sord" : ", MISMATCH with sord");
    emit(metric, our_lk, "lookups/s", "sord_search (s,p,?) + node string", sord_lk, "raw LMDB mdb_get", raw.get_ps,
         note);

    /* ---- 3-pattern BGP through the SPARQL engine ---- */
    size_t Q = o->queries;
    char q[1024];
    sparql_sink_t sink = {cs_head, cs_row, cs_bool, cs_finish, NULL};
    count_sink_t cs = {0};
    sink.ctx = &cs;
    size_t *starts = malloc(Q * sizeof *starts);
    for (size_t i = 0; i < Q; i++) starts[i] = rnd() % K;
    double best_ours = 0, best_sord = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double t_ours = 0, t_sord = 0;
        our_rows = sord_rows = 0;
        for (size_t i = 0; i < Q; i++) {
            size_t k = starts[i];
            graph_term_t ts;
            graph_term_get(r, qs[2 * k], &ts, &e);
            if (ts.kind != GRAPH_TERM_IRI) continue;
            snprintf(q, sizeof q, "SELECT * WHERE { <%s> ?p1 ?b . ?b ?p2 ?c . ?c ?p3 ?d }", ts.value);
            t0 = llmos_now_ns();
            sparql_query_t *pq;
            if (sparql_query_parse(q, strlen(q), &pq, &e)) die("parse", &e);
            cs.rows = 0;
            if (sparql_query_execute(r, pq, NULL, &sink, NULL, &e)) die("execute", &e);
            sparql_query_destroy(&pq);
            t_ours += secs(t0);
            our_rows += cs.rows;
            t0 = llmos_now_ns();
            SordIter *a = sord_search(model, sn[2 * k], NULL, NULL, NULL);
            for (; a && !sord_iter_end(a); sord_iter_next(a)) {
                SordIter *b = sord_search(model, sord_iter_get_node(a, SORD_OBJECT), NULL, NULL, NULL);
                for (; b && !sord_iter_end(b); sord_iter_next(b)) {
                    SordIter *c = sord_search(model, sord_iter_get_node(b, SORD_OBJECT), NULL, NULL, NULL);
                    for (; c && !sord_iter_end(c); sord_iter_next(c)) sord_rows++;
                    sord_iter_free(c);
                }
                sord_iter_free(b);
            }
            sord_iter_free(a);
            t_sord += secs(t0);
        }
        if ((double)Q / t_ours > best_ours) best_ours = (double)Q / t_ours;
        if ((double)Q / t_sord > best_sord) best_sord = (double)Q / t_sord;
    }
    snprintf(metric, sizeof metric, "%s_bgp3", name);
    snprintf(note, sizeof note, "{<X> ?p1 ?b . ?b ?p2 ?c . ?c ?p3 ?d}, %zu queries incl. parse+plan, %llu rows%s", Q,
             (unsigned long long)our_rows, our_rows == sord_rows ? ", same as sord" : ", MISMATCH with sord");
    emit(metric, best_ours, "queries/s", "sord nested sord_search loops", best_sord, NULL, 0, note);

    /* ---- 2-hop neighbourhood, both directions ---- */
    const SordNode **fa = malloc(4000000 * sizeof *fa), **fb = malloc(4000000 * sizeof *fb);
    uint64_t our_nodes = 0, sord_nodes = 0;
    graph_walk_options_t wo = {.hops = 2, .dir = GRAPH_DIR_BOTH, .max_nodes = 10000000, .max_edges = 100000000};
    best_ours = best_sord = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double t_ours = 0, t_sord = 0;
        our_nodes = sord_nodes = 0;
        for (size_t i = 0; i < Q; i++) {
            size_t k = starts[i];
            graph_walk_result_t res;
            t0 = llmos_now_ns();
            if (graph_neighbors(r, qs[2 * k], &wo, NULL, NULL, &res, &e)) die("neighbors", &e);
            t_ours += secs(t0);
            our_nodes += res.nodes;
            t0 = llmos_now_ns();
            sord_nodes += sord_hop2(model, sn[2 * k], fa, fb, 4000000);
            t_sord += secs(t0);
        }
        if ((double)Q / t_ours > best_ours) best_ours = (double)Q / t_ours;
        if ((double)Q / t_sord > best_sord) best_sord = (double)Q / t_sord;
    }
    snprintf(metric, sizeof metric, "%s_hop2", name);
    snprintf(note, sizeof note, "%zu walks, %llu nodes reached%s", Q, (unsigned long long)our_nodes,
             our_nodes == sord_nodes ? ", same as sord BFS" : ", MISMATCH with sord BFS");
    emit(metric, best_ours, "walks/s", "sord BFS over sord_search", best_sord, NULL, 0, note);

    free(fa);
    free(fb);
    free(starts);
    for (size_t i = 0; i < 2 * K; i++)
        if (sn[i]) sord_node_free(world, sn[i]);
    free(sn);
    free(qs);
    free(tr);
    graph_reader_end(&r);
    graph_store_close(&s);
    mdb_env_close(raw.env);
    sord_free(model);
    sord_world_free(world);
    llmos_tmpdir_remove(dir, NULL);
    llmos_tmpdir_remove(rawdir, NULL);
}

/* ------------------------------------------------------ memory budget --- */

static long status_kb(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

static void bench_memory(const char *work, const opts_t *o) {
    char tsv[4200], dir[4200], note[320];
    snprintf(tsv, sizeof tsv, "%s/mem.tsv", work);
    snprintf(dir, sizeof dir, "%s/mem.graph", work);
    uint64_t ents = o->mem_triples / 25 ? o->mem_triples / 25 : 1;
    gen_tsv(tsv, o->mem_triples, ents);
    llmos_tmpdir_remove(dir, NULL);
    const uint64_t budget_mib = 256;
    uint64_t t0 = llmos_now_ns();
    /* A fresh process (this binary re-executed), so the figure holds the
     * load's memory only, not pages shared with this process after fork. */
    /* Sampling starts once exec has happened (the close-on-exec pipe reads
     * EOF): before it, the forked child still shows this process's pages. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) die("pipe", NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char budget[32];
        snprintf(budget, sizeof budget, "%llu", (unsigned long long)budget_mib);
        execl("/proc/self/exe", "graph_bench", "--mem-child", dir, tsv, budget, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char byte;
    while (read(pfd[0], &byte, 1) < 0 && errno == EINTR) {
    }
    close(pfd[0]);
    long peak_anon = 0, peak_rss = 0;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        long a = status_kb(pid, "RssAnon"), v = status_kb(pid, "VmHWM"); /* this mm's, since exec */
        if (a > peak_anon) peak_anon = a;
        if (v > peak_rss) peak_rss = v;
        llmos_sleep_ms(10);
    }
    double t = secs(t0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) < 3) {
        fprintf(stderr, "graph_bench: memory load failed (status %d)\n", status);
        llmos_tmpdir_remove(dir, NULL);
        unlink(tsv);
        return;
    }
    int runs = WEXITSTATUS(status) - 3;
    snprintf(note, sizeof note,
             "%llu TSV triples, budget %llu MiB, %d sort runs spilled, %.0f triples/s; private (anonymous) peak "
             "sampled every 10 ms; VmHWM incl. the store's shared file mapping (page cache) %ld MiB",
             (unsigned long long)o->mem_triples, (unsigned long long)budget_mib, runs, (double)o->mem_triples / t,
             peak_rss / 1024);
    emit("load_mem_peak_private", (double)peak_anon / 1024, "MiB", NULL, 0, "mem budget", (double)budget_mib, note);
    llmos_tmpdir_remove(dir, NULL);
    unlink(tsv);
}

/* The child of bench_memory: load tsv into dir with a budget; the exit
 * status carries the number of sort runs (+3) or a failure (< 3). */
static int mem_child(const char *dir, const char *tsv, const char *budget_mib) {
    llmos_error_t e;
    graph_store_t *s;
    graph_store_options_t so = {.create = 1, .write_map = 1};
    if (graph_store_open(dir, &so, &s, &e)) return 2;
    graph_load_options_t lo = {.quiet = 1, .mem_budget = strtoull(budget_mib, NULL, 10) << 20};
    const char *files[1] = {tsv};
    graph_load_report_t rep;
    int rc = graph_load_files(s, files, 1, &lo, &rep, &e);
    graph_store_close(&s);
    if (rc) fprintf(stderr, "graph_bench: memory load: %s\n", e.msg);
    return rc ? 1 : (int)(rep.runs > 250 ? 250 : rep.runs) + 3;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--mem-child")) return mem_child(argv[2], argv[3], argv[4]);
    opts_t o = {.triples = 1000000, .mem_triples = 10000000, .lookups = 200000, .queries = 2000, .tmp = "/tmp"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t *count = !strcmp(a, "--triples")       ? &o.triples
                          : !strcmp(a, "--mem-triples") ? &o.mem_triples
                          : !strcmp(a, "--lookups")     ? &o.lookups
                          : !strcmp(a, "--queries")     ? &o.queries
                                                        : NULL;
        llmos_error_t pe;
        if (count && i + 1 < argc) {
            if (llmos_parse_u64(a, argv[++i], 1, UINT64_MAX, 0, count, &pe)) die("arguments", &pe);
        } else if (!strcmp(a, "--tmp") && i + 1 < argc)
            o.tmp = argv[++i];
        else if (!strcmp(argv[i], "--skip-mem")) o.skip_mem = 1;
        else {
            fprintf(stderr, "usage: graph_bench [--triples N] [--mem-triples N] [--lookups N] [--queries N] "
                            "[--tmp DIR] [--skip-mem]\n");
            return 2;
        }
    }
    if (!o.triples || !o.lookups || !o.queries) {
        fprintf(stderr, "graph_bench: counts must be positive\n");
        return 2;
    }
    char work[4096];
    snprintf(work, sizeof work, "%s/graph_bench-XXXXXX", o.tmp);
    if (!mkdtemp(work)) die(work, NULL);

    char nt[4200];
    snprintf(nt, sizeof nt, "%s/synthetic.nt", work);
    gen_synthetic_nt(nt, o.triples);
    bench_dataset("synthetic", nt, o.triples, work, &o);
    unlink(nt);

    const char *data = getenv("LLMOS_DATA");
    char wn[4096];
    snprintf(wn, sizeof wn, "%s/kg/wn18rr/train.txt", data ? data : LLMOS_SOURCE_DIR "/../shared/data");
    snprintf(nt, sizeof nt, "%s/wn18rr.nt", work);
    if (access(wn, R_OK) == 0) {
        uint64_t lines = tsv_to_nt(wn, nt);
        bench_dataset("wn18rr", nt, lines, work, &o);
        unlink(nt);
    } else {
        fprintf(stderr, "graph_bench: %s not found: WN18RR figures skipped\n", wn);
    }
    if (!o.skip_mem) bench_memory(work, &o);
    llmos_tmpdir_remove(work, NULL);
    return 0;
}
