/* STM32F405 port: USART1, the board facts, temperature, sync pin, I2C; the
 * SysTick time base is ports/common/systick.c.
 *
 * Clock tree: this port does not program RCC/PLL. QEMU does not model the
 * STM32F4 RCC (its registers read 0, so waiting for PLLRDY would hang), and
 * under QEMU the core clock and SysTick are the 168 MHz the board model
 * declares. On real hardware the chip then still runs from the 16 MHz HSI:
 * the hardware bring-up must add the PLL setup (HSE -> 168 MHz, APB2 =
 * 84 MHz, flash wait states) before port_init, or else clock_hz, timer_hz and
 * the USART baud divisor below are wrong.
 *
 * Telemetry: the on-chip temperature sensor (ADC1_IN16), the sync marker on
 * PA8, an INA219/INA226 on I2C1 (i2c1.c), INA samples from the SysTick
 * interrupt. The same image runs on QEMU's netduinoplus2, which models no
 * RCC, no I2C and no calibration area: port_init tells the two apart by
 * RCC_CR (HSION and HSIRDY are set on every real STM32F4 out of reset, QEMU
 * reads 0) and on the emulator talks to the INA226 stand-in
 * (ports/common/ina226_standin.c) instead of I2C1. */
#include "ina226_standin.h"
#include "port_common.h"
#include "protocol.h"
#include "stm32f4.h"
#include "telemetry.h"

#define CORE_HZ 168000000u
#define APB2_HZ (CORE_HZ / 2u) /* USART1 clock once the PLL is configured */
#define BAUD 115200u

/* The emulated board's power model, measured by the INA226 stand-in: the
 * STM32F405 datasheet's typical supply current at 168 MHz from flash with the
 * peripherals off, 40 mA running and 12 mA in sleep, at 3.3 V (the same
 * figures as the stm32f405 board profile in platforms/boards.py). */
static const InaStandinBoard standin_board = {3300u, 39600u, 132000u, TP_INA_SHUNT_UOHM};

/* INA sample periods: the stand-in costs a few hundred cycles a sample, a
 * real I2C read of three registers about 0.4 ms at 400 kHz. */
#define SAMPLE_MIN_US_EMULATED 100u
#define SAMPLE_MIN_US_I2C 1000u

#define SYNC_PIN 8u /* PA8 */

static int on_qemu; /* RCC_CR reads 0: QEMU's netduinoplus2 */

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

/* Waiting for TXE counts as I/O wait (telemetry.h). QEMU's USART is always
 * ready, so there the wait branch is never taken. */
