/*
 * pack.h - the compact encodings of EVENTS chunks (flag SF_EVENTS_PACKED).
 *
 * The trampoline writes fixed 8-byte records (logfmt.h) because that is the
 * cheapest thing to do on the hot path. Writing them to disk as they are
 * costs more than recording them, so the runtime packs each buffer when it
 * flushes it, to about 2-2.5 bytes an event, and the tools unpack it.
 * Encoders and decoders live side by side in this header so they cannot
 * drift apart; both sides keep the same small state, reset at every chunk
 * so each chunk decodes on its own:
 *
 *   t      the current timestamp (starts at tsc_hi << 32 of the chunk)
 *   stack  the functions entered and not yet left, as the encoder saw them
 *   cache  recently entered function ids, direct-mapped by a hash
 *
 * Stack rules, identical on both sides and in both encodings: an entry
 * pushes (up to SF_PACK_DEPTH); an exit or tail whose id is the top pops
 * it; one whose id is deeper pops down to and including it; one not on the
 * stack changes nothing.
 *
 * Encoding 2 (flags SF_PACK_FLAGS, what sf_pack writes; docs/log-format.md
 * has the full table). A record of L bytes is one little-endian word:
 *   ..0  exit/tail (bit 1) of the top of the stack; bits 2-3 L-2; delta
 *   .01  entry: bits 2-3 id class, 4-5 L-base; id field; delta
 *   011  pair = entry + its own exit/tail (bit 3): bits 4-5 id class,
 *        6-7 L-base; id field; entry delta (7 bits); end delta
 *   111  bits 3-4: 0/1 exit/tail with a full id, 2 ext, 3 reserved
 * The id field of class 0 is a slot of the 16-entry cache; of classes 1-3
 * a zigzag delta from the id entered last, in 8, 18 or 31 bits. So an id
 * costs 4 bits when cached and about log2(distance) bits otherwise: no
 * cache hit is needed to stay small when calls spread over thousands of
 * functions, and a leaf call (half of all calls) is one 4-byte record.
 * Every record is at least 2 bytes per event it stands for.
 *
 * Encoding 1 (flags SF_EVENTS_PACKED alone: logs of older runtimes; kept
 * as sf_pack1/sf_unpack1 so they still read). Record = tag byte, then:
 *   tag bits 0-1 kind (entry, exit, tail, ext)
 *   entry/tail/exit:
 *     bit 2     0: the function id is implied: for an entry, cache[idx];
 *                  for an exit or tail, the top of the stack
 *               1: a 4-byte function id follows the time delta
 *     bits 3-4  time delta length - 1 (1..4 bytes)
 *     bits 5-7  idx (entries only, 8-entry cache)
 *     then: delta (zigzag, little-endian, that many bytes) [, fid]
 *   ext (bits 2-7 = subtype):
 *     arg (1 byte), nwords (2 bytes), delta (8 bytes, zigzag),
 *     nwords * 8 bytes of payload
 * In both, a delta too long for a function record is carried by an ext PAD
 * record before the event.
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

#define SF_EVENTS_PACK2 4u /* with SF_EVENTS_PACKED: encoding 2 (below) */
/* The EVENTS flags sf_pack()'s output is written with. */
#define SF_PACK_FLAGS (SF_EVENTS_PACKED | SF_EVENTS_PACK2)
#define SF_PACK2_CACHE 16

struct sf_pack_state {
    uint64_t t;
    uint32_t depth;
    uint32_t enc;  /* 1 or 2: the chunk's encoding */
    uint32_t prev; /* encoding 2: the function last entered */
    uint32_t pend; /* encoding 2: 1 + kind of a pair's end still to return */
    uint32_t pend_fid;
    uint64_t pend_dt;
    /* encoding 1 uses the first 8; [SF_PACK2_CACHE]: sf_unpack_run's
     * scratch slot */
    uint32_t cache[SF_PACK2_CACHE + 1];
    uint32_t stack[SF_PACK_DEPTH];
};

