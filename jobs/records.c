/* records.c — see records.h. */
#include "jobs/records.h"

#include "runtime/base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jobs_record_task(joblog_t *log, const char *id, uint32_t i, const Llmos__Task *t, const jobs_task_view_t *v,
                     Llmos__TaskResult *r, llmos_error_t *err) {
    Llmos__TaskResult mine = LLMOS__TASK_RESULT__INIT;
    char nb[16];
    if (!r) r = &mine;
    r->name = (char *)jobs_task_name(t, i, nb, sizeof nb);
    r->kind = t->kind;
    r->state = (Llmos__TaskState)v->state;
    r->attempts = v->attempts;
    r->started_ms = v->started_ms;
    r->crashes = v->crashes;
    size_t len = llmos__task_result__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return llmos_error_set(err, LLMOS_ENOMEM, "job %s task %u: no memory for its record", id, i);
    llmos__task_result__pack(r, buf);
    int rc = joblog_task_put(log, id, i, buf, len, err);
    free(buf);
    return rc;
}

int jobs_task_input(joblog_t *log, const char *id, const Llmos__Job *spec, uint32_t i, bool with_text, uint64_t max,
                    char **out, llmos_error_t *err) {
    const Llmos__Task *t = spec->tasks[i];
    size_t tl = strlen(t->text), total = tl;
    Llmos__TaskResult **rs = t->n_input_from ? calloc(t->n_input_from, sizeof *rs) : NULL;
    int rc = 0;
    *out = NULL;
    if (t->n_input_from && !rs) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the task's input");
    for (size_t k = 0; k < t->n_input_from; k++) {
        int d = jobs_task_index(spec, t->input_from[k]);
        const void *data;
        size_t dl;
        if (d < 0 || joblog_task_get(log, id, (uint32_t)d, &data, &dl, NULL) != 0) continue;
        rs[k] = llmos__task_result__unpack(NULL, dl, data);
        if (rs[k]) total += strlen(rs[k]->text) + 1;
    }
    if (total > max) {
        rc = llmos_error_set(err, LLMOS_ETOOBIG,
                             "its input (text and the outputs of input_from) is %zu bytes; at most %" PRIu64
                             " (config task_input_max)",
                             total, max);
    } else if (!(*out = malloc(total + 1))) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the task's input (%zu bytes)", total);
    } else {
        size_t n = 0;
        for (size_t k = 0; k < t->n_input_from; k++) {
            if (!rs[k]) continue;
            size_t rl = strlen(rs[k]->text);
            memcpy(*out + n, rs[k]->text, rl);
            n += rl;
            if (rl && (*out)[n - 1] != '\n') (*out)[n++] = '\n';
        }
        if (with_text) {
            memcpy(*out + n, t->text, tl);
            n += tl;
        }
        (*out)[n] = 0;
    }
    for (size_t k = 0; k < t->n_input_from; k++)
        if (rs[k]) llmos__task_result__free_unpacked(rs[k], NULL);
    free(rs);
    return rc;
}

int jobs_text_part(Llmos__TaskResult *r, uint64_t offset, uint64_t *room, llmos_error_t *err) {
    size_t total = strlen(r->text);
    if (offset > total)
        return llmos_error_set(err, LLMOS_EINVAL, "offset %" PRIu64 " is past the end of task '%s''s text (%zu bytes)",
                               offset, r->name, total);
    size_t keep = total - (size_t)offset;
    if (offset) memmove(r->text, r->text + offset, keep + 1);
    if (keep > *room) {
        keep = (size_t)*room;
        r->text[keep] = 0;
    }
    if (offset || keep < total - (size_t)offset) {
        r->text_total = total;
        r->text_offset = offset;
    }
    *room -= keep;
    return 0;
}

