/*
 * client_internal.h — what client.c (the connection) shares with the
 * library's other files: the one error setter (gen.c, classify.c, model.c,
 * graph.c, jobs.c) and the asynchronous request table (jobs.c:
 * llmos_client_submit_async / llmos_client_poll).  Not installed, and not
 * for the `llmos` CLI or jobs_json.c: they use include/llmos/client.h only.
 *
 * client_async_send sends an ask without waiting and takes one of the
 * handle's max_inflight slots; client_async_collect hands finished slots
 * (a reply, or a timeout) to a callback in completion order and frees them.
 * Both take the handle's lock, like every call (see client.c's header).
 */
#ifndef LLMOS_CLIENT_INTERNAL_H
#define LLMOS_CLIENT_INTERNAL_H

#include "llmos/client.h"
#include "llmos/envelope.pb-c.h"

/* Fills *err (may be NULL) with code and a printf-style message; returns
 * code.  The one error setter of the client library's files. */
int client_err(llmos_client_error_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One finished request: the i-th of this collection; env is the reply
 * (borrowed for the call) or NULL when the request timed out. */
typedef void (*client_async_fn)(void *ctx, size_t i, uint64_t token, void *user, int kind,
                                const Llmos__Envelope *env);

/* Sends `type` to `actor` as an ask with its own deadline (timeout_ms, 0 =
 * the handle's default); *token identifies it.  kind and user come back
 * with its completion.  Errors: EOVERLOADED (every slot taken, or the
 * socket's queue full), EINVAL, ETOOBIG, EIO, ENOMEM. */
int client_async_send(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      uint32_t timeout_ms, int kind, void *user, uint64_t *token, llmos_client_error_t *err);

/* Calls fn for up to max finished requests; waits up to timeout_ms for the
 * first one, and not at all when nothing is in flight.  *n = how many.
 * Errors: EINVAL, EIO (the socket failed). */
int client_async_collect(llmos_client_t *c, uint32_t timeout_ms, client_async_fn fn, void *ctx, size_t max,
                         size_t *n, llmos_client_error_t *err);

/* Requests sent and not yet collected. */
uint32_t client_async_inflight(llmos_client_t *c);

#endif