/* Start decoding a chunk whose first timestamp high half is tsc_hi and
 * whose EVENTS flags are `flags` (they select the encoding). */
static inline void sf_unpack_begin(struct sf_pack_state *s, uint32_t tsc_hi, uint32_t flags)
{
    s->t = (uint64_t)tsc_hi << 32;
    s->depth = 0;
    s->enc = (flags & SF_EVENTS_PACK2) ? 2 : 1;
    s->prev = 0;
    s->pend = 0;
    for (int i = 0; i < SF_PACK2_CACHE; i++)
        s->cache[i] = UINT32_MAX;
}

/* Encoding 1 (logs written before encoding 2). */
static inline void sf_pack_reset(struct sf_pack_state *s, uint32_t tsc_hi)
{
    sf_unpack_begin(s, tsc_hi, SF_EVENTS_PACKED);
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

/* Encoding 1: pack raw records [raw, raw+len) into out (SF_PACK_BOUND(len)
 * bytes); returns the packed length. `s` is scratch: the state starts
 * fresh. The hot state lives in locals so byte stores to `out` cannot alias
 * it. The runtime no longer calls it: it is the encoder older runtimes ran,
 * kept as it was (its loop shares its shape with sf_pack's on purpose, not
 * its code, so work on encoding 2 cannot change it) so that the tests and
 * bench/packbench.c can make encoding-1 data and compare. */
static inline size_t sf_pack1(struct sf_pack_state *s, const uint8_t *raw, size_t len, uint32_t hi,
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
static inline int sf_unpack1(struct sf_pack_state *s, const uint8_t **p, const uint8_t *end,
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

/* ---- encoding 2 (SF_EVENTS_PACK2) ---- */

/* Function-id field widths by class: class 0 is an index into the 16-entry
 * cache, classes 1-3 a zigzag delta from the function last entered. */
static const uint8_t sf_pack2_fw[4] = {4, 8, 18, 31};
/* Shortest length (bytes) of a single entry / of a pair, by class: room for
 * the header and the id field, at least 2 bytes an event. */
static const uint8_t sf_pack2_base1[4] = {2, 2, 3, 5};
static const uint8_t sf_pack2_base2[4] = {4, 4, 5, 6};
#define SF_PACK2_T1 7 /* a pair's entry delta field */

static inline uint32_t sf_pack2_idx(uint32_t fid)
{
    return (fid * 0x9E3779B1u) >> 28;
}

/* Bytes needed for the bits of w (at least 1). */
static inline uint32_t sf_pack2_bytes(uint64_t w)
{
    return (uint32_t)(71 - __builtin_clzll(w | 1)) >> 3;
}

/* An ext PAD record carrying time delta dt (either sign). */
static inline uint8_t *sf_pack2_pad(uint8_t *o, uint64_t dt)
{
    uint64_t zz = sf_zigzag((int64_t)dt);
    o[0] = 7u | (2u << 3);
    o[1] = SF_EXT_PAD;
    o[2] = o[3] = o[4] = 0;
    memcpy(o + 5, &zz, 8);
    return o + 13;
}

/* The id field and class of an entry of fid; updates cache and prev. */
static inline uint64_t sf_pack2_fid(uint32_t *cache, uint32_t *prev, uint32_t fid, uint32_t *fc)
{
    uint32_t idx = sf_pack2_idx(fid);
    uint32_t d = fid - *prev;
    uint32_t zz = (d << 1) ^ (uint32_t)((int32_t)d >> 31);
    *prev = fid;
    if (cache[idx] == fid) {
        *fc = 0;
        return idx;
    }
    cache[idx] = fid;
    *fc = zz < (1u << 8) ? 1 : zz < (1u << 18) ? 2 : 3;
    return zz;
}

/* Pack raw records [raw, raw+len) into out (SF_PACK_BOUND(len) bytes) in
 * encoding 2; returns the packed length. `s` is scratch: the state starts
 * fresh. Records are stored as 8-byte words and the output pointer moves
 * by their length, so out must have 8 bytes of room past the bound's
 * content (SF_PACK_BOUND has 64). */
static inline size_t sf_pack(struct sf_pack_state *s, const uint8_t *raw, size_t len, uint32_t hi,
                             uint8_t *out)
{
    uint8_t *o = out;
    const uint8_t *end = raw + len;
    uint64_t now = (uint64_t)hi << 32, hiw = now; /* hiw: hi << 32 */
    uint32_t depth = 0, prev = 0;
    uint32_t cache[SF_PACK2_CACHE];
    uint32_t *stack = s->stack;
    for (int i = 0; i < SF_PACK2_CACHE; i++)
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
                hiw = (uint64_t)w0 << 32;
            } else if (sub != SF_EXT_PAD) {
                uint64_t t = hiw | w0;
                uint64_t zz = sf_zigzag((int64_t)(t - now));
                now = t;
                o[0] = 7u | (2u << 3);
                o[1] = (uint8_t)sub;
                o[2] = (uint8_t)sf_w1_arg(w1);
                o[3] = (uint8_t)nw;
                o[4] = (uint8_t)(nw >> 8);
                memcpy(o + 5, &zz, 8);
                memcpy(o + 13, raw, 8 * (size_t)nw);
                o += 13 + 8 * (size_t)nw;
            }
            raw += 8 * (size_t)nw;
            continue;
        }
        uint32_t fid = sf_w1_fid(w1);
        uint64_t t = hiw | w0;
        uint64_t dt = t - now;
        now = t;
        if (kind == SF_KIND_ENTRY) {
            uint32_t n0, n1;
            /* an entry straight followed by its own exit or tail: a pair */
            if (dt < (1u << SF_PACK2_T1) && raw + 8 <= end) {
                memcpy(&n0, raw, 4);
                memcpy(&n1, raw + 4, 4);
                uint64_t t2 = (uint64_t)n0 - w0; /* same high half */
                /* the same id, kind exit (1) or tail (2) */
                uint32_t ci = sf_pack2_idx(fid), cv = cache[ci];
                if (n1 - w1 - 1 < 2 && cv == fid && t2 < (1u << 13)) {
                    /* the common case: a cached leaf, 4 bytes */
                    uint32_t w = 3u | ((n1 & 2u) << 2) | (ci << 8) | ((uint32_t)dt << 12) |
                                 ((uint32_t)t2 << 19);
                    memcpy(o, &w, 4);
                    o += 4;
                    prev = fid;
                    raw += 8;
                    now = t + t2;
                    continue;
                }
                if (n1 - w1 - 1 < 2 && t2 < (1u << 18)) {
                    uint32_t d = fid - prev, zz = (d << 1) ^ (uint32_t)((int32_t)d >> 31);
                    if (cv != fid && zz < (1u << 18) && t2 < (1u << 15)) {
                        /* not cached, an 8- or 18-bit delta: 4 to 6 bytes */
                        uint64_t w, nb;
                        if (zz < (1u << 8) && t2 < (1u << 9)) {
                            w = 3u | ((n1 & 2u) << 2) | (1u << 4) | (zz << 8) | (dt << 16) |
                                (t2 << 23);
                            nb = 4;
                        } else {
                            nb = 5 + (t2 >= (1u << 7));
                            w = 3u | ((n1 & 2u) << 2) | (2u << 4) | ((nb - 5) << 6) |
                                ((uint64_t)zz << 8) | (dt << 26) | (t2 << 33);
                        }
                        memcpy(o, &w, 8);
                        o += nb;
                        cache[ci] = fid;
                        prev = fid;
                        raw += 8;
                        now = t + t2;
                        continue;
                    }
                    uint32_t fc, sv = prev;
                    uint64_t fz = sf_pack2_fid(cache, &prev, fid, &fc);
                    uint32_t fw = sf_pack2_fw[fc], base = sf_pack2_base2[fc];
                    uint64_t w = 3u | ((n1 & 2u) << 2) | (fc << 4) | (fz << 8) | (dt << (8 + fw)) |
                                 (t2 << (8 + SF_PACK2_T1 + fw));
                    uint32_t nb = sf_pack2_bytes(w);
                    nb = nb < base ? base : nb;
                    /* 8 + 7 + 31 + 18 bits fit a word; the length may not */
                    if (__builtin_expect(nb - base <= 3, 1)) {
                        w |= (uint64_t)(nb - base) << 6;
                        memcpy(o, &w, 8);
                        o += nb;
                        raw += 8;
                        now = t + t2;
                        continue;
                    }
                    prev = sv; /* does not fit: undo, write it as two */
                    cache[ci] = cv;
                }
            }
            if (__builtin_expect(dt >= (1u << 24), 0)) {
                /* a long pause, or time going back: a PAD record carries it */
                o = sf_pack2_pad(o, dt);
                dt = 0;
            }
            uint32_t fc, ci = sf_pack2_idx(fid);
            if (cache[ci] == fid && dt < 64) { /* the common case, 2 bytes */
                uint32_t w = 1u | (ci << 6) | ((uint32_t)dt << 10);
                memcpy(o, &w, 4);
                o += 2;
                prev = fid;
                if (depth < SF_PACK_DEPTH)
                    stack[depth++] = fid;
                continue;
            }
            uint32_t d = fid - prev, zz = (d << 1) ^ (uint32_t)((int32_t)d >> 31);
            if (cache[ci] != fid && zz < (1u << 18) && dt < 256) {
                /* not cached, an 8- or 18-bit delta: 2 to 4 bytes */
                uint32_t w, nb;
                if (zz < (1u << 8)) {
                    nb = 2 + (dt >= 4);
                    w = 1u | (1u << 2) | ((nb - 2) << 4) | (zz << 6) | ((uint32_t)dt << 14);
                } else {
                    nb = 3 + (dt != 0);
                    w = 1u | (2u << 2) | ((nb - 3) << 4) | (zz << 6) | ((uint32_t)dt << 24);
                }
                memcpy(o, &w, 4);
                o += nb;
                cache[ci] = fid;
                prev = fid;
                if (depth < SF_PACK_DEPTH)
                    stack[depth++] = fid;
                continue;
            }
            uint64_t fz = sf_pack2_fid(cache, &prev, fid, &fc);
            uint32_t fw = sf_pack2_fw[fc], base = sf_pack2_base1[fc];
            uint64_t w = 1u | (fc << 2) | (fz << 6) | (dt << (6 + fw));
            /* dt < 2^24 always fits: at most base + 3 bytes for every class */
            uint32_t nb = sf_pack2_bytes(w);
            nb = nb < base ? base : nb;
            w |= (uint64_t)(nb - base) << 4;
            memcpy(o, &w, 8);
            o += nb;
            if (depth < SF_PACK_DEPTH)
                stack[depth++] = fid;
            continue;
        }
        if (__builtin_expect(dt >= (1u << 24), 0)) {
            /* a long pause, or time going back: a PAD record carries it */
            o = sf_pack2_pad(o, dt);
            dt = 0;
        }
        if (__builtin_expect(depth && stack[depth - 1] == fid, 1)) {
            depth--;
            if (dt < 4096) { /* the common case, 2 bytes */
                uint32_t w = (kind & 2u) | ((uint32_t)dt << 4);
                memcpy(o, &w, 4);
                o += 2;
                continue;
            }
            uint64_t w = (kind & 2u) | (dt << 4); /* bit 1: tail */
            uint32_t nb = sf_pack2_bytes(w);
            nb = nb < 2 ? 2 : nb;
            w |= (uint64_t)(nb - 2) << 2;
            memcpy(o, &w, 8);
            o += nb;
            continue;
        }
        /* an exit or tail of a function that is not the top */
        for (uint32_t d = depth; d-- > 0;)
            if (stack[d] == fid) {
                depth = d;
                break;
            }
        uint32_t d32 = (uint32_t)dt;
        uint32_t nb = 1 + (d32 >= 0x100) + (d32 >= 0x10000) + (d32 >= 0x1000000);
        o[0] = (uint8_t)(7u | ((kind & 2u) << 2) | ((nb - 1) << 5));
        memcpy(o + 1, &d32, 4);
        o += 1 + nb;
        memcpy(o, &fid, 4);
        o += 4;
    }
    return (size_t)(o - out);
}

