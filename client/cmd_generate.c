/*
 * cmd_generate.c — `llmos [--endpoint E] generate ...` (without --model,
 * which generates locally with llmos-generate) and `llmos [--endpoint E]
 * model stats|load|unload`: generation on a node's model actor (llmosd
 * --model M) and its control.
 *
 * The flags and their defaults are llmos-generate's (-n = positions, prompt
 * included; the prompt is echoed; temperature 1, top-p 0.9, seed 42), and
 * stdout is byte for byte what `llmos generate` prints locally for the same
 * model and flags: the text, then a newline.  A one-line summary goes to
 * stderr.  With --graph the prompt is first linked by the node's `graph`
 * actor; the facts found are put in front of the prompt as sentences
 * (graph/prompt.h's layout), the triples used are listed on stderr, -n
 * counts generated tokens and only the user's prompt is echoed.
 *
 * Links libllmos-client (its public header) and cJSON only.
 */
#include "cli.h"
#include "cmd_generate.h"

#include "llmos/client.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STOPS 16
#define GEN_DEFAULT_TIMEOUT_MS 600000u /* when the global --timeout was left at its default */

static void gen_usage(FILE *f) {
    fprintf(
        f,
        "usage: llmos [--endpoint E] generate [--prompt TEXT] [-n N] [--temperature T] [--top-p P] [--top-k "
        "K]\n"
        "                                     [--repetition-penalty R] [--seed S] [--stop TEXT]... "
        "[--stream]\n"
        "                                     [--actor model|model/R] [--graph [--hops K] [--max-facts N]]\n"
        "  Generates with the node's model (llmosd --model M); the text goes to stdout, a summary to "
        "stderr.\n"
        "  The flags and defaults are llmos-generate's: -n = positions, prompt included (with --graph:\n"
        "  generated tokens); temperature 1, top-p 0.9, seed 42.  --graph puts the facts the node's graph\n"
        "  links to the prompt in front of it.\n"
        "  llmos generate --model FILE ... generates locally instead (llmos-generate --help).\n");
}

static void model_usage(FILE *f) {
    fprintf(f,
            "usage: llmos [--endpoint E] model stats [--actor model|model/R]\n"
            "       llmos [--endpoint E] model load PATH|'' [--tokenizer FILE] [--q8] [--classifier DIR]\n"
            "                                               [--actor model|model/R]\n"
            "       llmos [--endpoint E] model unload [--actor model|model/R]\n"
            "  stats: the model actor's counters; load: serve another model (a bare name is looked up in\n"
            "  $LLMOS_MODELS on the node; the old model serves until the new one is loaded); unload: stop\n"
            "  serving.  Each prints the model's counters afterwards.\n");
}

static int num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "llmos generate: %s needs a number in [%g, %g], got '%s'\n", flag, lo, hi, v ? v : "");
        return -1;
    }
    *out = d;
    return 0;
}

