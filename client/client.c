/*
 * client.c — libllmos-client (include/llmos/client.h).
 *
 * One ZeroMQ context per process, shared by every handle (reference
 * counted); one DEALER per handle.  The DEALER's routing id is 7 random
 * bytes: the node folds a routing id of at most 7 bytes into a "client
 * pseudo node id" and replies to it like to any remote actor (see
 * cluster/transport.h), so the client needs no registration.
 *
 * A call sends one Envelope (an ask: a fresh correlation id, a deadline)
 * and reads replies until the one with its correlation id arrives; anything
 * else (a late reply to an earlier call that timed out, a notice) is
 * dropped.  A streaming call (llmos_client_call_stream) also hands the
 * non-reply messages carrying its correlation id (GenerateChunk...) to the
 * caller's callback, in order, before the reply.  Every reply's size is checked before it is decoded.
 *
 * Asynchronous requests (client_async_send / client_async_collect, used by
 * llmos_client_submit_async / llmos_client_poll in jobs.c) live in a fixed
 * table of max_inflight slots allocated at connect.  An async correlation
 * id has its top bit set (sync ids start below 2^48 and count up, so the two
 * never meet) and carries its slot index in the low 20 bits and a sequence
 * number above, so a reply finds its slot in O(1) and a late reply to a
 * timed-out (freed, maybe reused) slot does not match.  Whoever reads the
 * socket — a sync call's wait_reply or a poll — files async replies into
 * their slot and onto the ready ring (completion order); a sync call never
 * drops them and a poll drops only stale sync replies.  Finished slots stay
 * taken until collected, so in-flight = sent but not yet handed back.
 *
 * Links protos, ZeroMQ and runtime/base only; never MPI, model, graph or
 * the runtime's workers.
 */
#include "llmos/client.h"
#include "client_internal.h"

#include "llmos/envelope.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/err.h"
#include "runtime/base/parse.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_FRAME ((size_t)64 << 20)
#define CLIENT_ACTOR_ID 1 /* our from.id: any non-zero id; the node keys us by routing id */
#define DEFAULT_MAX_INFLIGHT 1024u
#define MAX_INFLIGHT_CAP (1u << 20)
#define ASYNC_BIT (1ull << 63)
#define ASYNC_SLOT_BITS 20
#define ASYNC_SLOT_MASK ((1ull << ASYNC_SLOT_BITS) - 1)

enum { SLOT_FREE, SLOT_WAITING, SLOT_DONE };

typedef struct async_slot {
    uint64_t corr;          /* ASYNC_BIT | seq << 20 | index */
    uint64_t until_ns;      /* its timeout (monotonic) */
    void *user;
    Llmos__Envelope *env;   /* the reply once DONE (owned); NULL = timed out */
    int kind;
    int state;
} async_slot_t;

struct llmos_client {
    pthread_mutex_t lock;
    void *sock;
    char endpoint[256];
    char *tenant;
    uint32_t timeout_ms;
    size_t max_frame;
    uint64_t next_corr;
    /* async table (see the top of the file) */
    async_slot_t *slots;
    uint32_t cap, used;         /* slots; taken (waiting or done) */
    uint32_t *free_idx;         /* stack of free slot indices */
    uint32_t n_free;
    uint32_t *ready;            /* ring of DONE slot indices, completion order */
    uint32_t ready_head, ready_n;
    uint64_t async_seq;
    uint64_t next_deadline_ns;  /* earliest until_ns of a waiting slot (a lower bound) */
};

/* ---- the process's one context ---- */

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static void *ctx_shared;
static int ctx_refs;

static void *ctx_acquire(void) {
    pthread_mutex_lock(&ctx_lock);
    if (!ctx_shared) ctx_shared = zmq_ctx_new();
    void *c = ctx_shared;
    if (c) ctx_refs++;
    pthread_mutex_unlock(&ctx_lock);
    return c;
}

static void ctx_release(void) {
    pthread_mutex_lock(&ctx_lock);
    if (--ctx_refs == 0) {
        zmq_ctx_term(ctx_shared);
        ctx_shared = NULL;
    }
    pthread_mutex_unlock(&ctx_lock);
}

/* ---- errors ---- */

