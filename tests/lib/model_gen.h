/*
 * model_gen.h — random-weight models for tests and benchmarks: a llama2.c
 * checkpoint of any shape plus a synthetic tokenizer.bin, so a model of a
 * real size (e.g. 110M) can be loaded like any other without shipping one.
 * (library llmos_test_model, tests/lib/CMakeLists.txt)
 */
#ifndef LLMOS_TESTS_MODEL_GEN_H
#define LLMOS_TESTS_MODEL_GEN_H

#include "model/model.h"

#include <stdint.h>

/* Writes cfg's shape with weights uniform in [-amp/2, amp/2) (norm weights
 * 1 + that) from a xorshift generator seeded with seed (same seed, same
 * bytes) to model_path, and, when tok_path is not NULL, a tokenizer.bin of
 * cfg->vocab_size pieces ("<c0>".."<c2>" control, then "t3", "t4", ...).
 * Errors: those of model_new / model_save_llama2c, LLMOS_EIO. */
int llmos_test_model_write(const model_config_t *cfg, uint64_t seed, float amp, const char *model_path,
                           const char *tok_path, llmos_error_t *err);

#endif
