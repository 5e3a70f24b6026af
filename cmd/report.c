/*
 * report.c - `sftrace report`: time per function.
 *
 * For each function: calls, total (inclusive) time, self time, and the
 * average, shortest and longest call. Definitions:
 *   total  the time inside the function: a recursive function's total counts
 *          only its outermost active call on each thread, so nested calls
 *          are not counted twice;
 *   self   total minus the time in its callees: every call's own time, so
 *          the self times of all functions add up to the time of all
 *          outermost calls;
 *   avg, min, max   over every call's duration (recursive calls included);
 *   unfinished      calls that had no exit (thread, process or log end,
 *          unwinding): counted, their time runs to where they were ended.
 * `--by process|thread` makes one table per process or thread. `--diff BASE
 * NEW` runs both logs and shows the change per function, matched by name.
 *
 * The call engine (lib/calls.h) delivers the calls, in one or more worker
 * threads (lib/runcalls.h), as batches of end records only: each gives the
 * call's start, its self time and whether it was its function's outermost
 * active call on its thread (sf_calls_set_outermost), so the tables here
 * need no stack and no counts of their own. Each worker has its own
 * per-function tables, by the engine's function index; they are merged by
 * function name at the end, when the functions that were called are named
 * (one symbolizer shared by the workers; no source lines). Memory: threads
 * x stack depth and groups x functions, never the number of events.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "cctree.h"
#include "cmds.h"
#include "fmt.h"
#include "runcalls.h"

#define CMD "sftrace report"

enum by { BY_NONE, BY_PROCESS, BY_THREAD };
enum key { K_TOTAL, K_SELF, K_CALLS, K_AVG, K_MIN, K_MAX, K_NAME };
static const char *const key_names[] = {"total", "self", "calls", "avg", "min", "max", "name"};

/* 64 bytes, one cache line a function in a group's table (grow_group
 * aligns it), so that a call's figures cost one miss when the calls spread
 * over thousands of functions. */
struct fstat {
    uint64_t calls, total, self, sum, min, max, unfinished, pad;
};

/* ---- per worker, while the engine runs ---------------------------------------- */

/* A table of function stats, by engine function index (dense) or by name id
 * (after the merge). */
struct group {
    uint32_t pid, tid;
    uint64_t first_ns; /* its threads' first event: groups are shown in this order */
    char label[64];
    struct fstat *f;
    size_t nf;
};

static __attribute__((noinline)) void grow_group(struct group *g, uint32_t func)
{
    size_t n = g->nf ? g->nf : 64;
    while (n <= func)
        n *= 2;
    struct fstat *f = sf_xaligned(64, n * sizeof *f);
    if (g->nf)
        memcpy(f, g->f, g->nf * sizeof *f);
    memset(f + g->nf, 0, (n - g->nf) * sizeof *f);
    free(g->f);
    g->f = f;
    g->nf = n;
}

static inline struct fstat *stat_of(struct group *g, uint32_t func)
{
    if (__builtin_expect(func >= g->nf, 0))
        grow_group(g, func);
    return &g->f[func];
}

static void fstat_add(struct fstat *d, const struct fstat *s)
{
    if (!s->calls)
        return;
    if (!d->calls || s->min < d->min)
        d->min = s->min;
    if (s->max > d->max)
        d->max = s->max;
    d->calls += s->calls;
    d->total += s->total;
    d->self += s->self;
    d->sum += s->sum;
    d->unfinished += s->unfinished;
}

struct rthr {
    struct group *g;
};

struct rctx {
    enum by by;
    struct sf_runw *w;
    struct group **groups;
    size_t ngroups, capgroups;
    struct sf_map groupmap; /* key -> index + 1 */
    struct rthr **thrs;     /* every thread state made, for freeing */
    size_t nthrs, capthrs;
};

static struct group *get_group(struct rctx *r, struct sf_cthread *t)
{
    uint64_t key = r->by == BY_NONE      ? 0
                   : r->by == BY_PROCESS ? t->pid
                                         : (uint64_t)t->pid << 32 | t->tid;
    uint64_t *slot = sf_map_get(&r->groupmap, key, 1);
    if (!*slot) {
        struct group *g = sf_xrealloc(NULL, sizeof *g);
        memset(g, 0, sizeof *g);
        g->pid = r->by == BY_NONE ? 0 : t->pid;
        g->tid = r->by == BY_THREAD ? t->tid : 0;
        if (r->by == BY_THREAD)
            sf_run_thread_label(g->label, sizeof g->label, t);
        else if (r->by == BY_PROCESS)
            snprintf(g->label, sizeof g->label, "%u %s", t->pid, t->img ? t->img->name : "");
        g->first_ns = t->first_ns;
        SF_GROW(r->groups, r->ngroups, r->capgroups);
        r->groups[r->ngroups++] = g;
        *slot = r->ngroups;
    }
    struct group *g = r->groups[*slot - 1];
    if (t->first_ns < g->first_ns)
        g->first_ns = t->first_ns;
    return g;
}

