/* The Cortex-M ports' time base and INA sampling, on SysTick
 * (cortex_m.h: systick_init): port_ticks, port_timer_rebase,
 * port_sampler_start, port_sampler_stop and SysTick_Handler. Used by
 * ports/stm32f4 and the MPS ports (mps_port.c).
 *
 * Time base: SysTick at the processor clock, 24 bits, extended to 64 bits
 * by counting wraps in its interrupt.
 *
 * After a restart (a write to CVR, which clears it) the counter reads 0, then
 * reloads RVR = period - 1 on the next tick and counts down; reaching 0
 * again, one full period later, pends the SysTick exception. So the ticks
 * since the restart are wraps * period + ((period - CVR) mod period), where
 * wraps must include a wrap whose interrupt is pending but not yet taken.
 *
 * The period is 2^24 ticks, except while INA samples stream: then it is the
 * sample period, and the wrap interrupt takes a sample as well. Both start
 * at a re-base, so the interrupts fall at the same instructions of identical
 * repetitions. */
#include "cortex_m.h"
#include "ina226_standin.h"
#include "port.h"
#include "telemetry.h"

#define SYST_PERIOD (1u << 24)

static volatile uint32_t systick_wraps; /* wraps since the last restart */
static uint64_t tick_base;               /* ticks before the last restart */
static uint32_t syst_period = SYST_PERIOD;
static volatile int sampling;            /* the wrap interrupt samples the INA */
static uint32_t sample_period;           /* ticks, armed by port_sampler_start; 0 = off */
static uint32_t ticks_per_us;            /* SysTick's clock, in MHz */
static uint32_t sample_min_us;           /* the shortest sample period the INA path allows */
static int standin;                      /* the INA is the stand-in: sync it at each re-base */

/* A port that only ever runs emulated (the MPS ports) builds this file with
 * TP_SYSTICK_STANDIN=1 (port.mk): then the re-base syncs the stand-in
 * without testing a flag, as its own copy of this code did, so its
 * instructions after the restart are unchanged (see ticks_now). */
#ifndef TP_SYSTICK_STANDIN
#define TP_SYSTICK_STANDIN standin
#endif

void SysTick_Handler(void) {
    systick_wraps++;
    if (sampling) tp_power_sample_isr();
}

/* Caller masks interrupts. port_ticks and the sampler's stop inline it; the
 * re-base calls it out of line (ticks_locked below). That is the code
 * the ports had before they shared this file, and it matters: the tick edges
 * fall a fixed number of instructions after the restart's CVR write, so an
 * instruction more or less between that write and the RUN would move every
 * tick reading of the RUN by a fraction of a tick, and tick-derived figures
 * (instructions per token) by one tick now and then. */
static inline __attribute__((always_inline)) uint64_t ticks_now(void) {
    uint32_t wraps = systick_wraps;
    uint32_t cvr = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) {
        /* A wrap happened, before or just after the CVR read: re-read so the
         * count certainly belongs to the new period. */
        wraps++;
        cvr = SYST_CVR;
    }
    uint32_t in_period = cvr == 0 ? 0 : syst_period - cvr;
    return tick_base + (uint64_t)wraps * syst_period + in_period;
}

static __attribute__((noinline)) uint64_t ticks_locked(void) { return ticks_now(); }

uint64_t port_ticks(void) {
    uint32_t primask = irq_save();
    uint64_t t = ticks_now();
    irq_restore(primask);
    return t;
}

/* Folds the elapsed ticks, `now`, into the base and restarts SysTick with
 * `period`. */
static void restart_locked(uint64_t now, uint32_t period) {
    tick_base = now;
    syst_period = period;
    SYST_RVR = period - 1u;
    SYST_CVR = 0;                /* restart the period: wraps now fall at fixed offsets */
    SCB_ICSR = ICSR_PENDSTCLR;   /* a wrap pending from before is already in tick_base */
    systick_wraps = 0;
}

void port_timer_rebase(void) {
    uint32_t primask = irq_save();
    uint32_t period = sample_period != 0 ? sample_period : SYST_PERIOD;
    restart_locked(ticks_locked(), period);
    if (sample_period != 0) {
        if (TP_SYSTICK_STANDIN) ina226_standin_sync();
        sampling = 1;
    }
    irq_restore(primask);
}

int port_sampler_start(uint32_t period_us) {
    uint64_t ticks = (uint64_t)period_us * ticks_per_us;
    if (period_us < sample_min_us || ticks > SYST_PERIOD) return -1;
    sample_period = (uint32_t)ticks;
    return 0;
}

void port_sampler_stop(void) {
    uint32_t primask = irq_save();
    sampling = 0;
    sample_period = 0;
    restart_locked(ticks_now(), SYST_PERIOD);
    irq_restore(primask);
}

void systick_init(uint32_t timer_hz, uint32_t min_sample_us, int ina_standin) {
    ticks_per_us = timer_hz / 1000000u;
    sample_min_us = min_sample_us;
    standin = ina_standin;
    SYST_CSR = 0;
    SYST_RVR = SYST_PERIOD - 1u;
    SYST_CVR = 0;
    SCB_ICSR = ICSR_PENDSTCLR;
    systick_wraps = 0;
    tick_base = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}
