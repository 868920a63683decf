/*
 * transport.c — see transport.h for the socket design.  This file is the I/O
 * thread: it alone touches the sockets and the peer table; other threads
 * only see the outgoing queue and the directory (node id -> alive), both
 * under `lock`.
 *
 * Delivery accounting: every envelope sent to a peer gets a sequence number
 * (per peer, per our incarnation); the peer acknowledges the highest number
 * it received in the header of everything it sends us (heartbeats included).
 * When the peer dies or restarts, the numbers it never acknowledged are
 * counted as `undelivered` — never silently forgotten.  (It may over-count:
 * an envelope that reached a peer just before it died is counted too.)
 */
#include "cluster/transport.h"

#include "cluster/wire.h"
#include "llmos/cluster.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#define DIR_MAX 256            /* directory entries (peers + ids of dead incarnations) */
#define QUEUE_LIMIT 65536      /* outgoing messages waiting for the I/O thread */
#define RECV_BURST 1024        /* inbound ZeroMQ messages per cycle, at most... */
#define RECV_ENVELOPES 8192    /* ...and about this many envelopes, so heartbeats and
                                  the outgoing queue are served even under a flood */
#define FLUSH_BYTES (256 << 10)/* send a peer's batch once it is this big */
#define PENDING_CAP (64 << 20) /* refuse messages for a peer with this much unsent */
#define HEADER_MAX 1024
#define ASKS_MAX (1u << 16)    /* asks in flight tracked per peer; past it they rely on their timeout */
#define ASK_DEFAULT_LIFE_NS (60ull * 1000000000ull) /* asks without a deadline: forget after 60 s */

/* An ask sent to a peer and not answered yet: if the peer dies or
 * restarts, its sender gets an EUNAVAILABLE reply at once instead of
 * waiting for its timeout. */
typedef struct ask_rec {
    uint64_t corr;          /* 0 = empty slot */
    uint64_t from_node, from_id;
    uint64_t expires_ns;
    char from_name[40];     /* empty when the sender has no name (or a longer one: then not tracked) */
} ask_rec_t;

typedef struct ask_table {
    ask_rec_t *slots;       /* open addressing, linear probing, power-of-two capacity */
    size_t cap, n;
} ask_table_t;

typedef struct peer {
    char endpoint[CL_ENDPOINT_MAX]; /* where our DEALER connects */
    uint64_t node_id;               /* 0 until heard from */
    uint64_t incarnation;
    int dir;                        /* index in t->dir, -1 until heard from */
    void *dealer;
    int alive;
    int blocked;                    /* last send got EAGAIN: poll for POLLOUT */
    uint64_t last_heard_ns, last_sent_ns;
    llmos_buf_t out;                   /* the batch being built */
    uint32_t out_count;
    uint64_t out_first_seq;
    uint64_t tx_seq;                /* next sequence number */
    uint64_t acked;                 /* highest number confirmed or counted undelivered */
    uint64_t rx_hi;                 /* highest number received from its current incarnation */
    ask_table_t asks;               /* asks in flight to it */
} peer_t;

typedef struct counters {
    atomic_uint_fast64_t frames_in, frames_out, msgs_in, msgs_out, decode, too_big, bad_frame, expired,
        wrong_node, no_route, client_gone, undelivered, peer_deaths, peer_restarts;
} counters_t;

struct cl_transport {
    rt_system_t *sys;
    uint64_t self;             /* node id */
    uint64_t incarnation;
    char node_name[CL_NAME_MAX];
    char endpoint[CL_ENDPOINT_MAX]; /* advertised */
    size_t max_frame;
    uint32_t heartbeat_ms, peer_timeout_ms;

    void *ctx, *router;
    int efd;
    pthread_t thread;
    atomic_int stop;
    int running;

    /* shared with runtime threads, under lock */
    pthread_mutex_t lock;
    rt_msg_t *qhead, *qtail;
    size_t qlen;
    int closed;
    cl_peer_info_t dir[DIR_MAX];
    size_t ndir;
    char adds[CL_PEERS_MAX][CL_ENDPOINT_MAX]; /* cl_transport_add_peer, for the I/O thread */
    size_t nadds;
    llmos_log_burst_t burst_big; /* outgoing messages over max_frame (runtime threads) */

    /* I/O thread only */
    peer_t *peers;
    size_t npeers, cappeers;
    cl_scratch_t scratch;
    llmos_buf_t cbuf;             /* client replies */
    llmos_log_burst_t burst_bad, burst_route;
    uint64_t next_tick_ns;
    int bye;                   /* stopping: headers say goodbye */

    counters_t c;
};

#define INC(f) atomic_fetch_add_explicit(&t->c.f, 1, memory_order_relaxed)
#define ADD(f, n) atomic_fetch_add_explicit(&t->c.f, (n), memory_order_relaxed)
#define GET(f) atomic_load_explicit(&t->c.f, memory_order_relaxed)

uint64_t cl_node_id_random(void) {
    uint64_t v = 0;
    while ((v & ~CL_CLIENT_NODE_BIT) == 0) {
        if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) v = llmos_now_ns() ^ ((uint64_t)getpid() << 32);
    }
    return v & ~CL_CLIENT_NODE_BIT;
}

/* ---- directory (under lock) ---- */

static cl_peer_info_t *dir_find(cl_transport_t *t, uint64_t node) {
    for (size_t i = 0; i < t->ndir; i++)
        if (t->dir[i].node_id == node) return &t->dir[i];
    return NULL;
}

/* Records node as alive (or dead) with its endpoint and name; returns its index. */
static int dir_set(cl_transport_t *t, uint64_t node, const char *endpoint, const char *name, int alive) {
    pthread_mutex_lock(&t->lock);
    cl_peer_info_t *d = dir_find(t, node);
    if (!d && t->ndir < DIR_MAX) d = &t->dir[t->ndir++];
    if (!d) { /* full: reuse the first dead entry */
        for (size_t i = 0; i < t->ndir && !d; i++)
            if (!t->dir[i].alive) d = &t->dir[i];
    }
    int idx = -1;
    if (d) {
        d->node_id = node;
        if (endpoint) snprintf(d->endpoint, sizeof d->endpoint, "%s", endpoint);
        if (name) snprintf(d->name, sizeof d->name, "%s", name);
        d->alive = alive;
        idx = (int)(d - t->dir);
    }
    pthread_mutex_unlock(&t->lock);
    return idx;
}

