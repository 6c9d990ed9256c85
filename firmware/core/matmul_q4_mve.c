/* Helium (MVE) kernel for tp_matmul_q4, Cortex-M55 (KERNELS=helium): int4
 * weights, int8 activations, the contract of matmul.h and the group step of
 * matmul_mve.c.
 *
 * A byte holds value 2k in its low nibble and 2k+1 in its high one. For 16
 * bytes (32 values) VSHL #4 leaves 16 * low and VAND 0xF0 leaves 16 * high,
 * both as int8 (two's complement nibbles shifted to the top), so with x split
 * once per call into its even and odd elements (VLD2: 32 bytes into two
 * vectors)
 *     16 * acc = dot(b << 4, x_even) + dot(b & 0xF0, x_odd)
 * in two VMLADAVAs, and an arithmetic shift right by 4 of the four rows'
 * sums gives acc exactly. Four rows at a time, as the int8 kernel.
 *
 * The vector path needs groups of a multiple of 32 values (whole bytes, 16 at
 * a time); a short last group that is not a multiple of 32 is summed value by
 * value for the four rows (times 16, for the common shift); other group sizes
 * and the last rows past a multiple of four take the portable loop. */
#include <arm_mve.h>

#include "matmul.h"

static float group_portable(const uint8_t *wq, const QVector *x, int start, int end, float val, float ws,
                            float xs) {
    int32_t acc = 0;
    for (int j = start; j < end; j++) acc += tp_int4_at(wq, j) * (int32_t)x->q[j];
    return val + ((float)acc * ws) * xs;
}

static void rows_portable(float *out, const QVector *x, const QTensor *w, int r0, int rows, int cols,
                          int group_size) {
    int groups = (cols + group_size - 1) / group_size;
    size_t row_bytes = (size_t)(cols + 1) / 2;
    for (int r = r0; r < rows; r++) {
        const uint8_t *wq = (const uint8_t *)w->q + (size_t)r * row_bytes;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        float val = 0.0f;
        for (int g = 0; g < groups; g++) {
            int start = g * group_size;
            int end = start + group_size < cols ? start + group_size : cols;
            val = group_portable(wq, x, start, end, val, ws[g], x->s[g]);
        }
        out[r] = val;
    }
}

/* All `quads` row quads of a matrix whose rows are whole groups of 32
 * (cols = 32 * groups, 16 bytes a group), in one loop, as quads_gs32 in
 * matmul_mve.c: 32 instructions per 128 MACs. q6 holds 0xF0 in every byte;
 * the values used only between quads wait in blk[]. */
