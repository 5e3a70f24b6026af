/*
 * arch.h - what the CPU-independent runtime needs to know about x86_64, as
 * constants and inline helpers (the functions are declared in runtime.h).
 */
#ifndef SFTRACE_ARCH_H
#define SFTRACE_ARCH_H

#define SF_ARCH_MACHINE 62 /* EM_X86_64, for the PROCESS chunk */
#define SF_SLED_SIZE 11    /* bytes of one XRay sled */

/* The slow path's saved registers (trampoline.S), in 64-bit words from the
 * saved rbx upwards: the integer argument registers in order, the return
 * value, and the sled's frame: the return-address slot every sled of one
 * frame sees at rsp (exit sleds jump, so theirs is one lower). */
#define SF_R_ARGS                                                                                  \
    {                                                                                              \
        5, 6, 9, 8, 4, 3                                                                           \
    }               /* rdi rsi rdx rcx r8 r9 */
#define SF_R_RET 10 /* rax */
#define SF_R_FRAME_EXIT 11
#define SF_R_FRAME 12
/* The sled's return-address slot (x86_64) or sp (aarch64), from regs: here
 * the registers are saved on the program's stack, right below it. */
#define SF_SLED_SP(regs, exit) ((uintptr_t) & (regs)[(exit) ? SF_R_FRAME_EXIT : SF_R_FRAME])

static inline void sf_arch_pause(void)
{
    __builtin_ia32_pause();
}

#endif
