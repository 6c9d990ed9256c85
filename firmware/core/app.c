/* The portable firmware main loop: see app.h and docs/protocol.md. */
#include "app.h"

#include "arena.h"
#include "generate.h"
#include "model.h"
#include "port.h"
#include "protocol.h"
#include "sampler.h"
#include "transformer.h"

/* ----------------------------------------------------------------------------
 * State. Everything is static: the firmware has no heap, and the big buffers
 * live in the arena, not here. */

/* Device frames are small (HELLO is the largest at ~60 + id + board bytes),
 * so the transmit side needs far less than the 1024-byte protocol maximum. */
#define TX_PAYLOAD_MAX 320

static Model model;
static Arena arena;
static Transformer transformer;
static Sampler sampler;
static TpDecoder rx;                                   /* host -> device */
static uint16_t tx_seq;                                /* device -> host, from 0 at boot */
static uint8_t tx_payload[TX_PAYLOAD_MAX];
static uint8_t tx_frame[TP_ENCODED_MAX(TX_PAYLOAD_MAX)];

/* ----------------------------------------------------------------------------
 * Sending */

static void send_frame(uint8_t type, const uint8_t *payload, size_t len) {
    size_t n = tp_frame_encode(tx_frame, sizeof tx_frame, type, tx_seq, payload, len);
    if (n == 0) return; /* cannot happen: every payload below fits TX_PAYLOAD_MAX */
    port_uart_write(tx_frame, n);
    tx_seq++;
}

static void send_writer(uint8_t type, const TpWriter *w) {
    if (w->ok) send_frame(type, w->p, w->n);
}

static void send_hello(void) {
    const PortInfo *pi = port_info();
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u8(&w, TP_PROTOCOL_VERSION);
    tp_put_u8(&w, pi->timer_bits);
    tp_put_u16(&w, TP_CAP_INT8 | TP_CAP_SEEDED_SAMPLING | TP_CAP_MEM_SAMPLES | TP_CAP_INT4);
    tp_put_u32(&w, pi->clock_hz);
    tp_put_u32(&w, pi->timer_hz);
    tp_put_u32(&w, pi->ram_total_bytes);
    tp_put_u32(&w, pi->flash_total_bytes);
    tp_put_u32(&w, pi->static_ram_bytes);
    tp_put_u32(&w, pi->arena_bytes);
    tp_put_u32(&w, pi->stack_total_bytes);
    tp_put_u32(&w, pi->model_addr);
    tp_put_u32(&w, pi->model_region_bytes);
    tp_put_u32(&w, model.model_bytes);
    tp_put_u32(&w, model.crc32);
    tp_put_u8(&w, (uint8_t)model.status);
    tp_put_str(&w, TP_FIRMWARE_ID);
    tp_put_str(&w, pi->board);
    send_writer(TP_MSG_HELLO, &w);
}

/* A tiny message builder: the firmware has no printf. */
typedef struct {
    char s[96];
    size_t n;
} Msg;

static void msg_add(Msg *m, const char *text) {
    while (*text != '\0' && m->n < sizeof m->s - 1) m->s[m->n++] = *text++;
    m->s[m->n] = '\0';
}

static void msg_add_uint(Msg *m, uint32_t v) {
    char digits[10];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0 && k < 10);
    while (k > 0 && m->n < sizeof m->s - 1) m->s[m->n++] = digits[--k];
    m->s[m->n] = '\0';
}

static void msg_add_hex8(Msg *m, uint8_t v) {
    static const char hex[] = "0123456789abcdef";
    char t[5] = {'0', 'x', hex[v >> 4], hex[v & 15u], '\0'};
    msg_add(m, t);
}

static void send_error(uint16_t code, const Msg *m) {
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, code);
    tp_put_str(&w, m->s);
    send_writer(TP_MSG_ERROR, &w);
}

static void send_log(const Msg *m) {
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_bytes(&w, m->s, m->n);
    send_writer(TP_MSG_LOG, &w);
}

static void send_phase(uint16_t rep, uint8_t phase, uint64_t ticks) {
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u8(&w, phase);
    tp_put_u8(&w, 0);
    tp_put_u64(&w, ticks);
    send_writer(TP_MSG_PHASE, &w);
}

static void send_token(uint16_t rep, int index, int pos, int token, uint64_t ticks) {
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u16(&w, (uint16_t)index);
    tp_put_u16(&w, (uint16_t)pos);
    tp_put_u16(&w, (uint16_t)token);
    tp_put_u64(&w, ticks);
    send_writer(TP_MSG_TOKEN, &w);
}

/* ----------------------------------------------------------------------------
 * RUN: one repetition, timed by the board. Between the re-base and DONE the
 * UART is only written, never read, so identical RUNs execute identical
 * instruction streams (and, under QEMU -icount, identical tick counts). */

typedef struct {
    uint16_t rep;
} RunCtx;

static void on_token(void *ctx, int index, int pos, int token) {
    uint64_t ticks = port_ticks(); /* right after sampling */
    uint16_t rep = ((const RunCtx *)ctx)->rep;
    if (index == 0) {
        send_phase(rep, TP_PHASE_PREFILL_END, ticks);
        send_token(rep, 0, pos, token, ticks);
        send_phase(rep, TP_PHASE_DECODE_START, port_ticks());
    } else {
        send_token(rep, index, pos, token, ticks);
    }
}

