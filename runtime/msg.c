/*
 * msg.c — rt_msg_t construction: one allocation holding the header, the
 * payload and copies of every string, so a message is freed at once and
 * crosses threads as a single pointer.
 *
 * Layout: [slot header][rt_msg_t][payload][to.name\0][from.name\0][error\0][tenant\0]
 *
 * Small messages come from a pool of fixed-size slots.  Messages are made on
 * one thread and freed on another (the consumer), which is malloc's worst
 * case: every free locks the producer's arena and the arena's heap grows
 * and shrinks.  The pool instead keeps a per-thread free list and moves
 * slots between threads in batches through one mutex-protected stack, so a
 * message costs a mutex operation only once per RT_POOL_BATCH.  The global
 * stack is capped; the excess goes back to malloc.  Sanitizer builds skip
 * the pool so every message is its own allocation for ASan to watch.
 */
#include "runtime/rt_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RT_POOL_BATCH 64
#define RT_POOL_MAX_BYTES (16u << 20) /* per class: what the global stack keeps at most */

static const size_t pool_slot_size[] = {256, 1024};
enum { RT_POOL_CLASSES = 2, RT_NOT_POOLED = 255 };

typedef union slot {
    struct {
        union slot *next;       /* free: next slot in this batch / thread list */
        union slot *next_batch; /* free, first of a batch: the next batch */
        uint32_t cls;           /* pool class or RT_NOT_POOLED */
    } h;
    max_align_t align_;
} slot_t;

typedef struct pool_class {
    pthread_mutex_t mu;
    slot_t *batches;  /* stack of full batches */
    size_t nbatches;
} pool_class_t;

static pool_class_t pool[RT_POOL_CLASSES] = {{PTHREAD_MUTEX_INITIALIZER, NULL, 0},
                                            {PTHREAD_MUTEX_INITIALIZER, NULL, 0}};

typedef struct pool_cache {
    slot_t *head;
    uint32_t n;
} pool_cache_t;

static RT_TLS pool_cache_t tls_cache[RT_POOL_CLASSES];
static RT_TLS bool tls_cache_registered;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

/* Gives a batch (a linked list of RT_POOL_BATCH slots) to the global stack,
 * or back to malloc when the stack is full. */
static void pool_push_batch(int cls, slot_t *batch) {
    pool_class_t *p = &pool[cls];
    pthread_mutex_lock(&p->mu);
    if (p->nbatches < RT_POOL_MAX_BYTES / (RT_POOL_BATCH * pool_slot_size[cls])) {
        batch->h.next_batch = p->batches;
        p->batches = batch;
        p->nbatches++;
        batch = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    while (batch) {
        slot_t *next = batch->h.next;
        free(batch);
        batch = next;
    }
}

/* At thread exit: hand the thread's cached slots back. */
static void cache_flush(void *unused) {
    (void)unused;
    for (int c = 0; c < RT_POOL_CLASSES; c++) {
        pool_cache_t *tc = &tls_cache[c];
        if (tc->head) pool_push_batch(c, tc->head);
        tc->head = NULL;
        tc->n = 0;
    }
}

static void cache_key_make(void) { (void)pthread_key_create(&cache_key, cache_flush); }

/* So the thread's cache is handed back when the thread exits. */
static inline void cache_register(void) {
    if (tls_cache_registered) return;
    pthread_once(&cache_key_once, cache_key_make);
    (void)pthread_setspecific(cache_key, tls_cache);
    tls_cache_registered = true;
}

#ifdef LLMOS_SANITIZE
#define RT_POOL_ON 0
#else
#define RT_POOL_ON 1
#endif

static slot_t *slot_get(size_t total) {
    for (int c = 0; RT_POOL_ON && c < RT_POOL_CLASSES; c++) {
        if (total > pool_slot_size[c]) continue;
        pool_cache_t *tc = &tls_cache[c];
        if (!tc->head) {
            cache_register();
            pool_class_t *p = &pool[c];
            pthread_mutex_lock(&p->mu);
            slot_t *batch = p->batches;
            if (batch) {
                p->batches = batch->h.next_batch;
                p->nbatches--;
            }
            pthread_mutex_unlock(&p->mu);
            if (batch) {
                tc->head = batch;
                tc->n = RT_POOL_BATCH;
            }
        }
        slot_t *s = tc->head;
        if (s) {
            tc->head = s->h.next;
            tc->n--;
        } else {
            s = malloc(pool_slot_size[c]);
            if (!s) return NULL;
        }
        s->h.cls = (uint32_t)c;
        return s;
    }
    slot_t *s = malloc(total);
    if (s) s->h.cls = RT_NOT_POOLED;
    return s;
}

static void slot_put(slot_t *s) {
    if (s->h.cls == RT_NOT_POOLED) {
        free(s);
        return;
    }
    int c = (int)s->h.cls;
    pool_cache_t *tc = &tls_cache[c];
    cache_register();
    s->h.next = tc->head;
    tc->head = s;
    if (++tc->n == 2 * RT_POOL_BATCH) {
        /* keep one batch here, give the other away */
        slot_t *cut = tc->head;
        for (int i = 1; i < RT_POOL_BATCH; i++) cut = cut->h.next;
        slot_t *batch = tc->head;
        tc->head = cut->h.next;
        cut->h.next = NULL;
        tc->n -= RT_POOL_BATCH;
        pool_push_batch(c, batch);
    }
}

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
    size_t total = sizeof(slot_t) + sizeof(rt_msg_t) + len + str_size(to_name) + str_size(from_name) +
                   str_size(init->error) + str_size(init->tenant);
    slot_t *slot = slot_get(total);
    if (!slot) return NULL;
    rt_msg_t *m = (rt_msg_t *)(slot + 1);
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

void rt_msg_free(rt_msg_t *msg) {
    if (msg) slot_put((slot_t *)msg - 1);
}