/* ---- failing a message: an answer to whoever can take one ---- */

static void route_out(cl_transport_t *t, rt_msg_t *msg);

static bool is_local(const cl_transport_t *t, uint64_t node) { return node == 0 || node == t->self; }

/* Sends an error to `to` about a message it sent to `about`: a reply with
 * corr for an ask, a notice with corr 0 for a plain send. */
static void send_error(cl_transport_t *t, rt_ref_t to, rt_ref_t about, uint64_t corr, uint64_t trace,
                       const char *tenant, int status, const char *text) {
    rt_msg_init_t in = {0};
    in.to = to;
    in.from = (rt_ref_t){t->self, about.id, about.name};
    in.type = RT_MSG_ERROR;
    in.flags = RT_MSG_REPLY;
    in.corr = corr;
    in.trace_id = trace;
    in.tenant = tenant;
    in.status = status;
    in.error = text;
    rt_msg_t *r = rt_msg_new(&in);
    if (!r) return;
    if (is_local(t, r->to.node))
        rt_deliver(t->sys, r);
    else
        route_out(t, r);
}

/* Nobody answers replies and errors (no error loops). */
static bool wants_answer(const rt_msg_t *m) {
    return !(m->flags & RT_MSG_REPLY) && m->type != RT_MSG_ERROR && !rt_ref_is_none(m->from);
}

/* Answers msg's sender with an error (see send_error) and frees msg. */
static void answer_error(cl_transport_t *t, rt_msg_t *msg, int status, const char *text) {
    if (wants_answer(msg)) send_error(t, msg->from, msg->to, msg->corr, msg->trace_id, msg->tenant, status, text);
    rt_msg_free(msg);
}

/* ---- asks in flight ---- */

static size_t ask_hash(uint64_t corr, size_t mask) { return (size_t)((corr * 0x9E3779B97F4A7C15ull) >> 17) & mask; }

static int ask_grow(ask_table_t *a) {
    size_t cap = a->cap ? a->cap * 2 : 64;
    ask_rec_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return LLMOS_ENOMEM;
    for (size_t i = 0; i < a->cap; i++) {
        if (!a->slots[i].corr) continue;
        size_t j = ask_hash(a->slots[i].corr, cap - 1);
        while (slots[j].corr) j = (j + 1) & (cap - 1);
        slots[j] = a->slots[i];
    }
    free(a->slots);
    a->slots = slots;
    a->cap = cap;
    return 0;
}

static void ask_track(ask_table_t *a, const rt_msg_t *m, uint64_t now) {
    if (a->n >= ASKS_MAX || (m->from.name && strlen(m->from.name) >= sizeof a->slots[0].from_name)) return;
    if ((a->n + 1) * 2 > a->cap && ask_grow(a) != 0) return;
    size_t mask = a->cap - 1, j = ask_hash(m->corr, mask);
    while (a->slots[j].corr && a->slots[j].corr != m->corr) j = (j + 1) & mask;
    ask_rec_t *r = &a->slots[j];
    if (!r->corr) a->n++;
    r->corr = m->corr;
    r->from_node = m->from.node;
    r->from_id = m->from.id;
    snprintf(r->from_name, sizeof r->from_name, "%s", m->from.name ? m->from.name : "");
    uint64_t wall = llmos_wall_ms();
    r->expires_ns = now + (m->deadline_ms > wall ? (m->deadline_ms - wall) * 1000000ull : ASK_DEFAULT_LIFE_NS);
}

/* Removes slot i, shifting later entries of its probe run back (no tombstones). */
static void ask_remove_at(ask_table_t *a, size_t i) {
    size_t mask = a->cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!a->slots[j].corr) break;
        size_t k = ask_hash(a->slots[j].corr, mask);
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            a->slots[i] = a->slots[j];
            i = j;
        }
    }
    a->slots[i].corr = 0;
    a->n--;
}

static void ask_answered(ask_table_t *a, uint64_t corr) {
    if (!a->n) return;
    size_t mask = a->cap - 1, j = ask_hash(corr, mask);
    while (a->slots[j].corr) {
        if (a->slots[j].corr == corr) {
            ask_remove_at(a, j);
            return;
        }
        j = (j + 1) & mask;
    }
}

/* Drops asks past their deadline (their senders got the runtime's timeout). */
static void ask_expire(ask_table_t *a, uint64_t now) {
    for (size_t i = 0; i < a->cap && a->n;) {
        if (a->slots[i].corr && a->slots[i].expires_ns < now)
            ask_remove_at(a, i); /* slot i may now hold a shifted entry: look again */
        else
            i++;
    }
}

static void send_error(cl_transport_t *t, rt_ref_t to, rt_ref_t about, uint64_t corr, uint64_t trace,
                       const char *tenant, int status, const char *text);

/* The peer died or restarted: every ask still in flight to it is answered. */
static void ask_fail_all(cl_transport_t *t, ask_table_t *a, uint64_t node, const char *why) {
    if (!a->n) return;
    char text[160];
    snprintf(text, sizeof text, "node %016" PRIx64 " %s before answering", node, why);
    size_t failed = a->n;
    for (size_t i = 0; i < a->cap; i++) {
        ask_rec_t r = a->slots[i];
        if (!r.corr) continue;
        a->slots[i].corr = 0;
        rt_ref_t to = {r.from_node, r.from_id, r.from_name[0] ? r.from_name : NULL};
        send_error(t, to, (rt_ref_t){node, 0, NULL}, r.corr, 0, NULL, LLMOS_EUNAVAILABLE, text);
    }
    a->n = 0;
    LLMOS_WARN("%zu ask(s) in flight to node %016" PRIx64 " answered with EUNAVAILABLE", failed, node);
}

/* ---- outgoing ---- */

