/*
 * trampoline.S - aarch64: the hot path every patched XRay sled calls.
 *
 * A patched sled (sled.c) is `b #4; stp x0, x30, [sp, #-16]!; ldr x0, lit;
 * blr x0; .word W1; .quad lit; ldp x0, x30, [sp], #16`. So here x0 is
 * free (the sled saved it), x30 points at the W1 word, and we return to
 * x30 + 12, the ldp. W1 is the log word, (function id << 2) | kind.
 *
 * The fast path writes one 8-byte record {cntvct_el0 low half, W1} into
 * the thread's buffer and touches only x0 (free), x1-x3 (saved) and the
 * flags, which are dead at every sled: entry (before the prologue), exit
 * (just before ret) and tail call (just before the branch), by the AAPCS64.
 * x16 and x17 are never touched (an indirect tail call keeps its target in
 * x16 across the sled with -mbranch-protection=bti).
 *
 * The store sequence from sf_win_start to sf_win_commit is restartable as on
 * x86_64: a signal inside it moves the pc back to sf_win_start (sled.c).
 *
 * Everything else goes to the slow path, which saves x0-x18, x29, x30,
 * nzcv and q0-q7 (argument and result registers; C code and libc may use
 * them), keeps sp 16-aligned, and calls sf_slow_event(W1, mode, regs).
 *
 * CFI: the return address column is the pc pseudo-register (DWARF 32) held
 * in x30, and the caller's x30 and x0 are the words the sled pushed, so
 * unwinders see trampoline -> instrumented function -> its caller.
 */

#define TLS_POS 0
#define TLS_HI_NOT 8

#define SLOW_RECORD 1
#define SLOW_ARGS 2
#define SLOW_RET 4
#define SLOW_ENTER 8
#define SLOW_LEAVE 16
#define SLOW_DESC 32
#define SLOW_TRIG 64

#define FRAME 304 /* x0..x18, x29, x30, nzcv, q0..q7 */

/* At every trampoline's entry: sp = sled sp - 16, [sp] = x0, [sp+8] = x30. */
#define ENTRY_CFI \
        .cfi_return_column 32; \
        .cfi_def_cfa sp, 16; \
        .cfi_register 32, 30; \
        .cfi_offset 0, -16; \
        .cfi_offset 30, -8

#define BEGIN(name) \
        .globl name; .hidden name; .type name, %function; .p2align 4; name: \
        .cfi_startproc; ENTRY_CFI; hint #34 /* bti c */
#define END(name) \
        .cfi_endproc; .size name, .-name

        .text