int client_err(llmos_client_error_t *err, int code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *llmos_client_strerror(int code) { return llmos_errname(code); }

/* ---- life cycle ---- */

/* Checks a "tcp://[SOURCE;]HOST:PORT" endpoint and resolves HOST now:
 * ZeroMQ would resolve it in the background and retry for ever, so a host
 * name that does not exist would show only as a timeout on the first call.
 * Errors: EINVAL (malformed, or no such host), EUNAVAILABLE (the name
 * cannot be resolved at the moment), EIO. */
static int endpoint_check(const char *endpoint, llmos_client_error_t *err) {
    if (!endpoint || strncmp(endpoint, "tcp://", 6) != 0 || strlen(endpoint) >= 256)
        return client_err(err, LLMOS_CLIENT_EINVAL, "endpoint '%.300s' is not tcp://HOST:PORT",
                          endpoint ? endpoint : "(null)");
    const char *hp = endpoint + 6, *semi = strchr(hp, ';');
    if (semi) hp = semi + 1; /* ZeroMQ's SOURCE;DEST form: DEST is what must resolve */
    const char *colon = strrchr(hp, ':'), *port = colon ? colon + 1 : "";
    uint32_t pn;
    if (!colon || colon == hp)
        return client_err(err, LLMOS_CLIENT_EINVAL, "endpoint '%s' is not tcp://HOST:PORT", endpoint);
    if (llmos_parse_u32("port", port, 1, 65535, 0, &pn, NULL))
        return client_err(err, LLMOS_CLIENT_EINVAL,
                          "endpoint '%s': port '%s' is not a number from 1 to 65535", endpoint, port);
    char host[256];
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') { /* [IPv6] */
        hp++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, hp);
    if (!host[0]) return client_err(err, LLMOS_CLIENT_EINVAL, "endpoint '%s' names no host", endpoint);
    if (strcmp(host, "*") == 0)
        return client_err(err, LLMOS_CLIENT_EINVAL, "endpoint '%s': '*' is for listening, not for connecting",
                          endpoint);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (res) freeaddrinfo(res);
    switch (rc) {
    case 0: return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_FAIL:
        return client_err(err, LLMOS_CLIENT_EINVAL, "endpoint %s: no host named '%s' (%s)", endpoint, host,
                          gai_strerror(rc));
    case EAI_AGAIN:
        return client_err(err, LLMOS_CLIENT_EUNAVAILABLE, "endpoint %s: cannot look up host '%s' now (%s)",
                          endpoint, host, gai_strerror(rc));
    case EAI_SYSTEM:
        return client_err(err, LLMOS_CLIENT_EIO, "endpoint %s: looking up host '%s': %s", endpoint, host,
                          strerror(errno));
    default:
        return client_err(err, LLMOS_CLIENT_EIO, "endpoint %s: looking up host '%s': %s", endpoint, host,
                          gai_strerror(rc));
    }
}

