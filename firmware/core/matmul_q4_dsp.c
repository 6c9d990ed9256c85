/* tp_matmul_q4 for Cortex-M4/M7 (armv7e-m DSP extension), under the contract
 * of matmul.h.
 *
 * A weight word holds 8 nibbles; each 16-bit lane holds 4 of them. Masking a
 * lane with 0xF000 after shifting it left by 12, 8, 4 or 0 bits leaves one
 * nibble in the lane's top 4 bits: that int16 is exactly 4096 times the
 * signed value (the nibble's top bit lands on the lane's sign bit), so one
 * AND per pair replaces the sign extension, and the group sum is divided by
 * 4096 exactly at the end. Lanes give (v0, v4), (v1, v5), (v2, v6), (v3, v7),
 * so the activations are widened once per call into that order. */
#include <arm_acle.h>

#include "matmul.h"
#include "matmul_dsp.h"

/* |4096 * v * x| <= 32768 * 127: a sum of 256 columns stays below 2^31 */
#define Q4_MAX_FAST_GROUP 256

static void widen(const int8_t *q, int cols) {
    for (int i = 0; i < cols / 8; i++) {
        uint32_t q0 = tp_dsp_load32(q + 8 * i), q1 = tp_dsp_load32(q + 8 * i + 4);
        uint32_t a = (uint32_t)__sxtb16((int8x4_t)q0), b = sxtb16_ror8(q0); /* (x0,x2) (x1,x3) */
        uint32_t c = (uint32_t)__sxtb16((int8x4_t)q1), d = sxtb16_ror8(q1); /* (x4,x6) (x5,x7) */
        uint32_t *o = tp_dsp_xw + 4 * i;
        o[0] = (a & 0xFFFFu) | (c << 16);
        o[1] = (b & 0xFFFFu) | (d << 16);
        o[2] = (a >> 16) | (c & 0xFFFF0000u);
        o[3] = (b >> 16) | (d & 0xFFFF0000u);
    }
}

#define Q4_ROW(ROW, A, X, SH)                        \
    "and %[t], %[m], " ROW ", lsl #" SH "\n\t"      \
    "smlad " A ", %[t], " X ", " A "\n\t"
#define Q4_ROW0(ROW, A, X)                           \
    "and %[t], %[m], " ROW "\n\t"                   \
    "smlad " A ", %[t], " X ", " A "\n\t"
#define Q4_WORD                                                          \
    "ldr %[u], [%[w0]], #4\n\t"                                          \
    "ldr %[v], [%[w1]], #4\n\t"                                          \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                 \
    Q4_ROW("%[u]", "%[a0]", "%[x0]", "12") Q4_ROW("%[v]", "%[a1]", "%[x0]", "12") \
    Q4_ROW("%[u]", "%[a0]", "%[x1]", "8") Q4_ROW("%[v]", "%[a1]", "%[x1]", "8")   \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                 \
    Q4_ROW("%[u]", "%[a0]", "%[x0]", "4") Q4_ROW("%[v]", "%[a1]", "%[x0]", "4")   \
    Q4_ROW0("%[u]", "%[a0]", "%[x1]") Q4_ROW0("%[v]", "%[a1]", "%[x1]")

/* float(acc / 4096) in one instruction: VCVT with 12 fraction bits. acc is
 * 4096 * k with |k| < 2^24, so both are exact and equal. */
static inline float q4_sum(int32_t acc) {
    float f;
    __asm__("vmov %0, %1\n\tvcvt.f32.s32 %0, %0, #12" : "=t"(f) : "r"(acc));
    return f;
}

/* Two rows over n16 blocks of 16 columns; sums are 4096 times the true ones.
 * Weight words are read with LDR, which the M4 allows unaligned. */
static inline __attribute__((always_inline)) void block2(const uint8_t **pw0, const uint8_t **pw1, const uint32_t **pxp, int n16,
                          float *acc0, float *acc1) {
    const uint8_t *w0 = *pw0, *w1 = *pw1;
    const uint32_t *xp = *pxp;
    int32_t a0 = 0, a1 = 0;
    uint32_t x0, x1, u, v, t;
    uint32_t m = 0xF000F000u;
    if (n16 == 2) { /* groups of 32: straight code, no counter */
        __asm__ volatile(Q4_WORD Q4_WORD Q4_WORD Q4_WORD
                         : [a0] "+r"(a0), [a1] "+r"(a1), [w0] "+r"(w0), [w1] "+r"(w1), [xp] "+r"(xp),
                           [x0] "=&r"(x0), [x1] "=&r"(x1), [u] "=&r"(u), [v] "=&r"(v), [t] "=&r"(t)
                         : [m] "r"(m)
                         : "cc", "memory");
    } else {
        __asm__ volatile("1:\n\t" Q4_WORD Q4_WORD
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [w0] "+r"(w0), [w1] "+r"(w1), [xp] "+r"(xp),
                           [n] "+r"(n16), [x0] "=&r"(x0), [x1] "=&r"(x1), [u] "=&r"(u), [v] "=&r"(v),
                           [t] "=&r"(t)
                         : [m] "r"(m)
                         : "cc", "memory");
    }
    *pw0 = w0, *pw1 = w1, *pxp = xp;
    *acc0 = q4_sum(a0), *acc1 = q4_sum(a1);
}

