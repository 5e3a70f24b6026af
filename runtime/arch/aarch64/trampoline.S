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
 * Everything else goes to the slow path, which blocks signals, moves sp to
 * the thread's side stack (TLS side, as on x86_64: see there; the spare
 * one for a thread without a slot), saves x0-x18, x29, x30, nzcv and q0-q7
 * there (argument and result registers; C code and libc may use them),
 * keeps sp 16-aligned, and calls sf_slow_event(W1, mode, regs): 96 bytes
 * of the program's stack in all, with the sled's 16. The CFA is x29-based
 * while sp is elsewhere.
 *
 * CFI: the return address column is the pc pseudo-register (DWARF 32) held
 * in x30, and the caller's x30 and x0 are the words the sled pushed, so
 * unwinders see trampoline -> instrumented function -> its caller.
 */

#define TLS_POS 0
#define TLS_HI_NOT 8
#define TLS_SIDE 48

#define NR_rt_sigprocmask 135
#define SIG_BLOCK 0
#define SIG_SETMASK 2

#define SLOW_RECORD 1
#define SLOW_ARGS 2
#define SLOW_RET 4
#define SLOW_ENTER 8
#define SLOW_LEAVE 16
#define SLOW_DESC 32
#define SLOW_KEY 64
#define SLOW_TRIG 128


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
        /* absolute: the assembler's running offset is not restored with
         * the state above, so an adjustment here would give sp - 16 */
        .cfi_def_cfa_offset 16
        .cfi_restore 1
        .cfi_restore 2
        .cfi_restore 3
        b       .Lslow
END(sf_trampoline)

/*
 * The slow path: x0 = mode, sp and x30 as at a trampoline's entry. A
 * hidden global (sf_trampoline_slowpath), so backtraces through it name it.
 *
 * On the program's stack it keeps only AREA bytes: the registers it needs
 * to block signals and find its side stack (x1-x3, x8), x19 (the side
 * stack's top, to give it back), the mode, the signal mask, x29 (the CFA
 * base from here on) and x30. Then, on the side stack (see x86_64's), it
 * saves x0-x18, x29, x30, nzcv and q0-q7 as the array sf_slow_event reads
 * (arch.h: word 40 holds the sled's sp) and calls C.
 */
#define AREA 80   /* x1 x2 x3 x8 x19 mode mask x29 x30, 16-aligned */
#define A_X19 32
#define A_MODE 40
#define A_MASK 48
#define A_X29 56
#define A_NZCV 72 /* kept here on the way out */
#define RFRAME 336 /* the array: 41 words, 16-aligned */
        .p2align 4
        .globl  sf_trampoline_slowpath
        .hidden sf_trampoline_slowpath
        .type   sf_trampoline_slowpath, %function
sf_trampoline_slowpath:
        .cfi_startproc
        ENTRY_CFI
