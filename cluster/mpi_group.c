/*
 * mpi_group.c — MPI group set-up and the leader-to-followers channel (see
 * mpi_group.h).  The only place in cluster/ that calls MPI; MPI status
 * codes become llmos errors here.
 */
#include "cluster/mpi_group.h"

#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG_TAG 4242
#define ACK_TAG 4243
#define CHECK_EVERY_NS 100000000ull /* the transport is asked at most this often */
#define PEERS_MAX 256

struct cl_mpi_group {
    int replica, rank, size;
    MPI_Comm comm;                      /* MPI_COMM_NULL for size 1 */
    char (*endpoints)[CL_ENDPOINT_MAX]; /* [size] */
    cl_transport_t *tr;
    cl_peer_info_t *peers; /* [PEERS_MAX] scratch for the transport's answers */
    uint64_t next_check_ns;
    /* the channel */
    int32_t *buf; /* [cap]: a follower's receive buffer */
    size_t cap;
    MPI_Request *reqs; /* leader: size - 1 sends, then size - 1 acknowledgement receives */
    int32_t *acks;     /* [size] */
    MPI_Request rreq;  /* follower: the posted receive */
    bool posted;
    uint32_t quiet_us;
};

int cl_mpi_world_size(bool mpi_on) {
    int world = 1;
    if (mpi_on) MPI_Comm_size(MPI_COMM_WORLD, &world);
    return world;
}

int cl_mpi_group_new(const cl_mpi_group_opts_t *o, cl_mpi_group_t **out, llmos_error_t *err) {
    *out = NULL;
    int size = o->size > 0 ? o->size : 1, world = 1, wrank = 0;
    if (o->mpi_on) {
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    }
    if (size > 1 && !o->mpi_on)
        return llmos_error_set(err, LLMOS_EINVAL, "an MPI group of %d ranks needs MPI (mpirun)", size);
    if (world % size != 0)
        return llmos_error_set(err, LLMOS_EINVAL, "groups of %d ranks do not divide the %d MPI ranks", size,
                               world);
    if (size > 1 && (o->msg_words == 0 || o->msg_words > (size_t)INT32_MAX))
        return llmos_error_set(err, LLMOS_EINVAL, "an MPI group's messages of %zu words", o->msg_words);
    cl_mpi_group_t *g = calloc(1, sizeof *g);
    if (!g) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for an MPI group");
    g->comm = MPI_COMM_NULL;
    g->size = size;
    g->replica = wrank / size;
    g->rank = wrank % size;
    g->tr = o->tr;
    g->rreq = MPI_REQUEST_NULL;
    int rc = 0;
    g->endpoints = calloc((size_t)size, sizeof *g->endpoints);
    g->peers = calloc(PEERS_MAX, sizeof *g->peers);
    if (!g->endpoints || !g->peers) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for an MPI group");
        goto fail;
    }
    if (o->tr) snprintf(g->endpoints[g->rank], CL_ENDPOINT_MAX, "%s", cl_transport_endpoint(o->tr));
    if (size == 1) {
        *out = g;
        return 0;
    }
    g->cap = o->msg_words;
    g->buf = malloc(sizeof(int32_t) * g->cap);
    g->reqs = malloc(sizeof(MPI_Request) * 2 * (size_t)size);
    g->acks = calloc((size_t)size, sizeof *g->acks);
    if (!g->buf || !g->reqs || !g->acks) {
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for an MPI group's channel");
        goto fail;
    }
    for (int i = 0; i < 2 * size; i++)
        g->reqs[i] = MPI_REQUEST_NULL;
    /* The group: size consecutive world ranks; their node endpoints, to watch them. */
    if (MPI_Comm_split(MPI_COMM_WORLD, g->replica, g->rank, &g->comm) != MPI_SUCCESS) {
        g->comm = MPI_COMM_NULL;
        rc = llmos_error_set(err, LLMOS_EUNAVAILABLE, "MPI_Comm_split into groups of %d failed", size);
        goto fail;
    }
    MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
    char mine[CL_ENDPOINT_MAX];
    memcpy(mine, g->endpoints[g->rank], sizeof mine);
    if (MPI_Allgather(mine, CL_ENDPOINT_MAX, MPI_CHAR, g->endpoints, CL_ENDPOINT_MAX, MPI_CHAR, g->comm) !=
        MPI_SUCCESS) {
        rc = llmos_error_set(err, LLMOS_EUNAVAILABLE, "MPI_Allgather of the group's endpoints failed");
        goto fail;
    }
    *out = g;
    return 0;
fail:
    cl_mpi_group_destroy(&g);
    return rc;
}

void cl_mpi_group_recv_cancel(cl_mpi_group_t *g) {
    if (!g || !g->posted) return;
    MPI_Cancel(&g->rreq);
    MPI_Wait(&g->rreq, MPI_STATUS_IGNORE);
    g->posted = false;
}

void cl_mpi_group_destroy(cl_mpi_group_t **gp) {
    if (!gp || !*gp) return;
    cl_mpi_group_t *g = *gp;
    cl_mpi_group_recv_cancel(g);
    if (g->comm != MPI_COMM_NULL) MPI_Comm_free(&g->comm);
    free(g->endpoints);
    free(g->peers);
    free(g->buf);
    free(g->reqs);
    free(g->acks);
    free(g);
    *gp = NULL;
}

int cl_mpi_group_replica(const cl_mpi_group_t *g) {
    return g->replica;
}
int cl_mpi_group_rank(const cl_mpi_group_t *g) {
    return g->rank;
}
int cl_mpi_group_size(const cl_mpi_group_t *g) {
    return g->size;
}
MPI_Comm cl_mpi_group_comm(const cl_mpi_group_t *g) {
    return g->comm;
}

