/* mlperf.c — the MLPerf Tiny host protocol (EEMBC runner), so the official runner, or `pqlr mlperf`, can
 * drive the board. Commands end with '%'; replies are lines starting "m-" (or "e-" for errors):
 *   name%              → m-name-[pqlr-<board>]
 *   profile%           → m-profile-[...], m-model-[kws01]
 *   db load N%         → m-[Expecting N bytes]     (N must be the model's input size)
 *   db <hex>%          → appends bytes to the input; m-load-done when it is full
 *   infer N W%         → W warm-up and N timed inferences: m-lap-us-<µs> before and after the timed ones
 *   results%           → m-results-[s0,s1,...]: the output scores, dequantised, 3 decimals
 * every reply ends with m-ready. Built instead of the pqlr protocol when PQLR_MLPERF is 1. */
#include "pqlr.h"
#include "platform.h"
#include "model.h"

#if PQLR_MLPERF
extern int8_t pqlr_arena[];
extern uint8_t pqlr_tile_buf[];

static void say(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    platform_serial_write(s, n);
}

static void say_u(uint64_t v) {
    char b[21];
    int i = 0;
    do { b[i++] = (char)('0' + (int)(v % 10u)); v /= 10u; } while (v);
    while (i) platform_serial_write(&b[--i], 1);
}

static int hexv(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int starts(const char *s, const char *p) {
    while (*p) if (*s++ != *p++) return 0;
    return 1;
}

static uint32_t parse_u(const char **s) {
    uint32_t v = 0;
    while (**s == ' ') (*s)++;
    while (**s >= '0' && **s <= '9') v = v * 10u + (uint32_t)(*(*s)++ - '0');
    return v;
}

static uint64_t micros(void) { return platform_cycles() / PQLR_CYCLES_PER_US; }

static void results(void) {
    const int8_t *o = pqlr_arena + PQLR_OUTPUT_OFFSET;
    say("m-results-[");
    for (int i = 0; i < PQLR_OUTPUT_BYTES; i++) {
        /* score = (q − zp)·scale, as fixed point: milli = (q − zp)·PQLR_OUT_SCALE_Q16_MILLI >> 16 */
        int32_t milli = (int32_t)(((int64_t)(o[i] - PQLR_OUT_ZP) * PQLR_OUT_SCALE_Q16_MILLI) >> 16);
        if (i) say(",");
        if (milli < 0) { say("-"); milli = -milli; }
        say_u((uint32_t)milli / 1000u);
        say(".");
        char frac[3] = {(char)('0' + milli / 100 % 10), (char)('0' + milli / 10 % 10), (char)('0' + milli % 10)};
        platform_serial_write(frac, 3);
    }
    say("]\r\n");
}

void pqlr_mlperf_app(int model_ok) {
    static pqlr_counters_t cnt;
    char cmd[48];
    uint32_t used = 0, expected = 0, loaded = 0;
    int in_db_data = 0, hi = -1;
    say("m-ready\r\n");
    for (;;) {
        int c = platform_serial_read();
        if (c < 0) { platform_exit(0); return; }
        if (in_db_data) {                                  /* "db <hex>%": stream bytes into the input */
            if (c == '%') { in_db_data = 0; used = 0; say(loaded >= expected ? "m-load-done\r\nm-ready\r\n" : "m-ready\r\n"); continue; }
            int v = hexv(c);
            if (v < 0) continue;
            if (hi < 0) { hi = v; continue; }
            if (loaded < expected && loaded < PQLR_INPUT_BYTES)
                pqlr_arena[PQLR_INPUT_OFFSET + loaded++] = (int8_t)(hi << 4 | v);
            hi = -1;
            continue;
        }
        if (c == '\r' || c == '\n') continue;
        if (c != '%') {
            if (used < sizeof cmd - 1) cmd[used++] = (char)c;
            cmd[used] = 0;
            if (used == 4 && starts(cmd, "db ") && hexv(c) >= 0) { in_db_data = 1; hi = hexv(c); used = 0; }
            continue;
        }
        cmd[used] = 0;
        used = 0;
        if (starts(cmd, "name")) {
            say("m-name-[pqlr-"); say(pqlr_board_name); say("]\r\n");
        } else if (starts(cmd, "profile")) {
            say("m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\nm-model-[kws01]\r\n");
        } else if (starts(cmd, "db load")) {
            const char *p = cmd + 7;
            expected = parse_u(&p);
            loaded = 0;
            if (expected != PQLR_INPUT_BYTES) { say("e-[the model's input is "); say_u(PQLR_INPUT_BYTES); say(" bytes]\r\n"); expected = 0; }
            else { say("m-[Expecting "); say_u(expected); say(" bytes]\r\n"); }
        } else if (starts(cmd, "infer")) {
            const char *p = cmd + 5;
            uint32_t n = parse_u(&p), w = parse_u(&p);
            if (!model_ok) say("e-[model partition does not hold this firmware's model]\r\n");
            else if (loaded < PQLR_INPUT_BYTES) say("e-[load the input first: db load N, db <hex>]\r\n");
            else {
                static int8_t input[PQLR_INPUT_BYTES];
                for (uint32_t i = 0; i < PQLR_INPUT_BYTES; i++) input[i] = pqlr_arena[PQLR_INPUT_OFFSET + i];
                say("m-warmup-start-"); say_u(w); say("\r\n");
                for (uint32_t i = 0; i < w; i++) {
                    for (uint32_t k = 0; k < PQLR_INPUT_BYTES; k++) pqlr_arena[PQLR_INPUT_OFFSET + k] = input[k];
                    pqlr_model_run(pqlr_arena, pqlr_tile_buf, &cnt, -1);
                }
                say("m-warmup-done\r\nm-infer-start-"); say_u(n); say("\r\n");
                say("m-lap-us-"); say_u(micros()); say("\r\n");
                for (uint32_t i = 0; i < n; i++) {
                    /* in-place layers overwrite the input: restore it (timed, as the runner times it all) */
                    for (uint32_t k = 0; k < PQLR_INPUT_BYTES; k++) pqlr_arena[PQLR_INPUT_OFFSET + k] = input[k];
                    pqlr_model_run(pqlr_arena, pqlr_tile_buf, &cnt, -1);
                }
                say("m-lap-us-"); say_u(micros()); say("\r\n");
                say("m-infer-done\r\n");
                results();
            }
        } else if (starts(cmd, "results")) {
            results();
        } else {
            say("e-[Unknown command: "); say(cmd); say("]\r\n");
        }
        say("m-ready\r\n");
    }
}
#endif
