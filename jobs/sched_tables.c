/*
 * sched_tables.c — the scheduling core's tables (see sched.h and
 * sched_internal.h): its configuration and names, the jobs by id and by
 * sequence number (two intrusive chained hash tables: a pointer per job in
 * each, so a queued job costs ~200 bytes beyond its text, jobs_bench's
 * figure), targets and tenants with reuse, and how a job is made and freed.
 */
#include "jobs/sched_internal.h"

#include "runtime/base/map.h"
#include "runtime/base/parse.h"

#include <stdio.h>
#include <string.h>

/* ---- config ---- */

void jobs_sched_config_init(jobs_sched_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->policy = JOBS_FIFO;
    cfg->queue_limit = 100000;
    cfg->max_retries_default = 2;
    cfg->aging_ms = 1000;
    cfg->retry_base_ms = 100;
    cfg->task_timeout_ms = 600000;
    cfg->inflight_default = 256;
    cfg->quarantine_after = 3;
}

static const char *const policy_names[] = {"fifo", "priority", "round_robin"};

int jobs_policy_parse(const char *s, jobs_policy_t *out, llmos_error_t *err) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, policy_names[i]) == 0) {
            *out = (jobs_policy_t)i;
            return 0;
        }
    return llmos_error_set(err, LLMOS_EINVAL, "scheduler_policy '%s' is not fifo, priority or round_robin", s);
}

const char *jobs_policy_name(jobs_policy_t p) { return (unsigned)p < 3 ? policy_names[p] : "?"; }

int jobs_limits_parse(jobs_sched_config_t *cfg, const char *list, llmos_error_t *err) {
    char buf[2048];
    if (strlen(list) >= sizeof buf) return llmos_error_set(err, LLMOS_EINVAL, "target_inflight list is too long");
    snprintf(buf, sizeof buf, "%s", list);
    char *rest = buf;
    for (char *tok = strsep(&rest, ","); tok; tok = strsep(&rest, ",")) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        char *eq = strchr(tok, '=');
        uint32_t v = 0;
        if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof cfg->limits[0].name ||
            llmos_parse_u32("target_inflight", eq + 1, 0, 1000000, 0, &v, NULL) != 0)
            return llmos_error_set(err, LLMOS_EINVAL, "target_inflight entry '%s' is not NAME=N (N <= 1000000)", tok);
        if (cfg->nlimits == JOBS_TARGETS_MAX)
            return llmos_error_set(err, LLMOS_EINVAL, "target_inflight: more than %d targets", JOBS_TARGETS_MAX);
        jobs_target_limit_t *l = &cfg->limits[cfg->nlimits++];
        snprintf(l->name, sizeof l->name, "%.*s", (int)(eq - tok), tok);
        l->inflight = (uint32_t)v;
    }
    return 0;
}

/* ---- names ---- */

const char *jobs_task_target(const Llmos__Task *t) {
    if (t->target && t->target[0]) return t->target;
    switch (t->kind) {
    case LLMOS__TASK_KIND__TASK_ECHO: return "echo";
    case LLMOS__TASK_KIND__TASK_GRAPH_QUERY:
    case LLMOS__TASK_KIND__TASK_LINK: return "graph";
    default: return "model";
    }
}

const char *jobs_task_name(const Llmos__Task *t, uint32_t i, char *buf, size_t cap) {
    if (t->name && t->name[0]) return t->name;
    snprintf(buf, cap, "t%u", i);
    return buf;
}

int jobs_task_index(const Llmos__Job *job, const char *name) {
    char buf[16];
    for (size_t i = 0; i < job->n_tasks; i++)
        if (strcmp(jobs_task_name(job->tasks[i], (uint32_t)i, buf, sizeof buf), name) == 0) return (int)i;
    return -1;
}

/* What a node needs to serve a default target, for the refusal. */
static const char *target_hint(const char *name) {
    if (strcmp(name, "graph") == 0) return " (start llmosd with --graph DIR)";
    if (strcmp(name, "model") == 0 || strncmp(name, "model/", 6) == 0)
        return " (start llmosd with --model FILE --tokenizer FILE, --classifier DIR or --ensemble SPEC)";
    return "";
}

