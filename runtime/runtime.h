/*
 * runtime.h - internal interfaces of libsftrace.so, the recording runtime.
 *
 * The runtime is split by job:
 *   init.c     process lifecycle: start-up, the log file, exit, fork, exec
 *   buffer.c   per-thread event buffers, the slow path, flushing
 *   patch.c    finding instrumented objects and patching their sleds
 *   hooks.c    libc functions we interpose (dlopen, fork, exec, signals)
 *   ctl.c      live control: start and stop recording (sleds on and off)
 *   helper.c   the helper process: writes the log from shared memory,
 *              salvages a dead process's buffers, records how it ended
 *   sys.c      small helpers that avoid malloc (arena, strings, I/O)
 *   sidestack.c the spare side stack and the signal set of the slow path
 *   version.c  the version note, and the version check against record
 *   arch/ARCH/ (x86_64, aarch64): trampoline.S the hot path, sled.c sled
 *               and stub encodings, callas.S, arch.h constants
 *
 * Rule for everything here: no malloc (the traced program's allocator may be
 * instrumented, and we run inside signal handlers), no locks or system calls
 * on the hot path.
 */
#ifndef SFTRACE_RUNTIME_H
#define SFTRACE_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include "logfmt.h"
#include "filterfmt.h"
#include "pack.h"
#include "ctlproto.h"
#include "arch.h" /* runtime/arch/ARCH/arch.h */

#define SF_HIDDEN __attribute__((visibility("hidden")))
#define SF_EXPORT __attribute__((visibility("default")))

/* Event buffers are BUF_SIZE bytes, aligned to BUF_SIZE, so the trampoline
 * detects "full" as the low 16 bits of the write pointer becoming zero. */
#define SF_BUF_SIZE 65536u

/*
 * Per-thread state the trampoline reads through %fs. Field offsets are
 * hard-coded in trampoline.S (TLS_POS, TLS_HI_NOT, TLS_SCOPE, TLS_EXT,
 * TLS_SIDE): change both together.
 */
struct sf_tls {
    uint8_t *pos;    /* +0: where the next record goes */
    uint32_t hi_not; /* +8: ~(high half of the timestamp in force) */
    uint32_t state;  /* +12: enum sf_thread_state */
    /* +16: descendants mode: the stack slot of the return address of the
     * outermost selected function active on this thread, 0 if none. A
     * sled whose own return-address slot is at or below it (deeper in the
     * stack) runs on that function's behalf: its own callees, and the
     * functions it tail-called, which return through the same slot. */
    uintptr_t scope;
    uint32_t in_slow;     /* re-entry guard for the slow path */
    uint32_t dtor_rounds; /* TSD destructor passes so far */
    struct sf_slot *slot;
    uint32_t ext_words; /* +40: non-function words written into the current buffer */
    /* +48: the top of the thread's side stack, where the trampoline's slow
     * path runs (the unused end of its slot's header, sf_side_stack); 0
     * for a thread without a slot, and while the slow path is on it. */
    uintptr_t side;
};

enum sf_thread_state {
    SF_T_NEW = 0,      /* never recorded (TLS starts zeroed) */
    SF_T_ACTIVE = 1,   /* recording into slot->buf */
    SF_T_DISABLED = 2, /* events go to the discard buffer */
    SF_T_EXITED = 3,   /* flushed at thread exit; events are discarded */
};

extern __thread struct sf_tls sf_tls SF_HIDDEN;

/*
 * Shared memory (docs/design.md): every process image has one memfd that it
 * shares with its helper process (helper.c), which is the only writer of
 * the log. Layout of the memfd:
 *   [0, SF_BLOCK)                       struct sf_ctl (control block)
 *   [SF_BLOCK * (1 + i), ...)           slot block i: struct sf_slot, then
 *                                       SF_NBUF raw buffers, then SF_NBUF
 *                                       packing areas
 *   [SF_MBOX_OFF, + SF_MBOX_MAX)        mailbox: one chunk to append
 * The file is sized once (sparse); nothing is ever truncated.
 */
