/*
 * tokenizer.c — SentencePiece-style BPE with byte fallback, as llama2.c.
 *
 * Encoding: BOS if asked; a "dummy prefix" space when the text is not
 * empty; one token per UTF-8 character found in the vocabulary, else one
 * byte token (<0xHH>) per byte; then, repeatedly, the adjacent pair whose
 * concatenation is a vocabulary piece with the highest score is merged.
 * Only normal pieces take part in merges (byte and control tokens never do,
 * as in SentencePiece), so any byte string round-trips through encode and
 * decode.  Merging uses a heap (merge_pairs): n log n, not llama2.c's n^2,
 * with the same result.  Pieces are looked up in an open-addressing hash
 * table built once.
 *
 * Formats: llama2.c tokenizer.bin (int32 max_token_length, then per token
 * float score, int32 length, bytes) and the GGUF vocabulary (through
 * model_tokenizer_build).  A tokenizer is immutable after building and may
 * be shared by threads.
 */
#include "model/tokenizer_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(uint32_t h, const char *s, int n) {
    for (int i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}
#define HASH_SEED 2166136261u

static int lookup2(const model_tokenizer_t *t, const char *a, int an, const char *b, int bn) {
    uint32_t h = hash_bytes(hash_bytes(HASH_SEED, a, an), b, bn);
    for (uint32_t i = h & (t->ht_cap - 1);; i = (i + 1) & (t->ht_cap - 1)) {
        int id = t->ht[i];
        if (id < 0) return -1;
        if (t->len[id] == an + bn && memcmp(t->piece[id], a, (size_t)an) == 0 &&
            memcmp(t->piece[id] + an, b, (size_t)bn) == 0)
            return id;
    }
}

static int parse_byte_piece(const char *p, int n) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

int model_tokenizer_build(int vocab, const char *const *pieces, const int *lens, const float *scores,
                          const int32_t *types, int bos, int eos, model_tokenizer_t **out,
                          llmos_error_t *err) {
    *out = NULL;
    if (vocab <= 0) return llmos_error_set(err, LLMOS_EINVAL, "tokenizer: empty vocabulary");
    if (bos < 0 || bos >= vocab || eos < 0 || eos >= vocab)
        return llmos_error_set(err, LLMOS_EFORMAT, "tokenizer: bos %d / eos %d outside the vocabulary of %d",
                               bos, eos, vocab);
    model_tokenizer_t *t = calloc(1, sizeof *t);
    if (!t) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for tokenizer");
    size_t total = 0;
    for (int i = 0; i < vocab; i++) total += (size_t)lens[i];
    uint32_t cap = 16;
    while (cap < (uint32_t)vocab * 2) cap <<= 1;
    t->vocab_size = vocab;
    t->piece = calloc((size_t)vocab, sizeof *t->piece);
    t->len = calloc((size_t)vocab, sizeof *t->len);
    t->score = calloc((size_t)vocab, sizeof *t->score);
    t->type = calloc((size_t)vocab, 1);
    t->arena = malloc(total + 1);
    t->ht = malloc(sizeof(int) * cap);
    t->ht_cap = cap;
    if (!t->piece || !t->len || !t->score || !t->type || !t->arena || !t->ht) {
        model_tokenizer_destroy(&t);
        return llmos_error_set(err, LLMOS_ENOMEM, "no memory for tokenizer");
    }
    for (uint32_t i = 0; i < cap; i++) t->ht[i] = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    t->bos = bos;
    t->eos = eos;
    char *a = t->arena;
    for (int i = 0; i < vocab; i++) {
        /* SentencePiece writes the word boundary as U+2581; llama2.c's
         * tokenizer.bin has plain spaces.  Store spaces. */
        int n = 0;
        for (int j = 0; j < lens[i]; j++) {
            if (j + 2 < lens[i] && (uint8_t)pieces[i][j] == 0xe2 && (uint8_t)pieces[i][j + 1] == 0x96 &&
                (uint8_t)pieces[i][j + 2] == 0x81) {
                a[n++] = ' ';
                j += 2;
            } else {
                a[n++] = pieces[i][j];
            }
        }
        t->piece[i] = a;
        t->len[i] = n;
        a += n;
        t->score[i] = scores ? scores[i] : 0.0f;
        if (n > t->max_len) t->max_len = n;
        int bv = parse_byte_piece(t->piece[i], n);
        uint8_t ty;
        if (types)
            ty = (uint8_t)(types[i] == MODEL_TOK_BYTE || types[i] == MODEL_TOK_CONTROL ||
                                   types[i] == MODEL_TOK_UNKNOWN
                               ? types[i]
                               : MODEL_TOK_NORMAL);
        else
            ty = i < 3 ? (i == 0 ? MODEL_TOK_UNKNOWN : MODEL_TOK_CONTROL)
                       : bv >= 0 ? MODEL_TOK_BYTE : MODEL_TOK_NORMAL;
        if (ty == MODEL_TOK_BYTE && bv < 0) ty = MODEL_TOK_NORMAL; /* not <0xHH>: treat as text */
        t->type[i] = ty;
        if (ty == MODEL_TOK_BYTE) {
            if (t->byte_id[bv] < 0) t->byte_id[bv] = i;
        } else if (ty == MODEL_TOK_NORMAL && n > 0) {
            uint32_t h = hash_bytes(HASH_SEED, t->piece[i], n);
            uint32_t k = h & (cap - 1);
            int dup = 0;
            for (; t->ht[k] >= 0; k = (k + 1) & (cap - 1))
                if (t->len[t->ht[k]] == n && memcmp(t->piece[t->ht[k]], t->piece[i], (size_t)n) == 0) dup = 1;
            if (!dup) t->ht[k] = i; /* the first of duplicate pieces wins */
        }
    }
    *out = t;
    return 0;
}

