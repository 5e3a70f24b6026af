/*
 * cctree.h - the calling-context tree: every distinct chain of calls from an
 * outermost call down, with calls, inclusive and self time per chain.
 *
 * Built from the call engine's stream (calls.h): for each thread the
 * consumer keeps a struct sf_ccstack (the tree node of each open delivered
 * call) and passes the engine's begin and end callbacks on. Node 0 is the
 * root; below it come the outermost calls, or, when the consumer asks for
 * them, label nodes (one per thread, "pid/tid name") with the calls beneath.
 *
 * Focus: with a predicate set (sf_cctree_set_focus), only calls of matching
 * functions that are not inside another such call start a chain under the
 * root (or label); everything beneath them follows, and calls outside them
 * are left out. That is the merged tree beneath every call of the matching
 * functions (`sftrace graph LOG REGEX`).
 *
 * Times: a node's total is the sum of its calls' durations (end - start),
 * its self time the sum of the engine's self_ns (duration minus the time of
 * delivered callees), so over the whole tree the self times add up to the
 * totals of the nodes just below the root (or labels).
 *
 * Memory: the nodes (distinct contexts) and, per thread, its stack depth.
 */
#ifndef SFTRACE_CCTREE_H
#define SFTRACE_CCTREE_H

#include <stddef.h>
#include <stdint.h>

#include "calls.h"
#include "logread.h"
#include "runcalls.h"

#define SF_CC_NONE 0xffffffffu
#define SF_CC_ROOT 0u

struct sf_ccnode {
    uint32_t func;                /* engine function index, SF_CC_NONE: root or label */
    uint32_t parent, first, next; /* first child, next sibling (SF_CC_NONE: none) */
    uint32_t depth;               /* 0 root */
    uint64_t calls, unfinished;
    uint64_t total_ns, self_ns;
    uint64_t wall_ns;   /* --follow-jobs: its calls' own time on their threads (total_ns
                           is then summed thread time: jobs made inside count here,
                           jobs run inside for another context do not) */
    char *label;        /* label nodes: their text */
    uint64_t label_key; /* label nodes: the caller's key (pid << 32 | tid) */
};

struct sf_cctree {
    struct sf_ccnode *n;
    size_t nn, cap;
    struct sf_map kids; /* (parent, func) -> node + 1 */
    int (*focus)(void *ctx, uint32_t func);
    void *focus_ctx;
    uint8_t *focus_cache; /* per function: 0 unknown, 1 no, 2 yes */
    size_t focus_cap;
};

/* Per thread: the node of every open delivered call, by delivered depth. */
struct sf_ccstack {
    uint32_t *node;
    uint64_t *moved; /* --follow-jobs: time of open callees' jobs moved elsewhere */
    uint8_t *jump;   /* --follow-jobs: this call moved beneath its job's maker */
    uint32_t cap;
    uint32_t base;         /* where this thread's outermost calls hang (root or its label) */
    uint32_t inout;        /* focus: depth of the outermost focused open call + 1, 0 none */
    struct sf_bstack open; /* sf_ccbuild_ops: the open calls of the engine's batches */
};

void sf_cctree_init(struct sf_cctree *t);
void sf_cctree_free(struct sf_cctree *t);
/* Only calls of functions for which focus(ctx, func) is nonzero start chains
 * (asked once per function). */
void sf_cctree_set_focus(struct sf_cctree *t, int (*focus)(void *ctx, uint32_t func), void *ctx);
/* The child of parent for func, made if absent. */
uint32_t sf_cctree_child(struct sf_cctree *t, uint32_t parent, uint32_t func);
/* A label node under the root, found by key, made if absent; its text is
 * set to label (a thread's name can change). */
uint32_t sf_cctree_label(struct sf_cctree *t, uint64_t key, const char *label);

/* Add every node of src to dst, the functions renamed by map(ctx, func)
 * (the analysis commands merge their workers' trees by function name id);
 * label nodes are matched by text. */
void sf_cctree_merge(struct sf_cctree *dst, const struct sf_cctree *src,
                     uint32_t (*map)(void *ctx, uint32_t func), void *ctx);

/*
 * A consumer of the call engine that builds a tree: pass sf_ccbuild_ops and
 * a struct sf_ccbuild as the engine's ops and ctx. With by_thread, each
 * thread's calls hang below a label node "pid/tid name".
 */
struct sf_flows;
struct sf_ccbuild {
    struct sf_cctree tree;
    int by_thread;
    /* --follow-jobs: a consumer call that is a flow's end (a rayon job run
     * by another thread, a tokio poll) starts a chain under a label node
     * "\001job N" (N: the flow id) instead of its thread's stack, for
     * sf_cctree_follow to move where the job was made */
    const struct sf_flows *follow;
    struct sf_ccstack **stacks; /* every thread's, for freeing */
    size_t nstacks, capstacks;
};
extern const struct sf_calls_ops sf_ccbuild_ops;
extern const struct sf_calls_ops sf_ccbuild_follow_ops; /* with b->follow */
void sf_ccbuild_init(struct sf_ccbuild *b, int by_thread);
void sf_ccbuild_free(struct sf_ccbuild *b);

void sf_ccstack_init(struct sf_ccstack *s, uint32_t base);
void sf_ccstack_free(struct sf_ccstack *s);
/* A call begins at delivered depth depth (the engine's begin), and ends
 * (its end), for the thread whose stack s is. */
void sf_cctree_begin(struct sf_cctree *t, struct sf_ccstack *s, uint32_t func, uint32_t depth);
void sf_cctree_end(struct sf_cctree *t, struct sf_ccstack *s, const struct sf_call *c);

/*
 * --follow-jobs, after the merge: every "\001job N" chain moves beneath the
 * context that made the job (sf_flows_graft; names become function ids by
 * gid(ctx, name)), its totals added to that context and every node above
 * it, so a node's total_ns is the summed thread time of its calls and of
 * the jobs made inside them (wall_ns keeps its own thread's time).
 */
void sf_cctree_follow(struct sf_cctree *t, const struct sf_flows *fl,
                      uint32_t (*gid)(void *ctx, const char *name), void *ctx);
/* A new tree *dst: the merged trees beneath the outermost nodes of t whose
 * function satisfies focus(ctx, func) (graph REGEX on a followed tree). */
void sf_cctree_refocus(struct sf_cctree *dst, const struct sf_cctree *t,
                       int (*focus)(void *ctx, uint32_t func), void *ctx);

/* Children of node i sorted by total time, largest first (ties by func),
 * written to out (room for the number of children); returns how many. */
size_t sf_cctree_children(const struct sf_cctree *t, uint32_t i, uint32_t *out);

/*
 * The whole run for graph and flame: the call engine over path in the
 * run's workers (runcalls.h), each building a tree, merged into *out with
 * functions as name ids (sf_run_name). With focus (a PCRE2 regex), only the
 * trees beneath calls of matching functions. *st gets the totals. 0, or -1
 * after printing the error (a bad regex, a read error, no events, or no
 * calls / no match: "sftrace CMD: LOG: no call of a function matching ...").
 */
int sf_run_cctree(struct sf_run *r, const char *path, int by_thread, const char *focus,
                  struct sf_cctree *out, struct sf_calls_stats *st);
/* Check a focus regex: 0, or -1 after printing "sftrace CMD: REGEX 'x': bad ...". */
int sf_focus_check(const struct sf_run *r, const char *focus);

#endif /* SFTRACE_CCTREE_H */
