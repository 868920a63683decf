/*
 * cmd_batch.c — `llmos batch run IN.jsonl -o OUT.jsonl [--concurrency N]`:
 * push a JSONL file of jobs through a node, resumably.
 *
 * Input: one job per line in the JSON form of llmos_job_from_json (usually
 * the short form {"id":..,"kind":"generate","prompt":..}); blank lines are
 * skipped; a line without an id gets "line-<N>".
 *
 * Output: exactly one record per non-blank input line,
 *   {"id":..,"line":N,"status":"ok","job":..,"job_finished_ms":..,"latency_ms":..,
 *    <the last task's result>[,"tasks":[<the others>]]}
 *   {"id":..,"line":N,"status":"error","job":..,"error":"..."[,"state":..]}
 * A malformed line, a duplicate id or a job the node refused, failed,
 * cancelled or expired gives an error record; nothing crashes the run.
 * "job" is the line's job id (below), also for a line never submitted.
 *
 * Resuming.  Records are appended to OUT as results arrive (one write and
 * flush each), so after Ctrl-C, a killed node or a killed client OUT holds
 * every result delivered so far (a torn last line is dropped on the next
 * run).  A run first reads OUT: a record whose line number, id and job id
 * match an input line counts as that line's result (with --retry-errors
 * only "ok" ones do) and the line is not submitted again; a line whose text
 * changed has another job id, so it is submitted again and its new record
 * replaces the old one.  When every line has its record, OUT is rewritten
 * in input order (a temporary file renamed over it); an interrupted run
 * leaves OUT in arrival order.
 *
 * Exit status: 0 when every line has an "ok" record; 3 when every line has
 * a record and some are errors (this run's or an earlier one's); 1 when the
 * run stopped before that (the node could not be reached or stopped
 * answering, OUT could not be written); 2 usage; 130 interrupted.  Before
 * submitting anything the node is pinged: one that does not answer ends
 * the run at once with exit 1 and no record written.
 *
 * Job ids on the node are "<id>@<16 hex digits of a hash of the tenant and
 * the line's text>": the same line submitted again — after a crash of the
 * node or of this client — is the same job, so the node's durable log
 * answers with its result instead of running it twice, while a different
 * batch reusing the id "1" is a different job.
 *
 * Transport trouble (no answer, node down, overloaded) is retried with
 * back-off (submitting is idempotent); after --retry-for seconds without
 * any answer the run stops with exit 1 and can be resumed.  Workers are
 * threads with one client handle each (N jobs in flight); each waits in
 * short slices so Ctrl-C ends the run within seconds.
 */
#include "cmd_jobs.h"
#include "llmos/client.h"
#include "runtime/base/buf.h"
#include "runtime/base/clock.h"
#include "runtime/base/map.h"
#include "runtime/base/parse.h"
#include "runtime/base/progress.h"
#include "runtime/base/utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLICE_MS 2000u         /* one wait on the node; checks for Ctrl-C between slices */
#define DEFAULT_CONCURRENCY 8
#define DEFAULT_RETRY_FOR_S 60
#define EXIT_RECORD_ERRORS 3 /* complete, but some records are errors */

typedef struct line {
    const char *text; /* into the input buffer */
    size_t len;
    uint32_t lineno;  /* 1-based */
    char id[LLMOS_JOB_ID_MAX + 1];
    char job_id[LLMOS_JOB_ID_MAX + 1];
    int id_numeric;   /* the input's id was a JSON integer: echoed as one */
    int done;         /* has a record in OUT */
    long rec_off;     /* where its record starts in OUT, -1 = none */
    uint32_t rec_len; /* its length including the newline */
} line_t;