static inline void block1(const uint8_t **pw0, const uint32_t **pxp, int n16, float *acc0) {
    const uint8_t *w0 = *pw0;
    const uint32_t *xp = *pxp;
    int32_t a0 = 0;
    uint32_t x0, x1, u, t;
    uint32_t m = 0xF000F000u;
#define Q4_WORD1                                            \
    "ldr %[u], [%[w0]], #4\n\t"                             \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                    \
    Q4_ROW("%[u]", "%[a0]", "%[x0]", "12")                  \
    Q4_ROW("%[u]", "%[a0]", "%[x1]", "8")                   \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                    \
    Q4_ROW("%[u]", "%[a0]", "%[x0]", "4")                   \
    Q4_ROW0("%[u]", "%[a0]", "%[x1]")
    __asm__ volatile("1:\n\t" Q4_WORD1 Q4_WORD1
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [a0] "+r"(a0), [w0] "+r"(w0), [xp] "+r"(xp), [n] "+r"(n16), [x0] "=&r"(x0),
                       [x1] "=&r"(x1), [u] "=&r"(u), [t] "=&r"(t)
                     : [m] "r"(m)
                     : "cc", "memory");
#undef Q4_WORD1
    *pw0 = w0, *pxp = xp;
    *acc0 = q4_sum(a0);
}

/* Every group on the assembly loop: row pairs with as little state as
 * possible around the asm (see matmul_dsp.c). */
static inline __attribute__((always_inline)) void pairs_loop(float *out, const uint8_t *w0, size_t row_bytes,
                                                 const float *s, const float *xs, int pairs,
                                                 int groups, int n16) {
    for (; pairs > 0; pairs--) {
        const uint8_t *w1 = w0 + row_bytes;
        const uint32_t *xp = tp_dsp_xw;
        const float *s1 = s + groups;
        float val0 = 0.0f, val1 = 0.0f;
        for (int g = 0; g < groups; g++) {
            float a0, a1; /* the group sums, already converted */
            block2(&w0, &w1, &xp, n16, &a0, &a1);
            val0 = val0 + (a0 * s[g]) * xs[g];
            val1 = val1 + (a1 * s1[g]) * xs[g];
        }
        out[0] = val0;
        out[1] = val1;
        out += 2;
        w0 = w1; /* w0 ended where row 1 began */
        s = s1 + groups;
    }
}

/* 64 columns in two groups of 32 (the dim-64 projections and classifier),
 * as in matmul_dsp.c: one assembly loop over row pairs with the float steps
 * of the contract, row 1 read at row 0's address + 32 bytes. Per pair: 160
 * for the 128 MACs, 30 for the group sums and the loop. */
