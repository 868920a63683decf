/*
 * graph_internal.h — what the graph's actors share: the front actor
 * "graph" and its readers (graph_actor.c) and the writer (graph_writer.c,
 * loads).  One store handle for the process (LMDB allows one environment
 * handle per process; it is thread-safe), the actors' addresses, and which
 * readers are busy.  Not for other rooms.
 */
#ifndef LLMOS_ACTORS_GRAPH_INTERNAL_H
#define LLMOS_ACTORS_GRAPH_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "graph/store.h"
#include "runtime/actor.h"

#define GRAPH_READERS 4 /* pinned reader actors: requests that run at once */

struct graph_shared;
typedef struct graph_reader_slot {
    struct graph_shared *sh;
    int index;
} graph_reader_slot_t;

typedef struct graph_shared {
    graph_store_t *store; /* owned: closed by the last actor to end */
    int writable;         /* 0: opened read-only (loads answer LLMOS_EPERM) */
    uint64_t max_result_bytes; /* cap on one answer's text (actors_graph_opts_t) */
    atomic_int refs;      /* actors holding this struct */
    rt_ref_t writer;      /* the writer actor (by id) */
    int nreaders;         /* reader actors spawned */
    rt_ref_t readers[GRAPH_READERS];
    atomic_int busy[GRAPH_READERS];           /* set by the front when it hands reader i a request,
                                                 cleared by reader i when its mailbox is empty */
    graph_reader_slot_t slots[GRAPH_READERS]; /* the readers' init arguments */
} graph_shared_t;

/* Drops one reference; the last one closes the store and frees sh. */
void graph_shared_release(graph_shared_t *sh);

/* Replies to msg (same type) with the packed message m; an error reply
 * (LLMOS_ENOMEM) when there is no memory for it. */
void graph_reply_packed(rt_ctx_t *ctx, const rt_msg_t *msg, const ProtobufCMessage *m);

/* The writer actor's definition (graph_writer.c): arg = graph_shared_t *,
 * whose reference it takes over. */
extern const rt_actor_def_t graph_writer_def;

#endif
