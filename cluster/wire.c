/* wire.c — see wire.h.  The Envelope codec and the batch framing, by hand (see below why). */
#include "cluster/wire.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- scratch arena ---- */

int cl_scratch_init(cl_scratch_t *s, size_t block_bytes) {
    memset(s, 0, sizeof *s);
    s->block = malloc(block_bytes);
    if (!s->block) return LLMOS_ENOMEM;
    s->cap = block_bytes;
    return 0;
}

void cl_scratch_reset(cl_scratch_t *s) {
    for (size_t i = 0; i < s->nbig; i++) free(s->big[i]);
    s->nbig = 0;
    s->used = 0;
}

void cl_scratch_deinit(cl_scratch_t *s) {
    cl_scratch_reset(s);
    free(s->big);
    free(s->block);
    memset(s, 0, sizeof *s);
}

static void *scratch_alloc(void *data, size_t size) {
    cl_scratch_t *s = data;
    size_t need = (size + 15) & ~(size_t)15;
    if (need >= size && s->cap - s->used >= need) {
        void *p = s->block + s->used;
        s->used += need;
        return p;
    }
    if (s->nbig == s->capbig) {
        size_t cap = s->capbig ? s->capbig * 2 : 8;
        void **big = realloc(s->big, cap * sizeof *big);
        if (!big) return NULL;
        s->big = big;
        s->capbig = cap;
    }
    void *p = malloc(size ? size : 1);
    if (p) s->big[s->nbig++] = p;
    return p;
}

static void scratch_free(void *data, void *ptr) {
    (void)data;
    (void)ptr; /* everything goes at cl_scratch_reset */
}

ProtobufCAllocator cl_scratch_allocator(cl_scratch_t *s) {
    return (ProtobufCAllocator){scratch_alloc, scratch_free, s};
}

/* ---- encode ----
 *
 * Envelopes are written and read by hand (protobuf wire format, proto3
 * rules: zero and empty fields are omitted): protobuf-c's descriptor-driven
 * pack/unpack cost ~10x more per message, and this is the hot path of every
 * remote message.  tests/cluster/test_wire.c checks both directions against
 * protobuf-c so the two can never drift apart.
 */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

/* Size of a varint field / a length-delimited field (0 when omitted). */
static size_t fv_size(uint64_t v) { return v ? 1 + varint_len(v) : 0; }
static size_t fb_size(size_t len) { return len ? 1 + varint_len(len) + len : 0; }

static size_t ref_body_size(uint64_t node, const rt_ref_t *r) {
    return fv_size(node) + fv_size(r->id) + fb_size(slen(r->name));
}

/* All field numbers here are < 16: the key is one byte. */
static uint8_t *put_v(uint8_t *p, unsigned field, uint64_t v) {
    if (!v) return p;
    *p++ = (uint8_t)(field << 3 | WT_VARINT);
    return p + varint_put(p, v);
}

static uint8_t *put_b(uint8_t *p, unsigned field, const void *data, size_t len) {
    if (!len) return p;
    *p++ = (uint8_t)(field << 3 | WT_LEN);
    p += varint_put(p, len);
    memcpy(p, data, len);
    return p + len;
}

static uint8_t *put_ref(uint8_t *p, unsigned field, uint64_t node, const rt_ref_t *r) {
    size_t body = ref_body_size(node, r);
    *p++ = (uint8_t)(field << 3 | WT_LEN); /* always present, even when empty */
    p += varint_put(p, body);
    p = put_v(p, 1, node);
    p = put_v(p, 2, r->id);
    return put_b(p, 3, r->name, slen(r->name));
}

static const char *msg_error(const rt_msg_t *m) { return m->status ? m->error : NULL; }

