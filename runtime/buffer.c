/*
 * buffer.c - per-thread event buffers in shared memory: the slow path,
 * handing full buffers to the helper process, and the requests that make
 * the helper write everything at exit, exec and fatal signals.
 *
 * Each recording thread owns a slot in the process's memfd (runtime.h has
 * the layout) with a ring of SF_NBUF 64 KiB buffers. The trampoline appends
 * 8-byte records through sf_tls.pos. When a buffer fills, the slow path
 * marks it FULL (after packing it itself when no core is spare) and moves to
 * the next buffer of the ring; the helper (helper.c) appends it to the log,
 * zeroes it and frees it. If the next buffer is not free yet the owner waits
 * for the helper, so the program slows down instead of losing events. The
 * traced process never writes the log: a record is in the log once it is in
 * shared memory, whatever happens to the process afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

__thread struct sf_tls sf_tls __attribute__((tls_model("initial-exec")));
_Static_assert(offsetof(struct sf_tls, side) == 48, "TLS_SIDE in trampoline.S");

static uint8_t *discard_buf;      /* where disabled threads' events go */
static pthread_key_t exit_key;    /* its destructor flushes a thread at exit */
static _Atomic uint32_t req_lock; /* one request to the helper at a time */

static void tsd_destructor(void *v);

uint64_t sf_now(void)
{
    return sf_g.clock == SF_CLOCK_TSC ? sf_arch_now() : sf_mono_ns();
}

/* Bounded: nothing here may hang on a thread that died holding a lock (a
 * fatal signal, a raw clone child sharing our TLS). */
/* Take the lock, trying for at most limit_ns: spinning a little, then
 * sleeping 20 us between tries. The bound is in time, not in tries: under
 * load a 20 us sleep takes 120 us on average here (up to 95 ms), so
 * 100,000 tries were 12 s and more. */
static int spin_trylock(_Atomic uint32_t *l, uint64_t limit_ns)
{
    uint64_t t0 = 0;
    for (long i = 0;; i++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_weak(l, &z, 1))
            return 1;
        if (i > 1000) {
            if (!t0)
                t0 = sf_mono_ns();
            else if (sf_mono_ns() - t0 > limit_ns)
                return 0;
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        } else {
            sf_arch_pause();
        }
    }
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

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* Map len bytes of the memfd at off, SF_BUF_SIZE-aligned (at `at` if given). */
static void *map_shared(size_t off, size_t len, void *at)
{
    if (at) {
        void *p =
            mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, sf_g.memfd, (off_t)off);
        return p == MAP_FAILED ? NULL : p;
    }
    size_t rlen = len + SF_BUF_SIZE;
    uint8_t *r = mmap(NULL, rlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)r + SF_BUF_SIZE - 1) & ~(uintptr_t)(SF_BUF_SIZE - 1);
    void *p = mmap((void *)a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, sf_g.memfd,
                   (off_t)off);
    if (p == MAP_FAILED) {
        munmap(r, rlen);
        return NULL;
    }
    if (a > (uintptr_t)r)
        munmap(r, a - (uintptr_t)r);
    uintptr_t end = (uintptr_t)r + rlen, want = a + len;
    if (end > want)
        munmap((void *)want, end - want);
    return p;
}

static uint64_t fd_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/*
 * Size the memfd (sparse: pages exist only once touched). The kernel holds a
 * memfd to RLIMIT_FSIZE like any file, and raises SIGXFSZ: with the signal
 * blocked, a soft limit below our size is lifted for the one call and put
 * back, so the program keeps its limit and never sees the signal.
 */
static int size_shm(int fd)
{
    sigset_t xfsz, old;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, &old);
    int rc = ftruncate(fd, (off_t)SF_MEMFD_SIZE);
    struct rlimit rl;
    if (rc != 0 && errno == EFBIG && getrlimit(RLIMIT_FSIZE, &rl) == 0 &&
        rl.rlim_max == RLIM_INFINITY) {
        struct rlimit up = {RLIM_INFINITY, RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &up) == 0) {
            rc = ftruncate(fd, (off_t)SF_MEMFD_SIZE);
            setrlimit(RLIMIT_FSIZE, &rl);
        }
    }
    /* a SIGXFSZ the failed call left pending is ours: take it back */
    struct timespec zero = {0, 0};
    sigset_t pend;
    if (sigpending(&pend) == 0 && sigismember(&pend, SIGXFSZ) && !sigismember(&old, SIGXFSZ))
        sigtimedwait(&xfsz, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        sf_msg("the shared buffers need a file size limit (RLIMIT_FSIZE) above %llu bytes",
               (unsigned long long)SF_MEMFD_SIZE);
    return rc;
}

