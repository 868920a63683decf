/*
 * test_wire.c — unit tests of cluster/wire (envelope codec, batch framing,
 * client pseudo ids) and cluster/config (the key = value parser).
 */
#include "cluster/config.h"
#include "cluster/wire.h"
#include "llmos/envelope.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static rt_msg_t *sample_msg(size_t len) {
    uint8_t *payload = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)(i * 7 + 1);
    rt_msg_init_t in = {0};
    in.to = (rt_ref_t){0x1234, 0, "sink"};
    in.from = (rt_ref_t){0, 42, NULL};
    in.type = 0xF10;
    in.flags = RT_MSG_REPLY;
    in.corr = 0xdeadbeefcafeULL;
    in.deadline_ms = 1700000000123ULL;
    in.trace_id = 99;
    in.status = LLMOS_ENOTFOUND;
    in.error = "no such thing";
    in.tenant = "acme";
    in.data = payload;
    in.len = len;
    rt_msg_t *m = rt_msg_new(&in);
    free(payload);
    return m;
}

static void round_trip(void **state) {
    (void)state;
    cl_scratch_t sc;
    assert_int_equal(cl_scratch_init(&sc, 4096), 0);
    size_t sizes[] = {0, 1, 64, 5000, 300000}; /* 300000 overflows the arena into malloc */
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        rt_msg_t *m = sample_msg(sizes[k]);
        llmos_buf_t b;
        llmos_buf_init(&b);
        assert_int_equal(cl_envelope_append(&b, m, 0x777), 0);
        assert_int_equal(b.len, cl_envelope_size(m, 0x777));
        rt_msg_t *d = NULL;
        llmos_error_t err;
        assert_int_equal(
            cl_envelope_decode((const uint8_t *)b.data, b.len, CL_MAX_FRAME_DEFAULT, &sc, &d, &err), 0);
        assert_int_equal(d->to.node, 0x1234);
        assert_string_equal(d->to.name, "sink");
        assert_int_equal(d->from.node, 0x777); /* from.node 0 is written as the sender's id */
        assert_int_equal(d->from.id, 42);
        assert_null(d->from.name);
        assert_int_equal(d->type, 0xF10);
        assert_int_equal(d->flags, RT_MSG_REPLY);
        assert_int_equal(d->corr, 0xdeadbeefcafeULL);
        assert_int_equal(d->deadline_ms, 1700000000123ULL);
        assert_int_equal(d->trace_id, 99);
        assert_int_equal(d->status, LLMOS_ENOTFOUND);
        assert_string_equal(d->error, "no such thing");
        assert_string_equal(d->tenant, "acme");
        assert_int_equal(d->len, sizes[k]);
        if (sizes[k]) assert_memory_equal(d->data, m->data, sizes[k]);
        rt_msg_free(d);
        rt_msg_free(m);
        llmos_buf_deinit(&b);
    }
    cl_scratch_deinit(&sc);
}

static void decode_rejects_bad_input(void **state) {
    (void)state;
    cl_scratch_t sc;
    assert_int_equal(cl_scratch_init(&sc, 4096), 0);
    rt_msg_t *m = sample_msg(100), *d = (rt_msg_t *)1;
    llmos_buf_t b;
    llmos_buf_init(&b);
    assert_int_equal(cl_envelope_append(&b, m, 1), 0);
    llmos_error_t err;
    /* Over the cap: refused before decoding. */
    assert_int_equal(cl_envelope_decode((const uint8_t *)b.data, b.len, 50, &sc, &d, &err), LLMOS_ETOOBIG);
    assert_null(d);
    assert_non_null(strstr(err.msg, "cap"));
    /* Every truncation either fails cleanly or (never) yields a message. */
    int failures = 0;
    for (size_t cut = 0; cut < b.len; cut++) {
        int rc = cl_envelope_decode((const uint8_t *)b.data, cut, CL_MAX_FRAME_DEFAULT, &sc, &d, &err);
        if (rc == 0) {
            rt_msg_free(d); /* a prefix that happens to be a valid envelope */
        } else {
            assert_true(rc == LLMOS_EFORMAT);
            assert_null(d);
            failures++;
        }
    }
    assert_true(failures > (int)b.len / 2);
    /* Random bytes. */
    uint8_t junk[512];
    srand(7);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)rand();
        int rc = cl_envelope_decode(junk, 1 + (size_t)rand() % sizeof junk, CL_MAX_FRAME_DEFAULT, &sc, &d, &err);
        if (rc == 0) rt_msg_free(d);
        else assert_true(rc == LLMOS_EFORMAT);
    }
    /* A well-formed envelope that names no actor. */
    rt_msg_init_t in = {.from = {0, 1, NULL}, .type = 2};
    rt_msg_t *none = rt_msg_new(&in);
    llmos_buf_t b2;
    llmos_buf_init(&b2);
    assert_int_equal(cl_envelope_append(&b2, none, 1), 0);
    assert_int_equal(
        cl_envelope_decode((const uint8_t *)b2.data, b2.len, CL_MAX_FRAME_DEFAULT, &sc, &d, &err),
        LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "'to'"));
    rt_msg_free(none);
    llmos_buf_deinit(&b2);
    rt_msg_free(m);
    llmos_buf_deinit(&b);
    cl_scratch_deinit(&sc);
}