typedef struct batch {
    /* settings */
    const char *endpoint, *in_path, *out_path, *tenant;
    uint32_t timeout_ms, job_timeout_ms, retry_for_s;
    unsigned concurrency;
    int retry_errors;
    /* input */
    char *buf;
    line_t *lines;
    size_t n_lines;
    size_t *todo;   /* indexes of lines without a record */
    size_t n_todo;
    atomic_size_t next; /* next todo to take */
    /* output */
    pthread_mutex_t out_lock;
    FILE *out;
    long out_end;
    /* counts (under out_lock) */
    uint64_t ok, errors, tokens, done;
    size_t resumed_ok, resumed_errors,
        changed;      /* records kept from an earlier run; lines whose text changed */
    atomic_int fatal; /* 1: stop taking work (node gone for good, or a write failed) */
    atomic_int active; /* workers still running */
    char fatal_msg[1024];
} batch_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    if (interrupted) _exit(130); /* second Ctrl-C: OUT is already consistent up to its last flushed line */
    interrupted = 1;
}

static int stopping(batch_t *b) { return interrupted || atomic_load(&b->fatal); }

/* ---- input ---- */

/* The line's id (as in its JSON, or "line-N") without validating the rest
 * (llmos_job_json_id).  A line with a string holding a NUL ("a\u0000b",
 * which cJSON cuts to "a") keeps "line-N": its job is refused anyway, and
 * must not pass for "a". */
static void line_id(line_t *l) {
    if (llmos_job_json_id(l->text, l->len, l->id, sizeof l->id, &l->id_numeric, NULL) != 0)
        snprintf(l->id, sizeof l->id, "line-%u", l->lineno);
}

static void line_job_id(line_t *l, const char *tenant) {
    uint64_t h = llmos_hash_fnv1a(tenant ? tenant : "", tenant ? strlen(tenant) : 0);
    h = llmos_hash_fnv1a_more(h, "\n", 1);
    h = llmos_hash_fnv1a_more(h, l->text, l->len);
    size_t n = strlen(l->id);
    if (n + 17 <= LLMOS_JOB_ID_MAX) {
        char hex[20];
        snprintf(hex, sizeof hex, "@%016llx", (unsigned long long)h);
        memcpy(l->job_id, l->id, n);
        memcpy(l->job_id + n, hex, 18);
    } else /* long ids: the hash of the id stands in for it */
        snprintf(l->job_id, sizeof l->job_id, "%016llx@%016llx", (unsigned long long)llmos_hash_fnv1a(l->id, n),
                 (unsigned long long)h);
}

