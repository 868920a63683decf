/*
 * actor.c — an actor's life: spawn, the turn a worker (or a pinned thread)
 * gives it, failure and supervised restart, stop and death, watches.
 *
 * Everything that touches an actor's state (init, receive, deinit, its
 * pending asks, its children list) runs on the one thread that currently
 * owns the actor (see sched in rt_internal.h), so none of it is locked.
 * Death happens on that thread too: the actor leaves the table under the
 * write lock (no sender can reach it after that), runs deinit, answers the
 * asks left in its mailbox, tells its watchers and, for a supervised child
 * past its budget, its parent; then it is freed.
 */
#include "runtime/rt_internal.h"

#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static RT_TLS uint64_t tls_label_id; /* actor whose label this thread's log shows */

static void enter(rt_actor_t *a) {
    rt_tls_actor = a;
    if (tls_label_id != a->id) {
        llmos_log_set_actor(a->label);
        tls_label_id = a->id;
    }
}

static void leave(void) { rt_tls_actor = NULL; }

rt_actor_t *rt_actor_alloc(rt_system_t *sys, int mode) {
    size_t size = (sizeof(rt_actor_t) + RT_CACHELINE - 1) / RT_CACHELINE * RT_CACHELINE;
    rt_actor_t *a = aligned_alloc(RT_CACHELINE, size);
    if (!a) return NULL;
    memset(a, 0, sizeof *a);
    rt_mailbox_init(&a->mb);
    rt_pending_init(&a->pending);
    a->mode = mode;
    a->sys = sys;
    a->id = atomic_fetch_add(&sys->next_id, 1);
    a->batch = sys->batch;
    a->ctx.sys = sys;
    a->ctx.a = a;
    if (mode != RT_MODE_WORKER && rt_park_init(&a->park) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

void rt_actor_free(rt_actor_t *a) {
    for (rt_msg_t *m; (m = rt_mailbox_pop(&a->mb)) != NULL;) rt_msg_free(m);
    if (a->mode != RT_MODE_WORKER) rt_park_deinit(&a->park);
    free(a->name);
    free(a->restart_ms);
    free(a->children.ids);
    free(a->watchers.ids);
    rt_pending_free(&a->pending);
    free(a);
}

void rt_actor_deinit_at_shutdown(rt_actor_t *a) {
    if (!a->inited) return;
    a->inited = false;
    if (!a->def.deinit) return;
    enter(a);
    a->ctx.cur = NULL;
    a->def.deinit(&a->ctx, a->state);
    leave();
}

/* The received counter is settled per batch too. */
static void flush_delivered(rt_actor_t *a) {
    if (a->delivered) rt_stat_add(a->sys, RT_ST_RECEIVED, a->delivered);
    a->delivered = 0;
}

/* ---- failure, restart, death ---- */

/* Erlang's restart intensity: at most max_restarts restarts within the
 * period; records this one when allowed. */
static bool restart_allowed(rt_actor_t *a) {
    if (!a->parent || atomic_load(&a->sys->stopping)) return false;
    uint64_t now = llmos_now_ns() / 1000000u + 1; /* +1: 0 marks an unused slot */
    uint32_t recent = 0;
    for (uint32_t i = 0; i < a->max_restarts; i++)
        if (a->restart_ms[i] && now - a->restart_ms[i] < a->restart_period_ms) recent++;
    if (recent >= a->max_restarts) return false;
    a->restart_ms[a->restart_pos] = now;
    a->restart_pos = (a->restart_pos + 1) % a->max_restarts;
    return true;
}

static void stop_children(rt_actor_t *a) {
    for (size_t i = 0; i < a->children.n; i++) (void)rt_stop(a->sys, rt_ref_local(a->children.ids[i]));
    a->children.n = 0;
}

/* Forgets the asks in flight: their replies will be dropped as late. */
static void forget_pending(rt_actor_t *a) {
    for (size_t i = 0; i < llmos_map_count(&a->pending.asks); i++) {
        uint64_t timer = *(uint64_t *)llmos_map_val_at(&a->pending.asks, i);
        if (timer) (void)rt_timer_cancel(a->sys, timer);
    }
    rt_pending_free(&a->pending);
}

/* Drops the state: deinit, children, pending asks. */
static void actor_reset(rt_actor_t *a) {
    a->ctx.cur = NULL;
    if (a->inited && a->def.deinit) a->def.deinit(&a->ctx, a->state);
    a->inited = false;
    a->state = NULL;
    stop_children(a);
    forget_pending(a);
}

static void send_notice(rt_system_t *sys, uint64_t to, rt_actor_t *dead, uint32_t type, int reason) {
    char why[160];
    if (reason) snprintf(why, sizeof why, "actor %s failed: %s", dead->label, llmos_strerror(reason));
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){
        .to = rt_ref_local(to),
        .from = {0, dead->id, dead->name},
        .type = type,
        .status = reason,
        .error = reason ? why : NULL,
    });
    if (m) (void)rt_route(sys, m, 0);
}

