/* sparql_arena.c — bump arena, hex digits and JSON strings for the SPARQL rooms and the linker; see
 * sparql_internal.h. */
#include "graph/sparql_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/err.h"

struct sparql_arena_chunk {
    sparql_arena_chunk_t *next; /* older chunk */
    size_t size, used;          /* bytes in data, bytes handed out */
    _Alignas(16) unsigned char data[];
};

void sparql_arena_init(sparql_arena_t *a, size_t chunk_size) {
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
}

void sparql_arena_deinit(sparql_arena_t *a) {
    sparql_arena_chunk_t *c = a->head;
    while (c) {
        sparql_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void sparql_arena_reset(sparql_arena_t *a) {
    if (!a->head) return;
    sparql_arena_chunk_t *c = a->head;
    while (c->next) { /* keep the oldest (first) chunk, free the rest */
        sparql_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
}

void *sparql_arena_alloc(sparql_arena_t *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->size - a->head->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        sparql_arena_chunk_t *c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

char *sparql_arena_strndup(sparql_arena_t *a, const char *s, size_t n) {
    char *d = sparql_arena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int sparql_json_put_str(llmos_buf_t *b, const char *s, size_t n) {
    if (llmos_buf_reserve(b, n + 2)) return LLMOS_ENOMEM;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        char esc[8];
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                e = esc;
            }
        }
        if (e ? llmos_buf_puts(b, e) : llmos_buf_putc(b, (char)c)) return LLMOS_ENOMEM;
    }
    return llmos_buf_putc(b, '"');
}

int sparql_hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sparql_hex_read(const char *s, size_t n, size_t nd, uint32_t *out) {
    uint32_t v = 0;
    if (n < nd) return LLMOS_EFORMAT;
    for (size_t i = 0; i < nd; i++) {
        int d = sparql_hex_digit(s[i]);
        if (d < 0) return LLMOS_EFORMAT;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}
