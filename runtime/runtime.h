/*
 * runtime.h - internal interfaces of libsftrace.so, the recording runtime.
 *
 * The runtime is split by job:
 *   init.c     process lifecycle: start-up, the log file, exit, fork, exec
 *   buffer.c   per-thread event buffers, the slow path, flushing
 *   patch.c    finding instrumented objects and patching their sleds
 *   hooks.c    libc functions we interpose (dlopen, fork, exec, signals)
 *   sys.c      small helpers that avoid malloc (arena, strings, I/O)
 *   version.c  the version note, and the version check against record
 *   arch/x86_64/trampoline.S  the hot path
 *   arch/x86_64/sled.c        sled and stub encodings
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
#include <sys/types.h>

#include "logfmt.h"
#include "filterfmt.h"
#include "pack.h"

#define SF_HIDDEN __attribute__((visibility("hidden")))
#define SF_EXPORT __attribute__((visibility("default")))

/* Event buffers are BUF_SIZE bytes, aligned to BUF_SIZE, so the trampoline
 * detects "full" as the low 16 bits of the write pointer becoming zero. */
#define SF_BUF_SIZE 65536u

/*
 * Per-thread state the trampoline reads through %fs. Field offsets are
 * hard-coded in trampoline.S (TLS_POS, TLS_HI_NOT): change both together.
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
};

enum sf_thread_state {
    SF_T_NEW = 0,      /* never recorded (TLS starts zeroed) */
    SF_T_ACTIVE = 1,   /* recording into slot->buf */
    SF_T_DISABLED = 2, /* events go to the discard buffer */
    SF_T_EXITED = 3,   /* flushed at thread exit; events are discarded */
};

extern __thread struct sf_tls sf_tls SF_HIDDEN;

/*
 * A thread's records go through a ring of SF_NBUF buffers. The owner fills
 * one (FILLING); a full one becomes FULL and is packed and written by the
 * writer thread (or by the owner itself when the ring is full, or by the
 * thread that flushes everything at exit). Buffers are written strictly in
 * ring order, by whoever holds the slot's wlock.
 */
#define SF_NBUF 8
enum { B_FREE = 0, B_FILLING = 1, B_FULL = 2 };
struct sf_buf {
    uint8_t *mem;       /* SF_BUF_SIZE bytes, SF_BUF_SIZE aligned */
    uint8_t *from;      /* first byte not yet written to the log */
    uint32_t hi;        /* timestamp high half in force at `from` */
    uint32_t ext_words; /* non-function words the owner wrote into it */
    uint32_t ext_taken; /* ... of which already written by a partial flush */
    _Atomic uint32_t state;
};

/* One per recording thread, in a lock-free list; reused, never freed. */
struct sf_slot {
    _Atomic uint32_t state; /* SLOT_FREE or SLOT_USED */
    _Atomic uint32_t wlock; /* held while writing this slot's records */
    uint32_t tid;
    uint32_t seq;       /* next EVENTS chunk number (under wlock) */
    struct sf_tls *tls; /* the owner's TLS (valid while USED) */
    struct sf_buf bufs[SF_NBUF];
    uint32_t cur;          /* the owner's FILLING buffer */
    uint32_t wnext;        /* the next buffer to write (under wlock) */
    uint64_t last_full_ns; /* when the owner last filled a buffer */
    char name[16];         /* name last written to the log */
    uint8_t *packbuf;      /* SF_PACK_BOUND(SF_BUF_SIZE) bytes for packing */
    struct sf_pack_state *pack;
    struct sf_slot *next;
};
#define SLOT_FREE 0u
#define SLOT_USED 1u

