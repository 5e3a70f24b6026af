/* pack_roundtrip.c - checks of the packed encodings (common/pack.h), built
 * and run by tests/t_pack.py, also under ASan and UBSan.
 *
 *   pack_roundtrip random SEED N   N random and adversarial raw streams
 *   pack_roundtrip log LOG...      every raw EVENTS chunk of recorded logs
 *   pack_roundtrip corrupt SEED N  damaged packed data, and hand-made bad
 *                                  records: the decoder must reject them
 *   pack_roundtrip repack 1|2 IN OUT  IN with its raw EVENTS chunks packed
 *   pack_roundtrip fast SEED N [LOG...]  the reader's fast path
 *                                  (sf_unpack_run) against record-by-record
 *                                  sf_unpack on packed chunks of LOGs and of
 *                                  random streams, whole and damaged N times
 *
 * A round trip packs a raw stream with both encoders (sf_pack1, the one of
 * older logs, and sf_pack) and decodes it: every function event and every
 * extended record but the fillers must come back exactly (time, kind,
 * function, subtype, arg, payload), in order. Buffers are allocated at
 * exactly their size so ASan catches any access past them. Prints "ok ..."
 * with counts, or what differs and exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static uint32_t below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

struct want {
    uint64_t t;
    uint32_t kind, fid, sub, arg, nwords;
    const uint8_t *payload;
};

static uint64_t n_streams, n_events, n_bytes[3], n_rejected;

static void fail(const char *what, int enc, size_t i)
{
    printf("FAIL: encoding %d, record %zu: %s\n", enc, i, what);
    exit(1);
}

/* What a decoder must return for raw records [raw, raw+len). */
static size_t expected(const uint8_t *raw, size_t len, uint32_t hi, struct want *w)
{
    size_t n = 0;
    for (size_t k = 0; k + 8 <= len;) {
        uint32_t w0, w1;
        memcpy(&w0, raw + k, 4);
        memcpy(&w1, raw + k + 4, 4);
        k += 8;
        if (sf_w1_kind(w1) != SF_KIND_EXT) {
            w[n++] = (struct want){
                ((uint64_t)hi << 32) | w0, sf_w1_kind(w1), sf_w1_fid(w1), 0, 0, 0, NULL};
            continue;
        }
        uint32_t nw = sf_w1_nwords(w1), sub = sf_w1_sub(w1);
        if (8 * (size_t)nw > len - k)
            break;
        if (sub == SF_EXT_TSC_HI)
            hi = w0;
        else if (sub != SF_EXT_PAD)
            w[n++] = (struct want){
                ((uint64_t)hi << 32) | w0, SF_KIND_EXT, 0, sub, sf_w1_arg(w1), nw, raw + k};
        k += 8 * (size_t)nw;
    }
    return n;
}

