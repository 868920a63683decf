/*
 * gen_context.c — one greedy GenerateRequest with GenerateRequest.context
 * to a node's model actor, for test_context.sh (no CLI sends context yet).
 *
 *   gen_context ENDPOINT [--prompt TEXT] [--context-file FILE] [--max-positions N]
 *               [--max-tokens N] [--echo]
 *
 * Prints one JSON object on stdout: {"text", "tokens", "prompt_tokens",
 * "kept", "dropped", "context_tokens", "finish_reason"}; exit 0.  A refused
 * request prints "error CODE (what): message" on stderr and exits 1; bad
 * arguments exit 2.
 */
#include "llmos/client.h"
#include "llmos/model.pb-c.h"
#include "runtime/base/buf.h"
#include "runtime/base/parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    llmos_buf_t b = LLMOS_BUF_INIT;
    int rc = llmos_buf_read_file(&b, f, 0);
    fclose(f);
    char *text = rc ? NULL : llmos_buf_take(&b, NULL);
    llmos_buf_deinit(&b);
    return text;
}

static int num(const char *v, uint32_t *out) {
    return llmos_parse_u32("number", v, 0, UINT32_MAX, 0, out, NULL) ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: gen_context ENDPOINT [--prompt T] [--context-file F] [--max-positions N] "
                        "[--max-tokens N] [--echo]\n");
        return 2;
    }
    Llmos__GenerateRequest q = LLMOS__GENERATE_REQUEST__INIT;
    Llmos__SamplingParams sp = LLMOS__SAMPLING_PARAMS__INIT; /* temperature 0: greedy */
    q.sampling = &sp;
    char *context = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--echo")) {
            q.echo_prompt = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "gen_context: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--prompt"))
            q.prompt = (char *)v;
        else if (!strcmp(a, "--context-file")) {
            if (!(context = slurp(v))) {
                fprintf(stderr, "gen_context: cannot read %s\n", v);
                return 2;
            }
            q.context = context;
        } else if (!strcmp(a, "--max-positions") && num(v, &q.max_positions) == 0)
            continue;
        else if (!strcmp(a, "--max-tokens") && num(v, &q.max_tokens) == 0)
            continue;
        else {
            fprintf(stderr, "gen_context: bad option %s %s\n", a, v);
            return 2;
        }
    }
    size_t len = llmos__generate_request__get_packed_size(&q);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return 2;
    llmos__generate_request__pack(&q, buf);
    llmos_client_t *c = NULL;
    llmos_client_error_t err = {0};
    llmos_client_opts_t o = {.timeout_ms = 60000};
    int rc = llmos_client_connect(argv[1], &o, &c, &err);
    llmos_client_reply_t *r = NULL;
    if (rc == 0)
        rc = llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE, buf, len, 60000, &r,
                               &err);
    free(buf);
    free(context);
    Llmos__GenerateResult *res = rc ? NULL : llmos__generate_result__unpack(NULL, r->len, r->data);
    llmos_client_reply_free(&r);
    llmos_client_destroy(&c);
    if (rc || !res) {
        fprintf(stderr, "error %d (%s): %s\n", rc, llmos_client_strerror(rc),
                rc ? err.msg : "not a GenerateResult");
        return 1;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", res->text);
    cJSON_AddNumberToObject(j, "tokens", (double)res->n_tokens);
    cJSON_AddNumberToObject(j, "prompt_tokens", res->prompt_tokens);
    cJSON_AddNumberToObject(j, "kept", res->context_lines_kept);
    cJSON_AddNumberToObject(j, "dropped", res->context_lines_dropped);
    cJSON_AddNumberToObject(j, "context_tokens", res->context_tokens);
    cJSON_AddStringToObject(j, "finish_reason", res->finish_reason);
    char *s = cJSON_PrintUnformatted(j);
    int out = s && printf("%s\n", s) > 0 ? 0 : 1;
    cJSON_free(s);
    cJSON_Delete(j);
    llmos__generate_result__free_unpacked(res, NULL);
    return out;
}
