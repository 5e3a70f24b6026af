/*
 * abi_setup.c - opts in with the header's SFTRACE_SETUP_HERE(), linked with
 * -lsftrace (DT_NEEDED), no preload. tests/t_abi.py runs it with only
 * SFTRACE_OUTPUT_FILE set, without it, and under `sftrace record`.
 *
 * Calls: main 1, outer ROUNDS, inner ROUNDS * INNER, leaf ROUNDS * INNER * 2.
 * Prints its pid; exits with status 3 so the tests see the status passed
 * through.
 */
#include <stdio.h>
#include <unistd.h>

#include "sftrace.h"

SFTRACE_SETUP_HERE()

#define ROUNDS 4
#define INNER 5
#define NOINLINE __attribute__((noinline))

static volatile long sink;

NOINLINE long leaf(long x)
{
    sink += x;
    return x * 3 + 1;
}

NOINLINE long inner(long x)
{
    long a = leaf(x);
    long b = leaf(x + 1);
    sink += a;
    return a ^ b;
}

NOINLINE long outer(long r)
{
    long s = 0;
    for (long i = 0; i < INNER; i++)
        s += inner(r * INNER + i);
    sink += s;
    return s;
}

int main(void)
{
    long total = 0;
    for (long r = 0; r < ROUNDS; r++)
        total += outer(r);
    printf("total %ld\n", total);
    printf("calls outer %d inner %d leaf %d\n", ROUNDS, ROUNDS * INNER, ROUNDS * INNER * 2);
    printf("pid %ld\n", (long)getpid());
    return 3;
}
