/*
 * tp.c — the MPI side of tensor parallelism: a model_tp_t whose two
 * collectives (tp_internal.h) are MPI_Allreduce and MPI_Allgatherv on a
 * private duplicate of the group's communicator.  MPI status codes are
 * turned into llmos errors here and nowhere else in model/.
 */
#include "model/tp.h"
#include "model/tp_internal.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct tp_mpi {
    struct model_tp base; /* first: a model_tp_t * is a tp_mpi_t * */
    MPI_Comm comm;
} tp_mpi_t;

static int mpi_fail(int code, const char *what, llmos_error_t *err) {
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) n = snprintf(s, sizeof s, "MPI error %d", code);
    return llmos_error_set(err, LLMOS_EUNAVAILABLE, "tensor-parallel group: %s failed: %.*s", what, n, s);
}

static int allreduce_sum(const struct model_tp *tp, float *buf, size_t n, llmos_error_t *err) {
    const tp_mpi_t *t = (const tp_mpi_t *)tp;
    LLMOS_ASSERT(n <= (size_t)INT32_MAX); /* bounded by max_tokens * dim, checked at context creation */
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, t->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce", err);
}

static int allgatherv(const struct model_tp *tp, const float *send, int n_send, float *recv,
                      const int *counts, const int *displs, llmos_error_t *err) {
    const tp_mpi_t *t = (const tp_mpi_t *)tp;
    int rc = MPI_Allgatherv(send, n_send, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, t->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgatherv", err);
}

int model_tp_new(MPI_Comm comm, model_tp_t **out, llmos_error_t *err) {
    *out = NULL;
    int inited = 0, level = 0, is_main = 0;
    MPI_Initialized(&inited);
    if (!inited) return llmos_error_set(err, LLMOS_ESTATE, "model_tp_new: MPI is not initialised");
    MPI_Query_thread(&level);
    MPI_Is_thread_main(&is_main);
    if (!is_main && level < MPI_THREAD_SERIALIZED)
        return llmos_error_set(
            err, LLMOS_ESTATE,
            "model_tp_new: called off MPI's main thread, but MPI was initialised with thread level "
            "%d (MPI_THREAD_SERIALIZED or more is needed)",
            level);
    tp_mpi_t *t = calloc(1, sizeof *t);
    if (!t) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for a tensor-parallel group");
    int rc = MPI_Comm_dup(comm, &t->comm);
    if (rc != MPI_SUCCESS) {
        free(t);
        return mpi_fail(rc, "MPI_Comm_dup", err);
    }
    MPI_Comm_set_errhandler(t->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(t->comm, &t->base.rank);
    MPI_Comm_size(t->comm, &t->base.size);
    t->base.allreduce_sum = allreduce_sum;
    t->base.allgatherv = allgatherv;
    *out = &t->base;
    return 0;
}

void model_tp_destroy(model_tp_t **tpp) {
    if (!tpp || !*tpp) return;
    tp_mpi_t *t = (tp_mpi_t *)*tpp;
    MPI_Comm_free(&t->comm);
    free(t);
    *tpp = NULL;
}

int model_tp_rank(const model_tp_t *tp) {
    return tp->rank;
}
int model_tp_size(const model_tp_t *tp) {
    return tp->size;
}
MPI_Comm model_tp_comm(const model_tp_t *tp) {
    return ((const tp_mpi_t *)tp)->comm;
}
