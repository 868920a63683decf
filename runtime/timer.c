/*
 * timer.c — one timer thread for the whole system: a binary min-heap on due
 * time (monotonic clock) plus an id -> timer map (runtime/base/map.h) for
 * cancel.  A due timer
 * becomes a message; the message is built under the lock and sent after it
 * is released, so the timer lock never nests inside sends.  Ask time-outs
 * are timers that carry a prepared error reply.
 */
#include "runtime/rt_internal.h"

#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rt_timer {
    uint64_t id;
    uint64_t due_ns;
    uint64_t period_ns;   /* 0 = one-shot */
    size_t idx;           /* position in the heap */
    rt_msg_t *msg;        /* prepared message (ask time-outs), owned; else: */
    rt_ref_t to;          /* to.name owned */
    uint32_t type;
    uint64_t tag;
};

/* ---- heap ---- */

static bool earlier(const rt_timer_t *a, const rt_timer_t *b) {
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->id < b->id);
}

static void heap_set(rt_timers_t *ts, size_t i, rt_timer_t *t) {
    ts->heap[i] = t;
    t->idx = i;
}

static void heap_up(rt_timers_t *ts, size_t i) {
    rt_timer_t *t = ts->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(t, ts->heap[parent])) break;
        heap_set(ts, i, ts->heap[parent]);
        i = parent;
    }
    heap_set(ts, i, t);
}

static void heap_down(rt_timers_t *ts, size_t i) {
    rt_timer_t *t = ts->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        rt_timer_t *bt = t;
        if (l < ts->n && earlier(ts->heap[l], bt)) best = l, bt = ts->heap[l];
        if (l + 1 < ts->n && earlier(ts->heap[l + 1], bt)) best = l + 1, bt = ts->heap[l + 1];
        if (best == i) break;
        heap_set(ts, i, bt);
        i = best;
    }
    heap_set(ts, i, t);
}

static void heap_remove(rt_timers_t *ts, rt_timer_t *t) {
    size_t i = t->idx;
    rt_timer_t *last = ts->heap[--ts->n];
    if (i == ts->n) return;
    heap_set(ts, i, last);
    heap_up(ts, i);
    heap_down(ts, last->idx);
}

/* Adds t to heap and id map; caller holds mu. */
static int timers_add(rt_timers_t *ts, rt_timer_t *t) {
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 64;
        rt_timer_t **h = realloc(ts->heap, cap * sizeof *h);
        if (!h) return LLMOS_ENOMEM;
        ts->heap = h;
        ts->cap = cap;
    }
    rt_timer_t **v;
    int rc = llmos_map_u64_put(&ts->ids, ts->next_id, (void **)&v, NULL);
    if (rc) return rc;
    t->id = ts->next_id++;
    *v = t;
    ts->heap[ts->n] = t;
    t->idx = ts->n++;
    heap_up(ts, t->idx);
    return 0;
}

/* Removes t from heap and id map; caller holds mu. */
static void timers_unlink(rt_timers_t *ts, rt_timer_t *t) {
    llmos_map_u64_remove(&ts->ids, t->id);
    heap_remove(ts, t);
}

static void timer_free(rt_timer_t *t) {
    rt_msg_free(t->msg);
    free((char *)t->to.name);
    free(t);
}

/* ---- the thread ---- */

static void *timer_main(void *arg) {
    rt_system_t *sys = arg;
    rt_timers_t *ts = &sys->timers;
    llmos_log_set_actor("timers");
    pthread_mutex_lock(&ts->mu);
    while (!ts->stop) {
        if (ts->n == 0) {
            pthread_cond_wait(&ts->cv, &ts->mu);
            continue;
        }
        rt_timer_t *t = ts->heap[0];
        uint64_t now = llmos_now_ns();
        if (t->due_ns > now) {
            struct timespec due = {.tv_sec = (time_t)(t->due_ns / 1000000000ull),
                                   .tv_nsec = (long)(t->due_ns % 1000000000ull)};
            pthread_cond_timedwait(&ts->cv, &ts->mu, &due);
            continue;
        }
        rt_msg_t *m;
        uint64_t id = t->id;
        bool periodic = t->period_ns != 0;
        if (t->msg) {
            m = t->msg;
            t->msg = NULL;
            timers_unlink(ts, t);
            timer_free(t);
        } else {
            m = rt_msg_new(&(rt_msg_init_t){.to = t->to, .type = t->type, .data = &t->tag, .len = sizeof t->tag});
            if (periodic) {
                t->due_ns += t->period_ns;
                if (t->due_ns <= now) t->due_ns = now + t->period_ns; /* fell behind: skip, do not burst */
                heap_down(ts, 0);
            } else {
                timers_unlink(ts, t);
                timer_free(t);
            }
        }
        pthread_mutex_unlock(&ts->mu);
        int rc = m ? rt_route(sys, m, 0) : LLMOS_ENOMEM;
        if (rc == LLMOS_ENOMEM) LLMOS_WARN("timer %llu: out of memory, one delivery lost", (unsigned long long)id);
        pthread_mutex_lock(&ts->mu);
        if (rc == LLMOS_ENOTFOUND && periodic) {
            /* Its target is gone: the timer cancels itself. */
            rt_timer_t **v = llmos_map_u64_get(&ts->ids, id);
            if (v) {
                rt_timer_t *gone = *v;
                timers_unlink(ts, gone);
                timer_free(gone);
            }
        }
    }
    pthread_mutex_unlock(&ts->mu);
    return NULL;
}

