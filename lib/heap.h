/*
 * heap.h - the heap model of `sftrace memory`: allocation events (ALLOC
 * records: alloc, free, realloc old/new block) of every thread of every
 * process image, put in one time order and replayed against a table of live
 * blocks, so that live bytes, their peak, leaks and the stages of a run can
 * be told by call path.
 *
 * The model knows nothing of logs or calls: the caller gives it heaps (one
 * per process image: an exec starts an empty heap), threads (each in one
 * heap), call paths as small integers (the caller's calling-context tree
 * nodes) and events with their CLOCK_MONOTONIC time.
 *
 * Time order. Events of one thread come in time order, but threads' chunks
 * overlap in time, and a block allocated on one thread is often freed on
 * another. sf_heap_record collects one thread's run of events;
 * sf_heap_sync merges it into a pending list sorted by time (stable: equal
 * times keep their arrival order) and replays the oldest pending events
 * while both hold:
 *   - the list has more than SF_HEAP_WINDOW events (a thread seen for the
 *     first time can bring events older than everything pending: the
 *     window keeps that many events back for it), and
 *   - the event is no later than the watermark: the earliest latest-time of
 *     every thread still running (their next chunks cannot be older);
 * or when the list has more than 4 * SF_HEAP_WINDOW events (memory bound).
 * The bound holds between syncs too: sf_heap_record replays the oldest
 * events once more than SF_HEAP_BOUND are pending (merged or not), so that
 * one thread's long run (the caller syncs when the thread changes) is not
 * held whole. An event that arrives older than one already replayed is
 * replayed at the replay frontier's time and counted in `late`: figures are
 * exact when late == 0. Memory: the pending list (at most SF_HEAP_BOUND * 32
 * bytes, in an array of up to 1.5 times that), the live blocks (and, for double-free detection,
 * recently freed addresses, at most as many as the table has room for), the call paths and per
 * stage the paths that allocated in it. Never the number of events.
 *
 * Semantics.
 *   - A free gives back the block's recorded size (not the event's).
 *   - A realloc moves the block's ownership (call path, stage, thread that
 *     allocated it) to its new address; its size change counts as bytes
 *     allocated (growth) or freed (shrink). Between the old-block and the
 *     new-block events the old bytes stay live (both are held then), but
 *     the old address is free for reuse at once.
 *   - A free of an address never allocated (a block allocated before
 *     recording began, by an allocator that was not traced, or before a
 *     fork in the parent) is counted apart (unknown_frees, with the size the
 *     event gives), never subtracted. A second free of a freed address is a
 *     double free (also counted apart). A realloc of an unknown block counts
 *     apart and its new block is a new allocation of the realloc's path. An
 *     allocation at an address still live (a free we did not see) replaces
 *     the old block (counted: live_address_allocs). Live bytes are never
 *     negative; sums saturate.
 *   - free(NULL) is ignored; an allocation reported at address 0 is ignored
 *     and counted (null_allocs).
 *   - Stages: a MILESTONE event (the entry of a milestone function, on any
 *     thread of any process) closes the current stage and opens the next;
 *     stage 0 runs from the start. Stages are run-wide.
 *   - Peak: the largest total of live bytes, over all heaps (sf_heap.g) and
 *     per heap, at the moment it was first reached; the live bytes of every
 *     call path at that moment are kept (copy on write: O(1) per event).
 */
#ifndef SFTRACE_HEAP_H
#define SFTRACE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "logread.h"

#define SF_HEAP_WINDOW (1u << 18)
/* pending events (merged and not) beyond which the oldest are replayed at
 * once, between syncs (the memory bound) */
#define SF_HEAP_BOUND (4 * (size_t)SF_HEAP_WINDOW + SF_HEAP_WINDOW / 8)

enum sf_heap_kind {
    SF_HEAP_ALLOC = 1, /* the values of enum sf_alloc_kind */
    SF_HEAP_FREE = 2,
    SF_HEAP_REALLOC_NEW = 3,
    SF_HEAP_REALLOC_OLD = 4,
    SF_HEAP_MILESTONE = 5, /* path = the caller's function id of the milestone */
};