#define SF_NBUF 8
#define SF_PACK_AREA ((SF_PACK_BOUND(SF_BUF_SIZE) + 8 + 4095) & ~4095u)
#define SF_SLOT_HDR SF_BUF_SIZE
#define SF_BLOCK                                                                                   \
    (((size_t)SF_SLOT_HDR + SF_NBUF * (size_t)SF_BUF_SIZE + SF_NBUF * (size_t)SF_PACK_AREA +       \
      SF_BUF_SIZE - 1) &                                                                           \
     ~(size_t)(SF_BUF_SIZE - 1))
#define SF_MAX_SLOTS 16384u
#define SF_MBOX_OFF ((size_t)SF_BLOCK * (SF_MAX_SLOTS + 1))
#define SF_MBOX_MAX ((size_t)256 << 20)
#define SF_MEMFD_SIZE (SF_MBOX_OFF + SF_MBOX_MAX)

/*
 * Buffer states. The owner fills a buffer (FILLING), marks it FULL, and may
 * claim it (PACKING) to pack it into its packing area (PACKED). The helper
 * claims FULL buffers (WRITING) to pack them itself, appends the chunk,
 * zeroes the buffer and frees it. Buffers are written in ring order.
 */
enum { B_FREE = 0, B_FILLING = 1, B_FULL = 2, B_PACKING = 3, B_PACKED = 4, B_WRITING = 5 };
struct sf_buf {
    _Atomic uint32_t state;
    uint32_t from;       /* offset of the first byte not yet in the log (helper) */
    uint32_t hi;         /* timestamp high half in force at `from` */
    uint32_t ext_words;  /* non-function words in [from, end) (set with FULL) */
    uint32_t packed_len; /* PACKED: bytes in the packing area, pad included */
    uint32_t packed_pad;
    uint32_t packed_from; /* PACKED: the `from` the owner packed from */
    uint32_t ext_taken;   /* ext words already counted by a partial write (helper) */
    char name[16];        /* the thread's name when it filled this buffer */
};

/* One per recording thread, in shared memory; reused, never freed. */
#define SF_TRIG_DEPTH 16 /* deeper nesting of snapshot-slower calls is not timed */
struct sf_slot {
    _Atomic uint32_t state; /* SLOT_FREE, SLOT_USED, SLOT_EXITED (helper frees) */
    uint32_t index;         /* block number */
    uint32_t tid;
    uint32_t seq;                   /* next EVENTS chunk number (helper) */
    uint32_t cur;                   /* the owner's FILLING buffer */
    uint32_t wnext;                 /* the next buffer to write (helper) */
    uint64_t last_full_ns;          /* when the owner last filled a buffer */
    char name[16];                  /* the thread's name as the owner last read it */
    char written_name[16];          /* name last written to the log (helper) */
    _Atomic uint32_t owner_waiting; /* the owner sleeps on a buffer's state (futex) */
    /* ctl.c: calls of snapshot-slower functions open on this thread (here,
     * not in TLS: glibc carves static TLS out of each thread's stack, and a
     * PTHREAD_STACK_MIN thread must keep what it has untraced) */
    uint32_t trig_depth;
    uint32_t trig_fid[SF_TRIG_DEPTH];
    uint64_t trig_t0[SF_TRIG_DEPTH];
    uint32_t pid; /* 0: a thread of the process; else the pid of a process sharing
                     our memory (a vfork child) whose only thread this is */
    struct sf_buf bufs[SF_NBUF];
    struct sf_pack_state pack; /* the owner's packer state */
    /* pid != 0: its END's figures (events, lost: the helper's) and how it
     * ended as its runtime noted it (exit, _exit, a fatal signal) */
    uint64_t sh_events, sh_lost;
    _Atomic int32_t sh_how, sh_status;
    uint32_t sh_reason; /* the helper's: why it ended (enum sf_end_reason) */
};
#define SLOT_FREE 0u
#define SLOT_USED 1u
#define SLOT_EXITED 2u

