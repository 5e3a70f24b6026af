/*
 * sled.c - x86_64 specifics: XRay sled encodings, jump stubs, CPU features
 * and the signal-restart fix-up for the trampoline's store window.
 *
 * Sled layouts (see docs/design.md and LLVM's xray_x86_64.cpp):
 *   entry/tail, unpatched: eb 09 <9-byte nop>      patched: 41 ba W1 e8 rel32
 *   exit, unpatched:       c3 <10-byte nop>        patched: 41 ba W1 e9 rel32
 * rel32 is relative to sled+11. To stay safe while other threads run, bytes
 * 2..10 are written first and the first two bytes last, in one atomic store.
 */
#include <cpuid.h>
#include <signal.h>
#include <string.h>
#include <sys/ucontext.h>

#include "../../runtime.h"

void sf_trampoline_desc(void), sf_trampoline_enter(void), sf_trampoline_leave(void),
    sf_trampoline_args(void), sf_trampoline_ret(void), sf_trampoline_mono(void),
    sf_trampoline_desc_mono(void), sf_trampoline_enter_mono(void), sf_trampoline_leave_mono(void),
    sf_trampoline_args_enter(void), sf_trampoline_ret_leave(void), sf_trampoline_leave_tail(void),
    sf_trampoline_desc_leave(void), sf_trampoline_desc_leave_tail(void),
    sf_trampoline_desc_leave_mono(void), sf_trampoline_trig(void);
void sf_trampoline_desc_key(void), sf_trampoline_desc_key_leave(void);
void sf_trampoline_key0(void), sf_trampoline_key1(void), sf_trampoline_key2(void),
    sf_trampoline_key3(void), sf_trampoline_key4(void), sf_trampoline_key5(void),
    sf_trampoline_keyr(void);

/* Indexed by enum sf_tramp. The slow path finds the sled's kind in W1, so
 * one _mono variant serves exit and tail sleds alike. */
const void *const sf_tramp_fast[T_COUNT] = {
    sf_trampoline,
    sf_trampoline_args,
    sf_trampoline_ret,
    sf_trampoline_enter,
    sf_trampoline_leave,
    sf_trampoline_desc,
    sf_trampoline_args_enter,
    sf_trampoline_ret_leave,
    sf_trampoline_leave_tail,
    sf_trampoline_desc_leave,
    sf_trampoline_desc_leave_tail,
    sf_trampoline_key0,
    sf_trampoline_key1,
    sf_trampoline_key2,
    sf_trampoline_key3,
    sf_trampoline_key4,
    sf_trampoline_key5,
    sf_trampoline_keyr,
    sf_trampoline_desc_key,
    sf_trampoline_desc_key_leave,
    sf_trampoline_trig,
};
const void *const sf_tramp_mono[T_COUNT] = {
    sf_trampoline_mono,
    sf_trampoline_args,
    sf_trampoline_ret,
    sf_trampoline_enter_mono,
    sf_trampoline_leave_mono,
    sf_trampoline_desc_mono,
    sf_trampoline_args_enter,
    sf_trampoline_ret_leave,
    sf_trampoline_leave_mono,
    sf_trampoline_desc_leave_mono,
    sf_trampoline_desc_leave_mono,
    /* without a TSC, keys go through C with every argument register or rax */
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_args,
    sf_trampoline_ret,
    sf_trampoline_desc_key, /* the slow path already */
    sf_trampoline_desc_key_leave,
    sf_trampoline_trig,
};

_Static_assert(__builtin_offsetof(struct sf_tls, pos) == 0, "TLS_POS in trampoline.S");
_Static_assert(__builtin_offsetof(struct sf_tls, hi_not) == 8, "TLS_HI_NOT in trampoline.S");
_Static_assert(__builtin_offsetof(struct sf_tls, scope) == 16, "TLS_SCOPE in trampoline.S");
_Static_assert(__builtin_offsetof(struct sf_tls, ext_words) == 40,
               "TLS_EXT in trampoline.S, argtramp.S");

uint32_t sf_xsave_mask_lo, sf_xsave_mask_hi, sf_xsave_size = 512, sf_use_xsave;

