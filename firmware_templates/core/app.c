/* app.c — the portable firmware loop, the same on every board.
 * The host drives it with single-letter commands (the board waits for the host before it says
 * anything, so nothing is lost on a pseudo-terminal nobody reads yet):
 *   'h'            → HELLO record, then READY, or ERR if the model partition is not this model
 *   'i' <seq> <hex> <crc> → the input tensor as 2·PQLR_INPUT_BYTES hex digits; one inference → INFER record
 *   'd' <seq> <2 hex: layer> <hex input> <crc> → the model up to that layer → DUMP record of its output
 *   'a' <seq> <hex audio> <crc> → int16 little-endian samples (4 hex digits each) through the on-device
 *                      front end, then one inference → INFER record with fe_instret/fe_cycles
 *   'n' <seq> <crc> → a new stream: a streaming model's state back to its start (as at boot) → STREAM record;
 *                      a model without state answers it too (nothing to reset), so a host need not know which
 * <seq> is the host's request number and <crc> the CRC-32 (zlib's) of seq (4 bytes, little endian) and the
 * payload bytes, each as 8 hex digits. Every answer carries n=<seq> and, for INFER, in=<CRC-32 of the input
 * it computed on>; a damaged command gets ERR code=bad_checksum (or bad_input) with n, and the host asks
 * again, so an answer is never credited to the wrong input.
 *   'q'            → RAM record, DONE record (again for each further 'q'); then 'x' (the host's
 *                    acknowledgement) → exit
 * At boot the board sends one BOOT record (a host that is listening learns that the board restarted).
 * Whitespace between commands is ignored; anything else gets one ERR record and the rest of its line is
 * skipped, so the board resynchronises on the next newline. */
#include "pqlr.h"
#include "platform.h"
#include "model.h"

#define ALLOC(n) ((n) > 4 ? (n) : 4)
int8_t pqlr_arena[ALLOC(PQLR_ARENA_BYTES)] __attribute__((aligned(4)));
uint8_t pqlr_tile_buf[ALLOC(PQLR_TILE_BUF_BYTES)] __attribute__((aligned(4)));
#define arena pqlr_arena
#define tile_buf pqlr_tile_buf
static pqlr_counters_t counters;

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void send_error(const char *code, const char *detail) {
    tm_begin("ERR");
    tm_str("code", code);
    tm_str("detail", detail);
    tm_end();
}

static void send_hello(int model_ok, const char *why, const uint8_t found[32]) {
    tm_begin("HELLO");
    tm_str("fw", PQLR_FW_VERSION);
    tm_u64("proto", PQLR_PROTO_VERSION);
    tm_str("board", pqlr_board_name);
    tm_hex("model", model_ok ? pqlr_running_sha256 : pqlr_model_sha256, 32);   /* the model it runs */
    tm_u64("swap", PQLR_MODEL_SWAP);
    tm_u64("arena", PQLR_ARENA_BYTES);
    tm_u64("tile_buf", PQLR_TILE_BUF_BYTES);
    tm_u64("layers", PQLR_N_LAYERS);
    tm_u64("input_bytes", PQLR_INPUT_BYTES);
    tm_end();
    if (model_ok) {
        tm_begin("READY");
        tm_end();
    } else {
        tm_begin("ERR");
        tm_str("code", why);
        tm_hex("expected", pqlr_model_sha256, 32);
        tm_hex("found", found, 32);
        tm_end();
    }
}

/* Peak RAM by painting, as the stack is measured: the arena and the tile buffer are filled with PAINT after
 * the boot check, and the RAM record reports the highest byte that no longer holds it (a byte written with
 * the paint value itself at the very top would read as untouched: at most an undercount of a few bytes). */
#define PAINT 0xA5u

static void paint(void *buf, uint32_t n) {
    uint8_t *b = (uint8_t *)buf;
    for (uint32_t i = 0; i < n; i++) b[i] = PAINT;
}

static uint32_t touched(const void *buf, uint32_t n) {
    const uint8_t *b = (const uint8_t *)buf;
    while (n > 0 && b[n - 1] == PAINT) n--;
    return n;
}

