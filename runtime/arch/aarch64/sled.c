/*
 * sled.c - aarch64 specifics: XRay sled encodings and patching, the stub
 * format, the timer (cntvct_el0), the signal-restart fix-up for the
 * trampoline's store window, and the dlopen gadget.
 *
 * A sled is 8 instructions (32 bytes). Unpatched: `b #32` and 7 nops.
 * Patched (docs/design.md, "aarch64"):
 *   0  b    #4               (was b #32: the only word that changes live)
 *   1  stp  x0, x30, [sp, #-16]!
 *   2  ldr  x0, 5f           (the trampoline's address, words 5-6)
 *   3  blr  x0
 *   4  .word W1              (the log word; the trampoline reads it at [x30])
 *   5  .quad trampoline
 *   7  ldp  x0, x30, [sp], #16   (the trampoline returns here: x30 + 12)
 * Unlike compiler-rt's layout this clobbers neither x16 nor x17: with
 * -mbranch-protection=bti clang keeps an indirect tail call's target in x16
 * across the sled. x0 and x30 are saved by the sled itself.
 *
 * Patch order, after the Arm ARM's rules for concurrent modification and
 * execution of instructions (B2.2.5): code another thread may be running
 * may only change from one of B, BL, NOP, BRK, SVC, HVC, SMC, ISB to
 * another, and new instructions must be made visible to instruction fetch
 * before anything branches to them. So, per object:
 *   1. words 1..7 of every sled are written while word 0 is still `b #32`
 *      (no thread executes them), and cleaned and invalidated to the point
 *      of unification (__builtin___clear_cache: dc cvau, dsb ish, ic ivau,
 *      dsb ish, isb);
 *   2. every thread of the process executes a context synchronization
 *      event (membarrier SYNC_CORE), so none holds stale copies of them;
 *   3. word 0 of each sled changes from `b #32` to `b #4`, one aligned
 *      32-bit store (B to B: allowed on live code), and is cleaned again.
 */
#include <elf.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "../../runtime.h"

#define I_B32 0x14000008u    /* b #32 */
#define I_B4 0x14000001u     /* b #4 */
#define I_NOP 0xd503201fu    /* nop */
#define I_STP 0xa9bf7be0u    /* stp x0, x30, [sp, #-16]! */
#define I_LDR_X0 0x58000060u /* ldr x0, #12 */
#define I_BLR_X0 0xd63f0000u /* blr x0 */
#define I_LDP 0xa8c17be0u    /* ldp x0, x30, [sp], #16 */
#define I_BTI_C 0xd503245fu  /* bti c */
#define I_BTI_JC 0xd50324dfu /* bti jc */
#define I_RET 0xd65f03c0u    /* ret */

void sf_trampoline_slow_record(void), sf_trampoline_args(void), sf_trampoline_ret(void),
    sf_trampoline_enter(void), sf_trampoline_leave(void), sf_trampoline_desc(void),
    sf_trampoline_args_enter(void), sf_trampoline_ret_leave(void), sf_trampoline_desc_leave(void),
    sf_trampoline_desc_key(void), sf_trampoline_desc_key_leave(void), sf_trampoline_trig(void);

/* Indexed by enum sf_tramp. Only the plain trampoline has a fast path
 * here; the filter variants go through C (buffer.c applies the same rules). */
