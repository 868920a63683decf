/*
 * jobs_json.c — the JSON form of jobs and results, shared by programs
 * (llmos_job_from_json, llmos_job_status_to_json) and the CLI (`llmos
 * submit`, `llmos batch run`), so there is one parser and one printer.
 *
 * Parsing is strict: unknown or repeated fields, wrong types,
 * out-of-range numbers and strings holding a NUL (\u0000, which C strings
 * would silently cut) are errors whose message names the field
 * ("tasks[1].max_tokens: ..."); syntax errors give the offset, line and
 * column and show the text on both sides of the error.
 * Validation of the job itself (names, dependencies, kinds) is
 * llmos_job_add_task's, so a job built in code and one read from JSON pass
 * the same checks.
 *
 * Layered on the public API only (include/llmos/client.h): it builds jobs
 * with llmos_job_new / llmos_job_add_task and reads results from their
 * public structs, and nothing in jobs.c or client.c calls back into it.
 * What is printed is always valid UTF-8 (runtime/base/utf8.h repairs a
 * node's bytes).
 */
#include "llmos/client.h"
#include "runtime/base/utf8.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fills *err (may be NULL) with code and the message; returns code. */
__attribute__((format(printf, 3, 4))) static int json_err(llmos_client_error_t *err, int code, const char *fmt,
                                                          ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- UTF-8 ---- */

/* A cJSON string of s, each invalid UTF-8 byte replaced by U+FFFD.  NULL =
 * no memory. */
static cJSON *json_string(const char *s) {
    char *fixed = llmos_utf8_repair(s, strlen(s), NULL);
    cJSON *j = fixed ? cJSON_CreateString(fixed) : NULL;
    free(fixed);
    return j;
}

/* Adds json_string(s) to obj under key; 1 ok, 0 no memory. */
static int add_string(cJSON *obj, const char *key, const char *s) {
    cJSON *j = json_string(s);
    if (!j || !cJSON_AddItemToObject(obj, key, j)) {
        cJSON_Delete(j);
        return 0;
    }
    return 1;
}

/* ---- reading ---- */

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact doubles */

static int field_err(llmos_client_error_t *err, const char *path, const char *key, const char *what) {
    return json_err(err, LLMOS_CLIENT_EINVAL, "%s%s: %s", path, key, what);
}

static int get_uint(const cJSON *v, const char *path, double max, uint64_t *out, llmos_client_error_t *err) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max || floor(v->valuedouble) != v->valuedouble) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer from 0 to %.0f", max);
        return field_err(err, path, v->string, what);
    }
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static int get_u32(const cJSON *v, const char *path, uint32_t *out, llmos_client_error_t *err) {
    uint64_t x = 0;
    int rc = get_uint(v, path, 4294967295.0, &x, err);
    if (rc == 0) *out = (uint32_t)x;
    return rc;
}

static int get_float(const cJSON *v, const char *path, float lo, float hi, float *out, llmos_client_error_t *err) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        char what[96];
        snprintf(what, sizeof what, "expected a number from %g to %g", lo, hi);
        return field_err(err, path, v->string, what);
    }
    *out = (float)v->valuedouble;
    return 0;
}

static int get_str(const cJSON *v, const char *path, const char **out, llmos_client_error_t *err) {
    if (!cJSON_IsString(v)) return field_err(err, path, v->string, "expected a string");
    *out = v->valuestring;
    return 0;
}

