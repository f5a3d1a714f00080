/* platform.h — the one porting seam. Kernels and the tile runtime never include a vendor header;
 * each port (ports/rv32-virt, ports/host, ports/esp-idf) implements these functions. */
#ifndef PQLR_PLATFORM_H
#define PQLR_PLATFORM_H
#include <stdint.h>

#define PQLR_UNKNOWN32 0xFFFFFFFFu
#define PQLR_UNKNOWN64 0xFFFFFFFFFFFFFFFFull

/* One-time set-up (UART, flash handle, I2C sensor...). */
void platform_init(void);
/* Copy size bytes at offset (relative to the start of the model partition) into dst. 0 on success. */
int platform_flash_read(uint32_t offset, void *dst, uint32_t size);
/* Pointer to `size` bytes at `offset` of the model partition in memory-mapped flash (xip plans), or NULL. */
const void *platform_flash_map(uint32_t offset, uint32_t size);
/* Free-running cycle counter, and retired-instruction counter (PQLR_UNKNOWN64 where unavailable). */
uint64_t platform_cycles(void);
uint64_t platform_instret(void);
/* Serial console: blocking write; blocking read of one byte (-1 when the line is closed). */
void platform_serial_write(const char *buf, uint32_t len);
int platform_serial_read(void);
/* Measured stack high-water mark in bytes (painted stack), or PQLR_UNKNOWN32. */
uint32_t platform_stack_used(void);
/* Stack reserved for inference, in bytes (PQLR_UNKNOWN32 where unknown). */
uint32_t platform_stack_size(void);
/* Supply current in microamps from the board's sensor, or PQLR_UNKNOWN32 (no sensor). */
uint32_t platform_current_ua(void);
/* Leave the firmware (emulator exit / process exit / idle forever on a real board). */
void platform_exit(int code);

#endif
