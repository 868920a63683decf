/*
 * net_impl.h — the trainable Llama net, written once for a real type R and
 * instantiated twice: fp32 (net_f32.c, the public train_net_*) and fp64
 * (net_f64.c, train64_net_*, the reference the gradient checks compare
 * against).  Not a header to include anywhere else.
 *
 * Before inclusion define R (float|double), NET (the struct tag), FN(x) (the
 * public name of x) and GEMM_EX (bli_sgemm_ex|bli_dgemm_ex).
 *
 * Saved activations (per layer l, N = B*T rows): the layer input X[l], the
 * two RMSNorm outputs and inverse RMS values, Q and K after RoPE, V, the
 * attention probabilities, the attention output, the residual after
 * attention, the MLP gate/up pre-activations and their SwiGLU product, and
 * X·Aᵀ of every LoRA adapter.  Backward recomputes nothing.
 *
 * The inference kernels (model/kernels.h) do the fp32 net's work where the
 * arithmetic is the same bit for bit (net_f32.c defines NET_KERNELS_F32):
 * the RoPE tables (both nets), RMSNorm and RoPE forward, the attention
 * softmax.  What stays written here, and why:
 *   - the fp64 net (net_f64.c) entirely: it is the reference the gradient
 *     checks hold the fp32 net to (finite differences need its precision),
 *     and the kernels are float only;
 *   - the GEMMs: training multiplies with transposes, strides and
 *     alpha/beta (LoRA, backward) that model_sgemm_xwt does not take;
 *   - SwiGLU, g / (1 + e^-g) · u: the engine rounds llama2.c's way,
 *     g · (1 / (1 + e^-g)) · u (what its greedy text is checked against),
 *     and changing either would change what the other computes;
 *   - the attention dot products: model_dot is vectorised per CPU
 *     (target_clones), which sums in another order than this file's
 *     baseline build, so training results would depend on the machine;
 *   - every backward step (inference has none).
 */
#include "model/kernels.h"
#include "model/train/train.h"

#include <blis.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#define PAR_FOR _Pragma("omp parallel for num_threads(n->threads) schedule(static) if (n->threads > 1)")
/* Short loops over a head (hd values): vectorised; the dot products may be
 * summed in any order. */
#define SIMD _Pragma("omp simd")
#define SIMD_SUM_D _Pragma("omp simd reduction(+ : d)")

struct NET {
    train_layout_t lay;
    R *p, *g;
    int threads;
    rntm_t rntm;
    int Bmax, Tmax, N, B, T, D, KV, H, V, C, r, L, nh, nkv, hd;
    int body_train, lora, cls;
    R lora_scale;
    int *tok, *len, *lab;
    R *X, *A1, *Q, *K, *Vv, *O, *X2, *A2, *G, *U, *M, *r1, *r2, *P, *XA;
    R *rf, *XF, *logits, *pool, *dmask, *drop;
    R *dx, *dA, *dQ, *dK, *dV, *dO, *dH1, *dH2, *dR, *dpool, *dP;
    R *rope_cos, *rope_sin;
};

static void *FN(zalloc)(size_t n, int *ok) {
    size_t r = (n + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, r ? r : 64);
    if (!p) *ok = 0;
    else memset(p, 0, r ? r : 64);
    return p;
}

static R *FN(w)(const struct NET *n, int ti) { return n->p + n->lay.t[ti].off; }
static R *FN(gw)(const struct NET *n, int ti) { return n->g + n->lay.t[ti].off; }

void FN(net_destroy)(struct NET **np) {
    if (!np || !*np) return;
    struct NET *n = *np;
    void *bufs[] = {n->p,  n->g,  n->tok, n->len, n->lab, n->X,   n->A1,   n->Q,      n->K,      n->Vv,
                    n->O,  n->X2, n->A2,  n->G,   n->U,   n->M,   n->r1,   n->r2,     n->P,      n->XA,
                    n->rf, n->XF, n->logits, n->pool, n->dmask, n->drop, n->dx, n->dA, n->dQ, n->dK,
                    n->dV, n->dO, n->dH1, n->dH2, n->dR, n->dpool, n->dP, n->rope_cos, n->rope_sin};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    train_layout_deinit(&n->lay);
    free(n);
    *np = NULL;
}

