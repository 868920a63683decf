/*
 * ckpt.c — checkpoints in LMDB (see ckpt.h for the key layout).
 *
 * The environment is one file (MDB_NOSUBDIR) with a large sparse map; all
 * writes of a save happen in one transaction, committed with LMDB's default
 * durable sync, so readers and a crashed writer see all of a version or
 * none of it.  LMDB codes are translated to llmos_err here.
 */
#include "model/train/ckpt.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct train_ckpt {
    MDB_env *env;
    MDB_dbi dbi;
    char path[1100];
};

static int lmdb_err(llmos_error_t *err, int rc, const char *what, const char *path) {
    int code = rc == MDB_NOTFOUND ? LLMOS_ENOTFOUND
               : rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH ? LLMOS_EFORMAT
               : rc == MDB_MAP_FULL ? LLMOS_ETOOBIG
               : rc == ENOENT ? LLMOS_ENOTFOUND
               : LLMOS_EIO;
    return llmos_error_set(err, code, "%s %s: %s", what, path, mdb_strerror(rc));
}

int train_ckpt_open(const char *dir, int write, train_ckpt_t **out, llmos_error_t *err) {
    *out = NULL;
    train_ckpt_t *c = calloc(1, sizeof *c);
    if (!c) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    snprintf(c->path, sizeof c->path, "%s/ckpt.lmdb", dir);
    if (write && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        free(c);
        return llmos_error_set(err, llmos_err_from_errno(e), "cannot create %s: %s", dir, strerror(e));
    }
    struct stat st;
    if (!write && stat(c->path, &st) != 0) {
        free(c);
        return llmos_error_set(err, LLMOS_ENOTFOUND, "no checkpoint store %s/ckpt.lmdb", dir);
    }
    int rc = mdb_env_create(&c->env);
    if (!rc) rc = mdb_env_set_mapsize(c->env, (size_t)1 << 38); /* sparse: grows with use */
    if (!rc) rc = mdb_env_open(c->env, c->path, MDB_NOSUBDIR | (write ? 0 : MDB_RDONLY), 0644);
    MDB_txn *txn = NULL;
    if (!rc) rc = mdb_txn_begin(c->env, NULL, write ? 0 : MDB_RDONLY, &txn);
    if (!rc) rc = mdb_dbi_open(txn, NULL, 0, &c->dbi);
    if (!rc) rc = mdb_txn_commit(txn);
    else if (txn) mdb_txn_abort(txn);
    if (rc) {
        int r = lmdb_err(err, rc, "cannot open checkpoint store", c->path);
        if (c->env) mdb_env_close(c->env);
        free(c);
        return r;
    }
    *out = c;
    return 0;
}

void train_ckpt_close(train_ckpt_t **cp) {
    if (!cp || !*cp) return;
    mdb_env_close((*cp)->env);
    free(*cp);
    *cp = NULL;
}

static int get_pointer(MDB_txn *txn, MDB_dbi dbi, const char *name, int *version) {
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) return rc;
    char buf[32];
    if (v.mv_size == 0 || v.mv_size >= sizeof buf) return MDB_CORRUPTED;
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = 0;
    *version = atoi(buf);
    return *version > 0 ? 0 : MDB_CORRUPTED;
}

static int put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *data, size_t n) {
    MDB_val k = {strlen(key), (void *)key}, v = {n, (void *)data};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Deletes every key of version ver. */
static int drop_version(MDB_txn *txn, MDB_dbi dbi, int ver) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "v%08d/", ver);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc) return rc;
    MDB_val k = {strlen(prefix), prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!rc && k.mv_size >= 10 && memcmp(k.mv_data, prefix, 10) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (!rc) rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL || rc == MDB_NOTFOUND) { /* deleted the last key */
            rc = MDB_NOTFOUND;
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int train_ckpt_save_blobs(train_ckpt_t *c, const char *meta, const train_ckpt_blob_t *blobs, int n_blobs, int best,
                          int keep, int *version_out, llmos_error_t *err) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc) return lmdb_err(err, rc, "cannot write checkpoint", c->path);
    int latest = 0, bestv = 0;
    rc = get_pointer(txn, c->dbi, "latest", &latest);
    if (rc == MDB_NOTFOUND) latest = 0, rc = 0;
    if (!rc) {
        rc = get_pointer(txn, c->dbi, "best", &bestv);
        if (rc == MDB_NOTFOUND) bestv = 0, rc = 0;
    }
    int ver = latest + 1;
    char key[TRAIN_NAME_MAX + 32];
    if (!rc) {
        snprintf(key, sizeof key, "v%08d/meta", ver);
        rc = put(txn, c->dbi, key, meta, strlen(meta));
    }
    for (int i = 0; !rc && i < n_blobs; i++) {
        snprintf(key, sizeof key, "v%08d/%s", ver, blobs[i].name);
        rc = put(txn, c->dbi, key, blobs[i].data, blobs[i].bytes);
    }
    char num[32];
    snprintf(num, sizeof num, "%d", ver);
    if (!rc) rc = put(txn, c->dbi, "latest", num, strlen(num));
    if (!rc && best) {
        rc = put(txn, c->dbi, "best", num, strlen(num));
        bestv = ver;
    }
    if (keep < 1) keep = 1;
    for (int old = ver - keep; !rc && old >= 1; old--)
        if (old != bestv) rc = drop_version(txn, c->dbi, old);
    if (rc) {
        mdb_txn_abort(txn);
        return lmdb_err(err, rc, "cannot write checkpoint", c->path);
    }
    rc = mdb_txn_commit(txn);
    if (rc) return lmdb_err(err, rc, "cannot commit checkpoint", c->path);
    if (version_out) *version_out = ver;
    return 0;
}

