/* Portable reference kernel for tp_matmul_q8: plain C loops, no intrinsics.
 * See matmul.h for the contract an optimised kernel must keep. */
#include "matmul.h"

void tp_matmul_q8(float *out, const QVector *x, const QTensor *w, int rows, int cols,
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
            for (int j = start; j < end; j++) {
                acc += (int32_t)wq[j] * (int32_t)x->q[j];
            }
            val = val + ((float)acc * ws[g]) * x->s[g];
        }
        out[r] = val;
    }
}