static int read_input(batch_t *b) {
    FILE *f = fopen(b->in_path, "rb");
    if (!f) {
        fprintf(stderr, "llmos batch: cannot open %s: %s\n", b->in_path, strerror(errno));
        return -1;
    }
    llmos_buf_t in = LLMOS_BUF_INIT;
    int rc = llmos_buf_read_file(&in, f, 0);
    fclose(f);
    size_t n = 0;
    b->buf = rc ? NULL : llmos_buf_take(&in, &n);
    llmos_buf_deinit(&in);
    if (!b->buf) {
        fprintf(stderr, "llmos batch: cannot read %s%s\n", b->in_path, rc == LLMOS_EIO ? "" : " (out of memory)");
        return -1;
    }
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += b->buf[i] == '\n';
    b->lines = calloc(count + 1, sizeof *b->lines);
    if (!b->lines) {
        fprintf(stderr, "llmos batch: out of memory for %zu lines\n", count + 1);
        return -1;
    }
    uint32_t lineno = 0;
    for (char *p = b->buf, *end = b->buf + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        lineno++;
        size_t len = (size_t)(e - p);
        if (len && p[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && (p[k] == ' ' || p[k] == '\t')) k++;
        if (k < len) {
            line_t *l = &b->lines[b->n_lines++];
            l->text = p;
            l->len = len;
            l->lineno = lineno;
            l->rec_off = -1;
            line_id(l);
            line_job_id(l, b->tenant);
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* ---- output ---- */

/* Appends one record (a cJSON object, deleted here) for line l. */
static void emit(batch_t *b, line_t *l, cJSON *rec, int ok, uint64_t tokens) {
    char *text = rec ? cJSON_PrintUnformatted(rec) : NULL;
    cJSON_Delete(rec);
    pthread_mutex_lock(&b->out_lock);
    if (!text) {
        snprintf(b->fatal_msg, sizeof b->fatal_msg, "out of memory for the record of line %u", l->lineno);
        atomic_store(&b->fatal, 1);
    } else {
        size_t n = strlen(text);
        if (fwrite(text, 1, n, b->out) != n || fputc('\n', b->out) == EOF || fflush(b->out) != 0) {
            snprintf(b->fatal_msg, sizeof b->fatal_msg, "cannot write %s: %s", b->out_path, strerror(errno));
            atomic_store(&b->fatal, 1);
        } else {
            l->done = 1;
            l->rec_off = b->out_end;
            l->rec_len = (uint32_t)(n + 1);
            b->out_end += (long)(n + 1);
            b->done++;
            if (ok) b->ok++;
            else b->errors++;
            b->tokens += tokens;
        }
    }
    pthread_mutex_unlock(&b->out_lock);
    free(text);
}

/* Adds s to obj under key, each invalid UTF-8 byte as U+FFFD (what is
 * printed must be valid JSON); 1 ok, 0 no memory. */
static int add_string(cJSON *obj, const char *key, const char *s) {
    char *fixed = llmos_utf8_repair(s, strlen(s), NULL);
    int ok = fixed && cJSON_AddStringToObject(obj, key, fixed);
    free(fixed);
    return ok;
}

/* Adds the members of task result t's JSON (llmos_task_result_to_json) to
 * obj; 1 ok, 0 no memory. */
static int add_result(cJSON *obj, const llmos_task_result_t *t) {
    char *text = NULL;
    cJSON *o = llmos_task_result_to_json(t, &text, NULL) == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    int ok = o != NULL;
    while (ok && o->child) {
        cJSON *m = cJSON_DetachItemViaPointer(o, o->child);
        ok = cJSON_AddItemToObject(obj, m->string, m);
        if (!ok) cJSON_Delete(m);
    }
    cJSON_Delete(o);
    return ok;
}

static cJSON *record_new(const line_t *l, const char *status) {
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    int ok = (l->id_numeric ? cJSON_AddNumberToObject(r, "id", strtod(l->id, NULL)) != NULL
                            : add_string(r, "id", l->id)) &&
             cJSON_AddNumberToObject(r, "line", l->lineno) && cJSON_AddStringToObject(r, "status", status);
    if (!ok) cJSON_Delete(r);
    return ok ? r : NULL;
}

static void emit_error(batch_t *b, line_t *l, const char *job, const llmos_job_status_t *st, const char *msg) {
    cJSON *r = record_new(l, "error");
    int ok = r && add_string(r, "job", job ? job : l->job_id) && add_string(r, "error", msg) &&
             (!st || cJSON_AddStringToObject(r, "state", llmos_job_state_name(st->state)));
    if (!ok) {
        cJSON_Delete(r);
        r = NULL; /* emit reports the missing record */
    }
    emit(b, l, r, 0, 0);
}

static void emit_status(batch_t *b, line_t *l, const llmos_job_status_t *st) {
    if (st->state != LLMOS_JOB_DONE) {
        char msg[600];
        const char *why = st->error[0] ? st->error : "";
        for (size_t i = 0; !why[0] && i < st->n_tasks; i++)
            if (st->tasks[i].error[0]) why = st->tasks[i].error;
        snprintf(msg, sizeof msg, "job %s%s%s", llmos_job_state_name(st->state), why[0] ? ": " : "", why);
        emit_error(b, l, st->id, st, msg);
        return;
    }
    cJSON *r = record_new(l, "ok");
    uint64_t tokens = 0;
    int ok = r && add_string(r, "job", st->id) &&
             cJSON_AddNumberToObject(r, "job_finished_ms", (double)st->finished_ms) &&
             cJSON_AddNumberToObject(r, "latency_ms", (double)(st->finished_ms - st->submitted_ms));
    if (ok && st->n_tasks) ok = add_result(r, &st->tasks[st->n_tasks - 1]);
    if (ok && st->n_tasks > 1) {
        cJSON *others = cJSON_AddArrayToObject(r, "tasks");
        ok = others != NULL;
        for (size_t i = 0; ok && i + 1 < st->n_tasks; i++) {
            cJSON *t = cJSON_CreateObject();
            ok = t && add_result(t, &st->tasks[i]) && cJSON_AddItemToArray(others, t);
            if (!ok) cJSON_Delete(t);
        }
    }
    for (size_t i = 0; i < st->n_tasks; i++)
        if (st->tasks[i].kind == LLMOS_TASK_GENERATE) tokens += st->tasks[i].n_tokens;
    if (!ok) {
        cJSON_Delete(r);
        r = NULL;
    }
    emit(b, l, r, 1, tokens);
}

/* Reads what an earlier run left in OUT, marks those lines done and
 * rewrites OUT with just the matching records (a torn last line, records of
 * other inputs and of lines whose text changed are dropped), then leaves it
 * open for appending. */
static int load_output(batch_t *b, size_t *resumed) {
    *resumed = 0;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", b->out_path) >= (int)sizeof tmp) {
        fprintf(stderr, "llmos batch: output path too long\n");
        return -1;
    }
    FILE *in = fopen(b->out_path, "rb");
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        fprintf(stderr, "llmos batch: cannot write %s: %s\n", tmp, strerror(errno));
        if (in) fclose(in);
        return -1;
    }
    long end = 0;
    int rc = 0;
    if (in) {
        /* index lines by line number for matching */
        uint32_t max_lineno = b->n_lines ? b->lines[b->n_lines - 1].lineno : 0;
        size_t *by_lineno = calloc((size_t)max_lineno + 1, sizeof *by_lineno); /* index + 1, 0 = none */
        char *rec = NULL;
        size_t cap = 0;
        ssize_t n;
        if (!by_lineno) rc = -1;
        for (size_t i = 0; by_lineno && i < b->n_lines; i++) by_lineno[b->lines[i].lineno] = i + 1;
        while (rc == 0 && (n = getline(&rec, &cap, in)) > 0) {
            if (rec[n - 1] != '\n') break; /* torn last line */
            cJSON *r = cJSON_ParseWithLength(rec, (size_t)n);
            const cJSON *ln = cJSON_GetObjectItemCaseSensitive(r, "line");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "status");
            const cJSON *job = cJSON_GetObjectItemCaseSensitive(r, "job");
            line_t *l = NULL;
            if (cJSON_IsNumber(ln) && ln->valuedouble >= 1 && ln->valuedouble <= max_lineno &&
                by_lineno[(size_t)ln->valuedouble])
                l = &b->lines[by_lineno[(size_t)ln->valuedouble] - 1];
            char idtext[LLMOS_JOB_ID_MAX + 1] = "";
            if (cJSON_IsString(id)) snprintf(idtext, sizeof idtext, "%s", id->valuestring);
            else if (cJSON_IsNumber(id)) snprintf(idtext, sizeof idtext, "%.0f", id->valuedouble);
            int same_line = l && !l->done && strcmp(idtext, l->id) == 0;
            /* the job id holds the hash of the line's text: another job id = the line changed */
            int same_text = same_line && cJSON_IsString(job) && strcmp(job->valuestring, l->job_id) == 0;
            int is_ok = cJSON_IsString(st) && strcmp(st->valuestring, "ok") == 0;
            int keep =
                same_text &&
                (is_ok || (!b->retry_errors && cJSON_IsString(st) && strcmp(st->valuestring, "error") == 0));
            if (same_line && cJSON_IsString(job) && !same_text) {
                fprintf(stderr,
                        "llmos batch: line %u (id '%s') changed since its record was written: submitting "
                        "it again as %s\n",
                        l->lineno, l->id, l->job_id);
                b->changed++;
            }
            cJSON_Delete(r);
            if (!keep) continue;
            if (is_ok)
                b->resumed_ok++;
            else
                b->resumed_errors++;
            if (fwrite(rec, 1, (size_t)n, out) != (size_t)n) {
                rc = -1;
                break;
            }
            l->done = 1;
            l->rec_off = end;
            l->rec_len = (uint32_t)n;
            end += n;
            (*resumed)++;
        }
        free(rec);
        free(by_lineno);
        fclose(in);
    }
    if (fflush(out) != 0 || rc) {
        fprintf(stderr, "llmos batch: cannot write %s: %s\n", tmp, strerror(errno));
        fclose(out);
        unlink(tmp);
        return -1;
    }
    fclose(out);
    if (rename(tmp, b->out_path) != 0 || !(b->out = fopen(b->out_path, "ab"))) {
        fprintf(stderr, "llmos batch: cannot replace %s: %s\n", b->out_path, strerror(errno));
        return -1;
    }
    b->out_end = end;
    return 0;
}

/* When every line has a record: OUT in input order (temporary + rename). */
static int write_ordered(batch_t *b) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", b->out_path);
    FILE *in = fopen(b->out_path, "rb"), *out = fopen(tmp, "wb");
    char *rec = NULL;
    size_t cap = 0;
    int rc = in && out ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < b->n_lines; i++) {
        line_t *l = &b->lines[i];
        if (l->rec_len > cap) {
            char *g = realloc(rec, l->rec_len);
            if (!g) {
                rc = -1;
                break;
            }
            rec = g;
            cap = l->rec_len;
        }
        if (fseek(in, l->rec_off, SEEK_SET) != 0 || fread(rec, 1, l->rec_len, in) != l->rec_len ||
            fwrite(rec, 1, l->rec_len, out) != l->rec_len)
            rc = -1;
    }
    free(rec);
    if (in) fclose(in);
    if (out && fclose(out) != 0) rc = -1;
    if (rc == 0 && rename(tmp, b->out_path) != 0) rc = -1;
    if (rc) {
        fprintf(stderr, "llmos batch: could not rewrite %s in input order (%s); its records are complete but in "
                        "arrival order\n", b->out_path, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

/* ---- workers ---- */

static int transient(int rc) {
    return rc == LLMOS_CLIENT_ETIMEDOUT || rc == LLMOS_CLIENT_EUNAVAILABLE || rc == LLMOS_CLIENT_EIO ||
           rc == LLMOS_CLIENT_EOVERLOADED;
}

/* Back-off after a transient failure; the node's "retry after N ms" wins. */
static uint32_t backoff_ms(int attempt, const char *msg) {
    const char *p = strstr(msg, "retry after ");
    if (p) {
        unsigned long v = strtoul(p + 12, NULL, 10);
        if (v > 0 && v < 60000) return (uint32_t)v;
    }
    uint32_t ms = 50u << (attempt < 6 ? attempt : 6);
    return ms > 2000 ? 2000 : ms;
}

/* Sleeps up to ms, waking early when the run stops. */
static void nap(batch_t *b, uint32_t ms) {
    for (uint32_t t = 0; t < ms && !stopping(b); t += 50) llmos_sleep_ms(ms - t < 50 ? ms - t : 50);
}

/* Runs one line to its record (or leaves it without one when stopping). */
static void run_line(batch_t *b, llmos_client_t *c, line_t *l) {
    llmos_client_error_t err;
    llmos_job_t *job = NULL;
    char default_id[32];
    snprintf(default_id, sizeof default_id, "line-%u", l->lineno);
    if (llmos_job_from_json(l->text, l->len, default_id, &job, &err) != 0 ||
        llmos_job_set_id(job, l->job_id, &err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "line %u: %s", l->lineno, err.msg);
        emit_error(b, l, NULL, NULL, msg);
        llmos_job_destroy(&job);
        return;
    }
    if (b->tenant && llmos_job_set_tenant(job, b->tenant, &err) != 0) {
        emit_error(b, l, NULL, NULL, err.msg);
        llmos_job_destroy(&job);
        return;
    }
    uint64_t start = llmos_now_ns(), last_answer = start;
    int attempt = 0, submitted = 0;
    llmos_job_status_t *st = NULL;
    while (!stopping(b)) {
        llmos_job_status_free(&st);
        int rc = submitted ? llmos_client_wait(c, l->job_id, SLICE_MS, &st, &err)
                           : llmos_client_submit_wait(c, job, SLICE_MS, &st, &err);
        uint64_t now = llmos_now_ns();
        if (rc == 0 || (rc == LLMOS_CLIENT_ETIMEDOUT && st)) { /* the node answered */
            submitted = 1;
            attempt = 0;
            last_answer = now;
            if (llmos_job_state_final(st->state)) {
                emit_status(b, l, st);
                break;
            }
            if (b->job_timeout_ms && now - start > (uint64_t)b->job_timeout_ms * 1000000u) {
                char msg[160];
                snprintf(msg, sizeof msg, "not finished within %u ms (still %s)", b->job_timeout_ms,
                         llmos_job_state_name(st->state));
                emit_error(b, l, l->job_id, st, msg);
                break;
            }
            continue;
        }
        if (rc == LLMOS_CLIENT_ENOTFOUND && submitted) { /* the node lost it (e.g. expired from its log): again */
            submitted = 0;
            continue;
        }
        if (!transient(rc)) { /* the node refused the job: a result for this line */
            emit_error(b, l, l->job_id, NULL, err.msg);
            break;
        }
        if (now - last_answer > (uint64_t)b->retry_for_s * 1000000000u) {
            pthread_mutex_lock(&b->out_lock);
            if (!atomic_load(&b->fatal))
                snprintf(b->fatal_msg, sizeof b->fatal_msg, "no answer from %.200s for %u s (last: %s)", b->endpoint,
                         b->retry_for_s, err.msg);
            atomic_store(&b->fatal, 1);
            pthread_mutex_unlock(&b->out_lock);
            break;
        }
        submitted = 0; /* the node may have restarted: submitting again is idempotent */
        nap(b, backoff_ms(attempt++, err.msg));
    }
    llmos_job_status_free(&st);
    llmos_job_destroy(&job);
}

static void *worker(void *arg) {
    batch_t *b = arg;
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = b->timeout_ms};
    if (llmos_client_connect(b->endpoint, &o, &c, &err) != 0) {
        pthread_mutex_lock(&b->out_lock);
        snprintf(b->fatal_msg, sizeof b->fatal_msg, "%s", err.msg);
        atomic_store(&b->fatal, 1);
        pthread_mutex_unlock(&b->out_lock);
        atomic_fetch_sub(&b->active, 1);
        return NULL;
    }
    while (!stopping(b)) {
        size_t k = atomic_fetch_add(&b->next, 1);
        if (k >= b->n_todo) break;
        run_line(b, c, &b->lines[b->todo[k]]);
    }
    llmos_client_destroy(&c);
    atomic_fetch_sub(&b->active, 1);
    return NULL;
}

/* Pings the node before anything is submitted: one that does not answer
 * is said so at once (not after --retry-for seconds of retries).  0 or -1
 * (said on stderr). */
static int node_check(batch_t *b) {
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = b->timeout_ms};
    int rc = llmos_client_connect(b->endpoint, &o, &c, &err);
    if (rc == 0) rc = llmos_client_ping(c, b->timeout_ms, NULL, &err);
    llmos_client_destroy(&c);
    if (rc) fprintf(stderr, "llmos batch: the node at %s could not be reached: %s\n", b->endpoint, err.msg);
    return rc ? -1 : 0;
}

