/*
 * model.c — the model object: config checks, file mapping, format dispatch,
 * owned buffers, RoPE tables, saving as llama2.c, destroy.
 *
 * The weights of an fp32 file point straight into a MAP_PRIVATE mapping
 * (copy-on-write: training may write them without touching the file, and
 * nothing is copied until it does).  Everything the model allocates itself
 * (widened f16, q8 copies, tables) is recorded in m->owned and freed once.
 */
#include "model/model_internal.h"
#include "model/q8.h"
#include "runtime/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX (1 << 20) /* no dimension of a real model comes near this */

int model_config_check(model_config_t *c, llmos_error_t *err) {
    struct {
        const char *name;
        int v;
    } f[] = {{"dim", c->dim},           {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
             {"n_heads", c->n_heads},   {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab_size},
             {"seq_len", c->seq_len}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0 || f[i].v > CFG_MAX)
            return llmos_error_set(err, LLMOS_EINVAL, "config field %s = %d is out of range 1..%d",
                                   f[i].name, f[i].v, CFG_MAX);
    if (c->n_layers > 4096)
        return llmos_error_set(err, LLMOS_EINVAL, "config field n_layers = %d is too large", c->n_layers);
    if (c->dim % c->n_heads)
        return llmos_error_set(err, LLMOS_EINVAL, "config: dim %d is not a multiple of n_heads %d",
                               c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "config: n_kv_heads %d does not divide n_heads %d", c->n_kv_heads,
                               c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->head_dim % 2)
        return llmos_error_set(err, LLMOS_EINVAL, "config: head_dim %d is odd (RoPE needs pairs)",
                               c->head_dim);
    if ((int64_t)c->vocab_size * c->dim > INT32_MAX || (int64_t)c->hidden_dim * c->dim > INT32_MAX)
        return llmos_error_set(err, LLMOS_EINVAL, "config: a weight matrix has 2^31 or more elements");
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return llmos_error_set(err, LLMOS_EINVAL, "config: rope_theta %g is not positive", c->rope_theta);
    if (!(c->norm_eps > 0) || !(c->norm_eps < 1))
        return llmos_error_set(err, LLMOS_EINVAL, "config: norm_eps %g is not in (0,1)", c->norm_eps);
    if (c->arch != MODEL_ARCH_LLAMA)
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "config: architecture %d is not supported",
                               (int)c->arch);
    return 0;
}

void *model_alloc_owned(model_t *m, size_t n) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 16;
        void **o = realloc(m->owned, sizeof(void *) * (size_t)cap);
        if (!o) return NULL;
        m->owned = o;
        m->cap_owned = cap;
    }
    size_t rounded = (n + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) return NULL;
    memset(p, 0, rounded ? rounded : 64);
    m->owned[m->n_owned++] = p;
    return p;
}

int model_finish_setup(model_t *m, llmos_error_t *err) {
    const model_config_t *c = &m->cfg;
    if (!m->w.layers) {
        m->w.layers = model_alloc_owned(m, sizeof(model_layer_t) * (size_t)c->n_layers);
        if (!m->w.layers) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for layer table");
    }
    int half = c->head_dim / 2;
    m->rope_cos = model_alloc_owned(m, sizeof(float) * (size_t)c->seq_len * half);
    m->rope_sin = model_alloc_owned(m, sizeof(float) * (size_t)c->seq_len * half);
    if (!m->rope_cos || !m->rope_sin) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for RoPE");
    /* The same float expressions as llama2.c's run.c, so the rotation is
     * bit-identical to the reference implementation. */
    for (int pos = 0; pos < c->seq_len; pos++)
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
            float val = (float)pos * freq;
            m->rope_cos[(size_t)pos * half + i] = cosf(val);
            m->rope_sin[(size_t)pos * half + i] = sinf(val);
        }
    return 0;
}

