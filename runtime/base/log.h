/*
 * log.h — levelled logging with the node and actor in every line.
 *
 * A line looks like
 *   2026-11-29T06:40:01.123Z INFO  node=3f2a actor=scheduler: job j1 queued
 * and goes to stderr.  The level comes from LLMOS_LOG (error, warn, info,
 * debug; default info) or llmos_log_set_level().  The node label is
 * process-wide; the actor label is per thread (worker threads set it while
 * they run an actor), so library code never has to pass them around.
 *
 * Thread-safety: every function is thread-safe; each line is written with
 * one write() so lines from different threads do not interleave.
 */
#ifndef LLMOS_RUNTIME_BASE_LOG_H
#define LLMOS_RUNTIME_BASE_LOG_H

#include <stdint.h>

typedef enum llmos_log_level {
    LLMOS_LOG_ERROR = 0,
    LLMOS_LOG_WARN = 1,
    LLMOS_LOG_INFO = 2,
    LLMOS_LOG_DEBUG = 3,
} llmos_log_level;

void llmos_log_set_level(llmos_log_level level);
llmos_log_level llmos_log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0 or LLMOS_EINVAL. */
int llmos_log_parse_level(const char *s, llmos_log_level *out);

/* Process-wide node label (copied; NULL clears). */
void llmos_log_set_node(const char *node);
/* This thread's actor label (copied; NULL clears). */
void llmos_log_set_actor(const char *actor);

void llmos_log(llmos_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LLMOS_ERROR(...) llmos_log(LLMOS_LOG_ERROR, __VA_ARGS__)
#define LLMOS_WARN(...) llmos_log(LLMOS_LOG_WARN, __VA_ARGS__)
#define LLMOS_INFO(...) llmos_log(LLMOS_LOG_INFO, __VA_ARGS__)
#define LLMOS_DEBUG(...)                                                       \
    do {                                                                       \
        if (llmos_log_get_level() >= LLMOS_LOG_DEBUG) llmos_log(LLMOS_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

/*
 * Burst limiter: the first event of a burst is logged, the rest are counted;
 * when an event comes after `quiet_ms` without events, the count of the
 * suppressed ones is reported with it.  One limiter per kind of event, owned
 * by whoever logs it; not thread-safe (keep it in actor state or lock it).
 */
typedef struct llmos_log_burst {
    uint64_t last_ns;     /* time of the last event */
    uint64_t suppressed;  /* events not logged since the last logged one */
    uint32_t quiet_ms;    /* gap that ends a burst; 0 means 1000 */
} llmos_log_burst_t;

void llmos_log_burst(llmos_log_burst_t *b, llmos_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
