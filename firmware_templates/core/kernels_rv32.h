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
 * - pointwise (int8 and int4 weights) and int8 conv2d layers of ≥ 4 pixels (77 % and 12 % of the MLPerf DS-CNN's
 *   MACs): two pixels per 32-bit word in 16-bit lanes (SWAR), so one multiply yields two products; 4 pixels × 4
 *   channels per block, and on RV32 every block of a tile in one assembly block (swar_tile, swar_tile_w4)
 *   because its 28 live values fill the register file (swar4x4 says why every step is exact);
 * - the depthwise 3×3 goes column by column with the nine weights in registers: each column of three inputs
 *   finishes one output, adds to the next and starts the one after (3 loads per output, 3 accumulators live);
 *   in place its output row is its input row, so the interior rows do not spill;
 * - other shapes: register blocking (4 pixels × 4 channels, 1 pixel × 4 channels for fully connected layers);
 * - requantisation prepared once per channel: rq_prep (one high multiply, an add and a shift per output, the
 *   zero point folded into the rounding constant) and, for TFLite's double rounding, rq2_prep (8 instructions);
 *   channels outside their ranges take rq;
 * - int4 weights are loaded a byte (two weights) at a time and unpacked in registers; in the packed block a lane
 *   holds 32 of their products, so its words only accumulate within a chunk of 32 inputs.
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

/* A channel's requantisation prepared once for the outputs that share it. For single rounding and shifts
 * 33..54 (the usual case) the output is ((acc·M) >> 32 + r) >> sh with r = 2^(sh−1) + zp·2^sh: the zero point
 * folded into the rounding constant, exact because floor((h + 2^(sh−1))/2^sh) + zp = floor((h + r)/2^sh), and
 * |h + r| < 2^30 + 2^(sh+8) ≤ 2^31 cannot overflow for sh ≤ 22. Otherwise sh < 0: the caller uses rq. The clamp
 * tests the range once: (y − lo) as unsigned ≤ hi − lo. */
typedef struct {
    int32_t m, r, sh, lo, span;
} pqlr_rqp_t;

/* Whether a channel with shift s takes the prepared rule (rq_prep's fast case; the whole-block assembly too). */
PQLR_INLINE int rq_fast(int32_t s) {
#if PQLR_DOUBLE_ROUNDING
    if (pqlr_round_twice) return 0;
#endif
    return s > 32 && s <= 54;
}

PQLR_INLINE pqlr_rqp_t rq_prep(int32_t m, int32_t s, pqlr_out_t o) {
    pqlr_rqp_t p = {m, s, -1, o.lo, o.hi - o.lo};
    if (__builtin_expect(rq_fast(s), 1)) {
        p.sh = s - 32;
        p.r = (1 << (p.sh - 1)) + (int32_t)((uint32_t)o.zp << p.sh);
    }
    return p;
}

/* The prepared rule (p.sh ≥ 0: the caller checked); returns the clamped value as int32 (the caller's byte store
 * truncates it: no sign extension). */
PQLR_INLINE int32_t rqp(int32_t acc, pqlr_rqp_t p) {
    int32_t y = ((int32_t)(((int64_t)acc * p.m) >> 32) + p.r) >> p.sh;
    if (__builtin_expect((uint32_t)(y - p.lo) > (uint32_t)p.span, 0)) y = y < p.lo ? p.lo : p.lo + p.span;
    return y;
}

/* TFLite's double rounding prepared per channel (models imported with rounding "double"). For shifts s of 32..53
 * (a right shift e = s − 31 of 1..22), a multiplier m ≥ 0 and accumulators that the channel's bias and K products
 * keep within ±2^30 (|b| + K·128·127 < 2^30): the rounded doubling high product (x·m + 2^30) >> 31 is
 * floor((x·2m + 2^31) / 2^32) = mulhsu(x, 2m) + the low word's top bit, and TFLite's rounding divide by 2^e (half
 * away from zero) is (hi + 2^(e−1) − [hi < 0]) >> e, the zero point folded into the rounding constant as in
 * rq_prep. |hi| ≤ 2^30, so nothing overflows. p.m holds 2m; otherwise p.sh < 0 and the caller uses rq. */
PQLR_INLINE int rq2_fast(int32_t m, int32_t s, int32_t b, const int K) {
    const int64_t room = ((int64_t)1 << 30) - (int64_t)K * 16256;
    return s >= 32 && s <= 53 && m >= 0 && (int64_t)b < room && -(int64_t)b < room;
}

PQLR_INLINE pqlr_rqp_t rq2_prep(int32_t m, int32_t s, int32_t b, const int K, pqlr_out_t o) {
    pqlr_rqp_t p = {(int32_t)((uint32_t)m << 1), 0, -1, o.lo, o.hi - o.lo};
    if (__builtin_expect(rq2_fast(m, s, b, K), 1)) {
        p.sh = s - 31;
        p.r = (1 << (p.sh - 1)) + (int32_t)((uint32_t)o.zp << p.sh);
    }
    return p;
}

