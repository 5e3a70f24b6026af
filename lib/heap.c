/*
 * heap.c - the heap model of `sftrace memory` (see heap.h): the reorder
 * window that puts every thread's allocation events in one time order, the
 * table of live blocks they are replayed against, and the figures by heap,
 * thread, call path and stage.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "calls.h"
#include "fmt.h"
#include "heap.h"
#include "perfetto.h"
#include "select.h"

/* A block of the table: state EMPTY, LIVE or FREED (a tombstone that keeps
 * the address for double-free detection). */
enum { B_EMPTY, B_LIVE, B_FREED };
struct sf_hblock {
    uint64_t ptr, size;
    uint32_t path, ent; /* allocating call path, its entry in h->left */
    uint32_t owner;     /* the thread that allocated it */
    uint32_t hs;        /* heap << 2 | state */
};

#define GROW(arr, n, cap) SF_GROW_FROM(arr, n, cap, 64)

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline uint64_t sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void sf_heap_init(struct sf_heap *h, size_t top_k, int32_t stage_peak)
{
    memset(h, 0, sizeof *h);
    h->top_k = top_k;
    h->stage_peak = stage_peak;
    h->batch_thread = UINT32_MAX;
    GROW(h->stages, h->nstages, h->capstages);
    memset(&h->stages[0], 0, sizeof h->stages[0]);
    h->stages[0].milestone = UINT32_MAX;
    h->nstages = 1;
    if (stage_peak == 0)
        h->stage.epoch = ++h->epochs;
    h->big = sf_xrealloc(NULL, (top_k ? top_k : 1) * sizeof *h->big);
}

void sf_heap_free(struct sf_heap *h)
{
    free(h->heaps);
    free(h->threads);
    free(h->paths);
    free(h->stages);
    free(h->left);
    free(h->big);
    free(h->tab);
    free(h->pend);
    free(h->batch);
    memset(h, 0, sizeof *h);
}

uint32_t sf_heap_add_heap(struct sf_heap *h, uint32_t pid, uint32_t image, uint32_t label)
{
    GROW(h->heaps, h->nheaps, h->capheaps);
    struct sf_hheap *x = &h->heaps[h->nheaps];
    memset(x, 0, sizeof *x);
    x->pid = pid;
    x->image = image;
    x->label = label;
    return (uint32_t)h->nheaps++;
}

uint32_t sf_heap_add_thread(struct sf_heap *h, uint32_t heap, uint32_t pid, uint32_t tid)
{
    GROW(h->threads, h->nthreads, h->capthreads);
    struct sf_hthread *t = &h->threads[h->nthreads];
    memset(t, 0, sizeof *t);
    t->heap = heap;
    t->pid = pid;
    t->tid = tid;
    t->running = 1;
    return (uint32_t)h->nthreads++;
}

/* ---- the reorder window -------------------------------------------------------- */

/* Room for n more pending events. */
static void pend_room(struct sf_heap *h, size_t n)
{
    if (h->npend + n <= h->cappend)
        return;
    /* compact when at least a third of the array is replayed (at most two
     * moves per replayed event, amortized), grow otherwise: the array stays
     * within 1.5 times the pending events (rounded up to a power of two) */
    if (h->phead && 2 * h->phead >= (h->npend - h->phead)) {
        memmove(h->pend, h->pend + h->phead, (h->npend - h->phead) * sizeof *h->pend);
        h->npend -= h->phead;
        h->phead = 0;
    }
    while (h->npend + n > h->cappend) {
        h->cappend = h->cappend ? 2 * h->cappend : 4096;
        h->pend = sf_xrealloc(h->pend, h->cappend * sizeof *h->pend);
    }
}

static void merge_batch(struct sf_heap *h)
{
    size_t n = h->nbatch;
    h->nbatch = 0;
    h->batch_thread = UINT32_MAX;
    if (!n)
        return;
    pend_room(h, n);
    size_t lo = h->phead, m = h->npend;
    if (m == lo || h->pend[m - 1].ns <= h->batch[0].ns) {
        memcpy(h->pend + m, h->batch, n * sizeof *h->batch);
    } else { /* merge from the back, in place; equal times: the batch after */
        size_t i = m, j = n, k = m + n;
        while (j > 0) {
            if (i > lo && h->pend[i - 1].ns > h->batch[j - 1].ns)
                h->pend[--k] = h->pend[--i];
            else
                h->pend[--k] = h->batch[--j];
        }
    }
    h->npend = m + n;
}

