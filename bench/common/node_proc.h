/*
 * node_proc.h — a real llmosd for benchmarks and integration tests: started
 * as a child process (under mpirun when several ranks are wanted) on
 * system-chosen ports, its endpoints read from the ranks' first stdout
 * lines, stopped with SIGTERM (SIGKILL to the process group after 10 s).
 *
 * Not thread-safe (one caller starts and stops a node).
 */
#ifndef LLMOS_BENCH_NODE_PROC_H
#define LLMOS_BENCH_NODE_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_NODE_MAX_RANKS 8

typedef struct bench_node {
    pid_t pid;                                   /* llmosd or mpirun; 0 = not running */
    int n;                                       /* ranks listening */
    char endpoint[256];                          /* the rank that answers as `actor` */
    char endpoints[BENCH_NODE_MAX_RANKS][256];   /* every rank's, in the order they printed */
} bench_node_t;

/* Starts $LLMOS_BIN/llmosd (else llmosd next to this executable) with
 * --listen tcp://127.0.0.1:0 and args (NULL-terminated; borrowed), under
 * `mpirun -np ranks --enable-recovery` when ranks > 1.  Waits up to
 * timeout_ms for every rank's endpoint, then finds the rank that answers a
 * `stats_type` ask to `actor` (e.g. "model", MODEL_MSG_STATS; actor NULL:
 * the first rank).  Returns 0, or -1 with a message on stderr (the process
 * is stopped then). */
int bench_node_start(bench_node_t *n, int ranks, const char *const *args, const char *actor, uint32_t stats_type,
                     uint32_t timeout_ms);

/* The path of llmos executable `name` (e.g. "llmos-train"): in $LLMOS_BIN
 * when set, else next to this executable, else the bare name (PATH). */
void bench_bin_path(const char *name, char *out, size_t cap);

/* SIGTERM, wait up to 10 s, then SIGKILL to the process group.  Returns the
 * exit status (0 = a clean shutdown; 128 + signal when killed; -1 when it
 * had to be killed or was not running).  NULL-safe, idempotent. */
int bench_node_stop(bench_node_t *n);

#endif
