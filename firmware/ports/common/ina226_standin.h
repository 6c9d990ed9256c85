/* INA226 STAND-IN for emulated boards: see ina226_standin.c. */
#ifndef TP_INA226_STANDIN_H
#define TP_INA226_STANDIN_H

#include <stddef.h>
#include <stdint.h>

/* The board power model the stand-in measures: `idle_uw` while the CPU
 * waits on I/O, `active_uw` while it computes, drawn from a `supply_mv`
 * rail through a `shunt_uohm` shunt. */
typedef struct {
    uint32_t supply_mv;
    uint32_t idle_uw;
    uint32_t active_uw;
    uint32_t shunt_uohm;
} InaStandinBoard;

/* Power-on: registers at their reset values, the board model to measure. */
void ina226_standin_init(const InaStandinBoard *board);

/* Starts a new averaging window now (the port calls it when sampling starts,
 * so the first conversion covers the RUN only). */
void ina226_standin_sync(void);

/* The I2C transfers of core/port.h, answered as an INA226 at TP_INA_ADDR
 * would answer them; any other address does not acknowledge. */
int ina226_standin_write(uint8_t addr, const uint8_t *buf, size_t n);
int ina226_standin_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr);

#endif /* TP_INA226_STANDIN_H */