static void bound(struct sf_heap *h);

/* An event x of thread x->tk >> 3 (sf_heap_record; the queue's consumer
 * calls it with the queued event itself). */
static inline void record(struct sf_heap *h, const struct sf_hev *x)
{
    uint32_t thread = x->tk >> 3;
    if (h->batch_thread != thread && h->nbatch)
        merge_batch(h);
    h->batch_thread = thread;
    if (!h->nbatch && (h->npend == h->phead || h->pend[h->npend - 1].ns <= x->ns)) {
        pend_room(h, 1); /* in order already: straight into the pending list */
        h->pend[h->npend++] = *x;
    } else {
        GROW(h->batch, h->nbatch, h->capbatch);
        h->batch[h->nbatch++] = *x;
    }
    if (__builtin_expect(h->npend - h->phead + h->nbatch > SF_HEAP_BOUND, 0))
        bound(h);
}

void sf_heap_record(struct sf_heap *h, uint32_t thread, enum sf_heap_kind kind, uint64_t ns,
                    uint64_t ptr, uint64_t size, uint32_t path)
{
    struct sf_hev x = {ns, ptr, size, path, thread << 3 | (uint32_t)kind};
    record(h, &x);
}

/* ---- call paths and stages ------------------------------------------------------ */

static void paths_grow(struct sf_heap *h, uint32_t p)
{
    {
        if (p >= h->cappaths) {
            size_t n = h->cappaths ? h->cappaths : 1024;
            while (n <= p)
                n *= 2;
            h->paths = sf_xrealloc(h->paths, n * sizeof *h->paths);
            h->cappaths = n;
        }
        memset(h->paths + h->npaths, 0, (p + 1 - h->npaths) * sizeof *h->paths);
        h->npaths = p + 1;
    }
}

static inline struct sf_hpath *path_of(struct sf_heap *h, uint32_t p)
{
    if (__builtin_expect(p >= h->npaths, 0))
        paths_grow(h, p);
    return &h->paths[p];
}

/* The current stage's entry for path p. */
static uint32_t entry_of(struct sf_heap *h, uint32_t p, struct sf_hpath *P)
{
    uint32_t s = (uint32_t)h->nstages - 1;
    if (P->ent_stage == s + 1)
        return P->ent;
    GROW(h->left, h->nleft, h->capleft);
    struct sf_hleft *l = &h->left[h->nleft];
    memset(l, 0, sizeof *l);
    l->stage = s;
    l->path = p;
    P->ent = (uint32_t)h->nleft++;
    P->ent_stage = s + 1;
    h->stages[s].end_ent = (uint32_t)h->nleft;
    return P->ent;
}

uint64_t sf_heap_at_peak(const struct sf_heap *h, uint32_t path, int scope, uint32_t heap)
{
    if (path >= h->npaths)
        return 0;
    const struct sf_hpath *P = &h->paths[path];
    uint64_t ep = scope == SF_SCOPE_ALL    ? h->g.epoch
                  : scope == SF_SCOPE_HEAP ? h->heaps[heap].s.epoch
                                           : h->stage.epoch;
    return ep && P->ep[scope] == ep ? P->snap[scope] : P->live;
}

/* Before path P (of heap hp) changes: keep its value for every snapshot
 * taken since it last changed. */
static inline void touch(struct sf_heap *h, struct sf_hpath *P, struct sf_hheap *hp)
{
    if (P->ep[SF_SCOPE_ALL] != h->g.epoch) {
        P->snap[SF_SCOPE_ALL] = P->live;
        P->ep[SF_SCOPE_ALL] = h->g.epoch;
    }
    if (P->ep[SF_SCOPE_HEAP] != hp->s.epoch) {
        P->snap[SF_SCOPE_HEAP] = P->live;
        P->ep[SF_SCOPE_HEAP] = hp->s.epoch;
    }
    if (h->stage.epoch && P->ep[SF_SCOPE_STAGE] != h->stage.epoch) {
        P->snap[SF_SCOPE_STAGE] = P->live;
        P->ep[SF_SCOPE_STAGE] = h->stage.epoch;
    }
}

static inline void peak_check(struct sf_heap *h, struct sf_hscope *s, uint64_t ns)
{
    if (s->cur > s->peak) {
        s->peak = s->cur;
        s->peak_ns = ns;
        s->epoch = ++h->epochs;
    }
}

