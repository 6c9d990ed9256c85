/* One repetition's generation loop (docs/protocol.md, "One repetition"),
 * shared by the firmware's RUN handler and the host tool tp_generate, so the
 * tokens the host checks against come from the very same code path. */
#ifndef TP_GENERATE_H
#define TP_GENERATE_H

#include <stdint.h>

#include "sampler.h"
#include "transformer.h"

/* Validates RUN arguments: returns 0, TP_ERR_BAD_ARGUMENT (a count is zero, a
 * prompt token is not below vocab_size, temperature is negative or not
 * finite) or TP_ERR_CONTEXT_OVERFLOW (n_prompt + n_tokens - 1 > seq_len).
 * prompt_le holds n_prompt little-endian u16 token ids, as on the wire. */
int tp_run_check(const Config *c, int n_prompt, int n_tokens, float temperature,
                 const uint8_t *prompt_le);

/* Called right after each token is sampled: index 0 is the token sampled
 * from the last prompt position, pos is the position of the forward pass
 * whose logits it came from (n_prompt + index - 1). */
typedef void (*TpTokenFn)(void *ctx, int index, int pos, int token);

/* Called after each prefill forward pass but the last (whose token goes to
 * TpTokenFn): a point where the firmware may stream telemetry. May be 0. */
typedef void (*TpStepFn)(void *ctx, int pos);

/* Prefill over the prompt at positions 0..n_prompt-1, then exactly n_tokens
 * sampled tokens (no early stop, so repetitions stay comparable). Arguments
 * must have passed tp_run_check. */
void tp_generate(Transformer *t, Sampler *s, const uint8_t *prompt_le, int n_prompt,
                 int n_tokens, TpTokenFn on_token, TpStepFn on_prefill_step, void *ctx);

#endif /* TP_GENERATE_H */
