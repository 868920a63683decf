/* Unit tests of the SPARQL subset (parser, planner, executor, writers) and of
 * entity linking, on real LMDB stores: a small hand-made graph with literals
 * and the UMLS training graph loaded with the store's loader.  Also a fuzz
 * loop of random and truncated queries (run it under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/link.h"
#include "graph/load.h"
#include "graph/sparql.h"
#include "graph/store.h"
#include "runtime/base/clock.h"
#include "runtime/base/tmpdir.h"

#define X "http://x.org/"
#define XSD "http://www.w3.org/2001/XMLSchema#"
#define RDFS_LABEL "http://www.w3.org/2000/01/rdf-schema#label"

/* ----------------------------------------------------------- helpers --- */

static char tmp_root[256];

static graph_store_t *store_new(const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    graph_store_options_t opt = {0};
    opt.create = 1;
    opt.no_sync = 1;
    opt.map_size = 256u << 20;
    graph_store_t *s = NULL;
    llmos_error_t err = {0};
    int rc = graph_store_open(dir, &opt, &s, &err);
    if (rc) fprintf(stderr, "open %s: %s\n", dir, err.msg);
    assert_int_equal(rc, 0);
    return s;
}

/* Adds triples written as N-Triples terms, three per row. */
static void add_nt(graph_store_t *s, const char *const *rows, int n) {
    graph_writer_t *w = NULL;
    llmos_error_t err = {0};
    assert_int_equal(graph_writer_begin(s, &w, &err), 0);
    for (int i = 0; i < n; i++) {
        graph_term_t t[3];
        char buf[3][512];
        for (int k = 0; k < 3; k++) {
            const char *text = rows[i * 3 + k];
            int rc = graph_term_parse(text, strlen(text), buf[k], sizeof buf[k], &t[k], NULL, &err);
            if (rc) fprintf(stderr, "%s: %s\n", text, err.msg);
            assert_int_equal(rc, 0);
        }
        assert_int_equal(graph_writer_add_terms(w, &t[0], &t[1], &t[2], NULL, &err), 0);
    }
    assert_int_equal(graph_writer_commit(&w, &err), 0);
}

/* The small graph: people, a few literals of each kind. */
static const char *const small_rows[] = {
    "<" X "alice>", "<" X "knows>", "<" X "bob>",
    "<" X "bob>", "<" X "knows>", "<" X "carol>",
    "<" X "carol>", "<" X "knows>", "<" X "alice>",
    "<" X "alice>", "<" X "knows>", "<" X "alice>",
    "<" X "alice>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<" X "Person>",
    "<" X "bob>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<" X "Person>",
    "<" X "alice>", "<" X "age>", "\"30\"^^<" XSD "integer>",
    "<" X "bob>", "<" X "age>", "\"030\"^^<" XSD "integer>",
    "<" X "carol>", "<" X "age>", "\"31.5\"^^<" XSD "decimal>",
    "<" X "alice>", "<" X "name>", "\"Alice\"@en",
    "<" X "bob>", "<" X "name>", "\"Bob\"",
    "<" X "carol>", "<" X "name>", "\"Carol \\\"C\\\"\\tTab\"@EN-gb",
    "<" X "bob>", "<" X "nick>", "\"Bob\"",
};

typedef struct collect {
    char rows[256][512];
    int n;
    int head_cols;
    int boolean;
} collect_t;

static int c_head(void *ctx, const char *const *names, int n) {
    ((collect_t *)ctx)->head_cols = n;
    (void)names;
    return 0;
}

static int c_row(void *ctx, graph_reader_t *r, const graph_id_t *ids, int n) {
    collect_t *c = ctx;
    if (c->n >= 256) return LLMOS_ETOOBIG;
    char *out = c->rows[c->n++];
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char term[256] = "";
        if (ids[i]) assert_int_equal(graph_term_format_id(r, ids[i], term, sizeof term, NULL, NULL), 0);
        if (i) strcat(out, " ");
        strcat(out, ids[i] ? term : "-");
    }
    return 0;
}

