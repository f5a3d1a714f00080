/* kernels_tf.c — the transformer ops, integer only (hostside/graph.py is their specification and
 * hostside/reference/interpreter.py their bit-exact reference): add (residual or constant operand), layer
 * norm, attention with I-BERT's integer exp and softmax, GELU by table, reshape; and the imported models' TFLite
 * ops and the wake word's phoneme score (ctc). Used by both kernel sets; the linear layers around them are the
 * pointwise kernels. */
#include "pqlr.h"

void pqlr_reshape(PQLR_KERNEL_ARGS) {
    /* the same bytes with another shape: the planner aliases output and input, so nothing moves */
    (void)tile; (void)c0; (void)n; (void)scratch;
    if (out != in) {
        const int bytes = L->in_h * L->in_w * L->in_c;
        for (int i = 0; i < bytes; i++) out[i] = in[i];
    }
}

void pqlr_add(PQLR_KERNEL_ARGS) {
    /* acc = (a − zp_a)·ra + (b − zp_b)·rb, requantised. b: the tensor passed as `scratch`, all pixels at once;
     * or a constant: this tile's rows are pixels [c0, c0 + n). Element by element, so in place is safe. */
    const int C = L->in_c;
    int p0 = 0, np = L->in_h * L->in_w;
    const int8_t *b = scratch;
    if (L->skip < 0) {
        TILE_PARAMS(tile, n);
        (void)bias; (void)mult; (void)shft;
        p0 = c0;
        np = n;
        b = wts - (int32_t)c0 * C;            /* so that b + p·C is pixel p's row */
    }
    /* the layer's fields in locals: stores through int8_t pointers could alias them, and the compiler
     * would reload them for every element */
    const int32_t za = L->in_zp, zb = L->in2_zp, ra = L->ra, rb = L->rb, m = L->multiplier, s = L->shift;
    const int32_t zo = L->out_zp, lo = L->act_min, hi = L->act_max;
    for (int p = p0; p < p0 + np; p++) {
        const int8_t *x = in + p * C, *y = b + p * C;
        int8_t *o = out + p * C;
        for (int c = 0; c < C; c++) {
            int32_t acc = ((int32_t)x[c] - za) * ra + ((int32_t)y[c] - zb) * rb;
            o[c] = pqlr_requant(acc, m, s, zo, lo, hi);
        }
    }
}

/* ⌊√v⌋, digit by digit (no division) */
static uint32_t isqrt64(uint64_t v) {
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v) bit >>= 2;
    while (bit) {
        if (v >= r + bit) { v -= r + bit; r = (r >> 1) + bit; }
        else r >>= 1;
        bit >>= 2;
    }
    return (uint32_t)r;
}

void pqlr_layernorm(PQLR_KERNEL_ARGS) {
    /* per pixel: S1 = Σx, S2 = Σx², sd = ⌊√(C·S2 − S1²)⌋, n_c = (x_c·C − S1)·2^7 / sd (toward zero),
     * y_c = requant(n_c·γ_c + β_c). The sums come first, so channel c may overwrite x_c (in place). */
    (void)scratch;
    TILE_PARAMS(tile, n);
    const int C = L->in_c, P = L->in_h * L->in_w;
    const int32_t zo = L->out_zp, lo = L->act_min, hi = L->act_max;
    for (int p = 0; p < P; p++) {
        const int8_t *x = in + p * C;
        int8_t *o = out + p * C;
        int32_t s1 = 0, s2 = 0;
        for (int c = 0; c < C; c++) { s1 += x[c]; s2 += (int32_t)x[c] * x[c]; }
        const int32_t sd = (int32_t)isqrt64((uint64_t)((int64_t)C * s2 - (int64_t)s1 * s1));
        for (int j = 0; j < n; j++) {
            const int c = c0 + j;
            const int32_t num = ((int32_t)x[c] * C - s1) * (1 << PQLR_LN_BITS);
            const int32_t nrm = sd ? num / sd : 0;
            o[c] = pqlr_requant(nrm * wts[j] + bias[j], mult[j], shft[j], zo, lo, hi);
        }
    }
}

