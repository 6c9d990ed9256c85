/* One repetition's generation loop: see generate.h. */
#include "generate.h"

#include "protocol.h" /* tp_rd16, TP_ERR_* */

int tp_run_check(const Config *c, int n_prompt, int n_tokens, float temperature,
                 const uint8_t *prompt_le) {
    if (n_prompt <= 0 || n_tokens <= 0) return TP_ERR_BAD_ARGUMENT;
    /* NaN fails every comparison; 3.4e38f is just under FLT_MAX */
    if (!(temperature >= 0.0f && temperature <= 3.4e38f)) return TP_ERR_BAD_ARGUMENT;
    /* the last forward pass runs at n_prompt + n_tokens - 2, which must be
     * below seq_len */
    if ((long)n_prompt + (long)n_tokens - 1 > (long)c->seq_len) return TP_ERR_CONTEXT_OVERFLOW;
    for (int i = 0; i < n_prompt; i++) {
        if (tp_rd16(prompt_le + 2 * i) >= c->vocab_size) return TP_ERR_BAD_ARGUMENT;
    }
    return 0;
}

void tp_generate(Transformer *t, Sampler *s, const uint8_t *prompt_le, int n_prompt,
                 int n_tokens, TpTokenFn on_token, TpStepFn on_prefill_step, void *ctx) {
    /* prefill: only the last prompt position needs logits */
    float *logits = 0;
    for (int pos = 0; pos < n_prompt; pos++) {
        int token = tp_rd16(prompt_le + 2 * pos);
        logits = tp_forward(t, token, pos, pos == n_prompt - 1);
        if (on_prefill_step != 0 && pos < n_prompt - 1) on_prefill_step(ctx, pos);
    }
    int next = tp_sample(s, logits);
    on_token(ctx, 0, n_prompt - 1, next);

    /* decode */
    for (int index = 1; index < n_tokens; index++) {
        int pos = n_prompt + index - 1;
        logits = tp_forward(t, next, pos, 1);
        next = tp_sample(s, logits);
        on_token(ctx, index, pos, next);
    }
}
