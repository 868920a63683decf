/*
 * tp_internal.h — the collectives a tensor-parallel context calls: what
 * forward.c sees of a model_tp_t, and what tp.c (llmos_model_tp, the MPI
 * side) implements.  Private to model/.
 */
#ifndef LLMOS_MODEL_TP_INTERNAL_H
#define LLMOS_MODEL_TP_INTERNAL_H

#include "model/model.h"

#include <stddef.h>

/* Each returns 0 or a negative llmos_err with the message in err. */
struct model_tp {
    int rank, size;
    /* buf[0..n) = the sum of every rank's buf (same result on all ranks). */
    int (*allreduce_sum)(const struct model_tp *tp, float *buf, size_t n, llmos_error_t *err);
    /* recv = every rank's send, rank r's counts[r] floats at displs[r]. */
    int (*allgatherv)(const struct model_tp *tp, const float *send, int n_send, float *recv,
                      const int *counts, const int *displs, llmos_error_t *err);
};

#endif
