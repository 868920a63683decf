/*
 * forward.c — the inference context: paged KV cache and the batched
 * forward pass of the Llama family.
 *
 * A forward call stacks the new tokens of every batch entry into one matrix
 * of T rows (prefill chunks and single decode tokens alike), so each weight
 * matrix is applied once per call: one GEMM through BLIS for large T, our
 * small-batch kernel (kernels.c) for decode-sized T.  Attention is the only
 * per-sequence step: GEMMs on gathered K/V for prompt chunks, dot products
 * over the blocks for decode rows.
 *
 * KV cache: a pool of blocks of MODEL_KV_BLOCK positions, shared by all
 * sequences; each sequence has a block table (its i-th block holds positions
 * 16i..16i+15).  Storage is layer-major — for layer l and block b, K then V,
 * each [16][n_kv_heads*head_dim] — in one anonymous mapping, so pages of
 * blocks never used are never resident.  Blocks return to a free stack when
 * a sequence closes or is truncated.
 *
 * Tensor parallelism (see model.h): the context runs this rank's heads and
 * MLP columns — nh query heads of width q_dim, nkv KV heads in the cache,
 * hid MLP columns — and calls the group's collectives (model_tp_t, set up
 * by model/tp.c) after wo and w2 (all-reduce of the stacked rows) and after
 * the classifier (all-gather of the vocabulary slices).  Every check of a
 * batch happens before the first collective, so all ranks fail alike.
 *
 * Outputs: the final-norm hidden state and logits of each entry's last row
 * (every row with all_logits); an entry flagged in model_ctx_forward_rows also keeps every
 * row's final-norm hidden state (in xb, free after the last layer) without
 * logits — mean pooling of a whole prompt chunk in one forward.
 *
 * Everything (scratch for max_tokens rows, logits, the pool, block tables)
 * is allocated in model_ctx_new; model_ctx_forward allocates nothing.
 * A context is used by one thread at a time; inside a call it runs an
 * OpenMP team of `threads`, and every BLIS call is single-threaded through
 * the context's own rntm_t (work is split by our loops; no process-wide
 * BLIS setting is changed).
 */
#include "model/kernels.h"
#include "model/builder.h"
#include "model/tp_internal.h"
#include "model/q8_bridge.h"
#include "runtime/base/clock.h"

#include <blis.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct seq_slot {
    int open;
    int len;      /* positions in the cache */
    int n_blocks; /* blocks held */
    int *blocks;  /* [max_blocks] into the shared table */
} seq_slot_t;

struct model_ctx {
    const model_t *m;
    model_config_t cfg;
    int threads, max_seqs, max_tokens, out_cap, all_logits;
    int nh, nkv, q_dim, hid; /* this rank's query heads, KV heads, their width, MLP width */
    int kv_dim, n_blocks, max_blocks;
    size_t block_floats; /* MODEL_KV_BLOCK * kv_dim */
    float *kv;           /* mapping of kv_bytes */
    size_t kv_bytes;
    int *free_stack, n_free;
    seq_slot_t *seqs;
    int *tables;         /* [max_seqs][max_blocks] */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2; /* [max_tokens][...] */
    float *hidden, *logits; /* [out_cap][dim], [out_cap][vocab] */
    const model_tp_t *tp;   /* NULL: whole model, no collectives */
    float *logits_part;     /* [out_cap][n_vocab] this rank's columns (tp) */
    float *gathered;        /* [out_cap * vocab] every rank's part, rank-major (tp) */
    int *counts, *displs;   /* [tp size] for the all-gather */
    model_comm_stats_t comm;
    float *scores;          /* [threads][ATT_CHUNK][seq_len] */
    float *kc, *vc;         /* [threads][seq_len][head_dim]: one head's K, V gathered */
    int *row_seq, *row_pos, *out_src;
    int *ent_row0;          /* [max_seqs] first row of each batch entry */
    int *ent_rows;          /* [max_seqs] rows with a kept hidden state (want_rows), else 0 */
    int n_out, n_ents;
    model_q8_scratch_t q8; /* activations quantized per row (q8 weights) */
    rntm_t rntm1; /* single-threaded BLIS: we split the work ourselves */
};

/* Entries with at least this many new tokens get GEMM attention: one
 * head's cached K and V are gathered from the blocks into contiguous
 * scratch and QKᵀ and PV run through BLIS for ATT_CHUNK queries at a time. */
