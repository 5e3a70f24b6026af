/*
 * gzout.h - the output file of the converters: plain or gzip, written safely.
 *
 * The caller writes straight into a large block buffer (o->p .. o->end). A
 * full block goes to a pool of worker threads that deflate blocks
 * independently (raw deflate ending in a sync flush, like pigz), and the
 * compressed blocks are written in order as ONE gzip member: header, the
 * concatenated deflate data, one CRC-32 (combined from the blocks' CRCs) and
 * the length. When every block is in flight the caller's thread compresses
 * one too, so all cores work when compression is the bottleneck. Without
 * gzip the workers only write, which overlaps the writes with encoding.
 *
 * A regular output file is written to a temporary file in the same
 * directory (".NAME.tmp.PID.N") that is renamed over NAME only by a
 * successful sf_out_close, so a failed conversion (read-only directory, disk
 * full, interrupted) never leaves a partial file that looks valid. Every
 * write and the close are checked. "-" means standard output; an existing
 * non-regular file (a FIFO, /dev/null, /dev/full) is written directly.
 *
 * Not thread-safe from the caller's side: one thread fills the buffer.
 */
#ifndef SFTRACE_GZOUT_H
#define SFTRACE_GZOUT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes a block holds: sf_out_room requests must not exceed it. */
#define SF_OUT_BLOCK (1u << 20)

struct sf_out_priv;

struct sf_out {
    uint8_t *p, *end; /* free space of the current block: write at p */
    struct sf_out_priv *priv;
};

/*
 * Open `path` for writing. gzip_level 0 writes plain bytes, 1..9 gzip at
 * that zlib level. threads: worker threads (0: one fewer than the online
 * CPUs, at least 1). NULL and a message naming the file in err on failure.
 */
struct sf_out *sf_out_open(const char *path, int gzip_level, int threads, char *err, size_t errlen);

/* Hand the current block over and start a new, empty one. */
void sf_out_next(struct sf_out *o);

/* Make sure n (<= SF_OUT_BLOCK) bytes can be written at o->p. */
static inline void sf_out_room(struct sf_out *o, size_t n)
{
    if ((size_t)(o->end - o->p) < n)
        sf_out_next(o);
}

/* Append n bytes (any length). */
void sf_out_write(struct sf_out *o, const void *data, size_t n);

/* Nonzero once a write failed (the conversion can stop early). */
int sf_out_failed(const struct sf_out *o);

/* Bytes handed to the output so far (uncompressed), and bytes written to the
 * file so far (compressed; excludes blocks still in flight). */
uint64_t sf_out_in_bytes(const struct sf_out *o);
uint64_t sf_out_file_bytes(const struct sf_out *o);

/*
 * Finish: flush, write the gzip trailer, close, rename the temporary file
 * into place. 0 on success; -1 with a message naming the file in err (the
 * temporary file is removed). *file_bytes gets the output's size. Frees o.
 */
int sf_out_close(struct sf_out *o, uint64_t *file_bytes, char *err, size_t errlen);

/* Give up: stop the workers, remove the temporary file, free o. */
void sf_out_abort(struct sf_out *o);

#endif /* SFTRACE_GZOUT_H */