/* Pack with encoding enc, decode, compare with the raw records. */
static void roundtrip(const uint8_t *raw, size_t len, uint32_t hi, int enc)
{
    static struct sf_pack_state st, ds;
    size_t cap = SF_PACK_BOUND(len);
    uint8_t *out = malloc(cap);
    struct want *w = malloc((len / 8 + 1) * sizeof *w);
    size_t n = expected(raw, len, hi, w);
    size_t plen = enc == 1 ? sf_pack1(&st, raw, len, hi, out) : sf_pack(&st, raw, len, hi, out);
    if (plen + 8 > cap)
        fail("packed data beyond SF_PACK_BOUND", enc, 0);
    /* the decoder sees exactly the packed bytes */
    uint8_t *pk = malloc(plen ? plen : 1);
    memcpy(pk, out, plen);
    free(out);
    sf_unpack_begin(&ds, hi, enc == 1 ? SF_EVENTS_PACKED : SF_PACK_FLAGS);
    const uint8_t *p = pk, *end = pk + plen;
    size_t i = 0, got = 0;
    for (;;) {
        struct sf_unpacked r;
        int k = sf_unpack(&ds, &p, end, &r);
        if (k == 0)
            break;
        if (k < 0)
            fail("decoder rejects the encoder's output", enc, i);
        got++;
        if (r.kind == SF_KIND_EXT && r.sub == SF_EXT_PAD)
            continue;
        if (i == n)
            fail("more records than were packed", enc, i);
        const struct want *e = &w[i];
        char msg[200];
        if (r.t != e->t || r.kind != e->kind || (r.kind != SF_KIND_EXT && r.fid != e->fid)) {
            snprintf(msg, sizeof msg, "got t=%llx kind=%u fid=%u, want t=%llx kind=%u fid=%u",
                     (unsigned long long)r.t, r.kind, r.fid, (unsigned long long)e->t, e->kind,
                     e->fid);
            fail(msg, enc, i);
        }
        if (r.kind == SF_KIND_EXT && (r.sub != e->sub || r.arg != e->arg || r.nwords != e->nwords ||
                                      memcmp(r.payload, e->payload, 8 * (size_t)e->nwords) != 0))
            fail("extended record differs", enc, i);
        i++;
    }
    if (i != n)
        fail("fewer records than were packed", enc, i);
    /* the reader sizes its tables by this: at most one record per 2 bytes */
    if (got > plen / 2 + (plen == 0))
        fail("more than one record per 2 packed bytes", enc, got);
    n_bytes[enc] += plen;
    if (enc == 2)
        n_events += n;
    free(pk);
    free(w);
}

static void roundtrip_both(const uint8_t *raw, size_t len, uint32_t hi)
{
    roundtrip(raw, len, hi, 1);
    roundtrip(raw, len, hi, 2);
    n_streams++;
}

/* ---- random and adversarial raw streams ---- */

struct gen {
    uint8_t *buf;
    size_t len, cap;
    uint64_t t;   /* the timestamp of the last record */
    uint32_t hi;  /* the high half the raw stream is at */
    uint32_t hi0; /* the chunk's tsc_hi */
    uint32_t stack[600], depth;
    uint32_t pool[64]; /* functions to draw from */
    int fidmode, timemode;
};

static void put(struct gen *g, uint32_t w0, uint32_t w1)
{
    memcpy(g->buf + g->len, &w0, 4);
    memcpy(g->buf + g->len + 4, &w1, 4);
    g->len += 8;
}

static uint32_t pick_fid(struct gen *g)
{
    switch (g->fidmode) {
    case 0: /* a few functions: cache hits */
        return g->pool[below(6)];
    case 1: /* thousands, near each other */
        return 1000 + below(4096);
    case 2: /* every width of id, up to the largest */
        return (uint32_t)(rnd() & (SF_FID_MAX >> below(30)));
    case 3: /* the same cache slot over and over (collisions) */
        return g->pool[below(64)];
    default:
        return below(2) ? g->pool[below(64)] : (uint32_t)(rnd() & SF_FID_MAX);
    }
}

static void tick(struct gen *g)
{
    uint64_t d;
    switch (g->timemode == 3 ? below(3) : (uint32_t)g->timemode) {
    case 0:
        d = below(40);
        break;
    case 1:
        d = rnd() >> below(64); /* any size, wrapping the high half too */
        break;
    default: {
        uint32_t r = below(100);
        d = r < 80 ? below(300) : r < 90 ? below(1u << 20) : r < 95 ? rnd() >> 20 : 0;
        if (r == 99)
            d = -(uint64_t)below(5000); /* time going back (a TSC step) */
    }
    }
    g->t += d;
    if ((uint32_t)(g->t >> 32) != g->hi || below(200) == 0) { /* also redundant TSC_HI */
        g->hi = (uint32_t)(g->t >> 32);
        put(g, g->hi, sf_w1_ext(SF_EXT_TSC_HI, 0, 0));
    }
}

static void event(struct gen *g, uint32_t kind, uint32_t fid)
{
    tick(g);
    put(g, (uint32_t)g->t, sf_w1_event(fid, kind));
}

