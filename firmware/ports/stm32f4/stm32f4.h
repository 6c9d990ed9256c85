/* The handful of STM32F405 registers this port touches, named after the
 * reference manual (RM0090); the Cortex-M4 core's are in
 * ports/common/cortex_m.h. No vendor headers: the port needs too few
 * registers to justify CMSIS. */
#ifndef TP_STM32F4_H
#define TP_STM32F4_H

#include <stddef.h>
#include <stdint.h>

#include "cortex_m.h"

/* RCC: peripheral clock enables (see port.c on the clock tree), and CR,
 * whose HSION/HSIRDY bits are set on every real STM32F4 but read 0 under
 * QEMU, which does not model the RCC */
#define RCC_CR REG32(0x40023800u)
#define RCC_APB1RSTR REG32(0x40023820u)
#define RCC_AHB1ENR REG32(0x40023830u)
#define RCC_APB1ENR REG32(0x40023840u)
#define RCC_APB2ENR REG32(0x40023844u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB1ENR_I2C1EN (1u << 21)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define RCC_APB2ENR_ADC1EN (1u << 8)

/* GPIOA: PA9 = USART1_TX, PA10 = USART1_RX, alternate function 7; PA8 = the
 * sync marker output */
#define GPIOA_MODER REG32(0x40020000u)
#define GPIOA_OSPEEDR REG32(0x40020008u)
#define GPIOA_BSRR REG32(0x40020018u)
#define GPIOA_AFRH REG32(0x40020024u)

/* GPIOB: PB6 = I2C1_SCL, PB7 = I2C1_SDA, alternate function 4, open drain */
#define GPIOB_MODER REG32(0x40020400u)
#define GPIOB_OTYPER REG32(0x40020404u)
#define GPIOB_OSPEEDR REG32(0x40020408u)
#define GPIOB_PUPDR REG32(0x4002040Cu)
#define GPIOB_AFRL REG32(0x40020420u)

/* ADC1 and the ADC common registers: the temperature sensor is ADC1_IN16 */
#define ADC1_SR REG32(0x40012000u)
#define ADC1_CR1 REG32(0x40012004u)
#define ADC1_CR2 REG32(0x40012008u)
#define ADC1_SMPR1 REG32(0x4001200Cu)
#define ADC1_SQR1 REG32(0x4001202Cu)
#define ADC1_SQR3 REG32(0x40012034u)
#define ADC1_DR REG32(0x4001204Cu)
#define ADC_CCR REG32(0x40012304u)
#define ADC_SR_EOC (1u << 1)
#define ADC_CR2_ADON (1u << 0)
#define ADC_CR2_SWSTART (1u << 30)
#define ADC_CCR_TSVREFE (1u << 23)
#define ADC_CCR_ADCPRE_DIV4 (1u << 16)
/* factory calibration: raw readings at 30 and 110 degC, VDDA = 3.3 V (DS8626) */
#define TS_CAL1 (*(volatile const uint16_t *)0x1FFF7A2Cu)
#define TS_CAL2 (*(volatile const uint16_t *)0x1FFF7A2Eu)

/* I2C1 */
#define I2C1_CR1 REG32(0x40005400u)
#define I2C1_CR2 REG32(0x40005404u)
#define I2C1_DR REG32(0x40005410u)
#define I2C1_SR1 REG32(0x40005414u)
#define I2C1_SR2 REG32(0x40005418u)
#define I2C1_CCR REG32(0x4000541Cu)
#define I2C1_TRISE REG32(0x40005420u)
#define I2C_CR1_PE (1u << 0)
#define I2C_CR1_START (1u << 8)
#define I2C_CR1_STOP (1u << 9)
#define I2C_CR1_ACK (1u << 10)
#define I2C_CR1_POS (1u << 11)
#define I2C_CR1_SWRST (1u << 15)
#define I2C_SR1_SB (1u << 0)
#define I2C_SR1_ADDR (1u << 1)
#define I2C_SR1_BTF (1u << 2)
#define I2C_SR1_RXNE (1u << 6)
#define I2C_SR1_TXE (1u << 7)
#define I2C_SR1_BERR (1u << 8)
#define I2C_SR1_ARLO (1u << 9)
#define I2C_SR1_AF (1u << 10)
#define I2C_SR2_BUSY (1u << 1)
#define I2C_CCR_FS (1u << 15)

/* USART1 */
#define USART1_SR REG32(0x40011000u)
#define USART1_DR REG32(0x40011004u)
#define USART1_BRR REG32(0x40011008u)
#define USART1_CR1 REG32(0x4001100Cu)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* Port functions the startup code calls before C state exists. */
void port_uart_enable(void);

/* i2c1.c: the I2C1 controller, polled (hardware only; QEMU has none). */
void i2c1_init(void);
int i2c1_write(uint8_t addr, const uint8_t *buf, size_t n);
int i2c1_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr);

#endif /* TP_STM32F4_H */