static int c_bool(void *ctx, int v) {
    ((collect_t *)ctx)->boolean = v;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

/* Runs q on s; rows sorted into c.  Returns the execute status. */
static int run(graph_store_t *s, const char *q, collect_t *c, sparql_exec_stats_t *st) {
    memset(c, 0, sizeof *c);
    c->boolean = -1;
    llmos_error_t err = {0};
    sparql_query_t *pq = NULL;
    int rc = sparql_query_parse(q, strlen(q), &pq, &err);
    if (rc) {
        fprintf(stderr, "parse: %s\n", err.msg);
        return rc;
    }
    graph_reader_t *r = NULL;
    assert_int_equal(graph_reader_begin(s, &r, &err), 0);
    sparql_sink_t sink = {c_head, c_row, c_bool, NULL, c};
    rc = sparql_query_execute(r, pq, NULL, &sink, st, &err);
    if (rc) fprintf(stderr, "execute: %s\n", err.msg);
    graph_reader_end(&r);
    sparql_query_destroy(&pq);
    qsort(c->rows, (size_t)c->n, sizeof c->rows[0], cmp_str);
    return rc;
}

/* Asserts the sorted rows equal the expected ones (any order given). */
static void expect_rows(graph_store_t *s, const char *q, const char *const *want, int n) {
    collect_t *c = malloc(sizeof *c);
    assert_int_equal(run(s, q, c, NULL), 0);
    char(*w)[512] = calloc((size_t)n + 1, 512);
    for (int i = 0; i < n; i++) snprintf(w[i], 512, "%s", want[i]);
    qsort(w, (size_t)n, 512, cmp_str);
    if (c->n != n) {
        fprintf(stderr, "query: %s\ngot %d rows:\n", q, c->n);
        for (int i = 0; i < c->n; i++) fprintf(stderr, "  %s\n", c->rows[i]);
    }
    assert_int_equal(c->n, n);
    for (int i = 0; i < n; i++) assert_string_equal(c->rows[i], w[i]);
    free(w);
    free(c);
}

static int expect_ask(graph_store_t *s, const char *q) {
    collect_t *c = malloc(sizeof *c);
    assert_int_equal(run(s, q, c, NULL), 0);
    int b = c->boolean;
    free(c);
    return b;
}

static graph_store_t *small;
static graph_store_t *umls;

static int setup(void **state) {
    (void)state;
    llmos_error_t terr;
    if (llmos_tmpdir_make("llmos-test-graph-query", tmp_root, sizeof tmp_root, &terr))
        fail_msg("%s", terr.msg);
    small = store_new("small");
    add_nt(small, small_rows, (int)(sizeof small_rows / sizeof small_rows[0] / 3));
    umls = store_new("umls");
    const char *data = getenv("LLMOS_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/kg/umls/train.txt", data ? data : LLMOS_SOURCE_DIR "/../shared/data");
    const char *files[1] = {path};
    graph_load_options_t lo = {0};
    lo.quiet = 1;
    graph_load_report_t rep;
    llmos_error_t err = {0};
    int rc = graph_load_files(umls, files, 1, &lo, &rep, &err);
    if (rc) fprintf(stderr, "load %s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.added, 5216);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    graph_store_close(&small);
    graph_store_close(&umls);
    llmos_error_t terr;
    if (llmos_tmpdir_remove(tmp_root, &terr)) fprintf(stderr, "%s\n", terr.msg);
    return 0;
}

/* ------------------------------------------------------------ parser --- */

static sparql_query_t *parse_ok(const char *q) {
    sparql_query_t *pq = NULL;
    llmos_error_t err = {0};
    int rc = sparql_query_parse(q, strlen(q), &pq, &err);
    if (rc) fprintf(stderr, "%s\n  -> %s\n", q, err.msg);
    assert_int_equal(rc, 0);
    return pq;
}

static void test_parse_select(void **state) {
    (void)state;
    sparql_query_t *q = parse_ok("# comment\nPREFIX x: <http://x.org/>\nprefix : <http://d.org/>\n"
                                 "SELECT DISTINCT ?a $b WHERE {\n"
                                 "  ?a x:knows ?b ; a :T , \"s\\u00e9\\n\"@en-GB .\n"
                                 "  ?b x:age 42 . ?b x:w -1.5 . ?b x:d 1e3 . ?b x:t true . ?b x:dt \"v\"^^x:ty\n"
                                 "  FILTER (?a != ?b && (?b = x:bob || !(?a = :c)))\n"
                                 "} LIMIT 10 OFFSET 5");
    assert_int_equal(q->form, SPARQL_SELECT);
    assert_true(q->distinct);
    assert_false(q->star);
    assert_int_equal(q->nproject, 2);
    assert_string_equal(q->vars[q->project[0]], "a");
    assert_string_equal(q->vars[q->project[1]], "b");
    assert_int_equal(q->npatterns, 8);
    assert_int_equal(q->patterns[0].p.kind, SPARQL_TERM_IRI);
    assert_string_equal(q->patterns[0].p.value, "http://x.org/knows");
    assert_int_equal(q->patterns[0].p.line, 5);
    assert_int_equal(q->patterns[0].p.col, 6);
    assert_string_equal(q->patterns[1].p.value, "http://www.w3.org/1999/02/22-rdf-syntax-ns#type");
    assert_string_equal(q->patterns[1].o.value, "http://d.org/T");
    assert_int_equal(q->patterns[1].s.var, q->patterns[0].s.var); /* ';' keeps the subject */
    assert_int_equal(q->patterns[2].o.kind, SPARQL_TERM_LITERAL);
    assert_string_equal(q->patterns[2].o.value, "s\xc3\xa9\n");
    assert_string_equal(q->patterns[2].o.lang, "en-GB");
    assert_string_equal(q->patterns[3].o.datatype, XSD "integer");
    assert_string_equal(q->patterns[4].o.value, "-1.5");
    assert_string_equal(q->patterns[4].o.datatype, XSD "decimal");
    assert_string_equal(q->patterns[5].o.datatype, XSD "double");
    assert_string_equal(q->patterns[6].o.datatype, XSD "boolean");
    assert_string_equal(q->patterns[7].o.datatype, "http://x.org/ty");
    assert_int_equal(q->nfilters, 1);
    const sparql_expr_t *f = q->filters[0];
    assert_int_equal(f->op, SPARQL_EXPR_AND);
    assert_int_equal(f->a->op, SPARQL_EXPR_NE);
    assert_int_equal(f->b->op, SPARQL_EXPR_OR);
    assert_int_equal(f->b->b->op, SPARQL_EXPR_NOT);
    assert_int_equal(q->limit, 10);
    assert_int_equal(q->offset, 5);
    sparql_query_destroy(&q);
    assert_null(q);
}

static void test_parse_ask_star(void **state) {
    (void)state;
    sparql_query_t *q = parse_ok("ASK { <http://a> <http://b> \"x\" }");
    assert_int_equal(q->form, SPARQL_ASK);
    assert_int_equal(q->npatterns, 1);
    assert_int_equal(q->limit, UINT64_MAX);
    sparql_query_destroy(&q);
    q = parse_ok("BASE <http://b.org/dir/doc> SELECT * { ?s <p> ?o . ?o <#f> ?z . ?z </r> ?s FILTER(?z) }");
    assert_true(q->star);
    assert_int_equal(q->nproject, 3);
    assert_string_equal(q->patterns[0].p.value, "http://b.org/dir/p");
    assert_string_equal(q->patterns[1].p.value, "http://b.org/dir/doc#f");
    assert_string_equal(q->patterns[2].p.value, "http://b.org/r");
    sparql_query_destroy(&q);
    q = parse_ok("select ?x where { } offset 3 limit 0");
    assert_int_equal(q->npatterns, 0);
    assert_int_equal(q->limit, 0);
    assert_int_equal(q->offset, 3);
    sparql_query_destroy(&q);
    /* prefixed names with dots, digits and escapes; trailing dot ends the triple */
    q = parse_ok("PREFIX e: <http://e/> SELECT ?x { ?x e:a.b e:1x\\-y. }");
    assert_string_equal(q->patterns[0].p.value, "http://e/a.b");
    assert_string_equal(q->patterns[0].o.value, "http://e/1x-y");
    sparql_query_destroy(&q);
}

static void test_parse_errors(void **state) {
    (void)state;
    sparql_query_t *q0 = NULL;
    llmos_error_t err0 = {0};
    static const struct {
        const char *q;
        int code;
        const char *msg; /* must appear in the message */
    } cases[] = {
        {"SELECT ?x WHERE { ?x ?y }", LLMOS_EFORMAT, "line 1, column 25: expected an object"},
        {"SELECT ?x\nWHERE {\n  ?x ?y ?z .\n  ?x ?y\n}", LLMOS_EFORMAT, "line 5, column 1: expected an object"},
        {"SELECT ?x WHERE { ?x <http://a b> ?z }", LLMOS_EFORMAT, "column 22: an IRI may not contain spaces"},
        {"SELECT ?x WHERE { ?x ?y \"abc }", LLMOS_EFORMAT, "line 1, column 25: unterminated string"},
        {"SELECT WHERE { ?x ?y ?z }", LLMOS_EFORMAT, "column 8: expected '*' or a variable after SELECT"},
        {"SELECT ?x { ?x u:p ?z }", LLMOS_EFORMAT, "column 16: undefined prefix 'u:'"},
        {"SELECT ?x { ?x ?y ?z", LLMOS_EFORMAT, "column 21: expected '.', ';', ',', FILTER or '}', found end of query"},
        {"SELECT ?x { ?x ?y ?z } LIMIT x", LLMOS_EFORMAT, "column 30: expected a non-negative integer after LIMIT"},
        {"SELECT ?x { ?x ?y ?z } LIMIT 99999999999999999999", LLMOS_EFORMAT, "LIMIT value too large"},
        {"SELECT ?x { ?x ?y ?z } extra", LLMOS_EFORMAT, "column 24: expected LIMIT, OFFSET or the end"},
        {"SELECT ?x ?x { ?x ?y ?z }", LLMOS_EFORMAT, "column 11: variable ?x selected twice"},
        {"PREFIX x <http://x> SELECT * {}", LLMOS_EFORMAT, "column 8: expected a prefix name"},
        {"SELECT ?x { ?x ?y ?z FILTER ?x }", LLMOS_EFORMAT, "expected '(' after FILTER"},
        {"SELECT ?x { ?x ?y ?z FILTER(?x = ) }", LLMOS_EFORMAT, "column 34: expected a variable, IRI"},
        {"SELECT ?x { ?x ?y ?z FILTER(?x = ?y }", LLMOS_EFORMAT, "column 37: expected ')'"},
        {"SELECT ?x { ?x ?y \"a\"@ }", LLMOS_EFORMAT, "expected a language tag"},
        {"SELECT ?x { ?x ?y \"\\q\" }", LLMOS_EFORMAT, "column 20: unknown escape"},
        {"SELECT ? { }", LLMOS_EFORMAT, "column 8: expected a variable name"},
        {"", LLMOS_EFORMAT, "line 1, column 1: expected PREFIX, BASE, SELECT or ASK, found end of query"},
        {"SELECT ?x { ?x ?y ?z OPTIONAL { ?x ?y ?z } }", LLMOS_EUNSUPPORTED, "column 22: OPTIONAL is not supported"},
        {"SELECT ?x { ?x ?y ?z } ORDER BY ?x", LLMOS_EUNSUPPORTED, "column 24: ORDER is not supported"},
        {"CONSTRUCT { ?x ?y ?z } { ?x ?y ?z }", LLMOS_EUNSUPPORTED, "CONSTRUCT is not supported"},
        {"SELECT ?x { ?x ?y _:b }", LLMOS_EUNSUPPORTED, "column 19: a blank node is not supported"},
        {"SELECT ?x { ?x ?y ?z FILTER(?z < 3) }", LLMOS_EUNSUPPORTED, "the operator '<' is not supported"},
        {"SELECT ?x { ?x ?y ?z FILTER regex(?z, \"a\") }", LLMOS_EUNSUPPORTED, "the function 'regex'"},
        {"SELECT ?x { ?x ?y ?z { ?a ?b ?c } }", LLMOS_EUNSUPPORTED, "nested group"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sparql_query_t *q = NULL;
        llmos_error_t err = {0};
        int rc = sparql_query_parse(cases[i].q, strlen(cases[i].q), &q, &err);
        if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
            fprintf(stderr, "query: %s\n  rc %d, message: %s\n  wanted: %s\n", cases[i].q, rc, err.msg, cases[i].msg);
        assert_int_equal(rc, cases[i].code);
        assert_non_null(strstr(err.msg, cases[i].msg));
        assert_null(q);
    }
    /* sizes that would make execution recurse too deep are refused */
    char *big = malloc(64 * 1024);
    size_t n = (size_t)sprintf(big, "SELECT * {");
    for (int i = 0; i < 300; i++) n += (size_t)sprintf(big + n, " ?s%d <http://p> ?s%d .", i, i + 1);
    strcpy(big + n, " }");
    assert_int_equal(sparql_query_parse(big, strlen(big), &q0, &err0), LLMOS_ETOOBIG);
    assert_non_null(strstr(err0.msg, "more than 256 triple patterns"));
    n = (size_t)sprintf(big, "SELECT * { ?s ?p ?o FILTER(?s = <http://a>");
    for (int i = 0; i < 2000; i++) n += (size_t)sprintf(big + n, " || ?o = <http://a>");
    strcpy(big + n, ") }");
    assert_int_equal(sparql_query_parse(big, strlen(big), &q0, &err0), LLMOS_ETOOBIG);
    assert_non_null(strstr(err0.msg, "more than 1024 operators"));
    n = (size_t)sprintf(big, "SELECT * { ?s ?p ?o FILTER");
    for (int i = 0; i < 200; i++) big[n++] = '(';
    strcpy(big + n, "?s");
    assert_int_equal(sparql_query_parse(big, strlen(big), &q0, &err0), LLMOS_ETOOBIG);
    assert_non_null(strstr(err0.msg, "nested too deeply"));
    /* a long but bounded chain parses and runs */
    n = (size_t)sprintf(big, "SELECT ?s { ?s ?p ?o FILTER(?s = <http://a>");
    for (int i = 0; i < 300; i++) n += (size_t)sprintf(big + n, " || ?s = <http://x.org/bob>");
    strcpy(big + n, ") }");
    collect_t *c = malloc(sizeof *c);
    assert_int_equal(run(small, big, c, NULL), 0);
    assert_int_equal(c->n, 5); /* bob's triples */
    free(c);
    free(big);
    /* a query is not NUL-terminated: only len bytes are read */
    sparql_query_t *q = NULL;
    llmos_error_t err = {0};
    assert_int_equal(sparql_query_parse("ASK {}garbage", 6, &q, &err), 0);
    sparql_query_destroy(&q);
}

/* Random bytes, truncations and token salads: every outcome is a status,
 * never a crash; whatever parses also executes. */
static void test_parse_fuzz(void **state) {
    (void)state;
    static const char *const seeds[] = {
        "PREFIX x: <http://x.org/> SELECT DISTINCT ?a ?b WHERE { ?a x:knows ?b ; a x:Person . "
        "?b x:name \"B\\u00e9\"@en FILTER(?a != ?b && (?b = x:bob || !(?a = 30))) } LIMIT 3 OFFSET 1",
        "ASK { ?s <http://x.org/age> \"030\"^^<http://www.w3.org/2001/XMLSchema#integer> }",
        "SELECT * { ?s ?p ?o . ?o ?q ?r , 1.5e3 , 'x' , '''long\nstring''' } OFFSET 2",
    };
    static const char *const tokens[] = {"SELECT", "ASK", "WHERE", "{", "}", "?x", "?y", "<http://x.org/knows>",
                                         "x:knows", "PREFIX", "x:", "<http://x.org/>", ".", ";", ",", "FILTER",
                                         "(", ")", "=", "!=", "&&", "||", "!", "\"s\"", "@en", "^^", "42",
                                         "LIMIT", "OFFSET", "DISTINCT", "*", "a", "#", "\\", "'", "_:b", "$"};
    graph_reader_t *r = NULL;
    llmos_error_t err = {0};
    assert_int_equal(graph_reader_begin(small, &r, &err), 0);
    srand(12345);
    char buf[600];
    int parsed = 0, failed = 0;
    for (int iter = 0; iter < 6000; iter++) {
        size_t n = 0;
        int mode = iter % 3;
        if (mode == 0) { /* truncation (or the whole seed), with a random byte flipped sometimes */
            const char *s = seeds[rand() % 3];
            n = rand() % 3 ? (size_t)rand() % (strlen(s) + 1) : strlen(s);
            memcpy(buf, s, n);
            if (n && rand() % 2) buf[rand() % n] = (char)(rand() % 256);
        } else if (mode == 1) { /* random bytes */
            n = (size_t)rand() % 64;
            for (size_t i = 0; i < n; i++) buf[i] = (char)(rand() % 256);
        } else { /* token salad */
            int k = 1 + rand() % 20;
            for (int i = 0; i < k && n < 500; i++) {
                const char *t = tokens[rand() % (int)(sizeof tokens / sizeof tokens[0])];
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s ", t);
            }
        }
        sparql_query_t *q = NULL;
        llmos_error_clear(&err);
        int rc = sparql_query_parse(buf, n, &q, &err);
        if (rc) {
            assert_true(rc < 0);
            assert_true(err.msg[0] != '\0');
            assert_null(q);
            failed++;
            continue;
        }
        parsed++;
        collect_t *c = malloc(sizeof *c);
        memset(c, 0, sizeof *c);
        sparql_sink_t sink = {c_head, c_row, c_bool, NULL, c};
        rc = sparql_query_execute(r, q, NULL, &sink, NULL, &err);
        assert_true(rc == 0 || rc == LLMOS_ETOOBIG);
        free(c);
        sparql_query_destroy(&q);
    }
    graph_reader_end(&r);
    assert_true(parsed > 200);
    assert_true(failed > 1000);
}

/* ---------------------------------------------------------- execute --- */

#define P "PREFIX x: <http://x.org/> "

static void test_exec_bgp(void **state) {
    (void)state;
    expect_rows(small, P "SELECT ?o { x:alice x:knows ?o }", (const char *[]){"<" X "bob>", "<" X "alice>"}, 2);
    expect_rows(small, P "SELECT ?s { ?s x:knows x:alice }", (const char *[]){"<" X "carol>", "<" X "alice>"}, 2);
    expect_rows(small, P "SELECT ?x { ?x x:knows ?x }", (const char *[]){"<" X "alice>"}, 1);
    /* a 3-cycle: each rotation once, plus alice's self-loop three times */
    expect_rows(small, P "SELECT ?a ?b ?c { ?a x:knows ?b . ?b x:knows ?c . ?c x:knows ?a }",
                (const char *[]){"<" X "alice> <" X "alice> <" X "alice>", "<" X "alice> <" X "bob> <" X "carol>",
                                 "<" X "bob> <" X "carol> <" X "alice>", "<" X "carol> <" X "alice> <" X "bob>"},
                4);
    expect_rows(small, P "SELECT ?x ?n { ?x a x:Person ; x:name ?n }",
                (const char *[]){"<" X "alice> \"Alice\"@en", "<" X "bob> \"Bob\""}, 2);
    /* literal constants in the object position, normalised like the store */
    expect_rows(small, P "SELECT ?x { ?x x:name \"Bob\"^^<" XSD "string> }", (const char *[]){"<" X "bob>"}, 1);
    expect_rows(small, P "SELECT ?x { ?x x:name \"Carol \\\"C\\\"\\tTab\"@en-GB }", (const char *[]){"<" X "carol>"},
                1);
    expect_rows(small, P "SELECT ?x { ?x x:age 30 }", (const char *[]){"<" X "alice>"}, 1);
    /* a constant not in the store: no rows; a predicate variable shared */
    expect_rows(small, P "SELECT ?x { ?x x:nope ?y }", NULL, 0);
    expect_rows(small, P "SELECT ?p { x:bob ?p \"Bob\" }", (const char *[]){"<" X "name>", "<" X "nick>"}, 2);
    expect_rows(small, P "SELECT ?s ?t { ?s ?p \"Bob\" . ?t ?p \"Bob\" }",
                (const char *[]){"<" X "bob> <" X "bob>", "<" X "bob> <" X "bob>"}, 2);
    /* a projected variable no pattern binds stays unbound */
    expect_rows(small, P "SELECT ?x ?zz { ?x a x:Person }", (const char *[]){"<" X "alice> -", "<" X "bob> -"}, 2);
    /* the empty group has one solution; a cartesian product when unavoidable */
    expect_rows(small, "SELECT * { }", (const char *[]){""}, 1);
    expect_rows(small, P "SELECT ?a ?b { ?a a x:Person . ?b x:nick ?n }",
                (const char *[]){"<" X "alice> <" X "bob>", "<" X "bob> <" X "bob>"}, 2);
    assert_int_equal(expect_ask(small, P "ASK { x:alice x:knows x:bob }"), 1);
    assert_int_equal(expect_ask(small, P "ASK { x:bob x:knows x:alice }"), 0);
    assert_int_equal(expect_ask(small, P "ASK { x:nobody ?p ?o }"), 0);
    assert_int_equal(expect_ask(small, P "ASK { }"), 1);
}

static void test_exec_filter(void **state) {
    (void)state;
    /* numbers compare by value: "030"^^integer = 30 = 30.0 */
    expect_rows(small, P "SELECT ?x { ?x x:age ?a FILTER(?a = 30) }",
                (const char *[]){"<" X "alice>", "<" X "bob>"}, 2);
    expect_rows(small, P "SELECT ?x { ?x x:age ?a FILTER(?a = 30.0) }",
                (const char *[]){"<" X "alice>", "<" X "bob>"}, 2);
    expect_rows(small, P "SELECT ?x { ?x x:age ?a FILTER(?a != 30) }", (const char *[]){"<" X "carol>"}, 1);
    expect_rows(small, P "SELECT ?x ?y { ?x x:age ?a . ?y x:age ?b FILTER(?a = ?b && ?x != ?y) }",
                (const char *[]){"<" X "alice> <" X "bob>", "<" X "bob> <" X "alice>"}, 2);
    /* simple strings vs language-tagged (tags case-insensitive) */
    expect_rows(small, P "SELECT ?x { ?x x:name ?n FILTER(?n = \"Bob\") }", (const char *[]){"<" X "bob>"}, 1);
    expect_rows(small, P "SELECT ?x { ?x x:name ?n FILTER(?n = \"Alice\"@EN) }", (const char *[]){"<" X "alice>"},
                1);
    /* IRIs: sameTerm; ||, ! and parentheses */
    expect_rows(small, P "SELECT ?o { x:alice x:knows ?o FILTER(?o != x:alice) }", (const char *[]){"<" X "bob>"}, 1);
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(?x = x:bob || ?x = x:zed) }",
                (const char *[]){"<" X "bob>"}, 1);
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(!(?x = x:bob)) }", (const char *[]){"<" X "alice>"}, 1);
    /* an unbound variable is an error: false for = and != alike, but
     * `error || true` is true and `error && false` is false */
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(?nope = x:bob) }", NULL, 0);
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(?nope != x:bob) }", NULL, 0);
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(?nope = x:bob || ?x = x:bob) }",
                (const char *[]){"<" X "bob>"}, 1);
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(!(?nope = x:bob && ?x = x:bob)) }",
                (const char *[]){"<" X "alice>"}, 1);
    /* a number and a string: an error, so neither = nor != holds; a number
     * and a language-tagged string: different */
    expect_rows(small, P "SELECT ?x { ?x x:age ?a FILTER(?a != \"30\") }", NULL, 0);
    expect_rows(small, P "SELECT ?x { ?x x:age ?a FILTER(?a = \"30\") }", NULL, 0);
    expect_rows(small, P "SELECT ?x { ?x x:age ?a FILTER(?a != \"30\"@en) }",
                (const char *[]){"<" X "alice>", "<" X "bob>", "<" X "carol>"}, 3);
    /* effective boolean value; several FILTERs all must hold */
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(true) FILTER(?x != x:alice) }",
                (const char *[]){"<" X "bob>"}, 1);
    expect_rows(small, P "SELECT ?x { ?x a x:Person FILTER(0) }", NULL, 0);
}

