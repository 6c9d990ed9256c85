/* The MPS ports (mps2-an500: Cortex-M7, mps3-an547: Cortex-M55): CMSDK UART0,
 * SysTick time base, memory facts. Both machines exist for us only as QEMU
 * models of Arm's FPGA images; each stands for a real part with the same
 * core (mps_board.h, docs/hardware.md), not the same peripherals.
 *
 * Clocks. The timer is SysTick on the processor clock, which QEMU runs at the
 * machine's SYSCLK (25 MHz on the AN500, 32 MHz on the AN547) of virtual
 * time; under -icount shift=N every instruction advances virtual time by 2^N
 * ns, so a tick is SYSCLK / 10^9 * 2^N instructions apart (5 on the AN500 and
 * 3.9 on the AN547 at N = 3) and timer_hz in HELLO is SYSCLK. clock_hz is the
 * modelled part's clock (480 MHz STM32H7, 800 MHz STM32N6): the host divides
 * it by instructions per token for the rate at one instruction a cycle. The
 * device-timed rates are those of the emulated core, 125 M instructions per
 * second of virtual time at N = 3, whatever clock_hz says.
 *
 * Telemetry: no temperature sensor and no sync pin (the FPGA's LEDs are not
 * worth a pin model); INA samples come from the INA226 stand-in
 * (ports/common/ina226_standin.c), read from the SysTick interrupt. */
#include "ina226_standin.h"
#include "mps.h"
#include "port_common.h"
#include "protocol.h"
#include "telemetry.h"

#define BAUD 115200u
#define SAMPLE_MIN_US 100u

static const InaStandinBoard standin_board = {3300u, MPS_IDLE_UW, MPS_ACTIVE_UW, TP_INA_SHUNT_UOHM};

/* ----------------------------------------------------------------------------
 * UART0, 115200 8N1, polled. BAUDDIV is PCLK / baud (at least 16); QEMU only
 * checks that bound. */

void mps_uart_enable(void) {
    UART_BAUDDIV = MPS_UART_PCLK_HZ / BAUD;
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;
}

/* Waiting for room counts as I/O wait (telemetry.h). */
void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (UART_STATE & UART_STATE_TXFULL) {
            uint32_t t0 = (uint32_t)port_ticks();
            while (UART_STATE & UART_STATE_TXFULL) {
            }
            tp_io_wait_add((uint32_t)port_ticks() - t0);
        }
        UART_DATA = buf[i];
    }
}

int port_uart_read(void) {
    uint32_t state = UART_STATE;
    if (state & UART_STATE_OVERRUN) UART_STATE = UART_STATE_OVERRUN; /* the broken frame fails its CRC */
    if (state & UART_STATE_RXFULL) return (int)(UART_DATA & 0xFFu);
    return -1;
}

/* ----------------------------------------------------------------------------
 * Time base: SysTick (ports/common/systick.c). A restart writes CVR, which
 * QEMU's SysTick takes as the start of a new period at that instruction, so
 * identical repetitions read identical tick deltas. */

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
    systick_init(MPS_SYSCLK_HZ, SAMPLE_MIN_US, 1);

    PortInfo *info = port_info_from_linker();
    info->board = MPS_BOARD_NAME;
    info->clock_hz = MPS_MODEL_CLOCK_HZ;
    info->timer_hz = MPS_SYSCLK_HZ;
    info->timer_bits = 24;
    info->caps = TP_CAP_EMULATOR; /* we run these machines only under QEMU */

    ina226_standin_init(&standin_board);
}
