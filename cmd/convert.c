/*
 * convert.c - `sftrace convert`: turn a log into a Perfetto trace (protobuf,
 * gzip by default) or Chrome trace-event JSON.
 *
 * The call engine (lib/calls.h) reads the log and says where calls begin and
 * end (entries, exits, tail calls, unwinding, unfinished calls, the depth
 * limit, the selection); this file only writes what it hears. One streaming
 * pass (after the reader's prescan): memory grows with threads x stack depth
 * and the number of distinct functions, never with the number of events.
 *
 *   PROCESS chunk  -> a process track (pid, name, command line)
 *   a thread's first event -> a thread track (pid, tid, name); declared
 *                     again when a THREAD chunk brings a new name
 *   call begin     -> slice begin (name and source line interned per thread)
 *   call end       -> slice end; "unfinished" when no exit ended it,
 *                     "unwound" when unwinding did, "clipped" when the time
 *                     range cut it
 *   ARGS, RET      -> the slice's "arg0".."arg5" / "ret" annotations (hex)
 *   ALLOC records  -> the process's "heap bytes" counter
 *   LOST records, chunks flagged LOST -> an instant "sftrace: records lost"
 *   --milestone RE: entries of matching functions -> an instant "stage:
 *                     NAME" on the process track (the stage boundaries of
 *                     `sftrace memory --milestone RE`, lib/heap.h)
 *   key records (KEY, or ARGS/RET of a flow function) with flow endpoints
 *                  (lib/flows.h, a prepass) -> flow ids on their slice
 * Slices deeper than MAX_DEPTH are not written (trace_processor drops
 * them); the deepest written slice says how many calls it hides.
 *
 * Perfetto layout (lib/perfetto.h): the preamble makes CLOCK_MONOTONIC the
 * trace clock; each thread is one sequence with delta timestamps; each
 * function (the engine's global function index, shared by all processes
 * that map its file) gets one iid (index + 1) that a thread's sequence
 * interns the first time the thread calls it. Chrome JSON (lib/chrome.h)
 * has the same slices as "B"/"E" pairs, each "E" naming its slice, with
 * args and end flags on instants beside them (lib/chrome.c says why). Output
 * goes through lib/gzout.h: a temporary file renamed into place at the end,
 * gzip in worker threads.
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

#include "calls.h"
#include "chrome.h"
#include "cmds.h"
#include "fmt.h"
#include "flows.h"
#include "gzout.h"
#include "heap.h"
#include "logread.h"
#include "perfetto.h"
#include "sqlout.h"
#include "progress.h"
#include "select.h"
#include "symbols.h"
#include "xalloc.h"

#define MAX_DEPTH 500 /* deepest slice written */

enum fmt { FMT_PERFETTO, FMT_CHROME, FMT_SQLITE };
enum { PD_NONE, PD_BEGIN, PD_END };

/* Chrome: a function's escaped name, made on first use. */
struct jname {
    char *s;
    uint32_t len;
};

struct proc;

/* What this file keeps per thread (the engine's sf_cthread.user). */
struct thr {
    uint32_t pid, tid;
    struct pf_seq seq; /* Perfetto sequence; seq.track_uuid is the track */
    uint64_t wlast;    /* latest timestamp written (later ones are clamped to it) */
    uint64_t *defd;    /* functions interned on the sequence (bit g) */
    uint32_t defd_words;
    /* the last begin or end, held back until the next record shows whether
     * an ARGS (for a begin) or RET (for an end) record belongs to it */
    int pd; /* PD_* */
    uint32_t pd_g;
    unsigned pd_flags;
    uint64_t pd_ns, pd_hidden;
    char pidtid[48];
    uint32_t ptlen;
    struct proc *proc;
};

/* A change of the heap counter, waiting to be written in time order. */
struct cdelta {
    uint64_t ns;
    int64_t delta;
};

/* A stage marker waiting to be written (Perfetto: a track's instants must be
 * in time order, and threads' chunks are not). */
struct pmark {
    uint64_t ns;
    char name[256];
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
    /* Chrome: the lifetime's name and command line, written at its end */
    char *cj_name, *cj_cmd;
    int cj_pending;
    struct pmark *marks; /* stage markers not written yet */
    size_t nmarks, capmarks;
    uint32_t mseq; /* their sequence, 0 until used */
};

struct conv {
    struct sf_log *log;
    struct sf_calls *eng;
    struct sf_out *out;
    struct sf_progress *pr;
    enum fmt fmt;
    int first; /* Chrome: no event written yet */
    struct jname *jn;
    uint32_t njn;
    uint8_t *hassrc; /* Perfetto: per function, 1 + (a source line is known) */
    uint32_t nhassrc;
    struct sf_map procmap; /* pid -> index + 1 in procs */
    struct proc **procs;
    size_t nprocs, capprocs;
    struct thr **thrs;
    size_t nthrs, capthrs;
    uint32_t next_seq; /* next Perfetto sequence id */
    struct cdelta *cd; /* heap changes of the chunk being read ... */
    struct proc *cd_p; /* ... all of this process */
    size_t ncd, capcd;
    uint64_t slices;
    struct sf_milestones ms; /* --milestone */
    struct sf_flows *flows;  /* flow endpoints (lib/flows.h), NULL: --no-flows */
};

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
        struct proc *p = sf_xcalloc(1, sizeof *p);
        p->pid = pid;
        p->uuid = proc_uuid(pid);
        p->counter_uuid = counter_uuid(pid);
        SF_GROW(cv->procs, cv->nprocs, cv->capprocs);
        cv->procs[cv->nprocs++] = p;
        *slot = cv->nprocs;
    }
    return cv->procs[*slot - 1];
}

