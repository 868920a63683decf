/*
 * model_shard.c — the model-shard actor (see model_shard.h): a pinned
 * actor per rank that adapts the serving core (model/serve.h) to messages.
 * It decides nothing about requests: receive() decodes (model_wire.c) and
 * submits, or answers at once (stats, cancel, errors); idle() — called
 * whenever the mailbox is empty — runs one iteration of the core on the
 * leader (returning true while requests run, so new messages are taken
 * between iterations) or one plan from the leader on a follower; the
 * core's events come back through ms_sink and are encoded as answers.
 *
 * The group (cluster/mpi_group.h): on a leader, the core's plan in its
 * wire form goes to every follower over MPI before each forward (acknowledged:
 * model/serve_plan.h says why the plan rides MPI); a follower polls for
 * plans and runs them on its own core.  A follower the transport declares
 * dead, a plan not acknowledged in MS_PLAN_WAIT_MS, or a failed collective
 * takes the group down: every request gets LLMOS_EUNAVAILABLE.
 *
 * Why three files: model_wire.c is the protobuf codec (pure functions),
 * model_load.c the control messages (LOAD and the group's swap); this file
 * holds what runs per request and per iteration.  Each is a thin layer
 * between messages and a library.
 */
#include "actors/model_shard_internal.h"
#include "actors/model_wire.h"

#include "llmos/model.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "runtime/base/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- flags */

int actors_model_parse_flag(actors_model_opts_t *o, int argc, char **argv, int *i, llmos_error_t *err) {
    const char *a = argv[*i];
    if (strcmp(a, "--q8") == 0) {
        o->q8 = true;
        return 1;
    }
    static const char *const flags[] = {"--model",       "--tokenizer",     "--tp",
                                        "--max-seqs",    "--kv-blocks",     "--token-budget",
                                        "--queue-limit", "--model-threads", "--classifier"};
    size_t k = 0;
    while (k < sizeof flags / sizeof flags[0] && strcmp(a, flags[k]) != 0)
        k++;
    if (k == sizeof flags / sizeof flags[0]) return 0;
    if (*i + 1 >= argc) return llmos_error_set(err, LLMOS_EINVAL, "%s needs a value", a);
    const char *v = argv[++*i];
    int rc = 0;
    switch (k) {
    case 0: o->model = v; break;
    case 1: o->tokenizer = v; break;
    case 2: rc = llmos_parse_int(a, v, 1, 64, &o->tp, err); break;
    case 3: rc = llmos_parse_int(a, v, 1, 4096, &o->max_seqs, err); break;
    case 4: rc = llmos_parse_int(a, v, 1, 1 << 24, &o->kv_blocks, err); break;
    case 5: rc = llmos_parse_int(a, v, 1, 1 << 20, &o->token_budget, err); break;
    case 6: rc = llmos_parse_int(a, v, 1, 1 << 24, &o->queue_limit, err); break;
    case 8: o->classifier = v; break;
    default: rc = llmos_parse_int(a, v, 1, 256, &o->threads, err); break;
    }
    return rc ? rc : 1;
}

const char *actors_model_usage(void) {
    return "  --model FILE              serve this model (llama2.c .bin or GGUF) as actor `model`; FILE, "
           "DIR\n"
           "                            and --ensemble folders are found as given, else in $LLMOS_MODELS\n"
           "  --tokenizer FILE          tokenizer.bin for a llama2.c model\n"
           "  --classifier DIR          serve the fine-tuned classifier in DIR/ckpt.lmdb (Score without "
           "labels);\n"
           "                            its base model unless --model/--tokenizer replace it\n"
           "  --tp N                    ranks per tensor-parallel replica (mpirun -np a multiple of N)\n"
           "  --q8                      quantize the weights to int8 at load\n"
           "  --max-seqs N              sequences batched at once (default 32)\n"
           "  --kv-blocks N             KV-cache blocks of 16 tokens (default: max-seqs full sequences, <= "
           "512 MiB)\n"
           "  --token-budget N          rows per iteration (default 256)\n"
           "  --queue-limit N           waiting requests before `overloaded` (default 1024)\n"
           "  --model-threads N         threads per rank for the model (default 1)\n";
}

