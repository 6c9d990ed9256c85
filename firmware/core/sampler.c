/* Token sampling: see sampler.h. */
#include "sampler.h"

#include "transformer.h" /* tp_softmax */

void tp_sampler_init(Sampler *s, int vocab_size, float temperature, uint32_t seed) {
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    /* the constant keeps seed 0 from being the all-zero state xorshift never leaves */
    s->rng = (uint64_t)seed ^ 0x9E3779B97F4A7C15ull;
}

uint32_t tp_rng_u32(uint64_t *state) {
    uint64_t s = *state;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    *state = s;
    return (uint32_t)((s * 0x2545F4914F6CDD1Dull) >> 32);
}

#if TP_FIXED_POINT
/* The same order on the bits, so a core without an FPU compares integers: a
 * float's bits, with the magnitude bits flipped when negative, order like
 * the float (fixed-point logits are never NaN or -0). */
static inline int32_t order_key(const float *p) {
    union { float f; int32_t i; } v;
    v.f = *p;
    return v.i ^ ((v.i >> 31) & 0x7FFFFFFF);
}

int tp_argmax(const float *x, int n) {
    int best = 0;
    int32_t kbest = order_key(&x[0]);
    for (int i = 1; i < n; i++) {
        int32_t k = order_key(&x[i]);
        if (k > kbest) { /* strict: the first maximum wins */
            best = i;
            kbest = k;
        }
    }
    return best;
}
#else
/* the running maximum stays in a register (it is x[best] exactly) */
static int argmax_scalar(const float *x, int n) {
    int best = 0;
    float max = x[0];
    for (int i = 1; i < n; i++) {
        float v = x[i];
        if (v > max) { /* strict: the first maximum wins */
            best = i;
            max = v;
        }
    }
    return best;
}

#if TP_KERNELS_HELIUM
#include <arm_mve.h>

/* The largest value four lanes at a time (VMAXNM), then the first element
 * equal to it: the same first maximum. Helium flushes subnormals, so when
 * no element equals the maximum found (every logit subnormal or zero) the
 * scalar loop decides. */
int tp_argmax(const float *x, int n) {
    if (x[0] != x[0]) return argmax_scalar(x, n); /* NaN first: VMAXNM would skip it */
    float32x4_t m = vdupq_n_f32(x[0]);
    int i = 0;
    for (; i + 4 <= n; i += 4) m = vmaxnmq_f32(m, vld1q_f32(x + i));
    float max = vmaxnmvq_f32(x[0], m);
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    for (i = 0; i < n; i++) {
        if (x[i] == max) return i;
    }
    return argmax_scalar(x, n);
}
#else
int tp_argmax(const float *x, int n) { return argmax_scalar(x, n); }
#endif
#endif

int tp_sample(Sampler *s, float *logits) {
    int n = s->vocab_size;
    if (s->temperature == 0.0f) return tp_argmax(logits, n);
    /* A temperature so small that the largest logit / temperature overflows
     * would make softmax take inf - inf (NaN, then a float-to-int conversion
     * of NaN: undefined). That draw is the greedy one (docs/model-format.md). */
    int best = tp_argmax(logits, n);
    float top = logits[best] / s->temperature;
    if (!(top <= 3.40282347e38f && top >= -3.40282347e38f)) return best;

    for (int i = 0; i < n; i++) {
        logits[i] = logits[i] / s->temperature;
    }
    tp_softmax(logits, n);
    /* 24 random bits: exactly representable, so coin is in [0, 1) exactly */
    float coin = (float)(tp_rng_u32(&s->rng) >> 8) / 16777216.0f;
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf = cdf + logits[i];
        if (coin < cdf) return i;
    }
    return n - 1; /* rounding left the total just below coin */
}