/* Live bytes of a block (path, its stage entry, owner thread, heap) grow by
 * up (or shrink by down) at ns; blocks +1, -1 or 0. */
static void live_add(struct sf_heap *h, uint32_t path, uint32_t ent, uint32_t owner,
                     struct sf_hheap *hp, uint64_t up, uint64_t down, int blocks, uint64_t ns)
{
    struct sf_hpath *P = path_of(h, path);
    touch(h, P, hp);
    struct sf_hleft *l = &h->left[ent];
    struct sf_hthread *o = &h->threads[owner];
    struct sf_hstage *st = &h->stages[h->nstages - 1];
    if (up) {
        P->live = sat_add(P->live, up);
        l->live = sat_add(l->live, up);
        o->live = sat_add(o->live, up);
        hp->s.cur = sat_add(hp->s.cur, up);
        h->g.cur = sat_add(h->g.cur, up);
        peak_check(h, &hp->s, ns);
        peak_check(h, &h->g, ns);
        if (h->g.cur > st->peak) {
            st->peak = h->g.cur;
            st->peak_ns = ns;
        }
        if (h->stage_peak == (int32_t)h->nstages - 1) {
            h->stage.cur = h->g.cur;
            peak_check(h, &h->stage, ns);
        }
    } else {
        P->live = sat_sub(P->live, down);
        l->live = sat_sub(l->live, down);
        o->live = sat_sub(o->live, down);
        hp->s.cur = sat_sub(hp->s.cur, down);
        h->g.cur = sat_sub(h->g.cur, down);
        h->stage.cur = h->g.cur;
    }
    if (blocks > 0) {
        P->live_blocks++;
        l->live_blocks++;
        o->live_blocks++;
        hp->live_blocks++;
        h->live_blocks++;
    } else if (blocks < 0) {
        P->live_blocks -= P->live_blocks > 0;
        l->live_blocks -= l->live_blocks > 0;
        o->live_blocks -= o->live_blocks > 0;
        hp->live_blocks -= hp->live_blocks > 0;
        h->live_blocks -= h->live_blocks > 0;
    }
}

static void close_stage(struct sf_heap *h, uint64_t ns)
{
    struct sf_hstage *st = &h->stages[h->nstages - 1];
    st->end_ns = ns;
    st->live_end = h->g.cur;
    st->left_end = st->left_end_blocks = 0;
    for (uint32_t i = st->first_ent; i < st->end_ent; i++) {
        struct sf_hleft *l = &h->left[i];
        l->live_end = l->live;
        l->live_end_blocks = l->live_blocks;
        st->left_end = sat_add(st->left_end, l->live);
        st->left_end_blocks += l->live_blocks;
    }
}

static void open_stage(struct sf_heap *h, uint64_t ns, uint32_t func, const struct sf_hthread *t)
{
    close_stage(h, ns);
    GROW(h->stages, h->nstages, h->capstages);
    struct sf_hstage *st = &h->stages[h->nstages++];
    memset(st, 0, sizeof *st);
    st->milestone = func;
    st->pid = t->pid;
    st->tid = t->tid;
    st->start_ns = ns;
    st->live_start = st->peak = h->g.cur;
    st->peak_ns = ns;
    st->first_ent = st->end_ent = (uint32_t)h->nleft;
    if (h->stage_peak == (int32_t)h->nstages - 1) { /* its snapshot starts as the state now */
        h->stage.cur = h->stage.peak = h->g.cur;
        h->stage.peak_ns = ns;
        h->stage.epoch = ++h->epochs;
    }
}

/* ---- the table of blocks --------------------------------------------------------- */

static inline size_t slot0(const struct sf_heap *h, uint32_t heap, uint64_t ptr)
{
    /* Fibonacci hashing: the product's top bits (ptr's low bits are mostly
     * zero: alignment) */
    uint64_t x = (ptr ^ (uint64_t)heap << 47) * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> h->tabshift);
}

/* A zeroed table of cap blocks. A large one in huge pages when the kernel
 * allows (madvise mode): lookups are spread over the whole table, and with
 * 4 KB pages nearly each one would also miss the TLB. */
static struct sf_hblock *tab_alloc(size_t cap)
{
    size_t n = cap * sizeof(struct sf_hblock);
    void *p = NULL;
    if (n >= (2u << 20) && posix_memalign(&p, 2u << 20, n) == 0) {
        madvise(p, n, MADV_HUGEPAGE);
    } else {
        p = sf_xrealloc(NULL, n);
    }
    if (!p)
        p = sf_xrealloc(NULL, n);
    memset(p, 0, n);
    return p;
}

