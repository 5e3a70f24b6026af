/*
 * logread.c - the shared, streaming reader of sftrace logs: file header and
 * chunk validation, process images and their object tables, the TSC clock
 * fit, and the decoder of EVENTS records. The API is described in logread.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logread.h"
#include "pack.h"

#define BUF_SIZE (2u << 20) /* read buffer; grows to the largest chunk */
#define HEADER_MAX (1u << 20)

struct clockfit {
    uint64_t n;
    uint64_t x0, y0;              /* anchor: the first pair */
    long double sx, sy, sxx, sxy; /* sums of dx, dy, dx*dx, dx*dy */
    uint64_t ymin, ymax;          /* span of the pairs, mono ns */
    uint64_t hz;                  /* first nonzero tsc_hz of a TSC process */
    int dirty;
    double a, b;
    int from_hz;
};

struct sf_log {
    char *path;
    int fd;
    uint64_t fsize; /* UINT64_MAX when not a regular file */
    uint8_t *buf;
    size_t cap, pos, len; /* buf[pos..len) holds unread data */
    uint64_t buf_off;     /* file offset of buf[0] */
    int eof;              /* read() returned 0 */
    int state;            /* 0 reading, 1 at end, -1 error */
    int prescanned;
    struct sf_file_header hdr;
    char err[SF_ERRLEN];
    uint64_t skipped;

    struct sf_image **images;
    size_t nimages, imgcap;
    struct sf_map pidmap; /* pid -> index + 1 of its current image */
    struct sf_obj **objs; /* every object, for freeing */
    size_t nobjs, objcap;
    struct clockfit fit;
    struct sf_pack_state pack; /* for checking packed chunks */
    struct sf_decoded *dec;    /* the last packed chunk, decoded */
    sf_log_skip_fn *skip;      /* sf_log_set_skip */
    void *skip_ctx;
    size_t deccap;
};