/* The hand-written codec and protobuf-c must agree in both directions. */
static void agrees_with_protobuf_c(void **state) {
    (void)state;
    cl_scratch_t sc;
    assert_int_equal(cl_scratch_init(&sc, 4096), 0);
    rt_msg_t *m = sample_msg(300);
    llmos_buf_t b;
    llmos_buf_init(&b);
    assert_int_equal(cl_envelope_append(&b, m, 0x777), 0);
    Llmos__Envelope *e = llmos__envelope__unpack(NULL, b.len, (const uint8_t *)b.data);
    assert_non_null(e);
    assert_int_equal(e->to->node, 0x1234);
    assert_string_equal(e->to->name, "sink");
    assert_int_equal(e->from->node, 0x777);
    assert_int_equal(e->from->id, 42);
    assert_int_equal(e->type, 0xF10);
    assert_int_equal(e->correlation_id, 0xdeadbeefcafeULL);
    assert_int_equal(e->deadline_ms, 1700000000123ULL);
    assert_int_equal(e->trace_id, 99);
    assert_true(e->is_reply);
    assert_int_equal(e->status, LLMOS_ENOTFOUND);
    assert_string_equal(e->error, "no such thing");
    assert_string_equal(e->tenant, "acme");
    assert_int_equal(e->payload.len, 300);
    assert_memory_equal(e->payload.data, m->data, 300);
    /* And back: protobuf-c's bytes decode by hand to the same message. */
    size_t n = llmos__envelope__get_packed_size(e);
    assert_int_equal(n, b.len); /* same canonical encoding */
    uint8_t *buf = malloc(n + 16);
    llmos__envelope__pack(e, buf);
    assert_memory_equal(buf, b.data, n);
    /* Unknown fields (a newer sender) are skipped: varint field 20, bytes field 21, fixed32 field 22. */
    uint8_t extra[] = {0xa0, 0x01, 0x05, 0xaa, 0x01, 0x02, 'h', 'i', 0xb5, 0x01, 1, 2, 3, 4};
    memcpy(buf + n, extra, sizeof extra);
    rt_msg_t *d;
    llmos_error_t err;
    assert_int_equal(cl_envelope_decode(buf, n + sizeof extra, CL_MAX_FRAME_DEFAULT, &sc, &d, &err), 0);
    assert_int_equal(d->corr, m->corr);
    assert_int_equal(d->len, 300);
    assert_string_equal(d->to.name, "sink");
    rt_msg_free(d);
    /* A known field with the wrong wire type is refused. */
    uint8_t wrong[] = {0x0a, 0x02, 0x08, 0x01, 0x1a, 0x01, 'x'}; /* to{node 1}, type as bytes */
    assert_int_equal(cl_envelope_decode(wrong, sizeof wrong, CL_MAX_FRAME_DEFAULT, &sc, &d, &err), LLMOS_EFORMAT);
    assert_non_null(strstr(err.msg, "field 3"));
    /* A NUL inside a name is refused (it would silently truncate the name). */
    uint8_t nul[] = {0x0a, 0x04, 0x1a, 0x02, 'a', 0};
    assert_int_equal(cl_envelope_decode(nul, sizeof nul, CL_MAX_FRAME_DEFAULT, &sc, &d, &err), LLMOS_EFORMAT);
    free(buf);
    llmos__envelope__free_unpacked(e, NULL);
    rt_msg_free(m);
    llmos_buf_deinit(&b);
    cl_scratch_deinit(&sc);
}

