/*
 * calls.c - the call engine (calls.h): reads a log through logread.h and
 * turns each thread's entries, exits and tail calls into call begins and
 * ends with one consistent stack, applying the selection (select.h).
 *
 * Passes. Without a time range or a thread-name selection the engine reads
 * the log once (after the reader's prescan). With them it reads it up to
 * three times, each through its own reader:
 *   1. the survey: every chunk header (EVENTS records skipped undecoded,
 *      except the first chunk of each thread, whose first record is the
 *      thread's first event): the log's first event (the window origin),
 *      every name each thread had (a thread is selected by --thread-name if
 *      any of its names matches), and the chunks that empty a thread's
 *      stack (its exit; its process's END, exec or pid reuse), with times;
 *   2. the replay (time range with a start only): the stack rules (entries,
 *      exits, tail calls, the unwinding rule; nothing else: no names, no
 *      output) over each selected thread's records from its start up to its
 *      first record at or after the window start, where its stack is kept:
 *      the calls open at the window start, exactly as a run over the whole
 *      log has them. A thread gets there also when a chunk's tsc_hi (a lower
 *      bound) is after the start, or when its stack is emptied after the
 *      start (it exits or its process ends inside or after the window). The
 *      replay skips, undecoded, every chunk of a thread after it got there
 *      and every chunk whose records are all before the start when a later
 *      chunk empties the thread's stack before the start (threads that
 *      ended before the window); its reader stays open (functions it
 *      resolved point at its objects);
 *   3. the main pass, which starts each thread's stack with the calls the
 *      replay found (flag SF_CALL_CLIPPED, start = window start) at its
 *      first event in the window, or, for a thread with no event in it, when
 *      it ends (exit, its process's end, the window end, the log end), so
 *      that a call spanning the whole window is shown too.
 * Calls open at a START (live control: attach, ctl start, a trace-on
 * trigger) have their exits recorded but not their entries. When the log
 * has START marks (sf_log_starts, from the prescan) an opening scan reads
 * it first (open_scan): the same stack rules over each thread's function
 * records, image by image, finding the exits after each START that match
 * no entry; reversed, they are the calls that were open there. The main
 * pass starts the thread's stack with them at its first record after that
 * START, beginning at the START (flag SF_CALL_CLIPPED, as a call open at a
 * STOP ends there). With a time range that starts after the START, the
 * replay pushes them at that record instead, so they are among the calls
 * open at the window start.
 * Events outside the window are not fed to the main pass's stack rules at
 * all, whether their chunk was skipped or decoded, so skipping changes
 * nothing but the cost. A chunk is skipped undecoded when its flush time (an
 * upper bound of its records' times) is before the window start, or when
 * its thread has already passed the window end (chunks of one thread come
 * in time order), or when its tsc_hi (a lower bound) is after the end. (The
 * previous chunk's flush time is not a lower bound of the next chunk's
 * first record: the runtime's writer thread may flush a buffer after the
 * thread has gone on recording into the next one.)
 *
 * Functions are named (symbolized) when a consumer or -F/-N first asks
 * (sf_calls_func), so the replay and calls never delivered cost no names.
 *
 * Selection state of a frame (sf_cframe.state): low bits ST_*, bits 8..
 * the number of candidate frames at or below it (the delivered depth its
 * next candidate callee gets). A candidate is a call the call-level
 * selection keeps if it lives long enough (--min-duration) and is not past
 * the depth limit; its begin is delivered at once, or, with
 * --min-duration, as soon as an event of the thread comes min_duration
 * after its start (ancestors are older, so they are delivered first).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callgraph.h"
#include "calls.h"
#include "xalloc.h"

#define STACK_MAX (1u << 22) /* frames tracked per thread */
#define UNWIND_MAX 65536u    /* frames searched for a non-top exit */
#define FID_CACHE_MAX (1u << 24)
#define NONE 0xffffffffu
#define QUIET_BITS 16 /* 2 MB, in sets of two: the (caller, callee) pairs of a big program */
#define QUIET_N (1u << QUIET_BITS)

#define ST_CAND 1u    /* a candidate (see above) */
#define ST_SUBDROP 2u /* it and everything beneath it is dropped */
#define ST_INF 4u     /* inside a call matching -F (or -F not given) */
#define ST_HIDDEN 8u  /* dropped for the depth limit (hidden counts it) */
#define ST_SHIFT 8

#define FS_KNOWN 1u
#define FS_NOTRACE 2u
#define FS_FMATCH 4u

struct imgst {
    uint32_t *fid2g; /* function id -> global function, NONE unknown */
    uint32_t cap;
    int w0known;   /* replay: w0ts is known */
    uint64_t w0ts; /* the image's first timestamp at or after the window start */
};

/* The global functions of one object file (shared by every process image
 * that maps it: forks, runs of the same program). */
struct objst {
    struct sf_symobj *so;
    struct sf_callgraph *cg; /* its code's "can call" (NULL: not known) */
    struct sf_cgwalk *cgw;   /* this engine's searches in cg */
    uint32_t nfuncs;
    uint64_t a0, a1; /* first and last function address, to tell files apart */
    uint32_t *g;     /* function index -> global function, NONE unknown */
};

struct proc;

/* sf_calls_set_outermost: the active (delivered, not ended) calls of each
 * function on each thread, to tell a function's outermost active call on a
 * thread. The count lives in the function's struct outer for the thread
 * that owns it (the first to have calls of it active while nobody else
 * had), in the other threads' own struct act: an open-addressing set with
 * backward-shift deletion, so that it holds only what is on their stack.
 * Memory: functions + threads x depth. */
struct outer {
    uint32_t owner, active; /* owner: a struct thr's oid, 0 none */
};
struct act {
    uint32_t *key; /* func + 1, 0 empty */
    uint32_t *cnt;
    uint32_t cap, n; /* cap a power of two */
};

/* Chunks that empty a thread's stack (survey, for the replay's skipping):
 * file offset and time, in file order; cur: the first not before the chunk
 * being looked at. */
struct reset {
    uint64_t off, ns;
};
struct resets {
    struct reset *v;
    size_t n, cap, cur;
};

struct thr {
    struct sf_cthread pub;
    uint32_t cap;
    uint32_t last_fid;
    int declared;    /* thread() was called for this incarnation */
    int counted;     /* counted in stats.threads */
    int past_end;    /* an event after the window end was seen */
    int started;     /* the first event of this incarnation was fed */
    int selected;    /* -1 unknown, 0 no, 1 yes (pid/tid/name) */
    int lastev;      /* 1: last function event began a kept call; 2: ended one */
    uint32_t tail_g; /* function whose tail call was the last function event, else NONE */
    uint32_t pend;   /* lowest index of an undelivered candidate, NONE if none */
    char shown[17];
    uint32_t inc; /* incarnation (THREAD chunks flagged EXITED so far, this pass) */
    /* The replay (window start): the stack at the window start of
     * incarnation chain_inc, outermost first, fids of image chain_img. */
    uint32_t *chain;
    uint32_t nchain, capchain, chain_inc, chain_img;
    int have_chain;      /* the replay found the stack (maybe empty) */
    int reached;         /* replay: this incarnation got to the window start */
    int chain_done;      /* main pass: the chain was pushed (or cannot be any more) */
    struct resets exits; /* survey: its THREAD chunks flagged EXITED */
    /* the opening scan: the calls open at each START (ochain: key image id
     * << 32 | START number in it, fids in exit order, innermost first) */
    struct ochain {
        uint64_t key;
        uint32_t off, n;
    } * och;
    uint32_t noch, capoch;
    uint32_t *ofid, nofid, capofid;
    uint32_t *ostk, nostk, capostk; /* the scan's stack (fids) */
    uint32_t *pstk, npstk, cappstk; /* a forking process's thread: its stack (fids) */
    uint32_t fnext;                 /* ... and the next of its process's forks */
    uint32_t fbot;                  /* ... and the next whose PROCESS time it has not passed */
    uint64_t odone;                 /* main pass: the key whose calls were pushed */
    /* sf_calls_set_outermost: this incarnation's id (struct outer's owner),
     * and its active calls of functions another thread counts */
    uint32_t oid;
    struct act act;
    struct proc *proc;
    struct thr *next_in_proc;
};

struct proc {
    uint32_t pid;
    const struct sf_image *img;
    struct thr *threads;
    struct resets ends; /* survey: its END and PROCESS chunks */
    /* live control (MARK chunks, logfmt.h) of its current image */
    int marked;             /* it has MARKs: its records go through the checks */
    int stopped;            /* recording is stopped: records are dropped */
    uint64_t start_ns;      /* the last START: earlier records are dropped */
    uint64_t cut_ns;        /* the snapshot's cut: later records are dropped */
    uint32_t nstarts;       /* STARTs of its current image so far */
    int seen;               /* an image of it was read in this pass */
    uint32_t fork0, nforks; /* the opening scan: its children's forks (e->forks) */
};

/* A fork, for the opening scan: the child's PROCESS chunk, and the stacks
 * the parent's threads had then (one of them forked). */
struct fork {
    uint32_t pid, ppid;
    uint64_t ns;         /* the child's PROCESS chunk */
    uint64_t key;        /* okey of the child's image at its start (0: not met) */
    uint32_t *ret, nret; /* the frames the child returned through, innermost first */
    uint32_t *stk, nstk; /* the parent's stack at the fork, outermost first */
    /* a child that returned through nothing: the outermost frames of the
     * parent's threads open at its PROCESS time (nbot threads had one) */
    uint32_t bot, nbot;
};

struct sf_calls {
    struct sf_log *log; /* the caller's reader (main pass) */
    struct sf_log *cur; /* the reader of the pass running */
    struct sf_syms *syms;
    const struct sf_select *sel;
    struct sf_calls_ops ops;
    void *ctx;
    int (*tick)(void *);
    void *tick_ctx;
    uint32_t maxd;       /* depth limit, NONE for none */
    int filters;         /* call-level selection */
    int prepass;         /* running the replay (window start): no output */
    struct sf_log *rlog; /* the replay's reader, open until free (functions
                            it resolved point at its objects) */
    uint64_t replayed;   /* EVENTS chunks the replay decoded */
    char err[SF_ERRLEN + 64];

    struct sf_func *funcs;
    uint8_t *fsel;   /* per function: FS_* */
    uint32_t *fobj;  /* per function: index + 1 in objs, 0 for an unknown fid */
    int unwind_on;   /* some object can unwind: check entries (calls.h) */
    uint8_t *anyq;   /* per function: entries of it are left alone under any
                        frame (calls from anywhere can reach it) */
    uint64_t *quiet; /* unwind_on: direct-mapped, top << 32 | g of entries
                        the rule leaves alone (unwind_check) */
    uint32_t nfuncs, capfuncs;
    struct sf_map objmap;  /* struct sf_obj * -> index + 1 in objs */
    struct sf_map filemap; /* struct sf_symobj * -> index + 1 in objs */
    struct objst *objs;
    size_t nobjs, capobjs;
    struct sf_map unkmap; /* image id << 32 | fid -> g + 1 (no object) */
    struct imgst *imgs;
    size_t nimgs;
    struct sf_map thrmap; /* pid << 32 | tid -> index + 1 in thrs */
    struct thr **thrs;
    struct fork *forks; /* the opening scan's, sorted by parent and time */
    uint32_t nforks;
    size_t nthrs, capthrs;
    struct sf_map procmap; /* pid -> index + 1 in procs */
    struct proc **procs;
    size_t nprocs, capprocs;
    uint64_t next_id;
    int outer_on;        /* sf_calls_set_outermost */
    int ends_only;       /* ... and no begin records in batches */
    struct outer *outer; /* per function (capfuncs) */
    uint32_t noid;       /* oids given so far */

    /* the window, absolute ns (set after the survey) */
    int window;
    uint64_t w0, w1;
    uint64_t origin;
    int noskip;              /* SFTRACE_NO_SKIP: decode every chunk (tests) */
    int nounwind;            /* SFTRACE_NO_UNWIND_RULE: no entry rule (tests) */
    struct sf_map namesel;   /* survey: pid << 32 | tid -> 1 + (a name matched) */
    struct sf_map firstseen; /* survey: image id << 32 | tid seen */

    /* the reader's clock fit, copied once it is final */
    int noahead;        /* SFTRACE_NO_AHEAD: no decoding thread (logread.h) */
    _Atomic int *spare; /* sf_calls_set_spare */
    int fastclock;
    struct sf_clockline cline; /* the fit's line (logread.h), once it is final */

    struct sf_call call;   /* the call the last pop delivered */
    struct sf_crec *batch; /* ops.calls: begins and ends not handed over yet ... */
    size_t nb;
    struct sf_cthread *bt; /* ... all of this thread */
    struct sf_calls_stats st;
};

/* ---- time ------------------------------------------------------------------ */

static void clock_from(struct sf_calls *e, struct sf_log *log)
{
    struct sf_clockinfo ci;
    sf_log_clockinfo(log, &ci);
    e->fastclock = 1;
    e->cline = ci.line;
}

/* The fit's line for one image's timestamps, in locals of a loop (the
 * engine's fields would be loaded again after every store of an integer). */
struct fclock {
    int mono, fast;
    struct sf_clockline line;
};

static inline struct fclock fclock_of(const struct sf_calls *e, const struct sf_image *img)
{
    return (struct fclock){img->clock == SF_CLOCK_MONO, e->fastclock, e->cline};
}

/* sf_log_ns without the call: the same fixed-point line (logread.h). */
static inline uint64_t fclock_ns(const struct fclock *k, struct sf_calls *e,
                                 const struct sf_image *img, uint64_t ts)
{
    int64_t ns;
    if (k->mono) {
        ns = (int64_t)ts;
    } else if (__builtin_expect(k->fast, 1)) {
        ns = sf_clock_ns(&k->line, ts);
    } else {
        ns = sf_log_ns(e->cur, img, ts);
    }
    return ns > 0 ? (uint64_t)ns : 0;
}

