/* TPMD model image reader (docs/model-format.md). The image is read in place
 * (from flash on a board): every weight pointer below points into it. */
#ifndef TP_MODEL_H
#define TP_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------------------
 * Model status, as reported in HELLO.model_status (docs/protocol.md). */

enum {
    TP_MODEL_OK = 0,
    TP_MODEL_NONE = 1,            /* bad magic: nothing was written there */
    TP_MODEL_BAD_HEADER_CRC = 2,
    TP_MODEL_BAD_PAYLOAD_CRC = 3,
    TP_MODEL_UNSUPPORTED = 4,     /* format version, quantization or shape */
    TP_MODEL_TOO_LARGE = 5,       /* header + payload beyond the model region */
    TP_MODEL_NO_ROOM = 6,         /* buffers larger than the arena */
};

#define TP_MODEL_HEADER_SIZE 64
#define TP_MODEL_FORMAT_VERSION 1
#define TP_QUANT_INT8 1
#define TP_QUANT_INT4 2 /* two 4-bit values per byte, see QTensor */
#define TP_FLAG_SHARED_CLASSIFIER (1u << 0)

/* ----------------------------------------------------------------------------
 * Hyperparameters from the header, plus the two derived sizes every loop
 * needs. Plain ints: the largest product used as an index
 * (n_layers * seq_len * kv_dim) is bounded by the model region. */

typedef struct {
    int dim;         /* transformer width */
    int hidden_dim;  /* FFN width */
    int n_layers;
    int n_heads;     /* query heads */
    int n_kv_heads;  /* key/value heads (< n_heads: grouped-query attention) */
    int vocab_size;
    int seq_len;     /* longest context the buffers are sized for */
    int group_size;  /* quantization group length along a row */
    int shared_classifier; /* classifier is the embedding table */
    int quant;       /* TP_QUANT_INT8 or TP_QUANT_INT4: how every QTensor is stored */
    int head_size;   /* dim / n_heads */
    int kv_dim;      /* dim * n_kv_heads / n_heads */
} Config;

/* A quantized matrix (rows, cols): value j of row r is
 * w(r, j) * s[r*groups + j/group_size], groups = ceil(cols/group_size).
 * int8: w(r, j) = q[r*cols + j].
 * int4: rows of ceil(cols/2) bytes; w(r, j) is the low nibble (j even) or the
 * high nibble (j odd) of byte r*ceil(cols/2) + j/2, as 4-bit two's complement
 * (tp_int4_at). */
typedef struct {
    const int8_t *q; /* (rows, cols) row-major; int4: packed bytes, see above */
    const float *s;  /* (rows, groups) one scale per group */
} QTensor;

/* Value j of a packed int4 row, sign-extended without implementation-defined
 * shifts: (nibble ^ 8) - 8 maps 0..7 to 0..7 and 8..15 to -8..-1. */
static inline int32_t tp_int4_at(const uint8_t *row, int j) {
    uint32_t b = row[j >> 1];
    uint32_t nibble = (j & 1) ? (b >> 4) : (b & 15u);
    return (int32_t)(nibble ^ 8u) - 8;
}

/* All layers have the same shapes, so layer l's tensors sit layer_stride
 * bytes after layer 0's; tp_layer_tensor() applies the offset. */
typedef struct {
    QTensor wq; /* (dim, dim) */
    QTensor wk; /* (kv_dim, dim) */
    QTensor wv; /* (kv_dim, dim) */
    QTensor wo; /* (dim, dim) */
    QTensor w1; /* (hidden_dim, dim) */
    QTensor w2; /* (dim, hidden_dim) */
    QTensor w3; /* (hidden_dim, dim) */
} LayerWeights;

typedef struct {
    const float *rope;      /* (seq_len, head_size/2, 2) cos, sin pairs */
    const float *rms_att;   /* (n_layers, dim) */
    const float *rms_ffn;   /* (n_layers, dim) */
    const float *rms_final; /* (dim,) */
    QTensor embedding;      /* (vocab_size, dim) */
    LayerWeights layer0;    /* layer 0; see tp_layer_tensor() */
    size_t layer_stride;    /* bytes from one layer's tensors to the next */
    QTensor classifier;     /* (vocab_size, dim); equals embedding when shared */
} Weights;

typedef struct {
    int status;            /* TP_MODEL_* */
    const uint8_t *image;  /* start of the image (the model region) */
    uint32_t region_bytes; /* size of the model region */
    uint32_t model_bytes;  /* header + payload; 0 when the header is not trusted */
    uint32_t crc32;        /* CRC-32 of the first model_bytes bytes; 0 if none */
    Config config;         /* valid when status is OK or NO_ROOM */
    Weights weights;       /* valid when status is OK or NO_ROOM */
} Model;

/* Parses and validates the image at region (region_bytes long), computes the
 * image CRC for HELLO and resolves every section pointer. Returns m->status.
 * region must be 4-byte aligned (f32 sections are read in place). */
int tp_model_load(Model *m, const uint8_t *region, uint32_t region_bytes);

static inline QTensor tp_layer_tensor(const Weights *w, const QTensor *t0, int l) {
    size_t off = (size_t)l * w->layer_stride;
    QTensor t;
    t.q = (const int8_t *)((const uint8_t *)t0->q + off);
    t.s = (const float *)(const void *)((const uint8_t *)t0->s + off);
    return t;
}

#endif /* TP_MODEL_H */
