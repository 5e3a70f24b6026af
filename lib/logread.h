/*
 * logread.h - the shared reader of sftrace logs (format: common/logfmt.h).
 *
 * Every tool reads logs through this. The reader streams: it maps a regular
 * file and reads it front to back, giving back the pages behind it (or, when
 * mapping fails or SFTRACE_NO_MMAP is set, reads it through one buffer of 2
 * MiB, or the largest chunk if larger), so memory does not grow with the
 * size of the log, only with the number of processes and objects in it. A
 * log that another process truncates while it is mapped and read ends the
 * process with "FILE: changed while being read" (exit 1) where the reader
 * had already checked the file's size; a truncation further ahead reads as
 * a truncated log (logread.c: "The mapping").
 *
 * Use:
 *
 *     char err[SF_ERRLEN];
 *     struct sf_log *log = sf_log_open(path, err, sizeof err);
 *     if (!log) { fprintf(stderr, "%s\n", err); ... }    // exit 1
 *     sf_log_set_warn(log, my_warn, ctx);  // optional: damage warnings
 *     sf_log_prescan(log);                 // first pass: clock calibration
 *     struct sf_chunkv c;
 *     int r;
 *     while ((r = sf_log_next(log, &c)) > 0) {
 *         if (c.h->type != SF_CHUNK_EVENTS)
 *             continue;
 *         struct sf_evdec d;
 *         struct sf_event ev;
 *         sf_evdec_init(&d, &c);
 *         while (sf_evdec_next(&d, &ev)) {
 *             int64_t ns = sf_log_ns(log, c.img, ev.ts);
 *             uint32_t idx;
 *             struct sf_obj *o = sf_image_obj(c.img, ev.fid, &idx);
 *             ...  o->func_addr[idx] is the function's ELF address
 *         }
 *     }
 *     if (r < 0) fprintf(stderr, "%s\n", sf_log_error(log));   // exit 1
 *     else if (sf_log_summary(log, err, sizeof err))
 *         fprintf(stderr, "%s\n", err);                      // exit SF_EXIT_DAMAGED
 *     sf_log_close(log);
 *
 * EVENTS chunks come raw (logfmt.h) or packed (flag SF_EVENTS_PACKED,
 * common/pack.h); the event decoder reads both.
 *
 * Every chunk sf_log_next returns has been checked completely (header,
 * sizes, string lengths, object tables, the records of an EVENTS chunk:
 * extended records' sizes; a packed chunk is decoded once), so a chunk is
 * either wholly usable or not returned at all. Chunk types this reader does
 * not know, and extended-record subtypes it does not know, are skipped
 * (newer minor versions may add them). A log truncated exactly at a chunk
 * boundary is indistinguishable from a shorter, valid log.
 *
 * Damage. A bad chunk does not end the read: the reader reports it through
 * the warning callback (sf_log_set_warn; by default a line on stderr) and
 * goes on with the next chunk, so everything readable is read:
 *   - a chunk whose header is sound but that breaks a rule (a string or
 *     table running past its end, an unknown clock, a bad record, a chunk of
 *     a pid with no PROCESS chunk before it) is skipped, when a sound header
 *     (or the end of the file) follows it: its size can be believed;
 *   - otherwise, and at a chunk header that cannot be trusted (magic, size),
 *     the reader resynchronizes: it scans forward, 8 bytes at a time, for the
 *     next plausible chunk (magic, a known type, a sane size, and the chunk
 *     passes every check or is followed by a sound header) and skips the
 *     bytes between;
 *   - a chunk that runs past the end of the file with no plausible chunk
 *     after it is truncation: the read ends there.
 * Warnings read "FILE: offset N: what is wrong (field): what was skipped".
 * Chunks of a pid with no PROCESS chunk, or whose PROCESS chunk was bad,
 * are reported once per pid (the summary counts them all); after
 * SF_WARN_MAX warnings one more says that the rest are only counted.
 * sf_log_summary then says what was skipped in all; tools print it and
 * exit with SF_EXIT_DAMAGED. sf_log_next fails (-1) only on a read error.
 *
 * Process images. A PROCESS chunk starts an image: the pid's objects and
 * function ids from then on are that image's. A later PROCESS chunk of the
 * same pid (exec, or pid reuse) starts a new image with an empty object
 * table; a forked child's image (SF_PROC_FORKED) starts with a copy of its
 * parent's table (its ppid's current image), since fork keeps the mappings,
 * and an OBJECT chunk replaces any object whose function ids it overlaps.
 * Images and their objects live until sf_log_close: events can be resolved
 * after their process has ended. A chunk (other than PROCESS) from a pid with
 * no PROCESS chunk before it is skipped (see Damage); so are the chunks of a
 * pid after a PROCESS chunk of it that was skipped, up to its next good
 * PROCESS chunk, as they belong to an image the reader does not know.
 *
 * Clock. Timestamps count TSC ticks (SF_CLOCK_TSC) or CLOCK_MONOTONIC ns
 * (SF_CLOCK_MONO), per process. For TSC the reader fits mono = a + b * tsc
 * by least squares over every calibration pair of every TSC process in the
 * file (PROCESS tsc/mono_ns, EVENTS flush_tsc/flush_mono_ns, END
 * tsc/mono_ns): the TSC is machine-wide, so one fit serves all. With one
 * pair, or pairs spanning less than 1 ms, the slope is 1e9 / tsc_hz of the
 * first TSC process that gives one (1 ns per tick if none does). The pairs
 * must all be known before the first conversion: sf_log_prescan reads only
 * chunk headers and calibration fields, seeking over event records, then
 * rewinds. Without a prescan, conversions use the pairs seen so far.
 *
 * Not thread-safe; one reader per thread. Integers are read in host order,
 * so this reader works on little-endian hosts only, like the runtime.
 */
