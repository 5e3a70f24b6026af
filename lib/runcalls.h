/*
 * runcalls.h - what report, graph and flame share: their common options
 * (selection, --symbols files, -q, -j workers), a run of the call engine
 * (calls.h) over a log in one or more worker threads with a progress line,
 * and function names as one id space across the workers.
 *
 * Parallel runs. Threads' chunks are independent, so the log's threads are
 * split between workers by a read of the chunk headers (logread.h:
 * sf_log_set_headers_only; each tid's record bytes, largest first to the
 * least loaded worker) and each worker runs its
 * own reader and engine, with one symbolizer shared by all (names only:
 * none of these commands shows source lines), the selection narrowed to its tids
 * (the engine skips the other chunks without decoding them). Each worker
 * has its own consumer context; the command merges them after the run,
 * matching functions by name through sf_run_gid. Memory: per worker, the
 * reader's buffer, the functions it met and its consumer's tables.
 *
 * Options: SF_RUN_SHORTOPTS / SF_RUN_LONGOPTS / SF_RUN_HELP go into the
 * command's getopt table; sf_run_option handles them.
 */
#ifndef SFTRACE_RUNCALLS_H
#define SFTRACE_RUNCALLS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "calls.h"
#include "fmt.h"
#include "logread.h"
#include "select.h"
#include "symbols.h"

enum { SF_OPT_SYMBOLS = 0x5380, SF_OPT_FOLLOW_JOBS, SF_OPT_NO_FLOWS, SF_OPT_FLOWS };

#define SF_RUN_SHORTOPTS "qj:" SF_SELECT_SHORTOPTS
#define SF_RUN_LONGOPTS                                                                            \
    {"quiet", no_argument, NULL, 'q'}, {"symbols", required_argument, NULL, SF_OPT_SYMBOLS},       \
        {"jobs", required_argument, NULL, 'j'},                                                    \
        {"follow-jobs", no_argument, NULL, SF_OPT_FOLLOW_JOBS},                                    \
        {"no-flows", no_argument, NULL, SF_OPT_NO_FLOWS},                                          \
        {"flows", required_argument, NULL, SF_OPT_FLOWS}, SF_SELECT_LONGOPTS
#define SF_RUN_HELP                                                                                \
    "      --symbols FILE     a file with the symbols of an object (repeatable)\n"                 \
    "  -j, --jobs N           worker threads, each reading a share of the threads\n"               \
    "                         (default: one per CPU, at most 8)\n"                                 \
    "      --follow-jobs      a rayon job another thread ran, and a tokio task's\n"                \
    "                         polls, count in the calling context that made them\n"                \
    "                         (times are then summed thread time, which can exceed\n"              \
    "                         the wall time)\n"                                                    \
    "      --no-flows         do not follow jobs (the default; undoes --follow-jobs)\n"            \
    "      --flows FILE       with --follow-jobs, also the producer/consumer pairs\n"              \
    "                         FILE declares (docs/filter-format.md); repeatable\n"                 \
    "  -q, --quiet            no progress line\n" SF_SELECT_HELP

struct sf_runw;

struct sf_selopt {
    int c;
    char *arg;
};

struct sf_run {
    const char *cmd; /* "report": messages start "sftrace report: " */
    const char **symfiles;
    size_t nsym;
    int quiet;
    int jobs;      /* 0: one per CPU, at most 8 */
    int follow;    /* --follow-jobs (lib/flows.h) */
    int outermost; /* the engines' sf_calls_set_outermost(e, 1) (report) */
    /* Optional: called in each worker's thread when its engine has run
     * (not after an error): work of the merge that can be done per worker,
     * such as naming the functions it met (sf_calls_name_funcs), is then
     * done by each worker as it ends rather than by the main thread, one
     * worker after the other. */
    void (*worker_done)(struct sf_runw *w);
    const char **flowfiles; /* --flows FILE */
    size_t nflowfiles;
    struct sf_selopt *selopts;
    size_t nselopts;
    struct sf_select sel; /* parsed once here too (checks, and for the caller) */
    /* names: one id per distinct function name over all workers */
    char **names;
    size_t nnames, capnames;
    struct sf_map namemap; /* hash -> id + 1 (collisions: chained through probing) */
    struct sf_syms *syms;  /* the workers' shared symbolizer, during a run */
    /* Set by sf_run_go: the log was damaged (the warnings and the summary,
     * over all workers, were printed once); the command exits
     * SF_EXIT_DAMAGED after its output. */
    int damaged;
    /* Set by sf_run_go: lines "# process P (NAME) ended: HOW; ..." for each
     * image that did not exit with status 0 or exec (malloc'd, or NULL). */
    char *endings;
};

