/*
 * flamesvg.c - flame graphs: the frame tree, the interactive SVG writer and
 * the folded-stacks writer (see flamesvg.h).
 *
 * Layout: frames in pre-order, children sorted by name, x = parent's x plus
 * the weights of the siblings before it; the root ("all") at the bottom,
 * every level FRAME_H pixels above its parent. The walk is iterative: a
 * calling context can be thousands of frames deep.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flamesvg.h"
#include "fmt.h"
#include "logread.h"

#define NONE 0xffffffffu
#define FRAME_H 16
#define FONT_PX 12
#define CHAR_W 7.0 /* average width of a Verdana 12px character */
#define PAD 10
#define TOP 50 /* title, subtitle and the search box */
#define BOTTOM 30

struct fnode {
    char *name;
    uint64_t hash;
    uint32_t parent, first, next; /* first child, next sibling */
    uint64_t self, total, count;
};

struct sf_ftree {
    struct fnode *n;
    size_t nn, cap;
    struct sf_map kids; /* hash(parent, name) -> index + 1 of the first such child */
    int totals_ok;
};

static uint32_t new_node(struct sf_ftree *t, uint32_t parent, const char *name, uint64_t h)
{
    SF_GROW_FROM(t->n, t->nn, t->cap, 1024);
    struct fnode *x = &t->n[t->nn];
    memset(x, 0, sizeof *x);
    size_t len = strlen(name) + 1;
    x->name = memcpy(sf_xrealloc(NULL, len), name, len);
    x->hash = h;
    x->parent = parent;
    x->first = x->next = NONE;
    if (parent != NONE) {
        x->next = t->n[parent].first;
        t->n[parent].first = (uint32_t)t->nn;
    }
    t->totals_ok = 0;
    return (uint32_t)t->nn++;
}

struct sf_ftree *sf_ftree_new(void)
{
    struct sf_ftree *t = sf_xrealloc(NULL, sizeof *t);
    memset(t, 0, sizeof *t);
    new_node(t, NONE, "all", 0);
    return t;
}

void sf_ftree_free(struct sf_ftree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nn; i++)
        free(t->n[i].name);
    free(t->n);
    sf_map_free(&t->kids);
    free(t);
}

uint32_t sf_ftree_child(struct sf_ftree *t, uint32_t parent, const char *name)
{
    uint64_t h = sf_str_hash(name);
    uint64_t key = (h ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ull)) | 1;
    uint64_t *slot = sf_map_get(&t->kids, key, 1);
    if (*slot) {
        struct fnode *x = &t->n[*slot - 1];
        if (x->parent == parent && !strcmp(x->name, name))
            return (uint32_t)(*slot - 1);
        /* a hash collision: walk the siblings */
        for (uint32_t c = t->n[parent].first; c != NONE; c = t->n[c].next)
            if (t->n[c].hash == h && !strcmp(t->n[c].name, name))
                return c;
        return new_node(t, parent, name, h);
    }
    uint32_t c = new_node(t, parent, name, h);
    *slot = (uint64_t)c + 1;
    return c;
}

void sf_ftree_add(struct sf_ftree *t, uint32_t node, uint64_t weight, uint64_t count)
{
    t->n[node].self += weight;
    t->n[node].count += count;
    t->totals_ok = 0;
}

size_t sf_ftree_size(const struct sf_ftree *t)
{
    return t->nn;
}

/* Children were made after their parent: one backward sweep sums them. */
static void totals(struct sf_ftree *t)
{
    if (t->totals_ok)
        return;
    for (size_t i = 0; i < t->nn; i++)
        t->n[i].total = t->n[i].self;
    for (size_t i = t->nn; i-- > 1;)
        t->n[t->n[i].parent].total += t->n[i].total;
    t->totals_ok = 1;
}

uint64_t sf_ftree_total(struct sf_ftree *t, uint32_t node)
{
    totals(t);
    return t->n[node].total;
}

/* Children of every node in name order (an array per node, in one block). */
struct order {
    uint32_t *kids; /* children of node i: kids[start[i] .. start[i+1]) */
    uint32_t *start;
};

static const struct sf_ftree *sort_tree;
static int by_name(const void *a, const void *b)
{
    const struct fnode *x = &sort_tree->n[*(const uint32_t *)a];
    const struct fnode *y = &sort_tree->n[*(const uint32_t *)b];
    return strcmp(x->name, y->name);
}