#define ATT_GEMM_MIN 8
#define ATT_CHUNK 64

static void *scratch(size_t n, int *ok) {
    size_t r = (n + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, r ? r : 64);
    if (!p) *ok = 0;
    else memset(p, 0, r ? r : 64);
    return p;
}

int model_ctx_new(const model_t *m, const model_ctx_opts_t *o, model_ctx_t **out, llmos_error_t *err) {
    *out = NULL;
    const model_config_t *cfg = &m->cfg;
    if (!o || o->max_seqs <= 0 || o->max_tokens <= 0 || o->threads < 0 || o->kv_blocks < 0)
        return llmos_error_set(err, LLMOS_EINVAL, "model_ctx_new: max_seqs and max_tokens must be positive");
    if (o->max_seqs > 65536 || o->max_tokens > (1 << 20) || o->threads > 1024)
        return llmos_error_set(err, LLMOS_EINVAL, "model_ctx_new: max_seqs/max_tokens/threads too large");
    const model_shard_t *sh = &m->shard;
    if (sh->size > 1 && (!o->tp || o->tp->size != sh->size || o->tp->rank != sh->rank))
        return llmos_error_set(err, LLMOS_EINVAL,
                               "model_ctx_new: the model is tp rank %d's slice of %d but the context's group is %s%d of %d",
                               sh->rank, sh->size, o->tp ? "rank " : "(none) ", o->tp ? o->tp->rank : 0,
                               o->tp ? o->tp->size : 1);
    if (sh->size == 1 && o->tp && o->tp->size > 1)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "model_ctx_new: a group of %d ranks needs a model loaded with tp_size %d (it is whole)",
                               o->tp->size, o->tp->size);
    if (sh->size > 1 && ((int64_t)o->max_tokens * cfg->dim > INT32_MAX ||
                         (int64_t)(o->all_logits ? o->max_tokens : o->max_seqs) * cfg->vocab_size > INT32_MAX))
        return llmos_error_set(err, LLMOS_EINVAL,
                               "model_ctx_new: max_tokens %d x dim %d or output rows x vocab %d passes 2^31 floats, "
                               "more than one MPI collective moves",
                               o->max_tokens, cfg->dim, cfg->vocab_size);
    model_blis_init();
    model_ctx_t *c = calloc(1, sizeof *c);
    if (!c) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for context");
    c->m = m;
    c->cfg = *cfg;
    c->tp = sh->size > 1 ? o->tp : NULL;
    c->nh = sh->n_heads;
    c->nkv = sh->n_kv_heads;
    c->q_dim = sh->n_heads * cfg->head_dim;
    c->hid = sh->hidden_dim;
    c->threads = o->threads ? o->threads : 1;
    c->max_seqs = o->max_seqs;
    c->max_tokens = o->max_tokens;
    c->all_logits = o->all_logits;
    c->out_cap = o->all_logits ? o->max_tokens : (o->max_seqs < o->max_tokens ? o->max_seqs : o->max_tokens);
    c->kv_dim = c->nkv * cfg->head_dim;
    c->max_blocks = (cfg->seq_len + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK;
    c->n_blocks = o->kv_blocks ? o->kv_blocks : c->max_blocks * c->max_seqs;
    c->block_floats = (size_t)MODEL_KV_BLOCK * (size_t)c->kv_dim;
    c->kv_bytes = (size_t)cfg->n_layers * (size_t)c->n_blocks * 2 * c->block_floats * sizeof(float);
    rntm_t r = BLIS_RNTM_INITIALIZER;
    c->rntm1 = r;
    bli_rntm_set_num_threads(1, &c->rntm1);

    int ok = 1;
    size_t T = (size_t)c->max_tokens, D = (size_t)cfg->dim, H = (size_t)c->hid, QD = (size_t)c->q_dim;
    c->kv = mmap(NULL, c->kv_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c->kv == MAP_FAILED) {
        c->kv = NULL;
        ok = 0;
    }
    c->free_stack = scratch(sizeof(int) * (size_t)c->n_blocks, &ok);
    c->seqs = scratch(sizeof(seq_slot_t) * (size_t)c->max_seqs, &ok);
    c->tables = scratch(sizeof(int) * (size_t)c->max_seqs * (size_t)c->max_blocks, &ok);
    c->x = scratch(sizeof(float) * T * D, &ok);
    c->xb = scratch(sizeof(float) * T * D, &ok);
    c->q = scratch(sizeof(float) * T * QD, &ok);
    c->att = scratch(sizeof(float) * T * QD, &ok);
    c->k = scratch(sizeof(float) * T * (size_t)c->kv_dim, &ok);
    c->v = scratch(sizeof(float) * T * (size_t)c->kv_dim, &ok);
    c->hb = scratch(sizeof(float) * T * H, &ok);
    c->hb2 = scratch(sizeof(float) * T * H, &ok);
    c->hidden = scratch(sizeof(float) * (size_t)c->out_cap * D, &ok);
    c->logits = scratch(sizeof(float) * (size_t)c->out_cap * (size_t)cfg->vocab_size, &ok);
    c->scores = scratch(sizeof(float) * (size_t)c->threads * ATT_CHUNK * (size_t)cfg->seq_len, &ok);
    c->kc = scratch(sizeof(float) * (size_t)c->threads * (size_t)cfg->seq_len * (size_t)cfg->head_dim, &ok);
    c->vc = scratch(sizeof(float) * (size_t)c->threads * (size_t)cfg->seq_len * (size_t)cfg->head_dim, &ok);
    c->ent_row0 = scratch(sizeof(int) * (size_t)c->max_seqs, &ok);
    c->ent_rows = scratch(sizeof(int) * (size_t)c->max_seqs, &ok);
    c->row_seq = scratch(sizeof(int) * T, &ok);
    c->row_pos = scratch(sizeof(int) * T, &ok);
    c->out_src = scratch(sizeof(int) * 2 * T, &ok);
    if (c->tp) {
        size_t V = (size_t)cfg->vocab_size;
        c->logits_part = scratch(sizeof(float) * (size_t)c->out_cap * (size_t)sh->n_vocab, &ok);
        c->gathered = scratch(sizeof(float) * (size_t)c->out_cap * V, &ok);
        c->counts = scratch(sizeof(int) * (size_t)sh->size, &ok);
        c->displs = scratch(sizeof(int) * (size_t)sh->size, &ok);
    }
    if (ok && model_q8_scratch_init(&c->q8, m, c->max_tokens, err) != 0) {
        model_ctx_destroy(&c);
        return err ? err->code : LLMOS_ENOMEM;
    }
    if (!ok) {
        model_ctx_destroy(&c);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for an inference context (%d tokens, %d blocks)",
                               o->max_tokens, o->kv_blocks);
    }
    for (int i = 0; i < c->n_blocks; i++) c->free_stack[i] = c->n_blocks - 1 - i;
    c->n_free = c->n_blocks;
    for (int s = 0; s < c->max_seqs; s++) c->seqs[s].blocks = c->tables + (size_t)s * (size_t)c->max_blocks;
    *out = c;
    return 0;
}

