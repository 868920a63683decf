/*
 * Unit tests of the actor runtime (runtime/actor.h) with real worker
 * threads: ask/reply and its time-outs, rt_call, watches and death notices,
 * stop with pending asks, supervision (restart budget and escalation),
 * timers, fairness, exclusivity under concurrent senders, pinned actors,
 * mailbox limits, deadlines, the registry and the remote-router hook.
 *
 * Every wait is bounded (WAIT_MS); a test that would hang fails instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runtime/actor.h"
#include "runtime/base/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

/* ---- probe: what the test actors saw, for the test thread to wait on ---- */

typedef struct record {
    uint64_t self;
    uint32_t type, flags;
    int32_t status;
    uint64_t corr, from_id, from_node, word, trace_id, deadline_ms;
    char error[128];
    char tenant[32];
} record_t;

typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    record_t rec[4096];
    size_t n;
} probe_t;

static probe_t *probe_new(void) {
    probe_t *p = calloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

static void probe_free(probe_t *p) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

static void probe_add(probe_t *p, uint64_t self, const rt_msg_t *m) {
    pthread_mutex_lock(&p->mu);
    if (p->n < sizeof p->rec / sizeof p->rec[0]) {
        record_t *r = &p->rec[p->n++];
        memset(r, 0, sizeof *r);
        r->self = self;
        r->type = m->type;
        r->flags = m->flags;
        r->status = m->status;
        r->corr = m->corr;
        r->from_id = m->from.id;
        r->from_node = m->from.node;
        if (m->len >= 8) memcpy(&r->word, m->data, 8);
        if (m->error) snprintf(r->error, sizeof r->error, "%s", m->error);
        if (m->tenant) snprintf(r->tenant, sizeof r->tenant, "%s", m->tenant);
        r->trace_id = m->trace_id;
        r->deadline_ms = m->deadline_ms;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Number of records of `type` seen by actor `self` (0 = any actor). */
static size_t probe_count_locked(probe_t *p, uint64_t self, uint32_t type) {
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->rec[i].type == type && (!self || p->rec[i].self == self)) k++;
    return k;
}

static size_t probe_count(probe_t *p, uint64_t self, uint32_t type) {
    pthread_mutex_lock(&p->mu);
    size_t k = probe_count_locked(p, self, type);
    pthread_mutex_unlock(&p->mu);
    return k;
}

/* Waits until at least n records of type; returns a copy of the n-th. */
static bool probe_wait(probe_t *p, uint64_t self, uint32_t type, size_t n, record_t *out) {
    uint64_t end = llmos_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    pthread_mutex_lock(&p->mu);
    while (probe_count_locked(p, self, type) < n && llmos_now_ns() < end) {
        pthread_mutex_unlock(&p->mu);
        llmos_sleep_ms(1);
        pthread_mutex_lock(&p->mu);
    }
    bool ok = false;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->rec[i].type == type && (!self || p->rec[i].self == self) && ++k == n) {
            if (out) *out = p->rec[i];
            ok = true;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static bool wait_until(bool (*cond)(void *), void *arg) {
    uint64_t end = llmos_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (!cond(arg)) {
        if (llmos_now_ns() > end) return false;
        llmos_sleep_ms(1);
    }
    return true;
}

/* ---- gate: holds an actor inside receive until the test opens it ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, open;
} gate_t;

static void gate_init(gate_t *g) {
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->entered = g->open = false;
}

static void gate_deinit(gate_t *g) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void gate_pass(gate_t *g) {
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(gate_t *g) {
    pthread_mutex_lock(&g->mu);
    while (!g->entered) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g) {
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- the scripted test actor ---- */

enum {
    T_ECHO = 100,       /* reply T_ECHO_REPLY with the same payload */
    T_ECHO_REPLY,
    T_IGNORE,           /* no reply */
    T_SLOW_ECHO,        /* sleep 150 ms, then reply */
    T_FAIL,             /* receive fails with LLMOS_EIO */
    T_GATE,             /* wait at the gate */
    T_STOP_SELF,
    T_DO_ASK,           /* payload ask_cmd_t: send asks */
    T_DO_WATCH,         /* payload: target id */
    T_TICK,             /* timer type used by the tests */
    T_COUNT,            /* reply with the number of messages received */
    T_NOTHING,          /* counted, nothing else */
    T_FORWARD,          /* rt_tell T_NOTHING to <word> */
    T_DO_UNWATCH,       /* payload: target id */
    T_DEFER,            /* keep the asker and corr; answered later with rt_answer */
};

typedef struct ask_cmd {
    uint64_t target;
    uint32_t type, timeout_ms, count;
    uint32_t via_send_msg; /* 1: an ask prepared by hand and given to rt_send_msg */
    uint64_t target_node;
} ask_cmd_t;

typedef struct tconf {
    probe_t *probe;
    uint64_t forward_to;     /* non-zero: T_ECHO is handed on to this actor with rt_forward */
    gate_t *gate;
    atomic_int inits;
    atomic_int deinits;
    atomic_long received;
    atomic_int ask_errors;   /* rt_ask returned an error */
    /* supervision: spawn a child in init */
    const struct tconf *child_conf;
    const char *child_name;
    uint32_t child_max_restarts;
    /* exclusivity */
    atomic_int in_receive;
    atomic_int overlap;
    /* pinned */
    atomic_int idle_work;
    atomic_long idle_calls;
    pthread_t thread;
    atomic_int wrong_thread;
    /* T_DEFER: the ask kept for a later rt_answer */
    rt_ref_t deferred_asker;
    uint64_t deferred_corr;
    atomic_int deferred;
} tconf_t;

static const rt_actor_def_t tactor_def;

static int tactor_init(rt_ctx_t *ctx, void *arg, void **state) {
    tconf_t *c = arg;
    atomic_fetch_add(&c->inits, 1);
    c->thread = pthread_self();
    if (c->child_conf) {
        rt_spawn_opts_t o = {.name = c->child_name, .max_restarts = c->child_max_restarts,
                             .restart_period_ms = 60000};
        llmos_error_t err;
        int rc = rt_spawn_child(ctx, &tactor_def, (void *)c->child_conf, &o, NULL, &err);
        if (rc) return rc;
    }
    *state = c;
    return 0;
}

static void tactor_deinit(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    tconf_t *c = state;
    atomic_fetch_add(&c->deinits, 1);
}

static int tactor_receive(rt_ctx_t *ctx, void *state, rt_msg_t *m) {
    tconf_t *c = state;
    if (atomic_fetch_add(&c->in_receive, 1) != 0) atomic_fetch_add(&c->overlap, 1);
    atomic_fetch_add(&c->received, 1);
    if (c->probe && m->type != T_NOTHING) probe_add(c->probe, rt_ctx_self(ctx).id, m);
    uint64_t word = 0;
    if (m->len >= 8) memcpy(&word, m->data, 8);
    int rc = 0;
    switch (m->type) {
    case T_ECHO:
        rc = c->forward_to ? rt_forward(ctx, rt_ref_local(c->forward_to), m)
                           : rt_reply(ctx, m, T_ECHO_REPLY, m->data, m->len);
        if (rc == LLMOS_ENOTFOUND) rc = 0; /* the runtime answered the asker */
        break;
    case T_SLOW_ECHO:
        llmos_sleep_ms(150);
        rc = rt_reply(ctx, m, T_ECHO_REPLY, m->data, m->len);
        break;
    case T_DEFER:
        c->deferred_asker = m->from;
        c->deferred_corr = m->corr;
        atomic_store(&c->deferred, 1);
        break;
    case T_FAIL: rc = LLMOS_EIO; break;
    case T_GATE: gate_pass(c->gate); break;
    case T_STOP_SELF: rt_ctx_stop_self(ctx); break;
    case T_DO_ASK: {
        ask_cmd_t cmd;
        memcpy(&cmd, m->data, sizeof cmd);
        for (uint32_t i = 0; i < cmd.count; i++) {
            uint64_t payload = i;
            int r;
            if (cmd.via_send_msg) {
                rt_msg_t *a = rt_msg_new(&(rt_msg_init_t){.to = {cmd.target_node, cmd.target, NULL},
                                                          .from = rt_ctx_self(ctx), .type = cmd.type,
                                                          .corr = 1000 + i, .data = &payload, .len = 8});
                r = rt_send_msg(rt_ctx_system(ctx), a);
            } else {
                r = rt_ask(ctx, (rt_ref_t){cmd.target_node, cmd.target, NULL}, cmd.type, &payload, 8,
                           cmd.timeout_ms, NULL);
            }
            if (r) atomic_fetch_add(&c->ask_errors, 1);
        }
        break;
    }
    case T_DO_WATCH: rc = rt_watch(ctx, rt_ref_local(word)); break;
    case T_DO_UNWATCH: rc = rt_unwatch(ctx, rt_ref_local(word)); break;
    case T_FORWARD: rc = rt_tell(ctx, rt_ref_local(word), T_IGNORE, NULL, 0); break;
    case T_COUNT: {
        long n = atomic_load(&c->received);
        rc = rt_reply(ctx, m, T_COUNT, &n, sizeof n);
        break;
    }
    case T_IGNORE:
    case T_NOTHING:
    case T_TICK:
    case T_ECHO_REPLY:
    case RT_MSG_ERROR:
    case RT_MSG_DOWN: break;
    default: rc = LLMOS_EUNKNOWNTYPE; break;
    }
    atomic_fetch_sub(&c->in_receive, 1);
    return rc;
}

static const rt_actor_def_t tactor_def = {
    .kind = "test",
    .init = tactor_init,
    .receive = tactor_receive,
    .deinit = tactor_deinit,
};

static rt_system_t *sys_new(uint32_t workers) {
    rt_system_t *sys = NULL;
    llmos_error_t err;
    rt_system_opts_t o = {.workers = workers, .node_name = "test"};
    assert_int_equal(rt_system_new(&o, &sys, &err), 0);
    return sys;
}

static rt_ref_t spawn(rt_system_t *sys, tconf_t *c, const char *name) {
    rt_ref_t r;
    llmos_error_t err;
    rt_spawn_opts_t o = {.name = name};
    int rc = rt_spawn(sys, &tactor_def, c, &o, &r, &err);
    if (rc) fprintf(stderr, "spawn: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return r;
}

static void send_word(rt_system_t *sys, rt_ref_t to, uint32_t type, uint64_t word) {
    assert_int_equal(rt_send(sys, RT_REF_NONE, to, type, &word, sizeof word), 0);
}

static void send_ask_cmd(rt_system_t *sys, rt_ref_t asker, ask_cmd_t cmd) {
    assert_int_equal(rt_send(sys, RT_REF_NONE, asker, T_DO_ASK, &cmd, sizeof cmd), 0);
}

static rt_stats_t stats_of(rt_system_t *sys) {
    rt_stats_t s;
    rt_system_stats(sys, &s);
    return s;
}

/* ---- tests ---- */

static void test_msg_new(void **unused) {
    (void)unused;
    const char payload[] = "hello";
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0, "svc"), .from = {7, 9, "me"}, .type = 42,
                                              .corr = 5, .error = "boom", .tenant = "acme",
                                              .data = payload, .len = sizeof payload});
    assert_non_null(m);
    assert_string_equal(m->to.name, "svc");
    assert_string_equal(m->from.name, "me");
    assert_int_equal(m->from.node, 7);
    assert_string_equal(m->error, "boom");
    assert_string_equal(m->tenant, "acme");
    assert_int_equal(m->len, sizeof payload);
    assert_memory_equal(m->data, payload, sizeof payload);
    /* everything lives inside the one allocation */
    const char *lo = (const char *)m, *hi = lo + sizeof *m + 64;
    assert_true(m->tenant > lo && m->tenant < hi);
    rt_msg_free(m);
    m = rt_msg_new(&(rt_msg_init_t){.type = 1});
    assert_null(m->data);
    assert_null(m->tenant);
    rt_msg_free(m);
}

static void test_ask_reply_and_timeout(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    probe_t *p = probe_new();
    tconf_t echo_c = {.probe = p}, asker_c = {.probe = p};
    rt_ref_t echo = spawn(sys, &echo_c, "echo");
    rt_ref_t asker = spawn(sys, &asker_c, NULL);

    send_ask_cmd(sys, asker, (ask_cmd_t){.target = echo.id, .type = T_ECHO, .timeout_ms = 5000, .count = 3});
    record_t r;
    assert_true(probe_wait(p, asker.id, T_ECHO_REPLY, 3, &r));
    assert_true(r.flags & RT_MSG_REPLY);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.from_id, echo.id);
    assert_int_equal(r.word, 2);
    assert_int_not_equal(r.corr, 0);

    /* No reply: the timeout fires as an error reply with the ask's corr. */
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = echo.id, .type = T_IGNORE, .timeout_ms = 50, .count = 1});
    assert_true(probe_wait(p, asker.id, RT_MSG_ERROR, 1, &r));
    assert_int_equal(r.status, LLMOS_ETIMEDOUT);
    assert_true(r.flags & RT_MSG_REPLY);
    record_t asked;
    assert_true(probe_wait(p, echo.id, T_IGNORE, 1, &asked));
    assert_int_equal(r.corr, asked.corr);
    assert_non_null(strstr(r.error, "timed out"));

    /* A reply after the timeout is dropped and counted. */
    uint64_t late0 = stats_of(sys).late_replies;
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = echo.id, .type = T_SLOW_ECHO, .timeout_ms = 30, .count = 1});
    assert_true(probe_wait(p, asker.id, RT_MSG_ERROR, 2, &r));
    assert_int_equal(r.status, LLMOS_ETIMEDOUT);
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (stats_of(sys).late_replies == late0 && llmos_now_ns() < end) llmos_sleep_ms(2);
    assert_int_equal(stats_of(sys).late_replies, late0 + 1);
    assert_int_equal(probe_count(p, asker.id, T_ECHO_REPLY), 3); /* the late one never reached receive */

    /* Unknown type: the asker gets an error reply, the actor goes on. */
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = echo.id, .type = 999, .timeout_ms = 5000, .count = 1});
    assert_true(probe_wait(p, asker.id, RT_MSG_ERROR, 3, &r));
    assert_int_equal(r.status, LLMOS_EUNKNOWNTYPE);
    assert_int_equal(stats_of(sys).unknown_type, 1);
    assert_int_equal(atomic_load(&asker_c.ask_errors), 0);

    /* An ask to nobody fails at once (and no reply will come). */
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = 987654, .type = T_ECHO, .timeout_ms = 100, .count = 1});
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (atomic_load(&asker_c.ask_errors) == 0 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(atomic_load(&asker_c.ask_errors), 1);
    /* A prepared ask to nobody, via rt_send_msg, is answered with an error reply. */
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = 987654, .type = T_ECHO, .count = 1, .via_send_msg = 1});
    assert_true(probe_wait(p, asker.id, RT_MSG_ERROR, 4, &r));
    assert_int_equal(r.status, LLMOS_ENOTFOUND);
    assert_int_equal(r.corr, 1000);

    rt_system_destroy(&sys);
    assert_null(sys);
    assert_int_equal(atomic_load(&echo_c.deinits), 1);
    probe_free(p);
}

