/* The f32 forward pass with Helium (MVE) for the Cortex-M55 (KERNELS=helium,
 * TP_KERNELS_HELIUM=1): the same operations in the same order as
 * transformer.c and docs/model-format.md, so the logits equal the host
 * reference's bit for bit; transformer.c keeps the run state and its own
 * tp_forward for every other kernel set. The matmuls are matmul_mve.c and
 * matmul_q4_mve.c.
 *
 * What runs on vectors: exp (four lanes of tp_exp's steps), the attention
 * scores (integer q.k in VMLADAV over int16 or int8 lanes, then their float
 * steps four positions at a time), the weighted sum of values (four value
 * elements per instruction, each lane its own left-to-right sum over the
 * positions), the rmsnorm scaling and the residual adds. What stays scalar:
 * every division (Helium has none), the left-to-right sums of rmsnorm and
 * softmax, and quantize's rounding.
 *
 * Helium's float instructions flush subnormals to zero (they run under the
 * standard FPSCR value); see docs/hardware.md for why that never changes a
 * result here: every vector float operation either sees normal numbers or
 * adds its result to one. */
#include "transformer.h"

#if TP_KERNELS_HELIUM && !TP_FIXED_POINT

#include <arm_mve.h>
#include <stddef.h>

static inline float sqrt_f32(float x) { return __builtin_sqrtf(x); }

/* ----------------------------------------------------------------------------
 * exp, four lanes: tp_exp's exp_core step by step (transformer.c). The
 * truncating VCVT and the step down when float(n) > t make n = floor(t). */
static inline __attribute__((always_inline)) float32x4_t exp4_core(float32x4_t x) {
    float32x4_t t = vaddq_n_f32(vmulq_n_f32(x, 1.44269504f), 0.5f);
    int32x4_t n = vcvtq_s32_f32(t);
    float32x4_t fn = vcvtq_f32_s32(n);
    mve_pred16_t down = vcmpgtq_f32(fn, t);
    n = vsubq_m_n_s32(n, n, 1, down);
    fn = vsubq_m_n_f32(fn, fn, 1.0f, down);
    float32x4_t r = vsubq_f32(x, vmulq_n_f32(fn, 0.693145751953125f));
    r = vsubq_f32(r, vmulq_n_f32(fn, 1.428606765330187e-06f));
    float32x4_t p = vaddq_n_f32(vmulq_n_f32(r, 1.38888889e-3f), 8.33333333e-3f);
    p = vaddq_n_f32(vmulq_f32(p, r), 4.16666667e-2f);
    p = vaddq_n_f32(vmulq_f32(p, r), 1.66666667e-1f);
    p = vaddq_n_f32(vmulq_f32(p, r), 0.5f);
    p = vaddq_n_f32(vmulq_f32(p, r), 1.0f);
    p = vaddq_n_f32(vmulq_f32(p, r), 1.0f);
    int32x4_t two_n = vshlq_n_s32(vaddq_n_s32(n, 127), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(two_n));
}

/* ----------------------------------------------------------------------------
 * rmsnorm, quantize: transformer.c's arithmetic. */

static void rmsnorm(float *out, const float *x, const float *w, int n) {
    float ss = 0.0f;
    int n4 = n / 4;
    if (n4 > 0) {
        /* four elements a pass loaded as a vector; squares and sum on its
         * lanes in scalar (the left-to-right order, no flush) */
        const float *p = x;
        __asm volatile(
            "dls lr, %[n4]\n"
            "1:\n\t"
            "vldrw.u32 q0, [%[p]], #16\n\t"
            "vmul.f32 s0, s0, s0\n\t"
            "vmul.f32 s1, s1, s1\n\t"
            "vmul.f32 s2, s2, s2\n\t"
            "vmul.f32 s3, s3, s3\n\t"
            "vadd.f32 %[ss], %[ss], s0\n\t"
            "vadd.f32 %[ss], %[ss], s1\n\t"
            "vadd.f32 %[ss], %[ss], s2\n\t"
            "vadd.f32 %[ss], %[ss], s3\n\t"
            "le lr, 1b"
            : [p] "+&r"(p), [ss] "+&t"(ss)
            : [n4] "r"(n4)
            : "lr", "memory", "s0", "s1", "s2", "s3");
    }
    for (int j = 4 * n4; j < n; j++) ss = ss + x[j] * x[j];
    ss = ss / (float)n;
    ss = ss + 1e-5f;
    ss = 1.0f / sqrt_f32(ss);
    int j = 0;
    for (; j + 4 <= n; j += 4) vst1q_f32(out + j, vmulq_f32(vld1q_f32(w + j), vmulq_n_f32(vld1q_f32(x + j), ss)));
    for (; j < n; j++) out[j] = w[j] * (ss * x[j]);
}