#ifndef SFTRACE_LOGREAD_H
#define SFTRACE_LOGREAD_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "logfmt.h"
#include "pack.h"

#define SF_ERRLEN 512  /* enough for any message of this reader */
#define SF_WARN_MAX 20 /* warnings passed on one by one; later ones are counted */
#define SF_EXIT_DAMAGED                                                                            \
    3 /* tools' exit status: the log was damaged, the output has                                   \
         everything readable (1: nothing could be read) */

struct sf_log;
struct sf_obj;

/* A process image: from its PROCESS chunk to the next one of the same pid. */
struct sf_image {
    uint32_t id;                            /* 0, 1, 2... in file order, unique in the log */
    uint32_t pid, ppid;                     /* from the PROCESS chunk */
    uint16_t flags;                         /* SF_PROC_* */
    uint32_t clock;                         /* enum sf_clock */
    uint32_t machine;                       /* ELF e_machine of the writer (0 read as x86_64) */
    uint64_t tsc, mono_ns, real_ns, tsc_hz; /* as in the PROCESS chunk */
    const char *name;                       /* NUL-terminated copies of the chunk's strings */
    const char *exe;
    const char *cmdline;  /* arguments separated by NUL ... */
    uint32_t cmdline_len; /* ... this many bytes (a NUL is added after) */
    uint64_t offset;      /* file offset of the PROCESS chunk */
    int ended;            /* an END chunk was seen for it */
    struct sf_end end;    /* that END (status fields 0 in a minor-0 log) */
    struct sf_obj **objs; /* its object table, sorted by fid_base */
    uint32_t nobjs, objcap;
};

/* The name of an ELF e_machine value as the tools show it ("em N" when unknown). */
static inline const char *sf_machine_name(uint32_t machine, char *buf, size_t len)
{
    if (machine == 62)
        return "x86_64";
    if (machine == 183)
        return "aarch64";
    snprintf(buf, len, "em %u", machine);
    return buf;
}