/* A string or an array of strings; *arr is a new array of borrowed pointers. */
static int get_strs(const cJSON *v, const char *path, int one_ok, const char ***arr, size_t *n,
                    llmos_client_error_t *err) {
    free(*arr);
    *arr = NULL;
    *n = 0;
    if (one_ok && cJSON_IsString(v)) {
        if (!(*arr = malloc(sizeof **arr))) return json_err(err, LLMOS_CLIENT_ENOMEM, "no memory");
        (*arr)[(*n)++] = v->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(v)) return field_err(err, path, v->string, "expected an array of strings");
    int count = cJSON_GetArraySize(v);
    if (count && !(*arr = calloc((size_t)count, sizeof **arr))) return json_err(err, LLMOS_CLIENT_ENOMEM, "no memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e)) {
            char what[64];
            snprintf(what, sizeof what, "element %zu is not a string", *n);
            return field_err(err, path, v->string, what);
        }
        (*arr)[(*n)++] = e->valuestring;
    }
    return 0;
}

/* A task under construction: the spec points into the cJSON tree and into
 * arrays owned here. */
typedef struct task_in {
    llmos_task_spec_t spec;
    const char **after, **input_from, **stop, **labels;
    const char *kind_name;
    int graph; /* generate with "graph": true */
} task_in_t;

static void task_in_free(task_in_t *t) {
    free(t->after);
    free(t->input_from);
    free(t->stop);
    free(t->labels);
}

/* Reads one task field into t; 1 = not a task field. */
static int task_field(task_in_t *t, const cJSON *v, const char *path, llmos_client_error_t *err) {
    const char *k = v->string;
    llmos_task_spec_t *s = &t->spec;
    uint64_t u = 0;
    int rc;
    if (strcmp(k, "name") == 0) return get_str(v, path, &s->name, err);
    if (strcmp(k, "kind") == 0) return get_str(v, path, &t->kind_name, err);
    if (strcmp(k, "text") == 0 || strcmp(k, "prompt") == 0 || strcmp(k, "query") == 0 || strcmp(k, "sparql") == 0) {
        if (s->text) return field_err(err, path, k, "the text is given twice (text, prompt, query, sparql)");
        return get_str(v, path, &s->text, err);
    }
    if (strcmp(k, "after") == 0) {
        rc = get_strs(v, path, 1, &t->after, &s->n_after, err);
        s->after = t->after;
        return rc;
    }
    if (strcmp(k, "input_from") == 0) {
        rc = get_strs(v, path, 1, &t->input_from, &s->n_input_from, err);
        s->input_from = t->input_from;
        return rc;
    }
    if (strcmp(k, "stop") == 0) {
        rc = get_strs(v, path, 1, &t->stop, &s->n_stop, err);
        s->stop = t->stop;
        return rc;
    }
    if (strcmp(k, "labels") == 0) {
        rc = get_strs(v, path, 0, &t->labels, &s->n_labels, err);
        s->labels = t->labels;
        return rc;
    }
    if (strcmp(k, "max_tokens") == 0) return get_u32(v, path, &s->max_tokens, err);
    if (strcmp(k, "top_k") == 0) return get_u32(v, path, &s->top_k, err);
    if (strcmp(k, "hops") == 0) {
        s->hops_set = 1;
        return get_u32(v, path, &s->hops, err);
    }
    if (strcmp(k, "max_facts") == 0) return get_u32(v, path, &s->max_facts, err);
    if (strcmp(k, "temperature") == 0) return get_float(v, path, 0, 100, &s->temperature, err);
    if (strcmp(k, "top_p") == 0) return get_float(v, path, 0, 1, &s->top_p, err);
    if (strcmp(k, "repetition_penalty") == 0) return get_float(v, path, 0, 100, &s->repetition_penalty, err);
    if (strcmp(k, "seed") == 0) {
        if ((rc = get_uint(v, path, MAX_SAFE_INT, &u, err)) == 0) s->seed = u;
        return rc;
    }
    if (strcmp(k, "format") == 0) return get_str(v, path, &s->format, err);
    if (strcmp(k, "target") == 0) return get_str(v, path, &s->target, err);
    if (strcmp(k, "graph") == 0) {
        if (!cJSON_IsBool(v)) return field_err(err, path, k, "expected true or false");
        t->graph = cJSON_IsTrue(v);
        return 0;
    }
    return 1;
}

