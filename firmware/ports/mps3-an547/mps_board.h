/* QEMU's mps3-an547 (Arm MPS3 FPGA image AN547: a Cortex-M55 with Helium in
 * the Corstone SSE-300 subsystem), as QEMU 7.2 models it (hw/arm/mps2-tz.c,
 * hw/arm/armsse.c; `info mtree` in its monitor). The port's code is
 * ports/common/mps_port.c; this header holds what differs between the two
 * MPS machines. The machine shares the core with an STM32N6, not its
 * peripherals: see docs/hardware.md.
 *
 * The core starts in the Secure state with the SAU off, so every access is
 * Secure; the port uses the Secure aliases of the peripherals (0x5xxxxxxx). */
#ifndef TP_MPS_BOARD_H
#define TP_MPS_BOARD_H

#define MPS_BOARD_NAME "mps3-an547"

/* CMSDK APB UART0 behind the APB PPC (Secure alias of 0x49303000) */
#define MPS_UART0_BASE 0x59303000u
/* SYSCLK (MAINCLK of the SSE-300): SysTick's processor clock; the UART's
 * PCLK is the 25 MHz APB clock */
#define MPS_SYSCLK_HZ 32000000u
#define MPS_UART_PCLK_HZ 25000000u

/* The part this board stands for (the stm32n657 profile): clock_hz in HELLO,
 * used to turn instruction counts into rates at one instruction a cycle. */
#define MPS_MODEL_CLOCK_HZ 800000000u

/* The INA226 stand-in's power model: assumed STM32N6 figures at 800 MHz with
 * the NPU and peripherals off, 100 mA running and 30 mA in sleep at 3.3 V
 * (the same figures as the stm32n657 board profile). */
#define MPS_IDLE_UW 99000u
#define MPS_ACTIVE_UW 330000u

/* 16 core exceptions + the SSE-300's 96 external interrupts (none used) */
#define MPS_N_VECTORS (16 + 96)

#endif /* TP_MPS_BOARD_H */
