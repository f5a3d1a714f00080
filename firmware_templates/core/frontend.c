/* frontend.c — the fixed-point log-mel/MFCC front end, bit-exact with hostside/data/fixed_frontend.py
 * (which states the arithmetic). Audio streams in one sample at a time; every hop a frame is windowed,
 * transformed (512-point integer FFT), folded into mel bands, logged, optionally DCT'd, and quantised to
 * one int8 row of the model's input. RAM: a frame of samples and the FFT's 512 complex int32. */
#include "pqlr.h"
#include "model.h"

#if PQLR_FRONTEND
#include "frontend_tables.h"

static int16_t ring[PQLR_FE_FRAME];                 /* the last FRAME samples */
static int32_t fft_re[512], fft_im[512];

uint32_t pqlr_frontend_ram_bytes(void) { return sizeof ring + sizeof fft_re + sizeof fft_im; }

static int clz64(uint64_t v) { return v ? __builtin_clzll(v) : 64; }

/* ln(m) in Q16 for m >= 1: top bit, 33-entry log2 table, linear interpolation (see the Python spec) */
static int32_t ln_q16(int64_t m) {
    int e = 63 - clz64((uint64_t)m);
    uint64_t frac = e >= 21 ? ((uint64_t)m >> (e - 21)) : ((uint64_t)m << (21 - e));
    frac &= (1u << 21) - 1;
    uint32_t idx = (uint32_t)(frac >> 16), rem = (uint32_t)(frac & 0xFFFF);
    int64_t lo = pqlr_fe_log2_lut[idx], hi = pqlr_fe_log2_lut[idx + 1];
    int64_t log2 = ((int64_t)e << 16) + lo + (((hi - lo) * (int64_t)rem) >> 16);
    return (int32_t)(((log2 * PQLR_FE_LN2_Q16 + (1 << 15)) >> 16) + PQLR_FE_LN_OFFSET);
}

static unsigned bitrev9(unsigned i) {
    unsigned r = 0;
    for (int b = 0; b < 9; b++) { r = (r << 1) | (i & 1u); i >>= 1; }
    return r;
}

/* one frame (ring holds it, oldest first from `start`) → one int8 row */
static void frame_row(int start, int8_t *row) {
    for (int i = 0; i < 512; i++) { fft_re[i] = 0; fft_im[i] = 0; }
    int idx = start;                                      /* ring position of sample n, without a modulo */
    for (int n = 0; n < PQLR_FE_FRAME; n++) {
        int32_t x = ring[idx];
        if (++idx == PQLR_FE_FRAME) idx = 0;
        fft_re[bitrev9((unsigned)n)] = (int32_t)(((int64_t)x * pqlr_fe_window[n] + (1 << 15)) >> 16);
    }
    for (int size = 2; size <= 512; size <<= 1) {
        int half = size >> 1, step = 512 / size;
        {   /* j = 0: the twiddle is (cos 0, −sin 0) = (2^31 − 1, 0); the terms multiplied by 0 are dropped,
             * which changes nothing in the result */
            const int32_t wr = pqlr_fe_cos[0];
            for (int a = 0; a < 512; a += size) {
                int b = a + half;
                const int32_t br = fft_re[b], bi = fft_im[b];
                int32_t tr = (int32_t)(((int64_t)br * wr + ((int64_t)1 << 30)) >> 31);
                int32_t ti = (int32_t)(((int64_t)bi * wr + ((int64_t)1 << 30)) >> 31);
                int32_t ar = fft_re[a], ai = fft_im[a];
                fft_re[a] = (ar + tr) >> 1; fft_im[a] = (ai + ti) >> 1;
                fft_re[b] = (ar - tr) >> 1; fft_im[b] = (ai - ti) >> 1;
            }
        }
        for (int j = 1; j < half; j++) {
            /* Q31 twiddles, |sin| ≤ 2^31 − 1, so −sin fits an int32: every product below is a 32×32→64
             * multiply (mul + mulh on RV32IM), not a 64×64 one */
            const int32_t wr = pqlr_fe_cos[j * step], wi = -pqlr_fe_sin[j * step];
            for (int a = j; a < 512; a += size) {
                int b = a + half;
                const int32_t br = fft_re[b], bi = fft_im[b];
                int32_t tr = (int32_t)(((int64_t)br * wr - (int64_t)bi * wi + ((int64_t)1 << 30)) >> 31);
                int32_t ti = (int32_t)(((int64_t)br * wi + (int64_t)bi * wr + ((int64_t)1 << 30)) >> 31);
                int32_t ar = fft_re[a], ai = fft_im[a];
                fft_re[a] = (ar + tr) >> 1; fft_im[a] = (ai + ti) >> 1;
                fft_re[b] = (ar - tr) >> 1; fft_im[b] = (ai - ti) >> 1;
            }
        }
    }
    int32_t logmel[PQLR_FE_MELS];
    for (int m = 0; m < PQLR_FE_MELS; m++) {
        int64_t acc = 0;
        int k0 = pqlr_fe_fb_start[m];
        for (int i = 0; i < pqlr_fe_fb_count[m]; i++) {
            int k = k0 + i;
            int64_t p = ((int64_t)fft_re[k] * fft_re[k] + (int64_t)fft_im[k] * fft_im[k]) >> 14;
            acc += p * pqlr_fe_fb_weight[pqlr_fe_fb_first[m] + i];
        }
        logmel[m] = ln_q16((acc >> 15) + PQLR_FE_FLOOR);
    }
    for (int c = 0; c < PQLR_FE_FEATURES; c++) {
        int64_t f;
        if (PQLR_FE_MFCC) {
            int64_t acc = 0;
            for (int m = 0; m < PQLR_FE_MELS; m++) acc += (int64_t)pqlr_fe_dct[c * PQLR_FE_MELS + m] * logmel[m];
            f = (acc + (1 << 14)) >> 15;
        } else {
            f = logmel[c];
        }
        int64_t y = ((f * PQLR_FE_IN_MULT + ((int64_t)1 << (PQLR_FE_IN_SHIFT - 1))) >> PQLR_FE_IN_SHIFT) + PQLR_FE_IN_ZP;
        row[c] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
    }
}

/* Feed `n` samples from next_sample(); writes n_frames int8 rows to features. Samples past the clip
 * length are not needed; a short clip is zero-padded as in the spec. */
int pqlr_frontend_run(int (*next_sample)(int16_t *), int8_t *features) {
    int filled = 0, frames = 0;
    for (int t = 0; t < PQLR_FE_CLIP; t++) {
        int16_t s = 0;
        if (next_sample(&s) != 0) return -1;
        ring[t % PQLR_FE_FRAME] = s;
        filled++;
        if (filled >= PQLR_FE_FRAME && (t + 1 - PQLR_FE_FRAME) % PQLR_FE_HOP == 0 && frames < PQLR_FE_FRAMES) {
            frame_row((t + 1) % PQLR_FE_FRAME, features + frames * PQLR_FE_FEATURES);
            frames++;
        }
    }
    return frames == PQLR_FE_FRAMES ? 0 : -1;
}
#endif
