/*
 * calls.h - the call engine: a log turned into, per thread, a stream of call
 * begins and call ends with a consistent stack. Every command that cares
 * about calls (convert, dump's durations, report, graph, flame, ...) reads
 * the log through this, so the rules below live here only.
 *
 * Rules, per thread (pid, tid) of a process image:
 *   - an entry begins a call, its exit ends it;
 *   - a tail call ends the caller (flag SF_CALL_TAIL); the callee's entry
 *     that follows begins a call at the same depth;
 *   - an exit (or tail call) of a function deeper in the stack first ends
 *     every call above it (SF_CALL_UNFINISHED | SF_CALL_UNWOUND: they were
 *     left by unwinding: an exception, a Rust panic, longjmp);
 *   - unwinding detected at an entry: when the next event after frames were
 *     skipped is an entry of a function that, statically, none of the upper
 *     frames can call but an outer one can (its call site must be in an
 *     outer frame), the frames above that outer one end at that entry
 *     (SF_CALL_UNFINISHED | SF_CALL_UNWOUND); see calls.c for the exact rule;
 *   - an exit with no entry is counted (stats.unmatched) and dropped;
 *   - live control (MARK chunks): at a STOP every open call of the image's
 *     threads ends there (SF_CALL_CLIPPED); records after it and before the
 *     next START are dropped; calls open at a START (their exits come
 *     after it, their entries before) begin there (SF_CALL_CLIPPED) at the
 *     thread's first record after it, found by one more read of the log
 *     (calls.c, the opening scan); on a pipe, or before a --time-range
 *     start, such exits are dropped (stats.cut, not unmatched);
 *   - calls nested deeper than the depth limit (sf_calls_set_max_depth) are
 *     tracked but not delivered; the deepest delivered call counts them
 *     (sf_call.hidden);
 *   - calls still open when the thread exits (THREAD chunk flagged EXITED),
 *     its process image ends (END chunk, or a new PROCESS chunk: exec) or the
 *     log ends are ended there (SF_CALL_UNFINISHED) at the thread's last
 *     event time or later;
 *   - with a time range, every call that overlaps it is delivered, cut at
 *     its edges (SF_CALL_CLIPPED): calls open at its start (known exactly,
 *     from replaying each thread's stack up to the start: calls.c) begin at
 *     the start, also on a thread with no event in the window, and calls
 *     open at its end end there; calls that never end (the thread is still
 *     running when its process or the log ends) end as above, or at the
 *     window end.
 * Timestamps are CLOCK_MONOTONIC ns (logread.h's clock fit), clamped so that
 * they never decrease within a thread (stats.backwards counts the moves).
 *
 * Callbacks for one thread come in that thread's time order; callbacks for
 * different threads interleave in file (chunk) order. Selections
 * (select.h) are applied here: a call the selection drops is never
 * delivered and its time counts as its parent's self time.
 */
#ifndef SFTRACE_CALLS_H
#define SFTRACE_CALLS_H

#include <stdatomic.h>
#include <stdint.h>

#include "logread.h"
#include "select.h"
#include "symbols.h"

/* Call flags */
#define SF_CALL_UNFINISHED 1u /* no matching exit: ended by thread/process/log end or unwinding */
#define SF_CALL_TAIL 2u       /* left by a tail call (its callee follows at the same depth) */
#define SF_CALL_CLIPPED 4u    /* cut by the time range (started before it / ended after it) */
#define SF_CALL_UNWOUND 8u    /* ended by unwinding (exception, panic, longjmp) */
/* With sf_calls_set_outermost: on an end, the call was its function's
 * outermost active call on its thread (no other delivered call of the
 * function was open there): what a recursive function's total counts. */
#define SF_CALL_OUTERMOST 16u

/* One open call on a thread's stack. */
struct sf_cframe {
    uint32_t fid;       /* function id in the thread's image */
    uint32_t func;      /* the engine's global function index (sf_calls_func) */
    uint64_t id;        /* call id, unique in the log, 1, 2, 3... in entry order */
    uint64_t start_ns;  /* CLOCK_MONOTONIC ns */
    uint64_t child_ns;  /* time spent in delivered callees that have ended */
    uint64_t hidden;    /* calls beneath it not delivered for the depth limit */
    uint32_t flags;     /* SF_CALL_CLIPPED when open at the window start */
    uint32_t kept;      /* 1 once its begin was delivered */
    uint32_t depth;     /* delivered depth (0 = outermost kept call) once kept */
    uint32_t state;     /* the engine's (selection) */
    uint64_t parent_id; /* id of the nearest kept ancestor, 0 if none */
};