static inline int quantize_one(float xi, float scale) {
    float v = xi / scale;
    int r = (int)(__builtin_fabsf(v) + 0.5f);
    r = (int)__builtin_arm_usat(r, 7);
    union { float f; int32_t i; } bits = {xi};
    int32_t m = bits.i >> 31;
    return (r ^ m) - m;
}

/* Four elements a pass: x in q0, its quotients by the scale straight into
 * the lanes of q1 (s4..s7: the scalar VDIV, exact as the host's), the
 * rounding, clamp and sign on q1 (14 instructions per four). */
static void quantize4(int8_t *q, const float *x, int n4, float scale) {
    union { float f; uint32_t u; } half = {0.5f};
    __asm volatile(
        "vmov.i32 q3, #127\n\t"
        "dls lr, %[n]\n"
        "1:\n\t"
        "vldrw.u32 q0, [%[x]], #16\n\t"
        "vdiv.f32 s4, s0, %[sc]\n\t"
        "vdiv.f32 s5, s1, %[sc]\n\t"
        "vdiv.f32 s6, s2, %[sc]\n\t"
        "vdiv.f32 s7, s3, %[sc]\n\t"
        "vabs.f32 q1, q1\n\t"
        "vadd.f32 q1, q1, %[half]\n\t"
        "vcvt.s32.f32 q1, q1\n\t"
        "vmin.s32 q1, q1, q3\n\t"
        "vshr.s32 q0, q0, #31\n\t"
        "veor q1, q1, q0\n\t"
        "vsub.i32 q1, q1, q0\n\t"
        "vstrb.32 q1, [%[q]], #4\n\t"
        "le lr, 1b"
        : [x] "+&r"(x), [q] "+&l"(q) /* VSTRB.32 wants a low register */
        : [n] "r"(n4), [sc] "t"(scale), [half] "r"(half.u)
        : "lr", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s12", "s13", "s14", "s15");
}

static void quantize(QVector *qx, const float *x, int n, int group_size) {
    int8_t *q = qx->q;
    float *qs = qx->s;
    for (int start = 0; start < n; start += group_size) {
        int len = n - start < group_size ? n - start : group_size;
        const float *xg = x + start;
        int8_t *qg = q + start;
        /* the largest |x|, on the bits (sign dropped by the shift): exact */
        uint32_t m2 = 0;
        int i = 0;
        for (; i + 4 <= len; i += 4) m2 = vmaxvq_u32(m2, vshlq_n_u32(vld1q_u32((const uint32_t *)(xg + i)), 1));
        for (; i < len; i++) {
            union { float f; uint32_t u; } b = {xg[i]};
            m2 = (b.u << 1) > m2 ? b.u << 1 : m2;
        }
        union { uint32_t u; float f; } amax = {m2 >> 1};
        float scale = amax.f / 127.0f;
        *qs++ = scale;
        if (scale == 0.0f) {
            for (i = 0; i < len; i++) qg[i] = 0;
            continue;
        }
        /* v = x / scale in scalar (Helium has no division), the rounding on
         * four lanes: r = min(floor(|v| + 0.5), 127) (VCVT truncates, and
         * |v| + 0.5 >= 0), the sign of x put back as (r ^ m) - m with m its
         * sign bit spread */
        i = len & ~3;
        if (i > 0) quantize4(qg, xg, i / 4, scale);
        for (; i < len; i++) qg[i] = (int8_t)quantize_one(xg[i], scale);
    }
}

/* ----------------------------------------------------------------------------
 * Attention of one query head over positions 0..n-1 of its kv head (k and v
 * rows kstride bytes apart, their scales sstride floats apart); head_size a
 * multiple of 8. */

/* The exact int32 q.k: 16 int8 lanes per VMLADAV, a last 8 as int16 lanes. */
static inline int32_t dot_mve(const int8_t *q, const int8_t *k, int head_size) {
    int32_t d = 0;
    int i = 0;
    for (; i + 16 <= head_size; i += 16) d = vmladavaq_s8(d, vldrbq_s8(k + i), vldrbq_s8(q + i));
    if (i < head_size) d = vmladavaq_s16(d, vldrbq_s16(k + i), vldrbq_s16(q + i));
    return d;
}

/* att[t] = (float(q.k_t) * qscale) * kscale_t, four positions per float
 * step; returns the largest. */
static float scores(float *att, const int8_t *q, const int8_t *k, const float *ks, int n, int kstride, int sstride,
                    int head_size, float qscale) {
    uint32x4_t soff = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)sstride);
    float32x4_t vmax = vdupq_n_f32(-__builtin_inff());
    int t = 0;
    if (head_size == 8 && n >= 4) {
        /* head size 8 (the llama2.c-sized models): whole blocks of four
         * positions in one loop, q widened once, one load and one VMLADAV
         * per position, the float steps of the block on one vector */
        struct { int16x8_t q16; uint32x4_t soff; float32x4_t vmax; } blk = {vldrbq_s16(q), soff, vmax};
        union { float f; uint32_t u; } qs = {qscale};
        register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
        register const int8_t *pk __asm__("r1") = k;
        register int pks __asm__("r3") = kstride;
        register uint32_t pqs __asm__("r5") = qs.u;
        register const float *psb __asm__("r8") = ks;
        register int pss __asm__("r9") = 16 * sstride;
        register float *patt __asm__("r10") = att;
        register void *pblk __asm__("r11") = &blk;
        register int pnb __asm__("r12") = n / 4;
        __asm volatile(
            "vldrw.u32 q0, [%[blk]]\n\t"
            "vldrw.u32 q1, [%[blk], #16]\n\t"
            "vldrw.u32 q4, [%[blk], #32]\n\t"
            "dls lr, %[nb]\n"
            "1:\n\t"
            "vldrb.s16 q2, [%[k]]\n\t"
            "add %[k], %[k], %[ks]\n\t"
            "vmladav.s16 %[a0], q2, q0\n\t"
            "vldrb.s16 q2, [%[k]]\n\t"
            "add %[k], %[k], %[ks]\n\t"
            "vmladav.s16 %[a1], q2, q0\n\t"
            "vldrb.s16 q2, [%[k]]\n\t"
            "add %[k], %[k], %[ks]\n\t"
            "vmladav.s16 %[a2], q2, q0\n\t"
            "vldrb.s16 q2, [%[k]]\n\t"
            "add %[k], %[k], %[ks]\n\t"
            "vmladav.s16 %[a3], q2, q0\n\t"
            "vmov q3[2], q3[0], %[a0], %[a2]\n\t"
            "vmov q3[3], q3[1], %[a1], %[a3]\n\t"
            "vcvt.f32.s32 q3, q3\n\t"
            "vmul.f32 q3, q3, %[qs]\n\t"
            "vldrw.u32 q2, [%[sb], q1, uxtw #2]\n\t"
            "add %[sb], %[sb], %[ss]\n\t"
            "vmul.f32 q3, q3, q2\n\t"
            "vstrw.32 q3, [%[att]], #16\n\t"
            "vmaxnm.f32 q4, q4, q3\n\t"
            "le lr, 1b\n\t"
            "vstrw.32 q4, [%[blk], #32]"
            : [k] "+&r"(pk), [sb] "+&r"(psb), [att] "+&r"(patt), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2),
              [a3] "=&r"(a3)
            : [ks] "r"(pks), [qs] "r"(pqs), [ss] "r"(pss), [blk] "r"(pblk), [nb] "r"(pnb)
            : "lr", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
              "s13", "s14", "s15", "s16", "s17", "s18", "s19");
        vmax = blk.vmax;
        t = n & ~3;
    }
    for (; t < n; t += 4) {
        int32_t d[4] = {0, 0, 0, 0};
        int m = n - t < 4 ? n - t : 4;
        const int8_t *kt = k + (size_t)t * (size_t)kstride;
        for (int j = 0; j < m; j++) d[j] = dot_mve(q, kt + (size_t)j * (size_t)kstride, head_size);
        mve_pred16_t p = vctp32q((uint32_t)m);
        float32x4_t a = vmulq_n_f32(vcvtq_f32_s32(vld1q_s32(d)), qscale);
        a = vmulq_f32(a, vldrwq_gather_shifted_offset_z_f32(ks + (size_t)t * (size_t)sstride, soff, p));
        vstrwq_p_f32(att + t, a, p);
        vmax = vmaxnmq_m_f32(vmax, vmax, a, p);
    }
    return vmaxnmvq_f32(-__builtin_inff(), vmax);
}

