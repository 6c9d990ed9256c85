/* The int8 transformer forward pass (llama2.c architecture: RMSNorm, RoPE,
 * grouped-query attention, SwiGLU), with the exact f32 arithmetic of
 * docs/model-format.md "Forward pass arithmetic", so greedy tokens agree with
 * the host reference bit for bit. */
#ifndef TP_TRANSFORMER_H
#define TP_TRANSFORMER_H

#include <stdint.h>

#include "arena.h"
#include "matmul.h"
#include "model.h"

/* ----------------------------------------------------------------------------
 * Activations and KV cache, all taken from the arena in the order of the
 * docs table (the host predicts arena_used_bytes from that order). */

/* The arithmetic is chosen at build time: f32 (cores with an FPU) or, with
 * TP_FIXED_POINT=1, integers only (fixed.h). The buffers have the same sizes
 * either way (4-byte activations and scales), so the arena is the same. */
#if TP_FIXED_POINT
typedef int32_t tp_act;    /* Q16.16 */
typedef QVectorFx tp_qvec;
typedef int32_t tp_scale;  /* packed (base, mantissa), fixed.h */
#else
typedef float tp_act;
typedef QVector tp_qvec;
typedef float tp_scale;
#endif

typedef struct {
    tp_act *x;           /* (dim,) activation at the current position */
    tp_act *xb;          /* (dim,) inside a residual branch */
    tp_act *xb2;         /* (dim,) branch output before the residual add */
    tp_act *hb;          /* (hidden_dim,) FFN gate, then SwiGLU output */
    tp_act *hb2;         /* (hidden_dim,) FFN up projection */
    tp_act *q;           /* (dim,) query */
    tp_act *att;         /* (n_heads, seq_len) scores, then attention weights */
    float *logits;       /* (vocab_size,) f32 in both arithmetics */
    tp_qvec xq;          /* (max(dim, hidden_dim),) quantized matmul input */
    tp_qvec qq;          /* (dim,) query quantized per head (group = head_size) */
    int8_t *key_cache;   /* (n_layers, seq_len, kv_dim) k after RoPE, int8 */
    tp_scale *key_scale; /* (n_layers, seq_len, n_kv_heads) one scale per head vector */
    int8_t *value_cache; /* (n_layers, seq_len, kv_dim) int8 */
    tp_scale *value_scale; /* (n_layers, seq_len, n_kv_heads) */
} RunState;

typedef struct {
    Config config;          /* copied from the model */
    const Weights *weights; /* points into the model image */
    RunState state;
    /* fixed point only: shifts that keep every product in int32 (fixed.h) */
    int mm_shift;           /* matmul: weight x activation scale mantissas */
    int att_shift;          /* q.k: query x key scale mantissas */
    uint32_t q_den;         /* 127 * sqrt(head_size) * 256, for the query scales */
} Transformer;

/* Arena bytes tp_transformer_init takes for this config (sum of the docs
 * table, each buffer rounded up to TP_ARENA_ALIGN). 64 bits: a garbage or
 * oversized config must not wrap around to a small number. */
uint64_t tp_runstate_bytes(const Config *c);

/* Bytes of key_cache, key_scale, value_cache, value_scale (MEM.kv_cache_bytes). */
uint64_t tp_kv_cache_bytes(const Config *c);

/* Allocates the run state from the arena. Returns 0, or -1 when the arena is
 * too small (model status TP_MODEL_NO_ROOM); the arena is then unchanged. */
int tp_transformer_init(Transformer *t, const Model *m, Arena *a);

/* Runs token at position pos (0 <= pos < seq_len) through the network and
 * updates the KV cache. Returns the logits, or NULL when want_logits is 0:
 * prompt tokens other than the last skip the classifier, the largest matmul
 * of a small model. */
float *tp_forward(Transformer *t, int token, int pos, int want_logits);

/* ----------------------------------------------------------------------------
 * Arithmetic shared with the sampler. */

/* exp without libm, exactly as specified so host and board agree. */
float tp_exp(float x);

/* In-place softmax over x[0..n-1]. */
void tp_softmax(float *x, int n);

#endif /* TP_TRANSFORMER_H */