int FN(net_new)(const model_config_t *cfg, const train_net_opts_t *o, struct NET **out, llmos_error_t *err) {
    *out = NULL;
    struct NET *n = calloc(1, sizeof *n);
    if (!n) return llmos_error_set(err, LLMOS_ENOMEM, "train: no memory for a net");
    int rc = train_layout_init(&n->lay, cfg, o, err);
    if (rc) {
        free(n);
        return rc;
    }
    model_blis_init();
    const model_config_t *c = &n->lay.cfg;
    n->threads = o->threads > 0 ? o->threads : 1;
    rntm_t rn = BLIS_RNTM_INITIALIZER;
    n->rntm = rn;
    bli_rntm_set_num_threads(n->threads, &n->rntm);
    n->Bmax = o->batch;
    n->Tmax = o->seq;
    n->D = c->dim;
    n->KV = c->n_kv_heads * c->head_dim;
    n->H = c->hidden_dim;
    n->V = c->vocab_size;
    n->L = c->n_layers;
    n->nh = c->n_heads;
    n->nkv = c->n_kv_heads;
    n->hd = c->head_dim;
    n->cls = o->task == TRAIN_TASK_CLS;
    n->C = n->cls ? o->n_classes : 0;
    n->lora = o->mode == TRAIN_MODE_LORA;
    n->r = n->lora ? o->lora_rank : 0;
    n->lora_scale = n->lora ? (R)o->lora_alpha / (R)o->lora_rank : 0;
    n->body_train = o->mode == TRAIN_MODE_FULL || o->mode == TRAIN_MODE_PRETRAIN;
    size_t N = (size_t)o->batch * (size_t)o->seq, D = (size_t)n->D, KV = (size_t)n->KV, H = (size_t)n->H,
           L = (size_t)n->L, T = (size_t)o->seq, B = (size_t)o->batch, S = sizeof(R);
    int ok = 1;
    n->p = FN(zalloc)(S * n->lay.n_params, &ok);
    n->g = FN(zalloc)(S * n->lay.n_params, &ok);
    n->tok = FN(zalloc)(sizeof(int) * N, &ok);
    n->len = FN(zalloc)(sizeof(int) * B, &ok);
    n->lab = FN(zalloc)(sizeof(int) * B, &ok);
    n->X = FN(zalloc)(S * (L + 1) * N * D, &ok);
    n->A1 = FN(zalloc)(S * L * N * D, &ok);
    n->Q = FN(zalloc)(S * L * N * D, &ok);
    n->K = FN(zalloc)(S * L * N * KV, &ok);
    n->Vv = FN(zalloc)(S * L * N * KV, &ok);
    n->O = FN(zalloc)(S * L * N * D, &ok);
    n->X2 = FN(zalloc)(S * L * N * D, &ok);
    n->A2 = FN(zalloc)(S * L * N * D, &ok);
    n->G = FN(zalloc)(S * L * N * H, &ok);
    n->U = FN(zalloc)(S * L * N * H, &ok);
    n->M = FN(zalloc)(S * L * N * H, &ok);
    n->r1 = FN(zalloc)(S * L * N, &ok);
    n->r2 = FN(zalloc)(S * L * N, &ok);
    n->P = FN(zalloc)(S * L * B * (size_t)n->nh * T * T, &ok);
    n->XA = FN(zalloc)(S * L * TRAIN_N_PROJ * N * (size_t)(n->r ? n->r : 1), &ok);
    n->rf = FN(zalloc)(S * N, &ok);
    n->XF = FN(zalloc)(S * N * D, &ok);
    n->logits = FN(zalloc)(S * (n->cls ? B * (size_t)n->C : N * (size_t)n->V), &ok);
    n->pool = FN(zalloc)(S * B * D, &ok);
    n->dmask = FN(zalloc)(S * B * D, &ok);
    n->drop = FN(zalloc)(S * B * D, &ok);
    n->dx = FN(zalloc)(S * N * D, &ok);
    n->dA = FN(zalloc)(S * N * D, &ok);
    n->dQ = FN(zalloc)(S * N * D, &ok);
    n->dK = FN(zalloc)(S * N * KV, &ok);
    n->dV = FN(zalloc)(S * N * KV, &ok);
    n->dO = FN(zalloc)(S * N * D, &ok);
    n->dH1 = FN(zalloc)(S * N * H, &ok);
    n->dH2 = FN(zalloc)(S * N * H, &ok);
    n->dR = FN(zalloc)(S * N * (size_t)(n->r ? n->r : 1), &ok);
    n->dpool = FN(zalloc)(S * B * D, &ok);
    n->dP = FN(zalloc)(S * (size_t)n->threads * T, &ok);
    n->rope_cos = FN(zalloc)(S * T * (size_t)(n->hd / 2), &ok);
    n->rope_sin = FN(zalloc)(S * T * (size_t)(n->hd / 2), &ok);
    if (!ok) {
        size_t np = n->lay.n_params;
        FN(net_destroy)(&n);
        return llmos_error_set(err, LLMOS_ENOMEM, "train: no memory for a net of %zu parameters, batch %d x %d",
                               np, o->batch, o->seq);
    }
    /* The inference engine's tables, so both rotate alike. */
#ifdef NET_KERNELS_F32
    model_rope_table(n->rope_cos, n->rope_sin, o->seq, n->hd, c->rope_theta);
#else
    size_t nt = T * (size_t)(n->hd / 2);
    float *cs = malloc(sizeof(float) * nt), *sn = malloc(sizeof(float) * nt);
    if (!cs || !sn) {
        free(cs);
        free(sn);
        FN(net_destroy)(&n);
        return llmos_error_set(err, LLMOS_ENOMEM, "train: no memory for the RoPE tables");
    }
    model_rope_table(cs, sn, o->seq, n->hd, c->rope_theta);
    for (size_t i = 0; i < nt; i++) {
        n->rope_cos[i] = (R)cs[i];
        n->rope_sin[i] = (R)sn[i];
    }
    free(cs);
    free(sn);
#endif
    *out = n;
    return 0;
}

