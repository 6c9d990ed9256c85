/* Token sampling (docs/model-format.md, "Sampling"): greedy at temperature 0,
 * otherwise seeded sampling from the softmax with a xorshift64* generator, so
 * a (seed, temperature) pair picks the same tokens on the board and the host. */
#ifndef TP_SAMPLER_H
#define TP_SAMPLER_H

#include <stdint.h>

typedef struct {
    int vocab_size;
    float temperature; /* 0 = greedy */
    uint64_t rng;      /* xorshift64* state */
} Sampler;

/* Starts a RUN's sampling: state = seed ^ 0x9E3779B97F4A7C15. */
void tp_sampler_init(Sampler *s, int vocab_size, float temperature, uint32_t seed);

/* Next u32 from xorshift64*. */
uint32_t tp_rng_u32(uint64_t *state);

/* Index of the first largest logit. */
int tp_argmax(const float *x, int n);

/* Picks the next token. Seeded sampling overwrites logits with probabilities. */
int tp_sample(Sampler *s, float *logits);

#endif /* TP_SAMPLER_H */
