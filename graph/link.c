/*
 * link.c — the label index and the entity linker of link.h.
 *
 * The index maps a normalised label (lower-case words joined by single
 * spaces) to the entities carrying it: the shared hash map
 * (runtime/base/map.h) from label to its first entry and entity count, over
 * one array of entries chained per label.  It is built by one SPO scan of
 * the whole store (each distinct subject or object IRI once) and is
 * read-only afterwards, so the label strings the map holds can be handed
 * out as mention labels for the linker's lifetime.
 *
 * Linking splits the text into words (remembering byte offsets), then at
 * each word tries the longest run of words a label can have down to one
 * word; the first hit is the match, and the scan resumes after it.  Keys are
 * built in a small reused buffer, so a look-up allocates nothing.  Results
 * (mentions, facts, their strings) live in one arena per result.
 *
 * This room never writes to the store.
 */
#include "graph/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/sparql_internal.h"
#include "runtime/base/buf.h"
#include "runtime/base/map.h"

#define RDFS_LABEL "http://www.w3.org/2000/01/rdf-schema#label"
#define MAX_LABEL_WORDS 12
#define MAX_FACT_ENTITIES 64

typedef struct entry {
    graph_id_t entity;
    uint32_t next; /* index+1 of the next entity with the same key, 0 = none */
} entry_t;

typedef struct label {
    uint32_t first; /* index of the key's first entry */
    uint32_t count; /* entities with this key */
} label_t;

struct graph_linker {
    llmos_map_t index;   /* normalised label -> label_t */
    llmos_vec_t entries; /* entry_t */
    llmos_buf_t norm;    /* while building: the label being normalised */
    size_t nentities;
    int max_words;         /* most words in any label */
    graph_id_t label_pred; /* rdfs:label's id, 0 when the graph has none */
};

/* ------------------------------------------------------- text helpers --- */

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static char fold(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Appends the words of s as lower case, single-space separated; *nwords gets
 * the word count. */
static int normalise(llmos_buf_t *b, const char *s, size_t n, int *nwords) {
    int words = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && !is_word_byte((unsigned char)s[i])) i++;
        if (i >= n) break;
        if (words++ && llmos_buf_putc(b, ' ')) return LLMOS_ENOMEM;
        while (i < n && is_word_byte((unsigned char)s[i]))
            if (llmos_buf_putc(b, fold(s[i++]))) return LLMOS_ENOMEM;
    }
    *nwords = words;
    return 0;
}

/* The local name of an IRI made readable: percent-decoded, '_' and '-' as
 * spaces, camelCase split ("cellFunction" → "cell Function"), case kept. */
