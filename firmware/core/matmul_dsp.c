/* tp_matmul_q8 for Cortex-M4/M7 (armv7e-m DSP extension), under the contract
 * of matmul.h.
 *
 * The activations are widened once per call into int16 pairs laid out to
 * match what SXTB16 makes of a weight word: word w = bytes b0 b1 b2 b3 gives
 * SXTB16(w) = (b0, b2) and SXTB16(w ror 8) = (b1, b3), so the pairs are
 * (x0, x2) and (x1, x3). Each SMLAD then does two exact MACs. Two rows run
 * together so every activation load serves both. Integer sums are exact, so
 * the pairing order changes nothing; the float steps per group are those of
 * the portable kernel, in its order. */
#include <arm_acle.h>

#include "matmul.h"
#include "matmul_dsp.h"

uint32_t tp_dsp_xw[TP_DSP_MAX_COLS / 2];

/* The assembly step of the hot loops: one weight word U (4 int8 columns)
 * against its two activation words, SXTB16 twice (the second through the
 * rotation field, into U itself, so U is clobbered) and two SMLADs: 4 exact
 * MACs into accumulator A. %[t] is the loops' scratch register. */
#define TP_DSP_STEP(U, A, X0, X1)          \
    "sxtb16 %[t], " U "\n\t"               \
    "sxtb16 " U ", " U ", ror #8\n\t"      \
    "smlad " A ", %[t], " X0 ", " A "\n\t" \
    "smlad " A ", " U ", " X1 ", " A "\n\t"

/* 8 columns of two rows w0, w1 (post-incremented) against xp: 4 steps. */
#define TP_Q8_BLOCK                                   \
    "ldrd %[u0], %[u1], [%[w0]], #8\n\t"             \
    "ldrd %[v0], %[v1], [%[w1]], #8\n\t"             \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"             \
    TP_DSP_STEP("%[u0]", "%[a0]", "%[x0]", "%[x1]") \
    TP_DSP_STEP("%[v0]", "%[a1]", "%[x0]", "%[x1]") \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"             \
    TP_DSP_STEP("%[u1]", "%[a0]", "%[x0]", "%[x1]") \
    TP_DSP_STEP("%[v1]", "%[a1]", "%[x0]", "%[x1]")

static void widen(const int8_t *q, int cols) {
    for (int i = 0; i < cols / 4; i++) {
        uint32_t v = tp_dsp_load32(q + 4 * i);
        tp_dsp_xw[2 * i] = (uint32_t)__sxtb16((int8x4_t)v);
        tp_dsp_xw[2 * i + 1] = sxtb16_ror8(v);
    }
}

#define MAC4(acc, wv, xa, xb)                                                     \
    do {                                                                          \
        acc = __smlad((int16x2_t)__sxtb16((int8x4_t)(wv)), (int16x2_t)(xa), acc); \
        acc = __smlad((int16x2_t)sxtb16_ror8(wv), (int16x2_t)(xb), acc);          \
    } while (0)

/* Two rows over n4 words (4 columns each) starting at a 4-aligned column. */
static inline void dot2(const int8_t *w0, const int8_t *w1, const uint32_t *xp, int n4,
                        int32_t *acc0, int32_t *acc1) {
    int32_t a0 = *acc0, a1 = *acc1;
    for (; n4 >= 4; n4 -= 4) { /* 16 columns: 8 loads and 16 SMLADs */
        uint32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        uint32_t u = tp_dsp_load32(w0), v = tp_dsp_load32(w1);
        MAC4(a0, u, x0, x1);
        MAC4(a1, v, x0, x1);
        u = tp_dsp_load32(w0 + 4), v = tp_dsp_load32(w1 + 4);
        MAC4(a0, u, x2, x3);
        MAC4(a1, v, x2, x3);
        x0 = xp[4], x1 = xp[5], x2 = xp[6], x3 = xp[7];
        u = tp_dsp_load32(w0 + 8), v = tp_dsp_load32(w1 + 8);
        MAC4(a0, u, x0, x1);
        MAC4(a1, v, x0, x1);
        u = tp_dsp_load32(w0 + 12), v = tp_dsp_load32(w1 + 12);
        MAC4(a0, u, x2, x3);
        MAC4(a1, v, x2, x3);
        w0 += 16, w1 += 16, xp += 8;
    }
    for (; n4 > 0; n4--) {
        uint32_t u = tp_dsp_load32(w0), v = tp_dsp_load32(w1);
        MAC4(a0, u, xp[0], xp[1]);
        MAC4(a1, v, xp[0], xp[1]);
        w0 += 4, w1 += 4, xp += 2;
    }
    *acc0 = a0, *acc1 = a1;
}