const train_layout_t *FN(net_layout)(const struct NET *n) { return &n->lay; }
R *FN(net_params)(struct NET *n) { return n->p; }
R *FN(net_grads)(struct NET *n) { return n->g; }

void FN(net_zero_grad)(struct NET *n) { memset(n->g, 0, sizeof(R) * n->lay.n_params); }

void FN(net_init_random)(struct NET *n, uint64_t seed, float std, unsigned groups) {
    const train_layout_t *l = &n->lay;
    for (int i = 0; i < l->n_tensors; i++) {
        const train_tensor_t *t = &l->t[i];
        if (!(groups & (1u << t->group))) continue;
        uint64_t s = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
        R *x = n->p + t->off;
        size_t cnt = (size_t)t->rows * (size_t)t->cols;
        double sd = std;
        int is_B = t->group == TRAIN_GROUP_LORA && t->name[strlen(t->name) - 1] == 'B';
        if (t->rows == 1) {
            R v = strstr(t->name, "norm") ? (R)1 : (R)0;
            for (size_t k = 0; k < cnt; k++) x[k] = v;
            continue;
        }
        if (is_B) {
            memset(x, 0, sizeof(R) * cnt);
            continue;
        }
        if (t->group == TRAIN_GROUP_LORA || t->group == TRAIN_GROUP_HEAD) sd = 1.0 / sqrt((double)t->cols);
        else if (strstr(t->name, ".wo") || strstr(t->name, ".w2")) sd = std / sqrt(2.0 * l->cfg.n_layers);
        for (size_t k = 0; k < cnt; k++) x[k] = (R)(sd * train_rng_normal(&s));
    }
}

/* The model tensor behind layout tensor ti of the body, or NULL. */
static model_tensor_t *FN(model_tensor)(const train_layout_t *l, model_weights_t *w, int ti) {
    if (ti == l->tok_embd) return &w->tok_embd;
    if (ti == l->final_norm) return &w->final_norm;
    if (ti == l->classifier) return &w->classifier;
    for (int i = 0; i < l->cfg.n_layers; i++)
        for (int k = 0; k < 9; k++)
            if (l->layer[i * 9 + k] == ti) {
                model_layer_t *L = &w->layers[i];
                model_tensor_t *m[9] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo,
                                        &L->ffn_norm,  &L->w1, &L->w2, &L->w3};
                return m[k];
            }
    return NULL;
}

static int FN(check_model)(const struct NET *n, const model_t *m, llmos_error_t *err) {
    const model_config_t *a = &n->lay.cfg, *b = model_config(m);
    if (a->dim != b->dim || a->hidden_dim != b->hidden_dim || a->n_layers != b->n_layers ||
        a->n_heads != b->n_heads || a->n_kv_heads != b->n_kv_heads || a->vocab_size != b->vocab_size ||
        a->shared_classifier != b->shared_classifier)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "train: model shape (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, shared %d) "
                               "differs from the net's (%d, %d, %d, %d/%d, %d, %d)",
                               b->dim, b->hidden_dim, b->n_layers, b->n_heads, b->n_kv_heads, b->vocab_size,
                               b->shared_classifier, a->dim, a->hidden_dim, a->n_layers, a->n_heads, a->n_kv_heads,
                               a->vocab_size, a->shared_classifier);
    return 0;
}

int FN(net_load_model)(struct NET *n, const model_t *m, llmos_error_t *err) {
    int rc = FN(check_model)(n, m, err);
    if (rc) return rc;
    const train_layout_t *l = &n->lay;
    model_weights_t *w = model_weights((model_t *)m);
    for (int i = 0; i < l->n_tensors; i++) {
        if (l->t[i].group != TRAIN_GROUP_BODY) continue;
        const model_tensor_t *mt = FN(model_tensor)(l, w, i);
        if (!mt) continue;
        if (mt->dtype != MODEL_DTYPE_F32)
            return llmos_error_set(err, LLMOS_EUNSUPPORTED, "train: tensor %s is quantized; training needs fp32",
                                   l->t[i].name);
        size_t cnt = (size_t)l->t[i].rows * (size_t)l->t[i].cols;
        const float *src = mt->data;
        R *dst = n->p + l->t[i].off;
        for (size_t k = 0; k < cnt; k++) dst[k] = (R)src[k];
    }
    return 0;
}

