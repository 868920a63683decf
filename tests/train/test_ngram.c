/*
 * test_ngram.c — unit tests of the n-gram classifier (model/train/ngram.h)
 * on small real CSV files and a real LMDB checkpoint store: exact word and
 * char_wb n-grams and TF-IDF values against the formula, unit block norms,
 * a separable set learnt to 100% (lr and svm), probabilities summing to 1
 * for any bytes (punctuation only, empty, invalid UTF-8), save -> load
 * giving bit-identical probabilities, and damaged checkpoints refused.
 */
#include "model/train/ckpt.h"
#include "model/train/ngram.h"
#include "runtime/base/tmpdir.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char g_dir[256];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads a CSV (text,category) written from csv into ds/labels. */
static void load_csv(const char *name, const char *csv, train_dataset_t *ds, train_labels_t *labels) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    write_file(path, csv);
    llmos_error_t err = {0};
    int rc = train_dataset_load(ds, path, "text", "category", labels, &err);
    if (rc) fail_msg("%s", err.msg);
}

static ngram_model_t *train_csv(const char *csv, const ngram_opts_t *o, train_dataset_t *ds,
                                train_labels_t *labels) {
    load_csv("d.csv", csv, ds, labels);
    ngram_model_t *m = NULL;
    llmos_error_t err = {0};
    int rc = ngram_model_train(o, ds, NULL, ds->n, labels, &m, &err);
    if (rc) fail_msg("%s", err.msg);
    return m;
}

/* The value of feature `name` (block is_char) in text's vector, NAN if absent. */
static double feature_value(ngram_model_t *m, const char *text, const char *name, int is_char, int *n_out) {
    int idx[512];
    double val[512];
    llmos_error_t err = {0};
    int n = ngram_features(m, text, idx, val, 512, &err);
    assert_true(n >= 0 && n <= 512);
    if (n_out) *n_out = n;
    for (int i = 0; i < n; i++) {
        if (i) assert_true(idx[i] > idx[i - 1]);
        int c;
        const char *s = ngram_feature_name(m, idx[i], &c);
        if (c == is_char && !strcmp(s, name)) return val[i];
    }
    return NAN;
}

static void test_features_exact(void **state) {
    (void)state;
    train_dataset_t ds = {0};
    train_labels_t labels = {0};
    ngram_opts_t o;
    ngram_opts_default(&o);
    o.solver = NGRAM_SOLVER_SVM;
    /* 3 texts; "ab" in 2 of them. */
    ngram_model_t *m = train_csv("text,category\n"
                                 "ab,x\n"
                                 "ab cd ab,y\n"
                                 "It's u 2-card_x DAY,x\n",
                                 &o, &ds, &labels);
    double idf1 = log(4.0 / 2.0) + 1, idf2 = log(4.0 / 3.0) + 1; /* df 1, df 2 of N = 3 */
    /* "ab": word block = {ab} -> 1; char block " ab ": " a","ab","b "," ab","ab "," ab " (6, padded piece
     * once). */
    int n;
    assert_float_equal(feature_value(m, "ab", "ab", 0, &n), 1.0, 1e-12);
    assert_int_equal(n, 7);
    const char *grams[] = {" a", "ab", "b ", " ab", "ab ", " ab "};
    for (int i = 0; i < 6; i++)
        assert_float_equal(feature_value(m, "ab", grams[i], 1, NULL), 1.0 / sqrt(6.0), 1e-12);
    /* "ab cd ab": tf(ab) = 2, tf(cd) = 1, bigrams "ab cd" and "cd ab" (df 1). */
    double w_ab = (1 + log(2.0)) * idf2, w_cd = idf1, w_bi = idf1;
    double norm = sqrt(w_ab * w_ab + w_cd * w_cd + 2 * w_bi * w_bi);
    assert_float_equal(feature_value(m, "ab cd ab", "ab", 0, NULL), w_ab / norm, 1e-12);
    assert_float_equal(feature_value(m, "ab cd ab", "cd", 0, NULL), w_cd / norm, 1e-12);
    assert_float_equal(feature_value(m, "ab cd ab", "cd ab", 0, NULL), w_bi / norm, 1e-12);
    /* words: lowercased, runs of [a-z0-9_] (and bytes >= 0x80) of >= 2 bytes: it, card_x, day; "s", "u", "2"
     * dropped */
    assert_false(isnan(feature_value(m, "It's u 2-card_x DAY", "it card_x", 0, NULL)));
    assert_false(isnan(feature_value(m, "It's u 2-card_x DAY", "card_x day", 0, NULL)));
    assert_true(isnan(feature_value(m, "It's u 2-card_x DAY", "s", 0, NULL)));
    /* char pieces split on whitespace only: "it's" keeps its quote; a 1-byte piece " u " is one 3-gram, no
     * 4/5-grams */
    assert_false(isnan(feature_value(m, "It's", "t's", 1, NULL)));
    assert_false(isnan(feature_value(m, "u", " u ", 1, &n)));
    assert_int_equal(n, 3); /* " u", "u ", " u " */
    /* each block has unit L2 norm */
    int idx[512];
    double val[512];
    llmos_error_t err = {0};
    n = ngram_features(m, "it's u day ab ab ab", idx, val, 512, &err);
    double nw = 0, nc = 0;
    for (int i = 0; i < n; i++) {
        int c;
        ngram_feature_name(m, idx[i], &c);
        if (c)
            nc += val[i] * val[i];
        else
            nw += val[i] * val[i];
    }
    assert_float_equal(nw, 1.0, 1e-12);
    assert_float_equal(nc, 1.0, 1e-12);
    /* too small arrays: the count says so */
    assert_int_equal(ngram_features(m, "it's u day ab ab ab", idx, val, 2, &err), n);
    ngram_model_destroy(&m);
    assert_null(m);
    train_dataset_deinit(&ds);
    train_labels_deinit(&labels);
}

