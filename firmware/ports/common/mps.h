/* The Arm MPS FPGA machines QEMU models (ports/mps2-an500, ports/mps3-an547):
 * the CMSDK APB UART both of them have (their cores' registers are in
 * cortex_m.h). Their
 * differences are in each port's mps_board.h. */
#ifndef TP_MPS_H
#define TP_MPS_H

#include <stdint.h>

#include "mps_board.h"

#include "cortex_m.h"

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

void mps_uart_enable(void);

#endif /* TP_MPS_H */
