/*
 * graph.c - `sftrace graph`: the calling-context tree as indented text.
 *
 * Every distinct chain of calls from an outermost call down is one line:
 * its total (inclusive) time, share of all, self time and calls, children
 * sorted by total. With a REGEX, the tree is the merged tree beneath every
 * call of the matching functions (the outermost such call of each nest: a
 * recursive match is not counted twice). -D N shows N levels below the top;
 * --min-percent P hides chains under P% of the whole (their time stays in
 * their parent's total).
 *
 * The tree is built by lib/cctree.h from the call engine's stream, one tree
 * per worker thread (lib/runcalls.h), merged by function name at the end.
 * Memory: tree nodes + threads x depth.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "cctree.h"
#include "cmds.h"
#include "fmt.h"
#include "runcalls.h"

#define CMD "sftrace graph"

static int g_by_thread;

static uint32_t *sorted_kids(const struct sf_cctree *t, uint32_t i, size_t *n)
{
    size_t k = 0;
    for (uint32_t c = t->n[i].first; c != SF_CC_NONE; c = t->n[c].next)
        k++;
    uint32_t *v = malloc((k + 1) * sizeof *v);
    if (!v) {
        fprintf(stderr, CMD ": out of memory\n");
        exit(1);
    }
    *n = sf_cctree_children(t, i, v);
    return v;
}

static void print_tree(const struct sf_run *run, struct sf_cctree *t, int max_depth, double min_pct,
                       int json)
{
    int wall = run->follow; /* a wall column beside the summed thread time */
    uint64_t all = 0;
    for (uint32_t c = t->n[SF_CC_ROOT].first; c != SF_CC_NONE; c = t->n[c].next) {
        const struct sf_ccnode *x = &t->n[c];
        if (x->label) {
            for (uint32_t d = x->first; d != SF_CC_NONE; d = t->n[d].next)
                all += t->n[d].total_ns;
        } else {
            all += x->total_ns;
        }
    }
    /* label nodes get the totals of their calls */
    for (uint32_t c = t->n[SF_CC_ROOT].first; c != SF_CC_NONE; c = t->n[c].next)
        if (t->n[c].label) {
            uint64_t s = 0, n = 0;
            for (uint32_t d = t->n[c].first; d != SF_CC_NONE; d = t->n[d].next) {
                s += t->n[d].total_ns;
                n += t->n[d].calls;
            }
            t->n[c].total_ns = s;
            t->n[c].calls = n;
        }
    static const char *const h[] = {"total", "total%", "self", "calls", "function"};
    static const char *const hw[] = {"total", "total%", "wall", "self", "calls", "function"};
    struct sf_table *tab = wall ? sf_table_new(6, hw, "rrrrrl") : sf_table_new(5, h, "rrrrl");
    /* JSON: the shown nodes in pre-order, each with its depth and the index
     * of its parent in the list (-1 for the top level) */
    int64_t *jidx = NULL; /* per stack level: list index of the node that opened it */
    size_t jn = 0;
    if (json) {
        jidx = malloc((t->nn + 1) * sizeof *jidx);
        if (!jidx) {
            fprintf(stderr, CMD ": out of memory\n");
            exit(1);
        }
        printf("\"all_ns\": %" PRIu64 ", \"nodes\": [", all);
    }
    /* iterative pre-order: each stack entry holds a node's sorted children */
    struct ent {
        uint32_t *kids;
        size_t n, k;
    } *st = NULL;
    size_t ns = 0, cap = 0;
    uint64_t hidden = 0;
    size_t nk;
    uint32_t *kids = sorted_kids(t, SF_CC_ROOT, &nk);
    cap = 64;
    st = malloc(cap * sizeof *st);
    if (!st) {
        fprintf(stderr, CMD ": out of memory\n");
        exit(1);
    }
    st[ns++] = (struct ent){kids, nk, 0};
    char a[SF_FMT_LEN], b[SF_FMT_LEN], cs[SF_FMT_LEN], pc[16];
    char *name = NULL;
    size_t namecap = 0;
    while (ns) {
        struct ent *e = &st[ns - 1];
        if (e->k == e->n) {
            free(e->kids);
            ns--;
            continue;
        }
        uint32_t i = e->kids[e->k++];
        const struct sf_ccnode *x = &t->n[i];
        double p = all ? 100.0 * (double)x->total_ns / (double)all : 0;
        /* depth below the top level (a label counts as none) */
        int lvl = (int)ns - 1;
        int labels = g_by_thread ? 1 : 0;
        if ((min_pct > 0 && p < min_pct && !x->label) ||
            (max_depth >= 0 && lvl - labels > max_depth)) {
            hidden++;
            continue;
        }
        const char *fn = x->label ? x->label : sf_run_name(run, x->func);
        if (json) {
            printf("%s\n  {\"depth\": %d, \"parent\": %" PRId64 ", \"%s\": ", jn ? "," : "", lvl,
                   lvl ? jidx[lvl - 1] : (int64_t)-1, x->label ? "thread" : "name");
            sf_json_str(stdout, fn);
            printf(", \"calls\": %" PRIu64 ", \"total_ns\": %" PRIu64 ", \"self_ns\": %" PRIu64
                   ", \"unfinished\": %" PRIu64,
                   x->calls, x->total_ns, x->label ? 0 : x->self_ns, x->unfinished);
            if (wall)
                printf(", \"wall_ns\": %" PRIu64, x->wall_ns);
            putchar('}');
            jidx[lvl] = (int64_t)jn++;
        }
        size_t need = 2 * ns + strlen(fn) + 64;
        if (need > namecap) {
            namecap = need;
            name = realloc(name, namecap);
            if (!name) {
                fprintf(stderr, CMD ": out of memory\n");
                exit(1);
            }
        }
        int off = 0;
        for (size_t k = 1; k < ns; k++)
            off += sprintf(name + off, "  ");
        if (x->label)
            off += sprintf(name + off, "[thread %s]", fn);
        else
            off += sprintf(name + off, "%s", fn);
        if (x->unfinished)
            sprintf(name + off, "  (%" PRIu64 " unfinished)", x->unfinished);
        snprintf(pc, sizeof pc, "%.1f%%", p);
        const char *cells[5] = {sf_fmt_dur(a, sizeof a, x->total_ns), pc,
                                x->label ? "" : sf_fmt_dur(b, sizeof b, x->self_ns),
                                sf_fmt_grouped(cs, sizeof cs, x->calls), name};
        if (wall) {
            char wl[SF_FMT_LEN];
            const char *cw[6] = {cells[0], pc,       sf_fmt_dur(wl, sizeof wl, x->wall_ns),
                                 cells[2], cells[3], name};
            sf_table_add(tab, cw);
        } else {
            sf_table_add(tab, cells);
        }
        if (x->first != SF_CC_NONE) {
            size_t n;
            uint32_t *ck = sorted_kids(t, i, &n);
            if (ns == cap) {
                cap *= 2;
                st = realloc(st, cap * sizeof *st);
                if (!st) {
                    fprintf(stderr, CMD ": out of memory\n");
                    exit(1);
                }
            }
            st[ns++] = (struct ent){ck, n, 0};
        }
    }
    free(st);
    free(name);
    if (json) {
        printf("\n], \"hidden\": %" PRIu64 "}\n", hidden);
        free(jidx);
        sf_table_free(tab);
        return;
    }
    sf_table_print(tab, stdout, "");
    sf_table_free(tab);
    if (hidden)
        printf("(%" PRIu64 " call chain%s not shown: -D / --min-percent)\n", hidden,
               hidden == 1 ? "" : "s");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sftrace graph [options] LOG [REGEX]\n"
            "\n"
            "The calling-context tree as indented text: each chain of calls with its total\n"
            "(inclusive) time, share of all, self time and calls; children by total.\n"
            "With REGEX (PCRE2, searched in demangled names), the merged tree beneath\n"
            "every call of the matching functions.\n"
            "\n"
            "  -D, --depth N          show N levels below the top (0: the top only); in\n"
            "                         graph this replaces the selection's -D: the\n"
            "                         time beneath stays in the totals shown\n"
            "      --min-percent P    hide chains under P%% of the whole\n"
            "      --by WHAT          none (default) or thread: a tree per thread\n"
            "      --format FMT       table (default) or json (nodes in pre-order with\n"
            "                         depth and parent index, times in ns)\n"
            "%s"
            "  -h, --help             this help\n",
            SF_RUN_HELP);
}

