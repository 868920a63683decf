/*
 * pending.c — two small containers the actors keep: the pending-ask map
 * (correlation id -> timeout timer id; open addressing with linear probing
 * and backward-shift deletion, touched only by the actor's own thread) and
 * id lists (children, watchers).  Growth allocates; lookups never do.
 */
#include "runtime/rt_internal.h"

#include <stdlib.h>

static size_t slot_of(uint64_t key, size_t cap) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static void pending_insert_raw(rt_pending_t *p, uint64_t key, uint64_t val) {
    size_t i = slot_of(key, p->cap);
    while (p->keys[i] != 0) i = (i + 1) & (p->cap - 1);
    p->keys[i] = key;
    p->vals[i] = val;
    p->n++;
}

int rt_pending_put(rt_pending_t *p, uint64_t corr, uint64_t timer) {
    LLMOS_ASSERT(corr != 0);
    if ((p->n + 1) * 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        uint64_t *keys = calloc(cap, sizeof *keys);
        uint64_t *vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return LLMOS_ENOMEM;
        }
        rt_pending_t old = *p;
        *p = (rt_pending_t){keys, vals, cap, 0};
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) pending_insert_raw(p, old.keys[i], old.vals[i]);
        free(old.keys);
        free(old.vals);
    }
    pending_insert_raw(p, corr, timer);
    return 0;
}

bool rt_pending_take(rt_pending_t *p, uint64_t corr, uint64_t *timer) {
    if (p->n == 0 || corr == 0) return false;
    size_t mask = p->cap - 1;
    size_t i = slot_of(corr, p->cap);
    while (p->keys[i] != corr) {
        if (p->keys[i] == 0) return false;
        i = (i + 1) & mask;
    }
    if (timer) *timer = p->vals[i];
    p->n--;
    /* Backward-shift deletion keeps probe chains unbroken without tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; p->keys[j] != 0; j = (j + 1) & mask) {
        size_t home = slot_of(p->keys[j], p->cap);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            p->keys[hole] = p->keys[j];
            p->vals[hole] = p->vals[j];
            hole = j;
        }
    }
    p->keys[hole] = 0;
    return true;
}

void rt_pending_free(rt_pending_t *p) {
    free(p->keys);
    free(p->vals);
    *p = (rt_pending_t){0};
}

int rt_idlist_add(rt_idlist_t *l, uint64_t id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        uint64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids) return LLMOS_ENOMEM;
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

bool rt_idlist_remove(rt_idlist_t *l, uint64_t id) {
    for (size_t i = 0; i < l->n; i++) {
        if (l->ids[i] == id) {
            l->ids[i] = l->ids[--l->n];
            return true;
        }
    }
    return false;
}
