/* Correctly rounded sqrtf from integers: see fsqrt.h.
 *
 * x = m * 2^e with a 24-bit significand m. Shifting m left by 23 or 24 bits
 * (whichever leaves e even) gives an integer M in [2^46, 2^48), whose root
 * q = floor(sqrt(M)) has exactly 24 bits, and sqrt(x) = sqrt(M) * 2^(e/2).
 * The remainder r = M - q^2 decides the rounding: sqrt(M) > q + 1/2 exactly
 * when M > q^2 + q + 1/4, that is when r > q (both are integers). Equality is
 * impossible, so there is no tie to break. */
#include "fsqrt.h"

#include <stdint.h>

typedef union {
    float f;
    uint32_t u;
} F32Bits;

float tp_sqrtf_soft(float x) {
    F32Bits v = {x};
    uint32_t sign = v.u >> 31;
    uint32_t bexp = (v.u >> 23) & 0xFFu;
    uint32_t frac = v.u & 0x7FFFFFu;

    if (bexp == 0xFFu) {
        if (frac != 0) {
            v.u |= 0x00400000u; /* NaN in, the same NaN quieted out */
        } else if (sign) {
            v.u = 0x7FC00000u;  /* sqrt(-inf) */
        }
        return v.f;             /* +inf stays +inf */
    }
    if (bexp == 0 && frac == 0) return x; /* +0, -0 */
    if (sign) {
        v.u = 0x7FC00000u;
        return v.f;
    }

    /* x = m * 2^e, m in [2^23, 2^24) */
    uint32_t m;
    int32_t e;
    if (bexp == 0) {
        m = frac;
        e = -149;
        while ((m & 0x800000u) == 0) {
            m <<= 1;
            e--;
        }
    } else {
        m = frac | 0x800000u;
        e = (int32_t)bexp - 150;
    }

    uint64_t big;
    if (e & 1) {
        big = (uint64_t)m << 23;
        e -= 23;
    } else {
        big = (uint64_t)m << 24;
        e -= 24;
    }

    /* digit-by-digit root of big in [2^46, 2^48): q ends as floor(sqrt(big)),
     * big as the remainder */
    uint64_t q = 0;
    uint64_t bit = 1ull << 46;
    while (bit != 0) {
        if (big >= q + bit) {
            big -= q + bit;
            q = (q >> 1) + bit;
        } else {
            q >>= 1;
        }
        bit >>= 2;
    }
    if (big > q) q++;

    /* q in [2^23, 2^24]; adding q to the exponent field minus one carries a
     * rounded-up 2^24 into the next binade by itself */
    int32_t biased = e / 2 + 23 + 127; /* e is even: exact */
    v.u = ((uint32_t)(biased - 1) << 23) + (uint32_t)q;
    return v.f;
}
