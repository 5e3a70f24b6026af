/*
 * helper.c - the helper process: the one writer of a process image's log
 * chunks, from the buffers the image shares with it (docs/design.md).
 *
 * The runtime starts it with a double clone (exit signal 0, so the program
 * gets no SIGCHLD and waitpid(-1) never sees it), after which it runs on
 * its own: own session (terminal and process-group signals miss it), every
 * signal blocked (SIGXFSZ too: a log over RLIMIT_FSIZE is a failed write,
 * not a death), every descriptor closed but the log, the memfd, its two
 * pipes and stderr. It runs only code of this library: it is a copy of the
 * traced process, so it must not touch the program's locks (no malloc, no
 * stdio, no pthread calls).
 *
 * It appends full buffers as EVENTS chunks, the chunks the runtime puts in
 * the mailbox, and THREAD chunks; on a request at exit it writes everything
 * and END; when the process dies or execs without that (a pidfd, and EOF on
 * the wake-up socket), it writes every record the threads had stored, and an END
 * saying how the process ended. Write failures (ENOSPC, EFBIG, EIO) are
 * reported once; from then on buffers are freed unwritten, so the program
 * runs on unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logfile.h"
#include "runtime.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Linux 6.15's PIDFD_GET_INFO (not in older headers): a pidfd tells the
 * exit status of its process even after the parent reaped it. */
struct sf_pidfd_info {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define SF_PIDFD_GET_INFO _IOWR(0xFF, 11, struct sf_pidfd_info)
#define SF_PIDFD_INFO_EXIT (1ull << 3)

int sf_in_helper;

static int log_fd = -1, wake_r = -1, alive_w = -1, pidfd = -1;
/* The start-up without waits (sf_helper_start): the middle process, reaped
 * at the end of start-up (sf_helper_reap); a pidfd of the traced process
 * opened by itself, which the helper inherits; an image started by sf_init
 * writes its own PROCESS chunk and, if it recorded nothing, its own END
 * (self_write, ctl->self_state), so neither its start nor its exit waits
 * for the helper. */
static pid_t mid_pid;
static int self_pidfd = -1, self_write;
static uint64_t self_log_ino, self_log_dev; /* the log, opened again for our END */
static _Atomic int deferred;                /* a forked child whose helper starts when needed */
#define SF_SELF_PROC_WRITING 1u
#define SF_SELF_PROC_DONE 2u
#define SF_SELF_END_WRITING 4u
#define SF_SELF_END_DONE 8u
#define SF_SELF_HELPER_END 16u /* the helper writes END */
static struct sf_slot *hblocks[SF_MAX_SLOTS];
static uint32_t hmapped;
static uint8_t *packout, *mbox;
static struct sf_pack_state hpack;
static int ended, write_failed, process_written;
static int owners_pack; /* the last buffer came packed: no core is spare */
static uint64_t failed_records;

/* The pid a slot's records are logged under: ours, or that of the process
 * sharing our memory that owns it (a vfork child). */
static uint32_t slot_pid(const struct sf_slot *s)
{
    return s->pid ? s->pid : (uint32_t)sf_g.pid;
}

int sf_fd_is(int fd, uint64_t ino)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino;
}

/* Is fd one of the runtime's own descriptors (by number and by file)? */
int sf_is_our_fd(int fd)
{
    if (!sf_g.enabled || fd < 0)
        return 0;
    return (fd == sf_g.wake_fd && sf_fd_is(fd, sf_g.wake_ino)) ||
           (fd == sf_g.alive_fd && sf_fd_is(fd, sf_g.alive_ino)) ||
           (fd == sf_g.memfd && sf_fd_is(fd, sf_g.memfd_ino));
}

/* From the traced process: is its helper still there? */
int sf_helper_alive(void)
{
    if (sf_g.helper_gone)
        return 0;
    if (sf_fd_is(sf_g.alive_fd, sf_g.alive_ino)) {
        struct pollfd p = {sf_g.alive_fd, POLLIN, 0};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) {
            sf_g.helper_gone = 1;
            return 0;
        }
        return 1;
    }
    pid_t hp = sf_helper_pid();
    return hp > 0 && kill(hp, 0) == 0;
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

/* ---- writing ------------------------------------------------------------- */

static const char *errname(int e)
{
    switch (e) {
    case ENOSPC:
        return "no space left on the device";
    case EFBIG:
        return "the file size limit (RLIMIT_FSIZE) was reached";
    case EIO:
        return "input/output error";
    case EDQUOT:
        return "disk quota exceeded";
    default:
        return strerror(e);
    }
}

static int failed_errno;

/* Stop writing: the message comes once, at the end, with what is missing. */
static void report_failure(int e)
{
    if (write_failed)
        return;
    write_failed = 1;
    failed_errno = e;
    atomic_store(&sf_g.ctl->write_failed, 1);
}

/* Append one chunk in one writev. A short write (the disk filled up) is cut
 * back off the file when nothing was appended after it, so the log stays
 * readable up to its last whole chunk. */
/*
 * Appends to the log of a session exclude an image's own write of its
 * PROCESS or END (sf_helper_start, sf_helper_self_end): those hold flock's
 * exclusive lock, helpers a shared one around each chunk. A write of the
 * kernel's can be cut short by SIGKILL at a page boundary; the image's
 * helper then finds the piece at the end of the log, with nothing after it,
 * and appends the rest (self_finish). (The END's descriptor is the image's
 * own, opened at exit: its lock goes with the image, so there another
 * writer may come first; self_finish then adds nothing.) The wait is bounded: a process stopped
 * (SIGSTOP) inside its write must not stop every other process's helper;
 * where the file system has no flock, nobody locks.
 */
