/* Wire protocol v1 (docs/protocol.md): CRC-32, COBS, frames, little-endian
 * field packing, and a streaming decoder for the host -> device direction.
 *
 * A frame on the wire is COBS(version u8, type u8, seq u16, len u16,
 * payload[len], crc32 u32) followed by one 0x00 delimiter. */
#ifndef TP_PROTOCOL_H
#define TP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------------------
 * Constants */

#define TP_PROTOCOL_VERSION 1
#define TP_MAX_PAYLOAD 1024
#define TP_FRAME_HEADER 6   /* version, type, seq, len */
#define TP_FRAME_OVERHEAD 10 /* header + crc32 */

/* COBS adds one code byte per started 254-byte block; +1 covers the
 * code byte of an empty or exactly-full trailing block. */
#define TP_COBS_MAX(n) ((n) + (n) / 254 + 1)
/* Largest encoded frame including the 0x00 delimiter. */
#define TP_ENCODED_MAX(payload) (TP_COBS_MAX(TP_FRAME_OVERHEAD + (payload)) + 1)

/* Device -> host message types. */
enum {
    TP_MSG_HELLO = 0x01,
    TP_MSG_TOKEN = 0x02,
    TP_MSG_PHASE = 0x03,
    TP_MSG_MEM = 0x04,
    TP_MSG_DONE = 0x05,
    TP_MSG_ERROR = 0x06,
    TP_MSG_PONG = 0x07,
    TP_MSG_LOG = 0x08,
    TP_MSG_CPU = 0x09,
    TP_MSG_TEMP = 0x0A,
    TP_MSG_POWER = 0x0B,
    TP_MSG_LOGITS = 0x0C, /* EVAL's answer: one slice of one position's logits */
    TP_MSG_STATUS = 0x0D, /* STATUS_REQ's answer; MEM and DONE of the last RUN follow again */
};

/* Host -> device message types. */
enum {
    TP_MSG_PING = 0x81,
    TP_MSG_RUN = 0x82,
    TP_MSG_HELLO_REQ = 0x83,
    TP_MSG_EVAL = 0x84, /* teacher-forced forward pass, logits back (run --check-quality) */
    TP_MSG_STATUS_REQ = 0x85, /* u16 nonce: which RUN finished last (idempotent) */
};

/* STATUS states. */
enum {
    TP_STATUS_IDLE = 0, /* no RUN finished since boot */
    TP_STATUS_DONE = 1, /* `rep` finished; its MEM and DONE follow the STATUS */
};

/* PHASE values. */
enum {
    TP_PHASE_PREFILL_START = 1,
    TP_PHASE_PREFILL_END = 2,
    TP_PHASE_DECODE_START = 3,
    TP_PHASE_DECODE_END = 4,
};

/* ERROR codes. */
enum {
    TP_ERR_UNKNOWN_COMMAND = 1,
    TP_ERR_BAD_LENGTH = 2,
    TP_ERR_NO_MODEL = 3,
    TP_ERR_CONTEXT_OVERFLOW = 4,
    TP_ERR_BAD_ARGUMENT = 5,
};

/* HELLO capability bits. */
#define TP_CAP_INT8 (1u << 0)
#define TP_CAP_SEEDED_SAMPLING (1u << 1)
#define TP_CAP_MEM_SAMPLES (1u << 2)
#define TP_CAP_INT4 (1u << 3)
#define TP_CAP_EVAL (1u << 4) /* answers EVAL with LOGITS frames */
#define TP_CAP_FIXED_POINT (1u << 5) /* integer forward pass (docs/model-format.md) */
/* Telemetry bits start at 8, leaving 4..7 to the forward pass. */
#define TP_CAP_CPU_SAMPLES (1u << 8)  /* CPU frames after every RUN */
#define TP_CAP_TEMP_SENSOR (1u << 9)  /* TEMP frames from an on-chip sensor */
#define TP_CAP_INA (1u << 10)         /* an INA219/INA226 answered: RUN may ask for POWER frames */
#define TP_CAP_SYNC_PIN (1u << 11)    /* a GPIO marks the decode window */
#define TP_CAP_EMULATOR (1u << 12)    /* the port found itself on an emulator, whoever launched it */

/* CPU frame phases. */
enum {
    TP_CPU_PREFILL = 1,
    TP_CPU_DECODE = 2,
};

/* TEMP: source, and flags (bit 0: the chip's factory calibration was used). */
#define TP_TEMP_SOURCE_ONCHIP 1
#define TP_TEMP_FLAG_CALIBRATED (1u << 0)

/* POWER: which INA. */
#define TP_INA_219 1
#define TP_INA_226 2

/* RUN's optional trailing fields: u8 flags, u16 sample_period_us. */
#define TP_RUN_FLAG_POWER (1u << 0) /* stream POWER frames from the INA */
#define TP_RUN_EXT_BYTES 3

