/*
 * hdrwalk.h - a walk over a log's chunk headers that never reads event
 * records: for `sftrace info` (disk speed on a 50 GB log) and for planning
 * parallel reads (how many record bytes each thread has).
 *
 * The shared reader (logread.h) reads and checks the records of every
 * EVENTS chunk it returns; this walk reads, with pread, each chunk's header,
 * the whole of the small PROCESS, OBJECT, THREAD and END chunks, and only the
 * fixed fields of EVENTS chunks. It checks the chunk framing (magic, size,
 * truncation) with the reader's messages; the fields of the chunks it hands
 * over are the caller's to check.
 */
#ifndef SFTRACE_HDRWALK_H
#define SFTRACE_HDRWALK_H

#include <stddef.h>
#include <stdint.h>

#include "logfmt.h"

/* One chunk: h its header; body the whole chunk (PROCESS, OBJECT, THREAD,
 * END), its first sizeof(struct sf_events) bytes (EVENTS), or NULL (a type
 * this walk does not know). Return 0 to go on, nonzero to stop (returned). */
typedef int sf_hdrwalk_fn(void *ctx, uint64_t off, const struct sf_chunk *h, const uint8_t *body);

/* Walk the file at path from offset start (the file header's header_size)
 * to its end (its size when the walk began). 0 at the end, fn's nonzero
 * value if it stopped, -1 on an error with "PATH: offset N: what (field)" in
 * err. progress, if set, is called every 256 chunks with the offset. */
int sf_hdrwalk(const char *path, uint64_t start, sf_hdrwalk_fn *fn, void *ctx,
               void (*progress)(void *ctx, uint64_t off), char *err, size_t errlen);

/* Chunk type name (PROCESS ... END, "unknown"). */
const char *sf_chunk_type_name(unsigned type);

#endif /* SFTRACE_HDRWALK_H */
