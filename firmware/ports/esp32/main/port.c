/* ESP-IDF port: UART0 driver, a GPTimer as the time base, the `model`
 * partition mapped through the flash cache, static arena and task stack.
 *
 * The profiler runs in one FreeRTOS task with a static stack, so its stack
 * can be painted and measured like on the bare-metal ports. Nothing else
 * prints on UART0 (sdkconfig.defaults turns the console and logs off).
 *
 * Telemetry: the chip's temperature sensor through ESP-IDF's driver where the
 * target has one (esp32s3, esp32c3; not the original esp32), the sync marker
 * on CONFIG_TP_SYNC_GPIO when set, CPU frames with every uart_write_bytes
 * call counted as waiting. No INA driver on this port yet (capability off). */
#include <stdint.h>
#include <string.h>

#include "driver/gpio.h"
#include "driver/gptimer.h"
#include "driver/uart.h"
#include "esp_flash.h"
#include "esp_heap_caps.h"
#include "esp_partition.h"
#include "esp_rom_sys.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "soc/soc_caps.h"
#if SOC_TEMP_SENSOR_SUPPORTED
#include "driver/temperature_sensor.h"
#endif

#include "app.h"
#include "port.h"
#include "protocol.h"
#include "telemetry.h"

#define TP_UART UART_NUM_0
#define TP_TIMER_HZ 40000000u /* APB (80 MHz) / 2, the finest GPTimer step */
#define STACK_PAINT 0xA5A5A5A5u
#define STACK_BYTES (CONFIG_TP_STACK_KB * 1024)
#define ARENA_BYTES (CONFIG_TP_ARENA_KB * 1024)
#define STR_(x) #x
#define STR(x) STR_(x)

#if CONFIG_IDF_TARGET_ESP32
#define TIMER_BITS 64
#else
#define TIMER_BITS 54
#endif

/* The arena, exported as __arena_start / __arena_end like the linker scripts
 * of the bare-metal ports do: the host reads them from the ELF for its fit
 * check. */
uint8_t tp_arena[ARENA_BYTES] __attribute__((aligned(8)));
__asm__(".global __arena_start\n.set __arena_start, tp_arena\n"
        ".global __arena_end\n.set __arena_end, tp_arena + " STR(CONFIG_TP_ARENA_KB) " * 1024\n");

static StackType_t task_stack[STACK_BYTES / sizeof(StackType_t)] __attribute__((aligned(16)));
static StaticTask_t task_tcb;

/* ESP-IDF's linker scripts mark the app's static RAM. */
extern uint8_t _data_start[], _data_end[], _bss_start[], _bss_end[];

static PortInfo info;
static gptimer_handle_t timer;
static esp_partition_mmap_handle_t model_map;

/* ----------------------------------------------------------------------------
 * UART0, 8N1, through the driver: a receive buffer, no transmit buffer (so a
 * write returns once the bytes are in the hardware FIFO). */