/* Resolves the kind and adds the task (or, for a generate with graph: true,
 * a link task "facts" and the generate task fed by it). */
static int task_add(llmos_job_t *j, task_in_t *t, const char *path, llmos_client_error_t *err) {
    if (!t->kind_name) return field_err(err, path, "kind", "missing (echo, generate, classify, embed, graph_query, link)");
    t->spec.kind = llmos_task_kind_parse(t->kind_name);
    if (!t->spec.kind) {
        char what[160];
        snprintf(what, sizeof what, "'%.60s' is not a task kind (echo, generate, classify, embed, graph_query, link)",
                 t->kind_name);
        return field_err(err, path, "kind", what);
    }
    if (t->graph && t->spec.kind != LLMOS_TASK_GENERATE) return field_err(err, path, "graph", "only for generate");
    if (!t->graph && t->spec.kind != LLMOS_TASK_LINK && (t->spec.hops_set || t->spec.max_facts))
        return field_err(err, path, t->spec.hops_set ? "hops" : "max_facts", "only for link (or generate with graph)");
    size_t adds = t->graph ? 2 : 1;
    if (llmos_job_task_count(j) + adds > LLMOS_JOB_TASKS_MAX) {
        size_t plen = strlen(path);
        return json_err(err, LLMOS_CLIENT_EINVAL, "%.*s: a job holds at most %d tasks%s",
                          (int)(plen && path[plen - 1] == '.' ? plen - 1 : plen), plen ? path : "tasks",
                          LLMOS_JOB_TASKS_MAX, t->graph ? " (graph: true adds a link task \"facts\")" : "");
    }
    int rc;
    if (t->graph) {
        if (t->spec.n_input_from) return field_err(err, path, "input_from", "not with graph: true");
        if (!t->spec.text || !t->spec.text[0]) return field_err(err, path, "prompt", "graph: true needs a prompt");
        llmos_task_spec_t link = {.name = "facts", .kind = LLMOS_TASK_LINK, .text = t->spec.text,
                                  .after = t->spec.after, .n_after = t->spec.n_after,
                                  .hops = t->spec.hops, .hops_set = t->spec.hops_set,
                                  .max_facts = t->spec.max_facts};
        if ((rc = llmos_job_add_task(j, &link, err))) goto prefix;
        static const char *const from[] = {"facts"};
        llmos_task_spec_t gen = t->spec;
        gen.hops = gen.max_facts = 0;
        gen.hops_set = 0;
        gen.after = NULL;
        gen.n_after = 0;
        gen.input_from = from;
        gen.n_input_from = 1;
        if (!gen.name) gen.name = "generate";
        rc = llmos_job_add_task(j, &gen, err);
    } else {
        rc = llmos_job_add_task(j, &t->spec, err);
    }
prefix:
    if (rc == LLMOS_CLIENT_EINVAL && path[0] && err) {
        char msg[LLMOS_CLIENT_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s%s", path, err->msg);
        memcpy(err->msg, msg, sizeof msg);
    }
    return rc;
}

/* Fails on a member name seen before in the same object. */
static int check_dup(const cJSON *obj, const cJSON *v, const char *path, llmos_client_error_t *err) {
    for (const cJSON *p = obj->child; p && p != v; p = p->next)
        if (strcmp(p->string, v->string) == 0) return field_err(err, path, v->string, "given twice");
    return 0;
}

static int parse_task(llmos_job_t *j, const cJSON *obj, size_t index, llmos_client_error_t *err) {
    char path[40];
    snprintf(path, sizeof path, "tasks[%zu].", index);
    if (!cJSON_IsObject(obj)) return json_err(err, LLMOS_CLIENT_EINVAL, "tasks[%zu]: expected an object", index);
    task_in_t t = {0};
    int rc = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        if ((rc = check_dup(obj, v, path, err))) break;
        if ((rc = task_field(&t, v, path, err)) == 1) {
            rc = field_err(err, path, v->string, "unknown field");
            break;
        }
        if (rc) break;
    }
    if (rc == 0) rc = task_add(j, &t, path, err);
    task_in_free(&t);
    return rc;
}