static void make_order(const struct sf_ftree *t, struct order *o)
{
    o->start = sf_xrealloc(NULL, (t->nn + 1) * sizeof *o->start);
    o->kids = sf_xrealloc(NULL, t->nn * sizeof *o->kids);
    uint32_t k = 0;
    for (size_t i = 0; i < t->nn; i++) {
        o->start[i] = k;
        for (uint32_t c = t->n[i].first; c != NONE; c = t->n[c].next)
            o->kids[k++] = c;
    }
    o->start[t->nn] = k;
    sort_tree = t;
    for (size_t i = 0; i < t->nn; i++)
        if (o->start[i + 1] - o->start[i] > 1)
            qsort(o->kids + o->start[i], o->start[i + 1] - o->start[i], sizeof *o->kids, by_name);
}

static void free_order(struct order *o)
{
    free(o->kids);
    free(o->start);
}

/* ---- escaping -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* s escaped for XML text and attributes; invalid UTF-8 and control
 * characters XML 1.0 forbids become U+FFFD. At most max characters
 * (then ".."), 0 = all. */
static void xml_put(FILE *f, const char *s, size_t max)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (max && chars == max) {
            fputs("..", f);
            return;
        }
        chars++;
        int n = utf8_len(p);
        if (!n) {
            fputs("\xef\xbf\xbd", f);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, (size_t)n, f);
            p += n;
            continue;
        }
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if (*p < 0x20)
                fputs(*p == '\t' ? " " : "\xef\xbf\xbd", f);
            else
                fputc(*p, f);
        }
        p++;
    }
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void fmt_weight(char *buf, size_t n, uint64_t w, enum sf_funit u)
{
    if (u == SF_FUNIT_NS)
        sf_fmt_dur(buf, n, w);
    else if (u == SF_FUNIT_BYTES)
        sf_fmt_bytes(buf, n, w);
    else
        sf_fmt_grouped(buf, n, w);
}

/* A warm colour from the name, stable across runs (flamegraph.pl's "hot"). */
static void colour(const char *name, int *r, int *g, int *b)
{
    uint64_t h = sf_str_hash(name);
    *r = 205 + (int)(h % 50);
    *g = (int)((h >> 16) % 230);
    *b = (int)((h >> 32) % 55);
}

/* ---- SVG -------------------------------------------------------------------- */

