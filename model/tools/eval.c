/*
 * eval.c — llmos-eval: evaluates one or more trained classifiers (their
 * checkpoint folders) on a labelled file; `llmos eval` runs it.
 *
 *   llmos-eval --ckpt run1 [--ckpt run2 ... --ensemble vote|avg] \
 *       --data banking77/test.csv [--label-col category] [--predictions p.jsonl]
 *   llmos-eval --ckpt run1 --data banking77/train.csv --val-frac 0.1 --split-seed 1
 *       (the validation split llmos-train held out of that file)
 *
 * Prints accuracy, macro- and micro-F1, per-class precision/recall/F1 and
 * the most-confused (gold -> predicted) pairs.  Every member must have the
 * same label set; each tokenizes with its own model's tokenizer.
 * Ensembles: "avg" averages the members' probabilities; "vote" takes the
 * majority of their argmaxes (ties go to the higher summed probability).
 * --weight W after a --ckpt weighs that member (default 1): avg becomes
 * sum w_k p_k / sum w_k, and a vote counts w_k.  A member may be a
 * transformer classifier or an n-gram classifier (llmos-train --mode
 * ngram, model/train/ngram.h), told apart by its meta record's task.
 * --weight-grid "W1 W2 ..." tries each weight for the last member on the
 * same predictions (every member predicts once) and reports with the
 * first best: how a recipe picks that weight on a validation split.
 */
#include "model/train/ngram.h"
#include "model/train/trainer.h"
#include "runtime/base/log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MEMBERS 16

static void usage(FILE *f) {
    fprintf(f, "usage: llmos-eval --ckpt DIR [--ckpt DIR ...] --data FILE [--text-col text] [--label-col category]\n"
               "                  [--ensemble avg|vote] [--which best|latest] [--predictions OUT.jsonl]\n"
               "                  [--val-frac F --split-seed N]  (llmos-train's validation split of --data)\n"
               "                  [--all-probs] (every class's probability in the predictions)\n"
               "                  [--weight W] (after a --ckpt: that member's weight in avg and vote, 1)\n"
               "                  [--weight-grid \"W1 W2 ...\"] (the last member's weight: each is tried on --data,\n"
               "                  the first best is used and printed as \"chosen weight W\")\n"
               "                  [--confused N] [--batch N] [--threads N] [--model M --tokenizer TOK]\n");
}

/* avg = Σ_k w_k p_k / Σ_k w_k and votes[c] = Σ of the weights of the
 * members whose argmax is c, over members k (rows at k * n * C of probs).
 * LLMOS_EINVAL when the weights sum to 0. */
static int combine(const float *probs, int n_ck, const double *weight, int n, int C, float *avg, double *votes) {
    double wsum = 0;
    for (int k = 0; k < n_ck; k++) wsum += weight[k];
    if (wsum <= 0) return LLMOS_EINVAL;
    memset(avg, 0, sizeof(float) * (size_t)n * C);
    memset(votes, 0, sizeof(double) * (size_t)n * C);
    for (int k = 0; k < n_ck; k++)
        for (int i = 0; i < n; i++) {
            const float *p = probs + ((size_t)k * n + i) * C;
            int best = 0;
            for (int c = 0; c < C; c++) {
                avg[(size_t)i * C + c] += p[c] / (float)(wsum / weight[k]); /* all 1: p / n */
                best = p[c] > p[best] ? c : best;
            }
            votes[(size_t)i * C + best] += weight[k];
        }
    return 0;
}

/* Accuracy of the argmax of rows p (n x C) against ds's labels. */
static double accuracy_of(const float *p, const train_dataset_t *ds, int C) {
    int correct = 0;
    for (int i = 0; i < ds->n; i++) {
        const float *r = p + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++) best = r[c] > r[best] ? c : best;
        correct += best == ds->ex[i].label;
    }
    return ds->n ? (double)correct / ds->n : 0;
}

typedef struct pair {
    int gold, pred, n;
} pair_t;

static int cmp_pair(const void *a, const void *b) {
    const pair_t *x = a, *y = b;
    return y->n != x->n ? y->n - x->n : x->gold != y->gold ? x->gold - y->gold : x->pred - y->pred;
}

