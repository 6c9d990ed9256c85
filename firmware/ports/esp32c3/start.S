/* ESP32-C3 entry. The ROM loads this image's IRAM and DRAM segments from
 * flash offset 0 and jumps here in machine mode, on its own stack and with
 * its own trap vectors. */

    .section .text.start, "ax"
    .globl _start
_start:
    csrci   mstatus, 8              /* no interrupts: nothing here uses them */
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack_top
    la      t0, trap_vectors
    ori     t0, t0, 1               /* the C3 takes traps in vectored mode only */
    csrw    mtvec, t0
    call    reset_c                 /* startup.c: watchdogs, .bss, stack paint, main */
1:  j       1b

/* Every trap (mcause, mepc and mtval say which) ends in trap_stop; there is
 * nothing to recover in a profiling run. Vectored mode sends exceptions to
 * entry 0 and interrupt n to entry n, so all 32 entries lead there. */
    .balign 256
    .option push
    .option norvc
trap_vectors:
    .rept 32
    j       trap_stop
    .endr
    .option pop
trap_stop:
    j       trap_stop
