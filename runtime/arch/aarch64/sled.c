/*
 * sled.c - aarch64 specifics: XRay sled encodings and patching, the stub
 * format, the timer (cntvct_el0), the signal-restart fix-up for the
 * trampoline's store window, and the dlopen gadget.
 *
 * A sled is 8 instructions (32 bytes). Unpatched: `b #32` and 7 nops.
 * Patched (docs/design.md, "aarch64"):
 *   0  stp  x0, x30, [sp, #-16]!
 *   1  ldr  x0, 12f          (the trampoline's address, words 4-5)
 *   2  blr  x0
 *   3  .word W1              (the log word; the trampoline reads it at [x30])
 *   4  .quad trampoline
 *   6  ldp  x0, x30, [sp], #16   (the trampoline returns here: x30 + 12)
 *   7  nop
 * Unlike compiler-rt's layout this clobbers neither x16 nor x17: with
 * -mbranch-protection=bti clang keeps an indirect tail call's target in x16
 * across the sled. x0 and x30 are saved by the sled itself.
 *
 * Patch order (Arm ARM B2.2.5, "concurrent modification and execution of
 * instructions"): words 1..7 are written while word 0 is still `b #32`, so
 * no thread executes them; they are cleaned to the point of unification and
 * invalidated from the instruction cache (__builtin___clear_cache: dc cvau,
 * dsb ish, ic ivau, dsb ish, isb); only then is word 0 replaced, with one
 * aligned 32-bit store, and cleaned again. A `b` -> `stp` change of one
 * word is not among the instructions the architecture lists as safe to
 * change concurrently (B, BL, NOP, BRK, SVC, HVC, SMC, ISB), so a thread
 * running the old word at that moment sees either the old or the new
 * instruction only because the patcher writes word 0 with a single-copy
 * atomic store after everything it leads to is visible; see design.md.
 */
#include <signal.h>
#include <string.h>
#include <sys/ucontext.h>

#include "../../runtime.h"

#define I_B32 0x14000008u    /* b #32 */
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
    sf_trampoline_args_enter(void), sf_trampoline_ret_leave(void),
    sf_trampoline_desc_leave(void);

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
};
const void *const sf_tramp_mono[T_COUNT] = {
    sf_trampoline_slow_record,
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
    if ((next & 0xfc000000u) == 0x14000000u)                     /* b imm26 */
        return XRAY_TAIL;
    if ((next & 0xfffffc1fu) == 0xd61f0000u && next != 0xd61f03c0u) /* br xN */
        return XRAY_TAIL;
    return kind;
}

int sf_arch_sled_patched(const uint8_t *sled)
{
    return word(sled) == I_STP && word(sled + 8) == I_BLR_X0;
}

int sf_arch_sled_check(const uint8_t *sled, int kind)
{
    (void)kind;
    if (sf_arch_sled_patched(sled))
        return 0;
    return word(sled) == I_B32 && word(sled + 4) == I_NOP ? 0 : -1;
}

static void put(uint8_t *p, uint32_t w)
{
    memcpy(p, &w, 4);
}

void sf_arch_sled_patch(uint8_t *sled, int kind, uint32_t w1, const void *target)
{
    (void)kind;
    /* target is a stub (sf_arch_write_stub): the sled loads the trampoline
     * address the stub holds and calls it directly, with no range limit. */
    uint64_t tramp;
    memcpy(&tramp, (const uint8_t *)target + 8, 8);
    uint8_t want[28];
    put(want, I_LDR_X0);
    put(want + 4, I_BLR_X0);
    put(want + 8, w1);
    memcpy(want + 12, &tramp, 8);
    put(want + 20, I_LDP);
    put(want + 24, I_NOP);
    if (word(sled) == I_STP) {
        if (!memcmp(sled + 4, want, sizeof want))
            return; /* patched exactly so already (sftrace_setup again) */
        /* Live and different: turn the sled off first (stp -> b is one
         * aligned word, like the patch itself), then rewrite it. */
        __atomic_store_n((uint32_t *)sled, I_B32, __ATOMIC_RELEASE);
        __builtin___clear_cache((char *)sled, (char *)sled + 4);
    }
    memcpy(sled + 4, want, sizeof want);
    __builtin___clear_cache((char *)sled + 4, (char *)sled + 32);
    __atomic_store_n((uint32_t *)sled, I_STP, __ATOMIC_RELEASE);
    __builtin___clear_cache((char *)sled, (char *)sled + 4);
}

/* ldr x0, #8; br x0; .quad target: a callable stub (for a slot given by
 * sftrace_setup), and the sleds read the target from it. x0 is free: the
 * sled saved it. */
void sf_arch_write_stub(uint8_t *stub, const void *target)
{
    uint64_t t = (uint64_t)(uintptr_t)target;
    memcpy(stub + 8, &t, 8);
    put(stub, 0x58000040u); /* ldr x0, #8 */
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
    return w == I_B32 || sf_arch_sled_patched(t);
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
    uintptr_t slot = ((uintptr_t)j & ~(uintptr_t)0xfff) + (uintptr_t)page +
                     ((ldr >> 10) & 0xfff) * 8;
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
