/* rv32imac entry for QEMU virt (-bios none: the reset vector at 0x1000 jumps
 * to 0x80000000 in machine mode), the trap stop, and the two routines that
 * put every RUN at the same phase of the 10 MHz machine timer (see port.c,
 * "Time base"). Their instruction counts are the point, so they are written
 * out in assembly; nothing between the labels may change length. */

    .section .text.start, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, park                /* one hart runs the firmware */
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack_top
    la      t0, trap_entry
    csrw    mtvec, t0
    csrw    mie, zero
    call    port_crt_start          /* ports/common: .data, .bss, stack paint, main */
park:
    wfi
    j       park

/* A fault (mcause, mepc and mtval say which) ends here; there is nothing to
 * recover in a profiling run. */
trap_stop:
    j       trap_stop

/* The trap vector (direct mode). Interrupts (mcause bit 31: only the machine
 * timer is ever enabled, while INA samples stream) go to virt_interrupt in
 * port.c with the caller-saved registers saved on the interrupted stack, so
 * stack painting counts them; everything else stops at trap_stop with t0
 * back in place. */
    .balign 4
trap_entry:
    csrw    mscratch, t0
    csrr    t0, mcause
    bltz    t0, 1f
    csrr    t0, mscratch
    j       trap_stop
1:  addi    sp, sp, -64
    sw      ra, 0(sp)
    csrr    t0, mscratch
    sw      t0, 4(sp)
    sw      t1, 8(sp)
    sw      t2, 12(sp)
    sw      a0, 16(sp)
    sw      a1, 20(sp)
    sw      a2, 24(sp)
    sw      a3, 28(sp)
    sw      a4, 32(sp)
    sw      a5, 36(sp)
    sw      a6, 40(sp)
    sw      a7, 44(sp)
    sw      t3, 48(sp)
    sw      t4, 52(sp)
    sw      t5, 56(sp)
    sw      t6, 60(sp)
    call    virt_interrupt
    lw      ra, 0(sp)
    lw      t0, 4(sp)
    lw      t1, 8(sp)
    lw      t2, 12(sp)
    lw      a0, 16(sp)
    lw      a1, 20(sp)
    lw      a2, 24(sp)
    lw      a3, 28(sp)
    lw      a4, 32(sp)
    lw      a5, 36(sp)
    lw      a6, 40(sp)
    lw      a7, 44(sp)
    lw      t3, 48(sp)
    lw      t4, 52(sp)
    lw      t5, 56(sp)
    lw      t6, 60(sp)
    addi    sp, sp, 64
    mret

/* ----------------------------------------------------------------------------
 * uint32_t virt_tick_calibrate(volatile uint32_t *mtime_lo)
 *
 * Waits for an mtime value that is a multiple of 256, then counts passes of
 * a 4-instruction loop until the next one: about a quarter of the
 * instructions QEMU's -icount runs per 256 ticks. */
    .text
    .globl virt_tick_calibrate
virt_tick_calibrate:
    lw      t0, 0(a0)
    andi    t0, t0, -256
    addi    t0, t0, 512             /* a multiple of 256 at least 256 ticks ahead */
1:  lw      t1, 0(a0)
    sub     t2, t1, t0
    bltz    t2, 1b
    addi    t0, t0, 256
    li      a1, 0
2:  addi    a1, a1, 1
    lw      t1, 0(a0)
    sub     t2, t1, t0
    bltz    t2, 2b
    mv      a0, a1
    ret

/* ----------------------------------------------------------------------------
 * void virt_tick_lock(volatile uint32_t *mtime_lo, uint32_t q, uint32_t step)
 *
 * Returns at the same instruction offset after a tick edge every time. The
 * edges it waits for are multiples of 256 ticks, `step` ticks apart, and
 * port.c picks step (a multiple of 256) so that exactly q instructions
 * (q >= 64) run from one to the next. Under -icount every instruction
 * advances virtual time by the same 2^N ns (N <= 10), and 256 ticks are
 * 25600 ns, a multiple of 2^N: the first instruction to see such an edge
 * is always the same fraction of a tick past it. All later tick readings of
 * a RUN then fall on the same instructions of the RUN whatever the host did
 * before.
 *
 * Let b be the first instruction that reads the awaited value. The wait loop
 * reads every 3 instructions, so it sees the value first at b + e, e in 0..2.
 * Each of the two stages below reads again exactly q - 2 + (what the earlier
 * stages added) instructions later, that is 2 instructions before the
 * matching edge when e = 0; a read that still sees the old value means the
 * code ran early, and the stage adds one instruction. After two stages every
 * path is as long as the e = 2 path. */
    .globl virt_tick_lock
virt_tick_lock:
    lw      t0, 0(a0)
    andi    t0, t0, -256
    add     t0, t0, a2
    add     t0, t0, a2              /* a multiple of 256, 1..2 steps ahead */
1:  lw      t1, 0(a0)               /* pos 0 = b + e when it falls through */
    sub     t2, t1, t0              /* 1 */
    bltz    t2, 1b                  /* 2 */

    /* stage 1: the read lands at pos q - 2 */
    add     t0, t0, a2              /* 3: the next edge, q instructions later */
    addi    a4, a1, -10             /* 4: n = q - 10 */
    andi    t3, a4, 1               /* delay: n + 3 instructions in all */
    beqz    t3, 2f
    nop
2:  srli    a4, a4, 1
3:  addi    a4, a4, -1
    bnez    a4, 3b
    lw      t1, 0(a0)               /* 5 + n + 3 = q - 2 */
    sub     t2, t1, t0
    bgez    t2, 4f
    nop                             /* early: one more instruction */

    /* stage 2: the read lands q (+1 when stage 1 added one) after stage 1's */
4:  add     t0, t0, a2
    addi    a4, a1, -8              /* n = q - 8 */
    andi    t3, a4, 1
    beqz    t3, 5f
    nop
5:  srli    a4, a4, 1
6:  addi    a4, a4, -1
    bnez    a4, 6b
    lw      t1, 0(a0)
    sub     t2, t1, t0
    bgez    t2, 7f
    nop
7:  ret
