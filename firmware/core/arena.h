/* Static bump allocator. The firmware never calls malloc: the port hands the
 * RAM between .bss and the stack to one Arena, and the transformer takes its
 * buffers from it once, at boot. */
#ifndef TP_ARENA_H
#define TP_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* Every allocation is rounded up to this, so the host's fit check can predict
 * arena_used_bytes to the byte (docs/model-format.md, "RAM the board needs"). */
#define TP_ARENA_ALIGN 8u

typedef struct {
    uint8_t *base; /* TP_ARENA_ALIGN-aligned start */
    size_t size;   /* bytes available */
    size_t used;   /* bytes handed out, each allocation rounded up */
} Arena;

void tp_arena_init(Arena *a, void *base, size_t size);

/* Returns bytes (rounded up to TP_ARENA_ALIGN) or NULL when they do not fit;
 * a failed allocation leaves the arena unchanged. */
void *tp_arena_alloc(Arena *a, size_t bytes);

/* Forgets every allocation (the buffers are reused, never freed one by one). */
void tp_arena_reset(Arena *a);

static inline size_t tp_arena_used(const Arena *a) { return a->used; }

static inline uint64_t tp_arena_round(uint64_t bytes) {
    return (bytes + (TP_ARENA_ALIGN - 1)) & ~(uint64_t)(TP_ARENA_ALIGN - 1);
}

#endif /* TP_ARENA_H */
