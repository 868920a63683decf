/*
 * sparql_internal.h — what the SPARQL rooms (parse, exec, write) and the
 * entity linker share but callers never see: a bump arena for per-query
 * memory, and growable byte buffers.
 *
 * The arena hands out memory that lives until the arena is reset or freed;
 * nothing in it is freed one piece at a time.  Not thread-safe.
 */
#ifndef LLMOS_GRAPH_SPARQL_INTERNAL_H
#define LLMOS_GRAPH_SPARQL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct sparql_arena_chunk sparql_arena_chunk_t;

typedef struct sparql_arena {
    sparql_arena_chunk_t *head; /* newest chunk; older ones follow */
    size_t chunk_size;          /* default size of a new chunk */
} sparql_arena_t;

void sparql_arena_init(sparql_arena_t *a, size_t chunk_size);
void sparql_arena_deinit(sparql_arena_t *a);
/* Frees all but the first chunk and makes it empty again. */
void sparql_arena_reset(sparql_arena_t *a);
/* n bytes aligned to 16; NULL when out of memory. */
void *sparql_arena_alloc(sparql_arena_t *a, size_t n);
/* Copies n bytes and appends a NUL; NULL when out of memory. */
char *sparql_arena_strndup(sparql_arena_t *a, const char *s, size_t n);

/* A growable byte buffer (caller-owned struct; data is malloc'd). */
typedef struct sparql_buf {
    char *data;
    size_t len, cap;
} sparql_buf_t;

/* Each returns 0 or LLMOS_ENOMEM; data stays NUL-terminated after any put. */
int sparql_buf_put(sparql_buf_t *b, const void *p, size_t n);
int sparql_buf_putc(sparql_buf_t *b, char c);
int sparql_buf_puts(sparql_buf_t *b, const char *s);
int sparql_buf_reserve(sparql_buf_t *b, size_t extra);
void sparql_buf_free(sparql_buf_t *b);

/* The value of a hex digit, or -1. */
int sparql_hex_digit(char c);
/* Reads exactly nd hex digits from s (n bytes available) into *out; 0 or
 * LLMOS_EFORMAT when fewer than nd digits are there. */
int sparql_hex_read(const char *s, size_t n, size_t nd, uint32_t *out);

/* Appends s (n bytes) as a JSON string with quotes: '"', '\\' and control
 * characters escaped, other bytes (UTF-8) as they are. */
int sparql_buf_put_json_str(sparql_buf_t *b, const char *s, size_t n);

/* Appends a UTF-8 encoding of code point cp; LLMOS_EINVAL for a surrogate or
 * a value over U+10FFFF. */
int sparql_buf_put_utf8(sparql_buf_t *b, uint32_t cp);

#endif