static void test_call(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    tconf_t c = {0};
    rt_ref_t echo = spawn(sys, &c, "echo");
    llmos_error_t err;
    rt_msg_t *reply = NULL;
    uint64_t word = 77;
    assert_int_equal(rt_call(sys, rt_ref_name(0, "echo"), T_ECHO, &word, 8, 5000, &reply, &err), 0);
    assert_int_equal(reply->type, T_ECHO_REPLY);
    assert_int_equal(reply->status, 0);
    assert_int_equal(reply->from.id, echo.id);
    assert_memory_equal(reply->data, &word, 8);
    rt_msg_free(reply);

    assert_int_equal(rt_call(sys, echo, 555, NULL, 0, 5000, &reply, &err), 0);
    assert_int_equal(reply->type, RT_MSG_ERROR);
    assert_int_equal(reply->status, LLMOS_EUNKNOWNTYPE);
    rt_msg_free(reply);

    assert_int_equal(rt_call(sys, rt_ref_name(0, "nobody"), T_ECHO, NULL, 0, 1000, &reply, &err), LLMOS_ENOTFOUND);
    assert_null(reply);
    assert_int_equal(rt_call(sys, echo, T_IGNORE, NULL, 0, 50, &reply, &err), LLMOS_ETIMEDOUT);
    assert_null(reply);
    assert_non_null(strstr(err.msg, "50 ms"));

    /* many calls from several threads at once are independent */
    for (int i = 0; i < 200; i++) {
        word = (uint64_t)i;
        assert_int_equal(rt_call(sys, echo, T_ECHO, &word, 8, 5000, &reply, &err), 0);
        assert_memory_equal(reply->data, &word, 8);
        rt_msg_free(reply);
    }
    rt_system_destroy(&sys);
}