/* Encoding 2: decode one record at *p (see sf_unpack). */
static inline __attribute__((always_inline)) int
sf_unpack2(struct sf_pack_state *s, const uint8_t **p, const uint8_t *end, struct sf_unpacked *r)
{
    r->sub = r->arg = r->nwords = 0;
    r->payload = NULL;
    if (s->pend) { /* the end of a pair: its bytes were read with the entry */
        r->kind = s->pend - 1;
        r->fid = s->pend_fid;
        s->t += s->pend_dt;
        r->t = s->t;
        s->pend = 0;
        return 1;
    }
    const uint8_t *q = *p;
    if (q >= end)
        return 0;
    size_t left = (size_t)(end - q);
    uint32_t tag = q[0];
    if ((tag & 7) == 7) {
        uint32_t sub = (tag >> 3) & 3;
        if (sub == 2) { /* ext */
            if (left < 13 || (tag >> 5) != 0)
                return -1;
            uint64_t zz;
            r->kind = SF_KIND_EXT;
            r->sub = q[1];
            r->arg = q[2];
            r->nwords = (uint32_t)q[3] | ((uint32_t)q[4] << 8);
            memcpy(&zz, q + 5, 8);
            if (r->sub > 0x3f || left < 13 + 8 * (size_t)r->nwords)
                return -1;
            r->payload = q + 13;
            s->t += (uint64_t)sf_unzigzag(zz);
            r->t = s->t;
            r->fid = 0;
            *p = q + 13 + 8 * (size_t)r->nwords;
            return 1;
        }
        if (sub == 3 || (tag >> 7))
            return -1;
        uint32_t nb = ((tag >> 5) & 3) + 1, d32 = 0, fid;
        if (left < 1 + nb + 4)
            return -1;
        memcpy(&d32, q + 1, nb);
        memcpy(&fid, q + 1 + nb, 4);
        if (fid > SF_FID_MAX)
            return -1;
        sf_pack_unwind(s, fid);
        r->kind = sub ? SF_KIND_TAIL : SF_KIND_EXIT;
        r->fid = fid;
        s->t += d32;
        r->t = s->t;
        *p = q + 1 + nb + 4;
        return 1;
    }
    uint64_t w = 0;
    memcpy(&w, q, left < 8 ? left : 8);
    uint32_t nb;
    if (!(tag & 1)) { /* the end of the function on top of the stack */
        nb = 2 + ((tag >> 2) & 3);
        if (nb > left || !s->depth)
            return -1;
        w &= UINT64_MAX >> (64 - 8 * nb);
        r->kind = (tag & 2) ? SF_KIND_TAIL : SF_KIND_EXIT;
        r->fid = s->stack[--s->depth];
        s->t += w >> 4;
        r->t = s->t;
        *p = q + nb;
        return 1;
    }
    int pair = (tag & 2) != 0;
    uint32_t fc = pair ? (tag >> 4) & 3 : (tag >> 2) & 3;
    uint32_t fw = sf_pack2_fw[fc], hb = pair ? 8 : 6;
    nb = pair ? sf_pack2_base2[fc] + (tag >> 6) : sf_pack2_base1[fc] + ((tag >> 4) & 3);
    if (nb > 8 || nb > left)
        return -1;
    w &= UINT64_MAX >> (64 - 8 * nb);
    uint32_t fz = (uint32_t)(w >> hb) & (uint32_t)(UINT64_MAX >> (64 - fw));
    uint64_t rest = w >> (hb + fw);
    uint32_t fid;
    if (fc == 0) {
        if ((fid = s->cache[fz]) == UINT32_MAX)
            return -1; /* a cache reference to nothing: corrupt */
    } else {
        fid = s->prev + ((fz >> 1) ^ -(fz & 1));
        if (fid > SF_FID_MAX)
            return -1;
        s->cache[sf_pack2_idx(fid)] = fid;
    }
    s->prev = fid;
    r->kind = SF_KIND_ENTRY;
    r->fid = fid;
    if (pair) {
        s->t += rest & ((1u << SF_PACK2_T1) - 1);
        s->pend = 1 + ((tag & 8) ? SF_KIND_TAIL : SF_KIND_EXIT);
        s->pend_fid = fid;
        s->pend_dt = rest >> SF_PACK2_T1;
    } else {
        s->t += rest;
        sf_pack_push(s, fid);
    }
    r->t = s->t;
    *p = q + nb;
    return 1;
}

