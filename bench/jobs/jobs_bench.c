/*
 * jobs_bench.c — the job path against a real llmosd (JSON lines via bench_emit):
 *
 *   e2e_echo_t1 / e2e_echo_t8   echo jobs/s, each a full round trip: client
 *       library -> gateway -> scheduler (logged, group commit) -> echo actor
 *       -> result logged -> reply, with 1 and 8 client threads
 *       (llmos_client_submit_wait: one round trip per job).  Baseline: raw
 *       client pings (node actor round trips) with the same threads: the
 *       wire's own ceiling.  Log without fsync (sync = 0), as the target
 *       (>= 20 000/s) is about the job path, not the disk.
 *   e2e_echo_async_t1 / e2e_echo_async_t8   the same echo jobs submitted
 *       asynchronously (llmos_client_submit_async + llmos_client_poll,
 *       submit-and-wait kind: the result is the finished JobStatus), a
 *       window of 256 jobs in flight per client thread — what one pipeline
 *       thread can push.  Baseline: pings pipelined the same way
 *       (llmos_client_call_async, 256 in flight per thread): the wire's and
 *       the node's own ceiling for tiny messages, so the ratio is the share
 *       of it the job path keeps.  Log sync = 0; e2e_echo_async_t8_fsync
 *       with fsync at every group commit.
 *   e2e_echo_tasks_t8           echo tasks/s through the same path when
 *       each job carries 32 independent echo tasks (8 threads).
 *   e2e_echo_t8_fsync           the same with fsync on every commit.
 *   submit_fsync / submit_nosync  acknowledged submissions/s (8 threads,
 *       no wait) with and without fsync on commit.  Baseline: raw LMDB,
 *       one put + one fsynced commit per job, in this process, same disk:
 *       what a log without group commit would do.
 *   gen_job_path_tok_s          tokens/s of 256 generate jobs (64 tokens,
 *       stories260K, 16 client threads) through the job path; baseline the
 *       same generations asked of the model actor directly (target >= 0.9).
 *   queued_bytes_per_job        llmosd's anonymous resident memory growth
 *       with 100 000 queued jobs (echo has no capacity: target_inflight =
 *       echo=0) per job, minus the job's own text (its packed spec);
 *       limit 1024 bytes.
 *
 * llmosd is found in $LLMOS_BIN, else next to this program.
 * Usage: jobs_bench [--quick] [--e2e]   (--e2e: the echo and submission
 * figures only, no memory or generation runs)
 */
#include "bench/common/bench.h"
#include "node_fixture.h"
#include "llmos/client.h"
#include "runtime/base/clock.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];
static double secs = 2.0;
static uint32_t queued_jobs = 100000;

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "jobs_bench: %s: %s\n", what, detail);
    exit(1);
}

typedef llmos_test_node_t node_t;

static const char *model_args[4]; /* --model M --tokenizer T */

/* A real llmosd (tests/lib/node_fixture.h) with its own data dir under
 * tmpdir and the given config lines. */
static void node_start_ex(node_t *n, const char *name, const char *config, int with_model) {
    char cfgpath[160], data[160];
    snprintf(cfgpath, sizeof cfgpath, "%s/%s.conf", tmpdir, name);
    snprintf(data, sizeof data, "%s/%s", tmpdir, name);
    FILE *f = fopen(cfgpath, "w");
    if (!f) fail("config", strerror(errno));
    fprintf(f, "data_dir = %s\nlog_level = warn\n%s\n", data, config);
    fclose(f);
    const char *args[] = {"--config", cfgpath, NULL, NULL, NULL, NULL, NULL};
    for (int i = 0; with_model && i < 4; i++) args[2 + i] = model_args[i];
    llmos_test_node_opts_t o = {.args = args};
    llmos_error_t err;
    if (llmos_test_node_start(n, &o, &err) != 0) fail("llmosd did not start", err.msg);
}

static void node_start(node_t *n, const char *name, const char *config) { node_start_ex(n, name, config, 0); }