/* A thread as the consumer sees it. */
struct sf_cthread {
    uint32_t pid, tid;
    const struct sf_image *img; /* current image of pid */
    char name[17];              /* latest known name */
    uint32_t depth;             /* open frames (kept or not) */
    struct sf_cframe *stack;    /* [0] outermost .. [depth-1] innermost */
    uint64_t first_ns, last_ns; /* first and latest event time */
    uint64_t events;            /* function events of this thread so far */
    int exited;                 /* a THREAD chunk flagged EXITED was seen */
    void *user;                 /* the consumer's per-thread pointer (starts NULL) */
};

/* A finished call, given to end(). Its frame is still t->stack[t->depth-1]
 * while end() runs, so a consumer can look at the ancestors. */
struct sf_call {
    uint32_t func;          /* global function index */
    uint32_t depth;         /* 0 = outermost kept call */
    uint64_t id, parent_id; /* parent_id: nearest kept ancestor, 0 = none */
    uint64_t start_ns, end_ns;
    uint64_t self_ns; /* end - start - time in delivered callees */
    uint64_t hidden;  /* calls beneath not delivered for the depth limit */
    uint32_t flags;   /* SF_CALL_* */
};

/* A function as the engine knows it: one per (object file, function index),
 * shared by every process image mapping that file, plus one per unknown fid
 * of an image ("fid:N"). Symbolized when first called. */
struct sf_func {
    const char *name; /* demangled (or 0x... / fid:N when unknown) */
    uint32_t name_len;
    const char *file; /* NULL when no line is known (or --no-lines) */
    uint32_t file_len, line;
    const struct sf_obj *obj; /* NULL for an unknown fid */
    uint32_t index;           /* index in obj->func_addr */
};

/* A begin or an end as ops.calls hands them over (the fast path of
 * consumers that only write them out, such as convert). */
struct sf_crec {
    uint64_t ns;     /* begin: the call's start; end: its end */
    uint32_t func;   /* global function index */
    uint16_t kind;   /* SF_CREC_BEGIN or SF_CREC_END */
    uint16_t flags;  /* end: SF_CALL_* */
    uint64_t hidden; /* end: calls beneath not delivered for the depth limit */
    /* end: the call's start and self time, as struct sf_call has them (so
     * that a consumer needs no stack of its own for them) */
    uint64_t start_ns, self_ns;
};
#define SF_CREC_BEGIN 1
#define SF_CREC_END 2

struct sf_calls_ops {
    /* All optional. ctx is sf_calls_new's ctx. */
    /* A PROCESS chunk (a new image; exec gives the same pid a new one). */
    void (*process)(void *ctx, const struct sf_image *img, uint64_t ns);
    /* An image ended: END chunk (end != NULL), or replaced by a new PROCESS
     * chunk of its pid (end == NULL); after its threads' open calls ended. */
    void (*process_end)(void *ctx, const struct sf_image *img, const struct sf_end *end,
                        uint64_t ns);
    /* A selected thread's first event, and every later change of its name. */
    void (*thread)(void *ctx, struct sf_cthread *t, uint64_t ns);
    /* The thread exited (after its open calls ended); a tid seen again later
     * is a new thread (thread() again). */
    void (*thread_exit)(void *ctx, struct sf_cthread *t, uint64_t ns);
    /* A kept call begins: f == &t->stack[i] (i < t->depth; with
     * --min-duration begins come late, still in stack order). */
    void (*begin)(void *ctx, struct sf_cthread *t, const struct sf_cframe *f);
    void (*end)(void *ctx, struct sf_cthread *t, const struct sf_call *c);
    /* ALLOC, ARGS, RET, LOST records of a selected thread in the window.
     * ARGS come right after their call's begin (not at all for a call that
     * is not kept or, with --min-duration, not kept at once); RET right
     * after its call's end (likewise). ns is the record's time. */
    void (*ext)(void *ctx, struct sf_cthread *t, const struct sf_event *ev, uint64_t ns);
    /* Every raw record of a selected thread in the window, in order, after
     * the engine handled it (dump): entries of kept calls (when their begin
     * is delivered), exits and tail calls of kept calls (c = the call they
     * ended), exits with no entry (c NULL; only without call filters), and
     * ext records. raw_ns is the record's time before clamping (a late
     * begin: the call's start; its ev then has only kind and fid). */
    void (*event)(void *ctx, struct sf_cthread *t, const struct sf_event *ev, int64_t raw_ns,
                  const struct sf_call *c);
    /* A LOST flag on an EVENTS chunk: records were dropped before it. */
    void (*lost)(void *ctx, struct sf_cthread *t, uint64_t ns);
    /* Instead of begin and end (which are then not called): the same in
     * batches of records, in order, one thread's per call; every other
     * callback comes after the records before it were handed over. */
    void (*calls)(void *ctx, struct sf_cthread *t, const struct sf_crec *r, size_t n);
    /* A symbolizer warning, once per object file (default: printed on
     * stderr as "sftrace: warning: MSG"). */
    void (*warning)(void *ctx, const char *msg);
};

