/* INA226 STAND-IN: a register-level model of a TI INA226 current and power
 * monitor as the firmware sees it over I2C, for emulated boards only.
 *
 * What it stands for: an INA226 at I2C address TP_INA_ADDR whose shunt
 * (TP_INA_SHUNT_UOHM) sits in the supply rail of a board that draws power
 * by a documented model, not by measurement. QEMU's netduinoplus2 and virt
 * machines have no I2C controller and no INA226 model, so the emulated ports
 * route core/port.h's I2C transfers here, and the firmware's real INA driver
 * (core/ina2xx.c: probe, calibration, configuration, register reads, LSB
 * conversions) runs unchanged against it. Nothing here is ever measured.
 *
 * The board model (InaStandinBoard, values per port in its port.c): the
 * board draws idle_uw while the CPU waits on I/O (the ticks the port counts
 * as UART waiting, telemetry.h) and active_uw while it computes, from a rail
 * of supply_mv. Under QEMU the UART never makes the CPU wait, so a RUN reads
 * as active_uw throughout: the truth of the emulated board.
 *
 * The registers behave as the datasheet (SBOS547) describes for continuous
 * shunt-and-bus mode: a conversion cycle lasts AVG x (VBUSCT + VSHCT) of the
 * configuration register; the result registers hold the last completed
 * cycle. The stand-in completes a cycle lazily: when a result register is
 * read and at least one cycle time has passed since the last one, the new
 * result is the model's average power over everything since the last one.
 * Then, as on the chip:
 *   shunt voltage  = I * R_shunt / 2.5 uV        (register 0x01)
 *   bus voltage    = V / 1.25 mV                 (0x02)
 *   current        = shunt * CAL / 2048          (0x04, datasheet eq. 3)
 *   power          = current * bus / 20000       (0x03, eq. 4; LSB 25 x current LSB)
 * Mask/Enable's CVRF is set when a cycle completes and cleared when the
 * register is read; alerts are not modelled. Triggered modes convert like the
 * continuous ones; power-down (modes 0 and 4) stops conversions.
 *
 * Cost: a read costs the same instructions whatever the register values,
 * except the cycle completion, whose divisions depend on the interval and
 * the busy share: both are the same in identical repetitions. */
#include "ina226_standin.h"

#include "ina2xx.h"
#include "port.h"
#include "telemetry.h"

#define CONFIG_RESET 0x4127u
#define MASK_CVRF (1u << 3)

static const uint16_t ct_us[8] = {140, 204, 332, 588, 1100, 2116, 4156, 8244};
static const uint16_t avg_n[8] = {1, 4, 16, 64, 128, 256, 512, 1024};

static InaStandinBoard board;

static struct {
    uint8_t pointer;
    uint16_t config, calibration, mask, alert;
    uint16_t shunt, bus, power, current;
    uint32_t cycle_ticks;      /* one conversion cycle at the current config */
    uint64_t last_ticks;       /* end of the last completed cycle */
    uint32_t last_wait;        /* tp_io_wait_ticks_lo() then */
} r;

/* ----------------------------------------------------------------------------
 * Conversions */

static void set_config(uint16_t value) {
    r.config = (uint16_t)((value & 0x0FFFu) | 0x4000u); /* bits 14..12 read 100 */
    uint32_t us = avg_n[(r.config >> 9) & 7u] * (uint32_t)(ct_us[(r.config >> 6) & 7u] + ct_us[(r.config >> 3) & 7u]);
    r.cycle_ticks = (uint32_t)((uint64_t)us * port_info()->timer_hz / 1000000u);
}

static void power_on_reset(void) {
    r.pointer = 0;
    r.calibration = r.mask = r.alert = 0;
    r.shunt = r.bus = r.power = r.current = 0;
    set_config(CONFIG_RESET);
}

