/* runtime.c — the tile runtime: flash_read(tile) → compute_layer(tile), per-layer counters, and the
 * boot-time check that the model partition holds the model this code was generated for. */
#include "pqlr.h"
#include "platform.h"
#include "model.h"

uint32_t pqlr_crc32_update(uint32_t crc, const void *buf, uint32_t len) {
    const uint8_t *p = (const uint8_t *)buf;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint64_t layer_t0_instret, layer_t0_cycles;
static uint32_t layer_t0_flash;

void pqlr_layer_begin(pqlr_counters_t *cnt) {
    layer_t0_flash = cnt->flash_bytes;
    layer_t0_cycles = platform_cycles();
    layer_t0_instret = platform_instret();
}

void pqlr_layer_end(pqlr_counters_t *cnt, int layer) {
    uint64_t i1 = platform_instret();
    uint64_t c1 = platform_cycles();
    cnt->layer_instret[layer] = (uint32_t)(i1 - layer_t0_instret);
    cnt->layer_cycles[layer] = (uint32_t)(c1 - layer_t0_cycles);
    cnt->layer_flash[layer] = cnt->flash_bytes - layer_t0_flash;
}

const uint8_t *pqlr_tile(int tile_index, uint8_t *tile_buf, pqlr_counters_t *cnt) {
    if (tile_index < 0)
        return tile_buf;                /* a layer without weights */
    const pqlr_tile_t *t = &pqlr_tiles[tile_index];
    cnt->flash_bytes += t->size;
#if PQLR_XIP
    (void)tile_buf;
    return (const uint8_t *)platform_flash_map(t->offset, t->size);
#else
    if (platform_flash_read(t->offset, tile_buf, t->size) != 0)
        return 0;
    return tile_buf;
#endif
}

static uint32_t rd32(const uint8_t *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }

static void copy_str(char *dst, uint32_t n, const char *src) {
    uint32_t i = 0;
    while (src[i] && i + 1 < n) { dst[i] = src[i]; i++; }
    dst[i] = 0;
}

static int fail(char *why, uint32_t why_len, const char *code) { copy_str(why, why_len, code); return -1; }

/* Read n bytes of the model partition at off into dst (through the platform's flash read). */
static int rd_flash(uint32_t off, void *dst, uint32_t n) { return platform_flash_read(off, dst, n); }

#if PQLR_MODEL_SWAP
static int16_t rd16s(const uint8_t *p) { return (int16_t)(p[0] | (p[1] << 8)); }

/* SHA-256 over the header's hashed fields and everything after the header, as hostside/artifact.py defines
 * model_sha256; scratch is the tile buffer (not yet in use at boot). */
static pqlr_sha256_t sha;                  /* boot-time state, kept off the stack (static RAM, reported as .bss) */

static int model_hash(const uint8_t *hdr, uint32_t file_size, uint8_t *scratch, uint32_t scratch_bytes, uint8_t out[32]) {
    pqlr_sha256_init(&sha);
    pqlr_sha256_update(&sha, hdr + 48, PQLR_HEADER_BYTES - 4 - 48);
    for (uint32_t off = PQLR_HEADER_BYTES; off < file_size;) {
        uint32_t n = file_size - off < scratch_bytes ? file_size - off : scratch_bytes;
        if (rd_flash(off, scratch, n) != 0) return -1;
        pqlr_sha256_update(&sha, scratch, n);
        off += n;
    }
    pqlr_sha256_final(&sha, out);
    return 0;
}

/* The partition's architecture CRC (hostside/artifact.py, architecture_crc32), loading the layers'
 * quantisation and the tiles' CRCs on the way; 0 when it is this app's architecture. */
static int load_same_architecture(const uint8_t *hdr, char *why, uint32_t why_len) {
    static const uint16_t hmask[PQLR_HEADER_NOT_ARCH_N][2] = PQLR_HEADER_NOT_ARCH;
    static const uint16_t qmask[PQLR_QUANT_FIELDS_N][2] = PQLR_QUANT_FIELDS;
    static uint8_t h[PQLR_HEADER_BYTES], e[PQLR_LAYER_ENTRY_BYTES];     /* boot-time only: off the stack */
    for (uint32_t i = 0; i < PQLR_HEADER_BYTES; i++) h[i] = hdr[i];
    for (int m = 0; m < PQLR_HEADER_NOT_ARCH_N; m++)
        for (uint32_t i = hmask[m][0]; i < hmask[m][1]; i++) h[i] = 0;
    uint32_t crc = pqlr_crc32_update(0, h, PQLR_HEADER_BYTES);
    if (rd32(hdr + 48) != PQLR_N_LAYERS || rd32(hdr + 56) != PQLR_N_TILES) return fail(why, why_len, "model_architecture");
    uint32_t lt = rd32(hdr + 52), tt = rd32(hdr + 60);
    for (int l = 0; l < PQLR_N_LAYERS; l++) {
        if (rd_flash(lt + (uint32_t)l * PQLR_LAYER_ENTRY_BYTES, e, PQLR_LAYER_ENTRY_BYTES) != 0)
            return fail(why, why_len, "flash_read_failed");
        pqlr_layer_t *L = &pqlr_layers[l];
        L->in_zp = rd16s(e + PQLR_L_IN_ZP), L->out_zp = rd16s(e + PQLR_L_OUT_ZP);
        L->act_min = rd16s(e + PQLR_L_ACT_MIN), L->act_max = rd16s(e + PQLR_L_ACT_MAX);
        L->multiplier = (int32_t)rd32(e + PQLR_L_MULTIPLIER), L->shift = (int32_t)rd32(e + PQLR_L_SHIFT);
        L->in2_zp = rd16s(e + PQLR_L_IN2_ZP);
        L->ra = (int32_t)rd32(e + PQLR_L_RA), L->rb = (int32_t)rd32(e + PQLR_L_RB);
        L->m2 = (int32_t)rd32(e + PQLR_L_M2), L->s2 = (int32_t)rd32(e + PQLR_L_S2);
        for (int m = 0; m < PQLR_QUANT_FIELDS_N; m++)
            for (uint32_t i = qmask[m][0]; i < (uint32_t)qmask[m][0] + qmask[m][1]; i++) e[i] = 0;
        crc = pqlr_crc32_update(crc, e, PQLR_LAYER_ENTRY_BYTES);
    }
    for (int t = 0; t < PQLR_N_TILES; t++) {
        if (rd_flash(tt + (uint32_t)t * PQLR_TILE_ENTRY_BYTES, e, PQLR_TILE_ENTRY_BYTES) != 0)
            return fail(why, why_len, "flash_read_failed");
        pqlr_tiles[t].crc32 = rd32(e + PQLR_TILE_CRC_OFF);
        for (int i = 0; i < 4; i++) e[PQLR_TILE_CRC_OFF + i] = 0;
        crc = pqlr_crc32_update(crc, e, PQLR_TILE_ENTRY_BYTES);
    }
    return crc == PQLR_ARCH_CRC ? 0 : fail(why, why_len, "model_architecture");
}
#endif

/* 0 when the partition holds a model this app runs: with PQLR_MODEL_SWAP any model of this architecture (its
 * quantisation and tile CRCs loaded, its SHA-256 verified), otherwise exactly the model it was generated for.
 * Then every tile's CRC is checked. Otherwise a short reason in why (and the hash found). */
int pqlr_check_model(uint8_t *scratch, uint32_t scratch_bytes, char *why, uint32_t why_len, uint8_t found[32]) {
    uint8_t hdr[PQLR_HEADER_BYTES];
    for (int i = 0; i < 32; i++) found[i] = 0;
    if (rd_flash(0, hdr, sizeof hdr) != 0) return fail(why, why_len, "flash_read_failed");
    if (hdr[0] != 'P' || hdr[1] != 'Q' || hdr[2] != 'L' || hdr[3] != 'R') return fail(why, why_len, "no_model_in_partition");
    if ((hdr[4] | (hdr[5] << 8)) != PQLR_FORMAT_VERSION) return fail(why, why_len, "format_version");
    if (pqlr_crc32_update(0, hdr, PQLR_HEADER_BYTES - 4) != rd32(hdr + PQLR_HEADER_BYTES - 4))
        return fail(why, why_len, "header_crc");
    for (int i = 0; i < 32; i++) found[i] = hdr[16 + i];
    uint32_t file_size = rd32(hdr + 8);
    if (file_size > PQLR_PARTITION_BYTES) return fail(why, why_len, "model_larger_than_partition");
#if PQLR_MODEL_SWAP
    if (load_same_architecture(hdr, why, why_len) != 0) return -1;
    uint8_t digest[32];
    if (model_hash(hdr, file_size, scratch, scratch_bytes, digest) != 0) return fail(why, why_len, "flash_read_failed");
    for (int i = 0; i < 32; i++)
        if (digest[i] != found[i]) return fail(why, why_len, "model_sha256");
    for (int i = 0; i < 32; i++) pqlr_running_sha256[i] = found[i];
#else
    for (int i = 0; i < 32; i++)
        if (found[i] != pqlr_model_sha256[i]) return fail(why, why_len, "model_hash");
#endif
    for (int t = 0; t < PQLR_N_TILES; t++) {
        uint32_t crc = 0, done = 0;
#if PQLR_XIP
        const uint8_t *mapped = (const uint8_t *)platform_flash_map(pqlr_tiles[t].offset, pqlr_tiles[t].size);
        if (!mapped) return fail(why, why_len, "flash_map_failed");
        crc = pqlr_crc32_update(0, mapped, pqlr_tiles[t].size);
        done = pqlr_tiles[t].size;
#endif
        while (done < pqlr_tiles[t].size) {
            uint32_t chunk = pqlr_tiles[t].size - done;
            if (chunk > scratch_bytes) chunk = scratch_bytes;
            if (rd_flash(pqlr_tiles[t].offset + done, scratch, chunk) != 0) return fail(why, why_len, "flash_read_failed");
            crc = pqlr_crc32_update(crc, scratch, chunk);
            done += chunk;
        }
        if (crc != pqlr_tiles[t].crc32) return fail(why, why_len, "tile_crc");
    }
    return 0;
}
