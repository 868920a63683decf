/*
 * llmos/client.h — libllmos-client: talk to an llmos node from any program.
 *
 * A client is a ZeroMQ DEALER connected to a node's ROUTER endpoint; every
 * request is one protobuf Envelope (protos/llmos/envelope.proto) and its
 * reply comes back on the same connection.  This header is the whole public
 * surface: it includes nothing of llmos's internals.
 *
 *   llmos_client_t *c;
 *   llmos_client_error_t err;
 *   if (llmos_client_connect("tcp://127.0.0.1:7070", NULL, &c, &err) != 0) { puts(err.msg); ... }
 *   uint64_t rtt_ns;
 *   llmos_client_ping(c, 1000, &rtt_ns, &err);
 *   llmos_client_destroy(&c);
 *
 * Errors: every function returns 0 or a negative status code (the values of
 * LLMOS_CLIENT_E*, which are llmos's project-wide codes) and fills *err (may
 * be NULL) with a message saying what went wrong.
 *
 * Thread-safety: a handle may be shared by threads; each call takes the
 * handle's lock for its whole duration, so calls on one handle run one at a
 * time (llmos_client_poll holds it while it waits, too).  For parallel requests use one handle per thread (handles are cheap:
 * one socket each; they share one ZeroMQ context per process).
 */
#ifndef LLMOS_CLIENT_H
#define LLMOS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (same values as llmos_err inside llmos). */
enum {
    LLMOS_CLIENT_OK = 0,
    LLMOS_CLIENT_EINVAL = -1,       /* bad argument */
    LLMOS_CLIENT_ENOMEM = -2,
    LLMOS_CLIENT_EIO = -3,          /* socket failure */
    LLMOS_CLIENT_EFORMAT = -4,      /* a reply that does not decode */
    LLMOS_CLIENT_ENOTFOUND = -5,    /* no such actor on the node */
    LLMOS_CLIENT_ETIMEDOUT = -6,    /* the node did not answer in time */
    LLMOS_CLIENT_EOVERLOADED = -7,
    LLMOS_CLIENT_ECANCELED = -8,    /* canceled (by the node, or by a callback) */
    LLMOS_CLIENT_EUNAVAILABLE = -9, /* node or peer down */
    LLMOS_CLIENT_ETOOBIG = -10,     /* over the frame cap */
    LLMOS_CLIENT_EUNKNOWNTYPE = -15,/* the actor does not handle that message type */
};

#define LLMOS_CLIENT_ERRMSG_MAX 512

typedef struct llmos_client_error {
    int code;                           /* 0 or an LLMOS_CLIENT_E* code */
    char msg[LLMOS_CLIENT_ERRMSG_MAX];  /* what went wrong */
} llmos_client_error_t;

typedef struct llmos_client llmos_client_t;

typedef struct llmos_client_opts {
    uint32_t timeout_ms;  /* default for calls given timeout 0; 0 = 5000 */
    size_t max_frame;     /* largest reply accepted; 0 = 64 MiB */
    const char *tenant;   /* sent with every request; NULL = none (copied) */
    uint32_t max_inflight; /* async requests in flight at once (llmos_client_submit_async);
                              0 = 1024, at most 1048576 */
} llmos_client_opts_t;

/* Creates a handle connected to endpoint ("tcp://HOST:PORT").  HOST is
 * looked up at once (a name that does not resolve fails here, not as a
 * timeout later); connecting does not wait for the node: the first call
 * finds out whether it answers.  opts may be NULL.  Errors: EINVAL
 * (malformed endpoint, a port not in 1..65535, no such host), EUNAVAILABLE
 * (the host name cannot be looked up at the moment), EIO, ENOMEM. */
int llmos_client_connect(const char *endpoint, const llmos_client_opts_t *opts, llmos_client_t **out,
                         llmos_client_error_t *err);
/* Closes the socket, frees the handle and sets *c to NULL.  NULL-safe. */
void llmos_client_destroy(llmos_client_t **c);

/* A reply.  Owned by the caller; free with llmos_client_reply_free. */
typedef struct llmos_client_reply {
    uint32_t type;       /* the reply's message type */
    int32_t status;      /* 0, or the error code the node answered with */
    char *error;         /* the node's message when status != 0, else NULL */
    uint8_t *data;       /* payload (NULL when len == 0) */
    size_t len;
} llmos_client_reply_t;

void llmos_client_reply_free(llmos_client_reply_t **r);

/* Generic request/response: sends `type` with payload (copied) to the actor
 * registered as `actor` on the connected node and waits up to timeout_ms
 * (0 = the handle's default) for its reply; the request carries that
 * deadline.  On 0, *reply is the reply.  When the node answers with an error
 * the call returns that code, fills err with the node's message and still
 * sets *reply (its status != 0).  Errors: ETIMEDOUT (no answer), EINVAL,
 * ETOOBIG (payload over the cap), EFORMAT (undecodable reply), EIO, ENOMEM,
 * and whatever the node answers (ENOTFOUND, EUNKNOWNTYPE, EUNAVAILABLE...). */
int llmos_client_call(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      uint32_t timeout_ms, llmos_client_reply_t **reply, llmos_client_error_t *err);

/* A message that belongs to a streaming call but is not its reply (e.g. a
 * GenerateChunk, type 257).  data (len bytes, the protobuf payload) is
 * borrowed for the call.  Return 0 to keep waiting, non-zero to abandon the
 * call. */
typedef int (*llmos_client_event_fn)(void *user, uint32_t type, const void *data, size_t len);

/* Like llmos_client_call, and calls on_event (may be NULL) for every
 * non-reply message carrying the ask's correlation id, in arrival order,
 * until the reply arrives; then returns like llmos_client_call.  Messages
 * for other (stale) correlation ids are dropped.  If on_event returns
 * non-zero the call returns LLMOS_CLIENT_ECANCELED at once (*reply NULL);
 * the node is not told (send a cancel request for that).  The timeout covers
 * the whole call, events included. */