/* rt_forward: the actor it goes to answers the original asker; an ask
 * forwarded to nobody is answered with the error by the runtime. */
static void test_forward(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    tconf_t ec = {0};
    rt_ref_t echo = spawn(sys, &ec, NULL);
    tconf_t pc = {.forward_to = echo.id}, lost = {.forward_to = 987654};
    rt_ref_t proxy = spawn(sys, &pc, NULL), dead_end = spawn(sys, &lost, NULL);
    llmos_error_t err;
    rt_msg_t *reply = NULL;
    for (uint64_t word = 1; word <= 50; word++) {
        assert_int_equal(rt_call(sys, proxy, T_ECHO, &word, 8, 5000, &reply, &err), 0);
        assert_int_equal(reply->type, T_ECHO_REPLY);
        assert_int_equal(reply->from.id, echo.id); /* answered by the echo, not the proxy */
        assert_memory_equal(reply->data, &word, 8);
        rt_msg_free(reply);
    }
    assert_int_equal(atomic_load(&ec.received), 50);
    assert_int_equal(rt_call(sys, dead_end, T_ECHO, NULL, 0, 5000, &reply, &err), 0);
    assert_int_equal(reply->type, RT_MSG_ERROR);
    assert_int_equal(reply->status, LLMOS_ENOTFOUND);
    rt_msg_free(reply);
    rt_system_destroy(&sys);
}

/* rt_answer: an ask kept by its actor is answered later from another
 * thread — a reply with a payload, then an error answer. */
typedef struct defer_call {
    rt_system_t *sys;
    rt_ref_t to;
    int rc;
    rt_msg_t *reply;
} defer_call_t;

static void *defer_call_main(void *p) {
    defer_call_t *d = p;
    llmos_error_t err;
    d->rc = rt_call(d->sys, d->to, T_DEFER, NULL, 0, 10000, &d->reply, &err);
    return NULL;
}

static void test_answer_later(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    tconf_t kc = {0};
    rt_ref_t keeper = spawn(sys, &kc, NULL);
    for (int round = 0; round < 2; round++) {
        atomic_store(&kc.deferred, 0);
        defer_call_t d = {.sys = sys, .to = keeper};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, defer_call_main, &d), 0);
        for (int i = 0; i < 5000 && !atomic_load(&kc.deferred); i++) llmos_sleep_ms(1);
        assert_int_equal(atomic_load(&kc.deferred), 1);
        uint64_t word = 4242;
        int rc = round == 0 ? rt_answer(sys, kc.deferred_asker, kc.deferred_corr, T_ECHO_REPLY, true, 0, NULL, &word, 8)
                            : rt_answer(sys, kc.deferred_asker, kc.deferred_corr, RT_MSG_ERROR, true, LLMOS_EIO,
                                        "kept and failed", NULL, 0);
        assert_int_equal(rc, 0);
        pthread_join(th, NULL);
        assert_int_equal(d.rc, 0);
        if (round == 0) {
            assert_int_equal(d.reply->type, T_ECHO_REPLY);
            assert_int_equal(d.reply->status, 0);
            assert_int_equal(d.reply->len, 8);
            assert_memory_equal(d.reply->data, &word, 8);
        } else {
            assert_int_equal(d.reply->status, LLMOS_EIO);
            assert_string_equal(d.reply->error, "kept and failed");
        }
        rt_msg_free(d.reply);
    }
    rt_system_destroy(&sys);
}

static bool stats_actors_is(void *arg) {
    void **a = arg;
    return stats_of(a[0]).actors == (uint64_t)(uintptr_t)a[1];
}

