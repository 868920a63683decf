/*
 * link_req.c — one GraphLinkRequest to the `graph` actor of a node, built
 * field by field, so a test can send what the CLI cannot: no hops at all
 * (the actor's default), hops 0 with hops_set, any max_facts.
 *
 *   link_req ENDPOINT TEXT [--hops N] [--max-facts N] [--format text|json]
 *
 * --hops sets hops and hops_set; without it neither is sent.  Prints the
 * reply's text on stdout as it came and "facts N" on stderr; exit 0 on a
 * GraphResult reply, 1 on an error reply (its message on stderr), 2 on a
 * usage error.
 */
#include "llmos/client.h"
#include "llmos/graph.pb-c.h"
#include "runtime/base/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_u32(const char *s, uint32_t *out) {
    return llmos_parse_u32("number", s, 0, UINT32_MAX, 0, out, NULL) ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: link_req ENDPOINT TEXT [--hops N] [--max-facts N] [--format text|json]\n");
        return 2;
    }
    Llmos__GraphLinkRequest q = LLMOS__GRAPH_LINK_REQUEST__INIT;
    q.text = argv[2];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--hops") == 0 && i + 1 < argc) {
            if (parse_u32(argv[++i], &q.hops)) return 2;
            q.hops_set = 1;
        } else if (strcmp(argv[i], "--max-facts") == 0 && i + 1 < argc) {
            if (parse_u32(argv[++i], &q.max_facts)) return 2;
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            q.format = argv[++i];
        } else {
            fprintf(stderr, "link_req: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    size_t len = llmos__graph_link_request__get_packed_size(&q);
    uint8_t *buf = malloc(len + 1);
    if (!buf) return 1;
    llmos__graph_link_request__pack(&q, buf);
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_opts_t o = {0};
    if (llmos_client_connect(argv[1], &o, &c, &err) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], err.msg);
        free(buf);
        return 1;
    }
    llmos_client_reply_t *reply = NULL;
    int rc =
        llmos_client_call(c, "graph", LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK, buf, len, 10000, &reply, &err);
    free(buf);
    int status = 1;
    if (rc) {
        fprintf(stderr, "link_req: %s (%s)\n", err.msg, llmos_client_strerror(rc));
    } else {
        Llmos__GraphResult *res = llmos__graph_result__unpack(NULL, reply->len, reply->data);
        if (!res) {
            fprintf(stderr, "link_req: the reply (%zu bytes) is not a GraphResult\n", reply->len);
        } else {
            fputs(res->text ? res->text : "", stdout);
            fprintf(stderr, "facts %llu\n", (unsigned long long)res->facts);
            llmos__graph_result__free_unpacked(res, NULL);
            status = fflush(stdout) == 0 ? 0 : 1;
        }
    }
    llmos_client_reply_free(&reply);
    llmos_client_destroy(&c);
    return status;
}