void pqlr_attention(PQLR_KERNEL_ARGS) {
    /* input (T, 3D): q | k | v; per head h and query i: logits, the integer softmax (I-BERT exp, one
     * reciprocal per row), then the probability-weighted sum of v; `scratch` holds 2T + hd int32. */
    (void)tile; (void)c0; (void)n;
    const int T = L->in_h * L->in_w, C3 = L->in_c, D = L->out_c, H = L->heads, hd = D / H;
    const int32_t zp = L->in_zp, m2 = L->m2, s2 = L->s2, m = L->multiplier, s = L->shift;
    const int32_t zo = L->out_zp, lo = L->act_min, hi = L->act_max;
    const int64_t half2 = (int64_t)1 << (s2 - 1);
    int32_t *e = (int32_t *)(void *)scratch;            /* T exps, then probabilities */
    int32_t *kz = e + T;                                 /* T: zp·Σ_d k_jd of this head */
    int32_t *acc = kz + T;                               /* hd context sums */
    for (int h = 0; h < H; h++) {
        /* Σ_d (q_d − zp)(k_d − zp) = Σ q·k − zp·Σk − (zp·Σq − hd·zp²); the last term is the same for every key
         * of a query, and the softmax only sees differences L_j − max L, so it is left out (exactly) */
        for (int j = 0; j < T; j++) {
            const int8_t *k = in + j * C3 + D + h * hd;
            int32_t ks = 0;
            for (int d = 0; d < hd; d++) ks += k[d];
            kz[j] = zp * ks;
        }
        for (int i = 0; i < T; i++) {
            const int8_t *q = in + i * C3 + h * hd;
            int32_t mx = INT32_MIN;
            int j = 0;
            for (; j + 1 < T; j += 2) {                     /* two keys per pass: each q_d loaded once */
                const int8_t *k0 = in + j * C3 + D + h * hd, *k1 = k0 + C3;
                int32_t l0 = 0, l1 = 0;
#pragma GCC unroll 4
                for (int d = 0; d < hd; d++) {
                    const int32_t qd = q[d];
                    l0 += qd * k0[d];
                    l1 += qd * k1[d];
                }
                l0 -= kz[j];
                l1 -= kz[j + 1];
                e[j] = l0;
                e[j + 1] = l1;
                if (l0 > mx) mx = l0;
                if (l1 > mx) mx = l1;
            }
            for (; j < T; j++) {
                const int8_t *k = in + j * C3 + D + h * hd;
                int32_t l = 0;
                for (int d = 0; d < hd; d++) l += (int32_t)q[d] * k[d];
                l -= kz[j];
                e[j] = l;
                if (l > mx) mx = l;
            }
            int32_t sum = 0;
            for (int j = 0; j < T; j++) {
                const int64_t r = ((int64_t)(e[j] - mx) * m2 + half2) >> s2;
                int32_t v = 0;
                if (r > -(int64_t)31 * PQLR_EXP_LN2) {              /* else z > 30: exp underflows to 0 */
                    const int32_t ri = (int32_t)r;
                    const int32_t z = (int32_t)((uint32_t)(-ri) / PQLR_EXP_LN2);
                    const int32_t pp = ri + z * PQLR_EXP_LN2 + PQLR_EXP_B;
                    v = (pp * pp + PQLR_EXP_C) >> z;
                }
                e[j] = v;
                sum += v;
            }
            const int64_t inv = ((int64_t)1 << PQLR_INV_BITS) / sum;   /* sum ≥ exp(0) > 0 */
            for (int j = 0; j < T; j++)
                e[j] = (int32_t)(((int64_t)e[j] * inv) >> (PQLR_INV_BITS - PQLR_PROB_BITS));
            /* ctx_d = Σ_j p_j·(v_jd − zp) = Σ_j p_j·v_jd − zp·Σ_j p_j, accumulated row by row of v
             * (contiguous), skipping the tokens whose probability rounded to 0 */
            int32_t psum = 0;
            for (int d = 0; d < hd; d++) acc[d] = 0;
            for (j = 0; j + 1 < T; j += 2) {                 /* two tokens per pass over the sums */
                const int32_t p0 = e[j], p1 = e[j + 1];
                if (!(p0 | p1)) continue;
                psum += p0 + p1;
                const int8_t *v0 = in + j * C3 + 2 * D + h * hd, *v1 = v0 + C3;
#pragma GCC unroll 4
                for (int d = 0; d < hd; d++) acc[d] += p0 * v0[d] + p1 * v1[d];
            }
            for (; j < T; j++) {
                const int32_t p = e[j];
                if (!p) continue;
                psum += p;
                const int8_t *v = in + j * C3 + 2 * D + h * hd;
                for (int d = 0; d < hd; d++) acc[d] += p * v[d];
            }
            int8_t *o = out + i * D + h * hd;
            for (int d = 0; d < hd; d++) o[d] = pqlr_requant(acc[d] - zp * psum, m, s, zo, lo, hi);
        }
    }
}