static int no_flock;
static int lock_shared(void)
{
    if (no_flock)
        return 0;
    for (int i = 0; i < 2100; i++) { /* 5 ms, then 2 s: a killed image's helper finishes it */
        if (flock(log_fd, LOCK_SH | LOCK_NB) == 0)
            return 1;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            no_flock = 1;
            return 0;
        }
        struct timespec ts = {0, i < 100 ? 50000 : 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int writev_locked(int fd, const struct iovec *iov, int n)
{
    int locked = lock_shared();
    int rc = (int)writev(fd, iov, n);
    int e = errno;
    if (locked)
        flock(fd, LOCK_UN);
    errno = e;
    return rc;
}

int sf_helper_write(const void *a, size_t alen, const void *b, size_t blen)
{
    if (sf_ring_take(a, alen, b, blen))
        return 0; /* flight recorder: kept in the ring, no I/O (ring.c) */
    if (write_failed || log_fd < 0)
        return -1;
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    size_t total = alen + blen;
    for (;;) {
        ssize_t n = writev_locked(log_fd, iov, blen ? 2 : 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == (ssize_t)total)
            return 0;
        int e = n < 0 ? errno : 0;
        if (n > 0) {
            /* finish it to learn why it stopped, then cut it off again */
            size_t done = (size_t)n;
            while (done < total) {
                const char *src =
                    done < alen ? (const char *)a + done : (const char *)b + (done - alen);
                size_t len = done < alen ? alen - done : total - done;
                ssize_t m = write(log_fd, src, len);
                if (m < 0 && errno == EINTR)
                    continue;
                if (m <= 0) {
                    e = m < 0 ? errno : ENOSPC;
                    break;
                }
                done += (size_t)m;
            }
            if (done == total)
                return 0;
            off_t end = lseek(log_fd, 0, SEEK_CUR);
            struct stat st;
            if (end > 0 && fstat(log_fd, &st) == 0 && st.st_size == end &&
                ftruncate(log_fd, end - (off_t)done) != 0)
                e = errno;
        }
        report_failure(e);
        return -1;
    }
}

/* tsc: when the name took effect, or the thread ended; never later than a
 * record of the thread that follows the chunk in the log (a reader keeps
 * each thread's times in order, and would move those records). */
static void write_thread_chunk(struct sf_slot *s, const char *name, uint32_t flags, uint64_t tsc)
{
    struct sf_thread t;
    memset(&t, 0, sizeof t);
    t.h.magic = SF_CHUNK_MAGIC;
    t.h.type = SF_CHUNK_THREAD;
    t.h.flags = (uint16_t)flags;
    t.h.size = sizeof t;
    t.h.pid = slot_pid(s);
    t.tid = s->tid;
    t.tsc = tsc;
    memcpy(t.name, name, 15);
    sf_helper_write(&t, sizeof t, NULL, 0);
    memcpy(s->written_name, name, 16);
}

/* A forked child's PROCESS and OBJECT chunks go out before its first
 * record, and not at all if it records nothing. */
/* Is this image's PROCESS chunk in the log (written by us, or by the image)? */
static int proc_written(void)
{
    if (!process_written && self_write && (atomic_load(&sf_g.ctl->self_state) & SF_SELF_PROC_DONE))
        process_written = 1;
    return process_written;
}

static void ensure_process_chunk(void)
{
    if (process_written)
        return;
    process_written = 1;
    if (self_write && (atomic_load(&sf_g.ctl->self_state) & SF_SELF_PROC_WRITING))
        return; /* the image wrote it (salvage finished it if its death cut it short) */
    if (sf_g.proc_chunk)
        sf_helper_write(sf_g.proc_chunk, sf_g.proc_chunk_len, NULL, 0);
    sf_rewrite_object_chunks();
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

/* Where the stored records of a FILLING buffer end: at the first record
 * whose second word is zero (function ids start at 1, buffers are zero when
 * handed out). live: the owner may still be storing; a trailing extended
 * record may lack its payload, so it waits for the next flush. */
static uint32_t stored_end(const uint8_t *mem, uint32_t from, int live)
{
    uint32_t p = from, last_ext = UINT32_MAX;
    while (p + 8 <= SF_BUF_SIZE) {
        uint32_t w1 = __atomic_load_n((const uint32_t *)(mem + p + 4), __ATOMIC_ACQUIRE);
        if (w1 == 0)
            break;
        uint32_t len = 8;
        if (sf_w1_kind(w1) == SF_KIND_EXT) {
            len += 8 * sf_w1_nwords(w1);
            if (p + len > SF_BUF_SIZE)
                break;
            last_ext = p;
        } else {
            last_ext = UINT32_MAX;
        }
        p += len;
    }
    if (live && last_ext != UINT32_MAX && p < SF_BUF_SIZE)
        p = last_ext;
    return p;
}

static void events_header(struct sf_events *h, struct sf_slot *s, uint32_t hi, size_t len,
                          int packed, uint32_t pad)
{
    memset(h, 0, sizeof *h);
    h->h.magic = SF_CHUNK_MAGIC;
    h->h.type = SF_CHUNK_EVENTS;
    h->h.flags = packed ? SF_PACK_FLAGS : 0;
    h->h.size = (uint32_t)(sizeof *h + len);
    h->h.pid = slot_pid(s);
    h->tid = s->tid;
    h->seq = s->seq++;
    h->tsc_hi = hi;
    h->pad = pad;
    h->flush_tsc = sf_now();
    h->flush_mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : h->flush_tsc;
}

static void count(struct sf_slot *s, uint64_t nrec, uint32_t ext, int ok)
{
    uint64_t ev = nrec > ext ? nrec - ext : 0;
    if (!ok)
        failed_records += nrec;
    if (s->pid) /* its own END counts them */
        *(ok ? &s->sh_events : &s->sh_lost) += ok ? ev : nrec;
    else if (ok)
        atomic_fetch_add(&sf_g.ctl->events, ev);
    else
        atomic_fetch_add(&sf_g.ctl->lost, nrec);
}

/* The time of the first function record in [from, to) (hi: the high half
 * in force at from), else dflt. */
static uint64_t first_time(const uint8_t *from, const uint8_t *to, uint32_t hi, uint64_t dflt)
{
    while (from + 8 <= to) {
        uint32_t w0, w1;
        memcpy(&w0, from, 4);
        memcpy(&w1, from + 4, 4);
        if (sf_w1_kind(w1) != SF_KIND_EXT)
            return (uint64_t)hi << 32 | w0;
        if (sf_w1_sub(w1) == SF_EXT_TSC_HI)
            hi = w0;
        from += 8 + 8 * (size_t)sf_w1_nwords(w1);
    }
    return dflt;
}

/* Before s's next records: a THREAD chunk if its name changed, dated
 * `when`. Before a chunk that is the chunk's first record (the owner notes
 * the name once per buffer, so that is as early as the change is known). */
static void name_check(struct sf_slot *s, const char *src, uint64_t when)
{
    char name[16];
    memcpy(name, src, 16);
    name[15] = 0;
    if (memcmp(name, s->written_name, 16) != 0)
        write_thread_chunk(s, name, 0, when);
}

/* Write records [b->from, end) of s as one EVENTS chunk. */
static void write_raw(struct sf_slot *s, struct sf_buf *b, uint8_t *mem, uint32_t end, uint32_t ext,
                      int full)
{
    if (end <= b->from)
        return;
    uint64_t nrec = (end - b->from) / 8;
    if (write_failed) {
        count(s, nrec, ext, 0);
        b->from = end;
        return;
    }
    ensure_process_chunk();
    name_check(s, full && b->name[0] ? b->name : s->name,
               first_time(mem + b->from, mem + end, b->hi, sf_now()));
    struct sf_events h;
    const uint8_t *data = mem + b->from;
    size_t len = end - b->from;
    uint32_t pad = 0;
    int packed = !sf_g.raw;
    if (packed) {
        len = sf_pack(&hpack, data, len, b->hi, packout);
        pad = (uint32_t)((8 - len % 8) % 8);
        memset(packout + len, 0, pad);
        len += pad;
        data = packout;
    }
    events_header(&h, s, b->hi, len, packed, pad);
    count(s, nrec, ext, sf_helper_write(&h, sizeof h, data, len) == 0);
    b->from = end;
}

static void write_packed(struct sf_slot *s, struct sf_buf *b, uint32_t i)
{
    uint64_t nrec = (SF_BUF_SIZE - b->packed_from) / 8;
    uint32_t ext = b->ext_words - b->ext_taken;
    if (write_failed) {
        count(s, nrec, ext, 0);
        return;
    }
    ensure_process_chunk();
    const uint8_t *mem = sf_slot_buf(s, i); /* the owner packed a copy */
    name_check(s, b->name[0] ? b->name : s->name,
               first_time(mem + b->packed_from, mem + SF_BUF_SIZE, b->hi, sf_now()));
    struct sf_events h;
    events_header(&h, s, b->hi, b->packed_len, 1, b->packed_pad);
    count(s, nrec, ext, sf_helper_write(&h, sizeof h, sf_slot_packarea(s, i), b->packed_len) == 0);
}

static void free_buf(struct sf_slot *s, uint32_t i, uint32_t used)
{
    struct sf_buf *b = &s->bufs[i];
    memset(sf_slot_buf(s, i), 0, used);
    b->from = 0;
    b->ext_taken = 0;
    b->name[0] = 0;
    atomic_store_explicit(&b->state, B_FREE, memory_order_release);
    if (atomic_load(&s->owner_waiting))
        futex_wake(&b->state);
}

static void end_chunk(struct sf_end *e, uint32_t pid, uint32_t reason, uint32_t how,
                      uint32_t status)
{
    memset(e, 0, sizeof *e);
    e->h.magic = SF_CHUNK_MAGIC;
    e->h.type = SF_CHUNK_END;
    e->h.size = sizeof *e;
    e->h.pid = pid;
    e->tsc = sf_now();
    e->mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : e->tsc;
    e->reason = reason;
    e->status_how = how;
    e->status = status;
}

/* The END of a process sharing our memory, after its THREAD chunk. */
static void write_sharer_end(struct sf_slot *s)
{
    struct sf_end e;
    end_chunk(&e, s->pid, s->sh_reason ? s->sh_reason : SF_END_DIED,
              (uint32_t)atomic_load(&s->sh_how), (uint32_t)atomic_load(&s->sh_status));
    e.events = s->sh_events;
    e.lost = s->sh_lost;
    e.threads = 1;
    sf_helper_write(&e, sizeof e, NULL, 0);
}

enum { M_NORMAL, M_LIVE, M_DEAD, M_DISCARD };

/* Write what slot s holds, in ring order. M_NORMAL: full buffers; M_LIVE:
 * also what the owner has stored so far; M_DEAD: everything, the owner is
 * gone; M_DISCARD: free full buffers unwritten (after END). */
static int process_slot(struct sf_slot *s, int mode)
{
    uint32_t sst = atomic_load_explicit(&s->state, memory_order_acquire);
    if (sst == SLOT_FREE)
        return 0;
    int exited = sst == SLOT_EXITED, n = 0;
    if (exited && mode == M_NORMAL)
        mode = M_DEAD;
    uint32_t filling_end = 0, filling = UINT32_MAX;
    for (uint32_t k = 0; k < SF_NBUF; k++) {
        uint32_t i = s->wnext;
        struct sf_buf *b = &s->bufs[i];
        uint8_t *mem = sf_slot_buf(s, i);
        uint32_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        /* M_LIVE (a flush, END): an owner packing its own buffer finishes in
         * microseconds (it runs with signals blocked); wait for it, or END
         * would be written without this buffer and everything after it (seen
         * as a lost buffer of a thread when another thread took SIGTERM) */
        for (int w = 0; st == B_PACKING && mode == M_LIVE && w < 2000; w++) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
            st = atomic_load_explicit(&b->state, memory_order_acquire);
        }
        if (st == B_FULL || (mode == M_DEAD && (st == B_PACKING || st == B_WRITING))) {
            if (st == B_FULL && !atomic_compare_exchange_strong(&b->state, &st, B_WRITING)) {
                k--;
                continue;
            }
            owners_pack = 0;
            if (mode == M_DISCARD)
                b->from = SF_BUF_SIZE;
            write_raw(s, b, mem, SF_BUF_SIZE, b->ext_words - b->ext_taken, 1);
        } else if (st == B_PACKED) {
            owners_pack = 1;
            if (mode != M_DISCARD)
                write_packed(s, b, i);
        } else {
            if (st == B_FILLING && (mode == M_LIVE || mode == M_DEAD)) {
                uint32_t end = stored_end(mem, b->from, mode == M_LIVE), ext;
                uint32_t hi = scan_records(mem + b->from, mem + end, b->hi, &ext);
                write_raw(s, b, mem, end, ext, 0);
                b->hi = hi;
                b->ext_taken += ext;
                filling = i;
                filling_end = end;
            } else if (st == B_FILLING && mode == M_DISCARD) {
                filling = i;
                filling_end = stored_end(mem, 0, 0);
                b->from = filling_end;
            }
            break;
        }
        free_buf(s, i, SF_BUF_SIZE);
        s->wnext = (i + 1) % SF_NBUF;
        n++;
    }
    if (exited) {
        /* The owner is gone: its slot goes back, clean, for the next thread. */
        if (mode != M_DISCARD && !write_failed && proc_written()) {
            char name[16];
            memcpy(name, s->name, 16);
            name[15] = 0;
            /* (a process sharing our memory described itself through the
             * mailbox: its PROCESS chunk is there even if ours is not) */
            if (s->seq || !s->pid)
                write_thread_chunk(s, name, SF_THREAD_EXITED, sf_now());
        }
        if (s->pid && mode != M_DISCARD && !write_failed)
            write_sharer_end(s);
        s->pid = 0;
        s->sh_reason = 0;
        s->sh_events = s->sh_lost = 0;
        for (uint32_t i = 0; i < SF_NBUF; i++)
            if (atomic_load(&s->bufs[i].state) != B_FREE || i == filling)
                free_buf(s, i, i == filling ? filling_end : SF_BUF_SIZE);
        s->wnext = 0;
        s->seq = 0;
        atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
    }
    return n;
}

static void map_new_blocks(void)
{
    uint32_t n = atomic_load_explicit(&sf_g.ctl->nslots, memory_order_acquire);
    while (hmapped < n) {
        void *p = mmap(NULL, SF_BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, sf_g.memfd,
                       (off_t)((size_t)SF_BLOCK * (1 + hmapped)));
        if (p == MAP_FAILED)
            return;
        hblocks[hmapped++] = p;
    }
}

static int process_all(int mode)
{
    map_new_blocks();
    int n = 0;
    for (uint32_t i = 0; i < hmapped; i++)
        n += process_slot(hblocks[i], ended ? M_DISCARD : mode);
    return n;
}

/* Read the name a running thread has now (the owner copies it at every full
 * buffer; this catches a later change). */
static void refresh_names(void)
{
    map_new_blocks(); /* threads that started since the last look */
    for (uint32_t i = 0; i < hmapped; i++) {
        struct sf_slot *s = hblocks[i];
        if (atomic_load(&s->state) != SLOT_USED)
            continue;
        char path[64], name[17] = {0};
        snprintf(path, sizeof path, "/proc/%d/task/%u/comm", (int)slot_pid(s), s->tid);
        ssize_t n = sf_read_file(path, name, 16);
        if (n <= 0)
            continue;
        if (name[n - 1] == '\n')
            name[n - 1] = 0;
        memset(s->name, 0, 16);
        memcpy(s->name, name, 15);
    }
}

static void write_end(uint32_t reason, uint32_t how, uint32_t status)
{
    struct sf_ctl *ctl = sf_g.ctl;
    sf_ring_final(reason); /* flight recorder: the last snapshot (ring.c) */
    ended = 1;
    atomic_store(&ctl->ended, 1);
    if (sf_g.proc_chunk_lazy && !process_written && atomic_load(&ctl->events) == 0 &&
        atomic_load(&ctl->lost) == 0)
        return; /* a forked child that recorded nothing: nothing at all */
    if (self_write)
        for (;;) { /* the image may have written its END itself */
            uint32_t st = atomic_load(&ctl->self_state);
            if (st & (SF_SELF_END_DONE | SF_SELF_END_WRITING))
                return; /* (salvage finished a write its death cut short) */
            if (atomic_compare_exchange_weak(&ctl->self_state, &st, st | SF_SELF_HELPER_END))
                break;
        }
    ensure_process_chunk();
    struct sf_end e;
    end_chunk(&e, (uint32_t)sf_g.pid, reason, how, status);
    e.events = sf_ring_on() ? sf_ring_events_written() : atomic_load(&ctl->events);
    e.lost = atomic_load(&ctl->lost);
    e.threads = atomic_load(&ctl->nthreads);
    /* A thread is counted when it takes its slot, just before it stores its
     * first record; killed in between, it recorded nothing: not a thread of
     * the log (after the last flush, every slot with a record has a chunk) */
    if (!write_failed && !sf_ring_on())
        for (uint32_t i = 0; i < hmapped && e.threads; i++)
            if (atomic_load(&hblocks[i]->state) == SLOT_USED && hblocks[i]->seq == 0 &&
                !hblocks[i]->pid)
                e.threads--;
    if (write_failed) {
        /* Not writable any more: say on stderr what the log is missing. */
        sf_msg("cannot write the log %s: %s; it is missing %llu records of pid %d and its END "
               "(it is readable up to its last whole chunk)",
               sf_g.path, errname(failed_errno), (unsigned long long)failed_records, (int)sf_g.pid);
        return;
    }
    sf_helper_write(&e, sizeof e, NULL, 0);
}

/* Write every thread's records stored so far (a flush, END, a snapshot's
 * cut), and the names threads have now. A name read now is dated before
 * the records not written yet: they are stored after the scan, so their
 * times are later. Returns that moment. */
static uint64_t flush_live(void)
{
    uint64_t t0 = sf_now();
    refresh_names();
    process_all(M_LIVE);
    for (uint32_t i = 0; i < hmapped; i++)
        if (atomic_load(&hblocks[i]->state) == SLOT_USED && proc_written())
            name_check(hblocks[i], hblocks[i]->name, t0);
    return t0;
}

static void ack(uint32_t seq)
{
    atomic_store_explicit(&sf_g.ctl->ack_seq, seq, memory_order_release);
    futex_wake(&sf_g.ctl->ack_seq);
}

static void end_sharer(struct sf_slot *s, uint32_t reason, int known, uint32_t how,
                       uint32_t status);
static void check_sharers(int force);
static int sharer_pidfd(uint32_t pid, int open_it);
static void sharer_pidfd_close(uint32_t pid);

/* One request of the runtime, if one is waiting. */
static int handle_request(void)
{
    struct sf_ctl *ctl = sf_g.ctl;
    uint32_t seq = atomic_load_explicit(&ctl->req_seq, memory_order_acquire);
    if (seq == atomic_load(&ctl->ack_seq))
        return 0;
    switch (ctl->req_kind) {
    case REQ_CHUNK:
        if (!mbox) {
            void *p =
                mmap(NULL, SF_MBOX_MAX, PROT_READ, MAP_SHARED, sf_g.memfd, (off_t)SF_MBOX_OFF);
            mbox = p == MAP_FAILED ? NULL : p;
        }
        if (mbox && ctl->mbox_len <= SF_MBOX_MAX) {
            /* an OBJECT: PROCESS goes first; a forked child describes its
             * objects even before its first record, as it always did */
            ensure_process_chunk();
            const struct sf_chunk *c = (const struct sf_chunk *)mbox;
            if (ctl->mbox_len >= sizeof *c && c->type == SF_CHUNK_PROCESS &&
                c->pid != (uint32_t)sf_g.pid)
                sharer_pidfd(c->pid, 1); /* a vfork child describes itself */
            sf_helper_write(mbox, ctl->mbox_len, NULL, 0);
        }
        break;
    case REQ_SHARER_END:
        map_new_blocks();
        if (ctl->req_slot < hmapped && !ended)
            end_sharer(hblocks[ctl->req_slot], ctl->end_reason, 0, 0, 0);
        break;
    case REQ_FLUSH:
    case REQ_END:
        if (!ended)
            flush_live();
        if (ctl->req_kind == REQ_END && !ended) {
            /* vfork children: ended, or (still running: nothing of theirs
             * is written after this) cut off here */
            check_sharers(1);
            for (uint32_t i = 0; i < hmapped; i++)
                if (hblocks[i]->pid)
                    end_sharer(hblocks[i], SF_END_DIED, 0, 0, 0);
        }
        if (ctl->req_kind == REQ_END && !ended)
            write_end(ctl->end_reason, (uint32_t)atomic_load(&ctl->status_how),
                      (uint32_t)atomic_load(&ctl->status));
        break;
    case REQ_SNAPSHOT: /* flight recorder (ring.c): the cut is now */
        if (!ended) {
            uint64_t cut = flush_live();
            sf_ring_snapshot(cut, ctl->end_reason, ctl->req_arg);
        }
        break;
    }
    int detached = ctl->req_kind == REQ_END && ctl->end_reason == SF_END_DETACH;
    ack(seq); /* after it, the next request may already be in ctl */
    if (detached)
        syscall(SYS_exit_group, 0); /* sftrace attach detached: the process runs on alone */
    return 1;
}

static void wait_status(int code, uint32_t *how, uint32_t *status)
{
    if (WIFSIGNALED(code)) {
        *how = SF_STATUS_SIGNALED;
        *status = (uint32_t)WTERMSIG(code);
    } else {
        *how = SF_STATUS_EXITED;
        *status = (uint32_t)WEXITSTATUS(code);
    }
}

/* How process pid ended (pfd: its pidfd, or -1): its zombie's exit code if
 * its parent has not reaped it yet, else the pidfd's (Linux 6.15 keeps it
 * after the reaping). 1 with the status; 0 if it still runs; -1 if it is
 * gone and nobody can say how. */
static int proc_status(int pid, int pfd, uint32_t *how, uint32_t *status)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    ssize_t n = sf_read_file(path, buf, sizeof buf - 1);
    char *p = NULL;
    if (n > 0) {
        buf[n] = 0;
        p = strrchr(buf, ')');
    }
    if (!p || p[1] != ' ' || (p[2] != 'Z' && p[2] != 'X')) {
        struct sf_pidfd_info info;
        memset(&info, 0, sizeof info);
        info.mask = SF_PIDFD_INFO_EXIT;
        if (pfd >= 0 && ioctl(pfd, SF_PIDFD_GET_INFO, &info) == 0 &&
            (info.mask & SF_PIDFD_INFO_EXIT)) {
            wait_status(info.exit_code, how, status);
            return 1;
        }
        return n > 0 ? 0 : -1; /* alive, or gone without a word */
    }
    /* fields after the name: 3 is the state, 52 the exit code */
    int field = 2;
    char *last = p + 1;
    for (char *q = p + 1; *q; q++)
        if (*q == ' ') {
            field++;
            last = q + 1;
            if (field == 52)
                break;
        }
    if (field != 52)
        return -1;
    int code = 0;
    for (char *q = last; *q >= '0' && *q <= '9'; q++)
        code = code * 10 + (*q - '0');
    wait_status(code, how, status);
    return 1;
}

/* How the dead process ended: proc_status, else what the runtime noted.
 * Called as soon as the death is seen, before the salvage, while the zombie
 * is most likely still there. */
static void death_status(uint32_t *how, uint32_t *status)
{
    *how = (uint32_t)atomic_load(&sf_g.ctl->status_how);
    *status = (uint32_t)atomic_load(&sf_g.ctl->status);
    proc_status((int)sf_g.pid, pidfd, how, status);
}

static void self_finish(uint64_t off, const void *chunk, size_t len);

/* The image is gone (death or exec) without its last flush: write every
 * record its threads stored, mark them ended, and END. */
static void salvage(uint32_t reason)
{
    if (ended)
        return;
    if (self_write) {
        /* killed inside its own write of PROCESS or END (under its lock:
         * nothing is after the piece): finish it, then let others write */
        struct sf_ctl *ctl = sf_g.ctl;
        uint32_t st = atomic_load(&ctl->self_state);
        if ((st & SF_SELF_PROC_WRITING) && !(st & SF_SELF_PROC_DONE))
            self_finish(ctl->self_proc_off, sf_g.proc_chunk, sf_g.proc_chunk_len);
        if ((st & SF_SELF_END_WRITING) && !(st & SF_SELF_END_DONE)) {
            self_finish(ctl->self_end_off, &ctl->self_end, sizeof ctl->self_end);
            st |= SF_SELF_END_DONE;
        }
        if (!no_flock)
            flock(log_fd, LOCK_UN); /* our descriptor shares the image's lock */
        if (st & SF_SELF_END_DONE) {
            ended = 1; /* it wrote its END itself: nothing comes after it */
            return;
        }
    }
    uint32_t how = 0, status = 0;
    if (reason == SF_END_DIED)
        death_status(&how, &status);
    handle_request(); /* a chunk it had put in the mailbox */
    map_new_blocks();
    check_sharers(1); /* vfork children that ended before us */
    for (uint32_t i = 0; i < hmapped; i++)
        if (hblocks[i]->pid) /* one that runs on: ended here, how unknown */
            end_sharer(hblocks[i], SF_END_DIED, 0, 0, 0);
    for (uint32_t i = 0; i < hmapped; i++)
        process_slot(hblocks[i], M_DEAD);
    if (proc_written() && !write_failed)
        for (uint32_t i = 0; i < hmapped; i++) {
            struct sf_slot *s = hblocks[i];
            if (atomic_load(&s->state) == SLOT_USED) {
                char name[16];
                memcpy(name, s->name, 16);
                name[15] = 0;
                write_thread_chunk(s, name, SF_THREAD_EXITED, sf_now());
            }
        }
    write_end(reason, how, status);
}

/* Did the process exec? Then our memfd is no longer mapped in it (a
 * program can close the descriptor with a raw system call, but not unmap
 * the buffers its threads write to): look for its inode in the maps. */
static int execed_pid(int pid)
{
    char path[64], buf[8192], ino[32];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    int n = snprintf(ino, sizeof ino, " %llu ", (unsigned long long)sf_g.memfd_ino);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    size_t have = 0, total = 0;
    int found = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        total += (size_t)r;
        buf[have] = 0;
        for (char *p = buf; (p = strstr(p, ino)) != NULL; p++) {
            char *eol = strchr(p, '\n');
            char *name = strstr(p, "/memfd:sftrace");
            if (name && (!eol || name < eol)) {
                found = 1;
                break;
            }
        }
        if (found)
            break;
        /* keep the last partial line for the next read */
        char *last = strrchr(buf, '\n');
        size_t keep = last ? have - (size_t)(last + 1 - buf) : 0;
        if (keep > (size_t)n + 512)
            keep = 0;
        memmove(buf, buf + have - keep, keep);
        have = keep;
    }
    close(fd);
    /* no mappings at all: not an exec'd image (it has memory) but a process
     * on its way out, its memory gone before it is a zombie (a vfork child's
     * raw exit_group seen here was taken for an exec) */
    return !found && total > 0;
}

