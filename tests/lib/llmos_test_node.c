/*
 * llmos_test_node.c — `llmos-test-node`: the node fixture (node_fixture.h)
 * for shell and Python tests, in three steps so that the process a test
 * starts *is* the node (its pid is llmosd's: `wait` gives llmosd's exit
 * status, `kill -9` crashes llmosd itself):
 *
 *   llmos-test-node exec [--np N] [--recovery] [--listen EP] [--llmosd PATH] [--] ARGS...
 *       becomes llmosd (mpirun -np N llmosd) on tcp://127.0.0.1:0 with ARGS,
 *       in a process group of its own; started in the background, stdout
 *       to a file.
 *   llmos-test-node wait --pid PID --out FILE [--err FILE] [--np N] [--actor NAME]
 *                        [--probe-type T] [--timeout MS] [--all]
 *       waits until PID has printed N endpoint lines into FILE (and a rank
 *       answers as NAME), then prints that endpoint (or with --all every
 *       rank's, one a line).
 *   llmos-test-node stop --pid PID [--np N] [--timeout MS]
 *       SIGTERM (N > 1: to each rank), then SIGKILL to its process group
 *       after MS; the caller reaps it (`wait $PID`).
 *
 * Exit status: 0 ok; 1 the node did not start or serve in time, or had to
 * be killed (the reason on stderr); 2 usage.
 */
#include "node_fixture.h"
#include "runtime/base/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: llmos-test-node exec [--np N] [--recovery] [--listen EP] [--llmosd PATH] [--] ARGS...\n"
            "         becomes llmosd (N > 1: mpirun -np N llmosd) listening on EP (default\n"
            "         tcp://127.0.0.1:0) with ARGS, in a process group of its own: run it in the\n"
            "         background with stdout to a file\n"
            "       llmos-test-node wait --pid PID --out FILE [--err FILE] [--np N] [--actor NAME]\n"
            "                            [--probe-type T] [--timeout MS] [--all]\n"
            "         waits until PID printed N endpoint lines into FILE (llmosd prints its line once\n"
            "         it serves) and, with --actor, until a rank answers as actor NAME (message type T\n"
            "         with status 0; T 0 = any answer but ENOTFOUND); prints that rank's endpoint\n"
            "         (else the first), or with --all every rank's, one a line.  --err: the node's\n"
            "         stderr file, quoted when it exits first.  --timeout default %u\n"
            "       llmos-test-node stop --pid PID [--np N] [--timeout MS]\n"
            "         SIGTERM (N > 1: to each rank of the mpirun PID, so it exits 0 when they all\n"
            "         did); after MS (default %u) SIGKILL to its process group.  The caller reaps\n"
            "         it (wait PID).\n"
            "Exit status: 0 ok, 1 failed or killed (the reason on stderr), 2 usage.\n",
            LLMOS_TEST_NODE_TIMEOUT_MS, LLMOS_TEST_NODE_STOP_MS);
}

/* A decimal number in [lo, hi] (runtime/base/parse.h); 0 ok, -1 not one. */
static int parse_num(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out) {
    uint64_t v;
    if (llmos_parse_u64("value", s, lo, hi, 0, &v, NULL)) return -1;
    *out = v;
    return 0;
}

static int cmd_exec(int argc, char **argv) {
    llmos_test_node_opts_t o = {0};
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--np") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 1, LLMOS_TEST_NODE_MAX_RANKS, &v) != 0) goto bad;
            o.ranks = (int)v;
        } else if (strcmp(a, "--recovery") == 0) {
            o.mpi_recovery = 1;
        } else if (strcmp(a, "--listen") == 0 && i + 1 < argc) {
            o.listen = argv[++i];
        } else if (strcmp(a, "--llmosd") == 0 && i + 1 < argc) {
            o.llmosd = argv[++i];
        } else {
            break; /* the first llmosd argument */
        }
    }
    o.args = (const char *const *)(argv + i); /* argv is NULL-terminated */
    char path[PATH_MAX];
    const char *args[256];
    llmos_error_t err;
    if (llmos_test_node_argv(&o, path, sizeof path, args, sizeof args / sizeof args[0], &err) != 0) {
        fprintf(stderr, "llmos-test-node exec: %s\n", err.msg);
        return 2;
    }
    if (setpgid(0, 0) != 0 && errno != EPERM) /* EPERM: a session leader is a group leader already */
        fprintf(stderr, "llmos-test-node exec: setpgid: %s\n", strerror(errno));
    execvp(args[0], (char *const *)args);
    fprintf(stderr, "llmos-test-node exec: %s: %s\n", args[0], strerror(errno));
    return 127;
