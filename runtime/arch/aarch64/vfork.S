/*
 * vfork.S - aarch64: vfork, interposed (see arch/x86_64/vfork.S for why it
 * is written in assembly). As glibc does, it is clone(CLONE_VM |
 * CLONE_VFORK | SIGCHLD) on the same stack; x30 survives the system call
 * in both processes, and what either side stores lies below the caller's
 * stack pointer. (qemu-user runs it as a fork.)
 */
        .text
        .globl  vfork
        .type   vfork, %function
        .p2align 4
vfork:
        .cfi_startproc
        hint    #34                     /* bti c */
        mov     x0, #0x4111             /* CLONE_VM | CLONE_VFORK | SIGCHLD */
        mov     x1, #0                  /* the same stack */
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x8, #220                /* SYS_clone */
        svc     #0
        cmn     x0, #4095
        b.cs    3f
        stp     x0, x30, [sp, #-16]!
        .cfi_def_cfa_offset 16
        .cfi_offset 30, -8
        cbnz    x0, 1f
        bl      sf_vfork_child
        b       2f
1:      bl      sf_vfork_parent
2:      ldp     x0, x30, [sp], #16
        .cfi_def_cfa_offset 0
        .cfi_restore 30
        ret
3:      neg     x0, x0                  /* failed: errno, -1 */
        stp     x0, x30, [sp, #-16]!
        .cfi_def_cfa_offset 16
        .cfi_offset 30, -8
        bl      __errno_location
        ldp     x1, x30, [sp], #16
        .cfi_def_cfa_offset 0
        .cfi_restore 30
        str     w1, [x0]
        mov     x0, #-1
        ret
        .cfi_endproc
        .size   vfork, .-vfork

        .section .note.GNU-stack,"",%progbits