static void test_exec_modifiers(void **state) {
    (void)state;
    collect_t *all = malloc(sizeof *all), *page = malloc(sizeof *page);
    assert_int_equal(run(small, "SELECT ?s ?p ?o { ?s ?p ?o }", all, NULL), 0);
    assert_int_equal(all->n, 13);
    /* pages of 4 are disjoint and together are everything */
    int total = 0;
    for (int off = 0; off < 16; off += 4) {
        char q[128];
        snprintf(q, sizeof q, "SELECT ?s ?p ?o { ?s ?p ?o } LIMIT 4 OFFSET %d", off);
        assert_int_equal(run(small, q, page, NULL), 0);
        assert_int_equal(page->n, off + 4 <= 13 ? 4 : 13 - off);
        for (int i = 0; i < page->n; i++) assert_non_null(bsearch(page->rows[i], all->rows, 13, 512, cmp_str));
        total += page->n;
    }
    assert_int_equal(total, 13);
    expect_rows(small, "SELECT DISTINCT ?p { ?s ?p ?o }",
                (const char *[]){"<" X "knows>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<" X "age>",
                                 "<" X "name>", "<" X "nick>"},
                5);
    assert_int_equal(run(small, "SELECT DISTINCT ?p { ?s ?p ?o } LIMIT 2 OFFSET 2", page, NULL), 0);
    assert_int_equal(page->n, 2);
    assert_int_equal(run(small, "SELECT ?s { ?s ?p ?o } LIMIT 0", page, NULL), 0);
    assert_int_equal(page->n, 0);
    assert_int_equal(page->head_cols, 1);
    assert_int_equal(run(small, "SELECT ?s { ?s ?p ?o } OFFSET 100", page, NULL), 0);
    assert_int_equal(page->n, 0);
    /* ASK with OFFSET: is there a 14th solution? */
    assert_int_equal(expect_ask(small, "ASK { ?s ?p ?o } OFFSET 12"), 1);
    assert_int_equal(expect_ask(small, "ASK { ?s ?p ?o } OFFSET 13"), 0);
    free(all);
    free(page);
}

