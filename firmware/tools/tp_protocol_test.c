/* tp_protocol_test VECTORS_FILE
 *
 * Checks the firmware codec (core/protocol.c) against the shared test vectors
 * the host codec is checked against too (tests/vectors/protocol.txt). Lines
 * starting with '#' are comments; every other line is
 *     TYPE_HEX SEQ_DEC PAYLOAD_HEX ENCODED_HEX
 * with PAYLOAD_HEX '-' for an empty payload and ENCODED_HEX the whole COBS
 * frame including the trailing 00. For each vector: (a) building the frame
 * gives ENCODED_HEX, (b) decoding ENCODED_HEX byte by byte gives the frame
 * back. Then (c) all frames in one stream behind boot garbage are all
 * recovered, plus a few built-in checks (CRC and COBS reference values,
 * corrupt frames rejected). Prints "N passed, M failed"; exits 1 on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

/* ----------------------------------------------------------------------------
 * Bookkeeping */

static int passed, failed;

static void check(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        if (line > 0) {
            printf("FAIL line %d: %s\n", line, what);
        } else {
            printf("FAIL: %s\n", what);
        }
    }
}

typedef struct {
    int line;
    uint8_t type;
    uint16_t seq;
    uint8_t *payload;
    size_t len;
    uint8_t *encoded;
    size_t enc_len;
} Vector;

/* Parses hex digits into a new buffer; "-" is empty. Returns 0 on bad hex. */
static int parse_hex(const char *s, uint8_t **out, size_t *n) {
    size_t len = strlen(s);
    *out = malloc(len / 2 + 1);
    *n = 0;
    if (*out == NULL) return 0;
    if (strcmp(s, "-") == 0) return 1;
    if (len % 2 != 0) return 0;
    for (size_t i = 0; i < len; i += 2) {
        unsigned v;
        if (sscanf(s + i, "%2x", &v) != 1) return 0;
        (*out)[(*n)++] = (uint8_t)v;
    }
    return 1;
}

/* ----------------------------------------------------------------------------
 * Per-vector checks (a) and (b) */

static void check_vector(const Vector *v) {
    uint8_t out[TP_ENCODED_MAX(TP_MAX_PAYLOAD)];
    size_t n = tp_frame_encode(out, sizeof out, v->type, v->seq, v->payload, v->len);
    int same = n == v->enc_len && memcmp(out, v->encoded, n) == 0;
    if (!same) {
        printf("  built:    ");
        for (size_t i = 0; i < n; i++) printf("%02x", out[i]);
        printf("\n  expected: ");
        for (size_t i = 0; i < v->enc_len; i++) printf("%02x", v->encoded[i]);
        printf("\n");
    }
    check(same, "encoded frame differs", v->line);

    static TpDecoder d;
    tp_decoder_init(&d);
    int frames = 0, errors = 0, match = 0;
    for (size_t i = 0; i < v->enc_len; i++) {
        int r = tp_decoder_push(&d, v->encoded[i]);
        if (r == TP_RX_FRAME) {
            frames++;
            match = i == v->enc_len - 1 && d.type == v->type && d.seq == v->seq &&
                    d.len == v->len && memcmp(d.payload, v->payload, v->len) == 0;
        } else if (r < 0) {
            errors++;
        }
    }
    check(frames == 1 && errors == 0 && match, "decoder did not return the frame", v->line);
}

/* ----------------------------------------------------------------------------
 * Stream check (c): garbage, then every frame back to back. The garbage ends
 * in 0x00 like the board's boot delimiter: without one, the garbage and the
 * first frame are one chunk and that frame is lost (by design). */