const void *const sf_tramp_fast[T_COUNT] = {
    sf_trampoline,
    sf_trampoline_args,
    sf_trampoline_ret,
    sf_trampoline_enter,
    sf_trampoline_leave,
    sf_trampoline_desc,
    sf_trampoline_args_enter,
    sf_trampoline_ret_leave,
    sf_trampoline_leave,
    sf_trampoline_desc_leave,
    sf_trampoline_desc_leave,
    /* keys (T_KEY0..T_KEYR): no fast key path on aarch64 yet; the slow path
     * records every argument register (ARGS) or x0 (RET), which the tools
     * read as the same key (docs/design.md, Flows) */
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_ret,
    sf_trampoline_desc_key,
    sf_trampoline_desc_key_leave,
    sf_trampoline_trig,
};
const void *const sf_tramp_mono[T_COUNT] = {
    sf_trampoline_slow_record, sf_trampoline_args,           sf_trampoline_ret,
    sf_trampoline_enter,       sf_trampoline_leave,          sf_trampoline_desc,
    sf_trampoline_args_enter,  sf_trampoline_ret_leave,      sf_trampoline_leave,
    sf_trampoline_desc_leave,  sf_trampoline_desc_leave,     sf_trampoline_args,
    sf_trampoline_args,        sf_trampoline_args,           sf_trampoline_args,
    sf_trampoline_args,        sf_trampoline_args,           sf_trampoline_ret,
    sf_trampoline_desc_key,    sf_trampoline_desc_key_leave, sf_trampoline_trig,
};

_Static_assert(__builtin_offsetof(struct sf_tls, pos) == 0, "TLS_POS in trampoline.S");
_Static_assert(__builtin_offsetof(struct sf_tls, hi_not) == 8, "TLS_HI_NOT in trampoline.S");

static inline uint32_t word(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

void sf_arch_init(void)
{
    uint64_t f;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
    sf_g.tsc_hz = f;
}

/* The generic timer's virtual count is constant-rate and shared by all
 * cores (the architecture requires it; Linux exposes it to user space). */
int sf_arch_tsc_invariant(void)
{
    return 1;
}

uint64_t sf_arch_now(void)
{
    uint64_t t;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(t)::"memory");
    return t;
}

void sf_arch_restart_fixup(void *ucontext)
{
    ucontext_t *uc = ucontext;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
    if (pc > (uintptr_t)sf_win_start && pc < (uintptr_t)sf_win_commit)
        uc->uc_mcontext.pc = (uintptr_t)sf_win_start;
}

/* clang 14 marks a tail call's sled as an exit (LLVM issue 141051): a sled
 * followed by a branch rather than a return is a tail call. */
int sf_arch_sled_kind(const uint8_t *sled, int kind)
{
    if (kind != XRAY_EXIT)
        return kind;
    uint32_t next = word(sled + 32);
    if ((next & 0xfc000000u) == 0x14000000u) /* b imm26 */
        return XRAY_TAIL;
    if ((next & 0xfffffc1fu) == 0xd61f0000u && next != 0xd61f03c0u) /* br xN */
        return XRAY_TAIL;
    return kind;
}

int sf_arch_sled_patched(const uint8_t *sled)
{
    return word(sled) == I_B4 && word(sled + 4) == I_STP && word(sled + 12) == I_BLR_X0;
}

/* Live control (ctl.c): a sled sf_arch_sled_patch made, turned off or on
 * again by rewriting its first word only, from one branch to another
 * (`b #32` over the sled, `b #4` into it): concurrent modification the
 * architecture allows for B (CMODX). Words 1..7 were synchronized when the
 * sled was first patched and never change. */
void sf_arch_sled_toggle(uint8_t *sled, int kind, int on)
{
    (void)kind;
    __atomic_store_n((uint32_t *)sled, on ? I_B4 : I_B32, __ATOMIC_RELEASE);
    __builtin___clear_cache((char *)sled, (char *)sled + 4);
}

void sf_arch_sled_restore(uint8_t *sled, const uint8_t *orig)
{
    memcpy(sled + 4, orig + 4, SF_SLED_SIZE - 4); /* behind `b #32`: never run */
    __builtin___clear_cache((char *)sled + 4, (char *)sled + SF_SLED_SIZE);
    uint32_t head;
    memcpy(&head, orig, 4);
    __atomic_store_n((uint32_t *)sled, head, __ATOMIC_RELEASE);
    __builtin___clear_cache((char *)sled, (char *)sled + 4);
}

int sf_arch_sled_ours(const uint8_t *sled)
{
    return word(sled + 4) == I_STP && word(sled + 12) == I_BLR_X0;
}

