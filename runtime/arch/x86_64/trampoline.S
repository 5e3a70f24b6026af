/*
 * trampoline.S - the hot path: what every patched XRay sled calls.
 *
 * A patched sled is `mov r10d, W1; call/jmp STUB` where STUB (near the
 * object) jumps here. W1 is the event word as it goes into the log:
 * (function id << 2) | kind, so one trampoline serves entry, exit and tail
 * sleds: entry and tail sleds `call` (our ret goes back into the function),
 * exit sleds `jmp` (our ret returns to the function's caller).
 *
 * The fast path writes one 8-byte record {tsc low half, W1} into the
 * thread's buffer. It touches only rax, rdx, rcx (saved) and r10 (the
 * sled itself loads W1 there, so the compiler keeps nothing in it across a
 * sled), and uses no instruction that changes the flags (lea, mov, jrcxz),
 * so flags survive without pushf/popf. r11 is NOT free: at a tail sled the
 * jump that follows may go through it (clang's indirect tail call with six
 * arguments, `jmp *%r11`: PostgreSQL's table_beginscan_catalog), so no
 * trampoline an entry, exit or tail sled reaches changes it; the slow path
 * takes its mode in the high half of r10 instead.
 *
 * The store sequence from sf_win_start to sf_win_commit is restartable: if a
 * signal arrives inside it, the runtime's signal wrapper moves the
 * interrupted rip back to sf_win_start (like a Linux rseq critical section),
 * so a handler that records events can never interleave with a half-written
 * record. The commit is the single store of the new write pointer.
 *
 * Everything else (a new thread, the timestamp's high half changing, a full
 * buffer, a disabled thread) goes to the slow path, which saves every
 * register, the flags and the whole extended state (xsave) and calls C.
 *
 * Stack (docs/design.md): the fast path takes 32 bytes of the program's
 * stack (the sled's return address and rax, rdx, rcx). The slow path pushes
 * the general registers and the flags there (the C code finds the sled's
 * stack slot through them), 112 bytes in all with the return address, and
 * then blocks signals and switches to the thread's side stack (TLS side,
 * set up with its slot in buffer.c) for the extended state, which is
 * kilobytes with AVX-512, and for the C code. Signals stay blocked while it
 * is on the side stack, so no handler ever runs there; TLS side is 0 while
 * in use, so a nested slow path stays where it is. A thread without a slot
 * (its first event, which gives it one; a disabled thread) uses the
 * process's spare side stack when no other thread is on it, else the
 * program's stack. The CFA is rbx-based throughout, so unwinders walk from
 * C back into the program.
 */

#define TLS_POS 0
#define TLS_HI_NOT 8
#define TLS_SCOPE 16
#define TLS_EXT 40
#define TLS_SIDE 48

#define NR_rt_sigprocmask 14
#define SIG_BLOCK 0
#define SIG_SETMASK 2

/* Slow-path modes (r10's high half, W1 its low half), as in runtime.h SF_SLOW_* */
#define SLOW_RECORD 1
#define SLOW_ARGS 2
#define SLOW_RET 4
#define SLOW_ENTER 8
#define SLOW_LEAVE 16
#define SLOW_DESC 32
#define SLOW_KEY 64
#define SLOW_TRIG 128

/* The slow path's mode into r10's high half without touching the flags
 * (the sled's mov of W1 to r10d cleared it); rcx is saved and free. */
#define MODE(m) \
        movabsq $((m) << 32), %rcx; \
        leaq    (%r10,%rcx), %r10

/* Save the registers the fast path uses (rax rdx rcx), with their CFI. */
#define PUSH3 \
        pushq %rax; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %rax, 0; \
        pushq %rdx; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %rdx, 0; \
        pushq %rcx; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %rcx, 0

        .text

/* ------------------------------------------------------------------ */
        .globl  sf_trampoline
        .hidden sf_trampoline
        .type   sf_trampoline, @function
        .p2align 6
sf_trampoline:
        .cfi_startproc
        PUSH3

        .globl  sf_win_start
        .hidden sf_win_start
sf_win_start:
        /* the TLS offset twice (rcx, then rdx once rdtsc's high half is
         * checked): r11 stays the program's */
        movq    sf_tls@GOTTPOFF(%rip), %rcx
        rdtsc
        movl    %fs:TLS_HI_NOT(%rcx), %ecx
        leal    1(%rcx,%rdx), %ecx      /* edx - hi: zero iff unchanged */
        jrcxz   1f
        jmp     .Lslow_record           /* new thread, new high half, disabled */
