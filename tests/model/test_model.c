/*
 * Unit tests of model/: tokenizer round trips, batched paged-KV decode
 * against one-sequence-at-a-time decode, every row's hidden state
 * (model_ctx_forward_rows) against one row per forward, KV pool accounting, sampling,
 * stop strings, save/load, and truncated / corrupted checkpoints and GGUF
 * files (every header field) — all on the real stories260K model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "model/model.h"
#include "model/tokenizer_internal.h"
#include "model/q8.h"
#include "runtime/base/log.h"
#include "runtime/base/paths.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char models[2048], bin_path[2300], tok_path[2300], gguf_path[2300];

static int setup_paths(void) {
    llmos_error_t e = {0};
    if (llmos_models_dir(NULL, models, sizeof models, &e)) return -1;
    snprintf(bin_path, sizeof bin_path, "%s/stories260K.bin", models);
    snprintf(tok_path, sizeof tok_path, "%s/tok512.bin", models);
    snprintf(gguf_path, sizeof gguf_path, "%s/stories260K.gguf", models);
    return 0;
}

static model_t *load_bin(void) {
    model_load_opts_t o = {.tokenizer_path = tok_path};
    model_t *m = NULL;
    llmos_error_t e = {0};
    int rc = model_load(bin_path, &o, &m, &e);
    if (rc) fprintf(stderr, "load: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return m;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* ------------------------------------------------------------ tokenizer */

static void roundtrip(const model_tokenizer_t *t, const char *s, size_t n) {
    int cap = (int)n + 3, cnt;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    char *back = malloc(n * 8 + 16);
    llmos_error_t e = {0};
    assert_int_equal(model_tokenize(t, s, n, 1, 0, ids, cap, &cnt, &e), 0);
    assert_true(cnt >= 1 && ids[0] == model_tokenizer_bos(t));
    size_t bn;
    assert_int_equal(model_detokenize(t, ids, cnt, back, n * 8 + 16, &bn, &e), 0);
    assert_int_equal(bn, n);
    assert_memory_equal(back, s, n);
    free(ids);
    free(back);
}

static void test_tokenizer_known(void **state) {
    (void)state;
    model_t *m = load_bin();
    const model_tokenizer_t *t = model_tokenizer(m);
    int ids[64], n;
    llmos_error_t e = {0};
    assert_int_equal(model_tokenize(t, "", 0, 1, 0, ids, 64, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(model_tokenize(t, "Once upon a time", 16, 1, 1, ids, 64, &n, &e), 0);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[n - 1], 2);
    assert_true(n < 10); /* merges happened */
    /* Too small an output array is an error, not an overflow. */
    assert_int_equal(model_tokenize(t, "Once upon a time", 16, 1, 1, ids, 3, &n, &e), LLMOS_ETOOBIG);
    /* A character outside the vocabulary falls back to its UTF-8 bytes. */
    assert_int_equal(model_tokenize(t, "\xf0\x9f\x98\x80", 4, 0, 0, ids, 64, &n, &e), 0);
    assert_true(n >= 4);
    size_t pl;
    const char *p = model_token_piece(t, 5, ids[n - 1], &pl);
    assert_int_equal(pl, 1);
    assert_int_equal((unsigned char)p[0], 0x80);
    assert_null(model_token_piece(t, 1, 512, &pl));
    model_destroy(&m);
}

static void test_tokenizer_roundtrip(void **state) {
    (void)state;
    model_t *m = load_bin();
    const model_tokenizer_t *t = model_tokenizer(m);
    const char *fixed[] = {"Once upon a time, there was a little girl named Lily.",
                           " leading space", "  two spaces\tand a tab\n\nnewlines",
                           "caf\xc3\xa9 \xe2\x82\xac 100 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
                           "<0x0A> looks like a byte token", "<s></s><unk>"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) roundtrip(t, fixed[i], strlen(fixed[i]));
    char buf[600];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 0, want = 1 + rnd() % 120;
        while (n < want) {
            uint32_t kind = rnd() % 6, cp;
            if (kind == 0) { /* any byte at all, NUL and invalid UTF-8 included */
                buf[n++] = (char)(rnd() & 0xff);
                continue;
            }
            cp = kind <= 2 ? 32 + rnd() % 95 : kind == 3 ? 0x80 + rnd() % 0x780 : kind == 4 ? 0x800 + rnd() % 0xd000 : 0x10000 + rnd() % 0xfffff;
            if (cp < 0x80) buf[n++] = (char)cp;
            else if (cp < 0x800) {
                buf[n++] = (char)(0xc0 | cp >> 6);
                buf[n++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                buf[n++] = (char)(0xe0 | cp >> 12);
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                buf[n++] = (char)(0x80 | (cp & 0x3f));
            } else {
                buf[n++] = (char)(0xf0 | cp >> 18);
                buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                buf[n++] = (char)(0x80 | (cp & 0x3f));
            }
        }
        roundtrip(t, buf, n);
    }
    model_destroy(&m);
}

/* llama2.c's merge loop, written out as it is there (rescan after every
 * merge: the best score, the leftmost among equals), on the pieces of t. */
static int naive_merge(const model_tokenizer_t *t, int *ids, int n) {
    for (;;) {
        float best = -1e30f;
        int best_id = -1, at = -1;
        for (int i = 0; i + 1 < n; i++) {
            const char *pa = t->piece[ids[i]], *pb = t->piece[ids[i + 1]];
            int la = t->len[ids[i]], lb = t->len[ids[i + 1]];
            if (t->type[ids[i]] != MODEL_TOK_NORMAL || t->type[ids[i + 1]] != MODEL_TOK_NORMAL) continue;
            for (int v = 0; v < t->vocab_size;
                 v++) /* the first of duplicate pieces wins, as the hash table */
                if (t->type[v] == MODEL_TOK_NORMAL && t->len[v] == la + lb &&
                    !memcmp(t->piece[v], pa, (size_t)la) && !memcmp(t->piece[v] + la, pb, (size_t)lb)) {
                    if (t->score[v] > best) {
                        best = t->score[v];
                        best_id = v;
                        at = i;
                    }
                    break;
                }
        }
        if (best_id < 0) return n;
        ids[at] = best_id;
        memmove(ids + at + 1, ids + at + 2, sizeof(int) * (size_t)(n - at - 2));
        n--;
    }
}

/* The heap merge gives llama2.c's tokens (the rule rescanned naively on
 * the unmerged symbols), and 1 MiB of text tokenizes in well under a
 * second (the rescan took minutes). */
static void test_tokenizer_heap_equals_rescan(void **state) {
    (void)state;
    model_t *m = load_bin();
    const model_tokenizer_t *t = model_tokenizer(m);
    static const char *words[] = {
        "Once", " upon", " a",   " time", " the", " cat", "\xc3\xa9", "\xf0\x9f\x98\x80",
        "\n",   "  ",    "ab",   "x",     "zzz",  ".",    ",",        " Lily",
        " Tom", "\x01",  "\xff", "aaaa",  "ing"};
    char buf[2048];
    int got[2100], want[2100], n1, n2;
    llmos_error_t e = {0};
    for (int trial = 0; trial < 400; trial++) {
        size_t n = 0;
        for (int w = (int)(rnd() % 80); w > 0; w--) {
            const char *p = words[rnd() % (sizeof words / sizeof words[0])];
            memcpy(buf + n, p, strlen(p));
            n += strlen(p);
        }
        assert_int_equal(model_tokenize(t, buf, n, 1, 0, got, 2100, &n1, &e), 0);
        /* The unmerged symbols: what model_tokenize pushes before merging. */
        int k = 0;
        want[k++] = t->bos;
        if (n) {
            int sp = -1;
            for (int v = 0; v < t->vocab_size && sp < 0; v++)
                if (t->type[v] == MODEL_TOK_NORMAL && t->len[v] == 1 && t->piece[v][0] == ' ') sp = v;
            if (sp >= 0) want[k++] = sp;
        }
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            while (j < n && j - i < 4 && ((uint8_t)buf[j] & 0xc0) == 0x80)
                j++;
            int id = -1;
            for (int v = 0; v < t->vocab_size && id < 0; v++)
                if (t->type[v] == MODEL_TOK_NORMAL && t->len[v] == (int)(j - i) &&
                    !memcmp(t->piece[v], buf + i, j - i))
                    id = v;
            if (id >= 0)
                want[k++] = id;
            else
                for (size_t b = i; b < j; b++)
                    want[k++] = t->byte_id[(uint8_t)buf[b]] >= 0 ? t->byte_id[(uint8_t)buf[b]] : 0;
            i = j;
        }
        n2 = naive_merge(t, want, k);
        assert_int_equal(n1, n2);
        assert_memory_equal(got, want, sizeof(int) * (size_t)n1);
    }
    size_t big = (size_t)1 << 20;
    char *text = malloc(big);
    int *ids = malloc(sizeof(int) * (big + 3));
    for (size_t i = 0; i < big; i++)
        text[i] = "Once upon a time there was a cat. "[i % 34];
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    assert_int_equal(model_tokenize(t, text, big, 1, 0, ids, (int)big + 3, &n1, &e), 0);
    double secs = (double)clock() / CLOCKS_PER_SEC - t0;
    assert_true(n1 > 1000 && n1 < (int)big / 2);
    if (secs > 3) fprintf(stderr, "1 MiB took %.2f s\n", secs);
    assert_true(secs < 3);
    roundtrip(t, text, 100000);
    free(text);
    free(ids);
    model_destroy(&m);
}

