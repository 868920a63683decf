/*
 * transport.h — a node's ZeroMQ wire: how actor messages leave and enter the
 * process.
 *
 * Sockets (one ZeroMQ context per transport, one transport per process):
 *   - one ROUTER bound at `listen`: everything that comes IN arrives here,
 *     from peer nodes and from clients alike;
 *   - one DEALER per peer node, connected to the peer's ROUTER: everything
 *     that goes OUT to a node leaves through it.  Replies to a node travel on
 *     the replier's own DEALER, so the two directions of a pair of nodes are
 *     two independent TCP connections and no routing ids are needed between
 *     nodes;
 *   - replies to a CLIENT (a DEALER connected to our ROUTER) go back through
 *     the ROUTER with the client's routing id.  The routing id is folded into
 *     a "client pseudo node id" (bit 63 set, see wire.h), written into the
 *     inbound envelope's from.node; so the runtime replies to a client like to
 *     any remote actor and no per-client table is kept.
 *
 * Frames: a client sends one frame = one Envelope.  Nodes send two frames:
 * PeerHeader (who I am, incarnation, endpoint, batch seq, ack) + Batch (the
 * envelopes).  An empty batch is a heartbeat, sent every heartbeat_ms; a peer
 * silent for peer_timeout_ms is dead: sends to it fail at once with
 * LLMOS_EUNAVAILABLE, asks in flight to it are answered at once with
 * LLMOS_EUNAVAILABLE, and the one-way messages it never acknowledged are
 * counted as `undelivered`.  A peer
 * that comes back (same endpoint; new incarnation, possibly a new node id) is
 * alive again as soon as its first header arrives; its old node id stays
 * dead, so stale refs get errors instead of reaching a stranger.  A node
 * that stops cleanly says goodbye (PeerHeader.bye), so its peers treat it
 * as gone at once.
 *
 * Every inbound part is size-checked before decoding (max_frame; ZeroMQ's own
 * ZMQ_MAXMSGSIZE is 2 x max_frame so an oversize frame is still seen and
 * answered).  Undecodable, oversize, misshapen, expired and wrong-node frames
 * are answered with an error Envelope where there is a sender, counted by
 * kind, and logged once per burst.
 *
 * Threads: one I/O thread owns every socket.  Runtime threads hand it
 * messages through the remote router (a mutex-protected list + an eventfd
 * written only when the list goes from empty to non-empty); the I/O thread
 * takes the whole list at once, appends each message to its peer's batch and
 * sends one ZeroMQ message per peer per cycle, never blocking (ZMQ_DONTWAIT).
 * Inbound messages are decoded on the I/O thread and given to rt_deliver.
 *
 * Every function here is thread-safe.
 */
#ifndef LLMOS_CLUSTER_TRANSPORT_H
#define LLMOS_CLUSTER_TRANSPORT_H

#include "cluster/config.h"
#include "runtime/actor.h"
#include "runtime/base/err.h"

#include <stdint.h>

typedef struct cl_transport cl_transport_t;

/* Counters, monotonic since start (peers_alive/peers_known: now). */
typedef struct cl_stats {
    uint64_t frames_in, frames_out;  /* ZeroMQ messages */
    uint64_t msgs_in, msgs_out;      /* envelopes */
    uint64_t decode;                 /* did not decode */
    uint64_t too_big;                /* over max_frame */
    uint64_t bad_frame;              /* wrong number/shape of frames */
    uint64_t expired;                /* arrived after their deadline */
    uint64_t wrong_node;             /* addressed to another node id */
    uint64_t no_route;               /* to a node that is unknown or dead */
    uint64_t client_gone;            /* reply to a client that disconnected or is too slow */
    uint64_t undelivered;            /* sent to a peer that died before acknowledging */
    uint64_t peer_deaths, peer_restarts;
    uint32_t peers_alive, peers_known;
} cl_stats_t;

typedef struct cl_peer_info {
    uint64_t node_id;       /* 0 until its first header arrived */
    char endpoint[CL_ENDPOINT_MAX];
    char name[CL_NAME_MAX];
    int alive;
} cl_peer_info_t;

/* A random node id: non-zero, bit 63 clear. */
uint64_t cl_node_id_random(void);

/* Binds cfg->listen, connects to cfg->peers, starts the I/O thread and
 * installs itself as sys's remote router.  sys is borrowed and must outlive
 * the transport's I/O (see cl_transport_stop).  Errors: LLMOS_EINVAL (bad
 * endpoint, node id of sys has bit 63 set), LLMOS_EIO (bind failed: address
 * in use, ...), LLMOS_ENOMEM. */
int cl_transport_new(rt_system_t *sys, const cl_config_t *cfg, cl_transport_t **out, llmos_error_t *err);

/* Stops the I/O thread and closes the sockets; afterwards the remote router
 * refuses with LLMOS_EUNAVAILABLE.  Call before rt_system_destroy (the I/O
 * thread delivers into the system).  Idempotent. */
void cl_transport_stop(cl_transport_t *t);
/* Stops (if needed) and frees; sets *t to NULL.  Call after rt_system_destroy
 * (runtime threads may still call the remote router until then).  NULL-safe. */
void cl_transport_destroy(cl_transport_t **t);

/* The endpoint peers and clients reach this node at (port resolved when
 * listen used port 0 or *).  Borrowed for the transport's life. */
const char *cl_transport_endpoint(const cl_transport_t *t);

void cl_transport_stats(cl_transport_t *t, cl_stats_t *out);

/* Connects to one more peer (e.g. learned from MPI or a seed).  The I/O
 * thread opens the connection on its next cycle; an endpoint already known
 * is ignored.  Errors: LLMOS_EINVAL (malformed endpoint), LLMOS_EOVERLOADED
 * (too many additions pending), LLMOS_EUNAVAILABLE (stopped). */
int cl_transport_add_peer(cl_transport_t *t, const char *endpoint, llmos_error_t *err);

/* Copies up to cap peers into out; returns how many there are. */
size_t cl_transport_peers(cl_transport_t *t, cl_peer_info_t *out, size_t cap);

/* Waits until the peer at endpoint (or, if endpoint is NULL, `count` peers)
 * is alive.  *node_id (may be NULL) gets the peer's id.  LLMOS_ETIMEDOUT. */
int cl_transport_wait_peer(cl_transport_t *t, const char *endpoint, uint32_t timeout_ms, uint64_t *node_id,
                           llmos_error_t *err);
int cl_transport_wait_peers(cl_transport_t *t, uint32_t count, uint32_t timeout_ms, llmos_error_t *err);

#endif
