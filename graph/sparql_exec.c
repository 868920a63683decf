/*
 * sparql_exec.c — plans a basic graph pattern by selectivity and runs it as
 * index nested-loop joins over the store's range scans.
 *
 * Planning (greedy, once per query):
 *   - every constant is looked up once; a constant that is not in the store
 *     makes the whole BGP empty (a BGP is a conjunction);
 *   - each pattern's base cardinality is the store's exact range count over
 *     its constants (capped, see sparql_exec_opts_t.count_cap);
 *   - a position bound by an earlier pattern scales that estimate down (a
 *     subject/object by 1/100, a predicate by 1/10, a repeated variable by
 *     1/100), since it will be a prefix of the scan at run time;
 *   - the next pattern is the cheapest among those sharing a variable with
 *     what is bound so far; only when none does (a disconnected part) is a
 *     cartesian product unavoidable and the cheapest of all is taken.
 * A FILTER(?v = <iri>) conjunct pins ?v to the IRI before planning (see
 * pin_vars).  FILTERs run at the first step after which all their variables are bound
 * (a FILTER on a variable no pattern binds sees it unbound: an error, so
 * false, as SPARQL says).
 *
 * Execution: step i opens one scan with the constants and the bindings of
 * steps < i as its prefix; each triple binds the step's new variables, the
 * step's filters run, and step i+1 follows.  Bindings are one id array;
 * rows are handed to the sink as ids (decoding is the writer's job), so a
 * row costs no allocation.  DISTINCT keeps a hash table of the projected
 * rows seen (the only memory that grows with the result; it is held under
 * opts->max_result_bytes).  The deadline, cancel flag and interrupt callback
 * are checked every 256 triples.
 *
 * FILTER semantics (SPARQL's three-valued logic: true, false, error):
 * `=` is sameTerm for IRIs and blank nodes; for literals it compares values
 * when both are numeric (xsd integer/decimal/float/double and derived
 * integer types), both simple strings, both language-tagged (tag compared
 * case-insensitively) or both booleans; a language-tagged literal and any
 * other literal, or a boolean and a number, are different (disjoint value
 * spaces); literals of any other pair of types (a number and a string, an
 * unknown datatype) are equal when they are the same term and an error
 * otherwise (SPARQL's RDFterm-equal; roqet agrees).  `!=` is the
 * negation (an error stays an error); unbound variables are errors; `&&`,
 * `||`, `!` follow SPARQL's truth tables; a FILTER keeps a row only when
 * true.
 */
#include "graph/sparql.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph/sparql_internal.h"
#include "runtime/base/clock.h"

#define XSD "http://www.w3.org/2001/XMLSchema#"
#define STOP_OK 1 /* internal: LIMIT reached or ASK answered */

typedef struct step {
    int pattern;            /* index into q->patterns */
    graph_id_t cid[3];      /* constants (0 where a variable) */
    int var[3];             /* variable per position, -1 for a constant */
    int binds[3];           /* 1 where this step binds the variable first */
    int same[3];            /* j+1 when position j < k binds the same variable here, else 0 */
    const sparql_expr_t **filters; /* run after this step binds */
    int nfilters;
} step_t;

typedef struct distinct_set {
    graph_id_t *rows;  /* nrows × ncols ids */
    size_t nrows, cap_rows;
    uint32_t *slots;   /* index+1 into rows, 0 = empty */
    size_t nslots;     /* power of two */
} distinct_set_t;

typedef struct exec {
    graph_reader_t *r;
    const sparql_query_t *q;
    const sparql_exec_opts_t *opts;
    const sparql_sink_t *sink;
    sparql_exec_stats_t *stats;
    llmos_error_t *err;
    step_t *steps;
    int nsteps;
    const sparql_expr_t **final_filters; /* filters with a variable no step binds */
    int nfinal;
    const sparql_expr_t **filter_mem;
    graph_id_t *bind;  /* per variable, 0 = unbound */
    graph_id_t *pin;   /* per variable: the IRI a FILTER pins it to, or 0 */
    graph_id_t *row;   /* projected row */
    uint64_t skipped, emitted;
    uint32_t tick;
    distinct_set_t seen;
    /* filter constants: ids looked up once */
    const sparql_term_t **fconst;
    graph_id_t *fconst_id;
    int nfconst;
} exec_t;

/* ------------------------------------------------------ term helpers --- */

