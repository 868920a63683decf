/*
 * jobs.c — the job half of libllmos-client (include/llmos/client.h, "Jobs"):
 * building job descriptions, and submit / wait / stream / status / cancel /
 * list as asks to the node's "gateway" actor (protos/llmos/job.proto).
 *
 * A job description keeps its tasks as protobuf-c Task messages whose
 * strings and arrays the job owns (task_free releases them); submitting
 * packs them into a SubmitRequest that points at them, so nothing is copied
 * twice.  Replies are decoded and deep-copied into the plain C structs of
 * the public header, which exposes no protobuf type.
 *
 * Asynchronous submission (llmos_client_submit_async / llmos_client_poll)
 * packs the same SubmitRequest and hands it to client.c's slot table
 * (client_internal.h); poll decodes each finished slot's reply straight
 * into the caller's result array.
 *
 * Thread-safety: a job description has one owner; the calls take the
 * handle's lock through llmos_client_call (client.c) like every other call.
 * Never links model, graph or MPI.
 */
#include "client_internal.h"
#include "jobs_internal.h"

#include "llmos/job.pb-c.h"
#include "runtime/base/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATEWAY "gateway"
#define WAIT_DEFAULT_MS 30000u /* wait-type calls given timeout 0 */
#define WAIT_MARGIN_MS 2000u   /* at most this much of a wait's timeout is left for the trip */

struct llmos_job {
    char *id;
    char *tenant;             /* NULL = the handle's */
    int32_t priority;
    uint64_t deadline_ms;
    uint32_t max_retries;
    char **label_keys, **label_values;
    size_t n_labels;
    Llmos__Task **tasks;      /* owned, see task_free */
    size_t n_tasks;
};

/* ---- names ---- */

static const char *const kind_names[] = {"none", "echo", "generate", "classify", "embed", "graph_query", "link"};
static const char *const job_state_names[] = {"none",   "queued",    "running", "done",
                                              "failed", "cancelled", "expired", "quarantined"};
static const char *const task_state_names[] = {"none", "pending",   "ready",    "running",
                                               "done", "failed",    "cancelled", "retry_wait"};
#define NAMES(a) (sizeof(a) / sizeof(a)[0])

const char *llmos_task_kind_name(llmos_task_kind_t k) {
    return (unsigned)k < NAMES(kind_names) && k ? kind_names[k] : "?";
}
const char *llmos_job_state_name(llmos_job_state_t s) {
    return (unsigned)s < NAMES(job_state_names) && s ? job_state_names[s] : "?";
}
const char *llmos_task_state_name(llmos_task_state_t s) {
    return (unsigned)s < NAMES(task_state_names) && s ? task_state_names[s] : "?";
}
llmos_task_kind_t llmos_task_kind_parse(const char *name) {
    if (!name) return LLMOS_TASK_NONE;
    if (strcmp(name, "query") == 0) return LLMOS_TASK_GRAPH_QUERY;
    for (size_t i = 1; i < NAMES(kind_names); i++)
        if (strcmp(name, kind_names[i]) == 0) return (llmos_task_kind_t)i;
    return LLMOS_TASK_NONE;
}
llmos_job_state_t llmos_job_state_parse(const char *name) {
    if (!name) return LLMOS_JOB_STATE_NONE;
    for (size_t i = 1; i < NAMES(job_state_names); i++)
        if (strcmp(name, job_state_names[i]) == 0) return (llmos_job_state_t)i;
    return LLMOS_JOB_STATE_NONE;
}
int llmos_job_state_final(llmos_job_state_t s) { return s >= LLMOS_JOB_DONE && s <= LLMOS_JOB_QUARANTINED; }

/* The node-side wait of a wait-type call that must end within timeout_ms:
 * the node answers (with the job's state so far) a little before, so the
 * answer arrives in time and the call never outlasts its timeout. */
static uint32_t wait_node_ms(uint32_t timeout_ms) {
    uint32_t margin = timeout_ms / 4 < WAIT_MARGIN_MS ? timeout_ms / 4 : WAIT_MARGIN_MS;
    return timeout_ms - margin;
}

/* ---- job descriptions ---- */

/* Checks an id, tenant or task name of n bytes.  One given with its length
 * (llmos_job_new_len...) may hold a NUL that a C string would end at, so
 * "a\0b" and "a" would be the same job: refused. */
