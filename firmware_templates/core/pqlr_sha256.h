/* pqlr_sha256.h — SHA-256 (FIPS 180-4), sha256.c. Self-contained (stdint only): the firmware checks model.bin's
 * hash with it, and pqlr's offline ESP-IDF build (tools/idf_offline) puts the PSA hash API on top of it. */
#ifndef PQLR_SHA256_H
#define PQLR_SHA256_H
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    uint32_t used;
} pqlr_sha256_t;

void pqlr_sha256_init(pqlr_sha256_t *s);
void pqlr_sha256_update(pqlr_sha256_t *s, const void *data, uint32_t n);
void pqlr_sha256_final(pqlr_sha256_t *s, uint8_t out[32]);

#endif
