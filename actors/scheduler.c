/*
 * scheduler.c — the `scheduler` actor (see scheduler.h for the contract).
 *
 * Memory per unfinished job is one allocation: the compact sjob_t, its id,
 * 16 bytes per task and the packed Job as submitted (the job's own text).
 * Results never stay in RAM: they are written to the log when they arrive
 * and read back (inside the open transaction) when a later task needs them
 * as input or a client asks for a status.  Everything that points at a job
 * from elsewhere (queue entries, timer events, asks in flight) names it by
 * its sequence number, so a job can be freed the moment it ends; stale
 * entries are skipped when they come up.
 *
 * This file must never block: no waiting on other actors, no network; the
 * only slow thing it does is an LMDB commit, once per batch.
 */
#include "actors/scheduler.h"

#include "actors/joblog.h"
#include "llmos/graph.pb-c.h"
#include "llmos/job.pb-c.h"
#include "llmos/model.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 10
#define SWEEP_MS 50
#define COMMIT_AGE_MS 5
#define COMMIT_WRITES 4096
#define RETRY_CAP_MS 30000
#define WAIT_DEFAULT_MS 3600000u  /* a wait with no timeout and no deadline */
#define WAITERS_PER_JOB 256
#define TENANTS_MAX 4096
#define PURGE_EVERY_MS 1000
#define LIST_LIMIT_MAX 1000
#define LIST_SCAN_MAX 200000

/* ---- small containers ---- */

typedef struct qent {  /* a ready task in a target's queue */
    int64_t k1;
    uint64_t seq;
    uint32_t task;
} qent_t;

typedef struct evt {   /* a timer event */
    uint64_t due_ms;
    uint64_t seq;
    uint32_t task;
    uint8_t attempt;
    uint8_t kind;
} evt_t;

/* Events in the heap fire once; those of jobs that have ended are skipped.
 * Waiters and running tasks are not events: they are checked by a sweep
 * over the jobs that have any (see sweep), so a finished job leaves nothing
 * behind in the heap. */
enum { EV_RETRY = 1, EV_DEADLINE };

#define HEAP_DECL(name, T, less)                                                          \
    typedef struct name {                                                                 \
        T *v;                                                                             \
        size_t n, cap;                                                                    \
    } name##_t;                                                                           \
    static int name##_push(name##_t *h, T e) {                                            \
        if (h->n == h->cap) {                                                             \
            size_t cap = h->cap ? h->cap * 2 : 64;                                        \
            T *p = realloc(h->v, cap * sizeof *p);                                        \
            if (!p) return LLMOS_ENOMEM;                                                  \
            h->v = p;                                                                     \
            h->cap = cap;                                                                 \
        }                                                                                 \
        size_t i = h->n++;                                                                \
        while (i > 0) {                                                                   \
            size_t p = (i - 1) / 2;                                                       \
            if (!less(&e, &h->v[p])) break;                                               \
            h->v[i] = h->v[p];                                                            \
            i = p;                                                                        \
        }                                                                                 \
        h->v[i] = e;                                                                      \
        return 0;                                                                         \
    }                                                                                     \
    static T name##_pop(name##_t *h) {                                                    \
        T top = h->v[0], last = h->v[--h->n];                                             \
        size_t i = 0;                                                                     \
        for (;;) {                                                                        \
            size_t c = 2 * i + 1;                                                         \
            if (c >= h->n) break;                                                         \
            if (c + 1 < h->n && less(&h->v[c + 1], &h->v[c])) c++;                        \
            if (!less(&h->v[c], &last)) break;                                            \
            h->v[i] = h->v[c];                                                            \
            i = c;                                                                        \
        }                                                                                 \
        if (h->n) h->v[i] = last;                                                         \
        return top;                                                                       \
    }

static inline bool qent_less(const qent_t *a, const qent_t *b) {
    if (a->k1 != b->k1) return a->k1 < b->k1;
    if (a->seq != b->seq) return a->seq < b->seq;
    return a->task < b->task;
}
static inline bool evt_less(const evt_t *a, const evt_t *b) { return a->due_ms < b->due_ms; }
HEAP_DECL(qheap, qent_t, qent_less)
HEAP_DECL(eheap, evt_t, evt_less)

/* ---- jobs ---- */

typedef struct stask {
    uint64_t started_ms;
    uint8_t state;     /* Llmos__TaskState */
    uint8_t attempts;
    uint8_t target;    /* index into s->targets */
    uint8_t kind;      /* Llmos__TaskKind */
    uint8_t crashes;   /* node crashes it was in flight during (logged before it runs) */
    uint8_t pad8_;
    uint16_t pad16_;
} stask_t;

typedef struct waiter {
    struct waiter *next;
    uint64_t node, actor, corr;
    uint64_t deadline_ms;
    bool stream;
} waiter_t;

typedef struct sjob {
    struct sjob *next_id, *next_seq;  /* hash chains */
    struct sjob *wnext, *wprev;       /* the watch list: jobs with waiters or running tasks */
    bool watched;
    uint64_t seq, submitted_ms, started_ms, deadline_ms;
    int32_t priority;
    uint32_t max_retries;
    uint32_t spec_len;
    uint16_t tenant;
    uint16_t ntasks, ndone, nrunning;
    uint8_t state;                    /* Llmos__JobState */
    waiter_t *waiters;
    uint8_t *spec;                    /* packed Job, inside this allocation */
    stask_t *tasks;                   /* ntasks, inside this allocation */
    char id[];
} sjob_t;

typedef struct target {
    char name[64];
    uint32_t inflight, limit;
    bool learn;         /* a model target with no configured cap: ask its ModelStats */
    uint32_t refs;      /* tasks of unfinished jobs naming it; at 0 the entry may be reused */
    uint64_t vt;        /* round robin: virtual time */
    qheap_t q;
} target_t;

typedef struct tenant {
    char *name;
    uint32_t refs;                     /* unfinished jobs of the tenant; at 0 the entry may be reused */
    uint64_t last[SCHED_TARGETS_MAX];  /* round robin: last tag per target */
} tenant_t;

typedef struct sched {
    sched_config_t cfg;
    joblog_t *log;
    rt_system_t *sys;
    rt_ref_t self;
    /* jobs by id and by seq (chained, power-of-two buckets) */
    sjob_t **by_id, **by_seq;
    size_t nbuckets, njobs;
    uint64_t next_seq;
    target_t targets[SCHED_TARGETS_MAX];
    uint32_t ntargets;
    tenant_t *tenants;
    uint32_t ntenants;
    eheap_t events;
    rt_msg_t **outbox;   /* replies waiting for the commit */
    size_t nout, capout;
    uint64_t last_purge_ms;
    double done_rate;    /* jobs finished per second, smoothed */
    uint64_t rate_t0_ms, rate_count;
    uint64_t nwaiters;
    sjob_t *watch_head;      /* see sweep */
    uint64_t last_sweep_ms;
    Llmos__Job *spec_cache;  /* see job_spec */
    uint64_t spec_cache_seq;
    /* counters */
    uint64_t queued_tasks, running_tasks;
    uint64_t st_done, st_failed, st_retried, st_rejected, st_expired, st_cancelled, st_recovered, st_quarantined;
} sched_t;

/* ---- config ---- */

void sched_config_init(sched_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "./llmos-data");
    cfg->policy = SCHED_FIFO;
    cfg->queue_limit = 100000;
    cfg->retention_s = 86400;
    cfg->max_retries_default = 2;
    cfg->sync = true;
    cfg->aging_ms = 1000;
    cfg->retry_base_ms = 100;
    cfg->task_timeout_ms = 600000;
    cfg->inflight_default = 256;
    cfg->task_input_max = 16u << 20;
    cfg->quarantine_after = 3;
    cfg->status_max_bytes = 16u << 20;
}

static const char *const policy_names[] = {"fifo", "priority", "round_robin"};

int sched_policy_parse(const char *s, sched_policy_t *out, llmos_error_t *err) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, policy_names[i]) == 0) {
            *out = (sched_policy_t)i;
            return 0;
        }
    return llmos_error_set(err, LLMOS_EINVAL, "scheduler_policy '%s' is not fifo, priority or round_robin", s);
}

const char *sched_policy_name(sched_policy_t p) { return (unsigned)p < 3 ? policy_names[p] : "?"; }

int sched_limits_parse(sched_config_t *cfg, const char *list, llmos_error_t *err) {
    char buf[2048];
    if (strlen(list) >= sizeof buf) return llmos_error_set(err, LLMOS_EINVAL, "target_inflight list is too long");
    snprintf(buf, sizeof buf, "%s", list);
    char *rest = buf;
    for (char *tok = strsep(&rest, ","); tok; tok = strsep(&rest, ",")) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long v = eq ? strtoul(eq + 1, &end, 10) : 0;
        if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof cfg->limits[0].name || !eq[1] || *end || v > 1000000)
            return llmos_error_set(err, LLMOS_EINVAL, "target_inflight entry '%s' is not NAME=N (N <= 1000000)", tok);
        if (cfg->nlimits == SCHED_TARGETS_MAX)
            return llmos_error_set(err, LLMOS_EINVAL, "target_inflight: more than %d targets", SCHED_TARGETS_MAX);
        sched_target_limit_t *l = &cfg->limits[cfg->nlimits++];
        snprintf(l->name, sizeof l->name, "%.*s", (int)(eq - tok), tok);
        l->inflight = (uint32_t)v;
    }
    return 0;
}