int jobs_status_pack(joblog_t *log, const jobs_sched_t *core, const char *id, bool results, const char *only_task,
                     uint64_t offset, uint64_t budget, uint8_t **buf, size_t *len, llmos_error_t *err) {
    *buf = NULL;
    joblog_job_t rec;
    int rc = joblog_job_get(log, id, true, &rec, err);
    if (rc) return rc;
    jobs_job_view_t live;
    bool alive = core && jobs_sched_job_by_id(core, id, &live) == 0;
    char tenant[JOBLOG_TENANT_MAX + 1], error[JOBLOG_ERROR_MAX + 1];
    snprintf(tenant, sizeof tenant, "%.*s", (int)rec.tenant_len, rec.tenant);
    snprintf(error, sizeof error, "%.*s", (int)rec.error_len, rec.error);
    Llmos__Job *spec = llmos__job__unpack(NULL, rec.spec_len, rec.spec);
    if (!spec) return llmos_error_set(err, LLMOS_EFORMAT, "job '%s': its logged spec does not decode", id);
    Llmos__JobStatus st = LLMOS__JOB_STATUS__INIT;
    st.id = (char *)id;
    st.tenant = tenant;
    st.state = alive ? (Llmos__JobState)live.state : (Llmos__JobState)rec.state;
    st.submitted_ms = rec.submitted_ms;
    st.started_ms = rec.started_ms;
    st.finished_ms = rec.finished_ms;
    st.error = error;
    st.priority = rec.priority;
    st.n_labels = spec->n_labels;
    st.labels = (Llmos__JobStatus__LabelsEntry **)spec->labels; /* same layout: key, value */
    size_t n = spec->n_tasks;
    Llmos__TaskResult **trs = calloc(n ? n : 1, sizeof *trs);
    Llmos__TaskResult *plain = calloc(n ? n : 1, sizeof *plain);
    char(*names)[16] = calloc(n ? n : 1, 16);
    char **free_names = calloc(n ? n : 1, sizeof *free_names);
    Llmos__TaskResult **packed = calloc(n ? n : 1, sizeof *packed); /* those in the reply */
    int only = -1;
    uint64_t room = budget;
    size_t nout = 0;
    if (!trs || !plain || !names || !free_names || !packed) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a status");
        goto out;
    }
    if (only_task && only_task[0] && (only = jobs_task_index(spec, only_task)) < 0) {
        rc = llmos_error_set(err, LLMOS_ENOTFOUND, "job '%s' has no task '%.64s'", id, only_task);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const Llmos__Task *t = spec->tasks[i];
        const void *d;
        size_t dl;
        Llmos__TaskResult *r = NULL;
        if (only >= 0 && i != (size_t)only) continue;
        if (results && joblog_task_get(log, id, (uint32_t)i, &d, &dl, NULL) == 0)
            r = llmos__task_result__unpack(NULL, dl, d);
        if (!r) {
            Llmos__TaskResult init = LLMOS__TASK_RESULT__INIT;
            plain[i] = init;
            r = &plain[i];
            if (!results && joblog_task_get(log, id, (uint32_t)i, &d, &dl, NULL) == 0) {
                Llmos__TaskResult *lr = llmos__task_result__unpack(NULL, dl, d);
                if (lr) {
                    r->state = lr->state;
                    r->attempts = lr->attempts;
                    llmos__task_result__free_unpacked(lr, NULL);
                }
            }
            if (!r->state) r->state = LLMOS__TASK_STATE__TASK_PENDING;
        }
        if (r != &plain[i]) free_names[i] = r->name; /* put back before freeing */
        r->name = (char *)jobs_task_name(t, (uint32_t)i, names[i], sizeof names[i]);
        r->kind = t->kind;
        jobs_task_view_t tv;
        if (alive && jobs_sched_task(core, live.seq, (uint32_t)i, &tv) == 0) r->state = (Llmos__TaskState)tv.state;
        else if (jobs_state_final(st.state) && r->state != LLMOS__TASK_STATE__TASK_DONE &&
                 r->state != LLMOS__TASK_STATE__TASK_FAILED)
            r->state = LLMOS__TASK_STATE__TASK_CANCELLED;
        trs[i] = r;
        if (results && !rc) rc = jobs_text_part(r, only >= 0 ? offset : 0, &room, err);
        packed[nout++] = r;
    }
    if (rc) goto out;
    st.n_tasks = nout;
    st.tasks = packed;
    *len = llmos__job_status__get_packed_size(&st);
    *buf = malloc(*len ? *len : 1);
    if (!*buf) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a status");
    else llmos__job_status__pack(&st, *buf);