/* Mutated valid envelopes and batches: every outcome is a message or a clean
 * error (the sanitizer build catches any out-of-bounds read). */
static void mutations_never_crash(void **state) {
    (void)state;
    cl_scratch_t sc;
    assert_int_equal(cl_scratch_init(&sc, 4096), 0);
    rt_msg_t *m = sample_msg(40);
    llmos_buf_t b;
    llmos_buf_init(&b);
    assert_int_equal(cl_batch_append(&b, m, 3), 0);
    assert_int_equal(cl_batch_append(&b, m, 3), 0);
    uint8_t *copy = malloc(b.len);
    srand(99);
    int ok = 0, bad = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, b.data, b.len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++) copy[(size_t)rand() % b.len] = (uint8_t)rand();
        size_t len = (size_t)rand() % (b.len + 1), pos = 0;
        const uint8_t *env;
        size_t env_len;
        llmos_error_t err;
        int rc;
        while ((rc = cl_batch_next(copy, len, &pos, 1 << 20, &env, &env_len, &err)) == 1) {
            rt_msg_t *d = NULL;
            if (cl_envelope_decode(env, env_len, 1 << 20, &sc, &d, &err) == 0) {
                ok++;
                rt_msg_free(d);
            } else {
                assert_null(d);
                bad++;
            }
        }
        assert_true(rc == 0 || rc == LLMOS_EFORMAT || rc == LLMOS_ETOOBIG);
    }
    assert_true(ok > 0 && bad > 0);
    free(copy);
    rt_msg_free(m);
    llmos_buf_deinit(&b);
    cl_scratch_deinit(&sc);
}

static void batch_framing(void **state) {
    (void)state;
    llmos_buf_t b;
    llmos_buf_init(&b);
    for (int i = 0; i < 1000; i++) {
        rt_msg_t *m = sample_msg((size_t)(i % 200));
        assert_int_equal(cl_batch_append(&b, m, 5), 0);
        rt_msg_free(m);
    }
    cl_scratch_t sc;
    assert_int_equal(cl_scratch_init(&sc, 4096), 0);
    size_t pos = 0;
    int n = 0;
    const uint8_t *env;
    size_t env_len;
    llmos_error_t err;
    int rc;
    while ((rc = cl_batch_next((const uint8_t *)b.data, b.len, &pos, CL_MAX_FRAME_DEFAULT, &env, &env_len,
                               &err)) == 1) {
        rt_msg_t *d;
        assert_int_equal(cl_envelope_decode(env, env_len, CL_MAX_FRAME_DEFAULT, &sc, &d, &err), 0);
        assert_int_equal(d->len, (size_t)(n % 200));
        rt_msg_free(d);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1000);
    /* Truncated batch: the last length runs past the end. */
    pos = 0;
    n = 0;
    while ((rc = cl_batch_next((const uint8_t *)b.data, b.len - 3, &pos, CL_MAX_FRAME_DEFAULT, &env, &env_len,
                               &err)) == 1)
        n++;
    assert_int_equal(rc, LLMOS_EFORMAT);
    assert_int_equal(n, 999);
    assert_non_null(strstr(err.msg, "offset"));
    /* Wrong tag. */
    uint8_t bad[] = {0x12, 0x01, 0x00};
    pos = 0;
    assert_int_equal(cl_batch_next(bad, sizeof bad, &pos, CL_MAX_FRAME_DEFAULT, &env, &env_len, &err), LLMOS_EFORMAT);
    /* Length over the cap. */
    uint8_t big[] = {0x0a, 0xff, 0xff, 0xff, 0x7f};
    pos = 0;
    assert_int_equal(cl_batch_next(big, sizeof big, &pos, 1000, &env, &env_len, &err), LLMOS_ETOOBIG);
    cl_scratch_deinit(&sc);
    llmos_buf_deinit(&b);
}

