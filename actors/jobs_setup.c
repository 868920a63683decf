/* jobs_setup.c — see jobs_setup.h.  Only translation and start-up order. */
#include "actors/jobs_setup.h"

#include "actors/gateway.h"

#include <stdio.h>

int actors_jobs_config(const cl_config_t *cfg, sched_config_t *out, llmos_error_t *err) {
    sched_config_init(out);
    if ((size_t)snprintf(out->data_dir, sizeof out->data_dir, "%s", cfg->data_dir) >= sizeof out->data_dir)
        return llmos_error_set(err, LLMOS_EINVAL, "data_dir is too long");
    int rc = jobs_policy_parse(cfg->scheduler_policy, &out->core.policy, err);
    if (rc) return rc;
    out->core.queue_limit = cfg->queue_limit;
    out->retention_s = cfg->retention_s;
    out->core.max_retries_default = cfg->max_retries_default;
    out->sync = cfg->sync != 0;
    out->task_input_max = cfg->task_input_max;
    out->core.quarantine_after = cfg->quarantine_after;
    /* A status must fit a frame with room to spare: texts beyond this go in parts. */
    out->status_max_bytes = cfg->max_frame / 4 < out->status_max_bytes ? cfg->max_frame / 4 : out->status_max_bytes;
    if (cfg->target_inflight[0]) {
        rc = jobs_limits_parse(&out->core, cfg->target_inflight, err);
        if (rc) return rc;
    }
    return 0;
}

int actors_jobs_start(rt_system_t *sys, const cl_config_t *cfg, int rank, llmos_error_t *err) {
    sched_config_t sc;
    int rc = actors_jobs_config(cfg, &sc, err);
    if (!rc && rank > 0) {
        char dir[sizeof sc.data_dir];
        if ((size_t)snprintf(dir, sizeof dir, "%s/rank%d", sc.data_dir, rank) >= sizeof dir)
            return llmos_error_set(err, LLMOS_EINVAL, "data_dir is too long");
        snprintf(sc.data_dir, sizeof sc.data_dir, "%s", dir);
    }
    if (!rc) rc = sched_start(sys, &sc, err);
    if (!rc) rc = gateway_start(sys, err);
    return rc;
}
