/*
 * actor_bench.c — the actor runtime and its wire against raw ZeroMQ, all
 * measured in one run (JSON lines via bench_emit):
 *
 *   inproc_oneway_1x1   1 sender thread -> 1 actor, msgs/s
 *   inproc_oneway_8x1   8 sender threads -> 1 actor, msgs/s
 *   remote_oneway       this node -> sink on another node process over TCP
 *                       loopback, 64-byte payloads; baseline raw ZeroMQ
 *                       PUSH/PULL of 64-byte messages between the same two
 *                       kinds of process
 *   ask_local_p50/p99   rt_call to a local echo actor
 *   ask_remote_p50/p99  rt_call to echo on the other node; baseline (both
 *                       asks) a raw ZeroMQ REQ/REP round trip over TCP
 *                       loopback with the same payload
 *
 * The other processes are forked before anything starts a thread: one runs
 * a node exactly as llmosd does (runtime + transport + built-in actors), one
 * runs the raw ZeroMQ PULL and REP sockets.  Each tells the parent its
 * endpoint through a pipe and lives until the pipe closes.
 *
 * Usage: actor_bench [--quick]   (--quick: smaller counts, for smoke runs)
 */
#include "actors/node.h"
#include "bench/common/bench.h"
#include "cluster/config.h"
#include "cluster/transport.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define PAYLOAD 64

static uint64_t n_inproc = 3000000, n_remote = 1000000, n_asks = 20000;

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "actor_bench: %s: %s\n", what, detail);
    exit(1);
}

/* ---- child processes ---- */

typedef struct child {
    pid_t pid;
    int rfd, wfd; /* parent reads endpoints from rfd; closing wfd ends the child */
    char ep1[256], ep2[256];
} child_t;

/* Waits until the parent closes its end of the pipe. */
static void child_wait_parent(int fd) {
    char c;
    while (read(fd, &c, 1) > 0) {
    }
}

static void node_child(int out, int in) {
    llmos_log_set_level(LLMOS_LOG_WARN);
    cl_config_t cfg;
    cl_config_init(&cfg);
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:0");
    rt_system_opts_t so = {.node_id = cl_node_id_random(), .node_name = "bench-peer", .workers = 2};
    llmos_error_t err;
    rt_system_t *sys;
    cl_transport_t *tr;
    if (rt_system_new(&so, &sys, &err) || cl_transport_new(sys, &cfg, &tr, &err)) fail("peer node", err.msg);
    actors_node_env_t env = {sys, tr, "bench-peer", 2, llmos_now_ns()};
    if (actors_node_start(&env, &err)) fail("peer actors", err.msg);
    dprintf(out, "%s\n-\n", cl_transport_endpoint(tr));
    child_wait_parent(in);
    cl_transport_stop(tr);
    rt_system_destroy(&sys);
    cl_transport_destroy(&tr);
}

/* PULL counts messages until a 1-byte end marker, then reports the count;
 * REP echoes. */
static void raw_child(int out, int in) {
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL), *rep = zmq_socket(ctx, ZMQ_REP);
    if (zmq_bind(pull, "tcp://127.0.0.1:*") || zmq_bind(rep, "tcp://127.0.0.1:*")) fail("raw bind", zmq_strerror(errno));
    char e1[256], e2[256];
    size_t l1 = sizeof e1, l2 = sizeof e2;
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, e1, &l1);
    zmq_getsockopt(rep, ZMQ_LAST_ENDPOINT, e2, &l2);
    dprintf(out, "%s\n%s\n", e1, e2);
    uint64_t count = 0;
    char buf[4096];
    for (;;) {
        zmq_pollitem_t it[3] = {{pull, 0, ZMQ_POLLIN, 0}, {rep, 0, ZMQ_POLLIN, 0}, {NULL, in, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 3, -1) < 0) continue;
        if (it[2].revents) break; /* parent closed the pipe */
        if (it[0].revents) {
            int n;
            while ((n = zmq_recv(pull, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0) {
                if (n == 1) {
                    dprintf(out, "%" PRIu64 "\n", count);
                    count = 0;
                } else {
                    count++;
                }
            }
        }
        if (it[1].revents) {
            int n = zmq_recv(rep, buf, sizeof buf, 0);
            if (n >= 0) zmq_send(rep, buf, (size_t)n, 0);
        }
    }
    zmq_close(pull);
    zmq_close(rep);
    zmq_ctx_term(ctx);
}

static void read_line(int fd, char *out, size_t cap) {
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, out + n, 1);
        if (r <= 0) fail("child", "exited early");
        if (out[n] == '\n') break;
        n++;
    }
    out[n] = 0;
}

