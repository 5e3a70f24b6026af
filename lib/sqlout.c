/*
 * sqlout.c - the SQLite writer of `sftrace convert --format sqlite`: runs
 * the call engine over a log and inserts its calls, threads, processes,
 * functions, objects and allocation records (schema: docs/sqlite.md, the
 * API: sqlout.h).
 *
 * The layout (schema 2): call ids in preorder, contiguous per thread, so
 * that the common queries need no index over all calls (SQLite's CREATE
 * INDEX costs more per call than the whole rest of a conversion): a
 * thread's calls in time order are a rowid range, a call's descendants the
 * ids (id, last_id], a function's calls the chain function.last_call ->
 * call.prev_call. The engine runs once per group of threads whose chunks
 * do not interleave (run_all), and the ids are given here as calls begin
 * (on_begin), with no gaps whatever the selection drops.
 *
 * Speed: one transaction, prepared statements bound with integers, no
 * journal, no fsync until the end, large pages; the few indexes are made
 * after the inserts (sorting once beats updating them per row). Calls end
 * children first, but their ids (the rowids) count in the order they began:
 * inserted as they come, nearly every row would go into the middle of the
 * table's B-tree (a full search, and half-empty pages). So ended calls wait
 * in a buffer (ROWS of them) and go in sorted by id: each run of rows is
 * then an append at the end of the table, and only calls still open at a
 * flush (a thread's stack) come later, out of order. That alone takes
 * about a third off the inserts. A run of dense ids (the next id each time)
 * goes in without its id, as SQLite's next rowid, which it appends without
 * searching the table for the id (insert_calls).
 *
 * Two threads: the engine (reading, decoding, the calls, and putting each
 * buffer in id order: plan_rows) fills one buffer of ended calls and
 * allocation records while a writer thread inserts the other (struct sqbuf,
 * handed over whole, so the database is only ever used by one thread at a
 * time and rows go in in the same order as with one thread). The writer
 * does about 70 % of the work and bounds the conversion (docs/sqlite.md,
 * Speed).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "sqlout.h"
#include "xalloc.h"

/* The schema; docs/sqlite.md explains every column. Times are ns since the
 * log was created (the file header's create_mono_ns), like dump's time_ns.
 * Call ids are preorder and contiguous per thread (see the top of this
 * file), which gives the documented queries their access paths without an
 * index over all calls: a thread's calls in time order are a rowid range
 * (thread.first_call..last_call), a call's descendants the ids (id,
 * last_id], a function's calls the chain function.last_call -> prev_call. */
static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;\n"
    "CREATE TABLE process(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, ppid INTEGER,\n"
    "  name TEXT, exe TEXT, cmdline TEXT, forked INTEGER NOT NULL, execed INTEGER NOT NULL,\n"
    "  clock TEXT, start_ns INTEGER, end_ns INTEGER, end_reason TEXT);\n"
    "CREATE TABLE thread(id INTEGER PRIMARY KEY, process INTEGER NOT NULL REFERENCES "
    "process(id),\n"
    "  pid INTEGER NOT NULL, tid INTEGER NOT NULL, name TEXT, start_ns INTEGER, end_ns INTEGER,\n"
    "  exited INTEGER NOT NULL, calls INTEGER NOT NULL, first_call INTEGER, last_call INTEGER);\n"
    "CREATE TABLE object(id INTEGER PRIMARY KEY, path TEXT NOT NULL, build_id TEXT,\n"
    "  main INTEGER NOT NULL);\n"
    "CREATE TABLE function(id INTEGER PRIMARY KEY, name TEXT NOT NULL, mangled TEXT,\n"
    "  file TEXT, line INTEGER, object INTEGER REFERENCES object(id), address INTEGER,\n"
    "  calls INTEGER NOT NULL, last_call INTEGER);\n"
    "CREATE TABLE call(id INTEGER PRIMARY KEY, thread INTEGER NOT NULL REFERENCES thread(id),\n"
    "  function INTEGER NOT NULL REFERENCES function(id), parent INTEGER REFERENCES call(id),\n"
    "  depth INTEGER NOT NULL, start_ns INTEGER NOT NULL, dur_ns INTEGER NOT NULL,\n"
    "  self_ns INTEGER NOT NULL, unfinished INTEGER GENERATED ALWAYS AS (flags & 1) VIRTUAL,\n"
    "  flags INTEGER NOT NULL, last_id INTEGER NOT NULL, prev_call INTEGER);\n"
    "CREATE TABLE call_sample(thread INTEGER NOT NULL, start_ns INTEGER NOT NULL,\n"
    "  id INTEGER NOT NULL, PRIMARY KEY (thread, start_ns, id)) WITHOUT ROWID;\n"
    "CREATE TABLE alloc(id INTEGER PRIMARY KEY, thread INTEGER NOT NULL REFERENCES thread(id),\n"
    "  call INTEGER REFERENCES call(id), ts_ns INTEGER NOT NULL, kind TEXT NOT NULL,\n"
    "  size INTEGER, align INTEGER, ptr INTEGER);\n";

/* Made after the inserts: small ones (functions, allocation records). */
static const char indexes[] = "CREATE INDEX function_name ON function(name);\n"
                              "CREATE INDEX alloc_ptr ON alloc(ptr, ts_ns);\n"
                              "CREATE INDEX alloc_call ON alloc(call);\n";
/* The classic indexes over all calls, only with SF_SQLOUT_INDEXES (`convert
 * --indexes`, for ad-hoc SQL that says WHERE function = ...): each costs
 * 230-430 ns of CPU per call in SQLite's one-thread CREATE INDEX, more than
 * the rest of a conversion (docs/sqlite.md, Speed). */
static const char call_indexes[] = "CREATE INDEX call_function ON call(function);\n"
                                   "CREATE INDEX call_parent ON call(parent);\n"
                                   "CREATE INDEX call_thread_start ON call(thread, start_ns);\n";
/* Before the indexes: SQLite's sorter sorts runs of cache_size pages in
 * memory (a linked-list merge sort, so its time goes in cache misses once a
 * run is larger than the CPU's caches) and merges them from temporary files.
 * The 64 MiB cache that suits the inserts makes runs of 64 MiB, larger than
 * the last-level cache; runs of 4 MiB make the indexes 15 % cheaper on the
 * rspack-shaped log (call(function), whose keys come in random order, 40 %);
 * runs from 640 KiB to 16 MiB all do about as well (docs/sqlite.md, Speed). */
