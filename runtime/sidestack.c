/*
 * sidestack.c - what the trampolines' slow path (arch/ARCH/trampoline.S)
 * needs besides each thread's own side stack: the process's spare side
 * stack, for threads without a slot (a thread's first event, which gets it
 * one; a disabled or exited thread), and the signal set it blocks.
 * docs/design.md ("Little of the program's stack") explains.
 */
#include "runtime.h"

#define SPARE_SIZE 32768u

static uint8_t spare_stack[SPARE_SIZE] __attribute__((aligned(64)));

/* Its top, where the trampoline puts sp, and whether a thread is on it (the
 * trampoline takes it with an atomic exchange and frees it on the way out;
 * a forked child frees it, buffer.c). */
uint8_t *const sf_spare_top = spare_stack + SPARE_SIZE;
uint32_t sf_spare_busy;

/* Every signal but glibc's own two (32, 33: thread cancellation and setxid),
 * as pthread_sigmask blocks them: the kernel's 64-bit sigset. */
const uint64_t sf_block_all = ~((1ull << 31) | (1ull << 32));