1:      movq    sf_tls@GOTTPOFF(%rip), %rdx
        movq    %fs:TLS_POS(%rdx), %rcx
        movl    %eax, (%rcx)
        movl    %r10d, 4(%rcx)
        leaq    8(%rcx), %rcx
        movq    %rcx, %fs:TLS_POS(%rdx)  /* commit */
        .globl  sf_win_commit
        .hidden sf_win_commit
sf_win_commit:
        movzwl  %cx, %ecx
        jrcxz   .Lslow_flush            /* crossed a 64 KiB boundary: full */
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rcx
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rdx
        popq    %rax
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rax
        ret
        .cfi_adjust_cfa_offset 24
        .cfi_rel_offset %rax, 16
        .cfi_rel_offset %rdx, 8
        .cfi_rel_offset %rcx, 0

.Lslow_flush:                           /* mode 0 (r10's high half is zero): */
        jmp     .Lslow                  /* the event is already written */
.Lslow_record:
        MODE(SLOW_RECORD)               /* C writes the event */
.Lslow:
        pushfq
        .cfi_adjust_cfa_offset 8
        cld
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rsi, 0
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rdi, 0
        pushq   %r8
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r8, 0
        pushq   %r9
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r9, 0
        pushq   %r10
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r10, 0
        pushq   %r11
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r11, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        movq    %rsp, %rbx
        .cfi_def_cfa_register %rbx
        pushq   %r12
        .cfi_rel_offset %r12, -8
        subq    $8, %rsp                /* the signal mask to restore */
        movl    $NR_rt_sigprocmask, %eax
        movl    $SIG_BLOCK, %edi
        leaq    sf_block_all(%rip), %rsi  /* sidestack.c */
        movq    %rsp, %rdx
        movl    $8, %r10d
        syscall                         /* clobbers rcx, r11: saved */
        movq    sf_tls@GOTTPOFF(%rip), %rsi
        movq    %fs:TLS_SIDE(%rsi), %r12
        testq   %r12, %r12
        jz      7f
        movq    $0, %fs:TLS_SIDE(%rsi)  /* ours until we leave it */
        movq    %r12, %rsp              /* onto the side stack */
        jmp     1f
7:      /* None of its own (a thread's first event gets it): the spare stack
         * if no other thread is on it, else stay (r12 = 0). */
        movl    $1, %eax
        xchgl   %eax, sf_spare_busy(%rip)
        testl   %eax, %eax
        jnz     1f
        movq    sf_spare_top(%rip), %r12
        movq    %r12, %rsp
1:      /* Extended state: x87 (long double returns), SSE/AVX arguments. */
        movl    sf_xsave_size(%rip), %eax
        subq    %rax, %rsp
        andq    $-64, %rsp
        cmpl    $0, sf_use_xsave(%rip)
        je      2f
        /* XRSTOR faults unless the XSAVE header beyond XSTATE_BV is zero. */
        xorl    %eax, %eax
        movq    %rax, 512(%rsp)
        movq    %rax, 520(%rsp)
        movq    %rax, 528(%rsp)
        movq    %rax, 536(%rsp)
        movq    %rax, 544(%rsp)
        movq    %rax, 552(%rsp)
        movq    %rax, 560(%rsp)
        movq    %rax, 568(%rsp)
        movl    sf_xsave_mask_lo(%rip), %eax
        movl    sf_xsave_mask_hi(%rip), %edx
        xsave64 (%rsp)
        jmp     3f
2:      fxsave64 (%rsp)
3:      movl    16(%rbx), %edi          /* the saved r10: W1 ... */
        movl    20(%rbx), %esi          /* ... and the mode */
        movq    %rbx, %rdx              /* the saved registers, for SLOW_ARGS/RET */
        call    sf_slow_event
        cmpl    $0, sf_use_xsave(%rip)
        je      4f
        movl    sf_xsave_mask_lo(%rip), %eax
        movl    sf_xsave_mask_hi(%rip), %edx
        xrstor64 (%rsp)
        jmp     5f
4:      fxrstor64 (%rsp)
5:      leaq    -16(%rbx), %rsp         /* back on the program's stack */
        testq   %r12, %r12
        jz      6f
        cmpq    sf_spare_top(%rip), %r12
        jne     8f
        movl    $0, sf_spare_busy(%rip) /* free the spare stack */
        jmp     6f
8:      movq    sf_tls@GOTTPOFF(%rip), %rsi
        movq    %r12, %fs:TLS_SIDE(%rsi)
