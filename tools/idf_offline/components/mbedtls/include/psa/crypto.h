/* The PSA Crypto hash API, SHA-256 only: pqlr's offline ESP-IDF build (tools/idf_offline). Not mbedTLS. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef int32_t psa_status_t;
typedef uint32_t psa_algorithm_t;

#define PSA_SUCCESS ((psa_status_t)0)
#define PSA_ERROR_NOT_SUPPORTED ((psa_status_t)-134)
#define PSA_ERROR_INVALID_ARGUMENT ((psa_status_t)-135)
#define PSA_ERROR_BAD_STATE ((psa_status_t)-137)
#define PSA_ERROR_BUFFER_TOO_SMALL ((psa_status_t)-138)

#define PSA_ALG_SHA_256 ((psa_algorithm_t)0x02000009)
#define PSA_ALG_SHA_384 ((psa_algorithm_t)0x0200000a)
#define PSA_ALG_SHA_512 ((psa_algorithm_t)0x0200000b)
#define PSA_HASH_LENGTH(alg) ((alg) == PSA_ALG_SHA_256 ? 32u : (alg) == PSA_ALG_SHA_384 ? 48u : \
                              (alg) == PSA_ALG_SHA_512 ? 64u : 0u)
#define PSA_HASH_MAX_SIZE 64

typedef struct {
    psa_algorithm_t alg;      /* 0: not set up */
    uint64_t state[14];       /* a pqlr_sha256_t (firmware_templates/core/pqlr_sha256.h); size checked in psa_sha256.c */
} psa_hash_operation_t;

#define PSA_HASH_OPERATION_INIT {0}
static inline psa_hash_operation_t psa_hash_operation_init(void) {
    psa_hash_operation_t op = PSA_HASH_OPERATION_INIT;
    return op;
}

psa_status_t psa_crypto_init(void);
psa_status_t psa_hash_setup(psa_hash_operation_t *op, psa_algorithm_t alg);
psa_status_t psa_hash_update(psa_hash_operation_t *op, const uint8_t *input, size_t input_length);
psa_status_t psa_hash_finish(psa_hash_operation_t *op, uint8_t *hash, size_t hash_size, size_t *hash_length);
psa_status_t psa_hash_abort(psa_hash_operation_t *op);