static void quads_q4_gs32(float *out, const int8_t *w0, const int8_t *xq, const float *xs, const float *ws,
                          int cols, int quads) {
    int groups = cols / 32;
    uint32_t blk[12] = {(uint32_t)(uintptr_t)xq, (uint32_t)(uintptr_t)xs, (uint32_t)(cols / 2), (uint32_t)groups,
                        (uint32_t)quads, (uint32_t)(16 * groups - 4 * groups), 0, 0};
    for (int k = 0; k < 4; k++) blk[8 + k] = (uint32_t)(uintptr_t)(ws + k * groups) - 4u;
    /* VMLADAV's sum must be an even register: every register placed by hand */
    register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
    register const int8_t *p0 __asm__("r1") = w0, *p1 __asm__("r3"), *p2 __asm__("r5"), *p3 __asm__("r8");
    register const int8_t *px __asm__("r9");
    register const float *ps __asm__("r10");
    register uint32_t *pb __asm__("r11") = blk;
    register float *po __asm__("r12") = out;
#define TP_Q4_ROW(W, A)                          \
        "vldrb.u8 q2, [%[" W "]], #16\n\t"       \
        "vshl.i8 q3, q2, #4\n\t"                 \
        "vand q2, q2, q6\n\t"                    \
        "vmladav.s8 %[" A "], q3, q0\n\t"        \
        "vmladava.s8 %[" A "], q2, q1\n\t"
    __asm volatile(
        "vldrw.u32 q4, [%[blk], #32]\n\t"
        "vmov.i8 q6, #0xF0\n\t"
        "ldr %[a0], [%[blk], #8]\n\t"
        "add %[w1], %[w0], %[a0]\n\t"
        "add %[w2], %[w1], %[a0]\n\t"
        "add %[w3], %[w2], %[a0]\n"
        "2:\n\t"
        "vmov.i32 q5, #0\n\t"
        "ldr %[x], [%[blk]]\n\t"
        "ldr %[xs], [%[blk], #4]\n\t"
        "ldr %[a0], [%[blk], #12]\n\t"
        "dls lr, %[a0]\n"
        "1:\n\t"
        "vld20.8 {q0, q1}, [%[x]]\n\t"
        "vld21.8 {q0, q1}, [%[x]]!\n\t"
        TP_Q4_ROW("w0", "a0") TP_Q4_ROW("w1", "a1") TP_Q4_ROW("w2", "a2") TP_Q4_ROW("w3", "a3")
        "vmov q2[2], q2[0], %[a0], %[a2]\n\t"
        "vmov q2[3], q2[1], %[a1], %[a3]\n\t"
        "vshr.s32 q2, q2, #4\n\t"
        "vcvt.f32.s32 q2, q2\n\t"
        "vldrw.u32 q3, [q4, #4]!\n\t"
        "vmul.f32 q2, q2, q3\n\t"
        "ldr %[a0], [%[xs]], #4\n\t"
        "vmul.f32 q2, q2, %[a0]\n\t"
        "vadd.f32 q5, q5, q2\n\t"
        "le lr, 1b\n\t"
        "vstrw.32 q5, [%[out]], #16\n\t"
        "ldr %[a0], [%[blk], #20]\n\t"
        "vadd.i32 q4, q4, %[a0]\n\t"
        "ldr %[a0], [%[blk], #8]\n\t"
        "mov %[w0], %[w3]\n\t"
        "add %[w1], %[w0], %[a0]\n\t"
        "add %[w2], %[w1], %[a0]\n\t"
        "add %[w3], %[w2], %[a0]\n\t"
        "ldr %[a0], [%[blk], #16]\n\t"
        "subs %[a0], #1\n\t"
        "str %[a0], [%[blk], #16]\n\t"
        "bne 2b"
        : [w0] "+&r"(p0), [w1] "=&r"(p1), [w2] "=&r"(p2), [w3] "=&r"(p3), [x] "=&r"(px), [xs] "=&r"(ps),
          [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [out] "+&r"(po)
        : [blk] "r"(pb)
        : "lr", "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
          "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27");
#undef TP_Q4_ROW
}

void tp_matmul_q4(float *out, const QVector *x, const QTensor *w, int rows, int cols, int group_size) {
    int full = cols / group_size;
    int tail = cols - full * group_size; /* a short last group, 0 if none */
    if (group_size % 32 != 0) {
        rows_portable(out, x, w, 0, rows, cols, group_size);
        return;
    }
    int groups = full + (tail != 0);
    size_t row_bytes = (size_t)(cols + 1) / 2;
    uint32x4_t lanes = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)groups);
    const uint8x16_t high = vdupq_n_u8(0xF0);
    int r = 0;
    if (group_size == 32 && cols % 32 == 0 && rows >= 4) {
        quads_q4_gs32(out, w->q, x->q, x->s, w->s, cols, rows / 4);
        r = rows - rows % 4;
    }
    for (; r + 4 <= rows; r += 4) {
        const int8_t *w0 = w->q + (size_t)r * row_bytes;
        const int8_t *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        const int8_t *xq = x->q;
        float32x4_t val = vdupq_n_f32(0.0f);
        for (int g = 0; g < groups; g++) {
            int len = g < full ? group_size : tail;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (len % 32 != 0) { /* a short last group: 16 * acc row by row */
                const uint8_t *b0 = (const uint8_t *)w->q + (size_t)r * row_bytes;
                int start = full * group_size;
                for (int j = start; j < cols; j++) {
                    int32_t xj = x->q[j];
                    a0 += tp_int4_at(b0, j) * xj;
                    a1 += tp_int4_at(b0 + row_bytes, j) * xj;
                    a2 += tp_int4_at(b0 + 2 * row_bytes, j) * xj;
                    a3 += tp_int4_at(b0 + 3 * row_bytes, j) * xj;
                }
                a0 *= 16, a1 *= 16, a2 *= 16, a3 *= 16;
            }
            for (int c = 0; c < (len % 32 ? 0 : len); c += 32) {
                int8x16x2_t xv = vld2q_s8(xq); /* val[0]: even elements, val[1]: odd */
                int8x16_t b;
                b = vldrbq_s8(w0);
                a0 = vmladavaq_s8(vmladavaq_s8(a0, vshlq_n_s8(b, 4), xv.val[0]),
                                  vreinterpretq_s8_u8(vandq_u8(vreinterpretq_u8_s8(b), high)), xv.val[1]);
                b = vldrbq_s8(w1);
                a1 = vmladavaq_s8(vmladavaq_s8(a1, vshlq_n_s8(b, 4), xv.val[0]),
                                  vreinterpretq_s8_u8(vandq_u8(vreinterpretq_u8_s8(b), high)), xv.val[1]);
                b = vldrbq_s8(w2);
                a2 = vmladavaq_s8(vmladavaq_s8(a2, vshlq_n_s8(b, 4), xv.val[0]),
                                  vreinterpretq_s8_u8(vandq_u8(vreinterpretq_u8_s8(b), high)), xv.val[1]);
                b = vldrbq_s8(w3);
                a3 = vmladavaq_s8(vmladavaq_s8(a3, vshlq_n_s8(b, 4), xv.val[0]),
                                  vreinterpretq_s8_u8(vandq_u8(vreinterpretq_u8_s8(b), high)), xv.val[1]);
                xq += 32, w0 += 16, w1 += 16, w2 += 16, w3 += 16;
            }
            int32x4_t acc16 = vsetq_lane_s32(a3, vsetq_lane_s32(a2, vsetq_lane_s32(a1, vdupq_n_s32(a0), 1), 2), 3);
            float32x4_t f = vmulq_f32(vcvtq_f32_s32(vshrq_n_s32(acc16, 4)),
                                      vldrwq_gather_shifted_offset_f32(ws + g, lanes));
            val = vaddq_f32(val, vmulq_n_f32(f, x->s[g]));
        }
        vst1q_f32(out + r, val);
    }
    rows_portable(out, x, w, r, rows, cols, group_size);
}
