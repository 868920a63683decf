/* err.c — status codes and error messages; see err.h. */
#include "runtime/base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
} err_table[] = {
    [0] = {"OK", "ok"},
    [1] = {"EINVAL", "invalid input"},
    [2] = {"ENOMEM", "out of memory"},
    [3] = {"EIO", "I/O error"},
    [4] = {"EFORMAT", "malformed data"},
    [5] = {"ENOTFOUND", "not found"},
    [6] = {"ETIMEDOUT", "timed out"},
    [7] = {"EOVERLOADED", "overloaded, retry later"},
    [8] = {"ECANCELED", "canceled"},
    [9] = {"EUNAVAILABLE", "unavailable"},
    [10] = {"ETOOBIG", "too big"},
    [11] = {"EUNSUPPORTED", "unsupported"},
    [12] = {"ESTATE", "invalid state"},
    [13] = {"EEXIST", "already exists"},
    [14] = {"EPERM", "permission denied"},
    [15] = {"EUNKNOWNTYPE", "unknown message type"},
    [16] = {"EINTERNAL", "internal error"},
};

static int err_index(int code) {
    if (code > 0 || code < LLMOS_ERR_MIN_) return -1;
    return -code;
}

const char *llmos_strerror(int code) {
    int i = err_index(code);
    return i < 0 ? "unknown error" : err_table[i].text;
}

const char *llmos_errname(int code) {
    int i = err_index(code);
    return i < 0 ? "EUNKNOWN" : err_table[i].name;
}

int llmos_error_set(llmos_error_t *err, int code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int llmos_error_prefix(llmos_error_t *err, const char *fmt, ...) {
    if (!err) return 0;
    char head[LLMOS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t hl = strlen(head), ol = strlen(err->msg);
    if (hl >= sizeof err->msg) hl = sizeof err->msg - 1;
    if (hl + ol >= sizeof err->msg) ol = sizeof err->msg - 1 - hl;
    memmove(err->msg + hl, err->msg, ol);
    memcpy(err->msg, head, hl);
    err->msg[hl + ol] = '\0';
    return err->code;
}

void llmos_error_clear(llmos_error_t *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

int llmos_err_from_errno(int e) {
    switch (e) {
    case 0: return LLMOS_OK;
    case ENOMEM: return LLMOS_ENOMEM;
    case ENOENT: return LLMOS_ENOTFOUND;
    case EEXIST: return LLMOS_EEXIST;
    case EACCES:
    case EPERM: return LLMOS_EPERM;
    case EINVAL: return LLMOS_EINVAL;
    case ETIMEDOUT:
    case EAGAIN: return LLMOS_ETIMEDOUT;
    case ECANCELED: return LLMOS_ECANCELED;
    case EFBIG:
    case E2BIG:
    case EMSGSIZE: return LLMOS_ETOOBIG;
    case ENOTSUP: return LLMOS_EUNSUPPORTED;
    case EHOSTUNREACH:
    case ECONNREFUSED: return LLMOS_EUNAVAILABLE;
    default: return LLMOS_EIO;
    }
}

int llmos_err_is_retryable(int code) {
    return code == LLMOS_ETIMEDOUT || code == LLMOS_EOVERLOADED || code == LLMOS_EUNAVAILABLE ||
           code == LLMOS_EIO;
}

void llmos_assert_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "llmos: internal error: assertion `%s' failed at %s:%d\n", what, file, line);
    abort();
}
