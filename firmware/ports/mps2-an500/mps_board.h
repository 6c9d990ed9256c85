/* QEMU's mps2-an500 (Arm MPS2 FPGA image AN500: a Cortex-M7), as QEMU 7.2
 * models it (hw/arm/mps2.c; `info mtree` in its monitor). The port's code is
 * ports/common/mps_port.c; this header holds what differs between the two
 * MPS machines. The machine shares the core with an STM32H7, not its
 * peripherals: see docs/hardware.md. */
#ifndef TP_MPS_BOARD_H
#define TP_MPS_BOARD_H

#define MPS_BOARD_NAME "mps2-an500"

/* CMSDK APB UART0, the machine's first serial port */
#define MPS_UART0_BASE 0x40004000u
/* SYSCLK: the UART's PCLK and SysTick's processor clock (CLKSOURCE = 1) */
#define MPS_SYSCLK_HZ 25000000u
#define MPS_UART_PCLK_HZ 25000000u

/* The part this board stands for (the stm32h743 profile): clock_hz in HELLO,
 * used to turn instruction counts into rates at one instruction a cycle. */
#define MPS_MODEL_CLOCK_HZ 480000000u

/* The INA226 stand-in's power model: the STM32H743's typical run current at
 * 480 MHz with the peripherals off, rounded to 120 mA, and 35 mA in sleep,
 * at 3.3 V (the same figures as the stm32h743 board profile). */
#define MPS_IDLE_UW 115500u
#define MPS_ACTIVE_UW 396000u

/* 16 core exceptions + the machine's 32 external interrupts (none used) */
#define MPS_N_VECTORS (16 + 32)

#endif /* TP_MPS_BOARD_H */
