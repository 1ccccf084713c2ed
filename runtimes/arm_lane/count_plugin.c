/* qemu TCG plugin: count guest instructions per phase, switched by marker syscalls.
 *
 * The measured program calls syscall(4242, phase) (phase 0 = stop counting, 1..15 = count into that slot).
 * Every translated block adds its instruction count to one running counter (inline add, cheap); at each
 * marker the delta since the previous marker is charged to the phase that was active. Counts are of
 * guest instructions executed in whole translation blocks, so they are deterministic for a
 * deterministic program and independent of host load. At exit the plugin prints
 * "phase N insns M" lines to the file named by the plugin argument out=PATH (or to qemu's log).
 *
 * Written against qemu 7.2's plugin API v1 (Debian 12 ships the API in qemu-user but not the header):
 * the few declarations used are spelled out below.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                             uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*atexit_cb_t)(qemu_plugin_id_t id, void *userdata);

size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, atexit_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MARKER 4242
#define PHASES 16
static uint64_t executed;          /* all guest instructions so far (inline-updated) */
static uint64_t last;              /* value of `executed` at the previous marker */
static int phase;                  /* slot being charged, 0 = none */
static uint64_t counts[PHASES];
static uint64_t markers[PHASES];   /* how often each phase was entered */
static char out_path[4096];

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != MARKER) return;
    if (phase > 0) counts[phase] += executed - last;
    last = executed;
    phase = (a1 < PHASES) ? (int)a1 : 0;
    if (phase > 0) markers[phase]++;
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    FILE *f = out_path[0] ? fopen(out_path, "w") : stderr;
    if (!f) return;
    for (int p = 1; p < PHASES; p++)
        if (markers[p]) fprintf(f, "phase %d insns %" PRIu64 " entries %" PRIu64 "\n", p, counts[p], markers[p]);
    fprintf(f, "total insns %" PRIu64 "\n", executed);
    if (f != stderr) fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0) snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