/* ----------------------------------------------------------------------------
 * CRC-32/IEEE, zlib semantics: tp_crc32(0, buf, n) is zlib.crc32(buf), and
 * tp_crc32(tp_crc32(0, a, na), b, nb) is the CRC of a followed by b. */

uint32_t tp_crc32(uint32_t crc, const void *buf, size_t n);

/* ----------------------------------------------------------------------------
 * COBS (Cheshire and Baker, 254-byte blocks). */

/* Encodes n bytes into out (room for TP_COBS_MAX(n) bytes, no delimiter);
 * returns the encoded length. */
size_t tp_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);

/* Decodes one chunk (without its delimiter). out may equal in: decoding in
 * place is safe because the output never overtakes the input. Returns 0 and
 * sets *out_len, or -1 when the chunk is not valid COBS. */
int tp_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *out_len);

/* ----------------------------------------------------------------------------
 * Frame building: header, payload and crc are COBS-encoded straight into out
 * without an intermediate raw copy. Returns the number of bytes written
 * (including the trailing 0x00), or 0 when out (cap bytes) is too small or
 * len exceeds TP_MAX_PAYLOAD. */

size_t tp_frame_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t seq,
                       const uint8_t *payload, size_t len);

/* ----------------------------------------------------------------------------
 * Streaming frame decoder: push bytes one at a time; it collects a chunk up to
 * the next 0x00, decodes it in place and validates it. */

enum {
    TP_RX_NONE = 0,        /* need more bytes (or an empty chunk was skipped) */
    TP_RX_FRAME = 1,       /* a valid frame is in type/seq/payload/len */
    TP_RX_ERR_COBS = -1,   /* chunk is not valid COBS */
    TP_RX_ERR_SHORT = -2,  /* decoded chunk shorter than 10 bytes */
    TP_RX_ERR_LEN = -3,    /* len field disagrees with the chunk size */
    TP_RX_ERR_CRC = -4,    /* crc32 mismatch */
    TP_RX_ERR_VERSION = -5,/* version is not 1 */
    TP_RX_ERR_OVERFLOW = -6,/* chunk longer than the buffer: dropped whole */
};

typedef struct {
    uint8_t buf[TP_ENCODED_MAX(TP_MAX_PAYLOAD)]; /* encoded chunk, decoded in place */
    size_t n;           /* bytes collected for the current chunk */
    int overflow;       /* current chunk outgrew buf; discard until 0x00 */
    /* the last frame, valid after TP_RX_FRAME until the next push */
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload;
} TpDecoder;

void tp_decoder_init(TpDecoder *d);
int tp_decoder_push(TpDecoder *d, uint8_t byte);

/* ----------------------------------------------------------------------------
 * Little-endian field helpers. Byte by byte, so they work on any alignment
 * and any host endianness. */

static inline uint16_t tp_rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t tp_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline float tp_rdf32(const uint8_t *p) {
    union { uint32_t u; float f; } v;
    v.u = tp_rd32(p);
    return v.f;
}
static inline void tp_wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void tp_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A payload under construction. Writes past cap are dropped and flagged, so
 * a caller checks ok once at the end instead of after every field. */
typedef struct {
    uint8_t *p;
    size_t n;
    size_t cap;
    int ok;
} TpWriter;

static inline void tp_writer_init(TpWriter *w, uint8_t *buf, size_t cap) {
    w->p = buf;
    w->n = 0;
    w->cap = cap;
    w->ok = 1;
}
static inline void tp_put_u8(TpWriter *w, uint8_t v) {
    if (w->n + 1 > w->cap) { w->ok = 0; return; }
    w->p[w->n++] = v;
}
static inline void tp_put_u16(TpWriter *w, uint16_t v) {
    if (w->n + 2 > w->cap) { w->ok = 0; return; }
    tp_wr16(w->p + w->n, v);
    w->n += 2;
}
static inline void tp_put_u32(TpWriter *w, uint32_t v) {
    if (w->n + 4 > w->cap) { w->ok = 0; return; }
    tp_wr32(w->p + w->n, v);
    w->n += 4;
}
static inline void tp_put_u64(TpWriter *w, uint64_t v) {
    tp_put_u32(w, (uint32_t)v);
    tp_put_u32(w, (uint32_t)(v >> 32));
}
/* Raw bytes (LOG payloads). */
static inline void tp_put_bytes(TpWriter *w, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) tp_put_u8(w, (uint8_t)s[i]);
}
/* Protocol string: u8 length then the bytes; truncated to 255 bytes. */
static inline void tp_put_str(TpWriter *w, const char *s) {
    size_t n = 0;
    while (s[n] != '\0' && n < 255) n++;
    tp_put_u8(w, (uint8_t)n);
    tp_put_bytes(w, s, n);
}

#endif /* TP_PROTOCOL_H */
