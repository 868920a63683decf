/*
 * mpi_group.h — a node's MPI group (llmos_cluster_mpi): the ranks of
 * MPI_COMM_WORLD cut into groups of `size` consecutive ranks
 * (MPI_Comm_split; group r = world ranks r*size .. r*size+size-1, ordered
 * by world rank), the node endpoint of every rank of the group, so the
 * cluster's failure detector can be asked about them, and the group's
 * message channel from its leader (rank 0) to the followers.
 *
 * The channel carries int32 messages of at most msg_words words (a model
 * group's per-iteration plan: model/serve_plan.h says why that rides MPI
 * and not the actor wire).  The leader's send is point-to-point to every
 * follower, each follower acknowledging receipt before the send returns:
 * the leader then knows every follower is alive before it enters the
 * collectives the message feeds.  Both sides poll, never block in MPI for
 * long: a follower waiting for a message can be stopped (its receive is
 * cancellable), and a leader whose follower died gives up (the transport
 * says the follower's node is dead, or no acknowledgement came in time).
 *
 * Without MPI (a plain llmosd) the group is one rank of size 1: no
 * communicator, no channel.  Everything else about the group — what its
 * ranks serve, when to give up on it — is the caller's.
 *
 * Not thread-safe: one owner (the thread that runs the group's rank).  The
 * communicator returns errors instead of aborting (MPI_ERRORS_RETURN).
 */
#ifndef LLMOS_CLUSTER_MPI_GROUP_H
#define LLMOS_CLUSTER_MPI_GROUP_H

#include "cluster/transport.h"
#include "runtime/base/err.h"

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cl_mpi_group cl_mpi_group_t;

/* The ranks of MPI_COMM_WORLD (1 when !mpi_on). */
int cl_mpi_world_size(bool mpi_on);

typedef struct cl_mpi_group_opts {
    int size;           /* ranks per group; 0 = 1 */
    bool mpi_on;        /* MPI is initialised (else: one rank, size must be 1) */
    cl_transport_t *tr; /* borrowed, may be NULL: asked about the ranks' nodes */
    size_t msg_words;   /* the largest message of the channel (size > 1) */
} cl_mpi_group_opts_t;

/* Called on every rank of the world (it is collective).  Caller owns *out.
 * Errors: LLMOS_EINVAL (size > 1 without MPI; size does not divide the
 * world), LLMOS_EUNAVAILABLE (MPI_Comm_split or the endpoints' all-gather
 * failed), LLMOS_ENOMEM. */
int cl_mpi_group_new(const cl_mpi_group_opts_t *o, cl_mpi_group_t **out, llmos_error_t *err);

/* Frees the communicator and everything; a posted receive is cancelled
 * first.  NULL-safe; sets *g to NULL. */
void cl_mpi_group_destroy(cl_mpi_group_t **g);

int cl_mpi_group_replica(const cl_mpi_group_t *g); /* which group (world rank / size) */
int cl_mpi_group_rank(const cl_mpi_group_t *g);    /* rank in the group (0 = leader) */
int cl_mpi_group_size(const cl_mpi_group_t *g);
/* Rank r's node endpoint ("" without a transport); borrowed. */
const char *cl_mpi_group_endpoint(const cl_mpi_group_t *g, int r);
/* The group's communicator (MPI_COMM_NULL for size 1); borrowed. */
MPI_Comm cl_mpi_group_comm(const cl_mpi_group_t *g);

/* Asks the transport, at most every 100 ms of now_ns, whether the node of
 * a follower was seen alive and is dead now.  0 while none is; else the
 * (first) rank that is down, with "rank R (ENDPOINT) is down" in why. */
int cl_mpi_group_check(cl_mpi_group_t *g, uint64_t now_ns, char *why, size_t n);

/* The node id of rank r's node while the transport says it is alive;
 * LLMOS_EUNAVAILABLE otherwise (or without a transport). */
int cl_mpi_group_peer(cl_mpi_group_t *g, int r, uint64_t *node_id);

/* Leader: sends msg (n words, at most msg_words) to every follower and
 * waits until every follower acknowledged it, polling (and asking
 * cl_mpi_group_check) for at most wait_ms.  LLMOS_EUNAVAILABLE when a
 * follower is down, an MPI call failed or wait_ms passed (the sends are
 * cancelled then; the message says which). */
int cl_mpi_group_send(cl_mpi_group_t *g, const int32_t *msg, size_t n, uint32_t wait_ms, llmos_error_t *err);

/* Follower: takes the leader's next message.  1 with *msg (borrowed until
 * the next call) and *n when one came (it is acknowledged); 0 when none
 * came yet (after sleeping a little longer each time, up to 1 ms); a
 * negative llmos_err when MPI failed (the follower should stop). */
int cl_mpi_group_recv(cl_mpi_group_t *g, const int32_t **msg, size_t *n);

/* Follower: cancels a receive posted by cl_mpi_group_recv (the group stops
 * taking messages until the next call). */
void cl_mpi_group_recv_cancel(cl_mpi_group_t *g);

#endif