static graph_term_t term_from_ast(const sparql_term_t *t) {
    graph_term_t g;
    memset(&g, 0, sizeof g);
    g.kind = t->kind == SPARQL_TERM_IRI ? GRAPH_TERM_IRI : GRAPH_TERM_LITERAL;
    g.value = t->value;
    g.len = t->len;
    g.lang = t->lang;
    g.lang_len = t->lang ? strlen(t->lang) : 0;
    g.datatype = t->datatype;
    g.datatype_len = t->datatype ? strlen(t->datatype) : 0;
    return g;
}

/* Looks a constant up; *id = 0 when the store does not have it. */
static int lookup_const(exec_t *ex, const sparql_term_t *t, graph_id_t *id) {
    graph_term_t g = term_from_ast(t);
    int rc = graph_term_lookup(ex->r, &g, id, ex->err);
    if (rc == LLMOS_ENOTFOUND) {
        llmos_error_clear(ex->err);
        *id = 0;
        return 0;
    }
    return rc;
}

/* ------------------------------------------------------------ filters --- */

typedef enum { V_FALSE = 0, V_TRUE = 1, V_ERROR = 2 } tri_t;

typedef struct operand {
    int kind;          /* 0 error, 1 term, 2 boolean */
    int boolean;
    graph_id_t id;     /* store id, 0 when the constant is not in the store */
    graph_term_t term; /* valid when kind == 1 and decoded */
    int decoded;
} operand_t;

static int dt_is(const graph_term_t *t, const char *local) {
    size_t n = strlen(XSD), m = strlen(local);
    return t->datatype && t->datatype_len == n + m && memcmp(t->datatype, XSD, n) == 0 &&
           memcmp(t->datatype + n, local, m) == 0;
}

static int is_numeric(const graph_term_t *t) {
    static const char *const types[] = {"integer", "decimal", "float", "double", "int", "long", "short", "byte",
                                        "nonNegativeInteger", "nonPositiveInteger", "negativeInteger",
                                        "positiveInteger", "unsignedLong", "unsignedInt", "unsignedShort",
                                        "unsignedByte", NULL};
    if (t->kind != GRAPH_TERM_LITERAL || !t->datatype) return 0;
    for (int i = 0; types[i]; i++)
        if (dt_is(t, types[i])) return 1;
    return 0;
}

/* Parses a numeric literal's value; 0 when its lexical form is not a number. */
static int numeric_value(const graph_term_t *t, double *v) {
    char buf[128];
    if (t->len == 0 || t->len >= sizeof buf) return 0;
    memcpy(buf, t->value, t->len);
    buf[t->len] = '\0';
    char *end;
    *v = strtod(buf, &end);
    while (*end == ' ') end++;
    return *end == '\0' && !isnan(*v);
}

static int is_simple(const graph_term_t *t) {
    return t->kind == GRAPH_TERM_LITERAL && !t->lang && (!t->datatype || dt_is(t, "string"));
}

static int bool_value(const graph_term_t *t, int *b) {
    if (t->len == 4 && memcmp(t->value, "true", 4) == 0) *b = 1;
    else if (t->len == 1 && t->value[0] == '1') *b = 1;
    else if (t->len == 5 && memcmp(t->value, "false", 5) == 0) *b = 0;
    else if (t->len == 1 && t->value[0] == '0') *b = 0;
    else return 0;
    return 1;
}

static int operand_decode(exec_t *ex, operand_t *o) {
    if (o->decoded || o->kind != 1) return 0;
    if (o->id) {
        int rc = graph_term_get(ex->r, o->id, &o->term, ex->err);
        if (rc) return rc;
    }
    o->decoded = 1;
    return 0;
}

static int eval(exec_t *ex, const sparql_expr_t *e, tri_t *out);

static int eval_operand(exec_t *ex, const sparql_expr_t *e, operand_t *o) {
    memset(o, 0, sizeof *o);
    if (e->op != SPARQL_EXPR_TERM) {
        tri_t v;
        int rc = eval(ex, e, &v);
        if (rc) return rc;
        if (v == V_ERROR) return 0;
        o->kind = 2;
        o->boolean = v == V_TRUE;
        return 0;
    }
    const sparql_term_t *t = &e->term;
    if (t->kind == SPARQL_TERM_VAR) {
        graph_id_t id = ex->bind[t->var];
        if (!id) return 0; /* unbound: error */
        o->kind = 1;
        o->id = id;
        return 0;
    }
    o->kind = 1;
    for (int i = 0; i < ex->nfconst; i++) {
        if (ex->fconst[i] == t) {
            o->id = ex->fconst_id[i];
            break;
        }
    }
    if (!o->id) {
        /* not in the store: compare by value from the query text */
        o->term = term_from_ast(t);
        o->decoded = 1;
    }
    return 0;
}

