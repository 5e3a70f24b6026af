/*
 * info.c - `sftrace info`: what a log holds, read from its chunk headers.
 *
 * Processes (each process image: pid, ppid, name, command line, executable,
 * how it ended), threads (tid, name, EVENTS chunks and bytes, events), the
 * instrumented objects (path, build-id, functions, sleds), the clock, the
 * recorded time span, events, lost records, and the log's size.
 *
 * It must run at disk speed on a log of tens of GB, so by default it decodes
 * no records: the shared reader (lib/logread.h) in its headers-only mode
 * checks the framing and the small PROCESS, OBJECT, THREAD and END chunks
 * and seeks over the records of EVENTS chunks. Event counts then come from
 * END chunks (exact, per process image); a thread's share of its image's
 * count, and the count of an image that has no END chunk, are estimated
 * from EVENTS bytes and printed with a '~'. `--events` reads with the full
 * reader instead and decodes every record to count exactly, at the speed
 * of the decoder. Damage is read past, reported and summed up as by every
 * command (exit SF_EXIT_DAMAGED).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "fmt.h"
#include "logread.h"

#define CMD "sftrace info"

struct iimg {
    uint32_t pid, ppid, flags, clock, machine;
    uint64_t tsc, mono_ns, real_ns, tsc_hz, offset;
    char *name, *exe, *cmdline; /* cmdline: arguments joined by spaces */
    int ended;
    struct sf_end end;
    uint64_t ev_bytes, ev_chunks, lost_chunks; /* EVENTS chunks of the image */
    uint64_t nthreads;                         /* threads with EVENTS chunks */
    uint64_t exact_events;                     /* --events */
    uint64_t exact_lost;
};

struct ithr {
    uint32_t img, tid;
    char name[17];
    int exited;
    uint64_t chunks, bytes, lost_chunks;
    uint64_t first_ns, last_ns; /* flush times of its first and last chunk */
    uint64_t exact_events;      /* --events */
};

/* A start or stop of recording (MARK chunk). */
struct imark {
    uint32_t img, kind, why, arg, seq;
    uint64_t ns;
};

/* A flight-recorder snapshot (MARK SNAP_BEGIN .. SNAP_END). */
struct isnap {
    uint32_t img, seq, why, arg;
    uint64_t ns;            /* the cut */
    uint64_t chunks, bytes; /* EVENTS chunks and their record bytes in it */
    int complete;           /* its SNAP_END was seen */
};

struct iobj {
    char *path;
    uint8_t *bid;
    uint32_t bid_len, nfuncs, nsleds, flags;
    uint64_t hash;
    uint64_t nimgs;     /* images that loaded it */
    uint32_t first_pid; /* the first image's pid */
    uint32_t *pids;     /* every image's pid, for JSON */
    size_t npids, cappids;
};

struct info {
    const char *path;
    uint64_t fsize;
    struct iimg *imgs;
    size_t nimgs, capimgs;
    struct ithr *thrs;
    size_t nthrs, capthrs;
    struct sf_map thrmap; /* image << 32 | tid -> index + 1 */
    struct iobj *objs;
    size_t nobjs, capobjs;
    struct sf_map objmap; /* hash of path+build-id -> index + 1 */
    uint64_t nchunks[SF_CHUNK_MARK + 1], chunk_bytes[SF_CHUNK_MARK + 1], unknown_chunks;
    struct imark *marks; /* MARK chunks (live control), in file order */
    size_t nmarks, capmarks;
    struct isnap *snaps; /* snapshots, in file order */
    size_t nsnaps, capsnaps;
    struct sf_map snap_open; /* image id -> index + 1 of its snapshot being read */
    uint64_t raw_bytes, packed_bytes;
    /* calibration pairs of TSC processes with the smallest and largest tsc */
    uint64_t tsc_lo, mono_lo, tsc_hi, mono_hi, npairs;
    uint64_t first_ns, last_ns; /* PROCESS mono_ns .. latest flush / END */
    int exact;                  /* --events ran */
    uint64_t exact_events;
};

static void pair(struct info *in, const struct iimg *im, uint64_t tsc, uint64_t mono)
{
    if (mono && (!in->first_ns || mono < in->first_ns))
        in->first_ns = mono;
    if (mono > in->last_ns)
        in->last_ns = mono;
    if (im->clock != SF_CLOCK_TSC)
        return;
    if (!in->npairs++ || tsc < in->tsc_lo) {
        in->tsc_lo = tsc;
        in->mono_lo = mono;
    }
    if (in->npairs == 1 || tsc > in->tsc_hi) {
        in->tsc_hi = tsc;
        in->mono_hi = mono;
    }
}