/* ---- small helpers ------------------------------------------------------ */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "sftrace: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xstrndup(const void *s, size_t n)
{
    char *p = xrealloc(NULL, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

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
        m->keys = xcalloc(m->cap, sizeof *m->keys);
        m->vals = xcalloc(m->cap, sizeof *m->vals);
        m->used = xcalloc(m->cap, 1);
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

/* Make n bytes available at buf+pos if the file has them; returns how many
 * are (may be fewer at the end of the file), or -1 on a read error. */
static int64_t fill(struct sf_log *log, size_t n)
{
    if (log->len - log->pos >= n)
        return (int64_t)n;
    if (log->cap - log->pos < n) {
        if (log->pos) { /* keep buf[0] at a chunk boundary: 8-aligned */
            memmove(log->buf, log->buf + log->pos, log->len - log->pos);
            log->buf_off += log->pos;
            log->len -= log->pos;
            log->pos = 0;
        }
        if (log->cap < n) {
            log->buf = xrealloc(log->buf, n);
            log->cap = n;
        }
    }
    while (log->len - log->pos < n && !log->eof) {
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
        return 0;
    }
    if (lseek(log->fd, (off_t)off, SEEK_SET) == (off_t)-1)
        return -1;
    log->buf_off = off;
    log->pos = log->len = 0;
    log->eof = 0;
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

struct sf_log *sf_log_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory", path);
        close(fd);
        return NULL;
    }
    struct sf_log *log = xcalloc(1, sizeof *log);
    log->path = xstrndup(path, strlen(path));
    log->fd = fd;
    log->fsize = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
    log->cap = BUF_SIZE;
    log->buf = xrealloc(NULL, log->cap);
    log->fit.dirty = 1;

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
    return v ? log->images[*v - 1] : NULL;
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

static void fit_compute(struct clockfit *f)
{
    f->dirty = 0;
    f->from_hz = 1;
    f->b = f->hz ? 1e9 / (double)f->hz : 1.0;
    f->a = 0;
    if (!f->n)
        return;
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
}

int64_t sf_log_ns(struct sf_log *log, const struct sf_image *img, uint64_t ts)
{
    if (img && img->clock == SF_CLOCK_MONO)
        return (int64_t)ts;
    struct clockfit *f = &log->fit;
    if (f->dirty)
        fit_compute(f);
    double d = f->a + f->b * (double)(int64_t)(ts - f->x0);
    if (!(d > -9e18 && d < 9e18)) /* garbage timestamps: keep the cast defined */
        d = d > 0 ? 9e18 : -9e18;
    int64_t r = (int64_t)(d < 0 ? d - 0.5 : d + 0.5);
    return (int64_t)(f->y0 + (uint64_t)r); /* wraps, never overflows */
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
        return sizeof(struct sf_end);
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
    }
    return "unknown";
}

/*
 * Read and check the chunk header at the current position (not consuming
 * it). 1 and *h filled, 0 at a clean end of file, -1 on error.
 */
static int read_header(struct sf_log *log, struct sf_chunk *h)
{
    uint64_t off = cur_off(log);
    int64_t got = fill(log, sizeof *h);
    if (got < 0)
        return fail(log, off, "read error: %s", strerror(errno));
    if (got == 0)
        return 0;
    if ((size_t)got < sizeof *h)
        return fail(log, off, "truncated chunk header (%" PRId64 " of %zu bytes)", got, sizeof *h);
    memcpy(h, log->buf + log->pos, sizeof *h);
    if (h->magic != SF_CHUNK_MAGIC)
        return fail(log, off, "bad chunk magic 0x%08x (magic)", h->magic);
    if (h->size % 8)
        return fail(log, off, "chunk size %u is not a multiple of 8 (size)", h->size);
    if (h->size > SF_CHUNK_MAX)
        return fail(log, off, "chunk size %u is larger than %u (size)", h->size, SF_CHUNK_MAX);
    size_t need = type_size(h->type);
    if (h->size < need)
        return fail(log, off, "%s chunk size %u is smaller than its header, %zu bytes (size)",
                    type_name(h->type), h->size, need);
    if (log->fsize != UINT64_MAX && off + h->size > log->fsize) {
        struct stat st; /* the log may have grown since we opened it */
        if (fstat(log->fd, &st) == 0 && (uint64_t)st.st_size > log->fsize)
            log->fsize = (uint64_t)st.st_size;
    }
    if (log->fsize != UINT64_MAX && off + h->size > log->fsize)
        return fail(log, off,
                    "%s chunk of %u bytes runs past the end of the file, %" PRIu64
                    " bytes left: truncated (size)",
                    type_name(h->type), h->size, log->fsize - off);
    return 1;
}

static struct sf_image *need_image(struct sf_log *log, uint64_t off, const struct sf_chunk *h)
{
    struct sf_image *im = sf_log_image(log, h->pid);
    if (!im)
        fail(log, off, "%s chunk of pid %u comes before any PROCESS chunk of that pid (pid)",
             type_name(h->type), h->pid);
    return im;
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
        im->objs = xrealloc(im->objs, im->objcap * sizeof *im->objs);
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

static int do_process(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_process *p = c->u.process;
    uint64_t strs = (uint64_t)p->name_len + p->cmdline_len + p->exe_len;
    if (strs > c->payload_len)
        return fail(log, c->offset,
                    "PROCESS strings (name %u + cmdline %u + exe %u bytes) run past the end of "
                    "the chunk, %u bytes (%s)",
                    p->name_len, p->cmdline_len, p->exe_len, c->payload_len,
                    p->name_len > c->payload_len                              ? "name_len"
                    : (uint64_t)p->name_len + p->cmdline_len > c->payload_len ? "cmdline_len"
                                                                              : "exe_len");
    if (p->clock != SF_CLOCK_TSC && p->clock != SF_CLOCK_MONO)
        return fail(log, c->offset, "unknown clock %u (clock)", p->clock);

    struct sf_image *im = xcalloc(1, sizeof *im);
    im->id = (uint32_t)log->nimages;
    im->pid = p->h.pid;
    im->ppid = p->ppid;
    im->flags = p->h.flags;
    im->clock = p->clock;
    im->tsc = p->tsc;
    im->mono_ns = p->mono_ns;
    im->real_ns = p->real_ns;
    im->tsc_hz = p->tsc_hz;
    im->offset = c->offset;
    const uint8_t *s = c->payload;
    im->name = xstrndup(s, strnlen((const char *)s, p->name_len));
    s += p->name_len;
    im->cmdline = xstrndup(s, p->cmdline_len);
    im->cmdline_len = p->cmdline_len;
    s += p->cmdline_len;
    im->exe = xstrndup(s, strnlen((const char *)s, p->exe_len));

    /* A forked child starts with its parent's mappings. */
    struct sf_image *parent = sf_log_image(log, p->ppid);
    if ((p->h.flags & SF_PROC_FORKED) && parent && parent->pid != p->h.pid && parent->nobjs) {
        im->objcap = im->nobjs = parent->nobjs;
        im->objs = xrealloc(NULL, im->objcap * sizeof *im->objs);
        memcpy(im->objs, parent->objs, im->nobjs * sizeof *im->objs);
    }

    if (log->nimages == log->imgcap) {
        log->imgcap = log->imgcap ? log->imgcap * 2 : 16;
        log->images = xrealloc(log->images, log->imgcap * sizeof *log->images);
    }
    log->images[log->nimages++] = im;
    *sf_map_get(&log->pidmap, im->pid, 1) = log->nimages;
    c->img = im;
    if (!log->prescanned && im->clock == SF_CLOCK_TSC) {
        fit_hz(&log->fit, im->tsc_hz);
        fit_add(&log->fit, im->tsc, im->mono_ns);
    }
    return 0;
}

static int do_object(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_object *o = c->u.object;
    if ((uint64_t)o->fid_base + o->nfuncs > (uint64_t)SF_FID_MAX + 1)
        return fail(log, c->offset,
                    "function ids %u + %u functions exceed the largest id %u (nfuncs)", o->fid_base,
                    o->nfuncs, SF_FID_MAX);
    uint64_t tab = (uint64_t)o->nfuncs * 8;
    if (tab + o->path_len + o->build_id_len > c->payload_len)
        return fail(log, c->offset,
                    "OBJECT tables (%u functions, path %u, build-id %u bytes) run past the end "
                    "of the chunk, %u bytes (%s)",
                    o->nfuncs, o->path_len, o->build_id_len, c->payload_len,
                    tab > c->payload_len                 ? "nfuncs"
                    : tab + o->path_len > c->payload_len ? "path_len"
                                                         : "build_id_len");
    struct sf_obj *x = xcalloc(1, sizeof *x);
    x->img = c->img;
    x->offset = c->offset;
    x->flags = o->h.flags;
    x->load_bias = o->load_bias;
    x->fid_base = o->fid_base;
    x->nfuncs = o->nfuncs;
    x->nsleds = o->nsleds;
    uint64_t *fa = xrealloc(NULL, (size_t)o->nfuncs * 8);
    memcpy(fa, c->payload, (size_t)o->nfuncs * 8);
    x->func_addr = fa;
    const uint8_t *s = c->payload + (size_t)o->nfuncs * 8;
    x->path = xstrndup(s, strnlen((const char *)s, o->path_len));
    s += o->path_len;
    if (o->build_id_len) {
        uint8_t *b = xrealloc(NULL, o->build_id_len);
        memcpy(b, s, o->build_id_len);
        x->build_id = b;
        x->build_id_len = o->build_id_len;
    }
    if (log->nobjs == log->objcap) {
        log->objcap = log->objcap ? log->objcap * 2 : 16;
        log->objs = xrealloc(log->objs, log->objcap * sizeof *log->objs);
    }
    log->objs[log->nobjs++] = x;
    image_insert(c->img, x);
    c->obj = x;
    return 0;
}

/* Check an extended record's arg and payload size against its subtype. */
static int check_ext(struct sf_log *log, uint64_t off, uint32_t sub, uint32_t arg, uint32_t nw)
{
    switch (sub) {
    case SF_EXT_ALLOC:
        if (nw < 3)
            return fail(log, off, "ALLOC record with %u payload words, needs 3 (nwords)", nw);
        break;
    case SF_EXT_ARGS:
        if (arg > 6)
            return fail(log, off, "ARGS record with %u arguments, at most 6 (arg)", arg);
        if (nw < arg)
            return fail(log, off, "ARGS record with %u payload words for %u arguments (nwords)", nw,
                        arg);
        break;
    case SF_EXT_KEY:
        if (arg > SF_KEY_RET)
            return fail(log, off, "KEY record of register %u, at most %u (arg)", arg, SF_KEY_RET);
        /* fall through */
    case SF_EXT_RET:
    case SF_EXT_LOST:
        if (nw < 1)
            return fail(log, off, "%s record without payload (nwords)",
                        sub == SF_EXT_RET ? "RET" : sub == SF_EXT_KEY ? "KEY" : "LOST");
        break;
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
            return fail(log, off,
                        "extended record (subtype %u) has %u payload words, only %zu left in "
                        "the chunk (nwords)",
                        sub, nw, n - i - 1);
        if (check_ext(log, off, sub, sf_w1_arg(w1), nw) < 0)
            return -1;
        i += 1 + nw;
    }
    return 0;
}

/* Check a packed EVENTS chunk by decoding it once. */
static int check_packed(struct sf_log *log, struct sf_chunkv *c)
{
    const struct sf_events *e = c->u.events;
    if (e->pad >= 8 || e->pad > c->payload_len)
        return fail(log, c->offset, "packed EVENTS chunk with %u bytes of padding (pad)", e->pad);
    uint64_t base = c->offset + sizeof(struct sf_events);
    struct sf_pack_state *st = &log->pack;
    sf_pack_reset(st, e->tsc_hi);
    const uint8_t *p = c->payload, *end = p + c->payload_len - e->pad;
    struct sf_unpacked r;
    /* Keep what we decode (a record is at least 2 bytes) unless the chunk
     * is far larger than the runtime ever writes. */
    size_t want = c->payload_len / 2 + 1, n = 0;
    int keep = c->payload_len <= (1u << 22);
    if (keep && want > log->deccap) {
        log->deccap = want;
        log->dec = xrealloc(log->dec, want * sizeof *log->dec);
    }
    for (;;) {
        const uint8_t *q = p;
        int k = sf_unpack(st, &p, end, &r);
        if (k == 0) {
            c->dec = keep ? log->dec : NULL;
            c->ndec = (uint32_t)n;
            return 0;
        }
        if (keep && k > 0) {
            log->dec[n].r = r;
            log->dec[n].rel = (uint32_t)(q - c->payload);
            n++;
        }
        uint64_t off = base + (uint64_t)(q - c->payload);
        if (k < 0)
            return fail(log, off,
                        "bad packed record (tag 0x%02x): it runs past the end of the chunk or "
                        "implies a function nothing entered (records)",
                        *q);
        if (r.kind == SF_KIND_EXT && check_ext(log, off, r.sub, r.arg, r.nwords) < 0)
            return -1;
    }
}

static int check_records(struct sf_log *log, struct sf_chunkv *c)
{
    if (c->h->flags & SF_EVENTS_PACKED)
        return check_packed(log, c);
    return check_raw(log, c);
}

int sf_log_next(struct sf_log *log, struct sf_chunkv *c)
{
    for (;;) {
        if (log->state)
            return log->state > 0 ? 0 : -1;
        struct sf_chunk h;
        uint64_t off = cur_off(log);
        int r = read_header(log, &h);
        if (r <= 0) {
            if (r == 0)
                log->state = 1;
            return r;
        }
        int64_t got = fill(log, h.size);
        if (got < 0)
            return fail(log, off, "read error: %s", strerror(errno));
        if (got < (int64_t)h.size)
            return fail(log, off,
                        "%s chunk of %u bytes runs past the end of the file, %" PRId64
                        " bytes left: truncated (size)",
                        type_name(h.type), h.size, got);
        memset(c, 0, sizeof *c);
        c->offset = off;
        c->h = (const struct sf_chunk *)(log->buf + log->pos);
        log->pos += h.size;
        size_t ts = type_size(h.type);
        c->payload = (const uint8_t *)c->h + ts;
        c->payload_len = h.size - (uint32_t)ts;
        switch (h.type) {
        case SF_CHUNK_PROCESS:
            c->u.process = (const struct sf_process *)c->h;
            if (do_process(log, c) < 0)
                return -1;
            return 1;
        case SF_CHUNK_OBJECT:
            c->u.object = (const struct sf_object *)c->h;
            if (!(c->img = need_image(log, off, &h)) || do_object(log, c) < 0)
                return -1;
            return 1;
        case SF_CHUNK_THREAD:
            c->u.thread = (const struct sf_thread *)c->h;
            if (!(c->img = need_image(log, off, &h)))
                return -1;
            memcpy(c->thread_name, c->u.thread->name, 16);
            c->thread_name[16] = 0;
            return 1;
        case SF_CHUNK_EVENTS:
            c->u.events = (const struct sf_events *)c->h;
            if (!(c->img = need_image(log, off, &h)))
                return -1;
            if (!log->prescanned && c->img->clock == SF_CLOCK_TSC)
                fit_add(&log->fit, c->u.events->flush_tsc, c->u.events->flush_mono_ns);
            if (log->skip && log->skip(log->skip_ctx, c))
                continue;
            if (check_records(log, c) < 0)
                return -1;
            return 1;
        case SF_CHUNK_END:
            c->u.end = (const struct sf_end *)c->h;
            if (!(c->img = need_image(log, off, &h)))
                return -1;
            c->img->ended = 1;
            if (!log->prescanned && c->img->clock == SF_CLOCK_TSC)
                fit_add(&log->fit, c->u.end->tsc, c->u.end->mono_ns);
            return 1;
        default:
            log->skipped++; /* a newer kind of chunk: skip it */
            continue;
        }
    }
}

/* ---- the first pass ----------------------------------------------------- */

int sf_log_prescan(struct sf_log *log)
{
    uint64_t start = cur_off(log);
    if (lseek(log->fd, 0, SEEK_CUR) == (off_t)-1) {
        snprintf(log->err, sizeof log->err, "%s: cannot prescan: %s", log->path, strerror(errno));
        return -1; /* a pipe: sf_log_next still works, the fit grows as it goes */
    }
    struct sf_map clocks = {0}; /* pid -> clock of its current image */
    struct clockfit *f = &log->fit;
    memset(f, 0, sizeof *f);
    for (;;) {
        struct sf_chunk h;
        uint64_t off = cur_off(log);
        if (read_header(log, &h) <= 0)
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
            if (clk && *clk == SF_CLOCK_TSC)
                want = type_size(h.type);
            break;
        }
        if (want) {
            if (fill(log, want) < (int64_t)want)
                break;
            const uint8_t *b = log->buf + log->pos;
            if (h.type == SF_CHUNK_PROCESS) {
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
                fit_add(f, e.flush_tsc, e.flush_mono_ns);
            } else {
                struct sf_end e;
                memcpy(&e, b, sizeof e);
                fit_add(f, e.tsc, e.mono_ns);
            }
        }
        if (seek_to(log, off + h.size) < 0)
            break;
    }
    sf_map_free(&clocks);
    /* The checks above may have recorded an error: sf_log_next finds it again. */
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
    if (d->packed && c->dec) {
        d->dec = c->dec;
        d->dend = c->dec + c->ndec;
    } else if (d->packed) {
        sf_pack_reset(&d->ps, e->tsc_hi);
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
            r = d->dec->r;
            q = d->pstart + d->dec->rel;
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
