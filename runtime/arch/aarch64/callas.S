/*
 * callas.S - aarch64: call a function so that it sees another return
 * address (see arch/x86_64/callas.S for why dlopen needs it).
 *
 * void *sf_call_as(void *a0, void *a1, void *a2, void *fn, const void *gadget)
 * calls fn(a0, a1, a2) with x30 = gadget, an `ldp x29, x30, [sp], #16; ret`
 * of the caller's object (sled.c finds it). fn is entered with sp pointing
 * at {x29: our frame record, x30: our continuation}, so the gadget pops
 * them and returns here; our own frame record lies above that pair, so a
 * signal arriving after the gadget's pop cannot overwrite anything we
 * still need. Unwinders: fn's return address is the gadget, whose row
 * (CFA = sp + 16) finds x29 and x30 in that pair, then our frame.
 */
        .text
        .globl  sf_call_as
        .hidden sf_call_as
        .type   sf_call_as, %function
        .p2align 4
sf_call_as:
        .cfi_startproc
        hint    #34                     /* bti c */
        stp     x29, x30, [sp, #-48]!   /* our frame record at sp0 - 48 ... */
        .cfi_def_cfa_offset 48
        .cfi_offset 29, -48
        .cfi_offset 30, -40
        /* ... moved up: the record at sp0 - 32, the gadget's pair below */
        stp     x29, x30, [sp, #16]
        .cfi_offset 29, -32
        .cfi_offset 30, -24
        add     x29, sp, #16
        .cfi_def_cfa x29, 32
        adr     x5, 1f
        stp     x29, x5, [sp]           /* what the gadget pops */
        mov     x16, x3                 /* br x16 lands on a `bti c` */
        mov     x30, x4
        br      x16
1:      /* sp = sp0 - 32 = x29: our frame record */
        ldp     x29, x30, [sp], #32
        .cfi_def_cfa sp, 0
        .cfi_restore 29
        .cfi_restore 30
        ret
        .cfi_endproc
        .size   sf_call_as, .-sf_call_as

        .section .note.GNU-stack,"",%progbits
