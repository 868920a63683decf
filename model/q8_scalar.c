/*
 * q8_scalar.c — the portable bottom of the int8 kernels: fp16 conversion,
 * the scale of a block (shared so the scalar and AVX-512 quantizers agree
 * bit for bit), the scalar quantizer and the scalar reference kernel.  It
 * calls nothing else in model/; q8.c (dispatch) and the SIMD kernel files
 * call it.
 */
#include "model/q8_internal.h"

#include <math.h>
#include <string.h>

/* ---- fp16 ------------------------------------------------------------------ */

float q8_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13); /* inf, NaN (payload kept) */
    else
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t q8_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* quiet NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {
        /* below the smallest normal half (2^-14): a subnormal count of
         * 2^-24; rintf rounds to nearest even, 1024 lands on 0x0400 */
        float a;
        memcpy(&a, &ax, sizeof a);
        return (uint16_t)(sign | (uint16_t)rintf(a * 16777216.0f));
    }
    /* normal: round the 13 dropped bits to nearest even; a carry out of
     * the mantissa correctly bumps the exponent */
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | ((r >> 13) - (112u << 10)));
}

/* round(v * id) (ties away from zero, as roundf) clamped to [-127, 127],
 * NaN -> 0; written with a truncating conversion because roundf is a
 * library call per value here (no global -march), which made quantizing
 * activations cost half as much as the matmul itself in prefill. */
static int8_t quant_one(float v, float id) {
    float a = fabsf(v * id);
    if (!(a < 127.0f)) return (int8_t)(a >= 127.0f ? (v < 0 ? -127 : 127) : 0);
    int t = (int)a;              /* a in [0, 127): exact truncation */
    t += (a - (float)t >= 0.5f); /* a - t is exact */
    return (int8_t)(v < 0 ? -t : t);
}

uint16_t q8_block_scale(float amax, float *id) {
    float dexact = amax / 127.0f;
    uint16_t dh = q8_fp32_to_fp16(dexact);
    /* round the fp16 scale up, never down: then no value needs more than
     * 127 steps and the error stays within half a step even where fp16 is
     * coarse (subnormal scales of tiny activations) */
    if (q8_fp16_to_fp32(dh) < dexact && dh < 0x7c00u) dh++;
    float d = q8_fp16_to_fp32(dh);
    /* quantize with the stored scale so dequantizing inverts it as closely
     * as int8 allows; inf/NaN scales give zeros */
    *id = (d > 0.0f && isfinite(d)) ? 1.0f / d : 0.0f;
    return dh;
}

void q8_quant_scalar(const float *x, q8_block_t *out, int nb) {
    for (int b = 0; b < nb; b++) {
        const float *v = x + (size_t)b * Q8_BLOCK;
        float amax = 0.0f, id;
        for (int i = 0; i < Q8_BLOCK; i++) {
            float a = fabsf(v[i]);
            amax = a > amax ? a : amax; /* as fmaxf (NaN skipped), without the call */
        }
        q8_block_t blk;
        blk.d = q8_block_scale(amax, &id);
        for (int i = 0; i < Q8_BLOCK; i++)
            blk.qs[i] = quant_one(v[i], id);
        memcpy((void *)&out[b], &blk, sizeof blk);
    }
}

/* ---- scalar reference kernel ------------------------------------------------------ */

void q8_rows_scalar(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, const q8_block_t *xq,
                    int batch) {
    for (int r = r0; r < r1; r++) {
        const q8_block_t *w = W + (size_t)r * nb;
        for (int b = 0; b < batch; b++) {
            const q8_block_t *x = xq + (size_t)b * nb;
            float acc = 0.0f;
            for (int k = 0; k < nb; k++) {
                int32_t isum = 0;
                for (int i = 0; i < Q8_BLOCK; i++)
                    isum += (int32_t)w[k].qs[i] * (int32_t)x[k].qs[i];
                acc += q8_fp16_to_fp32(q8_block_d(&w[k])) * q8_fp16_to_fp32(q8_block_d(&x[k])) * (float)isum;
            }
            y[(size_t)b * ldy + r] = acc;
        }
    }
}