/* A decoded record as the reader keeps a packed chunk's records
 * (lib/logread.c), for the call engine to read: 16 bytes, 4 a cache line,
 * as the reader writes them and the engine (often on another core) reads
 * them once. The kind and the record's offset in the payload share a word
 * (kept chunks are at most 4 MiB); an EXT record's subtype, arg and payload
 * are read again from its bytes (sf_unpack_ext) when needed. */
struct sf_decoded {
    uint64_t t;
    uint32_t fid; /* function records; 0 for EXT */
    uint32_t kr;  /* kind | rel << 2, rel: the record's offset in the payload */
};
#define SF_DECODED_MAXREL (UINT32_MAX >> 2)
/* Records of zeros the reader keeps after a chunk's decoded records, so
 * that the engine can look that far ahead (to prefetch) unchecked. */
#define SF_DECODED_PAD 16

static inline uint32_t sf_dec_kind(const struct sf_decoded *d)
{
    return d->kr & 3;
}
static inline uint32_t sf_dec_rel(const struct sf_decoded *d)
{
    return d->kr >> 2;
}

/* The subtype, arg, nwords and payload of an EXT record at q that
 * sf_unpack has decoded (so checked) in a chunk of encoding enc. */
static inline void sf_unpack_ext(const uint8_t *q, uint32_t enc, struct sf_unpacked *r)
{
    uint32_t o = enc == 2; /* encoding 2 has the subtype in a byte of its own */
    r->sub = o ? q[1] : (uint32_t)q[0] >> 2;
    r->arg = q[1 + o];
    r->nwords = (uint32_t)q[2 + o] | ((uint32_t)q[3 + o] << 8);
    r->payload = q + 12 + o;
}

