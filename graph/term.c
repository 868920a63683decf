/*
 * term.c — RDF terms as text and as dictionary bytes: N-Triples formatting
 * and parsing (the syntax SPARQL shares), the normalised dictionary
 * encoding, the hash that keys term2id, UTF-8 checks (with
 * runtime/base/utf8.h) and the TSV name → IRI mapping.  Pure functions: no
 * LMDB, no allocation except for encodings larger than the caller's buffer.
 *
 * Dictionary encoding (id2term values), designed so views are zero-copy and
 * NUL-terminated:
 *   [kind:1][aux:1] [aux string \0 when aux != 0] [value \0]
 *   aux: 0 none, 1 language tag (lower case), 2 datatype IRI.
 * The value comes last so a literal may contain NUL bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/store_internal.h"
#include "runtime/base/utf8.h"

#define XSD_STRING "http://www.w3.org/2001/XMLSchema#string"

graph_term_t graph_term_iri(const char *iri) {
    graph_term_t t = {.kind = GRAPH_TERM_IRI, .value = iri, .len = strlen(iri)};
    return t;
}

graph_term_t graph_term_blank(const char *label) {
    graph_term_t t = {.kind = GRAPH_TERM_BLANK, .value = label, .len = strlen(label)};
    return t;
}

graph_term_t graph_term_literal(const char *lex, const char *lang, const char *datatype) {
    graph_term_t t = {.kind = GRAPH_TERM_LITERAL, .value = lex, .len = strlen(lex)};
    if (lang) {
        t.lang = lang;
        t.lang_len = strlen(lang);
    }
    if (datatype) {
        t.datatype = datatype;
        t.datatype_len = strlen(datatype);
    }
    return t;
}

/* ------------------------------------------------------------- hash --- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t graph_hash64(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix64(h ^ v) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    return mix64(h ^ v ^ ((uint64_t)n << 56));
}

/* --------------------------------------------------------- encoding --- */

static int lang_ok(const char *l, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = l[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c == '-' && i > 0)))
            return 0;
    }
    return 1;
}

int graph_term_encode(const graph_term_t *t, unsigned char *buf, size_t cap, unsigned char **out,
                      size_t *out_len, unsigned char **heap, llmos_error_t *err) {
    *heap = NULL;
    int aux = 0;
    const char *auxs = NULL;
    size_t auxn = 0;
    switch (t->kind) {
    case GRAPH_TERM_IRI:
        if (t->len == 0) return llmos_error_set(err, LLMOS_EINVAL, "empty IRI");
        if (memchr(t->value, 0, t->len)) return llmos_error_set(err, LLMOS_EINVAL, "NUL byte in IRI");
        break;
    case GRAPH_TERM_BLANK:
        if (t->len == 0) return llmos_error_set(err, LLMOS_EINVAL, "empty blank node label");
        if (memchr(t->value, 0, t->len))
            return llmos_error_set(err, LLMOS_EINVAL, "NUL byte in blank node label");
        break;
    case GRAPH_TERM_LITERAL:
        if (t->lang && t->datatype)
            return llmos_error_set(err, LLMOS_EINVAL, "literal with both a language tag and a datatype");
        if (t->lang) {
            if (!lang_ok(t->lang, t->lang_len))
                return llmos_error_set(err, LLMOS_EINVAL, "bad language tag '%.*s'",
                                       (int)(t->lang_len > 40 ? 40 : t->lang_len), t->lang);
            aux = 1;
            auxs = t->lang;
            auxn = t->lang_len;
        } else if (t->datatype) {
            if (t->datatype_len == 0 || memchr(t->datatype, 0, t->datatype_len))
                return llmos_error_set(err, LLMOS_EINVAL, "bad datatype IRI");
            /* RDF 1.1: "x"^^xsd:string is the plain literal "x". */
            if (!(t->datatype_len == sizeof XSD_STRING - 1 &&
                  memcmp(t->datatype, XSD_STRING, sizeof XSD_STRING - 1) == 0)) {
                aux = 2;
                auxs = t->datatype;
                auxn = t->datatype_len;
            }
        }
        break;
    default:
        return llmos_error_set(err, LLMOS_EINVAL, "unknown term kind %d", (int)t->kind);
    }
    size_t n = 2 + (aux ? auxn + 1 : 0) + t->len + 1;
    unsigned char *b = buf;
    if (n > cap) {
        b = malloc(n);
        if (!b) return llmos_error_set(err, LLMOS_ENOMEM, "term of %zu bytes", n);
        *heap = b;
    }
    b[0] = (unsigned char)t->kind;
    b[1] = (unsigned char)aux;
    size_t k = 2;
    if (aux) {
        memcpy(b + k, auxs, auxn);
        if (aux == 1)
            for (size_t i = 0; i < auxn; i++)
                if (b[k + i] >= 'A' && b[k + i] <= 'Z') b[k + i] = (unsigned char)(b[k + i] + 32);
        k += auxn;
        b[k++] = 0;
    }
    if (t->len) memcpy(b + k, t->value, t->len);
    k += t->len;
    b[k++] = 0;
    *out = b;
    *out_len = k;
    return 0;
}