int model_tokenizer_load(const char *path, int vocab, model_tokenizer_t **out, llmos_error_t *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return llmos_error_set(err, llmos_err_from_errno(errno), "cannot open tokenizer '%s': %s", path,
                               strerror(errno));
    char *buf = NULL;
    size_t size = 0;
    int rc = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long s = ftell(f);
        if (s > 0 && s < (1L << 30)) size = (size_t)s;
    }
    if (size == 0) rc = llmos_error_set(err, LLMOS_EFORMAT, "tokenizer '%s' is empty or unreadable (offset 0)", path);
    if (!rc && !(buf = malloc(size))) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for tokenizer");
    if (!rc && (fseek(f, 0, SEEK_SET) != 0 || fread(buf, 1, size, f) != size))
        rc = llmos_error_set(err, LLMOS_EIO, "reading tokenizer '%s': %s", path, strerror(errno));
    fclose(f);
    const char **pieces = NULL;
    int *lens = NULL;
    float *scores = NULL;
    if (!rc) {
        pieces = calloc((size_t)vocab, sizeof *pieces);
        lens = calloc((size_t)vocab, sizeof *lens);
        scores = calloc((size_t)vocab, sizeof *scores);
        if (!pieces || !lens || !scores) rc = llmos_error_set(err, LLMOS_ENOMEM, "no memory for tokenizer");
    }
    int32_t maxlen = 0;
    if (!rc) {
        if (size < 4) rc = llmos_error_set(err, LLMOS_EFORMAT, "tokenizer '%s': truncated at offset 0 (max_token_length)", path);
        else memcpy(&maxlen, buf, 4);
        if (!rc && (maxlen <= 0 || maxlen > 65536))
            rc = llmos_error_set(err, LLMOS_EFORMAT, "tokenizer '%s': max_token_length %d at offset 0 is out of range",
                                 path, maxlen);
    }
    size_t off = 4;
    for (int i = 0; i < vocab && !rc; i++) {
        int32_t n;
        if (size - off < 8) {
            rc = llmos_error_set(err, LLMOS_EFORMAT,
                                 "tokenizer '%s': truncated at offset %zu (token %d of %d: score/length)", path, off, i, vocab);
            break;
        }
        memcpy(&scores[i], buf + off, 4);
        memcpy(&n, buf + off + 4, 4);
        if (n < 0 || n > maxlen) {
            rc = llmos_error_set(err, LLMOS_EFORMAT, "tokenizer '%s': token %d length %d at offset %zu is not in 0..%d",
                                 path, i, n, off + 4, maxlen);
            break;
        }
        off += 8;
        if (size - off < (size_t)n) {
            rc = llmos_error_set(err, LLMOS_EFORMAT, "tokenizer '%s': truncated at offset %zu (token %d bytes)", path, off, i);
            break;
        }
        pieces[i] = buf + off;
        lens[i] = n;
        off += (size_t)n;
    }
    if (!rc && off != size)
        rc = llmos_error_set(err, LLMOS_EFORMAT,
                             "tokenizer '%s': %zu trailing bytes after %d tokens at offset %zu (vocabulary size differs from the model's?)",
                             path, size - off, vocab, off);
    if (!rc) rc = model_tokenizer_build(vocab, pieces, lens, scores, NULL, 1, 2, out, err);
    free(pieces);
    free(lens);
    free(scores);
    free(buf);
    return rc;
}