/* ------------------------------------------------------------ prompt with droppable context */

static int ntok(const model_tokenizer_t *t, const char *s) {
    int n, cap = (int)strlen(s) + 3;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    llmos_error_t e = {0};
    assert_int_equal(model_tokenize(t, s, strlen(s), 1, 0, ids, cap, &n, &e), 0);
    free(ids);
    return n;
}

/* lines[0..k) + empty line + prompt: graph/prompt.h's layout, written out here. */
static char *layout_k(const char *const *lines, int k, const char *prompt) {
    size_t n = strlen(prompt) + 2;
    for (int i = 0; i < k; i++)
        n += strlen(lines[i]) + 1;
    char *s = malloc(n);
    s[0] = 0;
    for (int i = 0; i < k; i++) {
        strcat(s, lines[i]);
        strcat(s, "\n");
    }
    if (k) strcat(s, "\n");
    strcat(s, prompt);
    return s;
}

static void test_prompt_fit(void **state) {
    (void)state;
    model_t *m = load_bin();
    const model_tokenizer_t *t = model_tokenizer(m);
    const int S = model_config(m)->seq_len;
    llmos_error_t e = {0};
    model_prompt_fit_t f;
    /* No context: the prompt alone, with BOS; extra entries after it. */
    model_prompt_fit_opts_t o = {.seq_len = S, .extra = 7};
    assert_int_equal(model_prompt_fit(t, NULL, 0, "Once upon a time", 16, &o, &f, &e), 0);
    assert_string_equal(f.text, "Once upon a time");
    assert_int_equal(f.n_tokens, ntok(t, "Once upon a time"));
    assert_int_equal(f.n_prompt, f.n_tokens);
    assert_true(f.cap >= f.n_tokens + 7);
    assert_int_equal(f.lines_kept + f.lines_dropped + f.context_tokens + (int)f.prefix_len, 0);
    assert_int_equal(f.limit, S);
    model_prompt_fit_deinit(&f);
    /* Lines that fit: all kept, in the layout; empty lines and a missing last newline do not matter. */
    const char *lines[] = {"lily owns tom.", "lily likes ball.", "tom is a cat \xf0\x9f\x90\x88."};
    const char *ctx = "\n\nlily owns tom.\n\n\nlily likes ball.\ntom is a cat \xf0\x9f\x90\x88.";
    assert_int_equal(model_prompt_fit(t, ctx, strlen(ctx), "Lily saw Tom", 12, &o, &f, &e), 0);
    char *want = layout_k(lines, 3, "Lily saw Tom");
    assert_string_equal(f.text, want);
    assert_int_equal(f.prefix_len, strlen(want) - 12);
    assert_int_equal(f.lines_kept, 3);
    assert_int_equal(f.lines_dropped, 0);
    assert_int_equal(f.n_tokens, ntok(t, want));
    assert_int_equal(f.n_prompt, ntok(t, "Lily saw Tom"));
    assert_int_equal(f.context_tokens, f.n_tokens - f.n_prompt);
    free(want);
    model_prompt_fit_deinit(&f);
    /* 300 lines, three promises: the most lines that keep the promise, whole, from the front. */
    enum { NL = 300 };
    char *all[NL], *ctxbig = malloc(NL * 64);
    ctxbig[0] = 0;
    for (int i = 0; i < NL; i++) {
        all[i] = malloc(64);
        snprintf(all[i], 64, "fact %d: the %s is happy.", i, i % 2 ? "dog" : "cat");
        strcat(ctxbig, all[i]);
        strcat(ctxbig, "\n");
    }
    const char *P = "Once upon a time";
    const int np = ntok(t, P);
    const struct {
        int positions, max_new;
    } promise[] = {{0, 0}, {0, 40}, {100, 0}, {100, 10}, {S, 0}, {S + 50, 0}, {np, 0}};
    for (size_t c = 0; c < sizeof promise / sizeof promise[0]; c++) {
        o = (model_prompt_fit_opts_t){
            .seq_len = S, .positions = promise[c].positions, .max_new = promise[c].max_new};
        assert_int_equal(model_prompt_fit(t, ctxbig, strlen(ctxbig), P, strlen(P), &o, &f, &e), 0);
        int pos = promise[c].positions > S ? S : promise[c].positions;
        int room = pos ? pos - np + 1 : 1; /* generated tokens promised */
        if (promise[c].max_new && (promise[c].max_new < room || !pos)) room = promise[c].max_new;
        int k = f.lines_kept;
        assert_int_equal(k + f.lines_dropped, NL);
        want = layout_k((const char *const *)all, k, P);
        assert_string_equal(f.text, want);
        assert_true(f.n_tokens + room - 1 <= S);
        free(want);
        if (k < NL) { /* one more line breaks the promise */
            want = layout_k((const char *const *)all, k + 1, P);
            assert_true(ntok(t, want) + room - 1 > S);
            free(want);
        }
        assert_int_equal(f.limit, pos ? (pos + f.context_tokens < S ? pos + f.context_tokens : S) : S);
        if (pos >= S) assert_int_equal(k, 0); /* -n takes every position: no room for context */
        if (pos == np) assert_true(k > 0);    /* the prompt alone: the rest of seq_len is the context's */
        if (!pos && !promise[c].max_new) assert_true(f.n_tokens > S - 20);
        model_prompt_fit_deinit(&f);
    }
    /* The prompt alone too long: ETOOBIG with the numbers; in bytes, before tokenizing. */
    const char *longp = "Once upon a time there was a little girl";
    const int nl = ntok(t, longp);
    o = (model_prompt_fit_opts_t){.seq_len = nl - 1};
    assert_int_equal(model_prompt_fit(t, "a\n", 2, longp, strlen(longp), &o, &f, &e), LLMOS_ETOOBIG);
    char says[96];
    snprintf(says, sizeof says, "the prompt is %d tokens, more than seq_len %d", nl, nl - 1);
    assert_non_null(strstr(e.msg, says));
    assert_null(f.text);
    o.seq_len = nl; /* exactly: fits, room for one generated token, no context */
    assert_int_equal(model_prompt_fit(t, "a\n", 2, longp, strlen(longp), &o, &f, &e), 0);
    assert_int_equal(f.lines_kept, 0);
    assert_int_equal(f.lines_dropped, 1);
    model_prompt_fit_deinit(&f);
    o = (model_prompt_fit_opts_t){.seq_len = S, .positions = 4, .positions_name = "-n"};
    assert_int_equal(model_prompt_fit(t, NULL, 0, "Once upon a time", 16, &o, &f, &e), LLMOS_ETOOBIG);
    assert_non_null(strstr(e.msg, "more than -n 4"));
    size_t big = (size_t)1 << 20;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        text[i] = "ab cd\n"[i % 6];
    text[big] = 0;
    o = (model_prompt_fit_opts_t){.seq_len = S};
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    assert_int_equal(model_prompt_fit(t, NULL, 0, text, big, &o, &f, &e), LLMOS_ETOOBIG);
    assert_non_null(strstr(e.msg, "1048576 bytes"));
    /* A 1 MiB context of short lines: a prefix kept, the rest dropped, fast. */
    assert_int_equal(model_prompt_fit(t, text, big, "Hi", 2, &o, &f, &e), 0);
    assert_true(f.lines_kept > 10 &&
                f.lines_kept + f.lines_dropped == (int)((big + 5) / 6)); /* the last one unfinished */
    assert_true(f.n_tokens <= S);
    model_prompt_fit_deinit(&f);
    assert_true((double)clock() / CLOCKS_PER_SEC - t0 < 2);
    /* Empty everything; bad options. */
    assert_int_equal(model_prompt_fit(t, "", 0, "", 0, &o, &f, &e), 0);
    assert_int_equal(f.n_tokens, 1);
    assert_string_equal(f.text, "");
    model_prompt_fit_deinit(&f);
    assert_int_equal(model_prompt_fit(t, "x\n", 2, NULL, 0, &o, &f, &e), 0);
    assert_string_equal(f.text, "x\n\n");
    model_prompt_fit_deinit(&f);
    o.seq_len = 0;
    assert_int_equal(model_prompt_fit(t, NULL, 0, "x", 1, &o, &f, &e), LLMOS_EINVAL);
    o = (model_prompt_fit_opts_t){.seq_len = S, .max_new = -1};
    assert_int_equal(model_prompt_fit(t, NULL, 0, "x", 1, &o, &f, &e), LLMOS_EINVAL);
    model_prompt_fit_deinit(&f); /* after an error: empty, safe */
    for (int i = 0; i < NL; i++)
        free(all[i]);
    free(ctxbig);
    free(text);
    model_destroy(&m);
}

