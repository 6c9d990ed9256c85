/* Fixed-point arithmetic: see fixed.h and docs/model-format.md. Only
 * integer operations; 64-bit products are mul/mulh pairs on rv32m. */
#include "fixed.h"

/* ----------------------------------------------------------------------------
 * f32 scales read as integers */

int32_t tp_fx_mulf(int32_t a, uint32_t u, int frac) {
    int32_t e = (int32_t)((u >> 23) & 0xFFu);
    if (e == 0) return 0;
    int64_t p = (int64_t)a * (int64_t)((u & 0x7FFFFFu) | 0x800000u); /* |p| < 2^55 */
    if (u >> 31) p = -p;
    int32_t s = 150 - frac - e; /* f = m * 2^(e - 150) */
    if (s >= 0) return (int32_t)(p >> (s > 63 ? 63 : s));
    /* a left shift only keeps the low 32 bits of p */
    return -s > 31 ? 0 : (int32_t)((uint32_t)p << -s);
}

/* ----------------------------------------------------------------------------
 * Activation quantization */

void tp_fx_quantize(int8_t *q, int32_t *s, const int32_t *x, int n, int group_size,
                    uint32_t den, int32_t base) {
    int den_bits = tp_bitlen32(den);
    for (int start = 0, g = 0; start < n; start += group_size, g++) {
        int end = start + group_size < n ? start + group_size : n;
        uint32_t amax = 0;
        for (int i = start; i < end; i++) {
            uint32_t a = x[i] < 0 ? 0u - (uint32_t)x[i] : (uint32_t)x[i];
            if (a > amax) amax = a;
        }
        if (amax == 0) {
            for (int i = start; i < end; i++) q[i] = 0;
            s[g] = 0; /* mantissa 0: the group contributes nothing */
            continue;
        }
        int len = tp_bitlen32(amax);
        /* q = round(|x| * 127 / amax), on at most 23 bits so |x| * 254 fits */
        int drop = len > 23 ? len - 23 : 0;
        uint32_t a2 = amax >> drop, d2 = 2u * a2;
        for (int i = start; i < end; i++) {
            /* |x| and the sign put back without a branch: sgn is 0 or all ones */
            uint32_t sgn = (uint32_t)(x[i] >> 31);
            uint32_t a = (((uint32_t)x[i] ^ sgn) - sgn) >> drop;
            uint32_t r = (a * 254u + a2) / d2; /* <= 127 */
            q[i] = (int8_t)(int32_t)((r ^ sgn) - sgn);
        }
        /* the scale amax / den as m * 2^-k, m in [2048, 4096) */
        int32_t k = 12 + den_bits - len;
        uint32_t num = k >= 0 ? amax << k : amax >> -k;
        uint32_t m = num / den;
        if (m >= 4096u) {
            m = num / (2u * den);
            k--;
        }
        s[g] = tp_fx_pack(base + k, m);
    }
}

