/*
 * convert.c - `sftrace convert`: turn a log into a Perfetto trace (protobuf,
 * gzip by default) or Chrome trace-event JSON.
 *
 * One streaming pass over the log (after the reader's prescan, which fixes
 * the clock fit): memory grows with threads x stack depth and the number of
 * distinct functions, never with the number of events.
 *
 *   PROCESS chunk  -> a process track (pid, name, command line)
 *   first events of a thread -> a thread track (pid, tid, name); declared
 *                     again when a THREAD chunk brings a new name
 *   entry          -> slice begin (name and source line interned per thread)
 *   exit, tailcall -> slice end. An exit of a function deeper in the stack
 *                     first ends everything above it, marked "unfinished";
 *                     an exit of a function not on the stack is dropped.
 *                     A tail call ends the caller; the callee's entry that
 *                     follows begins a slice at the same depth.
 *   thread exit, process END, end of log -> the thread's open slices end,
 *                     marked "unfinished"
 *   ARGS, RET      -> the slice's "arg0".."arg5" / "ret" annotations (hex)
 *   ALLOC records  -> the process's "heap bytes" counter
 *   LOST records, chunks flagged LOST -> an instant "sftrace: records lost"
 * Slices deeper than MAX_DEPTH are tracked but not written (trace_processor
 * drops them); the deepest written slice says how many calls it hides.
 *
 * Perfetto layout (lib/perfetto.h): the preamble makes CLOCK_MONOTONIC the
 * trace clock; each thread is one sequence with delta timestamps; each
 * function of each object file gets one global iid (its index + 1), shared
 * by all processes that map the file, that a thread's sequence interns the
 * first time the thread calls it. Chrome JSON (lib/chrome.h) has
 * the same slices as "B"/"E" pairs. Output goes through lib/gzout.h: a
 * temporary file renamed into place at the end, gzip in worker threads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chrome.h"
#include "cmds.h"
#include "gzout.h"
#include "logread.h"
#include "perfetto.h"
#include "sqlout.h"
#include "symbols.h"

#define MAX_DEPTH 500        /* deepest slice written */
#define STACK_MAX (1u << 22) /* entries tracked per thread */
#define UNWIND_MAX 65536u    /* frames searched for a non-top exit */
#define FID_CACHE_MAX (1u << 24)
#define NONE 0xffffffffu

enum fmt { FMT_PERFETTO, FMT_CHROME, FMT_SQLITE };
enum { PD_NONE, PD_BEGIN, PD_END };

struct func {
    const char *name;
    uint32_t name_len;
    const char *file; /* NULL if no line is known */
    uint32_t file_len, line;
    char *json; /* Chrome: escaped name, made on first use */
    uint32_t json_len;
    int owned; /* name was allocated here */
};

struct frame {
    uint32_t fid, g;
    uint64_t hidden; /* calls below MAX_DEPTH (deepest written frame only) */
};

struct proc;

struct thr {
    uint32_t pid, tid;
    struct pf_seq seq; /* Perfetto sequence; seq.track_uuid is the track */
    uint64_t last_ns;  /* latest timestamp seen (times are clamped to it) */
    struct frame *stack;
    uint32_t depth, cap;
    uint64_t *defd; /* functions interned on the sequence (bit g) */
    uint32_t defd_words;
    uint32_t last_fid;
    int declared, had_events;
    /* the last begin or end, held back until the next record shows whether
     * an ARGS (for a begin) or RET (for an end) record belongs to it */
    int pd; /* PD_* */
    uint32_t pd_g;
    unsigned pd_flags;
    uint64_t pd_ns, pd_hidden;
    char name[17];  /* latest known name */
    char shown[17]; /* name in the last descriptor */
    char pidtid[48];
    uint32_t ptlen;
    struct proc *proc;
    struct thr *next_in_proc;
};

/* A change of the heap counter, waiting to be written in time order. */
struct cdelta {
    uint64_t ns;
    int64_t delta;
};

struct proc {
    uint32_t pid;
    uint64_t uuid, counter_uuid;
    uint32_t cseq; /* sequence id of the counter values, 0 until used */
    int counter_declared;
    int64_t heap;        /* the value written last */
    uint64_t counter_ns; /* and its time */
    struct cdelta *pend; /* changes not written yet, sorted by time */
    size_t npend, cappend;
    struct thr *threads;
};

struct imgst {
    uint32_t *fid2g; /* function id -> global function, NONE unknown */
    uint32_t cap;
};

/* The global functions of one object file (shared by every process image
 * that maps it: forks, runs of the same program). */
struct objst {
    struct sf_symobj *so;
    uint32_t nfuncs;
    uint64_t a0, a1; /* first and last function address, to tell files apart */
    uint32_t *g;     /* function index -> global function, NONE unknown */
};

/* The progress display (see progress()). */
struct progress {
    int on, tty;
    double start, last;
    uint64_t size;
    int shown; /* a \r line is on screen */
};

struct conv {
    struct sf_log *log;
    struct sf_syms *syms;
    struct sf_out *out;
    struct progress *pr;
    enum fmt fmt;
    int first; /* Chrome: no event written yet */
    struct func *funcs;
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
    size_t nthrs, capthrs;
    struct sf_map procmap; /* pid -> index + 1 in procs */
    struct proc **procs;
    size_t nprocs, capprocs;
    uint32_t next_seq; /* next Perfetto sequence id */
    struct cdelta *cd; /* heap changes of the chunk being read */
    size_t ncd, capcd;
    /* the reader's clock fit, copied once it is final (after the prescan) */
    int fastclock;
    double ca, cb;
    uint64_t cx0, cy0;
    /* totals */
    uint64_t events, slices, unmatched, unfinished, hidden, lost, backwards, too_deep;
    uint64_t nthreads_used;
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sftrace convert: out of memory\n");
        exit(1);
    }
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "sftrace convert: out of memory\n");
        exit(1);
    }
    return p;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 16;                                                        \
            (arr) = xrealloc((arr), (cap) * sizeof *(arr));                                        \
        }                                                                                          \
    } while (0)

