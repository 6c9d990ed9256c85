/* The int8 transformer forward pass: see transformer.h.
 *
 * Every float operation here is written out in the order of
 * docs/model-format.md, and the build uses -ffp-contract=off so the compiler
 * cannot fuse a multiply and an add into one differently rounded FMA. Sums
 * are plain left-to-right loops starting at 0.0f: reassociating them (as
 * -ffast-math would) changes the last bits and then, sooner or later, a
 * greedy token. */
#include "transformer.h"

#include <stddef.h>

#include "fixed.h"

/* ----------------------------------------------------------------------------
 * Scalar helpers. These builtins compile to single instructions (vsqrt.f32,
 * vabs.f32 on the M4F; sqrtss on x86) when built with -fno-math-errno, so the
 * compute path never calls libm. A core without a sqrt instruction would call
 * libm's sqrtf instead; its port builds with TP_SOFT_SQRT=1 and gets the
 * correctly rounded integer version (fsqrt.h). fabsf is a bit operation
 * everywhere. */

#if TP_SOFT_SQRT
#include "fsqrt.h"
static inline float tp_sqrtf(float x) { return tp_sqrtf_soft(x); }
#else
static inline float tp_sqrtf(float x) { return __builtin_sqrtf(x); }
#endif
static inline float tp_fabsf(float x) { return __builtin_fabsf(x); }

/* exp for -80 <= x <= 80, the body of tp_exp. Inlined into the loops that
 * call it (softmax, SiLU), so its constants stay in registers. */
static inline __attribute__((always_inline)) float exp_core(float x) {
    /* floor of a value in [-115, 116] without libm: truncate, then step down
     * for negative non-integers */
    float t = x * 1.44269504f + 0.5f;
    int n = (int)t;
    float fn = (float)n;
    if (fn > t) { /* |n| <= 116: fn - 1 is exactly (float)(n - 1) */
        n--;
        fn = fn - 1.0f;
    }
    /* r = x - n*ln2 in two parts (Cody-Waite), so r is accurate to f32 */
    float r = x - fn * 0.693145751953125f;
    r = r - fn * 1.428606765330187e-06f;
    float p = 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n straight from the exponent bits; n >= -115 keeps it a normal */
    union { uint32_t u; float f; } two_n;
    two_n.u = (uint32_t)(n + 127) << 23;
    return p * two_n.f;
}

static inline __attribute__((always_inline)) float exp_clamped(float x) {
    if (x < -80.0f) return 0.0f;
    if (x > 80.0f) x = 80.0f;
    return exp_core(x);
}

float tp_exp(float x) { return exp_clamped(x); }

/* exp(x - max) for every x and their sum. x - max <= 0 (or NaN), so the
 * upper clamp of tp_exp never applies and is left out. */
static inline __attribute__((always_inline)) float softmax_exps(float *x, int n, float max) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = x[i] - max;
        float e = d < -80.0f ? 0.0f : exp_core(d);
        x[i] = e;
        sum = sum + e;
    }
    return sum;
}

void tp_softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] > max) max = x[i];
    }
    float sum = softmax_exps(x, n, max);
    for (int i = 0; i < n; i++) {
        x[i] = x[i] / sum;
    }
}

#if !TP_FIXED_POINT && !TP_KERNELS_HELIUM /* Helium: core/forward_mve.c */
/* out may alias x: the sum of squares is taken before anything is written. */
static void rmsnorm(float *out, const float *x, const float *w, int n) {
    float ss = 0.0f;
    for (int j = 0; j < n; j++) {
        ss = ss + x[j] * x[j];
    }
    ss = ss / (float)n;
    ss = ss + 1e-5f;
    ss = 1.0f / tp_sqrtf(ss);
    for (int j = 0; j < n; j++) {
        out[j] = w[j] * (ss * x[j]);
    }
}

/* Symmetric per-group int8 quantization of x (n,) into qx. Rounding is
 * half away from zero via floor(|v| + 0.5), the same on every libc.
 *
 * The float operations are those of docs/model-format.md; the rest is
 * written for the M4's code generator: the zero-scale test hoisted out of
 * the element loop, the clamp as one USAT-able min, and the sign applied
 * from the sign bit of x (scale > 0, so v < 0 exactly when x's sign bit is
 * set and |v| > 0; for -0.0 and underflows r is 0 either way). */
