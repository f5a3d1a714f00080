/* kernels_ref.c — reference kernels: plain, obviously correct, bit-exact with hostside/reference.
 * Layouts: activations HWC int8; weights per output channel (conv2d [kh][kw][Cin], dwconv2d [kh][kw],
 * pwconv2d/fc [Cin]). Tiles store the bias folded with the input zero point (b − zp·Σw), so
 * acc = b' + Σ x·w, and a padding tap counts as the value zp. */
#include "pqlr.h"

/* bytes of one output channel's K weights */
static int row_bytes(const pqlr_layer_t *L, int K) { return L->wbits == 4 ? (K + 1) / 2 : K; }

/* weight k of a channel's row */
static int32_t wget(const pqlr_layer_t *L, const int8_t *row, int k) {
    if (L->wbits != 4) return row[k];
    uint8_t b = (uint8_t)row[k >> 1];
    int32_t v = (k & 1) ? (b >> 4) : (b & 15);
    return v >= 8 ? v - 16 : v;
}

void pqlr_conv2d(PQLR_KERNEL_ARGS) {
    (void)scratch;
    TILE_PARAMS(tile, n);
    const int K = L->kh * L->kw * L->in_c;
    const int RB = row_bytes(L, K);
    for (int oy = 0; oy < L->out_h; oy++) {
        for (int ox = 0; ox < L->out_w; ox++) {
            for (int j = 0; j < n; j++) {
                const int8_t *w = wts + j * RB;
                int32_t acc = bias[j];
                for (int ky = 0; ky < L->kh; ky++) {
                    int iy = oy * L->sh + ky - L->pad_t;
                    for (int kx = 0; kx < L->kw; kx++) {
                        int ix = ox * L->sw + kx - L->pad_l;
                        int inside = iy >= 0 && iy < L->in_h && ix >= 0 && ix < L->in_w;
                        const int8_t *px = in + (iy * L->in_w + ix) * L->in_c;
                        const int k0 = (ky * L->kw + kx) * L->in_c;
                        for (int ci = 0; ci < L->in_c; ci++)
                            acc += (inside ? (int32_t)px[ci] : L->in_zp) * wget(L, w, k0 + ci);
                    }
                }
                out[(oy * L->out_w + ox) * L->out_c + c0 + j] =
                    pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
            }
        }
    }
}

void pqlr_dwconv2d(PQLR_KERNEL_ARGS) {
    TILE_PARAMS(tile, n);
    const int K = L->kh * L->kw;
    const int RB = row_bytes(L, K);
    if (!L->inplace) {
        for (int oy = 0; oy < L->out_h; oy++) {
            for (int ox = 0; ox < L->out_w; ox++) {
                for (int j = 0; j < n; j++) {
                    const int c = c0 + j;
                    int32_t acc = bias[j];
                    for (int ky = 0; ky < L->kh; ky++) {
                        int iy = oy * L->sh + ky - L->pad_t;
                        for (int kx = 0; kx < L->kw; kx++) {
                            int ix = ox * L->sw + kx - L->pad_l;
                            int inside = iy >= 0 && iy < L->in_h && ix >= 0 && ix < L->in_w;
                            int32_t v = inside ? in[(iy * L->in_w + ix) * L->in_c + c] : L->in_zp;
                            acc += v * wget(L, wts + j * RB, ky * L->kw + kx);
                        }
                    }
                    out[(oy * L->out_w + ox) * L->out_c + c] =
                        pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
                }
            }
        }
        return;
    }
    /* In place (stride 1, odd kernel, 'same'): before output row y overwrites input row y, the input rows
     * y−P … y are kept in a ring of P+1 rows (this tile's channels only); rows below y are still intact. */
    const int P = L->pad_t, R = P + 1, W = L->in_w, C = L->in_c;
    for (int y = 0; y < L->out_h; y++) {
        int8_t *slot = scratch + (y % R) * W * C;       /* ring rows keep the arena's pixel stride */
        for (int x = 0; x < W; x++)
            for (int j = 0; j < n; j++)
                slot[x * C + c0 + j] = in[(y * W + x) * C + c0 + j];
        for (int x = 0; x < W; x++) {
            for (int j = 0; j < n; j++) {
                int32_t acc = bias[j];
                for (int ky = 0; ky < L->kh; ky++) {
                    int iy = y + ky - P;
                    for (int kx = 0; kx < L->kw; kx++) {
                        int ix = x + kx - L->pad_l;
                        int32_t v = L->in_zp;
                        if (iy >= 0 && iy < L->in_h && ix >= 0 && ix < W)
                            v = iy <= y ? scratch[((iy % R) * W + ix) * C + c0 + j] : in[(iy * W + ix) * C + c0 + j];
                        acc += v * wget(L, wts + j * RB, ky * L->kw + kx);
                    }
                }
                out[(y * W + x) * C + c0 + j] = pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
            }
        }
    }
}

void pqlr_pwconv2d(PQLR_KERNEL_ARGS) {
    TILE_PARAMS(tile, n);
    const int P = L->out_h * L->out_w;
    for (int p = 0; p < P; p++) {
        const int8_t *px = in + p * L->in_c;
        /* in place (one tile, Cout <= Cin): gather the pixel's outputs, then overwrite the consumed pixel */
        int8_t *dst = L->inplace ? scratch : out + p * L->out_c + c0;
        for (int j = 0; j < n; j++) {
            const int8_t *w = wts + j * row_bytes(L, L->in_c);
            int32_t acc = bias[j];
            for (int ci = 0; ci < L->in_c; ci++)
                acc += (int32_t)px[ci] * wget(L, w, ci);
            dst[j] = pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
        }
        if (L->inplace)
            for (int j = 0; j < n; j++) out[p * L->out_c + c0 + j] = scratch[j];
    }
}

void pqlr_avgpool(PQLR_KERNEL_ARGS) {
    /* channel by channel: out[c] overwrites input pixel 0 channel c, which only channel c reads */
    (void)tile;
    (void)scratch;
    if (L->out_h * L->out_w > 1) { pqlr_avgpool_windows(L, c0, n, in, out); return; }
    const int P = L->in_h * L->in_w;
    for (int c = c0; c < c0 + n; c++) {
        int32_t acc = 0;
        for (int p = 0; p < P; p++)
            acc += (int32_t)in[p * L->in_c + c] - L->in_zp;
        out[c] = pqlr_requant(acc, L->multiplier, L->shift, L->out_zp, L->act_min, L->act_max);
    }
}

void pqlr_fc(PQLR_KERNEL_ARGS) {
    (void)scratch;
    TILE_PARAMS(tile, n);
    const int K = L->in_h * L->in_w * L->in_c;
    for (int j = 0; j < n; j++) {
        const int8_t *w = wts + j * row_bytes(L, K);
        int32_t acc = bias[j];
        for (int k = 0; k < K; k++)
            acc += (int32_t)in[k] * wget(L, w, k);
        out[c0 + j] = pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
    }
}
