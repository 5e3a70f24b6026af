/*
 * gzout.c - the output file of the converters: plain or one-member gzip,
 * compressed block by block in worker threads, written to a temporary file
 * and renamed into place on success (see gzout.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gzout.h"

#define NBLK 6 /* blocks in the ring: one being filled, the rest in flight */
#define MAXTHREADS 8

enum { B_FREE, B_FILLING, B_FILLED, B_BUSY, B_DONE };

struct blk {
    uint8_t *in;
    size_t len;
    uint8_t *out; /* compressed data (gzip), or == in (plain) */
    size_t outlen, outcap;
    uint32_t crc;
    uint64_t seq;
    int state;
    int last;
};

struct sf_out_priv {
    int fd;
    int level;  /* 0 = plain */
    int own_fd; /* we opened fd (not stdout) */
    char *path; /* the name the user gave */
    char *tmp;  /* temporary file, NULL when writing directly */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct blk blk[NBLK];
    struct blk *cur;
    uint64_t next_seq;   /* seq of the next block handed over */
    uint64_t next_write; /* seq of the next block to write */
    int writing;
    int err; /* errno of the first failure, 0 if none */
    int quit;
    int nthreads;
    pthread_t th[MAXTHREADS];
    z_stream *helper; /* the caller thread's deflate state, made on first use */
    uint32_t crc;     /* of the data written so far */
    uint64_t in_bytes, file_bytes;
};

/* ---- removing the temporary file on a fatal signal ---------------------- */

static char sig_tmp[4096]; /* the temporary file in use, "" when none */
static int sig_installed;

