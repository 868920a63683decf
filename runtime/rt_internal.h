/*
 * rt_internal.h — the actor runtime's private structures, shared by its
 * files (msg.c, system.c, actor.c, send.c, timer.c).  Nothing outside
 * runtime/ includes this.
 *
 * Locking, in the order they may nest:
 *   sys->lock (brlock)  the actor table, the name registry, watcher lists,
 *                       and actor liveness.  Senders hold it for reading
 *                       while they push into a mailbox and schedule the
 *                       actor, so an actor struct is never freed under them:
 *                       an actor is removed from the table (write lock)
 *                       before its mailbox is drained and it is freed.
 *   sys->rq_mu          the run queue of actors with messages.
 *   actor->park.mu      the sleep/wake of a pinned actor's or a caller's thread.
 *   timers->mu          the timer heap (never held while sending).
 *
 * Scheduling: actor->sched is 0 (idle) or 1 (scheduled: in the run queue,
 * running, or its thread woken).  Whoever moves it 0 -> 1 must make the actor
 * run; the thread that runs it stores 0 when the mailbox looks empty and then
 * looks again (both sides seq_cst, so a message is never stranded).
 */
#ifndef LLMOS_RUNTIME_RT_INTERNAL_H
#define LLMOS_RUNTIME_RT_INTERNAL_H

#include "runtime/actor.h"
#include "runtime/base/map.h"

#include <pthread.h>
#include <stdatomic.h>

#define RT_CACHELINE 64
#define RT_DEFAULT_BATCH 64
#define RT_DEFAULT_MAX_RESTARTS 3
#define RT_DEFAULT_RESTART_PERIOD_MS 5000
/* Back-pressure: a thread that is not a worker and finds this many messages
 * already queued at the target yields its CPU after sending, so a flood from
 * many threads cannot starve the one consumer (or grow without bound). */
#define RT_BACKLOG_YIELD 4096

/* Thread-locals are only used by executables that link the static library:
 * the initial-exec model makes them plain %fs-relative loads. */
#define RT_TLS _Thread_local __attribute__((tls_model("initial-exec")))

/* Correlation ids made by rt_ask / rt_call have the top bit set (actor.h). */
#define RT_CORR_RUNTIME (1ull << 63)
/* Private message flag: the error reply made by an ask's timeout. */
enum { RT_MSG_TIMEOUT_ = 1u << 31 };
/* Private message type: "your child failed past its restart budget". */
enum { RT_MSG_CHILD_FAILED_ = 250 };

/* ---- mailbox: Vyukov's intrusive MPSC queue over rt_msg_t.next_ ---- */

typedef struct rt_mailbox {
    _Atomic(rt_msg_t *) tail;          /* producers exchange here */
    _Atomic uint32_t count;            /* queued, roughly: producers add one each,
                                          the consumer subtracts per batch (per
                                          message when there is a limit) */
    char pad_[RT_CACHELINE - sizeof(void *) - sizeof(uint32_t)];
    rt_msg_t *head;                    /* consumer only */
    rt_msg_t stub;
} rt_mailbox_t;

void rt_mailbox_init(rt_mailbox_t *mb);
/* Any thread.  Wait-free. */
void rt_mailbox_push(rt_mailbox_t *mb, rt_msg_t *msg);
/* Consumer only.  NULL when empty or when a producer is half-way through a
 * push (rt_mailbox_maybe_nonempty() then says true). */
rt_msg_t *rt_mailbox_pop(rt_mailbox_t *mb);
/* Consumer only: false only when no message is queued or being queued. */
bool rt_mailbox_maybe_nonempty(rt_mailbox_t *mb);
/* The same answer from any thread (reads only the producers' side), valid
 * when the consumer is between pops. */
bool rt_mailbox_maybe_queued(rt_mailbox_t *mb);

/* ---- statistics: sharded counters so senders do not share a cache line ---- */

enum {
    RT_ST_SENT,
    RT_ST_RECEIVED,
    RT_ST_UNKNOWN_ACTOR,
    RT_ST_UNKNOWN_TYPE,
    RT_ST_EXPIRED,
    RT_ST_LATE,
    RT_ST_NO_ROUTE,
    RT_ST_OVERLOADED,
    RT_ST_FAILURES,
    RT_ST_RESTARTS,
    RT_ST_N_
};
#define RT_STAT_SHARDS 16
typedef struct rt_stat_shard {
    _Alignas(RT_CACHELINE) _Atomic uint64_t v[RT_ST_N_];
} rt_stat_shard_t;

void rt_stat_add(rt_system_t *sys, int which, uint64_t n);