size_t cl_envelope_size(const rt_msg_t *m, uint64_t self_node) {
    uint64_t from_node = m->from.node ? m->from.node : self_node;
    size_t to = ref_body_size(m->to.node, &m->to), from = ref_body_size(from_node, &m->from);
    return 1 + varint_len(to) + to + 1 + varint_len(from) + from + fv_size(m->type) + fv_size(m->corr) +
           fv_size(m->deadline_ms) + fb_size(slen(m->tenant)) + fv_size(m->trace_id) + fb_size(m->len) +
           fv_size((m->flags & RT_MSG_REPLY) ? 1 : 0) + fv_size((uint64_t)(int64_t)m->status) +
           fb_size(slen(msg_error(m)));
}

static uint8_t *envelope_put(uint8_t *p, const rt_msg_t *m, uint64_t self_node) {
    p = put_ref(p, 1, m->to.node, &m->to);
    p = put_ref(p, 2, m->from.node ? m->from.node : self_node, &m->from);
    p = put_v(p, 3, m->type);
    p = put_v(p, 4, m->corr);
    p = put_v(p, 5, m->deadline_ms);
    p = put_b(p, 6, m->tenant, slen(m->tenant));
    p = put_v(p, 7, m->trace_id);
    p = put_b(p, 8, m->data, m->len);
    p = put_v(p, 9, (m->flags & RT_MSG_REPLY) ? 1 : 0);
    p = put_v(p, 10, (uint64_t)(int64_t)m->status); /* int32: negative values sign-extend to 10 bytes */
    return put_b(p, 11, msg_error(m), slen(msg_error(m)));
}

/* Both write straight into the buffer's reserved room (runtime/base/buf.h). */
int cl_envelope_append(llmos_buf_t *b, const rt_msg_t *msg, uint64_t self_node) {
    size_t n = cl_envelope_size(msg, self_node);
    if (llmos_buf_reserve(b, n) != 0) return LLMOS_ENOMEM;
    uint8_t *start = (uint8_t *)b->data + b->len;
    uint8_t *end = envelope_put(start, msg, self_node);
    LLMOS_ASSERT((size_t)(end - start) == n);
    b->len += n;
    return 0;
}

int cl_batch_append(llmos_buf_t *b, const rt_msg_t *msg, uint64_t self_node) {
    size_t n = cl_envelope_size(msg, self_node);
    if (llmos_buf_reserve(b, n + 11) != 0) return LLMOS_ENOMEM;
    uint8_t *p = (uint8_t *)b->data + b->len;
    *p++ = 0x0a; /* Batch field 1, length-delimited */
    p += varint_put(p, n);
    uint8_t *end = envelope_put(p, msg, self_node);
    LLMOS_ASSERT((size_t)(end - p) == n);
    b->len = (size_t)(end - (uint8_t *)b->data);
    return 0;
}

/* ---- decode ---- */

typedef struct reader {
    const uint8_t *p, *start, *end;
    llmos_error_t *err;
    const char *where;  /* "envelope" or "envelope.to" ... for messages */
} reader_t;

static int get_varint(reader_t *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: truncated varint at offset %zu", r->where,
                                   (size_t)(r->p - r->start));
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: varint longer than 10 bytes at offset %zu", r->where,
                           (size_t)(r->p - r->start));
}

/* Reads a length-delimited field's bytes (borrowed from the frame). */
static int get_bytes(reader_t *r, unsigned field, const uint8_t **data, size_t *len) {
    uint64_t n = 0;
    size_t at = (size_t)(r->p - r->start);
    int rc = get_varint(r, &n);
    if (rc) return rc;
    if (n > (uint64_t)(r->end - r->p))
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: field %u at offset %zu claims %llu bytes, %zu left",
                               r->where, field, at, (unsigned long long)n, (size_t)(r->end - r->p));
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

