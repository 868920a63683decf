/*
 * system.c — the system object: worker pool and run queue, statistics,
 * start-up and shutdown.
 *
 * The run queue is a mutex-protected FIFO of actors that have messages (an
 * actor is on it at most once: see sched in rt_internal.h).  An idle worker
 * spins briefly on the queue length, then sleeps on a condition variable;
 * a push signals only when no worker is spinning and one is asleep, so a busy
 * system makes no wake-up system calls.
 */
#include "runtime/rt_internal.h"

#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RT_SPIN_ROUNDS 2000

RT_TLS rt_actor_t *rt_tls_actor;
RT_TLS bool rt_tls_worker;

static _Atomic unsigned stat_shard_next;
static RT_TLS unsigned stat_shard = UINT32_MAX;

unsigned rt_thread_shard(void) {
    if (stat_shard == UINT32_MAX) stat_shard = atomic_fetch_add(&stat_shard_next, 1) % RT_STAT_SHARDS;
    return stat_shard;
}

void rt_stat_add(rt_system_t *sys, int which, uint64_t n) {
    atomic_fetch_add_explicit(&sys->stats[rt_thread_shard()].v[which], n, memory_order_relaxed);
}


/* Short spin, then give the CPU away: the other side holds the lock only
 * for a few instructions unless it was preempted. */
static void backoff(int *spins) {
    if (++*spins < 64) rt_cpu_relax();
    else sched_yield();
}

/* A thread that already reads sys may read it again (a foreach callback
 * that sends): it must not wait for a writer that is waiting for it. */
static RT_TLS rt_system_t *rd_sys;
static RT_TLS int rd_depth;

void rt_rdlock(rt_system_t *sys) {
    _Atomic int32_t *mine = &sys->lock.readers[rt_thread_shard()].n;
    if (rd_depth > 0 && rd_sys == sys) {
        atomic_fetch_add(mine, 1);
        rd_depth++;
        return;
    }
    for (;;) {
        atomic_fetch_add(mine, 1); /* seq_cst: ordered before the load of writer */
        if (!atomic_load(&sys->lock.writer)) break;
        atomic_fetch_sub(mine, 1);
        int spins = 0;
        while (atomic_load(&sys->lock.writer)) backoff(&spins);
    }
    if (rd_depth == 0) {
        rd_sys = sys;
        rd_depth = 1;
    }
}

void rt_rdunlock(rt_system_t *sys) {
    if (rd_depth > 0 && rd_sys == sys) rd_depth--;
    atomic_fetch_sub_explicit(&sys->lock.readers[rt_thread_shard()].n, 1, memory_order_release);
}

void rt_wrlock(rt_system_t *sys) {
    pthread_mutex_lock(&sys->lock.wmu);
    atomic_store(&sys->lock.writer, true); /* seq_cst: ordered before the loads of readers */
    for (int i = 0; i < RT_STAT_SHARDS; i++) {
        int spins = 0;
        while (atomic_load(&sys->lock.readers[i].n) != 0) backoff(&spins);
    }
}

void rt_wrunlock(rt_system_t *sys) {
    atomic_store(&sys->lock.writer, false);
    pthread_mutex_unlock(&sys->lock.wmu);
}

void rt_rq_push(rt_system_t *sys, rt_actor_t *a, bool wake) {
    a->rq_next = NULL;
    pthread_mutex_lock(&sys->rq_mu);
    if (sys->rq_tail) sys->rq_tail->rq_next = a;
    else sys->rq_head = a;
    sys->rq_tail = a;
    atomic_store_explicit(&sys->rq_len, atomic_load_explicit(&sys->rq_len, memory_order_relaxed) + 1,
                          memory_order_release);
    if (wake && sys->rq_sleepers > 0 && atomic_load(&sys->rq_spinners) == 0) pthread_cond_signal(&sys->rq_cv);
    pthread_mutex_unlock(&sys->rq_mu);
}

void rt_schedule(rt_system_t *sys, rt_actor_t *a) {
    if (atomic_load(&a->sched) != 0) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&a->sched, &expected, 1)) return;
    if (a->mode == RT_MODE_WORKER) rt_rq_push(sys, a, true);
    else rt_park_wake(&a->park);
}