static inline void rt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- the table lock: a "big reader" lock ----
 *
 * Every send takes the table lock for reading, from many threads at once, so
 * readers must not share a cache line: each thread counts itself in its own
 * shard (see rt_thread_shard).  A writer raises `writer` and waits for every
 * shard to drain; readers that see `writer` step back and wait.  Writers
 * (spawn, stop, watch, register, death) are rare.  A thread may take the
 * read side again while it holds it; it must never ask for the write side
 * while reading (it would wait for itself). */
typedef struct rt_brlock {
    struct {
        _Alignas(RT_CACHELINE) _Atomic int32_t n;
    } readers[RT_STAT_SHARDS];
    _Alignas(RT_CACHELINE) _Atomic bool writer;
    pthread_mutex_t wmu;  /* one writer at a time */
} rt_brlock_t;

/* This thread's shard for the table lock and the counters. */
unsigned rt_thread_shard(void);
void rt_rdlock(rt_system_t *sys);
void rt_rdunlock(rt_system_t *sys);
void rt_wrlock(rt_system_t *sys);
void rt_wrunlock(rt_system_t *sys);

/* ---- sleeping threads (pinned actors, rt_call callers) ---- */

typedef struct rt_park {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    bool wake;
} rt_park_t;

int rt_park_init(rt_park_t *p);
void rt_park_deinit(rt_park_t *p);
void rt_park_wake(rt_park_t *p);
/* Waits for a wake (consumed) or until deadline_ns (monotonic; 0 = none).
 * Returns false on timeout. */
bool rt_park_wait(rt_park_t *p, uint64_t deadline_ns);

/* ---- pending asks of one actor: corr -> timeout timer id ---- */

typedef struct rt_pending {
    llmos_map_t asks; /* corr -> timer id (uint64_t; 0 = no timer) */
} rt_pending_t;

void rt_pending_init(rt_pending_t *p);
int rt_pending_put(rt_pending_t *p, uint64_t corr, uint64_t timer);
bool rt_pending_take(rt_pending_t *p, uint64_t corr, uint64_t *timer);
/* Frees the asks; p stays usable (empty). */
void rt_pending_free(rt_pending_t *p);

/* ---- actors ---- */

enum { RT_MODE_WORKER, RT_MODE_PINNED, RT_MODE_CALLER };

typedef struct rt_actor rt_actor_t;

struct rt_ctx {
    rt_system_t *sys;
    rt_actor_t *a;
    const rt_msg_t *cur;  /* the message being handled, or NULL */
    bool stop_self;
};

typedef struct rt_idlist {
    uint64_t *ids;
    size_t n, cap;
} rt_idlist_t;

int rt_idlist_add(rt_idlist_t *l, uint64_t id);
bool rt_idlist_remove(rt_idlist_t *l, uint64_t id);

struct rt_actor {
    rt_mailbox_t mb;
    _Alignas(RT_CACHELINE) _Atomic int sched;   /* see the top of this file */
    _Atomic bool stop_req;                      /* stop after the current message */
    uint32_t mb_limit;
    uint32_t batch;
    uint32_t delivered;                         /* handed to receive, not yet in the stats */
    int mode;                                   /* RT_MODE_* */
    uint64_t id;
    rt_actor_t *rq_next;                        /* run-queue link (sys->rq_mu) */
    rt_system_t *sys;

    rt_actor_def_t def;                         /* copied at spawn */
    void *arg;
    void *state;
    bool inited;                                /* init succeeded, deinit owed */
    bool need_init;                             /* worker actors: run init on the next turn */
    bool dead;                                  /* removed from the table (sys->lock) */
    char *name;                                 /* first registered name, owned (sys->lock);
                                                   kept after stop for death notices */
    uint32_t nnames;                            /* registry entries (sys->lock) */
    char label[64];                             /* log label: name or kind#id */

    /* supervision (actor's own thread, except children pruning) */
    uint64_t parent;                            /* 0 = top level */
    uint32_t max_restarts, restart_period_ms;
    uint64_t *restart_ms;                       /* ring of the last restarts' times */
    uint32_t restart_pos;
    rt_idlist_t children;
    rt_idlist_t watchers;                       /* sys->lock */

    rt_pending_t pending;                       /* actor's own thread */
    rt_ctx_t ctx;

    /* pinned actors and callers */
    rt_park_t park;
    uint64_t call_corr;                         /* callers: the corr awaited */
    struct rt_thread_rec *rec;                  /* pinned: its thread's record */
};

/* ---- timers ---- */

typedef struct rt_timer rt_timer_t;
typedef struct rt_timers {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* CLOCK_MONOTONIC */
    rt_timer_t **heap;          /* min-heap on due time */
    size_t n, cap;
    llmos_map_t ids; /* timer id -> rt_timer_t * */
    uint64_t next_id;
    pthread_t thread;
    bool started, stop;
} rt_timers_t;