/* ---- the command ---- */

void cmd_batch_usage(FILE *f) {
    fprintf(
        f,
        "usage: llmos [--endpoint E] batch run IN.jsonl -o OUT.jsonl [--concurrency N] [--tenant T]\n"
        "                                    [--job-timeout MS] [--retry-for S] [--retry-errors]\n"
        "  One job per input line (JSON, usually {\"id\":..,\"kind\":..,...}), one record per line in OUT;\n"
        "  re-run the same command to resume (lines with a record are not submitted again, changed\n"
        "  lines are).\n"
        "  --concurrency N   jobs in flight (default %d)\n"
        "  --tenant T        the jobs' tenant\n"
        "  --job-timeout MS  a job not finished by then gets an error record (default: none)\n"
        "  --retry-for S     give up after S seconds without an answer from the node (default %d)\n"
        "  --retry-errors    submit again the lines whose record is an error\n"
        "  Exit: 0 every record ok, 3 complete but some records are errors, 1 stopped before every line\n"
        "  had a record (node unreachable, OUT not writable), 2 usage, 130 interrupted.\n",
        DEFAULT_CONCURRENCY, DEFAULT_RETRY_FOR_S);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
    uint64_t v;
    if (llmos_parse_u64("value", s, 0, max, 0, &v, NULL)) return -1;
    *out = (unsigned long)v;
    return 0;
}

