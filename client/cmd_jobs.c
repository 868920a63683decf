/*
 * cmd_jobs.c — `llmos submit | wait | status ID | cancel | jobs`: the job
 * commands, thin over the library's job calls (client/jobs.c) and its JSON
 * form (client/jobs_json.c), so the CLI and programs read and print jobs
 * the same way.
 *
 *   llmos submit FILE.json|- [--wait | --stream] [--wait-timeout MS]
 *   llmos wait ID [--timeout MS] [--stream]
 *   llmos status ID
 *   llmos cancel ID
 *   llmos jobs [--tenant T] [--state S] [--limit N] [--after ID] [--all] [--json]
 *   llmos jobs --stats          the scheduler's counters (one JSON line)
 *
 * Statuses print as one JSON line (llmos_job_status_to_json).  Exit status:
 * 0 when the job is done (submit: accepted), 1 when it failed, was
 * cancelled, expired, timed out or the node answered an error, 2 usage.
 */
#include "cli.h"
#include "cmd_jobs.h"
#include "llmos/client.h"
#include "runtime/base/buf.h"
#include "runtime/base/parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_CHUNK_MS 30000u /* one wait call; `llmos wait` without --timeout loops */

void cmd_jobs_usage(const char *cmd, FILE *f) {
    if (strcmp(cmd, "submit") == 0)
        fputs("usage: llmos [--endpoint E] submit FILE.json|- [--wait | --stream] [--wait-timeout MS]\n"
              "  Submits the job in FILE (\"-\": stdin; JSON, see README \"Jobs and batches\") and prints the\n"
              "  node's answer: {\"id\",\"existing\",\"state\",\"queue_position\"}.\n"
              "  --wait             wait for the job and print its final status (one JSON line)\n"
              "  --stream           the same, printing generated text as it comes\n"
              "  --wait-timeout MS  give up waiting after MS (default: wait until it finishes)\n"
              "  Exit: 0 accepted (with --wait: done), 1 refused, failed, cancelled, expired or timed out, 2 usage.\n",
              f);
    else if (strcmp(cmd, "wait") == 0)
        fputs("usage: llmos [--endpoint E] wait ID [--timeout MS] [--stream]\n"
              "  Waits for job ID to finish and prints its status (one JSON line); --stream prints generated\n"
              "  text as it comes.  Exit: 0 done, 1 failed, cancelled, expired or not finished in time, 2 usage.\n",
              f);
    else if (strcmp(cmd, "cancel") == 0)
        fputs("usage: llmos [--endpoint E] cancel ID\n"
              "  Cancels job ID (running generations stop) and prints its status (one JSON line).\n",
              f);
    else if (strcmp(cmd, "status") == 0)
        fputs("usage: llmos [--endpoint E] status ID\n"
              "  Prints job ID's state and results (one JSON line).\n",
              f);
    else
        fputs("usage: llmos [--endpoint E] jobs [--tenant T] [--state queued|running|done|failed|cancelled|expired|"
              "quarantined]\n"
              "                              [--limit N] [--after ID] [--all] [--json]\n"
              "       llmos [--endpoint E] jobs --stats\n"
              "  Lists jobs (a page of --limit, default 100; --all: every page; --json: one status per line);\n"
              "  --stats prints the scheduler's counters as one JSON line.\n",
              f);
}