static void uart_init(void) {
    const uart_config_t cfg = {
        .baud_rate = CONFIG_TP_UART_BAUD,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    ESP_ERROR_CHECK(uart_driver_install(TP_UART, 2048, 0, 0, NULL, 0));
    ESP_ERROR_CHECK(uart_param_config(TP_UART, &cfg));
}

/* Without a transmit buffer the call returns once the bytes are in the FIFO:
 * its time is almost all waiting for room, and counts as I/O wait. */
void port_uart_write(const uint8_t *buf, size_t n) {
    uint32_t t0 = (uint32_t)port_ticks();
    uart_write_bytes(TP_UART, buf, n);
    tp_io_wait_add((uint32_t)port_ticks() - t0);
}

int port_uart_read(void) {
    uint8_t c;
    return uart_read_bytes(TP_UART, &c, 1, 0) == 1 ? (int)c : -1;
}

/* ----------------------------------------------------------------------------
 * Time base: a GPTimer counting up at 40 MHz, 54 bits (64 on the ESP32):
 * years before it wraps, so no re-base is needed. */

static void timer_init(void) {
    const gptimer_config_t cfg = {
        .clk_src = GPTIMER_CLK_SRC_DEFAULT,
        .direction = GPTIMER_COUNT_UP,
        .resolution_hz = TP_TIMER_HZ,
    };
    ESP_ERROR_CHECK(gptimer_new_timer(&cfg, &timer));
    ESP_ERROR_CHECK(gptimer_enable(timer));
    ESP_ERROR_CHECK(gptimer_start(timer));
}

uint64_t port_ticks(void) {
    uint64_t count = 0;
    gptimer_get_raw_count(timer, &count);
    return count;
}

void port_timer_rebase(void) {}

/* ----------------------------------------------------------------------------
 * The model: the data partition labelled `model`, mapped whole into the data
 * cache window. If the window has too few free pages for the whole partition,
 * only the image its header declares is mapped. */

static const uint8_t *map_model(const esp_partition_t *part, uint32_t *mapped) {
    const void *p = NULL;
    *mapped = 0;
    if (esp_partition_mmap(part, 0, part->size, ESP_PARTITION_MMAP_DATA, &p, &model_map) == ESP_OK) {
        *mapped = part->size;
        return p;
    }
    uint8_t header[64];
    if (esp_partition_read(part, 0, header, sizeof header) != ESP_OK) return NULL;
    uint32_t payload;
    memcpy(&payload, header + 44, sizeof payload); /* TPMD payload_size, little-endian */
    uint32_t want = 64u + payload < part->size ? 64u + payload : part->size;
    if (esp_partition_mmap(part, 0, want, ESP_PARTITION_MMAP_DATA, &p, &model_map) != ESP_OK) return NULL;
    *mapped = want;
    return p;
}

/* ----------------------------------------------------------------------------
 * Stack use, by painting the profiler task's own stack. Below the current
 * stack pointer only a margin is left unpainted: on Xtensa a frame's caller
 * registers may be spilled into the 16 bytes under its stack pointer. */

static uintptr_t current_sp(void) { return (uintptr_t)__builtin_frame_address(0); }

uint32_t port_stack_peak(void) {
    const uint32_t *p = (const uint32_t *)(void *)task_stack;
    const uint32_t *top = (const uint32_t *)(void *)((uint8_t *)task_stack + STACK_BYTES);
    while (p < top && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

void port_stack_reset_peak(void) {
    uintptr_t end = (current_sp() - 256u) & ~(uintptr_t)3u;
    for (uint32_t *p = (uint32_t *)(void *)task_stack; (uintptr_t)p < end;) *p++ = STACK_PAINT;
}

/* ----------------------------------------------------------------------------
 * Telemetry */

#if SOC_TEMP_SENSOR_SUPPORTED
static temperature_sensor_handle_t tsens;
#endif

static uint16_t telemetry_init(void) {
    uint16_t caps = 0;
#if SOC_TEMP_SENSOR_SUPPORTED
    temperature_sensor_config_t cfg = TEMPERATURE_SENSOR_CONFIG_DEFAULT(-10, 80);
    if (temperature_sensor_install(&cfg, &tsens) == ESP_OK && temperature_sensor_enable(tsens) == ESP_OK) {
        caps |= TP_CAP_TEMP_SENSOR;
    }
#endif
#if CONFIG_TP_SYNC_GPIO >= 0
    gpio_reset_pin(CONFIG_TP_SYNC_GPIO);
    gpio_set_direction(CONFIG_TP_SYNC_GPIO, GPIO_MODE_OUTPUT);
    gpio_set_level(CONFIG_TP_SYNC_GPIO, 0);
    caps |= TP_CAP_SYNC_PIN;
#endif
    return caps;
}

int port_temp_read(int32_t *milli_celsius, uint16_t *flags) {
    *flags = 0; /* the driver applies the chip's eFuse calibration; not reported as ours */
#if SOC_TEMP_SENSOR_SUPPORTED
    float celsius;
    if (tsens != NULL && temperature_sensor_get_celsius(tsens, &celsius) == ESP_OK) {
        *milli_celsius = (int32_t)(celsius * 1000.0f);
        return 0;
    }
#else
    (void)milli_celsius;
#endif
    return -1;
}

void port_sync_pin(int level) {
#if CONFIG_TP_SYNC_GPIO >= 0
    gpio_set_level(CONFIG_TP_SYNC_GPIO, (uint32_t)level);
#else
    (void)level;
#endif
}

int port_i2c_write(uint8_t addr, const uint8_t *buf, size_t n) {
    (void)addr;
    (void)buf;
    (void)n;
    return -1;
}

int port_i2c_write_read(uint8_t addr, const uint8_t *wr, size_t nw, uint8_t *rd, size_t nr) {
    (void)addr;
    (void)wr;
    (void)nw;
    (void)rd;
    (void)nr;
    return -1;
}

int port_sampler_start(uint32_t period_us) {
    (void)period_us;
    return -1;
}

void port_sampler_stop(void) {}

/* ----------------------------------------------------------------------------
 * Facts */

void port_init(void) {
    uart_init();
    timer_init();

    const esp_partition_t *part =
        esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "model");
    uint32_t mapped = 0;
    const uint8_t *model = part != NULL ? map_model(part, &mapped) : NULL;

    uint32_t flash_bytes = 0;
    esp_flash_get_size(NULL, &flash_bytes);
    uint32_t static_bytes =
        (uint32_t)((_data_end - _data_start) + (_bss_end - _bss_start)) - ARENA_BYTES - STACK_BYTES;

    info.board = CONFIG_IDF_TARGET;
    info.clock_hz = esp_rom_get_cpu_ticks_per_us() * 1000000u;
    info.timer_hz = TP_TIMER_HZ;
    info.timer_bits = TIMER_BITS;
    info.ram_total_bytes = static_bytes + ARENA_BYTES + STACK_BYTES +
                           (uint32_t)heap_caps_get_total_size(MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
    info.flash_total_bytes = flash_bytes;
    info.static_ram_bytes = static_bytes;
    info.arena = tp_arena;
    info.arena_bytes = ARENA_BYTES;
    info.stack_total_bytes = STACK_BYTES;
    info.model = model;
    info.model_addr = part != NULL ? part->address : 0; /* flash offset of the partition */
    info.model_region_bytes = model != NULL ? mapped : 0;
    info.caps = telemetry_init();
}

const PortInfo *port_info(void) { return &info; }

static void profiler_task(void *arg) {
    (void)arg;
    port_init();
    tp_app_main();
}

void tp_esp_start(void) {
    /* paint the whole stack before the task first runs on it */
    for (size_t i = 0; i < STACK_BYTES / 4u; i++) ((uint32_t *)(void *)task_stack)[i] = STACK_PAINT;
    xTaskCreateStatic(profiler_task, "tiny-profiler", STACK_BYTES / sizeof(StackType_t), NULL, 5,
                      task_stack, &task_tcb);
}
