/*
 * registry.c — the actor table (id -> actor) and the name registry
 * (name -> actor): two hash maps of runtime/base/map.h (values: the
 * rt_actor_t pointer) guarded by sys->lock (see rt_internal.h).  Look-ups
 * take the lock for reading and allocate nothing; spawn, stop and register
 * take it for writing.
 */
#include "runtime/rt_internal.h"

#include <stdlib.h>
#include <string.h>

void rt_table_init(rt_system_t *sys) {
    llmos_map_init(&sys->actors, LLMOS_MAP_U64, sizeof(rt_actor_t *));
    llmos_map_init(&sys->names, LLMOS_MAP_STR, sizeof(rt_actor_t *));
}

rt_actor_t *rt_table_find(rt_system_t *sys, uint64_t id) {
    rt_actor_t **v = llmos_map_u64_get(&sys->actors, id);
    return v ? *v : NULL;
}

static rt_actor_t *names_find(rt_system_t *sys, const char *name) {
    rt_actor_t **v = llmos_map_str_get(&sys->names, name, strlen(name));
    return v ? *v : NULL;
}

rt_actor_t *rt_table_find_ref(rt_system_t *sys, rt_ref_t ref) {
    if (ref.id) return rt_table_find(sys, ref.id);
    if (ref.name && ref.name[0]) return names_find(sys, ref.name);
    return NULL;
}

int rt_table_insert(rt_system_t *sys, rt_actor_t *a) {
    rt_actor_t **v;
    int added;
    int rc = llmos_map_u64_put(&sys->actors, a->id, (void **)&v, &added);
    if (rc) return rc;
    if (!added) return LLMOS_EEXIST; /* ids are never reused: a bug */
    *v = a;
    return 0;
}

int rt_names_add(rt_system_t *sys, const char *name, rt_actor_t *a) {
    size_t len = strlen(name);
    if (llmos_map_str_get(&sys->names, name, len)) return LLMOS_EEXIST;
    char *copy = a->name ? NULL : strdup(name);
    if (!a->name && !copy) return LLMOS_ENOMEM;
    rt_actor_t **v;
    int rc = llmos_map_str_put(&sys->names, name, len, (void **)&v, NULL);
    if (rc) {
        free(copy);
        return rc;
    }
    *v = a;
    a->nnames++;
    if (copy) a->name = copy;
    return 0;
}

/* Removes the registry entry at position i (its actor is a). */
static void names_remove_at(rt_system_t *sys, size_t i, rt_actor_t *a) {
    size_t n;
    const char *key = llmos_map_str_key_at(&sys->names, i, &n);
    a->nnames--;
    if (a->name && strcmp(a->name, key) == 0) {
        free(a->name);
        a->name = NULL;
    }
    llmos_map_remove_at(&sys->names, i);
}

/* Removes every registry entry of a; a->name (its label for foreach and
 * death notices) stays with the actor until it is freed. */
void rt_names_remove_actor(rt_system_t *sys, rt_actor_t *a) {
    /* downwards: a removal moves the last entry, which was already seen */
    for (size_t i = llmos_map_count(&sys->names); a->nnames > 0 && i-- > 0;)
        if (*(rt_actor_t **)llmos_map_val_at(&sys->names, i) == a) names_remove_at(sys, i, a);
}

void rt_table_remove(rt_system_t *sys, rt_actor_t *a) {
    rt_actor_t **v = llmos_map_u64_get(&sys->actors, a->id);
    if (v && *v == a) llmos_map_remove_at(&sys->actors, llmos_map_index_of(&sys->actors, v));
    rt_names_remove_actor(sys, a);
    a->dead = true;
}

void rt_table_free(rt_system_t *sys) {
    llmos_map_deinit(&sys->names);
    llmos_map_deinit(&sys->actors);
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
    rt_actor_t **v = llmos_map_str_get(&sys->names, name, strlen(name));
    if (v) {
        names_remove_at(sys, llmos_map_index_of(&sys->names, v), *v);
        rc = 0;
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
    for (size_t i = 0; i < llmos_map_count(&sys->actors); i++) {
        rt_actor_t *a = *(rt_actor_t **)llmos_map_val_at(&sys->actors, i);
        if (a->mode != RT_MODE_CALLER) fn(user, a->name, a->id, a->def.kind);
    }
    rt_rdunlock(sys);
}
