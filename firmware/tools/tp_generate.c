/* tp_generate MODEL_PATH N_TOKENS TEMPERATURE SEED TOK0 [TOK1 ...]
 *
 * Runs the firmware's own core C on the host: loads a TPMD file, checks it
 * like the board does, prefills the prompt and generates N_TOKENS tokens
 * exactly as one RUN repetition, printing the token ids one per line. The
 * profiler compares these with the board's TOKEN frames. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "generate.h"
#include "model.h"
#include "protocol.h"
#include "sampler.h"
#include "transformer.h"

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tp_generate: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static unsigned long parse_ulong(const char *s, unsigned long max, const char *what) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        die("bad %s '%s'", what, s);
    }
    return v;
}

static void on_token(void *ctx, int index, int pos, int token) {
    (void)ctx;
    (void)index;
    (void)pos;
    printf("%d\n", token);
}

static const char *model_status_text(int status) {
    switch (status) {
    case TP_MODEL_NONE: return "not a TPMD image (bad magic)";
    case TP_MODEL_BAD_HEADER_CRC: return "header CRC mismatch";
    case TP_MODEL_BAD_PAYLOAD_CRC: return "payload CRC mismatch";
    case TP_MODEL_UNSUPPORTED: return "unsupported format version, quantization or shape";
    case TP_MODEL_TOO_LARGE: return "image larger than the file";
    default: return "unknown model status";
    }
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: tp_generate MODEL_PATH N_TOKENS TEMPERATURE SEED TOK0 [TOK1 ...]\n");
        return 1;
    }
    unsigned long n_tokens = parse_ulong(argv[2], 65535, "N_TOKENS");
    char *end;
    float temperature = strtof(argv[3], &end);
    if (end == argv[3] || *end != '\0') die("bad TEMPERATURE '%s'", argv[3]);
    uint32_t seed = (uint32_t)parse_ulong(argv[4], 0xFFFFFFFFul, "SEED");
    int n_prompt = argc - 5;
    if (n_prompt > 65535) die("too many prompt tokens");
    uint8_t *prompt = malloc(2 * (size_t)n_prompt);
    if (prompt == NULL) die("out of memory");
    for (int i = 0; i < n_prompt; i++) {
        tp_wr16(prompt + 2 * i, (uint16_t)parse_ulong(argv[5 + i], 65535, "token id"));
    }

    /* the whole file, like the board's model region */
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) die("cannot open '%s'", argv[1]);
    if (fseek(f, 0, SEEK_END) != 0) die("cannot seek '%s'", argv[1]);
    long size = ftell(f);
    if (size < 0 || (unsigned long)size > 0xFFFFFFFFul) die("cannot size '%s'", argv[1]);
    rewind(f);
    uint8_t *image = malloc(size > 0 ? (size_t)size : 1);
    if (image == NULL) die("out of memory reading '%s'", argv[1]);
    if (fread(image, 1, (size_t)size, f) != (size_t)size) die("cannot read '%s'", argv[1]);
    fclose(f);

    Model model;
    if (tp_model_load(&model, image, (uint32_t)size) != TP_MODEL_OK) {
        die("%s", model_status_text(model.status));
    }
    const Config *c = &model.config;
    int err = tp_run_check(c, n_prompt, (int)n_tokens, temperature, prompt);
    if (err == TP_ERR_CONTEXT_OVERFLOW) die("context overflow: n_prompt + n_tokens - 1 > seq_len");
    if (err != 0) die("bad argument: counts must be > 0, token ids < vocab_size, temperature >= 0");

    /* the host has RAM to spare: an arena of exactly the size the board needs */
    uint64_t need = tp_runstate_bytes(c);
    void *mem = malloc((size_t)need);
    if (mem == NULL) die("out of memory for the run state");
    Arena arena;
    tp_arena_init(&arena, mem, (size_t)need);
    Transformer t;
    if (tp_transformer_init(&t, &model, &arena) != 0) die("arena sizing error");

    Sampler s;
    tp_sampler_init(&s, c->vocab_size, temperature, seed);
    tp_generate(&t, &s, prompt, n_prompt, (int)n_tokens, on_token, NULL, NULL);
    if (fflush(stdout) != 0) die("cannot write output");
    free(mem);
    free(image);
    free(prompt);
    return 0;
}