/* The slot's header block is a whole buffer's size; what struct sf_slot
 * leaves of it is the side stack of the thread that owns the slot (it is
 * process-private in use: a forked child maps fresh memory over it). */
#define SF_SIDE_STACK_MIN 32768u
_Static_assert(SF_SLOT_HDR - sizeof(struct sf_slot) >= SF_SIDE_STACK_MIN + 64,
               "no room for the side stack in the slot header");
/* sidestack.c: the spare side stack's top, whether it is taken (a forked
 * child frees it), and the signals the slow path blocks */
extern uint8_t *const sf_spare_top SF_HIDDEN;
extern uint32_t sf_spare_busy SF_HIDDEN;
extern const uint64_t sf_block_all SF_HIDDEN;
static inline uintptr_t sf_side_stack(struct sf_slot *s)
{
    return (uintptr_t)s + SF_SLOT_HDR; /* the top: 64 KiB-aligned */
}

static inline uint8_t *sf_slot_buf(struct sf_slot *s, uint32_t i)
{
    return (uint8_t *)s + SF_SLOT_HDR + (size_t)i * SF_BUF_SIZE;
}
static inline uint8_t *sf_slot_packarea(struct sf_slot *s, uint32_t i)
{
    return (uint8_t *)s + SF_SLOT_HDR + SF_NBUF * (size_t)SF_BUF_SIZE + (size_t)i * SF_PACK_AREA;
}

/* Requests the runtime makes to its helper (sf_ctl.req_kind). */
enum {
    REQ_NONE = 0,
    REQ_CHUNK = 1,      /* append the chunk in the mailbox (mbox_len bytes) */
    REQ_FLUSH = 2,      /* write every thread's records stored so far */
    REQ_END = 3,        /* REQ_FLUSH, then END with end_reason; write nothing after */
    REQ_SNAPSHOT = 4,   /* flight recorder: write a snapshot (why: end_reason, arg: req_arg) */
    REQ_SHARER_END = 5, /* slot req_slot's process (a vfork child) ends: its
                           records, its THREAD and END chunks (end_reason) */
};

/* How a process ended, as far as anyone could tell (sf_end.status_how). */
struct sf_ctl {
    uint32_t magic;
    uint32_t pid;               /* the traced process */
    _Atomic uint32_t nslots;    /* slot blocks set up */
    _Atomic uint32_t grow_lock; /* the runtime's: setting up a block */
    _Atomic uint32_t helper_sleeping;
    _Atomic uint32_t helper_ready; /* the helper has written PROCESS and OBJECTs */
    _Atomic uint32_t req_seq;      /* bumped by the runtime per request */
    _Atomic uint32_t ack_seq;      /* = req_seq when the helper has done it (futex) */
    uint32_t req_kind;
    uint32_t end_reason; /* REQ_END: enum sf_end_reason */
    uint64_t mbox_len;
    _Atomic uint32_t final;     /* an exit flush began: owners stop packing */
    _Atomic uint32_t ended;     /* END was written */
    _Atomic int32_t status_how; /* noted by the runtime: enum sf_status_how */
    _Atomic int32_t status;
    _Atomic uint32_t nthreads; /* threads that recorded */
    _Atomic uint32_t write_failed;
    _Atomic uint64_t events;    /* function events written (helper) */
    _Atomic uint64_t lost;      /* records not written */
    _Atomic uint64_t behind;    /* times an owner waited for the helper */
    uint32_t req_arg;           /* REQ_SNAPSHOT: the trigger's function id */
    _Atomic uint32_t snapshots; /* snapshots written (helper) */
    uint32_t req_slot;          /* REQ_SHARER_END: the slot */
    /* helper.c, start-up without waiting: the helper's pid (the middle
     * process writes it); which of PROCESS and END the image wrote itself
     * (SF_SELF_*), the log's size before each of those writes, and the END
     * it writes (a helper finishes a write its death cut short) */
    _Atomic uint32_t helper_pid;
    _Atomic uint32_t self_state;
    uint64_t self_proc_off, self_end_off;
    struct sf_end self_end; /* the END being written by the image */
};
#define SF_CTL_MAGIC 0x4c544353u