/* ---- hash tables ---- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
}

static int table_grow(sched_t *s) {
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 1024;
    sjob_t **bi = calloc(nb, sizeof *bi), **bs = calloc(nb, sizeof *bs);
    if (!bi || !bs) {
        free(bi);
        free(bs);
        return LLMOS_ENOMEM;
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (sjob_t *j = s->by_id[i], *n; j; j = n) {
            n = j->next_id;
            size_t b = hash_str(j->id) & (nb - 1);
            j->next_id = bi[b];
            bi[b] = j;
        }
        for (sjob_t *j = s->by_seq[i], *n; j; j = n) {
            n = j->next_seq;
            size_t b = hash_u64(j->seq) & (nb - 1);
            j->next_seq = bs[b];
            bs[b] = j;
        }
    }
    free(s->by_id);
    free(s->by_seq);
    s->by_id = bi;
    s->by_seq = bs;
    s->nbuckets = nb;
    return 0;
}

static sjob_t *job_by_id(sched_t *s, const char *id) {
    if (!s->nbuckets) return NULL;
    for (sjob_t *j = s->by_id[hash_str(id) & (s->nbuckets - 1)]; j; j = j->next_id)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

static sjob_t *job_by_seq(sched_t *s, uint64_t seq) {
    if (!s->nbuckets) return NULL;
    for (sjob_t *j = s->by_seq[hash_u64(seq) & (s->nbuckets - 1)]; j; j = j->next_seq)
        if (j->seq == seq) return j;
    return NULL;
}

static int job_insert(sched_t *s, sjob_t *j) {
    if (s->njobs >= s->nbuckets) {
        int rc = table_grow(s);
        if (rc) return rc;
    }
    size_t b = hash_str(j->id) & (s->nbuckets - 1);
    j->next_id = s->by_id[b];
    s->by_id[b] = j;
    b = hash_u64(j->seq) & (s->nbuckets - 1);
    j->next_seq = s->by_seq[b];
    s->by_seq[b] = j;
    s->njobs++;
    return 0;
}

static void job_remove(sched_t *s, sjob_t *j) {
    sjob_t **p = &s->by_id[hash_str(j->id) & (s->nbuckets - 1)];
    while (*p != j) p = &(*p)->next_id;
    *p = j->next_id;
    p = &s->by_seq[hash_u64(j->seq) & (s->nbuckets - 1)];
    while (*p != j) p = &(*p)->next_seq;
    *p = j->next_seq;
    s->njobs--;
}

/* ---- targets and tenants ---- */

/* The entry of target `name`, made (or an unused one reused) when there is
 * none.  EOVERLOADED when SCHED_TARGETS_MAX targets all have unfinished
 * tasks; EINVAL for a name that does not fit. */
