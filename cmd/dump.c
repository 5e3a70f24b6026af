/*
 * dump.c - `sftrace dump`: print every event of a log, one a line.
 *
 * The log is read through the call engine (lib/calls.h), which also applies
 * the selection options (select.h) and says which call an exit ended: the
 * duration column.
 *
 * Output, tab-separated, after a header line starting with '#':
 *
 *     time_ns  pid  tid  kind  function  [extra columns]
 *
 * time_ns is CLOCK_MONOTONIC nanoseconds since the log was created (the file
 * header's create_mono_ns), signed. kind and extra columns:
 *     entry, exit, tailcall          function = demangled name, or 0x<ELF
 *                                    address when it has none, or fid:N when
 *                                    no object of the process holds id N
 *     args                           function of the entry just before;
 *                                    extra: one 0x hex column per argument
 *     ret                            function of the exit just before;
 *                                    extra: the return value, 0x hex
 *     alloc, free, realloc-alloc,    function "-"; extra: size, align
 *     realloc-free                   (decimal), ptr (0x hex)
 *     lost                           function "-"; extra: records dropped
 *     key                            the function whose entry (exit, for
 *                                    ret) recorded it; extra: arg0..arg5 or
 *                                    ret, the key's word(s) in 0x hex,
 *                                    then flow-in N / flow-out N when it
 *                                    pairs (flows.h)
 * With --lines, entry, exit and tailcall lines get one more column: the
 * function's source "file:line" (from DWARF), or "-". Exit and tailcall
 * lines end with the duration of the call they end, ns (the engine's
 * times: clamped so that they never decrease within a thread), or "-" for
 * an exit with no entry. With --time-range, the calls open at the window
 * start (known from their exits inside it) have no entry line; their exits'
 * durations count from the window start.
 *
 * Order: threads' events appear in the file order of their chunks, which is
 * time order for each thread. With --sorted, in one time order across all
 * threads: a streaming k-way merge. Each thread's lines are queued (they are
 * in time order already). Chunks of different threads overlap in time (a
 * thread's chunk is written when its buffer fills or it exits, so a quiet
 * thread, or one that starts late, shows its events late in the file), so
 * the merge keeps a look-ahead window: the earliest queued line is written
 * only when more than SORT_AHEAD bytes of lines are queued and its time is
 * at most the watermark (the lowest latest-read time of the threads that
 * have not exited: their later chunks only hold later events), or when more
 * than SORT_MAX bytes are queued. So memory is bounded by SORT_MAX, and the
 * order is exact when no thread's events arrive more than SORT_AHEAD bytes
 * of output late; a line that comes later with an earlier time than one
 * written is counted and reported ("N lines out of order").
 *
 * With --calls, one line per call instead, when it ends (in end order within
 * a thread), tab-separated after a header line:
 *     start_ns  pid  tid  depth  duration_ns  self_ns  id  parent_id  flags  function
 * depth 0 = outermost kept call; self = duration - time in kept callees;
 * parent_id 0 = none; flags a combination of u (unfinished), t (left by a
 * tail call), c (clipped by the time range), w (unwound), or "-".
 *
 * On a bad log it prints the events of every good chunk before the bad one,
 * then the error, and exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"
#include "flows.h"
#include "cmds.h"
#include "fmt.h"
#include "logread.h"
#include "progress.h"
#include "select.h"
#include "symbols.h"
#include "xalloc.h"

#define OUT_SIZE (1u << 20)

static char *out;
static size_t outlen;
static int out_failed;

static void out_flush(void)
{
    size_t done = 0;
    while (done < outlen && !out_failed) {
        ssize_t r = write(STDOUT_FILENO, out + done, outlen - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "sftrace dump: write error: %s\n", strerror(errno));
            out_failed = 1;
            break;
        }
        done += (size_t)r;
    }
    outlen = 0;
}

static inline void out_room(size_t n)
{
    if (outlen + n > OUT_SIZE)
        out_flush();
}

#define put_lit(s) put_mem(s, sizeof(s) - 1)

static inline void put_mem(const char *s, size_t n)
{
    out_room(n);
    memcpy(out + outlen, s, n);
    outlen += n;
}

static inline void put_str(const char *s)
{
    size_t n = strlen(s);
    if (n > OUT_SIZE / 2) { /* absurdly long name: write it through */
        out_flush();
        fwrite(s, 1, n, stdout);
        fflush(stdout);
        return;
    }
    out_room(n);
    memcpy(out + outlen, s, n);
    outlen += n;
}

