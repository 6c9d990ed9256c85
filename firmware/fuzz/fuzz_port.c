/* A host "port" (core/port.h) for the frame fuzzer: the UART reads the
 * fuzzer's input and writes into a capture buffer, time is a counter, the
 * INA is the emulated boards' stand-in (ports/common/ina226_standin.c) and
 * the sampling interrupt fires from port_ticks() once a period has passed.
 * It stands for a board we cannot put under a sanitizer; everything above
 * it (core/app.c and the rest of core/) is the firmware's own code. */
#include "fuzz_port.h"

#include <stdlib.h>
#include <string.h>

#include "ina226_standin.h"
#include "telemetry.h"

#define FUZZ_ARENA_BYTES (256u * 1024u)
#define FUZZ_TIMER_HZ 1000000u
#define FUZZ_SAMPLE_MIN_US 100u

static PortInfo info;
static uint8_t *arena;
static const uint8_t *rx_data;
static size_t rx_len, rx_pos;
static uint8_t *tx_data;
static size_t tx_len, tx_cap;
static uint64_t now;
static uint32_t sample_ticks; /* 0: sampling off */
static uint64_t next_sample;
static int in_isr;

static const InaStandinBoard standin_board = {3300u, 30000u, 100000u, TP_INA_SHUNT_UOHM};

void fuzz_port_setup(const uint8_t *model, uint32_t model_bytes) {
    if (arena == NULL) arena = malloc(FUZZ_ARENA_BYTES);
    if (arena == NULL) abort();
    info.board = "fuzz-host";
    info.clock_hz = 100000000u;
    info.timer_hz = FUZZ_TIMER_HZ;
    info.timer_bits = 64;
    info.ram_total_bytes = FUZZ_ARENA_BYTES;
    info.flash_total_bytes = model_bytes;
    info.arena = arena;
    info.arena_bytes = FUZZ_ARENA_BYTES;
    info.stack_total_bytes = 8192;
    info.model = model;
    info.model_addr = 0x08020000u;
    info.model_region_bytes = model_bytes;
    info.caps = 0;
}

void fuzz_port_reset(const uint8_t *input, size_t n) {
    rx_data = input;
    rx_len = n;
    rx_pos = 0;
    tx_len = 0;
    now = 0;
    sample_ticks = 0;
    in_isr = 0;
    ina226_standin_init(&standin_board);
}

const uint8_t *fuzz_port_output(size_t *n) {
    *n = tx_len;
    return tx_data;
}

/* ----------------------------------------------------------------------------
 * core/port.h */

void port_init(void) {}

const PortInfo *port_info(void) { return &info; }

void port_uart_write(const uint8_t *buf, size_t n) {
    if (tx_len + n > tx_cap) {
        size_t cap = tx_cap ? tx_cap : 4096;
        while (cap < tx_len + n) cap *= 2;
        uint8_t *grown = realloc(tx_data, cap);
        if (grown == NULL) abort();
        tx_data = grown;
        tx_cap = cap;
    }
    memcpy(tx_data + tx_len, buf, n);
    tx_len += n;
}

int port_uart_read(void) {
    return rx_pos < rx_len ? rx_data[rx_pos++] : -1;
}

uint64_t port_ticks(void) {
    now += 7; /* every read moves time on, as a real counter would between reads */
    if (sample_ticks != 0 && !in_isr && now >= next_sample) {
        in_isr = 1;
        next_sample = now + sample_ticks;
        tp_power_sample_isr();
        in_isr = 0;
    }
    return now;
}

void port_timer_rebase(void) {
    if (sample_ticks != 0) {
        ina226_standin_sync();
        next_sample = now + sample_ticks;
    }
}

uint32_t port_stack_peak(void) { return 512; }
void port_stack_reset_peak(void) {}

int port_temp_read(int32_t *milli_celsius, uint16_t *flags) {
    (void)milli_celsius;
    (void)flags;
    return -1;
}

void port_sync_pin(int level) { (void)level; }

int port_i2c_write(uint8_t addr, const uint8_t *buf, size_t n) {
    return ina226_standin_write(addr, buf, n);
}

int port_i2c_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr) {
    return ina226_standin_write_read(addr, wr, nw, rd, nr);
}

int port_sampler_start(uint32_t period_us) {
    if (period_us < FUZZ_SAMPLE_MIN_US) return -1;
    sample_ticks = period_us * (FUZZ_TIMER_HZ / 1000000u);
    return 0;
}

void port_sampler_stop(void) { sample_ticks = 0; }
