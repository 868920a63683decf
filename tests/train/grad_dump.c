/*
 * grad_dump.c — writes one fp32 training step of a small random Llama net
 * for an independent reference (torch_ref.py): for each case a folder with
 * case.json (config, options, batch, tensor table, loss), params.bin and
 * grads.bin (the whole fp32 buffers, little-endian).
 *
 * Usage: train_grad_dump OUTDIR   (creates OUTDIR/<case>/)
 */
#include "model/train/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { B = 3, T = 10 };

static int write_bin(const char *dir, const char *name, const float *x, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof(float), n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "train_grad_dump: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int run_case(const char *out, const char *name, train_net_opts_t o) {
    model_config_t cfg = {.arch = MODEL_ARCH_LLAMA, .dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4,
                          .n_kv_heads = 2, .vocab_size = 37, .seq_len = 16, .rope_theta = 10000.0f,
                          .norm_eps = 1e-5f, .shared_classifier = o.task == TRAIN_TASK_LM};
    o.batch = B;
    o.seq = T;
    train_net_t *n = NULL;
    llmos_error_t err = {0};
    if (train_net_new(&cfg, &o, &n, &err)) {
        fprintf(stderr, "train_grad_dump: %s\n", err.msg);
        return 1;
    }
    train_net_init_random(n, 42, 0.2f, 7u);
    const train_layout_t *l = train_net_layout(n);
    float *p = train_net_params(n);
    uint64_t s = 17;
    for (int i = 0; i < l->n_tensors; i++) /* non-trivial norms and LoRA B */
        if (l->t[i].rows == 1 || l->t[i].group == TRAIN_GROUP_LORA)
            for (size_t k = 0; k < (size_t)l->t[i].rows * l->t[i].cols; k++)
                p[l->t[i].off + k] += (float)(0.2 * train_rng_normal(&s));
    int tokens[B * T], lens[B] = {10, 7, 4}, labels[B] = {1, 4, 2};
    for (int i = 0; i < B * T; i++) tokens[i] = (int)(train_rng_next(&s) % (uint64_t)cfg.vocab_size);
    train_batch_t b = {.B = B, .T = T, .tokens = tokens, .lens = lens, .labels = labels, .drop_seed = 1234567, .first = 11};
    double loss;
    int64_t cnt;
    if (train_net_forward(n, &b, 1, &loss, &cnt, &err)) {
        fprintf(stderr, "train_grad_dump: %s\n", err.msg);
        train_net_destroy(&n);
        return 1;
    }
    train_net_zero_grad(n);
    train_net_backward(n, 1.0f / (float)cnt);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/%s", out, name);
    mkdir(dir, 0755);
    char path[1200];
    snprintf(path, sizeof path, "%s/case.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "train_grad_dump: cannot write %s\n", path);
        train_net_destroy(&n);
        return 1;
    }
    fprintf(f, "{\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,\"vocab\":%d,"
               "\"rope_theta\":%g,\"norm_eps\":%g,\"task\":\"%s\",\"mode\":%d,\"pool\":\"%s\",\"dropout\":%.9g,"
               "\"n_classes\":%d,\"lora_rank\":%d,\"lora_alpha\":%.9g,\"B\":%d,\"T\":%d,\"drop_seed\":%d,\"first\":%d,"
               "\"loss_sum\":%.17g,\"count\":%lld,\"train_off\":%zu,\"n_params\":%zu,\"tokens\":[",
            cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.rope_theta,
            cfg.norm_eps, o.task == TRAIN_TASK_LM ? "lm" : "cls", (int)o.mode,
            o.pool == TRAIN_POOL_LAST ? "last" : "mean", o.dropout, o.n_classes, o.lora_rank, o.lora_alpha, B, T,
            1234567, 11, loss, (long long)cnt, l->train_off, l->n_params);
    for (int i = 0; i < B * T; i++) fprintf(f, "%s%d", i ? "," : "", tokens[i]);
    fprintf(f, "],\"lens\":[%d,%d,%d],\"labels\":[%d,%d,%d],\"tensors\":[", lens[0], lens[1], lens[2], labels[0],
            labels[1], labels[2]);
    for (int i = 0; i < l->n_tensors; i++)
        fprintf(f, "%s{\"name\":\"%s\",\"off\":%zu,\"rows\":%d,\"cols\":%d}", i ? "," : "", l->t[i].name, l->t[i].off,
                l->t[i].rows, l->t[i].cols);
    fprintf(f, "]}\n");
    int rc = fclose(f) != 0;
    rc |= write_bin(dir, "params.bin", train_net_params(n), l->n_params);
    rc |= write_bin(dir, "grads.bin", train_net_grads(n), l->n_params);
    train_net_destroy(&n);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: train_grad_dump OUTDIR\n");
        return 2;
    }
    train_net_opts_t lm = {.task = TRAIN_TASK_LM, .mode = TRAIN_MODE_PRETRAIN, .threads = 2};
    train_net_opts_t cls = {.task = TRAIN_TASK_CLS, .mode = TRAIN_MODE_FULL, .n_classes = 5, .pool = TRAIN_POOL_MEAN,
                            .dropout = 0.25f, .threads = 2};
    train_net_opts_t lora = {.task = TRAIN_TASK_CLS, .mode = TRAIN_MODE_LORA, .n_classes = 5, .pool = TRAIN_POOL_LAST,
                             .dropout = 0.1f, .lora_rank = 4, .lora_alpha = 8, .threads = 1};
    int rc = run_case(argv[1], "lm_full", lm);
    rc |= run_case(argv[1], "cls_full_mean", cls);
    rc |= run_case(argv[1], "cls_lora_last", lora);
    return rc ? 1 : 0;
}