/* ---- time ------------------------------------------------------------------ */

/* sf_log_ns without the call and libm's llround: the same line
 * (logread.h: mono = y0 + a + b * (tsc - x0)), computed the same way. */
static inline uint64_t to_ns(struct conv *cv, const struct sf_image *img, uint64_t ts)
{
    int64_t ns;
    if (img->clock == SF_CLOCK_MONO) {
        ns = (int64_t)ts;
    } else if (__builtin_expect(cv->fastclock, 1)) {
        double d = cv->ca + cv->cb * (double)(int64_t)(ts - cv->cx0);
        ns = (int64_t)(cv->cy0 + (uint64_t)(int64_t)(d >= 0 ? d + 0.5 : d - 0.5));
    } else {
        ns = sf_log_ns(cv->log, img, ts);
    }
    return ns > 0 ? (uint64_t)ns : 0;
}

/* ---- functions ------------------------------------------------------------ */

static void progress_clear(struct progress *pr);

static uint32_t new_func(struct conv *cv, const char *name, const char *file, int line)
{
    GROW(cv->funcs, cv->nfuncs, cv->capfuncs);
    struct func *f = &cv->funcs[cv->nfuncs];
    memset(f, 0, sizeof *f);
    f->name = name;
    f->name_len = (uint32_t)strlen(name);
    if (file && *file) {
        f->file = file;
        f->file_len = (uint32_t)strlen(file);
        f->line = line > 0 ? (uint32_t)line : 0;
    }
    return cv->nfuncs++;
}

static struct imgst *img_state(struct conv *cv, const struct sf_image *img)
{
    if (img->id >= cv->nimgs) {
        size_t n = cv->nimgs ? cv->nimgs : 4;
        while (n <= img->id)
            n *= 2;
        cv->imgs = xrealloc(cv->imgs, n * sizeof *cv->imgs);
        memset(cv->imgs + cv->nimgs, 0, (n - cv->nimgs) * sizeof *cv->imgs);
        cv->nimgs = n;
    }
    return &cv->imgs[img->id];
}

/* Global function of fid in img (slow path: symbolize, cache). */
static uint32_t resolve(struct conv *cv, struct imgst *is, const struct sf_image *img, uint32_t fid)
{
    uint32_t idx, g;
    struct sf_obj *o = sf_image_obj(img, fid, &idx);
    if (o) {
        uint64_t *slot = sf_map_get(&cv->objmap, (uint64_t)(uintptr_t)o, 1);
        if (!*slot) {
            struct sf_symobj *so = sf_syms_object(cv->syms, o->path, o->build_id, o->build_id_len);
            uint64_t a0 = o->nfuncs ? o->func_addr[0] : 0;
            uint64_t a1 = o->nfuncs ? o->func_addr[o->nfuncs - 1] : 0;
            uint64_t *fs = sf_map_get(&cv->filemap, (uint64_t)(uintptr_t)so, 1);
            struct objst *same = *fs ? &cv->objs[*fs - 1] : NULL;
            if (!same && sf_symobj_warning(so)) { /* once per file, not in the progress line */
                if (cv->pr)
                    progress_clear(cv->pr);
                fprintf(stderr, "sftrace convert: warning: %s\n", sf_symobj_warning(so));
            }
            if (same && same->nfuncs == o->nfuncs && same->a0 == a0 && same->a1 == a1) {
                *slot = *fs;
            } else {
                GROW(cv->objs, cv->nobjs, cv->capobjs);
                struct objst *st = &cv->objs[cv->nobjs++];
                st->so = so;
                st->nfuncs = o->nfuncs;
                st->a0 = a0;
                st->a1 = a1;
                st->g = xrealloc(NULL, (size_t)o->nfuncs * sizeof *st->g);
                memset(st->g, 0xff, (size_t)o->nfuncs * sizeof *st->g);
                *slot = cv->nobjs;
                if (!*fs)
                    *fs = cv->nobjs;
            }
        }
        struct objst *st = &cv->objs[*slot - 1];
        if (st->g[idx] == NONE) {
            const char *name = sf_symobj_name(st->so, o->func_addr[idx]), *file = NULL;
            int line = 0;
            if (!sf_symobj_srcline(st->so, o->func_addr[idx], &file, &line))
                file = NULL;
            st->g[idx] = new_func(cv, name, file, line);
        }
        g = st->g[idx];
    } else {
        uint64_t *slot = sf_map_get(&cv->unkmap, (uint64_t)img->id << 32 | fid, 1);
        if (!*slot) {
            char buf[32];
            snprintf(buf, sizeof buf, "fid:%" PRIu32, fid);
            char *name = strdup(buf);
            if (!name) {
                fprintf(stderr, "sftrace convert: out of memory\n");
                exit(1);
            }
            *slot = (uint64_t)new_func(cv, name, NULL, 0) + 1;
            cv->funcs[*slot - 1].owned = 1;
        }
        g = (uint32_t)(*slot - 1);
    }
    if (fid < FID_CACHE_MAX) {
        if (fid >= is->cap) {
            uint32_t n = is->cap ? is->cap : 256;
            while (n <= fid)
                n *= 2;
            is->fid2g = xrealloc(is->fid2g, (size_t)n * sizeof *is->fid2g);
            memset(is->fid2g + is->cap, 0xff, (size_t)(n - is->cap) * sizeof *is->fid2g);
            is->cap = n;
        }
        is->fid2g[fid] = g;
    }
    return g;
}