/* The actor ends with reason (0 = stopped).  Frees a. */
static void actor_die(rt_actor_t *a, int reason) {
    rt_system_t *sys = a->sys;
    flush_delivered(a);
    rt_wrlock(sys);
    rt_table_remove(sys, a);
    rt_wrunlock(sys);
    atomic_fetch_sub(&sys->nactors, 1);
    actor_reset(a);
    /* No sender can reach the mailbox any more: answer what is left. */
    for (rt_msg_t *m; (m = rt_mailbox_pop(&a->mb)) != NULL;) {
        if (rt_msg_is_ask(m))
            rt_bounce(sys, m, LLMOS_EUNAVAILABLE, "actor %s %s before handling the message", a->label,
                      reason ? "failed" : "stopped");
        else if (!(m->flags & RT_MSG_REPLY))
            rt_stat_add(sys, RT_ST_UNKNOWN_ACTOR, 1);
        rt_msg_free(m);
    }
    /* watchers cannot change now: rt_watch finds no actor and answers at once */
    for (size_t i = 0; i < a->watchers.n; i++) send_notice(sys, a->watchers.ids[i], a, RT_MSG_DOWN, reason);
    if (a->parent && reason) send_notice(sys, a->parent, a, RT_MSG_CHILD_FAILED_, reason);
    if (reason == 0) LLMOS_DEBUG("stopped");
    leave();
    rt_actor_free(a);
}

/* Runs init until it succeeds or the restart budget is spent.  Returns false
 * when the actor died (and was freed). */
static bool actor_start(rt_actor_t *a) {
    for (;;) {
        a->ctx.cur = NULL;
        a->ctx.stop_self = false;
        a->state = NULL;
        int rc = a->def.init ? a->def.init(&a->ctx, a->arg, &a->state) : 0;
        if (a->ctx.stop_self) atomic_store(&a->stop_req, true);
        if (rc == 0) {
            a->inited = true;
            return true;
        }
        rt_stat_add(a->sys, RT_ST_FAILURES, 1);
        stop_children(a); /* those a failed init may have started */
        if (!restart_allowed(a)) {
            LLMOS_ERROR("init failed: %s (%s); the actor ends", llmos_strerror(rc), llmos_errname(rc));
            actor_die(a, rc);
            return false;
        }
        LLMOS_WARN("init failed: %s; restarting", llmos_strerror(rc));
        rt_stat_add(a->sys, RT_ST_RESTARTS, 1);
    }
}

/* receive failed (or a child escalated).  Returns false when a died. */
static bool actor_fail(rt_actor_t *a, int reason) {
    rt_stat_add(a->sys, RT_ST_FAILURES, 1);
    if (restart_allowed(a)) {
        LLMOS_WARN("failed: %s (%s); restarting", llmos_strerror(reason), llmos_errname(reason));
        rt_stat_add(a->sys, RT_ST_RESTARTS, 1);
        actor_reset(a);
        return actor_start(a);
    }
    if (a->parent)
        LLMOS_ERROR("failed: %s (%s); past its restart budget (%u in %u ms), escalating to its parent",
                    llmos_strerror(reason), llmos_errname(reason), a->max_restarts, a->restart_period_ms);
    else
        LLMOS_ERROR("failed: %s (%s); the actor ends", llmos_strerror(reason), llmos_errname(reason));
    actor_die(a, reason);
    return false;
}

