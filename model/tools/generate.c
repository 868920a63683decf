/*
 * generate.c — `llmos-generate` (run as `llmos generate ...`): load a model,
 * prefill the prompt in one batched forward, then decode token by token,
 * printing text as it is produced and a one-line summary on stderr.
 *
 * -n follows llama2.c's meaning (total positions, prompt included; the
 * prompt is echoed), so `-n 200 --temperature 0` prints exactly what
 * llama2.c's `run -n 200 -t 0` prints.  Generation stops at BOS/EOS, at a
 * stop string, or at -n / the model's seq_len.  --model and --tokenizer
 * names are found as given, else in $LLMOS_MODELS (runtime/base/paths.h).
 *
 * Knowledge-augmented generation (--graph DB): the prompt is linked against
 * the knowledge graph (graph/link.h: longest-match entity linking, 1-2
 * hops, at most --max-facts facts) and the facts' sentences, one per line,
 * are the droppable context of model_prompt_fit (model/model.h), which puts
 * them in front of the prompt in graph/prompt.h's layout — the rule the
 * model shards follow for GenerateRequest.context.  -n keeps its meaning for
 * the user's prompt and the generation; the facts take positions on top of
 * it, up to the model's seq_len, and facts that do not fit are dropped
 * (lowest priority first), never an error.  The facts used are reported on stderr,
 * one "graph fact: <s> <p> <o> ." line each and a count line, and in the
 * --json object.  Linking the graph library into this tool is a deliberate
 * composition at program level: the model library (model/) itself includes
 * no graph code, and this file is the only place the two meet.
 *
 * --json: nothing is streamed; stdout gets one JSON object at the end:
 * {"prompt": the full text the model saw, "text": the continuation,
 * "prompt_tokens", "generated_tokens"[, "graph": {"db", "linked", "used",
 * "prefix_tokens", "facts": [{"s","p","o","hop","sentence"}]}]}.
 */
#include "graph/link.h"
#include "graph/store.h"
#include "model/model.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "runtime/base/paths.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STOPS 16

static void usage(FILE *f) {
    fprintf(f, "usage: llmos-generate --model FILE [--tokenizer FILE] [--prompt TEXT] [-n N]\n"
               "                      [--temperature T] [--top-p P] [--top-k K] [--repetition-penalty R]\n"
               "                      [--stop TEXT]... [--seed S] [--threads N] [--quantize q8]\n"
               "                      [--graph DB [--max-facts N] [--hops K]] [--json] [--show-prompt]\n"
               "  --model FILE      llama2.c .bin or GGUF; a name that is not a file here is looked up in "
               "$LLMOS_MODELS\n"
               "  --tokenizer FILE  llama2.c tokenizer.bin (not needed for GGUF)\n"
               "  -n N              total positions, prompt included (default 256, as llama2.c)\n"
               "  --temperature T   0 = greedy (default 1.0)\n"
               "  --top-p P         nucleus sampling (default 0.9; 1 = off)\n"
               "  --top-k K         keep the K most likely tokens (default 0 = off)\n"
               "  --seed S          sampling seed (default 42)\n"
               "  --threads N       worker threads (default 1)\n"
               "  --quantize q8     quantize fp32 weights to int8 (q8_0) at load\n"
               "  --graph DB        put the facts the prompt mentions (knowledge graph DB) in front of it\n"
               "  --max-facts N     at most N facts (default 20)\n"
               "  --hops K          facts up to K hops from a mention, 1 or 2 (default 1)\n"
               "  --json            print one JSON object at the end instead of streaming text\n"
               "  --show-prompt     print the full prompt the model sees on stderr\n");
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "llmos-generate: %s needs a number in [%g, %g], got '%s'\n", flag, lo, hi, v ? v : "");
        return -1;
    }
    *out = d;
    return 0;
}

/* Where text goes: stdout as it comes, or (--json) a buffer printed at the end. */
typedef struct sink {
    int json;
    char *buf;
    size_t len, cap;
    int nomem;
} sink_t;

