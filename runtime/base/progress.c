/* progress.c — see progress.h. */
#include "runtime/base/progress.h"

#include "runtime/base/clock.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void llmos_progress_init(llmos_progress_t *p, const char *label, const char *unit, uint64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "items");
    p->total = total;
    p->out = stderr;
    p->tty = isatty(fileno(stderr));
    const char *force = getenv("LLMOS_PROGRESS");
    p->force = force && force[0] == '1';
    p->start_ns = llmos_now_ns();
}

const char *llmos_progress_rate(double per_s, char *buf, size_t n) {
    if (per_s >= 1e6)
        snprintf(buf, n, "%.2f M", per_s / 1e6);
    else if (per_s >= 1e4)
        snprintf(buf, n, "%.1f k", per_s / 1e3);
    else
        snprintf(buf, n, "%.1f ", per_s);
    return buf;
}

static void fmt_hms(double s, char *buf, size_t n) {
    if (s < 0 || s > 359999) {
        snprintf(buf, n, "--:--:--");
        return;
    }
    unsigned t = (unsigned)(s + 0.5);
    snprintf(buf, n, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
}

static void draw(llmos_progress_t *p, uint64_t now) {
    double el = (double)(now - p->start_ns) / 1e9;
    double rate = el > 0 ? (double)p->done / el : 0;
    char rb[32], eta[32] = "";
    llmos_progress_rate(rate, rb, sizeof rb);
    if (p->total && rate > 0) {
        char hms[16];
        fmt_hms((double)(p->total - (p->done < p->total ? p->done : p->total)) / rate, hms, sizeof hms);
        snprintf(eta, sizeof eta, "  ETA %s", hms);
    }
    if (p->total)
        fprintf(p->out, "\r\033[K%s  %llu/%llu %s  %3.0f%%  %s%s/s%s  errors %llu", p->label,
                (unsigned long long)p->done, (unsigned long long)p->total, p->unit,
                100.0 * (double)p->done / (double)p->total, rb, p->unit, eta, (unsigned long long)p->errors);
    else
        fprintf(p->out, "\r\033[K%s  %llu %s  %s%s/s  errors %llu", p->label, (unsigned long long)p->done,
                p->unit, rb, p->unit, (unsigned long long)p->errors);
    if (!p->tty) fputc('\n', p->out);
    fflush(p->out);
    p->drawn_ns = now;
}

void llmos_progress_update(llmos_progress_t *p, uint64_t done, uint64_t errors) {
    p->done = done;
    p->errors = errors;
    if (!p->tty && !p->force) return;
    uint64_t now = llmos_now_ns();
    uint64_t every = p->tty ? 200000000ull : 2000000000ull;
    if (now - p->drawn_ns >= every) draw(p, now);
}

void llmos_progress_finish(llmos_progress_t *p, const char *extra) {
    double el = (double)(llmos_now_ns() - p->start_ns) / 1e9;
    char rb[32];
    llmos_progress_rate(el > 0 ? (double)p->done / el : 0, rb, sizeof rb);
    if (p->tty) fprintf(p->out, "\r\033[K");
    fprintf(p->out, "%s: %llu %s in %.2f s (%s%s/s), %llu errors%s%s\n", p->label,
            (unsigned long long)p->done, p->unit, el, rb, p->unit, (unsigned long long)p->errors,
            extra ? ", " : "", extra ? extra : "");
    fflush(p->out);
}
