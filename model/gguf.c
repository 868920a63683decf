/*
 * gguf.c — GGUF v3 reader for Llama-architecture models.
 *
 * Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv metadata
 * entries (string key, u32 type, value; arrays are u32 element type, u64
 * count, elements); n_tensors tensor infos (string name, u32 n_dims, n_dims
 * u64 extents — ne[0] is the row length —, u32 ggml type, u64 offset); then
 * padding to general.alignment (default 32) and the tensor data, each
 * tensor at data_start + offset.  Strings are u64 length + bytes.
 *
 * Nothing is trusted: every read is bounds-checked against the mapping, and
 * counts, string lengths, dimensions, types, offsets, alignment, sizes and
 * overlaps are validated before any tensor is touched.  Errors name the
 * file, the field and its byte offset.  f32 and q8_0 tensors are used in
 * place (the mapping is copy-on-write); f16 ones are widened to f32.  On a
 * tensor-parallel rank only its slices are bound (model_tensor_take).
 */
#include "model/loaders.h"
#include "model/tokenizer_internal.h"
#include "model/q8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64, T_N };
static const size_t type_size[T_N] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

#define MAX_TENSORS 65536
#define MAX_KV 65536

typedef struct kv {
    const char *key;
    size_t klen;
    uint32_t type;
    size_t off;        /* value offset (arrays: first element) */
    uint32_t etype;    /* arrays */
    uint64_t count;    /* arrays */
} kv_t;

typedef struct tinfo {
    const char *name;
    size_t nlen;
    size_t info_off;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
    uint64_t bytes;
    int used;
} tinfo_t;

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
    const char *path;
    llmos_error_t *err;
} rd_t;

static int need(rd_t *r, uint64_t k, const char *what) {
    if (k > r->n - r->off)
        return llmos_error_set(r->err, LLMOS_EFORMAT,
                               "%s: truncated at offset %zu reading %s (%llu bytes needed, %zu left)", r->path,
                               r->off, what, (unsigned long long)k, r->n - r->off);
    return 0;
}

static int rd_u32(rd_t *r, uint32_t *v, const char *what) {
    if (need(r, 4, what)) return LLMOS_EFORMAT;
    memcpy(v, r->p + r->off, 4);
    r->off += 4;
    return 0;
}

static int rd_u64(rd_t *r, uint64_t *v, const char *what) {
    if (need(r, 8, what)) return LLMOS_EFORMAT;
    memcpy(v, r->p + r->off, 8);
    r->off += 8;
    return 0;
}

static int rd_str(rd_t *r, const char **s, size_t *len, uint64_t max, const char *what) {
    uint64_t n;
    size_t at = r->off;
    if (rd_u64(r, &n, what)) return LLMOS_EFORMAT;
    if (n > max)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: %s at offset %zu has length %llu (limit %llu)", r->path,
                               what, at, (unsigned long long)n, (unsigned long long)max);
    if (need(r, n, what)) return LLMOS_EFORMAT;
    *s = (const char *)r->p + r->off;
    *len = (size_t)n;
    r->off += (size_t)n;
    return 0;
}

