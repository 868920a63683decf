/*
 * cmd_classify.c — `llmos [--endpoint E] classify TEXT... [--file F] [--top K]
 * [--json] [--actor model|model/R]`: labels texts with the fine-tuned
 * classifier the node serves (llmosd --classifier DIR), through
 * llmos_client_classify.
 *
 * Output per text: the classes returned, most probable first, one
 * "LABEL<TAB>PROB" line each (a blank line between texts); with --json one
 * line per text: {"text", "best", "labels": [...], "probs": [...]}.
 * --file F classifies each non-empty line of F ("-" = stdin).  The first
 * failure stops the command (exit 1) with the node's message on stderr.
 *
 * Links libllmos-client and cJSON only.
 */
#include "cmd_classify.h"

#include "llmos/client.h"
#include "runtime/base/parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLS_DEFAULT_TIMEOUT_MS 120000u /* when the global --timeout was left at its default */

static void cls_usage(FILE *f) {
    fprintf(f,
            "usage: llmos [--endpoint E] classify TEXT... [--file FILE|-] [--top K] [--json] [--actor "
            "model|model/R]\n"
            "  Labels each TEXT (and each non-empty line of FILE) with the node's classifier (llmosd\n"
            "  --classifier DIR): LABEL<TAB>PROB lines, most probable first; --json: one object per text.\n");
}

typedef struct cls_run {
    llmos_client_t *c;
    const char *actor;
    uint32_t top, timeout_ms;
    int json, printed;
} cls_run_t;

static int print_json(const char *text, const llmos_client_cls_result_t *r) {
    cJSON *o = cJSON_CreateObject(), *l = cJSON_CreateArray(), *p = cJSON_CreateArray();
    int ok = o && l && p && cJSON_AddStringToObject(o, "text", text) && cJSON_AddStringToObject(o, "best", r->best);
    for (size_t i = 0; ok && i < r->n; i++)
        ok = cJSON_AddItemToArray(l, cJSON_CreateString(r->labels[i])) &&
             cJSON_AddItemToArray(p, cJSON_CreateNumber((double)r->probs[i]));
    if (ok && cJSON_AddItemToObject(o, "labels", l)) l = NULL;
    if (ok && cJSON_AddItemToObject(o, "probs", p)) p = NULL;
    char *s = ok && !l && !p ? cJSON_PrintUnformatted(o) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(l);
    cJSON_Delete(p);
    cJSON_Delete(o);
    return s ? 0 : -1;
}

static int classify_one(cls_run_t *run, const char *text) {
    llmos_client_error_t err = {0};
    llmos_client_cls_result_t *r = NULL;
    if (llmos_client_classify(run->c, run->actor, text, run->top, run->timeout_ms, &r, &err) != 0) {
        fprintf(stderr, "llmos classify: %s (%s)\n", err.msg, llmos_client_strerror(err.code));
        return 1;
    }
    int rc = 0;
    if (run->json) {
        if (print_json(text, r)) {
            fprintf(stderr, "llmos classify: no memory\n");
            rc = 1;
        }
    } else {
        if (run->printed) printf("\n");
        for (size_t i = 0; i < r->n; i++) printf("%s\t%.6f\n", r->labels[i], (double)r->probs[i]);
    }
    run->printed++;
    llmos_client_cls_result_free(&r);
    fflush(stdout);
    return rc;
}

static int classify_file(cls_run_t *run, const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "llmos classify: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n > 0) rc = classify_one(run, line);
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "llmos classify: error reading %s\n", path);
        rc = 1;
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_classify(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    cls_run_t run = {.actor = "model", .timeout_ms = timeout_ms == 5000 ? CLS_DEFAULT_TIMEOUT_MS : timeout_ms};
    const char *file = NULL;
    int n_texts = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cls_usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            run.json = 1;
        } else if (strcmp(a, "--top") == 0 || strcmp(a, "--file") == 0 || strcmp(a, "--actor") == 0) {
            if (!v) {
                fprintf(stderr, "llmos classify: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (a[2] == 'f') {
                file = v;
            } else if (a[2] == 'a') {
                run.actor = v;
            } else {
                if (llmos_parse_u32("--top", v, 0, 1000000, 0, &run.top, NULL)) {
                    fprintf(stderr, "llmos classify: --top needs a whole number in [0, 1000000], got '%s'\n", v);
                    return 2;
                }
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "llmos classify: unknown option '%s'\n", a);
            cls_usage(stderr);
            return 2;
        } else {
            n_texts++;
        }
    }
    if (!n_texts && !file) {
        cls_usage(stderr);
        return 2;
    }
    llmos_client_error_t err = {0};
    if (llmos_client_connect(endpoint, NULL, &run.c, &err) != 0 || llmos_client_ping(run.c, timeout_ms, NULL, &err) != 0) {
        fprintf(stderr, "llmos classify: %s\n", err.msg); /* (a dead node: known within --timeout, not the 2-minute call timeout) */
        llmos_client_destroy(&run.c);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--top") == 0 || strcmp(a, "--file") == 0 || strcmp(a, "--actor") == 0)
            i++;
        else if (!(a[0] == '-' && a[1] == '-'))
            rc = classify_one(&run, a);
    }
    if (!rc && file) rc = classify_file(&run, file);
    llmos_client_destroy(&run.c);
    return rc;
}
