/*
 * joblog.h — the durable job log: `jobs.lmdb` in a node's data directory.
 *
 * What the scheduler must not lose lives here: every acknowledged job (its
 * spec, the packed llmos.Job), its state and timestamps, and each task's
 * state and result (a packed llmos.TaskResult).  The log stores bytes; it
 * knows nothing of protobuf, so it is testable alone.
 *
 * Databases in the one environment (a single file, MDB_NOSUBDIR):
 *   jobs      id -> record: fixed header (seq, state, priority, times, task
 *             count) + tenant + error text.  Small, rewritten on each change.
 *   specs     id -> the packed Job as submitted (written once).
 *   tasks     id \0 index(u16 big-endian) -> packed TaskResult.
 *   finished  finished_ms(u64 big-endian) id -> "" : the retention index.
 *
 * Group commit: every write joins one open write transaction; nothing is
 * durable until joblog_commit().  The scheduler writes a whole batch of
 * messages, commits once, and only then sends the acknowledgements, so "a
 * job is written before it is acknowledged" holds at a fraction of the cost
 * of a commit per job.  Reads see the open transaction's own writes.
 *
 * With opts.nosync the environment is opened MDB_NOSYNC | MDB_WRITEMAP:
 * commits are not flushed to disk (a crash of the machine, not of the
 * process, may lose the last commits) and pages are written in place
 * through the map (no write() per commit; the file then shows the map size
 * as its length, sparse).  The default flushes each commit.
 *
 * Records use host byte order (the log is local to its node); keys are
 * big-endian so they sort.
 *
 * Thread-safety: none.  One thread at a time; an open write transaction
 * pins the log to the thread that opened it until joblog_commit.
 */
#ifndef LLMOS_JOBS_JOBLOG_H
#define LLMOS_JOBS_JOBLOG_H

#include "runtime/base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOBLOG_FILE "jobs.lmdb"
#define JOBLOG_ID_MAX 128       /* bytes of a job id */
#define JOBLOG_TENANT_MAX 128   /* bytes of a tenant name */
#define JOBLOG_ERROR_MAX 1024   /* bytes of a stored error text (longer is cut) */

typedef struct joblog joblog_t;

typedef struct joblog_opts {
    bool nosync;        /* true = MDB_NOSYNC: commits are not fsynced */
    size_t map_size;    /* bytes the file may grow to; 0 = 16 GiB (sparse) */
} joblog_opts_t;

/* A job's record.  In joblog_job_get results the strings and spec are
 * views into the log, valid until the next joblog_* call on the same log. */
typedef struct joblog_job {
    uint64_t seq;            /* submission order, unique */
    uint64_t submitted_ms;   /* Unix ms */
    uint64_t started_ms;     /* 0 = not started */
    uint64_t finished_ms;    /* 0 = not finished; non-zero = terminal (retention clock) */
    int32_t priority;
    uint32_t state;          /* a JobState value (job.proto) */
    uint32_t ntasks;
    const char *tenant;      /* tenant_len bytes, not NUL-terminated in views */
    size_t tenant_len;
    const char *error;       /* error_len bytes */
    size_t error_len;
    const uint8_t *spec;     /* joblog_job_get with want_spec: the packed Job */
    size_t spec_len;
} joblog_job_t;

/* Opens (creating dir and the file if missing) DIR/jobs.lmdb.  opts may be
 * NULL.  Errors: LLMOS_EIO (cannot create or open: the path is in the
 * message), LLMOS_EFORMAT (the file is not an LMDB environment), LLMOS_ENOMEM. */
int joblog_open(const char *dir, const joblog_opts_t *opts, joblog_t **out, llmos_error_t *err);
/* Commits what is pending, closes, sets *log to NULL.  NULL-safe. */
void joblog_close(joblog_t **log);

/* Makes every write since the last commit durable.  No-op when nothing is
 * pending.  Errors: LLMOS_EIO, LLMOS_ENOMEM (map full: raise map_size);
 * after an error the pending writes are lost (the transaction is aborted). */
int joblog_commit(joblog_t *log, llmos_error_t *err);
/* Writes in the open transaction (0 = none open). */
uint32_t joblog_pending(const joblog_t *log);
/* Milliseconds since the open transaction's first write (0 = none open). */
uint64_t joblog_pending_age_ms(const joblog_t *log);

/* Writes a new job: record + spec (job->spec, spec_len).  Errors: LLMOS_EEXIST
 * (the id is already logged), LLMOS_EINVAL (id empty or over JOBLOG_ID_MAX,
 * tenant over JOBLOG_TENANT_MAX), LLMOS_EIO, LLMOS_ENOMEM. */
int joblog_job_add(joblog_t *log, const char *id, const joblog_job_t *job, llmos_error_t *err);
/* Rewrites a job's record (state, times, priority, error; the spec and seq
 * stay).  Setting finished_ms (non-zero) enters it in the retention index.
 * Errors: LLMOS_ENOTFOUND, LLMOS_EIO, LLMOS_ENOMEM. */
int joblog_job_update(joblog_t *log, const char *id, uint32_t state, uint64_t started_ms, uint64_t finished_ms,
                      const char *error, llmos_error_t *err);
/* Reads a job's record (and, if want_spec, its spec) into *out (views, see
 * joblog_job_t).  Errors: LLMOS_ENOTFOUND, LLMOS_EFORMAT (a damaged record),
 * LLMOS_EIO. */
int joblog_job_get(joblog_t *log, const char *id, bool want_spec, joblog_job_t *out, llmos_error_t *err);

/* Writes task `index`'s state/result bytes (a packed TaskResult).  Errors:
 * LLMOS_EINVAL (index > 65535), LLMOS_EIO, LLMOS_ENOMEM. */
int joblog_task_put(joblog_t *log, const char *id, uint32_t index, const void *data, size_t len, llmos_error_t *err);
/* Reads task `index`'s bytes: *data is a view valid until the next joblog_*
 * call.  Errors: LLMOS_ENOTFOUND (never written), LLMOS_EIO. */
int joblog_task_get(joblog_t *log, const char *id, uint32_t index, const void **data, size_t *len,
                    llmos_error_t *err);

/* Calls fn for every job in id order (views valid during the call; no spec).
 * fn returns 0 to go on, non-zero to stop (that value is returned).  fn must
 * not call the log.  Used at start-up (recovery). */
typedef int (*joblog_each_fn)(void *user, const char *id, size_t id_len, const joblog_job_t *job);
int joblog_foreach(joblog_t *log, joblog_each_fn fn, void *user, llmos_error_t *err);

/* Pages through jobs in id order after `after` (NULL/"" = from the start),
 * keeping those of `tenant` (NULL/"" = any) and `state` (0 = any), calling fn
 * for at most `limit` of them.  At most scan_max records are looked at
 * (0 = no cap).  *next (cap next_cap, may be NULL) gets the id to pass as
 * `after` for the next page, "" when the end was reached. */
int joblog_list(joblog_t *log, const char *tenant, uint32_t state, const char *after, uint32_t limit,
                uint32_t scan_max, joblog_each_fn fn, void *user, char *next, size_t next_cap, llmos_error_t *err);

/* Deletes, oldest first, at most `max` finished jobs (record, spec, tasks)
 * whose finished_ms + retention_ms <= now_ms.  *purged (may be NULL) gets how
 * many.  Part of the open transaction like any write. */
int joblog_purge(joblog_t *log, uint64_t now_ms, uint64_t retention_ms, uint32_t max, uint32_t *purged,
                 llmos_error_t *err);

/* Jobs in the log. */
int joblog_count(joblog_t *log, uint64_t *count, llmos_error_t *err);

#endif