/* Create the shared memory of this process image and map its control block. */
int sf_shm_init(void)
{
    int fd = (int)syscall(SYS_memfd_create, "sftrace", 1u /* MFD_CLOEXEC */);
    if (fd < 0)
        return -1;
    fd = sf_fd_high(fd);
    if (size_shm(fd) != 0) {
        close(fd);
        return -1;
    }
    int old = sf_g.memfd;
    sf_g.memfd = fd;
    sf_g.memfd_ino = fd_ino(fd);
    struct sf_ctl *ctl = map_shared(0, SF_BUF_SIZE, sf_g.ctl);
    if (!ctl) {
        sf_g.memfd = old;
        close(fd);
        return -1;
    }
    sf_g.ctl = ctl;
    ctl->magic = SF_CTL_MAGIC;
    ctl->pid = (uint32_t)sf_g.pid;
    return 0;
}

void sf_buffers_init(void)
{
    discard_buf = sf_map(2 * SF_BUF_SIZE);
    if (discard_buf) /* aligned, so that "full" is seen at its end */
        discard_buf =
            (uint8_t *)(((uintptr_t)discard_buf + SF_BUF_SIZE - 1) & ~(uintptr_t)(SF_BUF_SIZE - 1));
    pthread_key_create(&exit_key, tsd_destructor);
}

/* Wake the helper if it sleeps: one byte on its pipe, if the descriptor is
 * still ours (a program may close it with a raw system call and reuse the
 * number for its own file). */
