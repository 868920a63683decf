/*
 * cmd_link.c — `llmos-graph link DB 'text' [--hops K] [--max-facts N]
 * [--format text|json]`.
 *
 * Opens the store read-only, builds the label index from one snapshot,
 * links the text and prints the mentions and facts: as text (one mention or
 * fact per line, the sentences last, ready to paste into a prompt) or as the
 * JSON object of graph_link_to_json.  Exit status 0, 1 on an error, 2 on a
 * usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/link.h"
#include "graph/store.h"
#include "runtime/base/parse.h"

int graph_cmd_link(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(f,
            "usage: llmos-graph link DB 'text' [--hops 0|1|2] [--max-facts N] [--format text|json]\n"
            "The graph entities the text mentions and the facts around them.\n"
            "  --hops 0|1|2     0: the facts between mentioned entities; 1 (default): also each\n"
            "                   mention's own triples; 2: also its neighbours'\n"
            "  --max-facts N    at most N facts (default 20; over %d: %d)\n"
            "  --format F       text (default: mention/fact lines, then the sentences) or json\n",
            GRAPH_LINK_FACTS_MAX, GRAPH_LINK_FACTS_MAX);
}

int graph_cmd_link(int argc, char **argv) {
    const char *db = NULL, *text = NULL, *format = "text";
    int64_t hops = 1, max_facts = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--hops") == 0 && i + 1 < argc) {
            if (llmos_parse_i64("--hops", argv[++i], 0, 2, &hops, NULL)) {
                fprintf(stderr, "llmos-graph link: --hops must be 0, 1 or 2\n");
                return 2;
            }
        } else if (strcmp(a, "--max-facts") == 0 && i + 1 < argc) {
            /* past GRAPH_LINK_FACTS_MAX it means "as many as allowed" */
            if (llmos_parse_i64("--max-facts", argv[++i], 1, 4294967295LL, &max_facts, NULL)) {
                fprintf(stderr, "llmos-graph link: --max-facts must be a positive number (over %d: %d)\n",
                        GRAPH_LINK_FACTS_MAX, GRAPH_LINK_FACTS_MAX);
                return 2;
            }
        } else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            format = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "llmos-graph link: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!db) {
            db = a;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr, "llmos-graph link: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int json = format && strcmp(format, "json") == 0;
    if (!db || !text || (!json && strcmp(format, "text") != 0)) {
        usage(stderr);
        return 2;
    }
    llmos_error_t err = {0};
    graph_store_t *store = NULL;
    graph_reader_t *r = NULL;
    graph_linker_t *l = NULL;
    graph_link_result_t res = {0};
    graph_store_options_t opt = {0};
    opt.read_only = 1;
    int rc = graph_store_open(db, &opt, &store, &err);
    if (!rc) rc = graph_reader_begin(store, &r, &err);
    if (!rc) rc = graph_linker_new(r, &l, &err);
    graph_link_opts_t lo = {.hops = (int)hops, .max_facts = (size_t)max_facts, .max_mentions = 0};
    if (!rc) rc = graph_link_text(l, r, text, strlen(text), &lo, &res, &err);
    if (!rc && json) {
        char *out = NULL;
        size_t len = 0;
        rc = graph_link_to_json(&res, text, strlen(text), &out, &len, &err);
        if (!rc) {
            fwrite(out, 1, len, stdout);
            fputc('\n', stdout);
        }
        free(out);
    } else if (!rc) {
        for (size_t i = 0; i < res.nmentions; i++) {
            const graph_link_mention_t *m = &res.mentions[i];
            printf("mention\t%zu\t%zu\t%.*s\t<%s>%s\n", m->start, m->end, (int)(m->end - m->start), text + m->start,
                   m->iri, m->candidates > 1 ? "\t(ambiguous)" : "");
        }
        for (size_t i = 0; i < res.nfacts; i++)
            printf("fact\t%d\t%s %s %s .\n", res.facts[i].hop, res.facts[i].s, res.facts[i].p, res.facts[i].o);
        for (size_t i = 0; i < res.nfacts; i++) printf("%s\n", res.facts[i].sentence);
    }
    if (!rc && fflush(stdout) != 0) rc = llmos_error_set(&err, LLMOS_EIO, "writing to stdout failed");
    if (rc) fprintf(stderr, "llmos-graph link: %s (%s)\n", err.msg, llmos_errname(rc));
    graph_link_result_deinit(&res);
    graph_linker_destroy(&l);
    graph_reader_end(&r);
    graph_store_close(&store);
    return rc ? 1 : 0;
}
