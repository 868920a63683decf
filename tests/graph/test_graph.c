/*
 * test_graph.c — unit tests of the graph store (store.h, load.h, walk.h)
 * on real LMDB environments in fresh temporary directories:
 *   terms: format/parse round trips, normalisation, dictionary both ways;
 *   patterns: all 8 (s,p,o bound or free) against a brute-force scan of the
 *     same random graph, plus counts; duplicates; deletes; invariants;
 *   concurrency: reader threads scanning while the writer commits;
 *   loading: the sorted-run (spilling) path gives the same store as the
 *     in-memory path; malformed lines leave nothing behind;
 *   walks: neighbourhoods and shortest paths against a brute-force BFS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include <cmocka.h>

#include "graph/load.h"
#include "graph/store.h"
#include "graph/walk.h"
#include "runtime/base/tmpdir.h"

/* --------------------------------------------------------- fixtures --- */

typedef struct fx {
    char dir[256];
    graph_store_t *s;
} fx_t;

static int fx_setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    llmos_error_t e;
    if (!f || llmos_tmpdir_make("llmos-test-graph", f->dir, sizeof f->dir, &e)) return -1;
    graph_store_options_t o = {.create = 1, .no_sync = 1, .map_size = 1ULL << 30};
    if (graph_store_open(f->dir, &o, &f->s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fx_t *f = *state;
    graph_store_close(&f->s);
    int rc = llmos_tmpdir_remove(f->dir, NULL);
    free(f);
    return rc ? -1 : 0;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ------------------------------------------------------------ terms --- */

static void test_term_roundtrip(void **state) {
    (void)state;
    const char *texts[] = {
        "<http://example.org/a>",
        "_:b12",
        "\"plain\"",
        "\"hello\"@en-gb",
        "\"42\"^^<http://www.w3.org/2001/XMLSchema#integer>",
        "\"quote \\\" backslash \\\\ nl \\n tab \\t\"",
        "\"caf\\u00E9 \\U0001F600\"",
        "<http://example.org/with\\u0020space>",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char buf[512], out[512];
        graph_term_t t;
        size_t used, n;
        llmos_error_t e;
        assert_int_equal(graph_term_parse(texts[i], strlen(texts[i]), buf, sizeof buf, &t, &used, &e), 0);
        assert_int_equal(used, strlen(texts[i]));
        assert_int_equal(graph_term_format(&t, out, sizeof out, &n, &e), 0);
        /* Formatting then parsing again gives the same term. */
        char buf2[512];
        graph_term_t t2;
        assert_int_equal(graph_term_parse(out, n, buf2, sizeof buf2, &t2, NULL, &e), 0);
        assert_true(graph_term_equal(&t, &t2));
    }
    /* Escapes decoded. */
    char buf[64];
    graph_term_t t;
    assert_int_equal(graph_term_parse("\"caf\\u00E9\"", 11, buf, sizeof buf, &t, NULL, NULL), 0);
    assert_int_equal(t.len, 5);
    assert_memory_equal(t.value, "caf\xc3\xa9", 5);
    /* Errors carry a column. */
    const char *bad[] = {"<http://a b>", "\"unterminated", "<http://x", "\"x\"@", "\"bad\\q\"", "foo",
                         "\"x\"^^http", "\"\xff\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        llmos_error_t e;
        assert_int_equal(graph_term_parse(bad[i], strlen(bad[i]), buf, sizeof buf, &t, NULL, &e), LLMOS_EFORMAT);
        assert_non_null(strstr(e.msg, "column"));
    }
    /* Too small a buffer for format: ETOOBIG and the needed length. */
    graph_term_t iri = graph_term_iri("http://example.org/long");
    size_t need;
    char small[8];
    assert_int_equal(graph_term_format(&iri, small, sizeof small, &need, NULL), LLMOS_ETOOBIG);
    assert_int_equal(need, strlen("<http://example.org/long>"));
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_name_to_iri(void **state) {
    (void)state;
    char buf[128];
    size_t n;
    assert_int_equal(graph_name_to_iri("http://b/", "a b%c#d", 7, buf, sizeof buf, &n, NULL), 0);
    assert_string_equal(buf, "http://b/a%20b%25c%23d");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(graph_name_to_iri("http://b/", "_hypernym", 9, buf, sizeof buf, &n, NULL), 0);
    assert_string_equal(buf, "http://b/_hypernym");
    assert_int_equal(graph_name_to_iri("http://b/", "xxxxxxxxxxxx", 12, buf, 10, &n, NULL), LLMOS_ETOOBIG);
}

static void test_dictionary(void **state) {
    fx_t *f = *state;
    graph_writer_t *w;
    llmos_error_t e;
    assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
    graph_term_t terms[] = {
        graph_term_iri("http://example.org/a"),
        graph_term_blank("b1"),
        graph_term_literal("x", NULL, NULL),
        graph_term_literal("x", "en", NULL),
        graph_term_literal("x", NULL, "http://example.org/dt"),
    };
    graph_id_t ids[5];
    for (int i = 0; i < 5; i++) assert_int_equal(graph_writer_intern(w, &terms[i], &ids[i], &e), 0);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) assert_true(ids[i] != ids[j]);
    /* Normalisation: xsd:string is plain, language tags case-insensitive. */
    graph_term_t xs = graph_term_literal("x", NULL, "http://www.w3.org/2001/XMLSchema#string");
    graph_term_t en = graph_term_literal("x", "EN", NULL);
    graph_id_t id;
    assert_int_equal(graph_writer_intern(w, &xs, &id, &e), 0);
    assert_int_equal(id, ids[2]);
    assert_int_equal(graph_writer_intern(w, &en, &id, &e), 0);
    assert_int_equal(id, ids[3]);
    /* Long terms (beyond LMDB's key size) work: the dictionary keys hashes. */
    char *big = malloc(5000);
    memset(big, 'z', 4999);
    big[4999] = 0;
    graph_term_t bt = graph_term_literal(big, NULL, NULL);
    graph_id_t bid;
    assert_int_equal(graph_writer_intern(w, &bt, &bid, &e), 0);
    assert_int_equal(graph_writer_commit(&w, &e), 0);

    graph_reader_t *r;
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    for (int i = 0; i < 5; i++) {
        graph_term_t t;
        assert_int_equal(graph_term_lookup(r, &terms[i], &id, &e), 0);
        assert_int_equal(id, ids[i]);
        assert_int_equal(graph_term_get(r, ids[i], &t, &e), 0);
        assert_true(graph_term_equal(&t, &terms[i]));
        assert_int_equal(t.value[t.len], 0); /* views are NUL-terminated */
    }
    graph_term_t t;
    assert_int_equal(graph_term_get(r, bid, &t, &e), 0);
    assert_int_equal(t.len, 4999);
    graph_term_t missing = graph_term_iri("http://example.org/none");
    assert_int_equal(graph_term_lookup(r, &missing, &id, &e), LLMOS_ENOTFOUND);
    assert_int_equal(graph_term_get(r, 999999, &t, &e), LLMOS_ENOTFOUND);
    char txt[64];
    assert_int_equal(graph_term_format_id(r, ids[3], txt, sizeof txt, NULL, &e), 0);
    assert_string_equal(txt, "\"x\"@en");
    /* appended to a growing buffer: after what it holds, a long term in a
     * second pass, an unknown id leaves the buffer as it was */
    llmos_buf_t b = LLMOS_BUF_INIT;
    assert_int_equal(llmos_buf_puts(&b, "caf\xc3\xa9 "), 0);
    assert_int_equal(graph_term_append_id(r, ids[3], &b, &e), 0);
    assert_string_equal(b.data, "caf\xc3\xa9 \"x\"@en");
    size_t before = b.len;
    assert_int_equal(graph_term_append_id(r, bid, &b, &e), 0);
    assert_int_equal(b.len, before + 4999 + 2);
    assert_int_equal(b.data[before], '"');
    assert_int_equal(b.data[b.len - 1], '"');
    assert_int_equal(b.data[b.len], '\0');
    before = b.len;
    assert_int_equal(graph_term_append_id(r, 999999, &b, &e), LLMOS_ENOTFOUND);
    assert_int_equal(b.len, before);
    assert_int_equal(b.data[b.len], '\0');
    llmos_buf_deinit(&b);
    graph_stats_t st;
    assert_int_equal(graph_store_stats(r, &st, &e), 0);
    assert_int_equal(st.terms, 6);
    graph_reader_end(&r);
    free(big);
}

/* --------------------------------------------------------- patterns --- */

#define NT_MAX 3000

typedef struct model {
    graph_triple_t t[NT_MAX];
    int n;
} model_t;

static int model_has(const model_t *m, graph_id_t s, graph_id_t p, graph_id_t o) {
    for (int i = 0; i < m->n; i++)
        if (m->t[i].s == s && m->t[i].p == p && m->t[i].o == o) return 1;
    return 0;
}

static int cmp_trip(const void *a, const void *b) {
    const graph_triple_t *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    if (x->o != y->o) return x->o < y->o ? -1 : 1;
    return 0;
}

/* Checks one pattern: the store's scan and count against the model. */
static void check_pattern(graph_reader_t *r, const model_t *m, graph_id_t s, graph_id_t p, graph_id_t o) {
    static graph_triple_t want[NT_MAX], got[NT_MAX];
    int nw = 0, ng = 0;
    for (int i = 0; i < m->n; i++) {
        const graph_triple_t *t = &m->t[i];
        if ((!s || t->s == s) && (!p || t->p == p) && (!o || t->o == o)) want[nw++] = *t;
    }
    graph_iter_t it;
    graph_triple_t t;
    llmos_error_t e;
    int rc;
    assert_int_equal(graph_store_match(r, s, p, o, &it, &e), 0);
    while ((rc = graph_iter_next(&it, &t, &e)) == 1) {
        assert_true(ng < NT_MAX);
        got[ng++] = t;
    }
    assert_int_equal(rc, 0);
    graph_iter_close(&it);
    qsort(want, (size_t)nw, sizeof *want, cmp_trip);
    qsort(got, (size_t)ng, sizeof *got, cmp_trip);
    assert_int_equal(nw, ng);
    assert_memory_equal(want, got, (size_t)nw * sizeof *want);
    uint64_t c;
    assert_int_equal(graph_store_count(r, s, p, o, 0, &c, &e), 0);
    assert_int_equal(c, (uint64_t)nw);
    if (nw > 2) {
        assert_int_equal(graph_store_count(r, s, p, o, 2, &c, &e), 0);
        assert_int_equal(c, 2);
    }
}

static void check_all_patterns(graph_reader_t *r, const model_t *m, const graph_id_t *ids, int nids) {
    check_pattern(r, m, 0, 0, 0);
    for (int k = 0; k < 60; k++) {
        const graph_triple_t *t = &m->t[rnd() % (uint64_t)m->n];
        graph_id_t rs = ids[rnd() % (uint64_t)nids], ro = ids[rnd() % (uint64_t)nids];
        /* Bound values from a stored triple (hits) and random ones (often misses). */
        for (int mask = 1; mask < 8; mask++) {
            check_pattern(r, m, mask & 4 ? t->s : 0, mask & 2 ? t->p : 0, mask & 1 ? t->o : 0);
            check_pattern(r, m, mask & 4 ? rs : 0, mask & 2 ? t->p : 0, mask & 1 ? ro : 0);
        }
    }
}

static void test_patterns_random(void **state) {
    fx_t *f = *state;
    static model_t m;
    llmos_error_t e;
    for (int round = 0; round < 3; round++) {
        graph_writer_t *w;
        assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
        /* 40 nodes and 5 predicates (plus predicates used as nodes too). */
        graph_id_t ids[45];
        for (int i = 0; i < 45; i++) {
            char iri[64];
            snprintf(iri, sizeof iri, "http://r/%d/%s%d", round, i < 40 ? "n" : "p", i);
            graph_term_t t = graph_term_iri(iri);
            assert_int_equal(graph_writer_intern(w, &t, &ids[i], &e), 0);
        }
        m.n = 0;
        int target = 500 + round * 900;
        while (m.n < target) {
            graph_id_t s = ids[rnd() % 40], p = ids[40 + rnd() % 5], o = ids[rnd() % 45];
            int added, was = model_has(&m, s, p, o);
            assert_int_equal(graph_writer_add(w, s, p, o, &added, &e), 0);
            assert_int_equal(added, !was); /* duplicates are stored once */
            if (!was) m.t[m.n++] = (graph_triple_t){s, p, o};
        }
        /* Delete a tenth, and a triple that is not there. */
        for (int k = 0; k < m.n / 10; k++) {
            int i = (int)(rnd() % (uint64_t)m.n);
            int del;
            assert_int_equal(graph_writer_delete(w, m.t[i].s, m.t[i].p, m.t[i].o, &del, &e), 0);
            assert_int_equal(del, 1);
            assert_int_equal(graph_writer_delete(w, m.t[i].s, m.t[i].p, m.t[i].o, &del, &e), 0);
            assert_int_equal(del, 0);
            m.t[i] = m.t[--m.n];
        }
        /* The writer sees its own writes. */
        check_pattern(graph_writer_reader(w), &m, 0, ids[40], 0);
        assert_int_equal(graph_writer_commit(&w, &e), 0);

        /* Earlier rounds' triples are in the store too: restrict the model
         * check to this round by comparing against the whole store. */
        static model_t all;
        graph_reader_t *r;
        assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
        graph_iter_t it;
        graph_triple_t t;
        all.n = 0;
        assert_int_equal(graph_store_match(r, 0, 0, 0, &it, &e), 0);
        while (graph_iter_next(&it, &t, &e) == 1) {
            if (all.n < NT_MAX) all.t[all.n] = t;
            all.n++;
        }
        graph_iter_close(&it);
        /* Only this round's triples use this round's ids. */
        int mine = 0;
        for (int i = 0; i < all.n && i < NT_MAX; i++)
            if (all.t[i].s >= ids[0] && all.t[i].s <= ids[44]) mine++;
        assert_int_equal(mine, m.n);
        check_all_patterns(r, &m, ids, 45);
        /* Counts per predicate and in total match the model. */
        for (int pi = 40; pi < 45; pi++) {
            uint64_t c, want = 0;
            for (int i = 0; i < m.n; i++) want += m.t[i].p == ids[pi];
            assert_int_equal(graph_store_count(r, 0, ids[pi], 0, 0, &c, &e), 0);
            assert_int_equal(c, want);
        }
        uint64_t n3[3];
        assert_int_equal(graph_store_check(r, n3, &e), 0);
        assert_int_equal(n3[0], (uint64_t)all.n);
        graph_reader_end(&r);
        if (round == 0) {
            /* An aborted writer leaves nothing. */
            graph_writer_t *w2;
            assert_int_equal(graph_writer_begin(f->s, &w2, &e), 0);
            int del;
            for (int i = 0; i < m.n; i++)
                assert_int_equal(graph_writer_delete(w2, m.t[i].s, m.t[i].p, m.t[i].o, &del, &e), 0);
            graph_writer_abort(&w2);
            assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
            check_pattern(r, &m, 0, 0, 0);
            graph_reader_end(&r);
        }
        /* Wipe this round so the next round's model is the whole store. */
        assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
        for (int i = 0; i < m.n; i++) assert_int_equal(graph_writer_delete(w, m.t[i].s, m.t[i].p, m.t[i].o, NULL, &e), 0);
        assert_int_equal(graph_writer_commit(&w, &e), 0);
        assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
        graph_stats_t st;
        assert_int_equal(graph_store_stats(r, &st, &e), 0);
        assert_int_equal(st.triples, 0);
        assert_int_equal(st.predicates, 0);
        graph_reader_end(&r);
    }
}

static void test_add_errors(void **state) {
    fx_t *f = *state;
    graph_writer_t *w;
    llmos_error_t e;
    assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
    assert_int_equal(graph_writer_add(w, 1, 2, 0, NULL, &e), LLMOS_EINVAL);
    assert_int_equal(graph_writer_add(w, 1, 2, 12345, NULL, &e), LLMOS_EINVAL);
    graph_term_t empty = graph_term_iri("");
    graph_id_t id;
    assert_int_equal(graph_writer_intern(w, &empty, &id, &e), LLMOS_EINVAL);
    graph_term_t both = graph_term_literal("x", "en", "http://d");
    assert_int_equal(graph_writer_intern(w, &both, &id, &e), LLMOS_EINVAL);
    graph_term_t badlang = graph_term_literal("x", "e n", NULL);
    assert_int_equal(graph_writer_intern(w, &badlang, &id, &e), LLMOS_EINVAL);
    graph_writer_abort(&w);
    /* A read-only store refuses writers. */
    graph_store_t *ro;
    graph_store_options_t o = {.read_only = 1};
    assert_int_equal(graph_store_open(f->dir, &o, &ro, &e), 0);
    assert_int_equal(graph_writer_begin(ro, &w, &e), LLMOS_EPERM);
    graph_store_close(&ro);
    /* A directory that is not a graph. */
    assert_int_equal(graph_store_open("/nonexistent/graph", &o, &ro, &e), LLMOS_ENOTFOUND);
}

/* ------------------------------------------------------ concurrency --- */

typedef struct reader_job {
    graph_store_t *s;
    graph_id_t p;
    int bad;
    int rounds;
} reader_job_t;

/* Each snapshot must be internally consistent: the count of ?p? in the
 * statistics equals what the POS scan yields, and SPO scans agree. */
static void *reader_thread(void *arg) {
    reader_job_t *j = arg;
    graph_reader_t *r;
    llmos_error_t e;
    if (graph_reader_begin(j->s, &r, &e)) {
        j->bad = 1;
        return NULL;
    }
    for (int k = 0; k < j->rounds; k++) {
        uint64_t stat, scan = 0, all = 0;
        graph_iter_t it;
        graph_triple_t t;
        if (graph_store_count(r, 0, j->p, 0, 0, &stat, &e)) j->bad = 1;
        if (graph_store_match(r, 0, j->p, 0, &it, &e)) j->bad = 1;
        while (graph_iter_next(&it, &t, &e) == 1) scan++;
        graph_iter_close(&it);
        if (graph_store_match(r, 0, 0, 0, &it, &e)) j->bad = 1;
        while (graph_iter_next(&it, &t, &e) == 1) all += t.p == j->p;
        graph_iter_close(&it);
        if (stat != scan || scan != all) j->bad = 1;
        graph_reader_reset(r);
        if (graph_reader_renew(r, &e)) j->bad = 1;
    }
    graph_reader_end(&r);
    return NULL;
}

static void test_concurrent_readers(void **state) {
    fx_t *f = *state;
    llmos_error_t e;
    graph_writer_t *w;
    graph_term_t pt = graph_term_iri("http://c/p");
    graph_id_t p;
    assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
    assert_int_equal(graph_writer_intern(w, &pt, &p, &e), 0);
    assert_int_equal(graph_writer_commit(&w, &e), 0);
    reader_job_t jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (reader_job_t){f->s, p, 0, 150};
        assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &jobs[i]), 0);
    }
    for (int b = 0; b < 40; b++) {
        assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
        for (int i = 0; i < 50; i++) {
            char a[32], c[32];
            snprintf(a, sizeof a, "http://c/s%d", b);
            snprintf(c, sizeof c, "http://c/o%d", i);
            graph_term_t ts = graph_term_iri(a), to = graph_term_iri(c);
            assert_int_equal(graph_writer_add_terms(w, &ts, &pt, &to, NULL, &e), 0);
        }
        assert_int_equal(graph_writer_commit(&w, &e), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].bad, 0);
    }
}