static peer_t *peer_by_node(cl_transport_t *t, uint64_t node) {
    for (size_t i = 0; i < t->npeers; i++)
        if (t->peers[i].node_id == node) return &t->peers[i];
    return NULL;
}

static size_t header_pack(cl_transport_t *t, peer_t *p, uint8_t *buf) {
    Llmos__PeerHeader h = LLMOS__PEER_HEADER__INIT;
    h.node_id = t->self;
    h.incarnation = t->incarnation;
    h.endpoint = t->endpoint;
    h.node_name = t->node_name;
    h.seq = p->out_count ? p->out_first_seq : 0;
    h.count = p->out_count;
    h.ack_incarnation = p->incarnation;
    h.ack_seq = p->rx_hi;
    h.bye = t->bye;
    LLMOS_ASSERT(llmos__peer_header__get_packed_size(&h) <= HEADER_MAX);
    return llmos__peer_header__pack(&h, buf);
}

/* Sends the peer's batch (possibly empty: a heartbeat) without blocking.
 * On EAGAIN the batch stays and the peer is polled for POLLOUT. */
static void peer_flush(cl_transport_t *t, peer_t *p, uint64_t now) {
    uint8_t hdr[HEADER_MAX];
    size_t n = header_pack(t, p, hdr);
    if (zmq_send(p->dealer, hdr, n, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        p->blocked = 1;
        return;
    }
    /* Once the first part is queued, ZeroMQ takes the rest of the message. */
    if (zmq_send(p->dealer, p->out.data ? (void *)p->out.data : (void *)"", p->out.len, ZMQ_DONTWAIT) < 0)
        LLMOS_WARN("peer %s: second part refused: %s", p->endpoint, zmq_strerror(errno));
    INC(frames_out);
    ADD(msgs_out, p->out_count);
    p->out.len = 0;
    p->out_count = 0;
    p->blocked = 0;
    p->last_sent_ns = now;
}

static void client_send(cl_transport_t *t, uint64_t client, const rt_msg_t *msg) {
    uint8_t rid[7];
    size_t rlen = cl_client_node_to_rid(client, rid);
    t->cbuf.len = 0;
    if (rlen == 0 || cl_envelope_append(&t->cbuf, msg, t->self) != 0) {
        INC(client_gone);
        return;
    }
    if (zmq_send(t->router, rid, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(t->router, t->cbuf.data, t->cbuf.len, ZMQ_DONTWAIT) < 0) {
        INC(client_gone); /* EHOSTUNREACH (gone) or EAGAIN (not reading) */
        return;
    }
    INC(frames_out);
    INC(msgs_out);
}

/* Takes ownership of msg. */
static void route_out(cl_transport_t *t, rt_msg_t *msg) {
    uint64_t node = msg->to.node;
    if (node & CL_CLIENT_NODE_BIT) {
        client_send(t, node, msg);
        rt_msg_free(msg);
        return;
    }
    peer_t *p = peer_by_node(t, node);
    char text[160];
    if (!p || !p->alive) {
        INC(no_route);
        llmos_log_burst(&t->burst_route, LLMOS_LOG_WARN, "no route to node %016" PRIx64 " (unknown or dead)", node);
        snprintf(text, sizeof text, "node %016" PRIx64 " is unknown or dead", node);
        answer_error(t, msg, LLMOS_EUNAVAILABLE, text);
        return;
    }
    if (p->out.len > PENDING_CAP || p->out.len > t->max_frame / 2) {
        INC(no_route);
        snprintf(text, sizeof text, "node %016" PRIx64 " is not keeping up (%zu bytes unsent)", node, p->out.len);
        answer_error(t, msg, LLMOS_EOVERLOADED, text);
        return;
    }
    if (p->out_count == 0) p->out_first_seq = p->tx_seq;
    if (cl_batch_append(&p->out, msg, t->self) != 0) {
        answer_error(t, msg, LLMOS_ENOMEM, "no memory for the outgoing batch");
        return;
    }
    p->out_count++;
    p->tx_seq++;
    if (msg->corr && !(msg->flags & RT_MSG_REPLY)) ask_track(&p->asks, msg, llmos_now_ns());
    rt_msg_free(msg);
    if (p->out.len >= FLUSH_BYTES && !p->blocked) peer_flush(t, p, llmos_now_ns());
}

static int queue_push(cl_transport_t *t, rt_msg_t *msg);

/* A message whose envelope is over max_frame (the receiver would refuse
 * it): counted in too_big, never dropped silently.  A reply to an ask is
 * replaced by an error reply to the asker saying by how much the answer was
 * over (then 0: msg was answered and is freed here); the sender of anything
 * else gets LLMOS_ETOOBIG back (msg stays the caller's, and the runtime
 * answers an ask with it). */
static int refuse_too_big(cl_transport_t *t, rt_msg_t *msg, size_t size) {
    INC(too_big);
    pthread_mutex_lock(&t->lock);
    llmos_log_burst(&t->burst_big, LLMOS_LOG_WARN,
                    "a %zu-byte %s of type %" PRIu32 " to node %016" PRIx64 " is over the %zu-byte frame cap", size,
                    (msg->flags & RT_MSG_REPLY) ? "reply" : "message", msg->type, msg->to.node, t->max_frame);
    pthread_mutex_unlock(&t->lock);
    if ((msg->flags & RT_MSG_REPLY) && msg->corr && !rt_ref_is_none(msg->to)) {
        char text[200];
        snprintf(text, sizeof text,
                 "the answer (message type %" PRIu32 ") is %zu bytes, %zu bytes over the %zu-byte frame cap "
                 "(max_frame) of node %016" PRIx64,
                 msg->type, size, size - t->max_frame, t->max_frame, t->self);
        rt_msg_t *r = rt_msg_new(&(rt_msg_init_t){.to = msg->to,
                                                  .from = msg->from,
                                                  .type = RT_MSG_ERROR,
                                                  .flags = RT_MSG_REPLY,
                                                  .corr = msg->corr,
                                                  .trace_id = msg->trace_id,
                                                  .tenant = msg->tenant,
                                                  .status = LLMOS_ETOOBIG,
                                                  .error = text});
        if (r && r->from.node == 0) r->from.node = t->self;
        if (r && queue_push(t, r) == 0) {
            rt_msg_free(msg);
            return 0;
        }
        rt_msg_free(r);
    }
    return LLMOS_ETOOBIG;
}

/* The remote router: runs on runtime threads. */
static int remote_route(void *user, rt_msg_t *msg) {
    cl_transport_t *t = user;
    size_t size = cl_envelope_size(msg, t->self);
    if (size > t->max_frame) return refuse_too_big(t, msg, size); /* the receiver would refuse it */
    return queue_push(t, msg);
}

/* Hands msg to the I/O thread: 0 (taken) or an error (msg stays the caller's). */
static int queue_push(cl_transport_t *t, rt_msg_t *msg) {
    uint64_t node = msg->to.node;
    pthread_mutex_lock(&t->lock);
    if (t->closed) {
        pthread_mutex_unlock(&t->lock);
        return LLMOS_EUNAVAILABLE;
    }
    if (!(node & CL_CLIENT_NODE_BIT)) {
        cl_peer_info_t *d = dir_find(t, node);
        if (!d || !d->alive) {
            pthread_mutex_unlock(&t->lock);
            return LLMOS_EUNAVAILABLE;
        }
    }
    if (t->qlen >= QUEUE_LIMIT) {
        pthread_mutex_unlock(&t->lock);
        return LLMOS_EOVERLOADED;
    }
    msg->next_ = NULL; /* ownership is ours now: the link is free to use */
    if (t->qtail)
        t->qtail->next_ = msg;
    else
        t->qhead = msg;
    t->qtail = msg;
    bool wake = t->qlen++ == 0;
    pthread_mutex_unlock(&t->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(t->efd, &one, sizeof one);
        (void)w; /* the counter cannot overflow in practice; a failed wake is retried by the tick */
    }
    return 0;
}

/* Takes the whole outgoing queue at once (one lock per cycle, not per message). */
static rt_msg_t *queue_take(cl_transport_t *t) {
    pthread_mutex_lock(&t->lock);
    rt_msg_t *m = t->qhead;
    t->qhead = t->qtail = NULL;
    t->qlen = 0;
    pthread_mutex_unlock(&t->lock);
    return m;
}

static void drain_queue(cl_transport_t *t) {
    rt_msg_t *m = queue_take(t);
    while (m) {
        rt_msg_t *next = m->next_;
        m->next_ = NULL;
        route_out(t, m);
        m = next;
    }
}

/* ---- peers ---- */

static int dealer_open(cl_transport_t *t, peer_t *p, llmos_error_t *err) {
    p->dealer = zmq_socket(t->ctx, ZMQ_DEALER);
    if (!p->dealer) return llmos_error_set(err, LLMOS_EIO, "zmq_socket(DEALER): %s", zmq_strerror(errno));
    int one = 1, zero = 0, ivl = 100, ivl_max = 1000;
    zmq_setsockopt(p->dealer, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(p->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (zmq_connect(p->dealer, p->endpoint) != 0) {
        int e = errno;
        zmq_close(p->dealer);
        p->dealer = NULL;
        return llmos_error_set(err, LLMOS_EINVAL, "connect %s: %s", p->endpoint, zmq_strerror(e));
    }
    return 0;
}

static peer_t *peer_add(cl_transport_t *t, const char *endpoint, llmos_error_t *err) {
    if (t->npeers == t->cappeers) {
        size_t cap = t->cappeers ? t->cappeers * 2 : 8;
        peer_t *np = realloc(t->peers, cap * sizeof *np);
        if (!np) {
            llmos_error_set(err, LLMOS_ENOMEM, "no memory for peer %s", endpoint);
            return NULL;
        }
        t->peers = np;
        t->cappeers = cap;
    }
    peer_t *p = &t->peers[t->npeers];
    memset(p, 0, sizeof *p);
    snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    p->dir = -1;
    p->tx_seq = 1;
    llmos_buf_init(&p->out);
    if (dealer_open(t, p, err) != 0) return NULL;
    t->npeers++;
    return p;
}

/* Everything sent to p that it did not acknowledge is counted undelivered. */
static void peer_account_loss(cl_transport_t *t, peer_t *p, const char *why) {
    ask_fail_all(t, &p->asks, p->node_id, why);
    uint64_t sent = p->tx_seq - 1;
    uint64_t lost = sent > p->acked ? sent - p->acked : 0;
    p->acked = sent;
    p->out.len = 0;
    p->out_count = 0;
    if (lost) {
        ADD(undelivered, lost);
        LLMOS_WARN("node %016" PRIx64 " (%s) %s: %" PRIu64 " message(s) it never acknowledged are counted undelivered",
                   p->node_id, p->endpoint, why, lost);
    }
}

/* A peer that went silent (death) or said goodbye (clean shutdown). */
static void peer_gone(cl_transport_t *t, peer_t *p, bool said_bye) {
    p->alive = 0;
    if (said_bye) {
        LLMOS_INFO("node %016" PRIx64 " at %s left", p->node_id, p->endpoint);
    } else {
        INC(peer_deaths);
        LLMOS_WARN("node %016" PRIx64 " at %s is dead (silent for %u ms)", p->node_id, p->endpoint,
                   t->peer_timeout_ms);
    }
    dir_set(t, p->node_id, NULL, NULL, 0);
    peer_account_loss(t, p, said_bye ? "left" : "died");
}

/* A header from node hd arrived: find or create its peer, notice restarts. */
static peer_t *peer_heard(cl_transport_t *t, const Llmos__PeerHeader *hd, uint64_t now) {
    peer_t *p = peer_by_node(t, hd->node_id);
    if (!p) {
        for (size_t i = 0; i < t->npeers && !p; i++)
            if (strcmp(t->peers[i].endpoint, hd->endpoint) == 0) p = &t->peers[i];
    }
    if (!p) {
        llmos_error_t err;
        if (cl_endpoint_check(hd->endpoint, "peer header", &err) != 0) {
            INC(bad_frame);
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "node %016" PRIx64 ": %s", hd->node_id, err.msg);
            return NULL;
        }
        if (t->npeers >= DIR_MAX) { /* a flood of made-up nodes must not open sockets without end */
            INC(bad_frame);
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "node %016" PRIx64 " at %s refused: already %d peers",
                            hd->node_id, hd->endpoint, DIR_MAX);
            return NULL;
        }
        p = peer_add(t, hd->endpoint, &err);
        if (!p) {
            LLMOS_ERROR("%s", err.msg);
            return NULL;
        }
        LLMOS_INFO("new peer %016" PRIx64 " (%s) at %s", hd->node_id, hd->node_name, hd->endpoint);
    }
    bool restarted = false;
    if (p->node_id && p->node_id != hd->node_id) {
        /* Same endpoint, new id: a new process.  The old id stays dead. */
        LLMOS_WARN("node at %s restarted as %016" PRIx64 " (was %016" PRIx64 ")", p->endpoint, hd->node_id,
                   p->node_id);
        dir_set(t, p->node_id, NULL, NULL, 0);
        p->dir = -1;
        restarted = true;
    } else if (p->incarnation && p->incarnation != hd->incarnation) {
        LLMOS_WARN("node %016" PRIx64 " at %s restarted", hd->node_id, p->endpoint);
        restarted = true;
    }
    if (restarted) {
        INC(peer_restarts);
        peer_account_loss(t, p, "restarted");
        p->rx_hi = 0;
    }
    if (!p->alive || restarted || p->node_id != hd->node_id) {
        if (!p->alive && p->node_id == hd->node_id && !restarted && p->incarnation)
            LLMOS_INFO("node %016" PRIx64 " at %s is back", hd->node_id, p->endpoint);
        p->node_id = hd->node_id;
        p->alive = 1;
        p->dir = dir_set(t, hd->node_id, hd->endpoint, hd->node_name, 1);
    }
    p->incarnation = hd->incarnation;
    p->last_heard_ns = now;
    if (hd->ack_incarnation == t->incarnation && hd->ack_seq > p->acked && hd->ack_seq < p->tx_seq)
        p->acked = hd->ack_seq;
    if (hd->count) {
        uint64_t hi = hd->seq + hd->count - 1;
        if (hi > p->rx_hi) p->rx_hi = hi;
    }
    return p;
}

/* ---- incoming ---- */

/* Sends an error Envelope straight back to a ROUTER routing id. */
static void error_to_rid(cl_transport_t *t, const void *rid, size_t rlen, int status, const char *text) {
    rt_msg_t m;
    memset(&m, 0, sizeof m);
    m.to = (rt_ref_t){cl_client_node_from_rid(rid, rlen), 1, NULL};
    m.from = (rt_ref_t){t->self, 0, "node"};
    m.type = RT_MSG_ERROR;
    m.flags = RT_MSG_REPLY;
    m.status = status;
    m.error = text;
    t->cbuf.len = 0;
    if (cl_envelope_append(&t->cbuf, &m, t->self) != 0) return;
    if (zmq_send(t->router, rid, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(t->router, t->cbuf.data, t->cbuf.len, ZMQ_DONTWAIT) < 0)
        INC(client_gone);
    else
        INC(frames_out);
}

/* Checks and delivers one decoded inbound message (takes ownership). */
static void deliver_in(cl_transport_t *t, rt_msg_t *msg) {
    char text[200];
    INC(msgs_in);
    if (!is_local(t, msg->to.node)) {
        INC(wrong_node);
        llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "message for node %016" PRIx64 " arrived here", msg->to.node);
        snprintf(text, sizeof text, "node %016" PRIx64 " is not this node (%016" PRIx64 "); it may have restarted",
                 msg->to.node, t->self);
        answer_error(t, msg, LLMOS_EUNAVAILABLE, text);
        return;
    }
    if (msg->deadline_ms) {
        uint64_t now = llmos_wall_ms();
        if (msg->deadline_ms < now) {
            INC(expired);
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "message of type %u arrived %" PRIu64 " ms after its deadline",
                            msg->type, now - msg->deadline_ms);
            snprintf(text, sizeof text, "deadline passed %" PRIu64 " ms before the message arrived",
                     now - msg->deadline_ms);
            answer_error(t, msg, LLMOS_ETIMEDOUT, text);
            return;
        }
    }
    /* The runtime answers asks it cannot deliver; a plain send to no actor
     * gets a notice here so a remote sender hears of it too.  What the
     * notice needs is kept on the stack: the hot path allocates nothing. */
    bool notify = msg->corr == 0 && wants_answer(msg) && !is_local(t, msg->from.node);
    char from_name[128], to_name[128];
    rt_ref_t from = msg->from, to = msg->to;
    if (notify) {
        if (from.name && strlen(from.name) >= sizeof from_name) notify = false;
        if (from.name) from.name = strcpy(from_name, notify ? from.name : "");
    }
    if (to.name) { /* kept for the log line and the notice; no padding, the hot path pays per byte */
        size_t n = strnlen(to.name, sizeof to_name - 1);
        memcpy(to_name, to.name, n);
        to_name[n] = 0;
        to.name = to_name;
    }
    uint64_t trace = msg->trace_id;
    int rc = rt_deliver(t->sys, msg);
    if (rc == LLMOS_ENOTFOUND) {
        if (to.name)
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "message for an unknown actor '%s'", to.name);
        else
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "message for an unknown actor %" PRIu64, to.id);
        if (notify) {
            if (to.name)
                snprintf(text, sizeof text, "no actor named '%s' on node %016" PRIx64, to.name, t->self);
            else
                snprintf(text, sizeof text, "no actor %" PRIu64 " on node %016" PRIx64, to.id, t->self);
            send_error(t, from, to, 0, trace, NULL, LLMOS_ENOTFOUND, text);
        }
    }
}

