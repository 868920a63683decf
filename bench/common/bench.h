/*
 * bench.h — what every llmos benchmark shares: one JSON object per figure on
 * stdout, and the physical limits measured in the same run.
 *
 *   {"bench":"actor","metric":"remote_oneway","value":812345,"unit":"msgs/s",
 *    "baseline":"raw zmq push/pull","baseline_value":1.6e6,"ratio":0.51}
 *
 * Not thread-safe (benchmarks print from their main thread).
 */
#ifndef LLMOS_BENCH_COMMON_H
#define LLMOS_BENCH_COMMON_H

#include <stddef.h>

typedef struct bench_figure {
    const char *bench;          /* "actor", "model", ... */
    const char *metric;         /* "prefill_tok_s_t1" */
    double value;
    const char *unit;           /* "tok/s", "msgs/s", "us" */
    const char *baseline;       /* NULL when none */
    double baseline_value;
    const char *limit;          /* NULL when none */
    double limit_value;
    const char *note;           /* NULL or free text ("threads=2") */
} bench_figure_t;

/* Prints the figure as one JSON line; ratio = value / baseline_value and
 * of_limit = value / limit_value are computed here. */
void bench_emit(const bench_figure_t *f);

/* Sustained memory read bandwidth in bytes/s with `threads` threads. */
double bench_mem_read_bw(int threads);

/* Median of v[0..n) (sorts v in place); 0 when n <= 0.  Step times on a
 * shared machine: others' work lands on a few steps, the median is what a
 * step costs. */
double bench_median(double *v, int n);

/* The 1-minute load average (-1 if unknown), for the notes: a second
 * thread or rank is only worth measuring on an idle machine. */
double bench_loadavg(void);

/* A "kB" field of /proc/self/status ("VmRSS:", "VmHWM:", "RssAnon:"...)
 * in kB; -1 if absent. */
long bench_self_status_kb(const char *key);

#endif