/* Handles one dequeued message (owned).  Returns false when a died. */
static bool actor_handle(rt_actor_t *a, rt_msg_t *m) {
    rt_system_t *sys = a->sys;
    if (a->mb_limit) atomic_fetch_sub_explicit(&a->mb.count, 1, memory_order_relaxed);
    if (m->deadline_ms && llmos_wall_ms() > m->deadline_ms) {
        rt_stat_add(sys, RT_ST_EXPIRED, 1);
        rt_bounce(sys, m, LLMOS_ETIMEDOUT, "deadline passed before actor %s could handle message type %" PRIu32,
                  a->label, m->type);
        rt_msg_free(m);
        return true;
    }
    if ((m->flags & RT_MSG_REPLY) && m->corr) {
        uint64_t timer = 0;
        if (rt_pending_take(&a->pending, m->corr, &timer)) {
            if (timer && !(m->flags & RT_MSG_TIMEOUT_)) (void)rt_timer_cancel(sys, timer);
        } else if (m->corr & RT_CORR_RUNTIME) {
            /* the answer to an rt_ask that already timed out (or was forgotten by a restart) */
            if (!(m->flags & RT_MSG_TIMEOUT_)) rt_stat_add(sys, RT_ST_LATE, 1);
            rt_msg_free(m);
            return true;
        }
        /* else: the reply to an ask made by hand (rt_send_msg); delivered as is */
        m->flags &= ~(uint32_t)RT_MSG_TIMEOUT_;
    }
    if (!(m->flags & RT_MSG_REPLY) && !rt_node_is_remote(sys, m->from.node)) {
        if (m->type == RT_MSG_CHILD_FAILED_) {
            int reason = m->status ? m->status : LLMOS_EINTERNAL;
            LLMOS_ERROR("child %s failed past its restart budget: %s", m->from.name ? m->from.name : "(anonymous)",
                        llmos_strerror(reason));
            rt_msg_free(m);
            return actor_fail(a, reason);
        }
    }
    if (m->type == RT_MSG_STOP && !(m->flags & RT_MSG_REPLY)) {
        atomic_store(&a->stop_req, true);
        if (rt_msg_is_ask(m)) {
            a->ctx.cur = NULL;
            (void)rt_reply(&a->ctx, m, RT_MSG_STOP, NULL, 0);
        }
        rt_msg_free(m);
        return true;
    }
    a->ctx.cur = m;
    a->ctx.stop_self = false;
    a->delivered++;
    int rc = a->def.receive(&a->ctx, a->state, m);
    a->ctx.cur = NULL;
    if (a->ctx.stop_self) atomic_store(&a->stop_req, true);
    if (rc == 0) {
        rt_msg_free(m);
        return true;
    }
    if (rc == LLMOS_EUNKNOWNTYPE) {
        rt_stat_add(sys, RT_ST_UNKNOWN_TYPE, 1);
        rt_bounce(sys, m, LLMOS_EUNKNOWNTYPE, "actor %s does not handle message type %" PRIu32, a->label, m->type);
        rt_msg_free(m);
        return true;
    }
    rt_bounce(sys, m, rc, "actor %s failed handling message type %" PRIu32 ": %s", a->label, m->type,
              llmos_strerror(rc));
    rt_msg_free(m);
    return actor_fail(a, rc);
}

/* ---- running ---- */

/* The mailbox count of an actor without a limit is settled once per batch:
 * the consumer touches the producers' cache line rarely. */
