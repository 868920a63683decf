/* map.c — the hash map of map.h.
 *
 * An entry starts with its key header: LLMOS_MAP_U64 {u64 key},
 * LLMOS_MAP_STR {u64 hash, u64 arena offset}; the value follows.  A slot
 * holds the entry number + 1 in its low 32 bits and the top 32 bits of the
 * key's hash above, so most probes that do not match are rejected without
 * touching the entry. */
#include "runtime/base/map.h"

#include "runtime/base/err.h"

#include <stdlib.h>
#include <string.h>

#define VAL_MAX 65536
#define ENTRIES_MAX ((size_t)UINT32_MAX - 1)
#define ARENA_SLACK 4096 /* reclaim removed key bytes only beyond this */

static uint64_t *ent_head(const llmos_map_t *m, size_t i) {
    return (uint64_t *)(void *)(m->ents + i * m->stride);
}

static uint64_t ent_hash(const llmos_map_t *m, size_t i) {
    const uint64_t *h = ent_head(m, i);
    return m->keys == LLMOS_MAP_U64 ? llmos_hash_u64(h[0]) : h[0];
}

static const char *ent_key(const llmos_map_t *m, size_t i, uint32_t *n) {
    const char *p = m->arena + ent_head(m, i)[1];
    memcpy(n, p, sizeof *n);
    return p + sizeof *n;
}

int llmos_map_init(llmos_map_t *m, llmos_map_keys_t keys, size_t val_size) {
    memset(m, 0, sizeof *m);
    if ((keys != LLMOS_MAP_U64 && keys != LLMOS_MAP_STR) || val_size > VAL_MAX) return LLMOS_EINVAL;
    m->keys = keys;
    m->val_size = val_size;
    m->head = keys == LLMOS_MAP_U64 ? 8 : 16;
    m->stride = m->head + ((val_size + 7) & ~(size_t)7);
    return 0;
}

void llmos_map_deinit(llmos_map_t *m) {
    free(m->ents);
    free(m->slots);
    free(m->arena);
    llmos_map_keys_t keys = m->keys;
    size_t val_size = m->val_size;
    memset(m, 0, sizeof *m);
    /* still usable: the kind and value size are kept */
    if (keys) llmos_map_init(m, keys, val_size);
}

void llmos_map_clear(llmos_map_t *m) {
    m->n = 0;
    if (m->slots) memset(m->slots, 0, m->nslots * sizeof *m->slots);
    m->arena_len = m->arena_dead = 0;
}

size_t llmos_map_count(const llmos_map_t *m) {
    return m->n;
}

/* ---- the index ---- */

static void slot_insert(uint64_t *slots, size_t nslots, uint64_t h, size_t i) {
    size_t mask = nslots - 1;
    size_t k = (size_t)h & mask;
    while (slots[k])
        k = (k + 1) & mask;
    slots[k] = (h >> 32) << 32 | (uint64_t)(i + 1);
}

static int index_grow(llmos_map_t *m, size_t want) {
    size_t ns = m->nslots ? m->nslots : 16;
    while (ns / 2 < want) {
        if (ns > SIZE_MAX / 2 / sizeof *m->slots) return LLMOS_ENOMEM;
        ns *= 2;
    }
    if (ns == m->nslots) return 0;
    uint64_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return LLMOS_ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        slot_insert(slots, ns, ent_hash(m, i), i);
    free(m->slots);
    m->slots = slots;
    m->nslots = ns;
    return 0;
}

static int ents_grow(llmos_map_t *m, size_t want) {
    if (want <= m->cap) return 0;
    if (want > ENTRIES_MAX) return LLMOS_ENOMEM;
    size_t cap = m->cap ? m->cap : 8;
    while (cap < want)
        cap = cap > ENTRIES_MAX / 2 ? ENTRIES_MAX : cap * 2;
    if (cap > SIZE_MAX / m->stride) return LLMOS_ENOMEM;
    unsigned char *e = realloc(m->ents, cap * m->stride);
    if (!e) return LLMOS_ENOMEM;
    m->ents = e;
    m->cap = cap;
    return 0;
}

int llmos_map_reserve(llmos_map_t *m, size_t n) {
    if (!m->keys) return LLMOS_EINVAL;
    int rc = ents_grow(m, n);
    return rc ? rc : index_grow(m, n);
}

