/*
 * dump.c - `sftrace dump`: print every event of a log, one a line.
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
 * With --lines, entry, exit and tailcall lines get one more column: the
 * function's source "file:line" (from DWARF), or "-".
 * Threads' events appear in the file order of their chunks, which is time
 * order for each thread. On a damaged log it prints the events of every good
 * chunk, a warning for each bad one (lib/logread.h), a summary, and exits
 * SF_EXIT_DAMAGED (3); on a read error it stops there and exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "logread.h"
#include "symbols.h"

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
    fprintf(f, "usage: sftrace dump [-h] [-l] [-s FILE]... [--pid PID] [--tid TID] LOG\n"
               "\n"
               "Print every event of LOG, one a line, tab-separated:\n"
               "  time_ns pid tid kind function [extra columns]\n"
               "time_ns counts from the creation of the log. kind is entry, exit,\n"
               "tailcall, args, ret, alloc, free, realloc-alloc, realloc-free or lost.\n"
               "\n"
               "  -s FILE     read symbols from FILE for the object with its build-id\n"
               "              (or its basename when none was recorded); repeatable\n"
               "  -l, --lines add a column to function events: the source file:line\n"
               "  --pid PID   only events of process PID\n"
               "  --tid TID   only events of thread TID\n"
               "  -h, --help  this help\n");
}

static int parse_u32(const char *s, uint32_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || !*s || *end || x > UINT32_MAX)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

/* Names of functions: the object of the last lookup is tried first. */
struct namer {
    struct sf_syms *syms;
    const struct sf_image *img;
    struct sf_obj *last;
    char buf[32];
};

static const char *func_name(struct namer *n, const struct sf_image *img, uint32_t fid)
{
    if (fid == SF_FID_NONE)
        return "-";
    struct sf_obj *o = n->last;
    uint32_t idx;
    if (img == n->img && o && fid - o->fid_base < o->nfuncs) {
        idx = fid - o->fid_base;
        if (o->names && o->names[idx])
            return o->names[idx];
    } else if (!(o = sf_image_obj(img, fid, &idx))) {
        snprintf(n->buf, sizeof n->buf, "fid:%u", fid);
        return n->buf;
    }
    n->img = img;
    n->last = o;
    return sf_syms_obj_name(n->syms, o, idx);
}

/* "file:line" of a function, or "-"; made once per function. */
static const char *src_line(struct sf_syms *syms, struct sf_map *cache, const struct sf_image *img,
                            uint32_t fid)
{
    uint32_t idx;
    struct sf_obj *o = sf_image_obj(img, fid, &idx);
    if (!o)
        return "-";
    uint64_t *slot = sf_map_get(cache, (uint64_t)(uintptr_t)&o->func_addr[idx], 1);
    if (!*slot) {
        const char *file;
        int line;
        char *str = NULL;
        if (sf_syms_obj_srcline(syms, o, idx, &file, &line) &&
            asprintf(&str, "%s:%d", file, line) < 0)
            str = NULL;
        *slot = (uint64_t)(uintptr_t)(str ? str : "-");
    }
    return (const char *)(uintptr_t)*slot;
}

/* A damage warning: after the events before it, on stderr. */
static void on_warn(void *arg, const char *msg)
{
    (void)arg;
    out_flush();
    fprintf(stderr, "sftrace dump: %s\n", msg);
}

static const char *alloc_kind(uint32_t arg)
{
    const char *k = sf_alloc_kind_name(arg);
    return k ? k : "alloc?";
}

