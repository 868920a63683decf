/*
 * model_wire.h — the model service's messages (protos/llmos/model.proto)
 * to and from the serving core (model/serve.h): a Generate, Embed or Score
 * payload decoded into a serve_request_t, a core event packed as the
 * GenerateChunk / GenerateResult / EmbedResult / ScoreResult it answers
 * with, and the Cancel and ModelLoad payloads.  Pure functions, used by
 * the model-shard actor (model_shard.c, model_load.c): no actor state.
 *
 * Decoding checks what protobuf-c cannot: its strings are C strings, so
 * "a\0b" would silently be "a" — a string field holding a NUL byte is
 * refused, named (and indexed, for a repeated one).  Every error is
 * LLMOS_EINVAL with a message naming the payload or the field.
 */
#ifndef LLMOS_ACTORS_MODEL_WIRE_H
#define LLMOS_ACTORS_MODEL_WIRE_H

#include "model/serve.h"
#include "runtime/actor.h"

#include <stddef.h>
#include <stdint.h>

/* A decoded request: rq's strings and arrays borrow from the unpacked
 * message held here until actors_model_req_deinit. */
typedef struct actors_model_req {
    serve_request_t rq;
    serve_sampling_t sampling;
    void *pb; /* the unpacked protobuf-c message */
} actors_model_req_t;

/* Decodes msg's payload as the request of kind (GENERATE, EMBED, SCORE)
 * into out, with the envelope's correlation id, sender node and deadline.
 * Errors (out needs no deinit then): "generate: the payload (N bytes) is
 * not a GenerateRequest", "prompt: a NUL byte at offset K (text may not
 * hold NUL)", LLMOS_ENOMEM. */
int actors_model_req_decode(const rt_msg_t *msg, serve_kind_t kind, actors_model_req_t *out,
                            llmos_error_t *err);
void actors_model_req_deinit(actors_model_req_t *r);

/* The message type a request kind is answered with. */
uint32_t actors_model_reply_type(serve_kind_t kind);

/* Packs a CHUNK or DONE event as its message: *type, and the payload in
 * stack (cap bytes) when it fits, else malloc'd (the caller frees *buf when
 * it is not stack).  0 or LLMOS_ENOMEM. */
int actors_model_event_pack(const serve_event_t *ev, uint8_t *stack, size_t cap, uint32_t *type,
                            uint8_t **buf, size_t *len);

/* A CancelRequest: the correlation id (0 = none) and request id (NULL =
 * none; borrowed from *pb, freed with actors_model_pb_free).  Errors:
 * "cancel: the payload ...", "cancel: request_id: a NUL byte ...",
 * "cancel: give correlation_id or request_id". */
int actors_model_cancel_decode(const rt_msg_t *msg, uint64_t *corr, const char **request_id, void **pb,
                               llmos_error_t *err);

/* A ModelLoadRequest into l (tp_rank, tp_size untouched; strings borrowed
 * from *pb).  Errors: "the payload (N bytes) is not a ModelLoadRequest",
 * "path is empty (and no classifier given)", a NUL byte in path, tokenizer
 * or classifier. */
int actors_model_load_decode(const rt_msg_t *msg, serve_load_t *l, void **pb, llmos_error_t *err);

/* Frees what a *_decode left in *pb (NULL-safe; sets it to NULL). */
void actors_model_pb_free(void **pb);

#endif