6:      movl    $NR_rt_sigprocmask, %eax
        movl    $SIG_SETMASK, %edi
        movq    %rsp, %rsi
        xorl    %edx, %edx
        movl    $8, %r10d
        syscall
        movq    8(%rsp), %r12
        .cfi_restore %r12
        movq    %rbx, %rsp
        .cfi_def_cfa_register %rsp
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbx
        popq    %r11
        .cfi_adjust_cfa_offset -8
        popq    %r10
        .cfi_adjust_cfa_offset -8
        popq    %r9
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r9
        popq    %r8
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r8
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rdi
        popq    %rsi
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rsi
        popfq
        .cfi_adjust_cfa_offset -8
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rcx
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rdx
        popq    %rax
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rax
        ret
        .cfi_endproc
        .size   sf_trampoline, .-sf_trampoline

/* ------------------------------------------------------------------ */
/* Variants. Each saves rax, rdx, rcx like sf_trampoline and then either
 * joins its store window or goes to the slow path with a mode (MODE).
 * Filters use them (docs/filter-format.md):
 *   _enter       descendants mode, entry of a selected function
 *   _leave       descendants mode, exit of a selected function
 *   _leave_tail  ... its tail call to a function not known to be traced
 *   _desc        descendants mode, entry (or tail call to a traced function)
 *                of a function not selected: recorded inside the scope
 *   _desc_leave  ... its exit; _desc_leave_tail its other tail calls
 *   _args        entry that also records the integer argument registers
 *   _ret         exit that also records rax
 * and processes without an invariant TSC use the _mono ones, which always
 * go through C (it reads CLOCK_MONOTONIC).
 *
 * The descendants scope (TLS scope, runtime.h) is the stack slot holding
 * the return address of the outermost selected function active on the
 * thread, or 0. Every sled of a frame sees that frame's return-address
 * slot at its rsp ("sp": rsp + 32 in here for entry and tail sleds, which
 * call, rsp + 24 for exit sleds, which jump). A function whose sp is at or
 * below the scope runs on the selected function's behalf: its callees, and
 * the functions it tail-called, which reuse its slot and return through it.
 * So a selected entry outside the scope opens it at its sp, an exit at the
 * scope's sp closes it, and an exit above it (the frame is gone: longjmp,
 * an exception) clears it.
 *
 * d = scope - sp is computed as scope + ~rsp + 1 - K with not and lea; its
 * top byte (bswap, movzx) is zero iff 0 <= d < 2^56, that is iff sp is at or
 * below the scope (stacks are far smaller; scope 0 gives d < 0). Only mov,
 * lea, not, bswap, movzx and jrcxz: the flags survive here as well.
 */
#define BEGIN(name) \
        .globl name; .hidden name; .type name, @function; .p2align 4; name: .cfi_startproc
#define END(name) \
        .cfi_endproc; .size name, .-name
#define POP3_RET \
        popq %rcx; .cfi_adjust_cfa_offset -8; .cfi_restore %rcx; \
        popq %rdx; .cfi_adjust_cfa_offset -8; .cfi_restore %rdx; \
        popq %rax; .cfi_adjust_cfa_offset -8; .cfi_restore %rax; \
        ret
/* rcx = d = scope - sp, for sp = rsp + K; rax = scope; rdx = TLS offset
 * (not r11: see the top) */
#define SCOPE_DIFF(K) \
        movq    sf_tls@GOTTPOFF(%rip), %rdx; \
        movq    %fs:TLS_SCOPE(%rdx), %rax; \
        movq    %rsp, %rcx; \
        notq    %rcx; \
        leaq    (1 - (K))(%rax,%rcx), %rcx
/* rcx = 0 iff d >= 0 (sp inside the scope) */
#define INSIDE \
        bswapq  %rcx; \
        movzbl  %cl, %ecx

BEGIN(sf_trampoline_desc)
        PUSH3
        SCOPE_DIFF(32)
        INSIDE
        jrcxz   1f
        .cfi_remember_state
        POP3_RET
        .cfi_restore_state
1:      jmp     sf_win_start
END(sf_trampoline_desc)

/* Selected entry: open the scope unless already inside one. Recorded. */
BEGIN(sf_trampoline_enter)
        PUSH3
        SCOPE_DIFF(32)
        INSIDE
        jrcxz   1f
        leaq    32(%rsp), %rax
        movq    %rax, %fs:TLS_SCOPE(%rdx)
1:      jmp     sf_win_start
END(sf_trampoline_enter)

/* Leaving (an exit, or a tail call that ends the frame): d == 0 closes the
 * scope and d > 0 (deeper) keeps it, both recorded. d < 0: the scope's
 * frame is gone (or there is none): clear it; `above` says what else. */