static void test_watch_and_stop(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    probe_t *p = probe_new();
    gate_t g;
    gate_init(&g);
    tconf_t watcher_c = {.probe = p}, target_c = {.probe = p, .gate = &g}, failing_c = {.probe = p};
    tconf_t asker_c = {.probe = p};
    rt_ref_t watcher = spawn(sys, &watcher_c, NULL);
    rt_ref_t target = spawn(sys, &target_c, "target");
    rt_ref_t failing = spawn(sys, &failing_c, NULL);
    rt_ref_t asker = spawn(sys, &asker_c, NULL);
    send_word(sys, watcher, T_DO_WATCH, target.id);
    send_word(sys, watcher, T_DO_WATCH, failing.id);
    assert_true(probe_wait(p, watcher.id, T_DO_WATCH, 2, NULL));

    /* Hold the target inside a message, queue asks behind it, stop it. */
    send_word(sys, target, T_GATE, 0);
    gate_wait_entered(&g);
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = target.id, .type = T_ECHO, .timeout_ms = 5000, .count = 3});
    assert_true(probe_wait(p, asker.id, T_DO_ASK, 1, NULL));
    /* the asks are queued once the asker's turn is over */
    rt_msg_t *reply;
    llmos_error_t err;
    assert_int_equal(rt_call(sys, asker, T_COUNT, NULL, 0, 5000, &reply, &err), 0);
    rt_msg_free(reply);
    assert_int_equal(rt_stop(sys, target), 0);
    rt_ref_t found;
    assert_int_equal(rt_lookup(sys, "target", &found), LLMOS_ENOTFOUND); /* the name is free at once */
    gate_open(&g);

    record_t r;
    assert_true(probe_wait(p, asker.id, RT_MSG_ERROR, 3, &r));
    assert_int_equal(r.status, LLMOS_EUNAVAILABLE);
    assert_int_equal(probe_count(p, target.id, T_ECHO), 0);
    assert_true(probe_wait(p, watcher.id, RT_MSG_DOWN, 1, &r));
    assert_int_equal(r.from_id, target.id);
    assert_int_equal(r.status, 0);
    assert_int_equal(atomic_load(&target_c.deinits), 1);
    assert_int_equal(rt_stop(sys, target), LLMOS_ENOTFOUND);

    /* A top-level actor that fails ends; its watchers see the reason. */
    send_word(sys, failing, T_FAIL, 0);
    assert_true(probe_wait(p, watcher.id, RT_MSG_DOWN, 2, &r));
    assert_int_equal(r.from_id, failing.id);
    assert_int_equal(r.status, LLMOS_EIO);
    assert_int_equal(atomic_load(&failing_c.deinits), 1);
    assert_int_equal(stats_of(sys).failures, 1);

    /* Watching the dead: the notice comes at once. */
    send_word(sys, watcher, T_DO_WATCH, target.id);
    assert_true(probe_wait(p, watcher.id, RT_MSG_DOWN, 3, &r));
    assert_int_equal(r.from_id, target.id);
    assert_int_equal(r.status, LLMOS_ENOTFOUND);

    /* Unwatched: no notice. */
    tconf_t quiet_c = {0};
    rt_ref_t quiet = spawn(sys, &quiet_c, NULL);
    send_word(sys, watcher, T_DO_WATCH, quiet.id);
    send_word(sys, watcher, T_DO_UNWATCH, quiet.id);
    assert_true(probe_wait(p, watcher.id, T_DO_UNWATCH, 1, NULL));
    assert_int_equal(rt_call(sys, watcher, T_COUNT, NULL, 0, 5000, &reply, &err), 0); /* unwatch is done */
    rt_msg_free(reply);
    assert_int_equal(rt_stop(sys, quiet), 0);
    void *args2[2] = {sys, (void *)(uintptr_t)2};
    assert_true(wait_until(stats_actors_is, args2));
    llmos_sleep_ms(20);
    assert_int_equal(probe_count(p, watcher.id, RT_MSG_DOWN), 3);

    /* Stopping itself. */
    send_word(sys, asker, T_STOP_SELF, 0);
    void *args[2] = {sys, (void *)(uintptr_t)1};
    assert_true(wait_until(stats_actors_is, args));
    assert_int_equal(atomic_load(&asker_c.deinits), 1);

    rt_system_destroy(&sys);
    assert_int_equal(atomic_load(&watcher_c.deinits), 1);
    gate_deinit(&g);
    probe_free(p);
}