void model_tokenizer_destroy(model_tokenizer_t **tp) {
    if (!tp || !*tp) return;
    model_tokenizer_t *t = *tp;
    free(t->piece);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->arena);
    free(t->ht);
    free(t);
    *tp = NULL;
}

int model_tokenizer_bos(const model_tokenizer_t *t) { return t->bos; }
int model_tokenizer_eos(const model_tokenizer_t *t) { return t->eos; }
int model_tokenizer_vocab_size(const model_tokenizer_t *t) { return t->vocab_size; }
int model_tokenizer_max_piece(const model_tokenizer_t *t) {
    return t->max_len > 0 ? t->max_len : 1;
}

/* ---- merging: the best-scoring adjacent pair first, the leftmost among
 * equals (llama2.c's rule), until none merges.  llama2.c rescans the whole
 * sequence after each merge (quadratic: 40 kB of text took seconds); here
 * the candidate pairs sit in a max-heap ordered by (score, -left position)
 * and the symbols in a linked list, so each merge costs a log.  A heap
 * entry is stale once either symbol changed (its generation moved) or
 * died. */

typedef struct pair {
    float score;
    int left, right; /* symbol positions */
    int id;          /* the merged piece */
    int gl, gr;      /* the symbols' generations when pushed */
} pair_t;

/* a before b in the heap: higher score, then the leftmost. */
static int pair_before(const pair_t *a, const pair_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct merge_state {
    const model_tokenizer_t *t;
    int *tok, *prev, *next, *gen;
    pair_t *heap;
    size_t n_heap, cap_heap;
} merge_state_t;

static int heap_push(merge_state_t *m, int left, int right) {
    const model_tokenizer_t *t = m->t;
    int a = m->tok[left], b = m->tok[right];
    if (t->type[a] != MODEL_TOK_NORMAL || t->type[b] != MODEL_TOK_NORMAL) return 0;
    int id = lookup2(t, t->piece[a], t->len[a], t->piece[b], t->len[b]);
    if (id < 0 || !(t->score[id] > -1e30f)) return 0; /* llama2.c never merges at or below its start value */
    if (m->n_heap == m->cap_heap) {
        size_t cap = m->cap_heap ? m->cap_heap * 2 : 64;
        pair_t *h = realloc(m->heap, cap * sizeof *h);
        if (!h) return LLMOS_ENOMEM;
        m->heap = h;
        m->cap_heap = cap;
    }
    pair_t e = {t->score[id], left, right, id, m->gen[left], m->gen[right]};
    size_t i = m->n_heap++;
    while (i > 0 && pair_before(&e, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = e;
    return 0;
}

static pair_t heap_pop(merge_state_t *m) {
    pair_t top = m->heap[0], last = m->heap[--m->n_heap];
    size_t i = 0, n = m->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&m->heap[c + 1], &m->heap[c])) c++;
        if (!pair_before(&m->heap[c], &last)) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (n) m->heap[i] = last;
    return top;
}

static int merge_pairs(const model_tokenizer_t *t, int *out, int *n_io, llmos_error_t *err) {
    int n = *n_io;
    if (n < 2) return 0;
    merge_state_t m = {.t = t};
    m.tok = out;
    m.prev = malloc(sizeof(int) * (size_t)n);
    m.next = malloc(sizeof(int) * (size_t)n);
    m.gen = calloc((size_t)n, sizeof(int));
    int rc = m.prev && m.next && m.gen ? 0 : LLMOS_ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
        m.prev[i] = i - 1;
        m.next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int i = 0; !rc && i + 1 < n; i++)
        rc = heap_push(&m, i, i + 1);
    while (!rc && m.n_heap) {
        pair_t p = heap_pop(&m);
        if (m.gen[p.left] != p.gl || m.gen[p.right] != p.gr || m.next[p.left] != p.right)
            continue; /* stale */
        /* p.right joins p.left; the removed symbol's generation moves too,
         * so entries naming it are stale. */
        out[p.left] = p.id;
        m.gen[p.left]++;
        m.gen[p.right]++;
        m.next[p.left] = m.next[p.right];
        if (m.next[p.right] >= 0) m.prev[m.next[p.right]] = p.left;
        m.next[p.right] = -2; /* dead */
        if (m.prev[p.left] >= 0) rc = heap_push(&m, m.prev[p.left], p.left);
        if (!rc && m.next[p.left] >= 0) rc = heap_push(&m, p.left, m.next[p.left]);
    }
    if (!rc) { /* compact the live symbols, in order */
        int k = 0;
        for (int i = 0; i >= 0; i = m.next[i])
            out[k++] = out[i];
        *n_io = k;
    }
    free(m.prev);
    free(m.next);
    free(m.gen);
    free(m.heap);
    return rc ? llmos_error_set(err, LLMOS_ENOMEM, "tokenize: no memory to merge %d symbols", n) : 0;
}