void pqlr_gelu(PQLR_KERNEL_ARGS) {
    /* y = table[x + 128]: the table is the I-BERT integer GELU of every int8 input, requantised (export time) */
    (void)c0; (void)n; (void)scratch;
    TILE_PARAMS(tile, 1);
    (void)bias; (void)mult; (void)shft;
    const int N = L->in_h * L->in_w * L->in_c;
    for (int i = 0; i < N; i++) out[i] = wts[(int32_t)in[i] + 128];
}

void pqlr_lut(PQLR_KERNEL_ARGS) {
    pqlr_gelu(L, tile, c0, n, in, out, scratch);        /* the same lookup: the table says which function */
}

void pqlr_stream(PQLR_KERNEL_ARGS) {
    /* out holds S state rows then the input's rows; drop the oldest in_h rows, append the new ones */
    (void)tile; (void)c0; (void)n; (void)scratch;
    uint32_t row = (uint32_t)L->in_w * L->in_c;
    uint32_t fresh = (uint32_t)L->in_h * row, state = (uint32_t)(L->out_h - L->in_h) * row;
    if (((row | (uint32_t)(uintptr_t)out | (uint32_t)(uintptr_t)in) & 3u) == 0) {   /* words: the usual case */
        typedef int32_t __attribute__((may_alias)) word_t;       /* the arena is int8: read it as words */
        word_t *o = (word_t *)(void *)out;
        const word_t *x = (const word_t *)(const void *)in;
        uint32_t fw = fresh / 4, sw = state / 4;
        for (uint32_t i = 0; i < sw; i++) o[i] = o[i + fw];                  /* forward copy: overlap-safe */
        for (uint32_t i = 0; i < fw; i++) o[sw + i] = x[i];
        return;
    }
    for (uint32_t i = 0; i < state; i++) out[i] = out[i + fresh];
    for (uint32_t i = 0; i < fresh; i++) out[state + i] = in[i];
}

