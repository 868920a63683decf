/* Unit tests of runtime/base: error codes and messages, log levels, burst
 * limiting, progress output, path resolution, and the shared containers and
 * parsers — byte buffer and array, hash map (against a plain reference
 * under random operations), bounded integer parsing, UTF-8 check and
 * encoding, temporary folders — at their edge values (empty, huge,
 * overflow, non-ASCII, NUL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runtime/base/buf.h"
#include "runtime/base/clock.h"
#include "runtime/base/err.h"
#include "runtime/base/log.h"
#include "runtime/base/map.h"
#include "runtime/base/parse.h"
#include "runtime/base/paths.h"
#include "runtime/base/progress.h"
#include "runtime/base/tmpdir.h"
#include "runtime/base/utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    for (int i = 0; i < 3; i++)
        llmos_log_burst(&b, LLMOS_LOG_WARN, "bad frame %d", i);
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
    for (int i = 1; i <= 100; i++)
        llmos_progress_update(&p, (uint64_t)i, 2);
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

/* ---------------------------------------------------------------- buf */

static void test_buf_append(void **state) {
    (void)state;
    llmos_buf_t b = LLMOS_BUF_INIT;
    llmos_buf_deinit(&b); /* empty: nothing to free */
    assert_int_equal(llmos_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(llmos_buf_append(&b, "a\0b", 3), 0); /* NUL inside */
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b\0", 4);
    assert_int_equal(llmos_buf_putc(&b, '\0'), 0);
    assert_int_equal(llmos_buf_puts(&b, "caf\xc3\xa9"), 0);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "a\0b\0caf\xc3\xa9\0", 10);
    /* growth from nothing past the first block, a byte at a time */
    llmos_buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 100000; i++)
        assert_int_equal(llmos_buf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[99999], 'a' + 99999 % 26);
    assert_int_equal(b.data[100000], '\0');
    /* a size that would overflow is refused and changes nothing */
    size_t len = b.len, cap = b.cap;
    assert_int_equal(llmos_buf_reserve(&b, SIZE_MAX), LLMOS_ENOMEM);
    assert_int_equal(llmos_buf_reserve(&b, SIZE_MAX - b.len), LLMOS_ENOMEM);
    assert_int_equal(llmos_buf_append(&b, "x", SIZE_MAX - 3), LLMOS_ENOMEM);
    assert_int_equal(b.len, len);
    assert_int_equal(b.cap, cap);
    llmos_buf_deinit(&b);
    assert_null(b.data);
    assert_int_equal(b.len + b.cap, 0);
}

static void test_buf_printf_and_take(void **state) {
    (void)state;
    llmos_buf_t b;
    llmos_buf_init(&b);
    assert_int_equal(llmos_buf_printf(&b, "%s", ""), 0); /* empty output on an empty buffer */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data ? b.data : "", "");
    assert_int_equal(llmos_buf_printf(&b, "%d-%s", 42, "é"), 0);
    assert_string_equal(b.data, "42-é");
    /* longer than the room left: grows once and prints it whole */
    assert_int_equal(llmos_buf_printf(&b, "[%*s]", 10000, "x"), 0);
    assert_int_equal(b.len, strlen("42-é") + 10002);
    assert_int_equal(b.data[b.len - 2], 'x');
    assert_int_equal(b.data[b.len], '\0');
    /* exactly filling the block: the NUL still fits */
    llmos_buf_t c = LLMOS_BUF_INIT;
    assert_int_equal(llmos_buf_reserve(&c, 10), 0);
    size_t room = c.cap - 1;
    assert_int_equal(llmos_buf_printf(&c, "%*s", (int)room, "y"), 0);
    assert_int_equal(c.len, room);
    assert_int_equal(llmos_buf_printf(&c, "%s", "z"), 0);
    assert_int_equal(c.len, room + 1);
    assert_int_equal(c.data[room], 'z');
    llmos_buf_deinit(&c);
    size_t n = 0;
    char *t = llmos_buf_take(&b, &n);
    assert_non_null(t);
    assert_int_equal(n, strlen(t));
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(t);
    /* taking an empty buffer gives "" to free */
    t = llmos_buf_take(&b, &n);
    assert_non_null(t);
    assert_string_equal(t, "");
    assert_int_equal(n, 0);
    free(t);
}