static const char SCRIPT[] =
    "var svg, frames = [], details, matchedtxt, unzoombtn, searchbox, W, fullw, zoomed = -1;\n"
    "function init(evt) {\n"
    "  svg = document.documentElement;\n"
    "  details = document.getElementById('details').firstChild;\n"
    "  matchedtxt = document.getElementById('matched');\n"
    "  unzoombtn = document.getElementById('unzoom');\n"
    "  searchbox = document.getElementById('searchbox');\n"
    "  W = +svg.getAttribute('width');\n"
    "  var gs = document.querySelectorAll('#frames > g');\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i], r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "    var tip = g.querySelector('title').textContent;\n"
    "    frames.push({g: g, r: r, t: t, name: g.getAttribute('data-n'), tip: tip,\n"
    "      x: +r.getAttribute('x'), w: +r.getAttribute('width'), y: +r.getAttribute('y'),\n"
    "      p: +g.getAttribute('data-p'), fill: r.getAttribute('fill'), end: 0});\n"
    "  }\n"
    "  /* pre-order: a frame's subtree is the run of frames above it in y */\n"
    "  for (var i = frames.length - 1; i >= 0; i--) {\n"
    "    var e = i + 1;\n"
    "    while (e < frames.length && frames[e].y < frames[i].y) e = frames[e].end;\n"
    "    frames[i].end = e;\n"
    "  }\n"
    "  fullw = frames.length ? frames[0].w : 1;\n"
    "  for (var i = 0; i < frames.length; i++) (function (f, i) {\n"
    "    f.g.addEventListener('click', function (e) { zoom(i); e.stopPropagation(); });\n"
    "    f.g.addEventListener('mouseover', function () { details.nodeValue = f.tip.replace(/\\n/g, "
    "'  '); });\n"
    "    f.g.addEventListener('mouseout', function () { details.nodeValue = ' '; });\n"
    "  })(frames[i], i);\n"
    "  unzoombtn.addEventListener('click', unzoom);\n"
    "  if (searchbox) searchbox.addEventListener('input', function () { search(searchbox.value); "
    "});\n"
    "  window.addEventListener('keydown', function (e) {\n"
    "    if ((e.ctrlKey || e.metaKey) && e.key === 'f' && searchbox) { e.preventDefault(); "
    "searchbox.focus(); }\n"
    "    if (e.key === 'Escape') { if (searchbox) searchbox.value = ''; search(''); }\n"
    "  });\n"
    "}\n"
    "function label(f, w) {\n"
    "  var n = Math.floor((w - 6) / "
    "7"
    ");\n"
    "  if (n < 3) return '';\n"
    "  return f.name.length > n ? f.name.substring(0, n - 2) + '..' : f.name;\n"
    "}\n"
    "function place(f, x, w) {\n"
    "  f.r.setAttribute('x', x.toFixed(1)); f.r.setAttribute('width', Math.max(w, 0).toFixed(1));\n"
    "  f.t.setAttribute('x', (x + 3).toFixed(1)); f.t.textContent = label(f, w);\n"
    "}\n"
    "function zoom(i) {\n"
    "  var z = frames[i], scale = fullw / z.w, anc = {};\n"
    "  for (var a = z.p; a >= 0; a = frames[a].p) anc[a] = 1;\n"
    "  for (var j = 0; j < frames.length; j++) {\n"
    "    var f = frames[j];\n"
    "    if (j >= i && j < z.end) {\n"
    "      f.g.style.display = ''; f.g.style.opacity = '';\n"
    "      place(f, "
    "10"
    " + (f.x - z.x) * scale, f.w * scale);\n"
    "    } else if (anc[j]) {\n"
    "      f.g.style.display = ''; f.g.style.opacity = '0.6';\n"
    "      place(f, "
    "10"
    ", fullw);\n"
    "    } else {\n"
    "      f.g.style.display = 'none';\n"
    "    }\n"
    "  }\n"
    "  zoomed = i;\n"
    "  unzoombtn.style.opacity = '1';\n"
    "  if (searchbox && searchbox.value) search(searchbox.value);\n"
    "}\n"
    "function unzoom() {\n"
    "  for (var j = 0; j < frames.length; j++) {\n"
    "    var f = frames[j];\n"
    "    f.g.style.display = ''; f.g.style.opacity = '';\n"
    "    place(f, f.x, f.w);\n"
    "  }\n"
    "  zoomed = -1;\n"
    "  unzoombtn.style.opacity = '0';\n"
    "}\n"
    "function search(term) {\n"
    "  var re = null;\n"
    "  if (term) {\n"
    "    try { re = new RegExp(term); } catch (e) {\n"
    "      re = new RegExp(term.replace(/[.*+?^${}()|[\\]\\\\]/g, '\\\\$&'));\n"
    "    }\n"
    "  }\n"
    "  var iv = [];\n"
    "  for (var j = 0; j < frames.length; j++) {\n"
    "    var f = frames[j], hit = re && j > 0 && re.test(f.name);\n"
    "    f.r.setAttribute('fill', hit ? 'rgb(230,0,230)' : f.fill);\n"
    "    if (hit) iv.push([f.x, f.x + f.w]);\n"
    "  }\n"
    "  if (!re) { matchedtxt.textContent = ' '; return; }\n"
    "  /* nested matches lie inside their matching ancestors: count the union */\n"
    "  iv.sort(function (a, b) { return a[0] - b[0]; });\n"
    "  var sum = 0, lo = -1, hi = -1;\n"
    "  for (var k = 0; k < iv.length; k++) {\n"
    "    if (iv[k][0] > hi) { sum += hi - lo; lo = iv[k][0]; hi = iv[k][1]; }\n"
    "    else if (iv[k][1] > hi) hi = iv[k][1];\n"
    "  }\n"
    "  sum += hi - lo;\n"
    "  matchedtxt.textContent = 'Matched: ' + (100 * sum / fullw).toFixed(1) + '%' +\n"
    "    ' (' + iv.length + ' frames)';\n"
    "}\n";

/* One frame to draw (a tree node, or the merged small children of one). */
struct draw {
    uint32_t node;   /* NONE: merged */
    uint32_t parent; /* index in the draw list, NONE for the root */
    uint32_t depth, nmerged;
    double x, w;
    uint64_t weight, count;
};

struct dlist {
    struct draw *d;
    size_t nd, cap;
    uint32_t maxdepth;
};

static void push_draw(struct dlist *l, uint32_t node, uint32_t parent, uint32_t depth, double x,
                      double w, uint64_t weight, uint64_t count, uint32_t nmerged)
{
    SF_GROW_FROM(l->d, l->nd, l->cap, 1024);
    l->d[l->nd++] = (struct draw){node, parent, depth, nmerged, x, w, weight, count};
    if (depth > l->maxdepth)
        l->maxdepth = depth;
}