int sf_arch_sled_check(const uint8_t *sled, int kind)
{
    (void)kind;
    if (word(sled + 4) == I_STP && word(sled + 12) == I_BLR_X0 &&
        (word(sled) == I_B4 || word(sled) == I_B32))
        return 0; /* patched already (or half: by a patcher that stopped) */
    return word(sled) == I_B32 && word(sled + 4) == I_NOP ? 0 : -1;
}

static void put(uint8_t *p, uint32_t w)
{
    memcpy(p, &w, 4);
}

/* Sleds whose words 1..7 are written and whose word 0 is still `b #32`:
 * sf_arch_patch_flush turns them on, after every thread has synchronized. */
#define PENDING_MAX 65536
static uint32_t **pending;
static size_t npending;

/* Step 2: every thread of the process executes a context synchronization
 * event before the branch to the new code is published. Registration is
 * once per process (a forked child inherits it). Without membarrier (old
 * kernels, or qemu-user without it) nothing else can force it. */
static void sync_cores(void)
{
    static int state; /* 0 unknown, 1 registered, 2 unavailable */
    if (!state)
        state =
            syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0
                ? 1
                : 2;
    if (state == 1)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
}

void sf_arch_patch_flush(void)
{
    if (!npending)
        return;
    sync_cores();
    for (size_t i = 0; i < npending; i++) {
        __atomic_store_n(pending[i], I_B4, __ATOMIC_RELEASE);
        __builtin___clear_cache((char *)pending[i], (char *)(pending[i] + 1));
    }
    npending = 0;
}

void sf_arch_sled_patch(uint8_t *sled, int kind, uint32_t w1, const void *target)
{
    (void)kind;
    /* target is a stub (sf_arch_write_stub): the sled loads the trampoline
     * address the stub holds and calls it directly, with no range limit. */
    uint64_t tramp;
    memcpy(&tramp, (const uint8_t *)target + 8, 8);
    uint8_t want[28];
    put(want, I_STP);
    put(want + 4, I_LDR_X0);
    put(want + 8, I_BLR_X0);
    put(want + 12, w1);
    memcpy(want + 16, &tramp, 8);
    put(want + 24, I_LDP);
    if (word(sled) == I_B4) {
        if (!memcmp(sled + 4, want, sizeof want))
            return; /* patched exactly so already (sftrace_setup again) */
        /* Live and different: turn it off first (B to B), make every
         * thread let go of the old words, then rewrite it. */
        __atomic_store_n((uint32_t *)sled, I_B32, __ATOMIC_RELEASE);
        __builtin___clear_cache((char *)sled, (char *)sled + 4);
        sync_cores();
    }
    if (!pending)
        pending = sf_map(PENDING_MAX * sizeof *pending);
    if (!pending)
        return; /* no memory: leave the sled off */
    if (npending == PENDING_MAX)
        sf_arch_patch_flush();
    memcpy(sled + 4, want, sizeof want); /* step 1 */
    __builtin___clear_cache((char *)sled + 4, (char *)sled + 32);
    pending[npending++] = (uint32_t *)sled;
}

/* ldr x0, #8; br x0; .quad target: a callable stub (for a slot given by
 * sftrace_setup), and the sleds read the target from it. x0 is free: the
 * sled saved it. */
void sf_arch_write_stub(uint8_t *stub, const void *target)
{
    uint64_t t = (uint64_t)(uintptr_t)target;
    memcpy(stub + 8, &t, 8);
    put(stub, 0x58000040u);     /* ldr x0, #8 */
    put(stub + 4, 0xd61f0000u); /* br x0 */
}

int sf_arch_in_reach(uintptr_t from_lo, uintptr_t from_hi, uintptr_t to)
{
    (void)from_lo;
    (void)from_hi;
    (void)to;
    return 1; /* the sled holds a 64-bit address */
}

uintptr_t sf_arch_branch_target(const uint8_t *j)
{
    uint32_t w = word(j);
    if ((w & 0xfc000000u) != 0x14000000u)
        return 0;
    int32_t imm = (int32_t)(w << 6) >> 6; /* imm26, sign-extended */
    return (uintptr_t)j + (uintptr_t)((intptr_t)imm * 4);
}

