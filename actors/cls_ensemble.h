/*
 * cls_ensemble.h — an ensemble of classifier checkpoints served by one
 * pinned actor: llmosd --ensemble DIR[:W],DIR[:W],...
 *
 * Members are fine-tuned transformer classifiers (model/train/trainer.h
 * checkpoints) and n-gram classifiers (model/train/ngram.h), each with a
 * weight (default 1).  A Classify (MODEL_MSG_SCORE, a ScoreRequest without
 * labels) is answered as the model-shard path answers it (a ScoreResult:
 * the classes by falling probability, top_k of them or all, their
 * probabilities and log-probabilities, best) with the weighted average
 * sum_k w_k p_k / sum_k w_k of the members' probabilities — the arithmetic
 * of llmos-eval --ckpt A --ckpt B ... --weight W (model/tools/eval.c).
 *
 * Batching: requests wait in the actor's queue while its mailbox drains;
 * when the mailbox is empty the actor takes up to ACTORS_ENS_BATCH queued
 * requests whose deadline has not passed and runs them as one batch through
 * every member (train_predict, ngram_predict).  Requests past their
 * deadline get LLMOS_ETIMEDOUT; a payload that is no ScoreRequest, a Score
 * with labels or an empty text get LLMOS_EINVAL; Generate, Embed, Cancel,
 * Load and Unload get LLMOS_EUNSUPPORTED naming what the node serves.
 * MODEL_MSG_STATS answers a ModelStats (model "ensemble", classifier = the
 * spec, classes, queued, requests_done, iterations = batches run).
 *
 * Names: "classify/ensemble" always; also "model" when as_model (llmosd has
 * no --model / --classifier), so `llmos classify` reaches it unchanged.
 *
 * Ownership: actors_ensemble_start loads every member on the calling
 * thread (so a bad spec fails llmosd at start-up) and hands them to the
 * actor, which frees them at its end.
 */
#ifndef LLMOS_ACTORS_CLS_ENSEMBLE_H
#define LLMOS_ACTORS_CLS_ENSEMBLE_H

#include "runtime/actor.h"

#include <stdbool.h>

#define ACTORS_ENS_BATCH 16       /* requests per batch (and the transformer nets' batch) */
#define ACTORS_ENS_MAX_MEMBERS 32

/* Loads the members of spec ("DIR[:WEIGHT],..."; WEIGHT a number >= 0, the
 * weights summing to more than 0) with `threads` model threads each
 * (0 = 1), checks they are classifiers with one label set, and spawns the
 * actor.  Errors name the member (its position and folder) and the problem:
 * LLMOS_EINVAL (bad spec or weight, not a classifier, labels differ),
 * LLMOS_ENOTFOUND (no checkpoint store), those of the loaders, of
 * rt_spawn and rt_register. */
int actors_ensemble_start(rt_system_t *sys, const char *spec, bool as_model, int threads, llmos_error_t *err);

#endif
