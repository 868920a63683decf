/*
 * wire.h — rt_msg_t <-> protobuf Envelope, and the node-to-node batch frame.
 *
 * This is the only place that knows how a message looks on the wire
 * (protos/llmos/envelope.proto, cluster.proto).  Decoding is defensive: the
 * caller gives the frame cap, every length is checked against it and against
 * the bytes actually present BEFORE protobuf-c sees them, and failures name
 * the field or offset.  Nothing here touches a socket.
 *
 * Hot path: encoding writes into a caller-owned growable buffer (no
 * allocation once it has grown); decoding unpacks into a caller-owned arena
 * (cl_scratch_t) that is reset per envelope, then makes the one rt_msg_new
 * allocation the runtime needs.
 *
 * Thread-safety: functions are reentrant; a llmos_buf_t / cl_scratch_t belongs
 * to one thread at a time.
 */
#ifndef LLMOS_CLUSTER_WIRE_H
#define LLMOS_CLUSTER_WIRE_H

#include "runtime/actor.h"
#include "runtime/base/buf.h"
#include "runtime/base/err.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define CL_MAX_FRAME_DEFAULT ((size_t)64 << 20)
/* Client pseudo node ids have this bit set; real node ids never do. */
#define CL_CLIENT_NODE_BIT (UINT64_C(1) << 63)

/* Arena for protobuf-c unpacking: small allocations come from a fixed block,
 * large ones from malloc and are freed at reset.  _init/_deinit. */
typedef struct cl_scratch {
    uint8_t *block;
    size_t cap, used;
    void **big;        /* malloc'd overflow pieces */
    size_t nbig, capbig;
} cl_scratch_t;

int cl_scratch_init(cl_scratch_t *s, size_t block_bytes);
void cl_scratch_deinit(cl_scratch_t *s);
void cl_scratch_reset(cl_scratch_t *s);
/* A protobuf-c allocator drawing from s (frees are no-ops until reset). */
ProtobufCAllocator cl_scratch_allocator(cl_scratch_t *s);

/* Bytes of msg's Envelope serialization.  from.node 0 is written as
 * self_node (the receiver must know who sent it). */
size_t cl_envelope_size(const rt_msg_t *msg, uint64_t self_node);
/* Appends the Envelope to b.  LLMOS_ENOMEM. */
int cl_envelope_append(llmos_buf_t *b, const rt_msg_t *msg, uint64_t self_node);
/* Appends the Envelope as one `envelopes` field of a Batch. LLMOS_ENOMEM. */
int cl_batch_append(llmos_buf_t *b, const rt_msg_t *msg, uint64_t self_node);

/* Decodes one Envelope frame of len bytes into a new message (caller owns
 * *out; free with rt_msg_free or pass it on).  Errors:
 *   LLMOS_ETOOBIG  len > max_frame (checked before anything is read);
 *   LLMOS_EFORMAT  not a valid Envelope (err says where);
 *   LLMOS_ENOMEM. */
int cl_envelope_decode(const uint8_t *data, size_t len, size_t max_frame, cl_scratch_t *scratch,
                       rt_msg_t **out, llmos_error_t *err);

/* Iterates a Batch frame: on each call returns 1 and sets *env and *env_len to the
 * next envelope's bytes (borrowed from data), 0 at the end, or LLMOS_EFORMAT
 * when the framing is broken (wrong tag, length past the end, length over
 * max_frame).  *pos starts at 0. */
int cl_batch_next(const uint8_t *data, size_t len, size_t *pos, size_t max_frame, const uint8_t **env,
                  size_t *env_len, llmos_error_t *err);

/* Client pseudo node id for a ZeroMQ routing id of at most 7 bytes:
 * bit 63 set, bits 56..62 the length, bits 0..55 the bytes.  Returns 0 when
 * the routing id is longer (such clients cannot be replied to by id). */
uint64_t cl_client_node_from_rid(const uint8_t *rid, size_t len);
/* The reverse; returns the routing id length (0 if node is not a client id). */
size_t cl_client_node_to_rid(uint64_t node, uint8_t rid[7]);

#endif
