/*
 * cctree.c - the calling-context tree (see cctree.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "cctree.h"
#include "flows.h"
#include "runcalls.h"

static uint32_t new_node(struct sf_cctree *t, uint32_t parent, uint32_t func)
{
    SF_GROW_FROM(t->n, t->nn, t->cap, 1024);
    struct sf_ccnode *x = &t->n[t->nn];
    memset(x, 0, sizeof *x);
    x->func = func;
    x->parent = parent;
    x->first = x->next = SF_CC_NONE;
    if (parent != SF_CC_NONE) {
        x->depth = t->n[parent].depth + 1;
        x->next = t->n[parent].first;
        t->n[parent].first = (uint32_t)t->nn;
    }
    return (uint32_t)t->nn++;
}

void sf_cctree_init(struct sf_cctree *t)
{
    memset(t, 0, sizeof *t);
    new_node(t, SF_CC_NONE, SF_CC_NONE);
}

void sf_cctree_free(struct sf_cctree *t)
{
    for (size_t i = 0; i < t->nn; i++)
        free(t->n[i].label);
    free(t->n);
    free(t->focus_cache);
    sf_map_free(&t->kids);
    memset(t, 0, sizeof *t);
}

void sf_cctree_set_focus(struct sf_cctree *t, int (*focus)(void *ctx, uint32_t func), void *ctx)
{
    t->focus = focus;
    t->focus_ctx = ctx;
}

uint32_t sf_cctree_child(struct sf_cctree *t, uint32_t parent, uint32_t func)
{
    uint64_t *slot = sf_map_get(&t->kids, (uint64_t)parent << 32 | func, 1);
    if (!*slot)
        *slot = (uint64_t)new_node(t, parent, func) + 1;
    return (uint32_t)(*slot - 1);
}

uint32_t sf_cctree_label(struct sf_cctree *t, uint64_t key, const char *label)
{
    uint32_t c;
    for (c = t->n[SF_CC_ROOT].first; c != SF_CC_NONE; c = t->n[c].next)
        if (t->n[c].label && t->n[c].label_key == key)
            break;
    if (c == SF_CC_NONE) {
        c = new_node(t, SF_CC_ROOT, SF_CC_NONE);
        t->n[c].label_key = key;
    }
    if (!t->n[c].label || strcmp(t->n[c].label, label)) {
        free(t->n[c].label);
        t->n[c].label = sf_xstrdup(label);
    }
    return c;
}

static uint32_t label_by_text(struct sf_cctree *t, const char *label)
{
    for (uint32_t c = t->n[SF_CC_ROOT].first; c != SF_CC_NONE; c = t->n[c].next)
        if (t->n[c].label && !strcmp(t->n[c].label, label))
            return c;
    uint32_t c = new_node(t, SF_CC_ROOT, SF_CC_NONE);
    t->n[c].label = sf_xstrdup(label);
    t->n[c].label_key = ~0ull;
    return c;
}

void sf_cctree_merge(struct sf_cctree *dst, const struct sf_cctree *src,
                     uint32_t (*map)(void *ctx, uint32_t func), void *ctx)
{
    uint32_t *to = sf_xrealloc(NULL, src->nn * sizeof *to);
    /* nodes with no call in their subtree are left out: --follow-jobs moves
     * a job's call to a label just after its begin made it a node */
    uint8_t *live = sf_xcalloc(src->nn, 1);
    for (size_t i = src->nn; i-- > 1;)
        if (src->n[i].calls || live[i] || src->n[i].label)
            live[i] = live[src->n[i].parent] = 1;
    to[0] = SF_CC_ROOT;
    for (size_t i = 1; i < src->nn; i++) { /* parents come before children */
        const struct sf_ccnode *x = &src->n[i];
        if (!live[i])
            continue;
        uint32_t d = x->label ? label_by_text(dst, x->label)
                              : sf_cctree_child(dst, to[x->parent], map(ctx, x->func));
        to[i] = d;
        struct sf_ccnode *y = &dst->n[d];
        y->calls += x->calls;
        y->unfinished += x->unfinished;
        y->total_ns += x->total_ns;
        y->self_ns += x->self_ns;
        y->wall_ns += x->wall_ns;
    }
    free(to);
    free(live);
}

/* Add the subtree of src's node s beneath dst's node dparent (dst may be
 * src: indices only, as adding nodes moves them). Iterative: a tree is as
 * deep as the deepest recursion. */