static void node_stop(node_t *n) { (void)llmos_test_node_stop(n, 0, NULL, NULL); }

/* A "Key: N kB" line of /proc/PID/status, in bytes. */
static uint64_t proc_status(pid_t pid, const char *key) {
    char path[64], line[256], fmt[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    snprintf(fmt, sizeof fmt, "%s: %%lu kB", key);
    FILE *f = fopen(path, "r");
    unsigned long kb = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* ---- client threads ---- */

enum { MODE_SUBMIT_WAIT, MODE_SUBMIT, MODE_PING, MODE_ASYNC_WAIT, MODE_ASYNC_PING };
#define ASYNC_WINDOW 256

typedef struct worker {
    pthread_t t;
    const char *endpoint;
    int mode, index;
    const char *prefix;
    uint64_t count;      /* MODE_SUBMIT with a fixed count: how many; else 0 = run for secs */
    uint32_t tasks;      /* echo tasks per job (independent) */
    uint64_t done;
    int errors;
    char err[LLMOS_CLIENT_ERRMSG_MAX];
} worker_t;

/* Pipelined: keeps ASYNC_WINDOW requests in flight for secs, then drains. */
static void *async_main(void *arg) {
    worker_t *w = arg;
    llmos_client_t *c;
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = 20000, .max_inflight = ASYNC_WINDOW};
    if (llmos_client_connect(w->endpoint, &o, &c, &err) != 0) {
        snprintf(w->err, sizeof w->err, "%s", err.msg);
        w->errors++;
        return NULL;
    }
    llmos_job_t *j;
    llmos_job_new("x", &j, &err);
    llmos_task_spec_t t = {.kind = LLMOS_TASK_ECHO, .text = "ping"};
    llmos_job_add_task(j, &t, &err);
    static llmos_async_result_t res_static[16][64]; /* per worker index: no 45 KiB on the thread stack */
    llmos_async_result_t *res = res_static[w->index];
    uint64_t t_end = llmos_now_ns() + (uint64_t)(secs * 1e9);
    char id[96];
    uint64_t i = 0;
    for (;;) {
        int sending = llmos_now_ns() < t_end && w->errors <= 10;
        while (sending) {
            int rc;
            uint64_t tok;
            if (w->mode == MODE_ASYNC_PING) {
                rc = llmos_client_call_async(c, "node", 2 /* PING */, NULL, 0, 20000, NULL, &tok, &err);
            } else {
                snprintf(id, sizeof id, "%s-%d-%lu", w->prefix, w->index, (unsigned long)i);
                llmos_job_set_id(j, id, &err);
                rc = llmos_client_submit_async(c, j, LLMOS_ASYNC_SUBMIT_WAIT, 20000, NULL, &tok, &err);
            }
            if (rc == LLMOS_CLIENT_EOVERLOADED) break;
            if (rc) {
                if (!w->errors) snprintf(w->err, sizeof w->err, "%s", err.msg);
                if (++w->errors > 10) break;
                continue;
            }
            i++;
        }
        if (!sending && llmos_client_inflight(c) == 0) break;
        size_t n;
        if (llmos_client_poll(c, 1000, res, 64, &n, &err) != 0) {
            snprintf(w->err, sizeof w->err, "%s", err.msg);
            w->errors++;
            break;
        }
        for (size_t k = 0; k < n; k++) {
            int bad = res[k].rc != 0 ||
                      (res[k].kind == LLMOS_ASYNC_SUBMIT_WAIT ? res[k].status->state != LLMOS_JOB_DONE
                                                               : res[k].reply->type != 3 /* PONG */);
            if (bad) {
                if (!w->errors) snprintf(w->err, sizeof w->err, "%s", res[k].rc ? res[k].err.msg : "not done");
                w->errors++;
            } else {
                w->done++;
            }
        }
        llmos_async_results_free(res, n);
    }
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
    return NULL;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    llmos_client_t *c;
    llmos_client_error_t err;
    if (llmos_client_connect(w->endpoint, &(llmos_client_opts_t){.timeout_ms = 20000}, &c, &err) != 0) {
        snprintf(w->err, sizeof w->err, "%s", err.msg);
        w->errors++;
        return NULL;
    }
    llmos_job_t *j;
    llmos_job_new("x", &j, &err);
    llmos_task_spec_t t = {.kind = LLMOS_TASK_ECHO, .text = "ping"};
    for (uint32_t k = 0; k < (w->tasks ? w->tasks : 1); k++) llmos_job_add_task(j, &t, &err);
    uint64_t t_end = llmos_now_ns() + (uint64_t)(secs * 1e9);
    char id[96];
    for (uint64_t i = 0;; i++) {
        if (w->count ? i >= w->count : (i % 16 == 0 && llmos_now_ns() >= t_end)) break;
        int rc;
        if (w->mode == MODE_PING) {
            rc = llmos_client_ping(c, 10000, NULL, &err);
        } else {
            snprintf(id, sizeof id, "%s-%d-%lu", w->prefix, w->index, (unsigned long)i);
            llmos_job_set_id(j, id, &err);
            if (w->mode == MODE_SUBMIT) {
                rc = llmos_client_submit(c, j, 20000, NULL, &err);
            } else {
                llmos_job_status_t *st = NULL;
                rc = llmos_client_submit_wait(c, j, 20000, &st, &err);
                if (!rc && st->state != LLMOS_JOB_DONE) rc = -1;
                llmos_job_status_free(&st);
            }
        }
        if (rc) {
            if (!w->errors) snprintf(w->err, sizeof w->err, "%s", err.msg);
            w->errors++;
            if (w->errors > 10) break;
            continue;
        }
        w->done += w->mode == MODE_PING || !w->tasks ? 1 : w->tasks;
    }
    llmos_job_destroy(&j);
    llmos_client_destroy(&c);
    return NULL;
}

/* Runs `threads` workers; returns operations per second. */
static double run_tasks(const char *endpoint, int mode, int threads, const char *prefix, uint64_t per_thread,
                        uint32_t tasks) {
    worker_t w[16];
    uint64_t t0 = llmos_now_ns();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker_t){
            .endpoint = endpoint, .mode = mode, .index = i, .prefix = prefix, .count = per_thread, .tasks = tasks};
        pthread_create(&w[i].t, NULL, mode >= MODE_ASYNC_WAIT ? async_main : worker_main, &w[i]);
    }
    uint64_t done = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].t, NULL);
        done += w[i].done;
        if (w[i].errors) fprintf(stderr, "jobs_bench: %s: %d errors, first: %s\n", prefix, w[i].errors, w[i].err);
    }
    double dt = (double)(llmos_now_ns() - t0) / 1e9;
    return (double)done / dt;
}