/* Snapshot scopes: the whole run, the event's heap, the selected stage. */
enum { SF_SCOPE_ALL, SF_SCOPE_HEAP, SF_SCOPE_STAGE, SF_NSCOPES };

/* A peak tracker: the current live total, its peak and the epoch of the
 * snapshot taken at the peak. */
struct sf_hscope {
    uint64_t cur, peak, peak_ns;
    uint64_t epoch; /* 0: no snapshot (yet) */
};

/* Counts shared by the totals, heaps, threads and stages. */
struct sf_hcount {
    uint64_t allocs, frees, reallocs;
    uint64_t allocated, freed; /* bytes */
};

/* What went wrong, counted apart (never as negative memory). */
struct sf_hanom {
    uint64_t unknown_frees, unknown_free_bytes;       /* frees of blocks never seen allocated */
    uint64_t double_frees;                            /* frees of an address already freed */
    uint64_t unknown_reallocs, unknown_realloc_bytes; /* reallocs of unknown blocks */
    uint64_t unpaired_reallocs;   /* a new-block event without its old-block event */
    uint64_t live_address_allocs; /* allocations at a live address (a missed free) */
    uint64_t live_address_bytes;  /* the replaced blocks' bytes */
    uint64_t null_allocs;         /* allocations reported at address 0 */
};

struct sf_hheap {
    uint32_t pid, image; /* the process image's pid and id */
    struct sf_hcount c;
    struct sf_hanom a;
    struct sf_hscope s; /* live bytes of this heap and their peak */
    uint64_t live_blocks;
    uint32_t label; /* the caller's: its root path */
};

struct sf_hthread {
    uint32_t heap, pid, tid;
    struct sf_hcount c;
    uint64_t anomalies;
    uint64_t live, live_blocks; /* blocks it allocated (owns), still live */
    uint64_t last_ns;           /* the caller's: latest event time of the thread */
    int running;                /* the caller's: 0 once it exited (watermark) */
    void *user;                 /* the caller's */
    /* a realloc's old block, between its two events (the replay's) */
    int det; /* 0 none, 1 known block, 2 unknown block */
    uint32_t det_path, det_ent, det_owner;
    uint64_t det_size;
};

/* A call path's figures. */
struct sf_hpath {
    uint64_t allocated, allocs; /* bytes allocated (and realloc growth), allocations */
    uint64_t live, live_blocks; /* now (after the run: at exit) */
    uint64_t snap[SF_NSCOPES], ep[SF_NSCOPES];
    uint32_t ent, ent_stage; /* its entry of the current stage: ent_stage = stage + 1 */
};

/* A stage's allocations by call path: what it left behind. */
struct sf_hleft {
    uint32_t stage, path;
    uint64_t allocated, allocs;
    uint64_t live, live_blocks;         /* still live now (after the run: at exit) */
    uint64_t live_end, live_end_blocks; /* still live at the stage's end */
};

struct sf_hstage {
    uint32_t milestone; /* the MILESTONE event's path (function), UINT32_MAX for stage 0 */
    uint32_t pid, tid;  /* where the milestone was entered */
    uint64_t start_ns, end_ns;
    struct sf_hcount c;
    uint64_t live_start, live_end; /* total live bytes at its start and end */
    uint64_t peak, peak_ns;        /* highest total live bytes in it */
    uint32_t first_ent, end_ent;   /* its entries in sf_heap.left */
    uint64_t left_end, left_end_blocks;
};

/* One of the largest allocations. */
struct sf_hbig {
    uint64_t size, ns, ptr;
    uint32_t thread, path, stage;
};

struct sf_hblock; /* the table of blocks (heap.c) */

/* A pending event (32 bytes); also an operation of the queue below (kind
 * 0: a control operation, which one in path). */
struct sf_hev {
    uint64_t ns, ptr, size;
    uint32_t path;
    uint32_t tk; /* thread << 3 | kind */
};