int rt_timers_start(rt_system_t *sys, llmos_error_t *err);
/* Joins the thread and frees every timer; later starts get LLMOS_ESTATE. */
void rt_timers_stop(rt_system_t *sys);
void rt_timers_destroy(rt_system_t *sys);  /* after the last rt_timer_* call */
/* Sends msg (owned) to its target when delay_ms have passed unless canceled;
 * *id names the timer.  Used for ask timeouts. */
int rt_timer_start_msg(rt_system_t *sys, rt_msg_t *msg, uint32_t delay_ms, uint64_t *id);

/* ---- the system ---- */

typedef struct rt_thread_rec {
    pthread_t t;
    _Atomic bool done;
    struct rt_thread_rec *next;
} rt_thread_rec_t;

struct rt_system {
    uint64_t node_id;
    char node_name[64];
    uint32_t batch;
    uint32_t nworkers;
    pthread_t *workers;
    uint32_t workers_started;
    _Atomic bool stopping;

    /* run queue */
    pthread_mutex_t rq_mu;
    pthread_cond_t rq_cv;
    rt_actor_t *rq_head, *rq_tail;
    _Atomic size_t rq_len;       /* written under rq_mu; read anywhere as a hint */
    int rq_sleepers;             /* rq_mu */
    _Atomic int rq_spinners;
    bool rq_stop;                /* rq_mu */

    /* actor table and registry */
    rt_brlock_t lock;
    llmos_map_t actors;          /* id -> rt_actor_t * */
    llmos_map_t names;           /* registered name -> rt_actor_t * */
    _Atomic uint64_t nactors;    /* live actors (callers not counted) */

    rt_remote_fn remote_fn;      /* sys->lock */
    void *remote_user;

    _Atomic uint64_t next_id;
    _Atomic uint64_t next_corr;

    pthread_mutex_t thr_mu;
    rt_thread_rec_t *threads;    /* pinned threads, joined at destroy */

    rt_timers_t timers;
    rt_stat_shard_t stats[RT_STAT_SHARDS];
};

/* Thread-local: the actor this thread is running (NULL outside receive). */
extern RT_TLS rt_actor_t *rt_tls_actor;
/* Thread-local: true on worker threads (rt_call is refused there). */
extern RT_TLS bool rt_tls_worker;

/* Makes `a` run: pushes it on the run queue or wakes its thread, if this
 * call moves sched 0 -> 1.  Caller holds sys->lock (any mode). */
void rt_schedule(rt_system_t *sys, rt_actor_t *a);
void rt_rq_push(rt_system_t *sys, rt_actor_t *a, bool wake);

/* Table (caller holds sys->lock as noted). */
void rt_table_init(rt_system_t *sys);                               /* at rt_system_new */
rt_actor_t *rt_table_find(rt_system_t *sys, uint64_t id);           /* read */
rt_actor_t *rt_table_find_ref(rt_system_t *sys, rt_ref_t ref);      /* read; by id or name */
int rt_table_insert(rt_system_t *sys, rt_actor_t *a);               /* write */
void rt_table_remove(rt_system_t *sys, rt_actor_t *a);              /* write; also its names */
int rt_names_add(rt_system_t *sys, const char *name, rt_actor_t *a);/* write */
void rt_names_remove_actor(rt_system_t *sys, rt_actor_t *a);       /* write */
void rt_table_free(rt_system_t *sys);

/* Routing.  how: RT_ROUTE_NOTIFY answers an undeliverable ask with an error
 * reply (else the caller is told by the return value alone). Takes msg. */
enum { RT_ROUTE_NOTIFY = 1 };
int rt_route(rt_system_t *sys, rt_msg_t *msg, int how);
/* Answers the ask req (not freed) with an error reply; no-op for non-asks. */
void rt_bounce(rt_system_t *sys, const rt_msg_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline bool rt_msg_is_ask(const rt_msg_t *m) { return m->corr != 0 && !(m->flags & RT_MSG_REPLY); }
static inline bool rt_node_is_remote(const rt_system_t *sys, uint64_t node) {
    return node != 0 && node != sys->node_id;
}

/* Actor lifecycle (actor.c). */
void rt_actor_run_turn(rt_system_t *sys, rt_actor_t *a);   /* worker threads */
void *rt_pinned_main(void *arg);
void rt_actor_free(rt_actor_t *a);                           /* drops queued messages too */
rt_actor_t *rt_actor_alloc(rt_system_t *sys, int mode);
void rt_actor_deinit_at_shutdown(rt_actor_t *a);

#endif
