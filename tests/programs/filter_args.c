/*
 * filter_args.c - functions whose arguments and return values the filter
 * tests (t_filter.py) check in the trace with `sftrace filter --args`.
 *
 * main passes the values it was given: mix6(a..f) for each of ROUNDS rounds
 * with a+r, b+r, ... (r = 0, 1, 2), then two(x, y) with 32-bit ints, and
 * text(s, n) with a pointer. plain(v) is selected without arguments.
 * Prints "mix6 R ARGS... ret V", "two X Y ret V", "text PTR N ret V",
 * all in hex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define ROUNDS 3

static volatile long sink;

NOINLINE long mix6(long a, long b, long c, long d, long e, long f)
{
    long r = a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
    sink += r;
    return r;
}

NOINLINE int two(int x, int y)
{
    int r = x * 3 - y;
    sink += r;
    return r;
}

NOINLINE unsigned long text(const char *s, int n)
{
    unsigned long h = 5381;
    for (int i = 0; i < n && s[i]; i++)
        h = h * 33 + (unsigned char)s[i];
    sink += (long)h;
    return h;
}

NOINLINE long plain(long v)
{
    sink += v;
    return v * 7;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: filter_args A B C D E F X Y TEXT\n");
        return 2;
    }
    long v[6];
    for (int i = 0; i < 6; i++)
        v[i] = strtol(argv[1 + i], NULL, 0);
    for (long r = 0; r < ROUNDS; r++) {
        long ret = mix6(v[0] + r, v[1] + r, v[2] + r, v[3] + r, v[4] + r, v[5] + r);
        printf("mix6 %ld %lx %lx %lx %lx %lx %lx ret %lx\n", r, (unsigned long)(v[0] + r),
               (unsigned long)(v[1] + r), (unsigned long)(v[2] + r), (unsigned long)(v[3] + r),
               (unsigned long)(v[4] + r), (unsigned long)(v[5] + r), (unsigned long)ret);
    }
    int x = (int)strtol(argv[7], NULL, 0), y = (int)strtol(argv[8], NULL, 0);
    int t = two(x, y);
    printf("two %x %x ret %x\n", (unsigned)x, (unsigned)y, (unsigned)t);
    const char *s = argv[9];
    int n = (int)strlen(s);
    unsigned long h = text(s, n);
    printf("text %lx %x ret %lx\n", (unsigned long)s, (unsigned)n, h);
    printf("plain ret %lx\n", (unsigned long)plain(v[0]));
    return 0;
}
