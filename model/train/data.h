/*
 * data.h — labelled and unlabelled text for training and evaluation.
 *
 * Formats (chosen by the file name's extension):
 *   .csv    RFC 4180 through libcsv (quoted commas, quotes and line breaks
 *           inside fields); the first record names the columns.
 *   .jsonl  one JSON object per line (cJSON); blank lines are skipped.
 *   .txt    plain text, one example per non-empty line, no label.
 * Columns are named (text_col, label_col); label_col NULL means unlabelled.
 *
 * Labels: a train_labels_t maps names to class ids.  It is filled from a
 * file (a JSON array of names, e.g. categories.json), or from the data
 * (sorted unique names of the training file), and is then fixed: a name not
 * in it is an error naming file:line and the label.  An empty text is an
 * error naming file:line.
 *
 * Ownership: a dataset owns its texts (one arena); free with
 * train_dataset_deinit.  Not thread-safe while loading.
 */
#ifndef LLMOS_MODEL_TRAIN_DATA_H
#define LLMOS_MODEL_TRAIN_DATA_H

#include "model/model.h"
#include "runtime/base/err.h"

#include <stddef.h>

typedef struct train_labels {
    int n;
    char **name; /* [n], owned */
} train_labels_t;

typedef struct train_example {
    const char *text; /* NUL-terminated, in the dataset's arena */
    size_t len;
    int label; /* class id, -1 when unlabelled */
    int line;  /* 1-based line where the record starts */
} train_example_t;

typedef struct train_dataset {
    char path[1024];
    int n, cap;
    train_example_t *ex; /* [n] */
    char *arena;
    size_t arena_len, arena_cap;
} train_dataset_t;

/* Reads a JSON array of label names.  LLMOS_EFORMAT (not an array of
 * distinct non-empty strings), LLMOS_ENOTFOUND/EIO. */
int train_labels_load(train_labels_t *labels, const char *path, llmos_error_t *err);
/* Writes the label set as a JSON array (for checkpoints and eval). */
char *train_labels_to_json(const train_labels_t *labels);
int train_labels_from_json(train_labels_t *labels, const char *json, size_t len, llmos_error_t *err);
int train_labels_find(const train_labels_t *labels, const char *name);
/* dst (caller's, train_labels_deinit) becomes a copy of src.  LLMOS_ENOMEM
 * (dst left empty). */
int train_labels_copy(train_labels_t *dst, const train_labels_t *src);
void train_labels_deinit(train_labels_t *labels);

/* Loads path.  labels: if labels->n == 0 and label_col is set, the label
 * set is built from this file (sorted unique names); otherwise names must
 * be in it.  Errors name file:line: LLMOS_EFORMAT (broken CSV/JSON, missing
 * column), LLMOS_EINVAL (empty text, unknown label). */
int train_dataset_load(train_dataset_t *ds, const char *path, const char *text_col, const char *label_col,
                       train_labels_t *labels, llmos_error_t *err);
void train_dataset_deinit(train_dataset_t *ds);

/* Tokenized examples: ids[i*T .. i*T+len[i]) (BOS first, truncated to T,
 * padded with 0). */
typedef struct train_tokens {
    int n, T;
    int *ids;   /* [n*T] owned */
    int *len;   /* [n] */
    int *label; /* [n] */
} train_tokens_t;

int train_tokens_build(train_tokens_t *tk, const train_dataset_t *ds, const model_tokenizer_t *tok, int T,
                       llmos_error_t *err);
void train_tokens_deinit(train_tokens_t *tk);

#endif