static struct ithr *thread_of(struct info *in, uint32_t img, uint32_t tid)
{
    uint64_t *slot = sf_map_get(&in->thrmap, (uint64_t)img << 32 | tid, 1);
    if (!*slot) {
        SF_GROW(in->thrs, in->nthrs, in->capthrs);
        struct ithr *t = &in->thrs[in->nthrs++];
        memset(t, 0, sizeof *t);
        t->img = img;
        t->tid = tid;
        *slot = in->nthrs;
    }
    return &in->thrs[*slot - 1];
}

static void add_object(struct info *in, const struct iimg *im, const struct sf_obj *o)
{
    const char *path = o->path;
    const uint8_t *bid = o->build_id ? o->build_id : (const uint8_t *)"";
    size_t plen = strlen(path);
    uint64_t h = sf_fnv(path, plen, SF_FNV0);
    h = sf_fnv(bid, o->build_id_len, h);
    h = sf_fnv(&o->nfuncs, sizeof o->nfuncs, h);
    struct iobj *x = NULL;
    uint64_t *slot = sf_map_get(&in->objmap, h, 1);
    if (*slot) {
        x = &in->objs[*slot - 1];
        if (x->bid_len != o->build_id_len || x->nfuncs != o->nfuncs || strlen(x->path) != plen ||
            memcmp(x->path, path, plen) || memcmp(x->bid, bid, o->build_id_len))
            x = NULL; /* a hash collision: look it up the slow way */
        for (size_t i = 0; !x && i < in->nobjs; i++) {
            struct iobj *y = &in->objs[i];
            if (y->bid_len == o->build_id_len && y->nfuncs == o->nfuncs &&
                strlen(y->path) == plen && !memcmp(y->path, path, plen) &&
                !memcmp(y->bid, bid, o->build_id_len))
                x = y;
        }
    }
    if (!x) {
        SF_GROW(in->objs, in->nobjs, in->capobjs);
        x = &in->objs[in->nobjs++];
        memset(x, 0, sizeof *x);
        x->path = sf_xstrndup(path, plen);
        x->bid = sf_xrealloc(NULL, o->build_id_len);
        memcpy(x->bid, bid, o->build_id_len);
        x->bid_len = o->build_id_len;
        x->nfuncs = o->nfuncs;
        x->nsleds = o->nsleds;
        x->flags = o->flags;
        x->first_pid = im->pid;
        if (!*slot)
            *slot = in->nobjs;
    }
    if (o->nsleds > x->nsleds)
        x->nsleds = o->nsleds;
    x->flags |= o->flags;
    x->nimgs++;
    SF_GROW(x->pids, x->npids, x->cappids);
    x->pids[x->npids++] = im->pid;
}

/* One chunk from the reader, checked by it (an EVENTS chunk's records only
 * with --events: then decoded and counted here). */
