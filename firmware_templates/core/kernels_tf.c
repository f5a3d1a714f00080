/* kernels_tf.c — the transformer ops, integer only (hostside/graph.py is their specification and
 * hostside/reference/interpreter.py their bit-exact reference): add (residual or constant operand), layer
 * norm, attention with I-BERT's integer exp and softmax, GELU by table, reshape. Used by both kernel sets;
 * the linear layers around them are the pointwise kernels. */
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
