/* The Cortex-M core registers and interrupt masking every Arm port uses
 * (ARMv7-M and ARMv8-M Architecture Reference Manuals), named after them. No
 * vendor headers: the ports need too few registers to justify CMSIS. */
#ifndef TP_CORTEX_M_H
#define TP_CORTEX_M_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* System control block */
#define SCB_ICSR REG32(0xE000ED04u)    /* interrupt control and state */
#define SCB_CPACR REG32(0xE000ED88u)   /* coprocessor access (FPU enable) */
#define ICSR_PENDSTSET (1u << 26)      /* SysTick exception pending */
#define ICSR_PENDSTCLR (1u << 25)

/* SysTick */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)   /* 1 = processor clock */

static inline uint32_t irq_save(void) {
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask) {
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* ports/common/systick.c: starts SysTick on the processor clock, timer_hz,
 * as the port's 64-bit tick count; INA sample periods shorter than
 * min_sample_us are refused; ina_standin: the INA is the INA226 stand-in,
 * whose conversion clock restarts at each re-base. */
void systick_init(uint32_t timer_hz, uint32_t min_sample_us, int ina_standin);

#endif /* TP_CORTEX_M_H */