bad:
    fprintf(stderr, "llmos-test-node exec: bad value for %s\n", argv[i - 1]);
    usage(stderr);
    return 2;
}

static int cmd_wait(int argc, char **argv) {
    llmos_test_node_opts_t o = {0};
    llmos_test_node_t n;
    memset(&n, 0, sizeof n);
    n.out_fd = -1;
    n.status = -1;
    const char *out = NULL;
    int all = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v;
        if (strcmp(a, "--pid") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 1, INT_MAX, &v) != 0) goto bad;
            n.pid = (pid_t)v;
        } else if (strcmp(a, "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(a, "--err") == 0 && i + 1 < argc) {
            o.stderr_path = argv[++i];
        } else if (strcmp(a, "--np") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 1, LLMOS_TEST_NODE_MAX_RANKS, &v) != 0) goto bad;
            o.ranks = (int)v;
        } else if (strcmp(a, "--actor") == 0 && i + 1 < argc) {
            o.actor = argv[++i];
        } else if (strcmp(a, "--probe-type") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 0, UINT32_MAX, &v) != 0) goto bad;
            o.probe_type = (uint32_t)v;
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 1, UINT32_MAX, &v) != 0) goto bad;
            o.timeout_ms = (uint32_t)v;
        } else if (strcmp(a, "--all") == 0) {
            all = 1;
        } else {
            fprintf(stderr, "llmos-test-node wait: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "llmos-test-node wait: bad value for %s: '%s'\n", a, argv[i]);
        return 2;
    }
    if (!n.pid || !out) {
        fprintf(stderr, "llmos-test-node wait: --pid and --out are required\n");
        usage(stderr);
        return 2;
    }
    llmos_error_t err;
    if (llmos_test_node_wait(&n, &o, out, &err) != 0) {
        fprintf(stderr, "llmos-test-node: %s\n", err.msg);
        return 1;
    }
    if (all)
        for (int i = 0; i < n.n; i++)
            printf("%s\n", n.endpoints[i]);
    else
        printf("%s\n", n.endpoint);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_stop(int argc, char **argv) {
    llmos_test_node_t n;
    memset(&n, 0, sizeof n);
    n.out_fd = -1;
    uint32_t timeout_ms = 0;
    for (int i = 0; i < argc; i++) {
        unsigned long long v;
        if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc && parse_num(argv[i + 1], 1, INT_MAX, &v) == 0) {
            n.pid = (pid_t)v;
            i++;
        } else if (strcmp(argv[i], "--np") == 0 && i + 1 < argc &&
                   parse_num(argv[i + 1], 1, LLMOS_TEST_NODE_MAX_RANKS, &v) == 0) {
            n.mpi = v > 1;
            i++;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc &&
                   parse_num(argv[i + 1], 1, UINT32_MAX, &v) == 0) {
            timeout_ms = (uint32_t)v;
            i++;
        } else {
            fprintf(stderr, "llmos-test-node stop: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!n.pid) {
        fprintf(stderr, "llmos-test-node stop: --pid is required\n");
        return 2;
    }
    if (!llmos_test_proc_alive(n.pid, NULL)) return 0; /* already gone: nothing to stop */
    llmos_error_t err;
    if (llmos_test_node_stop(&n, timeout_ms, NULL, &err) != 0) {
        fprintf(stderr, "llmos-test-node: %s\n", err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "exec") == 0) return cmd_exec(argc - 2, argv + 2);
    if (strcmp(argv[1], "wait") == 0) return cmd_wait(argc - 2, argv + 2);
    if (strcmp(argv[1], "stop") == 0) return cmd_stop(argc - 2, argv + 2);
    fprintf(stderr, "llmos-test-node: '%s' is not a command (exec, wait, stop)\n", argv[1]);
    usage(stderr);
    return 2;
}
