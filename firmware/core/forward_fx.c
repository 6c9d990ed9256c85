/* The forward pass in fixed point (TP_FIXED_POINT=1): the same network as
 * the f32 one in transformer.c, every operation an integer one, as specified
 * in docs/model-format.md "Fixed-point arithmetic" and mirrored bit for bit
 * by profiler/models/fixed.py. Activations are int32 Q16.16; model scales
 * are read from their f32 bit patterns (fixed.h), so on a core without an
 * FPU no soft-float routine runs. Only the logits leave as f32, converted
 * exactly from Q16 for the sampler and the LOGITS frames. */
#include "transformer.h"

#if TP_FIXED_POINT
#include "fixed.h"

/* The kernel for the model's weight format; base folded into xq's scales. */
static void matmul(const Transformer *t, int32_t *out, const QVectorFx *x, const QTensor *w,
                   int rows, int cols) {
    int gs = t->config.group_size;
    if (t->config.quant == TP_QUANT_INT4) {
        tp_matmul_q4_fx(out, x, w, rows, cols, gs, t->mm_shift);
    } else {
        tp_matmul_q8_fx(out, x, w, rows, cols, gs, t->mm_shift);
    }
}

/* Quantize a Q16 vector as a matmul input: with the weight scale's exponent
 * e and the 2^-16 of Q16, a group's product shifts right by 144 - shift + k - e. */
static void quantize_mm(const Transformer *t, QVectorFx *xq, const int32_t *x, int n) {
    tp_fx_quantize(xq->q, xq->s, x, n, t->config.group_size, 127u, 144 - t->mm_shift);
}

/* q.k over eight int8 pairs */
static inline int32_t dot8(const int8_t *a, const int8_t *b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3] + a[4] * b[4] + a[5] * b[5] +
           a[6] * b[6] + a[7] * b[7];
}

/* The rotation of one pair by the f32 (cos, sin) read as Q30. */
static inline void rotate(int32_t *v, int32_t c30, int32_t s30) {
    int64_t a = v[0], b = v[1];
    v[0] = (int32_t)((a * c30 - b * s30) >> 30);
    v[1] = (int32_t)((a * s30 + b * c30) >> 30);
}

