/*
 * buf.h — the growable byte buffer and the growable array the project
 * shares.
 *
 * llmos_buf_t is a caller-owned struct around one malloc'd block: append
 * bytes, characters, strings or printf output; reserve room and write
 * through `data` directly (the wire encoder does); hand the block to the
 * caller with llmos_buf_take.  Capacity doubles (first block 256 bytes), so
 * appending n bytes one at a time costs O(n); `len = 0` (llmos_buf_clear)
 * keeps the block for reuse, so a buffer reused per request allocates
 * nothing once it has grown to its working size.  After any append the
 * bytes are followed by a NUL that `len` does not count, so text built here
 * is a C string; binary data with NULs inside is fine (len says where it
 * ends).  A zeroed struct (LLMOS_BUF_INIT, or memset) is an empty buffer.
 *
 * llmos_vec_t is the same for an array of fixed-size elements; the element
 * size is passed to each call (it is the caller's type), the block grows by
 * doubling (first block 16 elements).
 *
 * Errors: LLMOS_ENOMEM when an allocation fails or a size would overflow
 * size_t (LLMOS_EINVAL for an element size of 0); on error the buffer is
 * unchanged.  Not thread-safe: one owner.
 */
#ifndef LLMOS_RUNTIME_BASE_BUF_H
#define LLMOS_RUNTIME_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef struct llmos_buf {
    char *data; /* malloc'd, NULL until the first byte; NUL-terminated after appends */
    size_t len; /* bytes used (the NUL not counted) */
    size_t cap; /* bytes allocated */
} llmos_buf_t;

#define LLMOS_BUF_INIT                                                                                       \
    { NULL, 0, 0 }

void llmos_buf_init(llmos_buf_t *b);
/* Frees the block and leaves b empty (safe on an empty or zeroed buffer). */
void llmos_buf_deinit(llmos_buf_t *b);
/* Room for `extra` more bytes past len, plus the NUL. */
int llmos_buf_reserve(llmos_buf_t *b, size_t extra);
/* Appends n bytes of p (p may be NULL when n is 0). */
int llmos_buf_append(llmos_buf_t *b, const void *p, size_t n);
int llmos_buf_putc(llmos_buf_t *b, char c);
int llmos_buf_puts(llmos_buf_t *b, const char *s);
/* Appends printf output; LLMOS_EINVAL when the format fails (vsnprintf < 0). */
int llmos_buf_printf(llmos_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int llmos_buf_vprintf(llmos_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends everything f yields until its end (f stays open).  max: a cap on
 * b->len after reading (0 = none); past it LLMOS_ETOOBIG.  LLMOS_EIO when
 * a read fails (errno tells why).  What was read before an error stays in
 * b. */
int llmos_buf_read_file(llmos_buf_t *b, FILE *f, size_t max);
/* len = 0; the block stays for reuse. */
void llmos_buf_clear(llmos_buf_t *b);
/* Transfers the block to the caller (who frees it) and leaves b empty.
 * *len (may be NULL) gets the length.  An empty buffer gives a malloc'd ""
 * so the result is always a C string to free; NULL only when that
 * allocation fails. */
char *llmos_buf_take(llmos_buf_t *b, size_t *len);

typedef struct llmos_vec {
    void *data; /* malloc'd, NULL until the first element */
    size_t len; /* elements used */
    size_t cap; /* elements allocated */
} llmos_vec_t;

#define LLMOS_VEC_INIT                                                                                       \
    { NULL, 0, 0 }

/* Frees the block and leaves v empty. */
void llmos_vec_deinit(llmos_vec_t *v);
/* Room for n more elements of elem_size bytes past len. */
int llmos_vec_reserve(llmos_vec_t *v, size_t elem_size, size_t n);
/* Appends one element copied from item (zeroed when item is NULL). */
int llmos_vec_push(llmos_vec_t *v, size_t elem_size, const void *item);

#endif
