/* The portable firmware main loop: HELLO at boot, then host commands
 * (PING, HELLO_REQ, RUN) answered one at a time. */
#ifndef TP_APP_H
#define TP_APP_H

/* Firmware build id, reported in HELLO (Makefile: FIRMWARE_ID=...). */
#ifndef TP_FIRMWARE_ID
#define TP_FIRMWARE_ID "dev"
#endif

/* Loads and checks the model, sizes the buffers, sends 0x00 then HELLO. */
void tp_app_boot(void);

/* Reads whatever the UART holds and handles complete frames. Never blocks
 * except while a RUN executes (which does not read the UART at all). */
void tp_app_poll(void);

/* tp_app_boot, then tp_app_poll forever. Needs port_init() done. */
void tp_app_main(void);

#endif /* TP_APP_H */