int llmos_client_call_stream(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                             uint32_t timeout_ms, llmos_client_event_fn on_event, void *user,
                             llmos_client_reply_t **reply, llmos_client_error_t *err);

/* One-way message to `actor` (no reply awaited).  Errors: EINVAL, ETOOBIG,
 * EIO, EOVERLOADED (the socket's queue is full). */
int llmos_client_send(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                      llmos_client_error_t *err);

/* Pings the node actor; *rtt_ns (may be NULL) gets the round-trip time. */
int llmos_client_ping(llmos_client_t *c, uint32_t timeout_ms, uint64_t *rtt_ns, llmos_client_error_t *err);

typedef struct llmos_client_count {
    char kind[32];
    uint64_t count;
} llmos_client_count_t;

/* A node's status.  Owned by the caller; free with llmos_client_status_free. */
typedef struct llmos_client_status {
    uint64_t node_id;
    char node_name[64];
    char endpoint[256];
    uint64_t uptime_ms;
    uint64_t actor_count;
    char **actors;          /* n_actors registered actors, "name (id, kind)" */
    size_t n_actors;
    uint64_t msgs_sent, msgs_received;          /* in-process, runtime */
    uint64_t net_msgs_in, net_msgs_out;         /* envelopes over the wire */
    uint64_t net_frames_in, net_frames_out;     /* ZeroMQ messages */
    llmos_client_count_t *errors;               /* n_errors counters by kind */
    size_t n_errors;
    uint32_t peers, workers;
} llmos_client_status_t;

int llmos_client_status(llmos_client_t *c, uint32_t timeout_ms, llmos_client_status_t **out,
                        llmos_client_error_t *err);
void llmos_client_status_free(llmos_client_status_t **s);
/* The count of one error kind ("decode", "too_big", ...); 0 if absent. */
uint64_t llmos_client_status_errors(const llmos_client_status_t *s, const char *kind);

/* ---- generation (a node started with llmosd --model M) ---- */

/* Options of a generation.  A zeroed struct means: actor "model", greedy
 * (temperature 0), up to the model's seq_len, no stop strings, the handle's
 * timeout.  Everything pointed to is borrowed for the call. */
typedef struct llmos_client_gen_opts {
    const char *actor;            /* "model" (replica 0) or "model/<r>"; NULL = "model" */
    uint32_t max_tokens;          /* tokens to generate; 0 = up to seq_len */
    uint32_t max_positions;       /* llama2.c's -n (prompt included); 0 = off */
    float temperature;            /* 0 = greedy */
    float top_p;                  /* 0 or 1 = off */
    uint32_t top_k;               /* 0 = off */
    float repetition_penalty;     /* 0 or 1 = off */
    uint64_t seed;
    const char *const *stop;      /* n_stop stop strings (the text ends before one) */
    size_t n_stop;
    int echo_prompt;              /* the text starts with the prompt's text */
    const char *request_id;       /* for llmos_client_generate_cancel; NULL = made up */
    uint32_t timeout_ms;          /* whole generation; 0 = the handle's default */
    const char *context;          /* lines (facts) the model sees before the prompt, then an empty
                                     line; lines that do not fit its context window are dropped
                                     whole from the end (never an error); NULL = none */
} llmos_client_gen_opts_t;

/* Called with each piece of new text as the node produces it (text is not
 * NUL-terminated; borrowed for the call) and the token ids it came from.
 * Return 0 to go on; non-zero stops: the node is told to cancel and the
 * call returns LLMOS_CLIENT_ECANCELED. */
typedef int (*llmos_client_text_fn)(void *user, const char *text, size_t len, const int32_t *tokens,
                                    size_t n_tokens);

/* A finished generation.  Owned by the caller: llmos_client_gen_result_free. */
typedef struct llmos_client_gen_result {
    char *text;                   /* NUL-terminated; text_len bytes */
    size_t text_len;
    int32_t *tokens;              /* n_tokens generated ids */
    size_t n_tokens;
    uint32_t prompt_tokens;
    char finish_reason[16];       /* "length", "stop", "eos" */
    uint32_t context_lines_kept, context_lines_dropped; /* of opts.context */
    uint64_t time_to_first_token_us, total_us, queued_us;
} llmos_client_gen_result_t;

/* Generates from prompt on the node's model actor.  on_text (may be NULL:
 * no streaming) receives the text as it is produced; the pieces concatenate
 * to result->text.  out may be NULL when only the callback matters.
 * Errors: those of llmos_client_call, and what the node answers: EINVAL (a
 * bad option, named), ETOOBIG (prompt too long), EOVERLOADED (queue full:
 * retry after the time the message says), EUNAVAILABLE (the model group
 * lost a rank), ECANCELED, ETIMEDOUT. */
int llmos_client_generate(llmos_client_t *c, const char *prompt, const llmos_client_gen_opts_t *opts,
                          llmos_client_text_fn on_text, void *user, llmos_client_gen_result_t **out,
                          llmos_client_error_t *err);
void llmos_client_gen_result_free(llmos_client_gen_result_t **r);

/* Cancels the generation with request_id on actor (NULL = "model"); *found
 * (may be NULL) says whether it was still running or queued.  Its caller
 * gets LLMOS_CLIENT_ECANCELED. */
int llmos_client_generate_cancel(llmos_client_t *c, const char *actor, const char *request_id, uint32_t timeout_ms,
                                 int *found, llmos_client_error_t *err);

/* ======================================================================
 * Classification (client/classify.c)
 *
 * The fine-tuned classifier a node serves with its model (llmosd
 * --classifier DIR: a checkpoint of llmos-train) labels a text: a
 * ScoreRequest without labels to the model actor.
 * ====================================================================== */

