/* STM32F405 port: USART1, SysTick time base, memory facts.
 *
 * Clock tree: this port does not program RCC/PLL. QEMU does not model the
 * STM32F4 RCC (its registers read 0, so waiting for PLLRDY would hang), and
 * under QEMU the core clock and SysTick are the 168 MHz the board model
 * declares. On real hardware the chip then still runs from the 16 MHz HSI:
 * the hardware bring-up must add the PLL setup (HSE -> 168 MHz, APB2 =
 * 84 MHz, flash wait states) before port_init, or else clock_hz, timer_hz and
 * the USART baud divisor below are wrong. */
#include "port.h"

#include "stm32f4.h"

/* Linker script symbols (their addresses are the values). */
extern uint8_t __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint8_t __arena_start[], __arena_end[];
extern uint8_t __stack_bottom[], __stack_top[];
extern uint8_t __ram_start[], __ram_end[];
extern uint8_t __model_start[], __model_end[];
extern uint8_t __flash_total_bytes[];

#define CORE_HZ 168000000u
#define APB2_HZ (CORE_HZ / 2u) /* USART1 clock once the PLL is configured */
#define BAUD 115200u

static PortInfo info;

/* ----------------------------------------------------------------------------
 * USART1, 115200 8N1, polled. */

void port_uart_enable(void) {
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    /* PA9/PA10: alternate function 7 (QEMU ignores GPIO, hardware needs it) */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);
    /* oversampling by 16: BRR = APB2_HZ / BAUD, rounded (mantissa.fraction/16) */
    USART1_BRR = (APB2_HZ + BAUD / 2u) / BAUD;
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE; /* 8N1 is the reset default */
}

void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        while ((USART1_SR & USART_SR_TXE) == 0) {
        }
        USART1_DR = buf[i];
    }
}

int port_uart_read(void) {
    uint32_t sr = USART1_SR;
    if (sr & USART_SR_RXNE) return (int)(USART1_DR & 0xFFu);
    /* an overrun (bytes lost while busy) is cleared by reading SR then DR;
     * the broken frame then fails its CRC and is reported */
    if (sr & USART_SR_ORE) (void)USART1_DR;
    return -1;
}

/* ----------------------------------------------------------------------------
 * Time base: SysTick at the core clock, 24 bits, extended to 64 bits by
 * counting wraps in its interrupt.
 *
 * After a restart (a write to CVR, which clears it) the counter reads 0, then
 * reloads 0xFFFFFF on the next tick and counts down; reaching 0 again, one
 * full period (2^24 ticks) later, pends the SysTick exception. So the ticks
 * since the restart are wraps * 2^24 + ((2^24 - CVR) mod 2^24), where wraps
 * must include a wrap whose interrupt is pending but not yet taken. */

#define SYST_PERIOD (1u << 24)
#define SYST_MASK (SYST_PERIOD - 1u)

static volatile uint32_t systick_wraps; /* wraps since the last restart */
static uint64_t tick_base;               /* ticks before the last restart */

void SysTick_Handler(void) { systick_wraps++; }

/* Caller masks interrupts. */
static uint64_t ticks_locked(void) {
    uint32_t wraps = systick_wraps;
    uint32_t cvr = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) {
        /* A wrap happened, before or just after the CVR read: re-read so the
         * count certainly belongs to the new period. */
        wraps++;
        cvr = SYST_CVR;
    }
    return tick_base + ((uint64_t)wraps << 24) + ((SYST_PERIOD - cvr) & SYST_MASK);
}

uint64_t port_ticks(void) {
    uint32_t primask = irq_save();
    uint64_t t = ticks_locked();
    irq_restore(primask);
    return t;
}

void port_timer_rebase(void) {
    uint32_t primask = irq_save();
    tick_base = ticks_locked();
    SYST_CVR = 0;                /* restart the period: wraps now fall at fixed offsets */
    SCB_ICSR = ICSR_PENDSTCLR;   /* a wrap pending from before is already in tick_base */
    systick_wraps = 0;
    irq_restore(primask);
}

static void timer_init(void) {
    SYST_CSR = 0;
    SYST_RVR = SYST_MASK;
    SYST_CVR = 0;
    SCB_ICSR = ICSR_PENDSTCLR;
    systick_wraps = 0;
    tick_base = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

/* ----------------------------------------------------------------------------
 * Stack use, by painting: startup fills the free stack with STACK_PAINT and
 * the deepest overwritten word marks the peak. */

uint32_t port_stack_peak(void) {
    const uint32_t *p = (const uint32_t *)(void *)__stack_bottom;
    const uint32_t *top = (const uint32_t *)(void *)__stack_top;
    while (p < top && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

void port_stack_reset_peak(void) {
    /* everything below the current SP is free; an interrupt taken meanwhile
     * may leave its frame unpainted, which is stack it really uses */
    uint32_t *sp = (uint32_t *)read_sp();
    for (uint32_t *p = (uint32_t *)(void *)__stack_bottom; p < sp;) *p++ = STACK_PAINT;
}

/* ----------------------------------------------------------------------------
 * Facts */

void port_init(void) {
    /* startup enabled the UART already; a second enable would rewrite BRR
     * under a running receiver */
    if ((USART1_CR1 & USART_CR1_UE) == 0) port_uart_enable();
    timer_init();

    info.board = "stm32f405";
    info.clock_hz = CORE_HZ;
    info.timer_hz = CORE_HZ;
    info.timer_bits = 24;
    info.ram_total_bytes = (uint32_t)(__ram_end - __ram_start);
    info.flash_total_bytes = (uint32_t)(uintptr_t)__flash_total_bytes;
    info.static_ram_bytes =
        (uint32_t)((__data_end - __data_start) + (__bss_end - __bss_start));
    info.arena = __arena_start;
    info.arena_bytes = (uint32_t)(__arena_end - __arena_start);
    info.stack_total_bytes = (uint32_t)(__stack_top - __stack_bottom);
    info.model = __model_start;
    info.model_addr = (uint32_t)(uintptr_t)__model_start;
    info.model_region_bytes = (uint32_t)(__model_end - __model_start);
}

const PortInfo *port_info(void) { return &info; }
