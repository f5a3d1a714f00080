/* pqlr offline ESP-IDF build: the <sys/dirent.h> of Espressif's C library (directory streams are ESP-IDF's VFS),
 * where Debian's picolibc has only an #error. Field names as ESP-IDF's vfs uses them. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t dd_vfs_idx;
    uint16_t dd_rsv;
} DIR;

struct dirent {
    ino_t d_ino;
    uint8_t d_type;
#define DT_UNKNOWN 0
#define DT_REG 1
#define DT_DIR 2
    char d_name[256];
};

#ifdef __cplusplus
}
#endif
