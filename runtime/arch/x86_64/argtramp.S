/*
 * argtramp.S - key trampolines: the fast path of a sled that also records
 * one register, the "key" of a flow (docs/design.md, "Flows").
 *
 * Patched sleds of the few functions a keys filter names (rayon's job
 * execute and push, tokio's task creation and poll: the tools choose them by
 * name) come here instead of sf_trampoline. Each entry point saves rax, rdx,
 * rcx like sf_trampoline, pushes the key registers and the KEY record's
 * header word, and joins one store window that writes 32 bytes:
 *     {tsc low, W1}                       the function event, as usual
 *     {tsc low, sf_w1_ext(KEY, reg, 2)}   an extended record ...
 *     {key, next}                         ... with two registers' values
 * reg is the argument index 0..5 (rdi rsi rdx rcx r8 r9) at an entry, or
 * SF_KEY_RET (rax) at an exit; next is the register after it (rdx after
 * rax), because a two-word value passed or returned by value (rayon's
 * JobRef {pointer, execute_fn}) comes in two registers, in an order the
 * compiler chooses. Like the fast path, it uses only mov, lea,
 * movzx and jrcxz, so the flags survive.
 *
 * The window sf_win3_start .. sf_win3_commit is restartable exactly as
 * sf_win_start .. sf_win_commit (sled.c moves an interrupted rip back to
 * its start); the key and the header word sit on the stack, so a restart
 * finds them again. Room: the record is written only when at least 40 bytes
 * are left in the 64 KiB buffer, so it never fills the buffer itself (the
 * next 8-byte event does, and flushes as always). "At least 40 bytes left"
 * is tested without flags: bits 8..15 of pos + 32 are zero only within 256
 * bytes after a 64 KiB boundary, i.e. for the last 32 bytes of a buffer
 * (too little room) or the first 224 (room, but rare: 28 of 8192 positions);
 * both go to the slow path. Everything else the fast path cannot do (a new
 * thread, a new timestamp high half, a disabled thread, no room) goes to
 * sf_trampoline_args / sf_trampoline_ret after restoring the registers:
 * they record the event with an ARGS record (all six argument registers)
 * or a RET record (rax), which the tools read as the same key.
 *
 * The counter of non-function words (TLS ext_words, for the END chunk's
 * event count) is updated after the commit with mov/lea/mov; a signal
 * handler that writes ALLOC records between those instructions can make
 * that statistic a word off, never the log.
 */

/* TLS offsets, as in trampoline.S (struct sf_tls; sled.c asserts them). */
#define TLS_POS 0
#define TLS_HI_NOT 8
#define TLS_EXT 40

/* sf_w1_ext(SF_EXT_KEY = 6, reg, 1), as in common/logfmt.h */
#define KEYW1(reg) (3 | (6 << 2) | ((reg) << 8) | (2 << 16))
#define KEY_RET 6

#define BEGIN(name) \
        .globl name; .hidden name; .type name, @function; .p2align 4; name: .cfi_startproc
#define END(name) \
        .cfi_endproc; .size name, .-name

#define PUSH3 \
        pushq %rax; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %rax, 0; \
        pushq %rdx; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %rdx, 0; \
        pushq %rcx; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %rcx, 0

/* Restore them. */
#define POP3 \
        popq %rcx; .cfi_adjust_cfa_offset -8; .cfi_restore %rcx; \
        popq %rdx; .cfi_adjust_cfa_offset -8; .cfi_restore %rdx; \
        popq %rax; .cfi_adjust_cfa_offset -8; .cfi_restore %rax

/* KEY pushes the second and the first key word (registers still hold the
 * caller's values), then the header word and the slow-path target. */