static const char index_setup[] = "PRAGMA cache_size=-4096;";
static const char views[] =
    "CREATE VIEW calls AS SELECT c.id, c.start_ns, c.dur_ns, c.self_ns, c.depth, c.unfinished,\n"
    "  c.flags, c.parent, c.last_id, f.name AS function, f.file, f.line, t.pid, t.tid,\n"
    "  t.name AS thread, c.thread AS thread_id, c.function AS function_id\n"
    "  FROM call c JOIN function f ON f.id = c.function JOIN thread t ON t.id = c.thread;\n";

/* Every SAMPLE-th call of a thread (its first included) goes into
 * call_sample: where a time window's rowid range starts (query 8). */
#define SAMPLE 1024

/* An open call of a thread, by delivered depth: its id and the previous
 * call of its function (prev_call), both given when it began. */
struct open {
    uint64_t id, prev;
};

struct thr {
    uint64_t id; /* thread.id */
    uint32_t image, pid, tid;
    char name[17];
    int64_t start, end;
    int exited;
    uint64_t calls;
    uint64_t first_call, last_call; /* 0: none */
    struct open *open;              /* [delivered depth]: its open calls */
    size_t capopen;
};

/* A process image, copied from the reader of the run that saw it first
 * (each run has its own reader, closed after it). */
struct proc {
    int known;
    uint32_t pid, ppid, flags, clock;
    char *name, *exe, *cmdline; /* cmdline: arguments joined by spaces */
    int64_t start, end;
    int has_end;
    const char *reason;
};

/* A function row: the engine's, copied, so that it outlives the run (each
 * run has its own engine and numbering: sq.gmap maps those to these). */
struct fn {
    char *name, *file;
    uint32_t line;
    uint32_t obj;   /* object.id, 0 for an unknown function id */
    uint64_t addr;  /* ELF address (objects) or the function id (unknown) */
    uint64_t calls; /* function.calls */
    uint64_t last;  /* function.last_call: its latest call so far, 0 none */
};

/* An object row: one per symbol file (as the engine shares functions of
 * objects that map the same file), with its functions' rows by address. */
struct obj {
    struct sf_symobj *so;
    char *path;
    char hex[2 * 64 + 1]; /* build-id */
    int main;
    struct sf_map funcs; /* ELF address -> fn index + 1 */
};

struct sample {
    uint64_t thread;
    int64_t start;
    uint64_t id;
};

#define BATCH 256    /* calls per INSERT statement (a multi-row VALUES; 64: 2-3 % more CPU) */
#define NCOLS 11     /* columns of table call that are stored (not unfinished) */
#define COL_PARENT 3 /* of them: 0 is NULL */
#define COL_PREV 10
#define ROWS 65536      /* ended calls sorted by id before they are inserted */
#define SPAN (4 * ROWS) /* ids a flush places directly (else it sorts) */
#define AROWS 16384     /* allocation records a buffer holds */

struct crow {
    sqlite3_int64 v[NCOLS];
};

/* A run of calls to insert with one kind of statement: dense (each id the
 * largest so far + 1: the id is left out, SQLite takes the next rowid) or
 * not (the id bound). */
struct run {
    size_t off, n;     /* values in sqbuf.flat, rows */
    sqlite3_int64 id0; /* the id of its first row */
    int dense;
};

/* What the engine hands the writer: ended calls and allocation records
 * (thread, call or 0, ts, kind, size, align, ptr). Before the hand-over the
 * engine's thread puts the calls in id order and lays them out as the
 * INSERTs bind them (plan_rows), so that the writer only binds and steps. */
struct sqbuf {
    struct crow *rows; /* [ROWS], as the calls ended */
    size_t nrows;
    struct crow *arows; /* [AROWS] */
    size_t narows;
    sqlite3_int64 *flat; /* [ROWS * NCOLS]: the rows' values in id order */
    struct run *runs;    /* [ROWS] */
    size_t nruns;
};

struct sq {
    sqlite3 *db;
    struct sf_syms *syms;
    /* [0]: the id bound (call: BATCH rows, call1: one); [1]: the id left
     * to SQLite (the next rowid: for a run of dense ids, insert_calls) */
    sqlite3_stmt *call[2], *call1[2], *alloc;
    sqlite3_int64 maxid; /* the largest call id planned (plan_rows) */
    struct sqbuf buf[2]; /* the engine fills buf[cur], the writer inserts the other */
    int cur;
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int threaded, queued, busy, stop; /* queued: index + 1 of a buffer to insert */
    uint32_t *slot;                   /* [SPAN] plan_rows: row + 1 by id - the smallest id */
    int64_t t0;                       /* create_mono_ns */
    _Atomic int failed;               /* set by either thread */
    char err[512];
    struct thr **thrs;
    size_t nthrs, capthrs;
    struct proc *procs; /* by image id */
    size_t nprocs;
    uint64_t allocs;
    /* the run going on (one per thread id: sf_sqlout_write) */
    struct sf_calls *e;
    uint32_t *gmap; /* the run's engine function index -> fn index + 1 */
    size_t capgmap;
    uint64_t next_id; /* the last call id given */
    struct fn *fns;
    size_t nfns, capfns;
    struct obj *objs; /* object.id - 1 */
    size_t nobjs, capobjs;
    struct sf_map objmap; /* struct sf_symobj * -> object.id */
    struct sf_map unk;    /* unknown function id -> fn index + 1 */
    struct sample *samples;
    size_t nsamples, capsamples;
    /* the symbolizer's warnings, once each across the runs */
    char **warned;
    size_t nwarned, capwarned;
    double writer_cpu;    /* the writer thread's CPU time, s */
    struct thr *begun;    /* the thread of the last call begun */
    uint64_t interleaved; /* begins on a thread after another's (never, see run_all) */
    size_t runs;          /* engine runs */
};

#define xrealloc sf_xrealloc

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Note the first SQLite error; the run stops at the next tick. */
static int sq_check(struct sq *s, int rc, const char *what)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if (!s->failed)
        snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    s->failed = 1;
    return -1;
}

static int sq_exec(struct sq *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK && !s->failed) {
        snprintf(s->err, sizeof s->err, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
        s->failed = 1;
    }
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : -1;
}

static int64_t rel(const struct sq *s, uint64_t ns)
{
    return (int64_t)(ns - (uint64_t)s->t0);
}

/* ---- the engine's callbacks ------------------------------------------------ */

