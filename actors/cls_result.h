/*
 * cls_result.h — the answer to a Classify request (a ScoreResult without
 * labels in the request), shared by the actors that classify: the model
 * shard serving one fine-tuned checkpoint (model_shard.c) and the
 * ensemble actor (cls_ensemble.c).
 */
#ifndef LLMOS_ACTORS_CLS_RESULT_H
#define LLMOS_ACTORS_CLS_RESULT_H

#include <stddef.h>
#include <stdint.h>

/* Packs the top k (1..C) of the C classes by falling probability p (ties
 * by class order) with their probabilities and log-probabilities, best
 * first, into *buf (malloc'd; the caller frees) of *len bytes.  labels[c]
 * names class c (borrowed).  0, or LLMOS_ENOMEM (nothing allocated). */
int actors_cls_result_pack(const char *const *labels, const double *p, int C, int k, uint8_t **buf, size_t *len);

#endif