/* Caller holds rq_mu and the queue is not empty. */
static rt_actor_t *rq_take_locked(rt_system_t *sys) {
    rt_actor_t *a = sys->rq_head;
    sys->rq_head = a->rq_next;
    if (!sys->rq_head) sys->rq_tail = NULL;
    atomic_store_explicit(&sys->rq_len, atomic_load_explicit(&sys->rq_len, memory_order_relaxed) - 1,
                          memory_order_release);
    /* More work and someone asleep: pass the wake-up along. */
    if (sys->rq_head && sys->rq_sleepers > 0 && atomic_load(&sys->rq_spinners) == 0)
        pthread_cond_signal(&sys->rq_cv);
    return a;
}

/* Next actor to run, or NULL when the system stops. */
static rt_actor_t *rq_pop(rt_system_t *sys) {
    atomic_fetch_add(&sys->rq_spinners, 1);
    for (int i = 0; i < RT_SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(&sys->rq_len, memory_order_acquire) > 0) {
            pthread_mutex_lock(&sys->rq_mu);
            if (sys->rq_head) {
                atomic_fetch_sub(&sys->rq_spinners, 1);
                rt_actor_t *a = rq_take_locked(sys);
                pthread_mutex_unlock(&sys->rq_mu);
                return a;
            }
            pthread_mutex_unlock(&sys->rq_mu);
        }
        if (atomic_load_explicit(&sys->stopping, memory_order_relaxed)) break;
        if ((i & 63) == 63) sched_yield();
        else rt_cpu_relax();
    }
    atomic_fetch_sub(&sys->rq_spinners, 1);
    pthread_mutex_lock(&sys->rq_mu);
    while (!sys->rq_head && !sys->rq_stop) {
        sys->rq_sleepers++;
        pthread_cond_wait(&sys->rq_cv, &sys->rq_mu);
        sys->rq_sleepers--;
    }
    rt_actor_t *a = sys->rq_stop ? NULL : rq_take_locked(sys);
    pthread_mutex_unlock(&sys->rq_mu);
    return a;
}

static void *worker_main(void *arg) {
    rt_system_t *sys = arg;
    rt_tls_worker = true;
    for (;;) {
        rt_actor_t *a = rq_pop(sys);
        if (!a) break;
        rt_actor_run_turn(sys, a);
    }
    llmos_log_set_actor(NULL);
    return NULL;
}

static uint64_t random_node_id(void) {
    uint64_t x = llmos_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&x;
    /* splitmix64: spreads the entropy over all bits */
    x = llmos_hash_u64(x + 0x9e3779b97f4a7c15ull);
    return x ? x : 1;
}

int rt_system_new(const rt_system_opts_t *opts, rt_system_t **out, llmos_error_t *err) {
    static const rt_system_opts_t defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    rt_system_t *sys = aligned_alloc(RT_CACHELINE, (sizeof *sys + RT_CACHELINE - 1) / RT_CACHELINE * RT_CACHELINE);
    if (!sys) return llmos_error_set(err, LLMOS_ENOMEM, "rt_system_new: out of memory");
    memset(sys, 0, sizeof *sys);
    rt_table_init(sys);
    sys->node_id = opts->node_id ? opts->node_id : random_node_id();
    if (opts->node_name && opts->node_name[0]) snprintf(sys->node_name, sizeof sys->node_name, "%s", opts->node_name);
    else snprintf(sys->node_name, sizeof sys->node_name, "%016" PRIx64, sys->node_id);
    sys->batch = opts->batch ? opts->batch : RT_DEFAULT_BATCH;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    sys->nworkers = opts->workers ? opts->workers : (uint32_t)(ncpu > 0 ? ncpu : 1);
    atomic_init(&sys->next_id, 1);
    atomic_init(&sys->next_corr, 1);
    pthread_mutex_init(&sys->rq_mu, NULL);
    pthread_cond_init(&sys->rq_cv, NULL);
    pthread_mutex_init(&sys->lock.wmu, NULL);
    pthread_mutex_init(&sys->thr_mu, NULL);
    llmos_log_set_node(sys->node_name);

    sys->workers = calloc(sys->nworkers, sizeof *sys->workers);
    if (!sys->workers) {
        rt_system_destroy(&sys);
        return llmos_error_set(err, LLMOS_ENOMEM, "rt_system_new: out of memory");
    }
    int rc = rt_timers_start(sys, err);
    if (rc) {
        rt_system_destroy(&sys);
        return rc;
    }
    for (uint32_t i = 0; i < sys->nworkers; i++) {
        if (pthread_create(&sys->workers[i], NULL, worker_main, sys) != 0) {
            rt_system_destroy(&sys);
            return llmos_error_set(err, LLMOS_EIO, "rt_system_new: cannot start worker thread %u", i);
        }
        sys->workers_started++;
    }
    *out = sys;
    return 0;
}