void pqlr_meanpool(PQLR_KERNEL_ARGS) {
    /* per channel: Σ x over the map, divided by the count, rounded half away from zero (C's truncating `/`
     * on the nudged sum, as TFLite's reference), clamped; channel c overwrites pixel 0's channel c (in place) */
    (void)tile; (void)scratch;
    const int32_t P = L->in_h * L->in_w, C = L->in_c;
    int c = c0;
    if (((C | c0 | (int)(uintptr_t)in) & 3) == 0) {
        /* 4 channels per word: x + 128 as unsigned bytes (x ^ 0x80), even and odd bytes in two words of 16-bit
         * lanes, each of which holds 257 values ≤ 255; Σ x = Σ (x + 128) − 128·P */
        for (; c + 4 <= c0 + n; c += 4) {
            const uint32_t *x = (const uint32_t *)(const void *)(in + c);
            int32_t acc[4] = {-128 * P, -128 * P, -128 * P, -128 * P};
            for (int32_t p0 = 0; p0 < P; p0 += 257) {
                const int32_t pe = P - p0 < 257 ? P : p0 + 257;
                uint32_t ev = 0, od = 0;
                for (int32_t p = p0; p < pe; p++, x += C >> 2) {
                    const uint32_t v = *x ^ 0x80808080u;
                    ev += v & 0x00FF00FFu;
                    od += (v >> 8) & 0x00FF00FFu;
                }
                acc[0] += (int32_t)(ev & 0xFFFF); acc[2] += (int32_t)(ev >> 16);
                acc[1] += (int32_t)(od & 0xFFFF); acc[3] += (int32_t)(od >> 16);
            }
            for (int j = 0; j < 4; j++) {
                int32_t q = acc[j] > 0 ? (acc[j] + P / 2) / P : (acc[j] - P / 2) / P;
                out[c + j] = (int8_t)(q < L->act_min ? L->act_min : (q > L->act_max ? L->act_max : q));
            }
        }
    }
    for (; c < c0 + n; c++) {
        const int8_t *x = in + c;
        int32_t acc = 0;
        for (int32_t p = 0; p < P; p++, x += C) acc += *x;
        int32_t q = acc > 0 ? (acc + P / 2) / P : (acc - P / 2) / P;
        out[c] = (int8_t)(q < L->act_min ? L->act_min : (q > L->act_max ? L->act_max : q));
    }
}

/* gemmlowp's fixed point on int32, transcribed line by line from hostside/reference/tflite_ops.py */
static int32_t g_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * b;
    int64_t num = ab + (ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30)));
    return (int32_t)(num >= 0 ? (num >> 31) : -((-num) >> 31));
}

static int32_t g_rdbpot(int32_t x, int e) {
    int32_t mask = (int32_t)((1u << e) - 1u);
    int32_t rem = x & mask, thr = (mask >> 1) + (x < 0);
    return (x >> e) + (rem > thr);
}

