/*
 * pack.h - the compact encoding of EVENTS chunks (flag SF_EVENTS_PACKED).
 *
 * The trampoline writes fixed 8-byte records (logfmt.h) because that is the
 * cheapest thing to do on the hot path. Writing them to disk as they are
 * costs more than recording them (the page cache takes ~2 ns a byte here),
 * so the runtime packs each buffer when it flushes it, to about 2 bytes an
 * event, and the tools unpack it. Encoder and decoder live side by side in
 * this header so they cannot drift apart; both keep the same small state:
 *
 *   t      the current timestamp (starts at tsc_hi << 32 of the chunk)
 *   stack  the functions entered and not yet left, as the encoder saw them
 *   cache  8 recently entered function ids, direct-mapped by a hash
 *
 * The state is reset at every chunk, so each chunk decodes on its own.
 *
 * Record = tag byte, then fields:
 *   tag bits 0-1 kind (entry, exit, tail, ext)
 *   entry/tail/exit:
 *     bit 2     0: the function id is implied: for an entry, cache[idx];
 *                  for an exit or tail, the top of the stack
 *               1: a 4-byte function id follows the time delta
 *     bits 3-4  time delta length - 1 (1..4 bytes)
 *     bits 5-7  idx (entries only)
 *     then: delta (zigzag, little-endian, that many bytes) [, fid]
 *   ext (bits 2-7 = subtype):
 *     arg (1 byte), nwords (2 bytes), delta (8 bytes, zigzag),
 *     nwords * 8 bytes of payload
 * A delta that does not fit 4 bytes is carried by an ext PAD record before
 * the event. Stack rules, identical on both sides: an entry pushes (up to
 * SF_PACK_DEPTH); an exit or tail whose id is the top pops it; one whose id
 * is deeper pops down to and including it; one not on the stack changes
 * nothing.
 */
#ifndef SFTRACE_PACK_H
#define SFTRACE_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "logfmt.h"

#define SF_EVENTS_PACKED 2u /* sf_events.h.flags: records are packed */
#define SF_PACK_DEPTH 256
#define SF_PACK_CACHE 8
/* Packed output never exceeds this for `raw` bytes of raw records. */
#define SF_PACK_BOUND(raw) (3 * (raw) + 64)

struct sf_pack_state {
    uint64_t t;
    uint32_t depth;
    uint32_t cache[SF_PACK_CACHE];
    uint32_t stack[SF_PACK_DEPTH];
};

static inline void sf_pack_reset(struct sf_pack_state *s, uint32_t tsc_hi)
{
    s->t = (uint64_t)tsc_hi << 32;
    s->depth = 0;
    for (int i = 0; i < SF_PACK_CACHE; i++)
        s->cache[i] = UINT32_MAX;
}

static inline uint32_t sf_pack_idx(uint32_t fid)
{
    return (fid * 0x9E3779B1u) >> 29;
}

static inline void sf_pack_push(struct sf_pack_state *s, uint32_t fid)
{
    if (s->depth < SF_PACK_DEPTH)
        s->stack[s->depth++] = fid;
}

/* An exit or tail of `fid` that is not the top: pop down to it if present. */
static inline void sf_pack_unwind(struct sf_pack_state *s, uint32_t fid)
{
    for (uint32_t d = s->depth; d-- > 0;)
        if (s->stack[d] == fid) {
            s->depth = d;
            return;
        }
}

static inline uint64_t sf_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t sf_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- encoder (runtime) ---- */

/* Pack raw records [raw, raw+len) into out (SF_PACK_BOUND(len) bytes);
 * returns the packed length. `s` is scratch: the state starts fresh. The
 * hot state lives in locals so byte stores to `out` cannot alias it. */
