/*
 * classify.c — classification through a node's model actor
 * (include/llmos/client.h: llmos_client_classify).
 *
 * One ScoreRequest without labels (protos/llmos/model.proto): the node's
 * loaded classifier answers with its classes by falling probability; the
 * ScoreResult becomes an llmos_client_cls_result_t so no protobuf type
 * crosses the public header.
 */
#include "client_internal.h"
#include "llmos/client.h"

#include "llmos/model.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llmos_client_cls_result_free(llmos_client_cls_result_t **r) {
    if (!r || !*r) return;
    for (size_t i = 0; (*r)->labels && i < (*r)->n; i++) free((*r)->labels[i]);
    free((*r)->labels);
    free((*r)->probs);
    free(*r);
    *r = NULL;
}

/* The decoded reply as the caller's result. */
static int cls_result(const Llmos__ScoreResult *sr, llmos_client_cls_result_t **out, llmos_client_error_t *err) {
    if (sr->n_labels == 0 || sr->n_probs != sr->n_labels)
        return client_err(err, LLMOS_CLIENT_EFORMAT, "classify: the reply has %zu labels and %zu probabilities",
                       sr->n_labels, sr->n_probs);
    llmos_client_cls_result_t *r = calloc(1, sizeof *r);
    if (!r) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory");
    r->labels = calloc(sr->n_labels, sizeof *r->labels);
    r->probs = malloc(sizeof(float) * sr->n_labels);
    int rc = r->labels && r->probs ? 0 : LLMOS_CLIENT_ENOMEM;
    for (size_t i = 0; !rc && i < sr->n_labels; i++, r->n++) {
        if (!(r->labels[i] = strdup(sr->labels[i] ? sr->labels[i] : ""))) rc = LLMOS_CLIENT_ENOMEM;
        r->probs[i] = sr->probs[i];
    }
    if (rc) {
        llmos_client_cls_result_free(&r);
        return client_err(err, rc, "no memory");
    }
    r->best = r->labels[0];
    *out = r;
    return 0;
}

int llmos_client_classify(llmos_client_t *c, const char *actor, const char *text, uint32_t top_k,
                          uint32_t timeout_ms, llmos_client_cls_result_t **out, llmos_client_error_t *err) {
    if (!c || !text || !out) return client_err(err, LLMOS_CLIENT_EINVAL, "classify: no handle, text or result");
    *out = NULL;
    Llmos__ScoreRequest q = LLMOS__SCORE_REQUEST__INIT;
    q.prompt = (char *)text;
    q.top_k = top_k;
    size_t n = llmos__score_request__get_packed_size(&q);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory");
    llmos__score_request__pack(&q, buf);
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, actor ? actor : "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, buf, n,
                               timeout_ms, &r, err);
    free(buf);
    if (rc == 0) {
        Llmos__ScoreResult *sr = llmos__score_result__unpack(NULL, r->len, r->data);
        rc = sr ? cls_result(sr, out, err)
                : client_err(err, LLMOS_CLIENT_EFORMAT, "classify: the reply (%zu bytes) is not a ScoreResult", r->len);
        if (sr) llmos__score_result__free_unpacked(sr, NULL);
    }
    llmos_client_reply_free(&r);
    return rc;
}
