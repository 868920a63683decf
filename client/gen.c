/*
 * gen.c — generation through a node's model actor (include/llmos/client.h:
 * llmos_client_generate, llmos_client_generate_cancel).
 *
 * One GenerateRequest ask (protos/llmos/model.proto) over
 * llmos_client_call_stream: with a text callback the request asks for
 * streaming and every GenerateChunk is decoded and handed on; the reply's
 * GenerateResult becomes the caller's llmos_client_gen_result_t, so no
 * protobuf type crosses the public header.  A callback that stops the call
 * makes us send a CancelRequest (by request id) so the node frees the
 * sequence at once instead of generating into the void.
 */
#include "client_internal.h"
#include "llmos/client.h"

#include "llmos/model.pb-c.h"
#include "runtime/base/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gen_stream {
    llmos_client_text_fn fn;
    void *user;
    int bad; /* a chunk that did not decode */
} gen_stream_t;

static int on_chunk(void *user, uint32_t type, const void *data, size_t len) {
    gen_stream_t *st = user;
    if (type != LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE_CHUNK) return 0;
    Llmos__GenerateChunk *ch = llmos__generate_chunk__unpack(NULL, len, data);
    if (!ch) {
        st->bad++;
        return 0;
    }
    int rc = st->fn(st->user, ch->text ? ch->text : "", ch->text ? strlen(ch->text) : 0, ch->tokens, ch->n_tokens);
    llmos__generate_chunk__free_unpacked(ch, NULL);
    return rc;
}

void llmos_client_gen_result_free(llmos_client_gen_result_t **r) {
    if (!r || !*r) return;
    free((*r)->text);
    free((*r)->tokens);
    free(*r);
    *r = NULL;
}

int llmos_client_generate_cancel(llmos_client_t *c, const char *actor, const char *request_id, uint32_t timeout_ms,
                        int *found, llmos_client_error_t *err) {
    if (!request_id || !request_id[0]) return client_err(err, LLMOS_CLIENT_EINVAL, "cancel: no request id");
    Llmos__CancelRequest q = LLMOS__CANCEL_REQUEST__INIT;
    q.request_id = (char *)request_id;
    uint8_t buf[512];
    size_t n = llmos__cancel_request__get_packed_size(&q);
    if (n > sizeof buf) return client_err(err, LLMOS_CLIENT_EINVAL, "cancel: request id of %zu bytes is too long", n);
    llmos__cancel_request__pack(&q, buf);
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, actor ? actor : "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL, buf, n,
                               timeout_ms, &r, err);
    if (rc == 0) {
        Llmos__CancelResult *cr = llmos__cancel_result__unpack(NULL, r->len, r->data);
        if (!cr)
            rc = client_err(err, LLMOS_CLIENT_EFORMAT, "cancel: the reply (%zu bytes) is not a CancelResult", r->len);
        else if (found)
            *found = cr->found;
        if (cr) llmos__cancel_result__free_unpacked(cr, NULL);
    }
    llmos_client_reply_free(&r);
    return rc;
}

int llmos_client_generate(llmos_client_t *c, const char *prompt, const llmos_client_gen_opts_t *opts,
                          llmos_client_text_fn on_text, void *user, llmos_client_gen_result_t **out,
                          llmos_client_error_t *err) {
    if (out) *out = NULL;
    static const llmos_client_gen_opts_t defaults = {0};
    if (!opts) opts = &defaults;
    const char *actor = opts->actor ? opts->actor : "model";
    Llmos__SamplingParams sp = LLMOS__SAMPLING_PARAMS__INIT;
    sp.temperature = opts->temperature;
    sp.top_p = opts->top_p;
    sp.top_k = opts->top_k;
    sp.repetition_penalty = opts->repetition_penalty;
    sp.seed = opts->seed;
    Llmos__GenerateRequest q = LLMOS__GENERATE_REQUEST__INIT;
    q.prompt = (char *)(prompt ? prompt : "");
    q.context = (char *)(opts->context ? opts->context : "");
    q.max_tokens = opts->max_tokens;
    q.max_positions = opts->max_positions;
    q.sampling = &sp;
    q.n_stop = opts->n_stop;
    q.stop = (char **)opts->stop;
    q.stream = on_text != NULL;
    q.echo_prompt = opts->echo_prompt != 0;
    char rid[40];
    if (opts->request_id) {
        q.request_id = (char *)opts->request_id;
    } else {
        static unsigned long long seq;
        snprintf(rid, sizeof rid, "gen-%llx-%llx", (unsigned long long)llmos_now_ns(),
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        q.request_id = rid;
    }
    size_t n = llmos__generate_request__get_packed_size(&q);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a %zu-byte request", n);
    llmos__generate_request__pack(&q, buf);
    gen_stream_t st = {on_text, user, 0};
    llmos_client_reply_t *reply = NULL;
    int rc = llmos_client_call_stream(c, actor, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, n, opts->timeout_ms,
                                      on_text ? on_chunk : NULL, &st, &reply, err);
    free(buf);
    if (rc == LLMOS_CLIENT_ECANCELED && !reply) { /* our callback stopped: stop the node too */
        llmos_client_error_t e2;
        llmos_client_generate_cancel(c, actor, q.request_id, 0, NULL, &e2);
        return client_err(err, LLMOS_CLIENT_ECANCELED, "generate: stopped by the text callback");
    }
    if (rc) {
        llmos_client_reply_free(&reply);
        return rc;
    }
    Llmos__GenerateResult *res = llmos__generate_result__unpack(NULL, reply->len, reply->data);
    llmos_client_reply_free(&reply);
    if (!res) return client_err(err, LLMOS_CLIENT_EFORMAT, "generate: the reply is not a GenerateResult");
    if (st.bad) rc = client_err(err, LLMOS_CLIENT_EFORMAT, "generate: %d stream chunks did not decode", st.bad);
    if (rc == 0 && out) {
        llmos_client_gen_result_t *r = calloc(1, sizeof *r);
        size_t tl = res->text ? strlen(res->text) : 0;
        if (r) {
            r->text = malloc(tl + 1);
            r->tokens = malloc(sizeof(int32_t) * (res->n_tokens ? res->n_tokens : 1));
        }
        if (!r || !r->text || !r->tokens) {
            llmos_client_gen_result_free(&r);
            rc = client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for the result");
        } else {
            memcpy(r->text, res->text ? res->text : "", tl + 1);
            r->text_len = tl;
            if (res->n_tokens) memcpy(r->tokens, res->tokens, sizeof(int32_t) * res->n_tokens);
            r->n_tokens = res->n_tokens;
            r->prompt_tokens = res->prompt_tokens;
            r->context_lines_kept = res->context_lines_kept;
            r->context_lines_dropped = res->context_lines_dropped;
            snprintf(r->finish_reason, sizeof r->finish_reason, "%s", res->finish_reason ? res->finish_reason : "");
            r->time_to_first_token_us = res->time_to_first_token_us;
            r->total_us = res->total_us;
            r->queued_us = res->queued_us;
            *out = r;
        }
    }
    llmos__generate_result__free_unpacked(res, NULL);
    return rc;
}
