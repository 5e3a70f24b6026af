/*
 * chrome.h - pieces of Chrome trace-event JSON (chrome://tracing, speedscope,
 * ui.perfetto.dev's JSON importer) for `sftrace convert --format chrome`.
 *
 * The file is {"traceEvents":[ EVENT, EVENT, ... ],"displayTimeUnit":"ns"}.
 * Slices are "B"/"E" pairs on (pid, tid); "ts" is microseconds as a decimal
 * with three fraction digits (exact nanoseconds). Process and thread names
 * are "M" (metadata) events. Strings are escaped once by the caller with
 * cj_escape (invalid UTF-8 becomes U+FFFD) and passed as escaped bytes.
 *
 * Like perfetto.h, every writer writes at p, which must have room for the
 * bound given, and returns the new end. `first` points at a flag that is 1
 * until the first event is written (events are separated by ",\n").
 */
#ifndef SFTRACE_CHROME_H
#define SFTRACE_CHROME_H

#include <stddef.h>
#include <stdint.h>

#define CJ_STR_MAX 16384u /* longest string escaped (input bytes) */
#define CJ_SMALL_MAX 384u /* room of an event, not counting its strings */

/* Room cj_escape needs for len input bytes. */
static inline size_t cj_escape_max(size_t len)
{
    return 6 * (len < CJ_STR_MAX ? len : CJ_STR_MAX);
}
/* Escape s (len bytes, cut at CJ_STR_MAX) for a JSON string, without quotes.
 * Returns the length written to dst. */
size_t cj_escape(char *dst, const char *s, size_t len);

/* `"pid":P,"tid":T` for the per-event head; returns its length (< 48). */
size_t cj_pidtid(char *dst, uint32_t pid, uint32_t tid);

uint8_t *cj_file_begin(uint8_t *p);
uint8_t *cj_file_end(uint8_t *p);

/* "M" event: what = "process_name" or "thread_name"; ename escaped (the
 * args object's "name" value; a caller may add '","key":"value' pairs). */
uint8_t *cj_meta(uint8_t *p, int *first, const char *what, uint32_t pid, uint32_t tid,
                 const char *ename, size_t elen);
/* Room cj_begin and cj_end need (they write up to two events) for an
 * escaped name of elen bytes. */
#define CJ_SLICE_MAX(elen) (2 * (CJ_SMALL_MAX + (size_t)(elen)))
/* "B" event of escaped name ename, with no args (see chrome.c: speedscope
 * keys frames by name and args); nargs (<= 6) argument values follow on a
 * thread instant of the same name and time, cat "sftrace.args", as args
 * "arg0".. (hex strings). */
uint8_t *cj_begin(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns,
                  const char *ename, size_t elen, const uint64_t *args, unsigned nargs);
/* "E" event of escaped name ename (the begin's: importers such as
 * speedscope end a frame only when the end names it), with no args. What is
 * known only at the end comes first on a thread instant of the same name and
 * time, cat "sftrace.end" (only when there is something): flags as PF_END_*
 * in perfetto.h (args "unfinished", "clipped", "unwound": true), hidden
 * calls below the depth limit as "hidden_calls", the return value (if ret)
 * as "ret" (hex string). */
uint8_t *cj_end(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns,
                const char *ename, size_t elen, unsigned flags, uint64_t hidden,
                const uint64_t *ret);
/* A flow event bound to the enclosing slice of the thread at ns: "s"
 * (start) when start, else "f" with "bp":"e" (the end; flows.h). */
uint8_t *cj_flow(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns, uint64_t id,
                 int start);
/* Thread-scoped instant "i" event with escaped name. */
uint8_t *cj_instant(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns,
                    const char *ename, size_t elen);
/* Counter "C" event of process pid: name (escaped), args {"bytes": value}. */
uint8_t *cj_counter(uint8_t *p, int *first, uint32_t pid, uint64_t ns, const char *ename,
                    size_t elen, int64_t value);

#endif /* SFTRACE_CHROME_H */
