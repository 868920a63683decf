/* clock.h — monotonic and wall-clock time in one place. Thread-safe. */
#ifndef LLMOS_RUNTIME_BASE_CLOCK_H
#define LLMOS_RUNTIME_BASE_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds: for durations, timeouts and rates. */
uint64_t llmos_now_ns(void);
/* Wall-clock milliseconds since the Unix epoch: for deadlines that cross
 * processes and for timestamps stored on disk. */
uint64_t llmos_wall_ms(void);
/* Sleeps for ms milliseconds (restarted after signals). */
void llmos_sleep_ms(uint32_t ms);

#endif
