/* What ports/common/port_common.c gives every bare-metal port (the Makefile
 * links it into each): the PortInfo memory facts from the linker script, and
 * weak defaults of the port.h functions a board may not have the hardware
 * for. A port defines only what it really has; its definition replaces the
 * default at link time.
 *
 * Weak defaults (port.h): port_stack_peak and port_stack_reset_peak (stack
 * painting between __stack_bottom and __stack_top), port_temp_read (no
 * sensor), port_sync_pin (no pin), port_i2c_write and port_i2c_write_read (no
 * device), port_sampler_start and port_sampler_stop (no sampling),
 * port_timer_rebase (nothing to fold: a counter that never wraps).
 * Not weak: port_info, and main (port_init, then tp_app_main). */
#ifndef TP_PORT_COMMON_H
#define TP_PORT_COMMON_H

#include "port.h"

/* Fills the memory facts of the PortInfo that port_info() returns, from the
 * symbols every port's linker.ld defines (their addresses are the values):
 * __ram_start/__ram_end, __flash_total_bytes, __data_start/__data_end and
 * __bss_start/__bss_end (static RAM), __arena_start/__arena_end,
 * __stack_bottom/__stack_top, __model_start/__model_end (the model region,
 * read in place at its bus address). Returns it for port_init to add the
 * board's own facts: board, clock_hz, timer_hz, timer_bits, caps. */
PortInfo *port_info_from_linker(void);

/* The end of a startup, once sp (and gp) are set and whatever must come
 * before C state exists is done (FPU, an early UART): .data copied from
 * __data_load, .bss zeroed, the free stack painted (port_stack_reset_peak),
 * then main, which is port_init and tp_app_main, as a tail call (main's
 * frame starts where the startup's call put this one's, so stack figures do
 * not depend on it). Returns only if main does. A port whose loader already
 * placed .data (esp32c3) does these steps itself. */
int port_crt_start(void);

/* port_init, then tp_app_main (port_common.c). */
int main(void);

#endif /* TP_PORT_COMMON_H */
