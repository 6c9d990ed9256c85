/* Startup of the MPS ports (mps2-an500, mps3-an547): vector table and
 * Reset_Handler. QEMU's -kernel loads the ELF where it is linked and
 * the core fetches SP and PC from the vector table at address 0 (VTOR's
 * reset value on both machines).
 *
 * Reset_Handler runs before .data and .bss exist, so it touches no global
 * variable until they are set up, and no float or vector instruction until
 * the FPU (and with it Helium on the Cortex-M55) is on. */
#include <stdint.h>

#include "mps.h"
#include "port_common.h"

extern uint32_t __stack_top;

void Reset_Handler(void);
void SysTick_Handler(void);

/* A fault or a stray interrupt stops here; there is nothing to recover in a
 * profiling run. */
void Default_Handler(void) {
    for (;;) {
    }
}

typedef void (*Vector)(void);

__attribute__((section(".isr_vector"), used)) const Vector vector_table[MPS_N_VECTORS] = {
    [0] = (Vector)(uintptr_t)&__stack_top,
    [1] = Reset_Handler,
    [2 ... 14] = Default_Handler,
    [15] = SysTick_Handler,
    [16 ... MPS_N_VECTORS - 1] = Default_Handler,
};

void Reset_Handler(void) {
    /* 1. FPU (and MVE, which shares CP10/CP11 on ARMv8.1-M): full access.
     *    Any float instruction before this is a UsageFault. */
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");

    /* 2. UART on before the slow model CRC, so the host's first bytes wait
     *    in the receiver instead of nowhere (QEMU's CMSDK UART takes input
     *    only while RX is enabled). */
    mps_uart_enable();

    /* 3. C runtime (.data, .bss), stack paint, main (ports/common). */
    port_crt_start();
    for (;;) {
    }
}