#define LEAVING(name, K, above) \
BEGIN(name); \
        PUSH3; \
        SCOPE_DIFF(K); \
        jrcxz   2f; \
        INSIDE; \
        jrcxz   3f; \
        above; \
2:      movq    $0, %fs:TLS_SCOPE(%rdx); \
3:      jmp     sf_win_start; \
END(name)

/* not selected: outside the scope, not recorded */
#define SKIP_CLEARED \
        movq    $0, %fs:TLS_SCOPE(%rdx); \
        .cfi_remember_state; \
        POP3_RET; \
        .cfi_restore_state

LEAVING(sf_trampoline_leave, 24, )
LEAVING(sf_trampoline_leave_tail, 32, )
LEAVING(sf_trampoline_desc_leave, 24, SKIP_CLEARED)
LEAVING(sf_trampoline_desc_leave_tail, 32, SKIP_CLEARED)

#define SLOW_VARIANT(name, mode) \
BEGIN(name); PUSH3; MODE(mode); jmp .Lslow; END(name)

SLOW_VARIANT(sf_trampoline_args, SLOW_RECORD | SLOW_ARGS)
SLOW_VARIANT(sf_trampoline_ret, SLOW_RECORD | SLOW_RET)
SLOW_VARIANT(sf_trampoline_mono, SLOW_RECORD)
SLOW_VARIANT(sf_trampoline_desc_mono, SLOW_RECORD | SLOW_DESC)
SLOW_VARIANT(sf_trampoline_enter_mono, SLOW_RECORD | SLOW_ENTER)
SLOW_VARIANT(sf_trampoline_leave_mono, SLOW_RECORD | SLOW_LEAVE)
SLOW_VARIANT(sf_trampoline_desc_leave_mono, SLOW_RECORD | SLOW_DESC | SLOW_LEAVE)
/* descendants mode, flow functions (follow.c): always the slow path */
SLOW_VARIANT(sf_trampoline_desc_key, SLOW_RECORD | SLOW_DESC | SLOW_ARGS | SLOW_KEY)
SLOW_VARIANT(sf_trampoline_desc_key_leave, SLOW_RECORD | SLOW_DESC | SLOW_LEAVE | SLOW_RET | SLOW_KEY)
SLOW_VARIANT(sf_trampoline_args_enter, SLOW_RECORD | SLOW_ARGS | SLOW_ENTER)
SLOW_VARIANT(sf_trampoline_ret_leave, SLOW_RECORD | SLOW_RET | SLOW_LEAVE)
SLOW_VARIANT(sf_trampoline_trig, SLOW_RECORD | SLOW_TRIG) /* live control: ctl.c */

/* ------------------------------------------------------------------ */
/* int sf_alloc_record(uint32_t w1, uint64_t size, uint64_t align, uint64_t ptr)
 * An ordinary C function (flags and scratch registers are free here): the
 * fast path of sftrace_alloc_event. Writes the 32-byte ALLOC record with
 * the same restartable window as the trampoline. Returns 0 when recorded,
 * 1 when C must do it (new thread, new timestamp high half, no room),
 * 2 when recorded and the buffer is now full. */
BEGIN(sf_alloc_record)
        movq    %rdx, %r8
        movq    %rcx, %r9
        movq    sf_tls@GOTTPOFF(%rip), %r11
        .globl  sf_win2_start
        .hidden sf_win2_start
sf_win2_start:
        rdtsc
        movl    %fs:TLS_HI_NOT(%r11), %ecx
        leal    1(%rcx,%rdx), %ecx
        testl   %ecx, %ecx
        jnz     1f
        movq    %fs:TLS_POS(%r11), %rcx
        movzwl  %cx, %edx
        cmpl    $(65536 - 32), %edx
        ja      1f
        movl    %eax, (%rcx)
        movl    %edi, 4(%rcx)
        movq    %rsi, 8(%rcx)
        movq    %r8, 16(%rcx)
        movq    %r9, 24(%rcx)
        leaq    32(%rcx), %rcx
        movq    %rcx, %fs:TLS_POS(%r11)  /* commit */
        .globl  sf_win2_commit
        .hidden sf_win2_commit
sf_win2_commit:
        addl    $4, %fs:TLS_EXT(%r11)
        xorl    %eax, %eax
        testw   %cx, %cx
        jnz     2f
        movl    $2, %eax
2:      ret
1:      movl    $1, %eax
        ret
END(sf_alloc_record)

        .section .note.GNU-stack,"",@progbits
