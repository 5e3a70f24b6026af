/*
 * memory.c - `sftrace memory`: where the heap went, by call path, stage by
 * stage.
 *
 * The call engine (lib/calls.h) reads the log in one pass; this file keeps,
 * per thread, the calling-context tree node of its innermost open call
 * (lib/cctree.h: one tree for the run, one label node per process image
 * under the root) and hands every ALLOC record, with that node as its call
 * path, to the heap model (lib/heap.h), which puts the threads' events in
 * one time order and replays them against the live blocks. Entries of a
 * --milestone function go to the model as stage boundaries, in the same
 * time order. After the run: the summary (table, CSV or JSON), or with
 * --flame a flame graph (lib/flamesvg.h) of bytes live at exit, at the
 * peak, or allocated, by the allocating call path.
 *
 * One reader: a block allocated on one thread is freed on another, so the
 * log's threads cannot be split between workers as report's -j does. -j 2
 * (the default with 2 or more CPUs) gives the heap model a thread of its
 * own instead: this file's callbacks run in the reader's thread and hand
 * the model its calls through a queue (heap.h: sf_heapq), in the same
 * order, so the output is the same as with -j 1. Memory: the live blocks,
 * the distinct call paths, the reorder window and the queue (heap.h), never
 * the number of events.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "cctree.h"
#include "cmds.h"
#include "flamesvg.h"
#include "fmt.h"
#include "heap.h"
#include "runcalls.h"
#include "select.h"

#define CMD "sftrace memory"

/* Per engine thread (sf_cthread.user). */
struct mthr {
    uint32_t ht;    /* the heap model's thread */
    uint32_t depth; /* delivered calls open */
    uint32_t base;  /* its heap's label node: allocations outside any call */
    uint32_t cap;
    uint32_t *node; /* [depth] the tree node of each open call */
    /* [2 * depth]: the last two calls begun there: function, parent node and
     * node (a loop calls the same functions under the same parent again and
     * again: no lookup then) */
    uint32_t *cf, *cp, *cn;
    struct sf_cthread *ct; /* while it runs (NULL after its exit / its process's end) */
    char name[17];         /* its latest name */
    uint64_t last_ns;      /* its latest allocation event (ct->last_ns: function events) */
    uint64_t sent_ns;      /* the latest time the heap model was given for it */
    uint32_t heap;         /* its heap */
};

struct mctx {
    struct sf_runw *w;
    struct sf_heap h; /* the heap model's (q's consumer's) until sf_heapq_close */
    struct sf_heapq q;
    uint32_t *heap_label; /* heap -> its label node */
    size_t caplabel;
    struct sf_cctree tree;
    uint32_t *img_heap; /* image id -> heap + 1 */
    size_t nimg;
    struct mthr **all, **active;
    size_t nall, capall, nactive, capactive;
    uint32_t last_ht;
    struct sf_milestones ms;
};

/* ---- the engine consumer ---------------------------------------------------------- */

static uint32_t heap_of_img(struct mctx *m, const struct sf_image *img)
{
    SF_GROW_ZERO(m->img_heap, img->id, m->nimg, 16);
    if (!m->img_heap[img->id]) {
        char label[128];
        snprintf(label, sizeof label, "%u %s", img->pid, img->name ? img->name : "");
        uint32_t hn = m->q.nheaps;
        uint32_t node = sf_cctree_label(&m->tree, hn, label);
        sf_heapq_add_heap(&m->q, img->pid, img->id, node);
        SF_GROW_ZERO(m->heap_label, hn, m->caplabel, 16);
        m->heap_label[hn] = node;
        m->img_heap[img->id] = hn + 1;
    }
    return m->img_heap[img->id] - 1;
}

static struct mthr *thr_of(struct mctx *m, struct sf_cthread *t)
{
    if (t->user)
        return t->user;
    struct mthr *x = sf_xrealloc(NULL, sizeof *x);
    memset(x, 0, sizeof *x);
    uint32_t hp = heap_of_img(m, t->img);
    x->ht = sf_heapq_add_thread(&m->q, hp, t->pid, t->tid, x);
    x->heap = hp;
    x->base = m->heap_label[hp];
    x->ct = t;
    SF_GROW(m->all, m->nall, m->capall);
    m->all[m->nall++] = x;
    SF_GROW(m->active, m->nactive, m->capactive);
    m->active[m->nactive++] = x;
    t->user = x;
    return x;
}

/* A thread stops counting for the watermark. */
static void retire(struct mctx *m, struct mthr *x)
{
    sf_heapq_ctl(&m->q, SF_HEAPQ_RETIRE, x->ht, x->ct ? x->ct->last_ns : 0, 0, x->ct != NULL);
    x->ct = NULL;
    for (size_t i = 0; i < m->nactive; i++)
        if (m->active[i] == x) {
            m->active[i] = m->active[--m->nactive];
            break;
        }
}

/* A sync of the heap model (op: SF_HEAPQ_SYNC, or SF_HEAPQ_SYNC_IF: when
 * enough is pending, which only the model knows), after the latest times of
 * the running threads (those that changed since the model was last told). */
static void sync_heap(struct mctx *m, enum sf_heapq_op op)
{
    for (size_t i = 0; i < m->nactive; i++) {
        struct mthr *x = m->active[i];
        uint64_t t = x->ct->last_ns;
        if (t < x->last_ns)
            t = x->last_ns;
        if (t != x->sent_ns) {
            sf_heapq_ctl(&m->q, SF_HEAPQ_LAST, x->ht, t, 0, 0);
            x->sent_ns = t;
        }
    }
    sf_heapq_ctl(&m->q, op, 0, 0, 0, 0);
}

static void cb_process(void *ctx, const struct sf_image *img, uint64_t ns)
{
    (void)ns;
    heap_of_img(ctx, img);
}

static void cb_process_end(void *ctx, const struct sf_image *img, const struct sf_end *end,
                           uint64_t ns)
{
    (void)end;
    (void)ns;
    struct mctx *m = ctx;
    uint32_t hp = heap_of_img(m, img);
    for (size_t i = m->nactive; i-- > 0;)
        if (m->active[i]->heap == hp)
            retire(m, m->active[i]);
}

static void cb_thread(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ns;
    struct mthr *x = thr_of(ctx, t);
    memcpy(x->name, t->name, sizeof x->name);
}

static void cb_thread_exit(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ns;
    struct mctx *m = ctx;
    struct mthr *x = thr_of(m, t);
    retire(m, x);
    t->user = NULL; /* a tid seen again is a new thread */
}

/* Begins and ends, in batches (calls.h's ops.calls): each begin's tree node
 * (the calling context), the milestones. */
