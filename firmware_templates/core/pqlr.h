/* pqlr.h — portable core: layer/tile descriptors, kernels, tile runtime, telemetry. C99, no libc needed. */
#ifndef PQLR_H
#define PQLR_H
#include <stdint.h>
#include <stddef.h>
#include "model.h"              /* generated: this model's sizes, and PQLR_MODEL_SWAP / PQLR_MODEL_CONST */

#define PQLR_FW_VERSION "0.1.0"
#define PQLR_PROTO_VERSION 2
#define PQLR_MAX_LAYERS 128     /* per-layer counters (hostside/codegen/render.py refuses bigger models) */

enum { PQLR_OP_CONV2D = 1, PQLR_OP_DWCONV2D = 2, PQLR_OP_PWCONV2D = 3, PQLR_OP_AVGPOOL = 4, PQLR_OP_FC = 5,
       PQLR_OP_ADD = 6, PQLR_OP_LAYERNORM = 7, PQLR_OP_ATTENTION = 8, PQLR_OP_GELU = 9, PQLR_OP_RESHAPE = 10,
       PQLR_OP_STREAM = 11, PQLR_OP_LUT = 12, PQLR_OP_MEANPOOL = 13, PQLR_OP_SOFTMAX = 14,
       PQLR_OP_MAXPOOL = 15, PQLR_OP_QADD = 16, PQLR_OP_CTC = 17 };

/* Constants of the transformer ops (hostside/graph.py states the arithmetic and derives them). */
#define PQLR_LN_BITS 7          /* layer norm: (x − mean)/std in units of 2^-7 */
#define PQLR_EXP_LN2 709        /* ⌊ln2 · 2^10⌋: the integer exp works in units of 2^-10 */
#define PQLR_EXP_B 1385         /* I-BERT's exp polynomial (p + b)² + c, in those units */
#define PQLR_EXP_C 1006164
#define PQLR_PROB_BITS 12       /* softmax probabilities in units of 2^-12 */
#define PQLR_INV_BITS 46        /* 1/Σe as ⌊2^46 / Σe⌋ */
/* The ctc op (the wake word's phoneme score; hostside/graph.py derives these, tests/test_ctc_op.py compares) */
#define PQLR_CTC_TABLE 312      /* entries of the logadd table at the start of the layer's row */
#define PQLR_CTC_NEG (-(1 << 28))   /* log 0 */
#define PQLR_CTC_MAX_STATES 65  /* 2·32 + 1: keyword sequences of at most 32 phonemes */

typedef struct {
    uint16_t in_h, in_w, in_c, out_h, out_w, out_c;
    uint16_t kh, kw, sh, sw, pad_t, pad_l, pad_b, pad_r;    /* 16-bit: pools over 256+ rows or tokens */
    int16_t in_zp, out_zp, act_min, act_max;
    int32_t multiplier, shift;          /* average pool, add, attention; other layers carry them per channel in tiles */
    uint8_t wbits;                      /* 8, or 4: two weights per byte, low nibble first */
    uint8_t inplace;                    /* 1: the output overwrites the input (planner-checked legal) */
    int32_t ra, rb;                     /* add: operand multipliers */
    int32_t m2, s2;                     /* attention: logits → units of 2^-10 */
    int16_t in2_zp;                     /* add: the second operand's zero point */
    int16_t skip;                       /* add, ctc: >= 0 when the second operand is a tensor (passed as `scratch`) */
    uint16_t heads;                     /* attention */
    uint8_t round_twice;                /* 1: TFLite's double rounding (imported models; hostside/graph.py) */
} pqlr_layer_t;

typedef struct {
    uint32_t offset;                    /* in the model partition */
    uint32_t size;
    uint32_t crc32;
    uint16_t layer, ch_start, ch_count;
} pqlr_tile_t;

typedef struct {
    uint64_t instret, cycles;           /* whole inference */
    uint32_t flash_bytes;
    uint32_t layer_instret[PQLR_MAX_LAYERS];
    uint32_t layer_cycles[PQLR_MAX_LAYERS];
    uint32_t layer_flash[PQLR_MAX_LAYERS];
} pqlr_counters_t;

/* Kernels: compute output channels [c0, c0+n) of one layer from one tile.
 * A tile holds int32 bias[n], int32 multiplier[n], uint8 shift[n] (padded to 4), then n rows of weights: K int8, or
 * ceil(K/2) bytes of int4 (weight 2j in the low nibble of byte j, 2j+1 in the high nibble).
 * TILE_PARAMS names those parts (bias, mult, shft, wts); every kernel set uses this one definition. */
