/*
 * cls_result.c — a Classify answer from class probabilities (see
 * cls_result.h): a partial selection sort of the top k, then one packed
 * ScoreResult.
 */
#include "actors/cls_result.h"

#include "llmos/model.pb-c.h"
#include "runtime/base/err.h"

#include <math.h>
#include <stdlib.h>

int actors_cls_result_pack(const char *const *labels, const double *p, int C, int k, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    char **names = malloc(sizeof(char *) * (size_t)k);
    float *lp = malloc(sizeof(float) * (size_t)k), *pr = malloc(sizeof(float) * (size_t)k);
    int *idx = malloc(sizeof(int) * (size_t)C);
    int rc = LLMOS_ENOMEM;
    if (names && lp && pr && idx) {
        for (int i = 0; i < C; i++) idx[i] = i;
        for (int i = 0; i < k; i++) { /* k of C, ties by class order */
            int m = i;
            for (int j = i + 1; j < C; j++)
                if (p[idx[j]] > p[idx[m]]) m = j;
            int t = idx[i];
            idx[i] = idx[m];
            idx[m] = t;
            names[i] = (char *)labels[idx[i]];
            pr[i] = (float)p[idx[i]];
            lp[i] = (float)log(p[idx[i]]);
        }
        Llmos__ScoreResult sr = LLMOS__SCORE_RESULT__INIT;
        sr.n_labels = sr.n_log_probs = sr.n_probs = (size_t)k;
        sr.labels = names;
        sr.log_probs = lp;
        sr.probs = pr;
        sr.best = names[0];
        size_t n = llmos__score_result__get_packed_size(&sr);
        if ((*buf = malloc(n ? n : 1))) {
            llmos__score_result__pack(&sr, *buf);
            *len = n;
            rc = 0;
        }
    }
    free(names);
    free(lp);
    free(pr);
    free(idx);
    return rc;
}
