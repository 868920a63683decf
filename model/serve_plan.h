/*
 * serve_plan.h — the per-iteration plan a tensor-parallel group's leader
 * hands its followers: the sequence operations it did since the last plan
 * (open, close, truncate, in order, so every rank gets the same slot ids)
 * and the batch of the next forward (each entry's sequence, its new tokens,
 * whether every row's hidden state is kept).  Every rank of the group must
 * call its model context with the same arguments in the same order
 * (model.h, "Tensor parallelism"); a follower that applies the leader's
 * plans in order does exactly that.
 *
 * Wire form (int32, host order — the ranks of a group run the same binary
 * on the same architecture):
 *   [0] SERVE_PLAN_VERSION  [1] kind  [2] n_ops  [3] n_entries  [4] n_tokens
 *   n_ops x (op, a, b)           open: a = the slot it got; close a;
 *                                truncate a to b positions
 *   n_entries x (seq, n, want)   n >= 1 tokens; want 0 or 1
 *   n_tokens token ids           the entries' tokens, in entry order
 * A decoder refuses anything else: another version, an unknown kind or op,
 * counts that are negative, more entries than it has room for, a length
 * that is not exactly the header's, entry lengths that do not add up to
 * n_tokens.
 *
 * Transport — DECISION: the plan stays on MPI (cluster/mpi_group.h sends
 * it point-to-point on the group's communicator, every follower
 * acknowledging it), it does not ride the actor wire.  Why:
 *   - it is on the critical path of every iteration, i.e. of every
 *     generated token of every sequence: an MPI message between ranks costs
 *     microseconds (shared memory or the fabric the collectives already
 *     use), the actor wire costs a protobuf envelope, a ZeroMQ hop and a
 *     mailbox turn on each side — tens to hundreds of microseconds, paid
 *     per token, for a decode step that takes about a millisecond on small
 *     models;
 *   - it is the input of the forward's collectives, not control: the batch's
 *     token ids and the KV slot operations that must precede the
 *     all-reduces, in the same order on every rank.  On the same
 *     communicator it is ordered with the tensors it feeds, and a follower
 *     whose thread waits in MPI does not also need its mailbox served
 *     between plans;
 *   - the acknowledgement tells the leader every follower is alive before
 *     it enters a collective (a dead peer on shared memory would leave it
 *     waiting there forever); the cluster's failure detector (heartbeats on
 *     the actor wire) is consulted while it waits.
 * Control — stats, load, unload, shutdown, the LOAD commit — stays on the
 * actor wire (DESIGN.md: control never rides on MPI).  The encoding here
 * knows nothing of MPI: were the transport to change, only the sender and
 * the receiver would.
 */
#ifndef LLMOS_MODEL_SERVE_PLAN_H
#define LLMOS_MODEL_SERVE_PLAN_H

#include "model/model.h"

#include <stddef.h>
#include <stdint.h>

#define SERVE_PLAN_VERSION 1
#define SERVE_PLAN_HEADER 5 /* int32 words before the ops */

typedef enum serve_plan_kind {
    SERVE_PLAN_FORWARD = 1, /* apply the ops, run the batch */
    SERVE_PLAN_STOP = 2,    /* the group stops serving this model: leave the plan loop */
} serve_plan_kind_t;

typedef enum serve_op {
    SERVE_OP_OPEN = 1,  /* model_seq_open gave slot a */
    SERVE_OP_CLOSE = 2, /* model_seq_close(a) */
    SERVE_OP_TRUNC = 3, /* model_seq_truncate(a, b) */
} serve_op_t;

typedef struct serve_plan {
    int kind; /* serve_plan_kind_t */
    int n_ops;
    const int32_t *ops; /* 3 per op: op, a, b */
    int n_entries;
    model_batch_entry_t *entries; /* [n_entries] */
    uint8_t *want;                /* [n_entries]: 1 = every row's hidden state (model_ctx_forward_rows) */
    int n_tokens;                 /* sum of the entries' n_tokens */
} serve_plan_t;

/* The most int32 words a plan of a core with max_seqs slots and a token
 * budget of token_budget rows can take (ops included; see serve.c for the
 * bound on the ops between two plans). */
size_t serve_plan_max_words(int max_seqs, int token_budget);

/* The most ops (3 words each) a leader may log between two plans. */
int serve_plan_max_ops(int max_seqs);

/* Encodes p into buf (cap words); *n = words written.  LLMOS_ETOOBIG when
 * cap is too small, LLMOS_EINVAL when p is inconsistent (counts, an
 * entry without tokens, n_tokens not their sum); nothing is written then. */
int serve_plan_encode(const serve_plan_t *p, int32_t *buf, size_t cap, size_t *n, llmos_error_t *err);

/* Decodes buf (n words) into p.  p->entries and p->want must have room for
 * max_entries entries (the caller's); p->ops and the entries' tokens then
 * point into buf (borrowed: valid while buf is).  Errors (LLMOS_EFORMAT,
 * the message naming the field and its word offset): see the wire form. */
int serve_plan_decode(const int32_t *buf, size_t n, int max_entries, serve_plan_t *p, llmos_error_t *err);

/* Applies a decoded FORWARD plan to a context, as a follower does: the ops
 * in order (an open must give the slot the leader got), then the forward
 * (model_ctx_forward_rows with p->want).  0; LLMOS_EFORMAT when an op does
 * not reproduce on this context (the slot differs, an unknown sequence);
 * LLMOS_EUNAVAILABLE when the forward's collectives failed.  A forward
 * refused for its arguments is not an error here: the leader refused the
 * same batch and answers its requests. */
int serve_plan_apply(model_ctx_t *c, const serve_plan_t *p, llmos_error_t *err);

#endif