static inline int quantize_one(float xi, float scale) {
    float v = xi / scale;
    int r = (int)(tp_fabsf(v) + 0.5f); /* floor: the operand is >= 0 */
#if defined(__ARM_FEATURE_SAT)
    r = (int)__builtin_arm_usat(r, 7); /* r >= 0: USAT is min(r, 127) in one */
#else
    r = r > 127 ? 127 : r;
#endif
    union { float f; int32_t i; } bits = {xi};
    int32_t m = bits.i >> 31; /* 0 or -1 */
    return (r ^ m) - m;
}

/* The bits of |x| shifted left by one (the sign bit dropped). */
static inline uint32_t abs2_bits(float x) {
    union { float f; uint32_t u; } b = {x};
    return b.u << 1;
}

static void quantize(QVector *qx, const float *x, int n, int group_size) {
    int8_t *q = qx->q;
    float *qs = qx->s;
    for (int start = 0; start < n; start += group_size) {
        int len = n - start < group_size ? n - start : group_size;
        const float *xg = x + start;
        int8_t *qg = q + start;
        /* the largest |x| on the bits: for floats that are not NaN, |a| > |b|
         * exactly when (bits(a) << 1) > (bits(b) << 1) as unsigned */
        uint32_t m2 = 0;
        int i = 0;
        for (; i + 4 <= len; i += 4) { /* four per pass: a quarter of the loop overhead */
            uint32_t a = abs2_bits(xg[i]), b = abs2_bits(xg[i + 1]);
            uint32_t c = abs2_bits(xg[i + 2]), d = abs2_bits(xg[i + 3]);
            m2 = a > m2 ? a : m2;
            m2 = b > m2 ? b : m2;
            m2 = c > m2 ? c : m2;
            m2 = d > m2 ? d : m2;
        }
        for (; i < len; i++) m2 = abs2_bits(xg[i]) > m2 ? abs2_bits(xg[i]) : m2;
        union { uint32_t u; float f; } amax_bits = {m2 >> 1};
        float amax = amax_bits.f;
        float scale = amax / 127.0f;
        *qs++ = scale;
        if (scale == 0.0f) {
            for (i = 0; i < len; i++) qg[i] = 0;
            continue;
        }
        for (i = 0; i + 2 <= len; i += 2) { /* two per pass: half the loop overhead */
            int a = quantize_one(xg[i], scale), b = quantize_one(xg[i + 1], scale);
            qg[i] = (int8_t)a;
            qg[i + 1] = (int8_t)b;
        }
        if (i < len) qg[i] = (int8_t)quantize_one(xg[i], scale);
    }
}

#endif /* !TP_FIXED_POINT && !TP_KERNELS_HELIUM */

/* ----------------------------------------------------------------------------
 * Run state */

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

uint64_t tp_kv_cache_bytes(const Config *c) {
    uint64_t slots = (uint64_t)c->n_layers * (uint64_t)c->seq_len;
    uint64_t one = tp_arena_round(slots * (uint64_t)c->kv_dim) +          /* int8 values */
                   tp_arena_round(4u * slots * (uint64_t)c->n_kv_heads); /* one scale per head */
    return 2u * one;
}

uint64_t tp_runstate_bytes(const Config *c) {
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim;
    uint64_t m = max_u64(dim, hidden);
    uint64_t gs = (uint64_t)c->group_size;
    uint64_t total = 0;
    total += 3u * tp_arena_round(4u * dim);                                      /* x, xb, xb2 */
    total += 2u * tp_arena_round(4u * hidden);                                   /* hb, hb2 */
    total += tp_arena_round(4u * dim);                                           /* q */
    total += tp_arena_round(4u * (uint64_t)c->n_heads * (uint64_t)c->seq_len);  /* att */
    total += tp_arena_round(4u * (uint64_t)c->vocab_size);                      /* logits */
    total += tp_arena_round(m);                                                  /* xq.q */
    total += tp_arena_round(4u * ((m + gs - 1) / gs));                           /* xq.scale */
    total += tp_arena_round(dim);                                                /* qq.q */
    total += tp_arena_round(4u * (uint64_t)c->n_heads);                         /* qq.scale */
    total += tp_kv_cache_bytes(c); /* key_cache, key_scale, value_cache, value_scale */
    return total;
}