void model_ctx_destroy(model_ctx_t **cp) {
    if (!cp || !*cp) return;
    model_ctx_t *c = *cp;
    if (c->kv) munmap(c->kv, c->kv_bytes);
    void *bufs[] = {c->free_stack, c->seqs, c->tables, c->x,      c->xb,     c->q,       c->att,
                    c->k,          c->v,    c->hb,     c->hb2,    c->hidden, c->logits,  c->scores,
                    c->row_seq,    c->row_pos, c->out_src, c->kc, c->vc, c->ent_row0, c->ent_rows,
                    c->logits_part, c->gathered, c->counts, c->displs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    model_q8_scratch_deinit(&c->q8);
    free(c);
    *cp = NULL;
}

int model_seq_open(model_ctx_t *c, int *seq, llmos_error_t *err) {
    for (int s = 0; s < c->max_seqs; s++)
        if (!c->seqs[s].open) {
            c->seqs[s].open = 1;
            c->seqs[s].len = 0;
            c->seqs[s].n_blocks = 0;
            *seq = s;
            return 0;
        }
    return llmos_error_set(err, LLMOS_EOVERLOADED, "all %d sequence slots are in use", c->max_seqs);
}

static int seq_valid(const model_ctx_t *c, int seq) {
    return seq >= 0 && seq < c->max_seqs && c->seqs[seq].open;
}

int model_seq_truncate(model_ctx_t *c, int seq, int len, llmos_error_t *err) {
    if (!seq_valid(c, seq)) return llmos_error_set(err, LLMOS_EINVAL, "sequence %d is not open", seq);
    seq_slot_t *s = &c->seqs[seq];
    if (len < 0 || len > s->len)
        return llmos_error_set(err, LLMOS_EINVAL, "truncate sequence %d to %d: it has %d positions", seq, len, s->len);
    int keep = (len + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK;
    while (s->n_blocks > keep) c->free_stack[c->n_free++] = s->blocks[--s->n_blocks];
    s->len = len;
    return 0;
}

void model_seq_close(model_ctx_t *c, int seq) {
    if (!seq_valid(c, seq)) return;
    model_seq_truncate(c, seq, 0, NULL);
    c->seqs[seq].open = 0;
}

int model_seq_len(const model_ctx_t *c, int seq) { return seq_valid(c, seq) ? c->seqs[seq].len : -1; }

void model_ctx_kv_usage(const model_ctx_t *c, int *used, int *total, size_t *block_bytes) {
    if (used) *used = c->n_blocks - c->n_free;
    if (total) *total = c->n_blocks;
    if (block_bytes) *block_bytes = (size_t)c->cfg.n_layers * 2 * c->block_floats * sizeof(float);
}

const float *model_ctx_logits(const model_ctx_t *c, int i) {
    return i >= 0 && i < c->n_out ? c->logits + (size_t)i * (size_t)c->cfg.vocab_size : NULL;
}

const float *model_ctx_hidden(const model_ctx_t *c, int i) {
    return i >= 0 && i < c->n_out ? c->hidden + (size_t)i * (size_t)c->cfg.dim : NULL;
}

/* want_rows rows are normed into xb after the last layer (xb is free then:
 * the final norm and the classifier use hidden and logits); with
 * all_logits every row already is in hidden. */
const float *model_ctx_hidden_row(const model_ctx_t *c, int entry, int j) {
    if (entry < 0 || entry >= c->n_ents || j < 0 || j >= c->ent_rows[entry]) return NULL;
    size_t r = (size_t)(c->ent_row0[entry] + j);
    return (c->all_logits ? c->hidden : c->xb) + r * (size_t)c->cfg.dim;
}

static inline float *kv_at(const model_ctx_t *c, int layer, int block, int slot, int which) {
    size_t base = ((size_t)layer * (size_t)c->n_blocks + (size_t)block) * 2 + (size_t)which;
    return c->kv + base * c->block_floats + (size_t)slot * (size_t)c->kv_dim;
}

static void matmul(model_ctx_t *c, const model_tensor_t *W, const float *X, int T, float *Y) {
    if (W->dtype == MODEL_DTYPE_Q8_0)
        model_q8_matmul(&c->q8, W, X, T, Y, c->threads);
    else
        model_sgemm_xwt(W->data, W->rows, W->cols, X, T, Y, c->threads, &c->rntm1);
}

/* Decode-style attention: one (row, head) per task, dot products over the
 * blocks of the row's sequence. */
static void attention_rows(model_ctx_t *c, int layer, const int *rows, int n_rows) {
    const model_config_t *cfg = &c->cfg;
    int hd = cfg->head_dim, nh = c->nh, group = cfg->n_heads / cfg->n_kv_heads, qd = c->q_dim;
    float scale = 1.0f / sqrtf((float)hd);
    int work = n_rows * nh;
#pragma omp parallel for num_threads(c->threads) schedule(dynamic, 1) if (c->threads > 1 && work > 1)
    for (int w = 0; w < work; w++) {
        int r = rows[w / nh], h = w % nh, kvh = h / group;
        const seq_slot_t *s = &c->seqs[c->row_seq[r]];
        int pos = c->row_pos[r];
        const float *q = c->q + (size_t)r * (size_t)qd + (size_t)h * (size_t)hd;
        float *sc = c->scores + (size_t)omp_get_thread_num() * ATT_CHUNK * (size_t)cfg->seq_len;
        for (int t = 0; t <= pos; t++) {
            const float *k = kv_at(c, layer, s->blocks[t / MODEL_KV_BLOCK], t % MODEL_KV_BLOCK, 0) + (size_t)kvh * hd;
            sc[t] = model_dot(q, k, hd) * scale;
        }
        model_softmax(sc, pos + 1);
        float *o = c->att + (size_t)r * (size_t)qd + (size_t)h * (size_t)hd;
        memset(o, 0, sizeof(float) * (size_t)hd);
        for (int t = 0; t <= pos; t++) {
            const float *v = kv_at(c, layer, s->blocks[t / MODEL_KV_BLOCK], t % MODEL_KV_BLOCK, 1) + (size_t)kvh * hd;
            model_axpy(o, sc[t], v, hd);
        }
    }
}

/* Prefill-style attention for one entry of n rows starting at row r0 (its
 * positions are consecutive, the last is P-1): per (head, chunk of
 * queries), S = Q·Kᵀ and O = softmax(S)·V as GEMMs on gathered K, V. */
static void attention_gemm(model_ctx_t *c, int layer, int r0, int n) {
    const model_config_t *cfg = &c->cfg;
    int hd = cfg->head_dim, nh = c->nh, group = cfg->n_heads / cfg->n_kv_heads, qd = c->q_dim;
    const seq_slot_t *s = &c->seqs[c->row_seq[r0]];
    int nchunks = (n + ATT_CHUNK - 1) / ATT_CHUNK;
    float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    int work = nh * nchunks;
#pragma omp parallel for num_threads(c->threads) schedule(dynamic, 1) if (c->threads > 1)
    for (int w = 0; w < work; w++) {
        int h = w / nchunks, ch = w % nchunks, kvh = h / group, tid = omp_get_thread_num();
        int q0 = ch * ATT_CHUNK, m = n - q0 < ATT_CHUNK ? n - q0 : ATT_CHUNK;
        int plast = c->row_pos[r0 + q0 + m - 1] + 1; /* keys this chunk can see */
        float *kc = c->kc + (size_t)tid * (size_t)cfg->seq_len * hd, *vc = c->vc + (size_t)tid * (size_t)cfg->seq_len * hd;
        float *S = c->scores + (size_t)tid * ATT_CHUNK * (size_t)cfg->seq_len;
        for (int t = 0; t < plast; t++) {
            int b = s->blocks[t / MODEL_KV_BLOCK], slot = t % MODEL_KV_BLOCK;
            memcpy(kc + (size_t)t * hd, kv_at(c, layer, b, slot, 0) + (size_t)kvh * hd, sizeof(float) * (size_t)hd);
            memcpy(vc + (size_t)t * hd, kv_at(c, layer, b, slot, 1) + (size_t)kvh * hd, sizeof(float) * (size_t)hd);
        }
        float *Q = c->q + (size_t)(r0 + q0) * qd + (size_t)h * hd;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, m, plast, hd, &scale, Q, qd, 1, kc, hd, 1, &zero, S,
                     plast, 1, NULL, &c->rntm1);
        for (int i = 0; i < m; i++) {
            float *row = S + (size_t)i * plast;
            int len = c->row_pos[r0 + q0 + i] + 1;
            model_softmax(row, len);
            memset(row + len, 0, sizeof(float) * (size_t)(plast - len)); /* causal mask */
        }
        float *O = c->att + (size_t)(r0 + q0) * qd + (size_t)h * hd;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, hd, plast, &one, S, plast, 1, vc, hd, 1, &zero, O,
                     qd, 1, NULL, &c->rntm1);
    }
}

