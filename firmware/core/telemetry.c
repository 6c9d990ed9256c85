/* Run-time telemetry: see telemetry.h. */
#include "telemetry.h"

#include "port.h"

/* A compiler barrier: the ring's entry is written before its index moves.
 * Enough on the single-core MCUs this runs on. */
#define BARRIER() __asm volatile("" ::: "memory")

/* ----------------------------------------------------------------------------
 * I/O wait */

static volatile uint32_t wait_lo, wait_hi;

void tp_io_wait_add(uint32_t ticks) {
    uint32_t lo = wait_lo + ticks;
    wait_hi = wait_hi + (uint32_t)(lo < ticks); /* the carry */
    wait_lo = lo;
}

uint64_t tp_io_wait_ticks(void) { return ((uint64_t)wait_hi << 32) | wait_lo; }

uint32_t tp_io_wait_ticks_lo(void) { return wait_lo; }

/* ----------------------------------------------------------------------------
 * Power samples: a single-producer (the sampling interrupt), single-consumer
 * (the RUN handler) ring. Only the interrupt moves head, only the handler
 * moves tail. */

static TpIna ina;
static TpPowerSample ring[TP_POWER_RING];
static volatile uint32_t head, tail, drops;

int tp_power_init(void) {
    return tp_ina_init(&ina, TP_INA_ADDR, TP_INA_SHUNT_UOHM, TP_INA_CURRENT_LSB_NA);
}

const TpIna *tp_power_ina(void) { return &ina; }

void tp_power_reset(void) { tail = head; }

void tp_power_sample_isr(void) {
    uint64_t ticks = port_ticks();
    TpInaReading r;
    int rc = tp_ina_read(&ina, &r);
    uint32_t h = head;
    if (rc != 0 || h - tail >= TP_POWER_RING) {
        drops = drops + 1u;
        return;
    }
    TpPowerSample *s = &ring[h & (TP_POWER_RING - 1u)];
    s->ticks = ticks;
    s->r = r;
    s->drops = drops;
    BARRIER();
    head = h + 1u;
}

int tp_power_pop(TpPowerSample *s) {
    uint32_t t = tail;
    if (t == head) return 0;
    BARRIER();
    *s = ring[t & (TP_POWER_RING - 1u)];
    BARRIER();
    tail = t + 1u;
    return 1;
}

uint32_t tp_power_pending(void) { return head - tail; }

uint32_t tp_power_drops(void) { return drops; }
