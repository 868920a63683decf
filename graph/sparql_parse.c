/*
 * sparql_parse.c — lexer and recursive-descent parser for the SPARQL subset
 * of sparql.h.
 *
 * The lexer hands out one token at a time with its line and column (columns
 * count code points, not bytes, so they match what an editor shows).  The
 * parser follows the SPARQL 1.1 grammar for the productions it supports and
 * stops at the first error with "line L, column C: expected X, found Y".
 * Valid SPARQL outside the subset (OPTIONAL, ORDER BY, blank nodes, ...) is
 * named as unsupported rather than reported as a syntax error.
 *
 * Everything the AST points to lives in the query's arena; the arrays are
 * grown with realloc while parsing and freed with the query.  This room never
 * touches a store.
 */
#include "graph/sparql.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/sparql_internal.h"
#include "runtime/base/utf8.h"

#define XSD "http://www.w3.org/2001/XMLSchema#"
/* Bounds evaluation's recursion: a chain of n operators is a tree n deep. */
#define EXPR_NODES_MAX 1024
#define RDF_TYPE "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

/* ------------------------------------------------------------- lexer --- */

typedef enum tok_kind {
    T_EOF = 0,
    T_IRIREF,   /* <...>; text excludes the brackets */
    T_PNAME_NS, /* prefix: */
    T_PNAME_LN, /* prefix:local */
    T_VAR,      /* ?x or $x; text excludes the sigil */
    T_STRING,   /* text is the raw body without quotes (escapes undone later) */
    T_LANGTAG,  /* @en-GB; text excludes '@' */
    T_INTEGER,
    T_DECIMAL,
    T_DOUBLE,
    T_WORD,     /* a bare word: keyword, 'a', true, false, function name */
    T_BNODE,    /* _:b or [ (unsupported) */
    T_LBRACE,
    T_RBRACE,
    T_LPAREN,
    T_RPAREN,
    T_DOT,
    T_SEMI,
    T_COMMA,
    T_STAR,
    T_EQ,
    T_NE,
    T_AND,
    T_OR,
    T_BANG,
    T_HATHAT,
    T_OTHER, /* one character we do not know here (<, >, +, ...) */
} tok_kind;

typedef struct tok {
    tok_kind kind;
    const char *text; /* points into the source */
    size_t len;
    int long_string;  /* T_STRING written with triple quotes */
    uint32_t line, col;
} tok_t;

typedef struct lexer {
    const char *p, *end;
    uint32_t line, col;
} lexer_t;

typedef struct parser {
    lexer_t lx;
    tok_t tok;            /* current (lookahead) token */
    int lex_error;        /* the lexer already filled err */
    llmos_error_t *err;
    sparql_arena_t *arena;
    /* growing arrays, moved into the query when done */
    char **vars;
    int nvars, cap_vars;
    int *project;
    int nproject, cap_project;
    sparql_pattern_t *patterns;
    int npatterns, cap_patterns;
    const sparql_expr_t **filters;
    int nfilters, cap_filters;
    /* prologue */
    struct prefix {
        const char *name; /* without ':' */
        size_t name_len;
        const char *iri;
    } *prefixes;
    int nprefixes, cap_prefixes;
    const char *base;
    llmos_buf_t scratch;  /* unescaping */
    int expr_nodes;       /* operators and operands of the FILTER being parsed */
} parser_t;

typedef struct sparql_query_impl {
    sparql_query_t q; /* first, so the public pointer is the impl pointer */
    sparql_arena_t arena;
    char **vars;
    int *project;
    sparql_pattern_t *patterns;
    const sparql_expr_t **filters;
} sparql_query_impl_t;

static void lx_advance(lexer_t *lx) {
    unsigned char c = (unsigned char)*lx->p++;
    if (c == '\n') {
        lx->line++;
        lx->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        lx->col++;
    }
}

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_hex(int c) { return c >= 0 && sparql_hex_digit((char)c) >= 0; }
/* PN_CHARS_BASE, with every non-ASCII byte accepted as part of a letter. */
static int is_pn_base(int c) { return is_alpha(c) || c >= 0x80; }
static int is_pn_u(int c) { return is_pn_base(c) || c == '_'; }
static int is_pn(int c) { return is_pn_u(c) || c == '-' || is_digit(c); }

static int lx_peek(const lexer_t *lx, size_t k) {
    return lx->p + k < lx->end ? (unsigned char)lx->p[k] : -1;
}

static void skip_space(lexer_t *lx) {
    for (;;) {
        int c = lx_peek(lx, 0);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            lx_advance(lx);
        } else if (c == '#') {
            while (lx->p < lx->end && *lx->p != '\n') lx_advance(lx);
        } else {
            return;
        }
    }
}

static int lex_fail(parser_t *ps, uint32_t line, uint32_t col, const char *what) {
    ps->lex_error = 1;
    return llmos_error_set(ps->err, LLMOS_EFORMAT, "line %u, column %u: %s", line, col, what);
}

/* PN_LOCAL after the ':' (the lexer is on its first character). */
static int scan_local(parser_t *ps) {
    lexer_t *lx = &ps->lx;
    lexer_t at_last = *lx; /* state after the longest valid local part */
    int first = 1;
    for (;;) {
        int c = lx_peek(lx, 0);
        if (c < 0) break;
        if (c == '%') {
            if (!is_hex(lx_peek(lx, 1)) || !is_hex(lx_peek(lx, 2)))
                return lex_fail(ps, lx->line, lx->col, "'%' in a prefixed name must be followed by two hex digits");
            lx_advance(lx), lx_advance(lx), lx_advance(lx);
        } else if (c == '\\') {
            int e = lx_peek(lx, 1);
            if (e < 0 || !strchr("_~.-!$&'()*+,;=/?#@%", e))
                return lex_fail(ps, lx->line, lx->col, "bad escape in a prefixed name");
            lx_advance(lx), lx_advance(lx);
        } else if (is_pn(c) || c == ':' || (first && is_digit(c))) {
            lx_advance(lx);
        } else if (c == '.' && !first) {
            lx_advance(lx);
            continue; /* a trailing '.' is not part of the name */
        } else {
            break;
        }
        first = 0;
        at_last = *lx;
    }
    *lx = at_last;
    return 0;
}

