/*
 * llmos_graph.c — the `llmos-graph` tool (what `llmos graph ...` runs):
 *
 *   llmos-graph load DB FILE... [--format nt|ttl|tsv] [--base IRI] [--strict]
 *                               [--mem-budget MiB] [--tmp DIR] [--quiet]
 *   llmos-graph stats DB [--distinct]
 *   llmos-graph dump DB
 *   llmos-graph check DB        (invariants: orderings agree, counts right)
 *   llmos-graph neighbors DB NODE [--hops K] [--dir out|in|both] [--max-edges N]
 *   llmos-graph path DB A B [--max-hops K] [--dir out|in|both]
 *   llmos-graph query DB 'SPARQL' ...   (graph/tools/cmd_query.c)
 *   llmos-graph link DB 'text' ...      (graph/tools/cmd_link.c)
 *
 * NODE, A and B are a term in N-Triples syntax (<iri>, _:b, "lit") or a bare
 * name resolved under the store's base IRI (the one its TSV loads used).
 * Triples print as N-Triples on stdout; messages go to stderr.  Exit codes:
 * 0 ok, 1 failure (message on stderr), 2 usage.  `llmos-graph --help`,
 * `llmos-graph help [COMMAND]` and `llmos-graph COMMAND --help` print usage
 * on stdout and exit 0.
 *
 * A load into a DB that does not exist yet creates it; when that load fails
 * (a missing file, a strict load refused, ...) nothing was committed (one
 * transaction) and what it created is removed again: the directory when it
 * made it, else the LMDB files it made in it.  An existing store is never
 * touched by a failed load.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/load.h"
#include "graph/store.h"
#include "graph/walk.h"
#include "runtime/base/parse.h"

#ifdef LLMOS_GRAPH_HAVE_QUERY
int graph_cmd_query(int argc, char **argv);
#endif
#ifdef LLMOS_GRAPH_HAVE_LINK
int graph_cmd_link(int argc, char **argv);
#endif

static void usage(FILE *f) {
    fputs("usage: llmos-graph COMMAND DB ...\n"
          "  load DB FILE... [--format nt|ttl|tsv] [--base IRI] [--strict] [--mem-budget MiB]\n"
          "                  [--tmp DIR] [--quiet]\n"
          "  stats DB [--distinct]        triples, terms, per-predicate counts\n"
          "  dump DB                      all triples as N-Triples on stdout\n"
          "  check DB                     verify the orderings and counts agree\n"
          "  neighbors DB NODE [--hops K] [--dir out|in|both] [--max-edges N]\n"
          "  path DB A B [--max-hops K] [--dir out|in|both]\n"
          "  query DB 'SPARQL' [--format tsv|json] [--timeout MS] [--max-result-bytes SIZE] [--explain]\n"
          "  link DB 'text' [--hops 0|1|2] [--max-facts N] [--format text|json]\n"
          "NODE: <iri>, _:label, \"literal\" or a name under the graph's base IRI\n"
          "llmos-graph COMMAND --help: that command's options\n",
          f);
}

/* Per-command usage, for `llmos-graph COMMAND --help` (query and link print
 * their own). */
static const struct {
    const char *cmd, *text;
} cmd_usage[] = {
    {"load", "usage: llmos-graph load DB FILE... [--format nt|ttl|tsv] [--base IRI] [--strict]\n"
             "                        [--mem-budget MiB] [--tmp DIR] [--quiet]\n"
             "Loads the files into DB (created when missing) in one transaction.\n"
             "  --format F        nt, ttl or tsv (default: from each file's name: .nt, .ttl, .tsv/.txt)\n"
             "  --base IRI        base IRI of TSV names and Turtle (default http://llmos.local/kg/)\n"
             "  --strict          any malformed line refuses the whole load\n"
             "  --mem-budget MiB  memory for sorting (default 1024)\n"
             "  --tmp DIR         where sorted runs spill (default: DB)\n"
             "  --quiet           no progress line and no summary\n"
             "A failed load leaves DB as it was (a DB it created is removed again).\n"},
    {"stats", "usage: llmos-graph stats DB [--distinct]\n"
              "Triples, terms, predicates and per-predicate counts.\n"
              "  --distinct   also count distinct subjects and objects (a full scan)\n"},
    {"dump", "usage: llmos-graph dump DB\nEvery triple as N-Triples on stdout.\n"},
    {"check", "usage: llmos-graph check DB\nVerifies that the three orderings and the counts agree.\n"},
    {"neighbors", "usage: llmos-graph neighbors DB NODE [--hops K] [--dir out|in|both] [--max-edges N]\n"
                  "The edges within K hops (1..16, default 1) of NODE as N-Triples.\n"
                  "  --dir D         follow out, in or both (default) directions\n"
                  "  --max-edges N   stop after N edges (default 10000)\n"
                  "NODE: <iri>, _:label, \"literal\" or a name under the graph's base IRI\n"},
    {"path", "usage: llmos-graph path DB A B [--max-hops K] [--dir out|in|both]\n"
             "A shortest path from A to B of at most K hops (1..64, default 6) as N-Triples.\n"
             "A, B: <iri>, _:label, \"literal\" or a name under the graph's base IRI\n"},
};