static int check_id_len(const char *id, size_t n, const char *what, llmos_client_error_t *err) {
    if (!id || n == 0) return client_err(err, LLMOS_CLIENT_EINVAL, "%s: empty", what);
    if (n > LLMOS_JOB_ID_MAX)
        return client_err(err, LLMOS_CLIENT_EINVAL, "%s: %zu bytes, over the %d-byte limit", what, n, LLMOS_JOB_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if (id[i] == 0)
            return client_err(err, LLMOS_CLIENT_EINVAL, "%s: a NUL byte at byte %zu (an id cannot hold one)", what, i);
        else if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return client_err(err, LLMOS_CLIENT_EINVAL, "%s: control character at byte %zu", what, i);
    size_t bad = llmos_utf8_check(id, n);
    if (bad < n) return client_err(err, LLMOS_CLIENT_EINVAL, "%s: not valid UTF-8 at byte %zu", what, bad);
    return 0;
}

static int check_id(const char *id, const char *what, llmos_client_error_t *err) {
    return check_id_len(id, id ? strlen(id) : 0, what, err);
}

static void task_free(Llmos__Task *t) {
    if (!t) return;
    free(t->name);
    free(t->text);
    for (size_t i = 0; i < t->n_after; i++) free(t->after[i]);
    free(t->after);
    for (size_t i = 0; i < t->n_input_from; i++) free(t->input_from[i]);
    free(t->input_from);
    for (size_t i = 0; i < t->n_stop; i++) free(t->stop[i]);
    free(t->stop);
    for (size_t i = 0; i < t->n_labels; i++) free(t->labels[i]);
    free(t->labels);
    if (t->format != protobuf_c_empty_string) free(t->format);
    if (t->target != protobuf_c_empty_string) free(t->target);
    free(t->sampling);
    free(t);
}

int llmos_job_new(const char *id, llmos_job_t **out, llmos_client_error_t *err) {
    return llmos_job_new_len(id, id ? strlen(id) : 0, out, err);
}

int llmos_job_new_len(const char *id, size_t len, llmos_job_t **out, llmos_client_error_t *err) {
    *out = NULL;
    int rc = check_id_len(id, len, "job id", err);
    if (rc) return rc;
    llmos_job_t *j = calloc(1, sizeof *j);
    if (!j || !(j->id = strndup(id, len))) {
        free(j);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a job");
    }
    *out = j;
    return 0;
}

void llmos_job_destroy(llmos_job_t **jp) {
    if (!jp || !*jp) return;
    llmos_job_t *j = *jp;
    for (size_t i = 0; i < j->n_tasks; i++) task_free(j->tasks[i]);
    free(j->tasks);
    for (size_t i = 0; i < j->n_labels; i++) {
        free(j->label_keys[i]);
        free(j->label_values[i]);
    }
    free(j->label_keys);
    free(j->label_values);
    free(j->id);
    free(j->tenant);
    free(j);
    *jp = NULL;
}

const char *llmos_job_id(const llmos_job_t *j) { return j->id; }
size_t llmos_job_task_count(const llmos_job_t *j) { return j->n_tasks; }

int llmos_job_set_id(llmos_job_t *j, const char *id, llmos_client_error_t *err) {
    return llmos_job_set_id_len(j, id, id ? strlen(id) : 0, err);
}

int llmos_job_set_id_len(llmos_job_t *j, const char *id, size_t len, llmos_client_error_t *err) {
    int rc = check_id_len(id, len, "job id", err);
    if (rc) return rc;
    char *s = strndup(id, len);
    if (!s) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a job id");
    free(j->id);
    j->id = s;
    return 0;
}

int llmos_job_set_tenant(llmos_job_t *j, const char *tenant, llmos_client_error_t *err) {
    return llmos_job_set_tenant_len(j, tenant, tenant ? strlen(tenant) : 0, err);
}

int llmos_job_set_tenant_len(llmos_job_t *j, const char *tenant, size_t len, llmos_client_error_t *err) {
    char *s = NULL;
    if (tenant) {
        int rc = check_id_len(tenant, len, "tenant", err);
        if (rc) return rc;
        if (!(s = strndup(tenant, len))) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a tenant");
    }
    free(j->tenant);
    j->tenant = s;
    return 0;
}

void llmos_job_set_priority(llmos_job_t *j, int32_t priority) { j->priority = priority; }
void llmos_job_set_deadline(llmos_job_t *j, uint64_t unix_ms) { j->deadline_ms = unix_ms; }
void llmos_job_set_max_retries(llmos_job_t *j, uint32_t max_retries) { j->max_retries = max_retries; }

int llmos_job_set_label(llmos_job_t *j, const char *key, const char *value, llmos_client_error_t *err) {
    if (!key || !key[0] || !value) return client_err(err, LLMOS_CLIENT_EINVAL, "labels: empty key or no value");
    char *v = strdup(value);
    if (!v) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a label");
    for (size_t i = 0; i < j->n_labels; i++)
        if (strcmp(j->label_keys[i], key) == 0) {
            free(j->label_values[i]);
            j->label_values[i] = v;
            return 0;
        }
    char *k = strdup(key);
    char **nk = realloc(j->label_keys, (j->n_labels + 1) * sizeof *nk);
    if (nk) j->label_keys = nk;
    char **nv = nk ? realloc(j->label_values, (j->n_labels + 1) * sizeof *nv) : NULL;
    if (nv) j->label_values = nv;
    if (!k || !nk || !nv) {
        free(k);
        free(v);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a label");
    }
    j->label_keys[j->n_labels] = k;
    j->label_values[j->n_labels++] = v;
    return 0;
}

static Llmos__Task *find_task(const llmos_job_t *j, const char *name) {
    for (size_t i = 0; i < j->n_tasks; i++)
        if (strcmp(j->tasks[i]->name, name) == 0) return j->tasks[i];
    return NULL;
}

/* Copies n strings into *dst (an owned array); 0 or ENOMEM. */
static int copy_strings(const char *const *src, size_t n, char ***dst, size_t *n_dst) {
    *dst = NULL;
    *n_dst = 0;
    if (!n) return 0;
    if (!(*dst = calloc(n, sizeof **dst))) return LLMOS_CLIENT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!((*dst)[i] = strdup(src[i] ? src[i] : ""))) return LLMOS_CLIENT_ENOMEM;
        (*n_dst)++;
    }
    return 0;
}

/* Dependencies named in after/input_from must exist already. */
static int check_deps(const llmos_job_t *j, const char *field, const char *const *names, size_t n,
                      const char *self, llmos_client_error_t *err) {
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !names[i][0]) return client_err(err, LLMOS_CLIENT_EINVAL, "%s[%zu]: empty task name", field, i);
        if (strcmp(names[i], self) == 0)
            return client_err(err, LLMOS_CLIENT_EINVAL, "%s[%zu]: task '%s' names itself", field, i, self);
        if (!find_task(j, names[i]))
            return client_err(err, LLMOS_CLIENT_EINVAL, "%s[%zu]: no earlier task named '%s'", field, i, names[i]);
    }
    return 0;
}