/* exp(att[t] - max) for every t (0 below -80), and their left-to-right sum */
static float softmax_exps(float *att, int n, float max) {
    for (int t = 0; t < n; t += 4) {
        mve_pred16_t p = vctp32q((uint32_t)(n - t));
        float32x4_t d = vsubq_n_f32(vld1q_z_f32(att + t, p), max);
        float32x4_t e = vpselq_f32(vdupq_n_f32(0.0f), exp4_core(d), vcmpltq_n_f32(d, -80.0f));
        vstrwq_p_f32(att + t, e, p);
    }
    float sum = 0.0f;
    for (int t = 0; t < n; t++) sum = sum + att[t];
    return sum;
}

/* out[i] = sum over t in order of (e_t / sum * vscale_t) * v_t[i], from 0.0f */
static void values(float *out, const float *e, float sum, const int8_t *v, const float *vs, int n, int kstride,
                   int sstride, int head_size) {
    if (head_size == 8) {
        float32x4_t o0 = vdupq_n_f32(0.0f), o1 = vdupq_n_f32(0.0f);
        for (int t = 0; t < n; t++, v += kstride, vs += sstride) {
            float a = (e[t] / sum) * *vs;
            o0 = vaddq_f32(o0, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(v)), a));
            o1 = vaddq_f32(o1, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(v + 4)), a));
        }
        vst1q_f32(out, o0);
        vst1q_f32(out + 4, o1);
        return;
    }
    for (int i = 0; i < head_size; i += 4) vst1q_f32(out + i, vdupq_n_f32(0.0f));
    for (int t = 0; t < n; t++, v += kstride, vs += sstride) {
        float a = (e[t] / sum) * *vs;
        for (int i = 0; i < head_size; i += 4) {
            float32x4_t o = vld1q_f32(out + i);
            vst1q_f32(out + i, vaddq_f32(o, vmulq_n_f32(vcvtq_f32_s32(vldrbq_s32(v + i)), a)));
        }
    }
}