static void test_vec(void **state) {
    (void)state;
    llmos_vec_t v = LLMOS_VEC_INIT;
    assert_int_equal(llmos_vec_push(&v, 0, NULL), LLMOS_EINVAL);
    for (int i = 0; i < 50000; i++)
        assert_int_equal(llmos_vec_push(&v, sizeof(int), &i), 0);
    assert_int_equal(v.len, 50000);
    const int *a = v.data;
    for (int i = 0; i < 50000; i++)
        assert_int_equal(a[i], i);
    assert_int_equal(llmos_vec_push(&v, sizeof(int), NULL), 0); /* a zeroed element */
    assert_int_equal(((int *)v.data)[50000], 0);
    size_t cap = v.cap;
    assert_int_equal(llmos_vec_reserve(&v, sizeof(int), SIZE_MAX), LLMOS_ENOMEM);
    assert_int_equal(llmos_vec_reserve(&v, sizeof(int), SIZE_MAX / 2), LLMOS_ENOMEM); /* bytes overflow */
    assert_int_equal(v.cap, cap);
    assert_int_equal(llmos_vec_reserve(&v, sizeof(int), 0), 0);
    llmos_vec_deinit(&v);
    assert_null(v.data);
    struct big {
        char b[1000];
    } big = {{1}};
    assert_int_equal(llmos_vec_push(&v, sizeof big, &big), 0);
    assert_int_equal(((struct big *)v.data)[0].b[0], 1);
    llmos_vec_deinit(&v);
}

/* ---------------------------------------------------------------- map */

