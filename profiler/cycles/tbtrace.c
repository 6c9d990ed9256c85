/*
 * tbtrace: a QEMU TCG plugin that writes what the emulated CPU executed, for the cycle models in
 * profiler/cycles. Built by the profiler with the host's gcc; loaded with
 *   -plugin libtbtrace.so,out=FILE[,flash=BASE:SIZE][,mark=ADDR,limit=N]
 *
 * FILE.blocks holds each translated block as little-endian 32-bit words: n, its id, then the n
 * instruction addresses. FILE is a stream of little-endian 32-bit words, in execution order:
 *   00 | id        the block `id` executed once
 *   01 | k         the block before it executed k more times in a row
 *   10 | line      a data load from the flash window hit the 16-byte line `line` (offset >> 4), written
 *                  only when it differs from the previous flash line loaded
 * With mark and limit, recording stops when the block at ADDR is entered for the (limit + 1)-th time.
 *
 * Only the QEMU plugin API calls below are used; they are declared here (QEMU 7.2's API version 1)
 * so that no QEMU development package is needed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb)(unsigned int vcpu_index, void *userdata);
typedef void (*mem_cb)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata);
typedef void (*atexit_cb)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, udata_cb cb, enum qemu_plugin_cb_flags flags,
                                          void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, mem_cb cb, enum qemu_plugin_cb_flags flags,
                                      enum qemu_plugin_mem_rw rw, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, atexit_cb cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define TAG_EXEC 0u
#define TAG_REPEAT 1u
#define TAG_LINE 2u

static FILE *out, *defs;
static uint32_t next_id;
static uint32_t last_id = UINT32_MAX, repeats;
static uint32_t last_line = UINT32_MAX;
static uint64_t flash_base, flash_size;
static uint64_t mark = UINT64_MAX, limit = UINT64_MAX, marks_seen;
static bool recording = true;

static void put(uint32_t tag, uint32_t value) {
    uint32_t word = (tag << 30) | (value & 0x3FFFFFFFu);
    fwrite(&word, 4, 1, out);
}

static void flush_repeats(void) {
    if (repeats) {
        put(TAG_REPEAT, repeats);
        repeats = 0;
    }
}

static void on_exec(unsigned int vcpu, void *userdata) {
    (void)vcpu;
    uint32_t id = (uint32_t)(uintptr_t)userdata >> 1;
    if (!recording) return;
    if ((uintptr_t)userdata & 1u) {  /* the mark block */
        if (++marks_seen > limit) {
            flush_repeats();
            recording = false;
            fflush(out);
            fflush(defs);
            return;
        }
    }
    if (id == last_id) {
        repeats++;
        return;
    }
    flush_repeats();
    put(TAG_EXEC, id);
    last_id = id;
}

static void on_load(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata) {
    (void)vcpu, (void)userdata;
    if (!recording || qemu_plugin_mem_is_store(info) || vaddr - flash_base >= flash_size) return;
    uint32_t line = (uint32_t)((vaddr - flash_base) >> 4);
    if (line == last_line) return;
    flush_repeats();
    last_id = UINT32_MAX;  /* a repeat after this event is a new exec record */
    put(TAG_LINE, line);
    last_line = line;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint32_t tb_id = next_id++;
    uint64_t start = qemu_plugin_tb_vaddr(tb);
    if (recording) {
        flush_repeats();
        last_id = UINT32_MAX;
        uint32_t head[2] = {(uint32_t)n, tb_id};
        fwrite(head, 4, 2, defs);
        for (size_t i = 0; i < n; i++) {
            uint32_t addr = (uint32_t)qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i));
            fwrite(&addr, 4, 1, defs);
        }
    }
    uintptr_t userdata = ((uintptr_t)tb_id << 1) | (start == mark ? 1u : 0u);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)userdata);
    if (flash_size) {
        for (size_t i = 0; i < n; i++) {
            /* QEMU 7.2 calls a QEMU_PLUGIN_MEM_R callback for stores only: ask for both, keep the loads */
            qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_load, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, NULL);
        }
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata) {
    (void)id, (void)userdata;
    flush_repeats();
    fclose(out);
    fclose(defs);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv) {
    (void)info;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        const char *value = eq + 1;
        if (!strncmp(argv[i], "out=", 4)) path = value;
        else if (!strncmp(argv[i], "flash=", 6)) {
            char *colon;
            flash_base = strtoull(value, &colon, 0);
            flash_size = *colon == ':' ? strtoull(colon + 1, NULL, 0) : 0;
        } else if (!strncmp(argv[i], "mark=", 5)) mark = strtoull(value, NULL, 0);
        else if (!strncmp(argv[i], "limit=", 6)) limit = strtoull(value, NULL, 0);
    }
    char defs_path[4096];
    if (!path || snprintf(defs_path, sizeof defs_path, "%s.blocks", path) >= (int)sizeof defs_path ||
        !(out = fopen(path, "wb")) || !(defs = fopen(defs_path, "wb"))) {
        fprintf(stderr, "tbtrace: out=FILE is required and must be writable\n");
        return -1;
    }
    setvbuf(out, NULL, _IOFBF, 1 << 20);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