int main(int argc, char **argv) {
    model_omp_passive(argv); /* spinning OpenMP barriers collapse on a shared machine */
    const char *ckpts[MAX_MEMBERS], *data = NULL, *text_col = "text", *label_col = "category", *ens = "avg",
               *pred_path = NULL, *model = NULL, *tok = NULL;
    double weight[MAX_MEMBERS], grid[64];
    int n_grid = 0;
    int n_ck = 0, which = 1, confused = 10, batch = 32, threads = 1, all_probs = 0;
    float val_frac = 0; /* > 0: evaluate llmos-train's validation split of --data */
    uint64_t split_seed = 1;
    static char b1[1100], b2[1100], b3[1100];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (!strcmp(a, "--all-probs")) {
            all_probs = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (ARG("--ckpt")) {
            if (n_ck == MAX_MEMBERS) {
                fprintf(stderr, "llmos-eval: at most %d checkpoints\n", MAX_MEMBERS);
                return 2;
            }
            weight[n_ck] = 1;
            ckpts[n_ck++] = v;
        } else if (ARG("--weight")) {
            char *end;
            double w = strtod(v, &end);
            if (!n_ck || *end || !(w >= 0) || isinf(w)) {
                fprintf(stderr, "llmos-eval: --weight %s: expected a number >= 0 after a --ckpt\n", v);
                return 2;
            }
            weight[n_ck - 1] = w;
        } else if (ARG("--weight-grid")) {
            char *p = (char *)v, *end;
            for (n_grid = 0; *p && n_grid < 64; p = end) {
                double w = strtod(p, &end);
                if (end == p || !(w >= 0) || isinf(w)) break;
                grid[n_grid++] = w;
                while (*end == ' ' || *end == ',') end++;
            }
            if (!n_grid || *p) {
                fprintf(stderr, "llmos-eval: --weight-grid '%s': expected up to 64 numbers >= 0\n", v);
                return 2;
            }
        } else if (ARG("--data")) data = train_path_resolve(v, 0, b1, sizeof b1);
        else if (ARG("--text-col")) text_col = v;
        else if (ARG("--label-col")) label_col = v;
        else if (ARG("--ensemble")) ens = v;
        else if (ARG("--val-frac")) val_frac = strtof(v, NULL);
        else if (ARG("--split-seed")) split_seed = strtoull(v, NULL, 10);
        else if (ARG("--which")) which = strcmp(v, "latest") != 0;
        else if (ARG("--predictions")) pred_path = v;
        else if (ARG("--confused")) confused = atoi(v);
        else if (ARG("--batch")) batch = atoi(v);
        else if (ARG("--threads")) threads = atoi(v);
        else if (ARG("--model")) model = train_path_resolve(v, 1, b2, sizeof b2);
        else if (ARG("--tokenizer")) tok = train_path_resolve(v, 1, b3, sizeof b3);
        else {
            fprintf(stderr, "llmos-eval: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef ARG
    }
    if (!n_ck || !data || (strcmp(ens, "avg") && strcmp(ens, "vote")) || batch < 1) {
        usage(stderr);
        return 2;
    }
    llmos_error_t err = {0};
    train_loaded_t mem[MAX_MEMBERS];
    ngram_model_t *ngm[MAX_MEMBERS] = {0}; /* n-gram members (mem[k] unused then) */
    const train_labels_t *lab[MAX_MEMBERS];
    int version[MAX_MEMBERS];
    memset(mem, 0, sizeof mem);
    double wsum = 0, grid_max = 0; /* with a grid, the last member's largest weight */
    for (int g = 0; g < n_grid; g++) grid_max = grid[g] > grid_max ? grid[g] : grid_max;
    for (int k = 0; k < n_ck; k++) wsum += n_grid && k == n_ck - 1 ? grid_max : weight[k];
    if (wsum <= 0) {
        fprintf(stderr, "llmos-eval: the --weight values sum to 0\n");
        return 2;
    }
    train_dataset_t ds = {0};
    float *probs = NULL, *avg = NULL;
    double *votes = NULL;
    int *conf = NULL, rc = 0, C = 0;
    for (int k = 0; k < n_ck && !rc; k++) {
        int is_ngram = 0;
        rc = ngram_ckpt_probe(ckpts[k], which, &is_ngram, &err);
        if (!rc && is_ngram) {
            rc = ngram_model_load(ckpts[k], which, &ngm[k], &version[k], &err);
            if (rc) break;
            lab[k] = ngram_model_labels(ngm[k]);
        } else if (!rc) {
            rc = train_loaded_open(&mem[k], ckpts[k], which, model, tok, batch, threads, &err);
            if (rc) break;
            if (train_net_layout(mem[k].net)->opts.task != TRAIN_TASK_CLS) {
                rc = llmos_error_set(&err, LLMOS_EINVAL, "%s: not a classifier checkpoint", ckpts[k]);
                break;
            }
            lab[k] = &mem[k].labels;
            version[k] = mem[k].version;
        }
        if (rc) break;
        if (k == 0) C = lab[0]->n;
        int same = lab[k]->n == C;
        for (int c = 0; same && c < C; c++) same = !strcmp(lab[k]->name[c], lab[0]->name[c]);
        if (!same) rc = llmos_error_set(&err, LLMOS_EINVAL, "%s: its labels differ from %s's", ckpts[k], ckpts[0]);
    }
    train_labels_t labels = {0}; /* a copy: train_dataset_load takes a mutable set */
    if (!rc && train_labels_copy(&labels, lab[0])) rc = llmos_error_set(&err, LLMOS_ENOMEM, "no memory");
    if (!rc) rc = train_dataset_load(&ds, data, text_col, label_col, &labels, &err);
    int n_all = ds.n; /* the examples array is reordered in place; deinit needs nothing else */
    if (!rc && val_frac > 0) {
        int *perm = malloc(sizeof(int) * (size_t)ds.n);
        train_example_t *ex = malloc(sizeof *ex * (size_t)ds.n);
        if (!perm || !ex) rc = llmos_error_set(&err, LLMOS_ENOMEM, "no memory");
        else {
            int n_val = train_split(ds.n, val_frac, split_seed, perm);
            for (int i = 0; i < ds.n; i++) ex[i] = ds.ex[perm[i]];
            memcpy(ds.ex, ex, sizeof *ex * (size_t)ds.n);
            ds.n = n_val;
            if (!n_val) rc = llmos_error_set(&err, LLMOS_EINVAL, "--val-frac %g of %d examples is empty", val_frac, n_all);
        }
        free(perm);
        free(ex);
    }
    if (!rc) {
        probs = malloc(sizeof(float) * (size_t)ds.n * C * n_ck); /* member k's rows at k * n * C */
        avg = calloc((size_t)ds.n * C, sizeof(float));
        votes = calloc((size_t)ds.n * C, sizeof(double));
        conf = calloc((size_t)C * C, sizeof(int));
        if (!probs || !avg || !votes || !conf) rc = llmos_error_set(&err, LLMOS_ENOMEM, "no memory");
    }
    for (int k = 0; k < n_ck && !rc; k++) {
        float *pk = probs + (size_t)k * ds.n * C;
        if (ngm[k]) {
            for (int i = 0; i < ds.n && !rc; i++) rc = ngram_predict(ngm[k], &ds.ex[i].text, 1, pk + (size_t)i * C, &err);
        } else {
            train_tokens_t tk;
            rc = train_tokens_build(&tk, &ds, model_tokenizer(mem[k].model), mem[k].seq, &err);
            if (!rc) rc = train_predict(mem[k].net, &tk, pk, &err);
            train_tokens_deinit(&tk);
        }
        if (rc) break;
        if (n_ck > 1) printf("member %d (%s, version %d): accuracy %.4f\n", k + 1, ckpts[k], version[k], accuracy_of(pk, &ds, C));
    }
    if (!rc && n_grid) { /* the last member's weight: the first best of the grid on these examples */
        double best_w = grid[0], best_acc = -1;
        for (int g = 0; g < n_grid; g++) {
            weight[n_ck - 1] = grid[g];
            double acc = -1;
            if (combine(probs, n_ck, weight, ds.n, C, avg, votes) == 0) acc = accuracy_of(avg, &ds, C);
            if (acc < 0) printf("weight %g: the weights sum to 0\n", grid[g]);
            else printf("weight %g: accuracy %.4f\n", grid[g], acc);
            if (acc > best_acc) best_acc = acc, best_w = grid[g];
        }
        weight[n_ck - 1] = best_w;
        printf("chosen weight %g\n", best_w);
    }
    if (!rc) combine(probs, n_ck, weight, ds.n, C, avg, votes);
    if (rc) {
        fprintf(stderr, "llmos-eval: %s\n", err.msg);
    } else {
        FILE *pf = pred_path ? fopen(pred_path, "w") : NULL;
        if (pred_path && !pf) fprintf(stderr, "llmos-eval: cannot write %s\n", pred_path), rc = 1;
        int correct = 0;
        for (int i = 0; i < ds.n; i++) {
            const float *a = avg + (size_t)i * C;
            const double *v = votes + (size_t)i * C;
            int best = 0;
            for (int c = 1; c < C; c++)
                if (!strcmp(ens, "vote") ? (v[c] > v[best] || (v[c] == v[best] && a[c] > a[best])) : a[c] > a[best]) best = c;
            int gold = ds.ex[i].label;
            conf[(size_t)gold * C + best]++;
            correct += best == gold;
            if (pf) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "line", ds.ex[i].line);
                cJSON_AddStringToObject(o, "text", ds.ex[i].text);
                cJSON_AddStringToObject(o, "label", lab[0]->name[gold]);
                cJSON_AddStringToObject(o, "pred", lab[0]->name[best]);
                cJSON_AddNumberToObject(o, "prob", a[best]);
                if (all_probs) {
                    cJSON *arr = cJSON_AddArrayToObject(o, "probs");
                    for (int c = 0; arr && c < C; c++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(round(a[c] * 1e6) / 1e6));
                }
                char *s = cJSON_PrintUnformatted(o);
                if (s) fprintf(pf, "%s\n", s);
                free(s);
                cJSON_Delete(o);
            }
        }
        if (pf && fclose(pf) != 0) fprintf(stderr, "llmos-eval: error writing %s\n", pred_path), rc = 1;
        double macro = 0;
        int classes_present = 0;
        printf("%-40s %9s %9s %9s %7s\n", "class", "precision", "recall", "f1", "support");
        for (int c = 0; c < C; c++) {
            int tp = conf[(size_t)c * C + c], gold = 0, pred = 0;
            for (int j = 0; j < C; j++) gold += conf[(size_t)c * C + j], pred += conf[(size_t)j * C + c];
            double p = pred ? (double)tp / pred : 0, r = gold ? (double)tp / gold : 0, f = p + r > 0 ? 2 * p * r / (p + r) : 0;
            if (gold) macro += f, classes_present++;
            printf("%-40s %9.4f %9.4f %9.4f %7d\n", lab[0]->name[c], p, r, f, gold);
        }
        macro = classes_present ? macro / classes_present : 0;
        /* Single-label: micro-averaged P = R = F1 = accuracy. */
        double acc = (double)correct / ds.n;
        pair_t *pairs = malloc(sizeof(pair_t) * (size_t)C * C);
        int np = 0;
        for (int g = 0; pairs && g < C; g++)
            for (int p = 0; p < C; p++)
                if (g != p && conf[(size_t)g * C + p]) pairs[np++] = (pair_t){g, p, conf[(size_t)g * C + p]};
        if (pairs) qsort(pairs, (size_t)np, sizeof *pairs, cmp_pair);
        printf("most confused (gold -> predicted):\n");
        for (int i = 0; i < np && i < confused; i++)
            printf("  %4d  %s -> %s\n", pairs[i].n, lab[0]->name[pairs[i].gold], lab[0]->name[pairs[i].pred]);
        free(pairs);
        printf("examples %d, members %d (%s)\n", ds.n, n_ck, n_ck > 1 ? ens : "single");
        printf("macro-F1 %.4f\nmicro-F1 %.4f\naccuracy %.4f\n", macro, acc, acc);
    }
    for (int k = 0; k < n_ck; k++) {
        if (ngm[k]) ngram_model_destroy(&ngm[k]);
        else train_loaded_deinit(&mem[k]);
    }
    train_labels_deinit(&labels);
    ds.n = n_all;
    train_dataset_deinit(&ds);
    free(probs);
    free(avg);
    free(votes);
    free(conf);
    return rc ? 1 : 0;
}
