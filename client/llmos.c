/*
 * llmos.c — the `llmos` command line.
 *
 * Commands that ask a node (at --endpoint, else $LLMOS_ENDPOINT, else
 * tcp://127.0.0.1:7070 — the same rule for every one of them):
 *   llmos [--endpoint E] [--timeout MS] ping [-c N]
 *   llmos [--endpoint E] [--timeout MS] status [--json]
 *   llmos [--endpoint E] submit|wait|status ID|cancel|jobs|batch run ...   (cmd_jobs.c, cmd_batch.c)
 *   llmos [--endpoint E] generate ...       without --model (cmd_generate.c)
 *   llmos [--endpoint E] model stats|load|unload ...   (cmd_generate.c)
 *   llmos [--endpoint E] classify ...       (cmd_classify.c)
 *   llmos --endpoint E graph query|link|neighbors|path|stats|load ...
 *                        asks the node's `graph` actor (llmosd --graph DB).
 *                        Only with --endpoint on the command line: `llmos
 *                        graph ...` without it runs the local llmos-graph on
 *                        a DB path (docs/graph.md), even with $LLMOS_ENDPOINT
 *                        set, because the local and remote argument lists
 *                        cannot be told apart (`graph load A B`).  A graph
 *                        subcommand with no remote form (dump, check) is an
 *                        error with --endpoint, not a local run.
 * Local tools, git style:
 *   llmos X args...      runs `llmos-X args...`: first from the directory
 *                        of this executable, then from PATH (generate
 *                        --model FILE, graph without --endpoint, train, eval,
 *                        ckpt, ...).  Their --help is theirs.
 *
 * Every command and subcommand answers --help (and `llmos help CMD [SUB]`)
 * with its usage on stdout and exit 0, without talking to a node.
 * Exit codes: 0 ok, 1 the node did not answer or answered an error, 2 usage
 * (llmos batch run: 3 when its output is complete but holds error records).
 * Talks to nodes only through libllmos-client's public header
 * (include/llmos/client.h); links no MPI, model, graph or protocol code.
 */
#include "cli.h"
#include "cmd_classify.h"
#include "cmd_generate.h"
#include "cmd_jobs.h"
#include "llmos/client.h"
#include "runtime/base/parse.h"
#include "runtime/base/progress.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7070"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llmos [--endpoint tcp://HOST:PORT] [--timeout MS] COMMAND [ARGS]\n"
            "       llmos COMMAND [SUBCOMMAND] --help     (or llmos help COMMAND [SUBCOMMAND]): its usage\n"
            "\n"
            "Commands that ask a node (the one at --endpoint, else $LLMOS_ENDPOINT, else " DEFAULT_ENDPOINT
            "):\n"
            "  ping [-c N]           round-trip time to the node (N pings)\n"
            "  status [--json]       node id, uptime, actors, message and error counters\n"
            "  submit FILE.json|- [--wait|--stream]   submit a job (JSON; see README)\n"
            "  wait ID [--timeout MS] [--stream]      wait for a job, print its result\n"
            "  status ID             a job's state and results (JSON)\n"
            "  cancel ID             cancel a job\n"
            "  jobs [--tenant T] [--state S] [--limit N] [--after ID] [--all] [--json]   list jobs\n"
            "  jobs --stats          the scheduler's counters\n"
            "  batch run IN.jsonl -o OUT.jsonl [--concurrency N]   one job per line, resumable\n"
            "  generate [--prompt TEXT] [-n N] [--stream] ...       generate with the node's model\n"
            "  model stats|load|unload ...                          the node's model\n"
            "  classify TEXT... [--file F] [--top K] [--json]       label texts (llmosd --classifier)\n"
            "  graph query|link|neighbors|path|stats|load ...       the node's graph (llmosd --graph DB);\n"
            "                        only with --endpoint given on the command line\n"
            "\n"
            "Local tools (llmos X runs llmos-X from llmos's directory or PATH):\n"
            "  generate --model FILE ...   generate locally (llmos-generate)\n"
            "  graph COMMAND DB ...        a graph directory: load, stats, dump, check, query, link,\n"
            "                              neighbors, path (llmos-graph)\n"
            "  train ...                   train or fine-tune a model (llmos-train)\n"
            "  eval ...                    evaluate a classifier (llmos-eval)\n"
            "  ckpt ls|show|export ...     checkpoints (llmos-ckpt)\n"
            "  help [COMMAND]              this text, or a command's usage\n"
            "\n"
            "Options:\n"
            "  --endpoint E     node to talk to: tcp://HOST:PORT\n"
            "  --timeout MS     how long to wait for an answer (default 5000)\n"
            "  -h, --help       this text\n"
            "\n"
            "Exit status: 0 ok, 1 failed (the node did not answer or answered an error), 2 usage;\n"
            "llmos batch run: 3 when every line has a record and some are errors.\n");
}

