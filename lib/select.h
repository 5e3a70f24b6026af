/*
 * select.h - the selection options every reading command shares (dump,
 * convert, report, graph, flame, ...), parsed once here.
 *
 *   --pid LIST            processes (comma-separated decimal ids)
 *   --tid LIST            threads
 *   --thread-name REGEX   threads any of whose names matches (PCRE2)
 *   --time-range S,E      [S, E] relative to the log's first event; each side
 *                         a number with a unit ns (default), us, ms, s; either
 *                         side may be empty ("2ms," or ",1.5s")
 *   -F REGEX              keep only calls made inside a call of a matching
 *                         function, that call included (repeatable)
 *   -N REGEX              drop matching functions and everything beneath
 *                         them (repeatable)
 *   -D N                  at most N levels below the outermost kept call
 *                         (-D 0: the outermost kept calls only)
 *   --min-duration DUR    drop calls shorter than DUR (units as above); their
 *                         time stays in their parent's self time
 *   --no-lines            do not read source lines (faster on big binaries)
 * Regexes match demangled function names and are searched (not anchored):
 * use ^...$ to match a whole name.
 *
 * Use in a command's getopt_long loop:
 *
 *     static const struct option longopts[] = { ..., SF_SELECT_LONGOPTS, {0}};
 *     getopt_long(argc, argv, "ho:" SF_SELECT_SHORTOPTS, longopts, NULL)
 *     ...
 *     default: {
 *         int r = sf_select_option(&sel, c, optarg, err, sizeof err);
 *         if (r < 0) { fprintf(stderr, "sftrace CMD: %s\n", err); return 2; }
 *         if (r == 0) { usage(stderr); return 2; }
 *     }
 *
 * and print SF_SELECT_HELP in the usage text. The call engine (calls.h)
 * applies the selection; sf_select_thread is for code that looks at raw
 * events (dump).
 */
#ifndef SFTRACE_SELECT_H
#define SFTRACE_SELECT_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

/* getopt values of the long-only options (short ones are their letter). */
enum {
    SF_OPT_PID = 0x5300,
    SF_OPT_TID,
    SF_OPT_THREAD_NAME,
    SF_OPT_TIME_RANGE,
    SF_OPT_MIN_DURATION,
    SF_OPT_NO_LINES,
    SF_OPT_SNAPSHOT,
};

#define SF_SELECT_SHORTOPTS "F:N:D:"
#define SF_SELECT_LONGOPTS                                                                         \
    {"pid", required_argument, NULL, SF_OPT_PID}, {"tid", required_argument, NULL, SF_OPT_TID},    \
        {"thread-name", required_argument, NULL, SF_OPT_THREAD_NAME},                              \
        {"time-range", required_argument, NULL, SF_OPT_TIME_RANGE},                                \
        {"min-duration", required_argument, NULL, SF_OPT_MIN_DURATION},                            \
        {"no-lines", no_argument, NULL, SF_OPT_NO_LINES},                                          \
        {"snapshot", required_argument, NULL, SF_OPT_SNAPSHOT},                                    \
        {"function", required_argument, NULL, 'F'}, {"notrace", required_argument, NULL, 'N'},     \
    {                                                                                              \
        "depth", required_argument, NULL, 'D'                                                      \
    }

#define SF_SELECT_HELP                                                                             \
    "selection (dump, convert, report, graph, flame, memory):\n"                                   \
    "      --pid LIST         only these processes (comma-separated)\n"                            \
    "      --tid LIST         only these threads\n"                                                \
    "      --thread-name RE   only threads with a name matching RE\n"                              \
    "      --time-range S,E   only [S, E] after the log's first event (units ns, us,\n"            \
    "                         ms, s; a side may be empty); calls cut by it are\n"                  \
    "                         shown from S / to E and marked \"clipped\"\n"                        \
    "  -F, --function RE      only calls inside a call of a function matching RE,\n"               \
    "                         that call included (repeatable)\n"                                   \
    "  -N, --notrace RE       drop functions matching RE and all beneath (repeatable)\n"           \
    "  -D, --depth N          at most N levels below the outermost kept call\n"                    \
    "      --min-duration D   drop calls shorter than D (their time is their parent's)\n"          \
    "      --no-lines         do not read source lines\n"                                          \
    "      --snapshot N       a log of record --ring: snapshot N of each process\n"                \
    "                         (1, 2, ...; default: the last; sftrace info lists them)\n"           \
    "Regexes (PCRE2) are searched in demangled names: ^name$ matches one name.\n"

#define SF_TIME_OPEN_START INT64_MIN
#define SF_TIME_OPEN_END INT64_MAX

struct sf_regex; /* a compiled PCRE2 pattern list */

struct sf_select {
    uint32_t *pids, *tids; /* sorted, deduplicated */
    size_t npids, ntids;
    struct sf_regex *thread_name; /* NULL: any */
    int has_range;
    int64_t range_start, range_end; /* ns after the first event, or SF_TIME_OPEN_* */
    struct sf_regex *funcs;         /* -F, NULL: none */
    struct sf_regex *notrace;       /* -N, NULL: none */
    int32_t max_depth;              /* -D, -1: no limit */
    uint64_t min_duration_ns;       /* 0: none */
    int no_lines;
    uint32_t snapshot; /* --snapshot N; 0: the last of each image (logread.h) */
};

void sf_select_init(struct sf_select *s);
void sf_select_free(struct sf_select *s);
/* Handle getopt value c with argument arg: 1 consumed, 0 not a selection
 * option, -1 a bad argument (one line in err, naming the option). */
int sf_select_option(struct sf_select *s, int c, const char *arg, char *err, size_t errlen);

/* 1 if any call-level selection (-F, -N, -D, --min-duration) is set. */
int sf_select_has_call_filter(const struct sf_select *s);
/* 1 if pid / tid pass --pid / --tid. */
int sf_select_pid(const struct sf_select *s, uint32_t pid);
int sf_select_tid(const struct sf_select *s, uint32_t tid);
/* 1 if a thread name matches --thread-name (always 1 without it). */
int sf_select_thread_name(const struct sf_select *s, const char *name);
/* Regex lists: 1 if name matches any pattern of the list (0 for NULL). */
int sf_regex_match(const struct sf_regex *r, const char *name);

/* A duration: a decimal number (fraction allowed) with an optional unit
 * ns, us, ms or s. 0 and *ns set, or -1 and a message in err. */
int sf_parse_duration(const char *s, int64_t *ns, char *err, size_t errlen);

#endif /* SFTRACE_SELECT_H */