/* The slot of the entry matching (h, key), or of the empty slot ending the
 * probe (*found 0). */
static size_t probe(const llmos_map_t *m, uint64_t h, uint64_t ukey, const void *skey, size_t n, int *found) {
    size_t mask = m->nslots - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t k = (size_t)h & mask;; k = (k + 1) & mask) {
        uint64_t s = m->slots[k];
        if (!s) {
            *found = 0;
            return k;
        }
        if ((uint32_t)(s >> 32) != tag) continue;
        size_t i = (size_t)(uint32_t)s - 1;
        const uint64_t *e = ent_head(m, i);
        if (m->keys == LLMOS_MAP_U64) {
            if (e[0] != ukey) continue;
        } else {
            uint32_t len;
            const char *kp = ent_key(m, i, &len);
            if (e[0] != h || len != n || (n && memcmp(kp, skey, n) != 0)) continue;
        }
        *found = 1;
        return k;
    }
}

/* Takes slot k out of the index, shifting later members of its probe run
 * back so no probe is cut short. */
static void slot_delete(llmos_map_t *m, size_t k) {
    size_t mask = m->nslots - 1;
    size_t hole = k;
    for (size_t j = (k + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        size_t home = (size_t)ent_hash(m, (size_t)(uint32_t)m->slots[j] - 1) & mask;
        /* j may fill the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        m->slots[hole] = m->slots[j];
        hole = j;
    }
    m->slots[hole] = 0;
}

/* The slot pointing at entry i. */
static size_t slot_of(const llmos_map_t *m, size_t i) {
    size_t mask = m->nslots - 1;
    size_t k = (size_t)ent_hash(m, i) & mask;
    while ((size_t)(uint32_t)m->slots[k] != i + 1)
        k = (k + 1) & mask;
    return k;
}

/* ---- string key bytes ---- */

static int arena_put(llmos_map_t *m, const void *key, size_t n, uint64_t *off) {
    uint32_t len = (uint32_t)n;
    size_t need = sizeof len + n + 1;
    if (m->arena_len + need > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 1024;
        while (cap < m->arena_len + need) {
            if (cap > SIZE_MAX / 2) return LLMOS_ENOMEM;
            cap *= 2;
        }
        char *a = realloc(m->arena, cap);
        if (!a) return LLMOS_ENOMEM;
        m->arena = a;
        m->arena_cap = cap;
    }
    char *p = m->arena + m->arena_len;
    memcpy(p, &len, sizeof len);
    if (n) memcpy(p + sizeof len, key, n);
    p[sizeof len + n] = '\0';
    *off = m->arena_len;
    m->arena_len += need;
    return 0;
}

/* Copies the live keys into a fresh arena when removed ones are most of it;
 * a failed allocation just leaves the garbage in place. */
static void arena_compact(llmos_map_t *m) {
    if (m->arena_dead <= ARENA_SLACK || m->arena_dead * 2 <= m->arena_len) return;
    size_t live = m->arena_len - m->arena_dead;
    char *a = malloc(live ? live : 1);
    if (!a) return;
    size_t pos = 0;
    for (size_t i = 0; i < m->n; i++) {
        uint64_t *e = ent_head(m, i);
        uint32_t len;
        memcpy(&len, m->arena + e[1], sizeof len);
        size_t sz = sizeof len + len + 1;
        memcpy(a + pos, m->arena + e[1], sz);
        e[1] = pos;
        pos += sz;
    }
    free(m->arena);
    m->arena = a;
    m->arena_len = m->arena_cap = live;
    m->arena_dead = 0;
}

/* ---- put / get / remove ---- */

static int put(llmos_map_t *m, uint64_t h, uint64_t ukey, const void *skey, size_t n, void **val,
               int *added) {
    if (added) *added = 0;
    if (m->n >= ENTRIES_MAX) {
        int found = 0;
        if (m->nslots) probe(m, h, ukey, skey, n, &found);
        if (!found) return LLMOS_ENOMEM;
    }
    int rc = index_grow(m, m->n + 1);
    if (rc) return rc;
    int found;
    size_t k = probe(m, h, ukey, skey, n, &found);
    if (found) {
        if (val) *val = (unsigned char *)ent_head(m, (size_t)(uint32_t)m->slots[k] - 1) + m->head;
        return 0;
    }
    if ((rc = ents_grow(m, m->n + 1))) return rc;
    uint64_t *e = ent_head(m, m->n);
    if (m->keys == LLMOS_MAP_U64) {
        e[0] = ukey;
    } else {
        e[0] = h;
        if ((rc = arena_put(m, skey, n, &e[1]))) return rc;
    }
    memset((unsigned char *)e + m->head, 0, m->stride - m->head);
    m->slots[k] = (h >> 32) << 32 | (uint64_t)(m->n + 1);
    m->n++;
    if (val) *val = (unsigned char *)e + m->head;
    if (added) *added = 1;
    return 0;
}

static void *get(const llmos_map_t *m, uint64_t h, uint64_t ukey, const void *skey, size_t n) {
    if (!m->n) return NULL;
    int found;
    size_t k = probe(m, h, ukey, skey, n, &found);
    return found ? (unsigned char *)ent_head(m, (size_t)(uint32_t)m->slots[k] - 1) + m->head : NULL;
}

void llmos_map_remove_at(llmos_map_t *m, size_t i) {
    if (i >= m->n) return;
    slot_delete(m, slot_of(m, i));
    if (m->keys == LLMOS_MAP_STR) {
        uint32_t len;
        ent_key(m, i, &len);
        m->arena_dead += sizeof len + len + 1;
    }
    size_t last = m->n - 1;
    if (i != last) {
        size_t k = slot_of(m, last);
        memcpy(ent_head(m, i), ent_head(m, last), m->stride);
        m->slots[k] = (m->slots[k] >> 32) << 32 | (uint64_t)(i + 1);
    }
    m->n--;
    if (m->keys == LLMOS_MAP_STR) {
        if (!m->n)
            m->arena_len = m->arena_dead = 0;
        else
            arena_compact(m);
    }
}

void *llmos_map_u64_get(const llmos_map_t *m, uint64_t key) {
    if (m->keys != LLMOS_MAP_U64) return NULL;
    return get(m, llmos_hash_u64(key), key, NULL, 0);
}

int llmos_map_u64_put(llmos_map_t *m, uint64_t key, void **val, int *added) {
    if (m->keys != LLMOS_MAP_U64) return LLMOS_EINVAL;
    return put(m, llmos_hash_u64(key), key, NULL, 0, val, added);
}

int llmos_map_u64_remove(llmos_map_t *m, uint64_t key) {
    void *v = llmos_map_u64_get(m, key);
    if (!v) return LLMOS_ENOTFOUND;
    llmos_map_remove_at(m, llmos_map_index_of(m, v));
    return 0;
}

void *llmos_map_str_get(const llmos_map_t *m, const void *key, size_t n) {
    if (m->keys != LLMOS_MAP_STR || n > UINT32_MAX) return NULL;
    return get(m, llmos_hash_fnv1a(key, n), 0, key, n);
}

int llmos_map_str_put(llmos_map_t *m, const void *key, size_t n, void **val, int *added) {
    if (m->keys != LLMOS_MAP_STR) return LLMOS_EINVAL;
    if (n > UINT32_MAX) {
        if (added) *added = 0;
        return LLMOS_ETOOBIG;
    }
    return put(m, llmos_hash_fnv1a(key, n), 0, key, n, val, added);
}

int llmos_map_str_remove(llmos_map_t *m, const void *key, size_t n) {
    void *v = llmos_map_str_get(m, key, n);
    if (!v) return LLMOS_ENOTFOUND;
    llmos_map_remove_at(m, llmos_map_index_of(m, v));
    return 0;
}

/* ---- positions ---- */

void *llmos_map_val_at(const llmos_map_t *m, size_t i) {
    return i < m->n ? (unsigned char *)ent_head(m, i) + m->head : NULL;
}

uint64_t llmos_map_u64_key_at(const llmos_map_t *m, size_t i) {
    return i < m->n && m->keys == LLMOS_MAP_U64 ? ent_head(m, i)[0] : 0;
}

const char *llmos_map_str_key_at(const llmos_map_t *m, size_t i, size_t *n) {
    if (i >= m->n || m->keys != LLMOS_MAP_STR) {
        if (n) *n = 0;
        return NULL;
    }
    uint32_t len;
    const char *k = ent_key(m, i, &len);
    if (n) *n = len;
    return k;
}

size_t llmos_map_index_of(const llmos_map_t *m, const void *val) {
    return (size_t)((const unsigned char *)val - m->head - m->ents) / m->stride;
}
