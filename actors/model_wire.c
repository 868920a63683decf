/*
 * model_wire.c — protobuf-c messages of the model service to and from the
 * serving core's structs and events (see model_wire.h).
 */
#include "actors/model_wire.h"

#include "actors/cls_result.h"
#include "llmos/model.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string field of a message: its number and the name errors give it. */
typedef struct wire_field {
    uint32_t num;
    const char *name;
    bool repeated;
} wire_field_t;

static bool wire_varint(const uint8_t *d, size_t len, size_t *at, uint64_t *v) {
    *v = 0;
    for (int shift = 0; *at < len && shift < 64; shift += 7) {
        uint8_t b = d[(*at)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* The top-level string fields f of a message (one protobuf-c already
 * decoded, so the framing is sound) that hold a NUL byte are refused, with
 * their name (and index, for a repeated one). */
static int wire_nul(const rt_msg_t *msg, const wire_field_t *f, size_t nf, llmos_error_t *err) {
    const uint8_t *d = msg->data;
    size_t at = 0, len = msg->len, seen[8] = {0};
    char name[64];
    while (at < len) {
        uint64_t tag, n;
        if (!wire_varint(d, len, &at, &tag)) return 0;
        switch (tag & 7) {
        case 0:
            if (!wire_varint(d, len, &at, &n)) return 0;
            break;
        case 1: at += 8; break;
        case 5: at += 4; break;
        case 2:
            if (!wire_varint(d, len, &at, &n) || n > len - at) return 0;
            for (size_t k = 0; k < nf && k < 8; k++) {
                if (f[k].num != tag >> 3) continue;
                const uint8_t *z = memchr(d + at, 0, (size_t)n);
                if (f[k].repeated)
                    snprintf(name, sizeof name, "%s[%zu]", f[k].name, seen[k]++);
                else
                    snprintf(name, sizeof name, "%s", f[k].name);
                if (z)
                    return llmos_error_set(err, LLMOS_EINVAL,
                                           "%s: a NUL byte at offset %zu (text may not hold NUL)", name,
                                           (size_t)(z - (d + at)));
            }
            at += (size_t)n;
            break;
        default: return 0;
        }
    }
    return 0;
}

void actors_model_pb_free(void **pb) {
    if (!pb || !*pb) return;
    protobuf_c_message_free_unpacked((ProtobufCMessage *)*pb, NULL);
    *pb = NULL;
}

static int decode_generate(const rt_msg_t *msg, actors_model_req_t *out, llmos_error_t *err) {
    Llmos__GenerateRequest *g = llmos__generate_request__unpack(NULL, msg->len, msg->data);
    if (!g)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "generate: the payload (%zu bytes) is not a GenerateRequest", msg->len);
    out->pb = g;
    static const wire_field_t strs[] = {
        {1, "prompt", false}, {5, "stop", true}, {7, "request_id", false}, {10, "context", false}};
    int rc = wire_nul(msg, strs, 4, err);
    if (rc) return rc;
    serve_request_t *rq = &out->rq;
    rq->text = g->prompt;
    rq->prompt_tokens = g->prompt_tokens;
    rq->n_prompt_tokens = g->n_prompt_tokens;
    rq->context = g->context;
    rq->max_tokens = g->max_tokens;
    rq->max_positions = g->max_positions;
    if (g->sampling) {
        out->sampling = (serve_sampling_t){.temperature = g->sampling->temperature,
                                           .top_k = g->sampling->top_k,
                                           .top_p = g->sampling->top_p,
                                           .repetition_penalty = g->sampling->repetition_penalty,
                                           .seed = g->sampling->seed};
        rq->sampling = &out->sampling;
    }
    rq->stops = (const char *const *)g->stop;
    rq->n_stops = g->n_stop;
    rq->request_id = g->request_id;
    rq->stream = g->stream;
    rq->echo = g->echo_prompt;
    return 0;
}

static int decode_embed(const rt_msg_t *msg, actors_model_req_t *out, llmos_error_t *err) {
    Llmos__EmbedRequest *e = llmos__embed_request__unpack(NULL, msg->len, msg->data);
    if (!e)
        return llmos_error_set(err, LLMOS_EINVAL, "embed: the payload (%zu bytes) is not an EmbedRequest",
                               msg->len);
    out->pb = e;
    static const wire_field_t strs[] = {{1, "text", false}, {2, "pooling", false}};
    int rc = wire_nul(msg, strs, 2, err);
    if (rc) return rc;
    out->rq.text = e->text;
    out->rq.pooling = e->pooling;
    return 0;
}

static int decode_score(const rt_msg_t *msg, actors_model_req_t *out, llmos_error_t *err) {
    Llmos__ScoreRequest *q = llmos__score_request__unpack(NULL, msg->len, msg->data);
    if (!q)
        return llmos_error_set(err, LLMOS_EINVAL, "score: the payload (%zu bytes) is not a ScoreRequest",
                               msg->len);
    out->pb = q;
    static const wire_field_t strs[] = {{1, "prompt", false}, {2, "labels", true}};
    int rc = wire_nul(msg, strs, 2, err);
    if (rc) return rc;
    out->rq.text = q->prompt;
    out->rq.labels = (const char *const *)q->labels;
    out->rq.n_labels = q->n_labels;
    out->rq.top_k = q->top_k;
    return 0;
}

int actors_model_req_decode(const rt_msg_t *msg, serve_kind_t kind, actors_model_req_t *out,
                            llmos_error_t *err) {
    memset(out, 0, sizeof *out);
    out->rq.kind = kind;
    out->rq.corr = msg->corr;
    out->rq.origin = msg->from.node;
    out->rq.deadline_ms = msg->deadline_ms;
    int rc = kind == SERVE_GENERATE ? decode_generate(msg, out, err)
             : kind == SERVE_EMBED  ? decode_embed(msg, out, err)
                                    : decode_score(msg, out, err);
    if (rc) actors_model_pb_free(&out->pb);
    return rc;
}

void actors_model_req_deinit(actors_model_req_t *r) {
    actors_model_pb_free(&r->pb);
}

uint32_t actors_model_reply_type(serve_kind_t kind) {
    return kind == SERVE_EMBED                             ? LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED
           : kind == SERVE_SCORE || kind == SERVE_CLASSIFY ? LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE
                                                           : LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE;
}

/* Packs pm into stack when it fits, else into a new buffer. */
static int pack(const ProtobufCMessage *pm, uint8_t *stack, size_t cap, uint8_t **buf, size_t *len) {
    size_t n = protobuf_c_message_get_packed_size(pm);
    uint8_t *b = n <= cap ? stack : malloc(n ? n : 1);
    if (!b) return LLMOS_ENOMEM;
    protobuf_c_message_pack(pm, b);
    *buf = b;
    *len = n;
    return 0;
}

int actors_model_event_pack(const serve_event_t *ev, uint8_t *stack, size_t cap, uint32_t *type,
                            uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    *type = actors_model_reply_type(ev->kind);
    if (ev->type == SERVE_EV_CHUNK) {
        Llmos__GenerateChunk ch = LLMOS__GENERATE_CHUNK__INIT;
        ch.text = (char *)ev->u.chunk.text;
        ch.n_tokens = (size_t)ev->u.chunk.n_tokens;
        ch.tokens = (int32_t *)ev->u.chunk.tokens;
        ch.index = ev->u.chunk.index;
        *type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE_CHUNK;
        return pack(&ch.base, stack, cap, buf, len);
    }
    if (ev->type != SERVE_EV_DONE) return 0;
    switch (ev->kind) {
    case SERVE_CLASSIFY:
        return actors_cls_result_pack(ev->u.classified.labels, ev->u.classified.probs,
                                      ev->u.classified.n_classes, ev->u.classified.top_k, buf, len);
    case SERVE_SCORE: {
        Llmos__ScoreResult sr = LLMOS__SCORE_RESULT__INIT;
        sr.n_labels = sr.n_log_probs = sr.n_probs = (size_t)ev->u.scored.n;
        sr.labels = (char **)ev->u.scored.labels;
        sr.log_probs = (float *)ev->u.scored.log_probs;
        sr.probs = (float *)ev->u.scored.probs;
        sr.best = (char *)ev->u.scored.labels[ev->u.scored.best];
        return pack(&sr.base, stack, cap, buf, len);
    }
    case SERVE_EMBED: {
        Llmos__EmbedResult er = LLMOS__EMBED_RESULT__INIT;
        er.n_vector = (size_t)ev->u.embedded.dim;
        er.vector = (float *)ev->u.embedded.vector;
        er.tokens = (uint32_t)ev->u.embedded.tokens;
        return pack(&er.base, stack, cap, buf, len);
    }
    default: {
        Llmos__GenerateResult gr = LLMOS__GENERATE_RESULT__INIT;
        gr.text = (char *)ev->u.generated.text;
        gr.n_tokens = (size_t)ev->u.generated.n_tokens;
        gr.tokens = (int32_t *)ev->u.generated.tokens;
        gr.prompt_tokens = (uint32_t)ev->u.generated.prompt_tokens;
        gr.context_lines_kept = (uint32_t)ev->u.generated.context_lines_kept;
        gr.context_lines_dropped = (uint32_t)ev->u.generated.context_lines_dropped;
        gr.context_tokens = (uint32_t)ev->u.generated.context_tokens;
        gr.finish_reason = (char *)ev->u.generated.finish_reason;
        gr.time_to_first_token_us = ev->u.generated.ttft_us;
        gr.total_us = ev->u.generated.total_us;
        gr.queued_us = ev->u.generated.queued_us;
        return pack(&gr.base, stack, cap, buf, len);
    }
    }
}

int actors_model_cancel_decode(const rt_msg_t *msg, uint64_t *corr, const char **request_id, void **pb,
                               llmos_error_t *err) {
    *corr = 0;
    *request_id = NULL;
    *pb = NULL;
    Llmos__CancelRequest *c = llmos__cancel_request__unpack(NULL, msg->len, msg->data);
    if (!c)
        return llmos_error_set(err, LLMOS_EINVAL, "cancel: the payload (%zu bytes) is not a CancelRequest",
                               msg->len);
    *pb = c;
    static const wire_field_t strs[] = {{2, "request_id", false}};
    int rc = wire_nul(msg, strs, 1, err);
    if (rc) {
        llmos_error_prefix(err, "cancel: ");
    } else if (!c->correlation_id && !(c->request_id && c->request_id[0])) {
        rc = llmos_error_set(err, LLMOS_EINVAL, "cancel: give correlation_id or request_id");
    } else {
        *corr = c->correlation_id;
        *request_id = c->request_id && c->request_id[0] ? c->request_id : NULL;
        return 0;
    }
    actors_model_pb_free(pb);
    return rc;
}

int actors_model_load_decode(const rt_msg_t *msg, serve_load_t *l, void **pb, llmos_error_t *err) {
    *pb = NULL;
    Llmos__ModelLoadRequest *q = llmos__model_load_request__unpack(NULL, msg->len, msg->data);
    if (!q)
        return llmos_error_set(err, LLMOS_EINVAL, "the payload (%zu bytes) is not a ModelLoadRequest",
                               msg->len);
    *pb = q;
    static const wire_field_t strs[] = {
        {1, "path", false}, {2, "tokenizer", false}, {4, "classifier", false}};
    int rc = (!q->path || !q->path[0]) && (!q->classifier || !q->classifier[0])
                 ? llmos_error_set(err, LLMOS_EINVAL, "path is empty (and no classifier given)")
                 : wire_nul(msg, strs, 3, err);
    if (rc) {
        actors_model_pb_free(pb);
        return rc;
    }
    l->model = q->path;
    l->tokenizer = q->tokenizer;
    l->classifier = q->classifier;
    l->q8 = q->q8;
    return 0;
}