/* ---------------------------------------------------------------- answers */

/* Who asked: a request's tag in the core, freed with its last event. */
typedef struct ms_asker {
    rt_ref_t ref; /* ref.name points into name */
    char *name;
    uint64_t corr;
} ms_asker_t;

static ms_asker_t *asker_new(const rt_msg_t *msg) {
    ms_asker_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->ref = msg->from;
    a->ref.name = NULL;
    a->corr = msg->corr;
    if (msg->from.name && msg->from.name[0]) {
        if (!(a->name = strdup(msg->from.name))) {
            free(a);
            return NULL;
        }
        a->ref.name = a->name;
    }
    return a;
}

static void asker_free(ms_asker_t *a) {
    if (!a) return;
    free(a->name);
    free(a);
}

static void answer(ms_t *s, const ms_asker_t *a, uint32_t type, bool is_reply, int status, const char *error,
                   const void *data, size_t len) {
    if (rt_answer(s->sys, a->ref, a->corr, type, is_reply, status, error, data, len) == LLMOS_ENOMEM)
        LLMOS_ERROR("model: no memory for a %zu-byte message to a caller", len);
}

/* The core's events: chunks stream to the asker, DONE and FAILED answer it. */
static void ms_sink(void *arg, const serve_event_t *ev) {
    ms_t *s = arg;
    ms_asker_t *a = ev->tag;
    uint32_t reply_type = actors_model_reply_type(ev->kind);
    if (ev->type == SERVE_EV_FAILED) {
        answer(s, a, reply_type, true, ev->u.failed.status, ev->u.failed.message, NULL, 0);
        asker_free(a);
        return;
    }
    bool done = ev->type == SERVE_EV_DONE;
    uint8_t stack[2048], *buf = NULL;
    size_t n = 0;
    uint32_t type;
    if (actors_model_event_pack(ev, stack, sizeof stack, &type, &buf, &n) == 0)
        answer(s, a, type, done, 0, NULL, buf, n);
    else if (done)
        answer(s, a, reply_type, true, LLMOS_ENOMEM, "model: no memory", NULL, 0);
    if (buf != stack) free(buf);
    if (done) asker_free(a);
}

static void reply_packed(rt_ctx_t *ctx, const rt_msg_t *msg, uint32_t type, const ProtobufCMessage *pm) {
    size_t n = protobuf_c_message_get_packed_size(pm);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "model: no memory for a %zu-byte reply", n);
        return;
    }
    protobuf_c_message_pack(pm, buf);
    rt_reply(ctx, msg, type, buf, n);
    free(buf);
}

void ms_reply_stats(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    serve_stats_t ss = s->carry; /* with no model: the counters so far, no KV pool */
    ss.running = ss.queued = ss.kv_used = ss.kv_total = 0;
    if (s->core) serve_stats(s->core, &ss);
    Llmos__ModelStats st = LLMOS__MODEL_STATS__INIT;
    const serve_cls_t *cls = s->core ? serve_cls(s->core) : NULL;
    st.model = s->core ? (char *)serve_name(s->core) : "";
    st.replica = (uint32_t)s->replica;
    st.tp = (uint32_t)s->tp;
    st.available = s->core && s->available && !s->shut;
    st.running = (uint32_t)ss.running;
    st.queued = (uint32_t)ss.queued;
    st.kv_blocks_used = (uint32_t)ss.kv_used;
    st.kv_blocks_total = (uint32_t)ss.kv_total;
    st.requests_done = ss.requests_done;
    st.tokens_generated = ss.tokens_generated;
    st.iterations = ss.iterations;
    st.prompt_tokens = ss.prompt_tokens;
    st.rejected_overloaded = ss.rejected_overloaded;
    st.token_budget = (uint32_t)s->sopts.token_budget;
    st.queue_limit = (uint32_t)s->sopts.queue_limit;
    st.vocab_size = (uint32_t)ss.vocab_size;
    st.seq_len = (uint32_t)ss.seq_len;
    st.kv_block_tokens = MODEL_KV_BLOCK;
    st.dim = (uint32_t)ss.dim;
    if (cls) {
        st.classifier = cls->dir;
        st.classes = (uint32_t)cls->n_classes;
        st.classifier_version = (uint32_t)cls->version;
    }
    reply_packed(ctx, msg, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, &st.base);
}

