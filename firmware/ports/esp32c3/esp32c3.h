/* The ESP32-C3 registers and ROM routines this port uses. Addresses and bit
 * positions are the chip's, as ESP-IDF's soc/esp32c3/register headers and
 * esp_rom/esp32c3/ld/esp32c3.rom.ld give them; the ROM routine addresses are
 * in linker.ld. No ESP-IDF headers are needed to build. */
#ifndef TP_ESP32C3_H
#define TP_ESP32C3_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* SYSTEM: clocks */
#define SYSTEM_CPU_PER_CONF_REG REG32(0x600C0008u)
#define SYSTEM_PERIP_CLK_EN0_REG REG32(0x600C0010u)
#define SYSTEM_PERIP_RST_EN0_REG REG32(0x600C0018u)
#define SYSTEM_SYSCLK_CONF_REG REG32(0x600C0058u)
#define SYSTEM_SYSTIMER_CLK_EN (1u << 29) /* in PERIP_CLK_EN0 */
#define SYSTEM_SYSTIMER_RST (1u << 29)    /* in PERIP_RST_EN0 */
#define SYSTEM_CPUPERIOD_SEL_MASK 0x3u    /* PLL: 0 = 80 MHz, 1 = 160 MHz */
#define SYSTEM_SOC_CLK_SEL_SHIFT 10       /* 0 XTAL, 1 PLL, 2 RC_FAST */
#define SYSTEM_PRE_DIV_CNT_MASK 0x3FFu    /* XTAL / RC_FAST divider - 1 */
#define XTAL_HZ 40000000u
#define RC_FAST_HZ 17500000u

/* SYSTIMER: unit 0, 52 bits at 16 MHz (XTAL / 2.5) */
#define SYSTIMER_CONF_REG REG32(0x60023000u)
#define SYSTIMER_UNIT0_OP_REG REG32(0x60023004u)
#define SYSTIMER_UNIT0_VALUE_HI_REG REG32(0x60023040u)
#define SYSTIMER_UNIT0_VALUE_LO_REG REG32(0x60023044u)
#define SYSTIMER_CLK_EN (1u << 31)
#define SYSTIMER_TIMER_UNIT0_WORK_EN (1u << 30)
#define SYSTIMER_TIMER_UNIT0_UPDATE (1u << 30)      /* write: latch the counter */
#define SYSTIMER_TIMER_UNIT0_VALUE_VALID (1u << 29) /* read: the latch is done */
#define SYSTIMER_HZ 16000000u

/* Watchdogs the ROM leaves running in flash boot mode */
#define RTC_CNTL_WDTCONFIG0_REG REG32(0x60008090u)
#define RTC_CNTL_WDTWPROTECT_REG REG32(0x600080A8u)
#define RTC_CNTL_SWD_CONF_REG REG32(0x600080ACu)
#define RTC_CNTL_SWD_WPROTECT_REG REG32(0x600080B0u)
#define RTC_CNTL_WDT_EN (1u << 31)
#define RTC_CNTL_WDT_FLASHBOOT_MOD_EN (1u << 12)
#define RTC_CNTL_SWD_AUTO_FEED_EN (1u << 31)
#define RTC_CNTL_WDT_WKEY 0x50D83AA1u
#define RTC_CNTL_SWD_WKEY 0x8F1D312Au
#define TIMG_WDTCONFIG0_REG(base) REG32((base) + 0x48u)
#define TIMG_WDTWPROTECT_REG(base) REG32((base) + 0x64u)
#define TIMG0_BASE 0x6001F000u
#define TIMG1_BASE 0x60020000u
#define TIMG_WDT_EN (1u << 31)
#define TIMG_WDT_CONF_UPDATE_EN (1u << 22)
#define TIMG_WDT_FLASHBOOT_MOD_EN (1u << 14)
#define TIMG_WDT_WKEY 0x50D83AA1u

/* Cache and MMU: flash is seen through 64 KB pages; the data bus window
 * starts at 0x3C000000 */
#define EXTMEM_ICACHE_CTRL1_REG REG32(0x600C4004u)
#define EXTMEM_ICACHE_SHUT_DBUS (1u << 1)
#define MMU_PAGE_BYTES 0x10000u
#define MMU_ACCESS_FLASH 0u
#define DROM_VADDR_BASE 0x3C000000u

/* USB-Serial-JTAG: the CDC-ACM serial port of the chip's own USB pins */
#define USJ_EP1_REG REG32(0x60043000u)      /* one byte in or out of the FIFOs */
#define USJ_EP1_CONF_REG REG32(0x60043004u)
#define USJ_WR_DONE (1u << 0)               /* send what the IN FIFO holds */
#define USJ_IN_EP_DATA_FREE (1u << 1)       /* room in the IN (device to host) FIFO */
#define USJ_OUT_EP_DATA_AVAIL (1u << 2)     /* a byte from the host is waiting */

/* UART0: the transmit FIFO fill level (128-byte FIFO) */
#define UART0_STATUS_REG REG32(0x6000001Cu)
#define UART_TXFIFO_CNT(status) (((status) >> 16) & 0x3FFu)
#define UART_TXFIFO_SIZE 128u

/* GPIO matrix and IO MUX: a pin as a plain GPIO output */
#define GPIO_OUT_W1TS_REG REG32(0x60004008u)
#define GPIO_OUT_W1TC_REG REG32(0x6000400Cu)
#define GPIO_ENABLE_W1TS_REG REG32(0x60004024u)
#define GPIO_FUNC_OUT_SEL_CFG_REG(n) REG32(0x60004554u + 4u * (n))
#define GPIO_SIG_GPIO_OUT 128u               /* output driven by GPIO_OUT */
#define IO_MUX_GPIO_REG(n) REG32(0x60009004u + 4u * (n))
#define IO_MUX_MCU_SEL_GPIO (1u << 12)       /* function 1: GPIO */
#define IO_MUX_FUN_DRV_20MA (2u << 10)

/* ROM routines (ETS_STATUS: 0 = OK) */
int uart_tx_one_char(uint8_t c);
int uart_rx_one_char(uint8_t *c);
void uart_tx_wait_idle(uint8_t uart_no);
int ets_printf(const char *fmt, ...);
uint32_t Cache_Suspend_ICache(void);
void Cache_Resume_ICache(uint32_t autoload);
void Cache_Invalidate_ICache_All(void);
int Cache_Dbus_MMU_Set(uint32_t ext_ram, uint32_t vaddr, uint32_t paddr, uint32_t psize,
                       uint32_t num, uint32_t fixed);

#endif /* TP_ESP32C3_H */