int tp_transformer_init(Transformer *t, const Model *m, Arena *a) {
    const Config *c = &m->config;
    t->config = *c;
    t->weights = &m->weights;

    /* check the total first so a failure leaves the arena untouched */
    uint64_t need = tp_runstate_bytes(c);
    if (need > (uint64_t)(a->size - a->used)) return -1;

    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t mx = dim > hidden ? dim : hidden;
    size_t gs = (size_t)c->group_size;
    size_t slots = (size_t)c->n_layers * (size_t)c->seq_len;
    RunState *s = &t->state;
    /* this order is part of the contract with the host's fit check */
    s->x = tp_arena_alloc(a, 4 * dim);
    s->xb = tp_arena_alloc(a, 4 * dim);
    s->xb2 = tp_arena_alloc(a, 4 * dim);
    s->hb = tp_arena_alloc(a, 4 * hidden);
    s->hb2 = tp_arena_alloc(a, 4 * hidden);
    s->q = tp_arena_alloc(a, 4 * dim);
    s->att = tp_arena_alloc(a, 4 * (size_t)c->n_heads * (size_t)c->seq_len);
    s->logits = tp_arena_alloc(a, 4 * (size_t)c->vocab_size);
    s->xq.q = tp_arena_alloc(a, mx);
    s->xq.s = tp_arena_alloc(a, 4 * ((mx + gs - 1) / gs));
    s->qq.q = tp_arena_alloc(a, dim);
    s->qq.s = tp_arena_alloc(a, 4 * (size_t)c->n_heads);
    s->key_cache = tp_arena_alloc(a, slots * (size_t)c->kv_dim);
    s->key_scale = tp_arena_alloc(a, 4 * slots * (size_t)c->n_kv_heads);
    s->value_cache = tp_arena_alloc(a, slots * (size_t)c->kv_dim);
    s->value_scale = tp_arena_alloc(a, 4 * slots * (size_t)c->n_kv_heads);

    /* fixed point: |acc| <= B for a group dot, so with mantissa products
     * below 2^30 (matmul) and 2^24 (q.k) these shifts keep acc * cm in int32 */
    uint32_t wmax = c->quant == TP_QUANT_INT4 ? 8u : 128u; /* readers accept -128 and -8 */
    uint32_t b_mm = (uint32_t)c->group_size * wmax * 127u;
    uint32_t b_att = (uint32_t)c->head_size * 127u * 127u;
    t->mm_shift = 32 - __builtin_clz(b_mm) - 1;
    t->att_shift = 32 - __builtin_clz(b_att) - 7;
    if (t->att_shift < 0) t->att_shift = 0;
    t->q_den = 0;
#if TP_FIXED_POINT
    t->q_den = tp_fx_query_den(c->head_size);
#endif
    return 0;
}

/* ----------------------------------------------------------------------------
 * Attention of one query head over positions 0..n-1 of its kv head: k and v
 * rows kstride bytes apart, their scales sstride floats apart. */

#if TP_KERNELS_DSP
#include <arm_acle.h>

static inline uint32_t att_load32(const void *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4); /* one LDR: the M4 allows it unaligned */
    return v;
}

/* SXTB16 of v rotated by 8: bytes 1 and 3 (GCC 12 does not fold the rotate). */
static inline uint32_t att_sxtb16_ror8(uint32_t v) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* The exact int32 q.k for head_size 8, the q words pre-split into int16
 * pairs (bytes 0 2 and 1 3): two SMLADs per key word. */
static inline int32_t dot8_dsp(const uint32_t *qw, const int8_t *k) {
    uint32_t u = att_load32(k), v = att_load32(k + 4);
    int32_t d = __smuad((int16x2_t)__sxtb16((int8x4_t)u), (int16x2_t)qw[0]);
    d = __smlad((int16x2_t)att_sxtb16_ror8(u), (int16x2_t)qw[1], d);
    d = __smlad((int16x2_t)__sxtb16((int8x4_t)v), (int16x2_t)qw[2], d);
    d = __smlad((int16x2_t)att_sxtb16_ror8(v), (int16x2_t)qw[3], d);
    return d;
}
#endif

/* att[t] = (float(q.k_t) * qscale) * kscale_t; returns the largest, found
 * as tp_softmax finds it (first element, then strictly greater). */