int llmos_job_add_task(llmos_job_t *j, const llmos_task_spec_t *t, llmos_client_error_t *err) {
    if (!j || !t) return client_err(err, LLMOS_CLIENT_EINVAL, "no job or no task");
    if (j->n_tasks >= LLMOS_JOB_TASKS_MAX)
        return client_err(err, LLMOS_CLIENT_EINVAL, "tasks: a job holds at most %d tasks", LLMOS_JOB_TASKS_MAX);
    if (t->kind < LLMOS_TASK_ECHO || t->kind > LLMOS_TASK_LINK)
        return client_err(err, LLMOS_CLIENT_EINVAL, "kind: %d is not a task kind", (int)t->kind);
    char autoname[24];
    const char *name = t->name;
    if (!name) {
        snprintf(autoname, sizeof autoname, "t%zu", j->n_tasks);
        name = autoname;
    }
    int rc = check_id(name, "name", err);
    if (rc) return rc;
    if (find_task(j, name)) return client_err(err, LLMOS_CLIENT_EINVAL, "name: a task '%s' exists already", name);
    if ((rc = check_deps(j, "after", t->after, t->n_after, name, err)) ||
        (rc = check_deps(j, "input_from", t->input_from, t->n_input_from, name, err)))
        return rc;
    int has_text = t->text && t->text[0];
    size_t tlen = has_text ? strlen(t->text) : 0, tbad = has_text ? llmos_utf8_check(t->text, tlen) : 0;
    if (tbad < tlen) return client_err(err, LLMOS_CLIENT_EINVAL, "text: not valid UTF-8 at byte %zu", tbad);
    if (!has_text && !(t->kind == LLMOS_TASK_GENERATE && t->n_input_from))
        return client_err(err, LLMOS_CLIENT_EINVAL, "text: a %s task needs a text", llmos_task_kind_name(t->kind));
    if (t->kind == LLMOS_TASK_CLASSIFY && t->n_labels == 1) /* none: the node's classifier (llmosd --classifier) */
        return client_err(err, LLMOS_CLIENT_EINVAL, "labels: a classify task needs at least 2 labels, or none for the "
                        "node's classifier (has 1)");
    if (t->kind != LLMOS_TASK_CLASSIFY && t->n_labels)
        return client_err(err, LLMOS_CLIENT_EINVAL, "labels: only classify tasks take labels");
    if (t->hops > 2) return client_err(err, LLMOS_CLIENT_EINVAL, "hops: %u (at most 2)", t->hops);
    if (t->temperature < 0 || t->top_p < 0 || t->top_p > 1 || t->repetition_penalty < 0)
        return client_err(err, LLMOS_CLIENT_EINVAL, "%s: out of range",
                        t->temperature < 0 ? "temperature" : t->top_p < 0 || t->top_p > 1 ? "top_p"
                                                                                         : "repetition_penalty");
    if (t->format && t->format[0] && strcmp(t->format, "tsv") != 0 && strcmp(t->format, "json") != 0)
        return client_err(err, LLMOS_CLIENT_EINVAL, "format: '%s' (tsv or json)", t->format);

    Llmos__Task **grown = realloc(j->tasks, (j->n_tasks + 1) * sizeof *grown);
    if (!grown) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a task");
    j->tasks = grown;
    Llmos__Task *p = calloc(1, sizeof *p);
    if (!p) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a task");
    llmos__task__init(p);
    p->name = p->text = p->format = p->target = NULL;
    p->kind = (Llmos__TaskKind)t->kind;
    p->max_tokens = t->max_tokens;
    p->hops = t->hops;
    p->hops_set = t->hops_set || t->hops;
    p->max_facts = t->max_facts;
    int bad = !(p->name = strdup(name)) || !(p->text = strdup(has_text ? t->text : "")) ||
              copy_strings(t->after, t->n_after, &p->after, &p->n_after) ||
              copy_strings(t->input_from, t->n_input_from, &p->input_from, &p->n_input_from) ||
              copy_strings(t->stop, t->n_stop, &p->stop, &p->n_stop) ||
              copy_strings(t->labels, t->n_labels, &p->labels, &p->n_labels) ||
              !(p->format = strdup(t->format ? t->format : "")) || !(p->target = strdup(t->target ? t->target : ""));
    if (!bad && t->kind == LLMOS_TASK_GENERATE) {
        if (!(p->sampling = calloc(1, sizeof *p->sampling))) {
            bad = 1;
        } else {
            llmos__sampling_params__init(p->sampling);
            p->sampling->temperature = t->temperature;
            p->sampling->top_k = t->top_k;
            p->sampling->top_p = t->top_p;
            p->sampling->repetition_penalty = t->repetition_penalty;
            p->sampling->seed = t->seed;
        }
    }
    if (bad) {
        task_free(p);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a task");
    }
    j->tasks[j->n_tasks++] = p;
    return 0;
}

/* ---- packing requests ---- */