void port_uart_write(const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if ((USART1_SR & USART_SR_TXE) == 0) {
            uint32_t t0 = (uint32_t)port_ticks();
            while ((USART1_SR & USART_SR_TXE) == 0) {
            }
            tp_io_wait_add((uint32_t)port_ticks() - t0);
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
 * Temperature: ADC1 channel 16 with TSVREFE, one conversion with the longest
 * sampling time (480 ADC cycles; the sensor needs 10 us). Degrees from the
 * factory calibration (TS_CAL1 at 30 degC, TS_CAL2 at 110 degC):
 *     T = 30 + (110 - 30) * (raw - TS_CAL1) / (TS_CAL2 - TS_CAL1)
 * or, without plausible calibration values, from the datasheet's typical
 * V25 = 0.76 V and 2.5 mV/degC at VDDA = 3.3 V.
 *
 * Under QEMU the ADC returns synthetic values (each read adds 7 to the last)
 * and never sets EOC, and the calibration area is not mapped (a read would
 * bus-fault); there the port reads DR at once and uses the typical figures.
 * The host ignores device temperatures from emulated boards. */

static int adc_ready;

static void adc_init(void) {
    RCC_APB2ENR |= RCC_APB2ENR_ADC1EN;
    ADC_CCR = (ADC_CCR & ~(3u << 16)) | ADC_CCR_TSVREFE | ADC_CCR_ADCPRE_DIV4;
    ADC1_CR1 = 0;                       /* 12 bits, one channel */
    ADC1_SMPR1 = (ADC1_SMPR1 & ~(7u << 18)) | (7u << 18); /* channel 16: 480 cycles */
    ADC1_SQR1 = 0;                      /* one conversion */
    ADC1_SQR3 = 16u;
    ADC1_CR2 = ADC_CR2_ADON;
    /* ADC stabilisation (3 us) and sensor start-up (10 us) */
    uint64_t until = port_ticks() + 20u * (CORE_HZ / 1000000u);
    while (port_ticks() < until) {
    }
    adc_ready = 1;
}

int port_temp_read(int32_t *milli_celsius, uint16_t *flags) {
    if (!adc_ready) adc_init();
    (void)ADC1_SR;
    ADC1_SR = 0;
    ADC1_CR2 |= ADC_CR2_SWSTART;
    if (!on_qemu) {
        uint32_t i = 0;
        while ((ADC1_SR & ADC_SR_EOC) == 0) {
            if (++i == 1000000u) return -1;
        }
    }
    int32_t raw = (int32_t)(ADC1_DR & 0xFFFu);
    int32_t cal1 = on_qemu ? 0 : TS_CAL1;
    int32_t cal2 = on_qemu ? 0 : TS_CAL2;
    *flags = 0;
    if (cal1 > 0 && cal2 > cal1 && cal2 < 0x1000) {
        *milli_celsius = 30000 + (raw - cal1) * 80000 / (cal2 - cal1);
        *flags = TP_TEMP_FLAG_CALIBRATED;
    } else {
        int32_t uv = (int32_t)((int64_t)raw * 3300000 / 4095);
        *milli_celsius = 25000 + (uv - 760000) * 2 / 5;
    }
    return 0;
}

/* ----------------------------------------------------------------------------
 * Sync marker on PA8: high from decode start to decode end (firmware/README.md) */

static void sync_init(void) {
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    GPIOA_BSRR = 1u << (SYNC_PIN + 16u);
    GPIOA_OSPEEDR |= 3u << (2u * SYNC_PIN);
    GPIOA_MODER = (GPIOA_MODER & ~(3u << (2u * SYNC_PIN))) | (1u << (2u * SYNC_PIN));
}

void port_sync_pin(int level) {
    /* BSRR: bit n sets pin n, bit n + 16 clears it; one store either way */
    GPIOA_BSRR = 1u << (SYNC_PIN + (level ? 0u : 16u));
}

/* ----------------------------------------------------------------------------
 * I2C for the INA: I2C1 on hardware, the INA226 stand-in on the emulator */

int port_i2c_write(uint8_t addr, const uint8_t *buf, size_t n) {
    return on_qemu ? ina226_standin_write(addr, buf, n) : i2c1_write(addr, buf, n);
}

int port_i2c_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr) {
    return on_qemu ? ina226_standin_write_read(addr, wr, nw, rd, nr) : i2c1_write_read(addr, wr, nw, rd, nr);
}

/* ----------------------------------------------------------------------------
 * Facts */

void port_init(void) {
    /* startup enabled the UART already; a second enable would rewrite BRR
     * under a running receiver */
    if ((USART1_CR1 & USART_CR1_UE) == 0) port_uart_enable();
    on_qemu = RCC_CR == 0;
    systick_init(CORE_HZ, on_qemu ? SAMPLE_MIN_US_EMULATED : SAMPLE_MIN_US_I2C, on_qemu);
    sync_init();

    PortInfo *info = port_info_from_linker();
    info->board = "stm32f405";
    info->clock_hz = CORE_HZ;
    info->timer_hz = CORE_HZ;
    info->timer_bits = 24;
    info->caps = TP_CAP_TEMP_SENSOR | TP_CAP_SYNC_PIN | (on_qemu ? TP_CAP_EMULATOR : 0u);

    if (on_qemu) {
        ina226_standin_init(&standin_board);
    } else {
        i2c1_init();
    }
}