static inline __attribute__((always_inline)) float attention_scores(
    float *att, const int8_t *q, const int8_t *k, const float *ks, int n, int kstride,
    int sstride, int head_size, float qscale) {
#if TP_KERNELS_DSP
    if (head_size == 8) {
        uint32_t u = att_load32(q), v = att_load32(q + 4);
        uint32_t qw[4] = {(uint32_t)__sxtb16((int8x4_t)u), att_sxtb16_ror8(u),
                          (uint32_t)__sxtb16((int8x4_t)v), att_sxtb16_ror8(v)};
        float max = 0.0f;
        for (int t = 0; t < n; t++, k += kstride, ks += sstride) {
            float a = ((float)dot8_dsp(qw, k) * qscale) * *ks;
            att[t] = a;
            if (t == 0 || a > max) max = a;
        }
        return max;
    }
#endif
    float max = 0.0f;
    for (int t = 0; t < n; t++, k += kstride, ks += sstride) {
        int32_t dot = 0;
        for (int i = 0; i < head_size; i++) dot += (int32_t)q[i] * (int32_t)k[i];
        float a = ((float)dot * qscale) * *ks;
        att[t] = a;
        if (t == 0 || a > max) max = a;
    }
    return max;
}

/* out[i] = sum over t in order of (e_t / sum * vscale_t) * v_t[i], from
 * 0.0f: the softmax weight e_t / sum, times the value scale, per position,
 * then one product and sum per element. Eight elements at a time in
 * registers (head_size 8 is one pass), the rest one by one. */
static inline __attribute__((always_inline)) void attention_values(
    float *out, const float *e, float sum, const int8_t *v, const float *vs, int n,
    int kstride, int sstride, int head_size) {
    int i0 = 0;
    for (; i0 + 8 <= head_size; i0 += 8) {
        float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f, o4 = 0.0f, o5 = 0.0f, o6 = 0.0f, o7 = 0.0f;
        const int8_t *vt = v + i0;
        const float *st = vs;
        for (int t = 0; t < n; t++, vt += kstride, st += sstride) {
            float a = (e[t] / sum) * *st;
            o0 = o0 + a * (float)vt[0];
            o1 = o1 + a * (float)vt[1];
            o2 = o2 + a * (float)vt[2];
            o3 = o3 + a * (float)vt[3];
            o4 = o4 + a * (float)vt[4];
            o5 = o5 + a * (float)vt[5];
            o6 = o6 + a * (float)vt[6];
            o7 = o7 + a * (float)vt[7];
        }
        float *o = out + i0;
        o[0] = o0, o[1] = o1, o[2] = o2, o[3] = o3, o[4] = o4, o[5] = o5, o[6] = o6, o[7] = o7;
    }
    for (; i0 < head_size; i0++) {
        float o = 0.0f;
        const int8_t *vt = v + i0;
        const float *st = vs;
        for (int t = 0; t < n; t++, vt += kstride, st += sstride) {
            float a = (e[t] / sum) * *st;
            o = o + a * (float)*vt;
        }
        out[i0] = o;
    }
}

/* attention_values for two query heads of the same kv head (grouped-query
 * attention), head_size a multiple of 8: each value is converted to float
 * once for both. Per head the operations and their order are those above. */
static inline __attribute__((always_inline)) void attention_values2(
    float *out_a, float *out_b, const float *e_a, const float *e_b, float sum_a, float sum_b,
    const int8_t *v, const float *vs, int n, int kstride, int sstride, int head_size) {
    for (int i0 = 0; i0 < head_size; i0 += 8) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
        float b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f, b4 = 0.0f, b5 = 0.0f, b6 = 0.0f, b7 = 0.0f;
        const int8_t *vt = v + i0;
        const float *st = vs;
        for (int t = 0; t < n; t++, vt += kstride, st += sstride) {
            float wa = (e_a[t] / sum_a) * *st, wb = (e_b[t] / sum_b) * *st;
            float f;
            f = (float)vt[0], a0 = a0 + wa * f, b0 = b0 + wb * f;
            f = (float)vt[1], a1 = a1 + wa * f, b1 = b1 + wb * f;
            f = (float)vt[2], a2 = a2 + wa * f, b2 = b2 + wb * f;
            f = (float)vt[3], a3 = a3 + wa * f, b3 = b3 + wb * f;
            f = (float)vt[4], a4 = a4 + wa * f, b4 = b4 + wb * f;
            f = (float)vt[5], a5 = a5 + wa * f, b5 = b5 + wb * f;
            f = (float)vt[6], a6 = a6 + wa * f, b6 = b6 + wb * f;
            f = (float)vt[7], a7 = a7 + wa * f, b7 = b7 + wb * f;
        }
        float *oa = out_a + i0, *ob = out_b + i0;
        oa[0] = a0, oa[1] = a1, oa[2] = a2, oa[3] = a3, oa[4] = a4, oa[5] = a5, oa[6] = a6, oa[7] = a7;
        ob[0] = b0, ob[1] = b1, ob[2] = b2, ob[3] = b3, ob[4] = b4, ob[5] = b5, ob[6] = b6, ob[7] = b7;
    }
}