/* ---- hash tables ---- */

/* (the tables are intrusive chains, not llmos_map_t: a pointer per job in
 * each keeps a queued job at ~200 bytes, jobs_bench's figure; the hashes
 * are the shared ones) */
static uint64_t hash_str(const char *s) { return llmos_hash_fnv1a(s, strlen(s)); }
static uint64_t hash_u64(uint64_t x) { return llmos_hash_u64(x); }

static int table_grow(jobs_sched_t *s) {
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 1024;
    sjob_t **bi = calloc(nb, sizeof *bi), **bs = calloc(nb, sizeof *bs);
    if (!bi || !bs) {
        free(bi);
        free(bs);
        return LLMOS_ENOMEM;
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (sjob_t *j = s->by_id[i], *n; j; j = n) {
            n = j->next_id;
            size_t b = hash_str(j->id) & (nb - 1);
            j->next_id = bi[b];
            bi[b] = j;
        }
        for (sjob_t *j = s->by_seq[i], *n; j; j = n) {
            n = j->next_seq;
            size_t b = hash_u64(j->seq) & (nb - 1);
            j->next_seq = bs[b];
            bs[b] = j;
        }
    }
    free(s->by_id);
    free(s->by_seq);
    s->by_id = bi;
    s->by_seq = bs;
    s->nbuckets = nb;
    return 0;
}


/* An unfinished job by id (an ended one waiting to be freed is not found). */
sjob_t *sj_by_id(const jobs_sched_t *s, const char *id) {
    if (!s->nbuckets) return NULL;
    for (sjob_t *j = s->by_id[hash_str(id) & (s->nbuckets - 1)]; j; j = j->next_id)
        if (strcmp(j->id, id) == 0 && !jobs_state_final(j->state)) return j;
    return NULL;
}

/* Any job in memory by seq, ended ones too. */
sjob_t *sj_by_seq_any(const jobs_sched_t *s, uint64_t seq) {
    if (!s->nbuckets) return NULL;
    for (sjob_t *j = s->by_seq[hash_u64(seq) & (s->nbuckets - 1)]; j; j = j->next_seq)
        if (j->seq == seq) return j;
    return NULL;
}

/* An unfinished job by seq. */
sjob_t *sj_alive(const jobs_sched_t *s, uint64_t seq) {
    sjob_t *j = sj_by_seq_any(s, seq);
    return j && !jobs_state_final(j->state) ? j : NULL;
}

static int job_insert(jobs_sched_t *s, sjob_t *j) {
    if (s->njobs >= s->nbuckets) {
        int rc = table_grow(s);
        if (rc) return rc;
    }
    size_t b = hash_str(j->id) & (s->nbuckets - 1);
    j->next_id = s->by_id[b];
    s->by_id[b] = j;
    b = hash_u64(j->seq) & (s->nbuckets - 1);
    j->next_seq = s->by_seq[b];
    s->by_seq[b] = j;
    s->njobs++;
    return 0;
}

void sj_remove(jobs_sched_t *s, sjob_t *j) {
    sjob_t **p = &s->by_id[hash_str(j->id) & (s->nbuckets - 1)];
    while (*p != j) p = &(*p)->next_id;
    *p = j->next_id;
    p = &s->by_seq[hash_u64(j->seq) & (s->nbuckets - 1)];
    while (*p != j) p = &(*p)->next_seq;
    *p = j->next_seq;
    s->njobs--;
}

/* ---- targets and tenants ---- */

/* The entry of target `name`, made (or an unused one reused) when there is
 * none.  EOVERLOADED when every entry has unfinished tasks; EINVAL for a
 * name that does not fit. */