/* An instrumented object of an image (one OBJECT chunk). */
struct sf_obj {
    const struct sf_image *img; /* the image whose OBJECT chunk made it */
    uint64_t offset;            /* file offset of the OBJECT chunk */
    uint16_t flags;             /* SF_OBJ_MAIN */
    uint64_t load_bias;
    uint32_t fid_base, nfuncs, nsleds;
    const uint64_t *func_addr; /* [nfuncs] ELF addresses of the functions */
    const char *path;          /* NUL-terminated */
    const uint8_t *build_id;   /* build_id_len bytes, NULL when 0 */
    uint32_t build_id_len;
    /* For the tools: a lazily made cache of one name per function (see
     * sf_syms_obj_name in symbols.h). sf_log_close frees the array only. */
    const char **names;
};

/* One chunk, as sf_log_next returns it. Pointers stay valid until the next
 * call of sf_log_next or sf_log_close (images and objects: until close). */
struct sf_chunkv {
    uint64_t offset;          /* file offset of the chunk */
    const struct sf_chunk *h; /* the whole chunk, h->size bytes */
    struct sf_image *img;     /* the image of h->pid (PROCESS: the new one) */
    union {                   /* h cast to the struct of h->type */
        const struct sf_process *process;
        const struct sf_object *object;
        const struct sf_thread *thread;
        const struct sf_events *events;
        const struct sf_end *end;
        const struct sf_mark *mark;
    } u;
    const uint8_t *payload; /* bytes after the type's struct ... */
    uint32_t payload_len;   /* ... (EVENTS: the records) */
    struct sf_obj *obj;     /* OBJECT: the table entry made from it */
    char thread_name[17];   /* THREAD: the name, NUL-terminated */
    /* Packed EVENTS: the records as the check decoded them (NULL when the
     * chunk was too large to keep decoded), so the decoder need not decode
     * them again. Valid until the next sf_log_next. */
    const struct sf_decoded *dec;
    uint32_t ndec;
};

/* Open a log and check its file header. NULL on error, message in err.
 * "-" is standard input. A path that is not a regular file (a pipe) is
 * copied to a temporary file on its first open, and every later open of
 * the same path in this process reads that copy: every pass sees the
 * whole log (logread.c, "Logs that arrive through a pipe"). */
struct sf_log *sf_log_open(const char *path, char *err, size_t errlen);
/* Close it and free everything it made (images, objects, names arrays). */
void sf_log_close(struct sf_log *log);
/* The file header (checked: magic, version, header_size). */
const struct sf_file_header *sf_log_header(const struct sf_log *log);
/* The path given to sf_log_open. */
const char *sf_log_path(const struct sf_log *log);
/* Its size in bytes (a log that came through a pipe is read from a copy of
 * the whole stream, made when it was opened: its size too). */
uint64_t sf_log_file_size(const struct sf_log *log);

/*
 * First pass: read every chunk header and calibration pair, seeking over
 * event records, compute the clock fit, and rewind to the first chunk.
 * Damage is stepped over quietly (sf_log_next reports it when it gets
 * there). Call before the first sf_log_next. 0, or -1 on an I/O error
 * (message in sf_log_error; a pipe cannot be prescanned, but can still be
 * read: the fit then uses the pairs seen so far).
 */
int sf_log_prescan(struct sf_log *log);
/* Take the prescan of another reader of the same file (from: prescanned,
 * with success) instead of reading the file again: the clock fit, the
 * snapshots and the starts. sf_log_prescan then returns 0 at once. For
 * readers of one log in several threads (lib/runcalls.c). */
void sf_log_prescan_from(struct sf_log *log, const struct sf_log *from);
/* Have the prescan also add each EVENTS chunk's size to bytes[tid] (chunks
 * of pids with a PROCESS chunk before them): the work of each thread, for
 * splitting threads between readers without another pass (bytes: the
 * caller's, until the prescan returns). */