/* RDFterm-equal with value comparison for the types listed at the top. */
static int equal(exec_t *ex, operand_t *a, operand_t *b, tri_t *out) {
    if (a->kind == 0 || b->kind == 0) {
        *out = V_ERROR;
        return 0;
    }
    if (a->kind == 1 && b->kind == 1 && a->id && a->id == b->id) {
        *out = V_TRUE;
        return 0;
    }
    int rc;
    if ((rc = operand_decode(ex, a)) || (rc = operand_decode(ex, b))) return rc;
    if (a->kind == 2 || b->kind == 2) {
        operand_t *t = a->kind == 2 ? b : a;
        int bv;
        if (a->kind == 2 && b->kind == 2) *out = a->boolean == b->boolean ? V_TRUE : V_FALSE;
        else if (t->term.kind == GRAPH_TERM_LITERAL && dt_is(&t->term, "boolean") && bool_value(&t->term, &bv))
            *out = bv == (a->kind == 2 ? a->boolean : b->boolean) ? V_TRUE : V_FALSE;
        else *out = V_ERROR;
        return 0;
    }
    const graph_term_t *x = &a->term, *y = &b->term;
    if (x->kind != GRAPH_TERM_LITERAL || y->kind != GRAPH_TERM_LITERAL) {
        *out = graph_term_equal(x, y) ? V_TRUE : V_FALSE;
        return 0;
    }
    if (is_numeric(x) && is_numeric(y)) {
        double u, v;
        if (!numeric_value(x, &u) || !numeric_value(y, &v)) *out = graph_term_equal(x, y) ? V_TRUE : V_ERROR;
        else *out = u == v ? V_TRUE : V_FALSE;
        return 0;
    }
    if (is_simple(x) && is_simple(y)) {
        *out = x->len == y->len && memcmp(x->value, y->value, x->len) == 0 ? V_TRUE : V_FALSE;
        return 0;
    }
    if (x->lang && y->lang) {
        *out = x->lang_len == y->lang_len && strncasecmp(x->lang, y->lang, x->lang_len) == 0 && x->len == y->len &&
                       memcmp(x->value, y->value, x->len) == 0
                   ? V_TRUE
                   : V_FALSE;
        return 0;
    }
    int bx, by;
    if (dt_is(x, "boolean") && dt_is(y, "boolean") && bool_value(x, &bx) && bool_value(y, &by)) {
        *out = bx == by ? V_TRUE : V_FALSE;
        return 0;
    }
    /* rdf:langString against another literal, and booleans against numbers:
     * known, disjoint value spaces, so different (as rasqal and Jena say) */
    if (x->lang || y->lang || (dt_is(x, "boolean") && is_numeric(y)) || (is_numeric(x) && dt_is(y, "boolean"))) {
        *out = V_FALSE;
        return 0;
    }
    *out = graph_term_equal(x, y) ? V_TRUE : V_ERROR;
    return 0;
}

/* Effective boolean value of a lone term in a FILTER. */
static int ebv(exec_t *ex, operand_t *o, tri_t *out) {
    if (o->kind == 0) {
        *out = V_ERROR;
        return 0;
    }
    if (o->kind == 2) {
        *out = o->boolean ? V_TRUE : V_FALSE;
        return 0;
    }
    int rc = operand_decode(ex, o);
    if (rc) return rc;
    const graph_term_t *t = &o->term;
    int b;
    double v;
    if (t->kind != GRAPH_TERM_LITERAL) *out = V_ERROR;
    else if (dt_is(t, "boolean")) *out = bool_value(t, &b) ? (b ? V_TRUE : V_FALSE) : V_FALSE;
    else if (is_numeric(t)) *out = numeric_value(t, &v) && v != 0 ? V_TRUE : V_FALSE;
    else if (is_simple(t) || t->lang) *out = t->len ? V_TRUE : V_FALSE;
    else *out = V_ERROR;
    return 0;
}

