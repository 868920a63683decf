/*
 * send.c — moving messages: routing to a local mailbox or the remote router,
 * error replies for asks that cannot be delivered, the ctx helpers (tell,
 * ask, reply) and the blocking rt_call.
 *
 * The local path is the hot one: look the actor up under the table's read
 * lock, push into its mailbox (one atomic exchange), schedule it if it was
 * idle.  It allocates nothing beyond the message itself.
 */
#include "runtime/rt_internal.h"

#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <time.h>

#define RT_CALL_SPINS 200
#include <stdio.h>

static void ref_describe(rt_ref_t r, char *buf, size_t size) {
    if (r.id) snprintf(buf, size, "%016" PRIx64 "/%" PRIu64, r.node, r.id);
    else if (r.name) snprintf(buf, size, "%016" PRIx64 "/'%s'", r.node, r.name);
    else snprintf(buf, size, "(none)");
}

/* An error reply to req: to req->from, same corr, status and message. */
static int error_reply(rt_system_t *sys, const rt_msg_t *req, rt_ref_t from, int status, int how, const char *fmt,
                       va_list ap) {
    char text[LLMOS_ERRMSG_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){
        .to = req->from,
        .from = from,
        .type = RT_MSG_ERROR,
        .flags = RT_MSG_REPLY,
        .corr = req->corr,
        .trace_id = req->trace_id,
        .status = status,
        .error = text,
        .tenant = req->tenant,
    });
    if (!m) return LLMOS_ENOMEM;
    return rt_route(sys, m, how);
}

void rt_bounce(rt_system_t *sys, const rt_msg_t *req, int status, const char *fmt, ...) {
    if (!rt_msg_is_ask(req) || rt_ref_is_none(req->from)) return;
    va_list ap;
    va_start(ap, fmt);
    (void)error_reply(sys, req, req->to, status, 0, fmt, ap);
    va_end(ap);
}

static int route_remote(rt_system_t *sys, rt_msg_t *msg, int how) {
    /* The far side must be able to answer: name this node explicitly. */
    if (msg->from.node == 0 && !rt_ref_is_none(msg->from)) msg->from.node = sys->node_id;
    rt_rdlock(sys);
    rt_remote_fn fn = sys->remote_fn;
    void *user = sys->remote_user;
    rt_rdunlock(sys);
    int rc = fn ? fn(user, msg) : LLMOS_EUNAVAILABLE;
    if (rc == 0) {
        rt_stat_add(sys, RT_ST_SENT, 1);
        return 0;
    }
    rt_stat_add(sys, RT_ST_NO_ROUTE, 1);
    if (how & RT_ROUTE_NOTIFY) {
        if (fn)
            rt_bounce(sys, msg, rc, "no route to node %016" PRIx64 ": %s", msg->to.node, llmos_strerror(rc));
        else
            rt_bounce(sys, msg, rc, "no route to node %016" PRIx64 ": no remote router on node %016" PRIx64,
                      msg->to.node, sys->node_id);
    }
    rt_msg_free(msg);
    return rc;
}

static int route_local(rt_system_t *sys, rt_msg_t *msg, int how) {
    rt_rdlock(sys);
    rt_actor_t *a = rt_table_find_ref(sys, msg->to);
    if (!a) {
        rt_rdunlock(sys);
        /* A reply nobody waits for any more is a late reply (its asker gave
         * up and left); a timeout for a gone asker is nothing at all. */
        if (msg->flags & RT_MSG_REPLY) {
            if (!(msg->flags & RT_MSG_TIMEOUT_)) rt_stat_add(sys, RT_ST_LATE, 1);
        } else {
            rt_stat_add(sys, RT_ST_UNKNOWN_ACTOR, 1);
        }
        if (how & RT_ROUTE_NOTIFY) {
            char who[160];
            ref_describe(msg->to, who, sizeof who);
            rt_bounce(sys, msg, LLMOS_ENOTFOUND, "no actor %s on node %016" PRIx64, who, sys->node_id);
        }
        rt_msg_free(msg);
        return LLMOS_ENOTFOUND;
    }
    uint32_t queued = atomic_fetch_add_explicit(&a->mb.count, 1, memory_order_relaxed);
    if (a->mb_limit) {
        /* Replies and death notices answer something the actor asked for:
         * they are never refused. */
        if (queued >= a->mb_limit && !(msg->flags & RT_MSG_REPLY) && msg->type != RT_MSG_DOWN) {
            atomic_fetch_sub_explicit(&a->mb.count, 1, memory_order_relaxed);
            char label[sizeof a->label];
            snprintf(label, sizeof label, "%s", a->label);
            rt_rdunlock(sys);
            rt_stat_add(sys, RT_ST_OVERLOADED, 1);
            if (how & RT_ROUTE_NOTIFY)
                rt_bounce(sys, msg, LLMOS_EOVERLOADED, "actor %s: mailbox full (%" PRIu32 " messages)", label,
                          queued);
            rt_msg_free(msg);
            return LLMOS_EOVERLOADED;
        }
    }
    rt_mailbox_push(&a->mb, msg);
    rt_schedule(sys, a);
    rt_rdunlock(sys);
    rt_stat_add(sys, RT_ST_SENT, 1);
    if (queued >= RT_BACKLOG_YIELD && !rt_tls_worker) {
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
    return 0;
}

int rt_route(rt_system_t *sys, rt_msg_t *msg, int how) {
    if (rt_node_is_remote(sys, msg->to.node)) return route_remote(sys, msg, how);
    return route_local(sys, msg, how);
}

int rt_send(rt_system_t *sys, rt_ref_t from, rt_ref_t to, uint32_t type, const void *data, size_t len) {
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = to, .from = from, .type = type, .data = data, .len = len});
    if (!m) return LLMOS_ENOMEM;
    return rt_route(sys, m, RT_ROUTE_NOTIFY);
}

