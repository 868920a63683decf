/*
 * msg.c — rt_msg_t construction: one allocation holding the header, the
 * payload and copies of every string, so a message is freed with one free()
 * and crosses threads as a single pointer.
 *
 * Layout: [rt_msg_t][payload][to.name\0][from.name\0][error\0][tenant\0]
 */
#include "runtime/rt_internal.h"

#include <stdlib.h>
#include <string.h>

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *str_put(char **cursor, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, n);
    *cursor += n;
    return dst;
}

rt_msg_t *rt_msg_new(const rt_msg_init_t *init) {
    const char *to_name = init->to.name;
    const char *from_name = init->from.name;
    size_t len = init->data ? init->len : 0;
    size_t total = sizeof(rt_msg_t) + len + str_size(to_name) + str_size(from_name) +
                   str_size(init->error) + str_size(init->tenant);
    rt_msg_t *m = malloc(total);
    if (!m) return NULL;
    m->next_ = NULL;
    m->type = init->type;
    m->flags = init->flags;
    m->corr = init->corr;
    m->deadline_ms = init->deadline_ms;
    m->trace_id = init->trace_id;
    m->status = init->status;
    m->len = len;
    char *cursor = (char *)(m + 1);
    m->data = len ? (uint8_t *)cursor : NULL;
    if (len) memcpy(cursor, init->data, len);
    cursor += len;
    m->to = (rt_ref_t){init->to.node, init->to.id, str_put(&cursor, to_name)};
    m->from = (rt_ref_t){init->from.node, init->from.id, str_put(&cursor, from_name)};
    m->error = str_put(&cursor, init->error);
    m->tenant = str_put(&cursor, init->tenant);
    return m;
}

void rt_msg_free(rt_msg_t *msg) { free(msg); }