static void send_ram(void) {
    tm_begin("RAM");
    tm_u64("tile_buf", PQLR_TILE_BUF_BYTES);
    tm_u64("arena", PQLR_ARENA_BYTES);
    tm_u64("tile_buf_used", touched(tile_buf, PQLR_TILE_BUF_BYTES));
    tm_u64("arena_used", touched(arena, PQLR_ARENA_BYTES));
#if PQLR_FRONTEND
    tm_u64("frontend", pqlr_frontend_ram_bytes());
#endif
    uint32_t s = platform_stack_used();
    if (s != PQLR_UNKNOWN32) tm_u64("stack_hwm", s);
    uint32_t z = platform_stack_size();
    if (z != PQLR_UNKNOWN32) tm_u64("stack_size", z);
    tm_end();
}

/* Command framing: the CRC runs over everything after the command letter; a bad digit or a line that ends
 * early fails the command, and the rest of its line is skipped. */
static uint32_t cmd_crc;       /* CRC-32 of seq and payload so far */
static uint32_t input_crc;     /* CRC-32 of the input bytes alone (echoed as in=) */
static int cmd_bad;            /* a non-hex digit was read */
static int cmd_eol;            /* the line ended inside the command */

static int next_hex(void) {
    if (cmd_eol) return 0;
    int c = platform_serial_read();
    if (c == '\n' || c < 0) { cmd_eol = 1; cmd_bad = 1; return 0; }
    int v = hexval(c);
    if (v < 0) { cmd_bad = 1; return 0; }
    return v;
}

static uint8_t next_byte(void) {
    int hi = next_hex();
    return (uint8_t)(hi << 4 | next_hex());
}

static uint32_t read_u32_text(void) {          /* 8 hex digits, most significant first */
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 4 | (uint32_t)next_hex();
    return v;
}

static uint32_t begin_command(void) {
    cmd_bad = cmd_eol = 0;
    uint32_t seq = read_u32_text();
    uint8_t le[4] = {(uint8_t)seq, (uint8_t)(seq >> 8), (uint8_t)(seq >> 16), (uint8_t)(seq >> 24)};
    cmd_crc = pqlr_crc32_update(0, le, 4);
    input_crc = 0;
    return seq;
}

static void payload(const uint8_t *b, uint32_t n, int is_input) {
    cmd_crc = pqlr_crc32_update(cmd_crc, b, n);
    if (is_input) input_crc = pqlr_crc32_update(input_crc, b, n);
}

/* 0 when the command arrived whole: its CRC matches; otherwise an ERR naming seq, and its line skipped */
static int end_command(uint32_t seq) {
    uint32_t want = read_u32_text();
    int ok = !cmd_bad && want == cmd_crc;
    if (!cmd_eol)
        for (int a = platform_serial_read(); a >= 0 && a != '\n'; a = platform_serial_read()) {}
    if (!ok) {
        tm_begin("ERR");
        tm_str("code", cmd_bad ? "bad_input" : "bad_checksum");
        tm_u64("n", seq);
        tm_str("detail", "command damaged on the way; send it again");
        tm_end();
    }
    return ok ? 0 : -1;
}

static void read_input(void) {
    int8_t *dst = arena + PQLR_INPUT_OFFSET;
    for (uint32_t i = 0; i < PQLR_INPUT_BYTES; i++) {
        uint8_t b = next_byte();
        payload(&b, 1, 1);
        dst[i] = (int8_t)b;
    }
}

static int last_valid;         /* an answer is kept for 'r' (below) */

static void dump(void) {
    uint32_t seq = begin_command();
    uint8_t lb = next_byte();
    payload(&lb, 1, 0);
    int layer = lb;
    read_input();
    if (end_command(seq) != 0) return;
    if (layer >= PQLR_N_LAYERS) { send_error("bad_input", "layer out of range"); return; }
    last_valid = 0;                           /* the arena's output and the counters change */
    counters.flash_bytes = 0;
    if (pqlr_model_run(arena, tile_buf, &counters, layer) != 0) { send_error("flash_read", "tile read failed"); return; }
    tm_begin("DUMP");
    tm_u64("n", seq);
    tm_u64("layer", (uint64_t)layer);
    tm_hex_long("data", (const uint8_t *)arena + pqlr_out_offset[layer], pqlr_out_bytes[layer]);
    tm_end();
}