#define TILE_PARAMS(tile, n)                                          \
    const int32_t *bias = (const int32_t *)(const void *)(tile);      \
    const int32_t *mult = bias + (n);                                 \
    const uint8_t *shft = (const uint8_t *)(mult + (n));              \
    const int8_t *wts = (const int8_t *)(shft + (((n) + 3) & ~3))
/* `scratch` is the layer's temporary in the arena (in-place depthwise: a ring of input rows; in-place
 * pointwise: one pixel's outputs; attention: 2T + hd int32), or, for an add of two tensors, the second tensor.
 * When L->inplace, in == out. An add with a constant operand, and a gelu, get their constants (pixel rows,
 * the 256-entry table) as the tile's rows; their bias/multiplier/shift are zero. */
#define PQLR_KERNEL_ARGS const pqlr_layer_t *L, const uint8_t *tile, int c0, int n, const int8_t *in, \
                         int8_t *out, int8_t *scratch
void pqlr_conv2d(PQLR_KERNEL_ARGS);
void pqlr_dwconv2d(PQLR_KERNEL_ARGS);
void pqlr_pwconv2d(PQLR_KERNEL_ARGS);
void pqlr_avgpool(PQLR_KERNEL_ARGS);
/* An average pool over windows (out_h × out_w > 1; kernels_tf.c, for both kernel sets): output pixel by pixel, each
 * channel's window summed before it is written, so in place is safe (a window's pixels come at or after its own). */
void pqlr_avgpool_windows(const pqlr_layer_t *L, int c0, int n, const int8_t *in, int8_t *out);
void pqlr_fc(PQLR_KERNEL_ARGS);
/* transformer ops (kernels_tf.c, shared by both kernel sets) */
void pqlr_add(PQLR_KERNEL_ARGS);
void pqlr_layernorm(PQLR_KERNEL_ARGS);
void pqlr_attention(PQLR_KERNEL_ARGS);
void pqlr_gelu(PQLR_KERNEL_ARGS);
void pqlr_reshape(PQLR_KERNEL_ARGS);
/* streaming (imported models): `out` is the stream's persistent rows, state ‖ input; pqlr_stream shifts the
 * state by the input's rows and appends the input. pqlr_lut: y = table[x + 128] (the tile's one row). */
void pqlr_stream(PQLR_KERNEL_ARGS);
void pqlr_lut(PQLR_KERNEL_ARGS);
/* TFLite's AVERAGE_POOL_2D over the whole map (rounded division, input's quantisation) and int8 SOFTMAX (gemmlowp
 * fixed point: multiplier = input multiplier, shift = its left shift, m2 = diff_min); imported models. */
void pqlr_meanpool(PQLR_KERNEL_ARGS);
void pqlr_softmax(PQLR_KERNEL_ARGS);
/* TFLite's MAX_POOL_2D (padded taps skipped) and int8 ADD (operands ·2^20, three double-rounded multipliers:
 * ra/m2 for the first, rb/s2 for the second, multiplier/shift for the sum); the second operand as in pqlr_add. */
void pqlr_maxpool(PQLR_KERNEL_ARGS);
void pqlr_qadd(PQLR_KERNEL_ARGS);
/* The wake word's phoneme score (hostside/graph.py, ctc): `in` the phoneme head's per-frame logits, `scratch` the
 * classifier's logits (copied to out[0 … C2−1]), the tile's one row the logadd table and the keyword sequences;
 * out[C2] the best sequence's log score per phoneme; pad_r = 1: each phoneme may be said as several spikes with
 * blanks between. Not in place. */
void pqlr_ctc(PQLR_KERNEL_ARGS);
/* The same over a span (a ctc whose pad_t > 0): kh frames of earlier windows (pad_b frames into each: its centre),
 * kept in `state` (the layer's persistent bytes in the arena: a u32 count, then the ring) between inferences, then
 * the window's own. */
void pqlr_ctc_span(PQLR_KERNEL_ARGS, uint8_t *state);
/* Load every stream layer's initial state (its tiles) into its rows: at boot, after the arena is painted. */
int pqlr_model_reset(int8_t *arena, uint8_t *tile_buf, pqlr_counters_t *cnt);

#if PQLR_DOUBLE_ROUNDING
/* The layer running now rounds twice (set by pqlr_model_run from pqlr_layer_t.round_twice). Only models
 * imported with TFLite's rounding have this: others compile without the test. */
extern uint8_t pqlr_round_twice;
#endif