static void test_gguf_vocab_equals_tokenizer_bin(void **state) {
    (void)state;
    model_t *a = load_bin(), *b = NULL;
    llmos_error_t e = {0};
    assert_int_equal(model_load(gguf_path, NULL, &b, &e), 0);
    const model_tokenizer_t *ta = model_tokenizer(a), *tb = model_tokenizer(b);
    const char *s = "The little dog said: \"Let's play!\" \xc3\xa9\n";
    int ia[128], ib[128], na, nb;
    assert_int_equal(model_tokenize(ta, s, strlen(s), 1, 0, ia, 128, &na, &e), 0);
    assert_int_equal(model_tokenize(tb, s, strlen(s), 1, 0, ib, 128, &nb, &e), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, sizeof(int) * (size_t)na);
    model_destroy(&a);
    model_destroy(&b);
}

/* ------------------------------------------------------------ forward */

#define NSEQ 8
#define DECODE_STEPS 6

static void test_batched_equals_sequential(void **state) {
    (void)state;
    model_t *m = load_bin();
    const model_config_t *cfg = model_config(m);
    int V = cfg->vocab_size;
    int lens[NSEQ] = {1, 3, 5, 7, 16, 17, 33, 2};
    int toks[NSEQ][64];
    for (int s = 0; s < NSEQ; s++) {
        toks[s][0] = 1;
        for (int i = 1; i < 64; i++) toks[s][i] = 3 + (int)(rnd() % (uint32_t)(V - 3));
    }
    /* Reference: each sequence alone, one token per forward. */
    static float ref[NSEQ][DECODE_STEPS + 1][512];
    llmos_error_t e = {0};
    for (int s = 0; s < NSEQ; s++) {
        model_ctx_t *c = NULL;
        model_ctx_opts_t o = {.threads = 1, .max_seqs = 1, .max_tokens = 1};
        assert_int_equal(model_ctx_new(m, &o, &c, &e), 0);
        int q;
        assert_int_equal(model_seq_open(c, &q, &e), 0);
        for (int i = 0; i < lens[s] + DECODE_STEPS; i++) {
            model_batch_entry_t be = {q, &toks[s][i], 1};
            assert_int_equal(model_ctx_forward(c, &be, 1, &e), 0);
            if (i >= lens[s] - 1) memcpy(ref[s][i - lens[s] + 1], model_ctx_logits(c, 0), sizeof(float) * (size_t)V);
        }
        model_ctx_destroy(&c);
    }
    /* Batched: all prompts in one forward (GEMM path), then all 8 decode together. */
    for (int threads = 1; threads <= 2; threads++) {
        model_ctx_t *c = NULL;
        model_ctx_opts_t o = {.threads = threads, .max_seqs = NSEQ, .max_tokens = 128, .kv_blocks = 40};
        assert_int_equal(model_ctx_new(m, &o, &c, &e), 0);
        int seq[NSEQ];
        model_batch_entry_t be[NSEQ];
        for (int s = 0; s < NSEQ; s++) {
            assert_int_equal(model_seq_open(c, &seq[s], &e), 0);
            be[s] = (model_batch_entry_t){seq[s], toks[s], lens[s]};
        }
        assert_int_equal(model_ctx_forward(c, be, NSEQ, &e), 0);
        double maxdiff = 0;
        for (int step = 0; step <= DECODE_STEPS; step++) {
            for (int s = 0; s < NSEQ; s++) {
                const float *lg = model_ctx_logits(c, s);
                assert_non_null(lg);
                for (int v = 0; v < V; v++) {
                    double d = fabs(lg[v] - ref[s][step][v]);
                    if (d > maxdiff) maxdiff = d;
                }
                assert_int_equal(model_seq_len(c, seq[s]), lens[s] + step);
            }
            if (step == DECODE_STEPS) break;
            for (int s = 0; s < NSEQ; s++) be[s] = (model_batch_entry_t){seq[s], &toks[s][lens[s] + step], 1};
            assert_int_equal(model_ctx_forward(c, be, NSEQ, &e), 0);
        }
        printf("batched vs sequential (threads %d): max |logit diff| = %.3g\n", threads, maxdiff);
        assert_true(maxdiff < 1e-4);
        model_ctx_destroy(&c);
    }
    model_destroy(&m);
}