int rt_timers_start(rt_system_t *sys, llmos_error_t *err) {
    rt_timers_t *ts = &sys->timers;
    ts->next_id = 1;
    llmos_map_init(&ts->ids, LLMOS_MAP_U64, sizeof(rt_timer_t *));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ts->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ts->mu, NULL);
    if (pthread_create(&ts->thread, NULL, timer_main, sys) != 0)
        return llmos_error_set(err, LLMOS_EIO, "rt_system_new: cannot start the timer thread");
    ts->started = true;
    return 0;
}

void rt_timers_stop(rt_system_t *sys) {
    rt_timers_t *ts = &sys->timers;
    if (ts->next_id == 0) return; /* never initialised */
    pthread_mutex_lock(&ts->mu);
    ts->stop = true;
    pthread_cond_signal(&ts->cv);
    pthread_mutex_unlock(&ts->mu);
    if (ts->started) pthread_join(ts->thread, NULL);
    ts->started = false;
    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < ts->n; i++) timer_free(ts->heap[i]);
    free(ts->heap);
    llmos_map_deinit(&ts->ids);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
    pthread_mutex_unlock(&ts->mu);
}

void rt_timers_destroy(rt_system_t *sys) {
    rt_timers_t *ts = &sys->timers;
    if (ts->next_id == 0) return;
    pthread_mutex_destroy(&ts->mu);
    pthread_cond_destroy(&ts->cv);
}

static int timer_insert(rt_system_t *sys, rt_timer_t *t, uint64_t *id) {
    rt_timers_t *ts = &sys->timers;
    pthread_mutex_lock(&ts->mu);
    int rc = ts->stop ? LLMOS_ESTATE : timers_add(ts, t);
    if (rc == 0) {
        if (id) *id = t->id;
        if (t->idx == 0) pthread_cond_signal(&ts->cv); /* new earliest: re-arm the wait */
    }
    pthread_mutex_unlock(&ts->mu);
    return rc;
}

int rt_timer_start_msg(rt_system_t *sys, rt_msg_t *msg, uint32_t delay_ms, uint64_t *id) {
    rt_timer_t *t = calloc(1, sizeof *t);
    if (!t) {
        rt_msg_free(msg);
        return LLMOS_ENOMEM;
    }
    t->msg = msg;
    t->due_ns = llmos_now_ns() + (uint64_t)delay_ms * 1000000u;
    int rc = timer_insert(sys, t, id);
    if (rc) timer_free(t);
    return rc;
}

int rt_timer_start(rt_system_t *sys, rt_ref_t to, uint32_t delay_ms, uint32_t period_ms, uint32_t type,
                   uint64_t tag, uint64_t *id) {
    if (rt_ref_is_none(to)) return LLMOS_EINVAL;
    rt_timer_t *t = calloc(1, sizeof *t);
    char *name = to.name ? strdup(to.name) : NULL;
    if (!t || (to.name && !name)) {
        free(t);
        free(name);
        return LLMOS_ENOMEM;
    }
    t->to = (rt_ref_t){to.node, to.id, name};
    t->type = type;
    t->tag = tag;
    t->period_ns = (uint64_t)period_ms * 1000000u;
    t->due_ns = llmos_now_ns() + (uint64_t)delay_ms * 1000000u;
    int rc = timer_insert(sys, t, id);
    if (rc) timer_free(t);
    return rc;
}

int rt_timer_cancel(rt_system_t *sys, uint64_t id) {
    rt_timers_t *ts = &sys->timers;
    rt_timer_t *t = NULL;
    pthread_mutex_lock(&ts->mu);
    rt_timer_t **v = llmos_map_u64_get(&ts->ids, id);
    if (v) {
        t = *v;
        timers_unlink(ts, t);
    }
    pthread_mutex_unlock(&ts->mu);
    if (!t) return LLMOS_ENOTFOUND;
    timer_free(t);
    return 0;
}