static inline uint64_t to_ns(struct sf_calls *e, const struct sf_image *img, uint64_t ts)
{
    struct fclock k = fclock_of(e, img);
    return fclock_ns(&k, e, img, ts);
}

/* ---- functions ------------------------------------------------------------ */

static void warn(struct sf_calls *e, const char *msg)
{
    if (e->ops.warning)
        e->ops.warning(e->ctx, msg);
    else
        fprintf(stderr, "sftrace: warning: %s\n", msg);
}

static uint32_t new_func(struct sf_calls *e, const char *name, const char *file, int line,
                         const struct sf_obj *o, uint32_t idx)
{
    if (e->nfuncs >= e->capfuncs) {
        e->capfuncs = e->capfuncs ? 2 * e->capfuncs : 256;
        e->funcs = sf_xrealloc(e->funcs, e->capfuncs * sizeof *e->funcs);
        e->fsel = sf_xrealloc(e->fsel, e->capfuncs);
        e->fobj = sf_xrealloc(e->fobj, e->capfuncs * sizeof *e->fobj);
        e->anyq = sf_xrealloc(e->anyq, e->capfuncs);
        e->outer = sf_xrealloc(e->outer, e->capfuncs * sizeof *e->outer);
    }
    e->outer[e->nfuncs] = (struct outer){0, 0};
    e->fobj[e->nfuncs] = 0;
    e->anyq[e->nfuncs] = 1;
    struct sf_func *f = &e->funcs[e->nfuncs];
    memset(f, 0, sizeof *f);
    e->fsel[e->nfuncs] = 0;
    f->name = name;
    f->name_len = name ? (uint32_t)strlen(name) : 0;
    f->obj = o;
    f->index = idx;
    if (file && *file) {
        f->file = file;
        f->file_len = (uint32_t)strlen(file);
        f->line = line > 0 ? (uint32_t)line : 0;
    }
    return e->nfuncs++;
}

static struct imgst *img_state(struct sf_calls *e, const struct sf_image *img)
{
    if (img->id >= e->nimgs) {
        size_t n = e->nimgs ? e->nimgs : 4;
        while (n <= img->id)
            n *= 2;
        e->imgs = sf_xrealloc(e->imgs, n * sizeof *e->imgs);
        memset(e->imgs + e->nimgs, 0, (n - e->nimgs) * sizeof *e->imgs);
        e->nimgs = n;
    }
    return &e->imgs[img->id];
}

/* Make is->fid2g hold fid: its size stays a power of 2 (at least 256). */
static void grow_fid2g(struct imgst *is, uint32_t fid)
{
    uint32_t n = is->cap ? is->cap : 256;
    while (n <= fid)
        n *= 2;
    is->fid2g = sf_xrealloc(is->fid2g, (size_t)n * sizeof *is->fid2g);
    memset(is->fid2g + is->cap, 0xff, (size_t)(n - is->cap) * sizeof *is->fid2g);
    is->cap = n;
}

/* Global function of fid in img (slow path: symbolize, cache). */
static uint32_t resolve(struct sf_calls *e, struct imgst *is, const struct sf_image *img,
                        uint32_t fid)
{
    uint32_t idx, g;
    struct sf_obj *o = sf_image_obj(img, fid, &idx);
    if (o) {
        uint64_t *slot = sf_map_get(&e->objmap, (uint64_t)(uintptr_t)o, 1);
        if (!*slot) {
            /* the call graph is read in a thread of its own
             * (callgraph.h) while the symbolizer reads the symbols */
            struct sf_callgraph *cg =
                sf_callgraph_load(o->path, o->build_id, o->build_id_len, o->func_addr, o->nfuncs);
            struct sf_symobj *so = sf_syms_object(e->syms, o->path, o->build_id, o->build_id_len);
            uint64_t a0 = o->nfuncs ? o->func_addr[0] : 0;
            uint64_t a1 = o->nfuncs ? o->func_addr[o->nfuncs - 1] : 0;
            uint64_t *fs = sf_map_get(&e->filemap, (uint64_t)(uintptr_t)so, 1);
            struct objst *same = *fs ? &e->objs[*fs - 1] : NULL;
            if (!same && sf_symobj_warning(so)) /* once per file */
                warn(e, sf_symobj_warning(so));
            if (same && same->nfuncs == o->nfuncs && same->a0 == a0 && same->a1 == a1) {
                *slot = *fs;
                sf_callgraph_free(cg); /* same's (a reference to the same graph) */
            } else {
                SF_GROW(e->objs, e->nobjs, e->capobjs);
                struct objst *st = &e->objs[e->nobjs++];
                st->so = so;
                st->nfuncs = o->nfuncs;
                st->a0 = a0;
                st->a1 = a1;
                st->g = sf_xrealloc(NULL, (size_t)o->nfuncs * sizeof *st->g);
                memset(st->g, 0xff, (size_t)o->nfuncs * sizeof *st->g);
                st->cgw = NULL;
                st->cg = cg;
                if (sf_callgraph_unwinds(st->cg) && !e->nounwind && !e->unwind_on) {
                    e->quiet = sf_xrealloc(NULL, QUIET_N * sizeof *e->quiet);
                    memset(e->quiet, 0xff, QUIET_N * sizeof *e->quiet); /* NONE: no g */
                    e->unwind_on = 1;
                }
                *slot = e->nobjs;
                if (!*fs)
                    *fs = e->nobjs;
            }
        }
        struct objst *st = &e->objs[*slot - 1];
        if (st->g[idx] == NONE) { /* named when first asked (name_func) */
            st->g[idx] = new_func(e, NULL, NULL, 0, o, idx);
            e->fobj[st->g[idx]] = (uint32_t)(*slot);
            e->anyq[st->g[idx]] =
                !sf_callgraph_unwinds(st->cg) || sf_callgraph_may_call_any(st->cg, idx);
        }
        g = st->g[idx];
    } else {
        uint64_t *slot = sf_map_get(&e->unkmap, (uint64_t)img->id << 32 | fid, 1);
        if (!*slot) {
            char buf[32];
            snprintf(buf, sizeof buf, "fid:%" PRIu32, fid);
            char *name = sf_xstrdup(buf);
            *slot = (uint64_t)new_func(e, name, NULL, 0, NULL, fid) + 1;
        }
        g = (uint32_t)(*slot - 1);
    }
    if (fid < FID_CACHE_MAX) {
        if (fid >= is->cap)
            grow_fid2g(is, fid);
        is->fid2g[fid] = g;
    }
    return g;
}

static inline uint32_t func_of(struct sf_calls *e, struct imgst *is, const struct sf_image *img,
                               uint32_t fid)
{
    if (__builtin_expect(fid < is->cap, 1)) {
        uint32_t g = is->fid2g[fid];
        if (__builtin_expect(g != NONE, 1))
            return g;
    }
    return resolve(e, is, img, fid);
}

uint32_t sf_calls_lookup(struct sf_calls *e, const struct sf_image *img, uint32_t fid)
{
    return func_of(e, img_state(e, img), img, fid);
}

/* Name a function of an object (and find its line): done the first time a
 * consumer or the selection asks, so that functions seen only by the replay
 * (before the window) or never delivered cost no symbolization. */
static __attribute__((noinline)) void name_func(struct sf_calls *e, uint32_t g)
{
    struct sf_func *f = &e->funcs[g];
    const struct objst *st = &e->objs[e->fobj[g] - 1];
    uint64_t addr = f->obj->func_addr[f->index];
    const char *file = NULL;
    int line = 0;
    f->name = sf_symobj_name(st->so, addr);
    f->name_len = (uint32_t)strlen(f->name);
    if (!(e->sel && e->sel->no_lines) && sf_symobj_srcline(st->so, addr, &file, &line) && file &&
        *file) {
        f->file = file;
        f->file_len = (uint32_t)strlen(file);
        f->line = line > 0 ? (uint32_t)line : 0;
    }
}

const struct sf_func *sf_calls_func(struct sf_calls *e, uint32_t func)
{
    if (func >= e->nfuncs)
        return NULL;
    if (__builtin_expect(!e->funcs[func].name, 0))
        name_func(e, func);
    return &e->funcs[func];
}

struct fkey {
    uint64_t obj, addr;
    uint32_t func;
};

static int by_obj_addr(const void *a, const void *b)
{
    const struct fkey *x = a, *y = b;
    if (x->obj != y->obj)
        return x->obj < y->obj ? -1 : 1;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->func < y->func ? -1 : x->func > y->func;
}

void sf_calls_name_funcs(struct sf_calls *e, const uint32_t *funcs, size_t n)
{
    struct fkey *k = sf_xrealloc(NULL, (n ? n : 1) * sizeof *k);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t g = funcs[i];
        if (g >= e->nfuncs || e->funcs[g].name)
            continue;
        const struct sf_func *f = &e->funcs[g];
        k[m++] = (struct fkey){e->fobj[g], f->obj->func_addr[f->index], g};
    }
    qsort(k, m, sizeof *k, by_obj_addr);
    for (size_t i = 0; i < m; i++)
        name_func(e, k[i].func);
    free(k);
}

uint32_t sf_calls_nfuncs(const struct sf_calls *e)
{
    return e->nfuncs;
}

/* The -F / -N verdicts of a function, computed once. */
static inline unsigned func_sel(struct sf_calls *e, uint32_t g)
{
    unsigned s = e->fsel[g];
    if (!s) {
        s = FS_KNOWN;
        const char *name = sf_calls_func(e, g)->name;
        if (sf_regex_match(e->sel->notrace, name))
            s |= FS_NOTRACE;
        if (!e->sel->funcs || sf_regex_match(e->sel->funcs, name))
            s |= FS_FMATCH;
        e->fsel[g] = (uint8_t)s;
    }
    return s;
}

/* ---- processes and threads ------------------------------------------------ */

static struct proc *get_proc(struct sf_calls *e, uint32_t pid)
{
    uint64_t *slot = sf_map_get(&e->procmap, pid, 1);
    if (!*slot) {
        struct proc *p = sf_xcalloc(1, sizeof *p);
        p->pid = pid;
        p->cut_ns = UINT64_MAX;
        SF_GROW(e->procs, e->nprocs, e->capprocs);
        e->procs[e->nprocs++] = p;
        *slot = e->nprocs;
    }
    return e->procs[*slot - 1];
}

static struct thr *get_thr(struct sf_calls *e, uint32_t pid, uint32_t tid)
{
    uint64_t *slot = sf_map_get(&e->thrmap, (uint64_t)pid << 32 | tid, 1);
    if (!*slot) {
        struct thr *t = sf_xcalloc(1, sizeof *t);
        t->pub.pid = pid;
        t->pub.tid = tid;
        t->last_fid = SF_FID_NONE;
        t->selected = -1;
        t->pend = NONE;
        t->tail_g = NONE;
        t->oid = ++e->noid;
        t->proc = get_proc(e, pid);
        t->next_in_proc = t->proc->threads;
        t->proc->threads = t;
        SF_GROW(e->thrs, e->nthrs, e->capthrs);
        e->thrs[e->nthrs++] = t;
        *slot = e->nthrs;
    }
    return e->thrs[*slot - 1];
}

static int thread_selected(struct sf_calls *e, struct thr *t)
{
    if (t->selected < 0) {
        const struct sf_select *s = e->sel;
        int ok = sf_select_pid(s, t->pub.pid) && sf_select_tid(s, t->pub.tid);
        if (ok && s && s->thread_name) {
            uint64_t *v = sf_map_get(&e->namesel, (uint64_t)t->pub.pid << 32 | t->pub.tid, 0);
            ok = v ? *v == 2 : sf_select_thread_name(s, "");
        }
        t->selected = ok;
    }
    return t->selected;
}

/* ---- the stack ------------------------------------------------------------- */

static uint32_t act_slot(const struct act *a, uint32_t func)
{
    uint32_t m = a->cap - 1, i = (func * 0x9E3779B1u) & m;
    while (a->key[i] && a->key[i] != func + 1)
        i = (i + 1) & m;
    return i;
}

static void act_grow(struct act *a)
{
    struct act b = {0};
    b.cap = a->cap ? 2 * a->cap : 16;
    b.key = sf_xcalloc(b.cap, sizeof *b.key);
    b.cnt = sf_xcalloc(b.cap, sizeof *b.cnt);
    for (uint32_t i = 0; i < a->cap; i++)
        if (a->key[i]) {
            uint32_t j = act_slot(&b, a->key[i] - 1);
            b.key[j] = a->key[i];
            b.cnt[j] = a->cnt[i];
        }
    b.n = a->n;
    free(a->key);
    free(a->cnt);
    *a = b;
}

static void act_inc(struct act *a, uint32_t func)
{
    if (2 * (a->n + 1) > a->cap)
        act_grow(a);
    uint32_t i = act_slot(a, func);
    if (!a->key[i]) {
        a->key[i] = func + 1;
        a->cnt[i] = 0;
        a->n++;
    }
    a->cnt[i]++;
}

static int act_has(const struct act *a, uint32_t func)
{
    return a->n && a->key[act_slot(a, func)];
}

