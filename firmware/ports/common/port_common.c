/* The parts every bare-metal port shares (port_common.h): PortInfo from the
 * linker script, stack painting, and weak stubs for the hardware a board may
 * lack. A port's own definition of any weak function here replaces it. */
#include "port_common.h"

#include "app.h"

/* Linker script symbols (their addresses are the values). */
extern uint8_t __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint8_t __arena_start[], __arena_end[];
extern uint8_t __stack_bottom[], __stack_top[];
extern uint8_t __ram_start[], __ram_end[];
extern uint8_t __model_start[], __model_end[];
extern uint8_t __flash_total_bytes[];

/* Free stack is filled with this word; port_stack_peak() looks for the
 * deepest word that no longer holds it. */
#define STACK_PAINT 0xA5A5A5A5u

/* Bytes below the SP read in port_stack_reset_peak left unpainted: the
 * compiler may push the function's own frame (its return address) below the
 * value it read, and painting over that crashes the return. */
#define STACK_PAINT_MARGIN 64u

extern uint32_t __data_load;

static PortInfo info;

const PortInfo *port_info(void) { return &info; }

PortInfo *port_info_from_linker(void) {
    info.ram_total_bytes = (uint32_t)(__ram_end - __ram_start);
    info.flash_total_bytes = (uint32_t)(uintptr_t)__flash_total_bytes;
    info.static_ram_bytes = (uint32_t)((__data_end - __data_start) + (__bss_end - __bss_start));
    info.arena = __arena_start;
    info.arena_bytes = (uint32_t)(__arena_end - __arena_start);
    info.stack_total_bytes = (uint32_t)(__stack_top - __stack_bottom);
    info.model = __model_start;
    info.model_addr = (uint32_t)(uintptr_t)__model_start;
    info.model_region_bytes = (uint32_t)(__model_end - __model_start);
    return &info;
}

/* ----------------------------------------------------------------------------
 * Stack use, by painting: startup calls port_stack_reset_peak() once .bss
 * exists, and the deepest overwritten word marks the peak. */

static inline uintptr_t read_sp(void) {
    uintptr_t sp;
#if defined(__riscv)
    __asm volatile("mv %0, sp" : "=r"(sp));
#else
    __asm volatile("mov %0, sp" : "=r"(sp));
#endif
    return sp;
}

__attribute__((weak)) uint32_t port_stack_peak(void) {
    const uint32_t *p = (const uint32_t *)(void *)__stack_bottom;
    const uint32_t *top = (const uint32_t *)(void *)__stack_top;
    while (p < top && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

__attribute__((weak)) void port_stack_reset_peak(void) {
    /* everything below the caller's frame is free; an interrupt taken
     * meanwhile may leave its frame unpainted, which is stack it really uses */
    uint32_t *end = (uint32_t *)(read_sp() - STACK_PAINT_MARGIN);
    for (uint32_t *p = (uint32_t *)(void *)__stack_bottom; p < end;) *p++ = STACK_PAINT;
}

/* ----------------------------------------------------------------------------
 * Start */

/* Kept out of the host build, which links the same core with its own main
 * (tools/). Out of line so that port_crt_start's call is a tail call. */
__attribute__((noinline)) int main(void) {
    port_init();
    tp_app_main();
    return 0;
}

int port_crt_start(void) {
    /* nothing global exists before these two loops */
    uint32_t *src = &__data_load;
    for (uint32_t *dst = (uint32_t *)(void *)__data_start; dst < (uint32_t *)(void *)__data_end;) *dst++ = *src++;
    for (uint32_t *dst = (uint32_t *)(void *)__bss_start; dst < (uint32_t *)(void *)__bss_end;) *dst++ = 0;
    /* paint the free stack so the deepest use can be measured later */
    port_stack_reset_peak();
    return main();
}

/* ----------------------------------------------------------------------------
 * Stubs: what port.h specifies for a board without the hardware. */

__attribute__((weak)) int port_temp_read(int32_t *milli_celsius, uint16_t *flags) {
    (void)milli_celsius;
    (void)flags;
    return -1;
}

__attribute__((weak)) void port_sync_pin(int level) { (void)level; }

__attribute__((weak)) int port_i2c_write(uint8_t addr, const uint8_t *buf, size_t n) {
    (void)addr;
    (void)buf;
    (void)n;
    return -1;
}

__attribute__((weak)) int port_i2c_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd,
                                              size_t nr) {
    (void)addr;
    (void)wr;
    (void)nw;
    (void)rd;
    (void)nr;
    return -1;
}

__attribute__((weak)) int port_sampler_start(uint32_t period_us) {
    (void)period_us;
    return -1;
}

__attribute__((weak)) void port_sampler_stop(void) {}

__attribute__((weak)) void port_timer_rebase(void) {}