static int execed(void)
{
    return execed_pid((int)sf_g.pid);
}

/* ---- processes sharing our memory (vfork children) -------------------------- */

/* End the recording of s, the slot of a process sharing our memory: its
 * records, its THREAD and END chunks; the slot goes back. known: how and
 * status are the process's exit, else what its runtime noted counts. */
static void end_sharer(struct sf_slot *s, uint32_t reason, int known, uint32_t how, uint32_t status)
{
    if (!s->pid || atomic_load(&s->state) != SLOT_USED)
        return;
    s->sh_reason = reason;
    if (known) {
        atomic_store(&s->sh_how, (int32_t)how);
        atomic_store(&s->sh_status, (int32_t)status);
    }
    sharer_pidfd_close(s->pid);
    atomic_store_explicit(&s->state, SLOT_EXITED, memory_order_release);
    process_slot(s, M_DEAD);
}

/* A process sharing our memory that exec'd or died without its runtime
 * saying so (a raw system call, a signal) is found here, at most every
 * 10 ms. Returns how many still run. */
static uint64_t sharers_checked;
static int sharers_live;
static struct {
    uint32_t pid; /* 0: free */
    int fd;
} sh_fds[64]; /* pidfds of the processes sharing our memory */

/* The pidfd of a process sharing our memory, opened at first sight (when
 * it describes itself, so the status of a quick death is still known). */
