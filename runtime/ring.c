/*
 * ring.c - the flight recorder (`sftrace record --ring SIZE`): keep only the
 * most recent records of a process image, and write them to the log as a
 * snapshot on request (SIGUSR2, `sftrace snapshot PID`, a snapshot-on or
 * snapshot-slower trigger), at exit and exec, on a fatal signal and when the
 * process dies.
 *
 * The ring is in the helper process (helper.c), not in the program: the
 * threads fill and hand over their shared buffers exactly as in normal
 * recording (the same hot path, the same cost), and the helper, instead of
 * appending the packed EVENTS chunks to the log, keeps them in a ring of
 * SIZE bytes of its own memory, dropping the oldest chunks to make room.
 * So there is no I/O at all until a snapshot, and the ring holds packed
 * records (several times more events per byte than raw ones).
 *
 * SIZE is per process, not per thread: memory stays SIZE however many
 * threads the program starts, and what is kept is the process's most recent
 * history, so every thread's records reach back to roughly the same moment
 * (a thread that is quiet keeps its few records for longer). The records
 * each thread has in its current buffer (up to 64 KiB, not yet handed over)
 * come on top, taken when the snapshot is made.
 *
 * A snapshot: the helper notes the cut (now), takes what every thread has
 * stored so far into the ring, and writes SNAP_BEGIN, a THREAD chunk per
 * thread it knows a name of, the ring's chunks oldest first, and SNAP_END
 * (docs/log-format.md). The ring is kept: the next snapshot may repeat
 * chunks of this one, so each snapshot stands alone.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "runtime.h"

static size_t ring_size;  /* 0: not a flight recorder */
static uint8_t *ring;     /* helper: the ring */
static size_t head, tail; /* next entry goes at head; the oldest is at tail */
static size_t used;       /* bytes of entries (and wrap padding) */
static int writing;       /* the snapshot writer is appending: no ring */
/* The latest record time of any EVENTS chunk dropped from the ring (0: none
 * was): from there on every thread's history is whole, so a snapshot says
 * so with a START mark there (SF_WHY_RING). A call open at that moment
 * then shows as begun there, clipped, with its callees under it (the tools'
 * opening scan), instead of its later exit standing alone. Records of the
 * snapshot older than it (a quiet thread's) are dropped by the readers. */
static uint64_t horizon;
static uint64_t events_written;
static uint32_t snap_seq;

/* An entry: this header, then the chunk. len 0: wrap to offset 0. */
struct rent {
    uint32_t len;      /* chunk bytes */
    uint32_t type;     /* chunk type */
    uint64_t ev_start; /* ctl->events when it was put (EVENTS) */
};

/* Names of the threads whose THREAD chunks went into the ring. */
#define MAX_NAMES 4096
static struct {
    uint32_t tid;
    char name[16];
} names[MAX_NAMES];
static uint32_t nnames;

int sf_ring_on(void)
{
    return ring_size > 0;
}

uint64_t sf_ring_events_written(void)
{
    return events_written;
}

/* "64M", "512K", "1G", plain bytes. */
static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    else if (*end == 'G' || *end == 'g')
        v <<= 30, end++;
    return *end ? 0 : (size_t)v;
}

/* ---- in the traced process ---------------------------------------------------- */

int sf_ring_request(uint32_t why, uint32_t arg)
{
    if (!ring_size || !sf_g.ctl)
        return -1;
    sf_g.ctl->req_arg = arg;
    return sf_request(REQ_SNAPSHOT, why);
}

static void on_sigusr2(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int saved = errno;
    uint32_t why = si && si->si_code == SI_QUEUE && si->si_value.sival_int == SF_CTL_SNAPSHOT
                       ? SF_WHY_CTL
                       : SF_WHY_SIGNAL;
    if (sf_ring_request(why, 0) != 0)
        sf_msg("pid %d: cannot take a snapshot now", (int)sf_g.pid);
    errno = saved;
}

