/* Shared state of the Cortex-M4/M7 DSP kernels (matmul_dsp.c, matmul_q4_dsp.c).
 *
 * Both kernels widen the int8 activation vector to int16 pairs once per call,
 * into one static buffer (only one kernel runs at a time), so the row loops
 * spend their instructions on weights. A call with more columns than the
 * buffer holds takes the kernel's scalar path instead: still exact, slower. */
#ifndef TP_MATMUL_DSP_H
#define TP_MATMUL_DSP_H

#include <stdint.h>
#include <string.h>

#ifndef TP_DSP_MAX_COLS
#define TP_DSP_MAX_COLS 1024 /* max(dim, hidden_dim) served by the SIMD path: 2 KB of RAM */
#endif

/* cols/2 words of int16 pairs; layout chosen by the kernel that fills it */
extern uint32_t tp_dsp_xw[TP_DSP_MAX_COLS / 2];

/* Weights need not be word aligned (a row of an odd-width tensor starts
 * anywhere); a 4-byte memcpy compiles to one LDR, which the M4 allows
 * unaligned. */
static inline uint32_t tp_dsp_load32(const void *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* GCC 12's ACLE has no __ror and does not fold a rotate into SXTB16; the
 * instruction's own rotation field saves one instruction per weight word. */
static inline uint32_t sxtb16_ror8(uint32_t v) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

#endif /* TP_MATMUL_DSP_H */