float *tp_forward(Transformer *t, int token, int pos, int want_logits) {
    const Config *c = &t->config;
    const Weights *w = t->weights;
    RunState *s = &t->state;
    int dim = c->dim, hidden = c->hidden_dim, kv_dim = c->kv_dim;
    int head_size = c->head_size, gs = c->group_size, n_kv = c->n_kv_heads;
    int kv_mul = c->n_heads / c->n_kv_heads; /* query heads per kv head */
    int groups_dim = (dim + gs - 1) / gs;
    int32_t *x = s->x;

    /* token embedding: integer times the group's f32 scale, to Q16 */
    const float *es = w->embedding.s + (size_t)token * (size_t)groups_dim;
    if (c->quant == TP_QUANT_INT4) {
        const uint8_t *eq4 = (const uint8_t *)w->embedding.q + (size_t)token * (size_t)((dim + 1) / 2);
        for (int i = 0; i < dim; i++) x[i] = tp_fx_mulf(tp_int4_at(eq4, i), tp_f32_bits(&es[i / gs]), 16);
    } else {
        const int8_t *eq = w->embedding.q + (size_t)token * (size_t)dim;
        for (int i = 0; i < dim; i++) x[i] = tp_fx_mulf(eq[i], tp_f32_bits(&es[i / gs]), 16);
    }

    const float *rope = w->rope + (size_t)pos * (size_t)head_size;

    for (int l = 0; l < c->n_layers; l++) {
        QTensor wq = tp_layer_tensor(w, &w->layer0.wq, l);
        QTensor wk = tp_layer_tensor(w, &w->layer0.wk, l);
        QTensor wv = tp_layer_tensor(w, &w->layer0.wv, l);
        QTensor wo = tp_layer_tensor(w, &w->layer0.wo, l);
        QTensor w1 = tp_layer_tensor(w, &w->layer0.w1, l);
        QTensor w2 = tp_layer_tensor(w, &w->layer0.w2, l);
        QTensor w3 = tp_layer_tensor(w, &w->layer0.w3, l);

        /* attention rmsnorm, q and k (k in xb2, free until the output projection) */
        tp_fx_rmsnorm(s->xb, x, w->rms_att + (size_t)l * (size_t)dim, dim);
        size_t slot = (size_t)l * (size_t)c->seq_len + (size_t)pos;
        int32_t *k = s->xb2;
        quantize_mm(t, &s->xq, s->xb, dim);
        matmul(t, s->q, &s->xq, &wq, dim, dim);
        matmul(t, k, &s->xq, &wk, kv_dim, dim);

        /* RoPE with the table's f32 pairs read as Q30 */
        for (int i = 0; i < dim; i += 2) {
            int j = (i % head_size) / 2;
            int32_t c30 = tp_fx_mulf(1, tp_f32_bits(&rope[2 * j]), 30);
            int32_t s30 = tp_fx_mulf(1, tp_f32_bits(&rope[2 * j + 1]), 30);
            rotate(s->q + i, c30, s30);
            if (i < kv_dim) rotate(k + i, c30, s30);
        }

        /* int8 KV cache, one group per (position, kv head); the query per
         * head, with 1/sqrt(head_size) folded into its scale (q_den) */
        tp_fx_quantize(s->key_cache + slot * (size_t)kv_dim, s->key_scale + slot * (size_t)n_kv, k, kv_dim,
                       head_size, 127u, 0);
        matmul(t, s->xb2, &s->xq, &wv, kv_dim, dim);
        tp_fx_quantize(s->value_cache + slot * (size_t)kv_dim, s->value_scale + slot * (size_t)n_kv, s->xb2,
                       kv_dim, head_size, 127u, 0);
        tp_fx_quantize(s->qq.q, s->qq.s, s->q, dim, head_size, t->q_den, 8 - t->att_shift);

        /* multi-head attention over positions 0..pos */
        size_t lslot = (size_t)l * (size_t)c->seq_len;
        for (int h = 0; h < c->n_heads; h++) {
            const int8_t *qh = s->qq.q + h * head_size;
            int kh = h / kv_mul;
            uint32_t qm = tp_fx_mant(s->qq.s[h]);
            int32_t qbase = tp_fx_base(s->qq.s[h]);
            int32_t *att = s->att + (size_t)h * (size_t)c->seq_len;
            const int8_t *kt = s->key_cache + lslot * (size_t)kv_dim + (size_t)kh * (size_t)head_size;
            const int32_t *ks = s->key_scale + lslot * (size_t)n_kv + (size_t)kh;
            for (int t2 = 0; t2 <= pos; t2++, kt += kv_dim, ks += n_kv) {
                int32_t dot = 0;
                if ((head_size & 7) == 0) { /* eight at a time, constant offsets */
                    for (int i = 0; i < head_size; i += 8) dot += dot8(qh + i, kt + i);
                } else {
                    for (int i = 0; i < head_size; i++) dot += (int32_t)qh[i] * (int32_t)kt[i];
                }
                /* score in Q16: dot * (qm * km >> att_shift), shifted by both exponents */
                uint32_t cm = (qm * tp_fx_mant(*ks)) >> t->att_shift;
                att[t2] = tp_fx_shift32(dot * (int32_t)cm, qbase + tp_fx_base(*ks));
            }
            tp_fx_softmax(att, pos + 1); /* Q30 weights */

            /* weighted sum of the values: per position one integer weight,
             * attention (Q16) times the value scale, in Q24; then to Q16 */
            for (int t2 = 0; t2 <= pos; t2++) {
                int32_t vs = s->value_scale[(lslot + (size_t)t2) * (size_t)n_kv + (size_t)kh];
                uint32_t p16 = (uint32_t)att[t2] >> 14;
                att[t2] = tp_fx_shift32((int32_t)(p16 * tp_fx_mant(vs)), tp_fx_base(vs) + 8);
            }
            int32_t *xbh = s->xb + h * head_size;
            const int8_t *v0 = s->value_cache + lslot * (size_t)kv_dim + (size_t)kh * (size_t)head_size;
            int i0 = 0;
            /* eight elements at a time in registers, each position's weight
             * loaded once for the eight */
            for (; i0 + 8 <= head_size; i0 += 8) {
                uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
                const int8_t *vt = v0 + i0;
                for (int t2 = 0; t2 <= pos; t2++, vt += kv_dim) {
                    uint32_t a = (uint32_t)att[t2];
                    c0 += a * (uint32_t)(int32_t)vt[0];
                    c1 += a * (uint32_t)(int32_t)vt[1];
                    c2 += a * (uint32_t)(int32_t)vt[2];
                    c3 += a * (uint32_t)(int32_t)vt[3];
                    c4 += a * (uint32_t)(int32_t)vt[4];
                    c5 += a * (uint32_t)(int32_t)vt[5];
                    c6 += a * (uint32_t)(int32_t)vt[6];
                    c7 += a * (uint32_t)(int32_t)vt[7];
                }
                xbh[i0] = (int32_t)c0 >> 8;
                xbh[i0 + 1] = (int32_t)c1 >> 8;
                xbh[i0 + 2] = (int32_t)c2 >> 8;
                xbh[i0 + 3] = (int32_t)c3 >> 8;
                xbh[i0 + 4] = (int32_t)c4 >> 8;
                xbh[i0 + 5] = (int32_t)c5 >> 8;
                xbh[i0 + 6] = (int32_t)c6 >> 8;
                xbh[i0 + 7] = (int32_t)c7 >> 8;
            }
            for (int i = i0; i < head_size; i++) {
                const int8_t *vt = v0 + i;
                uint32_t acc = 0;
                for (int t2 = 0; t2 <= pos; t2++, vt += kv_dim) acc += (uint32_t)att[t2] * (uint32_t)(int32_t)*vt;
                xbh[i] = (int32_t)acc >> 8;
            }
        }

        /* output projection and residual (sums wrap mod 2^32) */
        quantize_mm(t, &s->xq, s->xb, dim);
        matmul(t, s->xb2, &s->xq, &wo, dim, dim);
        for (int i = 0; i < dim; i++) x[i] = (int32_t)((uint32_t)x[i] + (uint32_t)s->xb2[i]);

        /* FFN: w2(silu(w1(x)) * w3(x)) */
        tp_fx_rmsnorm(s->xb, x, w->rms_ffn + (size_t)l * (size_t)dim, dim);
        quantize_mm(t, &s->xq, s->xb, dim);
        matmul(t, s->hb, &s->xq, &w1, hidden, dim);
        matmul(t, s->hb2, &s->xq, &w3, hidden, dim);
        for (int i = 0; i < hidden; i++) s->hb[i] = tp_fx_swiglu(s->hb[i], s->hb2[i]);
        quantize_mm(t, &s->xq, s->hb, hidden);
        matmul(t, s->xb, &s->xq, &w2, dim, hidden);
        for (int i = 0; i < dim; i++) x[i] = (int32_t)((uint32_t)x[i] + (uint32_t)s->xb[i]);
    }

    if (!want_logits) return NULL;

    tp_fx_rmsnorm(x, x, w->rms_final, dim);
    quantize_mm(t, &s->xq, x, dim);
    /* Q16 logits into the logits buffer, then converted in place to f32 */
    int32_t *lq = (int32_t *)(void *)s->logits;
    matmul(t, lq, &s->xq, &w->classifier, c->vocab_size, dim);
    for (int i = 0; i < c->vocab_size; i++) s->logits[i] = tp_fx_to_f32(lq[i]);
    return s->logits;
}
#endif /* TP_FIXED_POINT */
