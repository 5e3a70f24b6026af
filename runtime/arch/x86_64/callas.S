/*
 * callas.S - call a function so that it sees another return address.
 *
 * glibc's dlopen and dlmopen resolve a bare library name with the search
 * path (RPATH, RUNPATH, $ORIGIN) of the object their return address lies
 * in. Our interposed dlopen would make that object libsftrace.so. So we
 * enter the real function with a return address inside the caller's own
 * code: the address of a `ret` instruction there (the "gadget"), with our
 * continuation in the stack slot above it. The real function returns to
 * the gadget, whose `ret` returns here. The gadget is found by
 * hooks.c: a function's final `ret` after a `pop`, so that unwinders
 * walking out of the real function (gdb, a crash inside a constructor)
 * step through it to us (see the stack layout below).
 *
 * void *sf_call_as(void *a0, void *a1, void *a2, void *fn, const void *gadget)
 * calls fn(a0, a1, a2) with the return address `gadget`.
 */
        .text
        .globl  sf_call_as
        .hidden sf_call_as
        .type   sf_call_as, @function
        .p2align 4
sf_call_as:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        /* Where the gadget's ret goes, four times: an unwinder looks up the
         * gadget's unwind row at gadget - 1, in the `pop` before the `ret`
         * (CFA = rsp + 16), or further up an epilogue; every CFA up to
         * rsp + 32 then finds us as the return address. At fn's entry rsp
         * must be 8 mod 16, as after a call. */
        leaq    1f(%rip), %rax
        andq    $-16, %rsp
        pushq   %rax
        pushq   %rax
        pushq   %rax
        pushq   %rax
        pushq   %r8                     /* fn's return address: the gadget */
        jmpq    *%rcx
1:      movq    %rbp, %rsp
        .cfi_def_cfa_register %rsp
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        ret
        .cfi_endproc
        .size   sf_call_as, .-sf_call_as

        .section .note.GNU-stack,"",@progbits