static inline uint32_t func_of(struct conv *cv, struct imgst *is, const struct sf_image *img,
                               uint32_t fid)
{
    if (__builtin_expect(fid < is->cap, 1)) {
        uint32_t g = is->fid2g[fid];
        if (__builtin_expect(g != NONE, 1))
            return g;
    }
    return resolve(cv, is, img, fid);
}

static void escape_json_name(struct func *f)
{
    char *buf = xrealloc(NULL, cj_escape_max(f->name_len) + 1);
    f->json_len = (uint32_t)cj_escape(buf, f->name, f->name_len);
    f->json = buf;
}

/* ---- processes and threads ------------------------------------------------ */

static uint64_t proc_uuid(uint32_t pid)
{
    return 1ull << 62 | pid;
}
static uint64_t counter_uuid(uint32_t pid)
{
    return 1ull << 62 | 1ull << 40 | pid;
}
static uint64_t thread_uuid(uint32_t pid, uint32_t tid)
{
    return 1ull << 63 | (uint64_t)pid << 32 | tid;
}

static struct proc *get_proc(struct conv *cv, uint32_t pid)
{
    uint64_t *slot = sf_map_get(&cv->procmap, pid, 1);
    if (!*slot) {
        struct proc *p = xcalloc(1, sizeof *p);
        p->pid = pid;
        p->uuid = proc_uuid(pid);
        p->counter_uuid = counter_uuid(pid);
        GROW(cv->procs, cv->nprocs, cv->capprocs);
        cv->procs[cv->nprocs++] = p;
        *slot = cv->nprocs;
    }
    return cv->procs[*slot - 1];
}

static struct thr *get_thr(struct conv *cv, uint32_t pid, uint32_t tid)
{
    uint64_t *slot = sf_map_get(&cv->thrmap, (uint64_t)pid << 32 | tid, 1);
    if (!*slot) {
        struct thr *t = xcalloc(1, sizeof *t);
        t->pid = pid;
        t->tid = tid;
        t->seq.id = cv->next_seq++;
        t->seq.track_uuid = thread_uuid(pid, tid);
        t->last_fid = SF_FID_NONE;
        t->ptlen = (uint32_t)cj_pidtid(t->pidtid, pid, tid);
        t->proc = get_proc(cv, pid);
        t->next_in_proc = t->proc->threads;
        t->proc->threads = t;
        GROW(cv->thrs, cv->nthrs, cv->capthrs);
        cv->thrs[cv->nthrs++] = t;
        *slot = cv->nthrs;
    }
    return cv->thrs[*slot - 1];
}

/* Write (or rewrite) a thread's descriptor with its current name. */
static void declare_thread(struct conv *cv, struct thr *t, uint64_t ns)
{
    struct sf_out *o = cv->out;
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, PF_SMALL_MAX + sizeof t->name);
        o->p = pf_thread_track(o->p, t->seq.track_uuid, t->pid, t->tid, t->name, ns);
    } else if (t->name[0]) {
        char esc[sizeof t->name * 6];
        size_t n = cj_escape(esc, t->name, strlen(t->name));
        sf_out_room(o, CJ_SMALL_MAX + n);
        o->p = cj_meta(o->p, &cv->first, "thread_name", t->pid, t->tid, esc, n);
    }
    memcpy(t->shown, t->name, sizeof t->shown);
    t->declared = 1;
}

static void declare_process(struct conv *cv, const struct sf_image *img, uint64_t ns)
{
    struct sf_out *o = cv->out;
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, pf_process_max(img->cmdline_len));
        o->p = pf_process_track(o->p, proc_uuid(img->pid), img->pid, img->name, img->cmdline,
                                img->cmdline_len, ns);
    } else {
        size_t len = strlen(img->name);
        char *esc = xrealloc(NULL, cj_escape_max(len) + 1);
        size_t n = cj_escape(esc, img->name, len);
        sf_out_room(o, CJ_SMALL_MAX + n);
        o->p = cj_meta(o->p, &cv->first, "process_name", img->pid, 0, esc, n);
        free(esc);
    }
}

/* ---- slices ------------------------------------------------------------------ */

static inline void write_begin(struct conv *cv, struct thr *t, uint64_t ns, uint32_t g,
                               const uint64_t *args, unsigned nargs)
{
    struct sf_out *o = cv->out;
    struct func *f = &cv->funcs[g];
    if (cv->fmt == FMT_PERFETTO) {
        uint32_t w = g >> 6;
        if (__builtin_expect(w < t->defd_words && (t->defd[w] >> (g & 63) & 1), 1)) {
            sf_out_room(o, 3 * PF_SMALL_MAX);
            o->p = pf_slice_begin(o->p, &t->seq, ns, (uint64_t)g + 1, f->file != NULL, args, nargs);
            return;
        }
        if (w >= t->defd_words) {
            uint32_t n = t->defd_words ? t->defd_words : 4;
            while (n <= w)
                n *= 2;
            t->defd = xrealloc(t->defd, (size_t)n * sizeof *t->defd);
            memset(t->defd + t->defd_words, 0, (size_t)(n - t->defd_words) * sizeof *t->defd);
            t->defd_words = n;
        }
        t->defd[w] |= 1ull << (g & 63);
        sf_out_room(o, pf_begin_def_max(f->name_len, f->file_len) + 2 * PF_SMALL_MAX);
        o->p = pf_slice_begin_def(o->p, &t->seq, ns, (uint64_t)g + 1, f->name, f->name_len, f->file,
                                  f->file_len, f->line, args, nargs);
    } else {
        if (!f->json)
            escape_json_name(f);
        sf_out_room(o, CJ_SMALL_MAX + f->json_len);
        o->p =
            cj_begin(o->p, &cv->first, t->pidtid, t->ptlen, ns, f->json, f->json_len, args, nargs);
    }
}