static int lex_next(parser_t *ps) {
    lexer_t *lx = &ps->lx;
    skip_space(lx);
    tok_t *t = &ps->tok;
    memset(t, 0, sizeof *t);
    t->line = lx->line;
    t->col = lx->col;
    t->text = lx->p;
    int c = lx_peek(lx, 0);
    if (c < 0) {
        t->kind = T_EOF;
        return 0;
    }
    if (c == 0) return lex_fail(ps, t->line, t->col, "NUL byte in the query");
    switch (c) {
    case '{': t->kind = T_LBRACE; lx_advance(lx); goto done;
    case '}': t->kind = T_RBRACE; lx_advance(lx); goto done;
    case '(': t->kind = T_LPAREN; lx_advance(lx); goto done;
    case ')': t->kind = T_RPAREN; lx_advance(lx); goto done;
    case ';': t->kind = T_SEMI; lx_advance(lx); goto done;
    case ',': t->kind = T_COMMA; lx_advance(lx); goto done;
    case '*': t->kind = T_STAR; lx_advance(lx); goto done;
    case '=': t->kind = T_EQ; lx_advance(lx); goto done;
    case '[': t->kind = T_BNODE; lx_advance(lx); goto done;
    default: break;
    }
    if (c == '!') {
        lx_advance(lx);
        if (lx_peek(lx, 0) == '=') {
            lx_advance(lx);
            t->kind = T_NE;
        } else {
            t->kind = T_BANG;
        }
        goto done;
    }
    if (c == '&' && lx_peek(lx, 1) == '&') {
        lx_advance(lx), lx_advance(lx);
        t->kind = T_AND;
        goto done;
    }
    if (c == '|' && lx_peek(lx, 1) == '|') {
        lx_advance(lx), lx_advance(lx);
        t->kind = T_OR;
        goto done;
    }
    if (c == '^' && lx_peek(lx, 1) == '^') {
        lx_advance(lx), lx_advance(lx);
        t->kind = T_HATHAT;
        goto done;
    }
    if (c == '<') {
        /* An IRIREF if it closes before a character IRIs may not hold;
         * otherwise the '<' operator (which the subset does not have). */
        size_t k = 1;
        int ok = 0;
        for (;; k++) {
            int d = lx_peek(lx, k);
            if (d < 0 || d <= 0x20 || strchr("<\"{}|^`", d)) break;
            if (d == '>') {
                ok = 1;
                break;
            }
        }
        if (ok) {
            lx_advance(lx);
            t->text = lx->p;
            t->len = k - 1;
            for (size_t i = 1; i < k; i++) lx_advance(lx);
            lx_advance(lx);
            t->kind = T_IRIREF;
            return 0;
        }
        if (lx_peek(lx, k) == ' ' && k > 1 && is_alpha(lx_peek(lx, 1))) {
            /* "<http://x y>" reads like an IRI with a space: say so. */
            size_t j = k;
            while (lx_peek(lx, j) >= 0 && lx_peek(lx, j) != '>' && lx_peek(lx, j) != '\n') j++;
            if (lx_peek(lx, j) == '>') return lex_fail(ps, t->line, t->col, "an IRI may not contain spaces");
        }
        t->kind = T_OTHER;
        lx_advance(lx);
        goto done;
    }
    if (c == '?' || c == '$') {
        lx_advance(lx);
        t->text = lx->p;
        int d = lx_peek(lx, 0);
        if (!(is_pn_u(d) || is_digit(d))) return lex_fail(ps, t->line, t->col, "expected a variable name after '?'");
        while ((d = lx_peek(lx, 0)) >= 0 && (is_pn_u(d) || is_digit(d))) lx_advance(lx);
        t->len = (size_t)(lx->p - t->text);
        t->kind = T_VAR;
        return 0;
    }
    if (c == '"' || c == '\'') {
        int q = c;
        int longq = lx_peek(lx, 1) == q && lx_peek(lx, 2) == q;
        size_t skip = longq ? 3 : 1;
        for (size_t i = 0; i < skip; i++) lx_advance(lx);
        t->text = lx->p;
        for (;;) {
            int d = lx_peek(lx, 0);
            if (d < 0) return lex_fail(ps, t->line, t->col, "unterminated string");
            if (d == '\\') {
                if (lx_peek(lx, 1) < 0) return lex_fail(ps, t->line, t->col, "unterminated string");
                lx_advance(lx), lx_advance(lx);
                continue;
            }
            if (!longq && (d == '\n' || d == '\r'))
                return lex_fail(ps, t->line, t->col, "line break in a short string (use \\n or triple quotes)");
            if (d == q && (!longq || (lx_peek(lx, 1) == q && lx_peek(lx, 2) == q))) {
                t->len = (size_t)(lx->p - t->text);
                for (size_t i = 0; i < skip; i++) lx_advance(lx);
                break;
            }
            lx_advance(lx);
        }
        t->kind = T_STRING;
        t->long_string = longq;
        return 0;
    }
    if (c == '@') {
        lx_advance(lx);
        t->text = lx->p;
        if (!is_alpha(lx_peek(lx, 0))) return lex_fail(ps, t->line, t->col, "expected a language tag after '@'");
        while (is_alpha(lx_peek(lx, 0))) lx_advance(lx);
        while (lx_peek(lx, 0) == '-' && (is_alpha(lx_peek(lx, 1)) || is_digit(lx_peek(lx, 1)))) {
            lx_advance(lx);
            while (is_alpha(lx_peek(lx, 0)) || is_digit(lx_peek(lx, 0))) lx_advance(lx);
        }
        t->len = (size_t)(lx->p - t->text);
        t->kind = T_LANGTAG;
        return 0;
    }
    if (is_digit(c) || ((c == '+' || c == '-' || c == '.') && (is_digit(lx_peek(lx, 1)) ||
                                                               (c != '.' && lx_peek(lx, 1) == '.' &&
                                                                is_digit(lx_peek(lx, 2)))))) {
        t->kind = T_INTEGER;
        if (c == '+' || c == '-') lx_advance(lx);
        while (is_digit(lx_peek(lx, 0))) lx_advance(lx);
        if (lx_peek(lx, 0) == '.' && is_digit(lx_peek(lx, 1))) {
            t->kind = T_DECIMAL;
            lx_advance(lx);
            while (is_digit(lx_peek(lx, 0))) lx_advance(lx);
        }
        int e = lx_peek(lx, 0);
        if (e == 'e' || e == 'E') {
            size_t k = 1;
            if (lx_peek(lx, 1) == '+' || lx_peek(lx, 1) == '-') k = 2;
            if (is_digit(lx_peek(lx, k))) {
                for (size_t i = 0; i < k; i++) lx_advance(lx);
                while (is_digit(lx_peek(lx, 0))) lx_advance(lx);
                t->kind = T_DOUBLE;
            }
        }
        goto done;
    }
    if (c == '.') {
        t->kind = T_DOT;
        lx_advance(lx);
        goto done;
    }
    if (c == '_' && lx_peek(lx, 1) == ':') {
        lx_advance(lx), lx_advance(lx);
        while (is_pn(lx_peek(lx, 0))) lx_advance(lx);
        t->kind = T_BNODE;
        goto done;
    }
    if (is_pn_base(c) || c == ':') {
        /* A word, or a prefixed name if a ':' follows the prefix part. */
        while (is_pn(lx_peek(lx, 0)) || (lx_peek(lx, 0) == '.' && is_pn(lx_peek(lx, 1)))) lx_advance(lx);
        if (lx_peek(lx, 0) == ':') {
            lx_advance(lx);
            int d = lx_peek(lx, 0);
            if (d >= 0 && (is_pn_u(d) || is_digit(d) || d == ':' || d == '%' || d == '\\')) {
                int rc = scan_local(ps);
                if (rc) return rc;
                t->kind = T_PNAME_LN;
            } else {
                t->kind = T_PNAME_NS;
            }
        } else {
            t->kind = T_WORD;
        }
        goto done;
    }
    t->kind = T_OTHER;
    lx_advance(lx);
done:
    t->len = (size_t)(lx->p - t->text);
    return 0;
}