int llmos_client_connect(const char *endpoint, const llmos_client_opts_t *opts, llmos_client_t **out,
                         llmos_client_error_t *err) {
    *out = NULL;
    int erc = endpoint_check(endpoint, err);
    if (erc) return erc;
    llmos_client_t *c = calloc(1, sizeof *c);
    if (!c) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a client");
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_frame = opts && opts->max_frame ? opts->max_frame : DEFAULT_MAX_FRAME;
    c->cap = opts && opts->max_inflight ? opts->max_inflight : DEFAULT_MAX_INFLIGHT;
    if (c->cap > MAX_INFLIGHT_CAP) {
        free(c);
        return client_err(err, LLMOS_CLIENT_EINVAL, "max_inflight %u is over %u", opts->max_inflight, MAX_INFLIGHT_CAP);
    }
    c->slots = calloc(c->cap, sizeof *c->slots);
    c->free_idx = malloc(c->cap * sizeof *c->free_idx);
    c->ready = malloc(c->cap * sizeof *c->ready);
    if ((opts && opts->tenant && !(c->tenant = strdup(opts->tenant))) || !c->slots || !c->free_idx || !c->ready) {
        free(c->slots);
        free(c->free_idx);
        free(c->ready);
        free(c->tenant);
        free(c);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a client");
    }
    for (uint32_t i = 0; i < c->cap; i++) c->free_idx[i] = c->cap - 1 - i;
    c->n_free = c->cap;
    c->next_deadline_ns = UINT64_MAX;
    if (getrandom(&c->next_corr, sizeof c->next_corr, 0) != (ssize_t)sizeof c->next_corr) c->next_corr = llmos_now_ns();
    c->next_corr = (c->next_corr >> 16) | 1;
    void *ctx = ctx_acquire();
    if (!ctx) {
        free(c->tenant);
        free(c);
        return client_err(err, LLMOS_CLIENT_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
    }
    c->sock = zmq_socket(ctx, ZMQ_DEALER);
    int rc = 0;
    if (!c->sock) {
        rc = client_err(err, LLMOS_CLIENT_EIO, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    uint8_t rid[7];
    if (getrandom(rid, sizeof rid, 0) != (ssize_t)sizeof rid) {
        uint64_t v = llmos_now_ns();
        memcpy(rid, &v, sizeof rid);
    }
    rid[0] |= 1; /* routing ids must not start with a zero byte */
    int zero = 0;
    int64_t maxmsg = (int64_t)c->max_frame + 4096;
    /* room for every in-flight request and its reply: a full receive pipe
     * would make the node's ROUTER drop replies */
    int hwm = c->cap + 64 > 1000 ? (int)c->cap + 64 : 1000;
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, rid, sizeof rid);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_connect(c->sock, endpoint) != 0) {
        rc = client_err(err, LLMOS_CLIENT_EINVAL, "connect %s: %s", endpoint, zmq_strerror(errno));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    llmos_client_destroy(&c);
    return rc;
}

void llmos_client_destroy(llmos_client_t **cp) {
    if (!cp || !*cp) return;
    llmos_client_t *c = *cp;
    if (c->sock) zmq_close(c->sock);
    ctx_release();
    pthread_mutex_destroy(&c->lock);
    for (uint32_t i = 0; c->slots && i < c->cap; i++)
        if (c->slots[i].env) llmos__envelope__free_unpacked(c->slots[i].env, NULL);
    free(c->slots);
    free(c->free_idx);
    free(c->ready);
    free(c->tenant);
    free(c);
    *cp = NULL;
}

void llmos_client_reply_free(llmos_client_reply_t **r) {
    if (!r || !*r) return;
    free((*r)->error);
    free((*r)->data);
    free(*r);
    *r = NULL;
}

/* ---- requests ---- */

/* The node's error answer as the call's error: "ACTOR: MESSAGE", unless the
 * message already starts with the actor's name ("model: no model is
 * loaded"), which is not said twice. */
static int node_err(llmos_client_error_t *err, int code, const char *actor, const char *msg) {
    size_t n = strlen(actor);
    int named = strncmp(msg, actor, n) == 0 && (msg[n] == ':' || msg[n] == ' ' || msg[n] == '/');
    if (!named) {
        const char *slash = strchr(actor, '/'); /* "model/1" answering "model: ..." */
        size_t base = slash ? (size_t)(slash - actor) : 0;
        named = base && strncmp(msg, actor, base) == 0 && msg[base] == ':';
    }
    return named ? client_err(err, code, "%s", msg) : client_err(err, code, "%s: %s", actor, msg);
}

static int send_envelope(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                         uint64_t corr, uint64_t deadline_ms, int flags, llmos_client_error_t *err) {
    if (!actor || !actor[0]) return client_err(err, LLMOS_CLIENT_EINVAL, "no actor name given");
    if (len && !data) return client_err(err, LLMOS_CLIENT_EINVAL, "payload of %zu bytes with no data", len);
    if (len > c->max_frame) return client_err(err, LLMOS_CLIENT_ETOOBIG, "payload of %zu bytes is over the cap", len);
    Llmos__ActorRef to = LLMOS__ACTOR_REF__INIT, from = LLMOS__ACTOR_REF__INIT;
    to.name = (char *)actor;
    from.id = CLIENT_ACTOR_ID;
    Llmos__Envelope env = LLMOS__ENVELOPE__INIT;
    env.to = &to;
    env.from = &from;
    env.type = type;
    env.correlation_id = corr;
    env.deadline_ms = deadline_ms;
    if (c->tenant) env.tenant = c->tenant;
    env.payload.data = (uint8_t *)data;
    env.payload.len = len;
    size_t n = llmos__envelope__get_packed_size(&env);
    uint8_t stackbuf[1024];
    uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a %zu-byte request", n);
    llmos__envelope__pack(&env, buf);
    int rc = 0;
    if (zmq_send(c->sock, buf, n, flags) < 0) {
        if (errno == EAGAIN)
            rc = client_err(err, LLMOS_CLIENT_EOVERLOADED, "send queue to %s is full", c->endpoint);
        else
            rc = client_err(err, LLMOS_CLIENT_EIO, "send to %s: %s", c->endpoint, zmq_strerror(errno));
    }
    if (buf != stackbuf) free(buf);
    return rc;
}

int llmos_client_send(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      llmos_client_error_t *err) {
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "no client");
    pthread_mutex_lock(&c->lock);
    int rc = send_envelope(c, actor, type, data, len, 0, 0, ZMQ_DONTWAIT, err);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* ---- asynchronous requests (the slot table; see the top of the file) ---- */

/* Receives one message without blocking: 1 = one (*env its decoding, NULL
 * when it is over the cap or does not decode; *len its size), 0 = none
 * waiting, -errno = the socket failed. */
static int recv_one(llmos_client_t *c, Llmos__Envelope **env, size_t *len) {
    *env = NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        if (e == EINTR) continue;
        zmq_msg_close(&m);
        return e == EAGAIN ? 0 : -e;
    }
    *len = zmq_msg_size(&m);
    int more = zmq_msg_more(&m);
    if (*len <= c->max_frame) *env = llmos__envelope__unpack(NULL, *len, zmq_msg_data(&m));
    zmq_msg_close(&m);
    while (more) { /* a node never sends more than one frame to a client; drop extras */
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0) more = 0; else more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return 1;
}

/* Marks slot i done (env NULL = timed out) and queues it for collection. */
static void async_done(llmos_client_t *c, uint32_t i, Llmos__Envelope *env) {
    async_slot_t *s = &c->slots[i];
    s->state = SLOT_DONE;
    s->env = env;
    c->ready[(c->ready_head + c->ready_n++) % c->cap] = i;
}

/* 1 when env belongs to the async table (filed, or dropped as stale, or a
 * non-reply event: async requests do not stream); 0 = not an async id. */
static int async_file(llmos_client_t *c, Llmos__Envelope *env) {
    if (!(env->correlation_id & ASYNC_BIT)) return 0;
    uint64_t i = env->correlation_id & ASYNC_SLOT_MASK;
    if (env->is_reply && i < c->cap && c->slots[i].state == SLOT_WAITING && c->slots[i].corr == env->correlation_id)
        async_done(c, (uint32_t)i, env);
    else
        llmos__envelope__free_unpacked(env, NULL);
    return 1;
}

/* Times out every waiting slot whose deadline passed. */
static void async_expire(llmos_client_t *c, uint64_t now) {
    if (now < c->next_deadline_ns) return;
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < c->cap; i++) {
        async_slot_t *s = &c->slots[i];
        if (s->state != SLOT_WAITING) continue;
        if (s->until_ns <= now) async_done(c, i, NULL);
        else if (s->until_ns < next) next = s->until_ns;
    }
    c->next_deadline_ns = next;
}