static int skip_value(rd_t *r, kv_t *kv, uint32_t type, int depth, const char *what) {
    size_t at = r->off;
    if (type >= T_N)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: %s at offset %zu has unknown value type %u", r->path, what,
                               at, type);
    if (type == T_STR) {
        const char *s;
        size_t l;
        return rd_str(r, &s, &l, r->n, what);
    }
    if (type != T_ARR) {
        if (need(r, type_size[type], what)) return LLMOS_EFORMAT;
        r->off += type_size[type];
        return 0;
    }
    if (depth > 1)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: %s at offset %zu: arrays nested too deep", r->path, what, at);
    uint32_t et;
    uint64_t cnt;
    if (rd_u32(r, &et, what) || rd_u64(r, &cnt, what)) return LLMOS_EFORMAT;
    if (et >= T_N)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: %s at offset %zu: unknown array element type %u", r->path,
                               what, at, et);
    if (kv) {
        kv->etype = et;
        kv->count = cnt;
        kv->off = r->off;
    }
    if (et != T_STR && et != T_ARR) {
        if (cnt > (r->n - r->off) / type_size[et])
            return llmos_error_set(r->err, LLMOS_EFORMAT,
                                   "%s: %s at offset %zu: array of %llu elements runs past the end of the file",
                                   r->path, what, at, (unsigned long long)cnt);
        r->off += (size_t)cnt * type_size[et];
        return 0;
    }
    if (cnt > (r->n - r->off) / 8)
        return llmos_error_set(r->err, LLMOS_EFORMAT,
                               "%s: %s at offset %zu: array of %llu elements runs past the end of the file", r->path,
                               what, at, (unsigned long long)cnt);
    for (uint64_t i = 0; i < cnt; i++)
        if (skip_value(r, NULL, et, depth + 1, what)) return LLMOS_EFORMAT;
    return 0;
}

typedef struct gguf {
    rd_t r;
    kv_t *kv;
    uint64_t n_kv;
    tinfo_t *t;
    uint64_t n_t;
    size_t data_start;
    uint64_t alignment;
} gguf_t;

static const kv_t *find_kv(const gguf_t *g, const char *key) {
    size_t kl = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].klen == kl && memcmp(g->kv[i].key, key, kl) == 0) return &g->kv[i];
    return NULL;
}

/* An integer metadata value in [lo, hi]; *v untouched (default) if absent and !required. */
static int get_int(const gguf_t *g, const char *key, int required, int64_t lo, int64_t hi, int64_t *v) {
    const kv_t *k = find_kv(g, key);
    if (!k) {
        if (!required) return 0;
        return llmos_error_set(g->r.err, LLMOS_EFORMAT, "%s: required metadata '%s' is missing", g->r.path, key);
    }
    const uint8_t *p = g->r.p + k->off;
    int64_t x;
    switch (k->type) {
    case T_U8: x = *p; break;
    case T_I8: x = (int8_t)*p; break;
    case T_U16: { uint16_t u; memcpy(&u, p, 2); x = u; break; }
    case T_I16: { int16_t u; memcpy(&u, p, 2); x = u; break; }
    case T_U32: { uint32_t u; memcpy(&u, p, 4); x = u; break; }
    case T_I32: { int32_t u; memcpy(&u, p, 4); x = u; break; }
    case T_U64: { uint64_t u; memcpy(&u, p, 8); x = u > INT64_MAX ? -1 : (int64_t)u; break; }
    case T_I64: { memcpy(&x, p, 8); break; }
    default:
        return llmos_error_set(g->r.err, LLMOS_EFORMAT, "%s: metadata '%s' at offset %zu has type %u, not an integer",
                               g->r.path, key, k->off, k->type);
    }
    if (x < lo || x > hi)
        return llmos_error_set(g->r.err, LLMOS_EFORMAT, "%s: metadata '%s' at offset %zu is %lld, not in %lld..%lld",
                               g->r.path, key, k->off, (long long)x, (long long)lo, (long long)hi);
    *v = x;
    return 0;
}

static int get_f32(const gguf_t *g, const char *key, float *v) {
    const kv_t *k = find_kv(g, key);
    if (!k) return 0;
    if (k->type == T_F32) memcpy(v, g->r.p + k->off, 4);
    else if (k->type == T_F64) {
        double d;
        memcpy(&d, g->r.p + k->off, 8);
        *v = (float)d;
    } else
        return llmos_error_set(g->r.err, LLMOS_EFORMAT, "%s: metadata '%s' at offset %zu has type %u, not a float",
                               g->r.path, key, k->off, k->type);
    return 0;
}