static struct rthr *thr_of(struct rctx *r, struct sf_cthread *t)
{
    if (t->user)
        return t->user;
    struct rthr *x = sf_xrealloc(NULL, sizeof *x);
    memset(x, 0, sizeof *x);
    x->g = get_group(r, t);
    SF_GROW(r->thrs, r->nthrs, r->capthrs);
    r->thrs[r->nthrs++] = x;
    t->user = x;
    return x;
}

static void on_thread(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ns;
    struct rctx *r = ctx;
    struct rthr *x = thr_of(r, t);
    if (r->by == BY_THREAD && t->name[0])
        sf_run_thread_label(x->g->label, sizeof x->g->label, t); /* the latest name */
}

/*
 * The engine's batches (its fast path), of end records only
 * (sf_calls_set_outermost(e, 1), set through struct sf_run's outermost):
 * each end gives the call's start, self time and whether it was its
 * function's outermost active call on the thread, which is what total
 * counts. One pass, no stack of its own, no branch on the record's kind.
 */
static void on_calls(void *ctx, struct sf_cthread *t, const struct sf_crec *rec, size_t n)
{
    struct rctx *r = ctx;
    struct rthr *x = thr_of(r, t);
    struct group *g = x->g;
    /* every function of the batch is below the engine's count: one grow */
    uint32_t nf = sf_calls_nfuncs(r->w->e);
    if (n && nf)
        stat_of(g, nf - 1);
    struct fstat *f = g->f;
    for (size_t i = 0; i < n; i++) {
        const struct sf_crec *c = &rec[i];
        if (i + 8 < n) /* the line of a call further on (calls.h: func < nf) */
            __builtin_prefetch(&f[rec[i + 8].func], 1);
        if (__builtin_expect(c->kind != SF_CREC_END, 0))
            continue; /* none come (ends only) */
        struct fstat *s = &f[c->func];
        uint64_t dur = c->ns - c->start_ns;
        if (!s->calls || dur < s->min)
            s->min = dur;
        if (dur > s->max)
            s->max = dur;
        s->calls++;
        s->sum += dur;
        s->self += c->self_ns;
        /* no branches on the flags: a recursive program's calls are
         * outermost or not in no pattern a predictor learns */
        s->unfinished += (c->flags & SF_CALL_UNFINISHED) != 0;
        s->total += dur & -(uint64_t)((c->flags & SF_CALL_OUTERMOST) != 0);
    }
}

static void free_thr(struct rthr *x)
{
    free(x);
}

static void on_thread_exit(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ns;
    struct rctx *r = ctx;
    struct rthr *x = t->user;
    if (!x)
        return;
    for (size_t i = 0; i < r->nthrs; i++)
        if (r->thrs[i] == x) {
            r->thrs[i] = r->thrs[--r->nthrs];
            break;
        }
    free_thr(x);
    t->user = NULL;
}

static const struct sf_calls_ops ops = {
    .thread = on_thread,
    .thread_exit = on_thread_exit,
    .calls = on_calls,
};

static enum by g_by;
static void free_rctx(void *ctx);
static void *mkctx(void *arg, struct sf_runw *w)
{
    (void)arg;
    struct rctx *r = sf_xrealloc(NULL, sizeof *r);
    memset(r, 0, sizeof *r);
    r->by = g_by;
    r->w = w;
    return r;
}

static void free_rctx(void *ctx)
{
    struct rctx *r = ctx;
    for (size_t i = 0; i < r->nthrs; i++)
        free_thr(r->thrs[i]);
    free(r->thrs);
    for (size_t i = 0; i < r->ngroups; i++) {
        free(r->groups[i]->f);
        free(r->groups[i]);
    }
    free(r->groups);
    sf_map_free(&r->groupmap);
    free(r);
}

/* ---- after the run: merged by name --------------------------------------------- */