/* values() for two query heads of one kv head, head size 8: each int8 value
 * converted once for both; per head the operations of values() in order */
static void values2(float *out_a, float *out_b, const float *e_a, const float *e_b, float sum_a, float sum_b,
                    const int8_t *v, const float *vs, int n, int kstride, int sstride) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), b0 = vdupq_n_f32(0.0f), b1 = vdupq_n_f32(0.0f);
    for (int t = 0; t < n; t++, v += kstride, vs += sstride) {
        float wa = (e_a[t] / sum_a) * *vs, wb = (e_b[t] / sum_b) * *vs;
        float32x4_t v0 = vcvtq_f32_s32(vldrbq_s32(v)), v1 = vcvtq_f32_s32(vldrbq_s32(v + 4));
        a0 = vaddq_f32(a0, vmulq_n_f32(v0, wa));
        a1 = vaddq_f32(a1, vmulq_n_f32(v1, wa));
        b0 = vaddq_f32(b0, vmulq_n_f32(v0, wb));
        b1 = vaddq_f32(b1, vmulq_n_f32(v1, wb));
    }
    vst1q_f32(out_a, a0);
    vst1q_f32(out_a + 4, a1);
    vst1q_f32(out_b, b0);
    vst1q_f32(out_b + 4, b1);
}

