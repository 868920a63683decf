/*
 * cls_bench.c — classification served by llmosd --classifier against the
 * same checkpoint evaluated in-process, on BANKING77 test texts.
 *
 *   cls_bench [--texts N] [--threads N] [--clients N]
 *
 * The checkpoint: $LLMOS_CLS_CKPT when set, else a quick head-only,
 * mean-pooled fine-tune of stories260K on BANKING77 (llmos-train, 20 steps,
 * ~3 s; its accuracy is irrelevant for throughput) in a temporary folder.
 * Baseline: llmos-eval's path — train_loaded_open + train_tokens_build +
 * train_predict in batches of 32 with the same threads as the node's
 * model threads — the better of two runs, measured here.  Then a real
 * llmosd serves the checkpoint and 1 and 16 clients (one handle and thread
 * each, a share of the texts each, one request at a time) classify every
 * text: texts/s, the ratio to the baseline, and p50/p99 latency per text.
 * Every served answer is checked against the in-process probabilities
 * (label and probability; the worst difference is in the notes), and the
 * node's stats give the prompt rows per iteration.
 */
#include "bench/common/bench.h"
#include "node_fixture.h"
#include "llmos/client.h"
#include "llmos/model.pb-c.h"
#include "model/train/trainer.h"
#include "runtime/base/clock.h"
#include "runtime/base/paths.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static llmos_test_node_t node;
static char tmp_dir[256];
static const train_dataset_t *texts;
static const train_labels_t *labels;
static const float *local_probs; /* [n_texts][C] from the baseline */

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void cleanup(void) {
    llmos_test_node_stop(&node, 0, NULL, NULL);
    if (tmp_dir[0]) nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *fmt, const char *what) {
    fprintf(stderr, "cls_bench: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    cleanup();
    exit(1);
}

/* llmos-train --mode head --pool mean, 20 steps, into out; its log in log. */
static void train_ckpt(const char *models, const char *data, const char *out, const char *log) {
    char bin[1024], model[1100], tok[1100], train[1100];
    llmos_test_bin_path("llmos-train", bin, sizeof bin);
    snprintf(model, sizeof model, "%s/stories260K.bin", models);
    snprintf(tok, sizeof tok, "%s/tok512.bin", models);
    snprintf(train, sizeof train, "%s/banking77/train.csv", data);
    const char *argv[] = {bin, "--model", model, "--tokenizer", tok, "--train", train, "--out", out, "--mode", "head",
                          "--pool", "mean", "--steps", "20", "--batch", "16", "--seq", "64", "--quiet", NULL};
    pid_t pid = fork();
    if (pid < 0) die("%s", "fork failed");
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("llmos-train failed (see %s)", log);
}

typedef struct client_job {
    int idx, stride;
    double *lat_ms; /* one per text taken */
    int n_lat, mismatches;
    double max_dp;
    int rc;
    char err[LLMOS_CLIENT_ERRMSG_MAX];
} client_job_t;

/* Classifies texts idx, idx + stride, ... one request at a time. */
static void *client_main(void *p) {
    client_job_t *j = p;
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t co = {.timeout_ms = 120000};
    if ((j->rc = llmos_client_connect(node.endpoint, &co, &c, &err)) != 0) goto out;
    int C = labels->n;
    for (int i = j->idx; i < texts->n; i += j->stride) {
        llmos_client_cls_result_t *res = NULL;
        uint64_t t0 = llmos_now_ns();
        if ((j->rc = llmos_client_classify(c, NULL, texts->ex[i].text, 1, 0, &res, &err)) != 0) goto out;
        j->lat_ms[j->n_lat++] = (double)(llmos_now_ns() - t0) / 1e6;
        const float *lp = local_probs + (size_t)i * (size_t)C;
        int best = 0;
        for (int k = 1; k < C; k++) best = lp[k] > lp[best] ? k : best;
        if (strcmp(res->best, labels->name[best]) != 0) j->mismatches++;
        else j->max_dp = fmax(j->max_dp, fabs((double)res->probs[0] - lp[best]));
        llmos_client_cls_result_free(&res);
    }
out:
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", err.msg);
    llmos_client_destroy(&c);
    return NULL;
}

typedef struct run_result {
    double texts_s, p50_ms, p99_ms, max_dp;
    int mismatches;
} run_result_t;

static double percentile(double *v, int n, double q) {
    if (n <= 0) return 0;
    bench_median(v, n); /* sorts */
    return v[(int)(q * (n - 1) + 0.5)];
}

static run_result_t run_clients(int n) {
    client_job_t *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    int share = (texts->n + n - 1) / n; /* texts a client takes, at most */
    double *lat = malloc(sizeof(double) * (size_t)share * (size_t)n);
    if (!jobs || !th || !lat) die("%s", "no memory");
    uint64_t t0 = llmos_now_ns();
    for (int i = 0; i < n; i++) {
        jobs[i] = (client_job_t){.idx = i, .stride = n, .lat_ms = lat + (size_t)i * (size_t)share};
        pthread_create(&th[i], NULL, client_main, &jobs[i]);
    }
    run_result_t r = {0};
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    double s = (double)(llmos_now_ns() - t0) / 1e9;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (jobs[i].rc) die("a client failed: %s", jobs[i].err);
        for (int k = 0; k < jobs[i].n_lat; k++) lat[m++] = jobs[i].lat_ms[k];
        r.mismatches += jobs[i].mismatches;
        r.max_dp = fmax(r.max_dp, jobs[i].max_dp);
    }
    r.texts_s = m / s;
    r.p50_ms = percentile(lat, m, 0.5);
    r.p99_ms = percentile(lat, m, 0.99);
    free(jobs);
    free(th);
    free(lat);
    return r;
}

