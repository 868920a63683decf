/* utf8.c — see utf8.h. */
#include "runtime/base/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t llmos_utf8_check(const void *s, size_t n) {
    const uint8_t *p = s;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c == 0xED) len = 3, hi = 0x9F; /* no surrogates */
        else if (c >= 0xE1 && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F; /* <= U+10FFFF */
        else return i;
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

size_t llmos_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

char *llmos_utf8_repair(const char *s, size_t n, size_t *len) {
    size_t ok = llmos_utf8_check(s, n);
    char *out = malloc(ok == n ? n + 1 : 3 * n + 1), *w = out; /* each bad byte: 3 bytes */
    if (!out) return NULL;
    for (size_t i = 0;;) { /* valid runs copied, each invalid byte -> EF BF BD */
        memcpy(w, s + i, ok);
        w += ok;
        i += ok;
        if (i == n) break;
        memcpy(w, "\xEF\xBF\xBD", 3);
        w += 3;
        i++;
        ok = llmos_utf8_check(s + i, n - i);
    }
    *w = 0;
    if (len) *len = (size_t)(w - out);
    return out;
}