static void on_client(cl_transport_t *t, zmq_msg_t *rid, zmq_msg_t *frame) {
    const uint8_t *r = zmq_msg_data(rid);
    size_t rlen = zmq_msg_size(rid);
    size_t len = zmq_msg_size(frame);
    char text[300];
    llmos_error_t err;
    rt_msg_t *msg = NULL;
    int rc = cl_envelope_decode(zmq_msg_data(frame), len, t->max_frame, &t->scratch, &msg, &err);
    if (rc) {
        if (rc == LLMOS_ETOOBIG)
            INC(too_big);
        else
            INC(decode);
        llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "client frame refused: %s", err.msg);
        error_to_rid(t, r, rlen, rc, err.msg);
        return;
    }
    uint64_t client = cl_client_node_from_rid(r, rlen);
    if (!client) {
        INC(bad_frame);
        snprintf(text, sizeof text, "client routing id of %zu bytes: at most 7 are supported", rlen);
        llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "%s", text);
        error_to_rid(t, r, rlen, LLMOS_EUNSUPPORTED, text);
        rt_msg_free(msg);
        return;
    }
    msg->from.node = client;
    if (msg->from.id == 0 && !msg->from.name) msg->from.id = 1;
    deliver_in(t, msg);
}

/* Returns the number of envelopes handled. */
static size_t on_peer(cl_transport_t *t, zmq_msg_t *rid, zmq_msg_t *hdr_frame, zmq_msg_t *batch) {
    size_t hlen = zmq_msg_size(hdr_frame);
    uint64_t now = llmos_now_ns();
    if (hlen > HEADER_MAX || hlen == 0) {
        INC(bad_frame);
        llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "two-frame message with a %zu-byte first frame (not a peer header)",
                        hlen);
        error_to_rid(t, zmq_msg_data(rid), zmq_msg_size(rid), LLMOS_EFORMAT,
                     "expected one frame (an Envelope) from a client, or PeerHeader + Batch from a node");
        return 0;
    }
    ProtobufCAllocator alloc = cl_scratch_allocator(&t->scratch);
    cl_scratch_reset(&t->scratch);
    Llmos__PeerHeader *hd = llmos__peer_header__unpack(&alloc, hlen, zmq_msg_data(hdr_frame));
    if (!hd || hd->node_id == 0 || (hd->node_id & CL_CLIENT_NODE_BIT) || hd->node_id == t->self ||
        hd->count > zmq_msg_size(batch)) {
        INC(bad_frame);
        llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "two-frame message whose first frame is not a valid PeerHeader");
        error_to_rid(t, zmq_msg_data(rid), zmq_msg_size(rid), LLMOS_EFORMAT,
                     "expected one frame (an Envelope) from a client, or PeerHeader + Batch from a node");
        cl_scratch_reset(&t->scratch);
        return 0;
    }
    peer_t *p = peer_heard(t, hd, now);
    uint64_t from_node = hd->node_id;
    bool bye = hd->bye;
    if (!p) return 0; /* hd stays in the scratch arena until the next decode resets it */
    const uint8_t *data = zmq_msg_data(batch);
    size_t len = zmq_msg_size(batch), pos = 0;
    if (len > 2 * t->max_frame) { /* a batch may hold up to max_frame/2 unsent plus one max_frame envelope */
        INC(too_big);
        llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "batch of %zu bytes from node %016" PRIx64 " is over the cap",
                        len, from_node);
        return 0;
    }
    size_t handled = 0;
    for (;;) {
        const uint8_t *env;
        size_t env_len;
        llmos_error_t err;
        int rc = cl_batch_next(data, len, &pos, t->max_frame, &env, &env_len, &err);
        if (rc == 0) break;
        if (rc < 0) {
            INC(decode);
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "node %016" PRIx64 ": %s", from_node, err.msg);
            break;
        }
        rt_msg_t *msg;
        rc = cl_envelope_decode(env, env_len, t->max_frame, &t->scratch, &msg, &err);
        if (rc) {
            if (rc == LLMOS_ETOOBIG)
                INC(too_big);
            else
                INC(decode);
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "node %016" PRIx64 ": %s", from_node, err.msg);
            continue;
        }
        if (msg->from.node == 0) msg->from.node = from_node;
        if ((msg->flags & RT_MSG_REPLY) && msg->corr) ask_answered(&p->asks, msg->corr);
        deliver_in(t, msg);
        handled++;
    }
    if (bye && p->alive) peer_gone(t, p, true);
    return handled;
}