static inline size_t sf_pack(struct sf_pack_state *s, const uint8_t *raw, size_t len, uint32_t hi,
                             uint8_t *out)
{
    uint8_t *o = out;
    const uint8_t *end = raw + len;
    uint64_t now = (uint64_t)hi << 32;
    uint32_t depth = 0;
    uint32_t cache[SF_PACK_CACHE];
    uint32_t *stack = s->stack;
    for (int i = 0; i < SF_PACK_CACHE; i++)
        cache[i] = UINT32_MAX;
    while (raw + 8 <= end) {
        uint32_t w0, w1;
        memcpy(&w0, raw, 4);
        memcpy(&w1, raw + 4, 4);
        raw += 8;
        uint32_t kind = sf_w1_kind(w1);
        if (__builtin_expect(kind == SF_KIND_EXT, 0)) {
            uint32_t sub = sf_w1_sub(w1), nw = sf_w1_nwords(w1);
            if (raw + 8 * (size_t)nw > end)
                break;
            if (sub == SF_EXT_TSC_HI) {
                hi = w0;
            } else if (sub != SF_EXT_PAD) {
                uint64_t t = ((uint64_t)hi << 32) | w0;
                uint64_t zz = sf_zigzag((int64_t)(t - now));
                now = t;
                o[0] = (uint8_t)(3u | (sub << 2));
                o[1] = (uint8_t)sf_w1_arg(w1);
                o[2] = (uint8_t)nw;
                o[3] = (uint8_t)(nw >> 8);
                memcpy(o + 4, &zz, 8);
                memcpy(o + 12, raw, 8 * (size_t)nw);
                o += 12 + 8 * (size_t)nw;
            }
            raw += 8 * (size_t)nw;
            continue;
        }
        uint32_t fid = sf_w1_fid(w1);
        uint64_t t = ((uint64_t)hi << 32) | w0;
        uint64_t zz = sf_zigzag((int64_t)(t - now));
        now = t;
        if (__builtin_expect(zz >> 32 != 0, 0)) {
            /* a long pause: carry the delta in a PAD record */
            o[0] = 3u | (SF_EXT_PAD << 2);
            o[1] = o[2] = o[3] = 0;
            memcpy(o + 4, &zz, 8);
            o += 12;
            zz = 0;
        }
        uint32_t d32 = (uint32_t)zz;
        uint32_t nb = 1 + (d32 >= 0x100) + (d32 >= 0x10000) + (d32 >= 0x1000000);
        uint32_t tag = kind | ((nb - 1) << 3), lit;
        if (kind == SF_KIND_ENTRY) {
            uint32_t idx = sf_pack_idx(fid);
            lit = cache[idx] != fid;
            cache[idx] = fid;
            tag |= idx << 5;
            if (depth < SF_PACK_DEPTH)
                stack[depth++] = fid;
        } else {
            lit = !(depth && stack[depth - 1] == fid);
            if (__builtin_expect(lit, 0)) {
                for (uint32_t d = depth; d-- > 0;)
                    if (stack[d] == fid) {
                        depth = d;
                        break;
                    }
            } else {
                depth--;
            }
        }
        o[0] = (uint8_t)(tag | (lit << 2));
        memcpy(o + 1, &d32, 4);
        o += 1 + nb;
        memcpy(o, &fid, 4);
        o += 4 * lit;
    }
    return (size_t)(o - out);
}

/* ---- decoder (tools) ---- */

struct sf_unpacked {
    uint64_t t;                /* full timestamp */
    uint32_t kind;             /* enum sf_kind */
    uint32_t fid;              /* function events */
    uint32_t sub, arg, nwords; /* ext records */
    const uint8_t *payload;    /* ext: nwords * 8 bytes */
};

/* Decode one record at *p. Returns 1 and advances *p, 0 at end, -1 if the
 * record runs past `end`. */
static inline int sf_unpack(struct sf_pack_state *s, const uint8_t **p, const uint8_t *end,
                            struct sf_unpacked *r)
{
    const uint8_t *q = *p;
    if (q >= end)
        return 0;
    uint32_t tag = q[0];
    r->kind = tag & 3;
    if (r->kind == SF_KIND_EXT) {
        if (end - q < 12)
            return -1;
        uint64_t zz;
        r->sub = tag >> 2;
        r->arg = q[1];
        r->nwords = (uint32_t)q[2] | ((uint32_t)q[3] << 8);
        memcpy(&zz, q + 4, 8);
        if ((size_t)(end - q) < 12 + 8 * (size_t)r->nwords)
            return -1;
        r->payload = q + 12;
        s->t += (uint64_t)sf_unzigzag(zz);
        r->t = s->t;
        r->fid = 0;
        *p = q + 12 + 8 * (size_t)r->nwords;
        return 1;
    }
    uint32_t nb = ((tag >> 3) & 3) + 1, lit = (tag >> 2) & 1;
    uint32_t d32 = 0, fid = 0;
    if (__builtin_expect(end - q >= 9, 1)) {
        /* room for the longest record: fixed-size loads, then mask */
        memcpy(&d32, q + 1, 4);
        d32 &= (uint32_t)(UINT64_MAX >> (64 - 8 * nb));
        memcpy(&fid, q + 1 + nb, 4);
        fid = lit ? fid : 0;
    } else {
        if ((size_t)(end - q) < 1 + nb + 4 * lit)
            return -1;
        memcpy(&d32, q + 1, nb);
        if (lit)
            memcpy(&fid, q + 1 + nb, 4);
    }
    s->t += (uint64_t)sf_unzigzag(d32);
    if (r->kind == SF_KIND_ENTRY) {
        uint32_t idx = tag >> 5;
        if (lit)
            s->cache[sf_pack_idx(fid)] = fid;
        else if ((fid = s->cache[idx]) == UINT32_MAX)
            return -1; /* a cache reference to nothing: corrupt */
        sf_pack_push(s, fid);
    } else if (lit) {
        sf_pack_unwind(s, fid);
    } else {
        if (!s->depth)
            return -1; /* an implied exit with nothing entered: corrupt */
        fid = s->stack[--s->depth];
    }
    r->t = s->t;
    r->fid = fid;
    r->sub = r->arg = r->nwords = 0;
    r->payload = NULL;
    *p = q + 1 + nb + 4 * lit;
    return 1;
}

#endif
