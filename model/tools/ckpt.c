/*
 * ckpt.c — llmos-ckpt: look into and use checkpoint stores; `llmos ckpt`
 * runs it.
 *
 *   llmos-ckpt ls DIR                 versions: step, mode, losses, size
 *   llmos-ckpt show DIR [VERSION]     a version's meta record (JSON)
 *   llmos-ckpt export DIR OUT.bin     the model with the trained body
 *                                     (LoRA merged) as a llama2.c file
 * n-gram classifiers (llmos-train --mode ngram) list and show like the
 * others (mode "ngram"); they have no model to export.
 */
#include "model/train/ngram.h"
#include "model/train/trainer.h"
#include "runtime/base/parse.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ls_ctx {
    int latest, best;
} ls_ctx_t;

static int print_version(int version, const char *meta, size_t bytes, void *ctx) {
    ls_ctx_t *c = ctx;
    cJSON *m = cJSON_Parse(meta);
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(m, "step"), *mode = cJSON_GetObjectItemCaseSensitive(m, "mode"),
                *tl = cJSON_GetObjectItemCaseSensitive(m, "train_loss"), *vm = cJSON_GetObjectItemCaseSensitive(m, "val_metric");
    char vbuf[32] = "-";
    if (cJSON_IsNumber(vm)) snprintf(vbuf, sizeof vbuf, "%.4f", vm->valuedouble);
    printf("%7d  %8.0f  %-8s  %10.4f  %10s  %10.1f MB  %s%s\n", version, cJSON_IsNumber(step) ? step->valuedouble : -1,
           cJSON_IsString(mode) ? mode->valuestring : "?", cJSON_IsNumber(tl) ? tl->valuedouble : NAN, vbuf,
           (double)bytes / 1e6, version == c->latest ? "latest " : "", version == c->best ? "best" : "");
    cJSON_Delete(m);
    return 0;
}

static const struct {
    const char *cmd, *usage;
} commands[] = {
    {"ls", "llmos-ckpt ls DIR                 the versions in DIR/ckpt.lmdb: step, mode, losses, size,\n"
           "                                  which is the latest and the best\n"},
    {"show", "llmos-ckpt show DIR [VERSION]     a version's meta record as JSON (default: the latest)\n"},
    {"export",
     "llmos-ckpt export DIR OUT.bin     the model with the trained body (LoRA merged) as a llama2.c\n"
     "                                  file (the best version, else the latest; not n-gram classifiers)\n"},
};

static void usage(FILE *f) {
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %s", commands[i].usage);
    fprintf(f, "  llmos-ckpt COMMAND --help         that command's usage\n");
}

static int is_help(const char *a) {
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

int main(int argc, char **argv) {
    if (argc >= 2 && (is_help(argv[1]) || !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    size_t k = 0, n = sizeof commands / sizeof commands[0];
    while (argc >= 2 && k < n && strcmp(argv[1], commands[k].cmd) != 0)
        k++;
    if (argc < 2 || k == n) {
        if (argc >= 2) fprintf(stderr, "llmos-ckpt: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i])) {
            printf("usage: %s", commands[k].usage);
            return 0;
        }
    int want = k == 2 ? 4 : 3; /* export DIR OUT; ls DIR; show DIR [VERSION] */
    if (argc < want || argc > (k == 1 ? 4 : want)) {
        fprintf(stderr, "usage: %s", commands[k].usage);
        return 2;
    }
    llmos_error_t err = {0};
    int rc = 0;
    if (!strcmp(argv[1], "ls") || !strcmp(argv[1], "show")) {
        train_ckpt_t *c = NULL;
        rc = train_ckpt_open(argv[2], 0, &c, &err);
        if (!rc && !strcmp(argv[1], "ls")) {
            ls_ctx_t lc = {0, 0};
            train_ckpt_pointer(c, 0, &lc.latest, NULL);
            train_ckpt_pointer(c, 1, &lc.best, NULL);
            printf("%7s  %8s  %-8s  %10s  %10s  %13s\n", "version", "step", "mode", "train_loss", "val_metric", "size");
            rc = train_ckpt_list(c, print_version, &lc, &err);
        } else if (!rc) {
            int v = 0;
            if (argc > 3 && llmos_parse_int("VERSION", argv[3], 1, INT32_MAX, &v, NULL))
                rc = llmos_error_set(&err, LLMOS_EINVAL, "VERSION '%s' is not a version number (1, 2, ...)",
                                     argv[3]);
            else if (argc <= 3)
                rc = train_ckpt_pointer(c, 0, &v, &err);
            char *meta = NULL;
            if (!rc) rc = train_ckpt_meta(c, v, &meta, &err);
            if (!rc) {
                cJSON *m = cJSON_Parse(meta);
                char *pretty = m ? cJSON_Print(m) : NULL;
                printf("%s\n", pretty ? pretty : meta);
                free(pretty);
                cJSON_Delete(m);
            }
            free(meta);
        }
        train_ckpt_close(&c);
    } else {
        train_loaded_t ld = {0};
        int is_ngram = 0;
        rc = ngram_ckpt_probe(argv[2], 1, &is_ngram, &err);
        if (!rc && is_ngram) rc = llmos_error_set(&err, LLMOS_EINVAL, "%s: an n-gram classifier has no model to export", argv[2]);
        if (!rc) rc = train_loaded_open(&ld, argv[2], 1, NULL, NULL, 1, 1, &err);
        if (!rc) rc = train_net_store_model(ld.net, ld.model, &err);
        if (!rc) rc = model_save_llama2c(ld.model, argv[3], &err);
        if (!rc) printf("wrote %s (version %d)\n", argv[3], ld.version);
        train_loaded_deinit(&ld);
    }
    if (rc) fprintf(stderr, "llmos-ckpt: %s\n", err.msg);
    return rc ? 1 : 0;
}