static void test_exec_plan(void **state) {
    (void)state;
    collect_t *c = malloc(sizeof *c);
    sparql_exec_stats_t st;
    /* written worst first: the planner starts at the one-triple pattern and
     * follows shared variables, never a cartesian product */
    assert_int_equal(run(umls,
                         "PREFIX u: <http://llmos.local/kg/> SELECT * { ?a ?p ?b . ?b u:isa ?c . "
                         "u:alga u:isa ?a }",
                         c, &st),
                     0);
    assert_int_equal(st.order[0], 2);
    assert_int_equal(st.order[1], 0);
    assert_int_equal(st.order[2], 1);
    assert_true(c->n > 0);
    /* each step is one scan per binding of the step before */
    assert_int_equal(st.rows, (uint64_t)c->n);
    assert_true(st.scans < 1000);
    /* FILTER(?v = <iri>) pins ?v: one scan of the bound pattern, not all */
    assert_int_equal(run(umls,
                         "PREFIX u: <http://llmos.local/kg/> SELECT * { ?s ?p ?o FILTER(?o = u:cell && ?p != u:isa) }",
                         c, &st),
                     0);
    assert_true(c->n > 0);
    assert_int_equal(st.scans, 1);
    assert_int_equal(st.scanned, (uint64_t)c->n); /* UMLS has no isa edge into cell */
    free(c);
}