static void ext(struct gen *g)
{
    static const uint32_t subs[] = {SF_EXT_PAD,  SF_EXT_ALLOC, SF_EXT_ARGS, SF_EXT_RET,
                                    SF_EXT_LOST, 17,           63};
    uint32_t sub = subs[below(7)], nw = below(8);
    tick(g);
    put(g, (uint32_t)g->t, sf_w1_ext(sub, below(256), nw));
    for (uint32_t i = 0; i < nw; i++) {
        uint64_t v = rnd();
        memcpy(g->buf + g->len, &v, 8);
        g->len += 8;
    }
}

/* A random raw stream (malloc'd, *len bytes, tsc_hi *hi). */
static uint8_t *gen_stream(uint64_t seed, size_t *len, uint32_t *hi)
{
    struct gen g = {0};
    rng = seed * 0x9E3779B97F4A7C15ull + 1;
    g.cap = 8 * (1 + below(4000)) + 4096;
    g.buf = malloc(g.cap + 1024);
    g.fidmode = (int)below(5);
    g.timemode = (int)below(4);
    g.t = rnd() >> below(64);
    g.hi = g.hi0 = (uint32_t)(g.t >> 32);
    for (int i = 0; i < 64; i++)
        g.pool[i] = i < 8 ? below(20) : (uint32_t)(rnd() & SF_FID_MAX);
    if (g.fidmode == 3) /* ids that share slots of both caches */
        for (int i = 0; i < 64; i++) {
            uint32_t f;
            do
                f = (uint32_t)(rnd() & 0xffff);
            while (sf_pack2_idx(f) != 5); /* so encoding 1's slot 2 as well */
            g.pool[i] = f;
        }
    int deep = below(4) == 0; /* go far beyond SF_PACK_DEPTH */
    while (g.len + 8 * 12 <= g.cap) {
        uint32_t r = below(100);
        if (deep && g.depth < 600 && r < 60) {
            uint32_t f = pick_fid(&g);
            event(&g, SF_KIND_ENTRY, f);
            g.stack[g.depth++] = f;
        } else if (r < 35 && g.depth < 600) {
            uint32_t f = pick_fid(&g);
            event(&g, SF_KIND_ENTRY, f);
            if (below(3)) { /* a leaf: entry then its end */
                event(&g, below(4) ? SF_KIND_EXIT : SF_KIND_TAIL, f);
            } else {
                g.stack[g.depth++] = f;
            }
        } else if (r < 80 && g.depth) {
            event(&g, below(5) ? SF_KIND_EXIT : SF_KIND_TAIL, g.stack[--g.depth]);
        } else if (r < 85) { /* an end of something not on top, or never entered */
            uint32_t f = g.depth && below(2) ? g.stack[below(g.depth)] : pick_fid(&g);
            event(&g, below(2) ? SF_KIND_EXIT : SF_KIND_TAIL, f);
        } else if (r < 92) {
            ext(&g);
        } else if (r < 95) { /* an entry and an exit of another function */
            uint32_t f = pick_fid(&g);
            event(&g, SF_KIND_ENTRY, f);
            event(&g, SF_KIND_EXIT, f + 1 > SF_FID_MAX ? 0 : f + 1);
        } else {
            uint32_t f = pick_fid(&g);
            event(&g, SF_KIND_ENTRY, f);
        }
    }
    if (below(8) == 0) /* a truncated extended record at the end */
        put(&g, (uint32_t)g.t, sf_w1_ext(SF_EXT_ARGS, 6, 6));
    if (below(8) == 0) /* a dangling half record */
        g.len += 4;
    *hi = g.hi0;
    *len = g.len;
    return g.buf;
}

static void random_stream(uint64_t seed)
{
    size_t len;
    uint32_t hi;
    uint8_t *buf = gen_stream(seed, &len, &hi);
    uint8_t *raw = malloc(len);
    memcpy(raw, buf, len);
    roundtrip_both(raw, len, hi);
    free(raw);
    free(buf);
}