/* What sf_unpack_run needs of a tag, looked up in one load instead of
 * computed from it (about 8 instructions a record): for an entry (.01) or
 * a pair (011), bits 0-3 the record's length (sf_pack2_base1/base2 plus
 * the tag's length bits; above 8 for a pair the fast path leaves to
 * sf_unpack), 4-7 where the id field starts (6, a pair 8), 8 pair, 9 the
 * id is a delta (class 1-3; class 0 is a cache slot), 16-21
 * where the delta starts (id field start + width: sf_pack2_fw), 32-63 the
 * id field's mask; for an end (..0), bits 0-3 its length. 111 tags: 0. */
#define SF_P2_PAIR(t) (((t) >> 1) & 1)
#define SF_P2_FC(t) (((t) >> (2 + 2 * SF_P2_PAIR(t))) & 3)
#define SF_P2_FW(t) ((0x1f120804u >> (8 * SF_P2_FC(t))) & 0xff)
#define SF_P2_HB(t) (6 + 2 * SF_P2_PAIR(t))
#define SF_P2_NB(t)                                                                                \
    ((((SF_P2_PAIR(t) ? 0x6544u : 0x5322u) >> (4 * SF_P2_FC(t))) & 15) +                           \
     (((t) >> (4 + 2 * SF_P2_PAIR(t))) & 3))
