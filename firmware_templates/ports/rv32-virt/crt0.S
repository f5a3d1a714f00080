/* crt0.S — reset entry for QEMU virt (-bios none jumps to 0x80000000 in M-mode). */
    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, _stack_top
    /* zero .bss */
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  /* copy .data from its load address (code region, i.e. "flash") to RAM */
    la t0, __data_load
    la t1, __data_start
    la t2, __data_end
3:  bgeu t1, t2, 4f
    lw t3, 0(t0)
    sw t3, 0(t1)
    addi t0, t0, 4
    addi t1, t1, 4
    j 3b
4:  call main
5:  wfi
    j 5b
