/*
 * logread.c - the shared, streaming reader of sftrace logs: file header and
 * chunk validation, process images and their object tables, the TSC clock
 * fit, and the decoder of EVENTS records. The API is described in logread.h.
 *
 * Input. Everything above the "buffered input" functions sees the log as
 * buf[pos..len), the bytes from file offset buf_off + pos on, made
 * available by fill(n) and moved by seek_to (forward) and rewind_to; a
 * chunk's pointers (c->h, payload) point into buf and stay valid until the
 * next sf_log_next. Two ways fill that window:
 *   - a regular file (a log that came through a pipe is one too: its
 *     spooled copy) is mapped whole (see "The mapping"): buf is the
 *     mapping, buf_off 0, and fill, seek_to and rewind_to only move pos and
 *     len, checking the file's size with fstat at most every MAP_WINDOW
 *     bytes; the kernel copies nothing, a pass that reads only chunk
 *     headers (the prescan, which also counts each thread's bytes for
 *     runcalls.c's split of threads between workers; a worker framing the
 *     other workers' chunks) touches only their pages, and the
 *     pages behind the position are given back (MADV_DONTNEED), so RSS does
 *     not grow with the log. A truncation under the reader raises SIGBUS:
 *     the handler names the file and exits 1.
 *   - otherwise (mmap failed, SFTRACE_NO_MMAP set in the environment, a
 *     block device) read() into a buffer of BUF_SIZE that keeps buf[0] at a
 *     chunk boundary and grows to the largest chunk.
 * Pages behind the position may be refaulted (after a rewind) at a cost in
 * time only; they are never invalid while the file keeps its size.
 *
 * Decoding. A packed EVENTS chunk's records are decoded once, when the
 * chunk is checked (check_packed, decode_records), into the 16-byte
 * records the call engine reads; a reader can have that done a few chunks
 * ahead by a thread of its own (sf_log_set_ahead, "decoding ahead" below),
 * which reads with pread and decides nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logread.h"
#include "xalloc.h"
#include "pack.h"

#define BUF_SIZE (2u << 20) /* read buffer; grows to the largest chunk */
#define HEADER_MAX (1u << 20)
/* A mapped log (see "The mapping"): how far past the read position fill()
 * validates the mapping against the file's size at a time, how much of the
 * consumed range is dropped from the page tables at a time, and how much
 * address space is reserved past the size at open for a log that grows. */
#define MAP_WINDOW (4u << 20)
#define MAP_DROP (2u << 20)
#define MAP_SLACK ((size_t)1 << 30)

struct clockfit {
    uint64_t n;
    uint64_t x0, y0;              /* anchor: the first pair */
    long double sx, sy, sxx, sxy; /* sums of dx, dy, dx*dx, dx*dy */
    uint64_t ymin, ymax;          /* span of the pairs, mono ns */
    uint64_t hz;                  /* first nonzero tsc_hz of a TSC process */
    int dirty;
    double a, b;
    int from_hz;
    struct sf_clockline line; /* a and b in fixed point (logread.h) */
};

struct sf_log {
    char *path;
    int fd;
    uint64_t fsize; /* UINT64_MAX when not a regular file */
    uint8_t *buf;
    size_t cap, pos, len; /* buf[pos..len) holds unread data */
    uint64_t buf_off;     /* file offset of buf[0] */
    int eof;              /* read() returned 0 */
    /* mapped (map != NULL): buf == map, buf_off 0, and len the end of what
     * fstat last said the file holds, at most MAP_WINDOW past pos */
    uint8_t *map;
    size_t maplen;  /* bytes of address space mapped (the file and slack) */
    size_t dropped; /* map[0..dropped) was given back (MADV_DONTNEED) */
    int mapslot;    /* its entry in the SIGBUS table */
    int state;      /* 0 reading, 1 at end, -1 error */
    int prescanned;
    int adopted;             /* the prescan was another reader's (sf_log_prescan_from) */
    struct sf_map *tidbytes; /* sf_log_prescan_tids */
    struct sf_file_header hdr;
    char err[SF_ERRLEN];
    uint64_t skipped; /* chunks of unknown types */

    /* damage (see logread.h) */
    char why[SF_ERRLEN]; /* why the chunk being read is bad ... */
    uint64_t why_off;    /* ... and where */
    sf_log_warn_fn *warn;
    void *warn_arg;
    uint64_t nwarn, good, good_ev;
    uint64_t bad_chunks, bad_chunk_bytes, bad_ranges, bad_range_bytes;
    uint64_t bad_ev, bad_ev_bytes; /* of bad_chunks: EVENTS with bad records */
    int headers_only;              /* sf_log_set_headers_only */
    int truncated;
    uint64_t trunc_off, trunc_bytes;
    struct sf_map warned; /* pid -> 1: its chunks without an image were reported */
    sf_log_skip_fn *skip; /* sf_log_set_skip */
    void *skip_ctx;
    /* flight-recorder snapshots (sf_log_set_snapshot) */
    int64_t snap_want;       /* -1: all; 0: each image's last; N: each image's Nth */
    struct sf_map snap_last; /* prescan: pid << 32 | image ordinal -> its last snapshot */
    struct sf_map snap_ord;  /* pid -> ordinal of its current image (PROCESS chunks) */
    struct sf_map snap_in;   /* pid -> 0 outside a snapshot, 1 in the one read, 2 in another */
    uint32_t snap_max;       /* prescan: the most snapshots of any image */
    uint32_t nstarts;        /* prescan: MARK chunks of kind START */
    uint32_t nforks;         /* prescan: PROCESS chunks of forked children */

    struct sf_image **images;
    size_t nimages, imgcap;
    struct sf_map pidmap; /* pid -> index + 1 of its current image */
    struct sf_obj **objs; /* every object, for freeing */
    size_t nobjs, objcap;
    struct clockfit fit;
    struct sf_pack_state pack; /* for checking packed chunks */
    struct sf_decoded *dec;    /* the last packed chunk, decoded */
    size_t deccap;
    struct ahead *ahead; /* sf_log_set_ahead */
};

static int take_ahead(struct sf_log *log, struct sf_chunkv *c);
static void ahead_stop(struct sf_log *log);

/* ---- small helpers ------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(struct sf_log *log, uint64_t off,
                                                      const char *fmt, ...)
{
    int n = snprintf(log->err, sizeof log->err, "%s: offset %" PRIu64 ": ", log->path, off);
    if (n < 0 || (size_t)n >= sizeof log->err)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log->err + n, sizeof log->err - n, fmt, ap);
    va_end(ap);
    log->state = -1;
    return -1;
}

/* ---- the map ------------------------------------------------------------ */

static size_t map_slot(const struct sf_map *m, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h ^ (h >> 29)) & (m->cap - 1);
    while (m->used[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

uint64_t *sf_map_get(struct sf_map *m, uint64_t key, int create)
{
    if (m->cap) {
        size_t i = map_slot(m, key);
        if (m->used[i])
            return &m->vals[i];
    }
    if (!create)
        return NULL;
    if ((m->n + 1) * 2 > m->cap) {
        struct sf_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->keys = sf_xcalloc(m->cap, sizeof *m->keys);
        m->vals = sf_xcalloc(m->cap, sizeof *m->vals);
        m->used = sf_xcalloc(m->cap, 1);
        for (size_t j = 0; j < old.cap; j++) {
            if (!old.used[j])
                continue;
            size_t k = map_slot(m, old.keys[j]);
            m->used[k] = 1;
            m->keys[k] = old.keys[j];
            m->vals[k] = old.vals[j];
        }
        free(old.keys);
        free(old.vals);
        free(old.used);
    }
    size_t i = map_slot(m, key);
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = 0;
    m->n++;
    return &m->vals[i];
}

void sf_map_free(struct sf_map *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

/* ---- buffered input ----------------------------------------------------- */

static uint64_t cur_off(const struct sf_log *log)
{
    return log->buf_off + log->pos;
}

/*
 * The mapping. A regular file is mapped (PROT_READ, MAP_SHARED, with
 * MAP_SLACK of address space past its size at open, so that a log that
 * grows while it is read needs no new mapping and pointers into it stay
 * valid), and buf points at the mapping: the kernel copies nothing, and
 * fill, seek_to and rewind_to only move positions. Pages behind the read
 * position are given back every MAP_DROP bytes (MADV_DONTNEED: the page
 * cache keeps them; a later access, after a rewind, maps them again), so
 * the reader's RSS stays a few MB whatever the size of the log.
 *
 * A page of a mapping past the end of its file raises SIGBUS. The reader
 * reads only below the size fstat gave (len), and asks fstat again at least
 * every MAP_WINDOW bytes, so a log that someone truncated before the reader
 * got there reads as it would through read(): it ends there (truncation).
 * A truncation inside the window just checked cannot be seen coming: then
 * the SIGBUS handler below finds the fault inside a log's mapping and ends
 * the process with "FILE: changed while being read" and exit status 1,
 * rather than a crash. When mmap fails, or the table of mappings is full,
 * the log is read with read() into buf as before.
 */
#define MAP_SLOTS 64
static struct mapslot {
    _Atomic(uintptr_t) lo; /* 0: free */
    size_t len;
    char msg[512];
    size_t msglen;
} mapslots[MAP_SLOTS];
static struct sigaction old_bus;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAP_SLOTS; i++) {
        uintptr_t lo = atomic_load(&mapslots[i].lo);
        if (lo && a >= lo && a - lo < mapslots[i].len) {
            ssize_t w = write(2, mapslots[i].msg, mapslots[i].msglen);
            (void)w;
            _exit(1);
        }
    }
    /* not a log's: what would have happened without us */
    if ((old_bus.sa_flags & SA_SIGINFO) && old_bus.sa_sigaction) {
        old_bus.sa_sigaction(sig, si, uc);
        return;
    }
    if (old_bus.sa_handler != SIG_DFL && old_bus.sa_handler != SIG_IGN) {
        old_bus.sa_handler(sig);
        return;
    }
    signal(SIGBUS, SIG_DFL); /* the fault happens again on return: the default action */
}

static void bus_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old_bus);
}

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

/* Map the regular file fd of size bytes: 0 and log->map set, or -1 (the
 * caller reads with read()). */