static void ping_usage(FILE *f) {
    fprintf(f, "usage: llmos [--endpoint E] [--timeout MS] ping [-c N]\n"
               "  Pings the node N times (default 1) and prints each round-trip time.\n");
}

static void status_usage(FILE *f) {
    fprintf(f,
            "usage: llmos [--endpoint E] [--timeout MS] status [--json]\n"
            "  The node's id (16 hex digits), name, endpoint, uptime, workers, live peers, actors, message\n"
            "  counters and errors by kind; --json: the same as one JSON object.\n"
            "       llmos [--endpoint E] status ID\n"
            "  Job ID's state and results (one JSON line).\n");
}

/* Usage of `llmos --endpoint E graph SUB` (NULL: every remote subcommand). */
static void graph_remote_usage(FILE *f, const char *sub) {
    static const struct {
        const char *sub, *text;
    } u[] = {
        {"query", "graph query 'SPARQL' [--format tsv|json] [--query-timeout MS]"},
        {"link", "graph link 'text' [--hops 0|1|2] [--max-facts N] [--format text|json]"},
        {"neighbors", "graph neighbors NODE [--hops K] [--dir out|in|both] [--max-edges N]"},
        {"path", "graph path A B [--max-hops K] [--dir out|in|both]"},
        {"stats", "graph stats [--distinct]"},
        {"load", "graph load FILE... [--strict] [--format nt|ttl|tsv] [--base IRI] [--remote-path]\n"
                 "                             [--chunk BYTES] [--load-timeout MS]\n"
                 "  --remote-path   FILEs are paths on the node, not sent"},
    };
    int first = 1;
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        if (sub && strcmp(sub, u[i].sub) != 0) continue;
        fprintf(f, "%s llmos --endpoint E %s\n", first ? "usage:" : "      ", u[i].text);
        first = 0;
    }
    if (!sub)
        fprintf(
            f,
            "  Asks the graph of the node at E (llmosd --graph DB); the answer is what llmos-graph prints\n"
            "  locally.  Without --endpoint, llmos graph runs the local llmos-graph on a DB directory\n"
            "  (llmos graph --help).\n");
}

/* 1 when sub is a graph subcommand the node's graph actor serves (the
 * GRAPH_MSG_* requests of protos/llmos/graph.proto). */
static int graph_remote_sub(const char *sub) {
    static const char *const subs[] = {"query", "link", "neighbors", "path", "stats", "load"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i]) == 0) return 1;
    return 0;
}

static int parse_ms(const char *s, uint32_t *out) {
    return llmos_parse_u32("milliseconds", s, 1, 86400000, 0, out, NULL) ? -1 : 0;
}