uint32_t tp_isqrt64(uint64_t x) {
    uint64_t r = 0, bit = 1ull << 62;
    while (bit > x) bit >>= 2;
    while (bit != 0) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

uint32_t tp_fx_query_den(int head_size) {
    return tp_isqrt64((uint64_t)127 * 127 * (uint64_t)head_size << 16);
}

/* ----------------------------------------------------------------------------
 * RMSNorm */

void tp_fx_rmsnorm(int32_t *out, const int32_t *x, const float *w, int n) {
    uint64_t ss = 0;
    for (int j = 0; j < n; j++) {
        ss += (uint64_t)((int64_t)x[j] * (int64_t)x[j]);
    }
    uint64_t ms = ss / (uint64_t)n + 42950u; /* Q32 mean square + 1e-5 */
    /* scale by 4^j into [2^60, 2^62) so the root r has 31 bits */
    int32_t jj = (62 - tp_bitlen64(ms)) >> 1;
    uint64_t msn = jj >= 0 ? ms << (2 * jj) : ms >> (-2 * jj);
    uint32_t r = tp_isqrt64(msn);          /* rms = r * 2^(-jj - 16) */
    uint64_t inv = (1ull << 61) / r;       /* <= 2^31 */
    int sh = 45 - jj;                      /* 1/rms in Q16 is inv * 2^(jj - 45) * 2^16 */
    for (int j = 0; j < n; j++) {
        /* |x| < 2^31, inv <= 2^31: the product fits int64 */
        int32_t nj = (int32_t)(((int64_t)x[j] * (int64_t)inv) >> sh);
        out[j] = tp_fx_mulf(nj, tp_f32_bits(&w[j]), 0);
    }
}

/* ----------------------------------------------------------------------------
 * exp, softmax; SiLU from a sigmoid table */

/* 2^f on [0, 1): degree-4 polynomial, coefficients Q16, f in Q15 */
#define TP_EXP2_C0 65536u
#define TP_EXP2_C1 45414u
#define TP_EXP2_C2 15835u
#define TP_EXP2_C3 3389u
#define TP_EXP2_C4 897u

uint32_t tp_fx_exp(int32_t d) {
    if (d < -(1 << 22)) d = -(1 << 22);
    int32_t y = (int32_t)(((int64_t)d * 94548) >> 16); /* d * log2(e), Q16 */
    int32_t n = y >> 16;                                /* floor, <= 0 */
    uint32_t f = ((uint32_t)y & 0xFFFFu) >> 1;          /* Q15 */
    uint32_t p = TP_EXP2_C4;
    p = ((p * f) >> 15) + TP_EXP2_C3;
    p = ((p * f) >> 15) + TP_EXP2_C2;
    p = ((p * f) >> 15) + TP_EXP2_C1;
    p = ((p * f) >> 15) + TP_EXP2_C0; /* 2^f in Q16, < 2^17 */
    return -n > 31 ? 0u : (p << 14) >> -n;
}

void tp_fx_softmax(int32_t *x, int n) {
    int32_t max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] > max) max = x[i];
    }
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = (int64_t)x[i] - (int64_t)max;
        uint32_t e = tp_fx_exp(d < -(1 << 22) ? -(1 << 22) : (int32_t)d);
        x[i] = (int32_t)e;
        sum += e;
    }
    /* one division per call: x / sum as x * floor((2^62 - 1) / sum) / 2^32;
     * sum >= 2^30 (the maximum contributes exactly 2^30) */
    uint32_t r = (uint32_t)(((1ull << 62) - 1) / sum);
    for (int i = 0; i < n; i++) {
        x[i] = (int32_t)(((uint64_t)(uint32_t)x[i] * r) >> 32);
    }
}

/* sigmoid(i/32) in Q15 for i = 0..512, round(32768 / (1 + e^(-i/32))), the
 * nearest integer of the exact value (profiler/models/fixed.py computes it
 * the same way and a test compares the two) */