static void check_stream(const Vector *v, int nv) {
    static const uint8_t garbage[] = {'b', 'o', 'o', 't', '\r', '\n', 0x00, /* boot text */
                                      0x00, 0x00,                          /* empty chunks */
                                      0xFF, 0x13, 0x37, 0x00,              /* bad COBS */
                                      0x03, 0x01, 0x02, 0x00};             /* too short */
    static TpDecoder d;
    tp_decoder_init(&d);
    int errors = 0;
    for (size_t i = 0; i < sizeof garbage; i++) {
        if (tp_decoder_push(&d, garbage[i]) < 0) errors++;
    }
    check(errors == 3, "garbage chunks not rejected", 0);

    int next = 0, ok = 1;
    for (int k = 0; k < nv; k++) {
        for (size_t i = 0; i < v[k].enc_len; i++) {
            int r = tp_decoder_push(&d, v[k].encoded[i]);
            if (r == TP_RX_FRAME) {
                if (next >= nv || d.type != v[next].type || d.seq != v[next].seq ||
                    d.len != v[next].len || memcmp(d.payload, v[next].payload, d.len) != 0)
                    ok = 0;
                next++;
            } else if (r < 0) {
                ok = 0;
            }
        }
    }
    check(ok && next == nv, "not every frame recovered from the stream", 0);
}

/* ----------------------------------------------------------------------------
 * Built-in checks that do not depend on the vectors file */

static int push_all(TpDecoder *d, const uint8_t *b, size_t n) {
    int last = TP_RX_NONE;
    for (size_t i = 0; i < n; i++) {
        int r = tp_decoder_push(d, b[i]);
        if (r != TP_RX_NONE) last = r;
    }
    return last;
}

/* COBS-encodes a raw frame (header + payload + crc as given) and terminates it. */
static size_t encode_raw(const uint8_t *raw, size_t n, uint8_t *out) {
    size_t m = tp_cobs_encode(raw, n, out);
    out[m++] = 0;
    return m;
}