static int target_find(sched_t *s, const char *name, uint8_t *out) {
    for (uint32_t i = 0; i < s->ntargets; i++)
        if (strcmp(s->targets[i].name, name) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    if (strlen(name) >= sizeof s->targets[0].name) return LLMOS_EINVAL;
    uint32_t slot = s->ntargets;
    if (slot == SCHED_TARGETS_MAX) {
        /* Reuse an entry no unfinished task names: its queue holds only
         * stale entries and nothing of it is in flight. */
        for (slot = 0; slot < s->ntargets && s->targets[slot].refs; slot++) {
        }
        if (slot == s->ntargets) return LLMOS_EOVERLOADED;
    } else {
        s->ntargets++;
    }
    target_t *t = &s->targets[slot];
    qent_t *qv = t->q.v;
    size_t qcap = t->q.cap;
    memset(t, 0, sizeof *t);
    t->q.v = qv; /* keep the queue's memory */
    t->q.cap = qcap;
    for (uint32_t k = 0; k < s->ntenants; k++) s->tenants[k].last[slot] = 0;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->limit = s->cfg.inflight_default;
    t->learn = strcmp(name, "model") == 0 || strncmp(name, "model/", 6) == 0;
    for (uint32_t i = 0; i < s->cfg.nlimits; i++)
        if (strcmp(s->cfg.limits[i].name, name) == 0) {
            t->limit = s->cfg.limits[i].inflight;
            t->learn = false;
        }
    *out = (uint8_t)slot;
    return 0;
}

/* The entry of tenant `name` (made, or an unused one reused, when there is
 * none).  EOVERLOADED when TENANTS_MAX tenants all have unfinished jobs. */
static int tenant_find(sched_t *s, const char *name, uint16_t *out) {
    uint32_t spare = UINT32_MAX;
    for (uint32_t i = 0; i < s->ntenants; i++) {
        if (strcmp(s->tenants[i].name, name) == 0) {
            *out = (uint16_t)i;
            return 0;
        }
        if (spare == UINT32_MAX && s->tenants[i].refs == 0) spare = i;
    }
    if (s->ntenants == TENANTS_MAX) {
        if (spare == UINT32_MAX) return LLMOS_EOVERLOADED;
        char *n = strdup(name);
        if (!n) return LLMOS_ENOMEM;
        tenant_t *t = &s->tenants[spare];
        free(t->name);
        memset(t, 0, sizeof *t);
        t->name = n;
        *out = (uint16_t)spare;
        return 0;
    }
    if ((s->ntenants & (s->ntenants - 1)) == 0) {
        size_t cap = s->ntenants ? s->ntenants * 2 : 8;
        tenant_t *p = realloc(s->tenants, cap * sizeof *p);
        if (!p) return LLMOS_ENOMEM;
        s->tenants = p;
    }
    tenant_t *t = &s->tenants[s->ntenants];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return LLMOS_ENOMEM;
    *out = (uint16_t)s->ntenants++;
    return 0;
}

/* Drops the job's references to its tenant and targets and frees it (it is
 * no longer in the tables). */
static void job_free(sched_t *s, sjob_t *j) {
    for (uint32_t i = 0; i < j->ntasks; i++) s->targets[j->tasks[i].target].refs--;
    s->tenants[j->tenant].refs--;
    free(j);
}

/* ---- output: replies and events, held back until the log commits ---- */

static void out_send(sched_t *s, rt_msg_t *m) {
    if (!m) {
        LLMOS_WARN("scheduler: no memory for a reply; it is dropped");
        return;
    }
    if (joblog_pending(s->log) == 0 && s->nout == 0) {
        rt_send_msg(s->sys, m);
        return;
    }
    if (s->nout == s->capout) {
        size_t cap = s->capout ? s->capout * 2 : 256;
        rt_msg_t **p = realloc(s->outbox, cap * sizeof *p);
        if (!p) {
            rt_send_msg(s->sys, m); /* better early than never */
            return;
        }
        s->outbox = p;
        s->capout = cap;
    }
    s->outbox[s->nout++] = m;
}

static rt_msg_t *mk_msg(sched_t *s, uint64_t node, uint64_t actor, uint64_t corr, uint32_t type, bool reply,
                        int status, const char *error, const void *data, size_t len) {
    return rt_msg_new(&(rt_msg_init_t){
        .to = {node, actor, NULL},
        .from = s->self,
        .type = status ? (len ? type : RT_MSG_ERROR) : type,
        .flags = reply ? RT_MSG_REPLY : 0,
        .corr = corr,
        .status = status,
        .error = status ? error : NULL,
        .data = data,
        .len = len,
    });
}

static void reply_to(sched_t *s, const rt_msg_t *req, uint32_t type, const void *data, size_t len) {
    out_send(s, mk_msg(s, req->from.node, req->from.id, req->corr, type, true, 0, NULL, data, len));
}

static void reply_err(sched_t *s, const rt_msg_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_err(sched_t *s, const rt_msg_t *req, int status, const char *fmt, ...) {
    char text[LLMOS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!req->corr) return;
    out_send(s, mk_msg(s, req->from.node, req->from.id, req->corr, req->type, true, status, text, NULL, 0));
}

/* Commits the log, then releases what waited for it.  A failed commit
 * lost the batch's writes: every held reply becomes an EIO error. */
static void commit(sched_t *s) {
    llmos_error_t err;
    int rc = joblog_commit(s->log, &err);
    if (rc) LLMOS_ERROR("scheduler: %s", err.msg);
    for (size_t i = 0; i < s->nout; i++) {
        rt_msg_t *m = s->outbox[i];
        if (rc && (m->flags & RT_MSG_REPLY)) {
            rt_msg_t *e = mk_msg(s, m->to.node, m->to.id, m->corr, m->type, true, LLMOS_EIO,
                                 "the job log could not commit; the request was not recorded", NULL, 0);
            rt_msg_free(m);
            m = e;
        }
        if (m) rt_send_msg(s->sys, m);
    }
    s->nout = 0;
}

/* ---- packing helpers ---- */

#define PACK(type, msgp, bufp, lenp)                                      \
    do {                                                                  \
        *(lenp) = llmos__##type##__get_packed_size(msgp);                 \
        *(bufp) = malloc(*(lenp) ? *(lenp) : 1);                          \
        if (*(bufp)) llmos__##type##__pack((msgp), *(bufp));              \
    } while (0)

static const char *task_name(const Llmos__Task *t, uint32_t i, char *buf, size_t cap) {
    if (t->name && t->name[0]) return t->name;
    snprintf(buf, cap, "t%u", i);
    return buf;
}

static int task_index(const Llmos__Job *job, const char *name) {
    char buf[16];
    for (size_t i = 0; i < job->n_tasks; i++)
        if (strcmp(task_name(job->tasks[i], (uint32_t)i, buf, sizeof buf), name) == 0) return (int)i;
    return -1;
}

/* The unpacked spec of j.  One is cached (the tasks of one job tend to
 * come one after the other); borrowed until the next job_spec call or the
 * job's end.  NULL when it does not decode (or no memory). */
static Llmos__Job *job_spec(sched_t *s, const sjob_t *j) {
    if (s->spec_cache && s->spec_cache_seq == j->seq) return s->spec_cache;
    if (s->spec_cache) llmos__job__free_unpacked(s->spec_cache, NULL);
    s->spec_cache = llmos__job__unpack(NULL, j->spec_len, j->spec);
    s->spec_cache_seq = j->seq;
    return s->spec_cache;
}

static void spec_forget(sched_t *s, uint64_t seq) {
    if (s->spec_cache && s->spec_cache_seq == seq) {
        llmos__job__free_unpacked(s->spec_cache, NULL);
        s->spec_cache = NULL;
    }
}

static bool terminal(uint32_t st) { return st >= LLMOS__JOB_STATE__JOB_DONE; }

/* Writes a task's state (and result, when r is given) to the log. */
static void log_task(sched_t *s, sjob_t *j, uint32_t i, const Llmos__Task *t, Llmos__TaskResult *r) {
    Llmos__TaskResult mine = LLMOS__TASK_RESULT__INIT;
    char nb[16];
    if (!r) r = &mine;
    r->name = (char *)task_name(t, i, nb, sizeof nb);
    r->kind = t->kind;
    r->state = j->tasks[i].state;
    r->attempts = j->tasks[i].attempts;
    r->started_ms = j->tasks[i].started_ms;
    r->crashes = j->tasks[i].crashes;
    uint8_t *buf;
    size_t len;
    PACK(task_result, r, &buf, &len);
    llmos_error_t err;
    if (!buf || joblog_task_put(s->log, j->id, i, buf, len, &err) != 0)
        LLMOS_ERROR("scheduler: job %s task %u: %s", j->id, i, buf ? err.msg : "no memory");
    free(buf);
}

/* ---- status ---- */

/* Cuts r's text (unpacked, so writable unless empty) to at most *room
 * bytes from `offset` on, marking a part with text_total/text_offset, and
 * takes what it keeps from *room.  EINVAL for an offset past the end. */
static int text_part(Llmos__TaskResult *r, uint64_t offset, uint64_t *room, llmos_error_t *err) {
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

/* Builds the JobStatus of `id` (from the log; live task states from j when
 * the job is in memory).  results: with task outputs, their texts within
 * status_max_bytes (the rest as parts, see text_part).  only_task: just
 * that task, its text from `offset` on (ENOTFOUND when the job has no such
 * task).  Caller frees *buf. */
static int status_pack(sched_t *s, const char *id, const sjob_t *j, bool results, const char *only_task,
                       uint64_t offset, uint8_t **buf, size_t *len, llmos_error_t *err) {
    *buf = NULL;
    joblog_job_t rec;
    int rc = joblog_job_get(s->log, id, true, &rec, err);
    if (rc) return rc;
    char tenant[JOBLOG_TENANT_MAX + 1], error[JOBLOG_ERROR_MAX + 1];
    snprintf(tenant, sizeof tenant, "%.*s", (int)rec.tenant_len, rec.tenant);
    snprintf(error, sizeof error, "%.*s", (int)rec.error_len, rec.error);
    Llmos__Job *spec = llmos__job__unpack(NULL, rec.spec_len, rec.spec);
    if (!spec) return llmos_error_set(err, LLMOS_EFORMAT, "job '%s': its logged spec does not decode", id);
    Llmos__JobStatus st = LLMOS__JOB_STATUS__INIT;
    st.id = (char *)id;
    st.tenant = tenant;
    st.state = j ? (Llmos__JobState)j->state : (Llmos__JobState)rec.state;
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
    if (!trs || !plain || !names || !free_names || !packed) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a status");
        goto out;
    }
    int only = -1;
    if (only_task && only_task[0] && (only = task_index(spec, only_task)) < 0) {
        rc = llmos_error_set(err, LLMOS_ENOTFOUND, "job '%s' has no task '%.64s'", id, only_task);
        goto out;
    }
    uint64_t room = s->cfg.status_max_bytes;
    size_t nout = 0;
    for (size_t i = 0; i < n; i++) {
        const Llmos__Task *t = spec->tasks[i];
        const void *d;
        size_t dl;
        Llmos__TaskResult *r = NULL;
        if (only >= 0 && i != (size_t)only) continue;
        if (results && joblog_task_get(s->log, id, (uint32_t)i, &d, &dl, NULL) == 0)
            r = llmos__task_result__unpack(NULL, dl, d);
        if (!r) {
            Llmos__TaskResult init = LLMOS__TASK_RESULT__INIT;
            plain[i] = init;
            r = &plain[i];
            if (!results && joblog_task_get(s->log, id, (uint32_t)i, &d, &dl, NULL) == 0) {
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
        r->name = (char *)task_name(t, (uint32_t)i, names[i], sizeof names[i]);
        r->kind = t->kind;
        if (j) r->state = (Llmos__TaskState)j->tasks[i].state;
        else if (terminal(st.state) && r->state != LLMOS__TASK_STATE__TASK_DONE &&
                 r->state != LLMOS__TASK_STATE__TASK_FAILED)
            r->state = LLMOS__TASK_STATE__TASK_CANCELLED;
        trs[i] = r;
        if (results && !rc) rc = text_part(r, only >= 0 ? offset : 0, &room, err);
        packed[nout++] = r;
    }
    if (rc) goto out;
    st.n_tasks = nout;
    st.tasks = packed;
    PACK(job_status, &st, buf, len);
    if (!*buf) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a status");
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

/* Sends JobStatus to one waiter (reply) with status 0 or ETIMEDOUT. */
static void waiter_answer(sched_t *s, const char *id, const sjob_t *j, const waiter_t *w, int status) {
    uint8_t *buf;
    size_t len;
    llmos_error_t err;
    if (status_pack(s, id, j, true, NULL, 0, &buf, &len, &err) != 0) {
        out_send(s, mk_msg(s, w->node, w->actor, w->corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, true, err.code, err.msg,
                           NULL, 0));
        return;
    }
    out_send(s, mk_msg(s, w->node, w->actor, w->corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, true, status,
                       status ? "wait timed out; the job has not finished" : NULL, buf, len));
    free(buf);
}

static int evt_add(sched_t *s, uint64_t due, uint64_t seq, uint32_t task, uint8_t attempt, uint8_t kind) {
    return eheap_push(&s->events, (evt_t){due, seq, task, attempt, kind});
}

static void watch(sched_t *s, sjob_t *j) {
    if (j->watched) return;
    j->watched = true;
    j->wprev = NULL;
    j->wnext = s->watch_head;
    if (s->watch_head) s->watch_head->wprev = j;
    s->watch_head = j;
}

static void unwatch(sched_t *s, sjob_t *j) {
    if (!j->watched) return;
    if (j->wprev) j->wprev->wnext = j->wnext;
    else s->watch_head = j->wnext;
    if (j->wnext) j->wnext->wprev = j->wprev;
    j->watched = false;
}

static void replay_done(sched_t *s, sjob_t *j, const rt_msg_t *req);
static int waiter_add(sched_t *s, sjob_t *j, const rt_msg_t *req, uint32_t timeout_ms, bool stream) {
    uint32_t n = 0;
    for (waiter_t *w = j->waiters; w; w = w->next) n++;
    if (n >= WAITERS_PER_JOB) return LLMOS_EOVERLOADED;
    waiter_t *w = calloc(1, sizeof *w);
    if (!w) return LLMOS_ENOMEM;
    uint64_t now = llmos_wall_ms();
    uint64_t dl = now + (timeout_ms ? timeout_ms : WAIT_DEFAULT_MS);
    if (!timeout_ms && req->deadline_ms && req->deadline_ms < dl) dl = req->deadline_ms;
    *w = (waiter_t){j->waiters, req->from.node, req->from.id, req->corr, dl, stream};
    j->waiters = w;
    watch(s, j);
    s->nwaiters++;
    return 0;
}

/* ---- the life of a job ---- */

static void enqueue(sched_t *s, sjob_t *j, uint32_t i) {
    stask_t *t = &j->tasks[i];
    target_t *tg = &s->targets[t->target];
    int64_t k1 = 0;
    if (s->cfg.policy == SCHED_PRIORITY)
        k1 = (int64_t)j->submitted_ms - (int64_t)j->priority * (int64_t)s->cfg.aging_ms;
    else if (s->cfg.policy == SCHED_ROUND_ROBIN) {
        uint64_t *last = &s->tenants[j->tenant].last[t->target];
        uint64_t tag = (*last > tg->vt ? *last : tg->vt) + 1;
        *last = tag;
        k1 = (int64_t)tag;
    }
    t->state = LLMOS__TASK_STATE__TASK_READY;
    if (qheap_push(&tg->q, (qent_t){k1, j->seq, i}) != 0) {
        LLMOS_ERROR("scheduler: no memory to queue job %s", j->id);
        return;
    }
    s->queued_tasks++;
}

/* Moves PENDING tasks whose dependencies are all done to their queues. */
static void release_ready(sched_t *s, sjob_t *j, const Llmos__Job *spec) {
    for (uint32_t i = 0; i < j->ntasks; i++) {
        if (j->tasks[i].state != LLMOS__TASK_STATE__TASK_PENDING) continue;
        const Llmos__Task *t = spec->tasks[i];
        bool ok = true;
        for (size_t k = 0; ok && k < t->n_after; k++) {
            int d = task_index(spec, t->after[k]);
            ok = d >= 0 && j->tasks[d].state == LLMOS__TASK_STATE__TASK_DONE;
        }
        for (size_t k = 0; ok && k < t->n_input_from; k++) {
            int d = task_index(spec, t->input_from[k]);
            ok = d >= 0 && j->tasks[d].state == LLMOS__TASK_STATE__TASK_DONE;
        }
        if (ok) enqueue(s, j, i);
    }
}

static void send_cancel(sched_t *s, sjob_t *j, uint32_t i, const Llmos__Task *t) {
    Llmos__CancelRequest c = LLMOS__CANCEL_REQUEST__INIT;
    char rid[JOBLOG_ID_MAX + 32], nb[16];
    snprintf(rid, sizeof rid, "%s/%s", j->id, task_name(t, i, nb, sizeof nb));
    c.request_id = rid;
    c.correlation_id = j->seq << 24 | (uint64_t)(j->tasks[i].attempts & 0xFF) << 16 | i;
    uint8_t buf[256];
    size_t len = llmos__cancel_request__get_packed_size(&c);
    if (len > sizeof buf) return;
    llmos__cancel_request__pack(&c, buf);
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, s->targets[j->tasks[i].target].name),
                                              .from = s->self,
                                              .type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL,
                                              .data = buf,
                                              .len = len});
    if (m) rt_send_msg(s->sys, m);
}

/* Ends a job: logs its final state, stops what runs, answers waiters, frees it. */
static void job_end(sched_t *s, sjob_t *j, uint32_t state, const char *why) {
    Llmos__Job *spec = job_spec(s, j);
    uint64_t now = llmos_wall_ms();
    for (uint32_t i = 0; i < j->ntasks; i++) {
        stask_t *t = &j->tasks[i];
        if (t->state == LLMOS__TASK_STATE__TASK_RUNNING) {
            s->targets[t->target].inflight--;
            s->running_tasks--;
            if (t->kind == LLMOS__TASK_KIND__TASK_GENERATE && spec) send_cancel(s, j, i, spec->tasks[i]);
        } else if (t->state == LLMOS__TASK_STATE__TASK_READY) {
            s->queued_tasks--; /* its queue entry goes stale */
        }
        if (t->state != LLMOS__TASK_STATE__TASK_DONE && t->state != LLMOS__TASK_STATE__TASK_FAILED &&
            state != LLMOS__JOB_STATE__JOB_DONE) {
            bool logged = t->state == LLMOS__TASK_STATE__TASK_RUNNING || t->state == LLMOS__TASK_STATE__TASK_RETRY_WAIT;
            t->state = LLMOS__TASK_STATE__TASK_CANCELLED;
            if (logged && spec) log_task(s, j, i, spec->tasks[i], NULL);
        }
    }
    j->state = (uint8_t)state;
    llmos_error_t err;
    if (joblog_job_update(s->log, j->id, state, j->started_ms, now, why, &err) != 0)
        LLMOS_ERROR("scheduler: job %s: %s", j->id, err.msg);
    switch (state) {
    case LLMOS__JOB_STATE__JOB_DONE: s->st_done++; break;
    case LLMOS__JOB_STATE__JOB_FAILED: s->st_failed++; break;
    case LLMOS__JOB_STATE__JOB_CANCELLED: s->st_cancelled++; break;
    case LLMOS__JOB_STATE__JOB_EXPIRED: s->st_expired++; break;
    case LLMOS__JOB_STATE__JOB_QUARANTINED: s->st_quarantined++; break;
    }
    s->rate_count++;
    for (waiter_t *w = j->waiters, *n; w; w = n) {
        n = w->next;
        waiter_answer(s, j->id, NULL, w, 0);
        free(w);
        s->nwaiters--;
    }
    j->waiters = NULL;
    unwatch(s, j);
    spec_forget(s, j->seq);
    job_remove(s, j);
    job_free(s, j);
}

/* Sends a JobEvent to the job's streaming waiters. */
static void stream_event(sched_t *s, sjob_t *j, Llmos__JobEvent *ev) {
    bool any = false;
    for (waiter_t *w = j->waiters; w; w = w->next) any |= w->stream;
    if (!any) return;
    ev->id = j->id;
    uint8_t *buf;
    size_t len;
    PACK(job_event, ev, &buf, &len);
    if (!buf) return;
    for (waiter_t *w = j->waiters; w; w = w->next)
        if (w->stream)
            out_send(s, mk_msg(s, w->node, w->actor, w->corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_EVENT, false, 0, NULL, buf,
                               len));
    free(buf);
}

/* The outputs of task i's input_from tasks, each ending in a newline, in
 * one allocation (caller frees *out; "" when there are none), and with
 * `text` appended when with_text.  ETOOBIG when that with the task's text
 * would pass task_input_max; ENOMEM.  Sizes are summed before anything is
 * copied, so an oversized input costs no memory. */
static int task_input(sched_t *s, sjob_t *j, const Llmos__Job *spec, uint32_t i, bool with_text, char **out,
                      llmos_error_t *err) {
    const Llmos__Task *t = spec->tasks[i];
    size_t tl = strlen(t->text), total = tl;
    Llmos__TaskResult **rs = t->n_input_from ? calloc(t->n_input_from, sizeof *rs) : NULL;
    int rc = 0;
    if (t->n_input_from && !rs) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the task's input");
    for (size_t k = 0; k < t->n_input_from; k++) {
        int d = task_index(spec, t->input_from[k]);
        const void *data;
        size_t dl;
        if (d < 0 || joblog_task_get(s->log, j->id, (uint32_t)d, &data, &dl, NULL) != 0) continue;
        rs[k] = llmos__task_result__unpack(NULL, dl, data);
        if (rs[k]) total += strlen(rs[k]->text) + 1;
    }
    if (total > s->cfg.task_input_max) {
        rc = llmos_error_set(err, LLMOS_ETOOBIG,
                             "its input (text and the outputs of input_from) is %zu bytes; at most %" PRIu64
                             " (config task_input_max)",
                             total, s->cfg.task_input_max);
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

static void task_failed(sched_t *s, sjob_t *j, uint32_t i, int code, const char *why);

/* Builds and sends task i's ask. */
static void task_start(sched_t *s, sjob_t *j, uint32_t i) {
    Llmos__Job *spec = job_spec(s, j);
    if (!spec) {
        task_failed(s, j, i, LLMOS_EFORMAT, "the job's logged spec does not decode");
        return;
    }
    const Llmos__Task *t = spec->tasks[i];
    stask_t *st = &j->tasks[i];
    /* A generation gets its inputs as droppable context lines in front of
     * the prompt (facts that do not fit the model's context are dropped);
     * every other kind gets them joined to its text. */
    bool gen = t->kind == LLMOS__TASK_KIND__TASK_GENERATE;
    char *input = NULL;
    llmos_error_t ierr;
    int irc = task_input(s, j, spec, i, !gen, &input, &ierr);
    if (irc) {
        task_failed(s, j, i, irc, ierr.msg);
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t type = 0;
    char rid[JOBLOG_ID_MAX + 32], nb[16];
    switch (t->kind) {
        case LLMOS__TASK_KIND__TASK_ECHO: {
            Llmos__EchoTask e = LLMOS__ECHO_TASK__INIT;
            e.text = input;
            PACK(echo_task, &e, &buf, &len);
            type = LLMOS__JOB_MSG_TYPE__JOB_MSG_ECHO;
            break;
        }
        case LLMOS__TASK_KIND__TASK_GENERATE: {
            Llmos__GenerateRequest g = LLMOS__GENERATE_REQUEST__INIT;
            g.prompt = t->text;
            g.context = input;
            g.max_tokens = t->max_tokens;
            g.sampling = t->sampling;
            g.n_stop = t->n_stop;
            g.stop = t->stop;
            /* Always streamed: a client may start streaming the job after
             * this task started; chunks nobody streams are dropped early. */
            g.stream = true;
            snprintf(rid, sizeof rid, "%s/%s", j->id, task_name(t, i, nb, sizeof nb));
            g.request_id = rid;
            PACK(generate_request, &g, &buf, &len);
            type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE;
            break;
        }
        case LLMOS__TASK_KIND__TASK_CLASSIFY: {
            Llmos__ScoreRequest q = LLMOS__SCORE_REQUEST__INIT;
            q.prompt = input;
            q.n_labels = t->n_labels;
            q.labels = t->labels;
            PACK(score_request, &q, &buf, &len);
            type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE;
            break;
        }
        case LLMOS__TASK_KIND__TASK_EMBED: {
            Llmos__EmbedRequest q = LLMOS__EMBED_REQUEST__INIT;
            q.text = input;
            PACK(embed_request, &q, &buf, &len);
            type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED;
            break;
        }
        case LLMOS__TASK_KIND__TASK_GRAPH_QUERY: {
            Llmos__GraphQueryRequest q = LLMOS__GRAPH_QUERY_REQUEST__INIT;
            q.sparql = input;
            q.format = t->format;
            PACK(graph_query_request, &q, &buf, &len);
            type = LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY;
            break;
        }
        case LLMOS__TASK_KIND__TASK_LINK: {
            Llmos__GraphLinkRequest q = LLMOS__GRAPH_LINK_REQUEST__INIT;
            q.text = input;
            q.hops = t->hops;
            q.hops_set = t->hops_set;
            q.max_facts = t->max_facts;
            PACK(graph_link_request, &q, &buf, &len);
            type = LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK;
            break;
        }
        default:
            break;
        }
    free(input);
    if (!buf) {
        task_failed(s, j, i, type ? LLMOS_ENOMEM : LLMOS_EUNSUPPORTED, type ? "no memory" : "unknown task kind");
        return;
    }
    uint64_t now = llmos_wall_ms();
    st->attempts++;
    st->state = LLMOS__TASK_STATE__TASK_RUNNING;
    st->started_ms = now;
    uint64_t deadline = now + s->cfg.task_timeout_ms;
    if (j->deadline_ms && j->deadline_ms < deadline) deadline = j->deadline_ms;
    uint64_t corr = j->seq << 24 | (uint64_t)(st->attempts & 0xFF) << 16 | i;
    target_t *tg = &s->targets[st->target];
    tg->inflight++;
    j->nrunning++;
    s->running_tasks++;
    if (j->state == LLMOS__JOB_STATE__JOB_QUEUED) {
        j->state = LLMOS__JOB_STATE__JOB_RUNNING;
        j->started_ms = now;
        (void)joblog_job_update(s->log, j->id, j->state, now, 0, NULL, NULL);
    }
    log_task(s, j, i, t, NULL);
    watch(s, j);
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, tg->name),
                                              .from = s->self,
                                              .type = type,
                                              .corr = corr,
                                              .deadline_ms = deadline,
                                              .tenant = s->tenants[j->tenant].name,
                                              .data = buf,
                                              .len = len});
    free(buf);
    /* Undeliverable asks come back as error replies (bounced by the
     * runtime); only a message that could not be built fails here. */
    if (!m) task_failed(s, j, i, LLMOS_ENOMEM, "no memory for the task's message");
    else out_send(s, m); /* after the commit of its RUNNING state (see the crash count) */
}

static bool job_alive(sched_t *s, uint64_t seq, sjob_t **out) {
    *out = job_by_seq(s, seq);
    return *out != NULL;
}

static void task_failed(sched_t *s, sjob_t *j, uint32_t i, int code, const char *why) {
    stask_t *st = &j->tasks[i];
    if (st->state == LLMOS__TASK_STATE__TASK_RUNNING) {
        s->targets[st->target].inflight--;
        j->nrunning--;
        s->running_tasks--;
    }
    Llmos__Job *spec = job_spec(s, j);
    Llmos__TaskResult r = LLMOS__TASK_RESULT__INIT;
    r.error_code = code;
    r.error = (char *)(why ? why : llmos_strerror(code));
    r.finished_ms = llmos_wall_ms();
    char nb[16];
    const char *name = spec ? task_name(spec->tasks[i], i, nb, sizeof nb) : "?";
    if (llmos_err_is_retryable(code) && st->attempts <= j->max_retries) {
        st->state = LLMOS__TASK_STATE__TASK_RETRY_WAIT;
        if (spec) log_task(s, j, i, spec->tasks[i], &r);
        uint64_t backoff = (uint64_t)s->cfg.retry_base_ms << (st->attempts ? st->attempts - 1 : 0);
        if (st->attempts > 20 || backoff > RETRY_CAP_MS) backoff = RETRY_CAP_MS;
        (void)evt_add(s, llmos_wall_ms() + backoff, j->seq, i, st->attempts, EV_RETRY);
        s->st_retried++;
        return;
    }
    st->state = LLMOS__TASK_STATE__TASK_FAILED;
    if (spec) log_task(s, j, i, spec->tasks[i], &r);
    char text[LLMOS_ERRMSG_MAX];
    snprintf(text, sizeof text, "task '%s' failed after %u attempt%s: %s: %s", name, st->attempts,
             st->attempts == 1 ? "" : "s", llmos_errname(code), r.error);
    Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
    r.name = (char *)name;
    r.state = LLMOS__TASK_STATE__TASK_FAILED;
    ev.task = (char *)name;
    ev.result = &r;
    stream_event(s, j, &ev);
    job_end(s, j, LLMOS__JOB_STATE__JOB_FAILED, text);
}

/* Keeps only the fact sentences of a link answer (lines that are neither
 * "mention\t..." nor "fact\t..."). */
static void link_sentences(char *text) {
    char *w = text;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "mention\t", 8) != 0 && strncmp(p, "fact\t", 5) != 0) {
            memmove(w, p, n);
            w += n;
        }
        p += n;
    }
    *w = 0;
}