static int16_t clamp16(int64_t v) {
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

static void complete_cycle_if_due(void) {
    if ((r.config & 3u) == 0) return; /* power-down */
    uint64_t now = port_ticks();
    uint64_t span = now - r.last_ticks;
    if (span < r.cycle_ticks || span == 0) return;
    uint32_t wait_now = tp_io_wait_ticks_lo();
    uint64_t wait = (uint32_t)(wait_now - r.last_wait);
    if (wait > span) wait = span;
    r.last_ticks = now;
    r.last_wait = wait_now;

    /* the board model: average power over the span, then the rail current */
    uint64_t power_uw = board.idle_uw + (uint64_t)(board.active_uw - board.idle_uw) * (span - wait) / span;
    uint64_t current_ua = power_uw * 1000u / board.supply_mv;
    /* the chip: ADC readings of the shunt (2.5 uV) and bus (1.25 mV) voltages */
    int16_t shunt = clamp16((int64_t)(current_ua * board.shunt_uohm / 2500000u));
    int16_t bus = clamp16((int64_t)board.supply_mv * 4 / 5);
    /* ...and its arithmetic on them */
    int16_t current = clamp16((int64_t)shunt * r.calibration / 2048);
    int64_t magnitude = current < 0 ? -(int64_t)current : current;
    r.shunt = (uint16_t)shunt;
    r.bus = (uint16_t)bus;
    r.current = (uint16_t)current;
    r.power = (uint16_t)(magnitude * bus / 20000 > 0xFFFF ? 0xFFFF : magnitude * bus / 20000);
    r.mask |= MASK_CVRF;
}

/* ----------------------------------------------------------------------------
 * Registers */

static uint16_t read_register(uint8_t reg) {
    switch (reg) {
    case INA_REG_CONFIG: return r.config;
    case INA_REG_SHUNT: complete_cycle_if_due(); return r.shunt;
    case INA_REG_BUS: complete_cycle_if_due(); return r.bus;
    case INA_REG_POWER: complete_cycle_if_due(); return r.power;
    case INA_REG_CURRENT: complete_cycle_if_due(); return r.current;
    case INA_REG_CALIBRATION: return r.calibration;
    case INA226_REG_MASK_ENABLE: {
        complete_cycle_if_due();
        uint16_t v = r.mask;
        r.mask &= (uint16_t)~MASK_CVRF;
        return v;
    }
    case INA226_REG_ALERT_LIMIT: return r.alert;
    case INA226_REG_MANUFACTURER: return 0x5449u;
    case INA226_REG_DIE_ID: return 0x2260u;
    default: return 0;
    }
}

static void write_register(uint8_t reg, uint16_t value) {
    switch (reg) {
    case INA_REG_CONFIG:
        if (value & 0x8000u) {
            power_on_reset();
        } else {
            set_config(value);
        }
        return;
    case INA_REG_CALIBRATION: r.calibration = value & 0x7FFFu; return;
    case INA226_REG_MASK_ENABLE: r.mask = (uint16_t)((value & 0xFC01u) | (r.mask & 0x001Eu)); return;
    case INA226_REG_ALERT_LIMIT: r.alert = value; return;
    default: return; /* read-only registers ignore writes */
    }
}

/* ----------------------------------------------------------------------------
 * The I2C side: a write sets the register pointer, and with two more bytes
 * writes that register (MSB first); a read returns the pointed-to register,
 * MSB first, as often as the controller keeps reading. */

void ina226_standin_init(const InaStandinBoard *b) {
    board = *b;
    power_on_reset();
    ina226_standin_sync();
}

void ina226_standin_sync(void) {
    r.last_ticks = port_ticks();
    r.last_wait = tp_io_wait_ticks_lo();
}

int ina226_standin_write(uint8_t addr, const uint8_t *buf, size_t n) {
    if (addr != TP_INA_ADDR) return -1;
    if (n >= 1) r.pointer = buf[0];
    if (n >= 3) write_register(buf[0], (uint16_t)((buf[1] << 8) | buf[2]));
    return 0;
}

int ina226_standin_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr) {
    if (ina226_standin_write(addr, wr, nw) != 0) return -1;
    uint16_t v = read_register(r.pointer);
    for (size_t i = 0; i < nr; i++) rd[i] = (uint8_t)(i % 2 == 0 ? v >> 8 : v);
    return 0;
}
