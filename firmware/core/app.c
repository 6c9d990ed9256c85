/* The portable firmware main loop: see app.h and docs/protocol.md. */
#include "app.h"

#include "arena.h"
#include "generate.h"
#include "model.h"
#include "port.h"
#include "protocol.h"
#include "sampler.h"
#include "telemetry.h"
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
static uint16_t capabilities;                          /* HELLO, set at boot */

/* The end of the last RUN, kept to answer STATUS_REQ: a host that lost MEM or
 * DONE asks again instead of failing the session. */
#define MEM_PAYLOAD_BYTES 32
#define DONE_PAYLOAD_BYTES 13
static uint8_t last_state;                             /* TP_STATUS_IDLE until a RUN finished */
static uint16_t last_rep;
static uint8_t last_mem[MEM_PAYLOAD_BYTES];
static uint8_t last_done[DONE_PAYLOAD_BYTES];

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

/* A lone delimiter: ends whatever the line carried before (boot text, a
 * glitch), so it cannot merge into the frame that follows. */
static void send_delimiter(void) {
    const uint8_t zero = 0x00;
    port_uart_write(&zero, 1);
}

static void send_hello(void) {
    const PortInfo *pi = port_info();
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u8(&w, TP_PROTOCOL_VERSION);
    tp_put_u8(&w, pi->timer_bits);
    tp_put_u16(&w, capabilities);
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
 * Telemetry frames (docs/protocol.md: CPU, TEMP, POWER) */

static void send_cpu(uint16_t rep, uint8_t phase, uint64_t busy, uint64_t wait) {
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u8(&w, phase);
    tp_put_u8(&w, 0);
    tp_put_u64(&w, busy);
    tp_put_u64(&w, wait);
    send_writer(TP_MSG_CPU, &w);
}

/* Reads the on-chip sensor, when the port has one, and sends TEMP. */
static void send_temp(uint16_t rep) {
    if ((capabilities & TP_CAP_TEMP_SENSOR) == 0) return;
    int32_t milli_c = 0;
    uint16_t flags = 0;
    uint64_t ticks = port_ticks();
    if (port_temp_read(&milli_c, &flags) != 0) return;
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u16(&w, flags);
    tp_put_u64(&w, ticks);
    tp_put_u32(&w, (uint32_t)milli_c);
    tp_put_u8(&w, TP_TEMP_SOURCE_ONCHIP);
    send_writer(TP_MSG_TEMP, &w);
}

/* ----------------------------------------------------------------------------
 * RUN: one repetition, timed by the board. Between the re-base and DONE the
 * UART is only written, never read, so identical RUNs execute identical
 * instruction streams (and, under QEMU -icount, identical tick counts). With
 * POWER streaming the sampling interrupt falls at fixed tick offsets from the
 * re-base, and the samples it left are sent at fixed points (after every
 * prefill position and every token), so that stays true. */

/* A phase boundary: device ticks and the I/O wait count at that instant. */
typedef struct {
    uint64_t ticks;
    uint64_t wait;
} Mark;

static Mark mark_now(void) {
    Mark m;
    m.ticks = port_ticks();
    m.wait = tp_io_wait_ticks();
    return m;
}

typedef struct {
    uint16_t rep;
    int power;          /* POWER frames asked for */
    uint32_t drops;     /* tp_power_drops() already reported */
    Mark prefill_start, prefill_end, decode_start, decode_end;
} RunCtx;

/* Sends every sample the interrupt has stored. `last`: sampling has stopped,
 * so drops after the final stored sample go into the final frame too. */
static void drain_power(RunCtx *ctx, int last) {
    if (!ctx->power) return;
    TpPowerSample s;
    while (tp_power_pop(&s)) {
        uint32_t drops = s.drops;
        if (last && tp_power_pending() == 0) drops = tp_power_drops();
        uint32_t dropped = drops - ctx->drops;
        ctx->drops = drops;
        TpWriter w;
        tp_writer_init(&w, tx_payload, sizeof tx_payload);
        tp_put_u16(&w, ctx->rep);
        tp_put_u16(&w, (uint16_t)(dropped > 0xFFFFu ? 0xFFFFu : dropped));
        tp_put_u64(&w, s.ticks);
        tp_put_u32(&w, s.r.bus_mv);
        tp_put_u32(&w, (uint32_t)s.r.current_ua);
        tp_put_u32(&w, s.r.power_uw);
        tp_put_u8(&w, tp_power_ina()->chip);
        send_writer(TP_MSG_POWER, &w);
    }
}

static void on_prefill_step(void *vctx, int pos) {
    (void)pos;
    drain_power((RunCtx *)vctx, 0);
}

static void on_token(void *vctx, int index, int pos, int token) {
    RunCtx *ctx = (RunCtx *)vctx;
    if (index == 0) {
        ctx->prefill_end = mark_now(); /* right after sampling */
        uint64_t ticks = ctx->prefill_end.ticks;
        send_phase(ctx->rep, TP_PHASE_PREFILL_END, ticks);
        send_token(ctx->rep, 0, pos, token, ticks);
        ctx->decode_start = mark_now();
        port_sync_pin(1);
        send_phase(ctx->rep, TP_PHASE_DECODE_START, ctx->decode_start.ticks);
    } else {
        uint64_t ticks = port_ticks(); /* right after sampling */
        send_token(ctx->rep, index, pos, token, ticks);
    }
    drain_power(ctx, 0);
}

/* busy + wait is exactly the phase's ticks. */
static void send_cpu_phase(uint16_t rep, uint8_t phase, const Mark *a, const Mark *b) {
    uint64_t ticks = b->ticks - a->ticks;
    uint64_t wait = b->wait - a->wait;
    if (wait > ticks) wait = ticks;
    send_cpu(rep, phase, ticks - wait, wait);
}

static void handle_run(const uint8_t *p, size_t len) {
    Msg m = {{0}, 0};
    /* u16 rep, u16 n_tokens, f32 temperature, u32 seed, u16 n_prompt, u16 prompt[]
     * [, u8 flags, u16 sample_period_us] */
    size_t base = len >= 14 ? 14u + 2u * tp_rd16(p + 12) : 0;
    if (len < 14 || (len != base && len != base + TP_RUN_EXT_BYTES)) {
        msg_add(&m, "RUN payload must be 14 + 2*n_prompt (+ 3) bytes, got ");
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
    uint8_t flags = len > base ? p[base] : 0;
    uint32_t period_us = len > base ? tp_rd16(p + base + 1) : 0;
    if (period_us == 0) period_us = TP_POWER_PERIOD_US;

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
    int power = (flags & TP_RUN_FLAG_POWER) != 0;
    if (power && (capabilities & TP_CAP_INA) == 0) {
        msg_add(&m, "POWER frames asked for, but no INA219/INA226 answered at boot");
        send_error(TP_ERR_BAD_ARGUMENT, &m);
        return;
    }
    if (power && (tp_ina_configure(tp_power_ina(), period_us) != 0 || port_sampler_start(period_us) != 0)) {
        msg_add(&m, "INA sample period not possible on this board: ");
        msg_add_uint(&m, period_us);
        msg_add(&m, " us");
        send_error(TP_ERR_BAD_ARGUMENT, &m);
        return;
    }

    port_stack_reset_peak();
    tp_sampler_init(&sampler, c->vocab_size, temperature, seed);
    RunCtx ctx;
    ctx.rep = rep;
    ctx.power = power;
    ctx.drops = tp_power_drops();
    tp_power_reset();

    send_temp(rep); /* before the re-base: outside every timed interval */
    port_timer_rebase();
    ctx.prefill_start = mark_now();
    send_phase(rep, TP_PHASE_PREFILL_START, ctx.prefill_start.ticks);
    tp_generate(&transformer, &sampler, prompt, n_prompt, n_tokens, on_token, on_prefill_step, &ctx);
    ctx.decode_end = mark_now();
    port_sync_pin(0);
    if (power) port_sampler_stop();
    send_phase(rep, TP_PHASE_DECODE_END, ctx.decode_end.ticks);
    drain_power(&ctx, 1);

    send_cpu_phase(rep, TP_CPU_PREFILL, &ctx.prefill_start, &ctx.prefill_end);
    send_cpu_phase(rep, TP_CPU_DECODE, &ctx.decode_start, &ctx.decode_end);
    send_temp(rep);

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
    if (w.ok && w.n == MEM_PAYLOAD_BYTES) {
        for (size_t i = 0; i < w.n; i++) last_mem[i] = w.p[i];
    }
    send_writer(TP_MSG_MEM, &w);

    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u16(&w, (uint16_t)n_tokens);
    tp_put_u64(&w, port_ticks());
    tp_put_u8(&w, 0);
    if (w.ok && w.n == DONE_PAYLOAD_BYTES) {
        for (size_t i = 0; i < w.n; i++) last_done[i] = w.p[i];
        last_rep = rep;
        last_state = TP_STATUS_DONE;
    }
    send_writer(TP_MSG_DONE, &w);
}

/* STATUS_REQ: u16 nonce. STATUS (u16 nonce, u16 rep, u8 state) says which
 * RUN finished last; after it, that RUN's MEM and DONE again, as first sent.
 * Idempotent: it changes nothing on the board, so the host may ask twice. */
static void handle_status(const uint8_t *p) {
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, tp_rd16(p));
    tp_put_u16(&w, last_rep);
    tp_put_u8(&w, last_state);
    send_writer(TP_MSG_STATUS, &w);
    if (last_state != TP_STATUS_DONE) return;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_bytes(&w, (const char *)last_mem, sizeof last_mem);
    send_writer(TP_MSG_MEM, &w);
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_bytes(&w, (const char *)last_done, sizeof last_done);
    send_writer(TP_MSG_DONE, &w);
}

/* ----------------------------------------------------------------------------
 * EVAL: u16 rep, u16 n, u16 tokens[n]. The forward pass over tokens at
 * positions 0..n-1 (teacher forcing, no sampling), and every position's
 * logits back in LOGITS frames (u16 rep, u16 pos, u16 offset, u16 count,
 * f32 logits[count]), then DONE. The host compares them bit for bit with its
 * reference and measures quantization error against the float model. */

#define TP_LOGITS_PER_FRAME 64 /* 8 + 256 payload bytes: fits TX_PAYLOAD_MAX */

static void handle_eval(const uint8_t *p, size_t len) {
    Msg m = {{0}, 0};
    if (len < 4 || len != 4u + 2u * tp_rd16(p + 2)) {
        msg_add(&m, "EVAL payload must be 4 + 2*n bytes, got ");
        msg_add_uint(&m, (uint32_t)len);
        send_error(TP_ERR_BAD_LENGTH, &m);
        return;
    }
    uint16_t rep = tp_rd16(p);
    int n = tp_rd16(p + 2);
    if (model.status != TP_MODEL_OK) {
        msg_add(&m, "no usable model, model_status ");
        msg_add_uint(&m, (uint32_t)model.status);
        send_error(TP_ERR_NO_MODEL, &m);
        return;
    }
    const Config *c = &transformer.config;
    if (n > c->seq_len) {
        msg_add(&m, "context overflow: EVAL of more tokens than seq_len ");
        msg_add_uint(&m, (uint32_t)c->seq_len);
        send_error(TP_ERR_CONTEXT_OVERFLOW, &m);
        return;
    }
    int bad = n == 0;
    for (int i = 0; i < n; i++) {
        if (tp_rd16(p + 4 + 2 * i) >= c->vocab_size) bad = 1;
    }
    if (bad) {
        msg_add(&m, "bad argument: EVAL needs at least one token, each < vocab_size ");
        msg_add_uint(&m, (uint32_t)c->vocab_size);
        send_error(TP_ERR_BAD_ARGUMENT, &m);
        return;
    }
    for (int pos = 0; pos < n; pos++) {
        const float *logits = tp_forward(&transformer, tp_rd16(p + 4 + 2 * pos), pos, 1);
        for (int off = 0; off < c->vocab_size; off += TP_LOGITS_PER_FRAME) {
            int count = c->vocab_size - off < TP_LOGITS_PER_FRAME ? c->vocab_size - off : TP_LOGITS_PER_FRAME;
            TpWriter w;
            tp_writer_init(&w, tx_payload, sizeof tx_payload);
            tp_put_u16(&w, rep);
            tp_put_u16(&w, (uint16_t)pos);
            tp_put_u16(&w, (uint16_t)off);
            tp_put_u16(&w, (uint16_t)count);
            for (int j = 0; j < count; j++) {
                union { float f; uint32_t u; } bits;
                bits.f = logits[off + j];
                tp_put_u32(&w, bits.u);
            }
            send_writer(TP_MSG_LOGITS, &w);
        }
    }
    TpWriter w;
    tp_writer_init(&w, tx_payload, sizeof tx_payload);
    tp_put_u16(&w, rep);
    tp_put_u16(&w, (uint16_t)n);
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
    case TP_MSG_EVAL:
        handle_eval(p, len);
        return;
    case TP_MSG_STATUS_REQ:
        if (len != 2) break;
        handle_status(p);
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
    last_state = TP_STATUS_IDLE;
    last_rep = 0;
    tp_decoder_init(&rx);
    capabilities = (uint16_t)(TP_CAP_INT8 | TP_CAP_SEEDED_SAMPLING | TP_CAP_MEM_SAMPLES | TP_CAP_INT4 | TP_CAP_EVAL |
                              (TP_FIXED_POINT ? TP_CAP_FIXED_POINT : 0u) |
                              TP_CAP_CPU_SAMPLES | (pi->caps & (TP_CAP_TEMP_SENSOR | TP_CAP_SYNC_PIN | TP_CAP_EMULATOR)));
    port_sync_pin(0);
    if (tp_power_init() != 0) capabilities |= TP_CAP_INA;

    /* CRC of the whole image: on a 1 MB region this is the slow part of boot */
    tp_model_load(&model, pi->model, pi->model_region_bytes);
    tp_arena_init(&arena, pi->arena, pi->arena_bytes);
    if (model.status == TP_MODEL_OK && tp_transformer_init(&transformer, &model, &arena) != 0) {
        model.status = TP_MODEL_NO_ROOM;
    }

    /* one delimiter ends whatever the boot ROM or a previous run left on the line */
    send_delimiter();
    send_hello();
}

void tp_app_poll(void) {
    int b;
    while ((b = port_uart_read()) >= 0) {
        int r = tp_decoder_push(&rx, (uint8_t)b);
        /* every answer starts with a delimiter, so text the line carried
         * before it (a boot banner, noise) cannot merge into its first frame */
        if (r == TP_RX_FRAME) {
            send_delimiter();
            handle_frame(rx.type, rx.payload, rx.len);
        } else if (r < 0) {
            send_delimiter();
            report_rx_error(r);
        }
    }
}

void tp_app_main(void) {
    tp_app_boot();
    for (;;) tp_app_poll();
}