/* Fills r from a task's reply payload; the unpacked reply is kept in
 * *hold (freed by the caller with free_fn).  EFORMAT when it does not decode. */
static int result_fill(uint32_t kind, const rt_msg_t *m, Llmos__TaskResult *r, ProtobufCMessage **hold) {
    *hold = NULL;
    switch (kind) {
    case LLMOS__TASK_KIND__TASK_ECHO: {
        Llmos__EchoTask *e = llmos__echo_task__unpack(NULL, m->len, m->data);
        if (!e) return LLMOS_EFORMAT;
        r->text = e->text;
        *hold = &e->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_GENERATE: {
        Llmos__GenerateResult *g = llmos__generate_result__unpack(NULL, m->len, m->data);
        if (!g) return LLMOS_EFORMAT;
        r->text = g->text;
        r->n_tokens = g->n_tokens;
        r->tokens = g->tokens;
        r->finish_reason = g->finish_reason;
        *hold = &g->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_CLASSIFY: {
        Llmos__ScoreResult *q = llmos__score_result__unpack(NULL, m->len, m->data);
        if (!q) return LLMOS_EFORMAT;
        r->n_labels = q->n_labels;
        r->labels = q->labels;
        r->n_probs = q->n_probs;
        r->probs = q->probs;
        r->best = q->best;
        r->text = q->best;
        *hold = &q->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_EMBED: {
        Llmos__EmbedResult *q = llmos__embed_result__unpack(NULL, m->len, m->data);
        if (!q) return LLMOS_EFORMAT;
        r->n_vector = q->n_vector;
        r->vector = q->vector;
        *hold = &q->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_GRAPH_QUERY:
    case LLMOS__TASK_KIND__TASK_LINK: {
        Llmos__GraphResult *q = llmos__graph_result__unpack(NULL, m->len, m->data);
        if (!q) return LLMOS_EFORMAT;
        /* (an empty text is protobuf-c's shared read-only "": not to be written) */
        if (kind == LLMOS__TASK_KIND__TASK_LINK && q->text[0]) link_sentences(q->text);
        r->text = q->text;
        r->facts = q->facts;
        *hold = &q->base;
        return 0;
    }
    default:
        return LLMOS_EUNSUPPORTED;
    }
}

/* A model's stats set the target's cap in flight to what it can run at
 * once: the full-length sequences its KV cache holds (blocks of 16 tokens),
 * so what waits beyond that waits here, in the policy's order, not in the
 * model's own FIFO queue.  Without KV figures: its queue limit. */
static void on_model_stats(sched_t *s, const rt_msg_t *m) {
    uint32_t t = (uint32_t)m->corr & 0xFFFF;
    if (t >= s->ntargets || m->status || m->type != LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS) return;
    Llmos__ModelStats *st = llmos__model_stats__unpack(NULL, m->len, m->data);
    if (!st) return;
    uint32_t block = st->kv_block_tokens ? st->kv_block_tokens : 16; /* (nodes before the field: 16) */
    uint64_t cap = st->seq_len && st->kv_blocks_total ? (uint64_t)st->kv_blocks_total * block / st->seq_len
                                                      : st->queue_limit;
    if (cap) {
        s->targets[t].limit = (uint32_t)(cap > 1000000 ? 1000000 : cap);
        LLMOS_INFO("scheduler: target %s: at most %u tasks in flight (learned from its stats)", s->targets[t].name,
                   s->targets[t].limit);
    }
    llmos__model_stats__free_unpacked(st, NULL);
}

static void on_task_reply(sched_t *s, const rt_msg_t *m) {
    uint64_t seq = m->corr >> 24;
    uint32_t i = m->corr & 0xFFFF;
    uint8_t attempt = (uint8_t)(m->corr >> 16);
    sjob_t *j;
    if (seq == 0) {
        on_model_stats(s, m);
        return;
    }
    if (!job_alive(s, seq, &j) || i >= j->ntasks) return;
    stask_t *st = &j->tasks[i];
    if (st->state != LLMOS__TASK_STATE__TASK_RUNNING || (uint8_t)st->attempts != attempt) return; /* stale */
    if (m->status) {
        task_failed(s, j, i, m->status, m->error ? m->error : llmos_strerror(m->status));
        return;
    }
    Llmos__TaskResult r = LLMOS__TASK_RESULT__INIT;
    ProtobufCMessage *hold;
    int rc = result_fill(st->kind, m, &r, &hold);
    if (rc) {
        task_failed(s, j, i, rc, "the target's reply does not decode as the task kind's result");
        return;
    }
    Llmos__Job *spec = job_spec(s, j);
    if (!spec) {
        if (hold) protobuf_c_message_free_unpacked(hold, NULL);
        task_failed(s, j, i, LLMOS_EFORMAT, "the job's logged spec does not decode");
        return;
    }
    st->state = LLMOS__TASK_STATE__TASK_DONE;
    s->targets[st->target].inflight--;
    j->nrunning--;
    j->ndone++;
    s->running_tasks--;
    r.finished_ms = llmos_wall_ms();
    log_task(s, j, i, spec->tasks[i], &r);
    Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
    ev.task = r.name;
    ev.result = &r;
    uint64_t room = s->cfg.status_max_bytes; /* an event carries a part of a longer text */
    (void)text_part(&r, 0, &room, NULL);
    stream_event(s, j, &ev);
    if (hold) protobuf_c_message_free_unpacked(hold, NULL);
    if (j->ndone == j->ntasks) {
        job_end(s, j, LLMOS__JOB_STATE__JOB_DONE, NULL);
        return;
    }
    release_ready(s, j, spec);
}

/* MODEL_MSG_GENERATE_CHUNK for one of our generations: relay to streamers. */
static void on_chunk(sched_t *s, const rt_msg_t *m) {
    sjob_t *j;
    uint32_t i = m->corr & 0xFFFF;
    if (!job_alive(s, m->corr >> 24, &j) || i >= j->ntasks) return;
    bool any = false;
    for (waiter_t *w = j->waiters; w; w = w->next) any |= w->stream;
    if (!any) return;
    Llmos__GenerateChunk *c = llmos__generate_chunk__unpack(NULL, m->len, m->data);
    if (!c) return;
    Llmos__Job *spec = job_spec(s, j);
    char nb[16];
    Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
    ev.task = (char *)(spec ? task_name(spec->tasks[i], i, nb, sizeof nb) : "");
    ev.chunk = c;
    stream_event(s, j, &ev);
    llmos__generate_chunk__free_unpacked(c, NULL);
}

/* ---- requests ---- */

static uint64_t retry_after_ms(const sched_t *s) {
    double rate = s->done_rate;
    uint64_t ms = rate > 0.5 ? (uint64_t)((double)s->njobs / rate * 1000.0 / 10.0) : 1000;
    if (ms < 100) ms = 100;
    if (ms > 60000) ms = 60000;
    return ms;
}

static void submit_reply(sched_t *s, const rt_msg_t *req, const char *id, bool existing, uint32_t state,
                         uint64_t pos) {
    Llmos__SubmitResult r = LLMOS__SUBMIT_RESULT__INIT;
    r.id = (char *)id;
    r.existing = existing;
    r.state = (Llmos__JobState)state;
    r.queue_position = pos;
    uint8_t buf[JOBLOG_ID_MAX + 64];
    size_t len = llmos__submit_result__get_packed_size(&r);
    if (len > sizeof buf) return;
    llmos__submit_result__pack(&r, buf);
    reply_to(s, req, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len);
}

static void status_reply(sched_t *s, const rt_msg_t *req, const char *id, const sjob_t *j, const char *only_task,
                         uint64_t offset, int status) {
    uint8_t *buf;
    size_t len;
    llmos_error_t err;
    if (status_pack(s, id, j, true, only_task, offset, &buf, &len, &err) != 0) {
        reply_err(s, req, err.code, "%s", err.msg);
        return;
    }
    out_send(s, mk_msg(s, req->from.node, req->from.id, req->corr, req->type, true, status,
                       status ? "wait timed out; the job has not finished" : NULL, buf, len));
    free(buf);
}

/* The target a task's asks go to: its own, else its kind's default. */
static const char *task_target(const Llmos__Task *t) {
    if (t->target && t->target[0]) return t->target;
    switch (t->kind) {
    case LLMOS__TASK_KIND__TASK_ECHO: return "echo";
    case LLMOS__TASK_KIND__TASK_GRAPH_QUERY:
    case LLMOS__TASK_KIND__TASK_LINK: return "graph";
    default: return "model";
    }
}

/* What a node needs to serve a default target, for the refusal. */
static const char *target_hint(const char *name) {
    if (strcmp(name, "graph") == 0) return " (start llmosd with --graph DIR)";
    if (strcmp(name, "model") == 0 || strncmp(name, "model/", 6) == 0)
        return " (start llmosd with --model FILE --tokenizer FILE, --classifier DIR or --ensemble SPEC)";
    return "";
}

/* Builds the in-memory job for spec (validated by the gateway; checked
 * again here for what memory safety needs).  check_targets: refuse a task
 * whose target this node does not serve (at submission; a recovered job's
 * tasks fail when they run instead). */
static int job_new(sched_t *s, const Llmos__Job *spec, const uint8_t *packed, size_t plen, uint64_t seq,
                   const char *tenant, uint64_t submitted_ms, bool check_targets, sjob_t **out, llmos_error_t *err) {
    size_t idlen = strlen(spec->id), n = spec->n_tasks;
    if (idlen == 0 || idlen > JOBLOG_ID_MAX) return llmos_error_set(err, LLMOS_EINVAL, "job.id: empty or over %d bytes", JOBLOG_ID_MAX);
    if (n == 0 || n > 0xFFFF) return llmos_error_set(err, LLMOS_EINVAL, "job.tasks: %zu tasks (1..65535)", n);
    for (size_t i = 0; check_targets && i < n; i++) {
        const char *target = task_target(spec->tasks[i]);
        rt_ref_t ref;
        if (rt_lookup(s->sys, target, &ref) != 0) {
            char nb[16];
            return llmos_error_set(err, LLMOS_ENOTFOUND, "job.tasks[%zu] '%s': target '%.64s' is not served by this node%s",
                                   i, task_name(spec->tasks[i], (uint32_t)i, nb, sizeof nb), target, target_hint(target));
        }
    }
    size_t off_tasks = (sizeof(sjob_t) + idlen + 1 + 7) & ~(size_t)7;
    size_t total = off_tasks + n * sizeof(stask_t) + plen;
    sjob_t *j = calloc(1, total);
    if (!j) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for job '%s'", spec->id);
    memcpy(j->id, spec->id, idlen + 1);
    j->tasks = (stask_t *)((uint8_t *)j + off_tasks);
    j->spec = (uint8_t *)(j->tasks + n);
    memcpy(j->spec, packed, plen);
    j->spec_len = (uint32_t)plen;
    j->seq = seq;
    j->submitted_ms = submitted_ms;
    j->deadline_ms = spec->deadline_ms;
    j->priority = spec->priority;
    j->max_retries = spec->max_retries ? spec->max_retries : s->cfg.max_retries_default;
    if (j->max_retries > 250) j->max_retries = 250; /* attempts are counted in a byte */
    j->ntasks = (uint16_t)n;
    j->state = LLMOS__JOB_STATE__JOB_QUEUED;
    int rc = tenant_find(s, tenant, &j->tenant);
    if (rc) {
        free(j);
        return rc == LLMOS_EOVERLOADED
                   ? llmos_error_set(err, rc, "tenant '%s': %d other tenants have unfinished jobs; retry later",
                                     tenant, TENANTS_MAX)
                   : llmos_error_set(err, rc, "no memory for tenant '%s'", tenant);
    }
    s->tenants[j->tenant].refs++;
    for (size_t i = 0; i < n; i++) {
        const char *target = task_target(spec->tasks[i]);
        rc = target_find(s, target, &j->tasks[i].target);
        if (rc) {
            j->ntasks = (uint16_t)i; /* the references taken so far */
            job_free(s, j);
            return rc == LLMOS_EOVERLOADED
                       ? llmos_error_set(err, rc, "task %zu: target '%s': %d other targets have unfinished tasks; retry later",
                                         i, target, SCHED_TARGETS_MAX)
                       : llmos_error_set(err, rc, "task %zu: target name '%.64s...' is too long", i, target);
        }
        s->targets[j->tasks[i].target].refs++;
        j->tasks[i].kind = (uint8_t)spec->tasks[i]->kind;
        j->tasks[i].state = LLMOS__TASK_STATE__TASK_PENDING;
    }
    rc = job_insert(s, j);
    if (rc) {
        job_free(s, j);
        return llmos_error_set(err, rc, "no memory for the job table");
    }
    *out = j;
    return 0;
}

static void on_submit(sched_t *s, const rt_msg_t *req) {
    Llmos__SubmitRequest *sr = llmos__submit_request__unpack(NULL, req->len, req->data);
    if (!sr || !sr->job) {
        reply_err(s, req, LLMOS_EFORMAT, "submit: the payload (%zu bytes) is not a SubmitRequest with a job", req->len);
        if (sr) llmos__submit_request__free_unpacked(sr, NULL);
        return;
    }
    Llmos__Job *spec = sr->job;
    const char *id = spec->id;
    uint32_t wait_ms = sr->wait_timeout_ms;
    sjob_t *j = job_by_id(s, id);
    llmos_error_t err;
    if (j) { /* idempotent: the first job */
        if (sr->wait) {
            int rc = waiter_add(s, j, req, wait_ms, sr->stream);
            if (rc) reply_err(s, req, rc, "job '%s': too many waiters", id);
            else if (sr->stream) replay_done(s, j, req);
        } else {
            submit_reply(s, req, id, true, j->state, s->njobs);
        }
        goto out;
    }
    if (id[0] && strlen(id) <= JOBLOG_ID_MAX) {
        joblog_job_t rec;
        if (joblog_job_get(s->log, id, false, &rec, NULL) == 0) {
            if (sr->wait) status_reply(s, req, id, NULL, NULL, 0, 0);
            else submit_reply(s, req, id, true, rec.state, 0);
            goto out;
        }
    }
    if (s->njobs >= s->cfg.queue_limit) {
        s->st_rejected++;
        reply_err(s, req, LLMOS_EOVERLOADED, "overloaded: %zu jobs queued, retry after %" PRIu64 " ms", s->njobs,
                  retry_after_ms(s));
        goto out;
    }
    const char *tenant = spec->tenant && spec->tenant[0] ? spec->tenant
                         : req->tenant && req->tenant[0] ? req->tenant
                                                          : "default";
    size_t plen = llmos__job__get_packed_size(spec);
    uint8_t *packed = malloc(plen ? plen : 1);
    if (!packed) {
        reply_err(s, req, LLMOS_ENOMEM, "submit: no memory");
        goto out;
    }
    llmos__job__pack(spec, packed);
    uint64_t now = llmos_wall_ms();
    int rc = job_new(s, spec, packed, plen, s->next_seq, tenant, now, true, &j, &err);
    if (rc) {
        free(packed);
        reply_err(s, req, rc, "submit: %s", err.msg);
        goto out;
    }
    s->next_seq++;
    joblog_job_t rec = {.seq = j->seq,
                        .submitted_ms = now,
                        .priority = j->priority,
                        .state = LLMOS__JOB_STATE__JOB_QUEUED,
                        .ntasks = j->ntasks,
                        .tenant = tenant,
                        .tenant_len = strlen(tenant),
                        .spec = packed,
                        .spec_len = plen};
    rc = joblog_job_add(s->log, id, &rec, &err);
    free(packed);
    if (rc) {
        job_remove(s, j);
        job_free(s, j);
        reply_err(s, req, rc, "submit: %s", err.msg);
        goto out;
    }
    if (j->deadline_ms) (void)evt_add(s, j->deadline_ms, j->seq, 0, 0, EV_DEADLINE);
    if (sr->wait) {
        rc = waiter_add(s, j, req, wait_ms, sr->stream);
        if (rc) reply_err(s, req, rc, "job '%s': no memory for the waiter", id);
    } else {
        submit_reply(s, req, id, false, LLMOS__JOB_STATE__JOB_QUEUED, s->njobs);
    }
    release_ready(s, j, spec);
out:
    llmos__submit_request__free_unpacked(sr, NULL);
}

static void on_status_or_cancel(sched_t *s, const rt_msg_t *req, bool cancel) {
    Llmos__JobRef *r = llmos__job_ref__unpack(NULL, req->len, req->data);
    if (!r) {
        reply_err(s, req, LLMOS_EFORMAT, "the payload (%zu bytes) is not a JobRef", req->len);
        return;
    }
    sjob_t *j = r->id[0] && strlen(r->id) <= JOBLOG_ID_MAX ? job_by_id(s, r->id) : NULL;
    if (cancel && j) {
        job_end(s, j, LLMOS__JOB_STATE__JOB_CANCELLED, "cancelled on request");
        j = NULL;
    }
    if (!r->id[0] || strlen(r->id) > JOBLOG_ID_MAX) reply_err(s, req, LLMOS_EINVAL, "id: empty or over %d bytes", JOBLOG_ID_MAX);
    else status_reply(s, req, r->id, j, cancel ? NULL : r->task, cancel ? 0 : r->offset, 0);
    llmos__job_ref__free_unpacked(r, NULL);
}

/* A stream that starts late first gets the results of the tasks already
 * done, so every task's event is seen exactly once per stream. */
static void replay_done(sched_t *s, sjob_t *j, const rt_msg_t *req) {
    for (uint32_t i = 0; i < j->ntasks; i++) {
        const void *d;
        size_t dl;
        if (j->tasks[i].state != LLMOS__TASK_STATE__TASK_DONE || joblog_task_get(s->log, j->id, i, &d, &dl, NULL) != 0)
            continue;
        Llmos__TaskResult *r = llmos__task_result__unpack(NULL, dl, d);
        if (!r) continue;
        Llmos__JobEvent ev = LLMOS__JOB_EVENT__INIT;
        ev.id = j->id;
        ev.task = r->name;
        ev.result = r;
        uint64_t room = s->cfg.status_max_bytes;
        (void)text_part(r, 0, &room, NULL);
        uint8_t *buf;
        size_t len;
        PACK(job_event, &ev, &buf, &len);
        if (buf)
            out_send(s, mk_msg(s, req->from.node, req->from.id, req->corr, LLMOS__JOB_MSG_TYPE__JOB_MSG_EVENT, false, 0,
                               NULL, buf, len));
        free(buf);
        llmos__task_result__free_unpacked(r, NULL);
    }
}

static void on_wait(sched_t *s, const rt_msg_t *req) {
    Llmos__WaitRequest *w = llmos__wait_request__unpack(NULL, req->len, req->data);
    if (!w) {
        reply_err(s, req, LLMOS_EFORMAT, "wait: the payload (%zu bytes) is not a WaitRequest", req->len);
        return;
    }
    sjob_t *j = w->id[0] && strlen(w->id) <= JOBLOG_ID_MAX ? job_by_id(s, w->id) : NULL;
    if (j) {
        int rc = waiter_add(s, j, req, w->timeout_ms, w->stream);
        if (rc) reply_err(s, req, rc, "wait: job '%s' has too many waiters", w->id);
        else if (w->stream) replay_done(s, j, req);
    } else if (!w->id[0] || strlen(w->id) > JOBLOG_ID_MAX) {
        reply_err(s, req, LLMOS_EINVAL, "wait: id empty or over %d bytes", JOBLOG_ID_MAX);
    } else {
        status_reply(s, req, w->id, NULL, NULL, 0, 0); /* finished (or ENOTFOUND) */
    }
    llmos__wait_request__free_unpacked(w, NULL);
}

/* Ids of the jobs a list page holds (collected first: the log may not be
 * called from inside its walk). */
typedef struct list_acc {
    char **ids;
    size_t n, cap;
    int oom;
} list_acc_t;

static int list_each(void *user, const char *id, size_t id_len, const joblog_job_t *rec) {
    list_acc_t *a = user;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **p = realloc(a->ids, cap * sizeof *p);
        if (!p) {
            a->oom = 1;
            return 1;
        }
        a->ids = p;
        a->cap = cap;
    }
    a->ids[a->n] = strndup(id, id_len);
    if (!a->ids[a->n]) {
        a->oom = 1;
        return 1;
    }
    a->n++;
    return 0;
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

/* A JobList: each job's JobStatus with task states but no results. */
static void on_list(sched_t *s, const rt_msg_t *req) {
    Llmos__ListRequest *q = llmos__list_request__unpack(NULL, req->len, req->data);
    if (!q) {
        reply_err(s, req, LLMOS_EFORMAT, "list: the payload (%zu bytes) is not a ListRequest", req->len);
        return;
    }
    uint32_t limit = q->limit ? q->limit : 100;
    if (limit > LIST_LIMIT_MAX) limit = LIST_LIMIT_MAX;
    list_acc_t a = {0};
    char next[JOBLOG_ID_MAX + 1];
    llmos_error_t err;
    int rc = joblog_list(s->log, q->tenant, (uint32_t)q->state, q->after, limit, LIST_SCAN_MAX, list_each, &a, next,
                         sizeof next, &err);
    if (!rc && a.oom) rc = llmos_error_set(&err, LLMOS_ENOMEM, "list: no memory");
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = rc ? NULL : open_memstream(&out, &outlen);
    if (!rc && !f) rc = llmos_error_set(&err, LLMOS_ENOMEM, "list: no memory");
    for (size_t i = 0; !rc && i < a.n; i++) {
        uint8_t *buf;
        size_t len;
        rc = status_pack(s, a.ids[i], job_by_id(s, a.ids[i]), false, NULL, 0, &buf, &len, &err);
        if (!rc && put_field(f, 0x0A, buf, len) != 0) rc = llmos_error_set(&err, LLMOS_ENOMEM, "list: no memory");
        free(buf);
    }
    if (!rc && next[0] && put_field(f, 0x12, next, strlen(next)) != 0)
        rc = llmos_error_set(&err, LLMOS_ENOMEM, "list: no memory");
    if (f && fclose(f) != 0 && !rc) rc = llmos_error_set(&err, LLMOS_ENOMEM, "list: no memory");
    if (rc) reply_err(s, req, rc, "list: %s", err.msg);
    else reply_to(s, req, req->type, out, outlen);
    free(out);
    for (size_t i = 0; i < a.n; i++) free(a.ids[i]);
    free(a.ids);
    llmos__list_request__free_unpacked(q, NULL);
}

static void on_stats(sched_t *s, const rt_msg_t *req) {
    Llmos__SchedulerStats st = LLMOS__SCHEDULER_STATS__INIT;
    st.policy = (char *)sched_policy_name(s->cfg.policy);
    st.queued = s->njobs; /* unfinished jobs (queued or running) */
    st.running = s->running_tasks;
    st.done = s->st_done;
    st.failed = s->st_failed;
    st.retried = s->st_retried;
    st.rejected_overloaded = s->st_rejected;
    st.expired = s->st_expired;
    st.cancelled = s->st_cancelled;
    st.recovered = s->st_recovered;
    st.queue_limit = s->cfg.queue_limit;
    st.waiters = s->nwaiters;
    st.quarantined = s->st_quarantined;
    uint8_t buf[256];
    size_t len = llmos__scheduler_stats__pack(&st, buf);
    reply_to(s, req, req->type, buf, len);
}

/* ---- time ---- */

static void on_event(sched_t *s, const evt_t *e, uint64_t now) {
    sjob_t *j;
    if (!job_alive(s, e->seq, &j)) return;
    switch (e->kind) {
    case EV_DEADLINE:
        if (j->deadline_ms && j->deadline_ms <= now) job_end(s, j, LLMOS__JOB_STATE__JOB_EXPIRED, "deadline passed");
        return;
    case EV_RETRY:
        if (e->task < j->ntasks && j->tasks[e->task].state == LLMOS__TASK_STATE__TASK_RETRY_WAIT &&
            j->tasks[e->task].attempts == e->attempt)
            enqueue(s, j, e->task);
        return;
    }
}

/* Every SWEEP_MS: waits past their deadline are answered ETIMEDOUT and
 * dropped; running tasks whose target did not answer by their deadline
 * (+1 s for the target's own timeout to arrive first) fail ETIMEDOUT.  Only
 * jobs with waiters or running tasks are on the list, so queued jobs cost
 * nothing here. */
static void sweep(sched_t *s, uint64_t now) {
    for (sjob_t *j = s->watch_head, *next; j; j = next) {
        next = j->wnext;
        uint64_t seq = j->seq;
        for (uint32_t i = 0; i < j->ntasks && j->nrunning; i++) {
            stask_t *t = &j->tasks[i];
            if (t->state != LLMOS__TASK_STATE__TASK_RUNNING) continue;
            uint64_t dl = t->started_ms + s->cfg.task_timeout_ms;
            if (j->deadline_ms && j->deadline_ms < dl) dl = j->deadline_ms;
            if (now > dl + 1000) {
                task_failed(s, j, i, LLMOS_ETIMEDOUT, "the target did not answer in time");
                if (job_by_seq(s, seq) != j) break; /* the job ended (and is freed) */
            }
        }
        if (job_by_seq(s, seq) != j) continue;
        for (waiter_t **p = &j->waiters; *p;) {
            waiter_t *w = *p;
            if (w->deadline_ms <= now) {
                *p = w->next;
                waiter_answer(s, j->id, j, w, LLMOS_ETIMEDOUT);
                free(w);
                s->nwaiters--;
            } else {
                p = &w->next;
            }
        }
        if (!j->waiters && !j->nrunning) unwatch(s, j);
    }
}

static void on_tick(sched_t *s) {
    uint64_t now = llmos_wall_ms();
    while (s->events.n && s->events.v[0].due_ms <= now) {
        evt_t e = eheap_pop(&s->events);
        on_event(s, &e, now);
    }
    if (now - s->last_sweep_ms >= SWEEP_MS) {
        s->last_sweep_ms = now;
        sweep(s, now);
    }
    if (now - s->rate_t0_ms >= 1000) {
        double r = (double)s->rate_count * 1000.0 / (double)(now - s->rate_t0_ms);
        s->done_rate = s->done_rate * 0.5 + r * 0.5;
        s->rate_count = 0;
        s->rate_t0_ms = now;
    }
    if (now - s->last_purge_ms >= PURGE_EVERY_MS) {
        s->last_purge_ms = now;
        uint32_t n;
        llmos_error_t err;
        if (joblog_purge(s->log, now, (uint64_t)s->cfg.retention_s * 1000u, 1000, &n, &err) != 0)
            LLMOS_ERROR("scheduler: retention: %s", err.msg);
    }
}

/* Starts what the targets have room for. */
static void pump(sched_t *s) {
    for (uint32_t t = 0; t < s->ntargets; t++) {
        target_t *tg = &s->targets[t];
        if (tg->learn && s->self.id) {
            /* Job seq 0 is never used: corr 0<<24 | 1<<16 | target index
             * marks the stats ask (never 0: a zero corr is no ask). */
            tg->learn = false;
            rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, tg->name),
                                                      .from = s->self,
                                                      .type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS,
                                                      .corr = 1u << 16 | t,
                                                      .deadline_ms = llmos_wall_ms() + 10000});
            if (m) rt_send_msg(s->sys, m);
        }
        while (tg->inflight < tg->limit && tg->q.n) {
            qent_t e = qheap_pop(&tg->q);
            sjob_t *j;
            if (!job_alive(s, e.seq, &j) || e.task >= j->ntasks ||
                j->tasks[e.task].state != LLMOS__TASK_STATE__TASK_READY)
                continue; /* stale: the job ended or the entry was superseded */
            s->queued_tasks--;
            if (s->cfg.policy == SCHED_ROUND_ROBIN) tg->vt = (uint64_t)e.k1;
            if (j->deadline_ms && j->deadline_ms <= llmos_wall_ms()) {
                /* (it passed while queued, or while the node was down) */
                j->tasks[e.task].state = LLMOS__TASK_STATE__TASK_PENDING;
                job_end(s, j, LLMOS__JOB_STATE__JOB_EXPIRED, "deadline passed");
                continue;
            }
            task_start(s, j, e.task);
        }
    }
}

/* ---- the actor ---- */

static int sched_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    sched_t *s = state;
    if (msg->flags & RT_MSG_REPLY) {
        if (msg->corr && !(msg->corr >> 63)) on_task_reply(s, msg);
    } else {
        switch (msg->type) {
        case RT_MSG_TIMER: on_tick(s); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT: on_submit(s, msg); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS: on_status_or_cancel(s, msg, false); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL: on_status_or_cancel(s, msg, true); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT: on_wait(s, msg); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST: on_list(s, msg); break;
        case LLMOS__JOB_MSG_TYPE__JOB_MSG_SCHED_STATS: on_stats(s, msg); break;
        case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE_CHUNK: on_chunk(s, msg); break;
        default:
            if (msg->corr) reply_err(s, msg, LLMOS_EUNKNOWNTYPE, "scheduler: unknown message type %u", msg->type);
            break;
        }
    }
    pump(s);
    if (joblog_pending(s->log) >= COMMIT_WRITES || joblog_pending_age_ms(s->log) >= COMMIT_AGE_MS) commit(s);
    return 0;
}

