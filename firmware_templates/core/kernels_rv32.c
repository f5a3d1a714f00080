/* kernels_rv32.c — the RV32IMAC-tuned kernels, with the same signatures as kernels_ref.c and bit-exact
 * with it. These entry points take any shape at run time; the rendered model code calls the same bodies
 * (kernels_rv32.h) with its shapes as constants. Shapes without a tuned body (depthwise kernels other
 * than 3×3 stride 1 'same') use the plain loops at the end of this file. */
#include "kernels_rv32.h"

static void dw_generic(PQLR_KERNEL_ARGS);

void pqlr_conv2d(PQLR_KERNEL_ARGS) {
    conv_body(L, tile, c0, n, in, out, scratch, L->in_h, L->in_w, L->in_c, L->out_h, L->out_w, L->out_c, L->kh,
              L->kw, L->sh, L->sw, L->pad_t, L->pad_l, L->wbits, 0);
}

void pqlr_pwconv2d(PQLR_KERNEL_ARGS) {
    if (L->wbits == 4)
        pw_body(L, tile, c0, n, in, out, scratch, L->in_c, L->out_c, L->out_h * L->out_w, 4, L->inplace, 0);
    else
        pw_body(L, tile, c0, n, in, out, scratch, L->in_c, L->out_c, L->out_h * L->out_w, 8, L->inplace, 0);
}

int pqlr_dw3_applies(const pqlr_layer_t *L) {
    return L->kh == 3 && L->kw == 3 && L->sh == 1 && L->sw == 1 && L->pad_t == 1 && L->pad_l == 1 &&
           L->out_h == L->in_h && L->out_w == L->in_w;
}

int pqlr_dwcol_applies(const pqlr_layer_t *L) {
    return L->in_w == 1 && L->kw == 1 && L->sh == 1 && L->sw == 1 && !L->pad_t && !L->pad_l && !L->pad_b &&
           !L->pad_r && !L->inplace;
}

void pqlr_dwconv2d(PQLR_KERNEL_ARGS) {
    if (pqlr_dwcol_applies(L)) {
        (void)scratch;
        if (L->wbits == 4)
            dwcol_body(L, tile, c0, n, in, out, L->out_h, L->in_c, L->kh, 4);
        else
            dwcol_body(L, tile, c0, n, in, out, L->out_h, L->in_c, L->kh, 8);
        return;
    }
    if (!pqlr_dw3_applies(L)) {
        dw_generic(L, tile, c0, n, in, out, scratch);
        return;
    }
    if (L->wbits == 4)
        dw3_body(L, tile, c0, n, in, out, scratch, L->in_h, L->in_w, L->in_c, 4, L->inplace);
    else
        dw3_body(L, tile, c0, n, in, out, scratch, L->in_h, L->in_w, L->in_c, 8, L->inplace);
}

void pqlr_avgpool(PQLR_KERNEL_ARGS) {
    /* channel by channel: out[c] overwrites input pixel 0 channel c, which only channel c reads */
    (void)tile;
    (void)scratch;
    if (L->out_h * L->out_w > 1) { pqlr_avgpool_windows(L, c0, n, in, out); return; }
    const int P = L->in_h * L->in_w, C = L->in_c;
    pqlr_out_t o = out_of(L);
    int c = c0;
    if (((C | c0 | (int)(uintptr_t)in) & 3) == 0) {
        /* 4 channels per word: x + 128 as unsigned bytes (x ^ 0x80), even and odd bytes in two words of 16-bit
         * lanes, each of which holds the sum of 257 values ≤ 255; Σ (x − zp) = Σ (x + 128) − P·(128 + zp) */
        const uint32_t lanes = 0x00FF00FFu;
        const int32_t fold = P * (128 + L->in_zp);
        for (; c + 4 <= c0 + n; c += 4) {
            const uint32_t *x = (const uint32_t *)(const void *)(in + c);
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int p0 = 0; p0 < P; p0 += 257) {
                const int pe = P - p0 < 257 ? P : p0 + 257;
                uint32_t ev = 0, od = 0;
                int p = p0;
                for (; p + 2 <= pe; p += 2, x += C >> 1) {        /* two pixels a turn */
                    const uint32_t v = x[0] ^ 0x80808080u, u = x[C >> 2] ^ 0x80808080u;
                    ev += (v & lanes) + (u & lanes);
                    od += ((v >> 8) & lanes) + ((u >> 8) & lanes);
                }
                if (p < pe) {
                    const uint32_t v = *x ^ 0x80808080u;
                    ev += v & lanes;
                    od += (v >> 8) & lanes;
                    x += C >> 2;
                }
                a0 += (int32_t)(ev & 0xFFFF); a2 += (int32_t)(ev >> 16);
                a1 += (int32_t)(od & 0xFFFF); a3 += (int32_t)(od >> 16);
            }
            out[c] = rq(a0 - fold, L->multiplier, L->shift, o);
            out[c + 1] = rq(a1 - fold, L->multiplier, L->shift, o);
            out[c + 2] = rq(a2 - fold, L->multiplier, L->shift, o);
            out[c + 3] = rq(a3 - fold, L->multiplier, L->shift, o);
        }
    }
    for (; c < c0 + n; c++) {
        const int8_t *x = in + c;
        int32_t acc = 0;
        for (int p = 0; p < P; p++, x += C) acc += *x;
        acc -= P * L->in_zp;
        out[c] = rq(acc, L->multiplier, L->shift, o);
    }
}

void pqlr_fc(PQLR_KERNEL_ARGS) {
    (void)scratch;
    const int K = L->in_h * L->in_w * L->in_c;
    if (L->wbits == 4)
        fc_body(L, tile, c0, n, in, out, K, 4);
    else
        fc_body(L, tile, c0, n, in, out, K, 8);
}

/* Any depthwise shape: the reference loops (folded bias, padding as zp), with the in-place ring of
 * pad_t + 1 rows (arena pixel stride) that the planner sized. */
static void dw_generic(PQLR_KERNEL_ARGS) {
    TILE_PARAMS(tile, n);
    const int K = L->kh * L->kw;
    const int RB = L->wbits == 4 ? (K + 1) / 2 : K;
    const int W = L->in_w, C = L->in_c, P = L->pad_t, R = P + 1;
    pqlr_out_t o = out_of(L);
    for (int oy = 0; oy < L->out_h; oy++) {
        if (L->inplace)
            for (int x = 0; x < W; x++)
                for (int j = 0; j < n; j++)
                    scratch[((oy % R) * W + x) * C + c0 + j] = in[(oy * W + x) * C + c0 + j];
        for (int ox = 0; ox < L->out_w; ox++) {
            for (int j = 0; j < n; j++) {
                const int c = c0 + j;
                int32_t acc = bias[j];
                for (int ky = 0; ky < L->kh; ky++) {
                    int iy = oy * L->sh + ky - L->pad_t;
                    for (int kx = 0; kx < L->kw; kx++) {
                        int ix = ox * L->sw + kx - L->pad_l;
                        int32_t v = L->in_zp;
                        if (iy >= 0 && iy < L->in_h && ix >= 0 && ix < W)
                            v = (L->inplace && iy <= oy) ? scratch[((iy % R) * W + ix) * C + c]
                                                         : in[(iy * W + ix) * C + c];
                        acc += v * wat(wts + j * RB, ky * L->kw + kx, L->wbits);
                    }
                }
                out[(oy * L->out_w + ox) * L->out_c + c] = rq(acc, mult[j], shft[j], o);
            }
        }
    }
}