/* model_ctx_forward_rows: every row's final-norm hidden state of a prompt chunk equals
 * the one-row-at-a-time path's (model_ctx_hidden after each single-token
 * forward) and the all_logits path's; entries without it keep only their
 * last row; a chunked prompt (two forwards) gives the same rows. */
static double row_rel_diff(const float *h, const float *ref, int D) {
    double d = 0, mx = 0;
    for (int i = 0; i < D; i++) {
        d = fmax(d, fabs((double)h[i] - ref[i]));
        mx = fmax(mx, fabs((double)ref[i]));
    }
    return d / (mx > 0 ? mx : 1);
}

static void test_hidden_rows(void **state) {
    (void)state;
    model_t *m = load_bin();
    const model_config_t *cfg = model_config(m);
    int V = cfg->vocab_size, D = cfg->dim;
    enum { NS = 4, MAXL = 40 };
    int lens[NS] = {1, 6, 9, MAXL};
    int toks[NS][MAXL];
    for (int s = 0; s < NS; s++) {
        toks[s][0] = 1;
        for (int i = 1; i < MAXL; i++) toks[s][i] = 3 + (int)(rnd() % (uint32_t)(V - 3));
    }
    static float ref[NS][MAXL][512];
    llmos_error_t e = {0};
    for (int s = 0; s < NS; s++) { /* reference: one row per forward */
        model_ctx_t *c = NULL;
        model_ctx_opts_t o = {.threads = 1, .max_seqs = 1, .max_tokens = 1};
        assert_int_equal(model_ctx_new(m, &o, &c, &e), 0);
        int q;
        assert_int_equal(model_seq_open(c, &q, &e), 0);
        for (int i = 0; i < lens[s]; i++) {
            model_batch_entry_t be = {q, &toks[s][i], 1};
            assert_int_equal(model_ctx_forward(c, &be, 1, &e), 0);
            memcpy(ref[s][i], model_ctx_hidden(c, 0), sizeof(float) * (size_t)D);
            assert_null(model_ctx_hidden_row(c, 0, 0)); /* not asked for */
        }
        model_ctx_destroy(&c);
    }
    for (int mode = 0; mode < 3; mode++) { /* 0, 1: want_rows at 1 and 2 threads; 2: all_logits */
        model_ctx_t *c = NULL;
        model_ctx_opts_t o = {.threads = mode == 1 ? 2 : 1, .max_seqs = NS, .max_tokens = 64, .all_logits = mode == 2};
        assert_int_equal(model_ctx_new(m, &o, &c, &e), 0);
        int seq[NS], first = 23; /* the long one in two chunks: 23 rows, then 17 */
        uint8_t want[NS];
        model_batch_entry_t be[NS];
        for (int s = 0; s < NS; s++) {
            assert_int_equal(model_seq_open(c, &seq[s], &e), 0);
            /* sequence 1 without want_rows: only its last row */
            be[s] = (model_batch_entry_t){seq[s], toks[s], s == NS - 1 ? first : lens[s]};
            want[s] = s != 1;
        }
        assert_int_equal(model_ctx_forward_rows(c, be, NS, want, &e), 0);
        double maxdiff = 0; /* relative to the row's largest magnitude */
        for (int s = 0; s < NS; s++) {
            int n = be[s].n_tokens;
            if (s == 1 && mode != 2) {
                assert_null(model_ctx_hidden_row(c, s, 0));
                continue;
            }
            for (int j = 0; j < n; j++) {
                const float *h = model_ctx_hidden_row(c, s, j);
                assert_non_null(h);
                maxdiff = fmax(maxdiff, row_rel_diff(h, ref[s][j], D));
            }
            assert_null(model_ctx_hidden_row(c, s, n));
            assert_null(model_ctx_hidden_row(c, s, -1));
            if (mode != 2) /* the last row's hidden (and logits) are there as always */
                assert_memory_equal(model_ctx_hidden(c, s), model_ctx_hidden_row(c, s, n - 1), sizeof(float) * (size_t)D);
        }
        assert_null(model_ctx_hidden_row(c, NS, 0));
        model_batch_entry_t rest = {seq[NS - 1], toks[NS - 1] + first, MAXL - first};
        assert_int_equal(model_ctx_forward_rows(c, &rest, 1, want, &e), 0);
        for (int j = 0; j < MAXL - first; j++) {
            const float *h = model_ctx_hidden_row(c, 0, j);
            assert_non_null(h);
            maxdiff = fmax(maxdiff, row_rel_diff(h, ref[NS - 1][first + j], D));
        }
        assert_null(model_ctx_hidden_row(c, 1, 0)); /* one entry in that batch */
        int bad = V;
        model_batch_entry_t wrong = {seq[0], &bad, 1};
        assert_int_equal(model_ctx_forward_rows(c, &wrong, 1, want, &e), LLMOS_EINVAL);
        assert_null(model_ctx_hidden_row(c, 0, 0)); /* a refused forward keeps nothing */
        printf("hidden rows (%s): max |diff| / max |row| vs one row per forward = %.3g\n",
               mode == 2 ? "all_logits" : mode == 1 ? "want_rows, 2 threads" : "want_rows", maxdiff);
        assert_true(maxdiff <= 1e-5);
        model_ctx_destroy(&c);
    }
    model_destroy(&m);
}

