/*
 * net_f32.c — the fp32 instantiation of net_impl.h: the public
 * train_net_* functions of train.h, on the inference kernels where the
 * arithmetic is the same (NET_KERNELS_F32; net_impl.h says where and why).
 */
#define NET_KERNELS_F32 1
#define R float
#define NET train_net
#define FN(x) train_##x
#define GEMM_EX bli_sgemm_ex
#include "model/train/net_impl.h"
