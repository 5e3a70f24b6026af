/*
 * vfork.S - vfork, interposed (buffer.c, sf_vfork_child and
 * sf_vfork_parent, say why): the child runs in the parent's memory with
 * the parent's TLS, so the runtime gives it a recording state of its own,
 * and gives the parent's thread its state back when it resumes.
 *
 * vfork cannot be wrapped in C: the child would return through, and
 * overwrite, the wrapper's frame, which the parent then returns through.
 * As glibc does, the return address is popped into a register before the
 * system call and pushed back after it: the child writes the same bytes
 * there as the parent will, and everything else either side stores lies
 * below the caller's stack pointer, where the other has nothing.
 */
        .text
        .globl  vfork
        .type   vfork, @function
        .p2align 4
vfork:
        .cfi_startproc
        popq    %rdi                    /* the return address */
        .cfi_adjust_cfa_offset -8
        .cfi_register %rip, %rdi
        movl    $58, %eax               /* SYS_vfork */
        syscall
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rip, 0
        cmpq    $-4095, %rax
        jae     3f
        pushq   %rax                    /* the result; rsp 16-aligned for the calls */
        .cfi_adjust_cfa_offset 8
        testq   %rax, %rax
        jnz     1f
        call    sf_vfork_child
        jmp     2f
1:      call    sf_vfork_parent
2:      popq    %rax
        .cfi_adjust_cfa_offset -8
        ret
3:      negq    %rax                    /* failed: errno, -1 */
        pushq   %rax
        .cfi_adjust_cfa_offset 8
        call    __errno_location@PLT
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        movl    %ecx, (%rax)
        movq    $-1, %rax
        ret
        .cfi_endproc
        .size   vfork, .-vfork

        .section .note.GNU-stack,"",@progbits