struct sf_map;
void sf_log_prescan_tids(struct sf_log *log, struct sf_map *bytes);

/* Next good chunk: 1 and *c filled, 0 at the end of the file (or where a
 * truncated chunk ends it), -1 on a read error (sf_log_error says what).
 * Damage on the way is reported and skipped (see Damage above). After -1 or
 * 0 it keeps returning the same. */
int sf_log_next(struct sf_log *log, struct sf_chunkv *c);
/* The last error: "FILE: offset N: what is wrong (field)". */
const char *sf_log_error(const struct sf_log *log);
/* File offset where the next chunk would start. */
uint64_t sf_log_offset(const struct sf_log *log);
/* Chunks of unknown type skipped so far (not damage). */
uint64_t sf_log_skipped(const struct sf_log *log);

/* A consumer's filter on EVENTS chunks (the call engine's time range and
 * thread selection): fn sees each EVENTS chunk (c->h, c->u.events, c->img
 * set; not its records) before the records are checked or decoded; when it
 * returns nonzero, sf_log_next goes on to the next chunk without looking at
 * the records (their calibration pair still counts). NULL: none. */
typedef int sf_log_skip_fn(void *ctx, const struct sf_chunkv *c);
void sf_log_set_skip(struct sf_log *log, sf_log_skip_fn *fn, void *ctx);

/* Decoding ahead: the records of the packed EVENTS chunks that
 * want(ctx, pid, tid) says the reader will take are decoded by a thread of
 * the reader's own, a few chunks ahead of sf_log_next, so that the caller
 * works on one chunk while the next ones are decoded on another core
 * (logread.c, "decoding ahead"). want is called from that thread: it may
 * read only what does not change while the log is read (a selection), and
 * a chunk it wrongly says yes to costs only its decoding. What sf_log_next
 * returns is the same with or without it: a chunk not decoded ahead, or
 * decoded with damage, is checked by sf_log_next itself. Only for a regular
 * file (not a pipe); 0 if started. */
typedef int sf_log_want_fn(void *ctx, uint32_t pid, uint32_t tid);
int sf_log_set_ahead(struct sf_log *log, sf_log_want_fn *want, void *ctx);
/* Stop the decoding thread (sf_log_close does too). */
void sf_log_stop_ahead(struct sf_log *log);

/* Damage warnings: fn(arg, msg) for each, msg as described above (no
 * newline). NULL restores the default, "sftrace: MSG" on stderr. */
typedef void sf_log_warn_fn(void *arg, const char *msg);
void sf_log_set_warn(struct sf_log *log, sf_log_warn_fn *fn, void *arg);
/* A callback that drops the warnings (still counted): for a second pass over
 * a log another sf_log already reports on. */
sf_log_warn_fn sf_log_warn_none;

/* What the reader skipped so far. */
struct sf_log_damage {
    uint64_t chunks, chunk_bytes; /* chunks skipped for breaking a rule */
    uint64_t ranges, range_bytes; /* unreadable byte ranges skipped (resync) */
    int truncated;                /* the file ends inside a chunk ... */
    uint64_t trunc_off;           /* ... that starts here ... */
    uint64_t trunc_bytes;         /* ... and has only this many bytes */
    uint64_t warnings;            /* warnings made (some only counted) */
    uint64_t good;                /* chunks returned by sf_log_next */
    /* Of those: EVENTS chunks skipped for bad records (in chunks,
     * chunk_bytes) and EVENTS chunks returned (in good). Readers that split
     * a log's threads between them (lib/runcalls.c) see the same framing and
     * other chunks but each only its own threads' records: they add these
     * up and take the rest from one reader. */
    uint64_t ev_chunks, ev_chunk_bytes, ev_good;
};
void sf_log_damage(const struct sf_log *log, struct sf_log_damage *d);
/* 0 when nothing was skipped; else 1 and buf holds one line, "FILE: damaged
 * log: ...; everything else was read", for the tools to print at the end. */