static inline void put_char(char c)
{
    out_room(1);
    out[outlen++] = c;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

static inline void put_u64(uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = digit_pairs[d + 1];
        *--p = digit_pairs[d];
    }
    if (v >= 10) {
        *--p = digit_pairs[v * 2 + 1];
        *--p = digit_pairs[v * 2];
    } else {
        *--p = (char)('0' + v);
    }
    put_mem(p, (size_t)(tmp + sizeof tmp - p));
}

static inline void put_i64(int64_t v)
{
    if (v < 0) {
        put_char('-');
        put_u64(-(uint64_t)v);
    } else {
        put_u64((uint64_t)v);
    }
}

static inline void put_hex(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    out_room((size_t)n + 2);
    out[outlen++] = '0';
    out[outlen++] = 'x';
    while (n)
        out[outlen++] = tmp[--n];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace dump [-h] [-q] [-l] [--sorted] [--calls] [-s FILE]... [--no-flows]\n"
               "                    [--flows FILE]... [selection] LOG\n"
               "\n"
               "Print every event of LOG, one a line, tab-separated:\n"
               "  time_ns pid tid kind function [extra columns]\n"
               "time_ns counts from the creation of the log. kind is entry, exit,\n"
               "tailcall, args, ret, key, alloc, free, realloc-alloc, realloc-free or\n"
               "lost. Exit and tailcall lines end with the call's duration (ns); key\n"
               "lines (rayon jobs, tokio tasks) with flow-in N / flow-out N when paired.\n"
               "\n"
               "  -s, --symbols FILE\n"
               "              read symbols from FILE for the object with its build-id\n"
               "              (or its basename when none was recorded); repeatable\n"
               "  -l, --lines add a column to function events: the source file:line\n"
               "      --sorted one time order across threads (default: each thread's\n"
               "              events in time order, threads in the order of the log)\n"
               "      --calls one line per call: start_ns pid tid depth duration_ns\n"
               "              self_ns id parent_id flags function\n"
               "      --no-flows no flow-in / flow-out columns on key lines\n"
               "      --flows FILE also the producer/consumer pairs FILE declares\n"
               "              (docs/filter-format.md, Flow rules); repeatable\n"
               "  -q, --quiet no progress line\n"
               "  -h, --help  this help\n"
               "\n" SF_SELECT_HELP);
}

static const char *alloc_kind(uint32_t arg)
{
    const char *k = sf_alloc_kind_name(arg);
    return k ? k : "alloc?";
}

/* ---- --sorted: per-thread queues and the merge ------------------------------ */

#define SORT_AHEAD (64u << 20) /* bytes of lines held back at least */
#define SORT_MAX (256u << 20)  /* bytes of lines queued at most */
#define SORT_KEEP (1u << 20)   /* a queue's buffer kept when it empties */

struct line {
    int64_t ns;
    uint32_t len;
};

struct queue {
    char *buf; /* struct line + text, back to back */
    size_t head, tail, cap;
    int64_t last; /* latest time read */
    int live;     /* the thread may still produce lines */
    uint32_t pid;
};

struct dump {
    struct sf_calls *eng;
    struct sf_log *log;
    struct sf_progress *pr;
    uint64_t t0;
    int lines;
    char **src; /* per function: "file:line", made on first use */
    uint32_t nsrc;
    /* --sorted */
    int sorted;
    struct queue **qs;
    size_t nq, capq;
    size_t queued;
    int64_t written; /* time of the last line written */
    uint64_t out_of_order;
    struct sf_flows *flows; /* flow endpoints (NULL: --no-flows) */
};