static int get_str(const gguf_t *g, const char *key, const char **s, size_t *len) {
    const kv_t *k = find_kv(g, key);
    *s = NULL;
    if (!k) return 0;
    if (k->type != T_STR)
        return llmos_error_set(g->r.err, LLMOS_EFORMAT, "%s: metadata '%s' at offset %zu has type %u, not a string",
                               g->r.path, key, k->off, k->type);
    uint64_t n;
    memcpy(&n, g->r.p + k->off, 8);
    *s = (const char *)g->r.p + k->off + 8;
    *len = (size_t)n;
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const tinfo_t *x = *(tinfo_t *const *)a, *y = *(tinfo_t *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse(gguf_t *g) {
    rd_t *r = &g->r;
    uint32_t version;
    if (need(r, 4, "magic")) return LLMOS_EFORMAT;
    r->off = 4;
    if (rd_u32(r, &version, "version")) return LLMOS_EFORMAT;
    if (version != 3)
        return llmos_error_set(r->err, version == 2 ? LLMOS_EUNSUPPORTED : LLMOS_EFORMAT,
                               "%s: GGUF version %u at offset 4 (only version 3 is read)", r->path, version);
    if (rd_u64(r, &g->n_t, "tensor_count") || rd_u64(r, &g->n_kv, "metadata_kv_count")) return LLMOS_EFORMAT;
    if (g->n_t == 0 || g->n_t > MAX_TENSORS)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: tensor_count %llu at offset 8 is not in 1..%d", r->path,
                               (unsigned long long)g->n_t, MAX_TENSORS);
    if (g->n_kv > MAX_KV)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: metadata_kv_count %llu at offset 16 is over %d", r->path,
                               (unsigned long long)g->n_kv, MAX_KV);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->t = calloc(g->n_t, sizeof *g->t);
    if (!g->kv || !g->t) return llmos_error_set(r->err, LLMOS_ENOMEM, "no memory for GGUF index");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        kv_t *k = &g->kv[i];
        size_t at = r->off;
        if (rd_str(r, &k->key, &k->klen, 65535, "metadata key") || rd_u32(r, &k->type, "metadata value type"))
            return LLMOS_EFORMAT;
        for (uint64_t j = 0; j < i; j++)
            if (g->kv[j].klen == k->klen && memcmp(g->kv[j].key, k->key, k->klen) == 0)
                return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: metadata key '%.*s' at offset %zu appears twice",
                                       r->path, (int)k->klen, k->key, at);
        k->off = r->off;
        char what[96];
        snprintf(what, sizeof what, "metadata '%.*s'", (int)(k->klen > 60 ? 60 : k->klen), k->key);
        if (skip_value(r, k, k->type, 0, what)) return LLMOS_EFORMAT;
    }
    int64_t align = 32;
    if (get_int(g, "general.alignment", 0, 1, 1 << 16, &align)) return LLMOS_EFORMAT;
    if (align & (align - 1))
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: general.alignment %lld is not a power of two", r->path,
                               (long long)align);
    g->alignment = (uint64_t)align;
    for (uint64_t i = 0; i < g->n_t; i++) {
        tinfo_t *t = &g->t[i];
        t->info_off = r->off;
        if (rd_str(r, &t->name, &t->nlen, 256, "tensor name") || rd_u32(r, &t->n_dims, "tensor n_dims"))
            return LLMOS_EFORMAT;
        if (t->n_dims < 1 || t->n_dims > 4)
            return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: tensor '%.*s' (info at offset %zu): n_dims %u not in 1..4",
                                   r->path, (int)t->nlen, t->name, t->info_off, t->n_dims);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (rd_u64(r, &t->ne[d], "tensor extent")) return LLMOS_EFORMAT;
            if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 32) || nel > ((uint64_t)1 << 40) / t->ne[d])
                return llmos_error_set(r->err, LLMOS_EFORMAT,
                                       "%s: tensor '%.*s' (info at offset %zu): extent %u = %llu is out of range", r->path,
                                       (int)t->nlen, t->name, t->info_off, d, (unsigned long long)t->ne[d]);
            nel *= t->ne[d];
        }
        for (uint32_t d = t->n_dims; d < 4; d++) t->ne[d] = 1;
        if (rd_u32(r, &t->type, "tensor type") || rd_u64(r, &t->offset, "tensor offset")) return LLMOS_EFORMAT;
        switch (t->type) {
        case MODEL_DTYPE_F32: t->bytes = nel * 4; break;
        case MODEL_DTYPE_F16: t->bytes = nel * 2; break;
        case MODEL_DTYPE_Q8_0:
            if (t->ne[0] % 32)
                return llmos_error_set(r->err, LLMOS_EFORMAT,
                                       "%s: tensor '%.*s' (info at offset %zu): q8_0 row length %llu is not a multiple of 32",
                                       r->path, (int)t->nlen, t->name, t->info_off, (unsigned long long)t->ne[0]);
            t->bytes = nel / 32 * 34;
            break;
        default: t->bytes = 0; break; /* refused if the model uses it */
        }
        if (t->offset % g->alignment)
            return llmos_error_set(r->err, LLMOS_EFORMAT,
                                   "%s: tensor '%.*s' (info at offset %zu): data offset %llu is not aligned to %llu",
                                   r->path, (int)t->nlen, t->name, t->info_off, (unsigned long long)t->offset,
                                   (unsigned long long)g->alignment);
        for (uint64_t j = 0; j < i; j++)
            if (g->t[j].nlen == t->nlen && memcmp(g->t[j].name, t->name, t->nlen) == 0)
                return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: tensor '%.*s' (info at offset %zu) appears twice",
                                       r->path, (int)t->nlen, t->name, t->info_off);
    }
    uint64_t ds = (r->off + g->alignment - 1) / g->alignment * g->alignment;
    if (ds > r->n)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: truncated: tensor data would start at offset %llu, file has %zu bytes",
                               r->path, (unsigned long long)ds, r->n);
    g->data_start = (size_t)ds;
    uint64_t room = r->n - ds;
    tinfo_t **ord = malloc(sizeof(tinfo_t *) * g->n_t);
    if (!ord) return llmos_error_set(r->err, LLMOS_ENOMEM, "no memory");
    for (uint64_t i = 0; i < g->n_t; i++) ord[i] = &g->t[i];
    qsort(ord, g->n_t, sizeof *ord, cmp_offset);
    int rc = 0;
    for (uint64_t i = 0; i < g->n_t && !rc; i++) {
        tinfo_t *t = ord[i];
        if (t->offset > room || t->bytes > room - t->offset)
            rc = llmos_error_set(r->err, LLMOS_EFORMAT,
                                 "%s: tensor '%.*s' (info at offset %zu): data at file offset %llu + %llu bytes runs past the "
                                 "end (%zu bytes): truncated file?",
                                 r->path, (int)t->nlen, t->name, t->info_off,
                                 (unsigned long long)(ds + t->offset), (unsigned long long)t->bytes, r->n);
        else {
            /* Writers pack tensors, each padded to the alignment; a gap or an
             * overlap means a size or an offset is wrong. */
            uint64_t end = (t->offset + t->bytes + g->alignment - 1) / g->alignment * g->alignment;
            uint64_t next = i + 1 < g->n_t ? ord[i + 1]->offset : room;
            if (i + 1 < g->n_t ? end != next : (t->offset + t->bytes > room || room - (t->offset + t->bytes) >= g->alignment))
                rc = llmos_error_set(r->err, LLMOS_EFORMAT,
                                     "%s: tensor '%.*s' (info at offset %zu): %llu bytes at data offset %llu do not end "
                                     "where the %s starts (%llu): inconsistent type, shape or offset",
                                     r->path, (int)t->nlen, t->name, t->info_off, (unsigned long long)t->bytes,
                                     (unsigned long long)t->offset, i + 1 < g->n_t ? "next tensor" : "file end",
                                     (unsigned long long)next);
        }
    }
    free(ord);
    return rc;
}