int sf_log_summary(const struct sf_log *log, char *buf, size_t len);
/* The same line for the damage d of the log at path (merged damage). */
int sf_log_summary_of(const char *path, const struct sf_log_damage *d, char *buf, size_t len);

/*
 * Headers only: from now on sf_log_next reads, of an EVENTS chunk, only its
 * struct sf_events (c->payload NULL, c->payload_len the record bytes it
 * did not read) and seeks over its records, neither checking nor decoding
 * them: for `sftrace info` (disk speed) and planning parallel reads. The
 * framing and every other chunk are checked, and damage is skipped and
 * reported, as always. Do not decode such chunks. On a pipe the records
 * are read (and dropped) rather than seeked over.
 */
void sf_log_set_headers_only(struct sf_log *log, int on);

/*
 * Flight-recorder snapshots (MARK SNAP_BEGIN .. SNAP_END, logfmt.h). A log
 * recorded with --ring holds each process image's records only in
 * snapshots, each standing alone, so a reader reads one at a time: with
 * n > 0, snapshot n of every image (sf_log_next skips, unchecked, the
 * THREAD, EVENTS and MARK chunks inside any other snapshot); with n == 0
 * the last snapshot of every image (known from sf_log_prescan; on a pipe,
 * the first); with n < 0 (the default) everything. Set before the first
 * sf_log_next. sf_log_snapshots: after a prescan, the largest number of
 * snapshots any image has (0: none).
 */
void sf_log_set_snapshot(struct sf_log *log, int64_t n);
uint32_t sf_log_snapshots(const struct sf_log *log);
/* After a prescan: how many MARK chunks of kind START (live control) the
 * log has (0 on a pipe). */
uint32_t sf_log_starts(const struct sf_log *log);
/* The prescan's count of forked children's PROCESS chunks: such a child
 * returns through the frames open in its parent at fork(), which the call
 * engine finds as it finds the calls open at a START. */
uint32_t sf_log_forks(const struct sf_log *log);

/* The current image of a pid, NULL if it has none. */
struct sf_image *sf_log_image(struct sf_log *log, uint32_t pid);
/* All images so far, in file order: index 0 .. sf_log_nimages-1 (== id). */
size_t sf_log_nimages(const struct sf_log *log);
struct sf_image *sf_log_image_at(struct sf_log *log, size_t i);

/* The object of an image holding function id fid (and fid's index in it,
 * for func_addr and names), or NULL. */
struct sf_obj *sf_image_obj(const struct sf_image *img, uint32_t fid, uint32_t *idx);

/* A timestamp of img's clock in CLOCK_MONOTONIC nanoseconds. */
int64_t sf_log_ns(struct sf_log *log, const struct sf_image *img, uint64_t ts);

/*
 * The TSC fit's line, mono = y0 + a + b * (tsc - x0), rounded to the
 * nearest ns, in fixed point: ns = y0 + floor(((tsc - x0) * m + c) / 2^shift)
 * with m = b * 2^shift and c = (a + 1/2) * 2^shift (shift SF_CLOCK_SHIFT,
 * 48, unless b is huge: m stays below 2^62). Integer, so that every tool and every code
 * path (sf_log_ns; the call engine inlines sf_clock_ns) gives the same ns
 * for the same tick, and one multiply instead of a double's conversions:
 * the engine converts two timestamps a call. The rounding error of m is
 * 2^-49 of b, a nanosecond in about a day of ticks: far below the error of
 * the fit itself.
 */
struct sf_clockline {
    uint64_t x0, y0;
    int64_t m;
    uint32_t shift;
    __int128 c;
};
#define SF_CLOCK_SHIFT 48
static inline int64_t sf_clock_ns(const struct sf_clockline *l, uint64_t ts)
{
    /* |tsc - x0| < 2^63, m < 2^62, |c| < 2^111: no overflow; the sum
     * wraps (a garbage timestamp gives a garbage time, never UB) */
    __int128 v = (__int128)(int64_t)(ts - l->x0) * l->m + l->c;
    return (int64_t)(l->y0 + (uint64_t)(v >> l->shift));
}
/* The same for a line of shift SF_CLOCK_SHIFT (every clock of at least
 * 61 kHz): a constant shift is one instruction. */