int FN(net_store_model)(const struct NET *n, model_t *m, llmos_error_t *err) {
    int rc = FN(check_model)(n, m, err);
    if (rc) return rc;
    const train_layout_t *l = &n->lay;
    model_weights_t *w = model_weights(m);
    for (int i = 0; i < l->n_tensors; i++) {
        if (l->t[i].group != TRAIN_GROUP_BODY) continue;
        model_tensor_t *mt = FN(model_tensor)(l, w, i);
        if (!mt) continue;
        if (mt->dtype != MODEL_DTYPE_F32)
            return llmos_error_set(err, LLMOS_EUNSUPPORTED, "train: model tensor %s is not fp32", l->t[i].name);
        size_t cnt = (size_t)l->t[i].rows * (size_t)l->t[i].cols;
        float *dst = mt->data;
        const R *src = n->p + l->t[i].off;
        for (size_t k = 0; k < cnt; k++) dst[k] = (float)src[k];
    }
    if (!n->lora) return 0;
    /* W[out, in] += s · B[out, r] · A[r, in], accumulated in the model's fp32. */
    static const int proj_tensor[TRAIN_N_PROJ] = {1, 2, 3, 4, 6, 7, 8};
    for (int li = 0; li < n->L; li++)
        for (int p = 0; p < TRAIN_N_PROJ; p++) {
            int wi = l->layer[li * 9 + proj_tensor[p]];
            const train_tensor_t *A = &l->t[l->lora[(li * TRAIN_N_PROJ + p) * 2]],
                                 *Bt = &l->t[l->lora[(li * TRAIN_N_PROJ + p) * 2 + 1]];
            float *dst = FN(model_tensor)(l, w, wi)->data;
            int out = l->t[wi].rows, in = l->t[wi].cols;
            for (int i = 0; i < out; i++)
                for (int j = 0; j < in; j++) {
                    R s = 0;
                    for (int k = 0; k < n->r; k++) s += n->p[Bt->off + (size_t)i * n->r + k] * n->p[A->off + (size_t)k * in + j];
                    dst[(size_t)i * in + j] += (float)(n->lora_scale * s);
                }
        }
    return 0;
}

/* C[m,n] = alpha · A[m,k]·B[k,n] + beta · C, strides as BLIS takes them. */
static void FN(mm)(struct NET *n, int m, int nn, int k, R alpha, const R *A, int rsa, int csa, const R *B, int rsb,
                   int csb, R beta, R *C, int ldc) {
    if (m == 0 || nn == 0) return;
    GEMM_EX(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, nn, k, &alpha, (R *)A, rsa, csa, (R *)B, rsb, csb, &beta, C,
            ldc, 1, NULL, &n->rntm);
}

static const int FN(proj_tensor)[TRAIN_N_PROJ] = {1, 2, 3, 4, 6, 7, 8};

/* Y[N,out] = X[N,in]·Wᵀ (+ s · (X·Aᵀ)·Bᵀ, saving X·Aᵀ). */
static void FN(lin)(struct NET *n, int l, int p, const R *X, int N, R *Y) {
    const train_layout_t *lay = &n->lay;
    int wi = lay->layer[l * 9 + FN(proj_tensor)[p]];
    int out = lay->t[wi].rows, in = lay->t[wi].cols;
    FN(mm)(n, N, out, in, 1, X, in, 1, FN(w)(n, wi), 1, in, 0, Y, out);
    if (!n->lora) return;
    int r = n->r;
    R *XA = n->XA + ((size_t)l * TRAIN_N_PROJ + p) * (size_t)n->N * r;
    const R *A = FN(w)(n, lay->lora[(l * TRAIN_N_PROJ + p) * 2]), *Bm = FN(w)(n, lay->lora[(l * TRAIN_N_PROJ + p) * 2 + 1]);
    FN(mm)(n, N, r, in, 1, X, in, 1, A, 1, in, 0, XA, r);
    FN(mm)(n, N, out, r, n->lora_scale, XA, r, 1, Bm, 1, r, 1, Y, out);
}

/* Backward of lin: dX (= or += by acc) dY·W (+ LoRA path); weight grads of
 * the trainable parts. */
static void FN(lin_bwd)(struct NET *n, int l, int p, const R *X, int N, const R *dY, R *dX, int acc) {
    const train_layout_t *lay = &n->lay;
    int wi = lay->layer[l * 9 + FN(proj_tensor)[p]];
    int out = lay->t[wi].rows, in = lay->t[wi].cols;
    if (dX) FN(mm)(n, N, in, out, 1, dY, out, 1, FN(w)(n, wi), in, 1, acc ? 1 : 0, dX, in);
    if (n->body_train) FN(mm)(n, out, in, N, 1, dY, 1, out, X, in, 1, 1, FN(gw)(n, wi), in);
    if (!n->lora) return;
    int r = n->r, ai = lay->lora[(l * TRAIN_N_PROJ + p) * 2], bi = lay->lora[(l * TRAIN_N_PROJ + p) * 2 + 1];
    const R *XA = n->XA + ((size_t)l * TRAIN_N_PROJ + p) * (size_t)n->N * r;
    R s = n->lora_scale;
    FN(mm)(n, N, r, out, 1, dY, out, 1, FN(w)(n, bi), r, 1, 0, n->dR, r);         /* dR = dY·B */
    if (dX) FN(mm)(n, N, in, r, s, n->dR, r, 1, FN(w)(n, ai), in, 1, 1, dX, in); /* dX += s dR·A */
    FN(mm)(n, r, in, N, s, n->dR, 1, r, X, in, 1, 1, FN(gw)(n, ai), in);          /* dA += s dRᵀ·X */
    FN(mm)(n, out, r, N, s, dY, 1, out, XA, r, 1, 1, FN(gw)(n, bi), r);           /* dB += s dYᵀ·XA */
}

