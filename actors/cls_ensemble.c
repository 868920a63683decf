/*
 * cls_ensemble.c — the classifier-ensemble actor (see cls_ensemble.h):
 * members loaded at start-up, Classify requests queued by receive and run
 * in batches by idle, the weighted average of the members' probabilities
 * answered as a ScoreResult.
 */
#include "actors/cls_ensemble.h"
#include "actors/cls_result.h"

#include "llmos/model.pb-c.h"
#include "model/train/ngram.h"
#include "model/train/trainer.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "runtime/base/paths.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENS_MAX_TEXT_BYTES (1u << 20) /* a Classify text longer than this is refused */

typedef struct ens_member {
    char *dir;
    double weight;
    int version;
    ngram_model_t *ng;  /* an n-gram member, or NULL */
    train_loaded_t ld;  /* a transformer member (when ng is NULL) */
    bool loaded;
} ens_member_t;

typedef struct ens_req {
    struct ens_req *next;
    rt_ref_t asker;
    char *asker_name;
    uint64_t corr, deadline_ms;
    char *text;
    size_t len;
    int top_k;
} ens_req_t;

typedef struct ens {
    rt_system_t *sys;
    char *spec;
    int n;                      /* members */
    ens_member_t m[ACTORS_ENS_MAX_MEMBERS];
    double wsum;
    const train_labels_t *labels; /* member 0's (borrowed) */
    int C;
    ens_req_t *q_head, *q_tail;
    int n_queued;
    uint64_t requests_done, batches;
    /* batch scratch */
    train_example_t ex[ACTORS_ENS_BATCH];
    float *probs, *avg; /* [ACTORS_ENS_BATCH * C] */
    double *p;          /* [C]: the averaged row of one request, for cls_result */
} ens_t;

static void ens_free(ens_t *s) {
    if (!s) return;
    for (int k = 0; k < s->n; k++) {
        if (s->m[k].ng) ngram_model_destroy(&s->m[k].ng);
        if (s->m[k].loaded) train_loaded_deinit(&s->m[k].ld);
        free(s->m[k].dir);
    }
    while (s->q_head) {
        ens_req_t *r = s->q_head;
        s->q_head = r->next;
        free(r->asker_name);
        free(r->text);
        free(r);
    }
    free(s->spec);
    free(s->probs);
    free(s->avg);
    free(s->p);
    free(s);
}

/* One spec entry "DIR[:WEIGHT]" (entry is modified in place). */
static int parse_member(ens_t *s, char *entry, llmos_error_t *err) {
    int k = s->n;
    while (*entry == ' ') entry++;
    char *e = entry + strlen(entry);
    while (e > entry && e[-1] == ' ') *--e = 0;
    if (!entry[0]) return llmos_error_set(err, LLMOS_EINVAL, "ensemble member %d: empty entry in '%s'", k + 1, s->spec);
    if (k == ACTORS_ENS_MAX_MEMBERS)
        return llmos_error_set(err, LLMOS_EINVAL, "ensemble: more than %d members in '%s'", ACTORS_ENS_MAX_MEMBERS, s->spec);
    double w = 1;
    char *colon = strrchr(entry, ':');
    if (colon) {
        *colon = 0;
        char *end;
        errno = 0;
        w = strtod(colon + 1, &end);
        if (!colon[1] || *end || errno || !(w >= 0) || isinf(w))
            return llmos_error_set(err, LLMOS_EINVAL, "ensemble member %d (%s): weight '%s' is not a number >= 0", k + 1,
                                   entry, colon + 1);
        if (!entry[0]) return llmos_error_set(err, LLMOS_EINVAL, "ensemble member %d: no folder before ':%s'", k + 1, colon + 1);
    }
    /* A folder as given, else in the models folder ($LLMOS_MODELS), as llmosd --classifier. */
    char dir[4096];
    int rc = llmos_path_find(entry, LLMOS_PATH_MODELS, dir, sizeof dir, err);
    if (rc) {
        llmos_error_prefix(err, "ensemble member %d (%s): ", k + 1, entry);
        return rc;
    }
    if (!(s->m[k].dir = strdup(dir))) return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    s->m[k].weight = w;
    s->n++;
    return 0;
}