static bool sched_idle(rt_ctx_t *ctx, void *state) {
    sched_t *s = state;
    pump(s);
    if (joblog_pending(s->log) || s->nout) commit(s);
    return false;
}

static void sched_free(sched_t *s) {
    if (!s) return;
    for (size_t b = 0; b < s->nbuckets; b++)
        for (sjob_t *j = s->by_id[b], *n; j; j = n) {
            n = j->next_id;
            for (waiter_t *w = j->waiters, *wn; w; w = wn) {
                wn = w->next;
                free(w);
            }
            free(j);
        }
    free(s->by_id);
    free(s->by_seq);
    for (uint32_t t = 0; t < s->ntargets; t++) free(s->targets[t].q.v);
    for (uint32_t t = 0; t < s->ntenants; t++) free(s->tenants[t].name);
    free(s->tenants);
    free(s->events.v);
    for (size_t i = 0; i < s->nout; i++) rt_msg_free(s->outbox[i]);
    free(s->outbox);
    if (s->spec_cache) llmos__job__free_unpacked(s->spec_cache, NULL);
    joblog_close(&s->log);
    free(s);
}

static int sched_init(rt_ctx_t *ctx, void *arg, void **state) {
    sched_t *s = arg;
    s->self = rt_ctx_self(ctx);
    s->sys = rt_ctx_system(ctx);
    int rc = rt_timer_start(s->sys, s->self, TICK_MS, TICK_MS, RT_MSG_TIMER, 1, NULL);
    if (rc == LLMOS_ESTATE) rc = 0; /* the system is already stopping: no ticks needed, deinit will run */
    if (rc) {
        /* deinit will not run (the runtime only calls it after a good init) */
        sched_free(s);
        return rc;
    }
    *state = s;
    return 0;
}

