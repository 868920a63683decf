/*
 * actor.h — the llmos actor runtime: the only place mutable state lives.
 *
 * An actor is state + a receive function + a mailbox (an MPSC queue).  A pool
 * of worker threads (default: one per core) runs actors whose mailboxes are
 * not empty; an actor is never run by two threads at once, and handles at most
 * `batch` messages per turn before yielding the worker (fairness).  An actor
 * must not block in receive; work that blocks (the model engine loop, which
 * calls MPI and BLIS) runs in a *pinned* actor that owns a thread.
 *
 * Messages are rt_msg_t: one allocation holding header, strings and payload.
 * In-process they are passed by pointer; a message for another node
 * (to.node not 0 and not this node) goes to the remote router installed by
 * cluster/ (rt_system_set_remote), which serializes it into an Envelope.
 *
 * Asks: rt_ask() sends with a fresh correlation id; the reply arrives as an
 * ordinary message with RT_MSG_REPLY set and the same corr — or, when the
 * timeout fires first, as an error reply with status LLMOS_ETIMEDOUT. A late
 * real reply is dropped and counted.  rt_call() is the blocking form for
 * threads that are not actors (main, tests, pinned actors).
 *
 * Supervision: a child spawned with rt_spawn_child() is restarted by the
 * runtime when its init or receive fails (one-for-one), at most
 * max_restarts times within restart_period_ms; past that budget the child
 * stays dead and its parent fails in turn (escalation).  Watchers of an
 * actor that ends get MSG_DOWN with from = the dead actor, status = reason.
 * A restarted child keeps its id, name and mailbox (deinit then init run;
 * the message that failed, if an ask, is answered with the failure).  When
 * an actor ends or is restarted, its children are stopped (so a restarted
 * parent's init can spawn them again under the same names).
 *
 * Correlation ids that rt_ask / rt_call make have the top bit set.  A reply
 * carrying such a corr that no pending ask awaits is a late reply: dropped
 * and counted.  Replies to asks built by hand for rt_send_msg (corr below
 * 2^63) are delivered to receive as they are.
 *
 * Nothing is silently lost: an ask that cannot be delivered (unknown actor,
 * dead actor, expired deadline, no route) is answered with an error reply;
 * plain sends that cannot be delivered are counted in the system stats.
 *
 * Thread-safety: every rt_system_* / rt_send / rt_call / rt_timer_* /
 * rt_lookup function may be called from any thread.  rt_ctx_t functions only
 * from inside the callback that received the ctx.
 */
#ifndef LLMOS_RUNTIME_ACTOR_H
#define LLMOS_RUNTIME_ACTOR_H

#include "runtime/base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message types 0..255 are the runtime's; they match protos/llmos/envelope.proto MsgType. */
enum {
    RT_MSG_NONE = 0,
    RT_MSG_ERROR = 1,  /* a reply that only carries status + error */
    RT_MSG_PING = 2,
    RT_MSG_PONG = 3,
    RT_MSG_STATUS = 4,
    RT_MSG_DOWN = 5,   /* death notice: from = the dead actor, status = reason (0 = normal stop) */
    RT_MSG_TIMER = 6,  /* default timer type; payload = the 8-byte tag given to rt_timer_start */
    RT_MSG_STOP = 7,
};

/* An actor anywhere.  node 0 = this node.  id 0 = address by name.  `name`
 * is borrowed: it must stay valid for the duration of the call that takes
 * the ref (the runtime copies it into the message). */
typedef struct rt_ref {
    uint64_t node;
    uint64_t id;
    const char *name;
} rt_ref_t;

#define RT_REF_NONE ((rt_ref_t){0, 0, NULL})
static inline rt_ref_t rt_ref_local(uint64_t id) { return (rt_ref_t){0, id, NULL}; }
static inline rt_ref_t rt_ref_name(uint64_t node, const char *name) { return (rt_ref_t){node, 0, name}; }
static inline bool rt_ref_is_none(rt_ref_t r) { return r.id == 0 && (r.name == NULL || r.name[0] == 0); }

enum { RT_MSG_REPLY = 1u << 0 };

/* A message.  Everything it points to lives in the same allocation.  A
 * message handed to receive() is borrowed for the call; rt_msg_new()'s result
 * is owned by the caller until passed to a function that takes ownership. */