static void rehash(struct sf_heap *h)
{
    size_t cap = 1024;
    while (cap < 4 * h->tablive)
        cap *= 2;
    struct sf_hblock *old = h->tab;
    size_t oldcap = h->tabcap;
    h->tab = tab_alloc(cap);
    h->tabcap = cap;
    h->tabshift = 64 - (unsigned)__builtin_ctzll(cap);
    h->tabused = 0;
    /* live blocks first, then as many tombstones as leave the table half empty */
    for (int pass = B_LIVE; pass <= B_FREED; pass++)
        for (size_t i = 0; i < oldcap; i++) {
            if ((old[i].hs & 3) != (uint32_t)pass)
                continue;
            if (pass == B_FREED && h->tabused >= cap / 8 * 3)
                break;
            size_t j = slot0(h, old[i].hs >> 2, old[i].ptr);
            while (h->tab[j].hs & 3)
                j = (j + 1) & (cap - 1);
            h->tab[j] = old[i];
            h->tabused++;
        }
    free(old);
}

/* The block of (heap, ptr), live or freed, or NULL; *ins: where to insert it
 * when absent (the first tombstone on the way, or the empty slot). */
static struct sf_hblock *find(struct sf_heap *h, uint32_t heap, uint64_t ptr,
                              struct sf_hblock **ins)
{
    if (!h->tabcap || (ins && h->tabused + 1 > h->tabcap / 2))
        rehash(h);
    size_t i = slot0(h, heap, ptr);
    struct sf_hblock *tomb = NULL;
    for (;;) {
        struct sf_hblock *b = &h->tab[i];
        uint32_t s = b->hs & 3;
        if (s == B_EMPTY)
            break;
        if (b->ptr == ptr && b->hs >> 2 == heap)
            return b;
        if (s == B_FREED && !tomb)
            tomb = b;
        i = (i + 1) & (h->tabcap - 1);
    }
    if (ins)
        *ins = tomb ? tomb : &h->tab[i];
    return NULL;
}

static void add_big(struct sf_heap *h, uint64_t size, uint64_t ns, uint64_t ptr, uint32_t thread,
                    uint32_t path)
{
    if (!h->top_k)
        return;
    struct sf_hbig x = {size, ns, ptr, thread, path, (uint32_t)h->nstages - 1};
    size_t i;
    if (h->nbig < h->top_k) { /* sift up */
        i = h->nbig++;
        while (i > 0 && h->big[(i - 1) / 2].size > size) {
            h->big[i] = h->big[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h->big[i] = x;
        return;
    }
    if (size <= h->big[0].size)
        return;
    i = 0; /* replace the smallest, sift down */
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->nbig)
            break;
        if (c + 1 < h->nbig && h->big[c + 1].size < h->big[c].size)
            c++;
        if (h->big[c].size >= size)
            break;
        h->big[i] = h->big[c];
        i = c;
    }
    h->big[i] = x;
}

static inline void count_add(struct sf_hcount *c, int alloc, int fre, int re, uint64_t up,
                             uint64_t down)
{
    c->allocs += (uint64_t)alloc;
    c->frees += (uint64_t)fre;
    c->reallocs += (uint64_t)re;
    c->allocated = sat_add(c->allocated, up);
    c->freed = sat_add(c->freed, down);
}

/* Counts of an operation in the totals, its heap, its thread and the
 * current stage. */
static void count(struct sf_heap *h, struct sf_hthread *t, int alloc, int fre, int re, uint64_t up,
                  uint64_t down)
{
    count_add(&h->c, alloc, fre, re, up, down);
    count_add(&h->heaps[t->heap].c, alloc, fre, re, up, down);
    count_add(&t->c, alloc, fre, re, up, down);
    count_add(&h->stages[h->nstages - 1].c, alloc, fre, re, up, down);
}

#define ANOM(h, t, field, n)                                                                       \
    do {                                                                                           \
        (h)->a.field = sat_add((h)->a.field, (n));                                                 \
        (h)->heaps[(t)->heap].a.field = sat_add((h)->heaps[(t)->heap].a.field, (n));               \
    } while (0)

