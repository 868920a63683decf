/*
 * tmpdir.h — a fresh temporary folder and its recursive removal, for tests,
 * benchmarks and tools that need scratch space on disk.
 *
 * llmos_tmpdir_make creates <$TMPDIR or /tmp>/<prefix>-XXXXXX with mkdtemp
 * (mode 0700, a name no other process has); llmos_tmpdir_remove deletes a
 * folder and everything below it without following symbolic links (a link
 * is removed, never what it points to), so a test can clean up whatever it
 * wrote.  Both are thread-safe (nftw with FTW_PHYS, no chdir).
 */
#ifndef LLMOS_RUNTIME_BASE_TMPDIR_H
#define LLMOS_RUNTIME_BASE_TMPDIR_H

#include "runtime/base/err.h"

#include <stddef.h>

/* Writes the new folder's path into out (n bytes).  prefix: letters,
 * digits, '-', '_' and '.' only, 1 to 64 bytes.  Errors: LLMOS_EINVAL (bad
 * prefix), LLMOS_ETOOBIG (the path does not fit out), LLMOS_EIO or an
 * errno translation (mkdtemp failed: the message names the folder). */
int llmos_tmpdir_make(const char *prefix, char *out, size_t n, llmos_error_t *err);

/* Removes path and everything below it.  A path that does not exist is not
 * an error (0).  Errors: LLMOS_EINVAL (path NULL, empty or "/"), else the
 * errno translation of the first entry that could not be removed, named in
 * the message (removal goes on with the rest). */
int llmos_tmpdir_remove(const char *path, llmos_error_t *err);

#endif
