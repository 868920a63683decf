/* paths.c — see paths.h. */
#include "runtime/base/paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#ifndef LLMOS_SOURCE_DIR
#define LLMOS_SOURCE_DIR "."
#endif

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int llmos_path_join(char *out, size_t n, const char *dir, const char *name) {
    int w = snprintf(out, n, "%s/%s", dir, name);
    return (w < 0 || (size_t)w >= n) ? LLMOS_ETOOBIG : 0;
}

static int resolve(const char *flag, const char *env, const char *sub, char *out, size_t n,
                   llmos_error_t *err) {
    const char *v = flag && *flag ? flag : getenv(env);
    if (v && *v) {
        if (!is_dir(v)) return llmos_error_set(err, LLMOS_ENOTFOUND, "%s folder '%s' does not exist", sub, v);
        snprintf(out, n, "%s", v);
        return 0;
    }
    char cand[4096];
    snprintf(cand, sizeof cand, "../shared/%s", sub);
    if (is_dir(cand)) {
        snprintf(out, n, "%s", cand);
        return 0;
    }
    snprintf(cand, sizeof cand, "%s/../shared/%s", LLMOS_SOURCE_DIR, sub);
    if (is_dir(cand)) {
        snprintf(out, n, "%s", cand);
        return 0;
    }
    return llmos_error_set(err, LLMOS_ENOTFOUND,
                           "no %s folder: set %s or pass it with a flag (../shared/%s not found)", sub, env, sub);
}

int llmos_models_dir(const char *flag, char *out, size_t n, llmos_error_t *err) {
    return resolve(flag, "LLMOS_MODELS", "models", out, n, err);
}

int llmos_data_dir(const char *flag, char *out, size_t n, llmos_error_t *err) {
    return resolve(flag, "LLMOS_DATA", "data", out, n, err);
}
