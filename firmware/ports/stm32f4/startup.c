/* Cortex-M4F startup for the STM32F405: vector table and Reset_Handler.
 *
 * Reset_Handler runs before .data and .bss exist, so it touches no global
 * variable until they are set up, and no float until the FPU is on. */
#include <stdint.h>

#include "port_common.h"
#include "stm32f4.h"

/* Linker script symbol (its address is the value). */
extern uint32_t __stack_top;

void Reset_Handler(void);
void SysTick_Handler(void);

/* A fault or a stray interrupt stops here; a debugger shows which one from
 * the IPSR. There is no recovery to attempt in a profiling run. */
void Default_Handler(void) {
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*Vector)(void);

/* 16 core exceptions + 82 STM32F405 interrupts; only SysTick is used. */
#define N_VECTORS (16 + 82)

__attribute__((section(".isr_vector"), used)) const Vector vector_table[N_VECTORS] = {
    [0] = (Vector)(uintptr_t)&__stack_top, /* initial SP */
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    [16 ... N_VECTORS - 1] = Default_Handler,
};

void Reset_Handler(void) {
    /* 1. FPU: full access to CP10/CP11. With -mfloat-abi=hard any float
     *    instruction before this would be a UsageFault. */
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");

    /* 2. UART: QEMU's STM32 USART drops bytes that arrive while it is
     *    disabled, so enable it before the slow model CRC. */
    port_uart_enable();

    /* 3. C runtime (.data, .bss), stack paint, main (ports/common). */
    port_crt_start();
    for (;;) {
    }
}