static int connect_or_say(const char *endpoint, uint32_t timeout_ms, llmos_client_t **c) {
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = timeout_ms};
    if (llmos_client_connect(endpoint, &o, c, &err) != 0) {
        fprintf(stderr, "llmos: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int cmd_ping(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    uint32_t count = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc && parse_ms(argv[i + 1], &count) == 0) {
            i++;
            continue;
        }
        fprintf(stderr, "llmos ping: unexpected argument '%s'\n", argv[i]);
        ping_usage(stderr);
        return 2;
    }
    llmos_client_t *c;
    if (connect_or_say(endpoint, timeout_ms, &c) != 0) return 1;
    int status = 0;
    for (uint32_t i = 0; i < count; i++) {
        llmos_client_error_t err;
        uint64_t rtt;
        if (llmos_client_ping(c, timeout_ms, &rtt, &err) != 0) {
            fprintf(stderr, "llmos: ping %s: %s\n", endpoint, err.msg);
            status = 1;
            break;
        }
        printf("pong from %s: time=%.3f ms\n", endpoint, (double)rtt / 1e6);
    }
    llmos_client_destroy(&c);
    return status;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int cmd_status(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        fprintf(stderr, "llmos status: unexpected argument '%s'\n", argv[i]);
        status_usage(stderr);
        return 2;
    }
    llmos_client_t *c;
    if (connect_or_say(endpoint, timeout_ms, &c) != 0) return 1;
    llmos_client_error_t err;
    llmos_client_status_t *s;
    int rc = llmos_client_status(c, timeout_ms, &s, &err);
    llmos_client_destroy(&c);
    if (rc) {
        fprintf(stderr, "llmos: status %s: %s\n", endpoint, err.msg);
        return 1;
    }
    if (json) {
        printf("{\"node_id\":\"%016llx\",\"node_name\":", (unsigned long long)s->node_id);
        json_str(s->node_name);
        printf(",\"endpoint\":");
        json_str(s->endpoint);
        printf(",\"uptime_ms\":%llu,\"workers\":%u,\"peers\":%u,\"actor_count\":%llu,\"actors\":[",
               (unsigned long long)s->uptime_ms, s->workers, s->peers, (unsigned long long)s->actor_count);
        for (size_t i = 0; i < s->n_actors; i++) {
            if (i) putchar(',');
            json_str(s->actors[i]);
        }
        printf("],\"msgs_sent\":%llu,\"msgs_received\":%llu,\"net_msgs_in\":%llu,\"net_msgs_out\":%llu,"
               "\"net_frames_in\":%llu,\"net_frames_out\":%llu,\"errors\":{",
               (unsigned long long)s->msgs_sent, (unsigned long long)s->msgs_received,
               (unsigned long long)s->net_msgs_in, (unsigned long long)s->net_msgs_out,
               (unsigned long long)s->net_frames_in, (unsigned long long)s->net_frames_out);
        for (size_t i = 0; i < s->n_errors; i++)
            printf("%s\"%s\":%llu", i ? "," : "", s->errors[i].kind, (unsigned long long)s->errors[i].count);
        printf("}}\n");
    } else {
        printf("node       %016llx (%s)\n", (unsigned long long)s->node_id, s->node_name);
        printf("endpoint   %s\n", s->endpoint);
        printf("uptime     %.1f s\n", (double)s->uptime_ms / 1000.0);
        printf("workers    %u\n", s->workers);
        printf("peers      %u alive\n", s->peers);
        printf("actors     %llu:", (unsigned long long)s->actor_count);
        for (size_t i = 0; i < s->n_actors; i++) printf("%s %s", i ? "," : "", s->actors[i]);
        printf("\n");
        printf("messages   sent %llu, received %llu (in-process)\n", (unsigned long long)s->msgs_sent,
               (unsigned long long)s->msgs_received);
        printf("network    in %llu, out %llu envelopes; %llu / %llu frames\n",
               (unsigned long long)s->net_msgs_in, (unsigned long long)s->net_msgs_out,
               (unsigned long long)s->net_frames_in, (unsigned long long)s->net_frames_out);
        printf("errors    ");
        for (size_t i = 0; i < s->n_errors; i++)
            printf(" %s=%llu", s->errors[i].kind, (unsigned long long)s->errors[i].count);
        printf("\n");
    }
    llmos_client_status_free(&s);
    return 0;
}

/* Prints a graph call's answer: the text on stdout, or the reason on
 * stderr.  Returns the exit status (0, or 1). */
static int graph_print(const char *sub, int rc, char *text, const llmos_client_error_t *err) {
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "llmos graph %s: %s (%s)\n", sub, err->msg, llmos_client_strerror(rc));
        status = 1;
    } else {
        fputs(text, stdout);
        if (fflush(stdout) != 0) status = 1;
    }
    free(text);
    return status;
}

