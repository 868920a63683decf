/*
 * cluster_driver.c — integration tests with real llmosd processes on
 * loopback.  The driver is itself a node (runtime + transport): it starts
 * llmosd processes with the node fixture (tests/lib/node_fixture.h: port 0,
 * waited for until they serve), peers with them and talks to their
 * built-in echo and sink actors.
 *
 *   cluster_driver mesh K TOTAL  K llmosd nodes (2 or 3), all peered.  For
 *       every ordered pair (i, j) the driver sends TOTAL/(K(K-1)) one-way
 *       messages to echo@i with from = sink@j, so echo@i's replies travel
 *       llmosd i -> llmosd j.  Every sink must count exactly what was aimed at
 *       it: none lost, none duplicated.
 *   cluster_driver restart  one llmosd with a fixed node id: asks to echo in
 *       a loop; SIGKILL; every ask still gets an answer (an error) and
 *       one-way sends are refused once the peer is known dead; restart on
 *       the same port; asks succeed again and a fresh batch of one-way
 *       messages is counted exactly.  Then the same with a node that comes
 *       back under a new id: the old id answers with errors.
 *   cluster_driver client   libllmos-client against a real llmosd: ping,
 *       echo, errors (unknown actor/type, too big, timeout), status, one-way
 *       sends, and one handle shared by several threads.
 *
 * Exit 0 = passed; any failure prints what and exits 1.
 */
#include "actors/node.h"
#include "cluster/config.h"
#include "cluster/transport.h"
#include "llmos/client.h"
#include "llmos/envelope.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "node_fixture.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NODES 3

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

typedef llmos_test_node_t proc_t;

static proc_t procs[MAX_NODES];
static int nprocs;

static void kill_all(void) {
    for (int i = 0; i < nprocs; i++) llmos_test_node_kill(&procs[i], SIGKILL, NULL);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cluster_driver: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    kill_all();
    exit(1);
}

