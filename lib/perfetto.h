/*
 * perfetto.h - a small hand-written encoder of Perfetto TrackEvent traces.
 *
 * Writes `Trace.packet` records (0x0A, length, TracePacket) the way
 * /work/shared/perfetto/perfetto_trackevent_rules.md says trace_processor
 * imports them:
 *
 *   - pf_preamble: the first packet. A ClockSnapshot naming CLOCK_MONOTONIC
 *     the trace clock (primary_trace_clock) and relating CLOCK_REALTIME to it,
 *     so timestamps are CLOCK_MONOTONIC ns and the UI can show wall time.
 *   - Descriptors (process, thread, counter tracks) on the metadata sequence
 *     PF_META_SEQ with absolute timestamps; counter values likewise, on a
 *     sequence of their own.
 *   - One sequence per writer (struct pf_seq: one per traced thread). Its
 *     first packet sets SEQ_INCREMENTAL_STATE_CLEARED and TracePacketDefaults
 *     {timestamp_clock_id 64, track_event_defaults.track_uuid}; the next one
 *     is a ClockSnapshot of the sequence-scoped incremental clock 64 (unit
 *     1 ns) against CLOCK_MONOTONIC. Every later packet carries the delta to
 *     the previous timestamp of the sequence and SEQ_NEEDS_INCREMENTAL_STATE.
 *     Timestamps must not decrease on a sequence (the caller clamps).
 *   - Slices: TYPE_SLICE_BEGIN with an interned name (event_names) and
 *     source location (source_locations) sharing one iid, the interned entry
 *     written inline in the packet of its first use on the sequence;
 *     TYPE_SLICE_END without a name. Flags on an END become debug
 *     annotations of the slice (trace_processor merges END args).
 *
 * Every function writes at p, which must have room for the bound given
 * (PF_SMALL_MAX, or pf_*_max for the variable-size ones), and returns the
 * new end. Strings longer than PF_STR_MAX bytes are cut (at a UTF-8
 * character boundary).
 */
#ifndef SFTRACE_PERFETTO_H
#define SFTRACE_PERFETTO_H

#include <stddef.h>
#include <stdint.h>

#define PF_META_SEQ 1u    /* sequence id of the descriptors and the preamble */
#define PF_STR_MAX 16384u /* longest string written */
#define PF_SMALL_MAX 128u /* room any fixed-size packet below needs */

/* A writer's sequence. Set id (nonzero, unique) and track_uuid; zero the
 * rest. started == 0 makes the next packet clear and restart the state. */
struct pf_seq {
    uint32_t id;
    uint64_t track_uuid;
    uint64_t last_ns; /* timestamp of the previous packet */
    int started;
    /* flows (lib/flows.h) of the next slice begin or end written, then
     * cleared: flow_out starts a flow, flow_in ends one; 0 = none. Both go
     * in TrackEvent.flow_ids (ids are never reused, and the earlier event
     * of the two is the source, whatever the order of the file) */
    uint64_t flow_in, flow_out;
};

/* ---- wire primitives ---------------------------------------------------- */

static inline uint8_t *pf_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline unsigned pf_varint_len(uint64_t v)
{
    unsigned n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* ---- packets ------------------------------------------------------------- */

/* First packet of a trace: CLOCK_MONOTONIC is the trace clock; mono_ns and
 * real_ns are one reading of CLOCK_MONOTONIC and CLOCK_REALTIME. */
uint8_t *pf_preamble(uint8_t *p, uint64_t mono_ns, uint64_t real_ns);

/* Room a process descriptor needs. */
size_t pf_process_max(size_t cmdline_len);
/* Process track: pid, name, command line (arguments separated by NUL,
 * cmdline_len bytes). */
uint8_t *pf_process_track(uint8_t *p, uint64_t uuid, uint32_t pid, const char *name,
                          const char *cmdline, size_t cmdline_len, uint64_t ts);
/* Thread track (name may be NULL). Room: PF_SMALL_MAX + strlen(name). */
uint8_t *pf_thread_track(uint8_t *p, uint64_t uuid, uint32_t pid, uint32_t tid, const char *name,
                         uint64_t ts);
/* Counter track of a process (parent), unit bytes. Room: PF_SMALL_MAX +
 * strlen(name). */
uint8_t *pf_counter_track(uint8_t *p, uint64_t uuid, uint64_t parent_uuid, const char *name,
                          uint64_t ts);

/* An async track (a tokio task's polls: flows.h) named name under the
 * process track parent_uuid. Room: PF_SMALL_MAX + strlen(name). */
uint8_t *pf_async_track(uint8_t *p, uint64_t uuid, uint64_t parent_uuid, const char *name,
                        uint64_t ts);

/* (Re)start sequence s at ns: clear its incremental state, set its defaults
 * and snapshot its delta clock. The event functions below do it by
 * themselves when s->started is 0. Room: 2 * PF_SMALL_MAX. */
uint8_t *pf_seq_start(uint8_t *p, struct pf_seq *s, uint64_t ns);

/* Room pf_slice_begin_def needs (a sequence start and PF_MAX_ARGS values
 * included). */
size_t pf_begin_def_max(size_t name_len, size_t file_len);

/* Most values a begin carries (debug annotations "arg0".."arg5", shown as
 * hex: the function's integer argument registers). */
#define PF_MAX_ARGS 6

/* Slice begin, name and source location already interned on this sequence
 * as iid (has_src: a source location was interned too), with nargs (<=
 * PF_MAX_ARGS) argument values. Room: 2 * PF_SMALL_MAX (3 * if the sequence
 * has not started). */
uint8_t *pf_slice_begin(uint8_t *p, struct pf_seq *s, uint64_t ns, uint64_t iid, int has_src,
                        const uint64_t *args, unsigned nargs);
/* Slice begin that also interns the name (and, if file, the source location
 * file:line) as iid on this sequence. */
uint8_t *pf_slice_begin_def(uint8_t *p, struct pf_seq *s, uint64_t ns, uint64_t iid,
                            const char *name, size_t name_len, const char *file, size_t file_len,
                            uint32_t line, const uint64_t *args, unsigned nargs);

/* Flags of a slice end (debug annotations of the slice). */
#define PF_END_UNFINISHED 1u /* "unfinished": true - its exit was not seen */
#define PF_END_CLIPPED 4u    /* "clipped": true - cut by the selected time range */
#define PF_END_UNWOUND 8u    /* "unwound": true - left by unwinding (exception, longjmp) */
/* Slice end. hidden: calls below the depth limit not shown (annotation
 * "hidden_calls" when nonzero); ret: the return value (annotation "ret",
 * hex) or NULL. Room: 2 * PF_SMALL_MAX (3 * if not started). */
uint8_t *pf_slice_end(uint8_t *p, struct pf_seq *s, uint64_t ns, unsigned flags, uint64_t hidden,
                      const uint64_t *ret);

/* Instant event with a literal name on the sequence's track. Room:
 * PF_SMALL_MAX * 2 + strlen(name). */
uint8_t *pf_instant(uint8_t *p, struct pf_seq *s, uint64_t ns, const char *name);

/* Counter value on track uuid at absolute CLOCK_MONOTONIC ns, on sequence
 * seq_id, which must not be a struct pf_seq's (it has no incremental state:
 * give each counter writer its own id). Room: PF_SMALL_MAX. */
uint8_t *pf_counter(uint8_t *p, uint32_t seq_id, uint64_t ns, uint64_t uuid, int64_t value);

#endif /* SFTRACE_PERFETTO_H */
