/* kernels_rv32.h — kernels tuned for RV32IMAC without SIMD, bit-exact with kernels_ref.c.
 *
 * The bodies are always-inline functions taking the layer's shape as arguments: the public functions in
 * kernels_rv32.c call them with run-time shapes (any model), and the rendered model.c calls them through
 * one small wrapper per distinct layer shape with the shape as literal constants, so the compiler turns
 * strides into immediate offsets and unrolls fixed trip counts.
 *
 * What makes them fast, and exact:
 * - the tile's bias is already folded with the input zero point (b − zp·Σw), so the inner loops are
 *   pure x·w multiply-accumulates; padding taps use the value zp;
 * - register blocking: 4 pixels × 4 output channels per pointwise inner loop (8 loads for 16 MACs),
 *   2 pixels × 4 channels for the first conv over gathered patches, and for the depthwise 3×3 the nine
 *   weights of a channel stay in registers while a 3×3 window slides along the row (3 loads per output);
 * - requantisation hoisted out of the inner loops and, for shifts > 32 (the usual case), done with the
 *   high word of the product only: ((acc·M) >> 32 + 2^(s−33)) >> (s−32), which equals the 64-bit rule
 *   exactly (the low word cannot carry past the rounding bit);
 * - int4 weights are loaded a byte (two weights) at a time and unpacked in registers.
 */
#ifndef PQLR_KERNELS_RV32_H
#define PQLR_KERNELS_RV32_H
#include "pqlr.h"

#define PQLR_INLINE static inline __attribute__((always_inline))

typedef struct {
    int32_t zp, lo, hi;
} pqlr_out_t;

PQLR_INLINE int8_t rq(int32_t acc, int32_t m, int32_t s, pqlr_out_t o) {
    int32_t y;
#if PQLR_DOUBLE_ROUNDING
    if (pqlr_round_twice) y = pqlr_mul_twice(acc, m, s); else
#endif
    if (__builtin_expect(s > 32, 1)) {
        int32_t h = (int32_t)(((int64_t)acc * m) >> 32);
        y = (h + (1 << (s - 33))) >> (s - 32);
    } else {
        y = (int32_t)(((int64_t)acc * m + ((int64_t)1 << (s - 1))) >> s);
    }
    y += o.zp;
    y = y < o.lo ? o.lo : y;
    y = y > o.hi ? o.hi : y;
    return (int8_t)y;
}

PQLR_INLINE int32_t w4lo(int32_t b) { return (int32_t)((uint32_t)b << 28) >> 28; }
PQLR_INLINE int32_t w4hi(int32_t b) { return b >> 4; }          /* b: the byte loaded sign-extended */

PQLR_INLINE int32_t wat(const int8_t *row, int k, const int WB) {
    if (WB == 8) return row[k];
    int32_t b = row[k >> 1];
    return (k & 1) ? w4hi(b) : w4lo(b);
}

/* int4 weights, 4 pixels × 4 channels: two channels' weights share one register, w_a + w_b·2^16, so
 * one multiply by an activation yields both products in 16-bit lanes. int4 weights are in [−7, 7]
 * (model.bin's reader refuses −8), so |x·w| ≤ 896 and a lane holds the sum of up to 36 products exactly;
 * every SWAR_K = 32 inputs the lanes are split (a = sext16(v),
 * b = (v − a) >> 16) into 32-bit accumulators kept in memory (so the 8 lane registers never spill).
 * Exact: no lane ever leaves int16. */