int model_shard_setup(model_t *m, const model_load_opts_t *opts, llmos_error_t *err) {
    const model_config_t *c = &m->cfg;
    int T = opts->tp_size > 1 ? opts->tp_size : 1, r = opts->tp_rank;
    if (opts->tp_size < 0 || opts->tp_size > 4096)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: tp size %d is out of range 0..4096", m->path, opts->tp_size);
    if (r < 0 || r >= T)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: tp rank %d is outside 0..%d", m->path, r, T - 1);
    struct {
        const char *name;
        int v;
    } f[] = {{"n_kv_heads", c->n_kv_heads}, {"n_heads", c->n_heads}, {"hidden_dim", c->hidden_dim}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v % T)
            return llmos_error_set(err, LLMOS_EINVAL, "%s: tp %d does not divide %s %d", m->path, T, f[i].name,
                                   f[i].v);
    if (c->vocab_size < T)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: tp %d is larger than vocab_size %d", m->path, T,
                               c->vocab_size);
    model_shard_t *s = &m->shard;
    s->rank = r;
    s->size = T;
    s->n_heads = c->n_heads / T;
    s->head0 = r * s->n_heads;
    s->n_kv_heads = c->n_kv_heads / T;
    s->kv_head0 = r * s->n_kv_heads;
    s->hidden_dim = c->hidden_dim / T;
    s->hidden0 = r * s->hidden_dim;
    model_shard_vocab(c->vocab_size, T, r, &s->vocab0, &s->n_vocab);
    return 0;
}

void model_release_mapped(model_t *m, const void *p, size_t n) {
    const char *a0 = p, *base = m->map;
    if (!m->map || a0 < base || a0 + n > base + m->map_len) return;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)a0 + pg - 1) & ~(uintptr_t)(pg - 1), b = ((uintptr_t)a0 + n) & ~(uintptr_t)(pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Element sizes in the file (q8_0: per 32-value block). */
static size_t src_row_bytes(model_dtype_t type, int cols) {
    return type == MODEL_DTYPE_F32 ? (size_t)cols * 4
           : type == MODEL_DTYPE_F16 ? (size_t)cols * 2
                                     : q8_row_bytes(cols);
}

int model_tensor_take(model_t *m, model_tensor_t *out, const char *name, const void *src, model_dtype_t type,
                      int rows, int cols, model_part_t part, int force_f32, llmos_error_t *err) {
    const model_shard_t *s = &m->shard;
    int hd = m->cfg.head_dim, r0 = 0, nr = rows, c0 = 0, nc = cols;
    if (s->size > 1) switch (part) {
        case MODEL_PART_WHOLE: break;
        case MODEL_PART_Q_ROWS: r0 = s->head0 * hd, nr = s->n_heads * hd; break;
        case MODEL_PART_KV_ROWS: r0 = s->kv_head0 * hd, nr = s->n_kv_heads * hd; break;
        case MODEL_PART_Q_COLS: c0 = s->head0 * hd, nc = s->n_heads * hd; break;
        case MODEL_PART_H_ROWS: r0 = s->hidden0, nr = s->hidden_dim; break;
        case MODEL_PART_H_COLS: c0 = s->hidden0, nc = s->hidden_dim; break;
        case MODEL_PART_V_ROWS: r0 = s->vocab0, nr = s->n_vocab; break;
        }
    LLMOS_ASSERT(r0 >= 0 && nr > 0 && r0 + nr <= rows && c0 >= 0 && nc > 0 && c0 + nc <= cols);
    const uint8_t *first = (const uint8_t *)src + (size_t)r0 * src_row_bytes(type, cols);
    out->rows = nr;
    out->cols = nc;
    int whole_rows = c0 == 0 && nc == cols;
    if (type == MODEL_DTYPE_Q8_0 && !force_f32) {
        if (c0 % Q8_BLOCK || nc % Q8_BLOCK)
            return llmos_error_set(err, LLMOS_EUNSUPPORTED,
                                   "%s: tensor '%s' is q8_0 and rank %d's columns %d..%d of %d do not fall on %d-value "
                                   "blocks (tp %d needs (cols / tp) %% %d == 0)",
                                   m->path, name, s->rank, c0, c0 + nc, cols, Q8_BLOCK, s->size, Q8_BLOCK);
        out->dtype = MODEL_DTYPE_Q8_0;
        if (whole_rows) {
            out->data = (void *)first;
            return 0;
        }
        size_t rb = q8_row_bytes(nc), full = q8_row_bytes(cols), skip = q8_row_bytes(c0);
        uint8_t *q = model_alloc_owned(m, rb * (size_t)nr);
        if (!q) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for a slice of tensor '%s'", name);
        for (int i = 0; i < nr; i++) memcpy(q + (size_t)i * rb, first + (size_t)i * full + skip, rb);
        model_release_mapped(m, first, full * (size_t)nr);
        out->data = q;
        return 0;
    }
    out->dtype = MODEL_DTYPE_F32;
    if (type == MODEL_DTYPE_F32 && whole_rows) {
        out->data = (void *)first;
        return 0;
    }
    float *f = model_alloc_owned(m, sizeof(float) * (size_t)nr * (size_t)nc);
    if (!f) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for tensor '%s' (%d x %d floats)", name, nr, nc);
    size_t full = src_row_bytes(type, cols);
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = first + (size_t)i * full;
        float *dst = f + (size_t)i * nc;
        if (type == MODEL_DTYPE_F32)
            memcpy(dst, (const float *)row + c0, sizeof(float) * (size_t)nc);
        else if (type == MODEL_DTYPE_F16)
            for (int j = 0; j < nc; j++) {
                uint16_t h;
                memcpy(&h, row + 2 * (size_t)(c0 + j), 2);
                dst[j] = q8_fp16_to_fp32(h);
            }
        else /* q8_0 widened: whole blocks, then the columns */
            for (int b = c0 / Q8_BLOCK; b * Q8_BLOCK < c0 + nc; b++) {
                float tmp[Q8_BLOCK];
                q8_dequantize_row((const q8_block_t *)row + b, tmp, Q8_BLOCK, NULL);
                for (int j = 0; j < Q8_BLOCK; j++) {
                    int col = b * Q8_BLOCK + j;
                    if (col >= c0 && col < c0 + nc) dst[col - c0] = tmp[j];
                }
            }
    }
    if (type == MODEL_DTYPE_F32) model_release_mapped(m, first, full * (size_t)nr);
    out->data = f;
    return 0;
}

