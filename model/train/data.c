/*
 * data.c — CSV (libcsv), JSONL (cJSON) and plain-text training data, label
 * sets, tokenization into fixed-width id rows.
 *
 * CSV is fed to libcsv one physical line at a time so every record knows the
 * line it started on (a quoted field may span several lines); texts and
 * label names go to one arena, referenced by offset until loading ends
 * (the arena may move while it grows).
 */
#include "model/train/data.h"

#include <cjson/cJSON.h>
#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- labels */

void train_labels_deinit(train_labels_t *l) {
    for (int i = 0; i < l->n; i++) free(l->name[i]);
    free(l->name);
    l->name = NULL;
    l->n = 0;
}

int train_labels_find(const train_labels_t *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0) return i;
    return -1;
}

int train_labels_copy(train_labels_t *dst, const train_labels_t *src) {
    memset(dst, 0, sizeof *dst);
    dst->name = calloc((size_t)(src->n ? src->n : 1), sizeof(char *));
    if (!dst->name) return LLMOS_ENOMEM;
    for (int i = 0; i < src->n; i++) {
        if (!(dst->name[i] = strdup(src->name[i]))) {
            train_labels_deinit(dst);
            return LLMOS_ENOMEM;
        }
        dst->n = i + 1;
    }
    return 0;
}

static int labels_add(train_labels_t *l, const char *name) {
    char **nn = realloc(l->name, sizeof(char *) * (size_t)(l->n + 1));
    if (!nn) return LLMOS_ENOMEM;
    l->name = nn;
    if (!(l->name[l->n] = strdup(name))) return LLMOS_ENOMEM;
    l->n++;
    return 0;
}

int train_labels_from_json(train_labels_t *l, const char *json, size_t len, llmos_error_t *err) {
    memset(l, 0, sizeof *l);
    cJSON *a = cJSON_ParseWithLength(json, len);
    if (!a || !cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return llmos_error_set(err, LLMOS_EFORMAT, "labels: not a JSON array of names");
    }
    int i = 0, rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it) || !it->valuestring[0]) {
            rc = llmos_error_set(err, LLMOS_EFORMAT, "labels: element %d is not a non-empty string", i);
            break;
        }
        if (train_labels_find(l, it->valuestring) >= 0) {
            rc = llmos_error_set(err, LLMOS_EFORMAT, "labels: '%s' appears twice (element %d)", it->valuestring, i);
            break;
        }
        if (labels_add(l, it->valuestring)) {
            rc = llmos_error_set(err, LLMOS_ENOMEM, "labels: no memory");
            break;
        }
        i++;
    }
    cJSON_Delete(a);
    if (!rc && l->n < 2) rc = llmos_error_set(err, LLMOS_EFORMAT, "labels: need at least 2 names, got %d", l->n);
    if (rc) train_labels_deinit(l);
    return rc;
}

