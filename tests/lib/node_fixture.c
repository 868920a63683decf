/*
 * node_fixture.c — start, wait for and stop a real llmosd (node_fixture.h).
 *
 * The node runs in its own process group (so a stuck mpirun and its ranks
 * can be killed together) with its stdout in a file the fixture reads with
 * pread: a file, unlike a pipe, never fills up or breaks when nobody reads
 * it any more, so the node may print for as long as it likes.
 * Never reads the wall clock: deadlines are on the monotonic clock.
 */
#include "node_fixture.h"

#include "llmos/client.h"
#include "runtime/base/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_MS 20u
#define PROBE_MS 2000u      /* one probe's limit (the start-up limit bounds the whole) */
#define OUT_READ_MAX 65536u /* stdout bytes looked at: the endpoint lines come first */
#define TAIL_MAX 320u       /* stderr bytes quoted in a start-up error */
#define ARGV_MAX 128u

void llmos_test_bin_path(const char *name, char *out, size_t cap) {
    const char *bin = getenv("LLMOS_BIN");
    if (bin && *bin) {
        snprintf(out, cap, "%s/%s", bin, name);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = 0, strrchr(self, '/')) : NULL;
    if (!slash) {
        snprintf(out, cap, "%s", name);
        return;
    }
    *slash = 0;
    snprintf(out, cap, "%s/%s", self, name);
}

static int wait_status(int st) {
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int llmos_test_proc_alive(pid_t pid, int *status) {
    if (status) *status = -1;
    if (pid <= 0) return 0;
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        if (status) *status = wait_status(st);
        return 0;
    }
    if (r == 0) return 1;
    if (errno != ECHILD) return 0;
    /* Not our child (the shell's or Python's): /proc tells; a zombie has
     * exited and waits for its parent to reap it. */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) return 0;
    buf[len] = 0;
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    char state = paren && paren[1] == ' ' ? paren[2] : '?';
    return state != 'Z' && state != 'X';
}

int llmos_test_mpi_signal(pid_t pid, int sig) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));) { /* every thread's children */
        if (e->d_name[0] == '.') continue;
        char cpath[320];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, e->d_name);
        FILE *f = fopen(cpath, "r");
        for (int child; f && fscanf(f, "%d", &child) == 1;)
            if (kill(child, sig) == 0) count++;
        if (f) fclose(f);
    }
    if (d) closedir(d);
    if (count == 0 && kill(pid, sig) == 0) count = 1;
    return count;
}

int llmos_test_node_argv(const llmos_test_node_opts_t *o, char *path, size_t path_cap, const char **argv,
                         size_t cap, llmos_error_t *err) {
    int ranks = o->ranks ? o->ranks : 1;
    if (ranks < 1 || ranks > LLMOS_TEST_NODE_MAX_RANKS)
        return llmos_error_set(err, LLMOS_EINVAL, "node fixture: %d ranks (1..%d)", o->ranks,
                               LLMOS_TEST_NODE_MAX_RANKS);
    if (o->llmosd)
        snprintf(path, path_cap, "%s", o->llmosd);
    else
        llmos_test_bin_path("llmosd", path, path_cap);
    static const char *const np[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8"};
    _Static_assert(sizeof np / sizeof np[0] == LLMOS_TEST_NODE_MAX_RANKS + 1,
                   "one -np string per rank count");
    size_t k = 0, nargs = 0;
    while (o->args && o->args[nargs])
        nargs++;
    if (nargs + 12 > cap)
        return llmos_error_set(err, LLMOS_EINVAL, "node fixture: %zu llmosd arguments (at most %zu)", nargs,
                               cap - 12);
    if (ranks > 1) {
        argv[k++] = "mpirun";
        argv[k++] = "--allow-run-as-root";
        argv[k++] = "--oversubscribe";
        if (o->mpi_recovery) argv[k++] = "--enable-recovery";
        argv[k++] = "-np";
        argv[k++] = np[ranks];
    }
    argv[k++] = path;
    argv[k++] = "--listen";
    argv[k++] = o->listen ? o->listen : "tcp://127.0.0.1:0";
    for (size_t i = 0; i < nargs; i++)
        argv[k++] = o->args[i];
    argv[k] = NULL;
    return 0;
}

/* The last bytes of file path (whole lines, newlines as "; "), for an
 * error message; "" when there is none. */
static void file_tail(const char *path, char *out, size_t cap) {
    out[0] = 0;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) return;
    char buf[TAIL_MAX + 1];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)TAIL_MAX ? end - (off_t)TAIL_MAX : 0;
    ssize_t n = end > 0 ? pread(fd, buf, (size_t)(end - from), from) : 0;
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    char *s = buf;
    if (from > 0 && strchr(s, '\n')) s = strchr(s, '\n') + 1; /* from a line's start */
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = 0;
    for (char *p = s; *p; p++)
        if (*p == '\n') *p = ';';
    snprintf(out, cap, "%s", s);
}