/* ---------------------------------------------------------- loading --- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects every triple as text, sorted, for store-to-store comparison. */
static char *dump_sorted(graph_store_t *s, size_t *nlines) {
    graph_reader_t *r;
    llmos_error_t e;
    assert_int_equal(graph_reader_begin(s, &r, &e), 0);
    graph_stats_t st;
    assert_int_equal(graph_store_stats(r, &st, &e), 0);
    char **lines = calloc(st.triples + 1, sizeof *lines);
    graph_iter_t it;
    graph_triple_t t;
    size_t n = 0, total = 1;
    assert_int_equal(graph_store_match(r, 0, 0, 0, &it, &e), 0);
    while (graph_iter_next(&it, &t, &e) == 1) {
        char a[256], b[256], c[256];
        assert_int_equal(graph_term_format_id(r, t.s, a, sizeof a, NULL, &e), 0);
        assert_int_equal(graph_term_format_id(r, t.p, b, sizeof b, NULL, &e), 0);
        assert_int_equal(graph_term_format_id(r, t.o, c, sizeof c, NULL, &e), 0);
        size_t len = strlen(a) + strlen(b) + strlen(c) + 5;
        lines[n] = malloc(len);
        snprintf(lines[n], len, "%s %s %s\n", a, b, c);
        total += len;
        n++;
    }
    graph_iter_close(&it);
    graph_reader_end(&r);
    assert_int_equal(n, st.triples);
    qsort(lines, n, sizeof *lines, cmp_str);
    char *out = malloc(total);
    out[0] = 0;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(lines[i]);
        memcpy(out + off, lines[i], l + 1);
        off += l;
        free(lines[i]);
    }
    free(lines);
    *nlines = n;
    return out;
}