static struct proc *proc_of(struct sq *s, const struct sf_image *img)
{
    if (img->id >= s->nprocs) {
        size_t n = (size_t)img->id + 1;
        s->procs = xrealloc(s->procs, n * sizeof *s->procs);
        memset(s->procs + s->nprocs, 0, (n - s->nprocs) * sizeof *s->procs);
        s->nprocs = n;
    }
    struct proc *p = &s->procs[img->id];
    if (!p->known) {
        p->known = 1;
        p->pid = img->pid;
        p->ppid = img->ppid;
        p->flags = img->flags;
        p->clock = img->clock;
        p->name = sf_xstrdup(img->name ? img->name : "");
        p->exe = sf_xstrdup(img->exe ? img->exe : "");
        p->cmdline = sf_cmdline_join(img->cmdline, img->cmdline_len);
    }
    return p;
}

static void on_process(void *ctx, const struct sf_image *img, uint64_t ns)
{
    struct sq *s = ctx;
    proc_of(s, img)->start = rel(s, ns);
}

static void on_process_end(void *ctx, const struct sf_image *img, const struct sf_end *end,
                           uint64_t ns)
{
    struct sq *s = ctx;
    struct proc *p = proc_of(s, img);
    p->end = rel(s, ns);
    p->has_end = 1;
    p->reason = !end                           ? "replaced"
                : end->reason == SF_END_EXIT   ? "exit"
                : end->reason == SF_END_EXEC   ? "exec"
                : end->reason == SF_END_SIGNAL ? "signal"
                                               : "unknown";
}

/* Each run has its own engine; a symbolizer warning is printed once. */
static void on_warning(void *ctx, const char *msg)
{
    struct sq *s = ctx;
    for (size_t i = 0; i < s->nwarned; i++)
        if (!strcmp(s->warned[i], msg))
            return;
    SF_GROW(s->warned, s->nwarned, s->capwarned);
    s->warned[s->nwarned++] = sf_xstrdup(msg);
    fprintf(stderr, "sftrace: warning: %s\n", msg);
}

/* The function row of the run's engine function g (made when first seen;
 * the same row for the same function in every run). */
static uint32_t fn_of(struct sq *s, uint32_t g)
{
    if (g < s->capgmap && s->gmap[g])
        return s->gmap[g] - 1;
    const struct sf_func *f = sf_calls_func(s->e, g);
    uint64_t *slot;
    uint32_t oid = 0;
    uint64_t addr;
    if (f->obj) {
        const struct sf_obj *o = f->obj;
        struct sf_symobj *so = sf_syms_object(s->syms, o->path, o->build_id, o->build_id_len);
        uint64_t *os = sf_map_get(&s->objmap, (uint64_t)(uintptr_t)so, 1);
        if (!*os) {
            SF_GROW(s->objs, s->nobjs, s->capobjs);
            struct obj *ob = &s->objs[s->nobjs++];
            memset(ob, 0, sizeof *ob);
            ob->so = so;
            ob->path = sf_xstrdup(o->path);
            uint32_t bl = o->build_id_len < 64 ? o->build_id_len : 64;
            for (uint32_t j = 0; j < bl; j++)
                snprintf(ob->hex + 2 * j, 3, "%02x", o->build_id[j]);
            ob->main = (o->flags & SF_OBJ_MAIN) != 0;
            *os = s->nobjs;
        }
        oid = (uint32_t)*os;
        addr = o->func_addr[f->index];
        slot = sf_map_get(&s->objs[oid - 1].funcs, addr, 1);
    } else {
        addr = f->index;
        slot = sf_map_get(&s->unk, addr, 1);
    }
    if (!*slot) {
        SF_GROW(s->fns, s->nfns, s->capfns);
        struct fn *n = &s->fns[s->nfns++];
        memset(n, 0, sizeof *n);
        n->name = sf_xstrndup(f->name, f->name_len);
        n->file = f->file ? sf_xstrndup(f->file, f->file_len) : NULL;
        n->line = f->line;
        n->obj = oid;
        n->addr = addr;
        *slot = s->nfns;
    }
    uint32_t id = (uint32_t)(*slot - 1);
    SF_GROW_ZERO(s->gmap, (size_t)g, s->capgmap, 1024);
    s->gmap[g] = id + 1;
    return id;
}

static struct thr *thr_of(struct sq *s, struct sf_cthread *t, uint64_t ns)
{
    struct thr *th = t->user;
    if (th)
        return th;
    th = calloc(1, sizeof *th);
    if (!th) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    if (s->nthrs == s->capthrs) {
        s->capthrs = s->capthrs ? 2 * s->capthrs : 64;
        s->thrs = xrealloc(s->thrs, s->capthrs * sizeof *s->thrs);
    }
    s->thrs[s->nthrs++] = th;
    th->id = s->nthrs;
    th->image = t->img ? t->img->id : 0;
    th->pid = t->pid;
    th->tid = t->tid;
    th->start = th->end = rel(s, ns);
    if (t->img)
        proc_of(s, t->img);
    t->user = th;
    return th;
}

static void on_thread(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    struct thr *th = thr_of(ctx, t, ns);
    memcpy(th->name, t->name, sizeof th->name);
}

static void on_thread_exit(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    struct sq *s = ctx;
    struct thr *th = thr_of(s, t, ns);
    memcpy(th->name, t->name, sizeof th->name);
    th->end = rel(s, ns);
    th->exited = 1;
    t->user = NULL; /* a tid seen again is a new thread */
}

/* Insert a buffer's calls, as plan_rows laid them out: statements of
 * BATCH rows, and one-row statements for the rest of a run. A parent or
 * prev_call of 0 is NULL. A dense run leaves the id out, so that SQLite
 * takes the next rowid itself: it then appends without the search of the
 * table's B-tree for the given id, which is a third of the cost of an
 * insert (docs/sqlite.md, Speed); sqlite3_last_insert_rowid checks that
 * the ids came out as ours. This is all the writer thread does for a call
 * besides SQLite's own work. */
static void insert_calls(struct sq *s, const struct sqbuf *b)
{
    for (size_t ri = 0; ri < b->nruns && !s->failed; ri++) {
        const struct run *ru = &b->runs[ri];
        int d = ru->dense, nc = NCOLS - d;
        const sqlite3_int64 *v = b->flat + ru->off;
        for (size_t r = 0; r < ru->n && !s->failed;) {
            int full = ru->n - r >= BATCH, rows = full ? BATCH : 1;
            sqlite3_stmt *st = full ? s->call[d] : s->call1[d];
            for (int i = 0, p = 1; i < rows; i++, v += nc)
                for (int k = 0; k < nc; k++, p++) {
                    int col = k + d;
                    if ((col == COL_PARENT || col == COL_PREV) && !v[k])
                        sqlite3_bind_null(st, p);
                    else
                        sqlite3_bind_int64(st, p, v[k]);
                }
            r += (size_t)rows;
            sq_check(s, sqlite3_step(st), "inserting calls");
            sqlite3_reset(st);
            sqlite3_int64 want = d ? ru->id0 + (sqlite3_int64)r - 1 : 0;
            if (d && !s->failed && sqlite3_last_insert_rowid(s->db) != want) {
                snprintf(s->err, sizeof s->err, "call %lld went in as row %lld", (long long)want,
                         (long long)sqlite3_last_insert_rowid(s->db));
                s->failed = 1;
            }
        }
    }
}

