/*
 * select.c - parsing of the selection options (select.h), shared by every
 * command that reads a log; the call engine (calls.c) applies them.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "select.h"

struct sf_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    struct sf_regex *next;
};

void sf_select_init(struct sf_select *s)
{
    memset(s, 0, sizeof *s);
    s->max_depth = -1;
    s->range_start = SF_TIME_OPEN_START;
    s->range_end = SF_TIME_OPEN_END;
}

static void regex_free(struct sf_regex *r)
{
    while (r) {
        struct sf_regex *n = r->next;
        pcre2_match_data_free(r->md);
        pcre2_code_free(r->code);
        free(r);
        r = n;
    }
}

void sf_select_free(struct sf_select *s)
{
    free(s->pids);
    free(s->tids);
    regex_free(s->thread_name);
    regex_free(s->funcs);
    regex_free(s->notrace);
    sf_select_init(s);
}

static int add_regex(struct sf_regex **list, const char *opt, const char *pat, char *err,
                     size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "%s '%s': bad regular expression at offset %zu: %s", opt, pat,
                 (size_t)off, (const char *)msg);
        return -1;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* a speed-up if available */
    struct sf_regex *r = calloc(1, sizeof *r);
    if (!r || !(r->md = pcre2_match_data_create_from_pattern(re, NULL))) {
        free(r);
        pcre2_code_free(re);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->code = re;
    struct sf_regex **p = list;
    while (*p)
        p = &(*p)->next;
    *p = r;
    return 0;
}

int sf_regex_match(const struct sf_regex *r, const char *name)
{
    for (; r; r = r->next)
        if (pcre2_match(r->code, (PCRE2_SPTR)name, PCRE2_ZERO_TERMINATED, 0, 0, r->md, NULL) >= 0)
            return 1;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* "1,2,30": decimal u32s, no empty items. Appends to *v (a repeated option
 * adds to the list). */
static int parse_list(const char *opt, const char *arg, uint32_t **v, size_t *n, char *err,
                      size_t errlen)
{
    const char *p = arg;
    if (!*p) {
        snprintf(err, errlen, "%s: empty list (want ids separated by commas, as 12,345)", opt);
        return -1;
    }
    for (;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') {
            snprintf(err, errlen, "%s '%s': bad list at offset %zu (want ids separated by commas)",
                     opt, arg, (size_t)(p - arg));
            return -1;
        }
        unsigned long long x = strtoull(p, &end, 10);
        if (errno || x > UINT32_MAX) {
            snprintf(err, errlen, "%s '%s': id at offset %zu is too large", opt, arg,
                     (size_t)(p - arg));
            return -1;
        }
        uint32_t *nv = realloc(*v, (*n + 1) * sizeof **v);
        if (!nv) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *v = nv;
        nv[(*n)++] = (uint32_t)x;
        p = end;
        if (!*p)
            break;
        if (*p != ',') {
            snprintf(err, errlen, "%s '%s': bad list at offset %zu (want ids separated by commas)",
                     opt, arg, (size_t)(p - arg));
            return -1;
        }
        p++;
    }
    qsort(*v, *n, sizeof **v, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!k || (*v)[k - 1] != (*v)[i])
            (*v)[k++] = (*v)[i];
    *n = k;
    return 0;
}

int sf_parse_duration(const char *s, int64_t *ns, char *err, size_t errlen)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    if (!((*p >= '0' && *p <= '9') || *p == '.')) {
        snprintf(err, errlen,
                 "'%s': not a duration (want a number and a unit: 1.5s, 200ms, 30us, 12ns)", s);
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || !isfinite(v) || v < 0) {
        snprintf(err, errlen,
                 "'%s': not a duration (want a number and a unit: 1.5s, 200ms, 30us, 12ns)", s);
        return -1;
    }
    double mul;
    if (!*end || !strcmp(end, "ns"))
        mul = 1;
    else if (!strcmp(end, "us"))
        mul = 1e3;
    else if (!strcmp(end, "ms"))
        mul = 1e6;
    else if (!strcmp(end, "s"))
        mul = 1e9;
    else {
        snprintf(err, errlen, "'%s': unknown unit '%s' (ns, us, ms or s)", s, end);
        return -1;
    }
    double x = v * mul;
    if (x >= 9.2e18) {
        snprintf(err, errlen, "'%s': too long a duration", s);
        return -1;
    }
    *ns = (int64_t)(x + 0.5);
    return 0;
}