static int map_log(struct sf_log *log, uint64_t size)
{
    if (getenv("SFTRACE_NO_MMAP") || size > SIZE_MAX / 2 - MAP_SLACK)
        return -1;
    pthread_once(&bus_once, bus_install);
    size_t len = (size_t)size + MAP_SLACK;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, log->fd, 0);
    if (m == MAP_FAILED)
        return -1;
    int slot = -1;
    pthread_mutex_lock(&map_lock);
    for (int i = 0; i < MAP_SLOTS && slot < 0; i++)
        if (!atomic_load(&mapslots[i].lo))
            slot = i;
    if (slot >= 0) {
        struct mapslot *s = &mapslots[slot];
        int n = snprintf(s->msg, sizeof s->msg,
                         "sftrace: %s: changed while being read (truncated by another "
                         "process?): cannot go on\n",
                         log->path);
        s->msglen = n < 0 ? 0 : (size_t)n < sizeof s->msg ? (size_t)n : sizeof s->msg - 1;
        s->len = len;
        atomic_store(&s->lo, (uintptr_t)m);
    }
    pthread_mutex_unlock(&map_lock);
    if (slot < 0) {
        munmap(m, len);
        return -1;
    }
    madvise(m, len, MADV_SEQUENTIAL);
    log->map = m;
    log->maplen = len;
    log->mapslot = slot;
    log->buf = m;
    log->cap = len;
    log->buf_off = 0;
    log->pos = log->len = 0;
    log->dropped = 0;
    return 0;
}

static void unmap_log(struct sf_log *log)
{
    if (!log->map)
        return;
    munmap(log->map, log->maplen);
    pthread_mutex_lock(&map_lock);
    atomic_store(&mapslots[log->mapslot].lo, 0);
    pthread_mutex_unlock(&map_lock);
    log->map = NULL;
    log->buf = NULL;
}

/* A mapped log: make buf[pos..pos+n) valid if the file has it, checking
 * the file's size (at least every MAP_WINDOW bytes), and give back what is
 * behind the position. */
static int64_t map_fill(struct sf_log *log, size_t n)
{
    size_t page = 4096;
    if (log->pos >= log->dropped + MAP_DROP + page) {
        size_t to = log->pos & ~(page - 1);
        madvise(log->map + log->dropped, to - log->dropped, MADV_DONTNEED);
        log->dropped = to;
    }
    struct stat st;
    if (fstat(log->fd, &st) < 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    if (size > log->maplen && size <= SIZE_MAX / 2 - MAP_SLACK) {
        /* grew past the slack: a larger mapping, maybe elsewhere (the
         * pointers into the old one were the last chunk's: sf_log_next is
         * reading the next one) */
        size_t len = (size_t)size + MAP_SLACK;
        void *m = mremap(log->map, log->maplen, len, MREMAP_MAYMOVE);
        if (m != MAP_FAILED) {
            struct mapslot *s = &mapslots[log->mapslot];
            pthread_mutex_lock(&map_lock);
            atomic_store(&s->lo, 0);
            s->len = len;
            atomic_store(&s->lo, (uintptr_t)m);
            pthread_mutex_unlock(&map_lock);
            log->map = log->buf = m;
            log->maplen = log->cap = len;
        }
    }
    if (size > log->maplen)
        size = log->maplen;
    uint64_t want = (uint64_t)log->pos + (n > MAP_WINDOW ? n : MAP_WINDOW);
    uint64_t end = size < want ? size : want;
    /* shrunk below what was checked: the log ends there, as with read() */
    log->len = end > log->pos ? (size_t)end : log->pos;
    return (int64_t)(log->len - log->pos < n ? log->len - log->pos : n);
}

/* Make n bytes available at buf+pos if the file has them; returns how many
 * are (may be fewer at the end of the file), or -1 on a read error. */
static int64_t fill(struct sf_log *log, size_t n)
{
    if (log->len - log->pos >= n)
        return (int64_t)n;
    if (log->map)
        return map_fill(log, n);
    if (log->cap - log->pos < n && log->pos) { /* keep buf[0] at a chunk boundary */
        memmove(log->buf, log->buf + log->pos, log->len - log->pos);
        log->buf_off += log->pos;
        log->len -= log->pos;
        log->pos = 0;
    }
    while (log->len - log->pos < n && !log->eof) {
        if (log->len == log->cap) {
            /* Grow only as data arrives (doubling, up to what is asked), so
             * that a size read from a pipe costs memory only if the bytes
             * are really there. */
            size_t want = 2 * log->cap;
            if (want > log->pos + n)
                want = log->pos + n;
            log->buf = sf_xrealloc(log->buf, want);
            log->cap = want;
        }
        ssize_t r = read(log->fd, log->buf + log->len, log->cap - log->len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            log->eof = 1;
        log->len += (size_t)r;
    }
    return (int64_t)(log->len - log->pos < n ? log->len - log->pos : n);
}

/* Move the read position to file offset off (>= the current one). */
static int seek_to(struct sf_log *log, uint64_t off)
{
    if (off <= log->buf_off + log->len) {
        log->pos = (size_t)(off - log->buf_off);
        return 0;
    }
    if (log->map) { /* past what was checked: fill checks it */
        uint64_t lim = log->maplen;
        log->pos = log->len = (size_t)(off < lim ? off : lim);
        return 0;
    }
    if (lseek(log->fd, (off_t)off, SEEK_SET) == (off_t)-1)
        return -1;
    log->buf_off = off;
    log->pos = log->len = 0;
    log->eof = 0;
    return 0;
}

/* Rewind to an earlier file offset. */
static int rewind_to(struct sf_log *log, uint64_t off)
{
    if (off >= log->buf_off && off <= log->buf_off + log->len) {
        log->pos = (size_t)(off - log->buf_off);
        if (log->map) {
            if (log->pos < log->dropped) /* read again: given back again */
                log->dropped = log->pos & ~(size_t)4095;
            if (log->len - log->pos > MAP_WINDOW) /* so that fill gives back as it goes */
                log->len = log->pos + MAP_WINDOW;
        }
        return 0;
    }
    if (log->map)
        return seek_to(log, off);
    if (lseek(log->fd, (off_t)off, SEEK_SET) == (off_t)-1)
        return -1;
    log->buf_off = off;
    log->pos = log->len = 0;
    log->eof = 0;
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

/*
 * Logs that arrive through a pipe (a FIFO, `-` or /dev/stdin fed by a pipe,
 * a socket). Several passes read a log and each opens it by its path: the
 * engine's survey and its scan of the calls open at a START, the flows'
 * scan for keys, report's workers. A pipe can be read once: the second
 * open read on from wherever the first had stopped, and the tools showed
 * a part of the log as damage, or dropped it silently. So the first open
 * of a path that is not a regular file copies the stream into an unlinked
 * temporary file (in $TMPDIR, else /tmp), once its first bytes are an
 * sftrace log's magic (so /dev/zero is refused at once, not copied for
 * ever), and every open of that path in this process reads the copy, with
 * its own file offset. Memory stays bounded; the copy takes disk space
 * equal to the log's size.
 */
static struct spool {
    char *path;
    int fd;
} * spools;
static size_t nspools;
static pthread_mutex_t spool_lock = PTHREAD_MUTEX_INITIALIZER;

/* A new open file description of the spool (its own offset). */
static int spool_reopen(int fd)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return open(proc, O_RDONLY | O_CLOEXEC);
}

/* Copy the stream in fd (closed here) to a temporary file: its descriptor,
 * or -1 with err set. */
static int spool_stream(const char *path, int in, char *err, size_t errlen)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int out = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (out < 0) {
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/sftrace-pipe-XXXXXX", dir);
        out = mkostemp(tmpl, O_CLOEXEC);
        if (out >= 0)
            unlink(tmpl);
    }
    if (out < 0) {
        snprintf(err, errlen,
                 "%s: not a regular file, and no temporary file in %s to copy it to: %s "
                 "(TMPDIR names the directory)",
                 path, dir, strerror(errno));
        close(in);
        return -1;
    }
    size_t cap = 1u << 20;
    uint8_t *b = sf_xrealloc(NULL, cap);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(in, b, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: offset %" PRIu64 ": read error: %s", path, total,
                     strerror(errno));
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t w = 0; w < r;) {
            ssize_t k = write(out, b + w, (size_t)(r - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                snprintf(err, errlen,
                         "%s: cannot copy it from the pipe to a temporary file in %s (%" PRIu64
                         " bytes copied): %s",
                         path, dir, total + (uint64_t)w, strerror(errno));
                rc = -1;
                break;
            }
            w += k;
        }
        if (rc < 0)
            break;
        uint64_t before = total;
        total += (uint64_t)r;
        /* not a log: keep what came (the header check says what is wrong) */
        if (before < 8 && total >= 8) {
            uint8_t magic[8];
            if (pread(out, magic, 8, 0) != 8 || memcmp(magic, SF_FILE_MAGIC, 8) != 0)
                break;
        }
    }
    free(b);
    close(in);
    if (rc < 0) {
        close(out);
        return -1;
    }
    return out;
}

/* The descriptor to read path from: the file itself, or a copy of the
 * stream it is (see above). */
static int open_log_fd(const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&spool_lock);
    for (size_t i = 0; i < nspools; i++)
        if (!strcmp(spools[i].path, path)) {
            int fd = spool_reopen(spools[i].fd);
            if (fd < 0)
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
            pthread_mutex_unlock(&spool_lock);
            return fd;
        }
    int fd = !strcmp(path, "-") ? fcntl(0, F_DUPFD_CLOEXEC, 3) : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory", path);
        close(fd);
        fd = -1;
    } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        int sp = spool_stream(path, fd, err, errlen);
        fd = sp < 0 ? -1 : spool_reopen(sp);
        if (sp >= 0 && fd < 0) {
            snprintf(err, errlen, "%s: cannot reopen its copy: %s", path, strerror(errno));
            close(sp);
        } else if (sp >= 0) {
            spools = sf_xrealloc(spools, (nspools + 1) * sizeof *spools);
            spools[nspools++] = (struct spool){sf_xstrndup(path, strlen(path)), sp};
        }
    }
    pthread_mutex_unlock(&spool_lock);
    return fd;
}

struct sf_log *sf_log_open(const char *path, char *err, size_t errlen)
{
    int fd = open_log_fd(path, err, errlen);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct sf_log *log = sf_xcalloc(1, sizeof *log);
    log->snap_want = -1;
    log->path = sf_xstrndup(path, strlen(path));
    log->fd = fd;
    log->fsize = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
    log->cap = BUF_SIZE;
    if (log->fsize < BUF_SIZE) /* a small file: a small buffer */
        log->cap = (size_t)(log->fsize + 4096) & ~(size_t)4095;
    else if (log->fsize == UINT64_MAX) /* a pipe: start small, fill grows it */
        log->cap = 64u << 10;
    log->fit.dirty = 1;
    if (!S_ISREG(st.st_mode) || map_log(log, log->fsize) < 0)
        log->buf = sf_xrealloc(NULL, log->cap);