static void add_subtree(struct sf_cctree *dst, uint32_t dparent, const struct sf_cctree *src,
                        uint32_t s)
{
    struct pair {
        uint32_t s, d;
    } *st = NULL;
    size_t n = 0, cap = 0;
    SF_GROW_FROM(st, n, cap, 64);
    st[n++] = (struct pair){s, dparent};
    int top = 1; /* the first entry is s itself */
    while (n) {
        struct pair p = st[--n];
        uint32_t d = p.d;
        if (!top || src->n[p.s].func != SF_CC_NONE || src->n[p.s].label) {
            const struct sf_ccnode x = src->n[p.s];
            d = x.label ? p.d : sf_cctree_child(dst, p.d, x.func);
            struct sf_ccnode *y = &dst->n[d];
            y->calls += x.calls;
            y->unfinished += x.unfinished;
            y->total_ns += x.total_ns;
            y->self_ns += x.self_ns;
            y->wall_ns += x.wall_ns;
        }
        top = 0;
        for (uint32_t c = src->n[p.s].first; c != SF_CC_NONE; c = src->n[c].next) {
            SF_GROW_FROM(st, n, cap, 64);
            st[n++] = (struct pair){c, d};
        }
    }
    free(st);
}

struct follow {
    struct sf_cctree *t;
    const struct sf_flows *fl;
    uint32_t (*gid)(void *ctx, const char *name);
    void *ctx;
    struct sf_map memo; /* flow -> node + 1 */
};

/* The node beneath which flow f's consumer call goes. */
static uint32_t follow_target(struct follow *F, uint64_t f, int depth)
{
    uint64_t *m = sf_map_get(&F->memo, f, 0);
    if (m && *m)
        return (uint32_t)(*m - 1);
    uint64_t parent;
    const char *const *names;
    size_t n;
    uint32_t at = SF_CC_ROOT;
    if (sf_flows_graft(F->fl, f, &parent, &names, &n)) {
        if (parent && depth < 100000)
            at = follow_target(F, parent, depth + 1);
        for (size_t i = 0; i < n; i++)
            at = sf_cctree_child(F->t, at, F->gid(F->ctx, names[i]));
    }
    *sf_map_get(&F->memo, f, 1) = (uint64_t)at + 1;
    return at;
}

void sf_cctree_follow(struct sf_cctree *t, const struct sf_flows *fl,
                      uint32_t (*gid)(void *ctx, const char *name), void *ctx)
{
    struct follow F = {t, fl, gid, ctx, {0}};
    uint32_t *prev = &t->n[SF_CC_ROOT].first;
    for (uint32_t c = *prev; c != SF_CC_NONE; c = *prev) {
        unsigned long long id;
        if (!t->n[c].label || sscanf(t->n[c].label, "\001job %llu", &id) != 1) {
            prev = &t->n[c].next;
            continue;
        }
        *prev = t->n[c].next; /* unlinked: its chain moves */
        uint32_t at = follow_target(&F, id, 0);
        uint64_t sum = 0;
        for (uint32_t k = t->n[c].first; k != SF_CC_NONE; k = t->n[k].next)
            sum += t->n[k].total_ns;
        add_subtree(t, at, t, c);
        for (uint32_t a = at; a != SF_CC_ROOT && a != SF_CC_NONE; a = t->n[a].parent)
            t->n[a].total_ns += sum;
        prev = &t->n[SF_CC_ROOT].first; /* nodes moved: start over (moved labels are gone) */
    }
    sf_map_free(&F.memo);
    /* the moved chains are still in the node array, unlinked: a fresh tree
     * of what is linked, for consumers that read the array in order */
    struct sf_cctree c;
    sf_cctree_init(&c);
    add_subtree(&c, SF_CC_ROOT, t, SF_CC_ROOT);
    sf_cctree_free(t);
    *t = c;
}

void sf_cctree_refocus(struct sf_cctree *dst, const struct sf_cctree *t,
                       int (*focus)(void *ctx, uint32_t func), void *ctx)
{
    sf_cctree_init(dst);
    uint32_t *st = NULL;
    size_t n = 0, cap = 0;
    SF_GROW_FROM(st, n, cap, 64);
    st[n++] = SF_CC_ROOT;
    while (n) {
        uint32_t i = st[--n];
        for (uint32_t c = t->n[i].first; c != SF_CC_NONE; c = t->n[c].next) {
            if (!t->n[c].label && focus(ctx, t->n[c].func)) {
                add_subtree(dst, SF_CC_ROOT, t, c);
            } else {
                SF_GROW_FROM(st, n, cap, 64);
                st[n++] = c;
            }
        }
    }
    free(st);
}