static int by_id(const void *a, const void *b)
{
    sqlite3_int64 x = ((const struct crow *)a)->v[0], y = ((const struct crow *)b)->v[0];
    return x < y ? -1 : x > y;
}

static void plan_row(struct sq *s, struct sqbuf *b, const struct crow *r, size_t *off)
{
    sqlite3_int64 id = r->v[0];
    int d = id == s->maxid + 1;
    if (id > s->maxid)
        s->maxid = id;
    if (!b->nruns || b->runs[b->nruns - 1].dense != d)
        b->runs[b->nruns++] = (struct run){*off, 0, id, d};
    b->runs[b->nruns - 1].n++;
    memcpy(b->flat + *off, r->v + d, (NCOLS - (size_t)d) * sizeof *r->v);
    *off += NCOLS - (size_t)d;
}

/* On the engine's thread, before the hand-over: the buffered calls in id
 * order, laid out in runs for insert_calls. Ids are unique and nearly dense
 * (they count calls as they begin), so when the buffer's ids span at most
 * SPAN they are placed by id - min in one pass, without a sort (qsort of
 * the 80-byte rows was a tenth of the conversion); a buffer that holds a
 * long-open call (a thread's root) sorts. */
static void plan_rows(struct sq *s, struct sqbuf *b)
{
    sqlite3_int64 lo = INT64_MAX, hi = INT64_MIN;
    size_t off = 0;
    b->nruns = 0;
    for (size_t i = 0; i < b->nrows; i++) {
        sqlite3_int64 id = b->rows[i].v[0];
        lo = id < lo ? id : lo;
        hi = id > hi ? id : hi;
    }
    if (b->nrows && (uint64_t)(hi - lo) < SPAN) {
        size_t span = (size_t)(hi - lo) + 1;
        memset(s->slot, 0, span * sizeof *s->slot);
        for (size_t i = 0; i < b->nrows; i++)
            s->slot[b->rows[i].v[0] - lo] = (uint32_t)i + 1;
        for (size_t k = 0; k < span; k++)
            if (s->slot[k])
                plan_row(s, b, &b->rows[s->slot[k] - 1], &off);
    } else {
        qsort(b->rows, b->nrows, sizeof *b->rows, by_id);
        for (size_t i = 0; i < b->nrows; i++)
            plan_row(s, b, &b->rows[i], &off);
    }
    b->nrows = 0;
}

/* A buffer's allocation records, in the order they came. */
static void insert_allocs(struct sq *s, struct sqbuf *b)
{
    sqlite3_stmt *st = s->alloc;
    for (size_t i = 0; i < b->narows && !s->failed; i++) {
        const sqlite3_int64 *v = b->arows[i].v;
        sqlite3_bind_int64(st, 1, v[0]);
        if (v[1])
            sqlite3_bind_int64(st, 2, v[1]);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, v[2]);
        const char *kind = sf_alloc_kind_name((uint32_t)v[3]);
        sqlite3_bind_text(st, 4, kind ? kind : "unknown", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, v[4]);
        sqlite3_bind_int64(st, 6, v[5]);
        sqlite3_bind_int64(st, 7, v[6]);
        sq_check(s, sqlite3_step(st), "inserting an allocation");
        sqlite3_reset(st);
        s->allocs++;
    }
    b->narows = 0;
}

static void insert_buf(struct sq *s, struct sqbuf *b)
{
    insert_calls(s, b);
    b->nruns = 0;
    insert_allocs(s, b);
}

static void *writer_main(void *arg)
{
    struct sq *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->queued && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->queued)
            break;
        struct sqbuf *b = &s->buf[s->queued - 1];
        s->queued = 0;
        s->busy = 1;
        pthread_mutex_unlock(&s->mu);
        insert_buf(s, b);
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    s->writer_cpu = thread_cpu_s();
    return NULL;
}

/* Wait until the writer has nothing queued or in hand. */
static void writer_idle(struct sq *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->queued || s->busy)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* Hand the engine's buffer to the writer (or insert it here without one)
 * and go on filling the other, which the writer has finished. */
static void submit(struct sq *s)
{
    struct sqbuf *b = &s->buf[s->cur];
    if (!b->nrows && !b->narows)
        return;
    plan_rows(s, b);
    if (!s->threaded) {
        insert_buf(s, b);
        return;
    }
    writer_idle(s);
    pthread_mutex_lock(&s->mu);
    s->queued = s->cur + 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    s->cur ^= 1;
}

/* Everything the engine made is in; the writer has stopped. */
static void finish_writer(struct sq *s)
{
    submit(s);
    if (!s->threaded)
        return;
    writer_idle(s);
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    s->threaded = 0;
}

/* A call begins: it takes the next id (so ids are preorder: a thread's
 * calls are run one thread at a time, sf_sqlout_write, and a call's
 * descendants, which begin after it and before it ends, get the ids up to
 * the one last given when it ends: its last_id), and becomes its function's
 * latest call (the chain prev_call). The engine delivers begins in stack
 * order even when they come late (--min-duration), so this is begin order. */
static void on_begin(void *ctx, struct sf_cthread *t, const struct sf_cframe *f)
{
    struct sq *s = ctx;
    struct thr *th = thr_of(s, t, f->start_ns);
    SF_GROW_ZERO(th->open, (size_t)f->depth, th->capopen, 64);
    uint64_t id = ++s->next_id;
    if (th != s->begun) { /* another thread's calls began since this one's */
        if (th->first_call)
            s->interleaved++;
        s->begun = th;
    }
    uint32_t fi = fn_of(s, f->func); /* may move s->fns */
    struct fn *fn = &s->fns[fi];
    th->open[f->depth] = (struct open){id, fn->last};
    fn->last = id;
    fn->calls++;
    if (!th->first_call)
        th->first_call = id;
    th->last_call = id;
    if ((id - th->first_call) % SAMPLE == 0) {
        SF_GROW(s->samples, s->nsamples, s->capsamples);
        s->samples[s->nsamples++] = (struct sample){th->id, rel(s, f->start_ns), id};
    }
}