static void attention(model_ctx_t *c, int layer, const model_batch_entry_t *e, int n_entries) {
    int n_small = 0;
    int *small = c->out_src + c->max_tokens; /* second half of out_src: rows for attention_rows */
    for (int i = 0; i < n_entries; i++) {
        int r0 = c->ent_row0[i];
        if (e[i].n_tokens >= ATT_GEMM_MIN)
            attention_gemm(c, layer, r0, e[i].n_tokens);
        else
            for (int j = 0; j < e[i].n_tokens; j++) small[n_small++] = r0 + j;
    }
    if (n_small) attention_rows(c, layer, small, n_small);
}

/* Sums a row-parallel matrix's partial outputs over the group. */
static int tp_allreduce(model_ctx_t *c, float *buf, size_t n, llmos_error_t *err) {
    uint64_t t0 = llmos_now_ns();
    int rc = c->tp->allreduce_sum(c->tp, buf, n, err);
    c->comm.allreduce_ns += llmos_now_ns() - t0;
    c->comm.allreduce_calls++;
    c->comm.allreduce_bytes += n * sizeof(float);
    return rc;
}

/* Every rank holds logits_part [o][its vocabulary rows]; the all-gather
 * brings all parts (rank-major) and they are laid out as full rows. */
static int tp_gather_logits(model_ctx_t *c, int o, llmos_error_t *err) {
    const model_tp_t *tp = c->tp;
    int V = c->cfg.vocab_size, at = 0;
    for (int r = 0; r < tp->size; r++) {
        int v0, nv;
        model_shard_vocab(V, tp->size, r, &v0, &nv);
        c->counts[r] = o * nv;
        c->displs[r] = at;
        at += o * nv;
    }
    uint64_t t0 = llmos_now_ns();
    int rc = tp->allgatherv(tp, c->logits_part, c->counts[tp->rank], c->gathered, c->counts, c->displs, err);
    c->comm.allgather_ns += llmos_now_ns() - t0;
    c->comm.allgather_calls++;
    c->comm.allgather_bytes += (size_t)at * sizeof(float);
    if (rc) return rc;
    for (int r = 0; r < tp->size; r++) {
        int v0, nv;
        model_shard_vocab(V, tp->size, r, &v0, &nv);
        const float *src = c->gathered + c->displs[r];
        for (int i = 0; i < o; i++)
            memcpy(c->logits + (size_t)i * V + v0, src + (size_t)i * nv, sizeof(float) * (size_t)nv);
    }
    return 0;
}

