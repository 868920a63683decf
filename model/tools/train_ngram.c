/*
 * train_ngram.c — llmos-train --mode ngram: the TF-IDF n-gram classifier
 * (model/train/ngram.h) instead of a transformer.  Part of llmos-train;
 * train.c hands argv here when --mode ngram (or an n-gram-only flag) is
 * given, so the transformer option parsing stays as it is.
 *
 *   llmos-train --mode ngram --train banking77/train.csv \
 *       --labels banking77/categories.json --val-frac 0.1 --split-seed 1 --out ng
 *
 * Flags that only mean something to a transformer (--model, --lr, ...)
 * are an error here, not silently ignored.
 */
#include "model/train/ngram.h"
#include "model/train/trainer.h"
#include "runtime/base/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int train_ngram_main(int argc, char **argv); /* called by train.c */

static const char *const ngram_only[] = {"--ngram-c",   "--word-ngrams", "--char-ngrams",
                                         "--solver",    "--min-df",      "--min-word-len",
                                         "--ngram-eps", "--temperature", NULL};

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: llmos-train --mode ngram --train FILE --out DIR [options]\n"
        "  --text-col NAME --label-col NAME   column names (text, category)\n"
        "  --labels FILE                      JSON array of label names (default: from the data)\n"
        "  --val FILE | --val-frac F          validation file, or a fraction of --train (0.1; 0 = train on "
        "all)\n"
        "  --split-seed N                     validation split seed (1), the same split as the other modes\n"
        "  --word-ngrams LO-HI                word n-grams (1-2; 0-0 = none)\n"
        "  --char-ngrams LO-HI                char n-grams inside words (2-5; 0-0 = none)\n"
        "  --min-word-len N --min-df N        shortest word token (2), rarest kept n-gram (1)\n"
        "  --solver lr|lr-dual|svm            liblinear solver (lr)\n"
        "  --ngram-c C --ngram-eps E          liblinear cost (30) and tolerance (solver default)\n"
        "  --temperature T                    svm: softmax temperature of the probabilities (0.1)\n"
        "  --metrics FILE --quiet\n");
}

static int parse_range(const char *v, int *lo, int *hi) {
    const char *dash = strchr(v, '-');
    char a[24];
    if (!dash || (size_t)(dash - v) >= sizeof a) return -1;
    memcpy(a, v, (size_t)(dash - v));
    a[dash - v] = '\0';
    if (llmos_parse_int("LO", a, 0, 64, lo, NULL) || llmos_parse_int("HI", dash + 1, *lo, 64, hi, NULL)) return -1;
    return 0;
}

int train_ngram_main(int argc, char **argv) {
    ngram_run_opts_t o = {.text_col = "text", .label_col = "category", .val_frac = 0.1f, .split_seed = 1};
    ngram_opts_default(&o.model);
    static char bufs[3][1100];
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--mode") && strcmp(argv[i + 1], "ngram")) {
            fprintf(stderr, "llmos-train: the n-gram options (%s ...) need --mode ngram, not --mode %s\n",
                    ngram_only[0], argv[i + 1]);
            return 2;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet"))
            o.quiet = 1;
        else if (ARG("--mode"))
            continue; /* ngram: checked above */
        else if (ARG("--train"))
            o.train_path = train_path_resolve(v, 0, bufs[0], sizeof bufs[0]);
        else if (ARG("--val"))
            o.val_path = train_path_resolve(v, 0, bufs[1], sizeof bufs[1]);
        else if (ARG("--labels"))
            o.labels_path = train_path_resolve(v, 0, bufs[2], sizeof bufs[2]);
        else if (ARG("--out"))
            o.out_dir = v;
        else if (ARG("--metrics"))
            o.metrics_path = v;
        else if (ARG("--text-col"))
            o.text_col = v;
        else if (ARG("--label-col"))
            o.label_col = v;
        else if (ARG("--val-frac"))
            o.val_frac = strtof(v, NULL);
        else if (ARG("--split-seed"))
            o.split_seed = strtoull(v, NULL, 10);
        else if (ARG("--ngram-c"))
            o.model.C = strtod(v, NULL);
        else if (ARG("--ngram-eps"))
            o.model.eps = strtod(v, NULL);
        else if (ARG("--temperature"))
            o.model.temperature = strtod(v, NULL);
        else if (ARG("--min-df"))
            o.model.min_df = atoi(v);
        else if (ARG("--min-word-len"))
            o.model.min_word_len = atoi(v);
        else if (ARG("--word-ngrams") || ARG("--char-ngrams")) {
            int lo, hi, w = !strcmp(a, "--word-ngrams");
            if (parse_range(v, &lo, &hi)) {
                fprintf(stderr, "llmos-train: %s %s: expected LO-HI, e.g. %s\n", a, v, w ? "1-2" : "2-5");
                return 2;
            }
            if (w)
                o.model.word_lo = lo, o.model.word_hi = hi;
            else
                o.model.char_lo = lo, o.model.char_hi = hi;
        } else if (ARG("--solver")) {
            int s = ngram_solver_parse(v);
            if (s < 0) {
                fprintf(stderr, "llmos-train: --solver %s: expected lr, lr-dual or svm\n", v);
                return 2;
            }
            o.model.solver = (ngram_solver_t)s;
        } else if (!strncmp(a, "--", 2)) {
            fprintf(stderr,
                    "llmos-train: %s is not an option of --mode ngram (transformer options make no sense "
                    "there)\n",
                    a);
            return 2;
        } else {
            fprintf(stderr, "llmos-train: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef ARG
    }
    if (!o.train_path || !o.out_dir) {
        usage(stderr);
        return 2;
    }
    ngram_run_result_t r;
    llmos_error_t err = {0};
    int rc = ngram_run(&o, &r, &err);
    if (rc) {
        fprintf(stderr, "llmos-train: %s\n", err.msg);
        return 1;
    }
    if (!o.quiet) {
        printf("ngram: %d texts, %d features, %s C=%g, train %.1f s, train accuracy %.4f", r.n_train,
               r.n_features, ngram_solver_name(o.model.solver), o.model.C, r.train_s, r.train_acc);
        if (r.val_acc >= 0) printf(", validation accuracy %.4f (%d texts)", r.val_acc, r.n_val);
        printf("\n");
    }
    return 0;
}

/* Whether argv asks for the n-gram trainer: --mode ngram, or any n-gram
 * option (which then gets its error there if the mode is another one). */
int train_ngram_wanted(int argc, char **argv);
int train_ngram_wanted(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc && !strcmp(argv[i + 1], "ngram")) return 1;
        for (int k = 0; ngram_only[k]; k++)
            if (!strcmp(argv[i], ngram_only[k])) return 1;
    }
    return 0;
}