/* Loads member k and checks it is a classifier. */
static int load_member(ens_t *s, int k, int threads, llmos_error_t *err) {
    ens_member_t *m = &s->m[k];
    int is_ngram = 0, rc = ngram_ckpt_probe(m->dir, 1, &is_ngram, err);
    if (!rc && is_ngram) {
        rc = ngram_model_load(m->dir, 1, &m->ng, &m->version, err);
    } else if (!rc) {
        rc = train_loaded_open(&m->ld, m->dir, 1, NULL, NULL, ACTORS_ENS_BATCH, threads, err);
        if (!rc) {
            m->loaded = true;
            m->version = m->ld.version;
            if (train_net_layout(m->ld.net)->opts.task != TRAIN_TASK_CLS)
                rc = llmos_error_set(err, LLMOS_EINVAL, "version %d is not a classifier checkpoint", m->version);
        }
    }
    if (rc) llmos_error_prefix(err, "ensemble member %d (%s): ", k + 1, m->dir);
    return rc;
}

static const train_labels_t *member_labels(const ens_member_t *m) {
    return m->ng ? ngram_model_labels(m->ng) : &m->ld.labels;
}

static int ens_open(const char *spec, int threads, ens_t **out, llmos_error_t *err) {
    *out = NULL;
    ens_t *s = calloc(1, sizeof *s);
    if (!s || !(s->spec = strdup(spec))) {
        free(s);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    char *copy = strdup(spec);
    int rc = copy ? 0 : llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    if (!rc && !spec[0]) rc = llmos_error_set(err, LLMOS_EINVAL, "ensemble: the spec is empty (DIR[:WEIGHT],...)");
    for (char *p = copy, *next; !rc && p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = 0;
        rc = parse_member(s, p, err);
    }
    free(copy);
    for (int k = 0; !rc && k < s->n; k++) s->wsum += s->m[k].weight;
    if (!rc && !(s->wsum > 0)) rc = llmos_error_set(err, LLMOS_EINVAL, "ensemble '%s': the weights sum to 0", spec);
    for (int k = 0; !rc && k < s->n; k++) {
        rc = load_member(s, k, threads, err);
        if (rc) break;
        const train_labels_t *l = member_labels(&s->m[k]), *l0 = member_labels(&s->m[0]);
        int same = l->n == l0->n;
        for (int c = 0; same && c < l->n; c++) same = !strcmp(l->name[c], l0->name[c]);
        if (!same)
            rc = llmos_error_set(err, LLMOS_EINVAL, "ensemble member %d (%s): its %d labels differ from member 1's (%s, %d labels)",
                                 k + 1, s->m[k].dir, l->n, s->m[0].dir, l0->n);
    }
    if (!rc) {
        s->labels = member_labels(&s->m[0]);
        s->C = s->labels->n;
        s->probs = malloc(sizeof(float) * ACTORS_ENS_BATCH * (size_t)s->C);
        s->avg = malloc(sizeof(float) * ACTORS_ENS_BATCH * (size_t)s->C);
        s->p = malloc(sizeof(double) * (size_t)s->C);
        if (!s->probs || !s->avg || !s->p) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    if (rc) {
        ens_free(s);
        return rc;
    }
    for (int k = 0; k < s->n; k++)
        LLMOS_INFO("ensemble member %d: %s (%s, version %d), weight %g", k + 1, s->m[k].dir,
                   s->m[k].ng ? "n-gram" : "transformer", s->m[k].version, s->m[k].weight);
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- replies */

static void send_reply(ens_t *s, const ens_req_t *r, int status, const char *error, const void *data, size_t len) {
    if (rt_answer(s->sys, r->asker, r->corr, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE, true, status, error, data, len) ==
        LLMOS_ENOMEM)
        LLMOS_ERROR("ensemble: no memory for a %zu-byte reply", len);
}

static void req_free(ens_req_t *r) {
    if (!r) return;
    free(r->asker_name);
    free(r->text);
    free(r);
}

/* The classes by falling probability (a = the averaged row), top_k of them. */
static void classify_reply(ens_t *s, const ens_req_t *r, const float *a) {
    int C = s->C, k = r->top_k > 0 && r->top_k < C ? r->top_k : C;
    for (int c = 0; c < C; c++) s->p[c] = a[c];
    uint8_t *buf;
    size_t n;
    if (actors_cls_result_pack((const char *const *)s->labels->name, s->p, C, k, &buf, &n) == 0)
        send_reply(s, r, 0, NULL, buf, n);
    else
        send_reply(s, r, LLMOS_ENOMEM, "ensemble: no memory", NULL, 0);
    free(buf);
}

/* ---------------------------------------------------------------- batches */

/* Runs reqs[0..n) through every member; avg gets the weighted average rows. */
static int run_batch(ens_t *s, ens_req_t **reqs, int n, llmos_error_t *err) {
    int C = s->C;
    train_dataset_t ds = {.n = n, .cap = n, .ex = s->ex};
    snprintf(ds.path, sizeof ds.path, "classify request");
    const char *texts[ACTORS_ENS_BATCH];
    for (int i = 0; i < n; i++) {
        s->ex[i] = (train_example_t){.text = reqs[i]->text, .len = reqs[i]->len, .label = -1, .line = i + 1};
        texts[i] = reqs[i]->text;
    }
    memset(s->avg, 0, sizeof(float) * (size_t)n * (size_t)C);
    for (int k = 0; k < s->n; k++) {
        ens_member_t *m = &s->m[k];
        int rc;
        if (m->ng) {
            rc = ngram_predict(m->ng, texts, n, s->probs, err);
        } else {
            train_tokens_t tk;
            rc = train_tokens_build(&tk, &ds, model_tokenizer(m->ld.model), m->ld.seq, err);
            if (!rc) rc = train_predict(m->ld.net, &tk, s->probs, err);
            train_tokens_deinit(&tk);
        }
        if (rc) {
            llmos_error_prefix(err, "ensemble member %d (%s): ", k + 1, m->dir);
            return rc;
        }
        /* llmos-eval's arithmetic (float, member by member), so the answers equal its probabilities */
        float div = (float)(s->wsum / m->weight);
        for (size_t i = 0; i < (size_t)n * (size_t)C; i++) s->avg[i] += s->probs[i] / div;
    }
    return 0;
}

static bool ens_idle(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    ens_t *s = state;
    ens_req_t *reqs[ACTORS_ENS_BATCH];
    int n = 0;
    uint64_t now = llmos_wall_ms();
    while (s->q_head && n < ACTORS_ENS_BATCH) {
        ens_req_t *r = s->q_head;
        s->q_head = r->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_queued--;
        if (r->deadline_ms && now > r->deadline_ms) {
            send_reply(s, r, LLMOS_ETIMEDOUT, "ensemble: deadline passed while queued", NULL, 0);
            req_free(r);
            continue;
        }
        reqs[n++] = r;
    }
    if (n) {
        llmos_error_t err = {0};
        int rc = run_batch(s, reqs, n, &err);
        s->batches++;
        for (int i = 0; i < n; i++) {
            if (rc) {
                send_reply(s, reqs[i], rc, err.msg, NULL, 0);
            } else {
                classify_reply(s, reqs[i], s->avg + (size_t)i * (size_t)s->C);
                s->requests_done++;
            }
            req_free(reqs[i]);
        }
    }
    return s->q_head != NULL;
}

/* ---------------------------------------------------------------- messages */

static void reply_stats(ens_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    Llmos__ModelStats st = LLMOS__MODEL_STATS__INIT;
    char model[64];
    snprintf(model, sizeof model, "ensemble of %d members", s->n);
    st.model = model;
    st.tp = 1;
    st.available = true;
    st.queued = (uint32_t)s->n_queued;
    st.requests_done = s->requests_done;
    st.iterations = s->batches;
    st.classifier = s->spec;
    st.classes = (uint32_t)s->C;
    size_t n = llmos__model_stats__get_packed_size(&st);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "ensemble: no memory");
        return;
    }
    llmos__model_stats__pack(&st, buf);
    rt_reply(ctx, msg, LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, buf, n);
    free(buf);
}

/* A Classify: checked now, queued for the next batch. */
static void handle_score(ens_t *s, rt_ctx_t *ctx, const rt_msg_t *msg) {
    Llmos__ScoreRequest *q = llmos__score_request__unpack(NULL, msg->len, msg->data);
    if (!q) {
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "ensemble: the payload (%zu bytes) is not a ScoreRequest", msg->len);
        return;
    }
    const char *text = q->prompt ? q->prompt : "";
    size_t len = strlen(text);
    ens_req_t *r = NULL;
    if (q->n_labels)
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "ensemble: this node serves a classifier ensemble: Score with labels is "
                                               "not supported (send a Score without labels to classify)");
    else if (!len)
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "classify: the text is empty");
    else if (len > ENS_MAX_TEXT_BYTES)
        rt_reply_error(ctx, msg, LLMOS_EINVAL, "classify: the text is %zu bytes (at most %u)", len, ENS_MAX_TEXT_BYTES);
    else if (!(r = calloc(1, sizeof *r)) || !(r->text = strdup(text)) ||
             (msg->from.name && msg->from.name[0] && !(r->asker_name = strdup(msg->from.name)))) {
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "ensemble: no memory");
        req_free(r);
        r = NULL;
    }
    if (r) {
        r->asker = msg->from;
        r->asker.name = r->asker_name;
        r->corr = msg->corr;
        r->deadline_ms = msg->deadline_ms;
        r->len = len;
        r->top_k = q->top_k > (uint32_t)s->C ? s->C : (int)q->top_k;
        if (s->q_tail)
            s->q_tail->next = r;
        else
            s->q_head = r;
        s->q_tail = r;
        s->n_queued++;
    }
    llmos__score_request__free_unpacked(q, NULL);
}