int rt_send_msg(rt_system_t *sys, rt_msg_t *msg) {
    if (!msg) return LLMOS_EINVAL;
    return rt_route(sys, msg, RT_ROUTE_NOTIFY);
}

int rt_deliver(rt_system_t *sys, rt_msg_t *msg) {
    if (!msg) return LLMOS_EINVAL;
    return route_local(sys, msg, RT_ROUTE_NOTIFY);
}

/* ---- inside an actor ---- */

static void inherit(const rt_ctx_t *ctx, rt_msg_init_t *in) {
    const rt_msg_t *cur = ctx->cur;
    if (!cur) return;
    in->tenant = cur->tenant;
    in->trace_id = cur->trace_id;
    in->deadline_ms = cur->deadline_ms;
}

int rt_forward(rt_ctx_t *ctx, rt_ref_t to, const rt_msg_t *msg) {
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = to,
                                              .from = msg->from,
                                              .type = msg->type,
                                              .corr = msg->corr,
                                              .deadline_ms = msg->deadline_ms,
                                              .trace_id = msg->trace_id,
                                              .tenant = msg->tenant,
                                              .data = msg->data,
                                              .len = msg->len});
    if (!m) return LLMOS_ENOMEM;
    return rt_route(ctx->sys, m, RT_ROUTE_NOTIFY);
}

int rt_tell(rt_ctx_t *ctx, rt_ref_t to, uint32_t type, const void *data, size_t len) {
    rt_msg_init_t in = {.to = to, .from = rt_ctx_self(ctx), .type = type, .data = data, .len = len};
    inherit(ctx, &in);
    rt_msg_t *m = rt_msg_new(&in);
    if (!m) return LLMOS_ENOMEM;
    return rt_route(ctx->sys, m, RT_ROUTE_NOTIFY);
}

int rt_ask(rt_ctx_t *ctx, rt_ref_t to, uint32_t type, const void *data, size_t len, uint32_t timeout_ms,
           uint64_t *corr_out) {
    rt_system_t *sys = ctx->sys;
    rt_actor_t *self = ctx->a;
    uint64_t corr = RT_CORR_RUNTIME | atomic_fetch_add(&sys->next_corr, 1);
    rt_msg_init_t in = {.to = to, .from = rt_ctx_self(ctx), .type = type, .corr = corr, .data = data, .len = len};
    inherit(ctx, &in);
    if (timeout_ms) {
        uint64_t dl = llmos_wall_ms() + timeout_ms;
        if (!in.deadline_ms || dl < in.deadline_ms) in.deadline_ms = dl;
    }
    rt_msg_t *m = rt_msg_new(&in);
    if (!m) return LLMOS_ENOMEM;
    uint64_t timer = 0;
    if (timeout_ms) {
        char who[160], text[256];
        ref_describe(to, who, sizeof who);
        snprintf(text, sizeof text, "ask (type %" PRIu32 ") to %s timed out after %" PRIu32 " ms", type, who,
                 timeout_ms);
        rt_msg_t *t = rt_msg_new(&(rt_msg_init_t){
            .to = rt_ctx_self(ctx),
            .from = to,
            .type = RT_MSG_ERROR,
            .flags = RT_MSG_REPLY | RT_MSG_TIMEOUT_,
            .corr = corr,
            .trace_id = in.trace_id,
            .status = LLMOS_ETIMEDOUT,
            .error = text,
            .tenant = in.tenant,
        });
        int rc = t ? rt_timer_start_msg(sys, t, timeout_ms, &timer) : LLMOS_ENOMEM;
        if (rc) {
            rt_msg_free(m);
            return rc;
        }
    }
    int rc = rt_pending_put(&self->pending, corr, timer);
    if (rc == 0) {
        rc = rt_route(sys, m, 0);
        if (rc) (void)rt_pending_take(&self->pending, corr, NULL);
    } else {
        rt_msg_free(m);
    }
    if (rc) {
        if (timer) (void)rt_timer_cancel(sys, timer);
        return rc;
    }
    if (corr_out) *corr_out = corr;
    return 0;
}

