/*
 * buffer.c - per-thread event buffers: the slow path, flushing, and reaping
 * the buffers of other threads at exit, exec and fatal signals.
 *
 * Each recording thread owns a 64 KiB buffer (struct sf_slot) that only it
 * writes; the trampoline appends records through sf_tls.pos. When the buffer
 * fills, the owner writes it as one EVENTS chunk (one writev on an O_APPEND
 * descriptor) and starts over. At process exit another thread may have to
 * write a running thread's buffer: the slot's flush lock and its `flushed`
 * pointer make sure each record is written exactly once, whoever writes it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "runtime.h"

__thread struct sf_tls sf_tls __attribute__((tls_model("initial-exec")));

static uint8_t *discard_buf;   /* where disabled threads' events go */
static pthread_key_t exit_key; /* its destructor flushes a thread at exit */
static _Atomic uint32_t proc_chunk_lock;

static uint8_t *alloc_buffer(void)
{
    /* Map twice the size and keep the SF_BUF_SIZE-aligned half. */
    uint8_t *p = sf_map(2 * SF_BUF_SIZE);
    if (!p)
        return NULL;
    uintptr_t a = ((uintptr_t)p + SF_BUF_SIZE - 1) & ~(uintptr_t)(SF_BUF_SIZE - 1);
    if (a > (uintptr_t)p)
        sf_unmap(p, a - (uintptr_t)p);
    uintptr_t end = (uintptr_t)p + 2 * SF_BUF_SIZE;
    if (end > a + SF_BUF_SIZE)
        sf_unmap((void *)(a + SF_BUF_SIZE), end - (a + SF_BUF_SIZE));
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

/* Bounded: a reaper must not hang on a thread that died holding the lock. */
static int spin_trylock(_Atomic uint32_t *l, long tries)
{
    for (long i = 0; i < tries; i++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_weak(l, &z, 1))
            return 1;
        __builtin_ia32_pause();
    }
    return 0;
}

static void spin_unlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

static void tsd_destructor(void *v);

