/* CoreMark port for QEMU's mps2-an386: SysTick time, the performance-run seeds, semihosting output.
 * The cycle model times the iterations from the execution trace (start_time to stop_time); the
 * SysTick figures CoreMark prints count emulated time, not cycles. */
#include "coremark.h"

#define SYST_CSR (*(volatile ee_u32 *)0xE000E010u)
#define SYST_RVR (*(volatile ee_u32 *)0xE000E014u)
#define SYST_CVR (*(volatile ee_u32 *)0xE000E018u)
#define SYSTICK_HZ 25000000u /* the machine's 25 MHz reference */
#define RELOAD 0x00FFFFFFu

#if VALIDATION_RUN
volatile ee_s32 seed1_volatile = 0x3415;
volatile ee_s32 seed2_volatile = 0x3415;
volatile ee_s32 seed3_volatile = 0x66;
#endif
#if PERFORMANCE_RUN
volatile ee_s32 seed1_volatile = 0x0;
volatile ee_s32 seed2_volatile = 0x0;
volatile ee_s32 seed3_volatile = 0x66;
#endif
#if PROFILE_RUN
volatile ee_s32 seed1_volatile = 0x8;
volatile ee_s32 seed2_volatile = 0x8;
volatile ee_s32 seed3_volatile = 0x8;
#endif
volatile ee_s32 seed4_volatile = ITERATIONS;
volatile ee_s32 seed5_volatile = 0;
ee_u32 default_num_contexts = 1;

static volatile ee_u32 wraps;
static CORE_TICKS start_time_val, stop_time_val;

void SysTick_Handler(void) { wraps++; }

static CORE_TICKS now(void) {
    ee_u32 w, v;
    do {
        w = wraps;
        v = SYST_CVR;
    } while (w != wraps);
    return w * (RELOAD + 1u) + (RELOAD - v);
}

/* noinline: the trace cuts the iterations at these two entries, which -flto would otherwise inline away */
__attribute__((noinline, used)) void start_time(void) { start_time_val = now(); }
__attribute__((noinline, used)) void stop_time(void) { stop_time_val = now(); }
CORE_TICKS get_time(void) { return stop_time_val - start_time_val; }
secs_ret time_in_secs(CORE_TICKS ticks) { return (secs_ret)ticks / (secs_ret)SYSTICK_HZ; }

void portable_init(core_portable *p, int *argc, char *argv[]) {
    (void)argc, (void)argv;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
    p->portable_id = 1;
}

void portable_fini(core_portable *p) { p->portable_id = 0; }