static inline void write_end(struct conv *cv, struct thr *t, uint64_t ns, unsigned flags,
                             uint64_t hidden, const uint64_t *ret)
{
    struct sf_out *o = cv->out;
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, 3 * PF_SMALL_MAX);
        o->p = pf_slice_end(o->p, &t->seq, ns, flags, hidden, ret);
    } else {
        sf_out_room(o, CJ_SMALL_MAX);
        o->p = cj_end(o->p, &cv->first, t->pidtid, t->ptlen, ns, flags, hidden, ret);
    }
}

/* Write t's held-back begin (with n argument values) or end (with the
 * return value if n). */
static inline void write_pending(struct conv *cv, struct thr *t, const uint64_t *vals, unsigned n)
{
    int kind = t->pd;
    t->pd = PD_NONE;
    if (kind == PD_BEGIN)
        write_begin(cv, t, t->pd_ns, t->pd_g, vals, n);
    else if (kind == PD_END)
        write_end(cv, t, t->pd_ns, t->pd_flags, t->pd_hidden, n ? vals : NULL);
}

static inline void emit_begin(struct conv *cv, struct thr *t, uint64_t ns, uint32_t g)
{
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    cv->slices++;
    t->pd = PD_BEGIN;
    t->pd_ns = ns;
    t->pd_g = g;
}

static inline void emit_end(struct conv *cv, struct thr *t, uint64_t ns, unsigned flags,
                            uint64_t hidden)
{
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    t->pd = PD_END;
    t->pd_ns = ns;
    t->pd_flags = flags;
    t->pd_hidden = hidden;
}

static void emit_instant(struct conv *cv, struct thr *t, uint64_t ns, const char *name)
{
    struct sf_out *o = cv->out;
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    size_t len = strlen(name);
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, 2 * PF_SMALL_MAX + len);
        o->p = pf_instant(o->p, &t->seq, ns, name);
    } else {
        sf_out_room(o, CJ_SMALL_MAX + cj_escape_max(len));
        char *esc = xrealloc(NULL, cj_escape_max(len) + 1);
        size_t n = cj_escape(esc, name, len);
        o->p = cj_instant(o->p, &cv->first, t->pidtid, t->ptlen, ns, esc, n);
        free(esc);
    }
}

/* End the top frame of t's stack at ns. */
static inline void pop_frame(struct conv *cv, struct thr *t, uint64_t ns, unsigned flags)
{
    struct frame *f = &t->stack[--t->depth];
    if (t->depth < MAX_DEPTH) {
        if (flags & PF_END_UNFINISHED)
            cv->unfinished++;
        emit_end(cv, t, ns, flags, f->hidden);
    }
}

static inline void on_entry(struct conv *cv, struct thr *t, struct imgst *is,
                            const struct sf_image *img, uint32_t fid, uint64_t ns)
{
    if (__builtin_expect(t->depth == t->cap, 0)) {
        if (t->cap >= STACK_MAX) {
            cv->too_deep++;
            return;
        }
        t->cap = t->cap ? 2 * t->cap : 64;
        t->stack = xrealloc(t->stack, (size_t)t->cap * sizeof *t->stack);
    }
    uint32_t g = func_of(cv, is, img, fid);
    struct frame *f = &t->stack[t->depth++];
    f->fid = fid;
    f->g = g;
    f->hidden = 0;
    if (__builtin_expect(t->depth <= MAX_DEPTH, 1)) {
        emit_begin(cv, t, ns, g);
    } else {
        t->stack[MAX_DEPTH - 1].hidden++;
        cv->hidden++;
    }
}

static inline void on_leave(struct conv *cv, struct thr *t, uint32_t fid, uint64_t ns)
{
    if (__builtin_expect(t->depth && t->stack[t->depth - 1].fid == fid, 1)) {
        pop_frame(cv, t, ns, 0);
        return;
    }
    uint32_t stop = t->depth > UNWIND_MAX ? t->depth - UNWIND_MAX : 0;
    for (uint32_t d = t->depth; d-- > stop;) {
        if (t->stack[d].fid == fid) {
            while (t->depth > d + 1)
                pop_frame(cv, t, ns, PF_END_UNFINISHED);
            pop_frame(cv, t, ns, 0);
            return;
        }
    }
    cv->unmatched++;
}

/* End every open slice of t at ns (or its last timestamp if later). */
static void close_thread(struct conv *cv, struct thr *t, uint64_t ns)
{
    if (ns < t->last_ns)
        ns = t->last_ns;
    t->last_ns = ns;
    while (t->depth)
        pop_frame(cv, t, ns, PF_END_UNFINISHED);
}

/* A thread exited: close it and let go of its per-thread state. */
static void retire_thread(struct conv *cv, struct thr *t, uint64_t ns)
{
    close_thread(cv, t, ns);
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    free(t->stack);
    free(t->defd);
    t->stack = NULL;
    t->defd = NULL;
    t->cap = t->depth = t->defd_words = 0;
    t->seq.started = 0; /* a reused tid starts a fresh sequence state */
    t->last_fid = SF_FID_NONE;
}