/* A new live block at (heap of t, ptr). */
static void insert(struct sf_heap *h, struct sf_hthread *t, uint32_t ti, uint64_t ptr,
                   uint64_t size, uint32_t path, uint32_t ent, uint32_t owner, uint64_t ns)
{
    struct sf_hheap *hp = &h->heaps[t->heap];
    struct sf_hblock *ins = NULL;
    struct sf_hblock *b = find(h, t->heap, ptr, &ins);
    (void)ti;
    if (b && (b->hs & 3) == B_LIVE) { /* a free we did not see: the old block goes */
        ANOM(h, t, live_address_allocs, 1);
        ANOM(h, t, live_address_bytes, b->size);
        t->anomalies++;
        live_add(h, b->path, b->ent, b->owner, hp, 0, b->size, -1, ns);
    } else if (!b) {
        b = ins;
        if ((b->hs & 3) == B_EMPTY)
            h->tabused++;
    }
    if ((b->hs & 3) != B_LIVE)
        h->tablive++;
    b->ptr = ptr;
    b->size = size;
    b->path = path;
    b->ent = ent;
    b->owner = owner;
    b->hs = t->heap << 2 | B_LIVE;
    live_add(h, path, ent, owner, hp, size, 0, 1, ns);
}

/* The detached old block of a realloc whose new block never came: freed. */
static void settle(struct sf_heap *h, struct sf_hthread *t, uint64_t ns)
{
    if (t->det == 1) {
        live_add(h, t->det_path, t->det_ent, t->det_owner, &h->heaps[t->heap], 0, t->det_size, -1,
                 ns);
        count(h, t, 0, 1, 0, 0, t->det_size);
    }
    t->det = 0;
}

/* A new block of e's call path in the current stage: an allocation, or
 * (realloc) a realloc's new block whose old block was not known. */
static void new_block(struct sf_heap *h, struct sf_hthread *t, uint32_t ti, const struct sf_hev *e,
                      uint64_t ns, int realloc)
{
    struct sf_hpath *P = path_of(h, e->path);
    uint32_t ent = entry_of(h, e->path, P);
    P->allocated = sat_add(P->allocated, e->size);
    P->allocs++;
    h->left[ent].allocated = sat_add(h->left[ent].allocated, e->size);
    h->left[ent].allocs++;
    count(h, t, !realloc, 0, realloc, e->size, 0);
    insert(h, t, ti, e->ptr, e->size, e->path, ent, ti, ns);
    add_big(h, e->size, ns, e->ptr, ti, e->path);
}

static void replay(struct sf_heap *h, const struct sf_hev *e)
{
    uint32_t ti = e->tk >> 3, kind = e->tk & 7;
    struct sf_hthread *t = &h->threads[ti];
    struct sf_hheap *hp = &h->heaps[t->heap];
    uint64_t ns = e->ns;
    if (ns < h->frontier) {
        h->late++;
        ns = h->frontier;
    } else {
        h->frontier = ns;
    }
    h->events++;
    if (kind != SF_HEAP_REALLOC_NEW && t->det)
        settle(h, t, ns);
    switch (kind) {
    case SF_HEAP_ALLOC: {
        if (!e->ptr) {
            ANOM(h, t, null_allocs, 1);
            t->anomalies++;
            break;
        }
        new_block(h, t, ti, e, ns, 0);
        break;
    }
    case SF_HEAP_FREE: {
        if (!e->ptr)
            break;
        struct sf_hblock *b = find(h, t->heap, e->ptr, NULL);
        if (b && (b->hs & 3) == B_LIVE) {
            b->hs = t->heap << 2 | B_FREED;
            h->tablive--;
            count(h, t, 0, 1, 0, 0, b->size);
            live_add(h, b->path, b->ent, b->owner, hp, 0, b->size, -1, ns);
        } else if (b) {
            ANOM(h, t, double_frees, 1);
            t->anomalies++;
        } else {
            ANOM(h, t, unknown_frees, 1);
            ANOM(h, t, unknown_free_bytes, e->size);
            t->anomalies++;
        }
        break;
    }
    case SF_HEAP_REALLOC_OLD: {
        struct sf_hblock *b = e->ptr ? find(h, t->heap, e->ptr, NULL) : NULL;
        if (b && (b->hs & 3) == B_LIVE) { /* detached: its bytes stay live */
            b->hs = t->heap << 2 | B_FREED;
            h->tablive--;
            t->det = 1;
            t->det_path = b->path;
            t->det_ent = b->ent;
            t->det_owner = b->owner;
            t->det_size = b->size;
        } else {
            if (b)
                ANOM(h, t, double_frees, 1);
            ANOM(h, t, unknown_reallocs, 1);
            ANOM(h, t, unknown_realloc_bytes, e->size);
            t->anomalies++;
            t->det = 2;
        }
        break;
    }
    case SF_HEAP_REALLOC_NEW: {
        int det = t->det;
        t->det = 0;
        if (det == 1 && e->ptr) { /* the block moves, with its ownership */
            uint64_t old = t->det_size, sz = e->size;
            uint64_t up = sz > old ? sz - old : 0, down = old > sz ? old - sz : 0;
            struct sf_hpath *P = path_of(h, t->det_path);
            P->allocated = sat_add(P->allocated, up);
            uint32_t cur = entry_of(h, t->det_path, P); /* growth: in this stage */
            h->left[cur].allocated = sat_add(h->left[cur].allocated, up);
            count(h, t, 0, 0, 1, up, down);
            /* give back the old size, then hold the new one */
            live_add(h, t->det_path, t->det_ent, t->det_owner, hp, 0, old, -1, ns);
            insert(h, t, ti, e->ptr, sz, t->det_path, t->det_ent, t->det_owner, ns);
            add_big(h, sz, ns, e->ptr, t->det_owner, t->det_path);
            break;
        }
        if (det == 1) { /* realloc to address 0: the old block is freed */
            t->det = 1;
            settle(h, t, ns);
            break;
        }
        if (det == 0) {
            ANOM(h, t, unpaired_reallocs, 1);
            t->anomalies++;
        }
        if (!e->ptr)
            break;
        /* a new block of the realloc's path */
        new_block(h, t, ti, e, ns, 1);
        break;
    }
    case SF_HEAP_MILESTONE:
        open_stage(h, ns, e->path, t);
        break;
    }
}

