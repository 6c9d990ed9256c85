/* Fixed-point kernels tuned for RV32 (rv32imac: no SIMD, one multiply per
 * MAC, byte loads that sign-extend for free). The same integers as the
 * portable matmul_fx.c (matmul.h contract); only the loop shape differs:
 *   - four rows at a time, so each activation byte is loaded once for four
 *     multiplies, and eight columns per step with pointers bumped once, so
 *     loads take constant offsets: 3.44 instructions per MAC in the inner
 *     loop (byte load, multiply, add, a quarter of a load, the bumps), where
 *     GCC's own indexing of the plain one-row loop costs 5;
 *   - one branch per group term on the common path (group_term).
 *   - int4 nibbles sign-extended with shifts of the signed byte.
 * Leftover rows (rows % 4) take the one-row loop. */
#include "fixed.h"
#include "matmul.h"

/* One group's term (matmul.h), with one branch on the common path: a zero
 * scale (e == 0) gives a shift of base >= 32, so it joins the rare shifts
 * outside [0, 31] on the slow path. */
static uint32_t group_term_slow(int32_t p, int32_t e, int32_t sh) {
    if (e == 0) return 0u;
    return (uint32_t)tp_fx_shift32(p, sh);
}

static inline uint32_t group_term(int32_t acc, uint32_t u, int32_t packed, int shift) {
    int32_t e = (int32_t)(u >> 23);
    uint32_t wm = ((u << 9) >> 15) | 0x20000u; /* ((u & 0x7FFFFF) | 0x800000) >> 6 */
    int32_t p = acc * (int32_t)((wm * tp_fx_mant(packed)) >> shift);
    int32_t sh = tp_fx_base(packed) - e;
    if ((uint32_t)sh < 32u) return (uint32_t)(p >> sh); /* e == 0: sh = base >= 100 */
    return group_term_slow(p, e, sh);
}

/* ----------------------------------------------------------------------------
 * int8 weights */

/* column k of the current step, for the four rows */
#define STEP4(k)                 \
    {                            \
        int32_t xk = px[k];      \
        a0 += p0[k] * xk;        \
        a1 += p1[k] * xk;        \
        a2 += p2[k] * xk;        \
        a3 += p3[k] * xk;        \
    }

__attribute__((optimize("no-schedule-insns")))
void tp_matmul_q8_fx(int32_t *out, const QVectorFx *x, const QTensor *w, int rows, int cols,
                     int group_size, int shift) {
    int groups = (cols + group_size - 1) / group_size;
    const int8_t *xq = x->q;
    int whole32 = group_size == 32 && cols % 32 == 0;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        /* four row pointers and the activation pointer run through the rows
         * from group to group, bumped once per eight columns, so every byte
         * load has a constant offset */
        const int8_t *p0 = w->q + (size_t)r * (size_t)cols;
        const int8_t *p1 = p0 + cols, *p2 = p1 + cols, *p3 = p2 + cols;
        const int8_t *px = xq;
        const float *s0 = w->s + (size_t)r * (size_t)groups;
        uint32_t v0 = 0, v1 = 0, v2 = 0, v3 = 0;
        for (int g = 0, start = 0; g < groups; g++, start += group_size) {
            const int8_t *pend = xq + (start + group_size < cols ? start + group_size : cols);
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (whole32) {
                /* the usual group of 32, unrolled: no loop control at all */
                STEP4(0) STEP4(1) STEP4(2) STEP4(3) STEP4(4) STEP4(5) STEP4(6) STEP4(7)
                STEP4(8) STEP4(9) STEP4(10) STEP4(11) STEP4(12) STEP4(13) STEP4(14) STEP4(15)
                STEP4(16) STEP4(17) STEP4(18) STEP4(19) STEP4(20) STEP4(21) STEP4(22) STEP4(23)
                STEP4(24) STEP4(25) STEP4(26) STEP4(27) STEP4(28) STEP4(29) STEP4(30) STEP4(31)
                px += 32, p0 += 32, p1 += 32, p2 += 32, p3 += 32;
            }
            /* eight columns per step: each activation byte is loaded once and
             * used at once, so the step needs no more registers than four */
            for (; px + 8 <= pend; px += 8, p0 += 8, p1 += 8, p2 += 8, p3 += 8) {
                STEP4(0) STEP4(1) STEP4(2) STEP4(3) STEP4(4) STEP4(5) STEP4(6) STEP4(7)
            }
            for (; px < pend; px++, p0++, p1++, p2++, p3++) {
                int32_t xj = *px;
                a0 += *p0 * xj;
                a1 += *p1 * xj;
                a2 += *p2 * xj;
                a3 += *p3 * xj;
            }
            int32_t p = x->s[g];
            v0 += group_term(a0, tp_f32_bits(&s0[g]), p, shift);
            v1 += group_term(a1, tp_f32_bits(&s0[groups + g]), p, shift);
            v2 += group_term(a2, tp_f32_bits(&s0[2 * groups + g]), p, shift);
            v3 += group_term(a3, tp_f32_bits(&s0[3 * groups + g]), p, shift);
        }
        out[r] = (int32_t)v0;
        out[r + 1] = (int32_t)v1;
        out[r + 2] = (int32_t)v2;
        out[r + 3] = (int32_t)v3;
    }
    for (; r < rows; r++) {
        const int8_t *wq = w->q + (size_t)r * (size_t)cols;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        uint32_t val = 0;
        for (int g = 0, start = 0; g < groups; g++, start += group_size) {
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t acc = 0;
            for (int j = start; j < end; j++) acc += wq[j] * (int32_t)xq[j];
            val += group_term(acc, tp_f32_bits(&ws[g]), x->s[g], shift);
        }
        out[r] = (int32_t)val;
    }
}