static double run(const char *endpoint, int mode, int threads, const char *prefix, uint64_t per_thread) {
    return run_tasks(endpoint, mode, threads, prefix, per_thread, 1);
}

/* Raw LMDB: one put + one commit (fsynced) per record, for secs/2 seconds. */
static double raw_lmdb_fsync_puts(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/raw.lmdb", tmpdir);
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 1u << 30) || mdb_env_open(env, path, MDB_NOSUBDIR, 0664))
        fail("raw lmdb", path);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    mdb_txn_commit(txn);
    char key[32], val[200];
    memset(val, 'v', sizeof val);
    uint64_t t0 = llmos_now_ns(), end = t0 + (uint64_t)(secs / 2 * 1e9), n = 0;
    while (llmos_now_ns() < end) {
        snprintf(key, sizeof key, "k%lu", (unsigned long)n);
        mdb_txn_begin(env, NULL, 0, &txn);
        MDB_val k = {strlen(key), key}, v = {sizeof val, val};
        mdb_put(txn, dbi, &k, &v, 0);
        if (mdb_txn_commit(txn)) fail("raw lmdb", "commit");
        n++;
    }
    double rate = (double)n / ((double)(llmos_now_ns() - t0) / 1e9);
    mdb_env_close(env);
    return rate;
}

