/* Unit tests of runtime/base: error codes and messages, log levels, burst
 * limiting, progress output and path resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runtime/base/clock.h"
#include "runtime/base/err.h"
#include "runtime/base/log.h"
#include "runtime/base/paths.h"
#include "runtime/base/progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_error_set_and_prefix(void **state) {
    (void)state;
    llmos_error_t e;
    llmos_error_clear(&e);
    assert_int_equal(e.code, 0);
    int rc = llmos_error_set(&e, LLMOS_EFORMAT, "line %d: bad field '%s'", 12, "x");
    assert_int_equal(rc, LLMOS_EFORMAT);
    assert_string_equal(e.msg, "line 12: bad field 'x'");
    llmos_error_prefix(&e, "%s: ", "in.nt");
    assert_string_equal(e.msg, "in.nt: line 12: bad field 'x'");
    assert_int_equal(llmos_error_set(NULL, LLMOS_EIO, "ignored"), LLMOS_EIO);
}

static void test_error_names(void **state) {
    (void)state;
    for (int c = 0; c >= LLMOS_ERR_MIN_; c--) {
        assert_non_null(llmos_strerror(c));
        assert_string_not_equal(llmos_errname(c), "EUNKNOWN");
    }
    assert_string_equal(llmos_errname(LLMOS_EOVERLOADED), "EOVERLOADED");
    assert_string_equal(llmos_errname(-999), "EUNKNOWN");
    assert_string_equal(llmos_errname(5), "EUNKNOWN");
    assert_int_equal(llmos_err_from_errno(ENOENT), LLMOS_ENOTFOUND);
    assert_true(llmos_err_is_retryable(LLMOS_EOVERLOADED));
    assert_false(llmos_err_is_retryable(LLMOS_EINVAL));
}

static void test_log_levels(void **state) {
    (void)state;
    llmos_log_level l;
    assert_int_equal(llmos_log_parse_level("DEBUG", &l), 0);
    assert_int_equal(l, LLMOS_LOG_DEBUG);
    assert_int_equal(llmos_log_parse_level("loud", &l), LLMOS_EINVAL);
    llmos_log_set_level(LLMOS_LOG_WARN);
    assert_int_equal(llmos_log_get_level(), LLMOS_LOG_WARN);
    llmos_log_set_level(LLMOS_LOG_INFO);
}

/* Captures stderr into a file while fn runs; returns the text (caller frees). */
static char *capture_stderr(void (*fn)(void *), void *arg) {
    char path[] = "/tmp/llmos-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    pread(fd, buf, (size_t)n, 0);
    close(fd);
    unlink(path);
    return buf;
}

static void log_three_bursty(void *arg) {
    (void)arg;
    llmos_log_set_node("n7");
    llmos_log_set_actor("graph");
    llmos_log_burst_t b = {.quiet_ms = 50};
    for (int i = 0; i < 3; i++) llmos_log_burst(&b, LLMOS_LOG_WARN, "bad frame %d", i);
    llmos_sleep_ms(80);
    llmos_log_burst(&b, LLMOS_LOG_WARN, "bad frame %d", 3);
    llmos_log_set_actor(NULL);
    llmos_log_set_node(NULL);
}

static void test_log_burst_and_labels(void **state) {
    (void)state;
    char *out = capture_stderr(log_three_bursty, NULL);
    assert_non_null(strstr(out, "node=n7 actor=graph: bad frame 0\n"));
    assert_null(strstr(out, "bad frame 1"));
    assert_null(strstr(out, "bad frame 2"));
    assert_non_null(strstr(out, "bad frame 3 (and 2 similar events in the previous burst)"));
    free(out);
}

static void run_progress(void *arg) {
    (void)arg;
    llmos_progress_t p;
    llmos_progress_init(&p, "load x", "triples", 100);
    for (int i = 1; i <= 100; i++) llmos_progress_update(&p, (uint64_t)i, 2);
    llmos_progress_finish(&p, "3 duplicates");
}

static void test_progress_summary(void **state) {
    (void)state;
    char *out = capture_stderr(run_progress, NULL);
    assert_non_null(strstr(out, "load x: 100 triples in "));
    assert_non_null(strstr(out, "2 errors, 3 duplicates\n"));
    free(out);
}

static void test_paths(void **state) {
    (void)state;
    char out[4096];
    llmos_error_t e;
    assert_int_equal(llmos_models_dir("/nonexistent-llmos", out, sizeof out, &e), LLMOS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent-llmos"));
    assert_int_equal(llmos_models_dir("/tmp", out, sizeof out, &e), 0);
    assert_string_equal(out, "/tmp");
    setenv("LLMOS_DATA", "/tmp", 1);
    assert_int_equal(llmos_data_dir(NULL, out, sizeof out, &e), 0);
    assert_string_equal(out, "/tmp");
    char small[8];
    assert_int_equal(llmos_path_join(small, sizeof small, "/tmp", "long-name"), LLMOS_ETOOBIG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_prefix), cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_log_levels),           cmocka_unit_test(test_log_burst_and_labels),
        cmocka_unit_test(test_progress_summary),     cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