static void FN(rmsnorm)(struct NET *n, const R *X, const R *w, R *Y, R *rinv, int N) {
    int D = n->D;
    R eps = (R)n->lay.cfg.norm_eps;
    PAR_FOR
    for (int i = 0; i < N; i++) {
#ifdef NET_KERNELS_F32
        rinv[i] = model_rmsnorm_rinv(Y + (size_t)i * D, X + (size_t)i * D, w, D, eps);
#else
        const R *x = X + (size_t)i * D;
        R ss = 0;
        for (int j = 0; j < D; j++) ss += x[j] * x[j];
        R rr = (R)1 / sqrt(ss / (R)D + eps);
        rinv[i] = rr;
        R *y = Y + (size_t)i * D;
        for (int j = 0; j < D; j++) y[j] = w[j] * (rr * x[j]);
#endif
    }
}

/* dX += RMSNorm'ᵀ dY; dw += Σ dY ⊙ x·r when the body trains. */
static void FN(rmsnorm_bwd)(struct NET *n, const R *X, const R *w, const R *rinv, const R *dY, R *dX, R *dw, int N) {
    int D = n->D;
    PAR_FOR
    for (int i = 0; i < N; i++) {
        const R *x = X + (size_t)i * D, *dy = dY + (size_t)i * D;
        R rr = rinv[i], dot = 0;
        for (int j = 0; j < D; j++) dot += w[j] * dy[j] * x[j];
        R c = rr * rr * rr * dot / (R)D;
        R *dx = dX + (size_t)i * D;
        for (int j = 0; j < D; j++) dx[j] += rr * w[j] * dy[j] - c * x[j];
    }
    if (!n->body_train) return;
    PAR_FOR
    for (int j = 0; j < D; j++) {
        R s = 0;
        for (int i = 0; i < N; i++) s += dY[(size_t)i * D + j] * X[(size_t)i * D + j] * rinv[i];
        dw[j] += s;
    }
}