/* The scalar loops of transformer.c, for head sizes that are not a
 * multiple of 8. */
static void head_portable(float *out, float *att, const int8_t *q, const int8_t *k, const float *ks,
                          const int8_t *v, const float *vs, int n, int kstride, int sstride, int head_size,
                          float qscale) {
    float max = 0.0f;
    for (int t = 0; t < n; t++) {
        int32_t dot = 0;
        for (int i = 0; i < head_size; i++) dot += (int32_t)q[i] * (int32_t)k[(size_t)t * (size_t)kstride + (size_t)i];
        float a = ((float)dot * qscale) * ks[(size_t)t * (size_t)sstride];
        att[t] = a;
        if (t == 0 || a > max) max = a;
    }
    float sum = 0.0f;
    for (int t = 0; t < n; t++) {
        float d = att[t] - max;
        float e = d < -80.0f ? 0.0f : tp_exp(d);
        att[t] = e;
        sum = sum + e;
    }
    for (int i = 0; i < head_size; i++) {
        float o = 0.0f;
        for (int t = 0; t < n; t++) {
            float a = (att[t] / sum) * vs[(size_t)t * (size_t)sstride];
            o = o + a * (float)v[(size_t)t * (size_t)kstride + (size_t)i];
        }
        out[i] = o;
    }
}

/* RoPE: each (even, odd) pair of a head rotated by its angle,
 *     v0' = v0 * c - v1 * s,  v1' = v0 * s + v1 * c
 * four pairs at a time, VLD2 splitting the pairs into evens and odds (the
 * table's (cos, sin) pairs likewise). head_size a multiple of 8. */
static void rope_mve(float *v, const float *rope, int n, int head_size) {
    for (int h = 0; h < n; h += head_size) {
        for (int p = 0; p < head_size; p += 8) {
            float32x4x2_t x = vld2q_f32(v + h + p);
            float32x4x2_t cs = vld2q_f32(rope + p);
            float32x4x2_t y;
            y.val[0] = vsubq_f32(vmulq_f32(x.val[0], cs.val[0]), vmulq_f32(x.val[1], cs.val[1]));
            y.val[1] = vaddq_f32(vmulq_f32(x.val[0], cs.val[1]), vmulq_f32(x.val[1], cs.val[0]));
            vst2q_f32(v + h + p, y);
        }
    }
}

/* transformer.c's loop, for other head sizes */
static void rope_scalar(float *q, float *k, const float *rope, int dim, int kv_dim, int head_size) {
    for (int i = 0; i < dim; i += 2) {
        int j = (i % head_size) / 2;
        float fcr = rope[2 * j];
        float fci = rope[2 * j + 1];
        float q0 = q[i], q1 = q[i + 1];
        q[i] = q0 * fcr - q1 * fci;
        q[i + 1] = q0 * fci + q1 * fcr;
        if (i < kv_dim) {
            float k0 = k[i], k1 = k[i + 1];
            k[i] = k0 * fcr - k1 * fci;
            k[i + 1] = k0 * fci + k1 * fcr;
        }
    }
}

/* ----------------------------------------------------------------------------
 * Forward pass */

static void matmul(const Config *c, float *out, const QVector *x, const QTensor *w, int rows, int cols, int gs) {
    if (c->quant == TP_QUANT_INT4) {
        tp_matmul_q4(out, x, w, rows, cols, gs);
    } else {
        tp_matmul_q8(out, x, w, rows, cols, gs);
    }
}

