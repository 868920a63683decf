/*
 * q8_avx512_tile.h — the tiling driver of an AVX-512 q8 kernel, included by
 * q8_avx512.c once per kernel (no include guard on purpose) inside that
 * kernel's target pragma.  The includer defines:
 *   Q8_STEP     its step function: one (or the last odd) pair of blocks for
 *               an R x B tile, step(R, B, two, acc, w, x, k, pf)
 *   Q8_NAME(x)  x with the kernel's suffix (names the static helpers)
 *   Q8_ROWS     the rows function it exports
 *   Q8_XTYPE    the type of its activation argument (q8 blocks or a
 *               prepared form)
 *   Q8_XROW(xq, row, nb)  the address (const void *) of activation row `row`
 * The macros are undefined at the end.
 */
#ifndef Q8_BCHUNK
#define Q8_BCHUNK 64 /* activation rows walked per pass over a thread's rows */
#endif

/* An R x B tile (R, B <= 4, compile-time constants after inlining):
 * y[b + j][r + i] for i < R, j < B.  pf: prefetch distance in blocks. */
ALWAYS void Q8_NAME(tile)(const int R, const int B, float *y, int ldy, const q8_block_t *W, int r, int nb,
                          Q8_XTYPE xq, int b, int pf) {
    __m512 acc[4][4];
    const q8_block_t *w[4];
    const void *x[4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) w[i] = W + (size_t)(r + i) * nb;
#pragma GCC unroll 4
    for (int j = 0; j < B; j++) x[j] = Q8_XROW(xq, b + j, nb);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < B; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 2 <= nb; k += 2) Q8_STEP(R, B, 1, acc, w, x, k, pf);
    if (k < nb) Q8_STEP(R, B, 0, acc, w, x, k, pf);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < B; j++) y[(size_t)(b + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* R rows at r against activation rows [b0, b1); the first batch tile
 * prefetches the next row tile (R * nb blocks ahead). */
ALWAYS void Q8_NAME(rowtile)(const int R, float *y, int ldy, const q8_block_t *W, int r, int nb, Q8_XTYPE xq,
                             int b0, int b1) {
    int b = b0, pf = R * nb;
    for (; b + 4 <= b1; b += 4, pf = 0) Q8_NAME(tile)(R, 4, y, ldy, W, r, nb, xq, b, pf);
    switch (b1 - b) {
    case 3: Q8_NAME(tile)(R, 3, y, ldy, W, r, nb, xq, b, pf); break;
    case 2: Q8_NAME(tile)(R, 2, y, ldy, W, r, nb, xq, b, pf); break;
    case 1: Q8_NAME(tile)(R, 1, y, ldy, W, r, nb, xq, b, pf); break;
    default: break;
    }
}

void Q8_ROWS(float *y, int ldy, const q8_block_t *W, int r0, int r1, int nb, Q8_XTYPE xq, int batch) {
    for (int b0 = 0; b0 < batch; b0 += Q8_BCHUNK) {
        int b1 = b0 + Q8_BCHUNK < batch ? b0 + Q8_BCHUNK : batch;
        int r = r0;
        for (; r + 4 <= r1; r += 4) Q8_NAME(rowtile)(4, y, ldy, W, r, nb, xq, b0, b1);
        for (; r < r1; r++) Q8_NAME(rowtile)(1, y, ldy, W, r, nb, xq, b0, b1);
    }
}

#undef Q8_STEP
#undef Q8_NAME
#undef Q8_ROWS
#undef Q8_XTYPE
#undef Q8_XROW