/* The id as text: a string, or an integer printed as such. */
static int id_text(const cJSON *v, char *buf, size_t n, llmos_client_error_t *err) {
    if (cJSON_IsString(v)) {
        snprintf(buf, n, "%s", v->valuestring);
        if (strlen(v->valuestring) >= n)
            return json_err(err, LLMOS_CLIENT_EINVAL, "id: %zu bytes, over the %d-byte limit", strlen(v->valuestring),
                            LLMOS_JOB_ID_MAX);
        return 0;
    }
    if (cJSON_IsNumber(v) && floor(v->valuedouble) == v->valuedouble && fabs(v->valuedouble) <= MAX_SAFE_INT) {
        snprintf(buf, n, "%.0f", v->valuedouble);
        return 0;
    }
    return json_err(err, LLMOS_CLIENT_EINVAL, "id: expected a string or an integer");
}

/* Appends to buf (cap bytes, NUL-terminated) text[from..to) as it can be
 * shown on one line: newlines and tabs as \n and \t, other control
 * characters as '?'.  The text is valid UTF-8 and from/to fall on character
 * boundaries, so no character is cut. */
static void excerpt_put(char *buf, size_t cap, const char *text, size_t from, size_t to) {
    size_t w = strlen(buf);
    for (size_t i = from; i < to && w + 3 < cap; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || ch == '\t') {
            buf[w++] = '\\';
            buf[w++] = ch == '\n' ? 'n' : 't';
        } else {
            buf[w++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
    }
    buf[w] = 0;
}

static int is_blank(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

#define EXCERPT_BEFORE 24 /* bytes of text shown before a syntax error ... */
#define EXCERPT_AFTER 16  /* ... and after it */

/* Error message for a syntax error at byte `at` of text (valid UTF-8): the
 * offset, line and column (1-based, in characters), the text just before
 * and just after the error, and a hint for the commonest mistake: a comma
 * before '}' or ']' (cJSON may point just past that closer: the error is
 * then put on the closer itself). */
static int syntax_err(const char *text, size_t len, size_t at, llmos_client_error_t *err) {
    if (at > len) at = len;
    size_t p = at, q = at; /* the last non-blank before the error, the first at or after it */
    while (p > 0 && is_blank(text[p - 1]))
        p--;
    if (p > 0 && (text[p - 1] == '}' || text[p - 1] == ']')) {
        q = p - 1;
        for (p = q; p > 0 && is_blank(text[p - 1]);)
            p--;
    } else {
        while (q < len && is_blank(text[q]))
            q++;
    }
    int trailing_comma = p > 0 && text[p - 1] == ',' && q < len && (text[q] == '}' || text[q] == ']');
    if (trailing_comma) at = q;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    size_t from = at > EXCERPT_BEFORE ? at - EXCERPT_BEFORE : 0,
           to = at + EXCERPT_AFTER < len ? at + EXCERPT_AFTER : len;
    while (from < at && ((unsigned char)text[from] & 0xC0) == 0x80)
        from++; /* whole characters only */
    while (to > at && to < len && ((unsigned char)text[to] & 0xC0) == 0x80)
        to--;
    char before[4 * EXCERPT_BEFORE + 8] = "", after[4 * EXCERPT_AFTER + 8] = "";
    if (from > 0) strcpy(before, "...");
    excerpt_put(before, sizeof before, text, from, at);
    excerpt_put(after, sizeof after, text, at, to);
    if (to < len) strcat(after, "...");
    char where[48] = "at the end of the text";
    if (at < len) snprintf(where, sizeof where, "at offset %zu", at);
    char hint[64] = "";
    if (trailing_comma) snprintf(hint, sizeof hint, " (JSON allows no comma before '%c')", text[q]);
    return json_err(err, LLMOS_CLIENT_EFORMAT,
                      "not valid JSON %s (line %zu, column %zu), after '%s' and before '%s'%s", where, line,
                      col, before, after, hint);
}

/* Where cJSON's parse of json[0..len) failed, given its error pointer end.
 * cJSON puts an error past the end of the text on the last byte, so a text
 * that ends early would be blamed on its last character: parsed again with
 * a blank appended, such a text fails on the blank, a real error on the
 * last byte stays there. */
static size_t error_offset(const char *json, size_t len, const char *end) {
    size_t at = end && end >= json ? (size_t)(end - json) : 0;
    if (len == 0 || at != len - 1) return at;
    char *more = malloc(len + 1);
    if (!more) return at;
    memcpy(more, json, len);
    more[len] = ' ';
    const char *end2 = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(more, len + 1, &end2, 0);
    if (!root && end2 == more + len) at = len; /* it ran off the end */
    cJSON_Delete(root);
    free(more);
    return at;
}

/* The index, counting every string literal of the (valid) JSON text in
 * order — member names included — of the first one holding an escaped NUL
 * (\u0000), or -1.  cJSON decodes such a string into a C string that ends
 * at the NUL, so "a\u0000b" would silently become "a". */
static long nul_string_index(const char *s, size_t len) {
    long idx = -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"') continue;
        idx++;
        int nul = 0;
        for (i++; i < len && s[i] != '"'; i++) {
            if (s[i] != '\\') continue;
            if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) nul = 1;
            i++; /* the escaped character: '\"' does not end the string */
        }
        if (nul) return idx;
    }
    return -1;
}