/* ---- generation: the job path against the model actor directly ---- */

enum { GEN_JOBS = 256, GEN_THREADS = 16, GEN_TOKENS = 64 };

typedef struct gen_worker {
    pthread_t t;
    const char *endpoint;
    int via_jobs, index, round;
    uint64_t tokens;
    int errors;
} gen_worker_t;

static void *gen_main(void *arg) {
    gen_worker_t *w = arg;
    llmos_client_t *c;
    llmos_client_error_t err;
    if (llmos_client_connect(w->endpoint, &(llmos_client_opts_t){.timeout_ms = 60000}, &c, &err) != 0) {
        w->errors++;
        return NULL;
    }
    static const char *const starts[] = {"Once upon a time", "One day", "Lily and Ben", "The little dog",
                                         "There was a big tree", "Tom had a red ball", "The sun was hot",
                                         "A bird sat on a branch"};
    for (int k = 0; k < GEN_JOBS / GEN_THREADS; k++) {
        const char *prompt = starts[(w->index + k) % 8];
        if (w->via_jobs) {
            char id[64];
            snprintf(id, sizeof id, "gen-%d-%d-%d", w->round, w->index, k);
            llmos_job_t *j;
            llmos_job_new(id, &j, &err);
            llmos_task_spec_t t = {.kind = LLMOS_TASK_GENERATE, .text = prompt, .max_tokens = GEN_TOKENS};
            llmos_job_add_task(j, &t, &err);
            llmos_job_status_t *st = NULL;
            int rc = llmos_client_submit_wait(c, j, 60000, &st, &err);
            if (rc == 0 && st->state == LLMOS_JOB_DONE) w->tokens += st->tasks[0].n_tokens;
            else w->errors++;
            llmos_job_status_free(&st);
            llmos_job_destroy(&j);
        } else {
            llmos_client_gen_opts_t o = {.max_tokens = GEN_TOKENS, .timeout_ms = 60000};
            llmos_client_gen_result_t *r = NULL;
            if (llmos_client_generate(c, prompt, &o, NULL, NULL, &r, &err) == 0) w->tokens += r->n_tokens;
            else w->errors++;
            llmos_client_gen_result_free(&r);
        }
    }
    llmos_client_destroy(&c);
    return NULL;
}

/* tokens/s of GEN_JOBS generations, GEN_THREADS at a time. */
static double gen_rate(const char *endpoint, int via_jobs, int round) {
    gen_worker_t w[GEN_THREADS];
    uint64_t t0 = llmos_now_ns(), tokens = 0;
    int errors = 0;
    for (int i = 0; i < GEN_THREADS; i++) {
        w[i] = (gen_worker_t){.endpoint = endpoint, .via_jobs = via_jobs, .index = i, .round = round};
        pthread_create(&w[i].t, NULL, gen_main, &w[i]);
    }
    for (int i = 0; i < GEN_THREADS; i++) {
        pthread_join(w[i].t, NULL);
        tokens += w[i].tokens;
        errors += w[i].errors;
    }
    if (errors) fprintf(stderr, "jobs_bench: %d generation errors (%s)\n", errors, via_jobs ? "jobs" : "direct");
    return (double)tokens / ((double)(llmos_now_ns() - t0) / 1e9);
}