PQLR_INLINE void mm4x4_w4(const int8_t *x, const int8_t *w, const int32_t *b, const int32_t *m, const uint8_t *s,
                          int8_t *dst, pqlr_out_t o, const int K, const int XS, const int RB, const int DS) {
    enum { SWAR_K = 32 };
    int32_t acc[16];
    for (int i = 0; i < 16; i++) acc[i] = b[i & 3];
    __asm__ volatile("" : : "r"(acc) : "memory");
    int k = 0;
    while (k < K) {
        int kend = k + SWAR_K < K ? k + SWAR_K : K;
        int32_t s0a = 0, s0b = 0, s1a = 0, s1b = 0, s2a = 0, s2b = 0, s3a = 0, s3b = 0;
        for (; k + 2 <= kend; k += 2, x += 2, w++) {
            int32_t b0 = w[0], b1 = w[RB], b2 = w[2 * RB], b3 = w[3 * RB];
            int32_t p01 = w4lo(b0) + (int32_t)((uint32_t)w4lo(b1) << 16);
            int32_t p23 = w4lo(b2) + (int32_t)((uint32_t)w4lo(b3) << 16);
            int32_t x0 = x[0], x1 = x[XS], x2 = x[2 * XS], x3 = x[3 * XS];
            s0a += x0 * p01; s0b += x0 * p23; s1a += x1 * p01; s1b += x1 * p23;
            s2a += x2 * p01; s2b += x2 * p23; s3a += x3 * p01; s3b += x3 * p23;
            p01 = w4hi(b0) + (int32_t)((uint32_t)w4hi(b1) << 16);
            p23 = w4hi(b2) + (int32_t)((uint32_t)w4hi(b3) << 16);
            x0 = x[1]; x1 = x[XS + 1]; x2 = x[2 * XS + 1]; x3 = x[3 * XS + 1];
            s0a += x0 * p01; s0b += x0 * p23; s1a += x1 * p01; s1b += x1 * p23;
            s2a += x2 * p01; s2b += x2 * p23; s3a += x3 * p01; s3b += x3 * p23;
        }
        if (k < kend) {                                      /* odd K: the last low nibbles */
            int32_t p01 = w4lo(w[0]) + (int32_t)((uint32_t)w4lo(w[RB]) << 16);
            int32_t p23 = w4lo(w[2 * RB]) + (int32_t)((uint32_t)w4lo(w[3 * RB]) << 16);
            s0a += x[0] * p01; s0b += x[0] * p23; s1a += x[XS] * p01; s1b += x[XS] * p23;
            s2a += x[2 * XS] * p01; s2b += x[2 * XS] * p23; s3a += x[3 * XS] * p01; s3b += x[3 * XS] * p23;
            k++;
        }
#define SPLIT(v, i) do { int32_t l_ = (int16_t)(v); acc[i] += l_; acc[(i) + 1] += ((v) - l_) >> 16; } while (0)
        SPLIT(s0a, 0); SPLIT(s0b, 2); SPLIT(s1a, 4); SPLIT(s1b, 6);
        SPLIT(s2a, 8); SPLIT(s2b, 10); SPLIT(s3a, 12); SPLIT(s3b, 14);
#undef SPLIT
        __asm__ volatile("" : : "r"(acc) : "memory");
    }
    for (int p = 0; p < 4; p++, dst += DS)
        for (int j = 0; j < 4; j++) dst[j] = rq(acc[4 * p + j], m[j], s[j], o);
}

/* 4 pixels × 4 channels over K inputs: x rows XS apart, weight rows RB apart; results to dst
 * (pixel stride DS, channel stride 1). */
