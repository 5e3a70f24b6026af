/*
 * xalloc.h - allocation for the command-line tools: out of memory is fatal
 * (a message and exit 1), so callers need no checks.
 */
#ifndef SFTRACE_XALLOC_H
#define SFTRACE_XALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void sf_oom(void)
{
    fprintf(stderr, "sftrace: out of memory\n");
    exit(1);
}

static inline void *sf_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sftrace: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static inline void *sf_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        sf_oom();
    return p;
}

/* n bytes aligned to align (a power of 2; realloc's are aligned to 16). */
static inline void *sf_xaligned(size_t align, size_t n)
{
    void *p = aligned_alloc(align, (n + align - 1) / align * align);
    if (!p)
        sf_oom();
    return p;
}

static inline char *sf_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        sf_oom();
    return d;
}

/* A NUL-terminated copy of the first n bytes of s (which need not be
 * terminated). */
static inline char *sf_xstrndup(const void *s, size_t n)
{
    char *d = sf_xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Make room for element n of arr (capacity cap, doubled from first). */
#define SF_GROW_FROM(arr, n, cap, first)                                                           \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : (first);                                                   \
            (arr) = sf_xrealloc((arr), (cap) * sizeof *(arr));                                     \
        }                                                                                          \
    } while (0)
/* The same, doubled from 16. */
#define SF_GROW(arr, n, cap) SF_GROW_FROM(arr, n, cap, 16)

/* Make room for index i of arr, a table indexed by an id (capacity cap,
 * doubled from first until it covers i), the new elements zeroed (0 stands
 * for "not known yet" in these tables). */
#define SF_GROW_ZERO(arr, i, cap, first)                                                           \
    do {                                                                                           \
        if ((i) >= (cap)) {                                                                        \
            size_t n_ = (cap) ? (cap) : (first);                                                   \
            while (n_ <= (i))                                                                      \
                n_ *= 2;                                                                           \
            (arr) = sf_xrealloc((arr), n_ * sizeof *(arr));                                        \
            memset((arr) + (cap), 0, (n_ - (cap)) * sizeof *(arr));                                \
            (cap) = n_;                                                                            \
        }                                                                                          \
    } while (0)

#endif /* SFTRACE_XALLOC_H */
