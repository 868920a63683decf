/*
 * utf8.h — UTF-8 validation, the one the project shares.
 *
 * Well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF.  Pure function,
 * thread-safe.
 */
#ifndef LLMOS_RUNTIME_BASE_UTF8_H
#define LLMOS_RUNTIME_BASE_UTF8_H

#include <stddef.h>

/* The offset of the first byte of s[0..n) that does not start a valid
 * sequence (a truncated sequence at the end counts), or n when all of it
 * is valid. */
size_t llmos_utf8_check(const void *s, size_t n);

#endif