/* One answer.  Owned by the caller: llmos_client_cls_result_free. */
typedef struct llmos_client_cls_result {
    size_t n;                     /* classes returned, most probable first */
    char **labels;                /* [n] class names */
    float *probs;                 /* [n] softmax probabilities of the head */
    char *best;                   /* == labels[0] (same string) */
} llmos_client_cls_result_t;

/* Classifies text with the classifier on actor (NULL = "model").  top_k:
 * classes returned (0 = all).  timeout_ms 0 = the handle's default.
 * Errors: those of llmos_client_call, and what the node answers: EINVAL
 * (no classifier is loaded, an empty text), EOVERLOADED, EUNAVAILABLE. */
int llmos_client_classify(llmos_client_t *c, const char *actor, const char *text, uint32_t top_k,
                          uint32_t timeout_ms, llmos_client_cls_result_t **out, llmos_client_error_t *err);
void llmos_client_cls_result_free(llmos_client_cls_result_t **r);

/* ======================================================================
 * The model actor (client/model.c)
 *
 * A node's model actor ("model", or "model/<r>" for replica r) answers its
 * counters, and loads or unloads its model at run time; each call answers
 * with the counters after it.
 * ====================================================================== */

/* A model actor's counters.  Owned by the caller:
 * llmos_client_model_stats_free.  Strings are never NULL. */
typedef struct llmos_client_model_stats {
    char *model;                  /* path or name of the model served ("" = none) */
    uint32_t replica, tp;         /* its replica; ranks in its tensor-parallel group */
    int available;                /* 0 once the group lost a rank */
    uint32_t running, queued;     /* sequences in the batch; waiting for admission */
    uint32_t kv_blocks_used, kv_blocks_total, kv_block_tokens; /* KV blocks, positions per block */
    uint64_t requests_done, tokens_generated, iterations, prompt_tokens, rejected_overloaded;
    uint32_t token_budget, queue_limit; /* rows per iteration; queued requests allowed */
    uint32_t vocab_size, seq_len, dim;
    char *classifier;             /* checkpoint folder of the classifier served ("" = none) */
    uint32_t classes, classifier_version;
} llmos_client_model_stats_t;

/* The counters of actor (NULL = "model").  timeout_ms 0 = the handle's
 * default.  Errors: those of llmos_client_call (ENOTFOUND: no such actor,
 * the node serves no model), EFORMAT (a reply that is not ModelStats). */
int llmos_client_model_stats(llmos_client_t *c, const char *actor, uint32_t timeout_ms,
                             llmos_client_model_stats_t **out, llmos_client_error_t *err);
void llmos_client_model_stats_free(llmos_client_model_stats_t **s);

/* What to load.  Every pointer is borrowed for the call. */
typedef struct llmos_client_model_load_opts {
    const char *path;        /* llama2.c .bin or .gguf, as the node sees it (else found in its
                                $LLMOS_MODELS); "" with classifier = the checkpoint's base model */
    const char *tokenizer;   /* tokenizer.bin for a llama2.c file; NULL = the node's rule */
    const char *classifier;  /* a fine-tuned classifier's checkpoint folder; NULL = none */
    int q8;                  /* quantize the weights to int8 at load */
} llmos_client_model_load_opts_t;

/* Replaces the model actor's model with opts's (the node reads the files:
 * give it time, minutes for a large model); *out (may be NULL) gets the
 * counters after.  Errors: EINVAL (opts or opts->path NULL; what the node
 * refuses: a missing or malformed file, named), and those of
 * llmos_client_model_stats. */
int llmos_client_model_load(llmos_client_t *c, const char *actor, const llmos_client_model_load_opts_t *opts,
                            uint32_t timeout_ms, llmos_client_model_stats_t **out, llmos_client_error_t *err);
/* Unloads the model (requests then get EUNAVAILABLE); *out as above. */
int llmos_client_model_unload(llmos_client_t *c, const char *actor, uint32_t timeout_ms,
                              llmos_client_model_stats_t **out, llmos_client_error_t *err);

/* ======================================================================
 * The knowledge graph (client/graph.c)
 *
 * A node started with llmosd --graph DB serves its graph as the actor
 * "graph": SPARQL queries, entity linking, neighbourhoods and paths,
 * statistics, and loads sent over the wire.  Every answer is the text the
 * local llmos-graph prints for the same request, in *out (NUL-terminated,
 * caller frees with free(); NULL on failure).  Besides the errors of
 * llmos_client_call (ENOTFOUND: the node serves no graph) every call may
 * return what the node answers: EINVAL (a bad request, the place named),
 * ETIMEDOUT, ETOOBIG (an answer over the node's result cap), and EFORMAT
 * for a reply that does not decode.
 * ====================================================================== */

/* Runs a SPARQL query.  format: "tsv" (NULL: the default) or "json";
 * query_timeout_ms bounds its run on the node (0 = the call's deadline
 * only). */
int llmos_client_graph_query(llmos_client_t *c, const char *sparql, const char *format, uint32_t query_timeout_ms,
                             uint32_t timeout_ms, char **out, llmos_client_error_t *err);

typedef struct llmos_client_link_opts {
    uint32_t hops;         /* neighbourhood hops, 0..2 */
    int hops_set;          /* hops was given: without it hops 0 means the default (1 hop); with it, 0 =
                              only the facts between the mentions */
    uint32_t max_facts;    /* 0 = the node's default (20) */
    const char *format;    /* "text" (NULL: the default) or "json" */
} llmos_client_link_opts_t;

/* Links the entities text mentions and answers the facts about them (one
 * sentence a line, or JSON); *facts (may be NULL) gets their count.  opts
 * may be NULL (the defaults). */