static void client_ids(void **state) {
    (void)state;
    uint8_t rid[7] = {0, 1, 2, 3, 4, 5, 6}, back[7];
    for (size_t len = 1; len <= 7; len++) {
        uint64_t id = cl_client_node_from_rid(rid, len);
        assert_true(id & CL_CLIENT_NODE_BIT);
        assert_int_equal(cl_client_node_to_rid(id, back), len);
        assert_memory_equal(back, rid, len);
    }
    assert_int_equal(cl_client_node_from_rid(rid, 0), 0);
    uint8_t long_rid[8] = {0};
    assert_int_equal(cl_client_node_from_rid(long_rid, 8), 0);
    assert_int_equal(cl_client_node_to_rid(12345, back), 0); /* a real node id */
    /* Different routing ids never collide (length is part of the id). */
    assert_true(cl_client_node_from_rid(rid, 3) != cl_client_node_from_rid(rid, 4));
}

static void config_parses(void **state) {
    (void)state;
    cl_config_t c;
    cl_config_init(&c);
    assert_string_equal(c.listen, "tcp://127.0.0.1:7070");
    assert_int_equal(c.max_frame, 64u << 20);
    const char *text = "# a node\n"
                       "listen = tcp://127.0.0.1:7100   # trailing comment\n"
                       "\n"
                       "node_name=alpha\n"
                       "  peers = tcp://127.0.0.1:7101, tcp://127.0.0.1:7102\n"
                       "peers = tcp://127.0.0.1:7101\n" /* duplicate: ignored */
                       "peer = tcp://10.0.0.1:7000\n"
                       "workers = 3\n"
                       "max_frame = 1M\n"
                       "log_level = debug\n"
                       "node_id = 0x2a\n"
                       "heartbeat_ms = 100\n"
                       "graph = /srv/kg/umls db\n";
    llmos_error_t err;
    assert_int_equal(cl_config_parse(&c, text, "t.conf", &err), 0);
    assert_string_equal(c.listen, "tcp://127.0.0.1:7100");
    assert_string_equal(c.node_name, "alpha");
    assert_int_equal(c.npeers, 3);
    assert_string_equal(c.peers[1], "tcp://127.0.0.1:7102");
    assert_string_equal(c.peers[2], "tcp://10.0.0.1:7000");
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.max_frame, 1u << 20);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.node_id, 42);
    assert_int_equal(c.heartbeat_ms, 100);
    assert_string_equal(c.graph, "/srv/kg/umls db");
}

/* `graph = DB`: off by default; the last setting wins (llmosd applies
 * --graph after the file, so the flag wins); bad values name file:line. */
static void config_graph(void **state) {
    (void)state;
    cl_config_t c;
    cl_config_init(&c);
    assert_string_equal(c.graph, "");
    llmos_error_t err = {0};
    assert_int_equal(cl_config_parse(&c, "graph = kg/a\ngraph=kg/b # the second\n", "g.conf", &err), 0);
    assert_string_equal(c.graph, "kg/b");
    assert_int_equal(cl_config_set(&c, "graph", "/flag/db", "--graph", &err), 0);
    assert_string_equal(c.graph, "/flag/db");
    assert_int_equal(cl_config_parse(&c, "workers = 1\ngraph =\n", "g.conf", &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "g.conf:2: graph"));
    char longpath[CL_PATH_MAX + 8];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    assert_int_equal(cl_config_set(&c, "graph", longpath, "g.conf:3", &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "g.conf:3: graph is longer than"));
    assert_string_equal(c.graph, "/flag/db");
}

static void config_errors_name_line(void **state) {
    (void)state;
    struct {
        const char *text, *want;
    } cases[] = {
        {"listen = tcp://a:1\nbogus line\n", "t.conf:2: expected 'key = value'"},
        {"\n\ncolour = blue\n", "t.conf:3: unknown key 'colour'"},
        {"workers = many\n", "t.conf:1: workers"},
        {"max_frame = 12Q\n", "t.conf:1: max_frame"},
        {"listen = http://x\n", "t.conf:1: endpoint"},
        {"listen = tcp://host\n", "t.conf:1: endpoint"},
        {"peers = tcp://a:1,,tcp://b:2\n", "t.conf:1: empty entry"},
        {"log_level = loud\n", "t.conf:1: log_level"},
        {"node_id = 0x8000000000000000\n", "t.conf:1: node_id"},
        {"node_name =\n", "t.conf:1: node_name has no value"},
        {"= 3\n", "t.conf:1: missing key"},
        {"workers = -1\n", "t.conf:1: workers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_config_t c;
        cl_config_init(&c);
        llmos_error_t err = {0};
        if (cl_config_parse(&c, cases[i].text, "t.conf", &err) != LLMOS_EINVAL) fail_msg("case %zu accepted", i);
        if (!strstr(err.msg, cases[i].want)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].want);
    }
}

