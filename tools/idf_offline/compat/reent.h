/* pqlr offline ESP-IDF build: newlib's <reent.h> (the reentrant system-call prototypes), which Debian's
 * picolibc lacks (Espressif's C library has it). */
#pragma once
#include <sys/reent.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/times.h>
#include <errno.h>

#ifndef __errno_r
#define __errno_r(r) (errno)
#endif

#ifdef __cplusplus
extern "C" {
#endif

int _close_r(struct _reent *r, int fd);
int _execve_r(struct _reent *r, const char *path, char *const argv[], char *const envp[]);
int _fcntl_r(struct _reent *r, int fd, int cmd, int arg);
int _fork_r(struct _reent *r);
int _fstat_r(struct _reent *r, int fd, struct stat *st);
int _getpid_r(struct _reent *r);
int _isatty_r(struct _reent *r, int fd);
int _kill_r(struct _reent *r, int pid, int sig);
int _link_r(struct _reent *r, const char *a, const char *b);
off_t _lseek_r(struct _reent *r, int fd, off_t pos, int whence);
int _mkdir_r(struct _reent *r, const char *path, int mode);
int _open_r(struct _reent *r, const char *path, int flags, int mode);
ssize_t _read_r(struct _reent *r, int fd, void *buf, size_t n);
int _rename_r(struct _reent *r, const char *a, const char *b);
void *_sbrk_r(struct _reent *r, ptrdiff_t incr);
int _stat_r(struct _reent *r, const char *path, struct stat *st);
clock_t _times_r(struct _reent *r, struct tms *buf);
int _unlink_r(struct _reent *r, const char *path);
int _wait_r(struct _reent *r, int *status);
ssize_t _write_r(struct _reent *r, int fd, const void *buf, size_t n);
int _gettimeofday_r(struct _reent *r, struct timeval *tv, void *tz);

#ifdef __cplusplus
}
#endif