static void test_supervision(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    probe_t *p = probe_new();
    /* top (top level) -> mid (budget 1) -> leaf (budget 2) */
    tconf_t leaf_c = {.probe = p};
    tconf_t mid_c = {.probe = p, .child_conf = &leaf_c, .child_name = "leaf", .child_max_restarts = 2};
    tconf_t top_c = {.probe = p, .child_conf = &mid_c, .child_name = "mid", .child_max_restarts = 1};
    tconf_t watcher_c = {.probe = p};
    rt_ref_t watcher = spawn(sys, &watcher_c, NULL);
    rt_ref_t top = spawn(sys, &top_c, "top");
    rt_ref_t leaf, mid;
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while ((rt_lookup(sys, "leaf", &leaf) != 0 || rt_lookup(sys, "mid", &mid) != 0) && llmos_now_ns() < end)
        llmos_sleep_ms(1);
    assert_int_equal(rt_lookup(sys, "leaf", &leaf), 0);
    send_word(sys, watcher, T_DO_WATCH, top.id);
    send_word(sys, watcher, T_DO_WATCH, leaf.id);
    send_word(sys, watcher, T_DO_WATCH, mid.id);
    assert_true(probe_wait(p, watcher.id, T_DO_WATCH, 3, NULL));

    /* Two failures: restarted in place (same id, same name), state rebuilt. */
    for (int i = 1; i <= 2; i++) {
        if (i == 1) {
            /* an ask that makes the actor fail is answered with the failure */
            rt_msg_t *fail_reply;
            llmos_error_t ferr;
            assert_int_equal(rt_call(sys, leaf, T_FAIL, NULL, 0, 5000, &fail_reply, &ferr), 0);
            assert_int_equal(fail_reply->type, RT_MSG_ERROR);
            assert_int_equal(fail_reply->status, LLMOS_EIO);
            rt_msg_free(fail_reply);
        } else {
            send_word(sys, leaf, T_FAIL, 0);
        }
        end = llmos_now_ns() + WAIT_MS * 1000000ull;
        while (atomic_load(&leaf_c.inits) < 1 + i && llmos_now_ns() < end) llmos_sleep_ms(1);
        assert_int_equal(atomic_load(&leaf_c.inits), 1 + i);
    }
    rt_ref_t again;
    assert_int_equal(rt_lookup(sys, "leaf", &again), 0);
    assert_int_equal(again.id, leaf.id);
    assert_int_equal(stats_of(sys).restarts, 2);
    assert_int_equal(probe_count(p, watcher.id, RT_MSG_DOWN), 0);
    rt_msg_t *reply;
    llmos_error_t err;
    assert_int_equal(rt_call(sys, leaf, T_ECHO, NULL, 0, 5000, &reply, &err), 0);
    assert_int_equal(reply->type, T_ECHO_REPLY);
    rt_msg_free(reply);

    /* Third failure: past the budget.  leaf stays dead, mid fails and is
     * restarted by top (its budget is 1), and starts a new leaf. */
    send_word(sys, leaf, T_FAIL, 0);
    record_t r;
    assert_true(probe_wait(p, watcher.id, RT_MSG_DOWN, 1, &r));
    assert_int_equal(r.from_id, leaf.id);
    assert_int_equal(r.status, LLMOS_EIO);
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (atomic_load(&mid_c.inits) < 2 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(atomic_load(&mid_c.inits), 2);
    assert_int_equal(atomic_load(&mid_c.deinits), 1);
    rt_ref_t leaf2;
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (rt_lookup(sys, "leaf", &leaf2) != 0 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(rt_lookup(sys, "leaf", &leaf2), 0);
    assert_int_not_equal(leaf2.id, leaf.id);
    assert_int_equal(rt_lookup(sys, "mid", &again), 0);
    assert_int_equal(again.id, mid.id);

    /* The new leaf fails past its budget too; now mid is past its own
     * budget, so it dies and top (top level) fails and ends. */
    for (int i = 0; i < 3; i++) {
        int before = atomic_load(&leaf_c.inits);
        send_word(sys, leaf2, T_FAIL, 0);
        if (i < 2) {
            end = llmos_now_ns() + WAIT_MS * 1000000ull;
            while (atomic_load(&leaf_c.inits) == before && llmos_now_ns() < end) llmos_sleep_ms(1);
        }
    }
    assert_true(probe_wait(p, watcher.id, RT_MSG_DOWN, 3, NULL));
    bool saw_mid = false, saw_top = false;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++) {
        if (p->rec[i].self != watcher.id || p->rec[i].type != RT_MSG_DOWN) continue;
        if (p->rec[i].from_id == mid.id) saw_mid = p->rec[i].status == LLMOS_EIO;
        if (p->rec[i].from_id == top.id) saw_top = p->rec[i].status == LLMOS_EIO;
    }
    pthread_mutex_unlock(&p->mu);
    assert_true(saw_mid);
    assert_true(saw_top);
    assert_int_equal(rt_lookup(sys, "top", &again), LLMOS_ENOTFOUND);
    void *args[2] = {sys, (void *)(uintptr_t)1}; /* the watcher alone */
    assert_true(wait_until(stats_actors_is, args));
    assert_int_equal(atomic_load(&top_c.deinits), 1);
    rt_system_destroy(&sys);
    probe_free(p);
}

static void test_init_failure_restart(void **unused);

static void test_timers(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    probe_t *p = probe_new();
    tconf_t c = {.probe = p};
    rt_ref_t a = spawn(sys, &c, "ticker");
    uint64_t id1, id2, id3;
    assert_int_equal(rt_timer_start(sys, a, 20, 0, T_TICK, 7, &id1), 0);
    record_t r;
    assert_true(probe_wait(p, a.id, T_TICK, 1, &r));
    assert_int_equal(r.word, 7);
    assert_int_equal(rt_timer_cancel(sys, id1), LLMOS_ENOTFOUND); /* one-shot: gone after firing */

    /* periodic, by name, with the default type */
    assert_int_equal(rt_timer_start(sys, rt_ref_name(0, "ticker"), 5, 5, RT_MSG_TIMER, 9, &id2), 0);
    assert_true(probe_wait(p, a.id, RT_MSG_TIMER, 5, &r));
    assert_int_equal(r.word, 9);
    assert_int_equal(rt_timer_cancel(sys, id2), 0);
    llmos_sleep_ms(20);
    size_t n = probe_count(p, a.id, RT_MSG_TIMER);
    llmos_sleep_ms(50);
    assert_int_equal(probe_count(p, a.id, RT_MSG_TIMER), n);

    /* canceled before it fires: nothing arrives */
    assert_int_equal(rt_timer_start(sys, a, 100, 0, T_TICK, 8, &id3), 0);
    assert_int_equal(rt_timer_cancel(sys, id3), 0);
    assert_int_equal(rt_timer_cancel(sys, id3), LLMOS_ENOTFOUND);
    llmos_sleep_ms(150);
    assert_int_equal(probe_count(p, a.id, T_TICK), 1);

    rt_system_destroy(&sys);
    probe_free(p);
}

static void test_timer_self_cancel(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(1);
    tconf_t c = {0};
    rt_ref_t a = spawn(sys, &c, NULL);
    uint64_t id;
    assert_int_equal(rt_timer_start(sys, a, 1, 2, T_TICK, 0, &id), 0);
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (atomic_load(&c.received) < 3 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_true(atomic_load(&c.received) >= 3);
    assert_int_equal(rt_stop(sys, a), 0);
    uint64_t unknown0 = 0;
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (stats_of(sys).unknown_actor == unknown0 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_true(stats_of(sys).unknown_actor > unknown0); /* it fired at the dead actor once... */
    llmos_sleep_ms(50);
    uint64_t unknown = stats_of(sys).unknown_actor;
    llmos_sleep_ms(50);
    assert_int_equal(stats_of(sys).unknown_actor, unknown); /* ...and then no more (2 ms period) */
    assert_int_equal(rt_timer_cancel(sys, id), LLMOS_ENOTFOUND);
    rt_system_destroy(&sys);
}

/* Fairness: on one worker, an actor flooded with thousands of messages does
 * not starve another one. */
typedef struct flood {
    rt_ref_t sink;
    int count;
} flood_t;

static int flooder_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    *state = arg;
    return 0;
}

static int flooder_receive(rt_ctx_t *ctx, void *state, rt_msg_t *m) {
    flood_t *f = state;
    (void)m;
    for (int i = 0; i < f->count; i++)
        if (rt_tell(ctx, f->sink, T_NOTHING, NULL, 0) != 0) return LLMOS_EINTERNAL;
    return 0;
}

static const rt_actor_def_t flooder_def = {.kind = "flooder", .init = flooder_init, .receive = flooder_receive};

typedef struct slow_sink {
    atomic_long n;
} slow_sink_t;

static int sink_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    *state = arg;
    return 0;
}

static int sink_receive(rt_ctx_t *ctx, void *state, rt_msg_t *m) {
    (void)ctx;
    (void)m;
    slow_sink_t *s = state;
    uint64_t until = llmos_now_ns() + 20000; /* 20 us of work per message */
    while (llmos_now_ns() < until) {
    }
    atomic_fetch_add(&s->n, 1);
    return 0;
}

static const rt_actor_def_t sink_def = {.kind = "sink", .init = sink_init, .receive = sink_receive};

typedef struct second {
    slow_sink_t *sink;
    atomic_long sink_count_at_receive;
    atomic_bool got;
} second_t;

static int second_receive(rt_ctx_t *ctx, void *state, rt_msg_t *m) {
    (void)ctx;
    (void)m;
    second_t *s = state;
    atomic_store(&s->sink_count_at_receive, atomic_load(&s->sink->n));
    atomic_store(&s->got, true);
    return 0;
}

static const rt_actor_def_t second_def = {.kind = "second", .init = sink_init, .receive = second_receive};

static void test_fairness(void **unused) {
    (void)unused;
    rt_system_t *sys = NULL;
    llmos_error_t err;
    rt_system_opts_t o = {.workers = 1, .batch = 16};
    assert_int_equal(rt_system_new(&o, &sys, &err), 0);
    slow_sink_t sink = {0};
    second_t second = {.sink = &sink};
    rt_ref_t sink_ref, second_ref, flooder_ref;
    assert_int_equal(rt_spawn(sys, &sink_def, &sink, NULL, &sink_ref, &err), 0);
    assert_int_equal(rt_spawn(sys, &second_def, &second, NULL, &second_ref, &err), 0);
    flood_t f = {.sink = sink_ref, .count = 5000};
    assert_int_equal(rt_spawn(sys, &flooder_def, &f, NULL, &flooder_ref, &err), 0);
    send_word(sys, flooder_ref, T_NOTHING, 0);
    /* wait until the sink is busy with the flood, then poke the second actor */
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (atomic_load(&sink.n) < 10 && llmos_now_ns() < end) llmos_sleep_ms(1);
    long at_send = atomic_load(&sink.n);
    send_word(sys, second_ref, T_NOTHING, 0);
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (!atomic_load(&second.got) && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_true(atomic_load(&second.got));
    long at_recv = atomic_load(&second.sink_count_at_receive);
    /* at most one more batch of the flood ran before the second actor */
    assert_true(at_recv - at_send <= 2 * 16);
    assert_true(at_recv < 5000);
    rt_system_destroy(&sys);
}

/* Exclusivity: 8 threads send to one actor on 4 workers; receive never overlaps. */
typedef struct blast {
    rt_system_t *sys;
    rt_ref_t to;
    int n;
} blast_t;

static void *blast_main(void *arg) {
    blast_t *b = arg;
    for (int i = 0; i < b->n; i++) {
        while (rt_send(b->sys, RT_REF_NONE, b->to, T_NOTHING, &i, sizeof i) != 0) llmos_sleep_ms(1);
    }
    return NULL;
}

static bool received_is(void *arg) {
    void **a = arg;
    tconf_t *c = a[0];
    return atomic_load(&c->received) == (long)(uintptr_t)a[1];
}

static void test_exclusive(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(4);
    tconf_t c = {0};
    rt_ref_t a = spawn(sys, &c, NULL);
    enum { THREADS = 8, PER = 20000 };
    pthread_t t[THREADS];
    blast_t b = {sys, a, PER};
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, blast_main, &b);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    void *args[2] = {&c, (void *)(uintptr_t)(THREADS * PER)};
    assert_true(wait_until(received_is, args));
    assert_int_equal(atomic_load(&c.overlap), 0);
    rt_stats_t s = stats_of(sys);
    assert_true(s.sent >= THREADS * PER);
    assert_true(s.received >= THREADS * PER);
    rt_system_destroy(&sys);
}

/* Pinned actor: its own thread, may block, idle loop. */
static bool pinned_idle(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    tconf_t *c = state;
    if (!pthread_equal(pthread_self(), c->thread)) atomic_fetch_add(&c->wrong_thread, 1);
    atomic_fetch_add(&c->idle_calls, 1);
    if (atomic_load(&c->idle_work) == 0) return false;
    atomic_fetch_sub(&c->idle_work, 1);
    return atomic_load(&c->idle_work) > 0;
}

static int pinned_receive(rt_ctx_t *ctx, void *state, rt_msg_t *m) {
    tconf_t *c = state;
    if (!pthread_equal(pthread_self(), c->thread)) atomic_fetch_add(&c->wrong_thread, 1);
    if (m->type == T_TICK) {
        uint64_t w;
        memcpy(&w, m->data, 8);
        atomic_fetch_add(&c->idle_work, (int)w);
        return 0;
    }
    if (m->type == T_GATE) {
        llmos_sleep_ms(30); /* blocking is allowed here */
        return 0;
    }
    return tactor_receive(ctx, state, m);
}

static void test_pinned(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(1);
    tconf_t pc = {0}, other_c = {0};
    rt_actor_def_t def = tactor_def;
    def.kind = "pinned";
    def.receive = pinned_receive;
    def.idle = pinned_idle;
    rt_ref_t pinned;
    llmos_error_t err;
    rt_spawn_opts_t o = {.name = "engine", .pinned = true};
    assert_int_equal(rt_spawn(sys, &def, &pc, &o, &pinned, &err), 0);
    rt_ref_t other = spawn(sys, &other_c, NULL);

    /* The pinned actor blocks for a while; the worker actor still answers. */
    send_word(sys, pinned, T_GATE, 0);
    rt_msg_t *reply;
    assert_int_equal(rt_call(sys, other, T_ECHO, NULL, 0, 5000, &reply, &err), 0);
    rt_msg_free(reply);

    long calls0 = atomic_load(&pc.idle_calls);
    send_word(sys, pinned, T_TICK, 100);
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while ((atomic_load(&pc.idle_work) != 0 || atomic_load(&pc.idle_calls) < calls0 + 100) &&
           llmos_now_ns() < end)
        llmos_sleep_ms(1);
    assert_int_equal(atomic_load(&pc.idle_work), 0);
    assert_true(atomic_load(&pc.idle_calls) >= calls0 + 100);
    /* with no work, it sleeps: idle is not called in a loop */
    llmos_sleep_ms(20);
    long calls1 = atomic_load(&pc.idle_calls);
    llmos_sleep_ms(50);
    assert_int_equal(atomic_load(&pc.idle_calls), calls1);

    assert_int_equal(rt_call(sys, rt_ref_name(0, "engine"), T_ECHO, NULL, 0, 5000, &reply, &err), 0);
    assert_int_equal(reply->type, T_ECHO_REPLY);
    rt_msg_free(reply);
    assert_int_equal(atomic_load(&pc.wrong_thread), 0);
    assert_false(pthread_equal(pc.thread, other_c.thread));

    /* a pinned actor stops like any other */
    assert_int_equal(rt_stop(sys, pinned), 0);
    void *args[2] = {sys, (void *)(uintptr_t)1};
    assert_true(wait_until(stats_actors_is, args));
    assert_int_equal(atomic_load(&pc.deinits), 1);

    /* and one still alive at shutdown runs deinit on the way out */
    tconf_t pc2 = {0};
    o.name = NULL;
    assert_int_equal(rt_spawn(sys, &def, &pc2, &o, NULL, &err), 0);
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (atomic_load(&pc2.inits) == 0 && llmos_now_ns() < end) llmos_sleep_ms(1);
    rt_system_destroy(&sys);
    assert_int_equal(atomic_load(&pc2.deinits), 1);
}

static void test_mailbox_limit_and_deadline(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    gate_t g;
    gate_init(&g);
    probe_t *p = probe_new();
    tconf_t c = {.gate = &g, .probe = p};
    rt_ref_t a;
    llmos_error_t err;
    rt_spawn_opts_t o = {.mailbox_limit = 4};
    assert_int_equal(rt_spawn(sys, &tactor_def, &c, &o, &a, &err), 0);
    send_word(sys, a, T_GATE, 0);
    gate_wait_entered(&g);
    for (int i = 0; i < 3; i++) send_word(sys, a, T_NOTHING, 0);
    /* the 4th queued message expires before it is handled */
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = a, .type = T_ECHO, .deadline_ms = llmos_wall_ms() + 20});
    assert_int_equal(rt_send_msg(sys, m), 0);
    assert_int_equal(rt_send(sys, RT_REF_NONE, a, T_NOTHING, NULL, 0), LLMOS_EOVERLOADED);
    assert_int_equal(stats_of(sys).overloaded, 1);
    /* a blocking call with a short timeout: its message waits past its deadline too */
    rt_msg_t *reply = NULL;
    assert_int_equal(rt_call(sys, a, T_ECHO, NULL, 0, 30, &reply, &err), LLMOS_EOVERLOADED);
    llmos_sleep_ms(40);
    gate_open(&g);
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (stats_of(sys).expired < 1 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(stats_of(sys).expired, 1);
    assert_int_equal(rt_call(sys, a, T_COUNT, NULL, 0, 5000, &reply, &err), 0);
    long count;
    memcpy(&count, reply->data, sizeof count);
    rt_msg_free(reply);
    assert_int_equal(count, 1 + 3 + 1); /* gate, three plain, the count; not the expired echo */
    assert_int_equal(probe_count(p, a.id, T_ECHO), 0);

    /* An ask from an actor that expires in the mailbox gets ETIMEDOUT: the
     * runtime's own (deadline) or the ask's timer, whichever comes first. */
    gate_t g2;
    gate_init(&g2);
    c.gate = &g2;
    tconf_t asker_c = {.probe = p};
    rt_ref_t asker = spawn(sys, &asker_c, NULL);
    send_word(sys, a, T_GATE, 0);
    gate_wait_entered(&g2);
    send_ask_cmd(sys, asker, (ask_cmd_t){.target = a.id, .type = T_ECHO, .timeout_ms = 20, .count = 1});
    record_t r;
    assert_true(probe_wait(p, asker.id, RT_MSG_ERROR, 1, &r));
    assert_int_equal(r.status, LLMOS_ETIMEDOUT);
    llmos_sleep_ms(30); /* past the deadline by the wall clock too */
    gate_open(&g2);
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (stats_of(sys).expired < 2 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(stats_of(sys).expired, 2);
    assert_int_equal(probe_count(p, asker.id, RT_MSG_ERROR), 1); /* one answer only */
    rt_system_destroy(&sys);
    gate_deinit(&g);
    gate_deinit(&g2);
    probe_free(p);
}

typedef struct seen {
    rt_system_t *sys;
    int n;
    bool found;
    uint64_t id;
} seen_t;

static void foreach_fn(void *user, const char *name, uint64_t id, const char *kind) {
    seen_t *s = user;
    s->n++;
    rt_ref_t r;
    if (name && strcmp(name, "reg") == 0 && strcmp(kind, "test") == 0 && rt_lookup(s->sys, "reg", &r) == 0 &&
        r.id == id) { /* a callback may use the read side again */
        s->found = true;
        s->id = id;
    }
}

static void test_registry(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(1);
    tconf_t c = {0}, c2 = {0};
    rt_ref_t a = spawn(sys, &c, "reg");
    rt_ref_t r;
    llmos_error_t err;
    rt_spawn_opts_t o = {.name = "reg"};
    assert_int_equal(rt_spawn(sys, &tactor_def, &c2, &o, &r, &err), LLMOS_EEXIST);
    assert_non_null(strstr(err.msg, "reg"));
    assert_int_equal(rt_lookup(sys, "reg", &r), 0);
    assert_int_equal(r.id, a.id);
    assert_int_equal(rt_register(sys, "alias", a), 0);
    assert_int_equal(rt_register(sys, "alias", a), LLMOS_EEXIST);
    assert_int_equal(rt_register(sys, "x", rt_ref_local(424242)), LLMOS_ENOTFOUND);
    assert_int_equal(rt_lookup(sys, "alias", &r), 0);
    assert_int_equal(r.id, a.id);
    assert_int_equal(rt_unregister(sys, "alias"), 0);
    assert_int_equal(rt_lookup(sys, "alias", &r), LLMOS_ENOTFOUND);
    assert_int_equal(rt_unregister(sys, "alias"), LLMOS_ENOTFOUND);
    seen_t s = {.sys = sys};
    rt_system_foreach_actor(sys, foreach_fn, &s);
    assert_int_equal(s.n, 1);
    assert_true(s.found);
    assert_int_equal(s.id, a.id);
    assert_int_equal(stats_of(sys).actors, 1);
    /* many names: the registry grows */
    tconf_t many[100];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d", i);
        spawn(sys, &many[i], name);
    }
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(rt_lookup(sys, name, &r), 0);
    }
    assert_int_equal(rt_stop(sys, a), 0);
    assert_int_equal(rt_lookup(sys, "reg", &r), LLMOS_ENOTFOUND);
    void *args[2] = {sys, (void *)(uintptr_t)100};
    assert_true(wait_until(stats_actors_is, args));
    /* the name can be taken again */
    tconf_t c3 = {0};
    spawn(sys, &c3, "reg");
    rt_system_destroy(&sys);
}

