/*
 * submit.c — a complete program on libllmos-client (<llmos/client.h> only):
 * a knowledge-augmented generation submitted as a job and streamed.
 *
 * The job has two tasks: "facts" links the prompt's entities in the node's
 * knowledge graph and returns them as sentences; "story" generates from the
 * prompt with those sentences in front of it (input_from).  The program
 * submits the job and streams it in one round trip, printing the generated
 * text as it comes, then the result and where it came from.  Submitting the
 * same id again returns the first job's result (ids are idempotency keys).
 *
 *   example_submit [--endpoint tcp://HOST:PORT] [--id ID] [--no-graph] [--tokens N] [--timeout MS] [PROMPT]
 *
 * The node must serve a model (llmosd --model M ...) and, unless
 * --no-graph, a graph (llmosd --graph DB).  Build against an installed
 * llmos:  cc submit.c $(pkg-config --cflags --libs llmos-client)
 * (statically: $(pkg-config --cflags --libs llmos-client-static)).
 *
 * Exit status: 0 when the job is done; 1 with the reason on stderr when it
 * failed, was cancelled or expired, did not finish in time, or the node
 * could not be reached; 2 usage.
 */
#include <llmos/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int on_event(const llmos_job_event_t *ev, void *user) {
    int *streamed = user;
    if (ev->chunk && strcmp(ev->task, "story") == 0) {
        fputs(ev->chunk, stdout);
        fflush(stdout);
        *streamed = 1;
    }
    if (ev->result && ev->result->kind == LLMOS_TASK_LINK)
        fprintf(stderr, "[facts: %llu found]\n", (unsigned long long)ev->result->facts);
    return 0; /* keep streaming */
}

int main(int argc, char **argv) {
    const char *endpoint = getenv("LLMOS_ENDPOINT"), *prompt = "A virus can cause a disease", *id = NULL;
    int graph = 1;
    unsigned tokens = 80, timeout_ms = 60000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) endpoint = argv[++i];
        else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) id = argv[++i];
        else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
            tokens = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
            timeout_ms = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-graph") == 0) graph = 0;
        else if (argv[i][0] != '-') prompt = argv[i];
        else {
            fprintf(stderr,
                    "usage: %s [--endpoint E] [--id ID] [--no-graph] [--tokens N] [--timeout MS] [PROMPT]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!endpoint) endpoint = "tcp://127.0.0.1:7070";
    char idbuf[64];
    if (!id) { /* a fresh id per run; pass --id to see idempotency at work */
        snprintf(idbuf, sizeof idbuf, "example-%ld", (long)time(NULL));
        id = idbuf;
    }

    llmos_client_error_t err;
    llmos_client_t *c = NULL;
    llmos_job_t *job = NULL;
    llmos_job_status_t *st = NULL;
    int status = 1;
    if (llmos_client_connect(endpoint, NULL, &c, &err) != 0 || llmos_job_new(id, &job, &err) != 0) goto out;

    /* the tasks: facts -> story */
    const char *from[] = {"facts"};
    llmos_task_spec_t facts = {.name = "facts", .kind = LLMOS_TASK_LINK, .text = prompt, .hops = 1, .max_facts = 6};
    llmos_task_spec_t story = {.name = "story", .kind = LLMOS_TASK_GENERATE, .text = prompt,
                               .input_from = graph ? from : NULL, .n_input_from = graph ? 1 : 0,
                               .max_tokens = tokens, .temperature = 0.8f, .top_p = 0.9f, .seed = 42};
    if ((graph && llmos_job_add_task(job, &facts, &err) != 0) || llmos_job_add_task(job, &story, &err) != 0) goto out;
    llmos_job_set_label(job, "from", "examples/submit.c", NULL);

    /* Submit and stream in one round trip (EOVERLOADED: err says when to
     * retry).  Or: llmos_client_submit, then llmos_client_stream or
     * llmos_client_wait with the id, from this or any other process. */
    int streamed = 0;
    fprintf(stderr, "job %s: submitting\n", id);
    int rc = llmos_client_submit_stream(c, job, timeout_ms, on_event, &streamed, &st, &err);
    if (streamed) putchar('\n');
    if (rc != 0 && !st) goto out; /* no answer (err says why: the node is down, unreachable...) */

    const llmos_task_result_t *gen = llmos_job_status_task(st, "story");
    printf("state: %s\n", llmos_job_state_name(st->state));
    if (rc == 0 && st->state == LLMOS_JOB_DONE && gen) {
        const llmos_task_result_t *f = llmos_job_status_task(st, "facts");
        if (f) printf("facts (%llu):\n%s\n", (unsigned long long)f->facts, f->text);
        printf("story (%zu tokens, %s):\n%s\n", gen->n_tokens, gen->finish_reason, gen->text);
        status = 0;
    } else if (rc ==
               LLMOS_CLIENT_ETIMEDOUT) { /* still running: llmos_client_wait(c, id, ...) goes on waiting */
        fprintf(stderr, "example_submit: job %s not finished within %u ms (still %s)\n", id, timeout_ms,
                llmos_job_state_name(st->state));
    } else { /* the job's error, else the first failed task's */
        const llmos_task_result_t *bad = NULL;
        for (size_t i = 0; !bad && i < st->n_tasks; i++)
            if (st->tasks[i].error[0] || st->tasks[i].error_code) bad = &st->tasks[i];
        fprintf(stderr, "example_submit: job %s %s: ", id, llmos_job_state_name(st->state));
        if (st->error[0] || rc)
            fprintf(stderr, "%s\n", st->error[0] ? st->error : err.msg);
        else if (bad)
            fprintf(stderr, "task %s: %s (%s)\n", bad->name, bad->error[0] ? bad->error : "failed",
                    llmos_client_strerror(bad->error_code));
        else
            fprintf(stderr, "no reason given\n");
    }
out:
    if (status && !st) fprintf(stderr, "example_submit: %s (%s)\n", err.msg, llmos_client_strerror(err.code));
    llmos_job_status_free(&st);
    llmos_job_destroy(&job);
    llmos_client_destroy(&c);
    return status;
}