static void cb_calls(void *ctx, struct sf_cthread *t, const struct sf_crec *r, size_t n)
{
    struct mctx *m = ctx;
    struct mthr *x = thr_of(m, t);
    for (size_t i = 0; i < n; i++) {
        if (r[i].kind == SF_CREC_END) {
            x->depth -= x->depth > 0;
            continue;
        }
        uint32_t d = x->depth;
        if (d >= x->cap) {
            uint32_t c = x->cap ? 2 * x->cap : 64;
            x->node = sf_xrealloc(x->node, c * sizeof *x->node);
            x->cf = sf_xrealloc(x->cf, 2 * c * sizeof *x->cf);
            x->cp = sf_xrealloc(x->cp, 2 * c * sizeof *x->cp);
            x->cn = sf_xrealloc(x->cn, 2 * c * sizeof *x->cn);
            for (uint32_t k = 2 * x->cap; k < 2 * c; k++)
                x->cf[k] = UINT32_MAX;
            x->cap = c;
        }
        uint32_t parent = d ? x->node[d - 1] : x->base, func = r[i].func;
        uint32_t *cf = x->cf + 2 * d, *cp = x->cp + 2 * d, *cn = x->cn + 2 * d;
        if (cf[0] == func && cp[0] == parent) {
            x->node[d] = cn[0];
        } else if (cf[1] == func && cp[1] == parent) {
            x->node[d] = cn[1];
        } else {
            cf[1] = cf[0], cp[1] = cp[0], cn[1] = cn[0];
            cf[0] = func, cp[0] = parent;
            x->node[d] = cn[0] = sf_cctree_child(&m->tree, parent, func);
        }
        x->depth = d + 1;
        if (m->ms.re && sf_milestone(&m->ms, m->w->e, func)) {
            if (m->last_ht != x->ht)
                sync_heap(m, SF_HEAPQ_SYNC);
            m->last_ht = x->ht;
            sf_heapq_event(&m->q, x->ht, SF_HEAP_MILESTONE, r[i].ns, 0, 0, func);
        }
    }
}

static void cb_ext(void *ctx, struct sf_cthread *t, const struct sf_event *ev, uint64_t ns)
{
    if (ev->sub != SF_EXT_ALLOC || ev->nwords < 3 || ev->arg < 1 || ev->arg > 4)
        return;
    struct mctx *m = ctx;
    struct mthr *x = thr_of(m, t);
    if (m->last_ht != x->ht) {
        m->last_ht = x->ht;
        sync_heap(m, SF_HEAPQ_SYNC_IF);
    }
    x->last_ns = ns;
    uint32_t path = x->depth ? x->node[x->depth - 1] : x->base;
    sf_heapq_event(&m->q, x->ht, (enum sf_heap_kind)ev->arg, ns, ev->v[2], ev->v[0], path);
}

static const struct sf_calls_ops ops = {
    .process = cb_process,
    .process_end = cb_process_end,
    .thread = cb_thread,
    .thread_exit = cb_thread_exit,
    .calls = cb_calls,
    .ext = cb_ext,
};

struct margs {
    struct mctx *m;
};

static void *mkctx(void *arg, struct sf_runw *w)
{
    struct mctx *m = ((struct margs *)arg)->m;
    m->w = w;
    return m;
}

static void freectx(void *ctx)
{
    (void)ctx; /* the command owns it */
}

static void mctx_free(struct mctx *m)
{
    for (size_t i = 0; i < m->nall; i++) {
        free(m->all[i]->node);
        free(m->all[i]->cf);
        free(m->all[i]->cp);
        free(m->all[i]->cn);
        free(m->all[i]);
    }
    free(m->all);
    free(m->active);
    free(m->img_heap);
    free(m->heap_label);
    sf_milestones_free(&m->ms);
    sf_cctree_free(&m->tree);
    sf_heap_free(&m->h);
}

/* ---- call paths ------------------------------------------------------------------- */

struct out {
    struct mctx *m;
    struct sf_run *run;
    const char *path;
    uint64_t origin;
    uint32_t *node_heap; /* tree node -> heap (label nodes: theirs) */
    size_t top;
    enum sf_outfmt fmt;
    int firstsec; /* JSON: no section written yet */
};

static const char *fname(struct mctx *m, uint32_t func)
{
    const struct sf_func *f = sf_calls_func(m->w->e, func);
    return f && f->name ? f->name : "?";
}

/* The functions of a path, outermost first, into a (room for depth). */
static size_t path_funcs(const struct sf_cctree *t, uint32_t node, uint32_t *a)
{
    size_t n = 0;
    for (uint32_t i = node; i != SF_CC_NONE && i != SF_CC_ROOT && !t->n[i].label;
         i = t->n[i].parent)
        n++;
    size_t k = n;
    for (uint32_t i = node; k > 0; i = t->n[i].parent)
        a[--k] = t->n[i].func;
    return n;
}

/* "a > b > c" (sep), "[no call]" for allocations outside any call. */
static char *path_str(struct out *o, uint32_t node, const char *sep)
{
    const struct sf_cctree *t = &o->m->tree;
    uint32_t *a = sf_xrealloc(NULL, (t->n[node].depth + 1) * sizeof *a);
    size_t n = path_funcs(t, node, a);
    size_t len = 1, sl = strlen(sep);
    for (size_t i = 0; i < n; i++)
        len += strlen(fname(o->m, a[i])) + sl;
    if (!n)
        len += 16;
    char *s = sf_xrealloc(NULL, len), *p = s;
    if (!n)
        p += sprintf(p, "[no call]");
    for (size_t i = 0; i < n; i++) {
        if (i)
            p += sprintf(p, "%s", sep);
        p += sprintf(p, "%s", fname(o->m, a[i]));
    }
    *p = 0;
    free(a);
    return s;
}

static void json_path(struct out *o, FILE *f, uint32_t node)
{
    const struct sf_cctree *t = &o->m->tree;
    uint32_t *a = sf_xrealloc(NULL, (t->n[node].depth + 1) * sizeof *a);
    size_t n = path_funcs(t, node, a);
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        sf_json_str(f, fname(o->m, a[i]));
    }
    fputc(']', f);
    free(a);
}