struct row {
    uint32_t gid;
    struct fstat s;
};

struct result {
    struct sf_run run;
    struct sf_calls_stats st;
    int nworkers;
    struct group **groups; /* f indexed by name id */
    size_t ngroups;
};

/* --follow-jobs: the per-function figures from the calling-context tree
 * that follows jobs (lib/cctree.h): calls and self time summed over a
 * function's nodes, total over its nodes with no node of it above them
 * (summed thread time: the jobs made inside its calls that other threads
 * ran count in it), avg = the calls' own time (wall) / calls; shortest and
 * longest are not known per call then (0, shown as "-"). */
static int run_log_followed(struct result *res, const char *path)
{
    struct sf_cctree t;
    if (sf_run_cctree(&res->run, path, 0, NULL, &t, &res->st) < 0) {
        sf_cctree_free(&t);
        return -1;
    }
    struct group *d = sf_xcalloc(1, sizeof *d);
    res->groups = sf_xrealloc(NULL, sizeof *res->groups);
    res->groups[res->ngroups++] = d;
    uint32_t *active = sf_xcalloc(res->run.nnames + 1, sizeof *active);
    struct ent {
        uint32_t node, kid; /* kid: the next child to visit, SF_CC_NONE: done */
    } *st = NULL;
    size_t n = 0, cap = 0;
    SF_GROW_FROM(st, n, cap, 64);
    st[n++] = (struct ent){SF_CC_ROOT, t.n[SF_CC_ROOT].first};
    while (n) {
        struct ent *e = &st[n - 1];
        if (e->kid == SF_CC_NONE) {
            if (e->node != SF_CC_ROOT && !t.n[e->node].label)
                active[t.n[e->node].func]--;
            n--;
            continue;
        }
        uint32_t c = e->kid;
        e->kid = t.n[c].next;
        const struct sf_ccnode *x = &t.n[c];
        if (!x->label) {
            struct fstat *f = stat_of(d, x->func);
            f->calls += x->calls;
            f->self += x->self_ns;
            f->sum += x->wall_ns;
            f->unfinished += x->unfinished;
            if (!active[x->func]++)
                f->total += x->total_ns;
        }
        SF_GROW_FROM(st, n, cap, 64);
        st[n++] = (struct ent){c, x->first};
        if (x->label) /* labels do not count as a function */
            st[n - 1].node = SF_CC_ROOT;
    }
    free(st);
    free(active);
    sf_cctree_free(&t);
    return 0;
}

static int by_first(const void *a, const void *b)
{
    const struct group *x = *(const struct group *const *)a, *y = *(const struct group *const *)b;
    if (x->first_ns != y->first_ns)
        return x->first_ns < y->first_ns ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* In each worker's thread as it ends (runcalls.h): name the functions it
 * has calls of, in the symbolizer's best order (calls.h), so that the
 * merge finds them named. */
static void name_called(struct sf_runw *w)
{
    struct rctx *r = w->ctx;
    uint32_t *called = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < r->ngroups; i++)
        for (size_t f = 0; f < r->groups[i]->nf; f++)
            if (r->groups[i]->f[f].calls) {
                SF_GROW(called, n, cap);
                called[n++] = (uint32_t)f;
            }
    sf_calls_name_funcs(w->e, called, n);
    free(called);
}

static int run_log(struct result *res, const char *path)
{
    struct sf_runw *w = NULL;
    int nw = 0;
    if (res->run.follow)
        return run_log_followed(res, path);
    res->run.outermost = 1;
    res->run.worker_done = name_called;
    w = sf_run_go(&res->run, path, &ops, mkctx, free_rctx, NULL, &nw);
    if (!w)
        return -1;
    sf_run_stats(w, nw, &res->st);
    res->nworkers = nw;
    struct sf_map gm = {0};
    for (int k = 0; k < nw; k++) {
        struct rctx *r = w[k].ctx;
        for (size_t i = 0; i < r->ngroups; i++) {
            struct group *g = r->groups[i];
            uint64_t key = (uint64_t)g->pid << 32 | g->tid;
            uint64_t *slot = sf_map_get(&gm, key, 1);
            if (!*slot) {
                struct group *d = sf_xrealloc(NULL, sizeof *d);
                memset(d, 0, sizeof *d);
                d->pid = g->pid;
                d->tid = g->tid;
                d->first_ns = g->first_ns;
                memcpy(d->label, g->label, sizeof d->label);
                res->groups = sf_xrealloc(res->groups, (res->ngroups + 1) * sizeof *res->groups);
                res->groups[res->ngroups++] = d;
                *slot = res->ngroups;
            }
            struct group *d = res->groups[*slot - 1];
            if (g->first_ns < d->first_ns)
                d->first_ns = g->first_ns;
            for (size_t f = 0; f < g->nf; f++)
                if (g->f[f].calls)
                    fstat_add(stat_of(d, sf_run_gid(&w[k], (uint32_t)f)), &g->f[f]);
        }
        free_rctx(r);
        w[k].ctx = NULL;
    }
    sf_map_free(&gm);
    sf_run_done(w, nw);
    /* in the order of their first event, not of the workers that met them */
    qsort(res->groups, res->ngroups, sizeof *res->groups, by_first);
    return 0;
}