int llmos_client_graph_link(llmos_client_t *c, const char *text, const llmos_client_link_opts_t *opts,
                            uint32_t timeout_ms, char **out, uint64_t *facts, llmos_client_error_t *err);

typedef struct llmos_client_walk_opts {
    const char *dir;       /* "out", "in" or "both" (NULL: both) */
    uint32_t hops;         /* neighbors: depth (0 = 1); path: most hops (0 = 6) */
    uint64_t max_edges;    /* neighbors: edges at most (0 = 10000) */
} llmos_client_walk_opts_t;

/* The neighbourhood of node (an IRI or a name); opts may be NULL. */
int llmos_client_graph_neighbors(llmos_client_t *c, const char *node, const llmos_client_walk_opts_t *opts,
                                 uint32_t timeout_ms, char **out, llmos_client_error_t *err);
/* A shortest path from one node to another; opts may be NULL. */
int llmos_client_graph_path(llmos_client_t *c, const char *from, const char *to, const llmos_client_walk_opts_t *opts,
                            uint32_t timeout_ms, char **out, llmos_client_error_t *err);
/* The store's counts; distinct: also distinct subjects and objects (a full scan). */
int llmos_client_graph_stats(llmos_client_t *c, int distinct, uint32_t timeout_ms, char **out,
                             llmos_client_error_t *err);

/* ---- loads: files sent in chunks, committed as one transaction ----
 *
 *   llmos_client_graph_load_t *l;
 *   llmos_client_graph_load_new(c, &(llmos_client_load_opts_t){.strict = 1}, &l, &err);
 *   llmos_client_graph_load_send(l, 0, "a.nt", 0, chunk, n, 0, NULL, &err);  // file 0, offset 0 ...
 *   llmos_client_load_result_t *res;
 *   llmos_client_graph_load_commit(l, 1, 600000, &res, &err);               // 1 file
 *
 * Chunks must fit the node's frame cap (512 KiB does for any node with
 * max_frame >= 1M).  Nothing is in the store before the commit, and a load
 * never committed (the client gone, the node killed) leaves it unchanged. */

typedef struct llmos_client_graph_load llmos_client_graph_load_t;

typedef struct llmos_client_load_opts {
    const char *format;    /* "nt", "ttl" or "tsv"; NULL = from each file's name */
    const char *base_iri;  /* base IRI of TSV names; NULL = the node's default */
    int strict;            /* a malformed line refuses the whole load (else it is skipped and reported) */
} llmos_client_load_opts_t;

/* The commit's report.  Owned by the caller: llmos_client_load_result_free. */
typedef struct llmos_client_load_result {
    uint64_t received;     /* bytes the node received for the load */
    uint64_t lines, read, added, terms_added, errors; /* lines; triples read, new; new terms; lines skipped */
    double seconds;        /* the load's time on the node */
    char *diagnostics;     /* FILE:LINE:COL: lines about malformed input; "" = none */
} llmos_client_load_result_t;

/* A new load on c (borrowed until the load is destroyed) under a random
 * id; opts (copied; may be NULL) apply to all its files.  Sends nothing.
 * Errors: EINVAL, ENOMEM. */
int llmos_client_graph_load_new(llmos_client_t *c, const llmos_client_load_opts_t *opts,
                                llmos_client_graph_load_t **out, llmos_client_error_t *err);
/* Sends data[0..len) found at offset of file number `file` (0, 1, ... in
 * order; a new number starts the next file), called name (in FILE:LINE
 * messages; guesses the format).  Every file sends at least one chunk (an
 * empty file: len 0).  *received (may be NULL): the bytes the node holds
 * for the load so far.  Errors: EINVAL, and the node's (EINVAL: a chunk out
 * of order; ETOOBIG: over its frame cap or load limit). */
int llmos_client_graph_load_send(llmos_client_graph_load_t *l, uint32_t file, const char *name, uint64_t offset,
                                 const void *data, size_t len, uint32_t timeout_ms, uint64_t *received,
                                 llmos_client_error_t *err);
/* Names file number `file` by its path on the node instead of sending it. */
int llmos_client_graph_load_path(llmos_client_graph_load_t *l, uint32_t file, const char *path, uint32_t timeout_ms,
                                 llmos_client_error_t *err);
/* Loads files 0..files-1 in one transaction and answers its report; may
 * take long (give it minutes).  Errors: EINVAL (a malformed line under
 * strict, named FILE:LINE; a file missing on the node), and the node's. */
int llmos_client_graph_load_commit(llmos_client_graph_load_t *l, uint32_t files, uint32_t timeout_ms,
                                   llmos_client_load_result_t **out, llmos_client_error_t *err);
/* Frees the load and sets *l to NULL; NULL-safe.  The node drops a load
 * never committed after 5 minutes without a message. */
void llmos_client_graph_load_destroy(llmos_client_graph_load_t **l);
void llmos_client_load_result_free(llmos_client_load_result_t **r);

/* A short name for a code ("ETIMEDOUT"); never NULL. */
const char *llmos_client_strerror(int code);

/* ======================================================================
 * Jobs (client/jobs.c, client/jobs_json.c)
 *
 * A job is a DAG of tasks run by the node's scheduler and kept in its
 * durable job log; clients talk to the node's "gateway" actor.  The job id
 * is the client's idempotency key: submitting an id the node already knows
 * returns the first job (existing = 1) and runs nothing again.
 *
 *   llmos_job_t *j;
 *   llmos_job_new("story-1", &j, &err);
 *   llmos_task_spec_t link = {.name = "facts", .kind = LLMOS_TASK_LINK, .text = "virus"};
 *   const char *from[] = {"facts"};
 *   llmos_task_spec_t gen = {.kind = LLMOS_TASK_GENERATE, .text = "Once upon a time",
 *                            .input_from = from, .n_input_from = 1, .max_tokens = 64};
 *   llmos_job_add_task(j, &link, &err);
 *   llmos_job_add_task(j, &gen, &err);
 *   llmos_job_status_t *st;
 *   llmos_client_submit_wait(c, j, 30000, &st, &err);   // or submit + stream/wait
 *
 * The same job can be written as JSON (llmos_job_from_json; the schema the
 * CLI's `llmos submit` and `llmos batch run` read, see README.md).
 * ====================================================================== */