static void test_kv_pool(void **state) {
    (void)state;
    model_t *m = load_bin();
    llmos_error_t e = {0};
    model_ctx_t *c = NULL;
    model_ctx_opts_t o = {.threads = 1, .max_seqs = 3, .max_tokens = 40, .kv_blocks = 4};
    assert_int_equal(model_ctx_new(m, &o, &c, &e), 0);
    int a, b, x, y;
    assert_int_equal(model_seq_open(c, &a, &e), 0);
    assert_int_equal(model_seq_open(c, &b, &e), 0);
    assert_int_equal(model_seq_open(c, &x, &e), 0);
    assert_int_equal(model_seq_open(c, &y, &e), LLMOS_EOVERLOADED);
    int toks[40];
    for (int i = 0; i < 40; i++) toks[i] = 1 + i;
    model_batch_entry_t be = {a, toks, 33}; /* 3 blocks */
    assert_int_equal(model_ctx_forward(c, &be, 1, &e), 0);
    int used, total;
    size_t bb;
    model_ctx_kv_usage(c, &used, &total, &bb);
    assert_int_equal(used, 3);
    assert_int_equal(total, 4);
    be = (model_batch_entry_t){b, toks, 17}; /* needs 2, 1 free: refused, nothing changed */
    assert_int_equal(model_ctx_forward(c, &be, 1, &e), LLMOS_ENOMEM);
    assert_non_null(strstr(e.msg, "KV pool"));
    assert_int_equal(model_seq_len(c, b), 0);
    assert_int_equal(model_seq_truncate(c, a, 16, &e), 0); /* frees 2 blocks */
    model_ctx_kv_usage(c, &used, NULL, NULL);
    assert_int_equal(used, 1);
    assert_int_equal(model_ctx_forward(c, &be, 1, &e), 0);
    model_seq_close(c, a);
    model_seq_close(c, b);
    model_ctx_kv_usage(c, &used, NULL, NULL);
    assert_int_equal(used, 0);
    /* Bad input is refused. */
    int bad = 512;
    be = (model_batch_entry_t){x, &bad, 1};
    assert_int_equal(model_ctx_forward(c, &be, 1, &e), LLMOS_EINVAL);
    be = (model_batch_entry_t){a, toks, 1}; /* closed */
    assert_int_equal(model_ctx_forward(c, &be, 1, &e), LLMOS_EINVAL);
    model_batch_entry_t two[2] = {{x, toks, 1}, {x, toks, 1}};
    assert_int_equal(model_ctx_forward(c, two, 2, &e), LLMOS_EINVAL);
    be = (model_batch_entry_t){x, toks, 41};
    assert_int_equal(model_ctx_forward(c, &be, 1, &e), LLMOS_ETOOBIG);
    model_ctx_destroy(&c);
    model_destroy(&m);
}

/* ------------------------------------------------------------ sampling */

static void test_sampler(void **state) {
    (void)state;
    llmos_error_t e = {0};
    float base[512], lg[512];
    for (int i = 0; i < 512; i++) base[i] = (float)(rnd() % 1000) / 200.0f;
    base[77] = 20;
    model_sampler_t *s = NULL;
    model_sample_opts_t g = {0};
    assert_int_equal(model_sampler_new(512, &g, &s, &e), 0);
    memcpy(lg, base, sizeof lg);
    assert_int_equal(model_sampler_sample(s, lg, NULL, 0), 77);
    model_sampler_destroy(&s);
    /* Repetition penalty pushes the seen argmax down. */
    model_sample_opts_t rp = {.repetition_penalty = 100};
    assert_int_equal(model_sampler_new(512, &rp, &s, &e), 0);
    int hist[1] = {77};
    memcpy(lg, base, sizeof lg);
    assert_int_not_equal(model_sampler_sample(s, lg, hist, 1), 77);
    model_sampler_destroy(&s);
    /* Same seed, same tokens; top-k 1 is greedy; top-k 5 stays in the top 5. */
    model_sample_opts_t t = {.temperature = 1.5f, .top_p = 0.95f, .top_k = 5, .seed = 1234};
    int first[50];
    for (int run = 0; run < 2; run++) {
        assert_int_equal(model_sampler_new(512, &t, &s, &e), 0);
        for (int i = 0; i < 50; i++) {
            memcpy(lg, base, sizeof lg);
            int tok = model_sampler_sample(s, lg, NULL, 0);
            if (run == 0) first[i] = tok;
            else assert_int_equal(tok, first[i]);
            int above = 0;
            for (int v = 0; v < 512; v++) above += base[v] > base[tok];
            assert_true(above < 5);
        }
        model_sampler_destroy(&s);
    }
    model_sample_opts_t bad = {.temperature = -1};
    assert_int_equal(model_sampler_new(512, &bad, &s, &e), LLMOS_EINVAL);
}

static void test_stop_strings(void **state) {
    (void)state;
    const char *stops[] = {"The end", "\n\n"};
    int hit;
    size_t at;
    size_t hold = model_stop_check(stops, 2, "and so. The e", 13, &hit, &at);
    assert_false(hit);
    assert_int_equal(hold, 5);
    hold = model_stop_check(stops, 2, "and so. The end!", 16, &hit, &at);
    assert_true(hit);
    assert_int_equal(at, 8);
    model_stop_check(stops, 2, "a\n\nb", 4, &hit, &at);
    assert_true(hit);
    assert_int_equal(at, 1);
}

/* ------------------------------------------------------------ save / new */

static void test_save_roundtrip(void **state) {
    (void)state;
    model_t *m = load_bin();
    char path[] = "/tmp/llmos_model_save_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    llmos_error_t e = {0};
    assert_int_equal(model_save_llama2c(m, path, &e), 0);
    model_load_opts_t o = {.tokenizer_path = tok_path};
    model_t *b = NULL;
    assert_int_equal(model_load(path, &o, &b, &e), 0);
    struct stat s1, s2;
    stat(bin_path, &s1);
    stat(path, &s2);
    assert_int_equal(s1.st_size, s2.st_size);
    const model_weights_t *wa = model_weights(m), *wb = model_weights(b);
    assert_memory_equal(wa->layers[4].w2.data, wb->layers[4].w2.data, sizeof(float) * 64 * 172);
    unlink(path);
    model_destroy(&b);
    model_destroy(&m);

    model_config_t c = {.arch = MODEL_ARCH_LLAMA, .dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4,
                        .n_kv_heads = 3, .vocab_size = 50, .seq_len = 16, .rope_theta = 10000, .norm_eps = 1e-5f};
    assert_int_equal(model_new(&c, &m, &e), LLMOS_EINVAL);
    assert_non_null(strstr(e.msg, "n_kv_heads"));
    c.n_kv_heads = 2;
    assert_int_equal(model_new(&c, &m, &e), 0);
    assert_int_equal(model_config(m)->head_dim, 8);
    assert_null(model_tokenizer(m));
    model_destroy(&m);
}