/* ---------------------------------------------------------------- requests */

static serve_time_t now(void) {
    return (serve_time_t){.ns = llmos_now_ns(), .wall_ms = llmos_wall_ms()};
}

static void handle_request(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg, serve_kind_t kind) {
    if (!s->core || !s->available || s->shut) {
        rt_reply_error(ctx, msg, LLMOS_EUNAVAILABLE, "%s",
                       s->shut       ? "model: the group was shut down"
                       : s->load_req ? "model: a model is being loaded"
                       : !s->core    ? "model: no model is loaded (load one: llmos model load PATH)"
                                     : s->down_why);
        return;
    }
    llmos_error_t err = {0};
    actors_model_req_t rq;
    int rc = serve_check_admission(s->core, &err); /* a full queue refuses before anything is decoded */
    if (rc) {
        rt_reply_error(ctx, msg, rc, "%s", err.msg);
        return;
    }
    if ((rc = actors_model_req_decode(msg, kind, &rq, &err))) {
        rt_reply_error(ctx, msg, rc, "model: %s", err.msg);
        return;
    }
    ms_asker_t *a = asker_new(msg);
    rc = a ? serve_submit(s->core, &rq.rq, a, now(), &err)
           : llmos_error_set(&err, LLMOS_ENOMEM, "model: no memory for a request");
    actors_model_req_deinit(&rq);
    if (rc) {
        rt_reply_error(ctx, msg, rc, "%s", err.msg);
        asker_free(a);
    }
}

static void handle_cancel(ms_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    uint64_t corr;
    const char *request_id;
    void *pb;
    llmos_error_t err = {0};
    if (actors_model_cancel_decode(msg, &corr, &request_id, &pb, &err)) {
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "%s", err.msg);
        return;
    }
    Llmos__CancelResult cr = LLMOS__CANCEL_RESULT__INIT;
    cr.found = s->core && serve_cancel(s->core, corr, msg->from.node, request_id);
    actors_model_pb_free(&pb);
    reply_packed(ctx, msg, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL, &cr.base);
}

/* ---------------------------------------------------------------- the group */

static void group_down(ms_t *s, const char *why) {
    if (s->available) LLMOS_ERROR("model group %d is unavailable: %s", s->replica, why);
    s->available = false;
    snprintf(s->down_why, sizeof s->down_why, "model group %d is unavailable: %s", s->replica, why);
    if (s->core) serve_fail_all(s->core, LLMOS_EUNAVAILABLE, s->down_why);
}

/* Sends the core's plan (or a STOP) to every follower. */
static int plan_send(ms_t *s, bool stop, llmos_error_t *err) {
    const int32_t *w;
    size_t n;
    int rc = serve_step_wire(s->core, stop, &w, &n, err);
    return rc ? rc : cl_mpi_group_send(s->group, w, n, MS_PLAN_WAIT_MS, err);
}

/* One iteration; true while there is more to do. */
static bool leader_step(ms_t *s) {
    llmos_error_t err = {0};
    char why[160];
    if (s->available && cl_mpi_group_check(s->group, llmos_now_ns(), why, sizeof why)) group_down(s, why);
    if (!s->available) {
        serve_fail_all(s->core, LLMOS_EUNAVAILABLE, s->down_why);
        return false;
    }
    if (serve_step_begin(s->core, now()) == 0) return false;
    if (s->tp > 1 && plan_send(s, false, &err) != 0) {
        group_down(s, err.msg);
        return false;
    }
    int rc = serve_step_forward(s->core, &err);
    if (rc == LLMOS_EUNAVAILABLE) {
        group_down(s, err.msg);
        return false;
    }
    if (rc == 0) serve_step_end(s->core, now());
    return serve_busy(s->core);
}

