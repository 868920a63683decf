/* buf.c — the byte buffer and the array of buf.h. */
#include "runtime/base/buf.h"

#include "runtime/base/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llmos_buf_init(llmos_buf_t *b) {
    memset(b, 0, sizeof *b);
}

void llmos_buf_deinit(llmos_buf_t *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int llmos_buf_reserve(llmos_buf_t *b, size_t extra) {
    if (extra > SIZE_MAX - 1 - b->len) return LLMOS_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) return LLMOS_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int llmos_buf_append(llmos_buf_t *b, const void *p, size_t n) {
    int rc = llmos_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int llmos_buf_putc(llmos_buf_t *b, char c) {
    return llmos_buf_append(b, &c, 1);
}

int llmos_buf_puts(llmos_buf_t *b, const char *s) {
    return llmos_buf_append(b, s, strlen(s));
}

int llmos_buf_vprintf(llmos_buf_t *b, const char *fmt, va_list ap) {
    /* First try the room there is; when it is short, grow once to the exact
     * size vsnprintf reported and print again. */
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    int rc = 0;
    if (n < 0) {
        rc = LLMOS_EINVAL;
    } else if ((size_t)n >= room) {
        rc = llmos_buf_reserve(b, (size_t)n);
        if (!rc) vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (rc) {
        if (b->data) b->data[b->len] = '\0'; /* undo a partial first attempt */
        return rc;
    }
    b->len += (size_t)n;
    return 0;
}

int llmos_buf_printf(llmos_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = llmos_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int llmos_buf_read_file(llmos_buf_t *b, FILE *f, size_t max) {
    for (;;) {
        int rc = llmos_buf_reserve(b, 65536);
        if (rc) return rc;
        size_t room = b->cap - b->len - 1;
        size_t got = fread(b->data + b->len, 1, room, f);
        b->len += got;
        b->data[b->len] = '\0';
        if (max && b->len > max) return LLMOS_ETOOBIG;
        if (got < room) return ferror(f) ? LLMOS_EIO : 0;
    }
}

void llmos_buf_clear(llmos_buf_t *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *llmos_buf_take(llmos_buf_t *b, size_t *len) {
    char *d = b->data;
    size_t n = b->len;
    if (!d) {
        d = malloc(1);
        if (!d) return NULL;
        d[0] = '\0';
        n = 0;
    }
    memset(b, 0, sizeof *b);
    if (len) *len = n;
    return d;
}

void llmos_vec_deinit(llmos_vec_t *v) {
    free(v->data);
    memset(v, 0, sizeof *v);
}

int llmos_vec_reserve(llmos_vec_t *v, size_t elem_size, size_t n) {
    if (!elem_size) return LLMOS_EINVAL;
    if (n > SIZE_MAX - v->len) return LLMOS_ENOMEM;
    size_t need = v->len + n;
    if (need <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 16;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > SIZE_MAX / elem_size) return LLMOS_ENOMEM;
    void *d = realloc(v->data, cap * elem_size);
    if (!d) return LLMOS_ENOMEM;
    v->data = d;
    v->cap = cap;
    return 0;
}

int llmos_vec_push(llmos_vec_t *v, size_t elem_size, const void *item) {
    int rc = llmos_vec_reserve(v, elem_size, 1);
    if (rc) return rc;
    char *slot = (char *)v->data + v->len * elem_size;
    if (item)
        memcpy(slot, item, elem_size);
    else
        memset(slot, 0, elem_size);
    v->len++;
    return 0;
}
