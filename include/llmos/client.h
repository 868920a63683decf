/*
 * llmos/client.h — libllmos-client: talk to an llmos node from any program.
 *
 * A client is a ZeroMQ DEALER connected to a node's ROUTER endpoint; every
 * request is one protobuf Envelope (protos/llmos/envelope.proto) and its
 * reply comes back on the same connection.  This header is the whole public
 * surface: it includes nothing of llmos's internals.
 *
 *   llmos_client_t *c;
 *   llmos_client_error_t err;
 *   if (llmos_client_connect("tcp://127.0.0.1:7070", NULL, &c, &err) != 0) { puts(err.msg); ... }
 *   uint64_t rtt_ns;
 *   llmos_client_ping(c, 1000, &rtt_ns, &err);
 *   llmos_client_destroy(&c);
 *
 * Errors: every function returns 0 or a negative status code (the values of
 * LLMOS_CLIENT_E*, which are llmos's project-wide codes) and fills *err (may
 * be NULL) with a message saying what went wrong.
 *
 * Thread-safety: a handle may be shared by threads; each call takes the
 * handle's lock for its whole duration, so calls on one handle run one at a
 * time.  For parallel requests use one handle per thread (handles are cheap:
 * one socket each; they share one ZeroMQ context per process).
 */
#ifndef LLMOS_CLIENT_H
#define LLMOS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (same values as llmos_err inside llmos). */
enum {
    LLMOS_CLIENT_OK = 0,
    LLMOS_CLIENT_EINVAL = -1,       /* bad argument */
    LLMOS_CLIENT_ENOMEM = -2,
    LLMOS_CLIENT_EIO = -3,          /* socket failure */
    LLMOS_CLIENT_EFORMAT = -4,      /* a reply that does not decode */
    LLMOS_CLIENT_ENOTFOUND = -5,    /* no such actor on the node */
    LLMOS_CLIENT_ETIMEDOUT = -6,    /* the node did not answer in time */
    LLMOS_CLIENT_EOVERLOADED = -7,
    LLMOS_CLIENT_ECANCELED = -8,    /* canceled (by the node, or by a callback) */
    LLMOS_CLIENT_EUNAVAILABLE = -9, /* node or peer down */
    LLMOS_CLIENT_ETOOBIG = -10,     /* over the frame cap */
    LLMOS_CLIENT_EUNKNOWNTYPE = -15,/* the actor does not handle that message type */
};

#define LLMOS_CLIENT_ERRMSG_MAX 512

typedef struct llmos_client_error {
    int code;                           /* 0 or an LLMOS_CLIENT_E* code */
    char msg[LLMOS_CLIENT_ERRMSG_MAX];  /* what went wrong */
} llmos_client_error_t;

typedef struct llmos_client llmos_client_t;

typedef struct llmos_client_opts {
    uint32_t timeout_ms;  /* default for calls given timeout 0; 0 = 5000 */
    size_t max_frame;     /* largest reply accepted; 0 = 64 MiB */
    const char *tenant;   /* sent with every request; NULL = none (copied) */
} llmos_client_opts_t;

/* Creates a handle connected to endpoint ("tcp://HOST:PORT").  Connecting
 * does not wait for the node: the first call finds out whether it answers.
 * opts may be NULL.  Errors: EINVAL (malformed endpoint), EIO, ENOMEM. */
int llmos_client_connect(const char *endpoint, const llmos_client_opts_t *opts, llmos_client_t **out,
                         llmos_client_error_t *err);
/* Closes the socket, frees the handle and sets *c to NULL.  NULL-safe. */
void llmos_client_destroy(llmos_client_t **c);

/* A reply.  Owned by the caller; free with llmos_client_reply_free. */
typedef struct llmos_client_reply {
    uint32_t type;       /* the reply's message type */
    int32_t status;      /* 0, or the error code the node answered with */
    char *error;         /* the node's message when status != 0, else NULL */
    uint8_t *data;       /* payload (NULL when len == 0) */
    size_t len;
} llmos_client_reply_t;

void llmos_client_reply_free(llmos_client_reply_t **r);

/* Generic request/response: sends `type` with payload (copied) to the actor
 * registered as `actor` on the connected node and waits up to timeout_ms
 * (0 = the handle's default) for its reply; the request carries that
 * deadline.  On 0, *reply is the reply.  When the node answers with an error
 * the call returns that code, fills err with the node's message and still
 * sets *reply (its status != 0).  Errors: ETIMEDOUT (no answer), EINVAL,
 * ETOOBIG (payload over the cap), EFORMAT (undecodable reply), EIO, ENOMEM,
 * and whatever the node answers (ENOTFOUND, EUNKNOWNTYPE, EUNAVAILABLE...). */
int llmos_client_call(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      uint32_t timeout_ms, llmos_client_reply_t **reply, llmos_client_error_t *err);

/* A message that belongs to a streaming call but is not its reply (e.g. a
 * GenerateChunk, type 257).  data (len bytes, the protobuf payload) is
 * borrowed for the call.  Return 0 to keep waiting, non-zero to abandon the
 * call. */
typedef int (*llmos_client_event_fn)(void *user, uint32_t type, const void *data, size_t len);

/* Like llmos_client_call, and calls on_event (may be NULL) for every
 * non-reply message carrying the ask's correlation id, in arrival order,
 * until the reply arrives; then returns like llmos_client_call.  Messages
 * for other (stale) correlation ids are dropped.  If on_event returns
 * non-zero the call returns LLMOS_CLIENT_ECANCELED at once (*reply NULL);
 * the node is not told (send a cancel request for that).  The timeout covers
 * the whole call, events included. */
int llmos_client_call_stream(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                             uint32_t timeout_ms, llmos_client_event_fn on_event, void *user,
                             llmos_client_reply_t **reply, llmos_client_error_t *err);

/* One-way message to `actor` (no reply awaited).  Errors: EINVAL, ETOOBIG,
 * EIO, EOVERLOADED (the socket's queue is full). */
int llmos_client_send(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      llmos_client_error_t *err);

/* Pings the node actor; *rtt_ns (may be NULL) gets the round-trip time. */
int llmos_client_ping(llmos_client_t *c, uint32_t timeout_ms, uint64_t *rtt_ns, llmos_client_error_t *err);

typedef struct llmos_client_count {
    char kind[32];
    uint64_t count;
} llmos_client_count_t;

/* A node's status.  Owned by the caller; free with llmos_client_status_free. */
typedef struct llmos_client_status {
    uint64_t node_id;
    char node_name[64];
    char endpoint[256];
    uint64_t uptime_ms;
    uint64_t actor_count;
    char **actors;          /* n_actors registered actors, "name (id, kind)" */
    size_t n_actors;
    uint64_t msgs_sent, msgs_received;          /* in-process, runtime */
    uint64_t net_msgs_in, net_msgs_out;         /* envelopes over the wire */
    uint64_t net_frames_in, net_frames_out;     /* ZeroMQ messages */
    llmos_client_count_t *errors;               /* n_errors counters by kind */
    size_t n_errors;
    uint32_t peers, workers;
} llmos_client_status_t;

int llmos_client_status(llmos_client_t *c, uint32_t timeout_ms, llmos_client_status_t **out,
                        llmos_client_error_t *err);
void llmos_client_status_free(llmos_client_status_t **s);
/* The count of one error kind ("decode", "too_big", ...); 0 if absent. */
uint64_t llmos_client_status_errors(const llmos_client_status_t *s, const char *kind);

/* A short name for a code ("ETIMEDOUT"); never NULL. */
const char *llmos_client_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