static void batch_free(batch_t *b) {
    if (b->out) fclose(b->out);
    free(b->buf);
    free(b->lines);
    free(b->todo);
    pthread_mutex_destroy(&b->out_lock);
}

int cmd_batch(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "run") != 0) {
        cmd_batch_usage(stderr);
        return 2;
    }
    batch_t b = {.endpoint = endpoint, .timeout_ms = timeout_ms, .concurrency = DEFAULT_CONCURRENCY,
                 .retry_for_s = DEFAULT_RETRY_FOR_S};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long x;
        if (strcmp(a, "--retry-errors") == 0) {
            b.retry_errors = 1;
            continue;
        }
        if (v && (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) b.out_path = v;
        else if (v && strcmp(a, "--tenant") == 0) b.tenant = v;
        else if (v && strcmp(a, "--concurrency") == 0 && parse_uint(v, 1024, &x) == 0 && x > 0) b.concurrency = (unsigned)x;
        else if (v && strcmp(a, "--job-timeout") == 0 && parse_uint(v, 86400000, &x) == 0) b.job_timeout_ms = (uint32_t)x;
        else if (v && strcmp(a, "--retry-for") == 0 && parse_uint(v, 86400, &x) == 0 && x > 0) b.retry_for_s = (uint32_t)x;
        else if (a[0] != '-' && !b.in_path) {
            b.in_path = a;
            continue;
        } else {
            cmd_batch_usage(stderr);
            return 2;
        }
        i++;
    }
    if (!b.in_path || !b.out_path) {
        cmd_batch_usage(stderr);
        return 2;
    }
    pthread_mutex_init(&b.out_lock, NULL);
    size_t resumed = 0;
    if (read_input(&b) != 0) {
        batch_free(&b);
        return 1;
    }
    /* a first run against a node that does not answer leaves no OUT behind */
    int fresh = access(b.out_path, F_OK) != 0, checked = fresh && b.n_lines;
    if (checked && node_check(&b) != 0) {
        fprintf(stderr, "llmos batch: nothing submitted, %s not written\n", b.out_path);
        batch_free(&b);
        return 1;
    }
    if (load_output(&b, &resumed) != 0) {
        batch_free(&b);
        return 1;
    }
    size_t without = 0;
    for (size_t i = 0; i < b.n_lines; i++)
        without += !b.lines[i].done;
    if (without && !checked && node_check(&b) != 0) {
        fprintf(stderr,
                "llmos batch: nothing submitted; %zu of %zu lines have a record in %s. Run the same command "
                "again when the node is up.\n",
                b.n_lines - without, b.n_lines, b.out_path);
        batch_free(&b);
        return 1;
    }

    /* duplicate ids: the later lines get error records (once) */
    b.todo = calloc(b.n_lines + 1, sizeof *b.todo);
    if (!b.todo) {
        fprintf(stderr, "llmos batch: out of memory\n");
        batch_free(&b);
        return 1;
    }
    {
        llmos_map_t first; /* id -> index of its first line */
        llmos_map_init(&first, LLMOS_MAP_STR, sizeof(size_t));
        int nomem = llmos_map_reserve(&first, b.n_lines);
        for (size_t i = 0; i < b.n_lines && !nomem; i++) {
            line_t *l = &b.lines[i];
            size_t *at;
            int added;
            if ((nomem = llmos_map_str_put(&first, l->id, strlen(l->id), (void **)&at, &added))) break;
            if (added) {
                *at = i;
                if (!l->done) b.todo[b.n_todo++] = i;
            } else if (!l->done) {
                char msg[LLMOS_JOB_ID_MAX + 64];
                snprintf(msg, sizeof msg, "line %u: duplicate id '%s' (first on line %u)", l->lineno, l->id,
                         b.lines[*at].lineno);
                emit_error(&b, l, NULL, NULL, msg);
            }
        }
        llmos_map_deinit(&first);
        if (nomem) {
            fprintf(stderr, "llmos batch: out of memory\n");
            batch_free(&b);
            return 1;
        }
    }

    const uint64_t dup_done = b.done; /* duplicate-id errors, recorded before any worker starts */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* workers do not take the signals: the main thread's naps notice them */
    sigset_t block, prev;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &prev);
    unsigned nthreads = b.concurrency < b.n_todo ? b.concurrency : (unsigned)b.n_todo;
    pthread_t *threads = calloc(nthreads ? nthreads : 1, sizeof *threads);
    unsigned started = 0;
    atomic_store(&b.active, (int)nthreads);
    for (unsigned i = 0; threads && i < nthreads; i++) {
        if (pthread_create(&threads[i], NULL, worker, &b) == 0) started++;
        else atomic_fetch_sub(&b.active, 1);
    }
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    if (nthreads && !started) {
        fprintf(stderr, "llmos batch: cannot start worker threads\n");
        free(threads);
        batch_free(&b);
        return 1;
    }

    char label[96];
    const char *base = strrchr(b.in_path, '/');
    snprintf(label, sizeof label, "batch %s", base ? base + 1 : b.in_path);
    llmos_progress_t prog;
    llmos_progress_init(&prog, label, "jobs", b.n_todo + dup_done);
    for (;;) {
        pthread_mutex_lock(&b.out_lock);
        uint64_t done = b.done, errors = b.errors;
        pthread_mutex_unlock(&b.out_lock);
        llmos_progress_update(&prog, done, errors);
        if (done >= b.n_todo + dup_done || stopping(&b) || atomic_load(&b.active) == 0) break;
        llmos_sleep_ms(100);
    }
    for (unsigned i = 0; i < started; i++) pthread_join(threads[i], NULL);
    free(threads);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    llmos_progress_update(&prog, b.done, b.errors);
    double el = (double)(llmos_now_ns() - prog.start_ns) / 1e9;
    char extra[200], r2[32];
    snprintf(extra, sizeof extra, "%llu ok, %llu tokens (%stokens/s)", (unsigned long long)b.ok,
             (unsigned long long)b.tokens, llmos_progress_rate(el > 0 ? (double)b.tokens / el : 0, r2, sizeof r2));
    llmos_progress_finish(&prog, extra);

    size_t with_record = 0;
    for (size_t i = 0; i < b.n_lines; i++) with_record += b.lines[i].done;
    int status = 0;
    fflush(b.out);
    if (with_record == b.n_lines) {
        fclose(b.out);
        b.out = NULL;
        unsigned long long all_ok = b.ok + b.resumed_ok, all_errors = b.errors + b.resumed_errors;
        status = all_errors ? EXIT_RECORD_ERRORS : 0;
        if (write_ordered(&b) != 0) status = 1;
        char changed[64] = "";
        if (b.changed)
            snprintf(changed, sizeof changed, ", %zu changed line%s run again", b.changed,
                     b.changed > 1 ? "s" : "");
        fprintf(stderr,
                "%s: %zu lines, %zu from an earlier run%s; %llu ok, %llu error%s in all; %s is complete, in "
                "input order\n",
                label, b.n_lines, resumed, changed, all_ok, all_errors, all_errors == 1 ? "" : "s",
                b.out_path);
    } else {
        if (atomic_load(&b.fatal)) fprintf(stderr, "llmos batch: %s\n", b.fatal_msg);
        fprintf(stderr, "%s: %s; %zu of %zu lines have a record in %s (arrival order). Run the same command again "
                        "to finish.\n",
                label, interrupted ? "interrupted" : "stopped", with_record, b.n_lines, b.out_path);
        status = interrupted ? 130 : 1;
    }
    batch_free(&b);
    return status;
}