static const uint16_t sigmoid_q15[513] = {
    16384, 16640, 16896, 17151, 17407, 17661, 17916, 18169, 18421, 18673, 18923, 19173,
    19420, 19667, 19912, 20155, 20397, 20636, 20874, 21110, 21344, 21575, 21804, 22031,
    22255, 22477, 22696, 22913, 23127, 23338, 23547, 23753, 23955, 24155, 24352, 24546,
    24737, 24925, 25110, 25292, 25471, 25646, 25819, 25988, 26155, 26318, 26479, 26636,
    26790, 26941, 27090, 27235, 27377, 27516, 27653, 27786, 27917, 28045, 28169, 28292,
    28411, 28528, 28642, 28753, 28862, 28968, 29072, 29173, 29272, 29368, 29462, 29554,
    29644, 29731, 29816, 29899, 29979, 30058, 30135, 30210, 30282, 30353, 30422, 30489,
    30555, 30618, 30680, 30740, 30799, 30856, 30912, 30966, 31018, 31069, 31119, 31167,
    31214, 31260, 31304, 31347, 31389, 31430, 31469, 31508, 31545, 31581, 31616, 31651,
    31684, 31716, 31747, 31778, 31807, 31836, 31864, 31891, 31917, 31943, 31968, 31992,
    32015, 32038, 32060, 32081, 32102, 32122, 32141, 32160, 32179, 32196, 32214, 32231,
    32247, 32263, 32278, 32293, 32307, 32321, 32335, 32348, 32361, 32373, 32385, 32397,
    32408, 32419, 32430, 32440, 32450, 32460, 32469, 32478, 32487, 32496, 32504, 32512,
    32520, 32527, 32535, 32542, 32549, 32555, 32562, 32568, 32574, 32580, 32586, 32592,
    32597, 32602, 32607, 32612, 32617, 32622, 32626, 32630, 32635, 32639, 32643, 32647,
    32650, 32654, 32657, 32661, 32664, 32667, 32670, 32673, 32676, 32679, 32682, 32684,
    32687, 32689, 32692, 32694, 32696, 32699, 32701, 32703, 32705, 32707, 32709, 32711,
    32712, 32714, 32716, 32717, 32719, 32720, 32722, 32723, 32725, 32726, 32727, 32728,
    32730, 32731, 32732, 32733, 32734, 32735, 32736, 32737, 32738, 32739, 32740, 32741,
    32742, 32742, 32743, 32744, 32745, 32745, 32746, 32747, 32747, 32748, 32749, 32749,
    32750, 32750, 32751, 32752, 32752, 32753, 32753, 32753, 32754, 32754, 32755, 32755,
    32756, 32756, 32756, 32757, 32757, 32757, 32758, 32758, 32758, 32759, 32759, 32759,
    32759, 32760, 32760, 32760, 32760, 32761, 32761, 32761, 32761, 32762, 32762, 32762,
    32762, 32762, 32762, 32763, 32763, 32763, 32763, 32763, 32763, 32764, 32764, 32764,
    32764, 32764, 32764, 32764, 32764, 32765, 32765, 32765, 32765, 32765, 32765, 32765,
    32765, 32765, 32765, 32765, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766,
    32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
};

int32_t tp_fx_swiglu(int32_t a, int32_t b) {
    /* sigmoid(|a|) from the table, linear between its points (1/32 apart,
     * so the error stays below one Q15 step); 1 from 16 on */
    uint32_t mag = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
    uint32_t s;
    if (mag >= (16u << 16)) {
        s = 32768u;
    } else {
        uint32_t i = mag >> 11, frac = mag & 0x7FFu;
        uint32_t lo = sigmoid_q15[i], hi = sigmoid_q15[i + 1];
        s = lo + (((hi - lo) * frac) >> 11);
    }
    int32_t sig = (int32_t)(a >= 0 ? s : 32768u - s); /* sigmoid(-x) = 1 - sigmoid(x) */
    int32_t silu = (int32_t)(((int64_t)a * sig) >> 15);
    return (int32_t)(((int64_t)silu * (int64_t)b) >> 16);
}

/* ----------------------------------------------------------------------------
 * Logits to f32 */

float tp_fx_to_f32(int32_t x) {
    union { uint32_t u; float f; } v;
    if (x == 0) {
        v.u = 0;
        return v.f;
    }
    uint32_t sign = x < 0 ? 0x80000000u : 0u;
    uint32_t a = x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
    int len = tp_bitlen32(a);
    uint32_t m;
    if (len <= 24) {
        m = a << (24 - len);
    } else {
        int sh = len - 24;
        m = a >> sh;
        uint32_t rem = a & ((1u << sh) - 1u), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (m & 1u))) m++;
        if (m == (1u << 24)) {
            m >>= 1;
            len++;
        }
    }
    /* a / 2^16 = m * 2^(len - 24 - 16), m in [2^23, 2^24) */
    v.u = sign | ((uint32_t)(len - 1 - 16 + 127) << 23) | (m & 0x7FFFFFu);
    return v.f;
}