out:
    for (size_t i = 0; trs && i < n; i++)
        if (trs[i] && trs[i] != &plain[i]) {
            trs[i]->name = free_names[i];
            llmos__task_result__free_unpacked(trs[i], NULL);
        }
    free(trs);
    free(packed);
    free(plain);
    free(names);
    free(free_names);
    llmos__job__free_unpacked(spec, NULL);
    return rc;
}

int jobs_event_pack(joblog_t *log, const char *id, uint32_t i, uint64_t budget, uint8_t **buf, size_t *len,
                    llmos_error_t *err) {
    const void *d;
    size_t dl;
    int rc = joblog_task_get(log, id, i, &d, &dl, err);
    if (rc) return rc;
    Llmos__TaskResult *r = llmos__task_result__unpack(NULL, dl, d);
    if (!r) return llmos_error_set(err, LLMOS_EFORMAT, "job '%s' task %u: its record does not decode", id, i);
    Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
    ev.id = (char *)id;
    ev.task = r->name;
    ev.result = r;
    (void)jobs_text_part(r, 0, &budget, NULL);
    *len = llmos__job_event__get_packed_size(&ev);
    *buf = malloc(*len ? *len : 1);
    if (*buf) llmos__job_event__pack(&ev, *buf);
    llmos__task_result__free_unpacked(r, NULL);
    return *buf ? 0 : llmos_error_set(err, LLMOS_ENOMEM, "no memory for an event");
}

int jobs_task_ask(joblog_t *log, const char *id, const Llmos__Job *spec, uint32_t i, uint64_t input_max,
                  uint32_t *type, uint8_t **buf, size_t *len, llmos_error_t *err) {
    const Llmos__Task *t = spec->tasks[i];
    char *input = NULL, rid[JOBLOG_ID_MAX + 80], nb[16];
    int rc = jobs_task_input(log, id, spec, i, !jobs_task_input_is_context(t), input_max, &input, err);
    snprintf(rid, sizeof rid, "%s/%s", id, jobs_task_name(t, i, nb, sizeof nb));
    if (!rc) rc = jobs_task_request(t, input, rid, type, buf, len, err);
    free(input);
    return rc;
}

/* ---- list pages ---- */

/* Ids of the jobs a page holds (collected first: the log may not be
 * called from inside its walk). */
typedef struct id_acc {
    char **ids;
    uint64_t *seqs;
    size_t n, cap;
    uint64_t max_seq;
    bool unfinished_only;
    int oom;
} id_acc_t;

static int id_each(void *user, const char *id, size_t id_len, const joblog_job_t *rec) {
    id_acc_t *a = user;
    if (rec->seq > a->max_seq) a->max_seq = rec->seq;
    if (a->unfinished_only && (jobs_state_final(rec->state) || id_len > JOBLOG_ID_MAX)) return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **p = realloc(a->ids, cap * sizeof *p);
        uint64_t *q = p ? realloc(a->seqs, cap * sizeof *q) : NULL;
        if (p) a->ids = p;
        if (!p || !q) {
            a->oom = 1;
            return 1;
        }
        a->seqs = q;
        a->cap = cap;
    }
    if (!(a->ids[a->n] = strndup(id, id_len))) {
        a->oom = 1;
        return 1;
    }
    a->seqs[a->n++] = rec->seq;
    return 0;
}

static void id_acc_free(id_acc_t *a) {
    for (size_t i = 0; i < a->n; i++) free(a->ids[i]);
    free(a->ids);
    free(a->seqs);
}

/* Appends a protobuf length-delimited field (tag, varint length, bytes). */
static int put_field(FILE *f, uint8_t tag, const void *data, size_t len) {
    uint8_t v[11];
    size_t k = 0;
    v[k++] = tag;
    for (uint64_t x = len;; x >>= 7) {
        v[k++] = (uint8_t)((x & 0x7F) | (x > 0x7F ? 0x80 : 0));
        if (x <= 0x7F) break;
    }
    return fwrite(v, 1, k, f) == k && fwrite(data, 1, len, f) == len ? 0 : -1;
}

