/*
 * train_internal.h — the fp64 twin of train_net_t (same layout, same code,
 * double precision) for gradient checks; not for production training.
 */
#ifndef LLMOS_MODEL_TRAIN_INTERNAL_H
#define LLMOS_MODEL_TRAIN_INTERNAL_H

#include "model/train/train.h"

typedef struct train_net64 train_net64_t;

int train64_net_new(const model_config_t *cfg, const train_net_opts_t *opts, train_net64_t **out,
                    llmos_error_t *err);
void train64_net_destroy(train_net64_t **n);
const train_layout_t *train64_net_layout(const train_net64_t *n);
double *train64_net_params(train_net64_t *n);
double *train64_net_grads(train_net64_t *n);
void train64_net_init_random(train_net64_t *n, uint64_t seed, float std, unsigned groups);
int train64_net_load_model(train_net64_t *n, const model_t *m, llmos_error_t *err);
int train64_net_store_model(const train_net64_t *n, model_t *m, llmos_error_t *err);
int train64_net_forward(train_net64_t *n, const train_batch_t *b, int train, double *loss_sum,
                        int64_t *count, llmos_error_t *err);
void train64_net_backward(train_net64_t *n, float scale);
void train64_net_zero_grad(train_net64_t *n);
const double *train64_net_class_probs(const train_net64_t *n, int b);
const double *train64_net_token_probs(const train_net64_t *n, int b, int t);
const double *train64_net_hidden(const train_net64_t *n, int b, int t);

#endif