/* Parses the complete lines of buf[0..len) for "llmosd: node ID listening
 * on ENDPOINT"; fills n->endpoints / node_ids.  Returns how many. */
static int parse_endpoints(llmos_test_node_t *n, const char *buf, size_t len) {
    int count = 0;
    const char *line = buf, *end = buf + len;
    while (line < end && count < LLMOS_TEST_NODE_MAX_RANKS) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) break; /* a line still being written */
        char text[512];
        size_t l = (size_t)(nl - line) < sizeof text - 1 ? (size_t)(nl - line) : sizeof text - 1;
        memcpy(text, line, l);
        text[l] = 0;
        const char *at = strstr(text, "llmosd: node ");
        unsigned long long id;
        char ep[LLMOS_TEST_NODE_ENDPOINT_MAX];
        if (at && sscanf(at, "llmosd: node %llx listening on %255s", &id, ep) == 2) {
            snprintf(n->endpoints[count], sizeof n->endpoints[count], "%s", ep);
            n->node_ids[count++] = id;
        }
        line = nl + 1;
    }
    return count;
}

/* Reads what the node printed so far (from fd, else from path). */
static int read_out(int fd, const char *path, char *buf, size_t cap, size_t *len, llmos_error_t *err) {
    *len = 0;
    int own = -1;
    if (fd < 0) {
        own = fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) return 0; /* not made yet */
            return llmos_error_set(err, LLMOS_EIO, "node fixture: %s: %s", path, strerror(errno));
        }
    }
    ssize_t n = pread(fd, buf, cap, 0);
    int e = errno;
    if (own >= 0) close(own);
    if (n < 0)
        return llmos_error_set(err, LLMOS_EIO, "node fixture: reading llmosd's stdout: %s", strerror(e));
    *len = (size_t)n;
    return 0;
}

/* 1 when endpoint ep answers as o->actor as the probe asks, 0 when not (yet). */
static int probe(const char *ep, const llmos_test_node_opts_t *o, uint32_t timeout_ms) {
    llmos_client_t *c = NULL;
    llmos_client_opts_t co = {.timeout_ms = timeout_ms};
    if (llmos_client_connect(ep, &co, &c, NULL) != 0) return 0;
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, o->actor, o->probe_type, NULL, 0, timeout_ms, &r, NULL);
    int ok = o->probe_type ? rc == 0 : (r != NULL && rc != LLMOS_CLIENT_ENOTFOUND);
    llmos_client_reply_free(&r);
    llmos_client_destroy(&c);
    return ok;
}

/* The error for a node that ended before it served. */
static int exited_err(llmos_test_node_t *n, int status, const char *stderr_path, llmos_error_t *err) {
    char tail[TAIL_MAX + 1];
    file_tail(stderr_path, tail, sizeof tail);
    char how[48];
    if (status < 0)
        snprintf(how, sizeof how, "exited");
    else if (status > 128)
        snprintf(how, sizeof how, "was killed by signal %d", status - 128);
    else
        snprintf(how, sizeof how, "exited with status %d", status);
    return llmos_error_set(err, LLMOS_EUNAVAILABLE,
                           "llmosd (pid %d) %s before it served (%d endpoint%s printed)%s%s", (int)n->pid,
                           how, n->n, n->n == 1 ? "" : "s", tail[0] ? ": " : "", tail);
}