static int connect_to(const char *endpoint, uint32_t timeout_ms, llmos_client_t **c) {
    llmos_client_error_t err;
    llmos_client_opts_t o = {.timeout_ms = timeout_ms};
    if (llmos_client_connect(endpoint, &o, c, &err) != 0) {
        fprintf(stderr, "llmos: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int parse_u32(const char *s, uint32_t *out) {
    return llmos_parse_u32("value", s, 0, UINT32_MAX, 0, out, NULL) ? -1 : 0;
}

/* Prints a status as a JSON line; returns the exit status it implies. */
static int print_status(const llmos_job_status_t *s) {
    char *json;
    llmos_client_error_t err;
    if (llmos_job_status_to_json(s, &json, &err) != 0) {
        fprintf(stderr, "llmos: %s\n", err.msg);
        return 1;
    }
    puts(json);
    free(json);
    fflush(stdout);
    return s->state == LLMOS_JOB_DONE ? 0 : 1;
}

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "llmos submit: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    llmos_buf_t b = LLMOS_BUF_INIT;
    int rc = llmos_buf_read_file(&b, f, 0);
    if (f != stdin) fclose(f);
    char *buf = rc ? NULL : llmos_buf_take(&b, len);
    llmos_buf_deinit(&b);
    if (!buf) fprintf(stderr, "llmos submit: cannot read %s%s\n", path, rc == LLMOS_EIO ? "" : " (out of memory)");
    return buf;
}

/* Streams chunks to stdout as they come; finished tasks go to stderr. */
static int print_event(const llmos_job_event_t *ev, void *user) {
    (void)user;
    if (ev->chunk) {
        fputs(ev->chunk, stdout);
        fflush(stdout);
    }
    if (ev->result)
        fprintf(stderr, "[task %s %s: %s]\n", ev->task, llmos_task_kind_name(ev->result->kind),
                llmos_task_state_name(ev->result->state));
    return 0;
}

/* Waits for id until it is final (or until limit_ms, 0 = no limit), in
 * chunks, streaming if asked.  *out = the last status seen. */
static int wait_final(llmos_client_t *c, const char *id, uint32_t limit_ms, int stream, llmos_job_status_t **out,
                      llmos_client_error_t *err) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint32_t chunk = WAIT_CHUNK_MS;
        if (limit_ms) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            uint64_t el = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000u + (uint64_t)((t.tv_nsec - t0.tv_nsec) / 1000000);
            if (el >= limit_ms) return LLMOS_CLIENT_ETIMEDOUT;
            if (limit_ms - el < chunk) chunk = (uint32_t)(limit_ms - el);
            if (chunk == 0) chunk = 1;
        }
        llmos_job_status_free(out);
        int rc = stream ? llmos_client_stream(c, id, chunk, print_event, NULL, out, err)
                        : llmos_client_wait(c, id, chunk, out, err);
        if (rc != LLMOS_CLIENT_ETIMEDOUT || !*out) return rc;
        if (llmos_job_state_final((*out)->state)) return 0;
    }
}

int cmd_submit(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    const char *path = NULL;
    int wait = 0, stream = 0;
    uint32_t wait_ms = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = 1;
        } else if (strcmp(argv[i], "--stream") == 0) {
            stream = 1;
        } else if (strcmp(argv[i], "--wait-timeout") == 0 && i + 1 < argc && parse_u32(argv[i + 1], &wait_ms) == 0) {
            i++;
        } else if (!path && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }
    if (!path) {
        cmd_jobs_usage("submit", stderr);
        return 2;
    }
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return 1;
    llmos_client_error_t err;
    llmos_job_t *job;
    int rc = llmos_job_from_json(text, len, NULL, &job, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "llmos submit: %s: %s\n", strcmp(path, "-") ? path : "stdin", err.msg);
        return 1;
    }
    llmos_client_t *c;
    if (connect_to(endpoint, timeout_ms, &c) != 0) {
        llmos_job_destroy(&job);
        return 1;
    }
    int status = 0;
    llmos_submit_result_t res;
    if (!wait && !stream) {
        rc = llmos_client_submit(c, job, timeout_ms, &res, &err);
        if (rc) {
            fprintf(stderr, "llmos submit: %s (%s)\n", err.msg, llmos_client_strerror(rc));
            status = 1;
        } else {
            cJSON *s = cJSON_CreateString(res.id);
            char *q = s ? cJSON_PrintUnformatted(s) : NULL;
            printf("{\"id\":%s,\"existing\":%s,\"state\":\"%s\",\"queue_position\":%llu}\n", q ? q : "\"\"",
                   res.existing ? "true" : "false", llmos_job_state_name(res.state),
                   (unsigned long long)res.queue_position);
            free(q);
            cJSON_Delete(s);
        }
    } else {
        /* submit and wait (streaming) in one round trip, then keep waiting in slices */
        llmos_job_status_t *st = NULL;
        uint32_t first = wait_ms && wait_ms < WAIT_CHUNK_MS ? wait_ms : WAIT_CHUNK_MS;
        rc = stream ? llmos_client_submit_stream(c, job, first, print_event, NULL, &st, &err)
                    : llmos_client_submit_wait(c, job, first, &st, &err);
        if (rc == LLMOS_CLIENT_ETIMEDOUT && st && !llmos_job_state_final(st->state) && (!wait_ms || wait_ms > first))
            rc = wait_final(c, llmos_job_id(job), wait_ms ? wait_ms - first : 0, stream, &st, &err);
        if (stream) putchar('\n');
        if (rc && !st) {
            fprintf(stderr, "llmos submit: %s: %s (%s)\n", llmos_job_id(job), err.msg, llmos_client_strerror(rc));
            status = 1;
        } else {
            status = print_status(st);
            if (rc == LLMOS_CLIENT_ETIMEDOUT) status = 1;
        }
        llmos_job_status_free(&st);
    }
    llmos_job_destroy(&job);
    llmos_client_destroy(&c);
    return status;
}

