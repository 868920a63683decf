/*
 * sched_internal.h — the scheduling core's state, shared by its two files:
 * sched_tables.c (config, names, the job tables, targets and tenants, how
 * a job is made and freed) and sched.c (the life of a job: queues, inputs,
 * time, actions, views).  Private to jobs/.
 */
#ifndef LLMOS_JOBS_SCHED_INTERNAL_H
#define LLMOS_JOBS_SCHED_INTERNAL_H

#include "jobs/sched.h"

#include <stdlib.h>

/* ---- small containers ---- */

typedef struct qent { /* a ready task in a target's queue */
    int64_t k1;
    uint64_t seq;
    uint32_t task;
} qent_t;

typedef struct evt { /* a timer event */
    uint64_t due_ms;
    uint64_t seq;
    uint32_t task;
    uint8_t attempt;
    uint8_t kind;
} evt_t;

/* Events fire once; those of jobs that have ended are skipped.  Waiters and
 * running tasks are not events: a sweep checks the jobs that have any (the
 * watch list), so a finished job leaves nothing behind in the heap. */
enum { EV_RETRY = 1, EV_DEADLINE };


#define HEAP_DECL(name, T, less)                                                          \
    typedef struct name {                                                                 \
        T *v;                                                                             \
        size_t n, cap;                                                                    \
    } name##_t;                                                                           \
    static inline int name##_push(name##_t *h, T e) {                                            \
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
    static inline T name##_pop(name##_t *h) {                                                    \
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

/* ---- state ---- */

typedef struct stask {
    uint64_t started_ms;
    uint8_t state;    /* Llmos__TaskState */
    uint8_t attempts;
    uint8_t target;   /* index into s->targets */
    uint8_t kind;     /* Llmos__TaskKind */
    uint8_t crashes;  /* node crashes it was in flight during */
    uint8_t pad8_;
    uint16_t ndeps;   /* tasks it waits for (after + input_from) */
} stask_t;

typedef struct waiter {
    struct waiter *next;
    jobs_waiter_t w;
    uint64_t deadline_ms;
} waiter_t;

typedef struct sjob {
    struct sjob *next_id, *next_seq; /* hash chains */
    struct sjob *wnext, *wprev;      /* the watch list: jobs with waiters or running tasks */
    struct sjob *next_ended;         /* ended, to be freed when the actions are taken */
    bool watched;
    uint64_t seq, submitted_ms, started_ms, deadline_ms;
    int32_t priority;
    uint32_t max_retries;
    uint32_t spec_len;
    uint16_t tenant;
    uint16_t ntasks, ndone, nrunning;
    uint8_t state;                   /* Llmos__JobState */
    waiter_t *waiters;
    uint8_t *spec;                   /* packed Job, inside this allocation */
    stask_t *tasks;                  /* ntasks, inside this allocation */
    uint16_t *deps;                  /* each task's dependencies (indices), inside this allocation */
    uint32_t *dep_off;               /* task i's deps start at deps[dep_off[i]] */
    char id[];
} sjob_t;

typedef struct target {
    char name[64];
    uint32_t inflight, limit;
    bool learn;    /* a model target with no configured cap: ask its capacity */
    uint32_t refs; /* tasks of unfinished jobs naming it; at 0 the entry may be reused */
    uint64_t vt;   /* round robin: virtual time */
    qheap_t q;
} target_t;

typedef struct tenant {
    char *name;
    uint32_t refs;                    /* unfinished jobs; at 0 the entry may be reused */
    uint64_t last[JOBS_TARGETS_MAX];  /* round robin: last tag per target */
} tenant_t;

struct jobs_sched {
    jobs_sched_config_t cfg;
    sjob_t **by_id, **by_seq;
    size_t nbuckets, njobs;
    uint64_t next_seq;
    target_t targets[JOBS_TARGETS_MAX];
    uint32_t ntargets;
    tenant_t *tenants;
    uint32_t ntenants;
    eheap_t events;
    sjob_t *watch_head;
    sjob_t *ended;
    uint64_t last_sweep_ms;
    /* actions: a queue drained by jobs_sched_next_action */
    jobs_action_t *acts;
    size_t nacts, capacts, nextact;
    bool act_oom;
    /* rate of finished jobs */
    double done_rate;
    uint64_t rate_t0_ms, rate_count;
    uint64_t nwaiters, queued_tasks, running_tasks;
    uint64_t st_done, st_failed, st_retried, st_rejected, st_expired, st_cancelled, st_recovered, st_quarantined;
};


/* sched_tables.c */
/* An unfinished job by id (one that ended and waits to be freed is not found). */
sjob_t *sj_by_id(const jobs_sched_t *s, const char *id);
/* Any job in memory by seq, ended ones too. */
sjob_t *sj_by_seq_any(const jobs_sched_t *s, uint64_t seq);
/* An unfinished job by seq. */
sjob_t *sj_alive(const jobs_sched_t *s, uint64_t seq);
void sj_remove(jobs_sched_t *s, sjob_t *j);
/* Drops the job's references to its tenant and targets and frees it. */
void sj_free(jobs_sched_t *s, sjob_t *j);
/* Builds the in-memory job (in the tables, not yet queued); served, when
 * given, refuses targets this node does not serve. */
int sj_make(jobs_sched_t *s, const Llmos__Job *spec, const void *packed, size_t plen, uint64_t seq, const char *tenant,
            uint64_t submitted_ms, bool (*served)(void *, const char *), void *user, sjob_t **out, llmos_error_t *err);

#endif