static int read_file(const char *path, char **out, size_t *len, llmos_error_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return llmos_error_set(err, llmos_err_from_errno(errno), "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) return llmos_error_set(err, LLMOS_ENOMEM, "no memory to read %s", path);
    if (bad) {
        free(b);
        return llmos_error_set(err, LLMOS_EIO, "error reading %s", path);
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

int train_labels_load(train_labels_t *l, const char *path, llmos_error_t *err) {
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = train_labels_from_json(l, buf, len, err);
    if (rc) llmos_error_prefix(err, "%s: ", path);
    free(buf);
    return rc;
}

char *train_labels_to_json(const train_labels_t *l) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < l->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(l->name[i]));
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

/* ---------------------------------------------------------------- dataset */

typedef struct raw_ex {
    size_t text, label; /* arena offsets; label (size_t)-1 when none */
    size_t len;
    int line;
} raw_ex_t;

typedef struct loader {
    train_dataset_t *ds;
    raw_ex_t *raw;
    int cap;
    /* CSV state */
    int line, rec_line, field, header_done, text_idx, label_idx, n_cols;
    size_t cur_text, cur_label, cur_len;
    int have_text, have_label;
    const char *text_col, *label_col;
    int rc;
    llmos_error_t *err;
} loader_t;

static size_t arena_put(train_dataset_t *ds, const char *s, size_t n, int *ok) {
    if (ds->arena_len + n + 1 > ds->arena_cap) {
        size_t cap = ds->arena_cap ? ds->arena_cap : 1 << 16;
        while (cap < ds->arena_len + n + 1) cap *= 2;
        char *a = realloc(ds->arena, cap);
        if (!a) {
            *ok = 0;
            return 0;
        }
        ds->arena = a;
        ds->arena_cap = cap;
    }
    size_t off = ds->arena_len;
    memcpy(ds->arena + off, s, n);
    ds->arena[off + n] = 0;
    ds->arena_len += n + 1;
    return off;
}

static int add_example(loader_t *L, const char *text, size_t tlen, const char *label, size_t llen, int line) {
    train_dataset_t *ds = L->ds;
    /* Trim surrounding whitespace of the text: an all-blank text is empty. */
    while (tlen && (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n')) text++, tlen--;
    while (tlen && (text[tlen - 1] == ' ' || text[tlen - 1] == '\t' || text[tlen - 1] == '\r' || text[tlen - 1] == '\n'))
        tlen--;
    if (tlen == 0) return llmos_error_set(L->err, LLMOS_EINVAL, "%s:%d: empty text", ds->path, line);
    if (L->label_col && (!label || llen == 0))
        return llmos_error_set(L->err, LLMOS_EINVAL, "%s:%d: empty label (column '%s')", ds->path, line, L->label_col);
    if (ds->n == L->cap) {
        int cap = L->cap ? L->cap * 2 : 1024;
        raw_ex_t *r = realloc(L->raw, sizeof *r * (size_t)cap);
        if (!r) return llmos_error_set(L->err, LLMOS_ENOMEM, "no memory for examples");
        L->raw = r;
        L->cap = cap;
    }
    int ok = 1;
    raw_ex_t *e = &L->raw[ds->n];
    e->text = arena_put(ds, text, tlen, &ok);
    e->len = tlen;
    e->label = L->label_col ? arena_put(ds, label, llen, &ok) : (size_t)-1;
    e->line = line;
    if (!ok) return llmos_error_set(L->err, LLMOS_ENOMEM, "no memory for texts");
    ds->n++;
    return 0;
}

static void csv_field(void *s, size_t len, void *data) {
    loader_t *L = data;
    if (L->rc) return;
    if (L->field == 0 && L->rec_line == 0) L->rec_line = L->line;
    if (!L->header_done) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len < 255 ? len : 255), s ? (const char *)s : "");
        if (L->text_col && strcmp(name, L->text_col) == 0) L->text_idx = L->field;
        if (L->label_col && strcmp(name, L->label_col) == 0) L->label_idx = L->field;
    } else {
        int ok = 1;
        if (L->field == L->text_idx) {
            L->cur_text = arena_put(L->ds, s ? s : "", s ? len : 0, &ok);
            L->cur_len = s ? len : 0;
            L->have_text = 1;
        }
        if (L->field == L->label_idx) {
            L->cur_label = arena_put(L->ds, s ? s : "", s ? len : 0, &ok);
            L->have_label = 1;
        }
        if (!ok) L->rc = llmos_error_set(L->err, LLMOS_ENOMEM, "no memory for texts");
    }
    L->field++;
}

static void csv_record(int c, void *data) {
    (void)c;
    loader_t *L = data;
    if (L->rc) return;
    int line = L->rec_line ? L->rec_line : L->line;
    if (!L->header_done) {
        L->header_done = 1;
        L->n_cols = L->field;
        if (L->text_idx < 0)
            L->rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: no column '%s' in the header", L->ds->path, line,
                                    L->text_col);
        else if (L->label_col && L->label_idx < 0)
            L->rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: no column '%s' in the header", L->ds->path, line,
                                    L->label_col);
    } else if (L->field != L->n_cols) {
        L->rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: %d fields, the header has %d", L->ds->path, line,
                                L->field, L->n_cols);
    } else {
        /* Copy out of the arena first: add_example appends to it. */
        size_t tl = L->cur_len, ll = L->have_label ? strlen(L->ds->arena + L->cur_label) : 0;
        char *t = malloc(tl + 1), *lb = malloc(ll + 1);
        if (!t || !lb) {
            L->rc = llmos_error_set(L->err, LLMOS_ENOMEM, "no memory");
        } else {
            memcpy(t, L->ds->arena + L->cur_text, tl + 1);
            memcpy(lb, L->have_label ? L->ds->arena + L->cur_label : "", ll + 1);
            /* The field copies are dropped from the arena again. */
            size_t lo = L->cur_text;
            if (L->have_label && L->cur_label < lo) lo = L->cur_label;
            L->ds->arena_len = lo;
            L->rc = add_example(L, t, tl, L->have_label ? lb : NULL, ll, line);
        }
        free(t);
        free(lb);
    }
    L->field = 0;
    L->rec_line = 0;
    L->have_text = L->have_label = 0;
}