int client_async_send(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      uint32_t timeout_ms, int kind, void *user, uint64_t *token, llmos_client_error_t *err) {
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "no client");
    if (timeout_ms == 0) timeout_ms = c->timeout_ms;
    pthread_mutex_lock(&c->lock);
    int rc;
    if (c->n_free == 0) {
        rc = client_err(err, LLMOS_CLIENT_EOVERLOADED, "%u requests in flight (the handle's max_inflight): poll first",
                  c->cap);
    } else {
        uint32_t i = c->free_idx[c->n_free - 1];
        uint64_t corr = ASYNC_BIT | ((++c->async_seq << ASYNC_SLOT_BITS) & ~ASYNC_BIT) | i;
        rc = send_envelope(c, actor, type, data, len, corr, llmos_wall_ms() + timeout_ms, ZMQ_DONTWAIT, err);
        if (rc == 0) {
            c->n_free--;
            c->used++;
            async_slot_t *s = &c->slots[i];
            *s = (async_slot_t){.corr = corr,
                                .until_ns = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u,
                                .user = user,
                                .kind = kind,
                                .state = SLOT_WAITING};
            if (s->until_ns < c->next_deadline_ns) c->next_deadline_ns = s->until_ns;
            *token = corr;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

uint32_t client_async_inflight(llmos_client_t *c) {
    pthread_mutex_lock(&c->lock);
    uint32_t n = c->used;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Reads every message waiting on the socket (without blocking) into the
 * table; 0 or EIO/ETOOBIG. */
static int async_drain(llmos_client_t *c, llmos_client_error_t *err) {
    for (;;) {
        Llmos__Envelope *env;
        size_t len;
        int got = recv_one(c, &env, &len);
        if (got == 0) return 0;
        if (got < 0) return client_err(err, LLMOS_CLIENT_EIO, "receive from %s: %s", c->endpoint, zmq_strerror(-got));
        if (!env) continue; /* undecodable or over the cap: whose it was cannot be known; its owner times out */
        if (!async_file(c, env)) llmos__envelope__free_unpacked(env, NULL); /* a sync call's late reply */
    }
}

int client_async_collect(llmos_client_t *c, uint32_t timeout_ms, client_async_fn fn, void *ctx, size_t max,
                         size_t *n, llmos_client_error_t *err) {
    *n = 0;
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "no client");
    pthread_mutex_lock(&c->lock);
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int rc = 0;
    for (;;) {
        rc = async_drain(c, err);
        if (rc) break;
        uint64_t now = llmos_now_ns();
        async_expire(c, now);
        while (c->ready_n && *n < max) {
            uint32_t i = c->ready[c->ready_head];
            c->ready_head = (c->ready_head + 1) % c->cap;
            c->ready_n--;
            async_slot_t *s = &c->slots[i];
            fn(ctx, *n, s->corr, s->user, s->kind, s->env);
            if (s->env) llmos__envelope__free_unpacked(s->env, NULL);
            *s = (async_slot_t){.state = SLOT_FREE};
            c->free_idx[c->n_free++] = i;
            c->used--;
            (*n)++;
        }
        if (*n || c->used == 0 || now >= until) break;
        uint64_t wake = until < c->next_deadline_ns ? until : c->next_deadline_ns;
        long ms = wake > now ? (long)((wake - now + 999999) / 1000000) : 0;
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, ms) < 0 && errno != EINTR) {
            rc = client_err(err, LLMOS_CLIENT_EIO, "poll: %s", zmq_strerror(errno));
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Waits for the reply to corr; 1 = got it (decoded into *out), 0 = time is up.
 * Non-reply messages carrying corr go to on_event (when not NULL) in arrival
 * order; its non-zero return abandons the wait with LLMOS_CLIENT_ECANCELED. */
static int wait_reply(llmos_client_t *c, uint64_t corr, uint64_t until_ns, llmos_client_event_fn on_event,
                      void *user, llmos_client_reply_t **out, llmos_client_error_t *err) {
    for (;;) {
        uint64_t now = llmos_now_ns();
        if (now >= until_ns) return 0;
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        long ms = (long)((until_ns - now + 999999) / 1000000);
        int n = zmq_poll(&it, 1, ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            return client_err(err, LLMOS_CLIENT_EIO, "poll: %s", zmq_strerror(errno));
        }
        if (n == 0) continue;
        Llmos__Envelope *env;
        size_t len;
        if (recv_one(c, &env, &len) <= 0) continue;
        if (len > c->max_frame) /* size checked before decoding: whose reply it was cannot be known */
            return client_err(err, LLMOS_CLIENT_ETOOBIG, "a %zu-byte reply from %s is over the %zu-byte cap", len,
                        c->endpoint, c->max_frame);
        if (!env) continue; /* not ours to report: keep waiting for the real reply */
        if (async_file(c, env)) continue;
        if (env->correlation_id == corr && !env->is_reply && on_event) {
            int stop = on_event(user, env->type, env->payload.data, env->payload.len);
            llmos__envelope__free_unpacked(env, NULL);
            if (stop) return client_err(err, LLMOS_CLIENT_ECANCELED, "call abandoned by its event callback (%d)", stop);
            continue;
        }
        if (env->correlation_id != corr || !env->is_reply) {
            llmos__envelope__free_unpacked(env, NULL);
            continue;
        }
        llmos_client_reply_t *r = calloc(1, sizeof *r);
        int rc = 1;
        if (!r) {
            rc = client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a reply");
        } else {
            r->type = env->type;
            r->status = env->status;
            r->len = env->payload.len;
            if (r->len && !(r->data = malloc(r->len))) rc = client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a reply");
            if (r->data) memcpy(r->data, env->payload.data, r->len);
            if (env->status && !(r->error = strdup(env->error && env->error[0] ? env->error : llmos_strerror(env->status))))
                rc = client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a reply");
        }
        llmos__envelope__free_unpacked(env, NULL);
        if (rc != 1) {
            llmos_client_reply_free(&r);
            return rc;
        }
        *out = r;
        return 1;
    }
}

int llmos_client_call(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      uint32_t timeout_ms, llmos_client_reply_t **reply, llmos_client_error_t *err) {
    return llmos_client_call_stream(c, actor, type, data, len, timeout_ms, NULL, NULL, reply, err);
}

int llmos_client_call_stream(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                             uint32_t timeout_ms, llmos_client_event_fn on_event, void *user,
                             llmos_client_reply_t **reply, llmos_client_error_t *err) {
    *reply = NULL;
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "no client");
    if (timeout_ms == 0) timeout_ms = c->timeout_ms;
    pthread_mutex_lock(&c->lock);
    uint64_t corr = c->next_corr++;
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int rc = send_envelope(c, actor, type, data, len, corr, llmos_wall_ms() + timeout_ms, ZMQ_DONTWAIT, err);
    if (rc == 0) {
        int got = wait_reply(c, corr, until, on_event, user, reply, err);
        if (got == 0)
            rc = client_err(err, LLMOS_CLIENT_ETIMEDOUT, "no answer from %s within %u ms (is the node running?)",
                      c->endpoint, timeout_ms);
        else if (got < 0)
            rc = got;
        else if ((*reply)->status != 0)
            rc = node_err(err, (*reply)->status, actor, (*reply)->error);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int llmos_client_ping(llmos_client_t *c, uint32_t timeout_ms, uint64_t *rtt_ns, llmos_client_error_t *err) {
    llmos_client_reply_t *r = NULL;
    uint64_t t0 = llmos_now_ns();
    int rc = llmos_client_call(c, "node", 2 /* MSG_PING */, NULL, 0, timeout_ms, &r, err);
    uint64_t t1 = llmos_now_ns();
    if (rc == 0 && r->type != 3 /* MSG_PONG */)
        rc = client_err(err, LLMOS_CLIENT_EFORMAT, "ping answered with message type %u, not PONG", r->type);
    if (rc == 0 && rtt_ns) *rtt_ns = t1 - t0;
    llmos_client_reply_free(&r);
    return rc;
}

/* ---- status ---- */

void llmos_client_status_free(llmos_client_status_t **sp) {
    if (!sp || !*sp) return;
    llmos_client_status_t *s = *sp;
    for (size_t i = 0; i < s->n_actors; i++) free(s->actors[i]);
    free(s->actors);
    free(s->errors);
    free(s);
    *sp = NULL;
}

uint64_t llmos_client_status_errors(const llmos_client_status_t *s, const char *kind) {
    for (size_t i = 0; i < s->n_errors; i++)
        if (strcmp(s->errors[i].kind, kind) == 0) return s->errors[i].count;
    return 0;
}

int llmos_client_status(llmos_client_t *c, uint32_t timeout_ms, llmos_client_status_t **out,
                        llmos_client_error_t *err) {
    *out = NULL;
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, "node", 4 /* MSG_STATUS */, NULL, 0, timeout_ms, &r, err);
    if (rc) {
        llmos_client_reply_free(&r);
        return rc;
    }
    Llmos__NodeStatus *ns = llmos__node_status__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    if (!ns) return client_err(err, LLMOS_CLIENT_EFORMAT, "status reply does not decode as NodeStatus");
    llmos_client_status_t *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->node_id = ns->node_id;
    snprintf(s->node_name, sizeof s->node_name, "%s", ns->node_name ? ns->node_name : "");
    snprintf(s->endpoint, sizeof s->endpoint, "%s", ns->endpoint ? ns->endpoint : "");
    s->uptime_ms = ns->uptime_ms;
    s->actor_count = ns->actor_count;
    s->msgs_sent = ns->msgs_sent;
    s->msgs_received = ns->msgs_received;
    s->net_msgs_in = ns->net_msgs_in;
    s->net_msgs_out = ns->net_msgs_out;
    s->net_frames_in = ns->net_frames_in;
    s->net_frames_out = ns->net_frames_out;
    s->peers = ns->peers;
    s->workers = ns->workers;
    if (ns->n_actors && !(s->actors = calloc(ns->n_actors, sizeof *s->actors))) goto oom;
    for (size_t i = 0; i < ns->n_actors; i++) {
        if (!(s->actors[i] = strdup(ns->actors[i]))) goto oom;
        s->n_actors++;
    }
    if (ns->n_errors && !(s->errors = calloc(ns->n_errors, sizeof *s->errors))) goto oom;
    for (size_t i = 0; i < ns->n_errors; i++) {
        snprintf(s->errors[i].kind, sizeof s->errors[i].kind, "%s", ns->errors[i]->kind);
        s->errors[i].count = ns->errors[i]->count;
    }
    s->n_errors = ns->n_errors;
    llmos__node_status__free_unpacked(ns, NULL);
    *out = s;
    return 0;
oom:
    llmos__node_status__free_unpacked(ns, NULL);
    llmos_client_status_free(&s);
    return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for the status");
}