void model_ctx_comm_stats(const model_ctx_t *c, model_comm_stats_t *out) { *out = c->comm; }
void model_ctx_comm_reset(model_ctx_t *c) { c->comm = (model_comm_stats_t){0}; }

int model_ctx_forward(model_ctx_t *c, const model_batch_entry_t *e, int n, llmos_error_t *err) {
    return model_ctx_forward_rows(c, e, n, NULL, err);
}

int model_ctx_forward_rows(model_ctx_t *c, const model_batch_entry_t *e, int n, const uint8_t *want,
                           llmos_error_t *err) {
    const model_config_t *cfg = &c->cfg;
    const model_weights_t *w = &c->m->w;
    c->n_out = 0;
    c->n_ents = 0;
    if (n <= 0) return llmos_error_set(err, LLMOS_EINVAL, "forward: empty batch");
    /* Check everything before touching any state. */
    int T = 0, need = 0, outs = 0;
    for (int i = 0; i < n; i++) {
        if (!seq_valid(c, e[i].seq))
            return llmos_error_set(err, LLMOS_EINVAL, "forward: entry %d names sequence %d, which is not open", i, e[i].seq);
        for (int j = 0; j < i; j++)
            if (e[j].seq == e[i].seq)
                return llmos_error_set(err, LLMOS_EINVAL, "forward: sequence %d appears twice in the batch", e[i].seq);
        if (e[i].n_tokens <= 0 || !e[i].tokens)
            return llmos_error_set(err, LLMOS_EINVAL, "forward: entry %d has no tokens", i);
        if (e[i].n_tokens > c->max_tokens - T)
            return llmos_error_set(err, LLMOS_ETOOBIG, "forward: batch has more than max_tokens = %d rows", c->max_tokens);
        T += e[i].n_tokens;
        const seq_slot_t *s = &c->seqs[e[i].seq];
        if (e[i].n_tokens > cfg->seq_len - s->len)
            return llmos_error_set(err, LLMOS_ETOOBIG, "forward: sequence %d would pass seq_len %d (%d + %d)",
                                   e[i].seq, cfg->seq_len, s->len, e[i].n_tokens);
        for (int j = 0; j < e[i].n_tokens; j++)
            if (e[i].tokens[j] < 0 || e[i].tokens[j] >= cfg->vocab_size)
                return llmos_error_set(err, LLMOS_EINVAL, "forward: entry %d token %d = %d is outside the vocabulary",
                                       i, j, e[i].tokens[j]);
        need += (s->len + e[i].n_tokens + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK - s->n_blocks;
        outs += c->all_logits ? e[i].n_tokens : 1;
    }
    if (need > c->n_free)
        return llmos_error_set(err, LLMOS_ENOMEM, "forward: KV pool exhausted (%d blocks needed, %d free of %d)", need,
                               c->n_free, c->n_blocks);
    if (outs > c->out_cap)
        return llmos_error_set(err, LLMOS_ETOOBIG, "forward: %d output rows, context holds %d", outs, c->out_cap);

    /* Blocks, row map, embeddings. */
    int r = 0, o = 0;
    for (int i = 0; i < n; i++) {
        seq_slot_t *s = &c->seqs[e[i].seq];
        c->ent_row0[i] = r;
        c->ent_rows[i] = c->all_logits || (want && want[i]) ? e[i].n_tokens : 0;
        int nb = (s->len + e[i].n_tokens + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK;
        while (s->n_blocks < nb) s->blocks[s->n_blocks++] = c->free_stack[--c->n_free];
        for (int j = 0; j < e[i].n_tokens; j++, r++) {
            c->row_seq[r] = e[i].seq;
            c->row_pos[r] = s->len + j;
            memcpy(c->x + (size_t)r * cfg->dim, (const float *)w->tok_embd.data + (size_t)e[i].tokens[j] * cfg->dim,
                   sizeof(float) * (size_t)cfg->dim);
            if (c->all_logits || j == e[i].n_tokens - 1) c->out_src[o++] = r;
        }
    }
    c->n_out = o;
    c->n_ents = n;

    int D = cfg->dim, KV = c->kv_dim, HD = c->hid, QD = c->q_dim, half = cfg->head_dim / 2, rc;
    for (int l = 0; l < cfg->n_layers; l++) {
        const model_layer_t *L = &w->layers[l];
        for (int t = 0; t < T; t++)
            model_rmsnorm(c->xb + (size_t)t * D, c->x + (size_t)t * D, L->attn_norm.data, D, cfg->norm_eps);
        matmul(c, &L->wq, c->xb, T, c->q);
        matmul(c, &L->wk, c->xb, T, c->k);
        matmul(c, &L->wv, c->xb, T, c->v);
        for (int t = 0; t < T; t++) {
            int pos = c->row_pos[t];
            const float *cs = c->m->rope_cos + (size_t)pos * half, *sn = c->m->rope_sin + (size_t)pos * half;
            model_rope(c->q + (size_t)t * QD, c->nh, cfg->head_dim, cs, sn);
            model_rope(c->k + (size_t)t * KV, c->nkv, cfg->head_dim, cs, sn);
            const seq_slot_t *s = &c->seqs[c->row_seq[t]];
            int b = s->blocks[pos / MODEL_KV_BLOCK], slot = pos % MODEL_KV_BLOCK;
            memcpy(kv_at(c, l, b, slot, 0), c->k + (size_t)t * KV, sizeof(float) * (size_t)KV);
            memcpy(kv_at(c, l, b, slot, 1), c->v + (size_t)t * KV, sizeof(float) * (size_t)KV);
        }
        attention(c, l, e, n);
        matmul(c, &L->wo, c->att, T, c->xb);
        if (c->tp && (rc = tp_allreduce(c, c->xb, (size_t)T * D, err))) return rc;
        for (size_t i = 0; i < (size_t)T * D; i++) c->x[i] += c->xb[i];

        for (int t = 0; t < T; t++)
            model_rmsnorm(c->xb + (size_t)t * D, c->x + (size_t)t * D, L->ffn_norm.data, D, cfg->norm_eps);
        matmul(c, &L->w1, c->xb, T, c->hb);
        matmul(c, &L->w3, c->xb, T, c->hb2);
        for (int t = 0; t < T; t++) model_swiglu(c->hb + (size_t)t * HD, c->hb2 + (size_t)t * HD, HD);
        matmul(c, &L->w2, c->hb, T, c->xb);
        if (c->tp && (rc = tp_allreduce(c, c->xb, (size_t)T * D, err))) return rc;
        for (size_t i = 0; i < (size_t)T * D; i++) c->x[i] += c->xb[i];
    }
    for (int i = 0; i < o; i++)
        model_rmsnorm(c->hidden + (size_t)i * D, c->x + (size_t)c->out_src[i] * D, w->final_norm.data, D, cfg->norm_eps);
    for (int i = 0; i < n && !c->all_logits; i++) /* want_rows: every row's final-norm state, into xb */
        for (int j = 0, r0 = c->ent_row0[i]; j < c->ent_rows[i]; j++)
            model_rmsnorm(c->xb + (size_t)(r0 + j) * D, c->x + (size_t)(r0 + j) * D, w->final_norm.data, D,
                          cfg->norm_eps);
    if (!c->tp)
        matmul(c, &w->classifier, c->hidden, o, c->logits);
    else {
        matmul(c, &w->classifier, c->hidden, o, c->logits_part);
        if ((rc = tp_gather_logits(c, o, err))) return rc;
    }
    for (int i = 0; i < n; i++) c->seqs[e[i].seq].len += e[i].n_tokens;
    return 0;
}
