/* Helium (MVE) kernel for tp_matmul_q8, Cortex-M55 (KERNELS=helium). See
 * matmul.h for the contract; the arithmetic is the portable kernel's.
 *
 * Four rows at a time. Per 16 columns: one load of x shared by the rows, one
 * load of 16 weights per row and one VMLADAVA per row (16 int8 MACs into a
 * 32-bit sum, exact). Per group the four sums become one float vector, one
 * lane per row, and take the group step lane by lane:
 *     val = val + (float(acc) * w_scale[row, g]) * x_scale[g]
 * (VCVT, VMUL by the four rows' scales, VMUL by x's scale, VADD). Each lane is
 * one row's own left-to-right sum, so the vector does what the scalar loop
 * does, one row per lane. Helium float instructions flush subnormals
 * (docs/hardware.md); scales and their products are normal numbers.
 *
 * Whole groups whose length is a multiple of 16 take the vector path; a
 * short last group is read with tail predication (VCTP: the lanes past the
 * end load zeros); rows past a multiple of four, and group sizes that are not
 * multiples of 16, take the portable loop. */
#include <arm_mve.h>

#include "matmul.h"

static void rows_portable(float *out, const QVector *x, const QTensor *w, int r0, int rows, int cols,
                          int group_size) {
    int groups = (cols + group_size - 1) / group_size;
    for (int r = r0; r < rows; r++) {
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

void tp_matmul_q8(float *out, const QVector *x, const QTensor *w, int rows, int cols, int group_size) {
    if (group_size % 16 != 0) {
        rows_portable(out, x, w, 0, rows, cols, group_size);
        return;
    }
    int groups = (cols + group_size - 1) / group_size;
    int full = cols / group_size; /* whole groups; a short one may follow */
    /* the four rows' scales of group g: ws[(r + lane) * groups + g], one gather */
    uint32x4_t lanes = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)groups);
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const int8_t *w0 = w->q + (size_t)r * (size_t)cols;
        const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        const int8_t *xq = x->q;
        float32x4_t val = vdupq_n_f32(0.0f);
        for (int g = 0; g < groups; g++) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (g < full) {
                for (int c = 0; c < group_size; c += 16) {
                    int8x16_t xv = vldrbq_s8(xq);
                    a0 = vmladavaq_s8(a0, vldrbq_s8(w0), xv);
                    a1 = vmladavaq_s8(a1, vldrbq_s8(w1), xv);
                    a2 = vmladavaq_s8(a2, vldrbq_s8(w2), xv);
                    a3 = vmladavaq_s8(a3, vldrbq_s8(w3), xv);
                    xq += 16, w0 += 16, w1 += 16, w2 += 16, w3 += 16;
                }
            } else {
                for (int left = cols - full * group_size; left > 0; left -= 16) {
                    mve_pred16_t p = vctp8q((uint32_t)left);
                    int8x16_t xv = vldrbq_z_s8(xq, p);
                    a0 = vmladavaq_s8(a0, vldrbq_z_s8(w0, p), xv);
                    a1 = vmladavaq_s8(a1, vldrbq_z_s8(w1, p), xv);
                    a2 = vmladavaq_s8(a2, vldrbq_z_s8(w2, p), xv);
                    a3 = vmladavaq_s8(a3, vldrbq_z_s8(w3, p), xv);
                    xq += 16, w0 += 16, w1 += 16, w2 += 16, w3 += 16;
                }
            }
            int32x4_t acc = vsetq_lane_s32(a3, vsetq_lane_s32(a2, vsetq_lane_s32(a1, vdupq_n_s32(a0), 1), 2), 3);
            float32x4_t f = vmulq_f32(vcvtq_f32_s32(acc), vldrwq_gather_shifted_offset_f32(ws + g, lanes));
            val = vaddq_f32(val, vmulq_n_f32(f, x->s[g]));
        }
        vst1q_f32(out + r, val);
    }
    rows_portable(out, x, w, r, rows, cols, group_size);
}