void rt_system_destroy(rt_system_t **psys) {
    if (!psys || !*psys) return;
    LLMOS_ASSERT(!rt_tls_worker); /* a worker cannot join itself */
    rt_system_t *sys = *psys;
    atomic_store(&sys->stopping, true);
    /* Timers first: they send. */
    rt_timers_stop(sys);

    pthread_mutex_lock(&sys->rq_mu);
    sys->rq_stop = true;
    pthread_cond_broadcast(&sys->rq_cv);
    pthread_mutex_unlock(&sys->rq_mu);
    for (uint32_t i = 0; i < sys->workers_started; i++) pthread_join(sys->workers[i], NULL);

    /* Pinned threads see `stopping`, run deinit and end. */
    rt_rdlock(sys);
    for (size_t i = 0; i < llmos_map_count(&sys->actors); i++) {
        rt_actor_t *a = *(rt_actor_t **)llmos_map_val_at(&sys->actors, i);
        if (a->mode == RT_MODE_PINNED) rt_park_wake(&a->park);
    }
    rt_rdunlock(sys);
    pthread_mutex_lock(&sys->thr_mu);
    rt_thread_rec_t *recs = sys->threads;
    sys->threads = NULL;
    pthread_mutex_unlock(&sys->thr_mu);
    while (recs) {
        rt_thread_rec_t *next = recs->next;
        pthread_join(recs->t, NULL);
        free(recs);
        recs = next;
    }

    /* Every thread is gone: deinit the worker actors (they may still send to
     * each other, so nothing is freed until all have run), then free. */
    for (size_t i = 0; i < llmos_map_count(&sys->actors); i++) {
        rt_actor_t *a = *(rt_actor_t **)llmos_map_val_at(&sys->actors, i);
        if (a->mode == RT_MODE_WORKER) rt_actor_deinit_at_shutdown(a);
    }
    for (size_t i = 0; i < llmos_map_count(&sys->actors); i++)
        rt_actor_free(*(rt_actor_t **)llmos_map_val_at(&sys->actors, i));
    rt_table_free(sys);
    rt_timers_destroy(sys);
    free(sys->workers);
    pthread_mutex_destroy(&sys->rq_mu);
    pthread_cond_destroy(&sys->rq_cv);
    pthread_mutex_destroy(&sys->lock.wmu);
    pthread_mutex_destroy(&sys->thr_mu);
    free(sys);
    *psys = NULL;
}

uint64_t rt_system_node_id(const rt_system_t *sys) { return sys->node_id; }

bool rt_system_stopping(const rt_system_t *sys) { return atomic_load_explicit(&sys->stopping, memory_order_relaxed); }

void rt_system_stats(rt_system_t *sys, rt_stats_t *out) {
    uint64_t v[RT_ST_N_] = {0};
    for (int s = 0; s < RT_STAT_SHARDS; s++)
        for (int i = 0; i < RT_ST_N_; i++) v[i] += atomic_load_explicit(&sys->stats[s].v[i], memory_order_relaxed);
    *out = (rt_stats_t){
        .sent = v[RT_ST_SENT],
        .received = v[RT_ST_RECEIVED],
        .unknown_actor = v[RT_ST_UNKNOWN_ACTOR],
        .unknown_type = v[RT_ST_UNKNOWN_TYPE],
        .expired = v[RT_ST_EXPIRED],
        .late_replies = v[RT_ST_LATE],
        .no_route = v[RT_ST_NO_ROUTE],
        .overloaded = v[RT_ST_OVERLOADED],
        .failures = v[RT_ST_FAILURES],
        .restarts = v[RT_ST_RESTARTS],
        .actors = atomic_load(&sys->nactors),
    };
}

void rt_system_set_remote(rt_system_t *sys, rt_remote_fn fn, void *user) {
    rt_wrlock(sys);
    sys->remote_fn = fn;
    sys->remote_user = user;
    rt_wrunlock(sys);
}