/* Process-wide state (private to the process). */
struct sf_global {
    int enabled;           /* SFTRACE_OUTPUT_FILE set and the helper runs */
    int fd;                /* log file until the helper has it, then -1 */
    pid_t pid;             /* cached getpid(), updated in a forked child */
    int clock;             /* enum sf_clock */
    int setup_thread_only; /* SFTRACE_SETUP_THREAD_ONLY */
    int exec_counted;      /* the thread that exec'd us was counted by the old image */
    int patch_all;         /* preloaded by `sftrace record`: patch every object */
    int exiting;
    int raw;             /* SFTRACE_RAW: write records unpacked (debugging) */
    int use_helper_pack; /* the helper may pack (a core may be spare) */
    int attached;        /* started by `sftrace attach` (attach.c) */
    uint32_t ncpus;      /* CPUs this process may run on */
    uint64_t tsc_hz;
    int memfd;    /* the shared memory */
    int wake_fd;  /* socket to the helper: a byte wakes it; EOF = exec or death */
    int alive_fd; /* pipe from the helper: POLLHUP = the helper is gone */
    uint64_t wake_ino, alive_ino, memfd_ino; /* to tell our descriptors from reused ones */
    pid_t helper_pid;
    int helper_gone;
    struct sf_ctl *ctl;
    uint8_t *mbox;                        /* the mailbox, mapped on first use */
    struct sf_slot *blocks[SF_MAX_SLOTS]; /* where each slot block is mapped */
    uint8_t *proc_chunk;                  /* PROCESS chunk for the helper to write first */
    int proc_chunk_lazy;                  /* forked child: PROCESS only before its first record */
    size_t proc_chunk_len;
    char path[4096]; /* absolute log path */
};
extern struct sf_global sf_g SF_HIDDEN;

/* ---- arch/ARCH (x86_64, aarch64) ---- */
void sf_trampoline(void) SF_HIDDEN; /* target of patched sleds (no filter) */
/* All targets of patched sleds (trampoline.S explains each). */
enum sf_tramp {
    T_NORMAL,
    T_ARGS,
    T_RET,
    T_ENTER,
    T_LEAVE,
    T_DESC,
    T_ARGS_ENTER,
    T_RET_LEAVE,
    T_LEAVE_TAIL,
    T_DESC_LEAVE,
    T_DESC_LEAVE_TAIL,
    T_KEY0, /* argtramp.S: the event plus a KEY record of argument 0..5 */
    T_KEY1,
    T_KEY2,
    T_KEY3,
    T_KEY4,
    T_KEY5,
    T_KEYR,           /* ... of rax, at an exit */
    T_DESC_KEY,       /* descendants mode, a flow function's entry (follow.c) */
    T_DESC_KEY_LEAVE, /* ... a producer's exit (its key is the return value) */
    T_TRIG,           /* a trace-on / trace-off function's sled (ctl.c) */
    T_COUNT
};
extern const void *const sf_tramp_fast[T_COUNT] SF_HIDDEN;
extern const void *const sf_tramp_mono[T_COUNT] SF_HIDDEN;
/* Slow-path modes: what sf_slow_event does besides flushing. */
#define SF_SLOW_RECORD 1
#define SF_SLOW_ARGS 2
#define SF_SLOW_RET 4
#define SF_SLOW_ENTER 8
#define SF_SLOW_LEAVE 16
#define SF_SLOW_DESC 32
#define SF_SLOW_KEY 64   /* follow.c: a flow function in descendants mode */
#define SF_SLOW_TRIG 128 /* a trigger sled: ctl.c decides (sf_ctl_trigger) */
extern const char sf_win_start[] SF_HIDDEN, sf_win_commit[] SF_HIDDEN;
extern const char sf_win3_start[] SF_HIDDEN, sf_win3_commit[] SF_HIDDEN; /* argtramp.S */
extern uint32_t sf_xsave_mask_lo SF_HIDDEN, sf_xsave_mask_hi SF_HIDDEN;
extern uint32_t sf_xsave_size SF_HIDDEN, sf_use_xsave SF_HIDDEN;
void sf_arch_init(void) SF_HIDDEN;
uint64_t sf_arch_now(void) SF_HIDDEN; /* rdtsc */
int sf_arch_tsc_invariant(void) SF_HIDDEN;
void sf_arch_restart_fixup(void *ucontext) SF_HIDDEN;
/* Sleds: kinds as in xray_instr_map. Returns 0, or -1 if the bytes at the
 * sled are not an XRay sled we know. */