/* ------------------------------------------------------------ helpers --- */

static int tok_is_word(const tok_t *t, const char *kw) {
    size_t n = strlen(kw);
    if (t->kind != T_WORD || t->len != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t->text[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        char k = kw[i];
        if (k >= 'a' && k <= 'z') k = (char)(k - 'a' + 'A');
        if (c != k) return 0;
    }
    return 1;
}

static void tok_describe(const tok_t *t, char *buf, size_t n) {
    if (t->kind == T_EOF) {
        snprintf(buf, n, "end of query");
        return;
    }
    const char *s = t->text;
    size_t len = t->len;
    if (t->kind == T_IRIREF || t->kind == T_VAR || t->kind == T_STRING || t->kind == T_LANGTAG) {
        /* show the token as written */
        s = t->text - (t->kind == T_STRING && t->long_string ? 3 : 1);
        len = t->len + (t->kind == T_IRIREF || t->kind == T_STRING ? 2 : 1) +
              (t->kind == T_STRING && t->long_string ? 4 : 0);
    }
    int cut = len > 40;
    if (cut) len = 40;
    snprintf(buf, n, "'%.*s%s'", (int)len, s, cut ? "..." : "");
}

static int expected(parser_t *ps, const char *what) {
    if (ps->lex_error) return ps->err ? ps->err->code : LLMOS_EFORMAT;
    char found[64];
    tok_describe(&ps->tok, found, sizeof found);
    return llmos_error_set(ps->err, LLMOS_EFORMAT, "line %u, column %u: expected %s, found %s", ps->tok.line,
                           ps->tok.col, what, found);
}

static int unsupported(parser_t *ps, const char *what) {
    return llmos_error_set(ps->err, LLMOS_EUNSUPPORTED,
                           "line %u, column %u: %s is not supported (the subset: PREFIX, SELECT, ASK, "
                           "basic graph patterns, FILTER with = != && || !, LIMIT, OFFSET)",
                           ps->tok.line, ps->tok.col, what);
}

/* Names valid SPARQL words the subset refuses, so they are not reported as
 * syntax errors. */
static const char *const unsupported_words[] = {
    "OPTIONAL", "UNION", "MINUS", "GRAPH", "SERVICE", "BIND", "VALUES", "ORDER", "GROUP", "HAVING",
    "CONSTRUCT", "DESCRIBE", "FROM", "INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "WITH",
    "EXISTS", "NOT", "SELECT", NULL};

static int check_unsupported(parser_t *ps) {
    if (ps->tok.kind == T_BNODE) return unsupported(ps, "a blank node");
    if (ps->tok.kind == T_WORD) {
        for (int i = 0; unsupported_words[i]; i++) {
            if (tok_is_word(&ps->tok, unsupported_words[i])) {
                char what[64];
                snprintf(what, sizeof what, "%s%s", unsupported_words[i],
                         strcmp(unsupported_words[i], "SELECT") == 0 ? " in a subquery" : "");
                return unsupported(ps, what);
            }
        }
    }
    return 0;
}

static int expected_or_unsupported(parser_t *ps, const char *what) {
    int rc = check_unsupported(ps);
    return rc ? rc : expected(ps, what);
}

#define GROW(arr, n, cap)                                                                                    \
    do {                                                                                                     \
        if ((n) == (cap)) {                                                                                  \
            int nc_ = (cap) ? (cap)*2 : 8;                                                                   \
            void *np_ = realloc((arr), (size_t)nc_ * sizeof *(arr));                                         \
            if (!np_) return llmos_error_set(ps->err, LLMOS_ENOMEM, "out of memory parsing the query");   \
            (arr) = np_;                                                                                     \
            (cap) = nc_;                                                                                     \
        }                                                                                                    \
    } while (0)

static int advance(parser_t *ps) { return lex_next(ps); }

static int var_index(parser_t *ps, const char *name, size_t len, int *out) {
    for (int i = 0; i < ps->nvars; i++) {
        if (strlen(ps->vars[i]) == len && memcmp(ps->vars[i], name, len) == 0) {
            *out = i;
            return 0;
        }
    }
    GROW(ps->vars, ps->nvars, ps->cap_vars);
    char *v = sparql_arena_strndup(ps->arena, name, len);
    if (!v) return llmos_error_set(ps->err, LLMOS_ENOMEM, "out of memory parsing the query");
    ps->vars[ps->nvars] = v;
    *out = ps->nvars++;
    return 0;
}

static int nomem(parser_t *ps) {
    if (ps->expr_nodes > EXPR_NODES_MAX)
        return llmos_error_set(ps->err, LLMOS_ETOOBIG, "line %u, column %u: a FILTER has more than %d operators",
                               ps->tok.line, ps->tok.col, EXPR_NODES_MAX);
    return llmos_error_set(ps->err, LLMOS_ENOMEM, "out of memory parsing the query");
}

/* Appends the UTF-8 form of code point cp; LLMOS_EINVAL for a surrogate or
 * a value over U+10FFFF, LLMOS_ENOMEM. */
static int put_utf8(llmos_buf_t *b, uint32_t cp) {
    char u[4];
    size_t n = llmos_utf8_encode(cp, u);
    return n ? llmos_buf_append(b, u, n) : LLMOS_EINVAL;
}

/* Undoes string escapes (\t \n \r \b \f \" \' \\ \uXXXX \UXXXXXXXX) of the
 * current T_STRING token into the arena. */
static int unescape_string(parser_t *ps, const tok_t *t, const char **out, size_t *out_len) {
    llmos_buf_t *b = &ps->scratch;
    b->len = 0;
    if (llmos_buf_reserve(b, t->len)) return nomem(ps);
    uint32_t line = t->line, col = t->col + (t->long_string ? 3 : 1);
    for (size_t i = 0; i < t->len; i++) {
        char c = t->text[i];
        if (c == '\n') line++, col = 0;
        if (c != '\\') {
            if (llmos_buf_putc(b, c)) return nomem(ps);
            col++;
            continue;
        }
        char e = t->text[++i];
        const char *m = NULL;
        switch (e) {
        case 't': m = "\t"; break;
        case 'n': m = "\n"; break;
        case 'r': m = "\r"; break;
        case 'b': m = "\b"; break;
        case 'f': m = "\f"; break;
        case '"': m = "\""; break;
        case '\'': m = "'"; break;
        case '\\': m = "\\"; break;
        default: break;
        }
        if (m) {
            if (llmos_buf_putc(b, *m)) return nomem(ps);
            col += 2;
            continue;
        }
        if (e == 'u' || e == 'U') {
            size_t nd = e == 'u' ? 4 : 8;
            uint32_t cp;
            if (sparql_hex_read(t->text + i + 1, t->len - i - 1, nd, &cp)) return lex_fail(ps, line, col, "bad \\u escape in a string (needs hex digits)");
            if (put_utf8(b, cp)) return lex_fail(ps, line, col, "\\u escape is not a Unicode scalar value");
            i += nd;
            col += (uint32_t)(2 + nd);
            continue;
        }
        return lex_fail(ps, line, col, "unknown escape in a string");
    }
    char *s = sparql_arena_strndup(ps->arena, b->data ? b->data : "", b->len);
    if (!s) return nomem(ps);
    *out = s;
    *out_len = b->len;
    return 0;
}

/* Expands \uXXXX in an IRIREF and resolves it against BASE (simply: an IRI
 * without a scheme is appended to BASE's directory, or to its authority when
 * it starts with '/', or replaces BASE's fragment when it starts with '#'). */
static int make_iri(parser_t *ps, const tok_t *t, const char **out, size_t *out_len) {
    llmos_buf_t *b = &ps->scratch;
    b->len = 0;
    const char *s = t->text;
    size_t n = t->len;
    size_t scheme = 0;
    while (scheme < n && (is_alpha((unsigned char)s[scheme]) || (scheme > 0 && (is_digit((unsigned char)s[scheme]) ||
                                                                              strchr("+-.", s[scheme])))))
        scheme++;
    int absolute = scheme > 0 && scheme < n && s[scheme] == ':';
    if (!absolute && ps->base) {
        const char *base = ps->base;
        size_t bl = strlen(base);
        size_t keep = bl;
        if (n > 0 && s[0] == '#') {
            const char *h = memchr(base, '#', bl);
            keep = h ? (size_t)(h - base) : bl;
        } else if (n > 0 && s[0] == '/') {
            const char *p = strstr(base, "://");
            const char *slash = p ? strchr(p + 3, '/') : NULL;
            keep = slash ? (size_t)(slash - base) : bl;
        } else {
            while (keep > 0 && base[keep - 1] != '/') keep--;
            if (keep == 0) keep = bl;
        }
        if (llmos_buf_append(b, base, keep)) return nomem(ps);
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
            size_t nd = s[i + 1] == 'u' ? 4 : 8;
            uint32_t cp;
            if (sparql_hex_read(s + i + 2, n - i - 2, nd, &cp) || put_utf8(b, cp))
                return lex_fail(ps, t->line, t->col, "bad \\u escape in an IRI");
            i += 1 + nd;
            continue;
        }
        if (s[i] == '\\') return lex_fail(ps, t->line, t->col, "a backslash in an IRI must start \\u or \\U");
        if (llmos_buf_putc(b, s[i])) return nomem(ps);
    }
    char *r = sparql_arena_strndup(ps->arena, b->data ? b->data : "", b->len);
    if (!r) return nomem(ps);
    *out = r;
    *out_len = b->len;
    return 0;
}