/* Decodes dictionary bytes into a view (no copy).  Returns 0 or EFORMAT. */
int graph_term_decode(const unsigned char *b, size_t n, graph_term_t *t) {
    memset(t, 0, sizeof *t);
    if (n < 3 || b[n - 1] != 0 || b[0] < 1 || b[0] > 3 || b[1] > 2) return LLMOS_EFORMAT;
    t->kind = (graph_term_kind)b[0];
    size_t k = 2;
    if (b[1]) {
        const unsigned char *z = memchr(b + 2, 0, n - 2);
        if (!z || (size_t)(z - b) == n - 1) return LLMOS_EFORMAT;
        size_t an = (size_t)(z - (b + 2));
        if (b[1] == 1) {
            t->lang = (const char *)b + 2;
            t->lang_len = an;
        } else {
            t->datatype = (const char *)b + 2;
            t->datatype_len = an;
        }
        k = 2 + an + 1;
    }
    t->value = (const char *)b + k;
    t->len = n - k - 1;
    return 0;
}

int graph_term_equal(const graph_term_t *a, const graph_term_t *b) {
    unsigned char ba[512], bb[512], *ea, *eb, *ha, *hb;
    size_t na, nb;
    if (graph_term_encode(a, ba, sizeof ba, &ea, &na, &ha, NULL) < 0) return 0;
    if (graph_term_encode(b, bb, sizeof bb, &eb, &nb, &hb, NULL) < 0) {
        free(ha);
        return 0;
    }
    int eq = na == nb && memcmp(ea, eb, na) == 0;
    free(ha);
    free(hb);
    return eq;
}

/* ------------------------------------------------------- formatting --- */

typedef struct outbuf {
    char *b;
    size_t cap, n;
} outbuf_t;

static void ob_put(outbuf_t *o, const char *s, size_t n) {
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->b + o->n, s, n < room ? n : room);
    }
    o->n += n;
}

static void ob_uescape(outbuf_t *o, unsigned c) {
    char t[12];
    static const char hx[] = "0123456789ABCDEF";
    t[0] = '\\';
    t[1] = 'u';
    for (int i = 0; i < 4; i++) t[2 + i] = hx[(c >> (12 - 4 * i)) & 15];
    ob_put(o, t, 6);
}

static void ob_iri(outbuf_t *o, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || strchr("<>\"{}|^`\\", c)) {
            ob_put(o, s + run, i - run);
            ob_uescape(o, c);
            run = i + 1;
        }
    }
    ob_put(o, s + run, n - run);
}

static void ob_lit(outbuf_t *o, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default: break;
        }
        if (e || c < 0x20 || c == 0x7f) {
            ob_put(o, s + run, i - run);
            if (e)
                ob_put(o, e, 2);
            else
                ob_uescape(o, c);
            run = i + 1;
        }
    }
    ob_put(o, s + run, n - run);
}

int graph_term_format(const graph_term_t *t, char *buf, size_t cap, size_t *out_len,
                      llmos_error_t *err) {
    outbuf_t o = {buf, cap ? cap - 1 : 0, 0};
    switch (t->kind) {
    case GRAPH_TERM_IRI:
        ob_put(&o, "<", 1);
        ob_iri(&o, t->value, t->len);
        ob_put(&o, ">", 1);
        break;
    case GRAPH_TERM_BLANK:
        ob_put(&o, "_:", 2);
        ob_put(&o, t->value, t->len);
        break;
    case GRAPH_TERM_LITERAL:
        ob_put(&o, "\"", 1);
        ob_lit(&o, t->value, t->len);
        ob_put(&o, "\"", 1);
        if (t->lang) {
            ob_put(&o, "@", 1);
            ob_put(&o, t->lang, t->lang_len);
        } else if (t->datatype) {
            ob_put(&o, "^^<", 3);
            ob_iri(&o, t->datatype, t->datatype_len);
            ob_put(&o, ">", 1);
        }
        break;
    default:
        return llmos_error_set(err, LLMOS_EINVAL, "unknown term kind %d", (int)t->kind);
    }
    if (out_len) *out_len = o.n;
    if (cap) buf[o.n < cap - 1 ? o.n : cap - 1] = 0;
    if (o.n >= cap)
        return llmos_error_set(err, LLMOS_ETOOBIG, "term needs %zu bytes, buffer has %zu", o.n + 1, cap);
    return 0;
}