/* `llmos --endpoint E graph query|link ...`: builds the request, asks the
 * node's graph actor and prints the text of its reply (what llmos-graph
 * prints locally).  argv[0] is "query" or "link". */
static int cmd_graph_remote(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    const char *sub = argv[0], *text = NULL, *format = "";
    uint32_t hops = 1, max_facts = 20, qtimeout = 0;
    int is_query = strcmp(sub, "query") == 0, hops_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            format = argv[++i];
        } else if (is_query && strcmp(a, "--query-timeout") == 0 && i + 1 < argc) {
            if (llmos_parse_u32("--query-timeout", argv[++i], 0, UINT32_MAX, 0, &qtimeout, NULL)) goto usage;
        } else if (!is_query && strcmp(a, "--hops") == 0 && i + 1 < argc) {
            if (llmos_parse_u32("--hops", argv[++i], 0, 2, 0, &hops, NULL)) goto usage;
            hops_set = 1;
        } else if (!is_query && strcmp(a, "--max-facts") == 0 && i + 1 < argc) {
            if (llmos_parse_u32("--max-facts", argv[++i], 1, 100000, 0, &max_facts, NULL)) goto usage;
        } else if (a[0] == '-' && a[1]) {
            goto usage;
        } else if (!text) {
            text = a;
        } else {
            goto usage;
        }
    }
    if (!text) goto usage;

    llmos_client_t *c;
    if (connect_or_say(endpoint, timeout_ms, &c) != 0) return 1;
    char *out = NULL;
    llmos_client_error_t err;
    int rc;
    if (is_query) {
        rc = llmos_client_graph_query(c, text, format, qtimeout, timeout_ms, &out, &err);
    } else {
        llmos_client_link_opts_t lo = {.hops = hops, .hops_set = hops_set, .max_facts = max_facts, .format = format};
        rc = llmos_client_graph_link(c, text, &lo, timeout_ms, &out, NULL, &err);
    }
    llmos_client_destroy(&c);
    return graph_print(sub, rc, out, &err);
usage:
    graph_remote_usage(stderr, sub);
    return 2;
}

/* `llmos --endpoint E graph neighbors NODE [--hops K] [--dir D] [--max-edges N]`
 * and `... graph path A B [--max-hops K] [--dir D]`. */
static int cmd_graph_walk(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    int is_path = strcmp(argv[0], "path") == 0;
    llmos_client_walk_opts_t q = {0};
    const char *pos[2] = {0};
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
            q.dir = argv[++i];
        } else if (strcmp(a, is_path ? "--max-hops" : "--hops") == 0 && i + 1 < argc) {
            if (llmos_parse_u32(argv[i], argv[i + 1], 1, is_path ? 64 : 16, 0, &q.hops, NULL)) goto usage;
            i++;
        } else if (!is_path && strcmp(a, "--max-edges") == 0 && i + 1 < argc) {
            if (llmos_parse_u64("--max-edges", argv[++i], 1, UINT64_MAX, 0, &q.max_edges, NULL)) goto usage;
        } else if (a[0] == '-' && a[1] == '-') {
            goto usage;
        } else if (np < 1 + is_path) {
            pos[np++] = a;
        } else {
            goto usage;
        }
    }
    if (np != 1 + is_path) goto usage;
    llmos_client_t *c;
    if (connect_or_say(endpoint, timeout_ms, &c) != 0) return 1;
    char *out = NULL;
    llmos_client_error_t err;
    int rc = is_path ? llmos_client_graph_path(c, pos[0], pos[1], &q, timeout_ms, &out, &err)
                     : llmos_client_graph_neighbors(c, pos[0], &q, timeout_ms, &out, &err);
    llmos_client_destroy(&c);
    return graph_print(argv[0], rc, out, &err);
usage:
    graph_remote_usage(stderr, argv[0]);
    return 2;
}