PQLR_INLINE void mm4x4(const int8_t *x, const int8_t *w, const int32_t *b, const int32_t *m, const uint8_t *s,
                       int8_t *dst, pqlr_out_t o, const int K, const int XS, const int RB, const int DS, const int WB) {
    int32_t a00 = b[0], a01 = b[1], a02 = b[2], a03 = b[3];
    int32_t a10 = b[0], a11 = b[1], a12 = b[2], a13 = b[3];
    int32_t a20 = b[0], a21 = b[1], a22 = b[2], a23 = b[3];
    int32_t a30 = b[0], a31 = b[1], a32 = b[2], a33 = b[3];
    /* weights of the 4 channels in registers, then one pixel at a time: 16 accumulators, 4 weights,
     * 1 activation and the pointers fit RV32's registers without spilling */
#define MAC4(a0, a1, a2, a3, xv) do { int32_t xx = (xv); a0 += xx * w0; a1 += xx * w1; a2 += xx * w2; a3 += xx * w3; } while (0)
#define MAC16(xp, off)                                   \
    MAC4(a00, a01, a02, a03, (xp)[(off)]);               \
    MAC4(a10, a11, a12, a13, (xp)[(off) + XS]);          \
    MAC4(a20, a21, a22, a23, (xp)[(off) + 2 * XS]);      \
    MAC4(a30, a31, a32, a33, (xp)[(off) + 3 * XS])
    if (WB == 8) {
        const int8_t *xe = x + K;
#pragma GCC unroll 2
        for (; x < xe; x++, w++) {
            int32_t w0 = w[0], w1 = w[RB], w2 = w[2 * RB], w3 = w[3 * RB];
            MAC16(x, 0);
        }
    } else {
        mm4x4_w4(x, w, b, m, s, dst, o, K, XS, RB, DS);
        return;
    }
#undef MAC4
#undef MAC16
    dst[0] = rq(a00, m[0], s[0], o); dst[1] = rq(a01, m[1], s[1], o);
    dst[2] = rq(a02, m[2], s[2], o); dst[3] = rq(a03, m[3], s[3], o);
    dst += DS;
    dst[0] = rq(a10, m[0], s[0], o); dst[1] = rq(a11, m[1], s[1], o);
    dst[2] = rq(a12, m[2], s[2], o); dst[3] = rq(a13, m[3], s[3], o);
    dst += DS;
    dst[0] = rq(a20, m[0], s[0], o); dst[1] = rq(a21, m[1], s[1], o);
    dst[2] = rq(a22, m[2], s[2], o); dst[3] = rq(a23, m[3], s[3], o);
    dst += DS;
    dst[0] = rq(a30, m[0], s[0], o); dst[1] = rq(a31, m[1], s[1], o);
    dst[2] = rq(a32, m[2], s[2], o); dst[3] = rq(a33, m[3], s[3], o);
}

/* NP pixels (1..4) × NC channels (1..4), for the tails: plain but correct. */
PQLR_INLINE void mm_small(const int8_t *x, const int8_t *w, const int32_t *b, const int32_t *m, const uint8_t *s,
                          int8_t *dst, pqlr_out_t o, int np, int nc, const int K, const int XS, const int RB,
                          const int DS, const int WB) {
    for (int p = 0; p < np; p++) {
        for (int j = 0; j < nc; j++) {
            int32_t acc = b[j];
            const int8_t *xp = x + p * XS, *wr = w + j * RB;
            for (int k = 0; k < K; k++) acc += xp[k] * wat(wr, k, WB);
            dst[p * DS + j] = rq(acc, m[j], s[j], o);
        }
    }
}

/* One pixel × 4 channels over K int8 weights (fully connected layers, one-pixel convolutions, pixel tails): each
 * weight is used once, so the floor without SIMD is a load, a multiply and an add per MAC; the activation is
 * loaded once for the 4 channels and the loop is unrolled so the offsets are immediates. */
PQLR_INLINE void mm1x4(const int8_t *x, const int8_t *w, const int32_t *b, const int32_t *m, const uint8_t *s,
                       int8_t *dst, pqlr_out_t o, const int K, const int RB) {
    int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
    const int8_t *xe = x + K;
#pragma GCC unroll 4
    for (; x < xe; x++, w++) {
        int32_t xx = x[0];
        a0 += xx * w[0]; a1 += xx * w[RB]; a2 += xx * w[2 * RB]; a3 += xx * w[3 * RB];
    }
    dst[0] = rq(a0, m[0], s[0], o); dst[1] = rq(a1, m[1], s[1], o);
    dst[2] = rq(a2, m[2], s[2], o); dst[3] = rq(a3, m[3], s[3], o);
}

