/* libFuzzer target: the TPMD model-image parser (core/model.c) and what the
 * firmware builds on its answer.
 *
 * Each input is a model region, copied into a heap block of exactly its size
 * so AddressSanitizer sees a read one byte past it. It is loaded twice: as
 * given (magic, header CRC and payload CRC rejections), and with both CRCs
 * patched to match, so mutations reach the shape checks and the section
 * layout instead of dying at a checksum. When the parser says OK, the harness
 * checks the parser's promise, that every section the forward pass reads lies
 * inside the image with its f32 arrays 4-byte aligned, by touching the first
 * and last byte of each, then sizes the run state in an arena of exactly
 * the size the firmware asks for and runs two forward passes (positions 0
 * and 1) over it: the kernels' reads of every accepted shape are checked.
 * Before that the f32 sections (scales, norms, RoPE) are set to tame values,
 * so the pass fuzzes shapes, not the numerics of garbage weights (NaN
 * activations would only exercise the float-to-int rounding of NaN). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "model.h"
#include "protocol.h"
#include "transformer.h"

/* Arenas above this are skipped: the board would answer NO_ROOM anyway. */
#define FUZZ_ARENA_MAX (4u << 20)

static volatile uint8_t sink;

static void touch(const Model *m, const void *p, uint64_t bytes, int f32) {
    const uint8_t *b = (const uint8_t *)p;
    if (b < m->image || (uint64_t)(b - m->image) + bytes > m->model_bytes) abort();
    if (f32 && ((uintptr_t)b & 3u) != 0) abort();
    if (bytes == 0) return;
    sink = b[0];
    sink = b[bytes - 1];
}

static void touch_qtensor(const Model *m, QTensor t, uint64_t rows, uint64_t cols) {
    const Config *c = &m->config;
    uint64_t row_bytes = c->quant == TP_QUANT_INT4 ? (cols + 1) / 2 : cols;
    uint64_t groups = (cols + (uint64_t)c->group_size - 1) / (uint64_t)c->group_size;
    touch(m, t.q, rows * row_bytes, 0);
    touch(m, t.s, 4 * rows * groups, 1);
}

/* Every quantized tensor with its rows and columns: the one walk check_sections and tame share. */
static void each_qtensor(const Model *m, void (*visit)(const Model *, QTensor, uint64_t, uint64_t)) {
    const Config *c = &m->config;
    const Weights *w = &m->weights;
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim;
    uint64_t kv = (uint64_t)c->kv_dim, vocab = (uint64_t)c->vocab_size;
    visit(m, w->embedding, vocab, dim);
    visit(m, w->classifier, vocab, dim);
    const LayerWeights *l0 = &w->layer0;
    for (int l = 0; l < c->n_layers; l++) {
        visit(m, tp_layer_tensor(w, &l0->wq, l), dim, dim);
        visit(m, tp_layer_tensor(w, &l0->wk, l), kv, dim);
        visit(m, tp_layer_tensor(w, &l0->wv, l), kv, dim);
        visit(m, tp_layer_tensor(w, &l0->wo, l), dim, dim);
        visit(m, tp_layer_tensor(w, &l0->w1, l), hidden, dim);
        visit(m, tp_layer_tensor(w, &l0->w2, l), dim, hidden);
        visit(m, tp_layer_tensor(w, &l0->w3, l), hidden, dim);
    }
}

static void check_sections(const Model *m) {
    const Config *c = &m->config;
    const Weights *w = &m->weights;
    uint64_t dim = (uint64_t)c->dim, layers = (uint64_t)c->n_layers;
    touch(m, w->rope, 4 * (uint64_t)c->seq_len * (uint64_t)c->head_size, 1);
    touch(m, w->rms_att, 4 * layers * dim, 1);
    touch(m, w->rms_ffn, 4 * layers * dim, 1);
    touch(m, w->rms_final, 4 * dim, 1);
    each_qtensor(m, touch_qtensor);
}

static void fill(const Model *m, const float *p, uint64_t count, float value) {
    float *w = (float *)(uintptr_t)p; /* the harness owns the image's heap copy */
    if ((const uint8_t *)p < m->image) abort();
    for (uint64_t i = 0; i < count; i++) w[i] = value;
}

static void fill_scales(const Model *m, QTensor t, uint64_t rows, uint64_t cols) {
    uint64_t gs = (uint64_t)m->config.group_size;
    fill(m, t.s, rows * ((cols + gs - 1) / gs), 1.0f / 64.0f);
}

/* Finite, moderate f32 sections: a RoPE of cos 1, sin 0, unit norm gains,
 * scales of 1/64. The int8/int4 weights stay as the input has them. */
static void tame(const Model *m) {
    const Config *c = &m->config;
    const Weights *w = &m->weights;
    uint64_t dim = (uint64_t)c->dim, layers = (uint64_t)c->n_layers;
    uint64_t rope_pairs = (uint64_t)c->seq_len * (uint64_t)c->head_size / 2;
    for (uint64_t i = 0; i < rope_pairs; i++) {
        fill(m, w->rope + 2 * i, 1, 1.0f);
        fill(m, w->rope + 2 * i + 1, 1, 0.0f);
    }
    fill(m, w->rms_att, layers * dim, 1.0f);
    fill(m, w->rms_ffn, layers * dim, 1.0f);
    fill(m, w->rms_final, dim, 1.0f);
    each_qtensor(m, fill_scales);
}

static void load_and_use(uint8_t *image, uint32_t size) {
    Model m;
    if (tp_model_load(&m, image, size) != TP_MODEL_OK) return;
    if (m.model_bytes > size) abort(); /* OK promises the image lies in the region */
    check_sections(&m);

    uint64_t need = tp_runstate_bytes(&m.config);
    if (need > FUZZ_ARENA_MAX) return;
    void *buf = malloc(need ? (size_t)need : 1);
    if (buf == NULL) abort();
    Arena arena;
    tp_arena_init(&arena, buf, (size_t)need);
    Transformer t;
    if (tp_transformer_init(&t, &m, &arena) != 0) abort(); /* exactly the size it asked for */
    tame(&m);
    tp_forward(&t, m.config.vocab_size - 1, 0, 1);
    if (m.config.seq_len > 1) tp_forward(&t, 0, 1, 1);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0xFFFFFFFFu) return 0;
    uint8_t *image = malloc(size ? size : 1); /* malloc's alignment: the region is 4-byte aligned */
    if (image == NULL) abort();
    memcpy(image, data, size);
    load_and_use(image, (uint32_t)size);

    if (size >= TP_MODEL_HEADER_SIZE) {
        uint32_t payload = tp_rd32(image + 44);
        if (payload <= size - TP_MODEL_HEADER_SIZE) {
            tp_wr32(image + 48, tp_crc32(0, image + TP_MODEL_HEADER_SIZE, payload));
        }
        tp_wr32(image + 60, tp_crc32(0, image, 60));
        load_and_use(image, (uint32_t)size);
    }
    free(image);
    return 0;
}