enum { XRAY_ENTRY = 0, XRAY_EXIT = 1, XRAY_TAIL = 2, XRAY_LOG_ARGS = 3 };
int sf_arch_sled_check(const uint8_t *sled, int kind) SF_HIDDEN;
void sf_arch_sled_patch(uint8_t *sled, int kind, uint32_t w1, const void *target) SF_HIDDEN;
/* Make the sleds patched since the last call live (aarch64 turns them on
 * in a second step, after every thread has synchronized; x86_64: nothing). */
void sf_arch_patch_flush(void) SF_HIDDEN;
#define SF_STUB_SIZE 16
void sf_arch_write_stub(uint8_t *stub, const void *target) SF_HIDDEN;
int sf_arch_in_reach(uintptr_t from_lo, uintptr_t from_hi, uintptr_t to) SF_HIDDEN;
/* The kind to record for a sled the map calls `kind` (clang 14 on aarch64
 * marks tail-call sleds as exits: the instruction after it says). */
int sf_arch_sled_kind(const uint8_t *sled, int kind) SF_HIDDEN;
int sf_arch_sled_patched(const uint8_t *sled) SF_HIDDEN; /* by us */
/* Live control: turn a patched sled off and on (first instruction only),
 * and whether a sled is ours, on or off. */
void sf_arch_sled_toggle(uint8_t *sled, int kind, int on) SF_HIDDEN;
/* Put a sled back as it was (orig: its SF_SLED_SIZE bytes before patching);
 * call with its first instruction turned off for a while already. */
void sf_arch_sled_restore(uint8_t *sled, const uint8_t *orig) SF_HIDDEN;
int sf_arch_sled_ours(const uint8_t *sled) SF_HIDDEN;
/* Tail calls (descendants mode): where a direct branch at j goes (0 if j is
 * none), whether t is a function's entry sled (patched or not), and where
 * a jump through a GOT slot at j (a PLT entry) goes now (0 if j is none). */
uintptr_t sf_arch_branch_target(const uint8_t *j) SF_HIDDEN;
int sf_arch_is_entry_sled(const uint8_t *t) SF_HIDDEN;
uintptr_t sf_arch_got_jump(const uint8_t *j) SF_HIDDEN;
/* dlopen's faked return address (callas.S): the best gadget in [lo, end),
 * looking from `from` first; NULL if none. */
const uint8_t *sf_arch_find_ret(const uint8_t *lo, const uint8_t *from,
                                const uint8_t *end) SF_HIDDEN;
int sf_shadow_stack_on(void) SF_HIDDEN; /* a faked return address would fault */
/* Protection bits beyond PROT_READ | PROT_EXEC an object's text was mapped
 * with (aarch64: PROT_BTI for a BTI object), restored after patching. */
int sf_arch_text_prot(const void *phdrs, int phnum, uintptr_t bias) SF_HIDDEN;