int rt_answer(rt_system_t *sys, rt_ref_t asker, uint64_t corr, uint32_t type, bool is_reply, int status,
              const char *error, const void *data, size_t len) {
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){
        .to = asker,
        .type = type,
        .flags = is_reply ? RT_MSG_REPLY : 0,
        .corr = corr,
        .status = status,
        .error = error,
        .data = data,
        .len = len,
    });
    return m ? rt_send_msg(sys, m) : LLMOS_ENOMEM;
}

int rt_reply(rt_ctx_t *ctx, const rt_msg_t *req, uint32_t type, const void *data, size_t len) {
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){
        .to = req->from,
        .from = rt_ctx_self(ctx),
        .type = type,
        .flags = RT_MSG_REPLY,
        .corr = req->corr,
        .trace_id = req->trace_id,
        .tenant = req->tenant,
        .data = data,
        .len = len,
    });
    if (!m) return LLMOS_ENOMEM;
    return rt_route(ctx->sys, m, RT_ROUTE_NOTIFY);
}

int rt_reply_error(rt_ctx_t *ctx, const rt_msg_t *req, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = error_reply(ctx->sys, req, rt_ctx_self(ctx), status, RT_ROUTE_NOTIFY, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- blocking call from a thread that is not a worker ---- */

static void caller_remove(rt_system_t *sys, rt_actor_t *c) {
    rt_wrlock(sys);
    rt_table_remove(sys, c);
    rt_wrunlock(sys);
    /* Replies that raced with the time-out are late. */
    for (rt_msg_t *m; (m = rt_mailbox_pop(&c->mb)) != NULL;) {
        if (m->flags & RT_MSG_REPLY) rt_stat_add(sys, RT_ST_LATE, 1);
        rt_msg_free(m);
    }
    rt_actor_free(c);
}

int rt_call(rt_system_t *sys, rt_ref_t to, uint32_t type, const void *data, size_t len, uint32_t timeout_ms,
            rt_msg_t **reply, llmos_error_t *err) {
    *reply = NULL;
    char who[160];
    ref_describe(to, who, sizeof who);
    if (rt_tls_worker)
        return llmos_error_set(err, LLMOS_ESTATE, "rt_call to %s from a worker thread would block it; use rt_ask",
                               who);
    rt_actor_t *c = rt_actor_alloc(sys, RT_MODE_CALLER);
    if (!c) return llmos_error_set(err, LLMOS_ENOMEM, "rt_call to %s: out of memory", who);
    snprintf(c->label, sizeof c->label, "call#%" PRIu64, c->id);
    c->call_corr = RT_CORR_RUNTIME | atomic_fetch_add(&sys->next_corr, 1);
    atomic_store(&c->sched, 1); /* this thread is awake */
    rt_wrlock(sys);
    int rc = rt_table_insert(sys, c);
    rt_wrunlock(sys);
    if (rc) {
        rt_actor_free(c);
        return llmos_error_set(err, rc, "rt_call to %s: out of memory", who);
    }
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){
        .to = to,
        .from = rt_ref_local(c->id),
        .type = type,
        .corr = c->call_corr,
        .deadline_ms = timeout_ms ? llmos_wall_ms() + timeout_ms : 0,
        .data = data,
        .len = len,
    });
    rc = m ? rt_route(sys, m, 0) : LLMOS_ENOMEM;
    if (rc) {
        caller_remove(sys, c);
        return llmos_error_set(err, rc, "rt_call to %s (type %" PRIu32 "): %s", who, type, llmos_strerror(rc));
    }
    uint64_t deadline_ns = timeout_ms ? llmos_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    int spins = 0;
    for (;;) {
        rt_msg_t *r = rt_mailbox_pop(&c->mb);
        if (r) {
            if ((r->flags & RT_MSG_REPLY) && r->corr == c->call_corr) {
                *reply = r;
                break;
            }
            if (r->flags & RT_MSG_REPLY) rt_stat_add(sys, RT_ST_LATE, 1);
            rt_msg_free(r);
            continue;
        }
        /* A local reply usually comes within microseconds: look a few times
         * before paying for a sleep and a wake-up. */
        if (spins < RT_CALL_SPINS) {
            spins++;
            rt_cpu_relax();
            continue;
        }
        spins = 0;
        atomic_store(&c->sched, 0);
        if (rt_mailbox_maybe_nonempty(&c->mb)) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&c->sched, &expected, 1)) continue;
        }
        if (!rt_park_wait(&c->park, deadline_ns)) {
            /* Timed out; a reply may still have slipped in. */
            atomic_store(&c->sched, 1);
            r = rt_mailbox_pop(&c->mb);
            if (r && (r->flags & RT_MSG_REPLY) && r->corr == c->call_corr) {
                *reply = r;
                break;
            }
            if (r) {
                if (r->flags & RT_MSG_REPLY) rt_stat_add(sys, RT_ST_LATE, 1);
                rt_msg_free(r);
            }
            if (rt_mailbox_maybe_nonempty(&c->mb)) continue;
            break;
        }
    }
    caller_remove(sys, c);
    if (!*reply)
        return llmos_error_set(err, LLMOS_ETIMEDOUT, "rt_call to %s (type %" PRIu32 "): no reply within %" PRIu32 " ms",
                               who, type, timeout_ms);
    return 0;
}