/* ---- recorded logs ---- */

/* The whole file at path (malloc'd, *n bytes), or NULL with a message. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    if (b && fread(b, 1, *n, f) != *n) {
        printf("FAIL: cannot read %s\n", path);
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* Call fn for every EVENTS chunk of the log at path (its header, payload
 * and payload length); the number of chunks fn took (returned 1 for), or -1
 * with a message. */
typedef int chunk_fn(const char *path, const struct sf_events *e, const uint8_t *payload,
                     size_t len, void *arg);
static long each_events(const char *path, chunk_fn *fn, void *arg)
{
    size_t n;
    long took = 0;
    uint8_t *b = slurp(path, &n);
    if (!b)
        return -1;
    for (size_t p = sizeof(struct sf_file_header); p + sizeof(struct sf_events) <= n;) {
        struct sf_events e;
        memcpy(&e, b + p, sizeof e);
        if (e.h.magic != SF_CHUNK_MAGIC || e.h.size < 16 || e.h.size > n - p) {
            printf("FAIL: %s: bad chunk at %zu\n", path, p);
            free(b);
            return -1;
        }
        if (e.h.type == SF_CHUNK_EVENTS && e.h.size >= sizeof e)
            took += fn(path, &e, b + p + sizeof e, e.h.size - sizeof e, arg);
        p += e.h.size;
    }
    free(b);
    return took;
}

static int raw_chunk(const char *path, const struct sf_events *e, const uint8_t *payload,
                     size_t len, void *arg)
{
    (void)path, (void)arg;
    if (e->h.flags & SF_EVENTS_PACKED)
        return 0;
    uint8_t *r = malloc(len ? len : 1);
    memcpy(r, payload, len);
    roundtrip_both(r, len, e->tsc_hi);
    free(r);
    return 1;
}

static int logs(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        long raw = each_events(argv[i], raw_chunk, NULL);
        if (raw < 0)
            return 1;
        if (!raw) {
            printf("FAIL: %s has no raw EVENTS chunk (record with SFTRACE_RAW=1)\n", argv[i]);
            return 1;
        }
    }
    return 0;
}

/* Write IN to OUT with every raw EVENTS chunk packed in encoding enc, as
 * the runtime would have written it: `sftrace dump` of both must agree. */
static int repack(int enc, const char *in, const char *out)
{
    size_t n;
    uint8_t *b = slurp(in, &n);
    FILE *g = b ? fopen(out, "wb") : NULL;
    if (!g) {
        if (b)
            perror(out);
        free(b);
        return 1;
    }
    size_t p = sizeof(struct sf_file_header);
    fwrite(b, 1, p, g);
    while (p + sizeof(struct sf_chunk) <= n) {
        struct sf_events e;
        memcpy(&e, b + p, sizeof(struct sf_chunk));
        if (e.h.magic != SF_CHUNK_MAGIC || e.h.size < 16 || e.h.size > n - p) {
            printf("FAIL: %s: bad chunk at %zu\n", in, p);
            free(b);
            return 1;
        }
        size_t size = e.h.size;
        if (e.h.type == SF_CHUNK_EVENTS && !(e.h.flags & SF_EVENTS_PACKED) &&
            e.h.size >= sizeof e) {
            static struct sf_pack_state st;
            memcpy(&e, b + p, sizeof e);
            size_t len = e.h.size - sizeof e;
            uint8_t *o = calloc(1, SF_PACK_BOUND(len));
            const uint8_t *raw = b + p + sizeof e;
            size_t pl = enc == 1 ? sf_pack1(&st, raw, len, e.tsc_hi, o)
                                 : sf_pack(&st, raw, len, e.tsc_hi, o);
            e.pad = (uint32_t)(-pl % 8);
            memset(o + pl, 0, e.pad);
            pl += e.pad;
            e.h.flags |= enc == 1 ? SF_EVENTS_PACKED : SF_PACK_FLAGS;
            e.h.size = (uint32_t)(sizeof e + pl);
            fwrite(&e, 1, sizeof e, g);
            fwrite(o, 1, pl, g);
            free(o);
        } else {
            fwrite(b + p, 1, e.h.size, g);
        }
        p += size;
    }
    free(b);
    return fclose(g) != 0;
}