static tinfo_t *find_t(gguf_t *g, const char *name) {
    size_t n = strlen(name);
    for (uint64_t i = 0; i < g->n_t; i++)
        if (g->t[i].nlen == n && memcmp(g->t[i].name, name, n) == 0) return &g->t[i];
    return NULL;
}

/* Binds this rank's part of tensor `name` of full shape rows x cols
 * (rows = 1: a vector) to out. */
static int bind(model_t *m, gguf_t *g, const char *name, int rows, int cols, int optional, int force_f32,
                model_part_t part, model_tensor_t *out) {
    tinfo_t *t = find_t(g, name);
    if (!t) {
        if (optional) return 1;
        return llmos_error_set(g->r.err, LLMOS_EFORMAT, "%s: tensor '%s' is missing", g->r.path, name);
    }
    int vec = rows == 1 && t->n_dims == 1;
    if (t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)(vec ? 1 : rows) || t->ne[2] != 1 || t->ne[3] != 1 ||
        (!vec && t->n_dims != 2))
        return llmos_error_set(g->r.err, LLMOS_EFORMAT,
                               "%s: tensor '%s' (info at offset %zu) has shape [%llu, %llu, %llu, %llu], expected [%d, %d]",
                               g->r.path, name, t->info_off, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                               (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], cols, rows);
    if (t->type != MODEL_DTYPE_F32 && t->type != MODEL_DTYPE_F16 && t->type != MODEL_DTYPE_Q8_0)
        return llmos_error_set(g->r.err, LLMOS_EUNSUPPORTED,
                               "%s: tensor '%s' (info at offset %zu) has ggml type %u; f32, f16 and q8_0 are read",
                               g->r.path, name, t->info_off, t->type);
    t->used = 1;
    /* f32 and q8_0 row slices are used in place, the rest is widened or
     * copied (only this rank's slice). */
    return model_build_take(m, out, name, g->r.p + g->data_start + t->offset, (model_dtype_t)t->type, rows, cols, part,
                             force_f32 || vec, g->r.err);
}