static struct thr *thr_of(struct conv *cv, struct sf_cthread *ct)
{
    struct thr *t = ct->user;
    if (__builtin_expect(t != NULL, 1))
        return t;
    t = sf_xcalloc(1, sizeof *t);
    t->pid = ct->pid;
    t->tid = ct->tid;
    t->seq.id = cv->next_seq++;
    t->seq.track_uuid = thread_uuid(ct->pid, ct->tid);
    t->ptlen = (uint32_t)cj_pidtid(t->pidtid, ct->pid, ct->tid);
    t->proc = get_proc(cv, ct->pid);
    SF_GROW(cv->thrs, cv->nthrs, cv->capthrs);
    cv->thrs[cv->nthrs++] = t;
    ct->user = t;
    return t;
}

static inline uint64_t clamp(struct thr *t, uint64_t ns)
{
    if (ns < t->wlast)
        ns = t->wlast;
    t->wlast = ns;
    return ns;
}

static void flush_counter(struct conv *cv, struct proc *p, int all);
static void write_counter(struct conv *cv, struct proc *p, uint64_t ns, int64_t value);

/* Chrome: the process_name of a process lifetime (args: name, and cmdline,
 * the command line, as the Perfetto process track has it), once, when the
 * lifetime ends (an exec renames the process meanwhile: the last name). */
static void cj_process_names(struct conv *cv, struct proc *p)
{
    if (!p->cj_pending)
        return;
    p->cj_pending = 0;
    struct sf_out *o = cv->out;
    size_t nl = strlen(p->cj_name), cl = strlen(p->cj_cmd);
    char *esc = sf_xrealloc(NULL, cj_escape_max(nl) + cj_escape_max(cl) + 16);
    size_t n = cj_escape(esc, p->cj_name, nl);
    if (cl) {
        memcpy(esc + n, "\",\"cmdline\":\"", 13);
        n += 13;
        n += cj_escape(esc + n, p->cj_cmd, cl);
    }
    sf_out_room(o, CJ_SMALL_MAX + n);
    o->p = cj_meta(o->p, &cv->first, "process_name", p->pid, 0, esc, n);
    free(esc);
}

static void cb_process(void *ctx, const struct sf_image *img, uint64_t ns)
{
    struct conv *cv = ctx;
    struct sf_out *o = cv->out;
    struct proc *p = get_proc(cv, img->pid);
    if (p->counter_declared && p->heap) /* the new image's heap starts empty */
        write_counter(cv, p, ns, 0);
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, pf_process_max(img->cmdline_len));
        o->p = pf_process_track(o->p, p->uuid, img->pid, img->name, img->cmdline, img->cmdline_len,
                                ns);
        return;
    }
    if (p->cj_pending && !(img->flags & SF_PROC_EXECED))
        cj_process_names(cv, p); /* a new process with a reused pid */
    free(p->cj_name);
    free(p->cj_cmd);
    p->cj_name = sf_xstrdup(img->name);
    p->cj_cmd = sf_cmdline_join(img->cmdline, img->cmdline_len);
    for (size_t n = strlen(p->cj_cmd); n && p->cj_cmd[n - 1] == ' '; n--) /* no trailing blanks */
        p->cj_cmd[n - 1] = 0;
    p->cj_pending = 1;
}

static void flush_counter(struct conv *cv, struct proc *p, int all);

static int by_ns(const void *a, const void *b)
{
    const struct pmark *x = a, *y = b;
    return x->ns < y->ns ? -1 : x->ns > y->ns;
}

/* Write p's stage markers, in time order, on its process track. */
static void flush_marks(struct conv *cv, struct proc *p)
{
    if (!p->nmarks)
        return;
    qsort(p->marks, p->nmarks, sizeof *p->marks, by_ns);
    if (!p->mseq)
        p->mseq = cv->next_seq++;
    for (size_t i = 0; i < p->nmarks; i++) {
        sf_out_room(cv->out, PF_SMALL_MAX + sizeof p->marks[i].name);
        cv->out->p =
            sf_stage_marker(cv->out->p, p->mseq, p->marks[i].ns, p->uuid, p->marks[i].name);
    }
    p->nmarks = 0;
}