void sf_ring_init(void)
{
    const char *v = getenv("SFTRACE_RING");
    if (!v || !*v)
        return;
    ring_size = parse_size(v);
    if (ring_size < (1u << 20)) {
        sf_msg("SFTRACE_RING=%s: a ring of at least 1M is needed; recording everything", v);
        ring_size = 0;
        return;
    }
    ring_size &= ~(size_t)7;
    sf_ctl_take_signal(SF_SNAP_SIGNAL, on_sigusr2);
}

/* `sftrace snapshot`'s queued SIGUSR2 when the program took SIGUSR2 (its
 * wrapper, hooks.c, through sf_ctl_queued): 1 if ours (a ring is kept). */
int sf_ring_queued(int sig, siginfo_t *si)
{
    if (!ring_size)
        return 0;
    on_sigusr2(sig, si, NULL);
    return 1;
}

/* ---- in the helper ------------------------------------------------------------------ */

void sf_ring_helper_init(void)
{
    if (!ring_size)
        return;
    ring = sf_map(ring_size); /* pages only once touched */
    if (!ring) {
        sf_msg("pid %d: no memory for a ring of %zu bytes; recording everything", (int)sf_g.pid,
               ring_size);
        ring_size = 0;
    }
    head = tail = used = 0;
    nnames = 0;
    horizon = 0;
}

static struct rent *at(size_t off)
{
    return (struct rent *)(ring + off);
}

/* Is there wrap padding at off (no entry fits before the end)? */
static int is_pad(size_t off)
{
    return off + sizeof(struct rent) > ring_size || at(off)->len == 0;
}

/* The time of the last record of an EVENTS chunk: decoded if packed; the
 * time it was written (later than any of its records) if raw. */
static uint64_t last_record_time(const uint8_t *chunk, size_t len)
{
    const struct sf_events *ev = (const struct sf_events *)chunk;
    if (len < sizeof *ev)
        return 0;
    if (!(ev->h.flags & SF_EVENTS_PACKED))
        return ev->flush_tsc;
    static struct sf_pack_state st; /* the helper is one thread */
    sf_unpack_begin(&st, ev->tsc_hi, ev->h.flags);
    const uint8_t *p = chunk + sizeof *ev, *end = chunk + len;
    struct sf_unpacked r;
    uint64_t last = 0;
    int k;
    while ((k = sf_unpack(&st, &p, end, &r)) > 0)
        last = r.t;
    return k < 0 ? ev->flush_tsc : last;
}

static void note_dropped(const struct rent *e)
{
    if (e->type != SF_CHUNK_EVENTS)
        return;
    uint64_t t = last_record_time((const uint8_t *)(e + 1), e->len);
    if (t > horizon)
        horizon = t;
}

/* Drop the oldest entry (or the padding before the wrap). */
static void drop_oldest(void)
{
    if (is_pad(tail)) {
        used -= ring_size - tail;
        tail = 0;
    } else {
        note_dropped(at(tail));
        size_t n = sizeof(struct rent) + at(tail)->len;
        tail += n;
        used -= n;
    }
    if (!used)
        head = tail = 0;
}

static void note_name(const struct sf_thread *t)
{
    uint32_t i;
    for (i = 0; i < nnames && names[i].tid != t->tid; i++)
        ;
    if (t->h.flags & SF_THREAD_EXITED) {
        if (i < nnames)
            names[i] = names[--nnames];
        return;
    }
    if (i == nnames) {
        if (nnames == MAX_NAMES)
            return;
        nnames++;
    }
    names[i].tid = t->tid;
    memcpy(names[i].name, t->name, 16);
}