void sf_ccstack_init(struct sf_ccstack *s, uint32_t base)
{
    memset(s, 0, sizeof *s);
    s->base = base;
}

void sf_ccstack_free(struct sf_ccstack *s)
{
    free(s->node);
    free(s->moved);
    free(s->jump);
    free(s->open.f);
    memset(s, 0, sizeof *s);
}

static int focused(struct sf_cctree *t, uint32_t func)
{
    SF_GROW_ZERO(t->focus_cache, func, t->focus_cap, 256);
    if (!t->focus_cache[func])
        t->focus_cache[func] = t->focus(t->focus_ctx, func) ? 2 : 1;
    return t->focus_cache[func] == 2;
}

void sf_cctree_begin(struct sf_cctree *t, struct sf_ccstack *s, uint32_t func, uint32_t d)
{
    if (d >= s->cap) {
        uint32_t n = s->cap ? 2 * s->cap : 64;
        while (n <= d)
            n *= 2;
        s->node = sf_xrealloc(s->node, (size_t)n * sizeof *s->node);
        s->moved = sf_xrealloc(s->moved, (size_t)n * sizeof *s->moved);
        s->jump = sf_xrealloc(s->jump, (size_t)n * sizeof *s->jump);
        s->cap = n;
    }
    s->moved[d] = 0;
    s->jump[d] = 0;
    uint32_t parent;
    if (t->focus) {
        if (s->inout && d >= s->inout) {
            parent = s->node[d - 1];
        } else if (focused(t, func)) {
            s->inout = d + 1;
            parent = s->base;
        } else {
            s->node[d] = SF_CC_NONE;
            return;
        }
    } else {
        parent = d ? s->node[d - 1] : s->base;
    }
    s->node[d] = sf_cctree_child(t, parent, func);
}

void sf_cctree_end(struct sf_cctree *t, struct sf_ccstack *s, const struct sf_call *c)
{
    uint32_t d = c->depth;
    if (d >= s->cap)
        return; /* its begin was never seen */
    uint32_t i = s->node[d];
    if (t->focus && s->inout == d + 1)
        s->inout = 0;
    uint64_t dur = c->end_ns - c->start_ns;
    if (d) /* what of this call's time moved with jobs, its caller's too */
        s->moved[d - 1] += s->jump[d] ? dur : s->moved[d];
    if (i == SF_CC_NONE)
        return;
    struct sf_ccnode *x = &t->n[i];
    x->calls++;
    x->total_ns += dur - s->moved[d];
    x->self_ns += c->self_ns;
    x->wall_ns += dur;
    if (c->flags & SF_CALL_UNFINISHED)
        x->unfinished++;
}