static int parse_range(struct sf_select *s, const char *arg, char *err, size_t errlen)
{
    const char *comma = strchr(arg, ',');
    if (!comma || strchr(comma + 1, ',')) {
        snprintf(err, errlen, "--time-range '%s': want START,END (either may be empty), as 1.5s,2s",
                 arg);
        return -1;
    }
    char a[64], b[64], e2[256];
    size_t la = (size_t)(comma - arg), lb = strlen(comma + 1);
    if (la >= sizeof a || lb >= sizeof b) {
        snprintf(err, errlen, "--time-range '%s': too long", arg);
        return -1;
    }
    memcpy(a, arg, la);
    a[la] = 0;
    memcpy(b, comma + 1, lb + 1);
    int64_t st = SF_TIME_OPEN_START, en = SF_TIME_OPEN_END;
    if (la && sf_parse_duration(a, &st, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "--time-range start %s", e2);
        return -1;
    }
    if (lb && sf_parse_duration(b, &en, e2, sizeof e2) < 0) {
        snprintf(err, errlen, "--time-range end %s", e2);
        return -1;
    }
    if (!la && !lb) {
        snprintf(err, errlen, "--time-range '%s': empty range (give a start, an end or both)", arg);
        return -1;
    }
    if (la && lb && en <= st) {
        snprintf(err, errlen, "--time-range '%s': the end is not after the start", arg);
        return -1;
    }
    s->has_range = 1;
    s->range_start = st;
    s->range_end = en;
    return 0;
}

int sf_select_option(struct sf_select *s, int c, const char *arg, char *err, size_t errlen)
{
    switch (c) {
    case SF_OPT_PID:
        return parse_list("--pid", arg, &s->pids, &s->npids, err, errlen) < 0 ? -1 : 1;
    case SF_OPT_TID:
        return parse_list("--tid", arg, &s->tids, &s->ntids, err, errlen) < 0 ? -1 : 1;
    case SF_OPT_THREAD_NAME:
        return add_regex(&s->thread_name, "--thread-name", arg, err, errlen) < 0 ? -1 : 1;
    case 'F':
        return add_regex(&s->funcs, "-F", arg, err, errlen) < 0 ? -1 : 1;
    case 'N':
        return add_regex(&s->notrace, "-N", arg, err, errlen) < 0 ? -1 : 1;
    case SF_OPT_TIME_RANGE:
        return parse_range(s, arg, err, errlen) < 0 ? -1 : 1;
    case 'D': {
        char *end;
        errno = 0;
        long v = strtol(arg, &end, 10);
        if (errno || !*arg || *end || v < 0 || v > 1000000) {
            snprintf(err, errlen, "-D '%s': want a depth, 0 or more", arg);
            return -1;
        }
        s->max_depth = (int32_t)v;
        return 1;
    }
    case SF_OPT_MIN_DURATION: {
        int64_t v;
        char e2[256];
        if (sf_parse_duration(arg, &v, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "--min-duration %s", e2);
            return -1;
        }
        s->min_duration_ns = (uint64_t)v;
        return 1;
    }
    case SF_OPT_NO_LINES:
        s->no_lines = 1;
        return 1;
    case SF_OPT_SNAPSHOT: {
        char *end;
        errno = 0;
        unsigned long v = strtoul(arg, &end, 10);
        if (errno || end == arg || *end || v == 0 || v > UINT32_MAX || arg[0] == '-') {
            snprintf(err, errlen, "--snapshot %s: a snapshot number, 1, 2, ...", arg);
            return -1;
        }
        s->snapshot = (uint32_t)v;
        return 1;
    }
    }
    return 0;
}

int sf_select_has_call_filter(const struct sf_select *s)
{
    return s && (s->funcs || s->notrace || s->max_depth >= 0 || s->min_duration_ns);
}

static int in_list(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (v[m] < x)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < n && v[lo] == x;
}

int sf_select_pid(const struct sf_select *s, uint32_t pid)
{
    return !s || !s->npids || in_list(s->pids, s->npids, pid);
}

int sf_select_tid(const struct sf_select *s, uint32_t tid)
{
    return !s || !s->ntids || in_list(s->tids, s->ntids, tid);
}

int sf_select_thread_name(const struct sf_select *s, const char *name)
{
    return !s || !s->thread_name || sf_regex_match(s->thread_name, name);
}
