/*
 * cctree.c - the calling-context tree (see cctree.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cctree.h"

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    return p;
}

static uint32_t new_node(struct sf_cctree *t, uint32_t parent, uint32_t func)
{
    if (t->nn == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->n = xrealloc(t->n, t->cap * sizeof *t->n);
    }
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

uint32_t sf_cctree_label(struct sf_cctree *t, const char *label)
{
    for (uint32_t c = t->n[SF_CC_ROOT].first; c != SF_CC_NONE; c = t->n[c].next)
        if (t->n[c].label && !strcmp(t->n[c].label, label))
            return c;
    uint32_t c = new_node(t, SF_CC_ROOT, SF_CC_NONE);
    size_t len = strlen(label) + 1;
    t->n[c].label = memcpy(xrealloc(NULL, len), label, len);
    return c;
}

void sf_ccstack_init(struct sf_ccstack *s, uint32_t base)
{
    memset(s, 0, sizeof *s);
    s->base = base;
}

void sf_ccstack_free(struct sf_ccstack *s)
{
    free(s->node);
    memset(s, 0, sizeof *s);
}

static int focused(struct sf_cctree *t, uint32_t func)
{
    if (func >= t->focus_cap) {
        size_t n = t->focus_cap ? t->focus_cap : 256;
        while (n <= func)
            n *= 2;
        t->focus_cache = xrealloc(t->focus_cache, n);
        memset(t->focus_cache + t->focus_cap, 0, n - t->focus_cap);
        t->focus_cap = n;
    }
    if (!t->focus_cache[func])
        t->focus_cache[func] = t->focus(t->focus_ctx, func) ? 2 : 1;
    return t->focus_cache[func] == 2;
}

void sf_cctree_begin(struct sf_cctree *t, struct sf_ccstack *s, const struct sf_cframe *f)
{
    uint32_t d = f->depth;
    if (d >= s->cap) {
        uint32_t n = s->cap ? 2 * s->cap : 64;
        while (n <= d)
            n *= 2;
        s->node = xrealloc(s->node, (size_t)n * sizeof *s->node);
        s->cap = n;
    }
    uint32_t parent;
    if (t->focus) {
        if (s->inout && d >= s->inout) {
            parent = s->node[d - 1];
        } else if (focused(t, f->func)) {
            s->inout = d + 1;
            parent = s->base;
        } else {
            s->node[d] = SF_CC_NONE;
            return;
        }
    } else {
        parent = d ? s->node[d - 1] : s->base;
    }
    s->node[d] = sf_cctree_child(t, parent, f->func);
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
