/*
 * ngram.c — the bag-of-n-grams classifier of ngram.h: n-gram extraction,
 * the vocabulary (the shared hash map), TF-IDF vectors, liblinear
 * training, prediction and the checkpoint records.
 *
 * Every n-gram of a text is built as a key in one scratch buffer (a block
 * byte 'w'/'c', then the n-gram's bytes) and handed to a callback: while
 * training it counts document frequencies in the table, while predicting
 * it looks the key up and counts term frequencies into a dense per-feature
 * array whose touched entries are listed, so a text costs time in its own
 * length, not in the vocabulary's size, and allocates nothing once the
 * scratch has grown to the longest text.  This file never prints: liblinear's
 * output is routed to a progress line.
 */
#include "model/train/ngram.h"

#include "model/train/ckpt.h"
#include "model/train/trainer.h"
#include "runtime/base/clock.h"
#include "runtime/base/map.h"
#include "runtime/base/progress.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <linear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- options */

void ngram_opts_default(ngram_opts_t *o) {
    *o = (ngram_opts_t){.word_lo = 1,
                        .word_hi = 2,
                        .char_lo = 2,
                        .char_hi = 5,
                        .min_word_len = 2,
                        .min_df = 1,
                        .C = 30,
                        .solver = NGRAM_SOLVER_LR,
                        .eps = 0,
                        .temperature = 0.1};
}

int ngram_solver_parse(const char *name) {
    return !strcmp(name, "lr")        ? NGRAM_SOLVER_LR
           : !strcmp(name, "lr-dual") ? NGRAM_SOLVER_LR_DUAL
           : !strcmp(name, "svm")     ? NGRAM_SOLVER_SVM
                                      : -1;
}

const char *ngram_solver_name(ngram_solver_t s) {
    return s == NGRAM_SOLVER_LR ? "lr" : s == NGRAM_SOLVER_LR_DUAL ? "lr-dual" : "svm";
}

static int opts_check(const ngram_opts_t *o, llmos_error_t *err) {
    int words = o->word_hi > 0, chars = o->char_hi > 0;
    if ((words && (o->word_lo < 1 || o->word_lo > o->word_hi || o->word_hi > 8)) ||
        (chars && (o->char_lo < 1 || o->char_lo > o->char_hi || o->char_hi > 16)) || (!words && !chars))
        return llmos_error_set(
            err, LLMOS_EINVAL,
            "ngram: word n-grams %d-%d (1..8), char n-grams %d-%d (1..16): need a valid block", o->word_lo,
            o->word_hi, o->char_lo, o->char_hi);
    if (o->min_word_len < 1 || o->min_df < 1 || !(o->C > 0) || o->eps < 0 ||
        (unsigned)o->solver > NGRAM_SOLVER_SVM || (o->solver == NGRAM_SOLVER_SVM && !(o->temperature > 0)))
        return llmos_error_set(
            err, LLMOS_EINVAL,
            "ngram: min word length %d, min_df %d (>= 1), C %g (> 0), eps %g, temperature %g out of range",
            o->min_word_len, o->min_df, o->C, o->eps, o->temperature);
    return 0;
}

/* ---------------------------------------------------------------- vocabulary */

/* The vocabulary is the shared hash map (runtime/base/map.h): n-gram key ->
 * vterm_t, entries in first-seen order. */
typedef struct vterm {
    int id;       /* feature id, -1 below min_df */
    int df;       /* documents containing it (training) */
    int last_doc; /* the document that counted it last (training) */
} vterm_t;

/* The term of key k, inserted (id -1, df 0) when new; NULL without memory. */
static vterm_t *vocab_insert(llmos_map_t *v, const char *k, size_t n) {
    vterm_t *t;
    int added;
    if (llmos_map_str_put(v, k, n, (void **)&t, &added)) return NULL;
    if (added) *t = (vterm_t){.id = -1, .df = 0, .last_doc = -1};
    return t;
}

static int vocab_lookup(const llmos_map_t *v, const char *k, size_t n) {
    const vterm_t *t = llmos_map_str_get(v, k, n);
    return t ? t->id : -1;
}

/* ---------------------------------------------------------------- model */

struct ngram_model {
    ngram_opts_t o;
    train_labels_t labels;
    llmos_map_t voc; /* n-gram -> vterm_t; id = feature */
    int n_feat;  /* features: [0, n_word) word block, [n_word, n_feat) char block */
    int n_word;
    double *idf; /* [n_feat] */
    float *w;    /* [(n_feat + 1) * C], last row = biases */
    char *names; /* the vocab record: per feature 'w'|'c', the n-gram, NUL */
    size_t names_len;
    size_t *name_pos; /* [n_feat] feature f's entry in names */
    /* scratch, grown to the longest text */
    char *lc, *key;     /* lowered text, n-gram key */
    int *tok_s, *tok_n; /* word token starts/lengths */
    size_t cap_text;
    int *cnt;     /* [n_feat] term counts, zero between texts */
    int *touched; /* features counted for this text */
    double *val;  /* their TF-IDF values */
    int n_touched, cap_touched;
    double *score; /* [C] */
};