static int ens_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    ens_t *s = state;
    if (msg->flags & RT_MSG_REPLY) return 0;
    const char *what = NULL;
    switch (msg->type) {
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE:
        handle_score(s, ctx, msg);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS:
        reply_stats(s, ctx, msg);
        return 0;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE: what = "generate"; break;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED: what = "embed"; break;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_CANCEL: what = "cancel"; break;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_LOAD: what = "load"; break;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_UNLOAD: what = "unload"; break;
    case LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SHUTDOWN: what = "shutdown"; break;
    default:
        return LLMOS_EUNKNOWNTYPE;
    }
    rt_reply_error(ctx, msg, LLMOS_EUNSUPPORTED,
                   "ensemble: this node serves a classifier ensemble of %d members (%s): only classify (Score without "
                   "labels) and stats; %s is not supported",
                   s->n, s->spec, what);
    return 0;
}

static int ens_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    *state = arg;
    return 0;
}

static void ens_deinit(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    ens_free(state);
}

int actors_ensemble_start(rt_system_t *sys, const char *spec, bool as_model, int threads, llmos_error_t *err) {
    ens_t *s = NULL;
    int rc = ens_open(spec, threads > 0 ? threads : 1, &s, err);
    if (rc) return rc;
    s->sys = sys;
    int n = s->n;
    rt_actor_def_t def = {.kind = "classify-ensemble", .init = ens_init, .receive = ens_receive, .deinit = ens_deinit,
                          .idle = ens_idle};
    rt_spawn_opts_t so = {.name = "classify/ensemble", .pinned = true};
    rt_ref_t ref;
    if ((rc = rt_spawn(sys, &def, s, &so, &ref, err))) {
        ens_free(s);
        return rc;
    }
    /* From here the actor owns s (its deinit frees it). */
    if (as_model && (rc = rt_register(sys, "model", ref)) != 0)
        return llmos_error_set(err, rc, "registering the ensemble as model: %s", llmos_strerror(rc));
    LLMOS_INFO("serving an ensemble of %d members as classify/ensemble%s", n, as_model ? " and model" : "");
    return 0;
}
