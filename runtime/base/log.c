/* log.c — see log.h.  Never allocates; a line is formatted on the stack. */
#include "runtime/base/log.h"

#include "runtime/base/clock.h"
#include "runtime/base/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not yet read from LLMOS_LOG */
static char log_node[64];
static pthread_mutex_t log_node_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char log_actor[64];

static const char *const level_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

int llmos_log_parse_level(const char *s, llmos_log_level *out) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (s && strcasecmp(s, names[i]) == 0) {
            *out = (llmos_log_level)i;
            return 0;
        }
    }
    return LLMOS_EINVAL;
}

llmos_log_level llmos_log_get_level(void) {
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (l < 0) {
        llmos_log_level parsed = LLMOS_LOG_INFO;
        const char *env = getenv("LLMOS_LOG");
        if (env && llmos_log_parse_level(env, &parsed) != 0) parsed = LLMOS_LOG_INFO;
        l = (int)parsed;
        atomic_store(&log_level, l);
    }
    return (llmos_log_level)l;
}

void llmos_log_set_level(llmos_log_level level) { atomic_store(&log_level, (int)level); }

void llmos_log_set_node(const char *node) {
    pthread_mutex_lock(&log_node_lock);
    snprintf(log_node, sizeof log_node, "%s", node ? node : "");
    pthread_mutex_unlock(&log_node_lock);
}

void llmos_log_set_actor(const char *actor) { snprintf(log_actor, sizeof log_actor, "%s", actor ? actor : ""); }

static void log_vline(llmos_log_level level, const char *fmt, va_list ap) {
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                     level_names[level]);
    pthread_mutex_lock(&log_node_lock);
    if (log_node[0]) n += snprintf(line + n, sizeof line - (size_t)n, " node=%s", log_node);
    pthread_mutex_unlock(&log_node_lock);
    if (log_actor[0]) n += snprintf(line + n, sizeof line - (size_t)n, " actor=%s", log_actor);
    n += snprintf(line + n, sizeof line - (size_t)n, ": ");
    if (n < (int)sizeof line) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (n >= (int)sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void llmos_log(llmos_log_level level, const char *fmt, ...) {
    if (level > llmos_log_get_level()) return;
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, fmt, ap);
    va_end(ap);
}

void llmos_log_burst(llmos_log_burst_t *b, llmos_log_level level, const char *fmt, ...) {
    uint64_t now = llmos_now_ns();
    uint64_t quiet = (uint64_t)(b->quiet_ms ? b->quiet_ms : 1000) * 1000000ull;
    int new_burst = b->last_ns == 0 || now - b->last_ns >= quiet;
    b->last_ns = now;
    if (!new_burst) {
        b->suppressed++;
        return;
    }
    if (level > llmos_log_get_level()) return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->suppressed)
        llmos_log(level, "%s (and %llu similar events in the previous burst)", msg,
                  (unsigned long long)b->suppressed);
    else
        llmos_log(level, "%s", msg);
    b->suppressed = 0;
}