/* The node's iteration and prompt-row counters. */
static void node_counters(uint64_t *iterations, uint64_t *prompt_tokens) {
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_reply_t *r = NULL;
    llmos_client_opts_t co = {.timeout_ms = 10000};
    if (llmos_client_connect(node.endpoint, &co, &c, &err) ||
        llmos_client_call(c, "model", LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS, NULL, 0, 0, &r, &err))
        die("model stats: %s", err.msg);
    Llmos__ModelStats *st = llmos__model_stats__unpack(NULL, r->len, r->data);
    if (!st) die("%s", "model stats: the reply is not a ModelStats");
    *iterations = st->iterations;
    *prompt_tokens = st->prompt_tokens;
    llmos__model_stats__free_unpacked(st, NULL);
    llmos_client_reply_free(&r);
    llmos_client_destroy(&c);
}

int main(int argc, char **argv) {
    model_omp_passive(argv); /* as llmos-eval and llmosd: no spinning OpenMP barriers */
    int max_texts = 0, threads = 1, clients = 16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--texts") && i + 1 < argc) max_texts = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc) clients = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: cls_bench [--texts N] [--threads N] [--clients N]\n");
            return 2;
        }
    }
    if (max_texts < 0 || threads < 1 || clients < 1 || clients > 256) {
        fprintf(stderr, "cls_bench: bad option value\n");
        return 2;
    }
    llmos_error_t e = {0};
    char models[1024], data[1024], ckpt[1100], log[1100], csv[1100];
    if (llmos_models_dir(NULL, models, sizeof models, &e) || llmos_data_dir(NULL, data, sizeof data, &e))
        die("%s", e.msg);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/cls_bench_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        tmp_dir[0] = 0;
        die("%s", "mkdtemp failed");
    }
    const char *given = getenv("LLMOS_CLS_CKPT");
    if (given && given[0]) {
        snprintf(ckpt, sizeof ckpt, "%s", given);
    } else {
        snprintf(ckpt, sizeof ckpt, "%s/ckpt", tmp_dir);
        snprintf(log, sizeof log, "%s/train.log", tmp_dir);
        train_ckpt(models, data, ckpt, log);
    }

    /* Baseline: the checkpoint in-process, as llmos-eval runs it. */
    train_loaded_t ld = {0};
    if (train_loaded_open(&ld, ckpt, 1, NULL, NULL, 32, threads, &e)) die("loading the checkpoint: %s", e.msg);
    if (train_net_layout(ld.net)->opts.task != TRAIN_TASK_CLS) die("%s: not a classifier checkpoint", ckpt);
    snprintf(csv, sizeof csv, "%s/banking77/test.csv", data);
    train_dataset_t ds = {0};
    train_labels_t none = {0};
    if (train_dataset_load(&ds, csv, "text", NULL, &none, &e)) die("reading the texts: %s", e.msg);
    if (max_texts && max_texts < ds.n) ds.n = max_texts;
    int C = ld.labels.n;
    float *probs = malloc(sizeof(float) * (size_t)ds.n * (size_t)C);
    if (!probs) die("%s", "no memory");
    double base = 0;
    for (int rep = 0; rep < 2; rep++) {
        uint64_t t0 = llmos_now_ns();
        train_tokens_t tk;
        if (train_tokens_build(&tk, &ds, model_tokenizer(ld.model), ld.seq, &e) || train_predict(ld.net, &tk, probs, &e))
            die("in-process prediction: %s", e.msg);
        train_tokens_deinit(&tk);
        double r = ds.n / ((double)(llmos_now_ns() - t0) / 1e9);
        if (r > base) base = r;
    }
    texts = &ds;
    labels = &ld.labels;
    local_probs = probs;

    /* Served. */
    char thr[16], nd[1100];
    snprintf(thr, sizeof thr, "%d", threads);
    snprintf(nd, sizeof nd, "%s/node", tmp_dir);
    const char *args[] = {"--log-level", "warn", "--classifier", ckpt, "--model-threads", thr, "--data-dir", nd, NULL};
    llmos_test_node_opts_t o = {.args = args, .actor = "model", .probe_type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_STATS,
                                .timeout_ms = 120000};
    llmos_error_t err;
    if (llmos_test_node_start(&node, &o, &err) != 0) die("llmosd --classifier did not start: %s", err.msg);
    run_clients(1); /* warm-up over all texts: pages, connections */
    uint64_t it0, pt0, it1, pt1;
    node_counters(&it0, &pt0);
    run_result_t c1 = run_clients(1);
    node_counters(&it1, &pt1);
    run_result_t c1b = run_clients(1);
    if (c1b.texts_s > c1.texts_s) c1 = c1b;
    run_result_t cn = run_clients(clients);
    int mism = c1.mismatches + c1b.mismatches + cn.mismatches;
    double max_dp = fmax(c1.max_dp, fmax(c1b.max_dp, cn.max_dp));
    if (mism) fprintf(stderr, "cls_bench: %d served labels differ from the in-process ones (near-ties?)\n", mism);
    if (max_dp > 1e-4) fprintf(stderr, "cls_bench: served probabilities differ from the in-process ones by %.2g\n", max_dp);

    char note[320];
    snprintf(note, sizeof note,
             "stories260K head-only mean-pooled, %s; %d BANKING77 test texts; threads=%d; %.1f prompt rows/iteration "
             "(1 client); served vs in-process: %d label mismatches, max |dp| %.1e; loadavg=%.1f",
             given && given[0] ? "LLMOS_CLS_CKPT" : "trained here", ds.n, threads,
             it1 > it0 ? (double)(pt1 - pt0) / (double)(it1 - it0) : 0.0, mism, max_dp, bench_loadavg());
    char mn[48], mp50[48], mp99[48];
    snprintf(mn, sizeof mn, "texts_s_c%d", clients);
    snprintf(mp50, sizeof mp50, "latency_p50_ms_c%d", clients);
    snprintf(mp99, sizeof mp99, "latency_p99_ms_c%d", clients);
    const char *bl = "in-process train_predict (llmos-eval), same threads";
    bench_emit(&(bench_figure_t){.bench = "cls", .metric = "texts_s_c1", .value = c1.texts_s, .unit = "texts/s",
                                 .baseline = bl, .baseline_value = base, .note = note});
    bench_emit(&(bench_figure_t){.bench = "cls", .metric = mn, .value = cn.texts_s, .unit = "texts/s",
                                 .baseline = bl, .baseline_value = base, .note = note});
    bench_emit(&(bench_figure_t){.bench = "cls", .metric = "latency_p50_ms_c1", .value = c1.p50_ms, .unit = "ms",
                                 .note = note});
    bench_emit(&(bench_figure_t){.bench = "cls", .metric = "latency_p99_ms_c1", .value = c1.p99_ms, .unit = "ms",
                                 .note = note});
    bench_emit(&(bench_figure_t){.bench = "cls", .metric = mp50, .value = cn.p50_ms, .unit = "ms",
                                 .baseline = "1 client p50", .baseline_value = c1.p50_ms, .note = note});
    bench_emit(&(bench_figure_t){.bench = "cls", .metric = mp99, .value = cn.p99_ms, .unit = "ms",
                                 .baseline = "1 client p50", .baseline_value = c1.p50_ms, .note = note});
    fflush(stdout);
    cleanup();
    free(probs);
    train_dataset_deinit(&ds);
    train_labels_deinit(&none);
    train_loaded_deinit(&ld);
    return max_dp > 1e-4 ? 1 : 0;
}