static void handle_run(const uint8_t *p, size_t len) {
    Msg m = {{0}, 0};
    /* u16 rep, u16 n_tokens, f32 temperature, u32 seed, u16 n_prompt, u16 prompt[] */
    if (len < 14 || len != 14u + 2u * tp_rd16(p + 12)) {
        msg_add(&m, "RUN payload must be 14 + 2*n_prompt bytes, got ");
        msg_add_uint(&m, (uint32_t)len);
        send_error(TP_ERR_BAD_LENGTH, &m);
        return;
    }
    uint16_t rep = tp_rd16(p);
    int n_tokens = tp_rd16(p + 2);
    float temperature = tp_rdf32(p + 4);
    uint32_t seed = tp_rd32(p + 8);
    int n_prompt = tp_rd16(p + 12);
    const uint8_t *prompt = p + 14;

    if (model.status != TP_MODEL_OK) {
        msg_add(&m, "no usable model, model_status ");
        msg_add_uint(&m, (uint32_t)model.status);
        send_error(TP_ERR_NO_MODEL, &m);
        return;
    }
    const Config *c = &transformer.config;
    int err = tp_run_check(c, n_prompt, n_tokens, temperature, prompt);
    if (err == TP_ERR_CONTEXT_OVERFLOW) {
        msg_add(&m, "context overflow: n_prompt + n_tokens - 1 > seq_len ");
        msg_add_uint(&m, (uint32_t)c->seq_len);
        send_error(TP_ERR_CONTEXT_OVERFLOW, &m);
        return;
    }
    if (err != 0) {
        msg_add(&m, "bad argument: counts must be > 0, tokens < vocab_size ");
        msg_add_uint(&m, (uint32_t)c->vocab_size);
        msg_add(&m, ", temperature >= 0");
        send_error((uint16_t)err, &m);
        return;
    }

    port_stack_reset_peak();
    tp_sampler_init(&sampler, c->vocab_size, temperature, seed);
    RunCtx ctx = {rep};

    port_timer_rebase();
    send_phase(rep, TP_PHASE_PREFILL_START, port_ticks());
    tp_generate(&transformer, &sampler, prompt, n_prompt, n_tokens, on_token, &ctx);
    send_phase(rep, TP_PHASE_DECODE_END, port_ticks());

    const PortInfo *pi = port_info();
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u16(&w, 0);
    tp_put_u64(&w, port_ticks());
    tp_put_u32(&w, pi->static_ram_bytes);
    tp_put_u32(&w, (uint32_t)tp_arena_used(&arena));
    tp_put_u32(&w, port_stack_peak());
    tp_put_u32(&w, pi->stack_total_bytes);
    tp_put_u32(&w, (uint32_t)tp_kv_cache_bytes(c));
    send_writer(TP_MSG_MEM, &w);

    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u16(&w, (uint16_t)n_tokens);
    tp_put_u64(&w, port_ticks());
    tp_put_u8(&w, 0);
    send_writer(TP_MSG_DONE, &w);
}

/* ----------------------------------------------------------------------------
 * Command dispatch */

static void handle_frame(uint8_t type, const uint8_t *p, size_t len) {
    Msg m = {{0}, 0};
    switch (type) {
    case TP_MSG_PING:
        if (len != 4) break;
        send_frame(TP_MSG_PONG, p, 4); /* the nonce, echoed */
        return;
    case TP_MSG_HELLO_REQ:
        if (len != 0) break;
        send_hello();
        return;
    case TP_MSG_RUN:
        handle_run(p, len);
        return;
    default:
        msg_add(&m, "unknown command ");
        msg_add_hex8(&m, type);
        send_error(TP_ERR_UNKNOWN_COMMAND, &m);
        return;
    }
    msg_add(&m, "bad payload length ");
    msg_add_uint(&m, (uint32_t)len);
    msg_add(&m, " for command ");
    msg_add_hex8(&m, type);
    send_error(TP_ERR_BAD_LENGTH, &m);
}

/* A damaged host frame has no ERROR code of its own, and its type cannot be
 * trusted; a LOG line tells the host why its command went unanswered. */
static void report_rx_error(int r) {
    static const char *const why[] = {"", "not COBS", "too short", "length mismatch",
                                      "bad crc", "bad version", "too long"};
    Msg m = {{0}, 0};
    msg_add(&m, "dropped a corrupt host frame: ");
    msg_add(&m, why[-r]);
    send_log(&m);
}

/* ----------------------------------------------------------------------------
 * Entry points */

void tp_app_boot(void) {
    const PortInfo *pi = port_info();
    tx_seq = 0;
    tp_decoder_init(&rx);

    /* CRC of the whole image: on a 1 MB region this is the slow part of boot */
    tp_model_load(&model, pi->model, pi->model_region_bytes);
    tp_arena_init(&arena, pi->arena, pi->arena_bytes);
    if (model.status == TP_MODEL_OK && tp_transformer_init(&transformer, &model, &arena) != 0) {
        model.status = TP_MODEL_NO_ROOM;
    }

    /* one delimiter ends whatever the boot ROM or a previous run left on the line */
    const uint8_t zero = 0x00;
    port_uart_write(&zero, 1);
    send_hello();
}

void tp_app_poll(void) {
    int b;
    while ((b = port_uart_read()) >= 0) {
        int r = tp_decoder_push(&rx, (uint8_t)b);
        if (r == TP_RX_FRAME) {
            handle_frame(rx.type, rx.payload, rx.len);
        } else if (r < 0) {
            report_rx_error(r);
        }
    }
}

void tp_app_main(void) {
    tp_app_boot();
    for (;;) tp_app_poll();
}
