/* Static bump allocator: see arena.h. */
#include "arena.h"

void tp_arena_init(Arena *a, void *base, size_t size) {
    /* align the start ourselves so a port's linker symbol need not be exact */
    uintptr_t p = (uintptr_t)base;
    uintptr_t aligned = (p + (TP_ARENA_ALIGN - 1)) & ~(uintptr_t)(TP_ARENA_ALIGN - 1);
    size_t skip = (size_t)(aligned - p);
    a->base = (uint8_t *)aligned;
    a->size = size > skip ? size - skip : 0;
    a->used = 0;
}

void *tp_arena_alloc(Arena *a, size_t bytes) {
    uint64_t rounded = tp_arena_round(bytes);
    if (rounded > (uint64_t)(a->size - a->used)) return NULL;
    void *p = a->base + a->used;
    a->used += (size_t)rounded;
    return p;
}

void tp_arena_reset(Arena *a) { a->used = 0; }
