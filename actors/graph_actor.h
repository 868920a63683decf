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
 * request's timeout and then answers LLMOS_ETIMEDOUT.  Bad requests (an
 * undecodable payload, a SPARQL syntax error with line and column) get an
 * error reply; the actor goes on.
 */
#ifndef LLMOS_ACTORS_GRAPH_ACTOR_H
#define LLMOS_ACTORS_GRAPH_ACTOR_H

#include "runtime/actor.h"

/* Opens the store in directory `db` (read-write; read-only when this
 * process may not write it, and then loads are refused with LLMOS_EPERM),
 * spawns the writer and the readers (pinned, anonymous: requests reach them
 * through "graph") and the front registered as "graph".  They own the store
 * from then on; the last to stop closes it.  Errors: those of graph_store_open and rt_spawn. */
int actors_graph_start(rt_system_t *sys, const char *db, llmos_error_t *err);

#endif