static const char *usage_of(const char *cmd) {
    if (!strcmp(cmd, "neighbours")) cmd = "neighbors";
    for (size_t i = 0; i < sizeof cmd_usage / sizeof cmd_usage[0]; i++)
        if (!strcmp(cmd_usage[i].cmd, cmd)) return cmd_usage[i].text;
    return NULL;
}

static int fail(const char *cmd, const llmos_error_t *e) {
    fprintf(stderr, "llmos-graph %s: %s\n", cmd, e->msg[0] ? e->msg : llmos_strerror(e->code));
    return 1;
}

static int parse_dir(const char *s, graph_dir *d) {
    if (!strcmp(s, "out")) *d = GRAPH_DIR_OUT;
    else if (!strcmp(s, "in")) *d = GRAPH_DIR_IN;
    else if (!strcmp(s, "both")) *d = GRAPH_DIR_BOTH;
    else return -1;
    return 0;
}

static int open_store(const char *db, int read_only, graph_store_t **s, llmos_error_t *e) {
    graph_store_options_t o = {.read_only = read_only, .create = !read_only};
    return graph_store_open(db, &o, s, e);
}

/* ------------------------------------------------------------- load --- */

static int cmd_load(int argc, char **argv) {
    graph_load_options_t o = {0};
    const char *db = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    int nf = 0;
    llmos_error_t e = {0};
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (!strcmp(a, "--format") && i + 1 < argc) {
            if (graph_format_parse(argv[++i], &o.format, &e)) {
                free(files);
                fprintf(stderr, "llmos-graph load: %s\n", e.msg);
                return 2;
            }
        } else if (!strcmp(a, "--base") && i + 1 < argc) {
            o.base = argv[++i];
        } else if (!strcmp(a, "--strict")) {
            o.strict = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--tmp") && i + 1 < argc) {
            o.tmp_dir = argv[++i];
        } else if (!strcmp(a, "--mem-budget") && i + 1 < argc) {
            llmos_error_t pe;
            if (llmos_parse_u64("--mem-budget (MiB)", argv[++i], 1, 1ULL << 30, 0, &v, &pe)) {
                free(files);
                fprintf(stderr, "llmos-graph load: %s\n", pe.msg);
                return 2;
            }
            o.mem_budget = v << 20;
        } else if (a[0] == '-' && a[1] == '-') {
            free(files);
            fprintf(stderr, "llmos-graph load: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!db) {
            db = a;
        } else {
            files[nf++] = a;
        }
    }
    if (!db || nf == 0) {
        free(files);
        usage(stderr);
        return 2;
    }
    /* What is there before the load, so a failed one removes only what it made. */
    char data_path[4096], lock_path[4096];
    if (snprintf(data_path, sizeof data_path, "%s/data.mdb", db) >= (int)sizeof data_path ||
        snprintf(lock_path, sizeof lock_path, "%s/lock.mdb", db) >= (int)sizeof lock_path) {
        free(files);
        fprintf(stderr, "llmos-graph load: the path %s is too long\n", db);
        return 1;
    }
    struct stat st;
    int dir_new = stat(db, &st) != 0 && errno == ENOENT;
    int store_new = dir_new || (stat(data_path, &st) != 0 && errno == ENOENT);
    graph_store_t *s = NULL;
    /* A load writes through the file mapping (MDB_WRITEMAP): its resident
     * memory stays within the budget however large the store grows. */
    graph_store_options_t so = {.create = 1, .write_map = 1};
    int rc = graph_store_open(db, &so, &s, &e);
    graph_load_report_t rep;
    if (!rc) rc = graph_load_files(s, files, nf, &o, &rep, &e);
    graph_store_close(&s);
    free(files);
    if (rc && store_new) {
        /* Nothing was committed (one transaction): the new store is empty. */
        if ((unlink(data_path) != 0 && errno != ENOENT) || (unlink(lock_path) != 0 && errno != ENOENT) ||
            (dir_new && rmdir(db) != 0 && errno != ENOENT))
            fprintf(stderr, "llmos-graph load: could not remove the new store %s again: %s\n", db,
                    strerror(errno));
    }
    if (rc) return fail("load", &e);
    return 0;
}