static const char *fname(struct dump *dp, const struct sf_image *img, uint32_t fid)
{
    if (fid == SF_FID_NONE)
        return "-";
    return sf_calls_func(dp->eng, sf_calls_lookup(dp->eng, img, fid))->name;
}

static const char *src_line_of(struct dump *dp, uint32_t g)
{
    SF_GROW_ZERO(dp->src, g, dp->nsrc, 256);
    if (!dp->src[g]) {
        const struct sf_func *f = sf_calls_func(dp->eng, g);
        char *str = NULL;
        if (f->file && asprintf(&str, "%s:%u", f->file, f->line) < 0)
            str = NULL;
        dp->src[g] = str ? str : "-";
    }
    return dp->src[g];
}

static const char *src_line(struct dump *dp, const struct sf_image *img, uint32_t fid)
{
    return src_line_of(dp, sf_calls_lookup(dp->eng, img, fid));
}

static void q_write(struct dump *dp, struct queue *q)
{
    struct line l;
    memcpy(&l, q->buf + q->head, sizeof l);
    put_mem(q->buf + q->head + sizeof l, l.len);
    q->head += sizeof l + l.len;
    dp->queued -= sizeof l + l.len;
    if (l.ns < dp->written)
        dp->out_of_order++;
    else
        dp->written = l.ns;
    if (q->head == q->tail) {
        q->head = q->tail = 0;
        /* an emptied queue gives its memory back: a thread's lines are
         * held back while it is busy, and with many threads the queues'
         * peaks, kept, added up to several times SORT_MAX */
        if (q->cap > SORT_KEEP) {
            free(q->buf);
            q->buf = NULL;
            q->cap = 0;
        }
    }
}

/* Write queued lines in time order while more than SORT_AHEAD bytes are
 * queued and the earliest is at most the watermark (or, past SORT_MAX,
 * whatever its time); with all, everything. */
static void merge(struct dump *dp, int all)
{
    while (all || dp->queued > SORT_AHEAD) {
        int64_t wm = INT64_MAX;
        struct queue *best = NULL;
        int64_t bt = INT64_MAX;
        for (size_t i = 0; i < dp->nq; i++) {
            struct queue *q = dp->qs[i];
            if (q->live && q->last < wm)
                wm = q->last;
            if (q->head < q->tail) {
                struct line l;
                memcpy(&l, q->buf + q->head, sizeof l);
                if (l.ns < bt) {
                    bt = l.ns;
                    best = q;
                }
            }
        }
        if (!best || (!all && bt > wm && dp->queued <= SORT_MAX))
            return;
        q_write(dp, best);
    }
}

/* Put the line just formatted at out[start..outlen) on t's queue. */
static void enqueue(struct dump *dp, struct sf_cthread *t, size_t start, int64_t ns)
{
    struct queue *q = t->user;
    if (!q) {
        q = sf_xcalloc(1, sizeof *q);
        q->last = INT64_MIN;
        q->pid = t->pid;
        t->user = q;
        SF_GROW(dp->qs, dp->nq, dp->capq);
        dp->qs[dp->nq++] = q;
    }
    q->live = 1;
    struct line l = {ns, (uint32_t)(outlen - start)};
    size_t need = sizeof l + l.len;
    if (q->tail + need > q->cap) {
        if (q->head) { /* compact */
            memmove(q->buf, q->buf + q->head, q->tail - q->head);
            q->tail -= q->head;
            q->head = 0;
        }
        while (q->tail + need > q->cap)
            q->cap = q->cap ? 2 * q->cap : 65536;
        q->buf = sf_xrealloc(q->buf, q->cap);
    }
    memcpy(q->buf + q->tail, &l, sizeof l);
    memcpy(q->buf + q->tail + sizeof l, out + start, l.len);
    q->tail += need;
    dp->queued += need;
    if (ns > q->last)
        q->last = ns;
    outlen = start;
}

