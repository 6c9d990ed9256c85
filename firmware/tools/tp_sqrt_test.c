/* tp_sqrt_test [--all]
 *
 * Checks core/fsqrt.c (the integer sqrtf the boards without a hardware sqrt
 * use) against the host's sqrt instruction, which IEEE 754 requires to be
 * correctly rounded. Bit for bit, except that any NaN matches any NaN.
 *
 * Default: the special values, every float in [1, 4) (both exponent
 * parities, every significand), every 64th subnormal and 4 M random bit
 * patterns: about two seconds. --all: every one of the 2^32 patterns
 * (minutes). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fsqrt.h"

static uint64_t checked, failed;

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int is_nan(uint32_t u) { return (u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu) != 0; }

static void check(uint32_t in) {
    float x = float_of(in);
    uint32_t want = bits_of(__builtin_sqrtf(x));
    uint32_t got = bits_of(tp_sqrtf_soft(x));
    checked++;
    if (want == got || (is_nan(want) && is_nan(got))) return;
    if (failed++ < 10) {
        printf("sqrt(%a) [0x%08x]: got 0x%08x, want 0x%08x\n", (double)x, in, got, want);
    }
}

int main(int argc, char **argv) {
    int all = argc > 1 && strcmp(argv[1], "--all") == 0;
    if (all) {
        uint32_t u = 0;
        do check(u); while (++u != 0);
    } else {
        static const uint32_t special[] = {
            0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
            0x7F800001u, 0x00000001u, 0x00000002u, 0x00000003u, 0x007FFFFFu, 0x00800000u,
            0x00800001u, 0x7F7FFFFFu, 0x3F800000u, 0x3F800001u, 0x3F7FFFFFu, 0x80000001u,
            0xBF800000u, 0x40800000u, 0x41800000u, 0x1F800000u, 0x5F800000u,
        };
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) check(special[i]);
        for (uint32_t u = 0x3F800000u; u < 0x40800000u; u++) check(u); /* [1, 4) */
        for (uint32_t u = 1; u < 0x00800000u; u += 64) check(u);
        uint64_t s = 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < 4000000; i++) {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            check((uint32_t)((s * 0x2545F4914F6CDD1Dull) >> 32));
        }
    }
    printf("tp_sqrt_test: %llu values, %llu mismatches\n", (unsigned long long)checked,
           (unsigned long long)failed);
    return failed != 0;
}