static void cb_process_end(void *ctx, const struct sf_image *img, const struct sf_end *end,
                           uint64_t ns)
{
    struct conv *cv = ctx;
    struct proc *p = get_proc(cv, img->pid);
    flush_counter(cv, p, 1);
    int abnormal = 0;
    char how[64], name[256];
    if (end)
        sf_end_how(how, sizeof how, end, &abnormal);
    if (abnormal) {
        /* how it ended, where it ended (its open calls end there, unfinished) */
        snprintf(name, sizeof name, "sftrace: process %s", how);
        if (cv->fmt == FMT_PERFETTO) {
            SF_GROW(p->marks, p->nmarks, p->capmarks);
            p->marks[p->nmarks].ns = ns;
            memcpy(p->marks[p->nmarks].name, name, sizeof name);
            p->nmarks++;
        } else {
            char pt[64], esc[sizeof name * 6];
            size_t ptlen = cj_pidtid(pt, img->pid, img->pid);
            size_t n = cj_escape(esc, name, strlen(name));
            sf_out_room(cv->out, CJ_SMALL_MAX + n);
            cv->out->p = cj_instant(cv->out->p, &cv->first, pt, ptlen, ns, esc, n);
        }
    }
    flush_marks(cv, p);
    if (cv->fmt == FMT_CHROME && (!end || end->reason != SF_END_EXEC))
        cj_process_names(cv, p);
}

static void write_pending(struct conv *cv, struct thr *t, const uint64_t *vals, unsigned n);

/* Write (or rewrite) a thread's descriptor with its current name. */
static void cb_thread(void *ctx, struct sf_cthread *ct, uint64_t ns)
{
    struct conv *cv = ctx;
    struct thr *t = thr_of(cv, ct);
    struct sf_out *o = cv->out;
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    ns = clamp(t, ns);
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, PF_SMALL_MAX + sizeof ct->name);
        o->p = pf_thread_track(o->p, t->seq.track_uuid, t->pid, t->tid, ct->name, ns);
    } else if (ct->name[0]) {
        char esc[sizeof ct->name * 6];
        size_t n = cj_escape(esc, ct->name, strlen(ct->name));
        sf_out_room(o, CJ_SMALL_MAX + n);
        o->p = cj_meta(o->p, &cv->first, "thread_name", t->pid, t->tid, esc, n);
    }
}

/* ---- slices ------------------------------------------------------------------ */

static const struct jname *jname_of(struct conv *cv, uint32_t g)
{
    SF_GROW_ZERO(cv->jn, g, cv->njn, 256);
    struct jname *j = &cv->jn[g];
    if (!j->s) {
        const struct sf_func *f = sf_calls_func(cv->eng, g);
        j->s = sf_xrealloc(NULL, cj_escape_max(f->name_len) + 1);
        j->len = (uint32_t)cj_escape(j->s, f->name, f->name_len);
    }
    return j;
}

static inline void write_begin(struct conv *cv, struct thr *t, uint64_t ns, uint32_t g,
                               const uint64_t *args, unsigned nargs)
{
    struct sf_out *o = cv->out;
    if (cv->fmt == FMT_PERFETTO) {
        uint32_t w = g >> 6;
        if (__builtin_expect(w < t->defd_words && (t->defd[w] >> (g & 63) & 1), 1)) {
            sf_out_room(o, 3 * PF_SMALL_MAX);
            o->p =
                pf_slice_begin(o->p, &t->seq, ns, (uint64_t)g + 1, cv->hassrc[g] - 1, args, nargs);
            return;
        }
        const struct sf_func *f = sf_calls_func(cv->eng, g);
        SF_GROW_ZERO(cv->hassrc, g, cv->nhassrc, 256);
        cv->hassrc[g] = 1 + (f->file != NULL);
        SF_GROW_ZERO(t->defd, w, t->defd_words, 4);
        t->defd[w] |= 1ull << (g & 63);
        sf_out_room(o, pf_begin_def_max(f->name_len, f->file_len) + 2 * PF_SMALL_MAX);
        o->p = pf_slice_begin_def(o->p, &t->seq, ns, (uint64_t)g + 1, f->name, f->name_len, f->file,
                                  f->file_len, f->line, args, nargs);
    } else {
        const struct jname *j = jname_of(cv, g);
        sf_out_room(o, CJ_SLICE_MAX(j->len));
        o->p = cj_begin(o->p, &cv->first, t->pidtid, t->ptlen, ns, j->s, j->len, args, nargs);
    }
}

static inline void write_end(struct conv *cv, struct thr *t, uint64_t ns, uint32_t g,
                             unsigned flags, uint64_t hidden, const uint64_t *ret)
{
    struct sf_out *o = cv->out;
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, 3 * PF_SMALL_MAX);
        o->p = pf_slice_end(o->p, &t->seq, ns, flags, hidden, ret);
    } else {
        const struct jname *j = jname_of(cv, g);
        sf_out_room(o, CJ_SLICE_MAX(j->len));
        o->p = cj_end(o->p, &cv->first, t->pidtid, t->ptlen, ns, j->s, j->len, flags, hidden, ret);
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
        write_end(cv, t, t->pd_ns, t->pd_g, t->pd_flags, t->pd_hidden, n ? vals : NULL);
}

/* The engine's begins and ends (lib/calls.h: SF_CALL_UNFINISHED, _CLIPPED
 * and _UNWOUND are PF_END_UNFINISHED, _CLIPPED and _UNWOUND). */
_Static_assert(SF_CALL_UNFINISHED == PF_END_UNFINISHED && SF_CALL_CLIPPED == PF_END_CLIPPED &&
                   SF_CALL_UNWOUND == PF_END_UNWOUND,
               "flag values");

static void emit_instant(struct conv *cv, struct thr *t, uint64_t ns, const char *name);

/* A stage marker: an instant on the process track (Perfetto: written, in
 * time order, when the process ends), or on the thread that entered the
 * milestone (Chrome JSON). */
