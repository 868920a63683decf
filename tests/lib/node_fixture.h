/*
 * node_fixture.h — the one way tests and benchmarks start a real llmosd:
 * on a port the system picks (tcp://127.0.0.1:0), alone or as a cluster
 * under `mpirun -np N`, waited for until it serves, and stopped (SIGTERM,
 * then SIGKILL to its process group after a timeout, always reaped).
 *
 * How a node is known to serve: llmosd prints one line per rank on stdout
 * once its transport listens and every actor is started, "llmosd: node <16
 * hex digits> listening on <endpoint>" (actors/llmosd.c); the fixture sends
 * stdout to a file and waits for those lines (and, when asked, for the rank
 * that answers as a given actor).  A process that exits first ends the wait
 * at once, with its exit status and the tail of its stderr file in the
 * message.  (Nothing more is asked of the node, so a test may start one
 * that is meant to crash right after it comes up.)
 *
 * The C library (llmos_test_node_start / _stop / _kill) serves C tests and
 * benchmarks; tests/lib/llmos_test_node.c wraps the same functions as the
 * `llmos-test-node` command (exec | wait | stop) that tests/lib/node.sh
 * (shell) and tests/lib/llmos_node.py (Python) call, so every test starts
 * nodes the same way.
 *
 * Not thread-safe: one thread starts and stops a given node.  The node is
 * a child of the calling process; it gets SIGKILL when the thread that
 * started it exits (PR_SET_PDEATHSIG), so a crashed test leaves no node
 * behind holding its port or data directory.
 */
#ifndef LLMOS_TESTS_NODE_FIXTURE_H
#define LLMOS_TESTS_NODE_FIXTURE_H

#include "runtime/base/err.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LLMOS_TEST_NODE_MAX_RANKS 8
#define LLMOS_TEST_NODE_ENDPOINT_MAX 256
#define LLMOS_TEST_NODE_TIMEOUT_MS 60000u /* start-up limit when none is given */
#define LLMOS_TEST_NODE_STOP_MS 10000u    /* SIGTERM grace when none is given */

typedef struct llmos_test_node_opts {
    const char *const *args; /* llmosd's flags after --listen, NULL-terminated; borrowed; NULL = none */
    const char *listen;      /* NULL = "tcp://127.0.0.1:0"; a fixed one to restart a node on the same port */
    int ranks;               /* 0 or 1: llmosd alone; 2..LLMOS_TEST_NODE_MAX_RANKS: mpirun -np ranks llmosd */
    int mpi_recovery;    /* ranks > 1: mpirun --enable-recovery (a rank's death does not end the others) */
    const char *actor;   /* use the rank that answers as this actor ("model", "model/1"); NULL = the first
                            rank that printed its endpoint */
    uint32_t probe_type; /* the message asked of actor, which must answer it with status 0 (e.g.
                            MODEL_MSG_STATS); 0 = any answer but ENOTFOUND (type 0 is unknown to every
                            actor, so the answer is EUNKNOWNTYPE) */
    uint32_t timeout_ms; /* start-up limit, probes included; 0 = LLMOS_TEST_NODE_TIMEOUT_MS */
    const char *stdout_path; /* llmosd's stdout, truncated first; NULL = a private temporary file */
    const char *stderr_path; /* llmosd's stderr, appended; NULL = this process's stderr */
    const char *llmosd;      /* the executable; NULL = llmos_test_bin_path("llmosd") */
} llmos_test_node_opts_t;

typedef struct llmos_test_node {
    pid_t pid; /* llmosd (or mpirun), the leader of its own process group; 0 = not running */
    int n;     /* ranks that printed their endpoint */
    int rank;  /* the chosen one: index into endpoints[] */
    char endpoint[LLMOS_TEST_NODE_ENDPOINT_MAX]; /* the chosen rank's endpoint ("tcp://127.0.0.1:PORT") */
    uint64_t node_id;                            /* the chosen rank's node id */
    char endpoints[LLMOS_TEST_NODE_MAX_RANKS][LLMOS_TEST_NODE_ENDPOINT_MAX]; /* in the order printed */
    uint64_t node_ids[LLMOS_TEST_NODE_MAX_RANKS];
    int mpi;    /* started under mpirun (pid is mpirun's; the ranks are its children) */
    int status; /* once reaped: its exit code, or 128 + the signal that ended it; -1 before */
    int out_fd; /* where the fixture reads stdout (owned; -1 = none; never 0) */
} llmos_test_node_t;