/* Process-wide state. */
struct sf_global {
    int enabled;            /* SFTRACE_OUTPUT_FILE set and the log is open */
    int fd;                 /* log file, O_APPEND */
    pid_t pid;              /* cached getpid(), updated in a forked child */
    int clock;              /* enum sf_clock */
    int need_process_chunk; /* forked child: write PROCESS + OBJECTs first */
    int setup_thread_only;  /* SFTRACE_SETUP_THREAD_ONLY */
    int patch_all;          /* preloaded by `sftrace record`: patch every object */
    int exiting;
    int raw;        /* SFTRACE_RAW: write records unpacked (debugging) */
    int use_writer; /* a writer thread packs and writes full buffers */
    uint32_t ncpus; /* CPUs this process may run on */
    uint64_t tsc_hz;
    _Atomic uint64_t lost;
    _Atomic uint64_t events;        /* function events written */
    _Atomic uint64_t writer_behind; /* full rings the owner had to write */
    _Atomic uint32_t nthreads;      /* threads that recorded */
    _Atomic(struct sf_slot *) slots;
    char path[4096]; /* absolute log path */
};
extern struct sf_global sf_g SF_HIDDEN;

/* ---- arch/x86_64 ---- */
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
    T_KEYR, /* ... of rax, at an exit */
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
#define SF_STUB_SIZE 16
void sf_arch_write_stub(uint8_t *stub, const void *target) SF_HIDDEN;
int sf_arch_in_reach(uintptr_t from_lo, uintptr_t from_hi, uintptr_t to) SF_HIDDEN;

/* ---- buffer.c ---- */
uint64_t sf_now(void) SF_HIDDEN; /* timestamp in the process's clock */
void sf_slow_event(uint32_t w1, int mode, const uint64_t *regs) SF_HIDDEN;
void sf_flush_self(void) SF_HIDDEN;
void sf_flush_all(int final) SF_HIDDEN;
void sf_thread_exit_flush(void) SF_HIDDEN;
void sf_buffers_after_fork(void) SF_HIDDEN;
void sf_buffers_init(void) SF_HIDDEN;
void sf_ensure_process_chunk(void) SF_HIDDEN;
void sf_write_thread_names(void) SF_HIDDEN;
void sf_alloc_event(uint8_t kind, uint64_t size, uint64_t align, uint64_t ptr) SF_HIDDEN;
/* asm: 0 recorded, 1 take the slow path, 2 recorded and the buffer is full */
int sf_alloc_record(uint32_t w1, uint64_t size, uint64_t align, uint64_t ptr) SF_HIDDEN;
extern const char sf_win2_start[] SF_HIDDEN, sf_win2_commit[] SF_HIDDEN;
void sf_write_alloc(uint8_t kind, uint64_t size, uint64_t align, uint64_t ptr) SF_HIDDEN;
void sf_thread_enable(int on) SF_HIDDEN;
void sf_signal_enter(void) SF_HIDDEN;
void sf_writer_start(void) SF_HIDDEN;

/* ---- init.c ---- */
void sf_init(void) SF_HIDDEN;
void sf_write_process_chunk(int flags) SF_HIDDEN;
void sf_write_end_chunk(int reason) SF_HIDDEN;
void sf_before_exit(int reason) SF_HIDDEN;
int sf_log_write(const void *a, size_t alen, const void *b, size_t blen) SF_HIDDEN;
void sf_msg(const char *fmt, ...) SF_HIDDEN __attribute__((format(printf, 1, 2)));

/* ---- patch.c ---- */
void sf_patch_all_objects(void) SF_HIDDEN;
int sf_patch_object_at(const void *addr, const void *stub_slot) SF_HIDDEN;
void sf_rewrite_object_chunks(void) SF_HIDDEN;
void sf_patch_namespace_of(void *handle) SF_HIDDEN;
uint32_t sf_patched_objects(void) SF_HIDDEN;

/* ---- filter.c ---- */
struct sf_filter {
    char path[4096];
    uint8_t build_id[64];
    size_t build_id_len;
    int descendants;
    int keys; /* mode keys: key registers only (sf_keys_for) */
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

/* ---- hooks.c ---- */
void sf_hooks_init(void) SF_HIDDEN;
const void *sf_ret_gadget_in(uintptr_t bias, const void *phdrs, int phnum,
                             uintptr_t near) SF_HIDDEN;
int sf_shadow_stack_on(void) SF_HIDDEN;
/* arch/x86_64/callas.S: fn(a0, a1, a2) entered with return address `gadget` */
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
uint64_t sf_mono_ns(void) SF_HIDDEN;
uint64_t sf_real_ns(void) SF_HIDDEN;
pid_t sf_gettid(void) SF_HIDDEN;

#endif