static int inherited[8], n_inherited;

static void child_start(child_t *c, void (*fn)(int, int)) {
    int up[2], down[2];
    if (pipe(up) || pipe(down)) fail("pipe", strerror(errno));
    c->pid = fork();
    if (c->pid < 0) fail("fork", strerror(errno));
    if (c->pid == 0) {
        close(up[0]);
        close(down[1]);
        /* Earlier children's pipe ends must not stay open here, or they
         * would never see their pipe close. */
        for (int i = 0; i < n_inherited; i++) close(inherited[i]);
        fn(up[1], down[0]);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    c->rfd = up[0];
    c->wfd = down[1];
    inherited[n_inherited++] = c->rfd;
    inherited[n_inherited++] = c->wfd;
    read_line(c->rfd, c->ep1, sizeof c->ep1);
    read_line(c->rfd, c->ep2, sizeof c->ep2);
}

static void child_stop(child_t *c) {
    close(c->wfd);
    int st;
    waitpid(c->pid, &st, 0);
    close(c->rfd);
}

/* ---- helpers ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p) {
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1));
    return (double)v[i] / 1000.0; /* ns -> us */
}

static void emit(const char *metric, double value, const char *unit, const char *baseline, double base,
                 const char *note) {
    bench_figure_t f = {.bench = "actor", .metric = metric, .value = value, .unit = unit,
                        .baseline = baseline, .baseline_value = base, .note = note};
    bench_emit(&f);
}

static uint64_t sink_count(rt_system_t *sys, rt_ref_t sink) {
    rt_msg_t *r = NULL;
    llmos_error_t err;
    if (rt_call(sys, sink, ACTORS_MSG_SINK_COUNT, NULL, 0, 10000, &r, &err) || r->status || r->len != 8)
        fail("sink count", r && r->error ? r->error : err.msg);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)r->data[i] << (8 * i);
    rt_msg_free(r);
    return v;
}

static void sink_reset(rt_system_t *sys, rt_ref_t sink) {
    rt_msg_t *r = NULL;
    llmos_error_t err;
    if (rt_call(sys, sink, ACTORS_MSG_SINK_RESET, NULL, 0, 10000, &r, &err) || r->status)
        fail("sink reset", r && r->error ? r->error : err.msg);
    rt_msg_free(r);
}

static void send_all(rt_system_t *sys, rt_ref_t to, uint64_t n) {
    uint8_t payload[PAYLOAD];
    memset(payload, 0x5a, sizeof payload);
    for (uint64_t i = 0; i < n; i++) {
        memcpy(payload, &i, sizeof i);
        int rc;
        while ((rc = rt_send(sys, RT_REF_NONE, to, ACTORS_MSG_BENCH, payload, sizeof payload)) != 0) {
            if (rc != LLMOS_EOVERLOADED) fail("send", llmos_strerror(rc));
            sched_yield(); /* back-pressure: the queue to the I/O thread is full */
        }
    }
}

static void wait_sink(rt_system_t *sys, rt_ref_t sink, uint64_t want) {
    uint64_t until = llmos_now_ns() + 120000000000ull;
    while (sink_count(sys, sink) < want) {
        if (llmos_now_ns() > until) fail("sink", "messages did not all arrive within 120 s");
        usleep(500);
    }
}