/* A ranked list of (node, value, blocks). */
struct rank {
    uint32_t node;
    uint64_t v, n, v2, n2;
};
static int by_v(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* ---- output helpers ---------------------------------------------------------------- */

static const char *hb(char *buf, size_t n, uint64_t v)
{
    return sf_fmt_bytes_s(buf, n, v);
}

static const char *rel(struct out *o, char *buf, size_t n, uint64_t ns)
{
    return sf_fmt_dur(buf, n, ns > o->origin ? ns - o->origin : 0);
}

static uint64_t relns(const struct out *o, uint64_t ns)
{
    return ns > o->origin ? ns - o->origin : 0;
}

static void csv_row(struct out *o, const char *section, int64_t pid, int64_t tid, int64_t stage,
                    const char *path, const char *metric, uint64_t v)
{
    (void)o;
    printf("%s,", section);
    if (pid >= 0)
        printf("%" PRId64, pid);
    putchar(',');
    if (tid >= 0)
        printf("%" PRId64, tid);
    putchar(',');
    if (stage >= 0)
        printf("%" PRId64, stage);
    putchar(',');
    if (path)
        sf_csv_str(stdout, path);
    printf(",%s,%" PRIu64 "\n", metric, v);
}

struct fig {
    const char *name;
    uint64_t v;
};

static void csv_figs(struct out *o, const char *section, int64_t pid, int64_t tid, int64_t stage,
                     const struct fig *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        csv_row(o, section, pid, tid, stage, NULL, f[i].name, f[i].v);
}

static void json_figs(FILE *f, const struct fig *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", x[i].name, x[i].v);
}

static size_t count_figs(const struct sf_hcount *c, struct fig *f)
{
    f[0] = (struct fig){"allocs", c->allocs};
    f[1] = (struct fig){"frees", c->frees};
    f[2] = (struct fig){"reallocs", c->reallocs};
    f[3] = (struct fig){"bytes_allocated", c->allocated};
    f[4] = (struct fig){"bytes_freed", c->freed};
    return 5;
}

static size_t anom_figs(const struct sf_hanom *a, struct fig *f)
{
    f[0] = (struct fig){"unknown_frees", a->unknown_frees};
    f[1] = (struct fig){"unknown_free_bytes", a->unknown_free_bytes};
    f[2] = (struct fig){"double_frees", a->double_frees};
    f[3] = (struct fig){"unknown_reallocs", a->unknown_reallocs};
    f[4] = (struct fig){"unknown_realloc_bytes", a->unknown_realloc_bytes};
    f[5] = (struct fig){"unpaired_reallocs", a->unpaired_reallocs};
    f[6] = (struct fig){"live_address_allocs", a->live_address_allocs};
    f[7] = (struct fig){"live_address_bytes", a->live_address_bytes};
    f[8] = (struct fig){"null_allocs", a->null_allocs};
    return 9;
}

static int anom_any(const struct sf_hanom *a)
{
    return a->unknown_frees || a->double_frees || a->unknown_reallocs || a->unpaired_reallocs ||
           a->live_address_allocs || a->null_allocs;
}

static void anom_text(const struct sf_hanom *a, const char *indent)
{
    char b[SF_FMT_LEN];
    if (a->unknown_frees)
        printf("%s%" PRIu64 " frees of blocks not seen allocated (%s; allocated before recording "
               "or by an untraced allocator), not counted as freed\n",
               indent, a->unknown_frees, hb(b, sizeof b, a->unknown_free_bytes));
    if (a->double_frees)
        printf("%s%" PRIu64 " double frees (an address freed again), ignored\n", indent,
               a->double_frees);
    if (a->unknown_reallocs)
        printf("%s%" PRIu64 " reallocs of blocks not seen allocated (%s): their new blocks count "
               "as allocations\n",
               indent, a->unknown_reallocs, hb(b, sizeof b, a->unknown_realloc_bytes));
    if (a->unpaired_reallocs)
        printf("%s%" PRIu64 " realloc new blocks without their old block\n", indent,
               a->unpaired_reallocs);
    if (a->live_address_allocs)
        printf("%s%" PRIu64 " allocations at an address still live (%s replaced: a free not "
               "seen)\n",
               indent, a->live_address_allocs, hb(b, sizeof b, a->live_address_bytes));
    if (a->null_allocs)
        printf("%s%" PRIu64 " allocations reported at address 0, ignored\n", indent,
               a->null_allocs);
}

/* The paths of heap hp (all heaps: UINT32_MAX) with a nonzero value:
 * which 0 live at exit, 1 at the (heap's) peak, 2 allocated. */
static size_t ranked(struct out *o, uint32_t hp, int which, struct rank **out)
{
    struct sf_heap *h = &o->m->h;
    struct rank *r = sf_xrealloc(NULL, (h->npaths ? h->npaths : 1) * sizeof *r);
    size_t n = 0;
    for (uint32_t p = 0; p < h->npaths; p++) {
        if (p >= o->m->tree.nn || (hp != UINT32_MAX && o->node_heap[p] != hp))
            continue;
        const struct sf_hpath *P = &h->paths[p];
        uint64_t v = which == 0   ? P->live
                     : which == 1 ? sf_heap_at_peak(h, p, SF_SCOPE_HEAP, o->node_heap[p])
                                  : P->allocated;
        if (!v)
            continue;
        r[n++] = (struct rank){p, v,
                               which == 0   ? P->live_blocks
                               : which == 2 ? P->allocs
                                            : 0,
                               0, 0};
    }
    qsort(r, n, sizeof *r, by_v);
    *out = r;
    return n;
}

static size_t limit(const struct out *o, size_t n)
{
    return o->top && n > o->top ? o->top : n;
}

/* ---- the report ------------------------------------------------------------------ */

static const char *heap_name(struct out *o, uint32_t hp)
{
    const struct sf_image *img = sf_log_image_at(o->m->w->log, o->m->h.heaps[hp].image);
    return img && img->name ? img->name : "";
}

static const char *thread_name(const struct sf_hthread *t)
{
    const struct mthr *x = t->user;
    return x ? x->name : "";
}

static void report_table(struct out *o, const struct sf_calls_stats *st)
{
    struct sf_heap *h = &o->m->h;
    char a[SF_FMT_LEN], b[SF_FMT_LEN], c[SF_FMT_LEN], d[SF_FMT_LEN], e[SF_FMT_LEN];
    sf_run_header(stdout, o->path, st);
    printf("%s allocations, %s frees, %s reallocs: %s allocated, %s freed\n",
           sf_fmt_grouped(a, sizeof a, h->c.allocs), sf_fmt_grouped(b, sizeof b, h->c.frees),
           sf_fmt_grouped(c, sizeof c, h->c.reallocs), hb(d, sizeof d, h->c.allocated),
           hb(e, sizeof e, h->c.freed));
    printf("peak: %s live at %s; at exit: %s live in %s block%s (leaked)\n",
           hb(a, sizeof a, h->g.peak), rel(o, b, sizeof b, h->g.peak_ns), hb(c, sizeof c, h->g.cur),
           sf_fmt_grouped(d, sizeof d, h->live_blocks), h->live_blocks == 1 ? "" : "s");
    anom_text(&h->a, "");
    if (h->late)
        printf("time order: %" PRIu64 " of %" PRIu64 " events came after later ones had been "
               "replayed (reorder window exceeded); they were applied late, so peak figures are "
               "approximate\n",
               h->late, h->events);

    for (uint32_t hp = 0; hp < h->nheaps; hp++) {
        const struct sf_hheap *x = &h->heaps[hp];
        if (!x->c.allocs && !x->c.frees && !x->c.reallocs && !anom_any(&x->a))
            continue;
        printf("\nprocess %u %s: %s allocations, %s frees, %s reallocs, %s allocated\n", x->pid,
               heap_name(o, hp), sf_fmt_grouped(a, sizeof a, x->c.allocs),
               sf_fmt_grouped(b, sizeof b, x->c.frees), sf_fmt_grouped(c, sizeof c, x->c.reallocs),
               hb(d, sizeof d, x->c.allocated));
        printf("  peak %s at %s; %s live at exit in %s block%s\n", hb(a, sizeof a, x->s.peak),
               rel(o, b, sizeof b, x->s.peak_ns), hb(c, sizeof c, x->s.cur),
               sf_fmt_grouped(d, sizeof d, x->live_blocks), x->live_blocks == 1 ? "" : "s");
        anom_text(&x->a, "  ");
        for (int which = 1; which >= 0; which--) {
            struct rank *r;
            size_t n = ranked(o, hp, which, &r);
            if (n) {
                printf("  %s, by call path:\n",
                       which ? "live at the peak" : "live at exit (leaked)");
                struct sf_table *t = sf_table_new(
                    which ? 3 : 4,
                    which ? (const char *const[]){"bytes", "share", "call path"}
                          : (const char *const[]){"bytes", "blocks", "share", "call path"},
                    which ? "rrl" : "rrrl");
                uint64_t tot = which ? x->s.peak : x->s.cur;
                for (size_t i = 0; i < limit(o, n); i++) {
                    char *ps = path_str(o, r[i].node, " > ");
                    if (which)
                        sf_table_addf(t, "%s\t%.1f%%\t%s", hb(a, sizeof a, r[i].v),
                                      tot ? 100.0 * r[i].v / tot : 0.0, ps);
                    else
                        sf_table_addf(t, "%s\t%" PRIu64 "\t%.1f%%\t%s", hb(a, sizeof a, r[i].v),
                                      r[i].n, tot ? 100.0 * r[i].v / tot : 0.0, ps);
                    free(ps);
                }
                sf_table_print(t, stdout, "    ");
                sf_table_free(t);
                if (n > limit(o, n))
                    printf("    ... %zu more (--top 0 for all)\n", n - limit(o, n));
            }
            free(r);
        }
    }

    if (h->nthreads) {
        printf("\nthreads:\n");
        struct sf_table *t =
            sf_table_new(8,
                         (const char *const[]){"thread", "allocs", "frees", "reallocs", "allocated",
                                               "freed", "live at exit", "blocks"},
                         "lrrrrrrr");
        for (size_t i = 0; i < h->nthreads; i++) {
            const struct sf_hthread *x = &h->threads[i];
            if (!x->c.allocs && !x->c.frees && !x->c.reallocs && !x->anomalies)
                continue;
            sf_table_addf(t,
                          "%u/%u %s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\t%s\t%" PRIu64,
                          x->pid, x->tid, thread_name(x), x->c.allocs, x->c.frees, x->c.reallocs,
                          hb(a, sizeof a, x->c.allocated), hb(b, sizeof b, x->c.freed),
                          hb(e, sizeof e, x->live), x->live_blocks);
        }
        sf_table_print(t, stdout, "  ");
        sf_table_free(t);
    }

    if (h->nbig) {
        printf("\nlargest allocations:\n");
        struct sf_hbig *bg = sf_xrealloc(NULL, h->nbig * sizeof *bg);
        memcpy(bg, h->big, h->nbig * sizeof *bg);
        for (size_t i = 1; i < h->nbig; i++) /* largest first (insertion sort: top is small) */
            for (size_t j = i; j > 0 && bg[j].size > bg[j - 1].size; j--) {
                struct sf_hbig x = bg[j];
                bg[j] = bg[j - 1];
                bg[j - 1] = x;
            }
        struct sf_table *t = sf_table_new(
            5, (const char *const[]){"bytes", "at", "pid/tid", "stage", "call path"}, "rrrrl");
        for (size_t i = 0; i < h->nbig; i++) {
            const struct sf_hthread *x = &h->threads[bg[i].thread];
            char *ps = path_str(o, bg[i].path, " > ");
            sf_table_addf(t, "%s\t%s\t%u/%u\t%u\t%s", hb(a, sizeof a, bg[i].size),
                          rel(o, b, sizeof b, bg[i].ns), x->pid, x->tid, bg[i].stage, ps);
            free(ps);
        }
        sf_table_print(t, stdout, "  ");
        sf_table_free(t);
        free(bg);
    }

    if (h->nstages > 1) {
        printf("\nstages:\n");
        struct sf_table *t = sf_table_new(
            9,
            (const char *const[]){"stage", "start", "allocated", "freed", "live at end", "peak",
                                  "left at end", "left at exit", "milestone"},
            "rrrrrrrrl");
        for (size_t s = 0; s < limit(o, h->nstages); s++) {
            const struct sf_hstage *x = &h->stages[s];
            uint64_t exit_left = 0;
            for (uint32_t i = x->first_ent; i < x->end_ent; i++)
                exit_left += h->left[i].live;
            char f[SF_FMT_LEN], g[SF_FMT_LEN];
            sf_table_addf(t, "%zu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", s,
                          rel(o, a, sizeof a, x->start_ns ? x->start_ns : o->origin),
                          hb(b, sizeof b, x->c.allocated), hb(c, sizeof c, x->c.freed),
                          hb(d, sizeof d, x->live_end), hb(e, sizeof e, x->peak),
                          hb(f, sizeof f, x->left_end), hb(g, sizeof g, exit_left),
                          x->milestone == UINT32_MAX ? "(start)" : fname(o->m, x->milestone));
        }
        sf_table_print(t, stdout, "  ");
        sf_table_free(t);
        if (h->nstages > limit(o, h->nstages))
            printf("  ... %zu more stages (--top 0 for all)\n", h->nstages - limit(o, h->nstages));
        for (size_t s = 0; s < limit(o, h->nstages); s++) {
            const struct sf_hstage *x = &h->stages[s];
            size_t n = 0;
            struct rank *r = sf_xrealloc(NULL, (x->end_ent - x->first_ent + 1) * sizeof *r);
            for (uint32_t i = x->first_ent; i < x->end_ent; i++) {
                const struct sf_hleft *l = &h->left[i];
                if (l->live_end || l->live)
                    r[n++] = (struct rank){l->path, l->live_end, l->live_end_blocks, l->live,
                                           l->live_blocks};
            }
            qsort(r, n, sizeof *r, by_v);
            if (n) {
                printf("  stage %zu left behind, by call path:\n", s);
                struct sf_table *tt = sf_table_new(
                    5, (const char *const[]){"at end", "blocks", "at exit", "blocks", "call path"},
                    "rrrrl");
                for (size_t i = 0; i < limit(o, n); i++) {
                    char *ps = path_str(o, r[i].node, " > ");
                    sf_table_addf(tt, "%s\t%" PRIu64 "\t%s\t%" PRIu64 "\t%s",
                                  hb(a, sizeof a, r[i].v), r[i].n, hb(b, sizeof b, r[i].v2),
                                  r[i].n2, ps);
                    free(ps);
                }
                sf_table_print(tt, stdout, "    ");
                sf_table_free(tt);
                if (n > limit(o, n))
                    printf("    ... %zu more (--top 0 for all)\n", n - limit(o, n));
            }
            free(r);
        }
    }
}

static void report_csv(struct out *o)
{
    struct sf_heap *h = &o->m->h;
    struct fig f[32];
    size_t n;
    printf("section,pid,tid,stage,path,metric,value\n");
    n = count_figs(&h->c, f);
    f[n++] = (struct fig){"peak_bytes", h->g.peak};
    f[n++] = (struct fig){"peak_ns", relns(o, h->g.peak_ns)};
    f[n++] = (struct fig){"live_bytes", h->g.cur};
    f[n++] = (struct fig){"live_blocks", h->live_blocks};
    n += anom_figs(&h->a, f + n);
    f[n++] = (struct fig){"late_events", h->late};
    csv_figs(o, "total", -1, -1, -1, f, n);
    for (uint32_t hp = 0; hp < h->nheaps; hp++) {
        const struct sf_hheap *x = &h->heaps[hp];
        n = count_figs(&x->c, f);
        f[n++] = (struct fig){"peak_bytes", x->s.peak};
        f[n++] = (struct fig){"peak_ns", relns(o, x->s.peak_ns)};
        f[n++] = (struct fig){"live_bytes", x->s.cur};
        f[n++] = (struct fig){"live_blocks", x->live_blocks};
        n += anom_figs(&x->a, f + n);
        csv_figs(o, "process", x->pid, -1, -1, f, n);
        for (int which = 1; which >= 0; which--) {
            struct rank *r;
            size_t k = ranked(o, hp, which, &r);
            for (size_t i = 0; i < limit(o, k); i++) {
                char *ps = path_str(o, r[i].node, ";");
                if (which) {
                    csv_row(o, "peak_path", x->pid, -1, -1, ps, "bytes", r[i].v);
                } else {
                    csv_row(o, "leak_path", x->pid, -1, -1, ps, "bytes", r[i].v);
                    csv_row(o, "leak_path", x->pid, -1, -1, ps, "blocks", r[i].n);
                }
                free(ps);
            }
            free(r);
        }
    }
    for (size_t i = 0; i < h->nthreads; i++) {
        const struct sf_hthread *x = &h->threads[i];
        n = count_figs(&x->c, f);
        f[n++] = (struct fig){"live_bytes", x->live};
        f[n++] = (struct fig){"live_blocks", x->live_blocks};
        f[n++] = (struct fig){"anomalies", x->anomalies};
        csv_figs(o, "thread", x->pid, x->tid, -1, f, n);
    }
    for (size_t s = 0; s < h->nstages; s++) {
        const struct sf_hstage *x = &h->stages[s];
        n = count_figs(&x->c, f);
        uint64_t exit_left = 0;
        for (uint32_t i = x->first_ent; i < x->end_ent; i++)
            exit_left += h->left[i].live;
        f[n++] = (struct fig){"start_ns", relns(o, x->start_ns ? x->start_ns : o->origin)};
        f[n++] = (struct fig){"end_ns", relns(o, x->end_ns)};
        f[n++] = (struct fig){"live_start", x->live_start};
        f[n++] = (struct fig){"live_end", x->live_end};
        f[n++] = (struct fig){"peak_bytes", x->peak};
        f[n++] = (struct fig){"left_end_bytes", x->left_end};
        f[n++] = (struct fig){"left_exit_bytes", exit_left};
        csv_figs(o, "stage", -1, -1, (int64_t)s, f, n);
        for (uint32_t i = x->first_ent; i < x->end_ent; i++) {
            const struct sf_hleft *l = &h->left[i];
            if (!l->live_end && !l->live)
                continue;
            char *ps = path_str(o, l->path, ";");
            csv_row(o, "stage_left", -1, -1, (int64_t)s, ps, "bytes_end", l->live_end);
            csv_row(o, "stage_left", -1, -1, (int64_t)s, ps, "blocks_end", l->live_end_blocks);
            csv_row(o, "stage_left", -1, -1, (int64_t)s, ps, "bytes_exit", l->live);
            csv_row(o, "stage_left", -1, -1, (int64_t)s, ps, "blocks_exit", l->live_blocks);
            free(ps);
        }
    }
}

static void json_ranked(struct out *o, uint32_t hp, int which, const char *key)
{
    struct rank *r;
    size_t k = ranked(o, hp, which, &r);
    printf(", \"%s\": [", key);
    for (size_t i = 0; i < limit(o, k); i++) {
        printf("%s{\"path\": ", i ? ", " : "");
        json_path(o, stdout, r[i].node);
        printf(", \"bytes\": %" PRIu64, r[i].v);
        if (which != 1)
            printf(", \"%s\": %" PRIu64, which == 0 ? "blocks" : "allocs", r[i].n);
        printf("}");
    }
    printf("]");
    free(r);
}

static void report_json(struct out *o, const struct sf_calls_stats *st)
{
    struct sf_heap *h = &o->m->h;
    struct fig f[32];
    size_t n;
    printf("{\"log\": ");
    sf_json_str(stdout, o->path);
    printf(", \"function_events\": %" PRIu64 ", \"alloc_events\": %" PRIu64
           ", \"threads\": %" PRIu64 ", \"processes\": %" PRIu64 ",\n",
           st->events, h->events, st->threads, st->processes);
    printf(" \"order\": {\"exact\": %s, \"late_events\": %" PRIu64 ", \"forced\": %" PRIu64
           ", \"window\": %u},\n",
           h->late ? "false" : "true", h->late, h->forced, SF_HEAP_WINDOW);
    n = count_figs(&h->c, f);
    f[n++] = (struct fig){"peak_bytes", h->g.peak};
    f[n++] = (struct fig){"peak_ns", relns(o, h->g.peak_ns)};
    f[n++] = (struct fig){"live_bytes", h->g.cur};
    f[n++] = (struct fig){"live_blocks", h->live_blocks};
    n += anom_figs(&h->a, f + n);
    printf(" \"totals\": {");
    json_figs(stdout, f, n);
    json_ranked(o, UINT32_MAX, 0, "leaks");
    printf("},\n \"processes\": [");
    for (uint32_t hp = 0; hp < h->nheaps; hp++) {
        const struct sf_hheap *x = &h->heaps[hp];
        printf("%s\n  {\"pid\": %u, \"image\": %u, \"name\": ", hp ? "," : "", x->pid, x->image);
        sf_json_str(stdout, heap_name(o, hp));
        n = count_figs(&x->c, f);
        f[n++] = (struct fig){"peak_bytes", x->s.peak};
        f[n++] = (struct fig){"peak_ns", relns(o, x->s.peak_ns)};
        f[n++] = (struct fig){"live_bytes", x->s.cur};
        f[n++] = (struct fig){"live_blocks", x->live_blocks};
        n += anom_figs(&x->a, f + n);
        printf(", ");
        json_figs(stdout, f, n);
        json_ranked(o, hp, 1, "peak_paths");
        json_ranked(o, hp, 0, "leaks");
        json_ranked(o, hp, 2, "allocated_paths");
        printf("}");
    }
    printf("],\n \"threads\": [");
    for (size_t i = 0; i < h->nthreads; i++) {
        const struct sf_hthread *x = &h->threads[i];
        printf("%s\n  {\"pid\": %u, \"tid\": %u, \"name\": ", i ? "," : "", x->pid, x->tid);
        sf_json_str(stdout, thread_name(x));
        printf(", ");
        n = count_figs(&x->c, f);
        f[n++] = (struct fig){"live_bytes", x->live};
        f[n++] = (struct fig){"live_blocks", x->live_blocks};
        f[n++] = (struct fig){"anomalies", x->anomalies};
        json_figs(stdout, f, n);
        printf("}");
    }
    printf("],\n \"largest\": [");
    struct sf_hbig *bg = sf_xrealloc(NULL, (h->nbig ? h->nbig : 1) * sizeof *bg);
    memcpy(bg, h->big, h->nbig * sizeof *bg);
    for (size_t i = 1; i < h->nbig; i++)
        for (size_t j = i; j > 0 && bg[j].size > bg[j - 1].size; j--) {
            struct sf_hbig x = bg[j];
            bg[j] = bg[j - 1];
            bg[j - 1] = x;
        }
    for (size_t i = 0; i < h->nbig; i++) {
        const struct sf_hthread *x = &h->threads[bg[i].thread];
        printf("%s\n  {\"bytes\": %" PRIu64 ", \"ns\": %" PRIu64 ", \"pid\": %u, \"tid\": %u, "
               "\"stage\": %u, \"ptr\": \"0x%" PRIx64 "\", \"path\": ",
               i ? "," : "", bg[i].size, relns(o, bg[i].ns), x->pid, x->tid, bg[i].stage,
               bg[i].ptr);
        json_path(o, stdout, bg[i].path);
        printf("}");
    }
    free(bg);
    printf("],\n \"stages\": [");
    for (size_t s = 0; s < h->nstages; s++) {
        const struct sf_hstage *x = &h->stages[s];
        printf("%s\n  {\"index\": %zu, \"milestone\": ", s ? "," : "", s);
        if (x->milestone == UINT32_MAX)
            printf("null");
        else
            sf_json_str(stdout, fname(o->m, x->milestone));
        uint64_t exit_left = 0;
        for (uint32_t i = x->first_ent; i < x->end_ent; i++)
            exit_left += h->left[i].live;
        n = count_figs(&x->c, f);
        f[n++] = (struct fig){"start_ns", relns(o, x->start_ns ? x->start_ns : o->origin)};
        f[n++] = (struct fig){"end_ns", relns(o, x->end_ns)};
        f[n++] = (struct fig){"live_start", x->live_start};
        f[n++] = (struct fig){"live_end", x->live_end};
        f[n++] = (struct fig){"peak_bytes", x->peak};
        f[n++] = (struct fig){"left_end_bytes", x->left_end};
        f[n++] = (struct fig){"left_end_blocks", x->left_end_blocks};
        f[n++] = (struct fig){"left_exit_bytes", exit_left};
        printf(", ");
        json_figs(stdout, f, n);
        printf(", \"left\": [");
        size_t k = 0;
        struct rank *r = sf_xrealloc(NULL, (x->end_ent - x->first_ent + 1) * sizeof *r);
        for (uint32_t i = x->first_ent; i < x->end_ent; i++) {
            const struct sf_hleft *l = &h->left[i];
            if (l->live_end || l->live)
                r[k++] = (struct rank){l->path, l->live_end, l->live_end_blocks, l->live,
                                       l->live_blocks};
        }
        qsort(r, k, sizeof *r, by_v);
        for (size_t i = 0; i < limit(o, k); i++) {
            printf("%s{\"path\": ", i ? ", " : "");
            json_path(o, stdout, r[i].node);
            printf(", \"bytes_end\": %" PRIu64 ", \"blocks_end\": %" PRIu64
                   ", \"bytes_exit\": %" PRIu64 ", \"blocks_exit\": %" PRIu64 "}",
                   r[i].v, r[i].n, r[i].v2, r[i].n2);
        }
        free(r);
        printf("]}");
    }
    printf("]}\n");
}

/* ---- flame graphs ---------------------------------------------------------------- */

enum { FL_NONE = -1, FL_LEAK, FL_PEAK, FL_ALLOC };
static const char *const flame_choices[] = {"leak", "peak", "alloc", NULL};

/* The weight and count of path p for the graph (stage < 0: all stages). */
static void flame_weights(struct out *o, int kind, int32_t stage, uint64_t *w, uint64_t *cnt)
{
    struct sf_heap *h = &o->m->h;
    size_t nn = o->m->tree.nn;
    memset(w, 0, nn * sizeof *w);
    memset(cnt, 0, nn * sizeof *cnt);
    if (stage >= 0 && kind != FL_PEAK) {
        const struct sf_hstage *x = &h->stages[stage];
        for (uint32_t i = x->first_ent; i < x->end_ent; i++) {
            const struct sf_hleft *l = &h->left[i];
            if (l->path >= nn)
                continue;
            w[l->path] += kind == FL_LEAK ? l->live : l->allocated;
            cnt[l->path] += kind == FL_LEAK ? l->live_blocks : l->allocs;
        }
        return;
    }
    for (uint32_t p = 0; p < h->npaths && p < nn; p++) {
        const struct sf_hpath *P = &h->paths[p];
        if (kind == FL_LEAK) {
            w[p] = P->live;
            cnt[p] = P->live_blocks;
        } else if (kind == FL_ALLOC) {
            w[p] = P->allocated;
            cnt[p] = P->allocs;
        } else {
            w[p] = sf_heap_at_peak(h, p, stage >= 0 ? SF_SCOPE_STAGE : SF_SCOPE_ALL, 0);
        }
    }
}

static int write_flame(struct out *o, int kind, int32_t stage, int folded, const char *outpath,
                       const char *title, int width)
{
    struct mctx *m = o->m;
    size_t nn = m->tree.nn;
    uint64_t *w = sf_xrealloc(NULL, nn * sizeof *w), *cnt = sf_xrealloc(NULL, nn * sizeof *cnt);
    flame_weights(o, kind, stage, w, cnt);
    /* inclusive weights (children come after their parents): frames of
     * paths that hold nothing are left out */
    uint64_t *inc = sf_xrealloc(NULL, nn * sizeof *inc);
    memcpy(inc, w, nn * sizeof *inc);
    for (size_t i = nn; i-- > 1;)
        inc[m->tree.n[i].parent] += inc[i];
    struct sf_ftree *ft = sf_ftree_new();
    uint32_t *to = sf_xrealloc(NULL, nn * sizeof *to);
    uint32_t nocall = UINT32_MAX;
    to[0] = SF_FTREE_ROOT;
    for (size_t i = 1; i < nn; i++) { /* parents come before their children */
        const struct sf_ccnode *x = &m->tree.n[i];
        if (!inc[i])
            continue;
        if (x->label) { /* processes merge by name: their allocations outside calls apart */
            to[i] = SF_FTREE_ROOT;
            if (w[i]) {
                if (nocall == UINT32_MAX)
                    nocall = sf_ftree_child(ft, SF_FTREE_ROOT, "[no call]");
                sf_ftree_add(ft, nocall, w[i], cnt[i]);
            }
            continue;
        }
        to[i] = sf_ftree_child(ft, to[x->parent], fname(m, x->func));
        if (w[i])
            sf_ftree_add(ft, to[i], w[i], cnt[i]);
    }
    free(to);
    free(inc);
    free(w);
    free(cnt);

    static const char *const what[] = {"bytes live at exit (leaked)", "bytes live at the peak",
                                       "bytes allocated"};
    char sub[256], a[SF_FMT_LEN], b[SF_FMT_LEN];
    struct sf_heap *h = &m->h;
    if (stage >= 0)
        snprintf(sub, sizeof sub, "stage %d: %s, by allocating call path", stage, what[kind]);
    else if (kind == FL_PEAK)
        snprintf(sub, sizeof sub, "%s (%s at %s), by allocating call path", what[kind],
                 hb(a, sizeof a, h->g.peak), rel(o, b, sizeof b, h->g.peak_ns));
    else
        snprintf(sub, sizeof sub, "%s, by allocating call path", what[kind]);
    struct sf_flame_opts fo = {
        .title = title ? title : o->path,
        .subtitle = sub,
        .unit = SF_FUNIT_BYTES,
        .count_name = kind == FL_ALLOC  ? "allocations"
                      : kind == FL_LEAK ? "blocks"
                                        : NULL,
        .width = width,
        .min_px = 1.0,
    };
    int wr = sf_flame_write(CMD, outpath, ft, folded, &fo, o->run->quiet);
    sf_ftree_free(ft);
    return wr;
}

/* ---- command ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sftrace memory [options] LOG\n"
            "\n"
            "Where the heap went: allocations, frees, reallocs, bytes allocated, the peak of\n"
            "live bytes (when, and by which call paths), what was still live at exit\n"
            "(leaked), per process and thread, the largest allocations; with --milestone,\n"
            "the same stage by stage. From the ALLOC records of the log\n"
            "(sftrace_alloc_event, the sftrace-setup crate's SftraceAllocator), each\n"
            "counted at the call path of the call that made it.\n"
            "\n"
            "      --milestone RE     a new stage at every entry of a function matching RE\n"
            "                         (PCRE2, searched in demangled names)\n"
            "      --format FMT       table (default), csv (section,pid,tid,stage,path,\n"
            "                         metric,value) or json; with --flame: svg (default)\n"
            "                         or folded\n"
            "      --top N            rows per list (default 10; 0: all)\n"
            "      --flame WHAT       write a flame graph instead: leak (bytes live at\n"
            "                         exit), peak (bytes live at the peak) or alloc (bytes\n"
            "                         allocated), by the allocating call path\n"
            "      --stage N          with --flame: only stage N (leak: its blocks live at\n"
            "                         exit; alloc: its allocations; peak: at its own peak)\n"
            "  -o, --output FILE      the flame graph (default mem.svg, or mem.folded with\n"
            "                         --format folded; '-' = stdout)\n"
            "      --title TEXT       the SVG's title\n"
            "      --width PX         the SVG's width (default 1200)\n"
            "      --symbols FILE     a file with the symbols of an object (repeatable)\n"
            "  -j, --jobs N           1: everything in one thread; 2 (the default with 2 or\n"
            "                         more CPUs; more is the same): the heap model in a\n"
            "                         thread of its own, beside the log's reader\n"
            "  -q, --quiet            no progress line\n"
            "%s"
            "  -h, --help             this help\n"
            "\n"
            "Events of all threads are put in one time order through a reorder window of\n"
            "%u events; a count of events that came too late for it is shown when\n"
            "nonzero (figures are exact otherwise). --min-duration is not supported.\n",
            SF_SELECT_HELP, SF_HEAP_WINDOW);
}

enum {
    OPT_MILESTONE = 0x5700,
    OPT_FORMAT,
    OPT_TOP,
    OPT_FLAME,
    OPT_STAGE,
    OPT_TITLE,
    OPT_WIDTH,
};

int cmd_memory(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"output", required_argument, NULL, 'o'},
        {"milestone", required_argument, NULL, OPT_MILESTONE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"top", required_argument, NULL, OPT_TOP},
        {"flame", required_argument, NULL, OPT_FLAME},
        {"stage", required_argument, NULL, OPT_STAGE},
        {"title", required_argument, NULL, OPT_TITLE},
        {"width", required_argument, NULL, OPT_WIDTH},
        {"quiet", no_argument, NULL, 'q'},
        {"jobs", required_argument, NULL, 'j'},
        {"symbols", required_argument, NULL, SF_OPT_SYMBOLS},
        SF_SELECT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct sf_run run;
    sf_run_init(&run, "memory");
    const char *outpath = NULL, *title = NULL, *milestone = NULL, *format = NULL;
    long top = 10, stage = -1, width = 1200, jobs = -1;
    int flame = FL_NONE, rc = 2, c;
    struct sf_select msel;
    sf_select_init(&msel);
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:qj:" SF_SELECT_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'o':
            outpath = optarg;
            break;
        case OPT_MILESTONE: {
            char err[SF_ERRLEN];
            if (sf_select_option(&msel, 'F', optarg, err, sizeof err) < 0) {
                /* the message names -F: say it of --milestone */
                const char *p = strstr(err, ": ");
                fprintf(stderr, CMD ": --milestone '%s'%s\n", optarg, p ? p : "");
                goto out;
            }
            milestone = optarg;
            break;
        }
        case OPT_FORMAT:
            format = optarg;
            break;
        case OPT_TOP:
            if (sf_opt_long("memory", "--top", optarg, 0, 1000000000, &top) < 0)
                goto out;
            break;
        case OPT_FLAME:
            if ((flame = sf_opt_choice("memory", "--flame", optarg, flame_choices)) < 0)
                goto out;
            break;
        case OPT_STAGE:
            if (sf_opt_long("memory", "--stage", optarg, 0, INT32_MAX, &stage) < 0)
                goto out;
            break;
        case OPT_TITLE:
            title = optarg;
            break;
        case OPT_WIDTH:
            if (sf_opt_long("memory", "--width", optarg, 200, 100000, &width) < 0)
                goto out;
            break;
        case 'j':
            if (sf_opt_long("memory", "--jobs", optarg, 1, 1024, &jobs) < 0)
                goto out;
            break;
        case SF_OPT_MIN_DURATION:
            fprintf(stderr, CMD ": --min-duration is not supported (allocations are counted at "
                                "the call that is open when they happen)\n");
            goto out;
        default:
            if (sf_run_getopt(&run, c, optarg, usage) < 0)
                goto out;
        }
    }
    if (sf_operands("memory", argc, argv, optind, 1, 1, "LOG") < 0) {
        usage(stderr);
        goto out;
    }
    enum sf_outfmt fmt = SF_OUT_TABLE;
    int folded = 0;
    if (flame != FL_NONE) {
        if (format && strcmp(format, "svg") && strcmp(format, "folded")) {
            fprintf(stderr, CMD ": --format with --flame wants svg or folded, not '%s'\n", format);
            goto out;
        }
        folded = format && !strcmp(format, "folded");
        if (!outpath)
            outpath = folded ? "mem.folded" : "mem.svg";
    } else {
        if (format && sf_outfmt_parse(format, &fmt) < 0) {
            fprintf(stderr, CMD ": --format wants table, csv or json, not '%s'\n", format);
            goto out;
        }
        if (stage >= 0) {
            fprintf(stderr, CMD ": --stage goes with --flame\n");
            goto out;
        }
        if (outpath) {
            fprintf(stderr, CMD ": -o goes with --flame (the report is written to stdout)\n");
            goto out;
        }
    }
    if (stage > 0 && !milestone) {
        fprintf(stderr, CMD ": --stage %ld needs --milestone (without it the run is stage 0)\n",
                stage);
        goto out;
    }
    const char *logpath = argv[optind];
    run.jobs = 1; /* frees cross threads: one reader sees them all */
    rc = 1;

    struct mctx m;
    memset(&m, 0, sizeof m);
    sf_heap_init(&m.h, fmt == SF_OUT_TABLE ? (top ? (size_t)top : 10) : (top ? (size_t)top : 100),
                 flame == FL_PEAK ? (int32_t)stage : -1);
    sf_cctree_init(&m.tree);
    m.last_ht = UINT32_MAX;
    m.ms.re = milestone ? msel.funcs : NULL;
    struct margs ma = {&m};
    int nw = 0;
    if (jobs < 0) /* default: a thread for the heap model when there is a core for it */
        jobs = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1;
    sf_heapq_open(&m.q, &m.h, jobs > 1);
    struct sf_runw *w = sf_run_go(&run, logpath, &ops, mkctx, freectx, &ma, &nw);
    sf_heapq_close(&m.q); /* everything applied: m.h is this thread's again */
    if (!w) {
        mctx_free(&m);
        goto out;
    }
    struct sf_calls_stats st;
    sf_run_stats(w, nw, &st);
    sf_heap_finish(&m.h, st.last_ns);

    struct out o = {&m, &run, logpath, st.first_ns, NULL, (size_t)top, fmt, 1};
    o.node_heap = sf_xrealloc(NULL, (m.tree.nn ? m.tree.nn : 1) * sizeof *o.node_heap);
    o.node_heap[0] = UINT32_MAX;
    for (size_t i = 1; i < m.tree.nn; i++)
        o.node_heap[i] =
            m.tree.n[i].label ? (uint32_t)m.tree.n[i].label_key : o.node_heap[m.tree.n[i].parent];

    if (stage >= 0 && (size_t)stage >= m.h.nstages) {
        fprintf(stderr, CMD ": --stage %ld: the run has %zu stage%s (0..%zu)\n", stage, m.h.nstages,
                m.h.nstages == 1 ? "" : "s", m.h.nstages - 1);
    } else if (flame != FL_NONE) {
        if (write_flame(&o, flame, (int32_t)stage, folded, outpath, title, (int)width) == 0)
            rc = 0;
    } else {
        if (fmt == SF_OUT_TABLE)
            report_table(&o, &st);
        else if (fmt == SF_OUT_CSV)
            report_csv(&o);
        else
            report_json(&o, &st);
        if (sf_stdout_flush(CMD) == 0)
            rc = 0;
    }
    if (rc == 0 && run.damaged)
        rc = SF_EXIT_DAMAGED; /* the report has everything readable, as the other readers say */
    free(o.node_heap);
    sf_run_done(w, nw);
    mctx_free(&m);
out:
    sf_select_free(&msel);
    sf_run_free(&run);
    return rc;
}
