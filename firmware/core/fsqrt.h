/* A correctly rounded single-precision square root in integer arithmetic,
 * for cores without a hardware sqrt (rv32imac, rv32imc, Xtensa LX6): there
 * the compiler would call libm's sqrtf, whose rounding we cannot vouch for
 * on every toolchain. The forward pass needs sqrt to be one correctly
 * rounded f32 operation (docs/model-format.md), and this is.
 *
 * Ports pick it at build time with TP_SOFT_SQRT=1 (see transformer.c); the
 * host build keeps the hardware instruction and tools/tp_sqrt_test checks
 * one against the other. */
#ifndef TP_FSQRT_H
#define TP_FSQRT_H

/* sqrt(x) rounded to nearest (ties cannot occur for a square root).
 * -0 -> -0, +inf -> +inf, x < 0 or NaN -> the default quiet NaN. */
float tp_sqrtf_soft(float x);

#endif /* TP_FSQRT_H */
