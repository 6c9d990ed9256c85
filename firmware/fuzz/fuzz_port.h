/* The frame fuzzer's host port: see fuzz_port.c. */
#ifndef TP_FUZZ_PORT_H
#define TP_FUZZ_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

/* Once: the model region the board boots with. */
void fuzz_port_setup(const uint8_t *model, uint32_t model_bytes);

/* Per input: the bytes the UART will deliver; clears the capture and time. */
void fuzz_port_reset(const uint8_t *input, size_t n);

/* Everything the firmware wrote to the UART since the reset. */
const uint8_t *fuzz_port_output(size_t *n);

#endif /* TP_FUZZ_PORT_H */
