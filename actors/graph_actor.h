/*
 * graph_actor.h — the `graph` actor: the knowledge graph (graph/) served
 * over messages (protos/llmos/graph.proto).
 *
 *   GRAPH_MSG_QUERY  GraphQueryRequest -> GraphResult (SPARQL results, TSV/JSON)
 *   GRAPH_MSG_LINK   GraphLinkRequest  -> GraphResult (mentions, facts, sentences)
 *   GRAPH_MSG_NEIGHBORS, GRAPH_MSG_PATH  GraphWalkRequest -> GraphResult (N-Triples)
 *   GRAPH_MSG_STATS  GraphStatsRequest -> GraphResult (counts, per predicate)
 *   GRAPH_MSG_LOAD   GraphLoadRequest  -> GraphLoadResult (chunked loads, one
 *                    transaction each; run by the writer actor, graph_writer.c)
 *
 * Thin: it decodes the request, runs the graph library on a fresh read
 * snapshot and replies with the text `llmos-graph` would print.  "graph"
 * itself only forwards: reads to one of several pinned readers (their own
 * threads: LMDB reads may take long; an idle one is chosen, so a long
 * query does not hold the others up), loads to one pinned writer, so a long
 * load never holds a query up either (LMDB: many readers, one writer).  A
 * query stops at the earlier of the envelope's deadline and the
 * request's timeout and then answers LLMOS_ETIMEDOUT.  An answer's text is
 * capped (max_result_bytes): a query, walk or stats answer that grows past
 * it stops at once and answers LLMOS_ETOOBIG naming the cap and the rows so
 * far, so memory stays bounded whatever the query.  When the node shuts
 * down (rt_system_destroy), a running query stops within 256 scanned
 * triples (LLMOS_ECANCELED), so shutdown never waits for it.  Bad requests
 * (an undecodable payload, a SPARQL syntax error with line and column) get
 * an error reply; the actor goes on.
 */
#ifndef LLMOS_ACTORS_GRAPH_ACTOR_H
#define LLMOS_ACTORS_GRAPH_ACTOR_H

#include "runtime/actor.h"

#include <stdint.h>

#define ACTORS_GRAPH_MAX_RESULT_DEFAULT ((uint64_t)16 << 20) /* well under the 64 MiB frame cap */

typedef struct actors_graph_opts {
    uint64_t max_result_bytes; /* cap on one answer's text (config graph_max_result_bytes);
                                  0 = ACTORS_GRAPH_MAX_RESULT_DEFAULT */
} actors_graph_opts_t;

/* Opens the store in directory `db` (read-write; read-only when this
 * process may not write it, and then loads are refused with LLMOS_EPERM),
 * spawns the writer and the readers (pinned, anonymous: requests reach them
 * through "graph") and the front registered as "graph".  They own the store
 * from then on; the last to stop closes it.  opts may be NULL (defaults).
 * Errors: those of graph_store_open and rt_spawn. */
int actors_graph_start(rt_system_t *sys, const char *db, const actors_graph_opts_t *opts, llmos_error_t *err);

#endif
