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

#endif /* TP_PORT_H */