/* prefix:local → full IRI; local escapes (\-) are undone, %XX kept. */
static int expand_pname(parser_t *ps, const tok_t *t, const char **out, size_t *out_len) {
    const char *colon = memchr(t->text, ':', t->len);
    size_t plen = (size_t)(colon - t->text);
    const char *iri = NULL;
    for (int i = ps->nprefixes - 1; i >= 0; i--) {
        if (ps->prefixes[i].name_len == plen && memcmp(ps->prefixes[i].name, t->text, plen) == 0) {
            iri = ps->prefixes[i].iri;
            break;
        }
    }
    if (!iri)
        return llmos_error_set(ps->err, LLMOS_EFORMAT, "line %u, column %u: undefined prefix '%.*s:'", t->line,
                               t->col, (int)plen, t->text);
    llmos_buf_t *b = &ps->scratch;
    b->len = 0;
    if (llmos_buf_puts(b, iri)) return nomem(ps);
    for (const char *p = colon + 1; p < t->text + t->len; p++) {
        if (*p == '\\') p++;
        if (llmos_buf_putc(b, *p)) return nomem(ps);
    }
    char *r = sparql_arena_strndup(ps->arena, b->data, b->len);
    if (!r) return nomem(ps);
    *out = r;
    *out_len = b->len;
    return 0;
}