int sf_arch_is_entry_sled(const uint8_t *t)
{
    uint32_t w = word(t);
    if (w == I_BTI_C || w == I_BTI_JC)
        t += 4;
    w = word(t);
    return w == I_B32 || w == I_B4;
}

/* A PLT entry: [bti c;] adrp x16, page; ldr x17, [x16, #lo]; add x16, x16,
 * #lo; br x17. The address in its GOT slot now. */
uintptr_t sf_arch_got_jump(const uint8_t *j)
{
    if (word(j) == I_BTI_C)
        j += 4;
    uint32_t adrp = word(j), ldr = word(j + 4), br = word(j + 12);
    if ((adrp & 0x9f00001fu) != 0x90000010u || (ldr & 0xffc003ffu) != 0xf9400211u ||
        br != 0xd61f0220u)
        return 0;
    uint64_t immlo = (adrp >> 29) & 3, immhi = (adrp >> 5) & 0x7ffff;
    int64_t page = (int64_t)(((immhi << 2) | immlo) << 43) >> 31; /* sign-extend, << 12 */
    uintptr_t slot =
        ((uintptr_t)j & ~(uintptr_t)0xfff) + (uintptr_t)page + ((ldr >> 10) & 0xfff) * 8;
    uintptr_t v;
    memcpy(&v, (const void *)slot, sizeof v);
    return v;
}

/* dlopen's faked return address (callas.S): `ldp x29, x30, [sp], #16; ret`,
 * the usual end of a function's epilogue, whose unwind row (CFA = sp + 16,
 * x29 and x30 saved below it) sf_call_as's stack layout answers. */
const uint8_t *sf_arch_find_ret(const uint8_t *lo, const uint8_t *from, const uint8_t *end)
{
    from = (const uint8_t *)((uintptr_t)from & ~(uintptr_t)3);
    lo = (const uint8_t *)(((uintptr_t)lo + 3) & ~(uintptr_t)3);
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *p = pass ? lo : from, *stop = pass ? from : end;
        for (size_t n = 0; p + 8 <= stop && n < (1u << 20); p += 4, n++)
            if (word(p) == 0xa8c17bfdu && word(p + 4) == I_RET)
                return p;
    }
    return NULL;
}

/* No shadow stack (GCS) support in this runtime's kernels of interest. */
int sf_shadow_stack_on(void)
{
    return 0;
}

/* The loader maps a BTI object's text with PROT_BTI (guarded pages: an
 * indirect branch must land on a `bti`); our mprotect must keep it. The
 * object says so in its PT_GNU_PROPERTY notes. */
#ifndef PROT_BTI
#define PROT_BTI 0x10
#endif
#ifndef GNU_PROPERTY_AARCH64_FEATURE_1_AND
#define GNU_PROPERTY_AARCH64_FEATURE_1_AND 0xc0000000u
#endif
int sf_arch_text_prot(const void *phdrs, int phnum, uintptr_t bias)
{
    const ElfW(Phdr) *ph = phdrs;
    for (int i = 0; i < phnum; i++) {
        if (ph[i].p_type != PT_GNU_PROPERTY)
            continue;
        const uint8_t *p = (const uint8_t *)(bias + ph[i].p_vaddr), *end = p + ph[i].p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *desc = p + sizeof *n + ((n->n_namesz + 3) & ~3u);
            const uint8_t *next = desc + ((n->n_descsz + 7) & ~7u);
            if (next > end)
                break;
            if (n->n_type == NT_GNU_PROPERTY_TYPE_0 && n->n_namesz == 4 &&
                !memcmp(p + sizeof *n, "GNU", 4)) {
                for (const uint8_t *q = desc; q + 8 <= desc + n->n_descsz;) {
                    uint32_t type = word(q), size = word(q + 4);
                    if (type == GNU_PROPERTY_AARCH64_FEATURE_1_AND && size >= 4)
                        return word(q + 8) & 1 ? PROT_BTI : 0;
                    q += 8 + ((size + 7) & ~7u);
                }
            }
            p = next;
        }
    }
    return 0;
}