int llmos_test_node_wait(llmos_test_node_t *n, const llmos_test_node_opts_t *o, const char *stdout_path,
                         llmos_error_t *err) {
    int ranks = o->ranks > 1 ? o->ranks : 1;
    uint32_t timeout_ms = o->timeout_ms ? o->timeout_ms : LLMOS_TEST_NODE_TIMEOUT_MS;
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    if (n->out_fd < 0 && !stdout_path)
        return llmos_error_set(err, LLMOS_EINVAL, "node fixture: no stdout to read");
    char *buf = malloc(OUT_READ_MAX);
    if (!buf) return llmos_error_set(err, LLMOS_ENOMEM, "node fixture: no memory");
    int rc = 0, status;
    n->n = 0;
    for (;;) {
        size_t len;
        if ((rc = read_out(n->out_fd, stdout_path, buf, OUT_READ_MAX, &len, err)) != 0) break;
        n->n = parse_endpoints(n, buf, len);
        if (n->n >= ranks) break;
        if (!llmos_test_proc_alive(n->pid, &status)) {
            rc = exited_err(n, status, o->stderr_path, err);
            if (status >= 0) n->pid = 0, n->status = status;
            break;
        }
        if (llmos_now_ns() >= until) {
            rc = llmos_error_set(err, LLMOS_ETIMEDOUT,
                                 "llmosd (pid %d): %d of %d rank%s printed an endpoint in %u ms", (int)n->pid,
                                 n->n, ranks, ranks == 1 ? "" : "s", timeout_ms);
            break;
        }
        llmos_sleep_ms(POLL_MS);
    }
    free(buf);
    if (rc) return rc;
    /* Every rank listens with every actor started (llmosd prints the line
     * only then).  With an actor named, the rank that answers as it is the
     * one to use: asked until one does. */
    n->rank = 0;
    while (o->actor) {
        uint64_t now = llmos_now_ns();
        uint32_t left = now < until ? (uint32_t)((until - now) / 1000000u) : 0;
        uint32_t t = left < PROBE_MS ? (left ? left : 1) : PROBE_MS;
        n->rank = -1;
        for (int i = 0; i < n->n && n->rank < 0; i++)
            if (probe(n->endpoints[i], o, t)) n->rank = i;
        if (n->rank >= 0) break;
        if (!llmos_test_proc_alive(n->pid, &status)) {
            rc = exited_err(n, status, o->stderr_path, err);
            if (status >= 0) n->pid = 0, n->status = status;
            return rc;
        }
        if (llmos_now_ns() >= until)
            return llmos_error_set(err, LLMOS_ETIMEDOUT,
                                   "llmosd (pid %d): no rank of %d answers as `%s` in %u ms", (int)n->pid,
                                   n->n, o->actor, timeout_ms);
        llmos_sleep_ms(POLL_MS);
    }
    snprintf(n->endpoint, sizeof n->endpoint, "%s", n->endpoints[n->rank]);
    n->node_id = n->node_ids[n->rank];
    return 0;
}

void llmos_test_node_release(llmos_test_node_t *n) {
    if (!n) return;
    if (n->out_fd > 0) close(n->out_fd); /* never 0: a zeroed struct must not close stdin */
    n->out_fd = -1;
}

/* Kills the whole process group (mpirun and its ranks) and reaps the leader. */
static int kill_group(llmos_test_node_t *n) {
    if (kill(-n->pid, SIGKILL) != 0) kill(n->pid, SIGKILL);
    int st = -1;
    if (waitpid(n->pid, &st, 0) == n->pid) return wait_status(st);
    while (llmos_test_proc_alive(n->pid, NULL))
        llmos_sleep_ms(POLL_MS); /* not ours: wait until it is gone */
    return -1;
}