/* ------------------------------------------------------------ grammar --- */

static void term_at(sparql_term_t *term, const tok_t *t) {
    memset(term, 0, sizeof *term);
    term->var = -1;
    term->line = t->line;
    term->col = t->col;
}

static int parse_iri(parser_t *ps, sparql_term_t *term) {
    term_at(term, &ps->tok);
    term->kind = SPARQL_TERM_IRI;
    int rc;
    if (ps->tok.kind == T_IRIREF)
        rc = make_iri(ps, &ps->tok, &term->value, &term->len);
    else if (ps->tok.kind == T_PNAME_LN || ps->tok.kind == T_PNAME_NS)
        rc = expand_pname(ps, &ps->tok, &term->value, &term->len);
    else
        return expected(ps, "an IRI");
    return rc ? rc : advance(ps);
}

static int is_iri_tok(const tok_t *t) { return t->kind == T_IRIREF || t->kind == T_PNAME_LN || t->kind == T_PNAME_NS; }

/* A variable, IRI, literal, number or boolean.  allow_a: 'a' means rdf:type. */
static int parse_term(parser_t *ps, sparql_term_t *term, int allow_a, int allow_literal, const char *what) {
    tok_t *t = &ps->tok;
    term_at(term, t);
    if (t->kind == T_VAR) {
        term->kind = SPARQL_TERM_VAR;
        int rc = var_index(ps, t->text, t->len, &term->var);
        if (rc) return rc;
        term->value = ps->vars[term->var];
        term->len = t->len;
        return advance(ps);
    }
    if (is_iri_tok(t)) return parse_iri(ps, term);
    if (allow_a && t->kind == T_WORD && t->len == 1 && t->text[0] == 'a') {
        term->kind = SPARQL_TERM_IRI;
        term->value = RDF_TYPE;
        term->len = strlen(RDF_TYPE);
        return advance(ps);
    }
    if (!allow_literal) return expected_or_unsupported(ps, what);
    if (t->kind == T_STRING) {
        term->kind = SPARQL_TERM_LITERAL;
        int rc = unescape_string(ps, t, &term->value, &term->len);
        if (rc || (rc = advance(ps))) return rc;
        if (t->kind == T_LANGTAG) {
            term->lang = sparql_arena_strndup(ps->arena, t->text, t->len);
            if (!term->lang) return nomem(ps);
            return advance(ps);
        }
        if (t->kind == T_HATHAT) {
            if ((rc = advance(ps))) return rc;
            if (!is_iri_tok(t)) return expected(ps, "a datatype IRI after '^^'");
            sparql_term_t dt;
            if ((rc = parse_iri(ps, &dt))) return rc;
            term->datatype = dt.value;
        }
        return 0;
    }
    if (t->kind == T_INTEGER || t->kind == T_DECIMAL || t->kind == T_DOUBLE) {
        term->kind = SPARQL_TERM_LITERAL;
        term->value = sparql_arena_strndup(ps->arena, t->text, t->len);
        if (!term->value) return nomem(ps);
        term->len = t->len;
        term->datatype = t->kind == T_INTEGER ? XSD "integer" : t->kind == T_DECIMAL ? XSD "decimal" : XSD "double";
        return advance(ps);
    }
    if (tok_is_word(t, "true") || tok_is_word(t, "false")) {
        term->kind = SPARQL_TERM_LITERAL;
        term->value = tok_is_word(t, "true") ? "true" : "false";
        term->len = strlen(term->value);
        term->datatype = XSD "boolean";
        return advance(ps);
    }
    return expected_or_unsupported(ps, what);
}

