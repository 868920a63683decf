/*
 * serve_plan.c — the plan's wire form (serve_plan.h): encode, a decoder
 * that trusts nothing, and a follower's application of a plan to its
 * context.  No allocation: the caller owns every buffer.
 */
#include "model/serve_plan.h"

#include <string.h>

int serve_plan_max_ops(int max_seqs) {
    /* Between two plans a slot is opened at most once and closed at most
     * once per request that held it, plus one truncation per scoring
     * request: 4 per slot (and a margin) is more than can happen. */
    return 4 * max_seqs + 4;
}

size_t serve_plan_max_words(int max_seqs, int token_budget) {
    return SERVE_PLAN_HEADER + 3 * (size_t)serve_plan_max_ops(max_seqs) + 3 * (size_t)max_seqs +
           (size_t)token_budget;
}

int serve_plan_encode(const serve_plan_t *p, int32_t *buf, size_t cap, size_t *n, llmos_error_t *err) {
    *n = 0;
    if (p->kind != SERVE_PLAN_FORWARD && p->kind != SERVE_PLAN_STOP)
        return llmos_error_set(err, LLMOS_EINVAL, "plan: kind %d is neither FORWARD nor STOP", p->kind);
    if (p->n_ops < 0 || p->n_entries < 0 || p->n_tokens < 0)
        return llmos_error_set(err, LLMOS_EINVAL, "plan: negative count (%d ops, %d entries, %d tokens)",
                               p->n_ops, p->n_entries, p->n_tokens);
    int64_t sum = 0;
    for (int i = 0; i < p->n_entries; i++) {
        if (p->entries[i].n_tokens < 1)
            return llmos_error_set(err, LLMOS_EINVAL, "plan: entry %d has %d tokens", i,
                                   p->entries[i].n_tokens);
        sum += p->entries[i].n_tokens;
    }
    if (sum != p->n_tokens)
        return llmos_error_set(err, LLMOS_EINVAL, "plan: the entries hold %lld tokens, the plan says %d",
                               (long long)sum, p->n_tokens);
    size_t need = SERVE_PLAN_HEADER + 3 * (size_t)p->n_ops + 3 * (size_t)p->n_entries + (size_t)p->n_tokens;
    if (need > cap)
        return llmos_error_set(err, LLMOS_ETOOBIG, "plan: %zu words, the buffer holds %zu", need, cap);
    size_t k = 0;
    buf[k++] = SERVE_PLAN_VERSION;
    buf[k++] = p->kind;
    buf[k++] = p->n_ops;
    buf[k++] = p->n_entries;
    buf[k++] = p->n_tokens;
    if (p->n_ops) memcpy(buf + k, p->ops, sizeof(int32_t) * 3 * (size_t)p->n_ops);
    k += 3 * (size_t)p->n_ops;
    for (int i = 0; i < p->n_entries; i++) {
        buf[k++] = p->entries[i].seq;
        buf[k++] = p->entries[i].n_tokens;
        buf[k++] = p->want && p->want[i] ? 1 : 0;
    }
    for (int i = 0; i < p->n_entries; i++) {
        memcpy(buf + k, p->entries[i].tokens, sizeof(int32_t) * (size_t)p->entries[i].n_tokens);
        k += (size_t)p->entries[i].n_tokens;
    }
    *n = k;
    return 0;
}