static void test_exec_deadline(void **state) {
    (void)state;
    llmos_error_t err = {0};
    sparql_query_t *q = parse_ok("SELECT * { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"); /* 5216^3 rows */
    graph_reader_t *r = NULL;
    assert_int_equal(graph_reader_begin(umls, &r, &err), 0);
    collect_t *c = malloc(sizeof *c);
    memset(c, 0, sizeof *c);
    sparql_sink_t sink = {c_head, NULL, c_bool, NULL, c};
    sparql_exec_opts_t opts = {0};
    opts.deadline_ns = llmos_now_ns() + 50u * 1000000u;
    uint64_t t0 = llmos_now_ns();
    assert_int_equal(sparql_query_execute(r, q, &opts, &sink, NULL, &err), LLMOS_ETIMEDOUT);
    assert_true(llmos_now_ns() - t0 < 2000u * 1000000u);
    assert_non_null(strstr(err.msg, "deadline"));
    volatile int cancel = 1;
    opts.deadline_ns = 0;
    opts.cancel = &cancel;
    assert_int_equal(sparql_query_execute(r, q, &opts, &sink, NULL, &err), LLMOS_ECANCELED);
    graph_reader_end(&r);
    sparql_query_destroy(&q);
    free(c);
}

static char *write_result(graph_store_t *s, const char *query, sparql_format fmt) {
    llmos_error_t err = {0};
    sparql_query_t *q = parse_ok(query);
    graph_reader_t *r = NULL;
    assert_int_equal(graph_reader_begin(s, &r, &err), 0);
    sparql_writer_t w;
    sparql_writer_init(&w, fmt, NULL, &err);
    sparql_sink_t sink = sparql_writer_sink(&w);
    assert_int_equal(sparql_query_execute(r, q, NULL, &sink, NULL, &err), 0);
    char *text = strdup(sparql_writer_text(&w, NULL));
    sparql_writer_deinit(&w);
    graph_reader_end(&r);
    sparql_query_destroy(&q);
    return text;
}

