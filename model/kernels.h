/*
 * kernels.h — fp32 kernels of the forward pass (private to model/; the
 * bottom layer, see builder.h).  All are pure functions of their arguments;
 * none allocates.  The training net (model/train) calls them where its fp32
 * arithmetic is the same.
 */
#ifndef LLMOS_MODEL_KERNELS_H
#define LLMOS_MODEL_KERNELS_H

/* Up to this many activation rows use our small-batch kernel (weights
 * streamed once), more use BLIS. */
#ifndef MODEL_SMALL_ROWS
#define MODEL_SMALL_ROWS 32
#endif

/* Y[T, rows] = X[T, cols] · W[rows, cols]ᵀ (row-major) with `threads`
 * workers; rntm1 is the caller's single-threaded BLIS rntm_t. */
void model_sgemm_xwt(const float *W, int rows, int cols, const float *X, int T, float *Y, int threads,
                     const void *rntm1);

float model_dot(const float *a, const float *b, int n);
void model_axpy(float *y, float a, const float *x, int n);
/* o = w ⊙ x / rms(x)  (o may equal x). */
void model_rmsnorm(float *o, const float *x, const float *w, int n, float eps);
/* h = silu(h) ⊙ g */
void model_swiglu(float *h, const float *g, int n);
/* Rotates consecutive pairs of each head by the position's angles. */
void model_rope(float *v, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
void model_softmax(float *x, int n);
/* RoPE angles: cos_t/sin_t[pos * head_dim/2 + i] for positions 0..positions-1,
 * with llama2.c's float expressions (so rotations are bit-identical to its
 * run.c); the model's tables (builder.c) and the training net's. */
void model_rope_table(float *cos_t, float *sin_t, int positions, int head_dim, float theta);
/* model_rmsnorm that also returns the inverse RMS it scaled by (what the
 * training net keeps for its backward pass); the same arithmetic. */
float model_rmsnorm_rinv(float *o, const float *x, const float *w, int n, float eps);

#endif