/* Takes and runs the leader's next plan; false when the follower stops. */
static bool follower_poll(ms_t *s) {
    if (s->stopped) return false;
    const int32_t *plan;
    size_t n;
    int rc = cl_mpi_group_recv(s->group, &plan, &n);
    if (rc == 0) return true;
    if (rc > 0) {
        llmos_error_t err = {0};
        if ((rc = serve_follow(s->core, plan, n, &err)) == 0) return true;
        if (rc < 0) LLMOS_ERROR("model follower: %s", err.msg);
    }
    s->stopped = true; /* STOP, or the group is broken */
    return false;
}

void ms_group_stop(ms_t *s) {
    llmos_error_t err;
    if (s->tp <= 1 || !s->core) return;
    if (s->grank == 0) {
        if (s->available && !s->shut) plan_send(s, true, &err);
        return;
    }
    /* A follower runs the plans that still come until STOP (bounded), so a
     * leader in the middle of an iteration is never left alone inside a
     * collective. */
    uint64_t until = llmos_now_ns() + 10000000000ull;
    while (!s->stopped && llmos_now_ns() < until)
        follower_poll(s);
    cl_mpi_group_recv_cancel(s->group);
}

/* ---------------------------------------------------------------- models */

int ms_stage(ms_t *s, const serve_load_t *l, serve_t **out, llmos_error_t *err) {
    serve_load_t rank = *l;
    rank.tp_rank = s->grank;
    rank.tp_size = s->tp;
    return serve_open(&rank, &s->sopts, out, err);
}

void ms_commit(ms_t *s, serve_t **core) {
    LLMOS_ASSERT(!s->core && *core);
    s->core = *core;
    *core = NULL;
    serve_stats_carry(s->core, &s->carry);
    s->stopped = false;
    s->available = true;
    serve_stats_t ss;
    serve_stats(s->core, &ss);
    LLMOS_INFO("model %s: replica %d rank %d of %d, %d slots, %d KV blocks, budget %d rows",
               serve_name(s->core), s->replica, s->grank, s->tp, ss.max_seqs, ss.kv_total, ss.token_budget);
}

/* ---------------------------------------------------------------- the actor */

static int ms_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    *state = arg;
    return 0;
}

static void ms_free(ms_t *s) {
    serve_destroy(&s->core);
    serve_destroy(&s->staged);
    model_tp_destroy(&s->tpg);
    cl_mpi_group_destroy(&s->group);
    rt_msg_free(s->load_req);
    free(s->load_corr);
    free(s);
}

static void ms_deinit(rt_ctx_t *ctx, void *state) {
    ms_t *s = state;
    if (s->grank == 0 && s->core)
        serve_fail_all(s->core, LLMOS_EUNAVAILABLE, "model: the node is shutting down");
    if (s->load_req) {
        rt_reply_error(ctx, s->load_req, LLMOS_EUNAVAILABLE, "model: the node is shutting down");
        rt_msg_free(s->load_req);
        s->load_req = NULL;
    }
    ms_group_stop(s);
    ms_free(s);
}

