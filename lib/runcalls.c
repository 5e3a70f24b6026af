/*
 * runcalls.c - running the call engine for the analysis commands, in one or
 * more worker threads (see runcalls.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "callgraph.h"
#include "fmt.h"
#include "runcalls.h"
#include "flows.h"

void sf_run_init(struct sf_run *r, const char *cmd)
{
    memset(r, 0, sizeof *r);
    r->cmd = cmd;
    sf_select_init(&r->sel);
}

void sf_run_free(struct sf_run *r)
{
    for (size_t i = 0; i < r->nselopts; i++)
        free(r->selopts[i].arg);
    free(r->selopts);
    free(r->symfiles);
    sf_select_free(&r->sel);
    for (size_t i = 0; i < r->nnames; i++)
        free(r->names[i]);
    free(r->names);
    sf_map_free(&r->namemap);
    sf_syms_free(r->syms);
    free(r->flowfiles);
    free(r->endings);
}

/* How the images of the log that did not end normally ended (every worker
 * reads every END: the first one's log has them all). */
static void collect_endings(struct sf_run *r, struct sf_log *log)
{
    free(r->endings);
    r->endings = NULL;
    size_t len = 0;
    for (size_t i = 0; log && i < sf_log_nimages(log); i++) {
        const struct sf_image *img = sf_log_image_at(log, i);
        int bad;
        char how[64], line[512];
        if (!img->ended)
            continue;
        sf_end_how(how, sizeof how, &img->end, &bad);
        if (!bad)
            continue;
        int n = snprintf(line, sizeof line,
                         "# process %u (%s) ended: %s; calls still open are unfinished\n", img->pid,
                         img->name, how);
        if (n < 0)
            continue;
        r->endings = sf_xrealloc(r->endings, len + (size_t)n + 1);
        memcpy(r->endings + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
}

void sf_run_endings(FILE *f, const struct sf_run *r)
{
    if (r->endings)
        fputs(r->endings, f);
}

int sf_run_option(struct sf_run *r, int c, const char *arg)
{
    switch (c) {
    case 'q':
        r->quiet = 1;
        return 1;
    case SF_OPT_FOLLOW_JOBS:
        r->follow = 1;
        return 1;
    case SF_OPT_NO_FLOWS:
        r->follow = 0;
        return 1;
    case SF_OPT_FLOWS:
        sf_flows_addfile(&r->flowfiles, &r->nflowfiles, arg);
        return 1;
    case SF_OPT_SYMBOLS:
        r->symfiles = sf_xrealloc(r->symfiles, (r->nsym + 1) * sizeof *r->symfiles);
        r->symfiles[r->nsym++] = arg;
        return 1;
    case 'j': {
        char *end;
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 1 || v > 64) {
            fprintf(stderr, "sftrace %s: -j wants 1..64 worker threads, not '%s'\n", r->cmd, arg);
            return -1;
        }
        r->jobs = (int)v;
        return 1;
    }
    }
    char err[SF_ERRLEN];
    int k = sf_select_option(&r->sel, c, arg, err, sizeof err);
    if (k < 0) {
        fprintf(stderr, "sftrace %s: %s\n", r->cmd, err);
        return -1;
    }
    if (k > 0) {
        r->selopts = sf_xrealloc(r->selopts, (r->nselopts + 1) * sizeof *r->selopts);
        r->selopts[r->nselopts].c = c;
        r->selopts[r->nselopts].arg = arg ? sf_xstrdup(arg) : NULL;
        r->nselopts++;
    }
    return k;
}

int sf_run_getopt(struct sf_run *r, int c, const char *arg, void (*usage)(FILE *))
{
    int k = sf_run_option(r, c, arg);
    if (k == 0)
        usage(stderr);
    return k > 0 ? 0 : -1;
}

/* ---- splitting threads between workers --------------------------------------- */

struct tidb {
    uint32_t tid;
    uint64_t bytes;
};

static int by_bytes(const void *a, const void *b)
{
    const struct tidb *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Give each worker its tids, from the record bytes of each tid (bytes:
 * tid -> bytes, counted by the run's prescan, logread.h:
 * sf_log_prescan_tids; freed here). Returns the number of workers used (1
 * when the log cannot be split: one thread). */
static int split_threads(struct sf_run *r, struct sf_map bytes, int want, uint32_t **tids,
                         size_t *ntids)
{
    struct tidb *v = sf_xrealloc(NULL, (bytes.n + 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < bytes.cap; i++)
        if (bytes.used[i] && (!r->sel.ntids || sf_select_tid(&r->sel, (uint32_t)bytes.keys[i])))
            v[n++] = (struct tidb){(uint32_t)bytes.keys[i], bytes.vals[i]};
    sf_map_free(&bytes);
    if ((size_t)want > n)
        want = (int)n;
    if (want < 2) {
        free(v);
        return 1;
    }
    qsort(v, n, sizeof *v, by_bytes);
    uint64_t load[64] = {0};
    for (int k = 0; k < want; k++) {
        tids[k] = sf_xrealloc(NULL, n * sizeof **tids);
        ntids[k] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < want; k++)
            if (load[k] < load[best])
                best = k;
        load[best] += v[i].bytes;
        tids[best][ntids[best]++] = v[i].tid;
    }
    for (int k = 0; k < want; k++)
        qsort(tids[k], ntids[k], sizeof **tids, cmp_u32);
    free(v);
    return want;
}

/* ---- the run ------------------------------------------------------------------ */

struct shared {
    struct sf_progress pr;
    _Atomic uint64_t events;
    _Atomic int stop;
    _Atomic int spare; /* CPUs the workers leave idle (calls.h sf_calls_set_spare) */
};

struct wctx {
    struct sf_runw *w;
    struct shared *sh;
};

/* Symbolizer warnings: each worker's engine finds the same objects, so a
 * message is printed once per run, clear of the progress line. */
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static char **warned;
static size_t nwarned;
static struct sf_progress *warn_pr;

static void warning(void *ctx, const char *msg)
{
    (void)ctx;
    pthread_mutex_lock(&warn_lock);
    size_t i = 0;
    while (i < nwarned && strcmp(warned[i], msg))
        i++;
    if (i == nwarned) {
        warned = sf_xrealloc(warned, (nwarned + 1) * sizeof *warned);
        warned[nwarned++] = sf_xstrdup(msg);
        if (warn_pr)
            sf_progress_clear(warn_pr);
        fprintf(stderr, "sftrace: warning: %s\n", msg);
    }
    pthread_mutex_unlock(&warn_lock);
}

static void warnings_done(void)
{
    pthread_mutex_lock(&warn_lock);
    for (size_t i = 0; i < nwarned; i++)
        free(warned[i]);
    free(warned);
    warned = NULL;
    nwarned = 0;
    warn_pr = NULL;
    pthread_mutex_unlock(&warn_lock);
}

/* Damage warnings. Every worker reads the whole log's framing and its
 * non-EVENTS chunks, but only its own threads' records: a warning may come
 * from several workers (the same text), or from one. They are collected,
 * and printed once each, in file order, after the run (see damage_done). */
struct dmsg {
    uint64_t off;
    char *msg;
};
static struct dmsg *dmsgs;
static size_t ndmsgs;
static int dmore; /* a reader passed SF_WARN_MAX: the rest were only counted */

static void damage_warn(void *arg, const char *msg)
{
    (void)arg;
    pthread_mutex_lock(&warn_lock);
    const char *o = strstr(msg, ": offset ");
    uint64_t off = o ? strtoull(o + 9, NULL, 10) : 0;
    if (strstr(msg, ": more damage: not reported one by one")) {
        dmore = 1;
    } else {
        size_t i = 0;
        while (i < ndmsgs && strcmp(dmsgs[i].msg, msg))
            i++;
        if (i == ndmsgs) {
            dmsgs = sf_xrealloc(dmsgs, (ndmsgs + 1) * sizeof *dmsgs);
            dmsgs[ndmsgs++] = (struct dmsg){off, sf_xstrdup(msg)};
        }
    }
    pthread_mutex_unlock(&warn_lock);
}

static int by_off(const void *a, const void *b)
{
    const struct dmsg *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return strcmp(x->msg, y->msg);
}

/* Print the collected warnings and the summary over all workers' readers;
 * 1 if the log was damaged. */
static int damage_done(struct sf_runw *w, int nw, const char *cmd, const char *path)
{
    if (ndmsgs)
        qsort(dmsgs, ndmsgs, sizeof *dmsgs, by_off);
    for (size_t i = 0; i < ndmsgs; i++) {
        if (i < SF_WARN_MAX)
            fprintf(stderr, "sftrace %s: %s\n", cmd, dmsgs[i].msg);
        free(dmsgs[i].msg);
    }
    if (ndmsgs > SF_WARN_MAX || dmore)
        fprintf(stderr,
                "sftrace %s: %s: more damage: not reported one by one, the summary counts it\n",
                cmd, path);
    free(dmsgs);
    dmsgs = NULL;
    ndmsgs = 0;
    dmore = 0;
    /* framing, bad non-EVENTS chunks, chunks without an image: as any one
     * reader saw them; EVENTS chunks: each worker's own */
    struct sf_log_damage d, x;
    memset(&d, 0, sizeof d);
    int first = 1;
    for (int k = 0; k < nw; k++) {
        if (!w[k].log)
            continue;
        sf_log_damage(w[k].log, &x);
        if (first) {
            first = 0;
            d = x;
            d.chunks -= x.ev_chunks;
            d.chunk_bytes -= x.ev_chunk_bytes;
            d.good -= x.ev_good;
        }
        d.chunks += x.ev_chunks;
        d.chunk_bytes += x.ev_chunk_bytes;
        d.good += x.ev_good;
    }
    char msg[SF_ERRLEN + 256];
    if (!sf_log_summary_of(path, &d, msg, sizeof msg))
        return 0;
    fprintf(stderr, "sftrace %s: %s\n", cmd, msg);
    return 1;
}

static int tick(void *ctx)
{
    struct wctx *c = ctx;
    struct sf_runw *w = c->w;
    struct sf_calls_stats st;
    sf_calls_stats(w->e, &st);
    atomic_fetch_add(&c->sh->events, st.events - w->ticked_events);
    w->ticked_events = st.events;
    if (w->index == 0)
        sf_progress(&c->sh->pr, sf_log_offset(w->log), atomic_load(&c->sh->events), 0);
    return atomic_load(&c->sh->stop);
}

static void *worker(void *arg)
{
    struct wctx *c = arg;
    struct sf_runw *w = c->w;
    w->rc = sf_calls_run(w->e);
    atomic_fetch_add(&c->sh->spare, 1); /* its core, for another's decoding */
    if (w->rc < 0) {
        snprintf(w->err, sizeof w->err, "%s", sf_calls_error(w->e));
        atomic_store(&c->sh->stop, 1);
    } else if (w->run->worker_done) {
        w->run->worker_done(w);
    }
    sf_calls_stats(w->e, &w->st);
    return NULL;
}

/* ---- the objects, read while the prescan runs -------------------------------- */

/* The objects whose OBJECT chunks come before the first EVENTS chunk (a
 * program's own objects and those it loads early: most of them) have
 * their call graph and symbols read by a thread of their own while the
 * main thread prescans the log: the workers' engines would read them at
 * their first event, after the prescan, while the other workers wait. The
 * graphs' references are held until the run ends, so that the engines
 * take these (callgraph.h: shared) rather than read them again. */
#define PRELOAD_CHUNKS 256

struct preload {
    const char *path;
    struct sf_syms *syms;
    struct sf_callgraph **cg;
    size_t ncg, capcg;
    pthread_t th;
    int started;
};

static void *preload_main(void *arg)
{
    struct preload *p = arg;
    char err[SF_ERRLEN];
    struct sf_log *log = sf_log_open(p->path, err, sizeof err);
    if (!log)
        return NULL;
    sf_log_set_warn(log, sf_log_warn_none, NULL);
    sf_log_set_headers_only(log, 1);
    struct sf_chunkv c;
    for (int n = 0; n < PRELOAD_CHUNKS && sf_log_next(log, &c) > 0; n++) {
        if (c.h->type == SF_CHUNK_EVENTS)
            break;
        if (c.h->type != SF_CHUNK_OBJECT || !c.obj)
            continue;
        const struct sf_obj *o = c.obj;
        SF_GROW(p->cg, p->ncg, p->capcg);
        /* the graph in its own thread (callgraph.h), the symbols here */
        p->cg[p->ncg++] =
            sf_callgraph_load(o->path, o->build_id, o->build_id_len, o->func_addr, o->nfuncs);
        sf_syms_object(p->syms, o->path, o->build_id, o->build_id_len);
    }
    sf_log_close(log);
    return NULL;
}

static void preload_start(struct preload *p, const char *path, struct sf_syms *syms)
{
    memset(p, 0, sizeof *p);
    p->path = path;
    p->syms = syms;
    p->started = pthread_create(&p->th, NULL, preload_main, p) == 0;
}

static void preload_done(struct preload *p)
{
    if (p->started)
        pthread_join(p->th, NULL);
    for (size_t i = 0; i < p->ncg; i++)
        sf_callgraph_free(p->cg[i]);
    free(p->cg);
    memset(p, 0, sizeof *p);
}

struct sf_runw *sf_run_go(struct sf_run *r, const char *path, const struct sf_calls_ops *ops,
                          void *(*mkctx)(void *arg, struct sf_runw *w), void (*freectx)(void *ctx),
                          void *arg, int *nwp)
{
    char err[SF_ERRLEN];
    /* the size, and a pipe copied now: every worker reads the copy. The
     * one prescan of the run, which also counts each thread's bytes for
     * the split (the workers take the prescan: sf_log_prescan_from). */
    struct sf_log *first = sf_log_open(path, err, sizeof err);
    if (!first) {
        fprintf(stderr, "sftrace %s: %s\n", r->cmd, err);
        return NULL;
    }
    uint64_t size = sf_log_file_size(first);
    int regular = size != UINT64_MAX;
    /* One symbolizer for all the workers (symbols.h: thread-safe): each
     * object's symbol table is read and sorted once, and a name asked by
     * two workers is made once. */
    if (!r->syms) {
        r->syms = sf_syms_new();
        sf_syms_set_quiet(r->syms, 1); /* warnings come through the engine: warning() */
        /* No command run here prints source lines (report, graph, flame
         * and memory show names only): asking for them would read every
         * compile unit's line table and DIEs, the largest fixed cost of a
         * run over a big object (a tenth of a second per worker for
         * 100,000 functions, and most of its memory). */
        sf_syms_set_lines(r->syms, 0);
        for (size_t i = 0; i < r->nsym; i++) {
            char e2[SF_ERRLEN + 256];
            if (sf_syms_add_file(r->syms, r->symfiles[i], e2, sizeof e2) != 0) {
                fprintf(stderr, "sftrace %s: %s\n", r->cmd, e2);
                sf_log_close(first);
                return NULL;
            }
        }
    }
    struct preload pre;
    preload_start(&pre, path, r->syms);
    sf_log_set_warn(first, sf_log_warn_none, NULL);
    struct sf_map bytes = {0}; /* tid -> record bytes, for the split */
    sf_log_prescan_tids(first, &bytes);
    int shared = regular && sf_log_prescan(first) == 0;
    sf_log_prescan_tids(first, NULL);
    int want = r->jobs;
    if (!want) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        want = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    }
    if (want > 64)
        want = 64;
    uint32_t *tids[64] = {0};
    size_t ntids[64] = {0};
    int nw = 1;
    if (want > 1 && shared) /* a stream that is not copied can be read once: one worker */
        nw = split_threads(r, bytes, want, tids, ntids);
    else
        sf_map_free(&bytes);

    struct sf_runw *w = sf_xrealloc(NULL, (size_t)nw * sizeof *w);
    memset(w, 0, (size_t)nw * sizeof *w);
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    sf_progress_init(&sh.pr, r->cmd, !r->quiet);
    sh.pr.size = size;
    warn_pr = &sh.pr;
    struct sf_calls_ops wops = *ops;
    if (!wops.warning)
        wops.warning = warning;
    struct wctx *wc = sf_xrealloc(NULL, (size_t)nw * sizeof *wc);
    int ok = 1;
    for (int k = 0; k < nw && ok; k++) {
        struct sf_runw *x = &w[k];
        x->run = r;
        x->index = k;
        wc[k] = (struct wctx){x, &sh};
        sf_select_init(&x->sel);
        for (size_t i = 0; i < r->nselopts; i++)
            sf_select_option(&x->sel, r->selopts[i].c, r->selopts[i].arg, err, sizeof err);
        if (nw > 1) {
            free(x->sel.tids);
            x->sel.tids = tids[k];
            x->sel.ntids = ntids[k];
            tids[k] = NULL;
        }
        x->log = sf_log_open(path, err, sizeof err);
        if (!x->log) {
            fprintf(stderr, "sftrace %s: %s\n", r->cmd, err);
            ok = 0;
            break;
        }
        sf_log_set_warn(x->log, damage_warn, NULL);
        if (shared)
            sf_log_prescan_from(x->log, first);
        x->syms = r->syms;
        x->ctx = mkctx(arg, x);
        x->freectx = freectx;
        x->e = sf_calls_new(x->log, x->syms, &x->sel, &wops, x->ctx);
        if (r->outermost)
            sf_calls_set_outermost(x->e, 1);
        sf_calls_set_tick(x->e, tick, &wc[k]);
        sf_calls_set_spare(x->e, &sh.spare);
    }
    for (int k = 0; k < 64; k++)
        free(tids[k]);
    sf_log_close(first);
    if (!ok) {
        preload_done(&pre);
        warnings_done();
        damage_done(NULL, 0, r->cmd, path);
        sf_run_done(w, nw);
        free(wc);
        return NULL;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    atomic_store(&sh.spare, cpus > nw ? (int)(cpus - nw) : 0);
    pthread_t th[64];
    int started[64] = {0};
    for (int k = 1; k < nw; k++)
        started[k] = pthread_create(&th[k], NULL, worker, &wc[k]) == 0;
    for (int k = 1; k < nw; k++)
        if (!started[k])
            worker(&wc[k]); /* no thread: run it here */
    worker(&wc[0]);
    for (int k = 1; k < nw; k++)
        if (started[k])
            pthread_join(th[k], NULL);
    preload_done(&pre);
    sf_progress_clear(&sh.pr);
    warnings_done();
    free(wc);
    r->damaged = damage_done(w, nw, r->cmd, path);
    collect_endings(r, w[0].log);
    for (int k = 0; k < nw; k++) {
        if (w[k].rc < 0 && w[k].err[0]) {
            fprintf(stderr, "sftrace %s: %s\n", r->cmd, w[k].err);
            sf_run_done(w, nw);
            return NULL;
        }
    }
    struct sf_calls_stats tot;
    sf_run_stats(w, nw, &tot);
    if (!tot.events) {
        /* a damaged log may have had events where it is cut: do not say
         * that nothing was recorded (the warnings above say where) */
        fprintf(stderr, "sftrace %s: %s: no events%s\n", r->cmd, path,
                r->nselopts  ? " in the selection"
                : r->damaged ? " before the damage (see above)"
                             : " (nothing was recorded)");
        sf_run_done(w, nw);
        return NULL;
    }
    *nwp = nw;
    return w;
}

void sf_run_stats(const struct sf_runw *w, int nw, struct sf_calls_stats *st)
{
    memset(st, 0, sizeof *st);
    for (int k = 0; k < nw; k++) {
        const struct sf_calls_stats *s = &w[k].st;
        st->events += s->events;
        st->calls += s->calls;
        st->unmatched += s->unmatched;
        st->unfinished += s->unfinished;
        st->unwound += s->unwound;
        st->too_deep += s->too_deep;
        st->lost += s->lost;
        st->backwards += s->backwards;
        st->threads += s->threads;
        st->chunks_skipped += s->chunks_skipped;
        if (s->first_ns && (!st->first_ns || s->first_ns < st->first_ns))
            st->first_ns = s->first_ns;
        if (s->last_ns > st->last_ns)
            st->last_ns = s->last_ns;
        if (s->processes > st->processes)
            st->processes = s->processes;
        if (s->images > st->images)
            st->images = s->images;
    }
}

void sf_run_done(struct sf_runw *w, int nw)
{
    struct sf_run *r = nw > 0 ? w[0].run : NULL;
    for (int k = 0; k < nw; k++) {
        if (w[k].e)
            sf_calls_free(w[k].e);
        if (w[k].log)
            sf_log_close(w[k].log);
        sf_select_free(&w[k].sel);
        free(w[k].gid);
        if (w[k].ctx && w[k].freectx)
            w[k].freectx(w[k].ctx);
    }
    free(w);
    if (r) { /* the engines' names were its (sf_run_gid copied those it gave) */
        sf_syms_free(r->syms);
        r->syms = NULL;
    }
}

/* ---- names ------------------------------------------------------------------ */

uint32_t sf_run_intern(struct sf_run *r, const char *name)
{
    /* open addressing over the hash: try h, h+1, ... until the name or a
     * free key */
    for (uint64_t h = sf_str_hash(name);; h++) {
        uint64_t *slot = sf_map_get(&r->namemap, h, 1);
        if (!*slot) {
            if (r->nnames == r->capnames) {
                r->capnames = r->capnames ? 2 * r->capnames : 256;
                r->names = sf_xrealloc(r->names, r->capnames * sizeof *r->names);
            }
            r->names[r->nnames++] = sf_xstrdup(name);
            *slot = r->nnames;
            return (uint32_t)(r->nnames - 1);
        }
        if (!strcmp(r->names[*slot - 1], name))
            return (uint32_t)(*slot - 1);
    }
}

uint32_t sf_run_find(const struct sf_run *r, const char *name)
{
    for (uint64_t h = sf_str_hash(name);; h++) {
        uint64_t *slot = sf_map_get((struct sf_map *)&r->namemap, h, 0);
        if (!slot)
            return UINT32_MAX;
        if (!strcmp(r->names[*slot - 1], name))
            return (uint32_t)(*slot - 1);
    }
}

uint32_t sf_run_gid(struct sf_runw *w, uint32_t func)
{
    SF_GROW_ZERO(w->gid, func, w->ngid, 256);
    if (!w->gid[func]) {
        const struct sf_func *f = sf_calls_func(w->e, func);
        w->gid[func] = sf_run_intern(w->run, f && f->name ? f->name : "?") + 1;
    }
    return w->gid[func] - 1;
}

const char *sf_run_name(const struct sf_run *r, uint32_t gid)
{
    return gid < r->nnames ? r->names[gid] : "?";
}

void sf_run_thread_label(char *buf, size_t n, const struct sf_cthread *t)
{
    if (t->name[0])
        snprintf(buf, n, "%u/%u %s", t->pid, t->tid, t->name);
    else
        snprintf(buf, n, "%u/%u", t->pid, t->tid);
}

void sf_run_header(FILE *f, const char *path, const struct sf_calls_stats *st)
{
    sf_run_header_tag(f, NULL, path, st);
}

void sf_run_header_tag(FILE *f, const char *tag, const char *path, const struct sf_calls_stats *st)
{
    char a[SF_FMT_LEN], b[SF_FMT_LEN], c[SF_FMT_LEN];
    fprintf(f,
            "# %s%s%s: %s events, %s calls, %" PRIu64 " thread%s, %" PRIu64 " process%s, span %s\n",
            tag ? tag : "", tag ? " " : "", path, sf_fmt_grouped(a, sizeof a, st->events),
            sf_fmt_grouped(b, sizeof b, st->calls), st->threads, st->threads == 1 ? "" : "s",
            st->processes, st->processes == 1 ? "" : "es",
            sf_fmt_dur(c, sizeof c, st->last_ns > st->first_ns ? st->last_ns - st->first_ns : 0));
    if (st->unfinished || st->unmatched || st->lost || st->too_deep)
        fprintf(f,
                "# %" PRIu64 " calls unfinished (marked), %" PRIu64 " exits without entry, %" PRIu64
                " records lost in recording\n",
                st->unfinished, st->unmatched, st->lost);
}

void sf_bstack_grow(struct sf_bstack *s)
{
    s->cap = s->cap ? 2 * s->cap : 64;
    s->f = sf_xrealloc(s->f, (size_t)s->cap * sizeof *s->f);
}
