/* Portable reference kernel for tp_matmul_q4: int4 weights unpacked a byte
 * (two values) at a time in registers, int8 activations. See matmul.h for the contract an
 * optimised kernel must keep (the float operations are those of the int8
 * kernel; only where the weight integers come from differs). */
#include "matmul.h"

void tp_matmul_q4(float *out, const QVector *x, const QTensor *w, int rows, int cols,
                  int group_size) {
    int groups = (cols + group_size - 1) / group_size;
    size_t row_bytes = (size_t)(cols + 1) / 2;
    for (int r = 0; r < rows; r++) {
        const uint8_t *wq = (const uint8_t *)w->q + (size_t)r * row_bytes;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        float val = 0.0f;
        for (int g = 0; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            int32_t acc = 0;
            int j = start;
            if (j & 1) { /* an odd group_size can start a group mid-byte */
                acc += tp_int4_at(wq, j) * (int32_t)x->q[j];
                j++;
            }
            for (; j + 1 < end; j += 2) { /* one byte, two values */
                uint32_t b = wq[j >> 1];
                int32_t lo = (int32_t)((b & 15u) ^ 8u) - 8;
                int32_t hi = (int32_t)((b >> 4) ^ 8u) - 8;
                acc += lo * (int32_t)x->q[j] + hi * (int32_t)x->q[j + 1];
            }
            if (j < end) {
                acc += tp_int4_at(wq, j) * (int32_t)x->q[j];
            }
            val = val + ((float)acc * ws[g]) * x->s[g];
        }
        out[r] = val;
    }
}