static int load_csv(loader_t *L, const char *buf, size_t len) {
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return llmos_error_set(L->err, LLMOS_ENOMEM, "csv: cannot initialise the parser");
    L->text_idx = L->label_idx = -1;
    size_t i = 0;
    L->line = 0;
    while (i < len && !L->rc) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
        L->line++;
        if (csv_parse(&p, buf + i, n, csv_field, csv_record, L) != n) {
            L->rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: CSV error: %s", L->ds->path, L->line,
                                    csv_strerror(csv_error(&p)));
            break;
        }
        i += n;
    }
    if (!L->rc && csv_fini(&p, csv_field, csv_record, L) != 0)
        L->rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: CSV error at end of file: %s (unterminated quote?)",
                                L->ds->path, L->line, csv_strerror(csv_error(&p)));
    csv_free(&p);
    if (!L->rc && !L->header_done) L->rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s: no header line", L->ds->path);
    return L->rc;
}

/* Calls fn for every line of buf that is not blank (1-based line numbers),
 * stopping at the first non-zero return. */
static int for_each_line(loader_t *L, const char *buf, size_t len,
                         int (*fn)(loader_t *L, const char *s, size_t n, int line)) {
    size_t i = 0;
    int line = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
        line++;
        size_t j = 0;
        while (j < n && (buf[i + j] == ' ' || buf[i + j] == '\t' || buf[i + j] == '\r')) j++;
        if (j < n) {
            int rc = fn(L, buf + i, n, line);
            if (rc) return rc;
        }
        i += n + 1;
    }
    return 0;
}

static int jsonl_line(loader_t *L, const char *s, size_t n, int line) {
    cJSON *o = cJSON_ParseWithLength(s, n);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: not a JSON object", L->ds->path, line);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, L->text_col);
    const cJSON *lb = L->label_col ? cJSON_GetObjectItemCaseSensitive(o, L->label_col) : NULL;
    char num[64];
    const char *ls = NULL;
    int rc = 0;
    if (!cJSON_IsString(t))
        rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: no string field '%s'", L->ds->path, line, L->text_col);
    else if (L->label_col) {
        if (cJSON_IsString(lb)) ls = lb->valuestring;
        else if (cJSON_IsNumber(lb)) snprintf(num, sizeof num, "%.17g", lb->valuedouble), ls = num;
        else rc = llmos_error_set(L->err, LLMOS_EFORMAT, "%s:%d: no field '%s'", L->ds->path, line, L->label_col);
    }
    if (!rc) rc = add_example(L, t->valuestring, strlen(t->valuestring), ls, ls ? strlen(ls) : 0, line);
    cJSON_Delete(o);
    return rc;
}

static int txt_line(loader_t *L, const char *s, size_t n, int line) { return add_example(L, s, n, NULL, 0, line); }

static int load_jsonl(loader_t *L, const char *buf, size_t len) { return for_each_line(L, buf, len, jsonl_line); }

