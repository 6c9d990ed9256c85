/* TPMD model image reader: see model.h and docs/model-format.md. */
#include "model.h"

#include "protocol.h" /* tp_crc32, tp_rd16, tp_rd32 */

/* ----------------------------------------------------------------------------
 * Section layout. Sizes are computed in 64 bits: the header CRC only proves
 * the header is intact, not that its numbers are sane, and a 32-bit product of
 * garbage dimensions could wrap around and pass the size check. */

static uint64_t align4(uint64_t n) { return (n + 3u) & ~(uint64_t)3u; }

static uint64_t groups_of(uint64_t cols, uint64_t group_size) {
    return (cols + group_size - 1) / group_size;
}

/* Layout cursor: offsets run in 64 bits and a pointer is only formed for an
 * offset inside the image, so garbage sizes never produce a wild pointer. */
typedef struct {
    const uint8_t *image;
    uint64_t off;   /* next section start */
    uint64_t limit; /* header + payload size */
} Cursor;

static const void *at(const Cursor *c, uint64_t off) {
    return off <= c->limit ? (const void *)(c->image + (size_t)off) : (const void *)0;
}

/* Places a quantized tensor (rows, cols) and advances the cursor. */
static QTensor place_qtensor(Cursor *c, uint64_t rows, uint64_t cols, uint64_t group_size,
                             int quant) {
    QTensor t;
    t.q = (const int8_t *)at(c, c->off);
    uint64_t row_bytes = quant == TP_QUANT_INT4 ? (cols + 1u) / 2u : cols;
    c->off += align4(rows * row_bytes);
    t.s = (const float *)at(c, c->off);
    c->off = align4(c->off + 4u * rows * groups_of(cols, group_size));
    return t;
}

static const float *place_f32(Cursor *c, uint64_t count) {
    const float *p = (const float *)at(c, c->off);
    c->off = align4(c->off + 4u * count);
    return p;
}

/* ----------------------------------------------------------------------------
 * Header checks, then the image CRC (HELLO), payload CRC and layout. */

static int check_shape(const uint8_t *h, Config *c) {
    uint32_t dim = tp_rd32(h + 12), hidden = tp_rd32(h + 16), layers = tp_rd32(h + 20);
    uint32_t heads = tp_rd32(h + 24), kv_heads = tp_rd32(h + 28), vocab = tp_rd32(h + 32);
    uint32_t seq_len = tp_rd32(h + 36), group = tp_rd16(h + 10);

    /* the 1 << 24 cap keeps every int product below from overflowing before
     * the layout check compares the sizes with the payload */
    const uint32_t cap = 1u << 24;
    if (dim == 0 || hidden == 0 || layers == 0 || heads == 0 || kv_heads == 0 ||
        vocab == 0 || seq_len == 0 || group == 0)
        return 0;
    if (dim >= cap || hidden >= cap || layers >= cap || heads >= cap || seq_len >= cap)
        return 0;
    if (dim % heads != 0 || heads % kv_heads != 0 || (dim / heads) % 2 != 0) return 0;
    if (vocab > 65535) return 0;

    c->dim = (int)dim;
    c->hidden_dim = (int)hidden;
    c->n_layers = (int)layers;
    c->n_heads = (int)heads;
    c->n_kv_heads = (int)kv_heads;
    c->vocab_size = (int)vocab;
    c->seq_len = (int)seq_len;
    c->group_size = (int)group;
    c->shared_classifier = (tp_rd32(h + 40) & TP_FLAG_SHARED_CLASSIFIER) != 0;
    c->quant = h[8];
    c->head_size = (int)(dim / heads);
    c->kv_dim = (int)(dim / heads * kv_heads);
    return 1;
}

/* Resolves every section; returns 0 when the weights do not fit in the image
 * (the tokenizer block, if any, follows them and is not checked). */