/* ---- corrupt packed data ---- */

/* Decode len bytes (in a buffer of exactly that size) until the end or an
 * error; the decoder must stop, never read past the data, and never return
 * more than a record per 2 bytes. Returns the decoder's last answer. */
static int decode_all(const uint8_t *data, size_t len, uint32_t flags)
{
    static struct sf_pack_state ds;
    uint8_t *b = malloc(len ? len : 1);
    memcpy(b, data, len);
    sf_unpack_begin(&ds, 7, flags);
    const uint8_t *p = b, *end = b + len;
    size_t n = 0;
    int k;
    struct sf_unpacked r;
    while ((k = sf_unpack(&ds, &p, end, &r)) > 0) {
        if (p < b || p > end) {
            printf("FAIL: decoder moved outside the data\n");
            exit(1);
        }
        if (r.kind == SF_KIND_EXT && r.payload &&
            (r.payload < b || r.payload + 8 * (size_t)r.nwords > end)) {
            printf("FAIL: payload outside the data\n");
            exit(1);
        }
        if (++n > len / 2 + 1) {
            printf("FAIL: more than one record per 2 bytes of corrupt data\n");
            exit(1);
        }
    }
    free(b);
    if (k < 0)
        n_rejected++;
    return k;
}

static void expect_bad(const char *name, const uint8_t *d, size_t len)
{
    if (decode_all(d, len, SF_PACK_FLAGS) >= 0) {
        printf("FAIL: corrupt record accepted: %s\n", name);
        exit(1);
    }
}