static int load_txt(loader_t *L, const char *buf, size_t len) { return for_each_line(L, buf, len, txt_line); }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int train_dataset_load(train_dataset_t *ds, const char *path, const char *text_col, const char *label_col,
                       train_labels_t *labels, llmos_error_t *err) {
    memset(ds, 0, sizeof *ds);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    int kind = ends_with(path, ".csv") ? 1 : ends_with(path, ".jsonl") ? 2 : ends_with(path, ".txt") ? 3 : 0;
    if (!kind)
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "%s: unknown data format (expected .csv, .jsonl or .txt)", path);
    if (kind == 3) label_col = NULL;
    if (!text_col || !*text_col) text_col = "text";
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, err);
    if (rc) return rc;
    loader_t L = {.ds = ds, .text_col = text_col, .label_col = label_col, .err = err};
    rc = kind == 1 ? load_csv(&L, buf, len) : kind == 2 ? load_jsonl(&L, buf, len) : load_txt(&L, buf, len);
    free(buf);
    if (!rc && ds->n == 0) rc = llmos_error_set(err, LLMOS_EINVAL, "%s: no examples", path);
    if (!rc && label_col && labels->n == 0) {
        /* The label set of the data: sorted unique names. */
        char **names = malloc(sizeof(char *) * (size_t)ds->n);
        if (!names) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        for (int i = 0; !rc && i < ds->n; i++) names[i] = ds->arena + L.raw[i].label;
        if (!rc) qsort(names, (size_t)ds->n, sizeof(char *), cmp_str);
        for (int i = 0; !rc && i < ds->n; i++)
            if ((i == 0 || strcmp(names[i], names[i - 1]) != 0) && labels_add(labels, names[i]))
                rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
        free(names);
    }
    if (!rc) {
        ds->ex = malloc(sizeof(train_example_t) * (size_t)ds->n);
        if (!ds->ex) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory");
    }
    for (int i = 0; !rc && i < ds->n; i++) {
        train_example_t *e = &ds->ex[i];
        e->text = ds->arena + L.raw[i].text;
        e->len = L.raw[i].len;
        e->line = L.raw[i].line;
        e->label = -1;
        if (label_col) {
            const char *nm = ds->arena + L.raw[i].label;
            e->label = train_labels_find(labels, nm);
            if (e->label < 0)
                rc = llmos_error_set(err, LLMOS_EINVAL, "%s:%d: unknown label '%s' (not among the %d known labels)", path,
                                     e->line, nm, labels->n);
        }
    }
    free(L.raw);
    if (rc) train_dataset_deinit(ds);
    return rc;
}

void train_dataset_deinit(train_dataset_t *ds) {
    free(ds->ex);
    free(ds->arena);
    memset(ds, 0, sizeof *ds);
}

int train_tokens_build(train_tokens_t *tk, const train_dataset_t *ds, const model_tokenizer_t *tok, int T,
                       llmos_error_t *err) {
    memset(tk, 0, sizeof *tk);
    if (!tok) return llmos_error_set(err, LLMOS_EINVAL, "tokenize %s: the model has no tokenizer", ds->path);
    tk->n = ds->n;
    tk->T = T;
    tk->ids = calloc((size_t)ds->n * (size_t)T, sizeof(int));
    tk->len = calloc((size_t)ds->n, sizeof(int));
    tk->label = calloc((size_t)ds->n, sizeof(int));
    size_t maxlen = 0;
    for (int i = 0; i < ds->n; i++) maxlen = ds->ex[i].len > maxlen ? ds->ex[i].len : maxlen;
    int cap = (int)maxlen + 3;
    int *tmp = malloc(sizeof(int) * (size_t)cap);
    if (!tk->ids || !tk->len || !tk->label || !tmp) {
        free(tmp);
        train_tokens_deinit(tk);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory to tokenize %s", ds->path);
    }
    for (int i = 0; i < ds->n; i++) {
        int n = 0;
        int rc = model_tokenize(tok, ds->ex[i].text, ds->ex[i].len, 1, 0, tmp, cap, &n, err);
        if (rc) {
            llmos_error_prefix(err, "%s:%d: ", ds->path, ds->ex[i].line);
            free(tmp);
            train_tokens_deinit(tk);
            return rc;
        }
        if (n > T) n = T;
        memcpy(tk->ids + (size_t)i * T, tmp, sizeof(int) * (size_t)n);
        tk->len[i] = n;
        tk->label[i] = ds->ex[i].label;
    }
    free(tmp);
    return 0;
}

void train_tokens_deinit(train_tokens_t *tk) {
    free(tk->ids);
    free(tk->len);
    free(tk->label);
    memset(tk, 0, sizeof *tk);
}
