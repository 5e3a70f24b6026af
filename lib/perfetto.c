/*
 * perfetto.c - a small hand-written encoder of Perfetto TrackEvent packets
 * (see perfetto.h; field numbers from perfetto_trace.proto).
 */
#include <string.h>

#include "perfetto.h"

/* TracePacket */
#define TP_CLOCK_SNAPSHOT 6
#define TP_TIMESTAMP 8
#define TP_SEQ_ID 10
#define TP_TRACK_EVENT 11
#define TP_INTERNED_DATA 12
#define TP_SEQUENCE_FLAGS 13
#define TP_TIMESTAMP_CLOCK_ID 58
#define TP_DEFAULTS 59
#define TP_TRACK_DESCRIPTOR 60
#define SEQ_CLEARED 1
#define SEQ_NEEDS 2
/* ClockSnapshot / Clock */
#define CS_CLOCKS 1
#define CS_PRIMARY_TRACE_CLOCK 2
#define CLK_ID 1
#define CLK_TIMESTAMP 2
#define CLK_INCREMENTAL 3
#define CLOCK_REALTIME_ID 1
#define CLOCK_MONOTONIC_ID 3
#define CLOCK_SEQ_ID 64 /* sequence-scoped, incremental, 1 ns */
/* TracePacketDefaults / TrackEventDefaults */
#define TPD_CLOCK_ID 58
#define TPD_TRACK_EVENT_DEFAULTS 11
#define TED_TRACK_UUID 11
/* TrackDescriptor and friends */
#define TD_UUID 1
#define TD_NAME 2
#define TD_PROCESS 3
#define TD_THREAD 4
#define TD_PARENT 5
#define TD_COUNTER 8
#define PD_PID 1
#define PD_CMDLINE 2
#define PD_NAME 6
#define THD_PID 1
#define THD_TID 2
#define THD_NAME 5
#define CD_UNIT 3
#define UNIT_SIZE_BYTES 3
/* TrackEvent */
#define TE_DEBUG_ANNOTATIONS 4
#define TE_TYPE 9
#define TE_NAME_IID 10
#define TE_TRACK_UUID 11
#define TE_NAME 23
#define TE_COUNTER_VALUE 30
#define TE_SOURCE_LOCATION_IID 34
#define TYPE_SLICE_BEGIN 1
#define TYPE_SLICE_END 2
#define TYPE_INSTANT 3
#define TYPE_COUNTER 4
/* DebugAnnotation */
#define DA_BOOL 2
#define DA_UINT 3
#define DA_POINTER 7
#define DA_NAME 10
/* InternedData */
#define ID_EVENT_NAMES 2
#define ID_SOURCE_LOCATIONS 4
#define SL_IID 1
#define SL_FILE 2
#define SL_FUNCTION 3
#define SL_LINE 4

#define CMDLINE_MAX 32768u

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

static inline uint8_t *tag(uint8_t *p, uint32_t field, uint32_t wt)
{
    return pf_varint(p, (uint64_t)field << 3 | wt);
}

static inline uint8_t *put_uint(uint8_t *p, uint32_t field, uint64_t v)
{
    return pf_varint(tag(p, field, WT_VARINT), v);
}