/* ---- buffer.c ---- */
uint64_t sf_now(void) SF_HIDDEN; /* timestamp in the process's clock */
void sf_slow_event(uint32_t w1, int mode, const uint64_t *regs) SF_HIDDEN;
void sf_flush_self(void) SF_HIDDEN;
void sf_flush_all(int final) SF_HIDDEN;
void sf_buffers_init(void) SF_HIDDEN;
void sf_ensure_process_chunk(void) SF_HIDDEN;
void sf_alloc_event(uint8_t kind, uint64_t size, uint64_t align, uint64_t ptr) SF_HIDDEN;
/* asm: 0 recorded, 1 take the slow path, 2 recorded and the buffer is full */
int sf_alloc_record(uint32_t w1, uint64_t size, uint64_t align, uint64_t ptr) SF_HIDDEN;
extern const char sf_win2_start[] SF_HIDDEN, sf_win2_commit[] SF_HIDDEN;
void sf_write_alloc(uint8_t kind, uint64_t size, uint64_t align, uint64_t ptr) SF_HIDDEN;
void sf_thread_enable(int on) SF_HIDDEN;
void sf_signal_enter(void) SF_HIDDEN;
int sf_shm_init(void) SF_HIDDEN;
int sf_shm_after_fork(void) SF_HIDDEN;
void sf_wake_helper(void) SF_HIDDEN;
int sf_request(uint32_t kind, uint32_t reason) SF_HIDDEN;
void sf_note_status(int how, int status) SF_HIDDEN;
/* A process sharing our memory (a vfork child): is the calling thread
 * recording as one, and end its recording (reason: enum sf_end_reason). */
int sf_sharer_active(void) SF_HIDDEN;
void sf_sharer_end(uint32_t reason) SF_HIDDEN;
/* arch/ARCH/vfork.S calls these in the child and in the parent of a vfork */
void sf_vfork_child(void) SF_HIDDEN;
void sf_vfork_parent(void) SF_HIDDEN;

/* ---- helper.c ---- */
int sf_helper_start(void) SF_HIDDEN;
void sf_helper_defer(void) SF_HIDDEN;          /* a forked child: start it when needed */
void sf_helper_start_deferred(void) SF_HIDDEN; /* ... now (before the first chunk) */
void sf_helper_reap(void) SF_HIDDEN;           /* the middle process of the start */
void sf_helper_after_fork(void) SF_HIDDEN;
pid_t sf_helper_pid(void) SF_HIDDEN;
int sf_helper_self_end(uint32_t reason) SF_HIDDEN; /* END written here: 0 */
int sf_helper_alive(void) SF_HIDDEN;
int sf_fd_is(int fd, uint64_t ino) SF_HIDDEN;
int sf_is_our_fd(int fd) SF_HIDDEN;
int sf_helper_write(const void *a, size_t alen, const void *b, size_t blen) SF_HIDDEN;
extern int sf_in_helper SF_HIDDEN; /* this process is a helper */

/* ---- init.c ---- */
void sf_init(void) SF_HIDDEN;
int sf_build_process_chunk(int flags) SF_HIDDEN;
void sf_before_exit(int reason) SF_HIDDEN;
int sf_log_write(const void *a, size_t alen, const void *b, size_t blen) SF_HIDDEN;
void sf_msg(const char *fmt, ...) SF_HIDDEN __attribute__((format(printf, 1, 2)));

int sf_start_attached(const char *out, const char *session) SF_HIDDEN;

/* ---- attach.c ---- */
/* exported: sftrace_attach, sftrace_detach (cmd/attach.c calls them) */

/* ---- patch.c ---- */
void sf_patch_all_objects(void) SF_HIDDEN;
void sf_patch_all_objects_held(void) SF_HIDDEN; /* the caller holds the patch lock */
extern int sf_patch_early SF_HIDDEN;    /* objects not relocated yet: old maps are deferred */
extern int sf_patch_deferred SF_HIDDEN; /* one was */
void sf_patch_other_namespaces_held(void) SF_HIDDEN; /* the same, dlmopen's namespaces */
struct dl_phdr_info;
int sf_each_other_namespace(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data) SF_HIDDEN;
int sf_patch_object_at(const void *addr, const void *stub_slot) SF_HIDDEN;
void sf_patch_after_fork(void) SF_HIDDEN; /* a forked child: patch.c's lock afresh */
void sf_rewrite_object_chunks(void) SF_HIDDEN;
void sf_write_object_chunks_as(uint32_t pid) SF_HIDDEN; /* for a process sharing our memory */
void sf_patch_namespace_of(void *handle) SF_HIDDEN;
uint32_t sf_patched_objects(void) SF_HIDDEN;