/* `llmos --endpoint E graph stats [--distinct]`. */
static int cmd_graph_stats(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    int distinct = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--distinct") != 0) {
            graph_remote_usage(stderr, "stats");
            return 2;
        }
        distinct = 1;
    }
    llmos_client_t *c;
    if (connect_or_say(endpoint, timeout_ms, &c) != 0) return 1;
    char *out = NULL;
    llmos_client_error_t err;
    int rc = llmos_client_graph_stats(c, distinct, timeout_ms, &out, &err);
    llmos_client_destroy(&c);
    return graph_print("stats", rc, out, &err);
}

/* ---- graph load: files sent in chunks, committed as one load ---- */

/* Prints a failed load call's reason; returns the exit status 1. */
static int load_failed(int rc, const llmos_client_error_t *err) {
    fprintf(stderr, "llmos graph load: %s (%s)\n", err->msg, llmos_client_strerror(rc));
    return 1;
}

/* `llmos --endpoint E graph load FILE... [--strict] [--format F] [--base IRI]
 * [--remote-path] [--chunk SIZE] [--load-timeout MS]`: sends each file's
 * content in chunks (512 KiB by default: under the frame cap of any node
 * configured with max_frame >= 1M; the node's refusal of a bigger frame
 * cannot name the call, so the client would only time out), or with
 * --remote-path names files on the node, then commits: the node loads them
 * all in one transaction and answers with the report and any malformed
 * lines. */
static int cmd_graph_load(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    const char *format = "", *base = "";
    int strict = 0, remote = 0, nfiles = 0;
    uint32_t chunk = 512u << 10;
    uint32_t load_timeout = 600000;
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files) {
        fprintf(stderr, "llmos graph load: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--strict") == 0) {
            strict = 1;
        } else if (strcmp(a, "--remote-path") == 0) {
            remote = 1;
        } else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            format = argv[++i];
        } else if (strcmp(a, "--base") == 0 && i + 1 < argc) {
            base = argv[++i];
        } else if (strcmp(a, "--chunk") == 0 && i + 1 < argc) {
            if (llmos_parse_u32("--chunk", argv[++i], 1, 32u << 20, 0, &chunk, NULL)) goto usage;
        } else if (strcmp(a, "--load-timeout") == 0 && i + 1 < argc) {
            if (parse_ms(argv[++i], &load_timeout) != 0) goto usage;
        } else if (a[0] == '-' && a[1]) {
            goto usage;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles) goto usage;

    llmos_client_t *c = NULL;
    llmos_client_graph_load_t *L = NULL;
    llmos_client_error_t err;
    llmos_client_load_opts_t lo = {.format = format, .base_iri = base, .strict = strict};
    int rc, status = connect_or_say(endpoint, timeout_ms, &c);
    if (!status && (rc = llmos_client_graph_load_new(c, &lo, &L, &err)) != 0) status = load_failed(rc, &err);
    uint8_t *data = status ? NULL : malloc(chunk);
    if (!status && !data) {
        fprintf(stderr, "llmos graph load: out of memory\n");
        status = 1;
    }
    uint64_t sent = 0, total = 0;
    for (int i = 0; i < nfiles && !remote && !status; i++) {
        FILE *f = fopen(files[i], "rb");
        if (f && fseek(f, 0, SEEK_END) == 0) total += (uint64_t)ftell(f);
        if (f) fclose(f);
    }
    llmos_progress_t prog;
    llmos_progress_init(&prog, "send", "bytes", total);
    for (int i = 0; i < nfiles && !status; i++) {
        if (remote) {
            if ((rc = llmos_client_graph_load_path(L, (uint32_t)i, files[i], timeout_ms, &err)) != 0)
                status = load_failed(rc, &err);
            continue;
        }
        FILE *f = fopen(files[i], "rb");
        if (!f) {
            fprintf(stderr, "llmos graph load: %s: %s\n", files[i], strerror(errno));
            status = 1;
            break;
        }
        /* Every file sends at least one message, so an empty file is a file. */
        uint64_t offset = 0;
        for (int first = 1; !status; first = 0) {
            size_t n = fread(data, 1, chunk, f);
            if (n == 0 && ferror(f)) {
                fprintf(stderr, "llmos graph load: %s: read error: %s\n", files[i], strerror(errno));
                status = 1;
                break;
            }
            if (n == 0 && !first) break;
            if ((rc = llmos_client_graph_load_send(L, (uint32_t)i, files[i], offset, data, n, timeout_ms, NULL,
                                                   &err)) != 0)
                status = load_failed(rc, &err);
            offset += n;
            sent += n;
            llmos_progress_update(&prog, sent, 0);
            if (n < chunk) break;
        }
        fclose(f);
    }
    if (!remote && !status && (prog.tty || prog.force)) fputs("\r\033[K", stderr);
    llmos_client_load_result_t *res = NULL;
    /* The commit: the node loads everything now, which may take long. */
    if (!status && (rc = llmos_client_graph_load_commit(L, (uint32_t)nfiles,
                                                        load_timeout > timeout_ms ? load_timeout : timeout_ms, &res,
                                                        &err)) != 0)
        status = load_failed(rc, &err);
    if (res) {
        fputs(res->diagnostics, stderr);
        printf("loaded %d file%s (%" PRIu64 " bytes sent): %" PRIu64 " lines, %" PRIu64 " triples read, %" PRIu64
               " new, %" PRIu64 " new terms, %" PRIu64 " malformed lines skipped, %.2f s on the node\n",
               nfiles, nfiles > 1 ? "s" : "", res->received, res->lines, res->read, res->added, res->terms_added,
               res->errors, res->seconds);
        if (fflush(stdout) != 0) status = 1;
        llmos_client_load_result_free(&res);
    }
    free(data);
    free(files);
    llmos_client_graph_load_destroy(&L);
    llmos_client_destroy(&c);
    return status;
