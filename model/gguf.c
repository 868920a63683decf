#include "model/model_internal.h"
int model_load_gguf(model_t *m, const model_load_opts_t *opts, llmos_error_t *err) {
    (void)opts;
    return llmos_error_set(err, LLMOS_EUNSUPPORTED, "%s: GGUF not yet", m->path);
}