static int add_pattern(parser_t *ps, const sparql_term_t *s, const sparql_term_t *p, const sparql_term_t *o) {
    if (ps->npatterns >= SPARQL_PATTERNS_MAX)
        return llmos_error_set(ps->err, LLMOS_ETOOBIG, "line %u, column %u: more than %d triple patterns",
                               o->line, o->col, SPARQL_PATTERNS_MAX);
    GROW(ps->patterns, ps->npatterns, ps->cap_patterns);
    sparql_pattern_t *pat = &ps->patterns[ps->npatterns++];
    pat->s = *s;
    pat->p = *p;
    pat->o = *o;
    return 0;
}

/* TriplesSameSubject: subject, then predicate-object lists with ';' and ','. */
static int parse_triples(parser_t *ps) {
    sparql_term_t s, p, o;
    int rc = parse_term(ps, &s, 0, 1, "a subject (variable or IRI)");
    if (rc) return rc;
    if (s.kind == SPARQL_TERM_LITERAL) {
        /* RDF does not allow literal subjects, but SPARQL syntax does; such a
         * pattern simply matches nothing, which the executor handles. */
    }
    for (;;) {
        if ((rc = parse_term(ps, &p, 1, 0, "a predicate (variable, IRI or 'a')"))) return rc;
        for (;;) {
            if ((rc = parse_term(ps, &o, 0, 1, "an object (variable, IRI or literal)"))) return rc;
            if ((rc = add_pattern(ps, &s, &p, &o))) return rc;
            if (ps->tok.kind != T_COMMA) break;
            if ((rc = advance(ps))) return rc;
        }
        if (ps->tok.kind != T_SEMI) break;
        while (ps->tok.kind == T_SEMI)
            if ((rc = advance(ps))) return rc;
        /* a trailing ';' before '.', '}' or FILTER is allowed */
        if (ps->tok.kind == T_DOT || ps->tok.kind == T_RBRACE || tok_is_word(&ps->tok, "FILTER")) break;
    }
    return 0;
}

static int parse_expr(parser_t *ps, const sparql_expr_t **out, int depth);

static sparql_expr_t *new_expr(parser_t *ps, sparql_expr_op op) {
    if (op != SPARQL_EXPR_TERM && ++ps->expr_nodes > EXPR_NODES_MAX) return NULL;
    sparql_expr_t *e = sparql_arena_alloc(ps->arena, sizeof *e);
    if (e) {
        memset(e, 0, sizeof *e);
        e->op = op;
        e->term.var = -1;
    }
    return e;
}

#define EXPR_DEPTH_MAX 128

static int parse_primary(parser_t *ps, const sparql_expr_t **out, int depth) {
    int rc;
    if (depth > EXPR_DEPTH_MAX)
        return llmos_error_set(ps->err, LLMOS_ETOOBIG, "line %u, column %u: expression nested too deeply",
                               ps->tok.line, ps->tok.col);
    if (ps->tok.kind == T_LPAREN) {
        if ((rc = advance(ps)) || (rc = parse_expr(ps, out, depth + 1))) return rc;
        if (ps->tok.kind != T_RPAREN) return expected(ps, "')'");
        return advance(ps);
    }
    if (ps->tok.kind == T_BANG) {
        sparql_expr_t *e = new_expr(ps, SPARQL_EXPR_NOT);
        if (!e) return nomem(ps);
        if ((rc = advance(ps)) || (rc = parse_primary(ps, &e->a, depth + 1))) return rc;
        *out = e;
        return 0;
    }
    if (ps->tok.kind == T_WORD && !tok_is_word(&ps->tok, "true") && !tok_is_word(&ps->tok, "false")) {
        char what[96];
        snprintf(what, sizeof what, "the function or keyword '%.*s'", (int)(ps->tok.len > 40 ? 40 : ps->tok.len),
                 ps->tok.text);
        return unsupported(ps, what);
    }
    sparql_expr_t *e = new_expr(ps, SPARQL_EXPR_TERM);
    if (!e) return nomem(ps);
    if ((rc = parse_term(ps, &e->term, 0, 1, "a variable, IRI, literal or '('"))) return rc;
    *out = e;
    return 0;
}

static int parse_relational(parser_t *ps, const sparql_expr_t **out, int depth) {
    const sparql_expr_t *a;
    int rc = parse_primary(ps, &a, depth);
    if (rc) return rc;
    if (ps->tok.kind == T_EQ || ps->tok.kind == T_NE) {
        sparql_expr_t *e = new_expr(ps, ps->tok.kind == T_EQ ? SPARQL_EXPR_EQ : SPARQL_EXPR_NE);
        if (!e) return nomem(ps);
        e->a = a;
        if ((rc = advance(ps)) || (rc = parse_primary(ps, &e->b, depth))) return rc;
        *out = e;
        return 0;
    }
    if (ps->tok.kind == T_OTHER && strchr("<>+-/", ps->tok.text[0])) {
        char what[48];
        snprintf(what, sizeof what, "the operator '%c'", ps->tok.text[0]);
        return unsupported(ps, what);
    }
    if (ps->tok.kind == T_STAR) return unsupported(ps, "the operator '*'");
    *out = a;
    return 0;
}