    struct sf_file_header *h = &log->hdr;
    int64_t got = fill(log, sizeof *h);
    const char *what = NULL;
    if (got < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        sf_log_close(log);
        return NULL;
    }
    if (got == 0) {
        what = "empty file, not an sftrace log";
    } else if ((size_t)got < sizeof h->magic ||
               memcmp(log->buf, SF_FILE_MAGIC, sizeof h->magic) != 0) {
        what = "not an sftrace log (magic)";
    } else if ((size_t)got < sizeof *h) {
        snprintf(err, errlen,
                 "%s: offset %" PRId64 ": file header truncated (%" PRId64 " of %zu bytes)", path,
                 got, got, sizeof *h);
        sf_log_close(log);
        return NULL;
    }
    if (what) {
        snprintf(err, errlen, "%s: offset 0: %s", path, what);
        sf_log_close(log);
        return NULL;
    }
    memcpy(h, log->buf, sizeof *h);
    if (h->version_major > SF_VERSION_MAJOR) {
        snprintf(err, errlen,
                 "%s: offset 8: log version %u.%u is newer than this sftrace supports (%u.%u) "
                 "(version_major)",
                 path, h->version_major, h->version_minor, SF_VERSION_MAJOR, SF_VERSION_MINOR);
        sf_log_close(log);
        return NULL;
    }
    if (h->version_major == 0) {
        snprintf(err, errlen, "%s: offset 8: bad log version 0.%u (version_major)", path,
                 h->version_minor);
        sf_log_close(log);
        return NULL;
    }
    if (h->header_size < sizeof *h || h->header_size > HEADER_MAX || h->header_size % 8) {
        snprintf(err, errlen, "%s: offset 12: bad file header size %u (header_size)", path,
                 h->header_size);
        sf_log_close(log);
        return NULL;
    }
    got = fill(log, h->header_size);
    if (got < (int64_t)h->header_size) {
        snprintf(err, errlen,
                 "%s: offset %" PRId64 ": file header truncated (%" PRId64
                 " of %u bytes) (header_size)",
                 path, got < 0 ? 0 : got, got < 0 ? 0 : got, h->header_size);
        sf_log_close(log);
        return NULL;
    }
    log->pos = h->header_size;
    return log;
}

void sf_log_close(struct sf_log *log)
{
    if (!log)
        return;
    ahead_stop(log);
    free(log->dec);
    if (log->fd >= 0)
        close(log->fd);
    for (size_t i = 0; i < log->nimages; i++) {
        struct sf_image *im = log->images[i];
        free((char *)im->name);
        free((char *)im->exe);
        free((char *)im->cmdline);
        free(im->objs);
        free(im);
    }
    for (size_t i = 0; i < log->nobjs; i++) {
        struct sf_obj *o = log->objs[i];
        free((void *)o->func_addr);
        free((char *)o->path);
        free((void *)o->build_id);
        free(o->names);
        free(o);
    }
    free(log->images);
    free(log->objs);
    sf_map_free(&log->pidmap);
    sf_map_free(&log->warned);
    sf_map_free(&log->snap_last);
    sf_map_free(&log->snap_ord);
    sf_map_free(&log->snap_in);
    if (log->map)
        unmap_log(log);
    else
        free(log->buf);
    free(log->path);
    free(log);
}

const struct sf_file_header *sf_log_header(const struct sf_log *log)
{
    return &log->hdr;
}
const char *sf_log_path(const struct sf_log *log)
{
    return log->path;
}
uint64_t sf_log_file_size(const struct sf_log *log)
{
    return log->fsize;
}
const char *sf_log_error(const struct sf_log *log)
{
    return log->err;
}
uint64_t sf_log_offset(const struct sf_log *log)
{
    return cur_off(log);
}
void sf_log_set_skip(struct sf_log *log, sf_log_skip_fn *fn, void *ctx)
{
    log->skip = fn;
    log->skip_ctx = ctx;
}

uint64_t sf_log_skipped(const struct sf_log *log)
{
    return log->skipped;
}
size_t sf_log_nimages(const struct sf_log *log)
{
    return log->nimages;
}

struct sf_image *sf_log_image_at(struct sf_log *log, size_t i)
{
    return i < log->nimages ? log->images[i] : NULL;
}

struct sf_image *sf_log_image(struct sf_log *log, uint32_t pid)
{
    uint64_t *v = sf_map_get(&log->pidmap, pid, 0);
    return v && *v ? log->images[*v - 1] : NULL; /* 0: its PROCESS chunk was bad */
}

/* ---- the clock ---------------------------------------------------------- */

static void fit_add(struct clockfit *f, uint64_t tsc, uint64_t mono)
{
    if (!tsc || !mono)
        return;
    if (!f->n) {
        f->x0 = tsc;
        f->y0 = mono;
        f->ymin = f->ymax = mono;
    }
    long double dx = (long double)(int64_t)(tsc - f->x0);
    long double dy = (long double)(int64_t)(mono - f->y0);
    f->n++;
    f->sx += dx;
    f->sy += dy;
    f->sxx += dx * dx;
    f->sxy += dx * dy;
    if (mono < f->ymin)
        f->ymin = mono;
    if (mono > f->ymax)
        f->ymax = mono;
    f->dirty = 1;
}

static void fit_hz(struct clockfit *f, uint64_t hz)
{
    if (!f->hz && hz) {
        f->hz = hz;
        f->dirty = 1;
    }
}

/* f's a and b as its fixed-point line (logread.h: struct sf_clockline),
 * with no libm (the tools that link logread.c alone do not take it). */
static void set_line(struct clockfit *f)
{
    struct sf_clockline *l = &f->line;
    l->x0 = f->x0;
    l->y0 = f->y0;
    long double b = f->b > 0 ? f->b : 0, a = f->a, p = 1;
    unsigned s = 0;
    while (s < SF_CLOCK_SHIFT && b * p * 2 < 0x1p62L)
        s++, p *= 2;
    long double m = b * p;
    l->m = m >= 0x1p62L ? (int64_t)1 << 62 : (int64_t)(m + 0.5L);
    l->shift = s;
    /* |a| is small for any real fit (the line goes through the mean
     * point); a garbage one is clamped to keep the sum in range */
    if (!(a > -0x1p62L))
        a = -0x1p62L;
    if (!(a < 0x1p62L))
        a = 0x1p62L;
    long double c = (a + 0.5L) * p;
    __int128 ci = (__int128)c; /* toward 0: floor for negative c below */
    if ((long double)ci > c)
        ci--;
    l->c = ci;
}

static void fit_compute(struct clockfit *f)
{
    f->dirty = 0;
    f->from_hz = 1;
    f->b = f->hz ? 1e9 / (double)f->hz : 1.0;
    f->a = 0;
    if (!f->n) {
        set_line(f);
        return;
    }
    long double n = (long double)f->n;
    long double mx = f->sx / n, my = f->sy / n;
    if (f->n >= 2 && (f->ymax - f->ymin >= 1000000 || !f->hz)) {
        long double vxx = f->sxx / n - mx * mx;
        long double cxy = f->sxy / n - mx * my;
        if (vxx > 0) {
            long double b = cxy / vxx;
            if (isfinite((double)b) && b > 0) {
                f->b = (double)b;
                f->from_hz = 0;
            }
        }
    }
    /* The line goes through the mean point. */
    f->a = (double)(my - (long double)f->b * mx);
    set_line(f);
}

int64_t sf_log_ns(struct sf_log *log, const struct sf_image *img, uint64_t ts)
{
    if (img && img->clock == SF_CLOCK_MONO)
        return (int64_t)ts;
    struct clockfit *f = &log->fit;
    if (f->dirty)
        fit_compute(f);
    return sf_clock_ns(&f->line, ts);
}

void sf_log_clockinfo(struct sf_log *log, struct sf_clockinfo *ci)
{
    struct clockfit *f = &log->fit;
    if (f->dirty)
        fit_compute(f);
    ci->npairs = f->n;
    ci->x0 = f->x0;
    ci->y0 = f->y0;
    ci->a = f->a;
    ci->b = f->b;
    ci->from_hz = f->from_hz;
    ci->line = f->line;
}

/* ---- chunk checks ------------------------------------------------------- */

static size_t type_size(uint16_t type)
{
    switch (type) {
    case SF_CHUNK_PROCESS:
        return sizeof(struct sf_process);
    case SF_CHUNK_OBJECT:
        return sizeof(struct sf_object);
    case SF_CHUNK_THREAD:
        return sizeof(struct sf_thread);
    case SF_CHUNK_EVENTS:
        return sizeof(struct sf_events);
    case SF_CHUNK_END:
        return SF_END_SIZE_V0; /* minor 1 adds status fields: check h.size */
    case SF_CHUNK_MARK:
        return sizeof(struct sf_mark);
    }
    return sizeof(struct sf_chunk);
}

static const char *type_name(uint16_t type)
{
    switch (type) {
    case SF_CHUNK_PROCESS:
        return "PROCESS";
    case SF_CHUNK_OBJECT:
        return "OBJECT";
    case SF_CHUNK_THREAD:
        return "THREAD";
    case SF_CHUNK_EVENTS:
        return "EVENTS";
    case SF_CHUNK_END:
        return "END";
    case SF_CHUNK_MARK:
        return "MARK";
    }
    return "unknown";
}

/*
 * Read and check the chunk header at the current position (not consuming
 * it). 1 and *h filled, 0 at a clean end of file, -1 on error.
 */

/*
 * How a read of one chunk ended. The negative kinds below RD_IO are damage,
 * with the reason in log->why (at file offset log->why_off).
 */
enum {
    RD_OK = 1,    /* a good chunk */
    RD_EOF = 0,   /* the clean end of the file */
    RD_IO = -1,   /* a read error */
    RD_HDR = -2,  /* the chunk header cannot be trusted (magic, size) */
    RD_PAST = -3, /* the chunk runs past the end of the file */
    RD_BODY = -4, /* a sound header, a chunk that breaks a rule */
};

/* Say why a chunk is bad; the caller decides what that means (a warning, or
 * a candidate turned down while resynchronizing). */
__attribute__((format(printf, 3, 4))) static int bad(struct sf_log *log, uint64_t off,
                                                     const char *fmt, ...)
{
    log->why_off = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log->why, sizeof log->why, fmt, ap);
    va_end(ap);
    return -1;
}