static void config_file(void **state) {
    (void)state;
    char path[] = "/tmp/llmos_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "listen = tcp://127.0.0.1:0\nworkers = 1\nthis is wrong\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cl_config_t c;
    cl_config_init(&c);
    llmos_error_t err;
    assert_int_equal(cl_config_load(&c, path, &err), LLMOS_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "%s:3:", path);
    assert_non_null(strstr(err.msg, want));
    unlink(path);
    assert_int_equal(cl_config_load(&c, path, &err), LLMOS_EIO);
    assert_non_null(strstr(err.msg, path));
}

/* Numbers and sizes in the config go through runtime/base/parse.h (its own
 * edge cases are in tests/base): suffixes where a size is meant, hex, the
 * bounds, and messages naming file, line, key and value. */
static void parse_sizes(void **state) {
    (void)state;
    cl_config_t c;
    cl_config_init(&c);
    llmos_error_t err;
    assert_int_equal(cl_config_set(&c, "max_frame", "64M", "t.conf:1", &err), 0);
    assert_int_equal(c.max_frame, 64u << 20);
    assert_int_equal(cl_config_set(&c, "task_input_max", "2KiB", "t.conf:2", &err), 0);
    assert_int_equal(c.task_input_max, 2048);
    assert_int_equal(cl_config_set(&c, "max_frame", "4G", "t.conf:3", &err), 0);
    assert_int_equal(cl_config_set(&c, "max_frame", "5G", "t.conf:4", &err), LLMOS_EINVAL);
    assert_string_equal(err.msg, "t.conf:4: max_frame '5G' is not a size from 1K to 4G (a whole number, "
                                 "optionally with K, M or G)");
    assert_int_equal(cl_config_set(&c, "node_id", "0x10", "t.conf:5", &err), 0);
    assert_int_equal(c.node_id, 16);
    assert_int_equal(cl_config_set(&c, "node_id", "010", "t.conf:6", &err), 0); /* decimal, not octal */
    assert_int_equal(c.node_id, 10);
    assert_int_equal(cl_config_set(&c, "node_id", "9223372036854775808", "t.conf:7", &err), LLMOS_EINVAL);
    assert_non_null(strstr(err.msg, "t.conf:7: node_id '9223372036854775808' is not a whole number"));
    assert_int_equal(cl_config_set(&c, "workers", "10K", "t.conf:8", &err), LLMOS_EINVAL); /* no suffix */
    assert_int_equal(cl_config_set(&c, "heartbeat_ms", "", "t.conf:9", &err), LLMOS_EINVAL);
    assert_int_equal(cl_config_set(&c, "heartbeat_ms", "-5", "t.conf:10", &err), LLMOS_EINVAL);
    assert_int_equal(cl_config_set(&c, "heartbeat_ms", "9", "t.conf:11", &err), LLMOS_EINVAL);
    assert_string_equal(err.msg, "t.conf:11: heartbeat_ms '9' is not a whole number from 10 to 4294967295 "
                                 "(decimal or 0x hexadecimal)");
    assert_int_equal(cl_config_set(&c, "queue_limit", "99999999999999999999", "t.conf:12", &err),
                     LLMOS_EINVAL);
    assert_int_equal(c.heartbeat_ms, 250); /* unchanged by the failures */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),      cmocka_unit_test(decode_rejects_bad_input),
        cmocka_unit_test(agrees_with_protobuf_c), cmocka_unit_test(mutations_never_crash),
        cmocka_unit_test(batch_framing),   cmocka_unit_test(client_ids),
        cmocka_unit_test(config_parses),   cmocka_unit_test(config_errors_name_line),
        cmocka_unit_test(config_file),     cmocka_unit_test(parse_sizes),
        cmocka_unit_test(config_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