static int sharer_pidfd(uint32_t pid, int open_it)
{
    int k = -1;
    for (int i = 0; i < 64; i++) {
        if (sh_fds[i].pid == pid)
            return sh_fds[i].fd;
        if (!sh_fds[i].pid && k < 0)
            k = i;
    }
    if (!open_it)
        return -1;
    if (k < 0) { /* all taken: one goes */
        k = (int)(pid % 64);
        if (sh_fds[k].fd >= 0)
            close(sh_fds[k].fd);
    }
    sh_fds[k].pid = pid;
    sh_fds[k].fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return sh_fds[k].fd;
}

static void sharer_pidfd_close(uint32_t pid)
{
    for (int i = 0; i < 64; i++)
        if (sh_fds[i].pid == pid) {
            if (sh_fds[i].fd >= 0)
                close(sh_fds[i].fd);
            sh_fds[i].pid = 0;
        }
}

static void check_sharers(int force)
{
    uint64_t now = sf_mono_ns();
    if (!force && now - sharers_checked < 10000000)
        return;
    sharers_checked = now;
    int live = 0;
    for (uint32_t i = 0; i < hmapped; i++) {
        struct sf_slot *s = hblocks[i];
        if (!s->pid || atomic_load(&s->state) != SLOT_USED)
            continue;
        uint32_t how = 0, status = 0;
        int r = proc_status((int)s->pid, sharer_pidfd(s->pid, 1), &how, &status);
        if (r != 0)
            end_sharer(s, SF_END_DIED, r > 0, how, status);
        else if (execed_pid((int)s->pid))
            end_sharer(s, SF_END_EXEC, 0, 0, 0);
        else
            live++;
    }
    sharers_live = live;
}