static void image_insert(struct sf_image *im, struct sf_obj *o)
{
    uint64_t lo = o->fid_base, hi = (uint64_t)o->fid_base + o->nfuncs;
    /* Drop the objects whose fid ranges overlap the new one. */
    uint32_t w = 0;
    for (uint32_t i = 0; i < im->nobjs; i++) {
        struct sf_obj *x = im->objs[i];
        uint64_t xlo = x->fid_base, xhi = (uint64_t)x->fid_base + x->nfuncs;
        if (xlo < hi && lo < xhi && o->nfuncs && x->nfuncs)
            continue;
        im->objs[w++] = x;
    }
    im->nobjs = w;
    if (im->nobjs == im->objcap) {
        im->objcap = im->objcap ? im->objcap * 2 : 8;
        im->objs = sf_xrealloc(im->objs, im->objcap * sizeof *im->objs);
    }
    uint32_t i = im->nobjs;
    while (i > 0 && im->objs[i - 1]->fid_base > o->fid_base) {
        im->objs[i] = im->objs[i - 1];
        i--;
    }
    im->objs[i] = o;
    im->nobjs++;
}

struct sf_obj *sf_image_obj(const struct sf_image *img, uint32_t fid, uint32_t *idx)
{
    if (!img)
        return NULL;
    uint32_t lo = 0, hi = img->nobjs;
    while (lo < hi) { /* first object with fid_base > fid */
        uint32_t mid = lo + (hi - lo) / 2;
        if (img->objs[mid]->fid_base <= fid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return NULL;
    struct sf_obj *o = img->objs[lo - 1];
    if (fid - o->fid_base >= o->nfuncs)
        return NULL;
    if (idx)
        *idx = fid - o->fid_base;
    return o;
}

/* 0 if an EXT record with these fields keeps the format's rules, else
 * which one it breaks (check_ext says it in words). */
static int ext_fault(uint32_t sub, uint32_t arg, uint32_t nw)
{
    switch (sub) {
    case SF_EXT_ALLOC:
        return nw < 3 ? 1 : 0;
    case SF_EXT_ARGS:
        return arg > 6 ? 2 : nw < arg ? 3 : 0;
    case SF_EXT_KEY:
        if (arg > SF_KEY_RET)
            return 4;
        /* fall through */
    case SF_EXT_RET:
    case SF_EXT_LOST:
        return nw < 1 ? 5 : 0;
    }
    return 0;
}

static int check_ext(struct sf_log *log, uint64_t off, uint32_t sub, uint32_t arg, uint32_t nw)
{
    switch (ext_fault(sub, arg, nw)) {
    case 1:
        return bad(log, off, "ALLOC record with %u payload words, needs 3 (nwords)", nw);
    case 2:
        return bad(log, off, "ARGS record with %u arguments, at most 6 (arg)", arg);
    case 3:
        return bad(log, off, "ARGS record with %u payload words for %u arguments (nwords)", nw,
                   arg);
    case 4:
        return bad(log, off, "KEY record of register %u, at most %u (arg)", arg, SF_KEY_RET);
    case 5:
        return bad(log, off, "%s record without payload (nwords)",
                   sub == SF_EXT_RET   ? "RET"
                   : sub == SF_EXT_KEY ? "KEY"
                                       : "LOST");
    }
    return 0;
}

/* Check the records of a raw EVENTS chunk: after this the decoder cannot run
 * off the chunk. */
static int check_raw(struct sf_log *log, struct sf_chunkv *c)
{
    const uint32_t *w = (const uint32_t *)c->payload;
    size_t n = c->payload_len / 8; /* records of 8 bytes */
    uint64_t base = c->offset + sizeof(struct sf_events);
    for (size_t i = 0; i < n;) {
        uint32_t w1 = w[2 * i + 1];
        if ((w1 & 3u) != SF_KIND_EXT) {
            i++;
            continue;
        }
        uint32_t nw = sf_w1_nwords(w1), sub = sf_w1_sub(w1);
        uint64_t off = base + 8 * i;
        if (nw > n - i - 1)
            return bad(log, off,
                       "extended record (subtype %u) has %u payload words, only %zu left in "
                       "the chunk (nwords)",
                       sub, nw, n - i - 1);
        if (check_ext(log, off, sub, sf_w1_arg(w1), nw) < 0)
            return -1;
        i += 1 + nw;
    }
    return 0;
}

/* Packed EVENTS chunks larger than this (the runtime writes far smaller
 * ones) are checked without keeping their records. */
#define KEEP_MAX (1u << 22)

/*
 * Decode the records of a packed EVENTS chunk once, with state st: its
 * payload [p, p + len) (padding excluded), tsc_hi and flags. With keep,
 * the records go to *dec (grown as needed; *deccap records plus
 * SF_DECODED_PAD of zeros after the last), *ndec of them. 0 when every
 * record is sound; else -1 with *at the payload offset of the first that
 * is not (its tag there), or -2 with *at that of an EXT record that breaks
 * a rule and its fields in *r. check_packed says which; the decoding
 * thread (below) only learns that it must leave the chunk to it.
 */
static int decode_records(struct sf_pack_state *st, uint32_t tsc_hi, uint32_t flags,
                          const uint8_t *payload, size_t len, int keep, struct sf_decoded **dec,
                          size_t *deccap, uint32_t *ndec, size_t *at, struct sf_unpacked *r)
{
    sf_unpack_begin(st, tsc_hi, flags);
    const uint8_t *p = payload, *end = p + len;
    /* a record is at least 2 bytes an event */
    size_t want = len / 2 + 1, n = 0;
    if (keep && want > *deccap) {
        *deccap = want;
        *dec = sf_xrealloc(*dec, (want + SF_DECODED_PAD) * sizeof **dec);
    }
    struct sf_decoded *d0 = keep ? *dec : NULL;
    for (;;) {
        /* the common records by the fast path, then one by the careful
         * one (the record it stopped at: an ext, the chunk's end, damage) */
        if (keep)
            n += sf_unpack_run(st, payload, &p, end, d0 + n, *deccap - n);
        const uint8_t *q = p;
        int k = sf_unpack(st, &p, end, r);
        if (k == 0) {
            *ndec = (uint32_t)n;
            if (keep)
                memset(d0 + n, 0, SF_DECODED_PAD * sizeof *d0);
            return 0;
        }
        *at = (size_t)(q - payload);
        if (k < 0)
            return -1;
        if (keep && n < *deccap) { /* field by field: see struct sf_decoded */
            struct sf_decoded *d = &d0[n++];
            d->t = r->t;
            d->fid = r->fid;
            d->kr = r->kind | (uint32_t)(q - payload) << 2;
        }
        if (r->kind == SF_KIND_EXT && ext_fault(r->sub, r->arg, r->nwords))
            return -2;
    }
}

/* Check a packed EVENTS chunk by decoding it once (or take the records the
 * decoding thread made of it). */
static int check_packed(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_events *e = c->u.events;
    if (e->pad >= 8 || e->pad > c->payload_len)
        return bad(log, c->offset, "packed EVENTS chunk with %u bytes of padding (pad)", e->pad);
    if (log->ahead && take_ahead(log, c))
        return 0;
    uint64_t base = c->offset + sizeof(struct sf_events);
    struct sf_unpacked r;
    size_t at = 0;
    int keep = c->payload_len <= KEEP_MAX;
    uint32_t n = 0;
    int k = decode_records(&log->pack, e->tsc_hi, c->h->flags, c->payload, c->payload_len - e->pad,
                           keep, &log->dec, &log->deccap, &n, &at, &r);
    if (k == -1)
        return bad(log, base + at,
                   "bad packed record (tag 0x%02x): it runs past the end of the chunk or "
                   "implies a function nothing entered (records)",
                   c->payload[at]);
    if (k == -2)
        return check_ext(log, base + at, r.sub, r.arg, r.nwords);
    c->dec = keep ? log->dec : NULL;
    c->ndec = n;
    return 0;
}

static int check_records(struct sf_log *log, struct sf_chunkv *c)
{
    if (c->h->flags & SF_EVENTS_PACKED)
        return check_packed(log, c);
    return check_raw(log, c);
}

/* Pass a damage warning on: "FILE: offset N: ...". Past SF_WARN_MAX, only
 * counted. */
__attribute__((format(printf, 3, 4))) static void warn(struct sf_log *log, uint64_t off,
                                                       const char *fmt, ...)
{
    char msg[2 * SF_ERRLEN];
    log->nwarn++;
    if (log->nwarn > SF_WARN_MAX + 1)
        return;
    int n = snprintf(msg, sizeof msg, "%s: offset %" PRIu64 ": ", log->path, off);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    if (log->nwarn == SF_WARN_MAX + 1) {
        snprintf(msg + n, sizeof msg - n,
                 "more damage: not reported one by one, the summary counts it");
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + n, sizeof msg - n, fmt, ap);
        va_end(ap);
    }
    if (log->warn)
        log->warn(log->warn_arg, msg);
    else
        fprintf(stderr, "sftrace: %s\n", msg);
}

void sf_log_warn_none(void *arg, const char *msg)
{
    (void)arg, (void)msg;
}

void sf_log_set_warn(struct sf_log *log, sf_log_warn_fn *fn, void *arg)
{
    log->warn = fn;
    log->warn_arg = arg;
}

/*
 * Check the chunk header at the current position (not consuming it): RD_OK
 * and *h filled when its magic and size can be trusted and the chunk is
 * wholly in the file (not read yet), else RD_EOF, RD_IO, RD_HDR or RD_PAST.
 */
static int header_sound(struct sf_log *log, const struct sf_chunk *h, uint64_t off);

static int check_header(struct sf_log *log, struct sf_chunk *h)
{
    uint64_t off = cur_off(log);
    int64_t got = fill(log, sizeof *h);
    if (got < 0)
        return bad(log, off, "read error: %s", strerror(errno)), RD_IO;
    if (got == 0)
        return RD_EOF;
    if ((size_t)got < sizeof *h)
        return bad(log, off, "truncated chunk header (%" PRId64 " of %zu bytes)", got, sizeof *h),
               RD_PAST;
    memcpy(h, log->buf + log->pos, sizeof *h);
    return header_sound(log, h, off);
}

/* The checks of check_header on a header h at file offset off. */
static int header_sound(struct sf_log *log, const struct sf_chunk *h, uint64_t off)
{
    if (h->magic != SF_CHUNK_MAGIC)
        return bad(log, off, "bad chunk magic 0x%08x (magic)", h->magic), RD_HDR;
    if (h->size % 8)
        return bad(log, off, "chunk size %u is not a multiple of 8 (size)", h->size), RD_HDR;
    if (h->size > SF_CHUNK_MAX)
        return bad(log, off, "chunk size %u is larger than %u (size)", h->size, SF_CHUNK_MAX),
               RD_HDR;
    size_t need = type_size(h->type);
    if (h->size < need)
        return bad(log, off, "%s chunk size %u is smaller than its header, %zu bytes (size)",
                   type_name(h->type), h->size, need),
               RD_HDR;
    if (log->fsize != UINT64_MAX && off + h->size > log->fsize) {
        struct stat st; /* the log may have grown since we opened it */
        if (fstat(log->fd, &st) == 0 && (uint64_t)st.st_size > log->fsize)
            log->fsize = (uint64_t)st.st_size;
    }
    if (log->fsize != UINT64_MAX && off + h->size > log->fsize)
        return bad(log, off,
                   "%s chunk of %u bytes runs past the end of the file, %" PRIu64
                   " bytes left: truncated (size)",
                   type_name(h->type), h->size, log->fsize - off),
               RD_PAST;
    return RD_OK;
}

/* Check what a chunk says against the format's rules, short of the pid's
 * history (apply_chunk does that) and, unless recs, an EVENTS chunk's
 * records: 0, or -1 and the reason in log->why. */
static int check_body(struct sf_log *log, struct sf_chunkv *c, int recs)
{
    switch (c->h->type) {
    case SF_CHUNK_PROCESS: {
        const struct sf_process *p = c->u.process;
        uint64_t strs = (uint64_t)p->name_len + p->cmdline_len + p->exe_len;
        if (strs > c->payload_len)
            return bad(log, c->offset,
                       "PROCESS strings (name %u + cmdline %u + exe %u bytes) run past the end "
                       "of the chunk, %u bytes (%s)",
                       p->name_len, p->cmdline_len, p->exe_len, c->payload_len,
                       p->name_len > c->payload_len                              ? "name_len"
                       : (uint64_t)p->name_len + p->cmdline_len > c->payload_len ? "cmdline_len"
                                                                                 : "exe_len");
        if (p->clock != SF_CLOCK_TSC && p->clock != SF_CLOCK_MONO)
            return bad(log, c->offset, "unknown clock %u (clock)", p->clock);
        return 0;
    }
    case SF_CHUNK_OBJECT: {
        const struct sf_object *o = c->u.object;
        if ((uint64_t)o->fid_base + o->nfuncs > (uint64_t)SF_FID_MAX + 1)
            return bad(log, c->offset,
                       "function ids %u + %u functions exceed the largest id %u (nfuncs)",
                       o->fid_base, o->nfuncs, SF_FID_MAX);
        uint64_t tab = (uint64_t)o->nfuncs * 8;
        if (tab + o->path_len + o->build_id_len > c->payload_len)
            return bad(log, c->offset,
                       "OBJECT tables (%u functions, path %u, build-id %u bytes) run past the "
                       "end of the chunk, %u bytes (%s)",
                       o->nfuncs, o->path_len, o->build_id_len, c->payload_len,
                       tab > c->payload_len                 ? "nfuncs"
                       : tab + o->path_len > c->payload_len ? "path_len"
                                                            : "build_id_len");
        return 0;
    }
    case SF_CHUNK_EVENTS:
        return recs ? check_records(log, c) : 0;
    case SF_CHUNK_MARK:
        if ((c->u.mark->kind == SF_MARK_SNAP_BEGIN || c->u.mark->kind == SF_MARK_SNAP_END) &&
            c->u.mark->seq == 0)
            return bad(log, c->offset, "snapshot number 0 (seq)");
        return 0;
    }
    return 0;
}

/*
 * Read the chunk at the current position and check it (an EVENTS chunk's
 * records only if recs). RD_OK: *c filled and the position moved past it;
 * anything else leaves the position alone.
 */
static int read_chunk(struct sf_log *log, struct sf_chunkv *c, int recs)
{
    struct sf_chunk h;
    uint64_t off = cur_off(log);
    int r = check_header(log, &h);
    if (r != RD_OK)
        return r;
    /* Headers only: of an EVENTS chunk in a file (its end checked above),
     * just the fixed fields; the records are seeked over. */
    int hdr = !recs && log->headers_only && h.type == SF_CHUNK_EVENTS;
    int part = hdr && log->fsize != UINT64_MAX; /* a pipe: read, not seeked over */
    size_t want = part ? sizeof(struct sf_events) : h.size;
    int64_t got = fill(log, want);
    if (got < 0)
        return bad(log, off, "read error: %s", strerror(errno)), RD_IO;
    if (got < (int64_t)want) /* a pipe: we learn its end only now */
        return bad(log, off,
                   "%s chunk of %u bytes runs past the end of the file, %" PRId64
                   " bytes left: truncated (size)",
                   type_name(h.type), h.size, got),
               RD_PAST;
    memset(c, 0, sizeof *c);
    c->offset = off;
    c->h = (const struct sf_chunk *)(log->buf + log->pos);
    c->u.process = (const struct sf_process *)c->h; /* the union: one pointer */
    size_t ts = type_size(h.type);
    c->payload = hdr ? NULL : (const uint8_t *)c->h + ts;
    c->payload_len = h.size - (uint32_t)ts;
    if (check_body(log, c, recs) < 0)
        return RD_BODY;
    if (log->pos + h.size <= log->len)
        log->pos += h.size;
    else if (seek_to(log, off + h.size) < 0) /* c->h stays valid: buf is not refilled */
        return bad(log, off, "cannot seek: %s", strerror(errno)), RD_IO;
    return RD_OK;
}

/*
 * Whether the chunk of `size` bytes at the current position is followed by
 * a sound chunk header (one that may run past the end of the file) or by
 * the end of the file: then its size can be believed. Keeps the position.
 */
static int sound_after(struct sf_log *log, uint32_t size)
{
    char why[SF_ERRLEN];
    uint64_t why_off = log->why_off, at = cur_off(log) + size;
    struct sf_chunk h;
    int64_t got;
    if (log->fsize != UINT64_MAX) { /* a file: read just the header there */
        if (at > log->fsize)
            return 0;
        got = pread(log->fd, &h, sizeof h, (off_t)at);
        if (got < 0)
            return 0;
        got += size;
    } else {
        got = fill(log, (size_t)size + sizeof h);
        if (got >= (int64_t)(size + sizeof h))
            memcpy(&h, log->buf + log->pos + size, sizeof h);
    }
    if (got < (int64_t)size)
        return 0;
    if ((size_t)got < (size_t)size + sizeof h)
        return 1;                      /* the end of the file, or a truncated header: believable */
    memcpy(why, log->why, sizeof why); /* keep the reason of the chunk before */
    int r = header_sound(log, &h, at);
    memcpy(log->why, why, sizeof why);
    log->why_off = why_off;
    return r != RD_HDR;
}

/*
 * Scan forward from the current position, 8 bytes at a time, for the next
 * plausible chunk: its magic, a type this reader knows, a sane size, and
 * it passes every check, or, failing a check, is followed by a sound header
 * (see sound_after; sf_log_next then reports it on its own). RD_OK with the
 * position there, RD_EOF (the position at the last bytes, fewer than a
 * header) or RD_IO. log->why is clobbered.
 *
 * Checking a candidate costs its size, so a crafted run of candidates that
 * each fail late would make the scan quadratic: past RESYNC_CHECK bytes of
 * checks in one scan, a sound header followed by another (sound_after) is
 * enough, and sf_log_next checks (and maybe skips) the chunk as usual.
 */
#define RESYNC_CHECK (64u << 20)

static int resync(struct sf_log *log)
{
    uint64_t work = 0;
    for (;;) {
        int64_t got = fill(log, sizeof(struct sf_chunk));
        if (got < 0)
            return bad(log, cur_off(log), "read error: %s", strerror(errno)), RD_IO;
        if ((size_t)got < sizeof(struct sf_chunk))
            return RD_EOF;
        const uint8_t *b = log->buf + log->pos;
        size_t avail = log->len - log->pos, i = 0;
        for (; i + sizeof(struct sf_chunk) <= avail; i += 8) {
            uint32_t m;
            memcpy(&m, b + i, 4);
            if (m == SF_CHUNK_MAGIC)
                break;
        }
        log->pos += i;
        if (i + sizeof(struct sf_chunk) > avail)
            continue; /* read more */
        uint64_t q = cur_off(log);
        struct sf_chunk h;
        int r = check_header(log, &h);
        if (r == RD_IO)
            return r;
        if (r == RD_OK && type_size(h.type) != sizeof(struct sf_chunk)) {
            if (work >= RESYNC_CHECK) {
                if (sound_after(log, h.size))
                    return RD_OK;
            } else {
                struct sf_chunkv c;
                r = read_chunk(log, &c, 1);
                if (r == RD_IO)
                    return r;
                if (rewind_to(log, q) < 0)
                    return bad(log, q, "cannot seek: %s", strerror(errno)), RD_IO;
                if (r == RD_OK || (r == RD_BODY && sound_after(log, h.size)))
                    return RD_OK;
                work += h.size;
            }
        }
        /* not a chunk (or one of a type we cannot check): on */
        if (rewind_to(log, q + 8) < 0)
            return bad(log, q, "cannot seek: %s", strerror(errno)), RD_IO;
    }
}

/* Bytes from the current position to the end of the file (after RD_EOF). */
static uint64_t file_end(const struct sf_log *log)
{
    return log->buf_off + log->len;
}

static void poison_pid(struct sf_log *log, uint32_t pid)
{
    uint64_t *v = sf_map_get(&log->pidmap, pid, 0);
    if (v)
        *v = 0; /* sf_log_image: none */
    *sf_map_get(&log->warned, pid, 1) = 1;
}

/*
 * read_chunk found damage (rd) at the current position: report it and skip
 * it. RD_OK with the position at the next chunk to read, RD_EOF when nothing
 * readable is left, RD_IO.
 */
static int recover(struct sf_log *log, int rd)
{
    uint64_t off = cur_off(log), why_off = log->why_off;
    char why[SF_ERRLEN];
    memcpy(why, log->why, sizeof why);
    struct sf_chunk h;
    memset(&h, 0, sizeof h);
    if (log->len - log->pos >= sizeof h)
        memcpy(&h, log->buf + log->pos, sizeof h);
    if (rd == RD_BODY && sound_after(log, h.size)) {
        /* a sound header, a chunk that breaks a rule: skip it */
        log->pos += h.size;
        log->bad_chunks++;
        log->bad_chunk_bytes += h.size;
        if (h.type == SF_CHUNK_EVENTS) { /* only its records can be bad */
            log->bad_ev++;
            log->bad_ev_bytes += h.size;
        }
        if (h.type == SF_CHUNK_PROCESS) {
            poison_pid(log, h.pid);
            warn(log, why_off,
                 "%s: PROCESS chunk at offset %" PRIu64 " (%u bytes) skipped, and with it the "
                 "chunks of pid %u up to its next PROCESS chunk",
                 why, off, h.size, h.pid);
        } else {
            warn(log, why_off, "%s: %s chunk at offset %" PRIu64 " (%u bytes) skipped", why,
                 type_name(h.type), off, h.size);
        }
        return RD_OK;
    }
    int r = RD_EOF;
    if (log->len - log->pos >= sizeof h) {
        log->pos += 8;
        if ((r = resync(log)) == RD_IO)
            return r;
    }
    uint64_t to = r == RD_OK ? cur_off(log) : file_end(log);
    if (rd == RD_PAST && r == RD_OK) /* not truncation: a bad size */
        snprintf(why, sizeof why,
                 "%s chunk size %u runs past the end of the file, %" PRIu64 " bytes left (size)",
                 type_name(h.type), h.size, log->fsize - off);
    if (rd == RD_PAST && r == RD_EOF) {
        log->truncated = 1;
        log->trunc_off = off;
        log->trunc_bytes = to - off;
        warn(log, why_off, "%s; the log ends here", why);
    } else {
        log->bad_ranges++;
        log->bad_range_bytes += to - off;
        if (r == RD_OK)
            warn(log, why_off,
                 "%s: %" PRIu64 " bytes skipped, up to the next chunk at offset %" PRIu64, why,
                 to - off, to);
        else
            warn(log, why_off,
                 "%s: no readable chunk in the last %" PRIu64 " bytes; the log ends here", why,
                 to - off);
    }
    return r;
}

static struct sf_image *new_image(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_process *p = c->u.process;
    struct sf_image *im = sf_xcalloc(1, sizeof *im);
    im->id = (uint32_t)log->nimages;
    im->pid = p->h.pid;
    im->ppid = p->ppid;
    im->flags = p->h.flags;
    im->clock = p->clock;
    im->machine = p->machine ? p->machine : 62; /* 0: before 1.1, always x86_64 */
    im->tsc = p->tsc;
    im->mono_ns = p->mono_ns;
    im->real_ns = p->real_ns;
    im->tsc_hz = p->tsc_hz;
    im->offset = c->offset;
    const uint8_t *s = c->payload;
    im->name = sf_xstrndup(s, strnlen((const char *)s, p->name_len));
    s += p->name_len;
    im->cmdline = sf_xstrndup(s, p->cmdline_len);
    im->cmdline_len = p->cmdline_len;
    s += p->cmdline_len;
    im->exe = sf_xstrndup(s, strnlen((const char *)s, p->exe_len));

    /* A forked child starts with its parent's mappings. */
    struct sf_image *parent = sf_log_image(log, p->ppid);
    if ((p->h.flags & SF_PROC_FORKED) && parent && parent->pid != p->h.pid && parent->nobjs) {
        im->objcap = im->nobjs = parent->nobjs;
        im->objs = sf_xrealloc(NULL, im->objcap * sizeof *im->objs);
        memcpy(im->objs, parent->objs, im->nobjs * sizeof *im->objs);
    }

    if (log->nimages == log->imgcap) {
        log->imgcap = log->imgcap ? log->imgcap * 2 : 16;
        log->images = sf_xrealloc(log->images, log->imgcap * sizeof *log->images);
    }
    log->images[log->nimages++] = im;
    *sf_map_get(&log->pidmap, im->pid, 1) = log->nimages;
    uint64_t *w = sf_map_get(&log->warned, im->pid, 0);
    if (w)
        *w = 0;
    if (!log->prescanned && im->clock == SF_CLOCK_TSC) {
        fit_hz(&log->fit, im->tsc_hz);
        fit_add(&log->fit, im->tsc, im->mono_ns);
    }
    return im;
}

static struct sf_obj *new_object(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_object *o = c->u.object;
    struct sf_obj *x = sf_xcalloc(1, sizeof *x);
    x->img = c->img;
    x->offset = c->offset;
    x->flags = o->h.flags;
    x->load_bias = o->load_bias;
    x->fid_base = o->fid_base;
    x->nfuncs = o->nfuncs;
    x->nsleds = o->nsleds;
    uint64_t *fa = sf_xrealloc(NULL, (size_t)o->nfuncs * 8);
    memcpy(fa, c->payload, (size_t)o->nfuncs * 8);
    x->func_addr = fa;
    const uint8_t *s = c->payload + (size_t)o->nfuncs * 8;
    x->path = sf_xstrndup(s, strnlen((const char *)s, o->path_len));
    s += o->path_len;
    if (o->build_id_len) {
        uint8_t *b = sf_xrealloc(NULL, o->build_id_len);
        memcpy(b, s, o->build_id_len);
        x->build_id = b;
        x->build_id_len = o->build_id_len;
    }
    if (log->nobjs == log->objcap) {
        log->objcap = log->objcap ? log->objcap * 2 : 16;
        log->objs = sf_xrealloc(log->objs, log->objcap * sizeof *log->objs);
    }
    log->objs[log->nobjs++] = x;
    image_insert(c->img, x);
    return x;
}

/*
 * A chunk read_chunk found good (short of an EVENTS chunk's records): make
 * what it describes part of the log's state. 1 if it is for the caller, 0 if
 * skipped: a type this reader does not know, a pid with no image (reported
 * once per pid), an EVENTS chunk the skip filter turned down; -1 with the
 * position back at the chunk if its records are bad (for recover).
 */
/* Snapshot selection: is this chunk (THREAD, EVENTS, MARK) inside a
 * snapshot that was not asked for? */
static int snap_skip(struct sf_log *log, const struct sf_chunkv *c)
{
    uint32_t pid = c->h->pid;
    uint64_t *in = sf_map_get(&log->snap_in, pid, 1);
    if (c->h->type != SF_CHUNK_MARK || c->u.mark->kind < SF_MARK_SNAP_BEGIN)
        return *in == 2;
    if (c->u.mark->kind == SF_MARK_SNAP_END) {
        int other = *in == 2;
        *in = 0;
        return other;
    }
    uint64_t want = (uint64_t)log->snap_want;
    if (!want) { /* the image's last one (a pipe, not prescanned: its first) */
        uint64_t *ord = sf_map_get(&log->snap_ord, pid, 0);
        uint64_t *last = sf_map_get(&log->snap_last, (uint64_t)pid << 32 | (ord ? *ord : 0), 0);
        want = last ? *last : 1;
    }
    *in = c->u.mark->seq == want ? 1 : 2;
    return *in == 2;
}

static int apply_chunk(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_chunk *h = c->h;
    if (h->type == SF_CHUNK_PROCESS) {
        c->img = new_image(log, c);
        (*sf_map_get(&log->snap_ord, h->pid, 1))++;
        *sf_map_get(&log->snap_in, h->pid, 1) = 0;
        return 1;
    }
    if (type_size(h->type) == sizeof(struct sf_chunk)) {
        log->skipped++; /* a newer kind of chunk: skip it */
        return 0;
    }
    if (!(c->img = sf_log_image(log, h->pid))) {
        log->bad_chunks++;
        log->bad_chunk_bytes += h->size;
        uint64_t *w = sf_map_get(&log->warned, h->pid, 1);
        if (!*w) {
            *w = 1;
            warn(log, c->offset,
                 "%s chunk of pid %u comes before any PROCESS chunk of that pid (pid): "
                 "skipped (and so are the pid's other chunks before one, without a message)",
                 type_name(h->type), h->pid);
        }
        return 0;
    }
    if (h->type == SF_CHUNK_MARK &&
        (c->u.mark->kind < SF_MARK_STOP || c->u.mark->kind > SF_MARK_SNAP_END)) {
        log->skipped++; /* a newer kind of mark: skipped, like an unknown chunk type */
        return 0;
    }
    if (log->snap_want >= 0 &&
        (h->type == SF_CHUNK_THREAD || h->type == SF_CHUNK_EVENTS || h->type == SF_CHUNK_MARK) &&
        snap_skip(log, c))
        return 0; /* another snapshot than the one read */
    switch (h->type) {
    case SF_CHUNK_OBJECT:
        c->obj = new_object(log, c);
        break;
    case SF_CHUNK_THREAD:
        memcpy(c->thread_name, c->u.thread->name, 16);
        c->thread_name[16] = 0;
        break;
    case SF_CHUNK_EVENTS:
        if (!log->prescanned && c->img->clock == SF_CLOCK_TSC)
            fit_add(&log->fit, c->u.events->flush_tsc, c->u.events->flush_mono_ns);
        if (log->skip && log->skip(log->skip_ctx, c))
            return 0;    /* the consumer does not want it: its records are not looked at */
        if (!c->payload) /* headers only */
            break;
        if (check_records(log, c) < 0) {
            log->pos = (size_t)(c->offset - log->buf_off); /* for recover */
            return -1;
        }
        break;
    case SF_CHUNK_END:
        c->img->ended = 1;
        memset(&c->img->end, 0, sizeof c->img->end);
        memcpy(&c->img->end, c->u.end,
               c->h->size < sizeof c->img->end ? c->h->size : sizeof c->img->end);
        if (!log->prescanned && c->img->clock == SF_CLOCK_TSC)
            fit_add(&log->fit, c->u.end->tsc, c->u.end->mono_ns);
        break;
    }
    return 1;
}

/* ---- decoding ahead ----------------------------------------------------- */

/*
 * sf_log_set_ahead's thread walks the chunk headers of the file from the
 * reader's position and decodes the records of each packed EVENTS chunk
 * the reader will want into the next free slot of a ring, in file order;
 * check_packed takes the slot of the chunk it is asked to check instead of
 * decoding it, and gives it back at the next sf_log_next. The thread reads
 * the file with pread (ahead_get), not through the reader's mapping (which
 * may move when the file grows: map_fill), and stops at anything it does
 * not find sound (a bad header, a short read): from there the reader
 * decodes for itself. It decides nothing: a chunk it
 * decoded with damage is decoded again by check_packed, which says what is
 * wrong; a chunk the reader skips is dropped with its slot. So the reader's
 * results, messages and damage handling are the same with it or without.
 * What it saves: with the call engine, decoding is about 40 % of the work
 * of a chunk; on two cores a worker's engine and its decoder run side by
 * side, and once one worker of report -j 2 is done, the other one's
 * decoding takes the idle core.
 */
#define AHEAD_SLOTS 8
/* At most this many records' room in the ring (beyond its first slot),
 * and no slot keeps more once given back: chunks of the runtime's are 8k
 * records, one of a hand-made log can be 2M (KEEP_MAX). */
#define AHEAD_RECS (1u << 20)

struct aslot {
    uint64_t off; /* the chunk's file offset */
    struct sf_decoded *dec;
    size_t cap;
    uint32_t ndec;
    size_t need; /* the room its chunk needs, in records (ahead.recs) */
    int ok;      /* decoded to the end with no damage */
};

struct ahead {
    pthread_t th;
    pthread_mutex_t mu;
    /* the reader waits on rcv for a slot (or scanned to pass its chunk),
     * the thread on dcv for room; each is woken only when it waits (rwait,
     * dwait), the thread only once half the ring is free: a wake-up per
     * chunk would cost more than the decoding it hands over */
    pthread_cond_t rcv, dcv;
    int rwait, dwait;
    struct aslot slot[AHEAD_SLOTS];
    uint64_t head, tail; /* slots [head, tail) are filled (index % AHEAD_SLOTS) */
    uint64_t recs;       /* the room of the slots [head, tail) in records */
    int held;            /* the reader holds slot head (a chunk's dec points into it) */
    uint64_t scanned;    /* every chunk below this offset has been looked at */
    int done, stop;
    uint64_t start; /* where the thread began */
    int fd;
    uint8_t *win; /* its window of the file: [woff, woff + wlen) (ahead_get) */
    size_t wcap, wlen;
    uint64_t woff;
    sf_log_want_fn *want;
    void *want_ctx;
    struct sf_pack_state pack;
};

/* [off, off + n) of the file in the thread's window (NULL: the file is
 * shorter, or cannot be read): a header comes with the next AHEAD_PEEK
 * bytes, a chunk to decode alone. pread, not a mapping: page faults on a
 * second mapping of the log cost more system time than the copy of what
 * the thread decodes, and a log cut under it is a short read here (the
 * reader then says where it is truncated), not SIGBUS. */
#define AHEAD_PEEK 4096
static const uint8_t *ahead_get(struct ahead *a, uint64_t off, size_t n)
{
    if (off >= a->woff && off + n <= a->woff + a->wlen)
        return a->win + (off - a->woff);
    size_t want = n > AHEAD_PEEK ? n : AHEAD_PEEK;
    if (want > a->wcap) {
        a->wcap = want;
        a->win = sf_xrealloc(a->win, want);
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(a->fd, a->win + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    a->woff = off;
    a->wlen = got;
    return got >= n ? a->win : NULL;
}

/* The thread has looked at the chunks below off, and filled the slot at
 * tail if need (the room it took, in records): tell a reader waiting for
 * either. */
static void ahead_passed(struct ahead *a, uint64_t off, size_t need)
{
    pthread_mutex_lock(&a->mu);
    if (need) {
        a->tail++;
        a->recs += need;
    }
    a->scanned = off;
    if (a->rwait) {
        a->rwait = 0;
        pthread_cond_signal(&a->rcv);
    }
    pthread_mutex_unlock(&a->mu);
}

static void *ahead_main(void *arg)
{
    struct ahead *a = arg;
    uint64_t off = a->start;
    for (;;) {
        struct sf_chunk h;
        const uint8_t *q = ahead_get(a, off, sizeof h);
        if (!q)
            break;
        memcpy(&h, q, sizeof h);
        if (h.magic != SF_CHUNK_MAGIC || h.size % 8 || h.size > SF_CHUNK_MAX || h.size < sizeof h)
            break; /* damage (or the end of the file): the reader's business */
        if (h.type == SF_CHUNK_EVENTS && h.size >= sizeof(struct sf_events) &&
            (h.flags & SF_EVENTS_PACKED) && (q = ahead_get(a, off, sizeof(struct sf_events)))) {
            struct sf_events ev;
            memcpy(&ev, q, sizeof ev);
            size_t plen = h.size - sizeof ev;
            if (plen <= KEEP_MAX && ev.pad < 8 && ev.pad <= plen &&
                a->want(a->want_ctx, h.pid, ev.tid)) {
                size_t need = plen / 2 + 1; /* decode_records' room for it */
                pthread_mutex_lock(&a->mu);
                if (a->tail - a->head == AHEAD_SLOTS ||
                    (a->tail > a->head && a->recs + need > AHEAD_RECS))
                    while (a->tail > a->head &&
                           (a->tail - a->head > AHEAD_SLOTS / 2 || a->recs + need > AHEAD_RECS) &&
                           !a->stop) {
                        a->dwait = 1;
                        pthread_cond_wait(&a->dcv, &a->mu);
                    }
                int stop = a->stop;
                pthread_mutex_unlock(&a->mu);
                if (stop || !(q = ahead_get(a, off, h.size)))
                    break;
                /* the slot at tail is the thread's alone until tail moves */
                struct aslot *s = &a->slot[a->tail % AHEAD_SLOTS];
                struct sf_unpacked r;
                size_t at;
                s->off = off;
                s->need = need;
                s->ok = decode_records(&a->pack, ev.tsc_hi, h.flags, q + sizeof ev, plen - ev.pad,
                                       1, &s->dec, &s->cap, &s->ndec, &at, &r) == 0;
                ahead_passed(a, off + h.size, need);
                off += h.size;
                continue;
            }
        }
        ahead_passed(a, off + h.size, 0); /* not for the reader */
        off += h.size;
    }
    pthread_mutex_lock(&a->mu);
    a->done = 1;
    pthread_cond_signal(&a->rcv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Drop the slot at head (a->mu held), waking the thread once half the
 * ring is free. */
static void ahead_drop(struct ahead *a)
{
    struct aslot *s = &a->slot[a->head % AHEAD_SLOTS];
    a->recs -= s->need;
    if (s->cap > AHEAD_RECS / 4) { /* a huge chunk's: not kept */
        free(s->dec);
        s->dec = NULL;
        s->cap = 0;
    }
    a->head++;
    if (a->dwait && a->tail - a->head <= AHEAD_SLOTS / 2) {
        a->dwait = 0;
        pthread_cond_signal(&a->dcv);
    }
}

/* Give back the slot the reader holds (at the next chunk). */
static void ahead_release(struct ahead *a)
{
    if (!a->held)
        return;
    pthread_mutex_lock(&a->mu);
    a->held = 0;
    ahead_drop(a);
    pthread_mutex_unlock(&a->mu);
}

/* The records of chunk c from the thread: 1 and c->dec set, or 0 (not
 * decoded ahead, or with damage: check_packed decodes it). */
static int take_ahead(struct sf_log *log, struct sf_chunkv *c)
{
    struct ahead *a = log->ahead;
    int got = 0;
    ahead_release(a);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        if (a->head == a->tail) {
            if (a->done || a->scanned > c->offset || c->offset < a->start)
                break; /* it will not decode this one */
            a->rwait = 1;
            pthread_cond_wait(&a->rcv, &a->mu);
            continue;
        }
        struct aslot *s = &a->slot[a->head % AHEAD_SLOTS];
        if (s->off < c->offset) { /* one the reader skipped */
            ahead_drop(a);
            continue;
        }
        if (s->off == c->offset && s->ok) {
            c->dec = s->dec;
            c->ndec = s->ndec;
            a->held = got = 1;
        } else if (s->off == c->offset) { /* damaged: check_packed says how */
            ahead_drop(a);
        }
        break; /* s->off > c->offset: this one was not decoded ahead */
    }
    pthread_mutex_unlock(&a->mu);
    return got;
}

static void ahead_stop(struct sf_log *log)
{
    struct ahead *a = log->ahead;
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->dcv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    for (int i = 0; i < AHEAD_SLOTS; i++)
        free(a->slot[i].dec);
    free(a->win);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->rcv);
    pthread_cond_destroy(&a->dcv);
    free(a);
    log->ahead = NULL;
}

void sf_log_stop_ahead(struct sf_log *log)
{
    ahead_stop(log);
}

int sf_log_set_ahead(struct sf_log *log, sf_log_want_fn *want, void *ctx)
{
    if (log->ahead || log->fsize == UINT64_MAX || log->fsize <= cur_off(log))
        return -1; /* a pipe, or nothing left */
    struct ahead *a = sf_xcalloc(1, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->rcv, NULL);
    pthread_cond_init(&a->dcv, NULL);
    a->fd = log->fd;
    a->start = a->scanned = cur_off(log);
    a->want = want;
    a->want_ctx = ctx;
    if (pthread_create(&a->th, NULL, ahead_main, a) != 0) {
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->rcv);
        pthread_cond_destroy(&a->dcv);
        free(a);
        return -1;
    }
    log->ahead = a;
    return 0;
}

int sf_log_next(struct sf_log *log, struct sf_chunkv *c)
{
    if (log->ahead)
        ahead_release(log->ahead);
    for (;;) {
        if (log->state)
            return log->state > 0 ? 0 : -1;
        int r = read_chunk(log, c, 0), a = 0;
        if (r == RD_OK && (a = apply_chunk(log, c)) < 0)
            r = RD_BODY; /* bad records */
        if (r < RD_IO && (r = recover(log, r)) == RD_OK)
            continue;
        if (r == RD_IO)
            return fail(log, log->why_off, "%s", log->why);
        if (r == RD_EOF) {
            log->state = 1;
            return 0;
        }
        if (a) {
            log->good++;
            log->good_ev += c->h->type == SF_CHUNK_EVENTS;
            return 1;
        }
    }
}

void sf_log_damage(const struct sf_log *log, struct sf_log_damage *d)
{
    memset(d, 0, sizeof *d);
    d->chunks = log->bad_chunks;
    d->chunk_bytes = log->bad_chunk_bytes;
    d->ranges = log->bad_ranges;
    d->range_bytes = log->bad_range_bytes;
    d->truncated = log->truncated;
    d->trunc_off = log->trunc_off;
    d->trunc_bytes = log->trunc_bytes;
    d->warnings = log->nwarn;
    d->good = log->good;
    d->ev_chunks = log->bad_ev;
    d->ev_chunk_bytes = log->bad_ev_bytes;
    d->ev_good = log->good_ev;
}

void sf_log_set_snapshot(struct sf_log *log, int64_t n)
{
    log->snap_want = n;
}

uint32_t sf_log_starts(const struct sf_log *log)
{
    return log->nstarts;
}

uint32_t sf_log_forks(const struct sf_log *log)
{
    return log->nforks;
}

uint32_t sf_log_snapshots(const struct sf_log *log)
{
    return log->snap_max;
}

void sf_log_set_headers_only(struct sf_log *log, int on)
{
    log->headers_only = on;
}

int sf_log_summary(const struct sf_log *log, char *buf, size_t len)
{
    struct sf_log_damage d;
    sf_log_damage(log, &d);
    return sf_log_summary_of(log->path, &d, buf, len);
}

int sf_log_summary_of(const char *path, const struct sf_log_damage *d, char *buf, size_t len)
{
    if (!d->chunks && !d->ranges && !d->truncated)
        return 0;
    size_t n = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__);                            \
        if (k_ > 0)                                                                                \
            n += (size_t)k_;                                                                       \
        if (n >= len)                                                                              \
            n = len ? len - 1 : 0;                                                                 \
    } while (0)
    ADD("%s: damaged log: ", path);
    const char *sep = "";
    if (d->chunks) {
        ADD("%" PRIu64 " bad chunk%s skipped (%" PRIu64 " bytes)", d->chunks,
            d->chunks == 1 ? "" : "s", d->chunk_bytes);
        sep = ", ";
    }
    if (d->ranges) {
        ADD("%s%" PRIu64 " unreadable range%s skipped (%" PRIu64 " bytes)", sep, d->ranges,
            d->ranges == 1 ? "" : "s", d->range_bytes);
        sep = ", ";
    }
    if (d->truncated)
        ADD("%struncated at offset %" PRIu64 " (%" PRIu64 " bytes of an incomplete chunk)", sep,
            d->trunc_off, d->trunc_bytes);
    ADD("; everything else was read (%" PRIu64 " chunks)", d->good);
#undef ADD
    return 1;
}