/* Parses "ID" plus the flags a command allows; returns the id or NULL. */
static const char *one_id(int argc, char **argv, const char *cmd, int *stream, uint32_t *limit_ms) {
    const char *id = NULL;
    for (int i = 0; i < argc; i++) {
        if (stream && strcmp(argv[i], "--stream") == 0) {
            *stream = 1;
        } else if (limit_ms && strcmp(argv[i], "--timeout") == 0 && i + 1 < argc &&
                   parse_u32(argv[i + 1], limit_ms) == 0) {
            i++;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            id = NULL;
            break;
        }
    }
    if (!id) cmd_jobs_usage(cmd, stderr);
    return id;
}

int cmd_wait(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    int stream = 0;
    uint32_t limit = 0;
    const char *id = one_id(argc, argv, "wait", &stream, &limit);
    if (!id) return 2;
    llmos_client_t *c;
    if (connect_to(endpoint, timeout_ms, &c) != 0) return 1;
    llmos_client_error_t err;
    llmos_job_status_t *st = NULL;
    int rc = wait_final(c, id, limit, stream, &st, &err);
    if (stream) putchar('\n');
    int status;
    if (rc && !st) {
        fprintf(stderr, "llmos wait %s: %s (%s)\n", id, err.msg, llmos_client_strerror(rc));
        status = 1;
    } else {
        status = print_status(st);
        if (rc == LLMOS_CLIENT_ETIMEDOUT) {
            fprintf(stderr, "llmos wait %s: not finished within %u ms (still %s)\n", id, limit,
                    llmos_job_state_name(st->state));
            status = 1;
        }
    }
    llmos_job_status_free(&st);
    llmos_client_destroy(&c);
    return status;
}

int cmd_status_names_job(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (argv[i][0] != '-') return 1;
    return 0;
}

/* status and cancel: one ask, one status printed. */
static int one_status_call(const char *endpoint, uint32_t timeout_ms, const char *what, int cancel, int argc,
                           char **argv) {
    const char *id = one_id(argc, argv, what, NULL, NULL);
    if (!id) return 2;
    llmos_client_t *c;
    if (connect_to(endpoint, timeout_ms, &c) != 0) return 1;
    llmos_client_error_t err;
    llmos_job_status_t *st = NULL;
    int rc = cancel ? llmos_client_cancel(c, id, timeout_ms, &st, &err)
                    : llmos_client_job_status(c, id, timeout_ms, &st, &err);
    int status = 1;
    if (rc) {
        fprintf(stderr, "llmos %s %s: %s (%s)\n", what, id, err.msg, llmos_client_strerror(rc));
    } else {
        print_status(st);
        status = 0; /* the call worked; the state is in the output */
    }
    llmos_job_status_free(&st);
    llmos_client_destroy(&c);
    return status;
}

int cmd_job_status(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    return one_status_call(endpoint, timeout_ms, "status", 0, argc, argv);
}