int jobs_pack_submit(const llmos_job_t *j, int wait, int stream, uint32_t wait_ms, uint8_t **buf, size_t *len,
                     llmos_client_error_t *err) {
    Llmos__Job job = LLMOS__JOB__INIT;
    job.id = j->id;
    if (j->tenant) job.tenant = j->tenant;
    job.priority = j->priority;
    job.deadline_ms = j->deadline_ms;
    job.max_retries = j->max_retries;
    job.n_tasks = j->n_tasks;
    job.tasks = j->tasks;
    Llmos__Job__LabelsEntry *entries = NULL, **eps = NULL;
    if (j->n_labels) {
        entries = calloc(j->n_labels, sizeof *entries);
        eps = calloc(j->n_labels, sizeof *eps);
        if (!entries || !eps) {
            free(entries);
            free(eps);
            return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a request");
        }
        for (size_t i = 0; i < j->n_labels; i++) {
            llmos__job__labels_entry__init(&entries[i]);
            entries[i].key = j->label_keys[i];
            entries[i].value = j->label_values[i];
            eps[i] = &entries[i];
        }
        job.n_labels = j->n_labels;
        job.labels = eps;
    }
    Llmos__SubmitRequest req = LLMOS__SUBMIT_REQUEST__INIT;
    req.job = &job;
    req.wait = wait;
    req.wait_timeout_ms = wait_ms;
    req.stream = stream;
    *len = llmos__submit_request__get_packed_size(&req);
    *buf = malloc(*len ? *len : 1);
    if (*buf) llmos__submit_request__pack(&req, *buf);
    free(entries);
    free(eps);
    return *buf ? 0 : client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a %zu-byte request", *len);
}

/* ---- decoding replies ---- */

static char *dupstr(const char *s) { return strdup(s ? s : ""); }

static void task_result_deinit(llmos_task_result_t *t) {
    free(t->name);
    free(t->text);
    free(t->tokens);
    for (size_t i = 0; i < t->n_labels; i++) free(t->labels[i]);
    free(t->labels);
    free(t->probs);
    free(t->best);
    free(t->vector);
    free(t->error);
    free(t->finish_reason);
    memset(t, 0, sizeof *t);
}

/* Deep-copies a TaskResult; 0 or ENOMEM (then *t is deinit'ed). */
static int task_result_copy(llmos_task_result_t *t, const Llmos__TaskResult *r) {
    memset(t, 0, sizeof *t);
    t->kind = (llmos_task_kind_t)r->kind;
    t->state = (llmos_task_state_t)r->state;
    t->facts = r->facts;
    t->attempts = r->attempts;
    t->error_code = r->error_code;
    t->started_ms = r->started_ms;
    t->finished_ms = r->finished_ms;
    t->crashes = r->crashes;
    t->text_len = r->text_total && r->text_offset == 0 ? r->text_total : strlen(r->text);
    int bad = !(t->name = dupstr(r->name)) || !(t->text = dupstr(r->text)) || !(t->best = dupstr(r->best)) ||
              !(t->error = dupstr(r->error)) || !(t->finish_reason = dupstr(r->finish_reason));
    if (!bad && r->n_tokens) {
        if ((t->tokens = malloc(r->n_tokens * sizeof *t->tokens))) {
            memcpy(t->tokens, r->tokens, r->n_tokens * sizeof *t->tokens);
            t->n_tokens = r->n_tokens;
        } else {
            bad = 1;
        }
    }
    if (!bad && r->n_vector) {
        if ((t->vector = malloc(r->n_vector * sizeof *t->vector))) {
            memcpy(t->vector, r->vector, r->n_vector * sizeof *t->vector);
            t->n_vector = r->n_vector;
        } else {
            bad = 1;
        }
    }
    if (!bad && r->n_labels) {
        /* probs pair with labels; a reply with fewer probs leaves the rest 0 */
        t->labels = calloc(r->n_labels, sizeof *t->labels);
        t->probs = calloc(r->n_labels, sizeof *t->probs);
        if (!t->labels || !t->probs) bad = 1;
        for (size_t i = 0; !bad && i < r->n_labels; i++) {
            if (!(t->labels[i] = dupstr(r->labels[i]))) bad = 1;
            else t->n_labels++;
            if (i < r->n_probs) t->probs[i] = r->probs[i];
        }
    }
    if (bad) task_result_deinit(t);
    return bad ? LLMOS_CLIENT_ENOMEM : 0;
}

void llmos_job_status_free(llmos_job_status_t **sp) {
    if (!sp || !*sp) return;
    llmos_job_status_t *s = *sp;
    for (size_t i = 0; i < s->n_tasks; i++) task_result_deinit(&s->tasks[i]);
    free(s->tasks);
    for (size_t i = 0; i < s->n_labels; i++) {
        free(s->label_keys[i]);
        free(s->label_values[i]);
    }
    free(s->label_keys);
    free(s->label_values);
    free(s->id);
    free(s->tenant);
    free(s->error);
    free(s);
    *sp = NULL;
}

static llmos_job_status_t *status_copy(const Llmos__JobStatus *m) {
    llmos_job_status_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->state = (llmos_job_state_t)m->state;
    s->priority = m->priority;
    s->submitted_ms = m->submitted_ms;
    s->started_ms = m->started_ms;
    s->finished_ms = m->finished_ms;
    int bad = !(s->id = dupstr(m->id)) || !(s->tenant = dupstr(m->tenant)) || !(s->error = dupstr(m->error));
    if (!bad && m->n_tasks) {
        if (!(s->tasks = calloc(m->n_tasks, sizeof *s->tasks))) bad = 1;
        for (size_t i = 0; !bad && i < m->n_tasks; i++) {
            if (task_result_copy(&s->tasks[i], m->tasks[i])) bad = 1;
            else s->n_tasks++;
        }
    }
    if (!bad && m->n_labels) {
        s->label_keys = calloc(m->n_labels, sizeof *s->label_keys);
        s->label_values = calloc(m->n_labels, sizeof *s->label_values);
        if (!s->label_keys || !s->label_values) bad = 1;
        for (size_t i = 0; !bad && i < m->n_labels; i++) {
            s->label_keys[i] = dupstr(m->labels[i]->key);
            s->label_values[i] = dupstr(m->labels[i]->value);
            s->n_labels++;
            if (!s->label_keys[i] || !s->label_values[i]) bad = 1;
        }
    }
    if (bad) llmos_job_status_free(&s);
    return s;
}