static inline uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The CPUID bits glibc read at start-up (ld.so), without a cpuid of ours:
 * in a VM each cpuid is a trap to the hypervisor (~6 us on the benchmark
 * machine), and every process of a build pays this. */
#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>
#define HAVE_X86_PLATFORM 1
#endif

static int have_xsave(void)
{
#ifdef HAVE_X86_PLATFORM
    return CPU_FEATURE_PRESENT(XSAVE) && CPU_FEATURE_PRESENT(OSXSAVE);
#else
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 26)) && (c & (1u << 27));
#endif
}

void sf_arch_init(void)
{
    unsigned a, b, c, d;
    if (have_xsave()) {
        /* XSAVE supported and enabled by the OS: save every enabled component. */
        uint64_t xcr0 = xgetbv0();
        __cpuid_count(0xd, 0, a, b, c, d);
        if (b >= 576) {
            sf_xsave_mask_lo = (uint32_t)xcr0;
            sf_xsave_mask_hi = (uint32_t)(xcr0 >> 32);
            sf_xsave_size = (b + 63) & ~63u;
            sf_use_xsave = 1;
        }
    }
}

int sf_arch_tsc_invariant(void)
{
#ifdef HAVE_X86_PLATFORM
    if (CPU_FEATURE_PRESENT(INVARIANT_TSC))
        return 1;
#else
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000007) {
        __cpuid(0x80000007, a, b, c, d);
        if (d & (1u << 8))
            return 1;
    }
#endif
    /* Hypervisors often hide the CPUID bit; the kernel's own choice of the TSC
     * as clocksource means it found it stable and synchronized. */
    char cs[32];
    ssize_t n = sf_read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource", cs,
                             sizeof cs - 1);
    return n >= 3 && !memcmp(cs, "tsc", 3);
}

uint64_t sf_arch_now(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

void sf_arch_restart_fixup(void *ucontext)
{
    ucontext_t *uc = ucontext;
    uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (rip > (uintptr_t)sf_win_start && rip < (uintptr_t)sf_win_commit)
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)sf_win_start;
    else if (rip > (uintptr_t)sf_win2_start && rip < (uintptr_t)sf_win2_commit)
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)sf_win2_start;
    else if (rip > (uintptr_t)sf_win3_start && rip < (uintptr_t)sf_win3_commit)
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)sf_win3_start;
}

int sf_arch_sled_check(const uint8_t *sled, int kind)
{
    /* Already patched (by us, or by a previous sftrace_setup): accept. */
    if (sled[0] == 0x41 && sled[1] == 0xba)
        return 0;
    if (kind == XRAY_EXIT)
        return sled[0] == 0xc3 ? 0 : -1;
    /* entry/tail: only the short jmp matters; the nop's encoding can vary */
    return sled[0] == 0xeb && sled[1] == 0x09 ? 0 : -1;
}

void sf_arch_sled_patch(uint8_t *sled, int kind, uint32_t w1, const void *target)
{
    int32_t rel = (int32_t)((intptr_t)target - (intptr_t)(sled + 11));
    memcpy(sled + 2, &w1, 4);
    sled[6] = kind == XRAY_EXIT ? 0xe9 : 0xe8;
    memcpy(sled + 7, &rel, 4);
    /* first two bytes last, atomically: `mov r10d, imm32` */
    __atomic_store_n((uint16_t *)sled, (uint16_t)(0x41 | (0xba << 8)), __ATOMIC_RELEASE);
}

void sf_arch_write_stub(uint8_t *stub, const void *target)
{
    /* jmp *0(%rip); .quad target */
    static const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0};
    uint64_t t = (uint64_t)(uintptr_t)target;
    memcpy(stub + 6, &t, 8);
    memcpy(stub, jmp, 6);
    stub[14] = 0xcc;
    stub[15] = 0xcc;
}

