/*
 * sparql_internal.h — what the SPARQL rooms (parse, exec, write) and the
 * entity linker share but callers never see: a bump arena for per-query
 * memory, hex digits and JSON string escaping (the growable byte buffer is
 * runtime/base/buf.h's).
 *
 * The arena hands out memory that lives until the arena is reset or freed;
 * nothing in it is freed one piece at a time.  Not thread-safe.
 */
#ifndef LLMOS_GRAPH_SPARQL_INTERNAL_H
#define LLMOS_GRAPH_SPARQL_INTERNAL_H

#include "runtime/base/buf.h"

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

/* The value of a hex digit, or -1. */
int sparql_hex_digit(char c);
/* Reads exactly nd hex digits from s (n bytes available) into *out; 0 or
 * LLMOS_EFORMAT when fewer than nd digits are there. */
int sparql_hex_read(const char *s, size_t n, size_t nd, uint32_t *out);

/* Appends s (n bytes) as a JSON string with quotes: '"', '\\' and control
 * characters escaped, other bytes (UTF-8) as they are.  0 or LLMOS_ENOMEM. */
int sparql_json_put_str(llmos_buf_t *b, const char *s, size_t n);

#endif
