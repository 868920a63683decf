/* paths.c — see paths.h. */
#include "runtime/base/paths.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int llmos_path_find(const char *name, llmos_path_kind_t kind, char *out, size_t n, llmos_error_t *err) {
    const bool data = kind == LLMOS_PATH_DATA;
    const char *env = data ? "LLMOS_DATA" : "LLMOS_MODELS", *folder = data ? "data" : "models";
    if (!name || !*name) return llmos_error_set(err, LLMOS_EINVAL, "no file name given");
    struct stat st;
    const char *found = name;
    char dir[2048], cand[4096];
    if (stat(name, &st) != 0) {
        if (name[0] == '/') return llmos_error_set(err, LLMOS_ENOTFOUND, "'%s' not found", name);
        char cwd[2048];
        if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "(unknown: %s)", strerror(errno));
        llmos_error_t derr = {0};
        int rc = data ? llmos_data_dir(NULL, dir, sizeof dir, &derr)
                      : llmos_models_dir(NULL, dir, sizeof dir, &derr);
        if (rc)
            return llmos_error_set(err, LLMOS_ENOTFOUND,
                                   "'%s' not found: not in the working directory %s, and %s", name, cwd,
                                   derr.msg);
        if (llmos_path_join(cand, sizeof cand, dir, name) != 0 || stat(cand, &st) != 0) {
            const char *v = getenv(env);
            return llmos_error_set(
                err, LLMOS_ENOTFOUND,
                "'%s' not found: not in the working directory %s, not in the %s folder %s (%s%s)", name, cwd,
                folder, dir, v && *v ? "from $" : "the default; set $",
                v && *v ? env : (data ? "LLMOS_DATA to change it" : "LLMOS_MODELS to change it"));
        }
        found = cand;
    }
    int w = snprintf(out, n, "%s", found);
    if (w < 0 || (size_t)w >= n)
        return llmos_error_set(err, LLMOS_ETOOBIG, "'%s': the path is too long", found);
    return 0;
}