static void free_result(struct result *res)
{
    for (size_t i = 0; i < res->ngroups; i++) {
        free(res->groups[i]->f);
        free(res->groups[i]);
    }
    free(res->groups);
    sf_run_free(&res->run);
}

static uint64_t avg(const struct fstat *s)
{
    return s->calls ? s->sum / s->calls : 0;
}

static uint64_t key_val(const struct fstat *s, enum key k)
{
    switch (k) {
    case K_TOTAL:
        return s->total;
    case K_SELF:
        return s->self;
    case K_CALLS:
        return s->calls;
    case K_AVG:
        return avg(s);
    case K_MIN:
        return s->min;
    case K_MAX:
        return s->max;
    default:
        return 0;
    }
}

static enum key sort_key;
static const struct sf_run *sort_run;
static int by_key(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (sort_key != K_NAME) {
        uint64_t u = key_val(&x->s, sort_key), v = key_val(&y->s, sort_key);
        if (u != v)
            return u > v ? -1 : 1;
    }
    return strcmp(sf_run_name(sort_run, x->gid), sf_run_name(sort_run, y->gid));
}

/* The rows of g's functions with calls (*n of them), the first
 * min(limit, *n) in order (limit 0: all): with a limit, only the first
 * ones are picked out and sorted (by_key is a total order: names are
 * unique), not all of a big program's thousands of functions. */
static struct row *rows_of(const struct result *res, const struct group *g, size_t *n, size_t limit)
{
    struct row *rows = sf_xrealloc(NULL, (g->nf + 1) * sizeof *rows);
    size_t k = 0;
    for (size_t f = 0; f < g->nf; f++)
        if (g->f[f].calls)
            rows[k++] = (struct row){(uint32_t)f, g->f[f]};
    sort_run = &res->run;
    *n = k;
    if (!limit || limit >= k) {
        qsort(rows, k, sizeof *rows, by_key);
        return rows;
    }
    struct row *top = sf_xrealloc(NULL, limit * sizeof *top); /* sorted, the best first */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m == limit && by_key(&rows[i], &top[m - 1]) >= 0)
            continue;
        size_t j = m < limit ? m++ : m - 1; /* the last one drops out when full */
        for (; j > 0 && by_key(&rows[i], &top[j - 1]) < 0; j--)
            top[j] = top[j - 1];
        top[j] = rows[i];
    }
    memcpy(rows, top, limit * sizeof *top);
    free(top);
    return rows;
}