#define SF_P2_ENT(t)                                                                               \
    (!((t)&1) ? (uint64_t)(2 + (((t) >> 2) & 3))                                                   \
     : ((t)&7) == 7                                                                                \
         ? 0                                                                                       \
         : (uint64_t)SF_P2_NB(t) | (uint64_t)SF_P2_HB(t) << 4 | (uint64_t)SF_P2_PAIR(t) << 8 |     \
               (uint64_t)(SF_P2_FC(t) != 0) << 9 | (uint64_t)(SF_P2_HB(t) + SF_P2_FW(t)) << 16 |   \
               (uint64_t)((1u << SF_P2_FW(t)) - 1) << 32)
#define SF_P2_E4(t) SF_P2_ENT(t), SF_P2_ENT((t) + 1), SF_P2_ENT((t) + 2), SF_P2_ENT((t) + 3)
#define SF_P2_E16(t) SF_P2_E4(t), SF_P2_E4((t) + 4), SF_P2_E4((t) + 8), SF_P2_E4((t) + 12)
#define SF_P2_E64(t) SF_P2_E16(t), SF_P2_E16((t) + 16), SF_P2_E16((t) + 32), SF_P2_E16((t) + 48)
__attribute__((unused)) static const uint64_t sf_pack2_tag[256] = {
    SF_P2_E64(0u), SF_P2_E64(64u), SF_P2_E64(128u), SF_P2_E64(192u)};