static int eval(exec_t *ex, const sparql_expr_t *e, tri_t *out) {
    int rc;
    tri_t a, b;
    operand_t x, y;
    switch (e->op) {
    case SPARQL_EXPR_TERM:
        if ((rc = eval_operand(ex, e, &x))) return rc;
        return ebv(ex, &x, out);
    case SPARQL_EXPR_EQ:
    case SPARQL_EXPR_NE:
        if ((rc = eval_operand(ex, e->a, &x)) || (rc = eval_operand(ex, e->b, &y))) return rc;
        if ((rc = equal(ex, &x, &y, &a))) return rc;
        *out = e->op == SPARQL_EXPR_EQ || a == V_ERROR ? a : (a == V_TRUE ? V_FALSE : V_TRUE);
        return 0;
    case SPARQL_EXPR_NOT:
        if ((rc = eval(ex, e->a, &a))) return rc;
        *out = a == V_ERROR ? V_ERROR : (a == V_TRUE ? V_FALSE : V_TRUE);
        return 0;
    case SPARQL_EXPR_AND:
        if ((rc = eval(ex, e->a, &a))) return rc;
        if (a == V_FALSE) {
            *out = V_FALSE;
            return 0;
        }
        if ((rc = eval(ex, e->b, &b))) return rc;
        *out = b == V_FALSE ? V_FALSE : (a == V_ERROR || b == V_ERROR ? V_ERROR : V_TRUE);
        return 0;
    case SPARQL_EXPR_OR:
        if ((rc = eval(ex, e->a, &a))) return rc;
        if (a == V_TRUE) {
            *out = V_TRUE;
            return 0;
        }
        if ((rc = eval(ex, e->b, &b))) return rc;
        *out = b == V_TRUE ? V_TRUE : (a == V_ERROR || b == V_ERROR ? V_ERROR : V_FALSE);
        return 0;
    }
    return llmos_error_set(ex->err, LLMOS_EINTERNAL, "unknown filter operator %d", (int)e->op);
}

/* 1 when every filter holds, 0 when one does not, or a negative error. */
static int filters_pass(exec_t *ex, const sparql_expr_t **fs, int n) {
    for (int i = 0; i < n; i++) {
        tri_t v;
        int rc = eval(ex, fs[i], &v);
        if (rc) return rc;
        if (v != V_TRUE) return 0;
    }
    return 1;
}

static void expr_vars(const sparql_expr_t *e, unsigned char *used) {
    if (!e) return;
    if (e->op == SPARQL_EXPR_TERM) {
        if (e->term.kind == SPARQL_TERM_VAR) used[e->term.var] = 1;
        return;
    }
    expr_vars(e->a, used);
    expr_vars(e->b, used);
}

static int expr_consts(exec_t *ex, const sparql_expr_t *e) {
    if (!e) return 0;
    if (e->op == SPARQL_EXPR_TERM) {
        if (e->term.kind == SPARQL_TERM_VAR) return 0;
        ex->fconst[ex->nfconst] = &e->term;
        return lookup_const(ex, &e->term, &ex->fconst_id[ex->nfconst++]);
    }
    int rc = expr_consts(ex, e->a);
    return rc ? rc : expr_consts(ex, e->b);
}

static int expr_count_consts(const sparql_expr_t *e) {
    if (!e) return 0;
    if (e->op == SPARQL_EXPR_TERM) return e->term.kind != SPARQL_TERM_VAR;
    return expr_count_consts(e->a) + expr_count_consts(e->b);
}

/* ----------------------------------------------------------- distinct --- */

static uint64_t row_hash(const graph_id_t *row, int n) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n; i++) {
        h ^= row[i] + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        h *= 0xFF51AFD7ED558CCDull;
    }
    return h ^ (h >> 33);
}

/* The DISTINCT table may not grow past the result cap: with a large OFFSET
 * it fills without a row being written, so the writer's cap cannot see it. */
static int distinct_cap(exec_t *ex, size_t slots, size_t rows, size_t w) {
    uint64_t cap = ex->opts ? ex->opts->max_result_bytes : 0;
    uint64_t need = (uint64_t)slots * sizeof(uint32_t) + (uint64_t)rows * w * sizeof(graph_id_t);
    if (!cap || need <= cap) return 0;
    const char *name = ex->opts->cap_name;
    return llmos_error_set(
        ex->err, LLMOS_ETOOBIG,
        "DISTINCT needs more than the %llu-byte result cap%s%s%s after %llu rows: add a LIMIT, "
        "narrow the query%s%s",
        (unsigned long long)cap, name ? " (" : "", name ? name : "", name ? ")" : "",
        (unsigned long long)ex->seen.nrows, name ? " or raise " : "", name ? name : "");
}