static int target_find(jobs_sched_t *s, const char *name, uint8_t *out) {
    for (uint32_t i = 0; i < s->ntargets; i++)
        if (strcmp(s->targets[i].name, name) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    if (strlen(name) >= sizeof s->targets[0].name) return LLMOS_EINVAL;
    uint32_t slot = s->ntargets;
    if (slot == JOBS_TARGETS_MAX) {
        /* Reuse an entry no unfinished task names: its queue holds only
         * stale entries and nothing of it is in flight. */
        for (slot = 0; slot < s->ntargets && s->targets[slot].refs; slot++) {
        }
        if (slot == s->ntargets) return LLMOS_EOVERLOADED;
    } else {
        s->ntargets++;
    }
    target_t *t = &s->targets[slot];
    qent_t *qv = t->q.v;
    size_t qcap = t->q.cap;
    memset(t, 0, sizeof *t);
    t->q.v = qv; /* keep the queue's memory */
    t->q.cap = qcap;
    for (uint32_t k = 0; k < s->ntenants; k++) s->tenants[k].last[slot] = 0;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->limit = s->cfg.inflight_default;
    t->learn = strcmp(name, "model") == 0 || strncmp(name, "model/", 6) == 0;
    for (uint32_t i = 0; i < s->cfg.nlimits; i++)
        if (strcmp(s->cfg.limits[i].name, name) == 0) {
            t->limit = s->cfg.limits[i].inflight;
            t->learn = false;
        }
    *out = (uint8_t)slot;
    return 0;
}

/* The entry of tenant `name` (made, or an unused one reused, when there is
 * none).  EOVERLOADED when JOBS_TENANTS_MAX tenants all have unfinished jobs. */
static int tenant_find(jobs_sched_t *s, const char *name, uint16_t *out) {
    uint32_t spare = UINT32_MAX;
    for (uint32_t i = 0; i < s->ntenants; i++) {
        if (strcmp(s->tenants[i].name, name) == 0) {
            *out = (uint16_t)i;
            return 0;
        }
        if (spare == UINT32_MAX && s->tenants[i].refs == 0) spare = i;
    }
    char *n = strdup(name);
    if (!n) return LLMOS_ENOMEM;
    uint32_t slot;
    if (s->ntenants == JOBS_TENANTS_MAX) {
        if (spare == UINT32_MAX) {
            free(n);
            return LLMOS_EOVERLOADED;
        }
        slot = spare;
        free(s->tenants[slot].name);
    } else {
        if ((s->ntenants & (s->ntenants - 1)) == 0) {
            size_t cap = s->ntenants ? s->ntenants * 2 : 8;
            tenant_t *p = realloc(s->tenants, cap * sizeof *p);
            if (!p) {
                free(n);
                return LLMOS_ENOMEM;
            }
            s->tenants = p;
        }
        slot = s->ntenants++;
    }
    tenant_t *t = &s->tenants[slot];
    memset(t, 0, sizeof *t);
    t->name = n;
    *out = (uint16_t)slot;
    return 0;
}

/* Drops the job's references to its tenant and targets and frees it. */
void sj_free(jobs_sched_t *s, sjob_t *j) {
    for (uint32_t i = 0; i < j->ntasks; i++) s->targets[j->tasks[i].target].refs--;
    s->tenants[j->tenant].refs--;
    for (waiter_t *w = j->waiters, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    free(j);
}

int sj_make(jobs_sched_t *s, const Llmos__Job *spec, const void *packed, size_t plen, uint64_t seq,
                    const char *tenant, uint64_t submitted_ms, bool (*served)(void *, const char *), void *user,
                    sjob_t **out, llmos_error_t *err) {
    size_t idlen = strlen(spec->id), n = spec->n_tasks;
    if (idlen == 0 || idlen > 1024) return llmos_error_set(err, LLMOS_EINVAL, "job.id: empty or over 1024 bytes");
    if (n == 0 || n > 0xFFFF) return llmos_error_set(err, LLMOS_EINVAL, "job.tasks: %zu tasks (1..65535)", n);
    if (plen > UINT32_MAX) return llmos_error_set(err, LLMOS_ETOOBIG, "job '%s': a %zu-byte spec", spec->id, plen);
    size_t ndeps = 0;
    for (size_t i = 0; i < n; i++) {
        const Llmos__Task *t = spec->tasks[i];
        ndeps += t->n_after + t->n_input_from;
        const char *target = jobs_task_target(t);
        if (served && !served(user, target)) {
            char nb[16];
            return llmos_error_set(err, LLMOS_ENOTFOUND,
                                   "job.tasks[%zu] '%s': target '%.64s' is not served by this node%s", i,
                                   jobs_task_name(t, (uint32_t)i, nb, sizeof nb), target, target_hint(target));
        }
    }
    size_t off_tasks = (sizeof(sjob_t) + idlen + 1 + 7) & ~(size_t)7;
    size_t off_off = off_tasks + n * sizeof(stask_t);
    size_t off_deps = off_off + (n + 1) * sizeof(uint32_t);
    size_t off_spec = off_deps + ndeps * sizeof(uint16_t);
    sjob_t *j = calloc(1, off_spec + plen);
    if (!j) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for job '%s'", spec->id);
    memcpy(j->id, spec->id, idlen + 1);
    j->tasks = (stask_t *)((uint8_t *)j + off_tasks);
    j->dep_off = (uint32_t *)((uint8_t *)j + off_off);
    j->deps = (uint16_t *)((uint8_t *)j + off_deps);
    j->spec = (uint8_t *)j + off_spec;
    memcpy(j->spec, packed, plen);
    j->spec_len = (uint32_t)plen;
    j->seq = seq;
    j->submitted_ms = submitted_ms;
    j->deadline_ms = spec->deadline_ms;
    j->priority = spec->priority;
    j->max_retries = spec->max_retries ? spec->max_retries : s->cfg.max_retries_default;
    if (j->max_retries > 250) j->max_retries = 250; /* attempts are counted in a byte */
    j->ntasks = (uint16_t)n;
    j->state = LLMOS__JOB_STATE__JOB_QUEUED;
    /* Dependencies as indices: a name that is no task (the gateway refuses
     * those) is left out, so the task does not wait forever. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Llmos__Task *t = spec->tasks[i];
        j->dep_off[i] = (uint32_t)k;
        for (size_t a = 0; a < t->n_after + t->n_input_from; a++) {
            int d = jobs_task_index(spec, a < t->n_after ? t->after[a] : t->input_from[a - t->n_after]);
            if (d >= 0 && (size_t)d != i) j->deps[k++] = (uint16_t)d;
        }
        j->tasks[i].ndeps = (uint16_t)(k - j->dep_off[i]);
    }
    j->dep_off[n] = (uint32_t)k;
    int rc = tenant_find(s, tenant, &j->tenant);
    if (rc) {
        free(j);
        return rc == LLMOS_EOVERLOADED
                   ? llmos_error_set(err, rc, "tenant '%s': %d other tenants have unfinished jobs; retry later",
                                     tenant, JOBS_TENANTS_MAX)
                   : llmos_error_set(err, rc, "no memory for tenant '%s'", tenant);
    }
    s->tenants[j->tenant].refs++;
    for (size_t i = 0; i < n; i++) {
        const char *target = jobs_task_target(spec->tasks[i]);
        rc = target_find(s, target, &j->tasks[i].target);
        if (rc) {
            j->ntasks = (uint16_t)i; /* the references taken so far */
            sj_free(s, j);
            return rc == LLMOS_EOVERLOADED
                       ? llmos_error_set(err, rc,
                                         "task %zu: target '%s': %d other targets have unfinished tasks; retry later",
                                         i, target, JOBS_TARGETS_MAX)
                       : llmos_error_set(err, rc, "task %zu: target name '%.64s...' is too long", i, target);
        }
        s->targets[j->tasks[i].target].refs++;
        j->tasks[i].kind = (uint8_t)spec->tasks[i]->kind;
        j->tasks[i].state = LLMOS__TASK_STATE__TASK_PENDING;
    }
    rc = job_insert(s, j);
    if (rc) {
        sj_free(s, j);
        return llmos_error_set(err, rc, "no memory for the job table");
    }
    *out = j;
    return 0;
}

