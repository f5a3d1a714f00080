/* Port for the development host: model.bin read from a file (argv[1]) as if it were the model
 * partition, the serial line on stdin/stdout, wall-clock nanoseconds as "cycles", no instret. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "platform.h"
#include "pqlr.h"

static FILE *model_file;
static unsigned char *mapped;          /* the whole file, read once, for xip plans */
static long mapped_size;

void platform_init(void) {}

int platform_flash_read(uint32_t offset, void *dst, uint32_t size) {
    if (!model_file || fseek(model_file, (long)offset, SEEK_SET) != 0) return -1;
    return fread(dst, 1, size, model_file) == size ? 0 : -1;
}

const void *platform_flash_map(uint32_t offset, uint32_t size) {
    if (!mapped) {
        if (!model_file || fseek(model_file, 0, SEEK_END) != 0) return NULL;
        mapped_size = ftell(model_file);
        if (mapped_size <= 0 || !(mapped = malloc((size_t)mapped_size))) return NULL;
        if (fseek(model_file, 0, SEEK_SET) != 0 || fread(mapped, 1, (size_t)mapped_size, model_file) != (size_t)mapped_size) {
            free(mapped);
            mapped = NULL;
            return NULL;
        }
    }
    if ((long)offset > mapped_size || (long)size > mapped_size - (long)offset) return NULL;
    return mapped + offset;
}

uint64_t platform_cycles(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t platform_instret(void) { return PQLR_UNKNOWN64; }

void platform_serial_write(const char *buf, uint32_t len) {
    fwrite(buf, 1, len, stdout);
    if (len && buf[len - 1] == '\n') fflush(stdout);
}

int platform_serial_read(void) {
    int c = getchar();
    return c == EOF ? -1 : c;
}

uint32_t platform_stack_used(void) { return PQLR_UNKNOWN32; }
uint32_t platform_stack_size(void) { return PQLR_UNKNOWN32; }
uint32_t platform_current_ua(void) { return PQLR_UNKNOWN32; }

void platform_exit(int code) {
    fflush(stdout);
    exit(code);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s model.bin   (then speak the pqlr serial protocol on stdin/stdout)\n", argv[0]);
        return 2;
    }
    model_file = fopen(argv[1], "rb");
    if (!model_file) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    platform_init();
    pqlr_app();
    return 0;
}