static int load_vocab(model_t *m, gguf_t *g) {
    const char *p = g->r.path;
    llmos_error_t *err = g->r.err;
    const char *tm;
    size_t tml;
    if (get_str(g, "tokenizer.ggml.model", &tm, &tml)) return LLMOS_EFORMAT;
    if (tm && !(tml == 5 && memcmp(tm, "llama", 5) == 0))
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' (only 'llama' SentencePiece)", p,
                               (int)(tml > 40 ? 40 : tml), tm);
    const kv_t *tk = find_kv(g, "tokenizer.ggml.tokens");
    if (!tk || tk->type != T_ARR || tk->etype != T_STR)
        return llmos_error_set(err, LLMOS_EFORMAT, "%s: no tokenizer.ggml.tokens string array (the vocabulary)", p);
    if (tk->count != (uint64_t)m->cfg.vocab_size)
        return llmos_error_set(err, LLMOS_EFORMAT, "%s: tokenizer.ggml.tokens at offset %zu has %llu tokens, token_embd has %d rows",
                               p, tk->off, (unsigned long long)tk->count, m->cfg.vocab_size);
    int V = m->cfg.vocab_size, rc = 0;
    const char **pieces = calloc((size_t)V, sizeof *pieces);
    int *lens = calloc((size_t)V, sizeof *lens);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = calloc((size_t)V, sizeof *types);
    if (!pieces || !lens || !scores || !types) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for the vocabulary");
    size_t off = tk->off; /* validated by parse(): every string is inside the file */
    for (int i = 0; i < V && !rc; i++) {
        uint64_t n;
        memcpy(&n, g->r.p + off, 8);
        if (n > 65536) rc = llmos_error_set(err, LLMOS_EFORMAT, "%s: token %d at offset %zu is %llu bytes long", p, i, off, (unsigned long long)n);
        pieces[i] = (const char *)g->r.p + off + 8;
        lens[i] = (int)n;
        off += 8 + (size_t)n;
    }
    const kv_t *sc = find_kv(g, "tokenizer.ggml.scores"), *ty = find_kv(g, "tokenizer.ggml.token_type");
    if (!rc && sc) {
        if (sc->type != T_ARR || sc->etype != T_F32 || sc->count != (uint64_t)V)
            rc = llmos_error_set(err, LLMOS_EFORMAT, "%s: tokenizer.ggml.scores at offset %zu is not %d float32 values", p, sc->off, V);
        else
            memcpy(scores, g->r.p + sc->off, sizeof(float) * (size_t)V);
    }
    if (!rc && ty) {
        if (ty->type != T_ARR || (ty->etype != T_I32 && ty->etype != T_U32) || ty->count != (uint64_t)V)
            rc = llmos_error_set(err, LLMOS_EFORMAT, "%s: tokenizer.ggml.token_type at offset %zu is not %d int32 values", p, ty->off, V);
        else
            memcpy(types, g->r.p + ty->off, sizeof(int32_t) * (size_t)V);
    }
    int64_t bos = 1, eos = 2;
    if (!rc && (get_int(g, "tokenizer.ggml.bos_token_id", 0, 0, V - 1, &bos) ||
                get_int(g, "tokenizer.ggml.eos_token_id", 0, 0, V - 1, &eos)))
        rc = LLMOS_EFORMAT;
    if (!rc) rc = model_tokenizer_build(V, pieces, lens, scores, ty ? types : NULL, (int)bos, (int)eos, &m->tok, err);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

