/* STM32F405 I2C1 master, register level and polled (RM0090, section 27),
 * for the INA219/INA226 on real boards: PB6 = SCL, PB7 = SDA (AF4, open
 * drain; the sensor board's pull-ups, the chip's weak ones as a fallback),
 * fast mode at TP_I2C_HZ (default 400 kHz).
 *
 * The bus timing assumes APB1 at 42 MHz, i.e. the 168 MHz clock tree the
 * rest of the port assumes (see port.c on the PLL). QEMU's netduinoplus2 has
 * no I2C controller (an unimplemented-device region that reads 0), so on the
 * emulator port.c talks to the INA226 stand-in instead and none of this runs.
 *
 * Every wait is bounded (WAIT_LOOPS polls, a few ms) and a failed transfer
 * ends with a STOP, so a missing or stuck sensor costs a few ms at boot and
 * never hangs the firmware. Reads of one or two bytes only: the INA
 * registers are 16 bits. */
#include "stm32f4.h"

#ifndef TP_I2C_HZ
#define TP_I2C_HZ 400000u
#endif
#define APB1_HZ 42000000u
#define WAIT_LOOPS 100000u

/* Waits until (SR1 & mask) is set; 0, or -1 on a NACK, bus error or timeout. */
static int wait_sr1(uint32_t mask) {
    for (uint32_t i = 0; i < WAIT_LOOPS; i++) {
        uint32_t sr1 = I2C1_SR1;
        if (sr1 & (I2C_SR1_AF | I2C_SR1_BERR | I2C_SR1_ARLO)) {
            I2C1_SR1 = ~(I2C_SR1_AF | I2C_SR1_BERR | I2C_SR1_ARLO) & 0xFFFFu; /* rc_w0 */
            return -1;
        }
        if (sr1 & mask) return 0;
    }
    return -1;
}

static int fail(void) {
    I2C1_CR1 |= I2C_CR1_STOP;
    for (uint32_t i = 0; i < WAIT_LOOPS && (I2C1_CR1 & I2C_CR1_STOP); i++) {
    }
    I2C1_CR1 &= ~(I2C_CR1_POS | I2C_CR1_ACK);
    return -1;
}

void i2c1_init(void) {
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOBEN;
    RCC_APB1ENR |= RCC_APB1ENR_I2C1EN;
    RCC_APB1RSTR |= RCC_APB1ENR_I2C1EN; /* same bit position in APB1RSTR */
    RCC_APB1RSTR &= ~RCC_APB1ENR_I2C1EN;
    /* PB6, PB7: alternate function 4, open drain, fast, pull-up */
    GPIOB_OTYPER |= (1u << 6) | (1u << 7);
    GPIOB_OSPEEDR |= (0xFu << 12);
    GPIOB_PUPDR = (GPIOB_PUPDR & ~(0xFu << 12)) | (0x5u << 12);
    GPIOB_AFRL = (GPIOB_AFRL & ~(0xFFu << 24)) | (0x44u << 24);
    GPIOB_MODER = (GPIOB_MODER & ~(0xFu << 12)) | (0xAu << 12);

    I2C1_CR1 = I2C_CR1_SWRST;
    I2C1_CR1 = 0;
    I2C1_CR2 = APB1_HZ / 1000000u; /* FREQ in MHz */
    /* fast mode, duty 2:1: SCL period = 3 * CCR / APB1 */
    uint32_t ccr = (APB1_HZ + 3u * TP_I2C_HZ - 1u) / (3u * TP_I2C_HZ);
    I2C1_CCR = I2C_CCR_FS | (ccr < 1u ? 1u : ccr);
    I2C1_TRISE = APB1_HZ / 1000000u * 300u / 1000u + 1u; /* 300 ns maximum rise time */
    I2C1_CR1 = I2C_CR1_PE;
}

/* START, then the address byte; 0 once the target acknowledged it. */
static int start(uint8_t addr_rw) {
    I2C1_CR1 |= I2C_CR1_START;
    if (wait_sr1(I2C_SR1_SB) != 0) return -1;
    I2C1_DR = addr_rw;
    return wait_sr1(I2C_SR1_ADDR);
}

static int send(uint8_t addr, const uint8_t *buf, size_t n) {
    for (uint32_t i = 0; (I2C1_SR2 & I2C_SR2_BUSY) != 0; i++) {
        if (i == WAIT_LOOPS) return -1;
    }
    I2C1_CR1 &= ~I2C_CR1_POS;
    if (start((uint8_t)(addr << 1)) != 0) return -1;
    (void)I2C1_SR1;
    (void)I2C1_SR2; /* reading SR1 then SR2 clears ADDR */
    for (size_t i = 0; i < n; i++) {
        if (wait_sr1(I2C_SR1_TXE) != 0) return -1;
        I2C1_DR = buf[i];
    }
    return wait_sr1(I2C_SR1_BTF);
}

int i2c1_write(uint8_t addr, const uint8_t *buf, size_t n) {
    if (send(addr, buf, n) != 0) return fail();
    I2C1_CR1 |= I2C_CR1_STOP;
    return 0;
}

int i2c1_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr) {
    if (nr < 1 || nr > 2) return -1;
    if (send(addr, wr, nw) != 0) return fail();
    /* repeated start, read direction */
    I2C1_CR1 |= I2C_CR1_ACK;
    if (start((uint8_t)((addr << 1) | 1u)) != 0) return fail();
    if (nr == 1) {
        /* NACK the only byte: ACK off before ADDR is cleared, STOP right after */
        I2C1_CR1 &= ~I2C_CR1_ACK;
        (void)I2C1_SR1;
        (void)I2C1_SR2;
        I2C1_CR1 |= I2C_CR1_STOP;
        if (wait_sr1(I2C_SR1_RXNE) != 0) return fail();
        rd[0] = (uint8_t)I2C1_DR;
    } else {
        /* two bytes (RM0090 27.3.3): POS and ACK off before ADDR is cleared,
         * so the second byte is NACKed; both are in once BTF is set */
        I2C1_CR1 = (I2C1_CR1 & ~I2C_CR1_ACK) | I2C_CR1_POS;
        (void)I2C1_SR1;
        (void)I2C1_SR2;
        if (wait_sr1(I2C_SR1_BTF) != 0) return fail();
        I2C1_CR1 |= I2C_CR1_STOP;
        rd[0] = (uint8_t)I2C1_DR;
        rd[1] = (uint8_t)I2C1_DR;
        I2C1_CR1 &= ~I2C_CR1_POS;
    }
    return 0;
}