/* Walks v's strings in document order (a member's name, then its value),
 * counting *k down; returns the item whose value (or, *is_name, whose
 * member name) has index 0, and writes where it is to path
 * ("tasks[1].text", "labels: the name 'ab'"). */
static const cJSON *string_path(const cJSON *v, const char *prefix, long *k, char *path, size_t cap,
                                int *is_name) {
    if (cJSON_IsString(v)) {
        if ((*k)-- != 0) return NULL;
        snprintf(path, cap, "%s", prefix[0] ? prefix : "the JSON text");
        return v;
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return NULL;
    size_t i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char sub[256];
        if (cJSON_IsObject(v)) {
            if ((*k)-- == 0) {
                snprintf(path, cap, "%s%sthe name '%.40s'", prefix, prefix[0] ? ": " : "", c->string);
                *is_name = 1;
                return c;
            }
            snprintf(sub, sizeof sub, "%s%s%.60s", prefix, prefix[0] ? "." : "", c->string);
        } else {
            snprintf(sub, sizeof sub, "%s[%zu]", prefix, i);
        }
        const cJSON *hit = string_path(c, sub, k, path, cap, is_name);
        if (hit) return hit;
    }
    return NULL;
}

/* The string of root (parsed from json[0..len)) that holds an escaped NUL,
 * or NULL; path (cap bytes) gets where it is ("tasks[1].text"); *is_name
 * (may be NULL) is 1 when it is a member's name rather than a value. */
static const cJSON *find_nul(const char *json, size_t len, const cJSON *root, char *path, size_t cap,
                             int *is_name) {
    int name = 0;
    long k = nul_string_index(json, len);
    const cJSON *hit = k >= 0 ? string_path(root, "", &k, path, cap, &name) : NULL;
    if (is_name) *is_name = name;
    return hit;
}