static int build(model_t *m, gguf_t *g, const model_load_opts_t *opts) {
    const char *p = g->r.path;
    llmos_error_t *err = g->r.err;
    const char *arch;
    size_t al;
    if (get_str(g, "general.architecture", &arch, &al)) return LLMOS_EFORMAT;
    if (!arch) return llmos_error_set(err, LLMOS_EFORMAT, "%s: metadata 'general.architecture' is missing", p);
    if (!(al == 5 && memcmp(arch, "llama", 5) == 0))
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "%s: general.architecture '%.*s' is not supported (llama is)", p,
                               (int)(al > 40 ? 40 : al), arch);
    int64_t dim, hid, nl, nh, nkv = -1, ctx, rope_dims = -1;
    const int64_t MX = 1 << 20;
    if (get_int(g, "llama.embedding_length", 1, 1, MX, &dim) || get_int(g, "llama.feed_forward_length", 1, 1, MX, &hid) ||
        get_int(g, "llama.block_count", 1, 1, 4096, &nl) || get_int(g, "llama.attention.head_count", 1, 1, MX, &nh) ||
        get_int(g, "llama.attention.head_count_kv", 0, 1, MX, &nkv) || get_int(g, "llama.context_length", 1, 1, MX, &ctx) ||
        get_int(g, "llama.rope.dimension_count", 0, 1, MX, &rope_dims))
        return LLMOS_EFORMAT;
    float eps = 1e-5f, theta = 10000.0f;
    if (get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) || get_f32(g, "llama.rope.freq_base", &theta))
        return LLMOS_EFORMAT;
    tinfo_t *emb = find_t(g, "token_embd.weight");
    if (!emb) return llmos_error_set(err, LLMOS_EFORMAT, "%s: tensor 'token_embd.weight' is missing", p);
    if (emb->n_dims != 2 || emb->ne[1] > (uint64_t)MX)
        return llmos_error_set(err, LLMOS_EFORMAT, "%s: tensor 'token_embd.weight' (info at offset %zu) is not [dim, vocab]",
                               p, emb->info_off);
    model_config_t c = {.arch = MODEL_ARCH_LLAMA, .dim = (int)dim, .hidden_dim = (int)hid, .n_layers = (int)nl,
                        .n_heads = (int)nh, .n_kv_heads = (int)(nkv > 0 ? nkv : nh), .vocab_size = (int)emb->ne[1],
                        .seq_len = (int)ctx, .rope_theta = theta, .norm_eps = eps,
                        .shared_classifier = find_t(g, "output.weight") == NULL};
    int rc = model_config_check(&c, err);
    if (rc) {
        llmos_error_prefix(err, "%s: metadata: ", p);
        if (err) err->code = LLMOS_EFORMAT;
        return LLMOS_EFORMAT;
    }
    if (rope_dims > 0 && rope_dims != c.head_dim)
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "%s: llama.rope.dimension_count %lld != head_dim %d (partial RoPE)",
                               p, (long long)rope_dims, c.head_dim);
    m->cfg = c;
    if ((rc = model_build_shard(m, opts, err)) || (rc = model_build_finish(m, err))) return rc;
    model_weights_t *w = &m->w;
    int D = c.dim, H = c.hidden_dim, KV = c.n_kv_heads * c.head_dim;
    if ((rc = bind(m, g, "token_embd.weight", c.vocab_size, D, 0, 1, MODEL_PART_WHOLE, &w->tok_embd))) return rc;
    if ((rc = bind(m, g, "output_norm.weight", 1, D, 0, 1, MODEL_PART_WHOLE, &w->final_norm))) return rc;
    if (c.shared_classifier) {
        /* The embedding's rows of this rank's vocabulary (fp32 already). */
        int D0 = c.dim;
        w->classifier = (model_tensor_t){.dtype = MODEL_DTYPE_F32, .rows = m->shard.n_vocab, .cols = D0,
                                         .data = (float *)w->tok_embd.data + (size_t)m->shard.vocab0 * (size_t)D0};
    } else if ((rc = bind(m, g, "output.weight", c.vocab_size, D, 0, 0, MODEL_PART_V_ROWS, &w->classifier)))
        return rc;
    for (int l = 0; l < c.n_layers; l++) {
        model_layer_t *L = &w->layers[l];
        struct {
            const char *n;
            int rows, cols, f32;
            model_part_t part;
            model_tensor_t *t;
        } b[] = {{"attn_norm", 1, D, 1, MODEL_PART_WHOLE, &L->attn_norm},
                 {"attn_q", D, D, 0, MODEL_PART_Q_ROWS, &L->wq},
                 {"attn_k", KV, D, 0, MODEL_PART_KV_ROWS, &L->wk},
                 {"attn_v", KV, D, 0, MODEL_PART_KV_ROWS, &L->wv},
                 {"attn_output", D, D, 0, MODEL_PART_Q_COLS, &L->wo},
                 {"ffn_norm", 1, D, 1, MODEL_PART_WHOLE, &L->ffn_norm},
                 {"ffn_gate", H, D, 0, MODEL_PART_H_ROWS, &L->w1},
                 {"ffn_down", D, H, 0, MODEL_PART_H_COLS, &L->w2},
                 {"ffn_up", H, D, 0, MODEL_PART_H_ROWS, &L->w3}};
        for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, b[i].n);
            if ((rc = bind(m, g, name, b[i].rows, b[i].cols, 0, b[i].f32, b[i].part, b[i].t))) return rc;
        }
    }
    return load_vocab(m, g);
}

int model_load_gguf(model_t *m, const model_load_opts_t *opts, llmos_error_t *err) {
    /* The vocabulary is in the file; opts->tokenizer_path is ignored. */
    gguf_t g = {.r = {.p = m->map, .n = m->map_len, .off = 0, .path = m->path, .err = err}};
    int rc = parse(&g);
    if (!rc) rc = build(m, &g, opts);
    free(g.kv);
    free(g.t);
    return rc;
}
