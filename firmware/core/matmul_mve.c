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

/* One group of 32 for four rows: x's 32 bytes against each row's (two
 * VMLADAVs a row), the four sums to floats, times the rows' scales (q4, a
 * group on) and x's, added to q5. The body of rows4_gs32's and quads_gs32's
 * group loops. */
#define TP_Q8_GS32_GROUP                      \
        "vldrb.u8 q0, [%[x]], #16\n\t"        \
        "vldrb.u8 q1, [%[w0]], #16\n\t"       \
        "vmladav.s8 %[a0], q1, q0\n\t"        \
        "vldrb.u8 q1, [%[w1]], #16\n\t"       \
        "vmladav.s8 %[a1], q1, q0\n\t"        \
        "vldrb.u8 q1, [%[w2]], #16\n\t"       \
        "vmladav.s8 %[a2], q1, q0\n\t"        \
        "vldrb.u8 q1, [%[w3]], #16\n\t"       \
        "vmladav.s8 %[a3], q1, q0\n\t"        \
        "vldrb.u8 q0, [%[x]], #16\n\t"        \
        "vldrb.u8 q1, [%[w0]], #16\n\t"       \
        "vmladava.s8 %[a0], q1, q0\n\t"       \
        "vldrb.u8 q1, [%[w1]], #16\n\t"       \
        "vmladava.s8 %[a1], q1, q0\n\t"       \
        "vldrb.u8 q1, [%[w2]], #16\n\t"       \
        "vmladava.s8 %[a2], q1, q0\n\t"       \
        "vldrb.u8 q1, [%[w3]], #16\n\t"       \
        "vmladava.s8 %[a3], q1, q0\n\t"       \
        "vmov q2[2], q2[0], %[a0], %[a2]\n\t" \
        "vmov q2[3], q2[1], %[a1], %[a3]\n\t" \
        "vcvt.f32.s32 q2, q2\n\t"             \
        "vldrw.u32 q3, [q4, #4]!\n\t"         \
        "vmul.f32 q2, q2, q3\n\t"             \
        "ldr %[a0], [%[xs]], #4\n\t"          \
        "vmul.f32 q2, q2, %[a0]\n\t"          \
        "vadd.f32 q5, q5, q2\n\t"

/* Four rows times `n` whole groups of 32 (groups of 32 are the models' and
 * the acceptance shape's): 27 instructions per 128 MACs. q4 holds the four
 * rows' scale addresses minus 4 (VLDRW's writeback steps them a group at a
 * time), q5 the four sums, stored to out[0..3] at the end. The rows run
 * `cols` bytes apart. */
static void rows4_gs32(float *out, const int8_t *w0, size_t cols, const int8_t *xq, const float *xs,
                       const float *ws, int groups, int n) {
    /* out[] carries the scale addresses in (one register fewer) */
    uint32_t *sa = (uint32_t *)(void *)out;
    for (int k = 0; k < 4; k++) sa[k] = (uint32_t)(uintptr_t)(ws + k * groups) - 4u;
    /* VMLADAV's sum must be an even register: every register placed by hand */
    register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
    register const int8_t *p0 __asm__("r1") = w0, *p1 __asm__("r3") = w0 + cols;
    register const int8_t *p2 __asm__("r5") = w0 + 2 * cols, *p3 __asm__("r8") = w0 + 3 * cols;
    register const int8_t *px __asm__("r9") = xq;
    register const float *ps __asm__("r10") = xs;
    register float *po __asm__("r11") = out;
    register int pn __asm__("r12") = n;
    __asm volatile(
        "vldrw.u32 q4, [%[out]]\n\t"
        "vmov.i32 q5, #0\n\t"
        "dls lr, %[n]\n"
        "1:\n\t"
        TP_Q8_GS32_GROUP
        "le lr, 1b\n\t"
        "vstrw.32 q5, [%[out]]"
        : [w0] "+&r"(p0), [w1] "+&r"(p1), [w2] "+&r"(p2), [w3] "+&r"(p3), [x] "+&r"(px), [xs] "+&r"(ps),
          [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3)
        : [n] "r"(pn), [out] "r"(po)
        : "lr", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
          "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23");
}

/* All `quads` row quads of a matrix whose rows are whole groups of 32
 * (cols = 32 * groups), in one loop: rows4_gs32's group body, and between
 * quads the next four row pointers (the fourth row's end is the next
 * quad's first row), the scale addresses a quad on, x and its scales back
 * to their start. The values used only between quads wait in blk[]. */
static void quads_gs32(float *out, const int8_t *w0, const int8_t *xq, const float *xs, const float *ws,
                       int cols, int quads) {
    int groups = cols / 32;
    uint32_t blk[12] = {(uint32_t)(uintptr_t)xq, (uint32_t)(uintptr_t)xs, (uint32_t)cols, (uint32_t)groups,
                        (uint32_t)quads, (uint32_t)(16 * groups - 4 * groups), 0, 0};
    for (int k = 0; k < 4; k++) blk[8 + k] = (uint32_t)(uintptr_t)(ws + k * groups) - 4u;
    register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
    register const int8_t *p0 __asm__("r1") = w0, *p1 __asm__("r3"), *p2 __asm__("r5"), *p3 __asm__("r8");
    register const int8_t *px __asm__("r9");
    register const float *ps __asm__("r10");
    register uint32_t *pb __asm__("r11") = blk;
    register float *po __asm__("r12") = out;
    __asm volatile(
        "vldrw.u32 q4, [%[blk], #32]\n\t"
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
        TP_Q8_GS32_GROUP
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
          "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23");
}
#undef TP_Q8_GS32_GROUP

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
    if (group_size == 32 && cols % 32 == 0 && rows >= 4) {
        quads_gs32(out, w->q, x->q, x->s, w->s, cols, rows / 4);
        r = rows - rows % 4;
    }
    for (; r + 4 <= rows; r += 4) {
        const int8_t *w0 = w->q + (size_t)r * (size_t)cols;
        const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        const float *ws = w->s + (size_t)r * (size_t)groups;
        const int8_t *xq = x->q;
        float32x4_t val = vdupq_n_f32(0.0f);
        int g = 0;
        if (group_size == 32 && full > 0) {
            rows4_gs32(out + r, w0, (size_t)cols, xq, x->s, ws, groups, full);
            val = vld1q_f32(out + r);
            g = full;
            xq += full * 32, w0 += full * 32, w1 += full * 32, w2 += full * 32, w3 += full * 32;
        }
        for (; g < groups; g++) {
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