/* ---- the heap counter --------------------------------------------------------
 *
 * Threads report allocations in their own EVENTS chunks, which overlap in
 * time (a thread's chunk is written when its buffer fills or it exits), so
 * the process total is built in a reorder buffer: each chunk's changes are
 * merged into the process's pending list, which is written in time order when
 * the process image ends (END, exec) or the log does. The list is capped at
 * PEND_MAX changes (16 bytes each); past that the oldest half is written
 * early, and a change that arrives later with an earlier time is drawn at the
 * time of the last one written.
 */
#define PEND_MAX (1u << 20)

static void on_alloc(struct conv *cv, const struct sf_event *ev, uint64_t ns)
{
    if (ev->nwords < 1)
        return;
    int64_t size = (int64_t)ev->v[0];
    GROW(cv->cd, cv->ncd, cv->capcd);
    cv->cd[cv->ncd].ns = ns;
    cv->cd[cv->ncd].delta =
        ev->arg == SF_ALLOC_ALLOC || ev->arg == SF_ALLOC_REALLOC_ALLOC ? size : -size;
    cv->ncd++;
}

static void write_counter(struct conv *cv, struct proc *p, uint64_t ns, int64_t value)
{
    struct sf_out *o = cv->out;
    if (ns < p->counter_ns)
        ns = p->counter_ns;
    p->counter_ns = ns;
    p->heap = value;
    if (cv->fmt == FMT_PERFETTO) {
        if (!p->counter_declared) {
            sf_out_room(o, PF_SMALL_MAX + 16);
            o->p = pf_counter_track(o->p, p->counter_uuid, p->uuid, "heap bytes", ns);
            p->counter_declared = 1;
            p->cseq = cv->next_seq++;
        }
        sf_out_room(o, PF_SMALL_MAX);
        o->p = pf_counter(o->p, p->cseq, ns, p->counter_uuid, value);
    } else {
        p->counter_declared = 1;
        sf_out_room(o, CJ_SMALL_MAX + 16);
        o->p = cj_counter(o->p, &cv->first, p->pid, ns, "heap bytes", 10, value);
    }
}

/* Merge this chunk's changes (sorted: one thread's times) into p's list. */
static void merge_pending(struct conv *cv, struct proc *p)
{
    size_t n = cv->ncd, m = p->npend;
    cv->ncd = 0;
    while (p->npend + n > p->cappend) {
        p->cappend = p->cappend ? 2 * p->cappend : 256;
        p->pend = xrealloc(p->pend, p->cappend * sizeof *p->pend);
    }
    if (!m || p->pend[m - 1].ns <= cv->cd[0].ns) {
        memcpy(p->pend + m, cv->cd, n * sizeof *cv->cd);
        p->npend = m + n;
        return;
    }
    /* merge from the back, in place */
    size_t i = m, j = n, k = m + n;
    while (j > 0) {
        if (i > 0 && p->pend[i - 1].ns > cv->cd[j - 1].ns)
            p->pend[--k] = p->pend[--i];
        else
            p->pend[--k] = cv->cd[--j];
    }
    p->npend = m + n;
}

/* Write p's pending changes: all of them, or (!all) the oldest ones down to
 * half the cap when it is exceeded. */
static void flush_counter(struct conv *cv, struct proc *p, int all)
{
    size_t i = 0;
    int64_t v = p->heap;
    if (!all && p->npend <= PEND_MAX)
        return;
    while (i < p->npend && (all || p->npend - i > PEND_MAX / 2)) {
        v += p->pend[i].delta;
        write_counter(cv, p, p->pend[i].ns, v);
        i++;
    }
    if (i) {
        memmove(p->pend, p->pend + i, (p->npend - i) * sizeof *p->pend);
        p->npend -= i;
    }
}

/* ---- chunks ------------------------------------------------------------------ */

static void on_events(struct conv *cv, const struct sf_chunkv *c)
{
    const struct sf_events *e = c->u.events;
    const struct sf_image *img = c->img;
    struct thr *t = get_thr(cv, c->h->pid, e->tid);
    struct imgst *is = img_state(cv, img);
    int lost = (c->h->flags & 1u) != 0; /* SF_EVENTS_LOST */
    struct sf_evdec d;
    struct sf_event ev;
    sf_evdec_init(&d, c);
    d.last_fid = t->last_fid;
    uint64_t last = t->last_ns;
    while (sf_evdec_next(&d, &ev)) {
        uint64_t ns = to_ns(cv, img, ev.ts);
        if (__builtin_expect(ns < last, 0)) {
            cv->backwards++;
            ns = last;
        }
        last = ns;
        if (__builtin_expect(!t->declared, 0)) {
            t->last_ns = ns;
            declare_thread(cv, t, ns);
        }
        if (__builtin_expect(!t->had_events, 0)) {
            t->had_events = 1;
            cv->nthreads_used++;
        }
        if (__builtin_expect(lost, 0)) {
            lost = 0;
            t->last_ns = ns;
            emit_instant(cv, t, ns, "sftrace: records lost");
        }
        switch (ev.kind) {
        case SF_KIND_ENTRY:
            cv->events++;
            on_entry(cv, t, is, img, ev.fid, ns);
            break;
        case SF_KIND_EXIT:
        case SF_KIND_TAIL:
            cv->events++;
            on_leave(cv, t, ev.fid, ns);
            break;
        default:
            t->last_ns = ns;
            if (ev.sub == SF_EXT_ALLOC) {
                on_alloc(cv, &ev, ns);
            } else if (ev.sub == SF_EXT_ARGS) {
                if (t->pd == PD_BEGIN) {
                    unsigned n = ev.arg < ev.nwords ? ev.arg : ev.nwords;
                    write_pending(cv, t, ev.v, n > PF_MAX_ARGS ? PF_MAX_ARGS : n);
                }
            } else if (ev.sub == SF_EXT_RET) {
                if (t->pd == PD_END && ev.nwords >= 1)
                    write_pending(cv, t, ev.v, 1);
            } else if (ev.sub == SF_EXT_LOST) {
                char buf[64];
                snprintf(buf, sizeof buf, "sftrace: %" PRIu64 " records lost",
                         ev.nwords ? ev.v[0] : 0);
                cv->lost += ev.nwords ? ev.v[0] : 0;
                emit_instant(cv, t, ns, buf);
            }
            break;
        }
    }
    t->last_ns = last;
    t->last_fid = d.last_fid;
    if (cv->ncd) {
        merge_pending(cv, t->proc);
        flush_counter(cv, t->proc, 0);
    }
}

