/* INA219 / INA226 current and power monitors over I2C (TI datasheets
 * SBOS448 and SBOS547): probe, calibration, conversion settings and one
 * reading in physical units. The bus is the port's (port_i2c_write,
 * port_i2c_write_read): a controller driver on hardware, the register-level
 * INA226 stand-in on emulated boards, so the same code runs on both.
 *
 * Build options (Makefile, -D): TP_INA_ADDR (7-bit address, 0x40 = A0 and A1
 * to GND), TP_INA_SHUNT_UOHM (shunt resistor, micro-ohms, default 0.1 ohm),
 * TP_INA_CURRENT_LSB_NA (current LSB, nA, default 10 uA: +-327 mA full scale
 * on the INA226). */
#ifndef TP_INA2XX_H
#define TP_INA2XX_H

#include <stdint.h>

#ifndef TP_INA_ADDR
#define TP_INA_ADDR 0x40
#endif
#ifndef TP_INA_SHUNT_UOHM
#define TP_INA_SHUNT_UOHM 100000u
#endif
#ifndef TP_INA_CURRENT_LSB_NA
#define TP_INA_CURRENT_LSB_NA 10000u
#endif

/* Registers (both chips, except where noted) */
#define INA_REG_CONFIG 0x00
#define INA_REG_SHUNT 0x01      /* signed; LSB 2.5 uV (INA226), 10 uV (INA219) */
#define INA_REG_BUS 0x02        /* INA226: LSB 1.25 mV; INA219: bits 15..3, LSB 4 mV */
#define INA_REG_POWER 0x03      /* LSB 25 (INA226) or 20 (INA219) x current LSB */
#define INA_REG_CURRENT 0x04    /* signed; LSB = current LSB */
#define INA_REG_CALIBRATION 0x05
#define INA226_REG_MASK_ENABLE 0x06
#define INA226_REG_ALERT_LIMIT 0x07
#define INA226_REG_MANUFACTURER 0xFE /* 0x5449, "TI" */
#define INA226_REG_DIE_ID 0xFF       /* 0x2260: device 0x226, revision 0 */

#define INA226_MANUFACTURER_TI 0x5449u
#define INA219_CONFIG_RESET_VALUE 0x399Fu

typedef struct {
    uint8_t chip;            /* TP_INA_219, TP_INA_226, or 0: none answered */
    uint8_t addr;
    uint32_t current_lsb_na;
    uint64_t lsb_ua_q16;     /* the current LSB in uA, Q16: exact for whole-uA LSBs */
} TpIna;

/* One reading in physical units. */
typedef struct {
    uint32_t bus_mv;
    int32_t current_ua;
    uint32_t power_uw;
} TpInaReading;

/* Probes addr for an INA226 (its ID registers) or an INA219 (its config
 * register after a reset), then writes the calibration register for the
 * given shunt and current LSB. Returns the chip (TP_INA_*), 0 when none. */
int tp_ina_init(TpIna *ina, uint8_t addr, uint32_t shunt_uohm, uint32_t current_lsb_na);

/* Continuous shunt and bus conversions with the longest averaging whose
 * conversion cycle fits in period_us (so every sample is a fresh average).
 * Returns 0, -1 on a bus error. */
int tp_ina_configure(const TpIna *ina, uint32_t period_us);

/* Reads the bus voltage, current and power registers (three reads). Returns
 * 0, -1 on a bus error. The cost does not depend on the values read. */
int tp_ina_read(const TpIna *ina, TpInaReading *out);

/* The calibration register value for a shunt and a current LSB (datasheet:
 * INA226 CAL = 0.00512 / (LSB * R), INA219 CAL = 0.04096 / (LSB * R)). */
uint16_t tp_ina_calibration(int chip, uint32_t shunt_uohm, uint32_t current_lsb_na);

/* The conversion cycle of an INA226 config register value, in microseconds
 * (AVG x (VBUSCT + VSHCT) in continuous shunt-and-bus mode). */
uint32_t tp_ina226_cycle_us(uint16_t config);

#endif /* TP_INA2XX_H */
