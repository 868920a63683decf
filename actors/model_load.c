/*
 * model_load.c — the model-shard actor's control messages (see
 * model_shard.h): LOAD, UNLOAD, SHUTDOWN and, between a group's leader and
 * its followers, LOAD_COMMIT / LOAD_ABORT.  Control rides the actor wire,
 * never MPI.  A thin adapter: serve_open makes the new model's core,
 * serve_destroy drops one; what is here is who asks whom and when a group
 * swaps.
 *
 * LOAD replaces the model, or changes nothing.  The new model is staged
 * next to the served one (ms_stage) and swapped in only when it loaded and
 * validated on every rank: a single rank swaps at once; a follower stages
 * and answers, and swaps at its leader's COMMIT (drops it at ABORT); the
 * leader of a group asks every follower, stages its own slice, pauses its
 * iterations and decides when all have answered (ms_load_answer).  Until
 * then the served model keeps its requests (they wait while a group
 * loads); a successful swap answers the requests of the old model with
 * LLMOS_EUNAVAILABLE.
 */
#include "actors/model_shard_internal.h"
#include "actors/model_wire.h"

#include "llmos/model.pb-c.h"
#include "runtime/base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ref of follower rank f's actor (on its node, named model/<r>/<f>). */
static int follower_ref(ms_t *s, int f, char *name, size_t cap, rt_ref_t *out) {
    uint64_t node;
    snprintf(name, cap, "model/%d/%d", s->replica, f);
    if (cl_mpi_group_peer(s->group, f, &node) != 0) return LLMOS_EUNAVAILABLE;
    *out = rt_ref_name(node, name);
    return 0;
}

/* Tells every follower of the group type (UNLOAD, COMMIT, ABORT); a
 * follower that cannot be reached is skipped (the group finds it dead). */
static void tell_followers(ms_t *s, rt_ctx_t *ctx, uint32_t type) {
    for (int f = 1; f < s->tp; f++) {
        char name[32];
        rt_ref_t ref;
        if (follower_ref(s, f, name, sizeof name, &ref) == 0) rt_tell(ctx, ref, type, NULL, 0);
    }
}

void ms_unload(ms_t *s, rt_ctx_t *ctx, const char *why) {
    if (s->grank == 0) {
        if (s->core) serve_fail_all(s->core, LLMOS_EUNAVAILABLE, why);
        ms_group_stop(s);
        if (s->core) tell_followers(s, ctx, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD);
    } else {
        cl_mpi_group_recv_cancel(s->group);
    }
    if (s->core) serve_stats(s->core, &s->carry);
    serve_destroy(&s->core);
}

/* Answers a LOAD that failed: the model served before (if any) still is. */
static void load_refused(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg, int rc, const char *why) {
    if (s->core)
        rt_reply_error(ctx, msg, rc, "load: %s (still serving %s)", why, serve_name(s->core));
    else
        rt_reply_error(ctx, msg, rc, "load: %s", why);
}

static void handle_load(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    if (s->shut || s->load_req) {
        rt_reply_error(ctx, msg, LLMOS_ESTATE, "model: %s",
                       s->shut ? "the group was shut down" : "a load is in progress");
        return;
    }
    llmos_error_t err = {0};
    serve_load_t l = {0};
    void *pb = NULL;
    int rc = actors_model_load_decode(msg, &l, &pb, &err);
    if (rc) {
        load_refused(s, ctx, msg, rc, err.msg);
        return;
    }
    if (s->grank != 0) { /* a follower: stage, answer, wait for COMMIT / ABORT */
        serve_destroy(&s->staged);
        rc = ms_stage(s, &l, &s->staged, &err);
        actors_model_pb_free(&pb);
        if (rc)
            rt_reply_error(ctx, msg, rc, "%s", err.msg);
        else
            rt_reply(ctx, msg, msg->type, NULL, 0);
        return;
    }
    if (s->tp == 1) {
        serve_t *st = NULL;
        rc = ms_stage(s, &l, &st, &err);
        actors_model_pb_free(&pb);
        if (rc) {
            load_refused(s, ctx, msg, rc, err.msg);
            return;
        }
        if (s->core) ms_unload(s, ctx, "model: the model was replaced");
        ms_commit(s, &st);
        ms_reply_stats(s, ctx, msg);
        return;
    }
    rt_msg_init_t in = {.to = msg->to,
                        .from = msg->from,
                        .type = msg->type,
                        .corr = msg->corr,
                        .deadline_ms = msg->deadline_ms,
                        .data = msg->data,
                        .len = msg->len};
    if (!(s->load_corr = calloc((size_t)s->tp, sizeof *s->load_corr)) || !(s->load_req = rt_msg_new(&in))) {
        free(s->load_corr);
        s->load_corr = NULL;
        actors_model_pb_free(&pb);
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "load: no memory");
        return;
    }
    s->load_failed = 0;
    s->load_pending = 0;
    for (int f = 1; f < s->tp; f++) {
        char name[32];
        rt_ref_t ref;
        rc = follower_ref(s, f, name, sizeof name, &ref);
        if (rc == 0)
            rc = rt_ask(ctx, ref, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, msg->data, msg->len, 600000,
                        &s->load_corr[f]);
        if (rc) {
            s->load_failed = rc;
            snprintf(s->load_err, sizeof s->load_err, "rank %d (%s) cannot be asked: %s", f,
                     cl_mpi_group_endpoint(s->group, f), llmos_strerror(rc));
        } else {
            s->load_pending++;
        }
    }
    /* The leader's own slice loads while the followers load theirs. */
    serve_destroy(&s->staged);
    if (!s->load_failed && (rc = ms_stage(s, &l, &s->staged, &err))) {
        s->load_failed = rc;
        snprintf(s->load_err, sizeof s->load_err, "%s", err.msg);
    }
    actors_model_pb_free(&pb);
    if (s->load_pending == 0) ms_load_answer(s, ctx, NULL);
}