usage:
    free(files);
    graph_remote_usage(stderr, "load");
    return 2;
}

/* Runs llmos-<cmd>: from this executable's directory first, then PATH.
 * Returns only on failure. */
static int run_external(const char *cmd, int argc, char **argv) {
    char name[256];
    if (strchr(cmd, '/') || snprintf(name, sizeof name, "llmos-%s", cmd) >= (int)sizeof name) {
        fprintf(stderr, "llmos: unknown command '%s' (see llmos --help)\n", cmd);
        return 2;
    }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) {
        fprintf(stderr, "llmos: out of memory\n");
        return 1;
    }
    args[0] = name;
    for (int i = 0; i < argc; i++) args[i + 1] = argv[i];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            char path[PATH_MAX + 256];
            *slash = 0;
            snprintf(path, sizeof path, "%s/%s", self, name);
            if (access(path, X_OK) == 0) {
                execv(path, args);
                fprintf(stderr, "llmos: cannot run %s: %s\n", path, strerror(errno));
                free(args);
                return 1;
            }
        }
    }
    execvp(name, args);
    int e = errno;
    free(args);
    if (e == ENOENT) {
        fprintf(stderr, "llmos: unknown command '%s' (no %s next to llmos or on PATH; see llmos --help)\n", cmd,
                name);
        return 1;
    }
    fprintf(stderr, "llmos: cannot run %s: %s\n", name, strerror(e));
    return 1;
}

/* `llmos --endpoint E graph ...`: the node's graph actor.  argv starts
 * after "graph". */
static int cmd_graph(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    const char *sub = argc ? argv[0] : NULL;
    if (!sub || strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        graph_remote_usage(sub ? stdout : stderr, NULL);
        return sub ? 0 : 2;
    }
    if (!graph_remote_sub(sub)) {
        fprintf(
            stderr,
            "llmos graph %s: has no remote form: a node's graph answers query, link, neighbors, path, stats "
            "and load.  Without --endpoint, `llmos graph %s DB ...` runs it locally on a graph directory.\n",
            sub, sub);
        return 2;
    }
    if (cli_help_asked(argc - 1, argv + 1)) {
        graph_remote_usage(stdout, sub);
        return 0;
    }
    if (strcmp(sub, "query") == 0 || strcmp(sub, "link") == 0)
        return cmd_graph_remote(endpoint, timeout_ms, argc, argv);
    if (strcmp(sub, "stats") == 0) return cmd_graph_stats(endpoint, timeout_ms, argc, argv);
    if (strcmp(sub, "load") == 0) return cmd_graph_load(endpoint, timeout_ms, argc, argv);
    return cmd_graph_walk(endpoint, timeout_ms, argc, argv);
}

