/* wire.c — see wire.h.  Envelope codec over protobuf-c, batch framing by hand. */
#include "cluster/wire.h"

#include "llmos/envelope.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* ---- buffers ---- */

void cl_buf_init(cl_buf_t *b) { memset(b, 0, sizeof *b); }

void cl_buf_deinit(cl_buf_t *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int cl_buf_reserve(cl_buf_t *b, size_t more) {
    if (b->cap - b->len >= more) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) return LLMOS_ENOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) return LLMOS_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

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

/* ---- encode ---- */

/* An Envelope view of msg: points into msg, allocates nothing. */
typedef struct env_view {
    Llmos__Envelope env;
    Llmos__ActorRef to, from;
} env_view_t;

static char *str_or_empty(const char *s) { return (char *)(s ? s : ""); }

static void env_view_fill(env_view_t *v, const rt_msg_t *m, uint64_t self_node) {
    Llmos__Envelope env = LLMOS__ENVELOPE__INIT;
    Llmos__ActorRef ref = LLMOS__ACTOR_REF__INIT;
    v->env = env;
    v->to = ref;
    v->from = ref;
    v->to.node = m->to.node;
    v->to.id = m->to.id;
    v->to.name = str_or_empty(m->to.name);
    v->from.node = m->from.node ? m->from.node : self_node;
    v->from.id = m->from.id;
    v->from.name = str_or_empty(m->from.name);
    v->env.to = &v->to;
    v->env.from = &v->from;
    v->env.type = m->type;
    v->env.correlation_id = m->corr;
    v->env.deadline_ms = m->deadline_ms;
    v->env.tenant = str_or_empty(m->tenant);
    v->env.trace_id = m->trace_id;
    v->env.payload.len = m->len;
    v->env.payload.data = m->data;
    v->env.is_reply = (m->flags & RT_MSG_REPLY) != 0;
    v->env.status = m->status;
    v->env.error = str_or_empty(m->status ? m->error : NULL);
}

size_t cl_envelope_size(const rt_msg_t *msg, uint64_t self_node) {
    env_view_t v;
    env_view_fill(&v, msg, self_node);
    return llmos__envelope__get_packed_size(&v.env);
}

int cl_envelope_append(cl_buf_t *b, const rt_msg_t *msg, uint64_t self_node) {
    env_view_t v;
    env_view_fill(&v, msg, self_node);
    size_t n = llmos__envelope__get_packed_size(&v.env);
    if (cl_buf_reserve(b, n) != 0) return LLMOS_ENOMEM;
    b->len += llmos__envelope__pack(&v.env, b->data + b->len);
    return 0;
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

int cl_batch_append(cl_buf_t *b, const rt_msg_t *msg, uint64_t self_node) {
    env_view_t v;
    env_view_fill(&v, msg, self_node);
    size_t n = llmos__envelope__get_packed_size(&v.env);
    if (cl_buf_reserve(b, n + 11) != 0) return LLMOS_ENOMEM;
    uint8_t *p = b->data + b->len;
    p[0] = 0x0a; /* field 1, length-delimited */
    size_t h = 1 + varint_put(p + 1, n);
    b->len += h + llmos__envelope__pack(&v.env, p + h);
    return 0;
}

/* ---- decode ---- */

static const char *nonempty(const char *s) { return s && s[0] ? s : NULL; }

int cl_envelope_decode(const uint8_t *data, size_t len, size_t max_frame, cl_scratch_t *scratch,
                       rt_msg_t **out, llmos_error_t *err) {
    *out = NULL;
    if (len > max_frame)
        return llmos_error_set(err, LLMOS_ETOOBIG, "envelope of %zu bytes is over the %zu-byte frame cap", len,
                               max_frame);
    if (len == 0) return llmos_error_set(err, LLMOS_EFORMAT, "empty envelope frame");
    ProtobufCAllocator alloc = cl_scratch_allocator(scratch);
    cl_scratch_reset(scratch);
    Llmos__Envelope *env = llmos__envelope__unpack(&alloc, len, data);
    if (!env) {
        cl_scratch_reset(scratch);
        return llmos_error_set(err, LLMOS_EFORMAT, "envelope of %zu bytes does not decode as llmos.Envelope", len);
    }
    int rc = 0;
    if (!env->to || (env->to->id == 0 && !nonempty(env->to->name))) {
        rc = llmos_error_set(err, LLMOS_EFORMAT, "envelope field 'to' names no actor (id 0 and no name)");
        goto done;
    }
    rt_msg_init_t init = {0};
    init.to = (rt_ref_t){env->to->node, env->to->id, nonempty(env->to->name)};
    if (env->from) init.from = (rt_ref_t){env->from->node, env->from->id, nonempty(env->from->name)};
    init.type = env->type;
    init.flags = env->is_reply ? RT_MSG_REPLY : 0;
    init.corr = env->correlation_id;
    init.deadline_ms = env->deadline_ms;
    init.trace_id = env->trace_id;
    init.status = env->status;
    init.error = nonempty(env->error);
    init.tenant = nonempty(env->tenant);
    init.data = env->payload.len ? env->payload.data : NULL;
    init.len = env->payload.len;
    *out = rt_msg_new(&init);
    if (!*out) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for a %zu-byte message", len);
done:
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
