/*
 * paths.h — where the models and data sets are.
 *
 * A flag wins; else $LLMOS_MODELS / $LLMOS_DATA; else ../shared/models and
 * ../shared/data relative to the working directory, then relative to the
 * source tree llmos was built from, when they exist.  llmos_path_find
 * looks a name up there.  Thread-safe (getcwd, getenv, stat only).
 */
#ifndef LLMOS_RUNTIME_BASE_PATHS_H
#define LLMOS_RUNTIME_BASE_PATHS_H

#include "runtime/base/err.h"

#include <stddef.h>

/* Writes the models folder into out.  flag may be NULL.  Returns 0, or
 * LLMOS_ENOTFOUND with a message naming what was tried. */
int llmos_models_dir(const char *flag, char *out, size_t n, llmos_error_t *err);
int llmos_data_dir(const char *flag, char *out, size_t n, llmos_error_t *err);
/* Which folder llmos_path_find searches after the working directory. */
typedef enum llmos_path_kind { LLMOS_PATH_MODELS = 1, LLMOS_PATH_DATA = 2 } llmos_path_kind_t;

/* Finds a file or folder the way every llmos program does (llmosd --model,
 * `llmos model load`, llmos-generate, the training tools): name as given
 * when it exists (absolute, or relative to the working directory); else,
 * for a relative name, <folder>/name in the models folder (kind MODELS:
 * llmos_models_dir(NULL): $LLMOS_MODELS, else ../shared/models) or the
 * data folder (kind DATA).  Writes the path found into out (n bytes).
 * Errors: LLMOS_ENOTFOUND with a message naming every place looked in
 * ("model file 'x.bin' not found: not in the working directory /srv, not
 * in $LLMOS_MODELS=/m"), LLMOS_EINVAL (name NULL or empty), LLMOS_ETOOBIG
 * (the path does not fit out). */
int llmos_path_find(const char *name, llmos_path_kind_t kind, char *out, size_t n, llmos_error_t *err);

/* Joins dir and name into out ("dir/name"); LLMOS_ETOOBIG if it does not fit. */
int llmos_path_join(char *out, size_t n, const char *dir, const char *name);

#endif
