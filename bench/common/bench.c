/* bench.c — see bench.h. */
#include "bench/common/bench.h"

#include "runtime/base/clock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_str(const char *key, const char *v) {
    printf(",\"%s\":\"", key);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        putchar(*p);
    }
    putchar('"');
}

void bench_emit(const bench_figure_t *f) {
    printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"value\":%.6g", f->bench, f->metric, f->value);
    json_str("unit", f->unit);
    if (f->baseline) {
        json_str("baseline", f->baseline);
        printf(",\"baseline_value\":%.6g,\"ratio\":%.4f", f->baseline_value,
               f->baseline_value != 0 ? f->value / f->baseline_value : 0.0);
    }
    if (f->limit) {
        json_str("limit", f->limit);
        printf(",\"limit_value\":%.6g,\"of_limit\":%.4f", f->limit_value,
               f->limit_value != 0 ? f->value / f->limit_value : 0.0);
    }
    if (f->note) json_str("note", f->note);
    printf("}\n");
    fflush(stdout);
}

typedef struct {
    const uint64_t *buf;
    size_t n;
    int reps;
    uint64_t sum;
} bw_arg_t;

static void *bw_worker(void *p) {
    bw_arg_t *a = p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int r = 0; r < a->reps; r++)
        for (size_t i = 0; i < a->n; i += 4) {
            s0 += a->buf[i];
            s1 += a->buf[i + 1];
            s2 += a->buf[i + 2];
            s3 += a->buf[i + 3];
        }
    a->sum = s0 + s1 + s2 + s3;
    return NULL;
}

double bench_mem_read_bw(int threads) {
    if (threads < 1) threads = 1;
    const size_t per = (size_t)256 << 20; /* 256 MiB per thread: far past any cache */
    const size_t n = per / sizeof(uint64_t);
    uint64_t *buf = malloc(per * (size_t)threads);
    if (!buf) return 0;
    for (size_t i = 0; i < n * (size_t)threads; i++) buf[i] = i;
    double best = 0;
    for (int trial = 0; trial < 3; trial++) {
        pthread_t th[64];
        bw_arg_t args[64];
        uint64_t t0 = llmos_now_ns();
        for (int t = 0; t < threads && t < 64; t++) {
            args[t] = (bw_arg_t){buf + n * (size_t)t, n, 2, 0};
            pthread_create(&th[t], NULL, bw_worker, &args[t]);
        }
        for (int t = 0; t < threads && t < 64; t++) pthread_join(th[t], NULL);
        double s = (double)(llmos_now_ns() - t0) / 1e9;
        double bw = (double)per * 2 * threads / s;
        if (bw > best) best = bw;
        volatile uint64_t sink = args[0].sum;
        (void)sink;
    }
    free(buf);
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1) l = -1;
    if (f) fclose(f);
    return l;
}

long bench_self_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) v = atol(line + kl + 1);
    if (f) fclose(f);
    return v;
}