/* ------------------------------------------------------------ bad files */

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void put(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Loads path expecting failure with a message; returns the code. */
#define expect_refused(p, g, s) expect_refused_at(p, g, s, __LINE__)
static int expect_refused_at(const char *path, int gguf, const char *must_contain, int line) {
    model_load_opts_t o = {.tokenizer_path = gguf ? NULL : tok_path};
    model_t *m = NULL;
    llmos_error_t e = {0};
    int rc = model_load(path, &o, &m, &e);
    if (rc == 0) {
        model_destroy(&m);
        fail_msg("line %d: corrupted file %s loaded (expected: %s)", line, path, must_contain ? must_contain : "an error");
    }
    assert_null(m);
    assert_true(strlen(e.msg) > 10);
    if (must_contain && !strstr(e.msg, must_contain)) fail_msg("line %d: message '%s' lacks '%s'", line, e.msg, must_contain);
    return rc;
}

static void test_bad_llama2c(void **state) {
    (void)state;
    size_t n;
    uint8_t *orig = slurp(bin_path, &n), *b = malloc(n);
    char path[] = "/tmp/llmos_model_bad_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    size_t cuts[] = {0, 1, 4, 27, 28, 29, 1000, n / 2, n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        put(path, orig, cuts[i]);
        expect_refused(path, 0, cuts[i] < 28 ? (cuts[i] ? "truncated" : "empty") : "truncated");
    }
    /* Trailing garbage is as wrong as a missing tail. */
    memcpy(b, orig, n);
    put(path, b, n - 8);
    FILE *f = fopen(path, "ab");
    fwrite("0123456789abcdef", 1, 16, f);
    fclose(f);
    expect_refused(path, 0, "trailing");
    const char *fields[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    int32_t vals[] = {0, -1, 1, 3, 1 << 30, INT32_MIN};
    for (int fi = 0; fi < 7; fi++)
        for (size_t vi = 0; vi < sizeof vals / sizeof vals[0]; vi++) {
            memcpy(b, orig, n);
            int32_t old;
            memcpy(&old, b + 4 * fi, 4);
            int32_t v = vals[vi] == 1 ? old + 1 : vals[vi];
            if (v == old) continue;
            memcpy(b + 4 * fi, &v, 4);
            put(path, b, n);
            expect_refused(path, 0, NULL);
            model_load_opts_t o = {.tokenizer_path = tok_path};
            model_t *m = NULL;
            llmos_error_t e = {0};
            model_load(path, &o, &m, &e);
            /* The message names the field, or the sizes the header implies. */
            assert_true(strstr(e.msg, fields[fi]) || strstr(e.msg, "needs") || strstr(e.msg, "config"));
        }
    /* A sign flip of vocab_size (separate classifier) changes the size too. */
    memcpy(b, orig, n);
    int32_t neg = -512;
    memcpy(b + 20, &neg, 4);
    put(path, b, n);
    expect_refused(path, 0, "truncated");
    /* A broken tokenizer file. */
    put(path, orig, n);
    size_t tn;
    uint8_t *tok = slurp(tok_path, &tn);
    char tpath[] = "/tmp/llmos_tok_bad_XXXXXX";
    fd = mkstemp(tpath);
    close(fd);
    size_t tcuts[] = {0, 3, 4, 10, tn / 2, tn - 1};
    for (size_t i = 0; i < sizeof tcuts / sizeof tcuts[0]; i++) {
        put(tpath, tok, tcuts[i]);
        model_load_opts_t o = {.tokenizer_path = tpath};
        model_t *m = NULL;
        llmos_error_t e = {0};
        assert_int_not_equal(model_load(path, &o, &m, &e), 0);
        assert_non_null(strstr(e.msg, "tokenizer"));
    }
    int32_t badlen = 100000;
    memcpy(tok + 8, &badlen, 4); /* token 0's length */
    put(tpath, tok, tn);
    {
        model_load_opts_t o = {.tokenizer_path = tpath};
        model_t *m = NULL;
        llmos_error_t e = {0};
        assert_int_equal(model_load(path, &o, &m, &e), LLMOS_EFORMAT);
        assert_non_null(strstr(e.msg, "offset 8"));
    }
    unlink(tpath);
    unlink(path);
    free(tok);
    free(orig);
    free(b);
}

/* Finds the first occurrence of a length-prefixed GGUF string. */
static size_t find_gguf_str(const uint8_t *b, size_t n, const char *s) {
    size_t l = strlen(s);
    for (size_t i = 8; i + l <= n; i++)
        if (memcmp(b + i, s, l) == 0) {
            uint64_t len;
            memcpy(&len, b + i - 8, 8);
            if (len == l) return i + l;
        }
    fail_msg("'%s' not in the GGUF file", s);
    return 0;
}

static void test_bad_gguf(void **state) {
    (void)state;
    size_t n;
    uint8_t *orig = slurp(gguf_path, &n), *b = malloc(n);
    char path[] = "/tmp/llmos_gguf_bad_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    /* Truncations: all through the header and metadata, then through the data. */
    for (size_t cut = 0; cut < 16000; cut += cut < 64 ? 1 : 97) {
        put(path, orig, cut);
        expect_refused(path, 1, cut == 0 ? "empty" : NULL);
    }
    for (size_t cut = 16000; cut < n; cut += n / 20) {
        put(path, orig, cut);
        expect_refused(path, 1, "past the end");
    }
#define MUT(off, type, val, msg)                                                                   \
    do {                                                                                           \
        memcpy(b, orig, n);                                                                        \
        type v_ = (type)(val);                                                                     \
        memcpy(b + (off), &v_, sizeof v_);                                                         \
        put(path, b, n);                                                                           \
        expect_refused(path, 1, msg);                                                              \
    } while (0)
    /* Fixed header. */
    MUT(0, uint32_t, 0x46554748, "not a llama2.c"); /* "GGUF" misspelt: not GGUF, not llama2.c either */
    MUT(4, uint32_t, 2, "version");
    MUT(4, uint32_t, 99, "version");
    MUT(8, uint64_t, 0, "tensor_count");
    MUT(8, uint64_t, 49, NULL);
    MUT(8, uint64_t, UINT64_MAX, "tensor_count");
    MUT(16, uint64_t, 20, NULL);
    MUT(16, uint64_t, UINT64_MAX, "metadata_kv_count");
    /* Metadata: a key's length, its type, and values that matter. */
    size_t k = find_gguf_str(orig, n, "tokenizer.ggml.tokens");
    MUT(k - strlen("tokenizer.ggml.tokens") - 8, uint64_t, 1ull << 40, "metadata key");
    MUT(k, uint32_t, 77, "unknown value type");
    MUT(k + 4, uint32_t, 77, "unknown array element type");
    MUT(k + 8, uint64_t, 1ull << 50, "past the end");
    MUT(k + 8, uint64_t, 511, NULL);
    MUT(k + 16, uint64_t, 1ull << 40, "length");
    const char *ints[] = {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
                          "llama.attention.head_count", "llama.attention.head_count_kv", "llama.context_length",
                          "llama.rope.dimension_count", "tokenizer.ggml.bos_token_id"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        k = find_gguf_str(orig, n, ints[i]);
        MUT(k, uint32_t, 8, NULL); /* u32 value now read as a string */
        MUT(k + 4, uint32_t, strstr(ints[i], "token_id") ? 512 : 0, NULL); /* bos 0 would be valid */
        MUT(k + 4, uint32_t, 7777777, NULL);
    }
    k = find_gguf_str(orig, n, "general.architecture");
    MUT(k + 12, uint8_t, 'X', "architecture"); /* "llama" -> "lXama" */
    k = find_gguf_str(orig, n, "llama.attention.layer_norm_rms_epsilon");
    MUT(k, uint32_t, 4, "not a float");
    MUT(k + 4, float, -1.0f, "norm_eps");
    /* Every field of some tensor infos. */
    const char *tensors[] = {"token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight", "blk.4.ffn_norm.weight"};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        k = find_gguf_str(orig, n, tensors[i]);
        uint32_t nd;
        memcpy(&nd, orig + k, 4);
        MUT(k - strlen(tensors[i]) - 8, uint64_t, 300, NULL); /* name length */
        MUT(k, uint32_t, 0, "n_dims");
        MUT(k, uint32_t, 5, "n_dims");
        MUT(k, uint32_t, nd + 1, NULL);
        MUT(k + 4, uint64_t, 0, "extent");
        MUT(k + 4, uint64_t, 1ull << 40, "extent");
        MUT(k + 4, uint64_t, 65, NULL);
        size_t tt = k + 4 + 8 * nd;
        MUT(tt, uint32_t, 1, NULL); /* f16: sizes and offsets no longer agree */
        MUT(tt, uint32_t, 2, NULL); /* q4_0: refused */
        MUT(tt, uint32_t, 9999, NULL);
        MUT(tt + 4, uint64_t, 1, "aligned");
        MUT(tt + 4, uint64_t, n, "offset");
        MUT(tt + 4, uint64_t, 0x7fffffffffffffe0ull, "offset");
    }
    /* And no byte of the metadata, however changed, makes the loader crash. */
    size_t meta_end = find_gguf_str(orig, n, "blk.4.ffn_norm.weight") + 4 + 8 + 4 + 8;
    for (size_t off = 0; off < meta_end; off += 3) {
        memcpy(b, orig, n);
        b[off] ^= (uint8_t)(0x80 | (off & 0x7f));
        put(path, b, n);
        model_t *m = NULL;
        llmos_error_t e = {0};
        int rc = model_load(path, NULL, &m, &e);
        if (rc == 0) model_destroy(&m);
        else assert_true(strlen(e.msg) > 10);
    }
    unlink(path);
    free(orig);
    free(b);
}


