/*
 * gateway.c — the `gateway` actor (see gateway.h).  Stateless: it decodes,
 * checks and forwards; it never waits, so one instance on the worker pool
 * keeps up with the scheduler.
 */
#include "actors/gateway.h"

#include "jobs/joblog.h"
#include "jobs/sched.h"
#include "llmos/job.pb-c.h"
#include "runtime/pbcheck.h"

#include <stdio.h>
#include <string.h>

static int check_str(const char *s, size_t max, bool required, const char *field, llmos_error_t *err) {
    size_t n = s ? strlen(s) : 0;
    if (required && n == 0) return llmos_error_set(err, LLMOS_EINVAL, "%s is required", field);
    if (n > max) return llmos_error_set(err, LLMOS_EINVAL, "%s is %zu bytes; at most %zu", field, n, max);
    return 0;
}

/* The index of the task named `name` among tasks[0..before), or -1. */
static int earlier(const Llmos__Job *job, size_t before, const char *name) {
    char nb[24];
    for (size_t k = 0; k < before; k++)
        if (strcmp(jobs_task_name(job->tasks[k], (uint32_t)(k), nb, sizeof nb), name) == 0) return (int)k;
    return -1;
}

static int check_refs(const Llmos__Job *job, size_t i, const char *tname, char **refs, size_t n, const char *what,
                      llmos_error_t *err) {
    for (size_t k = 0; k < n; k++) {
        if (!refs[k][0]) return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': %s[%zu] is empty", i, tname, what, k);
        for (size_t m = 0; m < k; m++)
            if (strcmp(refs[m], refs[k]) == 0)
                return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': %s[%zu] '%.64s' is also %s[%zu]", i,
                                       tname, what, k, refs[k], what, m);
        if (earlier(job, i, refs[k]) < 0) {
            bool later = false;
            char nb[24];
            for (size_t m = i; m < job->n_tasks && !later; m++)
                later = strcmp(jobs_task_name(job->tasks[m], (uint32_t)(m), nb, sizeof nb), refs[k]) == 0;
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': %s '%.64s' %s", i, tname, what, refs[k],
                                   later ? "is not an earlier task (tasks may only depend on earlier ones: no cycles)"
                                         : "names no task of the job");
        }
    }
    return 0;
}