/* ---- the first pass ----------------------------------------------------- */

static void map_copy(struct sf_map *to, const struct sf_map *from)
{
    sf_map_free(to);
    for (size_t i = 0; i < from->cap; i++)
        if (from->used[i])
            *sf_map_get(to, from->keys[i], 1) = from->vals[i];
}

void sf_log_prescan_tids(struct sf_log *log, struct sf_map *bytes)
{
    log->tidbytes = bytes;
}

void sf_log_prescan_from(struct sf_log *log, const struct sf_log *from)
{
    log->fit = from->fit;
    map_copy(&log->snap_last, &from->snap_last);
    log->snap_max = from->snap_max;
    log->nstarts = from->nstarts;
    log->nforks = from->nforks;
    log->prescanned = 1;
    log->adopted = 1;
}

int sf_log_prescan(struct sf_log *log)
{
    if (log->adopted)
        return 0; /* done by sf_log_prescan_from */
    uint64_t start = cur_off(log);
    if (lseek(log->fd, 0, SEEK_CUR) == (off_t)-1) {
        snprintf(log->err, sizeof log->err, "%s: cannot prescan: %s", log->path, strerror(errno));
        return -1; /* a pipe: sf_log_next still works, the fit grows as it goes */
    }
    struct sf_map clocks = {0}; /* pid -> clock of its current image */
    struct sf_map ords = {0};   /* pid -> ordinal of its current image */
    sf_map_free(&log->snap_last);
    log->snap_max = 0;
    log->nstarts = 0;
    log->nforks = 0;
    struct clockfit *f = &log->fit;
    memset(f, 0, sizeof *f);
    for (;;) {
        struct sf_chunk h;
        uint64_t off = cur_off(log);
        int r = check_header(log, &h);
        if (r == RD_HDR || r == RD_PAST) {
            /* step over the damage as sf_log_next will */
            if (log->len - log->pos < sizeof h)
                break;
            log->pos += 8;
            if (resync(log) != RD_OK)
                break;
            continue;
        }
        if (r != RD_OK)
            break;
        uint64_t *clk = NULL;
        size_t want = 0;
        switch (h.type) {
        case SF_CHUNK_PROCESS:
            want = sizeof(struct sf_process);
            break;
        case SF_CHUNK_EVENTS:
        case SF_CHUNK_END:
            clk = sf_map_get(&clocks, h.pid, 0);
            if (clk && (*clk == SF_CLOCK_TSC || (log->tidbytes && h.type == SF_CHUNK_EVENTS)))
                want = type_size(h.type);
            break;
        case SF_CHUNK_MARK:
            want = h.size >= sizeof(struct sf_mark) ? sizeof(struct sf_mark) : 0;
            break;
        }
        if (want) {
            if (fill(log, want) < (int64_t)want)
                break;
            const uint8_t *b = log->buf + log->pos;
            if (h.type == SF_CHUNK_MARK) {
                /* snapshots: the last of each image (pid, ordinal) */
                struct sf_mark m;
                memcpy(&m, b, sizeof m);
                uint64_t *ord = sf_map_get(&ords, h.pid, 0);
                log->nstarts += m.kind == SF_MARK_START;
                if (m.kind == SF_MARK_SNAP_BEGIN) {
                    uint64_t *last =
                        sf_map_get(&log->snap_last, (uint64_t)h.pid << 32 | (ord ? *ord : 0), 1);
                    if (m.seq > *last)
                        *last = m.seq;
                    if (m.seq > log->snap_max)
                        log->snap_max = m.seq;
                }
            } else if (h.type == SF_CHUNK_PROCESS) {
                (*sf_map_get(&ords, h.pid, 1))++;
                log->nforks += (h.flags & SF_PROC_FORKED) != 0;
                struct sf_process p;
                memcpy(&p, b, sizeof p);
                *sf_map_get(&clocks, h.pid, 1) = p.clock;
                if (p.clock == SF_CLOCK_TSC) {
                    fit_hz(f, p.tsc_hz);
                    fit_add(f, p.tsc, p.mono_ns);
                }
            } else if (h.type == SF_CHUNK_EVENTS) {
                struct sf_events e;
                memcpy(&e, b, sizeof e);
                if (log->tidbytes)
                    *sf_map_get(log->tidbytes, e.tid, 1) += h.size;
                if (*clk == SF_CLOCK_TSC)
                    fit_add(f, e.flush_tsc, e.flush_mono_ns);
            } else {
                struct sf_end e;
                memcpy(&e, b, SF_END_SIZE_V0);
                fit_add(f, e.tsc, e.mono_ns);
            }
        }
        if (seek_to(log, off + h.size) < 0)
            break;
    }
    sf_map_free(&clocks);
    sf_map_free(&ords);
    log->state = 0;
    log->err[0] = 0;
    log->prescanned = 1;
    fit_compute(f);
    if (rewind_to(log, start) < 0) {
        snprintf(log->err, sizeof log->err, "%s: cannot rewind: %s", log->path, strerror(errno));
        log->state = -1;
        return -1;
    }
    return 0;
}

