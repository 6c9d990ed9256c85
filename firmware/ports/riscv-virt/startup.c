/* C runtime setup, called by _start (start.S) once sp and gp are set. It
 * touches no global variable until .data and .bss exist. */
#include <stdint.h>

#include "virt.h"

/* Linker script symbols (their addresses are the values). */
extern uint32_t __stack_bottom;
extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;

int main(void);
void reset_c(void);

void reset_c(void) {
    /* .data from its load address (the kernel image), .bss zeroed */
    uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;

    /* Paint the free stack so the deepest use can be measured later. */
    uint32_t *sp = (uint32_t *)read_sp();
    for (uint32_t *p = &__stack_bottom; p < sp;) *p++ = STACK_PAINT;

    main();
}
