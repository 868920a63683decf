/*
 * node.c — the built-in actors of every node (see node.h).  Thin: status
 * comes from rt_system_stats and cl_transport_stats; nothing here blocks.
 */
#include "actors/node.h"

#include "llmos/envelope.pb-c.h"
#include "llmos/job.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- node ---- */

typedef struct actor_list {
    char **names;
    size_t n, cap;
    uint64_t count;
    int oom;
} actor_list_t;

static void collect_actor(void *user, const char *name, uint64_t id, const char *kind) {
    actor_list_t *l = user;
    l->count++;
    if (!name || l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->names, cap * sizeof *p);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->names = p;
        l->cap = cap;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s (%" PRIu64 ", %s)", name, id, kind ? kind : "?");
    l->names[l->n] = strdup(buf);
    if (!l->names[l->n])
        l->oom = 1;
    else
        l->n++;
}

int actors_node_status_pack(actors_node_env_t *env, uint8_t **out, size_t *len, llmos_error_t *err) {
    *out = NULL;
    *len = 0;
    rt_stats_t rs;
    rt_system_stats(env->sys, &rs);
    cl_stats_t ts;
    memset(&ts, 0, sizeof ts);
    if (env->transport) cl_transport_stats(env->transport, &ts);

    Llmos__NodeStatus st = LLMOS__NODE_STATUS__INIT;
    st.node_id = rt_system_node_id(env->sys);
    st.node_name = (char *)(env->node_name ? env->node_name : "");
    st.endpoint = (char *)(env->transport ? cl_transport_endpoint(env->transport) : "");
    st.uptime_ms = (llmos_now_ns() - env->start_ns) / 1000000u;
    actor_list_t l = {0};
    rt_system_foreach_actor(env->sys, collect_actor, &l);
    st.actors = l.names;
    st.n_actors = l.n;
    st.actor_count = l.count;
    st.msgs_sent = rs.sent;
    st.msgs_received = rs.received;
    st.peers = ts.peers_alive;
    st.workers = env->workers;
    st.net_msgs_in = ts.msgs_in;
    st.net_msgs_out = ts.msgs_out;
    st.net_frames_in = ts.frames_in;
    st.net_frames_out = ts.frames_out;

    /* Errors by kind: the runtime's and the wire's, zeros included so a
     * reader sees every kind that exists. */
    struct {
        const char *kind;
        uint64_t count;
    } kinds[] = {
        {"decode", ts.decode},
        {"too_big", ts.too_big},
        {"bad_frame", ts.bad_frame},
        {"unknown_actor", rs.unknown_actor},
        {"unknown_type", rs.unknown_type},
        {"expired", rs.expired + ts.expired},
        {"wrong_node", ts.wrong_node},
        {"no_route", rs.no_route + ts.no_route},
        {"undelivered", ts.undelivered},
        {"client_gone", ts.client_gone},
        {"overloaded", rs.overloaded},
        {"late_replies", rs.late_replies},
        {"actor_failures", rs.failures},
        {"actor_restarts", rs.restarts},
        {"peer_deaths", ts.peer_deaths},
        {"peer_restarts", ts.peer_restarts},
    };
    enum { NKINDS = sizeof kinds / sizeof kinds[0] };
    Llmos__ErrorCount ec[NKINDS];
    Llmos__ErrorCount *ecp[NKINDS];
    for (size_t i = 0; i < NKINDS; i++) {
        Llmos__ErrorCount e = LLMOS__ERROR_COUNT__INIT;
        e.kind = (char *)kinds[i].kind;
        e.count = kinds[i].count;
        ec[i] = e;
        ecp[i] = &ec[i];
    }
    st.errors = ecp;
    st.n_errors = NKINDS;

    int rc = 0;
    size_t n = llmos__node_status__get_packed_size(&st);
    uint8_t *buf = l.oom ? NULL : malloc(n ? n : 1);
    if (!buf)
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a %zu-byte status", n);
    else {
        *len = llmos__node_status__pack(&st, buf);
        *out = buf;
    }
    for (size_t i = 0; i < l.n; i++) free(l.names[i]);
    free(l.names);
    return rc;
}

static int node_init(rt_ctx_t *ctx, void *arg, void **state) {
    *state = arg;
    return 0;
}

