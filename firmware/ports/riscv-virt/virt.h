/* The few devices of QEMU's riscv32 `virt` machine this port touches, with
 * their addresses from the machine's device tree (QEMU 7.2: dumpdtb). No
 * vendor headers exist for a board that is only an emulator. */
#ifndef TP_VIRT_H
#define TP_VIRT_H

#include <stdint.h>

#define REG8(addr) (*(volatile uint8_t *)(addr))
#define REG32(addr) (*(volatile uint32_t *)(addr))

/* NS16550A UART0 at 0x10000000, byte registers, input clock 3.6864 MHz */
#define UART0_BASE 0x10000000u
#define UART_RBR REG8(UART0_BASE + 0) /* read, DLAB = 0 */
#define UART_THR REG8(UART0_BASE + 0) /* write, DLAB = 0 */
#define UART_DLL REG8(UART0_BASE + 0) /* DLAB = 1 */
#define UART_IER REG8(UART0_BASE + 1)
#define UART_DLM REG8(UART0_BASE + 1) /* DLAB = 1 */
#define UART_FCR REG8(UART0_BASE + 2)
#define UART_LCR REG8(UART0_BASE + 3)
#define UART_MCR REG8(UART0_BASE + 4)
#define UART_LSR REG8(UART0_BASE + 5)
#define UART_CLOCK_HZ 3686400u
#define LCR_DLAB 0x80u
#define LCR_8N1 0x03u
#define FCR_ENABLE_CLEAR 0x07u /* FIFOs on, both cleared */
#define MCR_DTR_RTS 0x03u
#define LSR_DR 0x01u           /* a received byte is waiting */
#define LSR_THRE 0x20u         /* room in the transmit FIFO */

/* CLINT (SiFive-compatible ACLINT): the 64-bit machine timer, counting at the
 * device tree's timebase-frequency, 10 MHz */
#define CLINT_MTIME_LO REG32(0x0200BFF8u)
#define CLINT_MTIME_HI REG32(0x0200BFFCu)
#define CLINT_MTIMECMP_LO REG32(0x02004000u) /* hart 0 */
#define CLINT_MTIMECMP_HI REG32(0x02004004u)
#define MTIME_HZ 10000000u

/* Machine-mode interrupt enables */
#define MSTATUS_MIE (1u << 3)
#define MIE_MTIE (1u << 7)

/* start.S: see there. virt_interrupt (port.c) is its interrupt handler. */
void virt_interrupt(void);
uint32_t virt_tick_calibrate(volatile uint32_t *mtime_lo);
void virt_tick_lock(volatile uint32_t *mtime_lo, uint32_t period_instr, uint32_t period_ticks);

#endif /* TP_VIRT_H */