/* Starts llmosd on listen with args (NULL-terminated) and waits until it serves. */
static void proc_start(proc_t *p, const char *listen, const char **args) {
    const char *argv[32];
    int n = 0;
    argv[n++] = "--workers";
    argv[n++] = "2";
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    for (int i = 0; args && args[i] && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    llmos_test_node_opts_t o = {.args = argv, .listen = listen, .timeout_ms = 20000};
    llmos_error_t err;
    if (llmos_test_node_start(p, &o, &err) != 0) die("llmosd (%s) did not start: %s", listen, err.msg);
}

/* SIGTERM: a clean stop, which must end with status 0; SIGKILL: a crash. */
static void proc_kill(proc_t *p, int sig) {
    int st;
    llmos_error_t err;
    if (sig == SIGTERM) {
        if (llmos_test_node_stop(p, 0, &st, &err) != 0) die("%s", err.msg);
    } else {
        llmos_test_node_kill(p, sig, &st);
    }
}

/* ---- the driver's own node ---- */

static rt_system_t *sys;
static cl_transport_t *tr;

static void driver_start(int npeers, proc_t *peers) {
    cl_config_t cfg;
    cl_config_init(&cfg);
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:0");
    cfg.heartbeat_ms = 100;
    cfg.peer_timeout_ms = 1500;
    llmos_error_t err;
    for (int i = 0; i < npeers; i++)
        if (cl_config_add_peer(&cfg, peers[i].endpoint, "driver", &err) != 0) die("%s", err.msg);
    rt_system_opts_t so = {.node_id = cl_node_id_random(), .node_name = "driver", .workers = 2};
    if (rt_system_new(&so, &sys, &err) != 0) die("runtime: %s", err.msg);
    if (cl_transport_new(sys, &cfg, &tr, &err) != 0) die("transport: %s", err.msg);
    for (int i = 0; i < npeers; i++)
        if (cl_transport_wait_peer(tr, peers[i].endpoint, 20000, NULL, &err) != 0) die("%s", err.msg);
}

static void driver_stop(void) {
    cl_transport_stop(tr);
    rt_system_destroy(&sys);
    cl_transport_destroy(&tr);
}

/* Asks node's sink for its count (or resets it). */
static uint64_t sink_ask(uint64_t node, uint32_t type) {
    rt_msg_t *reply = NULL;
    llmos_error_t err;
    int rc = rt_call(sys, rt_ref_name(node, "sink"), type, NULL, 0, 5000, &reply, &err);
    if (rc != 0) die("sink@%016" PRIx64 ": %s", node, err.msg);
    if (reply->status != 0) die("sink@%016" PRIx64 " answered %d: %s", node, reply->status, reply->error);
    uint64_t v = 0;
    if (type == ACTORS_MSG_SINK_COUNT) {
        if (reply->len != 8) die("sink count reply of %zu bytes", reply->len);
        for (int i = 0; i < 8; i++) v |= (uint64_t)reply->data[i] << (8 * i);
    }
    rt_msg_free(reply);
    return v;
}

/* NodeStatus.peers of a node, via its node actor. */
static uint32_t node_peers(uint64_t node) {
    rt_msg_t *reply = NULL;
    llmos_error_t err;
    if (rt_call(sys, rt_ref_name(node, "node"), RT_MSG_STATUS, NULL, 0, 5000, &reply, &err) != 0 || reply->status)
        die("status of %016" PRIx64 ": %s", node, reply ? reply->error : err.msg);
    Llmos__NodeStatus *st = llmos__node_status__unpack(NULL, reply->len, reply->data);
    rt_msg_free(reply);
    if (!st) die("status of %016" PRIx64 " does not decode", node);
    uint32_t n = st->peers;
    llmos__node_status__free_unpacked(st, NULL);
    return n;
}

/* One-way send that waits while the outgoing queue is full (back-pressure). */
static void send_retry(rt_ref_t from, rt_ref_t to, uint32_t type, const void *data, size_t len) {
    for (int tries = 0;; tries++) {
        int rc = rt_send(sys, from, to, type, data, len);
        if (rc == 0) return;
        if (rc != LLMOS_EOVERLOADED || tries > 200000) die("send to %016" PRIx64 ": %s", to.node, llmos_strerror(rc));
        usleep(200);
    }
}

static uint64_t wait_count(uint64_t node, uint64_t want, uint32_t timeout_ms) {
    uint64_t until = llmos_now_ns() + (uint64_t)timeout_ms * 1000000u, got = 0, last = 0, last_change = llmos_now_ns();
    while (llmos_now_ns() < until) {
        got = sink_ask(node, ACTORS_MSG_SINK_COUNT);
        if (got >= want) return got;
        if (got != last) last = got, last_change = llmos_now_ns();
        if (llmos_now_ns() - last_change > 10000000000ull) break; /* no progress for 10 s */
        llmos_sleep_ms(20);
    }
    return got;
}

/* ---- mesh ---- */

static int run_mesh(int k, uint64_t total) {
    if (k < 2 || k > MAX_NODES) die("mesh needs 2 or 3 nodes");
    const char *peer_args[MAX_NODES][2 * MAX_NODES + 1];
    for (int i = 0; i < k; i++) {
        int n = 0;
        for (int j = 0; j < i; j++) {
            peer_args[i][n++] = "--peer";
            peer_args[i][n++] = procs[j].endpoint;
        }
        peer_args[i][n] = NULL;
        proc_start(&procs[i], "tcp://127.0.0.1:0", peer_args[i]);
        nprocs = i + 1;
    }
    driver_start(k, procs);
    /* Every llmosd must see the other llmosd nodes and the driver. */
    uint64_t until = llmos_now_ns() + 20000000000ull;
    for (int i = 0; i < k; i++)
        while (node_peers(procs[i].node_id) < (uint32_t)k) {
            if (llmos_now_ns() > until) die("node %d sees only %u peers", i, node_peers(procs[i].node_id));
            llmos_sleep_ms(20);
        }
    for (int i = 0; i < k; i++) sink_ask(procs[i].node_id, ACTORS_MSG_SINK_RESET);
    uint64_t pairs = (uint64_t)(k * (k - 1)), per_pair = (total + pairs - 1) / pairs; /* at least total */
    uint8_t payload[64];
    memset(payload, 0xab, sizeof payload);
    uint64_t t0 = llmos_now_ns();
    for (uint64_t m = 0; m < per_pair; m++) {
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                if (i == j) continue;
                memcpy(payload, &m, sizeof m);
                send_retry(rt_ref_name(procs[j].node_id, "sink"), rt_ref_name(procs[i].node_id, "echo"),
                           ACTORS_MSG_BENCH, payload, sizeof payload);
            }
    }
    uint64_t want = per_pair * (uint64_t)(k - 1);
    int ok = 1;
    for (int j = 0; j < k; j++) {
        uint64_t got = wait_count(procs[j].node_id, want, 120000);
        printf("mesh: sink@node%d counted %" PRIu64 " of %" PRIu64 "\n", j, got, want);
        if (got != want) ok = 0;
    }
    /* A second look: nothing more arrives late (no duplicates). */
    llmos_sleep_ms(300);
    for (int j = 0; j < k && ok; j++) {
        uint64_t got = sink_ask(procs[j].node_id, ACTORS_MSG_SINK_COUNT);
        if (got != want) die("sink@node%d now counts %" PRIu64 ", expected %" PRIu64, j, got, want);
    }
    double secs = (double)(llmos_now_ns() - t0) / 1e9;
    printf("mesh: %d nodes, %" PRIu64 " messages node-to-node in %.2f s\n", k, per_pair * (uint64_t)(k * (k - 1)),
           secs);
    cl_stats_t st;
    cl_transport_stats(tr, &st);
    if (st.undelivered || st.decode || st.too_big) die("driver counted undelivered/decode errors");
    driver_stop();
    for (int i = 0; i < k; i++) proc_kill(&procs[i], SIGTERM);
    if (!ok) die("messages lost");
    return 0;
}