/* 1 when row is new (and now remembered), 0 when seen, or an error
 * (LLMOS_ENOMEM, LLMOS_ETOOBIG past the result cap; err is set). */
static int distinct_add(exec_t *ex, const graph_id_t *row, int n) {
    distinct_set_t *d = &ex->seen;
    size_t w = (size_t)(n ? n : 1);
    if ((d->nrows + 1) * 2 > d->nslots) {
        size_t ns = d->nslots ? d->nslots * 2 : 1024;
        int rc = distinct_cap(ex, ns, d->cap_rows, w);
        if (rc) return rc;
        uint32_t *slots = calloc(ns, sizeof *slots);
        if (!slots) return llmos_error_set(ex->err, LLMOS_ENOMEM, "out of memory for DISTINCT rows");
        for (size_t i = 0; i < d->nrows; i++) {
            size_t k = row_hash(d->rows + i * w, n) & (ns - 1);
            while (slots[k]) k = (k + 1) & (ns - 1);
            slots[k] = (uint32_t)(i + 1);
        }
        free(d->slots);
        d->slots = slots;
        d->nslots = ns;
    }
    size_t k = row_hash(row, n) & (d->nslots - 1);
    while (d->slots[k]) {
        if (memcmp(d->rows + (d->slots[k] - 1) * w, row, (size_t)n * sizeof *row) == 0) return 0;
        k = (k + 1) & (d->nslots - 1);
    }
    if (d->nrows == d->cap_rows) {
        size_t nc = d->cap_rows ? d->cap_rows * 2 : 512;
        if (nc > UINT32_MAX - 1)
            return llmos_error_set(ex->err, LLMOS_ETOOBIG, "DISTINCT over %u rows",
                                   (unsigned)(UINT32_MAX - 1));
        int rc = distinct_cap(ex, d->nslots, nc, w);
        if (rc) return rc;
        graph_id_t *rows = realloc(d->rows, nc * w * sizeof *rows);
        if (!rows) return llmos_error_set(ex->err, LLMOS_ENOMEM, "out of memory for DISTINCT rows");
        d->rows = rows;
        d->cap_rows = nc;
    }
    memcpy(d->rows + d->nrows * w, row, (size_t)n * sizeof *row);
    d->slots[k] = (uint32_t)(++d->nrows);
    return 1;
}

/* -------------------------------------------------------------- solve --- */

static int check_time(exec_t *ex) {
    if (++ex->tick & 255) return 0;
    if (ex->opts && ex->opts->cancel && *ex->opts->cancel)
        return llmos_error_set(ex->err, LLMOS_ECANCELED, "query canceled after %llu rows",
                               (unsigned long long)ex->emitted);
    if (ex->opts && ex->opts->interrupted && ex->opts->interrupted(ex->opts->interrupt_ctx))
        return llmos_error_set(ex->err, LLMOS_ECANCELED, "query interrupted after %llu rows",
                               (unsigned long long)ex->emitted);
    if (ex->opts && ex->opts->deadline_ns && llmos_now_ns() >= ex->opts->deadline_ns)
        return llmos_error_set(ex->err, LLMOS_ETIMEDOUT, "query deadline passed after %llu rows",
                               (unsigned long long)ex->emitted);
    return 0;
}

static int solution(exec_t *ex) {
    const sparql_query_t *q = ex->q;
    int rc = filters_pass(ex, ex->final_filters, ex->nfinal);
    if (rc <= 0) return rc;
    for (int i = 0; i < q->nproject; i++) ex->row[i] = ex->bind[q->project[i]];
    if (q->distinct && q->form == SPARQL_SELECT) {
        rc = distinct_add(ex, ex->row, q->nproject);
        if (rc <= 0) return rc;
    }
    if (ex->skipped < q->offset) {
        ex->skipped++;
        return 0;
    }
    if (ex->emitted >= q->limit) return STOP_OK;
    ex->emitted++;
    if (q->form == SPARQL_ASK) return STOP_OK;
    if (ex->stats) ex->stats->rows++;
    rc = ex->sink->row ? ex->sink->row(ex->sink->ctx, ex->r, ex->row, q->nproject) : 0;
    if (rc) return rc;
    return ex->emitted >= q->limit ? STOP_OK : 0;
}