int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"lines", no_argument, NULL, 'l'},
        {"pid", required_argument, NULL, 'p'},
        {"tid", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    uint32_t want_pid = 0, want_tid = 0;
    int by_pid = 0, by_tid = 0, lines = 0;
    struct sf_syms *syms = sf_syms_new();
    char err[SF_ERRLEN];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hls:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            sf_syms_free(syms);
            return 0;
        case 'l':
            lines = 1;
            break;
        case 's':
            if (sf_syms_add_file(syms, optarg, err, sizeof err) < 0) {
                fprintf(stderr, "sftrace dump: %s\n", err);
                sf_syms_free(syms);
                return 2;
            }
            break;
        case 'p':
        case 't':
            if (parse_u32(optarg, c == 'p' ? &want_pid : &want_tid) < 0) {
                fprintf(stderr, "sftrace dump: bad %s '%s'\n", c == 'p' ? "--pid" : "--tid",
                        optarg);
                sf_syms_free(syms);
                return 2;
            }
            *(c == 'p' ? &by_pid : &by_tid) = 1;
            break;
        default:
            usage(stderr);
            sf_syms_free(syms);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        sf_syms_free(syms);
        return 2;
    }
    const char *path = argv[optind];
    struct sf_log *log = sf_log_open(path, err, sizeof err);
    if (!log) {
        fprintf(stderr, "sftrace dump: %s\n", err);
        sf_syms_free(syms);
        return 1;
    }
    sf_log_set_warn(log, on_warn, NULL);
    sf_log_prescan(log); /* on a pipe it fails: the fit then grows as we read */
    uint64_t t0 = sf_log_header(log)->create_mono_ns;

    out = malloc(OUT_SIZE);
    if (!out) {
        fprintf(stderr, "sftrace dump: out of memory\n");
        return 1;
    }
    put_lit("# time_ns\tpid\ttid\tkind\tfunction\textra...\n");

    struct sf_map last = {0};    /* (image id, tid) -> last function id + 1 */
    struct sf_map srcline = {0}; /* &func_addr[idx] -> "file:line" */
    struct sf_chunkv ch;
    int r;
    struct namer namer = {.syms = syms};
    while ((r = sf_log_next(log, &ch)) > 0 && !out_failed) {
        if (ch.h->type == SF_CHUNK_OBJECT)
            namer.last = NULL; /* it may replace the cached object */
        if (ch.h->type != SF_CHUNK_EVENTS)
            continue;
        const struct sf_image *img = ch.img;
        uint32_t pid = ch.h->pid, tid = ch.u.events->tid;
        if ((by_pid && pid != want_pid) || (by_tid && tid != want_tid))
            continue;
        uint64_t key = (uint64_t)img->id << 32 | tid;
        uint64_t *lf = sf_map_get(&last, key, 0);
        struct sf_evdec d;
        struct sf_event ev;
        sf_evdec_init(&d, &ch);
        if (lf)
            d.last_fid = (uint32_t)(*lf - 1);
        while (sf_evdec_next(&d, &ev)) {
            int64_t ns = (int64_t)((uint64_t)sf_log_ns(log, img, ev.ts) - t0);
            put_i64(ns);
            put_char('\t');
            put_u64(pid);
            put_char('\t');
            put_u64(tid);
            put_char('\t');
            switch (ev.kind) {
            case SF_KIND_ENTRY:
            case SF_KIND_EXIT:
            case SF_KIND_TAIL:
                if (ev.kind == SF_KIND_ENTRY)
                    put_lit("entry\t");
                else if (ev.kind == SF_KIND_EXIT)
                    put_lit("exit\t");
                else
                    put_lit("tailcall\t");
                put_str(func_name(&namer, img, ev.fid));
                if (lines) {
                    put_char('\t');
                    put_str(src_line(syms, &srcline, img, ev.fid));
                }
                break;
            default:
                switch (ev.sub) {
                case SF_EXT_ALLOC:
                    put_str(alloc_kind(ev.arg));
                    put_lit("\t-\t");
                    put_u64(ev.v[0]);
                    put_char('\t');
                    put_u64(ev.v[1]);
                    put_char('\t');
                    put_hex(ev.v[2]);
                    break;
                case SF_EXT_ARGS:
                    put_lit("args\t");
                    put_str(func_name(&namer, img, ev.fid));
                    for (uint32_t i = 0; i < ev.arg; i++) {
                        put_char('\t');
                        put_hex(ev.v[i]);
                    }
                    break;
                case SF_EXT_RET:
                    put_lit("ret\t");
                    put_str(func_name(&namer, img, ev.fid));
                    put_char('\t');
                    put_hex(ev.v[0]);
                    break;
                case SF_EXT_LOST:
                    put_lit("lost\t-\t");
                    put_u64(ev.v[0]);
                    break;
                }
            }
            put_char('\n');
        }
        if (d.last_fid != SF_FID_NONE)
            *sf_map_get(&last, key, 1) = (uint64_t)d.last_fid + 1;
    }
    out_flush();
    int rc = 0;
    if (out_failed) {
        rc = 1;
    } else if (r < 0) {
        fflush(stdout);
        fprintf(stderr, "sftrace dump: %s\n", sf_log_error(log));
        rc = 1;
    } else if (sf_log_summary(log, err, sizeof err)) {
        fprintf(stderr, "sftrace dump: %s\n", err);
        rc = SF_EXIT_DAMAGED;
    }
    sf_map_free(&last);
    for (size_t i = 0; i < srcline.cap; i++) {
        const char *str = (const char *)(uintptr_t)srcline.vals[i];
        if (srcline.used[i] && strcmp(str, "-"))
            free((char *)str);
    }
    sf_map_free(&srcline);
    free(out);
    out = NULL;
    sf_log_close(log);
    sf_syms_free(syms);
    return rc;
}