static int local_words(llmos_buf_t *b, const char *iri, size_t n) {
    size_t start = n;
    while (start > 0 && iri[start - 1] != '#' && iri[start - 1] != '/' && iri[start - 1] != ':') start--;
    if (start == n) start = 0; /* IRI ends in a separator: use all of it */
    size_t start_len = b->len;
    char prev = 0;
    for (size_t i = start; i < n; i++) {
        char c = iri[i];
        uint32_t byte;
        if (c == '%' && sparql_hex_read(iri + i + 1, n - i - 1, 2, &byte) == 0) {
            c = (char)byte;
            i += 2;
        }
        if (c == '_' || c == '-') c = ' ';
        if (c == ' ' && (b->len == start_len || b->data[b->len - 1] == ' ')) continue; /* no leading or double spaces */
        int upper = c >= 'A' && c <= 'Z';
        int prev_lower = (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9');
        int next_lower = i + 1 < n && iri[i + 1] >= 'a' && iri[i + 1] <= 'z';
        int prev_upper = prev >= 'A' && prev <= 'Z';
        if (upper && (prev_lower || (prev_upper && next_lower)))
            if (llmos_buf_putc(b, ' ')) return LLMOS_ENOMEM;
        if (llmos_buf_putc(b, c)) return LLMOS_ENOMEM;
        prev = c;
    }
    while (b->len > start_len && b->data[b->len - 1] == ' ') b->data[--b->len] = '\0'; /* no trailing space */
    return 0;
}

/* ------------------------------------------------------------- index --- */

/* Indexes the normalised label key[0, n) for entity. */
static int index_add(graph_linker_t *l, const char *key, size_t n, int words, graph_id_t entity) {
    if (n == 0) return 0;
    label_t *lab;
    int added;
    int rc = llmos_map_str_put(&l->index, key, n, (void **)&lab, &added);
    if (rc) return rc;
    entry_t *ents = l->entries.data;
    uint32_t last = 0;
    if (!added) {
        for (uint32_t i = lab->first + 1; i; i = ents[i - 1].next) {
            if (ents[i - 1].entity == entity) return 0;
            last = i;
        }
    }
    if (l->entries.len >= UINT32_MAX - 1) return LLMOS_ENOMEM;
    entry_t e = {.entity = entity, .next = 0};
    if ((rc = llmos_vec_push(&l->entries, sizeof e, &e))) return rc;
    uint32_t at = (uint32_t)(l->entries.len - 1);
    if (added) {
        /* lab is still valid: the entries array is not the map */
        lab->first = at;
        lab->count = 1;
        if (words > l->max_words) l->max_words = words > MAX_LABEL_WORDS ? MAX_LABEL_WORDS : words;
        return 0;
    }
    /* chain after the key's last entry (order: first indexed first) */
    ((entry_t *)l->entries.data)[last - 1].next = at + 1;
    lab->count++;
    return 0;
}

/* Normalises s and indexes it for entity. */
static int index_label(graph_linker_t *l, const char *s, size_t n, graph_id_t entity) {
    int words;
    llmos_buf_clear(&l->norm);
    if (normalise(&l->norm, s, n, &words)) return LLMOS_ENOMEM;
    return index_add(l, l->norm.data, l->norm.len, words, entity);
}

static int index_entity(graph_linker_t *l, graph_reader_t *r, graph_id_t id, llmos_buf_t *tmp,
                        llmos_error_t *err) {
    graph_term_t t;
    int rc = graph_term_get(r, id, &t, err);
    if (rc) return rc;
    if (t.kind != GRAPH_TERM_IRI) return 0;
    l->nentities++;
    int labelled = 0;
    if (l->label_pred) {
        graph_iter_t it;
        memset(&it, 0, sizeof it);
        if ((rc = graph_store_match(r, id, l->label_pred, 0, &it, err))) return rc;
        graph_triple_t tr;
        while ((rc = graph_iter_next(&it, &tr, err)) == 1) {
            graph_term_t lab;
            if ((rc = graph_term_get(r, tr.o, &lab, err))) break;
            if (lab.kind != GRAPH_TERM_LITERAL) continue;
            if ((rc = index_label(l, lab.value, lab.len, id))) break;
            labelled = 1;
        }
        graph_iter_close(&it);
        if (rc < 0) return rc == LLMOS_ENOMEM ? llmos_error_set(err, rc, "out of memory indexing labels") : rc;
        /* the term view may be stale after other look-ups: get it again */
        if (!labelled && (rc = graph_term_get(r, id, &t, err))) return rc;
    }
    if (labelled) return 0;
    tmp->len = 0;
    if (local_words(tmp, t.value, t.len)) return llmos_error_set(err, LLMOS_ENOMEM, "out of memory indexing labels");
    rc = index_label(l, tmp->data ? tmp->data : "", tmp->len, id);
    if (rc) return llmos_error_set(err, rc, "indexing labels: %s", llmos_strerror(rc));
    return 0;
}

int graph_linker_new(graph_reader_t *r, graph_linker_t **out, llmos_error_t *err) {
    *out = NULL;
    graph_linker_t *l = calloc(1, sizeof *l);
    if (!l) return llmos_error_set(err, LLMOS_ENOMEM, "out of memory building the label index");
    llmos_map_t seen; /* entities indexed */
    llmos_map_init(&l->index, LLMOS_MAP_STR, sizeof(label_t));
    llmos_map_init(&seen, LLMOS_MAP_U64, 0);
    graph_term_t lab = graph_term_iri(RDFS_LABEL);
    int rc = graph_term_lookup(r, &lab, &l->label_pred, err);
    if (rc == LLMOS_ENOTFOUND) {
        llmos_error_clear(err);
        l->label_pred = 0;
        rc = 0;
    }
    llmos_buf_t tmp = LLMOS_BUF_INIT;
    graph_iter_t it;
    memset(&it, 0, sizeof it);
    if (!rc) rc = graph_store_match(r, 0, 0, 0, &it, err);
    graph_triple_t t;
    graph_id_t last_s = 0;
    while (!rc && (rc = graph_iter_next(&it, &t, err)) == 1) {
        rc = 0;
        graph_id_t ends[2] = {t.s, t.o};
        for (int k = 0; k < 2 && !rc; k++) {
            if (k == 0 && t.s == last_s) continue; /* SPO order: subjects come grouped */
            int added;
            if (llmos_map_u64_put(&seen, ends[k], NULL, &added))
                rc = llmos_error_set(err, LLMOS_ENOMEM, "out of memory building the label index");
            else if (added) rc = index_entity(l, r, ends[k], &tmp, err);
        }
        last_s = t.s;
    }
    graph_iter_close(&it);
    llmos_map_deinit(&seen);
    llmos_buf_deinit(&tmp);
    llmos_buf_deinit(&l->norm);
    if (rc < 0) {
        graph_linker_destroy(&l);
        return rc;
    }
    *out = l;
    return 0;
}

void graph_linker_destroy(graph_linker_t **lp) {
    if (!lp || !*lp) return;
    graph_linker_t *l = *lp;
    llmos_map_deinit(&l->index);
    llmos_vec_deinit(&l->entries);
    llmos_buf_deinit(&l->norm);
    free(l);
    *lp = NULL;
}

void graph_linker_size(const graph_linker_t *l, size_t *entities, size_t *labels) {
    if (entities) *entities = l->nentities;
    if (labels) *labels = llmos_map_count(&l->index);
}

/* ------------------------------------------------------------ linking --- */

typedef struct word {
    size_t start, end;
} word_t;

typedef struct link_ctx {
    const graph_linker_t *l;
    graph_reader_t *r;
    llmos_error_t *err;
    sparql_arena_t *arena;
    llmos_buf_t tmp;
    graph_link_result_t *res;
    size_t max_facts;
    size_t cap_facts, cap_mentions; /* room in res->facts / res->mentions */
} link_ctx_t;

static char *arena_copy(link_ctx_t *c, const char *s, size_t n) { return sparql_arena_strndup(c->arena, s, n); }

static int nomem(link_ctx_t *c) { return llmos_error_set(c->err, LLMOS_ENOMEM, "out of memory linking the text"); }

/* A readable name of a term for sentences: an rdfs:label (English or plain
 * preferred), else the IRI's local words, else the literal's value. */
static int readable(link_ctx_t *c, graph_id_t id, const char **out) {
    graph_term_t t;
    int rc = graph_term_get(c->r, id, &t, c->err);
    if (rc) return rc;
    if (t.kind == GRAPH_TERM_LITERAL || t.kind == GRAPH_TERM_BLANK) {
        *out = arena_copy(c, t.value, t.len);
        return *out ? 0 : nomem(c);
    }
    if (c->l->label_pred) {
        graph_iter_t it;
        memset(&it, 0, sizeof it);
        if ((rc = graph_store_match(c->r, id, c->l->label_pred, 0, &it, c->err))) return rc;
        graph_triple_t tr;
        const char *best = NULL;
        int best_rank = -1;
        while ((rc = graph_iter_next(&it, &tr, c->err)) == 1) {
            graph_term_t lab;
            if ((rc = graph_term_get(c->r, tr.o, &lab, c->err))) break;
            if (lab.kind != GRAPH_TERM_LITERAL) continue;
            int rank = !lab.lang ? 1 : (lab.lang_len >= 2 && strncmp(lab.lang, "en", 2) == 0 ? 2 : 0);
            if (rank > best_rank) {
                best = arena_copy(c, lab.value, lab.len);
                if (!best) {
                    rc = nomem(c);
                    break;
                }
                best_rank = rank;
            }
        }
        graph_iter_close(&it);
        if (rc < 0) return rc;
        if (best) {
            *out = best;
            return 0;
        }
        if ((rc = graph_term_get(c->r, id, &t, c->err))) return rc;
    }
    c->tmp.len = 0;
    if (local_words(&c->tmp, t.value, t.len)) return nomem(c);
    *out = arena_copy(c, c->tmp.data ? c->tmp.data : "", c->tmp.len);
    return *out ? 0 : nomem(c);
}

static int formatted(link_ctx_t *c, graph_id_t id, const char **out) {
    size_t need = 0;
    char small[256];
    int rc = graph_term_format_id(c->r, id, small, sizeof small, &need, c->err);
    if (rc == 0) {
        *out = arena_copy(c, small, need);
        return *out ? 0 : nomem(c);
    }
    if (rc != LLMOS_ETOOBIG) return rc;
    llmos_error_clear(c->err);
    char *big = sparql_arena_alloc(c->arena, need + 1);
    if (!big) return nomem(c);
    if ((rc = graph_term_format_id(c->r, id, big, need + 1, &need, c->err))) return rc;
    *out = big;
    return 0;
}

/* Makes room for one more element in an arena array (*arr of *cap elements,
 * n used): a doubled copy, so a huge max_facts costs nothing until facts come
 * (the old copy stays in the arena until the result is released). */
static int arena_grow(link_ctx_t *c, void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = sparql_arena_alloc(c->arena, nc * elem);
    if (!p) return nomem(c);
    if (n) memcpy(p, *arr, n * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

/* Adds a fact unless present; 1 added, 0 present or full, negative error. */
static int add_fact(link_ctx_t *c, const graph_triple_t *t, int hop) {
    graph_link_result_t *res = c->res;
    if (res->nfacts >= c->max_facts) return 0;
    for (size_t i = 0; i < res->nfacts; i++)
        if (res->facts[i].t.s == t->s && res->facts[i].t.p == t->p && res->facts[i].t.o == t->o) return 0;
    void *facts = res->facts;
    int grc = arena_grow(c, &facts, &c->cap_facts, res->nfacts, sizeof *res->facts);
    if (grc) return grc;
    res->facts = facts;
    graph_link_fact_t *f = &res->facts[res->nfacts];
    memset(f, 0, sizeof *f);
    f->t = *t;
    f->hop = hop;
    int rc;
    const char *sl, *pl, *ol;
    if ((rc = formatted(c, t->s, &f->s)) || (rc = formatted(c, t->p, &f->p)) || (rc = formatted(c, t->o, &f->o)))
        return rc;
    if ((rc = readable(c, t->s, &sl)) || (rc = readable(c, t->p, &pl)) || (rc = readable(c, t->o, &ol))) return rc;
    c->tmp.len = 0;
    if (llmos_buf_puts(&c->tmp, sl) || llmos_buf_putc(&c->tmp, ' ') || llmos_buf_puts(&c->tmp, pl) ||
        llmos_buf_putc(&c->tmp, ' ') || llmos_buf_puts(&c->tmp, ol) || llmos_buf_putc(&c->tmp, '.'))
        return nomem(c);
    f->sentence = arena_copy(c, c->tmp.data, c->tmp.len);
    if (!f->sentence) return nomem(c);
    res->nfacts++;
    return 1;
}

/* Adds up to `quota` new facts of the scan (s, p, o); records the far ends
 * of added facts in `next` when not NULL. */
static int scan_facts(link_ctx_t *c, graph_id_t s, graph_id_t o, size_t quota, int hop, graph_id_t self,
                      graph_id_t *next, size_t *nnext, size_t cap_next) {
    graph_iter_t it;
    memset(&it, 0, sizeof it);
    int rc = graph_store_match(c->r, s, 0, o, &it, c->err);
    if (rc) return rc;
    graph_triple_t t;
    size_t added = 0;
    while (added < quota && c->res->nfacts < c->max_facts && (rc = graph_iter_next(&it, &t, c->err)) == 1) {
        rc = add_fact(c, &t, hop);
        if (rc < 0) break;
        if (rc == 1) {
            added++;
            graph_id_t far = t.s == self ? t.o : t.s;
            if (next && *nnext < cap_next) {
                int dup = far == self;
                for (size_t i = 0; i < *nnext && !dup; i++) dup = next[i] == far;
                if (!dup) next[(*nnext)++] = far;
            }
        }
        rc = 0;
    }
    graph_iter_close(&it);
    return rc < 0 ? rc : 0;
}

/* One hop around each entity of `ents`: a fair share each, then the rest. */
static int hop_facts(link_ctx_t *c, const graph_id_t *ents, size_t n, int hop, graph_id_t *next, size_t *nnext,
                     size_t cap_next) {
    if (!n) return 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t room = c->max_facts - c->res->nfacts;
        if (!room) return 0;
        size_t share = pass == 0 ? (room + n - 1) / n : room;
        for (size_t i = 0; i < n && c->res->nfacts < c->max_facts; i++) {
            size_t before = c->res->nfacts;
            int rc = scan_facts(c, ents[i], 0, share, hop, ents[i], next, nnext, cap_next);
            size_t got = c->res->nfacts - before;
            if (!rc && got < share) rc = scan_facts(c, 0, ents[i], share - got, hop, ents[i], next, nnext, cap_next);
            if (rc) return rc;
        }
    }
    return 0;
}

int graph_link_text(const graph_linker_t *l, graph_reader_t *r, const char *text, size_t len,
                    const graph_link_opts_t *opts, graph_link_result_t *out, llmos_error_t *err) {
    memset(out, 0, sizeof *out);
    int hops = opts ? opts->hops : GRAPH_LINK_DEFAULT_HOPS;
    size_t max_facts = opts && opts->max_facts ? opts->max_facts : GRAPH_LINK_DEFAULT_FACTS;
    size_t max_mentions = opts && opts->max_mentions ? opts->max_mentions : 256;
    /* a huge cap means "as many as there may be" */
    if (max_facts > GRAPH_LINK_FACTS_MAX) max_facts = GRAPH_LINK_FACTS_MAX;
    if (max_mentions > GRAPH_LINK_MENTIONS_MAX) max_mentions = GRAPH_LINK_MENTIONS_MAX;
    if (hops < 0 || hops > 2) return llmos_error_set(err, LLMOS_EINVAL, "hops must be 0, 1 or 2 (got %d)", hops);
    if (!text && len) return llmos_error_set(err, LLMOS_EINVAL, "text is NULL");
    sparql_arena_t *arena = malloc(sizeof *arena);
    if (!arena) return llmos_error_set(err, LLMOS_ENOMEM, "out of memory linking the text");
    sparql_arena_init(arena, 16384);
    out->mem = arena;
    link_ctx_t c = {.l = l, .r = r, .err = err, .arena = arena, .res = out, .max_facts = max_facts};
    int rc = 0;
    llmos_vec_t wordv = LLMOS_VEC_INIT; /* word_t */
    llmos_buf_t key = LLMOS_BUF_INIT;
    /* words of the text */
    for (size_t i = 0; i < len;) {
        while (i < len && !is_word_byte((unsigned char)text[i])) i++;
        if (i >= len) break;
        size_t s = i;
        while (i < len && is_word_byte((unsigned char)text[i])) i++;
        word_t wd = {s, i};
        if (llmos_vec_push(&wordv, sizeof wd, &wd)) {
            rc = nomem(&c);
            goto out;
        }
    }
    const word_t *words = wordv.data;
    size_t nwords = wordv.len;
    /* leftmost-longest matching */
    graph_id_t ents[MAX_FACT_ENTITIES];
    size_t nents = 0;
    for (size_t w = 0; w < nwords && out->nmentions < max_mentions;) {
        int matched = 0;
        size_t most = (size_t)l->max_words < nwords - w ? (size_t)l->max_words : nwords - w;
        for (size_t n = most; n >= 1 && !matched; n--) {
            key.len = 0;
            for (size_t k = 0; k < n; k++) {
                if (k && llmos_buf_putc(&key, ' ')) {
                    rc = nomem(&c);
                    goto out;
                }
                for (size_t b = words[w + k].start; b < words[w + k].end; b++)
                    if (llmos_buf_putc(&key, fold(text[b]))) {
                        rc = nomem(&c);
                        goto out;
                    }
            }
            const label_t *lab = llmos_map_str_get(&l->index, key.data, key.len);
            if (!lab) continue;
            const entry_t *en = &((const entry_t *)l->entries.data)[lab->first];
            void *ms = out->mentions;
            if ((rc = arena_grow(&c, &ms, &c.cap_mentions, out->nmentions, sizeof *out->mentions))) goto out;
            out->mentions = ms;
            graph_link_mention_t *m = &out->mentions[out->nmentions++];
            m->start = words[w].start;
            m->end = words[w + n - 1].end;
            m->entity = en->entity;
            m->label = llmos_map_str_key_at(&l->index, llmos_map_index_of(&l->index, lab), NULL);
            m->candidates = (int)lab->count;
            graph_term_t t;
            if ((rc = graph_term_get(r, en->entity, &t, err))) goto out;
            m->iri = arena_copy(&c, t.value, t.len);
            if (!m->iri) {
                rc = nomem(&c);
                goto out;
            }
            int dup = 0;
            for (size_t i = 0; i < nents && !dup; i++) dup = ents[i] == en->entity;
            if (!dup && nents < MAX_FACT_ENTITIES) ents[nents++] = en->entity;
            matched = 1;
            w += n;
        }
        if (!matched) w++;
    }
    /* facts between two mentioned entities (hop 0: every hops setting) */
    for (size_t i = 0; i < nents && !rc; i++)
        for (size_t j = 0; j < nents && !rc; j++)
            if (i != j) rc = scan_facts(&c, ents[i], ents[j], max_facts, 0, ents[i], NULL, NULL, 0);
    if (rc || hops == 0) goto out;
    graph_id_t next[MAX_FACT_ENTITIES];
    size_t nnext = 0;
    if (hops == 2) /* keep a third of the room for the second hop */
        c.max_facts = out->nfacts + (max_facts - out->nfacts) - (max_facts - out->nfacts) / 3;
    if ((rc = hop_facts(&c, ents, nents, 1, hops == 2 ? next : NULL, &nnext, MAX_FACT_ENTITIES))) goto out;
    c.max_facts = max_facts;
    if (hops == 2) {
        /* neighbours that are mentions themselves were covered in hop 1 */
        size_t k = 0;
        for (size_t i = 0; i < nnext; i++) {
            int mentioned = 0;
            for (size_t j = 0; j < nents && !mentioned; j++) mentioned = ents[j] == next[i];
            if (!mentioned) next[k++] = next[i];
        }
        rc = hop_facts(&c, next, k, 2, NULL, NULL, 0);
    }
out:
    llmos_vec_deinit(&wordv);
    llmos_buf_deinit(&key);
    llmos_buf_deinit(&c.tmp);
    if (rc) {
        graph_link_result_deinit(out);
        return rc;
    }
    return 0;
}

void graph_link_result_deinit(graph_link_result_t *res) {
    if (!res) return;
    if (res->mem) {
        sparql_arena_deinit(res->mem);
        free(res->mem);
    }
    memset(res, 0, sizeof *res);
}

int graph_link_to_json(const graph_link_result_t *res, const char *text, size_t text_len, char **out,
                       size_t *len, llmos_error_t *err) {
    llmos_buf_t b = {0};
    int rc = llmos_buf_puts(&b, "{\"mentions\":[");
    for (size_t i = 0; i < res->nmentions && !rc; i++) {
        const graph_link_mention_t *m = &res->mentions[i];
        char num[96];
        snprintf(num, sizeof num, "%s{\"start\":%zu,\"end\":%zu,\"text\":", i ? "," : "", m->start, m->end);
        rc = llmos_buf_puts(&b, num);
        if (!rc) rc = sparql_json_put_str(&b, m->end <= text_len ? text + m->start : "", m->end - m->start);
        if (!rc) rc = llmos_buf_puts(&b, ",\"label\":");
        if (!rc) rc = sparql_json_put_str(&b, m->label, strlen(m->label));
        if (!rc) rc = llmos_buf_puts(&b, ",\"entity\":");
        if (!rc) rc = sparql_json_put_str(&b, m->iri, strlen(m->iri));
        snprintf(num, sizeof num, ",\"candidates\":%d}", m->candidates);
        if (!rc) rc = llmos_buf_puts(&b, num);
    }
    if (!rc) rc = llmos_buf_puts(&b, "],\"facts\":[");
    for (size_t i = 0; i < res->nfacts && !rc; i++) {
        const graph_link_fact_t *f = &res->facts[i];
        rc = llmos_buf_puts(&b, i ? ",{\"s\":" : "{\"s\":");
        if (!rc) rc = sparql_json_put_str(&b, f->s, strlen(f->s));
        if (!rc) rc = llmos_buf_puts(&b, ",\"p\":");
        if (!rc) rc = sparql_json_put_str(&b, f->p, strlen(f->p));
        if (!rc) rc = llmos_buf_puts(&b, ",\"o\":");
        if (!rc) rc = sparql_json_put_str(&b, f->o, strlen(f->o));
        char num[32];
        snprintf(num, sizeof num, ",\"hop\":%d", f->hop);
        if (!rc) rc = llmos_buf_puts(&b, num);
        if (!rc) rc = llmos_buf_puts(&b, ",\"sentence\":");
        if (!rc) rc = sparql_json_put_str(&b, f->sentence, strlen(f->sentence));
        if (!rc) rc = llmos_buf_putc(&b, '}');
    }
    if (!rc) rc = llmos_buf_puts(&b, "]}");
    if (rc) {
        llmos_buf_deinit(&b);
        return llmos_error_set(err, LLMOS_ENOMEM, "out of memory writing JSON");
    }
    *out = b.data;
    if (len) *len = b.len;
    return 0;
}