/* 1 when a `generate` command line asks for a local generation: it names
 * a model file (llmos-generate's --model / -m), which the remote form never
 * takes. */
static int generate_is_local(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--model") == 0 || strcmp(argv[i], "-m") == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *endpoint = getenv("LLMOS_ENDPOINT");
    if (!endpoint || !*endpoint) endpoint = DEFAULT_ENDPOINT;
    uint32_t timeout_ms = 5000;
    int explicit_endpoint = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--endpoint") == 0 && i + 1 < argc) {
            endpoint = argv[++i];
            explicit_endpoint = 1;
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            if (parse_ms(argv[++i], &timeout_ms) != 0) {
                fprintf(stderr, "llmos: --timeout '%s' is not a number of milliseconds\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "llmos: unknown option '%s' (see llmos --help)\n", a);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i++];
    char *help_argv[3];
    if (strcmp(cmd, "help") == 0) { /* `llmos help [CMD [SUB]]` = `llmos CMD [SUB] --help` */
        if (i >= argc) {
            usage(stdout);
            return 0;
        }
        cmd = argv[i++];
        int n = 0;
        if (i < argc) help_argv[n++] = argv[i];
        help_argv[n++] = "--help";
        help_argv[n] = NULL;
        argv = help_argv;
        argc = n;
        i = 0;
    }
    int n = argc - i;
    char **args = argv + i;
    int help = cli_help_asked(n, args);
    if (strcmp(cmd, "ping") == 0) {
        if (help) ping_usage(stdout);
        return help ? 0 : cmd_ping(endpoint, timeout_ms, n, args);
    }
    /* jobs (client/cmd_jobs.c, client/cmd_batch.c) */
    if (strcmp(cmd, "status") == 0) {
        if (help) {
            status_usage(stdout);
            return 0;
        }
        return cmd_status_names_job(n, args) ? cmd_job_status(endpoint, timeout_ms, n, args)
                                             : cmd_status(endpoint, timeout_ms, n, args);
    }
    static const struct {
        const char *name;
        int (*run)(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);
    } job_cmds[] = {{"submit", cmd_submit}, {"wait", cmd_wait}, {"cancel", cmd_cancel}, {"jobs", cmd_jobs}};
    for (size_t k = 0; k < sizeof job_cmds / sizeof job_cmds[0]; k++) {
        if (strcmp(cmd, job_cmds[k].name) != 0) continue;
        if (help) cmd_jobs_usage(cmd, stdout);
        return help ? 0 : job_cmds[k].run(endpoint, timeout_ms, n, args);
    }
    if (strcmp(cmd, "batch") == 0) {
        help = help || (n && strcmp(args[0], "help") == 0);
        if (help) cmd_batch_usage(stdout);
        return help ? 0 : cmd_batch(endpoint, timeout_ms, n, args);
    }
    if (strcmp(cmd, "classify") == 0) return cmd_classify(endpoint, timeout_ms, n, args);
    if (strcmp(cmd, "model") == 0) return cmd_generate_main(endpoint, timeout_ms, cmd, n, args);
    if (strcmp(cmd, "generate") == 0 && !generate_is_local(n, args))
        return cmd_generate_main(endpoint, timeout_ms, cmd, n, args);
    if (strcmp(cmd, "generate") == 0 && explicit_endpoint) {
        fprintf(stderr,
                "llmos generate: --model generates locally and --endpoint asks a node: give one of them "
                "(to serve another model on the node: llmos --endpoint E model load PATH)\n");
        return 2;
    }
    if (strcmp(cmd, "graph") == 0 && explicit_endpoint) return cmd_graph(endpoint, timeout_ms, n, args);
    /* Local tools that talk to a node use the same endpoint. */
    setenv("LLMOS_ENDPOINT", endpoint, 1);
    return run_external(cmd, n, args);
}