static int parse_and(parser_t *ps, const sparql_expr_t **out, int depth) {
    int rc = parse_relational(ps, out, depth);
    while (!rc && ps->tok.kind == T_AND) {
        sparql_expr_t *e = new_expr(ps, SPARQL_EXPR_AND);
        if (!e) return nomem(ps);
        e->a = *out;
        if ((rc = advance(ps)) || (rc = parse_relational(ps, &e->b, depth))) return rc;
        *out = e;
    }
    return rc;
}

static int parse_expr(parser_t *ps, const sparql_expr_t **out, int depth) {
    int rc = parse_and(ps, out, depth);
    while (!rc && ps->tok.kind == T_OR) {
        sparql_expr_t *e = new_expr(ps, SPARQL_EXPR_OR);
        if (!e) return nomem(ps);
        e->a = *out;
        if ((rc = advance(ps)) || (rc = parse_and(ps, &e->b, depth))) return rc;
        *out = e;
    }
    return rc;
}

static int parse_filter(parser_t *ps) {
    int rc = advance(ps); /* FILTER */
    if (rc) return rc;
    if (ps->tok.kind != T_LPAREN) {
        if (ps->tok.kind == T_WORD) {
            char what[96];
            snprintf(what, sizeof what, "the function '%.*s'", (int)(ps->tok.len > 40 ? 40 : ps->tok.len),
                     ps->tok.text);
            return unsupported(ps, what);
        }
        return expected(ps, "'(' after FILTER");
    }
    const sparql_expr_t *e;
    ps->expr_nodes = 0;
    if ((rc = parse_primary(ps, &e, 0))) return rc;
    GROW(ps->filters, ps->nfilters, ps->cap_filters);
    ps->filters[ps->nfilters++] = e;
    return 0;
}

/* GroupGraphPattern body: triples blocks and FILTERs up to '}'. */
static int parse_group(parser_t *ps) {
    int rc;
    if (ps->tok.kind != T_LBRACE) return expected(ps, "'{'");
    if ((rc = advance(ps))) return rc;
    for (;;) {
        if (ps->tok.kind == T_RBRACE) return advance(ps);
        if (tok_is_word(&ps->tok, "FILTER")) {
            if ((rc = parse_filter(ps))) return rc;
            if (ps->tok.kind == T_DOT && (rc = advance(ps))) return rc;
            continue;
        }
        if (ps->tok.kind == T_LBRACE) return unsupported(ps, "a nested group '{ }'");
        if (ps->tok.kind == T_VAR || is_iri_tok(&ps->tok) || ps->tok.kind == T_STRING ||
            ps->tok.kind == T_INTEGER || ps->tok.kind == T_DECIMAL || ps->tok.kind == T_DOUBLE ||
            tok_is_word(&ps->tok, "true") || tok_is_word(&ps->tok, "false")) {
            if ((rc = parse_triples(ps))) return rc;
            if (ps->tok.kind == T_DOT) {
                if ((rc = advance(ps))) return rc;
            } else if (ps->tok.kind == T_LBRACE) {
                return unsupported(ps, "a nested group '{ }'");
            } else if (ps->tok.kind != T_RBRACE && !tok_is_word(&ps->tok, "FILTER")) {
                return expected_or_unsupported(ps, "'.', ';', ',', FILTER or '}'");
            }
            continue;
        }
        return expected_or_unsupported(ps, "a triple pattern, FILTER or '}'");
    }
}

