/* tried_tailr11.c - PostgreSQL's table_beginscan_catalog pattern: a function
 * whose last act is an indirect call with six arguments through a table of
 * function pointers, after a call whose result is one of them. clang makes
 * it a tail jump through r11 (rax holds the result, the six argument
 * registers are taken), right after the function's tail sled. */
#include <stdio.h>
#include <stdlib.h>

struct am {
    long (*begin)(long, long, long, long, long, long);
};
struct rel {
    struct am *am;
    long x;
};

__attribute__((noinline)) long snap(long x)
{
    return x * 3;
}

__attribute__((noinline)) long scan_begin(long a, long b, long c, long d, long e, long f)
{
    return a + b + c + d + e + f;
}

__attribute__((noinline)) long beginscan(struct rel *r, long k, long n)
{
    long s = snap(r->x);
    return r->am->begin(r->x, s, k, n, 0, 0x3c1);
}

static struct am heap_am = {scan_begin};

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    struct rel r = {&heap_am, 5};
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += beginscan(&r, i, 2);
    printf("%ld\n", sum);
    return 0;
}