static int solve(exec_t *ex, int level) {
    if (level == ex->nsteps) return solution(ex);
    const step_t *st = &ex->steps[level];
    graph_id_t pat[3];
    for (int k = 0; k < 3; k++)
        pat[k] = st->var[k] < 0 ? st->cid[k] : (st->binds[k] || st->same[k] ? 0 : ex->bind[st->var[k]]);
    graph_iter_t it;
    memset(&it, 0, sizeof it);
    int rc = graph_store_match(ex->r, pat[0], pat[1], pat[2], &it, ex->err);
    if (rc) return rc;
    if (ex->stats) ex->stats->scans++;
    graph_triple_t t;
    while ((rc = graph_iter_next(&it, &t, ex->err)) == 1) {
        if (ex->stats) ex->stats->scanned++;
        if ((rc = check_time(ex))) break;
        graph_id_t v[3] = {t.s, t.p, t.o};
        /* the same new variable twice in one pattern (?x :p ?x) */
        if ((st->same[1] && v[1] != v[st->same[1] - 1]) || (st->same[2] && v[2] != v[st->same[2] - 1])) continue;
        for (int k = 0; k < 3; k++)
            if (st->binds[k]) ex->bind[st->var[k]] = v[k];
        rc = filters_pass(ex, st->filters, st->nfilters);
        if (rc < 0) break;
        if (rc == 0) continue;
        if ((rc = solve(ex, level + 1))) break;
    }
    graph_iter_close(&it);
    for (int k = 0; k < 3; k++)
        if (st->binds[k]) ex->bind[st->var[k]] = 0;
    return rc;
}

/* ------------------------------------------------------------- plan --- */

static int plan(exec_t *ex, int *empty) {
    const sparql_query_t *q = ex->q;
    int n = q->npatterns;
    *empty = 0;
    uint64_t cap = ex->opts && ex->opts->count_cap ? ex->opts->count_cap : (1u << 20);
    uint64_t *base = calloc((size_t)n + 1, sizeof *base);
    unsigned char *bound = calloc((size_t)q->nvars + 1, 1);
    unsigned char *done = calloc((size_t)n + 1, 1);
    int rc = 0;
    if (!base || !bound || !done) {
        rc = llmos_error_set(ex->err, LLMOS_ENOMEM, "out of memory planning the query");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        step_t *st = &ex->steps[i];
        const sparql_term_t *pt[3] = {&q->patterns[i].s, &q->patterns[i].p, &q->patterns[i].o};
        for (int k = 0; k < 3; k++) {
            st->var[k] = pt[k]->kind == SPARQL_TERM_VAR ? pt[k]->var : -1;
            st->cid[k] = 0;
            if (st->var[k] < 0) {
                if ((rc = lookup_const(ex, pt[k], &st->cid[k]))) goto out;
                if (!st->cid[k]) *empty = 1;
            } else if (ex->pin[st->var[k]]) {
                /* FILTER(?v = <iri>) pinned ?v: the pattern scans with the IRI */
                st->cid[k] = ex->pin[st->var[k]];
                st->var[k] = -1;
            }
        }
    }
    if (*empty) goto out;
    for (int i = 0; i < n; i++) {
        step_t *st = &ex->steps[i];
        if ((rc = graph_store_count(ex->r, st->cid[0], st->cid[1], st->cid[2], cap, &base[i], ex->err))) goto out;
        if (base[i] == 0) {
            *empty = 1;
            goto out;
        }
    }
    /* greedy order */
    step_t *ordered = ex->steps + n; /* second half of the allocation */
    for (int s = 0; s < n; s++) {
        int best = -1, best_conn = 0;
        double best_est = 0;
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            const step_t *st = &ex->steps[i];
            double est = (double)base[i];
            int conn = 0;
            for (int k = 0; k < 3; k++) {
                if (st->var[k] < 0) continue;
                int repeated = 0;
                for (int j = 0; j < k; j++) repeated |= st->var[j] == st->var[k];
                if (bound[st->var[k]]) {
                    conn = 1;
                    est *= k == 1 ? 0.1 : 0.01;
                } else if (repeated) {
                    est *= 0.01;
                }
            }
            if (est < 1) est = 1;
            if (best < 0 || (conn && !best_conn) || (conn == best_conn && est < best_est)) {
                best = i;
                best_conn = conn;
                best_est = est;
            }
        }
        ordered[s] = ex->steps[best];
        ordered[s].pattern = best;
        done[best] = 1;
        for (int k = 0; k < 3; k++) {
            int v = ordered[s].var[k];
            ordered[s].binds[k] = 0;
            if (v < 0 || bound[v]) continue;
            int first_here = 1;
            for (int j = 0; j < k; j++) first_here &= ordered[s].var[j] != v;
            ordered[s].binds[k] = first_here;
        }
        for (int k = 0; k < 3; k++) {
            ordered[s].same[k] = 0;
            for (int j = 0; j < k && !ordered[s].same[k]; j++)
                if (ordered[s].binds[j] && ordered[s].var[j] == ordered[s].var[k]) ordered[s].same[k] = j + 1;
        }
        for (int k = 0; k < 3; k++)
            if (ordered[s].var[k] >= 0) bound[ordered[s].var[k]] = 1;
        if (ex->stats && s < 64) {
            ex->stats->order[s] = best;
            ex->stats->estimate[s] = (uint64_t)best_est;
        }
    }
    memmove(ex->steps, ordered, (size_t)n * sizeof *ordered);