static void test_write_formats(void **state) {
    (void)state;
    const char *q = P "SELECT ?n ?x ?none { ?x x:name ?n FILTER(?x != x:bob) }";
    char *tsv = write_result(small, q, SPARQL_FORMAT_TSV);
    /* the order of rows is the store's; check both lines */
    assert_true(strncmp(tsv, "?n\t?x\t?none\n", 12) == 0);
    assert_non_null(strstr(tsv, "\n\"Alice\"@en\t<http://x.org/alice>\t\n"));
    assert_non_null(strstr(tsv, "\n\"Carol \\\"C\\\"\\tTab\"@en-gb\t<http://x.org/carol>\t\n"));
    free(tsv);
    char *json = write_result(small, P "SELECT ?x ?a ?none { ?x x:age ?a FILTER(?x = x:carol) }",
                              SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{\"vars\":[\"x\",\"a\",\"none\"]},\"results\":{\"bindings\":["
                              "{\"x\":{\"type\":\"uri\",\"value\":\"http://x.org/carol\"},"
                              "\"a\":{\"type\":\"literal\",\"value\":\"31.5\",\"datatype\":\"" XSD "decimal\"}}"
                              "]}}\n");
    free(json);
    json = write_result(small, P "SELECT ?n { x:carol x:name ?n }", SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{\"vars\":[\"n\"]},\"results\":{\"bindings\":["
                              "{\"n\":{\"type\":\"literal\",\"value\":\"Carol \\\"C\\\"\\tTab\","
                              "\"xml:lang\":\"en-gb\"}}]}}\n");
    free(json);
    json = write_result(small, P "SELECT ?n { x:nobody x:name ?n }", SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{\"vars\":[\"n\"]},\"results\":{\"bindings\":[]}}\n");
    free(json);
    json = write_result(small, P "ASK { x:bob x:nick \"Bob\" }", SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{},\"boolean\":true}\n");
    free(json);
    tsv = write_result(small, P "ASK { x:bob x:nick \"Rob\" }", SPARQL_FORMAT_TSV);
    assert_string_equal(tsv, "?_askResult\nfalse\n");
    free(tsv);
    /* repeated terms come from the writer's cache: same text as the first time */
    json = write_result(small, "SELECT ?p ?s { ?s ?p ?o }", SPARQL_FORMAT_JSON);
    int knows = 0;
    for (const char *p = json; (p = strstr(p, "{\"type\":\"uri\",\"value\":\"http://x.org/knows\"}")); p++) knows++;
    assert_int_equal(knows, 4);
    free(json);
    tsv = write_result(small, "SELECT ?p ?s { ?s ?p ?o }", SPARQL_FORMAT_TSV);
    knows = 0;
    for (const char *p = tsv; (p = strstr(p, "\n<http://x.org/knows>\t<http://x.org/")); p++) knows++;
    assert_int_equal(knows, 4);
    free(tsv);
    graph_reader_t *r = NULL;
    llmos_error_t err = {0};
    assert_int_equal(graph_reader_begin(small, &r, &err), 0);
    char *out = NULL;
    size_t len = 0;
    const char *ask = P "ASK { x:alice x:knows x:bob }";
    assert_int_equal(sparql_query_run(r, ask, strlen(ask), SPARQL_FORMAT_JSON, NULL, &out, &len, &err), 0);
    assert_string_equal(out, "{\"head\":{},\"boolean\":true}\n");
    assert_int_equal(len, strlen(out));
    free(out);
    const char *bad = "SELECT ?x { ?x }";
    assert_int_equal(sparql_query_run(r, bad, strlen(bad), SPARQL_FORMAT_TSV, NULL, &out, NULL, &err), LLMOS_EFORMAT);
    assert_null(out);
    assert_non_null(strstr(err.msg, "line 1, column 16"));
    graph_reader_end(&r);
    sparql_format f;
    assert_int_equal(sparql_format_parse("json", &f, NULL), 0);
    assert_int_equal(f, SPARQL_FORMAT_JSON);
    assert_int_equal(sparql_format_parse("xml", &f, NULL), LLMOS_EINVAL);
}

/* ------------------------------------------------------------- link --- */

static graph_linker_t *linker_for(graph_store_t *s, graph_reader_t **r) {
    llmos_error_t err = {0};
    assert_int_equal(graph_reader_begin(s, r, &err), 0);
    graph_linker_t *l = NULL;
    assert_int_equal(graph_linker_new(*r, &l, &err), 0);
    return l;
}

static void mention_is(const graph_link_result_t *res, size_t i, const char *text, const char *surface,
                       const char *iri) {
    assert_true(i < res->nmentions);
    const graph_link_mention_t *m = &res->mentions[i];
    assert_int_equal(m->end - m->start, strlen(surface));
    assert_memory_equal(text + m->start, surface, strlen(surface));
    assert_string_equal(m->iri, iri);
}

static void test_link_umls(void **state) {
    (void)state;
    graph_reader_t *r = NULL;
    graph_linker_t *l = linker_for(umls, &r);
    size_t ents, labels;
    graph_linker_size(l, &ents, &labels);
    assert_int_equal(ents, 135);
    assert_int_equal(labels, 135);
    llmos_error_t err = {0};
    graph_link_result_t res;
    /* two entities; the longest label wins ("disease or syndrome", not a
     * shorter one), any case, whole words only ("viruses" is not "virus") */
    const char *text = "Can a VIRUS cause a Disease or Syndrome? Viruses and cellular things, cell function.";
    graph_link_opts_t o = {.hops = 1, .max_facts = 20};
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &o, &res, &err), 0);
    assert_int_equal(res.nmentions, 3);
    mention_is(&res, 0, text, "VIRUS", "http://llmos.local/kg/virus");
    mention_is(&res, 1, text, "Disease or Syndrome", "http://llmos.local/kg/disease_or_syndrome");
    mention_is(&res, 2, text, "cell function", "http://llmos.local/kg/cell_function");
    assert_string_equal(res.mentions[1].label, "disease or syndrome");
    assert_int_equal(res.mentions[0].candidates, 1);
    /* first the fact linking two mentions, then a fair share around each */
    assert_true(res.nfacts == 20);
    assert_int_equal(res.facts[0].hop, 0);
    assert_string_equal(res.facts[0].sentence, "virus causes disease or syndrome.");
    assert_string_equal(res.facts[0].s, "<http://llmos.local/kg/virus>");
    assert_string_equal(res.facts[0].p, "<http://llmos.local/kg/causes>");
    int around[3] = {0, 0, 0};
    size_t between = 1;
    while (between < res.nfacts && res.facts[between].hop == 0) between++;
    for (size_t i = 0; i < between; i++) { /* hop 0: both ends mentioned */
        int ends = 0;
        for (int m = 0; m < 3; m++)
            ends += (res.facts[i].t.s == res.mentions[m].entity) + (res.facts[i].t.o == res.mentions[m].entity);
        assert_int_equal(ends, 2);
    }
    for (size_t i = between; i < res.nfacts; i++) {
        assert_int_equal(res.facts[i].hop, 1);
        for (int m = 0; m < 3; m++)
            if (res.facts[i].t.s == res.mentions[m].entity || res.facts[i].t.o == res.mentions[m].entity)
                around[m]++;
        for (size_t j = 0; j < i; j++) /* no duplicates */
            assert_false(res.facts[j].t.s == res.facts[i].t.s && res.facts[j].t.p == res.facts[i].t.p &&
                         res.facts[j].t.o == res.facts[i].t.o);
    }
    for (int m = 0; m < 3; m++) assert_true(around[m] >= 2); /* a share each, ceil-rounded */
    char *json = NULL;
    assert_int_equal(graph_link_to_json(&res, text, strlen(text), &json, NULL, &err), 0);
    assert_non_null(strstr(json, "{\"start\":6,\"end\":11,\"text\":\"VIRUS\",\"label\":\"virus\","
                                 "\"entity\":\"http://llmos.local/kg/virus\",\"candidates\":1}"));
    assert_non_null(strstr(json, "\"sentence\":\"virus causes disease or syndrome.\""));
    free(json);
    graph_link_result_deinit(&res);

    /* longest match over a shorter one that starts at the same word; hops 0
     * gives the facts between the mentions (hop 0) and nothing else */
    text = "cell or molecular dysfunction near a cell component";
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &(graph_link_opts_t){.hops = 0}, &res, &err), 0);
    assert_int_equal(res.nmentions, 2);
    mention_is(&res, 0, text, "cell or molecular dysfunction", "http://llmos.local/kg/cell_or_molecular_dysfunction");
    mention_is(&res, 1, text, "cell component", "http://llmos.local/kg/cell_component");
    assert_true(res.nfacts >= 1);
    for (size_t i = 0; i < res.nfacts; i++) {
        assert_int_equal(res.facts[i].hop, 0);
        graph_id_t a = res.mentions[0].entity, b = res.mentions[1].entity;
        assert_true((res.facts[i].t.s == a && res.facts[i].t.o == b) ||
                    (res.facts[i].t.s == b && res.facts[i].t.o == a));
    }
    graph_link_result_deinit(&res);

    /* two hops reach further, capped */
    text = "alga";
    assert_int_equal(graph_link_text(l, r, text, 4, &(graph_link_opts_t){.hops = 2, .max_facts = 30}, &res, &err), 0);
    assert_int_equal(res.nmentions, 1);
    assert_int_equal(res.nfacts, 30);
    int hop2 = 0;
    for (size_t i = 0; i < res.nfacts; i++) hop2 += res.facts[i].hop == 2;
    assert_true(hop2 > 0);
    graph_link_result_deinit(&res);

    /* nothing to find; bad options */
    assert_int_equal(graph_link_text(l, r, "the quick brown fox", 19, NULL, &res, &err), 0);
    assert_int_equal(res.nmentions, 0);
    assert_int_equal(res.nfacts, 0);
    graph_link_result_deinit(&res);
    assert_int_equal(graph_link_text(l, r, "x", 1, &(graph_link_opts_t){.hops = 3}, &res, &err), LLMOS_EINVAL);
    graph_link_result_deinit(&res);
    /* random bytes and label fragments: spans stay inside the text, in
     * order and disjoint; the caps hold */
    static const char *const words[] = {"cell", "function", "virus", "or", "disease", "syndrome", "\xc3\xa9",
                                        "_", "-", " ", "CELL", "\xff", "bird", "alga", "of"};
    char buf[400];
    srand(777);
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0;
        if (iter % 2) {
            n = (size_t)rand() % sizeof buf;
            for (size_t i = 0; i < n; i++) buf[i] = (char)(rand() % 256);
        } else {
            int k = rand() % 40;
            for (int i = 0; i < k && n < sizeof buf - 20; i++)
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", words[rand() % 15], rand() % 3 ? " " : "");
        }
        graph_link_opts_t fo = {.hops = rand() % 3, .max_facts = 1 + (size_t)(rand() % 40), .max_mentions = 8};
        assert_int_equal(graph_link_text(l, r, buf, n, &fo, &res, &err), 0);
        assert_true(res.nmentions <= 8);
        assert_true(res.nfacts <= fo.max_facts);
        for (size_t i = 0; i < res.nmentions; i++) {
            assert_true(res.mentions[i].start < res.mentions[i].end && res.mentions[i].end <= n);
            if (i) assert_true(res.mentions[i - 1].end <= res.mentions[i].start);
        }
        graph_link_result_deinit(&res);
    }
    graph_linker_destroy(&l);
    assert_null(l);
    graph_reader_end(&r);
}