BEGIN(sf_trampoline)
        stp     x1, x2, [sp, #-32]!
        .cfi_adjust_cfa_offset 32
        .cfi_rel_offset 1, 0
        .cfi_rel_offset 2, 8
        str     x3, [sp, #16]
        .cfi_rel_offset 3, 16
        mrs     x1, tpidr_el0
        adrp    x2, :gottprel:sf_tls
        ldr     x2, [x2, #:gottprel_lo12:sf_tls]
        add     x1, x1, x2              /* x1 = &sf_tls */
        .globl  sf_win_start
        .hidden sf_win_start
sf_win_start:
        mrs     x0, cntvct_el0
        ldr     w2, [x1, #TLS_HI_NOT]
        lsr     x3, x0, #32
        add     w2, w2, w3              /* ~hi + hi == -1 iff unchanged */
        cmn     w2, #1
        b.ne    .Lslow_record           /* new thread, new high half, disabled */
        ldr     x2, [x1, #TLS_POS]
        ldr     w3, [x30]               /* W1 */
        stp     w0, w3, [x2]
        add     x2, x2, #8
        str     x2, [x1, #TLS_POS]      /* commit */
        .globl  sf_win_commit
        .hidden sf_win_commit
sf_win_commit:
        tst     x2, #0xffff
        b.eq    .Lslow_flush            /* crossed a 64 KiB boundary: full */
        ldr     x3, [sp, #16]
        ldp     x1, x2, [sp], #32
        .cfi_remember_state
        .cfi_adjust_cfa_offset -32
        .cfi_restore 1
        .cfi_restore 2
        .cfi_restore 3
        add     x30, x30, #12
        ret
        .cfi_restore_state
.Lslow_flush:
        mov     x0, #0                  /* mode 0: event already written */
        b       1f
.Lslow_record:
        mov     x0, #SLOW_RECORD
1:      ldr     x3, [sp, #16]
        ldp     x1, x2, [sp], #32
        .cfi_adjust_cfa_offset -32
        .cfi_restore 1
        .cfi_restore 2
        .cfi_restore 3
        b       .Lslow
END(sf_trampoline)

/* The slow path: x0 = mode, sp and x30 as at a trampoline's entry. */
        .p2align 4
        .type   .Lslow_fn, %function
.Lslow_fn:
        .cfi_startproc
        ENTRY_CFI
.Lslow:
        sub     sp, sp, #FRAME
        .cfi_adjust_cfa_offset FRAME
        stp     x1, x2, [sp, #8]
        stp     x3, x4, [sp, #24]
        stp     x5, x6, [sp, #40]
        stp     x7, x8, [sp, #56]
        stp     x9, x10, [sp, #72]
        stp     x11, x12, [sp, #88]
        stp     x13, x14, [sp, #104]
        stp     x15, x16, [sp, #120]
        stp     x17, x18, [sp, #136]
        stp     x29, x30, [sp, #152]
        .cfi_rel_offset 29, 152
        mrs     x1, nzcv
        str     x1, [sp, #168]
        stp     q0, q1, [sp, #176]
        stp     q2, q3, [sp, #208]
        stp     q4, q5, [sp, #240]
        stp     q6, q7, [sp, #272]
        mov     w1, w0                  /* mode */
        ldr     x2, [sp, #FRAME]
        str     x2, [sp]                /* regs[0]: x0 at the sled */
        ldr     w0, [x30]               /* W1 */
        mov     x2, sp                  /* the saved registers */
        mov     x29, sp
        bl      sf_slow_event
        ldp     q0, q1, [sp, #176]
        ldp     q2, q3, [sp, #208]
        ldp     q4, q5, [sp, #240]
        ldp     q6, q7, [sp, #272]
        ldr     x1, [sp, #168]
        msr     nzcv, x1
        ldp     x1, x2, [sp, #8]
        ldp     x3, x4, [sp, #24]
        ldp     x5, x6, [sp, #40]
        ldp     x7, x8, [sp, #56]
        ldp     x9, x10, [sp, #72]
        ldp     x11, x12, [sp, #88]
        ldp     x13, x14, [sp, #104]
        ldp     x15, x16, [sp, #120]
        ldp     x17, x18, [sp, #136]
        ldp     x29, x30, [sp, #152]
        .cfi_restore 29
        add     sp, sp, #FRAME
        .cfi_adjust_cfa_offset -FRAME
        add     x30, x30, #12
        ret
        .cfi_endproc
        .size   .Lslow_fn, .-.Lslow_fn

/* Variants: straight to the slow path with a mode (buffer.c applies the
 * filter rules there). _slow_record is the trampoline of processes that
 * use CLOCK_MONOTONIC. */
#define SLOW_VARIANT(name, mode) \
BEGIN(name); mov x0, #(mode); b .Lslow; END(name)

SLOW_VARIANT(sf_trampoline_slow_record, SLOW_RECORD)
SLOW_VARIANT(sf_trampoline_args, SLOW_RECORD | SLOW_ARGS)
SLOW_VARIANT(sf_trampoline_ret, SLOW_RECORD | SLOW_RET)
SLOW_VARIANT(sf_trampoline_enter, SLOW_RECORD | SLOW_ENTER)
SLOW_VARIANT(sf_trampoline_leave, SLOW_RECORD | SLOW_LEAVE)
SLOW_VARIANT(sf_trampoline_desc, SLOW_RECORD | SLOW_DESC)
SLOW_VARIANT(sf_trampoline_desc_leave, SLOW_RECORD | SLOW_DESC | SLOW_LEAVE)
SLOW_VARIANT(sf_trampoline_args_enter, SLOW_RECORD | SLOW_ARGS | SLOW_ENTER)
SLOW_VARIANT(sf_trampoline_ret_leave, SLOW_RECORD | SLOW_RET | SLOW_LEAVE)
SLOW_VARIANT(sf_trampoline_trig, SLOW_RECORD | SLOW_TRIG) /* live control: ctl.c */

/* int sf_alloc_record(...): no fast path here; C records it (returns 1).
 * The window symbols exist for buffer.c and are empty. */
        .globl  sf_alloc_record
        .hidden sf_alloc_record
        .type   sf_alloc_record, %function
        .globl  sf_win2_start
        .hidden sf_win2_start
        .globl  sf_win2_commit
        .hidden sf_win2_commit
sf_alloc_record:
        .cfi_startproc
        hint    #34
sf_win2_start:
sf_win2_commit:
        mov     w0, #1
        ret
        .cfi_endproc
        .size   sf_alloc_record, .-sf_alloc_record

        .section .note.GNU-stack,"",%progbits