#if PQLR_FRONTEND
/* instructions and cycles spent fetching samples (waiting on the UART, decoding hex): not the front end's
 * work — on a product the samples arrive by I2S DMA — so they are taken out of fe_instret / fe_cycles */
static uint64_t io_instret, io_cycles;

static int audio_sample(int16_t *s) {
    uint64_t i0 = platform_instret(), c0 = platform_cycles();
    uint8_t b[2];
    b[0] = next_byte();
    b[1] = next_byte();
    payload(b, 2, 1);
    *s = (int16_t)(b[0] | b[1] << 8);                        /* little-endian bytes on the wire */
    io_instret += platform_instret() - i0;
    io_cycles += platform_cycles() - c0;
    return 0;
}
#endif

static void infer(uint32_t seq);
static uint64_t fe_instret, fe_cycles;

static void infer_audio(void) {
    uint32_t seq = begin_command();
#if PQLR_FRONTEND
    io_instret = io_cycles = 0;
    uint64_t i0 = platform_instret(), c0 = platform_cycles();
    int rc = pqlr_frontend_run(audio_sample, arena + PQLR_INPUT_OFFSET);
    fe_instret = platform_instret() - i0 - io_instret;
    fe_cycles = platform_cycles() - c0 - io_cycles;
    if (end_command(seq) != 0) return;
    if (rc != 0) { send_error("bad_input", "the front end failed"); return; }
    infer(seq);
    fe_instret = fe_cycles = 0;
#else
    cmd_eol = 1;                              /* nothing to parse: skip the line */
    for (int a = platform_serial_read(); a >= 0 && a != '\n'; a = platform_serial_read()) {}
    send_error("no_frontend", "this firmware was built without the audio front end");
    (void)seq;
#endif
}

/* The last inference's answer, kept so that a lost INFER/LAYERS pair can be sent again without running the model
 * again ('r', replay): a streaming model's state moves on every run, so a host must not re-run an input to recover
 * a lost answer. Anything else that runs the model (a dump) forgets it. */
static uint32_t last_seq, last_in_crc;
static int last_valid, last_instret_known;
static uint64_t last_instret, last_cycles, last_fe_instret, last_fe_cycles;

static void send_infer(void) {
    tm_begin("INFER");
    tm_u64("n", last_seq);
    tm_u64("in", last_in_crc);
    tm_i8_list("out", arena + PQLR_OUTPUT_OFFSET, PQLR_OUTPUT_BYTES);
    if (last_instret_known) tm_u64("instret", last_instret);
    tm_u64("cycles", last_cycles);
    tm_u64("flash", counters.flash_bytes);
    uint32_t ua = platform_current_ua();
    if (ua != PQLR_UNKNOWN32) tm_u64("current_ua", ua);
    if (last_fe_cycles) {
        if (last_instret_known) tm_u64("fe_instret", last_fe_instret);
        tm_u64("fe_cycles", last_fe_cycles);
    }
    tm_end();
    /* per-layer counters in their own record so lines stay short */
    tm_begin("LAYERS");
    tm_u64("n", last_seq);
    if (last_instret_known) tm_u32_list("instret", counters.layer_instret, PQLR_N_LAYERS);
    tm_u32_list("cycles", counters.layer_cycles, PQLR_N_LAYERS);
    tm_u32_list("flash", counters.layer_flash, PQLR_N_LAYERS);
    tm_end();
}

static void infer(uint32_t seq) {
    for (int i = 0; i < PQLR_N_LAYERS; i++)
        counters.layer_instret[i] = counters.layer_cycles[i] = counters.layer_flash[i] = 0;
    counters.flash_bytes = 0;
    last_valid = 0;
    uint64_t c0 = platform_cycles();
    uint64_t i0 = platform_instret();
    int rc = pqlr_model_run(arena, tile_buf, &counters, -1);
    uint64_t i1 = platform_instret();
    uint64_t c1 = platform_cycles();
    if (rc != 0) { send_error("flash_read", "tile read failed during inference"); return; }
    last_seq = seq;
    last_in_crc = input_crc;
    last_instret_known = i0 != PQLR_UNKNOWN64;
    last_instret = i1 - i0;
    last_cycles = c1 - c0;
    last_fe_instret = fe_instret;
    last_fe_cycles = fe_cycles;
    last_valid = 1;
    send_infer();
}