#define PART_TIMEOUT_MS 60000u

/* A node sends task texts longer than its reply budget in parts: the
 * status carries the first part, and t->text_len the whole length.  Asks
 * for the rest of t's text, part by part (JobRef.task/offset), and appends
 * it. */
static int fetch_rest(llmos_client_t *c, const char *id, llmos_task_result_t *t, llmos_client_error_t *err) {
    size_t have = strlen(t->text);
    uint64_t total = t->text_len;
    if (have >= total) return 0;
    if (total > SIZE_MAX - 1) return client_err(err, LLMOS_CLIENT_ENOMEM, "task '%s': a %llu-byte text", t->name,
                                                (unsigned long long)total);
    char *text = realloc(t->text, (size_t)total + 1);
    if (!text) return client_err(err, LLMOS_CLIENT_ENOMEM, "task '%s': no memory for its %llu-byte text", t->name,
                                 (unsigned long long)total);
    t->text = text;
    while (have < total) {
        Llmos__JobRef ref = LLMOS__JOB_REF__INIT;
        ref.id = (char *)id;
        ref.task = t->name;
        ref.offset = have;
        uint8_t buf[512];
        size_t len = llmos__job_ref__get_packed_size(&ref);
        if (len > sizeof buf) return client_err(err, LLMOS_CLIENT_EINVAL, "task '%s': name too long", t->name);
        llmos__job_ref__pack(&ref, buf);
        llmos_client_reply_t *r = NULL;
        int rc = llmos_client_call(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, buf, len, PART_TIMEOUT_MS, &r, err);
        if (rc) {
            llmos_client_reply_free(&r);
            return rc;
        }
        Llmos__JobStatus *m = llmos__job_status__unpack(NULL, r->len, r->data);
        size_t n = m && m->n_tasks == 1 ? strlen(m->tasks[0]->text) : 0;
        if (!m || m->n_tasks != 1 || m->tasks[0]->text_offset != have || n == 0 || n > total - have) {
            if (m) llmos__job_status__free_unpacked(m, NULL);
            llmos_client_reply_free(&r);
            return client_err(err, LLMOS_CLIENT_EFORMAT,
                              "task '%s': the part of its text from byte %zu does not fit the %llu bytes announced",
                              t->name, have, (unsigned long long)total);
        }
        memcpy(text + have, m->tasks[0]->text, n);
        have += n;
        text[have] = 0;
        llmos__job_status__free_unpacked(m, NULL);
        llmos_client_reply_free(&r);
    }
    return 0;
}

/* Fetches every text of s the node sent in parts. */
static int complete_texts(llmos_client_t *c, llmos_job_status_t *s, llmos_client_error_t *err) {
    for (size_t i = 0; i < s->n_tasks; i++) {
        int rc = fetch_rest(c, s->id, &s->tasks[i], err);
        if (rc) return rc;
    }
    return 0;
}

/* Decodes a JobStatus payload into *out, fetching texts sent in parts
 * when c is given (else the caller does, with complete_texts). */
static int decode_status(llmos_client_t *c, const uint8_t *data, size_t len, const char *what,
                         llmos_job_status_t **out, llmos_client_error_t *err) {
    Llmos__JobStatus *m = llmos__job_status__unpack(NULL, len, data);
    if (!m) return client_err(err, LLMOS_CLIENT_EFORMAT, "%s: the reply (%zu bytes) is not a JobStatus", what, len);
    *out = status_copy(m);
    llmos__job_status__free_unpacked(m, NULL);
    int rc = *out ? 0 : client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a job status");
    if (!rc && c) rc = complete_texts(c, *out, err);
    if (rc) llmos_job_status_free(out);
    return rc;
}

const llmos_task_result_t *llmos_job_status_task(const llmos_job_status_t *s, const char *name) {
    for (size_t i = 0; s && name && i < s->n_tasks; i++)
        if (strcmp(s->tasks[i].name, name) == 0) return &s->tasks[i];
    return NULL;
}

const char *llmos_job_status_text(const llmos_job_status_t *s) {
    return s && s->n_tasks ? s->tasks[s->n_tasks - 1].text : "";
}

/* ---- calls ---- */

static int check_call(llmos_client_t *c, const char *id, llmos_client_error_t *err) {
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "no client");
    return check_id(id, "job id", err);
}

int llmos_client_submit(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms, llmos_submit_result_t *out,
                        llmos_client_error_t *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!c || !job) return client_err(err, LLMOS_CLIENT_EINVAL, "no client or no job");
    uint8_t *buf;
    size_t len;
    int rc = jobs_pack_submit(job, 0, 0, 0, &buf, &len, err);
    if (rc) return rc;
    llmos_client_reply_t *r = NULL;
    rc = llmos_client_call(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, timeout_ms, &r, err);
    free(buf);
    if (rc == 0) {
        Llmos__SubmitResult *m = llmos__submit_result__unpack(NULL, r->len, r->data);
        if (!m) {
            rc = client_err(err, LLMOS_CLIENT_EFORMAT, "submit: the reply (%zu bytes) is not a SubmitResult", r->len);
        } else {
            if (out) {
                snprintf(out->id, sizeof out->id, "%s", m->id);
                out->existing = m->existing;
                out->state = (llmos_job_state_t)m->state;
                out->queue_position = m->queue_position;
            }
            llmos__submit_result__free_unpacked(m, NULL);
        }
    }
    llmos_client_reply_free(&r);
    return rc;
}

