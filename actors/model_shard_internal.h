/*
 * model_shard_internal.h — the model-shard actor's state, shared by its two
 * files: model_shard.c (requests, the iteration loop, followers, stats,
 * start-up) and model_load.c (the control messages: LOAD, UNLOAD,
 * SHUTDOWN and the group's LOAD commit).  Private to those two.
 */
#ifndef LLMOS_ACTORS_MODEL_SHARD_INTERNAL_H
#define LLMOS_ACTORS_MODEL_SHARD_INTERNAL_H

#include "actors/model_shard.h"
#include "cluster/mpi_group.h"
#include "model/serve.h"
#include "model/tp.h"

#define MS_PLAN_WAIT_MS 10000 /* a follower that acknowledges no plan for this long is gone */

typedef struct ms {
    rt_system_t *sys;
    cl_transport_t *tr;
    cl_mpi_group_t *group; /* this rank's group (size tp) */
    model_tp_t *tpg;       /* the group's collectives (NULL when tp == 1) */
    int replica, grank, tp;
    serve_opts_t sopts;  /* what every core of this rank is made with (resolved) */
    serve_t *core;       /* the model served, or NULL */
    serve_stats_t carry; /* the counters of the cores served before (the next continues them) */
    /* LOAD: the new model is staged (followers: until the leader's COMMIT
     * or ABORT; the leader of a group: until every follower answered) */
    serve_t *staged;
    rt_msg_t *load_req;  /* the leader's LOAD ask being served (owned) */
    uint64_t *load_corr; /* [tp]: the asks to the followers */
    int load_pending, load_failed;
    char load_err[LLMOS_ERRMSG_MAX];
    bool available, shut;
    char down_why[160];
    bool stopped; /* a follower left the plan loop */
} ms_t;

/* model_shard.c */
/* Loads a model for this rank as serve_open does, with the rank's options. */
int ms_stage(ms_t *s, const serve_load_t *l, serve_t **out, llmos_error_t *err);
/* Serves core (this rank serves none now); *core is taken. */
void ms_commit(ms_t *s, serve_t **core);
/* Stops the followers' plan loop (leader: a STOP plan; follower: runs the
 * plans that still come until STOP, bounded). */
void ms_group_stop(ms_t *s);
void ms_reply_stats(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg);

/* model_load.c */
/* Drops the model on this rank; the leader first answers every request,
 * stops the followers' plan loop and tells them (a message, not MPI). */
void ms_unload(ms_t *s, rt_ctx_t *ctx, const char *why);
/* LOAD, UNLOAD, SHUTDOWN, LOAD_COMMIT, LOAD_ABORT. */
void ms_control(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg);
/* A follower's answer to LOAD (a reply to the leader's ask). */
void ms_load_answer(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg);

#endif