static void add_into(float *x, const float *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
    for (; i < n; i++) x[i] = x[i] + y[i];
}

/* hb[i] = (hb[i] / (1 + exp(-hb[i]))) * hb2[i], exp clamped as tp_exp */
static void swiglu(float *hb, const float *hb2, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t x = vnegq_f32(vld1q_f32(hb + i));
        float32x4_t e = exp4_core(vminnmq_f32(x, vdupq_n_f32(80.0f)));
        e = vpselq_f32(vdupq_n_f32(0.0f), e, vcmpltq_n_f32(x, -80.0f));
        float den[4];
        vst1q_f32(den, vaddq_n_f32(e, 1.0f));
        /* hb / den lane by lane (scalar VDIV into q2's lanes), times hb2 */
        __asm volatile(
            "vldrw.u32 q0, [%[hb]]\n\t"
            "vldrw.u32 q1, [%[den]]\n\t"
            "vdiv.f32 s8, s0, s4\n\t"
            "vdiv.f32 s9, s1, s5\n\t"
            "vdiv.f32 s10, s2, s6\n\t"
            "vdiv.f32 s11, s3, s7\n\t"
            "vldrw.u32 q3, [%[hb2]]\n\t"
            "vmul.f32 q2, q2, q3\n\t"
            "vstrw.32 q2, [%[hb]]"
            :
            : [hb] "r"(hb + i), [hb2] "r"(hb2 + i), [den] "r"(den)
            : "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
              "s14", "s15");
    }
    for (; i < n; i++) {
        float val = hb[i];
        val = val / (1.0f + tp_exp(-val));
        hb[i] = val * hb2[i];
    }
}