int sf_patch_trylock(void) SF_HIDDEN; /* 0: got patch.c's lock */
void sf_patch_lock(void) SF_HIDDEN;
void sf_patch_unlock(void) SF_HIDDEN;

/* ---- ctl.c ---- */
struct ctl_obj;
void sf_ctl_init(void) SF_HIDDEN;
void sf_ctl_take_signal(int sig, void (*fn)(int, siginfo_t *, void *)) SF_HIDDEN;
void sf_ctl_started(void) SF_HIDDEN;
void sf_ctl_after_fork(void) SF_HIDDEN; /* a forked child: a stopped one marks it */
int sf_ctl_enabled(void) SF_HIDDEN;
int sf_ctl_live(void) SF_HIDDEN;
int sf_ctl_set(int on, uint32_t why, uint32_t arg) SF_HIDDEN;
/* patch.c, under its lock, while an object's text is writable: */
struct ctl_obj *sf_ctl_obj_begin(uintptr_t plo, size_t plen, int rx, size_t max_sleds,
                                 const uint8_t *bid, size_t bidlen, uintptr_t bias,
                                 const void *phdr, int other_ns) SF_HIDDEN;
/* Is this sled a trigger (patch it to T_TRIG, even if no filter selects it)? */
int sf_ctl_obj_trigger(struct ctl_obj *o, uint64_t elf_addr, int kind, uint32_t fid,
                       int record) SF_HIDDEN;
void sf_ctl_obj_sled(struct ctl_obj *o, uint8_t *sled, int kind, int keep) SF_HIDDEN;
int sf_ctl_triggers(void) SF_HIDDEN; /* any trigger lines */
/* buffer.c, in the slow path of a T_TRIG sled: before recording (returns the
 * mode, without SF_SLOW_RECORD when the event is not to be recorded), after. */
int sf_ctl_trigger(uint32_t w1, int mode) SF_HIDDEN;
void sf_ctl_trigger_after(uint32_t w1) SF_HIDDEN;
void sf_ctl_obj_end(struct ctl_obj *o) SF_HIDDEN;
int sf_ctl_restore(void) SF_HIDDEN;           /* every patched sled as it was (detach); -1 busy */
void sf_ctl_restore_in_child(void) SF_HIDDEN; /* the same in a forked child (one thread) */
void sf_ctl_prune(void) SF_HIDDEN;            /* forget the objects unloaded since */
void sf_ctl_prune_held(void) SF_HIDDEN;       /* the same, holding the patch lock */
int sf_ctl_mark_attach(int start) SF_HIDDEN;  /* -1: the helper did not take it */
/* What went wrong, for the one who asked (sftrace attach reads it from the
 * process: sftrace_why) and, when not attached, on stderr. */
void sf_ctl_note(const char *fmt, ...) SF_HIDDEN __attribute__((format(printf, 1, 2)));
extern char sftrace_why[512];
const char *sf_req_name(uint32_t kind) SF_HIDDEN;
/* The longest wait for the helper's answer to one request: it is alive but
 * does not answer (stopped, stuck) */
#define SF_SEC_NS 1000000000ull
#define SF_REQ_WAIT_NS (5 * SF_SEC_NS)

/* ---- ring.c (flight recorder) ---- */
void sf_ring_init(void) SF_HIDDEN;                         /* traced process, at start-up */
int sf_ring_on(void) SF_HIDDEN;                            /* record --ring */
int sf_ring_request(uint32_t why, uint32_t arg) SF_HIDDEN; /* ask for a snapshot */
/* sftrace ctl's / snapshot's queued signal reaching a handler the program
 * installed (hooks.c's wrapper): 1 if it was ours and is handled */
