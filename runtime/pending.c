/*
 * pending.c — two small containers the actors keep: the pending-ask map
 * (correlation id -> timeout timer id; the shared hash map of
 * runtime/base/map.h, touched only by the actor's own thread) and id lists
 * (children, watchers).  Growth allocates; lookups never do.
 */
#include "runtime/rt_internal.h"

#include <stdlib.h>

void rt_pending_init(rt_pending_t *p) {
    llmos_map_init(&p->asks, LLMOS_MAP_U64, sizeof(uint64_t));
}

int rt_pending_put(rt_pending_t *p, uint64_t corr, uint64_t timer) {
    LLMOS_ASSERT(corr != 0);
    uint64_t *v;
    int rc = llmos_map_u64_put(&p->asks, corr, (void **)&v, NULL);
    if (rc) return rc;
    *v = timer;
    return 0;
}

bool rt_pending_take(rt_pending_t *p, uint64_t corr, uint64_t *timer) {
    if (corr == 0) return false;
    uint64_t *v = llmos_map_u64_get(&p->asks, corr);
    if (!v) return false;
    if (timer) *timer = *v;
    llmos_map_remove_at(&p->asks, llmos_map_index_of(&p->asks, v));
    return true;
}

void rt_pending_free(rt_pending_t *p) {
    llmos_map_deinit(&p->asks);
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
