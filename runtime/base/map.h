/*
 * map.h — the hash map the project shares, and its hash functions.
 *
 * Keys are either 64-bit integers (LLMOS_MAP_U64: actor ids, graph ids) or
 * byte strings of any length, NULs and non-UTF-8 included (LLMOS_MAP_STR:
 * names, labels, n-grams; hashed with 64-bit FNV-1a).  Each entry carries a
 * value of val_size bytes (0 makes a set) that the map zeroes on insert and
 * the caller reads and writes through the pointer it gets.
 *
 * Layout (why it looks like this): the entries sit in one dense array in
 * insertion order (key header + value, 8-byte aligned), and an open-
 * addressing index of 8-byte slots (entry number + the hash's top 32 bits,
 * linear probing, at most half full) points into it.  A miss is decided in
 * the slot array alone, most hits touch one slot and one entry, iteration
 * is a walk over a dense array, and string keys live back to back in one
 * arena ([u32 length][bytes][NUL]) instead of one allocation each.
 * Removal takes an entry out of the index without tombstones (backward
 * shift) and moves the last entry into its place, so positions are stable
 * only while nothing is removed; walk positions downwards to remove while
 * iterating.  Key bytes of removed entries are reclaimed when they are more
 * than half the arena.
 *
 * Lifetimes: value and key pointers stay valid until the next put, remove
 * or clear on the map (put may move the arrays; remove moves the last
 * entry).  Limits: fewer than 2^32 - 1 entries; a key under 4 GiB.
 * Errors: LLMOS_EINVAL (bad kind, or a value over 64 KiB), LLMOS_ENOMEM
 * (allocation failed, or the entry limit), LLMOS_ETOOBIG (a key of 4 GiB or
 * more), LLMOS_ENOTFOUND (remove of a key not there).
 * Thread-safety: none inside; readers may share a map that nobody writes
 * (look-ups do not modify it), a writer needs the map to itself.
 */
#ifndef LLMOS_RUNTIME_BASE_MAP_H
#define LLMOS_RUNTIME_BASE_MAP_H

#include <stddef.h>
#include <stdint.h>

/* ---- hash functions ---- */

#define LLMOS_FNV1A_SEED 0xcbf29ce484222325ULL

/* 64-bit FNV-1a of p[0..n) continuing from h (LLMOS_FNV1A_SEED to start),
 * so a hash can run over several pieces. */
static inline uint64_t llmos_hash_fnv1a_more(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

/* 64-bit FNV-1a of p[0..n). */
static inline uint64_t llmos_hash_fnv1a(const void *p, size_t n) {
    return llmos_hash_fnv1a_more(LLMOS_FNV1A_SEED, p, n);
}

/* A 64-bit mix of an integer key (the splitmix64 finalizer): sequential ids
 * spread over every bit. */
static inline uint64_t llmos_hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* ---- the map ---- */

typedef enum llmos_map_keys { LLMOS_MAP_U64 = 1, LLMOS_MAP_STR = 2 } llmos_map_keys_t;

typedef struct llmos_map {
    llmos_map_keys_t keys;
    size_t val_size;     /* bytes of value per entry */
    size_t head;         /* bytes of key header per entry (8 or 16) */
    size_t stride;       /* bytes per entry: head + val_size rounded up to 8 */
    unsigned char *ents; /* [cap] entries; [0, n) in use */
    size_t n, cap;
    uint64_t *slots; /* [nslots]: 0 empty, else (hash >> 32) << 32 | entry + 1 */
    size_t nslots;   /* 0 or a power of two */
    char *arena;     /* string keys (LLMOS_MAP_STR) */
    size_t arena_len, arena_cap, arena_dead;
} llmos_map_t;

/* Makes an empty map (allocates nothing yet).  LLMOS_EINVAL for a kind
 * other than LLMOS_MAP_U64 / LLMOS_MAP_STR or val_size over 65536. */
int llmos_map_init(llmos_map_t *m, llmos_map_keys_t keys, size_t val_size);
/* Frees everything; m stays usable, empty, with the same kind and value
 * size (a zeroed, never initialised map stays zeroed). */
void llmos_map_deinit(llmos_map_t *m);
/* Removes every entry and keeps the memory. */
void llmos_map_clear(llmos_map_t *m);
/* Room for n entries in all without growing. */
int llmos_map_reserve(llmos_map_t *m, size_t n);
/* Entries in the map. */
size_t llmos_map_count(const llmos_map_t *m);

/* LLMOS_MAP_U64.  get: the value of key, NULL when absent.  put: *val (may
 * be NULL) gets the value of key, inserted zeroed when new; *added (may be
 * NULL) says whether it was.  remove: 0 or LLMOS_ENOTFOUND. */
void *llmos_map_u64_get(const llmos_map_t *m, uint64_t key);
int llmos_map_u64_put(llmos_map_t *m, uint64_t key, void **val, int *added);
int llmos_map_u64_remove(llmos_map_t *m, uint64_t key);

/* LLMOS_MAP_STR: the same with the key key[0..n) (key may be NULL when n is
 * 0: the empty key is a key like any other).  The map keeps its own copy. */
void *llmos_map_str_get(const llmos_map_t *m, const void *key, size_t n);
int llmos_map_str_put(llmos_map_t *m, const void *key, size_t n, void **val, int *added);
int llmos_map_str_remove(llmos_map_t *m, const void *key, size_t n);

/* Entries by position, 0 <= i < llmos_map_count (insertion order while
 * nothing has been removed).  val_at: the value.  u64_key_at: the key
 * (LLMOS_MAP_U64).  str_key_at: the key's bytes, NUL-terminated, *n (may be
 * NULL) its length (LLMOS_MAP_STR).  index_of: the position of a value
 * pointer this map returned.  remove_at: removes entry i (the last entry
 * moves to i). */
void *llmos_map_val_at(const llmos_map_t *m, size_t i);
uint64_t llmos_map_u64_key_at(const llmos_map_t *m, size_t i);
const char *llmos_map_str_key_at(const llmos_map_t *m, size_t i, size_t *n);
size_t llmos_map_index_of(const llmos_map_t *m, const void *val);
void llmos_map_remove_at(llmos_map_t *m, size_t i);

#endif