.Lslow:
        sub     sp, sp, #AREA
        .cfi_adjust_cfa_offset AREA
        stp     x1, x2, [sp]
        stp     x3, x8, [sp, #16]
        stp     x19, x0, [sp, #A_X19]
        .cfi_rel_offset 19, A_X19
        stp     x29, x30, [sp, #A_X29]
        .cfi_rel_offset 29, A_X29
        .cfi_rel_offset 32, A_X29 + 8   /* the return address, x30 */
        mov     x29, sp
        .cfi_def_cfa_register 29
        mov     x0, #SIG_BLOCK
        adrp    x1, sf_block_all
        add     x1, x1, :lo12:sf_block_all
        add     x2, x29, #A_MASK
        mov     x3, #8
        mov     x8, #NR_rt_sigprocmask
        svc     #0
        mrs     x1, tpidr_el0
        adrp    x2, :gottprel:sf_tls
        ldr     x2, [x2, #:gottprel_lo12:sf_tls]
        add     x1, x1, x2              /* x1 = &sf_tls */
        ldr     x19, [x1, #TLS_SIDE]
        cbz     x19, 7f
        str     xzr, [x1, #TLS_SIDE]    /* ours until we leave it */
        mov     sp, x19                 /* onto the side stack */
        b       1f
7:      /* None of its own: the spare stack if free (as on x86_64) */
        adrp    x2, sf_spare_busy
        add     x2, x2, :lo12:sf_spare_busy
        ldaxr   w3, [x2]
        cbnz    w3, 9f
        mov     w3, #1
        stxr    w0, w3, [x2]
        cbnz    w0, 1f                  /* lost it: stay (x19 = 0) */
        adrp    x19, sf_spare_top
        ldr     x19, [x19, #:lo12:sf_spare_top]
        mov     sp, x19
        b       1f
9:      clrex                           /* taken: stay (x19 = 0) */
1:      sub     sp, sp, #RFRAME
        ldp     x1, x2, [x29]           /* the program's x1-x3, x8 again */
        ldp     x3, x8, [x29, #16]
        ldr     x0, [x29, #AREA]        /* x0 at the sled (the sled pushed it) */
        stp     x0, x1, [sp]
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        ldr     x9, [x29, #A_X29]
        stp     x18, x9, [sp, #144]     /* x18, x29 */
        mrs     x9, nzcv
        stp     x30, x9, [sp, #160]     /* x30, nzcv */
        stp     q0, q1, [sp, #176]
        stp     q2, q3, [sp, #208]
        stp     q4, q5, [sp, #240]
        stp     q6, q7, [sp, #272]
        add     x9, x29, #AREA + 16     /* the sled's sp: word 40 */
        str     x9, [sp, #320]
        ldr     w1, [x29, #A_MODE]
        ldr     w0, [x30]               /* W1 */
        mov     x2, sp                  /* the saved registers */
        bl      sf_slow_event
        ldp     q0, q1, [sp, #176]
        ldp     q2, q3, [sp, #208]
        ldp     q4, q5, [sp, #240]
        ldp     q6, q7, [sp, #272]
        ldp     x30, x9, [sp, #160]
        str     x9, [x29, #A_NZCV]      /* nzcv, restored last */
        ldp     x4, x5, [sp, #32]
        ldp     x6, x7, [sp, #48]
        ldr     x9, [sp, #72]
        ldp     x10, x11, [sp, #80]
        ldp     x12, x13, [sp, #96]
        ldp     x14, x15, [sp, #112]
        ldp     x16, x17, [sp, #128]
        ldr     x18, [sp, #144]
        mov     sp, x29                 /* back on the program's stack */
        cbz     x19, 2f
        adrp    x2, sf_spare_top
        ldr     x2, [x2, #:lo12:sf_spare_top]
        cmp     x19, x2
        b.ne    8f
        adrp    x2, sf_spare_busy
        add     x2, x2, :lo12:sf_spare_busy
        stlr    wzr, [x2]               /* free the spare stack */
        b       2f
8:      mrs     x1, tpidr_el0
        adrp    x2, :gottprel:sf_tls
        ldr     x2, [x2, #:gottprel_lo12:sf_tls]
        add     x1, x1, x2
        str     x19, [x1, #TLS_SIDE]
2:      mov     x0, #SIG_SETMASK
        add     x1, sp, #A_MASK
        mov     x2, #0
        mov     x3, #8
        mov     x8, #NR_rt_sigprocmask
        svc     #0
        ldr     x0, [sp, #A_NZCV]
        msr     nzcv, x0
        ldp     x1, x2, [sp]
        ldp     x3, x8, [sp, #16]
        ldr     x19, [sp, #A_X19]
        .cfi_restore 19
        .cfi_def_cfa sp, AREA + 16
        ldr     x29, [sp, #A_X29]
        .cfi_restore 29
        .cfi_register 32, 30
        add     sp, sp, #AREA
        .cfi_adjust_cfa_offset -AREA
        add     x30, x30, #12
        ret
        .cfi_endproc
        .size   sf_trampoline_slowpath, .-sf_trampoline_slowpath

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
/* descendants mode, flow functions (follow.c) */
SLOW_VARIANT(sf_trampoline_desc_key, SLOW_RECORD | SLOW_DESC | SLOW_ARGS | SLOW_KEY)
SLOW_VARIANT(sf_trampoline_desc_key_leave, SLOW_RECORD | SLOW_DESC | SLOW_LEAVE | SLOW_RET | SLOW_KEY)
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