int llmos_job_from_json(const char *json, size_t len, const char *default_id, llmos_job_t **out,
                        llmos_client_error_t *err) {
    *out = NULL;
    if (!json) return json_err(err, LLMOS_CLIENT_EINVAL, "no JSON text");
    const char *nul = memchr(json, 0, len);
    if (nul) return json_err(err, LLMOS_CLIENT_EFORMAT, "not valid JSON: a NUL byte at offset %zu", (size_t)(nul - json));
    size_t bad = llmos_utf8_check(json, len);
    if (bad < len) return json_err(err, LLMOS_CLIENT_EFORMAT, "not valid UTF-8 at offset %zu", bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) return syntax_err(json, len, error_offset(json, len, end), err);
    if (end) /* anything after the value must be blank */
        for (const char *p = end; p < json + len && *p; p++)
            if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                cJSON_Delete(root);
                return syntax_err(json, len, (size_t)(p - json), err);
            }
    char where[320];
    if (find_nul(json, len, root, where, sizeof where, NULL)) {
        cJSON_Delete(root);
        return json_err(err, LLMOS_CLIENT_EINVAL,
                          "%s: contains a NUL character (\\u0000); ids, names and texts "
                          "cannot hold one",
                          where);
    }
    int rc = 0;
    llmos_job_t *j = NULL;
    task_in_t inl = {0}; /* the short form's one task */
    int short_form = 0;
    if (!cJSON_IsObject(root)) {
        rc = json_err(err, LLMOS_CLIENT_EINVAL, "a job is a JSON object");
        goto done;
    }
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(root, "tasks");
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(root, "id");
    char id[LLMOS_JOB_ID_MAX + 1];
    if (idv) {
        if ((rc = id_text(idv, id, sizeof id, err))) goto done;
    } else if (default_id) {
        snprintf(id, sizeof id, "%s", default_id);
    } else {
        rc = json_err(err, LLMOS_CLIENT_EINVAL, "id: missing");
        goto done;
    }
    if ((rc = llmos_job_new(id, &j, err))) goto done;
    short_form = tasks == NULL;
    const cJSON *v;
    cJSON_ArrayForEach(v, root) {
        const char *k = v->string;
        if ((rc = check_dup(root, v, "", err))) goto done;
        if (strcmp(k, "id") == 0 || strcmp(k, "tasks") == 0) continue;
        if (strcmp(k, "tenant") == 0) {
            const char *s = NULL;
            if ((rc = get_str(v, "", &s, err)) || (rc = llmos_job_set_tenant(j, s, err))) goto done;
        } else if (strcmp(k, "priority") == 0) {
            if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble || fabs(v->valuedouble) > 2147483647.0) {
                rc = field_err(err, "", k, "expected an integer from -2147483647 to 2147483647");
                goto done;
            }
            llmos_job_set_priority(j, (int32_t)v->valuedouble);
        } else if (strcmp(k, "deadline_ms") == 0) {
            uint64_t u = 0;
            if ((rc = get_uint(v, "", MAX_SAFE_INT, &u, err))) goto done;
            llmos_job_set_deadline(j, u);
        } else if (strcmp(k, "max_retries") == 0) {
            uint32_t u = 0;
            if ((rc = get_u32(v, "", &u, err))) goto done;
            llmos_job_set_max_retries(j, u);
        } else if (strcmp(k, "labels") == 0 && cJSON_IsObject(v)) {
            const cJSON *l;
            cJSON_ArrayForEach(l, v) {
                if (!cJSON_IsString(l)) {
                    rc = json_err(err, LLMOS_CLIENT_EINVAL, "labels.%s: expected a string", l->string);
                    goto done;
                }
                if ((rc = llmos_job_set_label(j, l->string, l->valuestring, err))) goto done;
            }
        } else if (!short_form || (rc = task_field(&inl, v, "", err)) == 1) {
            rc = field_err(err, "", k, short_form ? "unknown field" : "unknown field (task fields go in \"tasks\")");
            goto done;
        } else if (rc) {
            goto done;
        }
    }
    if (short_form) {
        if ((rc = task_add(j, &inl, "", err))) goto done;
    } else {
        if (!cJSON_IsArray(tasks) || cJSON_GetArraySize(tasks) == 0) {
            rc = json_err(err, LLMOS_CLIENT_EINVAL, "tasks: expected a non-empty array of task objects");
            goto done;
        }
        size_t i = 0;
        cJSON_ArrayForEach(v, tasks) {
            if ((rc = parse_task(j, v, i++, err))) goto done;
        }
    }