int cmd_cancel(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    return one_status_call(endpoint, timeout_ms, "cancel", 1, argc, argv);
}

static int print_sched_stats(const char *endpoint, uint32_t timeout_ms) {
    llmos_client_t *c;
    if (connect_to(endpoint, timeout_ms, &c) != 0) return 1;
    llmos_client_error_t err;
    llmos_scheduler_stats_t s;
    int rc = llmos_client_scheduler_stats(c, timeout_ms, &s, &err);
    llmos_client_destroy(&c);
    if (rc) {
        fprintf(stderr, "llmos jobs --stats: %s (%s)\n", err.msg, llmos_client_strerror(rc));
        return 1;
    }
    printf("{\"policy\":\"%s\",\"queued\":%llu,\"running\":%llu,\"done\":%llu,\"failed\":%llu,\"retried\":%llu,"
           "\"rejected_overloaded\":%llu,\"expired\":%llu,\"cancelled\":%llu,\"recovered\":%llu,\"queue_limit\":%u,"
           "\"quarantined\":%llu}\n",
           s.policy, (unsigned long long)s.queued, (unsigned long long)s.running, (unsigned long long)s.done,
           (unsigned long long)s.failed, (unsigned long long)s.retried, (unsigned long long)s.rejected_overloaded,
           (unsigned long long)s.expired, (unsigned long long)s.cancelled, (unsigned long long)s.recovered,
           s.queue_limit, (unsigned long long)s.quarantined);
    return 0;
}

int cmd_jobs(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    llmos_job_list_opts_t o = {0};
    int json = 0, all = 0;
    if (argc == 1 && strcmp(argv[0], "--stats") == 0) return print_sched_stats(endpoint, timeout_ms);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0 || strcmp(a, "--all") == 0) {
            *(a[2] == 'j' ? &json : &all) = 1;
            continue;
        }
        if (v && strcmp(a, "--tenant") == 0) {
            o.tenant = v;
        } else if (v && strcmp(a, "--after") == 0) {
            o.after = v;
        } else if (v && strcmp(a, "--state") == 0 && (o.state = llmos_job_state_parse(v))) {
        } else if (!(v && strcmp(a, "--limit") == 0 && parse_u32(v, &o.limit) == 0)) {
            cmd_jobs_usage("jobs", stderr);
            return 2;
        }
        i++;
    }
    llmos_client_t *c;
    if (connect_to(endpoint, timeout_ms, &c) != 0) return 1;
    llmos_client_error_t err;
    llmos_job_list_t *l = NULL;
    char after[LLMOS_JOB_ID_MAX + 1];
    int status = 0;
    if (!json) printf("%-32s %-9s %-12s %8s %6s %s\n", "ID", "STATE", "TENANT", "PRIORITY", "TASKS", "SUBMITTED");
    for (;;) { /* one page, or with --all every page */
        int rc = llmos_client_list(c, &o, timeout_ms, &l, &err);
        if (rc) {
            fprintf(stderr, "llmos jobs: %s (%s)\n", err.msg, llmos_client_strerror(rc));
            status = 1;
            break;
        }
        for (size_t i = 0; i < l->n_jobs; i++) {
            const llmos_job_status_t *s = l->jobs[i];
            if (json) {
                char *line;
                if (llmos_job_status_to_json(s, &line, &err) == 0) {
                    puts(line);
                    free(line);
                }
                continue;
            }
            char when[32] = "-";
            if (s->submitted_ms) {
                time_t t = (time_t)(s->submitted_ms / 1000);
                struct tm tm;
                if (localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            }
            printf("%-32s %-9s %-12s %8d %6zu %s\n", s->id, llmos_job_state_name(s->state), s->tenant, s->priority,
                   s->n_tasks, when);
        }
        int more = l->next[0] && l->n_jobs;
        if (more && !all && !json) printf("(more: llmos jobs --after %s)\n", l->next);
        snprintf(after, sizeof after, "%s", l->next);
        llmos_job_list_free(&l);
        if (!all || !more) break;
        o.after = after;
    }
    llmos_client_destroy(&c);
    return status;
}