typedef struct rt_msg {
    struct rt_msg *next_;   /* runtime-private: mailbox link */
    rt_ref_t to;            /* to.name points inside this allocation (or NULL) */
    rt_ref_t from;          /* from.name likewise */
    uint32_t type;
    uint32_t flags;         /* RT_MSG_REPLY */
    uint64_t corr;          /* correlation id: non-zero on asks and their replies */
    uint64_t deadline_ms;   /* Unix wall-clock ms; 0 = none */
    uint64_t trace_id;
    int32_t status;         /* replies: 0 or an llmos_err */
    const char *error;      /* replies with status != 0: message (or NULL) */
    const char *tenant;     /* may be NULL */
    size_t len;             /* payload length */
    uint8_t *data;          /* payload (len bytes; NULL when len == 0) */
} rt_msg_t;

typedef struct rt_msg_init {
    rt_ref_t to, from;
    uint32_t type, flags;
    uint64_t corr, deadline_ms, trace_id;
    int32_t status;
    const char *error, *tenant;  /* copied; may be NULL */
    const void *data;            /* copied; may be NULL when len == 0 */
    size_t len;
} rt_msg_init_t;

/* One allocation with copies of every string and the payload. NULL on OOM.
 * Caller owns the result until it is given to rt_send_msg / rt_deliver. */
rt_msg_t *rt_msg_new(const rt_msg_init_t *init);
void rt_msg_free(rt_msg_t *msg);

typedef struct rt_system rt_system_t;
typedef struct rt_ctx rt_ctx_t;  /* valid only inside the callback it is given to */

typedef struct rt_actor_def {
    const char *kind;  /* for logs and status ("scheduler"); static string */
    /* Builds the state from arg, on the actor's thread, before the first
     * message and again after each restart.  0 or an llmos_err (= failure;
     * init then frees what it built: deinit is not called).  May be NULL. */
    int (*init)(rt_ctx_t *ctx, void *arg, void **state);
    /* Handles one borrowed message.  Returns 0, LLMOS_EUNKNOWNTYPE (the
     * runtime answers an ask with an error and counts it; the actor goes on),
     * or any other llmos_err: the actor failed; it is restarted or ends. */
    int (*receive)(rt_ctx_t *ctx, void *state, rt_msg_t *msg);
    /* Frees the state; after a failure, a stop, or at system shutdown. May be NULL. */
    void (*deinit)(rt_ctx_t *ctx, void *state);
    /* Pinned actors only, may be NULL: called on the actor's thread whenever
     * its mailbox is empty.  Return true when there is more work (it is called
     * again at once, after draining any new messages), false to sleep until
     * the next message. */
    bool (*idle)(rt_ctx_t *ctx, void *state);
} rt_actor_def_t;

typedef struct rt_spawn_opts {
    const char *name;            /* registered under this name; NULL = anonymous */
    bool pinned;                 /* own thread (may block) */
    uint32_t batch;              /* messages per turn; 0 = the system default (64).  After a
                                    batch the worker goes to the next actor waiting, if any */
    uint32_t max_restarts;       /* children: restart budget; 0 = default 3 */
    uint32_t restart_period_ms;  /* children: budget window; 0 = default 5000 */
    uint32_t mailbox_limit;      /* 0 = unbounded; past it sends get LLMOS_EOVERLOADED */
} rt_spawn_opts_t;

typedef struct rt_system_opts {
    uint64_t node_id;     /* 0 = random non-zero id */
    const char *node_name;/* for logs; NULL = the id in hex */
    uint32_t workers;     /* 0 = one per online core */
    uint32_t batch;       /* default messages per turn; 0 = 64 */
} rt_system_opts_t;

/* Counters; all monotonic since start. */
typedef struct rt_stats {
    uint64_t sent;            /* messages accepted by rt_send / rt_send_msg */
    uint64_t received;        /* messages handed to receive() */
    uint64_t unknown_actor;   /* addressed to no live actor */
    uint64_t unknown_type;    /* receive() said LLMOS_EUNKNOWNTYPE */
    uint64_t expired;         /* dequeued after their deadline */
    uint64_t late_replies;    /* replies after their ask timed out */
    uint64_t no_route;        /* for another node with no router or a failed route */
    uint64_t overloaded;      /* refused by a full mailbox */
    uint64_t failures;        /* actor failures (init/receive errors) */
    uint64_t restarts;        /* supervised restarts */
    uint64_t actors;          /* live actors now */
} rt_stats_t;

/* ---- system ---- */

