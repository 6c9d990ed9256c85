/* Minimal Cortex-M4F start for QEMU's mps2-an386: vector table at 0, FPU on, newlib's semihosting
 * (librdimon) for printf, exit through semihosting so QEMU ends with the program. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __bss_start__, __bss_end__, __stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);
void SysTick_Handler(void);

void Reset_Handler(void);
void _init(void);
void _fini(void);

/* newlib's init/fini arrays call these; -nostartfiles leaves them out. `used`: with -flto the linker
 * would drop them before it sees libc's references. */
__attribute__((used)) void _init(void) {}
__attribute__((used)) void _fini(void) {}

void Reset_Handler(void) {
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
    __asm volatile("dsb\n isb");
    for (uint32_t *p = &__bss_start__; p < &__bss_end__; p++) *p = 0;
    initialise_monitor_handles();
    exit(main());
}

static void Fault_Handler(void) {
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, SysTick_Handler,
};