/* ---- replay policy ------------------------------------------------------------- */

static uint64_t watermark(const struct sf_heap *h)
{
    uint64_t w = UINT64_MAX;
    for (size_t i = 0; i < h->nthreads; i++)
        if (h->threads[i].running && h->threads[i].last_ns < w)
            w = h->threads[i].last_ns;
    return w;
}

/* The table slot of a pending event, fetched into the cache ahead of its
 * replay: blocks are spread over the table by the hash, so nearly every
 * lookup of a large heap would otherwise wait for memory. */
#define AHEAD 16
static inline void prefetch(const struct sf_heap *h, size_t i)
{
    if (i < h->npend && h->tabcap) {
        const struct sf_hev *e = &h->pend[i];
        const struct sf_hblock *b = &h->tab[slot0(h, h->threads[e->tk >> 3].heap, e->ptr)];
#if defined(__x86_64__)
        /* (gcc 12 drops __builtin_prefetch here) */
        __asm__ volatile("prefetcht0 %0" ::"m"(*(const char *)b));
#else
        __builtin_prefetch(b);
#endif
    }
}

void sf_heap_sync(struct sf_heap *h)
{
    merge_batch(h);
    if (h->npend - h->phead <= SF_HEAP_WINDOW)
        return;
    uint64_t wm = watermark(h);
    while (h->npend - h->phead > SF_HEAP_WINDOW) {
        const struct sf_hev *e = &h->pend[h->phead];
        if (e->ns > wm) {
            if (h->npend - h->phead <= 4 * (size_t)SF_HEAP_WINDOW)
                break;
            h->forced++;
        }
        prefetch(h, h->phead + AHEAD);
        replay(h, e);
        h->phead++;
    }
}

/* The memory bound, between syncs: one thread's long run of events (the
 * others idle: the watermark does not move, and nothing syncs until another
 * thread's event comes) is replayed, oldest first, down to 4 * SF_HEAP_WINDOW
 * pending, like sf_heap_sync's forced replays (the watermark as last
 * synced: what is newer counts as forced). */
static void bound(struct sf_heap *h)
{
    merge_batch(h);
    uint64_t wm = watermark(h);
    while (h->npend - h->phead > 4 * (size_t)SF_HEAP_WINDOW) {
        const struct sf_hev *e = &h->pend[h->phead];
        h->forced += e->ns > wm;
        prefetch(h, h->phead + AHEAD);
        replay(h, e);
        h->phead++;
    }
}