static void check_builtin(void) {
    check(tp_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 check value", 0);
    check(tp_crc32(tp_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u, "crc32 chaining", 0);

    /* COBS reference examples (Cheshire and Baker; Wikipedia) */
    static const struct {
        uint8_t in[8];
        size_t n;
        uint8_t out[9];
        size_t m;
    } cobs[] = {
        {{0x00}, 1, {0x01, 0x01}, 2},
        {{0x00, 0x00}, 2, {0x01, 0x01, 0x01}, 3},
        {{0x11, 0x22, 0x00, 0x33}, 4, {0x03, 0x11, 0x22, 0x02, 0x33}, 5},
        {{0x11, 0x22, 0x33, 0x44}, 4, {0x05, 0x11, 0x22, 0x33, 0x44}, 5},
        {{0x11, 0x00, 0x00, 0x00}, 4, {0x02, 0x11, 0x01, 0x01, 0x01}, 5},
        {{0}, 0, {0x01}, 1},
    };
    for (size_t i = 0; i < sizeof cobs / sizeof cobs[0]; i++) {
        uint8_t enc[16], dec[16];
        size_t m = tp_cobs_encode(cobs[i].in, cobs[i].n, enc), k = 99;
        check(m == cobs[i].m && memcmp(enc, cobs[i].out, m) == 0, "cobs encode example", 0);
        check(tp_cobs_decode(enc, m, dec, &k) == 0 && k == cobs[i].n &&
                  memcmp(dec, cobs[i].in, k) == 0,
              "cobs decode example", 0);
    }
    /* 254 and 255 non-zero bytes: the block boundary cases */
    for (size_t n = 253; n <= 256; n++) {
        uint8_t in[600], enc[TP_COBS_MAX(600)], dec[600];
        for (size_t i = 0; i < n; i++) in[i] = (uint8_t)(i % 255 + 1);
        size_t m = tp_cobs_encode(in, n, enc), k = 0;
        size_t expect = n + 1 + (n >= 254 && n != 254 ? 1 : 0);
        check(m == expect && enc[0] == (n >= 254 ? 0xFF : (uint8_t)(n + 1)), "cobs long block", 0);
        check(tp_cobs_decode(enc, m, dec, &k) == 0 && k == n && memcmp(dec, in, n) == 0,
              "cobs long round trip", 0);
    }

    /* a good frame, then the ways a frame goes bad */
    static TpDecoder d;
    tp_decoder_init(&d);
    uint8_t raw[32], enc[64];
    const uint8_t payload[4] = {0x78, 0x56, 0x00, 0x12};
    raw[0] = 1;
    raw[1] = TP_MSG_PING;
    tp_wr16(raw + 2, 7);
    tp_wr16(raw + 4, 4);
    memcpy(raw + 6, payload, 4);
    tp_wr32(raw + 10, tp_crc32(0, raw, 10));
    size_t m = encode_raw(raw, 14, enc);
    check(push_all(&d, enc, m) == TP_RX_FRAME && d.seq == 7 && d.len == 4, "good frame", 0);

    raw[13] ^= 0x01;
    m = encode_raw(raw, 14, enc);
    check(push_all(&d, enc, m) == TP_RX_ERR_CRC, "bad crc rejected", 0);
    raw[13] ^= 0x01;

    tp_wr16(raw + 4, 5);
    tp_wr32(raw + 10, tp_crc32(0, raw, 10));
    m = encode_raw(raw, 14, enc);
    check(push_all(&d, enc, m) == TP_RX_ERR_LEN, "length mismatch rejected", 0);
    tp_wr16(raw + 4, 4);

    raw[0] = 2;
    tp_wr32(raw + 10, tp_crc32(0, raw, 10));
    m = encode_raw(raw, 14, enc);
    check(push_all(&d, enc, m) == TP_RX_ERR_VERSION, "version 2 rejected", 0);
    raw[0] = 1;

    m = encode_raw(raw, 9, enc);
    check(push_all(&d, enc, m) == TP_RX_ERR_SHORT, "short frame rejected", 0);

    /* a chunk longer than any frame is dropped whole, then decoding resumes */
    int r = TP_RX_NONE;
    for (int i = 0; i < 3000; i++) r = tp_decoder_push(&d, 0x55);
    check(r == TP_RX_NONE && tp_decoder_push(&d, 0) == TP_RX_ERR_OVERFLOW, "overflow dropped", 0);
    tp_wr32(raw + 10, tp_crc32(0, raw, 10));
    m = encode_raw(raw, 14, enc);
    check(push_all(&d, enc, m) == TP_RX_FRAME, "resync after overflow", 0);

    /* the largest frame round-trips through build and decode */
    static uint8_t big[TP_MAX_PAYLOAD], out[TP_ENCODED_MAX(TP_MAX_PAYLOAD)];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
    m = tp_frame_encode(out, sizeof out, TP_MSG_RUN, 65535, big, sizeof big);
    check(m > 0 && push_all(&d, out, m) == TP_RX_FRAME && d.len == TP_MAX_PAYLOAD &&
              memcmp(d.payload, big, sizeof big) == 0,
          "1024-byte payload round trip", 0);
    check(tp_frame_encode(out, sizeof out, TP_MSG_LOG, 0, big, TP_MAX_PAYLOAD + 1) == 0,
          "oversized payload refused", 0);
}

/* ----------------------------------------------------------------------------
 * main */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: tp_protocol_test VECTORS_FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        fprintf(stderr, "tp_protocol_test: cannot open %s\n", argv[1]);
        return 2;
    }

    int cap = 64, nv = 0;
    Vector *v = malloc(sizeof(Vector) * (size_t)cap);
    static char line[16384];
    int lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        char type_hex[16], payload_hex[8192], enc_hex[8192];
        unsigned seq;
        int extra;
        if (strlen(line) >= sizeof payload_hex ||
            sscanf(line, "%15s %u %8191s %8191s %n", type_hex, &seq, payload_hex, enc_hex,
                   &extra) != 4) {
            check(0, "malformed vector line", lineno);
            continue;
        }
        if (nv == cap) {
            cap *= 2;
            v = realloc(v, sizeof(Vector) * (size_t)cap);
        }
        Vector *x = &v[nv];
        x->line = lineno;
        char *end;
        unsigned long type = strtoul(type_hex, &end, 16);
        int ok = *end == '\0' && type <= 0xFF && seq <= 65535 &&
                 parse_hex(payload_hex, &x->payload, &x->len) &&
                 parse_hex(enc_hex, &x->encoded, &x->enc_len);
        if (!ok) {
            check(0, "bad hex in vector line", lineno);
            continue;
        }
        x->type = (uint8_t)type;
        x->seq = (uint16_t)seq;
        nv++;
    }
    fclose(f);

    for (int i = 0; i < nv; i++) check_vector(&v[i]);
    if (nv > 0) check_stream(v, nv);
    check_builtin();
    if (nv == 0) printf("warning: no vectors in %s\n", argv[1]);

    printf("%d vectors; %d passed, %d failed\n", nv, passed, failed);
    return failed == 0 && nv > 0 ? 0 : 1;
}
