/* Port for the development host: model.bin read once from a file (argv[1]) into memory at start-up, as if
 * it were the model partition (what the boot check verified is what every inference reads, whatever
 * happens to the file later), the serial line on stdin/stdout, wall-clock nanoseconds as "cycles", no
 * instret. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "platform.h"
#include "pqlr.h"

static unsigned char *partition;       /* the whole file, read once at start-up */
static long partition_size;

void platform_init(void) {}

int platform_flash_read(uint32_t offset, void *dst, uint32_t size) {
    if (!partition || (long)offset > partition_size || (long)size > partition_size - (long)offset) return -1;
    memcpy(dst, partition + offset, size);
    return 0;
}

const void *platform_flash_map(uint32_t offset, uint32_t size) {
    if (!partition || (long)offset > partition_size || (long)size > partition_size - (long)offset) return NULL;
    return partition + offset;
}

static int load_partition(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int ok = fseek(f, 0, SEEK_END) == 0 && (partition_size = ftell(f)) > 0 &&
             (partition = malloc((size_t)partition_size)) != NULL && fseek(f, 0, SEEK_SET) == 0 &&
             fread(partition, 1, (size_t)partition_size, f) == (size_t)partition_size;
    fclose(f);
    return ok ? 0 : -1;
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
    if (load_partition(argv[1]) != 0) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    platform_init();
    pqlr_app();
    return 0;
}
