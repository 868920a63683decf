/*
 * node.h — the actors every llmosd node runs, whatever else it hosts:
 *
 *   node  PING -> PONG (same payload); STATUS -> NodeStatus (envelope.proto)
 *   echo  replies to every message with the same type and payload
 *   sink  counts the messages it receives (replies too: echo may answer to
 *         it); ACTORS_MSG_SINK_COUNT (an ask)
 *         is answered with the count (8 bytes, little-endian) and is not
 *         counted itself; ACTORS_MSG_SINK_RESET sets the count to 0
 *
 * echo and sink exist so real processes can be tested and benchmarked
 * (tests/cluster, bench/actor, the jobs benchmark later).
 */
#ifndef LLMOS_ACTORS_NODE_H
#define LLMOS_ACTORS_NODE_H

#include "cluster/transport.h"
#include "runtime/actor.h"

#include <stdint.h>

/* Test/benchmark message types (range 0xF00 of envelope.proto). */
enum {
    ACTORS_MSG_SINK_COUNT = 0xF01,
    ACTORS_MSG_SINK_RESET = 0xF02,
    ACTORS_MSG_BENCH = 0xF10, /* any payload; what echo and sink receive in benchmarks */
};

/* What the node actor reports.  Borrowed by the actors: it must outlive the
 * system (keep it in main's frame or static storage). */
typedef struct actors_node_env {
    rt_system_t *sys;
    cl_transport_t *transport; /* may be NULL (a node without a network) */
    const char *node_name;
    uint32_t workers;
    uint64_t start_ns;         /* llmos_now_ns() at start */
} actors_node_env_t;

/* Spawns `node`, `echo` and `sink` registered under those names.
 * Errors: those of rt_spawn (LLMOS_EEXIST if a name is taken). */
int actors_node_start(actors_node_env_t *env, llmos_error_t *err);

/* Fills a NodeStatus for env and packs it into a new buffer (*out, *len;
 * caller frees *out).  LLMOS_ENOMEM. */
int actors_node_status_pack(actors_node_env_t *env, uint8_t **out, size_t *len, llmos_error_t *err);

#endif