int llmos_test_node_start(llmos_test_node_t *n, const llmos_test_node_opts_t *o, llmos_error_t *err) {
    static const llmos_test_node_opts_t none = {0};
    if (!n) return llmos_error_set(err, LLMOS_EINVAL, "node fixture: no node");
    if (!o) o = &none;
    memset(n, 0, sizeof *n);
    n->out_fd = -1;
    n->status = -1;
    char path[PATH_MAX];
    const char *argv[ARGV_MAX];
    int rc = llmos_test_node_argv(o, path, sizeof path, argv, ARGV_MAX, err);
    if (rc) return rc;

    int child_out;
    if (o->stdout_path) {
        child_out = open(o->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        n->out_fd = child_out < 0 ? -1 : open(o->stdout_path, O_RDONLY | O_CLOEXEC);
    } else {
        const char *tmp = getenv("TMPDIR");
        char tmpl[PATH_MAX];
        snprintf(tmpl, sizeof tmpl, "%s/llmos-node-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        child_out = mkostemp(tmpl, O_CLOEXEC);
        if (child_out >= 0) {
            unlink(tmpl); /* gone with its last descriptor */
            n->out_fd = dup(child_out);
        }
    }
    if (child_out < 0 || n->out_fd < 0) {
        rc = llmos_error_set(err, LLMOS_EIO, "node fixture: a file for llmosd's stdout (%s): %s",
                             o->stdout_path ? o->stdout_path : "temporary", strerror(errno));
        if (child_out >= 0) close(child_out);
        llmos_test_node_release(n);
        return rc;
    }
    int child_err = -1;
    if (o->stderr_path &&
        (child_err = open(o->stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        rc = llmos_error_set(err, LLMOS_EIO, "node fixture: %s: %s", o->stderr_path, strerror(errno));
        close(child_out);
        llmos_test_node_release(n);
        return rc;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the starter died before prctl */
        dup2(child_out, STDOUT_FILENO);
        if (child_err >= 0) dup2(child_err, STDERR_FILENO);
        execvp(argv[0], (char *const *)argv);
        dprintf(STDERR_FILENO, "node fixture: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int fork_errno = errno;
    close(child_out);
    if (child_err >= 0) close(child_err);
    if (pid < 0) {
        llmos_test_node_release(n);
        return llmos_error_set(err, LLMOS_EIO, "node fixture: fork: %s", strerror(fork_errno));
    }
    setpgid(pid, pid); /* also here: no race with the first kill(-pid) */
    n->pid = pid;
    n->mpi = o->ranks > 1;
    if ((rc = llmos_test_node_wait(n, o, NULL, err)) != 0) {
        if (n->pid > 0) n->status = kill_group(n);
        n->pid = 0;
        llmos_test_node_release(n);
    }
    return rc;
}

int llmos_test_node_stop(llmos_test_node_t *n, uint32_t timeout_ms, int *status, llmos_error_t *err) {
    if (status) *status = -1;
    if (!n || n->pid <= 0) return llmos_error_set(err, LLMOS_EINVAL, "node fixture: the node is not running");
    if (!timeout_ms) timeout_ms = LLMOS_TEST_NODE_STOP_MS;
    if (n->mpi)
        llmos_test_mpi_signal(n->pid, SIGTERM);
    else
        kill(n->pid, SIGTERM);
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int st = -1, rc = 0;
    while (llmos_test_proc_alive(n->pid, &st)) {
        if (llmos_now_ns() >= until) {
            st = kill_group(n);
            rc = llmos_error_set(err, LLMOS_ETIMEDOUT,
                                 "llmosd (pid %d) did not exit within %u ms of SIGTERM: killed", (int)n->pid,
                                 timeout_ms);
            break;
        }
        llmos_sleep_ms(POLL_MS);
    }
    n->pid = 0;
    n->status = st;
    if (status) *status = st;
    llmos_test_node_release(n);
    return rc;
}

int llmos_test_node_kill(llmos_test_node_t *n, int sig, int *status) {
    if (status) *status = -1;
    if (!n || n->pid <= 0) return LLMOS_EINVAL;
    kill(n->pid, sig);
    int st = -1;
    pid_t r;
    while ((r = waitpid(n->pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (r == n->pid)
        st = wait_status(st);
    else
        while (llmos_test_proc_alive(n->pid, &st))
            llmos_sleep_ms(POLL_MS);
    n->pid = 0;
    n->status = st;
    if (status) *status = st;
    llmos_test_node_release(n);
    return 0;
}