static void on_thread(struct conv *cv, const struct sf_chunkv *c)
{
    const struct sf_thread *th = c->u.thread;
    struct thr *t = get_thr(cv, c->h->pid, th->tid);
    uint64_t ns = to_ns(cv, c->img, th->tsc);
    if (c->thread_name[0])
        snprintf(t->name, sizeof t->name, "%s", c->thread_name);
    if (t->declared && strcmp(t->name, t->shown))
        declare_thread(cv, t, ns > t->last_ns ? ns : t->last_ns);
    if (c->h->flags & 1u) /* SF_THREAD_EXITED */
        retire_thread(cv, t, ns);
}

/* A process image ended (END chunk) or is replaced: close its threads. */
static void close_process(struct conv *cv, uint32_t pid, uint64_t ns)
{
    uint64_t *slot = sf_map_get(&cv->procmap, pid, 0);
    if (!slot)
        return;
    struct proc *p = cv->procs[*slot - 1];
    for (struct thr *t = p->threads; t; t = t->next_in_proc)
        if (t->depth)
            close_thread(cv, t, ns);
    flush_counter(cv, p, 1);
}

static void on_process(struct conv *cv, const struct sf_chunkv *c)
{
    const struct sf_image *img = c->img;
    uint64_t ns = to_ns(cv, img, c->u.process->tsc);
    close_process(cv, img->pid, ns); /* an exec without END, or pid reuse */
    struct proc *p = get_proc(cv, img->pid);
    if (p->counter_declared && p->heap) /* the new image's heap starts empty */
        write_counter(cv, p, ns, 0);
    declare_process(cv, img, ns);
}

static void on_object(struct conv *cv, const struct sf_chunkv *c)
{
    struct imgst *is = img_state(cv, c->img);
    const struct sf_object *ob = c->u.object;
    for (uint64_t f = ob->fid_base; f < (uint64_t)ob->fid_base + ob->nfuncs && f < is->cap; f++)
        is->fid2g[f] = NONE;
}

static void on_end(struct conv *cv, const struct sf_chunkv *c)
{
    close_process(cv, c->h->pid, to_ns(cv, c->img, c->u.end->tsc));
}

/* ---- progress ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fmt_count(char *buf, size_t n, uint64_t v)
{
    if (v >= 1000000)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else if (v >= 10000)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%" PRIu64, v);
}

static void fmt_bytes(char *buf, size_t n, uint64_t v)
{
    if (v >= 1u << 30)
        snprintf(buf, n, "%.2f GB", v / 1073741824.0);
    else if (v >= 1u << 20)
        snprintf(buf, n, "%.1f MB", v / 1048576.0);
    else if (v >= 1u << 10)
        snprintf(buf, n, "%.1f kB", v / 1024.0);
    else
        snprintf(buf, n, "%" PRIu64 " B", v);
}

static void progress(struct progress *pr, struct conv *cv, int final)
{
    if (!pr->on)
        return;
    double t = now_s();
    if (!final && t - pr->last < (pr->tty ? 0.25 : 5.0))
        return;
    if (!final && t - pr->start < (pr->tty ? 0.5 : 5.0))
        return;
    pr->last = t;
    uint64_t off = sf_log_offset(cv->log);
    char ev[32];
    fmt_count(ev, sizeof ev, cv->events);
    double pct = pr->size ? 100.0 * (double)off / (double)pr->size : 0;
    if (pct > 100)
        pct = 100;
    if (pr->tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\rsftrace convert: [%s] %3.0f%%  %s events  %.1f s ", bar, pct, ev,
                t - pr->start);
        pr->shown = 1;
    } else if (!final) {
        fprintf(stderr, "sftrace convert: %.0f%% of the log, %s events, %.0f s\n", pct, ev,
                t - pr->start);
    }
    fflush(stderr);
}

static void progress_clear(struct progress *pr)
{
    if (pr->shown) {
        fprintf(stderr, "\r%*s\r", 78, "");
        pr->shown = 0;
    }
}

/* A damage warning from the reader (it skips the damage and reads on). */
static void on_warn(void *arg, const char *msg)
{
    struct conv *cv = arg;
    if (cv->pr)
        progress_clear(cv->pr);
    fprintf(stderr, "sftrace convert: %s\n", msg);
}