/* ---- in-process ---- */

typedef struct sender_arg {
    rt_system_t *sys;
    rt_ref_t to;
    uint64_t n;
} sender_arg_t;

static void *sender_main(void *p) {
    sender_arg_t *a = p;
    send_all(a->sys, a->to, a->n);
    return NULL;
}

static double inproc_rate(rt_system_t *sys, rt_ref_t sink, int senders, uint64_t n) {
    sink_reset(sys, sink);
    pthread_t th[8];
    sender_arg_t a = {sys, sink, n / (uint64_t)senders};
    uint64_t t0 = llmos_now_ns();
    for (int i = 0; i < senders; i++) pthread_create(&th[i], NULL, sender_main, &a);
    for (int i = 0; i < senders; i++) pthread_join(th[i], NULL);
    wait_sink(sys, sink, a.n * (uint64_t)senders);
    return (double)(a.n * (uint64_t)senders) / ((double)(llmos_now_ns() - t0) / 1e9);
}

/* ---- asks ---- */

static void ask_latency(rt_system_t *sys, rt_ref_t echo, uint64_t n, double *p50, double *p99) {
    uint64_t *lat = malloc(n * sizeof *lat);
    uint8_t payload[PAYLOAD] = {0};
    for (uint64_t i = 0; i < n + n / 10; i++) { /* the first 10% warm up */
        rt_msg_t *r = NULL;
        llmos_error_t err;
        uint64_t t0 = llmos_now_ns();
        if (rt_call(sys, echo, ACTORS_MSG_BENCH, payload, sizeof payload, 5000, &r, &err) || r->status)
            fail("ask", r && r->error ? r->error : err.msg);
        uint64_t dt = llmos_now_ns() - t0;
        rt_msg_free(r);
        if (i >= n / 10) lat[i - n / 10] = dt;
    }
    *p50 = pct(lat, n, 0.50);
    *p99 = pct(lat, n, 0.99);
    free(lat);
}

/* ---- raw ZeroMQ ---- */

static double raw_pushpull(void *ctx, child_t *raw, uint64_t n) {
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = 100000;
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_connect(push, raw->ep1);
    char buf[PAYLOAD];
    memset(buf, 0x5a, sizeof buf);
    zmq_send(push, "x", 1, 0); /* connect and reset the counter */
    char line[64];
    read_line(raw->rfd, line, sizeof line);
    uint64_t t0 = llmos_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memcpy(buf, &i, sizeof i);
        zmq_send(push, buf, sizeof buf, 0);
    }
    zmq_send(push, "x", 1, 0);
    read_line(raw->rfd, line, sizeof line);
    double rate = (double)n / ((double)(llmos_now_ns() - t0) / 1e9);
    if (strtoull(line, NULL, 10) != n) fail("raw push/pull", "lost messages");
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(push);
    return rate;
}