/* ------------------------------------------------------------ int8 */

/* Greedy tokens (and each step's logits) of m for n steps after BOS. */
static void greedy(model_t *m, int n, int *out, float *logits_out) {
    llmos_error_t e = {0};
    model_ctx_t *c = NULL;
    model_ctx_opts_t o = {.threads = 1, .max_seqs = 1, .max_tokens = 1};
    assert_int_equal(model_ctx_new(m, &o, &c, &e), 0);
    int seq, tok = 1, V = model_config(m)->vocab_size;
    assert_int_equal(model_seq_open(c, &seq, &e), 0);
    for (int i = 0; i < n; i++) {
        model_batch_entry_t be = {seq, &tok, 1};
        assert_int_equal(model_ctx_forward(c, &be, 1, &e), 0);
        const float *lg = model_ctx_logits(c, 0);
        memcpy(logits_out + (size_t)i * V, lg, sizeof(float) * (size_t)V);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        out[i] = tok = best;
    }
    model_ctx_destroy(&c);
}

#define Q8_STEPS 40

/* q8 greedy vs fp32 greedy: the first 40 tokens are equal, or the first
 * divergence is a near tie in the fp32 logits (documented with the gap). */
static void test_q8_greedy(void **state) {
    (void)state;
    model_t *f = load_bin(), *q = NULL;
    model_load_opts_t o = {.tokenizer_path = tok_path, .quantize = MODEL_DTYPE_Q8_0};
    llmos_error_t e = {0};
    assert_int_equal(model_load(bin_path, &o, &q, &e), 0);
    assert_int_equal(model_weights(q)->layers[0].wq.dtype, MODEL_DTYPE_Q8_0);
    assert_int_equal(model_weights(q)->layers[0].w2.dtype, MODEL_DTYPE_F32); /* 172 columns: kept */
    assert_true(model_weight_bytes(q) < model_weight_bytes(f) / 2);
    int V = 512, tf[Q8_STEPS], tq[Q8_STEPS];
    float *lf = malloc(sizeof(float) * V * Q8_STEPS), *lq = malloc(sizeof(float) * V * Q8_STEPS);
    greedy(f, Q8_STEPS, tf, lf);
    greedy(q, Q8_STEPS, tq, lq);
    /* Step 0 sees the same context in both: the logits agree closely. */
    double maxd = 0, maxl = 0;
    for (int v = 0; v < V; v++) {
        maxd = fmax(maxd, fabs(lf[v] - lq[v]));
        maxl = fmax(maxl, fabs(lf[v]));
    }
    printf("q8 vs fp32, first step: max |logit diff| %.4f (max |logit| %.2f)\n", maxd, maxl);
    assert_true(maxd < 0.05 * maxl);
    int div = -1;
    for (int i = 0; i < Q8_STEPS && div < 0; i++)
        if (tf[i] != tq[i]) div = i;
    if (div < 0) {
        printf("q8 greedy: first %d tokens equal the fp32 ones\n", Q8_STEPS);
    } else {
        const float *a = lf + (size_t)div * V, *b = lq + (size_t)div * V;
        double gap = a[tf[div]] - a[tq[div]], qgap = b[tq[div]] - b[tf[div]];
        printf("q8 greedy: first divergence at generated token %d (fp32 picks %d, q8 picks %d); "
               "fp32 logit gap %.4f, q8 logit gap %.4f\n",
               div, tf[div], tq[div], gap, qgap);
        /* A real divergence is a near tie, not a broken kernel. */
        assert_true(div >= 10);
        assert_true(gap < 0.5 && qgap < 0.5);
    }
    free(lf);
    free(lq);
    model_destroy(&q);
    model_destroy(&f);
}