/* ---- command ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sftrace convert [-h] [-q] [-o OUT] [-s SYMFILE]... [--format perfetto|chrome]\n"
            "                       [--level N] LOG\n"
            "\n"
            "Turn an sftrace log into a trace for ui.perfetto.dev, `vizviewer\n"
            "--use_external_processor`, chrome://tracing or speedscope.\n"
            "\n"
            "  -o, --output OUT      output file (default sf.pb.gz; with --format chrome\n"
            "                        sf.json.gz). Perfetto: gzip unless OUT ends in .pb;\n"
            "                        Chrome JSON: gzip when OUT ends in .gz. '-' = stdout.\n"
            "  -s, --symbols FILE    a file with the symbols / debug info of an object\n"
            "                        (repeatable), matched by build-id\n"
            "      --format FMT      perfetto (protobuf TrackEvent, default), chrome\n"
            "                        (trace-event JSON) or sqlite (a database of the\n"
            "                        calls, docs/sqlite.md; default output sf.db)\n"
            "      --level N         gzip level 1..9 (default 2)\n"
            "  -q, --quiet           no progress and no summary line\n"
            "  -h, --help            this help\n");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int cmd_convert(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"output", required_argument, NULL, 'o'},
        {"symbols", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'F'},
        {"level", required_argument, NULL, 'L'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *outpath = NULL;
    const char **symfiles = NULL;
    size_t nsym = 0;
    int quiet = 0, level = 2;
    enum fmt fmt = FMT_PERFETTO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:s:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            free(symfiles);
            return 0;
        case 'o':
            outpath = optarg;
            break;
        case 's':
            symfiles = xrealloc(symfiles, (nsym + 1) * sizeof *symfiles);
            symfiles[nsym++] = optarg;
            break;
        case 'F':
            if (!strcmp(optarg, "perfetto")) {
                fmt = FMT_PERFETTO;
            } else if (!strcmp(optarg, "sqlite")) {
                fmt = FMT_SQLITE;
            } else if (!strcmp(optarg, "chrome") || !strcmp(optarg, "json")) {
                fmt = FMT_CHROME;
            } else {
                fprintf(stderr,
                        "sftrace convert: unknown format '%s' (perfetto, chrome or sqlite)\n",
                        optarg);
                free(symfiles);
                return 2;
            }
            break;
        case 'L': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 9) {
                fprintf(stderr, "sftrace convert: --level wants 1..9, not '%s'\n", optarg);
                free(symfiles);
                return 2;
            }
            level = (int)v;
            break;
        }
        case 'q':
            quiet = 1;
            break;
        default:
            usage(stderr);
            free(symfiles);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        free(symfiles);
        return 2;
    }
    const char *logpath = argv[optind];
    if (!outpath)
        outpath = fmt == FMT_PERFETTO ? "sf.pb.gz" : fmt == FMT_SQLITE ? "sf.db" : "sf.json.gz";
    int gz = fmt == FMT_PERFETTO ? !ends_with(outpath, ".pb") : ends_with(outpath, ".gz");

    double t0 = now_s();
    char err[SF_ERRLEN + 256];
    struct conv cv;
    memset(&cv, 0, sizeof cv);
    cv.fmt = fmt;
    cv.first = 1;
    cv.next_seq = PF_META_SEQ + 1;
    cv.log = sf_log_open(logpath, err, sizeof err);
    if (!cv.log) {
        fprintf(stderr, "sftrace convert: %s\n", err);
        free(symfiles);
        return 1;
    }
    int rc = 1;
    sf_log_set_warn(cv.log, on_warn, &cv);
    cv.syms = sf_syms_new();
    sf_syms_set_quiet(cv.syms, 1); /* warnings are printed by resolve() */
    for (size_t i = 0; i < nsym; i++) {
        if (sf_syms_add_file(cv.syms, symfiles[i], err, sizeof err) != 0) {
            fprintf(stderr, "sftrace convert: %s\n", err);
            goto done;
        }
    }
    if (sf_log_prescan(cv.log) == 0) {
        struct sf_clockinfo ci;
        sf_log_clockinfo(cv.log, &ci);
        cv.fastclock = 1;
        cv.ca = ci.a;
        cv.cb = ci.b;
        cv.cx0 = ci.x0;
        cv.cy0 = ci.y0;
    }
    struct stat lst, ost;
    memset(&lst, 0, sizeof lst);
    if (stat(logpath, &lst) == 0 && stat(outpath, &ost) == 0 && lst.st_dev == ost.st_dev &&
        lst.st_ino == ost.st_ino) {
        fprintf(stderr, "sftrace convert: '%s' is the log itself; choose another output\n",
                outpath);
        goto done;
    }
    if (fmt == FMT_SQLITE) { /* lib/sqlout.c runs the call engine itself */
        struct sf_sqlout_stats sq;
        if (sf_sqlout_write(cv.log, cv.syms, NULL, outpath, &sq, err, sizeof err) < 0) {
            fprintf(stderr, "sftrace convert: %s\n", err);
            goto done;
        }
        rc = sf_log_summary(cv.log, err, sizeof err) ? SF_EXIT_DAMAGED : 0;
        if (rc)
            fprintf(stderr, "sftrace convert: %s\n", err);
        if (!quiet)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64 " calls, %" PRIu64 " threads, %" PRIu64
                    " functions -> %s (%" PRIu64 " bytes), %.2f s + %.2f s for the indexes\n",
                    sq.calls.calls, sq.calls.threads, sq.functions, outpath, sq.bytes, sq.insert_s,
                    sq.index_s);
        goto done;
    }
    cv.out = sf_out_open(outpath, gz ? level : 0, 0, err, sizeof err);
    if (!cv.out) {
        fprintf(stderr, "sftrace convert: %s\n", err);
        goto done;
    }

    struct progress pr = {.on = !quiet, .tty = isatty(STDERR_FILENO), .start = t0, .last = t0};
    pr.size = (uint64_t)lst.st_size;
    cv.pr = &pr;

    const struct sf_file_header *fh = sf_log_header(cv.log);
    struct sf_out *o = cv.out;
    if (fmt == FMT_PERFETTO) {
        sf_out_room(o, PF_SMALL_MAX);
        o->p = pf_preamble(o->p, fh->create_mono_ns, fh->create_real_ns);
    } else {
        sf_out_room(o, 64);
        o->p = cj_file_begin(o->p);
    }

    struct sf_chunkv ch;
    int r;
    uint64_t nchunks = 0;
    while ((r = sf_log_next(cv.log, &ch)) > 0) {
        switch (ch.h->type) {
        case SF_CHUNK_PROCESS:
            on_process(&cv, &ch);
            break;
        case SF_CHUNK_OBJECT:
            on_object(&cv, &ch);
            break;
        case SF_CHUNK_THREAD:
            on_thread(&cv, &ch);
            break;
        case SF_CHUNK_EVENTS:
            on_events(&cv, &ch);
            break;
        case SF_CHUNK_END:
            on_end(&cv, &ch);
            break;
        default:
            break;
        }
        /* small chunks (names, objects) come in bursts: look at the clock
         * after every EVENTS chunk and every 64th other one */
        if (ch.h->type == SF_CHUNK_EVENTS || (++nchunks & 63) == 0) {
            if (sf_out_failed(o))
                break;
            progress(&pr, &cv, 0);
        }
    }
    if (r < 0) {
        progress_clear(&pr);
        fprintf(stderr, "sftrace convert: %s\n", sf_log_error(cv.log));
        fprintf(stderr, "sftrace convert: no output written\n");
        sf_out_abort(o);
        goto done;
    }
    for (size_t i = 0; i < cv.nthrs; i++) {
        close_thread(&cv, cv.thrs[i], 0);
        if (cv.thrs[i]->pd)
            write_pending(&cv, cv.thrs[i], NULL, 0);
    }
    for (size_t i = 0; i < cv.nprocs; i++)
        flush_counter(&cv, cv.procs[i], 1);
    if (fmt == FMT_CHROME) {
        sf_out_room(o, 64);
        o->p = cj_file_end(o->p);
    }
    uint64_t bytes = 0, in_bytes = sf_out_in_bytes(o);
    progress(&pr, &cv, 1);
    progress_clear(&pr);
    if (sf_out_close(o, &bytes, err, sizeof err) != 0) {
        fprintf(stderr, "sftrace convert: %s\n", err);
        goto done;
    }
    rc = 0;
    if (sf_log_summary(cv.log, err, sizeof err)) {
        fprintf(stderr, "sftrace convert: %s\n", err);
        rc = SF_EXIT_DAMAGED; /* the trace has everything readable */
    }
    if (!quiet) {
        double dt = now_s() - t0;
        char ev[32], sl[32], sz[32], raw[32], rate[32];
        fmt_count(rate, sizeof rate, dt > 0.001 ? (uint64_t)(cv.events / dt) : cv.events);
        fmt_count(ev, sizeof ev, cv.events);
        fmt_count(sl, sizeof sl, cv.slices);
        fmt_bytes(sz, sizeof sz, bytes);
        fmt_bytes(raw, sizeof raw, in_bytes);
        fprintf(stderr,
                "sftrace convert: %s events, %s slices, %" PRIu64 " threads, %zu processes -> "
                "%s (%s%s%s%s), %.2f s (%s events/s)\n",
                ev, sl, cv.nthreads_used, cv.nprocs, outpath, sz, gz ? ", " : "", gz ? raw : "",
                gz ? " uncompressed" : "", dt, rate);
        if (cv.unmatched || cv.unfinished || cv.hidden || cv.lost || cv.too_deep)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64 " exits without entry dropped, %" PRIu64
                    " slices unfinished, %" PRIu64 " calls deeper than %d hidden, %" PRIu64
                    " records lost in recording\n",
                    cv.unmatched, cv.unfinished, cv.hidden + cv.too_deep, MAX_DEPTH, cv.lost);
        if (cv.backwards)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64
                    " timestamps went backwards within a thread and were moved forward\n",
                    cv.backwards);
    }

done:
    for (size_t i = 0; i < cv.nthrs; i++) {
        free(cv.thrs[i]->stack);
        free(cv.thrs[i]->defd);
        free(cv.thrs[i]);
    }
    free(cv.thrs);
    for (size_t i = 0; i < cv.nprocs; i++) {
        free(cv.procs[i]->pend);
        free(cv.procs[i]);
    }
    free(cv.procs);
    free(cv.cd);
    for (size_t i = 0; i < cv.nobjs; i++)
        free(cv.objs[i].g);
    free(cv.objs);
    for (size_t i = 0; i < cv.nimgs; i++)
        free(cv.imgs[i].fid2g);
    free(cv.imgs);
    for (uint32_t i = 0; i < cv.nfuncs; i++) {
        free(cv.funcs[i].json);
        if (cv.funcs[i].owned)
            free((char *)cv.funcs[i].name);
    }
    free(cv.funcs);
    sf_map_free(&cv.objmap);
    sf_map_free(&cv.filemap);
    sf_map_free(&cv.unkmap);
    sf_map_free(&cv.thrmap);
    sf_map_free(&cv.procmap);
    sf_syms_free(cv.syms);
    sf_log_close(cv.log);
    free(symfiles);
    return rc;
}
