/* parse.c — bounded integer parsing; see parse.h. */
#include "runtime/base/parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SHOW_MAX 48 /* value bytes quoted in a message */

/* The value as a message shows it: control bytes and DEL as \xHH, cut
 * after SHOW_MAX bytes with "...". */
static void show(const char *s, char *out, size_t n) {
    size_t o = 0, i = 0;
    for (; s[i] && i < SHOW_MAX && o + 5 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (s[i] && o + 4 < n) memcpy(out + o, "...", 3), o += 3;
    out[o] = '\0';
}

/* A size bound as "4G" when it is a whole number of K/M/G, else digits. */
static void show_size(uint64_t v, char *out, size_t n) {
    static const char units[] = "GMK";
    for (int u = 0; u < 3; u++) {
        unsigned shift = 30 - 10 * (unsigned)u;
        if (v && (v & (((uint64_t)1 << shift) - 1)) == 0) {
            snprintf(out, n, "%" PRIu64 "%c", v >> shift, units[u]);
            return;
        }
    }
    snprintf(out, n, "%" PRIu64, v);
}

static int bad_u(const char *what, const char *s, uint64_t min, uint64_t max, unsigned flags,
                 llmos_error_t *err) {
    if (!s) return llmos_error_set(err, LLMOS_EINVAL, "%s has no value", what);
    char v[SHOW_MAX * 4 + 8];
    show(s, v, sizeof v);
    if (flags & LLMOS_PARSE_SIZE) {
        char lo[32], hi[32];
        show_size(min, lo, sizeof lo);
        show_size(max, hi, sizeof hi);
        return llmos_error_set(
            err, LLMOS_EINVAL,
            "%s '%s' is not a size from %s to %s (a whole number, optionally with K, M or G)", what, v, lo,
            hi);
    }
    return llmos_error_set(err, LLMOS_EINVAL,
                           "%s '%s' is not a whole number from %" PRIu64 " to %" PRIu64 "%s", what, v, min,
                           max, flags & LLMOS_PARSE_HEX ? " (decimal or 0x hexadecimal)" : "");
}

/* Digits of s in base 10 or 16 into *v; the end in *end.  0, or -1 when
 * there is no digit or the value passes UINT64_MAX. */
static int digits(const char *s, unsigned base, uint64_t *v, const char **end) {
    uint64_t x = 0;
    const char *p = s;
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        if (x > (UINT64_MAX - d) / base) return -1;
        x = x * base + d;
    }
    if (p == s) return -1;
    *v = x;
    *end = p;
    return 0;
}

int llmos_parse_u64(const char *what, const char *s, uint64_t min, uint64_t max, unsigned flags,
                    uint64_t *out, llmos_error_t *err) {
    if (!s) return bad_u(what, s, min, max, flags, err);
    const char *p = s;
    unsigned base = 10;
    if ((flags & LLMOS_PARSE_HEX) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    uint64_t v;
    const char *end;
    if (digits(p, base, &v, &end)) return bad_u(what, s, min, max, flags, err);
    if ((flags & LLMOS_PARSE_SIZE) && *end) {
        unsigned shift;
        switch (*end) {
        case 'k':
        case 'K': shift = 10; break;
        case 'm':
        case 'M': shift = 20; break;
        case 'g':
        case 'G': shift = 30; break;
        default: return bad_u(what, s, min, max, flags, err);
        }
        end++;
        if (end[0] == 'i' && end[1] == 'B')
            end += 2;
        else if (end[0] == 'B')
            end++;
        if (v > (UINT64_MAX >> shift)) return bad_u(what, s, min, max, flags, err);
        v <<= shift;
    }
    if (*end || v < min || v > max) return bad_u(what, s, min, max, flags, err);
    *out = v;
    return 0;
}

int llmos_parse_u32(const char *what, const char *s, uint32_t min, uint32_t max, unsigned flags,
                    uint32_t *out, llmos_error_t *err) {
    uint64_t v;
    int rc = llmos_parse_u64(what, s, min, max, flags, &v, err);
    if (!rc) *out = (uint32_t)v;
    return rc;
}

int llmos_parse_i64(const char *what, const char *s, int64_t min, int64_t max, int64_t *out,
                    llmos_error_t *err) {
    if (!s) return llmos_error_set(err, LLMOS_EINVAL, "%s has no value", what);
    int neg = s[0] == '-';
    uint64_t mag;
    const char *end;
    int64_t v = 0;
    int ok = digits(s + neg, 10, &mag, &end) == 0 && !*end;
    if (ok && neg) {
        ok = mag <= (uint64_t)INT64_MAX + 1;
        if (ok) v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else if (ok) {
        ok = mag <= (uint64_t)INT64_MAX;
        v = (int64_t)mag;
    }
    if (!ok || v < min || v > max) {
        char shown[SHOW_MAX * 4 + 8];
        show(s, shown, sizeof shown);
        return llmos_error_set(err, LLMOS_EINVAL,
                               "%s '%s' is not a whole number from %" PRId64 " to %" PRId64, what, shown, min,
                               max);
    }
    *out = v;
    return 0;
}

int llmos_parse_int(const char *what, const char *s, int min, int max, int *out, llmos_error_t *err) {
    int64_t v;
    int rc = llmos_parse_i64(what, s, min, max, &v, err);
    if (!rc) *out = (int)v;
    return rc;
}
