/* Run-time telemetry streamed beside the tokens (docs/protocol.md: CPU,
 * TEMP, POWER): the I/O wait count behind the CPU frames, and the ring of
 * INA samples that the port's sampling interrupt fills and the RUN handler
 * drains at token boundaries. */
#ifndef TP_TELEMETRY_H
#define TP_TELEMETRY_H

#include <stdint.h>

#include "ina2xx.h"

/* ----------------------------------------------------------------------------
 * I/O wait: ticks the CPU spent polling the UART (for transmit room or a
 * received byte). Ports add to it from their UART code, in the main context
 * only; the CPU frames report its growth over each phase. */

void tp_io_wait_add(uint32_t ticks);
uint64_t tp_io_wait_ticks(void);
/* The low 32 bits, one aligned load: safe to read from an interrupt. */
uint32_t tp_io_wait_ticks_lo(void);

/* ----------------------------------------------------------------------------
 * Power samples */

/* Ring size in samples (a power of two); a full ring drops new samples and
 * counts them. 24 bytes a sample. */
#ifndef TP_POWER_RING
#define TP_POWER_RING 64
#endif

/* RUN's sample period when it gives 0 (docs/protocol.md). */
#define TP_POWER_PERIOD_US 10000u

typedef struct {
    uint64_t ticks;    /* when the interrupt began the reading */
    TpInaReading r;
    uint32_t drops;    /* samples dropped since boot when this one was stored */
} TpPowerSample;

/* Probes and calibrates the INA (ina2xx.h build options). Returns the chip,
 * 0 when none answered. Once, at boot. */
int tp_power_init(void);
const TpIna *tp_power_ina(void);

/* Empties the ring; call before sampling starts. */
void tp_power_reset(void);

/* The port's sampling interrupt calls this once a period: one INA reading
 * into the ring. Its cost depends only on what the bus returns. */
void tp_power_sample_isr(void);

/* Main context: the oldest sample, 1 when there was one, else 0. */
int tp_power_pop(TpPowerSample *s);

/* Samples stored and not yet popped. */
uint32_t tp_power_pending(void);

/* Samples dropped since boot (a full ring or a failed bus transfer). */
uint32_t tp_power_drops(void);

#endif /* TP_TELEMETRY_H */