static const char *SEP_CSV = "text,category\n"
                             "my card was declined,card\n"
                             "the card got declined at the shop,card\n"
                             "why is my card declined,card\n"
                             "I want to top up my account,topup\n"
                             "how do I top up,topup\n"
                             "top up failed,topup\n"
                             "what is the exchange rate,rate\n"
                             "exchange rate for euros,rate\n"
                             "bad exchange rate today,rate\n";

static void check_probs(const float *p, int C) {
    double s = 0;
    for (int c = 0; c < C; c++) {
        assert_true(p[c] >= 0 && p[c] <= 1);
        s += p[c];
    }
    assert_float_equal(s, 1.0, 1e-5);
}

static void separable(ngram_solver_t solver) {
    train_dataset_t ds = {0};
    train_labels_t labels = {0};
    ngram_opts_t o;
    ngram_opts_default(&o);
    o.solver = solver;
    ngram_model_t *m = train_csv(SEP_CSV, &o, &ds, &labels);
    int C = labels.n;
    float p[8];
    llmos_error_t err = {0};
    for (int i = 0; i < ds.n; i++) {
        assert_int_equal(ngram_predict(m, &ds.ex[i].text, 1, p, &err), 0);
        check_probs(p, C);
        int best = 0;
        for (int c = 1; c < C; c++)
            best = p[c] > p[best] ? c : best;
        assert_int_equal(best, ds.ex[i].label);
    }
    /* no known n-gram, empty, invalid UTF-8, huge: still a distribution */
    static char big[200000];
    memset(big, 'z', sizeof big - 1);
    for (size_t i = 0; i < sizeof big - 1; i += 7)
        big[i] = ' ';
    const char *odd[] = {"?!... ,;", "", "\xff\xfe\x80 \xc3", "  \t\n ", big, "CARD DECLINED"};
    float q[6 * 8];
    assert_int_equal(ngram_predict(m, odd, 6, q, &err), 0);
    for (int i = 0; i < 6; i++)
        check_probs(q + i * C, C);
    int n = ngram_features(m, "?!... ,;", NULL, NULL, 0, &err);
    assert_int_equal(n, 0);
    /* no features: the bias alone decides, the same for every such text */
    assert_memory_equal(q, q + 3 * C, sizeof(float) * (size_t)C);
    int best = 0;
    for (int c = 1; c < C; c++)
        best = q[5 * C + c] > q[5 * C + best] ? c : best;
    assert_string_equal(labels.name[best], "card");
    ngram_model_destroy(&m);
    train_dataset_deinit(&ds);
    train_labels_deinit(&labels);
}

static void test_separable_lr(void **state) {
    (void)state;
    separable(NGRAM_SOLVER_LR);
}
static void test_separable_svm(void **state) {
    (void)state;
    separable(NGRAM_SOLVER_SVM);
}

