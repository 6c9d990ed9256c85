/* ESP-IDF entry point: the profiler runs in its own task (port.c), whose
 * static stack the port paints and measures; app_main returns at once. */
void tp_esp_start(void);

void app_main(void) { tp_esp_start(); }
