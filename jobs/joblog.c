/*
 * joblog.c — the durable job log on LMDB (see joblog.h).  One write
 * transaction stays open across calls until joblog_commit (group commit);
 * reads go through it when it is open, else through one reusable read
 * transaction that is reset at the start of every call, so a view returned
 * by one call stays valid exactly until the next.
 */
#include "jobs/joblog.h"

#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE ((size_t)16 << 30)
#define REC_VERSION 1u
#define TASK_KEY_MAX (JOBLOG_ID_MAX + 3)
#define FIN_KEY_MAX (JOBLOG_ID_MAX + 8)

/* The fixed part of a stored record; tenant and error bytes follow. */
typedef struct rec_hdr {
    uint64_t seq, submitted_ms, started_ms, finished_ms;
    int32_t priority;
    uint32_t state;
    uint32_t ntasks;
    uint16_t tenant_len, error_len;
    uint32_t version;
    uint32_t reserved;
} rec_hdr_t;

struct joblog {
    MDB_env *env;
    MDB_dbi jobs, specs, tasks, finished;
    MDB_txn *wtxn;      /* the open write transaction, or NULL */
    MDB_txn *rtxn;      /* reusable read transaction (reset between calls) */
    bool rtxn_live;
    uint32_t pending;   /* writes in wtxn */
    uint64_t first_write_ns;
    int owner_fd;       /* flock'ed DIR/jobs.owner: who else uses this log */
    char path[4096];
};

static int lmdb_err(llmos_error_t *err, int rc, const char *what, const char *path) {
    int code = LLMOS_EIO;
    if (rc == MDB_MAP_FULL || rc == ENOMEM || rc == MDB_TXN_FULL) code = LLMOS_ENOMEM;
    else if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED) code = LLMOS_EFORMAT;
    return llmos_error_set(err, code, "job log %s: %s: %s", path, what, mdb_strerror(rc));
}

static int mkdir_p(const char *dir, llmos_error_t *err) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return llmos_error_set(err, LLMOS_EINVAL, "data directory path '%s' is empty or too long", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0775) != 0 && errno != EEXIST)
            return llmos_error_set(err, LLMOS_EIO, "cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return llmos_error_set(err, LLMOS_EIO, "data directory '%s' is not a directory", dir);
    return 0;
}