static int parse_uint(parser_t *ps, uint64_t *out, const char *what) {
    if (ps->tok.kind != T_INTEGER || ps->tok.text[0] == '+' || ps->tok.text[0] == '-') {
        char buf[64];
        snprintf(buf, sizeof buf, "a non-negative integer after %s", what);
        return expected(ps, buf);
    }
    uint64_t v = 0;
    for (size_t i = 0; i < ps->tok.len; i++) {
        uint64_t d = (uint64_t)(ps->tok.text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return llmos_error_set(ps->err, LLMOS_EFORMAT, "line %u, column %u: %s value too large", ps->tok.line,
                                   ps->tok.col, what);
        v = v * 10 + d;
    }
    *out = v;
    return advance(ps);
}

static int parse_prologue(parser_t *ps) {
    int rc;
    for (;;) {
        if (tok_is_word(&ps->tok, "PREFIX")) {
            if ((rc = advance(ps))) return rc;
            if (ps->tok.kind != T_PNAME_NS) return expected(ps, "a prefix name ending in ':' after PREFIX");
            tok_t name = ps->tok;
            if ((rc = advance(ps))) return rc;
            if (ps->tok.kind != T_IRIREF) return expected(ps, "an IRI in <...> after the prefix name");
            const char *iri;
            size_t len;
            if ((rc = make_iri(ps, &ps->tok, &iri, &len))) return rc;
            GROW(ps->prefixes, ps->nprefixes, ps->cap_prefixes);
            ps->prefixes[ps->nprefixes].name = name.text;
            ps->prefixes[ps->nprefixes].name_len = name.len - 1;
            ps->prefixes[ps->nprefixes].iri = iri;
            ps->nprefixes++;
            if ((rc = advance(ps))) return rc;
        } else if (tok_is_word(&ps->tok, "BASE")) {
            if ((rc = advance(ps))) return rc;
            if (ps->tok.kind != T_IRIREF) return expected(ps, "an IRI in <...> after BASE");
            const char *iri;
            size_t len;
            if ((rc = make_iri(ps, &ps->tok, &iri, &len))) return rc;
            ps->base = iri;
            if ((rc = advance(ps))) return rc;
        } else {
            return 0;
        }
    }
}

static int parse_modifiers(parser_t *ps, sparql_query_t *q) {
    int rc, seen_limit = 0, seen_offset = 0;
    for (;;) {
        if (tok_is_word(&ps->tok, "LIMIT") && !seen_limit) {
            seen_limit = 1;
            if ((rc = advance(ps)) || (rc = parse_uint(ps, &q->limit, "LIMIT"))) return rc;
        } else if (tok_is_word(&ps->tok, "OFFSET") && !seen_offset) {
            seen_offset = 1;
            if ((rc = advance(ps)) || (rc = parse_uint(ps, &q->offset, "OFFSET"))) return rc;
        } else {
            return 0;
        }
    }
}

static int parse_query(parser_t *ps, sparql_query_t *q) {
    int rc;
    if ((rc = advance(ps)) || (rc = parse_prologue(ps))) return rc;
    if (tok_is_word(&ps->tok, "SELECT")) {
        q->form = SPARQL_SELECT;
        if ((rc = advance(ps))) return rc;
        if (tok_is_word(&ps->tok, "DISTINCT") || tok_is_word(&ps->tok, "REDUCED")) {
            q->distinct = 1;
            if ((rc = advance(ps))) return rc;
        }
        if (ps->tok.kind == T_STAR) {
            q->star = 1;
            if ((rc = advance(ps))) return rc;
        } else {
            if (ps->tok.kind == T_LPAREN) return unsupported(ps, "a SELECT expression '(... AS ?v)'");
            if (ps->tok.kind != T_VAR) return expected(ps, "'*' or a variable after SELECT");
            while (ps->tok.kind == T_VAR) {
                int v;
                if ((rc = var_index(ps, ps->tok.text, ps->tok.len, &v))) return rc;
                for (int i = 0; i < ps->nproject; i++)
                    if (ps->project[i] == v)
                        return llmos_error_set(ps->err, LLMOS_EFORMAT,
                                               "line %u, column %u: variable ?%s selected twice", ps->tok.line,
                                               ps->tok.col, ps->vars[v]);
                GROW(ps->project, ps->nproject, ps->cap_project);
                ps->project[ps->nproject++] = v;
                if ((rc = advance(ps))) return rc;
            }
        }
        if (tok_is_word(&ps->tok, "WHERE")) {
            if ((rc = advance(ps))) return rc;
        } else if (ps->tok.kind != T_LBRACE) {
            return expected_or_unsupported(ps, "WHERE or '{'");
        }
    } else if (tok_is_word(&ps->tok, "ASK")) {
        q->form = SPARQL_ASK;
        if ((rc = advance(ps))) return rc;
        if (tok_is_word(&ps->tok, "WHERE") && (rc = advance(ps))) return rc;
        if (ps->tok.kind != T_LBRACE) return expected_or_unsupported(ps, "'{'");
    } else {
        return expected_or_unsupported(ps, "PREFIX, BASE, SELECT or ASK");
    }
    if ((rc = parse_group(ps))) return rc;
    if ((rc = parse_modifiers(ps, q))) return rc;
    if (ps->tok.kind != T_EOF) return expected_or_unsupported(ps, q->form == SPARQL_SELECT ? "LIMIT, OFFSET or the end of the query" : "the end of the query");
    if (q->star) {
        /* SELECT *: every variable of the pattern, in order of appearance. */
        for (int v = 0; v < ps->nvars; v++) {
            int in_pattern = 0;
            for (int i = 0; i < ps->npatterns && !in_pattern; i++)
                in_pattern = ps->patterns[i].s.var == v || ps->patterns[i].p.var == v || ps->patterns[i].o.var == v;
            if (!in_pattern) continue;
            GROW(ps->project, ps->nproject, ps->cap_project);
            ps->project[ps->nproject++] = v;
        }
    }
    return 0;
}

int sparql_query_parse(const char *text, size_t len, sparql_query_t **out, llmos_error_t *err) {
    *out = NULL;
    if (!text && len) return llmos_error_set(err, LLMOS_EINVAL, "query text is NULL");
    if (len > SPARQL_QUERY_MAX)
        return llmos_error_set(err, LLMOS_ETOOBIG, "query is %zu bytes, over the %u-byte limit", len,
                               SPARQL_QUERY_MAX);
    sparql_query_impl_t *qi = calloc(1, sizeof *qi);
    if (!qi) return llmos_error_set(err, LLMOS_ENOMEM, "out of memory parsing the query");
    sparql_arena_init(&qi->arena, 4096);
    parser_t ps = {0};
    ps.lx.p = text ? text : "";
    ps.lx.end = ps.lx.p + len;
    ps.lx.line = 1;
    ps.lx.col = 1;
    ps.err = err;
    ps.arena = &qi->arena;
    sparql_query_t *q = &qi->q;
    q->limit = UINT64_MAX;
    int rc = parse_query(&ps, q);
    free(ps.prefixes);
    llmos_buf_deinit(&ps.scratch);
    qi->vars = ps.vars;
    qi->project = ps.project;
    qi->patterns = ps.patterns;
    qi->filters = ps.filters;
    q->vars = (const char *const *)ps.vars;
    q->nvars = ps.nvars;
    q->project = ps.project;
    q->nproject = ps.nproject;
    q->patterns = ps.patterns;
    q->npatterns = ps.npatterns;
    q->filters = ps.filters;
    q->nfilters = ps.nfilters;
    if (rc) {
        sparql_query_destroy(&q);
        return rc;
    }
    *out = q;
    return 0;
}

void sparql_query_destroy(sparql_query_t **qp) {
    if (!qp || !*qp) return;
    sparql_query_impl_t *qi = (sparql_query_impl_t *)*qp;
    free(qi->vars);
    free(qi->project);
    free(qi->patterns);
    free(qi->filters);
    sparql_arena_deinit(&qi->arena);
    free(qi);
    *qp = NULL;
}