/* A block of pixels × all n channels of the tile, as 4×4 blocks plus tails. */
PQLR_INLINE void mm_rows(const int8_t *x, int np, const int8_t *wts, const int32_t *bias, const int32_t *mult,
                         const uint8_t *shft, int n, int8_t *dst, pqlr_out_t o, const int K, const int XS,
                         const int RB, const int DS, const int WB) {
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        int p = 0;
        for (; p + 4 <= np; p += 4)
            mm4x4(x + p * XS, wts + j * RB, bias + j, mult + j, shft + j, dst + p * DS + j, o, K, XS, RB, DS, WB);
        if (WB == 8)
            for (; p < np; p++)
                mm1x4(x + p * XS, wts + j * RB, bias + j, mult + j, shft + j, dst + p * DS + j, o, K, RB);
        if (p < np)
            mm_small(x + p * XS, wts + j * RB, bias + j, mult + j, shft + j, dst + p * DS + j, o, np - p, 4, K, XS,
                     RB, DS, WB);
    }
    if (j < n)
        mm_small(x, wts + j * RB, bias + j, mult + j, shft + j, dst + j, o, np, n - j, K, XS, RB, DS, WB);
}

PQLR_INLINE pqlr_out_t out_of(const pqlr_layer_t *L) {
    pqlr_out_t o = {L->out_zp, L->act_min, L->act_max};
    return o;
}

/* Pointwise conv. In place (one tile, Cout ≤ Cin): 4 pixels at a time gathered in scratch[4·Cout]. */
PQLR_INLINE void pw_body(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                         int8_t *scratch, const int CIN, const int COUT, const int P, const int WB, const int INPL) {
    TILE_PARAMS(tile, n);
    const int RB = WB == 4 ? (CIN + 1) / 2 : CIN;
    pqlr_out_t o = out_of(L);
    if (!INPL) {
        mm_rows(in, P, wts, bias, mult, shft, n, out + c0, o, CIN, CIN, RB, COUT, WB);
        return;
    }
    for (int p = 0; p < P; p += 4) {
        int np = P - p < 4 ? P - p : 4;
        mm_rows(in + p * CIN, np, wts, bias, mult, shft, n, scratch, o, CIN, CIN, RB, COUT, WB);
        int8_t *dst = out + p * COUT;
        for (int i = 0; i < np * COUT; i++) dst[i] = scratch[i];
    }
}

/* Fully connected: one "pixel" of K inputs. */
PQLR_INLINE void fc_body(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                         const int K, const int WB) {
    TILE_PARAMS(tile, n);
    const int RB = WB == 4 ? (K + 1) / 2 : K;
    mm_rows(in, 1, wts, bias, mult, shft, n, out + c0, out_of(L), K, K, RB, 0, WB);
}

/* General conv2d: 2 output pixels' input patches gathered into scratch[2·K] (padding as zp), then a
 * 2-pixel × 4-channel matrix product over K. */