/* Starts the worker pool.  Errors: LLMOS_ENOMEM, LLMOS_EIO (thread creation). */
int rt_system_new(const rt_system_opts_t *opts, rt_system_t **out, llmos_error_t *err);
/* Stops every actor (deinit runs, watchers are not notified), joins all
 * threads, frees pending messages and sets *sys to NULL.  NULL-safe.  Not
 * from a worker thread.  Waits for a pinned actor's current receive/idle
 * call to return: a pinned actor must not block forever. */
void rt_system_destroy(rt_system_t **sys);
uint64_t rt_system_node_id(const rt_system_t *sys);
/* True once rt_system_destroy has begun: long work in a pinned actor (a
 * query loop) polls it to return promptly, since destroy waits for it. */
bool rt_system_stopping(const rt_system_t *sys);
void rt_system_stats(rt_system_t *sys, rt_stats_t *out);

/* Calls fn once per live actor (registered name or NULL, id, kind).  fn runs
 * under the registry's read lock: it may send and look up, but must not
 * spawn, stop, register, watch or rt_call (they would wait for fn). */
void rt_system_foreach_actor(rt_system_t *sys,
                             void (*fn)(void *user, const char *name, uint64_t id, const char *kind),
                             void *user);

/* The remote router: called (on the sender's thread) with every message whose
 * to.node is neither 0 nor this node.  It takes ownership of msg and returns 0,
 * or returns an llmos_err without taking it (the runtime then answers an ask
 * with that error and frees the message).  Before the call the runtime sets
 * msg->from.node to this node's id when it was 0, so the far side can answer.
 * May be called with fn NULL (no router: such sends get LLMOS_EUNAVAILABLE). */
typedef int (*rt_remote_fn)(void *user, rt_msg_t *msg);
void rt_system_set_remote(rt_system_t *sys, rt_remote_fn fn, void *user);

/* Hands a message that arrived from the network to its local actor (by id or
 * name).  Takes ownership always.  If it cannot be delivered, an ask is
 * answered with an error reply (routed back through the remote router) and
 * the reason is counted; returns 0 when delivered, else that llmos_err. */
int rt_deliver(rt_system_t *sys, rt_msg_t *msg);

/* ---- actors ---- */

/* Spawns a top-level (unsupervised) actor.  arg is passed to init (borrowed
 * by the runtime; it must outlive the actor if init may be re-run).  def is
 * copied.  init runs later, on the actor's thread; a top-level actor whose
 * init fails ends (logged).  Errors: LLMOS_EINVAL (no receive), LLMOS_EEXIST
 * (name taken), LLMOS_ENOMEM, LLMOS_EIO, LLMOS_ESTATE (system shutting down). */
int rt_spawn(rt_system_t *sys, const rt_actor_def_t *def, void *arg, const rt_spawn_opts_t *opts,
             rt_ref_t *out, llmos_error_t *err);
/* Spawns a child supervised by the calling actor (see the top of this file). */
int rt_spawn_child(rt_ctx_t *ctx, const rt_actor_def_t *def, void *arg, const rt_spawn_opts_t *opts,
                   rt_ref_t *out, llmos_error_t *err);
/* Asks an actor to stop after the message it is handling: its deinit runs,
 * its name is freed (at once, by this call), asks still in its mailbox get
 * LLMOS_EUNAVAILABLE, and watchers get MSG_DOWN with status 0.
 * LLMOS_ENOTFOUND if it is not alive.  For a ref on another node, sends it
 * RT_MSG_STOP.  An actor that receives RT_MSG_STOP (from anywhere) stops the
 * same way, after answering it if it was an ask; receive never sees it. */
int rt_stop(rt_system_t *sys, rt_ref_t ref);

int rt_register(rt_system_t *sys, const char *name, rt_ref_t ref);  /* LLMOS_EEXIST if taken */
int rt_unregister(rt_system_t *sys, const char *name);
/* Local look-up: out->id of the actor registered as name.  LLMOS_ENOTFOUND. */
int rt_lookup(rt_system_t *sys, const char *name, rt_ref_t *out);

/* ---- messaging from anywhere ---- */

/* One-way message.  Copies payload.  0, LLMOS_ENOTFOUND (no such local
 * actor), LLMOS_EOVERLOADED (mailbox full), LLMOS_EUNAVAILABLE (no route), LLMOS_ENOMEM.
 * A mailbox limit never refuses replies or MSG_DOWN (they answer the actor).
 * Back-pressure: a thread that is not a worker (main, I/O threads, pinned
 * actors) sleeps ~50 us after a send that finds thousands of messages
 * already queued at the target, so floods cannot starve the consumer. */