static void test_load_spill_equals_memory(void **state) {
    fx_t *f = *state;
    /* 300 000 triples > the 16 MiB budget's buffer (~116 000): three runs. */
    char path[300];
    snprintf(path, sizeof path, "%s/big.tsv", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 300000; i++)
        fprintf(fp, "e%llu\tr%llu\te%llu\n", (unsigned long long)(rnd() % 50000), (unsigned long long)(rnd() % 20),
                (unsigned long long)(rnd() % 50000));
    fprintf(fp, "e1\tr1\te2\ne1\tr1\te2\n"); /* duplicates within the file */
    fclose(fp);
    llmos_error_t e;
    graph_load_report_t rep_small, rep_big;
    graph_load_options_t o = {.mem_budget = 16ULL << 20, .quiet = 1};
    const char *files[1] = {path};
    assert_int_equal(graph_load_files(f->s, files, 1, &o, &rep_small, &e), 0);
    assert_true(rep_small.runs >= 2);
    assert_int_equal(rep_small.read, 300002);

    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/mem", f->dir);
    graph_store_t *s2;
    graph_store_options_t so = {.create = 1, .no_sync = 1, .map_size = 1ULL << 30};
    assert_int_equal(graph_store_open(dir2, &so, &s2, &e), 0);
    o.mem_budget = 512ULL << 20;
    assert_int_equal(graph_load_files(s2, files, 1, &o, &rep_big, &e), 0);
    assert_int_equal(rep_big.runs, 0);
    assert_int_equal(rep_small.added, rep_big.added);
    assert_true(rep_big.added < 300002);
    size_t n1, n2;
    char *d1 = dump_sorted(f->s, &n1), *d2 = dump_sorted(s2, &n2);
    assert_int_equal(n1, n2);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    graph_reader_t *r;
    assert_int_equal(graph_reader_begin(s2, &r, &e), 0);
    assert_int_equal(graph_store_check(r, NULL, &e), 0);
    /* Names resolve under the recorded base. */
    graph_id_t id;
    assert_int_equal(graph_node_resolve(r, "e1", NULL, &id, &e), 0);
    assert_int_equal(graph_node_resolve(r, "<http://llmos.local/kg/e1>", NULL, &id, &e), 0);
    assert_int_equal(graph_node_resolve(r, "no-such-node", NULL, &id, &e), LLMOS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no-such-node"));
    graph_reader_end(&r);
    /* Loading the same file again adds nothing. */
    assert_int_equal(graph_load_files(s2, files, 1, &o, &rep_big, &e), 0);
    assert_int_equal(rep_big.added, 0);
    assert_int_equal(rep_big.terms_added, 0);
    graph_store_close(&s2);
}

static void test_load_bad_lines(void **state) {
    fx_t *f = *state;
    char path[300], diag_path[300];
    snprintf(path, sizeof path, "%s/bad.nt", f->dir);
    snprintf(diag_path, sizeof diag_path, "%s/diag.txt", f->dir);
    write_file(path, "<http://a/x> <http://a/p> <http://a/y> .\n"
                     "<http://a/bad iri> <http://a/p> <http://a/y> .\n"
                     "<http://a/x> <http://a/p> \"caf\xff\" .\n"
                     "<http://a/new1> <http://a/p> <http://a/new2> garbage\n"
                     "# a comment\n"
                     "\n"
                     "<http://a/x> <http://a/p> \"ok\"@EN .\n"
                     "<http://a/x> <http://a/p> <http://a/trunc");
    FILE *diag = fopen(diag_path, "w+");
    graph_load_options_t o = {.quiet = 1, .diag = diag};
    graph_load_report_t rep;
    llmos_error_t e;
    const char *files[1] = {path};
    assert_int_equal(graph_load_files(f->s, files, 1, &o, &rep, &e), 0);
    assert_int_equal(rep.read, 2);
    assert_int_equal(rep.errors, 4);
    assert_int_equal(rep.terms_added, 4); /* x, p, y, "ok"@en: bad lines added no terms */
    rewind(diag);
    char all[4096] = {0};
    size_t got = fread(all, 1, sizeof all - 1, diag);
    (void)got;
    fclose(diag);
    assert_non_null(strstr(all, "bad.nt:2:"));
    assert_non_null(strstr(all, "bad.nt:3:"));
    assert_non_null(strstr(all, "bad.nt:4"));
    assert_non_null(strstr(all, "bad.nt:8:"));
    /* Strict: the same file changes nothing at all. */
    graph_reader_t *r;
    graph_stats_t before, after;
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    assert_int_equal(graph_store_stats(r, &before, &e), 0);
    graph_reader_end(&r);
    char path2[300];
    snprintf(path2, sizeof path2, "%s/more.nt", f->dir);
    write_file(path2, "<http://a/m> <http://a/p> <http://a/n> .\n<http://a/m> <http://a/p> .\n");
    const char *files2[2] = {path2, path};
    o.strict = 1;
    o.diag = fopen("/dev/null", "w");
    assert_int_equal(graph_load_files(f->s, files2, 2, &o, &rep, &e), LLMOS_EFORMAT);
    fclose(o.diag);
    assert_non_null(strstr(e.msg, "more.nt:2"));
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    assert_int_equal(graph_store_stats(r, &after, &e), 0);
    assert_memory_equal(&before, &after, sizeof before);
    graph_reader_end(&r);
    /* A missing file refuses the load before anything is parsed. */
    const char *files3[2] = {path2, "/nonexistent/x.nt"};
    o.strict = 0;
    assert_int_equal(graph_load_files(f->s, files3, 2, &o, &rep, &e), LLMOS_ENOTFOUND);
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    assert_int_equal(graph_store_stats(r, &after, &e), 0);
    assert_memory_equal(&before, &after, sizeof before);
    graph_reader_end(&r);
}

static void test_load_turtle(void **state) {
    fx_t *f = *state;
    char path[300];
    snprintf(path, sizeof path, "%s/t.ttl", f->dir);
    write_file(path, "@prefix ex: <http://ex.org/> .\n"
                     "@base <http://base.org/> .\n"
                     "ex:a ex:p ex:b , ex:c ;\n"
                     "     ex:q \"v\"@en , 42 .\n"
                     "<rel> a ex:T .\n");
    llmos_error_t e;
    graph_load_options_t o = {.quiet = 1};
    graph_load_report_t rep;
    const char *files[1] = {path};
    assert_int_equal(graph_load_files(f->s, files, 1, &o, &rep, &e), 0);
    assert_int_equal(rep.added, 5);
    assert_int_equal(rep.errors, 0);
    graph_reader_t *r;
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    graph_id_t id;
    graph_term_t rel = graph_term_iri("http://base.org/rel");
    assert_int_equal(graph_term_lookup(r, &rel, &id, &e), 0);
    graph_term_t num = graph_term_literal("42", NULL, "http://www.w3.org/2001/XMLSchema#integer");
    assert_int_equal(graph_term_lookup(r, &num, &id, &e), 0);
    graph_reader_end(&r);

    /* A syntax error on line 3: reported with its line, the rest of the
     * file skipped, the triples serd emitted before it kept (or nothing,
     * with strict). */
    char bad[300], diag_path[300];
    snprintf(bad, sizeof bad, "%s/bad.ttl", f->dir);
    snprintf(diag_path, sizeof diag_path, "%s/diag.txt", f->dir);
    write_file(bad, "@prefix ex: <http://ex.org/> .\n"
                    "ex:k ex:p ex:l .\n"
                    "ex:m ex:p ex:n ; ;; ] .\n"
                    "ex:o ex:p ex:zz .\n");
    FILE *diag = fopen(diag_path, "w+");
    graph_load_options_t bo = {.quiet = 1, .diag = diag};
    const char *bfiles[1] = {bad};
    assert_int_equal(graph_load_files(f->s, bfiles, 1, &bo, &rep, &e), 0);
    assert_int_equal(rep.errors, 1);
    /* k p l, and m p n: serd emits a triple as soon as its object is read,
     * before it meets the error later in that statement. */
    assert_int_equal(rep.added, 2);
    rewind(diag);
    char all[1024] = {0};
    size_t got = fread(all, 1, sizeof all - 1, diag);
    (void)got;
    fclose(diag);
    assert_non_null(strstr(all, "bad.ttl:3:"));
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    graph_term_t q = graph_term_iri("http://ex.org/zz");
    assert_int_equal(graph_term_lookup(r, &q, &id, &e), LLMOS_ENOTFOUND);
    graph_reader_end(&r);
    bo.strict = 1;
    bo.diag = fopen("/dev/null", "w");
    assert_int_equal(graph_load_files(f->s, bfiles, 1, &bo, &rep, &e), LLMOS_EFORMAT);
    fclose(bo.diag);
    assert_non_null(strstr(e.msg, "bad.ttl:3"));
}

/* ------------------------------------------------------------ walks --- */

static void test_walks(void **state) {
    fx_t *f = *state;
    llmos_error_t e;
    graph_writer_t *w;
    assert_int_equal(graph_writer_begin(f->s, &w, &e), 0);
    /* A random sparse directed graph over 200 nodes. */
    enum { N = 200, M = 320 };
    graph_id_t node[N];
    static int adj[N][N]; /* 1 when an edge u→v exists */
    memset(adj, 0, sizeof adj);
    graph_term_t pt = graph_term_iri("http://w/p");
    graph_id_t p;
    assert_int_equal(graph_writer_intern(w, &pt, &p, &e), 0);
    for (int i = 0; i < N; i++) {
        char iri[32];
        snprintf(iri, sizeof iri, "http://w/n%d", i);
        graph_term_t t = graph_term_iri(iri);
        assert_int_equal(graph_writer_intern(w, &t, &node[i], &e), 0);
    }
    for (int k = 0; k < M; k++) {
        int u = (int)(rnd() % N), v = (int)(rnd() % N);
        adj[u][v] = 1;
        assert_int_equal(graph_writer_add(w, node[u], p, node[v], NULL, &e), 0);
    }
    assert_int_equal(graph_writer_commit(&w, &e), 0);
    graph_reader_t *r;
    assert_int_equal(graph_reader_begin(f->s, &r, &e), 0);
    for (int dir = 1; dir <= 3; dir++) {
        for (int trial = 0; trial < 25; trial++) {
            int a = (int)(rnd() % N), b = (int)(rnd() % N);
            /* Brute-force BFS distances from a. */
            int dist[N];
            for (int i = 0; i < N; i++) dist[i] = -1;
            dist[a] = 0;
            for (int d = 0; d < N; d++)
                for (int u = 0; u < N; u++)
                    if (dist[u] == d)
                        for (int v = 0; v < N; v++)
                            if (dist[v] < 0 && (((dir & 1) && adj[u][v]) || ((dir & 2) && adj[v][u]))) dist[v] = d + 1;
            graph_walk_options_t o = {.hops = 8, .dir = (graph_dir)dir};
            graph_triple_t path[16];
            size_t len;
            int rc = graph_path(r, node[a], node[b], &o, path, 16, &len, &e);
            if (dist[b] < 0 || dist[b] > 8) {
                assert_int_equal(rc, LLMOS_ENOTFOUND);
                continue;
            }
            assert_int_equal(rc, 0);
            assert_int_equal((int)len, dist[b]);
            /* The path is connected from a to b along allowed directions. */
            graph_id_t at = node[a];
            for (size_t i = 0; i < len; i++) {
                assert_int_equal(graph_store_contains(r, path[i].s, path[i].p, path[i].o, &e), 1);
                if ((dir & 1) && path[i].s == at)
                    at = path[i].o;
                else if ((dir & 2) && path[i].o == at)
                    at = path[i].s;
                else
                    fail_msg("path edge %zu does not continue the walk", i);
            }
            assert_int_equal(at, node[b]);
            /* Neighbourhood of 2 hops: nodes = those at distance ≤ 2. */
            graph_walk_options_t no = {.hops = 2, .dir = (graph_dir)dir};
            graph_walk_result_t res;
            assert_int_equal(graph_neighbors(r, node[a], &no, NULL, NULL, &res, &e), 0);
            uint64_t want = 0, want_edges = 0;
            for (int i = 0; i < N; i++) want += dist[i] >= 0 && dist[i] <= 2;
            /* Edges: each stored edge touching a node at distance ≤ 1 (in a
             * followed direction) once. */
            for (int u = 0; u < N; u++)
                for (int v = 0; v < N; v++)
                    if (adj[u][v] && (((dir & 1) && dist[u] >= 0 && dist[u] <= 1) ||
                                      ((dir & 2) && dist[v] >= 0 && dist[v] <= 1)))
                        want_edges++;
            assert_int_equal(res.nodes, want);
            assert_int_equal(res.edges, want_edges);
            assert_int_equal(res.truncated, 0);
        }
    }
    /* Caps truncate. */
    graph_walk_options_t capo = {.hops = 4, .max_edges = 3};
    graph_walk_result_t res;
    assert_int_equal(graph_neighbors(r, node[0], &capo, NULL, NULL, &res, &e), 0);
    assert_true(res.edges <= 3);
    graph_reader_end(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_term_roundtrip),
        cmocka_unit_test(test_name_to_iri),
        cmocka_unit_test_setup_teardown(test_dictionary, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_patterns_random, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_add_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_spill_equals_memory, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_bad_lines, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_turtle, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_walks, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