/* ---- the engine's callbacks ------------------------------------------------- */

static void cb_event(void *ctx, struct sf_cthread *t, const struct sf_event *ev, int64_t raw_ns,
                     const struct sf_call *c)
{
    struct dump *dp = ctx;
    const struct sf_image *img = t->img;
    if (dp->sorted && outlen > OUT_SIZE / 2)
        out_flush();
    size_t start = outlen;
    int64_t ns = (int64_t)((uint64_t)raw_ns - dp->t0);
    put_i64(ns);
    put_char('\t');
    put_u64(t->pid);
    put_char('\t');
    put_u64(t->tid);
    put_char('\t');
    switch (ev->kind) {
    case SF_KIND_ENTRY:
    case SF_KIND_EXIT:
    case SF_KIND_TAIL:
        if (ev->kind == SF_KIND_ENTRY)
            put_lit("entry\t");
        else if (ev->kind == SF_KIND_EXIT)
            put_lit("exit\t");
        else
            put_lit("tailcall\t");
        put_str(fname(dp, img, ev->fid));
        if (dp->lines) {
            put_char('\t');
            put_str(src_line(dp, img, ev->fid));
        }
        if (ev->kind != SF_KIND_ENTRY) {
            put_char('\t');
            if (c)
                put_u64(c->end_ns - c->start_ns);
            else
                put_char('-');
        }
        break;
    default:
        switch (ev->sub) {
        case SF_EXT_ALLOC:
            put_str(alloc_kind(ev->arg));
            put_lit("\t-\t");
            put_u64(ev->v[0]);
            put_char('\t');
            put_u64(ev->v[1]);
            put_char('\t');
            put_hex(ev->v[2]);
            break;
        case SF_EXT_ARGS:
            put_lit("args\t");
            put_str(fname(dp, img, ev->fid));
            for (uint32_t i = 0; i < ev->arg && i < 6; i++) {
                put_char('\t');
                put_hex(ev->v[i]);
            }
            break;
        case SF_EXT_RET:
            put_lit("ret\t");
            put_str(fname(dp, img, ev->fid));
            put_char('\t');
            put_hex(ev->v[0]);
            break;
        case SF_EXT_LOST:
            put_lit("lost\t-\t");
            put_u64(ev->v[0]);
            break;
        case SF_EXT_KEY:
            put_lit("key\t");
            put_str(fname(dp, img, ev->fid));
            put_char('\t');
            if (ev->arg == SF_KEY_RET) {
                put_lit("ret");
            } else {
                put_lit("arg");
                put_char((char)('0' + ev->arg));
            }
            for (uint32_t i = 0; i < ev->nwords && i < 2; i++) {
                put_char('\t');
                put_hex(ev->v[i]);
            }
            break;
        }
        /* flow endpoints of a key record: flow-in N (this call runs the
         * job, polls the task), flow-out N (the job or task goes on) */
        struct sf_flow_ends fe;
        if (sf_flows_at(dp->flows, ev, &fe)) {
            if (fe.in) {
                put_lit("\tflow-in ");
                put_u64(fe.in);
            }
            if (fe.out) {
                put_lit("\tflow-out ");
                put_u64(fe.out);
            }
        }
    }
    put_char('\n');
    if (dp->sorted)
        enqueue(dp, t, start, ns);
}