/* ---- remote router hook ---- */

typedef struct router {
    pthread_mutex_t mu;
    rt_msg_t *got[16];
    int n;
    int fail_with;
} router_t;

static int router_fn(void *user, rt_msg_t *msg) {
    router_t *r = user;
    if (r->fail_with) return r->fail_with;
    pthread_mutex_lock(&r->mu);
    if (r->n < 16) r->got[r->n++] = msg;
    else rt_msg_free(msg);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static int router_count(router_t *r) {
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void test_remote(void **unused) {
    (void)unused;
    rt_system_t *sys = NULL;
    llmos_error_t err;
    rt_system_opts_t so = {.workers = 2, .node_id = 0x1111};
    assert_int_equal(rt_system_new(&so, &sys, &err), 0);
    assert_int_equal(rt_system_node_id(sys), 0x1111);
    probe_t *p = probe_new();
    tconf_t c = {.probe = p};
    rt_ref_t local = spawn(sys, &c, "local");
    rt_ref_t far = {0x2222, 5, NULL};

    /* no router: sends fail, asks get an error reply, both counted */
    assert_int_equal(rt_send(sys, local, far, T_NOTHING, NULL, 0), LLMOS_EUNAVAILABLE);
    assert_int_equal(stats_of(sys).no_route, 1);
    send_ask_cmd(sys, local, (ask_cmd_t){.target = 5, .target_node = 0x2222, .type = T_ECHO, .count = 1,
                                         .via_send_msg = 1});
    record_t rec;
    assert_true(probe_wait(p, local.id, RT_MSG_ERROR, 1, &rec));
    assert_int_equal(rec.status, LLMOS_EUNAVAILABLE);
    assert_non_null(strstr(rec.error, "no route"));
    assert_int_equal(stats_of(sys).no_route, 2);
    rt_msg_t *reply;
    assert_int_equal(rt_call(sys, far, T_ECHO, NULL, 0, 100, &reply, &err), LLMOS_EUNAVAILABLE);

    /* with a router: foreign nodes go to it, with from.node filled in */
    router_t r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rt_system_set_remote(sys, router_fn, &r);
    uint64_t w = 3;
    assert_int_equal(rt_send(sys, local, far, T_ECHO, &w, 8), 0);
    assert_int_equal(rt_send(sys, local, rt_ref_name(0x2222, "svc"), T_ECHO, &w, 8), 0);
    assert_int_equal(rt_send(sys, RT_REF_NONE, (rt_ref_t){0x1111, local.id, NULL}, T_NOTHING, NULL, 0), 0);
    assert_int_equal(router_count(&r), 2);
    assert_int_equal(r.got[0]->to.node, 0x2222);
    assert_int_equal(r.got[0]->to.id, 5);
    assert_int_equal(r.got[0]->from.node, 0x1111);
    assert_int_equal(r.got[0]->from.id, local.id);
    assert_string_equal(r.got[1]->to.name, "svc");

    /* a remote ask that reaches us: delivered, and answered through the router */
    rt_msg_t *in = rt_msg_new(&(rt_msg_init_t){.to = rt_ref_name(0x1111, "local"), .from = {0x2222, 9, NULL},
                                               .type = T_ECHO, .corr = 77, .data = &w, .len = 8});
    assert_int_equal(rt_deliver(sys, in), 0);
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (router_count(&r) < 3 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(router_count(&r), 3);
    assert_int_equal(r.got[2]->to.node, 0x2222);
    assert_int_equal(r.got[2]->to.id, 9);
    assert_int_equal(r.got[2]->corr, 77);
    assert_true(r.got[2]->flags & RT_MSG_REPLY);
    assert_int_equal(r.got[2]->type, T_ECHO_REPLY);

    /* a remote ask for an unknown actor: an error reply, routed back, counted */
    uint64_t unknown0 = stats_of(sys).unknown_actor;
    in = rt_msg_new(&(rt_msg_init_t){.to = {0, 31337, NULL}, .from = {0x2222, 9, NULL}, .type = T_ECHO,
                                     .corr = 78});
    assert_int_equal(rt_deliver(sys, in), LLMOS_ENOTFOUND);
    assert_int_equal(router_count(&r), 4);
    assert_int_equal(r.got[3]->corr, 78);
    assert_int_equal(r.got[3]->status, LLMOS_ENOTFOUND);
    assert_int_equal(r.got[3]->type, RT_MSG_ERROR);
    assert_int_equal(stats_of(sys).unknown_actor, unknown0 + 1);

    /* a failing router: the error comes back and is counted */
    r.fail_with = LLMOS_EUNAVAILABLE;
    uint64_t nr = stats_of(sys).no_route;
    assert_int_equal(rt_send(sys, local, far, T_ECHO, NULL, 0), LLMOS_EUNAVAILABLE);
    assert_int_equal(stats_of(sys).no_route, nr + 1);

    rt_system_destroy(&sys);
    for (int i = 0; i < r.n; i++) rt_msg_free(r.got[i]);
    probe_free(p);
}

/* Churn: actors are spawned and stopped while threads send to them.  Every
 * message is accounted for (received, refused, or dropped at death), and
 * under ASan nothing is touched after it is freed. */
enum { CHURN_ACTORS = 300 };
typedef struct churn {
    rt_system_t *sys;
    _Atomic uint64_t ids[CHURN_ACTORS];
    atomic_bool done;
    atomic_long refused;
} churn_t;

static void *churn_sender(void *arg) {
    churn_t *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    while (!atomic_load(&c->done)) {
        uint64_t id = atomic_load(&c->ids[rand_r(&seed) % CHURN_ACTORS]);
        if (!id) continue;
        int rc = rt_send(c->sys, RT_REF_NONE, rt_ref_local(id), T_NOTHING, NULL, 0);
        if (rc == LLMOS_ENOTFOUND) atomic_fetch_add(&c->refused, 1);
        else assert_int_equal(rc, 0);
    }
    return NULL;
}

static void test_churn(void **unused) {
    (void)unused;
    churn_t *c = calloc(1, sizeof *c);
    c->sys = sys_new(4);
    tconf_t *conf = calloc(CHURN_ACTORS, sizeof *conf);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn_sender, c);
    for (int i = 0; i < CHURN_ACTORS; i++) {
        rt_ref_t r = spawn(c->sys, &conf[i], NULL);
        atomic_store(&c->ids[i], r.id);
        if (i >= 8) assert_int_equal(rt_stop(c->sys, rt_ref_local(atomic_load(&c->ids[i - 8]))), 0);
        llmos_sleep_ms(i % 16 == 0 ? 1 : 0);
    }
    for (int i = CHURN_ACTORS - 8; i < CHURN_ACTORS; i++) assert_int_equal(rt_stop(c->sys, rt_ref_local(c->ids[i])), 0);
    atomic_store(&c->done, true);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    void *args[2] = {c->sys, (void *)(uintptr_t)0};
    assert_true(wait_until(stats_actors_is, args));
    rt_stats_t st = stats_of(c->sys);
    long received = 0;
    for (int i = 0; i < CHURN_ACTORS; i++) {
        received += atomic_load(&conf[i].received);
        assert_int_equal(atomic_load(&conf[i].deinits), 1);
        assert_int_equal(atomic_load(&conf[i].overlap), 0);
    }
    assert_int_equal(st.received, (uint64_t)received);
    /* accepted = received + dropped at death; refused and dropped are both "unknown actor" */
    assert_int_equal(st.sent - st.received, st.unknown_actor - (uint64_t)atomic_load(&c->refused));
    assert_true(st.sent > 0);
    rt_system_destroy(&c->sys);
    free(conf);
    free(c);
}

/* tell inherits tenant, trace and deadline; RT_MSG_STOP stops an actor */
static void test_tell_inherits_and_stop_message(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(2);
    probe_t *p = probe_new();
    tconf_t ac = {.probe = p}, bc = {.probe = p};
    rt_ref_t a = spawn(sys, &ac, NULL), b = spawn(sys, &bc, NULL);
    uint64_t dl = llmos_wall_ms() + 60000;
    rt_msg_t *m = rt_msg_new(&(rt_msg_init_t){.to = a, .type = T_FORWARD, .tenant = "acme", .trace_id = 42,
                                              .deadline_ms = dl, .data = &b.id, .len = 8});
    assert_int_equal(rt_send_msg(sys, m), 0);
    record_t r;
    assert_true(probe_wait(p, b.id, T_IGNORE, 1, &r));
    assert_string_equal(r.tenant, "acme");
    assert_int_equal(r.trace_id, 42);
    assert_int_equal(r.deadline_ms, dl);
    assert_int_equal(r.from_id, a.id);

    rt_msg_t *reply;
    llmos_error_t err;
    assert_int_equal(rt_call(sys, b, RT_MSG_STOP, NULL, 0, 5000, &reply, &err), 0);
    assert_int_equal(reply->type, RT_MSG_STOP);
    assert_int_equal(reply->status, 0);
    rt_msg_free(reply);
    void *args[2] = {sys, (void *)(uintptr_t)1};
    assert_true(wait_until(stats_actors_is, args));
    assert_int_equal(probe_count(p, b.id, RT_MSG_STOP), 0); /* receive never saw it */
    assert_int_equal(atomic_load(&bc.deinits), 1);
    rt_system_destroy(&sys);
    probe_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_new),
        cmocka_unit_test(test_ask_reply_and_timeout),
        cmocka_unit_test(test_call),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_answer_later),
        cmocka_unit_test(test_watch_and_stop),
        cmocka_unit_test(test_supervision),
        cmocka_unit_test(test_init_failure_restart),
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_timer_self_cancel),
        cmocka_unit_test(test_fairness),
        cmocka_unit_test(test_exclusive),
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_mailbox_limit_and_deadline),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_remote),
        cmocka_unit_test(test_tell_inherits_and_stop_message),
        cmocka_unit_test(test_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* init failures count against the budget too */
static atomic_int flaky_inits;

static int flaky_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    *state = arg;
    return atomic_fetch_add(&flaky_inits, 1) < 2 ? LLMOS_EIO : 0;
}

