/* Fixed-point arithmetic for cores without an FPU (TP_FIXED_POINT=1):
 * docs/model-format.md "Fixed-point arithmetic" is the specification, and
 * profiler/models/fixed.py the host's bit-exact mirror.
 *
 * Activations are int32 Q16.16. Model scales stay f32 in flash; they are
 * read as bit patterns (sign, 8-bit exponent, 24-bit mantissa) with integer
 * operations only, so no libgcc soft-float routine runs in the forward pass.
 * Every right shift is arithmetic (floor); int32 sums wrap mod 2^32 (done in
 * uint32, which C defines), which only matters for activations beyond
 * +-32768, outside the range this arithmetic is for. */
#ifndef TP_FIXED_H
#define TP_FIXED_H

#include <stdint.h>

#define TP_FX_ONE 65536 /* 1.0 in Q16 */

/* Bits of an f32 without a float operation. */
static inline uint32_t tp_f32_bits(const float *p) {
    union { float f; uint32_t u; } v;
    v.f = *p;
    return v.u;
}

/* floor(v / 2^s) for s >= 0, v * 2^-s (mod 2^32) for s < 0, as int32. */
static inline int32_t tp_fx_shift32(int32_t v, int32_t s) {
    if (s >= 0) return v >> (s > 31 ? 31 : s);
    return (int32_t)((uint32_t)v << (-s > 31 ? 31 : -s));
}

/* Number of significant bits of x (0 for 0). */
static inline int tp_bitlen32(uint32_t x) { return x ? 32 - __builtin_clz(x) : 0; }
static inline int tp_bitlen64(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

/* floor(a * f * 2^frac) for the f32 f given by its bits u, as int32 (mod
 * 2^32 when it overflows); 0 when f's exponent field is 0 (zero, subnormal). */
int32_t tp_fx_mulf(int32_t a, uint32_t u, int frac);

/* Packed scale of a quantization group (QVectorFx.s): mantissa in the low
 * 16 bits, the group's shift base in the high 16 (see tp_fx_quantize). */
static inline int32_t tp_fx_pack(int32_t base, uint32_t mant) {
    return (int32_t)(((uint32_t)base << 16) | mant);
}
static inline uint32_t tp_fx_mant(int32_t p) { return (uint32_t)p & 0xFFFFu; }
static inline int32_t tp_fx_base(int32_t p) { return p >> 16; }

/* Symmetric int8 quantization of x (n,) in groups of group_size:
 * q = round(|x| * 127 / amax) with the sign of x (half away from zero), and
 * per group the scale amax / den as mantissa m in [2048, 4096) and exponent k
 * (amax / den ~ m * 2^-k; den is 127, or tp_fx_query_den for the query),
 * packed as (base + k, m). base folds in the shifts of whoever uses it. */
void tp_fx_quantize(int8_t *q, int32_t *s, const int32_t *x, int n, int group_size,
                    uint32_t den, int32_t base);

/* The divisor for query scales: floor(127 * sqrt(head_size) * 256). */
uint32_t tp_fx_query_den(int head_size);

/* rmsnorm in Q16: out[j] = w[j] * x[j] / sqrt(mean(x^2) + 1e-5), w f32. */
void tp_fx_rmsnorm(int32_t *out, const int32_t *x, const float *w, int n);

/* exp(d) for d <= 0 in Q16 (d >= -2^22 after clamping): Q30, in (0, 2^30]. */
uint32_t tp_fx_exp(int32_t d);

/* In-place softmax of Q16 scores x[0..n-1] into Q30 probabilities. */
void tp_fx_softmax(int32_t *x, int n);

/* silu(a) * b in Q16, the sigmoid from a 513-entry Q15 table. */
int32_t tp_fx_swiglu(int32_t a, int32_t b);

/* The f32 nearest x / 65536 (round to nearest even), from integer operations. */
float tp_fx_to_f32(int32_t x);

/* floor(sqrt(x)) */
uint32_t tp_isqrt64(uint64_t x);

#endif /* TP_FIXED_H */