static void cb_end(void *ctx, struct sf_cthread *t, const struct sf_call *c)
{
    struct dump *dp = ctx;
    if (dp->sorted && outlen > OUT_SIZE / 2)
        out_flush();
    size_t start = outlen;
    int64_t ns = (int64_t)(c->start_ns - dp->t0);
    put_i64(ns);
    const uint64_t cols[] = {t->pid,     t->tid, c->depth,    c->end_ns - c->start_ns,
                             c->self_ns, c->id,  c->parent_id};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        put_char('\t');
        put_u64(cols[i]);
    }
    put_char('\t');
    if (!(c->flags & (SF_CALL_UNFINISHED | SF_CALL_TAIL | SF_CALL_CLIPPED | SF_CALL_UNWOUND)))
        put_char('-');
    if (c->flags & SF_CALL_UNFINISHED)
        put_char('u');
    if (c->flags & SF_CALL_TAIL)
        put_char('t');
    if (c->flags & SF_CALL_CLIPPED)
        put_char('c');
    if (c->flags & SF_CALL_UNWOUND)
        put_char('w');
    put_char('\t');
    put_str(sf_calls_func(dp->eng, c->func)->name);
    if (dp->lines) {
        put_char('\t');
        put_str(src_line_of(dp, c->func));
    }
    put_char('\n');
    if (dp->sorted)
        enqueue(dp, t, start, ns);
}

static void cb_thread_exit(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    struct dump *dp = ctx;
    (void)ns;
    struct queue *q = t->user;
    if (dp->sorted && q)
        q->live = 0;
}

static void cb_process_end(void *ctx, const struct sf_image *img, const struct sf_end *end,
                           uint64_t ns)
{
    struct dump *dp = ctx;
    (void)end, (void)ns;
    if (!dp->sorted)
        return;
    /* its threads write no more (a reused pid's are live again when they do) */
    for (size_t i = 0; i < dp->nq; i++)
        if (dp->qs[i]->pid == img->pid)
            dp->qs[i]->live = 0;
}

static int cb_tick(void *ctx)
{
    struct dump *dp = ctx;
    if (dp->sorted)
        merge(dp, 0);
    struct sf_calls_stats st;
    sf_calls_stats(dp->eng, &st);
    sf_progress(dp->pr, sf_log_offset(dp->log), st.events, 0);
    return out_failed;
}

static void cb_warning(void *ctx, const char *msg)
{
    struct dump *dp = ctx;
    sf_progress_clear(dp->pr);
    fprintf(stderr, "sftrace: warning: %s\n", msg);
}

/* A damage warning from the reader (it skips the damage and reads on):
 * after the lines before it. */
static void on_damage(void *ctx, const char *msg)
{
    struct dump *dp = ctx;
    out_flush();
    sf_progress_clear(dp->pr);
    fprintf(stderr, "sftrace dump: %s\n", msg);
}

enum { OPT_SORTED = 0x100, OPT_CALLS, OPT_NO_FLOWS, OPT_FLOWS };