/* A clean stop: tasks in flight are logged back as READY, so the next
 * start does not count this stop as a crash they were in flight during. */
static void log_running_as_ready(sched_t *s) {
    for (sjob_t *j = s->watch_head; j; j = j->wnext) {
        if (!j->nrunning) continue;
        Llmos__Job *spec = job_spec(s, j);
        for (uint32_t i = 0; spec && i < j->ntasks; i++)
            if (j->tasks[i].state == LLMOS__TASK_STATE__TASK_RUNNING) {
                j->tasks[i].state = LLMOS__TASK_STATE__TASK_READY;
                log_task(s, j, i, spec->tasks[i], NULL);
            }
    }
}

static void sched_deinit(rt_ctx_t *ctx, void *state) {
    sched_t *s = state;
    log_running_as_ready(s);
    commit(s);
    sched_free(s);
}

static const rt_actor_def_t sched_def = {"scheduler", sched_init, sched_receive, sched_deinit, sched_idle};

/* ---- recovery ---- */

typedef struct rec_item {
    uint64_t seq;
    char id[JOBLOG_ID_MAX + 1];
} rec_item_t;

typedef struct rec_acc {
    rec_item_t *v;
    size_t n, cap;
    uint64_t max_seq;
    int oom;
} rec_acc_t;