static void test_hash_values(void **state) {
    (void)state;
    /* the published 64-bit FNV-1a test vectors */
    assert_true(llmos_hash_fnv1a("", 0) == 0xcbf29ce484222325ULL);
    assert_true(llmos_hash_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(llmos_hash_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
    uint64_t h = llmos_hash_fnv1a_more(LLMOS_FNV1A_SEED, "foo", 3);
    assert_true(llmos_hash_fnv1a_more(h, "bar", 3) == llmos_hash_fnv1a("foobar", 6));
    assert_true(llmos_hash_u64(1) != llmos_hash_u64(2));
    assert_true(llmos_hash_u64(0) == 0); /* the finalizer's fixed point: still a valid key */
}

static void test_map_u64(void **state) {
    (void)state;
    llmos_map_t m;
    assert_int_equal(llmos_map_init(&m, (llmos_map_keys_t)3, 8), LLMOS_EINVAL);
    assert_int_equal(llmos_map_init(&m, LLMOS_MAP_U64, 70000), LLMOS_EINVAL);
    assert_int_equal(llmos_map_init(&m, LLMOS_MAP_U64, sizeof(uint64_t)), 0);
    assert_null(llmos_map_u64_get(&m, 0)); /* empty, nothing allocated */
    assert_int_equal(llmos_map_u64_remove(&m, 0), LLMOS_ENOTFOUND);
    assert_int_equal(llmos_map_str_put(&m, "x", 1, NULL, NULL), LLMOS_EINVAL); /* wrong kind */
    assert_null(llmos_map_str_get(&m, "x", 1));
    const uint64_t edge[] = {0, 1, UINT64_MAX, UINT64_MAX - 1, 1ULL << 63};
    for (size_t i = 0; i < 5; i++) {
        void *v;
        int added;
        assert_int_equal(llmos_map_u64_put(&m, edge[i], &v, &added), 0);
        assert_int_equal(added, 1);
        assert_true(*(uint64_t *)v == 0); /* zeroed */
        *(uint64_t *)v = ~edge[i];
    }
    for (uint64_t k = 2; k < 100002; k++) {
        void *v;
        assert_int_equal(llmos_map_u64_put(&m, k, &v, NULL), 0);
        *(uint64_t *)v = k * 3;
    }
    assert_int_equal(llmos_map_count(&m), 100000 + 5);
    for (size_t i = 0; i < 5; i++) {
        uint64_t *v = llmos_map_u64_get(&m, edge[i]);
        assert_non_null(v);
        assert_true(*v == ~edge[i] || (edge[i] >= 2 && edge[i] < 100002));
    }
    /* insertion order while nothing is removed */
    assert_true(llmos_map_u64_key_at(&m, 0) == 0);
    assert_true(llmos_map_u64_key_at(&m, 2) == UINT64_MAX);
    assert_true(llmos_map_u64_key_at(&m, 5) == 2);
    assert_null(llmos_map_val_at(&m, llmos_map_count(&m)));
    /* put of a present key finds it */
    int added = 7;
    void *v;
    assert_int_equal(llmos_map_u64_put(&m, 77, &v, &added), 0);
    assert_int_equal(added, 0);
    assert_true(*(uint64_t *)v == 231);
    assert_int_equal(llmos_map_index_of(&m, v), 5 + 75);
    /* remove the odd keys, walking positions downwards */
    for (size_t i = llmos_map_count(&m); i-- > 0;) {
        uint64_t k = llmos_map_u64_key_at(&m, i);
        if (k >= 2 && k < 100002 && (k & 1)) llmos_map_remove_at(&m, i);
    }
    assert_int_equal(llmos_map_count(&m), 50000 + 5);
    for (uint64_t k = 2; k < 100002; k++) {
        uint64_t *p = llmos_map_u64_get(&m, k);
        if (k & 1) {
            assert_null(p);
        } else {
            assert_non_null(p);
            assert_true(*p == k * 3);
        }
    }
    assert_int_equal(llmos_map_u64_remove(&m, UINT64_MAX), 0);
    assert_int_equal(llmos_map_u64_remove(&m, UINT64_MAX), LLMOS_ENOTFOUND);
    assert_null(llmos_map_u64_get(&m, UINT64_MAX));
    llmos_map_clear(&m);
    assert_int_equal(llmos_map_count(&m), 0);
    assert_null(llmos_map_u64_get(&m, 4));
    assert_int_equal(llmos_map_u64_put(&m, 4, NULL, &added), 0);
    assert_int_equal(added, 1);
    llmos_map_deinit(&m);
    assert_int_equal(llmos_map_count(&m), 0);
    assert_int_equal(llmos_map_u64_put(&m, 4, NULL, &added), 0); /* usable after deinit */
    llmos_map_deinit(&m);
}

static void test_map_str(void **state) {
    (void)state;
    llmos_map_t m;
    assert_int_equal(llmos_map_init(&m, LLMOS_MAP_STR, 0), 0); /* a set */
    int added;
    void *v;
    assert_int_equal(llmos_map_str_put(&m, NULL, 0, &v, &added), 0); /* the empty key */
    assert_int_equal(added, 1);
    assert_non_null(llmos_map_str_get(&m, "", 0));
    assert_null(llmos_map_str_get(&m, "a", 1));
    assert_int_equal(llmos_map_str_put(&m, "a\0b", 3, NULL, &added), 0); /* NUL inside */
    assert_int_equal(added, 1);
    assert_int_equal(llmos_map_str_put(&m, "a", 1, NULL, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(llmos_map_str_put(&m, "a\0b", 3, NULL, &added), 0);
    assert_int_equal(added, 0);
    assert_int_equal(llmos_map_str_put(&m, "caf\xc3\xa9", 5, NULL, &added), 0);
    assert_int_equal(llmos_map_str_put(&m, "\xff\xfe", 2, NULL, &added), 0); /* not UTF-8: bytes are bytes */
    assert_int_equal(added, 1);
    size_t big_n = 1 << 20;
    char *big = malloc(big_n);
    assert_non_null(big);
    memset(big, 'k', big_n);
    assert_int_equal(llmos_map_str_put(&m, big, big_n, NULL, &added), 0);
    big[big_n - 1] = 'j'; /* differs only in the last byte */
    assert_null(llmos_map_str_get(&m, big, big_n));
    assert_int_equal(llmos_map_str_put(&m, big, big_n, NULL, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(llmos_map_count(&m), 7);
    size_t n;
    const char *k = llmos_map_str_key_at(&m, 1, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "a\0b\0", 4); /* NUL-terminated copy */
    k = llmos_map_str_key_at(&m, 0, &n);
    assert_int_equal(n, 0);
    assert_string_equal(k, "");
    assert_null(llmos_map_str_key_at(&m, 7, &n));
    assert_int_equal(n, 0);
    assert_true(llmos_map_u64_key_at(&m, 0) == 0); /* wrong kind */
    assert_int_equal(llmos_map_u64_put(&m, 1, NULL, NULL), LLMOS_EINVAL);
    /* removing the big keys leaves most of the arena dead: it is reclaimed,
     * and the other keys are still found by content */
    assert_int_equal(llmos_map_str_remove(&m, big, big_n), 0);
    big[big_n - 1] = 'k';
    assert_int_equal(llmos_map_str_remove(&m, big, big_n), 0);
    assert_int_equal(llmos_map_str_remove(&m, big, big_n), LLMOS_ENOTFOUND);
    assert_true(m.arena_len < 4096);
    assert_non_null(llmos_map_str_get(&m, "a\0b", 3));
    assert_non_null(llmos_map_str_get(&m, "caf\xc3\xa9", 5));
    assert_non_null(llmos_map_str_get(&m, "", 0));
    k = llmos_map_str_key_at(&m, llmos_map_index_of(&m, llmos_map_str_get(&m, "\xff\xfe", 2)), &n);
    assert_int_equal(n, 2);
    assert_memory_equal(k, "\xff\xfe", 2);
    free(big);
    llmos_map_deinit(&m);
}

/* Random puts and removes against a plain array, on few distinct keys (long
 * probe runs, many backward shifts). */
static void test_map_random(void **state) {
    (void)state;
    enum { KEYS = 3000 };
    static int ref[KEYS]; /* value + 1, 0 = absent */
    memset(ref, 0, sizeof ref);
    llmos_map_t mu, ms;
    assert_int_equal(llmos_map_init(&mu, LLMOS_MAP_U64, sizeof(int)), 0);
    assert_int_equal(llmos_map_init(&ms, LLMOS_MAP_STR, sizeof(int)), 0);
    uint64_t x = 88172645463325252ULL;
    size_t live = 0;
    for (int step = 0; step < 300000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int key = (int)(x % KEYS);
        uint64_t ukey = (uint64_t)key * 0x10000; /* low bits equal: clusters */
        char skey[32];
        int sn = snprintf(skey, sizeof skey, "key-%d", key);
        if ((x >> 32) % 3 == 0) {
            int r1 = llmos_map_u64_remove(&mu, ukey), r2 = llmos_map_str_remove(&ms, skey, (size_t)sn);
            assert_int_equal(r1, ref[key] ? 0 : LLMOS_ENOTFOUND);
            assert_int_equal(r2, r1);
            if (ref[key]) live--;
            ref[key] = 0;
        } else {
            void *v1, *v2;
            int a1, a2;
            assert_int_equal(llmos_map_u64_put(&mu, ukey, &v1, &a1), 0);
            assert_int_equal(llmos_map_str_put(&ms, skey, (size_t)sn, &v2, &a2), 0);
            assert_int_equal(a1, !ref[key]);
            assert_int_equal(a2, a1);
            if (!a1) {
                assert_int_equal(*(int *)v1, ref[key] - 1);
                assert_int_equal(*(int *)v2, ref[key] - 1);
            } else {
                live++;
            }
            *(int *)v1 = *(int *)v2 = step;
            ref[key] = step + 1;
        }
        if (step % 10007 == 0) {
            assert_int_equal(llmos_map_count(&mu), live);
            assert_int_equal(llmos_map_count(&ms), live);
            for (int k = 0; k < KEYS; k++) {
                int *p = llmos_map_u64_get(&mu, (uint64_t)k * 0x10000);
                char sk[32];
                int *q = llmos_map_str_get(&ms, sk, (size_t)snprintf(sk, sizeof sk, "key-%d", k));
                if (!ref[k]) {
                    assert_null(p);
                    assert_null(q);
                } else {
                    assert_non_null(p);
                    assert_non_null(q);
                    assert_int_equal(*p, ref[k] - 1);
                    assert_int_equal(*q, ref[k] - 1);
                }
            }
        }
    }
    llmos_map_deinit(&mu);
    llmos_map_deinit(&ms);
}

/* ---------------------------------------------------------------- parse */

static void test_parse_u64(void **state) {
    (void)state;
    uint64_t v = 5;
    llmos_error_t e;
    assert_int_equal(llmos_parse_u64("n", "0", 0, UINT64_MAX, 0, &v, &e), 0);
    assert_true(v == 0);
    assert_int_equal(llmos_parse_u64("n", "18446744073709551615", 0, UINT64_MAX, 0, &v, &e), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(llmos_parse_u64("n", "010", 0, 100, 0, &v, &e), 0); /* decimal, not octal */
    assert_true(v == 10);
    v = 5;
    const char *bad[] = {"",
                         " 1",
                         "1 ",
                         "+1",
                         "-1",
                         "1x",
                         "0x10",
                         "1.5",
                         "1e3",
                         "18446744073709551616",
                         "99999999999999999999999",
                         "１",
                         "1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(llmos_parse_u64("--n", bad[i], 0, UINT64_MAX, 0, &v, &e), LLMOS_EINVAL);
        assert_int_equal(e.code, LLMOS_EINVAL);
        assert_non_null(strstr(e.msg, "--n '"));
    }
    assert_true(v == 5); /* untouched on error */
    assert_string_equal(e.msg, "--n '1\\x0a' is not a whole number from 0 to 18446744073709551615");
    assert_int_equal(llmos_parse_u64("--n", NULL, 0, 9, 0, &v, &e), LLMOS_EINVAL);
    assert_string_equal(e.msg, "--n has no value");
    assert_int_equal(llmos_parse_u64("--threads", "0", 1, 256, 0, &v, &e), LLMOS_EINVAL);
    assert_string_equal(e.msg, "--threads '0' is not a whole number from 1 to 256");
    assert_int_equal(llmos_parse_u64("--threads", "257", 1, 256, 0, &v, NULL), LLMOS_EINVAL);
    assert_int_equal(llmos_parse_u64("--threads", "256", 1, 256, 0, &v, NULL), 0);
    assert_int_equal(llmos_parse_u64("x", "caf\xc3\xa9", 1, 2, 0, &v, &e), LLMOS_EINVAL);
    assert_non_null(strstr(e.msg, "'caf\xc3\xa9'")); /* non-ASCII shown as it is */
    char lng[200];
    memset(lng, '7', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    assert_int_equal(llmos_parse_u64("x", lng, 0, UINT64_MAX, 0, &v, &e), LLMOS_EINVAL);
    assert_non_null(strstr(e.msg, "777...'")); /* cut */
    assert_true(strlen(e.msg) < 150);
    /* hexadecimal on request */
    assert_int_equal(llmos_parse_u64("id", "0x10", 0, UINT64_MAX, LLMOS_PARSE_HEX, &v, &e), 0);
    assert_true(v == 16);
    assert_int_equal(llmos_parse_u64("id", "0XfFfFfFfFfFfFfFfF", 0, UINT64_MAX, LLMOS_PARSE_HEX, &v, &e), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(llmos_parse_u64("id", "0x1ffffffffffffffff", 0, UINT64_MAX, LLMOS_PARSE_HEX, &v, &e),
                     LLMOS_EINVAL);
    assert_int_equal(llmos_parse_u64("id", "0x", 0, UINT64_MAX, LLMOS_PARSE_HEX, &v, &e), LLMOS_EINVAL);
    assert_non_null(strstr(e.msg, "0x hexadecimal"));
    assert_int_equal(llmos_parse_u64("id", "12", 0, UINT64_MAX, LLMOS_PARSE_HEX, &v, &e), 0);
    assert_true(v == 12);
}

static void test_parse_size(void **state) {
    (void)state;
    uint64_t v;
    llmos_error_t e;
    const struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"0", 0},
              {"123", 123},
              {"64K", 64 << 10},
              {"64k", 64 << 10},
              {"16M", 16 << 20},
              {"16MiB", 16 << 20},
              {"16MB", 16 << 20},
              {"1G", 1ULL << 30},
              {"2KiB", 2048},
              {"0K", 0},
              {"17179869183G", 17179869183ULL << 30}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        assert_int_equal(llmos_parse_u64("size", ok[i].s, 0, UINT64_MAX, LLMOS_PARSE_SIZE, &v, &e), 0);
        assert_true(v == ok[i].v);
    }
    const char *bad[] = {"K", "1Mi", "1MBB", "1T", "1 K", "16E", "17179869184G", "-1K", "1KiBx", "1iB"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(llmos_parse_u64("size", bad[i], 0, UINT64_MAX, LLMOS_PARSE_SIZE, &v, &e),
                         LLMOS_EINVAL);
    /* the bound applies after the suffix */
    assert_int_equal(llmos_parse_u64("mailbox", "5G", 1024, 1ULL << 32, LLMOS_PARSE_SIZE, &v, &e),
                     LLMOS_EINVAL);
    assert_string_equal(
        e.msg, "mailbox '5G' is not a size from 1K to 4G (a whole number, optionally with K, M or G)");
    assert_int_equal(llmos_parse_u64("mailbox", "4G", 1024, 1ULL << 32, LLMOS_PARSE_SIZE, &v, &e), 0);
    assert_int_equal(llmos_parse_u64("mailbox", "1023", 1024, 1ULL << 32, LLMOS_PARSE_SIZE, &v, &e),
                     LLMOS_EINVAL);
    /* no suffix without the flag */
    assert_int_equal(llmos_parse_u64("n", "10K", 0, UINT64_MAX, 0, &v, &e), LLMOS_EINVAL);
}

static void test_parse_signed_and_narrow(void **state) {
    (void)state;
    uint32_t u = 9;
    llmos_error_t e;
    assert_int_equal(llmos_parse_u32("p", "4294967295", 0, UINT32_MAX, 0, &u, &e), 0);
    assert_true(u == UINT32_MAX);
    assert_int_equal(llmos_parse_u32("p", "4294967296", 0, UINT32_MAX, 0, &u, &e), LLMOS_EINVAL);
    assert_true(u == UINT32_MAX);
    int64_t s;
    assert_int_equal(llmos_parse_i64("s", "-9223372036854775808", INT64_MIN, INT64_MAX, &s, &e), 0);
    assert_true(s == INT64_MIN);
    assert_int_equal(llmos_parse_i64("s", "9223372036854775807", INT64_MIN, INT64_MAX, &s, &e), 0);
    assert_true(s == INT64_MAX);
    assert_int_equal(llmos_parse_i64("s", "-0", -1, 1, &s, &e), 0);
    assert_true(s == 0);
    const char *bad[] = {"-9223372036854775809", "9223372036854775808", "-", "--1", "+1", "", "1-", "- 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(llmos_parse_i64("s", bad[i], INT64_MIN, INT64_MAX, &s, &e), LLMOS_EINVAL);
    assert_int_equal(llmos_parse_i64("--level", "-6", -5, 5, &s, &e), LLMOS_EINVAL);
    assert_string_equal(e.msg, "--level '-6' is not a whole number from -5 to 5");
    assert_int_equal(llmos_parse_i64("s", NULL, 0, 1, &s, &e), LLMOS_EINVAL);
    assert_string_equal(e.msg, "s has no value");
    int i = 3;
    assert_int_equal(llmos_parse_int("--batch", "2147483647", 1, INT32_MAX, &i, &e), 0);
    assert_int_equal(i, INT32_MAX);
    assert_int_equal(llmos_parse_int("--batch", "2147483648", 1, INT32_MAX, &i, &e), LLMOS_EINVAL);
    assert_int_equal(llmos_parse_int("--batch", "0", 1, 8, &i, &e), LLMOS_EINVAL);
    assert_int_equal(i, INT32_MAX);
}

/* ---------------------------------------------------------------- utf8 */

static void test_utf8(void **state) {
    (void)state;
    assert_int_equal(llmos_utf8_check("", 0), 0);
    assert_int_equal(llmos_utf8_check("a\0b", 3), 3); /* NUL is a character */
    assert_int_equal(llmos_utf8_check("caf\xc3\xa9", 5), 5);
    assert_int_equal(llmos_utf8_check("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(llmos_utf8_check("a\xc0\x80", 3), 1);        /* overlong NUL */
    assert_int_equal(llmos_utf8_check("\xe0\x80\xaf", 3), 0);     /* overlong '/' */
    assert_int_equal(llmos_utf8_check("\xed\xa0\x80", 3), 0);     /* surrogate */
    assert_int_equal(llmos_utf8_check("\xf4\x90\x80\x80", 4), 0); /* over U+10FFFF */
    assert_int_equal(llmos_utf8_check("ab\xe2\x82", 4), 2);       /* truncated at the end */
    assert_int_equal(llmos_utf8_check("\x80", 1), 0);             /* a lone continuation */
    assert_int_equal(llmos_utf8_check("\xff", 1), 0);
    char o[4];
    assert_int_equal(llmos_utf8_encode(0, o), 1);
    assert_int_equal(o[0], 0);
    assert_int_equal(llmos_utf8_encode(0xE9, o), 2);
    assert_memory_equal(o, "\xc3\xa9", 2);
    assert_int_equal(llmos_utf8_encode(0x1F600, o), 4);
    assert_memory_equal(o, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(llmos_utf8_encode(0xD800, o), 0);
    assert_int_equal(llmos_utf8_encode(0xDFFF, o), 0);
    assert_int_equal(llmos_utf8_encode(0x110000, o), 0);
    assert_int_equal(llmos_utf8_encode(UINT32_MAX, o), 0);
    /* every code point encodes to the shortest form the check accepts */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n = llmos_utf8_encode(cp, o);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            assert_int_equal(n, 0);
            continue;
        }
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n != want || llmos_utf8_check(o, n) != n) fail_msg("U+%04X: %zu bytes", (unsigned)cp, n);
    }
}

/* ---------------------------------------------------------------- tmpdir */

static void touch(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void test_tmpdir(void **state) {
    (void)state;
    char d[1024], keep[1024];
    llmos_error_t e;
    assert_int_equal(llmos_tmpdir_make("llmos-test-base", d, sizeof d, &e), 0);
    assert_int_equal(llmos_tmpdir_make("llmos-test-keep", keep, sizeof keep, &e), 0);
    assert_string_not_equal(d, keep);
    struct stat st;
    assert_int_equal(stat(d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a tree with a non-ASCII name, a deep chain and a link out of it */
    char p[4096];
    touch(d, "caf\xc3\xa9.txt");
    snprintf(p, sizeof p, "%s/a", d);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/a/b", d);
    assert_int_equal(mkdir(p, 0700), 0);
    touch(p, "deep");
    touch(keep, "target");
    char t[4096];
    snprintf(t, sizeof t, "%s/target", keep);
    snprintf(p, sizeof p, "%s/a/link", d);
    assert_int_equal(symlink(keep, p), 0); /* a link to a folder: never followed */
    assert_int_equal(llmos_tmpdir_remove(d, &e), 0);
    assert_int_equal(lstat(d, &st), -1);
    assert_int_equal(stat(t, &st), 0);               /* what the link pointed at survives */
    assert_int_equal(llmos_tmpdir_remove(d, &e), 0); /* already gone: fine */
    assert_int_equal(llmos_tmpdir_remove(keep, &e), 0);
    /* a plain file is removed too */
    assert_int_equal(llmos_tmpdir_make("llmos-test-base", d, sizeof d, &e), 0);
    touch(d, "f");
    snprintf(p, sizeof p, "%s/f", d);
    assert_int_equal(llmos_tmpdir_remove(p, &e), 0);
    assert_int_equal(llmos_tmpdir_remove(d, &e), 0);
    /* refused */
    assert_int_equal(llmos_tmpdir_remove("/", &e), LLMOS_EINVAL);
    assert_int_equal(llmos_tmpdir_remove("//", &e), LLMOS_EINVAL);
    assert_int_equal(llmos_tmpdir_remove("", &e), LLMOS_EINVAL);
    assert_int_equal(llmos_tmpdir_remove(NULL, &e), LLMOS_EINVAL);
    const char *badp[] = {"", "a/b", "..", "caf\xc3\xa9", "a b", NULL};
    for (size_t i = 0; i < sizeof badp / sizeof *badp; i++) {
        if (badp[i] && !strcmp(badp[i], "..")) continue; /* dots are allowed: ".." makes "..-XXXXXX" */
        assert_int_equal(llmos_tmpdir_make(badp[i], d, sizeof d, &e), LLMOS_EINVAL);
    }
    char longp[70];
    memset(longp, 'p', 65);
    longp[65] = '\0';
    assert_int_equal(llmos_tmpdir_make(longp, d, sizeof d, &e), LLMOS_EINVAL);
    char small[12];
    assert_int_equal(llmos_tmpdir_make("llmos-test-base", small, sizeof small, &e), LLMOS_ETOOBIG);
    /* $TMPDIR is used, and a missing one is an error naming it */
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent-llmos-tmp", 1);
    assert_int_equal(llmos_tmpdir_make("llmos-test-base", d, sizeof d, &e), LLMOS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent-llmos-tmp/llmos-test-base-"));
    if (saved)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_prefix),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_burst_and_labels),
        cmocka_unit_test(test_progress_summary),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_buf_append),
        cmocka_unit_test(test_buf_printf_and_take),
        cmocka_unit_test(test_vec),
        cmocka_unit_test(test_hash_values),
        cmocka_unit_test(test_map_u64),
        cmocka_unit_test(test_map_str),
        cmocka_unit_test(test_map_random),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_signed_and_narrow),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_tmpdir),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