static void print_report(const struct result *res, const char *path, enum sf_outfmt fmt,
                         size_t limit)
{
    FILE *f = stdout;
    char a[SF_FMT_LEN], b[SF_FMT_LEN], c[SF_FMT_LEN], d[SF_FMT_LEN], e[SF_FMT_LEN], g2[SF_FMT_LEN];
    enum by by = g_by;
    if (fmt == SF_OUT_TABLE) {
        sf_run_header(f, path, &res->st);
        sf_run_endings(f, &res->run);
    }
    if (fmt == SF_OUT_TABLE && res->run.follow)
        fprintf(f, "# --follow-jobs: total = summed thread time (jobs and tasks made inside a\n"
                   "# function's calls count in it, whichever thread ran them; can exceed the\n"
                   "# wall time); avg = the calls' own (wall) time / calls; min, max unknown\n");
    if (fmt == SF_OUT_CSV)
        fprintf(f, "%sfunction,calls,total_ns,self_ns,avg_ns,min_ns,max_ns,unfinished\n",
                by == BY_THREAD    ? "pid,tid,thread,"
                : by == BY_PROCESS ? "pid,process,"
                                   : "");
    if (fmt == SF_OUT_JSON) {
        const struct sf_calls_stats *st = &res->st;
        fprintf(f, "{\"log\": ");
        sf_json_str(f, path);
        fprintf(f,
                ", \"events\": %" PRIu64 ", \"calls\": %" PRIu64 ", \"threads\": %" PRIu64
                ", \"processes\": %" PRIu64 ", \"first_ns\": %" PRIu64 ", \"last_ns\": %" PRIu64
                ", \"unfinished\": %" PRIu64 ", \"unmatched\": %" PRIu64 ", \"lost\": %" PRIu64
                ",\n \"groups\": [",
                st->events, st->calls, st->threads, st->processes, st->first_ns, st->last_ns,
                st->unfinished, st->unmatched, st->lost);
    }
    for (size_t gi = 0; gi < res->ngroups; gi++) {
        const struct group *g = res->groups[gi];
        size_t n;
        struct row *rows = rows_of(res, g, &n, limit);
        size_t shown = limit && limit < n ? limit : n;
        if (fmt == SF_OUT_TABLE) {
            if (by != BY_NONE)
                fprintf(f, "\n%s %s\n", by == BY_THREAD ? "thread" : "process", g->label);
            int unf = 0;
            for (size_t i = 0; i < shown; i++)
                unf |= rows[i].s.unfinished != 0;
            static const char *const h[] = {"calls", "total", "self",       "avg",
                                            "min",   "max",   "unfinished", "function"};
            static const char *const h2[] = {"calls", "total", "self",    "avg",
                                             "min",   "max",   "function"};
            struct sf_table *t =
                unf ? sf_table_new(8, h, "rrrrrrrl") : sf_table_new(7, h2, "rrrrrrl");
            for (size_t i = 0; i < shown; i++) {
                const struct fstat *s = &rows[i].s;
                char cs[SF_FMT_LEN];
                sf_fmt_grouped(cs, sizeof cs, s->calls);
                const char *name = sf_run_name(&res->run, rows[i].gid);
                char un[SF_FMT_LEN];
                snprintf(un, sizeof un, "%" PRIu64, s->unfinished);
                const char *cells[8] = {cs,
                                        sf_fmt_dur(a, sizeof a, s->total),
                                        sf_fmt_dur(b, sizeof b, s->self),
                                        sf_fmt_dur(c, sizeof c, avg(s)),
                                        res->run.follow ? "-" : sf_fmt_dur(d, sizeof d, s->min),
                                        res->run.follow ? "-" : sf_fmt_dur(e, sizeof e, s->max),
                                        unf ? (s->unfinished ? un : "-") : name,
                                        name};
                sf_table_add(t, cells);
            }
            sf_table_print(t, f, "");
            sf_table_free(t);
            if (shown < n)
                fprintf(f, "(%zu more functions: --limit 0 shows all)\n", n - shown);
        } else if (fmt == SF_OUT_CSV) {
            for (size_t i = 0; i < shown; i++) {
                const struct fstat *s = &rows[i].s;
                if (by == BY_THREAD) {
                    fprintf(f, "%u,%u,", g->pid, g->tid);
                    const char *sp = strchr(g->label, ' ');
                    sf_csv_str(f, sp ? sp + 1 : "");
                    fputc(',', f);
                } else if (by == BY_PROCESS) {
                    fprintf(f, "%u,", g->pid);
                    const char *sp = strchr(g->label, ' ');
                    sf_csv_str(f, sp ? sp + 1 : "");
                    fputc(',', f);
                }
                sf_csv_str(f, sf_run_name(&res->run, rows[i].gid));
                fprintf(f,
                        ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                        ",%" PRIu64 "\n",
                        s->calls, s->total, s->self, avg(s), s->min, s->max, s->unfinished);
            }
        } else {
            fprintf(f, "%s\n  {", gi ? "," : "");
            if (by == BY_THREAD)
                fprintf(f, "\"pid\": %u, \"tid\": %u, \"label\": ", g->pid, g->tid);
            else if (by == BY_PROCESS)
                fprintf(f, "\"pid\": %u, \"label\": ", g->pid);
            if (by != BY_NONE) {
                sf_json_str(f, g->label);
                fprintf(f, ", ");
            }
            fprintf(f, "\"functions\": [");
            for (size_t i = 0; i < shown; i++) {
                const struct fstat *s = &rows[i].s;
                fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
                sf_json_str(f, sf_run_name(&res->run, rows[i].gid));
                fprintf(f,
                        ", \"calls\": %" PRIu64 ", \"total_ns\": %" PRIu64 ", \"self_ns\": %" PRIu64
                        ", \"avg_ns\": %" PRIu64 ", \"min_ns\": %" PRIu64 ", \"max_ns\": %" PRIu64
                        ", \"unfinished\": %" PRIu64 "}",
                        s->calls, s->total, s->self, avg(s), s->min, s->max, s->unfinished);
            }
            fprintf(f, "\n  ], \"more\": %zu}", n - shown);
        }
        free(rows);
    }
    if (fmt == SF_OUT_JSON)
        fprintf(f, "\n]}\n");
    (void)g2;
}