static void stage_marker(struct conv *cv, struct thr *t, uint64_t ns, uint32_t func)
{
    const struct sf_func *f = sf_calls_func(cv->eng, func);
    char name[256];
    snprintf(name, sizeof name, "stage: %s", f && f->name ? f->name : "?");
    if (cv->fmt != FMT_PERFETTO) {
        emit_instant(cv, t, ns, name);
        return;
    }
    struct proc *p = t->proc;
    SF_GROW(p->marks, p->nmarks, p->capmarks);
    p->marks[p->nmarks].ns = ns;
    memcpy(p->marks[p->nmarks].name, name, sizeof name);
    p->nmarks++;
}

static void cb_calls(void *ctx, struct sf_cthread *ct, const struct sf_crec *r, size_t n)
{
    struct conv *cv = ctx;
    struct thr *t = thr_of(cv, ct);
    uint64_t wlast = t->wlast;
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    /* an ARGS or RET record can only follow the last one (the engine hands
     * over what it has before an ext record): write the others at once */
    const struct sf_crec *last = r + n - 1;
    for (; r < last; r++) {
        uint64_t ns = r->ns < wlast ? wlast : r->ns; /* late begins (--min-duration) */
        wlast = ns;
        if (r->kind == SF_CREC_BEGIN) {
            cv->slices++;
            write_begin(cv, t, ns, r->func, NULL, 0);
            if (cv->ms.re && sf_milestone(&cv->ms, cv->eng, r->func))
                stage_marker(cv, t, ns, r->func);
        } else {
            write_end(cv, t, ns, r->func,
                      r->flags & (PF_END_UNFINISHED | PF_END_CLIPPED | PF_END_UNWOUND), r->hidden,
                      NULL);
        }
    }
    uint64_t ns = r->ns < wlast ? wlast : r->ns;
    t->wlast = ns;
    t->pd_ns = ns;
    t->pd_g = r->func;
    if (r->kind == SF_CREC_BEGIN) {
        cv->slices++;
        t->pd = PD_BEGIN;
        if (cv->ms.re && sf_milestone(&cv->ms, cv->eng, r->func)) {
            write_pending(cv, t, NULL, 0); /* the slice first: no ARGS for it then */
            stage_marker(cv, t, ns, r->func);
        }
    } else {
        t->pd = PD_END;
        t->pd_flags = r->flags & (PF_END_UNFINISHED | PF_END_CLIPPED | PF_END_UNWOUND);
        t->pd_hidden = r->hidden;
    }
}

static void emit_instant(struct conv *cv, struct thr *t, uint64_t ns, const char *name)
{
    struct sf_out *o = cv->out;
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    ns = clamp(t, ns);
    size_t len = strlen(name);
    if (cv->fmt == FMT_PERFETTO) {
        sf_out_room(o, 2 * PF_SMALL_MAX + len);
        o->p = pf_instant(o->p, &t->seq, ns, name);
    } else {
        sf_out_room(o, CJ_SMALL_MAX + cj_escape_max(len));
        char *esc = sf_xrealloc(NULL, cj_escape_max(len) + 1);
        size_t n = cj_escape(esc, name, len);
        o->p = cj_instant(o->p, &cv->first, t->pidtid, t->ptlen, ns, esc, n);
        free(esc);
    }
}

static void cb_lost(void *ctx, struct sf_cthread *ct, uint64_t ns)
{
    struct conv *cv = ctx;
    emit_instant(cv, thr_of(cv, ct), ns, "sftrace: records lost");
}