/* ---- restart ---- */

typedef struct tally {
    uint64_t asks, ok, errors, send_ok, send_refused;
} tally_t;

static void ask_echo(uint64_t node, tally_t *t, uint32_t timeout_ms) {
    rt_msg_t *reply = NULL;
    llmos_error_t err;
    uint64_t v = t->asks++;
    int rc = rt_call(sys, rt_ref_name(node, "echo"), ACTORS_MSG_BENCH, &v, sizeof v, timeout_ms, &reply, &err);
    if (rc == 0 && reply->status == 0) {
        if (reply->len != sizeof v || memcmp(reply->data, &v, sizeof v) != 0) die("echo returned the wrong payload");
        t->ok++;
    } else {
        t->errors++; /* an answer all the same: a timeout or an error reply */
    }
    rt_msg_free(reply);
}

static void one_way(uint64_t node, tally_t *t) {
    int rc = rt_send(sys, RT_REF_NONE, rt_ref_name(node, "sink"), ACTORS_MSG_BENCH, "x", 1);
    if (rc == 0)
        t->send_ok++;
    else
        t->send_refused++;
}

/* An ask the sink never answers (it only counts BENCH messages): pending
 * until the node dies, then answered by the transport with EUNAVAILABLE. */
typedef struct hanging_ask {
    uint64_t node;
    int rc, status;
    double ms;
} hanging_ask_t;

static void *hanging_ask_main(void *p) {
    hanging_ask_t *h = p;
    rt_msg_t *reply = NULL;
    llmos_error_t err;
    uint64_t t0 = llmos_now_ns();
    h->rc = rt_call(sys, rt_ref_name(h->node, "sink"), ACTORS_MSG_BENCH, "h", 1, 30000, &reply, &err);
    h->ms = (double)(llmos_now_ns() - t0) / 1e6;
    h->status = reply ? reply->status : 0;
    rt_msg_free(reply);
    return NULL;
}

/* fixed_id: llmosd has --node-id and the driver connects to it; otherwise a
 * random id and llmosd connects to the driver (--peer): the driver learns
 * it from its first header. */