void sf_heap_finish(struct sf_heap *h, uint64_t end_ns)
{
    merge_batch(h);
    while (h->phead < h->npend) {
        prefetch(h, h->phead + AHEAD);
        replay(h, &h->pend[h->phead++]);
    }
    h->phead = h->npend = 0;
    for (size_t i = 0; i < h->nthreads; i++)
        if (h->threads[i].det)
            settle(h, &h->threads[i], h->frontier);
    if (end_ns < h->frontier)
        end_ns = h->frontier;
    close_stage(h, end_ns);
}

/* ---- the model in its own thread (heap.h: sf_heapq) ---------------------------------- */

struct sf_heapq_ring {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t wake_cons, wake_prod;
    /* batch i % SF_HEAPQ_RING: filled by the producer while tail - head <
     * SF_HEAPQ_RING, then applied by the consumer, which moves head past it
     * only when done (so tail - head counts the one it is applying) */
    struct sf_hev *b[SF_HEAPQ_RING];
    size_t n[SF_HEAPQ_RING];
    size_t head, tail;
    int cons_waits, prod_waits, done;
};

static void apply(struct sf_heap *h, const struct sf_hev *op, size_t n)
{
    for (const struct sf_hev *e = op, *end = op + n; e < end; e++) {
        uint32_t kind = e->tk & 7, ti = e->tk >> 3;
        if (__builtin_expect(kind != 0, 1)) {
            record(h, e);
            continue;
        }
        switch ((enum sf_heapq_op)e->path) {
        case SF_HEAPQ_HEAP:
            sf_heap_add_heap(h, (uint32_t)e->ns, (uint32_t)e->ptr, (uint32_t)e->size);
            break;
        case SF_HEAPQ_THREAD: {
            uint32_t t = sf_heap_add_thread(h, ti, (uint32_t)(e->ns >> 32), (uint32_t)e->ns);
            h->threads[t].user = (void *)(uintptr_t)e->ptr;
            break;
        }
        case SF_HEAPQ_LAST:
            h->threads[ti].last_ns = e->ns;
            break;
        case SF_HEAPQ_RETIRE:
            if (e->size)
                h->threads[ti].last_ns = e->ns;
            h->threads[ti].running = 0;
            break;
        case SF_HEAPQ_SYNC:
            sf_heap_sync(h);
            break;
        case SF_HEAPQ_SYNC_IF:
            if (h->npend - h->phead > SF_HEAP_WINDOW)
                sf_heap_sync(h);
            break;
        }
    }
}

static void *consumer(void *arg)
{
    struct sf_heapq *q = arg;
    struct sf_heapq_ring *r = q->r;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->head == r->tail && !r->done) {
            r->cons_waits = 1;
            pthread_cond_wait(&r->wake_cons, &r->mu);
            r->cons_waits = 0;
        }
        if (r->head == r->tail)
            break;
        size_t i = r->head % SF_HEAPQ_RING;
        pthread_mutex_unlock(&r->mu);
        apply(q->h, r->b[i], r->n[i]);
        pthread_mutex_lock(&r->mu);
        r->head++;
        if (r->prod_waits && r->tail - r->head <= SF_HEAPQ_RING / 2)
            pthread_cond_signal(&r->wake_prod);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void ring_free(struct sf_heapq_ring *r)
{
    for (size_t i = 0; i < SF_HEAPQ_RING; i++)
        free(r->b[i]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake_cons);
    pthread_cond_destroy(&r->wake_prod);
    free(r);
}

void sf_heapq_open(struct sf_heapq *q, struct sf_heap *h, int threaded)
{
    memset(q, 0, sizeof *q);
    q->h = h;
    q->nheaps = (uint32_t)h->nheaps;
    q->nthreads = (uint32_t)h->nthreads;
    if (threaded) {
        struct sf_heapq_ring *r = sf_xrealloc(NULL, sizeof *r);
        memset(r, 0, sizeof *r);
        for (size_t i = 0; i < SF_HEAPQ_RING; i++)
            r->b[i] = sf_xrealloc(NULL, SF_HEAPQ_OPS * sizeof *r->b[i]);
        pthread_mutex_init(&r->mu, NULL);
        pthread_cond_init(&r->wake_cons, NULL);
        pthread_cond_init(&r->wake_prod, NULL);
        q->r = r;
        if (pthread_create(&r->th, NULL, consumer, q) == 0) {
            q->cur = r->b[0];
            return;
        }
        q->r = NULL; /* no thread: the same work in this one */
        ring_free(r);
    }
    q->cur = sf_xrealloc(NULL, SF_HEAPQ_OPS * sizeof *q->cur);
}

