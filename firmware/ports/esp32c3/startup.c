/* C runtime setup, called by _start once sp and gp are set. The ROM already
 * copied .data (and .rodata) into DRAM; .bss is ours to zero. Nothing here
 * touches a global variable before that. */
#include <stdint.h>

#include "esp32c3.h"
#include "port_common.h"

/* Linker script symbols (their addresses are the values). */
extern uint32_t __bss_start, __bss_end;

void reset_c(void);

/* In flash boot mode the ROM arms the RTC watchdog and timer group 0's
 * watchdog, and the super watchdog runs from power-on; a second-stage
 * bootloader would disarm them, and there is none here. A RUN computes for
 * seconds without feeding anything, so all three are switched off (the
 * super watchdog cannot be, it is set to feed itself). */
static void watchdogs_off(void) {
    RTC_CNTL_WDTWPROTECT_REG = RTC_CNTL_WDT_WKEY;
    RTC_CNTL_WDTCONFIG0_REG &= ~(RTC_CNTL_WDT_EN | RTC_CNTL_WDT_FLASHBOOT_MOD_EN);
    RTC_CNTL_WDTWPROTECT_REG = 0;

    RTC_CNTL_SWD_WPROTECT_REG = RTC_CNTL_SWD_WKEY;
    RTC_CNTL_SWD_CONF_REG |= RTC_CNTL_SWD_AUTO_FEED_EN;
    RTC_CNTL_SWD_WPROTECT_REG = 0;

    static const uint32_t timg[2] = {TIMG0_BASE, TIMG1_BASE};
    for (int i = 0; i < 2; i++) {
        TIMG_WDTWPROTECT_REG(timg[i]) = TIMG_WDT_WKEY;
        uint32_t conf = TIMG_WDTCONFIG0_REG(timg[i]);
        conf &= ~(TIMG_WDT_EN | TIMG_WDT_FLASHBOOT_MOD_EN);
        TIMG_WDTCONFIG0_REG(timg[i]) = conf | TIMG_WDT_CONF_UPDATE_EN; /* applied asynchronously */
        TIMG_WDTWPROTECT_REG(timg[i]) = 0;
    }
}

void reset_c(void) {
    watchdogs_off();

    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;

    /* Paint the free stack so the deepest use can be measured later. */
    port_stack_reset_peak();

    main();
}