/* A NUL-terminated copy in the scratch arena (NULL when empty). */
static int get_string(reader_t *r, unsigned field, const char *name, cl_scratch_t *sc, const char **out) {
    const uint8_t *d = NULL;
    size_t n = 0;
    int rc = get_bytes(r, field, &d, &n);
    if (rc) return rc;
    if (memchr(d, 0, n))
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: string field '%s' contains a NUL byte", r->where, name);
    if (n == 0) {
        *out = NULL;
        return 0;
    }
    char *s = scratch_alloc(sc, n + 1);
    if (!s) return llmos_error_set(r->err, LLMOS_ENOMEM, "no memory for a %zu-byte string", n);
    memcpy(s, d, n);
    s[n] = 0;
    *out = s;
    return 0;
}

/* Skips a field this version does not know (proto3 forward compatibility). */
static int skip_field(reader_t *r, unsigned field, unsigned wt) {
    uint64_t v = 0;
    const uint8_t *d = NULL;
    size_t n = 0;
    switch (wt) {
    case WT_VARINT: return get_varint(r, &v);
    case WT_LEN: return get_bytes(r, field, &d, &n);
    case WT_I64:
    case WT_I32: {
        size_t w = wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < w)
            return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: truncated field %u", r->where, field);
        r->p += w;
        return 0;
    }
    default:
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: field %u has wire type %u (groups are not supported)",
                               r->where, field, wt);
    }
}

static int get_key(reader_t *r, unsigned *field, unsigned *wt) {
    uint64_t key = 0;
    size_t at = (size_t)(r->p - r->start);
    int rc = get_varint(r, &key);
    if (rc) return rc;
    if ((key >> 3) == 0 || (key >> 3) > 536870911u)
        return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: invalid field number at offset %zu", r->where, at);
    *field = (unsigned)(key >> 3);
    *wt = (unsigned)(key & 7);
    return 0;
}

static int wrong_type(reader_t *r, unsigned field, unsigned wt) {
    return llmos_error_set(r->err, LLMOS_EFORMAT, "%s: field %u has wire type %u, not the declared one", r->where,
                           field, wt);
}

static int get_ref(reader_t *outer, unsigned field, cl_scratch_t *sc, rt_ref_t *ref) {
    const uint8_t *d = NULL;
    size_t n = 0;
    int rc = get_bytes(outer, field, &d, &n);
    if (rc) return rc;
    reader_t r = {d, outer->start, d + n, outer->err, field == 1 ? "envelope.to" : "envelope.from"};
    *ref = RT_REF_NONE;
    while (r.p < r.end) {
        unsigned f = 0, wt = 0; /* set by get_key; initialised for -O3's flow analysis */
        if ((rc = get_key(&r, &f, &wt))) return rc;
        if (f == 1 || f == 2) {
            if (wt != WT_VARINT) return wrong_type(&r, f, wt);
            if ((rc = get_varint(&r, f == 1 ? &ref->node : &ref->id))) return rc;
        } else if (f == 3) {
            if (wt != WT_LEN) return wrong_type(&r, f, wt);
            if ((rc = get_string(&r, f, "name", sc, &ref->name))) return rc;
        } else if ((rc = skip_field(&r, f, wt))) {
            return rc;
        }
    }
    return 0;
}

