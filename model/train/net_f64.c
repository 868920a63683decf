/*
 * net_f64.c — the fp64 instantiation of net_impl.h (train64_net_*): the
 * same net in double precision, the reference that gradient checks and
 * finite differences use (train_internal.h).  It keeps its own arithmetic
 * (no NET_KERNELS_F32): the inference kernels are float only, and this net
 * exists for the precision they do not have.
 */
#include "model/train/train_internal.h"
#define R double
#define NET train_net64
#define FN(x) train64_##x
#define GEMM_EX bli_dgemm_ex
#include "model/train/net_impl.h"