static int corrupt(uint64_t seed, long n)
{
    /* hand-made bad records of encoding 2 */
    static const struct {
        const char *name;
        uint8_t b[16];
        size_t len;
    } bad[] = {
        {"implied exit with nothing entered", {0x00, 0x01}, 2},
        {"implied tail with nothing entered", {0x02, 0x01}, 2},
        {"cache reference to nothing", {0x01, 0x01}, 2},
        {"pair referring to the empty cache", {0x03, 0x00, 0x00, 0x00}, 4},
        {"pair longer than 8 bytes", {0xf3, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10},
        {"reserved record type", {0x1f, 0, 0, 0, 0, 0, 0, 0}, 8},
        {"ext with bits set in its tag", {0x37, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13},
        {"ext subtype beyond 6 bits", {0x17, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13},
        {"ext truncated", {0x17, 0x02, 0, 0, 0, 0, 0, 0}, 8},
        {"ext payload past the end", {0x17, 0x02, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}, 15},
        {"literal exit truncated", {0x07, 0x05, 0x01, 0x00}, 4},
        {"literal exit, id beyond the largest", {0x07, 0x05, 0xff, 0xff, 0xff, 0xff}, 6},
        {"literal exit, bit 7 set", {0x87, 0x05, 1, 0, 0, 0}, 6},
        {"entry truncated", {0x35, 0x00}, 2},
        {"single entry cut to one byte", {0x05}, 1},
        {"entry whose id is beyond the largest",
         {0x7d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         8},
        {"implied exit truncated", {0x0c, 0x01, 0x02}, 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(bad[i].name, bad[i].b, bad[i].len);
    /* encoding 1 keeps its checks */
    static const uint8_t v1_implied[] = {0x01, 0x01}, v1_cache[] = {0x00, 0x01};
    if (decode_all(v1_implied, 2, SF_EVENTS_PACKED) >= 0 ||
        decode_all(v1_cache, 2, SF_EVENTS_PACKED) >= 0) {
        printf("FAIL: encoding 1 accepts a bad record\n");
        return 1;
    }
    /* random damage to valid data: any answer but a crash, an overread or
     * too many records is fine */
    for (long s = 0; s < n; s++) {
        struct sf_pack_state st;
        rng = (seed + (uint64_t)s) * 0x2545F4914F6CDD1Dull + 3;
        uint8_t raw[8 * 512];
        uint32_t t = 0, stack[64], depth = 0;
        size_t len = 0;
        while (len + 8 <= sizeof raw) {
            uint32_t k = below(3), fid = below(3) ? below(50) : (uint32_t)(rnd() & SF_FID_MAX);
            if (k && depth && below(4))
                fid = stack[--depth];
            else if (!k && depth < 64)
                stack[depth++] = fid;
            t += below(2) ? below(50) : (uint32_t)rnd();
            uint32_t w1 = below(20) ? sf_w1_event(fid, k) : sf_w1_ext(SF_EXT_RET, 0, 0);
            memcpy(raw + len, &t, 4);
            memcpy(raw + len + 4, &w1, 4);
            len += 8;
        }
        for (int enc = 1; enc <= 2; enc++) {
            uint8_t out[SF_PACK_BOUND(sizeof raw)];
            size_t pl = enc == 1 ? sf_pack1(&st, raw, len, 0, out) : sf_pack(&st, raw, len, 0, out);
            switch (below(4)) {
            case 0: /* flipped bits */
                for (int j = 0; j < 1 + (int)below(4); j++)
                    out[below((uint32_t)pl)] ^= (uint8_t)(1u << below(8));
                break;
            case 1: /* cut anywhere */
                pl = below((uint32_t)pl);
                break;
            case 2: /* random bytes from anywhere on */
                for (size_t j = below((uint32_t)pl); j < pl; j++)
                    out[j] = (uint8_t)rnd();
                break;
            default: /* the other encoding's data */
                break;
            }
            uint32_t flags = SF_EVENTS_PACKED | (enc == 2) * SF_EVENTS_PACK2;
            decode_all(out, pl, below(4) == 3 ? flags ^ SF_EVENTS_PACK2 : flags);
        }
    }
    printf("ok corrupt: %zu hand-made bad records rejected; %ld damaged streams, %llu rejected\n",
           sizeof bad / sizeof bad[0], n, (unsigned long long)n_rejected);
    return 0;
}

/* ---- the fast path against the careful one ---- */

/* What decoding a chunk gives: its records, then how it ended. */
struct outcome {
    size_t n, fast; /* records; of them by sf_unpack_run */
    int k;          /* 0 the end, -1 refused */
    size_t stop;    /* the offset where it ended or the refused record */
    struct want *r; /* n records */
    uint32_t *rel;
};

/* Decode a chunk as lib/logread.c's check_packed does, with the fast path
 * (fast: runs of sf_unpack_run into compact records, one careful record
 * between them), or as the reference, record by record with sf_unpack
 * straight into o->r, as check_packed did before the fast path. */
static void decode(const uint8_t *b, size_t len, uint32_t hi, uint32_t flags, struct outcome *o,
                   struct sf_decoded *dec, size_t cap, int fast)
{
    static struct sf_pack_state st;
    sf_unpack_begin(&st, hi, flags);
    const uint8_t *p = b, *end = b + len;
    size_t n = 0;
    o->fast = 0;
    for (;;) {
        size_t f = fast ? sf_unpack_run(&st, b, &p, end, dec + n, cap - n) : 0;
        n += f, o->fast += f;
        const uint8_t *q = p;
        struct sf_unpacked u;
        int k = sf_unpack(&st, &p, end, &u);
        if (k <= 0) {
            o->k = k;
            o->stop = (size_t)(q - b);
            break;
        }
        if (n >= cap) {
            printf("FAIL: more records than room for (%zu)\n", cap);
            exit(1);
        }
        if (!fast) {
            struct want *w = &o->r[n];
            w->t = u.t, w->kind = u.kind, w->fid = u.fid;
            w->sub = w->arg = w->nwords = 0, w->payload = NULL;
            if (u.kind == SF_KIND_EXT)
                w->sub = u.sub, w->arg = u.arg, w->nwords = u.nwords, w->payload = u.payload;
            o->rel[n++] = (uint32_t)(q - b);
            continue;
        }
        dec[n].t = u.t, dec[n].fid = u.fid;
        dec[n++].kr = u.kind | (uint32_t)(q - b) << 2;
    }
    o->n = n;
    if (!fast)
        return;
    for (size_t i = 0; i < n; i++) {
        struct want *w = &o->r[i];
        struct sf_unpacked u = {0};
        w->t = dec[i].t, w->kind = sf_dec_kind(&dec[i]), w->fid = dec[i].fid;
        o->rel[i] = sf_dec_rel(&dec[i]);
        if (w->kind == SF_KIND_EXT)
            sf_unpack_ext(b + o->rel[i], st.enc, &u);
        w->sub = u.sub, w->arg = u.arg, w->nwords = u.nwords, w->payload = u.payload;
    }
}

static uint64_t f_chunks, f_records, f_fast, f_refused;

/* Decode len bytes (copied to a buffer of exactly that size) both ways: the
 * records, where they stop and why must be the same. */
static void compare(const char *what, const uint8_t *data, size_t len, uint32_t hi, uint32_t flags)
{
    uint8_t *b = malloc(len ? len : 1);
    memcpy(b, data, len);
    size_t cap = len / 2 + 1;
    struct outcome a, z;
    a.r = malloc(cap * sizeof *a.r), z.r = malloc(cap * sizeof *z.r);
    a.rel = malloc(cap * sizeof *a.rel), z.rel = malloc(cap * sizeof *z.rel);
    struct sf_decoded *dec = malloc(cap * sizeof *dec);
    decode(b, len, hi, flags, &a, dec, cap, 0);
    decode(b, len, hi, flags, &z, dec, cap, 1);
    if (a.n != z.n || a.k != z.k || a.stop != z.stop) {
        printf("FAIL: %s: careful: %zu records, %d at %zu; fast: %zu records, %d at %zu\n", what,
               a.n, a.k, a.stop, z.n, z.k, z.stop);
        exit(1);
    }
    for (size_t i = 0; i < a.n; i++) {
        const struct want *x = &a.r[i], *y = &z.r[i];
        if (x->t != y->t || x->kind != y->kind || x->fid != y->fid || x->sub != y->sub ||
            x->arg != y->arg || x->nwords != y->nwords || x->payload != y->payload ||
            a.rel[i] != z.rel[i]) {
            printf("FAIL: %s: record %zu (at %u) differs: careful t %llu kind %u fid %u at %u, "
                   "fast t %llu kind %u fid %u at %u\n",
                   what, i, a.rel[i], (unsigned long long)x->t, x->kind, x->fid, a.rel[i],
                   (unsigned long long)y->t, y->kind, y->fid, z.rel[i]);
            exit(1);
        }
    }
    f_chunks++, f_records += a.n, f_fast += z.fast, f_refused += a.k < 0;
    free(a.r), free(z.r), free(a.rel), free(z.rel), free(dec), free(b);
}

/* Damage data in place (len bytes, *pl of them used) in one of several ways. */
static void damage(uint8_t *d, size_t *pl)
{
    size_t n = *pl;
    if (!n)
        return;
    switch (below(6)) {
    case 0: /* flipped bits */
        for (int j = 0; j < 1 + (int)below(4); j++)
            d[below((uint32_t)n)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* a random byte, often a tag */
        d[below((uint32_t)n)] = (uint8_t)rnd();
        break;
    case 2: /* cut anywhere */
        *pl = below((uint32_t)n);
        break;
    case 3: /* random bytes from anywhere on, for a while */
        for (size_t j = below((uint32_t)n), e = j + below(64); j < n && j < e; j++)
            d[j] = (uint8_t)rnd();
        break;
    case 4: { /* a piece of the chunk copied elsewhere (valid records, wrong state) */
        size_t a = below((uint32_t)n), b = below((uint32_t)n), l = below(48);
        if (a + l <= n && b + l <= n)
            memmove(d + b, d + a, l);
        break;
    }
    default: /* undamaged */
        break;
    }
}

static int packed_chunk(const char *path, const struct sf_events *e, const uint8_t *payload,
                        size_t len, void *arg)
{
    long n = *(const long *)arg;
    if (!(e->h.flags & SF_EVENTS_PACKED) || e->pad > len)
        return 0;
    size_t pl = len - e->pad;
    uint8_t *d = malloc(pl ? pl : 1);
    compare(path, payload, pl, e->tsc_hi, e->h.flags);
    for (long k = 0; k < n; k++) {
        size_t l = pl;
        memcpy(d, payload, pl);
        damage(d, &l);
        compare(path, d, l, e->tsc_hi, e->h.flags);
    }
    free(d);
    return 1;
}

/* Packed chunks: of the logs, and of random streams packed here; each as
 * it is and damaged n times. */
static int fast(uint64_t seed, long n, int argc, char **argv)
{
    rng = seed;
    for (int i = 0; i < argc; i++) {
        long packed = each_events(argv[i], packed_chunk, &n);
        if (packed < 0)
            return 1;
        if (!packed) {
            printf("FAIL: %s has no packed EVENTS chunk\n", argv[i]);
            return 1;
        }
    }
    for (long s = 0; s < n; s++) {
        size_t len;
        uint32_t hi;
        uint8_t *raw = gen_stream(seed + (uint64_t)s, &len, &hi);
        static struct sf_pack_state st;
        uint8_t *out = malloc(SF_PACK_BOUND(len));
        size_t pl = sf_pack(&st, raw, len, hi, out);
        compare("random stream", out, pl, hi, SF_PACK_FLAGS);
        for (int k = 0; k < 4; k++) {
            uint8_t *d = malloc(pl ? pl : 1);
            size_t l = pl;
            memcpy(d, out, pl);
            damage(d, &l);
            compare("damaged random stream", d, l, hi, SF_PACK_FLAGS);
            free(d);
        }
        free(out);
        free(raw);
    }
    printf("ok fast: %llu chunks, %llu records (%llu by the fast path), %llu refused, the same "
           "both ways\n",
           (unsigned long long)f_chunks, (unsigned long long)f_records, (unsigned long long)f_fast,
           (unsigned long long)f_refused);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "random")) {
        uint64_t seed = strtoull(argv[2], NULL, 10);
        long n = atol(argv[3]);
        for (long i = 0; i < n; i++)
            random_stream(seed + (uint64_t)i);
    } else if (argc >= 3 && !strcmp(argv[1], "log")) {
        if (logs(argc - 2, argv + 2))
            return 1;
    } else if (argc == 5 && !strcmp(argv[1], "repack")) {
        return repack(atoi(argv[2]), argv[3], argv[4]);
    } else if (argc >= 4 && !strcmp(argv[1], "corrupt")) {
        return corrupt(strtoull(argv[2], NULL, 10), atol(argv[3]));
    } else if (argc >= 4 && !strcmp(argv[1], "fast")) {
        return fast(strtoull(argv[2], NULL, 10), atol(argv[3]), argc - 4, argv + 4);
    } else {
        fprintf(stderr, "usage: pack_roundtrip random SEED N | log LOG... | corrupt SEED N | "
                        "repack 1|2 IN OUT | fast SEED N [LOG...]\n");
        return 2;
    }
    printf("ok %s: %llu streams, %llu records, packed bytes: encoding 1 %llu, encoding 2 %llu\n",
           argv[1], (unsigned long long)n_streams, (unsigned long long)n_events,
           (unsigned long long)n_bytes[1], (unsigned long long)n_bytes[2]);
    return 0;
}
