/* QEMU riscv32 virt port: NS16550A UART0, CLINT machine timer, memory facts.
 *
 * There is no real board behind this port, so its clock is a modelled one:
 * MODEL_CLOCK_HZ, 125 MHz, chosen so that under the emulator's default
 * `-icount shift=3` (one instruction per 8 ns) the emulated core retires one
 * instruction per cycle, like a single-issue rv32imac MCU core (SiFive E31
 * class) without wait states. Device-timed figures come from the 10 MHz
 * machine timer, which counts QEMU's virtual time and so does not depend on
 * this choice; clock_hz only turns instruction counts into rates.
 *
 * Telemetry: no temperature sensor and no sync pin (the virt machine has no
 * GPIO for one); INA samples come from the INA226 stand-in
 * (ports/common/ina226_standin.c), read from the machine-timer interrupt. */
#include "ina226_standin.h"
#include "port_common.h"
#include "protocol.h"
#include "telemetry.h"
#include "virt.h"

#define MODEL_CLOCK_HZ 125000000u
#define BAUD 115200u

/* The modelled board's power, measured by the INA226 stand-in: no chip
 * stands behind this port, so a GD32VF103-class rv32 MCU scaled to 125 MHz,
 * about 30 mA running and 9 mA in sleep at 3.3 V (the same figures as the
 * riscv board profile in platforms/boards.py). */
static const InaStandinBoard standin_board = {3300u, 30000u, 100000u, TP_INA_SHUNT_UOHM};

#define SAMPLE_MIN_US 100u

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

/* Waiting for THRE counts as I/O wait (telemetry.h). */
void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if ((UART_LSR & LSR_THRE) == 0) {
            uint32_t t0 = CLINT_MTIME_LO;
            while ((UART_LSR & LSR_THRE) == 0) {
            }
            tp_io_wait_add(CLINT_MTIME_LO - t0);
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

/* ----------------------------------------------------------------------------
 * INA sampling from the machine-timer interrupt. The first deadline is one
 * period after the re-base's tick lock, each next one a period after the
 * last (a fixed grid, no drift), so the interrupts fall at the same
 * instructions of identical repetitions. */

static uint32_t sample_ticks;  /* armed by port_sampler_start; 0 = off */
static uint64_t deadline;

static void set_mtimecmp(uint64_t t) {
    CLINT_MTIMECMP_HI = 0xFFFFFFFFu; /* no spurious match between the halves */
    CLINT_MTIMECMP_LO = (uint32_t)t;
    CLINT_MTIMECMP_HI = (uint32_t)(t >> 32);
}

void virt_interrupt(void) {
    deadline += sample_ticks;
    set_mtimecmp(deadline);
    tp_power_sample_isr();
}

void port_timer_rebase(void) {
    virt_tick_lock(&CLINT_MTIME_LO, lock_q, lock_step);
    if (sample_ticks != 0) {
        ina226_standin_sync();
        deadline = port_ticks() + sample_ticks;
        set_mtimecmp(deadline);
        __asm volatile("csrs mie, %0" ::"r"(MIE_MTIE));
        __asm volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE));
    }
}

int port_sampler_start(uint32_t period_us) {
    if (period_us < SAMPLE_MIN_US) return -1;
    sample_ticks = period_us * (MTIME_HZ / 1000000u);
    return 0;
}

void port_sampler_stop(void) {
    __asm volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    __asm volatile("csrc mie, %0" ::"r"(MIE_MTIE));
    set_mtimecmp(~(uint64_t)0);
    sample_ticks = 0;
}

/* ----------------------------------------------------------------------------
 * No temperature sensor, no sync pin (ports/common's stubs); I2C reaches only
 * the INA226 stand-in. */

int port_i2c_write(uint8_t addr, const uint8_t *buf, size_t n) {
    return ina226_standin_write(addr, buf, n);
}

int port_i2c_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr) {
    return ina226_standin_write_read(addr, wr, nw, rd, nr);
}

/* ----------------------------------------------------------------------------
 * Facts */

void port_init(void) {
    uart_init();
    timer_init();

    PortInfo *info = port_info_from_linker();
    info->board = "riscv32-virt";
    info->clock_hz = MODEL_CLOCK_HZ;
    info->timer_hz = MTIME_HZ;
    info->timer_bits = 64;
    info->caps = TP_CAP_EMULATOR; /* the virt machine exists only in QEMU */

    set_mtimecmp(~(uint64_t)0);
    ina226_standin_init(&standin_board);
}
