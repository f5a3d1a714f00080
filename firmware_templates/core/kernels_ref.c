/* kernels_ref.c — reference kernels: plain, obviously correct, bit-exact with hostside/reference.
 * Layouts: activations HWC int8; weights per output channel (conv2d [kh][kw][Cin], dwconv2d [kh][kw],
 * pwconv2d/fc [Cin]). Padding taps are skipped, which equals padding with the input zero point. */
#include "pqlr.h"

#define TILE_PARAMS(tile, n)                                          \
    const int32_t *bias = (const int32_t *)(const void *)(tile);      \
    const int32_t *mult = bias + (n);                                 \
    const int32_t *shft = mult + (n);                                 \
    const int8_t *wts = (const int8_t *)(const void *)(shft + (n))

/* bytes of one output channel's K weights */
static int row_bytes(const pqlr_layer_t *L, int K) { return L->wbits == 4 ? (K + 1) / 2 : K; }

/* weight k of a channel's row */
static int32_t wget(const pqlr_layer_t *L, const int8_t *row, int k) {
    if (L->wbits != 4) return row[k];
    uint8_t b = (uint8_t)row[k >> 1];
    int32_t v = (k & 1) ? (b >> 4) : (b & 15);
    return v >= 8 ? v - 16 : v;
}

void pqlr_conv2d(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out) {
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
                    if (iy < 0 || iy >= L->in_h) continue;
                    for (int kx = 0; kx < L->kw; kx++) {
                        int ix = ox * L->sw + kx - L->pad_l;
                        if (ix < 0 || ix >= L->in_w) continue;
                        const int8_t *px = in + (iy * L->in_w + ix) * L->in_c;
                        const int k0 = (ky * L->kw + kx) * L->in_c;
                        for (int ci = 0; ci < L->in_c; ci++)
                            acc += ((int32_t)px[ci] - L->in_zp) * wget(L, w, k0 + ci);
                    }
                }
                out[(oy * L->out_w + ox) * L->out_c + c0 + j] =
                    pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
            }
        }
    }
}

void pqlr_dwconv2d(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out) {
    TILE_PARAMS(tile, n);
    const int K = L->kh * L->kw;
    const int RB = row_bytes(L, K);
    for (int oy = 0; oy < L->out_h; oy++) {
        for (int ox = 0; ox < L->out_w; ox++) {
            for (int j = 0; j < n; j++) {
                const int c = c0 + j;
                int32_t acc = bias[j];
                for (int ky = 0; ky < L->kh; ky++) {
                    int iy = oy * L->sh + ky - L->pad_t;
                    if (iy < 0 || iy >= L->in_h) continue;
                    for (int kx = 0; kx < L->kw; kx++) {
                        int ix = ox * L->sw + kx - L->pad_l;
                        if (ix < 0 || ix >= L->in_w) continue;
                        acc += ((int32_t)in[(iy * L->in_w + ix) * L->in_c + c] - L->in_zp) *
                               wget(L, wts + j * RB, ky * L->kw + kx);
                    }
                }
                out[(oy * L->out_w + ox) * L->out_c + c] =
                    pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
            }
        }
    }
}

void pqlr_pwconv2d(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out) {
    TILE_PARAMS(tile, n);
    const int P = L->out_h * L->out_w;
    for (int p = 0; p < P; p++) {
        const int8_t *px = in + p * L->in_c;
        for (int j = 0; j < n; j++) {
            const int8_t *w = wts + j * row_bytes(L, L->in_c);
            int32_t acc = bias[j];
            for (int ci = 0; ci < L->in_c; ci++)
                acc += ((int32_t)px[ci] - L->in_zp) * wget(L, w, ci);
            out[p * L->out_c + c0 + j] = pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
        }
    }
}

void pqlr_avgpool(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out) {
    (void)tile;
    const int P = L->in_h * L->in_w;
    for (int c = c0; c < c0 + n; c++) {
        int32_t acc = 0;
        for (int p = 0; p < P; p++)
            acc += (int32_t)in[p * L->in_c + c] - L->in_zp;
        out[c] = pqlr_requant(acc, L->multiplier, L->shift, L->out_zp, L->act_min, L->act_max);
    }
}

void pqlr_fc(const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, int8_t *out) {
    TILE_PARAMS(tile, n);
    const int K = L->in_h * L->in_w * L->in_c;
    for (int j = 0; j < n; j++) {
        const int8_t *w = wts + j * row_bytes(L, K);
        int32_t acc = bias[j];
        for (int k = 0; k < K; k++)
            acc += ((int32_t)in[k] - L->in_zp) * wget(L, w, k);
        out[c0 + j] = pqlr_requant(acc, mult[j], shft[j], L->out_zp, L->act_min, L->act_max);
    }
}
