/*
 * buffer.c - per-thread event buffers: the slow path, the writer thread, and
 * flushing every thread's records at thread exit, process exit, exec and
 * fatal signals.
 *
 * Each recording thread owns a slot with a ring of SF_NBUF 64 KiB buffers.
 * The trampoline appends 8-byte records through sf_tls.pos. When a buffer
 * fills, the slow path marks it FULL, wakes the writer thread and moves on to
 * the next buffer of the ring, so the traced thread never packs or writes in
 * the common case: the writer, on the other core, packs the buffer (pack.h)
 * and appends it as one EVENTS chunk. If the ring is full (the writer is
 * behind) or there is no writer (a forked child, SFTRACE_WRITER=0), the
 * owner writes its full buffers itself.
 *
 * Who writes: whoever holds the slot's wlock (writer thread, owner, or the
 * thread flushing everything at exit), always in ring order, and a buffer's
 * `from` pointer says what is already written, so every record reaches the
 * log exactly once even when a running thread's partly filled buffer is
 * written at exit.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

__thread struct sf_tls sf_tls __attribute__((tls_model("initial-exec")));

static uint8_t *discard_buf;   /* where disabled threads' events go */
static pthread_key_t exit_key; /* its destructor flushes a thread at exit */
static _Atomic uint32_t proc_chunk_lock;

/* The writer thread: woken through a futex on wake_seq. */
static _Atomic uint32_t wake_seq;
static _Atomic uint32_t writer_sleeping;
static pid_t writer_pid; /* the process the writer thread belongs to */

/* n buffers of SF_BUF_SIZE, contiguous and SF_BUF_SIZE-aligned: map one
 * buffer more than needed and give back the unaligned ends. */
static uint8_t *alloc_buffers(size_t n)
{
    size_t len = (n + 1) * SF_BUF_SIZE;
    uint8_t *p = sf_map(len);
    if (!p)
        return NULL;
    uintptr_t a = ((uintptr_t)p + SF_BUF_SIZE - 1) & ~(uintptr_t)(SF_BUF_SIZE - 1);
    if (a > (uintptr_t)p)
        sf_unmap(p, a - (uintptr_t)p);
    uintptr_t end = (uintptr_t)p + len, want = a + n * SF_BUF_SIZE;
    if (end > want)
        sf_unmap((void *)want, end - want);
    return (uint8_t *)a;
}

uint64_t sf_now(void)
{
    return sf_g.clock == SF_CLOCK_TSC ? sf_arch_now() : sf_mono_ns();
}

static void spin_lock(_Atomic uint32_t *l)
{
    uint32_t z = 0;
    while (!atomic_compare_exchange_weak(l, &z, 1)) {
        z = 0;
        __builtin_ia32_pause();
    }
}

/* Bounded: a flush at exit must not hang on a thread that died holding it. */
static int spin_trylock(_Atomic uint32_t *l, long tries)
{
    for (long i = 0; i < tries; i++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_weak(l, &z, 1))
            return 1;
        if (i > 1000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        } else {
            __builtin_ia32_pause();
        }
    }
    return 0;
}

static void spin_unlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

static void block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

static void tsd_destructor(void *v);

void sf_buffers_init(void)
{
    discard_buf = alloc_buffers(1);
    pthread_key_create(&exit_key, tsd_destructor);
}

static struct sf_slot *slot_acquire(void)
{
    for (struct sf_slot *s = atomic_load(&sf_g.slots); s; s = s->next) {
        uint32_t f = SLOT_FREE;
        if (atomic_load(&s->state) == SLOT_FREE &&
            atomic_compare_exchange_strong(&s->state, &f, SLOT_USED))
            return s;
    }
    struct sf_slot *s = sf_alloc(sizeof *s);
    if (!s)
        return NULL;
    uint8_t *ring = alloc_buffers(SF_NBUF);
    if (!ring)
        return NULL;
    for (int i = 0; i < SF_NBUF; i++)
        s->bufs[i].mem = ring + (size_t)i * SF_BUF_SIZE;
    s->packbuf = sf_map(SF_PACK_BOUND(SF_BUF_SIZE));
    s->pack = sf_alloc(sizeof *s->pack);
    if (!s->packbuf || !s->pack)
        return NULL;
    atomic_store(&s->state, SLOT_USED);
    struct sf_slot *head = atomic_load(&sf_g.slots);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak(&sf_g.slots, &head, s));
    return s;
}

