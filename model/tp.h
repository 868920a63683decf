/*
 * tp.h — a tensor-parallel group over MPI for model contexts.
 *
 * model_tp_new() duplicates a communicator (the group: one rank per
 * process, e.g. from MPI_Comm_split) and returns the model_tp_t that
 * model_ctx_opts_t.tp borrows.  Through it a context sums the partial
 * outputs of wo and w2 (MPI_Allreduce, MPI_SUM on floats) and gathers the
 * classifier's vocabulary slices (MPI_Allgatherv).  The engine library
 * (llmos_model) itself never calls MPI: it sees only the two collectives of
 * the opaque model_tp_t; this header and model/tp.c form the separate
 * library llmos_model_tp, which links MPI.
 *
 * Use (every rank of the group, same order):
 *   model_load(path, &(model_load_opts_t){.tp_rank = r, .tp_size = T}, &m, &e);
 *   model_tp_new(comm, &tp, &e);
 *   model_ctx_new(m, &(model_ctx_opts_t){..., .tp = tp}, &c, &e);
 *   ... model_seq_open / model_ctx_forward with identical arguments ...
 *   model_ctx_destroy(&c); model_tp_destroy(&tp); model_destroy(&m);
 *
 * MPI must be initialised before model_tp_new and finalised after
 * model_tp_destroy.  The collectives run on the thread that calls
 * model_ctx_forward: when that is not the thread that initialised MPI, MPI
 * needs MPI_THREAD_SERIALIZED or more (model_tp_new refuses otherwise).
 * The duplicated communicator returns errors instead of aborting; a failed
 * collective makes model_ctx_forward return LLMOS_EUNAVAILABLE.  Several
 * groups (replicas) in one job: split the world communicator
 * (MPI_Comm_split) and make one model_tp_t per group.  On a shared or
 * oversubscribed machine set OMPI_MCA_mpi_yield_when_idle=1: a rank waiting
 * in a collective then yields its core to the partner it waits for.
 * A model_tp_t is used by one context's thread at a time.
 */
#ifndef LLMOS_MODEL_TP_H
#define LLMOS_MODEL_TP_H

#include "model/model.h"

#include <mpi.h>

/* Duplicates comm (the caller keeps its own).  *out is owned by the caller
 * (model_tp_destroy), and must outlive every context that borrows it.
 * Errors: LLMOS_ESTATE (MPI not initialised, or its thread level too low
 * for a call from this thread), LLMOS_EUNAVAILABLE (MPI_Comm_dup failed),
 * LLMOS_ENOMEM. */
int model_tp_new(MPI_Comm comm, model_tp_t **out, llmos_error_t *err);

/* Frees the duplicated communicator (collective over the group, as
 * MPI_Comm_free) and the handle; sets *tp to NULL.  NULL-safe. */
void model_tp_destroy(model_tp_t **tp);

int model_tp_rank(const model_tp_t *tp);
int model_tp_size(const model_tp_t *tp);
/* The group's own communicator (borrowed until model_tp_destroy). */
MPI_Comm model_tp_comm(const model_tp_t *tp);

#endif
