/*
 * builder.c — the bottom of the engine (builder.h): config checks, the
 * model's owned buffers and file mapping, the tensor-parallel slicing of
 * each matrix and binding a tensor to its bytes, the RoPE tables, destroy.
 * The loaders above (load_llama2c.c, gguf.c), q8_bridge.c and the facade
 * (model.c) put a model together through these; nothing here calls them.
 *
 * The weights of an fp32 file point straight into a MAP_PRIVATE mapping
 * (copy-on-write: training may write them without touching the file, and
 * nothing is copied until it does).  Everything the model allocates itself
 * (widened f16, q8 copies, slices, tables) is recorded in m->owned and
 * freed once, by model_destroy.
 */
#include "model/builder.h"
#include "model/kernels.h"
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
    } f[] = {{"dim", c->dim},         {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
             {"n_heads", c->n_heads}, {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab_size},
             {"seq_len", c->seq_len}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0 || f[i].v > CFG_MAX)
            return llmos_error_set(err, LLMOS_EINVAL, "config field %s = %d is out of range 1..%d", f[i].name,
                                   f[i].v, CFG_MAX);
    if (c->n_layers > 4096)
        return llmos_error_set(err, LLMOS_EINVAL, "config field n_layers = %d is too large", c->n_layers);
    if (c->dim % c->n_heads)
        return llmos_error_set(err, LLMOS_EINVAL, "config: dim %d is not a multiple of n_heads %d", c->dim,
                               c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return llmos_error_set(err, LLMOS_EINVAL, "config: n_kv_heads %d does not divide n_heads %d",
                               c->n_kv_heads, c->n_heads);
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

int model_build_new(const char *name, model_t **out, llmos_error_t *err) {
    model_t *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for model");
    m->shard = (model_shard_t){.rank = 0, .size = 1};
    snprintf(m->path, sizeof m->path, "%s", name);
    *out = m;
    return 0;
}

void *model_build_alloc(model_t *m, size_t n) {
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

int model_build_map(model_t *m, const char *path, llmos_error_t *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return llmos_error_set(err, llmos_err_from_errno(e), "cannot open model '%s': %s", path, strerror(e));
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

int model_build_shard(model_t *m, const model_load_opts_t *opts, llmos_error_t *err) {
    const model_config_t *c = &m->cfg;
    int T = opts->tp_size > 1 ? opts->tp_size : 1, r = opts->tp_rank;
    if (opts->tp_size < 0 || opts->tp_size > 4096)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: tp size %d is out of range 0..4096", m->path,
                               opts->tp_size);
    if (r < 0 || r >= T)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: tp rank %d is outside 0..%d", m->path, r, T - 1);
    struct {
        const char *name;
        int v;
    } f[] = {{"n_kv_heads", c->n_kv_heads}, {"n_heads", c->n_heads}, {"hidden_dim", c->hidden_dim}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v % T)
            return llmos_error_set(err, LLMOS_EINVAL, "%s: tp %d does not divide %s %d", m->path, T,
                                   f[i].name, f[i].v);
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

int model_build_finish(model_t *m, llmos_error_t *err) {
    const model_config_t *c = &m->cfg;
    if (!m->w.layers) {
        m->w.layers = model_build_alloc(m, sizeof(model_layer_t) * (size_t)c->n_layers);
        if (!m->w.layers) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for layer table");
    }
    int half = c->head_dim / 2;
    m->rope_cos = model_build_alloc(m, sizeof(float) * (size_t)c->seq_len * half);
    m->rope_sin = model_build_alloc(m, sizeof(float) * (size_t)c->seq_len * half);
    if (!m->rope_cos || !m->rope_sin) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for RoPE");
    model_rope_table(m->rope_cos, m->rope_sin, c->seq_len, c->head_dim, c->rope_theta);
    return 0;
}

void model_build_release(model_t *m, const void *p, size_t n) {
    const char *a0 = p, *base = m->map;
    if (!m->map || a0 < base || a0 + n > base + m->map_len) return;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)a0 + pg - 1) & ~(uintptr_t)(pg - 1),
              b = ((uintptr_t)a0 + n) & ~(uintptr_t)(pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Element sizes in the file (q8_0: per 32-value block). */
static size_t src_row_bytes(model_dtype_t type, int cols) {
    return type == MODEL_DTYPE_F32   ? (size_t)cols * 4
           : type == MODEL_DTYPE_F16 ? (size_t)cols * 2
                                     : q8_row_bytes(cols);
}

int model_build_take(model_t *m, model_tensor_t *out, const char *name, const void *src, model_dtype_t type,
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
            return llmos_error_set(
                err, LLMOS_EUNSUPPORTED,
                "%s: tensor '%s' is q8_0 and rank %d's columns %d..%d of %d do not fall on %d-value "
                "blocks (tp %d needs (cols / tp) %% %d == 0)",
                m->path, name, s->rank, c0, c0 + nc, cols, Q8_BLOCK, s->size, Q8_BLOCK);
        out->dtype = MODEL_DTYPE_Q8_0;
        if (whole_rows) {
            out->data = (void *)first;
            return 0;
        }
        size_t rb = q8_row_bytes(nc), full = q8_row_bytes(cols), skip = q8_row_bytes(c0);
        uint8_t *q = model_build_alloc(m, rb * (size_t)nr);
        if (!q) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for a slice of tensor '%s'", name);
        for (int i = 0; i < nr; i++)
            memcpy(q + (size_t)i * rb, first + (size_t)i * full + skip, rb);
        model_build_release(m, first, full * (size_t)nr);
        out->data = q;
        return 0;
    }
    out->dtype = MODEL_DTYPE_F32;
    if (type == MODEL_DTYPE_F32 && whole_rows) {
        out->data = (void *)first;
        return 0;
    }
    float *f = model_build_alloc(m, sizeof(float) * (size_t)nr * (size_t)nc);
    if (!f)
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for tensor '%s' (%d x %d floats)", name, nr, nc);
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
    if (type == MODEL_DTYPE_F32) model_build_release(m, first, full * (size_t)nr);
    out->data = f;
    return 0;
}

void model_destroy(model_t **mp) {
    if (!mp || !*mp) return;
    model_t *m = *mp;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    if (m->map) munmap(m->map, m->map_len);
    model_tokenizer_destroy(&m->tok);
    free(m);
    *mp = NULL;
}