/* ---- events ------------------------------------------------------------- */

const char *sf_alloc_kind_name(uint32_t arg)
{
    switch (arg) {
    case SF_ALLOC_ALLOC:
        return "alloc";
    case SF_ALLOC_FREE:
        return "free";
    case SF_ALLOC_REALLOC_ALLOC:
        return "realloc-alloc";
    case SF_ALLOC_REALLOC_FREE:
        return "realloc-free";
    }
    return NULL;
}

void sf_evdec_init(struct sf_evdec *d, const struct sf_chunkv *c)
{
    const struct sf_events *e = c->u.events;
    d->packed = (c->h->flags & SF_EVENTS_PACKED) != 0;
    d->start = d->p = (const uint32_t *)c->payload;
    d->end = d->p + (c->payload_len / 8) * 2;
    d->pstart = d->pp = c->payload;
    d->pend = c->payload + c->payload_len - (d->packed && e->pad < 8 ? e->pad : 0);
    d->hi = (uint64_t)e->tsc_hi << 32;
    d->base = c->offset + sizeof(struct sf_events);
    d->last_fid = SF_FID_NONE;
    d->dec = d->dend = NULL;
    if (d->packed) /* also for decoded chunks: ps.enc, for sf_unpack_ext */
        sf_unpack_begin(&d->ps, e->tsc_hi, c->h->flags);
    if (d->packed && c->dec) {
        d->dec = c->dec;
        d->dend = c->dec + c->ndec;
    }
}