static void restart_round(int fixed_id) {
    char listen[CL_ENDPOINT_MAX] = "tcp://127.0.0.1:0";
    const char *args_fixed[] = {"--node-id", "0x5eed", NULL};
    const char *args_learn[] = {"--peer", tr ? cl_transport_endpoint(tr) : "", NULL};
    const char **args = fixed_id ? args_fixed : args_learn;
    proc_t *b = &procs[0];
    proc_start(b, listen, args);
    nprocs = 1;
    uint64_t old_id = b->node_id;
    snprintf(listen, sizeof listen, "%s", b->endpoint); /* come back on the same port */
    if (!tr) driver_start(1, b);
    llmos_error_t err;
    if (cl_transport_wait_peer(tr, b->endpoint, 20000, NULL, &err) != 0) die("%s", err.msg);

    tally_t t = {0};
    for (int i = 0; i < 200; i++) ask_echo(old_id, &t, 2000);
    if (t.ok != 200) die("before the kill only %" PRIu64 "/200 asks succeeded", t.ok);
    sink_ask(old_id, ACTORS_MSG_SINK_RESET);
    for (int i = 0; i < 1000; i++) one_way(old_id, &t);

    hanging_ask_t hang = {.node = old_id};
    pthread_t hang_th;
    pthread_create(&hang_th, NULL, hanging_ask_main, &hang);
    llmos_sleep_ms(200); /* let it reach the node */
    cl_stats_t before;
    cl_transport_stats(tr, &before);
    proc_kill(b, SIGKILL);
    /* While it is down: every ask is answered (error), sends get refused
     * once the death is detected. */
    tally_t down = {0};
    uint64_t until = llmos_now_ns() + 4000000000ull;
    while (llmos_now_ns() < until) {
        ask_echo(old_id, &down, 300);
        one_way(old_id, &down);
        llmos_sleep_ms(1); /* errors come back at once once the death is known: do not spin */
    }
    printf("restart(%s id): while down %" PRIu64 " asks -> %" PRIu64 " ok, %" PRIu64 " errors; %" PRIu64
           " sends refused\n",
           fixed_id ? "same" : "new", down.asks, down.ok, down.errors, down.send_refused);
    if (down.ok != 0) die("an ask to a killed node succeeded");
    if (down.errors != down.asks) die("asks lost: %" PRIu64 " asked, %" PRIu64 " answered", down.asks, down.errors);
    if (down.send_refused == 0) die("one-way sends to a dead node were never refused");
    cl_stats_t dead;
    cl_transport_stats(tr, &dead);
    if (dead.peer_deaths <= before.peer_deaths) die("the driver did not notice the death");
    pthread_join(hang_th, NULL);
    if (hang.rc != 0 || hang.status != LLMOS_EUNAVAILABLE || hang.ms > 10000)
        die("the ask in flight at the kill: rc %d status %d after %.0f ms (wanted EUNAVAILABLE well before 30 s)",
            hang.rc, hang.status, hang.ms);
    printf("restart(%s id): the ask in flight at the kill got EUNAVAILABLE after %.0f ms\n",
           fixed_id ? "same" : "new", hang.ms);

    proc_start(b, listen, args);
    if (cl_transport_wait_peer(tr, b->endpoint, 20000, NULL, &err) != 0) die("after restart: %s", err.msg);
    if (fixed_id) {
        if (b->node_id != old_id) die("fixed id changed");
    } else {
        if (b->node_id == old_id) die("random id repeated");
        /* The old id is dead for good: errors, never silence. */
        tally_t stale = {0};
        for (int i = 0; i < 5; i++) ask_echo(old_id, &stale, 500);
        if (stale.errors != 5) die("asks to the dead id were not all answered with errors");
        if (rt_send(sys, RT_REF_NONE, rt_ref_name(old_id, "sink"), ACTORS_MSG_BENCH, "x", 1) == 0)
            die("a send to the dead id was accepted");
    }
    /* Traffic resumes. */
    tally_t after = {0};
    for (int i = 0; i < 200; i++) ask_echo(b->node_id, &after, 2000);
    if (after.ok != 200) die("after restart only %" PRIu64 "/200 asks succeeded", after.ok);
    sink_ask(b->node_id, ACTORS_MSG_SINK_RESET);
    for (int i = 0; i < 5000; i++) send_retry(RT_REF_NONE, rt_ref_name(b->node_id, "sink"), ACTORS_MSG_BENCH, "y", 1);
    uint64_t got = wait_count(b->node_id, 5000, 30000);
    if (got != 5000) die("after restart the sink counted %" PRIu64 " of 5000", got);
    printf("restart(%s id): traffic resumed (200 asks, 5000 sends counted)\n", fixed_id ? "same" : "new");
    /* A clean stop says goodbye: sends are refused well before the
     * heartbeat timeout (1500 ms), and it is not counted as a death. */
    cl_stats_t st0, st1;
    cl_transport_stats(tr, &st0);
    uint64_t t0 = llmos_now_ns();
    proc_kill(b, SIGTERM);
    while (rt_send(sys, RT_REF_NONE, rt_ref_name(b->node_id, "sink"), ACTORS_MSG_BENCH, "z", 1) == 0) {
        if (llmos_now_ns() - t0 > 1000000000ull) die("a node that stopped cleanly still accepts sends after 1 s");
        llmos_sleep_ms(5);
    }
    cl_transport_stats(tr, &st1);
    if (st1.peer_deaths != st0.peer_deaths) die("a clean stop was counted as a death");
    printf("restart(%s id): clean stop noticed after %.0f ms\n", fixed_id ? "same" : "new",
           (double)(llmos_now_ns() - t0) / 1e6);
}