static void on_signal(int sig)
{
    if (sig_tmp[0])
        unlink(sig_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void guard_tmp(const char *tmp)
{
    if (!tmp) {
        sig_tmp[0] = 0;
        return;
    }
    if (strlen(tmp) < sizeof sig_tmp)
        strcpy(sig_tmp, tmp);
    if (!sig_installed) {
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction sa, old;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
                continue; /* leave ignored signals ignored */
            sigaction(sigs[i], &sa, NULL);
        }
        sig_installed = 1;
    }
}

/* ---- writing ------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Compress block b with deflate state z (NULL for plain output). */
static void compress_blk(struct sf_out_priv *q, z_stream *z, struct blk *b)
{
    if (!q->level) {
        b->out = b->in;
        b->outlen = b->len;
        return;
    }
    b->crc = (uint32_t)crc32(0, b->in, (uInt)b->len);
    deflateReset(z);
    z->next_in = b->in;
    z->avail_in = (uInt)b->len;
    b->outlen = 0;
    for (;;) {
        z->next_out = b->out + b->outlen;
        z->avail_out = (uInt)(b->outcap - b->outlen);
        int r = deflate(z, b->last ? Z_FINISH : Z_SYNC_FLUSH);
        b->outlen = b->outcap - z->avail_out;
        if (b->last ? r == Z_STREAM_END : (z->avail_in == 0 && z->avail_out > 0))
            return;
        if (r == Z_STREAM_ERROR)
            abort(); /* cannot happen with a valid state */
        size_t cap = b->outcap * 2;
        uint8_t *n = realloc(b->out, cap);
        if (!n) {
            fprintf(stderr, "sftrace: out of memory\n");
            exit(1);
        }
        b->out = n;
        b->outcap = cap;
    }
}

static z_stream *new_deflate(int level)
{
    z_stream *z = calloc(1, sizeof *z);
    if (!z || deflateInit2(z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fprintf(stderr, "sftrace: out of memory (zlib)\n");
        exit(1);
    }
    return z;
}

static void free_deflate(z_stream *z)
{
    if (z) {
        deflateEnd(z);
        free(z);
    }
}

/* Write every finished block that is next in order. Called with mu held;
 * drops it around the write. Only one thread writes at a time. */
static void write_ready(struct sf_out_priv *q)
{
    while (!q->writing) {
        struct blk *b = NULL;
        for (int i = 0; i < NBLK; i++)
            if (q->blk[i].state == B_DONE && q->blk[i].seq == q->next_write)
                b = &q->blk[i];
        if (!b)
            return;
        q->writing = 1;
        pthread_mutex_unlock(&q->mu);
        int e = __atomic_load_n(&q->err, __ATOMIC_RELAXED);
        if (!e) {
            if (q->level)
                q->crc = (uint32_t)crc32_combine(q->crc, b->crc, (z_off_t)b->len);
            e = write_all(q->fd, b->out, b->outlen);
        }
        pthread_mutex_lock(&q->mu);
        if (e && !q->err)
            __atomic_store_n(&q->err, e, __ATOMIC_RELAXED);
        if (!e)
            q->file_bytes += b->outlen;
        b->state = B_FREE;
        b->len = 0;
        q->next_write++;
        q->writing = 0;
        pthread_cond_broadcast(&q->cv);
    }
}

/* The filled block with the lowest seq, or NULL. Called with mu held. */
static struct blk *next_filled(struct sf_out_priv *q)
{
    struct blk *best = NULL;
    for (int i = 0; i < NBLK; i++)
        if (q->blk[i].state == B_FILLED && (!best || q->blk[i].seq < best->seq))
            best = &q->blk[i];
    return best;
}

/* Compress b (taken as B_BUSY under mu) and write what is ready. Called
 * with mu held; returns with it held. */
static void work_on(struct sf_out_priv *q, z_stream *z, struct blk *b)
{
    b->state = B_BUSY;
    pthread_mutex_unlock(&q->mu);
    compress_blk(q, z, b);
    pthread_mutex_lock(&q->mu);
    b->state = B_DONE;
    write_ready(q);
}

static void *worker(void *arg)
{
    struct sf_out_priv *q = arg;
    z_stream *z = q->level ? new_deflate(q->level) : NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        struct blk *b = next_filled(q);
        if (b) {
            work_on(q, z, b);
            continue;
        }
        if (q->quit)
            break;
        pthread_cond_wait(&q->cv, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    free_deflate(z);
    return NULL;
}

/* Hand the current block over (last: the final one). Called without mu. */
static void submit(struct sf_out_priv *q, size_t len, int last)
{
    pthread_mutex_lock(&q->mu);
    struct blk *b = q->cur;
    b->len = len;
    b->last = last;
    b->seq = q->next_seq++;
    b->state = B_FILLED;
    q->in_bytes += len;
    q->cur = NULL;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Take a free block for filling, helping with compression meanwhile. */
static void take_free(struct sf_out *o)
{
    struct sf_out_priv *q = o->priv;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        struct blk *f = NULL;
        for (int i = 0; i < NBLK && !f; i++)
            if (q->blk[i].state == B_FREE)
                f = &q->blk[i];
        if (f) {
            f->state = B_FILLING;
            q->cur = f;
            break;
        }
        struct blk *b = q->level ? next_filled(q) : NULL;
        if (b) {
            if (!q->helper)
                q->helper = new_deflate(q->level);
            work_on(q, q->helper, b);
            continue;
        }
        pthread_cond_wait(&q->cv, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    o->p = q->cur->in;
    o->end = q->cur->in + SF_OUT_BLOCK;
}

/* A writer that wrote past the block broke its room promise: stop before the
 * damage is written out. */
static void check_bounds(struct sf_out *o)
{
    if (o->p > o->end) {
        fprintf(stderr, "sftrace: internal error: output block overrun by %zu bytes\n",
                (size_t)(o->p - o->end));
        abort();
    }
}

void sf_out_next(struct sf_out *o)
{
    struct sf_out_priv *q = o->priv;
    check_bounds(o);
    submit(q, (size_t)(o->p - q->cur->in), 0);
    take_free(o);
}

void sf_out_write(struct sf_out *o, const void *data, size_t n)
{
    const uint8_t *s = data;
    while (n) {
        if (o->p == o->end)
            sf_out_next(o);
        size_t k = (size_t)(o->end - o->p);
        if (k > n)
            k = n;
        memcpy(o->p, s, k);
        o->p += k;
        s += k;
        n -= k;
    }
}

int sf_out_failed(const struct sf_out *o)
{
    return __atomic_load_n(&o->priv->err, __ATOMIC_RELAXED) != 0;
}

uint64_t sf_out_in_bytes(const struct sf_out *o)
{
    struct sf_out_priv *q = o->priv;
    return q->in_bytes + (q->cur ? (uint64_t)(o->p - q->cur->in) : 0);
}

uint64_t sf_out_file_bytes(const struct sf_out *o)
{
    struct sf_out_priv *q = o->priv;
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->file_bytes;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- open / close -------------------------------------------------------- */

static void free_priv(struct sf_out_priv *q)
{
    for (int i = 0; i < NBLK; i++) {
        if (q->blk[i].out != q->blk[i].in)
            free(q->blk[i].out);
        free(q->blk[i].in);
    }
    free_deflate(q->helper);
    free(q->path);
    free(q->tmp);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

struct sf_out *sf_out_open(const char *path, int gzip_level, int threads, char *err, size_t errlen)
{
    struct sf_out_priv *q = calloc(1, sizeof *q);
    struct sf_out *o = calloc(1, sizeof *o);
    if (!q || !o) {
        snprintf(err, errlen, "out of memory");
        free(q);
        free(o);
        return NULL;
    }
    o->priv = q;
    q->fd = -1;
    q->level = gzip_level < 0 ? 0 : gzip_level > 9 ? 9 : gzip_level;
    q->path = strdup(path);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    for (int i = 0; i < NBLK; i++) {
        struct blk *b = &q->blk[i];
        b->in = malloc(SF_OUT_BLOCK);
        b->outcap = q->level ? deflateBound(NULL, SF_OUT_BLOCK) + 1024 : 0;
        b->out = q->level ? malloc(b->outcap) : NULL;
        if (!b->in || (q->level && !b->out)) {
            snprintf(err, errlen, "out of memory");
            free_priv(q);
            free(o);
            return NULL;
        }
    }

    struct stat st;
    if (!strcmp(path, "-")) {
        q->fd = STDOUT_FILENO;
    } else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "cannot write '%s': it is a directory", path);
            goto fail;
        }
        q->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (q->fd < 0) {
            snprintf(err, errlen, "cannot open '%s' for writing: %s", path, strerror(errno));
            goto fail;
        }
        q->own_fd = 1;
    } else {
        const char *slash = strrchr(path, '/');
        size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
        const char *base = slash ? slash + 1 : path;
        if (!*base) {
            snprintf(err, errlen, "cannot write '%s': not a file name", path);
            goto fail;
        }
        size_t n = strlen(path) + 64;
        q->tmp = malloc(n);
        if (!q->tmp) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        for (int attempt = 0; attempt < 100 && q->fd < 0; attempt++) {
            snprintf(q->tmp, n, "%.*s.%s.tmp.%ld.%d", (int)dirlen, path, base, (long)getpid(),
                     attempt);
            q->fd = open(q->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (q->fd < 0 && errno != EEXIST)
                break;
        }
        if (q->fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot create '%s': %s (making temporary file %s)", path,
                     strerror(e), q->tmp);
            goto fail;
        }
        q->own_fd = 1;
        guard_tmp(q->tmp);
    }

    if (q->level) {
        static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        int e = write_all(q->fd, hdr, sizeof hdr);
        if (e) {
            snprintf(err, errlen, "cannot write '%s': %s", path, strerror(e));
            goto fail;
        }
        q->file_bytes = sizeof hdr;
        q->crc = (uint32_t)crc32(0, NULL, 0);
    }

    if (threads <= 0)
        threads = online_cpus() - 1;
    if (threads < 1)
        threads = 1;
    if (threads > MAXTHREADS)
        threads = MAXTHREADS;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&q->th[i], NULL, worker, q) != 0)
            break;
        q->nthreads++;
    }
    if (!q->nthreads) {
        snprintf(err, errlen, "cannot start a thread");
        goto fail;
    }
    take_free(o);
    return o;

fail:
    if (q->own_fd && q->fd >= 0)
        close(q->fd);
    if (q->tmp && q->fd >= 0)
        unlink(q->tmp);
    guard_tmp(NULL);
    free_priv(q);
    free(o);
    return NULL;
}

/* Stop the workers after everything submitted has been written. */
static void drain(struct sf_out_priv *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->next_write < q->next_seq)
        pthread_cond_wait(&q->cv, &q->mu);
    q->quit = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->th[i], NULL);
    q->nthreads = 0;
}

