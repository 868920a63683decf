/*
 * utf8.h — UTF-8 validation, the one the project shares.
 *
 * Well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF.  The encoder writes
 * the same form, so what it writes always passes the check.  Pure
 * functions, thread-safe.
 */
#ifndef LLMOS_RUNTIME_BASE_UTF8_H
#define LLMOS_RUNTIME_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The offset of the first byte of s[0..n) that does not start a valid
 * sequence (a truncated sequence at the end counts), or n when all of it
 * is valid. */
size_t llmos_utf8_check(const void *s, size_t n);

/* Writes the UTF-8 encoding of code point cp into out (room for 4 bytes)
 * and returns its length 1..4, or 0 (nothing written) for a surrogate or a
 * value over U+10FFFF. */
size_t llmos_utf8_encode(uint32_t cp, char out[4]);

/* A copy of s[0..n), NUL-terminated, in which every byte that does not
 * start a valid sequence is replaced by U+FFFD, so the copy always passes
 * llmos_utf8_check (what is printed as JSON must be valid UTF-8).  *len
 * (may be NULL) gets the copy's length.  Caller frees; NULL = no memory. */
char *llmos_utf8_repair(const char *s, size_t n, size_t *len);

#endif