PQLR_INLINE int32_t rqp2(int32_t acc, pqlr_rqp_t p) {
    const uint32_t m2 = (uint32_t)p.m;
    const int32_t hi = (int32_t)(((int64_t)acc * (int64_t)m2) >> 32) + (int32_t)(((uint32_t)acc * m2) >> 31);
    int32_t y = (hi + p.r + (hi >> 31)) >> p.sh;
    if (__builtin_expect((uint32_t)(y - p.lo) > (uint32_t)p.span, 0)) y = y < p.lo ? p.lo : p.lo + p.span;
    return y;
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

/* int8 weights, 4 pixels × 4 channels in 16-bit lanes (SWAR). Without SIMD a plain MAC is a multiply and an add;
 * here one multiply yields two products. The 4 pixels' inputs are packed first, two pixels per word:
 * S[2k + q] = x[2q][k] − x[2q+1][k]·2^16 (swar_pack4), so S·w = x_lo·w + 2^16·(−x_hi·w). Two such products
 * are summed (k, k+1): with |x·w| ≤ 128·127 (model.bin holds weights in [−127, 127]; even −128 would keep
 * both lanes in range, the high lane being negated) the low lane l = Σ x_lo·w and the high lane h = −Σ x_hi·w
 * both lie in [−32768, 32767]. With OFF = 2^15 − 1, l + OFF ∈ [0, 2^16), so ((v + OFF) >> 16) is h exactly
 * (arithmetic shift of the 32-bit word, which equals l + OFF + 2^16·h). Per pair of inputs and lane pair:
 * 2 multiplies and 5 adds/shifts for 4 MACs; V keeps Σ v mod 2^32, H keeps Σ h, and at the end the low lane's
 * sum is V − 2^16·H (mod 2^32, exact since it fits int32), the high lane's is −H. Every step is exact: the result
 * equals the plain sum (tests/test_kernels.py drives it at the extremes on the host and on QEMU). */
#define SWAR_OFF 32767u
/* Layers with fewer output pixels (fully connected, streaming steps) keep the one-pixel path; the planner sizes
 * the scratch with the same rule (hostside/plan/planner.py, swar_scratch). */
#define PQLR_SWAR_MIN_PIXELS 4

/* The portable loop of swar4x4 from S to Se (and the odd K at the end): acc as in swar4x4. */
PQLR_INLINE void swar4x4_c(const uint32_t *S, const uint32_t *Se, const int8_t *w, uint32_t *acc, const int K,
                           const int RB) {
    uint32_t V00 = acc[0], V01 = acc[1], V02 = acc[2], V03 = acc[3], V10 = acc[4], V11 = acc[5], V12 = acc[6],
             V13 = acc[7], H00 = acc[8], H01 = acc[9], H02 = acc[10], H03 = acc[11], H10 = acc[12], H11 = acc[13],
             H12 = acc[14], H13 = acc[15];
    const uint32_t off = SWAR_OFF;
#define LANES(V, H, v) do { uint32_t v_ = (v); V += v_; H += (uint32_t)((int32_t)(v_ + off) >> 16); } while (0)
#define PAIR(j, o1)                                                                              \
    do {                                                                                         \
        uint32_t wa = (uint32_t)(int32_t)w[(j) * RB + (o1)], wb = (uint32_t)(int32_t)w[(j) * RB + (o1) + 1]; \
        LANES(V0##j, H0##j, X0a * wa + X0b * wb);                                                \
        LANES(V1##j, H1##j, X1a * wa + X1b * wb);                                                \
    } while (0)
    for (; S < Se; S += 8, w += 4) {                 /* two input pairs (4 k) per iteration */
        uint32_t X0a = S[0], X1a = S[1], X0b = S[2], X1b = S[3];
        PAIR(0, 0); PAIR(1, 0); PAIR(2, 0); PAIR(3, 0);
        X0a = S[4]; X1a = S[5]; X0b = S[6]; X1b = S[7];
        PAIR(0, 2); PAIR(1, 2); PAIR(2, 2); PAIR(3, 2);
    }
    if (K & 2) {                                     /* one more pair */
        uint32_t X0a = S[0], X1a = S[1], X0b = S[2], X1b = S[3];
        PAIR(0, 0); PAIR(1, 0); PAIR(2, 0); PAIR(3, 0);
        S += 4;
        w += 2;
    }
#undef PAIR
    if (K & 1) {                                     /* odd K: one product per lane, l ∈ [−16256, 16384] */
        uint32_t X0a = S[0], X1a = S[1];
#define ONE(j)                                                                                   \
        do {                                                                                     \
            uint32_t wa = (uint32_t)(int32_t)w[(j) * RB];                                        \
            LANES(V0##j, H0##j, X0a * wa); LANES(V1##j, H1##j, X1a * wa);                        \
        } while (0)
        ONE(0); ONE(1); ONE(2); ONE(3);
#undef ONE
    }
#undef LANES
    acc[0] = V00; acc[1] = V01; acc[2] = V02; acc[3] = V03; acc[4] = V10; acc[5] = V11; acc[6] = V12; acc[7] = V13;
    acc[8] = H00; acc[9] = H01; acc[10] = H02; acc[11] = H03; acc[12] = H10; acc[13] = H11; acc[14] = H12;
    acc[15] = H13;
}

#if defined(__riscv) && __riscv_xlen == 32 && !defined(PQLR_NO_ASM)
#define PQLR_SWAR_ASM 1
/* The SWAR loop in RV32IM assembly. Its 16 accumulators (V: s0–s7, H: s8–s11, t3–t6), 4 packed inputs (a4–a7),
 * 2 weights (t0, t1), 2 temporaries (t2, ra), the constant SWAR_OFF (in the register of the asm's pointer
 * operand %[p], whose value waits on the stack meanwhile) and 3 pointers (%[S], %[w], %[se]) take all 28
 * registers GCC may allocate, which its allocator does not manage without spilling in the loop; a0–a3 are left
 * to the compiler for the four operands. One step is 2 k of 4 packed words; the loop runs 2 steps (4 k). */
#define PQLR_SWAR_GROUP(J, KO, V0, H0, V1, H1)                                                   \
    "lb t0, " #J "*%[rb]+" #KO "(%[w])\n\t"                                                      \
    "lb t1, " #J "*%[rb]+" #KO "+1(%[w])\n\t"                                                    \
    "mul t2, a4, t0\n\t" "mul ra, a6, t1\n\t" "add t2, t2, ra\n\t"                               \
    "add " V0 ", " V0 ", t2\n\t" "add t2, t2, %[p]\n\t" "srai t2, t2, 16\n\t" "add " H0 ", " H0 ", t2\n\t" \
    "mul t0, a5, t0\n\t" "mul t1, a7, t1\n\t" "add t0, t0, t1\n\t"                               \
    "add " V1 ", " V1 ", t0\n\t" "add t0, t0, %[p]\n\t" "srai t0, t0, 16\n\t" "add " H1 ", " H1 ", t0\n\t"
#define PQLR_SWAR_STEP(SO, KO)                                                                   \
    "lw a4, " #SO "(%[S])\n\t" "lw a5, " #SO "+4(%[S])\n\t"                                       \
    "lw a6, " #SO "+8(%[S])\n\t" "lw a7, " #SO "+12(%[S])\n\t"                                    \
    PQLR_SWAR_GROUP(0, KO, "s0", "s8", "s4", "t3") PQLR_SWAR_GROUP(1, KO, "s1", "s9", "s5", "t4") \
    PQLR_SWAR_GROUP(2, KO, "s2", "s10", "s6", "t5") PQLR_SWAR_GROUP(3, KO, "s3", "s11", "s7", "t6")
#define PQLR_SWAR_LOOP                                                                           \
    "addi sp, sp, -16\n\t" "sw %[p], 0(sp)\n\t"                                                  \
    "lui %[p], 8\n\t" "addi %[p], %[p], -1\n\t"                   /* SWAR_OFF */                  \
    "1:\n\t" PQLR_SWAR_STEP(0, 0) PQLR_SWAR_STEP(16, 2)                                          \
    "addi %[S], %[S], 32\n\t" "addi %[w], %[w], 4\n\t" "bne %[S], %[se], 1b\n\t"                 \
    "lw %[p], 0(sp)\n\t" "addi sp, sp, 16\n\t"
#define PQLR_SWAR_CLOBBERS                                                                       \
    "memory", "ra", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "a4", "a5", "a6", "a7", "s0", "s1", "s2", "s3", "s4", \
        "s5", "s6", "s7", "s8", "s9", "s10", "s11"
/* Requantise a4 with t0 = M, t1 = r, t2 = sh (rq_prep's), clamp to [%[w], %[se]], store at OFF from %[S]. */
#define PQLR_SWAR_RQ(OFF)                                                                        \
    "mulh a4, a4, t0\n\t" "add a4, a4, t1\n\t" "sra a4, a4, t2\n\t"                              \
    "bge a4, %[w], 7f\n\t" "mv a4, %[w]\n\t" "7:\n\t"                                            \
    "ble a4, %[se], 8f\n\t" "mv a4, %[se]\n\t" "8:\n\t"                                          \
    "sb a4, " OFF "(%[S])\n\t"
/* Channel J's four outputs: pixel 0 = V0 − 2^16·H0, pixel 1 = b − H0, pixels 2, 3 likewise. Its requantisation
 * is rq_prep's fast case (the caller checked every channel's shift): M = m[J] (a7), sh = s[J] − 32 (s: %[p]),
 * r = 2^(sh−1) + zp·2^sh (zp: a5), b = b[J] (a6). */
#define PQLR_SWAR_OUT(J, V0, H0, V1, H1)                                                         \
    "lw t0, 4*" #J "(a7)\n\t" "lbu t2, " #J "(%[p])\n\t" "lw ra, 4*" #J "(a6)\n\t"               \
    "addi t2, t2, -32\n\t" "addi t1, t2, -1\n\t" "li a4, 1\n\t" "sll t1, a4, t1\n\t"             \
    "sll a4, a5, t2\n\t" "add t1, t1, a4\n\t"                                                    \
    "slli a4, " H0 ", 16\n\t" "sub a4, " V0 ", a4\n\t" PQLR_SWAR_RQ(#J)                          \
    "sub a4, ra, " H0 "\n\t" PQLR_SWAR_RQ("%[ds]+" #J)                                          \
    "slli a4, " H1 ", 16\n\t" "sub a4, " V1 ", a4\n\t" PQLR_SWAR_RQ("2*%[ds]+" #J)               \
    "sub a4, ra, " H1 "\n\t" PQLR_SWAR_RQ("3*%[ds]+" #J)
#endif

#ifdef PQLR_SWAR_ASM
/* All channel groups of a tile in one assembly block (swar_tile). Per group: the first step (k = 0, 1) starts the
 * accumulators (V = the two products' sum, H its high lane: no zeroing, the bias added at the end), the rest runs
 * in a loop unrolled to 16 k (8 steps), entered at the step that leaves a whole number of turns (label 3); the
 * group's pointers advance in the parameter block prm between groups (no C loop around a call per group), and
 * the rounding constant is built from a5 = 2·zp + 1 as r = (2·zp + 1)·2^(sh−1) = 2^(sh−1) + zp·2^sh. */
#define PQLR_SWAR_GROUP1(J, V0, H0, V1, H1)                                                      \
    "lb t0, " #J "*%[rb](%[w])\n\t" "lb t1, " #J "*%[rb]+1(%[w])\n\t"                            \
    "mul t2, a4, t0\n\t" "mul ra, a6, t1\n\t" "add " V0 ", t2, ra\n\t"                           \
    "add t2, " V0 ", %[p]\n\t" "srai " H0 ", t2, 16\n\t"                                         \
    "mul t0, a5, t0\n\t" "mul t1, a7, t1\n\t" "add " V1 ", t0, t1\n\t"                           \
    "add t0, " V1 ", %[p]\n\t" "srai " H1 ", t0, 16\n\t"
#define PQLR_SWAR_E(E, N) ".if %[e] == " #N "\n\t3:\n\t.endif\n\t"
#define PQLR_SWAR_LOOP16                                                                         \
    "1:\n\t" PQLR_SWAR_STEP(0, 0) PQLR_SWAR_E(e, 1) PQLR_SWAR_STEP(16, 2) PQLR_SWAR_E(e, 2)      \
    PQLR_SWAR_STEP(32, 4) PQLR_SWAR_E(e, 3) PQLR_SWAR_STEP(48, 6) PQLR_SWAR_E(e, 4)              \
    PQLR_SWAR_STEP(64, 8) PQLR_SWAR_E(e, 5) PQLR_SWAR_STEP(80, 10) PQLR_SWAR_E(e, 6)             \
    PQLR_SWAR_STEP(96, 12) PQLR_SWAR_E(e, 7) PQLR_SWAR_STEP(112, 14)                             \
    "addi %[S], %[S], 128\n\t" "addi %[w], %[w], 16\n\t" "bne %[S], %[se], 1b\n\t"
/* Channel J's four outputs: V0 − 2^16·H0 + b (pixel 0), b − H0 (pixel 1), likewise pixels 2, 3 (V1, H1). */
#define PQLR_SWAR_OUT8(J, V0, H0, V1, H1)                                                        \
    "lw t0, 4*" #J "(a7)\n\t" "lbu t2, " #J "(%[p])\n\t" "lw ra, 4*" #J "(a6)\n\t"               \
    "addi t2, t2, -33\n\t" "sll t1, a5, t2\n\t" "addi t2, t2, 1\n\t"                             \
    "slli a4, " H0 ", 16\n\t" "sub a4, " V0 ", a4\n\t" "add a4, a4, ra\n\t" PQLR_SWAR_RQ(#J)     \
    "sub a4, ra, " H0 "\n\t" PQLR_SWAR_RQ("%[ds]+" #J)                                          \
    "slli a4, " H1 ", 16\n\t" "sub a4, " V1 ", a4\n\t" "add a4, a4, ra\n\t" PQLR_SWAR_RQ("2*%[ds]+" #J) \
    "sub a4, ra, " H1 "\n\t" PQLR_SWAR_RQ("3*%[ds]+" #J)

/* The same with TFLite's double rounding (rq2_prep's fast case): t0 = 2m, e = s − 31, the value's own
 * accumulator register (free once read) as the temporary T. */
#define PQLR_SWAR_RQ2(OFF, T)                                                                    \
    "mul " T ", a4, t0\n\t" "mulhsu a4, a4, t0\n\t" "srli " T ", " T ", 31\n\t" "add a4, a4, " T "\n\t" \
    "srai " T ", a4, 31\n\t" "add a4, a4, " T "\n\t" "add a4, a4, t1\n\t" "sra a4, a4, t2\n\t"  \
    "bge a4, %[w], 7f\n\t" "mv a4, %[w]\n\t" "7:\n\t"                                            \
    "ble a4, %[se], 8f\n\t" "mv a4, %[se]\n\t" "8:\n\t"                                          \
    "sb a4, " OFF "(%[S])\n\t"
#define PQLR_SWAR_OUT8D(J, V0, H0, V1, H1)                                                       \
    "lw t0, 4*" #J "(a7)\n\t" "lbu t2, " #J "(%[p])\n\t" "lw ra, 4*" #J "(a6)\n\t"               \
    "slli t0, t0, 1\n\t" "addi t2, t2, -32\n\t" "sll t1, a5, t2\n\t" "addi t2, t2, 1\n\t"       \
    "slli a4, " H0 ", 16\n\t" "sub a4, " V0 ", a4\n\t" "add a4, a4, ra\n\t" PQLR_SWAR_RQ2(#J, V0) \
    "sub a4, ra, " H0 "\n\t" PQLR_SWAR_RQ2("%[ds]+" #J, H0)                                     \
    "slli a4, " H1 ", 16\n\t" "sub a4, " V1 ", a4\n\t" "add a4, a4, ra\n\t" PQLR_SWAR_RQ2("2*%[ds]+" #J, V1) \
    "sub a4, ra, " H1 "\n\t" PQLR_SWAR_RQ2("3*%[ds]+" #J, H1)

/* Whether swar_tile's assembly takes these constant shapes: K a multiple of 4, the weight and output offsets
 * within the 12-bit immediates. */
#define PQLR_SWAR_TILE_OK(K, RB, DS)                                                             \
    (__builtin_constant_p(K) && __builtin_constant_p(RB) && __builtin_constant_p(DS) && (K) >= 4 &&      \
     ((K) & 3) == 0 && 3 * (RB) + 15 <= 2047 && 4 * (RB) <= 2047 && 3 * (DS) + 3 <= 2047)

/* groups × 4 channels for the 4 packed pixels S: as swar4x4 per group, every channel on rq_prep's fast case. */
/* The end of a group (V and H of the 4 channels × 2 lane pairs in s0–s11, t3–t6; the parameter block's address
 * at 0(sp)): the 16 outputs by OUT, then the next group's pointers in the parameter block, and round again. */
#define PQLR_SWAR_TAIL(OUT)                                                                      \
    "sw %[w], 16(%[p])\n\t"                        /* where the rows end: the next group's start − 3·RB */ \
    "lw %[S], 0(%[p])\n\t" "lw %[w], 28(%[p])\n\t" "lw %[se], 32(%[p])\n\t" "lw a5, 24(%[p])\n\t"     \
    "lw a6, 4(%[p])\n\t" "lw a7, 8(%[p])\n\t" "lw %[p], 12(%[p])\n\t"                          \
    PQLR_SWAR_OUTS(OUT)                                                                          \
    "lw a4, 0(sp)\n\t"                                                                           \
    "addi %[S], %[S], 4\n\t" "sw %[S], 0(a4)\n\t" "addi a6, a6, 16\n\t" "sw a6, 4(a4)\n\t"       \
    "addi a7, a7, 16\n\t" "sw a7, 8(a4)\n\t" "addi %[p], %[p], 4\n\t" "sw %[p], 12(a4)\n\t"      \
    "lw t0, 20(a4)\n\t" "mv %[p], a4\n\t" "bne %[S], t0, 2b\n\t"                                \
    "addi sp, sp, 16\n\t"
#define PQLR_SWAR_TILE_ASM(OUT) \
    __asm__ volatile( \
        "addi sp, sp, -16\n\t" "sw %[p], 0(sp)\n\t" \
        "2:\n\t" \
        "lw %[S], 36(%[p])\n\t" "lw %[w], 16(%[p])\n\t" "lw %[se], 40(%[p])\n\t" "addi %[w], %[w], 3*%[rb]\n\t" \
        "lui %[p], 8\n\t" "addi %[p], %[p], -1\n\t"         /* SWAR_OFF */ \
        "lw a4, 0(%[S])\n\t" "lw a5, 4(%[S])\n\t" "lw a6, 8(%[S])\n\t" "lw a7, 12(%[S])\n\t" \
        PQLR_SWAR_GROUP1(0, "s0", "s8", "s4", "t3") PQLR_SWAR_GROUP1(1, "s1", "s9", "s5", "t4") \
        PQLR_SWAR_GROUP1(2, "s2", "s10", "s6", "t5") PQLR_SWAR_GROUP1(3, "s3", "s11", "s7", "t6") \
        "addi %[S], %[S], 16-16*%[e]\n\t" "addi %[w], %[w], 2-2*%[e]\n\t" \
        ".if %[e]\n\t" "j 3f\n\t" ".endif\n\t" \
        PQLR_SWAR_LOOP16 \
        "lw %[p], 0(sp)\n\t" \
        PQLR_SWAR_TAIL(OUT) \
        : [S] "+r"(Sx), [w] "+r"(wx), [se] "+r"(Se), [p] "+r"(pp) \
        : [rb] "n"(RB), [ds] "n"(DS), [e] "n"((int)E) \
        : PQLR_SWAR_CLOBBERS);
#define PQLR_SWAR_OUTS(OUT)                                                                      \
    OUT(0, "s0", "s8", "s4", "t3") OUT(1, "s1", "s9", "s5", "t4") OUT(2, "s2", "s10", "s6", "t5")       \
    OUT(3, "s3", "s11", "s7", "t6")
PQLR_INLINE void swar_tile(const uint32_t *S, const int8_t *w, const int32_t *b, const int32_t *m, const uint8_t *s,
                           int8_t *dst, pqlr_out_t o, const int K, const int RB, const int DS, int groups,
                           const int DR) {
    /* 0 dst, 4 b, 8 m, 12 s, 16 the rows' end (a group starts at it + 3·RB: here w − 3·RB), 20 dst's end (the last
     * group's + 4), 24 2·zp + 1, 28 lo, 32 hi, 36 S, 40 S's end */
    int32_t prm[11] = {(int32_t)(intptr_t)dst, (int32_t)(intptr_t)b, (int32_t)(intptr_t)m, (int32_t)(intptr_t)s,
                       (int32_t)(intptr_t)w - 3 * RB, (int32_t)(intptr_t)(dst + 4 * groups), 2 * o.zp + 1, o.lo, o.hi,
                       (int32_t)(intptr_t)S, (int32_t)(intptr_t)(S + 2 * K)};
    const uint32_t *Sx = S, *Se = S + 2 * K;
    const int8_t *wx = w;
    int32_t *pp = prm;
    /* after the first step, (K − 2)/2 steps are left: enter the 8-step loop at step E so they make whole turns */
    const int E = (8 - ((K - 2) / 2) % 8) % 8;
    if (DR)
        PQLR_SWAR_TILE_ASM(PQLR_SWAR_OUT8D)
    else
        PQLR_SWAR_TILE_ASM(PQLR_SWAR_OUT8)
}
#endif

/* 4 packed pixels (S, from swar_pack4) × 4 channels (weight rows RB apart) over K inputs; outputs to dst (pixel
 * stride DS, channel stride 1). acc: V of lane pair 0 (pixels 0, 1) for channels 0..3, V of
 * lane pair 1 (pixels 2, 3), then H likewise; V starts at the bias, so V − 2^16·H is pixel 0's (2's) accumulator
 * and b − H pixel 1's (3's). */
PQLR_INLINE void swar4x4(const uint32_t *S, const int8_t *w, const int32_t *b, const int32_t *m, const uint8_t *s,
                         int8_t *dst, pqlr_out_t o, const int K, const int RB, const int DS, int fast) {
#ifdef PQLR_SWAR_ASM
    const int asm_ok = __builtin_constant_p(RB) && 3 * RB + 3 <= 2047 && K >= 4;
    /* All of the block in assembly: K a multiple of 4, constant strides that fit the 12-bit offsets, and every
     * channel of the tile on rq_prep's fast case (fast, from swar_fast). */
    if (asm_ok && __builtin_constant_p(DS) && 3 * DS + 3 <= 2047 && (K & 3) == 0 && fast == 1) {
        const int32_t prm[7] = {(int32_t)(intptr_t)dst, o.lo, o.hi, o.zp, (int32_t)(intptr_t)b,
                                (int32_t)(intptr_t)m, (int32_t)(intptr_t)s};
        const uint32_t *Se = S + 2 * K;
        const int32_t *pp = prm;
        __asm__ volatile(
            /* V of both lane pairs starts at the channel's bias, H at 0 */
            "lw a4, 16(%[p])\n\t"
            "lw s0, 0(a4)\n\t" "mv s4, s0\n\t" "lw s1, 4(a4)\n\t" "mv s5, s1\n\t"
            "lw s2, 8(a4)\n\t" "mv s6, s2\n\t" "lw s3, 12(a4)\n\t" "mv s7, s3\n\t"
            "li s8, 0\n\t" "li s9, 0\n\t" "li s10, 0\n\t" "li s11, 0\n\t"
            "li t3, 0\n\t" "li t4, 0\n\t" "li t5, 0\n\t" "li t6, 0\n\t"
            PQLR_SWAR_LOOP
            "lw %[S], 0(%[p])\n\t" "lw %[w], 4(%[p])\n\t" "lw %[se], 8(%[p])\n\t" "lw a5, 12(%[p])\n\t"
            "lw a6, 16(%[p])\n\t" "lw a7, 20(%[p])\n\t" "lw %[p], 24(%[p])\n\t"
            PQLR_SWAR_OUT(0, "s0", "s8", "s4", "t3") PQLR_SWAR_OUT(1, "s1", "s9", "s5", "t4")
            PQLR_SWAR_OUT(2, "s2", "s10", "s6", "t5") PQLR_SWAR_OUT(3, "s3", "s11", "s7", "t6")
            : [S] "+r"(S), [w] "+r"(w), [se] "+r"(Se), [p] "+r"(pp)
            : [rb] "n"(RB), [ds] "n"(DS)
            : PQLR_SWAR_CLOBBERS);
        return;
    }
#else
    (void)fast;
#endif
    uint32_t acc[16];
    for (int j = 0; j < 4; j++) {
        acc[j] = acc[4 + j] = (uint32_t)b[j];
        acc[8 + j] = acc[12 + j] = 0;
    }
    const uint32_t *Se = S + 2 * (K & ~3);
#ifdef PQLR_SWAR_ASM
    if (asm_ok && S < Se) {                  /* the loop in assembly, the rest below: accumulators through acc[] */
        uint32_t *ap = acc;
        __asm__ volatile(
            "lw s0, 0(%[p])\n\t" "lw s1, 4(%[p])\n\t" "lw s2, 8(%[p])\n\t" "lw s3, 12(%[p])\n\t"
            "lw s4, 16(%[p])\n\t" "lw s5, 20(%[p])\n\t" "lw s6, 24(%[p])\n\t" "lw s7, 28(%[p])\n\t"
            "lw s8, 32(%[p])\n\t" "lw s9, 36(%[p])\n\t" "lw s10, 40(%[p])\n\t" "lw s11, 44(%[p])\n\t"
            "lw t3, 48(%[p])\n\t" "lw t4, 52(%[p])\n\t" "lw t5, 56(%[p])\n\t" "lw t6, 60(%[p])\n\t"
            PQLR_SWAR_LOOP
            "sw s0, 0(%[p])\n\t" "sw s1, 4(%[p])\n\t" "sw s2, 8(%[p])\n\t" "sw s3, 12(%[p])\n\t"
            "sw s4, 16(%[p])\n\t" "sw s5, 20(%[p])\n\t" "sw s6, 24(%[p])\n\t" "sw s7, 28(%[p])\n\t"
            "sw s8, 32(%[p])\n\t" "sw s9, 36(%[p])\n\t" "sw s10, 40(%[p])\n\t" "sw s11, 44(%[p])\n\t"
            "sw t3, 48(%[p])\n\t" "sw t4, 52(%[p])\n\t" "sw t5, 56(%[p])\n\t" "sw t6, 60(%[p])\n\t"
            : [S] "+r"(S), [w] "+r"(w), [p] "+r"(ap)
            : [se] "r"(Se), [rb] "n"(RB)
            : PQLR_SWAR_CLOBBERS);
        Se = S;                              /* (it is): the portable loop below is left out of this build */
    }
#endif
    if (S < Se || (K & 3)) swar4x4_c(S, Se, w, acc, K, RB);
    /* channel by channel, so only one channel's requantisation is live at a time; any rule (rq) */
#define OUT_CH(j)                                                                                \
    do {                                                                                         \
        const int32_t m_ = m[j], s_ = s[j], b_ = b[j];                                           \
        int8_t *d_ = dst + (j);                                                                  \
        d_[0] = rq((int32_t)(acc[j] - (acc[8 + (j)] << 16)), m_, s_, o);                         \
        d_[DS] = rq(b_ - (int32_t)acc[8 + (j)], m_, s_, o);                                      \
        d_[2 * DS] = rq((int32_t)(acc[4 + (j)] - (acc[12 + (j)] << 16)), m_, s_, o);             \
        d_[3 * DS] = rq(b_ - (int32_t)acc[12 + (j)], m_, s_, o);                                 \
    } while (0)
    OUT_CH(0); OUT_CH(1); OUT_CH(2); OUT_CH(3);
#undef OUT_CH
}

#ifdef PQLR_SWAR_ASM
/* int4 weights, the tile in one assembly block (swar_tile_w4): the same packed pixels and lanes, but a lane holds
 * 32 products of |x·w| ≤ 128·7 (28,672 < 2^15), so within a chunk of 32 inputs a lane pair's word only
 * accumulates: a multiply and an add per 2 MACs, a weight byte (inputs k, k + 1) unpacked once for both pixel
 * pairs. The chunk's word then becomes the int8 block's V (Σ words, mod 2^32) and H (Σ (word + 2^15 − 1) >> 16),
 * so the epilogue is the int8 block's. K ≤ 64: a first chunk of 32 inputs is folded into the parameter block
 * (V at 44, H at 76), the second into registers. */
#define PQLR_W4_GROUP(J, KO, V0, V1)                                                             \
    "lb t0, " #J "*%[rb]+" #KO "(%[w])\n\t" "slli t1, t0, 28\n\t" "srai t1, t1, 28\n\t"          \
    "mul t2, a4, t1\n\t" "add " V0 ", " V0 ", t2\n\t" "mul t2, a5, t1\n\t" "add " V1 ", " V1 ", t2\n\t" \
    "srai t0, t0, 4\n\t"                                                                         \
    "mul t2, a6, t0\n\t" "add " V0 ", " V0 ", t2\n\t" "mul t2, a7, t0\n\t" "add " V1 ", " V1 ", t2\n\t"
#define PQLR_W4_STEP(SO, KO)                                                                     \
    "lw a4, " #SO "(%[S])\n\t" "lw a5, " #SO "+4(%[S])\n\t"                                       \
    "lw a6, " #SO "+8(%[S])\n\t" "lw a7, " #SO "+12(%[S])\n\t"                                    \
    PQLR_W4_GROUP(0, KO, "s0", "s4") PQLR_W4_GROUP(1, KO, "s1", "s5")                             \
    PQLR_W4_GROUP(2, KO, "s2", "s6") PQLR_W4_GROUP(3, KO, "s3", "s7")
#define PQLR_W4_LOOP                                                                             \
    "1:\n\t" PQLR_W4_STEP(0, 0) PQLR_W4_STEP(16, 1)                                              \
    "addi %[S], %[S], 32\n\t" "addi %[w], %[w], 2\n\t" "bne %[S], %[se], 1b\n\t"
#define PQLR_W4_ZERO "li s0, 0\n\t" "li s1, 0\n\t" "li s2, 0\n\t" "li s3, 0\n\t" "li s4, 0\n\t" "li s5, 0\n\t" \
    "li s6, 0\n\t" "li s7, 0\n\t"
/* word V (chunk sum) → memory: V at 44 + 4I, its high lane at 76 + 4I (ra = 2^15 − 1) */
#define PQLR_W4_PUT(I, V)                                                                        \
    "sw " V ", 44+4*" #I "(%[p])\n\t" "add t2, " V ", ra\n\t" "srai t2, t2, 16\n\t" "sw t2, 76+4*" #I "(%[p])\n\t"
/* word V → the int8 block's V and H (register H), plus the first chunk's from memory when BIG */
#define PQLR_W4_TAKE(I, V, H)                                                                    \
    "add t2, " V ", ra\n\t" "srai " H ", t2, 16\n\t"                                             \
    ".if %[big]\n\t" "lw t2, 76+4*" #I "(%[p])\n\t" "add " H ", " H ", t2\n\t"                   \
    "lw t2, 44+4*" #I "(%[p])\n\t" "add " V ", " V ", t2\n\t" ".endif\n\t"
#define PQLR_W4_TILE_ASM(OUT)                                                                    \
    __asm__ volatile(                                                                            \
        "addi sp, sp, -16\n\t" "sw %[p], 0(sp)\n\t"                                              \
        "2:\n\t"                                                                                 \
        "lw %[S], 36(%[p])\n\t" "lw %[w], 16(%[p])\n\t" "addi %[w], %[w], 3*%[rb]\n\t" PQLR_W4_ZERO \
        "lui ra, 8\n\t" "addi ra, ra, -1\n\t"                                                    \
        ".if %[big]\n\t" "addi %[se], %[S], 256\n\t" PQLR_W4_LOOP                                \
        PQLR_W4_PUT(0, "s0") PQLR_W4_PUT(1, "s1") PQLR_W4_PUT(2, "s2") PQLR_W4_PUT(3, "s3")     \
        PQLR_W4_PUT(4, "s4") PQLR_W4_PUT(5, "s5") PQLR_W4_PUT(6, "s6") PQLR_W4_PUT(7, "s7")     \
        PQLR_W4_ZERO ".endif\n\t"                                                                \
        "lw %[se], 40(%[p])\n\t" PQLR_W4_LOOP                                                    \
        PQLR_W4_TAKE(0, "s0", "s8") PQLR_W4_TAKE(1, "s1", "s9") PQLR_W4_TAKE(2, "s2", "s10")     \
        PQLR_W4_TAKE(3, "s3", "s11") PQLR_W4_TAKE(4, "s4", "t3") PQLR_W4_TAKE(5, "s5", "t4")     \
        PQLR_W4_TAKE(6, "s6", "t5") PQLR_W4_TAKE(7, "s7", "t6")                                  \
        PQLR_SWAR_TAIL(OUT)                                                                      \
        : [S] "+r"(Sx), [w] "+r"(wx), [se] "+r"(Se), [p] "+r"(pp)                                \
        : [rb] "n"(RB), [ds] "n"(DS), [big] "n"(K > 32 ? 1 : 0)                                   \
        : PQLR_SWAR_CLOBBERS);

#define PQLR_W4_TILE_OK(K, RB, DS) (PQLR_SWAR_TILE_OK(K, RB, DS) && (K) <= 64)

/* groups × 4 channels, int4 weights (RB = (K + 1)/2 bytes a row), for the 4 packed pixels S; every channel on
 * rq_prep's fast case (DR = 0) or rq2_prep's (DR = 1). */
PQLR_INLINE void swar_tile_w4(const uint32_t *S, const int8_t *w, const int32_t *b, const int32_t *m,
                              const uint8_t *s, int8_t *dst, pqlr_out_t o, const int K, const int RB, const int DS,
                              int groups, const int DR) {
    /* as swar_tile's, then 44: the first chunk's V of the 8 lane-pair words, 76: their H */
    int32_t prm[27] = {(int32_t)(intptr_t)dst, (int32_t)(intptr_t)b, (int32_t)(intptr_t)m, (int32_t)(intptr_t)s,
                       (int32_t)(intptr_t)w - 3 * RB, (int32_t)(intptr_t)(dst + 4 * groups), 2 * o.zp + 1, o.lo, o.hi,
                       (int32_t)(intptr_t)S, (int32_t)(intptr_t)(S + 2 * K)};
    const uint32_t *Sx = S, *Se = S + 2 * K;
    const int8_t *wx = w;
    int32_t *pp = prm;
    if (DR)
        PQLR_W4_TILE_ASM(PQLR_SWAR_OUT8D)
    else
        PQLR_W4_TILE_ASM(PQLR_SWAR_OUT8)
}
#endif

/* The same for one channel (the tails of a tile whose channel count is not a multiple of 4). */
PQLR_INLINE void swar4x1(const uint32_t *S, const int8_t *w, int32_t b, int32_t m, int32_t s, int8_t *dst,
                         pqlr_out_t o, const int K, const int DS, const int WB) {
    uint32_t V0 = 0, V1 = 0, H0 = 0, H1 = 0;
    for (int k = 0; k < K; k += 2) {
        uint32_t wa = (uint32_t)wat(w, k, WB), wb = k + 1 < K ? (uint32_t)wat(w, k + 1, WB) : 0;
        uint32_t v0 = S[2 * k] * wa + (k + 1 < K ? S[2 * k + 2] * wb : 0);
        uint32_t v1 = S[2 * k + 1] * wa + (k + 1 < K ? S[2 * k + 3] * wb : 0);
        V0 += v0; H0 += (uint32_t)((int32_t)(v0 + SWAR_OFF) >> 16);
        V1 += v1; H1 += (uint32_t)((int32_t)(v1 + SWAR_OFF) >> 16);
    }
    int32_t acc[4] = {b + (int32_t)(V0 - (H0 << 16)), b - (int32_t)H0, b + (int32_t)(V1 - (H1 << 16)), b - (int32_t)H1};
    for (int p = 0; p < 4; p++) dst[p * DS] = rq(acc[p], m, s, o);
}

/* int4 weights on the same packed pixels: |x·w| ≤ 128·7, so a lane holds 36 products and the words accumulate
 * SWAR4_K = 32 inputs (one multiply and one add per lane pair and input) before they are split: the low lane by
 * sign extension, the high one as (v − low) >> 16, both exact while they stay within int16. A weight byte holds
 * inputs k (low nibble) and k + 1 (high nibble), unpacked once for both pixel pairs. */
PQLR_INLINE void swar4x4_w4(const uint32_t *S, const int8_t *w, const int32_t *b, const int32_t *m,
                            const uint8_t *s, int8_t *dst, pqlr_out_t o, const int K, const int RB, const int DS) {
    enum { SWAR4_K = 32 };
    int32_t acc[16];                                 /* pixel p, channel j at 4p + j */
    for (int j = 0; j < 4; j++) acc[j] = acc[4 + j] = acc[8 + j] = acc[12 + j] = b[j];
    for (int k0 = 0; k0 < K; k0 += SWAR4_K) {
        const int kend = k0 + SWAR4_K < K ? k0 + SWAR4_K : K;
        uint32_t v00 = 0, v01 = 0, v02 = 0, v03 = 0, v10 = 0, v11 = 0, v12 = 0, v13 = 0;
        const uint32_t *Sk = S + 2 * k0;
        const int8_t *wk = w + (k0 >> 1);
#define W4(j, X0, X1, W)                                                                         \
        do { uint32_t w_ = (uint32_t)(W); v0##j += (X0) * w_; v1##j += (X1) * w_; } while (0)
#define BYTE(j)                                                                                  \
        do {                                                                                     \
            const int32_t by = wk[(j) * RB];                                                     \
            W4(j, X0a, X1a, w4lo(by)); W4(j, X0b, X1b, w4hi(by));                                \
        } while (0)
        int k = k0;
#pragma GCC unroll 2
        for (; k + 2 <= kend; k += 2, Sk += 4, wk++) {
            const uint32_t X0a = Sk[0], X1a = Sk[1], X0b = Sk[2], X1b = Sk[3];
            BYTE(0); BYTE(1); BYTE(2); BYTE(3);
        }
#undef BYTE
        if (k < kend) {                              /* odd K: the last low nibbles */
            const uint32_t X0a = Sk[0], X1a = Sk[1];
            W4(0, X0a, X1a, w4lo(wk[0])); W4(1, X0a, X1a, w4lo(wk[RB]));
            W4(2, X0a, X1a, w4lo(wk[2 * RB])); W4(3, X0a, X1a, w4lo(wk[3 * RB]));
        }
#undef W4
#define SPLIT(v, j, p)                                                                           \
        do { const int32_t l_ = (int16_t)(v); acc[4 * (p) + (j)] += l_;                          \
             acc[4 * ((p) + 1) + (j)] -= (int32_t)((v) - (uint32_t)l_) >> 16; } while (0)
        SPLIT(v00, 0, 0); SPLIT(v01, 1, 0); SPLIT(v02, 2, 0); SPLIT(v03, 3, 0);
        SPLIT(v10, 0, 2); SPLIT(v11, 1, 2); SPLIT(v12, 2, 2); SPLIT(v13, 3, 2);
#undef SPLIT
    }
    for (int j = 0; j < 4; j++) {
        const int32_t m_ = m[j], s_ = s[j];
        for (int p = 0; p < 4; p++) dst[p * DS + j] = rq(acc[4 * p + j], m_, s_, o);
    }
}

/* Pack 4 pixels (rows XS apart from x) into S. */
PQLR_INLINE void swar_pack4(uint32_t *S, const int8_t *x, const int K, const int XS) {
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
        S[2 * k] = (uint32_t)(int32_t)x[k] - ((uint32_t)(int32_t)x[XS + k] << 16);
        S[2 * k + 1] = (uint32_t)(int32_t)x[2 * XS + k] - ((uint32_t)(int32_t)x[3 * XS + k] << 16);
    }
}

/* Whether every one of the tile's n channels takes rq_prep's fast case (1) or, for a model on TFLite's double
 * rounding, rq2_prep's (2): the whole-block assembly needs one or the other; 0 otherwise. */
PQLR_INLINE int swar_fast(const uint8_t *shft, const int32_t *mult, const int32_t *bias, int n, const int K) {
    int ok = 1;
#if PQLR_DOUBLE_ROUNDING
    if (pqlr_round_twice) {
        for (int j = 0; j < n; j++) ok &= rq2_fast(mult[j], shft[j], bias[j], K);
        return 2 * ok;
    }
#endif
    (void)mult; (void)bias; (void)K;
    for (int j = 0; j < n; j++) ok &= rq_fast(shft[j]);
    return ok;
}

/* All n channels of a tile for 4 packed pixels (int8 or int4 weights). */
PQLR_INLINE void swar_rows(const uint32_t *S, const int8_t *wts, const int32_t *bias, const int32_t *mult,
                           const uint8_t *shft, int n, int8_t *dst, pqlr_out_t o, const int K, const int RB,
                           const int DS, int fast, const int WB) {
    int j = 0;
#ifdef PQLR_SWAR_ASM
    /* fast: 1 rq_prep's rule, 2 rq2_prep's; the double-rounding epilogue is compiled only for models that use it */
#if PQLR_DOUBLE_ROUNDING
    const int dr = fast == 2;
#else
    const int dr = 0;
#endif
    if (fast && n >= 4 && (WB == 8 ? PQLR_SWAR_TILE_OK(K, RB, DS) : PQLR_W4_TILE_OK(K, RB, DS))) {
        if (WB == 8)
            swar_tile(S, wts, bias, mult, shft, dst, o, K, RB, DS, n >> 2, dr);
        else
            swar_tile_w4(S, wts, bias, mult, shft, dst, o, K, RB, DS, n >> 2, dr);
        j = n & ~3;
    }
#endif
    for (; j + 4 <= n; j += 4) {
        if (WB == 8)
            swar4x4(S, wts + j * RB, bias + j, mult + j, shft + j, dst + j, o, K, RB, DS, fast);
        else
            swar4x4_w4(S, wts + j * RB, bias + j, mult + j, shft + j, dst + j, o, K, RB, DS);
    }
    for (int t = 0; t < 3; t++)                    /* the last n mod 4 channels */
        if (j + t < n)
            swar4x1(S, wts + (j + t) * RB, bias[j + t], mult[j + t], shft[j + t], dst + j + t, o, K, DS, WB);
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
                         int8_t *scratch, const int CIN, const int COUT, const int P, const int WB, const int INPL,
                         const int SWAR) {
    TILE_PARAMS(tile, n);
    const int RB = WB == 4 ? (CIN + 1) / 2 : CIN;
    pqlr_out_t o = out_of(L);
    if (SWAR && P >= PQLR_SWAR_MIN_PIXELS) {
        /* 4 pixels packed into scratch (swar_scratch(layer) bytes, where the plan gives them: SWAR), then every channel from the packed copy: in
         * place, those pixels' inputs are consumed before their outputs are written (Cout ≤ Cin) */
        uint32_t *S = (uint32_t *)(void *)scratch;
        const int fast = swar_fast(shft, mult, bias, n, CIN);
        int p = 0;
        for (; p + 4 <= P; p += 4) {
            swar_pack4(S, in + p * CIN, CIN, CIN);
            swar_rows(S, wts, bias, mult, shft, n, out + p * COUT + c0, o, CIN, RB, COUT, fast, WB);
        }
        if (p < P) {         /* the last 1–3 pixels one at a time, from a copy (in place, outputs overwrite them) */
            int8_t *xc = scratch;
            const int nb = (P - p) * CIN;
            int i = 0;
            if ((((int)(uintptr_t)in | (int)(uintptr_t)xc | p * CIN) & 3) == 0)
                for (; i + 4 <= nb; i += 4)
                    *(uint32_t *)(void *)(xc + i) = *(const uint32_t *)(const void *)(in + p * CIN + i);
            for (; i < nb; i++) xc[i] = in[p * CIN + i];
            mm_rows(xc, P - p, wts, bias, mult, shft, n, out + p * COUT + c0, o, CIN, CIN, RB, COUT, WB);
        }
        return;
    }
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

/* One output pixel's input patch (K = KH·KW·CIN values, padding as zp) into lane `lane` of a packed block
 * (swar_pack's layout: lanes 0 and 2 assigned, 1 and 3 subtracted ·2^16, so 0/2 must come first). */
PQLR_INLINE void conv_pack_lane(uint32_t *S, const int lane, const int8_t *in, int oy, int ox, int32_t zp,
                                const int IH, const int IW, const int CIN, const int KH, const int KW, const int SH,
                                const int SW, const int PT, const int PL) {
    uint32_t *d = S + (lane >> 1);
    const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
    const int8_t *row = in + (iy0 * IW + ix0) * CIN;              /* tap (0, 0), maybe outside the map */
    if (iy0 >= 0 && iy0 + KH <= IH && ix0 >= 0 && ix0 + KW <= IW) {          /* inside the map: no padding tests */
        for (int ky = 0; ky < KH; ky++, row += IW * CIN) {
#pragma GCC unroll 4
            for (int t = 0; t < KW * CIN; t++, d += 2) {
                const uint32_t v = (uint32_t)(int32_t)row[t];
                if (lane & 1) *d -= v << 16;
                else *d = v;
            }
        }
        return;
    }
    for (int ky = 0; ky < KH; ky++, row += IW * CIN) {
        const int row_in = (unsigned)(iy0 + ky) < (unsigned)IH;
#pragma GCC unroll 4
        for (int kx = 0; kx < KW; kx++, d += 2 * CIN) {
            const int inside = row_in && (unsigned)(ix0 + kx) < (unsigned)IW;
            const int8_t *src = row + kx * CIN;
            for (int ci = 0; ci < CIN; ci++) {
                const uint32_t v = (uint32_t)(inside ? (int32_t)src[ci] : zp);
                if (lane & 1) d[2 * ci] -= v << 16;
                else d[2 * ci] = v;
            }
        }
    }
}

/* int8 conv2d, the output pixels in whole blocks of 4: 4 patches packed straight into scratch (swar_scratch(layer)
 * bytes), then the same 4-pixel SWAR block product as pointwise layers (conv_body does the last P mod 4). */
PQLR_INLINE void conv_swar(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                           int8_t *scratch, const int IH, const int IW, const int CIN, const int OH, const int OW,
                           const int COUT, const int KH, const int KW, const int SH, const int SW, const int PT,
                           const int PL) {
    TILE_PARAMS(tile, n);
    const int K = KH * KW * CIN;
    const int32_t zp = L->in_zp;
    pqlr_out_t o = out_of(L);
    uint32_t *S = (uint32_t *)(void *)scratch;
    const int fast = swar_fast(shft, mult, bias, n, K);
    for (int p = 0; p + 4 <= OH * OW; p += 4) {
        /* lanes 0, 1 write the words of pair 0, lanes 2, 3 those of pair 1 (constant lanes: no test per value) */
        conv_pack_lane(S, 0, in, p / OW, p % OW, zp, IH, IW, CIN, KH, KW, SH, SW, PT, PL);
        conv_pack_lane(S, 1, in, (p + 1) / OW, (p + 1) % OW, zp, IH, IW, CIN, KH, KW, SH, SW, PT, PL);
        conv_pack_lane(S, 2, in, (p + 2) / OW, (p + 2) % OW, zp, IH, IW, CIN, KH, KW, SH, SW, PT, PL);
        conv_pack_lane(S, 3, in, (p + 3) / OW, (p + 3) % OW, zp, IH, IW, CIN, KH, KW, SH, SW, PT, PL);
        swar_rows(S, wts, bias, mult, shft, n, out + p * COUT + c0, o, K, K, COUT, fast, 8);
    }
}

/* General conv2d: 2 output pixels' input patches gathered into scratch[2·K] (padding as zp), then a
 * 2-pixel × 4-channel matrix product over K. */
PQLR_INLINE void conv_body(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out,
                           int8_t *scratch, const int IH, const int IW, const int CIN, const int OH, const int OW,
                           const int COUT, const int KH, const int KW, const int SH, const int SW, const int PT,
                           const int PL, const int WB, const int SWAR) {
    int p0 = 0;                                       /* the first pixel of the plain path below */
    if (SWAR && WB == 8 && OH * OW >= PQLR_SWAR_MIN_PIXELS) {   /* SWAR: the plan gave the packed scratch */
        conv_swar(L, tile, c0, n, in, out, scratch, IH, IW, CIN, OH, OW, COUT, KH, KW, SH, SW, PT, PL);
        p0 = OH * OW & ~3;
    }
    TILE_PARAMS(tile, n);
    const int K = KH * KW * CIN;
    const int RB = WB == 4 ? (K + 1) / 2 : K;
    const int8_t zp = (int8_t)L->in_zp;
    pqlr_out_t o = out_of(L);
    const int P = OH * OW;
    for (int p = p0; p < P; p += 2) {
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

/* One output row of a 3×3 stride-1 'same' depthwise conv for one channel, column by column: column x's three
 * input values (rows above, at and below the output row; HAS0/HAS2 = 0: that row is padding, the value zp)
 * finish output x−1, add to output x and start output x+1, so only three accumulators and the nine weights are
 * live. The padding columns left and right add the constants cl and cr. r1 is the input row at the output row,
 * r0/r2 the rows above/below, X the pixel stride. RING: the input row is copied into `ring` as it is read (the
 * in-place kernel's copy of the row the next output row still needs, taken from r0 then); dst may be r1. */
PQLR_INLINE void dw3_row(const int8_t *r0, const int8_t *r1, int8_t *ring, const int8_t *r2, int8_t *dst, const int W,
                         const int X, const int HAS0, const int HAS2, const int RING, int32_t zp, int32_t w00,
                         int32_t w01, int32_t w02, int32_t w10, int32_t w11, int32_t w12, int32_t w20, int32_t w21,
                         int32_t w22, int32_t base, int32_t cl, int32_t cr, pqlr_rqp_t q, int32_t m, int32_t s,
                         pqlr_out_t o, const int FAST) {
    int32_t A = 0, B = base + cl;
#pragma GCC unroll 8
    for (int x = 0; x < W; x++) {
        const int32_t v0 = HAS0 ? r0[x * X] : zp;
        const int32_t v1 = r1[x * X];
        const int32_t v2 = HAS2 ? r2[x * X] : zp;
        if (RING) ring[x * X] = (int8_t)v1;
        if (x > 0) {
            A += v0 * w02 + v1 * w12 + v2 * w22;
            dst[(x - 1) * X] = FAST == 2 ? (int8_t)rqp2(A, q) : FAST ? (int8_t)rqp(A, q) : rq(A, m, s, o);
        }
        B += v0 * w01 + v1 * w11 + v2 * w21;
        A = B;
        B = base + v0 * w00 + v1 * w10 + v2 * w20;
    }
    dst[(W - 1) * X] = FAST == 2 ? (int8_t)rqp2(A + cr, q) : FAST ? (int8_t)rqp(A + cr, q) : rq(A + cr, m, s, o);
}

/* Depthwise 3×3, stride 1, pad 1 (the DS-CNN case), one channel at a time with its nine weights in
 * registers. In place: each input row is copied into a ring of two rows (scratch, arena pixel stride C) while it
 * is read, since the next output row still needs it after this row's outputs overwrite it. */
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
        const int32_t b = bias[j], cl = zp * (w00 + w10 + w20), cr = zp * (w02 + w12 + w22);
        pqlr_rqp_t q = rq_prep(mult[j], shft[j], o);
        int mode = q.sh >= 0;                                            /* 1: rq_prep's rule */
#if PQLR_DOUBLE_ROUNDING
        if (pqlr_round_twice) {                                          /* 2: rq2_prep's (TFLite's rounding) */
            q = rq2_prep(mult[j], shft[j], b, 9, o);
            mode = q.sh >= 0 ? 2 : 0;
        }
#endif
        const int32_t m = mult[j], s = shft[j];
        int8_t *prev = scratch + c, *cur = scratch + RS + c;           /* ring slots: row y−1, row y */
        int8_t *r1 = (int8_t *)in + c;                                   /* in place: the output row too */
        int8_t *dst = out + c;
        /* FAST: rq_prep's prepared rule; otherwise rq's (double rounding, unusual shifts) inline. In place the
         * output row is the input row (one pointer fewer, so the interior rows' registers do not spill). */
#define DW3_ROW(HAS0, HAS2, FAST)                                                                \
        do {                                                                                     \
            dw3_row(INPL ? prev : r1 - RS, r1, cur, r1 + RS, INPL ? r1 : dst, W, C, HAS0, HAS2, INPL, zp, w00, \
                    w01, w02, w10, w11, w12, w20, w21, w22, b, cl, cr, q, m, s, o, FAST);          \
            int8_t *t_ = prev;                                                                   \
            prev = cur;                                                                          \
            cur = t_;                                                                            \
            r1 += RS;                                                                            \
            dst += RS;                                                                           \
        } while (0)
#define DW3_ROWS(FAST)                                                                           \
        do {                                                                                     \
            if (H == 1) {                                                                        \
                DW3_ROW(0, 0, FAST);                                                             \
            } else {                                                                             \
                DW3_ROW(0, 1, FAST);                                                             \
                for (int y = 1; y + 1 < H; y++) DW3_ROW(1, 1, FAST);                             \
                DW3_ROW(1, 0, FAST);                                                             \
            }                                                                                    \
        } while (0)
        if (mode == 0) {
            for (int y = 0; y < H; y++) DW3_ROW(y > 0, y + 1 < H, 0);
#if PQLR_DOUBLE_ROUNDING
        } else if (mode == 2) {
            DW3_ROWS(2);
#endif
        } else {
            DW3_ROWS(1);
        }
#undef DW3_ROWS
#undef DW3_ROW
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