static const struct sf_cctree *cmp_tree;
static int by_total(const void *a, const void *b)
{
    const struct sf_ccnode *x = &cmp_tree->n[*(const uint32_t *)a];
    const struct sf_ccnode *y = &cmp_tree->n[*(const uint32_t *)b];
    if (x->total_ns != y->total_ns)
        return x->total_ns > y->total_ns ? -1 : 1;
    if (x->func != y->func)
        return x->func < y->func ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

size_t sf_cctree_children(const struct sf_cctree *t, uint32_t i, uint32_t *out)
{
    size_t n = 0;
    for (uint32_t c = t->n[i].first; c != SF_CC_NONE; c = t->n[c].next)
        out[n++] = c;
    cmp_tree = t;
    qsort(out, n, sizeof *out, by_total);
    return n;
}

/* ---- the engine consumer ------------------------------------------------------- */

static struct sf_ccstack *stack_of(struct sf_ccbuild *b, struct sf_cthread *t)
{
    if (t->user)
        return t->user;
    struct sf_ccstack *s = sf_xrealloc(NULL, sizeof *s);
    uint32_t base = SF_CC_ROOT;
    if (b->by_thread) {
        char label[64];
        sf_run_thread_label(label, sizeof label, t);
        base = sf_cctree_label(&b->tree, (uint64_t)t->pid << 32 | t->tid, label);
    }
    sf_ccstack_init(s, base);
    SF_GROW(b->stacks, b->nstacks, b->capstacks);
    b->stacks[b->nstacks++] = s;
    t->user = s;
    return s;
}

static void b_thread(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ns;
    struct sf_ccbuild *b = ctx;
    struct sf_ccstack *s = stack_of(b, t);
    if (b->by_thread && t->name[0]) { /* a new name */
        char label[64];
        sf_run_thread_label(label, sizeof label, t);
        s->base = sf_cctree_label(&b->tree, (uint64_t)t->pid << 32 | t->tid, label);
    }
}

static void b_thread_exit(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ns;
    struct sf_ccbuild *b = ctx;
    struct sf_ccstack *s = t->user;
    if (!s)
        return;
    for (size_t i = 0; i < b->nstacks; i++)
        if (b->stacks[i] == s) {
            b->stacks[i] = b->stacks[--b->nstacks];
            break;
        }
    sf_ccstack_free(s);
    free(s);
    t->user = NULL;
}

static void b_calls(void *ctx, struct sf_cthread *t, const struct sf_crec *rec, size_t n)
{
    struct sf_ccbuild *b = ctx;
    struct sf_ccstack *s = stack_of(b, t);
    for (size_t i = 0; i < n; i++) {
        struct sf_call c;
        if (rec[i].kind == SF_CREC_BEGIN) {
            sf_cctree_begin(&b->tree, s, rec[i].func, s->open.depth);
            sf_bstack_begin(&s->open, &rec[i]);
        } else if (sf_bstack_end(&s->open, &rec[i], &c)) {
            sf_cctree_end(&b->tree, s, &c);
        }
    }
}

const struct sf_calls_ops sf_ccbuild_ops = {
    .thread = b_thread,
    .thread_exit = b_thread_exit,
    .calls = b_calls,
};

/* A key record right after its call's begin (the top of the batches' open
 * calls): if it ends a flow that has a context, the call's chain starts
 * beneath the flow's label instead (the node its begin made stays empty,
 * and the merge leaves it out), and its time leaves the totals of its
 * callers on this thread (sf_cctree_end), so the tree's top-level totals
 * still add up to every thread's time. */
static void b_ext(void *ctx, struct sf_cthread *t, const struct sf_event *ev, uint64_t ns)
{
    (void)ns;
    struct sf_ccbuild *b = ctx;
    struct sf_flow_ends e;
    uint64_t parent;
    const char *const *names;
    size_t n;
    if (!b->follow || !sf_flows_at(b->follow, ev, &e) || !e.in ||
        !sf_flows_graft(b->follow, e.in, &parent, &names, &n))
        return;
    struct sf_ccstack *s = stack_of(b, t);
    if (!s->open.depth || s->open.depth > s->cap)
        return;
    uint32_t d = s->open.depth - 1;
    char label[40];
    snprintf(label, sizeof label, "\001job %llu", (unsigned long long)e.in);
    uint32_t a = sf_cctree_label(&b->tree, 1ull << 63 | e.in, label);
    s->node[d] = sf_cctree_child(&b->tree, a, s->open.f[d].func);
    s->jump[d] = 1; /* its time leaves its callers here */
}

const struct sf_calls_ops sf_ccbuild_follow_ops = {
    .thread = b_thread,
    .thread_exit = b_thread_exit,
    .calls = b_calls,
    .ext = b_ext,
};

void sf_ccbuild_init(struct sf_ccbuild *b, int by_thread)
{
    memset(b, 0, sizeof *b);
    sf_cctree_init(&b->tree);
    b->by_thread = by_thread;
}

void sf_ccbuild_free(struct sf_ccbuild *b)
{
    for (size_t i = 0; i < b->nstacks; i++) {
        sf_ccstack_free(b->stacks[i]);
        free(b->stacks[i]);
    }
    free(b->stacks);
    sf_cctree_free(&b->tree);
}

/* ---- a whole run ------------------------------------------------------------------ */

struct tctx {
    struct sf_ccbuild b; /* first: the engine's ctx is this struct */
    struct sf_runw *w;
    struct sf_select focus; /* the focus regex, compiled for this worker */
};

struct targ {
    int by_thread;
    const char *focus;
    const struct sf_flows *follow;
};

static int focus_fn(void *ctx, uint32_t func)
{
    struct tctx *g = ctx;
    const struct sf_func *f = sf_calls_func(g->w->e, func);
    return f && f->name && sf_regex_match(g->focus.funcs, f->name);
}

static void *t_mkctx(void *arg, struct sf_runw *w)
{
    const struct targ *a = arg;
    struct tctx *g = sf_xrealloc(NULL, sizeof *g);
    memset(g, 0, sizeof *g);
    sf_ccbuild_init(&g->b, a->by_thread);
    g->b.follow = a->follow;
    g->w = w;
    sf_select_init(&g->focus);
    if (a->focus) {
        char err[SF_ERRLEN];
        sf_select_option(&g->focus, 'F', a->focus, err, sizeof err); /* checked before */
        sf_cctree_set_focus(&g->b.tree, focus_fn, g);
    }
    return g;
}

static void t_freectx(void *ctx)
{
    struct tctx *g = ctx;
    sf_ccbuild_free(&g->b);
    sf_select_free(&g->focus);
    free(g);
}

static uint32_t map_gid(void *ctx, uint32_t func)
{
    return sf_run_gid(ctx, func);
}

int sf_focus_check(const struct sf_run *r, const char *focus)
{
    struct sf_select chk;
    sf_select_init(&chk);
    char err[SF_ERRLEN];
    int rc = sf_select_option(&chk, 'F', focus, err, sizeof err) < 0 ? -1 : 0;
    if (rc < 0) {
        const char *m = strstr(err, ": bad regular expression");
        fprintf(stderr, "sftrace %s: REGEX '%s'%s\n", r->cmd, focus, m ? m : err);
    }
    sf_select_free(&chk);
    return rc;
}

static uint32_t intern_name(void *ctx, const char *name)
{
    return sf_run_intern(ctx, name);
}

struct refocus {
    const struct sf_run *r;
    struct sf_select sel;
};

static int refocus_fn(void *ctx, uint32_t gid)
{
    struct refocus *f = ctx;
    return sf_regex_match(f->sel.funcs, sf_run_name(f->r, gid));
}

/* --follow-jobs: the flows prepass, with each producer's context. NULL
 * after printing the error. */
static struct sf_flows *follow_scan(const struct sf_run *r, const char *path)
{
    struct sf_flows *fl = sf_flows_with(r->cmd, r->flowfiles, r->nflowfiles);
    if (!fl)
        return NULL;
    sf_flows_set_follow(fl, 1);
    char err[SF_ERRLEN + 256];
    if (sf_flows_scan(fl, path, &r->sel, err, sizeof err) < 0) {
        fprintf(stderr, "sftrace %s: %s\n", r->cmd, err);
        sf_flows_free(fl);
        return NULL;
    }
    return fl;
}

int sf_run_cctree(struct sf_run *r, const char *path, int by_thread, const char *focus,
                  struct sf_cctree *out, struct sf_calls_stats *st)
{
    sf_cctree_init(out);
    if (focus && sf_focus_check(r, focus) < 0)
        return -1;
    if (r->follow && by_thread) {
        fprintf(stderr,
                "sftrace %s: --follow-jobs joins threads' work in one tree: not with --by "
                "thread\n",
                r->cmd);
        return -1;
    }
    struct sf_flows *fl = NULL;
    if (r->follow && !(fl = follow_scan(r, path)))
        return -1;
    /* followed: the whole tree first, the focus after the jobs moved */
    struct targ a = {by_thread, fl ? NULL : focus, NULL};
    int nw = 0;
    struct sf_runw *w = NULL;
    if (fl) {
        a.follow = fl;
        w = sf_run_go(r, path, &sf_ccbuild_follow_ops, t_mkctx, t_freectx, &a, &nw);
    } else {
        w = sf_run_go(r, path, &sf_ccbuild_ops, t_mkctx, t_freectx, &a, &nw);
    }
    if (!w) {
        sf_flows_free(fl);
        return -1;
    }
    sf_run_stats(w, nw, st);
    for (int k = 0; k < nw; k++) {
        struct tctx *g = w[k].ctx;
        sf_cctree_merge(out, &g->b.tree, map_gid, &w[k]);
        t_freectx(g);
        w[k].ctx = NULL;
    }
    sf_run_done(w, nw);
    if (fl) {
        sf_cctree_follow(out, fl, intern_name, r);
        sf_flows_free(fl);
        if (focus) {
            struct refocus f = {.r = r};
            sf_select_init(&f.sel);
            char err[SF_ERRLEN];
            sf_select_option(&f.sel, 'F', focus, err, sizeof err); /* checked before */
            struct sf_cctree all = *out;
            sf_cctree_refocus(out, &all, refocus_fn, &f);
            sf_cctree_free(&all);
            sf_select_free(&f.sel);
        }
    }
    if (out->nn <= 1 || out->n[SF_CC_ROOT].first == SF_CC_NONE) {
        if (focus)
            fprintf(stderr, "sftrace %s: %s: no call of a function matching '%s'\n", r->cmd, path,
                    focus);
        else
            fprintf(stderr, "sftrace %s: %s: no calls in the selection\n", r->cmd, path);
        return -1;
    }
    return 0;
}