static void bench_generation(void) {
    const char *models = getenv("LLMOS_MODELS");
    static char mpath[PATH_MAX], tpath[PATH_MAX];
    snprintf(mpath, sizeof mpath, "%s/stories260K.bin", models ? models : LLMOS_SOURCE_DIR "/../shared/models");
    snprintf(tpath, sizeof tpath, "%s/tok512.bin", models ? models : LLMOS_SOURCE_DIR "/../shared/models");
    if (access(mpath, R_OK) != 0 || access(tpath, R_OK) != 0) {
        fprintf(stderr, "jobs_bench: no %s: generation figure skipped\n", mpath);
        return;
    }
    model_args[0] = "--model";
    model_args[1] = mpath;
    model_args[2] = "--tokenizer";
    model_args[3] = tpath;
    node_t n;
    node_start_ex(&n, "gen", "sync = 0", 1);
    gen_rate(n.endpoint, 0, 0); /* warm-up */
    /* best of two alternating rounds each, so load drift hits both sides */
    double direct = 0, jobs = 0;
    for (int round = 1; round <= 2; round++) {
        double d = gen_rate(n.endpoint, 0, round), j = gen_rate(n.endpoint, 1, round);
        if (d > direct) direct = d;
        if (j > jobs) jobs = j;
    }
    node_stop(&n);
    char note[200];
    snprintf(note, sizeof note, "%d generate jobs of %d tokens, %d client threads, stories260K; target ratio >= 0.9",
             GEN_JOBS, GEN_TOKENS, GEN_THREADS);
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "gen_job_path_tok_s", .value = jobs, .unit = "tok/s",
                                 .baseline = "the same generations asked of the model actor directly",
                                 .baseline_value = direct, .note = note});
}

