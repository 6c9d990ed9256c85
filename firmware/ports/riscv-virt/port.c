/* QEMU riscv32 virt port: NS16550A UART0, CLINT machine timer, memory facts.
 *
 * There is no real board behind this port, so its clock is a modelled one:
 * MODEL_CLOCK_HZ, 125 MHz, chosen so that under the emulator's default
 * `-icount shift=3` (one instruction per 8 ns) the emulated core retires one
 * instruction per cycle, like a single-issue rv32imac MCU core (SiFive E31
 * class) without wait states. Device-timed figures come from the 10 MHz
 * machine timer, which counts QEMU's virtual time and so does not depend on
 * this choice; clock_hz only turns instruction counts into rates. */
#include "port.h"

#include "virt.h"

/* Linker script symbols (their addresses are the values). */
extern uint8_t __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint8_t __arena_start[], __arena_end[];
extern uint8_t __stack_bottom[], __stack_top[];
extern uint8_t __ram_start[], __ram_end[];
extern uint8_t __model_start[], __model_end[];
extern uint8_t __flash_total_bytes[];

#define MODEL_CLOCK_HZ 125000000u
#define BAUD 115200u

static PortInfo info;

/* ----------------------------------------------------------------------------
 * UART0, 115200 8N1, polled. QEMU ignores the divisor; hardware would not. */

static void uart_init(void) {
    uint32_t divisor = (UART_CLOCK_HZ + 8u * BAUD) / (16u * BAUD);
    UART_IER = 0;
    UART_LCR = LCR_DLAB;
    UART_DLL = (uint8_t)(divisor & 0xFFu);
    UART_DLM = (uint8_t)(divisor >> 8);
    UART_LCR = LCR_8N1;
    UART_FCR = FCR_ENABLE_CLEAR;
    UART_MCR = MCR_DTR_RTS;
}

void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        while ((UART_LSR & LSR_THRE) == 0) {
        }
        UART_THR = buf[i];
    }
}

int port_uart_read(void) {
    if (UART_LSR & LSR_DR) return (int)UART_RBR;
    return -1;
}

/* ----------------------------------------------------------------------------
 * Time base: the CLINT's 64-bit mtime at 10 MHz. It never wraps in practice
 * (58,000 years), so there is no wrap interrupt and no base to fold.
 *
 * What port_timer_rebase must still do is phase. QEMU computes mtime as
 * floor(virtual_ns / 100), and under -icount shift=N each instruction adds
 * 2^N ns: a tick is 12.5 instructions at N = 3. A RUN that starts at another
 * point of a tick (the host's delay decides how long the idle loop spun)
 * would read some of its ticks one higher or lower than the RUN before, even
 * though it executes the same instructions. So the re-base waits for a tick
 * edge and aligns on it to the instruction (virt_tick_lock, start.S), and
 * identical RUNs then report bit-identical tick deltas.
 *
 * The lock needs the number of instructions per 256 ticks, 25600 / 2^N. The
 * firmware cannot ask QEMU for N, so port_init measures it once. Without
 * -icount (virtual time = host time) nothing is deterministic anyway, and the
 * lock merely costs a few microseconds. */

static uint32_t lock_q;    /* instructions per lock step */
static uint32_t lock_step; /* ticks per lock step, a multiple of 256 */

static void timer_init(void) {
    uint32_t measured = 4u * virt_tick_calibrate(&CLINT_MTIME_LO); /* within 4 of the truth */
    uint32_t period = 25600u;
    uint32_t best = 0xFFFFFFFFu;
    for (uint32_t cand = 25600u, shift = 0; shift <= 10u; shift++, cand >>= 1) {
        uint32_t err = cand > measured ? cand - measured : measured - cand;
        if (err < best) {
            best = err;
            period = cand;
        }
    }
    uint32_t periods = (64u + period - 1u) / period; /* the lock needs q >= 64 */
    lock_q = period * periods;
    lock_step = 256u * periods;
}

uint64_t port_ticks(void) {
    uint32_t hi, lo;
    /* hi, lo, hi again: a carry between the two halves shows as a new hi */
    do {
        hi = CLINT_MTIME_HI;
        lo = CLINT_MTIME_LO;
    } while (CLINT_MTIME_HI != hi);
    return ((uint64_t)hi << 32) | lo;
}

void port_timer_rebase(void) { virt_tick_lock(&CLINT_MTIME_LO, lock_q, lock_step); }

/* ----------------------------------------------------------------------------
 * Stack use, by painting: startup fills the free stack with STACK_PAINT and
 * the deepest overwritten word marks the peak. */

uint32_t port_stack_peak(void) {
    const uint32_t *p = (const uint32_t *)(void *)__stack_bottom;
    const uint32_t *top = (const uint32_t *)(void *)__stack_top;
    while (p < top && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

void port_stack_reset_peak(void) {
    /* everything below the current SP is free (no interrupts are enabled) */
    uint32_t *sp = (uint32_t *)read_sp();
    for (uint32_t *p = (uint32_t *)(void *)__stack_bottom; p < sp;) *p++ = STACK_PAINT;
}

/* ----------------------------------------------------------------------------
 * Facts */

void port_init(void) {
    uart_init();
    timer_init();

    info.board = "riscv32-virt";
    info.clock_hz = MODEL_CLOCK_HZ;
    info.timer_hz = MTIME_HZ;
    info.timer_bits = 64;
    info.ram_total_bytes = (uint32_t)(__ram_end - __ram_start);
    info.flash_total_bytes = (uint32_t)(uintptr_t)__flash_total_bytes;
    info.static_ram_bytes =
        (uint32_t)((__data_end - __data_start) + (__bss_end - __bss_start));
    info.arena = __arena_start;
    info.arena_bytes = (uint32_t)(__arena_end - __arena_start);
    info.stack_total_bytes = (uint32_t)(__stack_top - __stack_bottom);
    info.model = __model_start;
    info.model_addr = (uint32_t)(uintptr_t)__model_start;
    info.model_region_bytes = (uint32_t)(__model_end - __model_start);
}

const PortInfo *port_info(void) { return &info; }