static void raw_reqrep(void *ctx, child_t *raw, uint64_t n, double *p50, double *p99) {
    void *req = zmq_socket(ctx, ZMQ_REQ);
    zmq_connect(req, raw->ep2);
    uint64_t *lat = malloc(n * sizeof *lat);
    char buf[PAYLOAD] = {0}, back[PAYLOAD];
    for (uint64_t i = 0; i < n + n / 10; i++) {
        uint64_t t0 = llmos_now_ns();
        zmq_send(req, buf, sizeof buf, 0);
        if (zmq_recv(req, back, sizeof back, 0) != PAYLOAD) fail("raw req/rep", "short reply");
        if (i >= n / 10) lat[i - n / 10] = llmos_now_ns() - t0;
    }
    *p50 = pct(lat, n, 0.50);
    *p99 = pct(lat, n, 0.99);
    free(lat);
    int zero = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(req);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) n_inproc = 300000, n_remote = 100000, n_asks = 2000;
    signal(SIGPIPE, SIG_IGN);
    llmos_log_set_level(LLMOS_LOG_WARN);
    /* Children first, while this process has no threads. */
    child_t peer, raw;
    child_start(&peer, node_child);
    child_start(&raw, raw_child);

    cl_config_t cfg;
    cl_config_init(&cfg);
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:0");
    llmos_error_t err;
    if (cl_config_add_peer(&cfg, peer.ep1, "bench", &err)) fail("peer", err.msg);
    rt_system_opts_t so = {.node_id = cl_node_id_random(), .node_name = "bench", .workers = 2};
    rt_system_t *sys;
    cl_transport_t *tr;
    if (rt_system_new(&so, &sys, &err) || cl_transport_new(sys, &cfg, &tr, &err)) fail("node", err.msg);
    actors_node_env_t env = {sys, tr, "bench", 2, llmos_now_ns()};
    if (actors_node_start(&env, &err)) fail("actors", err.msg);
    uint64_t peer_id;
    if (cl_transport_wait_peer(tr, peer.ep1, 20000, &peer_id, &err)) fail("peer", err.msg);

    char note[128];
    /* In-process one-way. */
    rt_ref_t sink = rt_ref_name(0, "sink");
    inproc_rate(sys, sink, 1, n_inproc / 10); /* warm-up */
    double r1 = inproc_rate(sys, sink, 1, n_inproc);
    snprintf(note, sizeof note, "workers=2 payload=%d n=%" PRIu64, PAYLOAD, n_inproc);
    emit("inproc_oneway_1x1", r1, "msgs/s", NULL, 0, note);
    double r8 = inproc_rate(sys, sink, 8, n_inproc);
    emit("inproc_oneway_8x1", r8, "msgs/s", NULL, 0, note);

    /* Remote one-way vs raw PUSH/PULL. */
    void *ctx = zmq_ctx_new();
    double raw_rate = raw_pushpull(ctx, &raw, n_remote);
    rt_ref_t rsink = rt_ref_name(peer_id, "sink");
    sink_reset(sys, rsink);
    send_all(sys, rsink, n_remote / 10); /* warm-up */
    wait_sink(sys, rsink, n_remote / 10);
    sink_reset(sys, rsink);
    uint64_t t0 = llmos_now_ns();
    send_all(sys, rsink, n_remote);
    wait_sink(sys, rsink, n_remote);
    double remote_rate = (double)n_remote / ((double)(llmos_now_ns() - t0) / 1e9);
    snprintf(note, sizeof note, "tcp loopback, payload=%d, n=%" PRIu64, PAYLOAD, n_remote);
    emit("remote_oneway", remote_rate, "msgs/s", "raw zmq push/pull", raw_rate, note);

    /* Ask latency vs raw REQ/REP. */
    double rr50, rr99, l50, l99, m50, m99;
    raw_reqrep(ctx, &raw, n_asks, &rr50, &rr99);
    ask_latency(sys, rt_ref_name(0, "echo"), n_asks, &l50, &l99);
    ask_latency(sys, rt_ref_name(peer_id, "echo"), n_asks, &m50, &m99);
    snprintf(note, sizeof note, "payload=%d n=%" PRIu64, PAYLOAD, n_asks);
    emit("ask_local_p50", l50, "us", "raw zmq req/rep p50 (tcp)", rr50, note);
    emit("ask_local_p99", l99, "us", "raw zmq req/rep p99 (tcp)", rr99, note);
    emit("ask_remote_p50", m50, "us", "raw zmq req/rep p50 (tcp)", rr50, note);
    emit("ask_remote_p99", m99, "us", "raw zmq req/rep p99 (tcp)", rr99, note);

    zmq_ctx_term(ctx);
    cl_transport_stop(tr);
    rt_system_destroy(&sys);
    cl_transport_destroy(&tr);
    child_stop(&raw);
    child_stop(&peer);
    return 0;
}