static void test_link_labels(void **state) {
    (void)state;
    graph_store_t *s = store_new("labels");
    static const char *const rows[] = {
        "<http://e.org/id/Q1>", "<" RDFS_LABEL ">", "\"New York City\"@en",
        "<http://e.org/id/Q1>", "<" RDFS_LABEL ">", "\"NYC\"",
        "<http://e.org/id/Q2>", "<" RDFS_LABEL ">", "\"New York\"@en",
        "<http://e.org/id/Q1>", "<http://e.org/p/locatedIn>", "<http://e.org/id/Q2>",
        "<http://e.org/id/CellFunction>", "<http://e.org/p/part_of>", "<http://e.org/id/Q2>",
        "<http://e.org/id/Q2>", "<http://e.org/p/population>", "\"19500000\"^^<" XSD "integer>",
    };
    add_nt(s, rows, 6);
    graph_reader_t *r = NULL;
    graph_linker_t *l = linker_for(s, &r);
    llmos_error_t err = {0};
    graph_link_result_t res;
    const char *text = "From new york city to New York, nyc; the cell-function and CELL FUNCTION.";
    assert_int_equal(graph_link_text(l, r, text, strlen(text), NULL, &res, &err), 0);
    assert_int_equal(res.nmentions, 5);
    mention_is(&res, 0, text, "new york city", "http://e.org/id/Q1");
    mention_is(&res, 1, text, "New York", "http://e.org/id/Q2");
    mention_is(&res, 2, text, "nyc", "http://e.org/id/Q1");
    mention_is(&res, 3, text, "cell-function", "http://e.org/id/CellFunction");
    mention_is(&res, 4, text, "CELL FUNCTION", "http://e.org/id/CellFunction");
    /* sentences use the labels (English preferred) and readable local names */
    int found = 0;
    for (size_t i = 0; i < res.nfacts; i++) {
        if (strcmp(res.facts[i].sentence, "New York City located In New York.") == 0) found |= 1;
        if (strcmp(res.facts[i].sentence, "Cell Function part of New York.") == 0) found |= 2;
        if (strcmp(res.facts[i].sentence, "New York population 19500000.") == 0) found |= 4;
    }
    assert_int_equal(found, 7);
    graph_link_result_deinit(&res);
    graph_linker_destroy(&l);
    graph_reader_end(&r);
    graph_store_close(&s);
}

/* ------------------------------------------------- caps and edge cases --- */

static int stop_now(void *ctx) {
    return *(int *)ctx;
}

/* A cross join over UMLS (27 M rows) is refused as soon as the result passes
 * the cap, with the rows so far; memory stays near the cap. */
static void test_exec_caps(void **state) {
    (void)state;
    llmos_error_t err = {0};
    graph_reader_t *r = NULL;
    assert_int_equal(graph_reader_begin(umls, &r, &err), 0);
    const char *cross = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }";
    sparql_exec_opts_t o = {.max_result_bytes = 1u << 20, .cap_name = "test_cap"};
    char *out = (char *)"unset";
    size_t len = 7;
    uint64_t t0 = llmos_now_ns();
    for (int fmt = 0; fmt < 2; fmt++) {
        assert_int_equal(sparql_query_run(r, cross, strlen(cross), (sparql_format)fmt, &o, &out, &len, &err),
                         LLMOS_ETOOBIG);
        assert_null(out);
        assert_non_null(strstr(err.msg, "over the 1048576-byte cap (test_cap) after "));
        assert_non_null(strstr(err.msg, "rows"));
        assert_non_null(strstr(err.msg, "LIMIT"));
    }
    assert_true(llmos_now_ns() - t0 < 2000u * 1000000u);
    /* the writer's own cap, counted across flushes to a file */
    sparql_query_t *q = parse_ok(cross);
    FILE *f = tmpfile();
    assert_non_null(f);
    sparql_writer_t w;
    sparql_writer_init(&w, SPARQL_FORMAT_TSV, f, &err);
    w.max_bytes = 300000; /* several 64 KiB flushes */
    sparql_sink_t sink = sparql_writer_sink(&w);
    sparql_exec_stats_t st;
    assert_int_equal(sparql_query_execute(r, q, NULL, &sink, &st, &err), LLMOS_ETOOBIG);
    assert_non_null(strstr(err.msg, "over the 300000-byte cap after "));
    assert_null(strstr(err.msg, "()"));
    char want[64];
    snprintf(want, sizeof want, "after %llu rows", (unsigned long long)(st.rows - 1));
    assert_non_null(strstr(err.msg, want)); /* the rows written before the one refused */
    fflush(f);
    long written = ftell(f);
    assert_true(written > 0 && written <= 300000);
    fclose(f);
    sparql_writer_deinit(&w);
    sparql_query_destroy(&q);
    /* under the cap: answered whole, same as without one */
    const char *small_q = "SELECT * WHERE { ?a ?b ?c } LIMIT 10";
    char *capped = NULL, *plain = NULL;
    o.max_result_bytes = 4096;
    assert_int_equal(
        sparql_query_run(r, small_q, strlen(small_q), SPARQL_FORMAT_JSON, &o, &capped, NULL, &err), 0);
    assert_int_equal(
        sparql_query_run(r, small_q, strlen(small_q), SPARQL_FORMAT_JSON, NULL, &plain, NULL, &err), 0);
    assert_string_equal(capped, plain);
    free(capped);
    free(plain);
    /* a cap smaller than the header alone */
    o.max_result_bytes = 3;
    assert_int_equal(sparql_query_run(r, small_q, strlen(small_q), SPARQL_FORMAT_TSV, &o, &out, NULL, &err),
                     LLMOS_ETOOBIG);
    assert_non_null(strstr(err.msg, "after 0 rows"));
    /* DISTINCT with a huge OFFSET writes nothing, but its table is capped */
    const char *skip = "SELECT DISTINCT * WHERE { ?a ?b ?c . ?d ?e ?f } OFFSET 100000000";
    o.max_result_bytes = 1u << 20;
    assert_int_equal(sparql_query_run(r, skip, strlen(skip), SPARQL_FORMAT_TSV, &o, &out, NULL, &err),
                     LLMOS_ETOOBIG);
    assert_non_null(strstr(err.msg, "DISTINCT needs more than the 1048576-byte result cap (test_cap)"));
    /* the interrupt callback stops a query that scans without writing */
    const char *idle = "SELECT ?a WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i FILTER(?a = ?d && ?a != ?d) }";
    int stop = 1;
    sparql_exec_opts_t io = {.interrupted = stop_now, .interrupt_ctx = &stop};
    t0 = llmos_now_ns();
    assert_int_equal(sparql_query_run(r, idle, strlen(idle), SPARQL_FORMAT_TSV, &io, &out, NULL, &err),
                     LLMOS_ECANCELED);
    assert_non_null(strstr(err.msg, "interrupted"));
    assert_true(llmos_now_ns() - t0 < 1000u * 1000000u);
    stop = 0;
    io.deadline_ns = llmos_now_ns() + 30u * 1000000u; /* not interrupted: runs to its deadline */
    assert_int_equal(sparql_query_run(r, idle, strlen(idle), SPARQL_FORMAT_TSV, &io, &out, NULL, &err),
                     LLMOS_ETIMEDOUT);
    graph_reader_end(&r);
}