static void recv_inbound(cl_transport_t *t) {
    size_t envelopes = 0;
    for (int i = 0; i < RECV_BURST && envelopes < RECV_ENVELOPES; i++) {
        zmq_msg_t part[3];
        size_t n = 0, total = 0;
        int more = 1;
        while (more) {
            zmq_msg_t tmp;
            zmq_msg_init(&tmp);
            /* The rest of a multipart message is already here: no wait. */
            if (zmq_msg_recv(&tmp, t->router, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&tmp);
                break;
            }
            more = zmq_msg_more(&tmp);
            total++;
            if (n < 3) {
                zmq_msg_init(&part[n]);
                zmq_msg_move(&part[n++], &tmp);
            }
            zmq_msg_close(&tmp);
        }
        if (total == 0) break;
        INC(frames_in);
        if (total != n || n < 2) {
            INC(bad_frame);
            llmos_log_burst(&t->burst_bad, LLMOS_LOG_WARN, "message with %zu frames refused", total - 1);
            error_to_rid(t, zmq_msg_data(&part[0]), zmq_msg_size(&part[0]), LLMOS_EFORMAT,
                         "expected one frame (an Envelope) from a client, or PeerHeader + Batch from a node");
        } else if (n == 2) {
            on_client(t, &part[0], &part[1]);
            envelopes++;
        } else {
            envelopes += on_peer(t, &part[0], &part[1], &part[2]) + 1;
        }
        for (size_t k = 0; k < n; k++) zmq_msg_close(&part[k]);
    }
}