static void cb_thread_exit(void *ctx, struct sf_cthread *ct, uint64_t ns)
{
    struct conv *cv = ctx;
    struct thr *t = thr_of(cv, ct);
    (void)ns;
    if (t->pd)
        write_pending(cv, t, NULL, 0);
    free(t->defd);
    t->defd = NULL;
    t->defd_words = 0;
    t->seq.started = 0; /* a reused tid starts a fresh sequence state */
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
 * time of the last one written. Sizes and sums saturate at the int64 range
 * (a crafted log can make them overflow).
 */
#define PEND_MAX (1u << 20)

static inline int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static void merge_pending(struct conv *cv);

static void on_alloc(struct conv *cv, struct thr *t, const struct sf_event *ev, uint64_t ns)
{
    if (ev->nwords < 1)
        return;
    if (cv->ncd && cv->cd_p != t->proc)
        merge_pending(cv);
    cv->cd_p = t->proc;
    int64_t size = ev->v[0] > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ev->v[0];
    SF_GROW(cv->cd, cv->ncd, cv->capcd);
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

/* Merge the chunk's changes (sorted: one thread's times) into its process's
 * list. */
static void merge_pending(struct conv *cv)
{
    struct proc *p = cv->cd_p;
    size_t n = cv->ncd, m = p->npend;
    cv->ncd = 0;
    if (!n)
        return;
    while (p->npend + n > p->cappend) {
        p->cappend = p->cappend ? 2 * p->cappend : 256;
        p->pend = sf_xrealloc(p->pend, p->cappend * sizeof *p->pend);
    }
    if (!m || p->pend[m - 1].ns <= cv->cd[0].ns) {
        memcpy(p->pend + m, cv->cd, n * sizeof *cv->cd);
        p->npend = m + n;
    } else { /* merge from the back, in place */
        size_t i = m, j = n, k = m + n;
        while (j > 0) {
            if (i > 0 && p->pend[i - 1].ns > cv->cd[j - 1].ns)
                p->pend[--k] = p->pend[--i];
            else
                p->pend[--k] = cv->cd[--j];
        }
        p->npend = m + n;
    }
    flush_counter(cv, p, 0);
}

/* Write p's pending changes: all of them, or (!all) the oldest ones down to
 * half the cap when it is exceeded. */
static void flush_counter(struct conv *cv, struct proc *p, int all)
{
    size_t i = 0;
    int64_t v = p->heap;
    if (cv->ncd && cv->cd_p == p)
        merge_pending(cv);
    if (!all && p->npend <= PEND_MAX)
        return;
    while (i < p->npend && (all || p->npend - i > PEND_MAX / 2)) {
        v = sat_add(v, p->pend[i].delta);
        write_counter(cv, p, p->pend[i].ns, v);
        i++;
    }
    if (i) {
        memmove(p->pend, p->pend + i, (p->npend - i) * sizeof *p->pend);
        p->npend -= i;
    }
}

/* ---- records ------------------------------------------------------------------ */

/* A key record with flow endpoints: they go on the held-back begin (a key
 * of an argument) or end (of the return value) it belongs to, which is
 * written now. Perfetto: flow_ids / terminating_flow_ids on that event;
 * Chrome: "s" / "f" events bound to the slice. */
/* Chrome: the flow events of t's held-back begin or end, at its time. A
 * viewer binds them to the innermost slice open there, in file order (the
 * slice that ended or began at the same nanosecond is not it). */
static void chrome_flows(struct conv *cv, struct thr *t, const struct sf_flow_ends *fe)
{
    struct sf_out *o = cv->out;
    sf_out_room(o, 2 * CJ_SMALL_MAX);
    if (fe->in)
        o->p = cj_flow(o->p, &cv->first, t->pidtid, t->ptlen, t->pd_ns, fe->in, 0);
    if (fe->out)
        o->p = cj_flow(o->p, &cv->first, t->pidtid, t->ptlen, t->pd_ns, fe->out, 1);
}

static void on_flow(struct conv *cv, struct thr *t, const struct sf_event *ev)
{
    struct sf_flow_ends fe;
    int pd = t->pd;
    if (!pd || !sf_flows_at(cv->flows, ev, &fe))
        return;
    if (cv->fmt == FMT_PERFETTO) {
        t->seq.flow_in = fe.in;
        t->seq.flow_out = fe.out;
    } else if (pd == PD_END) {
        chrome_flows(cv, t, &fe); /* before the "E": still inside the slice */
    }
    if (ev->sub == SF_EXT_ARGS && pd == PD_BEGIN) {
        unsigned n = ev->arg < ev->nwords ? ev->arg : ev->nwords;
        write_pending(cv, t, ev->v, n > PF_MAX_ARGS ? PF_MAX_ARGS : n);
    } else if (ev->sub == SF_EXT_RET && pd == PD_END && ev->nwords >= 1) {
        write_pending(cv, t, ev->v, 1);
    } else {
        write_pending(cv, t, NULL, 0);
    }
    if (cv->fmt == FMT_CHROME && pd == PD_BEGIN)
        chrome_flows(cv, t, &fe); /* after the "B": inside the slice */
}

static void cb_ext(void *ctx, struct sf_cthread *ct, const struct sf_event *ev, uint64_t ns)
{
    struct conv *cv = ctx;
    struct thr *t = thr_of(cv, ct);
    if (cv->flows && sf_flows_is_key(ev) && t->pd) {
        on_flow(cv, t, ev);
        if (!t->pd)
            return; /* written with its flows (and its ARGS or RET values) */
    }
    if (ev->sub == SF_EXT_ALLOC) {
        on_alloc(cv, t, ev, ns);
    } else if (ev->sub == SF_EXT_ARGS) {
        if (t->pd == PD_BEGIN) {
            unsigned n = ev->arg < ev->nwords ? ev->arg : ev->nwords;
            write_pending(cv, t, ev->v, n > PF_MAX_ARGS ? PF_MAX_ARGS : n);
        }
    } else if (ev->sub == SF_EXT_RET) {
        if (t->pd == PD_END && ev->nwords >= 1)
            write_pending(cv, t, ev->v, 1);
    } else if (ev->sub == SF_EXT_LOST) {
        char buf[64];
        snprintf(buf, sizeof buf, "sftrace: %" PRIu64 " records lost", ev->nwords ? ev->v[0] : 0);
        emit_instant(cv, t, ns, buf);
    }
}

/* Perfetto: one async track per tokio task (under its process), its polls
 * as slices named after the future's type, each task on a sequence of its
 * own (lib/flows.h: sf_flows_task). */
static void write_task_tracks(struct conv *cv)
{
    struct sf_out *o = cv->out;
    for (size_t i = 0; i < sf_flows_ntasks(cv->flows); i++) {
        struct sf_flow_task tk;
        sf_flows_task(cv->flows, i, &tk);
        if (!tk.npolls)
            continue;
        size_t nlen = strlen(tk.name);
        struct pf_seq seq = {.id = cv->next_seq++, .track_uuid = 3ull << 61 | (i + 1)};
        sf_out_room(o, PF_SMALL_MAX + (nlen > PF_STR_MAX ? PF_STR_MAX : nlen));
        o->p = pf_async_track(o->p, seq.track_uuid, proc_uuid(tk.pid), tk.name, tk.polls[0][0]);
        for (size_t j = 0; j < tk.npolls; j++) {
            sf_out_room(o, pf_begin_def_max(nlen, 0) + 4 * PF_SMALL_MAX);
            if (j == 0)
                o->p = pf_slice_begin_def(o->p, &seq, tk.polls[j][0], 1, tk.name, nlen, NULL, 0, 0,
                                          NULL, 0);
            else
                o->p = pf_slice_begin(o->p, &seq, tk.polls[j][0], 1, 0, NULL, 0);
            o->p = pf_slice_end(o->p, &seq, tk.polls[j][1], 0, 0, NULL);
        }
    }
}

static void cb_warning(void *ctx, const char *msg)
{
    struct conv *cv = ctx;
    sf_progress_clear(cv->pr);
    fprintf(stderr, "sftrace convert: warning: %s\n", msg);
}

/* A damage warning from the reader (it skips the damage and reads on). */
static void on_damage(void *ctx, const char *msg)
{
    struct conv *cv = ctx;
    sf_progress_clear(cv->pr);
    fprintf(stderr, "sftrace convert: %s\n", msg);
}

static int cb_tick(void *ctx)
{
    struct conv *cv = ctx;
    if (cv->ncd)
        merge_pending(cv);
    if (sf_out_failed(cv->out))
        return 1;
    struct sf_calls_stats st;
    sf_calls_stats(cv->eng, &st);
    sf_progress(cv->pr, sf_log_offset(cv->log), st.events, 0);
    return 0;
}

/* ---- command ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace convert [-h] [-q] [-o OUT] [-s SYMFILE]...\n"
               "                       [--format perfetto|chrome|sqlite] [--indexes]\n"
               "                       [--level N] [--milestone RE] [selection] LOG\n"
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
               "      --indexes         sqlite: also index every call by function, parent\n"
               "                        and (thread, start) for ad-hoc SQL (the documented\n"
               "                        queries do without; about 3x the time, see\n"
               "                        docs/sqlite.md); --no-indexes: without (default)\n"
               "      --level N         gzip level 1..9 (default 2)\n"
               "      --milestone RE    a \"stage: NAME\" marker on the process track at every\n"
               "                        entry of a function matching RE (the stages of\n"
               "                        `sftrace memory --milestone RE`)\n"
               "  -q, --quiet           no progress and no summary line\n"
               "      --no-flows        no flow arrows between the call that made a rayon job\n"
               "                        or tokio task available and the calls that ran it\n"
               "      --flows FILE      also the producer/consumer pairs FILE declares\n"
               "                        (docs/filter-format.md, Flow rules); repeatable\n"
               "  -h, --help            this help\n"
               "\n" SF_SELECT_HELP);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

enum {
    OPT_FORMAT = 0x100,
    OPT_LEVEL,
    OPT_MILESTONE,
    OPT_NO_FLOWS,
    OPT_FLOWS,
    OPT_NO_INDEXES,
    OPT_INDEXES
};

int cmd_convert(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"output", required_argument, NULL, 'o'},
        {"symbols", required_argument, NULL, 's'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"milestone", required_argument, NULL, OPT_MILESTONE},
        {"no-indexes", no_argument, NULL, OPT_NO_INDEXES},
        {"indexes", no_argument, NULL, OPT_INDEXES},
        {"quiet", no_argument, NULL, 'q'},
        {"no-flows", no_argument, NULL, OPT_NO_FLOWS},
        {"flows", required_argument, NULL, OPT_FLOWS},
        SF_SELECT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *outpath = NULL;
    const char **symfiles = NULL;
    size_t nsym = 0;
    int quiet = 0, level = 2, no_flows = 0, rc = 2, no_indexes = 0, indexes = 0;
    enum fmt fmt = FMT_PERFETTO;
    struct sf_select sel, msel; /* msel: --milestone's regex list (its -F) */
    sf_select_init(&sel);
    sf_select_init(&msel);
    char err[SF_ERRLEN + 256];
    const char **flowfiles = NULL; /* --flows FILE */
    size_t nflowfiles = 0;
    struct sf_flows *userfl = NULL; /* the flow rules, until the prepass takes them */
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:s:q" SF_SELECT_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'o':
            outpath = optarg;
            break;
        case 's':
            symfiles = sf_xrealloc(symfiles, (nsym + 1) * sizeof *symfiles);
            symfiles[nsym++] = optarg;
            break;
        case OPT_FORMAT:
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
                goto out;
            }
            break;
        case OPT_LEVEL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 9) {
                fprintf(stderr, "sftrace convert: --level wants 1..9, not '%s'\n", optarg);
                goto out;
            }
            level = (int)v;
            break;
        }
        case 'q':
            quiet = 1;
            break;
        case OPT_NO_INDEXES: /* the default; the last of the two counts */
            no_indexes = 1;
            indexes = 0;
            break;
        case OPT_INDEXES:
            indexes = 1;
            break;
        case OPT_MILESTONE:
            if (sf_select_option(&msel, 'F', optarg, err, sizeof err) < 0) {
                /* the message names -F: say it of --milestone, as memory does */
                const char *p = strstr(err, ": ");
                fprintf(stderr, "sftrace convert: --milestone '%s'%s\n", optarg, p ? p : "");
                goto out;
            }
            break;
        case OPT_NO_FLOWS:
            no_flows = 1;
            break;
        case OPT_FLOWS:
            sf_flows_addfile(&flowfiles, &nflowfiles, optarg);
            break;
        default:
            if (sf_select_getopt(&sel, "convert", c, optarg, usage) < 0)
                goto out;
        }
    }
    if (sf_operands("convert", argc, argv, optind, 1, 1, "LOG") < 0) {
        usage(stderr);
        goto out;
    }
    if ((no_indexes || indexes) && fmt != FMT_SQLITE) {
        fprintf(stderr, "sftrace convert: --%sindexes is for --format sqlite\n",
                indexes ? "" : "no-");
        goto out;
    }
    /* the user's flow rules, checked before the log is read */
    if (!no_flows && !(userfl = sf_flows_with("convert", flowfiles, nflowfiles)))
        goto out;
    rc = 1;
    const char *logpath = argv[optind];
    if (!outpath)
        outpath = fmt == FMT_PERFETTO ? "sf.pb.gz" : fmt == FMT_SQLITE ? "sf.db" : "sf.json.gz";
    int gz = fmt == FMT_PERFETTO ? !ends_with(outpath, ".pb") : ends_with(outpath, ".gz");

    struct sf_progress pr;
    sf_progress_init(&pr, "convert", !quiet);
    struct conv cv;
    memset(&cv, 0, sizeof cv);
    cv.ms.re = msel.funcs;
    cv.fmt = fmt;
    cv.first = 1;
    cv.next_seq = PF_META_SEQ + 1;
    cv.pr = &pr;
    struct sf_syms *syms = NULL;
    cv.log = sf_log_open(logpath, err, sizeof err);
    if (!cv.log) {
        fprintf(stderr, "sftrace convert: %s\n", err);
        goto out;
    }
    sf_log_set_warn(cv.log, on_damage, &cv);
    syms = sf_syms_new();
    sf_syms_set_quiet(syms, 1); /* warnings come through cb_warning */
    for (size_t i = 0; i < nsym; i++) {
        if (sf_syms_add_file(syms, symfiles[i], err, sizeof err) != 0) {
            fprintf(stderr, "sftrace convert: %s\n", err);
            goto done;
        }
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
        if (sf_sqlout_write(cv.log, syms, &sel, outpath, indexes ? SF_SQLOUT_INDEXES : 0, &sq, err,
                            sizeof err) < 0) {
            fprintf(stderr, "sftrace convert: %s\n", err);
            goto done;
        }
        rc = sf_log_summary(cv.log, err, sizeof err) ? SF_EXIT_DAMAGED : 0;
        if (rc)
            fprintf(stderr, "sftrace convert: %s\n", err);
        else if (sq.damaged) { /* found by the reader of another thread's run */
            rc = SF_EXIT_DAMAGED;
            fprintf(stderr,
                    "sftrace convert: %s: damaged log: a thread's records skipped "
                    "(meta.damaged; `sftrace dump` says where)\n",
                    logpath);
        }
        if (!quiet) {
            char nc[SF_FMT_LEN], nf[SF_FMT_LEN], sz[SF_FMT_LEN];
            sf_fmt_count(nc, sizeof nc, sq.calls.calls);
            sf_fmt_count(nf, sizeof nf, sq.functions);
            sf_fmt_bytes(sz, sizeof sz, sq.bytes);
            fprintf(stderr,
                    "sftrace convert: %s calls, %" PRIu64 " thread%s, %s function%s -> %s (%s),"
                    " %.2f s + %.2f s for the %s (CPU: engine %.2f s in %zu run%s, inserts"
                    " %.2f s)\n",
                    nc, sq.calls.threads, sq.calls.threads == 1 ? "" : "s", nf,
                    sq.functions == 1 ? "" : "s", outpath, sz, sq.insert_s, sq.index_s,
                    indexes ? "indexes" : "views and small indexes", sq.engine_cpu_s, sq.runs,
                    sq.runs == 1 ? "" : "s", sq.writer_cpu_s);
        }
        goto done;
    }
    cv.out = sf_out_open(outpath, gz ? level : 0, 0, err, sizeof err);
    if (!cv.out) {
        fprintf(stderr, "sftrace convert: %s\n", err);
        goto done;
    }
    pr.size = (uint64_t)lst.st_size;

    const struct sf_file_header *fh = sf_log_header(cv.log);
    struct sf_out *o = cv.out;
    if (fmt == FMT_PERFETTO) {
        sf_out_room(o, PF_SMALL_MAX);
        o->p = pf_preamble(o->p, fh->create_mono_ns, fh->create_real_ns);
    } else {
        sf_out_room(o, 64);
        o->p = cj_file_begin(o->p);
    }

    static const struct sf_calls_ops ops = {
        .process = cb_process,
        .process_end = cb_process_end,
        .thread = cb_thread,
        .thread_exit = cb_thread_exit,
        .calls = cb_calls,
        .ext = cb_ext,
        .lost = cb_lost,
        .warning = cb_warning,
    };
    if (!no_flows) { /* the prepass that pairs rayon jobs and tokio tasks */
        cv.flows = userfl;
        userfl = NULL;
        /* a log the prepass cannot read: the main pass says why */
        if (sf_flows_scan(cv.flows, logpath, &sel, err, sizeof err) < 0 ||
            !sf_flows_count(cv.flows)) {
            sf_flows_free(cv.flows);
            cv.flows = NULL;
        }
    }
    cv.eng = sf_calls_new(cv.log, syms, &sel, &ops, &cv);
    sf_calls_set_max_depth(cv.eng, MAX_DEPTH);
    sf_calls_set_tick(cv.eng, cb_tick, &cv);
    if (sf_calls_run(cv.eng) < 0 && !sf_out_failed(o)) {
        sf_progress_clear(&pr);
        fprintf(stderr, "sftrace convert: %s\n", sf_calls_error(cv.eng));
        fprintf(stderr, "sftrace convert: no output written\n");
        sf_out_abort(o);
        goto done;
    }
    for (size_t i = 0; i < cv.nthrs; i++)
        if (cv.thrs[i]->pd)
            write_pending(&cv, cv.thrs[i], NULL, 0);
    if (cv.flows && fmt == FMT_PERFETTO)
        write_task_tracks(&cv);
    for (size_t i = 0; i < cv.nprocs; i++) {
        flush_counter(&cv, cv.procs[i], 1);
        flush_marks(&cv, cv.procs[i]);
        if (fmt == FMT_CHROME)
            cj_process_names(&cv, cv.procs[i]);
    }
    if (fmt == FMT_CHROME) {
        sf_out_room(o, 64);
        o->p = cj_file_end(o->p);
    }
    uint64_t bytes = 0, in_bytes = sf_out_in_bytes(o);
    struct sf_calls_stats st;
    sf_calls_stats(cv.eng, &st);
    sf_progress(&pr, sf_log_offset(cv.log), st.events, 1);
    sf_progress_clear(&pr);
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
        double dt = sf_progress_elapsed(&pr);
        char ev[32], sl[32], sz[32], raw[32], rate[32];
        sf_fmt_count(rate, sizeof rate, dt > 0.001 ? (uint64_t)(st.events / dt) : st.events);
        sf_fmt_count(ev, sizeof ev, st.events);
        sf_fmt_count(sl, sizeof sl, cv.slices);
        sf_fmt_bytes(sz, sizeof sz, bytes);
        sf_fmt_bytes(raw, sizeof raw, in_bytes);
        fprintf(stderr,
                "sftrace convert: %s events, %s slices, %" PRIu64 " thread%s, %" PRIu64
                " process%s, %" PRIu64 " image%s -> %s (%s%s%s%s), %.2f s (%s events/s)\n",
                ev, sl, st.threads, st.threads == 1 ? "" : "s", st.processes,
                st.processes == 1 ? "" : "es", st.images, st.images == 1 ? "" : "s", outpath, sz,
                gz ? ", " : "", gz ? raw : "", gz ? " uncompressed" : "", dt, rate);
        if (st.unmatched || st.unfinished || st.too_deep || st.lost)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64 " exits without entry dropped, %" PRIu64
                    " slices unfinished, %" PRIu64 " calls deeper than %d hidden, %" PRIu64
                    " records lost in recording\n",
                    st.unmatched, st.unfinished, st.too_deep, MAX_DEPTH, st.lost);
        if (st.unwound)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64
                    " of the unfinished slices were left by unwinding (exception, longjmp)\n",
                    st.unwound);
        if (st.backwards)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64
                    " timestamps went backwards within a thread and were moved forward\n",
                    st.backwards);
        if (st.chunks_skipped || st.chunks_replayed)
            fprintf(stderr,
                    "sftrace convert: %" PRIu64 " chunks outside the selection skipped, %" PRIu64
                    " before the window read for the calls open at its start\n",
                    st.chunks_skipped, st.chunks_replayed);
    }

done:
    sf_calls_free(cv.eng);
    sf_flows_free(cv.flows);
    for (size_t i = 0; i < cv.nthrs; i++) {
        free(cv.thrs[i]->defd);
        free(cv.thrs[i]);
    }
    free(cv.thrs);
    for (size_t i = 0; i < cv.nprocs; i++) {
        free(cv.procs[i]->pend);
        free(cv.procs[i]->marks);
        free(cv.procs[i]->cj_name);
        free(cv.procs[i]->cj_cmd);
        free(cv.procs[i]);
    }
    free(cv.procs);
    free(cv.cd);
    for (uint32_t i = 0; i < cv.njn; i++)
        free(cv.jn[i].s);
    free(cv.jn);
    free(cv.hassrc);
    sf_milestones_free(&cv.ms);
    sf_map_free(&cv.procmap);
    sf_syms_free(syms);
    if (cv.log)
        sf_log_close(cv.log);
out:
    free(flowfiles);
    sf_flows_free(userfl);
    free(symfiles);
    sf_select_free(&sel);
    sf_select_free(&msel);
    return rc;
}
