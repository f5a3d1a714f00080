/* pqlr offline ESP-IDF build: the RISC-V assembler macros of newlib's <sys/asm.h> (RV32), absent from Debian's
 * picolibc. */
#pragma once
#define SZREG 4
#define REGBYTES 4
#define PTRLOG 2
#define SZINT 4
#define REG_S sw
#define REG_L lw