/* ---- the I/O thread ---- */

static void take_added_peers(cl_transport_t *t) {
    char adds[CL_PEERS_MAX][CL_ENDPOINT_MAX];
    pthread_mutex_lock(&t->lock);
    size_t n = t->nadds;
    memcpy(adds, t->adds, n * sizeof adds[0]);
    t->nadds = 0;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        bool known = strcmp(adds[i], t->endpoint) == 0;
        for (size_t k = 0; k < t->npeers && !known; k++) known = strcmp(t->peers[k].endpoint, adds[i]) == 0;
        llmos_error_t err;
        if (!known && !peer_add(t, adds[i], &err)) LLMOS_ERROR("adding peer %s: %s", adds[i], err.msg);
    }
}

static void tick(cl_transport_t *t, uint64_t now) {
    uint64_t hb = (uint64_t)t->heartbeat_ms * 1000000u, timeout = (uint64_t)t->peer_timeout_ms * 1000000u;
    for (size_t i = 0; i < t->npeers; i++) {
        peer_t *p = &t->peers[i];
        if (p->alive && now - p->last_heard_ns > timeout) peer_gone(t, p, false);
        if (now - p->last_sent_ns >= hb) peer_flush(t, p, now);
        ask_expire(&p->asks, now);
    }
}

static void *io_main(void *arg) {
    cl_transport_t *t = arg;
    llmos_log_set_actor("io");
    zmq_pollitem_t *items = NULL;
    size_t cap = 0;
    while (!atomic_load(&t->stop)) {
        if (cap < t->npeers + 2) {
            cap = t->npeers + 8;
            zmq_pollitem_t *ni = realloc(items, cap * sizeof *ni);
            if (!ni) {
                LLMOS_ERROR("I/O thread: out of memory for poll items");
                llmos_sleep_ms(100);
                continue;
            }
            items = ni;
        }
        size_t n = 0;
        items[n++] = (zmq_pollitem_t){t->router, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){NULL, t->efd, ZMQ_POLLIN, 0};
        for (size_t i = 0; i < t->npeers; i++)
            if (t->peers[i].blocked) items[n++] = (zmq_pollitem_t){t->peers[i].dealer, 0, ZMQ_POLLOUT, 0};
        uint64_t now = llmos_now_ns();
        long wait_ms = now >= t->next_tick_ns ? 0 : (long)((t->next_tick_ns - now) / 1000000u) + 1;
        if (zmq_poll(items, (int)n, wait_ms) < 0 && errno != EINTR) {
            LLMOS_ERROR("zmq_poll: %s", zmq_strerror(errno));
            llmos_sleep_ms(10);
        }
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t r = read(t->efd, &v, sizeof v);
            (void)r;
        }
        take_added_peers(t);
        recv_inbound(t);
        drain_queue(t);
        now = llmos_now_ns();
        for (size_t i = 0; i < t->npeers; i++) {
            peer_t *p = &t->peers[i];
            if (p->out_count || p->blocked) peer_flush(t, p, now);
        }
        if (now >= t->next_tick_ns) {
            tick(t, now);
            t->next_tick_ns = now + (uint64_t)t->heartbeat_ms * 1000000u / 2;
        }
    }
    free(items);
    return NULL;
}

