/* 1- and 2-byte __atomic_* library calls for GCC 12 on RV32IMAC (pqlr's offline ESP-IDF build).
 * Each operation is a compare-and-swap loop on the aligned 32-bit word that holds the value; GCC inlines the
 * 32-bit CAS as lr.w/sc.w (the A extension), so these are atomic against interrupts and the other hart. */
#include <stdbool.h>
#include <stdint.h>

static inline volatile uint32_t *word_of(volatile void *p, unsigned *shift) {
    uintptr_t a = (uintptr_t)p;
    *shift = (unsigned)(a & 3u) * 8u;      /* little-endian */
    return (volatile uint32_t *)(a & ~(uintptr_t)3u);
}

/* Replace the field (width mask at shift) in a word by f(old field), atomically; return the old field. */
#define UPDATE(T, MASK, p, NEWEXPR)                                                            \
    unsigned shift;                                                                            \
    volatile uint32_t *w = word_of((p), &shift);                                               \
    uint32_t old = __atomic_load_n(w, __ATOMIC_RELAXED), nw;                                   \
    T cur;                                                                                     \
    do {                                                                                       \
        cur = (T)(old >> shift);                                                               \
        T next = (T)(NEWEXPR);                                                                 \
        nw = (old & ~((uint32_t)(MASK) << shift)) | ((uint32_t)(next & (MASK)) << shift);      \
    } while (!__atomic_compare_exchange_n(w, &old, nw, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)); \
    (void)cur

#define DEFINE(N, T, MASK)                                                                      \
    T pqlr_load_##N(const volatile void *p, int m) __asm__("__atomic_load_" #N);                \
    T pqlr_load_##N(const volatile void *p, int m) {                                           \
        (void)m;                                                                               \
        unsigned shift;                                                                        \
        volatile uint32_t *w = word_of((volatile void *)p, &shift);                            \
        return (T)(__atomic_load_n(w, __ATOMIC_SEQ_CST) >> shift);                             \
    }                                                                                          \
    void pqlr_store_##N(volatile void *p, T v, int m) __asm__("__atomic_store_" #N);           \
    void pqlr_store_##N(volatile void *p, T v, int m) { (void)m; UPDATE(T, MASK, p, v); }      \
    T pqlr_exchange_##N(volatile void *p, T v, int m) __asm__("__atomic_exchange_" #N);        \
    T pqlr_exchange_##N(volatile void *p, T v, int m) { (void)m; UPDATE(T, MASK, p, v); return cur; } \
    bool pqlr_cas_##N(volatile void *p, void *expected, T desired, bool weak, int s, int f)    \
        __asm__("__atomic_compare_exchange_" #N);                                              \
    bool pqlr_cas_##N(volatile void *p, void *expected, T desired, bool weak, int s, int f) {  \
        (void)weak, (void)s, (void)f;                                                          \
        T want = *(T *)expected;                                                               \
        unsigned shift;                                                                        \
        volatile uint32_t *w = word_of(p, &shift);                                             \
        uint32_t old = __atomic_load_n(w, __ATOMIC_RELAXED);                                   \
        for (;;) {                                                                             \
            T cur = (T)(old >> shift);                                                         \
            if (cur != want) { *(T *)expected = cur; return false; }                           \
            uint32_t nw = (old & ~((uint32_t)(MASK) << shift)) | ((uint32_t)(desired & (MASK)) << shift); \
            if (__atomic_compare_exchange_n(w, &old, nw, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return true; \
        }                                                                                      \
    }                                                                                          \
    OP(N, T, MASK, add, cur + v) OP(N, T, MASK, sub, cur - v) OP(N, T, MASK, and, cur & v)     \
    OP(N, T, MASK, or, cur | v) OP(N, T, MASK, xor, cur ^ v) OP(N, T, MASK, nand, ~(cur & v))

#define OP(N, T, MASK, NAME, EXPR)                                                              \
    T pqlr_fetch_##NAME##_##N(volatile void *p, T v, int m) __asm__("__atomic_fetch_" #NAME "_" #N); \
    T pqlr_fetch_##NAME##_##N(volatile void *p, T v, int m) { (void)m; UPDATE(T, MASK, p, EXPR); return cur; } \
    T pqlr_##NAME##_fetch_##N(volatile void *p, T v, int m) __asm__("__atomic_" #NAME "_fetch_" #N); \
    T pqlr_##NAME##_fetch_##N(volatile void *p, T v, int m) { (void)m; UPDATE(T, MASK, p, EXPR); return (T)(EXPR); }

DEFINE(1, uint8_t, 0xFFu)
DEFINE(2, uint16_t, 0xFFFFu)
