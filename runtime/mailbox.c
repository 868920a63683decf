/*
 * mailbox.c — the mailbox (Vyukov's intrusive multi-producer single-consumer
 * queue, linked through rt_msg_t.next_, with a stub node so push is one
 * atomic exchange) and the park (mutex + condition variable) on which pinned
 * actors and rt_call callers sleep.  Nothing here allocates.
 */
#include "runtime/rt_internal.h"

#include "runtime/base/clock.h"

#include <errno.h>
#include <time.h>

/* next_ is a plain pointer in the public struct; GCC's __atomic builtins give
 * it release/acquire semantics without changing the public type. */
static inline void next_store(rt_msg_t *m, rt_msg_t *next) { __atomic_store_n(&m->next_, next, __ATOMIC_RELEASE); }
static inline rt_msg_t *next_load(rt_msg_t *m) { return __atomic_load_n(&m->next_, __ATOMIC_ACQUIRE); }

void rt_mailbox_init(rt_mailbox_t *mb) {
    mb->stub.next_ = NULL;
    atomic_init(&mb->tail, &mb->stub);
    mb->head = &mb->stub;
}

void rt_mailbox_push(rt_mailbox_t *mb, rt_msg_t *msg) {
    msg->next_ = NULL;
    rt_msg_t *prev = atomic_exchange(&mb->tail, msg);
    /* Between the exchange and this store the queue is "being pushed": the
     * consumer sees it as non-empty but cannot pop yet. */
    next_store(prev, msg);
}

rt_msg_t *rt_mailbox_pop(rt_mailbox_t *mb) {
    rt_msg_t *head = mb->head;
    rt_msg_t *next = next_load(head);
    if (head == &mb->stub) {
        if (!next) return NULL;
        mb->head = next;
        head = next;
        next = next_load(next);
    }
    if (next) {
        mb->head = next;
        __builtin_prefetch(next); /* the next pop reads its link: start the transfer now */
        return head;
    }
    if (head != atomic_load(&mb->tail)) return NULL; /* a push is in progress */
    rt_mailbox_push(mb, &mb->stub);
    next = next_load(head);
    if (next) {
        mb->head = next;
        return head;
    }
    return NULL;
}

bool rt_mailbox_maybe_nonempty(rt_mailbox_t *mb) {
    return mb->head != &mb->stub || atomic_load(&mb->tail) != &mb->stub;
}

/* Between pops, head != stub implies tail != stub (only pop pushes the stub,
 * and it then moves head past the node before it), so tail alone tells. */
bool rt_mailbox_maybe_queued(rt_mailbox_t *mb) { return atomic_load(&mb->tail) != &mb->stub; }

int rt_park_init(rt_park_t *p) {
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return LLMOS_EIO;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) return LLMOS_EIO;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        pthread_cond_destroy(&p->cv);
        return LLMOS_EIO;
    }
    p->wake = false;
    return 0;
}

void rt_park_deinit(rt_park_t *p) {
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

void rt_park_wake(rt_park_t *p) {
    pthread_mutex_lock(&p->mu);
    p->wake = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool rt_park_wait(rt_park_t *p, uint64_t deadline_ns) {
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
                          .tv_nsec = (long)(deadline_ns % 1000000000ull)};
    bool woke = true;
    pthread_mutex_lock(&p->mu);
    while (!p->wake) {
        if (deadline_ns == 0) {
            pthread_cond_wait(&p->cv, &p->mu);
        } else if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
            woke = p->wake;
            break;
        }
    }
    p->wake = false;
    pthread_mutex_unlock(&p->mu);
    return woke;
}
