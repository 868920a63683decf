/* tmpdir.c — temporary folders; see tmpdir.h. */
#include "runtime/base/tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int llmos_tmpdir_make(const char *prefix, char *out, size_t n, llmos_error_t *err) {
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl == 0 || pl > 64 ||
        strspn(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != pl)
        return llmos_error_set(
            err, LLMOS_EINVAL,
            "temporary folder prefix '%.64s' must be 1 to 64 letters, digits, '-', '_' or '.'",
            prefix ? prefix : "(null)");
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    int len = snprintf(out, n, "%s/%s-XXXXXX", base, prefix);
    if (len < 0 || (size_t)len >= n)
        return llmos_error_set(err, LLMOS_ETOOBIG,
                               "temporary folder path %s/%s-XXXXXX is longer than %zu bytes", base, prefix,
                               n ? n - 1 : 0);
    if (!mkdtemp(out)) {
        int e = errno;
        char tried[4096];
        snprintf(tried, sizeof tried, "%s", out);
        if (n) out[0] = '\0';
        return llmos_error_set(err, llmos_err_from_errno(e), "cannot make temporary folder %s: %s", tried,
                               strerror(e));
    }
    return 0;
}

/* nftw has no user pointer: the first failure of the walk on this thread. */
static _Thread_local struct {
    int code;
    llmos_error_t *err;
} rm_state;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP || flag == FTW_DNR ? rmdir(p) : unlink(p);
    if (rc != 0 && errno != ENOENT && !rm_state.code) {
        int e = errno;
        rm_state.code =
            llmos_error_set(rm_state.err, llmos_err_from_errno(e), "cannot remove %s: %s", p, strerror(e));
    }
    return 0; /* go on with the rest */
}

int llmos_tmpdir_remove(const char *path, llmos_error_t *err) {
    if (!path || !path[0] || strspn(path, "/") == strlen(path))
        return llmos_error_set(err, LLMOS_EINVAL, "refusing to remove '%s'", path ? path : "(null)");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        int e = errno;
        return llmos_error_set(err, llmos_err_from_errno(e), "cannot remove %s: %s", path, strerror(e));
    }
    rm_state.code = 0;
    rm_state.err = err;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && !rm_state.code) {
        int e = errno;
        rm_state.code = llmos_error_set(err, llmos_err_from_errno(e), "cannot walk %s to remove it: %s", path,
                                        strerror(e));
    }
    int rc = rm_state.code;
    rm_state.err = NULL;
    return rc;
}
