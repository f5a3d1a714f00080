/* The PSA hash API, SHA-256 only, on pqlr's SHA-256 (pqlr's offline ESP-IDF build, tools/idf_offline). */
#include <string.h>
#include "psa/crypto.h"
#include "pqlr_sha256.h"

_Static_assert(sizeof(pqlr_sha256_t) <= sizeof(((psa_hash_operation_t *)0)->state), "psa_hash_operation_t too small");
#define SHA(op) ((pqlr_sha256_t *)(void *)(op)->state)

psa_status_t psa_crypto_init(void) { return PSA_SUCCESS; }

psa_status_t psa_hash_setup(psa_hash_operation_t *op, psa_algorithm_t alg) {
    if (op == NULL) return PSA_ERROR_INVALID_ARGUMENT;
    if (op->alg != 0) return PSA_ERROR_BAD_STATE;
    if (alg != PSA_ALG_SHA_256) return PSA_ERROR_NOT_SUPPORTED;
    op->alg = alg;
    pqlr_sha256_init(SHA(op));
    return PSA_SUCCESS;
}

psa_status_t psa_hash_update(psa_hash_operation_t *op, const uint8_t *in, size_t n) {
    if (op == NULL || op->alg == 0) return PSA_ERROR_BAD_STATE;
    pqlr_sha256_update(SHA(op), in, (uint32_t)n);
    return PSA_SUCCESS;
}

psa_status_t psa_hash_finish(psa_hash_operation_t *op, uint8_t *hash, size_t size, size_t *len) {
    if (op == NULL || op->alg == 0) return PSA_ERROR_BAD_STATE;
    if (size < 32) return PSA_ERROR_BUFFER_TOO_SMALL;
    pqlr_sha256_final(SHA(op), hash);
    if (len) *len = 32;
    memset(op, 0, sizeof *op);
    return PSA_SUCCESS;
}

psa_status_t psa_hash_abort(psa_hash_operation_t *op) {
    if (op) memset(op, 0, sizeof *op);
    return PSA_SUCCESS;
}