/* 'r': the kept answer of request n again, or ERR not_run when the model did not run for n (the command was lost
 * on the way, or another request ran since): then the host sends the input again. */
static void replay(void) {
    uint32_t seq = begin_command();
    if (end_command(seq) != 0) return;
    if (!last_valid || seq != last_seq) {
        tm_begin("ERR");
        tm_str("code", "not_run");
        tm_u64("n", seq);
        tm_str("detail", "no answer kept for this request; send its input again");
        tm_end();
        return;
    }
    send_infer();
}

/* 'n': a new stream (the next input is the first of a recording): the state the model carries between inferences
 * goes back to where boot leaves it. Sending it twice is harmless, so a host whose STREAM record was lost asks
 * again. The kept answer is forgotten: it belongs to the old stream. */
static void new_stream(void) {
    uint32_t seq = begin_command();
    if (end_command(seq) != 0) return;
    last_valid = 0;
    if (pqlr_model_reset(arena, tile_buf, &counters) != 0) {
        tm_begin("ERR");
        tm_str("code", "flash_read");
        tm_u64("n", seq);
        tm_str("detail", "tile read failed while resetting the stream state");
        tm_end();
        return;
    }
    tm_begin("STREAM");
    tm_u64("n", seq);
    tm_end();
}

void pqlr_app(void) {
    char why[32];
    uint8_t found[32];
    int model_ok = pqlr_check_model(tile_buf, sizeof tile_buf, why, sizeof why, found) == 0;
    paint(arena, PQLR_ARENA_BYTES);
    paint(tile_buf, PQLR_TILE_BUF_BYTES);
    if (model_ok && pqlr_model_reset(arena, tile_buf, &counters) != 0) {       /* streaming state */
        static const char reason[] = "flash_read_failed";
        for (unsigned i = 0; i < sizeof reason; i++) why[i] = reason[i];
        model_ok = 0;
    }
#if PQLR_MLPERF
    pqlr_mlperf_app(model_ok);
    return;
#endif
    tm_begin("BOOT");
    tm_str("fw", PQLR_FW_VERSION);
    tm_str("board", pqlr_board_name);
    tm_end();
    for (;;) {
        int c = platform_serial_read();
        if (c < 0) { platform_exit(0); return; }
        if (c == '\n' || c == '\r' || c == ' ') continue;
        if (c == 'h') {
            send_hello(model_ok, why, found);
        }
        else if (c == 'i') {
            uint32_t seq = begin_command();
            read_input();
            if (end_command(seq) != 0) continue;
            if (!model_ok) { send_error(why, "model partition does not hold this firmware's model"); continue; }
            infer(seq);
        } else if (c == 'a') {
            if (!model_ok) { send_error(why, "model partition does not hold this firmware's model"); continue; }
            infer_audio();
        } else if (c == 'n') {
            if (!model_ok) { send_error(why, "model partition does not hold this firmware's model"); continue; }
            new_stream();
        } else if (c == 'r') {
            if (!model_ok) { send_error(why, "model partition does not hold this firmware's model"); continue; }
            replay();
        } else if (c == 'd') {
            if (!model_ok) { send_error(why, "model partition does not hold this firmware's model"); continue; }
            dump();
        } else if (c == 'q') {
            /* exit only once the host has read everything: on a pty, output unread at exit is lost;
               another 'q' (the host lost a record) gets both records again */
            for (int a = 'q'; a >= 0 && a != 'x'; a = platform_serial_read()) {
                if (a != 'q') continue;
                send_ram();
                tm_begin("DONE");
                tm_end();
            }
            platform_exit(0);
            return;
        } else {
            send_error("unknown_command", "expected h, i, a, n, d, r or q; skipping to the end of the line");
            for (int a = c; a >= 0 && a != '\n'; a = platform_serial_read()) {}
        }
    }
}