/* Starts llmosd as opts says and waits until it serves.  *n is filled
 * (endpoint, node_id, pid).  On failure the process is killed and reaped
 * and *n holds pid 0 and its status.  Errors: EINVAL (n NULL, ranks out of
 * range, too many args), EIO (fork failed, or a stdout or stderr file that
 * cannot be opened), EUNAVAILABLE (llmosd exited first: the message
 * gives its status and stderr's last lines), ETIMEDOUT (not every rank
 * printed its endpoint in time, or no rank answers as opts.actor). */
int llmos_test_node_start(llmos_test_node_t *n, const llmos_test_node_opts_t *opts, llmos_error_t *err);

/* A clean stop: SIGTERM (under mpirun: to each rank, so that mpirun exits
 * 0 exactly when every rank did), then waits up to timeout_ms (0 =
 * LLMOS_TEST_NODE_STOP_MS) for it to exit; past that, SIGKILL to its whole
 * process group (mpirun and its ranks).  Always reaps.  *status (may be
 * NULL) gets its exit code (0 = a clean shutdown) or 128 + signal.
 * Returns 0 when it exited by itself in time, ETIMEDOUT when it had to be
 * killed, EINVAL when it was not running (n NULL or pid 0: *status -1). */
int llmos_test_node_stop(llmos_test_node_t *n, uint32_t timeout_ms, int *status, llmos_error_t *err);

/* Sends sig to the node (SIGKILL: a crash) and waits for it to end; for a
 * signal it survives this blocks until it exits some other way.  *status
 * as for _stop.  Returns 0, or EINVAL when it was not running. */
int llmos_test_node_kill(llmos_test_node_t *n, int sig, int *status);

/* Releases what a reaped node still holds (its stdout file).  Called by
 * _stop and _kill; NULL-safe. */
void llmos_test_node_release(llmos_test_node_t *n);

/* The path of llmos executable `name` ("llmosd", "llmos-train"): in
 * $LLMOS_BIN when set, else next to this executable, else the bare name
 * (found on PATH by exec). */
void llmos_test_bin_path(const char *name, char *out, size_t cap);

/* ---- the pieces, for the llmos-test-node command ---- */

/* The command line that starts opts's node: argv[0..] (NULL-terminated,
 * at most cap entries), pointing into opts, into path (path_cap bytes:
 * where the llmosd path is written) and into static strings; valid while
 * those are.  Errors: EINVAL (ranks out of range, too many args). */
int llmos_test_node_argv(const llmos_test_node_opts_t *opts, char *path, size_t path_cap, const char **argv,
                         size_t cap, llmos_error_t *err);

/* Waits until the process n->pid (a child of this process or not) has
 * printed opts->ranks endpoints on its stdout — read from n->out_fd when
 * >= 0, else from the file stdout_path — and, with opts->actor, until a
 * rank answers its probe.  Fills n's endpoints and the chosen one.  Does not stop the
 * process on failure.  When the process is this process's child and exits,
 * it is reaped (n->pid 0, n->status set).  Errors: EUNAVAILABLE (exited
 * first), ETIMEDOUT, EIO (the stdout file cannot be read). */
int llmos_test_node_wait(llmos_test_node_t *n, const llmos_test_node_opts_t *opts, const char *stdout_path,
                         llmos_error_t *err);

/* Sends sig to the ranks of the mpirun in pid (its children); to pid
 * itself when it has none.  Returns how many processes were signalled. */
int llmos_test_mpi_signal(pid_t pid, int sig);

/* 1 while process pid runs, 0 once it has exited (a zombie counts as
 * exited).  A child of this process is reaped then and *status (may be
 * NULL) gets its exit code or 128 + signal; for another process's child
 * *status is -1 (its parent reaps it). */
int llmos_test_proc_alive(pid_t pid, int *status);

#endif