static __attribute__((noinline)) void pairs_64(float *out, const uint8_t *w0, const float *s,
                                               const float *xs, int pairs) {
    const uint32_t *xp = tp_dsp_xw;
    float xs0 = xs[0], xs1 = xs[1], zero = 0.0f;
    int32_t a0, a1;
    uint32_t x0, x1, u, v, t;
    uint32_t m = 0xF000F000u;
#define Q4_WORD64                                                        \
    "ldr %[u], [%[w0]], #4\n\t"                                          \
    "ldr %[v], [%[w0], #28]\n\t"                                         \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                 \
    Q4_ROW("%[u]", "%[a0]", "%[x0]", "12") Q4_ROW("%[v]", "%[a1]", "%[x0]", "12") \
    Q4_ROW("%[u]", "%[a0]", "%[x1]", "8") Q4_ROW("%[v]", "%[a1]", "%[x1]", "8")   \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                 \
    Q4_ROW("%[u]", "%[a0]", "%[x0]", "4") Q4_ROW("%[v]", "%[a1]", "%[x0]", "4")   \
    Q4_ROW0("%[u]", "%[a0]", "%[x1]") Q4_ROW0("%[v]", "%[a1]", "%[x1]")
    __asm__ volatile(
        "1:\n\t"
        "movs %[a0], #0\n\t"
        "movs %[a1], #0\n\t"
        Q4_WORD64 Q4_WORD64 Q4_WORD64 Q4_WORD64
        "vmov s0, %[a0]\n\t"
        "vmov s1, %[a1]\n\t"
        "movs %[a0], #0\n\t"
        "movs %[a1], #0\n\t"
        Q4_WORD64 Q4_WORD64 Q4_WORD64 Q4_WORD64
        "vmov s2, %[a0]\n\t"
        "vmov s3, %[a1]\n\t"
        /* the sums are 4096 times the true ones: 12 fraction bits (q4_sum) */
        "vcvt.f32.s32 s0, s0, #12\n\t"
        "vcvt.f32.s32 s1, s1, #12\n\t"
        "vcvt.f32.s32 s2, s2, #12\n\t"
        "vcvt.f32.s32 s3, s3, #12\n\t"
        "vldmia %[s]!, {s4-s7}\n\t" /* row 0 groups 0 1, row 1 groups 0 1 */
        "vmul.f32 s0, s0, s4\n\t"
        "vmul.f32 s0, s0, %[xs0]\n\t"
        "vadd.f32 s0, %[zero], s0\n\t"
        "vmul.f32 s2, s2, s5\n\t"
        "vmul.f32 s2, s2, %[xs1]\n\t"
        "vadd.f32 s0, s0, s2\n\t"
        "vmul.f32 s1, s1, s6\n\t"
        "vmul.f32 s1, s1, %[xs0]\n\t"
        "vadd.f32 s1, %[zero], s1\n\t"
        "vmul.f32 s3, s3, s7\n\t"
        "vmul.f32 s3, s3, %[xs1]\n\t"
        "vadd.f32 s1, s1, s3\n\t"
        "vstmia %[out]!, {s0-s1}\n\t"
        "add %[w0], %[w0], #32\n\t" /* past row 1: the next pair */
        "sub %[xp], %[xp], #128\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [w0] "+r"(w0), [xp] "+r"(xp), [s] "+r"(s), [out] "+r"(out),
          [n] "+r"(pairs), [x0] "=&r"(x0), [x1] "=&r"(x1), [u] "=&r"(u), [v] "=&r"(v), [t] "=&r"(t)
        : [m] "r"(m), [xs0] "t"(xs0), [xs1] "t"(xs1), [zero] "t"(zero)
        : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
#undef Q4_WORD64
}

/* Any whole number of groups of 32, as pairs_g32 in matmul_dsp.c: per row
 * pair one assembly loop over the groups, float steps included. Per group:
 * 80 for the 64 MACs and 20 around. */
static __attribute__((noinline)) void pairs_g32(float *out, const uint8_t *w0, size_t row_bytes,
                                                const float *s, const float *xs, int pairs,
                                                int groups) {
    int32_t off = 4 * groups;        /* row 1's scales, in bytes from row 0's */
    const float *xend = xs + groups; /* the loop's end */
    uint32_t m = 0xF000F000u;
    for (; pairs > 0; pairs--) {
        const uint8_t *w1 = w0 + row_bytes;
        const uint32_t *xp = tp_dsp_xw;
        const float *sp = s, *xsp = xs;
        float val0 = 0.0f, val1 = 0.0f;
        int32_t a0, a1;
        uint32_t x0, x1, u, v, t;
        __asm__ volatile(
            "1:\n\t"
            "movs %[a0], #0\n\t"
            "movs %[a1], #0\n\t"
            Q4_WORD Q4_WORD Q4_WORD Q4_WORD
            "vmov s0, %[a0]\n\t"
            "vmov s1, %[a1]\n\t"
            "vcvt.f32.s32 s0, s0, #12\n\t" /* 4096 times the sums (q4_sum) */
            "vcvt.f32.s32 s1, s1, #12\n\t"
            "ldr %[t], %[off]\n\t"
            "add %[t], %[t], %[sp]\n\t"
            "vldr s3, [%[t]]\n\t"       /* row 1's scale of this group */
            "vldmia %[sp]!, {s2}\n\t"   /* row 0's */
            "vldmia %[xsp]!, {s4}\n\t"  /* the activations' */
            "vmul.f32 s0, s0, s2\n\t"
            "vmul.f32 s0, s0, s4\n\t"
            "vadd.f32 %[val0], %[val0], s0\n\t"
            "vmul.f32 s1, s1, s3\n\t"
            "vmul.f32 s1, s1, s4\n\t"
            "vadd.f32 %[val1], %[val1], s1\n\t"
            "ldr %[t], %[xend]\n\t"
            "cmp %[xsp], %[t]\n\t"
            "bne 1b\n\t"
            : [val0] "+t"(val0), [val1] "+t"(val1), [w0] "+r"(w0), [w1] "+r"(w1), [xp] "+r"(xp),
              [sp] "+r"(sp), [xsp] "+r"(xsp), [a0] "=&r"(a0), [a1] "=&r"(a1), [x0] "=&r"(x0),
              [x1] "=&r"(x1), [u] "=&r"(u), [v] "=&r"(v), [t] "=&r"(t)
            : [m] "r"(m), [off] "m"(off), [xend] "m"(xend)
            : "cc", "memory", "s0", "s1", "s2", "s3", "s4");
        out[0] = val0;
        out[1] = val1;
        out += 2;
        w0 = w1; /* w0 ended where row 1 began */
        s += 2 * groups;
    }
}

static __attribute__((noinline)) void pairs_fast(float *out, const uint8_t *w0, size_t row_bytes,
                                                 const float *s, const float *xs, int pairs,
                                                 int groups, int n16) {
    if (n16 == 2 && groups == 2) {
        pairs_64(out, w0, s, xs, pairs);
    } else if (n16 == 2) {
        pairs_g32(out, w0, row_bytes, s, xs, pairs, groups);
    } else {
        pairs_loop(out, w0, row_bytes, s, xs, pairs, groups, n16);
    }
}

/* One group of one row, a byte (two values) at a time: the portable loop,
 * for groups the SIMD loop does not take (odd sizes, the short last group). */
static int32_t group_scalar(const uint8_t *wq, const int8_t *xq, int j, int end) {
    int32_t acc = 0;
    if (j & 1) {
        acc += tp_int4_at(wq, j) * (int32_t)xq[j];
        j++;
    }
    for (; j + 1 < end; j += 2) {
        uint32_t b = wq[j >> 1];
        int32_t lo = (int32_t)((b & 15u) ^ 8u) - 8;
        int32_t hi = (int32_t)((b >> 4) ^ 8u) - 8;
        acc += lo * (int32_t)xq[j] + hi * (int32_t)xq[j + 1];
    }
    if (j < end) acc += tp_int4_at(wq, j) * (int32_t)xq[j];
    return acc;
}

void tp_matmul_q4(float *out, const QVector *x, const QTensor *w, int rows, int cols,
                  int group_size) {
    int groups = (cols + group_size - 1) / group_size;
    size_t row_bytes = (size_t)(cols + 1) / 2;
    const int8_t *xq = x->q;
    const float *xs = x->s;
    /* whole groups of a multiple of 16 columns take the SIMD loop */
    int fast = (group_size & 15) == 0 && group_size <= Q4_MAX_FAST_GROUP && cols <= TP_DSP_MAX_COLS;
    int fast_groups = fast ? cols / group_size : 0;
    int n16 = group_size / 16;
    if (fast_groups) widen(xq, fast_groups * group_size);
    int r = 0;
    if (fast_groups == groups && rows >= 2) {
        pairs_fast(out, (const uint8_t *)w->q, row_bytes, w->s, xs, rows / 2, groups, n16);
        r = rows & ~1;
    }
    for (; r + 1 < rows; r += 2) {
        const uint8_t *w0 = (const uint8_t *)w->q + (size_t)r * row_bytes;
        const uint8_t *w1 = w0 + row_bytes;
        const float *s0 = w->s + (size_t)r * (size_t)groups;
        const float *s1 = s0 + groups;
        float val0 = 0.0f, val1 = 0.0f;
        const uint8_t *p0 = w0, *p1 = w1;
        const uint32_t *xp = tp_dsp_xw;
        int g = 0;
        for (; g < fast_groups; g++) {
            float a0, a1;
            block2(&p0, &p1, &xp, n16, &a0, &a1);
            val0 = val0 + (a0 * s0[g]) * xs[g];
            val1 = val1 + (a1 * s1[g]) * xs[g];
        }
        for (; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t a0 = group_scalar(w0, xq, start, end);
            int32_t a1 = group_scalar(w1, xq, start, end);
            val0 = val0 + ((float)a0 * s0[g]) * xs[g];
            val1 = val1 + ((float)a1 * s1[g]) * xs[g];
        }
        out[r] = val0;
        out[r + 1] = val1;
    }
    if (r < rows) { /* odd row count: the last row alone */
        const uint8_t *w0 = (const uint8_t *)w->q + (size_t)r * row_bytes;
        const float *s0 = w->s + (size_t)r * (size_t)groups;
        float val0 = 0.0f;
        const uint8_t *p0 = w0;
        const uint32_t *xp = tp_dsp_xw;
        int g = 0;
        for (; g < fast_groups; g++) {
            float a0;
            block1(&p0, &xp, n16, &a0);
            val0 = val0 + (a0 * s0[g]) * xs[g];
        }
        for (; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            val0 = val0 + ((float)group_scalar(w0, xq, start, end) * s0[g]) * xs[g];
        }
        out[r] = val0;
    }
}