struct sf_calls;
/* sel may be NULL (everything); it must outlive the engine. syms names
 * functions (for -F/-N and sf_calls_func); the engine does not own it. */
struct sf_calls *sf_calls_new(struct sf_log *log, struct sf_syms *syms, const struct sf_select *sel,
                              const struct sf_calls_ops *ops, void *ctx);
/* Mark each end whose call was the outermost active one of its function on
 * its thread (SF_CALL_OUTERMOST, in sf_crec.flags and sf_call.flags); with
 * ends_only, batches (ops.calls) hold only end records, for consumers that
 * need nothing of a begin but this (report: one pass over the ends, no
 * stack and no per-thread counts of its own). Before sf_calls_run. */
void sf_calls_set_outermost(struct sf_calls *e, int ends_only);
/* Deepest delivered call depth + 1 (convert: 500); 0 = no limit (default). */
void sf_calls_set_max_depth(struct sf_calls *e, uint32_t max_depth);
/* Called after every EVENTS chunk and every 64th other one (progress
 * display, output error checks); a nonzero return stops the run (-1). */
void sf_calls_set_tick(struct sf_calls *e, int (*tick)(void *ctx), void *ctx);
/* Cores the run's engines leave idle (runcalls.c: CPUs minus the workers
 * still running). The main pass decodes ahead in a thread of its own
 * (logread.h sf_log_set_ahead) once it can take one of them, and gives it
 * back at its end: on two cores, report -j 1 decodes beside its engine,
 * report -j 2 only once one worker is done (four threads on two cores
 * cost more in switches and caches than they gain). Without it (NULL):
 * ahead from the start when the machine has two CPUs or more. */
void sf_calls_set_spare(struct sf_calls *e, _Atomic int *spare);
/* Run over the whole log (sf_log_prescan is done here: do not call it).
 * 0, or -1 on a read error (message in sf_calls_error) or a stop by tick. */
int sf_calls_run(struct sf_calls *e);
const char *sf_calls_error(const struct sf_calls *e);
const struct sf_func *sf_calls_func(struct sf_calls *e, uint32_t func);
/* Name functions funcs[0..n) now (as sf_calls_func would when first
 * asked), in the order cheapest for the symbolizer: by object and address
 * (a few thousand names asked in the order calls first met them cost a
 * cache miss at every step of each symbol search). */
void sf_calls_name_funcs(struct sf_calls *e, const uint32_t *funcs, size_t n);
/* The global function index of function id fid of img (made if new). */
uint32_t sf_calls_lookup(struct sf_calls *e, const struct sf_image *img, uint32_t fid);
uint32_t sf_calls_nfuncs(const struct sf_calls *e);
/* The window origin: the log's first event, ns (0 until known). */
uint64_t sf_calls_origin_ns(const struct sf_calls *e);

struct sf_calls_stats {
    uint64_t events;            /* function events read (in the selection) */
    uint64_t calls;             /* calls delivered (begins) */
    uint64_t unmatched;         /* exits with no entry, dropped */
    uint64_t cut;               /* exits whose entry came before recording started
                                   (MARK START), dropped */
    uint64_t unfinished;        /* delivered calls ended without their exit */
    uint64_t unwound;           /* of which ended by unwinding */
    uint64_t too_deep;          /* calls not delivered for the depth limit */
    uint64_t lost;              /* records lost in recording (LOST records) */
    uint64_t backwards;         /* timestamps moved forward to keep a thread's order */
    uint64_t threads;           /* threads with events in the selection */
    uint64_t processes;         /* process lifetimes (a pid until END; exec keeps it) */
    uint64_t images;            /* PROCESS chunks */
    uint64_t chunks_skipped;    /* EVENTS chunks skipped by the time range, undecoded */
    uint64_t chunks_replayed;   /* EVENTS chunks before the window start read for the
                                   stack there (the rest before it: skipped) */
    uint64_t first_ns, last_ns; /* first and last event time (0 if none) */
};
void sf_calls_stats(const struct sf_calls *e, struct sf_calls_stats *st);
void sf_calls_free(struct sf_calls *e);

#endif /* SFTRACE_CALLS_H */