static inline int32_t dot1(const int8_t *w0, const uint32_t *xp, int n4, int32_t a0) {
    for (; n4 >= 2; n4 -= 2) {
        uint32_t u = tp_dsp_load32(w0), v = tp_dsp_load32(w0 + 4);
        MAC4(a0, u, xp[0], xp[1]);
        MAC4(a0, v, xp[2], xp[3]);
        w0 += 8, xp += 4;
    }
    if (n4) {
        uint32_t u = tp_dsp_load32(w0);
        MAC4(a0, u, xp[0], xp[1]);
    }
    return a0;
}

/* The portable kernel, for calls wider than the widened buffer. */
static void rows_scalar(float *out, const QVector *x, const QTensor *w, int rows, int cols,
                        int group_size) {
    int groups = (cols + group_size - 1) / group_size;
    for (int r = 0; r < rows; r++) {
        const int8_t *wq = w->q + (size_t)r * (size_t)cols;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        float val = 0.0f;
        for (int g = 0; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t acc = 0;
            for (int j = start; j < end; j++) acc += (int32_t)wq[j] * (int32_t)x->q[j];
            val = val + ((float)acc * ws[g]) * x->s[g];
        }
        out[r] = val;
    }
}

/* The hot loop: two word-aligned rows over n16 blocks of 16 columns, in
 * inline assembly because GCC spills accumulators around its own version
 * (measured: ~2 instructions per MAC instead of 1.3). Per block: 4 LDRD of
 * activations, 4 LDRD of weights, 16 SXTB16, 16 SMLAD for 32 MACs. */
static inline __attribute__((always_inline)) void block2_aligned(const int8_t **pw0, const int8_t **pw1, const uint32_t **pxp,
                                  int n16, int32_t *acc0, int32_t *acc1) {
    const int8_t *w0 = *pw0, *w1 = *pw1;
    const uint32_t *xp = *pxp;
    int32_t a0 = *acc0, a1 = *acc1;
    uint32_t x0, x1, u0, u1, v0, v1, t;
    if (n16 == 2) { /* groups of 32 (the usual): straight code, no counter */
        __asm__ volatile(TP_Q8_BLOCK TP_Q8_BLOCK TP_Q8_BLOCK TP_Q8_BLOCK
                         : [a0] "+r"(a0), [a1] "+r"(a1), [w0] "+r"(w0), [w1] "+r"(w1), [xp] "+r"(xp),
                           [x0] "=&r"(x0), [x1] "=&r"(x1), [u0] "=&r"(u0), [u1] "=&r"(u1),
                           [v0] "=&r"(v0), [v1] "=&r"(v1), [t] "=&r"(t)
                         :
                         : "cc", "memory");
    } else {
        __asm__ volatile("1:\n\t" TP_Q8_BLOCK TP_Q8_BLOCK
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [w0] "+r"(w0), [w1] "+r"(w1), [xp] "+r"(xp),
                           [n] "+r"(n16), [x0] "=&r"(x0), [x1] "=&r"(x1), [u0] "=&r"(u0), [u1] "=&r"(u1),
                           [v0] "=&r"(v0), [v1] "=&r"(v1), [t] "=&r"(t)
                         :
                         : "cc", "memory");
    }
    *pw0 = w0, *pw1 = w1, *pxp = xp;
    *acc0 = a0, *acc1 = a1;
}

/* Every group whole and on the assembly loop: row pairs with as little state
 * as possible around the asm, which holds 13 registers (short rows make the
 * per-pair cost matter: dim 64 is two groups). */
static inline __attribute__((always_inline)) void pairs_loop(float *out, const int8_t *w0, const float *s,
                                                 const float *xs, int pairs, int cols, int groups,
                                                 int n16) {
    for (; pairs > 0; pairs--) {
        const int8_t *w1 = w0 + cols;
        const uint32_t *xp = tp_dsp_xw;
        const float *s1 = s + groups;
        float val0 = 0.0f, val1 = 0.0f;
        for (int g = 0; g < groups; g++) {
            int32_t a0 = 0, a1 = 0;
            block2_aligned(&w0, &w1, &xp, n16, &a0, &a1);
            val0 = val0 + ((float)a0 * s[g]) * xs[g];
            val1 = val1 + ((float)a1 * s1[g]) * xs[g];
        }
        out[0] = val0;
        out[1] = val1;
        out += 2;
        w0 = w1; /* w0 ended where row 1 began */
        s = s1 + groups;
    }
}

/* The commonest shape, 64 columns in two groups of 32 (every projection
 * from dim 64 and the classifier of the acceptance model), as one assembly
 * loop over row pairs, float steps included: the C version spilled its
 * pointers around the 12-register integer block, ~24 instructions per row
 * pair and group. Row 1 is read at row 0's address + 64, so no pointer for
 * it. Per pair: 160 for the 128 MACs, then 30 for the four group sums and
 * the loop, in the order of the contract: val = 0 + (acc * ws) * xs, twice per row. */