/* ------------------------------------------------------------ stats --- */

typedef struct pstat_ctx {
    graph_reader_t *r;
    llmos_buf_t buf;
} pstat_ctx_t;

static int print_pred(void *ctx, graph_id_t p, uint64_t count) {
    pstat_ctx_t *c = ctx;
    llmos_error_t e;
    llmos_buf_clear(&c->buf);
    int rc = graph_term_append_id(c->r, p, &c->buf, &e);
    if (rc) return rc;
    printf("%s\t%llu\n", c->buf.data, (unsigned long long)count);
    return 0;
}

static int cmd_stats(int argc, char **argv) {
    const char *db = NULL;
    int distinct = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--distinct")) distinct = 1;
        else if (argv[i][0] == '-') { usage(stderr); return 2; }
        else if (!db) db = argv[i];
        else { usage(stderr); return 2; }
    }
    if (!db) { usage(stderr); return 2; }
    llmos_error_t e = {0};
    graph_store_t *s = NULL;
    graph_reader_t *r = NULL;
    graph_stats_t st;
    int rc = open_store(db, 1, &s, &e);
    if (!rc) rc = graph_reader_begin(s, &r, &e);
    if (!rc) rc = graph_store_stats(r, &st, &e);
    if (!rc) {
        printf("triples\t%llu\nterms\t%llu\npredicates\t%llu\n", (unsigned long long)st.triples,
               (unsigned long long)st.terms, (unsigned long long)st.predicates);
        if (distinct) {
            uint64_t ns = 0, no = 0;
            rc = graph_store_distinct(r, 0, &ns, &e);
            if (!rc) rc = graph_store_distinct(r, 2, &no, &e);
            if (!rc) printf("subjects\t%llu\nobjects\t%llu\n", (unsigned long long)ns, (unsigned long long)no);
        }
    }
    pstat_ctx_t c = {r, LLMOS_BUF_INIT};
    if (!rc) {
        printf("# predicate\ttriples\n");
        rc = graph_store_predicates(r, print_pred, &c, &e);
    }
    llmos_buf_deinit(&c.buf);
    graph_reader_end(&r);
    graph_store_close(&s);
    if (rc) return fail("stats", &e);
    return 0;
}

/* ------------------------------------------------- triples printing --- */

typedef struct printer {
    graph_reader_t *r;
    llmos_buf_t buf[3];
    graph_id_t last[3];   /* ids whose text is in buf[i] */
    llmos_error_t *e;
} printer_t;

static int fmt_pos(printer_t *p, int i, graph_id_t id) {
    if (p->last[i] == id && id) return 0;
    llmos_buf_clear(&p->buf[i]);
    int rc = graph_term_append_id(p->r, id, &p->buf[i], p->e);
    p->last[i] = rc ? 0 : id;
    return rc;
}

static int print_triple(printer_t *p, const graph_triple_t *t, FILE *out) {
    int rc = fmt_pos(p, 0, t->s);
    if (!rc) rc = fmt_pos(p, 1, t->p);
    if (!rc) rc = fmt_pos(p, 2, t->o);
    if (rc) return rc;
    fputs(p->buf[0].data, out);
    putc(' ', out);
    fputs(p->buf[1].data, out);
    putc(' ', out);
    fputs(p->buf[2].data, out);
    fputs(" .\n", out);
    return 0;
}