/* Finishes a call whose reply is a JobStatus; ETIMEDOUT answered by the
 * node still carries one. */
static int finish_status_call(llmos_client_t *c, int rc, llmos_client_reply_t **r, const char *what,
                              llmos_job_status_t **out, llmos_client_error_t *err) {
    if ((rc == 0 || rc == LLMOS_CLIENT_ETIMEDOUT) && *r && (*r)->len) {
        llmos_client_error_t derr;
        int drc = decode_status(c, (*r)->data, (*r)->len, what, out, &derr);
        if (drc && rc == 0) {
            rc = drc;
            if (err) *err = derr;
        }
    } else if (rc == 0 && *r) {
        rc = client_err(err, LLMOS_CLIENT_EFORMAT, "%s: an empty reply where a JobStatus was expected", what);
    }
    llmos_client_reply_free(r);
    return rc;
}

typedef struct stream_ctx {
    llmos_job_event_fn fn;
    void *user;
} stream_ctx_t;

static int on_stream_event(void *user, uint32_t type, const void *data, size_t len);

static int submit_and_wait(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms, stream_ctx_t *sc,
                           llmos_job_status_t **out, llmos_client_error_t *err) {
    *out = NULL;
    if (!c || !job) return client_err(err, LLMOS_CLIENT_EINVAL, "no client or no job");
    if (!timeout_ms) timeout_ms = WAIT_DEFAULT_MS;
    uint8_t *buf;
    size_t len;
    int rc = jobs_pack_submit(job, 1, sc != NULL, wait_node_ms(timeout_ms), &buf, &len, err);
    if (rc) return rc;
    llmos_client_reply_t *r = NULL;
    uint32_t call_ms = timeout_ms;
    rc = sc ? llmos_client_call_stream(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, call_ms,
                                       on_stream_event, sc, &r, err)
            : llmos_client_call(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, call_ms, &r, err);
    free(buf);
    return finish_status_call(c, rc, &r, "submit", out, err);
}

int llmos_client_submit_wait(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms,
                             llmos_job_status_t **out, llmos_client_error_t *err) {
    return submit_and_wait(c, job, timeout_ms, NULL, out, err);
}

int llmos_client_submit_stream(llmos_client_t *c, const llmos_job_t *job, uint32_t timeout_ms,
                               llmos_job_event_fn on_event, void *user, llmos_job_status_t **out,
                               llmos_client_error_t *err) {
    stream_ctx_t sc = {on_event, user};
    return submit_and_wait(c, job, timeout_ms, &sc, out, err);
}

/* Packs a JobRef / WaitRequest and asks; the reply is a JobStatus. */
static int ask_status(llmos_client_t *c, uint32_t type, const char *id, uint32_t wait_ms, int stream,
                      uint32_t timeout_ms, llmos_client_event_fn on_event, void *user, llmos_job_status_t **out,
                      llmos_client_error_t *err) {
    uint8_t stackbuf[256], *buf = stackbuf;
    size_t len;
    if (type == LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT) {
        Llmos__WaitRequest w = LLMOS__WAIT_REQUEST__INIT;
        w.id = (char *)id;
        w.timeout_ms = wait_ms;
        w.stream = stream;
        len = llmos__wait_request__get_packed_size(&w);
        llmos__wait_request__pack(&w, buf);
    } else {
        Llmos__JobRef ref = LLMOS__JOB_REF__INIT;
        ref.id = (char *)id;
        len = llmos__job_ref__get_packed_size(&ref);
        llmos__job_ref__pack(&ref, buf);
    }
    const char *what = type == LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT     ? "wait"
                       : type == LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL ? "cancel"
                                                                     : "status";
    llmos_client_reply_t *r = NULL;
    int rc = stream ? llmos_client_call_stream(c, GATEWAY, type, buf, len, timeout_ms, on_event, user, &r, err)
                    : llmos_client_call(c, GATEWAY, type, buf, len, timeout_ms, &r, err);
    return finish_status_call(c, rc, &r, what, out, err);
}

int llmos_client_wait(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_status_t **out,
                      llmos_client_error_t *err) {
    *out = NULL;
    int rc = check_call(c, id, err);
    if (rc) return rc;
    if (!timeout_ms) timeout_ms = WAIT_DEFAULT_MS;
    return ask_status(c, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, id, wait_node_ms(timeout_ms), 0, timeout_ms, NULL,
                      NULL, out, err);
}

/* Decodes a JobEvent and hands it on; undecodable or foreign events are skipped. */
static int on_stream_event(void *user, uint32_t type, const void *data, size_t len) {
    stream_ctx_t *sc = user;
    if (type != LLMOS__JOB_MSG_TYPE__JOB_MSG_EVENT || !sc->fn) return 0;
    Llmos__JobEvent *m = llmos__job_event__unpack(NULL, len, data);
    if (!m) return 0;
    llmos_job_event_t ev = {.job_id = m->id, .task = m->task};
    llmos_task_result_t res;
    int have_res = 0, stop = 0;
    if (m->chunk) {
        ev.chunk = m->chunk->text;
        ev.chunk_tokens = m->chunk->tokens;
        ev.n_chunk_tokens = m->chunk->n_tokens;
        ev.chunk_index = m->chunk->index;
    }
    if (m->result) {
        if (task_result_copy(&res, m->result) == 0) {
            have_res = 1;
            ev.result = &res;
        } else {
            stop = 1; /* out of memory: stop rather than drop a result silently */
        }
    }
    if (!stop && (ev.chunk || ev.result)) stop = sc->fn(&ev, sc->user);
    if (have_res) task_result_deinit(&res);
    llmos__job_event__free_unpacked(m, NULL);
    return stop;
}

