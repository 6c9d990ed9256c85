/* Portable fixed-point kernels for tp_matmul_q8_fx / tp_matmul_q4_fx: plain
 * C loops, one row at a time. See matmul.h for the contract; the RV32
 * version (matmul_fx_rv32.c) must give the same integers. */
#include "fixed.h"
#include "matmul.h"

/* One group's contribution to a row (matmul.h), from the exact dot acc. */
static inline uint32_t group_term(int32_t acc, uint32_t u, int32_t packed, int shift) {
    int32_t e = (int32_t)(u >> 23);
    if (e == 0) return 0u; /* zero (or subnormal) scale */
    uint32_t wm = ((u & 0x7FFFFFu) | 0x800000u) >> 6;
    uint32_t cm = (wm * tp_fx_mant(packed)) >> shift;
    return (uint32_t)tp_fx_shift32(acc * (int32_t)cm, tp_fx_base(packed) - e);
}

void tp_matmul_q8_fx(int32_t *out, const QVectorFx *x, const QTensor *w, int rows, int cols,
                     int group_size, int shift) {
    int groups = (cols + group_size - 1) / group_size;
    for (int r = 0; r < rows; r++) {
        const int8_t *wq = w->q + (size_t)r * (size_t)cols;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        uint32_t val = 0;
        for (int g = 0; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t acc = 0;
            for (int j = start; j < end; j++) {
                acc += (int32_t)wq[j] * (int32_t)x->q[j];
            }
            val += group_term(acc, tp_f32_bits(&ws[g]), x->s[g], shift);
        }
        out[r] = (int32_t)val;
    }
}

void tp_matmul_q4_fx(int32_t *out, const QVectorFx *x, const QTensor *w, int rows, int cols,
                     int group_size, int shift) {
    int groups = (cols + group_size - 1) / group_size;
    size_t row_bytes = (size_t)(cols + 1) / 2;
    for (int r = 0; r < rows; r++) {
        const uint8_t *wq = (const uint8_t *)w->q + (size_t)r * row_bytes;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        uint32_t val = 0;
        for (int g = 0; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t acc = 0;
            for (int j = start; j < end; j++) {
                acc += tp_int4_at(wq, j) * (int32_t)x->q[j];
            }
            val += group_term(acc, tp_f32_bits(&ws[g]), x->s[g], shift);
        }
        out[r] = (int32_t)val;
    }
}
