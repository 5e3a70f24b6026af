/*
 * sftrace.h - the public C interface of libsftrace.so.
 *
 * Programs built with XRay instrumentation can opt in to tracing without
 * `sftrace record`: link with -lsftrace and call sftrace_setup() (or use
 * SFTRACE_SETUP_HERE() once in one C or C++ file), then run with
 * SFTRACE_OUTPUT_FILE=sf.log. Without that variable nothing is patched and
 * nothing is recorded.
 */
#ifndef SFTRACE_H
#define SFTRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Enable tracing of the object that contains the slots. The slots are
 * 16-byte functions in that object (ret, then 15 nops); the runtime may
 * rewrite them into jumps to its trampoline. Safe to call more than once,
 * from any thread. With SFTRACE_SETUP_THREAD_ONLY set, only threads that
 * called it are recorded. */
void sftrace_setup(void (*entry_slot)(void), void (*exit_slot)(void), void (*tailcall_slot)(void));

/* Record an allocation event: kind 1 alloc, 2 dealloc, 3 realloc (new
 * block), 4 realloc (old block). */
void sftrace_alloc_event(uint8_t kind, size_t size, size_t align, uint8_t *ptr);

/* The body of one 16-byte slot: a return, padded with no-ops. */
#if defined(__x86_64__)
#define SFTRACE_SLOT_BODY_ "ret\n\t.fill 15,1,0x90\n\t"
#elif defined(__aarch64__)
#define SFTRACE_SLOT_BODY_ "ret\n\t.fill 3,4,0xd503201f\n\t"
#else
#error "sftrace.h: SFTRACE_SETUP_HERE() supports x86_64 and aarch64 only"
#endif

/* Define the slots and a constructor that calls sftrace_setup(). Use once
 * per object (executable or shared library), at file scope, in C or C++:
 *
 *     #include <sftrace.h>
 *     SFTRACE_SETUP_HERE()
 *
 * The slots are local symbols (one set per translation unit that uses the
 * macro); the asm labels keep their names unmangled in C++. The constructor is
 * never instrumented itself. */
#define SFTRACE_SETUP_HERE()                                                                       \
    __asm__(".pushsection .text.sftrace_slots,\"ax\",@progbits\n\t"                                \
            ".p2align 4\n\t"                                                                       \
            ".local sftrace_slot_entry_, sftrace_slot_exit_, sftrace_slot_tail_\n"                 \
            ".type sftrace_slot_entry_, @function\n"                                               \
            ".type sftrace_slot_exit_, @function\n"                                                \
            ".type sftrace_slot_tail_, @function\n"                                                \
            "sftrace_slot_entry_:\n\t" SFTRACE_SLOT_BODY_                                          \
            "sftrace_slot_exit_:\n\t" SFTRACE_SLOT_BODY_                                           \
            "sftrace_slot_tail_:\n\t" SFTRACE_SLOT_BODY_ ".size sftrace_slot_entry_, 16\n\t"       \
            ".size sftrace_slot_exit_, 16\n\t"                                                     \
            ".size sftrace_slot_tail_, 16\n\t"                                                     \
            ".popsection");                                                                        \
    __attribute__((visibility("hidden"))) void sftrace_slot_entry_(void) __asm__(                  \
        "sftrace_slot_entry_");                                                                    \
    __attribute__((visibility("hidden"))) void sftrace_slot_exit_(void) __asm__(                   \
        "sftrace_slot_exit_");                                                                     \
    __attribute__((visibility("hidden"))) void sftrace_slot_tail_(void) __asm__(                   \
        "sftrace_slot_tail_");                                                                     \
    __attribute__((constructor, xray_never_instrument)) static void sftrace_setup_ctor_(void)      \
    {                                                                                              \
        sftrace_setup(sftrace_slot_entry_, sftrace_slot_exit_, sftrace_slot_tail_);                \
    }

#ifdef __cplusplus
}
#endif

#endif