static inline int64_t sf_clock_ns_std(const struct sf_clockline *l, uint64_t ts)
{
    __int128 v = (__int128)(int64_t)(ts - l->x0) * l->m + l->c;
    return (int64_t)(l->y0 + (uint64_t)(v >> SF_CLOCK_SHIFT));
}

/* The TSC fit in use (for diagnostics): mono = y0 + a + b * (tsc - x0). */
struct sf_clockinfo {
    uint64_t npairs;          /* calibration pairs of TSC processes */
    uint64_t x0, y0;          /* anchor (the first pair) */
    double a, b;              /* b: ns per tick */
    int from_hz;              /* 1 if b came from tsc_hz, not from the fit */
    struct sf_clockline line; /* what sf_log_ns computes with */
};
void sf_log_clockinfo(struct sf_log *log, struct sf_clockinfo *ci);

/* ---- events -------------------------------------------------------------- */

/* A decoded record. PAD and TSC_HI records are consumed by the decoder. */
struct sf_event {
    uint64_t ts;     /* full 64-bit timestamp, the image's clock */
    uint32_t kind;   /* SF_KIND_ENTRY, _EXIT, _TAIL or _EXT */
    uint32_t fid;    /* function id; for EXT: the last function event's of
                        the thread (SF_FID_NONE if not known) */
    uint32_t sub;    /* EXT: enum sf_ext (ALLOC, ARGS, RET, LOST or KEY) */
    uint32_t arg;    /* EXT: the arg byte (ALLOC: enum sf_alloc_kind,
                        ARGS: count, at most 6) */
    uint32_t nwords; /* EXT: payload words in the record */
    uint64_t v[6];   /* EXT: the first min(nwords, 6) payload words */
    uint64_t offset; /* file offset of the record */
};
#define SF_FID_NONE 0xffffffffu

/* struct sf_decoded (pack.h): a packed record decoded by sf_log_next. */

/* A decoder of one EVENTS chunk's records. Set last_fid after init to carry
 * a thread's last function id over from its previous chunk; read it after
 * the chunk to get the one to carry on. */
struct sf_evdec {
    const uint32_t *p, *end, *start; /* raw records */
    uint64_t hi;                     /* raw: current high half, shifted */
    uint64_t base;                   /* file offset of the records */
    uint32_t last_fid;
    int packed;                          /* SF_EVENTS_PACKED (pack.h) */
    const uint8_t *pp, *pend, *pstart;   /* packed records */
    struct sf_pack_state ps;             /* packed: decoder state */
    const struct sf_decoded *dec, *dend; /* packed, decoded by sf_log_next */
};
void sf_evdec_init(struct sf_evdec *d, const struct sf_chunkv *c);
/* 1 and *ev filled, or 0 at the end of the chunk. */
int sf_evdec_next(struct sf_evdec *d, struct sf_event *ev);

/* "alloc", "free", "realloc-alloc" or "realloc-free" for an ALLOC record's
 * arg (enum sf_alloc_kind), NULL for another value. */
const char *sf_alloc_kind_name(uint32_t arg);

/* ---- a small map for the tools: uint64 key -> uint64 value -------------- */

struct sf_map {
    uint64_t *keys, *vals;
    uint8_t *used;
    size_t cap, n;
};
/* Pointer to key's value slot, made (value 0) if absent when create. NULL if
 * absent and !create. Pointers are invalidated by the next insertion. */
uint64_t *sf_map_get(struct sf_map *m, uint64_t key, int create);
void sf_map_free(struct sf_map *m);

#endif /* SFTRACE_LOGREAD_H */