/* ---- --diff ------------------------------------------------------------------ */

struct drow {
    const char *name;
    struct fstat b, n;
    int64_t delta; /* of the sort key */
};

static int by_delta(const void *a, const void *b)
{
    const struct drow *x = a, *y = b;
    uint64_t u = x->delta < 0 ? -(uint64_t)x->delta : (uint64_t)x->delta;
    uint64_t v = y->delta < 0 ? -(uint64_t)y->delta : (uint64_t)y->delta;
    if (u != v)
        return u > v ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void pct(char *buf, size_t n, uint64_t b, uint64_t v)
{
    if (b == v)
        snprintf(buf, n, "0.0%%");
    else if (!b)
        snprintf(buf, n, "new");
    else if (!v)
        snprintf(buf, n, "gone");
    else
        snprintf(buf, n, "%+.1f%%", 100.0 * ((double)v - (double)b) / (double)b);
}

static int print_diff(const struct result *base, const struct result *nw, const char *bpath,
                      const char *npath, enum sf_outfmt fmt, size_t limit)
{
    /* names differ in id between the two runs: match by string */
    struct sf_map idx = {0}; /* name id in the base run -> row + 1 */
    const struct group *gb = base->groups[0], *gn = nw->groups[0];
    size_t cap = gb->nf + gn->nf + 1, nr = 0;
    struct drow *rows = sf_xrealloc(NULL, cap * sizeof *rows);
    for (size_t f = 0; f < gb->nf; f++)
        if (gb->f[f].calls) {
            rows[nr] = (struct drow){sf_run_name(&base->run, (uint32_t)f), gb->f[f], {0}, 0};
            *sf_map_get(&idx, f, 1) = ++nr;
        }
    /* new run: look its names up among the base's (the base run interned them) */
    for (size_t f = 0; f < gn->nf; f++) {
        if (!gn->f[f].calls)
            continue;
        const char *name = sf_run_name(&nw->run, (uint32_t)f);
        uint32_t bid = sf_run_find(&base->run, name);
        uint64_t *slot = bid != UINT32_MAX ? sf_map_get(&idx, bid, 0) : NULL;
        size_t r = slot ? *slot : 0;
        if (r) {
            rows[r - 1].n = gn->f[f];
        } else {
            rows[nr++] = (struct drow){name, {0}, gn->f[f], 0};
        }
    }
    sf_map_free(&idx);
    for (size_t i = 0; i < nr; i++) {
        enum key k = sort_key == K_NAME ? K_TOTAL : sort_key;
        rows[i].delta = (int64_t)key_val(&rows[i].n, k) - (int64_t)key_val(&rows[i].b, k);
    }
    qsort(rows, nr, sizeof *rows, by_delta);
    size_t shown = limit && limit < nr ? limit : nr;
    FILE *f = stdout;
    char a[SF_FMT_LEN], b[SF_FMT_LEN], c[SF_FMT_LEN], d[SF_FMT_LEN], e[SF_FMT_LEN], g[SF_FMT_LEN],
        h[SF_FMT_LEN], p1[SF_FMT_LEN], p2[SF_FMT_LEN], c1[SF_FMT_LEN], c2[SF_FMT_LEN],
        c3[SF_FMT_LEN];
    if (fmt == SF_OUT_TABLE) {
        sf_run_header_tag(f, "base", bpath, &base->st);
        sf_run_header_tag(f, "new ", npath, &nw->st);
        static const char *const hd[] = {"calls", "new",  "change", "total",  "new", "change",
                                         "%",     "self", "new",    "change", "%",   "function"};
        struct sf_table *t = sf_table_new(12, hd, "rrrrrrrrrrrl");
        for (size_t i = 0; i < shown; i++) {
            const struct drow *r = &rows[i];
            int64_t dc = (int64_t)r->n.calls - (int64_t)r->b.calls;
            c3[0] = dc < 0 ? '-' : '+';
            sf_fmt_grouped(c3 + 1, sizeof c3 - 1, (uint64_t)(dc < 0 ? -dc : dc));
            pct(p1, sizeof p1, r->b.total, r->n.total);
            pct(p2, sizeof p2, r->b.self, r->n.self);
            const char *cells[12] = {
                sf_fmt_grouped(c1, sizeof c1, r->b.calls),
                sf_fmt_grouped(c2, sizeof c2, r->n.calls),
                dc ? c3 : "0",
                sf_fmt_dur(a, sizeof a, r->b.total),
                sf_fmt_dur(b, sizeof b, r->n.total),
                sf_fmt_ddur(c, sizeof c, (int64_t)r->n.total - (int64_t)r->b.total),
                p1,
                sf_fmt_dur(d, sizeof d, r->b.self),
                sf_fmt_dur(e, sizeof e, r->n.self),
                sf_fmt_ddur(g, sizeof g, (int64_t)r->n.self - (int64_t)r->b.self),
                p2,
                r->name};
            sf_table_add(t, cells);
        }
        sf_table_print(t, f, "");
        sf_table_free(t);
        if (shown < nr)
            fprintf(f, "(%zu more functions: --limit 0 shows all)\n", nr - shown);
    } else if (fmt == SF_OUT_CSV) {
        fprintf(f, "function,base_calls,new_calls,base_total_ns,new_total_ns,total_change_ns,"
                   "base_self_ns,new_self_ns,self_change_ns\n");
        for (size_t i = 0; i < shown; i++) {
            const struct drow *r = &rows[i];
            sf_csv_str(f, r->name);
            fprintf(f,
                    ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRIu64
                    ",%" PRIu64 ",%" PRId64 "\n",
                    r->b.calls, r->n.calls, r->b.total, r->n.total,
                    (int64_t)r->n.total - (int64_t)r->b.total, r->b.self, r->n.self,
                    (int64_t)r->n.self - (int64_t)r->b.self);
        }
    } else {
        fprintf(f, "{\"base\": ");
        sf_json_str(f, bpath);
        fprintf(f, ", \"new\": ");
        sf_json_str(f, npath);
        fprintf(f, ", \"functions\": [");
        for (size_t i = 0; i < shown; i++) {
            const struct drow *r = &rows[i];
            fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
            sf_json_str(f, r->name);
            fprintf(f,
                    ", \"base\": {\"calls\": %" PRIu64 ", \"total_ns\": %" PRIu64
                    ", \"self_ns\": %" PRIu64 "}, \"new\": {\"calls\": %" PRIu64
                    ", \"total_ns\": %" PRIu64 ", \"self_ns\": %" PRIu64
                    "}, \"change\": {\"calls\": %" PRId64 ", \"total_ns\": %" PRId64
                    ", \"self_ns\": %" PRId64 "}}",
                    r->b.calls, r->b.total, r->b.self, r->n.calls, r->n.total, r->n.self,
                    (int64_t)r->n.calls - (int64_t)r->b.calls,
                    (int64_t)r->n.total - (int64_t)r->b.total,
                    (int64_t)r->n.self - (int64_t)r->b.self);
        }
        fprintf(f, "\n], \"more\": %zu}\n", nr - shown);
    }
    free(rows);
    (void)h;
    return 0;
}

/* ---- command -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sftrace report [options] LOG\n"
            "       sftrace report [options] --diff BASE.log NEW.log\n"
            "\n"
            "Time per function: calls, total (inclusive) time, self time, and the average,\n"
            "shortest and longest call. A recursive function's total counts only its\n"
            "outermost active call; self time excludes every callee, so the self times\n"
            "add up to the time of all outermost calls. Calls with no exit (thread,\n"
            "process or log end, unwinding) are counted and shown as unfinished.\n"
            "\n"
            "  -s, --sort KEY         total (default), self, calls, avg, min, max, name\n"
            "      --limit N          the first N functions (default 30; 0: all)\n"
            "      --by WHAT          none (default), process or thread: a table each\n"
            "      --format FMT       table (default), csv or json (times in ns)\n"
            "      --diff             two logs, BASE and NEW: each function's change,\n"
            "                         largest first (by the sort key), matched by name\n"
            "%s"
            "  -h, --help             this help\n",
            SF_RUN_HELP);
}

enum { OPT_LIMIT = 0x5400, OPT_BY, OPT_FORMAT, OPT_DIFF };

int cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"sort", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"by", required_argument, NULL, OPT_BY},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"diff", no_argument, NULL, OPT_DIFF},
        SF_RUN_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct result res[2];
    memset(res, 0, sizeof res);
    sf_run_init(&res[0].run, "report");
    enum sf_outfmt fmt = SF_OUT_TABLE;
    size_t limit = 30;
    int diff = 0, rc = 2, c;
    g_by = BY_NONE;
    sort_key = K_TOTAL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hs:" SF_RUN_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 's': {
            int k = -1;
            for (int i = 0; i < 7; i++)
                if (!strcmp(optarg, key_names[i]))
                    k = i;
            if (k < 0) {
                fprintf(stderr,
                        CMD ": unknown sort key '%s' (total, self, calls, avg, min, max, name)\n",
                        optarg);
                goto out;
            }
            sort_key = (enum key)k;
            break;
        }
        case OPT_LIMIT: {
            long v;
            if (sf_opt_long("report", "--limit", optarg, 0, 1L << 30, &v) < 0)
                goto out;
            limit = (size_t)v;
            break;
        }
        case OPT_BY: {
            static const char *const by[] = {"none", "process", "thread", NULL};
            int k = sf_opt_choice("report", "--by", optarg, by);
            if (k < 0)
                goto out;
            g_by = (enum by)k;
            break;
        }
        case OPT_FORMAT:
            if (sf_outfmt_parse(optarg, &fmt) < 0) {
                fprintf(stderr, CMD ": unknown format '%s' (table, csv or json)\n", optarg);
                goto out;
            }
            break;
        case OPT_DIFF:
            diff = 1;
            break;
        default:
            if (sf_run_getopt(&res[0].run, c, optarg, usage) < 0)
                goto out;
        }
    }
    if (optind != argc - 1 - diff) {
        if (diff)
            fprintf(stderr, CMD ": --diff wants two logs, BASE and NEW\n");
        else {
            sf_operands("report", argc, argv, optind, 1, 1, "LOG"); /* says what is wrong */
            usage(stderr);
        }
        goto out;
    }
    if (res[0].run.follow && g_by != BY_NONE) {
        fprintf(stderr, CMD ": --follow-jobs joins threads' work: no --by\n");
        goto out;
    }
    if (diff && g_by != BY_NONE) {
        fprintf(stderr, CMD ": --diff compares whole runs: no --by\n");
        goto out;
    }
    rc = 1;
    if (diff) {
        /* the same options for the second run */
        sf_run_init(&res[1].run, "report");
        struct sf_run *r0 = &res[0].run, *r1 = &res[1].run;
        r1->quiet = r0->quiet;
        r1->jobs = r0->jobs;
        r1->follow = r0->follow;
        for (size_t i = 0; i < r0->nflowfiles; i++)
            sf_run_option(r1, SF_OPT_FLOWS, r0->flowfiles[i]);
        for (size_t i = 0; i < r0->nsym; i++)
            sf_run_option(r1, SF_OPT_SYMBOLS, r0->symfiles[i]);
        for (size_t i = 0; i < r0->nselopts; i++)
            sf_run_option(r1, r0->selopts[i].c, r0->selopts[i].arg);
        if (run_log(&res[0], argv[optind]) < 0 || run_log(&res[1], argv[optind + 1]) < 0)
            goto out;
        if (!res[0].ngroups || !res[1].ngroups)
            goto out;
        rc = print_diff(&res[0], &res[1], argv[optind], argv[optind + 1], fmt, limit);
        if (rc == 0 && (res[0].run.damaged || res[1].run.damaged))
            rc = SF_EXIT_DAMAGED;
    } else {
        if (run_log(&res[0], argv[optind]) < 0)
            goto out;
        print_report(&res[0], argv[optind], fmt, limit);
        rc = res[0].run.damaged ? SF_EXIT_DAMAGED : 0; /* the report has everything readable */
    }
    if (sf_stdout_flush(CMD) != 0)
        rc = 1;
out:
    free_result(&res[0]);
    if (diff)
        free_result(&res[1]);
    return rc;
}