PQLR_INLINE void conv_body(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                           int8_t *scratch, const int IH, const int IW, const int CIN, const int OH, const int OW,
                           const int COUT, const int KH, const int KW, const int SH, const int SW, const int PT,
                           const int PL, const int WB) {
    TILE_PARAMS(tile, n);
    const int K = KH * KW * CIN;
    const int RB = WB == 4 ? (K + 1) / 2 : K;
    const int8_t zp = (int8_t)L->in_zp;
    pqlr_out_t o = out_of(L);
    const int P = OH * OW;
    for (int p = 0; p < P; p += 2) {
        int np = P - p < 2 ? P - p : 2;
        for (int q = 0; q < np; q++) {
            int oy = (p + q) / OW, ox = (p + q) % OW;
            int8_t *patch = scratch + q * K;
            for (int ky = 0; ky < KH; ky++) {
                int iy = oy * SH + ky - PT;
                for (int kx = 0; kx < KW; kx++) {
                    int ix = ox * SW + kx - PL;
                    int8_t *dst = patch + (ky * KW + kx) * CIN;
                    if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) {
                        for (int ci = 0; ci < CIN; ci++) dst[ci] = zp;
                    } else {
                        const int8_t *src = in + (iy * IW + ix) * CIN;
                        for (int ci = 0; ci < CIN; ci++) dst[ci] = src[ci];
                    }
                }
            }
        }
        int8_t *dst = out + p * COUT + c0;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            const int8_t *w = wts + j * RB;
            if (np == 2) {
                int32_t a00 = bias[j], a01 = bias[j + 1], a02 = bias[j + 2], a03 = bias[j + 3];
                int32_t a10 = a00, a11 = a01, a12 = a02, a13 = a03;
#pragma GCC unroll 4
                for (int k = 0; k < K; k++) {
                    int32_t x0 = scratch[k], x1 = scratch[K + k];
                    int32_t w0 = wat(w, k, WB), w1 = wat(w + RB, k, WB), w2 = wat(w + 2 * RB, k, WB),
                            w3 = wat(w + 3 * RB, k, WB);
                    a00 += x0 * w0; a01 += x0 * w1; a02 += x0 * w2; a03 += x0 * w3;
                    a10 += x1 * w0; a11 += x1 * w1; a12 += x1 * w2; a13 += x1 * w3;
                }
                dst[j] = rq(a00, mult[j], shft[j], o); dst[j + 1] = rq(a01, mult[j + 1], shft[j + 1], o);
                dst[j + 2] = rq(a02, mult[j + 2], shft[j + 2], o); dst[j + 3] = rq(a03, mult[j + 3], shft[j + 3], o);
                dst[COUT + j] = rq(a10, mult[j], shft[j], o); dst[COUT + j + 1] = rq(a11, mult[j + 1], shft[j + 1], o);
                dst[COUT + j + 2] = rq(a12, mult[j + 2], shft[j + 2], o);
                dst[COUT + j + 3] = rq(a13, mult[j + 3], shft[j + 3], o);
            } else if (WB == 8) {
                mm1x4(scratch, w, bias + j, mult + j, shft + j, dst + j, o, K, RB);
            } else {
                mm_small(scratch, w, bias + j, mult + j, shft + j, dst + j, o, 1, 4, K, K, RB, COUT, WB);
            }
        }
        if (j < n)
            mm_small(scratch, wts + j * RB, bias + j, mult + j, shft + j, dst + j, o, np, n - j, K, K, RB, COUT, WB);
    }
}

/* One output row of a 3×3 stride-1 'same' depthwise conv for one channel: r0/r1/r2 are the input rows
 * above, at and below the output row (HAS0/HAS2 = 0: that row is padding, the value zp), X their pixel
 * stride; the 3×3 window slides along x, so each output loads 3 new values. */
PQLR_INLINE void dw3_row(const int8_t *r0, const int8_t *r1, const int8_t *r2, int8_t *dst, const int W,
                         const int X, const int HAS0, const int HAS2, int32_t zp, int32_t w00, int32_t w01,
                         int32_t w02, int32_t w10, int32_t w11, int32_t w12, int32_t w20, int32_t w21, int32_t w22,
                         int32_t b, int32_t m, int32_t s, pqlr_out_t o) {
    /* padded rows contribute zp times their weights, a constant */
    int32_t base = b + (HAS0 ? 0 : zp * (w00 + w01 + w02)) + (HAS2 ? 0 : zp * (w20 + w21 + w22));
    int32_t a0 = zp, a1 = zp, a2 = zp;                          /* column x−1 (padding at x = 0) */
    int32_t b0 = HAS0 ? r0[0] : 0, b1 = r1[0], b2 = HAS2 ? r2[0] : 0;
#pragma GCC unroll 8
    for (int x = 0; x < W - 1; x++) {
        const int o1 = (x + 1) * X;
        int32_t c0 = HAS0 ? r0[o1] : 0, c1 = r1[o1], c2 = HAS2 ? r2[o1] : 0;
        int32_t acc = base + a1 * w10 + b1 * w11 + c1 * w12;
        if (HAS0) acc += a0 * w00 + b0 * w01 + c0 * w02;
        if (HAS2) acc += a2 * w20 + b2 * w21 + c2 * w22;
        dst[x * X] = rq(acc, m, s, o);
        a0 = b0; a1 = b1; a2 = b2;
        b0 = c0; b1 = c1; b2 = c2;
    }
    /* last column: x+1 is padding */
    int32_t acc = base + (a1 * w10 + b1 * w11 + zp * w12);
    if (HAS0) acc += a0 * w00 + b0 * w01 + zp * w02;
    if (HAS2) acc += a2 * w20 + b2 * w21 + zp * w22;
    dst[(W - 1) * X] = rq(acc, m, s, o);
}

