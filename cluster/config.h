/*
 * config.h — a node's settings: defaults, the `key = value` config file, and
 * the command-line overrides llmosd applies on top.
 *
 * File format: one `key = value` per line; `#` starts a comment (to the end
 * of the line); blank lines are ignored; keys are
 *   listen      tcp://HOST:PORT the node's ROUTER binds (default tcp://127.0.0.1:7070)
 *   advertise   endpoint peers should connect back to (default: the bound listen endpoint)
 *   node_name   label for logs and status (default: the node id in hex)
 *   node_id     64-bit id, decimal or 0x-hex, high bit clear; 0 = random (default)
 *   peers       comma-separated endpoints; the key may repeat (lists add up)
 *   workers     worker threads, 0 = one per core
 *   max_frame   largest accepted frame, bytes with optional K/M/G suffix (default 64M)
 *   log_level   error|warn|info|debug
 *   heartbeat_ms     interval of peer heartbeats (default 250)
 *   peer_timeout_ms  silence after which a peer is declared dead (default 2000)
 *   graph       a knowledge-graph directory the node serves as actor `graph`
 *               (as llmosd --graph DB; the flag wins); a relative path is
 *               taken from llmosd's working directory; default: none
 *   graph_max_result_bytes  cap on one graph answer (a query's result, a
 *               walk, stats), e.g. 16M: a query past it stops at once with
 *               ETOOBIG (llmosd --graph-max-result-bytes; default 16M,
 *               1K..4G)
 *   ensemble    classifier checkpoints served as one averaged ensemble,
 *               "DIR[:WEIGHT],..." (as llmosd --ensemble SPEC; the flag
 *               wins; actors/cls_ensemble.h); default: none
 *   data_dir    the node's data directory: jobs.lmdb (default ./llmos-data;
 *               llmosd --data-dir DIR)
 *   scheduler_policy     fifo | priority | round_robin (default fifo)
 *   queue_limit          unfinished jobs past which submissions get
 *                        EOVERLOADED (default 100000)
 *   retention_s          finished jobs' results are kept this long (default 86400)
 *   max_retries_default  retries of a failed task when its job says 0 (default 2)
 *   sync                 1 = fsync the job log on each commit (default), 0 = not
 *   target_inflight      per-target caps on tasks in flight, "echo=64,model=8"
 *                        (default 256 each; 0 = the target runs nothing)
 *   task_input_max       bytes of one task's input (its text plus the outputs
 *                        of its input_from tasks), e.g. 16M (default 16M)
 *   quarantine_after     a job whose task was in flight during this many
 *                        consecutive crashes of the node is quarantined
 *                        instead of run again (default 3; 0 = never)
 * A bad line is an error naming FILE:LINE and the key.
 *
 * Thread-safety: plain data; no shared state.
 */
#ifndef LLMOS_CLUSTER_CONFIG_H
#define LLMOS_CLUSTER_CONFIG_H

#include "runtime/base/err.h"

#include <stddef.h>
#include <stdint.h>

#define CL_ENDPOINT_MAX 256
#define CL_NAME_MAX 64
#define CL_PEERS_MAX 32
#define CL_PATH_MAX 1024

typedef struct cl_config {
    char listen[CL_ENDPOINT_MAX];
    char advertise[CL_ENDPOINT_MAX];
    char node_name[CL_NAME_MAX];
    uint64_t node_id;
    char peers[CL_PEERS_MAX][CL_ENDPOINT_MAX];
    uint32_t npeers;
    uint32_t workers;
    size_t max_frame;
    char log_level[16];
    uint32_t heartbeat_ms;
    uint32_t peer_timeout_ms;
    char graph[CL_PATH_MAX]; /* graph directory to serve; "" = none */
    uint64_t graph_max_result_bytes; /* cap on one graph answer's bytes; 0 = the graph actor's default */
    char ensemble[4 * CL_PATH_MAX]; /* classifier ensemble spec to serve; "" = none */
    /* jobs (actors/scheduler.h) */
    char data_dir[CL_PATH_MAX];
    char scheduler_policy[16];
    uint32_t queue_limit;
    uint32_t retention_s;
    uint32_t max_retries_default;
    uint32_t sync;
    char target_inflight[512];
    uint64_t task_input_max;
    uint32_t quarantine_after;
} cl_config_t;

/* Fills the defaults. */
void cl_config_init(cl_config_t *cfg);

/* Applies one setting (as from a file line or a flag).  `where` names the
 * source in errors ("node.conf:12", "--peer").  LLMOS_EINVAL. */
int cl_config_set(cl_config_t *cfg, const char *key, const char *value, const char *where, llmos_error_t *err);

/* Parses config text (NUL-terminated); `name` is used in error messages as
 * name:line.  LLMOS_EINVAL on the first bad line. */
int cl_config_parse(cl_config_t *cfg, const char *text, const char *name, llmos_error_t *err);

/* Reads and parses a file.  LLMOS_EIO (cannot read), LLMOS_EINVAL. */
int cl_config_load(cl_config_t *cfg, const char *path, llmos_error_t *err);

/* Adds a peer endpoint (deduplicated).  LLMOS_EINVAL (malformed, too many). */
int cl_config_add_peer(cl_config_t *cfg, const char *endpoint, const char *where, llmos_error_t *err);

/* "tcp://host:port" check: LLMOS_EINVAL with what is wrong. */
int cl_endpoint_check(const char *endpoint, const char *where, llmos_error_t *err);

#endif
