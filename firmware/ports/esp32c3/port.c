/* ESP32-C3 bare-metal port: UART0 through the ROM's routines, SYSTIMER time
 * base, the model mapped from flash through the cache MMU, memory facts.
 *
 * Boot: no second-stage bootloader and no partition table. The image sits at
 * flash offset 0, where the ROM looks for a bootloader; the ROM copies its
 * IRAM and DRAM segments into SRAM and jumps to _start. The model is written
 * separately at MODEL_FLASH_OFFSET (0x110000, the offset of the `model`
 * partition in ports/esp32/partitions.csv) and read in place.
 *
 * Clock: the ROM runs the CPU from the 40 MHz crystal and this port does not
 * program the PLL (that needs the analog PLL calibration sequence of
 * ESP-IDF's rtc_clk, and the UART divisor changes with it). port_init reads
 * the clock the chip actually runs at from the SYSTEM registers, and HELLO
 * announces that: 40 MHz after a power-on boot, not the 160 MHz the chip
 * can do. Timing is unaffected: SYSTIMER counts 16 MHz in any case.
 *
 * Telemetry: the sync marker on GPIO10; CPU frames count UART waits. No
 * temperature: the C3's sensor needs writes to the analog "regi2c" bus
 * through undocumented ROM routines and eFuse calibration that the TRM does
 * not describe, so the capability stays off rather than report guesses. No
 * INA: this port has no I2C driver yet (capability off). */
#include "esp32c3.h"
#include "port_common.h"
#include "protocol.h"
#include "telemetry.h"

#define SYNC_GPIO 10u /* free on the DevKitM-1 header: not a strapping, flash or USB pin */

/* Linker script symbols (their addresses are the values). */
extern uint8_t __model_flash_offset[], __model_region_bytes[];

/* ----------------------------------------------------------------------------
 * The serial link. Default: UART0 through the ROM's routines, as the ROM left
 * it (115200 8N1 on GPIO21/GPIO20, where a board's USB-UART bridge sits).
 * Boards with only the chip's own USB port (303a:1001) build with
 * C3_CONSOLE=usb (port.mk) and talk through the USB-Serial-JTAG FIFO. */

#if TP_C3_USB_SERIAL_JTAG

void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if ((USJ_EP1_CONF_REG & USJ_IN_EP_DATA_FREE) == 0) {
            uint32_t t0 = (uint32_t)port_ticks();
            USJ_EP1_CONF_REG = USJ_WR_DONE; /* send the full FIFO, then wait for room */
            while ((USJ_EP1_CONF_REG & USJ_IN_EP_DATA_FREE) == 0) {
            }
            tp_io_wait_add((uint32_t)port_ticks() - t0);
        }
        USJ_EP1_REG = buf[i];
    }
    USJ_EP1_CONF_REG = USJ_WR_DONE;
}

int port_uart_read(void) {
    if (USJ_EP1_CONF_REG & USJ_OUT_EP_DATA_AVAIL) return (int)(USJ_EP1_REG & 0xFFu);
    return -1;
}

#else

/* The ROM routine waits for FIFO room itself; waiting here first, while the
 * FIFO is full, is what counts as I/O wait (telemetry.h). */
void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (UART_TXFIFO_CNT(UART0_STATUS_REG) >= UART_TXFIFO_SIZE - 1u) {
            uint32_t t0 = (uint32_t)port_ticks();
            while (UART_TXFIFO_CNT(UART0_STATUS_REG) >= UART_TXFIFO_SIZE - 1u) {
            }
            tp_io_wait_add((uint32_t)port_ticks() - t0);
        }
        uart_tx_one_char(buf[i]);
    }
}

int port_uart_read(void) {
    uint8_t c;
    return uart_rx_one_char(&c) == 0 ? (int)c : -1;
}

#endif

/* ----------------------------------------------------------------------------
 * Time base: SYSTIMER unit 0, 52 bits at 16 MHz (over 8 years before it
 * wraps), read through its snapshot register so the two halves agree. No
 * wrap to count and no emulator phase to align: the re-base has nothing to
 * do on real silicon (ports/common's empty port_timer_rebase). */

static void timer_init(void) {
    SYSTEM_PERIP_CLK_EN0_REG |= SYSTEM_SYSTIMER_CLK_EN;
    SYSTEM_PERIP_RST_EN0_REG &= ~SYSTEM_SYSTIMER_RST;
    SYSTIMER_CONF_REG |= SYSTIMER_CLK_EN | SYSTIMER_TIMER_UNIT0_WORK_EN;
}