/* ---- life cycle ---- */

int cl_transport_new(rt_system_t *sys, const cl_config_t *cfg, cl_transport_t **out, llmos_error_t *err) {
    *out = NULL;
    uint64_t self = rt_system_node_id(sys);
    if (self == 0 || (self & CL_CLIENT_NODE_BIT))
        return llmos_error_set(err, LLMOS_EINVAL, "node id %016" PRIx64 " is 0 or has bit 63 set", self);
    int rc = cl_endpoint_check(cfg->listen, "listen", err);
    if (rc) return rc;
    cl_transport_t *t = calloc(1, sizeof *t);
    if (!t) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for the transport");
    t->sys = sys;
    t->self = self;
    t->efd = -1;
    while (t->incarnation == 0) t->incarnation = cl_node_id_random();
    if (cfg->node_name[0])
        snprintf(t->node_name, sizeof t->node_name, "%s", cfg->node_name);
    else
        snprintf(t->node_name, sizeof t->node_name, "%016" PRIx64, self);
    t->max_frame = cfg->max_frame ? cfg->max_frame : CL_MAX_FRAME_DEFAULT;
    t->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : 250;
    t->peer_timeout_ms = cfg->peer_timeout_ms ? cfg->peer_timeout_ms : 2000;
    pthread_mutex_init(&t->lock, NULL);
    llmos_buf_init(&t->cbuf);
    if (cl_scratch_init(&t->scratch, 64 << 10) != 0) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the decode arena");
        goto fail;
    }
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->efd < 0) {
        rc = llmos_error_set(err, LLMOS_EIO, "eventfd: %s", strerror(errno));
        goto fail;
    }
    t->ctx = zmq_ctx_new();
    if (!t->ctx) {
        rc = llmos_error_set(err, LLMOS_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto fail;
    }
    t->router = zmq_socket(t->ctx, ZMQ_ROUTER);
    if (!t->router) {
        rc = llmos_error_set(err, LLMOS_EIO, "zmq_socket(ROUTER): %s", zmq_strerror(errno));
        goto fail;
    }
    int one = 1, zero = 0;
    int64_t maxmsg = (int64_t)t->max_frame * 2;
    zmq_setsockopt(t->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(t->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(t->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(t->router, cfg->listen) != 0) {
        rc = llmos_error_set(err, LLMOS_EIO, "cannot listen on %s: %s", cfg->listen, zmq_strerror(errno));
        goto fail;
    }
    char bound[CL_ENDPOINT_MAX] = {0};
    size_t blen = sizeof bound;
    zmq_getsockopt(t->router, ZMQ_LAST_ENDPOINT, bound, &blen);
    snprintf(t->endpoint, sizeof t->endpoint, "%s", cfg->advertise[0] ? cfg->advertise : bound);
    if (strstr(t->endpoint, "0.0.0.0") || strstr(t->endpoint, "://*"))
        LLMOS_WARN("listening on %s: peers cannot connect back to a wildcard address; set `advertise`", t->endpoint);
    for (uint32_t i = 0; i < cfg->npeers; i++) {
        if (strcmp(cfg->peers[i], t->endpoint) == 0 || strcmp(cfg->peers[i], cfg->listen) == 0) continue;
        if (!peer_add(t, cfg->peers[i], err)) {
            rc = err ? err->code : LLMOS_EIO;
            goto fail;
        }
    }
    if (pthread_create(&t->thread, NULL, io_main, t) != 0) {
        rc = llmos_error_set(err, LLMOS_EIO, "cannot start the I/O thread");
        goto fail;
    }
    t->running = 1;
    rt_system_set_remote(sys, remote_route, t);
    LLMOS_INFO("node %016" PRIx64 " (%s) listening on %s, %u peer(s) configured", self, t->node_name, t->endpoint,
               cfg->npeers);
    *out = t;
    return 0;
fail:
    cl_transport_destroy(&t);
    return rc;
}

void cl_transport_stop(cl_transport_t *t) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    bool was_closed = t->closed;
    t->closed = 1;
    pthread_mutex_unlock(&t->lock);
    if (was_closed) return;
    if (t->running) {
        atomic_store(&t->stop, 1);
        uint64_t one = 1;
        ssize_t w = write(t->efd, &one, sizeof one);
        (void)w;
        pthread_join(t->thread, NULL);
        t->running = 0;
    }
    /* What is still queued is answered (sockets are still open, the I/O
     * thread is gone: this thread may use them now). */
    rt_msg_t *m = queue_take(t);
    while (m) {
        rt_msg_t *next = m->next_;
        INC(no_route);
        answer_error(t, m, LLMOS_EUNAVAILABLE, "the node is shutting down");
        m = next;
    }
    /* Last batches and a goodbye, so peers stop sending at once instead of
     * waiting for the heartbeat timeout; give ZeroMQ a moment to write them. */
    t->bye = 1;
    int linger = 200;
    for (size_t i = 0; i < t->npeers; i++) {
        peer_t *p = &t->peers[i];
        if (!p->dealer) continue;
        if (p->alive) {
            peer_flush(t, p, llmos_now_ns());
            zmq_setsockopt(p->dealer, ZMQ_LINGER, &linger, sizeof linger);
        }
        zmq_close(p->dealer);
        p->dealer = NULL;
    }
    if (t->router) zmq_close(t->router);
    t->router = NULL;
    if (t->ctx) zmq_ctx_term(t->ctx);
    t->ctx = NULL;
}

void cl_transport_destroy(cl_transport_t **tp) {
    if (!tp || !*tp) return;
    cl_transport_t *t = *tp;
    cl_transport_stop(t);
    for (size_t i = 0; i < t->npeers; i++) {
        llmos_buf_deinit(&t->peers[i].out);
        free(t->peers[i].asks.slots);
    }
    free(t->peers);
    llmos_buf_deinit(&t->cbuf);
    cl_scratch_deinit(&t->scratch);
    if (t->efd >= 0) close(t->efd);
    pthread_mutex_destroy(&t->lock);
    free(t);
    *tp = NULL;
}

const char *cl_transport_endpoint(const cl_transport_t *t) { return t->endpoint; }

void cl_transport_stats(cl_transport_t *t, cl_stats_t *o) {
    memset(o, 0, sizeof *o);
    o->frames_in = GET(frames_in);
    o->frames_out = GET(frames_out);
    o->msgs_in = GET(msgs_in);
    o->msgs_out = GET(msgs_out);
    o->decode = GET(decode);
    o->too_big = GET(too_big);
    o->bad_frame = GET(bad_frame);
    o->expired = GET(expired);
    o->wrong_node = GET(wrong_node);
    o->no_route = GET(no_route);
    o->client_gone = GET(client_gone);
    o->undelivered = GET(undelivered);
    o->peer_deaths = GET(peer_deaths);
    o->peer_restarts = GET(peer_restarts);
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->ndir; i++) {
        if (t->dir[i].alive) o->peers_alive++;
    }
    o->peers_known = (uint32_t)t->ndir;
    pthread_mutex_unlock(&t->lock);
}