/* ---------------------------------------------------------- parsing --- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads a \u or \U escape at text[*i] (pointing at 'u'/'U'); writes UTF-8. */
static int read_uescape(const char *text, size_t len, size_t *i, char *o, size_t *on,
                        llmos_error_t *err) {
    int nd = text[*i] == 'u' ? 4 : 8;
    if (*i + (size_t)nd >= len)
        return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: truncated \\%c escape", *i, text[*i]);
    unsigned cp = 0;
    for (int k = 1; k <= nd; k++) {
        int h = hexval(text[*i + (size_t)k]);
        if (h < 0)
            return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: bad hex digit in \\%c escape",
                                   *i + (size_t)k + 1, text[*i]);
        cp = cp << 4 | (unsigned)h;
    }
    size_t un = llmos_utf8_encode(cp, o); /* 0 for a surrogate or over U+10FFFF */
    if (!un)
        return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: \\%c escape is not a code point", *i,
                               text[*i]);
    *on = un;
    *i += (size_t)nd + 1;
    return 0;
}

/* Parses <...> at text[*i]; writes the IRI into buf at *bn (NUL-terminated). */
static int parse_iriref(const char *text, size_t len, size_t *i, char *buf, size_t cap, size_t *bn,
                        const char **out, size_t *out_len, llmos_error_t *err) {
    size_t start = *bn;
    size_t j = *i + 1;
    for (;;) {
        if (j >= len) return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: unterminated IRI (missing '>')", *i + 1);
        unsigned char c = (unsigned char)text[j];
        if (c == '>') break;
        if (*bn + 5 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "term buffer too small");
        if (c == '\\') {
            if (j + 1 >= len || (text[j + 1] != 'u' && text[j + 1] != 'U'))
                return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: only \\u and \\U escapes are allowed in an IRI", j + 1);
            j++;
            size_t on;
            int rc = read_uescape(text, len, &j, buf + *bn, &on, err);
            if (rc) return rc;
            *bn += on;
            continue;
        }
        if (c <= 0x20 || strchr("<\"{}|^`", c))
            return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: character %s not allowed in an IRI",
                                   j + 1, c == ' ' ? "' '" : c < 0x20 ? "(control)" : "(reserved)");
        buf[(*bn)++] = (char)c;
        j++;
    }
    if (llmos_utf8_check(buf + start, *bn - start) != *bn - start)
        return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: IRI is not valid UTF-8", *i + 1);
    if (*bn == start) return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: empty IRI", *i + 1);
    if (*bn + 1 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "term buffer too small");
    *out = buf + start;
    *out_len = *bn - start;
    buf[(*bn)++] = 0;
    *i = j + 1;
    return 0;
}