/* Rotates (dir = 1) or un-rotates (dir = -1, the transpose) each head's pairs. */
static void FN(rope)(struct NET *n, R *X, int width, int heads, R dir) {
    int half = n->hd / 2, N = n->B * n->T;
    PAR_FOR
    for (int row = 0; row < N; row++) {
        int pos = row % n->T;
        const R *cs = n->rope_cos + (size_t)pos * half, *sn = n->rope_sin + (size_t)pos * half;
#ifdef NET_KERNELS_F32
        if (dir > 0) { /* forward: the engine's rotation; backward (the transpose) is ours */
            model_rope(X + (size_t)row * width, heads, n->hd, cs, sn);
            continue;
        }
#endif
        for (int h = 0; h < heads; h++) {
            R *v = X + (size_t)row * width + (size_t)h * n->hd;
            for (int i = 0; i < half; i++) {
                R a = v[2 * i], b = v[2 * i + 1], c = cs[i], s = dir * sn[i];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

static void FN(attention)(struct NET *n, int l) {
    int T = n->T, D = n->D, KV = n->KV, hd = n->hd, nh = n->nh, group = n->nh / n->nkv;
    size_t N = (size_t)n->N;
    const R *Q = n->Q + l * N * D, *K = n->K + l * N * KV, *V = n->Vv + l * N * KV;
    R *O = n->O + l * N * D, *P = n->P + (size_t)l * n->Bmax * nh * (size_t)n->Tmax * n->Tmax;
    R scale = (R)1 / sqrt((R)hd);
    int work = n->B * nh;
    memset(O, 0, sizeof(R) * (size_t)n->B * T * D);
    PAR_FOR
    for (int wk = 0; wk < work; wk++) {
        int b = wk / nh, h = wk % nh, kvh = h / group, len = n->len[b];
        R *Pb = P + (size_t)wk * T * T;
        for (int t = 0; t < len; t++) {
            const R *q = Q + ((size_t)b * T + t) * D + (size_t)h * hd;
            R *pr = Pb + (size_t)t * T;
            for (int s = 0; s <= t; s++) {
                const R *k = K + ((size_t)b * T + s) * KV + (size_t)kvh * hd;
                R d = 0;
                SIMD_SUM_D
                for (int i = 0; i < hd; i++) d += q[i] * k[i];
                pr[s] = d * scale;
            }
#ifdef NET_KERNELS_F32
            model_softmax(pr, t + 1);
#else
            R mx = -INFINITY, sum = 0;
            for (int s = 0; s <= t; s++)
                if (pr[s] > mx) mx = pr[s];
            for (int s = 0; s <= t; s++) sum += (pr[s] = exp(pr[s] - mx));
            for (int s = 0; s <= t; s++) pr[s] /= sum;
#endif
            R *o = O + ((size_t)b * T + t) * D + (size_t)h * hd;
            for (int s = 0; s <= t; s++) {
                const R *v = V + ((size_t)b * T + s) * KV + (size_t)kvh * hd;
                SIMD
                for (int i = 0; i < hd; i++) o[i] += pr[s] * v[i];
            }
        }
    }
}

static void FN(attention_bwd)(struct NET *n, int l) {
    int T = n->T, D = n->D, KV = n->KV, hd = n->hd, nh = n->nh, group = n->nh / n->nkv;
    size_t N = (size_t)n->N;
    const R *Q = n->Q + l * N * D, *K = n->K + l * N * KV, *V = n->Vv + l * N * KV;
    const R *P = n->P + (size_t)l * n->Bmax * nh * (size_t)n->Tmax * n->Tmax;
    R scale = (R)1 / sqrt((R)hd);
    memset(n->dQ, 0, sizeof(R) * N * D);
    memset(n->dK, 0, sizeof(R) * N * KV);
    memset(n->dV, 0, sizeof(R) * N * KV);
    int work = n->B * n->nkv;
    /* One worker per (sequence, kv head): the heads sharing K/V write their
     * gradients without races. */
    PAR_FOR
    for (int wk = 0; wk < work; wk++) {
        int b = wk / n->nkv, kvh = wk % n->nkv, len = n->len[b];
        R *dp = n->dP + (size_t)omp_get_thread_num() * n->Tmax;
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            const R *Pb = P + ((size_t)b * nh + h) * T * T;
            for (int t = 0; t < len; t++) {
                const R *pr = Pb + (size_t)t * T, *dO = n->dO + ((size_t)b * T + t) * D + (size_t)h * hd;
                R sum = 0;
                for (int s = 0; s <= t; s++) {
                    const R *v = V + ((size_t)b * T + s) * KV + (size_t)kvh * hd;
                    R *dv = n->dV + ((size_t)b * T + s) * KV + (size_t)kvh * hd;
                    R d = 0;
                    SIMD_SUM_D
                    for (int i = 0; i < hd; i++) {
                        d += dO[i] * v[i];
                        dv[i] += pr[s] * dO[i];
                    }
                    dp[s] = d;
                    sum += pr[s] * d;
                }
                const R *q = Q + ((size_t)b * T + t) * D + (size_t)h * hd;
                R *dq = n->dQ + ((size_t)b * T + t) * D + (size_t)h * hd;
                for (int s = 0; s <= t; s++) {
                    R ds = pr[s] * (dp[s] - sum) * scale;
                    const R *k = K + ((size_t)b * T + s) * KV + (size_t)kvh * hd;
                    R *dk = n->dK + ((size_t)b * T + s) * KV + (size_t)kvh * hd;
                    SIMD
                    for (int i = 0; i < hd; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
        }
    }
}

int FN(net_forward)(struct NET *n, const train_batch_t *bt, int train, double *loss_sum, int64_t *count,
                    llmos_error_t *err) {
    if (bt->B < 1 || bt->B > n->Bmax || bt->T < 1 || bt->T > n->Tmax)
        return llmos_error_set(err, LLMOS_EINVAL, "train: batch %d x %d exceeds the net's %d x %d", bt->B, bt->T,
                               n->Bmax, n->Tmax);
    for (int b = 0; b < bt->B; b++) {
        if (bt->lens[b] < 1 || bt->lens[b] > bt->T)
            return llmos_error_set(err, LLMOS_EINVAL, "train: sequence %d has length %d (1..%d)", b, bt->lens[b], bt->T);
        for (int t = 0; t < bt->T; t++) {
            int id = bt->tokens[(size_t)b * bt->T + t];
            if (id < 0 || id >= n->V)
                return llmos_error_set(err, LLMOS_EINVAL, "train: sequence %d token %d = %d is outside the vocabulary",
                                       b, t, id);
        }
        if (n->cls && (bt->labels[b] < 0 || bt->labels[b] >= n->C))
            return llmos_error_set(err, LLMOS_EINVAL, "train: sequence %d label %d is outside 0..%d", b, bt->labels[b],
                                   n->C - 1);
    }
    const train_layout_t *lay = &n->lay;
    int B = n->B = bt->B, T = n->T = bt->T, D = n->D, KV = n->KV, H = n->H;
    int N = n->N = B * T;
    memcpy(n->tok, bt->tokens, sizeof(int) * (size_t)N);
    memcpy(n->len, bt->lens, sizeof(int) * (size_t)B);
    if (n->cls) memcpy(n->lab, bt->labels, sizeof(int) * (size_t)B);
    size_t NN = (size_t)N;
    const R *E = FN(w)(n, lay->tok_embd);
    for (int i = 0; i < N; i++) memcpy(n->X + (size_t)i * D, E + (size_t)n->tok[i] * D, sizeof(R) * (size_t)D);
    for (int l = 0; l < n->L; l++) {
        const int *li = lay->layer + l * 9;
        R *X = n->X + l * NN * D, *A1 = n->A1 + l * NN * D, *Q = n->Q + l * NN * D, *K = n->K + l * NN * KV,
          *V = n->Vv + l * NN * KV, *O = n->O + l * NN * D, *X2 = n->X2 + l * NN * D, *A2 = n->A2 + l * NN * D,
          *G = n->G + l * NN * H, *U = n->U + l * NN * H, *M = n->M + l * NN * H, *Xn = n->X + (l + 1) * NN * D;
        FN(rmsnorm)(n, X, FN(w)(n, li[0]), A1, n->r1 + l * NN, N);
        FN(lin)(n, l, TRAIN_PROJ_Q, A1, N, Q);
        FN(lin)(n, l, TRAIN_PROJ_K, A1, N, K);
        FN(lin)(n, l, TRAIN_PROJ_V, A1, N, V);
        FN(rope)(n, Q, D, n->nh, 1);
        FN(rope)(n, K, KV, n->nkv, 1);
        FN(attention)(n, l);
        FN(lin)(n, l, TRAIN_PROJ_O, O, N, X2);
        for (size_t i = 0; i < NN * D; i++) X2[i] += X[i];
        FN(rmsnorm)(n, X2, FN(w)(n, li[5]), A2, n->r2 + l * NN, N);
        FN(lin)(n, l, TRAIN_PROJ_W1, A2, N, G);
        FN(lin)(n, l, TRAIN_PROJ_W3, A2, N, U);
        PAR_FOR
        for (size_t i = 0; i < NN * H; i++) M[i] = G[i] / (1 + exp(-G[i])) * U[i];
        FN(lin)(n, l, TRAIN_PROJ_W2, M, N, Xn);
        for (size_t i = 0; i < NN * D; i++) Xn[i] += X2[i];
    }
    FN(rmsnorm)(n, n->X + (size_t)n->L * NN * D, FN(w)(n, lay->final_norm), n->XF, n->rf, N);
    double loss = 0;
    int64_t cnt = 0;
    if (!n->cls) {
        int V = n->V;
        FN(mm)(n, N, V, D, 1, n->XF, D, 1, FN(w)(n, lay->classifier), 1, D, 0, n->logits, V);
        PAR_FOR
        for (int i = 0; i < N; i++) {
            if (i % T >= n->len[i / T]) continue;
            R *z = n->logits + (size_t)i * V, mx = z[0], s = 0;
            for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
            for (int j = 0; j < V; j++) s += (z[j] = exp(z[j] - mx));
            for (int j = 0; j < V; j++) z[j] /= s;
        }
        for (int i = 0; i < N; i++) {
            int b = i / T, t = i % T;
            if (t + 1 >= n->len[b]) continue;
            loss -= log((double)n->logits[(size_t)i * V + n->tok[i + 1]] + 1e-300);
            cnt++;
        }
    } else {
        int C = n->C;
        R keep = (R)1 - (R)lay->opts.dropout;
        for (int b = 0; b < B; b++) {
            R *pl = n->pool + (size_t)b * D;
            int len = n->len[b];
            if (lay->opts.pool == TRAIN_POOL_LAST) {
                memcpy(pl, n->XF + ((size_t)b * T + len - 1) * D, sizeof(R) * (size_t)D);
            } else {
                memset(pl, 0, sizeof(R) * (size_t)D);
                for (int t = 0; t < len; t++)
                    for (int j = 0; j < D; j++) pl[j] += n->XF[((size_t)b * T + t) * D + j];
                for (int j = 0; j < D; j++) pl[j] /= (R)len;
            }
            R *mk = n->dmask + (size_t)b * D, *dr = n->drop + (size_t)b * D;
            uint64_t s = bt->drop_seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(bt->first + b + 1));
            for (int j = 0; j < D; j++) {
                mk[j] = 1;
                if (train && lay->opts.dropout > 0) mk[j] = train_rng_uniform(&s) < lay->opts.dropout ? 0 : 1 / keep;
                dr[j] = pl[j] * mk[j];
            }
        }
        R *Wh = FN(w)(n, lay->head_w), *bh = FN(w)(n, lay->head_b);
        FN(mm)(n, B, C, D, 1, n->drop, D, 1, Wh, 1, D, 0, n->logits, C);
        for (int b = 0; b < B; b++) {
            R *z = n->logits + (size_t)b * C, mx = -INFINITY, s = 0;
            for (int j = 0; j < C; j++) {
                z[j] += bh[j];
                mx = z[j] > mx ? z[j] : mx;
            }
            for (int j = 0; j < C; j++) s += (z[j] = exp(z[j] - mx));
            for (int j = 0; j < C; j++) z[j] /= s;
            /* Cross-entropy against (1-e)·one-hot + e/C. */
            double e = lay->opts.label_smoothing, all = 0;
            if (e > 0)
                for (int j = 0; j < C; j++) all += log((double)z[j] + 1e-300);
            loss -= (1 - e) * log((double)z[n->lab[b]] + 1e-300) + e / C * all;
            cnt++;
        }
    }
    *loss_sum = loss;
    *count = cnt;
    return 0;
}

void FN(net_backward)(struct NET *n, float scale_f) {
    const train_layout_t *lay = &n->lay;
    int B = n->B, T = n->T, N = n->N, D = n->D, KV = n->KV, H = n->H;
    size_t NN = (size_t)N;
    R scale = (R)scale_f;
    memset(n->dA, 0, sizeof(R) * NN * D); /* dA = d loss / d XF */
    if (!n->cls) {
        int V = n->V;
        PAR_FOR
        for (int i = 0; i < N; i++) {
            R *z = n->logits + (size_t)i * V;
            int b = i / T, t = i % T;
            if (t + 1 >= n->len[b]) {
                memset(z, 0, sizeof(R) * (size_t)V);
                continue;
            }
            for (int j = 0; j < V; j++) z[j] *= scale;
            z[n->tok[i + 1]] -= scale;
        }
        FN(mm)(n, N, D, V, 1, n->logits, V, 1, FN(w)(n, lay->classifier), D, 1, 0, n->dA, D);
        if (n->body_train) FN(mm)(n, V, D, N, 1, n->logits, 1, V, n->XF, D, 1, 1, FN(gw)(n, lay->classifier), D);
    } else {
        int C = n->C;
        R e = (R)lay->opts.label_smoothing, u = e / (R)C;
        for (int b = 0; b < B; b++) { /* d loss / d logits = p - target */
            R *z = n->logits + (size_t)b * C;
            for (int j = 0; j < C; j++) z[j] = (z[j] - u) * scale;
            z[n->lab[b]] -= (1 - e) * scale;
        }
        R *gW = FN(gw)(n, lay->head_w), *gb = FN(gw)(n, lay->head_b);
        FN(mm)(n, C, D, B, 1, n->logits, 1, C, n->drop, D, 1, 1, gW, D);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < C; j++) gb[j] += n->logits[(size_t)b * C + j];
        if (lay->opts.mode == TRAIN_MODE_HEAD) return;
        FN(mm)(n, B, D, C, 1, n->logits, C, 1, FN(w)(n, lay->head_w), D, 1, 0, n->dpool, D);
        for (int b = 0; b < B; b++) {
            R *dp = n->dpool + (size_t)b * D;
            const R *mk = n->dmask + (size_t)b * D;
            int len = n->len[b];
            for (int j = 0; j < D; j++) dp[j] *= mk[j];
            if (lay->opts.pool == TRAIN_POOL_LAST) {
                memcpy(n->dA + ((size_t)b * T + len - 1) * D, dp, sizeof(R) * (size_t)D);
            } else {
                for (int t = 0; t < len; t++)
                    for (int j = 0; j < D; j++) n->dA[((size_t)b * T + t) * D + j] = dp[j] / (R)len;
            }
        }
    }
    memset(n->dx, 0, sizeof(R) * NN * D);
    FN(rmsnorm_bwd)(n, n->X + (size_t)n->L * NN * D, FN(w)(n, lay->final_norm), n->rf, n->dA, n->dx,
                    FN(gw)(n, lay->final_norm), N);
    for (int l = n->L - 1; l >= 0; l--) {
        const int *li = lay->layer + l * 9;
        R *X = n->X + l * NN * D, *A1 = n->A1 + l * NN * D, *O = n->O + l * NN * D, *X2 = n->X2 + l * NN * D,
          *A2 = n->A2 + l * NN * D, *G = n->G + l * NN * H, *U = n->U + l * NN * H, *M = n->M + l * NN * H;
        /* MLP: X[l+1] = X2 + M·W2ᵀ, M = silu(G) ⊙ U. */
        FN(lin_bwd)(n, l, TRAIN_PROJ_W2, M, N, n->dx, n->dH1, 0);
        PAR_FOR
        for (size_t i = 0; i < NN * H; i++) {
            R g = G[i], sg = 1 / (1 + exp(-g)), dm = n->dH1[i];
            n->dH2[i] = dm * g * sg;                            /* d up */
            n->dH1[i] = dm * U[i] * sg * (1 + g * (1 - sg));    /* d gate */
        }
        FN(lin_bwd)(n, l, TRAIN_PROJ_W1, A2, N, n->dH1, n->dA, 0);
        FN(lin_bwd)(n, l, TRAIN_PROJ_W3, A2, N, n->dH2, n->dA, 1);
        FN(rmsnorm_bwd)(n, X2, FN(w)(n, li[5]), n->r2 + l * NN, n->dA, n->dx, FN(gw)(n, li[5]), N);
        /* Attention: X2 = X + O·Woᵀ. */
        FN(lin_bwd)(n, l, TRAIN_PROJ_O, O, N, n->dx, n->dO, 0);
        FN(attention_bwd)(n, l);
        FN(rope)(n, n->dQ, D, n->nh, -1);
        FN(rope)(n, n->dK, KV, n->nkv, -1);
        FN(lin_bwd)(n, l, TRAIN_PROJ_Q, A1, N, n->dQ, n->dA, 0);
        FN(lin_bwd)(n, l, TRAIN_PROJ_K, A1, N, n->dK, n->dA, 1);
        FN(lin_bwd)(n, l, TRAIN_PROJ_V, A1, N, n->dV, n->dA, 1);
        FN(rmsnorm_bwd)(n, X, FN(w)(n, li[0]), n->r1 + l * NN, n->dA, n->dx, FN(gw)(n, li[0]), N);
    }
    if (n->body_train) {
        R *gE = FN(gw)(n, lay->tok_embd);
        for (int i = 0; i < N; i++) {
            if (i % T >= n->len[i / T]) continue;
            R *ge = gE + (size_t)n->tok[i] * D;
            const R *d = n->dx + (size_t)i * D;
            for (int j = 0; j < D; j++) ge[j] += d[j];
        }
    }
}

const R *FN(net_class_probs)(const struct NET *n, int b) {
    return n->cls && b >= 0 && b < n->B ? n->logits + (size_t)b * n->C : NULL;
}

const R *FN(net_token_probs)(const struct NET *n, int b, int t) {
    return !n->cls && b >= 0 && b < n->B && t >= 0 && t < n->T ? n->logits + ((size_t)b * n->T + t) * n->V : NULL;
}

const R *FN(net_hidden)(const struct NET *n, int b, int t) {
    return b >= 0 && b < n->B && t >= 0 && t < n->T ? n->XF + ((size_t)b * n->T + t) * n->D : NULL;
}