int cl_transport_add_peer(cl_transport_t *t, const char *endpoint, llmos_error_t *err) {
    int rc = cl_endpoint_check(endpoint, "peer", err);
    if (rc) return rc;
    pthread_mutex_lock(&t->lock);
    if (t->closed)
        rc = llmos_error_set(err, LLMOS_EUNAVAILABLE, "the transport is stopped");
    else if (t->nadds == CL_PEERS_MAX)
        rc = llmos_error_set(err, LLMOS_EOVERLOADED, "more than %d peer additions pending", CL_PEERS_MAX);
    else
        snprintf(t->adds[t->nadds++], CL_ENDPOINT_MAX, "%s", endpoint);
    pthread_mutex_unlock(&t->lock);
    if (rc == 0) {
        uint64_t one = 1;
        ssize_t w = write(t->efd, &one, sizeof one);
        (void)w;
    }
    return rc;
}

size_t cl_transport_peers(cl_transport_t *t, cl_peer_info_t *out, size_t cap) {
    pthread_mutex_lock(&t->lock);
    size_t n = t->ndir;
    for (size_t i = 0; i < n && i < cap; i++) out[i] = t->dir[i];
    pthread_mutex_unlock(&t->lock);
    return n;
}

int cl_transport_wait_peer(cl_transport_t *t, const char *endpoint, uint32_t timeout_ms, uint64_t *node_id,
                           llmos_error_t *err) {
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < t->ndir; i++) {
            if (t->dir[i].alive && strcmp(t->dir[i].endpoint, endpoint) == 0) {
                if (node_id) *node_id = t->dir[i].node_id;
                pthread_mutex_unlock(&t->lock);
                return 0;
            }
        }
        pthread_mutex_unlock(&t->lock);
        if (llmos_now_ns() > until)
            return llmos_error_set(err, LLMOS_ETIMEDOUT, "peer %s not reachable within %u ms", endpoint, timeout_ms);
        llmos_sleep_ms(5);
    }
}

int cl_transport_wait_peers(cl_transport_t *t, uint32_t count, uint32_t timeout_ms, llmos_error_t *err) {
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        cl_stats_t st;
        cl_transport_stats(t, &st);
        if (st.peers_alive >= count) return 0;
        if (llmos_now_ns() > until)
            return llmos_error_set(err, LLMOS_ETIMEDOUT, "%u of %u peers alive after %u ms", st.peers_alive, count,
                                   timeout_ms);
        llmos_sleep_ms(5);
    }
}
