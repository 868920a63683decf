/*
 * paths.h — where the models and data sets are.
 *
 * A flag wins; else $LLMOS_MODELS / $LLMOS_DATA; else ../shared/models and
 * ../shared/data relative to the working directory, then relative to the
 * source tree llmos was built from, when they exist.  Thread-safe.
 */
#ifndef LLMOS_RUNTIME_BASE_PATHS_H
#define LLMOS_RUNTIME_BASE_PATHS_H

#include "runtime/base/err.h"

#include <stddef.h>

/* Writes the models folder into out.  flag may be NULL.  Returns 0, or
 * LLMOS_ENOTFOUND with a message naming what was tried. */
int llmos_models_dir(const char *flag, char *out, size_t n, llmos_error_t *err);
int llmos_data_dir(const char *flag, char *out, size_t n, llmos_error_t *err);
/* Joins dir and name into out ("dir/name"); LLMOS_ETOOBIG if it does not fit. */
int llmos_path_join(char *out, size_t n, const char *dir, const char *name);

#endif