typedef enum llmos_task_kind {
    LLMOS_TASK_NONE = 0,
    LLMOS_TASK_ECHO = 1,        /* returns its text (tests, benchmarks) */
    LLMOS_TASK_GENERATE = 2,    /* text generation from text (prompt) */
    LLMOS_TASK_CLASSIFY = 3,    /* scores labels as continuations of text */
    LLMOS_TASK_EMBED = 4,       /* embedding vector of text */
    LLMOS_TASK_GRAPH_QUERY = 5, /* SPARQL in text */
    LLMOS_TASK_LINK = 6,        /* entity linking: fact sentences for text */
} llmos_task_kind_t;

typedef enum llmos_job_state {
    LLMOS_JOB_STATE_NONE = 0,
    LLMOS_JOB_QUEUED = 1,
    LLMOS_JOB_RUNNING = 2,
    LLMOS_JOB_DONE = 3,      /* every task done */
    LLMOS_JOB_FAILED = 4,    /* a task failed past its retries, or bad input */
    LLMOS_JOB_CANCELLED = 5,
    LLMOS_JOB_EXPIRED = 6,   /* its deadline passed */
    LLMOS_JOB_QUARANTINED = 7, /* a task was in flight during repeated crashes of the node: not run again */
} llmos_job_state_t;

typedef enum llmos_task_state {
    LLMOS_TASK_STATE_NONE = 0,
    LLMOS_TASK_PENDING = 1,  /* waiting for the tasks it comes after */
    LLMOS_TASK_READY = 2,
    LLMOS_TASK_RUNNING = 3,
    LLMOS_TASK_DONE = 4,
    LLMOS_TASK_FAILED = 5,
    LLMOS_TASK_CANCELLED = 6,
    LLMOS_TASK_RETRY_WAIT = 7,
} llmos_task_state_t;

/* "generate", "graph_query", ...; "?" for unknown values.  Never NULL. */
const char *llmos_task_kind_name(llmos_task_kind_t k);
/* "queued", "running", "done", "failed", "cancelled", "expired", "quarantined"; "?" otherwise. */
const char *llmos_job_state_name(llmos_job_state_t s);
const char *llmos_task_state_name(llmos_task_state_t s);
/* Parses a name as printed above (also "query" for graph_query); 0 = unknown. */
llmos_task_kind_t llmos_task_kind_parse(const char *name);
llmos_job_state_t llmos_job_state_parse(const char *name);
/* 1 when no more change will come (done, failed, cancelled, expired, quarantined). */
int llmos_job_state_final(llmos_job_state_t s);

/* ---- describing a job ---- */

/* A job description being built.  Not thread-safe (one owner). */
typedef struct llmos_job llmos_job_t;

/* One task.  Every pointer is borrowed for the call only (copied); zero /
 * NULL fields take the defaults.  Tasks named in after / input_from must
 * have been added before (so a job is always a DAG). */
typedef struct llmos_task_spec {
    const char *name;                /* unique in the job; NULL = "t<index>" */
    llmos_task_kind_t kind;
    const char *text;                /* prompt / text / SPARQL */
    const char *const *after;        /* tasks that must finish first */
    size_t n_after;
    const char *const *input_from;   /* tasks whose output text goes before text (newline-separated) */
    size_t n_input_from;
    uint32_t max_tokens;             /* generate: 0 = the model's default */
    float temperature;               /* generate: 0 = greedy */
    uint32_t top_k;                  /* generate: 0 = off */
    float top_p;                     /* generate: 0 or 1 = off */
    float repetition_penalty;        /* generate: 0 or 1 = off */
    uint64_t seed;                   /* generate: sampling seed */
    const char *const *stop;         /* generate: stop strings */
    size_t n_stop;
    const char *const *labels;       /* classify: candidate labels (at least 2; none: the node's classifier) */
    size_t n_labels;
    uint32_t hops;                   /* link: neighbourhood hops (0..2) */
    uint32_t max_facts;              /* link: 0 = the graph actor's default */
    const char *format;              /* graph_query: "tsv" (default) or "json" */
    const char *target;              /* placement ("model/1"); NULL = any */
    int hops_set;                    /* link: hops was given; without it hops 0 means the default,
                                        1 hop (with it, 0 = only the facts between the mentions) */
} llmos_task_spec_t;

/* Limits checked on the client; the node's gateway enforces the same ones
 * (it uses these definitions). */
#define LLMOS_JOB_ID_MAX 128     /* bytes of a job id, a tenant, a task name */
#define LLMOS_JOB_TASKS_MAX 1024 /* tasks in one job */

/* A new empty job with that id (1..128 bytes of UTF-8, no control
 * characters).  Caller destroys.  Errors: EINVAL, ENOMEM. */
int llmos_job_new(const char *id, llmos_job_t **out, llmos_client_error_t *err);
/* The same with the id's length given (for bindings whose strings may hold
 * a NUL): an id holding a NUL byte is refused with EINVAL ("job id: a NUL
 * byte at byte 1 ...") instead of being cut there into another job's id.
 * Likewise llmos_job_set_id_len and llmos_job_set_tenant_len. */
