/*
 * graph_actor.h — the `graph` actor: the knowledge graph (graph/) served
 * over messages (protos/llmos/graph.proto).
 *
 *   GRAPH_MSG_QUERY  GraphQueryRequest -> GraphResult (SPARQL results, TSV/JSON)
 *   GRAPH_MSG_LINK   GraphLinkRequest  -> GraphResult (mentions, facts, sentences)
 *   GRAPH_MSG_NEIGHBORS, GRAPH_MSG_PATH  GraphWalkRequest -> GraphResult (N-Triples)
 *   GRAPH_MSG_STATS  GraphStatsRequest -> GraphResult (counts, per predicate)
 *
 * Thin: it decodes the request, runs the graph library on a fresh read
 * snapshot and replies with the text `llmos-graph` would print.  The actor
 * is pinned (its own thread: LMDB reads may take long) and holds the store
 * handle; a query stops at the earlier of the envelope's deadline and the
 * request's timeout and then answers LLMOS_ETIMEDOUT.  Bad requests (an
 * undecodable payload, a SPARQL syntax error with line and column) get an
 * error reply; the actor goes on.
 */
#ifndef LLMOS_ACTORS_GRAPH_ACTOR_H
#define LLMOS_ACTORS_GRAPH_ACTOR_H

#include "runtime/actor.h"

/* Opens the store in directory `db` (read-only: the node serves readers;
 * loads go through llmos-graph load) and spawns the actor registered as
 * "graph".  The actor owns the store from then on and closes it at
 * shutdown.  Errors: those of graph_store_open and rt_spawn. */
int actors_graph_start(rt_system_t *sys, const char *db, llmos_error_t *err);

#endif
