/*
 * cctree.c - the calling-context tree (see cctree.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "cctree.h"
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
    to[0] = SF_CC_ROOT;
    for (size_t i = 1; i < src->nn; i++) { /* parents come before children */
        const struct sf_ccnode *x = &src->n[i];
        uint32_t d = x->label ? label_by_text(dst, x->label)
                              : sf_cctree_child(dst, to[x->parent], map(ctx, x->func));
        to[i] = d;
        struct sf_ccnode *y = &dst->n[d];
        y->calls += x->calls;
        y->unfinished += x->unfinished;
        y->total_ns += x->total_ns;
        y->self_ns += x->self_ns;
    }
    free(to);
}

void sf_ccstack_init(struct sf_ccstack *s, uint32_t base)
{
    memset(s, 0, sizeof *s);
    s->base = base;
}

void sf_ccstack_free(struct sf_ccstack *s)
{
    free(s->node);
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
        s->cap = n;
    }
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
    if (i == SF_CC_NONE)
        return;
    struct sf_ccnode *x = &t->n[i];
    x->calls++;
    x->total_ns += c->end_ns - c->start_ns;
    x->self_ns += c->self_ns;
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

int sf_run_cctree(struct sf_run *r, const char *path, int by_thread, const char *focus,
                  struct sf_cctree *out, struct sf_calls_stats *st)
{
    sf_cctree_init(out);
    if (focus && sf_focus_check(r, focus) < 0)
        return -1;
    struct targ a = {by_thread, focus};
    int nw = 0;
    struct sf_runw *w = sf_run_go(r, path, &sf_ccbuild_ops, t_mkctx, t_freectx, &a, &nw);
    if (!w)
        return -1;
    sf_run_stats(w, nw, st);
    for (int k = 0; k < nw; k++) {
        struct tctx *g = w[k].ctx;
        sf_cctree_merge(out, &g->b.tree, map_gid, &w[k]);
        t_freectx(g);
        w[k].ctx = NULL;
    }
    sf_run_done(w, nw);
    if (out->nn <= 1) {
        if (focus)
            fprintf(stderr, "sftrace %s: %s: no call of a function matching '%s'\n", r->cmd, path,
                    focus);
        else
            fprintf(stderr, "sftrace %s: %s: no calls in the selection\n", r->cmd, path);
        return -1;
    }
    return 0;
}