int jobs_list_pack(joblog_t *log, const jobs_sched_t *core, const char *tenant, uint32_t state, const char *after,
                   uint32_t limit, uint32_t scan_max, uint8_t **buf, size_t *len, llmos_error_t *err) {
    *buf = NULL;
    *len = 0;
    id_acc_t a = {0};
    char next[JOBLOG_ID_MAX + 1];
    int rc = joblog_list(log, tenant, state, after, limit, scan_max, id_each, &a, next, sizeof next, err);
    if (!rc && a.oom) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = rc ? NULL : open_memstream(&out, &outlen);
    if (!rc && !f) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    for (size_t i = 0; !rc && i < a.n; i++) {
        uint8_t *sb;
        size_t sl;
        rc = jobs_status_pack(log, core, a.ids[i], false, NULL, 0, 0, &sb, &sl, err);
        if (!rc && put_field(f, 0x0A, sb, sl) != 0) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        free(sb);
    }
    if (!rc && next[0] && put_field(f, 0x12, next, strlen(next)) != 0)
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    if (f && fclose(f) != 0 && !rc) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    id_acc_free(&a);
    if (rc) {
        free(out);
        return rc;
    }
    *buf = (uint8_t *)out;
    *len = outlen;
    return 0;
}

/* ---- recovery ---- */

static int seq_cmp(const void *x, const void *y) {
    const uint64_t *a = x, *b = y;
    return *a < *b ? -1 : *a > *b;
}

int jobs_recover(joblog_t *log, jobs_sched_t *core, uint64_t now, llmos_error_t *err) {
    id_acc_t a = {.unfinished_only = true};
    int rc = joblog_foreach(log, id_each, &a, err);
    if (!rc && a.oom) rc = llmos_error_set(err, LLMOS_ENOMEM, "recovery: no memory");
    jobs_sched_set_next_seq(core, a.max_seq + 1);
    /* in submission order: sort (seq, index) pairs */
    uint64_t(*order)[2] = rc || !a.n ? NULL : malloc(a.n * sizeof *order);
    if (!rc && a.n && !order) rc = llmos_error_set(err, LLMOS_ENOMEM, "recovery: no memory");
    for (size_t k = 0; order && k < a.n; k++) order[k][0] = a.seqs[k], order[k][1] = k;
    if (order) qsort(order, a.n, sizeof *order, seq_cmp);
    for (size_t k = 0; !rc && k < a.n; k++) {
        const char *id = a.ids[order[k][1]];
        joblog_job_t rec;
        rc = joblog_job_get(log, id, true, &rec, err);
        if (rc) break;
        char tenant[JOBLOG_TENANT_MAX + 1];
        snprintf(tenant, sizeof tenant, "%.*s", (int)rec.tenant_len, rec.tenant);
        uint64_t submitted = rec.submitted_ms, started = rec.started_ms, seq = rec.seq;
        uint32_t state = rec.state;
        size_t plen = rec.spec_len;
        uint8_t *packed = malloc(plen ? plen : 1); /* (the record is a view: copy before the next log call) */
        if (!packed) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "recovery: no memory");
            break;
        }
        memcpy(packed, rec.spec, plen);
        Llmos__Job *spec = llmos__job__unpack(NULL, plen, packed);
        if (!spec) {
            LLMOS_ERROR("recovery: job '%s': its spec does not decode; marked failed", id);
            (void)joblog_job_update(log, id, LLMOS__JOB_STATE__JOB_FAILED, started, now,
                                    "its logged spec does not decode", NULL);
            free(packed);
            continue;
        }
        jobs_task_log_t *tl = calloc(spec->n_tasks ? spec->n_tasks : 1, sizeof *tl);
        if (!tl) rc = llmos_error_set(err, LLMOS_ENOMEM, "recovery: no memory");
        for (size_t i = 0; !rc && i < spec->n_tasks; i++) {
            const void *d;
            size_t dl;
            if (joblog_task_get(log, id, (uint32_t)i, &d, &dl, NULL) != 0) continue;
            Llmos__TaskResult *r = llmos__task_result__unpack(NULL, dl, d);
            if (!r) continue;
            tl[i] = (jobs_task_log_t){true, (uint8_t)r->state, r->attempts, r->crashes};
            llmos__task_result__free_unpacked(r, NULL);
        }
        if (!rc) rc = jobs_sched_restore(core, spec, packed, plen, tenant, seq, submitted, started, state, tl, now, err);
        free(tl);
        free(packed);
        llmos__job__free_unpacked(spec, NULL);
    }
    free(order);
    id_acc_free(&a);
    return rc;
}
