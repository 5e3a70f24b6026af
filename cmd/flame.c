/*
 * flame.c - `sftrace flame`: a flame graph of a log.
 *
 * The calling contexts of all threads merged (lib/cctree.h, built from the
 * call engine's stream in one or two worker threads and merged by function
 * name), turned into a frame tree (lib/flamesvg.h) whose widths are
 * inclusive time, or with --weight calls the number of calls in each
 * subtree; written as one self-contained interactive SVG, or as folded
 * stacks ("a;b;c 1234") for flamegraph.pl, inferno and speedscope. With
 * --by thread each thread is a frame of its own above the root, so each
 * thread's graph is one click (zoom) away.
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
#include "runcalls.h"

#define CMD "sftrace flame"

static int g_by_thread;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sftrace flame [options] LOG\n"
            "\n"
            "A flame graph: every calling context of the log, merged; a frame's width is\n"
            "its inclusive time (or, with --weight calls, the calls beneath it). The SVG\n"
            "is self-contained and interactive: click to zoom, search box (regex; Ctrl-F)\n"
            "highlights matches and shows their share, tooltips give name, time, calls\n"
            "and percent. Frames narrower than a pixel are merged.\n"
            "\n"
            "  -o, --output FILE      output (default flame.svg, or flame.folded with\n"
            "                         --format folded; '-' = stdout)\n"
            "      --format FMT       svg (default) or folded (collapsed stacks\n"
            "                         'a;b;c WEIGHT' for flamegraph.pl, inferno, speedscope)\n"
            "      --weight WHAT      time (default, ns) or calls\n"
            "      --by WHAT          none (default) or thread: a frame per thread\n"
            "      --title TEXT       the SVG's title\n"
            "      --width PX         the SVG's width (default 1200)\n"
            "      --min-width PX     merge frames narrower than PX pixels (default 1)\n"
            "%s"
            "  -h, --help             this help\n",
            SF_RUN_HELP);
}

enum { OPT_FORMAT = 0x5600, OPT_WEIGHT, OPT_BY, OPT_TITLE, OPT_WIDTH, OPT_MINW };
static const char *const fmt_choices[] = {"svg", "folded", NULL};
static const char *const weight_choices[] = {"time", "calls", NULL};
static const char *const by_choices[] = {"none", "thread", NULL};

int cmd_flame(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"weight", required_argument, NULL, OPT_WEIGHT},
        {"by", required_argument, NULL, OPT_BY},
        {"title", required_argument, NULL, OPT_TITLE},
        {"width", required_argument, NULL, OPT_WIDTH},
        {"min-width", required_argument, NULL, OPT_MINW},
        SF_RUN_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct sf_run run;
    sf_run_init(&run, "flame");
    const char *out = NULL, *title = NULL;
    int folded = 0, calls = 0, width = 1200, rc = 2, c;
    double min_w = 1.0;
    g_by_thread = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:" SF_RUN_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'o':
            out = optarg;
            break;
        case OPT_FORMAT:
            if ((folded = sf_opt_choice("flame", "--format", optarg, fmt_choices)) < 0)
                goto out;
            break;
        case OPT_WEIGHT:
            if ((calls = sf_opt_choice("flame", "--weight", optarg, weight_choices)) < 0)
                goto out;
            break;
        case OPT_BY:
            if ((g_by_thread = sf_opt_choice("flame", "--by", optarg, by_choices)) < 0)
                goto out;
            break;
        case OPT_TITLE:
            title = optarg;
            break;
        case OPT_WIDTH: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 200 || v > 100000) {
                fprintf(stderr, CMD ": --width wants 200..100000 pixels, not '%s'\n", optarg);
                goto out;
            }
            width = (int)v;
            break;
        }
        case OPT_MINW: {
            char *end;
            double v = strtod(optarg, &end);
            if (!*optarg || *end || !(v > 0 && v <= 100)) {
                fprintf(stderr, CMD ": --min-width wants pixels, more than 0, not '%s'\n", optarg);
                goto out;
            }
            min_w = v;
            break;
        }
        default:
            if (sf_run_getopt(&run, c, optarg, usage) < 0)
                goto out;
        }
    }
    if (sf_operands("flame", argc, argv, optind, 1, 1, "LOG") < 0) {
        usage(stderr);
        goto out;
    }
    const char *logpath = argv[optind];
    if (!out)
        out = folded ? "flame.folded" : "flame.svg";
    rc = 1;
    struct sf_calls_stats st;
    struct sf_cctree t;
    if (sf_run_cctree(&run, logpath, g_by_thread, NULL, &t, &st) < 0) {
        sf_cctree_free(&t);
        goto out;
    }

    /* the frame tree: same shape, names instead of functions */
    struct sf_ftree *ft = sf_ftree_new();
    uint32_t *to = malloc(t.nn * sizeof *to);
    if (!to) {
        fprintf(stderr, CMD ": out of memory\n");
        exit(1);
    }
    to[0] = SF_FTREE_ROOT;
    for (size_t i = 1; i < t.nn; i++) {
        const struct sf_ccnode *x = &t.n[i];
        to[i] = sf_ftree_child(ft, to[x->parent], x->label ? x->label : sf_run_name(&run, x->func));
        sf_ftree_add(ft, to[i], calls ? x->calls : x->self_ns, x->calls);
    }
    free(to);
    sf_cctree_free(&t);

    char sub[320], a[SF_FMT_LEN], b[SF_FMT_LEN], d[SF_FMT_LEN];
    snprintf(sub, sizeof sub, "%s events, %s calls, %" PRIu64 " threads, %s; width = %s",
             sf_fmt_grouped(a, sizeof a, st.events), sf_fmt_grouped(b, sizeof b, st.calls),
             st.threads,
             sf_fmt_dur(d, sizeof d, st.last_ns > st.first_ns ? st.last_ns - st.first_ns : 0),
             calls        ? "calls"
             : run.follow ? "summed thread time (--follow-jobs: jobs count where they were made)"
                          : "inclusive time");
    char ttl[512];
    snprintf(ttl, sizeof ttl, "%s", title ? title : logpath);
    struct sf_flame_opts o = {
        .title = ttl,
        .subtitle = sub,
        .unit = calls ? SF_FUNIT_COUNT : SF_FUNIT_NS,
        .count_name = "calls",
        .width = width,
        .min_px = min_w,
    };
    int wr = sf_flame_write(CMD, out, ft, folded, &o, run.quiet);
    sf_ftree_free(ft);
    if (wr != 0)
        goto out;
    rc = run.damaged ? SF_EXIT_DAMAGED : 0; /* the graph has everything readable */
out:
    sf_run_free(&run);
    return rc;
}
