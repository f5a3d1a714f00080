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

/* 0 when the partition holds this model; otherwise a short reason in why (and the hash found). */
int pqlr_check_model(uint8_t *scratch, uint32_t scratch_bytes, char *why, uint32_t why_len, uint8_t found[32]) {
    uint8_t hdr[PQLR_HEADER_BYTES];
    for (int i = 0; i < 32; i++) found[i] = 0;
    if (platform_flash_read(0, hdr, sizeof hdr) != 0) { copy_str(why, why_len, "flash_read_failed"); return -1; }
    if (hdr[0] != 'P' || hdr[1] != 'Q' || hdr[2] != 'L' || hdr[3] != 'R') {
        copy_str(why, why_len, "no_model_in_partition"); return -1;
    }
    if ((hdr[4] | (hdr[5] << 8)) != PQLR_FORMAT_VERSION) { copy_str(why, why_len, "format_version"); return -1; }
    if (pqlr_crc32_update(0, hdr, PQLR_HEADER_BYTES - 4) != rd32(hdr + PQLR_HEADER_BYTES - 4)) {
        copy_str(why, why_len, "header_crc"); return -1;
    }
    for (int i = 0; i < 32; i++) found[i] = hdr[16 + i];
    for (int i = 0; i < 32; i++)
        if (found[i] != pqlr_model_sha256[i]) { copy_str(why, why_len, "model_hash"); return -1; }
    if (rd32(hdr + 8) > PQLR_PARTITION_BYTES) { copy_str(why, why_len, "model_larger_than_partition"); return -1; }
    for (int t = 0; t < PQLR_N_TILES; t++) {
        uint32_t crc = 0, done = 0;
#if PQLR_XIP
        const uint8_t *mapped = (const uint8_t *)platform_flash_map(pqlr_tiles[t].offset, pqlr_tiles[t].size);
        if (!mapped) { copy_str(why, why_len, "flash_map_failed"); return -1; }
        crc = pqlr_crc32_update(0, mapped, pqlr_tiles[t].size);
        done = pqlr_tiles[t].size;
#endif
        while (done < pqlr_tiles[t].size) {
            uint32_t chunk = pqlr_tiles[t].size - done;
            if (chunk > scratch_bytes) chunk = scratch_bytes;
            if (platform_flash_read(pqlr_tiles[t].offset + done, scratch, chunk) != 0) {
                copy_str(why, why_len, "flash_read_failed"); return -1;
            }
            crc = pqlr_crc32_update(crc, scratch, chunk);
            done += chunk;
        }
        if (crc != pqlr_tiles[t].crc32) { copy_str(why, why_len, "tile_crc"); return -1; }
    }
    return 0;
}