/* ----------------------------------------------------------------------------
 * Forward pass, f32 (the fixed-point one is in forward_fx.c) */

#if !TP_FIXED_POINT && !TP_KERNELS_HELIUM /* Helium: core/forward_mve.c */

/* The kernel for the model's weight format (int8 or int4). */
static void matmul(const Config *c, float *out, const QVector *x, const QTensor *w, int rows,
                   int cols, int group_size) {
    if (c->quant == TP_QUANT_INT4) {
        tp_matmul_q4(out, x, w, rows, cols, group_size);
    } else {
        tp_matmul_q8(out, x, w, rows, cols, group_size);
    }
}

float *tp_forward(Transformer *t, int token, int pos, int want_logits) {
    const Config *c = &t->config;
    const Weights *w = t->weights;
    RunState *s = &t->state;
    int dim = c->dim, hidden = c->hidden_dim, kv_dim = c->kv_dim;
    int head_size = c->head_size, gs = c->group_size;
    int kv_mul = c->n_heads / c->n_kv_heads; /* query heads per kv head */
    int groups_dim = (dim + gs - 1) / gs;
    float *x = s->x;

    /* token embedding, dequantized */
    const float *es = w->embedding.s + (size_t)token * (size_t)groups_dim;
    if (c->quant == TP_QUANT_INT4) {
        const uint8_t *eq4 = (const uint8_t *)w->embedding.q + (size_t)token * (size_t)((dim + 1) / 2);
        for (int i = 0; i < dim; i++) {
            x[i] = (float)tp_int4_at(eq4, i) * es[i / gs];
        }
    } else {
        const int8_t *eq = w->embedding.q + (size_t)token * (size_t)dim;
        for (int i = 0; i < dim; i++) {
            x[i] = (float)eq[i] * es[i / gs];
        }
    }

    /* (cos, sin) pairs for this position, shared by every head */
    const float *rope = w->rope + (size_t)pos * (size_t)head_size;
    float att_div = tp_sqrtf((float)head_size);

    for (int l = 0; l < c->n_layers; l++) {
        QTensor wq = tp_layer_tensor(w, &w->layer0.wq, l);
        QTensor wk = tp_layer_tensor(w, &w->layer0.wk, l);
        QTensor wv = tp_layer_tensor(w, &w->layer0.wv, l);
        QTensor wo = tp_layer_tensor(w, &w->layer0.wo, l);
        QTensor w1 = tp_layer_tensor(w, &w->layer0.w1, l);
        QTensor w2 = tp_layer_tensor(w, &w->layer0.w2, l);
        QTensor w3 = tp_layer_tensor(w, &w->layer0.w3, l);

        /* attention rmsnorm */
        rmsnorm(s->xb, x, w->rms_att + (size_t)l * (size_t)dim, dim);

        /* q and k in f32 (k in xb2, free until the output projection) */
        size_t slot = (size_t)l * (size_t)c->seq_len + (size_t)pos;
        float *k = s->xb2;
        quantize(&s->xq, s->xb, dim, gs);
        matmul(c, s->q, &s->xq, &wq, dim, dim, gs);
        matmul(c, k, &s->xq, &wk, kv_dim, dim, gs);

        /* RoPE: rotate each (even, odd) pair of every head by its angle */
        for (int i = 0; i < dim; i += 2) {
            int j = (i % head_size) / 2;
            float fcr = rope[2 * j];
            float fci = rope[2 * j + 1];
            float q0 = s->q[i], q1 = s->q[i + 1];
            s->q[i] = q0 * fcr - q1 * fci;
            s->q[i + 1] = q0 * fci + q1 * fcr;
            if (i < kv_dim) {
                float k0 = k[i], k1 = k[i + 1];
                k[i] = k0 * fcr - k1 * fci;
                k[i + 1] = k0 * fci + k1 * fcr;
            }
        }

        /* int8 KV cache: each head vector of k and v is one quantization
         * group (head_size long) with its own scale per (position, kv head);
         * q likewise per query head, so q.k is an exact integer dot. v goes
         * through xb2 too, once k is stored. */
        QVector kq = {s->key_cache + slot * (size_t)kv_dim, s->key_scale + slot * (size_t)c->n_kv_heads};
        QVector vq = {s->value_cache + slot * (size_t)kv_dim,
                      s->value_scale + slot * (size_t)c->n_kv_heads};
        quantize(&kq, k, kv_dim, head_size);
        matmul(c, s->xb2, &s->xq, &wv, kv_dim, dim, gs);
        quantize(&vq, s->xb2, kv_dim, head_size);
        quantize(&s->qq, s->q, dim, head_size);

        /* multi-head attention over positions 0..pos; with an even number of
         * query heads per kv head and head_size a multiple of 8, two query
         * heads at a time share the reading of their values */
        size_t lslot = (size_t)l * (size_t)c->seq_len;
        int n_pos = pos + 1;
        int step = kv_mul % 2 == 0 && head_size % 8 == 0 ? 2 : 1;
        for (int h = 0; h < c->n_heads; h += step) {
            int kh = h / kv_mul;
            size_t first = lslot * (size_t)kv_dim + (size_t)kh * (size_t)head_size;
            size_t sfirst = lslot * (size_t)c->n_kv_heads + (size_t)kh;
            float sums[2];
            for (int j = 0; j < step; j++) {
                /* 1/sqrt(head_size) folded into the query's scale, once per head */
                float qscale = s->qq.s[h + j] / att_div;
                float *att = s->att + (size_t)(h + j) * (size_t)c->seq_len;
                float max = attention_scores(att, s->qq.q + (h + j) * head_size, s->key_cache + first,
                                             s->key_scale + sfirst, n_pos, kv_dim, c->n_kv_heads,
                                             head_size, qscale);
                /* softmax, its division by the sum done where each weight is used */
                sums[j] = softmax_exps(att, n_pos, max);
            }
            float *att = s->att + (size_t)h * (size_t)c->seq_len;
            if (step == 2) {
                attention_values2(s->xb + h * head_size, s->xb + (h + 1) * head_size, att,
                                  att + c->seq_len, sums[0], sums[1], s->value_cache + first,
                                  s->value_scale + sfirst, n_pos, kv_dim, c->n_kv_heads, head_size);
            } else {
                attention_values(s->xb + h * head_size, att, sums[0], s->value_cache + first,
                                 s->value_scale + sfirst, n_pos, kv_dim, c->n_kv_heads, head_size);
            }
        }

        /* output projection and residual */
        quantize(&s->xq, s->xb, dim, gs);
        matmul(c, s->xb2, &s->xq, &wo, dim, dim, gs);
        for (int i = 0; i < dim; i++) {
            x[i] = x[i] + s->xb2[i];
        }

        /* FFN: w2(silu(w1(x)) * w3(x)) */
        rmsnorm(s->xb, x, w->rms_ffn + (size_t)l * (size_t)dim, dim);
        quantize(&s->xq, s->xb, dim, gs);
        matmul(c, s->hb, &s->xq, &w1, hidden, dim, gs);
        matmul(c, s->hb2, &s->xq, &w3, hidden, dim, gs);
        for (int i = 0; i < hidden; i++) {
            float val = s->hb[i];
            val = val / (1.0f + exp_clamped(-val));
            s->hb[i] = val * s->hb2[i];
        }
        quantize(&s->xq, s->hb, hidden, gs);
        matmul(c, s->xb, &s->xq, &w2, dim, hidden, gs);
        for (int i = 0; i < dim; i++) {
            x[i] = x[i] + s->xb[i];
        }
    }

    if (!want_logits) return NULL;

    rmsnorm(x, x, w->rms_final, dim);
    quantize(&s->xq, x, dim, gs);
    matmul(c, s->logits, &s->xq, &w->classifier, c->vocab_size, dim, gs);
    return s->logits;
}
#endif /* !TP_FIXED_POINT */