int sf_arch_in_reach(uintptr_t from_lo, uintptr_t from_hi, uintptr_t to)
{
    /* rel32 from the end of any sled in [from_lo, from_hi] must reach `to` */
    const intptr_t lim = 0x7fff0000;
    intptr_t d1 = (intptr_t)to - (intptr_t)from_lo;
    intptr_t d2 = (intptr_t)to - (intptr_t)from_hi;
    return d1 < lim && d1 > -lim && d2 < lim && d2 > -lim;
}

/* The map's kinds are right on x86_64 (clang and rustc emit tail sleds). */
int sf_arch_sled_kind(const uint8_t *sled, int kind)
{
    (void)sled;
    return kind;
}

int sf_arch_sled_patched(const uint8_t *sled)
{
    return sled[0] == 0x41 && sled[1] == 0xba;
}

/* Live control (ctl.c): a sled sf_arch_sled_patch made, turned off or on
 * again. Only its first two bytes change, in one atomic store; bytes 2..10
 * keep the patched `mov`'s immediate and the call, so a thread anywhere in
 * the sled runs whole instructions. Off, they are XRay's own first bytes:
 * the short jump over the sled (entry, tail call) or `ret` (exit). */
void sf_arch_sled_toggle(uint8_t *sled, int kind, int on)
{
    uint16_t v = on                  ? (uint16_t)(0x41 | 0xba << 8)
                 : kind == XRAY_EXIT ? (uint16_t)(0xc3 | 0x90 << 8)
                                     : (uint16_t)(0xeb | 0x09 << 8);
    __atomic_store_n((uint16_t *)sled, v, __ATOMIC_RELEASE);
}

void sf_arch_sled_restore(uint8_t *sled, const uint8_t *orig)
{
    memcpy(sled + 2, orig + 2, SF_SLED_SIZE - 2); /* behind the jump: never run */
    uint16_t head;
    memcpy(&head, orig, 2);
    __atomic_store_n((uint16_t *)sled, head, __ATOMIC_RELEASE);
}

/* Patched by us, on or turned off (an unpatched sled has nops at byte 6). */
int sf_arch_sled_ours(const uint8_t *sled)
{
    return sf_arch_sled_patched(sled) ||
           ((sled[0] == 0xeb || sled[0] == 0xc3) && (sled[6] == 0xe8 || sled[6] == 0xe9));
}

uintptr_t sf_arch_branch_target(const uint8_t *j)
{
    if (j[0] == 0xe9) {
        int32_t rel;
        memcpy(&rel, j + 1, 4);
        return (uintptr_t)(j + 5) + (uintptr_t)(intptr_t)rel;
    }
    if (j[0] == 0xeb)
        return (uintptr_t)(j + 2) + (uintptr_t)(intptr_t)(int8_t)j[1];
    return 0;
}

int sf_arch_is_entry_sled(const uint8_t *t)
{
    if (t[0] == 0xf3 && t[1] == 0x0f && t[2] == 0x1e && t[3] == 0xfa)
        t += 4; /* endbr64 */
    return (t[0] == 0xeb && t[1] == 0x09) || (t[0] == 0x41 && t[1] == 0xba && t[6] == 0xe8);
}

/* If j is `jmp *disp32(%rip)` (a PLT entry, maybe behind endbr64 and bnd,
 * or -fno-plt's jump), the address it jumps to now; else 0. */
uintptr_t sf_arch_got_jump(const uint8_t *j)
{
    if (j[0] == 0xf3 && j[1] == 0x0f && j[2] == 0x1e && j[3] == 0xfa)
        j += 4;
    if (j[0] == 0xf2)
        j++;
    if (j[0] != 0xff || j[1] != 0x25)
        return 0;
    int32_t disp;
    memcpy(&disp, j + 2, 4);
    uintptr_t slot = (uintptr_t)(j + 6) + (uintptr_t)(intptr_t)disp, v;
    memcpy(&v, (const void *)slot, sizeof v);
    return v;
}

int sf_arch_text_prot(const void *phdrs, int phnum, uintptr_t bias)
{
    (void)phdrs;
    (void)phnum;
    (void)bias;
    return 0;
}

/* Each sled is complete when sf_arch_sled_patch returns (design.md). */
void sf_arch_patch_flush(void) {}