int sf_ctl_queued(int sig, siginfo_t *si) SF_HIDDEN;
int sf_ring_queued(int sig, siginfo_t *si) SF_HIDDEN;
void sf_ring_helper_init(void) SF_HIDDEN; /* in the helper */
/* in the helper: keep this chunk in the ring instead of the log? 1 if kept */
int sf_ring_take(const void *a, size_t alen, const void *b, size_t blen) SF_HIDDEN;
void sf_ring_snapshot(uint64_t cut, uint32_t why, uint32_t arg) SF_HIDDEN;
void sf_ring_final(uint32_t end_reason) SF_HIDDEN; /* before END */
uint64_t sf_ring_events_written(void) SF_HIDDEN;
/* ctl.c: a MARK chunk */
void sf_mark_fill(struct sf_mark *m, uint32_t kind, uint32_t why, uint32_t arg, uint32_t seq,
                  uint64_t ts) SF_HIDDEN;

/* ---- filter.c ---- */
struct sf_filter {
    char path[4096];
    uint8_t build_id[64];
    size_t build_id_len;
    int descendants;
    int keys;        /* mode keys: key registers only (sf_keys_for) */
    uint64_t *addrs; /* selected functions' ELF addresses, ascending */
    uint8_t *flags;  /* SF_FILTER_ARGS */
    size_t n;
};
int sf_filters_load(const char *list) SF_HIDDEN;
int sf_filters_active(void) SF_HIDDEN;
int sf_filters_descendants(void) SF_HIDDEN; /* any filter in descendants mode */
struct sf_filter *sf_filter_for(const uint8_t *bid, size_t len) SF_HIDDEN;
/* The keys file (mode keys) for an object, or NULL. */
struct sf_filter *sf_keys_for(const uint8_t *bid, size_t len) SF_HIDDEN;
int sf_filter_lookup(const struct sf_filter *f, uint64_t addr, uint8_t *flags) SF_HIDDEN;

/* ---- follow.c: descendants mode follows jobs across threads ---- */
/* Function fid's key flags (SF_FILTER_* key, role, task, pair), at patch time. */
void sf_follow_add(uint32_t fid, uint8_t flags) SF_HIDDEN;
/* A flow function's event in descendants mode (the slow path): a producer
 * inside the scope makes its key followed; a consumer outside it whose key
 * is followed returns 1 (the caller opens the scope at its frame), using the
 * key up unless it is a task's; a retire forgets the key. */
int sf_follow_event(uint32_t fid, int inside, const uint64_t *args, uint64_t ret,
                    int exit) SF_HIDDEN;

/* ---- hooks.c ---- */
void sf_hooks_init(void) SF_HIDDEN;
const void *sf_ret_gadget_in(uintptr_t bias, const void *phdrs, int phnum,
                             uintptr_t near) SF_HIDDEN;
/* arch/ARCH/callas.S: fn(a0, a1, a2) entered with return address `gadget` */
void *sf_call_as(void *a0, void *a1, void *a2, void *fn, const void *gadget) SF_HIDDEN;
void *sf_real(const char *name) SF_HIDDEN;

/* ---- version.c ---- */
/* 0 when sftrace record of another version started us (said once). */
int sf_version_ok(void) SF_HIDDEN;

/* ---- sys.c ---- */
void *sf_alloc(size_t size) SF_HIDDEN; /* zeroed, from mmap; never freed */
void *sf_map(size_t size) SF_HIDDEN;   /* fresh pages, NULL on failure */
void sf_unmap(void *p, size_t size) SF_HIDDEN;
int sf_write_all(int fd, const void *buf, size_t len) SF_HIDDEN;
ssize_t sf_read_file(const char *path, char *buf, size_t len) SF_HIDDEN;
int sf_read_all(int fd, void *buf, size_t len) SF_HIDDEN;
int sf_fd_high(int fd) SF_HIDDEN;
uint64_t sf_mono_ns(void) SF_HIDDEN;
uint64_t sf_real_ns(void) SF_HIDDEN;
pid_t sf_gettid(void) SF_HIDDEN;

#endif
