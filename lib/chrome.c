/*
 * chrome.c - pieces of Chrome trace-event JSON for `sftrace convert --format
 * chrome` (see chrome.h): escaping, numbers, and the event writers.
 */
#include <stdio.h>
#include <string.h>

#include "chrome.h"
#include "perfetto.h"

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k;
}

size_t cj_escape(char *dst, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    if (len > CJ_STR_MAX)
        len = CJ_STR_MAX;
    char *d = dst;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *d++ = (char)c;
            i++;
        } else if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char)c;
            i++;
        } else if (c < 0x20) {
            memcpy(d, "\\u00", 4);
            d[4] = hex[c >> 4];
            d[5] = hex[c & 15];
            d += 6;
            i++;
        } else {
            size_t k = utf8_len(s + i, len - i);
            if (k) {
                memcpy(d, s + i, k);
                d += k;
                i += k;
            } else {
                memcpy(d, "\\ufffd", 6);
                d += 6;
                i++;
            }
        }
    }
    return (size_t)(d - dst);
}

static inline char *put_u64(char *d, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *d++ = tmp[--n];
    return d;
}

static inline char *put_i64(char *d, int64_t v)
{
    if (v < 0) {
        *d++ = '-';
        return put_u64(d, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(d, (uint64_t)v);
}

/* ns as microseconds with three decimals. */
static inline char *put_us(char *d, uint64_t ns)
{
    d = put_u64(d, ns / 1000);
    unsigned f = (unsigned)(ns % 1000);
    d[0] = '.';
    d[1] = (char)('0' + f / 100);
    d[2] = (char)('0' + f / 10 % 10);
    d[3] = (char)('0' + f % 10);
    return d + 4;
}

static inline char *put_hex(char *d, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = hex[v & 15];
        v >>= 4;
    } while (v);
    *d++ = '0';
    *d++ = 'x';
    while (n)
        *d++ = tmp[--n];
    return d;
}

static inline char *put_lit(char *d, const char *s, size_t n)
{
    memcpy(d, s, n);
    return d + n;
}
#define LIT(d, s) put_lit(d, s, sizeof s - 1)

static inline char *sep(char *d, int *first)
{
    if (!*first)
        *d++ = ',';
    *first = 0;
    *d++ = '\n';
    return d;
}

size_t cj_pidtid(char *dst, uint32_t pid, uint32_t tid)
{
    char *d = LIT(dst, "\"pid\":");
    d = put_u64(d, pid);
    d = LIT(d, ",\"tid\":");
    d = put_u64(d, tid);
    return (size_t)(d - dst);
}

uint8_t *cj_file_begin(uint8_t *p)
{
    return (uint8_t *)LIT((char *)p, "{\"traceEvents\":[");
}

uint8_t *cj_file_end(uint8_t *p)
{
    return (uint8_t *)LIT((char *)p, "\n],\"displayTimeUnit\":\"ns\"}\n");
}

uint8_t *cj_meta(uint8_t *p, int *first, const char *what, uint32_t pid, uint32_t tid,
                 const char *ename, size_t elen)
{
    char *d = sep((char *)p, first);
    d = LIT(d, "{\"ph\":\"M\",\"name\":\"");
    d = put_lit(d, what, strlen(what));
    d = LIT(d, "\",");
    d += cj_pidtid(d, pid, tid);
    d = LIT(d, ",\"args\":{\"name\":\"");
    d = put_lit(d, ename, elen);
    d = LIT(d, "\"}}");
    return (uint8_t *)d;
}

uint8_t *cj_flow(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns, uint64_t id,
                 int start)
{
    char *d = sep((char *)p, first);
    d = start ? LIT(d, "{\"ph\":\"s\",") : LIT(d, "{\"ph\":\"f\",\"bp\":\"e\",");
    d = put_lit(d, pidtid, ptlen);
    d = LIT(d, ",\"ts\":");
    d = put_us(d, ns);
    d = LIT(d, ",\"cat\":\"flow\",\"name\":\"flow\",\"id\":");
    d += sprintf(d, "%llu", (unsigned long long)id);
    *d++ = '}';
    return (uint8_t *)d;
}

/* The head every event has: separator, phase, pid/tid, ts, name. */
static char *head(char *d, int *first, const char *ph, const char *pidtid, size_t ptlen,
                  uint64_t ns, const char *ename, size_t elen)
{
    d = sep(d, first);
    d = put_lit(d, ph, strlen(ph));
    d = put_lit(d, pidtid, ptlen);
    d = LIT(d, ",\"ts\":");
    d = put_us(d, ns);
    d = LIT(d, ",\"name\":\"");
    d = put_lit(d, ename, elen);
    *d++ = '"';
    return d;
}

/*
 * Why begins and ends carry no args (speedscope's Chrome importer, which
 * reads "B", "E" and "X" only): it keys a frame by its name plus
 * JSON.stringify(args) of the event, every key of args included (none is
 * ignored). Arguments on a "B" would make one frame per distinct argument
 * value (a function split in the flame graph), and args on an "E" that its
 * "B" lacks make it warn "Tried to end ..." for every such slice. So "B" and
 * "E" have only the name; what is known at the begin (recorded arguments)
 * goes on a thread instant "sftrace.args" right after the "B", what is known
 * only at the end (unfinished, clipped, unwound, hidden_calls, ret) on an
 * instant "sftrace.end" just before the "E", both of the same name and
 * timestamp. speedscope ignores instants; Perfetto and chrome://tracing show
 * them as marks on the slice, with the args.
 */
uint8_t *cj_begin(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns,
                  const char *ename, size_t elen, const uint64_t *args, unsigned nargs)
{
    char *d = head((char *)p, first, "{\"ph\":\"B\",", pidtid, ptlen, ns, ename, elen);
    *d++ = '}';
    if (nargs) {
        d = head(d, first, "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"sftrace.args\",", pidtid, ptlen, ns,
                 ename, elen);
        d = LIT(d, ",\"args\":{");
        for (unsigned i = 0; i < nargs && i < 6; i++) {
            d = LIT(d, "\"arg");
            *d++ = (char)('0' + i);
            d = LIT(d, "\":\"");
            d = put_hex(d, args[i]);
            *d++ = '"';
            if (i + 1 < nargs && i + 1 < 6)
                *d++ = ',';
        }
        d = LIT(d, "}}");
    }
    return (uint8_t *)d;
}

uint8_t *cj_end(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns,
                const char *ename, size_t elen, unsigned flags, uint64_t hidden,
                const uint64_t *ret)
{
    char *d = (char *)p;
    if (flags || hidden || ret) {
        int n = 0;
        d = head(d, first, "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"sftrace.end\",", pidtid, ptlen, ns,
                 ename, elen);
        d = LIT(d, ",\"args\":{");
        if (flags & PF_END_UNFINISHED) {
            d = LIT(d, "\"unfinished\":true");
            n++;
        }
        if (flags & PF_END_CLIPPED) {
            if (n++)
                *d++ = ',';
            d = LIT(d, "\"clipped\":true");
        }
        if (flags & PF_END_UNWOUND) {
            if (n++)
                *d++ = ',';
            d = LIT(d, "\"unwound\":true");
        }
        if (hidden) {
            if (n++)
                *d++ = ',';
            d = LIT(d, "\"hidden_calls\":");
            d = put_u64(d, hidden);
        }
        if (ret) {
            if (n++)
                *d++ = ',';
            d = LIT(d, "\"ret\":\"");
            d = put_hex(d, *ret);
            *d++ = '"';
        }
        d = LIT(d, "}}");
    }
    d = head(d, first, "{\"ph\":\"E\",", pidtid, ptlen, ns, ename, elen);
    *d++ = '}';
    return (uint8_t *)d;
}

uint8_t *cj_instant(uint8_t *p, int *first, const char *pidtid, size_t ptlen, uint64_t ns,
                    const char *ename, size_t elen)
{
    char *d = sep((char *)p, first);
    d = LIT(d, "{\"ph\":\"i\",\"s\":\"t\",");
    d = put_lit(d, pidtid, ptlen);
    d = LIT(d, ",\"ts\":");
    d = put_us(d, ns);
    d = LIT(d, ",\"name\":\"");
    d = put_lit(d, ename, elen);
    d = LIT(d, "\"}");
    return (uint8_t *)d;
}

uint8_t *cj_counter(uint8_t *p, int *first, uint32_t pid, uint64_t ns, const char *ename,
                    size_t elen, int64_t value)
{
    char *d = sep((char *)p, first);
    d = LIT(d, "{\"ph\":\"C\",");
    d += cj_pidtid(d, pid, pid);
    d = LIT(d, ",\"ts\":");
    d = put_us(d, ns);
    d = LIT(d, ",\"name\":\"");
    d = put_lit(d, ename, elen);
    d = LIT(d, "\",\"args\":{\"bytes\":");
    d = put_i64(d, value);
    d = LIT(d, "}}");
    return (uint8_t *)d;
}