/* TFLite's default MultiplyByQuantizedMultiplier: gemmlowp's SaturatingRoundingDoublingHighMul of acc·2^left by M,
 * then RoundingDivideByPOT by right (left = max(0, 31 − s), right = max(0, s − 31)); hostside/graph.py's
 * double_round, bit for bit. For M ≥ 0 (always, here) the high multiply's nudge-and-truncate equals
 * floor((x·M + 2^30) / 2^31), one 64-bit add and shift; the division by 2^right is gemmlowp's, in int32. */
static inline int32_t pqlr_mul_twice(int32_t acc, int32_t m, int32_t s) {
    int32_t left = s < 31 ? 31 - s : 0, right = s > 31 ? s - 31 : 0;
    int32_t x = (int32_t)((uint32_t)acc << left);
    int32_t hi = (int32_t)(((int64_t)x * m + ((int64_t)1 << 30)) >> 31);
    int32_t mask = (int32_t)((1u << right) - 1u);
    int32_t rem = hi & mask, thr = (mask >> 1) + (hi < 0);
    return (hi >> right) + (rem > thr);
}

/* y = clamp(((acc·M + 2^(s−1)) >> s) + zp): the one requantisation rule (hostside/graph.py). */
static inline int8_t pqlr_requant(int32_t acc, int32_t m, int32_t s, int32_t zp, int32_t lo, int32_t hi) {
#if PQLR_DOUBLE_ROUNDING
    if (pqlr_round_twice) {
        int32_t y = pqlr_mul_twice(acc, m, s) + zp;
        return (int8_t)(y < lo ? lo : (y > hi ? hi : y));
    }
#endif
    int64_t p = (int64_t)acc * (int64_t)m + ((int64_t)1 << (s - 1));
    int32_t y = (int32_t)(p >> s) + zp;   /* GCC: >> on signed is arithmetic */
    return (int8_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* CRC-32 (IEEE, the same as zlib.crc32). */
uint32_t pqlr_crc32_update(uint32_t crc, const void *buf, uint32_t len);

#include "pqlr_sha256.h"       /* SHA-256 (sha256.c): the boot-time check of model.bin's hash */

/* Tile runtime (runtime.c). */
/* The tile's bytes: read into tile_buf (tiled plans) or mapped in flash (xip plans); NULL on a flash error.
 * A layer without weights passes -1 and gets tile_buf back, unread. */
const uint8_t *pqlr_tile(int tile_index, uint8_t *tile_buf, pqlr_counters_t *cnt);
void pqlr_layer_begin(pqlr_counters_t *cnt);
void pqlr_layer_end(pqlr_counters_t *cnt, int layer);
int pqlr_check_model(uint8_t *scratch, uint32_t scratch_bytes, char *why, uint32_t why_len, uint8_t found[32]);

/* Generated per model (model.c). With PQLR_MODEL_SWAP the layers' quantisation and the tiles' CRCs are
 * loaded from the model partition at boot (pqlr_check_model), so they live in RAM. */
extern PQLR_MODEL_CONST pqlr_layer_t pqlr_layers[];
extern PQLR_MODEL_CONST pqlr_tile_t pqlr_tiles[];
extern const uint8_t pqlr_model_sha256[32];
extern uint8_t pqlr_running_sha256[32];     /* the model the app runs: pqlr_model_sha256, or the one loaded */
extern const char pqlr_board_name[];
extern const uint32_t pqlr_out_offset[];
extern const uint32_t pqlr_out_bytes[];
/* Run the model; stop_after >= 0 stops after that layer (for dumps), -1 runs it all. 0, or -1 on a flash error. */
int pqlr_model_run(int8_t *arena, uint8_t *tile_buf, pqlr_counters_t *cnt, int stop_after);

/* Telemetry encoder (telemetry.c): "@pqlr1 TYPE k=v ... *crc32hex\n", CRC-32 over the text between
 * '@' and ' *'. */
void tm_begin(const char *type);
void tm_str(const char *key, const char *value);
void tm_u64(const char *key, uint64_t v);
void tm_i8_list(const char *key, const int8_t *v, int n);
void tm_u32_list(const char *key, const uint32_t *v, int n);
void tm_hex(const char *key, const uint8_t *v, int n);
void tm_hex_long(const char *key, const uint8_t *v, uint32_t n);
void tm_end(void);

/* The portable application loop (app.c): handshake, model check, inference commands. */
void pqlr_app(void);
/* The fixed-point front end (frontend.c): int16 samples from next_sample() → the model's int8 input. */
int pqlr_frontend_run(int (*next_sample)(int16_t *), int8_t *features);
uint32_t pqlr_frontend_ram_bytes(void);
/* The MLPerf Tiny host protocol (mlperf.c), built instead when PQLR_MLPERF is 1. */
void pqlr_mlperf_app(int model_ok);

#endif
