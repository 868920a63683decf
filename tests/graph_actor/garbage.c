/*
 * garbage.c — sends payloads that are not graph requests to the `graph`
 * actor of the node at argv[1] and checks each gets an error reply
 * (LLMOS_EFORMAT for undecodable bytes, LLMOS_EUNKNOWNTYPE for a type the
 * actor does not serve), then loads that break the load protocol (no
 * load_id, both data and a path, an unknown format, a lost chunk, a file
 * index out of turn, a commit with nothing sent, a strict load with a bad
 * line) and checks each is refused with the expected code and message —
 * none of them may change the store — then that the node still answers a
 * ping.  Exit 0 when all hold, 1 otherwise (the reason on stderr).
 */
#include "llmos/client.h"
#include "llmos/graph.pb-c.h"
#include "runtime/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int expect_error(llmos_client_t *c, uint32_t type, const void *data, size_t len, int want) {
    llmos_client_reply_t *reply = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_call(c, "graph", type, data, len, 5000, &reply, &err);
    int ok = rc == want && reply && reply->status == want;
    fprintf(stderr, "type 0x%x, %zu bytes: %s (%s)%s\n", type, len, rc ? err.msg : "no error",
            llmos_client_strerror(rc), ok ? "" : "  <- unexpected");
    llmos_client_reply_free(&reply);
    return ok ? 0 : 1;
}

/* Sends one GraphLoadRequest; want 0 (a GraphLoadResult back) or an error
 * code whose message contains `says`. */
static int load(llmos_client_t *c, const Llmos__GraphLoadRequest *q, int want, const char *says) {
    size_t len = llmos__graph_load_request__get_packed_size(q);
    uint8_t *buf = malloc(len + 1);
    if (!buf) return 1;
    llmos__graph_load_request__pack(q, buf);
    llmos_client_reply_t *reply = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_call(c, "graph", LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LOAD, buf, len, 5000, &reply, &err);
    free(buf);
    int ok = rc == want && (!says || (rc && strstr(err.msg, says)));
    if (ok && !rc) {
        Llmos__GraphLoadResult *r = llmos__graph_load_result__unpack(NULL, reply->len, reply->data);
        ok = r != NULL;
        if (r) llmos__graph_load_result__free_unpacked(r, NULL);
    }
    fprintf(stderr, "load '%s' file %u offset %llu%s: %s (%s)%s\n", q->load_id, q->file,
            (unsigned long long)q->offset, q->commit ? " commit" : "", rc ? err.msg : "ok", llmos_client_strerror(rc),
            ok ? "" : "  <- unexpected");
    llmos_client_reply_free(&reply);
    return ok ? 0 : 1;
}

static int bad_loads(llmos_client_t *c) {
    int bad = 0;
    static const char nt[] = "<http://x/a> <http://x/p> <http://x/b> .\n";
    Llmos__GraphLoadRequest q = LLMOS__GRAPH_LOAD_REQUEST__INIT;
    q.name = "x.nt";
    q.data.data = (uint8_t *)nt;
    q.data.len = sizeof nt - 1;
    bad += load(c, &q, LLMOS_EINVAL, "needs a load_id"); /* several messages, no id */
    q.load_id = "0123456789012345678901234567890123456789012345678901234567890123456789";
    bad += load(c, &q, LLMOS_EINVAL, "longer than");
    q.load_id = "g1";
    q.path = "/etc/hostname";
    bad += load(c, &q, LLMOS_EINVAL, "not both");
    q.path = "";
    q.format = "xml";
    bad += load(c, &q, LLMOS_EINVAL, "unknown format");
    q.format = "";
    q.load_id = "g2";
    bad += load(c, &q, 0, NULL);   /* a good first chunk... */
    q.offset = 999;                /* ...then one that skips bytes */
    bad += load(c, &q, LLMOS_EINVAL, "lost or repeated");
    q.offset = 0;
    q.commit = 1;
    q.data.len = 0;
    q.name = "";
    bad += load(c, &q, LLMOS_EINVAL, "nothing to load"); /* the broken load was dropped */
    q.commit = 0;
    q.load_id = "g3";
    q.file = 2; /* file 2 before files 0 and 1 */
    q.name = "x.nt";
    q.data.len = sizeof nt - 1;
    bad += load(c, &q, LLMOS_EINVAL, "file index 2, expected 0");
    /* One message, strict, a bad second line: refused with FILE:LINE. */
    static const char broken[] = "<http://x/a> <http://x/p> <http://x/c> .\n<http://x/a> <http://x/p> oops .\n";
    q.load_id = "";
    q.file = 0;
    q.commit = 1;
    q.strict = 1;
    q.name = "broken.nt";
    q.data.data = (uint8_t *)broken;
    q.data.len = sizeof broken - 1;
    bad += load(c, &q, LLMOS_EFORMAT, "broken.nt:2:");
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: garbage ENDPOINT\n");
        return 2;
    }
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t o = {0};
    if (llmos_client_connect(argv[1], &o, &c, &err) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], err.msg);
        return 1;
    }
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80, 0x01, 0x07};
    int bad = 0;
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY, junk, sizeof junk, LLMOS_EFORMAT);
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK, junk, sizeof junk, LLMOS_EFORMAT);
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_NEIGHBORS, junk, sizeof junk, LLMOS_EFORMAT);
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_PATH, junk, sizeof junk, LLMOS_EFORMAT);
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_STATS, junk, sizeof junk, LLMOS_EFORMAT);
    /* well-formed protobuf, broken SPARQL */
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY, "\x0a\x05SELEC", 7, LLMOS_EFORMAT);
    bad += expect_error(c, LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LOAD, junk, sizeof junk, LLMOS_EFORMAT);
    bad += expect_error(c, 0x2ff, junk, sizeof junk, LLMOS_EUNKNOWNTYPE);
    bad += bad_loads(c);
    uint64_t rtt;
    if (llmos_client_ping(c, 5000, &rtt, &err) != 0) {
        fprintf(stderr, "ping after garbage: %s\n", err.msg);
        bad++;
    }
    llmos_client_destroy(&c);
    return bad ? 1 : 0;
}