static int run_restart(void) {
    restart_round(1);
    /* A node that comes back under a new id. */
    restart_round(0);
    cl_stats_t st;
    cl_transport_stats(tr, &st);
    printf("restart: driver saw %" PRIu64 " deaths, %" PRIu64 " restarts, %" PRIu64 " undelivered\n",
           st.peer_deaths, st.peer_restarts, st.undelivered);
    driver_stop();
    return 0;
}

/* ---- the client library ---- */

typedef struct client_thread {
    llmos_client_t *c;
    int idx, bad;
} client_thread_t;

static void *client_thread_main(void *p) {
    client_thread_t *ct = p;
    for (int i = 0; i < 300; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "thread %d call %d", ct->idx, i);
        llmos_client_reply_t *r = NULL;
        llmos_client_error_t err;
        if (llmos_client_call(ct->c, "echo", ACTORS_MSG_BENCH, msg, (size_t)n, 5000, &r, &err) != 0 ||
            r->len != (size_t)n || memcmp(r->data, msg, (size_t)n) != 0)
            ct->bad++;
        llmos_client_reply_free(&r);
    }
    return NULL;
}

static int run_client(void) {
    proc_start(&procs[0], "tcp://127.0.0.1:0", NULL);
    nprocs = 1;
    const char *ep = procs[0].endpoint;
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    if (llmos_client_connect("udp://nope", NULL, &c, &err) != LLMOS_CLIENT_EINVAL || c) die("bad endpoint accepted");
    llmos_client_opts_t o = {.timeout_ms = 3000, .max_frame = 1 << 20, .tenant = "t1"};
    if (llmos_client_connect(ep, &o, &c, &err) != 0) die("connect: %s", err.msg);
    uint64_t rtt = 0;
    if (llmos_client_ping(c, 0, &rtt, &err) != 0 || rtt == 0) die("ping: %s", err.msg);

    uint8_t payload[1000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 13);
    llmos_client_reply_t *r = NULL;
    if (llmos_client_call(c, "echo", 0xF33, payload, sizeof payload, 0, &r, &err) != 0) die("echo: %s", err.msg);
    if (r->type != 0xF33 || r->len != sizeof payload || memcmp(r->data, payload, sizeof payload) || r->status)
        die("echo reply differs");
    llmos_client_reply_free(&r);

    int rc = llmos_client_call(c, "nobody", 0xF33, NULL, 0, 0, &r, &err);
    if (rc != LLMOS_CLIENT_ENOTFOUND || !r || r->status != rc || !strstr(err.msg, "nobody"))
        die("unknown actor: rc %d, '%s'", rc, err.msg);
    llmos_client_reply_free(&r);
    rc = llmos_client_call(c, "node", 0x7777, NULL, 0, 0, &r, &err);
    if (rc != LLMOS_CLIENT_EUNKNOWNTYPE) die("unknown type: rc %d, '%s'", rc, err.msg);
    llmos_client_reply_free(&r);
    static uint8_t big[(1 << 20) + 1];
    if (llmos_client_call(c, "echo", 0xF33, big, sizeof big, 0, &r, &err) != LLMOS_CLIENT_ETOOBIG || r)
        die("an over-cap payload was sent");

    if (llmos_client_call(c, "sink", ACTORS_MSG_SINK_RESET, NULL, 0, 0, &r, &err) != 0) die("reset: %s", err.msg);
    llmos_client_reply_free(&r);
    for (int i = 0; i < 1000; i++)
        while ((rc = llmos_client_send(c, "sink", ACTORS_MSG_BENCH, "m", 1, &err)) == LLMOS_CLIENT_EOVERLOADED)
            llmos_sleep_ms(1);
    uint64_t count = 0;
    for (int tries = 0; tries < 500 && count < 1000; tries++) {
        if (llmos_client_call(c, "sink", ACTORS_MSG_SINK_COUNT, NULL, 0, 0, &r, &err) != 0 || r->len != 8)
            die("count: %s", err.msg);
        memcpy(&count, r->data, 8);
        llmos_client_reply_free(&r);
        if (count < 1000) llmos_sleep_ms(10);
    }
    if (count != 1000) die("sink counted %" PRIu64 " of 1000 client sends", count);

    client_thread_t ct[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ct[i] = (client_thread_t){c, i, 0};
        pthread_create(&th[i], NULL, client_thread_main, &ct[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        if (ct[i].bad) die("thread %d: %d calls went wrong on a shared handle", i, ct[i].bad);
    }

    llmos_client_status_t *st = NULL;
    if (llmos_client_status(c, 0, &st, &err) != 0) die("status: %s", err.msg);
    if (st->node_id != procs[0].node_id) die("status names another node");
    if (llmos_client_status_errors(st, "unknown_actor") < 1 || llmos_client_status_errors(st, "unknown_type") < 1)
        die("status did not count the errors");
    int has_sink = 0;
    for (size_t i = 0; i < st->n_actors; i++) has_sink |= strncmp(st->actors[i], "sink ", 5) == 0;
    if (!has_sink || st->net_msgs_in < 2200) die("status: actors or counters wrong");
    llmos_client_status_free(&st);

    /* The node goes away: calls time out, promptly. */
    proc_kill(&procs[0], SIGKILL);
    uint64_t t0 = llmos_now_ns();
    rc = llmos_client_call(c, "echo", 1, NULL, 0, 300, &r, &err);
    double ms = (double)(llmos_now_ns() - t0) / 1e6;
    if (rc != LLMOS_CLIENT_ETIMEDOUT || ms < 250 || ms > 2000) die("dead node: rc %d after %.0f ms", rc, ms);
    llmos_client_destroy(&c);
    llmos_client_destroy(&c); /* NULL-safe */
    printf("client: all checks passed (ping %.3f ms)\n", (double)rtt / 1e6);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (!getenv("LLMOS_LOG")) llmos_log_set_level(LLMOS_LOG_WARN);
    if (argc >= 4 && strcmp(argv[1], "mesh") == 0) return run_mesh(atoi(argv[2]), strtoull(argv[3], NULL, 10));
    if (argc >= 2 && strcmp(argv[1], "restart") == 0) return run_restart();
    if (argc >= 2 && strcmp(argv[1], "client") == 0) return run_client();
    fprintf(stderr, "usage: cluster_driver mesh K TOTAL | restart | client\n");
    return 2;
}