static int print_piece(void *user, const char *text, size_t len, const int32_t *tokens, size_t n_tokens) {
    (void)user;
    (void)tokens;
    (void)n_tokens;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* Asks the graph actor to link text (JSON answer) and returns its facts,
 * one sentence per line (*out, caller frees; "" for none): the generation's
 * context, which the node lays out as graph/prompt.h does (facts, an empty
 * line, the prompt) and trims to the model's window.  The triples found go
 * to stderr. */
static int graph_prompt(llmos_client_t *c, const char *text, uint32_t max_facts, uint32_t hops, uint32_t timeout_ms,
                        char **out) {
    /* hops_set: --hops 0 means only the facts between the mentions */
    llmos_client_link_opts_t lo = {.hops = hops, .hops_set = 1, .max_facts = max_facts, .format = "json"};
    char *answer = NULL;
    llmos_client_error_t err;
    if (llmos_client_graph_link(c, text, &lo, timeout_ms, &answer, NULL, &err) != 0) {
        fprintf(stderr, "llmos generate --graph: linking the prompt: %s\n", err.msg);
        return -1;
    }
    cJSON *j = cJSON_Parse(answer);
    free(answer);
    cJSON *facts = j ? cJSON_GetObjectItemCaseSensitive(j, "facts") : NULL;
    if (!cJSON_IsArray(facts)) {
        fprintf(stderr, "llmos generate --graph: the graph's answer has no facts list\n");
        cJSON_Delete(j);
        return -1;
    }
    size_t cap = 1, len = 0;
    cJSON *f;
    cJSON_ArrayForEach(f, facts) {
        cJSON *sen = cJSON_GetObjectItemCaseSensitive(f, "sentence");
        if (cJSON_IsString(sen)) cap += strlen(sen->valuestring) + 1;
    }
    char *p = malloc(cap);
    if (!p) {
        cJSON_Delete(j);
        return -1;
    }
    int used = 0;
    cJSON_ArrayForEach(f, facts) {
        cJSON *sen = cJSON_GetObjectItemCaseSensitive(f, "sentence");
        if (!cJSON_IsString(sen)) continue;
        size_t sl = strlen(sen->valuestring);
        memcpy(p + len, sen->valuestring, sl);
        len += sl;
        p[len++] = '\n';
        cJSON *s = cJSON_GetObjectItemCaseSensitive(f, "s"), *pr = cJSON_GetObjectItemCaseSensitive(f, "p"),
              *o = cJSON_GetObjectItemCaseSensitive(f, "o");
        if (!used++) fprintf(stderr, "graph: triples used:\n");
        fprintf(stderr, "  %s %s %s\n", cJSON_IsString(s) ? s->valuestring : "?",
                cJSON_IsString(pr) ? pr->valuestring : "?", cJSON_IsString(o) ? o->valuestring : "?");
    }
    if (!used) fprintf(stderr, "graph: no facts for this prompt\n");
    p[len] = 0;
    cJSON_Delete(j);
    *out = p;
    return 0;
}

static int cmd_generate(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    const char *prompt = "", *stops[MAX_STOPS], *actor = "model";
    int n_stops = 0, stream = 0, use_graph = 0;
    double steps = 256, max_facts = 20, hops = 1, d;
    llmos_client_gen_opts_t o = {.temperature = 1.0f, .top_p = 0.9f, .repetition_penalty = 1.0f, .seed = 42};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--stream")) {
            stream = 1;
            continue;
        }
        if (!strcmp(a, "--graph")) {
            use_graph = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "llmos generate: %s needs a value\n", a);
            gen_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--prompt") || !strcmp(a, "-i")) prompt = v;
        else if (!strcmp(a, "--actor")) actor = v;
        else if (!strcmp(a, "--stop")) {
            if (n_stops == MAX_STOPS) {
                fprintf(stderr, "llmos generate: at most %d --stop strings\n", MAX_STOPS);
                return 2;
            }
            stops[n_stops++] = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--steps")) {
            if (num(a, v, 1, 1 << 20, &steps)) return 2;
        } else if (!strcmp(a, "--temperature")) {
            if (num(a, v, 0, 100, &d)) return 2;
            o.temperature = (float)d;
        } else if (!strcmp(a, "--top-p")) {
            if (num(a, v, 0, 1, &d)) return 2;
            o.top_p = (float)d;
        } else if (!strcmp(a, "--top-k")) {
            if (num(a, v, 0, 1 << 24, &d)) return 2;
            o.top_k = (uint32_t)d;
        } else if (!strcmp(a, "--repetition-penalty")) {
            if (num(a, v, 0, 100, &d)) return 2;
            o.repetition_penalty = (float)d;
        } else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) {
            if (num(a, v, 0, 1.8e19, &d)) return 2;
            o.seed = (uint64_t)d;
        } else if (!strcmp(a, "--hops")) {
            if (num(a, v, 0, 2, &hops)) return 2;
        } else if (!strcmp(a, "--max-facts")) {
            if (num(a, v, 1, 1000, &max_facts)) return 2;
        } else {
            fprintf(stderr, "llmos generate: unknown option %s\n", a);
            gen_usage(stderr);
            return 2;
        }
    }
    llmos_client_opts_t co = {.timeout_ms = timeout_ms};
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    /* A generation may take minutes; whether the node is there at all is
     * known within the --timeout (5 s by default). */
    if (llmos_client_connect(endpoint, &co, &c, &err) != 0 || llmos_client_ping(c, timeout_ms, NULL, &err) != 0) {
        fprintf(stderr, "llmos generate: %s\n", err.msg);
        llmos_client_destroy(&c);
        return 1;
    }
    char *full = NULL;
    const char *user_prompt = prompt;
    if (use_graph) {
        if (graph_prompt(c, prompt, (uint32_t)max_facts, (uint32_t)hops, timeout_ms, &full) != 0) {
            llmos_client_destroy(&c);
            return 1;
        }
        o.context = full;
    }
    o.actor = actor;
    /* With --graph, -n counts generated tokens (the facts' length is the
     * node's business) and only the user's prompt is echoed. */
    if (use_graph)
        o.max_tokens = (uint32_t)steps;
    else
        o.max_positions = (uint32_t)steps;
    o.stop = stops;
    o.n_stop = (size_t)n_stops;
    o.echo_prompt = !use_graph;
    if (use_graph) {
        fputs(user_prompt, stdout);
        fflush(stdout);
    }
    o.timeout_ms = timeout_ms == 5000 ? GEN_DEFAULT_TIMEOUT_MS : timeout_ms;
    llmos_client_gen_result_t *res = NULL;
    int rc = llmos_client_generate(c, prompt, &o, stream ? print_piece : NULL, NULL, &res, &err);
    int status = 0;
    if (rc) {
        if (stream) printf("\n");
        fprintf(stderr, "llmos generate: %s (%s)%s\n", err.msg, llmos_client_strerror(rc),
                rc == LLMOS_CLIENT_ETIMEDOUT ? "; to generate locally, give --model FILE" : "");
        status = 1;
    } else {
        if (!stream) fwrite(res->text, 1, res->text_len, stdout);
        printf("\n");
        fflush(stdout);
        if (res->context_lines_dropped)
            fprintf(stderr, "graph: %u of %u facts did not fit the model's context and were left out\n",
                    res->context_lines_dropped, res->context_lines_kept + res->context_lines_dropped);
        fprintf(stderr, "generate: %zu tokens (%u prompt), first token %.1f ms, total %.1f ms, queued %.1f ms, %s\n",
                res->n_tokens, res->prompt_tokens, (double)res->time_to_first_token_us / 1e3,
                (double)res->total_us / 1e3, (double)res->queued_us / 1e3, res->finish_reason);
    }
    llmos_client_gen_result_free(&res);
    llmos_client_destroy(&c);
    free(full);
    return status;
}