/* Writes piece the way llama2.c does: single bytes that are control
 * characters (other than whitespace) are dropped. */
static void emit(sink_t *o, const char *p, size_t n) {
    if (n == 1 && iscntrl((unsigned char)p[0]) && !isspace((unsigned char)p[0])) return;
    if (!o->json) {
        fwrite(p, 1, n, stdout);
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t c = (o->cap ? o->cap * 2 : 4096) + n;
        char *b = realloc(o->buf, c);
        if (!b) {
            o->nomem = 1;
            return;
        }
        o->buf = b;
        o->cap = c;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    o->buf[o->len] = 0;
}

static void flush_out(const sink_t *o) {
    if (!o->json) fflush(stdout);
}

/* ---- --graph: the knowledge-augmented prompt (graph/prompt.h's layout) ---- */

typedef struct graph_opts {
    const char *db;
    int hops, show_prompt;
    size_t max_facts;
} graph_opts_t;

/* Links prompt against the graph: the facts in priority order into *res
 * (caller deinits), their sentences as context lines (one per line; a line
 * break inside a sentence becomes a space) into *context (caller frees). */
static int graph_context(const graph_opts_t *g, const char *prompt, graph_link_result_t *res, char **context,
                         size_t *clen, llmos_error_t *err) {
    graph_store_t *store = NULL;
    graph_reader_t *r = NULL;
    graph_linker_t *l = NULL;
    graph_store_options_t so = {.read_only = 1};
    graph_link_opts_t lo = {.hops = g->hops, .max_facts = g->max_facts};
    memset(res, 0, sizeof *res);
    *context = NULL;
    *clen = 0;
    int rc = graph_store_open(g->db, &so, &store, err);
    if (rc) llmos_error_prefix(err, "--graph: ");
    if (!rc) rc = graph_reader_begin(store, &r, err);
    if (!rc) rc = graph_linker_new(r, &l, err);
    if (!rc) rc = graph_link_text(l, r, prompt, strlen(prompt), &lo, res, err);
    graph_linker_destroy(&l);
    graph_reader_end(&r);
    graph_store_close(&store);
    size_t n = 0;
    for (size_t i = 0; !rc && i < res->nfacts; i++)
        n += strlen(res->facts[i].sentence) + 1;
    if (!rc && !(*context = malloc(n + 1)))
        rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for %zu facts", res->nfacts);
    for (size_t i = 0; !rc && i < res->nfacts; i++) {
        for (const char *c = res->facts[i].sentence; *c; c++)
            (*context)[(*clen)++] = *c == '\n' || *c == '\r' ? ' ' : *c;
        (*context)[(*clen)++] = '\n';
    }
    if (*context) (*context)[*clen] = 0;
    return rc;
}

/* The facts used, on stderr: one N-Triples line each, then a count. */
static void graph_report(const graph_link_result_t *res, size_t used, int prefix_tokens, int budget) {
    for (size_t i = 0; i < used; i++)
        fprintf(stderr, "graph fact: %s %s %s .\n", res->facts[i].s, res->facts[i].p, res->facts[i].o);
    fprintf(stderr, "graph: %zu facts used (%zu linked", used, res->nfacts);
    if (res->nfacts > used) fprintf(stderr, ", %zu dropped to fit %d tokens", res->nfacts - used, budget);
    fprintf(stderr, "), prefix %d tokens\n", prefix_tokens);
}

/* The --json answer on stdout. */
static int print_json(const char *prompt, const sink_t *o, int n_prompt, int generated, const graph_opts_t *g,
                      const graph_link_result_t *gl, size_t used, int prefix_tokens) {
    cJSON *j = cJSON_CreateObject(), *gr = NULL, *facts = NULL;
    int ok = j && cJSON_AddStringToObject(j, "prompt", prompt) &&
             cJSON_AddStringToObject(j, "text", o->buf ? o->buf : "") &&
             cJSON_AddNumberToObject(j, "prompt_tokens", n_prompt) &&
             cJSON_AddNumberToObject(j, "generated_tokens", generated);
    if (ok && g->db) {
        ok = (gr = cJSON_AddObjectToObject(j, "graph")) && cJSON_AddStringToObject(gr, "db", g->db) &&
             cJSON_AddNumberToObject(gr, "linked", (double)gl->nfacts) &&
             cJSON_AddNumberToObject(gr, "used", (double)used) &&
             cJSON_AddNumberToObject(gr, "prefix_tokens", prefix_tokens) &&
             (facts = cJSON_AddArrayToObject(gr, "facts"));
        for (size_t i = 0; ok && i < used; i++) {
            const graph_link_fact_t *f = &gl->facts[i];
            cJSON *fo = cJSON_CreateObject();
            ok = fo && cJSON_AddItemToArray(facts, fo) && cJSON_AddStringToObject(fo, "s", f->s) &&
                 cJSON_AddStringToObject(fo, "p", f->p) && cJSON_AddStringToObject(fo, "o", f->o) &&
                 cJSON_AddNumberToObject(fo, "hop", f->hop) && cJSON_AddStringToObject(fo, "sentence", f->sentence);
        }
    }
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return -1;
    printf("%s\n", s);
    cJSON_free(s);
    return fflush(stdout) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    model_omp_passive(argv);
    const char *model_path = NULL, *tok_path = NULL, *prompt = "", *stops[MAX_STOPS];
    int n_stops = 0, steps = 256, threads = 1, quant = 0;
    graph_opts_t g = {.db = NULL, .hops = 1, .max_facts = 20};
    sink_t out = {0};
    model_sample_opts_t so = {.temperature = 1.0f, .top_p = 0.9f, .top_k = 0, .repetition_penalty = 1.0f, .seed = 42};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            out.json = 1;
            continue;
        }
        if (!strcmp(a, "--show-prompt")) {
            g.show_prompt = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "llmos-generate: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model") || !strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "--tokenizer") || !strcmp(a, "-z")) tok_path = v;
        else if (!strcmp(a, "--prompt") || !strcmp(a, "-i")) prompt = v;
        else if (!strcmp(a, "--graph")) g.db = v;
        else if (!strcmp(a, "--hops")) {
            if (parse_num(a, v, 1, 2, &d)) return 2;
            g.hops = (int)d;
        } else if (!strcmp(a, "--max-facts")) {
            if (parse_num(a, v, 1, 10000, &d)) return 2;
            g.max_facts = (size_t)d;
        }
        else if (!strcmp(a, "--stop")) {
            if (n_stops == MAX_STOPS) {
                fprintf(stderr, "llmos-generate: at most %d --stop strings\n", MAX_STOPS);
                return 2;
            }
            stops[n_stops++] = v;
        } else if (!strcmp(a, "--quantize")) {
            if (strcmp(v, "q8") && strcmp(v, "q8_0")) {
                fprintf(stderr, "llmos-generate: --quantize takes q8\n");
                return 2;
            }
            quant = 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--steps")) {
            if (parse_num(a, v, 1, 1 << 20, &d)) return 2;
            steps = (int)d;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (parse_num(a, v, 1, 256, &d)) return 2;
            threads = (int)d;
        } else if (!strcmp(a, "--temperature")) {
            if (parse_num(a, v, 0, 100, &d)) return 2;
            so.temperature = (float)d;
        } else if (!strcmp(a, "--top-p")) {
            if (parse_num(a, v, 0, 1, &d)) return 2;
            so.top_p = (float)d;
        } else if (!strcmp(a, "--top-k")) {
            if (parse_num(a, v, 0, 1 << 24, &d)) return 2;
            so.top_k = (int)d;
        } else if (!strcmp(a, "--repetition-penalty")) {
            if (parse_num(a, v, 0, 100, &d)) return 2;
            so.repetition_penalty = (float)d;
        } else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) {
            if (parse_num(a, v, 0, 1.8e19, &d)) return 2;
            so.seed = (uint64_t)d;
        } else {
            fprintf(stderr, "llmos-generate: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "llmos-generate: --model is required\n");
        usage(stderr);
        return 2;
    }
    char mbuf[4096], tbuf[4096];
    llmos_error_t err = {0};
    model_load_opts_t lo = {.quantize = quant ? MODEL_DTYPE_Q8_0 : MODEL_DTYPE_F32};
    model_t *m = NULL;
    model_ctx_t *ctx = NULL;
    model_sampler_t *smp = NULL;
    int *toks = NULL, rc = 0;
    char *text = NULL, *context = NULL;
    size_t clen = 0;
    graph_link_result_t gl = {0};
    model_prompt_fit_t fit = {0};
    const char *user_prompt = prompt;
    if (tok_path && (rc = llmos_path_find(tok_path, LLMOS_PATH_MODELS, tbuf, sizeof tbuf, &err))) {
        llmos_error_prefix(&err, "--tokenizer: ");
        goto fail;
    }
    lo.tokenizer_path = tok_path ? tbuf : NULL;
    if ((rc = llmos_path_find(model_path, LLMOS_PATH_MODELS, mbuf, sizeof mbuf, &err))) {
        llmos_error_prefix(&err, "--model: ");
        goto fail;
    }
    if ((rc = model_load(mbuf, &lo, &m, &err))) goto fail;
    const model_config_t *cfg = model_config(m);
    const model_tokenizer_t *tok = model_tokenizer(m);
    if (!tok) {
        rc = llmos_error_set(&err, LLMOS_EINVAL, "%s has no tokenizer: give --tokenizer FILE", mbuf);
        goto fail;
    }
    if (steps > cfg->seq_len) steps = cfg->seq_len;
    /* With --graph the facts are context lines: they get the positions -n
     * leaves free in seq_len, and those that do not fit are dropped (the
     * rule the model shards follow for GenerateRequest.context). */
    if (g.db && (rc = graph_context(&g, prompt, &gl, &context, &clen, &err))) goto fail;
    model_prompt_fit_opts_t fo = {
        .seq_len = cfg->seq_len, .positions = steps, .extra = cfg->seq_len + 1, .positions_name = "-n"};
    if ((rc = model_prompt_fit(tok, context, clen, prompt, strlen(prompt), &fo, &fit, &err))) goto fail;
    if (g.db) graph_report(&gl, (size_t)fit.lines_kept, fit.context_tokens, cfg->seq_len - steps);
    steps = fit.limit;
    prompt = fit.text;
    toks = fit.tokens;
    int cap = fit.cap, n_prompt = fit.n_tokens;
    if (g.show_prompt) fprintf(stderr, "prompt: %s\n", prompt);
    model_ctx_opts_t co = {.threads = threads, .max_seqs = 1, .max_tokens = n_prompt};
    if ((rc = model_ctx_new(m, &co, &ctx, &err))) goto fail;
    if ((rc = model_sampler_new(cfg->vocab_size, &so, &smp, &err))) goto fail;
    int seq;
    if ((rc = model_seq_open(ctx, &seq, &err))) goto fail;

    /* Echo the prompt (after BOS) as llama2.c does; with facts in front,
     * only the user's prompt (--json: nothing, "prompt" holds it all). */
    if (!out.json && fit.prefix_len) {
        fputs(user_prompt, stdout);
    } else if (!out.json) {
        for (int i = 1; i < n_prompt; i++) {
            size_t pl;
            const char *p = model_token_piece(tok, toks[i - 1], toks[i], &pl);
            emit(&out, p, pl);
        }
    }
    flush_out(&out);

    uint64_t t0 = llmos_now_ns();
    model_batch_entry_t be = {seq, toks, n_prompt};
    if ((rc = model_ctx_forward(ctx, &be, 1, &err))) goto fail;
    uint64_t t1 = llmos_now_ns();

    /* Generated text is kept so stop strings spanning tokens are caught;
     * bytes that could start a stop string are held back until decided. */
    size_t text_cap = (size_t)steps * 64 + 1, text_len = 0, printed = 0;
    text = malloc(text_cap);
    if (!text) {
        rc = llmos_error_set(&err, LLMOS_ENOMEM, "no memory");
        goto fail;
    }
    int n_tok = n_prompt, generated = 0, decoded = 0;
    int bos = model_tokenizer_bos(tok), eos = model_tokenizer_eos(tok);
    while (n_tok <= steps) {
        float *logits = (float *)model_ctx_logits(ctx, 0);
        int next = model_sampler_sample(smp, logits, toks, n_tok);
        if (next == bos || next == eos) break;
        size_t pl;
        const char *p = model_token_piece(tok, toks[n_tok - 1], next, &pl);
        generated++;
        if (n_tok < cap) toks[n_tok] = next;
        n_tok++;
        if (n_stops == 0) {
            emit(&out, p, pl);
            flush_out(&out);
        } else {
            if (text_len + pl > text_cap) pl = text_cap - text_len;
            memcpy(text + text_len, p, pl);
            text_len += pl;
            int hit;
            size_t at, hold = model_stop_check(stops, n_stops, text, text_len, &hit, &at);
            size_t upto = hit ? at : text_len - hold;
            if (upto > printed) {
                emit(&out, text + printed, upto - printed);
                flush_out(&out);
                printed = upto;
            }
            if (hit) break;
        }
        if (n_tok > steps) break; /* llama2.c: the last sampled token is not run */
        be = (model_batch_entry_t){seq, &toks[n_tok - 1], 1};
        if ((rc = model_ctx_forward(ctx, &be, 1, &err))) goto fail;
        decoded++;
    }
    if (n_stops && printed < text_len && text_len > 0) {
        int hit;
        size_t at;
        model_stop_check(stops, n_stops, text, text_len, &hit, &at);
        if (!hit) emit(&out, text + printed, text_len - printed);
    }
    if (out.nomem) {
        rc = llmos_error_set(&err, LLMOS_ENOMEM, "no memory for the generated text");
        goto fail;
    }
    if (out.json) {
        if (print_json(prompt, &out, n_prompt, generated, &g, &gl, (size_t)fit.lines_kept,
                       fit.context_tokens)) {
            rc = llmos_error_set(&err, LLMOS_EIO, "writing the JSON answer failed");
            goto fail;
        }
    } else {
        printf("\n");
        fflush(stdout);
    }
    uint64_t t2 = llmos_now_ns();
    double pre_s = (double)(t1 - t0) / 1e9, dec_s = (double)(t2 - t1) / 1e9;
    fprintf(stderr, "generate: %d tokens (%d prompt), prefill %.1f tok/s, decode %.1f tok/s, threads %d, blis %s%s\n",
            generated, n_prompt, pre_s > 0 ? n_prompt / pre_s : 0, dec_s > 0 && decoded ? decoded / dec_s : 0, threads,
            model_blis_init(), quant ? ", q8" : "");
    model_sampler_destroy(&smp);
    model_ctx_destroy(&ctx);
    model_destroy(&m);
    graph_link_result_deinit(&gl);
    model_prompt_fit_deinit(&fit);
    free(context);
    free(out.buf);
    free(text);
    return 0;
fail:
    fprintf(stderr, "llmos-generate: %s\n", err.msg[0] ? err.msg : llmos_strerror(rc));
    model_sampler_destroy(&smp);
    model_ctx_destroy(&ctx);
    model_destroy(&m);
    graph_link_result_deinit(&gl);
    model_prompt_fit_deinit(&fit);
    free(context);
    free(out.buf);
    free(text);
    return 1;
}
