/*
 * model.c — a node's model actor administered (include/llmos/client.h,
 * "The model actor"): its counters (ModelStats), and loading or unloading
 * its model at run time.  Each call is one ask (protos/llmos/model.proto)
 * answered with ModelStats, copied into llmos_client_model_stats_t so no
 * protobuf type crosses the public header.  Generation is gen.c's,
 * classification classify.c's.
 */
#include "client_internal.h"
#include "llmos/client.h"

#include "llmos/model.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llmos_client_model_stats_free(llmos_client_model_stats_t **sp) {
    if (!sp || !*sp) return;
    free((*sp)->model);
    free((*sp)->classifier);
    free(*sp);
    *sp = NULL;
}

/* Asks actor (NULL = "model") for type with payload and decodes the
 * ModelStats it answers into *out. */
static int stats_ask(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                     uint32_t timeout_ms, const char *what, llmos_client_model_stats_t **out,
                     llmos_client_error_t *err) {
    if (!out) return client_err(err, LLMOS_CLIENT_EINVAL, "model %s: no place for the stats", what);
    *out = NULL;
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "model %s: no client", what);
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, actor ? actor : "model", type, data, len, timeout_ms, &r, err);
    if (rc) {
        llmos_client_reply_free(&r);
        return rc;
    }
    Llmos__ModelStats *m = llmos__model_stats__unpack(NULL, r->len, r->data);
    size_t rlen = r->len;
    llmos_client_reply_free(&r);
    if (!m)
        return client_err(err, LLMOS_CLIENT_EFORMAT, "model %s: the reply (%zu bytes) is not a ModelStats",
                          what, rlen);
    llmos_client_model_stats_t *s = calloc(1, sizeof *s);
    if (s) {
        s->model = strdup(m->model ? m->model : "");
        s->classifier = strdup(m->classifier ? m->classifier : "");
    }
    if (!s || !s->model || !s->classifier) {
        llmos_client_model_stats_free(&s);
        llmos__model_stats__free_unpacked(m, NULL);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "model %s: no memory for the stats", what);
    }
    s->replica = m->replica;
    s->tp = m->tp;
    s->available = m->available;
    s->running = m->running;
    s->queued = m->queued;
    s->kv_blocks_used = m->kv_blocks_used;
    s->kv_blocks_total = m->kv_blocks_total;
    s->kv_block_tokens = m->kv_block_tokens;
    s->requests_done = m->requests_done;
    s->tokens_generated = m->tokens_generated;
    s->iterations = m->iterations;
    s->prompt_tokens = m->prompt_tokens;
    s->rejected_overloaded = m->rejected_overloaded;
    s->token_budget = m->token_budget;
    s->queue_limit = m->queue_limit;
    s->vocab_size = m->vocab_size;
    s->seq_len = m->seq_len;
    s->dim = m->dim;
    s->classes = m->classes;
    s->classifier_version = m->classifier_version;
    llmos__model_stats__free_unpacked(m, NULL);
    *out = s;
    return 0;
}

int llmos_client_model_stats(llmos_client_t *c, const char *actor, uint32_t timeout_ms,
                             llmos_client_model_stats_t **out, llmos_client_error_t *err) {
    return stats_ask(c, actor, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, NULL, 0, timeout_ms, "stats", out,
                     err);
}

int llmos_client_model_unload(llmos_client_t *c, const char *actor, uint32_t timeout_ms,
                              llmos_client_model_stats_t **out, llmos_client_error_t *err) {
    return stats_ask(c, actor, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD, NULL, 0, timeout_ms, "unload", out,
                     err);
}

int llmos_client_model_load(llmos_client_t *c, const char *actor, const llmos_client_model_load_opts_t *opts,
                            uint32_t timeout_ms, llmos_client_model_stats_t **out,
                            llmos_client_error_t *err) {
    if (out) *out = NULL;
    if (!opts || !opts->path) return client_err(err, LLMOS_CLIENT_EINVAL, "model load: no path");
    Llmos__ModelLoadRequest q = LLMOS__MODEL_LOAD_REQUEST__INIT;
    q.path = (char *)opts->path;
    q.tokenizer = (char *)(opts->tokenizer ? opts->tokenizer : "");
    q.classifier = (char *)(opts->classifier ? opts->classifier : "");
    q.q8 = opts->q8 != 0;
    size_t len = llmos__model_load_request__get_packed_size(&q);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return client_err(err, LLMOS_CLIENT_ENOMEM, "model load: no memory for a %zu-byte request", len);
    llmos__model_load_request__pack(&q, buf);
    int rc =
        stats_ask(c, actor, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD, buf, len, timeout_ms, "load", out, err);
    free(buf);
    return rc;
}