int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"lines", no_argument, NULL, 'l'},
        {"symbols", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"sorted", no_argument, NULL, OPT_SORTED},
        {"calls", no_argument, NULL, OPT_CALLS},
        {"no-flows", no_argument, NULL, OPT_NO_FLOWS},
        {"flows", required_argument, NULL, OPT_FLOWS},
        SF_SELECT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int lines = 0, quiet = 0, sorted = 0, calls = 0, no_flows = 0, rc = 2;
    struct sf_select sel;
    sf_select_init(&sel);
    struct sf_syms *syms = sf_syms_new();
    char err[SF_ERRLEN + 256];
    const char **flowfiles = NULL; /* --flows FILE */
    size_t nflowfiles = 0;
    struct sf_flows *userfl = NULL; /* the flow rules, until the prepass takes them */
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hlqs:" SF_SELECT_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'l':
            lines = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case OPT_SORTED:
            sorted = 1;
            break;
        case OPT_CALLS:
            calls = 1;
            break;
        case OPT_NO_FLOWS:
            no_flows = 1;
            break;
        case OPT_FLOWS:
            sf_flows_addfile(&flowfiles, &nflowfiles, optarg);
            break;
        case 's':
            if (sf_syms_add_file(syms, optarg, err, sizeof err) < 0) {
                fprintf(stderr, "sftrace dump: %s\n", err);
                goto out;
            }
            break;
        default:
            if (sf_select_getopt(&sel, "dump", c, optarg, usage) < 0)
                goto out;
        }
    }
    if (sf_operands("dump", argc, argv, optind, 1, 1, "LOG") < 0) {
        usage(stderr);
        goto out;
    }
    /* the user's flow rules, checked before the log is read */
    if (!no_flows && !calls && !(userfl = sf_flows_with("dump", flowfiles, nflowfiles)))
        goto out;
    if (lines && sel.no_lines) {
        fprintf(stderr, "sftrace dump: --lines and --no-lines contradict each other\n");
        goto out;
    }
    rc = 1;
    const char *path = argv[optind];
    struct sf_log *log = sf_log_open(path, err, sizeof err);
    if (!log) {
        fprintf(stderr, "sftrace dump: %s\n", err);
        goto out;
    }
    if (!lines)
        sel.no_lines = 1; /* no column: no DWARF to read */
    out = malloc(OUT_SIZE);
    if (!out) {
        fprintf(stderr, "sftrace dump: out of memory\n");
        sf_log_close(log);
        goto out;
    }
    struct sf_progress pr;
    sf_progress_init(&pr, "dump", !quiet);
    pr.size = sf_log_file_size(log);
    struct dump dp = {
        .log = log, .pr = &pr, .lines = lines, .sorted = sorted, .written = INT64_MIN};
    dp.t0 = sf_log_header(log)->create_mono_ns;
    sf_log_set_warn(log, on_damage, &dp);
    if (calls)
        put_lit("# start_ns\tpid\ttid\tdepth\tduration_ns\tself_ns\tid\tparent_id\tflags\t"
                "function\n");
    else
        put_lit("# time_ns\tpid\ttid\tkind\tfunction\textra...\n");

    static const struct sf_calls_ops ev_ops = {
        .event = cb_event,
        .thread_exit = cb_thread_exit,
        .process_end = cb_process_end,
        .warning = cb_warning,
    };
    static const struct sf_calls_ops call_ops = {
        .end = cb_end,
        .thread_exit = cb_thread_exit,
        .process_end = cb_process_end,
        .warning = cb_warning,
    };
    sf_syms_set_quiet(syms, 1);
    if (!no_flows && !calls) {
        dp.flows = userfl;
        userfl = NULL;
        /* a log the prepass cannot read: the main pass says why */
        if (sf_flows_scan(dp.flows, path, &sel, err, sizeof err) < 0 || !sf_flows_count(dp.flows)) {
            sf_flows_free(dp.flows);
            dp.flows = NULL;
        }
    }
    dp.eng = sf_calls_new(log, syms, &sel, calls ? &call_ops : &ev_ops, &dp);
    sf_calls_set_tick(dp.eng, cb_tick, &dp);
    int r = sf_calls_run(dp.eng);
    if (sorted)
        merge(&dp, 1);
    sf_progress_clear(&pr);
    out_flush();
    rc = 0;
    if (out_failed) {
        rc = 1;
    } else if (r < 0) {
        fflush(stdout);
        fprintf(stderr, "sftrace dump: %s\n", sf_calls_error(dp.eng));
        rc = 1;
    } else if (sf_log_summary(log, err, sizeof err)) {
        fprintf(stderr, "sftrace dump: %s\n", err);
        rc = SF_EXIT_DAMAGED; /* everything readable was printed */
    }
    if (dp.out_of_order)
        fprintf(stderr,
                "sftrace dump: --sorted: %" PRIu64
                " lines out of order (events that came more than %u MB of output late)\n",
                dp.out_of_order, SORT_AHEAD >> 20);
    for (uint32_t i = 0; i < dp.nsrc; i++)
        if (dp.src[i] && strcmp(dp.src[i], "-"))
            free(dp.src[i]);
    free(dp.src);
    for (size_t i = 0; i < dp.nq; i++) {
        free(dp.qs[i]->buf);
        free(dp.qs[i]);
    }
    free(dp.qs);
    sf_calls_free(dp.eng);
    sf_flows_free(dp.flows);
    free(out);
    out = NULL;
    sf_log_close(log);
out:
    free(flowfiles);
    sf_flows_free(userfl);
    sf_syms_free(syms);
    sf_select_free(&sel);
    return rc;
}