static int ms_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    ms_t *s = state;
    if (msg->flags & RT_MSG_REPLY) {
        ms_load_answer(s, ctx, msg);
        return 0;
    }
    switch (msg->type) {
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS: ms_reply_stats(s, ctx, msg); return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SHUTDOWN:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_COMMIT:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD_ABORT: ms_control(s, ctx, msg); return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE:
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL:
        if (s->grank != 0) {
            rt_reply_error(ctx, msg, LLMOS_EINVAL, "model/%d/%d is a follower: send requests to model/%d",
                           s->replica, s->grank, s->replica);
            return 0;
        }
        if (msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL)
            handle_cancel(s, ctx, msg);
        else
            handle_request(s, ctx, msg,
                           msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE ? SERVE_GENERATE
                           : msg->type == LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE  ? SERVE_SCORE
                                                                                  : SERVE_EMBED);
        return 0;
    default: return LLMOS_EUNKNOWNTYPE;
    }
}

static bool ms_idle(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    ms_t *s = state;
    if (s->shut || !s->core) return false;
    if (s->grank == 0 && s->load_req) return false; /* the group loads: the followers take no plan */
    return s->grank == 0 ? leader_step(s) : follower_poll(s);
}

/* ---------------------------------------------------------------- start-up */

int actors_model_start(rt_system_t *sys, cl_transport_t *tr, const actors_model_opts_t *o, bool mpi_on,
                       llmos_error_t *err) {
    int tp = o->tp > 0 ? o->tp : 1, world = cl_mpi_world_size(mpi_on);
    if (tp > 1 && !mpi_on)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "--tp %d needs MPI: start with mpirun -np N (a multiple of %d)", tp, tp);
    if (world % tp != 0)
        return llmos_error_set(
            err, LLMOS_EINVAL,
            "--tp %d does not divide the %d MPI ranks (mpirun -np must be a multiple of %d)", tp, world, tp);
    ms_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    s->sys = sys;
    s->tr = tr;
    s->tp = tp;
    s->sopts = (serve_opts_t){.threads = o->threads,
                              .max_seqs = o->max_seqs,
                              .kv_blocks = o->kv_blocks,
                              .token_budget = o->token_budget,
                              .queue_limit = o->queue_limit,
                              .sink = ms_sink,
                              .sink_arg = s};
    serve_opts_resolve(&s->sopts);
    cl_mpi_group_opts_t go = {.size = tp,
                              .mpi_on = mpi_on,
                              .tr = tr,
                              .msg_words = serve_plan_max_words(s->sopts.max_seqs, s->sopts.token_budget)};
    int rc = cl_mpi_group_new(&go, &s->group, err);
    if (rc) goto fail;
    s->replica = cl_mpi_group_replica(s->group);
    s->grank = cl_mpi_group_rank(s->group);
    if (tp > 1 && (rc = model_tp_new(cl_mpi_group_comm(s->group), &s->tpg, err))) goto fail;
    s->sopts.tp = s->tpg;
    serve_t *st = NULL;
    serve_load_t l = {.model = o->model, .tokenizer = o->tokenizer, .classifier = o->classifier, .q8 = o->q8};
    if ((rc = ms_stage(s, &l, &st, err))) goto fail;
    ms_commit(s, &st);
    char names[3][32];
    snprintf(names[0], sizeof names[0], "model/%d/%d", s->replica, s->grank);
    snprintf(names[1], sizeof names[1], "model/%d", s->replica);
    snprintf(names[2], sizeof names[2], "model");
    rt_actor_def_t def = {
        .kind = "model", .init = ms_init, .receive = ms_receive, .deinit = ms_deinit, .idle = ms_idle};
    rt_spawn_opts_t so = {.name = names[0], .pinned = true};
    rt_ref_t ref;
    if ((rc = rt_spawn(sys, &def, s, &so, &ref, err))) goto fail;
    /* From here the actor owns s (its deinit frees it). */
    if (s->grank == 0) {
        if ((rc = rt_register(sys, names[1], ref)) != 0)
            return llmos_error_set(err, rc, "registering %s: %s", names[1], llmos_strerror(rc));
        if (s->replica == 0 && (rc = rt_register(sys, names[2], ref)) != 0)
            return llmos_error_set(err, rc, "registering %s: %s", names[2], llmos_strerror(rc));
    }
    return 0;
fail:
    ms_free(s);
    return rc;
}
