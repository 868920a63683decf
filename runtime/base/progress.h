/*
 * progress.h — the progress line every long job shows, and its summary.
 *
 * On a terminal (stderr is a tty) a single line is redrawn at most a few
 * times a second:
 *   load umls/train.txt  52 000/86 835 triples  60%  412 k/s  ETA 0:00:08  errors 0
 * When stderr is not a terminal nothing is drawn until the end; then (in
 * both cases) llmos_progress_finish() prints one summary line.
 * `total` may be 0 when unknown (no percentage or ETA then).
 *
 * Not thread-safe: one owner updates it (others may feed it counts).
 */
#ifndef LLMOS_RUNTIME_BASE_PROGRESS_H
#define LLMOS_RUNTIME_BASE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct llmos_progress {
    char label[96];      /* what is being done ("load umls/train.txt") */
    char unit[24];       /* what is counted ("triples") */
    uint64_t total;      /* expected count, 0 = unknown */
    uint64_t done;       /* count so far */
    uint64_t errors;     /* items that failed */
    uint64_t start_ns;   /* when llmos_progress_init ran */
    uint64_t drawn_ns;   /* last redraw */
    int tty;             /* 1 when drawing to a terminal */
    int force;           /* LLMOS_PROGRESS=1 draws even when not a tty */
    FILE *out;           /* stderr */
} llmos_progress_t;

void llmos_progress_init(llmos_progress_t *p, const char *label, const char *unit, uint64_t total);
/* Sets the counts and redraws if enough time has passed. Cheap to call often. */
void llmos_progress_update(llmos_progress_t *p, uint64_t done, uint64_t errors);
/* Clears the line and prints the summary: "<label>: N unit in T s (R unit/s), E errors[, extra]".
 * extra may be NULL. */
void llmos_progress_finish(llmos_progress_t *p, const char *extra);
/* Formats a rate with k/M suffixes into buf. */
const char *llmos_progress_rate(double per_s, char *buf, size_t n);

#endif
