/*
 * registry.c — the actor table (id -> actor) and the name registry
 * (name -> actor): chained hash tables guarded by sys->lock (see
 * rt_internal.h).  Look-ups take the lock for reading and allocate nothing;
 * spawn, stop and register take it for writing.
 */
#include "runtime/rt_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct rt_name {
    struct rt_name *next;
    rt_actor_t *actor;
    char name[];
} rt_name_t;

static size_t hash_id(uint64_t id) {
    id ^= id >> 31;
    id *= 0x9e3779b97f4a7c15ull;
    return (size_t)(id ^ (id >> 29));
}

static size_t hash_str(const char *s) {
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

rt_actor_t *rt_table_find(rt_system_t *sys, uint64_t id) {
    if (!sys->nbuckets) return NULL;
    for (rt_actor_t *a = sys->buckets[hash_id(id) & (sys->nbuckets - 1)]; a; a = a->hnext)
        if (a->id == id) return a;
    return NULL;
}

static rt_name_t **name_slot(rt_system_t *sys, const char *name) {
    rt_name_t **p = &sys->names[hash_str(name) & (sys->nname_buckets - 1)];
    while (*p && strcmp((*p)->name, name) != 0) p = &(*p)->next;
    return p;
}

static rt_actor_t *names_find(rt_system_t *sys, const char *name) {
    if (!sys->nname_buckets) return NULL;
    rt_name_t *e = *name_slot(sys, name);
    return e ? e->actor : NULL;
}

rt_actor_t *rt_table_find_ref(rt_system_t *sys, rt_ref_t ref) {
    if (ref.id) return rt_table_find(sys, ref.id);
    if (ref.name && ref.name[0]) return names_find(sys, ref.name);
    return NULL;
}

int rt_table_insert(rt_system_t *sys, rt_actor_t *a) {
    if (sys->nentries + 1 > sys->nbuckets) {
        size_t n = sys->nbuckets ? sys->nbuckets * 2 : 64;
        rt_actor_t **b = calloc(n, sizeof *b);
        if (!b) return LLMOS_ENOMEM;
        for (size_t i = 0; i < sys->nbuckets; i++) {
            for (rt_actor_t *x = sys->buckets[i], *next; x; x = next) {
                next = x->hnext;
                size_t s = hash_id(x->id) & (n - 1);
                x->hnext = b[s];
                b[s] = x;
            }
        }
        free(sys->buckets);
        sys->buckets = b;
        sys->nbuckets = n;
    }
    size_t s = hash_id(a->id) & (sys->nbuckets - 1);
    a->hnext = sys->buckets[s];
    sys->buckets[s] = a;
    sys->nentries++;
    return 0;
}

int rt_names_add(rt_system_t *sys, const char *name, rt_actor_t *a) {
    if (sys->nnames + 1 > sys->nname_buckets) {
        size_t n = sys->nname_buckets ? sys->nname_buckets * 2 : 64;
        rt_name_t **b = calloc(n, sizeof *b);
        if (!b) return LLMOS_ENOMEM;
        for (size_t i = 0; i < sys->nname_buckets; i++) {
            for (rt_name_t *x = sys->names[i], *next; x; x = next) {
                next = x->next;
                size_t s = hash_str(x->name) & (n - 1);
                x->next = b[s];
                b[s] = x;
            }
        }
        free(sys->names);
        sys->names = b;
        sys->nname_buckets = n;
    }
    rt_name_t **slot = name_slot(sys, name);
    if (*slot) return LLMOS_EEXIST;
    size_t len = strlen(name);
    rt_name_t *e = malloc(sizeof *e + len + 1);
    char *copy = a->name ? NULL : strdup(name);
    if (!e || (!a->name && !copy)) {
        free(e);
        free(copy);
        return LLMOS_ENOMEM;
    }
    memcpy(e->name, name, len + 1);
    e->actor = a;
    e->next = NULL;
    *slot = e;
    sys->nnames++;
    a->nnames++;
    if (copy) a->name = copy;
    return 0;
}

static void names_remove_entry(rt_system_t *sys, rt_name_t **slot) {
    rt_name_t *e = *slot;
    *slot = e->next;
    sys->nnames--;
    rt_actor_t *a = e->actor;
    a->nnames--;
    if (a->name && strcmp(a->name, e->name) == 0) {
        free(a->name);
        a->name = NULL;
    }
    free(e);
}

/* Removes every registry entry of a; a->name (its label for foreach and
 * death notices) stays with the actor until it is freed. */
void rt_names_remove_actor(rt_system_t *sys, rt_actor_t *a) {
    if (a->nnames == 0) return;
    for (size_t i = 0; i < sys->nname_buckets; i++) {
        rt_name_t **p = &sys->names[i];
        while (*p) {
            if ((*p)->actor == a) {
                rt_name_t *e = *p;
                *p = e->next;
                sys->nnames--;
                a->nnames--;
                free(e);
            } else {
                p = &(*p)->next;
            }
        }
    }
}

void rt_table_remove(rt_system_t *sys, rt_actor_t *a) {
    rt_actor_t **p = &sys->buckets[hash_id(a->id) & (sys->nbuckets - 1)];
    while (*p && *p != a) p = &(*p)->hnext;
    if (*p) {
        *p = a->hnext;
        sys->nentries--;
    }
    rt_names_remove_actor(sys, a);
    a->dead = true;
}

void rt_table_free(rt_system_t *sys) {
    for (size_t i = 0; i < sys->nname_buckets; i++) {
        for (rt_name_t *e = sys->names[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(sys->names);
    free(sys->buckets);
    sys->names = NULL;
    sys->buckets = NULL;
    sys->nname_buckets = sys->nbuckets = sys->nentries = sys->nnames = 0;
}

int rt_register(rt_system_t *sys, const char *name, rt_ref_t ref) {
    if (!name || !name[0] || rt_node_is_remote(sys, ref.node)) return LLMOS_EINVAL;
    rt_wrlock(sys);
    rt_actor_t *a = rt_table_find_ref(sys, ref);
    int rc = (!a || a->mode == RT_MODE_CALLER) ? LLMOS_ENOTFOUND : rt_names_add(sys, name, a);
    rt_wrunlock(sys);
    return rc;
}

int rt_unregister(rt_system_t *sys, const char *name) {
    if (!name) return LLMOS_EINVAL;
    int rc = LLMOS_ENOTFOUND;
    rt_wrlock(sys);
    if (sys->nname_buckets) {
        rt_name_t **slot = name_slot(sys, name);
        if (*slot) {
            names_remove_entry(sys, slot);
            rc = 0;
        }
    }
    rt_wrunlock(sys);
    return rc;
}

int rt_lookup(rt_system_t *sys, const char *name, rt_ref_t *out) {
    if (!name) return LLMOS_EINVAL;
    rt_rdlock(sys);
    rt_actor_t *a = names_find(sys, name);
    if (a && out) *out = rt_ref_local(a->id);
    rt_rdunlock(sys);
    return a ? 0 : LLMOS_ENOTFOUND;
}

void rt_system_foreach_actor(rt_system_t *sys,
                             void (*fn)(void *user, const char *name, uint64_t id, const char *kind),
                             void *user) {
    rt_rdlock(sys);
    for (size_t i = 0; i < sys->nbuckets; i++)
        for (rt_actor_t *a = sys->buckets[i]; a; a = a->hnext)
            if (a->mode != RT_MODE_CALLER) fn(user, a->name, a->id, a->def.kind);
    rt_rdunlock(sys);
}