static void on_end(void *ctx, struct sf_cthread *t, const struct sf_call *c)
{
    struct sq *s = ctx;
    if (s->failed)
        return;
    struct thr *th = thr_of(s, t, c->start_ns);
    int64_t end = rel(s, c->end_ns);
    if (end > th->end)
        th->end = end;
    th->calls++;
    const struct open *o = &th->open[c->depth];
    struct sqbuf *b = &s->buf[s->cur];
    sqlite3_int64 *v = b->rows[b->nrows++].v;
    v[0] = (sqlite3_int64)o->id;
    v[1] = (sqlite3_int64)th->id;
    v[2] = s->gmap[c->func] - 1;
    v[COL_PARENT] = c->depth ? (sqlite3_int64)th->open[c->depth - 1].id : 0; /* 0: NULL */
    v[4] = c->depth;
    v[5] = rel(s, c->start_ns);
    v[6] = (sqlite3_int64)(c->end_ns - c->start_ns);
    v[7] = (sqlite3_int64)c->self_ns;
    v[8] = c->flags;
    v[9] = (sqlite3_int64)th->last_call;  /* last_id: its thread's calls begun since are beneath */
    v[COL_PREV] = (sqlite3_int64)o->prev; /* 0: NULL */
    if (b->nrows == ROWS)
        submit(s);
}

static void on_ext(void *ctx, struct sf_cthread *t, const struct sf_event *ev, uint64_t ns)
{
    struct sq *s = ctx;
    if (s->failed || ev->sub != SF_EXT_ALLOC || ev->nwords < 3)
        return;
    struct thr *th = thr_of(s, t, ns);
    uint64_t call = 0; /* the innermost delivered call */
    for (uint32_t d = t->depth; d-- > 0;)
        if (t->stack[d].kept) {
            call = th->open[t->stack[d].depth].id;
            break;
        }
    struct sqbuf *b = &s->buf[s->cur];
    sqlite3_int64 *v = b->arows[b->narows++].v;
    v[0] = (sqlite3_int64)th->id;
    v[1] = (sqlite3_int64)call; /* 0: NULL */
    v[2] = rel(s, ns);
    v[3] = ev->arg;
    v[4] = (sqlite3_int64)ev->v[0];
    v[5] = (sqlite3_int64)ev->v[1];
    v[6] = (sqlite3_int64)ev->v[2];
    if (b->narows == AROWS)
        submit(s);
}

static int on_tick(void *ctx)
{
    return ((struct sq *)ctx)->failed;
}

/* ---- the tables written at the end -------------------------------------------- */

