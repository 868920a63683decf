/*
 * omp_env.c — OpenMP's wait policy for programs that run the engine.
 *
 * libgomp's default makes a thread that reaches a barrier spin before it
 * sleeps.  The forward pass has a fork-join step per weight matrix; on a
 * machine shared with other work the spinning thread takes the core its
 * partner needs, and every step then costs a scheduler time slice.
 * Measured here under load (110M model, 2 threads): 300-1300 ms per decoded
 * token with the default or a short spin, 40-50 ms with the passive policy,
 * as with one thread.  libgomp reads OMP_WAIT_POLICY once, before main(),
 * so the only way to change it from inside is to set it and re-execute.
 */
#include "model/model.h"

#include <stdlib.h>
#include <unistd.h>

void model_omp_passive(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return; /* the user's choice, or done already */
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: run on as we are */
}
