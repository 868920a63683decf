/*
 * ngram_dump.c — for ngram_sklearn.py: builds the n-gram vocabulary of a
 * CSV file (text,category; every row; default feature options, the fast
 * svm solver since only the features matter) and prints the TF-IDF vector
 * of its first N texts, one JSON object per line: {"w:<n-gram>": value,
 * "c:<n-gram>": value, ...} (w = word block, c = char block).
 *
 *   ngram_dump FILE.csv N
 */
#include "model/train/ngram.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ngram_dump FILE.csv N\n");
        return 2;
    }
    llmos_error_t err = {0};
    train_labels_t labels = {0};
    train_dataset_t ds = {0};
    ngram_model_t *m = NULL;
    ngram_opts_t o;
    ngram_opts_default(&o);
    o.solver = NGRAM_SOLVER_SVM;
    int rc = train_dataset_load(&ds, argv[1], "text", "category", &labels, &err);
    if (!rc) rc = ngram_model_train(&o, &ds, NULL, ds.n, &labels, &m, &err);
    int cap = 1 << 16, *idx = malloc(sizeof(int) * (size_t)cap);
    double *val = malloc(sizeof(double) * (size_t)cap);
    if (!rc && (!idx || !val)) rc = llmos_error_set(&err, LLMOS_ENOMEM, "no memory");
    int n = atoi(argv[2]);
    for (int i = 0; !rc && i < n && i < ds.n; i++) {
        int k = ngram_features(m, ds.ex[i].text, idx, val, cap, &err);
        if (k < 0 || k > cap) {
            rc = k < 0 ? k : llmos_error_set(&err, LLMOS_ETOOBIG, "text %d: %d features", i, k);
            break;
        }
        cJSON *obj = cJSON_CreateObject();
        for (int j = 0; j < k; j++) {
            int is_char;
            const char *name = ngram_feature_name(m, idx[j], &is_char);
            size_t len = strlen(name) + 3;
            char *key = malloc(len);
            snprintf(key, len, "%c:%s", is_char ? 'c' : 'w', name);
            cJSON_AddNumberToObject(obj, key, val[j]);
            free(key);
        }
        char *s = cJSON_PrintUnformatted(obj);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(obj);
    }
    if (rc) fprintf(stderr, "ngram_dump: %s\n", err.msg);
    free(idx);
    free(val);
    ngram_model_destroy(&m);
    train_dataset_deinit(&ds);
    train_labels_deinit(&labels);
    return rc ? 1 : 0;
}