static void point_at_discard(uint64_t now)
{
    sf_tls.pos = discard_buf;
    sf_tls.hi_not = ~(uint32_t)(now >> 32);
}

/* Make bufs[i] the owner's FILLING buffer. It must be FREE. */
static void start_buffer(struct sf_slot *s, uint32_t i)
{
    struct sf_buf *b = &s->bufs[i];
    b->from = b->mem;
    b->hi = ~sf_tls.hi_not;
    b->ext_words = 0;
    b->ext_taken = 0;
    atomic_store(&b->state, B_FILLING);
    s->cur = i;
    sf_tls.pos = b->mem;
}

/* First event of a thread: give it a slot, or send it to the discard buffer. */
static void thread_start(uint64_t now, int force)
{
    struct sf_slot *s = NULL;
    if (sf_g.enabled && !sf_g.exiting && (force || !sf_g.setup_thread_only))
        s = slot_acquire();
    if (!s) {
        sf_tls.state = SF_T_DISABLED;
        point_at_discard(now);
        return;
    }
    /* The writer thread may still be looking at this slot's previous life. */
    spin_lock(&s->wlock);
    s->tid = (uint32_t)sf_gettid();
    s->seq = 0;
    s->tls = &sf_tls;
    s->name[0] = 0;
    s->wnext = 0;
    for (int i = 0; i < SF_NBUF; i++)
        atomic_store(&s->bufs[i].state, B_FREE);
    sf_tls.hi_not = ~(uint32_t)(now >> 32);
    start_buffer(s, 0);
    spin_unlock(&s->wlock);
    sf_tls.slot = s;
    sf_tls.state = SF_T_ACTIVE;
    sf_tls.dtor_rounds = 0;
    sf_tls.ext_words = 0;
    atomic_fetch_add(&sf_g.nthreads, 1);
    pthread_setspecific(exit_key, &sf_tls);
}