out:
    free(base);
    free(bound);
    free(done);
    return rc;
}

/* FILTER(?v = <iri>) at the top of a filter's && chain holds exactly when ?v
 * is that IRI (IRIs compare as terms), so a pattern variable ?v is pinned
 * to the IRI: its patterns scan with it as a constant and it is bound from
 * the start.  (The filter still runs; it is then always true.)  An IRI the
 * store does not have, or two different pins, leave no solutions. */
static int pin_vars(exec_t *ex, const sparql_expr_t *e, const unsigned char *in_pattern, int *empty) {
    if (e->op == SPARQL_EXPR_AND) {
        int rc = pin_vars(ex, e->a, in_pattern, empty);
        return rc ? rc : pin_vars(ex, e->b, in_pattern, empty);
    }
    if (e->op != SPARQL_EXPR_EQ || e->a->op != SPARQL_EXPR_TERM || e->b->op != SPARQL_EXPR_TERM) return 0;
    const sparql_term_t *v = &e->a->term, *c = &e->b->term;
    if (v->kind != SPARQL_TERM_VAR) {
        v = &e->b->term;
        c = &e->a->term;
    }
    if (v->kind != SPARQL_TERM_VAR || c->kind != SPARQL_TERM_IRI || !in_pattern[v->var]) return 0;
    graph_id_t id;
    int rc = lookup_const(ex, c, &id);
    if (rc) return rc;
    if (!id || (ex->pin[v->var] && ex->pin[v->var] != id)) *empty = 1;
    ex->pin[v->var] = id;
    return 0;
}

static int pin_filters(exec_t *ex, int *empty) {
    const sparql_query_t *q = ex->q;
    unsigned char *in_pattern = calloc((size_t)q->nvars + 1, 1);
    if (!in_pattern) return llmos_error_set(ex->err, LLMOS_ENOMEM, "out of memory planning the query");
    for (int i = 0; i < q->npatterns; i++) {
        const sparql_term_t *pt[3] = {&q->patterns[i].s, &q->patterns[i].p, &q->patterns[i].o};
        for (int k = 0; k < 3; k++)
            if (pt[k]->kind == SPARQL_TERM_VAR) in_pattern[pt[k]->var] = 1;
    }
    int rc = 0;
    for (int f = 0; f < q->nfilters && !rc; f++) rc = pin_vars(ex, q->filters[f], in_pattern, empty);
    free(in_pattern);
    for (int v = 0; v < q->nvars; v++) ex->bind[v] = ex->pin[v];
    return rc;
}

