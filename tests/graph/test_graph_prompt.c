/*
 * test_graph_prompt.c — graph/prompt.h on a real store: the layout (facts'
 * sentences, an empty line, the prompt unchanged; nothing at all without
 * facts), fitting to a budget in bytes and in the caller's units (the
 * highest-priority facts kept, a prompt alone never refused), a measure
 * error passed through, and the facts reported being exactly the ones in
 * the text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "graph/prompt.h"
#include "graph/store.h"
#include "runtime/base/tmpdir.h"

typedef struct fx {
    char dir[256];
    graph_store_t *s;
    graph_reader_t *r;
    graph_linker_t *l;
} fx_t;

#define K "http://llmos.local/kg/"

static int fx_setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    llmos_error_t e;
    if (!f || llmos_tmpdir_make("llmos-test-prompt", f->dir, sizeof f->dir, &e)) return -1;
    graph_store_options_t o = {.create = 1, .no_sync = 1, .map_size = 1ULL << 26};
    graph_writer_t *w = NULL;
    static const char *tr[][3] = {{"lily", "owns", "tom"},
                                  {"lily", "likes", "ball"},
                                  {"tom", "is_a", "cat"},
                                  {"cat", "eats", "fish"},
                                  {"sun", "is", "hot"}};
    if (graph_store_open(f->dir, &o, &f->s, &e) || graph_writer_begin(f->s, &w, &e)) return -1;
    for (size_t i = 0; i < sizeof tr / sizeof tr[0]; i++) {
        char iri[3][64];
        graph_term_t t[3];
        for (int j = 0; j < 3; j++) {
            snprintf(iri[j], sizeof iri[j], K "%s", tr[i][j]);
            t[j] = graph_term_iri(iri[j]);
        }
        if (graph_writer_add_terms(w, &t[0], &t[1], &t[2], NULL, &e)) return -1;
    }
    if (graph_writer_commit(&w, &e) || graph_reader_begin(f->s, &f->r, &e) ||
        graph_linker_new(f->r, &f->l, &e))
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fx_t *f = *state;
    graph_linker_destroy(&f->l);
    graph_reader_end(&f->r);
    graph_store_close(&f->s);
    int rc = llmos_tmpdir_remove(f->dir, NULL);
    free(f);
    return rc ? -1 : 0;
}

static void test_layout(void **state) {
    (void)state;
    char *out = NULL;
    size_t len = 0, pre = 99;
    llmos_error_t e;
    assert_int_equal(graph_prompt_layout(NULL, 0, "Once upon", 9, &out, &len, &pre, &e), 0);
    assert_string_equal(out, "Once upon");
    assert_int_equal(len, 9);
    assert_int_equal(pre, 0);
    free(out);
    const char *s[] = {"a b c.", "d e."};
    assert_int_equal(graph_prompt_layout(s, 2, "Hi", 2, &out, &len, &pre, &e), 0);
    assert_string_equal(out, "a b c.\nd e.\n\nHi");
    assert_int_equal(len, strlen(out));
    assert_int_equal(pre, strlen("a b c.\nd e.\n\n"));
    free(out);
    /* An empty prompt after facts: the prefix alone. */
    assert_int_equal(graph_prompt_layout(s, 1, "", 0, &out, NULL, &pre, &e), 0);
    assert_string_equal(out, "a b c.\n\n");
    free(out);
}

