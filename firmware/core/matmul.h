/* The int8 matrix-vector kernel: the one place where the forward pass spends
 * nearly all its time, kept behind one function so a port can swap in an
 * optimised version (e.g. Cortex-M4 SMLAD) by linking a different file in
 * place of matmul.c (Makefile: KERNEL_SRC).
 *
 * Contract for any replacement, from docs/model-format.md: for each row,
 * val = 0.0f; for each group g in order,
 *     acc = sum of q_w * q_x over the group, in int32 (exact, so the integer
 *           products may be summed in any order or in SIMD pairs);
 *     val = val + (float(acc) * w_scale[row, g]) * x_scale[g]
 * with exactly these f32 operations in this order (no FMA). The last group
 * of a row is shorter when group_size does not divide cols. */
#ifndef TP_MATMUL_H
#define TP_MATMUL_H

#include "model.h"

/* A quantized activation vector of length n. */
typedef struct {
    int8_t *q; /* (n,) */
    float *s;  /* (ceil(n/group_size),) one scale per group */
} QVector;

/* out (rows,) = w (rows, cols) @ x (cols,) */
void tp_matmul_q8(float *out, const QVector *x, const QTensor *w, int rows, int cols,
                  int group_size);

/* The same with int4 weights (packed as in model.h, tp_int4_at) and int8
 * activations, under the same contract. Lives in its own file, matmul_q4.c
 * (Makefile: KERNEL_Q4_SRC), so an optimised int4 kernel swaps in alone. */
void tp_matmul_q4(float *out, const QVector *x, const QTensor *w, int rows, int cols,
                  int group_size);

#endif /* TP_MATMUL_H */