static sqlite3_stmt *prepare(struct sq *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sq_check(s, sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL),
                 "preparing a statement") < 0)
        return NULL;
    return st;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *str)
{
    if (str)
        sqlite3_bind_text(st, i, str, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void write_meta(struct sq *s, struct sf_log *log, const struct sf_calls_stats *cs,
                       int damaged)
{
    sqlite3_stmt *st = prepare(s, "INSERT INTO meta VALUES (?, ?)");
    if (!st)
        return;
    const struct sf_file_header *h = sf_log_header(log);
    int64_t first = 0, last = 0; /* of the threads' events */
    for (size_t i = 0; i < s->nthrs; i++) {
        if (!i || s->thrs[i]->start < first)
            first = s->thrs[i]->start;
        if (!i || s->thrs[i]->end > last)
            last = s->thrs[i]->end;
    }
    struct {
        const char *key;
        int64_t v;
    } ints[] = {
        {"schema_version", SF_SQL_SCHEMA_VERSION},
        {"log_version_major", h->version_major},
        {"log_version_minor", h->version_minor},
        {"session_id", (int64_t)h->session_id},
        {"create_mono_ns", (int64_t)h->create_mono_ns},
        {"create_real_ns", (int64_t)h->create_real_ns},
        {"first_ns", first},
        {"last_ns", last},
        {"events", (int64_t)cs->events},
        {"calls", (int64_t)cs->calls},
        {"unmatched_exits", (int64_t)cs->unmatched},
        {"unfinished", (int64_t)cs->unfinished},
        {"too_deep", (int64_t)cs->too_deep},
        {"lost_records", (int64_t)cs->lost},
        {"damaged", damaged},
    };
    sqlite3_bind_text(st, 1, "log", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sf_log_path(log), -1, SQLITE_TRANSIENT);
    sq_check(s, sqlite3_step(st), "writing meta");
    sqlite3_reset(st);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        sqlite3_bind_text(st, 1, ints[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ints[i].v);
        sq_check(s, sqlite3_step(st), "writing meta");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

static void write_procs(struct sq *s)
{
    sqlite3_stmt *st = prepare(s, "INSERT INTO process VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st)
        return;
    for (size_t i = 0; i < s->nprocs; i++) {
        const struct proc *p = &s->procs[i];
        if (!p->known)
            continue;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 2, p->pid);
        sqlite3_bind_int64(st, 3, p->ppid);
        sqlite3_bind_text(st, 4, p->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, p->exe, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, p->cmdline, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, (p->flags & SF_PROC_FORKED) != 0);
        sqlite3_bind_int64(st, 8, (p->flags & SF_PROC_EXECED) != 0);
        sqlite3_bind_text(st, 9, p->clock == SF_CLOCK_TSC ? "tsc" : "mono", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 10, p->start);
        if (p->has_end) {
            sqlite3_bind_int64(st, 11, p->end);
            sqlite3_bind_text(st, 12, p->reason, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, 11);
            sqlite3_bind_null(st, 12);
        }
        sq_check(s, sqlite3_step(st), "writing a process");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

static void bind_id_or_null(sqlite3_stmt *st, int i, uint64_t id)
{
    if (id)
        sqlite3_bind_int64(st, i, (sqlite3_int64)id);
    else
        sqlite3_bind_null(st, i);
}

static void write_threads(struct sq *s)
{
    sqlite3_stmt *st = prepare(s, "INSERT INTO thread VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    if (!st)
        return;
    for (size_t i = 0; i < s->nthrs; i++) {
        const struct thr *th = s->thrs[i];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)th->id);
        sqlite3_bind_int64(st, 2, th->image);
        sqlite3_bind_int64(st, 3, th->pid);
        sqlite3_bind_int64(st, 4, th->tid);
        bind_text_or_null(st, 5, th->name[0] ? th->name : NULL);
        sqlite3_bind_int64(st, 6, th->start);
        sqlite3_bind_int64(st, 7, th->end);
        sqlite3_bind_int64(st, 8, th->exited);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)th->calls);
        bind_id_or_null(st, 10, th->first_call);
        bind_id_or_null(st, 11, th->last_call);
        sq_check(s, sqlite3_step(st), "writing a thread");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

/* The samples, made in id order: that is (thread, start_ns) order, so the
 * WITHOUT ROWID table grows by appends. */
static void write_samples(struct sq *s)
{
    sqlite3_stmt *st = prepare(s, "INSERT INTO call_sample VALUES (?,?,?)");
    if (!st)
        return;
    for (size_t i = 0; i < s->nsamples && !s->failed; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)s->samples[i].thread);
        sqlite3_bind_int64(st, 2, s->samples[i].start);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)s->samples[i].id);
        sq_check(s, sqlite3_step(st), "writing the call samples");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

/* The raw (mangled) symbol names of one object file, for function.mangled:
 * read from the file the symbolizer took its names from, with the same walk
 * (sf_elf_func_syms), one name per address (global before weak before
 * local, as the symbolizer prefers). */
struct rawsym {
    uint64_t addr;
    int rank;
    char *name;
};

struct rawtab {
    struct rawsym *v;
    size_t n, cap;
};

static void raw_one(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    struct rawtab *t = ctx;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->v = xrealloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n++] = (struct rawsym){sym->st_value, rank, sf_xstrdup(name)};
}

static int raw_cmp(const void *a, const void *b)
{
    const struct rawsym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->rank - y->rank;
}

static void raw_load(struct rawtab *t, struct sf_symobj *so)
{
    const char *file = sf_symobj_ok(so) ? sf_symobj_symfile(so) : NULL;
    int fd = file ? open(file, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    if (elf) {
        sf_elf_func_syms(elf, 0, raw_one, t);
        if (!t->n)
            sf_elf_func_syms(elf, 1, raw_one, t);
        elf_end(elf);
    }
    close(fd);
    if (t->n > 1)
        qsort(t->v, t->n, sizeof *t->v, raw_cmp);
}

static const char *raw_find(const struct rawtab *t, uint64_t addr)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* the first entry with addr >= addr */
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n && t->v[lo].addr == addr ? t->v[lo].name : NULL;
}

static void raw_free(struct rawtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
}

static void write_funcs(struct sq *s, struct sf_sqlout_stats *out)
{
    sqlite3_stmt *fst = prepare(s, "INSERT INTO function VALUES (?,?,?,?,?,?,?,?,?)");
    sqlite3_stmt *ost = prepare(s, "INSERT INTO object VALUES (?,?,?,?)");
    if (!fst || !ost) {
        sqlite3_finalize(fst);
        sqlite3_finalize(ost);
        return;
    }
    struct rawtab *raw = sf_xcalloc(s->nobjs + 1, sizeof *raw); /* [object.id - 1] */
    for (size_t i = 0; i < s->nobjs && !s->failed; i++) {
        const struct obj *ob = &s->objs[i];
        sqlite3_bind_int64(ost, 1, (sqlite3_int64)i + 1);
        sqlite3_bind_text(ost, 2, ob->path, -1, SQLITE_STATIC);
        bind_text_or_null(ost, 3, ob->hex[0] ? ob->hex : NULL);
        sqlite3_bind_int64(ost, 4, ob->main);
        sq_check(s, sqlite3_step(ost), "writing an object");
        sqlite3_reset(ost);
        out->objects++;
        raw_load(&raw[i], ob->so);
    }
    for (size_t i = 0; i < s->nfns && !s->failed; i++) {
        const struct fn *f = &s->fns[i];
        sqlite3_bind_int64(fst, 1, (sqlite3_int64)i);
        sqlite3_bind_text(fst, 2, f->name, -1, SQLITE_STATIC);
        bind_text_or_null(fst, 3, f->obj ? raw_find(&raw[f->obj - 1], f->addr) : NULL);
        if (f->file) {
            sqlite3_bind_text(fst, 4, f->file, -1, SQLITE_STATIC);
            sqlite3_bind_int64(fst, 5, f->line);
        } else {
            sqlite3_bind_null(fst, 4);
            sqlite3_bind_null(fst, 5);
        }
        if (f->obj) {
            sqlite3_bind_int64(fst, 6, f->obj);
            sqlite3_bind_int64(fst, 7, (sqlite3_int64)f->addr);
        } else {
            sqlite3_bind_null(fst, 6);
            sqlite3_bind_null(fst, 7);
        }
        sqlite3_bind_int64(fst, 8, (sqlite3_int64)f->calls);
        bind_id_or_null(fst, 9, f->last);
        sq_check(s, sqlite3_step(fst), "writing a function");
        sqlite3_reset(fst);
        out->functions++;
    }
    for (size_t i = 0; i < s->nobjs; i++)
        raw_free(&raw[i]);
    free(raw);
    sqlite3_finalize(fst);
    sqlite3_finalize(ost);
}

/* ---- the runs: one per thread id ----------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void add_stats(struct sf_calls_stats *to, const struct sf_calls_stats *r)
{
    to->events += r->events;
    to->calls += r->calls;
    to->unmatched += r->unmatched;
    to->cut += r->cut;
    to->unfinished += r->unfinished;
    to->unwound += r->unwound;
    to->too_deep += r->too_deep;
    to->lost += r->lost;
    to->backwards += r->backwards;
    to->threads += r->threads;
    to->chunks_skipped += r->chunks_skipped;
    to->chunks_replayed += r->chunks_replayed;
    /* every run sees every process */
    to->processes = r->processes > to->processes ? r->processes : to->processes;
    to->images = r->images > to->images ? r->images : to->images;
    if (r->first_ns && (!to->first_ns || r->first_ns < to->first_ns))
        to->first_ns = r->first_ns;
    if (r->last_ns > to->last_ns)
        to->last_ns = r->last_ns;
}

/* One run of the engine over log, narrowed to the thread ids tids[ntids]
 * (sorted; all of the selection's when NULL). 0, or -1 with s->err set. */
static int run_one(struct sq *s, struct sf_log *log, const struct sf_select *sel,
                   const uint32_t *tids, size_t ntids, struct sf_calls_stats *st)
{
    static const struct sf_calls_ops ops = {
        .process = on_process,
        .process_end = on_process_end,
        .thread = on_thread,
        .thread_exit = on_thread_exit,
        .begin = on_begin,
        .end = on_end,
        .ext = on_ext,
        .warning = on_warning,
    };
    struct sf_select one;
    if (sel)
        one = *sel;
    else
        sf_select_init(&one);
    if (tids) {
        one.tids = (uint32_t *)tids;
        one.ntids = ntids;
    }
    s->e = sf_calls_new(log, s->syms, &one, &ops, s);
    sf_calls_set_tick(s->e, on_tick, s);
    if (s->gmap)
        memset(s->gmap, 0, s->capgmap * sizeof *s->gmap);
    int ran = sf_calls_run(s->e);
    if (ran < 0 && !s->failed) {
        snprintf(s->err, sizeof s->err, "%s", sf_calls_error(s->e));
        s->failed = 1;
    }
    /* every function the engine knows gets its row, called or not */
    for (uint32_t g = 0, n = sf_calls_nfuncs(s->e); g < n && !s->failed; g++)
        fn_of(s, g);
    struct sf_calls_stats r;
    sf_calls_stats(s->e, &r);
    add_stats(st, &r);
    sf_calls_free(s->e);
    s->e = NULL;
    return s->failed ? -1 : 0;
}

/* A thread id's EVENTS chunks: the file offsets of its first and last. */
struct span {
    uint32_t tid;
    uint64_t first, last;
};

struct spans {
    struct span *v;
    size_t n, cap;
    struct sf_map idx; /* tid -> v index + 1 */
};

static int span_skip(void *ctx, const struct sf_chunkv *c)
{
    struct spans *sp = ctx;
    uint32_t tid = c->u.events->tid;
    uint64_t *slot = sf_map_get(&sp->idx, tid, 1);
    if (!*slot) {
        SF_GROW(sp->v, sp->n, sp->cap);
        sp->v[sp->n++] = (struct span){tid, c->offset, c->offset};
        *slot = sp->n;
    } else {
        sp->v[*slot - 1].last = c->offset;
    }
    return 1; /* the records are not read */
}

static int by_first(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* A reader of log's file that takes log's prescan (log reports the damage). */
static struct sf_log *reopen(struct sq *s, struct sf_log *log)
{
    char err[SF_ERRLEN];
    struct sf_log *lg = sf_log_open(sf_log_path(log), err, sizeof err);
    if (!lg) {
        snprintf(s->err, sizeof s->err, "%s", err);
        s->failed = 1;
        return NULL;
    }
    sf_log_set_warn(lg, sf_log_warn_none, NULL);
    sf_log_prescan_from(lg, log);
    return lg;
}

static void close_run_log(struct sf_log *lg, int *damaged)
{
    struct sf_log_damage dm;
    sf_log_damage(lg, &dm);
    *damaged |= dm.chunks || dm.ranges || dm.truncated;
    sf_log_close(lg);
}

/*
 * Each thread's calls get contiguous ids because the engine runs over
 * groups of thread ids whose EVENTS chunks do not interleave in the file:
 * it delivers the calls of different threads in chunk order, and a
 * thread's calls begin only while its own chunks are read, so within a
 * group one thread's calls all begin before the next one's first. One
 * pass over the chunk headers (no records read) finds each tid's first and
 * last chunk; tids go, in the order of their first chunk, into the first
 * group whose last chunk comes before it (threads that ran one after the
 * other share a run: 1,000 short threads, four at a time, make about four
 * runs, not 1,000). With a time range the engine begins the calls open at
 * its start where it likes, so there each tid has a run of its own. The
 * runs share log's prescan (each has its own reader; the first reads with
 * log itself, which reports damage on the way); the writer thread inserts
 * one buffer while the runs fill the next, whatever thread they are on.
 * on_begin counts any begin that breaks the rule (s->interleaved).
 */
static int run_all(struct sq *s, struct sf_log *log, const struct sf_select *sel,
                   struct sf_calls_stats *st, int *damaged)
{
    struct spans sp = {0};
    int rc = 0, pre = sf_log_prescan(log);
    if (pre == 0) {
        struct sf_log *lg = reopen(s, log);
        if (!lg)
            return -1;
        sf_log_set_skip(lg, span_skip, &sp);
        struct sf_chunkv c;
        while (sf_log_next(lg, &c) > 0)
            ;
        close_run_log(lg, damaged);
    }
    size_t n = 0;
    for (size_t i = 0; i < sp.n; i++)
        if (!sel || !sel->ntids || sf_select_tid(sel, sp.v[i].tid))
            sp.v[n++] = sp.v[i];
    if (n > 1)
        qsort(sp.v, n, sizeof *sp.v, by_first);
    /* the groups: the last chunk of each, and each span's group */
    size_t ng = 0;
    uint64_t *gend = xrealloc(NULL, (n + 1) * sizeof *gend);
    size_t *gof = xrealloc(NULL, (n + 1) * sizeof *gof);
    int alone = sel && sel->has_range;
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < ng && (alone || gend[g] >= sp.v[i].first))
            g++;
        if (g == ng)
            ng++;
        gend[g] = sp.v[i].last;
        gof[i] = g;
    }
    uint32_t *tids = xrealloc(NULL, (n + 1) * sizeof *tids);
    if (pre < 0 || n <= 1) {
        /* one run: a log that cannot be prescanned (the engine says why),
         * or one thread id, or none (the processes still get their rows) */
        ng = 1;
        rc = run_one(s, log, sel, NULL, 0, st);
    } else {
        for (size_t g = 0; g < ng && !rc; g++) {
            size_t nt = 0;
            for (size_t i = 0; i < n; i++)
                if (gof[i] == g)
                    tids[nt++] = sp.v[i].tid;
            qsort(tids, nt, sizeof *tids, cmp_u32); /* as sf_select keeps them */
            struct sf_log *lg = g ? reopen(s, log) : log;
            if (!lg) {
                rc = -1;
                break;
            }
            rc = run_one(s, lg, sel, tids, nt, st);
            if (g)
                close_run_log(lg, damaged);
        }
    }
    struct sf_log_damage dm;
    sf_log_damage(log, &dm);
    *damaged |= dm.chunks || dm.ranges || dm.truncated;
    s->runs = ng;
    free(tids);
    free(gend);
    free(gof);
    free(sp.v);
    sf_map_free(&sp.idx);
    return rc;
}