/*
 * The fast path of encoding 2, for a whole run of records: decode records
 * from *p into out (room for `room` records; `start` is the payload's start,
 * for rel) while they are the common kinds (entries, pairs, ends of the top
 * of the stack) and at least 16 bytes are left, so that every record's 8
 * bytes can be loaded without a bounds check. It stops, before touching
 * any state, at the first record it does not take: an ext or 111 record,
 * anything sf_unpack2 would refuse, a pair of more than 8 bytes, the last
 * 16 bytes, or a full `out`; the caller then decodes that record with
 * sf_unpack, which checks it byte by byte. It returns the records written
 * and advances *p past the bytes they took. Records and state are exactly
 * what sf_unpack gives, record by record (tests/pack_roundtrip.c "fast"
 * compares them on damaged data), including the rel of a pair's second
 * event (the offset after the pair, where sf_unpack's caller stands when it
 * gets it). The payload must be at most SF_DECODED_MAXREL bytes.
 *
 * What it saves over sf_unpack (18 % of the decode's time on the rspack
 * log, docs/benchmarks.md section 11 "Decoder"): the bounds checks, the
 * pending pair end (both events are written at once), the per-record
 * stores of fields function records do not have, and the reloads of the
 * state (it lives in locals, and out is restrict). An entry computes both
 * of its possible ids, from the cache and from the previous id, and picks
 * one, and stores the new id to the cache either way (to the scratch slot
 * cache[SF_PACK2_CACHE] when it was cached): the class of
 * an id varies from record to record in no pattern a branch predictor
 * learns. Tried and slower: no branch on the record kind at all (a table
 * by tag, both the stack's and the entry's id computed, the stack and a
 * pair's end always stored: more work a record than the mispredictions it
 * saves), and tables for the lengths instead of shifts of constants. Not
 * inlined, so that its caller's values do not crowd it out of registers.
 */