int sf_flame_svg(FILE *f, struct sf_ftree *t, const struct sf_flame_opts *opt)
{
    struct sf_flame_opts o = *opt;
    if (!o.title)
        o.title = "Flame graph";
    if (o.width <= 2 * PAD + 100)
        o.width = 1200;
    if (o.min_px <= 0)
        o.min_px = 1.0;
    totals(t);
    struct order ord;
    make_order(t, &ord);
    const double full = o.width - 2.0 * PAD;
    const uint64_t rootw = t->n[0].total;
    const double scale = rootw ? full / (double)rootw : 0;

    /* Lay out in pre-order with an explicit stack of (draw index, next child). */
    struct dlist dl = {0};
    struct st {
        uint32_t di, k;
        double x;
    } *stack = NULL;
    size_t ns = 0, caps = 0;
    push_draw(&dl, 0, NONE, 0, PAD, full, rootw, t->n[0].count, 0);
    if (caps == 0) {
        caps = 64;
        stack = sf_xrealloc(NULL, caps * sizeof *stack);
    }
    stack[ns++] = (struct st){0, ord.start[0], PAD};
    while (ns) {
        struct st *s = &stack[ns - 1];
        uint32_t node = dl.d[s->di].node;
        if (s->k == ord.start[node + 1]) {
            /* the small children, merged, after the others */
            uint64_t mw = 0, mc = 0;
            uint32_t nm = 0;
            for (uint32_t k = ord.start[node]; k < ord.start[node + 1]; k++) {
                const struct fnode *c = &t->n[ord.kids[k]];
                if (c->total && (double)c->total * scale < o.min_px) {
                    mw += c->total;
                    mc += c->count;
                    nm++;
                }
            }
            if (nm && (double)mw * scale >= 0.1)
                push_draw(&dl, NONE, s->di, dl.d[s->di].depth + 1, s->x, (double)mw * scale, mw, mc,
                          nm);
            ns--;
            continue;
        }
        uint32_t c = ord.kids[s->k++];
        const struct fnode *cn = &t->n[c];
        if (!cn->total || (double)cn->total * scale < o.min_px)
            continue;
        double w = (double)cn->total * scale;
        uint32_t parent = s->di;
        double x = s->x;
        s->x += w;
        push_draw(&dl, c, parent, dl.d[parent].depth + 1, x, w, cn->total, cn->count, 0);
        if (ns == caps) {
            caps *= 2;
            stack = sf_xrealloc(stack, caps * sizeof *stack);
        }
        stack[ns++] = (struct st){(uint32_t)(dl.nd - 1), ord.start[c], x};
    }
    free(stack);
    /* The merged frames were appended after their parent's other children,
     * so pre-order still holds: a parent's subtree is contiguous. */

    int height = TOP + (int)(dl.maxdepth + 1) * FRAME_H + BOTTOM;
    fprintf(f,
            "<?xml version=\"1.0\" standalone=\"no\"?>\n"
            "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "xmlns=\"http://www.w3.org/2000/svg\" onload=\"init(evt)\">\n",
            o.width, height, o.width, height);
    fprintf(f, "<style type=\"text/css\">\n"
               "text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }\n"
               "#title { font-size: 17px; text-anchor: middle; }\n"
               "#subtitle { text-anchor: middle; fill: #555; }\n"
               "#frames > g { cursor: pointer; }\n"
               "#frames > g:hover > rect { stroke: #000; stroke-width: 0.5; }\n"
               "#frames text { pointer-events: none; }\n"
               "#unzoom { cursor: pointer; opacity: 0; }\n"
               "</style>\n");
    fprintf(f, "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n", SCRIPT);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f0\"/>\n", o.width,
            height);
    fprintf(f, "<text id=\"title\" x=\"%d\" y=\"22\">", o.width / 2);
    xml_put(f, o.title, 0);
    fprintf(f, "</text>\n");
    if (o.subtitle) {
        fprintf(f, "<text id=\"subtitle\" x=\"%d\" y=\"40\">", o.width / 2);
        xml_put(f, o.subtitle, 0);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<text id=\"unzoom\" x=\"%d\" y=\"22\">Reset zoom</text>\n", PAD);
    fprintf(f,
            "<foreignObject x=\"%d\" y=\"6\" width=\"230\" height=\"26\">"
            "<input xmlns=\"http://www.w3.org/1999/xhtml\" id=\"searchbox\" type=\"search\" "
            "placeholder=\"search (regex), Ctrl-F\" style=\"width:220px;font-size:12px\"/>"
            "</foreignObject>\n",
            o.width - PAD - 230);
    fprintf(f, "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"> </text>\n",
            o.width - PAD, height - 10);
    fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", PAD, height - 10);
    fprintf(f, "<g id=\"frames\">\n");
    char wbuf[SF_FMT_LEN], cbuf[SF_FMT_LEN], nbuf[64];
    for (size_t i = 0; i < dl.nd; i++) {
        const struct draw *x = &dl.d[i];
        const char *name;
        if (x->node == NONE) {
            snprintf(nbuf, sizeof nbuf, "[%u small frames]", x->nmerged);
            name = nbuf;
        } else {
            name = t->n[x->node].name;
        }
        double y = height - BOTTOM - (double)(x->depth + 1) * FRAME_H;
        int r, g, b;
        if (x->node == NONE)
            r = g = b = 200;
        else if (i == 0)
            r = 230, g = 200, b = 160;
        else
            colour(name, &r, &g, &b);
        fmt_weight(wbuf, sizeof wbuf, x->weight, o.unit);
        fprintf(f, "<g data-p=\"%d\" data-n=\"", x->parent == NONE ? -1 : (int)x->parent);
        xml_put(f, name, 0);
        fprintf(f, "\"><title>");
        xml_put(f, name, 0);
        fprintf(f, "\n%s, %.2f%%", wbuf, rootw ? 100.0 * (double)x->weight / (double)rootw : 0.0);
        if (o.count_name)
            fprintf(f, ", %s %s", sf_fmt_grouped(cbuf, sizeof cbuf, x->count), o.count_name);
        fprintf(f,
                "</title><rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" rx=\"2\" "
                "fill=\"rgb(%d,%d,%d)\"/><text x=\"%.1f\" y=\"%.0f\">",
                x->x, y, x->w, FRAME_H - 1, r, g, b, x->x + 3, y + FRAME_H - 4.5);
        int fit = (int)floor((x->w - 6) / CHAR_W);
        if (fit >= 3) {
            size_t len = utf8_chars(name);
            xml_put(f, name, len > (size_t)fit ? (size_t)fit - 2 : 0);
        }
        fprintf(f, "</text></g>\n");
    }
    fprintf(f, "</g>\n</svg>\n");
    free(dl.d);
    free_order(&ord);
    return ferror(f) ? -1 : 0;
}