int joblog_open(const char *dir, const joblog_opts_t *opts, joblog_t **out, llmos_error_t *err) {
    *out = NULL;
    joblog_opts_t o = opts ? *opts : (joblog_opts_t){0};
    int rc = mkdir_p(dir, err);
    if (rc) return rc;
    joblog_t *log = calloc(1, sizeof *log);
    if (!log) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the job log");
    log->owner_fd = -1;
    if ((size_t)snprintf(log->path, sizeof log->path, "%s/%s", dir, JOBLOG_FILE) >= sizeof log->path) {
        free(log);
        return llmos_error_set(err, LLMOS_EINVAL, "data directory path '%s' is too long", dir);
    }
    unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | (o.nosync ? MDB_NOSYNC | MDB_WRITEMAP : 0);
    MDB_txn *txn = NULL;
    int m = mdb_env_create(&log->env);
    if (!m) m = mdb_env_set_maxdbs(log->env, 4);
    if (!m) m = mdb_env_set_mapsize(log->env, o.map_size ? o.map_size : DEFAULT_MAP_SIZE);
    if (!m) m = mdb_env_open(log->env, log->path, flags, 0664);
    if (m) {
        rc = lmdb_err(err, m, "opening", log->path);
        goto fail;
    }
    m = mdb_txn_begin(log->env, NULL, 0, &txn);
    if (!m) m = mdb_dbi_open(txn, "jobs", MDB_CREATE, &log->jobs);
    if (!m) m = mdb_dbi_open(txn, "specs", MDB_CREATE, &log->specs);
    if (!m) m = mdb_dbi_open(txn, "tasks", MDB_CREATE, &log->tasks);
    if (!m) m = mdb_dbi_open(txn, "finished", MDB_CREATE, &log->finished);
    if (!m) {
        m = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (m) {
        if (txn) mdb_txn_abort(txn);
        rc = lmdb_err(err, m, "creating its databases", log->path);
        goto fail;
    }
    /* Two nodes on one log would each re-run the other's unfinished jobs
     * after a restart.  LMDB itself allows it, so only warn (several test
     * nodes started in one directory share the default data dir). */
    char owner[4200];
    snprintf(owner, sizeof owner, "%s/jobs.owner", dir);
    log->owner_fd = open(owner, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (log->owner_fd >= 0 && flock(log->owner_fd, LOCK_EX | LOCK_NB) != 0)
        LLMOS_WARN("job log %s is already open in another process: each node should have its own data directory "
                   "(--data-dir), or jobs may run twice",
                   log->path);
    *out = log;
    return 0;
fail:
    if (log->env) mdb_env_close(log->env);
    free(log);
    return rc;
}

void joblog_close(joblog_t **logp) {
    if (!logp || !*logp) return;
    joblog_t *log = *logp;
    (void)joblog_commit(log, NULL);
    if (log->rtxn) mdb_txn_abort(log->rtxn);
    mdb_env_close(log->env);
    if (log->owner_fd >= 0) close(log->owner_fd);
    free(log);
    *logp = NULL;
}

/* Ends the previous call's read snapshot. */
static void read_done(joblog_t *log) {
    if (log->rtxn_live) {
        mdb_txn_reset(log->rtxn);
        log->rtxn_live = false;
    }
}

/* The transaction reads go through. */
static int read_txn(joblog_t *log, MDB_txn **txn, llmos_error_t *err) {
    read_done(log);
    if (log->wtxn) {
        *txn = log->wtxn;
        return 0;
    }
    int m = log->rtxn ? mdb_txn_renew(log->rtxn) : mdb_txn_begin(log->env, NULL, MDB_RDONLY, &log->rtxn);
    if (m) return lmdb_err(err, m, "beginning a read", log->path);
    log->rtxn_live = true;
    *txn = log->rtxn;
    return 0;
}

static int write_txn(joblog_t *log, MDB_txn **txn, llmos_error_t *err) {
    read_done(log);
    if (!log->wtxn) {
        int m = mdb_txn_begin(log->env, NULL, 0, &log->wtxn);
        if (m) {
            log->wtxn = NULL;
            return lmdb_err(err, m, "beginning a write", log->path);
        }
        log->first_write_ns = llmos_now_ns();
    }
    log->pending++;
    *txn = log->wtxn;
    return 0;
}

/* A failed write poisons the transaction: abort it so the next call starts
 * clean (the pending writes are lost and the caller is told). */
static int write_failed(joblog_t *log, int m, const char *what, llmos_error_t *err) {
    if (log->wtxn) mdb_txn_abort(log->wtxn);
    log->wtxn = NULL;
    log->pending = 0;
    return lmdb_err(err, m, what, log->path);
}

int joblog_commit(joblog_t *log, llmos_error_t *err) {
    read_done(log);
    if (!log->wtxn) return 0;
    int m = mdb_txn_commit(log->wtxn);
    log->wtxn = NULL;
    log->pending = 0;
    if (m) return lmdb_err(err, m, "commit", log->path);
    return 0;
}

uint32_t joblog_pending(const joblog_t *log) { return log->wtxn ? log->pending : 0; }

uint64_t joblog_pending_age_ms(const joblog_t *log) {
    return log->wtxn ? (llmos_now_ns() - log->first_write_ns) / 1000000u : 0;
}

static int check_id(const char *id, llmos_error_t *err) {
    size_t n = id ? strlen(id) : 0;
    if (n == 0) return llmos_error_set(err, LLMOS_EINVAL, "job id is empty");
    if (n > JOBLOG_ID_MAX) return llmos_error_set(err, LLMOS_EINVAL, "job id is %zu bytes; at most %d", n, JOBLOG_ID_MAX);
    return 0;
}

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* Record bytes into buf (cap >= sizeof hdr + tenant + error max). */
static size_t rec_encode(uint8_t *buf, const joblog_job_t *j, const char *error, size_t error_len) {
    rec_hdr_t h = {0};
    h.seq = j->seq;
    h.submitted_ms = j->submitted_ms;
    h.started_ms = j->started_ms;
    h.finished_ms = j->finished_ms;
    h.priority = j->priority;
    h.state = j->state;
    h.ntasks = j->ntasks;
    h.tenant_len = (uint16_t)j->tenant_len;
    if (error_len > JOBLOG_ERROR_MAX) error_len = JOBLOG_ERROR_MAX;
    h.error_len = (uint16_t)error_len;
    h.version = REC_VERSION;
    memcpy(buf, &h, sizeof h);
    if (j->tenant_len) memcpy(buf + sizeof h, j->tenant, j->tenant_len);
    if (error_len) memcpy(buf + sizeof h + j->tenant_len, error, error_len);
    return sizeof h + j->tenant_len + error_len;
}

static int rec_decode(const MDB_val *v, joblog_job_t *j, const char *id, llmos_error_t *err) {
    rec_hdr_t h;
    if (v->mv_size < sizeof h) goto bad;
    memcpy(&h, v->mv_data, sizeof h);
    if (h.version != REC_VERSION || sizeof h + (size_t)h.tenant_len + h.error_len != v->mv_size) goto bad;
    memset(j, 0, sizeof *j);
    j->seq = h.seq;
    j->submitted_ms = h.submitted_ms;
    j->started_ms = h.started_ms;
    j->finished_ms = h.finished_ms;
    j->priority = h.priority;
    j->state = h.state;
    j->ntasks = h.ntasks;
    j->tenant = (const char *)v->mv_data + sizeof h;
    j->tenant_len = h.tenant_len;
    j->error = j->tenant + h.tenant_len;
    j->error_len = h.error_len;
    return 0;
bad:
    return llmos_error_set(err, LLMOS_EFORMAT, "job log: the record of job '%s' is damaged (%zu bytes)", id,
                           v->mv_size);
}

enum { REC_MAX = sizeof(rec_hdr_t) + JOBLOG_TENANT_MAX + JOBLOG_ERROR_MAX };

int joblog_job_add(joblog_t *log, const char *id, const joblog_job_t *job, llmos_error_t *err) {
    int rc = check_id(id, err);
    if (rc) return rc;
    if (job->tenant_len > JOBLOG_TENANT_MAX)
        return llmos_error_set(err, LLMOS_EINVAL, "tenant is %zu bytes; at most %d", job->tenant_len,
                               JOBLOG_TENANT_MAX);
    MDB_txn *txn = NULL;
    rc = write_txn(log, &txn, err);
    if (rc) return rc;
    uint8_t buf[REC_MAX];
    MDB_val k = {strlen(id), (void *)id};
    MDB_val v = {rec_encode(buf, job, job->error, job->error_len), buf};
    int m = mdb_put(txn, log->jobs, &k, &v, MDB_NOOVERWRITE);
    if (m == MDB_KEYEXIST) return llmos_error_set(err, LLMOS_EEXIST, "job '%s' is already in the log", id);
    if (m) return write_failed(log, m, "writing a job", err);
    MDB_val s = {job->spec_len, (void *)job->spec};
    m = mdb_put(txn, log->specs, &k, &s, 0);
    if (m) return write_failed(log, m, "writing a job spec", err);
    if (job->finished_ms) {
        uint8_t fk[FIN_KEY_MAX];
        put_be64(fk, job->finished_ms);
        memcpy(fk + 8, id, k.mv_size);
        MDB_val f = {8 + k.mv_size, fk}, e = {0, (void *)""};
        m = mdb_put(txn, log->finished, &f, &e, 0);
        if (m) return write_failed(log, m, "writing the retention index", err);
    }
    return 0;
}

int joblog_job_update(joblog_t *log, const char *id, uint32_t state, uint64_t started_ms, uint64_t finished_ms,
                      const char *error, llmos_error_t *err) {
    int rc = check_id(id, err);
    if (rc) return rc;
    MDB_txn *txn = NULL;
    rc = write_txn(log, &txn, err);
    if (rc) return rc;
    MDB_val k = {strlen(id), (void *)id}, v;
    int m = mdb_get(txn, log->jobs, &k, &v);
    if (m == MDB_NOTFOUND) return llmos_error_set(err, LLMOS_ENOTFOUND, "job '%s' is not in the log", id);
    if (m) return write_failed(log, m, "reading a job", err);
    joblog_job_t j;
    rc = rec_decode(&v, &j, id, err);
    if (rc) return rc;
    uint64_t old_finished = j.finished_ms;
    char tenant[JOBLOG_TENANT_MAX];
    memcpy(tenant, j.tenant, j.tenant_len);
    j.tenant = tenant;
    j.state = state;
    j.started_ms = started_ms;
    j.finished_ms = finished_ms;
    uint8_t buf[REC_MAX];
    const char *e = error ? error : "";
    MDB_val nv = {rec_encode(buf, &j, e, strlen(e)), buf};
    m = mdb_put(txn, log->jobs, &k, &nv, 0);
    if (m) return write_failed(log, m, "updating a job", err);
    if (finished_ms != old_finished) {
        uint8_t fk[FIN_KEY_MAX];
        memcpy(fk + 8, id, k.mv_size);
        MDB_val f = {8 + k.mv_size, fk}, empty = {0, (void *)""};
        if (old_finished) {
            put_be64(fk, old_finished);
            m = mdb_del(txn, log->finished, &f, NULL);
            if (m && m != MDB_NOTFOUND) return write_failed(log, m, "updating the retention index", err);
        }
        if (finished_ms) {
            put_be64(fk, finished_ms);
            m = mdb_put(txn, log->finished, &f, &empty, 0);
            if (m) return write_failed(log, m, "writing the retention index", err);
        }
    }
    return 0;
}

int joblog_job_get(joblog_t *log, const char *id, bool want_spec, joblog_job_t *out, llmos_error_t *err) {
    int rc = check_id(id, err);
    if (rc) return rc;
    MDB_txn *txn = NULL;
    rc = read_txn(log, &txn, err);
    if (rc) return rc;
    MDB_val k = {strlen(id), (void *)id}, v;
    int m = mdb_get(txn, log->jobs, &k, &v);
    if (m == MDB_NOTFOUND) return llmos_error_set(err, LLMOS_ENOTFOUND, "no job '%s'", id);
    if (m) return lmdb_err(err, m, "reading a job", log->path);
    rc = rec_decode(&v, out, id, err);
    if (rc || !want_spec) return rc;
    m = mdb_get(txn, log->specs, &k, &v);
    if (m) return llmos_error_set(err, LLMOS_EFORMAT, "job log: job '%s' has no spec (%s)", id, mdb_strerror(m));
    out->spec = v.mv_data;
    out->spec_len = v.mv_size;
    return 0;
}

static size_t task_key(uint8_t *buf, const char *id, size_t n, uint32_t index) {
    memcpy(buf, id, n);
    buf[n] = 0;
    buf[n + 1] = (uint8_t)(index >> 8);
    buf[n + 2] = (uint8_t)index;
    return n + 3;
}

int joblog_task_put(joblog_t *log, const char *id, uint32_t index, const void *data, size_t len,
                    llmos_error_t *err) {
    int rc = check_id(id, err);
    if (rc) return rc;
    if (index > 0xFFFF) return llmos_error_set(err, LLMOS_EINVAL, "task index %u is over 65535", index);
    MDB_txn *txn = NULL;
    rc = write_txn(log, &txn, err);
    if (rc) return rc;
    uint8_t kb[TASK_KEY_MAX];
    MDB_val k = {task_key(kb, id, strlen(id), index), kb}, v = {len, (void *)(len ? data : "")};
    int m = mdb_put(txn, log->tasks, &k, &v, 0);
    if (m) return write_failed(log, m, "writing a task", err);
    return 0;
}

int joblog_task_get(joblog_t *log, const char *id, uint32_t index, const void **data, size_t *len,
                    llmos_error_t *err) {
    int rc = check_id(id, err);
    if (rc) return rc;
    MDB_txn *txn = NULL;
    rc = read_txn(log, &txn, err);
    if (rc) return rc;
    uint8_t kb[TASK_KEY_MAX];
    MDB_val k = {task_key(kb, id, strlen(id), index & 0xFFFF), kb}, v;
    int m = mdb_get(txn, log->tasks, &k, &v);
    if (m == MDB_NOTFOUND) return llmos_error_set(err, LLMOS_ENOTFOUND, "job '%s' has no task %u in the log", id, index);
    if (m) return lmdb_err(err, m, "reading a task", log->path);
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

/* Walks jobs from `after` (exclusive), calling fn for those that match. */
static int walk(joblog_t *log, const char *tenant, uint32_t state, const char *after, uint32_t limit,
                uint32_t scan_max, joblog_each_fn fn, void *user, char *next, size_t next_cap, llmos_error_t *err) {
    /* `after` may be the caller's `next` buffer: copy it before clearing. */
    char after_buf[JOBLOG_ID_MAX + 1];
    snprintf(after_buf, sizeof after_buf, "%s", after ? after : "");
    after = after_buf;
    if (next && next_cap) next[0] = 0;
    MDB_txn *txn = NULL;
    int rc = read_txn(log, &txn, err);
    if (rc) return rc;
    MDB_cursor *cur;
    int m = mdb_cursor_open(txn, log->jobs, &cur);
    if (m) return lmdb_err(err, m, "opening a cursor", log->path);
    MDB_val k = {0, NULL}, v;
    size_t alen = after ? strlen(after) : 0;
    if (alen) {
        k.mv_size = alen;
        k.mv_data = (void *)after;
        m = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (!m && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0) m = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        m = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    size_t tlen = tenant ? strlen(tenant) : 0;
    uint32_t taken = 0, scanned = 0;
    char id[JOBLOG_ID_MAX + 1];
    while (!m) {
        if (k.mv_size > JOBLOG_ID_MAX) {
            rc = llmos_error_set(err, LLMOS_EFORMAT, "job log: a key of %zu bytes", k.mv_size);
            break;
        }
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = 0;
        if ((limit && taken == limit) || (scan_max && scanned == scan_max)) {
            /* More remain: the next page starts after the last one looked at. */
            break;
        }
        scanned++;
        joblog_job_t j;
        rc = rec_decode(&v, &j, id, err);
        if (rc) break;
        bool match = (!tlen || (j.tenant_len == tlen && memcmp(j.tenant, tenant, tlen) == 0)) &&
                     (!state || j.state == state);
        if (next && next_cap) snprintf(next, next_cap, "%s", id);
        if (match) {
            taken++;
            rc = fn(user, id, k.mv_size, &j);
            if (rc) break;
        }
        m = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (m == MDB_NOTFOUND) {
        if (next && next_cap) next[0] = 0; /* the end */
    } else if (m && !rc) {
        rc = lmdb_err(err, m, "listing jobs", log->path);
    }
    mdb_cursor_close(cur);
    return rc;
}

int joblog_foreach(joblog_t *log, joblog_each_fn fn, void *user, llmos_error_t *err) {
    return walk(log, NULL, 0, NULL, 0, 0, fn, user, NULL, 0, err);
}

int joblog_list(joblog_t *log, const char *tenant, uint32_t state, const char *after, uint32_t limit,
                uint32_t scan_max, joblog_each_fn fn, void *user, char *next, size_t next_cap, llmos_error_t *err) {
    return walk(log, tenant, state, after, limit, scan_max, fn, user, next, next_cap, err);
}

/* Deletes every key of `dbi` that starts with prefix[0..n). */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t n) {
    MDB_cursor *cur;
    int m = mdb_cursor_open(txn, dbi, &cur);
    if (m) return m;
    MDB_val k = {n, (void *)prefix}, v;
    m = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!m && k.mv_size >= n && memcmp(k.mv_data, prefix, n) == 0) {
        m = mdb_cursor_del(cur, 0);
        if (!m) m = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    return m == MDB_NOTFOUND || m == EINVAL ? 0 : m;
}

int joblog_purge(joblog_t *log, uint64_t now_ms, uint64_t retention_ms, uint32_t max, uint32_t *purged,
                 llmos_error_t *err) {
    if (purged) *purged = 0;
    MDB_txn *txn = NULL;
    int rc = read_txn(log, &txn, err);
    if (rc) return rc;
    /* Look first (cheap, no write transaction when nothing is due). */
    MDB_cursor *cur;
    int m = mdb_cursor_open(txn, log->finished, &cur);
    if (m) return lmdb_err(err, m, "opening a cursor", log->path);
    MDB_val k, v;
    m = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    bool due = !m && k.mv_size >= 8 && get_be64(k.mv_data) + retention_ms <= now_ms;
    mdb_cursor_close(cur);
    if (!due) return 0;
    rc = write_txn(log, &txn, err);
    if (rc) return rc;
    m = mdb_cursor_open(txn, log->finished, &cur);
    if (m) return write_failed(log, m, "opening a cursor", err);
    uint32_t n = 0;
    while (n < max) {
        m = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (m) break;
        if (k.mv_size < 9 || k.mv_size > FIN_KEY_MAX) {
            m = MDB_CORRUPTED;
            break;
        }
        if (get_be64(k.mv_data) + retention_ms > now_ms) break;
        uint8_t id[JOBLOG_ID_MAX + 3];
        size_t idlen = k.mv_size - 8;
        memcpy(id, (uint8_t *)k.mv_data + 8, idlen);
        m = mdb_cursor_del(cur, 0);
        if (m) break;
        MDB_val jk = {idlen, id};
        m = mdb_del(txn, log->jobs, &jk, NULL);
        if (!m || m == MDB_NOTFOUND) m = mdb_del(txn, log->specs, &jk, NULL);
        id[idlen] = 0;
        if (!m || m == MDB_NOTFOUND) m = del_prefix(txn, log->tasks, id, idlen + 1);
        if (m && m != MDB_NOTFOUND) break;
        m = 0;
        n++;
    }
    mdb_cursor_close(cur);
    if (m && m != MDB_NOTFOUND) return write_failed(log, m, "purging finished jobs", err);
    log->pending += n;
    if (purged) *purged = n;
    return 0;
}

int joblog_count(joblog_t *log, uint64_t *count, llmos_error_t *err) {
    MDB_txn *txn = NULL;
    int rc = read_txn(log, &txn, err);
    if (rc) return rc;
    MDB_stat st;
    int m = mdb_stat(txn, log->jobs, &st);
    if (m) return lmdb_err(err, m, "stat", log->path);
    *count = st.ms_entries;
    return 0;
}