__attribute__((noinline, unused)) static size_t
sf_unpack_run(struct sf_pack_state *restrict s, const uint8_t *start, const uint8_t **p,
              const uint8_t *end, struct sf_decoded *restrict out, size_t room)
{
    const uint8_t *q = *p;
    if (s->enc != 2 || s->pend || room < 2 || end - q < 16)
        return 0;
    const uint8_t *lim = end - 16;
    struct sf_decoded *o = out, *olim = out + room - 1; /* a pair takes 2 */
    uint64_t t = s->t;
    uint32_t depth = s->depth, prev = s->prev;
    uint32_t *restrict stack = s->stack, *restrict cache = s->cache;
    while (q <= lim && o < olim) {
        uint64_t w;
        memcpy(&w, q, 8);
        uint32_t tag = (uint32_t)w & 0xff, rel = (uint32_t)(q - start);
        uint64_t td = sf_pack2_tag[tag];
        uint32_t nb = (uint32_t)td & 15;
        if (!(tag & 1)) { /* the end of the function on top of the stack */
            if (__builtin_expect(!depth, 0))
                break;
            t += (w & (UINT64_MAX >> (64 - 8 * nb))) >> 4;
            o->t = t;
            o->fid = stack[--depth];
            o->kr = (SF_KIND_EXIT + ((tag >> 1) & 1)) | rel << 2;
            o++;
            q += nb;
            continue;
        }
        if (__builtin_expect((tag & 7) == 7, 0))
            break;
        /* an entry (.01) or a pair (011): the same fields, the pair's two
         * bits further on; where they are from the tag's table entry */
        uint32_t pair = (uint32_t)(td >> 8) & 1, hb = (uint32_t)(td >> 4) & 15;
        uint32_t fc = (uint32_t)(td >> 9) & 1; /* 0: class 0, cached */
        if (__builtin_expect(nb > 8, 0))
            break;
        w &= UINT64_MAX >> (64 - 8 * nb);
        uint32_t fz = (uint32_t)(w >> hb) & (uint32_t)(td >> 32);
        uint64_t rest = w >> ((td >> 16) & 63);
        /* both ids (& 15: in bounds when fz is a delta), one kept */
        uint32_t fcv = cache[fz & 15], fd = prev + ((fz >> 1) ^ -(fz & 1));
        uint32_t fid = fc ? fd : fcv;
        if (__builtin_expect(fc ? fd > SF_FID_MAX : fcv == UINT32_MAX, 0))
            break;
        cache[fc ? sf_pack2_idx(fd) : SF_PACK2_CACHE] = fd;
        prev = fid;
        o->fid = fid;
        o->kr = SF_KIND_ENTRY | rel << 2;
        if (pair) {
            t += rest & ((1u << SF_PACK2_T1) - 1);
            o->t = t;
            t += rest >> SF_PACK2_T1;
            o[1].t = t;
            o[1].fid = fid;
            o[1].kr = (SF_KIND_EXIT + ((tag >> 3) & 1)) | (rel + nb) << 2;
            o += 2;
        } else {
            t += rest;
            o->t = t;
            o++;
            if (depth < SF_PACK_DEPTH)
                stack[depth++] = fid;
        }
        q += nb;
    }
    s->t = t;
    s->depth = depth;
    s->prev = prev;
    *p = q;
    return (size_t)(o - out);
}

/* Decode one record at *p of a chunk begun with sf_unpack_begin. Returns 1
 * and advances *p (not always: the second event of a pair comes from the
 * bytes already read; every record still takes at least 2 bytes an event),
 * 0 at end, -1 if the record is corrupt or runs past `end`. */
static inline __attribute__((always_inline)) int
sf_unpack(struct sf_pack_state *s, const uint8_t **p, const uint8_t *end, struct sf_unpacked *r)
{
    return s->enc == 2 ? sf_unpack2(s, p, end, r) : sf_unpack1(s, p, end, r);
}

#endif