static void on_chunk(struct info *in, const struct sf_chunkv *c)
{
    const struct sf_chunk *h = c->h;
    unsigned t = h->type;
    in->nchunks[t]++;
    in->chunk_bytes[t] += h->size;
    const struct sf_image *img = c->img;
    if (t == SF_CHUNK_PROCESS) {
        SF_GROW(in->imgs, in->nimgs, in->capimgs);
        struct iimg *im = &in->imgs[in->nimgs++]; /* index == img->id */
        memset(im, 0, sizeof *im);
        im->pid = img->pid;
        im->ppid = img->ppid;
        im->flags = img->flags;
        im->clock = img->clock;
        im->machine = img->machine;
        im->tsc = img->tsc;
        im->mono_ns = img->mono_ns;
        im->real_ns = img->real_ns;
        im->tsc_hz = img->tsc_hz;
        im->offset = img->offset;
        im->name = sf_xstrdup(img->name);
        im->cmdline = sf_cmdline_join(img->cmdline, img->cmdline_len);
        im->exe = sf_xstrdup(img->exe);
        pair(in, im, img->tsc, img->mono_ns);
        return;
    }
    uint32_t ii = img->id;
    struct iimg *im = &in->imgs[ii];
    if (t == SF_CHUNK_OBJECT) {
        add_object(in, im, c->obj);
    } else if (t == SF_CHUNK_THREAD) {
        struct ithr *tr = thread_of(in, ii, c->u.thread->tid);
        if (c->thread_name[0])
            memcpy(tr->name, c->thread_name, sizeof tr->name);
        if (h->flags & SF_THREAD_EXITED)
            tr->exited = 1;
    } else if (t == SF_CHUNK_EVENTS) {
        const struct sf_events *e = c->u.events;
        uint32_t plen = c->payload_len;
        struct ithr *tr = thread_of(in, ii, e->tid);
        if (!tr->chunks++) {
            im->nthreads++;
            tr->first_ns = e->flush_mono_ns;
        }
        tr->last_ns = e->flush_mono_ns;
        tr->bytes += plen;
        uint64_t *open = sf_map_get(&in->snap_open, ii, 0);
        if (open && *open) {
            in->snaps[*open - 1].chunks++;
            in->snaps[*open - 1].bytes += plen;
        }
        im->ev_bytes += plen;
        im->ev_chunks++;
        if (h->flags & SF_EVENTS_LOST) {
            tr->lost_chunks++;
            im->lost_chunks++;
        }
        if (h->flags & SF_EVENTS_PACKED)
            in->packed_bytes += plen;
        else
            in->raw_bytes += plen;
        pair(in, im, e->flush_tsc, e->flush_mono_ns);
        if (c->payload) { /* --events */
            struct sf_evdec d;
            struct sf_event ev;
            sf_evdec_init(&d, c);
            uint64_t nev = 0;
            while (sf_evdec_next(&d, &ev)) {
                if (ev.kind != SF_KIND_EXT)
                    nev++;
                else if (ev.sub == SF_EXT_LOST && ev.nwords)
                    im->exact_lost += ev.v[0];
            }
            tr->exact_events += nev;
            im->exact_events += nev;
            in->exact_events += nev;
        }
    } else if (t == SF_CHUNK_MARK && c->u.mark->kind >= SF_MARK_SNAP_BEGIN) {
        const struct sf_mark *m = c->u.mark;
        uint64_t *open = sf_map_get(&in->snap_open, ii, 1);
        if (m->kind == SF_MARK_SNAP_BEGIN) {
            SF_GROW(in->snaps, in->nsnaps, in->capsnaps);
            in->snaps[in->nsnaps++] =
                (struct isnap){ii, m->seq, m->why, m->arg, m->mono_ns, 0, 0, 0};
            *open = in->nsnaps;
        } else {
            if (*open && in->snaps[*open - 1].seq == m->seq)
                in->snaps[*open - 1].complete = 1;
            *open = 0;
        }
    } else if (t == SF_CHUNK_MARK) {
        const struct sf_mark *m = c->u.mark;
        SF_GROW(in->marks, in->nmarks, in->capmarks);
        in->marks[in->nmarks++] = (struct imark){ii, m->kind, m->why, m->arg, m->seq, m->mono_ns};
    } else if (t == SF_CHUNK_END) {
        im->end = *c->u.end;
        im->ended = 1;
        pair(in, im, im->end.tsc, im->end.mono_ns);
    }
}

/* ---- numbers for the output ----------------------------------------------- */

/* Events of an image: exact (END chunk or --events) or estimated. */
static uint64_t img_events(const struct info *in, const struct iimg *im, double per_byte, int *est)
{
    *est = 0;
    if (in->exact)
        return im->exact_events;
    if (im->ended)
        return im->end.events;
    *est = 1;
    return (uint64_t)(im->ev_bytes * per_byte + 0.5);
}

/* Events per record byte, from the images whose END count is known. */
static double events_per_byte(const struct info *in)
{
    uint64_t ev = 0, bytes = 0;
    for (size_t i = 0; i < in->nimgs; i++)
        if (in->imgs[i].ended) {
            ev += in->imgs[i].end.events;
            bytes += in->imgs[i].ev_bytes;
        }
    if (bytes && ev)
        return (double)ev / (double)bytes;
    return in->packed_bytes >= in->raw_bytes ? 0.5 : 0.125; /* typical: 2 or 8 bytes an event */
}

static uint64_t thr_events(const struct info *in, const struct ithr *t, double per_byte, int *est)
{
    const struct iimg *im = &in->imgs[t->img];
    *est = 0;
    if (in->exact)
        return t->exact_events;
    int iest;
    uint64_t total = img_events(in, im, per_byte, &iest);
    if (im->nthreads == 1 && t->chunks)
        return *est = iest, total;
    *est = 1;
    if (!t->chunks)
        return *est = 0, 0;
    return im->ev_bytes ? (uint64_t)((double)total * t->bytes / im->ev_bytes + 0.5) : 0;
}

static const char *end_text(const struct iimg *im, const struct info *in, size_t idx)
{
    if (!im->ended) {
        /* a later image of the same pid replaced it (exec without END) */
        for (size_t j = idx + 1; j < in->nimgs; j++)
            if (in->imgs[j].pid == im->pid)
                return "replaced";
        return "no END";
    }
    switch (im->end.reason) {
    case SF_END_EXIT:
        return "exit";
    case SF_END_EXEC:
        return "exec";
    case SF_END_SIGNAL:
        return "signal";
    case SF_END_DETACH:
        return "detached";
    case SF_END_DIED:
        return "died";
    }
    return "unknown";
}

