/*
 * flamesvg.h - flame graphs: a tree of named frames with weights, written as
 * one self-contained interactive SVG or as folded (collapsed) stacks.
 *
 * The tree knows nothing of calls: a frame is a name, a self weight (what it
 * holds itself: time, calls, bytes...) and an optional count (calls,
 * allocations) for tooltips. `sftrace flame` fills it from the calling-context
 * tree (lib/cctree.h); a memory command can fill it with allocation stacks.
 * Siblings are merged by name (two frames of one parent with equal names are
 * one frame), as flame graphs do.
 *
 *     struct sf_ftree *t = sf_ftree_new();
 *     uint32_t a = sf_ftree_child(t, SF_FTREE_ROOT, "main");
 *     uint32_t b = sf_ftree_child(t, a, "work");
 *     sf_ftree_add(t, b, 1234, 1);        // self weight, count
 *     sf_flame_svg(stdout, t, &opts);
 *
 * SVG: frames are <g class="f"> elements, flat, in pre-order, each holding a
 * <title> (the tooltip: name, weight, share, count), a <rect> and a <text>
 * label; attribute data-p is the parent frame's index in that order (-1 for
 * the root "all"). Width is inclusive weight; children are sorted by name and
 * drawn above their parent. Children narrower than min_px pixels are merged
 * into one "[N small frames]" frame per parent (dropped when that too is
 * under a tenth of a pixel), which keeps a graph of 100k distinct frames
 * readable and the file small. The embedded script (no external resources)
 * zooms on click, resets, searches (a regular expression or plain text;
 * matches highlighted and their share of the whole shown, nested matches
 * counted once) and shows details on hover.
 *
 * Folded: one line per frame with a non-zero self weight, "a;b;c WEIGHT",
 * root to leaf without "all", in the same order (flamegraph.pl, inferno and
 * speedscope read it). ';' in a name becomes ':' and line breaks spaces.
 */
#ifndef SFTRACE_FLAMESVG_H
#define SFTRACE_FLAMESVG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SF_FTREE_ROOT 0u

struct sf_ftree;

struct sf_ftree *sf_ftree_new(void);
void sf_ftree_free(struct sf_ftree *t);
/* The child of parent named name (copied), made if absent. */
uint32_t sf_ftree_child(struct sf_ftree *t, uint32_t parent, const char *name);
/* Add self weight and count to a frame. */
void sf_ftree_add(struct sf_ftree *t, uint32_t node, uint64_t weight, uint64_t count);
size_t sf_ftree_size(const struct sf_ftree *t);
/* Inclusive weight of a frame (computed by the writers, or on demand). */
uint64_t sf_ftree_total(struct sf_ftree *t, uint32_t node);

enum sf_funit {
    SF_FUNIT_NS,    /* nanoseconds: shown as durations */
    SF_FUNIT_COUNT, /* plain numbers: calls, samples */
    SF_FUNIT_BYTES,
};

struct sf_flame_opts {
    const char *title;      /* default "Flame graph" */
    const char *subtitle;   /* a second line, or NULL */
    enum sf_funit unit;     /* of the weights */
    const char *count_name; /* what counts count ("calls"), NULL: not shown */
    int width;              /* pixels, default 1200 */
    double min_px;          /* merge frames narrower than this, default 1.0 */
};

/* 0, or -1 on a write error (errno set). */
int sf_flame_svg(FILE *f, struct sf_ftree *t, const struct sf_flame_opts *o);
int sf_flame_folded(FILE *f, struct sf_ftree *t);
/* Write t into the file path ("-": stdout) whole or not at all (fmt.h's
 * sf_outfile): folded stacks, or an SVG drawn with o. Unless quiet, a file
 * written is announced on stderr, "CMD: N frames -> PATH". 0, or -1 after
 * a message naming path. */
int sf_flame_write(const char *cmd, const char *path, struct sf_ftree *t, int folded,
                   const struct sf_flame_opts *o, int quiet);

#endif /* SFTRACE_FLAMESVG_H */