static int rec_each(void *user, const char *id, size_t id_len, const joblog_job_t *job) {
    rec_acc_t *a = user;
    if (job->seq > a->max_seq) a->max_seq = job->seq;
    if (terminal(job->state) || id_len > JOBLOG_ID_MAX) return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        rec_item_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) {
            a->oom = 1;
            return 1;
        }
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n].seq = job->seq;
    memcpy(a->v[a->n].id, id, id_len);
    a->v[a->n].id[id_len] = 0;
    a->n++;
    return 0;
}

static int rec_cmp(const void *a, const void *b) {
    const rec_item_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Ends a recovered job whose task `i` was in flight during quarantine_after
 * consecutive crashes: the task fails, the job ends QUARANTINED; nothing of
 * it runs again. */
static void quarantine(sched_t *s, sjob_t *j, uint32_t i, const Llmos__Job *spec) {
    char nb[16], why[256];
    const char *name = task_name(spec->tasks[i], i, nb, sizeof nb);
    snprintf(why, sizeof why,
             "quarantined: task '%.64s' was in flight during %u consecutive crashes of the node; it is not run again",
             name, j->tasks[i].crashes);
    LLMOS_WARN("scheduler: job %s %s", j->id, why);
    Llmos__TaskResult r = LLMOS__TASK_RESULT__INIT;
    r.error_code = LLMOS_EINTERNAL;
    r.error = why;
    r.finished_ms = llmos_wall_ms();
    j->tasks[i].state = LLMOS__TASK_STATE__TASK_FAILED;
    log_task(s, j, i, spec->tasks[i], &r);
    job_end(s, j, LLMOS__JOB_STATE__JOB_QUARANTINED, why);
}

/* Re-queues every unfinished job of the log: done tasks keep their results,
 * the others start again (attempts kept); a task found in flight counts a
 * crash, and the job is quarantined at quarantine_after (see scheduler.h). */
static int recover(sched_t *s, llmos_error_t *err) {
    rec_acc_t a = {0};
    int rc = joblog_foreach(s->log, rec_each, &a, err);
    if (!rc && a.oom) rc = llmos_error_set(err, LLMOS_ENOMEM, "recovery: no memory");
    s->next_seq = a.max_seq + 1;
    if (rc) {
        free(a.v);
        return rc;
    }
    if (a.n) qsort(a.v, a.n, sizeof *a.v, rec_cmp);
    for (size_t k = 0; k < a.n && !rc; k++) {
        joblog_job_t rec;
        rc = joblog_job_get(s->log, a.v[k].id, true, &rec, err);
        if (rc) break;
        char tenant[JOBLOG_TENANT_MAX + 1];
        snprintf(tenant, sizeof tenant, "%.*s", (int)rec.tenant_len, rec.tenant);
        uint64_t submitted = rec.submitted_ms, started = rec.started_ms;
        uint32_t state = rec.state;
        uint8_t *packed = malloc(rec.spec_len ? rec.spec_len : 1);
        if (!packed) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "recovery: no memory");
            break;
        }
        memcpy(packed, rec.spec, rec.spec_len);
        size_t plen = rec.spec_len;
        Llmos__Job *spec = llmos__job__unpack(NULL, plen, packed);
        sjob_t *j = NULL;
        if (!spec) {
            LLMOS_ERROR("recovery: job '%s': its spec does not decode; marked failed", a.v[k].id);
            (void)joblog_job_update(s->log, a.v[k].id, LLMOS__JOB_STATE__JOB_FAILED, started, llmos_wall_ms(),
                                    "its logged spec does not decode", NULL);
            free(packed);
            continue;
        }
        rc = job_new(s, spec, packed, plen, a.v[k].seq, tenant, submitted, false, &j, err);
        free(packed);
        if (rc) {
            llmos__job__free_unpacked(spec, NULL);
            break;
        }
        j->started_ms = started;
        j->state = (uint8_t)(state == LLMOS__JOB_STATE__JOB_RUNNING ? state : LLMOS__JOB_STATE__JOB_QUEUED);
        int culprit = -1;
        for (uint32_t i = 0; i < j->ntasks; i++) {
            const void *d;
            size_t dl;
            if (joblog_task_get(s->log, j->id, i, &d, &dl, NULL) != 0) continue;
            Llmos__TaskResult *r = llmos__task_result__unpack(NULL, dl, d);
            if (!r) continue;
            j->tasks[i].attempts = (uint8_t)(r->attempts > 255 ? 255 : r->attempts);
            j->tasks[i].crashes = (uint8_t)(r->crashes > 255 ? 255 : r->crashes);
            if (r->state == LLMOS__TASK_STATE__TASK_DONE) {
                j->tasks[i].state = LLMOS__TASK_STATE__TASK_DONE;
                j->ndone++;
            } else if (r->state == LLMOS__TASK_STATE__TASK_RUNNING) {
                /* In flight when the node died: count it, in the log, before
                 * it can run (and perhaps crash the node) again. */
                if (j->tasks[i].crashes < 255) j->tasks[i].crashes++;
                log_task(s, j, i, spec->tasks[i], NULL);
                if (s->cfg.quarantine_after && j->tasks[i].crashes >= s->cfg.quarantine_after && culprit < 0)
                    culprit = (int)i;
            }
            llmos__task_result__free_unpacked(r, NULL);
        }
        if (j->deadline_ms) (void)evt_add(s, j->deadline_ms, j->seq, 0, 0, EV_DEADLINE);
        s->st_recovered++;
        if (culprit >= 0) {
            quarantine(s, j, (uint32_t)culprit, spec);
        } else if (j->ndone == j->ntasks) {
            /* Every task was done but the end was not logged: end it now. */
            job_end(s, j, LLMOS__JOB_STATE__JOB_DONE, NULL);
        } else {
            release_ready(s, j, spec);
        }
        llmos__job__free_unpacked(spec, NULL);
    }
    free(a.v);
    if (!rc) rc = joblog_commit(s->log, err);
    return rc;
}

int sched_start(rt_system_t *sys, const sched_config_t *cfg, llmos_error_t *err) {
    sched_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the scheduler");
    s->cfg = *cfg;
    s->sys = sys;
    s->rate_t0_ms = llmos_wall_ms();
    int rc = joblog_open(cfg->data_dir, &(joblog_opts_t){.nosync = !cfg->sync}, &s->log, err);
    if (!rc) rc = recover(s, err);
    if (rc) {
        sched_free(s);
        return rc;
    }
    if (s->st_recovered) LLMOS_INFO("scheduler: %" PRIu64 " unfinished jobs recovered from the log", s->st_recovered);
    rt_spawn_opts_t o = {.name = "scheduler", .pinned = true, .batch = 1024};
    rt_ref_t ref;
    rc = rt_spawn(sys, &sched_def, s, &o, &ref, err);
    if (rc) {
        sched_free(s);
        return llmos_error_prefix(err, "starting the scheduler: ");
    }
    return 0;
}