static int printer_init(printer_t *p, graph_reader_t *r, llmos_error_t *e) {
    memset(p, 0, sizeof *p);
    p->r = r;
    p->e = e;
    for (int i = 0; i < 3; i++)
        if (llmos_buf_reserve(&p->buf[i], 512)) return llmos_error_set(e, LLMOS_ENOMEM, "printer");
    return 0;
}

static void printer_deinit(printer_t *p) {
    for (int i = 0; i < 3; i++)
        llmos_buf_deinit(&p->buf[i]);
}

static int cmd_check(int argc, char **argv) {
    if (argc != 2) { usage(stderr); return 2; }
    llmos_error_t e = {0};
    graph_store_t *s = NULL;
    graph_reader_t *r = NULL;
    uint64_t n[3] = {0};
    int rc = open_store(argv[1], 1, &s, &e);
    if (!rc) rc = graph_reader_begin(s, &r, &e);
    if (!rc) rc = graph_store_check(r, n, &e);
    graph_reader_end(&r);
    graph_store_close(&s);
    if (rc) return fail("check", &e);
    printf("ok\tspo %llu\tpos %llu\tosp %llu\n", (unsigned long long)n[0], (unsigned long long)n[1],
           (unsigned long long)n[2]);
    return 0;
}

static int cmd_dump(int argc, char **argv) {
    if (argc != 2) { usage(stderr); return 2; }
    llmos_error_t e = {0};
    graph_store_t *s = NULL;
    graph_reader_t *r = NULL;
    printer_t pr = {0};
    int rc = open_store(argv[1], 1, &s, &e);
    if (!rc) rc = graph_reader_begin(s, &r, &e);
    if (!rc) rc = printer_init(&pr, r, &e);
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    if (!rc) {
        graph_iter_t it;
        graph_triple_t t;
        rc = graph_store_match(r, 0, 0, 0, &it, &e);
        while (!rc && (rc = graph_iter_next(&it, &t, &e)) == 1) rc = print_triple(&pr, &t, stdout);
        graph_iter_close(&it);
    }
    if (fflush(stdout) && !rc) rc = llmos_error_set(&e, LLMOS_EIO, "writing stdout");
    printer_deinit(&pr);
    graph_reader_end(&r);
    graph_store_close(&s);
    if (rc < 0) return fail("dump", &e);
    return 0;
}

/* ------------------------------------------------------ neighbours --- */

typedef struct nb_ctx {
    printer_t *pr;
} nb_ctx_t;

static int on_edge(void *ctx, const graph_triple_t *t, unsigned hop) {
    nb_ctx_t *c = ctx;
    return print_triple(c->pr, t, stdout);
}