/* Is the process on its way out? Its memory goes before its descriptors
 * (whose closing we saw), and an exec'd image has memory. */
static int dying(void)
{
    char path[64], target[256];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)sf_g.pid);
    return readlink(path, target, sizeof target) < 0;
}

static void spin_wait_for_work(void)
{
    /* Poll a while before sleeping: waking an idle CPU takes about as long
     * as a busy thread takes to fill a buffer (~100 us; more in a VM). */
    uint64_t t0 = sf_mono_ns();
    while (sf_mono_ns() - t0 < 200000) {
        struct sf_ctl *ctl = sf_g.ctl;
        if (atomic_load(&ctl->req_seq) != atomic_load(&ctl->ack_seq))
            return;
        for (uint32_t i = 0; i < hmapped; i++) {
            struct sf_slot *s = hblocks[i];
            uint32_t st = atomic_load(&s->bufs[s->wnext].state);
            if (atomic_load(&s->state) == SLOT_EXITED || st == B_FULL || st == B_PACKED)
                return;
        }
        if (atomic_load(&ctl->nslots) != hmapped)
            return;
        for (int i = 0; i < 64; i++)
            sf_arch_pause();
    }
}

static __attribute__((noreturn)) void helper_main(void)
{
    struct sf_ctl *ctl = sf_g.ctl;
    int wake_open = 1;
    for (;;) {
        int did = handle_request();
        did += process_all(M_NORMAL);
        check_sharers(0);
        if (did)
            continue;
        /* when the cores are busy, spinning takes one from them; and a
         * process with no recording thread yet (most of a build's) has no
         * buffer to fill: a spin would only take the core it starts on */
        if (!owners_pack && hmapped)
            spin_wait_for_work();
        atomic_store(&ctl->helper_sleeping, 1);
        if (handle_request() || process_all(M_NORMAL)) {
            atomic_store(&ctl->helper_sleeping, 0);
            continue;
        }
        struct pollfd p[2] = {{pidfd, POLLIN, 0}, {wake_open ? wake_r : -1, POLLIN, 0}};
        int r = poll(p, 2, sharers_live ? 10 : wake_open && pidfd >= 0 ? 1000 : 20);
        atomic_store(&ctl->helper_sleeping, 0);
        if (r > 0 && (p[0].revents & POLLIN)) {
            salvage(SF_END_DIED);
            break;
        }
        if (pidfd < 0 && kill(sf_g.pid, 0) != 0) {
            salvage(SF_END_DIED);
            break;
        }
        if (r > 0 && (p[1].revents & (POLLIN | POLLHUP))) {
            char buf[256];
            ssize_t n = read(wake_r, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                wake_open = 0;
                if (dying()) {
                    /* its descriptors close before it is a zombie */
                    struct pollfd d = {pidfd, POLLIN, 0};
                    if (pidfd >= 0)
                        poll(&d, 1, 2000);
                    salvage(SF_END_DIED);
                    break;
                }
                if (ended || execed()) {
                    /* exec: the image is gone, the process lives on */
                    salvage(SF_END_EXEC);
                    break;
                }
                /* the program closed our descriptor: poll from now on */
            }
        }
    }
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

/* Close every descriptor but the ones in keep (sorted, ascending). */
static void close_all_but(const int *keep, int n)
{
    unsigned lo = 0;
    for (int i = 0; i < n; i++) {
        if (keep[i] < 0 || (unsigned)keep[i] < lo)
            continue;
        if ((unsigned)keep[i] > lo)
            syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0u, 0);
}

static void helper_child(void)
{
    sf_in_helper = 1;
    syscall(SYS_setsid);
    if (chdir("/") != 0) { /* never keep a mount busy */
    }
    prctl(PR_SET_NAME, "sftrace-helper", 0, 0, 0);
    int keep[6] = {2, log_fd, sf_g.memfd, wake_r, alive_w, self_pidfd};
    for (int i = 1; i < 6; i++) /* sort: no qsort (it may allocate) */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    close_all_but(keep, 6);
    sf_g.wake_fd = sf_g.alive_fd = -1;
    /* opened by the process before the clone: it is ours even if the
     * process died and was reaped before we got here */
    pidfd = self_pidfd >= 0 ? self_pidfd : (int)syscall(SYS_pidfd_open, sf_g.pid, 0);
    packout = sf_map(SF_PACK_AREA);
    uint32_t n = atomic_load(&sf_g.ctl->nslots);
    /* inherited mappings; blocks the process set up after the clone (it
     * does not wait for us) are not in our copy: map_new_blocks maps them */
    for (hmapped = 0; hmapped < n && sf_g.blocks[hmapped]; hmapped++)
        hblocks[hmapped] = sf_g.blocks[hmapped];
    if (!packout)
        syscall(SYS_exit_group, 1);
    sf_ring_helper_init();
    if (!sf_g.proc_chunk_lazy && !self_write)
        ensure_process_chunk();
    atomic_store(&sf_g.ctl->helper_ready, 1);
    futex_wake(&sf_g.ctl->helper_ready);
    helper_main();
}

/* The image was killed inside its write of `chunk` at log offset `off`,
 * holding the exclusive lock, so nothing should follow what it wrote:
 * append what its write did not (all of it, if nothing of it is there).
 * What is at `off` is compared first: if another writer appended after a
 * piece of ours anyway (it waited for the lock in vain), adding the rest
 * would only add garbage, so nothing is written. */
static void self_finish(uint64_t off, const void *chunk, size_t len)
{
    struct stat st;
    if (fstat(log_fd, &st) != 0 || (uint64_t)st.st_size < off)
        return;
    uint64_t have = (uint64_t)st.st_size - off;
    size_t cmp = have < len ? (size_t)have : len;
    char buf[4096];
    size_t same = 0;
    while (same < cmp) {
        size_t n = cmp - same < sizeof buf ? cmp - same : sizeof buf;
        if (pread(log_fd, buf, n, (off_t)(off + same)) != (ssize_t)n ||
            memcmp(buf, (const char *)chunk + same, n) != 0)
            break;
        same += n;
    }
    if (same == cmp && have < len) /* a piece of ours at the end, or nothing */
        sf_write_all(log_fd, (const char *)chunk + have, len - (size_t)have);
    else if (same == 0)
        sf_write_all(log_fd, chunk, len); /* others' chunks there, none of ours */
}

/* The image's own append of PROCESS or END (signals blocked), under the
 * exclusive lock so that a write its death cuts short has nothing after it
 * (self_finish): note where the log ended, claim (writing: the helper
 * writes no second one; from *expect when given, else unconditionally), write,
 * say it is done. 0 if it is in the log; -1 (nothing written, the claim
 * taken back) if the helper must write it. */
static int self_append(int fd, const void *chunk, size_t len, uint64_t *off_out, uint32_t writing,
                       uint32_t done, uint32_t *expect)
{
    struct sf_ctl *ctl = sf_g.ctl;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        return -1; /* another writer now, or no flock here: the helper writes it */
    int rc = -1;
    off_t end = lseek(fd, 0, SEEK_END);
    *off_out = end > 0 ? (uint64_t)end : 0;
    int claimed = 1;
    if (expect)
        claimed = atomic_compare_exchange_strong(&ctl->self_state, expect, *expect | writing);
    else
        atomic_fetch_or(&ctl->self_state, writing);
    if (claimed) {
        if (sf_write_all(fd, chunk, len) == 0) {
            atomic_fetch_or(&ctl->self_state, done);
            rc = 0;
        } else { /* nothing or a piece: it said why (ENOSPC...); the helper tries */
            atomic_fetch_and(&ctl->self_state, ~writing);
        }
    }
    flock(fd, LOCK_UN);
    return rc;
}

/*
 * Start the helper of this process image. Called at start-up and in a forked
 * child, where only one thread runs; everything the helper needs is in its
 * copy of our memory (sf_g, the PROCESS chunk, the OBJECT chunks).
 *
 * Nothing here waits for the helper: the middle process is reaped by
 * sf_helper_reap (at the end of start-up, after the image's own work), the
 * helper's pid comes from the middle process through the control block, and
 * an image started by sf_init writes its PROCESS chunk itself, here, once
 * the helper exists to write END if it is killed from now on. Events and
 * requests wait in shared memory until the helper runs.
 */
int sf_helper_start(void)
{
    if (sf_g.fd < 0) { /* a forked child: the helper opens the log anew */
        char why[4096 + 256];
        sf_g.fd =
            sf_log_open(sf_g.path, O_WRONLY | O_APPEND | O_CLOEXEC, SF_LOG_MODE, why, sizeof why);
        if (sf_g.fd < 0 && why[0])
            sf_msg("%s", why);
    }
    if (sf_g.fd < 0)
        return -1;
    int wake[2], alive[2];
    /* a socket rather than a pipe: a wake-up sent after the helper died
     * (killed, OOM) fails with EPIPE, without the SIGPIPE a pipe's write
     * would raise in the program (send's MSG_NOSIGNAL, buffer.c) */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, wake) != 0)
        return -1;
    if (pipe2(alive, O_CLOEXEC) != 0) {
        close(wake[0]);
        close(wake[1]);
        return -1;
    }
    wake[1] = sf_fd_high(wake[1]);
    alive[0] = sf_fd_high(alive[0]);
    log_fd = sf_g.fd;
    wake_r = wake[0];
    alive_w = alive[1];
    struct sf_ctl *ctl = sf_g.ctl;
    /* sftrace attach: nothing of ours runs later in that process to reap
     * the middle process, so it waits here, as a forked child does */
    int wait_now = sf_g.attached || sf_g.proc_chunk_lazy;
    self_write = !sf_g.proc_chunk_lazy && !sf_g.attached && !sf_ring_on() && sf_g.proc_chunk;
    atomic_store(&ctl->helper_pid, 0);
    atomic_store(&ctl->helper_ready, 0);
    atomic_store(&ctl->self_state, 0);
    self_pidfd = (int)syscall(SYS_pidfd_open, sf_g.pid, 0);
    sigset_t all, old, pending;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    /* exit signal 0: the program is never told about the middle process */
    unsigned long exit_signal = 0;
    long mid = syscall(SYS_clone, exit_signal, NULL, NULL, NULL, NULL);
    if (mid < 0 && errno == EINVAL) {
        /* qemu-user refuses a fork whose exit signal is not SIGCHLD: the
         * middle process then sends one, taken back below */
        sigpending(&pending);
        exit_signal = sigismember(&pending, SIGCHLD) ? 0 : SIGCHLD;
        mid = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
        wait_now = 1;
    }
    if (mid == 0) {
        long h = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
        if (h == 0)
            helper_child();
        if (h > 0)
            atomic_store(&ctl->helper_pid, (uint32_t)h);
        syscall(SYS_exit_group, h < 0 ? 1 : 0);
    }
    mid_pid = mid > 0 ? (pid_t)mid : 0;
    if (mid > 0 && self_write) /* our PROCESS, every signal still blocked */
        self_append(sf_g.fd, sf_g.proc_chunk, sf_g.proc_chunk_len, &ctl->self_proc_off,
                    SF_SELF_PROC_WRITING, SF_SELF_PROC_DONE, NULL);
    struct stat lst;
    if (self_write && fstat(sf_g.fd, &lst) == 0) { /* to know the log again at exit */
        self_log_ino = (uint64_t)lst.st_ino;
        self_log_dev = (uint64_t)lst.st_dev;
    }
    if (mid > 0 && wait_now) {
        sf_helper_reap();
        /* a forked child with instrumented code, and an attach: the helper
         * runs before the program goes on, as it always did (its first
         * buffers are written while it runs, so `record` knows the child
         * from its PROCESS chunk early) */
        for (int i = 0; i < 2000 && sf_g.helper_pid > 0 && !atomic_load(&ctl->helper_ready) &&
                        kill(sf_g.helper_pid, 0) == 0;
             i++) {
            struct timespec ts = {0, 1000000};
            syscall(SYS_futex, &ctl->helper_ready, FUTEX_WAIT, 0, &ts, NULL, 0);
        }
        if (exit_signal == SIGCHLD) {
            /* the middle process's SIGCHLD, while still blocked (one that
             * was pending before is left for the program) */
            sigset_t chld;
            sigemptyset(&chld);
            sigaddset(&chld, SIGCHLD);
            struct timespec zero = {0, 0};
            while (sigtimedwait(&chld, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(wake[0]);
    close(alive[1]);
    if (self_pidfd >= 0)
        close(self_pidfd);
    self_pidfd = -1;
    log_fd = wake_r = alive_w = -1;
    if (mid <= 0 || (wait_now && sf_g.helper_pid <= 0)) {
        close(wake[1]);
        close(alive[0]);
        if (!self_write || !(atomic_load(&ctl->self_state) & SF_SELF_PROC_DONE)) {
            self_write = 0;
            return -1;
        }
        /* our PROCESS is out, and no helper: END comes from sf_before_exit
         * (nothing will record: sf_g.helper_gone) */
        sf_g.helper_gone = 1;
        sf_g.wake_fd = sf_g.alive_fd = -1;
        close(sf_g.fd);
        sf_g.fd = -1;
        return 0;
    }
    sf_g.helper_gone = 0;
    sf_g.wake_fd = wake[1];
    sf_g.alive_fd = alive[0];
    sf_g.wake_ino = 0;
    struct stat st;
    if (fstat(wake[1], &st) == 0)
        sf_g.wake_ino = (uint64_t)st.st_ino;
    if (fstat(alive[0], &st) == 0)
        sf_g.alive_ino = (uint64_t)st.st_ino;
    /* the helper has the log; the program never sees it open (an END of
     * our own opens it again) */
    close(sf_g.fd);
    sf_g.fd = -1;
    return 0;
}

/* Reap the middle process of the start (it exits as soon as the helper is
 * cloned) and learn the helper's pid. The program never sees it: until
 * then it is a child with exit signal 0, which wait(), waitpid() and
 * waitid() without __WALL or __WCLONE pass over. */
void sf_helper_reap(void)
{
    if (mid_pid <= 0 || getpid() != sf_g.pid)
        return;
    int saved = errno, st;
    while (waitpid(mid_pid, &st, __WALL) < 0 && errno == EINTR)
        ;
    mid_pid = 0;
    errno = saved;
    sf_g.helper_pid = (pid_t)atomic_load(&sf_g.ctl->helper_pid);
}

pid_t sf_helper_pid(void)
{
    if (sf_g.helper_pid <= 0 && sf_g.ctl) {
        sf_helper_reap();
        sf_g.helper_pid = (pid_t)atomic_load(&sf_g.ctl->helper_pid);
    }
    return sf_g.helper_pid;
}

/* In a forked child: the parent's middle process and log descriptor are
 * not ours; the child's helper writes its PROCESS chunk (lazily). */
void sf_helper_after_fork(void)
{
    mid_pid = 0;
    sf_g.helper_pid = 0;
    sf_g.fd = -1;
    self_write = 0;
    atomic_store(&deferred, 0);
}

/* A forked child with no instrumented object records nothing and writes
 * nothing: its helper starts only when it needs one (its first chunk, its
 * first recording thread), so that a shell's children cost no helper. */
void sf_helper_defer(void)
{
    sf_g.helper_gone = 1;
    atomic_store(&deferred, 1);
}

void sf_helper_start_deferred(void)
{
    if (!atomic_load(&deferred) || getpid() != sf_g.pid || !atomic_exchange(&deferred, 0))
        return;
    int saved = errno;
    if (sf_helper_start() != 0)
        sf_msg("pid %d: cannot start the helper process; not tracing it", (int)sf_g.pid);
    errno = saved;
}

/*
 * The last flush of an image that wrote its own PROCESS chunk and recorded
 * nothing (no thread took a slot, no process shares our memory): it writes
 * its END itself, one append, instead of asking the helper and waiting for
 * it. Returns 0 if END is in the log (or was already), -1 if the helper
 * must write it. The claim in ctl->self_state keeps the helper from writing
 * a second one when it sees the process go.
 */
int sf_helper_self_end(uint32_t reason)
{
    struct sf_ctl *ctl = sf_g.ctl;
    if (!self_write || !ctl || getpid() != sf_g.pid)
        return -1;
    uint32_t st = atomic_load(&ctl->self_state);
    if (st & SF_SELF_END_DONE)
        return 0;
    if (!(st & SF_SELF_PROC_DONE) || (st & (SF_SELF_END_WRITING | SF_SELF_HELPER_END)) ||
        atomic_load(&ctl->nslots) || atomic_load(&ctl->write_failed))
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    /* the log, opened again (held open, it would be a descriptor the
     * program sees, which a shell saves and restores): the same file, or
     * the helper writes END (the log was renamed or replaced) */
    int saved = errno;
    int fd = open(sf_g.path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    struct stat lst;
    if (fd >= 0 && (fstat(fd, &lst) != 0 || (uint64_t)lst.st_ino != self_log_ino ||
                    (uint64_t)lst.st_dev != self_log_dev)) {
        syscall(SYS_close, fd);
        fd = -1;
    }
    errno = saved;
    if (fd < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return -1;
    }
    struct sf_end *e = &ctl->self_end; /* in shared memory: a helper can finish it */
    end_chunk(e, (uint32_t)sf_g.pid, reason, (uint32_t)atomic_load(&ctl->status_how),
              (uint32_t)atomic_load(&ctl->status));
    e->events = atomic_load(&ctl->events);
    e->lost = atomic_load(&ctl->lost);
    e->threads = atomic_load(&ctl->nthreads);
    int rc = atomic_load(&ctl->nslots) == 0
                 ? self_append(fd, e, sizeof *e, &ctl->self_end_off, SF_SELF_END_WRITING,
                               SF_SELF_END_DONE, &st)
                 : -1;
    if (rc == 0)
        atomic_store(&ctl->ended, 1);
    syscall(SYS_close, fd);
    errno = saved;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
