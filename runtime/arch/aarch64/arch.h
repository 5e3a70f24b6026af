/*
 * arch.h - what the CPU-independent runtime needs to know about aarch64, as
 * constants and inline helpers (the functions are declared in runtime.h).
 */
#ifndef SFTRACE_ARCH_H
#define SFTRACE_ARCH_H

#define SF_ARCH_MACHINE 183 /* EM_AARCH64, for the PROCESS chunk */
#define SF_SLED_SIZE 32     /* bytes of one XRay sled (8 instructions) */

/* The slow path's saved registers (trampoline.S), in 64-bit words: x0..x18
 * at 0..18, then x29, x30, nzcv, q0..q7; they are on the side stack, so
 * word 40 holds the sled's own sp (the same at every sled of one frame:
 * entry, exit and tail call). */
#define SF_R_ARGS                                                                                  \
    {                                                                                              \
        0, 1, 2, 3, 4, 5                                                                           \
    }              /* x0..x5 */
#define SF_R_RET 0 /* x0 */
#define SF_R_SLED_SP 40
/* The sled's return-address slot (x86_64) or sp (aarch64), from regs. */
#define SF_SLED_SP(regs, exit) ((void)(exit), (uintptr_t)(regs)[SF_R_SLED_SP])

static inline void sf_arch_pause(void)
{
    __asm__ volatile("yield");
}

#endif