static __attribute__((noinline)) void pairs_64(float *out, const int8_t *w0, const float *s,
                                               const float *xs, int pairs) {
    const uint32_t *xp = tp_dsp_xw;
    float xs0 = xs[0], xs1 = xs[1], zero = 0.0f;
    int32_t a0, a1;
    uint32_t x0, x1, u0, u1, v0, v1, t;
#define TP_64_BLOCK /* 8 columns of both rows */                                     \
    "ldrd %[u0], %[u1], [%[w0]], #8\n\t"                  \
    "ldrd %[v0], %[v1], [%[w0], #56]\n\t"                 \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                  \
    TP_DSP_STEP("%[u0]", "%[a0]", "%[x0]", "%[x1]")        \
    TP_DSP_STEP("%[v0]", "%[a1]", "%[x0]", "%[x1]")        \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                  \
    TP_DSP_STEP("%[u1]", "%[a0]", "%[x0]", "%[x1]")        \
    TP_DSP_STEP("%[v1]", "%[a1]", "%[x0]", "%[x1]")
    __asm__ volatile(
        "1:\n\t"
        "movs %[a0], #0\n\t"
        "movs %[a1], #0\n\t"
        TP_64_BLOCK TP_64_BLOCK TP_64_BLOCK TP_64_BLOCK
        "vmov s0, %[a0]\n\t"
        "vmov s1, %[a1]\n\t"
        "movs %[a0], #0\n\t"
        "movs %[a1], #0\n\t"
        TP_64_BLOCK TP_64_BLOCK TP_64_BLOCK TP_64_BLOCK
        "vmov s2, %[a0]\n\t"
        "vmov s3, %[a1]\n\t"
        "vcvt.f32.s32 s0, s0\n\t"
        "vcvt.f32.s32 s1, s1\n\t"
        "vcvt.f32.s32 s2, s2\n\t"
        "vcvt.f32.s32 s3, s3\n\t"
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
        "add %[w0], %[w0], #64\n\t" /* past row 1: the next pair */
        "sub %[xp], %[xp], #128\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [w0] "+r"(w0), [xp] "+r"(xp), [s] "+r"(s), [out] "+r"(out),
          [n] "+r"(pairs), [x0] "=&r"(x0), [x1] "=&r"(x1), [u0] "=&r"(u0), [u1] "=&r"(u1),
          [v0] "=&r"(v0), [v1] "=&r"(v1), [t] "=&r"(t)
        : [xs0] "t"(xs0), [xs1] "t"(xs1), [zero] "t"(zero)
        : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
#undef TP_64_BLOCK
}

/* Any whole number of groups of 32 (hidden 192 and the like): per row pair,
 * one assembly loop over the groups with the contract's float steps inside
 * it; row 1's scale is read at a fixed byte offset from row 0's and the loop
 * ends on the activation scales' end, both kept in memory operands, so the
 * 14 registers suffice. Per group: 80 for the 64 MACs and 20 around. */
static __attribute__((noinline)) void pairs_g32(float *out, const int8_t *w0, const float *s,
                                                const float *xs, int pairs, int cols, int groups) {
    int32_t off = 4 * groups;            /* row 1's scales, in bytes from row 0's */
    const float *xend = xs + groups;     /* the loop's end */
    for (; pairs > 0; pairs--) {
        const int8_t *w1 = w0 + cols;
        const uint32_t *xp = tp_dsp_xw;
        const float *sp = s, *xsp = xs;
        float val0 = 0.0f, val1 = 0.0f;
        int32_t a0, a1;
        uint32_t x0, x1, u0, u1, v0, v1, t;
        __asm__ volatile(
            "1:\n\t"
            "movs %[a0], #0\n\t"
            "movs %[a1], #0\n\t"
            TP_Q8_BLOCK TP_Q8_BLOCK TP_Q8_BLOCK TP_Q8_BLOCK
            "vmov s0, %[a0]\n\t"
            "vmov s1, %[a1]\n\t"
            "vcvt.f32.s32 s0, s0\n\t"
            "vcvt.f32.s32 s1, s1\n\t"
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
              [x1] "=&r"(x1), [u0] "=&r"(u0), [u1] "=&r"(u1), [v0] "=&r"(v0), [v1] "=&r"(v1),
              [t] "=&r"(t)
            : [off] "m"(off), [xend] "m"(xend)
            : "cc", "memory", "s0", "s1", "s2", "s3", "s4");
        out[0] = val0;
        out[1] = val1;
        out += 2;
        w0 = w1; /* w0 ended where row 1 began */
        s += 2 * groups;
    }
}

static __attribute__((noinline)) void pairs_fast(float *out, const int8_t *w0, const float *s,
                                                 const float *xs, int pairs, int cols, int groups,
                                                 int n16) {
    if (n16 == 2 && groups == 2) {
        pairs_64(out, w0, s, xs, pairs);
    } else if (n16 == 2) {
        pairs_g32(out, w0, s, xs, pairs, cols, groups);
    } else {
        pairs_loop(out, w0, s, xs, pairs, cols, groups, n16);
    }
}

/* A group with an unaligned start or a length not a multiple of 4, for two
 * rows: scalar head and tail around the SIMD body. Kept out of line so the
 * common path keeps its registers. */
static __attribute__((noinline)) void group2_edges(const int8_t *w0, const int8_t *w1,
                                                   const int8_t *xq, int j, int end,
                                                   int32_t *acc0, int32_t *acc1) {
    int32_t a0 = 0, a1 = 0;
    for (; j < end && (j & 3); j++) {
        a0 += (int32_t)w0[j] * xq[j];
        a1 += (int32_t)w1[j] * xq[j];
    }
    int n4 = (end - j) >> 2;
    dot2(w0 + j, w1 + j, tp_dsp_xw + (j >> 1), n4, &a0, &a1);
    for (j += 4 * n4; j < end; j++) {
        a0 += (int32_t)w0[j] * xq[j];
        a1 += (int32_t)w1[j] * xq[j];
    }
    *acc0 = a0, *acc1 = a1;
}

static __attribute__((noinline)) int32_t group1_edges(const int8_t *w0, const int8_t *xq, int j,
                                                      int end) {
    int32_t a0 = 0;
    for (; j < end && (j & 3); j++) a0 += (int32_t)w0[j] * xq[j];
    int n4 = (end - j) >> 2;
    a0 = dot1(w0 + j, tp_dsp_xw + (j >> 1), n4, a0);
    for (j += 4 * n4; j < end; j++) a0 += (int32_t)w0[j] * xq[j];
    return a0;
}

void tp_matmul_q8(float *out, const QVector *x, const QTensor *w, int rows, int cols,
                  int group_size) {
    if (cols > TP_DSP_MAX_COLS) {
        rows_scalar(out, x, w, rows, cols, group_size);
        return;
    }
    widen(x->q, cols);
    const int8_t *xq = x->q;
    const float *xs = x->s;
    int groups = (cols + group_size - 1) / group_size;
    /* whole groups of a multiple of 16 columns in word-aligned rows take the
     * assembly loop (LDRD needs alignment); the rest the C loop */
    int n16 = group_size / 16;
    int aligned = ((uintptr_t)w->q & 3u) == 0 && (cols & 3) == 0 && (group_size & 15) == 0;
    int fast_groups = aligned ? cols / group_size : 0;
    int r = 0;
    if (fast_groups == groups && rows >= 2) {
        pairs_fast(out, w->q, w->s, xs, rows / 2, cols, groups, n16);
        r = rows & ~1;
    }
    for (; r + 1 < rows; r += 2) {
        const int8_t *w0 = w->q + (size_t)r * (size_t)cols;
        const int8_t *w1 = w0 + cols;
        const float *s0 = w->s + (size_t)r * (size_t)groups;
        const float *s1 = s0 + groups;
        float val0 = 0.0f, val1 = 0.0f;
        int g = 0;
        if (fast_groups) {
            const int8_t *p0 = w0, *p1 = w1;
            const uint32_t *xp = tp_dsp_xw;
            for (; g < fast_groups; g++) {
                int32_t a0 = 0, a1 = 0;
                block2_aligned(&p0, &p1, &xp, n16, &a0, &a1);
                val0 = val0 + ((float)a0 * s0[g]) * xs[g];
                val1 = val1 + ((float)a1 * s1[g]) * xs[g];
            }
        }
        for (; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t a0 = 0, a1 = 0;
            if (((start | end) & 3) == 0) {
                dot2(w0 + start, w1 + start, tp_dsp_xw + (start >> 1), (end - start) >> 2, &a0, &a1);
            } else {
                group2_edges(w0, w1, xq, start, end, &a0, &a1);
            }
            val0 = val0 + ((float)a0 * s0[g]) * xs[g];
            val1 = val1 + ((float)a1 * s1[g]) * xs[g];
        }
        out[r] = val0;
        out[r + 1] = val1;
    }
    if (r < rows) { /* odd row count: the last row alone */
        const int8_t *w0 = w->q + (size_t)r * (size_t)cols;
        const float *s0 = w->s + (size_t)r * (size_t)groups;
        float val0 = 0.0f;
        for (int g = 0; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t a0;
            if (((start | end) & 3) == 0) {
                a0 = dot1(w0 + start, tp_dsp_xw + (start >> 1), (end - start) >> 2, 0);
            } else {
                a0 = group1_edges(w0, xq, start, end);
            }
            val0 = val0 + ((float)a0 * s0[g]) * xs[g];
        }
        out[r] = val0;
    }
}