int llmos_client_stream(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_event_fn on_event,
                        void *user, llmos_job_status_t **out, llmos_client_error_t *err) {
    *out = NULL;
    int rc = check_call(c, id, err);
    if (rc) return rc;
    if (!timeout_ms) timeout_ms = WAIT_DEFAULT_MS;
    stream_ctx_t sc = {on_event, user};
    return ask_status(c, LLMOS__JOB_MSG_TYPE__JOB_MSG_WAIT, id, wait_node_ms(timeout_ms), 1, timeout_ms,
                      on_stream_event, &sc, out, err);
}

int llmos_client_job_status(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_status_t **out,
                            llmos_client_error_t *err) {
    *out = NULL;
    int rc = check_call(c, id, err);
    if (rc) return rc;
    return ask_status(c, LLMOS__JOB_MSG_TYPE__JOB_MSG_STATUS, id, 0, 0, timeout_ms, NULL, NULL, out, err);
}

int llmos_client_cancel(llmos_client_t *c, const char *id, uint32_t timeout_ms, llmos_job_status_t **out,
                        llmos_client_error_t *err) {
    llmos_job_status_t *s = NULL;
    if (out) *out = NULL;
    int rc = check_call(c, id, err);
    if (rc) return rc;
    rc = ask_status(c, LLMOS__JOB_MSG_TYPE__JOB_MSG_CANCEL, id, 0, 0, timeout_ms, NULL, NULL, &s, err);
    if (out) *out = s;
    else llmos_job_status_free(&s);
    return rc;
}

/* ---- asynchronous submission ---- */

int llmos_client_submit_async(llmos_client_t *c, const llmos_job_t *job, llmos_async_kind_t kind,
                              uint32_t timeout_ms, void *user, uint64_t *token, llmos_client_error_t *err) {
    if (!c || !job || !token) return client_err(err, LLMOS_CLIENT_EINVAL, "no client, job or token");
    if (kind != LLMOS_ASYNC_SUBMIT && kind != LLMOS_ASYNC_SUBMIT_WAIT)
        return client_err(err, LLMOS_CLIENT_EINVAL, "kind %d is not LLMOS_ASYNC_SUBMIT or LLMOS_ASYNC_SUBMIT_WAIT",
                        (int)kind);
    int wait = kind == LLMOS_ASYNC_SUBMIT_WAIT;
    if (wait && !timeout_ms) timeout_ms = WAIT_DEFAULT_MS;
    uint8_t *buf;
    size_t len;
    int rc = jobs_pack_submit(job, wait, 0, wait ? wait_node_ms(timeout_ms) : 0, &buf, &len, err);
    if (rc) return rc;
    rc = client_async_send(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_SUBMIT, buf, len, timeout_ms, kind, user, token,
                           err);
    free(buf);
    return rc;
}

int llmos_client_call_async(llmos_client_t *c, const char *actor, uint32_t type, const void *data, size_t len,
                            uint32_t timeout_ms, void *user, uint64_t *token, llmos_client_error_t *err) {
    if (!token) return client_err(err, LLMOS_CLIENT_EINVAL, "no token");
    return client_async_send(c, actor, type, data, len, timeout_ms, LLMOS_ASYNC_CALL, user, token, err);
}

/* A reply's copy for a LLMOS_ASYNC_CALL result; NULL = no memory. */
static llmos_client_reply_t *reply_copy(const Llmos__Envelope *env) {
    llmos_client_reply_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->type = env->type;
    r->status = env->status;
    r->len = env->payload.len;
    int bad = r->len && !(r->data = malloc(r->len));
    if (r->data) memcpy(r->data, env->payload.data, r->len);
    if (!bad && env->status &&
        !(r->error = strdup(env->error && env->error[0] ? env->error : llmos_client_strerror(env->status))))
        bad = 1;
    if (bad) llmos_client_reply_free(&r);
    return r;
}

/* Decodes one finished request into results[i] (client_async_fn). */
static void on_async_done(void *ctx, size_t i, uint64_t token, void *user, int kind, const Llmos__Envelope *env) {
    llmos_async_result_t *r = &((llmos_async_result_t *)ctx)[i];
    memset(r, 0, sizeof *r);
    r->token = token;
    r->user = user;
    r->kind = (llmos_async_kind_t)kind;
    if (!env) {
        r->rc = client_err(&r->err, LLMOS_CLIENT_ETIMEDOUT, "no answer from the node within the request's timeout");
        return;
    }
    if (env->status)
        r->rc = client_err(&r->err, env->status, "%s: %s", kind == LLMOS_ASYNC_CALL ? "node" : GATEWAY,
                         env->error && env->error[0] ? env->error : llmos_client_strerror(env->status));
    if (kind == LLMOS_ASYNC_CALL) {
        if (!(r->reply = reply_copy(env))) r->rc = client_err(&r->err, LLMOS_CLIENT_ENOMEM, "no memory for a reply");
        return;
    }
    if (kind == LLMOS_ASYNC_SUBMIT) {
        if (r->rc) return;
        Llmos__SubmitResult *m = llmos__submit_result__unpack(NULL, env->payload.len, env->payload.data);
        if (!m) {
            r->rc = client_err(&r->err, LLMOS_CLIENT_EFORMAT, "submit: the reply (%zu bytes) is not a SubmitResult",
                             env->payload.len);
            return;
        }
        snprintf(r->submit.id, sizeof r->submit.id, "%s", m->id);
        r->submit.existing = m->existing;
        r->submit.state = (llmos_job_state_t)m->state;
        r->submit.queue_position = m->queue_position;
        llmos__submit_result__free_unpacked(m, NULL);
        return;
    }
    if ((r->rc == 0 || r->rc == LLMOS_CLIENT_ETIMEDOUT) && env->payload.len) {
        llmos_client_error_t derr;
        int drc = decode_status(NULL, env->payload.data, env->payload.len, "submit", &r->status, &derr);
        if (drc && r->rc == 0) {
            r->rc = drc;
            r->err = derr;
        }
    } else if (r->rc == 0) {
        r->rc = client_err(&r->err, LLMOS_CLIENT_EFORMAT, "submit: an empty reply where a JobStatus was expected");
    }
}

