/*
 * err.h — llmos's one status vocabulary.
 *
 * Every public llmos function returns int: 0 on success or a negative
 * llmos_err.  Where a caller can show a message, the function also takes a
 * `llmos_error_t *err` as its last argument (may be NULL) and fills it with
 * what was wrong and where (file, line, offset, field).  Library codes (LMDB,
 * ZeroMQ, serd, MPI, errno) are translated at the edge of the module that
 * calls the library; nothing above that edge sees them.
 *
 * Thread-safety: all functions here are thread-safe; an llmos_error_t is
 * owned by its caller and is not shared.
 */
#ifndef LLMOS_RUNTIME_BASE_ERR_H
#define LLMOS_RUNTIME_BASE_ERR_H

#include <stddef.h>

typedef enum llmos_err {
    LLMOS_OK = 0,
    LLMOS_EINVAL = -1,       /* bad argument or bad input (not retryable) */
    LLMOS_ENOMEM = -2,       /* allocation failed or a memory budget hit */
    LLMOS_EIO = -3,          /* an operating-system or storage I/O failure */
    LLMOS_EFORMAT = -4,      /* a file, frame or message does not parse */
    LLMOS_ENOTFOUND = -5,    /* no such actor, key, job, file, term... */
    LLMOS_ETIMEDOUT = -6,    /* a timeout or deadline expired */
    LLMOS_EOVERLOADED = -7,  /* queue full: retry later */
    LLMOS_ECANCELED = -8,    /* canceled on request */
    LLMOS_EUNAVAILABLE = -9, /* peer, node or group down (retryable) */
    LLMOS_ETOOBIG = -10,     /* over a configured size cap */
    LLMOS_EUNSUPPORTED = -11,/* a valid input we do not handle */
    LLMOS_ESTATE = -12,      /* operation not valid in the current state */
    LLMOS_EEXIST = -13,      /* already exists */
    LLMOS_EPERM = -14,       /* not allowed for this tenant / key */
    LLMOS_EUNKNOWNTYPE = -15,/* message type not known to the receiver */
    LLMOS_EINTERNAL = -16,   /* a bug: an invariant failed */
    LLMOS_ERR_MIN_ = -16
} llmos_err;

#define LLMOS_ERRMSG_MAX 512

typedef struct llmos_error {
    int code;                     /* an llmos_err, 0 when none */
    char msg[LLMOS_ERRMSG_MAX];   /* human-readable: what and where */
} llmos_error_t;

/* Short fixed description of a code ("invalid input"); never NULL. */
const char *llmos_strerror(int code);

/* Stable machine name of a code ("EINVAL"), used in counters and JSON. */
const char *llmos_errname(int code);

/* Fills *err (if not NULL) with code and a printf-style message and returns
 * code, so a failure path reads `return llmos_error_set(err, LLMOS_EINVAL, ...)`. */
int llmos_error_set(llmos_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in *err with more context ("loading X: "). */
int llmos_error_prefix(llmos_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears *err (if not NULL). */
void llmos_error_clear(llmos_error_t *err);

/* Translates an errno value to an llmos_err. */
int llmos_err_from_errno(int e);

/* True for codes worth retrying (timeouts, overload, unavailability). */
int llmos_err_is_retryable(int code);

/* Aborts with file:line and the message when cond is false.  For invariants
 * that can only fail through a bug, never for input. Always on. */
#define LLMOS_ASSERT(cond)                                                     \
    do {                                                                       \
        if (!(cond)) llmos_assert_fail(#cond, __FILE__, __LINE__);             \
    } while (0)
_Noreturn void llmos_assert_fail(const char *what, const char *file, int line);

#endif