void sf_buffers_init(void)
{
    discard_buf = alloc_buffer();
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
    s->buf = alloc_buffer();
    s->packbuf = sf_map(SF_PACK_BOUND(SF_BUF_SIZE));
    s->pack = sf_alloc(sizeof *s->pack);
    if (!s->buf || !s->packbuf || !s->pack)
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

/* First event of a thread: give it a buffer, or send it to the discard one. */
static void thread_start(uint64_t now)
{
    struct sf_slot *s = NULL;
    if (sf_g.enabled && !sf_g.exiting && !sf_g.setup_thread_only)
        s = slot_acquire();
    if (!s) {
        sf_tls.state = SF_T_DISABLED;
        point_at_discard(now);
        return;
    }
    s->tid = (uint32_t)sf_gettid();
    s->seq = 0;
    s->tls = &sf_tls;
    s->flushed = s->buf;
    s->flushed_hi = (uint32_t)(now >> 32);
    s->ext_words = 0;
    s->name[0] = 0;
    atomic_store(&s->lock, 0);
    sf_tls.slot = s;
    sf_tls.pos = s->buf;
    sf_tls.hi_not = ~(uint32_t)(now >> 32);
    sf_tls.state = SF_T_ACTIVE;
    sf_tls.dtor_rounds = 0;
    atomic_fetch_add(&sf_g.nthreads, 1);
    pthread_setspecific(exit_key, &sf_tls);
}

/* Turn recording on or off for the calling thread (setup-thread-only mode). */
void sf_thread_enable(int on)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    uint64_t now = sf_now();
    if (on && sf_tls.state != SF_T_ACTIVE && sf_tls.state != SF_T_EXITED) {
        int save = sf_g.setup_thread_only;
        sf_g.setup_thread_only = 0;
        thread_start(now);
        sf_g.setup_thread_only = save;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Write PROCESS and OBJECT chunks once, before a forked child's first events. */
static void ensure_process_chunk(void)
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

/* Read a thread's current name; write a THREAD chunk if it changed. */
static void update_thread_name(struct sf_slot *s, int self, uint32_t flags)
{
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

/* Write [s->flushed, end) as one EVENTS chunk. Caller holds s->lock. */
static void write_events(struct sf_slot *s, uint8_t *end, uint32_t ext_words)
{
    uint8_t *from = s->flushed;
    if (end <= from)
        return;
    ensure_process_chunk();
    struct sf_events h;
    memset(&h, 0, sizeof h);
    const uint8_t *data = from;
    size_t len = (size_t)(end - from);
    if (!sf_g.raw) {
        sf_pack_reset(s->pack, s->flushed_hi);
        len = sf_pack(s->pack, from, len, s->flushed_hi, s->packbuf);
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
    h.tsc_hi = s->flushed_hi;
    h.flush_tsc = sf_now();
    h.flush_mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : h.flush_tsc;
    if (sf_log_write(&h, sizeof h, data, len) != 0)
        atomic_fetch_add(&sf_g.lost, (uint64_t)(end - from) / 8);
    atomic_fetch_add(&sf_g.events, (uint64_t)(end - from) / 8 - ext_words);
    s->flushed = end;
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

/* The owner flushes its own buffer. Signals must be blocked. */
static void flush_own(int reset)
{
    struct sf_slot *s = sf_tls.slot;
    if (!s || sf_tls.state != SF_T_ACTIVE)
        return;
    spin_lock(&s->lock);
    /* ext_words counts the non-function words the slow path wrote, so the
     * common flush needs no scan of the buffer. */
    write_events(s, sf_tls.pos, s->ext_words);
    s->flushed_hi = ~sf_tls.hi_not;
    s->ext_words = 0;
    if (reset) {
        sf_tls.pos = s->buf;
        s->flushed = s->buf;
    }
    spin_unlock(&s->lock);
    update_thread_name(s, 1, 0);
}

static void block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

void sf_slow_event(uint32_t w1, int record)
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
        thread_start(now);
    if (sf_tls.state != SF_T_ACTIVE) {
        point_at_discard(now);
        goto out;
    }
    struct sf_slot *s = sf_tls.slot;
    uint8_t *end = s->buf + SF_BUF_SIZE;
    if (record) {
        if (sf_tls.pos + 16 > end)
            flush_own(1);
        uint32_t hi = (uint32_t)(now >> 32);
        uint32_t *p = (uint32_t *)sf_tls.pos;
        if (~hi != sf_tls.hi_not) {
            *p++ = hi;
            *p++ = sf_w1_ext(SF_EXT_TSC_HI, 0, 0);
            sf_tls.hi_not = ~hi;
            s->ext_words++;
        }
        *p++ = (uint32_t)now;
        *p++ = w1;
        sf_tls.pos = (uint8_t *)p;
    }
    if (sf_tls.pos >= end)
        flush_own(1);
out:
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
        thread_start(now);
    if (sf_tls.state == SF_T_ACTIVE) {
        struct sf_slot *s = sf_tls.slot;
        uint8_t *end = s->buf + SF_BUF_SIZE;
        if (sf_tls.pos + 48 > end) {
            /* pad to the end so the buffer flushes whole */
            while (sf_tls.pos < end) {
                uint32_t *q = (uint32_t *)sf_tls.pos;
                q[0] = 0;
                q[1] = sf_w1_ext(SF_EXT_PAD, 0, 0);
                sf_tls.pos += 8;
                s->ext_words++;
            }
            flush_own(1);
        }
        uint32_t hi = (uint32_t)(now >> 32);
        uint32_t *p = (uint32_t *)sf_tls.pos;
        if (~hi != sf_tls.hi_not) {
            *p++ = hi;
            *p++ = sf_w1_ext(SF_EXT_TSC_HI, 0, 0);
            sf_tls.hi_not = ~hi;
            s->ext_words++;
        }
        *p++ = (uint32_t)now;
        *p++ = sf_w1_ext(SF_EXT_ALLOC, kind, 3);
        uint64_t *q = (uint64_t *)p;
        q[0] = size;
        q[1] = align;
        q[2] = ptr;
        sf_tls.pos = (uint8_t *)(q + 3);
        s->ext_words += 4;
        if (sf_tls.pos >= end)
            flush_own(1);
    }
    sf_tls.in_slow = 0;
out:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void sf_flush_self(void)
{
    sigset_t old;
    block_signals(&old);
    if (!sf_tls.in_slow)
        flush_own(0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Write another thread's unflushed records. It may still be running. */
static void reap(struct sf_slot *s, int final)
{
    if (!spin_trylock(&s->lock, 1000000))
        return;
    if (atomic_load(&s->state) == SLOT_USED && s->tls) {
        uint8_t *end = __atomic_load_n(&s->tls->pos, __ATOMIC_ACQUIRE);
        if (end >= s->flushed && end <= s->buf + SF_BUF_SIZE) {
            uint32_t ext;
            uint32_t hi = scan_records(s->flushed, end, s->flushed_hi, &ext);
            write_events(s, end, ext);
            s->flushed_hi = hi;
            s->ext_words = s->ext_words > ext ? s->ext_words - ext : 0;
        }
    }
    spin_unlock(&s->lock);
    if (final)
        update_thread_name(s, 0, 0);
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
                flush_own(0);
        } else {
            reap(s, final);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Thread exit. glibc runs TSD destructors in up to four rounds while values
 * are set again; we set ours again so that instrumented code run by other
 * destructors is still recorded, and let go of the buffer in the last round.
 */
static void tsd_destructor(void *v)
{
    (void)v;
    sigset_t old;
    block_signals(&old);
    struct sf_slot *s = sf_tls.slot;
    if (sf_tls.state == SF_T_ACTIVE && s && !sf_tls.in_slow) {
        sf_tls.in_slow = 1;
        flush_own(1);
        if (++sf_tls.dtor_rounds < 4) {
            pthread_setspecific(exit_key, &sf_tls);
        } else {
            update_thread_name(s, 1, SF_THREAD_EXITED);
            spin_lock(&s->lock);
            s->tls = NULL;
            sf_tls.state = SF_T_EXITED;
            point_at_discard(sf_now());
            atomic_store(&s->state, SLOT_FREE);
            spin_unlock(&s->lock);
        }
        sf_tls.in_slow = 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* In a forked child: only the calling thread exists, and the parent's
 * unflushed records are the parent's to write. */
void sf_buffers_after_fork(void)
{
    struct sf_slot *self = sf_tls.state == SF_T_ACTIVE ? sf_tls.slot : NULL;
    for (struct sf_slot *s = atomic_load(&sf_g.slots); s; s = s->next) {
        atomic_store(&s->lock, 0);
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
        self->flushed = sf_tls.pos;
        self->flushed_hi = ~sf_tls.hi_not;
        self->ext_words = 0;
        self->name[0] = 0;
    }
}