/* ---- folded ----------------------------------------------------------------- */

static void folded_name(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == ';' ? ':' : *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

int sf_flame_folded(FILE *f, struct sf_ftree *t)
{
    totals(t);
    struct order ord;
    make_order(t, &ord);
    /* iterative pre-order; path[i] is the node at depth i+1 */
    struct st {
        uint32_t node, k;
    } *stack = sf_xrealloc(NULL, 64 * sizeof *stack);
    size_t ns = 0, caps = 64;
    stack[ns++] = (struct st){0, ord.start[0]};
    while (ns) {
        struct st *s = &stack[ns - 1];
        if (s->k == ord.start[s->node + 1]) {
            ns--;
            continue;
        }
        uint32_t c = ord.kids[s->k++];
        if (t->n[c].self) {
            for (size_t i = 1; i < ns; i++) {
                folded_name(f, t->n[stack[i].node].name);
                fputc(';', f);
            }
            folded_name(f, t->n[c].name);
            fprintf(f, " %" PRIu64 "\n", t->n[c].self);
        }
        if (ns == caps) {
            caps *= 2;
            stack = sf_xrealloc(stack, caps * sizeof *stack);
        }
        stack[ns++] = (struct st){c, ord.start[c]};
    }
    free(stack);
    free_order(&ord);
    return ferror(f) ? -1 : 0;
}

/* ---- into a file ------------------------------------------------------------------ */

int sf_flame_write(const char *cmd, const char *path, struct sf_ftree *t, int folded,
                   const struct sf_flame_opts *o, int quiet)
{
    struct sf_outfile of;
    if (sf_outfile_open(&of, cmd, path) != 0)
        return -1;
    FILE *f = of.f;
    int wr = folded ? sf_flame_folded(f, t) : sf_flame_svg(f, t, o);
    wr = sf_outfile_close(&of, cmd, wr);
    if (wr == 0 && !quiet && f != stdout)
        fprintf(stderr, "%s: %zu frames -> %s\n", cmd, sf_ftree_size(t) - 1, path);
    return wr;
}
