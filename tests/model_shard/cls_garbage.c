/*
 * cls_garbage.c — bad Classify requests to a node serving a classifier
 * (llmosd --classifier), for test_classify.sh: payloads that are not a
 * ScoreRequest get EINVAL; a huge top_k is clamped to the classes; text
 * with invalid UTF-8 and control bytes is still classified; afterwards the
 * node answers stats with no KV block in use.
 *
 *   cls_garbage ENDPOINT CLASSES    exit 0 when all hold (messages on stderr otherwise)
 */
#include "llmos/client.h"
#include "llmos/model.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "cls_garbage: " __VA_ARGS__);                                                              \
            fprintf(stderr, "\n");                                                                                     \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: cls_garbage ENDPOINT CLASSES\n");
        return 2;
    }
    size_t classes = (size_t)atoi(argv[2]);
    llmos_client_t *c = NULL;
    llmos_client_error_t err = {0};
    CHECK(llmos_client_connect(argv[1], NULL, &c, &err) == 0, "connect: %s", err.msg);
    static const uint8_t junk[][8] = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x0a, 0x7f, 1, 2, 3, 4, 5, 6},
                                      {0x12, 0x05, 'a', 0, 0, 0, 0, 0}};
    for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++) {
        llmos_client_reply_t *r = NULL;
        int rc = llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, junk[k], sizeof junk[k], 20000, &r,
                                   &err);
        llmos_client_reply_free(&r);
        CHECK(rc == LLMOS_CLIENT_EINVAL, "garbage payload %zu: got %d (%s), not EINVAL", k, rc, err.msg);
    }
    llmos_client_cls_result_t *res = NULL;
    int rc = llmos_client_classify(c, NULL, "my card \xff\xfe\x01 arrived?", 4000000000u, 20000, &res, &err);
    CHECK(rc == 0, "classify with a huge top_k and bad bytes: %s", err.msg);
    CHECK(res->n == classes && strcmp(res->best, res->labels[0]) == 0, "got %zu classes, want %zu", res->n, classes);
    llmos_client_cls_result_free(&res);
    llmos_client_reply_t *r = NULL;
    rc = llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, NULL, 0, 20000, &r, &err);
    CHECK(rc == 0, "stats after garbage: %s", err.msg);
    Llmos__ModelStats *st = llmos__model_stats__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    CHECK(st && st->available && st->kv_blocks_used == 0 && st->classes == classes, "stats: not available, KV in use "
                                                                                    "or wrong classes");
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_destroy(&c);
    return 0;
}