static inline void consumed(rt_actor_t *a, uint32_t n) {
    if (!a->mb_limit && n) atomic_fetch_sub_explicit(&a->mb.count, n, memory_order_relaxed);
    flush_delivered(a);
}

void rt_actor_run_turn(rt_system_t *sys, rt_actor_t *a) {
    enter(a);
    if (a->need_init) {
        a->need_init = false;
        if (!actor_start(a)) return;
    }
    uint32_t n = 0;
    for (;;) {
        if (atomic_load_explicit(&a->stop_req, memory_order_relaxed)) {
            actor_die(a, 0);
            return;
        }
        if (n == a->batch) {
            consumed(a, n);
            /* Yield the worker if anyone else is waiting for one. */
            if (atomic_load_explicit(&sys->rq_len, memory_order_acquire) > 0 ||
                atomic_load_explicit(&sys->stopping, memory_order_relaxed)) {
                rt_rq_push(sys, a, false);
                leave();
                return;
            }
            n = 0;
        }
        rt_msg_t *m = rt_mailbox_pop(&a->mb);
        if (!m) break;
        n++;
        if (!actor_handle(a, m)) return;
    }
    consumed(a, n);
    /* Once sched is 0 another worker may take the actor, run it to its death
     * and free it: the read lock, taken before, keeps it alive (death starts
     * with the write lock) while this thread looks at it one last time. */
    rt_rdlock(sys);
    atomic_store(&a->sched, 0);
    if (rt_mailbox_maybe_queued(&a->mb) || atomic_load(&a->stop_req)) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&a->sched, &expected, 1)) rt_rq_push(sys, a, false);
    }
    rt_rdunlock(sys);
    leave();
}

void *rt_pinned_main(void *arg) {
    rt_actor_t *a = arg;
    rt_system_t *sys = a->sys;
    rt_thread_rec_t *rec = a->rec;
    enter(a);
    if (!actor_start(a)) goto out;
    for (;;) {
        if (atomic_load(&sys->stopping)) {
            rt_actor_deinit_at_shutdown(a); /* the actor is freed by rt_system_destroy */
            break;
        }
        uint32_t n = 0;
        rt_msg_t *m = NULL;
        while (n < a->batch && !atomic_load_explicit(&a->stop_req, memory_order_relaxed) &&
               (m = rt_mailbox_pop(&a->mb)) != NULL) {
            n++;
            if (!actor_handle(a, m)) goto out;
        }
        consumed(a, n);
        if (atomic_load(&a->stop_req)) {
            actor_die(a, 0);
            goto out;
        }
        if (n == a->batch) continue;
        if (a->def.idle) {
            a->ctx.cur = NULL;
            a->ctx.stop_self = false;
            bool more = a->def.idle(&a->ctx, a->state);
            if (a->ctx.stop_self) atomic_store(&a->stop_req, true);
            if (more || a->ctx.stop_self) continue;
        }
        atomic_store(&a->sched, 0);
        if (rt_mailbox_maybe_nonempty(&a->mb) || atomic_load(&a->stop_req) || atomic_load(&sys->stopping)) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&a->sched, &expected, 1)) continue;
        }
        rt_park_wait(&a->park, 0);
    }
out:
    leave();
    llmos_log_set_actor(NULL);
    atomic_store(&rec->done, true);
    return NULL;
}

/* ---- spawn, stop ---- */

static void set_label(rt_actor_t *a, const char *name) {
    if (name) snprintf(a->label, sizeof a->label, "%s", name);
    else snprintf(a->label, sizeof a->label, "%s#%" PRIu64, a->def.kind ? a->def.kind : "actor", a->id);
}

/* Joins the threads of pinned actors that have ended. */
static void reap_threads(rt_system_t *sys) {
    pthread_mutex_lock(&sys->thr_mu);
    for (rt_thread_rec_t **p = &sys->threads; *p;) {
        rt_thread_rec_t *r = *p;
        if (atomic_load(&r->done)) {
            *p = r->next;
            pthread_join(r->t, NULL);
            free(r);
        } else {
            p = &r->next;
        }
    }
    pthread_mutex_unlock(&sys->thr_mu);
}