static int check_task(const Llmos__Job *job, size_t i, llmos_error_t *err) {
    const Llmos__Task *t = job->tasks[i];
    char nb[24], field[96];
    const char *name = jobs_task_name(t, (uint32_t)(i), nb, sizeof nb);
    snprintf(field, sizeof field, "job.tasks[%zu].name", i);
    int rc = check_str(t->name, GATEWAY_MAX_NAME, false, field, err);
    if (rc) return rc;
    for (size_t k = 0; k < i; k++) {
        char kb[24];
        if (strcmp(jobs_task_name(job->tasks[k], (uint32_t)(k), kb, sizeof kb), name) == 0)
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu]: name '%s' is also the name of job.tasks[%zu]", i,
                                   name, k);
    }
    if (t->kind < LLMOS__TASK_KIND__TASK_ECHO || t->kind > LLMOS__TASK_KIND__TASK_LINK)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "job.tasks[%zu] '%s': kind %d is not a known task kind (echo, generate, classify, "
                               "embed, graph_query, link)",
                               i, name, (int)t->kind);
    size_t tl = strlen(t->text);
    if (tl > GATEWAY_MAX_TEXT)
        return llmos_error_set(err, LLMOS_ETOOBIG, "job.tasks[%zu] '%s': text is %zu bytes; at most %u", i, name, tl,
                               GATEWAY_MAX_TEXT);
    if (tl == 0 && t->n_input_from == 0 && t->kind != LLMOS__TASK_KIND__TASK_ECHO)
        return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': text is empty and no input_from is given", i,
                               name);
    if (t->n_after > GATEWAY_MAX_TASKS || t->n_input_from > GATEWAY_MAX_TASKS)
        return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': too many dependencies", i, name);
    rc = check_refs(job, i, name, t->after, t->n_after, "after", err);
    if (!rc) rc = check_refs(job, i, name, t->input_from, t->n_input_from, "input_from", err);
    if (rc) return rc;
    snprintf(field, sizeof field, "job.tasks[%zu] '%s': target", i, name);
    rc = check_str(t->target, 63, false, field, err);
    if (rc) return rc;
    switch (t->kind) {
    case LLMOS__TASK_KIND__TASK_GENERATE:
        if (t->max_tokens > 1000000)
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': max_tokens %u is over 1000000", i, name,
                                   t->max_tokens);
        if (t->sampling && (t->sampling->temperature < 0 || t->sampling->top_p < 0 || t->sampling->top_p > 1))
            return llmos_error_set(err, LLMOS_EINVAL,
                                   "job.tasks[%zu] '%s': sampling: temperature must be >= 0 and top_p in [0, 1]", i, name);
        if (t->n_stop > 16)
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': %zu stop strings; at most 16", i, name, t->n_stop);
        break;
    case LLMOS__TASK_KIND__TASK_CLASSIFY:
        /* No labels: the model's fine-tuned classifier labels the text. */
        if (t->n_labels > GATEWAY_MAX_LABELS)
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': classify takes at most %d labels (got %zu)",
                                   i, name, GATEWAY_MAX_LABELS, t->n_labels);
        for (size_t k = 0; k < t->n_labels; k++)
            if (!t->labels[k][0])
                return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': labels[%zu] is empty", i, name, k);
        break;
    case LLMOS__TASK_KIND__TASK_GRAPH_QUERY:
        if (t->format[0] && strcmp(t->format, "tsv") != 0 && strcmp(t->format, "json") != 0)
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': format '%.32s' is not tsv or json", i, name,
                                   t->format);
        break;
    case LLMOS__TASK_KIND__TASK_LINK:
        if (t->hops > 2)
            return llmos_error_set(err, LLMOS_EINVAL, "job.tasks[%zu] '%s': hops %u is not 0, 1 or 2", i, name, t->hops);
        break;
    default:
        break;
    }
    return 0;
}

static int check_job(const Llmos__Job *job, llmos_error_t *err) {
    int rc = check_str(job->id, JOBLOG_ID_MAX, true, "job.id", err);
    if (!rc) rc = check_str(job->tenant, JOBLOG_TENANT_MAX, false, "job.tenant", err);
    if (rc) return rc;
    for (const char *p = job->id; *p; p++)
        if ((unsigned char)*p < 0x20)
            return llmos_error_set(err, LLMOS_EINVAL, "job.id contains a control character");
    if (job->n_tasks == 0) return llmos_error_set(err, LLMOS_EINVAL, "job '%s': job.tasks is empty", job->id);
    if (job->max_retries > GATEWAY_MAX_RETRIES)
        return llmos_error_set(err, LLMOS_EINVAL, "job '%s': job.max_retries %u is over %d", job->id, job->max_retries,
                               GATEWAY_MAX_RETRIES);
    if (job->n_tasks > GATEWAY_MAX_TASKS)
        return llmos_error_set(err, LLMOS_EINVAL, "job '%s': %zu tasks; at most %d", job->id, job->n_tasks,
                               GATEWAY_MAX_TASKS);
    if (job->n_labels > GATEWAY_MAX_LABELS)
        return llmos_error_set(err, LLMOS_EINVAL, "job '%s': %zu labels; at most %d", job->id, job->n_labels,
                               GATEWAY_MAX_LABELS);
    for (size_t k = 0; k < job->n_labels; k++)
        if (strlen(job->labels[k]->key) > 256 || strlen(job->labels[k]->value) > 4096)
            return llmos_error_set(err, LLMOS_EINVAL, "job '%s': labels: key over 256 or value over 4096 bytes",
                                   job->id);
    for (size_t i = 0; i < job->n_tasks; i++) {
        rc = check_task(job, i, err);
        if (rc) return llmos_error_prefix(err, "job '%s': ", job->id);
    }
    return 0;
}