static void test_save_load_identical(void **state) {
    (void)state;
    train_dataset_t ds = {0};
    train_labels_t labels = {0};
    ngram_opts_t o;
    ngram_opts_default(&o);
    o.solver = NGRAM_SOLVER_LR_DUAL;
    o.C = 3;
    ngram_model_t *m = train_csv(SEP_CSV, &o, &ds, &labels);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ck", g_dir);
    llmos_error_t err = {0};
    int ver = 0;
    assert_int_equal(ngram_model_save(m, dir, 1.0, 0.5, 0.1, &ver, &err), 0);
    assert_int_equal(ver, 1);
    int is = 0;
    assert_int_equal(ngram_ckpt_probe(dir, 1, &is, &err), 0);
    assert_int_equal(is, 1);
    ngram_model_t *l = NULL;
    assert_int_equal(ngram_model_load(dir, 1, &l, &ver, &err), 0);
    assert_int_equal(ngram_model_n_features(l), ngram_model_n_features(m));
    assert_int_equal(ngram_model_opts(l)->solver, NGRAM_SOLVER_LR_DUAL);
    assert_string_equal(ngram_model_labels(l)->name[2], labels.name[2]);
    const char *texts[] = {"card declined again", "top up please", "rate?", "nothing known here", ""};
    float a[5 * 8], b[5 * 8];
    assert_int_equal(ngram_predict(m, texts, 5, a, &err), 0);
    assert_int_equal(ngram_predict(l, texts, 5, b, &err), 0);
    assert_memory_equal(a, b, sizeof(float) * 5 * (size_t)labels.n);
    /* a second save is version 2 and the pointers follow it */
    assert_int_equal(ngram_model_save(l, dir, 1.0, -1, 0.1, &ver, &err), 0);
    assert_int_equal(ver, 2);
    ngram_model_destroy(&l);
    assert_int_equal(ngram_model_load(dir, 0, &l, &ver, &err), 0);
    assert_int_equal(ver, 2);
    ngram_model_destroy(&l);
    ngram_model_destroy(&m);
    train_dataset_deinit(&ds);
    train_labels_deinit(&labels);
}

/* A store whose version 1 has the given meta and records. */
static void write_store(const char *dir, const char *meta, const train_ckpt_blob_t *b, int nb) {
    train_ckpt_t *c = NULL;
    llmos_error_t err = {0};
    assert_int_equal(train_ckpt_open(dir, 1, &c, &err), 0);
    assert_int_equal(train_ckpt_save_blobs(c, meta, b, nb, 1, 1, NULL, &err), 0);
    train_ckpt_close(&c);
}