enum { OPT_MINPCT = 0x5500, OPT_BY, OPT_FORMAT };
static const char *const by_choices[] = {"none", "thread", NULL};
static const char *const fmt_choices[] = {"table", "json", NULL};

int cmd_graph(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"min-percent", required_argument, NULL, OPT_MINPCT},
        {"by", required_argument, NULL, OPT_BY},
        {"format", required_argument, NULL, OPT_FORMAT},
        SF_RUN_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct sf_run run;
    sf_run_init(&run, "graph");
    int rc = 2, c, max_depth = -1, json = 0;
    double min_pct = 0;
    g_by_thread = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h" SF_RUN_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'D': {
            long v;
            if (sf_opt_long("graph", "-D", optarg, 0, 1000000, &v) < 0)
                goto out;
            max_depth = (int)v;
            break;
        }
        case OPT_MINPCT:
            if (sf_opt_double("graph", "--min-percent", optarg, 0, 100, &min_pct) < 0)
                goto out;
            break;
        case OPT_BY:
            if ((g_by_thread = sf_opt_choice("graph", "--by", optarg, by_choices)) < 0)
                goto out;
            break;
        case OPT_FORMAT:
            if ((json = sf_opt_choice("graph", "--format", optarg, fmt_choices)) < 0)
                goto out;
            break;
        default:
            if (sf_run_getopt(&run, c, optarg, usage) < 0)
                goto out;
        }
    }
    if (sf_operands("graph", argc, argv, optind, 1, 2, "LOG [REGEX]") < 0) {
        usage(stderr);
        goto out;
    }
    const char *regex = optind == argc - 2 ? argv[optind + 1] : NULL;
    if (regex && sf_focus_check(&run, regex) < 0)
        goto out; /* a bad REGEX is a usage error (2), like a bad -F */
    rc = 1;
    struct sf_calls_stats st;
    struct sf_cctree t;
    if (sf_run_cctree(&run, argv[optind], g_by_thread, regex, &t, &st) < 0) {
        sf_cctree_free(&t);
        goto out;
    }
    if (json) {
        printf("{\"log\": ");
        sf_json_str(stdout, argv[optind]);
        printf(", \"events\": %" PRIu64 ", \"calls\": %" PRIu64 ", \"regex\": ", st.events,
               st.calls);
        if (regex)
            sf_json_str(stdout, regex);
        else
            printf("null");
        printf(", ");
    } else {
        sf_run_header(stdout, argv[optind], &st);
        if (regex)
            printf("# beneath every call of functions matching '%s'\n", regex);
        if (run.follow)
            printf("# --follow-jobs: total = summed thread time: the calls' own time, plus the\n"
                   "# jobs and tasks made inside them that other threads ran, minus those they\n"
                   "# ran for other contexts (can exceed the wall time); wall = the calls' own\n"
                   "# time on their threads\n");
    }
    print_tree(&run, &t, max_depth, min_pct, json);
    sf_cctree_free(&t);
    rc = run.damaged ? SF_EXIT_DAMAGED : 0; /* the tree has everything readable */
    if (sf_stdout_flush(CMD) != 0)
        rc = 1;
out:
    sf_run_free(&run);
    return rc;
}