int llmos_job_new_len(const char *id, size_t len, llmos_job_t **out, llmos_client_error_t *err);
void llmos_job_destroy(llmos_job_t **j);
/* The job's id; borrowed until the job is destroyed. */
const char *llmos_job_id(const llmos_job_t *j);
/* Replaces the id (batch runs derive ids).  Errors: EINVAL, ENOMEM. */
int llmos_job_set_id(llmos_job_t *j, const char *id, llmos_client_error_t *err);
int llmos_job_set_id_len(llmos_job_t *j, const char *id, size_t len, llmos_client_error_t *err);
/* tenant NULL = the handle's tenant; copied; the rules of an id.  Errors:
 * EINVAL, ENOMEM. */
int llmos_job_set_tenant(llmos_job_t *j, const char *tenant, llmos_client_error_t *err);
int llmos_job_set_tenant_len(llmos_job_t *j, const char *tenant, size_t len, llmos_client_error_t *err);
void llmos_job_set_priority(llmos_job_t *j, int32_t priority);       /* higher first */
void llmos_job_set_deadline(llmos_job_t *j, uint64_t unix_ms);        /* 0 = none */
void llmos_job_set_max_retries(llmos_job_t *j, uint32_t max_retries); /* per task */
/* Adds (or replaces) a label; copied.  Errors: EINVAL, ENOMEM. */
int llmos_job_set_label(llmos_job_t *j, const char *key, const char *value, llmos_client_error_t *err);
/* Adds a task (copied).  Errors: EINVAL (unknown kind, duplicate name, a
 * dependency not added before, missing text, labels < 2, too many tasks;
 * the message names the field), ENOMEM. */
int llmos_job_add_task(llmos_job_t *j, const llmos_task_spec_t *t, llmos_client_error_t *err);
size_t llmos_job_task_count(const llmos_job_t *j);

/* Parses one job from JSON text (len bytes; need not be NUL-terminated).
 * Two forms:
 *   full:  {"id":"j1","tenant":..,"priority":..,"deadline_ms":..,"max_retries":..,
 *           "labels":{"k":"v"},"tasks":[{"name":..,"kind":"link","text":..}, ...]}
 *   short: one task inline: {"id":"j1","kind":"generate","prompt":..,"max_tokens":..,
 *           "temperature":..,"seed":..}; "graph":true on a generate makes it a
 *           link task "facts" feeding the generation (knowledge-augmented).
 * Task fields: name, kind (echo|generate|classify|embed|graph_query|query|link),
 * text (aliases prompt, query, sparql), after, input_from, max_tokens,
 * temperature, top_k, top_p, repetition_penalty, seed, stop, labels, hops,
 * max_facts, format, target.  An id may be a string or an integer; with no
 * id, default_id is used (NULL = an error).  Unknown fields, more than
 * LLMOS_JOB_TASKS_MAX tasks and strings holding an escaped NUL character
 * (which a C string would end at) are errors naming the field.  Errors: EFORMAT (not JSON or not UTF-8: the message gives the
 * offset, line and column and the text before and after the error), EINVAL
 * (the message names the field, e.g. "tasks[1].max_tokens: ..."), ENOMEM. */
int llmos_job_from_json(const char *json, size_t len, const char *default_id, llmos_job_t **out,
                        llmos_client_error_t *err);

/* The "id" of a job's JSON text (len bytes; need not be NUL-terminated)
 * without checking the rest: what names the result of a job that fails to
 * parse (`llmos batch run`'s records).  A string of 1..LLMOS_JOB_ID_MAX
 * bytes is copied to out; an integer of magnitude at most 2^53 is written
 * in decimal and *is_number (may be NULL) set to 1.  out has cap bytes, at
 * least LLMOS_JOB_ID_MAX + 1; on failure it holds "".  Errors: EFORMAT (not
 * a JSON object, or a string in it holds an escaped NUL, \u0000, which
 * would make "a\u0000b" pass for "a"), ENOTFOUND (no "id"), EINVAL (an id
 * of another type, empty or too long; json or out NULL, cap too small). */
int llmos_job_json_id(const char *json, size_t len, char *out, size_t cap, int *is_number,
                      llmos_client_error_t *err);

/* ---- results ---- */

/* One task's state and result.  Arrays are NULL when their count is 0. */
typedef struct llmos_task_result {
    char *name;
    llmos_task_kind_t kind;
    llmos_task_state_t state;
    char *text;              /* generate: text; graph_query: result; link: facts; echo: input */
    int32_t *tokens;         /* generate: token ids */
    size_t n_tokens;
    char **labels;           /* classify: the labels ... */
    float *probs;            /* ... and their probabilities */
    size_t n_labels;
    char *best;              /* classify: the best label */
    float *vector;           /* embed */
    size_t n_vector;
    uint64_t facts;          /* link: facts found */
    uint32_t attempts;
    int32_t error_code;      /* an LLMOS_CLIENT_E* code when failed */
    char *error;             /* when failed, else "" */
    uint64_t started_ms, finished_ms; /* Unix ms, 0 = not yet */
    char *finish_reason;     /* generate: "length", "stop", "eos", "cancelled" */
    uint64_t text_len;       /* bytes of the whole text.  A node sends texts longer than its reply
                                budget (16 MiB by default) in parts; every call here returns them
                                whole, fetched part by part, except a job event's result, which
                                carries the first part (strlen(text) < text_len: get the rest with
                                llmos_client_job_status) */
    uint32_t crashes;        /* node crashes this task was in flight during (LLMOS_JOB_QUARANTINED) */
} llmos_task_result_t;

/* A job's state (and its tasks' results).  Every string is non-NULL. */
typedef struct llmos_job_status {
    char *id;
    char *tenant;
    llmos_job_state_t state;
    int32_t priority;
    uint64_t submitted_ms, started_ms, finished_ms;
    char *error;                 /* why it failed / was cancelled / expired, else "" */
    llmos_task_result_t *tasks;
    size_t n_tasks;
    char **label_keys, **label_values;
    size_t n_labels;
} llmos_job_status_t;

