/* Portable reference kernel for tp_matmul_q4: int4 weights unpacked one value
 * at a time in registers, int8 activations. See matmul.h for the contract an
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
            for (int j = start; j < end; j++) {
                acc += tp_int4_at(wq, j) * (int32_t)x->q[j];
            }
            val = val + ((float)acc * ws[g]) * x->s[g];
        }
        out[r] = val;
    }
}