/* ---- the entry point ----------------------------------------------------------- */

int sf_sqlout_write(struct sf_log *log, struct sf_syms *syms, const struct sf_select *sel,
                    const char *path, unsigned flags, struct sf_sqlout_stats *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(path, "-")) {
        snprintf(err, errlen, "an SQLite database cannot be written to stdout; give -o FILE");
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    unlink(tmp);
    struct sq s;
    memset(&s, 0, sizeof s);
    s.t0 = (int64_t)sf_log_header(log)->create_mono_ns;
    s.syms = syms;
    for (int i = 0; i < 2; i++) {
        s.buf[i].rows = xrealloc(NULL, ROWS * sizeof *s.buf[i].rows);
        s.buf[i].arows = xrealloc(NULL, AROWS * sizeof *s.buf[i].arows);
        s.buf[i].flat = xrealloc(NULL, ROWS * NCOLS * sizeof *s.buf[i].flat);
        s.buf[i].runs = xrealloc(NULL, ROWS * sizeof *s.buf[i].runs);
    }
    s.slot = xrealloc(NULL, SPAN * sizeof *s.slot);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    int rc = sqlite3_open_v2(
        tmp, &s.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", tmp, s.db ? sqlite3_errmsg(s.db) : sqlite3_errstr(rc));
        sqlite3_close(s.db);
        unlink(tmp);
        return -1;
    }
    double t0 = now_s();
    /* No journal and no fsync while we write: the file is renamed into place
     * only once complete, so a crash leaves a stray temporary file at worst.
     * threads=0: the index sorts in this thread; helper threads cost more CPU
     * in all than they save in wall time (docs/sqlite.md, Speed). */
    sq_exec(&s,
            "PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-65536; PRAGMA threads=0;",
            "setting up the database");
    sq_exec(&s, schema, "creating the tables");
    sq_exec(&s, "BEGIN", "starting the transaction");
    if (!s.failed) {
        static const char *const cols[2] = {
            "(id, thread, function, parent, depth, start_ns, dur_ns, self_ns, flags, last_id, "
            "prev_call)",
            "(thread, function, parent, depth, start_ns, dur_ns, self_ns, flags, last_id, "
            "prev_call)"};
        for (int d = 0; d < 2; d++) {
            char sql[256 + BATCH * 2 * (NCOLS + 2)];
            int nc = NCOLS - d;
            for (int rows = 1; rows <= BATCH; rows += BATCH - 1) {
                size_t n = (size_t)snprintf(sql, sizeof sql, "INSERT INTO call%s VALUES ", cols[d]);
                for (int r = 0; r < rows; r++) {
                    n += (size_t)snprintf(sql + n, sizeof sql - n, "%s(?", r ? "," : "");
                    for (int k = 1; k < nc; k++)
                        n += (size_t)snprintf(sql + n, sizeof sql - n, ",?");
                    n += (size_t)snprintf(sql + n, sizeof sql - n, ")");
                }
                *(rows == 1 ? &s.call1[d] : &s.call[d]) = prepare(&s, sql);
            }
        }
        s.alloc = prepare(&s, "INSERT INTO alloc(thread, call, ts_ns, kind, size, align, ptr) "
                              "VALUES (?,?,?,?,?,?,?)");
    }
    int damaged = 0;
    double cpu0 = thread_cpu_s();
    if (!s.failed) {
        /* without a second CPU the writer thread would only add switches */
        s.threaded = sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
                     pthread_create(&s.writer, NULL, writer_main, &s) == 0;
        run_all(&s, log, sel, &out->calls, &damaged);
        if (s.interleaved) /* not seen: a thread's calls begin while its chunks are read */
            fprintf(stderr,
                    "sftrace: warning: %" PRIu64 " calls began on a thread after another "
                    "thread's calls had begun: thread.first_call..last_call ranges overlap\n",
                    s.interleaved);
        finish_writer(&s); /* the writer is gone: s.err is this thread's again */
    }
    out->engine_cpu_s = thread_cpu_s() - cpu0;
    out->runs = s.runs;
    out->writer_cpu_s = s.writer_cpu;
    for (int i = 0; i < 2; i++) {
        free(s.buf[i].rows);
        free(s.buf[i].arows);
        free(s.buf[i].flat);
        free(s.buf[i].runs);
    }
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    free(s.slot);
    for (int d = 0; d < 2; d++) {
        sqlite3_finalize(s.call[d]);
        sqlite3_finalize(s.call1[d]);
        s.call[d] = s.call1[d] = NULL;
    }
    sqlite3_finalize(s.alloc);
    s.alloc = NULL;
    if (!s.failed) {
        write_funcs(&s, out);
        write_threads(&s);
        write_procs(&s);
        write_samples(&s);
        write_meta(&s, log, &out->calls, damaged);
    }
    double t1 = now_s();
    if (!s.failed) {
        if (sq_exec(&s, index_setup, "making the indexes") == 0 &&
            sq_exec(&s, indexes, "making the indexes") == 0 && (flags & SF_SQLOUT_INDEXES))
            sq_exec(&s, call_indexes, "making the indexes");
        sq_exec(&s, views, "making the views");
        sq_exec(&s, "COMMIT", "committing");
    }
    out->insert_s = t1 - t0;
    out->index_s = now_s() - t1;
    out->allocs = s.allocs;
    out->damaged = damaged;
    for (size_t i = 0; i < s.nthrs; i++) {
        free(s.thrs[i]->open);
        free(s.thrs[i]);
    }
    free(s.thrs);
    for (size_t i = 0; i < s.nprocs; i++) {
        free(s.procs[i].name);
        free(s.procs[i].exe);
        free(s.procs[i].cmdline);
    }
    free(s.procs);
    for (size_t i = 0; i < s.nfns; i++) {
        free(s.fns[i].name);
        free(s.fns[i].file);
    }
    free(s.fns);
    for (size_t i = 0; i < s.nobjs; i++) {
        free(s.objs[i].path);
        sf_map_free(&s.objs[i].funcs);
    }
    free(s.objs);
    sf_map_free(&s.objmap);
    sf_map_free(&s.unk);
    free(s.gmap);
    free(s.samples);
    for (size_t i = 0; i < s.nwarned; i++)
        free(s.warned[i]);
    free(s.warned);
    rc = sqlite3_close(s.db);
    if (rc != SQLITE_OK && !s.failed) {
        snprintf(s.err, sizeof s.err, "closing: %s", sqlite3_errstr(rc));
        s.failed = 1;
    }
    if (!s.failed && rename(tmp, path) < 0) {
        snprintf(s.err, sizeof s.err, "%s: %s", path, strerror(errno));
        s.failed = 1;
    }
    if (s.failed) {
        unlink(tmp);
        snprintf(err, errlen, "%s: %s", path, s.err);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0)
        out->bytes = (uint64_t)st.st_size;
    return 0;
}