static int32_t g_shl_sat(int32_t x, int e) {
    int32_t thr = (int32_t)((1u << (31 - e)) - 1u);
    if (x > thr) return INT32_MAX;
    if (x < -thr) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

static int32_t g_exp_quarter(int32_t a) {            /* exp on [−1/4, 0), Q0.31 */
    const int32_t c = 1895147668, third = 715827883;
    int32_t x = a + (1 << 28);
    int32_t x2 = g_srdhm(x, x), x3 = g_srdhm(x2, x), x4 = g_srdhm(x2, x2);
    int32_t poly = g_rdbpot(g_srdhm(g_rdbpot(x4, 2) + x3, third) + x2, 1);
    return c + g_srdhm(c, x + poly);
}

static int32_t g_exp_neg(int32_t a) {               /* exp_on_negative_values: Q5.26 ≤ 0 → Q0.31 */
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    int32_t a_mod = (a & (quarter - 1)) - quarter;
    int32_t r = g_exp_quarter(g_shl_sat(a_mod, 5));
    int32_t rem = a_mod - a;
    for (int i = 0; i < 7; i++)
        if ((rem >> (24 + i)) & 1) r = g_srdhm(r, barrel[i]);
    return a == 0 ? INT32_MAX : r;
}

static int32_t g_one_over_one_plus_x(int32_t a) {    /* Newton–Raphson in Q2.29; Q0.31 in and out */
    int64_t s = (int64_t)a + INT32_MAX;
    int32_t half = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + g_srdhm(half, -1010580540);
    for (int i = 0; i < 3; i++) {
        int32_t one_minus = (1 << 29) - g_srdhm(half, x);
        x = x + g_shl_sat(g_srdhm(x, one_minus), 2);
    }
    return g_shl_sat(x, 1);
}

void pqlr_softmax(PQLR_KERNEL_ARGS) {
    /* TFLite's reference int8 softmax over each pixel's channels; output scale 1/256, zero point −128. The row is
     * read whole (maximum, sum of exps) before any output is written, so it may run in place. */
    (void)tile; (void)c0; (void)n; (void)scratch;
    const int C = L->in_c, P = L->in_h * L->in_w;
    const int32_t M = L->multiplier, ls = L->shift, dmin = L->m2;
    for (int p = 0; p < P; p++) {
        const int8_t *x = in + p * C;
        int8_t *y = out + p * C;
        int32_t mx = -128, sum = 0;
        for (int c = 0; c < C; c++) mx = x[c] > mx ? x[c] : mx;
        for (int c = 0; c < C; c++) {
            int32_t d = x[c] - mx;
            if (d >= dmin) sum += g_rdbpot(g_exp_neg(g_srdhm(d * (1 << ls), M)), 12);
        }
        uint32_t us = (uint32_t)sum;
        int h = __builtin_clz(us);                     /* sum ≥ 2^19: the maximum's exp alone */
        int bits = 12 - h;
        int32_t recip = g_one_over_one_plus_x((int32_t)((us << h) - (1u << 31)));
        for (int c = 0; c < C; c++) {
            int32_t d = x[c] - mx, v = -128;
            if (d >= dmin) {
                v = g_rdbpot(g_srdhm(recip, g_exp_neg(g_srdhm(d * (1 << ls), M))), bits + 31 - 8) - 128;
                v = v < -128 ? -128 : (v > 127 ? 127 : v);
            }
            y[c] = (int8_t)v;
        }
    }
}

void pqlr_qadd(PQLR_KERNEL_ARGS) {
    const int C = L->in_c;
    int p0 = 0, np = L->in_h * L->in_w;
    const int8_t *b = scratch;
    if (L->skip < 0) {                      /* a constant operand: this tile's rows are pixels [c0, c0 + n) */
        TILE_PARAMS(tile, n);
        (void)bias; (void)mult; (void)shft;
        p0 = c0;
        np = n;
        b = wts - (int32_t)c0 * C;
    }
    const int32_t za = L->in_zp, zb = L->in2_zp, m1 = L->ra, s1 = L->m2, m2 = L->rb, s2 = L->s2;
    const int32_t mo = L->multiplier, so = L->shift, zo = L->out_zp, lo = L->act_min, hi = L->act_max;
    for (int p = p0; p < p0 + np; p++) {
        const int8_t *x = in + p * C, *y = b + p * C;
        int8_t *o = out + p * C;
        for (int c = 0; c < C; c++) {
            /* TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp: the double rounding with s ≥ 31 */
            int32_t a1 = pqlr_mul_twice(((int32_t)x[c] - za) * (1 << 20), m1, s1);
            int32_t a2 = pqlr_mul_twice(((int32_t)y[c] - zb) * (1 << 20), m2, s2);
            int32_t v = pqlr_mul_twice(a1 + a2, mo, so) + zo;
            o[c] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    }
}

void pqlr_maxpool(PQLR_KERNEL_ARGS) {
    (void)tile; (void)scratch;
    const int IH = L->in_h, IW = L->in_w, C = L->in_c;
    for (int oy = 0; oy < L->out_h; oy++)
        for (int ox = 0; ox < L->out_w; ox++)
            for (int c = c0; c < c0 + n; c++) {
                int32_t m = -129;
                for (int ky = 0; ky < L->kh; ky++) {
                    int iy = oy * L->sh + ky - L->pad_t;
                    if (iy < 0 || iy >= IH) continue;
                    for (int kx = 0; kx < L->kw; kx++) {
                        int ix = ox * L->sw + kx - L->pad_l;
                        if (ix < 0 || ix >= IW) continue;
                        int32_t v = in[(iy * IW + ix) * C + c];
                        m = v > m ? v : m;
                    }
                }
                m = m < L->act_min ? L->act_min : (m > L->act_max ? L->act_max : m);
                out[(oy * L->out_w + ox) * L->out_c + c] = (int8_t)m;
            }
}

void pqlr_avgpool_windows(const pqlr_layer_t *L, int c0, int n, const int8_t *in, int8_t *out) {
    const int C = L->in_c, W = L->in_w, kh = L->in_h / L->out_h, kw = L->in_w / L->out_w;
    const int32_t zp = L->in_zp, m = L->multiplier, s = L->shift;
    for (int oy = 0; oy < L->out_h; oy++)
        for (int ox = 0; ox < L->out_w; ox++)
            for (int c = c0; c < c0 + n; c++) {
                int32_t acc = 0;
                for (int y = oy * kh; y < (oy + 1) * kh; y++)
                    for (int x = ox * kw; x < (ox + 1) * kw; x++)
                        acc += (int32_t)in[(y * W + x) * C + c] - zp;
                out[(oy * L->out_w + ox) * C + c] = pqlr_requant(acc, m, s, L->out_zp, L->act_min, L->act_max);
            }
}

/* logadd(a, b) = max(a, b) + table[min(|a − b|, CTC_TABLE − 1)]: ln(e^a + e^b) in units of 2^-CTC_BITS nats */
static inline int32_t ctc_logadd(int32_t a, int32_t b, const int8_t *table) {
    int32_t m = a > b ? a : b, d = a > b ? a - b : b - a;
    return m + table[d < PQLR_CTC_TABLE - 1 ? d : PQLR_CTC_TABLE - 1];
}

/* frame x's logit v as r = ((x_v − max)·m2 + 2^(s2−1)) >> s2, units of 2^-CTC_BITS nats */
static inline int32_t ctc_r(int32_t xv, int32_t xmax, int32_t m2, int32_t s2) {
    return (int32_t)((((int64_t)(xv - xmax)) * m2 + ((int64_t)1 << (s2 - 1))) >> s2);
}

/* The frames a ctc reads: `have` blocks of `f` frames from the ring (the windows (have + Q)·w, …, (1 + Q)·w windows
 * ago), then the window's own. */
typedef struct {
    const int8_t *in, *ring;
    uint32_t c;                         /* windows counted (hostside/graph.py: wraps from 2K − 1 to K) */
    int K, f, w, have, V, Q;
} ctc_frames_t;

static inline const int8_t *ctc_frame(const ctc_frames_t *s, int t) {
    const int pre = s->have * s->f;
    if (t >= pre) return s->in + (t - pre) * s->V;
    const int j = t / s->f;                                     /* block j: (have − j + Q)·w windows ago */
    const uint32_t slot = (s->c - (uint32_t)((s->have - j + s->Q) * s->w)) % (uint32_t)s->K;
    return s->ring + ((int)slot * s->f + t % s->f) * s->V;
}

static void ctc_score(const pqlr_layer_t *L, const int8_t *wts, const ctc_frames_t *fr, int T, int8_t *out,
                      const int8_t *scratch) {
    /* Per keyword sequence: CTC's forward pass over its blank-interleaved states, frame by frame; each frame's
     * log-softmax normaliser lse is a chain of logadds over the channels in order (hostside/graph.py). α is
     * updated from the last state down, so states s − 1 and s − 2 still hold the previous frame's values; state
     * s + 1's previous value (pad_r = 1: a phoneme may repeat, entered again from the blank after it) is kept in
     * `up` before it is overwritten. */
    const int V = L->in_c, C2 = L->out_c - 1, repeats = L->pad_r != 0;
    const int32_t m2 = L->m2, s2 = L->s2;
    const int8_t *table = wts, *seq = wts + PQLR_CTC_TABLE;
    int32_t alpha[PQLR_CTC_MAX_STATES];
    int8_t ext[PQLR_CTC_MAX_STATES];
    int64_t best = INT32_MIN;
    for (; seq[0] > 0; seq += 1 + seq[0]) {
        const int len = seq[0], S = 2 * len + 1;
        if (S > PQLR_CTC_MAX_STATES) break;                 /* model.bin's reader refuses such a row */
        int ok = 1;
        for (int k = 0; k < S; k++) {
            ext[k] = (k & 1) ? seq[1 + k / 2] : 0;
            if ((k & 1) && (ext[k] <= 0 || ext[k] >= V)) ok = 0;   /* likewise: never index outside the frame */
        }
        if (!ok) continue;
        for (int t = 0; t < T; t++) {
            const int8_t *x = ctc_frame(fr, t);
            int32_t xmax = x[0];
            for (int v = 1; v < V; v++) if (x[v] > xmax) xmax = x[v];
            int32_t lse = ctc_r(x[0], xmax, m2, s2);
            for (int v = 1; v < V; v++) lse = ctc_logadd(lse, ctc_r(x[v], xmax, m2, s2), table);
            if (t == 0) {
                for (int k = 0; k < S; k++) alpha[k] = PQLR_CTC_NEG;
                alpha[0] = ctc_r(x[ext[0]], xmax, m2, s2) - lse;
                alpha[1] = ctc_r(x[ext[1]], xmax, m2, s2) - lse;
                continue;
            }
            int32_t up = PQLR_CTC_NEG;                          /* state k + 1's value at the previous frame */
            for (int k = S - 1; k >= 0; k--) {
                int32_t a = alpha[k];
                const int32_t prev = a;
                if (k >= 1) a = ctc_logadd(a, alpha[k - 1], table);
                if (k >= 2 && ext[k] != 0 && ext[k] != ext[k - 2]) a = ctc_logadd(a, alpha[k - 2], table);
                if (repeats && ext[k] != 0 && (k + 2 >= S || ext[k + 2] != ext[k])) a = ctc_logadd(a, up, table);
                alpha[k] = a + ctc_r(x[ext[k]], xmax, m2, s2) - lse;
                up = prev;
            }
        }
        int32_t score = ctc_logadd(alpha[S - 1], alpha[S - 2], table) / len;     /* C's division: toward zero */
        if (score > best) best = score;
    }
    for (int c = 0; c < C2; c++) out[c] = scratch[c];
    out[C2] = pqlr_requant((int32_t)best, L->multiplier, L->shift, L->out_zp, L->act_min, L->act_max);
}

void pqlr_ctc(PQLR_KERNEL_ARGS) {
    TILE_PARAMS(tile, 1);
    (void)bias; (void)mult; (void)shft; (void)c0; (void)n;
    const ctc_frames_t fr = { in, 0, 0, 1, 1, 1, 0, L->in_c, 0 };
    ctc_score(L, wts, &fr, L->in_h * L->in_w, out, scratch);
}

void pqlr_ctc_span(PQLR_KERNEL_ARGS, uint8_t *state) {
    /* state: u32 count c, then the ring of the last K windows' frames Q·f … Q·f + f − 1 (hostside/graph.py) */
    TILE_PARAMS(tile, 1);
    (void)bias; (void)mult; (void)shft; (void)c0; (void)n;
    const int f = L->kh, w = L->sh, B = L->pad_t / L->kh, Q = L->pad_b / L->kh, K = (B + Q) * w, V = L->in_c;
    const int T = L->in_h * L->in_w;
    uint32_t *count = (uint32_t *)(void *)state;             /* the planner aligns it to 4 bytes */
    int8_t *ring = (int8_t *)(state + 4);
    const uint32_t c = *count, seen = c < (uint32_t)K ? c : (uint32_t)K;
    int have = (int)(seen / (uint32_t)w) - Q;
    have = have < 0 ? 0 : (have > B ? B : have);
    const ctc_frames_t fr = { in, ring, c, K, f, w, have, V, Q };
    ctc_score(L, wts, &fr, have * f + T, out, scratch);
    int8_t *dst = ring + (int)(c % (uint32_t)K) * f * V;      /* this window's kept frames, for the next ones */
    const int8_t *src = in + Q * f * V;
    for (int i = 0; i < f * V; i++) dst[i] = src[i];
    *count = c + 1 >= 2 * (uint32_t)K ? (uint32_t)K : c + 1;
}