/* Hand the batch over; done: the last one (the consumer is told to stop). */
static void handover(struct sf_heapq *q, int done)
{
    struct sf_heapq_ring *r = q->r;
    if (!r) {
        apply(q->h, q->cur, q->ncur);
        q->ncur = 0;
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->n[r->tail % SF_HEAPQ_RING] = q->ncur;
    r->tail++;
    r->done = done;
    if (r->cons_waits && (done || r->tail - r->head >= SF_HEAPQ_RING / 2))
        pthread_cond_signal(&r->wake_cons);
    while (!done && r->tail - r->head >= SF_HEAPQ_RING) {
        r->prod_waits = 1;
        pthread_cond_wait(&r->wake_prod, &r->mu);
        r->prod_waits = 0;
    }
    pthread_mutex_unlock(&r->mu);
    q->cur = r->b[r->tail % SF_HEAPQ_RING];
    q->ncur = 0;
}

void sf_heapq_submit(struct sf_heapq *q)
{
    handover(q, 0);
}

void sf_heapq_close(struct sf_heapq *q)
{
    struct sf_heapq_ring *r = q->r;
    handover(q, 1);
    if (r) {
        pthread_join(r->th, NULL);
        ring_free(r);
    } else {
        free(q->cur);
    }
    memset(q, 0, sizeof *q);
}

uint32_t sf_heapq_add_heap(struct sf_heapq *q, uint32_t pid, uint32_t image, uint32_t label)
{
    sf_heapq_ctl(q, SF_HEAPQ_HEAP, 0, pid, image, label);
    return q->nheaps++;
}

uint32_t sf_heapq_add_thread(struct sf_heapq *q, uint32_t heap, uint32_t pid, uint32_t tid,
                             void *user)
{
    sf_heapq_ctl(q, SF_HEAPQ_THREAD, heap, (uint64_t)pid << 32 | tid, (uint64_t)(uintptr_t)user, 0);
    return q->nthreads++;
}

/* ---- milestones ------------------------------------------------------------------ */

int sf_milestone(struct sf_milestones *m, struct sf_calls *e, uint32_t func)
{
    if (!m->re)
        return 0;
    SF_GROW_ZERO(m->cache, func, m->cap, 256);
    if (!m->cache[func]) {
        const struct sf_func *f = sf_calls_func(e, func);
        m->cache[func] = f && f->name && sf_regex_match(m->re, f->name) ? 2 : 1;
    }
    return m->cache[func] == 2;
}

void sf_milestones_free(struct sf_milestones *m)
{
    free(m->cache);
    m->cache = NULL;
    m->cap = 0;
}

/* Protobuf, by hand (perfetto.h's wire primitives): a TracePacket
 * {timestamp, timestamp_clock_id CLOCK_MONOTONIC, trusted_packet_sequence_id,
 * track_event {type TYPE_INSTANT, track_uuid, name}}. */
static inline size_t vlen(uint64_t v)
{
    return pf_varint_len(v);
}

uint8_t *sf_stage_marker(uint8_t *p, uint32_t seq_id, uint64_t ns, uint64_t track_uuid,
                         const char *name)
{
    size_t nl = strlen(name);
    if (nl > PF_STR_MAX)
        nl = PF_STR_MAX;
    size_t te = 1 + 1 /* type 9: 3 */ + 1 + vlen(track_uuid) /* track_uuid 11 */ + 2 + vlen(nl) +
                nl; /* name 23: tag 0xba 0x01 */
    size_t pk = 1 + vlen(ns) /* timestamp 8 */ + 2 + 1 /* timestamp_clock_id 58: 3 */ + 1 +
                vlen(seq_id) /* 10 */ + 1 + vlen(te) + te /* track_event 11 */;
    *p++ = 0x0a; /* Trace.packet */
    p = pf_varint(p, pk);
    *p++ = 8 << 3;
    p = pf_varint(p, ns);
    p = pf_varint(p, 58 << 3);
    *p++ = 3; /* CLOCK_MONOTONIC */
    *p++ = 10 << 3;
    p = pf_varint(p, seq_id);
    *p++ = 11 << 3 | 2;
    p = pf_varint(p, te);
    *p++ = 9 << 3;
    *p++ = 3; /* TYPE_INSTANT */
    *p++ = 11 << 3;
    p = pf_varint(p, track_uuid);
    p = pf_varint(p, 23 << 3 | 2);
    p = pf_varint(p, nl);
    memcpy(p, name, nl);
    return p + nl;
}