int serve_plan_decode(const int32_t *buf, size_t n, int max_entries, serve_plan_t *p, llmos_error_t *err) {
    if (n < SERVE_PLAN_HEADER)
        return llmos_error_set(err, LLMOS_EFORMAT, "plan: %zu words, the header alone is %d", n,
                               SERVE_PLAN_HEADER);
    if (buf[0] != SERVE_PLAN_VERSION)
        return llmos_error_set(err, LLMOS_EFORMAT, "plan: version %d at word 0 (this rank reads %d)", buf[0],
                               SERVE_PLAN_VERSION);
    if (buf[1] != SERVE_PLAN_FORWARD && buf[1] != SERVE_PLAN_STOP)
        return llmos_error_set(err, LLMOS_EFORMAT, "plan: kind %d at word 1 is unknown", buf[1]);
    int n_ops = buf[2], ne = buf[3], nt = buf[4];
    if (n_ops < 0 || ne < 0 || nt < 0)
        return llmos_error_set(err, LLMOS_EFORMAT,
                               "plan: negative count at words 2..4 (%d ops, %d entries, %d tokens)", n_ops,
                               ne, nt);
    if (ne > max_entries)
        return llmos_error_set(err, LLMOS_EFORMAT, "plan: %d entries at word 3, this rank has room for %d",
                               ne, max_entries);
    uint64_t want_len = SERVE_PLAN_HEADER + 3 * (uint64_t)n_ops + 3 * (uint64_t)ne + (uint64_t)nt;
    if (want_len != (uint64_t)n)
        return llmos_error_set(err, LLMOS_EFORMAT,
                               "plan: %zu words, its header (%d ops, %d entries, %d tokens) says %llu", n,
                               n_ops, ne, nt, (unsigned long long)want_len);
    const int32_t *op = buf + SERVE_PLAN_HEADER;
    for (int i = 0; i < n_ops; i++)
        if (op[3 * i] < SERVE_OP_OPEN || op[3 * i] > SERVE_OP_TRUNC)
            return llmos_error_set(err, LLMOS_EFORMAT,
                                   "plan: op %d at word %d is %d, not open, close or truncate", i,
                                   SERVE_PLAN_HEADER + 3 * i, op[3 * i]);
    const int32_t *e = op + 3 * n_ops, *tok = e + 3 * ne;
    int64_t sum = 0;
    for (int i = 0; i < ne; i++) {
        int at = SERVE_PLAN_HEADER + 3 * n_ops + 3 * i;
        if (e[3 * i + 1] < 1 || e[3 * i + 1] > nt)
            return llmos_error_set(err, LLMOS_EFORMAT, "plan: entry %d at word %d has %d tokens (1..%d)", i,
                                   at, e[3 * i + 1], nt);
        if (e[3 * i + 2] != 0 && e[3 * i + 2] != 1)
            return llmos_error_set(err, LLMOS_EFORMAT,
                                   "plan: entry %d at word %d: want_rows %d is not 0 or 1", i, at + 2,
                                   e[3 * i + 2]);
        sum += e[3 * i + 1];
    }
    if (sum != nt)
        return llmos_error_set(err, LLMOS_EFORMAT, "plan: the entries hold %lld tokens, the header says %d",
                               (long long)sum, nt);
    p->kind = buf[1];
    p->n_ops = n_ops;
    p->ops = op;
    p->n_entries = ne;
    p->n_tokens = nt;
    for (int i = 0; i < ne; i++) {
        p->entries[i] = (model_batch_entry_t){e[3 * i], tok, e[3 * i + 1]};
        p->want[i] = (uint8_t)e[3 * i + 2];
        tok += e[3 * i + 1];
    }
    return 0;
}

int serve_plan_apply(model_ctx_t *c, const serve_plan_t *p, llmos_error_t *err) {
    const int32_t *op = p->ops;
    for (int i = 0; i < p->n_ops; i++, op += 3) {
        if (op[0] == SERVE_OP_OPEN) {
            int seq = -1;
            if (model_seq_open(c, &seq, err) != 0 || seq != op[1])
                return llmos_error_set(err, LLMOS_EFORMAT,
                                       "plan: op %d: slot %d opened where the leader has %d", i, seq, op[1]);
        } else if (op[0] == SERVE_OP_CLOSE) {
            model_seq_close(c, op[1]);
        } else {
            /* The leader cut the same open sequence back to a score's shared
             * prefix, which cannot fail; a failure here would leave this
             * rank's sequence as it was, as it would the leader's. */
            llmos_error_t e2;
            model_seq_truncate(c, op[1], op[2], &e2);
        }
    }
    if (p->n_entries &&
        model_ctx_forward_rows(c, p->entries, p->n_entries, p->want, err) == LLMOS_EUNAVAILABLE)
        return LLMOS_EUNAVAILABLE;
    return 0;
}