/* Frees a status and sets *s to NULL.  NULL-safe. */
void llmos_job_status_free(llmos_job_status_t **s);
/* The task named `name`, or NULL. Borrowed from s. */
const llmos_task_result_t *llmos_job_status_task(const llmos_job_status_t *s, const char *name);
/* The job's result text: the text of its last task (the one nothing else
 * depends on, in a link->generate job the generation).  Borrowed; "" if none. */
const char *llmos_job_status_text(const llmos_job_status_t *s);

/* The status as one line of JSON (no newline): {"id":..,"state":..,"tasks":[..]}.
 * *out is caller-frees (free()).  Errors: EINVAL (s NULL), ENOMEM. */
int llmos_job_status_to_json(const llmos_job_status_t *s, char **out, llmos_client_error_t *err);

/* One task's result as one line of JSON (no newline), the objects of the
 * "tasks" above: "task", "kind", "state", and by kind "text" (generate,
 * graph_query, link, echo), "tokens" (a count) and "finish_reason"
 * (generate), "labels", "probs" and "best" (classify), "vector" (embed),
 * "facts" (link); then "attempts", "started_ms", "finished_ms"; "error"
 * and "error_code" when it failed.  Floats print with 6 significant
 * digits; invalid UTF-8 in a string prints as U+FFFD, so the text is
 * always valid JSON.  *out is caller-frees (free()), NULL on failure.
 * Errors: EINVAL (t or out NULL), ENOMEM. */
int llmos_task_result_to_json(const llmos_task_result_t *t, char **out, llmos_client_error_t *err);

typedef struct llmos_submit_result {
    char id[LLMOS_JOB_ID_MAX + 1];
    int existing;              /* 1: the id was known; this is the first job */
    llmos_job_state_t state;
    uint64_t queue_position;
} llmos_submit_result_t;

/* ---- calls (all: 0 or a negative code, *err filled) ----
 * timeout_ms 0 = the handle's default, except for the calls that wait for
 * a job to finish (submit_wait, submit_stream, wait, stream): 30 s.  Every
 * call returns within its timeout: the waiting ones ask the node to answer
 * a little before it (a quarter of it, at most 2 s, is left for the trip).
 * A wait that ends before the job does returns ETIMEDOUT with *out set to
 * its current status; call again to keep waiting.  A node that never
 * answers (not running, unreachable) gives ETIMEDOUT with *out NULL and a
 * message naming the endpoint.  The node's errors come back as
 * their codes with its message: EINVAL (the field named), EOVERLOADED
 * ("overloaded: N jobs queued, retry after M ms"), ENOTFOUND (no such job).
 * Transport errors: ETIMEDOUT, EIO, EUNAVAILABLE, ETOOBIG, EFORMAT, ENOMEM. */

/* Submits a job (copied; the caller still owns it).  out may be NULL. */
int llmos_client_submit(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms, llmos_submit_result_t *out,
                        llmos_client_error_t *err);
/* Submits and waits for the job to finish, in one round trip.  *out is the
 * final status (caller frees).  ETIMEDOUT when it did not finish within
 * timeout_ms: *out is then still set (its current state) when the node
 * answered. */
int llmos_client_submit_wait(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms,
                             llmos_job_status_t **out, llmos_client_error_t *err);
/* Waits for job `id` to finish; same ETIMEDOUT rule as submit_wait. */
int llmos_client_wait(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_status_t **out,
                      llmos_client_error_t *err);

/* An event while streaming.  Every pointer is borrowed for the callback. */
typedef struct llmos_job_event {
    const char *job_id;
    const char *task;                  /* task name */
    const char *chunk;                 /* generated text since the last chunk, or NULL */
    const int32_t *chunk_tokens;       /* its token ids */
    size_t n_chunk_tokens;
    uint32_t chunk_index;
    const llmos_task_result_t *result; /* set when the task finished, else NULL */
} llmos_job_event_t;
/* Return 0 to continue, non-zero to stop streaming (the job keeps running). */
typedef int (*llmos_job_event_fn)(const llmos_job_event_t *ev, void *user);

/* Waits for job `id` like llmos_client_wait and calls on_event for each
 * generated chunk and each finished task as they happen.  If on_event
 * returns non-zero: ECANCELED, *out NULL (the job is not cancelled: use
 * llmos_client_cancel). */
int llmos_client_stream(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_event_fn on_event,
                        void *user, llmos_job_status_t **out, llmos_client_error_t *err);
/* Submits and streams in one round trip: like llmos_client_submit_wait,
 * and on_event sees every chunk and task result from the job's start (a
 * stream begun after llmos_client_submit can miss a fast task's chunks).
 * A node that predates streamed submits answers like submit_wait, with no
 * events.  Same errors as llmos_client_stream. */
int llmos_client_submit_stream(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms,
                               llmos_job_event_fn on_event, void *user, llmos_job_status_t **out,
                               llmos_client_error_t *err);
/* ---- asynchronous submission (many jobs in flight from one thread) ----
 *
 *   llmos_client_opts_t o = {.max_inflight = 256};
 *   llmos_client_connect(ep, &o, &c, &err);
 *   uint64_t tok;
 *   llmos_client_submit_async(c, job, LLMOS_ASYNC_SUBMIT_WAIT, 30000, user, &tok, &err); // returns at once
 *   llmos_async_result_t res[64];
 *   size_t n;
 *   llmos_client_poll(c, 1000, res, 64, &n, &err);    // replies as they come
 *   for (size_t i = 0; i < n; i++) { ... res[i].rc, res[i].status ...; }
 *   llmos_async_results_free(res, n);
 *
 * A request takes one of the handle's max_inflight slots (llmos_client_opts_t)
 * from submit_async until its result is handed back by poll; when all are
 * taken, submit_async returns EOVERLOADED at once and the caller polls
 * (back-pressure).  Each request completes exactly once: with the node's
 * answer, or with ETIMEDOUT when none came within its timeout (a node that
 * died, a reply lost).  Requests are told apart by a correlation id of their
 * own (the token): replies to async requests that arrive while a synchronous
 * call on the same handle waits are kept for poll, and a late reply to a
 * request already timed out is dropped.  Synchronous calls may be mixed
 * freely with async ones on one handle.  Thread-safety: like every call,
 * submit_async and poll take the handle's lock, and poll keeps it while it
 * waits (up to its timeout), so other threads' calls on that handle wait
 * too: give each thread its own handle, or poll with short timeouts. */

