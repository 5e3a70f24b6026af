/*
 * hdrwalk.c - a walk over a log's chunk headers (see hdrwalk.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hdrwalk.h"

const char *sf_chunk_type_name(unsigned t)
{
    static const char *const n[] = {"unknown", "PROCESS", "OBJECT", "THREAD", "EVENTS", "END"};
    return t < 6 ? n[t] : "unknown";
}

static size_t type_size(unsigned t)
{
    switch (t) {
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

struct walk {
    const char *path;
    int fd;
    char *err;
    size_t errlen;
};

static int fail(struct walk *w, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct walk *w, uint64_t off, const char *fmt, ...)
{
    int n = snprintf(w->err, w->errlen, "%s: offset %" PRIu64 ": ", w->path, off);
    if (n < 0 || (size_t)n >= w->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int read_at(struct walk *w, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(w->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail(w, off, "read error: %s", strerror(errno));
        if (r == 0)
            return fail(w, off, "unexpected end of file");
        done += (size_t)r;
    }
    return 0;
}

int sf_hdrwalk(const char *path, uint64_t start, sf_hdrwalk_fn *fn, void *ctx,
               void (*progress)(void *ctx, uint64_t off), char *err, size_t errlen)
{
    struct walk w = {path, -1, err, errlen};
    w.fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (w.fd < 0 || fstat(w.fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (w.fd >= 0)
            close(w.fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file (chunk headers are read by offset)", path);
        close(w.fd);
        return -1;
    }
    uint64_t fsize = (uint64_t)st.st_size, off = start, n = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    while (off < fsize) {
        struct sf_chunk h;
        if (fsize - off < sizeof h) {
            rc = fail(&w, off, "truncated chunk header (%" PRIu64 " of %zu bytes)", fsize - off,
                      sizeof h);
            break;
        }
        if ((rc = read_at(&w, &h, sizeof h, off)) < 0)
            break;
        const char *tn = sf_chunk_type_name(h.type);
        if (h.magic != SF_CHUNK_MAGIC) {
            rc = fail(&w, off, "bad chunk magic 0x%08x (magic)", h.magic);
            break;
        }
        if (h.size % 8) {
            rc = fail(&w, off, "chunk size %u is not a multiple of 8 (size)", h.size);
            break;
        }
        if (h.size > SF_CHUNK_MAX) {
            rc = fail(&w, off, "chunk size %u is larger than %u (size)", h.size, SF_CHUNK_MAX);
            break;
        }
        if (h.size < type_size(h.type)) {
            rc = fail(&w, off, "%s chunk size %u is smaller than its header, %zu bytes (size)", tn,
                      h.size, type_size(h.type));
            break;
        }
        if (off + h.size > fsize) {
            rc = fail(&w, off,
                      "%s chunk of %u bytes runs past the end of the file, %" PRIu64
                      " bytes left: truncated (size)",
                      tn, h.size, fsize - off);
            break;
        }
        size_t want = h.type == SF_CHUNK_EVENTS               ? sizeof(struct sf_events)
                      : h.type >= 1 && h.type <= SF_CHUNK_END ? h.size
                                                              : 0;
        if (want > cap) {
            cap = want;
            free(buf);
            buf = malloc(cap);
            if (!buf) {
                rc = fail(&w, off, "out of memory for a chunk of %zu bytes", want);
                break;
            }
        }
        if (want && (rc = read_at(&w, buf, want, off)) < 0)
            break;
        if ((rc = fn(ctx, off, &h, want ? buf : NULL)) != 0)
            break;
        off += h.size;
        if (progress && (++n & 255) == 0)
            progress(ctx, off);
    }
    free(buf);
    close(w.fd);
    return rc;
}
