/*
 * test_joblog.c — the durable job log (jobs/joblog.h) on a real LMDB file
 * in a temporary directory: add/get, idempotency (EEXIST), state changes,
 * task results, group commit (uncommitted writes vanish when the process
 * "crashes" = the log is dropped without commit; committed ones survive a
 * reopen), listing with tenant/state filters and paging, retention purge.
 */
#include "jobs/joblog.h"

#include "runtime/base/tmpdir.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct fx {
    char dir[256];
    joblog_t *log;
} fx_t;

static int setup(void **st) {
    fx_t *f = calloc(1, sizeof *f);
    llmos_error_t err;
    if (llmos_tmpdir_make("llmos-joblog", f->dir, sizeof f->dir, &err) != 0) return -1;
    if (joblog_open(f->dir, &(joblog_opts_t){.nosync = true}, &f->log, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *st = f;
    return 0;
}

static int teardown(void **st) {
    fx_t *f = *st;
    joblog_close(&f->log);
    if (llmos_tmpdir_remove(f->dir, NULL) != 0) return -1;
    free(f);
    return 0;
}

static joblog_job_t mkjob(uint64_t seq, const char *tenant, uint32_t state, const char *spec) {
    joblog_job_t j = {0};
    j.seq = seq;
    j.submitted_ms = 1000 + seq;
    j.state = state;
    j.priority = (int32_t)seq % 3;
    j.ntasks = 2;
    j.tenant = tenant;
    j.tenant_len = strlen(tenant);
    j.spec = (const uint8_t *)spec;
    j.spec_len = strlen(spec);
    return j;
}

static void reopen(fx_t *f) {
    assert_int_equal(joblog_commit(f->log, NULL), 0);
    joblog_close(&f->log);
    llmos_error_t err;
    assert_int_equal(joblog_open(f->dir, NULL, &f->log, &err), 0);
}

static void test_add_get_exists(void **st) {
    fx_t *f = *st;
    llmos_error_t err;
    joblog_job_t j = mkjob(1, "acme", 1, "SPEC-ONE");
    assert_int_equal(joblog_job_add(f->log, "job-1", &j, &err), 0);
    assert_int_equal(joblog_pending(f->log), 1);
    /* Same id again: EEXIST, and the first spec stays. */
    joblog_job_t j2 = mkjob(2, "other", 1, "SPEC-TWO");
    assert_int_equal(joblog_job_add(f->log, "job-1", &j2, &err), LLMOS_EEXIST);
    assert_non_null(strstr(err.msg, "job-1"));
    joblog_job_t g;
    assert_int_equal(joblog_job_get(f->log, "job-1", true, &g, &err), 0); /* read inside the open txn */
    assert_int_equal(g.seq, 1);
    assert_int_equal(g.state, 1);
    assert_int_equal(g.tenant_len, 4);
    assert_memory_equal(g.tenant, "acme", 4);
    assert_int_equal(g.spec_len, 8);
    assert_memory_equal(g.spec, "SPEC-ONE", 8);
    assert_int_equal(joblog_commit(f->log, &err), 0);
    assert_int_equal(joblog_pending(f->log), 0);
    assert_int_equal(joblog_job_get(f->log, "nope", false, &g, &err), LLMOS_ENOTFOUND);
    /* Bad ids. */
    assert_int_equal(joblog_job_add(f->log, "", &j, &err), LLMOS_EINVAL);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(joblog_job_add(f->log, big, &j, &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "at most"));
}

static void test_state_and_tasks_survive_reopen(void **st) {
    fx_t *f = *st;
    llmos_error_t err;
    joblog_job_t j = mkjob(7, "t", 1, "S");
    assert_int_equal(joblog_job_add(f->log, "a", &j, &err), 0);
    assert_int_equal(joblog_task_put(f->log, "a", 0, "RUNNING", 7, &err), 0);
    assert_int_equal(joblog_job_update(f->log, "a", 2, 5000, 0, NULL, &err), 0);
    assert_int_equal(joblog_task_put(f->log, "a", 0, "DONE:result", 11, &err), 0);
    assert_int_equal(joblog_task_put(f->log, "a", 1, "", 0, &err), 0);
    assert_int_equal(joblog_job_update(f->log, "a", 3, 5000, 6000, "fine", &err), 0);
    reopen(f);
    joblog_job_t g;
    assert_int_equal(joblog_job_get(f->log, "a", true, &g, &err), 0);
    assert_int_equal(g.state, 3);
    assert_int_equal(g.started_ms, 5000);
    assert_int_equal(g.finished_ms, 6000);
    assert_int_equal(g.error_len, 4);
    assert_memory_equal(g.error, "fine", 4);
    assert_int_equal(g.seq, 7);
    assert_memory_equal(g.spec, "S", 1);
    const void *d;
    size_t n;
    assert_int_equal(joblog_task_get(f->log, "a", 0, &d, &n, &err), 0);
    assert_int_equal(n, 11);
    assert_memory_equal(d, "DONE:result", 11);
    assert_int_equal(joblog_task_get(f->log, "a", 1, &d, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(joblog_task_get(f->log, "a", 2, &d, &n, &err), LLMOS_ENOTFOUND);
    assert_int_equal(joblog_job_update(f->log, "zz", 2, 0, 0, NULL, &err), LLMOS_ENOTFOUND);
}

/* A child process writes and commits some jobs, writes more without a
 * commit, and dies (_exit): only the committed ones exist afterwards. */
static void test_uncommitted_lost_committed_kept(void **st) {
    fx_t *f = *st;
    joblog_close(&f->log);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        joblog_t *log;
        if (joblog_open(f->dir, NULL, &log, NULL) != 0) _exit(2);
        char id[16];
        for (int i = 0; i < 10; i++) {
            snprintf(id, sizeof id, "c%02d", i);
            joblog_job_t j = mkjob((uint64_t)i, "t", 1, "S");
            if (joblog_job_add(log, id, &j, NULL) != 0) _exit(3);
        }
        if (joblog_commit(log, NULL) != 0) _exit(4);
        for (int i = 10; i < 20; i++) {
            snprintf(id, sizeof id, "c%02d", i);
            joblog_job_t j = mkjob((uint64_t)i, "t", 1, "S");
            if (joblog_job_add(log, id, &j, NULL) != 0) _exit(5);
        }
        _exit(0); /* the crash: no commit, no close */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    llmos_error_t err;
    assert_int_equal(joblog_open(f->dir, NULL, &f->log, &err), 0);
    uint64_t count;
    assert_int_equal(joblog_count(f->log, &count, &err), 0);
    assert_int_equal(count, 10);
    joblog_job_t g;
    assert_int_equal(joblog_job_get(f->log, "c09", false, &g, &err), 0);
    assert_int_equal(joblog_job_get(f->log, "c10", false, &g, &err), LLMOS_ENOTFOUND);
}

typedef struct collect {
    char ids[64][16];
    int n;
} collect_t;

static int collect_fn(void *user, const char *id, size_t id_len, const joblog_job_t *job) {
    collect_t *c = user;
    if (c->n < 64) snprintf(c->ids[c->n++], 16, "%.*s", (int)id_len, id);
    return 0;
}

static void test_list_filters_and_pages(void **st) {
    fx_t *f = *st;
    llmos_error_t err;
    char id[16];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "j%02d", i);
        joblog_job_t j = mkjob((uint64_t)i, i % 2 ? "odd" : "even", i % 3 == 0 ? 3 : 1, "S");
        assert_int_equal(joblog_job_add(f->log, id, &j, &err), 0);
    }
    assert_int_equal(joblog_commit(f->log, &err), 0);
    collect_t c = {0};
    char next[JOBLOG_ID_MAX + 1];
    /* All, in pages of 12. */
    assert_int_equal(joblog_list(f->log, NULL, 0, NULL, 12, 0, collect_fn, &c, next, sizeof next, &err), 0);
    assert_int_equal(c.n, 12);
    assert_string_equal(c.ids[0], "j00");
    assert_string_equal(next, "j11");
    assert_int_equal(joblog_list(f->log, NULL, 0, next, 12, 0, collect_fn, &c, next, sizeof next, &err), 0);
    assert_int_equal(c.n, 24);
    assert_string_equal(c.ids[12], "j12");
    assert_int_equal(joblog_list(f->log, "", 0, next, 12, 0, collect_fn, &c, next, sizeof next, &err), 0);
    assert_int_equal(c.n, 30);
    assert_string_equal(next, "");
    /* Tenant "odd" and state 3 (done): i odd and i % 3 == 0 -> 3, 9, 15, 21, 27. */
    memset(&c, 0, sizeof c);
    assert_int_equal(joblog_list(f->log, "odd", 3, NULL, 100, 0, collect_fn, &c, next, sizeof next, &err), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.ids[0], "j03");
    assert_string_equal(c.ids[4], "j27");
    assert_string_equal(next, "");
    /* A scan cap stops early and says where to go on. */
    memset(&c, 0, sizeof c);
    assert_int_equal(joblog_list(f->log, "odd", 3, NULL, 100, 10, collect_fn, &c, next, sizeof next, &err), 0);
    assert_int_equal(c.n, 2); /* j03, j09 within j00..j09 */
    assert_string_equal(next, "j09");
    /* foreach sees all. */
    memset(&c, 0, sizeof c);
    assert_int_equal(joblog_foreach(f->log, collect_fn, &c, &err), 0);
    assert_int_equal(c.n, 30);
}

static void test_retention_purge(void **st) {
    fx_t *f = *st;
    llmos_error_t err;
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "r%d", i);
        joblog_job_t j = mkjob((uint64_t)i, "t", 1, "SPEC");
        assert_int_equal(joblog_job_add(f->log, id, &j, &err), 0);
        assert_int_equal(joblog_task_put(f->log, id, 0, "x", 1, &err), 0);
        assert_int_equal(joblog_task_put(f->log, id, 1, "y", 1, &err), 0);
        /* r0..r5 finish at 10000 + i*100; r6..r9 stay unfinished. */
        if (i < 6) assert_int_equal(joblog_job_update(f->log, id, 3, 9000, 10000 + (uint64_t)i * 100, NULL, &err), 0);
    }
    /* A finish time changed later moves its index entry (r5 -> 20000). */
    assert_int_equal(joblog_job_update(f->log, "r5", 3, 9000, 20000, NULL, &err), 0);
    assert_int_equal(joblog_commit(f->log, &err), 0);
    uint32_t purged;
    /* retention 1000: at now = 11150, r0..r1 are due (10000, 10100 + 1000 <= 11150). */
    assert_int_equal(joblog_purge(f->log, 11150, 1000, 100, &purged, &err), 0);
    assert_int_equal(purged, 2);
    /* max bounds one pass. */
    assert_int_equal(joblog_purge(f->log, 50000, 1000, 2, &purged, &err), 0);
    assert_int_equal(purged, 2);
    assert_int_equal(joblog_purge(f->log, 50000, 1000, 100, &purged, &err), 0);
    assert_int_equal(purged, 2); /* r4 and r5 */
    assert_int_equal(joblog_purge(f->log, 50000, 1000, 100, &purged, &err), 0);
    assert_int_equal(purged, 0);
    assert_int_equal(joblog_commit(f->log, &err), 0);
    uint64_t count;
    assert_int_equal(joblog_count(f->log, &count, &err), 0);
    assert_int_equal(count, 4);
    joblog_job_t g;
    const void *d;
    size_t n;
    assert_int_equal(joblog_job_get(f->log, "r5", false, &g, &err), LLMOS_ENOTFOUND);
    assert_int_equal(joblog_task_get(f->log, "r5", 0, &d, &n, &err), LLMOS_ENOTFOUND);
    assert_int_equal(joblog_task_get(f->log, "r0", 1, &d, &n, &err), LLMOS_ENOTFOUND);
    assert_int_equal(joblog_task_get(f->log, "r6", 1, &d, &n, &err), 0);
    assert_memory_equal(d, "y", 1);
    assert_int_equal(joblog_job_get(f->log, "r9", false, &g, &err), 0);
}

static void test_bad_dir(void **st) {
    (void)st;
    joblog_t *log;
    llmos_error_t err;
    assert_int_equal(joblog_open("/proc/llmos-no/such", NULL, &log, &err), LLMOS_EIO);
    assert_non_null(strstr(err.msg, "/proc/llmos-no"));
    assert_null(log);
    /* A foreign file where jobs.lmdb should be. */
    char dir[256];
    assert_int_equal(llmos_tmpdir_make("llmos-joblog-bad", dir, sizeof dir, &err), 0);
    char path[320];
    snprintf(path, sizeof path, "%s/%s", dir, JOBLOG_FILE);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++) fputc('z', fp);
    fclose(fp);
    int rc = joblog_open(dir, NULL, &log, &err);
    assert_true(rc == LLMOS_EFORMAT || rc == LLMOS_EIO);
    assert_null(log);
    assert_int_equal(llmos_tmpdir_remove(dir, NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_get_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_and_tasks_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_lost_committed_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_purge, setup, teardown),
        cmocka_unit_test(test_bad_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