const char *cl_mpi_group_endpoint(const cl_mpi_group_t *g, int r) {
    return r >= 0 && r < g->size ? g->endpoints[r] : "";
}

int cl_mpi_group_check(cl_mpi_group_t *g, uint64_t now_ns, char *why, size_t n) {
    if (g->size <= 1 || !g->tr || now_ns < g->next_check_ns) return 0;
    g->next_check_ns = now_ns + CHECK_EVERY_NS;
    size_t np = cl_transport_peers(g->tr, g->peers, PEERS_MAX);
    if (np > PEERS_MAX) np = PEERS_MAX;
    for (int r = 0; r < g->size; r++) {
        if (r == g->rank) continue;
        for (size_t i = 0; i < np; i++) /* seen alive once (it has an id) and dead now */
            if (strcmp(g->peers[i].endpoint, g->endpoints[r]) == 0 && g->peers[i].node_id &&
                !g->peers[i].alive) {
                snprintf(why, n, "rank %d (%s) is down", r, g->endpoints[r]);
                return r;
            }
    }
    return 0;
}

int cl_mpi_group_peer(cl_mpi_group_t *g, int r, uint64_t *node_id) {
    *node_id = 0;
    if (!g->tr || r < 0 || r >= g->size) return LLMOS_EUNAVAILABLE;
    size_t np = cl_transport_peers(g->tr, g->peers, PEERS_MAX);
    if (np > PEERS_MAX) np = PEERS_MAX;
    for (size_t i = 0; i < np; i++)
        if (strcmp(g->peers[i].endpoint, g->endpoints[r]) == 0 && g->peers[i].node_id && g->peers[i].alive) {
            *node_id = g->peers[i].node_id;
            return 0;
        }
    return LLMOS_EUNAVAILABLE;
}

/* Cancels the leader's outstanding sends and acknowledgement receives. */
static void cancel_sends(cl_mpi_group_t *g) {
    for (int i = 0; i < 2 * (g->size - 1); i++)
        if (g->reqs[i] != MPI_REQUEST_NULL) {
            MPI_Cancel(&g->reqs[i]);
            MPI_Request_free(&g->reqs[i]);
        }
}

int cl_mpi_group_send(cl_mpi_group_t *g, const int32_t *msg, size_t n, uint32_t wait_ms, llmos_error_t *err) {
    if (g->size <= 1 || g->rank != 0)
        return llmos_error_set(err, LLMOS_ESTATE,
                               "MPI group: only the leader of a group of several ranks sends");
    if (n > g->cap)
        return llmos_error_set(err, LLMOS_EINVAL, "MPI group: a message of %zu words, at most %zu", n,
                               g->cap);
    /* Every follower acknowledges the message before it acts on it, so the
     * leader enters the collectives that follow only with followers that
     * are alive (a dead peer on shared memory would leave it waiting there
     * forever). */
    int nf = g->size - 1;
    for (int f = 1; f < g->size; f++) {
        if (MPI_Irecv(&g->acks[f], 1, MPI_INT32_T, f, ACK_TAG, g->comm, &g->reqs[nf + f - 1]) !=
                MPI_SUCCESS ||
            MPI_Isend(msg, (int)n, MPI_INT32_T, f, MSG_TAG, g->comm, &g->reqs[f - 1]) != MPI_SUCCESS) {
            cancel_sends(g);
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "sending the plan to rank %d of the group failed",
                                   f);
        }
    }
    uint64_t until = llmos_now_ns() + (uint64_t)wait_ms * 1000000u;
    char why[160];
    for (uint32_t spins = 0;; spins++) {
        int done = 0;
        if (MPI_Testall(2 * nf, g->reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) {
            cancel_sends(g);
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "sending the plan to the group failed");
        }
        if (done) return 0;
        uint64_t now = llmos_now_ns();
        if ((spins & 255) == 255 && cl_mpi_group_check(g, now, why, sizeof why)) {
            cancel_sends(g);
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "%s", why);
        }
        if (now > until) {
            cancel_sends(g);
            return llmos_error_set(err, LLMOS_EUNAVAILABLE, "a follower acknowledged no plan for %u ms",
                                   wait_ms);
        }
        struct timespec ts = {0, spins < 200 ? 5000 : 100000};
        nanosleep(&ts, NULL);
    }
}

int cl_mpi_group_recv(cl_mpi_group_t *g, const int32_t **msg, size_t *n) {
    *msg = NULL;
    *n = 0;
    if (g->size <= 1 || g->rank == 0) return LLMOS_ESTATE;
    if (!g->posted) {
        if (MPI_Irecv(g->buf, (int)g->cap, MPI_INT32_T, 0, MSG_TAG, g->comm, &g->rreq) != MPI_SUCCESS)
            return LLMOS_EUNAVAILABLE;
        g->posted = true;
    }
    int flag = 0;
    MPI_Status st;
    if (MPI_Test(&g->rreq, &flag, &st) != MPI_SUCCESS) {
        g->posted = false;
        return LLMOS_EUNAVAILABLE;
    }
    if (!flag) {
        g->quiet_us = g->quiet_us ? (g->quiet_us < 1000 ? g->quiet_us * 2 : 1000) : 5;
        struct timespec ts = {0, (long)g->quiet_us * 1000};
        nanosleep(&ts, NULL);
        return 0;
    }
    g->posted = false;
    g->quiet_us = 0;
    int count = 0, one = 1;
    MPI_Get_count(&st, MPI_INT32_T, &count);
    if (MPI_Send(&one, 1, MPI_INT32_T, 0, ACK_TAG, g->comm) != MPI_SUCCESS) return LLMOS_EUNAVAILABLE;
    *msg = g->buf;
    *n = count > 0 ? (size_t)count : 0;
    return 1;
}