static int next_packed(struct sf_evdec *d, struct sf_event *ev)
{
    struct sf_unpacked r;
    for (;;) {
        const uint8_t *q = d->pp;
        if (d->dec) {
            if (d->dec == d->dend)
                return 0;
            q = d->pstart + sf_dec_rel(d->dec);
            r.t = d->dec->t;
            r.kind = sf_dec_kind(d->dec);
            r.fid = d->dec->fid;
            if (r.kind == SF_KIND_EXT)
                sf_unpack_ext(q, d->ps.enc, &r);
            d->dec++;
        } else if (sf_unpack(&d->ps, &d->pp, d->pend, &r) <= 0) { /* < 0: checked */
            d->pp = d->pend;
            return 0;
        }
        ev->ts = r.t;
        ev->offset = d->base + (uint64_t)(q - d->pstart);
        if (r.kind != SF_KIND_EXT) {
            ev->kind = r.kind;
            ev->fid = d->last_fid = r.fid;
            return 1;
        }
        switch (r.sub) {
        case SF_EXT_ALLOC:
            if (r.arg < SF_ALLOC_ALLOC || r.arg > SF_ALLOC_REALLOC_FREE)
                continue;
            break;
        case SF_EXT_ARGS:
        case SF_EXT_RET:
        case SF_EXT_LOST:
        case SF_EXT_KEY:
            break;
        default:
            continue;
        }
        ev->kind = SF_KIND_EXT;
        ev->fid = d->last_fid;
        ev->sub = r.sub;
        ev->arg = r.arg;
        ev->nwords = r.nwords;
        memcpy(ev->v, r.payload, 8 * (r.nwords < 6 ? r.nwords : 6));
        return 1;
    }
}