/* Turn recording on for the calling thread (setup-thread-only mode). */
void sf_thread_enable(int on)
{
    sigset_t old;
    block_signals(&old);
    uint64_t now = sf_now();
    if (on && sf_tls.state != SF_T_ACTIVE && sf_tls.state != SF_T_EXITED)
        thread_start(now, 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Write PROCESS and OBJECT chunks once, before a forked child's first
 * events (or its first OBJECT chunk): no chunk of a pid may come before its
 * PROCESS chunk, and a child that records nothing writes nothing. */
void sf_ensure_process_chunk(void)
{
    if (!sf_g.need_process_chunk)
        return;
    spin_lock(&proc_chunk_lock);
    if (sf_g.need_process_chunk) {
        sf_write_process_chunk(SF_PROC_FORKED);
        sf_rewrite_object_chunks();
        sf_g.need_process_chunk = 0;
    }
    spin_unlock(&proc_chunk_lock);
}

static void write_thread_chunk(struct sf_slot *s, const char *name, uint32_t flags)
{
    struct sf_thread t;
    memset(&t, 0, sizeof t);
    t.h.magic = SF_CHUNK_MAGIC;
    t.h.type = SF_CHUNK_THREAD;
    t.h.flags = (uint16_t)flags;
    t.h.size = sizeof t;
    t.h.pid = (uint32_t)sf_g.pid;
    t.tid = s->tid;
    t.tsc = sf_now();
    memcpy(t.name, name, 15);
    sf_log_write(&t, sizeof t, NULL, 0);
    memcpy(s->name, name, 16);
}

/* Read a thread's current name; write a THREAD chunk if it changed. Caller
 * holds s->wlock (the name cache is the slot's). */
static void update_thread_name(struct sf_slot *s, int self, uint32_t flags)
{
    if (sf_g.need_process_chunk)
        return; /* a forked child that recorded nothing: it writes nothing */
    char name[16] = {0};
    if (self) {
        prctl(PR_GET_NAME, name, 0, 0, 0);
    } else {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%u/comm", s->tid);
        ssize_t n = sf_read_file(path, name, 15);
        if (n <= 0)
            return;
        name[n] = 0;
        char *nl = strchr(name, '\n');
        if (nl)
            *nl = 0;
    }
    if (flags || memcmp(name, s->name, 16) != 0)
        write_thread_chunk(s, name, flags);
}

/* Timestamp high half in force after the records [from, to), and the number
 * of non-function record words among them. */
static uint32_t scan_records(const uint8_t *from, const uint8_t *to, uint32_t hi,
                             uint32_t *ext_words)
{
    uint32_t ext = 0;
    while (from + 8 <= to) {
        uint32_t w0, w1;
        memcpy(&w0, from, 4);
        memcpy(&w1, from + 4, 4);
        size_t len = 8;
        if (sf_w1_kind(w1) == SF_KIND_EXT) {
            if (sf_w1_sub(w1) == SF_EXT_TSC_HI)
                hi = w0;
            len += 8 * (size_t)sf_w1_nwords(w1);
            ext += (uint32_t)(len / 8);
        }
        from += len;
    }
    *ext_words = ext;
    return hi;
}

/* Write records [b->from, end) of slot s as one EVENTS chunk. Holds wlock. */
static void write_events(struct sf_slot *s, struct sf_buf *b, uint8_t *end, uint32_t ext_words)
{
    uint8_t *from = b->from;
    if (end <= from)
        return;
    sf_ensure_process_chunk();
    struct sf_events h;
    memset(&h, 0, sizeof h);
    const uint8_t *data = from;
    size_t len = (size_t)(end - from);
    if (!sf_g.raw) {
        len = sf_pack(s->pack, from, len, b->hi, s->packbuf);
        data = s->packbuf;
        /* chunks stay 8-byte multiples: zero bytes after the records */
        h.pad = (uint32_t)((8 - len % 8) % 8);
        memset(s->packbuf + len, 0, h.pad);
        len += h.pad;
        h.h.flags = SF_EVENTS_PACKED;
    }
    h.h.magic = SF_CHUNK_MAGIC;
    h.h.type = SF_CHUNK_EVENTS;
    h.h.size = (uint32_t)(sizeof h + len);
    h.h.pid = (uint32_t)sf_g.pid;
    h.tid = s->tid;
    h.seq = s->seq++;
    h.tsc_hi = b->hi;
    h.flush_tsc = sf_now();
    h.flush_mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : h.flush_tsc;
    uint64_t nrec = (uint64_t)(end - from) / 8;
    if (sf_log_write(&h, sizeof h, data, len) != 0)
        atomic_fetch_add(&sf_g.lost, nrec);
    else
        atomic_fetch_add(&sf_g.events, nrec > ext_words ? nrec - ext_words : 0);
    b->from = end;
}

/*
 * Write every FULL buffer of s, in ring order, and free it. With `partial`,
 * also the written part of the FILLING buffer (`pos` is the owner's write
 * pointer, read by the caller). Caller holds s->wlock. Returns buffers freed.
 */
static int drain(struct sf_slot *s, uint8_t *partial_end)
{
    int n = 0;
    for (;;) {
        struct sf_buf *b = &s->bufs[s->wnext];
        uint32_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        if (st == B_FULL) {
            write_events(s, b, b->mem + SF_BUF_SIZE, b->ext_words - b->ext_taken);
            atomic_store_explicit(&b->state, B_FREE, memory_order_release);
            s->wnext = (s->wnext + 1) % SF_NBUF;
            n++;
            continue;
        }
        if (st == B_FILLING && partial_end && partial_end >= b->from &&
            partial_end <= b->mem + SF_BUF_SIZE) {
            uint32_t ext;
            uint32_t hi = scan_records(b->from, partial_end, b->hi, &ext);
            write_events(s, b, partial_end, ext);
            b->hi = hi;
            b->ext_taken += ext;
        }
        return n;
    }
}

static void wake_writer(void)
{
    atomic_fetch_add(&wake_seq, 1);
    if (atomic_load(&writer_sleeping))
        syscall(SYS_futex, &wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/*
 * Is there a core for the writer? Handing buffers over only pays when a core
 * would otherwise idle: when as many threads fill buffers as there are
 * CPUs, packing on the other core just moves the work and adds the cost of
 * moving 64 KiB between caches. A thread counts as busy if it filled a
 * buffer in the last 20 ms.
 */
static int spare_cpu(struct sf_slot *self)
{
    uint64_t now = sf_mono_ns();
    self->last_full_ns = now;
    uint32_t busy = 0;
    for (struct sf_slot *s = atomic_load(&sf_g.slots); s; s = s->next)
        if (atomic_load(&s->state) == SLOT_USED && now - s->last_full_ns < 20000000)
            busy++;
    return busy < sf_g.ncpus;
}

/* The owner's buffer is full: hand it over and continue in the next one.
 * Signals are blocked. */
static void buffer_full(void)
{
    struct sf_slot *s = sf_tls.slot;
    struct sf_buf *b = &s->bufs[s->cur];
    b->ext_words = sf_tls.ext_words;
    sf_tls.ext_words = 0;
    atomic_store_explicit(&b->state, B_FULL, memory_order_release);
    uint32_t next = (s->cur + 1) % SF_NBUF;
    int writer = sf_g.use_writer && writer_pid == sf_g.pid && spare_cpu(s);
    if (!writer || atomic_load_explicit(&s->bufs[next].state, memory_order_acquire) != B_FREE) {
        /* No writer, or it is behind: write our own full buffers. */
        if (writer)
            atomic_fetch_add(&sf_g.writer_behind, 1);
        spin_lock(&s->wlock);
        drain(s, NULL);
        spin_unlock(&s->wlock);
    }
    start_buffer(s, next);
    if (writer)
        wake_writer(); /* a system call only when the writer sleeps */
}

/*
 * A signal arrived (called by the runtime's wrapper before the program's
 * handler runs). If it landed between the trampoline's commit that filled
 * the buffer and the slow path taking over, the write pointer sits at the
 * end of the buffer, and the handler's first event would be written past
 * it: move to the next buffer now. The slow path, when it resumes, finds
 * nothing left to do. (Inside the slow path itself signals are blocked.)
 */
void sf_signal_enter(void)
{
    if (sf_tls.in_slow || ((uintptr_t)sf_tls.pos & (SF_BUF_SIZE - 1)) || !sf_tls.pos)
        return;
    sf_tls.in_slow = 1;
    if (sf_tls.state == SF_T_ACTIVE) {
        struct sf_slot *s = sf_tls.slot;
        if (sf_tls.pos == s->bufs[s->cur].mem + SF_BUF_SIZE)
            buffer_full();
    } else if (sf_tls.state != SF_T_NEW) {
        point_at_discard(sf_now());
    }
    sf_tls.in_slow = 0;
}

/* Write everything the calling thread has recorded so far. Signals blocked. */
static void flush_own(void)
{
    struct sf_slot *s = sf_tls.slot;
    if (!s || sf_tls.state != SF_T_ACTIVE)
        return;
    spin_lock(&s->wlock);
    drain(s, sf_tls.pos);
    update_thread_name(s, 1, 0);
    spin_unlock(&s->wlock);
}

/* Make room for `need` bytes of records in the current buffer: if they do
 * not fit, pad it out with PAD records and move to the next one. */
static uint32_t *reserve(size_t need)
{
    struct sf_slot *s = sf_tls.slot;
    uint8_t *end = s->bufs[s->cur].mem + SF_BUF_SIZE;
    if (sf_tls.pos + need > end) {
        while (sf_tls.pos < end) {
            uint32_t *q = (uint32_t *)sf_tls.pos;
            q[0] = 0;
            q[1] = sf_w1_ext(SF_EXT_PAD, 0, 0);
            sf_tls.pos += 8;
            sf_tls.ext_words++;
        }
        buffer_full();
    }
    return (uint32_t *)sf_tls.pos;
}

/* Append a record header (and a TSC_HI before it when the high half
 * changed) at p; returns where its payload goes. */
static uint32_t *put_record(uint32_t *p, uint64_t now, uint32_t w1)
{
    uint32_t hi = (uint32_t)(now >> 32);
    if (~hi != sf_tls.hi_not) {
        *p++ = hi;
        *p++ = sf_w1_ext(SF_EXT_TSC_HI, 0, 0);
        sf_tls.hi_not = ~hi;
        sf_tls.ext_words++;
    }
    *p++ = (uint32_t)now;
    *p++ = w1;
    if (sf_w1_kind(w1) == SF_KIND_EXT)
        sf_tls.ext_words += 1 + sf_w1_nwords(w1);
    return p;
}

/* regs: the registers the trampoline saved, from its saved rbx upwards. */
enum { R_R9 = 3, R_R8 = 4, R_RDI = 5, R_RSI = 6, R_RCX = 8, R_RDX = 9, R_RAX = 10 };
/* Above them: the function's return address, the slot every sled of one
 * frame sees at rsp; entry and tail sleds `call`, so theirs is one higher. */
enum { R_FRAME_EXIT = 11, R_FRAME = 12 };

void sf_slow_event(uint32_t w1, int mode, const uint64_t *regs)
{
    sigset_t old;
    block_signals(&old);
    if (sf_tls.in_slow) {
        /* Re-entered from something the slow path itself called. */
        atomic_fetch_add(&sf_g.lost, 1);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return;
    }
    sf_tls.in_slow = 1;
    uint64_t now = sf_now();
    if (sf_tls.state == SF_T_NEW)
        thread_start(now, 0);
    /* Descendants mode (the fast trampolines do the same, trampoline.S):
     * sp is the sled's return-address slot; the thread is inside the scope
     * while sp is at or below the scope's slot. */
    uintptr_t sp = (uintptr_t)&regs[sf_w1_kind(w1) == SF_KIND_EXIT ? R_FRAME_EXIT : R_FRAME];
    int inside = sf_tls.scope && sp <= sf_tls.scope;
    if ((mode & SF_SLOW_ENTER) && !inside)
        sf_tls.scope = sp;
    if ((mode & SF_SLOW_DESC) && !inside)
        mode &= ~SF_SLOW_RECORD;
    if (sf_tls.state != SF_T_ACTIVE) {
        point_at_discard(now);
    } else {
        struct sf_slot *s = sf_tls.slot;
        if (mode & SF_SLOW_RECORD) {
            size_t need = 16 + (mode & SF_SLOW_ARGS ? 56 : 0) + (mode & SF_SLOW_RET ? 16 : 0);
            uint32_t *p = put_record(reserve(need), now, w1);
            if (mode & SF_SLOW_ARGS) {
                p = put_record(p, now, sf_w1_ext(SF_EXT_ARGS, 6, 6));
                uint64_t a[6] = {regs[R_RDI], regs[R_RSI], regs[R_RDX],
                                 regs[R_RCX], regs[R_R8],  regs[R_R9]};
                memcpy(p, a, sizeof a);
                p += 12;
            }
            if (mode & SF_SLOW_RET) {
                p = put_record(p, now, sf_w1_ext(SF_EXT_RET, 1, 1));
                memcpy(p, &regs[R_RAX], 8);
                p += 2;
            }
            sf_tls.pos = (uint8_t *)p;
        }
        if (sf_tls.pos >= s->bufs[s->cur].mem + SF_BUF_SIZE)
            buffer_full();
    }
    if ((mode & SF_SLOW_LEAVE) && sp >= sf_tls.scope)
        sf_tls.scope = 0; /* the scope's frame returns (or is gone) */
    sf_tls.in_slow = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void sf_write_alloc(uint8_t kind, uint64_t size, uint64_t align, uint64_t ptr)
{
    sigset_t old;
    block_signals(&old);
    if (sf_tls.in_slow)
        goto out;
    sf_tls.in_slow = 1;
    uint64_t now = sf_now();
    if (sf_tls.state == SF_T_NEW)
        thread_start(now, 0);
    if (sf_tls.state == SF_T_ACTIVE) {
        struct sf_slot *s = sf_tls.slot;
        uint32_t *p = put_record(reserve(48), now, sf_w1_ext(SF_EXT_ALLOC, kind, 3));
        uint64_t v[3] = {size, align, ptr};
        memcpy(p, v, sizeof v);
        sf_tls.pos = (uint8_t *)(p + 6);
        if (sf_tls.pos >= s->bufs[s->cur].mem + SF_BUF_SIZE)
            buffer_full();
    }
    sf_tls.in_slow = 0;
out:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* sftrace_alloc_event: the asm fast path, then C when it cannot. */
void sf_alloc_event(uint8_t kind, uint64_t size, uint64_t align, uint64_t ptr)
{
    int r = sf_alloc_record(sf_w1_ext(SF_EXT_ALLOC, kind, 3), size, align, ptr);
    if (r == 1) {
        sf_write_alloc(kind, size, align, ptr);
    } else if (r == 2) {
        sigset_t old;
        block_signals(&old);
        if (!sf_tls.in_slow && sf_tls.state == SF_T_ACTIVE &&
            sf_tls.pos >= sf_tls.slot->bufs[sf_tls.slot->cur].mem + SF_BUF_SIZE) {
            sf_tls.in_slow = 1;
            buffer_full();
            sf_tls.in_slow = 0;
        } else if (sf_tls.state != SF_T_ACTIVE && !sf_tls.in_slow) {
            point_at_discard(sf_now());
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
}

void sf_flush_self(void)
{
    sigset_t old;
    block_signals(&old);
    if (!sf_tls.in_slow)
        flush_own();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Write another thread's unwritten records. It may still be running. */
static void reap(struct sf_slot *s, int final)
{
    if (!spin_trylock(&s->wlock, 200000))
        return;
    if (atomic_load(&s->state) == SLOT_USED && s->tls) {
        uint8_t *end = __atomic_load_n(&s->tls->pos, __ATOMIC_ACQUIRE);
        drain(s, end);
        if (final)
            update_thread_name(s, 0, 0);
    }
    spin_unlock(&s->wlock);
}

void sf_flush_all(int final)
{
    sigset_t old;
    block_signals(&old);
    struct sf_slot *self = sf_tls.state == SF_T_ACTIVE ? sf_tls.slot : NULL;
    for (struct sf_slot *s = atomic_load(&sf_g.slots); s; s = s->next) {
        if (atomic_load(&s->state) != SLOT_USED)
            continue;
        if (s == self) {
            if (!sf_tls.in_slow)
                flush_own();
        } else {
            reap(s, final);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Thread exit. glibc runs TSD destructors in up to four rounds while values
 * are set again; we set ours again so that instrumented code run by other
 * destructors is still recorded, and let go of the slot in the last round.
 */
static void tsd_destructor(void *v)
{
    (void)v;
    sigset_t old;
    block_signals(&old);
    struct sf_slot *s = sf_tls.slot;
    if (sf_tls.state == SF_T_ACTIVE && s && !sf_tls.in_slow) {
        sf_tls.in_slow = 1;
        flush_own();
        if (++sf_tls.dtor_rounds < 4) {
            pthread_setspecific(exit_key, &sf_tls);
        } else {
            spin_lock(&s->wlock);
            drain(s, sf_tls.pos);
            update_thread_name(s, 1, SF_THREAD_EXITED);
            s->tls = NULL;
            sf_tls.state = SF_T_EXITED;
            point_at_discard(sf_now());
            atomic_store(&s->state, SLOT_FREE);
            spin_unlock(&s->wlock);
        }
        sf_tls.in_slow = 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* In a forked child: only the calling thread exists, the parent's unwritten
 * records are the parent's to write, and there is no writer thread. */
void sf_buffers_after_fork(void)
{
    struct sf_slot *self = sf_tls.state == SF_T_ACTIVE ? sf_tls.slot : NULL;
    for (struct sf_slot *s = atomic_load(&sf_g.slots); s; s = s->next) {
        atomic_store(&s->wlock, 0);
        if (s == self)
            continue;
        s->tls = NULL;
        atomic_store(&s->state, SLOT_FREE);
    }
    atomic_store(&proc_chunk_lock, 0);
    atomic_store(&sf_g.nthreads, self ? 1 : 0);
    if (self) {
        self->tid = (uint32_t)sf_gettid();
        self->seq = 0;
        self->name[0] = 0;
        self->wnext = 0;
        for (int i = 0; i < SF_NBUF; i++)
            atomic_store(&self->bufs[i].state, B_FREE);
        /* keep filling the current buffer, from where the parent was */
        struct sf_buf *b = &self->bufs[self->cur];
        uint8_t *pos = sf_tls.pos;
        start_buffer(self, self->cur);
        b->from = pos;
        sf_tls.pos = pos;
        self->wnext = self->cur;
    }
}

/* ---- the writer thread ---- */

static void *writer_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "sftrace-writer", 0, 0, 0);
    for (;;) {
        uint32_t seen = atomic_load(&wake_seq);
        int did = 0;
        for (struct sf_slot *s = atomic_load(&sf_g.slots); s; s = s->next) {
            if (atomic_load(&s->state) != SLOT_USED)
                continue;
            uint32_t z = 0;
            if (!atomic_compare_exchange_strong(&s->wlock, &z, 1))
                continue;
            did += drain(s, NULL);
            spin_unlock(&s->wlock);
        }
        if (did)
            continue;
        /* Poll a while before sleeping: waking an idle CPU takes about as
         * long as a busy thread takes to fill a buffer (~100 us; more in a
         * VM), and a writer that sleeps between buffers falls behind. */
        uint64_t t0 = sf_mono_ns();
        while (atomic_load(&wake_seq) == seen && sf_mono_ns() - t0 < 300000)
            for (int i = 0; i < 64; i++)
                __builtin_ia32_pause();
        if (atomic_load(&wake_seq) != seen)
            continue;
        atomic_store(&writer_sleeping, 1);
        if (atomic_load(&wake_seq) == seen) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            syscall(SYS_futex, &wake_seq, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
        }
        atomic_store(&writer_sleeping, 0);
    }
    return NULL;
}

/* Called at start-up, where creating a thread is safe (not from the slow
 * path: pthread_create allocates, and the allocator may be instrumented). */
void sf_writer_start(void)
{
    if (!sf_g.use_writer)
        return;
    sigset_t old;
    block_signals(&old); /* the writer inherits a mask that blocks everything */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t t;
    if (pthread_create(&t, &attr, writer_main, NULL) == 0)
        writer_pid = sf_g.pid;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