int model_map_file(model_t *m, const char *path, llmos_error_t *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return llmos_error_set(err, llmos_err_from_errno(e), "cannot open model '%s': %s", path,
                               strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return llmos_error_set(err, LLMOS_EINVAL, "model '%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return llmos_error_set(err, LLMOS_EFORMAT, "model '%s' is empty (offset 0)", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return llmos_error_set(err, LLMOS_EIO, "cannot mmap model '%s': %s", path, strerror(e));
    m->map = p;
    m->map_len = (size_t)st.st_size;
    return 0;
}

int model_load(const char *path, const model_load_opts_t *opts, model_t **out, llmos_error_t *err) {
    *out = NULL;
    model_load_opts_t def = {0};
    if (!opts) opts = &def;
    if (opts->quantize != MODEL_DTYPE_F32 && opts->quantize != MODEL_DTYPE_Q8_0)
        return llmos_error_set(err, LLMOS_EINVAL, "quantize: only f32 (none) or q8_0");
    model_blis_init();
    model_t *m = calloc(1, sizeof *m);
    if (!m) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for model");
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = model_map_file(m, path, err);
    if (rc == 0) {
        if (m->map_len >= 4 && memcmp(m->map, "GGUF", 4) == 0)
            rc = model_load_gguf(m, opts, err);
        else
            rc = model_load_llama2c(m, opts, err);
    }
    if (rc == 0 && opts->quantize == MODEL_DTYPE_Q8_0) rc = model_quantize_q8(m, err);
    if (rc != 0) {
        model_destroy(&m);
        return rc;
    }
    LLMOS_INFO("model: loaded %s: dim %d, hidden %d, layers %d, heads %d/%d kv, vocab %d, seq %d%s",
               path, m->cfg.dim, m->cfg.hidden_dim, m->cfg.n_layers, m->cfg.n_heads,
               m->cfg.n_kv_heads, m->cfg.vocab_size, m->cfg.seq_len,
               opts->quantize == MODEL_DTYPE_Q8_0 ? ", weights q8_0" : "");
    if (m->shard.size > 1)
        LLMOS_INFO("model: tp rank %d of %d: %d query heads, %d kv heads, hidden %d, vocab rows %d..%d; "
                   "%.1f MiB of weights on this rank",
                   m->shard.rank, m->shard.size, m->shard.n_heads, m->shard.n_kv_heads, m->shard.hidden_dim,
                   m->shard.vocab0, m->shard.vocab0 + m->shard.n_vocab, (double)model_weight_bytes(m) / 1048576.0);
    *out = m;
    return 0;
}

static void tensor_init(model_tensor_t *t, model_t *m, int rows, int cols, int *ok) {
    t->dtype = MODEL_DTYPE_F32;
    t->rows = rows;
    t->cols = cols;
    t->data = model_alloc_owned(m, sizeof(float) * (size_t)rows * (size_t)cols);
    if (!t->data) *ok = 0;
}

int model_new(const model_config_t *cfg, model_t **out, llmos_error_t *err) {
    *out = NULL;
    model_config_t c = *cfg;
    int rc = model_config_check(&c, err);
    if (rc) return rc;
    model_blis_init();
    model_t *m = calloc(1, sizeof *m);
    if (!m) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for model");
    m->cfg = c;
    m->shard = (model_shard_t){.rank = 0, .size = 1, .n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                               .hidden_dim = c.hidden_dim, .n_vocab = c.vocab_size};
    snprintf(m->path, sizeof m->path, "(new)");
    rc = model_finish_setup(m, err);
    int ok = 1, kv = c.n_kv_heads * c.head_dim;
    if (rc == 0) {
        tensor_init(&m->w.tok_embd, m, c.vocab_size, c.dim, &ok);
        for (int l = 0; l < c.n_layers && ok; l++) {
            model_layer_t *L = &m->w.layers[l];
            tensor_init(&L->attn_norm, m, 1, c.dim, &ok);
            tensor_init(&L->wq, m, c.dim, c.dim, &ok);
            tensor_init(&L->wk, m, kv, c.dim, &ok);
            tensor_init(&L->wv, m, kv, c.dim, &ok);
            tensor_init(&L->wo, m, c.dim, c.dim, &ok);
            tensor_init(&L->ffn_norm, m, 1, c.dim, &ok);
            tensor_init(&L->w1, m, c.hidden_dim, c.dim, &ok);
            tensor_init(&L->w2, m, c.dim, c.hidden_dim, &ok);
            tensor_init(&L->w3, m, c.hidden_dim, c.dim, &ok);
        }
        tensor_init(&m->w.final_norm, m, 1, c.dim, &ok);
        if (c.shared_classifier)
            m->w.classifier = m->w.tok_embd;
        else
            tensor_init(&m->w.classifier, m, c.vocab_size, c.dim, &ok);
        if (!ok) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the weights");
    }
    if (rc) {
        model_destroy(&m);
        return rc;
    }
    *out = m;
    return 0;
}

static int write_tensor(FILE *f, const model_tensor_t *t, const char *path, llmos_error_t *err) {
    if (t->dtype != MODEL_DTYPE_F32)
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "saving %s: only fp32 weights can be saved",
                               path);
    size_t n = (size_t)t->rows * (size_t)t->cols;
    if (fwrite(t->data, sizeof(float), n, f) != n)
        return llmos_error_set(err, LLMOS_EIO, "writing %s: %s", path, strerror(errno));
    return 0;
}

int model_save_llama2c(const model_t *m, const char *path, llmos_error_t *err) {
    const model_config_t *c = &m->cfg;
    if (m->shard.size > 1)
        return llmos_error_set(err, LLMOS_EINVAL, "saving %s: the model is tp rank %d's slice of %d, not whole", path,
                               m->shard.rank, m->shard.size);
    FILE *f = fopen(path, "wb");
    if (!f) return llmos_error_set(err, llmos_err_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    int32_t hdr[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                      c->shared_classifier ? c->vocab_size : -c->vocab_size, c->seq_len};
    int rc = fwrite(hdr, sizeof hdr, 1, f) == 1 ? 0 : llmos_error_set(err, LLMOS_EIO, "writing %s", path);
    const model_weights_t *w = &m->w;
    /* llama2.c's order: all layers of one kind together. */
    if (!rc) rc = write_tensor(f, &w->tok_embd, path, err);
    size_t off[9] = {offsetof(model_layer_t, attn_norm), offsetof(model_layer_t, wq),
                     offsetof(model_layer_t, wk),        offsetof(model_layer_t, wv),
                     offsetof(model_layer_t, wo),        offsetof(model_layer_t, ffn_norm),
                     offsetof(model_layer_t, w1),        offsetof(model_layer_t, w2),
                     offsetof(model_layer_t, w3)};
    for (int k = 0; k < 9 && !rc; k++)
        for (int l = 0; l < c->n_layers && !rc; l++)
            rc = write_tensor(f, (const model_tensor_t *)((const char *)&w->layers[l] + off[k]), path, err);
    if (!rc) rc = write_tensor(f, &w->final_norm, path, err);
    /* The legacy freq_cis tables (unused by readers, but part of the layout). */
    size_t nfreq = (size_t)c->seq_len * (size_t)(c->head_dim / 2) * 2;
    for (size_t i = 0; i < nfreq && !rc; i++) {
        float z = 0;
        if (fwrite(&z, sizeof z, 1, f) != 1) rc = llmos_error_set(err, LLMOS_EIO, "writing %s", path);
    }
    if (!rc && !c->shared_classifier) rc = write_tensor(f, &w->classifier, path, err);
    if (fclose(f) != 0 && !rc) rc = llmos_error_set(err, LLMOS_EIO, "closing %s: %s", path, strerror(errno));
    return rc;
}

void model_destroy(model_t **mp) {
    if (!mp || !*mp) return;
    model_t *m = *mp;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->map) munmap(m->map, m->map_len);
    model_tokenizer_destroy(&m->tok);
    free(m);
    *mp = NULL;
}

const model_config_t *model_config(const model_t *m) { return &m->cfg; }
void model_tp_part(const model_t *m, int *tp_rank, int *tp_size) {
    if (tp_rank) *tp_rank = m->shard.rank;
    if (tp_size) *tp_size = m->shard.size;
}
model_weights_t *model_weights(model_t *m) { return &m->w; }
const model_tokenizer_t *model_tokenizer(const model_t *m) { return m->tok; }

static size_t tensor_bytes(const model_tensor_t *t) {
    size_t n = (size_t)t->rows * (size_t)t->cols;
    return t->dtype == MODEL_DTYPE_Q8_0 ? n / 32 * 34 : n * 4;
}

size_t model_weight_bytes(const model_t *m) {
    const model_weights_t *w = &m->w;
    size_t b = (size_t)m->cfg.dim * 4; /* one embedding row */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const model_layer_t *L = &w->layers[l];
        b += tensor_bytes(&L->attn_norm) + tensor_bytes(&L->wq) + tensor_bytes(&L->wk) +
             tensor_bytes(&L->wv) + tensor_bytes(&L->wo) + tensor_bytes(&L->ffn_norm) +
             tensor_bytes(&L->w1) + tensor_bytes(&L->w2) + tensor_bytes(&L->w3);
    }
    return b + tensor_bytes(&w->final_norm) + tensor_bytes(&w->classifier);
}
