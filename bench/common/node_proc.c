/*
 * node_proc.c — start and stop a real llmosd (node_proc.h).  The child gets
 * its own process group so a stuck mpirun and its ranks can be killed
 * together.
 */
#include "bench/common/node_proc.h"

#include "llmos/client.h"
#include "runtime/base/clock.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void bench_bin_path(const char *name, char *out, size_t cap) {
    const char *bin = getenv("LLMOS_BIN");
    if (bin && *bin) {
        snprintf(out, cap, "%s/%s", bin, name);
        return;
    }
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(out, cap, "%s", name);
        return;
    }
    self[n] = 0;
    *strrchr(self, '/') = 0;
    snprintf(out, cap, "%s/%s", self, name);
}

int bench_node_start(bench_node_t *nd, int ranks, const char *const *args, const char *actor, uint32_t stats_type,
                     uint32_t timeout_ms) {
    memset(nd, 0, sizeof *nd);
    if (ranks < 1 || ranks > BENCH_NODE_MAX_RANKS) {
        fprintf(stderr, "node_proc: %d ranks (1..%d)\n", ranks, BENCH_NODE_MAX_RANKS);
        return -1;
    }
    char llmosd[PATH_MAX], np[16];
    bench_bin_path("llmosd", llmosd, sizeof llmosd);
    snprintf(np, sizeof np, "%d", ranks);
    const char *argv[64];
    int k = 0;
    if (ranks > 1) {
        const char *mpi[] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "--enable-recovery", "-np", np};
        for (size_t i = 0; i < sizeof mpi / sizeof mpi[0]; i++) argv[k++] = mpi[i];
    }
    argv[k++] = llmosd;
    argv[k++] = "--listen";
    argv[k++] = "tcp://127.0.0.1:0";
    for (int i = 0; args && args[i] && k < 62; i++) argv[k++] = args[i];
    argv[k] = NULL;
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    nd->pid = pid;
    char line[512];
    size_t len = 0;
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (nd->n < ranks && llmos_now_ns() < until) {
        struct pollfd pf = {fds[0], POLLIN, 0};
        if (poll(&pf, 1, 100) < 0) break;
        if (!(pf.revents & (POLLIN | POLLHUP))) continue;
        ssize_t r = read(fds[0], line + len, 1);
        if (r <= 0) break;
        if (line[len] == '\n' || len == sizeof line - 2) {
            line[len] = 0;
            unsigned long long id;
            if (sscanf(line, "llmosd: node %llx listening on %255s", &id, nd->endpoints[nd->n]) == 2) nd->n++;
            len = 0;
        } else {
            len++;
        }
    }
    close(fds[0]);
    if (nd->n < ranks) {
        fprintf(stderr, "node_proc: llmosd did not start (%d of %d ranks listening)\n", nd->n, ranks);
        bench_node_stop(nd);
        return -1;
    }
    if (!actor) {
        snprintf(nd->endpoint, sizeof nd->endpoint, "%s", nd->endpoints[0]);
        return 0;
    }
    for (int i = 0; i < nd->n; i++) {
        llmos_client_t *c;
        llmos_client_error_t err;
        if (llmos_client_connect(nd->endpoints[i], NULL, &c, &err) != 0) continue;
        llmos_client_reply_t *r = NULL;
        int rc = llmos_client_call(c, actor, stats_type, NULL, 0, timeout_ms, &r, &err);
        llmos_client_reply_free(&r);
        llmos_client_destroy(&c);
        if (rc == 0) {
            snprintf(nd->endpoint, sizeof nd->endpoint, "%s", nd->endpoints[i]);
            return 0;
        }
    }
    fprintf(stderr, "node_proc: no rank answers as `%s`\n", actor);
    bench_node_stop(nd);
    return -1;
}

int bench_node_stop(bench_node_t *nd) {
    if (!nd || nd->pid <= 0) return -1;
    kill(nd->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(nd->pid, &st, WNOHANG) == nd->pid) {
            nd->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        }
        usleep(50000);
    }
    kill(-nd->pid, SIGKILL);
    waitpid(nd->pid, NULL, 0);
    nd->pid = 0;
    return -1;
}
