/*
 * sample.c — choosing the next token from logits: repetition penalty,
 * greedy or temperature sampling with top-k and top-p (nucleus), seeded so
 * a run is reproducible; and the stop-string check the generators share.
 *
 * A sampler owns scratch for vocab_size candidates, allocated once; a
 * sample allocates nothing.  One sampler per sequence, one thread at a time.
 */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    float p;
    int id;
} cand_t;

struct model_sampler {
    int vocab;
    model_sample_opts_t o;
    uint64_t rng;
    cand_t *cand;      /* [vocab] */
    uint32_t *seen;    /* [vocab] stamp of the last sample that saw the token */
    uint32_t stamp;
};

int model_sampler_new(int vocab, const model_sample_opts_t *opts, model_sampler_t **out, llmos_error_t *err) {
    *out = NULL;
    if (vocab <= 0) return llmos_error_set(err, LLMOS_EINVAL, "sampler: vocab_size %d", vocab);
    model_sample_opts_t o = opts ? *opts : (model_sample_opts_t){0};
    if (!(o.temperature >= 0) || !(o.top_p >= 0 && o.top_p <= 1) || o.top_k < 0 || !(o.repetition_penalty >= 0))
        return llmos_error_set(err, LLMOS_EINVAL,
                               "sampler: temperature %g must be >= 0, top_p %g in [0,1], top_k %d >= 0, "
                               "repetition_penalty %g >= 0",
                               o.temperature, o.top_p, o.top_k, o.repetition_penalty);
    model_sampler_t *s = calloc(1, sizeof *s);
    if (!s) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for sampler");
    s->vocab = vocab;
    s->o = o;
    s->rng = o.seed ? o.seed : 0x9e3779b97f4a7c15ull;
    s->cand = malloc(sizeof(cand_t) * (size_t)vocab);
    s->seen = calloc((size_t)vocab, sizeof(uint32_t));
    if (!s->cand || !s->seen) {
        model_sampler_destroy(&s);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for sampler");
    }
    *out = s;
    return 0;
}

void model_sampler_destroy(model_sampler_t **sp) {
    if (!sp || !*sp) return;
    free((*sp)->cand);
    free((*sp)->seen);
    free(*sp);
    *sp = NULL;
}

/* xorshift64*: small, fast, and the same sequence on every machine. */
static float rand_f32(uint64_t *st) {
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return (float)((*st * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int cmp_desc(const void *a, const void *b) {
    float pa = ((const cand_t *)a)->p, pb = ((const cand_t *)b)->p;
    if (pa != pb) return pa > pb ? -1 : 1;
    return ((const cand_t *)a)->id - ((const cand_t *)b)->id;
}

int model_sampler_sample(model_sampler_t *s, float *logits, const int *history, int n_history) {
    int V = s->vocab;
    float pen = s->o.repetition_penalty;
    if (pen > 0 && pen != 1 && history) {
        if (++s->stamp == 0) { /* wrapped: reset the stamps */
            memset(s->seen, 0, sizeof(uint32_t) * (size_t)V);
            s->stamp = 1;
        }
        for (int i = 0; i < n_history; i++) {
            int t = history[i];
            if (t < 0 || t >= V || s->seen[t] == s->stamp) continue;
            s->seen[t] = s->stamp;
            logits[t] = logits[t] > 0 ? logits[t] / pen : logits[t] * pen;
        }
    }
    if (s->o.temperature == 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    float mx = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < V; i++) {
        logits[i] = expf((logits[i] - mx) / s->o.temperature);
        sum += logits[i];
    }
    int topk = s->o.top_k > 0 && s->o.top_k < V ? s->o.top_k : V;
    float topp = s->o.top_p > 0 && s->o.top_p < 1 ? s->o.top_p : 1;
    int n = 0;
    if (topk == V && topp == 1) {
        for (int i = 0; i < V; i++) s->cand[n++] = (cand_t){(float)(logits[i] / sum), i};
    } else {
        /* Tokens below (1-p)/(V-1) cannot be in the nucleus: drop them before sorting. */
        float cutoff = topp < 1 ? (float)((1 - topp) / (V - 1)) : 0;
        for (int i = 0; i < V; i++) {
            float p = (float)(logits[i] / sum);
            if (p >= cutoff) s->cand[n++] = (cand_t){p, i};
        }
        if (n == 0) { /* everything under the cutoff: keep the best */
            int b = 0;
            for (int i = 1; i < V; i++)
                if (logits[i] > logits[b]) b = i;
            s->cand[n++] = (cand_t){1, b};
        }
        qsort(s->cand, (size_t)n, sizeof(cand_t), cmp_desc);
        if (n > topk) n = topk;
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->cand[i].p;
            if (cum >= topp) {
                n = i + 1;
                break;
            }
        }
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += s->cand[i].p;
    double r = rand_f32(&s->rng) * total, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->cand[i].p;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}

size_t model_stop_check(const char *const *stops, int n_stops, const char *text, size_t len, int *hit, size_t *at) {
    *hit = 0;
    *at = len;
    size_t hold = 0;
    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        if (sl == 0) continue;
        const char *p = sl <= len ? memmem(text, len, stops[i], sl) : NULL;
        if (p) {
            *hit = 1;
            if ((size_t)(p - text) < *at) *at = (size_t)(p - text);
        }
        /* longest suffix of text that is a proper prefix of the stop string */
        size_t maxk = sl - 1 < len ? sl - 1 : len;
        for (size_t k = maxk; k > hold; k--)
            if (memcmp(text + len - k, stops[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}