int llmos_client_poll(llmos_client_t *c, uint32_t timeout_ms, llmos_async_result_t *results, size_t max,
                      size_t *n, llmos_client_error_t *err) {
    if (n) *n = 0;
    if (!c || !results || !max || !n) return client_err(err, LLMOS_CLIENT_EINVAL, "no client, results or count");
    int rc = client_async_collect(c, timeout_ms, on_async_done, results, max, n, err);
    /* texts sent in parts are fetched here, outside the collection */
    for (size_t k = 0; !rc && k < *n; k++)
        if (results[k].status && results[k].rc == 0 && complete_texts(c, results[k].status, &results[k].err) != 0) {
            results[k].rc = results[k].err.code;
            llmos_job_status_free(&results[k].status);
        }
    return rc;
}

void llmos_async_results_free(llmos_async_result_t *results, size_t n) {
    for (size_t i = 0; results && i < n; i++) {
        llmos_job_status_free(&results[i].status);
        llmos_client_reply_free(&results[i].reply);
    }
}

uint32_t llmos_client_inflight(llmos_client_t *c) { return c ? client_async_inflight(c) : 0; }

void llmos_job_list_free(llmos_job_list_t **lp) {
    if (!lp || !*lp) return;
    llmos_job_list_t *l = *lp;
    for (size_t i = 0; i < l->n_jobs; i++) llmos_job_status_free(&l->jobs[i]);
    free(l->jobs);
    free(l->next);
    free(l);
    *lp = NULL;
}

int llmos_client_list(llmos_client_t *c, const llmos_job_list_opts_t *opts, uint32_t timeout_ms,
                      llmos_job_list_t **out, llmos_client_error_t *err) {
    *out = NULL;
    if (!c) return client_err(err, LLMOS_CLIENT_EINVAL, "no client");
    Llmos__ListRequest q = LLMOS__LIST_REQUEST__INIT;
    if (opts) {
        if (opts->tenant) q.tenant = (char *)opts->tenant;
        q.state = (Llmos__JobState)opts->state;
        q.limit = opts->limit;
        if (opts->after) q.after = (char *)opts->after;
    }
    size_t len = llmos__list_request__get_packed_size(&q);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a request");
    llmos__list_request__pack(&q, buf);
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_LIST, buf, len, timeout_ms, &r, err);
    free(buf);
    if (rc) {
        llmos_client_reply_free(&r);
        return rc;
    }
    Llmos__JobList *m = llmos__job_list__unpack(NULL, r->len, r->data);
    size_t rlen = r->len;
    llmos_client_reply_free(&r);
    if (!m) return client_err(err, LLMOS_CLIENT_EFORMAT, "list: the reply (%zu bytes) is not a JobList", rlen);
    llmos_job_list_t *l = calloc(1, sizeof *l);
    int bad = !l || !(l->next = dupstr(m->next));
    if (!bad && m->n_jobs && !(l->jobs = calloc(m->n_jobs, sizeof *l->jobs))) bad = 1;
    for (size_t i = 0; !bad && i < m->n_jobs; i++) {
        if (!(l->jobs[i] = status_copy(m->jobs[i]))) bad = 1;
        else l->n_jobs++;
    }
    llmos__job_list__free_unpacked(m, NULL);
    if (bad) {
        llmos_job_list_free(&l);
        return client_err(err, LLMOS_CLIENT_ENOMEM, "no memory for a job list");
    }
    *out = l;
    return 0;
}

int llmos_client_scheduler_stats(llmos_client_t *c, uint32_t timeout_ms, llmos_scheduler_stats_t *out,
                                 llmos_client_error_t *err) {
    memset(out, 0, sizeof *out);
    llmos_client_reply_t *r = NULL;
    int rc = llmos_client_call(c, GATEWAY, LLMOS__JOB_MSG_TYPE__JOB_MSG_SCHED_STATS, NULL, 0, timeout_ms, &r, err);
    if (rc == 0) {
        Llmos__SchedulerStats *m = llmos__scheduler_stats__unpack(NULL, r->len, r->data);
        if (!m) {
            rc = client_err(err, LLMOS_CLIENT_EFORMAT, "scheduler stats: the reply (%zu bytes) does not decode", r->len);
        } else {
            snprintf(out->policy, sizeof out->policy, "%s", m->policy);
            out->queued = m->queued;
            out->running = m->running;
            out->done = m->done;
            out->failed = m->failed;
            out->retried = m->retried;
            out->rejected_overloaded = m->rejected_overloaded;
            out->expired = m->expired;
            out->cancelled = m->cancelled;
            out->recovered = m->recovered;
            out->queue_limit = m->queue_limit;
            out->quarantined = m->quarantined;
            llmos__scheduler_stats__free_unpacked(m, NULL);
        }
    }
    llmos_client_reply_free(&r);
    return rc;
}