typedef enum llmos_async_kind {
    LLMOS_ASYNC_SUBMIT = 1,      /* like llmos_client_submit: the result is the ack */
    LLMOS_ASYNC_SUBMIT_WAIT = 2, /* like llmos_client_submit_wait: the result is the final status */
    LLMOS_ASYNC_CALL = 3,        /* like llmos_client_call: the result is the reply */
} llmos_async_kind_t;

/* One finished async request, filled by llmos_client_poll. */
typedef struct llmos_async_result {
    uint64_t token;                /* as returned by llmos_client_submit_async */
    void *user;                    /* as given to it */
    llmos_async_kind_t kind;
    int rc;                        /* 0 or a negative code (the node's answer, or ETIMEDOUT) */
    llmos_client_error_t err;      /* what went wrong when rc != 0 */
    llmos_submit_result_t submit;  /* LLMOS_ASYNC_SUBMIT with rc 0: the ack */
    llmos_job_status_t *status;    /* LLMOS_ASYNC_SUBMIT_WAIT: the job's status (final when rc 0; its
                                      state so far with a node-answered ETIMEDOUT), else NULL; owned by the
                                      result: llmos_async_results_free */
    llmos_client_reply_t *reply;   /* LLMOS_ASYNC_CALL: the reply when the node answered (also with an
                                      error status), else NULL; owned by the result */
} llmos_async_result_t;

/* Sends job (copied: the caller keeps it and may change and resend it at
 * once) and returns without waiting.  timeout_ms bounds the whole request
 * (0 = the handle's default for SUBMIT, 30 s for SUBMIT_WAIT, whose node-side
 * wait is a little shorter, as for llmos_client_submit_wait).  user comes back in the result.  *token identifies the
 * request.  Errors: EOVERLOADED (max_inflight requests taken: poll, then
 * retry; or the socket's queue is full), EINVAL, ETOOBIG, EIO, ENOMEM. */
int llmos_client_submit_async(llmos_client_t *c, const llmos_job_t *job, llmos_async_kind_t kind,
                              uint32_t timeout_ms, void *user, uint64_t *token, llmos_client_error_t *err);

/* The generic form: sends `type` with payload (copied) to `actor` like
 * llmos_client_call and returns without waiting; poll hands back the reply
 * (kind LLMOS_ASYNC_CALL).  timeout_ms 0 = the handle's default.  Same
 * errors as llmos_client_submit_async. */
int llmos_client_call_async(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                            uint32_t timeout_ms, void *user, uint64_t *token, llmos_client_error_t *err);

/* Hands back up to max finished requests, oldest completion first, in
 * results[0..*n).  Waits up to timeout_ms for the first (0 = do not wait),
 * and returns at once with *n 0 when nothing is in flight.  Every result's
 * own failure is in its rc; the call itself fails only for EINVAL or EIO. */
int llmos_client_poll(llmos_client_t *c, uint32_t timeout_ms, llmos_async_result_t *results, size_t max,
                      size_t *n, llmos_client_error_t *err);

/* Frees what the n results own (status, reply) and clears those.  NULL-safe. */
void llmos_async_results_free(llmos_async_result_t *results, size_t n);

/* Async requests sent on c and not yet handed back by poll. */
uint32_t llmos_client_inflight(llmos_client_t *c);

/* The job's current status. */
int llmos_client_job_status(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_status_t **out,
                            llmos_client_error_t *err);
/* Cancels the job (running generations stop); *out (may be NULL) gets its status. */
int llmos_client_cancel(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_status_t **out,
                        llmos_client_error_t *err);

typedef struct llmos_job_list_opts {
    const char *tenant;        /* NULL = all */
    llmos_job_state_t state;   /* 0 = all */
    uint32_t limit;            /* 0 = 100 */
    const char *after;         /* page: ids after this one; NULL = from the start */
} llmos_job_list_opts_t;

typedef struct llmos_job_list {
    llmos_job_status_t **jobs; /* n_jobs statuses (tasks: state only) */
    size_t n_jobs;
    char *next;                /* "" or the `after` of the next page */
} llmos_job_list_t;

/* Lists jobs (opts may be NULL).  *out caller frees with llmos_job_list_free. */
int llmos_client_list(llmos_client_t *c, const llmos_job_list_opts_t *opts, uint32_t timeout_ms,
                      llmos_job_list_t **out, llmos_client_error_t *err);
void llmos_job_list_free(llmos_job_list_t **l);

/* The scheduler's counters (SchedulerStats in job.proto). */
typedef struct llmos_scheduler_stats {
    char policy[16];                  /* "fifo", "priority", "round_robin" */
    uint64_t queued, running;         /* now */
    uint64_t done, failed, retried, rejected_overloaded, expired, cancelled; /* since the node started */
    uint64_t recovered;               /* jobs re-queued from the log at start-up */
    uint32_t queue_limit;
    uint64_t quarantined;             /* jobs quarantined at start-up (see LLMOS_JOB_QUARANTINED) */
} llmos_scheduler_stats_t;

int llmos_client_scheduler_stats(llmos_client_t *c, uint32_t timeout_ms, llmos_scheduler_stats_t *out,
                                 llmos_client_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