/* `model stats|unload|load PATH [--tokenizer T] [--q8]`: each answers ModelStats. */
static int cmd_model_stats(const char *endpoint, uint32_t timeout_ms, int argc, char **argv) {
    const char *actor = "model", *sub = argv[0];
    llmos_client_model_load_opts_t q = {0};
    int load = !strcmp(sub, "load"), unload = !strcmp(sub, "unload");
    int i = 1;
    if (load) {
        if (argc < 2) {
            model_usage(stderr);
            return 2;
        }
        q.path = argv[i++];
    }
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--actor") && i + 1 < argc) {
            actor = argv[++i];
        } else if (load && !strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            q.tokenizer = argv[++i];
        } else if (load && !strcmp(argv[i], "--classifier") && i + 1 < argc) {
            q.classifier = argv[++i]; /* PATH "" = the checkpoint's base model */
        } else if (load && !strcmp(argv[i], "--q8")) {
            q.q8 = 1;
        } else {
            model_usage(stderr);
            return 2;
        }
    }
    llmos_client_opts_t co = {.timeout_ms = timeout_ms};
    llmos_client_t *c = NULL;
    llmos_client_error_t err;
    llmos_client_model_stats_t *s = NULL;
    /* A load reads a whole model: give it minutes unless --timeout said otherwise. */
    uint32_t t = load && timeout_ms == 5000 ? GEN_DEFAULT_TIMEOUT_MS : 0;
    int rc = llmos_client_connect(endpoint, &co, &c, &err);
    if (rc == 0 && t) rc = llmos_client_ping(c, timeout_ms, NULL, &err); /* there at all? (the load may take minutes) */
    if (rc == 0)
        rc = load     ? llmos_client_model_load(c, actor, &q, t, &s, &err)
             : unload ? llmos_client_model_unload(c, actor, t, &s, &err)
                      : llmos_client_model_stats(c, actor, t, &s, &err);
    llmos_client_destroy(&c);
    if (rc != 0) {
        fprintf(stderr, "llmos model %s: %s\n", sub, err.msg);
        return 1;
    }
    printf("model              %s\n", s->model);
    printf("replica            %u\n", s->replica);
    printf("tp                 %u\n", s->tp);
    printf("available          %s\n", s->available ? "yes" : "no");
    printf("running            %u\n", s->running);
    printf("queued             %u\n", s->queued);
    printf("kv_blocks_used     %u\n", s->kv_blocks_used);
    printf("kv_blocks_total    %u\n", s->kv_blocks_total);
    printf("requests_done      %llu\n", (unsigned long long)s->requests_done);
    printf("tokens_generated   %llu\n", (unsigned long long)s->tokens_generated);
    printf("iterations         %llu\n", (unsigned long long)s->iterations);
    printf("prompt_tokens      %llu\n", (unsigned long long)s->prompt_tokens);
    printf("rejected_overload  %llu\n", (unsigned long long)s->rejected_overloaded);
    printf("token_budget       %u\n", s->token_budget);
    printf("queue_limit        %u\n", s->queue_limit);
    printf("vocab_size         %u\n", s->vocab_size);
    printf("seq_len            %u\n", s->seq_len);
    printf("dim                %u\n", s->dim);
    if (s->classifier[0])
        printf("classifier         %s (version %u, %u classes)\n", s->classifier, s->classifier_version, s->classes);
    llmos_client_model_stats_free(&s);
    return 0;
}

int cmd_generate_main(const char *endpoint, uint32_t timeout_ms, const char *cmd, int argc, char **argv) {
    int help = cli_help_asked(argc, argv);
    if (strcmp(cmd, "generate") == 0) {
        if (help) gen_usage(stdout);
        return help ? 0 : cmd_generate(endpoint, timeout_ms, argc, argv);
    }
    if (help || (argc && strcmp(argv[0], "help") == 0)) {
        model_usage(stdout);
        return 0;
    }
    if (argc >= 1 && (!strcmp(argv[0], "stats") || !strcmp(argv[0], "load") || !strcmp(argv[0], "unload")))
        return cmd_model_stats(endpoint, timeout_ms, argc, argv);
    if (argc >= 1)
        fprintf(stderr, "llmos model: '%s' is not a model command (stats, load, unload)\n", argv[0]);
    model_usage(stderr);
    return 2;
}