uint64_t port_ticks(void) {
    SYSTIMER_UNIT0_OP_REG = SYSTIMER_TIMER_UNIT0_UPDATE;
    while ((SYSTIMER_UNIT0_OP_REG & SYSTIMER_TIMER_UNIT0_VALUE_VALID) == 0) {
    }
    uint32_t lo = SYSTIMER_UNIT0_VALUE_LO_REG;
    uint32_t hi = SYSTIMER_UNIT0_VALUE_HI_REG;
    return ((uint64_t)hi << 32) | lo;
}

/* ----------------------------------------------------------------------------
 * The model: its flash pages mapped into the data bus window at
 * DROM_VADDR_BASE + MODEL_FLASH_OFFSET, the same sequence ESP-IDF's
 * bootloader uses for an app's rodata (cache suspended and invalidated, MMU
 * entries set through the ROM, data bus enabled, cache resumed). */

static const uint8_t *map_model(uint32_t flash_offset, uint32_t bytes) {
    uint32_t vaddr = DROM_VADDR_BASE + flash_offset;
    uint32_t pages = (bytes + MMU_PAGE_BYTES - 1u) / MMU_PAGE_BYTES;
    uint32_t autoload = Cache_Suspend_ICache();
    Cache_Invalidate_ICache_All();
    int rc = Cache_Dbus_MMU_Set(MMU_ACCESS_FLASH, vaddr, flash_offset, 64, pages, 0);
    EXTMEM_ICACHE_CTRL1_REG &= ~EXTMEM_ICACHE_SHUT_DBUS;
    Cache_Resume_ICache(autoload);
    if (rc != 0) {
        ets_printf("tiny-profiler: mapping the model failed (%d)\n", rc);
        return 0;
    }
    return (const uint8_t *)(uintptr_t)vaddr;
}

/* ----------------------------------------------------------------------------
 * Telemetry: the sync pin; no temperature sensor, no I2C, no sampling
 * (ports/common's stubs). */

static void sync_init(void) {
    IO_MUX_GPIO_REG(SYNC_GPIO) = IO_MUX_MCU_SEL_GPIO | IO_MUX_FUN_DRV_20MA;
    GPIO_FUNC_OUT_SEL_CFG_REG(SYNC_GPIO) = GPIO_SIG_GPIO_OUT;
    GPIO_OUT_W1TC_REG = 1u << SYNC_GPIO;
    GPIO_ENABLE_W1TS_REG = 1u << SYNC_GPIO;
}

void port_sync_pin(int level) {
    /* one store either way: W1TS sets, W1TC clears (adjacent registers) */
    REG32(0x6000400Cu - (level ? 4u : 0u)) = 1u << SYNC_GPIO;
}

/* ----------------------------------------------------------------------------
 * Facts */

static uint32_t cpu_hz(void) {
    uint32_t sysclk = SYSTEM_SYSCLK_CONF_REG;
    uint32_t div = (sysclk & SYSTEM_PRE_DIV_CNT_MASK) + 1u;
    switch ((sysclk >> SYSTEM_SOC_CLK_SEL_SHIFT) & 3u) {
    case 0: return XTAL_HZ / div;
    case 1: return (SYSTEM_CPU_PER_CONF_REG & SYSTEM_CPUPERIOD_SEL_MASK) == 1u ? 160000000u : 80000000u;
    default: return RC_FAST_HZ / div;
    }
}

void port_init(void) {
    timer_init();
    sync_init();

    uint32_t model_offset = (uint32_t)(uintptr_t)__model_flash_offset;
    uint32_t model_bytes = (uint32_t)(uintptr_t)__model_region_bytes;
    const uint8_t *model = map_model(model_offset, model_bytes);

    PortInfo *info = port_info_from_linker(); /* static RAM: .rodata, .data, .bss (linker.ld) */
    info->board = "esp32c3";
    info->clock_hz = cpu_hz();
    info->timer_hz = SYSTIMER_HZ;
    info->timer_bits = 52;
    info->model = model;
    info->model_addr = model_offset; /* a flash offset, as esptool and the profile name it */
    info->model_region_bytes = model != 0 ? model_bytes : 0;
    info->caps = TP_CAP_SYNC_PIN;

    /* Text for a person watching the port; the host skips it as boot noise. */
    ets_printf("\ntiny-profiler %s on esp32c3, cpu %u MHz, model at flash 0x%x\n", TP_FIRMWARE_ID,
               (unsigned)(info->clock_hz / 1000000u), (unsigned)model_offset);
}