/* One active call of func fewer; returns how many are left. */
static uint32_t act_dec(struct act *a, uint32_t func)
{
    if (!a->n)
        return 0;
    uint32_t m = a->cap - 1, i = act_slot(a, func);
    if (!a->key[i])
        return 0;
    if (--a->cnt[i])
        return a->cnt[i];
    /* delete, shifting later members of the cluster back */
    a->key[i] = 0;
    a->n--;
    for (uint32_t j = (i + 1) & m; a->key[j]; j = (j + 1) & m) {
        uint32_t home = ((a->key[j] - 1) * 0x9E3779B1u) & m;
        /* can j's entry move to i? yes unless home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            a->key[i] = a->key[j];
            a->cnt[i] = a->cnt[j];
            a->key[j] = 0;
            i = j;
        }
    }
    return 0;
}

static void act_free(struct act *a)
{
    free(a->key);
    free(a->cnt);
    memset(a, 0, sizeof *a);
}

/* A delivered call of g begins on t (sf_calls_set_outermost). */
static inline void outer_begin(struct sf_calls *e, struct thr *t, uint32_t g)
{
    struct outer *o = &e->outer[g];
    if (o->owner == t->oid) {
        o->active++;
    } else if (!o->active && !act_has(&t->act, g)) {
        o->owner = t->oid; /* nobody has it active: t counts here now */
        o->active = 1;
    } else {
        act_inc(&t->act, g);
    }
}

/* It ends: SF_CALL_OUTERMOST if no other call of g is active on t. */
static inline uint32_t outer_end(struct sf_calls *e, struct thr *t, uint32_t g)
{
    struct outer *o = &e->outer[g];
    uint32_t left = o->owner == t->oid && o->active ? --o->active : act_dec(&t->act, g);
    return left ? 0 : SF_CALL_OUTERMOST;
}

/* outer_begin() then outer_end() of a call with nothing delivered inside
 * it: the flag, with no store (the counts would come back to where they
 * were; that a thread may take the count of g over from its owner when
 * the owner has none active changes no answer). */
static inline uint32_t outer_leaf(struct sf_calls *e, struct thr *t, uint32_t g)
{
    const struct outer *o = &e->outer[g];
    uint32_t left = o->owner == t->oid ? o->active : (uint32_t)act_has(&t->act, g);
    return left ? 0 : SF_CALL_OUTERMOST;
}

#define BATCH 1024 /* records: 40 kB, written and read while in L1 */

static void flush_batch(struct sf_calls *e)
{
    if (e->nb) {
        e->ops.calls(e->ctx, e->bt, e->batch, e->nb);
        e->nb = 0;
    }
}

/* Records made from now on are t's (the batch holds one thread's). */
static inline void batch_thread(struct sf_calls *e, struct thr *t)
{
    if (e->nb && e->bt != &t->pub)
        flush_batch(e);
    e->bt = &t->pub;
}

static inline struct sf_crec *new_rec(struct sf_calls *e)
{
    if (__builtin_expect(e->nb == BATCH, 0))
        flush_batch(e);
    return &e->batch[e->nb++];
}

/* The begin of a kept call; raw: the entry's time as recorded (ev: the
 * entry record, NULL for a late begin or a call open at the window start). */
static void deliver(struct sf_calls *e, struct thr *t, struct sf_cframe *f,
                    const struct sf_event *ev, uint64_t raw)
{
    f->kept = 1;
    e->st.calls++;
    if (e->outer_on)
        outer_begin(e, t, f->func);
    if (e->batch) {
        if (!e->ends_only) {
            struct sf_crec *r = new_rec(e);
            r->ns = f->start_ns;
            r->func = f->func;
            r->kind = SF_CREC_BEGIN;
        }
    } else if (e->ops.begin) {
        e->ops.begin(e->ctx, &t->pub, f);
    }
    if (e->ops.event && !(f->flags & SF_CALL_CLIPPED)) {
        struct sf_event syn;
        if (!ev) {
            memset(&syn, 0, sizeof syn);
            syn.kind = SF_KIND_ENTRY;
            syn.fid = f->fid;
            ev = &syn;
        }
        e->ops.event(e->ctx, &t->pub, ev, (int64_t)(ev == &syn ? f->start_ns : raw), NULL);
    }
}

/* With --min-duration: deliver the begins of candidates that have lived
 * min_duration by ns (lowest first: ancestors are older). */
static void age(struct sf_calls *e, struct thr *t, uint64_t ns)
{
    uint64_t min = e->sel->min_duration_ns;
    uint32_t i = t->pend;
    while (i < t->pub.depth) {
        struct sf_cframe *f = &t->pub.stack[i];
        if (f->state & ST_SUBDROP) {
            i = t->pub.depth; /* nothing above it can be kept */
            break;
        }
        if ((f->state & ST_CAND) && !f->kept) {
            if (ns - f->start_ns < min)
                break;
            deliver(e, t, f, NULL, 0);
        }
        i++;
    }
    t->pend = i < t->pub.depth ? i : NONE;
}

/* Decide what the selection makes of the frame just pushed at index i. */
static int decide(struct sf_calls *e, struct thr *t, uint32_t i, struct sf_cframe *f)
{
    struct sf_cframe *p = i ? &t->pub.stack[i - 1] : NULL;
    if (!e->filters) {
        if (i < e->maxd) {
            f->depth = i;
            f->parent_id = p ? p->id : 0;
            f->state = ST_CAND | ST_INF | (i + 1) << ST_SHIFT;
            return 1;
        }
        /* the frame at depth maxd-1 counts what is hidden below it */
        t->pub.stack[e->maxd - 1].hidden++;
        e->st.too_deep++;
        f->state = ST_SUBDROP | ST_HIDDEN;
        return 0;
    }
    if (p && (p->state & ST_SUBDROP)) {
        f->state = p->state;
        if (p->state & ST_HIDDEN) {
            f->hidden = p->hidden; /* index of the frame that counts it */
            t->pub.stack[f->hidden].hidden++;
            e->st.too_deep++;
        }
        return 0;
    }
    uint32_t cnext = p ? p->state >> ST_SHIFT : 0;
    unsigned inf = p ? p->state & ST_INF : 0;
    unsigned fs = func_sel(e, f->func);
    if (fs & FS_NOTRACE) {
        f->state = ST_SUBDROP;
        return 0;
    }
    if (!inf) {
        if (!(fs & FS_FMATCH)) {
            f->state = cnext << ST_SHIFT; /* callees may still match -F */
            return 0;
        }
        inf = ST_INF;
    }
    if (e->sel->max_depth >= 0 && cnext > (uint32_t)e->sel->max_depth) {
        f->state = ST_SUBDROP;
        return 0;
    }
    if (cnext >= e->maxd) {
        f->hidden = i - 1; /* the parent is the candidate at depth maxd-1 */
        t->pub.stack[i - 1].hidden++;
        e->st.too_deep++;
        f->state = ST_SUBDROP | ST_HIDDEN;
        return 0;
    }
    f->depth = cnext;
    f->parent_id = p && (p->state & ST_CAND) ? p->id : 0;
    f->state = ST_CAND | inf | (cnext + 1) << ST_SHIFT;
    if (e->sel->min_duration_ns) {
        if (t->pend == NONE)
            t->pend = i;
        return 0;
    }
    return 1;
}

static inline struct sf_cframe *push(struct sf_calls *e, struct thr *t, uint32_t fid, uint32_t g,
                                     uint64_t ns)
{
    if (__builtin_expect(t->pub.depth == t->cap, 0)) {
        if (t->cap >= STACK_MAX) {
            e->st.too_deep++;
            return NULL;
        }
        t->cap = t->cap ? 2 * t->cap : 64;
        t->pub.stack = sf_xrealloc(t->pub.stack, (size_t)t->cap * sizeof *t->pub.stack);
    }
    struct sf_cframe *f = &t->pub.stack[t->pub.depth++];
    f->fid = fid;
    f->func = g;
    f->id = ++e->next_id;
    f->start_ns = ns;
    f->child_ns = 0;
    f->hidden = 0;
    f->flags = 0;
    f->kept = 0;
    return f;
}

/* pop() for everything but a kept call with a batch: NULL if the frame was
 * not kept, else the call (e->call). */
static __attribute__((noinline)) const struct sf_call *pop_slow(struct sf_calls *e, struct thr *t,
                                                                uint64_t ns, uint32_t flags)
{
    uint32_t i = t->pub.depth - 1;
    struct sf_cframe *f = &t->pub.stack[i];
    const struct sf_call *c = NULL;
    if (f->kept) {
        uint64_t dur = ns - f->start_ns;
        struct sf_call *k = &e->call;
        if (e->outer_on)
            flags |= outer_end(e, t, f->func);
        if (flags & SF_CALL_UNFINISHED) {
            e->st.unfinished++;
            if (flags & SF_CALL_UNWOUND)
                e->st.unwound++;
        }
        if (e->batch) {
            struct sf_crec *r = new_rec(e);
            r->ns = ns;
            r->func = f->func;
            r->kind = SF_CREC_END;
            r->flags = (uint16_t)(flags | f->flags);
            r->hidden = f->hidden;
            r->start_ns = f->start_ns;
            r->self_ns = dur - f->child_ns;
        } else {
            k->func = f->func;
            k->depth = f->depth;
            k->id = f->id;
            k->parent_id = f->parent_id;
            k->start_ns = f->start_ns;
            k->end_ns = ns;
            k->self_ns = dur - f->child_ns;
            k->hidden = f->hidden;
            k->flags = flags | f->flags;
            if (e->ops.end)
                e->ops.end(e->ctx, &t->pub, k);
        }
        if (i && f[-1].kept)
            f[-1].child_ns += dur;
        c = k;
    }
    t->pub.depth = i;
    if (t->pend != NONE && t->pend >= i)
        t->pend = NONE;
    return c;
}

/* End the top frame of t at ns. Returns the call delivered (with a batch:
 * &e->call, not filled in), or NULL. */
static inline const struct sf_call *pop(struct sf_calls *e, struct thr *t, uint64_t ns,
                                        uint32_t flags)
{
    uint32_t i = t->pub.depth - 1;
    struct sf_cframe *f = &t->pub.stack[i];
    if (__builtin_expect(!f->kept || !e->batch || (flags & ~SF_CALL_TAIL) || f->flags ||
                             e->nb == BATCH || t->pend != NONE,
                         0))
        return pop_slow(e, t, ns, flags);
    struct sf_crec *r = &e->batch[e->nb++];
    r->ns = ns;
    r->func = f->func;
    uint64_t dur = ns - f->start_ns;
    r->kind = SF_CREC_END;
    r->flags = (uint16_t)(flags | (e->outer_on ? outer_end(e, t, f->func) : 0));
    r->hidden = f->hidden;
    r->start_ns = f->start_ns;
    r->self_ns = dur - f->child_ns;
    if (i && f[-1].kept)
        f[-1].child_ns += dur;
    t->pub.depth = i;
    return &e->call;
}

/* The replay got t to the window start (an event at or after it, a chunk
 * that starts after it, or the end of its stack after it): its stack is the
 * calls open there, kept for the main pass (the first incarnation to get
 * there: a later one starts after it). */
static void snapshot(struct sf_calls *e, struct thr *t)
{
    (void)e;
    t->reached = 1;
    if (t->have_chain)
        return;
    t->have_chain = 1;
    t->chain_inc = t->inc;
    t->chain_img = t->pub.img ? t->pub.img->id : 0;
    t->nchain = 0;
    for (uint32_t i = 0; i < t->pub.depth; i++) {
        SF_GROW(t->chain, t->nchain, t->capchain);
        t->chain[t->nchain++] = t->pub.stack[i].fid;
    }
}

/* End every open frame of t (the thread, its process or the log ended:
 * flags SF_CALL_UNFINISHED; recording stopped: SF_CALL_CLIPPED) at ns, or
 * its last event time if later; past the window end: at the end. */
static void end_frames(struct sf_calls *e, struct thr *t, uint64_t ns, uint32_t flags)
{
    if (e->prepass) { /* the replay: the calls end here; open at the window start? */
        if (!t->reached && t->pub.depth && ns >= e->w0)
            snapshot(e, t);
        t->pub.depth = 0;
        return;
    }
    batch_thread(e, t);
    if (ns < t->pub.last_ns)
        ns = t->pub.last_ns;
    if (e->window && (ns > e->w1 || t->past_end)) {
        ns = e->w1 > t->pub.last_ns ? e->w1 : t->pub.last_ns;
        flags = SF_CALL_CLIPPED;
    }
    t->pub.last_ns = ns;
    if (ns > e->st.last_ns && t->started)
        e->st.last_ns = ns;
    if (e->sel && e->sel->min_duration_ns && t->pend != NONE)
        age(e, t, ns);
    while (t->pub.depth)
        pop(e, t, ns, flags);
    flush_batch(e);
}

static void close_thread(struct sf_calls *e, struct thr *t, uint64_t ns)
{
    end_frames(e, t, ns, SF_CALL_UNFINISHED);
}

/* Main pass: the replay found calls of this incarnation of t open at the
 * window start, not pushed yet. */
static inline int chain_due(const struct sf_calls *e, const struct thr *t)
{
    return !e->prepass && t->nchain && !t->chain_done && t->chain_inc == t->inc;
}

/* A call already open at ns (a window start, a START) begins there, cut
 * (SF_CALL_CLIPPED). -1 if the stack is full. */
static int push_open(struct sf_calls *e, struct thr *t, struct imgst *is,
                     const struct sf_image *img, uint32_t fid, uint64_t ns)
{
    struct sf_cframe *f = push(e, t, fid, func_of(e, is, img, fid), ns);
    if (!f)
        return -1;
    f->flags = SF_CALL_CLIPPED;
    if (decide(e, t, t->pub.depth - 1, f))
        deliver(e, t, f, NULL, 0);
    return 0;
}

/* The thread's first event: declare it, and (window) push the calls open at
 * the window start. */
static void start_thread(struct sf_calls *e, struct thr *t, uint64_t ns)
{
    int chain = chain_due(e, t);
    if (chain && e->w0 < ns)
        ns = e->w0; /* the calls open at the window start begin there */
    t->started = 1;
    t->pub.first_ns = ns;
    t->pub.last_ns = ns;
    if (!e->st.first_ns || ns < e->st.first_ns)
        e->st.first_ns = ns;
    if (!t->counted) {
        t->counted = 1;
        e->st.threads++;
    }
    if (!e->prepass && !t->declared) {
        t->declared = 1;
        memcpy(t->shown, t->pub.name, sizeof t->shown);
        if (e->ops.thread)
            (flush_batch(e), e->ops.thread(e->ctx, &t->pub, ns));
    }
    if (chain) {
        t->chain_done = 1;
        const struct sf_image *img = sf_log_image_at(e->cur, t->chain_img);
        struct imgst *is = img_state(e, img);
        uint64_t w0 = e->w0 < ns ? e->w0 : ns;
        for (uint32_t k = 0; k < t->nchain; k++)
            if (push_open(e, t, is, img, t->chain[k], w0) != 0)
                break;
    }
}

/* Main pass: t is about to end (it exited, its process ended, it passed the
 * window end, the log ended) and has calls open at the window start it has
 * not pushed: it had no event in the window. Start it at the window start
 * first, so that those calls are shown. */
static void start_due(struct sf_calls *e, struct thr *t)
{
    if (t->started || !chain_due(e, t) || t->chain_img >= sf_log_nimages(e->cur))
        return;
    if (!t->pub.img)
        t->pub.img = sf_log_image_at(e->cur, t->chain_img);
    batch_thread(e, t);
    start_thread(e, t, e->w0);
}

/* The set of key in e->quiet: two slots, the one used last first. */
static inline uint64_t *quiet_set(struct sf_calls *e, uint64_t key)
{
    return &e->quiet[((key * 0x9e3779b97f4a7c15u) >> (64 - QUIET_BITS)) & ~(uint64_t)1];
}

/* 1 if an entry of g under a frame of top is known to be left alone by the
 * rule: whether it is depends on the two functions only (their objects,
 * its call graph), so the common case is a compare or two. */
static inline int unwind_quiet(struct sf_calls *e, uint32_t top, uint32_t g)
{
    uint64_t key = (uint64_t)top << 32 | g;
    const uint64_t *q = quiet_set(e, key);
    return q[0] == key || q[1] == key;
}

/*
 * The unwinding rule at an entry of function g (calls.h): if the code of
 * the function on top of the stack cannot call g (callgraph.h) but that of
 * an outer frame of the same object file can, the frames above the
 * innermost such frame were left by unwinding before this entry: they end
 * here. Nothing is decided across object files (a frame of another object
 * in between stops the search), or when no outer frame can call g.
 * Entries it leaves alone whatever the outer frames are (decided by the
 * top frame's function and g) are remembered in e->quiet.
 */
static __attribute__((noinline)) void unwind_check(struct sf_calls *e, struct thr *t, uint32_t g,
                                                   uint64_t ns)
{
    struct sf_cframe *s = t->pub.stack;
    uint32_t d = t->pub.depth, ob = e->fobj[g], top = s[d - 1].func;
    struct sf_callgraph *cg = ob ? e->objs[ob - 1].cg : NULL;
    if (!ob || e->fobj[top] != ob || !sf_callgraph_unwinds(cg) ||
        sf_callgraph_may_call(cg, &e->objs[ob - 1].cgw, e->funcs[top].index, e->funcs[g].index)) {
        uint64_t key = (uint64_t)top << 32 | g, *q = quiet_set(e, key);
        q[1] = q[0];
        q[0] = key;
        return;
    }
    uint32_t callee = e->funcs[g].index;
    /* right after a tail call of T, g may be what T jumped to: it runs in
     * T's place, beneath the frame that called T (which cannot call g); T
     * of another object jumps to g by name (plpgsql's error callback ending
     * in errcontext) */
    const char *gname = sf_callgraph_export_name(cg, callee);
    if (t->tail_g != NONE) {
        uint32_t to = e->fobj[t->tail_g];
        if (to == ob &&
            sf_callgraph_may_call(cg, &e->objs[ob - 1].cgw, e->funcs[t->tail_g].index, callee))
            return;
        if (to && to != ob && gname &&
            sf_callgraph_may_call_import(e->objs[to - 1].cg, &e->objs[to - 1].cgw,
                                         e->funcs[t->tail_g].index, gname))
            return;
    }
    uint32_t stop = d > UNWIND_MAX ? d - UNWIND_MAX : 0;
    int foreign = 0;
    for (uint32_t k = d - 1; k-- > stop;) {
        uint32_t fo = e->fobj[s[k].func];
        if (fo != ob) {
            /* a frame of another object: where the longjmp landed if it
             * calls g by name through its PLT (plpgsql.so's PG_CATCH
             * calling the backend's CopyErrorData); else the search goes
             * on through that object's frames only */
            if (fo && gname &&
                sf_callgraph_may_call_import(e->objs[fo - 1].cg, &e->objs[fo - 1].cgw,
                                             e->funcs[s[k].func].index, gname)) {
                while (t->pub.depth > k + 1)
                    pop(e, t, ns, SF_CALL_UNFINISHED | SF_CALL_UNWOUND);
                return;
            }
            foreign = 1;
            continue;
        }
        if (foreign)
            return; /* back in g's object beyond another's frames: not decided */
        if (sf_callgraph_may_call(cg, &e->objs[ob - 1].cgw, e->funcs[s[k].func].index, callee)) {
            while (t->pub.depth > k + 1)
                pop(e, t, ns, SF_CALL_UNFINISHED | SF_CALL_UNWOUND);
            return;
        }
    }
}

/* The rule at an entry of g (t's stack before the push). */
static inline void unwind_rule(struct sf_calls *e, struct thr *t, uint32_t g, uint64_t ns)
{
    if (__builtin_expect(e->unwind_on, 0) && t->pub.depth >= 2 && !e->anyq[g] &&
        !unwind_quiet(e, t->pub.stack[t->pub.depth - 1].func, g))
        unwind_check(e, t, g, ns);
}

static inline void on_entry(struct sf_calls *e, struct thr *t, struct imgst *is,
                            const struct sf_image *img, const struct sf_event *ev, uint64_t ns,
                            uint64_t raw)
{
    uint32_t g = func_of(e, is, img, ev->fid);
    unwind_rule(e, t, g, ns);
    t->tail_g = NONE;
    struct sf_cframe *f = push(e, t, ev->fid, g, ns);
    t->lastev = 0;
    if (__builtin_expect(!f || e->prepass, 0))
        return;
    uint32_t i = t->pub.depth - 1;
    if (__builtin_expect(!e->filters && i < e->maxd, 1)) {
        /* the common case, decide() and deliver() inline */
        f->depth = i;
        f->parent_id = i ? f[-1].id : 0;
        f->state = ST_CAND | ST_INF | (i + 1) << ST_SHIFT;
        f->kept = 1;
        e->st.calls++;
        t->lastev = 1;
        if (e->outer_on)
            outer_begin(e, t, g);
        if (e->batch) {
            if (!e->ends_only) {
                struct sf_crec *r = new_rec(e);
                r->ns = ns;
                r->func = f->func;
                r->kind = SF_CREC_BEGIN;
            }
        } else if (e->ops.begin) {
            e->ops.begin(e->ctx, &t->pub, f);
        }
        if (__builtin_expect(e->ops.event != NULL, 0))
            e->ops.event(e->ctx, &t->pub, ev, (int64_t)raw, NULL);
        return;
    }
    if (decide(e, t, i, f)) {
        deliver(e, t, f, ev, raw);
        t->lastev = 1;
    }
}

/* An exit or tail call of fid at ns: the call it ends, or NULL. */
static inline const struct sf_call *on_leave(struct sf_calls *e, struct thr *t, uint32_t fid,
                                             uint64_t ns, uint32_t flags, int *matched)
{
    uint32_t depth = t->pub.depth;
    struct sf_cframe *s = t->pub.stack;
    *matched = 1;
    if (__builtin_expect(depth && s[depth - 1].fid == fid, 1))
        return pop(e, t, ns, flags);
    uint32_t stop = depth > UNWIND_MAX ? depth - UNWIND_MAX : 0;
    for (uint32_t d = depth; d-- > stop;) {
        if (s[d].fid == fid) {
            while (t->pub.depth > d + 1)
                pop(e, t, ns, SF_CALL_UNFINISHED | SF_CALL_UNWOUND);
            return pop(e, t, ns, flags);
        }
    }
    *matched = 0;
    if (t->proc->marked)
        e->st.cut++; /* its entry came before recording started */
    else
        e->st.unmatched++;
    return NULL;
}

/* ---- chunks ------------------------------------------------------------------ */

/* One record of t at ns (raw: before clamping), after the window and the
 * clock were dealt with. */
static inline void one_event(struct sf_calls *e, struct thr *t, struct imgst *is,
                             const struct sf_image *img, const struct sf_event *ev, uint64_t ns,
                             uint64_t raw)
{
    const struct sf_call *call = NULL;
    int matched;
    switch (ev->kind) {
    case SF_KIND_ENTRY:
        on_entry(e, t, is, img, ev, ns, raw); /* the event callback comes with the begin */
        return;
    case SF_KIND_EXIT:
    case SF_KIND_TAIL:
        t->tail_g = ev->kind == SF_KIND_TAIL && t->pub.depth &&
                            t->pub.stack[t->pub.depth - 1].fid == ev->fid
                        ? t->pub.stack[t->pub.depth - 1].func
                        : NONE;
        call = on_leave(e, t, ev->fid, ns, ev->kind == SF_KIND_TAIL ? SF_CALL_TAIL : 0, &matched);
        t->lastev = call ? 2 : 0;
        if (__builtin_expect(e->ops.event != NULL, 0) && !e->prepass &&
            (call || (!matched && !e->filters)))
            e->ops.event(e->ctx, &t->pub, ev, (int64_t)raw, call);
        return;
    default:
        if (e->prepass)
            return;
        if (ev->sub == SF_EXT_LOST)
            e->st.lost += ev->nwords ? ev->v[0] : 0;
        /* a KEY of an argument belongs to the entry before, of rax to the exit */
        int after_entry = ev->sub == SF_EXT_ARGS || (ev->sub == SF_EXT_KEY && ev->arg < SF_KEY_RET);
        int after_exit = ev->sub == SF_EXT_RET || (ev->sub == SF_EXT_KEY && ev->arg == SF_KEY_RET);
        int attached = (!after_entry || t->lastev == 1) && (!after_exit || t->lastev == 2);
        if (e->ops.ext && attached)
            (flush_batch(e), e->ops.ext(e->ctx, &t->pub, ev, ns));
        if (e->ops.event && (attached || !e->filters))
            e->ops.event(e->ctx, &t->pub, ev, (int64_t)raw, NULL);
        return;
    }
}

/*
 * The records of a chunk in the common case of a consumer taking batches
 * (convert) with no selection, window or event callback: an entry under
 * the depth limit (that the unwinding rule leaves alone) and an exit or
 * tail call of the top frame are done here with the hot state in locals
 * (the general code reloads it from memory after every store); anything
 * else goes through one_event() with the state written back. The same
 * rules as push(), decide() and pop().
 *
 * The decoded records are taken in runs of at most as many records as the
 * batch has room for (a record adds at most one batch record), so that
 * nothing in a run checks the batch; an EXT record, a record beyond the
 * run, or anything unusual goes to the general code. fast_loop is inlined
 * with constant flags (fast_events below) for the configurations the
 * commands use, so that a run of report does not test what only convert
 * does and the reverse: about a tenth of the engine's instructions.
 */
static inline __attribute__((always_inline)) void
fast_loop(struct sf_calls *e, struct thr *t, struct imgst *is, const struct sf_image *img,
          struct sf_evdec *d, uint64_t *lastp, uint64_t *nevp, const int outer, const int ends_only,
          const int unwind, const int tsc)
{
    struct sf_event ev;
    uint64_t last = *lastp, nev = 0, backwards = 0, calls = 0;
    struct sf_crec *b = e->batch;
    size_t nb = e->nb;
    uint64_t id = e->next_id;
    /* the thread's stack in locals: stores to the frames and the batch may
     * alias its fields, so the compiler would reload them after each */
    struct sf_cframe *stack = t->pub.stack;
    uint32_t depth = t->pub.depth;
    uint32_t lim = t->cap < e->maxd ? t->cap : e->maxd; /* below both: a push needs no check */
    int lastev = t->lastev;
    uint32_t tail_g = t->tail_g;
    /* function records of a packed chunk are read straight from the
     * records the reader decoded when it checked the chunk (the fields
     * logread.c's next_packed gives); anything else through sf_evdec_next */
    const struct sf_decoded *r = d->dec, *rend = d->dend;
    uint32_t last_fid = d->last_fid;
    const struct fclock clk = fclock_of(e, img);
    const struct sf_clockline line = clk.line;
/* the time of ts, at least floor (else counted in backwards) */
#define FAST_NS(ts, floor)                                                                         \
    ({                                                                                             \
        int64_t v_ = tsc ? sf_clock_ns_std(&line, (ts)) : 0;                                       \
        uint64_t ns_ = !tsc ? fclock_ns(&clk, e, img, (ts)) : v_ > 0 ? (uint64_t)v_ : 0;           \
        if (__builtin_expect(ns_ < (floor), 0)) {                                                  \
            backwards++;                                                                           \
            ns_ = (floor);                                                                         \
        }                                                                                          \
        ns_;                                                                                       \
    })
    for (;;) {
        uint64_t ts, ns;
        uint32_t kind, fid;
        int full = 0;
        const struct sf_decoded *stop = r;
        if (__builtin_expect(r < rend, 1))
            stop = (size_t)(rend - r) < BATCH - nb ? rend : r + (BATCH - nb);
        while (__builtin_expect(r < stop, 1)) {
            /* the function table's entry of a record further on: spread
             * over thousands of functions, it is often not in cache (the
             * reader pads the records: logread.c SF_DECODED_PAD; the mask
             * keeps the address in the table, which grows by doubling) */
            __builtin_prefetch(&is->fid2g[r[16].fid & (is->cap - 1)]);
            ts = r->t;
            kind = sf_dec_kind(r);
            fid = r->fid;
            if (kind == SF_KIND_ENTRY) {
                ns = FAST_NS(ts, last);
                uint32_t g;
                /* the unwinding rule's common case inline: an entry it
                 * leaves alone (unwind_quiet); the general code asks it
                 * otherwise */
                if (!(__builtin_expect(depth < lim, 1) &&
                      (g = func_of(e, is, img, fid),
                       !unwind || depth < 2 || e->anyq[g] ||
                           unwind_quiet(e, stack[depth - 1].func, g))))
                    goto general;
                last_fid = fid;
                last = ns;
                r++;
                nev++;
                /* a leaf: the next record is its own exit or tail (a pair
                 * of encoding 2, half the calls of a big program): begun
                 * and ended here, as push() then pop() would, with no frame */
                uint32_t k2;
                if (r < stop && r->fid == fid &&
                    ((k2 = sf_dec_kind(r)) == SF_KIND_EXIT || k2 == SF_KIND_TAIL)) {
                    uint64_t ns2 = FAST_NS(r->t, ns);
                    r++;
                    last = ns2;
                    nev++;
                    id++;
                    calls++;
                    lastev = 2;
                    uint32_t fl = k2 == SF_KIND_TAIL ? SF_CALL_TAIL : 0;
                    if (outer)
                        fl |= outer_leaf(e, t, g);
                    if (!ends_only) {
                        b[nb].ns = ns;
                        b[nb].func = g;
                        b[nb].kind = SF_CREC_BEGIN;
                        nb++;
                    }
                    b[nb].ns = ns2;
                    b[nb].func = g;
                    b[nb].kind = SF_CREC_END;
                    b[nb].flags = (uint16_t)fl;
                    b[nb].hidden = 0;
                    b[nb].start_ns = ns;
                    b[nb].self_ns = ns2 - ns;
                    nb++;
                    if (depth && stack[depth - 1].kept)
                        stack[depth - 1].child_ns += ns2 - ns;
                    tail_g = k2 == SF_KIND_TAIL ? g : NONE;
                    continue;
                }
                struct sf_cframe *f = &stack[depth];
                f->fid = fid;
                f->func = g;
                f->id = ++id;
                f->start_ns = ns;
                f->child_ns = 0;
                f->hidden = 0;
                f->flags = 0;
                f->kept = 1;
                tail_g = NONE;
                f->depth = depth;
                f->parent_id = depth ? f[-1].id : 0;
                f->state = ST_CAND | ST_INF | (depth + 1) << ST_SHIFT;
                depth++;
                lastev = 1;
                calls++;
                if (outer)
                    outer_begin(e, t, g);
                if (!ends_only) {
                    b[nb].ns = ns;
                    b[nb].func = g;
                    b[nb].kind = SF_CREC_BEGIN;
                    nb++;
                }
                continue;
            }
            if (kind == SF_KIND_EXT)
                break;
            struct sf_cframe *f = &stack[depth - 1];
            if (!__builtin_expect(depth && f->fid == fid && f->kept && !f->flags, 1))
                break;
            ns = FAST_NS(ts, last);
            last = ns;
            last_fid = fid;
            r++;
            nev++;
            uint64_t dur = ns - f->start_ns;
            b[nb].ns = ns;
            b[nb].func = f->func;
            b[nb].kind = SF_CREC_END;
            b[nb].flags = (uint16_t)((kind == SF_KIND_TAIL ? SF_CALL_TAIL : 0) |
                                     (outer ? outer_end(e, t, f->func) : 0));
            b[nb].hidden = f->hidden;
            b[nb].start_ns = f->start_ns;
            b[nb].self_ns = dur - f->child_ns;
            nb++;
            if (depth > 1 && f[-1].kept)
                f[-1].child_ns += dur;
            tail_g = kind == SF_KIND_TAIL ? f->func : NONE;
            depth--;
            lastev = 2;
        }
        /* the record at r (if any) through the general code */
        if (r < rend && sf_dec_kind(r) != SF_KIND_EXT) {
            ts = r->t;
            kind = sf_dec_kind(r);
            fid = r->fid;
            ns = fclock_ns(&clk, e, img, ts);
            if (__builtin_expect(ns < last, 0)) {
                backwards++;
                ns = last;
            }
        general: /* an entry the loop above did not take: ns is its time */
            last = ns;
            last_fid = fid;
            r++;
        } else {
            d->dec = r;
            d->last_fid = last_fid;
            if (!sf_evdec_next(d, &ev))
                break;
            r = d->dec;
            last_fid = d->last_fid;
            ns = fclock_ns(&clk, e, img, ev.ts);
            if (__builtin_expect(ns < last, 0)) {
                backwards++;
                ns = last;
            }
            last = ns;
            full = 1;
        }
        if (!full) {
            memset(&ev, 0, sizeof ev);
            ev.ts = ts;
            ev.kind = kind;
            ev.fid = fid;
            ev.offset = d->base + sf_dec_rel(&r[-1]);
        }
        if (ev.kind != SF_KIND_EXT)
            nev++;
        /* anything else: the general code, with the state in memory */
        d->dec = r;
        d->last_fid = last_fid;
        e->nb = nb;
        e->next_id = id;
        e->st.calls += calls;
        calls = 0;
        t->pub.depth = depth;
        t->lastev = lastev;
        t->tail_g = tail_g;
        t->pub.last_ns = ns;
        one_event(e, t, is, img, &ev, ns, ns);
        b = e->batch;
        nb = e->nb;
        id = e->next_id;
        stack = t->pub.stack;
        depth = t->pub.depth;
        lim = t->cap < e->maxd ? t->cap : e->maxd;
        lastev = t->lastev;
        tail_g = t->tail_g;
    }
#undef FAST_NS
    d->dec = r;
    d->last_fid = last_fid;
    t->pub.depth = depth;
    t->lastev = lastev;
    t->tail_g = tail_g;
    t->pub.last_ns = last;
    e->nb = nb;
    e->next_id = id;
    e->st.calls += calls;
    e->st.backwards += backwards;
    *nevp += nev;
    *lastp = last;
}

/* fast_loop for the configurations the commands run: report (outermost
 * flags, ends only) and the others (begins and ends), each with the
 * unwinding rule on (C++, Rust) or off (C), with TSC timestamps and the
 * fit's final line; anything else with the flags tested as it goes. */
#define FAST_VARIANT(name, outer, ends_only, unwind, tsc)                                          \
    static __attribute__((noinline)) void name(                                                    \
        struct sf_calls *e, struct thr *t, struct imgst *is, const struct sf_image *img,           \
        struct sf_evdec *d, uint64_t *lastp, uint64_t *nevp)                                       \
    {                                                                                              \
        fast_loop(e, t, is, img, d, lastp, nevp, outer, ends_only, unwind, tsc);                   \
    }
FAST_VARIANT(fast_report, 1, 1, 0, 1)
FAST_VARIANT(fast_report_uw, 1, 1, 1, 1)
FAST_VARIANT(fast_all, 0, 0, 0, 1)
FAST_VARIANT(fast_all_uw, 0, 0, 1, 1)
FAST_VARIANT(fast_any, e->outer_on, e->ends_only, e->unwind_on, 0)
#undef FAST_VARIANT

static void fast_events(struct sf_calls *e, struct thr *t, struct imgst *is,
                        const struct sf_image *img, struct sf_evdec *d, uint64_t *lastp,
                        uint64_t *nevp)
{
    if (img->clock == SF_CLOCK_MONO || !e->fastclock || e->cline.shift != SF_CLOCK_SHIFT ||
        e->outer_on != e->ends_only)
        fast_any(e, t, is, img, d, lastp, nevp);
    else if (e->outer_on)
        (e->unwind_on ? fast_report_uw : fast_report)(e, t, is, img, d, lastp, nevp);
    else
        (e->unwind_on ? fast_all_uw : fast_all)(e, t, is, img, d, lastp, nevp);
}

/* ---- the replay: the stack at the window start ------------------------------ */

/* One exit or tail call of the replay: pop() and on_leave() without the
 * output (an exit of no open frame changes nothing, as there). */
static inline void replay_leave(struct thr *t, uint32_t fid)
{
    uint32_t depth = t->pub.depth;
    const struct sf_cframe *s = t->pub.stack;
    if (__builtin_expect(depth && s[depth - 1].fid == fid, 1)) {
        t->pub.depth = depth - 1;
        return;
    }
    uint32_t stop = depth > UNWIND_MAX ? depth - UNWIND_MAX : 0;
    for (uint32_t d = depth; d-- > stop;)
        if (s[d].fid == fid) {
            t->pub.depth = d;
            return;
        }
}

/* The smallest timestamp of img whose time is at or after the window start
 * (to_ns is nondecreasing in ts below 2^63: a binary search), so that the
 * replay compares raw timestamps; at or above it, to_ns decides. */
static uint64_t w0_ts(struct sf_calls *e, struct imgst *is, const struct sf_image *img)
{
    if (!is->w0known) {
        uint64_t lo = 0, hi = (uint64_t)1 << 63; /* to_ns(hi) >= w0 is assumed */
        if (img->clock == SF_CLOCK_MONO || !e->fastclock || e->cline.m <= 0) {
            lo = hi = img->clock == SF_CLOCK_MONO ? e->w0 : 0; /* 0: to_ns always */
        } else {
            while (lo < hi) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (to_ns(e, img, mid) >= e->w0)
                    hi = mid;
                else
                    lo = mid + 1;
            }
        }
        is->w0ts = lo;
        is->w0known = 1;
    }
    return is->w0ts;
}

static inline uint64_t okey(const struct sf_image *img, const struct proc *p)
{
    return (uint64_t)img->id << 32 | p->nstarts;
}

/* The calls the opening scan found open at the current START of t's image
 * (NULL if none); t is then done with that START. */
static const struct ochain *opened_at(struct thr *t, const struct sf_image *img,
                                      const struct proc *p)
{
    uint64_t key = okey(img, p);
    t->odone = key;
    for (uint32_t i = t->noch; i-- > 0;)
        if (t->och[i].key == key)
            return &t->och[i];
    return NULL;
}

/* The replay's part: the calls open at a START before the window start are
 * on the stack there like any other (the main pass starts the thread with
 * that stack, clipped). */
static __attribute__((noinline)) void replay_opened(struct sf_calls *e, struct thr *t,
                                                    struct imgst *is, const struct sf_image *img)
{
    const struct ochain *c = opened_at(t, img, t->proc);
    for (uint32_t k = c ? c->n : 0; k-- > 0;) {
        uint32_t fid = t->ofid[c->off + k];
        if (!push(e, t, fid, func_of(e, is, img, fid), 0))
            break;
    }
}

static inline int replay_one(struct sf_calls *e, struct thr *t, struct imgst *is,
                             const struct sf_image *img, uint32_t kind, uint32_t fid, uint64_t ts,
                             uint64_t w0ts)
{
    if (kind == SF_KIND_EXT)
        return 0;
    const struct proc *p = t->proc;
    if (__builtin_expect(p->nstarts != 0, 0) && t->noch && t->odone != okey(img, p) &&
        p->start_ns < e->w0 && to_ns(e, img, ts) >= p->start_ns)
        replay_opened(e, t, is, img); /* before the snapshot: open there too */
    if (__builtin_expect(ts >= w0ts, 0) && to_ns(e, img, ts) >= e->w0) {
        snapshot(e, t);
        return 1;
    }
    if (kind == SF_KIND_ENTRY) {
        uint32_t g = func_of(e, is, img, fid);
        unwind_rule(e, t, g, 0);
        t->tail_g = NONE;
        push(e, t, fid, g, 0);
    } else {
        t->tail_g =
            kind == SF_KIND_TAIL && t->pub.depth && t->pub.stack[t->pub.depth - 1].fid == fid
                ? t->pub.stack[t->pub.depth - 1].func
                : NONE;
        replay_leave(t, fid);
    }
    return 0;
}

/*
 * The replay of a chunk: the stack rules over the records before the window
 * start, with nothing else (no times kept, no names, no output), up to the
 * thread's first record at or after the start, where its stack is kept
 * (snapshot). Packed chunks are read from the records the reader decoded
 * when it checked the chunk.
 */
static void replay_events(struct sf_calls *e, struct thr *t, const struct sf_chunkv *c)
{
    if (t->reached)
        return;
    const struct sf_image *img = c->img;
    struct imgst *is = img_state(e, img);
    t->pub.img = img;
    t->started = 1;
    e->replayed++;
    uint64_t w0ts = w0_ts(e, is, img);
    if (c->dec) {
        for (const struct sf_decoded *r = c->dec, *end = r + c->ndec; r < end; r++)
            if (replay_one(e, t, is, img, sf_dec_kind(r), r->fid, r->t, w0ts))
                return;
        return;
    }
    struct sf_evdec d;
    struct sf_event ev;
    sf_evdec_init(&d, c);
    while (sf_evdec_next(&d, &ev))
        if (replay_one(e, t, is, img, ev.kind, ev.fid, ev.ts, w0ts))
            return;
}

/* t's first record after the current START of its image: the calls the
 * opening scan found open there begin at the START (outermost first). */
static void open_at_start(struct sf_calls *e, struct thr *t, struct imgst *is,
                          const struct sf_image *img, const struct proc *p)
{
    const struct ochain *c = opened_at(t, img, p);
    if (!c || (e->window && (p->start_ns < e->w0 || p->start_ns > e->w1)))
        return; /* none; before the window start (the replay had them), or after it */
    uint64_t ns = p->start_ns;
    if (!t->started)
        start_thread(e, t, ns);
    if (ns < t->pub.last_ns)
        ns = t->pub.last_ns;
    t->pub.last_ns = ns;
    for (uint32_t k = c->n; k-- > 0;)
        if (push_open(e, t, is, img, t->ofid[c->off + k], ns) != 0)
            break;
}

static void on_events(struct sf_calls *e, const struct sf_chunkv *c)
{
    const struct sf_events *ch = c->u.events;
    const struct sf_image *img = c->img;
    struct thr *t = get_thr(e, c->h->pid, ch->tid);
    if (!thread_selected(e, t))
        return;
    if (e->prepass) {
        replay_events(e, t, c);
        return;
    }
    t->pub.img = img;
    struct imgst *is = img_state(e, img);
    if (!is->cap) /* fast_loop's prefetch needs a table (its size a power of 2) */
        grow_fid2g(is, 0);
    int lost = (c->h->flags & 1u) != 0; /* SF_EVENTS_LOST */
    int window = e->window, ages = e->sel && e->sel->min_duration_ns;
    struct sf_evdec d;
    struct sf_event ev;
    sf_evdec_init(&d, c);
    d.last_fid = t->last_fid;
    uint64_t last = t->pub.last_ns, nev = 0;
    batch_thread(e, t);
    struct proc *pr = t->proc;
    int slow = window || ages || lost || !t->started || pr->marked;
    if (!slow && e->batch && !e->filters && !e->prepass && !e->ops.event) {
        fast_events(e, t, is, img, &d, &last, &nev);
        goto done;
    }
    while (sf_evdec_next(&d, &ev)) {
        uint64_t raw = to_ns(e, img, ev.ts), ns = raw;
        if (__builtin_expect(!slow, 1)) {
            if (__builtin_expect(ns < last, 0)) {
                e->st.backwards++;
                ns = last;
            }
            last = ns;
            t->pub.last_ns = ns;
        } else {
            if (pr->marked && (pr->stopped || raw < pr->start_ns || raw > pr->cut_ns))
                continue; /* recorded while recording was stopped, or after the cut (MARK) */
            if (pr->nstarts && t->noch && t->odone != okey(img, pr))
                open_at_start(e, t, is, img, pr);
            if (window) {
                if (t->past_end)
                    break;
                if (ns < e->w0)
                    continue;
                if (ns > e->w1) {
                    t->past_end = 1;
                    start_due(e, t);
                    if (t->started)
                        close_thread(e, t, e->w1);
                    break;
                }
            }
            if (__builtin_expect(ns < last, 0)) {
                if (t->started)
                    e->st.backwards++;
                ns = last;
            }
            last = ns;
            if (!t->started)
                start_thread(e, t, ns);
            t->pub.last_ns = ns;
            if (lost) {
                lost = 0;
                if (e->ops.lost && !e->prepass)
                    (flush_batch(e), e->ops.lost(e->ctx, &t->pub, ns));
            }
            if (ages && t->pend != NONE)
                age(e, t, ns);
            slow = window || ages || pr->marked;
        }
        if (ev.kind != SF_KIND_EXT)
            nev++;
        one_event(e, t, is, img, &ev, ns, raw);
    }
done:
    e->st.events += nev;
    t->pub.events += nev;
    t->last_fid = d.last_fid;
    flush_batch(e);
}

/* A thread exited: close it; a tid seen again is a new thread. */
static void retire_thread(struct sf_calls *e, struct thr *t, uint64_t ns)
{
    start_due(e, t);
    if (t->started) {
        close_thread(e, t, ns);
        t->pub.exited = 1;
        if (e->ops.thread_exit && !e->prepass)
            (flush_batch(e), e->ops.thread_exit(e->ctx, &t->pub, t->pub.last_ns));
    }
    free(t->pub.stack);
    t->pub.stack = NULL;
    t->cap = t->pub.depth = 0;
    t->pend = NONE;
    t->started = t->declared = t->past_end = 0;
    t->pub.exited = 0;
    t->last_fid = SF_FID_NONE;
    t->reached = 0;
    t->inc++;           /* the replay's chain names the incarnation it is of */
    t->oid = ++e->noid; /* a new thread: its calls ended (the counts are back to 0) */
    act_free(&t->act);
}

static void on_thread(struct sf_calls *e, const struct sf_chunkv *c)
{
    const struct sf_thread *th = c->u.thread;
    struct thr *t = get_thr(e, c->h->pid, th->tid);
    uint64_t ns = to_ns(e, c->img, th->tsc);
    if (c->thread_name[0])
        snprintf(t->pub.name, sizeof t->pub.name, "%s", c->thread_name);
    if (t->declared && strcmp(t->pub.name, t->shown)) {
        /* shown at the thread's latest event so far: the chunk sits between
         * its events in the stream, and a later time (a writer that dated
         * it when it wrote it) would move every event that follows */
        memcpy(t->shown, t->pub.name, sizeof t->shown);
        if (e->ops.thread && !e->prepass)
            (flush_batch(e), e->ops.thread(e->ctx, &t->pub, t->pub.last_ns));
    }
    if (c->h->flags & SF_THREAD_EXITED)
        retire_thread(e, t, ns);
}

/* A process image ended (END chunk, end != NULL) or is replaced. */
static void close_process(struct sf_calls *e, uint32_t pid, const struct sf_end *end, uint64_t ns)
{
    uint64_t *slot = sf_map_get(&e->procmap, pid, 0);
    if (!slot)
        return;
    struct proc *p = e->procs[*slot - 1];
    for (struct thr *t = p->threads; t; t = t->next_in_proc) {
        if (p->img && p->img->id == t->chain_img)
            start_due(e, t);
        if (t->pub.depth)
            close_thread(e, t, ns);
    }
    if (p->img && e->ops.process_end && !e->prepass)
        (flush_batch(e), e->ops.process_end(e->ctx, p->img, end, ns));
    p->img = NULL;
}

/* A forked child goes on from its parent's frames open at fork(): it
 * returns through them, and its first calls are their callees. The image
 * starts as after a START, so the opening scan finds those frames from the
 * exits that match no entry, and the main pass has them on the child's
 * stack, beginning at its start and flagged clipped, as for a call open at
 * a START. */
static void fork_start(struct proc *p, uint64_t ns)
{
    p->start_ns = ns;
    p->nstarts = 1;
}

static void on_process(struct sf_calls *e, const struct sf_chunkv *c)
{
    const struct sf_image *img = c->img;
    uint64_t ns = to_ns(e, img, c->u.process->tsc);
    close_process(e, img->pid, NULL, ns); /* an exec without END, or pid reuse */
    struct proc *p = get_proc(e, img->pid);
    p->img = img;
    p->marked = p->stopped = 0;
    p->start_ns = 0;
    p->cut_ns = UINT64_MAX;
    p->nstarts = 0;
    if (img->flags & SF_PROC_FORKED)
        fork_start(p, ns);
    e->st.images++;
    /* an exec'd image is a new process when the log has no earlier image of
     * its pid (a forked child of an uninstrumented shell), as record counts */
    if (!p->seen || !(img->flags & SF_PROC_EXECED))
        e->st.processes++;
    p->seen = 1;
    if (e->ops.process && !e->prepass && sf_select_pid(e->sel, img->pid))
        (flush_batch(e), e->ops.process(e->ctx, img, ns));
}

static void on_object(struct sf_calls *e, const struct sf_chunkv *c)
{
    struct imgst *is = img_state(e, c->img);
    const struct sf_object *ob = c->u.object;
    for (uint64_t f = ob->fid_base; f < (uint64_t)ob->fid_base + ob->nfuncs && f < is->cap; f++)
        is->fid2g[f] = NONE;
}

/* Recording of an image stopped or started (MARK). At a stop, every call
 * open on its threads is cut there (SF_CALL_CLIPPED): its end was not
 * recorded, but it did not end unfinished either. After a start, the calls
 * the opening scan found open there begin at it (open_at_start); exits
 * whose entries came before it and that it did not find are dropped
 * (stats.cut). */
static void on_mark(struct sf_calls *e, const struct sf_chunkv *c)
{
    const struct sf_mark *m = c->u.mark;
    struct proc *p = get_proc(e, c->h->pid);
    uint64_t ns = to_ns(e, c->img, m->tsc);
    p->marked = 1;
    if (m->kind == SF_MARK_START) {
        p->stopped = 0;
        p->start_ns = ns;
        p->nstarts++;
        return;
    }
    if (m->kind == SF_MARK_SNAP_BEGIN) { /* the snapshot read (logread skips the others) */
        p->stopped = 0;
        p->start_ns = 0;
        p->cut_ns = ns;
        return;
    }
    /* STOP, or the end of the snapshot (at its cut) */
    p->stopped = 1;
    for (struct thr *t = p->threads; t; t = t->next_in_proc) {
        /* a stop before the window start ends nothing open at it */
        if (!e->prepass && p->img && p->img->id == t->chain_img && (!e->window || ns >= e->w0))
            start_due(e, t);
        if (t->pub.depth && (e->prepass || t->started))
            end_frames(e, t, ns, SF_CALL_CLIPPED);
    }
}

static void on_end(struct sf_calls *e, const struct sf_chunkv *c)
{
    close_process(e, c->h->pid, c->u.end, to_ns(e, c->img, c->u.end->tsc));
}

/* ---- skipping ------------------------------------------------------------------ */

/* sf_log_set_skip filter of the prepass and the main pass. */
static int skip_chunk(void *ctx, const struct sf_chunkv *c)
{
    struct sf_calls *e = ctx;
    const struct sf_events *ch = c->u.events;
    uint64_t *slot = sf_map_get(&e->thrmap, (uint64_t)c->h->pid << 32 | ch->tid, 0);
    struct thr *t = slot ? e->thrs[*slot - 1] : get_thr(e, c->h->pid, ch->tid);
    if (!thread_selected(e, t))
        goto skip;
    if (!e->window || e->noskip)
        return 0;
    if (t->past_end)
        goto skip;
    /* flush_tsc bounds the records' times from above (0: not known) */
    if (ch->flush_tsc && ch->flush_tsc >= (uint64_t)ch->tsc_hi << 32 &&
        to_ns(e, c->img, ch->flush_tsc) < e->w0)
        goto skip;
    if (c->img->clock == SF_CLOCK_TSC && to_ns(e, c->img, (uint64_t)ch->tsc_hi << 32) > e->w1) {
        t->past_end = 1;
        start_due(e, t);
        if (t->started)
            close_thread(e, t, e->w1);
        goto skip;
    }
    return 0;
skip:
    if (!e->prepass)
        e->st.chunks_skipped++;
    return 1;
}

/* The time of the first chunk after file offset off that empties t's stack
 * (its exit, its process's end or exec), UINT64_MAX if none. Offsets only
 * grow during a pass: the cursors move forward. */
static uint64_t next_reset(struct thr *t, uint64_t off)
{
    struct resets *a = &t->exits, *b = &t->proc->ends;
    while (a->cur < a->n && a->v[a->cur].off < off)
        a->cur++;
    while (b->cur < b->n && b->v[b->cur].off < off)
        b->cur++;
    const struct reset *x = a->cur < a->n ? &a->v[a->cur] : NULL;
    const struct reset *y = b->cur < b->n ? &b->v[b->cur] : NULL;
    if (x && (!y || x->off < y->off))
        return x->ns;
    return y ? y->ns : UINT64_MAX;
}

/* sf_log_set_skip filter of the replay: a chunk is read only if it can
 * change the stack at the window start: not after the thread got there, and
 * not when its records are all before the start and a later chunk empties
 * the stack before the start anyway (a thread that ended before the
 * window). A chunk that starts after the window start (its tsc_hi, a lower
 * bound) gets the thread there without being read. */
static int replay_skip(void *ctx, const struct sf_chunkv *c)
{
    struct sf_calls *e = ctx;
    const struct sf_events *ch = c->u.events;
    uint64_t *slot = sf_map_get(&e->thrmap, (uint64_t)c->h->pid << 32 | ch->tid, 0);
    struct thr *t = slot ? e->thrs[*slot - 1] : get_thr(e, c->h->pid, ch->tid);
    if (!thread_selected(e, t) || t->reached)
        return 1;
    if (e->noskip)
        return 0;
    if (ch->flush_tsc && ch->flush_tsc >= (uint64_t)ch->tsc_hi << 32 &&
        to_ns(e, c->img, ch->flush_tsc) < e->w0 && next_reset(t, c->offset) < e->w0)
        return 1;
    if (c->img->clock == SF_CLOCK_TSC && to_ns(e, c->img, (uint64_t)ch->tsc_hi << 32) >= e->w0) {
        snapshot(e, t);
        return 1;
    }
    return 0;
}

static void add_reset(struct resets *r, uint64_t off, uint64_t ns)
{
    SF_GROW(r->v, r->n, r->cap);
    r->v[r->n].off = off;
    r->v[r->n++].ns = ns;
}

/* ---- passes ------------------------------------------------------------------ */

struct survey {
    struct sf_calls *e;
    uint64_t first; /* earliest first event, UINT64_MAX if none */
};

/* Survey: decode only the first EVENTS chunk of each (image, thread). */
static int survey_skip(void *ctx, const struct sf_chunkv *c)
{
    struct survey *s = ctx;
    uint64_t *v = sf_map_get(&s->e->firstseen, (uint64_t)c->img->id << 32 | c->u.events->tid, 1);
    if (*v)
        return 1;
    *v = 1;
    return 0;
}

/* Another reader of e->log's file, for a pass before the main one. Every
 * caller runs after e->log's prescan succeeded: the reader takes it
 * (logread.h: sf_log_prescan_from) instead of reading the file again. */
static struct sf_log *open_again(struct sf_calls *e)
{
    char err[SF_ERRLEN];
    struct sf_log *log = sf_log_open(sf_log_path(e->log), err, sizeof err);
    if (!log) {
        snprintf(e->err, sizeof e->err, "%s", err);
        return NULL;
    }
    sf_log_set_warn(log, sf_log_warn_none, NULL); /* e->log reports the damage */
    sf_log_set_snapshot(log, e->sel ? e->sel->snapshot : 0);
    sf_log_prescan_from(log, e->log);
    return log;
}

static int survey(struct sf_calls *e)
{
    struct sf_log *log = open_again(e);
    if (!log)
        return -1;
    struct survey s = {e, UINT64_MAX};
    sf_log_set_skip(log, survey_skip, &s);
    e->cur = log;
    clock_from(e, log);
    struct sf_chunkv c;
    while (sf_log_next(log, &c) > 0) {
        if (c.h->type == SF_CHUNK_THREAD) {
            if (e->sel->thread_name && c.thread_name[0]) {
                uint64_t *v =
                    sf_map_get(&e->namesel, (uint64_t)c.h->pid << 32 | c.u.thread->tid, 1);
                if (*v != 2)
                    *v = 1 + sf_select_thread_name(e->sel, c.thread_name);
            }
            if (c.h->flags & SF_THREAD_EXITED)
                add_reset(&get_thr(e, c.h->pid, c.u.thread->tid)->exits, c.offset,
                          to_ns(e, c.img, c.u.thread->tsc));
        } else if (c.h->type == SF_CHUNK_PROCESS) {
            add_reset(&get_proc(e, c.h->pid)->ends, c.offset, to_ns(e, c.img, c.u.process->tsc));
        } else if (c.h->type == SF_CHUNK_END) {
            add_reset(&get_proc(e, c.h->pid)->ends, c.offset, to_ns(e, c.img, c.u.end->tsc));
        } else if (c.h->type == SF_CHUNK_EVENTS) {
            struct sf_evdec d;
            struct sf_event ev;
            sf_evdec_init(&d, &c);
            if (sf_evdec_next(&d, &ev)) {
                uint64_t ns = to_ns(e, c.img, ev.ts);
                if (ns < s.first)
                    s.first = ns;
            }
        }
    }
    /* read errors: the main pass reports them */
    sf_log_close(log);
    e->cur = NULL;
    e->origin = s.first == UINT64_MAX ? 0 : s.first;
    if (e->sel->has_range) {
        e->window = 1;
        int64_t a = e->sel->range_start, b = e->sel->range_end;
        e->w0 = a == SF_TIME_OPEN_START ? 0 : e->origin + (uint64_t)a;
        e->w1 = b == SF_TIME_OPEN_END ? UINT64_MAX : e->origin + (uint64_t)b;
    }
    return 0;
}

static int tick(struct sf_calls *e)
{
    flush_batch(e);
    return e->tick ? e->tick(e->tick_ctx) : 0;
}

/* One pass over log with the current mode (prepass or main); prescanned:
 * the clock fit is final (else it grows as the log is read: sf_log_ns). */
/* sf_log_set_ahead's question, from its thread: only the selection,
 * which does not change during a pass (a thread-name selection is known
 * only as the names come: then yes, and on_events drops what it is not). */
static int want_chunk(void *ctx, uint32_t pid, uint32_t tid)
{
    const struct sf_select *s = ctx;
    return sf_select_pid(s, pid) && sf_select_tid(s, tid);
}

/* Take one of the spare cores (sf_calls_set_spare) for decoding ahead. */
static int take_spare(struct sf_calls *e)
{
    if (!e->spare)
        return sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    int v = atomic_load(e->spare);
    while (v > 0 && !atomic_compare_exchange_weak(e->spare, &v, v - 1))
        ;
    return v > 0;
}

static int pass(struct sf_calls *e, struct sf_log *log, int prescanned)
{
    e->cur = log;
    if (prescanned)
        clock_from(e, log);
    else
        e->fastclock = 0;
    if (e->prepass)
        sf_log_set_skip(log, replay_skip, e);
    else if (e->window || (e->sel && (e->sel->npids || e->sel->ntids || e->sel->thread_name)))
        sf_log_set_skip(log, skip_chunk, e);
    /* the main pass decodes ahead (logread.h) when a core is spare
     * (sf_calls_set_spare), unless a time window is to skip most chunks
     * undecoded (skip_chunk: the thread would decode them all) */
    int ahead = !e->prepass && !e->window && prescanned && !e->noahead, took = 0;
    struct sf_chunkv ch;
    int r;
    uint64_t nchunks = 0;
    while ((r = sf_log_next(log, &ch)) > 0) {
        switch (ch.h->type) {
        case SF_CHUNK_PROCESS:
            on_process(e, &ch);
            break;
        case SF_CHUNK_OBJECT:
            on_object(e, &ch);
            break;
        case SF_CHUNK_THREAD:
            on_thread(e, &ch);
            break;
        case SF_CHUNK_EVENTS:
            if (ahead && take_spare(e)) {
                ahead = 0;
                took = sf_log_set_ahead(log, want_chunk, (void *)e->sel) == 0;
                if (!took && e->spare)
                    atomic_fetch_add(e->spare, 1);
            }
            on_events(e, &ch);
            break;
        case SF_CHUNK_END:
            on_end(e, &ch);
            break;
        case SF_CHUNK_MARK:
            on_mark(e, &ch);
            break;
        default:
            break;
        }
        /* small chunks (names, objects) come in bursts: tick after every
         * EVENTS chunk and every 64th other one */
        if (!e->prepass && (ch.h->type == SF_CHUNK_EVENTS || (++nchunks & 63) == 0) && tick(e)) {
            snprintf(e->err, sizeof e->err, "stopped");
            return -1;
        }
    }
    if (took) { /* the thread stops with the log; its core is free now */
        sf_log_stop_ahead(log);
        if (e->spare)
            atomic_fetch_add(e->spare, 1);
    }
    if (r < 0) {
        snprintf(e->err, sizeof e->err, "%s", sf_log_error(log));
        return -1;
    }
    for (size_t i = 0; i < e->nthrs; i++) {
        start_due(e, e->thrs[i]);
        if (e->thrs[i]->started)
            close_thread(e, e->thrs[i], 0);
    }
    for (size_t i = 0; i < e->nprocs; i++)
        if (e->procs[i]->img && e->ops.process_end && !e->prepass) {
            (flush_batch(e), e->ops.process_end(e->ctx, e->procs[i]->img, NULL, 0));
            e->procs[i]->img = NULL;
        }
    return 0;
}

/* Forget the per-thread state of a pass (keeping the prepass's chains). */
static void reset_threads(struct sf_calls *e)
{
    for (size_t i = 0; i < e->nthrs; i++) {
        struct thr *t = e->thrs[i];
        free(t->pub.stack);
        t->pub.stack = NULL;
        t->cap = t->pub.depth = 0;
        t->pend = NONE;
        t->started = t->declared = t->past_end = t->counted = 0;
        t->pub.events = 0;
        t->pub.last_ns = t->pub.first_ns = 0;
        t->pub.exited = 0;
        t->pub.name[0] = 0;
        t->last_fid = SF_FID_NONE;
        t->chain_done = 0;
        t->odone = 0;
        t->inc = 0;
        t->pub.img = NULL; /* the replay's reader's */
    }
    for (size_t i = 0; i < e->nprocs; i++)
        e->procs[i]->img = NULL;
    memset(&e->st, 0, sizeof e->st);
}

/* ---- the opening scan (calls open at a START) --------------------------------- */

static void oclear(struct proc *p)
{
    for (struct thr *t = p->threads; t; t = t->next_in_proc)
        t->nostk = 0;
}

/* An exit (or tail call) of fid with no entry on t's scan stack after a
 * START: the call was open there. The main pass has the open calls below
 * every frame of the scan's stack, so its exit also ends those (unwound). */
static void oleave(struct thr *t, const struct sf_image *img, uint32_t fid)
{
    uint32_t d = t->nostk, stop = d > UNWIND_MAX ? d - UNWIND_MAX : 0;
    while (d-- > stop)
        if (t->ostk[d] == fid) {
            t->nostk = d;
            return;
        }
    struct proc *p = t->proc;
    if (!p->nstarts)
        return;
    uint64_t key = okey(img, p);
    if (!t->noch || t->och[t->noch - 1].key != key) {
        SF_GROW(t->och, t->noch, t->capoch);
        t->och[t->noch++] = (struct ochain){key, t->nofid, 0};
    }
    SF_GROW(t->ofid, t->nofid, t->capofid);
    t->ofid[t->nofid++] = fid;
    t->och[t->noch - 1].n++;
    t->nostk = 0;
}

static inline void oevent(struct sf_calls *e, struct thr *t, const struct sf_image *img,
                          uint32_t kind, uint32_t fid, uint64_t ts, int check)
{
    if (kind == SF_KIND_EXT)
        return;
    if (check) {
        const struct proc *p = t->proc;
        uint64_t raw = to_ns(e, img, ts);
        if (p->stopped || raw < p->start_ns || raw > p->cut_ns)
            return; /* the main pass drops it (on_events) */
    }
    if (kind == SF_KIND_ENTRY) {
        SF_GROW(t->ostk, t->nostk, t->capostk);
        t->ostk[t->nostk++] = fid;
    } else {
        oleave(t, img, fid);
    }
}

static void oevents(struct sf_calls *e, const struct sf_chunkv *c)
{
    struct thr *t = get_thr(e, c->h->pid, c->u.events->tid);
    const struct proc *p = t->proc;
    if (!p->nstarts || !thread_selected(e, t))
        return; /* before the image's first START nothing is to be found */
    /* the chunk's records lie between its tsc_hi and its flush time: when
     * both are inside the recording window, none needs its time checked */
    int check = p->stopped || to_ns(e, c->img, (uint64_t)c->u.events->tsc_hi << 32) < p->start_ns ||
                to_ns(e, c->img, c->u.events->flush_tsc) > p->cut_ns;
    if (c->dec) { /* packed: the records the reader decoded when it checked the chunk */
        for (const struct sf_decoded *r = c->dec, *end = r + c->ndec; r < end; r++)
            oevent(e, t, c->img, sf_dec_kind(r), r->fid, r->t, check);
        return;
    }
    struct sf_evdec d;
    struct sf_event ev;
    sf_evdec_init(&d, c);
    while (sf_evdec_next(&d, &ev))
        oevent(e, t, c->img, ev.kind, ev.fid, ev.ts, check);
}

/* Another reader of the log for a scan before the main pass (the opening
 * scan, the forks' pass), with its skip filter; the engine's clock is its. */
static struct sf_log *scan_open(struct sf_calls *e, sf_log_skip_fn *skip)
{
    struct sf_log *log = open_again(e);
    if (!log)
        return NULL;
    sf_log_set_skip(log, skip, e);
    e->cur = log;
    clock_from(e, log);
    return log;
}

/* ---- forks: the frames a forked child inherits ------------------------------ */
/*
 * A forked child goes on from the stack of the parent's thread that forked.
 * The frames it returns through are found from its exits after its start
 * (fork_start); the ones it never leaves (it exits inside main) only from
 * the parent. The log says neither which thread forked nor exactly when
 * (the child's PROCESS chunk is written after the fork, often after the
 * parent has returned), so after the opening scan a pass over the forking
 * processes' records (fork_pass) follows each of their threads' stacks and
 * keeps, for each fork still ahead, the latest stack whose top is what the
 * child returned through; the child's open calls become that whole stack.
 * Its calls then nest under main as they did in the parent. A child that
 * returned through nothing (a fork in main) takes, from the same pass, the
 * outermost frame of its parent's one thread with frames open at its
 * PROCESS time (fork_passed), and nothing when several threads had some.
 */
static int fork_cmp(const void *a, const void *b)
{
    const struct fork *x = a, *y = b;
    if (x->ppid != y->ppid)
        return x->ppid < y->ppid ? -1 : 1;
    return x->ns < y->ns ? -1 : x->ns > y->ns;
}

static int fork_list(struct sf_calls *e)
{
    struct sf_log *log = scan_open(e, NULL);
    if (!log)
        return -1;
    sf_log_set_headers_only(log, 1);
    uint32_t cap = 0;
    struct sf_chunkv c;
    while (sf_log_next(log, &c) > 0)
        if (c.h->type == SF_CHUNK_PROCESS && c.img && (c.img->flags & SF_PROC_FORKED) &&
            c.img->ppid != c.img->pid) {
            SF_GROW(e->forks, e->nforks, cap);
            e->forks[e->nforks++] = (struct fork){
                c.img->pid, c.img->ppid, to_ns(e, c.img, c.u.process->tsc), 0, NULL, 0, NULL, 0, 0,
                0};
        }
    sf_log_close(log);
    e->cur = NULL;
    if (e->nforks)
        qsort(e->forks, e->nforks, sizeof *e->forks, fork_cmp);
    for (uint32_t i = 0; i < e->nforks; i++) {
        struct proc *p = get_proc(e, e->forks[i].ppid);
        if (!p->nforks)
            p->fork0 = i;
        p->nforks++;
    }
    return 0;
}

/* The open calls the opening scan found for f's child at its start
 * (innermost first), NULL if none. */
static struct ochain *fork_chain(struct sf_calls *e, const struct fork *f, struct thr **tp)
{
    struct thr *t = *tp = get_thr(e, f->pid, f->pid);
    for (uint32_t k = 0; k < t->noch; k++)
        if (t->och[k].key == f->key)
            return &t->och[k];
    return NULL;
}

/* An entry on t (a thread of a forking process): each of its forks still
 * ahead whose child returned through frames that are now t's top keeps
 * this stack, the latest such before the fork being the one it forked in. */
static void fork_match(struct sf_calls *e, struct thr *t, uint64_t ns)
{
    const struct proc *p = t->proc;
    while (t->fnext < p->nforks && e->forks[p->fork0 + t->fnext].ns <= ns)
        t->fnext++;
    for (uint32_t i = t->fnext; i < p->nforks; i++) {
        struct fork *f = &e->forks[p->fork0 + i];
        if (!f->nret || f->nret > t->npstk || f->ret[0] != t->pstk[t->npstk - 1])
            continue;
        int ok = 1;
        for (uint32_t j = 1; ok && j < f->nret; j++)
            ok = f->ret[j] == t->pstk[t->npstk - 1 - j];
        if (!ok)
            continue;
        if (f->nstk < t->npstk)
            f->stk = sf_xrealloc(f->stk, t->npstk * sizeof *f->stk);
        memcpy(f->stk, t->pstk, t->npstk * sizeof *f->stk);
        f->nstk = t->npstk;
    }
}

/* t's stack is what it was at the PROCESS time of each fork before ns that
 * it has not passed yet: a child that returned through nothing takes the
 * outermost frame from it (fork_pass), when one thread alone had one. */
static void fork_passed(struct sf_calls *e, struct thr *t, uint64_t ns)
{
    const struct proc *p = t->proc;
    while (t->fbot < p->nforks && e->forks[p->fork0 + t->fbot].ns <= ns) {
        struct fork *f = &e->forks[p->fork0 + t->fbot++];
        if (!f->nret && t->npstk) {
            f->bot = t->pstk[0];
            f->nbot++;
        }
    }
}

static void fork_event(struct sf_calls *e, struct thr *t, const struct sf_image *img, uint32_t kind,
                       uint32_t fid, uint64_t ts)
{
    if (kind == SF_KIND_EXT)
        return;
    fork_passed(e, t, to_ns(e, img, ts));
    if (kind == SF_KIND_ENTRY) {
        SF_GROW(t->pstk, t->npstk, t->cappstk);
        t->pstk[t->npstk++] = fid;
        fork_match(e, t, to_ns(e, img, ts));
        return;
    }
    uint32_t d = t->npstk, stop = d > UNWIND_MAX ? d - UNWIND_MAX : 0;
    while (d-- > stop)
        if (t->pstk[d] == fid) {
            t->npstk = d;
            return;
        }
}

static int fork_skip(void *ctx, const struct sf_chunkv *c)
{
    struct sf_calls *e = ctx;
    if (c->h->type != SF_CHUNK_EVENTS)
        return 0;
    uint64_t *slot = sf_map_get(&e->procmap, c->h->pid, 0);
    return !slot || !e->procs[*slot - 1]->nforks;
}

/* After the opening scan: a read of the forking processes' records, which
 * finds for each child the parent's stack at its fork (see above), and
 * makes it the child's open calls at its start. */
static int fork_pass(struct sf_calls *e)
{
    int any = 0;
    for (uint32_t i = 0; i < e->nforks; i++) {
        struct fork *f = &e->forks[i];
        struct thr *t;
        const struct ochain *ch = f->key ? fork_chain(e, f, &t) : NULL;
        any |= f->key != 0; /* returned through nothing: fork_passed */
        if (!ch)
            continue;
        f->ret = sf_xrealloc(NULL, ch->n * sizeof *f->ret);
        memcpy(f->ret, t->ofid + ch->off, ch->n * sizeof *f->ret);
        f->nret = ch->n;
        any = 1;
    }
    if (any) {
        struct sf_log *log = scan_open(e, fork_skip);
        if (!log)
            return -1;
        struct sf_chunkv c;
        while (sf_log_next(log, &c) > 0) {
            if (c.h->type != SF_CHUNK_EVENTS)
                continue;
            struct thr *t = get_thr(e, c.h->pid, c.u.events->tid);
            if (!t->proc->nforks)
                continue;
            if (c.dec) {
                for (const struct sf_decoded *r = c.dec, *end = r + c.ndec; r < end; r++)
                    fork_event(e, t, c.img, sf_dec_kind(r), r->fid, r->t);
                continue;
            }
            struct sf_evdec d;
            struct sf_event ev;
            sf_evdec_init(&d, &c);
            while (sf_evdec_next(&d, &ev))
                fork_event(e, t, c.img, ev.kind, ev.fid, ev.ts);
        }
        sf_log_close(log);
        e->cur = NULL;
        /* threads with no event after a fork: their last stack was theirs then */
        for (size_t i = 0; i < e->nthrs; i++)
            if (e->thrs[i]->proc && e->thrs[i]->proc->nforks)
                fork_passed(e, e->thrs[i], UINT64_MAX);
    }
    for (uint32_t i = 0; i < e->nforks; i++) {
        struct fork *f = &e->forks[i];
        struct thr *t;
        if (f->key && !f->nret && f->nbot == 1) {
            /* The child returned through nothing (it forked in main and
             * exits there): the frame the parent's one busy thread had
             * outermost is an ancestor of the fork whatever the thread did
             * between the fork and the child's start, unless it was entered
             * in between (a thread's outermost frame is main or its start
             * routine, entered long before). Several busy threads: no way
             * to tell which forked, so nothing. */
            f->stk = sf_xrealloc(NULL, sizeof *f->stk);
            f->stk[0] = f->bot;
            f->nstk = 1;
            if (!fork_chain(e, f, &t)) {
                SF_GROW(t->och, t->noch, t->capoch);
                t->och[t->noch++] = (struct ochain){f->key, t->nofid, 0};
            }
        }
        struct ochain *ch = f->nstk > f->nret ? fork_chain(e, f, &t) : NULL;
        if (ch) { /* the whole stack, innermost first as oleave stores them */
            *ch = (struct ochain){f->key, t->nofid, f->nstk};
            for (uint32_t j = 0; j < f->nstk; j++) {
                SF_GROW(t->ofid, t->nofid, t->capofid);
                t->ofid[t->nofid++] = f->stk[f->nstk - 1 - j];
            }
        }
        free(f->ret);
        free(f->stk);
    }
    free(e->forks);
    e->forks = NULL;
    e->nforks = 0;
    for (size_t i = 0; i < e->nprocs; i++)
        e->procs[i]->nforks = 0;
    for (size_t i = 0; i < e->nthrs; i++) {
        struct thr *t = e->thrs[i];
        free(t->pstk);
        t->pstk = NULL;
        t->npstk = t->cappstk = t->fnext = t->fbot = 0;
    }
    return 0;
}

/* The opening scan decodes only the records of images after a START (or a
 * fork): a log whose one process forked a child would otherwise have every
 * record of the parent decoded once more for nothing. The thread is made
 * all the same, so that threads are numbered in the order they appear. */
static int oskip(void *ctx, const struct sf_chunkv *c)
{
    struct sf_calls *e = ctx;
    if (c->h->type != SF_CHUNK_EVENTS)
        return 0;
    return !get_thr(e, c->h->pid, c->u.events->tid)->proc->nstarts;
}

static int open_scan(struct sf_calls *e)
{
    if (sf_log_forks(e->log) && fork_list(e) < 0)
        return -1;
    struct sf_log *log = scan_open(e, oskip);
    if (!log)
        return -1;
    struct sf_chunkv c;
    while (sf_log_next(log, &c) > 0) {
        struct proc *p = c.h->type == SF_CHUNK_EVENTS || c.h->type == SF_CHUNK_THREAD
                             ? NULL
                             : get_proc(e, c.h->pid);
        switch (c.h->type) {
        case SF_CHUNK_PROCESS:
        case SF_CHUNK_END:
            oclear(p);
            p->nstarts = 0;
            p->stopped = 0;
            p->start_ns = 0;
            p->cut_ns = UINT64_MAX;
            if (c.h->type == SF_CHUNK_PROCESS && c.img && (c.img->flags & SF_PROC_FORKED)) {
                uint64_t ns = to_ns(e, c.img, c.u.process->tsc);
                fork_start(p, ns);
                /* the child's chain key: its fork (same pid, parent, time) */
                struct proc *pp = get_proc(e, c.img->ppid);
                for (uint32_t k = 0; k < pp->nforks; k++) {
                    struct fork *f = &e->forks[pp->fork0 + k];
                    if (f->pid == c.img->pid && f->ns == ns && !f->key)
                        f->key = okey(c.img, p);
                }
            }
            break;
        case SF_CHUNK_MARK: {
            uint64_t ns = to_ns(e, c.img, c.u.mark->tsc);
            oclear(p);
            p->stopped = c.u.mark->kind != SF_MARK_START && c.u.mark->kind != SF_MARK_SNAP_BEGIN;
            if (c.u.mark->kind == SF_MARK_START) {
                p->start_ns = ns;
                p->nstarts++;
            } else if (c.u.mark->kind == SF_MARK_SNAP_BEGIN) {
                p->start_ns = 0;
                p->cut_ns = ns;
            }
            break;
        }
        case SF_CHUNK_THREAD:
            if (c.h->flags & SF_THREAD_EXITED)
                get_thr(e, c.h->pid, c.u.thread->tid)->nostk = 0;
            break;
        case SF_CHUNK_EVENTS:
            oevents(e, &c);
            break;
        }
    }
    /* read errors: the main pass reports them */
    sf_log_close(log);
    e->cur = NULL;
    if (e->forks && fork_pass(e) < 0)
        return -1;
    for (size_t i = 0; i < e->nprocs; i++) {
        struct proc *p = e->procs[i];
        p->stopped = 0;
        p->start_ns = 0;
        p->cut_ns = UINT64_MAX;
        p->nstarts = 0;
    }
    for (size_t i = 0; i < e->nthrs; i++) {
        struct thr *t = e->thrs[i];
        free(t->ostk);
        t->ostk = NULL;
        t->nostk = t->capostk = 0;
    }
    return 0;
}

int sf_calls_run(struct sf_calls *e)
{
    const struct sf_select *s = e->sel;
    sf_log_set_snapshot(e->log, s ? s->snapshot : 0);
    int prescanned = sf_log_prescan(e->log) == 0; /* a pipe cannot be prescanned */
    if (s && s->snapshot && prescanned && s->snapshot > sf_log_snapshots(e->log)) {
        uint32_t n = sf_log_snapshots(e->log);
        if (n)
            snprintf(e->err, sizeof e->err, "%s: --snapshot %u: the log has %u snapshot%s",
                     sf_log_path(e->log), s->snapshot, n, n == 1 ? "" : "s");
        else
            snprintf(e->err, sizeof e->err,
                     "%s: --snapshot %u: the log has no snapshots (record --ring makes them)",
                     sf_log_path(e->log), s->snapshot);
        return -1;
    }
    if (s && (s->has_range || s->thread_name)) {
        /* the survey and the prepass read the file again, and need its
         * prescan (a pipe is a copied file by now: logread.c; this is the
         * prescan's own error, a log that cannot be seeked) */
        if (!prescanned) {
            snprintf(e->err, sizeof e->err, "--time-range and --thread-name: %s",
                     sf_log_error(e->log));
            return -1;
        }
        if (survey(e) < 0)
            return -1;
    }
    if (prescanned && (sf_log_starts(e->log) || sf_log_forks(e->log)) && open_scan(e) < 0)
        return -1;
    if (e->window && e->w0 > 0) {
        struct sf_log *log = open_again(e);
        if (!log)
            return -1;
        e->rlog = log; /* functions it resolved point at its objects */
        e->prepass = 1;
        int r = pass(e, log, 1);
        e->prepass = 0;
        if (r < 0)
            return -1;
        uint64_t replayed = e->replayed;
        reset_threads(e);
        e->st.chunks_replayed = replayed;
    }
    int r = pass(e, e->log, prescanned);
    e->cur = NULL;
    return r;
}

/* ---- the rest of the API ------------------------------------------------------ */

struct sf_calls *sf_calls_new(struct sf_log *log, struct sf_syms *syms, const struct sf_select *sel,
                              const struct sf_calls_ops *ops, void *ctx)
{
    struct sf_calls *e = sf_xcalloc(1, sizeof *e);
    e->log = log;
    e->syms = syms;
    e->sel = sel;
    if (ops)
        e->ops = *ops;
    e->ctx = ctx;
    if (e->ops.calls)
        e->batch = sf_xrealloc(NULL, BATCH * sizeof *e->batch);
    e->maxd = NONE;
    if (syms && sel && sel->no_lines)
        sf_syms_set_lines(syms, 0); /* --no-lines: no DWARF is opened at all */
    e->filters = sf_select_has_call_filter(sel);
    const char *ns = getenv("SFTRACE_NO_SKIP");
    e->noskip = ns && *ns && strcmp(ns, "0");
    e->noahead = getenv("SFTRACE_NO_AHEAD") != NULL; /* for measuring it */
    const char *nu = getenv("SFTRACE_NO_UNWIND_RULE");
    e->nounwind = nu && *nu && strcmp(nu, "0");
    return e;
}

void sf_calls_set_outermost(struct sf_calls *e, int ends_only)
{
    e->outer_on = 1;
    e->ends_only = ends_only;
}

void sf_calls_set_max_depth(struct sf_calls *e, uint32_t max_depth)
{
    e->maxd = max_depth ? max_depth : NONE;
}

void sf_calls_set_spare(struct sf_calls *e, _Atomic int *spare)
{
    e->spare = spare;
}

void sf_calls_set_tick(struct sf_calls *e, int (*fn)(void *ctx), void *ctx)
{
    e->tick = fn;
    e->tick_ctx = ctx;
}

const char *sf_calls_error(const struct sf_calls *e)
{
    return e->err;
}

uint64_t sf_calls_origin_ns(const struct sf_calls *e)
{
    return e->origin;
}

void sf_calls_stats(const struct sf_calls *e, struct sf_calls_stats *st)
{
    *st = e->st;
}

void sf_calls_free(struct sf_calls *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nthrs; i++) {
        free(e->thrs[i]->pub.stack);
        free(e->thrs[i]->chain);
        free(e->thrs[i]->exits.v);
        free(e->thrs[i]->och);
        free(e->thrs[i]->ofid);
        free(e->thrs[i]->ostk);
        act_free(&e->thrs[i]->act);
        free(e->thrs[i]);
    }
    free(e->thrs);
    for (size_t i = 0; i < e->nprocs; i++) {
        free(e->procs[i]->ends.v);
        free(e->procs[i]);
    }
    free(e->procs);
    for (size_t i = 0; i < e->nobjs; i++) {
        free(e->objs[i].g);
        sf_callgraph_free(e->objs[i].cg);
        sf_cgwalk_free(e->objs[i].cgw);
    }
    free(e->objs);
    for (size_t i = 0; i < e->nimgs; i++)
        free(e->imgs[i].fid2g);
    free(e->imgs);
    for (uint32_t i = 0; i < e->nfuncs; i++)
        if (!e->funcs[i].obj)
            free((char *)e->funcs[i].name);
    free(e->funcs);
    free(e->fsel);
    free(e->fobj);
    free(e->anyq);
    free(e->quiet);
    free(e->outer);
    free(e->batch);
    if (e->rlog)
        sf_log_close(e->rlog);
    sf_map_free(&e->objmap);
    sf_map_free(&e->filemap);
    sf_map_free(&e->unkmap);
    sf_map_free(&e->thrmap);
    sf_map_free(&e->procmap);
    sf_map_free(&e->namesel);
    sf_map_free(&e->firstseen);
    free(e);
}
