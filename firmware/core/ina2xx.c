/* INA219 / INA226 driver: see ina2xx.h. */
#include "ina2xx.h"

#include "port.h"
#include "protocol.h" /* TP_INA_219, TP_INA_226 */

/* ----------------------------------------------------------------------------
 * Register access: the pointer byte, then the value big-endian. */

static int write_reg(uint8_t addr, uint8_t reg, uint16_t value) {
    const uint8_t buf[3] = {reg, (uint8_t)(value >> 8), (uint8_t)value};
    return port_i2c_write(addr, buf, sizeof buf);
}

static int read_reg(uint8_t addr, uint8_t reg, uint16_t *value) {
    uint8_t buf[2] = {0, 0};
    int rc = port_i2c_write_read(addr, &reg, 1, buf, sizeof buf);
    *value = (uint16_t)((buf[0] << 8) | buf[1]);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Calibration and conversion settings */

uint16_t tp_ina_calibration(int chip, uint32_t shunt_uohm, uint32_t current_lsb_na) {
    /* CAL = k / (LSB[A] * R[ohm]) = k * 1e15 / (LSB[nA] * R[uohm]) */
    uint64_t den = (uint64_t)shunt_uohm * current_lsb_na;
    if (den == 0) return 0;
    if (chip == TP_INA_226) {
        uint64_t cal = 5120000000000ull / den; /* k = 0.00512 */
        return (uint16_t)(cal > 0x7FFFu ? 0x7FFFu : cal); /* bit 15 is reserved */
    }
    uint64_t cal = 40960000000000ull / den; /* k = 0.04096 */
    return (uint16_t)((cal > 0xFFFEu ? 0xFFFEu : cal) & 0xFFFEu); /* bit 0 is reserved */
}

/* INA226 conversion times (VBUSCT, VSHCT codes 0..7) and averages (AVG). */
static const uint16_t ina226_ct_us[8] = {140, 204, 332, 588, 1100, 2116, 4156, 8244};
static const uint16_t ina226_avg[8] = {1, 4, 16, 64, 128, 256, 512, 1024};

uint32_t tp_ina226_cycle_us(uint16_t config) {
    uint32_t avg = ina226_avg[(config >> 9) & 7u];
    uint32_t bus = ina226_ct_us[(config >> 6) & 7u];
    uint32_t shunt = ina226_ct_us[(config >> 3) & 7u];
    switch (config & 7u) {
    case 5: return avg * shunt;         /* shunt only, continuous */
    case 6: return avg * bus;           /* bus only, continuous */
    default: return avg * (bus + shunt);
    }
}

/* Continuous shunt and bus, 1.1 ms per conversion (the datasheet default)
 * with the most averages whose cycle fits the period; below 2.2 ms, one
 * conversion each of the longest time that fits; below 280 us, the fastest. */
static uint16_t ina226_config_for(uint32_t period_us) {
    uint32_t ct = 0, avg = 0;
    if (period_us >= 2u * 1100u) {
        ct = 4;
        while (avg < 7 && 2u * 1100u * ina226_avg[avg + 1] <= period_us) avg++;
    } else {
        while (ct < 3 && 2u * ina226_ct_us[ct + 1] <= period_us) ct++;
    }
    return (uint16_t)(0x4000u | (avg << 9) | (ct << 6) | (ct << 3) | 7u);
}

/* INA219: 12-bit conversions (532 us) averaged 1..128 times (BADC/SADC codes
 * 0b0011, then 0b1001..0b1111 for 2..128 samples); 32 V bus range, +-320 mV
 * shunt range (the reset defaults). */
static uint16_t ina219_config_for(uint32_t period_us) {
    uint32_t adc = 0x3u, n = 1;
    while (n < 128u && 2u * 532u * (n * 2u) <= period_us) {
        n *= 2u;
        adc = 0x8u | (adc == 0x3u ? 1u : (adc & 7u) + 1u);
    }
    return (uint16_t)(0x3800u | (adc << 7) | (adc << 3) | 7u);
}

/* ----------------------------------------------------------------------------
 * Probe, configure, read */

int tp_ina_init(TpIna *ina, uint8_t addr, uint32_t shunt_uohm, uint32_t current_lsb_na) {
    ina->chip = 0;
    ina->addr = addr;
    ina->current_lsb_na = current_lsb_na;
    ina->lsb_ua_q16 = ((uint64_t)current_lsb_na << 16) / 1000u;
    uint16_t maker = 0, die = 0, config = 0;
    if (read_reg(addr, INA226_REG_MANUFACTURER, &maker) != 0) return 0; /* nothing at addr */
    if (maker == INA226_MANUFACTURER_TI && read_reg(addr, INA226_REG_DIE_ID, &die) == 0 &&
        (die >> 4) == 0x226u) {
        ina->chip = TP_INA_226;
    } else if (write_reg(addr, INA_REG_CONFIG, 0x8000u) == 0 && /* reset */
               read_reg(addr, INA_REG_CONFIG, &config) == 0 && config == INA219_CONFIG_RESET_VALUE) {
        ina->chip = TP_INA_219;
    } else {
        return 0;
    }
    uint16_t cal = tp_ina_calibration(ina->chip, shunt_uohm, current_lsb_na);
    if (write_reg(addr, INA_REG_CALIBRATION, cal) != 0 || tp_ina_configure(ina, 10000u) != 0) {
        ina->chip = 0;
    }
    return ina->chip;
}

int tp_ina_configure(const TpIna *ina, uint32_t period_us) {
    if (ina->chip == 0) return -1;
    uint16_t config = ina->chip == TP_INA_226 ? ina226_config_for(period_us) : ina219_config_for(period_us);
    return write_reg(ina->addr, INA_REG_CONFIG, config);
}

int tp_ina_read(const TpIna *ina, TpInaReading *out) {
    uint16_t bus = 0, current = 0, power = 0;
    int rc = read_reg(ina->addr, INA_REG_BUS, &bus);
    rc |= read_reg(ina->addr, INA_REG_CURRENT, &current);
    rc |= read_reg(ina->addr, INA_REG_POWER, &power);
    /* LSB conversions by multiplication only, no data-dependent division */
    int64_t lsb_ua_q16 = (int64_t)ina->lsb_ua_q16;
    int is226 = ina->chip == TP_INA_226;
    uint32_t power_factor = is226 ? 25u : 20u;
    out->bus_mv = is226 ? (uint32_t)bus * 5u / 4u : (uint32_t)(bus >> 3) * 4u;
    out->current_ua = (int32_t)(((int64_t)(int16_t)current * lsb_ua_q16) >> 16);
    out->power_uw = (uint32_t)(((uint64_t)power * power_factor * (uint64_t)lsb_ua_q16) >> 16);
    return rc != 0 ? -1 : 0;
}