int sf_ring_take(const void *a, size_t alen, const void *b, size_t blen)
{
    if (!ring || writing || alen < sizeof(struct sf_chunk))
        return 0;
    const struct sf_chunk *h = a;
    if (h->type != SF_CHUNK_EVENTS && h->type != SF_CHUNK_THREAD)
        return 0; /* PROCESS, OBJECT, END, MARK go to the log */
    if (h->type == SF_CHUNK_THREAD && alen >= sizeof(struct sf_thread))
        note_name(a);
    size_t len = alen + blen, need = sizeof(struct rent) + len;
    if (need > ring_size / 2) {
        if (h->type == SF_CHUNK_EVENTS && alen >= sizeof(struct sf_events) &&
            ((const struct sf_events *)a)->flush_tsc > horizon)
            horizon = ((const struct sf_events *)a)->flush_tsc;
        atomic_fetch_add(&sf_g.ctl->lost, (blen ? blen : alen) / 8);
        return 1; /* cannot be kept: counted lost */
    }
    for (;;) {
        if (!used)
            head = tail = 0;
        int wrapped = head < tail || (head == tail && used); /* free: [head, tail) */
        if (!wrapped) {                                      /* free: [head, end), [0, tail) */
            if (ring_size - head >= need)
                break;
            if (ring_size - head >= sizeof(struct rent))
                at(head)->len = 0; /* wrap here */
            used += ring_size - head;
            head = 0;
            continue;
        }
        if (tail - head >= need)
            break;
        drop_oldest();
    }
    struct rent *e = at(head);
    e->len = (uint32_t)len;
    e->type = h->type;
    e->ev_start = atomic_load(&sf_g.ctl->events);
    memcpy(e + 1, a, alen);
    if (blen)
        memcpy((uint8_t *)(e + 1) + alen, b, blen);
    head += need;
    used += need;
    return 1;
}

static void write_mark(uint32_t kind, uint32_t why, uint32_t arg, uint64_t cut)
{
    struct sf_mark m;
    sf_mark_fill(&m, kind, why, arg, snap_seq, cut);
    sf_helper_write(&m, sizeof m, NULL, 0);
}

void sf_ring_snapshot(uint64_t cut, uint32_t why, uint32_t arg)
{
    if (!ring)
        return;
    writing = 1;
    snap_seq++;
    write_mark(SF_MARK_SNAP_BEGIN, why, arg, cut);
    for (uint32_t i = 0; i < nnames; i++) {
        struct sf_thread t;
        memset(&t, 0, sizeof t);
        t.h.magic = SF_CHUNK_MAGIC;
        t.h.type = SF_CHUNK_THREAD;
        t.h.size = sizeof t;
        t.h.pid = (uint32_t)sf_g.pid;
        t.tid = names[i].tid;
        t.tsc = cut;
        memcpy(t.name, names[i].name, 15);
        sf_helper_write(&t, sizeof t, NULL, 0);
    }
    if (horizon && horizon < cut) {
        struct sf_mark m;
        sf_mark_fill(&m, SF_MARK_START, SF_WHY_RING, 0, snap_seq, horizon);
        sf_helper_write(&m, sizeof m, NULL, 0);
    }
    uint64_t now_events = atomic_load(&sf_g.ctl->events);
    size_t off = tail, left = used;
    while (left) {
        if (is_pad(off)) {
            left -= ring_size - off;
            off = 0;
            continue;
        }
        struct rent *e = at(off);
        size_t n = sizeof *e + e->len;
        if (e->type == SF_CHUNK_EVENTS) {
            /* its events: up to the next EVENTS entry's start, or now */
            uint64_t next = now_events;
            for (size_t o2 = off + n, l2 = left - n; l2;) {
                if (is_pad(o2)) {
                    l2 -= ring_size - o2;
                    o2 = 0;
                    continue;
                }
                struct rent *f = at(o2);
                if (f->type == SF_CHUNK_EVENTS) {
                    next = f->ev_start;
                    break;
                }
                l2 -= sizeof *f + f->len;
                o2 += sizeof *f + f->len;
            }
            events_written += next - e->ev_start;
        }
        sf_helper_write(e + 1, e->len, NULL, 0);
        off += n;
        left -= n;
    }
    write_mark(SF_MARK_SNAP_END, why, arg, cut);
    atomic_fetch_add(&sf_g.ctl->snapshots, 1);
    writing = 0;
}

/* The image ends: its last snapshot, with everything it stored (helper.c
 * has taken every thread's records into the ring already). */
void sf_ring_final(uint32_t end_reason)
{
    if (!ring || !used)
        return;
    uint32_t why = end_reason == SF_END_SIGNAL ? SF_WHY_FATAL
                   : end_reason == SF_END_DIED ? SF_WHY_DIED
                                               : SF_WHY_EXIT;
    sf_ring_snapshot(sf_now(), why, 0);
}
