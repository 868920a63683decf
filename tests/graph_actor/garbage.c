/*
 * garbage.c — sends payloads that are not graph requests to the `graph`
 * actor of the node at argv[1] and checks each gets an error reply
 * (LLMOS_EFORMAT for undecodable bytes, LLMOS_EUNKNOWNTYPE for a type the
 * actor does not serve), then that the node still answers a ping.  Exit 0
 * when all hold, 1 otherwise (the reason on stderr).
 */
#include "llmos/client.h"
#include "llmos/graph.pb-c.h"
#include "runtime/base/err.h"

#include <stdio.h>
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
    bad += expect_error(c, 0x2ff, junk, sizeof junk, LLMOS_EUNKNOWNTYPE);
    uint64_t rtt;
    if (llmos_client_ping(c, 5000, &rtt, &err) != 0) {
        fprintf(stderr, "ping after garbage: %s\n", err.msg);
        bad++;
    }
    llmos_client_destroy(&c);
    return bad ? 1 : 0;
}