static int node_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    actors_node_env_t *env = state;
    if (msg->flags & RT_MSG_REPLY) return 0; /* stray replies and error notices */
    switch (msg->type) {
    case RT_MSG_PING:
        rt_reply(ctx, msg, RT_MSG_PONG, msg->data, msg->len);
        return 0;
    case RT_MSG_STATUS: {
        uint8_t *buf;
        size_t len;
        llmos_error_t err;
        if (actors_node_status_pack(env, &buf, &len, &err) != 0) {
            rt_reply_error(ctx, msg, err.code, "%s", err.msg);
            return 0;
        }
        rt_reply(ctx, msg, RT_MSG_STATUS, buf, len);
        free(buf);
        return 0;
    }
    default:
        return LLMOS_EUNKNOWNTYPE;
    }
}

static const rt_actor_def_t node_def = {"node", node_init, node_receive, NULL, NULL};

/* ---- echo ---- */

/* Fault injection for crash tests: with LLMOS_TEST_CRASH_ON_ECHO=TEXT in
 * its environment, the node aborts when an echo task's text is TEXT, as a
 * bug that kills the node inside a task would (tests/jobs/test_quarantine.sh).
 * Unset, echo only answers. */
static int echo_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    const char *crash_on = state;
    if (msg->flags & RT_MSG_REPLY) return 0;
    if (crash_on && msg->type == LLMOS__JOB_MSG_TYPE__JOB_MSG_ECHO) {
        Llmos__EchoTask *e = llmos__echo_task__unpack(NULL, msg->len, msg->data);
        bool hit = e && strcmp(e->text, crash_on) == 0;
        if (e) llmos__echo_task__free_unpacked(e, NULL);
        if (hit) {
            LLMOS_ERROR("echo: LLMOS_TEST_CRASH_ON_ECHO matched: aborting the node on purpose");
            abort();
        }
    }
    rt_reply(ctx, msg, msg->type, msg->data, msg->len);
    return 0;
}

static int echo_init(rt_ctx_t *ctx, void *arg, void **state) {
    const char *crash_on = getenv("LLMOS_TEST_CRASH_ON_ECHO");
    *state = crash_on && crash_on[0] ? (void *)crash_on : NULL;
    if (*state) LLMOS_WARN("echo: LLMOS_TEST_CRASH_ON_ECHO is set: an echo of '%s' aborts this node", crash_on);
    return 0;
}

static const rt_actor_def_t echo_def = {"echo", echo_init, echo_receive, NULL, NULL};

/* ---- sink ---- */

typedef struct sink {
    uint64_t count;
} sink_t;

static int sink_init(rt_ctx_t *ctx, void *arg, void **state) {
    sink_t *s = calloc(1, sizeof *s);
    if (!s) return LLMOS_ENOMEM;
    *state = s;
    return 0;
}

static int sink_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    sink_t *s = state;
    bool control = !(msg->flags & RT_MSG_REPLY); /* replies (echo's, say) are counted like any message */
    if (control && msg->type == ACTORS_MSG_SINK_COUNT) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++) le[i] = (uint8_t)(s->count >> (8 * i));
        rt_reply(ctx, msg, ACTORS_MSG_SINK_COUNT, le, sizeof le);
    } else if (control && msg->type == ACTORS_MSG_SINK_RESET) {
        s->count = 0;
        if (msg->corr) rt_reply(ctx, msg, ACTORS_MSG_SINK_RESET, NULL, 0);
    } else {
        s->count++;
    }
    return 0;
}

static void sink_deinit(rt_ctx_t *ctx, void *state) { free(state); }

static const rt_actor_def_t sink_def = {"sink", sink_init, sink_receive, sink_deinit, NULL};

int actors_node_start(actors_node_env_t *env, llmos_error_t *err) {
    struct {
        const rt_actor_def_t *def;
        void *arg;
    } all[] = {{&node_def, env}, {&echo_def, NULL}, {&sink_def, NULL}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        rt_spawn_opts_t o = {.name = all[i].def->kind};
        rt_ref_t ref;
        int rc = rt_spawn(env->sys, all[i].def, all[i].arg, &o, &ref, err);
        if (rc) return llmos_error_prefix(err, "starting the %s actor: ", all[i].def->kind);
    }
    return 0;
}