float *tp_forward(Transformer *t, int token, int pos, int want_logits) {
    const Config *c = &t->config;
    const Weights *w = t->weights;
    RunState *s = &t->state;
    int dim = c->dim, hidden = c->hidden_dim, kv_dim = c->kv_dim;
    int head_size = c->head_size, gs = c->group_size;
    int kv_mul = c->n_heads / c->n_kv_heads;
    int groups_dim = (dim + gs - 1) / gs;
    float *x = s->x;

    const float *es = w->embedding.s + (size_t)token * (size_t)groups_dim;
    if (c->quant == TP_QUANT_INT4) {
        const uint8_t *eq4 = (const uint8_t *)w->embedding.q + (size_t)token * (size_t)((dim + 1) / 2);
        for (int i = 0; i < dim; i++) x[i] = (float)tp_int4_at(eq4, i) * es[i / gs];
    } else {
        const int8_t *eq = w->embedding.q + (size_t)token * (size_t)dim;
        for (int i = 0; i < dim; i++) x[i] = (float)eq[i] * es[i / gs];
    }

    const float *rope = w->rope + (size_t)pos * (size_t)head_size;
    float att_div = sqrt_f32((float)head_size);

    for (int l = 0; l < c->n_layers; l++) {
        QTensor wq = tp_layer_tensor(w, &w->layer0.wq, l);
        QTensor wk = tp_layer_tensor(w, &w->layer0.wk, l);
        QTensor wv = tp_layer_tensor(w, &w->layer0.wv, l);
        QTensor wo = tp_layer_tensor(w, &w->layer0.wo, l);
        QTensor w1 = tp_layer_tensor(w, &w->layer0.w1, l);
        QTensor w2 = tp_layer_tensor(w, &w->layer0.w2, l);
        QTensor w3 = tp_layer_tensor(w, &w->layer0.w3, l);

        rmsnorm(s->xb, x, w->rms_att + (size_t)l * (size_t)dim, dim);

        size_t slot = (size_t)l * (size_t)c->seq_len + (size_t)pos;
        float *k = s->xb2;
        quantize(&s->xq, s->xb, dim, gs);
        matmul(c, s->q, &s->xq, &wq, dim, dim, gs);
        matmul(c, k, &s->xq, &wk, kv_dim, dim, gs);

        if (head_size % 8 == 0) {
            rope_mve(s->q, rope, dim, head_size);
            rope_mve(k, rope, kv_dim, head_size);
        } else {
            rope_scalar(s->q, k, rope, dim, kv_dim, head_size);
        }

        QVector kq = {s->key_cache + slot * (size_t)kv_dim, s->key_scale + slot * (size_t)c->n_kv_heads};
        QVector vq = {s->value_cache + slot * (size_t)kv_dim, s->value_scale + slot * (size_t)c->n_kv_heads};
        quantize(&kq, k, kv_dim, head_size);
        matmul(c, s->xb2, &s->xq, &wv, kv_dim, dim, gs);
        quantize(&vq, s->xb2, kv_dim, head_size);
        quantize(&s->qq, s->q, dim, head_size);

        size_t lslot = (size_t)l * (size_t)c->seq_len;
        int n_pos = pos + 1;
        int pairs = kv_mul % 2 == 0 && head_size == 8; /* two query heads share one pass over the values */
        for (int h = 0; h < c->n_heads; h += 1 + pairs) {
            int kh = h / kv_mul;
            size_t first = lslot * (size_t)kv_dim + (size_t)kh * (size_t)head_size;
            size_t sfirst = lslot * (size_t)c->n_kv_heads + (size_t)kh;
            float qscale = s->qq.s[h] / att_div;
            float *att = s->att + (size_t)h * (size_t)c->seq_len;
            const int8_t *qh = s->qq.q + h * head_size;
            float *out = s->xb + h * head_size;
            if (head_size % 8 != 0) {
                head_portable(out, att, qh, s->key_cache + first, s->key_scale + sfirst, s->value_cache + first,
                              s->value_scale + sfirst, n_pos, kv_dim, c->n_kv_heads, head_size, qscale);
                continue;
            }
            float max = scores(att, qh, s->key_cache + first, s->key_scale + sfirst, n_pos, kv_dim, c->n_kv_heads,
                               head_size, qscale);
            float sum = softmax_exps(att, n_pos, max);
            if (pairs) {
                float *att_b = att + c->seq_len;
                float max_b = scores(att_b, qh + head_size, s->key_cache + first, s->key_scale + sfirst, n_pos, kv_dim,
                                     c->n_kv_heads, head_size, s->qq.s[h + 1] / att_div);
                float sum_b = softmax_exps(att_b, n_pos, max_b);
                values2(out, out + head_size, att, att_b, sum, sum_b, s->value_cache + first, s->value_scale + sfirst,
                        n_pos, kv_dim, c->n_kv_heads);
                continue;
            }
            values(out, att, sum, s->value_cache + first, s->value_scale + sfirst, n_pos, kv_dim, c->n_kv_heads,
                   head_size);
        }

        quantize(&s->xq, s->xb, dim, gs);
        matmul(c, s->xb2, &s->xq, &wo, dim, dim, gs);
        add_into(x, s->xb2, dim);

        rmsnorm(s->xb, x, w->rms_ffn + (size_t)l * (size_t)dim, dim);
        quantize(&s->xq, s->xb, dim, gs);
        matmul(c, s->hb, &s->xq, &w1, hidden, dim, gs);
        matmul(c, s->hb2, &s->xq, &w3, hidden, dim, gs);
        swiglu(s->hb, s->hb2, hidden);
        quantize(&s->xq, s->hb, hidden, gs);
        matmul(c, s->xb, &s->xq, &w2, dim, hidden, gs);
        add_into(x, s->xb, dim);
    }

    if (!want_logits) return NULL;

    rmsnorm(x, x, w->rms_final, dim);
    quantize(&s->xq, x, dim, gs);
    matmul(c, s->logits, &s->xq, &w->classifier, c->vocab_size, dim, gs);
    return s->logits;
}

#endif /* TP_KERNELS_HELIUM && !TP_FIXED_POINT */