/* ----------------------------------------------------------------------------
 * int4 weights: value j is the low nibble (j even) or high nibble (j odd) of
 * byte j/2; as a signed byte b, the high nibble is b >> 4 and the low one
 * (b << 28) >> 28, both arithmetic. */

static inline int32_t nib(const uint8_t *row, int j) {
    int32_t b = (int8_t)row[j >> 1];
    return (j & 1) ? b >> 4 : (int32_t)((uint32_t)b << 28) >> 28;
}

/* byte k of the current step in the four rows: columns 2k (low nibble) and
 * 2k + 1 (high nibble) */
#define BYTE4(k)                                                       \
    {                                                                  \
        int32_t xl = px[2 * (k)], xh = px[2 * (k) + 1];                \
        int32_t c0 = b0[k], c1 = b1[k], c2 = b2[k], c3 = b3[k];        \
        a0 += ((int32_t)((uint32_t)c0 << 28) >> 28) * xl + (c0 >> 4) * xh; \
        a1 += ((int32_t)((uint32_t)c1 << 28) >> 28) * xl + (c1 >> 4) * xh; \
        a2 += ((int32_t)((uint32_t)c2 << 28) >> 28) * xl + (c2 >> 4) * xh; \
        a3 += ((int32_t)((uint32_t)c3 << 28) >> 28) * xl + (c3 >> 4) * xh; \
    }

__attribute__((optimize("no-schedule-insns")))
void tp_matmul_q4_fx(int32_t *out, const QVectorFx *x, const QTensor *w, int rows, int cols,
                     int group_size, int shift) {
    int groups = (cols + group_size - 1) / group_size;
    size_t rb = (size_t)(cols + 1) / 2;
    const int8_t *xq = x->q;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = (const uint8_t *)w->q + (size_t)r * rb;
        const uint8_t *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
        const float *s0 = w->s + (size_t)r * (size_t)groups;
        uint32_t v0 = 0, v1 = 0, v2 = 0, v3 = 0;
        for (int g = 0, start = 0; g < groups; g++, start += group_size) {
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            int j = start;
            if (j & 1) { /* a group may start mid-byte */
                int32_t xj = xq[j];
                a0 += nib(w0, j) * xj;
                a1 += nib(w1, j) * xj;
                a2 += nib(w2, j) * xj;
                a3 += nib(w3, j) * xj;
                j++;
            }
            /* eight columns (four bytes of each row) per step, pointers
             * bumped once so the loads take constant offsets */
            const int8_t *px = xq + j;
            const int8_t *b0 = (const int8_t *)w0 + (j >> 1), *b1 = (const int8_t *)w1 + (j >> 1);
            const int8_t *b2 = (const int8_t *)w2 + (j >> 1), *b3 = (const int8_t *)w3 + (j >> 1);
            for (; j + 8 <= end; j += 8, px += 8, b0 += 4, b1 += 4, b2 += 4, b3 += 4) {
                BYTE4(0) BYTE4(1) BYTE4(2) BYTE4(3)
            }
            for (; j + 1 < end; j += 2, px += 2, b0++, b1++, b2++, b3++) {
                BYTE4(0)
            }
            if (j < end) {
                int32_t xj = xq[j];
                a0 += nib(w0, j) * xj;
                a1 += nib(w1, j) * xj;
                a2 += nib(w2, j) * xj;
                a3 += nib(w3, j) * xj;
            }
            int32_t p = x->s[g];
            v0 += group_term(a0, tp_f32_bits(&s0[g]), p, shift);
            v1 += group_term(a1, tp_f32_bits(&s0[groups + g]), p, shift);
            v2 += group_term(a2, tp_f32_bits(&s0[2 * groups + g]), p, shift);
            v3 += group_term(a3, tp_f32_bits(&s0[3 * groups + g]), p, shift);
        }
        out[r] = (int32_t)v0;
        out[r + 1] = (int32_t)v1;
        out[r + 2] = (int32_t)v2;
        out[r + 3] = (int32_t)v3;
    }
    for (; r < rows; r++) {
        const uint8_t *wq = (const uint8_t *)w->q + (size_t)r * rb;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        uint32_t val = 0;
        for (int g = 0, start = 0; g < groups; g++, start += group_size) {
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t acc = 0;
            for (int j = start; j < end; j++) acc += nib(wq, j) * (int32_t)xq[j];
            val += group_term(acc, tp_f32_bits(&ws[g]), x->s[g], shift);
        }
        out[r] = (int32_t)val;
    }
}