int sf_evdec_next(struct sf_evdec *d, struct sf_event *ev)
{
    if (d->packed)
        return next_packed(d, ev);
    while (d->p < d->end) {
        const uint32_t *p = d->p;
        uint32_t w0 = p[0], w1 = p[1];
        if ((w1 & 3u) != SF_KIND_EXT) {
            d->p = p + 2;
            ev->ts = d->hi | w0;
            ev->kind = w1 & 3u;
            ev->fid = d->last_fid = w1 >> 2;
            ev->offset = d->base + (uint64_t)(p - d->start) * 4;
            return 1;
        }
        uint32_t nw = sf_w1_nwords(w1), sub = sf_w1_sub(w1);
        if ((size_t)(d->end - p) / 2 - 1 < nw) { /* checked by sf_log_next */
            d->p = d->end;
            return 0;
        }
        d->p = p + 2 + 2 * (size_t)nw;
        switch (sub) {
        case SF_EXT_TSC_HI:
            d->hi = (uint64_t)w0 << 32;
            continue;
        case SF_EXT_ALLOC:
            if (sf_w1_arg(w1) < SF_ALLOC_ALLOC || sf_w1_arg(w1) > SF_ALLOC_REALLOC_FREE)
                continue; /* a newer kind: skip */
            break;
        case SF_EXT_ARGS:
        case SF_EXT_RET:
        case SF_EXT_LOST:
        case SF_EXT_KEY:
            break;
        default: /* PAD, and subtypes newer than this reader */
            continue;
        }
        ev->ts = d->hi | w0;
        ev->kind = SF_KIND_EXT;
        ev->fid = d->last_fid;
        ev->sub = sub;
        ev->arg = sf_w1_arg(w1);
        ev->nwords = nw;
        memcpy(ev->v, p + 2, 8 * (nw < 6 ? nw : 6));
        ev->offset = d->base + (uint64_t)(p - d->start) * 4;
        return 1;
    }
    return 0;
}