int main(int argc, char **argv) {
    int e2e_only = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--quick") == 0) {
            secs = 0.5;
            queued_jobs = 20000;
        } else if (strcmp(argv[a], "--e2e") == 0) {
            e2e_only = 1;
        } else {
            fail("usage", "jobs_bench [--quick] [--e2e]");
        }
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llmos-jobs-bench-XXXXXX");
    if (!mkdtemp(tmpdir)) fail("mkdtemp", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    char note[256];

    /* 1. end to end, no fsync */
    node_t n;
    node_start(&n, "nosync", "sync = 0\nqueue_limit = 1000000");
    run(n.endpoint, MODE_SUBMIT_WAIT, 1, "warm", 2000);
    for (int threads = 1; threads <= 8; threads += 7) {
        double ping = run(n.endpoint, MODE_PING, threads, "ping", 0);
        char prefix[16];
        snprintf(prefix, sizeof prefix, "e2e%d", threads);
        double rate = run(n.endpoint, MODE_SUBMIT_WAIT, threads, prefix, 0);
        char metric[32];
        snprintf(metric, sizeof metric, "e2e_echo_t%d", threads);
        snprintf(note, sizeof note, "client threads=%d, submit+wait one round trip per job, log sync=0; target 20000/s",
                 threads);
        bench_emit(&(bench_figure_t){.bench = "jobs", .metric = metric, .value = rate, .unit = "jobs/s",
                                     .baseline = "raw client ping round trips, same threads", .baseline_value = ping,
                                     .limit = "target", .limit_value = 20000, .note = note});
    }
    /* 1a. pipelined: 256 jobs in flight per thread */
    for (int threads = 1; threads <= 8; threads += 7) {
        double ping = run(n.endpoint, MODE_ASYNC_PING, threads, "aping", 0);
        char prefix[16], metric[32];
        snprintf(prefix, sizeof prefix, "async%d", threads);
        double rate = run(n.endpoint, MODE_ASYNC_WAIT, threads, prefix, 0);
        snprintf(metric, sizeof metric, "e2e_echo_async_t%d", threads);
        snprintf(note, sizeof note,
                 "client threads=%d, async submit-and-wait, %d jobs in flight per thread, log sync=0; target 20000/s",
                 threads, ASYNC_WINDOW);
        bench_emit(&(bench_figure_t){.bench = "jobs", .metric = metric, .value = rate, .unit = "jobs/s",
                                     .baseline = "client pings pipelined the same way (256 in flight per thread)",
                                     .baseline_value = ping, .limit = "target", .limit_value = 20000, .note = note});
    }
    /* 1b. tasks/s: jobs of 32 independent echo tasks (one round trip each) */
    double ping8 = run(n.endpoint, MODE_PING, 8, "ping", 0);
    double tasks8 = run_tasks(n.endpoint, MODE_SUBMIT_WAIT, 8, "e2etasks", 0, 32);
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "e2e_echo_tasks_t8", .value = tasks8, .unit = "tasks/s",
                                 .baseline = "raw client ping round trips, 8 threads", .baseline_value = ping8,
                                 .limit = "target", .limit_value = 20000,
                                 .note = "8 client threads, jobs of 32 echo tasks, submit+wait, log sync=0"});
    /* 2. acknowledged submissions without fsync */
    double sub_nosync = run(n.endpoint, MODE_SUBMIT, 8, "subn", 0);
    node_stop(&n);

    /* 3. with fsync on every commit */
    double raw = raw_lmdb_fsync_puts();
    node_start(&n, "sync", "sync = 1\nqueue_limit = 1000000");
    double e2e_sync = run(n.endpoint, MODE_SUBMIT_WAIT, 8, "e2es", 0);
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "e2e_echo_t8_fsync", .value = e2e_sync, .unit = "jobs/s",
                                 .baseline = "raw LMDB put + fsynced commit per job", .baseline_value = raw,
                                 .note = "client threads=8, log fsynced at each group commit"});
    double async_sync = run(n.endpoint, MODE_ASYNC_WAIT, 8, "asyncs", 0);
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "e2e_echo_async_t8_fsync", .value = async_sync,
                                 .unit = "jobs/s", .baseline = "raw LMDB put + fsynced commit per job",
                                 .baseline_value = raw, .limit = "target", .limit_value = 20000,
                                 .note = "client threads=8, async, 256 in flight per thread, log fsynced at each "
                                         "group commit"});
    double sub_sync = run(n.endpoint, MODE_SUBMIT, 8, "subs", 0);
    node_stop(&n);
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "submit_fsync", .value = sub_sync, .unit = "submits/s",
                                 .baseline = "raw LMDB put + fsynced commit per job", .baseline_value = raw,
                                 .note = "8 client threads, acknowledged after the fsynced group commit"});
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "submit_nosync", .value = sub_nosync, .unit = "submits/s",
                                 .baseline = "submit_fsync", .baseline_value = sub_sync,
                                 .note = "8 client threads, log without fsync (MDB_NOSYNC)"});

    /* 4. memory per queued job */
    if (e2e_only) goto done;
    char cfg[128];
    snprintf(cfg, sizeof cfg, "sync = 0\nqueue_limit = %u\ntarget_inflight = echo=0", queued_jobs * 2);
    node_start(&n, "queued", cfg);
    run(n.endpoint, MODE_SUBMIT, 1, "warmq", 1000);
    uint64_t before = proc_status(n.pid, "RssAnon"), before_all = proc_status(n.pid, "VmRSS");
    run(n.endpoint, MODE_SUBMIT, 8, "q", queued_jobs / 8);
    uint64_t after = proc_status(n.pid, "RssAnon"), after_all = proc_status(n.pid, "VmRSS");
    /* the job's own text: its packed spec (id "q-T-NNNNN" + one echo task "ping") */
    const double text = 9 /* id */ + 4 /* text */ + 10 /* protobuf framing */;
    uint64_t jobs = (uint64_t)(queued_jobs / 8) * 8 + 1000;
    double per_job = (double)(after - before) / (double)(jobs - 1000) - text;
    snprintf(note, sizeof note,
             "%lu jobs queued; RssAnon %.1f -> %.1f MiB (VmRSS, with the log's mapped pages: %.1f -> %.1f MiB); "
             "own text ~%.0f B/job subtracted",
             (unsigned long)jobs, before / 1048576.0, after / 1048576.0, before_all / 1048576.0,
             after_all / 1048576.0, text);
    bench_emit(&(bench_figure_t){.bench = "jobs", .metric = "queued_bytes_per_job", .value = per_job, .unit = "bytes",
                                 .limit = "target 1 KiB", .limit_value = 1024, .note = note});
    node_stop(&n);
    bench_generation();
done:;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) return 1;
    return 0;
}