int rt_send(rt_system_t *sys, rt_ref_t from, rt_ref_t to, uint32_t type, const void *data, size_t len);
/* Sends a prepared message; takes ownership always. */
int rt_send_msg(rt_system_t *sys, rt_msg_t *msg);
/* A deferred answer to an ask handled earlier, from anywhere: to the
 * asker kept from it, on its correlation id; a reply (RT_MSG_REPLY) when
 * is_reply, else one message of a stream.  status != 0 and error (copied,
 * may be NULL) make it an error answer.  Copies data.  Errors as rt_send. */
int rt_answer(rt_system_t *sys, rt_ref_t asker, uint64_t corr, uint32_t type, bool is_reply, int status,
              const char *error, const void *data, size_t len);
/* Blocking ask from a thread that is not a worker: waits for the reply.
 * On success *reply is the reply (caller frees with rt_msg_free); an error
 * reply is also returned as 0 with (*reply)->status != 0.  Returns
 * LLMOS_ETIMEDOUT if nothing came in time (timeout_ms 0 = wait forever),
 * the send error (LLMOS_ENOTFOUND, LLMOS_EOVERLOADED, LLMOS_EUNAVAILABLE) if
 * the ask could not be sent, LLMOS_ESTATE on a worker thread.  The message
 * carries deadline_ms = now + timeout_ms. */
int rt_call(rt_system_t *sys, rt_ref_t to, uint32_t type, const void *data, size_t len,
            uint32_t timeout_ms, rt_msg_t **reply, llmos_error_t *err);

/* ---- inside an actor ---- */

rt_ref_t rt_ctx_self(const rt_ctx_t *ctx);
rt_system_t *rt_ctx_system(const rt_ctx_t *ctx);
/* One-way send from this actor; inherits tenant, trace id and deadline of
 * the message being handled. Same errors as rt_send. */
int rt_tell(rt_ctx_t *ctx, rt_ref_t to, uint32_t type, const void *data, size_t len);
/* Async ask: *corr (may be NULL) receives the correlation id; the reply, or a
 * LLMOS_ETIMEDOUT error reply after timeout_ms, arrives as a message
 * (timeout_ms 0 = no timeout).  The message's deadline is the inherited one
 * or now + timeout_ms, whichever is earlier.  If the ask cannot be sent
 * (errors as rt_send) the error is returned and no reply will come. */
int rt_ask(rt_ctx_t *ctx, rt_ref_t to, uint32_t type, const void *data, size_t len, uint32_t timeout_ms,
           uint64_t *corr);
/* Replies to req (to req->from, same corr, RT_MSG_REPLY).  A reply to a plain
 * send (corr 0) is still delivered.  Errors as rt_send. */
int rt_reply(rt_ctx_t *ctx, const rt_msg_t *req, uint32_t type, const void *data, size_t len);
/* Hands msg on to `to` as it came: same sender, type, correlation id,
 * deadline, tenant, trace id and payload, so `to` answers the original
 * asker (a front actor dispatching to workers, a gateway checking requests
 * before the service).  An ask that cannot be delivered is answered to the
 * asker with the error by the runtime; the return value says so too.
 * Errors as rt_send. */
int rt_forward(rt_ctx_t *ctx, rt_ref_t to, const rt_msg_t *msg);
/* Error reply: type RT_MSG_ERROR, status, printf-style message. */
int rt_reply_error(rt_ctx_t *ctx, const rt_msg_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* MSG_DOWN to this actor when target ends (at once, with status
 * LLMOS_ENOTFOUND, if it is already dead).  Local targets only: a ref on
 * another node gives LLMOS_EUNSUPPORTED (cluster/ watches nodes). */
int rt_watch(rt_ctx_t *ctx, rt_ref_t target);
int rt_unwatch(rt_ctx_t *ctx, rt_ref_t target);
/* Stops this actor after the current message. */
void rt_ctx_stop_self(rt_ctx_t *ctx);

/* ---- timers ---- */

/* Delivers a message of `type` (payload: the 8-byte tag) to `to` after
 * delay_ms, then every period_ms if period_ms > 0.  *id (may be NULL) names
 * the timer for rt_timer_cancel.  A timer whose target is gone cancels itself. */
int rt_timer_start(rt_system_t *sys, rt_ref_t to, uint32_t delay_ms, uint32_t period_ms, uint32_t type,
                   uint64_t tag, uint64_t *id);
/* LLMOS_ENOTFOUND if it already fired (one-shot) or was canceled. */
int rt_timer_cancel(rt_system_t *sys, uint64_t id);

#endif