static int cmd_neighbors(int argc, char **argv) {
    const char *pos[2] = {0};
    int np = 0;
    graph_walk_options_t o = {.hops = 1};
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        llmos_error_t pe;
        if (!strcmp(argv[i], "--hops") && i + 1 < argc) {
            if (llmos_parse_u64("--hops", argv[++i], 1, 16, 0, &v, &pe)) {
                fprintf(stderr, "llmos-graph neighbors: %s\n", pe.msg);
                return 2;
            }
            o.hops = (unsigned)v;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            if (parse_dir(argv[++i], &o.dir)) { fprintf(stderr, "llmos-graph neighbors: --dir out|in|both\n"); return 2; }
        } else if (!strcmp(argv[i], "--max-edges") && i + 1 < argc) {
            if (llmos_parse_u64("--max-edges", argv[++i], 1, UINT64_MAX, 0, &v, &pe)) {
                fprintf(stderr, "llmos-graph neighbors: %s\n", pe.msg);
                return 2;
            }
            o.max_edges = v;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            usage(stderr);
            return 2;
        } else if (np < 2) {
            pos[np++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (np != 2) { usage(stderr); return 2; }
    llmos_error_t e = {0};
    graph_store_t *s = NULL;
    graph_reader_t *r = NULL;
    printer_t pr = {0};
    graph_id_t node = 0;
    graph_walk_result_t res = {0};
    int rc = open_store(pos[0], 1, &s, &e);
    if (!rc) rc = graph_reader_begin(s, &r, &e);
    if (!rc) rc = graph_node_resolve(r, pos[1], NULL, &node, &e);
    if (!rc) rc = printer_init(&pr, r, &e);
    nb_ctx_t c = {&pr};
    if (!rc) rc = graph_neighbors(r, node, &o, on_edge, &c, &res, &e);
    printer_deinit(&pr);
    graph_reader_end(&r);
    graph_store_close(&s);
    if (rc) return fail("neighbors", &e);
    fprintf(stderr, "%llu nodes, %llu edges within %u hop%s%s\n", (unsigned long long)res.nodes,
            (unsigned long long)res.edges, o.hops, o.hops == 1 ? "" : "s",
            res.truncated ? " (truncated at a cap: --max-edges)" : "");
    return 0;
}

static int cmd_path(int argc, char **argv) {
    const char *pos[3] = {0};
    int np = 0;
    graph_walk_options_t o = {.hops = 6};
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        llmos_error_t pe;
        if (!strcmp(argv[i], "--max-hops") && i + 1 < argc) {
            if (llmos_parse_u64("--max-hops", argv[++i], 1, 64, 0, &v, &pe)) {
                fprintf(stderr, "llmos-graph path: %s\n", pe.msg);
                return 2;
            }
            o.hops = (unsigned)v;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            if (parse_dir(argv[++i], &o.dir)) { fprintf(stderr, "llmos-graph path: --dir out|in|both\n"); return 2; }
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            usage(stderr);
            return 2;
        } else if (np < 3) {
            pos[np++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (np != 3) { usage(stderr); return 2; }
    llmos_error_t e = {0};
    graph_store_t *s = NULL;
    graph_reader_t *r = NULL;
    printer_t pr = {0};
    graph_id_t a = 0, b = 0;
    graph_triple_t path[64];
    size_t len = 0;
    int rc = open_store(pos[0], 1, &s, &e);
    if (!rc) rc = graph_reader_begin(s, &r, &e);
    if (!rc) rc = graph_node_resolve(r, pos[1], NULL, &a, &e);
    if (!rc) rc = graph_node_resolve(r, pos[2], NULL, &b, &e);
    if (!rc) rc = printer_init(&pr, r, &e);
    if (!rc) rc = graph_path(r, a, b, &o, path, 64, &len, &e);
    for (size_t i = 0; !rc && i < len; i++) rc = print_triple(&pr, &path[i], stdout);
    printer_deinit(&pr);
    graph_reader_end(&r);
    graph_store_close(&s);
    if (rc) return fail("path", &e);
    fprintf(stderr, "path of %zu hop%s\n", len, len == 1 ? "" : "s");
    return 0;
}

static int dispatch(int argc, char **argv);

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") && argc > 2) { /* help COMMAND = COMMAND --help */
        char *sub[] = {argv[2], "--help", NULL};
        return dispatch(2, sub);
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    return dispatch(argc - 1, argv + 1);
}

/* Runs the subcommand argv[0] with its arguments. */
static int dispatch(int argc, char **argv) {
    const char *cmd = argv[0];
    /* COMMAND --help (or -h) anywhere after it: that command's usage. */
    const char *u = usage_of(cmd);
    for (int i = 1; u && i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(u, stdout);
            return 0;
        }
    }
    /* Subcommands see argv[0] = their own name. */
    if (!strcmp(cmd, "load")) return cmd_load(argc, argv);
    if (!strcmp(cmd, "stats")) return cmd_stats(argc, argv);
    if (!strcmp(cmd, "check")) return cmd_check(argc, argv);
    if (!strcmp(cmd, "dump")) return cmd_dump(argc, argv);
    if (!strcmp(cmd, "neighbors") || !strcmp(cmd, "neighbours")) return cmd_neighbors(argc, argv);
    if (!strcmp(cmd, "path")) return cmd_path(argc, argv);
#ifdef LLMOS_GRAPH_HAVE_QUERY
    if (!strcmp(cmd, "query")) return graph_cmd_query(argc, argv);
#endif
#ifdef LLMOS_GRAPH_HAVE_LINK
    if (!strcmp(cmd, "link")) return graph_cmd_link(argc, argv);
#endif
    if (!strcmp(cmd, "query") || !strcmp(cmd, "link")) {
        fprintf(stderr, "llmos-graph: '%s' is not built into this binary\n", cmd);
        return 1;
    }
    fprintf(stderr, "llmos-graph: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