done:
    task_in_free(&inl);
    cJSON_Delete(root);
    if (rc) llmos_job_destroy(&j);
    *out = j;
    return rc;
}

/* ---- writing ---- */

/* Floats printed as short decimals (6 significant digits), not as the
 * 17-digit doubles they widen to. */
static double short_float(float f) {
    if (!isfinite(f)) return 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", (double)f);
    return strtod(buf, NULL);
}

static cJSON *float_array(const float *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber(short_float(v[i]));
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* Adds one task's result to o as members (see llmos_task_result_to_json).
 * 0 or ENOMEM. */
static int result_add(cJSON *o, const llmos_task_result_t *t) {
    int ok = add_string(o, "task", t->name) && cJSON_AddStringToObject(o, "kind", llmos_task_kind_name(t->kind)) &&
             cJSON_AddStringToObject(o, "state", llmos_task_state_name(t->state));
    if (ok && (t->kind != LLMOS_TASK_EMBED && t->kind != LLMOS_TASK_CLASSIFY)) ok = add_string(o, "text", t->text);
    if (ok && t->kind == LLMOS_TASK_GENERATE) {
        ok = cJSON_AddNumberToObject(o, "tokens", (double)t->n_tokens) &&
             add_string(o, "finish_reason", t->finish_reason);
    }
    if (ok && t->kind == LLMOS_TASK_CLASSIFY) {
        cJSON *labels = cJSON_CreateArray();
        for (size_t i = 0; labels && i < t->n_labels; i++) {
            cJSON *x = json_string(t->labels[i]);
            if (!x || !cJSON_AddItemToArray(labels, x)) {
                cJSON_Delete(x);
                cJSON_Delete(labels);
                labels = NULL;
            }
        }
        ok = labels && cJSON_AddItemToObject(o, "labels", labels);
        if (!ok) cJSON_Delete(labels);
        cJSON *probs = ok ? float_array(t->probs, t->n_labels) : NULL;
        ok = probs && cJSON_AddItemToObject(o, "probs", probs);
        if (!ok) cJSON_Delete(probs);
        if (ok) ok = add_string(o, "best", t->best);
    }
    if (ok && t->kind == LLMOS_TASK_EMBED) {
        cJSON *vec = float_array(t->vector, t->n_vector);
        ok = vec && cJSON_AddItemToObject(o, "vector", vec);
        if (!ok) cJSON_Delete(vec);
    }
    if (ok && t->kind == LLMOS_TASK_LINK) ok = cJSON_AddNumberToObject(o, "facts", (double)t->facts) != NULL;
    if (ok) ok = cJSON_AddNumberToObject(o, "attempts", t->attempts) && cJSON_AddNumberToObject(o, "started_ms", (double)t->started_ms) &&
                 cJSON_AddNumberToObject(o, "finished_ms", (double)t->finished_ms);
    if (ok && (t->error_code || t->error[0])) {
        ok = add_string(o, "error", t->error[0] ? t->error : llmos_client_strerror(t->error_code)) &&
             cJSON_AddStringToObject(o, "error_code", llmos_client_strerror(t->error_code));
    }
    return ok ? 0 : LLMOS_CLIENT_ENOMEM;
}

/* The whole status as a new cJSON object; NULL = no memory. */
static cJSON *status_json(const llmos_job_status_t *s) {
    cJSON *o = cJSON_CreateObject(), *tasks = NULL, *labels = NULL;
    int ok = o && add_string(o, "id", s->id) && cJSON_AddStringToObject(o, "state", llmos_job_state_name(s->state)) &&
             add_string(o, "tenant", s->tenant) && cJSON_AddNumberToObject(o, "priority", s->priority) &&
             cJSON_AddNumberToObject(o, "submitted_ms", (double)s->submitted_ms) &&
             cJSON_AddNumberToObject(o, "started_ms", (double)s->started_ms) &&
             cJSON_AddNumberToObject(o, "finished_ms", (double)s->finished_ms);
    if (ok && s->error[0]) ok = add_string(o, "error", s->error);
    if (ok && s->n_labels) {
        ok = (labels = cJSON_AddObjectToObject(o, "labels")) != NULL;
        for (size_t i = 0; ok && i < s->n_labels; i++)
            ok = add_string(labels, s->label_keys[i], s->label_values[i]);
    }
    if (ok) ok = (tasks = cJSON_AddArrayToObject(o, "tasks")) != NULL;
    for (size_t i = 0; ok && i < s->n_tasks; i++) {
        cJSON *t = cJSON_CreateObject();
        ok = t && result_add(t, &s->tasks[i]) == 0 && cJSON_AddItemToArray(tasks, t);
        if (!ok) cJSON_Delete(t);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int llmos_job_status_to_json(const llmos_job_status_t *s, char **out, llmos_client_error_t *err) {
    *out = NULL;
    if (!s) return json_err(err, LLMOS_CLIENT_EINVAL, "no status");
    cJSON *o = status_json(s);
    if (o) *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? 0 : json_err(err, LLMOS_CLIENT_ENOMEM, "no memory for the status JSON");
}

int llmos_task_result_to_json(const llmos_task_result_t *t, char **out, llmos_client_error_t *err) {
    if (!out) return json_err(err, LLMOS_CLIENT_EINVAL, "no place for the result JSON");
    *out = NULL;
    if (!t) return json_err(err, LLMOS_CLIENT_EINVAL, "no task result");
    cJSON *o = cJSON_CreateObject();
    if (o && result_add(o, t) == 0) *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? 0 : json_err(err, LLMOS_CLIENT_ENOMEM, "no memory for the task result JSON");
}

int llmos_job_json_id(const char *json, size_t len, char *out, size_t cap, int *is_number,
                      llmos_client_error_t *err) {
    if (is_number) *is_number = 0;
    if (!json || !out || cap < LLMOS_JOB_ID_MAX + 1)
        return json_err(err, LLMOS_CLIENT_EINVAL, "no JSON text, or no room for an id (%zu bytes, %d needed)", cap,
                        LLMOS_JOB_ID_MAX + 1);
    out[0] = 0;
    cJSON *root = cJSON_ParseWithLength(json, len);
    char where[320];
    int rc = 0;
    if (!root || !cJSON_IsObject(root)) {
        rc = json_err(err, LLMOS_CLIENT_EFORMAT, "not a JSON object");
    } else if (find_nul(json, len, root, where, sizeof where, NULL)) { /* "a\u0000b" must not pass for "a" */
        rc = json_err(err, LLMOS_CLIENT_EFORMAT, "%s: contains a NUL character (\\u0000)", where);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "id");
        if (!v) {
            rc = json_err(err, LLMOS_CLIENT_ENOTFOUND, "id: missing");
        } else if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= LLMOS_JOB_ID_MAX) {
            snprintf(out, cap, "%s", v->valuestring);
        } else if (cJSON_IsNumber(v) && floor(v->valuedouble) == v->valuedouble &&
                   fabs(v->valuedouble) <= MAX_SAFE_INT) {
            snprintf(out, cap, "%.0f", v->valuedouble);
            if (is_number) *is_number = 1;
        } else {
            rc = json_err(err, LLMOS_CLIENT_EINVAL, "id: expected a string of 1 to %d bytes or an integer",
                          LLMOS_JOB_ID_MAX);
        }
    }
    cJSON_Delete(root);
    return rc;
}