static void test_bad_checkpoints(void **state) {
    (void)state;
    llmos_error_t err = {0};
    ngram_model_t *m = NULL;
    char dir[300];
    /* missing and empty folders */
    snprintf(dir, sizeof dir, "%s/none", g_dir);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_ENOTFOUND);
    snprintf(dir, sizeof dir, "%s/empty", g_dir);
    mkdir(dir, 0755);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_ENOTFOUND);
    assert_non_null(strstr(err.msg, "empty"));
    /* a store without versions */
    train_ckpt_t *c = NULL;
    snprintf(dir, sizeof dir, "%s/noversion", g_dir);
    assert_int_equal(train_ckpt_open(dir, 1, &c, &err), 0);
    train_ckpt_close(&c);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_ENOTFOUND);
    /* meta not JSON */
    snprintf(dir, sizeof dir, "%s/badjson", g_dir);
    write_store(dir, "{\"task\":\"ngram\", broken", NULL, 0);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "not JSON"));
    /* a transformer's meta */
    snprintf(dir, sizeof dir, "%s/cls", g_dir);
    write_store(dir, "{\"task\":\"cls\",\"mode\":\"full\"}", NULL, 0);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_EFORMAT);
    int is = 1;
    assert_int_equal(ngram_ckpt_probe(dir, 1, &is, &err), 0);
    assert_int_equal(is, 0);
    /* n-gram meta lacking fields */
    snprintf(dir, sizeof dir, "%s/fields", g_dir);
    write_store(dir, "{\"task\":\"ngram\",\"solver\":\"lr\"}", NULL, 0);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_EFORMAT);
    /* a good model whose records are then damaged */
    train_dataset_t ds = {0};
    train_labels_t labels = {0};
    ngram_opts_t o;
    ngram_opts_default(&o);
    o.solver = NGRAM_SOLVER_SVM;
    ngram_model_t *g = train_csv(SEP_CSV, &o, &ds, &labels);
    char good[300];
    snprintf(good, sizeof good, "%s/good", g_dir);
    assert_int_equal(ngram_model_save(g, good, 1, -1, 0, NULL, &err), 0);
    train_ckpt_t *gc = NULL;
    char *meta = NULL;
    void *vocab, *idf, *w;
    size_t nv, ni, nw;
    assert_int_equal(train_ckpt_open(good, 0, &gc, &err), 0);
    assert_int_equal(train_ckpt_meta(gc, 1, &meta, &err), 0);
    assert_int_equal(train_ckpt_blob(gc, 1, "vocab", &vocab, &nv, &err), 0);
    assert_int_equal(train_ckpt_blob(gc, 1, "idf", &idf, &ni, &err), 0);
    assert_int_equal(train_ckpt_blob(gc, 1, "w", &w, &nw, &err), 0);
    void *none = &nv;
    size_t nn = 1;
    assert_int_equal(train_ckpt_blob(gc, 1, "nope", &none, &nn, &err), LLMOS_ENOTFOUND);
    assert_null(none);
    assert_int_equal(nn, 0);
    train_ckpt_close(&gc);
    train_ckpt_blob_t b[3] = {{"vocab", vocab, nv}, {"idf", idf, ni}, {"w", w, nw - 4}};
    snprintf(dir, sizeof dir, "%s/shortw", g_dir);
    write_store(dir, meta, b, 3);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "bytes"));
    b[2].bytes = nw;
    b[0].bytes = nv - 3; /* cut inside the last n-gram */
    snprintf(dir, sizeof dir, "%s/shortvocab", g_dir);
    write_store(dir, meta, b, 3);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "vocab"));
    snprintf(dir, sizeof dir, "%s/novocab", g_dir);
    write_store(dir, meta, b + 1, 2);
    assert_int_equal(ngram_model_load(dir, 1, &m, NULL, &err), LLMOS_ENOTFOUND);
    assert_null(m);
    free(meta);
    free(vocab);
    free(idf);
    free(w);
    ngram_model_destroy(&g);
    train_dataset_deinit(&ds);
    train_labels_deinit(&labels);
}

static void test_bad_training(void **state) {
    (void)state;
    train_dataset_t ds = {0};
    train_labels_t labels = {0};
    load_csv("one.csv", "text,category\nhello,a\nhello again,a\n", &ds, &labels);
    ngram_opts_t o;
    ngram_opts_default(&o);
    ngram_model_t *m = NULL;
    llmos_error_t err = {0};
    /* one class: refused (the label set from a file could have more) */
    train_labels_t two = {0};
    char lp[300];
    snprintf(lp, sizeof lp, "%s/labels.json", g_dir);
    write_file(lp, "[\"a\", \"b\"]");
    assert_int_equal(train_labels_load(&two, lp, &err), 0);
    assert_int_equal(ngram_model_train(&o, &ds, NULL, ds.n, &two, &m, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "class"));
    o.word_lo = 3, o.word_hi = 1;
    assert_int_equal(ngram_model_train(&o, &ds, NULL, ds.n, &two, &m, &err), LLMOS_EINVAL);
    ngram_opts_default(&o);
    o.C = -1;
    assert_int_equal(ngram_model_train(&o, &ds, NULL, ds.n, &two, &m, &err), LLMOS_EINVAL);
    assert_null(m);
    train_labels_deinit(&two);
    train_dataset_deinit(&ds);
    train_labels_deinit(&labels);
}

int main(void) {
    llmos_error_t terr;
    if (llmos_tmpdir_make("llmos_test_ngram", g_dir, sizeof g_dir, &terr)) {
        fprintf(stderr, "%s\n", terr.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_exact),  cmocka_unit_test(test_separable_lr),
        cmocka_unit_test(test_separable_svm),   cmocka_unit_test(test_save_load_identical),
        cmocka_unit_test(test_bad_checkpoints), cmocka_unit_test(test_bad_training),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (llmos_tmpdir_remove(g_dir, &terr)) fprintf(stderr, "%s\n", terr.msg);
    return rc;
}