struct sf_heap {
    struct sf_hcount c;
    struct sf_hanom a;
    struct sf_hscope g;     /* all heaps */
    struct sf_hscope stage; /* the selected stage's peak (stage_peak) */
    int32_t stage_peak;     /* the stage whose peak is kept, -1 none */
    uint64_t live_blocks;
    uint64_t epochs; /* last epoch given out */
    uint64_t late;   /* events replayed out of order (at the frontier) */
    uint64_t frontier;
    uint64_t events, forced; /* events replayed; of them, replayed past the watermark */

    struct sf_hheap *heaps;
    size_t nheaps, capheaps;
    struct sf_hthread *threads;
    size_t nthreads, capthreads;
    struct sf_hpath *paths;
    size_t npaths, cappaths;
    struct sf_hstage *stages;
    size_t nstages, capstages;
    struct sf_hleft *left;
    size_t nleft, capleft;
    struct sf_hbig *big; /* a min-heap of the top_k largest */
    size_t nbig, top_k;

    struct sf_hblock *tab;
    size_t tabcap, tabused, tablive; /* used: live + freed (tombstones) */
    unsigned tabshift;               /* 64 - log2(tabcap) */

    struct sf_hev *pend; /* pending, sorted: [phead, npend) */
    size_t phead, npend, cappend;
    struct sf_hev *batch; /* one thread's run, not merged yet */
    size_t nbatch, capbatch;
    uint32_t batch_thread;
};

/* top_k: how many of the largest allocations to keep; stage_peak: the
 * stage whose own peak is snapshotted (-1 none). */
void sf_heap_init(struct sf_heap *h, size_t top_k, int32_t stage_peak);
void sf_heap_free(struct sf_heap *h);
/* A new heap (process image) and a new thread in heap; their indexes. */
uint32_t sf_heap_add_heap(struct sf_heap *h, uint32_t pid, uint32_t image, uint32_t label);
uint32_t sf_heap_add_thread(struct sf_heap *h, uint32_t heap, uint32_t pid, uint32_t tid);
/* An event of thread (its time order). ptr and size as the record gives
 * them; path: the allocating call path (MILESTONE: the function). */
void sf_heap_record(struct sf_heap *h, uint32_t thread, enum sf_heap_kind kind, uint64_t ns,
                    uint64_t ptr, uint64_t size, uint32_t path);
/* Merge what was recorded and replay what is safe (after each chunk, with
 * the threads' last_ns and running up to date). */
void sf_heap_sync(struct sf_heap *h);
/* Replay everything and close the last stage at end_ns. */
void sf_heap_finish(struct sf_heap *h, uint64_t end_ns);

/* A path's value at the peak of a scope (SF_SCOPE_HEAP: its heap's). */
uint64_t sf_heap_at_peak(const struct sf_heap *h, uint32_t path, int scope, uint32_t heap);

/*
 * The heap model in a thread of its own (`memory -j`). The engine's thread
 * (the producer) does not call the model: it writes what it would have done
 * (add a heap or a thread, record an event, update a thread's latest time,
 * retire it, sync) as operations into batches, and the model's thread (the
 * consumer) applies them to the sf_heap in the same order, so every figure
 * is the same as a run in one thread: the order of the model's calls is
 * fixed by the producer. The batches go through a ring of SF_HEAPQ_RING
 * (a single producer, a single consumer); a full ring makes the producer
 * wait, so memory stays bounded (SF_HEAPQ_RING * SF_HEAPQ_OPS * 32 bytes:
 * 4 MB, some 6 ms of the reader's work: on a busy machine a consumer
 * waiting for its core for a time slice does not stop the reader at once).
 * Each side sleeps when it has to wait and is woken only when the
 * other has made room for, or filled, half the ring (not once per batch).
 * Without a thread (threaded 0) the same batches are applied by the
 * producer when they fill: one code path for both.
 *
 * While the queue runs, the sf_heap belongs to the consumer: the producer
 * reads nothing of it (the sync decision, "more than SF_HEAP_WINDOW events
 * pending", is taken by the consumer: SF_HEAPQ_SYNC_IF). After
 * sf_heapq_close (which applies everything and joins the thread) it is the
 * caller's again, for sf_heap_finish and the report.
 */
#define SF_HEAPQ_OPS 2048
#define SF_HEAPQ_RING 64