static int spawn_actor(rt_system_t *sys, const rt_actor_def_t *def, void *arg, const rt_spawn_opts_t *opts,
                       uint64_t parent, rt_ref_t *out, llmos_error_t *err) {
    static const rt_spawn_opts_t no_opts = {0};
    if (!opts) opts = &no_opts;
    if (!def || !def->receive) return llmos_error_set(err, LLMOS_EINVAL, "spawn: the actor definition has no receive");
    if (atomic_load(&sys->stopping)) return llmos_error_set(err, LLMOS_ESTATE, "spawn: the system is shutting down");
    const char *name = opts->name && opts->name[0] ? opts->name : NULL;
    rt_actor_t *a = rt_actor_alloc(sys, opts->pinned ? RT_MODE_PINNED : RT_MODE_WORKER);
    if (!a) return llmos_error_set(err, LLMOS_ENOMEM, "spawn %s: out of memory", name ? name : def->kind);
    a->def = *def;
    a->arg = arg;
    if (opts->batch) a->batch = opts->batch;
    a->mb_limit = opts->mailbox_limit;
    a->parent = parent;
    if (parent) {
        a->max_restarts = opts->max_restarts ? opts->max_restarts : RT_DEFAULT_MAX_RESTARTS;
        a->restart_period_ms = opts->restart_period_ms ? opts->restart_period_ms : RT_DEFAULT_RESTART_PERIOD_MS;
        a->restart_ms = calloc(a->max_restarts, sizeof *a->restart_ms);
    }
    rt_thread_rec_t *rec = opts->pinned ? calloc(1, sizeof *rec) : NULL;
    if ((parent && !a->restart_ms) || (opts->pinned && !rec)) {
        free(rec);
        rt_actor_free(a);
        return llmos_error_set(err, LLMOS_ENOMEM, "spawn %s: out of memory", name ? name : def->kind);
    }
    set_label(a, name);
    a->rec = rec;
    atomic_store(&a->sched, 1); /* it is about to run: its init turn or its thread */
    a->need_init = !opts->pinned;
    /* Once in the run queue a worker actor may run, fail and be freed before
     * this function returns: read what is needed now. */
    uint64_t id = a->id;

    rt_wrlock(sys);
    int rc = rt_table_insert(sys, a);
    if (rc == 0 && name) {
        rc = rt_names_add(sys, name, a);
        if (rc) rt_table_remove(sys, a);
    }
    if (rc == 0) {
        atomic_fetch_add(&sys->nactors, 1);
        if (!opts->pinned) rt_rq_push(sys, a, true);
    }
    rt_wrunlock(sys);
    if (rc) {
        free(rec);
        rt_actor_free(a);
        if (rc == LLMOS_EEXIST) return llmos_error_set(err, rc, "spawn: the name '%s' is taken", name);
        return llmos_error_set(err, rc, "spawn %s: out of memory", name ? name : def->kind);
    }
    if (opts->pinned) {
        reap_threads(sys);
        if (pthread_create(&rec->t, NULL, rt_pinned_main, a) != 0) {
            rt_wrlock(sys);
            rt_table_remove(sys, a);
            rt_wrunlock(sys);
            atomic_fetch_sub(&sys->nactors, 1);
            for (rt_msg_t *m; (m = rt_mailbox_pop(&a->mb)) != NULL;) {
                rt_bounce(sys, m, LLMOS_EUNAVAILABLE, "actor %s could not start", a->label);
                rt_msg_free(m);
            }
            free(rec);
            rt_actor_free(a);
            return llmos_error_set(err, LLMOS_EIO, "spawn %s: cannot create its thread", name ? name : def->kind);
        }
        pthread_mutex_lock(&sys->thr_mu);
        rec->next = sys->threads;
        sys->threads = rec;
        pthread_mutex_unlock(&sys->thr_mu);
    }
    if (out) *out = rt_ref_local(id);
    return 0;
}

