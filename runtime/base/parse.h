/*
 * parse.h — bounded integer parsing, the one the project shares (flags,
 * config values, CLI arguments, numbers in test helpers).
 *
 * The whole string must be the number: ASCII digits only, no sign (a '-'
 * for the signed forms), no spaces, no trailing bytes; with
 * LLMOS_PARSE_HEX a "0x" prefix reads hexadecimal; with LLMOS_PARSE_SIZE a
 * K, M or G suffix multiplies by 1024, 1024^2, 1024^3 and may be followed
 * by "B" or "iB" ("64K", "16MiB", "1GB").  A leading 0 is decimal, never
 * octal.  The value must lie in [min, max] after the suffix is applied;
 * overflow anywhere is out of range, never a wrapped value.
 *
 * Errors: LLMOS_EINVAL, with a message in *err (may be NULL) that names
 * `what` and quotes the value (control bytes escaped, long values cut):
 * "--threads '0' is not a whole number from 1 to 256".  *out is written
 * only on success.  Pure functions, thread-safe.
 */
#ifndef LLMOS_RUNTIME_BASE_PARSE_H
#define LLMOS_RUNTIME_BASE_PARSE_H

#include "runtime/base/err.h"

#include <stdint.h>

enum {
    LLMOS_PARSE_SIZE = 1, /* K/M/G suffix (powers of 1024), optional B / iB */
    LLMOS_PARSE_HEX = 2,  /* "0x"/"0X" prefix: hexadecimal */
};

/* what: the thing parsed, for the message ("--threads", "heartbeat_ms"). */
int llmos_parse_u64(const char *what, const char *s, uint64_t min, uint64_t max, unsigned flags,
                    uint64_t *out, llmos_error_t *err);
int llmos_parse_u32(const char *what, const char *s, uint32_t min, uint32_t max, unsigned flags,
                    uint32_t *out, llmos_error_t *err);
/* Signed decimal: an optional '-', then digits (no suffix, no hex). */
int llmos_parse_i64(const char *what, const char *s, int64_t min, int64_t max, int64_t *out,
                    llmos_error_t *err);
int llmos_parse_int(const char *what, const char *s, int min, int max, int *out, llmos_error_t *err);

#endif