/* Depthwise 3×3, stride 1, pad 1 (the DS-CNN case), one channel at a time with its nine weights in
 * registers. In place: input rows y−1 and y are kept in a ring of two rows (scratch, arena pixel stride C)
 * before row y is overwritten. */
PQLR_INLINE void dw3_body(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                          int8_t *scratch, const int H, const int W, const int C, const int WB, const int INPL) {
    TILE_PARAMS(tile, n);
    const int RB = WB == 4 ? 5 : 9;
    const int32_t zp = L->in_zp;
    pqlr_out_t o = out_of(L);
    const int RS = W * C;                                                /* row stride */
    for (int j = 0; j < n; j++) {
        const int c = c0 + j;
        const int8_t *wr = wts + j * RB;
        const int32_t w00 = wat(wr, 0, WB), w01 = wat(wr, 1, WB), w02 = wat(wr, 2, WB), w10 = wat(wr, 3, WB),
                      w11 = wat(wr, 4, WB), w12 = wat(wr, 5, WB), w20 = wat(wr, 6, WB), w21 = wat(wr, 7, WB),
                      w22 = wat(wr, 8, WB);
        const int32_t b = bias[j], m = mult[j], s = shft[j];
        for (int y = 0; y < H; y++) {
            const int8_t *r0, *r1, *r2 = in + (y + 1) * RS + c;
            if (INPL) {
                int8_t *slot = scratch + (y & 1) * RS + c;
                const int8_t *src = in + y * RS + c;
#pragma GCC unroll 8
                for (int x = 0; x < W; x++) slot[x * C] = src[x * C];
                r0 = scratch + ((y - 1) & 1) * RS + c;
                r1 = slot;
            } else {
                r0 = in + (y - 1) * RS + c;
                r1 = in + y * RS + c;
            }
            int8_t *dst = out + y * RS + c;
            if (y > 0 && y + 1 < H)
                dw3_row(r0, r1, r2, dst, W, C, 1, 1, zp, w00, w01, w02, w10, w11, w12, w20, w21, w22, b, m, s, o);
            else if (y > 0)
                dw3_row(r0, r1, r2, dst, W, C, 1, 0, zp, w00, w01, w02, w10, w11, w12, w20, w21, w22, b, m, s, o);
            else if (y + 1 < H)
                dw3_row(r0, r1, r2, dst, W, C, 0, 1, zp, w00, w01, w02, w10, w11, w12, w20, w21, w22, b, m, s, o);
            else
                dw3_row(r0, r1, r2, dst, W, C, 0, 0, zp, w00, w01, w02, w10, w11, w12, w20, w21, w22, b, m, s, o);
        }
    }
}

/* Depthwise along one axis with no padding and stride 1 (W = 1, kernel KH × 1): the streaming models' temporal
 * convolutions over their state rows (microWakeWord, MixConv fused into one kernel). Per channel, per output row:
 * acc = b + Σ_k x[(y + k)·C + c]·w[k], the weights read in order and the activations C apart. Not in place. */
PQLR_INLINE void dwcol_body(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                            const int OH, const int C, const int KH, const int WB) {
    TILE_PARAMS(tile, n);
    const int RB = WB == 4 ? (KH + 1) / 2 : KH;
    pqlr_out_t o = out_of(L);
    for (int j = 0; j < n; j++) {
        const int c = c0 + j;
        const int8_t *wr = wts + j * RB;
        for (int y = 0; y < OH; y++) {
            const int8_t *x = in + y * C + c;
            int32_t acc = bias[j];
            if (WB == 8) {
#pragma GCC unroll 8
                for (int k = 0; k < KH; k++) acc += x[k * C] * wr[k];
            } else {
                for (int k = 0; k < KH; k++) acc += x[k * C] * wat(wr, k, 4);
            }
            out[y * C + c] = rq(acc, mult[j], shft[j], o);
        }
    }
}

#endif
