/*
 * radix.h - a stable LSD radix sort of fixed-size records by a 64-bit key
 * stored in them (addresses of symbols: linear time where qsort's compares
 * were the larger part of loading an object of 100,000 functions).
 */
#ifndef SFTRACE_RADIX_H
#define SFTRACE_RADIX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xalloc.h"

/* Sort n records of `size` bytes at v by the uint64_t at byte offset `off`
 * of each, ascending; records with equal keys keep their order. Only the
 * key bytes that differ between records cost a pass. Inline, so that size
 * and off are constants and each move is a few loads and stores. */
static inline void sf_radix_sort_u64(void *v, size_t n, size_t size, size_t off)
{
    if (n < 2)
        return;
    unsigned char *src = v, *dst = sf_xrealloc(NULL, n * size), *tmp = dst;
    uint64_t k0, k, diff = 0;
    memcpy(&k0, src + off, sizeof k0);
    for (size_t i = 1; i < n; i++) {
        memcpy(&k, src + i * size + off, sizeof k);
        diff |= k ^ k0;
    }
    for (unsigned sh = 0; sh < 64; sh += 8) {
        if (!((diff >> sh) & 0xff))
            continue;
        size_t cnt[256] = {0}, pos = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(&k, src + i * size + off, sizeof k);
            cnt[(k >> sh) & 0xff]++;
        }
        for (unsigned b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(&k, src + i * size + off, sizeof k);
            memcpy(dst + cnt[(k >> sh) & 0xff]++ * size, src + i * size, size);
        }
        unsigned char *t = src;
        src = dst;
        dst = t;
    }
    if (src != (unsigned char *)v)
        memcpy(v, src, n * size);
    free(tmp);
}

#endif /* SFTRACE_RADIX_H */
