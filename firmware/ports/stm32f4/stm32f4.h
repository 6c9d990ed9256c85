/* The handful of STM32F405 / Cortex-M4 registers this port touches, named
 * after the reference manual (RM0090) and the ARMv7-M ARM. No vendor headers:
 * the port needs too few registers to justify CMSIS. */
#ifndef TP_STM32F4_H
#define TP_STM32F4_H

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

/* RCC: only peripheral clock enables (see port.c on the clock tree) */
#define RCC_AHB1ENR REG32(0x40023830u)
#define RCC_APB2ENR REG32(0x40023844u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB2ENR_USART1EN (1u << 4)

/* GPIOA: PA9 = USART1_TX, PA10 = USART1_RX, alternate function 7 */
#define GPIOA_MODER REG32(0x40020000u)
#define GPIOA_AFRH REG32(0x40020024u)

/* USART1 */
#define USART1_SR REG32(0x40011000u)
#define USART1_DR REG32(0x40011004u)
#define USART1_BRR REG32(0x40011008u)
#define USART1_CR1 REG32(0x4001100Cu)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

static inline uint32_t irq_save(void) {
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask) {
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

static inline uintptr_t read_sp(void) {
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Free stack is filled with this word; port_stack_peak() looks for the
 * deepest word that no longer holds it. */
#define STACK_PAINT 0xA5A5A5A5u

/* Port functions the startup code calls before C state exists. */
void port_uart_enable(void);

#endif /* TP_STM32F4_H */