static int place_sections(const uint8_t *image, uint64_t total, const Config *c, Weights *w) {
    Cursor cur = {image, TP_MODEL_HEADER_SIZE, total};
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim;
    uint64_t kv_dim = (uint64_t)c->kv_dim, vocab = (uint64_t)c->vocab_size;
    uint64_t layers = (uint64_t)c->n_layers, gs = (uint64_t)c->group_size;
    int qt = c->quant;

    w->rope = place_f32(&cur, (uint64_t)c->seq_len * (uint64_t)c->head_size);
    w->rms_att = place_f32(&cur, layers * dim);
    w->rms_ffn = place_f32(&cur, layers * dim);
    w->rms_final = place_f32(&cur, dim);
    w->embedding = place_qtensor(&cur, vocab, dim, gs, qt);

    uint64_t layer_start = cur.off;
    LayerWeights *l0 = &w->layer0;
    l0->wq = place_qtensor(&cur, dim, dim, gs, qt);
    l0->wk = place_qtensor(&cur, kv_dim, dim, gs, qt);
    l0->wv = place_qtensor(&cur, kv_dim, dim, gs, qt);
    l0->wo = place_qtensor(&cur, dim, dim, gs, qt);
    l0->w1 = place_qtensor(&cur, hidden, dim, gs, qt);
    l0->w2 = place_qtensor(&cur, dim, hidden, gs, qt);
    l0->w3 = place_qtensor(&cur, hidden, dim, gs, qt);
    if (cur.off > total) return 0; /* also bounds the multiplication below */
    uint64_t stride = cur.off - layer_start;
    w->layer_stride = (size_t)stride;
    cur.off = layer_start + layers * stride;

    if (c->shared_classifier) {
        w->classifier = w->embedding;
    } else {
        w->classifier = place_qtensor(&cur, vocab, dim, gs, qt);
    }
    return cur.off <= total;
}

int tp_model_load(Model *m, const uint8_t *region, uint32_t region_bytes) {
    m->status = TP_MODEL_NONE;
    m->image = region;
    m->region_bytes = region_bytes;
    m->model_bytes = 0;
    m->crc32 = 0;

    const uint8_t *h = region;
    if (region_bytes < TP_MODEL_HEADER_SIZE || h[0] != 'T' || h[1] != 'P' || h[2] != 'M' ||
        h[3] != 'D')
        return m->status = TP_MODEL_NONE;
    if (tp_crc32(0, h, 60) != tp_rd32(h + 60)) return m->status = TP_MODEL_BAD_HEADER_CRC;

    /* From here the header is trusted: report its size, and its CRC whenever
     * the image lies inside the region, so the host can name the image even
     * when the board cannot run it. */
    uint32_t payload_size = tp_rd32(h + 44);
    uint64_t total = (uint64_t)TP_MODEL_HEADER_SIZE + payload_size;
    m->model_bytes = total > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)total;
    if (total <= region_bytes) m->crc32 = tp_crc32(0, h, (size_t)total);

    if (tp_rd16(h + 4) != TP_MODEL_FORMAT_VERSION || tp_rd16(h + 6) != TP_MODEL_HEADER_SIZE ||
        (h[8] != TP_QUANT_INT8 && h[8] != TP_QUANT_INT4))
        return m->status = TP_MODEL_UNSUPPORTED;
    if (total > region_bytes) return m->status = TP_MODEL_TOO_LARGE;
    if (tp_crc32(0, h + TP_MODEL_HEADER_SIZE, payload_size) != tp_rd32(h + 48))
        return m->status = TP_MODEL_BAD_PAYLOAD_CRC;

    /* Shapes the reader cannot handle, or weights that do not fit in the
     * payload, make the image unusable: "unsupported" is the closest status. */
    if (!check_shape(h, &m->config)) return m->status = TP_MODEL_UNSUPPORTED;
    if (!place_sections(h, total, &m->config, &m->weights)) return m->status = TP_MODEL_UNSUPPORTED;
    return m->status = TP_MODEL_OK;
}