int rt_spawn(rt_system_t *sys, const rt_actor_def_t *def, void *arg, const rt_spawn_opts_t *opts, rt_ref_t *out,
             llmos_error_t *err) {
    return spawn_actor(sys, def, arg, opts, 0, out, err);
}

int rt_spawn_child(rt_ctx_t *ctx, const rt_actor_def_t *def, void *arg, const rt_spawn_opts_t *opts, rt_ref_t *out,
                   llmos_error_t *err) {
    rt_actor_t *self = ctx->a;
    rt_system_t *sys = ctx->sys;
    if (self->children.n == self->children.cap && self->children.n > 0) {
        /* Forget the children that have ended before the list grows. */
        rt_rdlock(sys);
        size_t k = 0;
        for (size_t i = 0; i < self->children.n; i++)
            if (rt_table_find(sys, self->children.ids[i])) self->children.ids[k++] = self->children.ids[i];
        self->children.n = k;
        rt_rdunlock(sys);
    }
    rt_ref_t ref;
    int rc = spawn_actor(sys, def, arg, opts, self->id, &ref, err);
    if (rc) return rc;
    if (rt_idlist_add(&self->children, ref.id) != 0) {
        (void)rt_stop(sys, ref);
        return llmos_error_set(err, LLMOS_ENOMEM, "spawn_child: out of memory");
    }
    if (out) *out = ref;
    return 0;
}

int rt_stop(rt_system_t *sys, rt_ref_t ref) {
    if (rt_node_is_remote(sys, ref.node)) return rt_send(sys, RT_REF_NONE, ref, RT_MSG_STOP, NULL, 0);
    rt_wrlock(sys);
    rt_actor_t *a = rt_table_find_ref(sys, ref);
    int rc = LLMOS_ENOTFOUND;
    if (a && a->mode != RT_MODE_CALLER) {
        /* The name is free at once, so a restarted parent can reuse it. */
        rt_names_remove_actor(sys, a);
        atomic_store(&a->stop_req, true);
        rt_schedule(sys, a);
        rc = 0;
    }
    rt_wrunlock(sys);
    return rc;
}

/* ---- watches ---- */

int rt_watch(rt_ctx_t *ctx, rt_ref_t target) {
    rt_system_t *sys = ctx->sys;
    if (rt_node_is_remote(sys, target.node)) return LLMOS_EUNSUPPORTED;
    rt_wrlock(sys);
    rt_actor_t *t = rt_table_find_ref(sys, target);
    int rc = 0;
    if (t && t->mode != RT_MODE_CALLER) rc = rt_idlist_add(&t->watchers, ctx->a->id);
    rt_wrunlock(sys);
    if (t && t->mode != RT_MODE_CALLER) return rc;
    /* Already dead (or never was): the notice comes at once. */
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){
        .to = rt_ref_local(ctx->a->id),
        .from = target,
        .type = RT_MSG_DOWN,
        .status = LLMOS_ENOTFOUND,
        .error = "no such actor",
    });
    if (!m) return LLMOS_ENOMEM;
    return rt_route(sys, m, 0);
}

int rt_unwatch(rt_ctx_t *ctx, rt_ref_t target) {
    rt_system_t *sys = ctx->sys;
    if (rt_node_is_remote(sys, target.node)) return LLMOS_EUNSUPPORTED;
    rt_wrlock(sys);
    rt_actor_t *t = rt_table_find_ref(sys, target);
    bool found = t && rt_idlist_remove(&t->watchers, ctx->a->id);
    rt_wrunlock(sys);
    return found ? 0 : LLMOS_ENOTFOUND;
}

/* ---- ctx ---- */

rt_ref_t rt_ctx_self(const rt_ctx_t *ctx) { return rt_ref_local(ctx->a->id); }
rt_system_t *rt_ctx_system(const rt_ctx_t *ctx) { return ctx->sys; }
void rt_ctx_stop_self(rt_ctx_t *ctx) { ctx->stop_self = true; }