static void hex(char *out, const uint8_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = 0;
}

static void wall(char *buf, size_t n, uint64_t real_ns)
{
    time_t s = (time_t)(real_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    char t[32];
    strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03u UTC", t, (unsigned)(real_ns / 1000000u % 1000u));
}

struct totals {
    uint64_t events, lost_end, lost_chunks;
    int estimated;
    double hz; /* measured TSC rate, 0 if not measurable */
    uint64_t hz_runtime;
    int tsc, mono;
};

static void totals(const struct info *in, double per_byte, struct totals *tt)
{
    memset(tt, 0, sizeof *tt);
    for (size_t i = 0; i < in->nimgs; i++) {
        const struct iimg *im = &in->imgs[i];
        int est;
        tt->events += img_events(in, im, per_byte, &est);
        tt->estimated |= est;
        tt->lost_end += in->exact ? im->exact_lost : im->end.lost;
        tt->lost_chunks += im->lost_chunks;
        if (im->clock == SF_CLOCK_TSC) {
            tt->tsc = 1;
            if (!tt->hz_runtime)
                tt->hz_runtime = im->tsc_hz;
        } else {
            tt->mono = 1;
        }
    }
    if (in->npairs >= 2 && in->mono_hi - in->mono_lo >= 1000000 && in->tsc_hi > in->tsc_lo)
        tt->hz = (double)(in->tsc_hi - in->tsc_lo) * 1e9 / (double)(in->mono_hi - in->mono_lo);
}

/* ---- table output ------------------------------------------------------------- */

static void print_table(const struct info *in, const struct sf_file_header *fh)
{
    double per_byte = events_per_byte(in);
    struct totals tt;
    totals(in, per_byte, &tt);
    char a[SF_FMT_LEN], b[SF_FMT_LEN], c[SF_FMT_LEN], w[64];

    wall(w, sizeof w, fh->create_real_ns);
    printf("log        %s: %s, format %u.%u, session %016" PRIx64 ", created %s\n", in->path,
           sf_fmt_bytes_s(a, sizeof a, in->fsize), fh->version_major, fh->version_minor,
           fh->session_id, w);
    if (tt.tsc) {
        printf("clock      TSC");
        if (tt.hz > 0)
            printf(" at %.4f GHz (measured over %s)", tt.hz / 1e9,
                   sf_fmt_dur(a, sizeof a, in->mono_hi - in->mono_lo));
        if (tt.hz_runtime)
            printf("%s runtime's estimate %.4f GHz", tt.hz > 0 ? "; the" : " at the",
                   tt.hz_runtime / 1e9);
        printf("%s\n", tt.mono ? "; some processes CLOCK_MONOTONIC" : "");
    } else if (tt.mono) {
        printf("clock      CLOCK_MONOTONIC nanoseconds\n");
    }
    if (in->first_ns && in->last_ns >= in->first_ns) {
        int64_t s0 = (int64_t)(in->first_ns - fh->create_mono_ns);
        int64_t s1 = (int64_t)(in->last_ns - fh->create_mono_ns);
        printf("span       %s recorded, from %s to %s after the log was created\n",
               sf_fmt_dur(a, sizeof a, in->last_ns - in->first_ns), sf_fmt_ddur(b, sizeof b, s0),
               sf_fmt_ddur(c, sizeof c, s1));
    }
    printf("events     %s%s", tt.estimated ? "~" : "", sf_fmt_grouped(a, sizeof a, tt.events));
    if (in->exact)
        printf(" (decoded)\n");
    else if (tt.estimated)
        printf(" (END chunks; estimated from EVENTS bytes for images without one)\n");
    else
        printf(" (END chunks)\n");
    printf("lost       %" PRIu64 " records", tt.lost_end);
    if (tt.lost_chunks)
        printf(", %" PRIu64 " EVENTS chunks flagged LOST", tt.lost_chunks);
    printf("\n");
    printf("size       %s", sf_fmt_bytes_s(a, sizeof a, in->fsize));
    if (tt.events)
        printf(", %.2f bytes per event (records alone %.2f)", (double)in->fsize / tt.events,
               (double)in->chunk_bytes[SF_CHUNK_EVENTS] / tt.events);
    printf("; %s EVENTS chunks", sf_fmt_grouped(b, sizeof b, in->nchunks[SF_CHUNK_EVENTS]));
    if (in->unknown_chunks)
        printf(", %" PRIu64 " chunks of unknown type", in->unknown_chunks);
    printf("\n");

    printf("\nprocesses (%zu image%s)\n", in->nimgs, in->nimgs == 1 ? "" : "s");
    static const char *const ph[] = {"pid",    "ppid", "name",    "arch", "ended",       "how",
                                     "events", "lost", "threads", "exe",  "command line"};
    struct sf_table *t = sf_table_new(11, ph, "rrllllrrrll");
    for (size_t i = 0; i < in->nimgs; i++) {
        const struct iimg *im = &in->imgs[i];
        int est;
        uint64_t ev = img_events(in, im, per_byte, &est);
        char evs[SF_FMT_LEN + 1];
        snprintf(evs, sizeof evs, "%s%s", est ? "~" : "", sf_fmt_grouped(a, sizeof a, ev));
        char end[32];
        snprintf(end, sizeof end, "%s%s", end_text(im, in, i),
                 im->flags & SF_PROC_FORKED   ? " (forked)"
                 : im->flags & SF_PROC_EXECED ? " (execed)"
                                              : "");
        char mb[16], how[64] = "";
        if (im->ended)
            sf_end_how(how, sizeof how, &im->end, NULL);
        sf_table_addf(t, "%u\t%u\t%s\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s", im->pid,
                      im->ppid, im->name, sf_machine_name(im->machine, mb, sizeof mb), end, how,
                      evs, in->exact ? im->exact_lost : im->end.lost, im->nthreads, im->exe,
                      im->cmdline);
    }
    sf_table_print(t, stdout, "  ");
    sf_table_free(t);

    printf("\nthreads (%zu)%s\n", in->nthrs,
           in->exact ? "" : "  (~: estimated from the thread's share of its image's EVENTS bytes)");
    static const char *const th[] = {"pid",   "tid",  "events", "chunks",
                                     "bytes", "span", "state",  "name"};
    t = sf_table_new(8, th, "rrrrrrll");
    for (size_t i = 0; i < in->nthrs; i++) {
        const struct ithr *tr = &in->thrs[i];
        int est;
        uint64_t ev = thr_events(in, tr, per_byte, &est);
        char evs[SF_FMT_LEN + 1];
        snprintf(evs, sizeof evs, "%s%s", est ? "~" : "", sf_fmt_grouped(a, sizeof a, ev));
        char state[48];
        snprintf(state, sizeof state, "%s%s", tr->exited ? "exited" : "-",
                 tr->lost_chunks ? ", lost records" : "");
        sf_table_addf(t, "%u\t%u\t%s\t%" PRIu64 "\t%s\t%s\t%s\t%s", in->imgs[tr->img].pid, tr->tid,
                      evs, tr->chunks, sf_fmt_bytes_s(b, sizeof b, tr->bytes),
                      tr->chunks > 1 ? sf_fmt_dur(c, sizeof c, tr->last_ns - tr->first_ns) : "-",
                      state, tr->name[0] ? tr->name : "-");
    }
    sf_table_print(t, stdout, "  ");
    sf_table_free(t);

    printf("\nobjects (%zu)\n", in->nobjs);
    static const char *const oh[] = {"functions", "sleds", "images", "build-id", "path"};
    t = sf_table_new(5, oh, "rrrll");
    for (size_t i = 0; i < in->nobjs; i++) {
        const struct iobj *o = &in->objs[i];
        char bid[2 * 64 + 1];
        hex(bid, o->bid, o->bid_len > 64 ? 64 : o->bid_len);
        sf_table_addf(t, "%u\t%u\t%" PRIu64 "\t%s\t%s%s", o->nfuncs, o->nsleds, o->nimgs,
                      o->bid_len ? bid : "-", o->path, o->flags & SF_OBJ_MAIN ? " (main)" : "");
    }
    sf_table_print(t, stdout, "  ");
    sf_table_free(t);
}

static const char *mark_why(uint32_t why, int snap)
{
    if (snap && why == SF_WHY_SIGNAL)
        return "SIGUSR2";
    switch (why) {
    case SF_WHY_PAUSED:
        return "started paused";
    case SF_WHY_SIGNAL:
        return "SIGUSR1";
    case SF_WHY_CTL:
        return "sftrace ctl";
    case SF_WHY_TRIGGER:
        return "trigger";
    case SF_WHY_API:
        return "API";
    case SF_WHY_SLOW:
        return "slow call";
    case SF_WHY_EXIT:
        return "end of the image";
    case SF_WHY_FATAL:
        return "fatal signal";
    case SF_WHY_DIED:
        return "died";
    case SF_WHY_ATTACH:
        return "sftrace attach";
    case SF_WHY_RING:
        return "ring's oldest complete moment";
    }
    return "?";
}

static void print_marks(const struct info *in, const struct sf_file_header *fh)
{
    char a[SF_FMT_LEN], b[SF_FMT_LEN];
    if (in->nsnaps) {
        printf("\nsnapshots (%zu; read one with --snapshot N, the last by default)\n", in->nsnaps);
        static const char *const sh[] = {"pid", "snapshot", "cut", "chunks", "bytes", "why"};
        struct sf_table *t = sf_table_new(6, sh, "rrrrrl");
        for (size_t i = 0; i < in->nsnaps; i++) {
            const struct isnap *sn = &in->snaps[i];
            char why[64];
            snprintf(why, sizeof why, "%s%s", mark_why(sn->why, 1),
                     sn->complete ? "" : " (incomplete: no end mark)");
            sf_table_addf(t, "%u\t%u\t%s\t%" PRIu64 "\t%s\t%s", in->imgs[sn->img].pid, sn->seq,
                          sf_fmt_ddur(a, sizeof a, (int64_t)(sn->ns - fh->create_mono_ns)),
                          sn->chunks, sf_fmt_bytes_s(b, sizeof b, sn->bytes), why);
        }
        sf_table_print(t, stdout, "  ");
        sf_table_free(t);
    }
    if (!in->nmarks)
        return;
    printf("\nrecording started and stopped (%zu)\n", in->nmarks);
    static const char *const mh[] = {"pid", "seq", "at", "what", "why"};
    struct sf_table *t = sf_table_new(5, mh, "rrrll");
    for (size_t i = 0; i < in->nmarks; i++) {
        const struct imark *m = &in->marks[i];
        sf_table_addf(t, "%u\t%u\t%s\t%s\t%s", in->imgs[m->img].pid, m->seq,
                      sf_fmt_ddur(a, sizeof a, (int64_t)(m->ns - fh->create_mono_ns)),
                      m->kind == SF_MARK_START ? "start" : "stop", mark_why(m->why, 0));
    }
    sf_table_print(t, stdout, "  ");
    sf_table_free(t);
}

/* ---- JSON output ----------------------------------------------------------------- */

static void print_json(const struct info *in, const struct sf_file_header *fh)
{
    double per_byte = events_per_byte(in);
    struct totals tt;
    totals(in, per_byte, &tt);
    FILE *f = stdout;
    fprintf(f, "{\n  \"log\": {\"path\": ");
    sf_json_str(f, in->path);
    fprintf(f,
            ", \"bytes\": %" PRIu64 ", \"version\": \"%u.%u\", \"session_id\": %" PRIu64
            ", \"create_mono_ns\": %" PRIu64 ", \"create_real_ns\": %" PRIu64 "},\n",
            in->fsize, fh->version_major, fh->version_minor, fh->session_id, fh->create_mono_ns,
            fh->create_real_ns);
    fprintf(f,
            "  \"clock\": {\"source\": \"%s\", \"tsc_hz\": %.0f, \"runtime_tsc_hz\": %" PRIu64
            ", \"calibration_pairs\": %" PRIu64 "},\n",
            tt.tsc && tt.mono ? "mixed"
            : tt.tsc          ? "tsc"
                              : "mono",
            tt.hz, tt.hz_runtime, in->npairs);
    fprintf(f, "  \"first_ns\": %" PRIu64 ", \"last_ns\": %" PRIu64 ", \"span_ns\": %" PRIu64 ",\n",
            in->first_ns, in->last_ns,
            in->last_ns >= in->first_ns ? in->last_ns - in->first_ns : 0);
    fprintf(f,
            "  \"events\": %" PRIu64 ", \"events_estimated\": %s, \"events_decoded\": %s,\n"
            "  \"lost\": %" PRIu64 ", \"lost_chunks\": %" PRIu64 ",\n"
            "  \"bytes_per_event\": %.3f,\n",
            tt.events, tt.estimated ? "true" : "false", in->exact ? "true" : "false", tt.lost_end,
            tt.lost_chunks, tt.events ? (double)in->fsize / tt.events : 0.0);
    fprintf(f,
            "  \"chunks\": {\"process\": %" PRIu64 ", \"object\": %" PRIu64 ", \"thread\": %" PRIu64
            ", \"events\": %" PRIu64 ", \"end\": %" PRIu64 ", \"unknown\": %" PRIu64
            ", \"events_bytes\": %" PRIu64 "},\n",
            in->nchunks[1], in->nchunks[2], in->nchunks[3], in->nchunks[4], in->nchunks[5],
            in->unknown_chunks, in->chunk_bytes[SF_CHUNK_EVENTS]);
    fprintf(f, "  \"marks\": [");
    for (size_t i = 0; i < in->nmarks; i++) {
        const struct imark *m = &in->marks[i];
        fprintf(f,
                "%s\n    {\"image\": %u, \"pid\": %u, \"seq\": %u, \"kind\": \"%s\", "
                "\"why\": \"%s\", \"arg\": %u, \"ns\": %" PRIu64 "}",
                i ? "," : "", m->img, in->imgs[m->img].pid, m->seq,
                m->kind == SF_MARK_START ? "start" : "stop", mark_why(m->why, 0), m->arg, m->ns);
    }
    fprintf(f, "%s],\n", in->nmarks ? "\n  " : "");
    fprintf(f, "  \"snapshots\": [");
    for (size_t i = 0; i < in->nsnaps; i++) {
        const struct isnap *sn = &in->snaps[i];
        fprintf(f,
                "%s\n    {\"image\": %u, \"pid\": %u, \"snapshot\": %u, \"why\": \"%s\", "
                "\"arg\": %u, \"cut_ns\": %" PRIu64 ", \"chunks\": %" PRIu64 ", \"bytes\": %" PRIu64
                ", \"complete\": %s}",
                i ? "," : "", sn->img, in->imgs[sn->img].pid, sn->seq, mark_why(sn->why, 1),
                sn->arg, sn->ns, sn->chunks, sn->bytes, sn->complete ? "true" : "false");
    }
    fprintf(f, "%s],\n", in->nsnaps ? "\n  " : "");
    fprintf(f, "  \"processes\": [");
    for (size_t i = 0; i < in->nimgs; i++) {
        const struct iimg *im = &in->imgs[i];
        int est;
        uint64_t ev = img_events(in, im, per_byte, &est);
        fprintf(f, "%s\n    {\"image\": %zu, \"pid\": %u, \"ppid\": %u, \"name\": ", i ? "," : "",
                i, im->pid, im->ppid);
        sf_json_str(f, im->name);
        char mb[16];
        fprintf(f, ", \"arch\": \"%s\", \"exe\": ", sf_machine_name(im->machine, mb, sizeof mb));
        sf_json_str(f, im->exe);
        fprintf(f, ", \"cmdline\": ");
        sf_json_str(f, im->cmdline);
        fprintf(f,
                ", \"forked\": %s, \"execed\": %s, \"clock\": \"%s\", \"start_ns\": %" PRIu64
                ", \"ended\": \"%s\"",
                im->flags & SF_PROC_FORKED ? "true" : "false",
                im->flags & SF_PROC_EXECED ? "true" : "false",
                im->clock == SF_CLOCK_TSC ? "tsc" : "mono", im->mono_ns, end_text(im, in, i));
        if (im->ended) {
            char how[64];
            fprintf(f, ", \"end_ns\": %" PRIu64 ", \"end_threads\": %u, \"how\": \"%s\"",
                    im->end.mono_ns, im->end.threads, sf_end_how(how, sizeof how, &im->end, NULL));
            if (im->end.status_how == SF_STATUS_EXITED)
                fprintf(f, ", \"exit_status\": %u", im->end.status);
            else if (im->end.status_how == SF_STATUS_SIGNALED)
                fprintf(f, ", \"signal\": %u", im->end.status);
        }
        fprintf(f,
                ", \"events\": %" PRIu64 ", \"events_estimated\": %s, \"lost\": %" PRIu64
                ", \"threads\": %" PRIu64 ", \"events_chunks\": %" PRIu64
                ", \"events_bytes\": %" PRIu64 "}",
                ev, est ? "true" : "false", in->exact ? im->exact_lost : im->end.lost, im->nthreads,
                im->ev_chunks, im->ev_bytes);
    }
    fprintf(f, "\n  ],\n  \"threads\": [");
    for (size_t i = 0; i < in->nthrs; i++) {
        const struct ithr *t = &in->thrs[i];
        int est;
        uint64_t ev = thr_events(in, t, per_byte, &est);
        fprintf(f, "%s\n    {\"image\": %u, \"pid\": %u, \"tid\": %u, \"name\": ", i ? "," : "",
                t->img, in->imgs[t->img].pid, t->tid);
        sf_json_str(f, t->name);
        fprintf(f,
                ", \"exited\": %s, \"events\": %" PRIu64 ", \"events_estimated\": %s, "
                "\"chunks\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"lost_chunks\": %" PRIu64 "}",
                t->exited ? "true" : "false", ev, est ? "true" : "false", t->chunks, t->bytes,
                t->lost_chunks);
    }
    fprintf(f, "\n  ],\n  \"objects\": [");
    for (size_t i = 0; i < in->nobjs; i++) {
        const struct iobj *o = &in->objs[i];
        char bid[2 * 256 + 1];
        hex(bid, o->bid, o->bid_len > 256 ? 256 : o->bid_len);
        fprintf(f, "%s\n    {\"path\": ", i ? "," : "");
        sf_json_str(f, o->path);
        fprintf(f,
                ", \"build_id\": \"%s\", \"functions\": %u, \"sleds\": %u, \"main\": %s, "
                "\"pids\": [",
                bid, o->nfuncs, o->nsleds, o->flags & SF_OBJ_MAIN ? "true" : "false");
        for (size_t j = 0; j < o->npids; j++)
            fprintf(f, "%s%u", j ? ", " : "", o->pids[j]);
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
}

/* ---- command ------------------------------------------------------------------- */

/* A damage warning from the reader (it skips the damage and reads on). */
static void on_damage(void *ctx, const char *msg)
{
    sf_progress_clear(ctx);
    fprintf(stderr, CMD ": %s\n", msg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace info [-h] [-q] [--events] [--format table|json] LOG\n"
               "\n"
               "Show what LOG holds: its processes (pid, parent, name, command line,\n"
               "executable, how each ended), threads, instrumented objects (path, build-id,\n"
               "functions, sleds), the clock, the time span, events, lost records and the\n"
               "log's size. Only chunk headers are read, so it runs at disk speed whatever\n"
               "the log's size. Event counts come from the END chunk each process writes\n"
               "when it stops recording; a thread's count, and that of a process with no\n"
               "END chunk, are estimated from the size of its records and shown with '~'.\n"
               "\n"
               "      --events          decode every record to count events exactly (at the\n"
               "                        decoder's speed, not the disk's)\n"
               "      --format FMT      table (default) or json\n"
               "  -q, --quiet           no progress line\n"
               "  -h, --help            this help\n");
}

static void free_info(struct info *in)
{
    for (size_t i = 0; i < in->nimgs; i++) {
        free(in->imgs[i].name);
        free(in->imgs[i].exe);
        free(in->imgs[i].cmdline);
    }
    for (size_t i = 0; i < in->nobjs; i++) {
        free(in->objs[i].path);
        free(in->objs[i].bid);
        free(in->objs[i].pids);
    }
    free(in->imgs);
    free(in->marks);
    free(in->snaps);
    sf_map_free(&in->snap_open);
    free(in->thrs);
    free(in->objs);
    sf_map_free(&in->thrmap);
    sf_map_free(&in->objmap);
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"quiet", no_argument, NULL, 'q'},
        {"events", no_argument, NULL, 'E'},
        {"format", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    int quiet = 0, events = 0, c;
    enum sf_outfmt fmt = SF_OUT_TABLE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'q':
            quiet = 1;
            break;
        case 'E':
            events = 1;
            break;
        case 'f':
            if (sf_outfmt_parse(optarg, &fmt) < 0 || fmt == SF_OUT_CSV) {
                fprintf(stderr, CMD ": unknown format '%s' (table or json)\n", optarg);
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (sf_operands("info", argc, argv, optind, 1, 1, "LOG") < 0) {
        usage(stderr);
        return 2;
    }
    struct info in;
    memset(&in, 0, sizeof in);
    in.path = argv[optind];
    char err[SF_ERRLEN];
    struct sf_log *log = sf_log_open(in.path, err, sizeof err); /* checks the file header */
    if (!log) {
        fprintf(stderr, CMD ": %s\n", err);
        return 1;
    }
    struct sf_file_header fh = *sf_log_header(log);
    in.fsize = sf_log_file_size(log);
    struct sf_progress pr;
    sf_progress_init(&pr, "info", !quiet);
    pr.size = in.fsize;
    in.exact = events;
    sf_log_set_headers_only(log, !events);
    sf_log_set_warn(log, on_damage, &pr);
    struct sf_chunkv ck;
    int r;
    uint64_t n = 0;
    while ((r = sf_log_next(log, &ck)) > 0) {
        on_chunk(&in, &ck);
        if ((++n & 255) == 0 || (events && ck.h->type == SF_CHUNK_EVENTS))
            sf_progress(&pr, sf_log_offset(log), in.exact_events, 0);
    }
    in.unknown_chunks = sf_log_skipped(log);
    sf_progress_clear(&pr);
    if (fmt == SF_OUT_JSON)
        print_json(&in, &fh);
    else
        print_table(&in, &fh), print_marks(&in, &fh);
    int rc = 0;
    if (sf_stdout_flush(CMD) != 0)
        rc = 1;
    if (r < 0) {
        fprintf(stderr, CMD ": %s\n" CMD ": the summary above covers the log before the error\n",
                sf_log_error(log));
        rc = 1;
    } else if (sf_log_summary(log, err, sizeof err)) {
        fprintf(stderr, CMD ": %s\n", err);
        if (!rc)
            rc = SF_EXIT_DAMAGED; /* the summary above has everything readable */
    }
    sf_log_close(log);
    free_info(&in);
    return rc;
}