#define KEY_ENTRY(name, SRC1, SRC2, reg, slow) \
BEGIN(name); PUSH3; pushq SRC2; .cfi_adjust_cfa_offset 8; \
        pushq SRC1; .cfi_adjust_cfa_offset 8; \
        pushq $KEYW1(reg); .cfi_adjust_cfa_offset 8; \
        leaq slow(%rip), %rax; pushq %rax; .cfi_adjust_cfa_offset 8; \
        jmp sf_keytramp_common; END(name)

        .text

/* The shared part. Stack: slow-path target 0, header word 8, key words
 * 16 and 24, then rcx 32, rdx 40, rax 48 (the caller's), return address 56. */
BEGIN(sf_keytramp_common)
        .cfi_adjust_cfa_offset 56
        .cfi_rel_offset %rcx, 32
        .cfi_rel_offset %rdx, 40
        .cfi_rel_offset %rax, 48
        movq    sf_tls@GOTTPOFF(%rip), %r11
        .globl  sf_win3_start
        .hidden sf_win3_start
sf_win3_start:
        rdtsc
        movl    %fs:TLS_HI_NOT(%r11), %ecx
        leal    1(%rcx,%rdx), %ecx      /* edx - hi: zero iff unchanged */
        jrcxz   1f
        jmp     .Lkey_slow
1:      movq    %fs:TLS_POS(%r11), %rcx
        leaq    32(%rcx), %rdx
        movzbl  %dh, %ecx               /* bits 8..15 of pos + 32 */
        jrcxz   .Lkey_slow              /* near a 64 KiB boundary */
        movq    %fs:TLS_POS(%r11), %rcx
        movl    %eax, (%rcx)
        movl    %r10d, 4(%rcx)
        movl    %eax, 8(%rcx)
        movl    8(%rsp), %edx
        movl    %edx, 12(%rcx)
        movq    16(%rsp), %rdx
        movq    %rdx, 16(%rcx)
        movq    24(%rsp), %rdx
        movq    %rdx, 24(%rcx)
        leaq    32(%rcx), %rcx
        movq    %rcx, %fs:TLS_POS(%r11)  /* commit */
        .globl  sf_win3_commit
        .hidden sf_win3_commit
sf_win3_commit:
        movl    %fs:TLS_EXT(%r11), %ecx
        leal    3(%rcx), %ecx
        movl    %ecx, %fs:TLS_EXT(%r11)
        leaq    32(%rsp), %rsp          /* drop target, header word, key words */
        .cfi_adjust_cfa_offset -32
        POP3
        ret
        .cfi_adjust_cfa_offset 56
        .cfi_rel_offset %rcx, 32
        .cfi_rel_offset %rdx, 40
        .cfi_rel_offset %rax, 48
.Lkey_slow:
        /* Restore the caller's registers and let the slow variant (which
         * saves them again) record the event with ARGS or RET. r10 (W1)
         * is unchanged; r11 is scratch here because key trampolines serve
         * entry and exit sleds only (patch.c), never a tail sled, whose
         * jump may go through r11 (trampoline.S). */
        movq    0(%rsp), %r11
        leaq    32(%rsp), %rsp
        .cfi_adjust_cfa_offset -32
        POP3
        jmp     *%r11
END(sf_keytramp_common)

KEY_ENTRY(sf_trampoline_key0, %rdi, %rsi, 0, sf_trampoline_args)
KEY_ENTRY(sf_trampoline_key1, %rsi, %rdx, 1, sf_trampoline_args)
KEY_ENTRY(sf_trampoline_key2, %rdx, %rcx, 2, sf_trampoline_args)
KEY_ENTRY(sf_trampoline_key3, %rcx, %r8, 3, sf_trampoline_args)
KEY_ENTRY(sf_trampoline_key4, %r8, %r9, 4, sf_trampoline_args)
KEY_ENTRY(sf_trampoline_key5, %r9, %r9, 5, sf_trampoline_args)
KEY_ENTRY(sf_trampoline_keyr, %rax, %rdx, KEY_RET, sf_trampoline_ret)

        .section .note.GNU-stack,"",@progbits