/* The prompt's facts, by sentence. */
static void expect_sentences(const graph_prompt_t *p, const char *const *want, size_t n) {
    assert_int_equal(p->nfacts, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(p->facts[i].sentence, want[i]);
}

static void test_link_prompt(void **state) {
    fx_t *f = *state;
    const char *text = "Lily saw Tom";
    graph_prompt_t p;
    llmos_error_t e;
    graph_prompt_opts_t o = {.link = {.hops = 1, .max_facts = 20}, .max_prefix = GRAPH_PROMPT_NO_LIMIT};
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), 0);
    assert_int_equal(p.link.nfacts, 3);
    assert_int_equal(p.nfacts, 3);
    /* The fact between the two mentions first, then each mention's own. */
    assert_string_equal(p.facts[0].sentence, "lily owns tom.");
    assert_string_equal(p.facts[0].s, "<" K "lily>");
    assert_string_equal(p.facts[0].p, "<" K "owns>");
    assert_string_equal(p.facts[0].o, "<" K "tom>");
    char want[256];
    snprintf(want, sizeof want, "%s\n%s\n%s\n\n%s", p.facts[0].sentence, p.facts[1].sentence,
             p.facts[2].sentence, text);
    assert_string_equal(p.text, want);
    assert_int_equal(p.len, strlen(want));
    assert_int_equal(p.prefix_len, strlen(want) - strlen(text));
    int seen_ball = 0, seen_cat = 0;
    for (size_t i = 1; i < 3; i++) {
        seen_ball |= strcmp(p.facts[i].sentence, "lily likes ball.") == 0;
        seen_cat |= strcmp(p.facts[i].sentence, "tom is a cat.") == 0;
    }
    assert_true(seen_ball && seen_cat);
    graph_prompt_deinit(&p);

    /* opts NULL: hops 1, 20 facts, no budget. */
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), NULL, &p, &e), 0);
    assert_int_equal(p.nfacts, 3);
    graph_prompt_deinit(&p);

    /* Nothing mentioned: the text is the prompt. */
    const char *none = "Once upon a time";
    assert_int_equal(graph_link_prompt(f->l, f->r, none, strlen(none), &o, &p, &e), 0);
    assert_int_equal(p.nfacts, 0);
    assert_string_equal(p.text, none);
    assert_int_equal(p.prefix_len, 0);
    graph_prompt_deinit(&p);
}

static void test_budget_bytes(void **state) {
    fx_t *f = *state;
    const char *text = "Lily saw Tom";
    graph_prompt_t p;
    llmos_error_t e;
    /* Room for the first sentence, its newline and the empty line only. */
    graph_prompt_opts_t o = {.link = {.hops = 1, .max_facts = 20},
                             .max_prefix = strlen("lily owns tom.") + 2};
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), 0);
    const char *one[] = {"lily owns tom."};
    expect_sentences(&p, one, 1);
    assert_int_equal(p.link.nfacts, 3); /* linked, then dropped */
    assert_string_equal(p.text, "lily owns tom.\n\nLily saw Tom");
    graph_prompt_deinit(&p);
    o.max_prefix -= 1; /* one byte short: nothing fits */
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), 0);
    assert_int_equal(p.nfacts, 0);
    assert_string_equal(p.text, text);
    graph_prompt_deinit(&p);
    o.max_prefix = 0;
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), 0);
    assert_int_equal(p.nfacts, 0);
    graph_prompt_deinit(&p);
}

/* A measure in words (runs of non-blanks), counting calls. */
static int words(void *ctx, const char *s, size_t n, size_t *cost, llmos_error_t *err) {
    (void)err;
    (*(int *)ctx)++;
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n')) w++;
    *cost = w;
    return 0;
}

static int broken(void *ctx, const char *s, size_t n, size_t *cost, llmos_error_t *err) {
    (void)ctx, (void)s, (void)n, (void)cost;
    return llmos_error_set(err, LLMOS_EIO, "the tokenizer broke");
}

static void test_budget_measure(void **state) {
    fx_t *f = *state;
    const char *text = "Tom was happy";
    graph_prompt_t p;
    llmos_error_t e;
    int calls = 0;
    /* hops 2: tom's two facts (7 words), then cat's and lily's (3 words each). */
    graph_prompt_opts_t o = {
        .link = {.hops = 2, .max_facts = 20}, .max_prefix = 7, .measure = words, .measure_ctx = &calls};
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), 0);
    assert_int_equal(p.link.nfacts, 4);
    assert_int_equal(p.nfacts, 2); /* 7 words fit in 7, 10 do not */
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(p.facts[i].hop, 1);
    assert_true(calls >= 2 && calls <= 5); /* a binary search, not one call per count */
    assert_int_equal(strncmp(p.text, p.facts[0].sentence, strlen(p.facts[0].sentence)), 0);
    graph_prompt_deinit(&p);
    o.measure = broken;
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), LLMOS_EIO);
    assert_non_null(strstr(e.msg, "tokenizer broke"));
    assert_null(p.text);
    assert_int_equal(p.nfacts, 0);
    graph_prompt_deinit(&p);
    /* Bad hops: the linker's error. */
    o.measure = NULL;
    o.link.hops = 3;
    assert_int_equal(graph_link_prompt(f->l, f->r, text, strlen(text), &o, &p, &e), LLMOS_EINVAL);
    graph_prompt_deinit(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test_setup_teardown(test_link_prompt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_budget_bytes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_budget_measure, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