/* msg: a follower's answer, or NULL when none is awaited any more.  When
 * every follower answered: all staged -> the group swaps (COMMIT); else
 * every staged slice is dropped (ABORT) and the old model serves on. */
void ms_load_answer(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    if (!s->load_req || !s->load_corr) return;
    if (msg) {
        int f = 1;
        while (f < s->tp && s->load_corr[f] != msg->corr)
            f++;
        if (f == s->tp) return; /* not ours */
        s->load_corr[f] = 0;
        s->load_pending--;
        if (msg->status && !s->load_failed) {
            s->load_failed = msg->status;
            snprintf(s->load_err, sizeof s->load_err, "rank %d: %s", f,
                     msg->error ? msg->error : llmos_strerror(msg->status));
        }
        if (s->load_pending > 0) return;
    }
    rt_msg_t *req = s->load_req;
    s->load_req = NULL;
    free(s->load_corr);
    s->load_corr = NULL;
    if (s->load_failed) {
        serve_destroy(&s->staged);
        tell_followers(s, ctx, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_ABORT);
        load_refused(s, ctx, req, s->load_failed, s->load_err);
    } else {
        if (s->core) ms_unload(s, ctx, "model: the model was replaced");
        tell_followers(s, ctx, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_COMMIT);
        ms_commit(s, &s->staged);
        ms_reply_stats(s, ctx, req);
    }
    rt_msg_free(req);
}

/* A follower: the leader's verdict on the staged slice. */
static void follower_load_end(ms_t *s, rt_ctx_t *ctx, bool commit) {
    if (!commit) {
        serve_destroy(&s->staged);
        return;
    }
    if (!s->staged) {
        LLMOS_ERROR("model/%d/%d: COMMIT without a staged model (the group cannot serve)", s->replica,
                    s->grank);
        return;
    }
    if (s->core) ms_unload(s, ctx, "model: the model was replaced");
    ms_commit(s, &s->staged);
}

void ms_control(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    switch (msg->type) {
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SHUTDOWN:
        if (!s->shut) {
            if (s->load_req) {
                rt_reply_error(ctx, s->load_req, LLMOS_EUNAVAILABLE, "model: the group was shut down");
                rt_msg_free(s->load_req);
                s->load_req = NULL;
            }
            ms_unload(s, ctx, "model: the group was shut down");
            serve_destroy(&s->staged);
            s->shut = true;
        }
        rt_reply(ctx, msg, msg->type, NULL, 0);
        return;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD:
        if (s->load_req) {
            rt_reply_error(ctx, msg, LLMOS_ESTATE, "model: a load is in progress");
            return;
        }
        ms_unload(s, ctx, "model: the model was unloaded");
        ms_reply_stats(s, ctx, msg);
        return;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD: handle_load(s, ctx, msg); return;
    default: /* LOAD_COMMIT, LOAD_ABORT */
        if (s->grank != 0 && !s->shut)
            follower_load_end(s, ctx, msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_COMMIT);
        return;
    }
}