enum sf_heapq_op {
    SF_HEAPQ_HEAP = 1, /* sf_heap_add_heap */
    SF_HEAPQ_THREAD,   /* sf_heap_add_thread, and its user pointer */
    SF_HEAPQ_LAST,     /* a thread's last_ns */
    SF_HEAPQ_RETIRE,   /* a thread stops running (and, if given, its last_ns) */
    SF_HEAPQ_SYNC,     /* sf_heap_sync */
    SF_HEAPQ_SYNC_IF,  /* sf_heap_sync when more than SF_HEAP_WINDOW events are pending */
};

struct sf_heapq_ring; /* heap.c: the ring and the thread */

struct sf_heapq {
    struct sf_heap *h;
    struct sf_heapq_ring *r; /* NULL: no thread */
    struct sf_hev *cur;      /* the batch being filled */
    size_t ncur;
    uint32_t nheaps, nthreads; /* given out so far (the consumer's indexes) */
};

/* threaded: 1 for a consumer thread (if it cannot be started, the queue
 * runs without one). */
void sf_heapq_open(struct sf_heapq *q, struct sf_heap *h, int threaded);
/* The batch is full: hand it over (to the ring, or apply it). */
void sf_heapq_submit(struct sf_heapq *q);
/* Apply everything, stop the thread, free the queue. */
void sf_heapq_close(struct sf_heapq *q);

static inline struct sf_hev *sf_heapq_op(struct sf_heapq *q)
{
    if (__builtin_expect(q->ncur == SF_HEAPQ_OPS, 0))
        sf_heapq_submit(q);
    return &q->cur[q->ncur++];
}

/* sf_heap_record, queued. */
static inline void sf_heapq_event(struct sf_heapq *q, uint32_t thread, enum sf_heap_kind kind,
                                  uint64_t ns, uint64_t ptr, uint64_t size, uint32_t path)
{
    struct sf_hev *e = sf_heapq_op(q);
    e->ns = ns;
    e->ptr = ptr;
    e->size = size;
    e->path = path;
    e->tk = thread << 3 | (uint32_t)kind;
}

/* A control operation: thread and the operation's values. */
static inline void sf_heapq_ctl(struct sf_heapq *q, enum sf_heapq_op op, uint32_t thread,
                                uint64_t ns, uint64_t ptr, uint64_t size)
{
    struct sf_hev *e = sf_heapq_op(q);
    e->ns = ns;
    e->ptr = ptr;
    e->size = size;
    e->path = (uint32_t)op;
    e->tk = thread << 3;
}

/* sf_heap_add_heap and sf_heap_add_thread, queued: the indexes they will
 * have. user: the thread's sf_hthread.user. */
uint32_t sf_heapq_add_heap(struct sf_heapq *q, uint32_t pid, uint32_t image, uint32_t label);
uint32_t sf_heapq_add_thread(struct sf_heapq *q, uint32_t heap, uint32_t pid, uint32_t tid,
                             void *user);

/*
 * Milestones: which functions start a stage (`memory --milestone RE`, and
 * the stage markers `convert --milestone RE` draws), decided once per
 * engine function. re: a compiled regex list (select.h; NULL: none).
 */
struct sf_calls;
struct sf_regex;
struct sf_milestones {
    const struct sf_regex *re;
    uint8_t *cache; /* per engine function: 0 unknown, 1 no, 2 yes */
    size_t cap;
};
/* 1 if the engine's function func is a milestone. */
int sf_milestone(struct sf_milestones *m, struct sf_calls *e, uint32_t func);
void sf_milestones_free(struct sf_milestones *m);

/* A stage marker for Perfetto: an instant event named name on the track
 * track_uuid (a process track) at absolute CLOCK_MONOTONIC ns, written on
 * sequence seq_id, which, like a counter's, has no incremental state (give
 * it one id of its own). Room: PF_SMALL_MAX + strlen(name) (perfetto.h). */
uint8_t *sf_stage_marker(uint8_t *p, uint32_t seq_id, uint64_t ns, uint64_t track_uuid,
                         const char *name);

#endif /* SFTRACE_HEAP_H */
