/* libFuzzer target: the host -> board direction, through the firmware's own
 * receive path: core/protocol.c's streaming decoder and core/app.c's command
 * dispatch (PING, HELLO_REQ, RUN, EVAL and the rest), with a small valid model
 * in the board's flash (TP_FUZZ_MODEL, set by the Makefile) so RUN and EVAL
 * get as far as generating.
 *
 * The first input byte picks how the rest reaches the UART:
 *   even: as raw bytes (boot noise, broken COBS, bad CRCs, overlong chunks);
 *   odd:  as records u8 type, u16 len, payload[len] (len clamped to what is
 *         left), each sent as a well-formed frame built by tp_frame_encode,
 *         so mutations reach the command handlers instead of dying at a CRC.
 * Every input boots the board afresh (HELLO), then the board reads all of it.
 * Whatever the input, the board must answer only with frames that decode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fuzz_port.h"
#include "protocol.h"

#ifndef TP_FUZZ_MODEL
#error "TP_FUZZ_MODEL: the model image the fuzzed board boots with (firmware/Makefile sets it)"
#endif

static uint8_t *model;
static uint8_t *stream;
static size_t stream_cap;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    FILE *f = fopen(TP_FUZZ_MODEL, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
        fprintf(stderr, "cannot read the fuzz model %s\n", TP_FUZZ_MODEL);
        abort();
    }
    long n = ftell(f);
    rewind(f);
    model = malloc(n > 0 ? (size_t)n : 1);
    if (model == NULL || n <= 0 || fread(model, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    fuzz_port_setup(model, (uint32_t)n);
    return 0;
}

/* Records -> frames with valid COBS and CRC, in `stream`. Returns its length. */
static size_t frames_from_records(const uint8_t *p, size_t n) {
    size_t out = 0;
    uint16_t seq = 0;
    while (n >= 3) {
        uint8_t type = p[0];
        size_t len = tp_rd16(p + 1);
        p += 3;
        n -= 3;
        if (len > n) len = n;
        size_t need = out + TP_ENCODED_MAX(TP_MAX_PAYLOAD);
        if (need > stream_cap) {
            size_t cap = stream_cap ? stream_cap * 2 : 8192;
            while (cap < need) cap *= 2;
            uint8_t *grown = realloc(stream, cap);
            if (grown == NULL) abort();
            stream = grown;
            stream_cap = cap;
        }
        /* a payload above TP_MAX_PAYLOAD cannot be built: send its first part */
        size_t sent = len > TP_MAX_PAYLOAD ? TP_MAX_PAYLOAD : len;
        size_t k = tp_frame_encode(stream + out, stream_cap - out, type, seq++, p, sent);
        if (k == 0) abort();
        out += k;
        p += len;
        n -= len;
    }
    return out;
}

/* Every byte the board sent belongs to a frame that decodes. */
static void check_replies(void) {
    static TpDecoder d;
    size_t n;
    const uint8_t *out = fuzz_port_output(&n);
    tp_decoder_init(&d);
    size_t frames = 0;
    for (size_t i = 0; i < n; i++) {
        int r = tp_decoder_push(&d, out[i]);
        if (r < 0) {
            fprintf(stderr, "the board sent a frame that does not decode (%d) at byte %zu\n", r, i);
            abort();
        }
        frames += r == TP_RX_FRAME;
    }
    if (frames == 0 || d.n != 0) abort(); /* at least HELLO, and nothing left half-sent */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const uint8_t *bytes = data + 1;
    size_t n = size - 1;
    if (data[0] & 1u) {
        n = frames_from_records(bytes, n);
        bytes = stream;
    }
    fuzz_port_reset(bytes, n);
    tp_app_boot();
    tp_app_poll();
    check_replies();
    return 0;
}