int model_tokenize(const model_tokenizer_t *t, const char *text, size_t len, int bos, int eos, int *out,
                   int cap, int *n_out, llmos_error_t *err) {
    int n = 0;
    *n_out = 0;
#define PUSH(id)                                                                                   \
    do {                                                                                           \
        if (n >= cap) return llmos_error_set(err, LLMOS_ETOOBIG, "tokenize: more than %d tokens", cap); \
        out[n++] = (id);                                                                           \
    } while (0)
    if (bos) PUSH(t->bos);
    if (len > 0) {
        int sp = lookup2(t, " ", 1, "", 0);
        if (sp >= 0) PUSH(sp);
    }
    for (size_t i = 0; i < len;) {
        /* One UTF-8 character: a lead byte and up to 3 continuation bytes. */
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((uint8_t)text[j] & 0xc0) == 0x80) j++;
        int id = lookup2(t, text + i, (int)(j - i), "", 0);
        if (id >= 0) {
            PUSH(id);
        } else {
            for (size_t k = i; k < j; k++) {
                int b = t->byte_id[(uint8_t)text[k]];
                PUSH(b >= 0 ? b : 0); /* 0 = <unk> when the vocabulary lacks byte tokens */
            }
        }
        i = j;
    }
    int rc = merge_pairs(t, out, &n, err);
    if (rc) return rc;
    if (eos) PUSH(t->eos);
#undef PUSH
    *n_out = n;
    return 0;
}

static const unsigned char all_bytes[256] = {
#define B4(x) x, x + 1, x + 2, x + 3
#define B16(x) B4(x), B4(x + 4), B4(x + 8), B4(x + 12)
#define B64(x) B16(x), B16(x + 16), B16(x + 32), B16(x + 48)
    B64(0), B64(64), B64(128), B64(192)
#undef B4
#undef B16
#undef B64
};

const char *model_token_piece(const model_tokenizer_t *t, int prev, int id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->vocab_size) return NULL;
    switch (t->type[id]) {
    case MODEL_TOK_BYTE:
        *len = 1;
        return (const char *)&all_bytes[parse_byte_piece(t->piece[id], t->len[id])];
    case MODEL_TOK_CONTROL:
    case MODEL_TOK_UNKNOWN:
        return "";
    default: {
        const char *p = t->piece[id];
        size_t n = (size_t)t->len[id];
        if (prev == t->bos && n > 0 && p[0] == ' ') {
            p++;
            n--;
        }
        *len = n;
        return p;
    }
    }
}

int model_detokenize(const model_tokenizer_t *t, const int *ids, int n, char *out, size_t cap,
                     size_t *n_out, llmos_error_t *err) {
    size_t w = 0;
    int prev = t->bos;
    for (int i = 0; i < n; i++) {
        size_t pl;
        const char *p = model_token_piece(t, prev, ids[i], &pl);
        if (!p) return llmos_error_set(err, LLMOS_EINVAL, "detokenize: token %d at %d is not in the vocabulary", ids[i], i);
        if (w + pl + 1 > cap) return llmos_error_set(err, LLMOS_ETOOBIG, "detokenize: output over %zu bytes", cap);
        memcpy(out + w, p, pl);
        w += pl;
        prev = ids[i];
    }
    if (w < cap) out[w] = '\0';
    *n_out = w;
    return 0;
}