int graph_term_parse(const char *text, size_t len, char *buf, size_t cap, graph_term_t *out,
                     size_t *consumed, llmos_error_t *err) {
    memset(out, 0, sizeof *out);
    size_t i = 0, bn = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
    if (i >= len) return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: expected a term, found end of text", i + 1);
    int rc;
    if (text[i] == '<') {
        out->kind = GRAPH_TERM_IRI;
        rc = parse_iriref(text, len, &i, buf, cap, &bn, &out->value, &out->len, err);
        if (rc) return rc;
    } else if (text[i] == '_' && i + 1 < len && text[i + 1] == ':') {
        out->kind = GRAPH_TERM_BLANK;
        size_t j = i + 2;
        while (j < len && text[j] != ' ' && text[j] != '\t' && text[j] != '\n' && text[j] != '\r' &&
               text[j] != '.' && text[j] != ';' && text[j] != ',' && text[j] != '}' && text[j] != ')')
            j++;
        if (j == i + 2) return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: empty blank node label", i + 1);
        if (j - (i + 2) + 1 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "term buffer too small");
        memcpy(buf, text + i + 2, j - (i + 2));
        out->value = buf;
        out->len = j - (i + 2);
        buf[out->len] = 0;
        if (llmos_utf8_check(buf, out->len) != out->len)
            return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: blank node label is not valid UTF-8", i + 1);
        bn = out->len + 1;
        i = j;
    } else if (text[i] == '"') {
        out->kind = GRAPH_TERM_LITERAL;
        size_t q = i, j = i + 1;
        for (;;) {
            if (j >= len) return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: unterminated string literal", q + 1);
            unsigned char c = (unsigned char)text[j];
            if (c == '"') break;
            if (bn + 5 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "term buffer too small");
            if (c == '\n' || c == '\r')
                return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: line break inside a string literal", j + 1);
            if (c == '\\') {
                if (j + 1 >= len) return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: unterminated string literal", q + 1);
                char e = text[j + 1];
                const char *m = strchr("tbnrf\"'\\", e);
                if (e && m) {
                    static const char rep[] = "\t\b\n\r\f\"'\\";
                    buf[bn++] = rep[m - "tbnrf\"'\\"];
                    j += 2;
                    continue;
                }
                if (e == 'u' || e == 'U') {
                    j++;
                    size_t on;
                    rc = read_uescape(text, len, &j, buf + bn, &on, err);
                    if (rc) return rc;
                    bn += on;
                    continue;
                }
                return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: bad escape '\\%c' in a literal", j + 1, e);
            }
            buf[bn++] = (char)c;
            j++;
        }
        if (llmos_utf8_check(buf, bn) != bn)
            return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: literal is not valid UTF-8", q + 1);
        if (bn + 1 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "term buffer too small");
        out->value = buf;
        out->len = bn;
        buf[bn++] = 0;
        i = j + 1;
        if (i < len && text[i] == '@') {
            size_t k = i + 1;
            while (k < len && ((text[k] >= 'a' && text[k] <= 'z') || (text[k] >= 'A' && text[k] <= 'Z') ||
                               (text[k] >= '0' && text[k] <= '9') || text[k] == '-'))
                k++;
            if (!lang_ok(text + i + 1, k - i - 1))
                return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: bad language tag", i + 1);
            if (bn + (k - i) > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "term buffer too small");
            memcpy(buf + bn, text + i + 1, k - i - 1);
            out->lang = buf + bn;
            out->lang_len = k - i - 1;
            bn += k - i - 1;
            buf[bn++] = 0;
            i = k;
        } else if (i + 1 < len && text[i] == '^' && text[i + 1] == '^') {
            i += 2;
            if (i >= len || text[i] != '<')
                return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: expected <datatype IRI> after ^^", i + 1);
            rc = parse_iriref(text, len, &i, buf, cap, &bn, &out->datatype, &out->datatype_len, err);
            if (rc) return rc;
        }
    } else {
        return llmos_error_set(err, LLMOS_EFORMAT, "column %zu: expected <IRI>, _:blank or \"literal\", found '%c'",
                               i + 1, text[i]);
    }
    if (consumed) *consumed = i;
    return 0;
}

/* ------------------------------------------------------------ names --- */

/* Bytes a TSV name keeps as-is in an IRI; everything else is %XX. */
static int name_char_plain(unsigned char c) {
    if (c >= 0x80) return 1; /* UTF-8 is allowed in IRIs (ucschar) */
    if (c <= 0x20 || c == 0x7f) return 0;
    return strchr("<>\"{}|\\^`%#?/[]", c) == NULL;
}

int graph_name_to_iri(const char *base, const char *name, size_t name_len, char *buf, size_t cap,
                      size_t *out_len, llmos_error_t *err) {
    static const char hx[] = "0123456789ABCDEF";
    size_t bl = strlen(base), n = bl;
    for (size_t i = 0; i < name_len; i++) n += name_char_plain((unsigned char)name[i]) ? 1 : 3;
    if (out_len) *out_len = n;
    if (n + 1 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "IRI of %zu bytes does not fit", n);
    memcpy(buf, base, bl);
    size_t k = bl;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (name_char_plain(c)) {
            buf[k++] = (char)c;
        } else {
            buf[k++] = '%';
            buf[k++] = hx[c >> 4];
            buf[k++] = hx[c & 15];
        }
    }
    buf[k] = 0;
    return 0;
}