int cl_envelope_decode(const uint8_t *data, size_t len, size_t max_frame, cl_scratch_t *scratch,
                       rt_msg_t **out, llmos_error_t *err) {
    *out = NULL;
    if (len > max_frame)
        return llmos_error_set(err, LLMOS_ETOOBIG, "envelope of %zu bytes is over the %zu-byte frame cap", len,
                               max_frame);
    if (len == 0) return llmos_error_set(err, LLMOS_EFORMAT, "empty envelope frame");
    cl_scratch_reset(scratch);
    reader_t r = {data, data, data + len, err, "envelope"};
    rt_msg_init_t in = {0};
    bool has_to = false;
    int rc = 0;
    while (r.p < r.end && rc == 0) {
        unsigned f = 0, wt = 0; /* set by get_key; initialised for -O3's flow analysis */
        if ((rc = get_key(&r, &f, &wt))) break;
        uint64_t v;
        const uint8_t *d;
        switch (f) {
        case 1:
        case 2:
            if (wt != WT_LEN) rc = wrong_type(&r, f, wt);
            else rc = get_ref(&r, f, scratch, f == 1 ? &in.to : &in.from);
            if (f == 1) has_to = true;
            break;
        case 6:
        case 11:
            if (wt != WT_LEN) rc = wrong_type(&r, f, wt);
            else rc = get_string(&r, f, f == 6 ? "tenant" : "error", scratch, f == 6 ? &in.tenant : &in.error);
            break;
        case 8:
            if (wt != WT_LEN) rc = wrong_type(&r, f, wt);
            else rc = get_bytes(&r, f, &d, &in.len), in.data = d;
            break;
        case 3: case 4: case 5: case 7: case 9: case 10:
            if (wt != WT_VARINT) {
                rc = wrong_type(&r, f, wt);
                break;
            }
            if ((rc = get_varint(&r, &v))) break;
            if (f == 3) in.type = (uint32_t)v;
            else if (f == 4) in.corr = v;
            else if (f == 5) in.deadline_ms = v;
            else if (f == 7) in.trace_id = v;
            else if (f == 9) in.flags = v ? RT_MSG_REPLY : 0;
            else in.status = (int32_t)(int64_t)v;
            break;
        default:
            rc = skip_field(&r, f, wt);
        }
    }
    if (rc == 0 && (!has_to || (in.to.id == 0 && !in.to.name)))
        rc = llmos_error_set(err, LLMOS_EFORMAT, "envelope field 'to' names no actor (id 0 and no name)");
    if (rc == 0) {
        if (!in.len) in.data = NULL;
        *out = rt_msg_new(&in);
        if (!*out) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a %zu-byte message", len);
    }
    cl_scratch_reset(scratch);
    return rc;
}

int cl_batch_next(const uint8_t *data, size_t len, size_t *pos, size_t max_frame, const uint8_t **env,
                  size_t *env_len, llmos_error_t *err) {
    size_t p = *pos;
    if (p >= len) return 0;
    if (data[p] != 0x0a)
        return llmos_error_set(err, LLMOS_EFORMAT, "batch: byte %zu is tag 0x%02x, expected field 1 (0x0a)", p,
                               data[p]);
    p++;
    uint64_t n = 0;
    int shift = 0;
    for (;;) {
        if (p >= len || shift > 63)
            return llmos_error_set(err, LLMOS_EFORMAT, "batch: truncated length varint at offset %zu", p);
        uint8_t c = data[p++];
        n |= (uint64_t)(c & 0x7f) << shift;
        shift += 7;
        if (!(c & 0x80)) break;
    }
    if (n > max_frame)
        return llmos_error_set(err, LLMOS_ETOOBIG, "batch: envelope at offset %zu claims %llu bytes, over the cap",
                               *pos, (unsigned long long)n);
    if (n > len - p)
        return llmos_error_set(err, LLMOS_EFORMAT, "batch: envelope at offset %zu claims %llu bytes, %zu left",
                               *pos, (unsigned long long)n, len - p);
    *env = data + p;
    *env_len = (size_t)n;
    *pos = p + (size_t)n;
    return 1;
}

/* ---- client pseudo node ids ---- */

uint64_t cl_client_node_from_rid(const uint8_t *rid, size_t len) {
    if (len == 0 || len > 7) return 0;
    uint64_t v = CL_CLIENT_NODE_BIT | ((uint64_t)len << 56);
    for (size_t i = 0; i < len; i++) v |= (uint64_t)rid[i] << (8 * i);
    return v;
}

size_t cl_client_node_to_rid(uint64_t node, uint8_t rid[7]) {
    if (!(node & CL_CLIENT_NODE_BIT)) return 0;
    size_t len = (size_t)((node >> 56) & 0x7f);
    if (len == 0 || len > 7) return 0;
    for (size_t i = 0; i < len; i++) rid[i] = (uint8_t)(node >> (8 * i));
    return len;
}