/* Length of s cut to at most max bytes, not inside a UTF-8 sequence. */
static size_t cut_len(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static inline uint8_t *put_str(uint8_t *p, uint32_t field, const char *s, size_t len)
{
    len = cut_len(s, len, PF_STR_MAX);
    p = pf_varint(tag(p, field, WT_LEN), len);
    memcpy(p, s, len);
    return p + len;
}

/* Nested message: the tag, then a one-byte length placeholder at *mark. */
static inline uint8_t *msg_begin(uint8_t *p, uint32_t field, uint8_t **mark)
{
    p = tag(p, field, WT_LEN);
    *mark = p;
    return p + 1;
}

/* Fix the length of the message begun at mark; returns its end. */
static inline uint8_t *msg_end(uint8_t *p, uint8_t *mark)
{
    size_t len = (size_t)(p - (mark + 1));
    if (__builtin_expect(len < 0x80, 1)) {
        *mark = (uint8_t)len;
        return p;
    }
    unsigned n = pf_varint_len(len);
    memmove(mark + n, mark + 1, len);
    pf_varint(mark, len);
    return mark + n + len;
}

/* ---- packets ------------------------------------------------------------ */

uint8_t *pf_preamble(uint8_t *p, uint64_t mono_ns, uint64_t real_ns)
{
    uint8_t *pk, *cs, *c;
    p = msg_begin(p, 1, &pk);
    p = msg_begin(p, TP_CLOCK_SNAPSHOT, &cs);
    p = msg_begin(p, CS_CLOCKS, &c);
    p = put_uint(p, CLK_ID, CLOCK_MONOTONIC_ID);
    p = put_uint(p, CLK_TIMESTAMP, mono_ns);
    p = msg_end(p, c);
    if (real_ns) {
        p = msg_begin(p, CS_CLOCKS, &c);
        p = put_uint(p, CLK_ID, CLOCK_REALTIME_ID);
        p = put_uint(p, CLK_TIMESTAMP, real_ns);
        p = msg_end(p, c);
    }
    p = put_uint(p, CS_PRIMARY_TRACE_CLOCK, CLOCK_MONOTONIC_ID);
    p = msg_end(p, cs);
    p = put_uint(p, TP_SEQ_ID, PF_META_SEQ);
    return msg_end(p, pk);
}

/* Common head of a descriptor packet on the metadata sequence. */
static uint8_t *desc_begin(uint8_t *p, uint64_t ts, uint8_t **pk, uint8_t **td)
{
    p = msg_begin(p, 1, pk);
    p = put_uint(p, TP_TIMESTAMP, ts);
    p = put_uint(p, TP_TIMESTAMP_CLOCK_ID, CLOCK_MONOTONIC_ID);
    p = put_uint(p, TP_SEQ_ID, PF_META_SEQ);
    return msg_begin(p, TP_TRACK_DESCRIPTOR, td);
}

static uint8_t *desc_end(uint8_t *p, uint8_t *pk, uint8_t *td)
{
    p = msg_end(p, td);
    return msg_end(p, pk);
}

size_t pf_process_max(size_t cmdline_len)
{
    (void)cmdline_len;
    return PF_SMALL_MAX + PF_STR_MAX + 5 * (size_t)CMDLINE_MAX + 16;
}

uint8_t *pf_process_track(uint8_t *p, uint64_t uuid, uint32_t pid, const char *name,
                          const char *cmdline, size_t cmdline_len, uint64_t ts)
{
    uint8_t *pk, *td, *pd;
    p = desc_begin(p, ts, &pk, &td);
    p = put_uint(p, TD_UUID, uuid);
    p = msg_begin(p, TD_PROCESS, &pd);
    p = put_uint(p, PD_PID, pid);
    if (cmdline) {
        size_t used = 0;
        while (used < cmdline_len && used < CMDLINE_MAX) {
            const char *a = cmdline + used;
            size_t rest = cmdline_len - used, n = strnlen(a, rest);
            if (n > CMDLINE_MAX - used)
                n = CMDLINE_MAX - used;
            p = put_str(p, PD_CMDLINE, a, n);
            used += n + 1;
        }
    }
    if (name && *name)
        p = put_str(p, PD_NAME, name, strlen(name));
    p = msg_end(p, pd);
    return desc_end(p, pk, td);
}

uint8_t *pf_thread_track(uint8_t *p, uint64_t uuid, uint32_t pid, uint32_t tid, const char *name,
                         uint64_t ts)
{
    uint8_t *pk, *td, *th;
    p = desc_begin(p, ts, &pk, &td);
    p = put_uint(p, TD_UUID, uuid);
    p = msg_begin(p, TD_THREAD, &th);
    p = put_uint(p, THD_PID, pid);
    p = put_uint(p, THD_TID, tid);
    if (name && *name)
        p = put_str(p, THD_NAME, name, strlen(name));
    p = msg_end(p, th);
    return desc_end(p, pk, td);
}

uint8_t *pf_counter_track(uint8_t *p, uint64_t uuid, uint64_t parent_uuid, const char *name,
                          uint64_t ts)
{
    uint8_t *pk, *td, *cd;
    p = desc_begin(p, ts, &pk, &td);
    p = put_uint(p, TD_UUID, uuid);
    p = put_str(p, TD_NAME, name, strlen(name));
    p = put_uint(p, TD_PARENT, parent_uuid);
    p = msg_begin(p, TD_COUNTER, &cd);
    p = put_uint(p, CD_UNIT, UNIT_SIZE_BYTES);
    p = msg_end(p, cd);
    return desc_end(p, pk, td);
}

uint8_t *pf_async_track(uint8_t *p, uint64_t uuid, uint64_t parent_uuid, const char *name,
                        uint64_t ts)
{
    uint8_t *pk, *td;
    size_t len = strlen(name);
    p = desc_begin(p, ts, &pk, &td);
    p = put_uint(p, TD_UUID, uuid);
    p = put_str(p, TD_NAME, name, len > PF_STR_MAX ? PF_STR_MAX : len);
    p = put_uint(p, TD_PARENT, parent_uuid);
    return desc_end(p, pk, td);
}

/* Clear the sequence's incremental state, set its defaults and snapshot its
 * delta clock at ns: two packets. */
static uint8_t *seq_start(uint8_t *p, struct pf_seq *s, uint64_t ns)
{
    uint8_t *pk, *d, *ted, *cs, *c;
    p = msg_begin(p, 1, &pk);
    p = put_uint(p, TP_SEQ_ID, s->id);
    p = put_uint(p, TP_SEQUENCE_FLAGS, SEQ_CLEARED);
    p = msg_begin(p, TP_DEFAULTS, &d);
    p = put_uint(p, TPD_CLOCK_ID, CLOCK_SEQ_ID);
    p = msg_begin(p, TPD_TRACK_EVENT_DEFAULTS, &ted);
    p = put_uint(p, TED_TRACK_UUID, s->track_uuid);
    p = msg_end(p, ted);
    p = msg_end(p, d);
    p = msg_end(p, pk);

    p = msg_begin(p, 1, &pk);
    p = msg_begin(p, TP_CLOCK_SNAPSHOT, &cs);
    p = msg_begin(p, CS_CLOCKS, &c);
    p = put_uint(p, CLK_ID, CLOCK_MONOTONIC_ID);
    p = put_uint(p, CLK_TIMESTAMP, ns);
    p = msg_end(p, c);
    p = msg_begin(p, CS_CLOCKS, &c);
    p = put_uint(p, CLK_ID, CLOCK_SEQ_ID);
    p = put_uint(p, CLK_TIMESTAMP, ns);
    p = put_uint(p, CLK_INCREMENTAL, 1);
    p = msg_end(p, c);
    p = msg_end(p, cs);
    p = put_uint(p, TP_SEQ_ID, s->id);
    p = msg_end(p, pk);
    s->started = 1;
    s->last_ns = ns;
    return p;
}

/* Head of an event packet on s: (start,) delta timestamp, sequence id and
 * flags; opens the TrackEvent. */
static inline uint8_t *ev_begin(uint8_t *p, struct pf_seq *s, uint64_t ns, uint8_t **pk,
                                uint8_t **te)
{
    if (__builtin_expect(!s->started, 0))
        p = seq_start(p, s, ns);
    if (__builtin_expect(ns < s->last_ns, 0))
        ns = s->last_ns;
    p = msg_begin(p, 1, pk);
    p = put_uint(p, TP_TIMESTAMP, ns - s->last_ns);
    s->last_ns = ns;
    *p++ = TP_SEQ_ID << 3;
    p = pf_varint(p, s->id);
    *p++ = TP_SEQUENCE_FLAGS << 3;
    *p++ = SEQ_NEEDS;
    return msg_begin(p, TP_TRACK_EVENT, te);
}

uint8_t *pf_seq_start(uint8_t *p, struct pf_seq *s, uint64_t ns)
{
    return seq_start(p, s, ns);
}

/* Debug annotations "arg0".. (or "ret" when ret) with pointer (hex) values. */
static uint8_t *put_vals(uint8_t *p, const uint64_t *v, unsigned n, int ret)
{
    uint8_t *da;
    if (n > PF_MAX_ARGS)
        n = PF_MAX_ARGS;
    for (unsigned i = 0; i < n; i++) {
        char name[5] = {'a', 'r', 'g', (char)('0' + i), 0};
        p = msg_begin(p, TE_DEBUG_ANNOTATIONS, &da);
        p = ret ? put_str(p, DA_NAME, "ret", 3) : put_str(p, DA_NAME, name, 4);
        p = put_uint(p, DA_POINTER, v[i]);
        p = msg_end(p, da);
    }
    return p;
}

#define TE_FLOW_IDS 47 /* repeated fixed64 */

/* The sequence's pending flow ids (struct pf_seq), written and cleared.
 * Not terminating_flow_ids for the end: trace_processor and checkers that
 * read in file order would see it before its start (threads' chunks are
 * in flush order). */
static uint8_t *put_flows(uint8_t *p, struct pf_seq *s)
{
    const uint64_t ids[2] = {s->flow_in, s->flow_out};
    for (int i = 0; i < 2; i++) {
        if (!ids[i])
            continue;
        p = tag(p, TE_FLOW_IDS, WT_I64);
        for (int b = 0; b < 8; b++)
            *p++ = (uint8_t)(ids[i] >> (8 * b));
    }
    s->flow_in = s->flow_out = 0;
    return p;
}

uint8_t *pf_slice_begin(uint8_t *p, struct pf_seq *s, uint64_t ns, uint64_t iid, int has_src,
                        const uint64_t *args, unsigned nargs)
{
    uint8_t *pk, *te;
    p = ev_begin(p, s, ns, &pk, &te);
    *p++ = TE_TYPE << 3;
    *p++ = TYPE_SLICE_BEGIN;
    *p++ = TE_NAME_IID << 3;
    p = pf_varint(p, iid);
    if (has_src) {
        p = tag(p, TE_SOURCE_LOCATION_IID, WT_VARINT);
        p = pf_varint(p, iid);
    }
    if (__builtin_expect(nargs != 0, 0))
        p = put_vals(p, args, nargs, 0);
    if (__builtin_expect(s->flow_in | s->flow_out, 0))
        p = put_flows(p, s);
    p = msg_end(p, te);
    return msg_end(p, pk);
}

size_t pf_begin_def_max(size_t name_len, size_t file_len)
{
    if (name_len > PF_STR_MAX)
        name_len = PF_STR_MAX;
    if (file_len > PF_STR_MAX)
        file_len = PF_STR_MAX;
    return 4 * PF_SMALL_MAX + 2 * name_len + file_len + 64;
}

uint8_t *pf_slice_begin_def(uint8_t *p, struct pf_seq *s, uint64_t ns, uint64_t iid,
                            const char *name, size_t name_len, const char *file, size_t file_len,
                            uint32_t line, const uint64_t *args, unsigned nargs)
{
    uint8_t *pk, *te, *id, *m;
    p = ev_begin(p, s, ns, &pk, &te);
    *p++ = TE_TYPE << 3;
    *p++ = TYPE_SLICE_BEGIN;
    p = put_uint(p, TE_NAME_IID, iid);
    if (file)
        p = put_uint(p, TE_SOURCE_LOCATION_IID, iid);
    if (nargs)
        p = put_vals(p, args, nargs, 0);
    if (s->flow_in | s->flow_out)
        p = put_flows(p, s);
    p = msg_end(p, te);
    p = msg_begin(p, TP_INTERNED_DATA, &id);
    p = msg_begin(p, ID_EVENT_NAMES, &m);
    p = put_uint(p, 1, iid);
    p = put_str(p, 2, name, name_len);
    p = msg_end(p, m);
    if (file) {
        p = msg_begin(p, ID_SOURCE_LOCATIONS, &m);
        p = put_uint(p, SL_IID, iid);
        p = put_str(p, SL_FILE, file, file_len);
        p = put_str(p, SL_FUNCTION, name, name_len);
        p = put_uint(p, SL_LINE, line);
        p = msg_end(p, m);
    }
    p = msg_end(p, id);
    return msg_end(p, pk);
}

uint8_t *pf_slice_end(uint8_t *p, struct pf_seq *s, uint64_t ns, unsigned flags, uint64_t hidden,
                      const uint64_t *ret)
{
    uint8_t *pk, *te, *da;
    p = ev_begin(p, s, ns, &pk, &te);
    *p++ = TE_TYPE << 3;
    *p++ = TYPE_SLICE_END;
    if (__builtin_expect(flags != 0, 0)) {
        static const struct {
            unsigned flag;
            const char *name;
        } fl[] = {{PF_END_UNFINISHED, "unfinished"},
                  {PF_END_CLIPPED, "clipped"},
                  {PF_END_UNWOUND, "unwound"}};
        for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
            if (!(flags & fl[i].flag))
                continue;
            p = msg_begin(p, TE_DEBUG_ANNOTATIONS, &da);
            p = put_str(p, DA_NAME, fl[i].name, strlen(fl[i].name));
            p = put_uint(p, DA_BOOL, 1);
            p = msg_end(p, da);
        }
    }
    if (__builtin_expect(hidden != 0, 0)) {
        p = msg_begin(p, TE_DEBUG_ANNOTATIONS, &da);
        p = put_str(p, DA_NAME, "hidden_calls", 12);
        p = put_uint(p, DA_UINT, hidden);
        p = msg_end(p, da);
    }
    if (__builtin_expect(ret != NULL, 0))
        p = put_vals(p, ret, 1, 1);
    if (__builtin_expect(s->flow_in | s->flow_out, 0))
        p = put_flows(p, s);
    p = msg_end(p, te);
    return msg_end(p, pk);
}

uint8_t *pf_instant(uint8_t *p, struct pf_seq *s, uint64_t ns, const char *name)
{
    uint8_t *pk, *te;
    p = ev_begin(p, s, ns, &pk, &te);
    p = put_uint(p, TE_TYPE, TYPE_INSTANT);
    p = put_str(p, TE_NAME, name, strlen(name));
    p = msg_end(p, te);
    return msg_end(p, pk);
}

uint8_t *pf_counter(uint8_t *p, uint32_t seq_id, uint64_t ns, uint64_t uuid, int64_t value)
{
    uint8_t *pk, *te;
    p = msg_begin(p, 1, &pk);
    p = put_uint(p, TP_TIMESTAMP, ns);
    p = put_uint(p, TP_TIMESTAMP_CLOCK_ID, CLOCK_MONOTONIC_ID);
    p = put_uint(p, TP_SEQ_ID, seq_id);
    p = msg_begin(p, TP_TRACK_EVENT, &te);
    p = put_uint(p, TE_TYPE, TYPE_COUNTER);
    p = put_uint(p, TE_TRACK_UUID, uuid);
    p = put_uint(p, TE_COUNTER_VALUE, (uint64_t)value);
    p = msg_end(p, te);
    return msg_end(p, pk);
}