/*
 * For consumers of the engine's batches (ops.calls, its fast path): a
 * thread's open calls, each with the time of its ended callees, so that an
 * end record becomes a struct sf_call (depth, start, end, self time) as
 * ops.end would have given it.
 */
struct sf_bframe {
    uint32_t func;
    uint64_t start, child;
};
struct sf_bstack {
    struct sf_bframe *f;
    uint32_t depth, cap;
};
void sf_bstack_grow(struct sf_bstack *s);
static inline void sf_bstack_begin(struct sf_bstack *s, const struct sf_crec *r)
{
    if (__builtin_expect(s->depth == s->cap, 0))
        sf_bstack_grow(s);
    s->f[s->depth++] = (struct sf_bframe){r->func, r->ns, 0};
}
/* 1 and *c filled (id fields 0), or 0 if nothing is open. */
static inline int sf_bstack_end(struct sf_bstack *s, const struct sf_crec *r, struct sf_call *c)
{
    if (!s->depth)
        return 0;
    struct sf_bframe *f = &s->f[--s->depth];
    uint64_t dur = r->ns - f->start;
    if (s->depth)
        s->f[s->depth - 1].child += dur;
    *c = (struct sf_call){.func = f->func,
                          .depth = s->depth,
                          .start_ns = f->start,
                          .end_ns = r->ns,
                          .self_ns = dur - f->child,
                          .hidden = r->hidden,
                          .flags = r->flags};
    return 1;
}

struct sf_runw {
    struct sf_run *run;
    int index;
    struct sf_log *log;
    struct sf_syms *syms; /* run->syms (shared, not the worker's) */
    struct sf_select sel;
    struct sf_calls *e;
    struct sf_calls_stats st;
    void *ctx; /* the consumer's */
    void (*freectx)(void *ctx);
    int rc;
    char err[SF_ERRLEN + 128];
    uint32_t *gid; /* engine func -> name id + 1 (0: not yet) */
    size_t ngid;
    uint64_t ticked_events;
};

void sf_run_init(struct sf_run *r, const char *cmd);
void sf_run_free(struct sf_run *r);
/* A getopt value: 1 consumed, 0 not ours, -1 bad (message printed). */
int sf_run_option(struct sf_run *r, int c, const char *arg);
/* sf_run_option as a command's getopt default case: 0 consumed, or -1 when the
 * command stops (a bad argument: message printed; an option unknown to it
 * too: usage(stderr) printed). */
int sf_run_getopt(struct sf_run *r, int c, const char *arg, void (*usage)(FILE *));

/*
 * Run over path. mkctx makes each worker's consumer context (called in the
 * main thread before the run, with the worker); freectx frees one (on an
 * error, and in sf_run_done for every w->ctx still set). Returns the workers
 * (*nw of them; free with sf_run_done) or NULL after printing the error. A
 * log with no events in the selection is an error ("no events"). Damage is
 * read past as the reader does (logread.h): its warnings and the summary
 * line are printed once however many workers met it, and r->damaged set.
 */
struct sf_runw *sf_run_go(struct sf_run *r, const char *path, const struct sf_calls_ops *ops,
                          void *(*mkctx)(void *arg, struct sf_runw *w), void (*freectx)(void *ctx),
                          void *arg, int *nw);
void sf_run_done(struct sf_runw *w, int nw);
/* Totals over the workers (threads summed, the rest as one reader saw). */
void sf_run_stats(const struct sf_runw *w, int nw, struct sf_calls_stats *st);

/* The name id of a worker's function, and an id's name (main thread only,
 * after the run). */
uint32_t sf_run_gid(struct sf_runw *w, uint32_t func);
const char *sf_run_name(const struct sf_run *r, uint32_t gid);
/* The id of a name, made if new (main thread only, after the run). */
uint32_t sf_run_intern(struct sf_run *r, const char *name);
/* The id of a name, UINT32_MAX if no worker met it. */
uint32_t sf_run_find(const struct sf_run *r, const char *name);
/* The "# LOG: N events, N calls, N threads, N processes, SPAN" line (and
 * one on unfinished calls, exits without entry and lost records if any). */
void sf_run_header(FILE *f, const char *path, const struct sf_calls_stats *st);
/* the same, with TAG (e.g. "base") before the path */
void sf_run_header_tag(FILE *f, const char *tag, const char *path, const struct sf_calls_stats *st);
/* r->endings, if any, to f. */
void sf_run_endings(FILE *f, const struct sf_run *r);
/* "pid/tid name" of a thread, for --by thread headings and labels. */
void sf_run_thread_label(char *buf, size_t n, const struct sf_cthread *t);

#endif /* SFTRACE_RUNCALLS_H */