/* Places each filter after the first step that binds all its variables. */
static int place_filters(exec_t *ex) {
    const sparql_query_t *q = ex->q;
    int nf = q->nfilters;
    if (!nf) return 0;
    ex->filter_mem = calloc((size_t)nf, sizeof *ex->filter_mem);
    unsigned char *used = calloc((size_t)q->nvars + 1, 1);
    int *level = calloc((size_t)nf, sizeof *level);
    if (!ex->filter_mem || !used || !level) {
        free(used);
        free(level);
        return llmos_error_set(ex->err, LLMOS_ENOMEM, "out of memory planning the query");
    }
    for (int f = 0; f < nf; f++) {
        memset(used, 0, (size_t)q->nvars + 1);
        expr_vars(q->filters[f], used);
        int lvl = -1; /* -1: no variables: before any step, run at solution time */
        for (int v = 0; v < q->nvars && lvl < ex->nsteps; v++) {
            if (!used[v]) continue;
            int at = ex->nsteps; /* never bound → final */
            for (int s = 0; s < ex->nsteps && at == ex->nsteps; s++)
                for (int k = 0; k < 3; k++)
                    if (ex->steps[s].var[k] == v) at = s;
            if (at > lvl) lvl = at;
        }
        level[f] = lvl < 0 || lvl >= ex->nsteps ? ex->nsteps : lvl;
    }
    /* filters of one step are contiguous in filter_mem */
    int pos = 0;
    for (int s = 0; s <= ex->nsteps; s++) {
        int start = pos;
        for (int f = 0; f < nf; f++)
            if (level[f] == s) ex->filter_mem[pos++] = q->filters[f];
        if (s < ex->nsteps) {
            ex->steps[s].filters = ex->filter_mem + start;
            ex->steps[s].nfilters = pos - start;
        } else {
            ex->final_filters = ex->filter_mem + start;
            ex->nfinal = pos - start;
        }
    }
    free(used);
    free(level);
    return 0;
}

int sparql_query_execute(graph_reader_t *r, const sparql_query_t *q, const sparql_exec_opts_t *opts,
                         const sparql_sink_t *sink, sparql_exec_stats_t *stats, llmos_error_t *err) {
    if (!r || !q || !sink) return llmos_error_set(err, LLMOS_EINVAL, "sparql_query_execute: NULL argument");
    exec_t ex;
    memset(&ex, 0, sizeof ex);
    ex.r = r;
    ex.q = q;
    ex.opts = opts;
    ex.sink = sink;
    ex.stats = stats;
    ex.err = err;
    if (stats) memset(stats, 0, sizeof *stats);
    int rc = 0, empty = 0;
    int nconst = 0;
    for (int f = 0; f < q->nfilters; f++) nconst += expr_count_consts(q->filters[f]);
    ex.steps = calloc((size_t)q->npatterns * 2 + 1, sizeof *ex.steps);
    ex.bind = calloc((size_t)q->nvars + 1, sizeof *ex.bind);
    ex.pin = calloc((size_t)q->nvars + 1, sizeof *ex.pin);
    ex.row = calloc((size_t)q->nproject + 1, sizeof *ex.row);
    ex.fconst = calloc((size_t)nconst + 1, sizeof *ex.fconst);
    ex.fconst_id = calloc((size_t)nconst + 1, sizeof *ex.fconst_id);
    if (!ex.steps || !ex.bind || !ex.pin || !ex.row || !ex.fconst || !ex.fconst_id) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "out of memory preparing the query");
        goto out;
    }
    ex.nsteps = q->npatterns;
    if (q->form == SPARQL_SELECT && sink->head) {
        const char **names = calloc((size_t)q->nproject + 1, sizeof *names);
        if (!names) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "out of memory preparing the query");
            goto out;
        }
        for (int i = 0; i < q->nproject; i++) names[i] = q->vars[q->project[i]];
        rc = sink->head(sink->ctx, names, q->nproject);
        free(names);
        if (rc) goto out;
    }
    for (int f = 0; f < q->nfilters && !rc; f++) rc = expr_consts(&ex, q->filters[f]);
    if (rc || (rc = pin_filters(&ex, &empty))) goto out;
    if (!empty && ((rc = plan(&ex, &empty)) || (rc = place_filters(&ex)))) goto out;
    if (!empty && q->limit > 0) {
        rc = solve(&ex, 0);
        if (rc == STOP_OK) rc = 0;
        if (rc) goto out;
    }
    if (q->form == SPARQL_ASK && sink->boolean && (rc = sink->boolean(sink->ctx, ex.emitted > 0))) goto out;
    if (sink->finish) rc = sink->finish(sink->ctx);
out:
    free(ex.steps);
    free(ex.bind);
    free(ex.pin);
    free(ex.row);
    free(ex.fconst);
    free(ex.fconst_id);
    free(ex.filter_mem);
    free(ex.seen.rows);
    free(ex.seen.slots);
    return rc;
}