static int parent_init(rt_ctx_t *ctx, void *arg, void **state) {
    *state = arg;
    rt_actor_def_t *def = arg;
    rt_spawn_opts_t o = {.name = "flaky", .max_restarts = 3};
    llmos_error_t err;
    return rt_spawn_child(ctx, def, NULL, &o, NULL, &err);
}

static void test_init_failure_restart(void **unused) {
    (void)unused;
    rt_system_t *sys = sys_new(1);
    rt_actor_def_t flaky = {.kind = "flaky", .init = flaky_init, .receive = tactor_receive};
    rt_actor_def_t parent = {.kind = "parent", .init = parent_init, .receive = tactor_receive};
    llmos_error_t err;
    assert_int_equal(rt_spawn(sys, &parent, &flaky, NULL, NULL, &err), 0);
    uint64_t end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (atomic_load(&flaky_inits) < 3 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(atomic_load(&flaky_inits), 3);
    rt_ref_t r;
    end = llmos_now_ns() + WAIT_MS * 1000000ull;
    while (rt_lookup(sys, "flaky", &r) != 0 && llmos_now_ns() < end) llmos_sleep_ms(1);
    assert_int_equal(rt_lookup(sys, "flaky", &r), 0);
    rt_stats_t s = stats_of(sys);
    assert_int_equal(s.failures, 2);
    assert_int_equal(s.restarts, 2);
    assert_int_equal(s.actors, 2);
    rt_system_destroy(&sys);
}