int train_ckpt_save(train_ckpt_t *c, const char *meta, const train_net_t *n, const train_adamw_t *a, int best,
                    int keep, int *version_out, llmos_error_t *err) {
    const train_layout_t *l = train_net_layout(n);
    const float *p = train_net_params((train_net_t *)n);
    train_ckpt_blob_t *b = calloc((size_t)l->n_tensors + 2, sizeof *b);
    char(*names)[TRAIN_NAME_MAX + 8] = calloc((size_t)l->n_tensors + 2, sizeof *names);
    if (!b || !names) {
        free(b);
        free(names);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    int nb = 0;
    for (int i = 0; i < l->n_tensors; i++) {
        const train_tensor_t *t = &l->t[i];
        if (t->off < l->train_off) continue;
        snprintf(names[nb], sizeof names[nb], "t/%s", t->name);
        b[nb] = (train_ckpt_blob_t){names[nb], p + t->off, sizeof(float) * (size_t)t->rows * (size_t)t->cols};
        nb++;
    }
    if (a) {
        b[nb++] = (train_ckpt_blob_t){"opt/m", a->m, sizeof(float) * a->len};
        b[nb++] = (train_ckpt_blob_t){"opt/v", a->v, sizeof(float) * a->len};
    }
    int rc = train_ckpt_save_blobs(c, meta, b, nb, best, keep, version_out, err);
    free(b);
    free(names);
    return rc;
}

int train_ckpt_pointer(train_ckpt_t *c, int which, int *version, llmos_error_t *err) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
    if (rc) return lmdb_err(err, rc, "cannot read", c->path);
    rc = get_pointer(txn, c->dbi, which ? "best" : "latest", version);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return llmos_error_set(err, LLMOS_ENOTFOUND, "%s: no %s checkpoint", c->path, which ? "best" : "latest");
    return rc ? lmdb_err(err, rc, "cannot read", c->path) : 0;
}

int train_ckpt_blob(train_ckpt_t *c, int version, const char *name, void **data, size_t *bytes, llmos_error_t *err) {
    *data = NULL;
    *bytes = 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
    if (rc) return lmdb_err(err, rc, "cannot read", c->path);
    char key[TRAIN_NAME_MAX + 32];
    snprintf(key, sizeof key, "v%08d/%s", version, name);
    MDB_val k = {strlen(key), key}, v;
    rc = mdb_get(txn, c->dbi, &k, &v);
    if (!rc) {
        *data = malloc(v.mv_size + 1); /* + 1: a NUL after text records */
        if (*data) {
            memcpy(*data, v.mv_data, v.mv_size);
            ((char *)*data)[v.mv_size] = 0;
            *bytes = v.mv_size;
        }
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return llmos_error_set(err, LLMOS_ENOTFOUND, "%s: version %d has no record %s", c->path, version, name);
    if (rc) return lmdb_err(err, rc, "cannot read", c->path);
    return *data ? 0 : llmos_error_set(err, LLMOS_ENOMEM, "no memory");
}

int train_ckpt_meta(train_ckpt_t *c, int version, char **json, llmos_error_t *err) {
    size_t n;
    void *p;
    int rc = train_ckpt_blob(c, version, "meta", &p, &n, err);
    if (rc == LLMOS_ENOTFOUND) return llmos_error_set(err, LLMOS_ENOTFOUND, "%s: no version %d", c->path, version);
    *json = p;
    return rc;
}

/* A read-only transaction and a cursor on the store. */
static int begin_read(train_ckpt_t *c, MDB_txn **txn, MDB_cursor **cur, llmos_error_t *err) {
    int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, txn);
    if (rc) return lmdb_err(err, rc, "cannot read", c->path);
    rc = mdb_cursor_open(*txn, c->dbi, cur);
    if (rc) {
        mdb_txn_abort(*txn);
        return lmdb_err(err, rc, "cannot read", c->path);
    }
    return 0;
}