/* Calls fn for every n-gram of text (lowered into m->lc).  Returns the
 * first nonzero return of fn, or LLMOS_ENOMEM. */
typedef int (*gram_fn)(const char *key, size_t n, void *ctx);

static int word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static int space_byte(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int scratch_reserve(ngram_model_t *m, size_t len) {
    if (len + 16 <= m->cap_text) return 0;
    size_t cap = (len + 16) * 2;
    char *lc = realloc(m->lc, cap), *key;
    if (!lc) return LLMOS_ENOMEM;
    m->lc = lc;
    if (!(key = realloc(m->key, cap + 32))) return LLMOS_ENOMEM;
    m->key = key;
    int *ts = realloc(m->tok_s, sizeof(int) * cap), *tn;
    if (!ts) return LLMOS_ENOMEM;
    m->tok_s = ts;
    if (!(tn = realloc(m->tok_n, sizeof(int) * cap))) return LLMOS_ENOMEM;
    m->tok_n = tn;
    m->cap_text = cap;
    return 0;
}

static int grams_each(ngram_model_t *m, const char *text, gram_fn fn, void *ctx) {
    size_t len = strlen(text);
    if (scratch_reserve(m, len)) return LLMOS_ENOMEM;
    char *lc = m->lc, *key = m->key;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        lc[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    lc[len] = 0;
    const ngram_opts_t *o = &m->o;
    int rc = 0;
    if (o->word_hi > 0) {
        int nt = 0;
        for (size_t i = 0; i < len;) {
            if (!word_byte((unsigned char)lc[i])) {
                i++;
                continue;
            }
            size_t s = i;
            while (i < len && word_byte((unsigned char)lc[i]))
                i++;
            if ((int)(i - s) >= o->min_word_len) m->tok_s[nt] = (int)s, m->tok_n[nt++] = (int)(i - s);
        }
        for (int n = o->word_lo; n <= o->word_hi && !rc; n++)
            for (int t = 0; t + n <= nt && !rc; t++) {
                size_t k = 0;
                key[k++] = 'w';
                for (int j = 0; j < n; j++) {
                    if (j) key[k++] = ' ';
                    memcpy(key + k, lc + m->tok_s[t + j], (size_t)m->tok_n[t + j]);
                    k += (size_t)m->tok_n[t + j];
                }
                rc = fn(key, k, ctx);
            }
    }
    if (o->char_hi > 0) {
        for (size_t i = 0; i < len && !rc;) {
            if (space_byte((unsigned char)lc[i])) {
                i++;
                continue;
            }
            size_t s = i;
            while (i < len && !space_byte((unsigned char)lc[i]))
                i++;
            /* the piece padded: " " + lc[s..i) + " " */
            size_t wl = i - s + 2;
            /* like scikit-learn: a padded piece no longer than n is one
             * n-gram, and then no longer n-grams follow */
            for (int n = o->char_lo, last = 0; n <= o->char_hi && !rc && !last; n++) {
                last = (size_t)n >= wl;
                for (size_t off = 0; !rc; off++) {
                    size_t gl = (size_t)n < wl ? (size_t)n : wl;
                    key[0] = 'c';
                    for (size_t j = 0; j < gl; j++) {
                        size_t p = off + j;
                        key[1 + j] = p == 0 || p == wl - 1 ? ' ' : lc[s + p - 1];
                    }
                    rc = fn(key, gl + 1, ctx);
                    if (off + (size_t)n >= wl) break;
                }
            }
        }
    }
    return rc;
}

/* Term counts of one text into m->cnt / m->touched. */
static int count_gram(const char *key, size_t n, void *ctx) {
    ngram_model_t *m = ctx;
    int f = vocab_lookup(&m->voc, key, n);
    if (f < 0) return 0;
    if (m->cnt[f]++ == 0) {
        if (m->n_touched == m->cap_touched) {
            int cap = m->cap_touched ? m->cap_touched * 2 : 1024;
            int *t = realloc(m->touched, sizeof(int) * (size_t)cap);
            if (!t) return LLMOS_ENOMEM;
            m->touched = t;
            double *v = realloc(m->val, sizeof(double) * (size_t)cap);
            if (!v) return LLMOS_ENOMEM;
            m->val = v;
            m->cap_touched = cap;
        }
        m->touched[m->n_touched++] = f;
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The TF-IDF vector of text: features m->touched[0..n_touched)
 * ascending, values m->val.  Leaves m->cnt zero. */
static int vectorize(ngram_model_t *m, const char *text) {
    m->n_touched = 0;
    int rc = grams_each(m, text, count_gram, m);
    if (rc) {
        for (int i = 0; i < m->n_touched; i++)
            m->cnt[m->touched[i]] = 0;
        m->n_touched = 0;
        return rc;
    }
    qsort(m->touched, (size_t)m->n_touched, sizeof(int), cmp_int);
    double nw = 0, nc = 0;
    for (int i = 0; i < m->n_touched; i++) {
        int f = m->touched[i];
        double x = (1.0 + log((double)m->cnt[f])) * m->idf[f];
        m->cnt[f] = 0;
        m->val[i] = x;
        if (f < m->n_word)
            nw += x * x;
        else
            nc += x * x;
    }
    nw = nw > 0 ? 1.0 / sqrt(nw) : 0;
    nc = nc > 0 ? 1.0 / sqrt(nc) : 0;
    for (int i = 0; i < m->n_touched; i++)
        m->val[i] *= m->touched[i] < m->n_word ? nw : nc;
    return 0;
}

static double sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

/* Probabilities of the vector in m->touched/m->val into p[C]. */
static void classify(ngram_model_t *m, float *p) {
    int C = m->labels.n;
    double *s = m->score;
    const float *bias = m->w + (size_t)m->n_feat * C;
    for (int c = 0; c < C; c++)
        s[c] = bias[c];
    for (int i = 0; i < m->n_touched; i++) {
        const float *row = m->w + (size_t)m->touched[i] * C;
        double x = m->val[i];
        for (int c = 0; c < C; c++)
            s[c] += x * row[c];
    }
    double sum = 0;
    if (m->o.solver == NGRAM_SOLVER_SVM) {
        double mx = -INFINITY;
        for (int c = 0; c < C; c++)
            mx = s[c] > mx ? s[c] : mx;
        for (int c = 0; c < C; c++)
            sum += s[c] = isinf(s[c]) ? 0 : exp((s[c] - mx) / m->o.temperature);
    } else {
        for (int c = 0; c < C; c++)
            sum += s[c] = sigmoid(s[c]);
    }
    for (int c = 0; c < C; c++)
        p[c] = sum > 0 ? (float)(s[c] / sum) : 1.0f / (float)C;
}

int ngram_predict(ngram_model_t *m, const char *const *texts, int n, float *probs, llmos_error_t *err) {
    for (int i = 0; i < n; i++) {
        if (vectorize(m, texts[i]))
            return llmos_error_set(err, LLMOS_ENOMEM, "ngram: no memory for text %d", i);
        classify(m, probs + (size_t)i * m->labels.n);
    }
    return 0;
}

int ngram_features(ngram_model_t *m, const char *text, int *index, double *value, int cap,
                   llmos_error_t *err) {
    if (vectorize(m, text)) return llmos_error_set(err, LLMOS_ENOMEM, "ngram: no memory");
    for (int i = 0; i < m->n_touched && i < cap; i++)
        index[i] = m->touched[i], value[i] = m->val[i];
    return m->n_touched;
}

const char *ngram_feature_name(const ngram_model_t *m, int f, int *is_char) {
    if (f < 0 || f >= m->n_feat) return NULL;
    if (is_char) *is_char = m->names[m->name_pos[f]] == 'c';
    return m->names + m->name_pos[f] + 1;
}

int ngram_model_n_features(const ngram_model_t *m) {
    return m->n_feat;
}
const train_labels_t *ngram_model_labels(const ngram_model_t *m) {
    return &m->labels;
}
const ngram_opts_t *ngram_model_opts(const ngram_model_t *m) {
    return &m->o;
}

void ngram_model_destroy(ngram_model_t **mp) {
    if (!mp || !*mp) return;
    ngram_model_t *m = *mp;
    train_labels_deinit(&m->labels);
    llmos_map_deinit(&m->voc);
    free(m->idf);
    free(m->w);
    free(m->names);
    free(m->name_pos);
    free(m->lc);
    free(m->key);
    free(m->tok_s);
    free(m->tok_n);
    free(m->cnt);
    free(m->touched);
    free(m->val);
    free(m->score);
    free(m);
    *mp = NULL;
}

/* Per-feature arrays sized once n_feat and C are known. */
static int model_alloc(ngram_model_t *m) {
    int C = m->labels.n;
    m->idf = malloc(sizeof(double) * (size_t)(m->n_feat ? m->n_feat : 1));
    m->w = calloc((size_t)(m->n_feat + 1) * C, sizeof(float));
    m->cnt = calloc((size_t)(m->n_feat ? m->n_feat : 1), sizeof(int));
    m->score = malloc(sizeof(double) * (size_t)C);
    m->name_pos = malloc(sizeof(size_t) * (size_t)(m->n_feat ? m->n_feat : 1));
    return m->idf && m->w && m->cnt && m->score && m->name_pos ? 0 : LLMOS_ENOMEM;
}

/* ---------------------------------------------------------------- training */

typedef struct df_ctx {
    ngram_model_t *m;
    int doc;
} df_ctx_t;

static int df_gram(const char *key, size_t n, void *ctx) {
    df_ctx_t *d = ctx;
    vterm_t *s = vocab_insert(&d->m->voc, key, n);
    if (!s) return LLMOS_ENOMEM;
    if (s->last_doc != d->doc) s->df++, s->last_doc = d->doc;
    return 0;
}

/* liblinear prints its iterations to stdout unless told otherwise; llmos
 * tools keep stdout for results, and the progress line tells the time. */
static void liblinear_quiet(const char *s) {
    (void)s;
}

/* Vocabulary and idf of examples idx[0..n) (n-grams in first-seen order,
 * the word block first). */
static int build_vocab(ngram_model_t *m, const train_dataset_t *ds, const int *idx, int n,
                       llmos_error_t *err) {
    for (int i = 0; i < n; i++) {
        df_ctx_t d = {m, i};
        if (grams_each(m, ds->ex[idx ? idx[i] : i].text, df_gram, &d))
            return llmos_error_set(err, LLMOS_ENOMEM, "ngram: no memory for the vocabulary");
    }
    size_t na = llmos_map_count(&m->voc); /* entries in first-seen order */
    int nf = 0;
    size_t names_len = 0;
    for (int block = 0; block < 2; block++) {
        for (size_t i = 0; i < na; i++) {
            vterm_t *t = llmos_map_val_at(&m->voc, i);
            size_t kn;
            const char *k = llmos_map_str_key_at(&m->voc, i, &kn);
            if ((k[0] == 'c') == block && t->df >= m->o.min_df) {
                t->id = nf++;
                names_len += kn + 1;
            }
        }
        if (block == 0) m->n_word = nf;
    }
    m->n_feat = nf;
    int rc = nf ? model_alloc(m) : LLMOS_EINVAL;
    if (!rc && !(m->names = malloc(names_len ? names_len : 1))) rc = LLMOS_ENOMEM;
    if (!rc) {
        m->names_len = names_len;
        for (size_t i = 0; i < na; i++) {
            const vterm_t *s = llmos_map_val_at(&m->voc, i);
            if (s->id < 0) continue;
            m->idf[s->id] = log((1.0 + n) / (1.0 + s->df)) + 1.0;
        }
        size_t pos = 0; /* names in feature order: ids were given in entry order per block */
        for (int block = 0; block < 2; block++)
            for (size_t i = 0; i < na; i++) {
                const vterm_t *s = llmos_map_val_at(&m->voc, i);
                size_t kn;
                const char *k = llmos_map_str_key_at(&m->voc, i, &kn);
                if (s->id < 0 || (k[0] == 'c') != block) continue;
                m->name_pos[s->id] = pos;
                memcpy(m->names + pos, k, kn + 1);
                pos += kn + 1;
            }
    }
    if (rc == LLMOS_EINVAL)
        return llmos_error_set(err, rc, "ngram: the %d training texts give no n-gram with df >= %d", n,
                               m->o.min_df);
    return rc ? llmos_error_set(err, rc, "no memory") : 0;
}

/* Copies a multi-class (Crammer-Singer) liblinear model's weights into m->w
 * (class ids = liblinear labels). */
static void take_weights(ngram_model_t *m, const struct model *lm) {
    int C = m->labels.n, nr = lm->nr_class, rows = m->n_feat + 1;
    float *bias = m->w + (size_t)m->n_feat * C;
    for (int c = 0; c < C; c++)
        bias[c] = -INFINITY; /* classes never seen: probability 0 */
    for (int k = 0; k < nr; k++) {
        int c = lm->label[k];
        for (int f = 0; f < rows; f++) {
            double v = lm->w[(size_t)f * nr + k]; /* MCSVM_CS keeps nr_class vectors even for 2 classes */
            m->w[(size_t)f * C + c] = (float)v;
        }
    }
}

/* liblinear on the training matrix x (n rows, y the class ids; present[c]
 * counts class c's texts) into m->w.  The logistic solvers run one binary
 * problem per present class (one-vs-rest, as liblinear itself does for
 * more than two classes), so the progress line moves class by class; the
 * svm is one multi-class problem. */
static int fit(ngram_model_t *m, const ngram_opts_t *o, struct feature_node **x, struct feature_node *nodes,
               const size_t *start, double *y, int n, const int *present, llmos_error_t *err) {
    int C = m->labels.n;
    for (int i = 0; i < n; i++)
        x[i] = nodes + start[i];
    struct problem prob = {.l = n, .n = m->n_feat + 1, .y = y, .x = x, .bias = 1.0};
    static const int type[] = {L2R_LR, L2R_LR_DUAL, MCSVM_CS};
    static const double eps_default[] = {0.01, 0.1, 0.1};
    struct parameter par = {.solver_type = type[o->solver],
                            .eps = o->eps > 0 ? o->eps : eps_default[o->solver],
                            .C = o->C,
                            .p = 0.1};
    const char *bad = check_parameter(&prob, &par);
    if (bad) return llmos_error_set(err, LLMOS_EINVAL, "ngram: liblinear: %s", bad);
    int ovr = o->solver != NGRAM_SOLVER_SVM, n_present = 0;
    for (int c = 0; c < C; c++)
        n_present += present[c] > 0;
    double *yb = ovr ? malloc(sizeof(double) * (size_t)n) : NULL;
    if (ovr && !yb) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    llmos_progress_t pg;
    char label[96];
    snprintf(label, sizeof label, "liblinear %s C=%g (%d texts, %d features)", ngram_solver_name(o->solver),
             o->C, n, m->n_feat);
    llmos_progress_init(&pg, label, ovr ? "classes" : "models", ovr ? (uint64_t)n_present : 1);
    set_print_string_function(liblinear_quiet);
    int rc = 0, done = 0;
    if (!ovr) {
        struct model *lm = train(&prob, &par);
        if (!lm)
            rc = llmos_error_set(err, LLMOS_ENOMEM, "ngram: liblinear failed to train");
        else
            take_weights(m, lm);
        free_and_destroy_model(&lm);
        done = 1;
    } else {
        float *bias = m->w + (size_t)m->n_feat * C;
        prob.y = yb;
        for (int c = 0; c < C && !rc; c++) {
            if (!present[c]) {
                bias[c] = -INFINITY; /* never seen: probability 0 */
                continue;
            }
            for (int i = 0; i < n; i++)
                yb[i] = (int)y[i] == c ? 1 : -1;
            struct model *lm = train(&prob, &par);
            if (!lm) {
                rc = llmos_error_set(err, LLMOS_ENOMEM, "ngram: liblinear failed to train class %d", c);
                break;
            }
            /* a binary model's weights score its first label, the first text's */
            double sign = lm->label[0] == 1 ? 1 : -1;
            for (int f = 0; f <= m->n_feat; f++)
                m->w[(size_t)f * C + c] = (float)(sign * lm->w[f]);
            free_and_destroy_model(&lm);
            llmos_progress_update(&pg, (uint64_t)++done, 0);
        }
    }
    llmos_progress_update(&pg, (uint64_t)done, 0);
    llmos_progress_finish(&pg, NULL);
    free(yb);
    return rc;
}

int ngram_model_train(const ngram_opts_t *o, const train_dataset_t *ds, const int *idx, int n,
                      const train_labels_t *labels, ngram_model_t **out, llmos_error_t *err) {
    *out = NULL;
    int rc = opts_check(o, err);
    if (rc) return rc;
    if (n < 2 || labels->n < 2)
        return llmos_error_set(err, LLMOS_EINVAL, "ngram: %d texts and %d labels: need at least 2 of each", n,
                               labels->n);
    ngram_model_t *m = calloc(1, sizeof *m);
    if (m) llmos_map_init(&m->voc, LLMOS_MAP_STR, sizeof(vterm_t));
    if (!m || train_labels_copy(&m->labels, labels)) {
        ngram_model_destroy(&m);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    m->o = *o;
    int *present = calloc((size_t)labels->n, sizeof(int)), n_present = 0;
    for (int i = 0; present && i < n; i++) {
        int y = ds->ex[idx ? idx[i] : i].label;
        if (y < 0 || y >= labels->n) {
            rc = llmos_error_set(err, LLMOS_EINVAL, "ngram: %s:%d has no label", ds->path,
                                 ds->ex[idx ? idx[i] : i].line);
            break;
        }
        n_present += !present[y]++;
    }
    if (!present)
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    else if (!rc && n_present < 2)
        rc = llmos_error_set(err, LLMOS_EINVAL, "ngram: the training texts have %d class: need 2 or more",
                             n_present);
    if (!rc) rc = build_vocab(m, ds, idx, n, err);

    /* The training matrix: each text's TF-IDF vector, then the bias, then -1. */
    struct feature_node *nodes = NULL, **x = NULL;
    size_t *start = NULL, nn = 0, cap = 0;
    double *y = NULL;
    if (!rc) {
        x = malloc(sizeof *x * (size_t)n);
        start = malloc(sizeof *start * (size_t)n);
        y = malloc(sizeof *y * (size_t)n);
        if (!x || !start || !y) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    for (int i = 0; !rc && i < n; i++) {
        const train_example_t *e = &ds->ex[idx ? idx[i] : i];
        if (vectorize(m, e->text)) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
            break;
        }
        if (nn + (size_t)m->n_touched + 2 > cap) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            while (nc < nn + (size_t)m->n_touched + 2)
                nc *= 2;
            struct feature_node *t = realloc(nodes, sizeof *t * nc);
            if (!t) {
                rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the training matrix");
                break;
            }
            nodes = t;
            cap = nc;
        }
        start[i] = nn;
        for (int j = 0; j < m->n_touched; j++)
            nodes[nn++] = (struct feature_node){m->touched[j] + 1, m->val[j]};
        nodes[nn++] = (struct feature_node){m->n_feat + 1, 1.0};
        nodes[nn++] = (struct feature_node){-1, 0};
        y[i] = e->label;
    }
    if (!rc) rc = fit(m, o, x, nodes, start, y, n, present, err);
    free(nodes);
    free(x);
    free(start);
    free(y);
    free(present);
    if (rc) {
        ngram_model_destroy(&m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---------------------------------------------------------------- checkpoints */

static char *meta_json(const ngram_model_t *m, double train_acc, double val_acc, double train_loss,
                       double train_s) {
    const ngram_opts_t *o = &m->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "format", 1);
    cJSON_AddStringToObject(j, "task", "ngram");
    cJSON_AddStringToObject(j, "mode", "ngram");
    cJSON_AddStringToObject(j, "solver", ngram_solver_name(o->solver));
    cJSON_AddNumberToObject(j, "C", o->C);
    cJSON_AddNumberToObject(j, "eps", o->eps);
    cJSON_AddNumberToObject(j, "temperature", o->temperature);
    int wl[2] = {o->word_lo, o->word_hi}, cl[2] = {o->char_lo, o->char_hi};
    cJSON_AddItemToObject(j, "word_ngrams", cJSON_CreateIntArray(wl, 2));
    cJSON_AddItemToObject(j, "char_ngrams", cJSON_CreateIntArray(cl, 2));
    cJSON_AddNumberToObject(j, "min_word_len", o->min_word_len);
    cJSON_AddNumberToObject(j, "min_df", o->min_df);
    cJSON_AddNumberToObject(j, "n_classes", m->labels.n);
    cJSON_AddNumberToObject(j, "n_features", m->n_feat);
    cJSON_AddNumberToObject(j, "n_word_features", m->n_word);
    cJSON_AddNumberToObject(j, "step", 1);
    cJSON_AddNumberToObject(j, "train_acc", train_acc);
    if (!isnan(train_loss)) cJSON_AddNumberToObject(j, "train_loss", train_loss);
    if (val_acc >= 0) cJSON_AddNumberToObject(j, "val_metric", val_acc);
    cJSON_AddNumberToObject(j, "train_s", train_s);
    cJSON_AddNumberToObject(j, "time", (double)llmos_wall_ms() / 1e3);
    cJSON *a = cJSON_AddArrayToObject(j, "labels");
    for (int i = 0; i < m->labels.n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(m->labels.name[i]));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int save_with_loss(const ngram_model_t *m, const char *dir, double train_acc, double val_acc,
                          double train_loss, double train_s, int *version, llmos_error_t *err) {
    char *meta = meta_json(m, train_acc, val_acc, train_loss, train_s);
    if (!meta) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    train_ckpt_t *c = NULL;
    int rc = train_ckpt_open(dir, 1, &c, err);
    if (!rc) {
        train_ckpt_blob_t b[3] = {
            {"vocab", m->names, m->names_len},
            {"idf", m->idf, sizeof(double) * (size_t)m->n_feat},
            {"w", m->w, sizeof(float) * (size_t)(m->n_feat + 1) * (size_t)m->labels.n},
        };
        rc = train_ckpt_save_blobs(c, meta, b, 3, 1, 1, version, err);
    }
    train_ckpt_close(&c);
    free(meta);
    return rc;
}

int ngram_model_save(const ngram_model_t *m, const char *dir, double train_acc, double val_acc,
                     double train_s, int *version, llmos_error_t *err) {
    return save_with_loss(m, dir, train_acc, val_acc, NAN, train_s, version, err);
}

/* Opens dir's store and reads the meta of version `which` points to. */
static int open_version(const char *dir, int which, train_ckpt_t **c, int *ver, cJSON **meta,
                        llmos_error_t *err) {
    *meta = NULL;
    int rc = train_ckpt_open(dir, 0, c, err);
    if (!rc && (rc = train_ckpt_pointer(*c, which, ver, err)) == LLMOS_ENOTFOUND && which)
        rc = train_ckpt_pointer(*c, 0, ver, err);
    char *js = NULL;
    if (!rc) rc = train_ckpt_meta(*c, *ver, &js, err);
    if (!rc && !(*meta = cJSON_Parse(js)))
        rc = llmos_error_set(err, LLMOS_EFORMAT, "%s/ckpt.lmdb version %d: the meta record is not JSON", dir,
                             *ver);
    free(js);
    if (rc) train_ckpt_close(c);
    return rc;
}

static int meta_is_ngram(const cJSON *meta) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(meta, "task");
    return cJSON_IsString(t) && !strcmp(t->valuestring, "ngram");
}

int ngram_ckpt_probe(const char *dir, int which, int *is_ngram, llmos_error_t *err) {
    train_ckpt_t *c = NULL;
    cJSON *meta = NULL;
    int ver;
    int rc = open_version(dir, which, &c, &ver, &meta, err);
    *is_ngram = !rc && meta_is_ngram(meta);
    cJSON_Delete(meta);
    train_ckpt_close(&c);
    return rc;
}

static int jint(const cJSON *m, const char *k, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
    if (!cJSON_IsNumber(v)) return -1;
    *out = v->valueint;
    return 0;
}

static int jpair(const cJSON *m, const char *k, int *lo, int *hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(v, 1)))
        return -1;
    *lo = cJSON_GetArrayItem(v, 0)->valueint;
    *hi = cJSON_GetArrayItem(v, 1)->valueint;
    return 0;
}

/* Options, labels and sizes from the meta record. */
static int model_from_meta(ngram_model_t *m, const cJSON *meta, const char *where, llmos_error_t *err) {
    ngram_opts_default(&m->o);
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(meta, "solver"),
                *C = cJSON_GetObjectItemCaseSensitive(meta, "C"),
                *eps = cJSON_GetObjectItemCaseSensitive(meta, "eps"),
                *T = cJSON_GetObjectItemCaseSensitive(meta, "temperature"),
                *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    int solver = cJSON_IsString(sv) ? ngram_solver_parse(sv->valuestring) : -1;
    if (solver < 0 || !cJSON_IsNumber(C) || !cJSON_IsNumber(eps) || !cJSON_IsNumber(T) ||
        !cJSON_IsArray(labels) || jpair(meta, "word_ngrams", &m->o.word_lo, &m->o.word_hi) ||
        jpair(meta, "char_ngrams", &m->o.char_lo, &m->o.char_hi) ||
        jint(meta, "min_word_len", &m->o.min_word_len) || jint(meta, "min_df", &m->o.min_df) ||
        jint(meta, "n_features", &m->n_feat) || jint(meta, "n_word_features", &m->n_word) || m->n_feat < 1 ||
        m->n_word < 0 || m->n_word > m->n_feat)
        return llmos_error_set(err, LLMOS_EFORMAT, "%s: the meta record lacks or has bad n-gram fields",
                               where);
    m->o.solver = (ngram_solver_t)solver;
    m->o.C = C->valuedouble;
    m->o.eps = eps->valuedouble;
    m->o.temperature = T->valuedouble;
    llmos_error_t e2 = {0};
    if (opts_check(&m->o, &e2)) return llmos_error_set(err, LLMOS_EFORMAT, "%s: %s", where, e2.msg);
    char *ls = cJSON_PrintUnformatted(labels);
    int rc = ls ? train_labels_from_json(&m->labels, ls, strlen(ls), err)
                : llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    free(ls);
    if (rc) return llmos_error_prefix(err, "%s: labels: ", where);
    if (m->labels.n < 2) return llmos_error_set(err, LLMOS_EFORMAT, "%s: %d labels", where, m->labels.n);
    return 0;
}

/* Rebuilds names, name_pos and the vocabulary table from the vocab record. */
static int vocab_from_names(ngram_model_t *m, const char *where, llmos_error_t *err) {
    size_t pos = 0;
    int f = 0;
    while (pos < m->names_len && f < m->n_feat) {
        const char *k = m->names + pos;
        size_t n = strnlen(k, m->names_len - pos);
        if (n == m->names_len - pos || n < 2 || (k[0] != 'w' && k[0] != 'c') ||
            (k[0] == 'c') != (f >= m->n_word))
            break;
        vterm_t *s = vocab_insert(&m->voc, k, n);
        if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        if (s->id >= 0) break; /* a duplicate */
        s->id = f;
        m->name_pos[f++] = pos;
        pos += n + 1;
    }
    if (f != m->n_feat || pos != m->names_len)
        return llmos_error_set(err, LLMOS_EFORMAT,
                               "%s: the vocab record is damaged (feature %d of %d, byte %zu of %zu)", where,
                               f, m->n_feat, pos, m->names_len);
    return 0;
}

int ngram_model_load(const char *dir, int which, ngram_model_t **out, int *version, llmos_error_t *err) {
    *out = NULL;
    train_ckpt_t *c = NULL;
    cJSON *meta = NULL;
    int ver = 0;
    int rc = open_version(dir, which, &c, &ver, &meta, err);
    if (rc) return rc;
    char where[1200];
    snprintf(where, sizeof where, "%s/ckpt.lmdb version %d", dir, ver);
    ngram_model_t *m = calloc(1, sizeof *m);
    if (m) llmos_map_init(&m->voc, LLMOS_MAP_STR, sizeof(vterm_t));
    void *idf = NULL, *w = NULL;
    size_t n_idf = 0, n_w = 0;
    if (!m)
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    else if (!meta_is_ngram(meta))
        rc = llmos_error_set(err, LLMOS_EFORMAT, "%s: not an n-gram checkpoint (task is not \"ngram\")",
                             where);
    if (!rc) rc = model_from_meta(m, meta, where, err);
    if (!rc) rc = model_alloc(m) ? llmos_error_set(err, LLMOS_ENOMEM, "no memory") : 0;
    if (!rc) rc = train_ckpt_blob(c, ver, "vocab", (void **)&m->names, &m->names_len, err);
    if (!rc) rc = vocab_from_names(m, where, err);
    if (!rc) rc = train_ckpt_blob(c, ver, "idf", &idf, &n_idf, err);
    if (!rc) rc = train_ckpt_blob(c, ver, "w", &w, &n_w, err);
    size_t want_w = sizeof(float) * (size_t)(m ? m->n_feat + 1 : 0) * (size_t)(m ? m->labels.n : 0);
    if (!rc && (n_idf != sizeof(double) * (size_t)m->n_feat || n_w != want_w))
        rc = llmos_error_set(err, LLMOS_EFORMAT, "%s: idf has %zu bytes (want %zu), w %zu (want %zu)", where,
                             n_idf, sizeof(double) * (size_t)m->n_feat, n_w, want_w);
    if (!rc) {
        memcpy(m->idf, idf, n_idf);
        memcpy(m->w, w, n_w);
    }
    free(idf);
    free(w);
    cJSON_Delete(meta);
    train_ckpt_close(&c);
    if (rc) {
        ngram_model_destroy(&m);
        return rc;
    }
    if (version) *version = ver;
    *out = m;
    return 0;
}

/* ---------------------------------------------------------------- llmos-train --mode ngram */

/* Accuracy and mean log-loss of m on examples idx[0..n) of ds. */
static int score_split(ngram_model_t *m, const train_dataset_t *ds, const int *idx, int n, double *acc,
                       double *loss, llmos_error_t *err) {
    int C = m->labels.n, correct = 0;
    float *p = malloc(sizeof(float) * (size_t)C);
    if (!p) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    double l = 0;
    for (int i = 0; i < n; i++) {
        const train_example_t *e = &ds->ex[idx ? idx[i] : i];
        int rc = ngram_predict(m, &e->text, 1, p, err);
        if (rc) {
            free(p);
            return rc;
        }
        int best = 0;
        for (int c = 1; c < C; c++)
            best = p[c] > p[best] ? c : best;
        correct += best == e->label;
        l -= log(p[e->label] > 1e-12f ? p[e->label] : 1e-12);
    }
    free(p);
    *acc = n ? (double)correct / n : -1;
    *loss = n ? l / n : NAN;
    return 0;
}

int ngram_run(const ngram_run_opts_t *o, ngram_run_result_t *res, llmos_error_t *err) {
    memset(res, 0, sizeof *res);
    res->val_acc = -1;
    if (!o->train_path || !o->out_dir || !o->label_col)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "ngram: need a training file, a label column and an output folder");
    if (o->val_frac < 0 || o->val_frac >= 1)
        return llmos_error_set(err, LLMOS_EINVAL, "ngram: --val-frac %g: expected 0 <= F < 1", o->val_frac);
    train_labels_t labels = {0};
    train_dataset_t all = {0}, vds = {0};
    ngram_model_t *m = NULL;
    int *perm = NULL, rc = 0;
    if (o->labels_path) rc = train_labels_load(&labels, o->labels_path, err);
    if (!rc) rc = train_dataset_load(&all, o->train_path, o->text_col, o->label_col, &labels, err);
    if (!rc && o->val_path)
        rc = train_dataset_load(&vds, o->val_path, o->text_col, o->label_col, &labels, err);
    if (!rc && !(perm = malloc(sizeof(int) * (size_t)(all.n ? all.n : 1))))
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    int n_val = 0;
    if (!rc) n_val = train_split(all.n, o->val_path ? 0 : o->val_frac, o->split_seed, perm);
    uint64_t t0 = llmos_now_ns();
    if (!rc) rc = ngram_model_train(&o->model, &all, perm + n_val, all.n - n_val, &labels, &m, err);
    res->train_s = (double)(llmos_now_ns() - t0) / 1e9;
    double train_loss = NAN, vloss;
    if (!rc) rc = score_split(m, &all, perm + n_val, all.n - n_val, &res->train_acc, &train_loss, err);
    if (!rc && o->val_path)
        rc = score_split(m, &vds, NULL, vds.n, &res->val_acc, &vloss, err);
    else if (!rc && n_val)
        rc = score_split(m, &all, perm, n_val, &res->val_acc, &vloss, err);
    if (!rc)
        rc = save_with_loss(m, o->out_dir, res->train_acc, res->val_acc, train_loss, res->train_s,
                            &res->version, err);
    if (!rc) {
        res->n_train = all.n - n_val;
        res->n_val = o->val_path ? vds.n : n_val;
        res->n_features = m->n_feat;
        char mp[1100];
        snprintf(mp, sizeof mp, "%s/metrics.jsonl", o->out_dir);
        const char *path = o->metrics_path ? o->metrics_path : mp;
        FILE *f = fopen(path, "w");
        if (!f)
            rc = llmos_error_set(err, llmos_err_from_errno(errno), "cannot write %s: %s", path,
                                 strerror(errno));
        else {
            fprintf(f, "{\"step\":1,\"train_loss\":%.9g,\"train_acc\":%.6g", train_loss, res->train_acc);
            if (res->val_acc >= 0) fprintf(f, ",\"val_loss\":%.9g,\"val_acc\":%.6g", vloss, res->val_acc);
            fprintf(f, ",\"n_features\":%d,\"train_s\":%.3f,\"best\":true}\n", m->n_feat, res->train_s);
            if (fclose(f) != 0) rc = llmos_error_set(err, LLMOS_EIO, "error writing %s", path);
        }
    }
    ngram_model_destroy(&m);
    free(perm);
    train_dataset_deinit(&all);
    train_dataset_deinit(&vds);
    train_labels_deinit(&labels);
    return rc;
}
