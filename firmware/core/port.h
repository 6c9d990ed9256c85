/* What every port implements: the few board facts and I/O the portable core
 * needs. Everything else (clocks, pins, vector table) stays in the port. */
#ifndef TP_PORT_H
#define TP_PORT_H

#include <stddef.h>
#include <stdint.h>

/* Board facts, constant once port_init has run. They go out in HELLO. */
typedef struct {
    const char *board;           /* board name, e.g. "stm32f405" */
    uint32_t clock_hz;           /* core clock */
    uint32_t timer_hz;           /* rate of port_ticks() */
    uint8_t timer_bits;          /* hardware counter width before extension */
    uint32_t ram_total_bytes;
    uint32_t flash_total_bytes;
    uint32_t static_ram_bytes;   /* .data + .bss */
    uint8_t *arena;              /* RAM left for the model's buffers */
    uint32_t arena_bytes;
    uint32_t stack_total_bytes;
    const uint8_t *model;        /* model region, read in place */
    uint32_t model_addr;         /* the same, as the board's bus address */
    uint32_t model_region_bytes;
    uint16_t caps;               /* TP_CAP_TEMP_SENSOR, TP_CAP_SYNC_PIN, TP_CAP_EMULATOR where they apply */
} PortInfo;

/* Brings up the UART and the timer (the port's startup may already have
 * enabled the UART earlier, see ports/stm32f4). */
void port_init(void);

const PortInfo *port_info(void);

/* Blocking write of n bytes. */
void port_uart_write(const uint8_t *buf, size_t n);

/* Non-blocking read: the next received byte, or -1 when none is waiting. */
int port_uart_read(void);

/* Time in timer ticks, extended to 64 bits; monotonic. */
uint64_t port_ticks(void);

/* Folds the elapsed count into the 64-bit base and restarts the hardware
 * counter, so the counter wrap falls at the same point of every identical
 * repetition. port_ticks() stays monotonic across the call. */
void port_timer_rebase(void);

/* Stack: port_stack_peak() is the deepest use, in bytes, since boot or the
 * last port_stack_reset_peak() (which repaints the unused part). */
uint32_t port_stack_peak(void);
void port_stack_reset_peak(void);

/* ----------------------------------------------------------------------------
 * Telemetry (docs/protocol.md: CPU, TEMP, POWER; firmware/README.md). A port
 * without the hardware implements these as the stubs the comments name. */

/* The on-chip temperature sensor, in milli-degrees Celsius, and TEMP flags
 * (TP_TEMP_FLAG_CALIBRATED). Returns 0, or -1 when there is no sensor. Only
 * called outside the timed part of a RUN. */
int port_temp_read(int32_t *milli_celsius, uint16_t *flags);

/* The sync marker: drives the port's sync pin high (1) or low (0). One store,
 * the same cost whatever the level (a no-op without a pin). */
void port_sync_pin(int level);

/* I2C master for the INA sensor, 7-bit address. write: n bytes; write_read:
 * nw bytes, a repeated start, nr bytes read. Return 0 when every byte was
 * acknowledged, -1 otherwise (stub: -1, no device). May run in the sampling
 * interrupt. */
int port_i2c_write(uint8_t addr, const uint8_t *buf, size_t n);
int port_i2c_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr);

/* Periodic sampling for POWER frames. port_sampler_start(period_us) arms it
 * (returns -1 when the period is outside what the port can do; stub: -1);
 * the next port_timer_rebase() starts the period there, so every sample
 * falls at the same instruction of identical repetitions. The port's timer
 * interrupt then calls tp_power_sample_isr() (telemetry.h) once a period
 * until port_sampler_stop(). */
int port_sampler_start(uint32_t period_us);
void port_sampler_stop(void);

#endif /* TP_PORT_H */