int gateway_check(uint32_t type, const void *data, size_t len, llmos_error_t *err) {
    if (len > GATEWAY_MAX_PAYLOAD)
        return llmos_error_set(err, LLMOS_ETOOBIG, "request of %zu bytes; at most %u", len, GATEWAY_MAX_PAYLOAD);
    /* Strings first: protobuf-c would cut "a\0b" to "a" without a word. */
    const ProtobufCMessageDescriptor *desc = NULL;
    switch (type) {
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT: desc = &llmos__submit_request__descriptor; break;
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS:
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL: desc = &llmos__job_ref__descriptor; break;
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT: desc = &llmos__wait_request__descriptor; break;
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST: desc = &llmos__list_request__descriptor; break;
    default: break;
    }
    int rc = desc ? rt_pb_check_strings(desc, data, len, err) : 0;
    if (rc) return rc;
    switch (type) {
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT: {
        Llmos__SubmitRequest *r = llmos__submit_request__unpack(NULL, len, data);
        if (!r) return llmos_error_set(err, LLMOS_EFORMAT, "submit: the payload (%zu bytes) is not a SubmitRequest", len);
        if (!r->job) rc = llmos_error_set(err, LLMOS_EINVAL, "submit: job is missing");
        else rc = check_job(r->job, err);
        llmos__submit_request__free_unpacked(r, NULL);
        return rc;
    }
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS:
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL: {
        Llmos__JobRef *r = llmos__job_ref__unpack(NULL, len, data);
        if (!r) return llmos_error_set(err, LLMOS_EFORMAT, "the payload (%zu bytes) is not a JobRef", len);
        rc = check_str(r->id, JOBLOG_ID_MAX, true, "id", err);
        if (!rc) rc = check_str(r->task, GATEWAY_MAX_NAME, false, "task", err);
        llmos__job_ref__free_unpacked(r, NULL);
        return rc;
    }
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT: {
        Llmos__WaitRequest *r = llmos__wait_request__unpack(NULL, len, data);
        if (!r) return llmos_error_set(err, LLMOS_EFORMAT, "wait: the payload (%zu bytes) is not a WaitRequest", len);
        rc = check_str(r->id, JOBLOG_ID_MAX, true, "id", err);
        llmos__wait_request__free_unpacked(r, NULL);
        return rc;
    }
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST: {
        Llmos__ListRequest *r = llmos__list_request__unpack(NULL, len, data);
        if (!r) return llmos_error_set(err, LLMOS_EFORMAT, "list: the payload (%zu bytes) is not a ListRequest", len);
        rc = check_str(r->tenant, JOBLOG_TENANT_MAX, false, "tenant", err);
        if (!rc) rc = check_str(r->after, JOBLOG_ID_MAX, false, "after", err);
        if (!rc && (r->state < 0 || r->state > LLMOS__JOB_STATE__JOB_QUARANTINED))
            rc = llmos_error_set(err, LLMOS_EINVAL, "state %d is not a job state", (int)r->state);
        llmos__list_request__free_unpacked(r, NULL);
        return rc;
    }
    case LLMOS__JOB_MSG_TYPE__JOB_MSG_SCHED_STATS:
        return 0;
    default:
        return llmos_error_set(err, LLMOS_EUNKNOWNTYPE, "gateway: message type %u is not a job request", type);
    }
}

static int gw_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    if (msg->flags & RT_MSG_REPLY) return 0;
    llmos_error_t err;
    int rc = gateway_check(msg->type, msg->data, msg->len, &err);
    if (rc) {
        if (msg->corr) rt_reply_error(ctx, msg, rc, "%s", err.msg);
        return 0;
    }
    /* Forward as is: the client stays the sender, so the answer goes to it.
     * An undeliverable ask is answered to the client by the runtime. */
    int frc = rt_forward(ctx, rt_ref_name(0, "scheduler"), msg);
    if (frc == LLMOS_ENOMEM && msg->corr)
        rt_reply_error(ctx, msg, LLMOS_ENOMEM, "gateway: no memory to forward the request");
    return 0;
}

static const rt_actor_def_t gw_def = {"gateway", NULL, gw_receive, NULL, NULL};

int gateway_start(rt_system_t *sys, llmos_error_t *err) {
    rt_spawn_opts_t o = {.name = "gateway"};
    rt_ref_t ref;
    int rc = rt_spawn(sys, &gw_def, NULL, &o, &ref, err);
    if (rc) return llmos_error_prefix(err, "starting the gateway: ");
    return 0;
}