int sf_out_close(struct sf_out *o, uint64_t *file_bytes, char *err, size_t errlen)
{
    struct sf_out_priv *q = o->priv;
    check_bounds(o);
    submit(q, (size_t)(o->p - q->cur->in), 1);
    drain(q);
    int e = q->err;
    if (!e && q->level) {
        uint8_t tr[8];
        uint32_t isize = (uint32_t)q->in_bytes;
        for (int i = 0; i < 4; i++) {
            tr[i] = (uint8_t)(q->crc >> (8 * i));
            tr[4 + i] = (uint8_t)(isize >> (8 * i));
        }
        e = write_all(q->fd, tr, sizeof tr);
        if (!e)
            q->file_bytes += sizeof tr;
    }
    if (q->own_fd && close(q->fd) != 0 && !e)
        e = errno;
    q->fd = -1;
    int ret = 0;
    if (e) {
        snprintf(err, errlen, "cannot write '%s': %s", q->path, strerror(e));
        ret = -1;
    } else if (q->tmp && rename(q->tmp, q->path) != 0) {
        snprintf(err, errlen, "cannot rename %s to '%s': %s", q->tmp, q->path, strerror(errno));
        ret = -1;
    }
    if (ret && q->tmp)
        unlink(q->tmp);
    guard_tmp(NULL);
    if (file_bytes)
        *file_bytes = q->file_bytes;
    free_priv(q);
    free(o);
    return ret;
}

void sf_out_abort(struct sf_out *o)
{
    struct sf_out_priv *q = o->priv;
    pthread_mutex_lock(&q->mu);
    if (!q->err) /* skip the writes still pending */
        __atomic_store_n(&q->err, ECANCELED, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&q->mu);
    drain(q);
    if (q->own_fd && q->fd >= 0)
        close(q->fd);
    if (q->tmp)
        unlink(q->tmp);
    guard_tmp(NULL);
    free_priv(q);
    free(o);
}