/* Skips a GGUF metadata value at *o (a tiny walker for the test's rewrite). */
static void skip_val(const uint8_t *b, size_t *o, uint32_t t) {
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    uint64_t n;
    if (t == 8) {
        memcpy(&n, b + *o, 8);
        *o += 8 + n;
    } else if (t == 9) {
        uint32_t et;
        memcpy(&et, b + *o, 4);
        memcpy(&n, b + *o + 4, 8);
        *o += 12;
        for (uint64_t i = 0; i < n; i++) skip_val(b, o, et);
    } else {
        *o += sz[t];
    }
}

/* Writes a q8_0 GGUF from stories260K.gguf (every 2-D matrix whose rows are
 * a multiple of 32, quantized with q8.h) and checks it loads in place and
 * computes exactly what --quantize q8 computes on the f32 file. */
static void test_gguf_q8_0(void **state) {
    (void)state;
    size_t n;
    uint8_t *src = slurp(gguf_path, &n);
    uint64_t nt, nkv;
    memcpy(&nt, src + 8, 8);
    memcpy(&nkv, src + 16, 8);
    size_t o = 24;
    for (uint64_t i = 0; i < nkv; i++) {
        uint64_t kl;
        memcpy(&kl, src + o, 8);
        o += 8 + kl;
        uint32_t t;
        memcpy(&t, src + o, 4);
        o += 4;
        skip_val(src, &o, t);
    }
    size_t info0 = o;
    uint8_t *dst = calloc(1, n * 2);
    memcpy(dst, src, info0);
    size_t w = info0, doff = 0;
    size_t data_at[64], sizes[64], src_at[64];
    uint32_t types[64];
    uint64_t ne0s[64], ne1s[64];
    assert_true(nt <= 64);
    for (uint64_t i = 0; i < nt; i++) { /* rewrite infos: types and offsets */
        uint64_t nl, ne[2] = {1, 1}, off;
        uint32_t nd, type;
        memcpy(&nl, src + o, 8);
        const char *name = (const char *)src + o + 8;
        int is_embd = nl == 17 && memcmp(name, "token_embd.weight", 17) == 0;
        memcpy(dst + w, src + o, 8 + nl + 4);
        memcpy(&nd, src + o + 8 + nl, 4);
        o += 8 + nl + 4;
        w += 8 + nl + 4;
        for (uint32_t d = 0; d < nd; d++) memcpy(&ne[d], src + o + 8 * d, 8);
        memcpy(dst + w, src + o, 8 * nd);
        o += 8 * nd;
        w += 8 * nd;
        memcpy(&type, src + o, 4);
        memcpy(&off, src + o + 4, 8);
        o += 12;
        uint32_t nty = (nd == 2 && ne[0] % 32 == 0 && !is_embd) ? 8u : type;
        size_t bytes = nty == 8 ? ne[1] * (ne[0] / 32) * 34 : ne[0] * ne[1] * 4;
        memcpy(dst + w, &nty, 4);
        memcpy(dst + w + 4, &doff, 8);
        w += 12;
        types[i] = nty;
        ne0s[i] = ne[0];
        ne1s[i] = ne[1];
        src_at[i] = off; /* relative until the info section's end is known */
        data_at[i] = doff;
        sizes[i] = bytes;
        doff += (bytes + 31) / 32 * 32;
    }
    size_t data0 = (o + 31) / 32 * 32;
    for (uint64_t i = 0; i < nt; i++) src_at[i] += data0;
    size_t ddata0 = (w + 31) / 32 * 32;
    for (uint64_t i = 0; i < nt; i++) {
        if (types[i] == 8) {
            llmos_error_t e = {0};
            assert_int_equal(q8_quantize_matrix((const float *)(src + src_at[i]), (q8_block_t *)(dst + ddata0 + data_at[i]),
                                                (int)ne1s[i], (int)ne0s[i], 1, &e), 0);
        } else {
            memcpy(dst + ddata0 + data_at[i], src + src_at[i], sizes[i]);
        }
    }
    char path[] = "/tmp/llmos_q8_gguf_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    put(path, dst, ddata0 + doff);
    model_t *a = NULL, *b = NULL;
    llmos_error_t e = {0};
    int rc = model_load(path, NULL, &a, &e);
    if (rc) fail_msg("q8_0 GGUF: %s", e.msg);
    assert_int_equal(model_weights(a)->layers[2].w3.dtype, MODEL_DTYPE_Q8_0);
    assert_int_equal(model_weights(a)->classifier.dtype, MODEL_DTYPE_Q8_0);
    model_load_opts_t qo = {.quantize = MODEL_DTYPE_Q8_0};
    assert_int_equal(model_load(gguf_path, &qo, &b, &e), 0);
    int ta[20], tb[20];
    float *la = malloc(sizeof(float) * 512 * 20), *lb = malloc(sizeof(float) * 512 * 20);
    greedy(a, 20, ta, la);
    greedy(b, 20, tb, lb);
    assert_memory_equal(ta, tb, sizeof ta);
    assert_memory_equal(la, lb, sizeof(float) * 512 * 20);
    /* A truncated q8_0 file is refused like any other. */
    put(path, dst, ddata0 + doff - 40);
    expect_refused(path, 1, NULL);
    unlink(path);
    free(la);
    free(lb);
    free(src);
    free(dst);
    model_destroy(&a);
    model_destroy(&b);
}

int main(void) {
    llmos_log_set_level(LLMOS_LOG_WARN);
    if (setup_paths()) {
        fprintf(stderr, "no models folder\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_known),
        cmocka_unit_test(test_tokenizer_roundtrip),
        cmocka_unit_test(test_tokenizer_heap_equals_rescan),
        cmocka_unit_test(test_prompt_fit),
        cmocka_unit_test(test_gguf_vocab_equals_tokenizer_bin),
        cmocka_unit_test(test_batched_equals_sequential),
        cmocka_unit_test(test_hidden_rows),
        cmocka_unit_test(test_kv_pool),
        cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_save_roundtrip),
        cmocka_unit_test(test_bad_llama2c),
        cmocka_unit_test(test_bad_gguf),
        cmocka_unit_test(test_q8_greedy),
        cmocka_unit_test(test_gguf_q8_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