int train_ckpt_load(train_ckpt_t *c, int version, train_net_t *n, train_adamw_t *a, llmos_error_t *err) {
    const train_layout_t *l = train_net_layout(n);
    float *p = train_net_params(n);
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_read(c, &txn, &cur, err);
    if (rc) return rc;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "v%08d/t/", version);
    size_t pl = strlen(prefix);
    MDB_val k = {pl, prefix}, v;
    int found = 0, out = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!rc && k.mv_size > pl && memcmp(k.mv_data, prefix, pl) == 0) {
        char name[TRAIN_NAME_MAX + 1];
        size_t nl = k.mv_size - pl < TRAIN_NAME_MAX ? k.mv_size - pl : TRAIN_NAME_MAX;
        memcpy(name, (char *)k.mv_data + pl, nl);
        name[nl] = 0;
        int ti = train_layout_find(l, name);
        if (ti < 0) {
            out = llmos_error_set(err, LLMOS_EFORMAT, "%s version %d: tensor %s is not in this net", c->path, version, name);
            break;
        }
        size_t cnt = (size_t)l->t[ti].rows * (size_t)l->t[ti].cols;
        if (v.mv_size != cnt * sizeof(float)) {
            out = llmos_error_set(err, LLMOS_EFORMAT, "%s version %d: tensor %s has %zu bytes, the net needs %zu", c->path,
                                  version, name, v.mv_size, cnt * sizeof(float));
            break;
        }
        memcpy(p + l->t[ti].off, v.mv_data, v.mv_size);
        found++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!out && rc && rc != MDB_NOTFOUND) out = lmdb_err(err, rc, "cannot read", c->path);
    if (!out && !found) out = llmos_error_set(err, LLMOS_ENOTFOUND, "%s: version %d has no tensors", c->path, version);
    for (int w = 0; !out && a && w < 2; w++) {
        char key[32];
        snprintf(key, sizeof key, "v%08d/opt/%c", version, w ? 'v' : 'm');
        MDB_val kk = {strlen(key), key}, vv;
        rc = mdb_get(txn, c->dbi, &kk, &vv);
        if (rc) out = lmdb_err(err, rc, "cannot read optimiser state from", c->path);
        else if (vv.mv_size != a->len * sizeof(float))
            out = llmos_error_set(err, LLMOS_EFORMAT, "%s version %d: optimiser state of %zu bytes, expected %zu", c->path,
                                  version, vv.mv_size, a->len * sizeof(float));
        else memcpy(w ? a->v : a->m, vv.mv_data, vv.mv_size);
    }
    mdb_txn_abort(txn);
    return out;
}

int train_ckpt_list(train_ckpt_t *c, int (*fn)(int, const char *, size_t, void *), void *ctx, llmos_error_t *err) {
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_read(c, &txn, &cur, err);
    if (rc) return rc;
    MDB_val k = {1, "v"}, v;
    int cur_ver = -1, out = 0;
    size_t bytes = 0;
    char *meta = NULL;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (;;) {
        int ver = -1;
        if (!rc && k.mv_size > 10 && ((char *)k.mv_data)[0] == 'v' && ((char *)k.mv_data)[9] == '/') {
            char num[9];
            memcpy(num, (char *)k.mv_data + 1, 8);
            num[8] = 0;
            ver = atoi(num);
        }
        if (ver != cur_ver && cur_ver > 0) {
            out = fn(cur_ver, meta ? meta : "{}", bytes, ctx);
            free(meta);
            meta = NULL;
            bytes = 0;
            if (out) break;
        }
        if (ver < 0) break;
        cur_ver = ver;
        bytes += v.mv_size;
        if (k.mv_size == 14 && memcmp((char *)k.mv_data + 9, "/meta", 5) == 0) {
            free(meta);
            meta = malloc(v.mv_size + 1);
            if (meta) {
                memcpy(meta, v.mv_data, v.mv_size);
                meta[v.mv_size] = 0;
            }
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    free(meta);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (!out && rc && rc != MDB_NOTFOUND) out = lmdb_err(err, rc, "cannot read", c->path);
    return out;
}