/* An empty basic graph pattern has exactly one solution, the empty one. */
static void test_exec_empty_bgp(void **state) {
    (void)state;
    collect_t *c = malloc(sizeof *c);
    static const char *const one[] = {"SELECT * {}",          "SELECT * WHERE {}",
                                      "SELECT * WHERE { }",   "SELECT * { FILTER(true) }",
                                      "SELECT DISTINCT * {}", "SELECT * {} LIMIT 5"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        assert_int_equal(run(umls, one[i], c, NULL), 0);
        assert_int_equal(c->n, 1);
        assert_int_equal(c->head_cols, 0);
        assert_string_equal(c->rows[0], "");
    }
    assert_int_equal(run(umls, "SELECT ?x {}", c, NULL), 0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->head_cols, 1);
    assert_string_equal(c->rows[0], "-"); /* unbound */
    static const char *const none[] = {"SELECT * {} LIMIT 0", "SELECT * {} OFFSET 1",
                                       "SELECT * { FILTER(false) }"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_int_equal(run(umls, none[i], c, NULL), 0);
        assert_int_equal(c->n, 0);
    }
    assert_int_equal(expect_ask(umls, "ASK {}"), 1);
    assert_int_equal(expect_ask(umls, "ASK { FILTER(false) }"), 0);
    free(c);
    /* well-formed output: TSV an empty header line and one empty row;
     * JSON no variable and one empty binding */
    char *tsv = write_result(umls, "SELECT * {}", SPARQL_FORMAT_TSV);
    assert_string_equal(tsv, "\n\n");
    free(tsv);
    char *json = write_result(umls, "SELECT * WHERE {}", SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{\"vars\":[]},\"results\":{\"bindings\":[{}]}}\n");
    free(json);
    tsv = write_result(umls, "SELECT ?x {}", SPARQL_FORMAT_TSV);
    assert_string_equal(tsv, "?x\n\n");
    free(tsv);
    json = write_result(umls, "SELECT ?x ?y {}", SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{\"vars\":[\"x\",\"y\"]},\"results\":{\"bindings\":[{}]}}\n");
    free(json);
    json = write_result(umls, "SELECT * {} LIMIT 0", SPARQL_FORMAT_JSON);
    assert_string_equal(json, "{\"head\":{\"vars\":[]},\"results\":{\"bindings\":[]}}\n");
    free(json);
}

/* max_facts and max_mentions of any size; hops 0 facts; no mention. */
static void test_link_caps(void **state) {
    (void)state;
    graph_reader_t *r = NULL;
    graph_linker_t *l = linker_for(umls, &r);
    llmos_error_t err = {0};
    graph_link_result_t res, ref;
    const char *text = "virus and disease or syndrome, bird, alga and cell function";
    graph_link_opts_t huge = {.hops = 2, .max_facts = (size_t)UINT32_MAX, .max_mentions = SIZE_MAX};
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &huge, &res, &err), 0);
    graph_link_opts_t cap = {.hops = 2, .max_facts = GRAPH_LINK_FACTS_MAX};
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &cap, &ref, &err), 0);
    assert_int_equal(res.nmentions, 5);
    assert_true(res.nfacts > 20 && res.nfacts <= GRAPH_LINK_FACTS_MAX);
    assert_int_equal(res.nfacts, ref.nfacts);
    for (size_t i = 0; i < res.nfacts; i++)
        assert_string_equal(res.facts[i].sentence, ref.facts[i].sentence);
    graph_link_result_deinit(&res);
    graph_link_result_deinit(&ref);
    huge.max_facts = SIZE_MAX;
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &huge, &res, &err), 0);
    assert_true(res.nfacts > 20);
    graph_link_result_deinit(&res);
    /* hops 0: only facts with both ends mentioned; hops 1 adds around them */
    text = "Can a virus cause a disease or syndrome?";
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &(graph_link_opts_t){.hops = 0}, &res, &err),
                     0);
    assert_int_equal(res.nmentions, 2);
    assert_true(res.nfacts >= 1);
    int causes = 0;
    for (size_t i = 0; i < res.nfacts; i++) {
        assert_int_equal(res.facts[i].hop, 0);
        causes += strcmp(res.facts[i].sentence, "virus causes disease or syndrome.") == 0;
    }
    assert_int_equal(causes, 1);
    size_t hop0 = res.nfacts;
    graph_link_result_deinit(&res);
    assert_int_equal(graph_link_text(l, r, text, strlen(text), &(graph_link_opts_t){.hops = 1}, &res, &err),
                     0);
    assert_true(res.nfacts > hop0);
    graph_link_result_deinit(&res);
    /* one mention: no hop-0 fact; the default (opts NULL: 1 hop) has some */
    assert_int_equal(graph_link_text(l, r, "virus", 5, &(graph_link_opts_t){.hops = 0}, &res, &err), 0);
    assert_int_equal(res.nmentions, 1);
    assert_int_equal(res.nfacts, 0);
    graph_link_result_deinit(&res);
    assert_int_equal(graph_link_text(l, r, "virus", 5, NULL, &res, &err), 0);
    assert_int_equal(res.nfacts, GRAPH_LINK_DEFAULT_FACTS);
    graph_link_result_deinit(&res);
    /* no mention: an empty, valid answer at every hops setting */
    static const char *const nothing[] = {"Lily saw", "", " ", "\xff\xfe", "saw\0virus"};
    for (size_t k = 0; k < sizeof nothing / sizeof nothing[0]; k++) {
        for (int h = 0; h <= 2; h++) {
            size_t n = k == 4 ? 3 : strlen(nothing[k]);
            assert_int_equal(
                graph_link_text(l, r, nothing[k], n, &(graph_link_opts_t){.hops = h}, &res, &err), 0);
            assert_int_equal(res.nmentions, 0);
            assert_int_equal(res.nfacts, 0);
            char *json = NULL;
            size_t len = 0;
            assert_int_equal(graph_link_to_json(&res, nothing[k], n, &json, &len, &err), 0);
            assert_string_equal(json, "{\"mentions\":[],\"facts\":[]}");
            assert_int_equal(len, strlen(json));
            free(json);
            graph_link_result_deinit(&res);
        }
    }
    graph_linker_destroy(&l);
    graph_reader_end(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_select),   cmocka_unit_test(test_parse_ask_star),
        cmocka_unit_test(test_parse_errors),   cmocka_unit_test(test_parse_fuzz),
        cmocka_unit_test(test_exec_bgp),       cmocka_unit_test(test_exec_filter),
        cmocka_unit_test(test_exec_modifiers), cmocka_unit_test(test_exec_plan),
        cmocka_unit_test(test_exec_deadline),  cmocka_unit_test(test_write_formats),
        cmocka_unit_test(test_link_umls),      cmocka_unit_test(test_link_labels),
        cmocka_unit_test(test_exec_caps),      cmocka_unit_test(test_exec_empty_bgp),
        cmocka_unit_test(test_link_caps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
