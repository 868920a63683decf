/*
 * model_shard.h — the model-shard actors: one pinned actor per rank serves a
 * model over messages (protos/llmos/model.proto).  The actor is an adapter:
 * what is served and how — requests, admission, continuous batching, KV
 * accounting, the tensor-parallel plan — is the serving core's
 * (model/serve.h); the MPI group is cluster/mpi_group.h's.
 *
 * Groups.  The ranks of the MPI world are cut into replicas of `tp`
 * consecutive ranks (MPI_Comm_split); a replica is one tensor-parallel
 * group.  Rank g of replica r registers "model/<r>/<g>"; the group's leader
 * (g = 0) also registers "model/<r>" and, for r = 0, "model".  Without MPI
 * (a plain llmosd) there is one replica of one rank.
 *
 * The leader owns the queue: it receives Generate / Embed / Score / Cancel /
 * Stats and hands them to its core; between messages it runs the core's
 * iterations, sending each iteration's plan to its followers over the
 * group's communicator (model/serve_plan.h: what a plan holds and why it
 * rides MPI), and answers with the core's results (GenerateChunk streams,
 * Generate / Embed / Score replies).  Followers run plans only.  Control
 * (stats, load, unload, shutdown) arrives as protobuf messages, never over
 * MPI: a LOAD to the leader becomes a LOAD ask to each follower actor,
 * which stages its slice next to the one it serves; the leader stages its
 * own and, when every rank staged, tells them to swap (MODEL_MSG_LOAD_COMMIT),
 * else to drop it (MODEL_MSG_LOAD_ABORT) — a failed load leaves the served
 * model serving.  Model names (--model, --tokenizer, --classifier, LOAD's
 * path, tokenizer, classifier) are found as given, else in the models
 * folder (runtime/base/paths.h llmos_path_find).
 *
 * Admission (model/serve.h): a request's worst-case KV blocks are reserved,
 * so a running request never runs out of cache; when slots or blocks are
 * short, new requests wait in the queue (back-pressure); past queue_limit
 * they are refused with LLMOS_EOVERLOADED ("overloaded: ... retry after N
 * ms").  Cancel and finish free the blocks at once.
 *
 * Classifier (--classifier DIR, model/serve_cls.h): a fine-tuned checkpoint
 * served with its body on every rank; a Score request without labels is a
 * Classify, prefilled and pooled like an embedding, answered by the leader
 * with the head's classes and softmax probabilities.
 *
 * A follower whose node the transport declares dead takes the group down:
 * the leader answers every request, queued and new, with LLMOS_EUNAVAILABLE
 * and stats say available = false.
 */
#ifndef LLMOS_ACTORS_MODEL_SHARD_H
#define LLMOS_ACTORS_MODEL_SHARD_H

#include "cluster/transport.h"
#include "runtime/actor.h"

#include <stdbool.h>

typedef struct actors_model_opts {
    const char *model;      /* llama2.c .bin or GGUF; NULL = no model actors (borrowed) */
    const char *tokenizer;  /* tokenizer.bin for llama2.c files (borrowed) */
    const char *classifier; /* a fine-tuned classifier's checkpoint folder (model/serve_cls.h);
                               model/tokenizer then default to its base model (borrowed) */
    int tp;                 /* ranks per replica; 0 = 1 */
    bool q8;                /* quantize to int8 at load */
    int max_seqs;           /* sequences in the batch at once; 0 = 32 */
    int kv_blocks;          /* KV pool blocks; 0 = max_seqs full-length sequences */
    int token_budget;       /* rows per iteration; 0 = 256 (at least max_seqs) */
    int queue_limit;        /* requests waiting for admission; 0 = 1024 */
    int threads;            /* model threads per rank; 0 = 1 */
} actors_model_opts_t;

/* If argv[*i] is one of the model flags (--model --tokenizer --tp --q8
 * --max-seqs --kv-blocks --token-budget --queue-limit --model-threads --classifier),
 * consumes it and its value (advancing *i) and returns 1; 0 when it is not
 * a model flag; LLMOS_EINVAL (message in err) for a missing or bad value.
 * Values are borrowed from argv. */
int actors_model_parse_flag(actors_model_opts_t *o, int argc, char **argv, int *i, llmos_error_t *err);

/* The usage lines of those flags, for llmosd --help. */
const char *actors_model_usage(void);

/* Loads this rank's part of the model and spawns its shard actor.  mpi_on:
 * MPI is initialised (the process may be one of several ranks); without it
 * tp must be 1.  Called on every rank with the same options.  tr is
 * borrowed (may be NULL: no peer-death detection).  Errors: LLMOS_EINVAL
 * (tp does not divide the world or the model's heads: the message says
 * which), LLMOS_ENOTFOUND (a name found nowhere: the message lists where
 * it looked), those of model_load and rt_spawn. */
int actors_model_start(rt_system_t *sys, cl_transport_t *tr, const actors_model_opts_t *o, bool mpi_on,
                       llmos_error_t *err);

#endif
