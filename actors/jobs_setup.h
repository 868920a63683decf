/*
 * jobs_setup.h — what llmosd calls to run jobs on a node: builds the
 * scheduler's settings from the node config (cluster/config.h keys
 * data_dir, scheduler_policy, queue_limit, retention_s, max_retries_default,
 * sync, target_inflight) and spawns `scheduler` (which opens and recovers
 * DATA_DIR/jobs.lmdb) and `gateway`.
 */
#ifndef LLMOS_ACTORS_JOBS_SETUP_H
#define LLMOS_ACTORS_JOBS_SETUP_H

#include "actors/scheduler.h"
#include "cluster/config.h"

/* Fills out from cfg.  LLMOS_EINVAL naming the bad key. */
int actors_jobs_config(const cl_config_t *cfg, sched_config_t *out, llmos_error_t *err);

/* Starts scheduler + gateway.  rank: the MPI rank (0 without MPI); ranks
 * above 0 keep their log in DATA_DIR/rank<N> so the processes of one
 * `mpirun` on one host never share a log.  Errors: a bad setting (EINVAL),
 * an unusable data directory or log (EIO, EFORMAT), those of rt_spawn. */
int actors_jobs_start(rt_system_t *sys, const cl_config_t *cfg, int rank, llmos_error_t *err);

#endif
