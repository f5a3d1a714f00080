/* telemetry.c — protocol v1 encoder: "@pqlr1 TYPE k=v k=v ... *XXXXXXXX\n" where XXXXXXXX is the
 * CRC-32 (zlib) of the text between '@' and " *", in lower-case hex. Lists are comma-separated. */
#include "pqlr.h"
#include "platform.h"

static char line[160];
static uint32_t used;
static uint32_t crc;

static void flush(void) {
    if (used) platform_serial_write(line, used);
    used = 0;
}

static void put(char c, int in_crc) {
    if (in_crc) crc = pqlr_crc32_update(crc, &c, 1);
    line[used++] = c;
    if (used == sizeof line) flush();
}

static void puts_(const char *s) { while (*s) put(*s++, 1); }

static void put_u64(uint64_t v) {
    char buf[21];
    int i = 0;
    do { buf[i++] = (char)('0' + (int)(v % 10u)); v /= 10u; } while (v);
    while (i) put(buf[--i], 1);
}

static void put_i32(int32_t v) {
    if (v < 0) { put('-', 1); put_u64((uint64_t)(-(int64_t)v)); }
    else put_u64((uint64_t)v);
}

static const char HEX[] = "0123456789abcdef";

void tm_begin(const char *type) {
    used = 0;
    crc = 0;
    put('@', 0);
    puts_("pqlr1 ");
    puts_(type);
}

static void key(const char *k) { put(' ', 1); puts_(k); put('=', 1); }

/* A value never holds a space (fields are space-separated): a text's spaces go out as '_'. */
void tm_str(const char *k, const char *v) {
    key(k);
    for (; *v; v++) put(*v == ' ' ? '_' : *v, 1);
}
void tm_u64(const char *k, uint64_t v) { key(k); put_u64(v); }

void tm_i8_list(const char *k, const int8_t *v, int n) {
    key(k);
    for (int i = 0; i < n; i++) { if (i) put(',', 1); put_i32(v[i]); }
}

void tm_u32_list(const char *k, const uint32_t *v, int n) {
    key(k);
    for (int i = 0; i < n; i++) { if (i) put(',', 1); put_u64(v[i]); }
}

void tm_hex(const char *k, const uint8_t *v, int n) {
    key(k);
    for (int i = 0; i < n; i++) { put(HEX[v[i] >> 4], 1); put(HEX[v[i] & 15], 1); }
}

void tm_hex_long(const char *k, const uint8_t *v, uint32_t n) {
    key(k);
    for (uint32_t i = 0; i < n; i++) { put(HEX[v[i] >> 4], 1); put(HEX[v[i] & 15], 1); }
}

void tm_end(void) {
    uint32_t c = crc;
    put(' ', 0);
    put('*', 0);
    for (int s = 28; s >= 0; s -= 4) put(HEX[(c >> s) & 15u], 0);
    put('\n', 0);
    flush();
}
