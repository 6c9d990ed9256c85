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

/* ----------------------------------------------------------------------------
 * Fixed-point kernels (TP_FIXED_POINT=1, docs/model-format.md "Fixed-point
 * arithmetic"): the same integer group dots, then per (row, group), with u
 * the bits of the f32 weight scale, e = u >> 23 and (base, m) the packed
 * activation scale (fixed.h):
 *     skip the group when e == 0;
 *     wm = ((u & 0x7FFFFF) | 0x800000) >> 6;       18 bits
 *     cm = (wm * m) >> shift;                        uint32, shift per model
 *     val = val + shift32(acc * cm, base - e)        int32, wraps mod 2^32
 * where shift32(v, s) is floor(v / 2^min(s, 31)), or v * 2^min(-s, 31)
 * mod 2^32 when s < 0. shift is chosen so acc * cm always fits int32.
 * core/matmul_fx.c is the portable version, core/matmul_fx_rv32.c the
 * RV32 one (Makefile: KERNELS=portable picks the former). */

typedef struct {
    int8_t *q;  /* (n,) */
    int32_t *s; /* (ceil(n/group_size),) packed (base, mantissa), fixed.h */
} QVectorFx;

/* out (rows,) Q16 = w (rows, cols) @ x (cols,); int8 and int4 weights. */
void tp_matmul_q8_fx(int32_t *out, const QVectorFx *x, const QTensor *w, int rows, int cols,
                     int group_size, int shift);
void tp_matmul_q4_fx(int32_t *out, const QVectorFx *x, const QTensor *w, int rows, int cols,
                     int group_size, int shift);

#endif /* TP_MATMUL_H */
