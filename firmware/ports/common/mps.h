/* The Arm MPS FPGA machines QEMU models (ports/mps2-an500, ports/mps3-an547):
 * the Cortex-M core registers and the CMSDK APB UART both of them have. Their
 * differences are in each port's mps_board.h. */
#ifndef TP_MPS_H
#define TP_MPS_H

#include <stdint.h>

#include "mps_board.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* System control block (the ARMv7-M / ARMv8-M architecture) */
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_CPACR REG32(0xE000ED88u)
#define ICSR_PENDSTSET (1u << 26)
#define ICSR_PENDSTCLR (1u << 25)

/* SysTick */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1 = processor clock */

/* CMSDK APB UART (Arm DDI 0479, Cortex-M System Design Kit): one byte each
 * way, no FIFO */
#define UART_DATA REG32(MPS_UART0_BASE + 0x00u)
#define UART_STATE REG32(MPS_UART0_BASE + 0x04u)
#define UART_CTRL REG32(MPS_UART0_BASE + 0x08u)
#define UART_INTCLEAR REG32(MPS_UART0_BASE + 0x0Cu)
#define UART_BAUDDIV REG32(MPS_UART0_BASE + 0x10u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_STATE_OVERRUN (3u << 2) /* TX and RX overrun, write 1 to clear */
#define UART_CTRL_TXEN (1u << 0)
#define UART_CTRL_RXEN (1u << 1)

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

#define STACK_PAINT 0xA5A5A5A5u

void mps_uart_enable(void);

#endif /* TP_MPS_H */