void sf_wake_helper(void)
{
    struct sf_ctl *ctl = sf_g.ctl;
    if (!ctl || !atomic_load(&ctl->helper_sleeping) || sf_g.wake_fd < 0)
        return;
    if (!sf_fd_is(sf_g.wake_fd, sf_g.wake_ino))
        return;
    char c = 0;
    /* EAGAIN: full of wake-ups already; EPIPE: the helper is gone (no
     * SIGPIPE: the program must not see it) */
    ssize_t n = send(sf_g.wake_fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
}

static struct sf_slot *slot_acquire(void)
{
    sf_helper_start_deferred(); /* helper.c: a forked child's first record */
    struct sf_ctl *ctl = sf_g.ctl;
    if (!ctl)
        return NULL;
    uint32_t n = atomic_load_explicit(&ctl->nslots, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        struct sf_slot *s = sf_g.blocks[i];
        uint32_t f = SLOT_FREE;
        if (s && atomic_load(&s->state) == SLOT_FREE &&
            atomic_compare_exchange_strong(&s->state, &f, SLOT_USED))
            return s;
    }
    if (!spin_trylock(&ctl->grow_lock, 10 * SF_SEC_NS))
        return NULL;
    struct sf_slot *s = NULL;
    n = atomic_load(&ctl->nslots);
    if (n < SF_MAX_SLOTS && sf_fd_is(sf_g.memfd, sf_g.memfd_ino))
        s = map_shared((size_t)SF_BLOCK * (1 + n), SF_BLOCK, NULL);
    if (s) {
        s->index = n;
        atomic_store(&s->state, SLOT_USED);
        sf_g.blocks[n] = s;
        atomic_store_explicit(&ctl->nslots, n + 1, memory_order_release);
    }
    spin_unlock(&ctl->grow_lock);
    return s;
}

static void point_at_discard(uint64_t now)
{
    sf_tls.pos = discard_buf;
    sf_tls.hi_not = ~(uint32_t)(now >> 32);
}

/* Make bufs[i] the owner's FILLING buffer. It must be FREE (and zero). */
static void start_buffer(struct sf_slot *s, uint32_t i, uint32_t from)
{
    struct sf_buf *b = &s->bufs[i];
    b->from = from;
    b->hi = ~sf_tls.hi_not;
    b->ext_words = 0;
    b->ext_taken = 0;
    atomic_store_explicit(&b->state, B_FILLING, memory_order_release);
    s->cur = i;
    sf_tls.pos = sf_slot_buf(s, i) + from;
}

/*
 * The first event of a process that shares our memory but is not us (a
 * vfork child, or a clone(CLONE_VM) child with a TLS of its own): it
 * records into a slot of ours under its own pid, and our helper writes it.
 * Its PROCESS chunk (ours, with its pid: it runs our program in our
 * memory) and our OBJECT chunks go first, through the mailbox, before it
 * has stored anything; its END comes when it ends (sf_sharer_end) or the
 * helper finds it gone.
 */
static void sharer_describe(uint32_t pid)
{
    if (!sf_g.proc_chunk || sf_g.proc_chunk_len < sizeof(struct sf_process))
        return;
    struct sf_process p;
    memcpy(&p, sf_g.proc_chunk, sizeof p);
    p.h.pid = pid;
    p.h.flags = SF_PROC_FORKED;
    p.ppid = (uint32_t)sf_g.pid;
    p.tsc = sf_now();
    p.mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : p.tsc;
    p.real_ns = sf_real_ns();
    sf_log_write(&p, sizeof p, sf_g.proc_chunk + sizeof p, sf_g.proc_chunk_len - sizeof p);
    sf_write_object_chunks_as(pid);
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
    /* The helper left it with every buffer FREE and zero, wnext and seq 0. */
    pid_t self = getpid();
    s->pid = self != sf_g.pid ? (uint32_t)self : 0;
    s->sh_events = s->sh_lost = 0;
    s->sh_how = s->sh_status = 0;
    if (s->pid)
        sharer_describe(s->pid); /* before it has any record */
    s->tid = (uint32_t)sf_gettid();
    prctl(PR_GET_NAME, s->name, 0, 0, 0);
    memset(s->written_name, 0, sizeof s->written_name);
    s->trig_depth = 0; /* ctl.c: none of a previous owner's calls */
    s->last_full_ns = 0;
    sf_tls.hi_not = ~(uint32_t)(now >> 32);
    start_buffer(s, 0, 0);
    sf_tls.slot = s;
    sf_tls.side = sf_side_stack(s);
    sf_tls.state = SF_T_ACTIVE;
    sf_tls.dtor_rounds = 0;
    sf_tls.ext_words = 0;
    if (s->pid)
        return; /* not one of our threads: its own END counts it */
    if (sf_g.exec_counted && s->tid == (uint32_t)sf_g.pid)
        sf_g.exec_counted = 0; /* the old image's END counted this task */
    else
        atomic_fetch_add(&sf_g.ctl->nthreads, 1);
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

/*
 * Is there a core for the helper to pack on? Handing buffers over only pays
 * when a core would otherwise idle: when as many threads fill buffers as
 * there are CPUs, packing elsewhere just moves the work and adds the cost of
 * moving 64 KiB between caches. A thread counts as busy if it filled a
 * buffer in the last 20 ms.
 */
static int spare_cpu(struct sf_slot *self)
{
    uint64_t now = sf_mono_ns();
    self->last_full_ns = now;
    uint32_t busy = 0, n = atomic_load(&sf_g.ctl->nslots);
    for (uint32_t i = 0; i < n; i++) {
        struct sf_slot *s = sf_g.blocks[i];
        if (s && atomic_load(&s->state) == SLOT_USED && now - s->last_full_ns < 20000000)
            busy++;
    }
    return busy < sf_g.ncpus;
}

/* Pack a FULL buffer into its packing area, if the helper has not taken it. */
static void pack_own(struct sf_slot *s, uint32_t i)
{
    struct sf_buf *b = &s->bufs[i];
    uint32_t st = B_FULL;
    if (!atomic_compare_exchange_strong(&b->state, &st, B_PACKING))
        return;
    uint8_t *out = sf_slot_packarea(s, i);
    size_t len = sf_pack(&s->pack, sf_slot_buf(s, i) + b->from, SF_BUF_SIZE - b->from, b->hi, out);
    uint32_t pad = (uint32_t)((8 - len % 8) % 8);
    memset(out + len, 0, pad);
    b->packed_len = (uint32_t)(len + pad);
    b->packed_pad = pad;
    b->packed_from = b->from;
    atomic_store_explicit(&b->state, B_PACKED, memory_order_release);
}

/* Wait until bufs[i] is free. If the helper is gone, drop what it holds. */
static void wait_free(struct sf_slot *s, uint32_t i)
{
    struct sf_buf *b = &s->bufs[i];
    if (atomic_load_explicit(&b->state, memory_order_acquire) == B_FREE)
        return;
    atomic_fetch_add(&sf_g.ctl->behind, 1);
    for (;;) {
        uint32_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        if (st == B_FREE)
            return;
        if (sf_g.helper_gone || !sf_helper_alive()) {
            /* Nobody will write it: count it lost and reuse it. */
            atomic_fetch_add(&sf_g.ctl->lost, (SF_BUF_SIZE - b->from) / 8);
            memset(sf_slot_buf(s, i), 0, SF_BUF_SIZE);
            atomic_store(&b->state, B_FREE);
            return;
        }
        atomic_store(&s->owner_waiting, 1);
        sf_g.ctl->helper_sleeping = 1; /* make sure the byte is sent */
        sf_wake_helper();
        struct timespec ts = {0, 20 * 1000 * 1000};
        if (atomic_load(&b->state) == st)
            futex(&b->state, FUTEX_WAIT, st, &ts);
        atomic_store(&s->owner_waiting, 0);
    }
}

/* The owner's buffer is full: hand it over and continue in the next one.
 * Signals are blocked. */
static void buffer_full(void)
{
    struct sf_slot *s = sf_tls.slot;
    uint32_t cur = s->cur;
    struct sf_buf *b = &s->bufs[cur];
    b->ext_words = sf_tls.ext_words;
    sf_tls.ext_words = 0;
    /* names set after the start are caught, each with the buffer it named */
    prctl(PR_GET_NAME, b->name, 0, 0, 0);
    memcpy(s->name, b->name, 16);
    atomic_store_explicit(&b->state, B_FULL, memory_order_release);
    if (!sf_g.raw && !atomic_load(&sf_g.ctl->final) && !(sf_g.use_helper_pack && spare_cpu(s)))
        pack_own(s, cur);
    /* A system call only when the helper sleeps, and then only once half
     * the ring waits: the records are safe in shared memory meanwhile, and
     * each wake-up costs both sides a few microseconds. */
    uint32_t waiting = 0;
    for (uint32_t i = 0; i < SF_NBUF; i++)
        waiting += atomic_load_explicit(&s->bufs[i].state, memory_order_relaxed) >= B_FULL;
    if (waiting >= SF_NBUF / 2)
        sf_wake_helper();
    uint32_t next = (cur + 1) % SF_NBUF;
    wait_free(s, next);
    start_buffer(s, next, 0);
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
        if (sf_tls.pos == sf_slot_buf(s, s->cur) + SF_BUF_SIZE)
            buffer_full();
    } else if (sf_tls.state != SF_T_NEW) {
        point_at_discard(sf_now());
    }
    sf_tls.in_slow = 0;
}

/* Make room for `need` bytes of records in the current buffer: if they do
 * not fit, pad it out with PAD records and move to the next one. */
static uint32_t *reserve(size_t need)
{
    struct sf_slot *s = sf_tls.slot;
    uint8_t *end = sf_slot_buf(s, s->cur) + SF_BUF_SIZE;
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

/* regs: the registers the trampoline saved; arch.h says where each is. */
static const int r_args[6] = SF_R_ARGS;
enum { R_RET = SF_R_RET };

/* Called by the trampoline with signals blocked (so that no handler runs on
 * the side stack), on the side stack once the thread has a slot. */
void sf_slow_event(uint32_t w1, int mode, const uint64_t *regs)
{
    if (sf_tls.in_slow) {
        /* Re-entered from something the slow path itself called. */
        if (sf_g.ctl)
            atomic_fetch_add(&sf_g.ctl->lost, 1);
        return;
    }
    sf_tls.in_slow = 1;
    if (mode & SF_SLOW_TRIG)
        mode = sf_ctl_trigger(w1, mode); /* live control: may start recording */
    uint64_t now = sf_now();
    if (sf_tls.state == SF_T_NEW)
        thread_start(now, 0);
    /* Descendants mode (the fast trampolines do the same, trampoline.S):
     * sp is the sled's return-address slot; the thread is inside the scope
     * while sp is at or below the scope's slot. */
    uintptr_t sp = SF_SLED_SP(regs, sf_w1_kind(w1) == SF_KIND_EXIT);
    int inside = sf_tls.scope && sp <= sf_tls.scope;
    if (mode & SF_SLOW_KEY) { /* follow.c: a job made inside the scope opens it here */
        uint64_t a[6];
        for (int i = 0; i < 6; i++)
            a[i] = regs[r_args[i]];
        if (sf_follow_event(sf_w1_fid(w1), inside, a, regs[R_RET],
                            sf_w1_kind(w1) == SF_KIND_EXIT) &&
            !inside) {
            sf_tls.scope = sp;
            inside = 1;
        }
    }
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
                uint64_t a[6];
                for (int i = 0; i < 6; i++)
                    a[i] = regs[r_args[i]];
                memcpy(p, a, sizeof a);
                p += 12;
            }
            if (mode & SF_SLOW_RET) {
                p = put_record(p, now, sf_w1_ext(SF_EXT_RET, 1, 1));
                memcpy(p, &regs[R_RET], 8);
                p += 2;
            }
            sf_tls.pos = (uint8_t *)p;
        }
        if (sf_tls.pos >= sf_slot_buf(s, s->cur) + SF_BUF_SIZE)
            buffer_full();
    }
    if ((mode & SF_SLOW_LEAVE) && sp >= sf_tls.scope)
        sf_tls.scope = 0; /* the scope's frame returns (or is gone) */
    if (mode & SF_SLOW_TRIG)
        sf_ctl_trigger_after(w1); /* live control: may stop recording */
    sf_tls.in_slow = 0;
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
        if (sf_tls.pos >= sf_slot_buf(s, s->cur) + SF_BUF_SIZE)
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
            sf_tls.pos >= sf_slot_buf(sf_tls.slot, sf_tls.slot->cur) + SF_BUF_SIZE) {
            sf_tls.in_slow = 1;
            buffer_full();
            sf_tls.in_slow = 0;
        } else if (sf_tls.state != SF_T_ACTIVE && !sf_tls.in_slow) {
            point_at_discard(sf_now());
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
}

/* The request itself; the caller holds req_lock. */
static int sf_request_locked(uint32_t kind, uint32_t reason)
{
    struct sf_ctl *ctl = sf_g.ctl;
    ctl->req_kind = kind;
    ctl->end_reason = reason;
    if (kind == REQ_END)
        atomic_store(&ctl->final, 1);
    uint32_t seq = atomic_fetch_add(&ctl->req_seq, 1) + 1;
    ctl->helper_sleeping = 1; /* send the byte even if it is about to look */
    sf_wake_helper();
    uint64_t t0 = sf_mono_ns();
    for (int i = 0;; i++) {
        uint32_t a = atomic_load_explicit(&ctl->ack_seq, memory_order_acquire);
        if (a == seq)
            return 0;
        if (!sf_helper_alive()) {
            sf_g.helper_gone = 1;
            /* it may have answered, then gone (a detach ends it) */
            return atomic_load(&ctl->ack_seq) == seq ? 0 : -1;
        }
        if (i > 0 && i % 50 == 0) { /* a lost wake-up must not cost a second */
            sf_wake_helper();
            if (sf_mono_ns() - t0 > SF_REQ_WAIT_NS) {
                /* alive but not answering (stopped, or stuck): a wait
                 * without bound would hang the caller (a detach, a dlopen).
                 * It is taken for gone: nothing more is asked of it. */
                sf_g.helper_gone = 1;
                sf_ctl_note("the helper (pid %d) did not answer request %s (number %u; it "
                            "answered up to %u) within %d s; the recording ends without it",
                            (int)sf_g.helper_pid, sf_req_name(kind), seq,
                            atomic_load(&ctl->ack_seq), (int)(SF_REQ_WAIT_NS / 1000000000));
                return -1;
            }
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        futex(&ctl->ack_seq, FUTEX_WAIT, a, &ts);
    }
}
/*
 * Ask the helper for something and wait until it is done. Returns 0, or -1
 * if there is no helper (or it did not answer). Usable from a signal
 * handler: the lock is only tried, never waited for without bound.
 */
int sf_request(uint32_t kind, uint32_t reason)
{
    struct sf_ctl *ctl = sf_g.ctl;
    if (!ctl || sf_g.helper_gone || getpid() != sf_g.pid)
        return -1;
    sigset_t old;
    block_signals(&old);
    int rc = -1;
    if (spin_trylock(&req_lock, 6 * SF_SEC_NS)) {
        rc = sf_request_locked(kind, reason);
        spin_unlock(&req_lock);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Append one chunk (a and b are its two parts) through the mailbox. */
int sf_log_write(const void *a, size_t alen, const void *b, size_t blen)
{
    if (sf_in_helper)
        return sf_helper_write(a, alen, b, blen);
    sf_helper_start_deferred(); /* helper.c: a forked child's first chunk */
    if (!sf_g.ctl || alen + blen > SF_MBOX_MAX)
        return -1;
    sigset_t old;
    block_signals(&old);
    int rc = -1;
    if (spin_trylock(&req_lock, 6 * SF_SEC_NS)) {
        if (!sf_g.mbox && sf_fd_is(sf_g.memfd, sf_g.memfd_ino)) {
            void *p = mmap(NULL, SF_MBOX_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, sf_g.memfd,
                           (off_t)SF_MBOX_OFF);
            sf_g.mbox = p == MAP_FAILED ? NULL : p;
        }
        if (sf_g.mbox) {
            memcpy(sf_g.mbox, a, alen);
            if (blen)
                memcpy(sf_g.mbox + alen, b, blen);
            sf_g.ctl->mbox_len = alen + blen;
            rc = sf_request_locked(REQ_CHUNK, 0);
        }
        spin_unlock(&req_lock);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ---- processes sharing our memory ------------------------------------------- */

int sf_sharer_active(void)
{
    struct sf_slot *s = sf_tls.slot;
    return sf_tls.state == SF_T_ACTIVE && s && s->pid && s->pid == (uint32_t)getpid();
}

/* The calling process shares our memory and ends (exit, exec, a fatal
 * signal): have the helper write its records and its END now, so that an
 * exec'd image's PROCESS chunk comes after them. Later events (a failed
 * exec) are discarded. */
void sf_sharer_end(uint32_t reason)
{
    sigset_t old;
    block_signals(&old);
    struct sf_slot *s = sf_tls.slot;
    if (sf_g.ctl && !sf_tls.in_slow && sf_sharer_active()) {
        prctl(PR_GET_NAME, s->name, 0, 0, 0);
        sf_tls.state = SF_T_EXITED;
        point_at_discard(sf_now());
        sf_tls.slot = NULL;
        if (!sf_g.helper_gone && spin_trylock(&req_lock, 6 * SF_SEC_NS)) {
            sf_g.ctl->req_slot = s->index;
            sf_request_locked(REQ_SHARER_END, reason);
            spin_unlock(&req_lock);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * vfork (arch/ARCH/vfork.S). The child runs in our memory with our TLS
 * while the parent's thread waits until the child execs or exits: keep the
 * thread's state for the parent and start afresh, so that the child's first
 * event takes a slot of its own under its pid. (Under qemu-user vfork is a
 * fork: the child's memory is a copy, but the buffers are shared memory,
 * and the same applies.)
 */
/* The parent threads' saved states, keyed by the address of the thread's
 * sf_tls (the same for the parent's thread and its vfork child, unique
 * among live threads). Not in TLS: glibc takes static TLS out of every
 * thread's stack, and a PTHREAD_STACK_MIN thread must keep what it has
 * untraced. With more vforks in flight than entries, a child records as
 * before this existed: into its parent thread's buffers. */
#define VFORK_MAX 64
static struct {
    _Atomic uintptr_t key;
    struct sf_tls saved;
} vfork_saved[VFORK_MAX];

void sf_vfork_child(void)
{
    if (!sf_g.enabled || sf_tls.in_slow)
        return;
    uintptr_t key = (uintptr_t)&sf_tls;
    for (int i = 0; i < VFORK_MAX; i++) {
        uintptr_t z = 0;
        if (atomic_compare_exchange_strong(&vfork_saved[i].key, &z, key)) {
            vfork_saved[i].saved = sf_tls;
            memset(&sf_tls, 0, sizeof sf_tls);
            return;
        }
    }
}

void sf_vfork_parent(void)
{
    uintptr_t key = (uintptr_t)&sf_tls;
    int i = 0;
    while (i < VFORK_MAX && atomic_load(&vfork_saved[i].key) != key)
        i++;
    if (i == VFORK_MAX)
        return;
    int child_recorded = sf_tls.state != SF_T_NEW; /* the child's state, before ours is back */
    sf_tls = vfork_saved[i].saved;
    atomic_store(&vfork_saved[i].key, 0);
    /* the child has exec'd or exited: the helper ends its recording if
     * the child's runtime could not (a raw exit, a death); a child that
     * recorded nothing (a shell's, make's) has nothing to end */
    if (sf_g.ctl && child_recorded) {
        sf_g.ctl->helper_sleeping = 1;
        sf_wake_helper();
    }
}

/* Note how the process is ending, for END (exit, _exit, a fatal signal). */
void sf_note_status(int how, int status)
{
    if (!sf_g.ctl)
        return;
    if (getpid() != sf_g.pid) { /* a process sharing our memory: its own END */
        if (sf_sharer_active()) {
            atomic_store(&sf_tls.slot->sh_status, status);
            atomic_store(&sf_tls.slot->sh_how, how);
        }
        return;
    }
    atomic_store(&sf_g.ctl->status, status);
    atomic_store(&sf_g.ctl->status_how, how);
}

void sf_flush_all(int final)
{
    (void) final;
    if (sf_tls.state == SF_T_ACTIVE && sf_tls.slot)
        prctl(PR_GET_NAME, sf_tls.slot->name, 0, 0, 0);
    sf_request(REQ_FLUSH, 0);
}

void sf_flush_self(void)
{
    sf_flush_all(0);
}

/*
 * Thread exit. glibc runs TSD destructors in up to four rounds while values
 * are set again; we set ours again so that instrumented code run by other
 * destructors is still recorded, and hand the slot to the helper in the last
 * round: it writes what is left, the THREAD chunk, and frees the slot.
 */
static void tsd_destructor(void *v)
{
    (void)v;
    sigset_t old;
    block_signals(&old);
    struct sf_slot *s = sf_tls.slot;
    if (sf_tls.state == SF_T_ACTIVE && s && !sf_tls.in_slow) {
        if (++sf_tls.dtor_rounds < 4) {
            pthread_setspecific(exit_key, &sf_tls);
        } else {
            prctl(PR_GET_NAME, s->name, 0, 0, 0);
            sf_tls.state = SF_T_EXITED;
            point_at_discard(sf_now());
            sf_tls.slot = NULL;
            sf_tls.side = 0; /* the slot's next owner will run on it */
            atomic_store_explicit(&s->state, SLOT_EXITED, memory_order_release);
            sf_g.ctl->helper_sleeping = 1;
            sf_wake_helper();
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * In a forked child: only the calling thread exists, and the shared memory
 * is still the parent's. Map a fresh memfd over the same addresses (so every
 * pointer stays valid) and keep filling the current buffer from where the
 * parent was: the records before that point are the parent's to write.
 */
int sf_shm_after_fork(void)
{
    struct sf_slot *self = sf_tls.state == SF_T_ACTIVE ? sf_tls.slot : NULL;
    uint32_t cur = self ? self->cur : 0, idx = self ? self->index : 0;
    uint32_t pos_off = self ? (uint32_t)(sf_tls.pos - sf_slot_buf(self, cur)) : 0;
    uint32_t nslots = sf_g.ctl ? atomic_load(&sf_g.ctl->nslots) : 0;
    int oldfd = sf_g.memfd;
    atomic_store(&req_lock, 0);
    sf_spare_busy = 0; /* a thread that no longer exists may have held it */
    if (sf_shm_init() != 0) {
        sf_g.ctl = NULL;
        return -1;
    }
    if (oldfd >= 0 && oldfd != sf_g.memfd)
        close(oldfd);
    for (uint32_t i = 0; i < nslots; i++) {
        if (!map_shared((size_t)SF_BLOCK * (1 + i), SF_BLOCK, sf_g.blocks[i]))
            return -1;
        sf_g.blocks[i]->index = i;
    }
    if (sf_g.mbox && !map_shared(SF_MBOX_OFF, SF_MBOX_MAX, sf_g.mbox))
        sf_g.mbox = NULL;
    atomic_store(&sf_g.ctl->nslots, nslots);
    sf_tls.ext_words = 0;
    if (self && pos_off <= SF_BUF_SIZE) {
        self->index = idx;
        atomic_store(&self->state, SLOT_USED);
        self->tid = (uint32_t)sf_gettid();
        prctl(PR_GET_NAME, self->name, 0, 0, 0);
        self->wnext = cur;
        if (pos_off == SF_BUF_SIZE) { /* about to be found full: start afresh */
            start_buffer(self, cur, 0);
        } else {
            start_buffer(self, cur, pos_off);
        }
        atomic_store(&sf_g.ctl->nthreads, 1);
    }
    return 0;
}

/* The helper writes a forked child's PROCESS and OBJECT chunks before the
 * first chunk it appends for the child (helper.c), OBJECT chunks included:
 * nothing to do here. */
void sf_ensure_process_chunk(void) {}
